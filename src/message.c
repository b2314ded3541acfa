/* SPDX-License-Identifier: Apache-2.0 */
/*
 * message.c - load a message for the decoders: normalise line ends, parse
 * with GMime, and find the byte-exact spans of the top-level parts.
 *
 * GMime does the MIME parsing. The raw spans exist because KumoMTA logs
 * some parts (the original message of an ARF report) exactly as they were
 * received, undecoded and including the line break before the delimiter,
 * which a re-serialisation by GMime would not reproduce.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "util.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_setup(void)
{
	g_mime_init();
}

void
message_library_init(void)
{
	pthread_once(&gmime_once, gmime_setup);
}

static char *
normalise_newlines(const char *data, size_t len, size_t *outlen,
    size_t *wire_size)
{
	char *out = xmalloc(len + 1);
	size_t o = 0, lines = 0, i = 0;

	/* Runs without a CR are copied whole. */
	while (i < len) {
		const char *cr = memchr(data + i, '\r', len - i);
		size_t run = cr != NULL ? (size_t)(cr - (data + i)) : len - i;

		memcpy(out + o, data + i, run);
		o += run;
		i += run;
		if (i == len)
			break;
		out[o++] = '\n';	/* CRLF or a bare CR */
		i += i + 1 < len && data[i + 1] == '\n' ? 2 : 1;
	}
	out[o] = '\0';
	for (const char *p = out; (p = memchr(p, '\n', (size_t)(out + o - p)))
	    != NULL; p++)
		lines++;
	*outlen = o;
	*wire_size = o + lines;
	return out;
}

/*
 * Keep at most MESSAGE_MAX_FIELD bytes of each top-level header field, as
 * Postfix's header_size_limit does: the excess is discarded. GMime grows
 * its header buffer in small steps, so one enormous folded field would
 * otherwise cost time quadratic in its size. Works in place on LF text.
 */
#define MESSAGE_MAX_FIELD	(100 * 1024)

static void
cap_header_fields(char *t, size_t *lenp)
{
	size_t len = *lenp, r = 0, w = 0, field = 0;

	while (r < len && t[r] != '\n') {
		const char *nl = memchr(t + r, '\n', len - r);
		size_t n = nl != NULL ? (size_t)(nl - (t + r)) + 1 : len - r;

		if (t[r] != ' ' && t[r] != '\t')
			field = 0;
		if (field + n <= MESSAGE_MAX_FIELD) {
			memmove(t + w, t + r, n);
			w += n;
			field += n;
		} else if (field + 1 < MESSAGE_MAX_FIELD) {
			/* The part of the line that fits, with its own LF. */
			size_t keep = MESSAGE_MAX_FIELD - field - 1;
			memmove(t + w, t + r, keep);
			w += keep;
			t[w++] = '\n';	/* keep + 1 < n: stays behind r + n */
			field = MESSAGE_MAX_FIELD;
		}
		r += n;
	}
	if (w == r)
		return;
	memmove(t + w, t + r, len - r);
	w += len - r;
	t[w] = '\0';
	*lenp = w;
}

/*
 * Whether the line p[0..n) (line end excluded) starts a header field: a
 * field name of printable ASCII other than ':' (RFC 5322 ftext), optional
 * blanks, then ':'. Continuation lines and text do not.
 */
static bool
field_line(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

bool
message_fields_within(const char *data, size_t len, size_t max)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t i = 0, fields = 0;

	while (i < len) {
		size_t start = i;
		/* CRLF, LF and a lone CR all end a line, as they do for GMime. */
		while (i < len && p[i] != '\n' && p[i] != '\r')
			i++;
		size_t n = i - start;
		if (i < len)
			i += p[i] == '\r' && i + 1 < len && p[i + 1] == '\n' ? 2 : 1;
		if (n == 0)
			fields = 0;	/* an empty line ends a block */
		else if (field_line(p + start, n) && ++fields > max)
			return false;
	}
	return true;
}

/* Lines that could be MIME delimiters: "--" at a line start. */
static size_t
delimiter_lines(const char *p, size_t len)
{
	size_t count = 0;

	for (size_t i = 0; i + 1 < len; i++) {
		if ((i == 0 || p[i - 1] == '\n' || p[i - 1] == '\r') &&
		    p[i] == '-' && p[i + 1] == '-')
			count++;
		const char *nl = memchr(p + i, '\n', len - i);
		size_t n = nl != NULL ? (size_t)(nl - (p + i)) : len - i;
		const char *cr = memchr(p + i, '\r', n);
		if (cr != NULL)
			nl = cr;	/* a line ends at its first CR or LF */
		if (nl == NULL)
			break;
		i = (size_t)(nl - p);
	}
	return count;
}

