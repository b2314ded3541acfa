/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - the daemon's shared state: configuration and what it points
 * to, listeners, connection accounting, the worker pool and the log.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "admin.h"
#include "classify.h"
#include "log.h"
#include "logfile.h"
#include "pool.h"
#include "relay.h"
#include "retention.h"
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

/* Accepting pauses this long after an error, doubling while errors go on. */
#define ACCEPT_PAUSE_MIN_MS	100
#define ACCEPT_PAUSE_MAX_MS	1000
/* Descriptors kept for all but sessions: log segments, spool files, relay
 * and admin connections, reloads (beside those open at start). */
#define RESERVED_FDS		32

static void
accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct listener *l = arg;

	(void)ev;
	if (l->pause_ms != 0) {
		log_msg(LOG_INFO, NULL, "event=accept-resumed listener=%s "
		    "errors=%zu", l->name, l->errors);
		l->pause_ms = 0;
		l->errors = 0;
		l->logged.tv_sec = 0;
		l->logged.tv_nsec = 0;
	}
	smtp_session_start(l->srv, l, fd, sa, len);
}

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	if (l->ev != NULL)	/* NULL once draining */
		evconnlistener_enable(l->ev);
}

/*
 * accept() failed for want of descriptors or memory (libevent retries the
 * transient errors itself). The connection stays in the backlog, so the
 * listener is readable again at once: accepting on would spin and log
 * without end. Pause the listener instead, 100 ms doubling to 1 s while
 * the errors go on, and log at most one line a second with the number
 * of errors since the last line.
 */
static void
accept_error_cb(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int e = EVUTIL_SOCKET_ERROR();
	struct timespec now;
	struct timeval tv;

	evconnlistener_disable(ev);
	l->errors++;
	l->pause_ms = l->pause_ms == 0 ? ACCEPT_PAUSE_MIN_MS :
	    l->pause_ms * 2 < ACCEPT_PAUSE_MAX_MS ? l->pause_ms * 2 :
	    ACCEPT_PAUSE_MAX_MS;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((l->logged.tv_sec == 0 && l->logged.tv_nsec == 0) ||
	    now.tv_sec - l->logged.tv_sec > 1 ||
	    (now.tv_sec - l->logged.tv_sec == 1 &&
	    now.tv_nsec >= l->logged.tv_nsec)) {
		log_msg(LOG_ERR, NULL, "event=accept-error listener=%s "
		    "error=\"%s\" errors=%zu pause_ms=%u", l->name,
		    evutil_socket_error_to_string(e), l->errors, l->pause_ms);
		l->errors = 0;
		l->logged = now;
	}
	tv.tv_sec = (time_t)(l->pause_ms / 1000);
	tv.tv_usec = (suseconds_t)(l->pause_ms % 1000) * 1000;
	evtimer_add(l->resume, &tv);
}

/*
 * Each session holds a descriptor: fit max_connections to RLIMIT_NOFILE.
 * The soft limit is raised towards the hard one as far as needed; what
 * is then missing caps the sessions (srv->conn_cap), with a warning.
 * Called once everything long-lived is open (listeners, log, admin).
 */
static void
fit_connections(struct server *srv)
{
	struct rlimit rl;
	size_t open_now = 0, reserved, want;
	DIR *d;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	if ((d = opendir("/proc/self/fd")) != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				open_now++;
		closedir(d);
	} else
		open_now = 16;
	reserved = open_now + RESERVED_FDS + srv->cfg->workers;
	want = srv->cfg->max_connections + reserved;
	if (rl.rlim_cur < want && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ?
		    want : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= want)
		return;
	srv->conn_cap = rl.rlim_cur > reserved + 1 ?
	    (size_t)rl.rlim_cur - reserved : 1;
	log_msg(LOG_WARN, NULL, "event=max-connections-capped configured=%zu "
	    "effective=%zu nofile=%llu reserved=%zu hint=\"raise the "
	    "descriptor limit (LimitNOFILE, ulimit -n)\"",
	    srv->cfg->max_connections, srv->conn_cap,
	    (unsigned long long)rl.rlim_cur, reserved);
}

/* The client's network as counted: "192.0.2.0/24", "2001:db8::/64". */
static void
network_of(const char *ip, char *out, size_t len)
{
	struct in_addr a4;
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];
	const char *v4 = strncmp(ip, "::ffff:", 7) == 0 && strchr(ip, '.') ?
	    ip + 7 : ip;

	if (inet_pton(AF_INET, v4, &a4) == 1) {
		const unsigned char *b = (const unsigned char *)&a4;
		snprintf(out, len, "%u.%u.%u.0/24", b[0], b[1], b[2]);
	} else if (inet_pton(AF_INET6, ip, &a6) == 1) {
		memset(a6.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a6, text, sizeof(text));
		snprintf(out, len, "%s/64", text);
	} else
		snprintf(out, len, "%s", ip);
}

