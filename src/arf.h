/* SPDX-License-Identifier: Apache-2.0 */
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

/*
 * The §3.2 object from a feedback-report field block given as text, for
 * decoders of other complaint formats that carry the same facts; no
 * returned message (original_message null). trace (reference taken over,
 * may be NULL) becomes supplemental_trace. Returns 1, or -1 when the
 * block cannot be parsed or has no Feedback-Type.
 */
int	 arf_decode_fields(const char *text, size_t len, json_t *trace,
	    struct report *r);

#endif
