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

#endif
