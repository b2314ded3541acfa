/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_message.c - loading messages: line ends, GMime parse, byte-exact
 * spans of the top-level parts.
 */
#include "testutil.h"

#include "message.h"

static void
test_line_endings(void **state)
{
	struct message m;

	(void)state;
	/* CRLF, LF and CR-only give the same text. */
	const char *forms[] = {
		"Subject: x\r\nTo: a@b\r\n\r\nbody\r\n",
		"Subject: x\nTo: a@b\n\nbody\n",
		"Subject: x\rTo: a@b\r\rbody\r",
	};
	for (size_t i = 0; i < nitems(forms); i++) {
		message_load(&m, forms[i], strlen(forms[i]));
		assert_string_equal(m.text, "Subject: x\nTo: a@b\n\nbody\n");
		assert_int_equal(m.len, 25);
		assert_int_equal(m.wire_size, 29);
		assert_non_null(m.mime);
		assert_string_equal(message_subject(&m), "x");
		message_free(&m);
	}
}

static void
test_children_spans(void **state)
{
	struct message m;
	struct raw_entity *kids;
	size_t len;
	char *data = corpus_read("kumomta/rfc3464/1.eml", &len);

	(void)state;
	message_load(&m, data, len);
	size_t n = message_children(&m, &kids);
	assert_int_equal(n, 3);
	assert_int_equal(kids[0].headers_len, 0);
	assert_memory_equal(kids[1].headers,
	    "content-type: message/delivery-status\n", kids[1].headers_len);
	assert_int_equal(kids[2].body_len, strlen("[original message goes here]\n\n"));
	assert_memory_equal(kids[2].body, "[original message goes here]\n\n",
	    kids[2].body_len);
	free(kids);

	/* GMime sees the same parts. */
	GMimeObject *top = m.mime;
	assert_true(GMIME_IS_MULTIPART(top));
	assert_int_equal(g_mime_multipart_get_count(GMIME_MULTIPART(top)), 3);
	GMimeObject *ds = g_mime_multipart_get_part(GMIME_MULTIPART(top), 1);
	assert_true(mime_is(ds, "MESSAGE", "Delivery-Status"));
	assert_false(mime_is(ds, "message", "rfc822"));
	size_t dlen;
	char *decoded = mime_part_decoded(ds, &dlen);
	assert_non_null(decoded);
	assert_non_null(strstr(decoded, "Reporting-MTA: dns; cs.utk.edu\n"));
	assert_int_equal(strlen(decoded), dlen);
	free(decoded);
	message_free(&m);
	free(data);
}

static void
test_transfer_decoding(void **state)
{
	struct message m;
	const char *text =
	    "Content-Type: multipart/report; boundary=b\n\n"
	    "--b\nContent-Type: message/delivery-status\n"
	    "Content-Transfer-Encoding: base64\n\n"
	    "UmVwb3J0aW5nLU1UQTogZG5zOyB4Cg==\n"
	    "--b--\n";

	(void)state;
	message_load(&m, text, strlen(text));
	GMimeObject *top = m.mime;
	GMimeObject *ds = g_mime_multipart_get_part(GMIME_MULTIPART(top), 0);
	size_t dlen;
	char *decoded = mime_part_decoded(ds, &dlen);
	assert_string_equal(decoded, "Reporting-MTA: dns; x\n");
	free(decoded);
	message_free(&m);
}

