/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay.c - relaying onward: next hops, the queue of spooled messages,
 * retries with backoff and a maximum age, and the log records of every
 * attempt.
 *
 * Each next hop ("[ip]:port" or "host:port") has a queue of messages that
 * are due and at most one connection (smtp_client.c), reused for all of
 * them. The outcome of an attempt is a log record, written on the worker
 * pool; a message leaves the spool only once its final record (Delivery,
 * Bounce, Expiration) is durable, and a TransientFailure is retried only
 * once its record is written.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "classify.h"
#include "ingest.h"
#include "log.h"
#include "logfile.h"
#include "pool.h"
#include "record.h"
#include "relay.h"
#include "relay_int.h"
#include "server.h"
#include "spool.h"
#include "util.h"

/* Delay before writing a record again after the log failed. */
#define LOG_RETRY_SECS	1

struct rec_job {
	struct job job;
	struct relay_msg *m;
	int	 rc;
	int	 err;
};

static void msg_write_records(struct relay_msg *m);

/* ------------------------------------------------------------ next hop */

/* The address of "ip:port" or "[ip]:port"; 0, or -1 when not numeric. */
int
relay_numeric_addr(const char *host, unsigned port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char p[8];

	snprintf(p, sizeof(p), "%u", port);
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, p, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* A listen address "ip:port" or "[ipv6]:port" split and parsed. */
static int
listen_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char *host = NULL;
	unsigned port;
	int rc;

	if (relay_host_parse(s, &host, &port, NULL, NULL) != 0)
		return -1;
	rc = relay_numeric_addr(host, port, ss, len);
	free(host);
	return rc;
}

static unsigned
sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

static bool
sa_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static bool
sa_wildcard(const struct sockaddr *sa)
{
	static const unsigned char zero[16];

	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, zero,
	    16) == 0;
}

/* Whether ip is an address of this host: loopback, or one we can bind. */
static bool
sa_local(const struct sockaddr *sa)
{
	struct sockaddr_storage ss;
	int fd;
	bool local;

	if (sa->sa_family == AF_INET &&
	    (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127)
		return true;
	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(
	    &((const struct sockaddr_in6 *)sa)->sin6_addr))
		return true;
	memcpy(&ss, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6));
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	local = bind(fd, (struct sockaddr *)&ss, sa->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) == 0;
	close(fd);
	return local;
}

/*
 * Whether the address dst (a next hop) reaches one of the listen
 * addresses: same port, and the same address or a wildcard listener
 * with dst on this host.
 */
bool
relay_own_listener(const struct sockaddr *dst, const char *const *listen,
    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		if (listen_addr(listen[i], &ss, &len) != 0)
			continue;
		const struct sockaddr *l = (const struct sockaddr *)&ss;
		if (sa_port(l) != sa_port(dst))
			continue;
		if (sa_same_ip(l, dst) || (sa_wildcard(l) && sa_local(dst)))
			return true;
	}
	return false;
}

/* Check one next hop value; key names it in messages. */
static void
check_hop(const struct config *cfg, const char *key, const char *value,
    struct errors *errs)
{
	char *host = NULL, *err = NULL;
	unsigned port;
	struct sockaddr_storage ss;
	socklen_t len;
	const char *path = cfg->path ? cfg->path : "";

	if (relay_host_parse(value, &host, &port, NULL, &err) != 0) {
		errors_add(errs, "%s: %s: %s", path, key, err);
		free(err);
		return;
	}
	if (relay_numeric_addr(host, port, &ss, &len) == 0 &&
	    relay_own_listener((struct sockaddr *)&ss,
	    (const char *const *)cfg->listen.v, cfg->listen.n))
		errors_add(errs, "%s: %s: \"%s\" is one of oobd's own listen "
		    "addresses (a mail loop)", path, key, value);
	free(host);
}

struct check_ctx {
	const struct config *cfg;
	struct errors *errs;
};