static struct ip_count *
count_find(struct ip_count *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].ip, key) == 0)
			return &v[i];
	return NULL;
}

static void
count_add(struct ip_count **v, size_t *n, struct ip_count *slot,
    const char *key)
{
	if (slot == NULL) {
		*v = xgrow(*v, *n, sizeof(**v));
		slot = &(*v)[(*n)++];
		snprintf(slot->ip, sizeof(slot->ip), "%s", key);
		slot->n = 0;
	}
	slot->n++;
}

static void
count_del(struct ip_count *v, size_t *n, const char *key)
{
	struct ip_count *slot = count_find(v, *n, key);

	if (slot != NULL && --slot->n == 0)
		*slot = v[--*n];
}

/*
 * Connection accounting: in all (max_connections, capped by the
 * descriptor limit), per client address, and per client network (a
 * /24 or /64: one host's many addresses count together).
 */
bool
server_conn_add(struct server *srv, const char *ip, const char **why)
{
	static _Thread_local char reason[160];
	const struct config *cfg = srv->cfg;
	size_t max = cfg->max_connections;
	struct ip_count *slot, *net;
	char network[INET6_ADDRSTRLEN + 8];

	if (srv->conn_cap != 0 && max > srv->conn_cap)
		max = srv->conn_cap;
	network_of(ip, network, sizeof(network));
	slot = count_find(srv->ips, srv->nips, ip);
	net = count_find(srv->nets, srv->nnets, network);
	if (srv->nsessions >= max)
		snprintf(reason, sizeof(reason), "%s Error: too many connections",
		    cfg->hostname);
	else if (slot != NULL && slot->n >= cfg->max_connections_per_ip)
		snprintf(reason, sizeof(reason),
		    "%s Error: too many connections from %s", cfg->hostname, ip);
	else if (net != NULL && net->n >= cfg->max_connections_per_network)
		snprintf(reason, sizeof(reason),
		    "%s Error: too many connections from %s", cfg->hostname,
		    network);
	else {
		count_add(&srv->ips, &srv->nips, slot, ip);
		count_add(&srv->nets, &srv->nnets, net, network);
		srv->nsessions++;
		return true;
	}
	*why = reason;
	metrics_connection_refused();
	return false;
}

void
server_conn_del(struct server *srv, const char *ip)
{
	char network[INET6_ADDRSTRLEN + 8];

	network_of(ip, network, sizeof(network));
	count_del(srv->ips, &srv->nips, ip);
	count_del(srv->nets, &srv->nnets, network);
	srv->nsessions--;
}

struct log_job {
	struct job job;
	struct server *srv;
	char	**lines;
	size_t	 n;
};

/* The metrics of a record written: its type is its first field. */
static void
count_record(const char *line)
{
	static const char prefix[] = "{\"type\":\"";
	size_t n;

	if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
		return;
	line += sizeof(prefix) - 1;
	n = strcspn(line, "\"");
	for (int t = REC_RECEPTION; t <= REC_XFER_IN; t++) {
		const char *name = record_type_name((enum record_type)t);
		if (strlen(name) == n && strncmp(line, name, n) == 0) {
			metrics_record((enum record_type)t);
			return;
		}
	}
}

