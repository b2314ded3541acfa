/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumoref.c - the X-KumoRef supplemental trace header (reference §4):
 * KumoMTA's encoder (TraceHeaders::apply_supplemental) and the decoder of
 * its ARF parser, reproduced byte for byte.
 *
 * The payload is a JSON object carrying the marker "_@_":"\_/", serialised
 * compact with sorted keys (serde_json without preserve_order), base64
 * with the standard alphabet and padding, and folded at 75 characters.
 * Decoding failures are silent by design: any X- header may be tried, and
 * most of them are not ours.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <b64/cdecode.h>
#include <b64/cencode.h>

#include "fields.h"
#include "kumoref.h"
#include "record.h"
#include "util.h"

#define KUMOREF_MARKER_KEY	"_@_"
#define KUMOREF_MARKER		"\\_/"
#define KUMOREF_FOLD		75

/*
 * serde_json refuses input nested deeper than this (its recursion limit
 * of 128 is spent on entering the 128th array or object), so a payload
 * that KumoMTA cannot decode is not decoded here either.
 */
#define KUMOREF_MAX_DEPTH	127

/* libb64 takes int lengths; feed it in bounded steps (multiples of 12). */
#define B64_STEP		(1 << 20)

/* Rust's u8::is_ascii_whitespace: no vertical tab. */
static bool
ascii_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Whether s[0..n) is base64 as data_encoding::BASE64 accepts it: standard
 * alphabet, length a multiple of 4, one or two '=' only at the very end,
 * and the unused bits of the last symbol zero. libb64 checks none of
 * this (it skips what it does not know), so this runs before it.
 */
static bool
b64_strict_valid(const char *s, size_t n)
{
	size_t pad = 0, data;

	if (n % 4 != 0)
		return false;
	while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
		pad++;
	data = n - pad;
	for (size_t i = 0; i < data; i++)
		if (b64_value((unsigned char)s[i]) < 0)
			return false;
	if (pad == 0 || data == 0)
		return pad == 0;
	/* "xy==" carries 8 bits, "xyz=" 16: the rest of the last symbol is 0. */
	int last = b64_value((unsigned char)s[data - 1]);
	return pad == 2 ? (last & 0x0f) == 0 : (last & 0x03) == 0;
}

