/*
 * server.c - the daemon's shared state: configuration and what it points
 * to, listeners, connection accounting, the worker pool and the log.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classify.h"
#include "log.h"
#include "logfile.h"
#include "pool.h"
#include "server.h"
#include "smtp_session.h"
#include "util.h"

/*
 * Parse "ip:port" or "[ipv6]:port" into a socket address. Returns 0 or -1.
 */
static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *port;
	struct addrinfo hints = { 0 }, *res = NULL;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port = colon + 1;
	}
	if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    atoi(port) > 65535)
		return -1;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

char *
sockaddr_name(const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		return xasprintf("[%s]:%d", ip, ntohs(s6->sin6_port));
	}
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
	return xasprintf("%s:%d", ip, ntohs(s4->sin_port));
}

static void
accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct listener *l = arg;

	(void)ev;
	smtp_session_start(l->srv, l, fd, sa, len);
}

static void
accept_error_cb(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int e = EVUTIL_SOCKET_ERROR();

	(void)ev;
	/* Out of descriptors and the like: pause rather than spin. */
	log_msg(LOG_ERR, NULL, "event=accept-error listener=%s error=\"%s\"",
	    l->name, evutil_socket_error_to_string(e));
}

bool
server_conn_add(struct server *srv, const char *ip, const char **why)
{
	static _Thread_local char reason[160];
	struct ip_count *slot = NULL;

	if (srv->nsessions >= srv->cfg->max_connections) {
		snprintf(reason, sizeof(reason), "%s Error: too many connections",
		    srv->cfg->hostname);
		*why = reason;
		return false;
	}
	for (size_t i = 0; i < srv->nips; i++)
		if (strcmp(srv->ips[i].ip, ip) == 0) {
			slot = &srv->ips[i];
			break;
		}
	if (slot != NULL && slot->n >= srv->cfg->max_connections_per_ip) {
		snprintf(reason, sizeof(reason),
		    "%s Error: too many connections from %s",
		    srv->cfg->hostname, ip);
		*why = reason;
		return false;
	}
	if (slot == NULL) {
		srv->ips = xrealloc(srv->ips, (srv->nips + 1) * sizeof(*srv->ips));
		slot = &srv->ips[srv->nips++];
		snprintf(slot->ip, sizeof(slot->ip), "%s", ip);
		slot->n = 0;
	}
	slot->n++;
	srv->nsessions++;
	return true;
}

void
server_conn_del(struct server *srv, const char *ip)
{
	for (size_t i = 0; i < srv->nips; i++)
		if (strcmp(srv->ips[i].ip, ip) == 0) {
			if (--srv->ips[i].n == 0)
				srv->ips[i] = srv->ips[--srv->nips];
			break;
		}
	srv->nsessions--;
}

struct log_job {
	struct job job;
	struct server *srv;
	char	**lines;
	size_t	 n;
};

static void
log_job_run(struct job *j)
{
	struct log_job *lj = (struct log_job *)j;

	if (logfile_commit(lj->srv->log, (const char *const *)lj->lines,
	    lj->n) != 0)
		log_msg(LOG_ERR, NULL, "event=log-write-failed records=%zu "
		    "error=\"%s\"", lj->n, strerror(errno));
}

static void
log_job_done(struct job *j)
{
	struct log_job *lj = (struct log_job *)j;

	for (size_t i = 0; i < lj->n; i++)
		free(lj->lines[i]);
	free(lj->lines);
	free(lj);
}

void
server_log_async(struct server *srv, char **lines, size_t n)
{
	struct log_job *lj = xcalloc(1, sizeof(*lj));

	lj->job.run = log_job_run;
	lj->job.done = log_job_done;
	lj->srv = srv;
	lj->lines = lines;
	lj->n = n;
	pool_submit(srv->pool, &lj->job);
}

/*
 * The node id: kept in state_dir/nodeid so it survives restarts, created
 * at the first start.
 */
static char *
load_nodeid(const char *state_dir, bool create, struct errors *errs)
{
	char *path = xasprintf("%s/nodeid", state_dir);
	size_t len;
	char *text = read_file(path, &len), id[37];

	if (text != NULL) {
		char *t = str_trim_dup(text, len);
		free(text);
		if (strlen(t) == 36) {
			free(path);
			return t;
		}
		free(t);
	}
	uuid4_new(id);
	if (create) {
		char *tmp = xasprintf("%s/.nodeid.tmp", state_dir);
		FILE *f;
		mkdir(state_dir, 0755);
		if ((f = fopen(tmp, "w")) == NULL ||
		    fprintf(f, "%s\n", id) < 0 || fflush(f) != 0 ||
		    fsync(fileno(f)) != 0 || fclose(f) != 0 ||
		    rename(tmp, path) != 0)
			errors_add(errs, "%s: cannot write the node id: %s",
			    path, strerror(errno));
		free(tmp);
	}
	free(path);
	return xstrdup(id);
}

/*
 * The STARTTLS context: TLS 1.2 or later, no compression, no
 * renegotiation, the server's cipher order. NULL with a message in errs.
 */
static SSL_CTX *
tls_context(const struct config *cfg, struct errors *errs)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char buf[256];

	if (ctx == NULL)
		fatalx("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		errors_add(errs, "%s: [listener] tls_certificate: %s",
		    cfg->tls_certificate, buf);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_private_key,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		errors_add(errs, "%s: [listener] tls_private_key: %s",
		    cfg->tls_private_key, buf);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
server_init(struct server *srv, struct config *cfg, bool check_only,
    struct errors *errs)
{
	size_t before = errs->n;
	char *err = NULL;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;

