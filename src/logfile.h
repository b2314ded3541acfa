/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logfile.h - durable log files of JSON lines: KumoMTA-style segments
 * (zstd-compressed or plain), rotation by size and age, and group commit.
 *
 * Any thread may call logfile_commit(); the records of one call are written
 * together and, with fsync on, are on stable storage when it returns 0.
 * Concurrent callers share one fdatasync (group commit).
 */
#ifndef OOBD_LOGFILE_H
#define OOBD_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * A floor of free space or free inodes on a file system, as KumoMTA's
 * min_free_space and min_free_inodes: a percentage of the file system's
 * total, or an absolute amount (bytes, or inodes). Zero is no floor.
 */
struct min_free {
	bool	 percent;
	double	 value;
};

struct logfile_config {
	const char *dir;		/* created if missing */
	bool	 compress;		/* zstd (KumoMTA's format) or plain lines */
	int	 level;			/* zstd level; 0 means 3 */
	uint64_t max_file_size;		/* uncompressed bytes per segment */
	double	 max_segment_duration;	/* seconds; 0 = unlimited */
	bool	 fsync;			/* fdatasync before commit returns */
	struct min_free min_free_space;	/* of dir's file system */
	struct min_free min_free_inodes;
};

struct logfile;
struct segment;

/*
 * Open the log directory: create it if needed, repair a segment left
 * half-written by a crash (keeping every complete record), mark existing
 * segments read-only. Segment files are created lazily on the first
 * commit, named for their UTC open time "YYYYMMDD-HHMMSS.fraction".
 * Returns NULL with *err on failure.
 */
struct logfile *logfile_open(const struct logfile_config *cfg, char **err);

/*
 * Append lines[0..n) (each one JSON record, without newline) as one unit,
 * then make them durable per cfg->fsync. Returns 0, or -1 with errno set
 * when writing or syncing failed: the caller must not acknowledge the
 * message (451 4.3.0). After a failure the log is unhealthy until a later
 * commit succeeds on a fresh segment. A line that contains a newline is
 * refused with EINVAL before anything is written (health unchanged).
 */
int	 logfile_commit(struct logfile *lf, const char *const *lines, size_t n);

/*
 * The same commit without the wait. Returns 0 when the lines are already
 * as durable as the configuration asks (fsync off) and -1 with errno when
 * they could not be written; done() is then never called. Returns 1 when
 * they await their sync: done() is then called once, from the log's sync
 * thread, with 0 when they are on stable storage or the error that lost
 * them. The waiter must stay valid until then.
 */
struct log_waiter {
	void	(*done)(struct log_waiter *w, int err);
	/* private to the log */
	struct segment	  *seg;
	uint64_t	   seq;
	int		   err;
	struct log_waiter *next;
};
int	 logfile_commit_async(struct logfile *lf, const char *const *lines,
	    size_t n, struct log_waiter *w);

/*
 * The records of one message, gathered one at a time and committed as one
 * unit. Up to LOG_BATCH_MEM bytes stay in memory; past that the lines go
 * to an unnamed temporary file in the log directory and are copied into
 * the segment at the commit, so a message with many records costs memory
 * for one record, not for all of them.
 */
#define LOG_BATCH_MEM	(256u * 1024)
struct log_batch;
struct log_batch *logfile_batch_new(struct logfile *lf);
/*
 * Add one JSON record (no newline). Returns 0, or -1 with errno when the
 * line has a newline (EINVAL) or the temporary file could not be written;
 * the batch is then failed and its commit returns that error.
 */
int	 logfile_batch_add(struct log_batch *b, const char *line);
size_t	 logfile_batch_count(const struct log_batch *b);
/*
 * Commit every line of b as one unit, as logfile_commit_async() does
 * (same return values and waiter contract). b stays the caller's to free;
 * it may be freed as soon as this returns.
 */
int	 logfile_batch_commit_async(struct logfile *lf, struct log_batch *b,
	    struct log_waiter *w);
void	 logfile_batch_free(struct log_batch *b);

/*
 * Watch another directory's file system too (the relay spool), with its
 * own floors; what names it in the reasons ("spool_dir").
 */
void	 logfile_watch(struct logfile *lf, const char *what, const char *dir,
	    const struct min_free *space, const struct min_free *inodes);
/*
 * Is there room for new messages? Every watched file system (the log's
 * own first) is checked with statvfs; false, with one line in why, when one
 * is below a floor or cannot be checked. New transactions are refused then
 * (452 4.3.1) and the liveness check says why.
 */
bool	 logfile_storage_ok(struct logfile *lf, char *why, size_t whylen);

/* Close the current segment (SIGUSR1, age rotation); the next commit opens a new one. */
int	 logfile_rotate(struct logfile *lf);
/*
 * Close any segment whose age is past max_segment_duration, and retry the
 * repair of a failed segment that could not be repaired yet (at most every
 * few seconds), e.g. once a full disk has room again (timer).
 */
void	 logfile_tick(struct logfile *lf);
bool	 logfile_healthy(const struct logfile *lf);
/*
 * Finish the segment (complete zstd frame, read-only), repair any failed
 * segment still waiting for it (in place if a copy does not fit), and free.
 */
void	 logfile_close(struct logfile *lf);

/* Counters for metrics. */
struct logfile_stats {
	uint64_t records;
	uint64_t commits;
	uint64_t syncs;
	uint64_t bytes;		/* uncompressed */
	uint64_t failures;
};
void	 logfile_stats(const struct logfile *lf, struct logfile_stats *out);

/*
 * What logfile_open (and the repair of a segment abandoned after a write
 * failure) found in segments left unfinished: files repaired, complete
 * records kept, and lines dropped (a torn last record, an invalid tail)
 * with their bytes. Each repair also logs one "event=log-repaired" line.
 */
struct logfile_recovery {
	uint64_t files;
	uint64_t kept;
	uint64_t dropped_lines;
	uint64_t dropped_bytes;
};
void	 logfile_recovery(const struct logfile *lf, struct logfile_recovery *out);

/*
 * The segment name for a UTC time, as KumoMTA's "%Y%m%d-%H%M%S%.f": the
 * fraction has 3, 6 or 9 digits, the shortest exact form, and is left out
 * when the nanoseconds are 0. out must hold 32 bytes.
 */
void	 logfile_format_name(char *out, size_t outlen, time_t sec, long nsec);

/*
 * Test hook: make the next write (a torn one: half the bytes, then the
 * error) or the next fdatasync on the current segment fail with err, as a
 * full disk or a failing device would.
 */
enum logfile_fault { LOGFILE_FAULT_WRITE, LOGFILE_FAULT_SYNC };
void	 logfile_inject_fault(struct logfile *lf, enum logfile_fault op, int err);

#endif
