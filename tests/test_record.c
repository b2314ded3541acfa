/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_record.c - the JSON form of records: KumoMTA's field order, types
 * and serde_json's text.
 */
#include "testutil.h"

#include "record.h"

static void
fill_oob(struct record *r)
{
	record_init(r, REC_OOB);
	record_set(&r->id, "1d86d0e8c4a211f0a2ba5254007a0f3e");
	record_set(&r->sender, "bounce@example.com");
	record_add_recipient(r, "louisl@larry.slip.umd.edu");
	record_set(&r->queue, "example.com");
	record_set_response(r, 426, "connection timed out", NULL);
	record_set_enhanced(r, 4, 0, 0);
	r->has_peer = true;
	record_set(&r->peer_name, "cs.utk.edu");
	record_set(&r->peer_addr, "127.0.0.1");
	r->timestamp.tv_sec = 773615749;
	r->created.tv_sec = 1763856000;
	r->created.tv_nsec = 123456000;
	record_set(&r->reception_protocol, "ESMTP");
	record_set(&r->nodeid, "9e1b5a59-6d1b-4e4f-a8f7-3c5d2a1b0c9d");
}

static void
test_oob_record(void **state)
{
	struct record r;

	(void)state;
	fill_oob(&r);
	char *s = record_dump(&r, false);
	assert_string_equal(s,
	    "{\"type\":\"OOB\",\"id\":\"1d86d0e8c4a211f0a2ba5254007a0f3e\","
	    "\"sender\":\"bounce@example.com\","
	    "\"recipient\":\"louisl@larry.slip.umd.edu\","
	    "\"queue\":\"example.com\",\"site\":\"\",\"size\":0,"
	    "\"response\":{\"code\":426,\"enhanced_code\":{\"class\":4,"
	    "\"subject\":0,\"detail\":0},\"content\":\"connection timed out\","
	    "\"command\":null},"
	    "\"peer_address\":{\"name\":\"cs.utk.edu\",\"addr\":\"127.0.0.1\"},"
	    "\"timestamp\":773615749,\"event_time\":\"1994-07-07T21:15:49Z\","
	    "\"created\":1763856000,"
	    "\"created_time\":\"2025-11-23T00:00:00.123456Z\","
	    "\"num_attempts\":0,\"bounce_classification\":\"Uncategorized\","
	    "\"egress_pool\":null,\"egress_source\":null,"
	    "\"source_address\":null,\"feedback_report\":null,\"meta\":{},"
	    "\"headers\":{},\"delivery_protocol\":null,"
	    "\"reception_protocol\":\"ESMTP\","
	    "\"nodeid\":\"9e1b5a59-6d1b-4e4f-a8f7-3c5d2a1b0c9d\"}");
	free(s);

	/* oob_detail comes last, and only when not strict. */
	r.oob_detail = json_pack("{s:s}", "decoder", "rfc3464");
	record_set(&r.session_id, "b2f0c7e4-1111-4222-8333-944455556666");
	s = record_dump(&r, false);
	const char *tail = strstr(s, "\"nodeid\"");
	assert_non_null(tail);
	assert_string_equal(tail,
	    "\"nodeid\":\"9e1b5a59-6d1b-4e4f-a8f7-3c5d2a1b0c9d\","
	    "\"session_id\":\"b2f0c7e4-1111-4222-8333-944455556666\","
	    "\"oob_detail\":{\"decoder\":\"rfc3464\"}}");
	free(s);
	s = record_dump(&r, true);
	assert_null(strstr(s, "oob_detail"));
	free(s);
	record_free(&r);
}

static void
test_recipients_and_escaping(void **state)
{
	struct record r;

	(void)state;
	record_init(&r, REC_RECEPTION);
	/* No recipient is an empty array, several an array. */
	char *s = record_dump(&r, true);
	assert_non_null(strstr(s, "\"recipient\":[],"));
	assert_non_null(strstr(s, "\"peer_address\":null,"));
	free(s);
	record_add_recipient(&r, "a@example.com");
	record_add_recipient(&r, "b@example.com");
	/* serde_json: "/" unescaped, raw UTF-8, lower-case \u escapes. */
	record_set_response(&r, 550, "line one\r\nline/two\x01 caf\xc3\xa9", "DATA");
	r.response.has_enhanced = false;
	s = record_dump(&r, true);
	assert_non_null(strstr(s,
	    "\"recipient\":[\"a@example.com\",\"b@example.com\"],"));
	assert_non_null(strstr(s,
	    "\"response\":{\"code\":550,\"enhanced_code\":null,"
	    "\"content\":\"line one line/two\\u0001 caf\xc3\xa9\","
	    "\"command\":\"DATA\"},"));
	free(s);
	/* Invalid UTF-8 never makes a record unwritable. */
	record_set(&r.sender, "bad\xff@example.com");
	s = record_dump(&r, true);
	assert_non_null(strstr(s, "\"sender\":\"bad\xef\xbf\xbd@example.com\""));
	free(s);
	record_free(&r);
}

static void
test_single_line(void **state)
{
	struct response resp = { .code = 550, .has_enhanced = true, .cls = 5,
	    .subject = 1, .detail = 1, .content = "user\r\nunknown\rhere\nok" };

	(void)state;
	char *s = response_single_line(&resp);
	assert_string_equal(s, "550 5.1.1 user unknown here ok");
	free(s);
	resp.has_enhanced = false;
	resp.code = 250;
	resp.content = "";
	s = response_single_line(&resp);
	assert_string_equal(s, "250 ");
	free(s);
	/* One space per CRLF, lone CR or lone LF, wherever they are. */
	resp.content = "\nLF\n\rCR\r\r\nend\r";
	s = response_single_line(&resp);
	assert_string_equal(s, "250  LF  CR  end ");
	free(s);
}

static void
test_bytes_or_string(void **state)
{
	(void)state;
	json_t *v = json_bytes_or_string("abc\n", 4);
	char *s = json_dump_compact(v);
	assert_string_equal(s, "\"abc\\n\"");
	free(s);
	json_decref(v);
	v = json_bytes_or_string("\x80\xff", 2);
	s = json_dump_compact(v);
	assert_string_equal(s, "[128,255]");
	free(s);
	json_decref(v);
}

static void
test_type_names(void **state)
{
	(void)state;
	assert_string_equal(record_type_name(REC_TRANSIENT_FAILURE),
	    "TransientFailure");
	assert_string_equal(record_type_name(REC_OOB), "OOB");
	assert_string_equal(record_type_name(REC_DEFERRED_INJECTION_REBIND),
	    "DeferredInjectionRebind");
	assert_true(record_type_classified(REC_REJECTION));
	assert_true(record_type_classified(REC_FEEDBACK));
	assert_false(record_type_classified(REC_RECEPTION));
	assert_false(record_type_classified(REC_DELIVERY));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oob_record),
		cmocka_unit_test(test_recipients_and_escaping),
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_bytes_or_string),
		cmocka_unit_test(test_type_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
