/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_smtp_session.c - a whole SMTP session fed from bytes: one end of a
 * socketpair is handed to smtp_session_start() of a real server (worker
 * pool, listener domains, bounce rules, zstd log in a scratch directory),
 * the target plays the client on the other end and runs the event loop.
 *
 * The first input byte chooses how:
 *   bits 0-1  invalid_line_endings: Deny, Fix, Allow (3 = Deny)
 *   bit 2     burst: everything is written at once, replies or not
 *             (pipelining, early talkers, smuggling in one read)
 *   bit 3     with bit 2 clear: chunks of (byte >> 4) + 1 bytes instead
 *             of whole lines (lines split across reads)
 * Otherwise the client waits for the greeting, then sends one line (up
 * to and including its LF) at a time and lets the server settle before
 * the next. At the end it half-closes its side; the session must end.
 *
 * Every reply line the server writes must be "NNN-" or "NNN " with a
 * 2xx-5xx code and end in CRLF. With OOBD_FUZZ_VERBOSE set in the
 * environment, the replies and the operational log go to stderr.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <dirent.h>

#include "conf.h"
#include "fuzz_common.h"
#include "log.h"
#include "logfile.h"
#include "pool.h"
#include "server.h"
#include "smtp_session.h"
#include "util.h"

#ifndef OOBD_SOURCE_CONFDIR
#error "OOBD_SOURCE_CONFDIR must name the source tree's conf directory"
#endif

static struct server srv;
static struct listener lis;
static struct event *keepalive;

static void
keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}
static unsigned long iterations;

/* The reply checker: state carried across reads. */
struct replies {
	char	 line[8];	/* the first bytes of the current line */
	size_t	 len;		/* bytes of the current line seen */
	bool	 cr;		/* the previous byte was CR */
};

static bool verbose;	/* OOBD_FUZZ_VERBOSE: show the replies */

static void
reply_bytes(struct replies *r, const char *p, size_t n)
{
	if (verbose)
		fwrite(p, 1, n, stderr);
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (r->len < sizeof(r->line))
			r->line[r->len] = c;
		r->len++;
		if (c == '\n') {
			/* A reply line: 3 digits, '-' or ' ', text, CRLF. */
			if (!r->cr || r->len < 6 || r->line[0] < '2' ||
			    r->line[0] > '5' || r->line[1] < '0' ||
			    r->line[1] > '9' || r->line[2] < '0' ||
			    r->line[2] > '9' ||
			    (r->line[3] != ' ' && r->line[3] != '-')) {
				fprintf(stderr, "bad reply line: %.*s\n",
				    (int)(r->len < sizeof(r->line) ? r->len :
				    sizeof(r->line)), r->line);
				abort();
			}
			r->len = 0;
		}
		r->cr = c == '\r';
	}
}

/*
 * The server, from a configuration file as the daemon loads it. It binds
 * nothing: the listen list is emptied before server_init, and the admin
 * endpoint is off.
 */