	for (size_t i = 0; i < cfg->relay_hosts.n; i++) {
		struct cidr c;
		if (cidr_parse(cfg->relay_hosts.v[i], &c, &err) != 0) {
			errors_add(errs, "%s: [listener] relay_hosts: %s",
			    cfg->path ? cfg->path : "", err);
			free(err);
			err = NULL;
			continue;
		}
		srv->relay_hosts = xrealloc(srv->relay_hosts,
		    (srv->nrelay_hosts + 1) * sizeof(*srv->relay_hosts));
		srv->relay_hosts[srv->nrelay_hosts++] = c;
	}
	if (cfg->listener_domains.n > 0)
		srv->domains = domains_load(
		    (const char *const *)cfg->listener_domains.v,
		    cfg->listener_domains.n, errs);
	struct classifier *c = classifier_load(
	    (const char *const *)cfg->classifier_files.v,
	    cfg->classifier_files.n, &err);
	if (c == NULL) {
		errors_add(errs, "%s", err ? err : "cannot load bounce rules");
		free(err);
		err = NULL;
	} else
		srv->classifier = classifier_slot_new(c);
	if (cfg->tls_certificate != NULL)
		srv->tls = tls_context(cfg, errs);
	for (size_t i = 0; i < cfg->listen.n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		if (parse_listen(cfg->listen.v[i], &ss, &len) != 0)
			errors_add(errs, "%s: [listener] listen: \"%s\" is not "
			    "\"ip:port\" or \"[ipv6]:port\"",
			    cfg->path ? cfg->path : "", cfg->listen.v[i]);
	}
	if (check_only || errs->n != before)
		return errs->n != before ? -1 : 0;

	srv->nodeid = load_nodeid(cfg->state_dir, true, errs);
	struct logfile_config lc = {
		.dir = cfg->log_dir,
		.compress = cfg->compress,
		.level = cfg->compression_level,
		.max_file_size = cfg->max_file_size,
		.max_segment_duration = cfg->max_segment_duration,
		.fsync = cfg->fsync,
	};
	srv->log = logfile_open(&lc, &err);
	if (srv->log == NULL) {
		errors_add(errs, "%s: %s", cfg->log_dir, err ? err : "cannot open");
		free(err);
		return -1;
	}

	evthread_use_pthreads();
	srv->base = event_base_new();
	if (srv->base == NULL)
		fatalx("event_base_new failed");
	srv->pool = pool_new(srv->base, cfg->workers);
	srv->listeners = xcalloc(cfg->listen.n, sizeof(*srv->listeners));
	for (size_t i = 0; i < cfg->listen.n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		struct listener *l = &srv->listeners[srv->nlisteners];
		parse_listen(cfg->listen.v[i], &ss, &len);
		l->srv = srv;
		l->ev = evconnlistener_new_bind(srv->base, accept_cb, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC, 511, (struct sockaddr *)&ss, (int)len);
		if (l->ev == NULL) {
			errors_add(errs, "%s: cannot listen: %s", cfg->listen.v[i],
			    strerror(errno));
			continue;
		}
		/* Name it by the bound address, so port 0 shows the real port. */
		struct sockaddr_storage bound;
		socklen_t blen = sizeof(bound);
		getsockname(evconnlistener_get_fd(l->ev),
		    (struct sockaddr *)&bound, &blen);
		l->name = sockaddr_name((struct sockaddr *)&bound);
		evconnlistener_set_error_cb(l->ev, accept_error_cb);
		srv->nlisteners++;
		log_msg(LOG_INFO, NULL, "event=listening addr=%s", l->name);
	}
	return errs->n != before ? -1 : 0;
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	log_msg(LOG_INFO, NULL, "event=shutdown signal=%d", (int)sig);
	event_base_loopexit(srv->base, NULL);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	logfile_tick(srv->log);
}

int
server_run(struct server *srv)
{
	struct timeval one = { 1, 0 };

	signal(SIGPIPE, SIG_IGN);
	srv->sigint = evsignal_new(srv->base, SIGINT, signal_cb, srv);
	srv->sigterm = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
	evsignal_add(srv->sigint, NULL);
	evsignal_add(srv->sigterm, NULL);
	srv->tick = event_new(srv->base, -1, EV_PERSIST, tick_cb, srv);
	evtimer_add(srv->tick, &one);
	log_msg(LOG_INFO, NULL, "event=ready listeners=%zu", srv->nlisteners);
	event_base_dispatch(srv->base);
	return 0;
}

void
server_free(struct server *srv)
{
	for (size_t i = 0; i < srv->nlisteners; i++) {
		evconnlistener_free(srv->listeners[i].ev);
		free(srv->listeners[i].name);
	}
	free(srv->listeners);
	/* Workers finish what they hold, so acknowledged work is logged. */
	pool_free(srv->pool);
	smtp_session_free_all(srv);
	if (srv->sigint)
		event_free(srv->sigint);
	if (srv->sigterm)
		event_free(srv->sigterm);
	if (srv->tick)
		event_free(srv->tick);
	if (srv->log)
		logfile_close(srv->log);
	if (srv->classifier)
		classifier_slot_free(srv->classifier);
	if (srv->domains)
		domains_free(srv->domains);
	if (srv->tls)
		SSL_CTX_free(srv->tls);
	free(srv->relay_hosts);
	free(srv->ips);
	free(srv->nodeid);
	if (srv->base)
		event_base_free(srv->base);
	memset(srv, 0, sizeof(*srv));
}
