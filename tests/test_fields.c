/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_fields.c - header-field blocks: unstructured values, groups of a
 * delivery-status body, "type; value" fields.
 */
#include "testutil.h"

#include <gmime/gmime.h>

#include "fields.h"
#include "message.h"
#include "util.h"

static void
test_parse_values(void **state)
{
	struct fieldblock fb;
	const char *text =
	    "Reporting-MTA: dns; cs.utk.edu\r\n"
	    "Diagnostic-Code: smtp;  550 'arathib@vnet.IBM.COM' is not a\r\n"
	    "  registered\tgateway user\r\n"
	    "Subject: =?utf-8?q?h=C3=A9llo?= =?utf-8?q?_world?= \r\n"
	    "X-Empty:\r\n"
	    "X-Postfix-Queue-ID : 897DAC0\r\n"
	    "ACTION: failed\r\n"
	    "Action: delayed\r\n";

	(void)state;
	assert_int_equal(fields_parse(text, strlen(text), &fb), 0);
	assert_int_equal(fb.n, 7);
	assert_string_equal(fb.v[0].name, "reporting-mta");
	assert_string_equal(fb.v[0].value, "dns; cs.utk.edu");
	assert_string_equal(fb.v[0].raw, " dns; cs.utk.edu");
	assert_true(fb.v[0].utf8);
	assert_string_equal(fb.v[1].name, "diagnostic-code");
	/* Every whitespace run, folded or not, becomes one space. */
	assert_string_equal(fb.v[1].value,
	    "smtp; 550 'arathib@vnet.IBM.COM' is not a registered gateway user");
	assert_string_equal(fb.v[1].raw,
	    " smtp;  550 'arathib@vnet.IBM.COM' is not a\r\n  registered\tgateway user");
	assert_string_equal(fb.v[2].name, "subject");
	assert_string_equal(fb.v[2].value, "h\xc3\xa9llo world");
	assert_string_equal(fb.v[3].name, "x-empty");
	assert_string_equal(fb.v[3].value, "");
	assert_string_equal(fb.v[4].name, "x-postfix-queue-id");
	assert_string_equal(fb.v[4].value, "897DAC0");

	assert_string_equal(fields_get(&fb, "action")->value, "failed");
	assert_int_equal(fields_count(&fb, "action"), 2);
	assert_int_equal(fields_count(&fb, "status"), 0);
	assert_null(fields_get(&fb, "status"));
	fields_free(&fb);
	assert_int_equal(fb.n, 0);
	assert_null(fb.v);
}

static void
test_parse_non_utf8(void **state)
{
	struct fieldblock fb;
	const char *text = "X-Lat: caf\xe9  ok\nX-Ok: =?iso-8859-1?q?caf=E9?=\n";

	(void)state;
	assert_int_equal(fields_parse(text, strlen(text), &fb), 0);
	assert_int_equal(fb.n, 2);
	/* Stray bytes become U+FFFD, never a Latin-1 guess. */
	assert_string_equal(fb.v[0].value, "caf\xef\xbf\xbd ok");
	assert_string_equal(fb.v[0].raw, " caf\xe9  ok");
	assert_false(fb.v[0].utf8);
	/* An encoded word names its charset, so that one is converted. */
	assert_string_equal(fb.v[1].value, "caf\xc3\xa9");
	assert_true(fb.v[1].utf8);
	fields_free(&fb);
}

