/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.h - oobd's counters and the admin HTTP listener that exposes them:
 * GET /metrics (Prometheus text format 0.0.4) and GET
 * /api/check-liveness/v1 (KumoMTA's path; 503 while the log is unhealthy).
 *
 * The counters are process-wide and thread-safe: any thread (event loop,
 * workers) may update them at any time, without locks for the plain
 * counters (C11 atomics) and with a short lock only when a labelled series
 * is seen for the first time.
 */
#ifndef OOBD_ADMIN_H
#define OOBD_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

struct event_base;
struct logfile;
struct admin;

/* ---- counters ---- */

enum metric_message {
	MSG_ACCEPTED,		/* 250 after DATA */
	MSG_REJECTED,		/* 5xx after DATA */
	MSG_TEMPFAILED,		/* 4xx after DATA (the log could not be written) */
	MSG_NRESULTS,
};

void	 metrics_connection_open(void);
void	 metrics_connection_close(void);
/* A connection refused at accept (connection limits). */
void	 metrics_connection_refused(void);
void	 metrics_message(enum metric_message result);
/* Records that reached the log, by type. */
void	 metrics_record(enum record_type type);
/* The same, n records at once. */
void	 metrics_records_add(enum record_type type, uint64_t n);
/* The classification of a bounce (OOB) record; NULL is "Uncategorized". */
void	 metrics_bounce_classification(const char *label);
void	 metrics_bounce_classification_add(const char *label, uint64_t n);
/* OOB records left out by [logs] max_records_per_message. */
void	 metrics_records_capped(uint64_t n);
/* A 4xx/5xx reply, counted by its codes; enhanced may be NULL. */
void	 metrics_rejection(int code, const char *enhanced);
/* A message to a report-logging domain that no decoder recognised. */
void	 metrics_parse_failure(void);
/* One fdatasync of a log segment, in seconds. */
void	 metrics_log_sync(double seconds);
/* The relay queue: messages spooled and not yet delivered or expired. */
void	 metrics_relay_queue_add(int64_t delta);
void	 metrics_relay_queue_set(int64_t depth);
/* A SIGHUP reload, successful or not. */
void	 metrics_reload(bool ok);

/* A Feedback record written, by its feedback_type ("abuse", ...). */
void	 metrics_feedback_type(const char *type);
/* A finished log segment of that many bytes removed by [logs] retention. */
void	 metrics_segment_removed(uint64_t bytes);

/*
 * The whole exposition, as /metrics serves it: every series above, and
 * the log's own counters and health when lf is not NULL. Returns a
 * malloc'ed string.
 */
char	*metrics_render(struct logfile *lf);

/* ---- the HTTP listener ---- */

/*
 * Serve HTTP on fd, a listening TCP socket (taken over: closed by
 * admin_stop), from base. The log, for the liveness check and its
 * counters, is read through *lf when a request comes, so it may be set
 * later. NULL with *err on failure.
 */
struct admin *admin_start(struct event_base *base, int fd,
	    struct logfile *const *lf, char **err);
/*
 * The relay whose queue /api/queue/v1 lists and changes (`oobd queue`),
 * read through *relay at each request; until this is called, or while it
 * is NULL, the queue is empty and commands find nothing.
 */
struct relay;
void	 admin_set_relay(struct admin *a, struct relay *const *relay);
void	 admin_stop(struct admin *a);

#endif
