/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dsn.h - RFC 3464 / RFC 6533 delivery status notifications.
 */
#ifndef OOBD_DSN_H
#define OOBD_DSN_H

#include "report.h"

/*
 * Decoder (see report.h) for multipart/report messages with a
 * message/delivery-status or message/global-delivery-status part. Fills one
 * struct bounce per per-recipient group (every action; the caller picks
 * which become records) with KumoMTA's field mapping (reference §2.3), and
 * r->trace from the returned message's X- headers.
 */
int	 dsn_decode(const struct message *m, struct report *r);

/*
 * Decode one per-recipient field group (RFC 3464 §2.3 fields as text)
 * into a new struct bounce of r, with KumoMTA's mapping, for decoders of
 * other report formats that carry the same fields. Returns false (r
 * untouched) when the group names no recipient or cannot be parsed.
 */
bool	 dsn_decode_group(const char *text, size_t len,
	    const char *reporting_mta, struct report *r);

#endif