static void
test_parse_block_edges(void **state)
{
	struct fieldblock fb;
	const char *stop = "A: 1\nB: 2\n\nC: 3\n";

	(void)state;
	/* Only the block up to the first empty line. */
	assert_int_equal(fields_parse(stop, strlen(stop), &fb), 0);
	assert_int_equal(fb.n, 2);
	assert_string_equal(fb.v[1].name, "b");
	assert_string_equal(fb.v[1].value, "2");
	fields_free(&fb);

	/* No trailing newline, not NUL-terminated. */
	char nonul[] = { 'A', ':', ' ', 'x', 'X' };
	assert_int_equal(fields_parse(nonul, 4, &fb), 0);
	assert_int_equal(fb.n, 1);
	assert_string_equal(fb.v[0].value, "x");
	fields_free(&fb);

	/* Empty input: an empty block. */
	assert_int_equal(fields_parse("", 0, &fb), 0);
	assert_int_equal(fb.n, 0);
	fields_free(&fb);
	assert_int_equal(fields_parse("\n\nA: 1\n", 6, &fb), 0);
	assert_int_equal(fb.n, 0);
	fields_free(&fb);

	/* Not a header block. */
	assert_int_equal(fields_parse("garbage line\nA: 1\n", 18, &fb), -1);
	assert_int_equal(fb.n, 0);
	assert_int_equal(fields_parse(" A: 1\n", 6, &fb), -1);
	assert_int_equal(fields_parse("[original message goes here]\n", 29,
	    &fb), -1);

	/* NUL bytes and binary junk: defined, no crash. */
	const char junk[] = "A: a\0b\nB\0: c\n\x01\x02: \xff\n";
	if (fields_parse(junk, sizeof(junk) - 1, &fb) == 0) {
		for (size_t i = 0; i < fb.n; i++) {
			assert_true(utf8_valid(fb.v[i].value,
			    strlen(fb.v[i].value)));
			assert_true(utf8_valid(fb.v[i].name,
			    strlen(fb.v[i].name)));
		}
		fields_free(&fb);
	}
}

static void
test_split_groups(void **state)
{
	struct span *g;
	const char *text =
	    "\n \nReporting-MTA: dns; x\n\n\n"
	    "Final-Recipient: rfc822;a@b\nAction: failed\n"
	    " \t \n"
	    "Final-Recipient: rfc822;c@d\r\n\r\n\r\n"
	    "Final-Recipient: rfc822;e@f";

	(void)state;
	size_t n = fields_split_groups(text, strlen(text), &g);
	assert_int_equal(n, 4);
	assert_int_equal(g[0].n, strlen("Reporting-MTA: dns; x\n"));
	assert_memory_equal(g[0].p, "Reporting-MTA: dns; x\n", g[0].n);
	assert_int_equal(g[1].n,
	    strlen("Final-Recipient: rfc822;a@b\nAction: failed\n"));
	assert_memory_equal(g[1].p,
	    "Final-Recipient: rfc822;a@b\nAction: failed\n", g[1].n);
	assert_int_equal(g[2].n, strlen("Final-Recipient: rfc822;c@d\r\n"));
	assert_memory_equal(g[2].p, "Final-Recipient: rfc822;c@d\r\n", g[2].n);
	assert_int_equal(g[3].n, strlen("Final-Recipient: rfc822;e@f"));
	free(g);

	assert_int_equal(fields_split_groups("", 0, &g), 0);
	assert_null(g);
	assert_int_equal(fields_split_groups("\n\n \n", 4, &g), 0);
	free(g);
	assert_int_equal(fields_split_groups("A: 1", 4, &g), 1);
	assert_int_equal(g[0].n, 4);
	free(g);

	/* A folded line stays inside its group. */
	const char *folded = "A: 1\n  more\nB: 2\n\nC: 3\n";
	assert_int_equal(fields_split_groups(folded, strlen(folded), &g), 2);
	assert_int_equal(g[0].n, strlen("A: 1\n  more\nB: 2\n"));
	free(g);
}

/* fields_parse_groups gives each group what fields_parse gives it alone. */
static void
check_groups_as_alone(const char *text, size_t want_groups)
{
	struct span *groups;
	size_t n = fields_split_groups(text, strlen(text), &groups);
	struct fieldblock *got = calloc(n, sizeof(*got));
	int *rc = calloc(n, sizeof(*rc));
	int failed = 0;

	assert_int_equal(n, want_groups);
	int nfailed = fields_parse_groups(groups, n, got, rc, NULL);
	for (size_t i = 0; i < n; i++) {
		struct fieldblock alone;
		int arc = fields_parse(groups[i].p, groups[i].n, &alone);

		assert_int_equal(rc[i], arc);
		failed += arc != 0;
		assert_int_equal(got[i].n, alone.n);
		for (size_t j = 0; j < alone.n; j++) {
			assert_string_equal(got[i].v[j].name, alone.v[j].name);
			assert_string_equal(got[i].v[j].value, alone.v[j].value);
			assert_string_equal(got[i].v[j].raw, alone.v[j].raw);
			assert_int_equal(got[i].v[j].utf8, alone.v[j].utf8);
		}
		fields_free(&alone);
		fields_free(&got[i]);
	}
	assert_int_equal(nfailed, failed);
	free(got);
	free(rc);
	free(groups);
}

