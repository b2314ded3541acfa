/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_textbounce.c - the plain-text bounce decoder on real notices from
 * the Sisimai corpus (qmail, Exim, OpenSMTPD, Gmail, Yahoo, DragonFly,
 * Zoho), every field of every bounce; and messages it must leave alone.
 */
#include "testutil.h"

#include "message.h"
#include "report.h"
#include "textbounce.h"

struct want {
	const char *recipient;
	const char *action;
	int	 code;
	unsigned cls, subject, detail;
	bool	 derived;
	const char *content;
};

/* Decode a corpus file; returns the decoder's result. */
static int
decode_file(const char *rel, struct report *r)
{
	struct message m;
	size_t len;
	char *data = corpus_read(rel, &len);
	int rc;

	memset(r, 0, sizeof(*r));
	message_load(&m, data, len);
	rc = textbounce_decode(&m, r);
	message_free(&m);
	free(data);
	return rc;
}

static void
expect(const char *name, const struct want *w, size_t nw)
{
	struct report r;
	char *rel = xasprintf("sisimai/maildir/%s", name);

	assert_int_equal(decode_file(rel, &r), 1);
	assert_int_equal(r.kind, REPORT_BOUNCE);
	assert_string_equal(r.decoder, "text");
	assert_int_equal(r.nbounces, nw);
	for (size_t i = 0; i < nw; i++) {
		const struct bounce *b = &r.bounces[i];
		assert_string_equal(b->recipient, w[i].recipient);
		assert_string_equal(b->action, w[i].action);
		assert_int_equal(b->code, w[i].code);
		assert_true(b->has_status);
		assert_int_equal(b->cls, w[i].cls);
		assert_int_equal(b->subject, w[i].subject);
		assert_int_equal(b->detail, w[i].detail);
		assert_int_equal(b->status_derived, w[i].derived);
		assert_string_equal(b->content, w[i].content);
		assert_null(b->reporting_mta);
		assert_null(b->diagnostic_type);
		assert_false(b->has_last_attempt);
	}
	assert_null(r.trace);
	report_free(&r);
	free(rel);
}

static void
test_qmail(void **state)
{
	static const struct want w[] = { {
		"kijitora@example.ne.jp", "failed", 550, 5, 5, 0, false,
		"Unknown user kijitora@example.ne.jp . (#5.5.0) (Other MXes "
		"tried: 192.0.2.32 said 550 for RCPT TO response; 192.0.2.40 "
		"said 550 for RCPT TO response; 192.0.2.12 said 550 for RCPT "
		"TO response; 192.0.2.24 said 550 for RCPT TO response.)" } };

	(void)state;
	expect("lhost-qmail-01.eml", w, nitems(w));
}

static void
test_exim(void **state)
{
	static const struct want w[] = { {
		"kijitora@example.ed.jp", "failed", 550, 5, 7, 0, false,
		"5.7.0 <shironeko@example.jp>... Please use the smtp server "
		"of your ISP." } };
	/* The sender named in "A message sent by" is not a recipient. */
	static const struct want w8[] = { {
		"kijitora@example.org", "failed", 550, 5, 0, 0, true,
		"(ultimately generated from nekochan@example.org) all hosts "
		"have been failing for a long time and were last tried after "
		"this message arrived" } };
	/* "host H [ip]: 554 ..." after a line break. */
	static const struct want w3[] = { {
		"kijitora@example.or.jp", "failed", 554, 5, 7, 0, false,
		"5.7.0 Header error" } };

	(void)state;
	expect("lhost-exim-01.eml", w, nitems(w));
	expect("lhost-exim-08.eml", w8, nitems(w8));
	expect("lhost-exim-03.eml", w3, nitems(w3));
}

static void
test_opensmtpd(void **state)
{
	static const struct want w[] = { {
		"apdugoaidugoaidugoaeiudggadi@gmail.com", "failed", 550,
		5, 1, 1, false,
		"5.1.1 http://support.google.com/mail/bin/answer.py?answer="
		"6596 ad1si1997204pbd.83 - gsmtp" } };

	(void)state;
	expect("lhost-opensmtpd-01.eml", w, nitems(w));
}

