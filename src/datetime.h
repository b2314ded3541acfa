/* SPDX-License-Identifier: Apache-2.0 */
/*
 * datetime.h - RFC 5322 / RFC 2822 dates as found in DSNs and ARF reports.
 */
#ifndef OOBD_DATETIME_H
#define OOBD_DATETIME_H

#include <stdbool.h>
#include <time.h>

/*
 * Parse s the way KumoMTA's mailparsing::parse_rfc2822_date does: RFC 2822
 * syntax with 2-digit years (obsolete year rules), the RFC 5322 zone names
 * (UT, GMT, EST, EDT, ... and military letters), and otherwise a trailing
 * alphabetic zone abbreviation from KumoMTA's table (UTC, CET, CEST, JST,
 * ...; unknown or ambiguous abbreviations count as -0000), with any trailing
 * (comment) ignored. Returns 0 and stores the UTC time in *out, or -1 when s
 * is not a date.
 *
 * *weekday_ok is set to false when s names a weekday that does not match
 * the date: KumoMTA rejects such a date, so callers that must give
 * KumoMTA's value treat it as invalid, while tolerant callers use *out.
 */
int	 rfc2822_date(const char *s, time_t *out, bool *weekday_ok);

#endif
