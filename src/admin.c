/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.c - process-wide counters, their Prometheus exposition, and the
 * admin HTTP listener (libevent evhttp) that serves it with the liveness
 * check.
 *
 * Plain counters are C11 atomics, updated from any thread. A labelled
 * family (classifications, rejection codes) is a fixed array of series:
 * a series is published once (label text first, then the count of series
 * with release order) and never moves, so an increment scans without a
 * lock and takes the family's mutex only to add a series it did not find.
 * Past MAX_SERIES distinct labels, the rest are counted under "other".
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "logfile.h"
#include "relay.h"
#include "util.h"

#define MAX_SERIES	128
#define MAX_TYPES	32

struct series {
	char		*labels;	/* 'name="value",...' escaped */
	atomic_uint_least64_t value;
};

struct family {
	pthread_mutex_t	 mu;
	atomic_size_t	 n;
	struct series	 v[MAX_SERIES];
};

/* Upper bounds of the log sync histogram, seconds. */
static const double sync_bounds[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NBOUNDS	(sizeof(sync_bounds) / sizeof(sync_bounds[0]))

static struct {
	atomic_uint_least64_t connections;
	atomic_uint_least64_t refused;
	atomic_int_least64_t  sessions;
	atomic_uint_least64_t messages[MSG_NRESULTS];
	atomic_uint_least64_t records[MAX_TYPES];
	atomic_uint_least64_t parse_failures;
	atomic_uint_least64_t records_capped;
	atomic_uint_least64_t sync_buckets[NBOUNDS + 1];	/* last: +Inf */
	atomic_uint_least64_t sync_count;
	atomic_uint_least64_t sync_sum_ns;
	atomic_int_least64_t  relay_queue;
	atomic_uint_least64_t reloads_ok;
	atomic_uint_least64_t reloads_failed;
	struct family	 classifications;
	struct family	 rejections;
} m = {
	.classifications = { .mu = PTHREAD_MUTEX_INITIALIZER },
	.rejections = { .mu = PTHREAD_MUTEX_INITIALIZER },
};

static time_t start_time;

static void __attribute__((constructor))
metrics_init(void)
{
	start_time = time(NULL);
}

/* Append v to b as a Prometheus label value (\\, \" and \n escaped). */
static void
label_value(struct buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(b, '\\');
		if (*v == '\n') {
			buf_puts(b, "\\n");
			continue;
		}
		buf_putc(b, *v);
	}
}

static void
family_add(struct family *f, const char *labels, const char *other,
    uint64_t by)
{
	size_t n = atomic_load_explicit(&f->n, memory_order_acquire);

	for (size_t i = 0; i < n; i++)
		if (strcmp(f->v[i].labels, labels) == 0) {
			atomic_fetch_add_explicit(&f->v[i].value, by,
			    memory_order_relaxed);
			return;
		}
	pthread_mutex_lock(&f->mu);
	n = atomic_load_explicit(&f->n, memory_order_relaxed);
	size_t i;
	for (i = 0; i < n; i++)
		if (strcmp(f->v[i].labels, labels) == 0)
			break;
	/* The last slot is kept for everything past the limit. */
	if (i == n && n >= MAX_SERIES - 1)
		for (i = 0; i < n && strcmp(f->v[i].labels, other) != 0; i++)
			;
	if (i == n) {
		f->v[n].labels = xstrdup(n < MAX_SERIES - 1 ? labels : other);
		atomic_store_explicit(&f->v[n].value, 0, memory_order_relaxed);
		atomic_store_explicit(&f->n, n + 1, memory_order_release);
	}
	atomic_fetch_add_explicit(&f->v[i].value, by, memory_order_relaxed);
	pthread_mutex_unlock(&f->mu);
}

static void
family_inc(struct family *f, const char *labels, const char *other)
{
	family_add(f, labels, other, 1);
}

void
metrics_connection_open(void)
{
	atomic_fetch_add(&m.connections, 1);
	atomic_fetch_add(&m.sessions, 1);
}

void
metrics_connection_close(void)
{
	atomic_fetch_sub(&m.sessions, 1);
}

