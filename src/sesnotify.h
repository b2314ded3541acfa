/*
 * sesnotify.h - Amazon SES bounce notifications (JSON, possibly in SNS).
 */
#ifndef OOBD_SESNOTIFY_H
#define OOBD_SESNOTIFY_H

#include "report.h"

/*
 * Decoder (see report.h) for a text/plain message whose body is an SES
 * Bounce event, bare or wrapped in an SNS notification: one struct bounce
 * per bounced recipient, decoded as the DSN group it describes; r->trace
 * from the returned message's X- headers; r->decoder is "ses".
 */
int	 sesnotify_decode(const struct message *m, struct report *r);

#endif
