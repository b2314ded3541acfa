/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h - the daemon: listeners, shared state of all sessions, and the
 * path from a finished DATA to durable records.
 */
#ifndef OOBD_SERVER_H
#define OOBD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "conf.h"
#include "domains.h"
#include "util.h"

struct event_base;
struct evconnlistener;
struct classifier_slot;
struct logfile;
struct pool;
struct smtp_session;
struct admin;
typedef struct ssl_ctx_st SSL_CTX;

struct listener {
	struct server *srv;
	struct evconnlistener *ev;
	char	*name;			/* "ip:port" as KumoMTA formats it */
	/* Accepting paused after an error (out of descriptors): */
	struct event *resume;		/* enables the listener again */
	unsigned pause_ms;		/* the current pause; 0: not paused */
	size_t	 errors;		/* accept errors not yet logged */
	struct timespec logged;		/* CLOCK_MONOTONIC of the last line */
};

/*
 * What a reload (SIGHUP) replaces, as one reference-counted object: a
 * session takes a reference when it starts and keeps its settings until
 * it ends, so a reload applies to new sessions only.
 */
struct settings {
	unsigned refs;			/* event loop thread only */
	struct config *cfg;
	struct domains *domains;	/* NULL without listener_domains */
	struct classifier_slot *classifier;
	struct cidr *relay_hosts;
	size_t	 nrelay_hosts;
	SSL_CTX	*tls;			/* NULL without a certificate */
	bool	 owns_cfg;		/* cfg is freed with the settings */
};

struct settings *settings_ref(struct settings *set);
void	 settings_unref(struct settings *set);

struct ip_count {
	char	 ip[64];
	size_t	 n;
};

struct server {
	struct event_base *base;
	/*
	 * The current settings; cfg, domains, classifier, relay_hosts and tls
	 * below are its members, replaced together by a reload on the event
	 * loop thread. Code that runs elsewhere or across a reload holds its
	 * own reference (a session's is s->set).
	 */
	struct settings *cur;
	struct config *cfg;
	struct domains *domains;
	struct classifier_slot *classifier;
	struct logfile *log;
	struct cidr *relay_hosts;
	size_t	 nrelay_hosts;
	char	*nodeid;
	struct pool *pool;
	struct relay *relay;		/* relaying onward (relay.h) */
	struct listener *listeners;
	size_t	 nlisteners;
	size_t	 nsessions;
	struct smtp_session *sessions;	/* every open session */
	struct ip_count *ips;		/* connections per client address */
	size_t	 nips;
	struct ip_count *nets;		/* per client /24 or /64 */
	size_t	 nnets;
	struct event *sigint, *sigterm;
	struct event *tick;
	SSL_CTX	*tls;			/* NULL without a certificate */
	struct event *sighup, *sigusr1;
	struct event *drain_timer;	/* polls for the end of a drain */
	struct timespec drain_deadline;	/* CLOCK_MONOTONIC */
	bool	 draining;		/* SIGTERM/SIGINT: closing down */
	struct admin *admin;
	int	 admin_fd;		/* bound, not yet served; -1 */
	char	*admin_name;
	int	*inherited;		/* socket activation fds, -1 once taken */
	size_t	 ninherited;
	char	*status;		/* last STATUS= sent */
	unsigned long long messages;	/* ends of DATA answered */
	size_t	 conn_cap;		/* sessions RLIMIT_NOFILE allows; 0: any */
};

/*
 * Load everything the configuration points to (listener domains, rules,
 * logs, node id) and bind the listeners. Every problem goes to errs;
 * returns 0 or -1. With check_only, nothing is bound or opened for
 * writing: that is `oobd -t`.
 */
int	 server_init(struct server *srv, struct config *cfg, bool check_only,
	    struct errors *errs);
/*
 * Run the event loop until SIGTERM/SIGINT and the drain that follows
 * (SIGHUP reloads, SIGUSR1 closes the log segments). Returns the exit
 * status.
 */
int	 server_run(struct server *srv);
/*
 * SIGHUP: load the configuration file again and everything it names; on
 * success new sessions use it, else every error is logged and the old
 * settings stay. Returns 0 or -1.
 */
int	 server_reload(struct server *srv);
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
