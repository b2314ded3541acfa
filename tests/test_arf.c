/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_arf.c - feedback reports: KumoMTA's four ARF fixtures compared as
 * whole feedback_report objects (reference §3.2), oobd's tolerances, the
 * legacy JMRP and Apple formats, and the Sisimai ARF corpus.
 */
#include "testutil.h"

#include <jansson.h>

#include "arf.h"
#include "message.h"
#include "report.h"

/*
 * Expected objects, from KumoMTA's snapshots of the same fixtures
 * (crates/kumo-log-types/src/rfc5965.rs), in serialisation order.
 */
static const char expect_1[] =
	    "{\"feedback_type\":\"abuse\","
	    "\"user_agent\":\"SomeGenerator/1.0\","
	    "\"version\":\"1\","
	    "\"arrival_date\":null,"
	    "\"incidents\":null,"
	    "\"original_envelope_id\":null,"
	    "\"original_mail_from\":null,"
	    "\"reporting_mta\":null,"
	    "\"source_ip\":null,"
	    "\"authentication_results\":[],"
	    "\"original_rcpto_to\":[],"
	    "\"reported_domain\":[],"
	    "\"reported_uri\":[],"
	    "\"extensions\":{},"
	    "\"original_message\":\"Received: from mailserver.example.net\\n"
	    "    (mailserver.example.net [192.0.2.1])\\n"
	    "    by example.com with ESMTP id M63d4137594e46;\\n"
	    "    Thu, 08 Mar 2005 14:00:00 -0400\\n"
	    "From: <somespammer@example.net>\\n"
	    "To: <Undisclosed Recipients>\\n"
	    "Subject: Earn money\\n"
	    "MIME-Version: 1.0\\n"
	    "Content-type: text/plain\\n"
	    "Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net\\n"
	    "Date: Thu, 02 Sep 2004 12:31:03 -0500\\n"
	    "\\n"
	    "Spam Spam Spam\\n"
	    "Spam Spam Spam\\n"
	    "Spam Spam Spam\\n"
	    "Spam Spam Spam\\n"
	    "\","
	    "\"supplemental_trace\":null}";

static const char expect_2[] =
	    "{\"feedback_type\":\"abuse\","
	    "\"user_agent\":\"SomeGenerator/1.0\","
	    "\"version\":\"1\","
	    "\"arrival_date\":null,"
	    "\"incidents\":null,"
	    "\"original_envelope_id\":null,"
	    "\"original_mail_from\":\"somespammer@example.net\","
	    "\"reporting_mta\":{\"mta_type\":\"dns\",\"name\":\"mail.example."
	    "com\"},"
	    "\"source_ip\":\"192.0.2.1\","
	    "\"authentication_results\":[\"mail.example.com; spf=fail smtp.ma"
	    "il=somespammer@example.com\"],"
	    "\"original_rcpto_to\":[\"user@example.com\"],"
	    "\"reported_domain\":[\"example.net\"],"
	    "\"reported_uri\":[\"http://example.net/earn_money.html\",\"mailt"
	    "o:user@example.com\"],"
	    "\"extensions\":{\"removal-recipient\":[\"user@example.com\"]},"
	    "\"original_message\":\"From: <somespammer@example.net>\\n"
	    "Received: from mailserver.example.net (mailserver.example.net\\n"
	    "    [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;\\n"
	    "    Tue, 08 Mar 2005 14:00:00 -0400\\n"
	    "X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoidGVzdEBleGFtcGxlL"
	    "mNvbSJ9\\n"
	    "To: <Undisclosed Recipients>\\n"
	    "Subject: Earn money\\n"
	    "MIME-Version: 1.0\\n"
	    "Content-type: text/plain\\n"
	    "Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net\\n"
	    "Date: Thu, 02 Sep 2004 12:31:03 -0500\\n"
	    "\\n"
	    "Spam Spam Spam\\n"
	    "Spam Spam Spam\\n"
	    "Spam Spam Spam\\n"
	    "Spam Spam Spam\\n"
	    "\","
	    "\"supplemental_trace\":{\"recipient\":\"test@example.com\"}}";