static void
test_unterminated_multipart(void **state)
{
	struct message m;
	struct raw_entity *kids;
	const char *text =
	    "Content-Type: multipart/mixed; boundary=\"zz\"\n\n"
	    "preamble\n--zz\nContent-Type: text/plain\n\nhello\n--zz  \n\n"
	    "no headers\n--zzz\nstill inside\n";

	(void)state;
	message_load(&m, text, strlen(text));
	size_t n = message_children(&m, &kids);
	/* "--zzz" is not a delimiter for "zz"; the cut-off part is kept. */
	assert_int_equal(n, 2);
	assert_memory_equal(kids[0].body, "hello\n", kids[0].body_len);
	assert_int_equal(kids[1].headers_len, 0);
	assert_int_equal(kids[1].body_len, strlen("no headers\n--zzz\nstill inside\n"));
	free(kids);
	message_free(&m);

	/* Not multipart: no children. */
	message_load(&m, "Subject: x\n\nhi\n", 15);
	assert_int_equal(message_children(&m, &kids), 0);
	assert_null(kids);
	message_free(&m);

	/* Empty input still loads. */
	message_load(&m, "", 0);
	assert_int_equal(m.len, 0);
	message_free(&m);
}

/*
 * A multipart without a boundary: no children, and the Content-Type is
 * left as received. GMime's own boundary getter would set a boundary and
 * re-encode the field, which for a parameter name of 72 bytes and a long
 * value never ends (found by fuzz_arf: 13 GB in a minute).
 */
static void
test_multipart_without_boundary(void **state)
{
	struct message m;
	struct raw_entity *kids;
	char name[73], value[121], text[512];

	(void)state;
	memset(name, 'n', 72);
	name[72] = '\0';
	memset(value, 'v', 120);
	value[120] = '\0';
	snprintf(text, sizeof(text), "Content-Type: multipart/report; "
	    "report-type=feedback-report;\n %s=%s\n\n--x\n\nbody\n--x--\n",
	    name, value);
	message_load(&m, text, strlen(text));
	assert_true(GMIME_IS_MULTIPART(m.mime));
	assert_int_equal(message_children(&m, &kids), 0);
	assert_null(kids);
	assert_null(g_mime_object_get_content_type_parameter(m.mime,
	    "boundary"));
	assert_string_equal(g_mime_object_get_content_type_parameter(m.mime,
	    name), value);
	message_free(&m);
}

/*
 * A header field longer than 100 KiB keeps its first 100 KiB, as Postfix's
 * header_size_limit; the fields after it and the body are untouched.
 */
static void
test_long_field_capped(void **state)
{
	struct message m;
	struct buf b = { 0 };

	(void)state;
	buf_puts(&b, "To: a@b.example\r\nX-Long: start\r\n");
	for (int i = 0; i < 30000; i++)
		buf_puts(&b, " continued\r\n");		/* 12 bytes a line */
	buf_puts(&b, "Subject: after\r\n\r\nbody\r\n");
	message_load(&m, b.data, b.len);
	assert_int_equal(m.wire_size, b.len);
	const char *x = strstr(m.text, "X-Long:");
	const char *subj = strstr(m.text, "\nSubject: after\n\nbody\n");
	assert_non_null(x);
	assert_non_null(subj);
	/* The field, its LF included, is exactly the limit. */
	assert_int_equal(subj + 1 - x, 100 * 1024);
	assert_int_equal(m.len, strlen("To: a@b.example\n") + 100 * 1024 +
	    strlen("Subject: after\n\nbody\n"));
	assert_string_equal(message_subject(&m), "after");
	message_free(&m);
	buf_free(&b);
}

/* text made of n copies of unit, NUL-terminated; caller frees. */
static char *
repeat(const char *unit, size_t n, size_t *lenp)
{
	size_t u = strlen(unit);
	char *t = xmalloc(u * n + 1);

	for (size_t i = 0; i < n; i++)
		memcpy(t + i * u, unit, u);
	t[u * n] = '\0';
	*lenp = u * n;
	return t;
}

/*
 * message_fields_within: field lines counted per block (an empty line
 * ends one), with CRLF, LF and lone CR line ends; continuation lines and
 * lines that are not fields do not count and do not end a block.
 */
