/*
 * server.h - the daemon: listeners, shared state of all sessions, and the
 * path from a finished DATA to durable records.
 */
#ifndef OOBD_SERVER_H
#define OOBD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "conf.h"
#include "domains.h"
#include "util.h"

struct event_base;
struct evconnlistener;
struct classifier_slot;
struct logfile;
struct pool;
struct smtp_session;
typedef struct ssl_ctx_st SSL_CTX;

struct listener {
	struct server *srv;
	struct evconnlistener *ev;
	char	*name;			/* "ip:port" as KumoMTA formats it */
};

struct ip_count {
	char	 ip[64];
	size_t	 n;
};

struct server {
	struct event_base *base;
	struct config *cfg;
	struct domains *domains;
	struct classifier_slot *classifier;
	struct logfile *log;
	struct cidr *relay_hosts;
	size_t	 nrelay_hosts;
	char	*nodeid;
	struct pool *pool;
	struct listener *listeners;
	size_t	 nlisteners;
	size_t	 nsessions;
	struct smtp_session *sessions;	/* every open session */
	struct ip_count *ips;		/* connections per client address */
	size_t	 nips;
	struct event *sigint, *sigterm;
	struct event *tick;
	SSL_CTX	*tls;			/* NULL without a certificate */
};

/*
 * Load everything the configuration points to (listener domains, rules,
 * logs, node id) and bind the listeners. Every problem goes to errs;
 * returns 0 or -1. With check_only, nothing is bound or opened for
 * writing: that is `oobd -t`.
 */
int	 server_init(struct server *srv, struct config *cfg, bool check_only,
	    struct errors *errs);
/* Run the event loop until SIGTERM/SIGINT. Returns the exit status. */
int	 server_run(struct server *srv);
void	 server_free(struct server *srv);

/*
 * Write records produced on the event loop (Rejection records) through
 * the worker pool, without waiting for them. Takes ownership of lines.
 */
void	 server_log_async(struct server *srv, char **lines, size_t n);

/* "ip:port" (or "[ipv6]:port") as KumoMTA (Rust's SocketAddr) writes it. */
char	*sockaddr_name(const struct sockaddr *sa);

/* Connection accounting; returns false when a limit is reached. */
bool	 server_conn_add(struct server *srv, const char *ip, const char **why);
void	 server_conn_del(struct server *srv, const char *ip);

#endif