static void
log_job_run(struct job *j)
{
	struct log_job *lj = (struct log_job *)j;

	if (logfile_commit(lj->srv->log, (const char *const *)lj->lines,
	    lj->n) != 0) {
		log_msg(LOG_ERR, NULL, "event=log-write-failed records=%zu "
		    "error=\"%s\"", lj->n, strerror(errno));
		return;
	}
	for (size_t i = 0; i < lj->n; i++)
		count_record(lj->lines[i]);
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
	/* TLS 1.2: AEAD ciphers only (no CBC: LUCKY13); 1.3 keeps its own. */
	if (SSL_CTX_set_cipher_list(ctx,
	    "ECDHE+AESGCM:ECDHE+CHACHA20:RSA+AESGCM:!aNULL") != 1)
		fatalx("SSL_CTX_set_cipher_list failed");
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

/* ---- settings: what a reload replaces ---- */

struct settings *
settings_ref(struct settings *set)
{
	set->refs++;
	return set;
}

void
settings_unref(struct settings *set)
{
	if (set == NULL || --set->refs > 0)
		return;
	if (set->classifier)
		classifier_slot_free(set->classifier);
	if (set->domains)
		domains_free(set->domains);
	if (set->tls)
		SSL_CTX_free(set->tls);
	free(set->relay_hosts);
	/* The first configuration belongs to main(); reloaded ones to us. */
	if (set->owns_cfg)
		config_free(set->cfg);
	free(set);
}

/*
 * Load what the configuration points to: relay networks, listener
 * domains, bounce rules, the TLS certificate. Every problem goes to errs;
 * the settings are returned either way (the caller looks at errs).
 */
static struct settings *
settings_build(struct config *cfg, bool owns_cfg, struct errors *errs)
{
	struct settings *set = xcalloc(1, sizeof(*set));
	char *err = NULL;

	set->refs = 1;
	set->cfg = cfg;
	set->owns_cfg = owns_cfg;
	for (size_t i = 0; i < cfg->relay_hosts.n; i++) {
		struct cidr c;
		if (cidr_parse(cfg->relay_hosts.v[i], &c, &err) != 0) {
			errors_add(errs, "%s: [listener] relay_hosts: %s",
			    cfg->path ? cfg->path : "", err);
			free(err);
			err = NULL;
			continue;
		}
		set->relay_hosts = xgrow(set->relay_hosts, set->nrelay_hosts,
		    sizeof(*set->relay_hosts));
		set->relay_hosts[set->nrelay_hosts++] = c;
	}
	if (cfg->listener_domains.n > 0)
		set->domains = domains_load(
		    (const char *const *)cfg->listener_domains.v,
		    cfg->listener_domains.n, errs);
	relay_check_config(cfg, set->domains, errs);
	struct classifier *c = classifier_load(
	    (const char *const *)cfg->classifier_files.v,
	    cfg->classifier_files.n, &err);
	if (c == NULL) {
		errors_add(errs, "%s", err ? err : "cannot load bounce rules");
		free(err);
		err = NULL;
	} else
		set->classifier = classifier_slot_new(c);
	/* One without the other is a configuration error (conf.c). */
	if (cfg->tls_certificate != NULL && cfg->tls_private_key != NULL)
		set->tls = tls_context(cfg, errs);
	return set;
}

/* Point the server's shortcuts at its current settings. */
static void
server_use(struct server *srv, struct settings *set)
{
	srv->cur = set;
	srv->cfg = set->cfg;
	srv->domains = set->domains;
	srv->classifier = set->classifier;
	srv->relay_hosts = set->relay_hosts;
	srv->nrelay_hosts = set->nrelay_hosts;
	srv->tls = set->tls;
}

/* ---- systemd ---- */

/* sd_notify, when oobd runs under systemd (NOTIFY_SOCKET set). */
static void
notify(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
	va_list ap;
	char *text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		fatalx("out of memory formatting a notification");
	va_end(ap);
	(void)sd_notify(0, text);
	free(text);
#else
	(void)fmt;
#endif
}

/* The STATUS= summary. */
static char *
status_text(const struct server *srv)
{
	struct buf b = { 0 };

	if (srv->draining)
		buf_printf(&b, "draining: %zu sessions open", srv->nsessions);
	else {
		buf_puts(&b, "listening on ");
		for (size_t i = 0; i < srv->nlisteners; i++)
			buf_printf(&b, "%s%s", i ? " " : "",
			    srv->listeners[i].name);
		buf_printf(&b, "; %zu sessions, %llu messages", srv->nsessions,
		    srv->messages);
	}
	if (srv->log != NULL && !logfile_healthy(srv->log))
		buf_puts(&b, "; LOG UNHEALTHY");
	return buf_steal(&b);
}

static void
notify_status(struct server *srv, const char *extra)
{
	char *st = status_text(srv);

	if (extra != NULL || srv->status == NULL ||
	    strcmp(st, srv->status) != 0)
		notify("%s%sSTATUS=%s", extra ? extra : "", extra ? "\n" : "",
		    st);
	free(srv->status);
	srv->status = st;
}

/*
 * The listening sockets systemd passed (socket activation), kept until a
 * configured address claims them.
 */
static void
inherit_sockets(struct server *srv)
{
#ifdef HAVE_SYSTEMD
	int n = sd_listen_fds(1);

	if (n < 0) {
		log_msg(LOG_WARN, NULL, "event=socket-activation-error "
		    "error=\"%s\"", strerror(-n));
		return;
	}
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		if (sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) <= 0) {
			log_msg(LOG_WARN, NULL, "event=socket-unusable fd=%d "
			    "reason=\"not a listening TCP socket\"", fd);
			close(fd);
			continue;
		}
		srv->inherited = xgrow(srv->inherited, srv->ninherited,
		    sizeof(*srv->inherited));
		srv->inherited[srv->ninherited++] = fd;
	}
#else
	(void)srv;