void
metrics_connection_refused(void)
{
	atomic_fetch_add(&m.refused, 1);
}

void
metrics_message(enum metric_message result)
{
	if ((size_t)result < MSG_NRESULTS)
		atomic_fetch_add(&m.messages[result], 1);
}

void
metrics_record(enum record_type type)
{
	metrics_records_add(type, 1);
}

void
metrics_records_add(enum record_type type, uint64_t n)
{
	if ((size_t)type < MAX_TYPES && n > 0)
		atomic_fetch_add(&m.records[type], n);
}

void
metrics_bounce_classification(const char *label)
{
	metrics_bounce_classification_add(label, 1);
}

void
metrics_bounce_classification_add(const char *label, uint64_t n)
{
	struct buf b = { 0 };

	if (n == 0)
		return;
	buf_puts(&b, "classification=\"");
	label_value(&b, label != NULL ? label : "Uncategorized");
	buf_putc(&b, '"');
	family_add(&m.classifications, b.data, "classification=\"other\"", n);
	buf_free(&b);
}

void
metrics_records_capped(uint64_t n)
{
	atomic_fetch_add(&m.records_capped, n);
}

void
metrics_rejection(int code, const char *enhanced)
{
	struct buf b = { 0 };

	buf_printf(&b, "code=\"%d\",enhanced_code=\"", code);
	label_value(&b, enhanced != NULL ? enhanced : "");
	buf_putc(&b, '"');
	family_inc(&m.rejections, b.data,
	    "code=\"other\",enhanced_code=\"other\"");
	buf_free(&b);
}

void
metrics_parse_failure(void)
{
	atomic_fetch_add(&m.parse_failures, 1);
}

void
metrics_log_sync(double seconds)
{
	size_t i;

	for (i = 0; i < NBOUNDS && seconds > sync_bounds[i]; i++)
		;
	atomic_fetch_add(&m.sync_buckets[i], 1);
	atomic_fetch_add(&m.sync_sum_ns, (uint_least64_t)(seconds * 1e9));
	atomic_fetch_add(&m.sync_count, 1);
}

void
metrics_relay_queue_add(int64_t delta)
{
	atomic_fetch_add(&m.relay_queue, delta);
}

void
metrics_relay_queue_set(int64_t depth)
{
	atomic_store(&m.relay_queue, depth);
}

void
metrics_reload(bool ok)
{
	atomic_fetch_add(ok ? &m.reloads_ok : &m.reloads_failed, 1);
}

/* ---- operators' series: feedback types, retention ---- */

static struct {
	struct family	 feedback;
	atomic_uint_least64_t segments_removed;
	atomic_uint_least64_t segment_bytes_removed;
} ops = {
	.feedback = { .mu = PTHREAD_MUTEX_INITIALIZER },
};

void
metrics_feedback_type(const char *type)
{
	struct buf b = { 0 };

	buf_puts(&b, "feedback_type=\"");
	label_value(&b, type != NULL && *type != '\0' ? type : "unknown");
	buf_putc(&b, '"');
	family_inc(&ops.feedback, b.data, "feedback_type=\"other\"");
	buf_free(&b);
}

void
metrics_segment_removed(uint64_t bytes)
{
	atomic_fetch_add(&ops.segments_removed, 1);
	atomic_fetch_add(&ops.segment_bytes_removed, bytes);
}

/* ---- exposition ---- */