static void
test_gmail_yahoo(void **state)
{
	/* The reason follows the address after a blank line. */
	static const struct want g[] = { {
		"userunknown@example.jp", "failed", 550, 5, 1, 1, false,
		"5.1.1 <userunknown@example.jp>... User Unknown" } };
	static const struct want y[] = { {
		"kijitora@example.org", "failed", 550, 5, 1, 1, false,
		"5.1.1 <kijitora@example.org>... User Unknown [RCPT_TO]" } };

	(void)state;
	expect("lhost-gmail-01.eml", g, nitems(g));
	expect("lhost-yahoo-01.eml", y, nitems(y));
}

static void
test_multiline_reply(void **state)
{
	/* A sentence names the recipient; the 550- lines are one reply. */
	static const struct want w[] = { {
		"pseudo-local-part@google.example.com", "failed", 550,
		5, 7, 26, false,
		"5.7.26 Unauthenticated email from example.jp is not accepted "
		"due to domain's DMARC policy. Please contact the "
		"administrator of example.jp domain if this was a legitimate "
		"mail. To learn about the DMARC initiative, go to "
		"https://support.google.com/mail/?p=DmarcRejection "
		"98e67ed59e1d1-2c2d0e28189si6418580a91.13 - gsmtp" } };

	(void)state;
	expect("lhost-dragonfly-01.eml", w, nitems(w));
}

static void
test_reply_forms(void **state)
{
	/* "host 192.0.2.8: 553 ..." between ruler lines. */
	static const struct want x3[] = { {
		"kijitora@example.com", "failed", 553, 5, 3, 0, false,
		"5.3.0 <kijitora@example.com>... No such user here" } };
	/* "<a@b>   (5.1.1 <a@b>... User unknown)" */
	static const struct want mc[] = { {
		"kijitora@example.jp", "failed", 550, 5, 1, 1, false,
		"(5.1.1 <kijitora@example.jp>... User unknown)" } };
	/* "501: 5.1.8 ..." */
	static const struct want y[] = { {
		"kijitora@example.jp", "failed", 501, 5, 1, 8, false,
		"5.1.8 Sender address rejected" } };

	(void)state;
	expect("lhost-x3-01.eml", x3, nitems(x3));
	expect("lhost-mcafee-02.eml", mc, nitems(mc));
	expect("lhost-yahoo-12.eml", y, nitems(y));
}