static const char expect_3[] =
	    "{\"feedback_type\":\"abuse\","
	    "\"user_agent\":\"Yahoo!-Mail-Feedback/2.0\","
	    "\"version\":\"0.1\","
	    "\"arrival_date\":\"2023-12-14T16:16:15Z\","
	    "\"incidents\":null,"
	    "\"original_envelope_id\":null,"
	    "\"original_mail_from\":\"test1@example.com\","
	    "\"reporting_mta\":null,"
	    "\"source_ip\":null,"
	    "\"authentication_results\":[\"authentication result string is no"
	    "t available\"],"
	    "\"original_rcpto_to\":[\"user@example.com\"],"
	    "\"reported_domain\":[\"bounce.kumo.example.com\"],"
	    "\"reported_uri\":[],"
	    "\"extensions\":{},"
	    "\"original_message\":\"Date: Thu, 14 Dec 2023 16:16:14 +0000\\n"
	    "To: user@example.com\\n"
	    "Subject: test Thu, 14 Dec 2023 16:16:14 +0000\\n"
	    "\\n"
	    "This is a test mailing\\n"
	    "\\n"
	    "\","
	    "\"supplemental_trace\":null}";

static const char expect_4[] =
	    "{\"feedback_type\":\"abuse\","
	    "\"user_agent\":\"ReturnPathFBL/2.0\","
	    "\"version\":\"1\","
	    "\"arrival_date\":\"2023-12-13T19:03:30Z\","
	    "\"incidents\":null,"
	    "\"original_envelope_id\":null,"
	    "\"original_mail_from\":\"foo@bounce.example.com\","
	    "\"reporting_mta\":null,"
	    "\"source_ip\":\"x.x.x.x\","
	    "\"authentication_results\":[],"
	    "\"original_rcpto_to\":[\"cb4a01a48251d4765f489076aa81e2a4@comcas"
	    "t.net\"],"
	    "\"reported_domain\":[\"bounce.example.com\"],"
	    "\"reported_uri\":[],"
	    "\"extensions\":{\"abuse-type\":[\"complaint\"],\"source\":[\"Com"
	    "cast\"],\"subscription-link\":[\"https://fbl.returnpath.net/mana"
	    "ge/subscriptions/xxxx\"]},"
	    "\"original_message\":\"Date: Thu, 14 Dec 2023 16:16:14 +0000\\n"
	    "To: user@example.com\\n"
	    "Subject: test Thu, 14 Dec 2023 16:16:14 +0000\\n"
	    "\\n"
	    "This is a test mailing\\n"
	    "\\n"
	    "\","
	    "\"supplemental_trace\":null}";

static const char expect_apple[] =
	    "{\"feedback_type\":\"opt-out\","
	    "\"user_agent\":\"\","
	    "\"version\":\"\","
	    "\"arrival_date\":null,"
	    "\"incidents\":null,"
	    "\"original_envelope_id\":null,"
	    "\"original_mail_from\":null,"
	    "\"reporting_mta\":null,"
	    "\"source_ip\":null,"
	    "\"authentication_results\":[],"
	    "\"original_rcpto_to\":[],"
	    "\"reported_domain\":[],"
	    "\"reported_uri\":[],"
	    "\"extensions\":{},"
	    "\"original_message\":null,"
	    "\"supplemental_trace\":null}";

/* Load text as a received message and run the ARF decoder on it. */
static int
decode_text(const char *text, size_t len, struct report *r)
{
	struct message m;
	int rc;

	memset(r, 0, sizeof(*r));
	message_load(&m, text, len);
	rc = arf_decode(&m, r);
	message_free(&m);
	return rc;
}

static int
decode_str(const char *text, struct report *r)
{
	return decode_text(text, strlen(text), r);
}