static void
header(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
family_render(struct buf *b, struct family *f, const char *name)
{
	size_t n = atomic_load_explicit(&f->n, memory_order_acquire);

	for (size_t i = 0; i < n; i++)
		buf_printf(b, "%s{%s} %llu\n", name, f->v[i].labels,
		    (unsigned long long)atomic_load(&f->v[i].value));
}

static unsigned long long
load(atomic_uint_least64_t *v)
{
	return (unsigned long long)atomic_load(v);
}

static void render_ops(struct buf *b);
static void render_process(struct buf *b);

char *
metrics_render(struct logfile *lf)
{
	static const char *const results[MSG_NRESULTS] = {
		[MSG_ACCEPTED] = "accepted", [MSG_REJECTED] = "rejected",
		[MSG_TEMPFAILED] = "tempfailed",
	};
	static const enum record_type shown[] = {
		REC_RECEPTION, REC_OOB, REC_FEEDBACK, REC_REJECTION,
		REC_DELIVERY, REC_TRANSIENT_FAILURE, REC_BOUNCE, REC_EXPIRATION,
	};
	struct buf b = { 0 };

	header(&b, "oobd_build_info", "gauge", "The running oobd's version.");
	buf_printf(&b, "oobd_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	header(&b, "oobd_start_time_seconds", "gauge",
	    "Start time of the process, seconds since the epoch.");
	buf_printf(&b, "oobd_start_time_seconds %lld\n", (long long)start_time);

	header(&b, "oobd_connections_total", "counter",
	    "SMTP connections accepted.");
	buf_printf(&b, "oobd_connections_total %llu\n", load(&m.connections));
	header(&b, "oobd_connections_refused_total", "counter",
	    "SMTP connections refused by a connection limit (421 4.7.0).");
	buf_printf(&b, "oobd_connections_refused_total %llu\n",
	    load(&m.refused));
	header(&b, "oobd_sessions", "gauge", "SMTP sessions open now.");
	buf_printf(&b, "oobd_sessions %lld\n",
	    (long long)atomic_load(&m.sessions));

	header(&b, "oobd_messages_total", "counter",
	    "Messages received (end of DATA), by the reply they got.");
	for (size_t i = 0; i < MSG_NRESULTS; i++)
		buf_printf(&b, "oobd_messages_total{result=\"%s\"} %llu\n",
		    results[i], load(&m.messages[i]));

	header(&b, "oobd_records_total", "counter",
	    "Log records written, by record type.");
	for (size_t i = 0; i < nitems(shown); i++)
		buf_printf(&b, "oobd_records_total{type=\"%s\"} %llu\n",
		    record_type_name(shown[i]), load(&m.records[shown[i]]));

	header(&b, "oobd_records_capped_total", "counter",
	    "OOB records left out because a message reached "
	    "max_records_per_message.");
	buf_printf(&b, "oobd_records_capped_total %llu\n",
	    load(&m.records_capped));

	header(&b, "oobd_bounce_classifications_total", "counter",
	    "Bounce (OOB) records by bounce classification.");
	family_render(&b, &m.classifications,
	    "oobd_bounce_classifications_total");

	header(&b, "oobd_rejections_total", "counter",
	    "4xx and 5xx SMTP replies (Rejection records), by code.");
	family_render(&b, &m.rejections, "oobd_rejections_total");

	header(&b, "oobd_parse_failures_total", "counter",
	    "Messages to a report-logging domain that no decoder recognised.");
	buf_printf(&b, "oobd_parse_failures_total %llu\n",
	    load(&m.parse_failures));

	header(&b, "oobd_log_sync_seconds", "histogram",
	    "Time taken by each fdatasync of a log segment.");
	unsigned long long cum = 0;
	for (size_t i = 0; i < NBOUNDS; i++) {
		cum += load(&m.sync_buckets[i]);
		buf_printf(&b, "oobd_log_sync_seconds_bucket{le=\"%g\"} %llu\n",
		    sync_bounds[i], cum);
	}
	cum += load(&m.sync_buckets[NBOUNDS]);
	buf_printf(&b, "oobd_log_sync_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	buf_printf(&b, "oobd_log_sync_seconds_sum %.9f\n",
	    (double)load(&m.sync_sum_ns) / 1e9);
	buf_printf(&b, "oobd_log_sync_seconds_count %llu\n", load(&m.sync_count));

	header(&b, "oobd_relay_queue_depth", "gauge",
	    "Messages in the relay spool, not yet delivered or expired.");
	buf_printf(&b, "oobd_relay_queue_depth %lld\n",
	    (long long)atomic_load(&m.relay_queue));

	header(&b, "oobd_reloads_total", "counter",
	    "Configuration reloads (SIGHUP), by outcome.");
	buf_printf(&b, "oobd_reloads_total{result=\"ok\"} %llu\n",
	    load(&m.reloads_ok));
	buf_printf(&b, "oobd_reloads_total{result=\"failed\"} %llu\n",
	    load(&m.reloads_failed));

	if (lf != NULL) {
		struct logfile_stats st;
		logfile_stats(lf, &st);
		header(&b, "oobd_log_healthy", "gauge",
		    "1 while the last log write and sync succeeded, else 0.");
		buf_printf(&b, "oobd_log_healthy %d\n", logfile_healthy(lf));
		header(&b, "oobd_log_commits_total", "counter",
		    "Groups of records written to the log together.");
		buf_printf(&b, "oobd_log_commits_total %llu\n",
		    (unsigned long long)st.commits);
		header(&b, "oobd_log_syncs_total", "counter",
		    "fdatasync calls on log segments.");
		buf_printf(&b, "oobd_log_syncs_total %llu\n",
		    (unsigned long long)st.syncs);
		header(&b, "oobd_log_bytes_total", "counter",
		    "Uncompressed bytes of records written to the log.");
		buf_printf(&b, "oobd_log_bytes_total %llu\n",
		    (unsigned long long)st.bytes);
		header(&b, "oobd_log_failures_total", "counter",
		    "Log commits that failed (write or sync error).");
		buf_printf(&b, "oobd_log_failures_total %llu\n",
		    (unsigned long long)st.failures);
	}
	render_ops(&b);
	render_process(&b);
	return buf_steal(&b);
}

static void
render_ops(struct buf *b)
{
	header(b, "oobd_feedback_reports_total", "counter",
	    "Feedback (ARF) records by feedback type.");
	family_render(b, &ops.feedback, "oobd_feedback_reports_total");
	header(b, "oobd_log_segments_removed_total", "counter",
	    "Finished log segments removed by [logs] retention.");
	buf_printf(b, "oobd_log_segments_removed_total %llu\n",
	    load(&ops.segments_removed));
	header(b, "oobd_log_segments_removed_bytes_total", "counter",
	    "Bytes of the log segments removed by [logs] retention.");
	buf_printf(b, "oobd_log_segments_removed_bytes_total %llu\n",
	    load(&ops.segment_bytes_removed));
}

/*
 * The process_* series every Prometheus client library exports, from
 * /proc/self as client_golang's process collector reads them: CPU time
 * and memory from stat, descriptors from fd/ and the soft RLIMIT_NOFILE,
 * the start time from stat's starttime (clock ticks after boot) and
 * /proc/stat's btime. A series whose source cannot be read is left out.
 */
static void
render_process(struct buf *b)
{
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long utime, stime, start, vsize;
	long long rss;
	size_t len;
	char *stat = read_file("/proc/self/stat", &len);
	char *p = stat != NULL ? strrchr(stat, ')') : NULL;

	/* After "pid (comm)": state is field 3, utime 14 ... rss 24. */
	if (p != NULL && tck > 0 && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u "
	    "%*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
	    &utime, &stime, &start, &vsize, &rss) == 5) {
		header(b, "process_cpu_seconds_total", "counter",
		    "Total user and system CPU time spent in seconds.");
		buf_printf(b, "process_cpu_seconds_total %.2f\n",
		    (double)(utime + stime) / (double)tck);
		header(b, "process_resident_memory_bytes", "gauge",
		    "Resident memory size in bytes.");
		buf_printf(b, "process_resident_memory_bytes %lld\n",
		    rss * (long long)page);
		header(b, "process_virtual_memory_bytes", "gauge",
		    "Virtual memory size in bytes.");
		buf_printf(b, "process_virtual_memory_bytes %llu\n", vsize);
		char *ps = read_file("/proc/stat", &len);
		const char *bt = ps != NULL ? strstr(ps, "\nbtime ") : NULL;
		unsigned long long btime;
		if (bt != NULL && sscanf(bt, "\nbtime %llu", &btime) == 1) {
			header(b, "process_start_time_seconds", "gauge",
			    "Start time of the process since unix epoch in "
			    "seconds.");
			buf_printf(b, "process_start_time_seconds %.2f\n",
			    (double)btime + (double)start / (double)tck);
		}
		free(ps);
	}
	free(stat);

	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		struct dirent *de;
		long n = 0;
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d))
				n++;
		closedir(d);
		header(b, "process_open_fds", "gauge",
		    "Number of open file descriptors.");
		buf_printf(b, "process_open_fds %ld\n", n);
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		header(b, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.");
		if (rl.rlim_cur == RLIM_INFINITY)
			buf_puts(b, "process_max_fds +Inf\n");
		else
			buf_printf(b, "process_max_fds %llu\n",
			    (unsigned long long)rl.rlim_cur);
	}
}

