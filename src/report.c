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

/*
 * A raw field value as one line: each line break and the whitespace
 * around it become one space, the ends trimmed, RFC 2047 words decoded.
 */
static char *
unfold_decode(const char *raw)
{
	struct buf b = { 0 };
	char *dec, *out;

	for (const char *p = raw; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n' || *p == ' ' || *p == '\t') {
			while (p[1] == '\r' || p[1] == '\n' || p[1] == ' ' ||
			    p[1] == '\t')
				p++;
			if (b.len > 0 && p[1] != '\0')
				buf_putc(&b, ' ');
			continue;
		}
		buf_putc(&b, *p);
	}
	buf_putc(&b, '\0');
	dec = g_mime_utils_header_decode_text(NULL, b.data);
	out = xstrdup(dec != NULL ? dec : b.data);
	g_free(dec);
	buf_free(&b);
	return out;
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