static char *
dump(const json_t *v)
{
	if (v == NULL)
		return xstrdup("NULL");
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void
assert_json(const json_t *v, const char *expect)
{
	char *s = dump(v);

	assert_string_equal(s, expect);
	free(s);
}

/* The member key of r's feedback_report, compared as compact JSON. */
static void
assert_member(const struct report *r, const char *key, const char *expect)
{
	assert_non_null(r->feedback_report);
	assert_json(json_object_get(r->feedback_report, key), expect);
}

static void
check_fixture(const char *rel, const char *expect)
{
	struct report r;
	size_t len;
	char *text = corpus_read(rel, &len);

	assert_int_equal(decode_text(text, len, &r), 1);
	assert_int_equal(r.kind, REPORT_FEEDBACK);
	assert_string_equal(r.decoder, "arf");
	assert_json(r.feedback_report, expect);
	report_free(&r);
	free(text);
}

/* --- KumoMTA's fixtures ------------------------------------------------ */

static void
fixture_1_minimal(void **state)
{
	(void)state;
	check_fixture("kumomta/rfc5965/1.eml", expect_1);
}

static void
fixture_2_full(void **state)
{
	(void)state;
	struct report r;
	size_t len;
	char *text = corpus_read("kumomta/rfc5965/2.eml", &len);

	check_fixture("kumomta/rfc5965/2.eml", expect_2);
	/* The trace is also handed to the record builder as r->trace. */
	assert_int_equal(decode_text(text, len, &r), 1);
	assert_json(r.trace, "{\"recipient\":\"test@example.com\"}");
	report_free(&r);
	free(text);
}

static void
fixture_3_yahoo(void **state)
{
	(void)state;
	check_fixture("kumomta/rfc5965/3.eml", expect_3);
}

static void
fixture_4_returnpath(void **state)
{
	(void)state;
	check_fixture("kumomta/rfc5965/4.eml", expect_4);
}

/* --- inline reports ---------------------------------------------------- */

#define REPORT_HEAD \
	"Content-Type: multipart/report; report-type=feedback-report;\r\n" \
	"    boundary=\"b\"\r\n" \
	"\r\n"
#define FB_PART \
	"--b\r\n" \
	"Content-Type: message/feedback-report\r\n" \
	"\r\n"
#define RFC822_PART \
	"--b\r\n" \
	"Content-Type: message/rfc822\r\n" \
	"\r\n"
#define END "--b--\r\n"

static void
folded_trace_header(void **state)
{
	(void)state;
	struct report r;

	/* KumoMTA's supplemental_trace_folded_header. */
	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "User-Agent: SomeGenerator/1.0\r\n"
	    "Version: 1\r\n"
	    "\r\n"
	    RFC822_PART
	    "From: <somespammer@example.net>\r\n"
	    "X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50Ijoi\r\n"
	    "\tdGVzdEBleGFtcGxlLmNvbSJ9\r\n"
	    "Subject: Earn money\r\n"
	    "\r\n"
	    "Spam\r\n"
	    END, &r), 1);
	assert_member(&r, "supplemental_trace",
	    "{\"recipient\":\"test@example.com\"}");
	/* LF line ends, as KumoMTA stores the returned message. */
	assert_member(&r, "original_message",
	    "\"From: <somespammer@example.net>\\n"
	    "X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50Ijoi\\n"
	    "\\tdGVzdEBleGFtcGxlLmNvbSJ9\\n"
	    "Subject: Earn money\\n\\nSpam\\n\"");
	report_free(&r);
}

static void
transfer_encoded_feedback_part(void **state)
{
	(void)state;
	struct report r;

	/* KumoMTA fails on this; oobd removes the transfer encoding. */
	assert_int_equal(decode_str(REPORT_HEAD
	    "--b\r\n"
	    "Content-Type: message/feedback-report\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "RmVlZGJhY2stVHlwZTogYWJ1c2UNClVzZXItQWdlbnQ6IEVuY29kZWQvMS4wDQpW\r\n"
	    "ZXJzaW9uOiAxDQpTb3VyY2UtSVA6IDE5Mi4wLjIuOQ0K\r\n"
	    END, &r), 1);
	assert_member(&r, "feedback_type", "\"abuse\"");
	assert_member(&r, "user_agent", "\"Encoded/1.0\"");
	assert_member(&r, "version", "\"1\"");
	assert_member(&r, "source_ip", "\"192.0.2.9\"");
	assert_member(&r, "original_message", "null");
	report_free(&r);
}