static void
check_domain(void *arg, const char *listener, const char *domain,
    const struct domain_entry *e)
{
	struct check_ctx *cx = arg;
	const char *path = cx->cfg->path ? cx->cfg->path : "";

	if (e->relay_host != NULL) {
		char *key = xasprintf("listener_domains: \"%s\" relay_host",
		    domain);
		check_hop(cx->cfg, key, e->relay_host, cx->errs);
		free(key);
	} else if (cx->cfg->next_hop == NULL)
		errors_add(cx->errs, "%s: listener_domains: \"%s\"%s%s%s: it "
		    "relays (relay_to or LogThenRelay) but has no relay_host, "
		    "and [relay] next_hop is not set", path, domain,
		    strcmp(listener, "*") != 0 ? " (listener " : "",
		    strcmp(listener, "*") != 0 ? listener : "",
		    strcmp(listener, "*") != 0 ? ")" : "");
}

void
relay_check_domains(const struct config *cfg, const struct domains *d,
    struct errors *errs)
{
	struct check_ctx cx = { cfg, errs };

	domains_each(d, check_domain, &cx);
}

void
relay_check_config(const struct config *cfg, const struct domains *d,
    struct errors *errs)
{
	if (cfg->next_hop != NULL)
		check_hop(cfg, "[relay] next_hop", cfg->next_hop, errs);
	relay_check_domains(cfg, d, errs);
}

/* The next hop for a recipient received on listener, or NULL. */
static const char *
next_hop_for(const struct relay *r, const char *listener, const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');
	const struct domain_entry *e = NULL;

	if (r->srv->domains != NULL && at != NULL)
		e = domains_lookup(r->srv->domains, listener, at + 1);
	if (e != NULL && e->relay_host != NULL)
		return e->relay_host;
	return r->srv->cfg->next_hop;
}

static struct hop *
hop_get(struct relay *r, const char *name)
{
	struct hop *h;
	char *host = NULL;
	unsigned port = 0;
	bool literal = false;

	for (h = r->hops; h != NULL; h = h->next)
		if (strcmp(h->name, name) == 0)
			return h;
	if (relay_host_parse(name, &host, &port, &literal, NULL) != 0)
		return NULL;
	h = xcalloc(1, sizeof(*h));
	h->name = xstrdup(name);
	h->host = host;
	h->port = port;
	struct in_addr a4;
	h->literal = literal || inet_pton(AF_INET, host, &a4) == 1;
	h->next = r->hops;
	r->hops = h;
	return h;
}

/* ------------------------------------------------------------ messages */

static struct relay_msg *
msg_new(struct relay *r, struct hop *h, struct spool_entry *e)
{
	struct relay_msg *m = xcalloc(1, sizeof(*m));

	m->r = r;
	m->hop = h;
	m->e = e;
	m->all_next = r->all;
	if (r->all != NULL)
		r->all->all_prev = m;
	r->all = m;
	metrics_relay_queue_add(1);
	return m;
}

void
relay_msg_free(struct relay_msg *m)
{
	if (m->all_prev != NULL)
		m->all_prev->all_next = m->all_next;
	else
		m->r->all = m->all_next;
	if (m->all_next != NULL)
		m->all_next->all_prev = m->all_prev;
	metrics_relay_queue_add(-1);
	if (m->timer != NULL)
		event_free(m->timer);
	for (size_t i = 0; i < m->nlines; i++)
		free(m->lines[i]);
	spool_entry_free(m->e);
	free(m->last_reply);
	free(m);
}

static void
ready_push(struct hop *h, struct relay_msg *m)
{
	m->next = NULL;
	if (h->ready_tail != NULL)
		h->ready_tail->next = m;
	else
		h->ready = m;
	h->ready_tail = m;
}

struct relay_msg *
relay_ready_pop(struct hop *h)
{
	struct relay_msg *m = h->ready;

	if (m != NULL) {
		h->ready = m->next;
		if (h->ready == NULL)
			h->ready_tail = NULL;
		m->next = NULL;
	}
	return m;
}

static double
now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void msg_schedule(struct relay_msg *m, double delay);

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_msg *m = arg;
	double early = m->due - now_real();

	(void)fd;
	(void)what;
	/* libevent's coarse clock may fire a little early: wait it out. */
	if (early > 0) {
		msg_schedule(m, early);
		return;
	}
	if (m->nlines > 0) {		/* the log failed: write again */
		msg_write_records(m);
		return;
	}
	ready_push(m->hop, m);
	relay_hop_kick(m->hop);
}

