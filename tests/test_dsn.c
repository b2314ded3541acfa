/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dsn.c - RFC 3464 / RFC 6533 DSNs: KumoMTA's field mapping on its
 * own fixtures, the defects oobd repairs, and hostile input.
 */
#include "testutil.h"

#include <glib.h>

#include "dsn.h"
#include "kumoref.h"
#include "message.h"
#include "report.h"

/* What one struct bounce must hold; NULL strings mean absent. */
struct want {
	const char *recipient;
	const char *final_recipient;
	const char *original_recipient;
	const char *action;
	int	 code;
	bool	 has_status;
	unsigned cls, subject, detail;
	bool	 status_derived;
	const char *content;
	const char *status_comment;
	const char *reporting_mta;
	const char *remote_mta;
	const char *diagnostic_type;
	bool	 has_last_attempt;
	time_t	 last_attempt;
};

static void
assert_opt_string(const char *what, const char *got, const char *want)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", what,
		    got ? got : "(null)", want ? want : "(null)");
}

static void
assert_bounce(const struct bounce *b, const struct want *w)
{
	assert_opt_string("recipient", b->recipient, w->recipient);
	assert_opt_string("final_recipient", b->final_recipient,
	    w->final_recipient);
	assert_opt_string("original_recipient", b->original_recipient,
	    w->original_recipient);
	assert_opt_string("action", b->action, w->action);
	assert_int_equal(b->code, w->code);
	assert_int_equal(b->has_status, w->has_status);
	if (w->has_status) {
		assert_int_equal(b->cls, w->cls);
		assert_int_equal(b->subject, w->subject);
		assert_int_equal(b->detail, w->detail);
	}
	assert_int_equal(b->status_derived, w->status_derived);
	assert_opt_string("content", b->content, w->content);
	assert_opt_string("status_comment", b->status_comment,
	    w->status_comment);
	assert_opt_string("reporting_mta", b->reporting_mta, w->reporting_mta);
	assert_opt_string("remote_mta", b->remote_mta, w->remote_mta);
	assert_opt_string("diagnostic_type", b->diagnostic_type,
	    w->diagnostic_type);
	assert_int_equal(b->has_last_attempt, w->has_last_attempt);
	if (w->has_last_attempt) {
		assert_int_equal(b->last_attempt.tv_sec, w->last_attempt);
		assert_int_equal(b->last_attempt.tv_nsec, 0);
	}
}

static int
decode_text(const char *text, size_t len, struct report *r)
{
	struct message m;
	int rc;

	memset(r, 0, sizeof(*r));
	message_load(&m, text, len);
	rc = dsn_decode(&m, r);
	message_free(&m);
	return rc;
}

/* A corpus file with LF line ends (as message_load makes it). */
static char *
fixture(const char *name)
{
	struct message m;
	size_t len;
	char *rel = xasprintf("kumomta/rfc3464/%s", name);
	char *data = corpus_read(rel, &len);

	message_load(&m, data, len);
	char *text = xstrdup(m.text);
	message_free(&m);
	free(data);
	free(rel);
	return text;
}

/* s with the first occurrence of from replaced by to; fails if absent. */
static char *
replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);

	if (p == NULL)
		fail_msg("\"%s\" not found", from);
	return xasprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

/* Decode a variant of a fixture and check its bounces. */
static void
check_text(const char *text, const struct want *w, size_t n)
{
	struct report r;

	assert_int_equal(decode_text(text, strlen(text), &r), 1);
	assert_int_equal(r.kind, REPORT_BOUNCE);
	assert_string_equal(r.decoder, "rfc3464");
	assert_int_equal(r.nbounces, n);
	for (size_t i = 0; i < n; i++)
		assert_bounce(&r.bounces[i], &w[i]);
	report_free(&r);
}

static void
check_fixture(const char *name, const struct want *w, size_t n)
{
	char *text = fixture(name);

	check_text(text, w, n);
	free(text);
}

static const struct want want1[] = {{
	.recipient = "louisl@larry.slip.umd.edu",
	.final_recipient = "rfc822;louisl@larry.slip.umd.edu",
	.original_recipient = "rfc822;louisl@larry.slip.umd.edu",
	.action = "failed",
	.code = 426,
	.has_status = true, .cls = 4, .subject = 0, .detail = 0,
	.content = "connection timed out",
	.reporting_mta = "cs.utk.edu",
	.diagnostic_type = "smtp",
	.has_last_attempt = true, .last_attempt = 773615749,
}};

static const struct want want2[] = {{
	.recipient = "arathib@vnet.ibm.com",
	.final_recipient = "rfc822;arathib@vnet.ibm.com",
	.original_recipient = "rfc822;arathib@vnet.ibm.com",
	.action = "failed",
	.code = 550,
	.has_status = true, .cls = 5, .subject = 0, .detail = 0,
	.content = "'arathib@vnet.IBM.COM' is not a registered gateway user",
	.status_comment = "(permanent failure)",
	.reporting_mta = "cs.utk.edu",
	.remote_mta = "vnet.ibm.com",
	.diagnostic_type = "smtp",
}, {
	.recipient = "johnh@hpnjld.njd.hp.com",
	.final_recipient = "rfc822;johnh@hpnjld.njd.hp.com",
	.original_recipient = "rfc822;johnh@hpnjld.njd.hp.com",
	.action = "delayed",
	.code = 550,
	.has_status = true, .cls = 4, .subject = 0, .detail = 0,
	.content = "",
	.status_comment = "(hpnjld.njd.jp.com: host name lookup failure)",
	.reporting_mta = "cs.utk.edu",
}, {
	.recipient = "wsnell@sdcc13.ucsd.edu",
	.final_recipient = "rfc822;wsnell@sdcc13.ucsd.edu",
	.original_recipient = "rfc822;wsnell@sdcc13.ucsd.edu",
	.action = "failed",
	.code = 550,
	.has_status = true, .cls = 5, .subject = 0, .detail = 0,
	.content = "user unknown",
	.reporting_mta = "cs.utk.edu",
	.remote_mta = "sdcc13.ucsd.edu",
	.diagnostic_type = "smtp",
}};