/* Decode text that b64_strict_valid() accepted. Caller frees. */
static char *
b64_decode(const char *s, size_t n, size_t *outlen)
{
	base64_decodestate st;
	char *out = xmalloc(n / 4 * 3 + 1);
	size_t o = 0;

	base64_init_decodestate(&st);
	for (size_t i = 0; i < n; i += B64_STEP) {
		size_t step = n - i < B64_STEP ? n - i : B64_STEP;
		o += (size_t)base64_decode_block(s + i, (int)step, out + o, &st);
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* Standard padded base64 without libb64's line breaks. Caller frees. */
static char *
b64_encode(const char *s, size_t n, size_t *outlen)
{
	base64_encodestate st;
	/* 4 per 3 input bytes, a '\n' per 72 output characters, the end. */
	size_t cap = (n + 2) / 3 * 4;
	char *out = xmalloc(cap + cap / 72 + 8);
	size_t o = 0, w = 0;

	base64_init_encodestate(&st);
	for (size_t i = 0; i < n; i += B64_STEP) {
		size_t step = n - i < B64_STEP ? n - i : B64_STEP;
		o += (size_t)base64_encode_block(s + i, (int)step, out + o, &st);
	}
	o += (size_t)base64_encode_blockend(out + o, &st);
	for (size_t i = 0; i < o; i++)
		if (out[i] != '\n')
			out[w++] = out[i];
	out[w] = '\0';
	*outlen = w;
	return out;
}

struct jkey {
	const char *k;
	size_t	 n;
};

/* Byte order of Rust's String Ord (memcmp, then the shorter first). */
static int
jkey_cmp(const void *a, const void *b)
{
	const struct jkey *x = a, *y = b;
	int c = memcmp(x->k, y->k, x->n < y->n ? x->n : y->n);

	if (c != 0)
		return c;
	return x->n < y->n ? -1 : x->n > y->n;
}

/*
 * A deep copy of v with object keys in byte order, as serde_json's
 * BTreeMap holds them, and without the marker key at the top level when
 * drop_marker is set. Keys are handled with their lengths, since JSON
 * may carry "\u0000" in them. NULL when v nests deeper than serde_json
 * would accept.
 */
static json_t *
sorted_copy(json_t *v, bool drop_marker, int depth)
{
	json_t *out, *item;

	if (json_is_object(v)) {
		struct jkey *keys;
		const char *k;
		size_t kl, n = 0;

		if (depth >= KUMOREF_MAX_DEPTH)
			return NULL;
		keys = xcalloc(json_object_size(v) + 1, sizeof(*keys));
		json_object_keylen_foreach(v, k, kl, item) {
			if (drop_marker && kl == strlen(KUMOREF_MARKER_KEY) &&
			    memcmp(k, KUMOREF_MARKER_KEY, kl) == 0)
				continue;
			keys[n].k = k;
			keys[n].n = kl;
			n++;
		}
		qsort(keys, n, sizeof(*keys), jkey_cmp);
		out = json_object();
		for (size_t i = 0; i < n; i++) {
			json_t *c = sorted_copy(json_object_getn(v, keys[i].k,
			    keys[i].n), false, depth + 1);
			if (c == NULL) {
				json_decref(out);
				free(keys);
				return NULL;
			}
			json_object_setn_new_nocheck(out, keys[i].k, keys[i].n, c);
		}
		free(keys);
		return out;
	}
	if (json_is_array(v)) {
		size_t i;

		if (depth >= KUMOREF_MAX_DEPTH)
			return NULL;
		out = json_array();
		json_array_foreach(v, i, item) {
			json_t *c = sorted_copy(item, false, depth + 1);
			if (c == NULL) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, c);
		}
		return out;
	}
	return json_incref(v);
}

json_t *
kumoref_decode_value(const char *raw, size_t len)
{
	char *text, *bytes;
	size_t n = 0, blen;
	json_t *doc, *marker, *out = NULL;

	if (raw == NULL)
		return NULL;
	text = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		if (!ascii_ws((unsigned char)raw[i]))
			text[n++] = raw[i];
	text[n] = '\0';
	if (!b64_strict_valid(text, n)) {
		free(text);
		return NULL;
	}
	bytes = b64_decode(text, n, &blen);
	free(text);

	/* serde_json accepts "\u0000" in strings; jansson only when told. */
	doc = json_loadb(bytes, blen, JSON_ALLOW_NUL, NULL);
	free(bytes);
	if (doc == NULL)
		return NULL;
	marker = json_object_get(doc, KUMOREF_MARKER_KEY);
	if (json_is_object(doc) && json_is_string(marker) &&
	    json_string_length(marker) == strlen(KUMOREF_MARKER) &&
	    memcmp(json_string_value(marker), KUMOREF_MARKER,
	    strlen(KUMOREF_MARKER)) == 0)
		out = sorted_copy(doc, true, 0);
	json_decref(doc);
	return out;
}

json_t *
kumoref_scan_fields(const struct fieldblock *fb)
{
	json_t *found = NULL;

	for (size_t i = 0; i < fb->n && found == NULL; i++) {
		const struct field *f = &fb->v[i];
		/* Names are lowercased: "x-" stands for "X-" and "x-". */
		if (strncmp(f->name, "x-", 2) != 0 || f->raw == NULL)
			continue;
		found = kumoref_decode_value(f->raw, strlen(f->raw));
	}
	return found;
}

json_t *
kumoref_scan_headers(const char *headers, size_t len)
{
	struct fieldblock fb;
	json_t *found;

	/* A block that does not parse has no trace, as in KumoMTA. */
	if (headers == NULL || fields_parse_raw(headers, len, &fb) != 0)
		return NULL;
	found = kumoref_scan_fields(&fb);
	fields_free(&fb);
	return found;
}

/*
 * The value has no trailing line break: when the base64 text is an exact
 * multiple of 75 characters KumoMTA's folded value ends with CRLF and it
 * adds none after it, which is the same bytes as this value followed by
 * the CRLF that ends every header line.
 */
char *
kumoref_encode(const json_t *payload)
{
	json_t *obj = json_object();
	const char *k;
	size_t kl, n;
	json_t *v;
	char *text, *b64;
	struct buf out = { 0 };

	/* The marker wins over a payload key of the same name: decodable. */
	if (json_is_object(payload))
		json_object_keylen_foreach((json_t *)payload, k, kl, v)
			json_object_setn_nocheck(obj, k, kl, v);
	json_object_set_new(obj, KUMOREF_MARKER_KEY,
	    json_string(KUMOREF_MARKER));
	text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	if (text == NULL)
		fatalx("kumoref: cannot serialise the trace payload");
	/* serde_json's bytes: KumoMTA must decode the same trace. */
	json_lowercase_escapes(text, strlen(text));
	b64 = b64_encode(text, strlen(text), &n);
	free(text);
	if (n <= KUMOREF_FOLD)
		return b64;
	for (size_t i = 0; i < n; i += KUMOREF_FOLD) {
		if (i > 0)
			buf_puts(&out, "\r\n\t");
		buf_append(&out, b64 + i, n - i < KUMOREF_FOLD ?
		    n - i : KUMOREF_FOLD);
	}
	free(b64);
	return buf_steal(&out);
}
