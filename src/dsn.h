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

#endif