static const struct want want3[] = {{
	.recipient = "nair_s",
	.final_recipient = "unknown; nair_s",
	.action = "failed",
	.code = 550,
	.has_status = true, .cls = 5, .subject = 0, .detail = 0,
	.content = "",
	.status_comment = "(unknown permanent failure)",
	.reporting_mta = "SYS30",
}};

static const struct want want4[] = {{
	.recipient = "thomas@de-montfort.ac.uk",
	.final_recipient = "rfc822;thomas@de-montfort.ac.uk",
	.action = "delayed",
	.code = 550,
	.has_status = true, .cls = 4, .subject = 0, .detail = 0,
	.content = "",
	.status_comment = "(unknown temporary failure)",
	.reporting_mta = "sun2.nsfnet-relay.ac.uk",
}};

static const struct want want5[] = {{
	.recipient = "recipient@domain.com",
	.final_recipient = "rfc822; recipient@domain.com",
	.original_recipient = "rfc822;recipient@domain.com",
	.action = "failed",
	.code = 552,
	.has_status = true, .cls = 5, .subject = 0, .detail = 0,
	.content = "<recipient@domain.com> rejected: over quota",
	.reporting_mta = "mx-by.bbox.fr",
	.remote_mta = "lmtp.cs.dolmen.bouyguestelecom.fr",
	.diagnostic_type = "smtp",
}};

static const struct want want6[] = {{
	.recipient = "redacted@example.com",
	.final_recipient = "rfc822;<redacted@example.com>",
	.original_recipient = "rfc822;<redacted@example.com>",
	.action = "failed",
	.code = 550,
	.has_status = true, .cls = 5, .subject = 0, .detail = 0,
	.content = "host example-com.mail.eo.outlook.com:25 says: "
	    "550 5.4.1 Recipient address rejected: Access denied. For more "
	    "information see https://aka.ms/EXOSmtpErrors "
	    "[XXX.namprd05.prod.outlook.com 2026-03-13T18:10:42.797Z XXX]",
	.reporting_mta = "tls02.example.com",
	.remote_mta = "example-com.mail.eo.outlook.com:25",
	.diagnostic_type = "smtp",
}};

static const struct want want_ses[] = {{
	.recipient = "user@example.com",
	.final_recipient = "rfc822; user@example.com",
	.original_recipient = "rfc822; user@example.com",
	.action = "failed",
	.code = 550,
	.has_status = true, .cls = 5, .subject = 1, .detail = 1,
	.content = "5.1.1 Mailbox does not exist",
	.reporting_mta = "mx.example.com",
	.diagnostic_type = "smtp",
}};

static void
test_fixture_1(void **state)
{
	(void)state;
	check_fixture("1.eml", want1, nitems(want1));
}

static void
test_fixture_2(void **state)
{
	(void)state;
	check_fixture("2.eml", want2, nitems(want2));
}

static void
test_fixture_3(void **state)
{
	(void)state;
	check_fixture("3.eml", want3, nitems(want3));
}

static void
test_fixture_4(void **state)
{
	(void)state;
	check_fixture("4.eml", want4, nitems(want4));
}

static void
test_fixture_5(void **state)
{
	(void)state;
	check_fixture("5.eml", want5, nitems(want5));
}

static void
test_fixture_6(void **state)
{
	(void)state;
	check_fixture("6.eml", want6, nitems(want6));
}

static void
test_fixture_ses(void **state)
{
	(void)state;
	check_fixture("obsolete_arrival_date.eml", want_ses, nitems(want_ses));
}