static void
feedback_type_required(void **state)
{
	(void)state;
	struct report r;

	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "User-Agent: SomeGenerator/1.0\r\n"
	    "Version: 1\r\n"
	    END, &r), -1);
	report_free(&r);
	/* A feedback report with no feedback-report part is malformed. */
	assert_int_equal(decode_str(REPORT_HEAD RFC822_PART
	    "Subject: x\r\n\r\nbody\r\n" END, &r), -1);
	report_free(&r);
}

static void
user_agent_and_version_optional(void **state)
{
	(void)state;
	struct report r;

	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: fraud\r\n"
	    END, &r), 1);
	assert_member(&r, "feedback_type", "\"fraud\"");
	assert_member(&r, "user_agent", "\"\"");
	assert_member(&r, "version", "\"\"");
	assert_member(&r, "extensions", "{}");
	report_free(&r);
}

static void
duplicates_take_first(void **state)
{
	(void)state;
	struct report r;

	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "Feedback-Type: opt-out\r\n"
	    "User-Agent: A/1\r\n"
	    "Version: 1\r\n"
	    "Version: 2\r\n"
	    "Source-IP: 192.0.2.1\r\n"
	    "source-ip: 192.0.2.2\r\n"
	    "Reported-Domain: a.example\r\n"
	    "Reported-Domain: b.example\r\n"
	    END, &r), 1);
	assert_member(&r, "feedback_type", "\"abuse\"");
	assert_member(&r, "version", "\"1\"");
	assert_member(&r, "source_ip", "\"192.0.2.1\"");
	assert_member(&r, "reported_domain", "[\"a.example\",\"b.example\"]");
	assert_member(&r, "extensions", "{}");
	report_free(&r);
}

static void
arrival_date_rules(void **state)
{
	(void)state;
	struct report r;

	/* Invalid Arrival-Date: null, no fallback, Received-Date kept. */
	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "Arrival-Date: not a date\r\n"
	    "Received-Date: Thu, 14 Dec 2023 17:16:15 +0100\r\n"
	    END, &r), 1);
	assert_member(&r, "arrival_date", "null");
	assert_member(&r, "extensions",
	    "{\"received-date\":[\"Thu, 14 Dec 2023 17:16:15 +0100\"]}");
	report_free(&r);

	/* Valid Arrival-Date used; Received-Date stays an extension. */
	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "Received-Date: Thu, 14 Dec 2023 17:16:15 +0100\r\n"
	    "Arrival-Date: Wed, 13 Dec 2023 19:03:30 -0000\r\n"
	    END, &r), 1);
	assert_member(&r, "arrival_date", "\"2023-12-13T19:03:30Z\"");
	assert_member(&r, "extensions",
	    "{\"received-date\":[\"Thu, 14 Dec 2023 17:16:15 +0100\"]}");
	report_free(&r);

	/* A weekday that does not match: null, as KumoMTA. */
	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "Received-Date: Fri, 14 Dec 2023 17:16:15 +0100\r\n"
	    END, &r), 1);
	assert_member(&r, "arrival_date", "null");
	assert_member(&r, "extensions", "{}");
	report_free(&r);
}

