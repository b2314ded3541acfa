/* SPDX-License-Identifier: Apache-2.0 */
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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "message.h"
#include "util.h"

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
	char *valid = utf8_lossy(raw, strlen(raw));
	char *unfolded = g_mime_utils_header_unfold(valid);
	char *decoded = g_mime_utils_header_decode_text(NULL,
	    unfolded != NULL ? unfolded : valid);
	char *out = xstrdup(decoded != NULL ? decoded : valid);

	g_free(decoded);
	g_free(unfolded);
	free(valid);
	return out;
}

/* The offset of the first LF in text[from, len), or len. */
static size_t
line_end(const char *text, size_t from, size_t len)
{
	const char *lf = memchr(text + from, '\n', len - from);

	return lf != NULL ? (size_t)(lf - text) : len;
}

/* Length of the header block at the start of text (to the first empty line). */
static size_t
header_block_len(const char *text, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t eol = line_end(text, i, len);
		size_t end = eol;
		if (end > i && text[end - 1] == '\r')
			end--;
		if (end == i)
			return i;
		i = eol < len ? eol + 1 : len;
	}
	return len;
}

/*
 * One parser, stream and buffer per thread, reused for every block: a
 * message has a dozen short blocks, and building and tearing down the
 * parser costs more than parsing one of them.
 */
struct block_parser {
	GMimeParser *parser;
	GMimeStream *stream;
	GByteArray *bytes;
};

static pthread_key_t parser_key;
static pthread_once_t parser_once = PTHREAD_ONCE_INIT;

static void
block_parser_free(void *p)
{
	struct block_parser *bp = p;

	g_object_unref(bp->parser);
	g_object_unref(bp->stream);
	g_byte_array_free(bp->bytes, TRUE);
	free(bp);
}

static void
parser_key_init(void)
{
	if (pthread_key_create(&parser_key, block_parser_free) != 0)
		fatalx("pthread_key_create failed");
}

/* This thread's parser, its input emptied. */
static struct block_parser *
block_parser_get(void)
{
	struct block_parser *bp;

	pthread_once(&parser_once, parser_key_init);
	bp = pthread_getspecific(parser_key);
	if (bp == NULL) {
		bp = xcalloc(1, sizeof(*bp));
		bp->parser = g_mime_parser_new();
		bp->stream = g_mime_stream_mem_new();
		bp->bytes = g_byte_array_new();
		if (pthread_setspecific(parser_key, bp) != 0)
			fatalx("pthread_setspecific failed");
	}
	g_byte_array_set_size(bp->bytes, 0);
	return bp;
}

/* The parser, set up to read what has been appended to bp->bytes. */
static GMimeParser *
block_parser_start(struct block_parser *bp)
{
	/* Not the owner: the array stays ours; this also rewinds the stream. */
	g_mime_stream_mem_set_byte_array(GMIME_STREAM_MEM(bp->stream),
	    bp->bytes);
	g_mime_parser_init_with_stream(bp->parser, bp->stream);
	g_mime_parser_set_format(bp->parser, GMIME_FORMAT_MESSAGE);
	return bp->parser;
}

/* This thread's parser, set up to read a copy of text[0..len). */
static GMimeParser *
block_parser(const char *text, size_t len)
{
	struct block_parser *bp = block_parser_get();

	g_byte_array_append(bp->bytes, (const guint8 *)text, (guint)len);
	return block_parser_start(bp);
}

/*
 * The unstructured value of a header whose raw value is valid UTF-8, as
 * g_mime_header_get_value() gives it (unfolded, RFC 2047 words decoded).
 * Text that is ASCII and holds no "=?" has nothing to decode, so only the
 * unfolding is done for it.
 */