static void
msg_schedule(struct relay_msg *m, double delay)
{
	struct timeval tv;

	if (m->timer == NULL)
		m->timer = evtimer_new(m->r->srv->base, retry_cb, m);
	m->due = now_real() + delay;
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = (suseconds_t)((delay - (double)tv.tv_sec) * 1e6);
	/*
	 * The loop's cached time may predate the record just written (a
	 * worker's done() can run in the iteration that started before it):
	 * count the delay from now, so a retry never comes early.
	 */
	event_base_update_cache_time(m->r->srv->base);
	evtimer_add(m->timer, &tv);
}

/* The delay after attempt n (1-based): interval * factor^(n-1), capped. */
static double
retry_delay(const struct config *cfg, unsigned n)
{
	double d = cfg->retry_interval * pow(cfg->retry_factor,
	    n > 0 ? (double)(n - 1) : 0);

	return d > cfg->max_retry_interval ? cfg->max_retry_interval : d;
}

/*
 * One log record for message m. resp is the hop's reply (or one oobd
 * made up); c the connection, NULL when none was established.
 */
static char *
msg_record(struct relay_msg *m, enum record_type type,
    const struct response *resp, const struct conn *c)
{
	struct server *srv = m->r->srv;
	struct record rec;
	char *line;

	record_init(&rec, type);
	record_set(&rec.id, m->e->id);
	record_set(&rec.sender, m->e->sender);
	record_add_recipient(&rec, m->e->recipient);
	record_set(&rec.queue, m->e->queue);
	record_set(&rec.site, m->hop->name);
	rec.size = m->e->size;
	record_set_response(&rec, resp->code, resp->content, resp->command);
	if (resp->has_enhanced)
		record_set_enhanced(&rec, resp->cls, resp->subject, resp->detail);
	if (c != NULL && c->connected) {
		rec.has_peer = true;
		record_set(&rec.peer_name, m->hop->host);
		record_set(&rec.peer_addr, c->peer_ip);
		if (c->source != NULL)
			rec.source_address = json_pack("{s:s}", "address",
			    c->source);
	}
	clock_gettime(CLOCK_REALTIME, &rec.timestamp);
	rec.created = m->e->created;
	rec.num_attempts = m->attempts;
	if (record_type_classified(type)) {
		struct classifier *cl = classifier_slot_get(srv->classifier);
		record_set(&rec.bounce_classification,
		    classifier_classify(cl, &rec.response));
		classifier_unref(cl);
	}
	rec.meta = json_incref(m->e->meta);
	rec.headers = json_incref(m->e->headers);
	if (type != REC_EXPIRATION)
		record_set(&rec.delivery_protocol, "ESMTP");
	record_set(&rec.reception_protocol, "ESMTP");
	record_set(&rec.nodeid, srv->nodeid);
	if (c != NULL && c->tls) {
		record_set(&rec.tls_cipher, c->tls_cipher);
		record_set(&rec.tls_protocol_version, c->tls_version);
	}
	if (c != NULL)
		record_set(&rec.session_id, c->session);
	line = record_dump(&rec, srv->cfg->kumo_strict);
	record_free(&rec);
	return line;
}

static void
rec_job_run(struct job *j)
{
	struct rec_job *rj = (struct rec_job *)j;
	struct relay_msg *m = rj->m;
	struct relay *r = m->r;

	rj->rc = logfile_commit(r->srv->log, (const char *const *)m->lines,
	    m->nlines);
	rj->err = errno;
	if (rj->rc == 0 && m->final && spool_remove(r->spool, m->e->id) != 0)
		log_msg(LOG_ERR, NULL, "event=spool-remove-failed id=%s "
		    "error=\"%s\"", m->e->id, strerror(errno));
}