#endif
}

static bool
same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/*
 * Two listen addresses that cannot both be bound: the same, or the same
 * port where one is the wildcard address of the family.
 */
static bool
overlaps(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (same_address(a, b))
		return true;
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		    (x->sin_addr.s_addr == htonl(INADDR_ANY) ||
		    y->sin_addr.s_addr == htonl(INADDR_ANY));
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		    (IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) ||
		    IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
	}
	return false;
}

/*
 * oobd -t: a directory the daemon writes must be one it can create (as
 * it does at start, with its missing parents) or write. The nearest
 * existing ancestor of a missing one must be a writable directory.
 */
static void
check_dir(const struct config *cfg, const char *key, const char *dir,
    struct errors *errs)
{
	const char *path = cfg->path ? cfg->path : "";
	struct stat st;
	char *p;

	if (dir == NULL || dir[0] == '\0')
		return;
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			errors_add(errs, "%s: %s: %s: not a directory", path, key,
			    dir);
		else if (access(dir, W_OK | X_OK) != 0)
			errors_add(errs, "%s: %s: %s: not writable: %s", path, key,
			    dir, strerror(errno));
		return;
	}
	p = xstrdup(dir);
	for (;;) {
		char *slash = strrchr(p, '/');
		while (slash != NULL && slash > p && slash[-1] == '/')
			slash--;
		if (slash == NULL)
			strcpy(p, ".");
		else if (slash == p)
			p[1] = '\0';
		else
			*slash = '\0';
		if (stat(p, &st) == 0)
			break;
		if (strcmp(p, ".") == 0 || strcmp(p, "/") == 0)
			break;
	}
	if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
		errors_add(errs, "%s: %s: %s: cannot be created: %s is not a "
		    "directory", path, key, dir, p);
	else if (access(p, W_OK | X_OK) != 0)
		errors_add(errs, "%s: %s: %s: cannot be created: %s is not "
		    "writable", path, key, dir, p);
	free(p);
}

/*
 * A listening socket for addr: the inherited one bound to that address,
 * else a new one. -1 with a message in errs.
 */
static int
listen_socket(struct server *srv, const char *what, const char *addr,
    struct errors *errs)
{
	struct sockaddr_storage ss, got;
	socklen_t len, glen;
	int fd, on = 1;

	if (parse_listen(addr, &ss, &len) != 0)
		return -1;
	for (size_t i = 0; i < srv->ninherited; i++) {
		if ((fd = srv->inherited[i]) < 0)
			continue;
		glen = sizeof(got);
		if (getsockname(fd, (struct sockaddr *)&got, &glen) == 0 &&
		    same_address(&got, &ss)) {
			srv->inherited[i] = -1;
			evutil_make_socket_nonblocking(fd);
			evutil_make_socket_closeonexec(fd);
			log_msg(LOG_INFO, NULL, "event=socket-inherited addr=%s",
			    addr);
			return fd;
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errors_add(errs, "%s: %s: cannot listen: %s", what, addr,
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* "[::]:25" next to "0.0.0.0:25" must not collide. */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 511) != 0) {
		errors_add(errs, "%s: %s: cannot listen: %s", what, addr,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static char *
socket_name(int fd)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);

	if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0)
		return xstrdup("?");
	return sockaddr_name((struct sockaddr *)&bound);
}

/* ---- privileges ---- */

/* [listener] user and group as ids. 0, or -1 with a message in errs. */
static int
resolve_user(const struct config *cfg, uid_t *uid, gid_t *gid,
    struct errors *errs)
{
	const char *path = cfg->path ? cfg->path : "";
	struct passwd *pw;
	struct group *gr;

