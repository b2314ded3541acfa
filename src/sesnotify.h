/* SPDX-License-Identifier: Apache-2.0 */
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

/*
 * Decoder for an SES Complaint event: one feedback report (reference
 * §3.2) with feedback_type from complaintFeedbackType ("abuse" when
 * absent), user_agent, arrival_date, original_mail_from (mail.source),
 * original_rcpto_to (the complained recipients), source_ip, a
 * "feedback-id" extension and the returned headers' X-KumoRef.
 */
int	 sesnotify_decode_complaint(const struct message *m, struct report *r);

#endif