/* The fixtures straight from disk, CRLF and all, decode the same. */
static void
test_fixture_raw_bytes(void **state)
{
	struct report r;
	size_t len;
	char *data = corpus_read("kumomta/rfc3464/1.eml", &len);

	(void)state;
	assert_int_equal(decode_text(data, len, &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_bounce(&r.bounces[0], &want1[0]);
	assert_null(r.trace);
	report_free(&r);
	free(data);
}

static void
test_extra_blank_lines(void **state)
{
	char *clean = fixture("2.eml");
	char *v1 = replace(clean, "Remote-MTA: dns; vnet.ibm.com\n\n",
	    "Remote-MTA: dns; vnet.ibm.com\n\n\n \n\t\n");
	char *v2 = replace(v1, "Reporting-MTA: dns; cs.utk.edu\n\n",
	    "\n\nReporting-MTA: dns; cs.utk.edu\n\n\n");

	(void)state;
	check_text(v1, want2, nitems(want2));
	check_text(v2, want2, nitems(want2));
	free(v2);
	free(v1);
	free(clean);
}

static void
test_weekday_mismatch(void **state)
{
	char *clean = fixture("1.eml");
	char *v = replace(clean, "Last-Attempt-Date: Thu, 7 Jul",
	    "Last-Attempt-Date: Mon, 7 Jul");

	(void)state;
	check_text(v, want1, nitems(want1));
	free(v);
	free(clean);
}

static void
test_action_case(void **state)
{
	static const char *forms[] = {
		"Action: Failed", "Action: FAILED", "Action: failed (permanent)",
		"Action:   failed ",
	};
	char *clean = fixture("1.eml");

	(void)state;
	for (size_t i = 0; i < nitems(forms); i++) {
		char *v = replace(clean, "Action: failed", forms[i]);
		check_text(v, want1, nitems(want1));
		free(v);
	}
	free(clean);
}

static void
test_base64_part(void **state)
{
	const char *head = "content-type: message/delivery-status\n\n";
	char *clean = fixture("1.eml");
	const char *start = strstr(clean, head);
	assert_non_null(start);
	start += strlen(head);
	const char *end = strstr(start, "\n--RAA14128");
	assert_non_null(end);

	(void)state;
	/* Encoded with CRLF line ends, as a sender on the wire would. */
	struct buf body = { 0 };
	for (const char *p = start; p <= end; p++) {
		if (*p == '\n')
			buf_putc(&body, '\r');
		buf_putc(&body, *p);
	}
	gchar *b64 = g_base64_encode((const guchar *)body.data, body.len);
	char *v = xasprintf("%.*scontent-type: message/delivery-status\n"
	    "Content-Transfer-Encoding: base64\n\n%s\n%s",
	    (int)(start - strlen(head) - clean), clean, b64, end + 1);
	check_text(v, want1, nitems(want1));

	/* Quoted-printable too. */
	char *qp = replace(clean, head, "content-type: message/delivery-status\n"
	    "Content-Transfer-Encoding: quoted-printable\n\n");
	char *qp2 = replace(qp, "Diagnostic-Code: smtp; 426",
	    "Diagnostic-Code: smtp;=20=34=326");
	check_text(qp2, want1, nitems(want1));

	free(qp2);
	free(qp);
	free(v);
	g_free(b64);
	buf_free(&body);
	free(clean);
}

/*
 * A generic Status (X.0.0): the Diagnostic-Code's own enhanced code as
 * classification evidence, the whole diagnostic text kept; a specific
 * Status leaves it alone.
 */
static void
test_generic_status_diag_code(void **state)
{
	static const char msg[] =
	    "From: MAILER-DAEMON@mx.example.net\n"
	    "To: bounce@example.com\n"
	    "Subject: failure\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=\"B\"\n\n"
	    "--B\nContent-Type: text/plain\n\nIt failed.\n\n"
	    "--B\nContent-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; mx.example.net\n\n"
	    "Final-Recipient: rfc822; bob@example.org\n"
	    "Action: failed\n"
	    "Status: 5.0.0\n"
	    "Diagnostic-Code: X-Exim; 550 5.1.1 <bob@example.org>: user unknown\n"
	    "\n"
	    "Final-Recipient: rfc822; carol@example.org\n"
	    "Action: failed\n"
	    "Status: 5.2.2\n"
	    "Diagnostic-Code: smtp; 552 4.2.2 mailbox full\n"
	    "\n--B--\n";
	struct report r;

	(void)state;
	assert_int_equal(decode_text(msg, strlen(msg), &r), 1);
	assert_int_equal(r.nbounces, 2);
	/* KumoMTA's fields as before: X-Exim is not smtp, so 550 and "" */
	assert_int_equal(r.bounces[0].code, 550);
	assert_string_equal(r.bounces[0].content, "");
	assert_int_equal(r.bounces[0].cls, 5);
	assert_int_equal(r.bounces[0].subject, 0);
	assert_int_equal(r.bounces[0].detail, 0);
	assert_true(r.bounces[0].has_diag_enhanced);
	assert_int_equal(r.bounces[0].dcls, 5);
	assert_int_equal(r.bounces[0].dsubject, 1);
	assert_int_equal(r.bounces[0].ddetail, 1);
	assert_string_equal(r.bounces[0].diagnostic_text,
	    "550 5.1.1 <bob@example.org>: user unknown");
	assert_null(r.bounces[0].notice_reply);
	/* a specific Status: no second code, even when the text has one */
	assert_false(r.bounces[1].has_diag_enhanced);
	assert_string_equal(r.bounces[1].diagnostic_text,
	    "552 4.2.2 mailbox full");
	report_free(&r);
}

/*
 * A generic Status and a diagnostic without a more specific code: the
 * reply that the human-readable part gives the recipient (Sendmail's
 * "(reason: ...)"), with its own codes; none for a recipient it does not
 * name.
 */
static void
test_generic_status_notice_reply(void **state)
{
	static const char msg[] =
	    "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\n"
	    "To: bounce@example.com\n"
	    "Subject: Returned mail: see transcript for details\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=\"B\"\n\n"
	    "--B\nContent-Type: text/plain\n\n"
	    "The original message was received from localhost\n\n"
	    "   ----- The following addresses had permanent fatal errors -----\n"
	    "<bob@example.org>\n"
	    "    (reason: 550 5.1.1 <bob@example.org>... User unknown)\n\n"
	    "--B\nContent-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; mx.example.net\n\n"
	    "Final-Recipient: RFC822; bob@example.org\n"
	    "Action: failed\n"
	    "Status: 5.0.0\n"
	    "Diagnostic-Code: X-Unix; 67\n"
	    "\n"
	    "Final-Recipient: RFC822; dave@example.org\n"
	    "Action: failed\n"
	    "Status: 5.0.0\n"
	    "\n--B--\n";
	struct report r;

	(void)state;
	assert_int_equal(decode_text(msg, strlen(msg), &r), 1);
	assert_int_equal(r.nbounces, 2);
	assert_false(r.bounces[0].has_diag_enhanced);
	assert_string_equal(r.bounces[0].notice_reply,
	    "550 5.1.1 <bob@example.org>... User unknown");
	assert_null(r.bounces[1].notice_reply);
	report_free(&r);

	/* Named in a sentence only (Gmail): that paragraph, with Status. */
	static const char gmail[] =
	    "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
	    "To: bounce@example.com\n"
	    "Subject: Delivery Status Notification (Failure)\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=\"B\"\n\n"
	    "--B\nContent-Type: text/plain\n\n"
	    "** Address not found **\n\n"
	    "Your message wasn't delivered to Bob@Example.org because the\n"
	    "address couldn't be found.\n\n"
	    "--B\nContent-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; googlemail.com\n\n"
	    "Final-Recipient: rfc822; bob@example.org\n"
	    "Action: failed\n"
	    "Status: 5.0.0\n"
	    "\n--B--\n";
	assert_int_equal(decode_text(gmail, strlen(gmail), &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_string_equal(r.bounces[0].notice_reply,
	    "550 5.0.0 Your message wasn't delivered to Bob@Example.org "
	    "because the address couldn't be found.");
	report_free(&r);
}

/*
 * Whether the notice shows the refusal answered DATA, whatever the Status:
 * a transcript's refusal right after ">>> DATA"; not when the client
 * pipelined and the first refusal after DATA was the RCPT's (a second one
 * follows); Postfix's "(in reply to end of DATA command)" folded over lines.
 */
static void
test_refused_after_data(void **state)
{
	static const char head[] =
	    "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\n"
	    "To: bounce@example.com\n"
	    "Subject: Returned mail: see transcript for details\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=\"B\"\n\n"
	    "--B\nContent-Type: text/plain\n\n"
	    "   ----- The following addresses had permanent fatal errors -----\n"
	    "<bob@example.org>\n"
	    "    (reason: 550 Unknown user bob@example.org)\n\n"
	    "   ----- Transcript of session follows -----\n"
	    "... while talking to mx.example.org.:\n";
	static const char tail[] =
	    "--B\nContent-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; mx.example.net\n\n"
	    "Final-Recipient: RFC822; bob@example.org\n"
	    "Action: failed\n"
	    "Status: 5.1.1\n"
	    "Diagnostic-Code: SMTP; 550 Unknown user bob@example.org\n"
	    "\n--B--\n";
	static const struct {
		const char *transcript;
		bool after_data;
	} cases[] = {
		{ ">>> DATA\n<<< 550 Unknown user bob@example.org\n"
		  "554 5.0.0 Service unavailable\n\n", true },
		{ ">>> DATA\n<<< 550 5.1.1 <bob@example.org>... User unknown\n"
		  "<<< 503 5.0.0 Need RCPT (recipient)\n\n", false },
		{ ">>> RCPT To:<bob@example.org>\n"
		  "<<< 550 Unknown user bob@example.org\n\n", false },
		{ "<bob@example.org>: host mx.example.org[192.0.2.1] said:\n"
		  "    550 Unknown user (in reply to end of DATA\n"
		  "    command)\n\n", true },
	};
	struct report r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *msg = xasprintf("%s%s%s", head, cases[i].transcript,
		    tail);
		assert_int_equal(decode_text(msg, strlen(msg), &r), 1);
		assert_int_equal(r.nbounces, 1);
		assert_int_equal(r.bounces[0].refused_after_data,
		    cases[i].after_data);
		report_free(&r);
		free(msg);
	}
}

/* The returned message's Message-ID, Subject, From and To. */
static void
test_returned_headers(void **state)
{
	static const char msg[] =
	    "From: MAILER-DAEMON@mx.example.net\n"
	    "To: bounce@example.com\n"
	    "Subject: failure\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=\"B\"\n\n"
	    "--B\nContent-Type: text/plain\n\nIt failed.\n\n"
	    "--B\nContent-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; mx.example.net\n\n"
	    "Final-Recipient: rfc822; bob@example.org\n"
	    "Action: failed\n"
	    "Status: 5.1.1\n"
	    "\n"
	    "--B\nContent-Type: text/rfc822-headers\n\n"
	    "Message-ID: <spring-42@mail.example.com>\n"
	    "From: News <news@example.com>\n"
	    "To: bob@example.org\n"
	    /* base64 words, the first padded: each decoded on its own */
	    "Subject: =?UTF-8?B?RnLDvGhsaW5nIQ==?=\n"
	    " =?UTF-8?B?IHNhbGUs?= part 2\n"
	    "\n--B--\n";
	struct report r;
	char *got;

	(void)state;
	assert_int_equal(decode_text(msg, strlen(msg), &r), 1);
	assert_non_null(r.returned);
	got = json_dumps(r.returned, JSON_COMPACT);
	assert_string_equal(got, "{\"message_id\":\"<spring-42@mail.example.com>\","
	    "\"subject\":\"Fr\xc3\xbchling! sale, part 2\","
	    "\"from\":\"News <news@example.com>\",\"to\":\"bob@example.org\"}");
	free(got);
	report_free(&r);
}

static void
test_status_missing(void **state)
{
	struct want w;

	(void)state;
	/* The Diagnostic-Code's enhanced code. */
	char *ses = fixture("obsolete_arrival_date.eml");
	char *v = replace(ses, "Status: 5.1.1\n", "");
	w = want_ses[0];
	w.status_derived = true;
	check_text(v, &w, 1);
	free(v);

	/* Also behind a multi-line reply's dash. */
	v = replace(ses, "Status: 5.1.1\n", "");
	char *v2 = replace(v, "smtp; 550 5.1.1", "smtp; 550-5.1.1");
	w.content = "550-5.1.1 Mailbox does not exist";
	check_text(v2, &w, 1);
	free(v2);
	free(v);

	/* A Status of the wrong shape: the dotted code inside it. */
	v = replace(ses, "Status: 5.1.1\n", "Status: 550 5.1.1 no such user\n");
	w = want_ses[0];
	w.status_comment = "no such user";
	check_text(v, &w, 1);
	free(v);
	free(ses);

	/* No enhanced code: the reply code's class. */
	char *one = fixture("1.eml");
	v = replace(one, "Status: 4.0.0\n", "");
	w = want1[0];
	w.status_derived = true;
	check_text(v, &w, 1);
	free(v);

	/* Not even a reply code: the action. */
	v = replace(one, "Status: 4.0.0\n", "");
	v2 = replace(v, "Diagnostic-Code: smtp; 426 connection timed out\n",
	    "Diagnostic-Code: X-Unix; connection timed out\n");
	w.cls = 5;
	w.code = 550;
	w.content = "";
	w.diagnostic_type = "X-Unix";
	check_text(v2, &w, 1);
	free(v2);
	free(v);

	/* Neither Status nor Action: unknown status, no action. */
	char *three = fixture("3.eml");
	v = replace(three, "Status: 5.0.0 (unknown permanent failure)\n", "");
	v2 = replace(v, "Action: failed\n", "");
	w = want3[0];
	w.action = NULL;
	w.has_status = false;
	w.status_comment = NULL;
	check_text(v2, &w, 1);
	free(v2);
	free(v);

	/* No Action: the status class says what happened. */
	v = replace(three, "Action: failed\n", "");
	check_text(v, want3, 1);
	free(v);
	free(three);
	free(one);
}

static void
test_duplicates_and_types(void **state)
{
	struct want w;
	char *one = fixture("1.eml");

	(void)state;
	/* A repeated field keeps its first value. */
	char *v = replace(one, "Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400\n",
	    "Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400\n"
	    "Action: delayed\nStatus: 2.0.0\nDiagnostic-Code: smtp; 250 ok\n"
	    "Last-Attempt-Date: Fri, 8 Jul 1994 17:15:49 -0400\n"
	    "Final-Recipient: rfc822;other@example.com\n");
	char *v2 = replace(v, "Reporting-MTA: dns; cs.utk.edu\n",
	    "Reporting-MTA: dns; cs.utk.edu\nReporting-MTA: dns; other\n");
	check_text(v2, want1, 1);
	free(v2);
	free(v);

	/* Recipient type in another case, with brackets. */
	v = replace(one, "Original-Recipient: rfc822;louisl@larry.slip.umd.edu",
	    "Original-Recipient: RFC822; <louisl@larry.slip.umd.edu>");
	w = want1[0];
	w.original_recipient = "RFC822; <louisl@larry.slip.umd.edu>";
	check_text(v, &w, 1);
	free(v);

	/* Diagnostic type in another case. */
	v = replace(one, "smtp; 426", "SMTP; 426");
	w = want1[0];
	w.diagnostic_type = "SMTP";
	check_text(v, &w, 1);
	free(v);

	/* An unparseable date counts as absent. */
	v = replace(one, "Thu, 7 Jul 1994 17:15:49 -0400", "yesterday");
	w = want1[0];
	w.has_last_attempt = false;
	check_text(v, &w, 1);
	free(v);

	/* Missing Reporting-MTA: still a DSN. */
	v = replace(one, "Reporting-MTA: dns; cs.utk.edu\n", "X-Other: 1\n");
	w = want1[0];
	w.reporting_mta = "";
	check_text(v, &w, 1);
	free(v);

	/* Media types compare case-insensitively. */
	v = replace(one, "multipart/report", "Multipart/Report");
	v2 = replace(v, "message/delivery-status", "Message/Delivery-Status");
	check_text(v2, want1, 1);
	free(v2);
	free(v);

	/* Only Final-Recipient: the recipient comes from it. */
	v = replace(one, "Original-Recipient: rfc822;louisl@larry.slip.umd.edu\n",
	    "");
	w = want1[0];
	w.original_recipient = NULL;
	check_text(v, &w, 1);
	free(v);

	/* Diagnostic forms: no space, not a number, no type. */
	static const struct {
		const char *diag;
		int code;
		const char *content, *type;
	} diags[] = {
		{ "smtp; 426", 550, "426", "smtp" },
		{ "smtp; 70000 big", 550, "70000 big", "smtp" },
		{ "smtp; +451 x", 451, "x", "smtp" },
		{ "smtp;", 550, "", "smtp" },
		{ "426 connection timed out", 550, "", NULL },
		{ "X-Postfix; 426 connection timed out", 550, "", "X-Postfix" },
	};
	for (size_t i = 0; i < nitems(diags); i++) {
		char *line = xasprintf("Diagnostic-Code: %s\n", diags[i].diag);
		v = replace(one, "Diagnostic-Code: smtp; 426 connection timed out\n",
		    line);
		w = want1[0];
		w.code = diags[i].code;
		w.content = diags[i].content;
		w.diagnostic_type = diags[i].type;
		check_text(v, &w, 1);
		free(v);
		free(line);
	}
	free(one);
}

static void
test_recipient_forms(void **state)
{
	static const struct {
		const char *field, *recipient;
	} forms[] = {
		{ "rfc822;<@a.example,@b.example:louis@larry.example>",
		    "louis@larry.example" },
		{ "rfc822; \"john doe\"@example.com", "\"john doe\"@example.com" },
		{ "rfc822; <\"a\\\"b\"@example.com>", "\"a\\\"b\"@example.com" },
		{ "rfc822; <>", "" },
		{ "rfc822; postmaster", "Postmaster" },
		{ "rfc822; user@[192.0.2.1]", "user@[192.0.2.1]" },
		{ "rfc822; <user@example.com", "<user@example.com" },
		{ "rfc822; <not an address>", "not an address" },
		{ "utf-8; j\xc3\xb6rg@example.com", "j\xc3\xb6rg@example.com" },
		{ "x400; /C=us/A=x/", "/C=us/A=x/" },
		{ "louis@larry.example", "louis@larry.example" },
	};
	char *three = fixture("3.eml");

	(void)state;
	for (size_t i = 0; i < nitems(forms); i++) {
		char *line = xasprintf("Final-Recipient: %s\n", forms[i].field);
		char *v = replace(three, "Final-Recipient: unknown; nair_s\n", line);
		struct want w = want3[0];
		w.final_recipient = forms[i].field;
		w.recipient = forms[i].recipient;
		check_text(v, &w, 1);
		free(v);
		free(line);
	}
	free(three);
}

static void
test_skipped_groups(void **state)
{
	char *two = fixture("2.eml");

	(void)state;
	/* The middle group names no recipient: the others still count. */
	char *v = replace(two,
	    "Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com\n"
	    "Final-Recipient: rfc822;johnh@hpnjld.njd.hp.com\n", "");
	const struct want w[] = { want2[0], want2[2] };
	check_text(v, w, 2);
	free(v);

	/* A group that is not a header block at all is skipped too. */
	v = replace(two,
	    "Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com\n",
	    "this is not a field\n");
	check_text(v, w, 2);
	free(v);

	/* Per-message and recipient fields run together in one group. */
	char *one = fixture("1.eml");
	v = replace(one, "Reporting-MTA: dns; cs.utk.edu\n\n",
	    "Reporting-MTA: dns; cs.utk.edu\n");
	check_text(v, want1, 1);
	free(v);
	free(one);
	free(two);
}

static void
test_global_dsn(void **state)
{
	struct report r;
	char *one = fixture("1.eml");
	char *v = replace(one, "message/delivery-status",
	    "message/global-delivery-status");

	(void)state;
	assert_int_equal(decode_text(v, strlen(v), &r), 1);
	assert_string_equal(r.decoder, "rfc6533");
	assert_int_equal(r.nbounces, 1);
	assert_bounce(&r.bounces[0], &want1[0]);
	report_free(&r);
	free(v);

	/* The first delivery-status part wins. */
	v = replace(one, "--RAA14128.773615765/CS.UTK.EDU\ncontent-type: message/rfc822",
	    "--RAA14128.773615765/CS.UTK.EDU\n"
	    "content-type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; second\n\n"
	    "Final-Recipient: rfc822;second@example.com\n"
	    "Action: failed\nStatus: 5.0.0\n\n"
	    "--RAA14128.773615765/CS.UTK.EDU\ncontent-type: message/rfc822");
	check_text(v, want1, 1);
	free(v);
	free(one);
}

/* The trace found is the one wanted (none when want is NULL). */
static void
assert_trace(const json_t *got, const json_t *want)
{
	if (want == NULL)
		assert_null(got);
	else
		assert_true(json_equal(got, want));
}

static void
test_trace(void **state)
{
	static const char *ref =
	    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20ifQ==";
	const char *hdrs_first =
	    "Subject: first\nX-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50Ijoi\n"
	    "\tcmVjaXBAZXhhbXBsZS5jb20ifQ==\n";
	struct report r;
	char *one = fixture("1.eml");

	(void)state;
	json_t *want = kumoref_scan_headers(hdrs_first, strlen(hdrs_first));
	/* Whatever kumoref.c decodes, the DSN passes through unchanged. */
	if (want != NULL) {
		json_t *obj = json_pack("{s:s}", "recipient", "recip@example.com");
		assert_true(json_equal(want, obj));
		json_decref(obj);
	}

	/* message/rfc822: the headers of its body. */
	char *body = xasprintf("content-type: message/rfc822\n\n%s\nbody text\n",
	    hdrs_first);
	char *v = replace(one, "content-type: message/rfc822\n\n", body);
	assert_int_equal(decode_text(v, strlen(v), &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_bounce(&r.bounces[0], &want1[0]);
	assert_trace(r.trace, want);
	report_free(&r);
	free(v);
	free(body);

	/* text/rfc822-headers, base64-encoded: the body is the block. */
	gchar *b64 = g_base64_encode((const guchar *)hdrs_first,
	    strlen(hdrs_first));
	body = xasprintf("content-type: text/rfc822-headers\n"
	    "Content-Transfer-Encoding: base64\n\n%s\n", b64);
	v = replace(one, "content-type: message/rfc822\n\n"
	    "[original message goes here]\n", body);
	assert_int_equal(decode_text(v, strlen(v), &r), 1);
	assert_int_equal(r.nbounces, 1);
	assert_trace(r.trace, want);
	report_free(&r);
	free(v);
	free(body);
	g_free(b64);

	/* The type in any case: "RFC822" is found as "rfc822" is. */
	body = xasprintf("Content-Type: TEXT/RFC822-Headers\n\n%s\n",
	    hdrs_first);
	v = replace(one, "content-type: message/rfc822\n\n"
	    "[original message goes here]\n", body);
	assert_int_equal(decode_text(v, strlen(v), &r), 1);
	assert_trace(r.trace, want);
	report_free(&r);
	free(v);
	free(body);

	/* Text after the header block is not searched. */
	body = xasprintf("content-type: message/rfc822\n\n"
	    "Subject: x\n\nX-KumoRef: %s\n", ref);
	v = replace(one, "content-type: message/rfc822\n\n", body);
	assert_int_equal(decode_text(v, strlen(v), &r), 1);
	assert_null(r.trace);
	report_free(&r);
	free(v);
	free(body);

	/*
	 * More groups than one GMime parse takes, and fewer: the returned
	 * headers are found either way.
	 */
	for (int ngroups = 3; ngroups <= 40; ngroups += 37) {
		struct buf many = { 0 };
		buf_puts(&many, "From: MAILER-DAEMON@example.net\n"
		    "MIME-Version: 1.0\nContent-Type: multipart/report; "
		    "report-type=delivery-status; boundary=\"B\"\n\n"
		    "--B\nContent-Type: text/plain\n\nfailed\n\n"
		    "--B\nContent-Type: message/delivery-status\n\n"
		    "Reporting-MTA: dns; mx.example.net\n");
		for (int i = 0; i < ngroups; i++)
			buf_printf(&many, "\nFinal-Recipient: rfc822; "
			    "r%d@example.com\nAction: failed\n"
			    "Status: 5.1.1\n", i);
		buf_printf(&many, "\n--B\nContent-Type: text/rfc822-headers"
		    "\n\n%s\n--B--\n", hdrs_first);
		char *text = buf_steal(&many);
		assert_int_equal(decode_text(text, strlen(text), &r), 1);
		assert_int_equal(r.nbounces, ngroups);
		char *last = xasprintf("r%d@example.com", ngroups - 1);
		assert_string_equal(r.bounces[ngroups - 1].recipient, last);
		assert_string_equal(r.bounces[0].reporting_mta,
		    "mx.example.net");
		assert_trace(r.trace, want);
		report_free(&r);
		free(last);
		free(text);
	}

	if (want != NULL)
		json_decref(want);
	free(one);
}

static void
test_not_dsn(void **state)
{
	static const char *texts[] = {
		"",
		"\n\n",
		"Subject: hello\n\nplain text\n",
		"Content-Type: text/plain\n\nReporting-MTA: dns; x\n",
		/* multipart, but not a report */
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		"Content-Type: message/delivery-status\n\n"
		"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822;a@b\n"
		"Action: failed\nStatus: 5.0.0\n--b--\n",
		/* a report without a delivery-status part (ARF) */
		"Content-Type: multipart/report; report-type=feedback-report;"
		" boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n"
		"--b\nContent-Type: message/feedback-report\n\n"
		"Feedback-Type: abuse\n--b--\n",
		/* the delivery-status part nested, not a direct child */
		"Content-Type: multipart/report; boundary=b\n\n--b\n"
		"Content-Type: multipart/mixed; boundary=c\n\n--c\n"
		"Content-Type: message/delivery-status\n\n"
		"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822;a@b\n"
		"Action: failed\nStatus: 5.0.0\n--c--\n--b--\n",
	};
	struct report r;

	(void)state;
	for (size_t i = 0; i < nitems(texts); i++) {
		memset(&r, 0, sizeof(r));
		if (decode_text(texts[i], strlen(texts[i]), &r) != 0)
			fail_msg("text %zu decoded", i);
		assert_int_equal(r.kind, REPORT_NONE);
		assert_int_equal(r.nbounces, 0);
		assert_null(r.trace);
	}
}

static void
test_malformed_dsn(void **state)
{
	static const char *bodies[] = {
		"",
		"\n\n\n",
		"just some text\nthat is not fields\n",
		"Reporting-MTA: dns; x\n\nFinal: nothing useful\n\nAlso: no\n",
	};
	struct report r;

	(void)state;
	for (size_t i = 0; i < nitems(bodies); i++) {
		char *text = xasprintf("Content-Type: multipart/report;"
		    " boundary=b\n\n--b\n"
		    "Content-Type: message/delivery-status\n\n%s\n--b--\n",
		    bodies[i]);
		int rc = decode_text(text, strlen(text), &r);
		if (rc != -1)
			fail_msg("body %zu gave %d", i, rc);
		report_free(&r);
		free(text);
	}

	/* Only a per-message group: a report with no recipients. */
	const char *pm = "Content-Type: multipart/report; boundary=b\n\n--b\n"
	    "Content-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; x\n\n--b--\n";
	assert_int_equal(decode_text(pm, strlen(pm), &r), 1);
	assert_int_equal(r.kind, REPORT_BOUNCE);
	assert_int_equal(r.nbounces, 0);
	report_free(&r);
}

static void
test_non_utf8_fields(void **state)
{
	struct want w = want3[0];
	char *three = fixture("3.eml");
	char *v = replace(three, "Final-Recipient: unknown; nair_s\n",
	    "Final-Recipient: unknown; nair_\xff\xfe\n");
	char *v2 = replace(v, "Reporting-MTA: mailbus; SYS30",
	    "Reporting-MTA: mailbus; SYS\xe9" "30");
	char *v3 = replace(v2, "(unknown permanent failure)",
	    "(\xc3\x28 bad)");

	(void)state;
	w.recipient = "nair_\xef\xbf\xbd\xef\xbf\xbd";
	w.final_recipient = "unknown; nair_\xef\xbf\xbd\xef\xbf\xbd";
	w.reporting_mta = "SYS\xef\xbf\xbd" "30";
	w.status_comment = "(\xef\xbf\xbd( bad)";
	check_text(v3, &w, 1);

	/* A delivery-status body with NUL bytes and junk. */
	const char raw[] = "Content-Type: multipart/report; boundary=b\n\n--b\n"
	    "Content-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; x\0y\n\nFinal-Recipient: rfc822;a\0@b\n"
	    "Action: fa\0iled\nStatus: 5.\0.0\n\n--b--\n";
	struct report r;
	int rc = decode_text(raw, sizeof(raw) - 1, &r);
	assert_true(rc == 1 || rc == -1);
	for (size_t i = 0; i < r.nbounces; i++) {
		const struct bounce *b = &r.bounces[i];
		assert_non_null(b->recipient);
		assert_true(utf8_valid(b->recipient, strlen(b->recipient)));
		assert_non_null(b->content);
	}
	report_free(&r);
	free(v3);
	free(v2);
	free(v);
	free(three);
}

/* Every prefix of a fixture: a defined result and valid strings. */
static void
test_truncated(void **state)
{
	char *two = fixture("2.eml");
	size_t len = strlen(two);
	int decoded = 0;

	(void)state;
	for (size_t n = 0; n <= len; n++) {
		struct report r;
		int rc = decode_text(two, n, &r);
		assert_true(rc >= -1 && rc <= 1);
		if (rc == 1)
			decoded++;
		for (size_t i = 0; i < r.nbounces; i++) {
			const struct bounce *b = &r.bounces[i];
			assert_non_null(b->recipient);
			assert_non_null(b->content);
			assert_non_null(b->reporting_mta);
		}
		report_free(&r);
	}
	/* Cut after the last group the whole report is there. */
	assert_true(decoded > 0);
	free(two);
}

static void
test_many_groups(void **state)
{
	struct buf b = { 0 };
	struct report r;

	(void)state;
	buf_puts(&b, "Content-Type: multipart/report; boundary=b\n\n--b\n"
	    "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n");
	for (int i = 0; i < 12000; i++)
		buf_printf(&b, "\nFinal-Recipient: rfc822;u%d@example.com\n"
		    "Action: failed\nStatus: 5.1.1\n", i);
	buf_puts(&b, "--b--\n");
	assert_int_equal(decode_text(b.data, b.len, &r), 1);
	/* Capped, in document order. */
	assert_int_equal(r.nbounces, 10000);
	assert_string_equal(r.bounces[9999].recipient, "u9999@example.com");
	report_free(&r);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_1),
		cmocka_unit_test(test_fixture_2),
		cmocka_unit_test(test_fixture_3),
		cmocka_unit_test(test_fixture_4),
		cmocka_unit_test(test_fixture_5),
		cmocka_unit_test(test_fixture_6),
		cmocka_unit_test(test_fixture_ses),
		cmocka_unit_test(test_fixture_raw_bytes),
		cmocka_unit_test(test_extra_blank_lines),
		cmocka_unit_test(test_weekday_mismatch),
		cmocka_unit_test(test_action_case),
		cmocka_unit_test(test_base64_part),
		cmocka_unit_test(test_status_missing),
		cmocka_unit_test(test_duplicates_and_types),
		cmocka_unit_test(test_recipient_forms),
		cmocka_unit_test(test_skipped_groups),
		cmocka_unit_test(test_global_dsn),
		cmocka_unit_test(test_trace),
		cmocka_unit_test(test_not_dsn),
		cmocka_unit_test(test_malformed_dsn),
		cmocka_unit_test(test_non_utf8_fields),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_many_groups),
		cmocka_unit_test(test_generic_status_diag_code),
		cmocka_unit_test(test_generic_status_notice_reply),
		cmocka_unit_test(test_refused_after_data),
		cmocka_unit_test(test_returned_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
