/* SPDX-License-Identifier: Apache-2.0 */
/*
 * datetime.c - RFC 2822 dates the way KumoMTA reads them.
 *
 * KumoMTA first runs chrono's RFC 2822 parser and, when that fails, retries
 * after replacing a trailing alphabetic zone by its offset from a table
 * generated from the tz database (or by -0000 when the name is unknown or
 * ambiguous). The net effect, reproduced here in one pass, is chrono's
 * grammar with any alphabetic zone accepted:
 *
 *   [ weekday "," ] day month year hour ":" minute [ ":" second ] zone
 *   *( "(" comment ")" )
 *
 * with whitespace allowed between tokens, 1-2 digit days, 2-digit years
 * read as 20xx below 50 and 19xx otherwise, 3-digit years plus 1900, and
 * exactly two digits for hours, minutes and seconds. chrono rejects a
 * weekday that does not match the date; that is reported separately so
 * that tolerant callers can still use the time.
 */
#include "config.h"

#include <string.h>

#include "datetime.h"
#include "util.h"

static const char *const wdays[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat",
};
static const char *const months[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec",
};

/* Zones chrono knows itself (RFC 5322 section 4.3), in minutes east. */
static const struct {
	const char *name;
	int	 minutes;
} rfc_zones[] = {
	{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 },
	{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
	{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
};

/*
 * KumoMTA's zone_offsets table: abbreviations that the tz database renders
 * at a single offset. Anything else (IST, ...) counts as -0000.
 */
static const struct {
	const char *name;
	int	 minutes;
} abbrev_zones[] = {
	{ "ACDT", 630 }, { "ACST", 570 }, { "ADT", -180 }, { "AEDT", 660 },
	{ "AEST", 600 }, { "AKDT", -480 }, { "AKST", -540 }, { "AST", -240 },
	{ "AWST", 480 }, { "BST", 60 }, { "CAT", 120 }, { "CEST", 120 },
	{ "CET", 60 }, { "CHST", 600 }, { "EAT", 180 }, { "EDT", -240 },
	{ "EEST", 180 }, { "EET", 120 }, { "EST", -300 }, { "GMT", 0 },
	{ "HDT", -540 }, { "HKT", 480 }, { "HST", -600 }, { "IDT", 180 },
	{ "JST", 540 }, { "KST", 540 }, { "MDT", -360 }, { "MSK", 180 },
	{ "MST", -420 }, { "NDT", -150 }, { "NST", -210 }, { "NZDT", 780 },
	{ "NZST", 720 }, { "PDT", -420 }, { "PKT", 300 }, { "SAST", 120 },
	{ "SST", -660 }, { "UTC", 0 }, { "WAT", 60 }, { "WEST", 60 },
	{ "WET", 0 }, { "WIB", 420 }, { "WIT", 540 }, { "WITA", 480 },
};

/* Comments nest; a bound keeps hostile input from meaning anything odd. */
#define MAX_COMMENT_DEPTH	64

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static const char *
skip_ws(const char *p)
{
	while (is_ws(*p))
		p++;
	return p;
}

/* One or more whitespace characters, as chrono requires between fields. */
static const char *
need_ws(const char *p)
{
	if (!is_ws(*p))
		return NULL;
	return skip_ws(p);
}

/* Between min and max digits; NULL when fewer than min. */
static const char *
number(const char *p, int min, int max, long *out, int *ndigits)
{
	long v = 0;
	int n = 0;

	while (n < max && is_digit(p[n])) {
		v = v * 10 + (p[n] - '0');
		n++;
	}
	if (n < min)
		return NULL;
	*out = v;
	if (ndigits != NULL)
		*ndigits = n;
	return p + n;
}

/* Index of a three-letter name from tab at p (any case), or -1. */
static int
name3(const char *p, const char *const *tab, size_t ntab)
{
	for (size_t i = 0; i < ntab; i++)
		if (str_iprefix(p, tab[i]))
			return (int)i;
	return -1;
}

/* Offset in minutes of an alphabetic zone name of length n. */
static int
alpha_zone(const char *p, size_t n)
{
	char name[8];

	if (n >= sizeof(name))
		return 0;
	for (size_t i = 0; i < n; i++)
		name[i] = p[i] >= 'a' && p[i] <= 'z' ? p[i] - 'a' + 'A' : p[i];
	name[n] = '\0';
	for (size_t i = 0; i < nitems(rfc_zones); i++)
		if (strcmp(name, rfc_zones[i].name) == 0)
			return rfc_zones[i].minutes;
	/* Military letters other than Z are too often wrong to trust: -0000. */
	if (n == 1)
		return 0;
	for (size_t i = 0; i < nitems(abbrev_zones); i++)
		if (strcmp(name, abbrev_zones[i].name) == 0)
			return abbrev_zones[i].minutes;
	return 0;
}

/* Skip trailing comments and whitespace; NULL on an unclosed comment. */
static const char *
skip_comments(const char *p)
{
	for (;;) {
		p = skip_ws(p);
		if (*p != '(')
			return p;
		int depth = 0;
		do {
			if (*p == '\0')
				return NULL;
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(') {
				if (++depth > MAX_COMMENT_DEPTH)
					return NULL;
			} else if (*p == ')')
				depth--;
			p++;
		} while (depth > 0);
	}
}

static bool
leap_year(long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
rfc2822_date(const char *s, time_t *out, bool *weekday_ok)
{
	static const int mdays[] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};
	const char *p;
	long day, year, hour, min, sec = 0, v;
	int wday = -1, mon, ndig, offset;

	if (weekday_ok != NULL)
		*weekday_ok = true;
	if (s == NULL)
		return -1;
	p = skip_ws(s);

	if ((wday = name3(p, wdays, nitems(wdays))) >= 0) {
		p = skip_ws(p + 3);
		if (*p != ',')
			return -1;
		p = skip_ws(p + 1);
	}
	if ((p = number(p, 1, 2, &day, NULL)) == NULL ||
	    (p = need_ws(p)) == NULL)
		return -1;
	if ((mon = name3(p, months, nitems(months))) < 0 ||
	    (p = need_ws(p + 3)) == NULL)
		return -1;
	/* Years past 9999 are not dates anyone sends. */
	if ((p = number(p, 2, 5, &year, &ndig)) == NULL || is_digit(*p) ||
	    year > 9999)
		return -1;
	if (ndig == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ndig == 3)
		year += 1900;
	if ((p = need_ws(p)) == NULL ||
	    (p = number(p, 2, 2, &hour, NULL)) == NULL)
		return -1;
	p = skip_ws(p);
	if (*p != ':')
		return -1;
	if ((p = number(skip_ws(p + 1), 2, 2, &min, NULL)) == NULL)
		return -1;
	const char *q = skip_ws(p);
	if (*q == ':') {
		if ((p = number(skip_ws(q + 1), 2, 2, &sec, NULL)) == NULL)
			return -1;
	}

	if ((p = need_ws(p)) == NULL)
		return -1;
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		if ((q = number(p + 1, 4, 4, &v, NULL)) == NULL ||
		    v % 100 > 59 || v / 100 > 23)
			return -1;
		offset = sign * (int)(v / 100 * 60 + v % 100);
		p = q;
	} else if (is_alpha(*p)) {
		q = p;
		while (is_alpha(*q))
			q++;
		offset = alpha_zone(p, (size_t)(q - p));
		p = q;
	} else
		return -1;
	if ((p = skip_comments(p)) == NULL || *p != '\0')
		return -1;

	if (hour > 23 || min > 59 || sec > 60)
		return -1;
	/* chrono puts a leap second inside second 59. */
	if (sec == 60)
		sec = 59;
	int dim = mdays[mon] + (mon == 1 && leap_year(year) ? 1 : 0);
	if (day < 1 || day > dim)
		return -1;

	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)(year - 1900);
	tm.tm_mon = mon;
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hour;
	tm.tm_min = (int)min;
	tm.tm_sec = (int)sec;
	time_t t = timegm(&tm);
	if (wday >= 0 && tm.tm_wday != wday && weekday_ok != NULL)
		*weekday_ok = false;
	*out = t - (time_t)offset * 60;
	return 0;
}
