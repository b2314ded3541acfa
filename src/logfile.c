/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logfile.c - segments of JSON lines, rotation, group commit and repair.
 *
 * A segment is one file named for its UTC open time (KumoMTA's
 * "%Y%m%d-%H%M%S%.f"), written through a sink (sink_zstd.c or
 * sink_plain.c), closed at max_file_size uncompressed bytes or after
 * max_segment_duration, then made read-only: the "complete" signal tailers
 * wait for.
 *
 * Locking. One mutex (lf->mu) guards everything here. Records are written
 * under it, so the lines of one commit are contiguous and the single zstd
 * stream has one writer; fdatasync runs outside it. Every segment counts
 * its commits (written) and the highest one known to be on stable storage
 * (synced). Group commit is leader/follower per segment: a committer whose
 * commit is not yet synced either becomes the leader, when no sync is in
 * flight - it syncs everything written up to the moment it starts, which
 * covers every follower that wrote before it - or waits on lf->cv. A sync
 * that was already in flight when a commit was written is never taken to
 * cover it: that committer waits for it to end and then leads (or joins)
 * the next one. Only one sync runs per descriptor at a time because Linux
 * reports a write-back error once per open file, and two concurrent syncs
 * could each miss part of it.
 *
 * Asynchronous commits (logfile_commit_async) do not wait: they leave a
 * waiter on lf->waiters, and the log's sync thread leads the syncs for
 * them - one after another while commits keep arriving, each covering
 * everything written before it started - and calls each waiter back once
 * its commit is on stable storage or lost. No thread sleeps per commit.
 *
 * Failures. A failed write or sync marks the segment bad: every commit in
 * it that was not yet synced fails (the log never retries a failed sync and
 * calls it success, "fsyncgate"), the log turns unhealthy, and the next
 * commit opens a fresh segment. When the last user lets go of the bad
 * segment it is repaired in place (complete records kept, torn tail
 * dropped, frame finished, read-only); logfile_open repairs the same way
 * any writable segment a crash left behind.
 *
 * Lifetime. A segment is reference counted: lf->cur holds one reference,
 * every committer waiting on it another, so a leader can sync a descriptor
 * that rotation has already detached; the descriptor is closed with the
 * last reference.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "admin.h"
#include "log.h"
#include "logfile.h"
#include "pool.h"
#include "sink.h"
#include "util.h"

/* Longest line a repair keeps; a longer one cannot be a record of ours. */
#define REPAIR_MAX_LINE	(64u << 20)
#define REPAIR_SUFFIX	".repair"
/* Seconds between attempts at a repair that failed (a full disk). */
#define REPAIR_RETRY	5

/* A file system whose free space gates new messages. */
struct watch {
	char		*what;		/* "log_dir", "spool_dir" */
	char		*dir;
	struct min_free	 space;
	struct min_free	 inodes;
};

struct segment {
	struct logfile	*lf;
	char		*name;
	int		 fd;
	void		*sink;
	uint64_t	 bytes;		/* uncompressed */
	struct timespec	 deadline;	/* CLOCK_MONOTONIC; 0 = none */
	uint64_t	 written;	/* commits written */
	uint64_t	 synced;	/* commits on stable storage */
	bool		 syncing;
	bool		 dirty;		/* appended, not yet flushed to fd */
	bool		 bad;
	int		 err;
	unsigned	 refs;
};

struct logfile {
	struct logfile_config	 cfg;
	char			*dir;
	const struct sink_ops	*ops;
	int			 dirfd;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct segment		*cur;
	struct timespec		 last_name;	/* names only ever increase */
	bool			 healthy;
	/* Asynchronous commits not yet known durable, oldest first. */
	struct log_waiter	*waiters, *waiters_tail;
	pthread_cond_t		 sync_cv;	/* a waiter arrived, or stop */
	pthread_t		 sync_thread;
	bool			 sync_started;
	bool			 stopping;
	int			 fault_write;
	int			 fault_sync;
	struct logfile_stats	 st;
	struct logfile_recovery	 rec;
	/* Failed segments whose repair failed too, retried by the tick. */
	char			**pending;
	size_t			 npending;
	struct timespec		 retry_at;	/* CLOCK_MONOTONIC */
	pthread_mutex_t		 wmu;		/* guards watches */
	struct watch		*watches;
	size_t			 nwatches;
};

static int	repair_segment(struct logfile *, const char *);

/* ---- small helpers ---- */

