/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_smtp_cmd.c - command lines, paths and MAIL/RCPT parameters.
 */
#include "testutil.h"

#include "smtp_cmd.h"

static void
test_verbs(void **state)
{
	struct smtp_cmd c;

	(void)state;
	smtp_cmd_parse("ehlo mx.example.com", &c);
	assert_int_equal(c.verb, CMD_EHLO);
	assert_string_equal(c.args, "mx.example.com");
	smtp_cmd_parse("MAIL FROM:<>", &c);
	assert_int_equal(c.verb, CMD_MAIL);
	assert_string_equal(c.args, "FROM:<>");
	smtp_cmd_parse("DATA", &c);
	assert_int_equal(c.verb, CMD_DATA);
	assert_string_equal(c.args, "");
	smtp_cmd_parse("StartTLS", &c);
	assert_int_equal(c.verb, CMD_STARTTLS);
	smtp_cmd_parse("MAILX FROM:<>", &c);
	assert_int_equal(c.verb, CMD_UNKNOWN);
	smtp_cmd_parse("GET / HTTP/1.1", &c);
	assert_int_equal(c.verb, CMD_FORBIDDEN);
	smtp_cmd_parse("CONNECT x:25", &c);
	assert_int_equal(c.verb, CMD_FORBIDDEN);
	smtp_cmd_parse("Subject: x", &c);
	assert_int_equal(c.verb, CMD_FORBIDDEN);
	smtp_cmd_parse("", &c);
	assert_int_equal(c.verb, CMD_UNKNOWN);
	assert_string_equal(smtp_verb_name(CMD_RCPT), "RCPT");
}

static void
mail_ok(const char *args, const char *addr, const char *domain)
{
	struct smtp_path p;
	struct mail_params mp;
	struct smtp_err e;

	if (smtp_parse_mail(args, true, &p, &mp, &e) != 0)
		fail_msg("MAIL %s refused: %d %s %s", args, e.code, e.enhanced,
		    e.text);
	assert_string_equal(p.addr, addr);
	if (domain == NULL)
		assert_null(p.domain);
	else
		assert_string_equal(p.domain, domain);
	smtp_path_free(&p);
}

static void
mail_bad(const char *args, bool utf8, int code, const char *enh,
    const char *text)
{
	struct smtp_path p;
	struct mail_params mp;
	struct smtp_err e;

	assert_int_equal(smtp_parse_mail(args, utf8, &p, &mp, &e), -1);
	assert_int_equal(e.code, code);
	assert_string_equal(e.enhanced, enh);
	assert_string_equal(e.text, text);
}

static void
test_mail(void **state)
{
	struct smtp_path p;
	struct mail_params mp;
	struct smtp_err e;

	(void)state;
	mail_ok("FROM:<>", "", NULL);
	mail_ok("from:<a@b.example>", "a@b.example", "b.example");
	mail_ok("FROM: <a@b.example>", "a@b.example", "b.example");
	mail_ok("FROM:a@b.example", "a@b.example", "b.example");
	mail_ok("FROM:<@relay.example,@r2.example:u@d.example>", "u@d.example",
	    "d.example");
	mail_ok("FROM:<\"john doe\"@example.com>", "\"john doe\"@example.com",
	    "example.com");
	mail_ok("FROM:<bounce+2d998f.371096-redacted=redacted.com@example.com>",
	    "bounce+2d998f.371096-redacted=redacted.com@example.com",
	    "example.com");
	mail_ok("FROM:<u@[192.0.2.1]>", "u@[192.0.2.1]", "[192.0.2.1]");

	assert_int_equal(smtp_parse_mail("FROM:<a@b.example> SIZE=1000 "
	    "BODY=8BITMIME", true, &p, &mp, &e), 0);
	assert_true(mp.has_size);
	assert_int_equal(mp.size, 1000);
	assert_true(mp.body_8bit);
	smtp_path_free(&p);
	assert_int_equal(smtp_parse_mail("FROM:<j\xc3\xb6rg@b.example> SMTPUTF8",
	    true, &p, &mp, &e), 0);
	assert_true(mp.smtputf8);
	assert_true(p.utf8);
	smtp_path_free(&p);

	mail_bad("FROM:<a>", true, 501, "5.1.7", "Address must have a domain");
	mail_bad("FROM:<a@>", true, 501, "5.1.7", "Syntax error in domain");
	mail_bad("FROM:<a@b.example", true, 501, "5.1.7", "Syntax error in address");
	mail_bad("TO:<a@b.example>", true, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	mail_bad("FROM:<a@b.example> SIZE=abc", true, 501, "5.5.4",
	    "Bad message size syntax");
	mail_bad("FROM:<a@b.example> BODY=FOO", true, 501, "5.5.4",
	    "Unsupported BODY type");
	mail_bad("FROM:<a@b.example> FOO=BAR", true, 555, "5.5.4",
	    "Unsupported option");
	mail_bad("FROM:<j\xc3\xb6rg@b.example>", true, 553, "5.6.7",
	    "Must declare SMTPUTF8 to send unicode address");
	mail_bad("FROM:<j\xff@b.example> SMTPUTF8", true, 501, "5.1.7",
	    "Invalid UTF-8 in address");
	char longlocal[100];
	memset(longlocal, 'x', 65);
	strcpy(longlocal + 65, "@b.example>");
	char *args = xasprintf("FROM:<%s", longlocal);
	mail_bad(args, true, 501, "5.1.7", "Local part too long");
	free(args);
}

static void
test_rcpt(void **state)
{
	struct smtp_path p;
	struct smtp_err e;

	(void)state;
	assert_int_equal(smtp_parse_rcpt("TO:<Bounce@Bounce.Example.com>", false,
	    &p, &e), 0);
	assert_string_equal(p.addr, "Bounce@Bounce.Example.com");
	assert_string_equal(p.domain, "Bounce.Example.com");
	smtp_path_free(&p);

	/* The null path is only for senders. */
	assert_int_equal(smtp_parse_rcpt("TO:<>", false, &p, &e), -1);
	assert_int_equal(e.code, 501);
	assert_string_equal(e.enhanced, "5.1.3");

	/* Addresses that route onward are refused (open-relay tricks). */
	static const char *const tricks[] = {
		"TO:<victim%elsewhere.example@bounce.example.com>",
		"TO:<elsewhere.example!victim@bounce.example.com>",
		"TO:<\"victim@elsewhere.example\"@bounce.example.com>",
	};
	for (size_t i = 0; i < nitems(tricks); i++) {
		assert_int_equal(smtp_parse_rcpt(tricks[i], false, &p, &e), -1);
		assert_int_equal(e.code, 553);
		assert_string_equal(e.enhanced, "5.1.3");
	}
	assert_int_equal(smtp_parse_rcpt("TO:<a@b.example> NOTIFY=NEVER", false,
	    &p, &e), -1);
	assert_int_equal(e.code, 555);
	/* A source route is dropped, the address kept. */
	assert_int_equal(smtp_parse_rcpt("TO:<@hop.example:a@b.example>", false,
	    &p, &e), 0);
	assert_string_equal(p.addr, "a@b.example");
	smtp_path_free(&p);
}

static void
test_helo(void **state)
{
	(void)state;
	assert_true(smtp_valid_helo("mx.example.com"));
	assert_true(smtp_valid_helo("[192.0.2.1]"));
	assert_false(smtp_valid_helo("bad host"));
	assert_false(smtp_valid_helo(""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_helo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
