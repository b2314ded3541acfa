/* SPDX-License-Identifier: Apache-2.0 */
/*
 * textbounce.h - plain-text bounce notices (qmail, Exim, OpenSMTPD, ...).
 */
#ifndef OOBD_TEXTBOUNCE_H
#define OOBD_TEXTBOUNCE_H

#include "report.h"

/*
 * Decoder (see report.h) for bounces that are not RFC 3464 reports: a
 * message that presents itself as a non-delivery notice (sender or
 * subject, and its text) and names its failed recipients in its first
 * text part. One struct bounce per recipient, with the reply code,
 * enhanced status and reply text found after it; r->decoder is "text".
 */
int	 textbounce_decode(const struct message *m, struct report *r);

#endif
