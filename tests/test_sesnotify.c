/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sesnotify.c - Amazon SES notifications: bounces (the bare event
 * and the SNS-wrapped one from the Sisimai corpus, every field) and
 * complaints (the whole feedback_report object); the X-KumoRef of the
 * returned message; and what the decoders must leave alone.
 */
#include "testutil.h"

#include "kumoref.h"
#include "message.h"
#include "report.h"
#include "sesnotify.h"

static int
decode_data(const char *data, size_t len, struct report *r)
{
	struct message m;
	int rc;

	memset(r, 0, sizeof(*r));
	message_load(&m, data, len);
	rc = sesnotify_decode(&m, r);
	message_free(&m);
	return rc;
}

static void
check_simulator_bounce(const char *name, const char *mta, time_t when)
{
	struct report r;
	size_t len;
	char *rel = xasprintf("sisimai/maildir/%s", name);
	char *data = corpus_read(rel, &len);

	assert_int_equal(decode_data(data, len, &r), 1);
	assert_int_equal(r.kind, REPORT_BOUNCE);
	assert_string_equal(r.decoder, "ses");
	assert_int_equal(r.nbounces, 1);
	const struct bounce *b = &r.bounces[0];
	assert_string_equal(b->recipient, "bounce@simulator.amazonses.com");
	assert_string_equal(b->final_recipient,
	    "rfc822; bounce@simulator.amazonses.com");
	assert_null(b->original_recipient);
	assert_string_equal(b->action, "failed");
	assert_int_equal(b->code, 550);
	assert_true(b->has_status);
	assert_int_equal(b->cls, 5);
	assert_int_equal(b->subject, 1);
	assert_int_equal(b->detail, 1);
	assert_false(b->status_derived);
	assert_string_equal(b->content, "5.1.1 user unknown");
	assert_string_equal(b->reporting_mta, mta);
	assert_string_equal(b->diagnostic_type, "smtp");
	assert_true(b->has_last_attempt);
	assert_int_equal(b->last_attempt.tv_sec, when);
	assert_null(r.trace);
	report_free(&r);
	free(data);
	free(rel);
}

static void
test_corpus(void **state)
{
	(void)state;
	/* bounce.timestamp 2016-10-21T00:06:40.502Z and 06:58:02.245Z */
	check_simulator_bounce("lhost-amazonses-09.eml",
	    "a27-23.smtp-out.us-west-2.amazonses.com", 1477008400);
	check_simulator_bounce("lhost-amazonses-10.eml",
	    "a27-33.smtp-out.us-west-2.amazonses.com", 1477033082);
}

static char *
notification(const char *body)
{
	return xasprintf("From: SES <no-reply@sns.amazonaws.com>\r\n"
	    "To: ops@example.com\r\nSubject: AWS Notification Message\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n\r\n%s\r\n--\r\n"
	    "If you wish to stop receiving notifications ...\r\n", body);
}

