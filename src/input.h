/* SPDX-License-Identifier: Apache-2.0 */
/*
 * input.h - the inputs of `oobd parse`: message files, Maildirs, mbox
 * files and standard input.
 */
#ifndef OOBD_INPUT_H
#define OOBD_INPUT_H

#include <stddef.h>

/*
 * Called once per message found. name identifies it in errors: the file
 * path, "path:N" for the N-th (1-based) message of an mbox, "-" or "-:N"
 * for standard input. data is the message as stored (for mbox: the "From "
 * line removed and ">From " unescaped). Return 0 to go on, or -1 when the
 * message failed (input_each then reports failure but goes on).
 */
typedef int (*input_msg_fn)(void *arg, const char *name, const char *data,
	    size_t len);
/* Called with a one-line description when an input cannot be read. */
typedef void (*input_err_fn)(void *arg, const char *name, const char *reason);

/* The daemon's default [listener] max_message_size. */
#define INPUT_MAX_SIZE_DEFAULT	20000000

struct input_opts {
	input_msg_fn fn;
	input_err_fn errfn;
	/*
	 * The largest message passed to fn; a larger one is reported to
	 * errfn ("larger than N bytes (--max-size)") and skipped. Standard
	 * input and other inputs that are not regular files (pipes, FIFOs,
	 * character devices) are read up to max_size bytes in all.
	 */
	size_t	 max_size;
};

/*
 * Visit every message of path, calling o->fn for each: "-" is standard
 * input; a directory is a Maildir (messages of cur/ then new/, each sorted
 * by name) or, without cur/ and new/, a plain directory whose files
 * (sorted by name, dot files and subdirectories skipped) are read as below;
 * in either, an entry that is not a regular file (a FIFO, a device) is
 * reported to o->errfn and skipped without waiting on it; a file whose
 * first line starts with "From " is an mbox; any other file is one
 * message.
 * CRLF, LF and CR-only line ends are all recognised when splitting an
 * mbox. Returns 0 when every message was read and every callback returned
 * 0, else -1.
 */
int	 input_each(const char *path, const struct input_opts *o, void *arg);

/*
 * Split an mbox held in memory into messages and call fn for each; name is
 * the base for "name:N". Exposed for tests. Returns as input_each.
 */
int	 input_mbox(const char *name, const char *data, size_t len,
	    const struct input_opts *o, void *arg);

#endif