static void
rec_job_done(struct job *j)
{
	struct rec_job *rj = (struct rec_job *)j;
	struct relay_msg *m = rj->m;
	const struct config *cfg = m->r->srv->cfg;
	int rc = rj->rc, err = rj->err;

	free(rj);
	if (rc != 0) {
		log_msg(LOG_ERR, NULL, "event=log-write-failed id=%s records=%zu "
		    "error=\"%s\"", m->e->id, m->nlines, strerror(err));
		if (m->final) {
			/* The spool file stays until its record is written. */
			msg_schedule(m, LOG_RETRY_SECS);
			return;
		}
	}
	for (size_t i = 0; i < m->nlines; i++) {
		if (rc == 0)
			metrics_record(m->types[i]);
		free(m->lines[i]);
	}
	m->nlines = 0;
	if (m->final) {
		relay_msg_free(m);
		return;
	}
	msg_schedule(m, retry_delay(cfg, m->attempts));
}

static void
msg_write_records(struct relay_msg *m)
{
	struct rec_job *rj = xcalloc(1, sizeof(*rj));

	rj->job.run = rec_job_run;
	rj->job.done = rec_job_done;
	rj->m = m;
	pool_submit(m->r->srv->pool, &rj->job);
}

static void
format_time(char *out, size_t n, double t)
{
	format_rfc3339(out, n, (time_t)t, 0);
}

/*
 * The end of one attempt: 2xx Delivery, 5xx Bounce, anything else a
 * TransientFailure, followed by an Expiration when the next attempt
 * would be past max_age. The message is owned by the record write from
 * here on.
 */
void
relay_msg_outcome(struct relay_msg *m, const struct response *resp,
    const struct conn *c)
{
	const struct config *cfg = m->r->srv->cfg;
	enum record_type type = resp->code >= 200 && resp->code < 300 ?
	    REC_DELIVERY : resp->code >= 500 && resp->code < 600 ? REC_BOUNCE :
	    REC_TRANSIENT_FAILURE;

	m->nlines = 0;
	m->types[m->nlines] = type;
	m->lines[m->nlines++] = msg_record(m, type, resp, c);
	m->attempts++;
	m->final = type != REC_TRANSIENT_FAILURE;
	log_msg(LOG_INFO, c ? c->session : NULL, "event=relay id=%s hop=%s "
	    "result=%s code=%d attempts=%u", m->e->id, m->hop->name,
	    record_type_name(type), resp->code, m->attempts);
	if (!m->final) {
		free(m->last_reply);
		if (resp->has_enhanced)
			m->last_reply = xasprintf("%d %u.%u.%u %s", resp->code,
			    resp->cls, resp->subject, resp->detail,
			    resp->content ? resp->content : "");
		else
			m->last_reply = xasprintf("%d %s", resp->code,
			    resp->content ? resp->content : "");
	}
	if (!m->final) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		double t = (double)now.tv_sec + now.tv_nsec / 1e9;
		double due = t + retry_delay(cfg, m->attempts);
		double expires = (double)m->e->created.tv_sec +
		    m->e->created.tv_nsec / 1e9 + cfg->max_age;
		if (due > expires) {
			char a[48], b[48];
			struct response x = { .code = 551, .has_enhanced = true,
			    .cls = 5, .subject = 4, .detail = 7 };
			format_time(a, sizeof(a), due);
			format_time(b, sizeof(b), expires);
			x.content = xasprintf("Next delivery time would be at %s "
			    "which exceeds the expiry time %s configured via "
			    "max_age", a, b);
			m->types[m->nlines] = REC_EXPIRATION;
			m->lines[m->nlines++] = msg_record(m, REC_EXPIRATION,
			    &x, NULL);
			free(x.content);
			m->final = true;
			log_msg(LOG_INFO, NULL, "event=relay id=%s hop=%s "
			    "result=Expiration attempts=%u", m->e->id,
			    m->hop->name, m->attempts);
		}
	}
	msg_write_records(m);
}

/* An outcome that oobd words itself: "<code> [enhanced] oobd ...". */
void
relay_msg_fail(struct relay_msg *m, int code, const char *enhanced,
    const struct conn *c, const char *fmt, ...)
{
	struct response resp = { .code = code };
	va_list ap;

	if (enhanced != NULL && sscanf(enhanced, "%u.%u.%u", &resp.cls,
	    &resp.subject, &resp.detail) == 3)
		resp.has_enhanced = true;
	va_start(ap, fmt);
	if (vasprintf(&resp.content, fmt, ap) < 0)
		fatalx("out of memory");
	va_end(ap);
	relay_msg_outcome(m, &resp, c);
	free(resp.content);
}

