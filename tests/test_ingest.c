/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ingest.c - the whole pipeline on real messages: which records come
 * out, in which order, with every field.
 */
#include "testutil.h"

#include "ingest.h"

#define ID	"0b0e3a5ec4b611f0b1d65254007a0f3e"
#define NODE	"5f0c8a52-8f7e-4d0e-9b8e-2a4b9c1d0e7f"
#define SESSION	"c6a7e2f0-3b1d-4c5e-8f9a-0b1c2d3e4f50"
/* created 2026-11-22T10:00:00.5Z, received one second later */
#define CREATED	1795341600
#define NOW	1795341601

static const struct timespec created = { CREATED, 500000000 };
static const struct timespec now = { NOW, 0 };

static const char *const rcpts[] = { "bounce@Example.COM" };
static const struct envelope env = {
	.sender = "",
	.recipients = rcpts,
	.nrecipients = 1,
	.peer_name = "mx.example.net",
	.peer_addr = "192.0.2.9",
	.session_id = SESSION,
};

static void
run(const char *rel, const struct ingest_config *cfg,
    struct ingest_result *res, size_t *wire)
{
	size_t len;
	char *data = corpus_read(rel, &len);
	struct message m;

	message_load(&m, data, len);
	*wire = m.wire_size;
	ingest_message(cfg, &env, &m, ID, &created, &now, res);
	message_free(&m);
	free(data);
}

static void
assert_record(const struct record *r, const char *expected)
{
	char *s = record_dump(r, false);

	if (strcmp(s, expected) != 0)
		fail_msg("record differs:\n got: %s\nwant: %s", s, expected);
	free(s);
}

#define TAIL_FIELDS \
	"\"egress_pool\":null,\"egress_source\":null,\"source_address\":null,"

static char *
reception_json(const char *type, size_t size, const char *feedback,
    const char *detail)
{
	return xasprintf("{\"type\":\"%s\",\"id\":\"" ID "\",\"sender\":\"\","
	    "\"recipient\":\"bounce@Example.COM\",\"queue\":\"example.com\","
	    "\"site\":\"\",\"size\":%zu,\"response\":{\"code\":250,"
	    "\"enhanced_code\":null,\"content\":\"\",\"command\":null},"
	    "\"peer_address\":{\"name\":\"mx.example.net\",\"addr\":\"192.0.2.9\"},"
	    "\"timestamp\":1795341601,\"event_time\":\"2026-11-22T10:00:01Z\","
	    "\"created\":1795341600,\"created_time\":\"2026-11-22T10:00:00.500Z\","
	    "\"num_attempts\":0,\"bounce_classification\":\"Uncategorized\","
	    TAIL_FIELDS "\"feedback_report\":%s,\"meta\":{},\"headers\":{},"
	    "\"delivery_protocol\":null,\"reception_protocol\":\"ESMTP\","
	    "\"nodeid\":\"" NODE "\",\"session_id\":\"" SESSION "\"%s}",
	    type, size, feedback, detail);
}

static char *
oob_json(const char *rcpt, int code, const char *enh, const char *content,
    const char *peer, long ts, const char *ts_text, const char *detail)
{
	return xasprintf("{\"type\":\"OOB\",\"id\":\"" ID "\","
	    "\"sender\":\"bounce@Example.COM\",\"recipient\":\"%s\","
	    "\"queue\":\"example.com\",\"site\":\"\",\"size\":0,"
	    "\"response\":{\"code\":%d,\"enhanced_code\":%s,\"content\":\"%s\","
	    "\"command\":null},\"peer_address\":{\"name\":\"%s\","
	    "\"addr\":\"192.0.2.9\"},\"timestamp\":%ld,\"event_time\":\"%s\","
	    "\"created\":1795341600,\"created_time\":\"2026-11-22T10:00:00.500Z\","
	    "\"num_attempts\":0,\"bounce_classification\":\"Uncategorized\","
	    TAIL_FIELDS "\"feedback_report\":null,\"meta\":{},\"headers\":{},"
	    "\"delivery_protocol\":null,\"reception_protocol\":\"ESMTP\","
	    "\"nodeid\":\"" NODE "\",\"session_id\":\"" SESSION "\","
	    "\"oob_detail\":%s}",
	    rcpt, code, enh, content, peer, ts, ts_text, detail);
}

static struct ingest_config
default_cfg(void)
{
	struct ingest_config cfg = {
		.log_arf = true,
		.log_oob = true,
		.nodeid = NODE,
		.reception_protocol = "ESMTP",
	};
	return cfg;
}