static void
test_trace_and_recipients(void **state)
{
	struct report r;
	json_t *payload = json_pack("{s:s}", "campaign", "spring");
	char *ref = kumoref_encode(payload);
	/* The header value as SES reports it: one line. */
	struct buf flat = { 0 };
	for (const char *p = ref; *p != '\0'; p++)
		if (*p != '\r' && *p != '\n' && *p != '\t')
			buf_putc(&flat, *p);
	char *event = xasprintf("{\"notificationType\":\"Bounce\","
	    "\"bounce\":{\"bounceType\":\"Transient\",\"bouncedRecipients\":["
	    "{\"emailAddress\":\"a@x.example\",\"status\":\"4.2.2\","
	    "\"action\":\"failed\",\"diagnosticCode\":\"smtp; 452 4.2.2 full\"},"
	    "{\"emailAddress\":\"b@x.example\"},{\"status\":\"5.1.1\"}],"
	    "\"timestamp\":\"2024-01-02T03:04:05Z\",\"reportingMTA\":\"mx.ses\"},"
	    "\"mail\":{\"headers\":[{\"name\":\"Subject\",\"value\":\"hi\"},"
	    "{\"name\":\"X-KumoRef\",\"value\":\"%s\"}]}}", flat.data);
	/* Wrapped by SNS: the event is a JSON string. */
	json_t *sns = json_pack("{s:s,s:s}", "Type", "Notification",
	    "Message", event);
	char *body = json_dumps(sns, JSON_COMPACT);
	char *msg = notification(body);

	(void)state;
	assert_int_equal(decode_data(msg, strlen(msg), &r), 1);
	assert_int_equal(r.nbounces, 2);
	assert_string_equal(r.bounces[0].recipient, "a@x.example");
	assert_int_equal(r.bounces[0].code, 452);
	assert_string_equal(r.bounces[0].content, "4.2.2 full");
	assert_int_equal(r.bounces[0].cls, 4);
	assert_int_equal(r.bounces[0].subject, 2);
	assert_int_equal(r.bounces[0].detail, 2);
	assert_string_equal(r.bounces[0].reporting_mta, "mx.ses");
	assert_int_equal(r.bounces[0].last_attempt.tv_sec, 1704164645);
	/* No status, no diagnostic: the KumoMTA defaults. */
	assert_string_equal(r.bounces[1].recipient, "b@x.example");
	assert_string_equal(r.bounces[1].action, "failed");
	assert_int_equal(r.bounces[1].code, 550);
	assert_string_equal(r.bounces[1].content, "");
	assert_int_equal(r.bounces[1].cls, 5);
	assert_true(r.bounces[1].status_derived);
	char *trace = json_dumps(r.trace, JSON_COMPACT);
	assert_string_equal(trace, "{\"campaign\":\"spring\"}");
	free(trace);
	report_free(&r);
	free(msg);
	free(body);
	json_decref(sns);
	free(event);
	buf_free(&flat);
	free(ref);
	json_decref(payload);
}

static void
test_not_bounces(void **state)
{
	static const char *const bodies[] = {
		/* A complaint is not a bounce. */
		"{\"notificationType\":\"Complaint\",\"complaint\":{"
		"\"complainedRecipients\":[{\"emailAddress\":\"c@x\"}]}}",
		/* Not JSON, though it mentions a Bounce. */
		"{ Bounce notice: the message bounced }",
		/* JSON that is not an object. */
		"[\"Bounce\"]",
		/* A Bounce with no recipient list. */
		"{\"notificationType\":\"Bounce\",\"bounce\":{}}",
	};
	struct report r;

	(void)state;
	for (size_t i = 0; i < nitems(bodies); i++) {
		char *msg = notification(bodies[i]);
		assert_int_equal(decode_data(msg, strlen(msg), &r), 0);
		report_free(&r);
		free(msg);
	}
	/* Recipients that all lack an address: malformed. */
	char *msg = notification("{\"notificationType\":\"Bounce\",\"bounce\":"
	    "{\"bouncedRecipients\":[{\"status\":\"5.1.1\"}]}}");
	assert_int_equal(decode_data(msg, strlen(msg), &r), -1);
	report_free(&r);
	free(msg);
	/* The complaint in the corpus. */
	size_t len;
	char *data = corpus_read("sisimai/maildir/lhost-amazonses-11.eml", &len);
	assert_int_equal(decode_data(data, len, &r), 0);
	report_free(&r);
	free(data);
}

static int
decode_complaint(const char *data, size_t len, struct report *r)
{
	struct message m;
	int rc;

	memset(r, 0, sizeof(*r));
	message_load(&m, data, len);
	rc = sesnotify_decode_complaint(&m, r);
	message_free(&m);
	return rc;
}

