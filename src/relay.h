/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay.h - relaying messages onward: the next hop of a message, the
 * durable spool it waits in, and the SMTP client that delivers it on the
 * daemon's event loop, with retries, backoff and a maximum age. Every
 * attempt ends in a Delivery, TransientFailure, Bounce or Expiration
 * record (KumoMTA's field mapping); the spool file goes only once the
 * final record is durable.
 */
#ifndef OOBD_RELAY_H
#define OOBD_RELAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "domains.h"
#include "util.h"

struct relay;
struct relay_item;
struct server;

/*
 * The configuration checks of relaying, for `oobd -t` and for the start:
 * [relay] next_hop and every relay_host parse, every relaying domain
 * entry (relay_to or LogThenRelay) has a next hop, and no next hop is one
 * of the listen addresses (a mail loop). d may be NULL.
 */
void	 relay_check_config(const struct config *cfg, const struct domains *d,
	    struct errors *errs);
/* The same checks for the domain entries alone. */
void	 relay_check_domains(const struct config *cfg, const struct domains *d,
	    struct errors *errs);

/*
 * Start relaying for srv (its event loop, pool, log and classifier must
 * exist): open the spool when any relaying is configured, drop
 * interrupted spool writes, and queue every spooled message again.
 * Returns NULL with a message in errs when the spool cannot be opened.
 */
struct relay *relay_new(struct server *srv, struct errors *errs);
/* Close connections and free; spooled messages stay for the next start. */
void	 relay_free(struct relay *r);

/* The messages of one SMTP transaction spooled and not yet released. */
struct relay_batch {
	struct relay_item *head;
};

/* One recipient's message as the session hands it over. */
struct relay_request {
	const char *id;			/* its spool id */
	const char *sender;		/* "" for <> */
	const char *recipient;
	const char *listener;		/* "ip:port" it was received on */
	const struct timespec *created;
	const char *trace;		/* the Received header, or NULL */
	const char *data;		/* the message as received */
	size_t	 len;
	json_t	*meta;			/* of its Reception record, or NULL */
	json_t	*headers;
	/* the session's view: the recipient domain's entry and next_hop */
	const struct domain_entry *entry;	/* may be NULL */
	const char *next_hop;			/* [relay] next_hop, or NULL */
};

/*
 * On a worker thread, before the reply: write the message to the spool,
 * synced, and add it to b. Returns 0; 1 when it has nowhere to go (no
 * next hop: the caller treats it as not relayed); -1 with errno when the
 * spool write failed (the caller answers 451).
 */
int	 relay_spool(struct relay *r, struct relay_batch *b,
	    const struct relay_request *rq);

/*
 * After the transaction's records are committed (deliver) or failed to
 * be (!deliver, the client is told 451 and the spool files are removed).
 * Safe from any thread; b is empty afterwards.
 */
void	 relay_release(struct relay *r, struct relay_batch *b, bool deliver);

/*
 * `oobd queue`, through the admin listener, on the event loop thread. r
 * may be NULL (nothing relays).
 *
 * relay_queue_list: every message in the relay's hands, as a JSON array
 * of objects: id, sender, recipient, queue, hop, size, created (RFC 3339),
 * attempts, state ("ready": waiting for a connection, "active": in an SMTP
 * transaction, "deferred": waiting for its retry, "writing": its record
 * being written), next_attempt (RFC 3339, deferred only) and last_reply
 * (the reply that deferred it, or null).
 */
json_t	*relay_queue_list(struct relay *r);
/* Deferred messages retried now (their backoff goes on); how many. */
size_t	 relay_queue_flush(struct relay *r);
/*
 * Remove a message (id), or every one (id NULL), from the spool and the
 * retry schedule, as postsuper -d does: no record is written, the removal
 * is logged (event=queue-deleted). A message in an SMTP transaction or
 * whose record is being written cannot be removed then and counts as
 * busy. Returns how many were removed; *busy gets the busy ones, and
 * *found whether id was in the queue at all.
 */
size_t	 relay_queue_delete(struct relay *r, const char *id, size_t *busy,
	    bool *found);

#endif