static void
setup(void)
{
	struct errors errs = { 0 };
	const char *dir = fuzz_tmpdir();
	/* Nothing relays: relaying would start deliveries to a next hop. */
	static const char domains[] =
	    "[\"bounce.example.com\"]\n"
	    "log_oob = \"LogThenDrop\"\n"
	    "log_arf = \"LogThenDrop\"\n"
	    "[\"fbl.example.com\"]\n"
	    "log_arf = \"LogThenDrop\"\n"
	    "log_oob = \"Ignore\"\n"
	    "[\"*.wild.example\"]\n"
	    "log_oob = \"LogThenDrop\"\n";
	char *dpath = fuzz_write_file("listener_domains.toml", domains,
	    sizeof(domains) - 1);
	/* No timer may fire while a case runs: they depend on the clock. */
	char *conf = xasprintf(
	    "[listener]\n"
	    "listen = [\"127.0.0.1:0\"]\n"
	    "hostname = \"mx.fuzz.example\"\n"
	    "state_dir = \"%s/state\"\n"
	    "idle_timeout = \"1 hour\"\n"
	    "data_timeout = \"1 hour\"\n"
	    "max_errors = 20\n"
	    "workers = 1\n"
	    "listener_domains = [\"%s\"]\n"
	    "[logs]\n"
	    "log_dir = \"%s/log\"\n"
	    "compression = \"zstd\"\n"
	    "fsync = false\n"
	    "meta = [\"received_from\", \"ehlo_domain\"]\n"
	    "headers = [\"Subject\", \"X-*\"]\n"
	    "[bounce_classifier]\n"
	    "files = [\"%s/bounce_rules.toml\"]\n"
	    "[relay]\n"
	    "spool_dir = \"%s/spool\"\n"
	    "[admin]\n"
	    "listen = \"\"\n",
	    dir, dpath, dir, OOBD_SOURCE_CONFDIR, dir);
	char *cpath = fuzz_write_file("oobd.toml", conf, strlen(conf));
	struct config *cfg = config_load(cpath, &errs);

	verbose = getenv("OOBD_FUZZ_VERBOSE") != NULL;
	log_set_level(verbose ? LOG_INFO : LOG_ERR);
	if (cfg != NULL) {
		for (size_t i = 0; i < cfg->listen.n; i++)
			free(cfg->listen.v[i]);
		cfg->listen.n = 0;
	}
	if (cfg == NULL || server_init(&srv, cfg, false, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		abort();
	}
	free(conf);
	free(cpath);
	free(dpath);
	/*
	 * The daemon's loop always has its listeners and timers; here a
	 * timer stands in for them, so that while a job runs and the session
	 * waits for it, the loop blocks until the job is done instead of
	 * returning at once for want of events.
	 */
	static struct timeval tick = { 0, 100000 };
	keepalive = event_new(srv.base, -1, EV_PERSIST, keepalive_cb, NULL);
	if (keepalive == NULL || evtimer_add(keepalive, &tick) != 0)
		abort();
	lis.srv = &srv;
	lis.name = xstrdup("127.0.0.1:25");
	signal(SIGPIPE, SIG_IGN);
}

/* Read and check everything the server has written so far. */
static size_t
drain(int fd, struct replies *r, bool *eof)
{
	char b[4096];
	size_t total = 0;

	for (;;) {
		ssize_t n = read(fd, b, sizeof(b));

		if (n > 0) {
			reply_bytes(r, b, (size_t)n);
			total += (size_t)n;
			continue;
		}
		if (n == 0)
			*eof = true;
		else if (errno == EINTR)
			continue;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			*eof = true;
		return total;
	}
}

static size_t
unread(int fd)
{
	int n = 0;

	if (srv.sessions == NULL || ioctl(fd, FIONREAD, &n) != 0)
		return 0;
	return (size_t)n;
}

/*
 * Run the loop until nothing moves: no job in the pool, no active event,
 * no reply bytes and no input consumed in a whole pass.
 */
static void
settle(int cfd, int sfd, struct replies *r, bool *eof)
{
	size_t before = 0, after = 0, got = 0;
	int active = 0;

	for (int i = 0; i < 100000; i++) {
		if (pool_pending(srv.pool) > 0) {
			event_base_loop(srv.base, EVLOOP_ONCE);
			drain(cfd, r, eof);
			continue;
		}
		before = unread(sfd);
		event_base_loop(srv.base, EVLOOP_NONBLOCK);
		got = drain(cfd, r, eof);
		after = unread(sfd);
		active = event_base_get_num_events(srv.base,
		    EVENT_BASE_COUNT_ACTIVE);
		if (got == 0 && after == before && active == 0 &&
		    pool_pending(srv.pool) == 0)
			return;
	}
	fprintf(stderr, "the session never settled: replies %zu, unread "
	    "%zu -> %zu, active events %d, jobs %zu, session %s\n", got,
	    before, after, active, pool_pending(srv.pool),
	    srv.sessions != NULL ? "open" : "gone");
	abort();
}

/* Write p[0..n) as far as the socket takes it, settling in between. */
static void
send_all(int cfd, int sfd, const uint8_t *p, size_t n, struct replies *r,
    bool *eof)
{
	while (n > 0 && srv.sessions != NULL && !*eof) {
		ssize_t w = write(cfd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			settle(cfd, sfd, r, eof);
			continue;
		}
		if (w <= 0)
			return;		/* the server closed its end */
		p += w;
		n -= (size_t)w;
	}
	settle(cfd, sfd, r, eof);
}

/* Drop the finished log segments now and then, so the disk stays free. */
static void
trim_logs(void)
{
	char *dir = xasprintf("%s/log", fuzz_tmpdir());
	DIR *d;
	struct dirent *de;

	logfile_rotate(srv.log);
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char *p = xasprintf("%s/%s", dir, de->d_name);
			unlink(p);
			free(p);
		}
		closedir(d);
	}
	free(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct replies r = { 0 };
	struct sockaddr_in peer = { .sin_family = AF_INET,
	    .sin_port = htons(40025) };
	int sv[2];
	bool eof = false;
	unsigned mode;

	if (srv.base == NULL)
		setup();
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	srv.cfg->invalid_line_endings = (mode & 3) == 1 ? LINE_ENDINGS_FIX :
	    (mode & 3) == 2 ? LINE_ENDINGS_ALLOW : LINE_ENDINGS_DENY;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
	    evutil_make_socket_nonblocking(sv[0]) != 0 ||
	    evutil_make_socket_nonblocking(sv[1]) != 0)
		abort();
	inet_pton(AF_INET, "192.0.2.25", &peer.sin_addr);
	smtp_session_start(&srv, &lis, sv[1], (struct sockaddr *)&peer,
	    sizeof(peer));

	if (mode & 4)
		send_all(sv[0], sv[1], data, size, &r, &eof);
	else {
		settle(sv[0], sv[1], &r, &eof);		/* the greeting */
		size_t chunk = (size_t)(mode >> 4) + 1;
		while (size > 0 && srv.sessions != NULL && !eof) {
			size_t n;
			if (mode & 8)
				n = chunk < size ? chunk : size;
			else {
				const uint8_t *nl = memchr(data, '\n', size);
				n = nl != NULL ? (size_t)(nl - data) + 1 : size;
			}
			send_all(sv[0], sv[1], data, n, &r, &eof);
			data += n;
			size -= n;
		}
	}

	/* The client is done: half-close, and the session must end. */
	shutdown(sv[0], SHUT_WR);
	settle(sv[0], sv[1], &r, &eof);
	if (srv.sessions != NULL) {
		close(sv[0]);
		sv[0] = -1;
		for (int i = 0; i < 1000 && srv.sessions != NULL; i++)
			event_base_loop(srv.base, EVLOOP_NONBLOCK);
		if (srv.sessions != NULL) {
			fprintf(stderr, "the session outlived its client\n");
			abort();
		}
	}
	if (sv[0] >= 0)
		close(sv[0]);
	if (srv.nsessions != 0 || srv.nips != 0)
		abort();	/* connection accounting leaked */
	if (++iterations % 1024 == 0)
		trim_logs();
	return 0;
}
