/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report.c - storage for what the decoders find.
 */
#include "config.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "record.h"
#include "report.h"
#include "util.h"

struct bounce *
report_add_bounce(struct report *r)
{
	if (r->nbounces == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 4;
		r->bounces = xrealloc(r->bounces, r->cap * sizeof(*r->bounces));
	}
	struct bounce *b = &r->bounces[r->nbounces++];
	memset(b, 0, sizeof(*b));
	b->code = 550;
	b->content = xstrdup("");
	return b;
}

static void
bounce_free(struct bounce *b)
{
	free(b->recipient);
	free(b->final_recipient);
	free(b->original_recipient);
	free(b->action);
	free(b->content);
	free(b->status_comment);
	free(b->reporting_mta);
	free(b->remote_mta);
	free(b->diagnostic_type);
	free(b->diagnostic_text);
	free(b->notice_reply);
}

void
report_free(struct report *r)
{
	for (size_t i = 0; i < r->nbounces; i++)
		bounce_free(&r->bounces[i]);
	free(r->bounces);
	if (r->feedback_report)
		json_decref(r->feedback_report);
	if (r->trace)
		json_decref(r->trace);
	if (r->returned)
		json_decref(r->returned);
	memset(r, 0, sizeof(*r));
}

/* Whether word[0..n) is one RFC 2047 encoded word. */
static bool
encoded_word(const char *w, size_t n)
{
	return n >= 8 && w[0] == '=' && w[1] == '?' && w[n - 2] == '?' &&
	    w[n - 1] == '=';
}

/*
 * A raw field value as one line: valid UTF-8, whitespace runs one space,
 * RFC 2047 words decoded. Each encoded word is decoded on its own and
 * adjacent ones joined without the space between them (RFC 2047 §6.2):
 * GMime decodes a run of base64 words as one, which loses every word after
 * one that ends in padding.
 */
static char *
unfold_decode(const char *raw)
{
	char *valid = utf8_lossy(raw, strlen(raw));
	struct buf b = { 0 };
	bool prev_encoded = false;

	for (const char *p = valid; *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		size_t n = strcspn(p, " \t\r\n");
		bool enc = encoded_word(p, n);
		if (b.len > 0 && !(enc && prev_encoded))
			buf_putc(&b, ' ');
		if (enc) {
			char *w = xstrndup(p, n);
			char *d = g_mime_utils_header_decode_text(NULL, w);
			buf_puts(&b, d != NULL ? d : w);
			g_free(d);
			free(w);
		} else
			buf_append(&b, p, n);
		prev_encoded = enc;
		p += n;
	}
	buf_putc(&b, '\0');
	free(valid);
	return buf_steal(&b);
}

json_t *
report_returned_headers(const struct fieldblock *fb)
{
	static const char *const names[][2] = {
		{ "message-id", "message_id" },
		{ "subject", "subject" },
		{ "from", "from" },
		{ "to", "to" },
	};
	json_t *o = NULL;

	for (size_t i = 0; i < nitems(names); i++) {
		const struct field *f = fields_get(fb, names[i][0]);
		char *v;
		if (f == NULL || (f->value == NULL && f->raw == NULL))
			continue;
		v = f->value != NULL ? xstrdup(f->value) : unfold_decode(f->raw);
		if (o == NULL)
			o = json_object();
		json_object_set_new(o, names[i][1], json_string_lossy(v));
		free(v);
	}
	return o;
}