int
message_load(struct message *m, const char *data, size_t len)
{
	/*
	 * Each MIME part needs a delimiter line: far more of them than
	 * MESSAGE_MAX_PARTS allows must not reach GMime, which would build
	 * every part (19.9 MB of empty parts took 6.3 GB).
	 */
	if (delimiter_lines(data, len) / 2 > MESSAGE_MAX_PARTS) {
		memset(m, 0, sizeof(*m));
		m->too_many_parts = true;
		m->text = xstrdup("");
		m->wire_size = len;
		return -1;
	}
	return message_load_max(m, data, len, MESSAGE_MAX_HEADER_FIELDS);
}

int
message_load_max(struct message *m, const char *data, size_t len,
    size_t max_fields)
{
	GMimeStream *stream;
	GMimeParser *parser;

	message_library_init();
	memset(m, 0, sizeof(*m));
	if (!message_fields_within(data, len, max_fields)) {
		m->too_many_fields = true;
		m->text = xstrdup("");	/* m stays safe to read and free */
		m->wire_size = len;
		return -1;
	}
	m->text = normalise_newlines(data, len, &m->len, &m->wire_size);
	cap_header_fields(m->text, &m->len);

	/* The stream borrows m->text, which outlives the parsed message. */
	stream = g_mime_stream_mem_new_with_buffer(m->text, m->len);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	/*
	 * A part rather than a GMimeMessage: the decoders read the fields
	 * themselves, and a message would parse its address and date fields
	 * into objects nobody asks for.
	 */
	m->mime = g_mime_parser_construct_part(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	return 0;
}

void
message_free(struct message *m)
{
	if (m->mime != NULL)
		g_object_unref(m->mime);
	free(m->text);
	memset(m, 0, sizeof(*m));
}

const char *
message_subject(const struct message *m)
{
	GMimeHeaderList *hl;
	const char *subject = NULL;

	if (m->mime == NULL)
		return NULL;
	hl = g_mime_object_get_header_list(m->mime);
	for (int i = g_mime_header_list_get_count(hl) - 1; i >= 0; i--) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);
		if (name != NULL && str_ieq(name, "Subject")) {
			subject = g_mime_header_get_value(h);
			break;
		}
	}
	return subject;
}

InternetAddressList *
message_addresses(const struct message *m, const char *name)
{
	InternetAddressList *all = NULL;
	GMimeHeaderList *hl;

	if (m->mime == NULL)
		return NULL;
	hl = g_mime_object_get_header_list(m->mime);
	int count = g_mime_header_list_get_count(hl);
	for (int i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *n = g_mime_header_get_name(h);
		const char *raw = g_mime_header_get_raw_value(h);
		InternetAddressList *l;

		if (n == NULL || raw == NULL || !str_ieq(n, name))
			continue;
		if ((l = internet_address_list_parse(NULL, raw)) == NULL)
			continue;
		if (all == NULL)
			all = internet_address_list_new();
		internet_address_list_append(all, l);
		g_object_unref(l);
	}
	return all;
}

void
raw_entity_split(const char *text, size_t len, struct raw_entity *e)
{
	size_t i = 0;

	e->headers = text;
	/* An entity that starts with an empty line has no headers. */
	if (len > 0 && text[0] == '\n') {
		e->headers_len = 0;
		e->body = text + 1;
		e->body_len = len - 1;
		return;
	}
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - text) + 1;
		if (i < len && text[i] == '\n') {
			e->headers_len = i;
			e->body = text + i + 1;
			e->body_len = len - i - 1;
			return;
		}
	}
	e->headers_len = len;
	e->body = text + len;
	e->body_len = 0;
}

/*
 * Whether the line at p (up to eol) is a delimiter for boundary b: "--b",
 * optionally "--" after it, then only transport padding.
 */
static int
delimiter_kind(const char *p, const char *eol, const char *b, size_t blen)
{
	size_t n = (size_t)(eol - p);
	int kind = 1;

	if (n < blen + 2 || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, b, blen) != 0)
		return 0;
	p += blen + 2;
	if (eol - p >= 2 && p[0] == '-' && p[1] == '-') {
		kind = 2;
		p += 2;
	}
	for (; p < eol; p++)
		if (*p != ' ' && *p != '\t')
			return 0;
	return kind;
}