/* ---- HTTP ---- */

struct admin {
	struct evhttp	*http;
	struct logfile *const *lf;
	struct relay *const *relay;	/* NULL until admin_set_relay */
};

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *type, const char *body)
{
	struct evbuffer *out = evbuffer_new();

	if (out == NULL)
		fatalx("admin: evbuffer_new failed");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evbuffer_add(out, body, strlen(body));
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

/* ---- the relay queue: `oobd queue` ---- */

/*
 * Who may use the queue endpoints. The admin listener has no accounts, so
 * the queue is for local callers, checked three ways: the peer is a
 * loopback address (whatever [admin] listen binds, a remote host cannot
 * list or change the queue); the Host header, when sent, names a loopback
 * address or localhost (a web page that rebinds its own name to 127.0.0.1
 * sends its name); and a command (POST) carries "X-Oobd-Request: queue",
 * which a browser sends cross-origin only after a preflight that the
 * listener refuses (OPTIONS is not allowed), so a page cannot forge one.
 * Every local user who can connect to the port may use it, as every local
 * user may run postqueue; oobd(8) says so.
 */
static bool
loopback_peer(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	const struct sockaddr *sa = c != NULL ? evhttp_connection_get_addr(c) :
	    NULL;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
		    >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) &&
		    a6->s6_addr[12] == 127);
	}
	return false;
}