static void
test_failed_recipients_header(void **state)
{
	/* "kijitora" alone in the text; X-Failed-Recipients has the address. */
	static const struct want w[] = { {
		"kijitora@example.ed.jp", "failed", 550, 5, 7, 0, false,
		"5.7.0 <shironeko@example.jp>... Please use the smtp server "
		"of your ISP." } };
	struct report r;

	(void)state;
	expect("lhost-exim-04.eml", w, nitems(w));
	/* Google Groups names only the sender in its text. */
	assert_int_equal(decode_file("sisimai/maildir/lhost-googlegroups-01.eml",
	    &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_string_equal(r.bounces[0].recipient,
	    "libsisimai@googlegroups.com");
	assert_int_equal(r.bounces[0].code, 550);
	assert_int_equal(r.bounces[0].cls, 5);
	assert_int_equal(r.bounces[0].subject, 0);
	assert_true(r.bounces[0].status_derived);
	assert_true(strncmp(r.bounces[0].content, "kijitora@example.jp ", 20)
	    == 0);
	assert_true(strstr(r.bounces[0].content, " Google Groups") != NULL);
	report_free(&r);
}

static void
test_sendmail_transcript(void **state)
{
	/* "554 <a@b>... 550 Host unknown": the remote reply counts. */
	static const struct want w2[] = { {
		"kijitora@neko.example.org", "failed", 550, 5, 0, 0, true,
		"Host unknown (Authoritative answer from name server)" } };
	struct report r;

	(void)state;
	expect("lhost-v5sendmail-02.eml", w2, nitems(w2));
	/* Four recipients, each with the reply on its own line. */
	assert_int_equal(decode_file("sisimai/maildir/lhost-v5sendmail-05.eml",
	    &r), 1);
	assert_int_equal(r.nbounces, 4);
	assert_string_equal(r.bounces[0].recipient, "kijitora@example.edu");
	assert_int_equal(r.bounces[0].code, 554);
	assert_string_equal(r.bounces[0].content, "<kijitora@example.edu>... "
	    "Remote protocol error: Connection reset by peer during result "
	    "wait with example.edu");
	assert_string_equal(r.bounces[3].recipient, "mikeneko@example.co.jp");
	assert_int_equal(r.bounces[3].code, 550);
	assert_string_equal(r.bounces[3].content,
	    "<mikeneko@example.co.jp>... User unknown");
	report_free(&r);
	/* A reply on the address's line, folded onto an indented line. */
	const char *text = "From: MAILER-DAEMON@mx.example\n"
	    "To: a@b.example\nSubject: Undelivered Mail\n\n"
	    "Your message could not be delivered.\n\n"
	    "<c@d.example>: host mx.d.example said: 550 5.1.1 <c@d.example>:\n"
	    "    Recipient address rejected (in reply to RCPT TO command)\n"
	    "<e@d.example>: host mx.d.example said: 452 4.2.2 full\n"
	    "Some text that belongs to nobody.\n";
	struct message m;
	memset(&r, 0, sizeof(r));
	message_load(&m, text, strlen(text));
	assert_int_equal(textbounce_decode(&m, &r), 1);
	message_free(&m);
	assert_int_equal(r.nbounces, 2);
	assert_int_equal(r.bounces[0].code, 550);
	assert_string_equal(r.bounces[0].content, "5.1.1 <c@d.example>: "
	    "Recipient address rejected (in reply to RCPT TO command)");
	assert_int_equal(r.bounces[1].code, 452);
	assert_int_equal(r.bounces[1].cls, 4);
	assert_int_equal(r.bounces[1].subject, 2);
	assert_string_equal(r.bounces[1].content, "4.2.2 full");
	report_free(&r);
}

static void
test_address_then_text(void **state)
{
	/* "a@b Invalid Address, ERROR_CODE :550, ..." (quoted-printable). */
	static const struct want w[] = { {
		"kijitora@example.co.jp", "failed", 550, 5, 1, 1, false,
		"ERROR_CODE :5.1.1 <kijitora@example.co.jp>... User Unknown" } };

	(void)state;
	expect("lhost-zoho-01.eml", w, nitems(w));
}

/* Ordinary mail, auto-replies and DSNs are not this decoder's. */
static void
test_not_text_bounces(void **state)
{
	static const char *const names[] = {
		"not-bounces/is-not-bounce-01.eml",
		"not-bounces/is-not-bounce-02.eml",
		"maildir/rfc3834-01.eml", "maildir/rfc3834-02.eml",
		"maildir/rfc3834-03.eml", "maildir/rfc3834-04.eml",
		"maildir/rfc3834-05.eml",
	};

	(void)state;
	for (size_t i = 0; i < nitems(names); i++) {
		struct report r;
		char *rel = xasprintf("sisimai/%s", names[i]);
		if (decode_file(rel, &r) != 0)
			fail_msg("%s decoded as a bounce", names[i]);
		assert_int_equal(r.nbounces, 0);
		report_free(&r);
		free(rel);
	}
}

static int
decode_string(const char *text, struct report *r)
{
	struct message m;
	int rc;

	memset(r, 0, sizeof(*r));
	message_load(&m, text, strlen(text));
	rc = textbounce_decode(&m, r);
	message_free(&m);
	return rc;
}

static void
test_synthetic(void **state)
{
	struct report r;

	(void)state;
	/* A bounce notice that names nobody gives nothing. */
	assert_int_equal(decode_string("From: MAILER-DAEMON@mx.example\n"
	    "To: a@b.example\nSubject: Undelivered Mail\n\n"
	    "Your message could not be delivered.\n", &r), 0);
	report_free(&r);
	/* The bounce's own addressee is not a failed recipient. */
	assert_int_equal(decode_string("From: MAILER-DAEMON@mx.example\n"
	    "To: a@b.example\nSubject: Undelivered Mail\n\n"
	    "Dear a@b.example\n\nYour message could not be delivered.\n",
	    &r), 0);
	report_free(&r);
	/* ...unless its line is the address as a heading: a message that
	 * its sender addressed to itself. */
	assert_int_equal(decode_string("From: MAILER-DAEMON@mx.example\n"
	    "To: a@b.example\nSubject: failure notice\n\n"
	    "I wasn't able to deliver your message to the following "
	    "addresses.\n\n<a@b.example>:\n"
	    "Remote host said: 552 Error: disk quota exceeded\n", &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_string_equal(r.bounces[0].recipient, "a@b.example");
	assert_int_equal(r.bounces[0].code, 552);
	report_free(&r);
	/* A personal message that quotes an address is not a bounce. */
	assert_int_equal(decode_string("From: Alice <alice@example.org>\n"
	    "To: bob@example.com\nSubject: lunch\n\n"
	    "carol@example.net\nsaid she could not be delivered lunch.\n",
	    &r), 0);
	report_free(&r);
	/* A still-trying notice: delayed, class from the 4xx reply. */
	assert_int_equal(decode_string("From: MAILER-DAEMON@mx.example\n"
	    "To: a@b.example\nSubject: Delivery delayed\n\n"
	    "Your message could not be delivered yet; it will be retried.\n\n"
	    "<c@d.example>: host mx.d.example said: 451 try later\n", &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_string_equal(r.bounces[0].recipient, "c@d.example");
	assert_string_equal(r.bounces[0].action, "delayed");
	assert_int_equal(r.bounces[0].code, 451);
	assert_int_equal(r.bounces[0].cls, 4);
	assert_int_equal(r.bounces[0].subject, 0);
	assert_true(r.bounces[0].status_derived);
	assert_string_equal(r.bounces[0].content, "try later");
	report_free(&r);
	/*
	 * The recipient named only in a sentence that says it failed:
	 * "recipients returned permanent errors: a@b." and "rejected
	 * recipient <a@b>", with the server's reply after it.
	 */
	static const struct {
		const char *sentence;
		int code;
		unsigned subject, detail;
	} forms[] = {
		{ "The following recipients returned permanent errors: "
		  "c@d.example. Reason: SMTP Server <mx.d.example> refused to "
		  "accept your message (DATA), with the following error "
		  "message: [554 5.4.6 Hop count exceeded]\n", 554, 4, 6 },
		{ "SMTP Server <mx.d.example> rejected recipient <c@d.example> "
		  "(Error following RCPT command). It responded as follows: "
		  "[550 5.1.1 User unknown]\n", 550, 1, 1 },
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char *msg = xasprintf("From: mailer-daemon\n"
		    "To: a@b.example\n"
		    "Subject: There was an error sending your mail\n\n"
		    "We had trouble delivering your message.\n\n%s",
		    forms[i].sentence);
		assert_int_equal(decode_string(msg, &r), 1);
		assert_int_equal(r.nbounces, 1);
		assert_string_equal(r.bounces[0].recipient, "c@d.example");
		assert_string_equal(r.bounces[0].action, "failed");
		assert_int_equal(r.bounces[0].code, forms[i].code);
		assert_int_equal(r.bounces[0].cls, 5);
		assert_int_equal(r.bounces[0].subject, forms[i].subject);
		assert_int_equal(r.bounces[0].detail, forms[i].detail);
		report_free(&r);
		free(msg);
	}
}

/*
 * A notice sent as multipart/mixed with a delivery-status part saying
 * "Action: delayed" is a delay, whatever its text says ("Envelope
 * expired"); the same notice saying "failed" is a failure. The quoted
 * header part gives the returned message's headers.
 */
static void
test_mixed_delay_notice(void **state)
{
	static const char fmt[] =
	    "From: Mailer Daemon <MAILER-DAEMON@mx.example.net>\n"
	    "To: bounce@example.com\n"
	    "Subject: Delivery status notification: error\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"B\"\n\n"
	    "--B\nContent-Type: text/plain\n\n"
	    "Hi!\n\nThis is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.\n\n"
	    "An error has occurred while attempting to deliver a message for\n"
	    "the following list of recipients:\n\n"
	    "bob@example.org: Envelope expired\n\n"
	    "--B\nContent-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; mx.example.net\n\n"
	    "Final-Recipient: rfc822; bob@example.org\n"
	    "Action: %s\n"
	    "Status: 4.4.7\n\n"
	    "--B\nContent-Type: text/rfc822-headers\n\n"
	    "Message-ID: <m1@example.com>\n"
	    "Subject: Spring\n"
	    "From: news@example.com\n"
	    "To: bob@example.org\n\n"
	    "--B--\n";
	struct report r;
	char *msg;

	(void)state;
	msg = xasprintf(fmt, "delayed");
	assert_int_equal(decode_string(msg, &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_string_equal(r.bounces[0].recipient, "bob@example.org");
	assert_string_equal(r.bounces[0].action, "delayed");
	assert_non_null(r.returned);
	char *got = json_dumps(r.returned, JSON_COMPACT);
	assert_string_equal(got, "{\"message_id\":\"<m1@example.com>\","
	    "\"subject\":\"Spring\",\"from\":\"news@example.com\","
	    "\"to\":\"bob@example.org\"}");
	free(got);
	report_free(&r);
	free(msg);

	msg = xasprintf(fmt, "failed");
	assert_int_equal(decode_string(msg, &r), 1);
	assert_string_equal(r.bounces[0].action, "failed");
	report_free(&r);
	free(msg);
}

/* A plain-text notice: the returned headers quoted after the cut. */
static void
test_quoted_returned_headers(void **state)
{
	static const char msg[] =
	    "From: MAILER-DAEMON@mx.example.net\n"
	    "To: bounce@example.com\n"
	    "Subject: failure notice\n\n"
	    "Hi. This is the qmail-send program at mx.example.net.\n"
	    "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
	    "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
	    "<bob@example.org>:\n"
	    "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
	    "--- Below this line is a copy of the message.\n\n"
	    "Return-Path: <bounce@example.com>\n"
	    "Message-ID: <m2@example.com>\n"
	    "From: News <news@example.com>\n"
	    "To: bob@example.org\n"
	    "Subject: Spring sale\n\n"
	    "Body.\n";
	struct report r;

	(void)state;
	assert_int_equal(decode_string(msg, &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_string_equal(r.bounces[0].action, "failed");
	assert_non_null(r.returned);
	char *got = json_dumps(r.returned, JSON_COMPACT);
	assert_string_equal(got, "{\"message_id\":\"<m2@example.com>\","
	    "\"subject\":\"Spring sale\",\"from\":\"News <news@example.com>\","
	    "\"to\":\"bob@example.org\"}");
	free(got);
	report_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qmail),
		cmocka_unit_test(test_exim),
		cmocka_unit_test(test_opensmtpd),
		cmocka_unit_test(test_gmail_yahoo),
		cmocka_unit_test(test_multiline_reply),
		cmocka_unit_test(test_reply_forms),
		cmocka_unit_test(test_failed_recipients_header),
		cmocka_unit_test(test_sendmail_transcript),
		cmocka_unit_test(test_address_then_text),
		cmocka_unit_test(test_not_text_bounces),
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_mixed_delay_notice),
		cmocka_unit_test(test_quoted_returned_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