static char *
utf8_value(GMimeHeader *h, const char *raw, bool *decoded)
{
	bool plain = strstr(raw, "=?") == NULL;

	for (const char *p = raw; plain && *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			plain = false;
	*decoded = !plain;
	if (plain) {
		char *unfolded = g_mime_utils_header_unfold(raw);
		char *out = xstrdup(unfolded != NULL ? unfolded : "");
		g_free(unfolded);
		return out;
	}
	const char *v = g_mime_header_get_value(h);
	return xstrdup(v != NULL ? v : "");
}

/* The fields at [from, to) of a GMime header list, in its order. */
static void
collect_range(GMimeHeaderList *hl, int from, int to, struct fieldblock *fb,
    bool values)
{
	size_t cap = 0;

	for (int i = from; i < to; i++) {
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
		f->name = str_lower(utf8_lossy(name, strlen(name)));

		size_t rlen = strlen(raw);
		while (rlen > 0 &&
		    (raw[rlen - 1] == '\n' || raw[rlen - 1] == '\r'))
			rlen--;
		f->raw = xstrndup(raw, rlen);
		f->utf8 = utf8_valid(f->raw, rlen);
		f->value = NULL;
		if (!values)
			continue;
		bool decoded = true;
		if (f->utf8)
			value = utf8_value(h, raw, &decoded);
		else
			value = lossy_value(f->raw);
		char *collapsed = collapse_ws(value);
		free(value);
		/*
		 * A decoded encoded-word may hold anything; keep the promise.
		 * Unfolding and collapsing valid UTF-8 keeps it valid.
		 */
		if (decoded) {
			f->value = utf8_lossy(collapsed, strlen(collapsed));
			free(collapsed);
		} else
			f->value = collapsed;
	}
}

/* The fields of a GMime header list, in its order. */
static void
collect(GMimeHeaderList *hl, struct fieldblock *fb, bool values)
{
	int count = hl != NULL ? g_mime_header_list_get_count(hl) : 0;

	collect_range(hl, 0, count, fb, values);
}

static int
parse_block(const char *text, size_t len, struct fieldblock *fb, bool values)
{
	GMimeObject *obj;

	memset(fb, 0, sizeof(*fb));
	len = header_block_len(text, len);
	if (len == 0)
		return 0;
	/*
	 * A decoded part (a base64 delivery-status part, an encoded returned
	 * message) was never seen by message_load's bound: GMime builds
	 * about a kilobyte per field, so the count is checked here first.
	 */
	if (!message_fields_within(text, len, MESSAGE_MAX_HEADER_FIELDS))
		return -1;

	message_library_init();
	obj = g_mime_parser_construct_part(block_parser(text, len), NULL);
	if (obj == NULL)
		return -1;
	collect(g_mime_object_get_header_list(obj), fb, values);
	g_object_unref(obj);
	return 0;
}

/* Whether GMime left anything after the fields of obj as its content. */
static bool
has_content(GMimeObject *obj)
{
	GMimeDataWrapper *dw;
	GMimeStream *s;

	if (!GMIME_IS_PART(obj))
		return true;	/* a multipart or message: not a plain block */
	dw = g_mime_part_get_content(GMIME_PART(obj));
	if (dw == NULL || (s = g_mime_data_wrapper_get_stream(dw)) == NULL)
		return false;
	return g_mime_stream_length(s) != 0;
}

/*
 * Whether a line break after text[0..len) leaves its fields as they are.
 * At the end of the input GMime keeps a last line that is a field or a
 * folded continuation, as it would with a line break, but gives up on the
 * whole block when the line stops before any ':'. A line break before the
 * next block must not turn that into a dropped line.
 */
static bool
line_break_neutral(const char *text, size_t len)
{
	size_t i = len;

	if (text[len - 1] == '\n')
		return true;
	if (text[len - 1] == '\r')
		return false;
	while (i > 0 && text[i - 1] != '\n')
		i--;
	return text[i] == ' ' || text[i] == '\t' ||
	    memchr(text + i, ':', len - i) != NULL;
}

/*
 * Blocks joined in one parse, each field given back to the block its
 * offset falls in. A folded first line would continue the block before
 * it, and in the middle of a block GMime drops a line that is not a field
 * where at the start of one it gives up on the whole block, so every block
 * must be seen to start with a field of its own; when one does not, or
 * anything is left over as content, this returns false with nothing in out.
 */
static bool
parse_joined(const struct span *blocks, size_t n, struct fieldblock *out,
    const bool *raw_only)
{
	struct block_parser *bp = block_parser_get();
	size_t *start = xmalloc(n * sizeof(*start));
	size_t *end = xmalloc(n * sizeof(*end));
	bool ok = false;

	for (size_t i = 0; i < n; i++) {
		const char *p = blocks[i].p;
		size_t len = header_block_len(p, blocks[i].n);

		start[i] = end[i] = bp->bytes->len;
		if (len == 0)
			continue;
		if (!message_fields_within(p, len, MESSAGE_MAX_HEADER_FIELDS) ||
		    (i > 0 && (p[0] == ' ' || p[0] == '\t')) ||
		    (i + 1 < n && !line_break_neutral(p, len)))
			goto done;
		g_byte_array_append(bp->bytes, (const guint8 *)p, (guint)len);
		if (i + 1 < n && p[len - 1] != '\n')
			g_byte_array_append(bp->bytes, (const guint8 *)"\n", 1);
		end[i] = bp->bytes->len;
	}
	GMimeObject *obj = g_mime_parser_construct_part(block_parser_start(bp),
	    NULL);
	if (obj == NULL)
		goto done;
	if (has_content(obj)) {
		g_object_unref(obj);
		goto done;
	}
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	int count = g_mime_header_list_get_count(hl), from = 0;
	size_t b = 0;
	ok = true;
	for (int i = 0; i <= count && ok; i++) {
		GMimeHeader *h = i < count ?
		    g_mime_header_list_get_header_at(hl, i) : NULL;
		gint64 off = h != NULL ? g_mime_header_get_offset(h) : -1;
		/* Close every block that ends at or before this field. */
		while (b < n && (h == NULL || off >= (gint64)end[b])) {
			/* A block with text and no field at its start. */
			if (start[b] < end[b] && from == i)
				ok = false;
			collect_range(hl, from, i, &out[b],
			    raw_only == NULL || !raw_only[b]);
			from = i;
			b++;
		}
		if (h == NULL)
			break;
		if (b == n || off < (gint64)start[b])
			ok = false;
		else if (i == from) {
			const char *name = g_mime_header_get_name(h);
			/* ": x" is a field inside a block, not at its start. */
			if (off != (gint64)start[b] || name == NULL ||
			    *name == '\0')
				ok = false;
		}
	}
	g_object_unref(obj);
	if (!ok)
		for (size_t i = 0; i < n; i++)
			fields_free(&out[i]);
done:
	free(start);
	free(end);
	return ok;
}

int
fields_parse_groups(const struct span *blocks, size_t n,
    struct fieldblock *out, int *rc, const bool *raw_only)
{
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		rc[i] = 0;
	}
	message_library_init();
	if (n > 1 && parse_joined(blocks, n, out, raw_only))
		return 0;
	int failed = 0;
	for (size_t i = 0; i < n; i++)
		if ((rc[i] = parse_block(blocks[i].p, blocks[i].n, &out[i],
		    raw_only == NULL || !raw_only[i])) != 0)
			failed++;
	return failed;
}

void
fields_of_object(GMimeObject *obj, struct fieldblock *fb)
{
	memset(fb, 0, sizeof(*fb));
	collect(g_mime_object_get_header_list(obj), fb, true);
}

void
fields_of_object_raw(GMimeObject *obj, struct fieldblock *fb)
{
	memset(fb, 0, sizeof(*fb));
	collect(g_mime_object_get_header_list(obj), fb, false);
}

int
fields_parse(const char *text, size_t len, struct fieldblock *fb)
{
	return parse_block(text, len, fb, true);
}

int
fields_parse_raw(const char *text, size_t len, struct fieldblock *fb)
{
	return parse_block(text, len, fb, false);
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
		size_t eol = line_end(text, i, len);
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