/* The same for blocks given one by one, raw_only[i] as fields_parse_raw. */
static void
check_blocks_as_alone(const char *const *texts, const bool *raw_only,
    size_t n)
{
	struct span blocks[8];
	struct fieldblock got[8];
	int rc[8];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		blocks[i] = (struct span){ texts[i], strlen(texts[i]) };
	fields_parse_groups(blocks, n, got, rc, raw_only);
	for (size_t i = 0; i < n; i++) {
		struct fieldblock alone;
		int arc = raw_only[i] ?
		    fields_parse_raw(blocks[i].p, blocks[i].n, &alone) :
		    fields_parse(blocks[i].p, blocks[i].n, &alone);

		assert_int_equal(rc[i], arc);
		assert_int_equal(got[i].n, alone.n);
		for (size_t j = 0; j < alone.n; j++) {
			assert_string_equal(got[i].v[j].name, alone.v[j].name);
			assert_string_equal(got[i].v[j].raw, alone.v[j].raw);
			if (raw_only[i]) {
				assert_null(got[i].v[j].value);
				assert_null(alone.v[j].value);
			} else
				assert_string_equal(got[i].v[j].value,
				    alone.v[j].value);
		}
		fields_free(&alone);
		fields_free(&got[i]);
	}
}

static void
test_parse_groups(void **state)
{
	struct span *groups;
	struct fieldblock fb[3];
	int rc[3];
	const char *postfix =
	    "Reporting-MTA: dns; mx.example.net\n"
	    "X-Postfix-Queue-ID: 4F1A2B3C4D\n"
	    "\n"
	    "Final-Recipient: rfc822; nobody@example.net\n"
	    "Action: failed\n"
	    "Status: 5.1.1\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: Recipient\n"
	    "    address rejected\n"
	    "\n"
	    "Final-Recipient: rfc822; other@example.net\n"
	    "Action: delayed\n";

	(void)state;
	assert_int_equal(fields_split_groups(postfix, strlen(postfix),
	    &groups), 3);
	assert_int_equal(fields_parse_groups(groups, 3, fb, rc, NULL), 0);
	free(groups);
	assert_int_equal(rc[0], 0);
	assert_int_equal(rc[1], 0);
	assert_int_equal(rc[2], 0);
	assert_int_equal(fb[0].n, 2);
	assert_string_equal(fb[0].v[0].name, "reporting-mta");
	assert_string_equal(fb[0].v[0].value, "dns; mx.example.net");
	assert_string_equal(fb[0].v[1].value, "4F1A2B3C4D");
	assert_int_equal(fb[1].n, 4);
	assert_string_equal(fb[1].v[0].value, "rfc822; nobody@example.net");
	assert_string_equal(fb[1].v[3].name, "diagnostic-code");
	assert_string_equal(fb[1].v[3].value, "smtp; 550 5.1.1 "
	    "<nobody@example.net>: Recipient address rejected");
	assert_string_equal(fb[1].v[3].raw, " smtp; 550 5.1.1 "
	    "<nobody@example.net>: Recipient\n    address rejected");
	assert_int_equal(fb[2].n, 2);
	assert_string_equal(fb[2].v[1].name, "action");
	assert_string_equal(fb[2].v[1].value, "delayed");
	for (int i = 0; i < 3; i++)
		fields_free(&fb[i]);

	check_groups_as_alone(postfix, 3);
	/* A group that starts folded would continue the one before it. */
	check_groups_as_alone("Reporting-MTA: dns; a\n\n  folded: start\n"
	    "Action: failed\n", 2);
	/* Lines that are not fields, first in a group and inside one. */
	check_groups_as_alone("Reporting-MTA: dns; a\nnot a field\n"
	    "Arrival-Date: x\n\nFinal-Recipient: rfc822; a@b\n", 2);
	check_groups_as_alone("Reporting-MTA: dns; a\n\nno colon here\n"
	    "Final-Recipient: rfc822; a@b\n\nAction: failed\n", 3);
	/* CRLF, no final line break, bytes that are not UTF-8. */
	check_groups_as_alone("Reporting-MTA: dns; a\r\n\r\n"
	    "Final-Recipient: rfc822; a@b\r\nX-Note: caf\xe9\r\n\r\n"
	    "Action: failed", 3);
	/* A group that makes GMime build a multipart. */
	check_groups_as_alone("Reporting-MTA: dns; a\n\nContent-Type: "
	    "multipart/mixed; boundary=x\nAction: failed\n\n"
	    "Status: 5.0.0\n", 3);
	/* Encoded words and a From-line lookalike. */
	check_groups_as_alone("From someone Mon Jan 1\nReporting-MTA: x\n\n"
	    "Subject: =?utf-8?q?h=C3=A9llo?=\nFinal-Recipient: a\n", 2);

	/* Blocks without a final line break, and raw-only blocks after. */
	static const bool raw3[] = { false, false, true };
	const char *dsn[] = { "Reporting-MTA: dns; a\n",
	    "Final-Recipient: rfc822; a@b\nAction: failed",
	    "X-KumoRef: eyJ9\nFrom: a@b\n\nbody\n" };
	check_blocks_as_alone(dsn, raw3, 3);
	struct span sp[3];
	for (int i = 0; i < 3; i++)
		sp[i] = (struct span){ dsn[i], strlen(dsn[i]) };
	assert_int_equal(fields_parse_groups(sp, 3, fb, rc, raw3), 0);
	assert_int_equal(fb[1].n, 2);
	assert_string_equal(fb[1].v[1].value, "failed");
	assert_int_equal(fb[2].n, 2);
	assert_string_equal(fb[2].v[0].name, "x-kumoref");
	assert_string_equal(fb[2].v[0].raw, " eyJ9");
	assert_null(fb[2].v[0].value);
	for (int i = 0; i < 3; i++)
		fields_free(&fb[i]);
	/* A last line that stops before any ':' fails its block alone. */
	static const bool raw2[] = { false, false };
	const char *cut[] = { "A: 1\ngarbage", "B: 2\n" };
	check_blocks_as_alone(cut, raw2, 2);
	const char *folded[] = { "A: 1\n  more", "B: 2\n" };
	check_blocks_as_alone(folded, raw2, 2);
	const char *cr[] = { "A: 1\r", "B: 2\n" };
	check_blocks_as_alone(cr, raw2, 2);
	const char *bad[] = { "A: 1\nbad name: x", "B: 2\n" };
	check_blocks_as_alone(bad, raw2, 2);

	/* Many groups. */
	struct buf many = { 0 };
	for (int i = 0; i < 40; i++)
		buf_printf(&many, "Final-Recipient: rfc822; r%d@example.net\n"
		    "Action: failed\nStatus: 5.1.%d\n\n", i, i % 10);
	char *text = buf_steal(&many);
	check_groups_as_alone(text, 40);
	free(text);
}