size_t
message_children(const struct message *m, struct raw_entity **out)
{
	GMimeObject *top;
	const char *boundary;
	struct raw_entity whole, *v = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	top = m->mime;
	if (top == NULL || !GMIME_IS_MULTIPART(top))
		return 0;
	/*
	 * Not g_mime_multipart_get_boundary(): where the parameter is
	 * missing it sets a new one, and re-encoding the Content-Type then
	 * never ends for a parameter with a very long name (GMime 3.2's
	 * parameter folding), taking all memory. Read-only here.
	 */
	boundary = g_mime_object_get_content_type_parameter(top, "boundary");
	if (boundary == NULL || *boundary == '\0')
		return 0;
	size_t blen = strlen(boundary);

	raw_entity_split(m->text, m->len, &whole);
	const char *p = whole.body, *end = whole.body + whole.body_len;
	const char *start = NULL;	/* start of the current child */
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		int kind = delimiter_kind(p, eol, boundary, blen);
		if (kind != 0) {
			if (start != NULL) {
				if (n == cap) {
					cap = cap ? cap * 2 : 8;
					v = xrealloc(v, cap * sizeof(*v));
				}
				raw_entity_split(start, (size_t)(p - start), &v[n++]);
			}
			if (kind == 2) {
				start = NULL;
				break;
			}
			start = eol < end ? eol + 1 : end;
		}
		p = eol < end ? eol + 1 : end;
	}
	/* A multipart cut off before its close delimiter keeps its last part. */
	if (start != NULL && start < end) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof(*v));
		}
		raw_entity_split(start, (size_t)(end - start), &v[n++]);
	}
	*out = v;
	return n;
}

bool
mime_is(GMimeObject *o, const char *type, const char *subtype)
{
	GMimeContentType *ct;

	if (o == NULL)
		return false;
	ct = g_mime_object_get_content_type(o);
	if (ct == NULL)
		return false;
	const char *t = g_mime_content_type_get_media_type(ct);
	const char *s = g_mime_content_type_get_media_subtype(ct);
	return t != NULL && s != NULL && str_ieq(t, type) && str_ieq(s, subtype);
}

char *
mime_part_decoded(GMimeObject *o, size_t *lenp)
{
	GMimeDataWrapper *content;
	GMimeStream *mem;
	GByteArray *bytes;
	char *out;

	if (o == NULL || !GMIME_IS_PART(o))
		return NULL;
	content = g_mime_part_get_content(GMIME_PART(o));
	if (content == NULL)
		return NULL;
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(content, mem) < 0) {
		g_object_unref(mem);
		return NULL;
	}
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	out = xstrndup((const char *)bytes->data, bytes->len);
	if (lenp != NULL)
		*lenp = bytes->len;
	g_object_unref(mem);
	return out;
}

void
message_mime_shape(const struct message *m, size_t *depth, size_t *parts)
{
	struct frame {
		GMimeObject *o;
		size_t	 depth;
	} *stack = NULL;
	size_t n = 0, cap = 0;

	*depth = 0;
	*parts = 0;
	if (m->mime == NULL)
		return;
	/* An explicit stack: the tree may be as deep as GMime allows. */
	cap = 16;
	stack = xmalloc(cap * sizeof(*stack));
	stack[n++] = (struct frame){ m->mime, 1 };
	while (n > 0) {
		struct frame f = stack[--n];
		GMimeObject *kids[1] = { NULL };
		int count = 0;

		(*parts)++;
		if (f.depth > *depth)
			*depth = f.depth;
		if (GMIME_IS_MULTIPART(f.o))
			count = g_mime_multipart_get_count(GMIME_MULTIPART(f.o));
		else if (GMIME_IS_MESSAGE_PART(f.o)) {
			GMimeMessage *inner = g_mime_message_part_get_message(
			    GMIME_MESSAGE_PART(f.o));
			kids[0] = inner != NULL ?
			    g_mime_message_get_mime_part(inner) : NULL;
			count = kids[0] != NULL ? 1 : 0;
		}
		for (int i = 0; i < count; i++) {
			if (n == cap) {
				cap *= 2;
				stack = xrealloc(stack, cap * sizeof(*stack));
			}
			stack[n].o = GMIME_IS_MULTIPART(f.o) ?
			    g_mime_multipart_get_part(GMIME_MULTIPART(f.o), i) :
			    kids[0];
			stack[n++].depth = f.depth + 1;
		}
	}
	free(stack);
}