static bool
loopback_host(struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Host");
	char host[64];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n;

	if (h == NULL)
		return true;		/* HTTP/1.0 clients need not send one */
	if (h[0] == '[') {
		const char *end = strchr(h, ']');
		n = end != NULL ? (size_t)(end - h - 1) : sizeof(host);
		if (n >= sizeof(host))
			return false;
		memcpy(host, h + 1, n);
		host[n] = '\0';
		return inet_pton(AF_INET6, host, &a6) == 1 &&
		    IN6_IS_ADDR_LOOPBACK(&a6);
	}
	n = strcspn(h, ":");
	if (n >= sizeof(host))
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127;
}

static void
reply_json(struct evhttp_request *req, int code, const char *reason,
    json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	char *line = xasprintf("%s\n", text != NULL ? text : "{}");

	reply_text(req, code, reason, "application/json", line);
	free(line);
	free(text);
	json_decref(body);
}

static void
queue_error(struct evhttp_request *req, int code, const char *reason,
    const char *why)
{
	reply_json(req, code, reason, json_pack("{s:s}", "error", why));
}

/*
 * GET /api/queue/v1: the list. POST /api/queue/v1/flush, POST
 * /api/queue/v1/delete?id=ID (or id=ALL). sub is what follows the prefix.
 */