static void
test_dsn_records(void **state)
{
	struct ingest_config cfg = default_cfg();
	struct ingest_result res;
	size_t wire;
	char *want;

	(void)state;
	run("kumomta/rfc3464/2.eml", &cfg, &res, &wire);
	assert_int_equal(res.kind, REPORT_BOUNCE);
	assert_string_equal(res.decoder, "rfc3464");
	assert_int_equal(res.nrecords, 3);
	want = reception_json("Reception", wire, "null", "");
	assert_record(&res.records[0], want);
	free(want);
	want = oob_json("arathib@vnet.ibm.com", 550,
	    "{\"class\":5,\"subject\":0,\"detail\":0}",
	    "'arathib@vnet.IBM.COM' is not a registered gateway user",
	    "cs.utk.edu", NOW, "2026-11-22T10:00:01Z",
	    "{\"decoder\":\"rfc3464\",\"action\":\"failed\","
	    "\"status_comment\":\"(permanent failure)\","
	    "\"remote_mta\":\"vnet.ibm.com\",\"diagnostic_type\":\"smtp\","
	    "\"trace\":null,\"reason\":\"userunknown\",\"hard_bounce\":true,"
	    "\"returned_message\":null}");
	assert_record(&res.records[1], want);
	free(want);
	want = oob_json("wsnell@sdcc13.ucsd.edu", 550,
	    "{\"class\":5,\"subject\":0,\"detail\":0}", "user unknown",
	    "cs.utk.edu", NOW, "2026-11-22T10:00:01Z",
	    "{\"decoder\":\"rfc3464\",\"action\":\"failed\","
	    "\"status_comment\":null,\"remote_mta\":\"sdcc13.ucsd.edu\","
	    "\"diagnostic_type\":\"smtp\",\"trace\":null,"
	    "\"reason\":\"userunknown\",\"hard_bounce\":true,"
	    "\"returned_message\":null}");
	assert_record(&res.records[2], want);
	free(want);
	ingest_result_free(&res);

	/* --all: the delayed recipient too, in document order. */
	cfg.all_actions = true;
	run("kumomta/rfc3464/2.eml", &cfg, &res, &wire);
	assert_int_equal(res.nrecords, 4);
	want = oob_json("johnh@hpnjld.njd.hp.com", 550,
	    "{\"class\":4,\"subject\":0,\"detail\":0}", "",
	    "cs.utk.edu", NOW, "2026-11-22T10:00:01Z",
	    "{\"decoder\":\"rfc3464\",\"action\":\"delayed\","
	    "\"status_comment\":\"(hpnjld.njd.jp.com: host name lookup failure)\","
	    "\"remote_mta\":null,\"diagnostic_type\":null,\"trace\":null,"
	    "\"reason\":\"onhold\",\"hard_bounce\":false,"
	    "\"returned_message\":null}");
	assert_record(&res.records[2], want);
	free(want);
	ingest_result_free(&res);
}

static void
test_dsn_last_attempt(void **state)
{
	struct ingest_config cfg = default_cfg();
	struct ingest_result res;
	size_t wire;

	(void)state;
	run("kumomta/rfc3464/1.eml", &cfg, &res, &wire);
	assert_int_equal(res.nrecords, 2);
	char *want = oob_json("louisl@larry.slip.umd.edu", 426,
	    "{\"class\":4,\"subject\":0,\"detail\":0}", "connection timed out",
	    "cs.utk.edu", 773615749, "1994-07-07T21:15:49Z",
	    "{\"decoder\":\"rfc3464\",\"action\":\"failed\","
	    "\"status_comment\":null,\"remote_mta\":null,"
	    "\"diagnostic_type\":\"smtp\",\"trace\":null,"
	    "\"reason\":\"networkerror\",\"hard_bounce\":false,"
	    "\"returned_message\":null}");
	assert_record(&res.records[1], want);
	free(want);
	ingest_result_free(&res);

	/* A delay warning is a report with no OOB record. */
	run("kumomta/rfc3464/4.eml", &cfg, &res, &wire);
	assert_int_equal(res.kind, REPORT_BOUNCE);
	assert_int_equal(res.nrecords, 1);
	assert_int_equal(res.records[0].type, REC_RECEPTION);
	ingest_result_free(&res);
}

