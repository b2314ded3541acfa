/*
 * arf.h - RFC 5965 abuse reporting format (feedback reports).
 */
#ifndef OOBD_ARF_H
#define OOBD_ARF_H

#include "report.h"

/*
 * Decoder (see report.h) for multipart/report; report-type=feedback-report
 * messages. Fills r->feedback_report with the object of reference §3.2, in
 * its key order and types, including supplemental_trace.
 */
int	 arf_decode(const struct message *m, struct report *r);

#endif