static void
incidents_and_reporting_mta(void **state)
{
	(void)state;
	struct report r;

	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "Incidents: 4294967295\r\n"
	    "Reporting-MTA: dns;  mx.example.com \r\n"
	    "Original-Envelope-Id: abc123\r\n"
	    END, &r), 1);
	assert_member(&r, "incidents", "4294967295");
	assert_member(&r, "reporting_mta",
	    "{\"mta_type\":\"dns\",\"name\":\"mx.example.com\"}");
	assert_member(&r, "original_envelope_id", "\"abc123\"");
	report_free(&r);

	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "Incidents: +7\r\n"
	    END, &r), 1);
	assert_member(&r, "incidents", "7");
	report_free(&r);

	/* KumoMTA rejects these reports; oobd keeps the text as extensions. */
	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "Incidents: 4294967296\r\n"
	    "Reporting-MTA: mx.example.com\r\n"
	    END, &r), 1);
	assert_member(&r, "incidents", "null");
	assert_member(&r, "reporting_mta", "null");
	assert_member(&r, "extensions", "{\"incidents\":[\"4294967296\"],"
	    "\"reporting-mta\":[\"mx.example.com\"]}");
	report_free(&r);
}

static void
envelope_addresses(void **state)
{
	(void)state;
	struct report r;

	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "Original-Mail-From: <>\r\n"
	    "Original-Rcpt-To: <@relay.example:user@example.com>\r\n"
	    "Original-Rcpt-To: plain@example.com\r\n"
	    "Original-Rcpt-To: <redacted>\r\n"
	    END, &r), 1);
	assert_member(&r, "original_mail_from", "\"\"");
	assert_member(&r, "original_rcpto_to",
	    "[\"user@example.com\",\"plain@example.com\",\"redacted\"]");
	report_free(&r);
}

static void
extensions_sorted_and_bytes(void **state)
{
	(void)state;
	struct report r;

	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "X-Zeta: 1\r\n"
	    "Abuse-Type: complaint\r\n"
	    "x-zeta: 2\r\n"
	    "Delivery-Result: delivered\r\n"
	    "Opaque: \x80\xff\r\n"
	    END, &r), 1);
	assert_member(&r, "extensions",
	    "{\"abuse-type\":[\"complaint\"],"
	    "\"delivery-result\":[\"delivered\"],"
	    "\"opaque\":[[128,255]],"
	    "\"x-zeta\":[\"1\",\"2\"]}");
	report_free(&r);
}

static void
original_message_rules(void **state)
{
	(void)state;
	struct report r;

	/*
	 * The last returned part is the original message; the trace is the
	 * last one that decodes, here from the first part.
	 */
	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "\r\n"
	    RFC822_PART
	    "X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoidGVzdEBleGFtcGxlLmNvbSJ9\r\n"
	    "\r\n"
	    "first\r\n"
	    "--b\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "\r\n"
	    "Subject: second\r\n"
	    END, &r), 1);
	assert_member(&r, "original_message", "\"Subject: second\\n\"");
	assert_member(&r, "supplemental_trace",
	    "{\"recipient\":\"test@example.com\"}");
	report_free(&r);

	/* Not UTF-8: an array of byte values; the singular part type. */
	assert_int_equal(decode_str(REPORT_HEAD FB_PART
	    "Feedback-Type: abuse\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: text/rfc822-header\r\n"
	    "\r\n"
	    "S: \x80\xff\r\n"
	    END, &r), 1);
	assert_member(&r, "original_message", "[83,58,32,128,255,10]");
	report_free(&r);
}

static void
content_type_case_insensitive(void **state)
{
	(void)state;
	struct report r;

	assert_int_equal(decode_str(
	    "Content-Type: Multipart/Report; Report-Type=\"Feedback-Report\";\r\n"
	    "\tboundary=b\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: Message/Feedback-Report\r\n"
	    "\r\n"
	    "FEEDBACK-TYPE: abuse\r\n"
	    "SOURCE-IP: 192.0.2.5\r\n"
	    END, &r), 1);
	assert_member(&r, "feedback_type", "\"abuse\"");
	assert_member(&r, "source_ip", "\"192.0.2.5\"");
	report_free(&r);

	/* multipart/mixed holding a feedback-report part: mislabelled ARF. */
	assert_int_equal(decode_str(
	    "Content-Type: multipart/mixed; boundary=b\r\n"
	    "\r\n"
	    FB_PART
	    "Feedback-Type: opt-out\r\n"
	    END, &r), 1);
	assert_string_equal(r.decoder, "arf");
	assert_member(&r, "feedback_type", "\"opt-out\"");
	report_free(&r);
}

