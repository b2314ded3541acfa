/* SPDX-License-Identifier: Apache-2.0 */
/*
 * input.c - the inputs of `oobd parse`: message files, Maildirs, mbox
 * files and standard input, each turned into a sequence of messages.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input.h"
#include "util.h"

#define FROM_LINE	"From "
#define FROM_LEN	(sizeof(FROM_LINE) - 1)

/*
 * Length of the line starting at data[pos] up to its terminator, and in
 * *eol the terminator's length: 2 for CRLF, 1 for LF or a lone CR, 0 for
 * an unterminated last line.
 */
static size_t
line_len(const char *data, size_t len, size_t pos, size_t *eol)
{
	size_t i;

	for (i = pos; i < len; i++) {
		if (data[i] == '\n') {
			*eol = 1;
			return i - pos;
		}
		if (data[i] == '\r') {
			*eol = (i + 1 < len && data[i + 1] == '\n') ? 2 : 1;
			return i - pos;
		}
	}
	*eol = 0;
	return len - pos;
}

static bool
is_from_line(const char *p, size_t n)
{
	return n >= FROM_LEN && memcmp(p, FROM_LINE, FROM_LEN) == 0;
}

/* True when the line p[0..n) matches ^>+From (mboxrd quoting). */
static bool
is_quoted_from(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] == '>')
		i++;
	return i > 0 && is_from_line(p + i, n - i);
}

static void
too_large(const struct input_opts *o, void *arg, const char *name)
{
	char *why = xasprintf("larger than %zu bytes (--max-size)",
	    o->max_size);

	o->errfn(arg, name, why);
	free(why);
}

/*
 * Pass one message of an mbox to fn, with one '>' removed from each line
 * matching ^>+From . The bytes are copied only when some line needs it.
 */
static int
mbox_emit(const char *name, size_t n, const char *data, size_t len,
    const struct input_opts *o, void *arg)
{
	struct buf b = { 0 };
	size_t pos, ll, eol;
	bool quoted = false;
	char *label;
	int rc;

	for (pos = 0; pos < len && !quoted; pos += ll + eol) {
		ll = line_len(data, len, pos, &eol);
		quoted = is_quoted_from(data + pos, ll);
	}
	label = xasprintf("%s:%zu", name, n);
	if (len > o->max_size) {
		too_large(o, arg, label);
		free(label);
		return -1;
	}
	if (!quoted) {
		rc = o->fn(arg, label, data, len);
		free(label);
		return rc;
	}
	buf_reserve(&b, len + 1);
	for (pos = 0; pos < len; pos += ll + eol) {
		ll = line_len(data, len, pos, &eol);
		if (is_quoted_from(data + pos, ll))
			buf_append(&b, data + pos + 1, ll + eol - 1);
		else
			buf_append(&b, data + pos, ll + eol);
	}
	rc = o->fn(arg, label, b.data, b.len);
	buf_free(&b);
	free(label);
	return rc;
}

/*
 * A message starts after a "From " line that opens the data or follows an
 * empty line. That empty line is the separator written by the mbox writer,
 * so it is not part of the message before it; likewise one empty line at
 * the very end of the data. Bytes before the first "From " line, if any,
 * are passed on as a message of their own.
 */
int
input_mbox(const char *name, const char *data, size_t len,
    const struct input_opts *o, void *arg)
{
	size_t pos = 0, ll, eol;
	size_t start = 0;	/* first byte of the current message */
	size_t blank = 0;	/* start of the last line, when it was empty */
	bool prev_empty = true;	/* the data start counts as after a blank */
	bool in_msg = false;
	size_t n = 0;
	int rc = 0;

	while (pos < len) {
		ll = line_len(data, len, pos, &eol);
		if (prev_empty && is_from_line(data + pos, ll)) {
			size_t end = pos == 0 ? 0 : blank;

			if (in_msg || end > 0) {
				if (mbox_emit(name, ++n, data + start,
				    end - start, o, arg) != 0)
					rc = -1;
			}
			in_msg = true;
			start = pos + ll + eol;
			prev_empty = false;
		} else {
			prev_empty = ll == 0 && eol > 0;
			if (prev_empty)
				blank = pos;
		}
		pos += ll + eol;
	}
	if (in_msg || len > 0) {
		size_t end = len;

		if (prev_empty && blank >= start)
			end = blank;
		if (mbox_emit(name, ++n, data + start, end - start, o,
		    arg) != 0)
			rc = -1;
	}
	return rc;
}

/*
 * One file or standard input already in memory: an mbox (split is true
 * and it starts with a "From " line), else one message.
 */
static int
input_data(const char *name, const char *data, size_t len, bool split,
    const struct input_opts *o, void *arg)
{
	if (split && is_from_line(data, len))
		return input_mbox(name, data, len, o, arg);
	if (len > o->max_size) {
		too_large(o, arg, name);
		return -1;
	}
	return o->fn(arg, name, data, len);
}

