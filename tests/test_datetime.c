/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_datetime.c - RFC 2822 dates as KumoMTA reads them.
 */
#include "testutil.h"

#include "datetime.h"

/* Parse s and return it as RFC 3339 UTC ("" when it is not a date). */
static const char *
utc(const char *s, bool *wday_ok)
{
	static char out[48];
	time_t t;
	bool ok;

	if (rfc2822_date(s, &t, &ok) != 0)
		return "";
	if (wday_ok != NULL)
		*wday_ok = ok;
	format_rfc3339(out, sizeof(out), t, 0);
	return out;
}

static void
test_rfc_examples(void **state)
{
	bool ok;

	(void)state;
	/* RFC 3464 1.eml and RFC 2822 appendix A. */
	assert_string_equal(utc("Thu, 7 Jul 1994 17:15:49 -0400", &ok),
	    "1994-07-07T21:15:49Z");
	assert_true(ok);
	time_t t;
	assert_int_equal(rfc2822_date("Thu, 7 Jul 1994 17:15:49 -0400", &t,
	    &ok), 0);
	assert_int_equal(t, 773615749);
	assert_string_equal(utc("Fri, 21 Nov 1997 09:55:06 -0600", &ok),
	    "1997-11-21T15:55:06Z");
	assert_true(ok);
	assert_string_equal(utc("Tue, 1 Jul 2003 10:52:37 +0200", &ok),
	    "2003-07-01T08:52:37Z");
	assert_true(ok);
	/* Folded, no seconds, a comment after the zone, before 1970. */
	assert_string_equal(utc("Thu,\n      13\n        Feb\n          1969\n"
	    "      23:32\n               -0330 (Newfoundland Time)", &ok),
	    "1969-02-14T03:02:00Z");
	assert_true(ok);
	/* Obsolete: 2-digit year, no weekday, named zone. */
	assert_string_equal(utc("21 Nov 97 09:55:06 GMT", &ok),
	    "1997-11-21T09:55:06Z");
	assert_true(ok);
	assert_string_equal(utc("21 Nov 97 09:55:06 UT", NULL),
	    "1997-11-21T09:55:06Z");
	assert_string_equal(utc("Fri, 21 Nov 1997 09:55:06 PST", NULL),
	    "1997-11-21T17:55:06Z");
	assert_string_equal(utc("Fri, 21 Nov 1997 09:55:06 cdt", NULL),
	    "1997-11-21T14:55:06Z");
	/* 3-digit years count from 1900. */
	assert_string_equal(utc("1 Jan 112 00:00:00 +0000", NULL),
	    "2012-01-01T00:00:00Z");
	/* Leap day, and a leap second kept inside second 59 as chrono does. */
	assert_string_equal(utc("29 Feb 2024 12:00:00 +0000", NULL),
	    "2024-02-29T12:00:00Z");
	assert_string_equal(utc("31 Dec 2016 23:59:60 +0000", NULL),
	    "2016-12-31T23:59:59Z");
}

static void
test_kumomta_cases(void **state)
{
	bool ok;

	(void)state;
	/* Amazon SES: 2-digit year and UTC, which chrono does not know. */
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 UTC", &ok),
	    "2026-07-02T18:55:38Z");
	assert_true(ok);
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 UTC (Coordinated)", &ok),
	    "2026-07-02T18:55:38Z");
	/* Postfix (5.eml). */
	assert_string_equal(utc("Wed, 29 Jan 2025 17:36:51 +0100 (CET)", &ok),
	    "2025-01-29T16:36:51Z");
	assert_true(ok);
	/* Table zones keep their offset; lowercase is looked up uppercased. */
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 CEST", NULL),
	    "2026-07-02T16:55:38Z");
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 JST", NULL),
	    "2026-07-02T09:55:38Z");
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 utc", NULL),
	    "2026-07-02T18:55:38Z");
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 EST", NULL),
	    "2026-07-02T23:55:38Z");
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 NST", NULL),
	    "2026-07-02T22:25:38Z");
	/* Ambiguous (IST), unknown and military zones are -0000. */
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 IST", NULL),
	    "2026-07-02T18:55:38Z");
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 FOOBAR", NULL),
	    "2026-07-02T18:55:38Z");
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 A", NULL),
	    "2026-07-02T18:55:38Z");
	assert_string_equal(utc("Thu, 02 Jul 26 18:55:38 Z", NULL),
	    "2026-07-02T18:55:38Z");
}