static void
test_arf_record(void **state)
{
	struct ingest_config cfg = default_cfg();
	struct ingest_result res;
	size_t wire;

	(void)state;
	run("kumomta/rfc5965/1.eml", &cfg, &res, &wire);
	assert_int_equal(res.kind, REPORT_FEEDBACK);
	assert_int_equal(res.nrecords, 1);
	char *want = reception_json("Feedback", wire,
	    "{\"feedback_type\":\"abuse\",\"user_agent\":\"SomeGenerator/1.0\","
	    "\"version\":\"1\",\"arrival_date\":null,\"incidents\":null,"
	    "\"original_envelope_id\":null,\"original_mail_from\":null,"
	    "\"reporting_mta\":null,\"source_ip\":null,"
	    "\"authentication_results\":[],\"original_rcpto_to\":[],"
	    "\"reported_domain\":[],\"reported_uri\":[],\"extensions\":{},"
	    "\"original_message\":\"Received: from mailserver.example.net\\n"
	    "    (mailserver.example.net [192.0.2.1])\\n"
	    "    by example.com with ESMTP id M63d4137594e46;\\n"
	    "    Thu, 08 Mar 2005 14:00:00 -0400\\n"
	    "From: <somespammer@example.net>\\nTo: <Undisclosed Recipients>\\n"
	    "Subject: Earn money\\nMIME-Version: 1.0\\nContent-type: text/plain\\n"
	    "Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net\\n"
	    "Date: Thu, 02 Sep 2004 12:31:03 -0500\\n\\n"
	    "Spam Spam Spam\\nSpam Spam Spam\\nSpam Spam Spam\\nSpam Spam Spam\\n\","
	    "\"supplemental_trace\":null}",
	    ",\"oob_detail\":{\"decoder\":\"arf\"}");
	assert_record(&res.records[0], want);
	free(want);
	ingest_result_free(&res);

	/* With log_arf off the report is just received mail. */
	cfg.log_arf = false;
	run("kumomta/rfc5965/1.eml", &cfg, &res, &wire);
	assert_int_equal(res.kind, REPORT_NONE);
	assert_int_equal(res.nrecords, 1);
	assert_int_equal(res.records[0].type, REC_RECEPTION);
	ingest_result_free(&res);
}

static void
test_non_report(void **state)
{
	struct ingest_config cfg = default_cfg();
	struct ingest_result res;
	size_t wire;

	(void)state;
	run("sisimai/not-bounces/is-not-bounce-01.eml", &cfg, &res, &wire);
	assert_int_equal(res.kind, REPORT_NONE);
	assert_null(res.decoder);
	assert_int_equal(res.nrecords, 1);
	char *want = reception_json("Reception", wire, "null", "");
	assert_record(&res.records[0], want);
	free(want);
	ingest_result_free(&res);

	/* A DSN with log_oob off is not decoded. */
	cfg.log_oob = false;
	run("kumomta/rfc3464/2.eml", &cfg, &res, &wire);
	assert_int_equal(res.kind, REPORT_NONE);
	assert_int_equal(res.nrecords, 1);
	ingest_result_free(&res);
}

static void
test_meta_and_headers(void **state)
{
	struct ingest_config cfg = default_cfg();
	struct ingest_result res;
	static const char *const metas[] = { "received_from", "tls", "x_*" };
	static const char *const hdrs[] = { "subject", "content-*", "x-missing" };

	(void)state;
	struct envelope e = env;
	e.conn_meta = json_pack("{s:s,s:n,s:s,s:i,s:s}", "received_from",
	    "192.0.2.9:4321", "tls", "x_a", "1", "x_b", 2, "hostname", "mx");
	cfg.meta_keys = metas;
	cfg.nmeta_keys = nitems(metas);
	cfg.header_names = hdrs;
	cfg.nheader_names = nitems(hdrs);

	size_t len;
	char *data = corpus_read("kumomta/rfc3464/5.eml", &len);
	struct message m;
	message_load(&m, data, len);
	ingest_message(&cfg, &e, &m, ID, &created, &now, &res);
	assert_int_equal(res.nrecords, 2);
	for (size_t i = 0; i < res.nrecords; i++) {
		char *meta = json_dump_compact(res.records[i].meta);
		assert_string_equal(meta,
		    "{\"received_from\":\"192.0.2.9:4321\",\"x_a\":\"1\",\"x_b\":2}");
		free(meta);
		char *h = json_dump_compact(res.records[i].headers);
		assert_string_equal(h,
		    "{\"Subject\":\"Mail revenu en erreur / Undelivered Mail "
		    "Returned to Sender\",\"Content-Type\":\"multipart/report; "
		    "report-type=delivery-status; "
		    "boundary=\\\"897DAC0.1738168617/mx-by.bbox.fr\\\"\","
		    "\"Content-Transfer-Encoding\":\"8bit\"}");
		free(h);
	}
	ingest_result_free(&res);
	message_free(&m);
	free(data);
	json_decref(e.conn_meta);
}

static void
test_queue_name(void **state)
{
	(void)state;
	char *q = queue_for_recipient("Bounce@Bounce.Example.COM");
	assert_string_equal(q, "bounce.example.com");
	free(q);
	q = queue_for_recipient("postmaster");
	assert_string_equal(q, "");
	free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsn_records),
		cmocka_unit_test(test_dsn_last_attempt),
		cmocka_unit_test(test_arf_record),
		cmocka_unit_test(test_non_report),
		cmocka_unit_test(test_meta_and_headers),
		cmocka_unit_test(test_queue_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