static int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync or fdatasync, its duration counted in the metrics. */
static int
timed_sync(int fd, int (*sync)(int))
{
	struct timespec t0, t1;
	int r, e;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = sync(fd);
	e = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_log_sync((double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	errno = e;
	return r;
}

static bool
ts_le(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec ||
	    (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

static struct timespec
ts_next(struct timespec t)
{
	if (++t.tv_nsec == 1000000000L) {
		t.tv_nsec = 0;
		t.tv_sec++;
	}
	return t;
}

static int
clear_write_bits(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return -1;
	return fchmod(fd, st.st_mode & 07555);
}

void
logfile_format_name(char *out, size_t outlen, time_t sec, long nsec)
{
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(out, outlen, "%Y%m%d-%H%M%S", &tm);
	if (nsec == 0)
		return;
	if (nsec % 1000000 == 0)
		snprintf(out + n, outlen - n, ".%03ld", nsec / 1000000);
	else if (nsec % 1000 == 0)
		snprintf(out + n, outlen - n, ".%06ld", nsec / 1000);
	else
		snprintf(out + n, outlen - n, ".%09ld", nsec);
}

static bool
all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
num(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* Is name a segment name of ours? If so, *ts is its time. */
static bool
parse_name(const char *name, struct timespec *ts)
{
	size_t len = strlen(name), fl = len > 15 ? len - 16 : 0;
	struct tm tm = { 0 };

	if (len < 15 || !all_digits(name, 8) || name[8] != '-' ||
	    !all_digits(name + 9, 6))
		return false;
	if (len != 15 && (name[15] != '.' || (fl != 3 && fl != 6 && fl != 9) ||
	    !all_digits(name + 16, fl)))
		return false;
	tm.tm_year = num(name, 4) - 1900;
	tm.tm_mon = num(name + 4, 2) - 1;
	tm.tm_mday = num(name + 6, 2);
	tm.tm_hour = num(name + 9, 2);
	tm.tm_min = num(name + 11, 2);
	tm.tm_sec = num(name + 13, 2);
	ts->tv_sec = timegm(&tm);
	ts->tv_nsec = fl == 0 ? 0 : num(name + 16, fl);
	for (size_t i = fl; i < 9 && fl > 0; i++)
		ts->tv_nsec *= 10;
	return true;
}

static int
mkdir_p(const char *dir)
{
	char *p = xstrdup(dir);
	int rc = 0;

	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

/* ---- segments ---- */

static int
seg_write(void *ctx, const void *p, size_t n)
{
	struct segment *seg = ctx;
	struct logfile *lf = seg->lf;

	if (lf->fault_write != 0) {
		int e = lf->fault_write;

		lf->fault_write = 0;
		(void)write_all(seg->fd, p, n / 2);	/* a torn write */
		errno = e;
		return -1;
	}
	return write_all(seg->fd, p, n);
}

static void
seg_unref_locked(struct logfile *lf, struct segment *seg)
{
	if (--seg->refs > 0)
		return;
	if (seg->sink != NULL)
		lf->ops->destroy(seg->sink);
	close(seg->fd);
	/*
	 * Nobody writes or syncs it any more: make it a complete file. On a
	 * full disk the copy may not fit: keep trying from the tick.
	 */
	if (seg->bad && repair_segment(lf, seg->name) != 0) {
		lf->pending = xrealloc(lf->pending,
		    (lf->npending + 1) * sizeof(*lf->pending));
		lf->pending[lf->npending++] = seg->name;
		seg->name = NULL;
		clock_gettime(CLOCK_MONOTONIC, &lf->retry_at);
		lf->retry_at.tv_sec += REPAIR_RETRY;
	}
	free(seg->name);
	free(seg);
}

/*
 * Mark seg failed with err: its unsynced commits fail, the log is
 * unhealthy, and the next commit starts a new segment. The caller must
 * hold its own reference if it touches seg afterwards.
 */
static void
seg_fail_locked(struct logfile *lf, struct segment *seg, int err)
{
	if (!seg->bad) {
		seg->bad = true;
		seg->err = err;
		log_msg(LOG_ERR, NULL, "event=log-segment-failed file=%s "
		    "error=\"%s\"", seg->name, strerror(err));
	}
	lf->healthy = false;
	if (lf->cur == seg) {
		lf->cur = NULL;
		seg_unref_locked(lf, seg);
	}
	pthread_cond_broadcast(&lf->cv);
}

static int
seg_open_locked(struct logfile *lf)
{
	struct timespec ts;
	char name[32];
	int fd;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Tailers order segments by name: never reuse or go back. */
	if (ts_le(ts, lf->last_name))
		ts = ts_next(lf->last_name);
	for (;;) {
		logfile_format_name(name, sizeof(name), ts.tv_sec, ts.tv_nsec);
		fd = openat(lf->dirfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0)
			break;
		if (errno != EEXIST)
			return -1;
		ts = ts_next(ts);
	}
	lf->last_name = ts;

	struct segment *seg = xcalloc(1, sizeof(*seg));
	seg->lf = lf;
	seg->fd = fd;
	seg->name = xstrdup(name);
	seg->refs = 1;
	seg->sink = lf->ops->create(lf->cfg.level);
	/* The new name must survive a crash, or so would not its records. */
	if (seg->sink == NULL || (lf->cfg.fsync && fsync(lf->dirfd) != 0)) {
		int e = seg->sink == NULL ? ENOMEM : errno;

		unlinkat(lf->dirfd, name, 0);
		seg_unref_locked(lf, seg);
		errno = e;
		return -1;
	}
	if (lf->cfg.max_segment_duration > 0) {
		double d = lf->cfg.max_segment_duration;

		clock_gettime(CLOCK_MONOTONIC, &seg->deadline);
		seg->deadline.tv_sec += (time_t)d;
		seg->deadline.tv_nsec += (long)((d - (double)(time_t)d) * 1e9);
		if (seg->deadline.tv_nsec >= 1000000000L) {
			seg->deadline.tv_sec++;
			seg->deadline.tv_nsec -= 1000000000L;
		}
	}
	lf->cur = seg;
	return 0;
}

static bool
seg_expired(const struct segment *seg)
{
	struct timespec now;

	if (seg->deadline.tv_sec == 0 && seg->deadline.tv_nsec == 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return ts_le(seg->deadline, now);
}

/*
 * Close the current segment: finish the stream, fsync, clear the write
 * bits. Drops lf->mu while it waits and syncs, so other commits go on in
 * a new segment meanwhile. Returns 0, or -1 with errno if the segment
 * could not be completed (it is then failed and repaired).
 */
static int
seg_close_locked(struct logfile *lf)
{
	struct segment *seg = lf->cur;
	struct sink_out o = { seg_write, seg };
	int rc = 0;

	if (seg == NULL)
		return 0;
	lf->cur = NULL;		/* its reference is now ours */
	if (lf->ops->finish(seg->sink, &o) != 0)
		seg_fail_locked(lf, seg, errno);
	while (seg->syncing)
		pthread_cond_wait(&lf->cv, &lf->mu);
	if (!seg->bad) {
		uint64_t target = seg->written;
		int r, e;

		seg->syncing = true;
		pthread_mutex_unlock(&lf->mu);
		r = timed_sync(seg->fd, fsync);
		e = errno;
		/* Read-only only once complete on disk: tailers trust it. */
		if (r == 0 && clear_write_bits(seg->fd) != 0)
			log_msg(LOG_WARN, NULL, "event=log-chmod-failed file=%s "
			    "error=\"%s\"", seg->name, strerror(errno));
		pthread_mutex_lock(&lf->mu);
		seg->syncing = false;
		lf->st.syncs++;
		if (r == 0 && seg->synced < target)
			seg->synced = target;
		else if (r != 0)
			seg_fail_locked(lf, seg, e);
		pthread_cond_broadcast(&lf->cv);
	}
	if (seg->bad) {
		errno = seg->err;
		rc = -1;
	}
	seg_unref_locked(lf, seg);
	return rc;
}

/*
 * Sync everything written to seg so far (no sync of it may be in flight).
 * Drops lf->mu during the fdatasync.
 */
static void
sync_segment_locked(struct logfile *lf, struct segment *seg)
{
	struct sink_out o = { seg_write, seg };
	uint64_t target;
	int fault, r, e;

	/* Every commit so far reaches the descriptor in one flush. */
	if (seg->dirty) {
		seg->dirty = false;
		if (lf->ops->flush(seg->sink, &o) != 0) {
			seg_fail_locked(lf, seg, errno);
			return;
		}
	}
	target = seg->written;
	fault = lf->fault_sync;

	lf->fault_sync = 0;
	seg->syncing = true;
	pthread_mutex_unlock(&lf->mu);
	if (fault != 0) {
		r = -1;
		e = fault;
	} else {
		r = timed_sync(seg->fd, fdatasync);
		e = errno;
	}
	pthread_mutex_lock(&lf->mu);
	seg->syncing = false;
	lf->st.syncs++;
	if (r == 0) {
		if (seg->synced < target)
			seg->synced = target;
	} else
		seg_fail_locked(lf, seg, e);
	pthread_cond_broadcast(&lf->cv);
}

/*
 * Wait until commit seq of seg is on stable storage (0) or lost to a
 * failure (-1 with errno), leading a sync when none is in flight.
 */
static int
wait_durable(struct logfile *lf, struct segment *seg, uint64_t seq)
{
	for (;;) {
		/* A sync that succeeded stays good even if a later one fails. */
		if (seg->synced >= seq)
			return 0;
		if (seg->bad) {
			errno = seg->err;
			return -1;
		}
		if (seg->syncing)
			pthread_cond_wait(&lf->cv, &lf->mu);
		else
			sync_segment_locked(lf, seg);
	}
}

static bool
waiter_settled(const struct log_waiter *w)
{
	return w->seg->synced >= w->seq || w->seg->bad;
}

/*
 * Take every settled waiter off the list, let go of its segment, and call
 * it back outside the lock, in commit order.
 */
static void
settle_waiters_locked(struct logfile *lf)
{
	struct log_waiter *done = NULL, **tail = &done, **pp = &lf->waiters;

	lf->waiters_tail = NULL;
	while (*pp != NULL) {
		struct log_waiter *w = *pp;

		if (!waiter_settled(w)) {
			lf->waiters_tail = w;
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->next = NULL;
		w->err = w->seg->synced >= w->seq ? 0 : w->seg->err;
		if (w->err == 0)
			lf->healthy = true;
		else
			lf->st.failures++;
		seg_unref_locked(lf, w->seg);
		w->seg = NULL;
		*tail = w;
		tail = &w->next;
	}
	pthread_mutex_unlock(&lf->mu);
	while (done != NULL) {
		struct log_waiter *w = done;

		done = w->next;		/* the callback may free w */
		w->done(w, w->err);
	}
	pthread_mutex_lock(&lf->mu);
}

/* The sync thread: leads the syncs the asynchronous commits wait for. */
static void *
sync_main(void *arg)
{
	struct logfile *lf = arg;

	pthread_mutex_lock(&lf->mu);
	for (;;) {
		struct log_waiter *w = lf->waiters;

		if (w == NULL) {
			if (lf->stopping)
				break;
			pthread_cond_wait(&lf->sync_cv, &lf->mu);
		} else if (waiter_settled(w))
			settle_waiters_locked(lf);
		else if (w->seg->syncing)
			pthread_cond_wait(&lf->cv, &lf->mu);
		else
			sync_segment_locked(lf, w->seg);
	}
	pthread_mutex_unlock(&lf->mu);
	return NULL;
}

/* ---- repair ---- */

struct repair {
	const struct sink_ops	*ops;
	void			*sink;
	int			 fd;		/* the temporary file */
	char			*line;		/* a line split across chunks */
	size_t			 len;
	size_t			 cap;
	bool			 skipping;	/* inside an over-long line */
	uint64_t		 kept;
	uint64_t		 dropped_lines;
	uint64_t		 dropped_bytes;
};

static int
repair_write(void *ctx, const void *p, size_t n)
{
	struct repair *r = ctx;

	return write_all(r->fd, p, n);
}

static int
repair_line(struct repair *r, const char *p, size_t n)
{
	struct sink_out o = { repair_write, r };
	json_error_t je;
	json_t *j = json_loadb(p, n, 0, &je);

	if (j == NULL) {
		r->dropped_lines++;
		r->dropped_bytes += n + 1;
		return 0;
	}
	json_decref(j);
	if (r->ops->append(r->sink, &o, p, n) != 0 ||
	    r->ops->append(r->sink, &o, "\n", 1) != 0)
		return -1;
	r->kept++;
	return 0;
}

/* Split decoded content into lines; keep those that are JSON. */
static int
repair_feed(void *arg, const void *data, size_t n)
{
	struct repair *r = arg;
	const char *p = data;

	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl != NULL ? (size_t)(nl - p) : n;

		if (!r->skipping && r->len + take > REPAIR_MAX_LINE) {
			r->dropped_bytes += r->len;
			r->len = 0;
			r->skipping = true;
		}
		if (r->skipping) {
			r->dropped_bytes += take + (nl != NULL);
			if (nl != NULL) {
				r->skipping = false;
				r->dropped_lines++;
			}
		} else if (nl != NULL && r->len == 0) {
			if (repair_line(r, p, take) != 0)
				return -1;
		} else {
			if (r->len + take > r->cap) {
				r->cap = (r->len + take) * 2;
				r->line = xrealloc(r->line, r->cap);
			}
			memcpy(r->line + r->len, p, take);
			r->len += take;
			if (nl != NULL) {
				if (repair_line(r, r->line, r->len) != 0)
					return -1;
				r->len = 0;
			}
		}
		if (nl == NULL)
			break;
		p = nl + 1;
		n -= take + 1;
	}
	return 0;
}

/*
 * Make the writable segment name complete: decode it as far as it goes,
 * keep every whole line that is JSON, and when anything was lost (or the
 * zstd frame was left open) replace it atomically by a rewritten copy
 * (dot-file, fsync, rename, fsync the directory). An empty file holds
 * nothing and is removed. The result is read-only. Returns 0 or -1 with
 * errno; the original is untouched on failure.
 */
static int
repair_segment(struct logfile *lf, const char *name)
{
	struct repair r = { 0 };
	unsigned char head[4];
	struct stat st;
	char *tmp = NULL;
	int sfd, dr, rc = -1, e;
	ssize_t hn;

	r.fd = -1;
	sfd = openat(lf->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (sfd < 0 || fstat(sfd, &st) != 0)
		goto fail;
	if (st.st_size == 0) {
		if (unlinkat(lf->dirfd, name, 0) != 0 || fsync(lf->dirfd) != 0)
			goto fail;
		log_msg(LOG_WARN, NULL, "event=log-repaired file=%s "
		    "action=removed-empty", name);
		rc = 0;
		goto done;
	}
	do
		hn = pread(sfd, head, sizeof(head), 0);
	while (hn < 0 && errno == EINTR);
	if (hn < 0)
		goto fail;
	r.ops = sink_zstd.sniff(head, (size_t)hn) ? &sink_zstd : &sink_plain;
	tmp = xasprintf(".%s%s", name, REPAIR_SUFFIX);
	r.fd = openat(lf->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (r.fd < 0 || (r.sink = r.ops->create(lf->cfg.level)) == NULL)
		goto fail;
	dr = r.ops->decode(sfd, repair_feed, &r);
	if (dr < 0)
		goto fail;
	if (r.len > 0 || r.skipping) {	/* the torn last line */
		r.dropped_lines++;
		r.dropped_bytes += r.len;
	}
	if (dr == 1 && r.dropped_lines == 0) {
		/* Complete, only never marked so: no rewrite needed. */
		if (fchmod(sfd, st.st_mode & 07555) != 0)
			goto fail;
		unlinkat(lf->dirfd, tmp, 0);
		rc = 0;
		goto done;
	}
	struct sink_out o = { repair_write, &r };
	if (r.ops->finish(r.sink, &o) != 0 || fsync(r.fd) != 0 ||
	    fchmod(r.fd, st.st_mode & 07555) != 0 ||
	    renameat(lf->dirfd, tmp, lf->dirfd, name) != 0 ||
	    fsync(lf->dirfd) != 0)
		goto fail;
	lf->rec.files++;
	lf->rec.kept += r.kept;
	lf->rec.dropped_lines += r.dropped_lines;
	lf->rec.dropped_bytes += r.dropped_bytes;
	log_msg(LOG_WARN, NULL, "event=log-repaired file=%s format=%s kept=%llu "
	    "dropped_lines=%llu dropped_bytes=%llu stream=%s", name, r.ops->name,
	    (unsigned long long)r.kept, (unsigned long long)r.dropped_lines,
	    (unsigned long long)r.dropped_bytes, dr == 1 ? "complete" : "cut");
	rc = 0;
	goto done;
fail:
	e = errno;
	if (tmp != NULL)
		unlinkat(lf->dirfd, tmp, 0);
	log_msg(LOG_ERR, NULL, "event=log-repair-failed file=%s error=\"%s\"",
	    name, strerror(e));
	errno = e;
done:
	e = errno;
	if (r.sink != NULL)
		r.ops->destroy(r.sink);
	if (r.fd >= 0)
		close(r.fd);
	if (sfd >= 0)
		close(sfd);
	free(r.line);
	free(tmp);
	errno = e;
	return rc;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Startup: every non-dot file becomes read-only, as KumoMTA does; a
 * writable segment of ours is a crash's leftover and is repaired first.
 * Our own stale repair temporaries are removed.
 */
static int
scan_dir(struct logfile *lf, char **err)
{
	int fd = dup(lf->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		*err = xasprintf("cannot read %s: %s", lf->dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *name = names[i];
		size_t len = strlen(name), sl = strlen(REPAIR_SUFFIX);
		struct timespec ts;
		struct stat st;

		if (name[0] == '.') {
			if (len > sl && strcmp(name + len - sl, REPAIR_SUFFIX) == 0)
				unlinkat(lf->dirfd, name, 0);
			continue;
		}
		if (fstatat(lf->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		bool ours = parse_name(name, &ts);
		if (ours && !ts_le(ts, lf->last_name))
			lf->last_name = ts;
		if ((st.st_mode & 0222) == 0)
			continue;
		if (ours ? repair_segment(lf, name) != 0 :
		    fchmodat(lf->dirfd, name, st.st_mode & 07555, 0) != 0) {
			*err = xasprintf("%s/%s: cannot %s: %s", lf->dir, name,
			    ours ? "repair" : "make read-only", strerror(errno));
			rc = -1;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/*
 * The last resort for a plain segment that cannot be copied (no space):
 * cut it after its last whole line, in place, which needs no space.
 */
static int
repair_plain_in_place(struct logfile *lf, const char *name)
{
	int fd = openat(lf->dirfd, name, O_RDWR | O_CLOEXEC);
	struct stat st;
	char buf[4096];
	off_t end;

	if (fd < 0 || fstat(fd, &st) != 0)
		goto fail;
	end = st.st_size;
	while (end > 0) {
		size_t want = end < (off_t)sizeof(buf) ? (size_t)end : sizeof(buf);
		ssize_t r = pread(fd, buf, want, end - (off_t)want);
		if (r != (ssize_t)want)
			goto fail;
		char *nl = memrchr(buf, '\n', want);
		if (nl != NULL) {
			end = end - (off_t)want + (nl - buf) + 1;
			break;
		}
		end -= (off_t)want;
	}
	if (ftruncate(fd, end) != 0 || fsync(fd) != 0 ||
	    fchmod(fd, st.st_mode & 07555) != 0)
		goto fail;
	log_msg(LOG_WARN, NULL, "event=log-repaired file=%s format=plain "
	    "action=cut-in-place dropped_bytes=%lld", name,
	    (long long)(st.st_size - end));
	close(fd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

/*
 * Retry the repairs that failed (lf->mu held). final: the log is closing;
 * a plain segment is then cut in place, and a zstd one that still cannot
 * be rewritten is left writable for the repair at the next start.
 */
static void
retry_pending_locked(struct logfile *lf, bool final)
{
	size_t kept = 0;

	for (size_t i = 0; i < lf->npending; i++) {
		char *name = lf->pending[i];
		unsigned char head[4];
		ssize_t hn = -1;
		int fd;

		if (repair_segment(lf, name) == 0) {
			free(name);
			continue;
		}
		if (final && (fd = openat(lf->dirfd, name, O_RDONLY |
		    O_CLOEXEC)) >= 0) {
			hn = pread(fd, head, sizeof(head), 0);
			close(fd);
		}
		if (final && hn >= 0 && !sink_zstd.sniff(head, (size_t)hn) &&
		    repair_plain_in_place(lf, name) == 0) {
			free(name);
			continue;
		}
		if (final)
			log_msg(LOG_ERR, NULL, "event=log-repair-deferred file=%s "
			    "reason=\"left writable; repaired at the next start\"",
			    name);
		lf->pending[kept++] = name;
	}
	lf->npending = kept;
	clock_gettime(CLOCK_MONOTONIC, &lf->retry_at);
	lf->retry_at.tv_sec += REPAIR_RETRY;
}

/* ---- free space ---- */

static void
watch_add(struct logfile *lf, const char *what, const char *dir,
    const struct min_free *space, const struct min_free *inodes)
{
	pthread_mutex_lock(&lf->wmu);
	lf->watches = xrealloc(lf->watches,
	    (lf->nwatches + 1) * sizeof(*lf->watches));
	lf->watches[lf->nwatches++] = (struct watch){ xstrdup(what),
	    xstrdup(dir), *space, *inodes };
	pthread_mutex_unlock(&lf->wmu);
}

void
logfile_watch(struct logfile *lf, const char *what, const char *dir,
    const struct min_free *space, const struct min_free *inodes)
{
	watch_add(lf, what, dir, space, inodes);
}

/*
 * statvfs of dir, or, while it does not exist yet (a spool created on the
 * first relayed message), of its nearest existing parent: the file system
 * it will be created on.
 */
static int
statvfs_near(const char *dir, struct statvfs *sv)
{
	char *p = xstrdup(dir);
	int rc;

	while ((rc = statvfs(p, sv)) != 0 && errno == ENOENT) {
		char *slash = strrchr(p, '/');
		if (slash == NULL || slash == p) {
			rc = statvfs(slash == p ? "/" : ".", sv);
			break;
		}
		*slash = '\0';
	}
	free(p);
	return rc;
}

/* The floor in units of the file system: bytes or inodes. */
static double
floor_of(const struct min_free *m, double total)
{
	return m->percent ? total * m->value / 100.0 : m->value;
}

static void
floor_text(char *out, size_t n, const struct min_free *m)
{
	if (m->percent)
		snprintf(out, n, "%g%%", m->value);
	else
		snprintf(out, n, "%.0f", m->value);
}

bool
logfile_storage_ok(struct logfile *lf, char *why, size_t whylen)
{
	bool ok = true;

	if (lf == NULL)
		return true;
	pthread_mutex_lock(&lf->wmu);
	for (size_t i = 0; i < lf->nwatches && ok; i++) {
		const struct watch *w = &lf->watches[i];
		struct statvfs sv;
		char fl[32];

		if (w->space.value <= 0 && w->inodes.value <= 0)
			continue;
		if (statvfs_near(w->dir, &sv) != 0) {
			snprintf(why, whylen, "%s %s: cannot check free space: %s",
			    w->what, w->dir, strerror(errno));
			ok = false;
			break;
		}
		double total = (double)sv.f_blocks * (double)sv.f_frsize;
		double avail = (double)sv.f_bavail * (double)sv.f_frsize;
		if (w->space.value > 0 && avail < floor_of(&w->space, total)) {
			floor_text(fl, sizeof(fl), &w->space);
			snprintf(why, whylen, "%s %s: %.0f bytes free of %.0f, "
			    "below min_free_space %s", w->what, w->dir, avail,
			    total, fl);
			ok = false;
			break;
		}
		/* A file system without an inode count (btrfs) has no floor. */
		if (w->inodes.value > 0 && sv.f_files > 0 &&
		    (double)sv.f_favail < floor_of(&w->inodes,
		    (double)sv.f_files)) {
			floor_text(fl, sizeof(fl), &w->inodes);
			snprintf(why, whylen, "%s %s: %llu inodes free of %llu, "
			    "below min_free_inodes %s", w->what, w->dir,
			    (unsigned long long)sv.f_favail,
			    (unsigned long long)sv.f_files, fl);
			ok = false;
		}
	}
	pthread_mutex_unlock(&lf->wmu);
	return ok;
}

/* ---- the interface ---- */

struct logfile *
logfile_open(const struct logfile_config *cfg, char **err)
{
	struct logfile *lf;
	int dirfd;

	*err = NULL;
	if (cfg->dir == NULL || cfg->dir[0] == '\0') {
		*err = xstrdup("no log directory");
		return NULL;
	}
	if (mkdir_p(cfg->dir) != 0 ||
	    (dirfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*err = xasprintf("cannot create %s: %s", cfg->dir,
		    strerror(errno));
		return NULL;
	}
	lf = xcalloc(1, sizeof(*lf));
	lf->cfg = *cfg;
	lf->dir = xstrdup(cfg->dir);
	lf->cfg.dir = lf->dir;
	lf->ops = cfg->compress ? &sink_zstd : &sink_plain;
	lf->dirfd = dirfd;
	lf->healthy = true;
	if (scan_dir(lf, err) != 0) {
		close(dirfd);
		free(lf->dir);
		free(lf);
		return NULL;
	}
	pthread_mutex_init(&lf->mu, NULL);
	pthread_mutex_init(&lf->wmu, NULL);
	watch_add(lf, "log_dir", lf->dir, &cfg->min_free_space,
	    &cfg->min_free_inodes);
	pthread_cond_init(&lf->cv, NULL);
	pthread_cond_init(&lf->sync_cv, NULL);
	if (lf->cfg.fsync) {
		if (pthread_create(&lf->sync_thread, NULL, sync_main, lf) != 0)
			fatalx("log: cannot start the sync thread");
		lf->sync_started = true;
	}
	return lf;
}

/* A newline inside a record would split it into two broken lines. */
static int
check_lines(const char *const *lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr(lines[i], '\n') != NULL) {
			errno = EINVAL;
			return -1;
		}
	return 0;
}

/*
 * Write lines as one commit (lf->mu held): 0 with *segp the segment, a
 * reference to it now the caller's, and *seqp the commit's number; -1
 * with errno when it could not be written, the failure counted.
 */
/* What a commit writes: lines in memory, or a batch (maybe spilled). */
struct source {
	const char *const *lines;
	size_t	 n;
	struct log_batch *b;
};

static int	batch_append_locked(struct logfile *, struct log_batch *,
		    const struct sink_out *, uint64_t *);

static int
commit_write_locked(struct logfile *lf, const struct source *src,
    struct segment **segp, uint64_t *seqp)
{
	struct segment *seg;
	const char *const *lines = src->lines;
	size_t n = src->n;
	uint64_t len = 0;
	int rc = 0, e;

	while (lf->cur == NULL || seg_expired(lf->cur)) {
		if (lf->cur != NULL) {
			(void)seg_close_locked(lf);
			continue;
		}
		if (seg_open_locked(lf) != 0) {
			e = errno;
			lf->st.failures++;
			lf->healthy = false;
			errno = e;
			return -1;
		}
	}
	seg = lf->cur;
	seg->refs++;

	struct sink_out o = { seg_write, seg };
	if (src->b != NULL)
		rc = batch_append_locked(lf, src->b, &o, &len);
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t l = strlen(lines[i]);

		rc = lf->ops->append(seg->sink, &o, lines[i], l) != 0 ||
		    lf->ops->append(seg->sink, &o, "\n", 1) != 0 ? -1 : 0;
		len += l + 1;
	}
	/*
	 * With fsync on, the flush waits for the sync that needs it (one
	 * zstd flush and write per sync, not per commit).
	 */
	if (rc == 0 && lf->cfg.fsync)
		seg->dirty = true;
	else if (rc == 0)
		rc = lf->ops->flush(seg->sink, &o);
	if (rc != 0) {
		e = errno;
		seg_fail_locked(lf, seg, e);
		lf->st.failures++;
		seg_unref_locked(lf, seg);
		errno = e;
		return -1;
	}
	*seqp = ++seg->written;
	seg->bytes += len;
	lf->st.records += src->b != NULL ? logfile_batch_count(src->b) : n;
	lf->st.commits++;
	lf->st.bytes += len;
	if (lf->cur == seg && lf->cfg.max_file_size > 0 &&
	    seg->bytes >= lf->cfg.max_file_size)
		(void)seg_close_locked(lf);	/* syncs this commit too */
	*segp = seg;
	return 0;
}

/*
 * The start of both commits: check and write the lines. On success lf->mu
 * is held and *segp, *seqp are as commit_write_locked gives them; on
 * failure nothing is held and errno is set.
 */
static int
commit_begin(struct logfile *lf, const struct source *src,
    struct segment **segp, uint64_t *seqp)
{
	int e;

	if (check_lines(src->lines, src->n) != 0)
		return -1;
	pthread_mutex_lock(&lf->mu);
	if (commit_write_locked(lf, src, segp, seqp) != 0) {
		e = errno;
		pthread_mutex_unlock(&lf->mu);
		errno = e;
		return -1;
	}
	return 0;
}

int
logfile_commit(struct logfile *lf, const char *const *lines, size_t n)
{
	struct segment *seg;
	uint64_t seq;
	int rc = 0, e = 0;

	struct source src = { lines, n, NULL };

	if (n == 0)
		return 0;
	if (commit_begin(lf, &src, &seg, &seq) != 0)
		return -1;
	if (lf->cfg.fsync) {
		/* Let the worker pool run another message during the wait. */
		pool_wait_begin();
		rc = wait_durable(lf, seg, seq);
		e = errno;
		pool_wait_end();
	}
	if (rc == 0)
		lf->healthy = true;
	else
		lf->st.failures++;
	seg_unref_locked(lf, seg);
	pthread_mutex_unlock(&lf->mu);
	if (rc != 0)
		errno = e;
	return rc;
}

/* The asynchronous commit of src; see logfile_commit_async(). */
static int
commit_async(struct logfile *lf, const struct source *src,
    struct log_waiter *w)
{
	struct segment *seg;
	uint64_t seq;

	if (commit_begin(lf, src, &seg, &seq) != 0)
		return -1;
	if (!lf->cfg.fsync || seg->synced >= seq) {
		lf->healthy = true;
		seg_unref_locked(lf, seg);
		pthread_mutex_unlock(&lf->mu);
		return 0;
	}
	w->seg = seg;		/* the reference is the waiter's now */
	w->seq = seq;
	w->err = 0;
	w->next = NULL;
	if (lf->waiters_tail != NULL)
		lf->waiters_tail->next = w;
	else
		lf->waiters = w;
	lf->waiters_tail = w;
	pthread_cond_signal(&lf->sync_cv);
	pthread_mutex_unlock(&lf->mu);
	return 1;
}

int
logfile_commit_async(struct logfile *lf, const char *const *lines, size_t n,
    struct log_waiter *w)
{
	struct source src = { lines, n, NULL };

	if (n == 0)
		return 0;
	return commit_async(lf, &src, w);
}

/* ---- batches ---- */

#define BATCH_BUFSZ	(64u * 1024)

struct log_batch {
	struct logfile	*lf;
	char		**lines;	/* in memory, until spilled */
	size_t		 n;
	size_t		 cap;
	size_t		 mem;		/* bytes of lines[] */
	size_t		 count;		/* every line added */
	uint64_t	 bytes;		/* with their newlines */
	int		 fd;		/* the spill file, or -1 */
	char		*buf;		/* its write buffer (BATCH_BUFSZ) */
	size_t		 blen;
	int		 err;		/* the batch failed with this */
};

struct log_batch *
logfile_batch_new(struct logfile *lf)
{
	struct log_batch *b = xcalloc(1, sizeof(*b));

	b->lf = lf;
	b->fd = -1;
	return b;
}

size_t
logfile_batch_count(const struct log_batch *b)
{
	return b->count;
}

void
logfile_batch_free(struct log_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->lines[i]);
	free(b->lines);
	if (b->fd >= 0)
		close(b->fd);
	free(b->buf);
	free(b);
}

static int
batch_flush(struct log_batch *b)
{
	if (b->blen == 0)
		return 0;
	size_t n = b->blen;
	b->blen = 0;
	return write_all(b->fd, b->buf, n);
}

static int
batch_put(struct log_batch *b, const char *p, size_t n)
{
	while (n > 0) {
		size_t take = BATCH_BUFSZ - b->blen;

		if (take > n)
			take = n;
		memcpy(b->buf + b->blen, p, take);
		b->blen += take;
		p += take;
		n -= take;
		if (b->blen == BATCH_BUFSZ && batch_flush(b) != 0)
			return -1;
	}
	return 0;
}

/*
 * Move the lines held in memory to an unnamed file in the log directory
 * (the same file system, so the free-space limits cover it too). A file
 * system without O_TMPFILE gets a dot-file, unlinked at once.
 */
static int
batch_spill(struct log_batch *b)
{
	struct logfile *lf = b->lf;

	b->fd = openat(lf->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (b->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR ||
	    errno == EINVAL)) {
		char name[64];

		for (unsigned i = 0; b->fd < 0 && i < 100; i++) {
			snprintf(name, sizeof(name), ".batch-%ld-%u-%p",
			    (long)getpid(), i, (void *)b);
			b->fd = openat(lf->dirfd, name, O_RDWR | O_CREAT |
			    O_EXCL | O_CLOEXEC, 0600);
			if (b->fd < 0 && errno != EEXIST)
				break;
		}
		if (b->fd >= 0)
			unlinkat(lf->dirfd, name, 0);
	}
	if (b->fd < 0)
		return -1;
	b->buf = xmalloc(BATCH_BUFSZ);
	for (size_t i = 0; i < b->n; i++) {
		if (batch_put(b, b->lines[i], strlen(b->lines[i])) != 0 ||
		    batch_put(b, "\n", 1) != 0)
			return -1;
		free(b->lines[i]);
		b->lines[i] = NULL;
	}
	free(b->lines);
	b->lines = NULL;
	b->n = b->cap = b->mem = 0;
	return 0;
}

int
logfile_batch_add(struct log_batch *b, const char *line)
{
	size_t l = strlen(line);

	if (b->err != 0) {
		errno = b->err;
		return -1;
	}
	if (memchr(line, '\n', l) != NULL) {
		b->err = EINVAL;
		errno = EINVAL;
		return -1;
	}
	if (b->fd < 0 && b->mem + l + 1 > LOG_BATCH_MEM && batch_spill(b) != 0)
		goto fail;
	if (b->fd >= 0) {
		if (batch_put(b, line, l) != 0 || batch_put(b, "\n", 1) != 0)
			goto fail;
	} else {
		if (b->n == b->cap) {
			b->cap = b->cap != 0 ? b->cap * 2 : 8;
			b->lines = xrealloc(b->lines, b->cap * sizeof(*b->lines));
		}
		b->lines[b->n++] = xstrdup(line);
		b->mem += l + 1;
	}
	b->count++;
	b->bytes += l + 1;
	return 0;
fail:
	b->err = errno != 0 ? errno : EIO;
	errno = b->err;
	return -1;
}

/*
 * Pass the batch's lines to the segment's sink (lf->mu held). A spilled
 * batch is read back in pieces of BATCH_BUFSZ, so the copy needs no more
 * memory than the spill did.
 */
static int
batch_append_locked(struct logfile *lf, struct log_batch *b,
    const struct sink_out *o, uint64_t *len)
{
	void *sink = ((struct segment *)o->ctx)->sink;

	if (b->fd < 0) {
		for (size_t i = 0; i < b->n; i++) {
			size_t l = strlen(b->lines[i]);

			if (lf->ops->append(sink, o, b->lines[i], l) != 0 ||
			    lf->ops->append(sink, o, "\n", 1) != 0)
				return -1;
		}
		*len += b->bytes;
		return 0;
	}
	for (uint64_t off = 0; off < b->bytes; ) {
		size_t want = b->bytes - off < BATCH_BUFSZ ?
		    (size_t)(b->bytes - off) : BATCH_BUFSZ;
		ssize_t r = pread(b->fd, b->buf, want, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;	/* the file is shorter than written */
			return -1;
		}
		if (lf->ops->append(sink, o, b->buf, (size_t)r) != 0)
			return -1;
		off += (uint64_t)r;
	}
	*len += b->bytes;
	return 0;
}

int
logfile_batch_commit_async(struct logfile *lf, struct log_batch *b,
    struct log_waiter *w)
{
	struct source src = { NULL, 0, b };

	if (b->err != 0) {
		errno = b->err;
		return -1;
	}
	if (b->count == 0)
		return 0;
	if (b->fd >= 0 && batch_flush(b) != 0) {
		b->err = errno;
		return -1;
	}
	return commit_async(lf, &src, w);
}

int
logfile_rotate(struct logfile *lf)
{
	int rc;

	pthread_mutex_lock(&lf->mu);
	rc = seg_close_locked(lf);
	pthread_mutex_unlock(&lf->mu);
	return rc;
}

void
logfile_tick(struct logfile *lf)
{
	struct timespec now;

	pthread_mutex_lock(&lf->mu);
	if (lf->cur != NULL && seg_expired(lf->cur))
		(void)seg_close_locked(lf);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (lf->npending > 0 && ts_le(lf->retry_at, now))
		retry_pending_locked(lf, false);
	pthread_mutex_unlock(&lf->mu);
}

bool
logfile_healthy(const struct logfile *lf)
{
	struct logfile *m = (struct logfile *)lf;	/* the lock is not state */
	bool h;

	pthread_mutex_lock(&m->mu);
	h = m->healthy;
	pthread_mutex_unlock(&m->mu);
	return h;
}

void
logfile_close(struct logfile *lf)
{
	if (lf == NULL)
		return;
	pthread_mutex_lock(&lf->mu);
	if (lf->sync_started) {
		/* The sync thread settles every waiter left before it ends. */
		lf->stopping = true;
		pthread_cond_signal(&lf->sync_cv);
		pthread_mutex_unlock(&lf->mu);
		pthread_join(lf->sync_thread, NULL);
		pthread_mutex_lock(&lf->mu);
	}
	(void)seg_close_locked(lf);
	if (lf->npending > 0)
		retry_pending_locked(lf, true);
	for (size_t i = 0; i < lf->npending; i++)
		free(lf->pending[i]);
	free(lf->pending);
	pthread_mutex_unlock(&lf->mu);
	for (size_t i = 0; i < lf->nwatches; i++) {
		free(lf->watches[i].what);
		free(lf->watches[i].dir);
	}
	free(lf->watches);
	pthread_mutex_destroy(&lf->wmu);
	pthread_cond_destroy(&lf->sync_cv);
	pthread_cond_destroy(&lf->cv);
	pthread_mutex_destroy(&lf->mu);
	close(lf->dirfd);
	free(lf->dir);
	free(lf);
}

void
logfile_stats(const struct logfile *lf, struct logfile_stats *out)
{
	struct logfile *m = (struct logfile *)lf;

	pthread_mutex_lock(&m->mu);
	*out = m->st;
	pthread_mutex_unlock(&m->mu);
}

void
logfile_recovery(const struct logfile *lf, struct logfile_recovery *out)
{
	struct logfile *m = (struct logfile *)lf;

	pthread_mutex_lock(&m->mu);
	*out = m->rec;
	pthread_mutex_unlock(&m->mu);
}

void
logfile_inject_fault(struct logfile *lf, enum logfile_fault op, int err)
{
	pthread_mutex_lock(&lf->mu);
	if (op == LOGFILE_FAULT_WRITE)
		lf->fault_write = err;
	else
		lf->fault_sync = err;
	pthread_mutex_unlock(&lf->mu);
}