static void
test_weekday_mismatch(void **state)
{
	bool ok = true;

	(void)state;
	/* 8 Mar 2005 was a Tuesday: flagged, the time still returned. */
	assert_string_equal(utc("Thu, 8 Mar 2005 14:00:00 EDT", &ok),
	    "2005-03-08T18:00:00Z");
	assert_false(ok);
	assert_string_equal(utc("Tue, 8 Mar 2005 14:00:00 EDT", &ok),
	    "2005-03-08T18:00:00Z");
	assert_true(ok);
	assert_string_equal(utc("tue,8 mar 2005 14:00:00 -0000", &ok),
	    "2005-03-08T14:00:00Z");
	assert_true(ok);
	/* A NULL flag pointer is allowed. */
	time_t t;
	assert_int_equal(rfc2822_date("Mon, 8 Mar 2005 14:00:00 +0000", &t,
	    NULL), 0);
}

static void
test_not_dates(void **state)
{
	static const char *bad[] = {
		"",
		"   ",
		"not a date",
		"Thu, 02 Jul 26 18:55:38",		/* no zone */
		"Thu 02 Jul 26 18:55:38 +0000",		/* weekday without comma */
		"Thursday, 02 Jul 2026 18:55:38 +0000",
		"32 Jan 2025 10:00:00 +0000",
		"29 Feb 2023 10:00:00 +0000",
		"0 Feb 2023 10:00:00 +0000",
		"1 Foo 2023 10:00:00 +0000",
		"1 Jan 2023 24:00:00 +0000",
		"1 Jan 2023 10:60:00 +0000",
		"1 Jan 2023 10:00:61 +0000",
		"1 Jan 2023 1:00:00 +0000",		/* chrono wants 2 digits */
		"1 Jan 2 10:00:00 +0000",
		"1 Jan 123456 10:00:00 +0000",
		"1 Jan 2023 10:00:00 +000",
		"1 Jan 2023 10:00:00 +0060",
		"1 Jan 2023 10:00:00 +2400",
		"1 Jan 2023 10:00:00 +0000 UTC",	/* trailing text */
		"1 Jan 2023 10:00:00 +0000 (unclosed",
		"1 Jan 2023 10:00:00 UTC+1",
		"1 Jan 2023 10:00:00 Europe/Paris",
		"1 Jan 2023 10:00:00 +0000 \xff",
		"1 Jan 99999999999999999999 10:00:00 +0000",
	};
	time_t t = 42;
	bool ok;

	(void)state;
	for (size_t i = 0; i < nitems(bad); i++) {
		if (rfc2822_date(bad[i], &t, &ok) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(rfc2822_date(NULL, &t, &ok), -1);
	assert_int_equal(t, 42);

	/* Deeply nested comments are bounded, not recursed into. */
	struct buf b = { 0 };
	buf_puts(&b, "1 Jan 2023 10:00:00 +0000 ");
	for (int i = 0; i < 10000; i++)
		buf_putc(&b, '(');
	for (int i = 0; i < 10000; i++)
		buf_putc(&b, ')');
	assert_int_equal(rfc2822_date(b.data, &t, &ok), -1);
	buf_free(&b);
	assert_int_equal(rfc2822_date("1 Jan 2023 10:00:00 +0000 ((a\\)) b)",
	    &t, &ok), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_examples),
		cmocka_unit_test(test_kumomta_cases),
		cmocka_unit_test(test_weekday_mismatch),
		cmocka_unit_test(test_not_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