	if (cfg->user == NULL || cfg->user[0] == '\0')
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		errors_add(errs, "%s: [listener] user: no user \"%s\"", path,
		    cfg->user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (cfg->group != NULL && cfg->group[0] != '\0') {
		if ((gr = getgrnam(cfg->group)) == NULL) {
			errors_add(errs, "%s: [listener] group: no group \"%s\"",
			    path, cfg->group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

/*
 * The directories the daemon writes, made before anything listens so a
 * start does not fail half-way: a missing one is created with its missing
 * parents (those 0755, as install -d makes them), itself 0750 and, when
 * root starts oobd for another user, owned by that user. One that exists
 * is left as it is (its owner decides; see oobd(8)). 0, or -1 with a
 * message in errs.
 */
static int
prepare_dir(const char *dir, bool chown_it, uid_t uid, gid_t gid,
    struct errors *errs)
{
	char *p;
	struct stat st;
	int rc = 0;

	if (dir == NULL || dir[0] == '\0' || stat(dir, &st) == 0)
		return 0;
	p = xstrdup(dir);
	for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
		p[n - 1] = '\0';
	for (char *s = p + 1; *s != '\0' && rc == 0; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				rc = -1;
			else
				*s = '/';
		}
	if (rc == 0 && ((mkdir(p, 0750) != 0 && errno != EEXIST) ||
	    (chown_it && chown(p, uid, gid) != 0)))
		rc = -1;
	if (rc != 0)
		errors_add(errs, "%s: cannot create the directory %s: %s",
		    dir, p, strerror(errno));
	free(p);
	return rc;
}

/*
 * Started as root with [listener] user set: switch for good to that user
 * (its supplementary groups, then group, then user), and make sure root
 * cannot be regained. 0, or -1 with a message in errs.
 */
static int
drop_privileges(const struct config *cfg, uid_t uid, gid_t gid,
    struct errors *errs)
{
	const char *path = cfg->path ? cfg->path : "";

	if (cfg->user == NULL || cfg->user[0] == '\0') {
		if (geteuid() == 0)
			log_msg(LOG_WARN, NULL, "event=running-as-root "
			    "hint=\"set [listener] user\"");
		return 0;
	}
	if (geteuid() != 0) {
		if (geteuid() != uid) {
			errors_add(errs, "%s: [listener] user: cannot switch to "
			    "\"%s\": not started as root", path, cfg->user);
			return -1;
		}
		return 0;
	}
	if (uid == 0)
		return 0;
	if (initgroups(cfg->user, gid) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0) {
		errors_add(errs, "%s: [listener] user: cannot switch to \"%s\": %s",
		    path, cfg->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0)
		fatalx("root regained after switching to %s", cfg->user);
	log_msg(LOG_INFO, NULL, "event=privileges-dropped user=%s uid=%u gid=%u",
	    cfg->user, (unsigned)uid, (unsigned)gid);
	return 0;
}

/* ---- start ---- */

int
server_init(struct server *srv, struct config *cfg, bool check_only,
    struct errors *errs)
{
	size_t before = errs->n;
	char *err = NULL;
	uid_t uid = 0;
	gid_t gid = 0;
	enum log_level level;

	memset(srv, 0, sizeof(*srv));
	srv->admin_fd = -1;
	server_use(srv, settings_build(cfg, false, errs));
	for (size_t i = 0; i < cfg->listen.n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		if (parse_listen(cfg->listen.v[i], &ss, &len) != 0)
			errors_add(errs, "%s: [listener] listen: \"%s\" is not "
			    "\"ip:port\" or \"[ipv6]:port\"",
			    cfg->path ? cfg->path : "", cfg->listen.v[i]);
	}
	if (cfg->admin_listen != NULL && cfg->admin_listen[0] != '\0') {
		struct sockaddr_storage ss, smtp;
		socklen_t len;
		if (parse_listen(cfg->admin_listen, &ss, &len) != 0)
			errors_add(errs, "%s: [admin] listen: \"%s\" is not "
			    "\"ip:port\" or \"[ipv6]:port\"",
			    cfg->path ? cfg->path : "", cfg->admin_listen);
		else
			for (size_t i = 0; i < cfg->listen.n; i++)
				if (parse_listen(cfg->listen.v[i], &smtp,
				    &len) == 0 && overlaps(&ss, &smtp))
					errors_add(errs, "%s: [admin] listen: "
					    "\"%s\" overlaps [listener] listen "
					    "\"%s\"", cfg->path ? cfg->path : "",
					    cfg->admin_listen, cfg->listen.v[i]);
	}
	(void)resolve_user(cfg, &uid, &gid, errs);
	if (check_only) {
		check_dir(cfg, "[logs] log_dir", cfg->log_dir, errs);
		check_dir(cfg, "[listener] state_dir", cfg->state_dir, errs);
		if (cfg->next_hop != NULL ||
		    domains_each(srv->domains, NULL, NULL) > 0)
			check_dir(cfg, "[relay] spool_dir", cfg->spool_dir, errs);
	}
	if (check_only || errs->n != before)
		return errs->n != before ? -1 : 0;

	if (log_level_parse(cfg->log_level, &level) == 0)
		log_config_level(level);
	evthread_use_pthreads();
	srv->base = event_base_new();
	if (srv->base == NULL)
		fatalx("event_base_new failed");

	bool for_user = geteuid() == 0 && cfg->user != NULL && uid != 0;
	if (prepare_dir(cfg->log_dir, for_user, uid, gid, errs) != 0 ||
	    prepare_dir(cfg->state_dir, for_user, uid, gid, errs) != 0 ||
	    ((cfg->next_hop != NULL ||
	    domains_each(srv->domains, NULL, NULL) > 0) &&
	    prepare_dir(cfg->spool_dir, for_user, uid, gid, errs) != 0))
		return -1;

	/* Bind while still privileged (port 25), or take systemd's sockets. */
	inherit_sockets(srv);
	srv->listeners = xcalloc(cfg->listen.n, sizeof(*srv->listeners));
	for (size_t i = 0; i < cfg->listen.n; i++) {
		struct listener *l = &srv->listeners[srv->nlisteners];
		int fd = listen_socket(srv, "[listener] listen",
		    cfg->listen.v[i], errs);
		if (fd < 0)
			continue;
		l->srv = srv;
		l->ev = evconnlistener_new(srv->base, accept_cb, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (l->ev == NULL) {
			errors_add(errs, "%s: cannot listen: %s", cfg->listen.v[i],
			    strerror(errno));
			close(fd);
			continue;
		}
		/* Name it by the bound address, so port 0 shows the real port. */
		l->name = socket_name(fd);
		evconnlistener_set_error_cb(l->ev, accept_error_cb);
		l->resume = evtimer_new(srv->base, accept_resume, l);
		if (l->resume == NULL)
			fatalx("evtimer_new failed");
		srv->nlisteners++;
		log_msg(LOG_INFO, NULL, "event=listening addr=%s", l->name);
	}
	if (cfg->admin_listen != NULL && cfg->admin_listen[0] != '\0' &&
	    (srv->admin_fd = listen_socket(srv, "[admin] listen",
	    cfg->admin_listen, errs)) >= 0)
		srv->admin_name = socket_name(srv->admin_fd);
	for (size_t i = 0; i < srv->ninherited; i++)
		if (srv->inherited[i] >= 0) {
			char *name = socket_name(srv->inherited[i]);
			log_msg(LOG_WARN, NULL, "event=socket-unused addr=%s "
			    "reason=\"no [listener] listen address matches\"",
			    name);
			free(name);
			close(srv->inherited[i]);
			srv->inherited[i] = -1;
		}
	if (errs->n != before)
		return -1;

	if (drop_privileges(cfg, uid, gid, errs) != 0)
		return -1;

	srv->nodeid = load_nodeid(cfg->state_dir, true, errs);
	struct logfile_config lc = {
		.dir = cfg->log_dir,
		.compress = cfg->compress,
		.level = cfg->compression_level,
		.max_file_size = cfg->max_file_size,
		.max_segment_duration = cfg->max_segment_duration,
		.fsync = cfg->fsync,
		.min_free_space = cfg->log_min_free_space,
		.min_free_inodes = cfg->log_min_free_inodes,
	};
	srv->log = logfile_open(&lc, &err);
	if (srv->log == NULL) {
		errors_add(errs, "%s: %s", cfg->log_dir, err ? err : "cannot open");
		free(err);
		return -1;
	}
	logfile_watch(srv->log, "spool_dir", cfg->spool_dir,
	    &cfg->spool_min_free_space, &cfg->spool_min_free_inodes);

	srv->pool = pool_new(srv->base, cfg->workers);
	if ((srv->relay = relay_new(srv, errs)) == NULL)
		return -1;
	if (srv->admin_fd >= 0) {
		srv->admin = admin_start(srv->base, srv->admin_fd, &srv->log, &err);
		admin_set_relay(srv->admin, &srv->relay);
		if (srv->admin == NULL) {
			errors_add(errs, "[admin] listen: %s: %s", srv->admin_name,
			    err);
			free(err);
			return -1;
		}
		srv->admin_fd = -1;	/* the admin listener owns it now */
		log_msg(LOG_INFO, NULL, "event=admin-listening addr=%s",
		    srv->admin_name);
	}
	fit_connections(srv);
	return errs->n != before ? -1 : 0;
}

/* ---- reload ---- */

static bool
str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static bool
list_differs(const struct strlist *a, const struct strlist *b)
{
	if (a->n != b->n)
		return true;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return true;
	return false;
}

/* Keys read only at start: a changed one is logged and waits for a restart. */
static void
warn_restart_keys(const struct config *o, const struct config *n)
{
	const struct {
		const char *key;
		bool	 differs;
	} keys[] = {
		{ "[listener] listen", list_differs(&o->listen, &n->listen) },
		{ "[listener] workers", o->workers != n->workers },
		{ "[listener] state_dir", str_differs(o->state_dir, n->state_dir) },
		{ "[listener] user", str_differs(o->user, n->user) },
		{ "[listener] group", str_differs(o->group, n->group) },
		{ "[logs] log_dir", str_differs(o->log_dir, n->log_dir) },
		{ "[logs] compression", o->compress != n->compress },
		{ "[logs] compression_level",
		    o->compression_level != n->compression_level },
		{ "[logs] max_file_size", o->max_file_size != n->max_file_size },
		{ "[logs] max_segment_duration",
		    o->max_segment_duration != n->max_segment_duration },
		{ "[logs] fsync", o->fsync != n->fsync },
		{ "[admin] listen", str_differs(o->admin_listen, n->admin_listen) },
		{ "[relay] spool_dir", str_differs(o->spool_dir, n->spool_dir) },
	};

	for (size_t i = 0; i < nitems(keys); i++)
		if (keys[i].differs)
			log_msg(LOG_WARN, NULL, "event=reload-restart-needed "
			    "key=\"%s\"", keys[i].key);
}

int
server_reload(struct server *srv)
{
	struct errors errs = { 0 };
	struct settings *set = NULL;
	struct config *cfg;
	const char *path = srv->cfg->path;
	enum log_level level;

	notify("RELOADING=1");
	log_msg(LOG_INFO, NULL, "event=reload file=%s",
	    log_escape(path, strlen(path), 200));
	cfg = config_load(path, &errs);
	if (cfg != NULL) {
		for (size_t i = 0; i < cfg->listen.n; i++) {
			struct sockaddr_storage ss;
			socklen_t len;
			if (parse_listen(cfg->listen.v[i], &ss, &len) != 0)
				errors_add(&errs, "%s: [listener] listen: \"%s\" "
				    "is not \"ip:port\" or \"[ipv6]:port\"",
				    path, cfg->listen.v[i]);
		}
		set = settings_build(cfg, true, &errs);
	}
	if (errs.n > 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_msg(LOG_ERR, NULL, "event=reload-error error=%s",
			    log_escape(errs.v[i], strlen(errs.v[i]), 256));
		log_msg(LOG_ERR, NULL, "event=reload-failed errors=%zu "
		    "action=\"kept the running configuration\"", errs.n);
		if (set != NULL)
			settings_unref(set);
		else
			config_free(cfg);
		errors_free(&errs);
		metrics_reload(false);
		notify_status(srv, "READY=1");
		return -1;
	}
	warn_restart_keys(srv->cfg, cfg);
	struct settings *old = srv->cur;
	server_use(srv, set);
	settings_unref(old);
	if (srv->conn_cap != 0 && cfg->max_connections > srv->conn_cap)
		log_msg(LOG_WARN, NULL, "event=max-connections-capped "
		    "configured=%zu effective=%zu", cfg->max_connections,
		    srv->conn_cap);
	if (log_level_parse(cfg->log_level, &level) == 0)
		log_config_level(level);
	struct classifier *c = classifier_slot_get(srv->classifier);
	log_msg(LOG_INFO, NULL, "event=reloaded listener_domains=%zu "
	    "rule_files=%zu rules=%zu tls=%s", cfg->listener_domains.n,
	    cfg->classifier_files.n, classifier_rule_count(c),
	    srv->tls ? "yes" : "no");
	classifier_unref(c);
	metrics_reload(true);
	notify_status(srv, "READY=1");
	return 0;
}

/* ---- drain and stop ---- */

static void
drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timespec now;

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (srv->sessions == NULL && pool_pending(srv->pool) == 0) {
		log_msg(LOG_INFO, NULL, "event=drained");
		event_base_loopexit(srv->base, NULL);
	} else if (now.tv_sec > srv->drain_deadline.tv_sec ||
	    (now.tv_sec == srv->drain_deadline.tv_sec &&
	    now.tv_nsec >= srv->drain_deadline.tv_nsec)) {
		log_msg(LOG_WARN, NULL, "event=drain-timeout sessions=%zu "
		    "jobs=%zu", srv->nsessions, pool_pending(srv->pool));
		event_base_loopexit(srv->base, NULL);
	}
}

/*
 * SIGTERM/SIGINT: stop accepting, send idle sessions away (421 4.3.2),
 * let transactions in DATA finish, and stop once none is left or after
 * shutdown_timeout. A second signal stops at once.
 */
static void
server_drain(struct server *srv, int sig)
{
	struct timeval poll = { 0, 50000 };
	double t = srv->cfg->shutdown_timeout;

	if (srv->draining) {
		log_msg(LOG_WARN, NULL, "event=shutdown-now signal=%d "
		    "sessions=%zu", sig, srv->nsessions);
		event_base_loopexit(srv->base, NULL);
		return;
	}
	srv->draining = true;
	log_msg(LOG_INFO, NULL, "event=shutdown signal=%d sessions=%zu "
	    "timeout=%.3g", sig, srv->nsessions, t);
	for (size_t i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].ev != NULL) {
			evconnlistener_free(srv->listeners[i].ev);
			srv->listeners[i].ev = NULL;
		}
	notify_status(srv, "STOPPING=1");
	smtp_session_drain(srv);
	clock_gettime(CLOCK_MONOTONIC, &srv->drain_deadline);
	srv->drain_deadline.tv_sec += (time_t)t;
	srv->drain_deadline.tv_nsec += (long)((t - (double)(time_t)t) * 1e9);
	if (srv->drain_deadline.tv_nsec >= 1000000000L) {
		srv->drain_deadline.tv_sec++;
		srv->drain_deadline.tv_nsec -= 1000000000L;
	}
	srv->drain_timer = event_new(srv->base, -1, EV_PERSIST, drain_check, srv);
	evtimer_add(srv->drain_timer, &poll);
	drain_check(-1, 0, srv);
}

struct rotate_job {
	struct job job;
	struct logfile *log;
};

static void
rotate_run(struct job *j)
{
	struct rotate_job *rj = (struct rotate_job *)j;

	if (logfile_rotate(rj->log) != 0)
		log_msg(LOG_ERR, NULL, "event=log-rotate-failed error=\"%s\"",
		    strerror(errno));
	else
		log_msg(LOG_INFO, NULL, "event=log-rotated");
}

static void
rotate_done(struct job *j)
{
	free(j);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	switch (sig) {
	case SIGHUP:
		(void)server_reload(srv);
		break;
	case SIGUSR1: {
		/* Closing a segment syncs it: off the event loop. */
		struct rotate_job *rj = xcalloc(1, sizeof(*rj));
		rj->job.run = rotate_run;
		rj->job.done = rotate_done;
		rj->log = srv->log;
		pool_submit(srv->pool, &rj->job);
		break;
	}
	default:
		server_drain(srv, (int)sig);
		break;
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	logfile_tick(srv->log);
	retention_tick(srv->cfg->log_dir, srv->cfg->retention);
	notify_status(srv, NULL);
}

int
server_run(struct server *srv)
{
	struct timeval one = { 1, 0 };

	signal(SIGPIPE, SIG_IGN);
	srv->sigint = evsignal_new(srv->base, SIGINT, signal_cb, srv);
	srv->sigterm = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
	srv->sighup = evsignal_new(srv->base, SIGHUP, signal_cb, srv);
	srv->sigusr1 = evsignal_new(srv->base, SIGUSR1, signal_cb, srv);
	evsignal_add(srv->sigint, NULL);
	evsignal_add(srv->sigterm, NULL);
	evsignal_add(srv->sighup, NULL);
	evsignal_add(srv->sigusr1, NULL);
	srv->tick = event_new(srv->base, -1, EV_PERSIST, tick_cb, srv);
	evtimer_add(srv->tick, &one);
	/* Every listener is listening: connections queue until dispatch. */
	log_msg(LOG_INFO, NULL, "event=ready listeners=%zu", srv->nlisteners);
	notify_status(srv, "READY=1");
	event_base_dispatch(srv->base);
	return 0;
}

void
server_free(struct server *srv)
{
	for (size_t i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i].ev != NULL)
			evconnlistener_free(srv->listeners[i].ev);
		if (srv->listeners[i].resume != NULL)
			event_free(srv->listeners[i].resume);
		free(srv->listeners[i].name);
	}
	free(srv->listeners);
	/* Workers finish what they hold, so acknowledged work is logged. */
	pool_free(srv->pool);
	relay_free(srv->relay);
	smtp_session_free_all(srv);
	admin_stop(srv->admin);
	if (srv->admin_fd >= 0)
		close(srv->admin_fd);
	free(srv->admin_name);
	for (size_t i = 0; i < srv->ninherited; i++)
		if (srv->inherited[i] >= 0)
			close(srv->inherited[i]);
	free(srv->inherited);
	if (srv->sigint)
		event_free(srv->sigint);
	if (srv->sigterm)
		event_free(srv->sigterm);
	if (srv->sighup)
		event_free(srv->sighup);
	if (srv->sigusr1)
		event_free(srv->sigusr1);
	if (srv->tick)
		event_free(srv->tick);
	if (srv->drain_timer)
		event_free(srv->drain_timer);
	if (srv->log) {
		/* The last segment is finished, synced and made read-only. */
		logfile_close(srv->log);
		if (srv->draining)
			log_msg(LOG_INFO, NULL, "event=stopped");
	}
	settings_unref(srv->cur);
	free(srv->ips);
	free(srv->nets);
	free(srv->nodeid);
	free(srv->status);
	if (srv->base)
		event_base_free(srv->base);
	memset(srv, 0, sizeof(*srv));
}
