/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report.h - what a decoder finds in a message: bounce facts (one per
 * recipient of a DSN or non-standard bounce) or a feedback report.
 *
 * Decoders fill a struct report; ingest.c turns it into records. A decoder
 * has the signature of decoder_fn and returns
 *   1  the message is this kind of report (r filled in),
 *   0  it is not (r untouched),
 *  -1  it looks like one but is malformed beyond repair (r may hold
 *      partial data; the caller frees it and treats the message as a
 *      non-report).
 */
#ifndef OOBD_REPORT_H
#define OOBD_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct message;

enum report_kind {
	REPORT_NONE,
	REPORT_BOUNCE,		/* DSN or non-standard bounce: OOB records */
	REPORT_FEEDBACK,	/* ARF: one Feedback record */
};

/* One recipient of a bounce. Strings are owned; NULL means absent. */
struct bounce {
	char	*recipient;		/* as the record's recipient field */
	char	*final_recipient;	/* Final-Recipient, raw "type;addr" text */
	char	*original_recipient;	/* Original-Recipient, raw text */
	char	*action;		/* "failed", "delayed", ... lowercased */
	int	 code;			/* SMTP reply code (550 by default) */
	bool	 has_status;
	unsigned cls, subject, detail;	/* Status, when has_status */
	bool	 status_derived;	/* Status was missing; taken from the diagnostic */
	char	*content;		/* reply text, never NULL after decoding */
	char	*status_comment;	/* "(permanent failure)" */
	char	*reporting_mta;		/* name part of Reporting-MTA */
	char	*remote_mta;		/* name part of Remote-MTA */
	char	*diagnostic_type;	/* "smtp", "X-Postfix", ... */
	/*
	 * Evidence beyond KumoMTA's fields, for classification: the whole
	 * Diagnostic-Code text (whatever its type), the enhanced code in it
	 * when Status is generic (X.0.0) and the text is more specific, and
	 * the reply the notice's human-readable part gives this recipient.
	 */
	char	*diagnostic_text;
	bool	 has_diag_enhanced;
	unsigned dcls, dsubject, ddetail;
	char	*notice_reply;		/* "550 5.1.1 text", or NULL */
	bool	 refused_after_data;	/* the notice shows the refusal answered DATA */
	bool	 has_last_attempt;
	struct timespec last_attempt;
};

struct report {
	enum report_kind kind;
	const char *decoder;		/* static name: "rfc3464", "arf", ... */
	struct bounce *bounces;
	size_t	 nbounces;
	size_t	 cap;
	json_t	*feedback_report;	/* REPORT_FEEDBACK: the §3.2 object */
	json_t	*trace;			/* decoded X-KumoRef of the returned message */
	/*
	 * The returned message's Message-ID, Subject, From and To (an
	 * object of those present), or NULL when no returned headers were
	 * found: how a sender without X-KumoRef ties a bounce to its mail.
	 */
	json_t	*returned;
};

typedef int (*decoder_fn)(const struct message *m, struct report *r);

/* A new zeroed bounce appended to r (code preset to 550, content ""). */
struct bounce *report_add_bounce(struct report *r);
void	 report_free(struct report *r);	/* frees contents, leaves r zeroed */

struct fieldblock;
/*
 * The correlation object of struct report's returned from a returned
 * message's header fields: "message_id", "subject", "from", "to" (each
 * unfolded and decoded), those present only; NULL when none is.
 */
json_t	*report_returned_headers(const struct fieldblock *fb);

#endif