static void
test_split_typed(void **state)
{
	char *t, *v;

	(void)state;
	assert_true(split_typed("dns; cs.utk.edu", &t, &v));
	assert_string_equal(t, "dns");
	assert_string_equal(v, "cs.utk.edu");
	free(t);
	free(v);
	/* Only the first ';' splits. */
	assert_true(split_typed(" smtp ;550 a; b ", &t, &v));
	assert_string_equal(t, "smtp");
	assert_string_equal(v, "550 a; b");
	free(t);
	free(v);
	assert_true(split_typed(";", &t, &v));
	assert_string_equal(t, "");
	assert_string_equal(v, "");
	free(t);
	free(v);
	assert_false(split_typed("no type here", &t, &v));
	assert_null(t);
	assert_null(v);
}

/*
 * The fields of an entity GMime parsed within a message are those
 * fields_parse gives for its header block: names, raw values, values;
 * the raw variant leaves every value NULL.
 */
static void
test_fields_of_object(void **state)
{
	const char *part_headers =
	    "Content-Type: text/rfc822-headers;\n charset=us-ascii\n"
	    "Content-Description: =?utf-8?q?R=C3=BCckl=C3=A4ufer?=\n"
	    "X-Folded: one\n\ttwo   three\n";
	char *text = xasprintf("From: a@example.org\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; boundary=\"b\"\n\n"
	    "--b\n%s\nSubject: inner\n\n--b--\n", part_headers);
	struct message m;
	struct fieldblock a, b, c;
	(void)state;

	message_load(&m, text, strlen(text));
	assert_non_null(m.mime);
	GMimeObject *top = m.mime;
	assert_true(GMIME_IS_MULTIPART(top));
	GMimeObject *part = g_mime_multipart_get_part(GMIME_MULTIPART(top), 0);
	assert_non_null(part);

	assert_int_equal(fields_parse(part_headers, strlen(part_headers), &a), 0);
	fields_of_object(part, &b);
	fields_of_object_raw(part, &c);
	assert_int_equal(a.n, 3);
	assert_int_equal(b.n, a.n);
	assert_int_equal(c.n, a.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_string_equal(b.v[i].name, a.v[i].name);
		assert_string_equal(b.v[i].raw, a.v[i].raw);
		assert_string_equal(b.v[i].value, a.v[i].value);
		assert_int_equal(b.v[i].utf8, a.v[i].utf8);
		assert_string_equal(c.v[i].name, a.v[i].name);
		assert_string_equal(c.v[i].raw, a.v[i].raw);
		assert_null(c.v[i].value);
	}
	assert_string_equal(b.v[1].value, "R\xc3\xbc" "ckl\xc3\xa4" "ufer");
	assert_string_equal(b.v[2].raw, " one\n\ttwo   three");
	assert_string_equal(b.v[2].value, "one two three");
	fields_free(&a);
	fields_free(&b);
	fields_free(&c);
	message_free(&m);
	free(text);
}