/*
 * Queue a message for its next hop: the one it was spooled for, or, for
 * a message found in the spool at start, the one the configuration now
 * gives (so a corrected relay_host applies), else the old one.
 */
static void
msg_queue(struct relay *r, struct spool_entry *e, bool recovered)
{
	const char *name = recovered ? next_hop_for(r, e->listener,
	    e->recipient) : NULL;
	struct relay_msg *m;

	if (name == NULL && e->hop[0] != '\0')
		name = e->hop;
	struct hop *h = name != NULL ? hop_get(r, name) : NULL;
	if (h == NULL) {
		log_msg(LOG_ERR, NULL, "event=relay-no-next-hop id=%s action=kept",
		    e->id);
		spool_entry_free(e);
		return;
	}
	m = msg_new(r, h, e);
	if (recovered) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		if ((double)now.tv_sec > (double)e->created.tv_sec +
		    r->srv->cfg->max_age) {
			/* Past max_age while oobd was down: expire it now. */
			char a[48];
			struct response x = { .code = 551, .has_enhanced = true,
			    .cls = 5, .subject = 4, .detail = 7 };
			format_time(a, sizeof(a), (double)e->created.tv_sec +
			    r->srv->cfg->max_age);
			x.content = xasprintf("Message expired at %s, the expiry "
			    "time configured via max_age", a);
			m->types[m->nlines] = REC_EXPIRATION;
			m->lines[m->nlines++] = msg_record(m, REC_EXPIRATION,
			    &x, NULL);
			free(x.content);
			m->final = true;
			msg_write_records(m);
			return;
		}
	}
	ready_push(h, m);
	relay_hop_kick(h);
}

/* --------------------------------------------------------- the relay */

static void
inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	struct relay_item *list, *rev = NULL;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&r->lock);
	list = r->inbox;
	r->inbox = NULL;
	pthread_mutex_unlock(&r->lock);
	while (list != NULL) {		/* restore arrival order */
		struct relay_item *it = list;
		list = it->next;
		it->next = rev;
		rev = it;
	}
	while (rev != NULL) {
		struct relay_item *it = rev;
		rev = it->next;
		msg_queue(r, it->e, false);
		free(it);
	}
}

static void
recovered(void *arg, struct spool_entry *e)
{
	msg_queue(arg, e, true);
}

