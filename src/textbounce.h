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

/*
 * The human-readable part of a report (its first text part outside any
 * attached message), read once for the replies it gives recipients.
 * NULL when the message has none.
 */
struct textbounce_notice;
struct textbounce_notice *textbounce_notice_open(const struct message *m);
/*
 * Set b->notice_reply to the reply the notice gives b's recipient (its
 * address, or the address of b->final_recipient), as a single-line
 * response "<code> <class>.<subject>.<detail> <text>": the code and
 * enhanced code found in the text, else b's (b->code, and b's Status).
 * Leaves it NULL when the notice names no such recipient or says nothing
 * after it.
 */
void	 textbounce_notice_reply(struct textbounce_notice *tn,
	    struct bounce *b);
/*
 * Set b->refused_after_data when the notice shows that the refusal of b's
 * recipient answered DATA or the end of the data ("in reply to end of DATA
 * command", or ">>> DATA" before the first refusal of a transcript): the
 * lone recipient's whole notice, else the text after its address.
 */
void	 textbounce_notice_after_data(struct textbounce_notice *tn,
	    struct bounce *b);
void	 textbounce_notice_close(struct textbounce_notice *tn);

#endif