static void
queue_request(struct admin *a, struct evhttp_request *req, const char *sub)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct relay *r = a->relay != NULL ? *a->relay : NULL;

	if (!loopback_peer(req) || !loopback_host(req)) {
		queue_error(req, 403, "Forbidden", "the queue is for local "
		    "callers only");
		return;
	}
	if (*sub == '\0') {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			queue_error(req, 405, "Method Not Allowed", "use GET");
			return;
		}
		reply_json(req, 200, "OK", json_pack("{s:o}", "messages",
		    relay_queue_list(r)));
		return;
	}
	if (strcmp(sub, "/flush") != 0 && strcmp(sub, "/delete") != 0) {
		queue_error(req, 404, "Not Found", "not found");
		return;
	}
	if (cmd != EVHTTP_REQ_POST) {
		queue_error(req, 405, "Method Not Allowed", "use POST");
		return;
	}
	const char *tag = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "X-Oobd-Request");
	if (tag == NULL || strcmp(tag, "queue") != 0) {
		queue_error(req, 403, "Forbidden",
		    "a command needs the header X-Oobd-Request: queue");
		return;
	}
	if (strcmp(sub, "/flush") == 0) {
		size_t n = relay_queue_flush(r);
		reply_json(req, 200, "OK", json_pack("{s:I}", "flushed",
		    (json_int_t)n));
		return;
	}
	struct evkeyvalq q;
	const char *query = evhttp_uri_get_query(
	    evhttp_request_get_evhttp_uri(req));
	const char *id;
	if (query == NULL || evhttp_parse_query_str(query, &q) != 0) {
		queue_error(req, 400, "Bad Request", "delete needs id=ID or "
		    "id=ALL");
		return;
	}
	id = evhttp_find_header(&q, "id");
	if (id == NULL || id[0] == '\0') {
		evhttp_clear_headers(&q);
		queue_error(req, 400, "Bad Request", "delete needs id=ID or "
		    "id=ALL");
		return;
	}
	size_t busy;
	bool found;
	size_t n = relay_queue_delete(r, strcmp(id, "ALL") == 0 ? NULL : id,
	    &busy, &found);
	if (strcmp(id, "ALL") != 0 && !found)
		queue_error(req, 404, "Not Found", "no such message");
	else if (strcmp(id, "ALL") != 0 && busy > 0)
		queue_error(req, 409, "Conflict", "the message is being "
		    "delivered or its record written: try again");
	else
		reply_json(req, 200, "OK", json_pack("{s:I,s:I}", "deleted",
		    (json_int_t)n, "busy", (json_int_t)busy));
	evhttp_clear_headers(&q);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct logfile *lf = *a->lf;

	if (path == NULL) {
		reply_text(req, 400, "Bad Request", "text/plain", "bad request\n");
		return;
	}
	/* POST is for the queue's commands only. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_POST &&
	    strncmp(path, "/api/queue/v1/", 14) != 0) {
		reply_text(req, 405, "Method Not Allowed", "text/plain",
		    "method not allowed\n");
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		char *body = metrics_render(lf);
		reply_text(req, 200, "OK",
		    "text/plain; version=0.0.4; charset=utf-8", body);
		free(body);
	} else if (strcmp(path, "/api/check-liveness/v1") == 0) {
		char why[512], *body;

		if (lf == NULL || !logfile_healthy(lf))
			reply_text(req, 503, "Service Unavailable", "text/plain",
			    "log unhealthy: records cannot be written\n");
		else if (!logfile_storage_ok(lf, why, sizeof(why))) {
			/* As KumoMTA: new messages cannot be received. */
			body = xasprintf("storage low: new messages are refused: "
			    "%s\n", why);
			reply_text(req, 503, "Service Unavailable", "text/plain",
			    body);
			free(body);
		} else
			reply_text(req, 200, "OK", "text/plain", "OK\n");
	} else if (strncmp(path, "/api/queue/v1", 13) == 0 &&
	    (path[13] == '\0' || path[13] == '/'))
		queue_request(a, req, path + 13);
	else
		reply_text(req, 404, "Not Found", "text/plain", "not found\n");
}

struct admin *
admin_start(struct event_base *base, int fd, struct logfile *const *lf,
    char **err)
{
	struct admin *a = xcalloc(1, sizeof(*a));

	*err = NULL;
	a->lf = lf;
	a->http = evhttp_new(base);
	if (a->http == NULL ||
	    evhttp_accept_socket_with_handle(a->http, fd) == NULL) {
		*err = xstrdup("cannot serve HTTP on the admin socket");
		if (a->http != NULL)
			evhttp_free(a->http);
		free(a);
		return NULL;
	}
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST);
	evhttp_set_timeout(a->http, 30);
	evhttp_set_max_headers_size(a->http, 16384);
	evhttp_set_max_body_size(a->http, 0);
	evhttp_set_gencb(a->http, request_cb, a);
	return a;
}

void
admin_set_relay(struct admin *a, struct relay *const *relay)
{
	if (a != NULL)
		a->relay = relay;
}

void
admin_stop(struct admin *a)
{
	if (a == NULL)
		return;
	evhttp_free(a->http);
	free(a);
}