struct relay *
relay_new(struct server *srv, struct errors *errs)
{
	struct relay *r = xcalloc(1, sizeof(*r));
	const struct config *cfg = srv->cfg;
	char *err = NULL;

	r->srv = srv;
	pthread_mutex_init(&r->lock, NULL);
	r->inbox_ev = event_new(srv->base, -1, 0, inbox_cb, r);
	if (r->inbox_ev == NULL)
		fatalx("relay: event_new failed");
	if (cfg->next_hop == NULL && domains_each(srv->domains, NULL, NULL) == 0)
		return r;		/* nothing relays: no spool */
	r->spool = spool_open(cfg->spool_dir, &err);
	if (r->spool == NULL) {
		errors_add(errs, "%s: [relay] spool_dir: %s",
		    cfg->path ? cfg->path : "", err);
		free(err);
		relay_free(r);
		return NULL;
	}
	r->tls = SSL_CTX_new(TLS_client_method());
	if (r->tls == NULL)
		fatalx("relay: SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(r->tls, TLS1_2_VERSION);
	SSL_CTX_set_options(r->tls, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	if (cfg->tls_verify) {
		SSL_CTX_set_verify(r->tls, SSL_VERIFY_PEER, NULL);
		if (cfg->tls_ca_file != NULL ?
		    SSL_CTX_load_verify_locations(r->tls, cfg->tls_ca_file,
		    NULL) != 1 : SSL_CTX_set_default_verify_paths(r->tls) != 1) {
			char buf[200];
			ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
			errors_add(errs, "%s: [relay] tls_ca_file: %s",
			    cfg->path ? cfg->path : "", buf);
			relay_free(r);
			return NULL;
		}
	} else
		SSL_CTX_set_verify(r->tls, SSL_VERIFY_NONE, NULL);
	size_t removed = 0;
	size_t n = spool_recover(r->spool, recovered, r, &removed);
	log_msg(LOG_INFO, NULL, "event=spool-recovered dir=%s messages=%zu "
	    "incomplete_removed=%zu", log_escape(cfg->spool_dir,
	    strlen(cfg->spool_dir), 200), n, removed);
	return r;
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	for (struct hop *h = r->hops; h != NULL; h = h->next)
		if (h->conn != NULL) {
			h->conn->msg = NULL;
			relay_conn_free(h->conn);
		}
	/* Queued, waiting for a retry or in a transaction: all here. */
	while (r->all != NULL)
		relay_msg_free(r->all);
	while (r->hops != NULL) {
		struct hop *h = r->hops;
		r->hops = h->next;
		free(h->name);
		free(h->host);
		free(h);
	}
	while (r->inbox != NULL) {
		struct relay_item *it = r->inbox;
		r->inbox = it->next;
		spool_entry_free(it->e);
		free(it);
	}
	event_free(r->inbox_ev);
	if (r->dns != NULL)
		evdns_base_free(r->dns, 0);
	if (r->tls != NULL)
		SSL_CTX_free(r->tls);
	spool_close(r->spool);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ------------------------------------------------- the session's side */

int
relay_spool(struct relay *r, struct relay_batch *b,
    const struct relay_request *rq)
{
	const char *hop;
	struct spool_entry *e;

	hop = rq->entry != NULL && rq->entry->relay_host != NULL ?
	    rq->entry->relay_host : rq->next_hop;
	if (r == NULL || r->spool == NULL || hop == NULL)
		return 1;
	e = xcalloc(1, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", rq->id);
	e->sender = xstrdup(rq->sender);
	e->recipient = xstrdup(rq->recipient);
	e->queue = queue_for_recipient(rq->recipient);
	e->listener = xstrdup(rq->listener);
	e->hop = xstrdup(hop);
	e->created = *rq->created;
	e->meta = rq->meta != NULL ? json_incref(rq->meta) : json_object();
	e->headers = rq->headers != NULL ? json_incref(rq->headers) :
	    json_object();
	if (spool_write(r->spool, e, rq->trace ? rq->trace : "",
	    rq->trace ? strlen(rq->trace) : 0, rq->data, rq->len) != 0) {
		int saved = errno;
		log_msg(LOG_ERR, NULL, "event=spool-write-failed id=%s "
		    "error=\"%s\"", e->id, strerror(saved));
		spool_entry_free(e);
		errno = saved;
		return -1;
	}
	struct relay_item *it = xcalloc(1, sizeof(*it));
	it->e = e;
	it->next = b->head;
	b->head = it;
	return 0;
}

void
relay_release(struct relay *r, struct relay_batch *b, bool deliver)
{
	struct relay_item *it;

	if (b->head == NULL)
		return;
	if (!deliver) {
		while ((it = b->head) != NULL) {
			b->head = it->next;
			if (spool_remove(r->spool, it->e->id) != 0)
				log_msg(LOG_ERR, NULL, "event=spool-remove-failed "
				    "id=%s error=\"%s\"", it->e->id,
				    strerror(errno));
			spool_entry_free(it->e);
			free(it);
		}
		return;
	}
	/* b is newest first; the inbox too, so append b as is. */
	struct relay_item *last = b->head;
	while (last->next != NULL)
		last = last->next;
	pthread_mutex_lock(&r->lock);
	last->next = r->inbox;
	r->inbox = b->head;
	pthread_mutex_unlock(&r->lock);
	b->head = NULL;
	event_active(r->inbox_ev, EV_READ, 0);
}

/* ------------------------------------------------------ `oobd queue` */

static bool
msg_ready(const struct relay_msg *m)
{
	for (const struct relay_msg *x = m->hop->ready; x != NULL; x = x->next)
		if (x == m)
			return true;
	return false;
}

/* Waiting for its retry timer, nothing of it being written. */
static bool
msg_deferred(const struct relay_msg *m)
{
	return m->nlines == 0 && m->timer != NULL &&
	    evtimer_pending(m->timer, NULL);
}

static const char *
msg_state(const struct relay_msg *m)
{
	if (m->nlines > 0)
		return "writing";
	if (msg_deferred(m))
		return "deferred";
	if (msg_ready(m))
		return "ready";
	return "active";
}

static json_t *
time_value(double t)
{
	char buf[48];

	format_rfc3339(buf, sizeof(buf), (time_t)t, 0);
	return json_string(buf);
}

json_t *
relay_queue_list(struct relay *r)
{
	json_t *a = json_array();

	for (struct relay_msg *m = r != NULL ? r->all : NULL; m != NULL;
	    m = m->all_next) {
		const char *state = msg_state(m);
		json_t *o = json_object();
		/* Lossy: an address may hold any bytes (SMTPUTF8 or not). */
		json_object_set_new(o, "id", json_string(m->e->id));
		json_object_set_new(o, "sender", json_string_lossy(m->e->sender));
		json_object_set_new(o, "recipient",
		    json_string_lossy(m->e->recipient));
		json_object_set_new(o, "queue", json_string_lossy(m->e->queue));
		json_object_set_new(o, "hop", json_string_lossy(m->hop->name));
		json_object_set_new(o, "size", json_integer((json_int_t)
		    m->e->size));
		json_object_set_new(o, "created",
		    time_value((double)m->e->created.tv_sec));
		json_object_set_new(o, "attempts", json_integer(m->attempts));
		json_object_set_new(o, "state", json_string(state));
		json_object_set_new(o, "next_attempt",
		    strcmp(state, "deferred") == 0 ? time_value(m->due) :
		    json_null());
		json_object_set_new(o, "last_reply", m->last_reply != NULL ?
		    json_string_lossy(m->last_reply) : json_null());
		json_array_append_new(a, o);
	}
	return a;
}

size_t
relay_queue_flush(struct relay *r)
{
	size_t n = 0;

	for (struct relay_msg *m = r != NULL ? r->all : NULL; m != NULL;
	    m = m->all_next)
		if (msg_deferred(m)) {
			evtimer_del(m->timer);
			ready_push(m->hop, m);
			n++;
		}
	for (struct hop *h = r != NULL ? r->hops : NULL; h != NULL; h = h->next)
		if (h->ready != NULL)
			relay_hop_kick(h);
	if (n > 0)
		log_msg(LOG_INFO, NULL, "event=queue-flushed messages=%zu", n);
	return n;
}

/* Take m out of its hop's ready queue. */
static void
ready_remove(struct relay_msg *m)
{
	struct hop *h = m->hop;
	struct relay_msg *prev = NULL;

	for (struct relay_msg *x = h->ready; x != NULL; prev = x, x = x->next)
		if (x == m) {
			if (prev != NULL)
				prev->next = x->next;
			else
				h->ready = x->next;
			if (h->ready_tail == m)
				h->ready_tail = prev;
			m->next = NULL;
			return;
		}
}

size_t
relay_queue_delete(struct relay *r, const char *id, size_t *busy, bool *found)
{
	struct relay_msg *m, *next;
	size_t n = 0;

	*busy = 0;
	*found = false;
	for (m = r != NULL ? r->all : NULL; m != NULL; m = next) {
		next = m->all_next;
		if (id != NULL && strcmp(m->e->id, id) != 0)
			continue;
		*found = true;
		bool deferred = msg_deferred(m), ready = msg_ready(m);
		if (!deferred && !ready) {
			(*busy)++;
			continue;
		}
		if (spool_remove(r->spool, m->e->id) != 0 && errno != ENOENT) {
			log_msg(LOG_ERR, NULL, "event=spool-remove-failed id=%s "
			    "error=\"%s\"", m->e->id, strerror(errno));
			(*busy)++;
			continue;
		}
		log_msg(LOG_INFO, NULL, "event=queue-deleted id=%s hop=%s "
		    "attempts=%u recipient=%s", m->e->id, m->hop->name,
		    m->attempts, log_escape(m->e->recipient,
		    strlen(m->e->recipient), 200));
		if (ready)
			ready_remove(m);
		relay_msg_free(m);	/* frees its timer too */
		n++;
	}
	return n;
}