static void
not_feedback(void **state)
{
	(void)state;
	struct report r;

	/* A DSN is not for this decoder, even with a stray feedback part. */
	assert_int_equal(decode_str(
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "    boundary=\"b\"\r\n"
	    "\r\n"
	    FB_PART
	    "Feedback-Type: abuse\r\n"
	    END, &r), 0);
	assert_null(r.feedback_report);
	assert_int_equal(decode_str("Subject: hi\r\n\r\nhello\r\n", &r), 0);
	assert_int_equal(decode_str("", &r), 0);
	assert_int_equal(decode_str("\r\n\r\n", &r), 0);
	/* A forwarded message that is not a JMRP complaint. */
	assert_int_equal(decode_str(
	    "From: a@example.com\r\n"
	    "Subject: Fwd: hello\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n"
	    "\r\n"
	    RFC822_PART
	    "Subject: hello\r\n\r\nbody\r\n"
	    END, &r), 0);
}

/* --- legacy and non-ARF feedback --------------------------------------- */

static void
jmrp_complaint(void **state)
{
	(void)state;
	struct report r;
	size_t len;
	char *text = corpus_read("sisimai/maildir/arf-22.eml", &len);

	assert_int_equal(decode_text(text, len, &r), 1);
	assert_int_equal(r.kind, REPORT_FEEDBACK);
	assert_string_equal(r.decoder, "jmrp");
	json_t *om = json_object_get(r.feedback_report, "original_message");
	json_incref(om);
	json_object_del(r.feedback_report, "original_message");
	assert_json(r.feedback_report,
	    "{\"feedback_type\":\"abuse\",\"user_agent\":\"\",\"version\":\"\","
	    "\"arrival_date\":null,\"incidents\":null,"
	    "\"original_envelope_id\":null,\"original_mail_from\":null,"
	    "\"reporting_mta\":null,\"source_ip\":\"192.0.2.222\","
	    "\"authentication_results\":[],"
	    "\"original_rcpto_to\":[\"kijitora@example.com\"],"
	    "\"reported_domain\":[],\"reported_uri\":[],\"extensions\":{},"
	    "\"supplemental_trace\":null}");
	/* The returned message, byte for byte from its first line to the end. */
	assert_true(json_is_string(om));
	const char *s = json_string_value(om);
	const char *start = strstr(text, "X-HmXmrOriginalRecipient:");
	const char *end = strstr(text, "--F0000EEE2-0000-2111-AAB0-000000000000--");
	assert_non_null(start);
	assert_non_null(end);
	assert_int_equal(strlen(s), (size_t)(end - start));
	assert_memory_equal(s, start, (size_t)(end - start));
	json_decref(om);
	report_free(&r);
	free(text);
}

static void
apple_unsubscribe(void **state)
{
	(void)state;
	struct report r;
	size_t len;
	char *text = corpus_read("sisimai/maildir/arf-26.eml", &len);

	assert_int_equal(decode_text(text, len, &r), 1);
	assert_string_equal(r.decoder, "apple-unsubscribe");
	assert_json(r.feedback_report, expect_apple);
	report_free(&r);
	free(text);
}

/* --- the Sisimai corpus ------------------------------------------------ */