/*
 * A block of more than MESSAGE_MAX_HEADER_FIELDS fields (a decoded
 * delivery-status part or returned headers GMime never saw) is refused
 * before GMime's parser; its neighbours in a group parse still parse.
 */
static void
test_field_count_limit(void **state)
{
	(void)state;
	struct buf b = { 0 };
	struct fieldblock fb;

	for (int i = 0; i < MESSAGE_MAX_HEADER_FIELDS; i++)
		buf_printf(&b, "X-F%d: v\r\n", i);
	assert_int_equal(fields_parse(b.data, b.len, &fb), 0);
	assert_int_equal(fb.n, MESSAGE_MAX_HEADER_FIELDS);
	assert_string_equal(fb.v[999].name, "x-f999");
	assert_string_equal(fb.v[999].value, "v");
	fields_free(&fb);
	buf_puts(&b, "X-Last: v\r\n");
	assert_int_equal(fields_parse(b.data, b.len, &fb), -1);
	assert_int_equal(fb.n, 0);

	struct span groups[3] = {
		{ "Reporting-MTA: dns; a.example\r\n", 31 },
		{ b.data, b.len },
		{ "Final-Recipient: rfc822; u@example.com\r\n", 40 },
	};
	struct fieldblock out[3];
	int rc[3];
	assert_int_equal(fields_parse_groups(groups, 3, out, rc, NULL), 1);
	assert_int_equal(rc[0], 0);
	assert_int_equal(rc[1], -1);
	assert_int_equal(rc[2], 0);
	assert_int_equal(out[0].n, 1);
	assert_string_equal(out[0].v[0].value, "dns; a.example");
	assert_int_equal(out[1].n, 0);
	assert_int_equal(out[2].n, 1);
	assert_string_equal(out[2].v[0].value, "rfc822; u@example.com");
	for (int i = 0; i < 3; i++)
		fields_free(&out[i]);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_values),
		cmocka_unit_test(test_field_count_limit),
		cmocka_unit_test(test_parse_non_utf8),
		cmocka_unit_test(test_parse_block_edges),
		cmocka_unit_test(test_split_groups),
		cmocka_unit_test(test_parse_groups),
		cmocka_unit_test(test_split_typed),
		cmocka_unit_test(test_fields_of_object),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
