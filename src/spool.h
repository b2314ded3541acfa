/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool.h - the durable spool of messages waiting to be relayed onward.
 *
 * One file per message, named by its spool id, in [relay] spool_dir. A
 * file is written under a temporary name, synced, renamed into place and
 * the directory synced, so a name without the temporary prefix is always a
 * complete message. The file is removed only once the message's final log
 * record is durable, so a restart at any point loses nothing.
 *
 * File layout: one line of compact JSON (the envelope and what the log
 * records need: id, sender, recipient, queue, listener, next hop, created
 * time, meta and headers captured at reception), a newline, then the
 * message exactly as it is relayed (the prepended Received header, then
 * the received text).
 */
#ifndef OOBD_SPOOL_H
#define OOBD_SPOOL_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/* Temporary files start with this; they are never a complete message. */
#define SPOOL_TMP_PREFIX ".tmp-"

struct spool;

/* What the spool keeps about a message besides its text. */
struct spool_entry {
	char	 id[33];		/* 32-hex spool id */
	char	*sender;		/* "" for the null sender */
	char	*recipient;
	char	*queue;
	char	*listener;		/* "ip:port" it was received on */
	char	*hop;			/* next hop when it was spooled */
	struct timespec created;
	json_t	*meta;			/* NULL is {} */
	json_t	*headers;		/* NULL is {} */
	size_t	 size;			/* message bytes (trace header included) */
};

/*
 * Open (creating it if needed, mode 0700) the spool directory. Returns
 * NULL with a malloc'ed reason in *err.
 */
struct spool *spool_open(const char *dir, char **err);
void	 spool_close(struct spool *sp);
const char *spool_dir(const struct spool *sp);

/*
 * Write one message durably: e's fields, then trace[0..tlen) and
 * data[0..len) as the message. e->size is set. Safe from any thread.
 * Returns 0, or -1 with errno set (nothing is left behind).
 */
int	 spool_write(struct spool *sp, struct spool_entry *e,
	    const char *trace, size_t tlen, const char *data, size_t len);

/* Remove a message and sync the directory. 0, or -1 with errno. */
int	 spool_remove(struct spool *sp, const char *id);

/*
 * The message text of a spooled message (without the envelope line).
 * Returns a malloc'ed buffer and its length in *lenp, or NULL with errno.
 */
char	*spool_read_message(struct spool *sp, const char *id, size_t *lenp);

/*
 * At start: remove every temporary file (an interrupted write; each one is
 * reported as "event=spool-incomplete" in the operational log) and call fn
 * for every complete message, in id order; fn takes ownership of e (free
 * it with spool_entry_free). A file whose envelope line cannot be read is
 * reported ("event=spool-invalid") and left where it is. Returns the
 * number of complete messages; *removed receives the number of temporary
 * files removed.
 */
size_t	 spool_recover(struct spool *sp,
	    void (*fn)(void *arg, struct spool_entry *e), void *arg,
	    size_t *removed);

/*
 * `oobd queue list` while the daemon is down: call fn for every complete
 * message of the spool directory dir, in id order, changing nothing (no
 * temporary file is removed). fn owns e. Returns the number of messages;
 * *err is errno when the directory cannot be read, else 0.
 */
size_t	 spool_scan(const char *dir,
	    void (*fn)(void *arg, struct spool_entry *e), void *arg, int *err);

void	 spool_entry_free(struct spool_entry *e);

#endif