static void
sisimai_arf_corpus(void **state)
{
	(void)state;
	char *path = corpus_path("sisimai/expected.json");
	json_error_t err;
	json_t *expected = json_load_file(path, 0, &err);
	const char *name;
	json_t *entries;
	size_t total = 0, matched = 0;

	assert_non_null(expected);
	json_object_foreach(expected, name, entries) {
		if (strncmp(name, "arf-", 4) != 0)
			continue;
		const char *want = json_string_value(json_object_get(
		    json_array_get(entries, 0), "feedbacktype"));
		char *rel = xasprintf("sisimai/maildir/%s", name);
		size_t len;
		char *text = corpus_read(rel, &len);
		struct report r;
		int rc = decode_text(text, len, &r);
		const char *got = rc == 1 ? json_string_value(json_object_get(
		    r.feedback_report, "feedback_type")) : NULL;
		total++;
		if (want != NULL && got != NULL && strcmp(want, got) == 0)
			matched++;
		else
			print_message("%s: expected %s, got %s (rc %d)\n", name,
			    want ? want : "?", got ? got : "none", rc);
		report_free(&r);
		free(text);
		free(rel);
	}
	print_message("sisimai ARF: %zu of %zu with the expected feedback type\n",
	    matched, total);
	assert_int_equal(total, 14);
	assert_int_equal(matched, total);
	json_decref(expected);
	free(path);

	/* The JMRP files have no label there; all three are complaints. */
	static const char *jmrp[] = { "arf-22.eml", "arf-23.eml", "arf-24.eml" };
	for (size_t i = 0; i < nitems(jmrp); i++) {
		char *rel = xasprintf("sisimai/maildir/%s", jmrp[i]);
		size_t len;
		char *text = corpus_read(rel, &len);
		struct report r;
		assert_int_equal(decode_text(text, len, &r), 1);
		assert_string_equal(r.decoder, "jmrp");
		assert_member(&r, "feedback_type", "\"abuse\"");
		report_free(&r);
		free(text);
		free(rel);
	}
}

static void
line_ending_variants(void **state)
{
	(void)state;
	static const char *dirs[] = { "maildir-crlf", "maildir-cr" };
	struct report base, r;
	size_t len;
	char *text = corpus_read("sisimai/maildir/arf-01.eml", &len);

	assert_int_equal(decode_text(text, len, &base), 1);
	free(text);
	char *want = dump(base.feedback_report);
	for (size_t i = 0; i < nitems(dirs); i++) {
		char *rel = xasprintf("sisimai/%s/arf-01.eml", dirs[i]);
		text = corpus_read(rel, &len);
		assert_int_equal(decode_text(text, len, &r), 1);
		assert_json(r.feedback_report, want);
		report_free(&r);
		free(text);
		free(rel);
	}
	free(want);
	report_free(&base);
}

static void
truncated_inputs(void **state)
{
	(void)state;
	size_t len;
	char *text = corpus_read("kumomta/rfc5965/2.eml", &len);

	/* Every prefix is a defined result (and clean under ASan). */
	for (size_t n = 0; n <= len; n++) {
		struct report r;
		int rc = decode_text(text, n, &r);
		assert_true(rc >= -1 && rc <= 1);
		if (rc == 1)
			assert_non_null(json_object_get(r.feedback_report,
			    "feedback_type"));
		report_free(&r);
	}
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fixture_1_minimal),
		cmocka_unit_test(fixture_2_full),
		cmocka_unit_test(fixture_3_yahoo),
		cmocka_unit_test(fixture_4_returnpath),
		cmocka_unit_test(folded_trace_header),
		cmocka_unit_test(transfer_encoded_feedback_part),
		cmocka_unit_test(feedback_type_required),
		cmocka_unit_test(user_agent_and_version_optional),
		cmocka_unit_test(duplicates_take_first),
		cmocka_unit_test(arrival_date_rules),
		cmocka_unit_test(incidents_and_reporting_mta),
		cmocka_unit_test(envelope_addresses),
		cmocka_unit_test(extensions_sorted_and_bytes),
		cmocka_unit_test(original_message_rules),
		cmocka_unit_test(content_type_case_insensitive),
		cmocka_unit_test(not_feedback),
		cmocka_unit_test(jmrp_complaint),
		cmocka_unit_test(apple_unsubscribe),
		cmocka_unit_test(sisimai_arf_corpus),
		cmocka_unit_test(line_ending_variants),
		cmocka_unit_test(truncated_inputs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
