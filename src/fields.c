/*
 * fields.c - header-field blocks parsed with GMime's header parser.
 *
 * GMime does the hard part (field boundaries, folding, RFC 2047). What is
 * left here is KumoMTA's notion of an "unstructured" value: every run of
 * whitespace becomes one space and the result is trimmed, and bytes that
 * are not UTF-8 are made valid the way Rust's from_utf8_lossy does rather
 * than guessed at as Latin-1, which is what GMime would do.
 */
#include "config.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "message.h"
#include "util.h"

/*
 * utf8_lossy() that is safe for an empty string: util.c's version leaves
 * the result unterminated when n is 0.
 */
static char *
lossy(const char *s, size_t n)
{
	return n == 0 ? xstrdup("") : utf8_lossy(s, n);
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A copy of s with whitespace runs collapsed to one space, trimmed. */
static char *
collapse_ws(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *out = xmalloc(n + 1);
	bool pending = false;

	for (size_t i = 0; i < n; i++) {
		if (is_wsp(s[i])) {
			pending = o > 0;
			continue;
		}
		if (pending)
			out[o++] = ' ';
		pending = false;
		out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/*
 * The unstructured value of a header whose raw value is not UTF-8: made
 * valid first, so GMime's charset fallback never sees the stray bytes, and
 * then unfolded and RFC 2047-decoded.
 */
static char *
lossy_value(const char *raw)
{
	char *valid = lossy(raw, strlen(raw));
	char *unfolded = g_mime_utils_header_unfold(valid);
	char *decoded = g_mime_utils_header_decode_text(NULL,
	    unfolded != NULL ? unfolded : valid);
	char *out = xstrdup(decoded != NULL ? decoded : valid);

	g_free(decoded);
	g_free(unfolded);
	free(valid);
	return out;
}

/* Length of the header block at the start of text (to the first empty line). */
static size_t
header_block_len(const char *text, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t eol = i;
		while (eol < len && text[eol] != '\n')
			eol++;
		size_t end = eol;
		if (end > i && text[end - 1] == '\r')
			end--;
		if (end == i)
			return i;
		i = eol < len ? eol + 1 : len;
	}
	return len;
}

int
fields_parse(const char *text, size_t len, struct fieldblock *fb)
{
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeObject *obj;
	GMimeHeaderList *hl;
	size_t cap = 0;

	memset(fb, 0, sizeof(*fb));
	len = header_block_len(text, len);
	if (len == 0)
		return 0;

	message_library_init();
	stream = g_mime_stream_mem_new_with_buffer(text, len);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	obj = g_mime_parser_construct_part(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (obj == NULL)
		return -1;

	hl = g_mime_object_get_header_list(obj);
	int count = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
	for (int i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = h ? g_mime_header_get_name(h) : NULL;
		const char *raw = h ? g_mime_header_get_raw_value(h) : NULL;
		struct field *f;
		char *value;

		if (name == NULL || *name == '\0')
			continue;
		if (raw == NULL)
			raw = "";
		if (fb->n == cap) {
			cap = cap ? cap * 2 : 16;
			fb->v = xrealloc(fb->v, cap * sizeof(*fb->v));
		}
		f = &fb->v[fb->n++];
		f->name = str_lower(lossy(name, strlen(name)));

		size_t rlen = strlen(raw);
		while (rlen > 0 &&
		    (raw[rlen - 1] == '\n' || raw[rlen - 1] == '\r'))
			rlen--;
		f->raw = xstrndup(raw, rlen);
		f->utf8 = utf8_valid(f->raw, rlen);
		if (f->utf8) {
			const char *v = g_mime_header_get_value(h);
			value = xstrdup(v != NULL ? v : "");
		} else
			value = lossy_value(f->raw);
		char *collapsed = collapse_ws(value);
		free(value);
		/* A decoded encoded-word may hold anything; keep the promise. */
		f->value = lossy(collapsed, strlen(collapsed));
		free(collapsed);
	}
	g_object_unref(obj);
	return 0;
}

void
fields_free(struct fieldblock *fb)
{
	for (size_t i = 0; i < fb->n; i++) {
		free(fb->v[i].name);
		free(fb->v[i].value);
		free(fb->v[i].raw);
	}
	free(fb->v);
	memset(fb, 0, sizeof(*fb));
}

const struct field *
fields_get(const struct fieldblock *fb, const char *lname)
{
	for (size_t i = 0; i < fb->n; i++)
		if (strcmp(fb->v[i].name, lname) == 0)
			return &fb->v[i];
	return NULL;
}

size_t
fields_count(const struct fieldblock *fb, const char *lname)
{
	size_t n = 0;

	for (size_t i = 0; i < fb->n; i++)
		if (strcmp(fb->v[i].name, lname) == 0)
			n++;
	return n;
}

/* Whether text[i..eol) holds only whitespace. */
static bool
blank_line(const char *text, size_t i, size_t eol)
{
	for (; i < eol; i++)
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r')
			return false;
	return true;
}

size_t
fields_split_groups(const char *text, size_t len, struct span **out)
{
	struct span *v = NULL;
	size_t n = 0, cap = 0, i = 0;
	const char *start = NULL;	/* first line of the current group */
	size_t end = 0;			/* end of its last non-blank line */

	while (i < len) {
		size_t eol = i;
		while (eol < len && text[eol] != '\n')
			eol++;
		size_t next = eol < len ? eol + 1 : len;
		if (blank_line(text, i, eol)) {
			if (start != NULL) {
				if (n == cap) {
					cap = cap ? cap * 2 : 8;
					v = xrealloc(v, cap * sizeof(*v));
				}
				v[n].p = start;
				v[n].n = (size_t)(text + end - start);
				n++;
				start = NULL;
			}
		} else {
			if (start == NULL)
				start = text + i;
			end = next;
		}
		i = next;
	}
	if (start != NULL) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n].p = start;
		v[n].n = (size_t)(text + end - start);
		n++;
	}
	*out = v;
	return n;
}

bool
split_typed(const char *s, char **type, char **value)
{
	const char *semi = strchr(s, ';');

	*type = NULL;
	*value = NULL;
	if (semi == NULL)
		return false;
	*type = str_trim_dup(s, (size_t)(semi - s));
	*value = str_trim_dup(semi + 1, strlen(semi + 1));
	return true;
}