/*
 * Read fd to its end, or to more than limit bytes: then *over is set and
 * what was read is dropped (NULL returned, errno 0). NULL with errno set
 * on a read error. size, when not 0, is what fstat says the file holds:
 * the buffer is made that large at once rather than grown by doubling,
 * which would cost up to twice the file at the peak.
 */
static char *
read_fd(int fd, size_t limit, size_t size, size_t *lenp, bool *over)
{
	struct buf b = { 0 };
	char chunk[65536];
	ssize_t n;

	*over = false;
	if (size > 0 && size <= limit)
		buf_reserve(&b, size);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			buf_free(&b);
			errno = saved;
			return NULL;
		}
		if ((size_t)n > limit - b.len) {
			*over = true;
			buf_free(&b);
			errno = 0;
			return NULL;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	*lenp = b.len;
	return buf_steal(&b);
}

/*
 * The messages of an open input. A regular file is read whole when it is
 * an mbox (each of its messages then checked against max_size), else
 * only when it is within max_size; anything else (standard input from a
 * pipe, a FIFO, a character device such as /dev/zero) is a stream, read up
 * to max_size bytes in all, so no input can take more memory than that or
 * keep oobd reading for ever.
 */
static int
input_fd(int fd, const char *name, bool split, const struct input_opts *o,
    void *arg)
{
	struct stat st;
	size_t len, limit = o->max_size;
	bool over;
	char *data;
	int rc;

	if (fstat(fd, &st) != 0) {
		o->errfn(arg, name, strerror(errno));
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		char head[FROM_LEN];
		ssize_t n = split ? pread(fd, head, sizeof(head), 0) : 0;
		if (n == (ssize_t)sizeof(head) && is_from_line(head, FROM_LEN))
			limit = SIZE_MAX;	/* an mbox: checked per message */
		else if ((uintmax_t)st.st_size > o->max_size) {
			too_large(o, arg, name);
			return -1;
		}
	}
	size_t size = S_ISREG(st.st_mode) && (uintmax_t)st.st_size < SIZE_MAX ?
	    (size_t)st.st_size : 0;
	if ((data = read_fd(fd, limit, size, &len, &over)) == NULL) {
		if (over)
			too_large(o, arg, name);
		else
			o->errfn(arg, name, strerror(errno));
		return -1;
	}
	rc = input_data(name, data, len, split, o, arg);
	free(data);
	return rc;
}

/*
 * One file. In a Maildir (regular_only) anything but a regular file is
 * refused, and opened without blocking: a FIFO there would otherwise wait
 * for a writer for ever.
 */
static int
input_file(const char *path, const struct input_opts *o, void *arg,
    bool split, bool regular_only)
{
	struct stat st;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC |
	    (regular_only ? O_NONBLOCK : 0))) < 0) {
		o->errfn(arg, path, strerror(errno));
		return -1;
	}
	if (regular_only && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		o->errfn(arg, path, "not a regular file");
		close(fd);
		return -1;
	}
	rc = input_fd(fd, path, split, o, arg);
	close(fd);
	return rc;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The messages of one Maildir subdirectory (sub NULL: of dir itself, a
 * plain directory, whose files may be mbox files too), sorted by name.
 * Returns 0, -1 after reporting a failure, or 1 when the subdirectory does
 * not exist.
 */
static int
maildir_sub(const char *dir, const char *sub, const struct input_opts *o,
    void *arg)
{
	char *path = sub != NULL ? xasprintf("%s/%s", dir, sub) : xstrdup(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if ((d = opendir(path)) == NULL) {
		if (errno == ENOENT) {
			free(path);
			return 1;
		}
		o->errfn(arg, path, strerror(errno));
		free(path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char *file = xasprintf("%s/%s", path, names[i]);
		struct stat st;

		/*
		 * Maildir writers leave nothing but message files here:
		 * subdirectories are skipped, and anything else that is not a
		 * regular file (a FIFO, a device) is refused.
		 */
		if (stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
			free(file);
			free(names[i]);
			continue;
		}
		if (input_file(file, o, arg, sub == NULL, true) != 0)
			rc = -1;
		free(file);
		free(names[i]);
	}
	free(names);
	free(path);
	return rc;
}

static int
input_maildir(const char *dir, const struct input_opts *o, void *arg)
{
	int cur, new;

	cur = maildir_sub(dir, "cur", o, arg);
	new = maildir_sub(dir, "new", o, arg);
	/* Neither cur/ nor new/: a plain directory of message files. */
	if (cur == 1 && new == 1)
		return maildir_sub(dir, NULL, o, arg) == 0 ? 0 : -1;
	return (cur < 0 || new < 0) ? -1 : 0;
}

int
input_each(const char *path, const struct input_opts *o, void *arg)
{
	struct stat st;

	if (strcmp(path, "-") == 0)
		return input_fd(STDIN_FILENO, "-", true, o, arg);
	if (stat(path, &st) != 0) {
		o->errfn(arg, path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return input_maildir(path, o, arg);
	return input_file(path, o, arg, true, false);
}
