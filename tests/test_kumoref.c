/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kumoref.c - the X-KumoRef trace header: KumoMTA's encoder examples
 * (reference §4.1), round trips, and every way a value can fail to decode
 * (§4.3), each with its defined result.
 */
#include "testutil.h"

#include <jansson.h>

#include "kumoref.h"

/* The example of reference §4.1 and of KumoMTA's webhook test. */
#define RECIP_B64 \
	"eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20ifQ=="
/* The documentation's example: {"recipient":"test@example.com"}. */
#define TEST_B64 \
	"eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoidGVzdEBleGFtcGxlLmNvbSJ9"

static json_t *
load(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

	if (v == NULL)
		fail_msg("bad test JSON %s: %s", text, err.text);
	return v;
}

/* The compact text of v (NULL stays "NULL"), for whole-value comparisons. */
static char *
dump(const json_t *v)
{
	if (v == NULL)
		return xstrdup("NULL");
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void
assert_json(json_t *v, const char *expect)
{
	char *s = dump(v);

	assert_string_equal(s, expect);
	free(s);
	if (v != NULL)
		json_decref(v);
}

static json_t *
decode(const char *value)
{
	return kumoref_decode_value(value, strlen(value));
}

static json_t *
scan(const char *headers)
{
	return kumoref_scan_headers(headers, strlen(headers));
}

static char *
encode_text(const char *payload)
{
	json_t *p = load(payload);
	char *s = kumoref_encode(p);

	json_decref(p);
	return s;
}

/* Plain base64 for building test values (standard alphabet, padded). */
static char *
b64(const char *s, size_t n)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		*o++ = a[v >> 18 & 63];
		*o++ = a[v >> 12 & 63];
		*o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? a[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static json_t *
decode_json_text(const char *json)
{
	char *v = b64(json, strlen(json));
	json_t *t = decode(v);

	free(v);
	return t;
}

/* --- encoding (reference §4.1) ----------------------------------------- */

static void
encode_single_recipient(void **state)
{
	(void)state;
	char *s = encode_text("{\"recipient\":\"recip@example.com\"}");

	assert_string_equal(s, RECIP_B64);
	free(s);
}

static void
encode_folds_after_75(void **state)
{
	(void)state;
	/* test_apply_supplemental_header.lua with meta woot = "woot". */
	char *s = encode_text(
	    "{\"recipient\":\"recip@example.com\",\"woot\":\"woot\"}");

	assert_string_equal(s,
	    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20iLCJ3b290Ijoid29"
	    "\r\n\tvdCJ9");
	free(s);
}

static void
encode_sorts_keys(void **state)
{
	(void)state;
	/*
	 * {"Zed":null,"_@_":"\\_/","big":1,"recipient":[...]}: '_' sorts
	 * after upper case and before lower case; 100 characters, one fold.
	 */
	char *s = encode_text("{\"recipient\":[\"a@x.example\",\"b@x.example\"],"
	    "\"big\":1,\"Zed\":null}");

	assert_string_equal(s,
	    "eyJaZWQiOm51bGwsIl9AXyI6IlxcXy8iLCJiaWciOjEsInJlY2lwaWVudCI6WyJhQHguZXhhbXB"
	    "\r\n\tsZSIsImJAeC5leGFtcGxlIl19");
	free(s);
}

static void
encode_control_escape_lowercase(void **state)
{
	(void)state;
	/* serde_json writes "\u001f"; jansson alone would write "\u001F". */
	char *s = encode_text("{\"recipient\":\"a\\u001fb\"}");

	assert_string_equal(s,
	    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoiYVx1MDAxZmIifQ==");
	free(s);
}

static void
encode_exact_multiple_of_75(void **state)
{
	(void)state;
	/* 225 JSON bytes -> 300 base64 characters: 4 chunks, no trailing CRLF. */
	char local[183];
	memset(local, 'r', 182);
	local[182] = '\0';
	char *payload = xasprintf("{\"recipient\":\"%s@example.com\"}", local);
	char *s = encode_text(payload);

	assert_int_equal(strlen(s), 300 + 3 * 3);
	for (int i = 0; i < 3; i++)
		assert_memory_equal(s + 75 * (i + 1) + 3 * i, "\r\n\t", 3);
	assert_string_equal(s + 300 + 9 - 20, "ZXhhbXBsZS5jb20ifQ==");
	json_t *back = decode(s);
	char *expect = xasprintf("{\"recipient\":\"%s@example.com\"}", local);
	assert_json(back, expect);
	free(expect);
	free(payload);
	free(s);
}

static void
encode_empty_and_marker_payloads(void **state)
{
	(void)state;
	char *s = encode_text("{}");

	/* {"_@_":"\\_/"} */
	assert_string_equal(s, "eyJfQF8iOiJcXF8vIn0=");
	free(s);
	/* A payload key named like the marker cannot spoil the marker. */
	s = encode_text("{\"_@_\":\"other\"}");
	assert_string_equal(s, "eyJfQF8iOiJcXF8vIn0=");
	free(s);
	/* Not an object: only the marker is encoded. */
	s = kumoref_encode(NULL);
	assert_string_equal(s, "eyJfQF8iOiJcXF8vIn0=");
	free(s);
}

/* --- decoding (reference §4.3) ----------------------------------------- */

static void
decode_examples(void **state)
{
	(void)state;
	assert_json(decode(RECIP_B64), "{\"recipient\":\"recip@example.com\"}");
	/* No padding needed: 60 characters. */
	assert_json(decode(TEST_B64), "{\"recipient\":\"test@example.com\"}");
	/* The marker alone gives an empty object, not "no trace". */
	assert_json(decode("eyJfQF8iOiJcXF8vIn0="), "{}");
	/* Non-ASCII UTF-8 in the payload survives. */
	assert_json(decode(
	    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoiY2Fmw6lAZXhhbXBsZS5jb20ifQ=="),
	    "{\"recipient\":\"caf\xc3\xa9@example.com\"}");
}

static void
decode_whitespace_removed(void **state)
{
	(void)state;
	/* Folding with CRLF TAB, spaces, a form feed: all ASCII whitespace. */
	assert_json(decode(" eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50Ijoi\r\n\t"
	    "dGVzdEBleGFtcGxl \f LmNvbSJ9\r\n"),
	    "{\"recipient\":\"test@example.com\"}");
	/* Rust's is_ascii_whitespace does not include vertical tab. */
	assert_null(decode("eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50Ijoi\v"
	    "dGVzdEBleGFtcGxlLmNvbSJ9"));
	assert_null(decode(""));
	assert_null(decode(" \t\r\n"));
	assert_null(kumoref_decode_value(NULL, 0));
}

static void
decode_sorts_keys(void **state)
{
	(void)state;
	/* serde_json's map is a BTreeMap: the trace is logged sorted. */
	assert_json(decode(
	    "eyJfQF8iOiJcXF8vIiwieiI6MSwiYSI6eyJ5Ijp0cnVlLCJiIjpbMix7ImQiOm51bGws"
	    "ImMiOiJ4In1dfX0="),
	    "{\"a\":{\"b\":[2,{\"c\":\"x\",\"d\":null}],\"y\":true},\"z\":1}");
}

static void
decode_invalid_base64(void **state)
{
	(void)state;
	/* Bad alphabet: '*', the URL-safe '-' and '_', a non-ASCII byte. */
	assert_null(decode("eyJf*F8iOiJcXF8vIn0="));
	assert_null(decode("eyJf-F8iOiJcXF8vIn0="));
	assert_null(decode("eyJf_F8iOiJcXF8vIn0="));
	assert_null(decode("eyJf\xc3\xa9" "8iOiJcXF8vIn0="));
	/* Missing padding. */
	assert_null(decode(
	    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20ifQ"));
	assert_null(decode(
	    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20ifQ="));
	/* '=' in the middle, data after padding, three '='. */
	assert_null(decode("eyJf=F8iOiJcXF8vIn0="));
	assert_null(decode("eyJfQF8iOiJcXF8vIn0=eyJm"));
	assert_null(decode("eyJfQF8iOiJcXF8vI==="));
	assert_null(decode("===="));
	/* Non-zero unused bits in the last symbol (libb64 would drop them). */
	assert_null(decode(
	    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20ifR=="));
	assert_null(decode("eyJfQF8iOiJcXF8vIn1="));
}

static void
decode_invalid_json(void **state)
{
	(void)state;
	/* Valid base64, not JSON: "{not json". */
	assert_null(decode("e25vdCBqc29u"));
	/* JSON followed by garbage. */
	assert_null(decode("eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoieCJ9IHRyYWlsaW5n"));
	/* Not UTF-8 inside a string. */
	assert_null(decode_json_text("{\"_@_\":\"\\\\_/\",\"r\":\"\xff\"}"));
}

static void
decode_marker_required(void **state)
{
	(void)state;
	/* No marker. */
	assert_null(decode("eyJyZWNpcGllbnQiOiJ4In0="));
	/* Wrong marker "/_\". */
	assert_null(decode("eyJfQF8iOiIvX1xcIiwicmVjaXBpZW50IjoieCJ9"));
	/* Marker not a string. */
	assert_null(decode("eyJfQF8iOjEsInJlY2lwaWVudCI6IngifQ=="));
	/* Marker with a trailing NUL: not equal to \_/. */
	assert_null(decode("eyJfQF8iOiJcXF8vXHUwMDAwIiwicmVjaXBpZW50IjoieCJ9"));
	/* Marker not at the top level. */
	assert_null(decode_json_text("{\"a\":{\"_@_\":\"\\\\_/\"}}"));
}

static void
decode_non_object(void **state)
{
	(void)state;
	/* ["_@_","\\_/"] and "\\_/" */
	assert_null(decode("WyJfQF8iLCJcXF8vIl0="));
	assert_null(decode("IlxcXy8i"));
	assert_null(decode_json_text("null"));
	assert_null(decode_json_text("42"));
}

static void
decode_nesting_limit(void **state)
{
	(void)state;
	struct buf b = { 0 };

	/* 127 nested containers (serde_json's limit) decode; 128 do not. */
	for (int depth = 126; depth <= 127; depth++) {
		buf_puts(&b, "{\"_@_\":\"\\\\_/\",\"a\":");
		for (int i = 0; i < depth; i++)
			buf_putc(&b, '[');
		for (int i = 0; i < depth; i++)
			buf_putc(&b, ']');
		buf_putc(&b, '}');
		json_t *t = decode_json_text(b.data);
		if (depth == 126) {
			assert_non_null(t);
			json_decref(t);
		} else
			assert_null(t);
		buf_free(&b);
	}
	/* Far beyond any limit: refused, no stack exhaustion. */
	for (int i = 0; i < 100000; i++)
		buf_putc(&b, '[');
	assert_null(decode_json_text(b.data));
	buf_free(&b);
}

static void
round_trips(void **state)
{
	(void)state;
	static const char *payloads[] = {
		"{\"recipient\":\"recip@example.com\"}",
		"{\"recipient\":\"recip@example.com\",\"woot\":\"woot\"}",
		"{\"Zed\":null,\"big\":1,\"recipient\":[\"a@x\",\"b@x\"]}",
		"{\"extra\":{\"token\":\"abc\"},\"recipient\":\"recip@example.com\"}",
		"{\"nul\":\"a\\u0000b\",\"recipient\":\"\\u00e9\\u2028/\"}",
		"{}",
	};

	for (size_t i = 0; i < nitems(payloads); i++) {
		char *s = encode_text(payloads[i]);
		json_t *back = decode(s);
		json_t *orig = load(payloads[i]);
		assert_non_null(back);
		assert_true(json_equal(back, orig));
		json_decref(orig);
		/* As a header, found by the scan in a returned header block. */
		char *hdr = xasprintf("From: <a@example.com>\r\nX-KumoRef: %s\r\n"
		    "Subject: x\r\n", s);
		json_t *found = scan(hdr);
		assert_non_null(found);
		assert_true(json_equal(found, back));
		json_decref(found);
		json_decref(back);
		free(hdr);
		free(s);
	}
}

/* --- scanning a header block ------------------------------------------- */

static void
scan_folded_crlf_tab(void **state)
{
	(void)state;
	/* KumoMTA's supplemental_trace_folded_header test. */
	assert_json(scan("From: <somespammer@example.net>\r\n"
	    "X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50Ijoi\r\n"
	    "\tdGVzdEBleGFtcGxlLmNvbSJ9\r\n"
	    "Subject: Earn money\r\n"),
	    "{\"recipient\":\"test@example.com\"}");
	/* The same with LF line ends and a space fold. */
	assert_json(scan("From: <somespammer@example.net>\n"
	    "X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50Ijoi\n"
	    " dGVzdEBleGFtcGxlLmNvbSJ9\n"),
	    "{\"recipient\":\"test@example.com\"}");
}

static void
scan_any_x_header(void **state)
{
	(void)state;
	/* A custom header name works when it starts with X- or x-. */
	assert_json(scan("x-my-trace: " TEST_B64 "\n"),
	    "{\"recipient\":\"test@example.com\"}");
	assert_json(scan("X-Feedback-Ref: " TEST_B64 "\n"),
	    "{\"recipient\":\"test@example.com\"}");
	/* Anything else is never decoded. */
	assert_null(scan("KumoRef: " TEST_B64 "\nY-KumoRef: " TEST_B64 "\n"));
	assert_null(scan("Subject: hello\n"));
}

static void
scan_later_header_wins_after_failures(void **state)
{
	(void)state;
	/*
	 * Headers that are not base64, not JSON, or not ours come first; the
	 * first X- header that decodes is the trace.
	 */
	assert_json(scan("X-Mailer: Foo 1.0\n"
	    "X-Bad-Pad: eyJfQF8iOiJcXF8vIn0\n"
	    "X-Not-Json: e25vdCBqc29u\n"
	    "X-No-Marker: eyJyZWNpcGllbnQiOiJ4In0=\n"
	    "X-KumoRef: " RECIP_B64 "\n"
	    "X-Second: " TEST_B64 "\n"),
	    "{\"recipient\":\"recip@example.com\"}");
}

static void
scan_unparseable_block(void **state)
{
	(void)state;
	/* Not a header block at all: no trace, as KumoMTA. */
	assert_null(scan("this is not a header\nX-KumoRef: " TEST_B64 "\n"));
	assert_null(scan(""));
	assert_null(kumoref_scan_headers(NULL, 0));
}

static void
huge_values(void **state)
{
	(void)state;
	/*
	 * A 256 KB recipient: encoded, folded over 4,600 lines, found again.
	 * Past every line and field limit, so nothing about it depends on
	 * the size; larger adds only time under AddressSanitizer, whose
	 * realloc copies GMime's header buffer, grown a line at a time.
	 */
	size_t big = 256 * 1024;
	char *local = xmalloc(big + 1);
	memset(local, 'a', big);
	local[big] = '\0';
	json_t *p = json_pack("{s:s}", "recipient", local);
	char *s = kumoref_encode(p);
	json_t *back = decode(s);
	assert_non_null(back);
	assert_true(json_equal(back, p));
	json_decref(back);
	char *hdr = xasprintf("X-KumoRef: %s\r\n\r\n", s);
	json_t *found = scan(hdr);
	assert_non_null(found);
	assert_true(json_equal(found, p));
	json_decref(found);
	free(hdr);
	free(s);
	json_decref(p);

	/* 16 MB of base64 alphabet with one bad byte at the end. */
	size_t n = 16 * 1024 * 1024;
	char *junk = xmalloc(n + 1);
	memset(junk, 'A', n);
	junk[n - 1] = '!';
	junk[n] = '\0';
	assert_null(kumoref_decode_value(junk, n));
	/* Valid base64 of 12 MB of zero bytes: not JSON. */
	junk[n - 1] = 'A';
	assert_null(kumoref_decode_value(junk, n));
	free(junk);
	free(local);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encode_single_recipient),
		cmocka_unit_test(encode_folds_after_75),
		cmocka_unit_test(encode_sorts_keys),
		cmocka_unit_test(encode_control_escape_lowercase),
		cmocka_unit_test(encode_exact_multiple_of_75),
		cmocka_unit_test(encode_empty_and_marker_payloads),
		cmocka_unit_test(decode_examples),
		cmocka_unit_test(decode_whitespace_removed),
		cmocka_unit_test(decode_sorts_keys),
		cmocka_unit_test(decode_invalid_base64),
		cmocka_unit_test(decode_invalid_json),
		cmocka_unit_test(decode_marker_required),
		cmocka_unit_test(decode_non_object),
		cmocka_unit_test(decode_nesting_limit),
		cmocka_unit_test(round_trips),
		cmocka_unit_test(scan_folded_crlf_tab),
		cmocka_unit_test(scan_any_x_header),
		cmocka_unit_test(scan_later_header_wins_after_failures),
		cmocka_unit_test(scan_unparseable_block),
		cmocka_unit_test(huge_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
