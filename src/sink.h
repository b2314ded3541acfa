/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sink.h - the byte formats a log segment is written in: zstd (KumoMTA's
 * format, sink_zstd.c) or plain JSON lines (sink_plain.c), behind one small
 * interface so logfile.c never knows which it is driving.
 *
 * A sink turns the record bytes it is given into file bytes and hands them
 * to a writer (struct sink_out) chosen by the caller; the caller owns the
 * file descriptor, error injection and accounting. A sink never buffers more
 * than a fixed amount, so memory does not grow with traffic.
 */
#ifndef OOBD_SINK_H
#define OOBD_SINK_H

#include <stdbool.h>
#include <stddef.h>

/* Where a sink's output goes: write(ctx, p, n) returns 0 or -1 with errno. */
struct sink_out {
	int	(*write)(void *ctx, const void *p, size_t n);
	void	*ctx;
};

/* Called with successive pieces of decoded content; returns 0 to go on. */
typedef int (*sink_decode_fn)(void *arg, const void *p, size_t n);

struct sink_ops {
	const char *name;
	/* A fresh stream; level is the zstd level (0 = default). NULL on ENOMEM. */
	void	*(*create)(int level);
	/* Accept p[0..n); may pass output on to o, or keep up to a bounded amount. */
	int	 (*append)(void *s, const struct sink_out *o, const void *p,
		    size_t n);
	/*
	 * Pass everything appended so far to o in a form that decodes on its
	 * own: after flush returns 0 the bytes written so far decode to every
	 * byte appended so far, even if the stream is never finished.
	 */
	int	 (*flush)(void *s, const struct sink_out *o);
	/* End the stream (zstd: the end of the frame). No append after it. */
	int	 (*finish)(void *s, const struct sink_out *o);
	void	 (*destroy)(void *s);
	/* Does a file starting with head[0..n) look like this format? */
	bool	 (*sniff)(const unsigned char *head, size_t n);
	/*
	 * Read fd to its end and pass the decoded content to fn. Returns 1
	 * when the stream is complete and well formed, 0 when it stops early
	 * (truncated or corrupt: everything decodable before that point has
	 * been passed on), -1 with errno on a read error or when fn fails.
	 */
	int	 (*decode)(int fd, sink_decode_fn fn, void *arg);
};

extern const struct sink_ops sink_zstd;
extern const struct sink_ops sink_plain;

#endif