static void
test_fields_within(void **state)
{
	(void)state;
	size_t len;
	char *t = repeat("a:b\r\n", 1000, &len);
	assert_true(message_fields_within(t, len, 1000));
	assert_false(message_fields_within(t, len, 999));
	free(t);
	t = repeat("a:b\n", 1001, &len);
	assert_false(message_fields_within(t, len, 1000));
	free(t);
	t = repeat("a:b\r", 1001, &len);
	assert_false(message_fields_within(t, len, 1000));
	assert_true(message_fields_within(t, len, 1001));
	free(t);
	/* Blocks of 600 between empty lines: each one within 600. */
	t = repeat("X-Name : v\r\n", 600, &len);
	struct buf b = { 0 };
	for (int i = 0; i < 5; i++) {
		buf_append(&b, t, len);
		buf_append(&b, "\r\n", 2);
	}
	free(t);
	assert_true(message_fields_within(b.data, b.len, 600));
	assert_false(message_fields_within(b.data, b.len, 599));
	buf_free(&b);
	/* Folded lines are one field; text lines neither count nor reset. */
	t = repeat(" folded\r\n", 5000, &len);
	buf_append(&b, "a:b\r\n", 5);
	buf_append(&b, t, len);
	assert_true(message_fields_within(b.data, b.len, 1));
	free(t);
	buf_free(&b);
	t = repeat("a:b\nno colon here\n:x\n\tc:d\n", 300, &len);
	assert_true(message_fields_within(t, len, 300));
	assert_false(message_fields_within(t, len, 299));
	free(t);
	assert_true(message_fields_within("", 0, 1));
}

/*
 * message_load refuses, without parsing, a header block over the limit
 * anywhere (here a MIME part's) and more delimiter lines than
 * MESSAGE_MAX_PARTS parts need; message_load_max takes another limit.
 */
static void
test_load_limits(void **state)
{
	(void)state;
	struct message m;
	struct buf b = { 0 };
	size_t len;
	char *t = repeat("X-P: v\n", 1001, &len);

	buf_puts(&b, "Subject: x\nContent-Type: multipart/mixed; "
	    "boundary=\"B\"\n\n--B\n");
	buf_append(&b, t, len);
	buf_puts(&b, "\nbody\n--B--\n");
	free(t);
	assert_int_equal(message_load(&m, b.data, b.len), -1);
	assert_true(m.too_many_fields);
	assert_false(m.too_many_parts);
	assert_null(m.mime);
	assert_string_equal(m.text, "");
	message_free(&m);
	assert_int_equal(message_load_max(&m, b.data, b.len, 1001), 0);
	assert_false(m.too_many_fields);
	assert_non_null(m.mime);
	size_t depth, parts;
	message_mime_shape(&m, &depth, &parts);
	assert_int_equal(parts, 2);
	message_free(&m);
	buf_free(&b);

	buf_puts(&b, "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n");
	t = repeat("--B\r\n\r\n", 2 * MESSAGE_MAX_PARTS + 2, &len);
	buf_append(&b, t, len);
	free(t);
	assert_int_equal(message_load(&m, b.data, b.len), -1);
	assert_true(m.too_many_parts);
	assert_null(m.mime);
	message_free(&m);
	/* As many as MESSAGE_MAX_PARTS parts need still load. */
	b.len = 0;
	buf_puts(&b, "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n");
	t = repeat("--B\r\n\r\n", 2 * MESSAGE_MAX_PARTS, &len);
	buf_append(&b, t, len);
	free(t);
	assert_int_equal(message_load(&m, b.data, b.len), 0);
	assert_false(m.too_many_parts);
	assert_non_null(m.mime);
	message_free(&m);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_endings),
		cmocka_unit_test(test_fields_within),
		cmocka_unit_test(test_load_limits),
		cmocka_unit_test(test_children_spans),
		cmocka_unit_test(test_transfer_decoding),
		cmocka_unit_test(test_unterminated_multipart),
		cmocka_unit_test(test_multipart_without_boundary),
		cmocka_unit_test(test_long_field_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
