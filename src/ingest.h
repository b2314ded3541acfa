/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest.h - the pipeline from a received message to its log records:
 * run the decoders (ARF before DSN, then the non-standard bounce decoders),
 * classify, and build KumoMTA records.
 */
#ifndef OOBD_INGEST_H
#define OOBD_INGEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "message.h"
#include "record.h"
#include "report.h"

struct classifier;

/* What the SMTP session (or `oobd parse`) knows about a message. */
struct envelope {
	const char *sender;		/* MAIL FROM as local@domain, "" for <> */
	const char *const *recipients;	/* RCPT TO addresses */
	size_t	 nrecipients;
	const char *peer_name;		/* EHLO/HELO argument, "" if none */
	const char *peer_addr;		/* client IP, no port */
	const char *session_id;		/* UUID, NULL offline */
	const char *tls_cipher;		/* NULL without TLS */
	const char *tls_protocol_version;
	const char *const *tls_peer_subject;	/* names of the client cert */
	size_t	 ntls_peer_subject;
	json_t	*conn_meta;		/* meta known for the connection, or NULL */
};

struct ingest_config {
	bool	 log_arf;		/* try the ARF decoder */
	bool	 log_oob;		/* try the bounce decoders */
	bool	 all_actions;		/* OOB records for every DSN action */
	bool	 kumo_strict;		/* no oob_detail */
	const char *nodeid;
	const char *reception_protocol;	/* "ESMTP" */
	struct classifier *classifier;	/* NULL: everything Uncategorized */
	const char *const *meta_keys;	/* [logs] meta */
	size_t	 nmeta_keys;
	const char *const *header_names;/* [logs] headers; "X-*" prefix form */
	size_t	 nheader_names;
};

struct ingest_result {
	enum report_kind kind;		/* what the message was found to be */
	const char *decoder;		/* which decoder matched, or NULL */
	struct record *records;
	size_t	 nrecords;
};

/*
 * Decode m and build its records into *out:
 *  - a feedback report: one Feedback record (it replaces the Reception);
 *  - a bounce: the Reception record, then one OOB record per failed
 *    recipient (every recipient with cfg->all_actions);
 *  - anything else: the Reception record alone.
 * id and created are the message's spool id and its time; now is the time
 * of reception. Never fails: malformed input is a non-report.
 */
void	 ingest_message(const struct ingest_config *cfg,
	    const struct envelope *env, const struct message *m,
	    const char *id, const struct timespec *created,
	    const struct timespec *now, struct ingest_result *out);
void	 ingest_result_free(struct ingest_result *res);

/*
 * The decoders in the order they are tried. Exposed for the tests and the
 * fuzz targets. Fills r and returns the decoder's name, or NULL when none
 * recognised the message.
 */
const char *ingest_decode(const struct message *m, bool log_arf,
	    bool log_oob, struct report *r);

/* KumoMTA's queue name for a message: the first recipient's domain, lowercased. */
char	*queue_for_recipient(const char *recipient);

#endif
