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
#include <stdint.h>
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
	size_t	 cap;
};

/*
 * A message decoded once for all its recipients: the report depends only
 * on the message and on which decoders the recipient's domain enables, so
 * a DSN sent to 100 recipients is parsed once, not 100 times. Zero it
 * before use; ingest_cache_free() when the message is done.
 */
struct ingest_cache {
	struct report rep[4];		/* by (log_arf, log_oob) */
	bool	 have[4];
};
void	 ingest_cache_free(struct ingest_cache *cache);

/*
 * The records of one message, handed over one at a time as they are built,
 * so memory holds one record however many a report yields. emit() owns the
 * record it is given (record_free() it, or keep it).
 *
 * max_oob caps the OOB records across every call made with the same
 * stream (all the recipients of one SMTP transaction): past it, OOB records
 * are not built, only counted in dropped. The Reception or Feedback record
 * of each call is always emitted, so the records of a message are the
 * first max_oob OOB records in recipient order, then in the order the
 * report lists them, plus one Reception or Feedback record per recipient.
 */
struct ingest_stream {
	void	(*emit)(void *arg, struct record *r);
	void	*arg;
	size_t	 max_oob;		/* 0: no cap */
	struct ingest_cache *cache;	/* NULL: decode on every call */
	/* out */
	size_t	 oob;			/* OOB records emitted so far */
	uint64_t dropped;		/* OOB records left out by the cap */
	enum report_kind kind;		/* of the last call's message */
	const char *decoder;		/* of the last call, or NULL */
};
void	 ingest_message_stream(const struct ingest_config *cfg,
	    const struct envelope *env, const struct message *m,
	    const char *id, const struct timespec *created,
	    const struct timespec *now, struct ingest_stream *st);

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
