/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay_int.h - what relay.c (queue, retries, records) and smtp_client.c
 * (one SMTP connection to a next hop) share; not for other files.
 */
#ifndef OOBD_RELAY_INT_H
#define OOBD_RELAY_INT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "record.h"
#include "relay.h"
#include "spool.h"
#include "util.h"

struct bufferevent;
struct event;
struct evdns_base;
struct server;

/* Replies that may be outstanding at once (MAIL, RCPT, DATA). */
#define EXPECT_MAX	4

enum expect {
	X_GREETING, X_EHLO, X_HELO, X_STARTTLS, X_MAIL, X_RCPT, X_DATA,
	X_DOT, X_RSET, X_QUIT,
};

struct relay_item {
	struct relay_item *next;
	struct spool_entry *e;
};

struct hop;

struct relay_msg {
	struct relay_msg *next;		/* in its hop's ready queue */
	struct relay_msg *all_prev, *all_next;	/* every message */
	struct relay *r;
	struct hop *hop;
	struct spool_entry *e;
	unsigned attempts;		/* attempts made so far */
	struct event *timer;		/* retry, or writing a record again */
	double	 due;			/* CLOCK_REALTIME of the retry */
	char	*last_reply;		/* of the last deferred attempt */
	/* the records of a pending write */
	char	*lines[2];
	enum record_type types[2];
	size_t	 nlines;
	bool	 final;
};

struct conn;

struct hop {
	struct hop *next;
	char	*name;			/* as configured: the record's site */
	char	*host;			/* without brackets and port */
	unsigned port;
	bool	 literal;		/* an IP address: no DNS */
	struct relay_msg *ready, *ready_tail;
	struct conn *conn;
	bool	 no_tls;		/* the last STARTTLS handshake failed */
};

struct conn {
	struct relay *r;
	struct hop *hop;
	struct bufferevent *bev;
	char	 session[37];
	char	 peer_ip[INET6_ADDRSTRLEN];
	char	*source;		/* local "ip:port" */
	bool	 connected;
	bool	 usable;		/* greeted and EHLO done once */
	bool	 tls, handshaking;
	char	*tls_cipher, *tls_version;
	/* what the hop offers */
	bool	 esmtp, pipelining, starttls, eightbit, smtputf8;
	bool	 has_size_ext;
	uint64_t size_max;		/* 0: no SIZE limit advertised */
	enum expect q[EXPECT_MAX];
	size_t	 nq;
	struct buf reply;		/* reply lines so far, joined by "\n" */
	size_t	 reply_lines;
	int	 reply_code;
	/* the transaction in progress */
	struct relay_msg *msg;
	char	*text;			/* its message */
	size_t	 text_len;
	char	*cmd_mail, *cmd_rcpt;
	struct response fail;		/* first refusal; code 0: none */
	bool	 discard;		/* DATA went on after a refusal */
};

struct relay {
	struct server *srv;
	struct spool *spool;
	struct hop *hops;
	SSL_CTX	*tls;
	struct evdns_base *dns;
	pthread_mutex_t lock;
	struct relay_item *inbox;	/* released by workers */
	struct event *inbox_ev;
	struct relay_msg *all;		/* every message in memory */
	unsigned long conns_freed;	/* tells a callback its conn is gone */
};

/*
 * The end of one attempt, resp the next hop's reply (or one oobd words):
 * 2xx a Delivery record, 5xx a Bounce, anything else a TransientFailure
 * and a retry, or an Expiration when the retry would be past max_age. c
 * is the connection, NULL when there was none. The record write owns m
 * from here on.
 */
void	 relay_msg_outcome(struct relay_msg *m, const struct response *resp,
	    const struct conn *c);
/* The same with a reply oobd makes up: code, enhanced code (or NULL), text. */
void	 relay_msg_fail(struct relay_msg *m, int code, const char *enhanced,
	    const struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Forget a message (its spool file stays). */
void	 relay_msg_free(struct relay_msg *m);
/* The next message due for h, or NULL. */
struct relay_msg *relay_ready_pop(struct hop *h);

/* Open a connection to h when messages wait and none is open. */
void	 relay_hop_kick(struct hop *h);
/* Close and free a connection; its transaction, if any, is left alone. */
void	 relay_conn_free(struct conn *c);

/* The socket address of a numeric host and port; 0, or -1. */
int	 relay_numeric_addr(const char *host, unsigned port,
	    struct sockaddr_storage *ss, socklen_t *len);
/*
 * Whether dst reaches one of the listen addresses: the same port, and the
 * same address or a wildcard listener with dst on this host.
 */
bool	 relay_own_listener(const struct sockaddr *dst,
	    const char *const *listen, size_t n);

#endif