static void
test_complaint(void **state)
{
	struct report r;
	size_t len;
	char *data = corpus_read("sisimai/maildir/lhost-amazonses-11.eml", &len);

	(void)state;
	assert_int_equal(decode_complaint(data, len, &r), 1);
	assert_int_equal(r.kind, REPORT_FEEDBACK);
	assert_string_equal(r.decoder, "ses");
	char *fr = json_dumps(r.feedback_report, JSON_COMPACT);
	assert_string_equal(fr, "{\"feedback_type\":\"abuse\","
	    "\"user_agent\":\"Amazon SES Mailbox Simulator\",\"version\":\"\","
	    "\"arrival_date\":null,\"incidents\":null,"
	    "\"original_envelope_id\":null,"
	    "\"original_mail_from\":\"kijitora@neko.example.jp\","
	    "\"reporting_mta\":null,\"source_ip\":null,"
	    "\"authentication_results\":[],"
	    "\"original_rcpto_to\":[\"complaint@simulator.amazonses.com\"],"
	    "\"reported_domain\":[],\"reported_uri\":[],"
	    "\"extensions\":{\"feedback-id\":[\"01010158992bed93-5747af89-"
	    "b2b1-11e6-be59-ed91bcff66c4-000000\"]},"
	    "\"original_message\":null,\"supplemental_trace\":null}");
	free(fr);
	report_free(&r);
	/* A bounce is not a complaint. */
	free(data);
	data = corpus_read("sisimai/maildir/lhost-amazonses-09.eml", &len);
	assert_int_equal(decode_complaint(data, len, &r), 0);
	report_free(&r);
	free(data);

	/* Every field SES can give, and the X-KumoRef of the mail. */
	json_t *payload = json_pack("{s:s}", "tenant", "t1");
	char *ref = kumoref_encode(payload);
	char *msg = notification("{\"notificationType\":\"Complaint\","
	    "\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":"
	    "\"a@x.example\"},{\"emailAddress\":\"b@x.example\"}],"
	    "\"complaintFeedbackType\":\"not-spam\","
	    "\"arrivalDate\":\"2024-01-02T03:04:05.009Z\"},"
	    "\"mail\":{\"source\":\"news@s.example\",\"sourceIp\":"
	    "\"192.0.2.7\",\"headers\":[{\"name\":\"x-kumoref\",\"value\":"
	    "\"PLACEHOLDER\"}]}}");
	/* The header value folded as KumoMTA writes it: SES keeps the folds. */
	struct buf b = { 0 };
	const char *ph = strstr(msg, "PLACEHOLDER");
	buf_append(&b, msg, (size_t)(ph - msg));
	for (const char *p = ref; *p != '\0'; p++)
		buf_puts(&b, *p == '\r' ? "\\r" : *p == '\n' ? "\\n" :
		    *p == '\t' ? "\\t" : (char[]){ *p, 0 });
	buf_puts(&b, ph + strlen("PLACEHOLDER"));
	assert_int_equal(decode_complaint(b.data, b.len, &r), 1);
	json_t *o = r.feedback_report;
	assert_string_equal(json_string_value(json_object_get(o,
	    "feedback_type")), "not-spam");
	assert_string_equal(json_string_value(json_object_get(o,
	    "user_agent")), "");
	assert_string_equal(json_string_value(json_object_get(o,
	    "arrival_date")), "2024-01-02T03:04:05Z");
	assert_string_equal(json_string_value(json_object_get(o,
	    "source_ip")), "192.0.2.7");
	fr = json_dumps(json_object_get(o, "original_rcpto_to"), JSON_COMPACT);
	assert_string_equal(fr, "[\"a@x.example\",\"b@x.example\"]");
	free(fr);
	fr = json_dumps(json_object_get(o, "supplemental_trace"), JSON_COMPACT);
	assert_string_equal(fr, "{\"tenant\":\"t1\"}");
	free(fr);
	report_free(&r);
	buf_free(&b);
	free(msg);
	free(ref);
	json_decref(payload);

	/* A Complaint event without its complaint object. */
	msg = notification("{\"notificationType\":\"Complaint\"}");
	assert_int_equal(decode_complaint(msg, strlen(msg), &r), 0);
	report_free(&r);
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_trace_and_recipients),
		cmocka_unit_test(test_not_bounces),
		cmocka_unit_test(test_complaint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
