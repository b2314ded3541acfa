/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sink_plain.c - segments as plain JSON lines (compression = "none").
 *
 * Appends are gathered in a fixed buffer so a commit of many small records
 * costs one write(2) (whole lines on an O_APPEND descriptor); anything
 * larger than the buffer goes straight through.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sink.h"

#define PLAIN_BUFSZ	(64 * 1024)

struct psink {
	size_t	len;
	char	buf[PLAIN_BUFSZ];
};

static void *
psink_create(int level)
{
	(void)level;
	return calloc(1, sizeof(struct psink));
}

static void
psink_destroy(void *s)
{
	free(s);
}

static int
psink_flush(void *s, const struct sink_out *o)
{
	struct psink *p = s;

	if (p->len == 0)
		return 0;
	size_t n = p->len;
	p->len = 0;	/* after a failed write the segment is abandoned */
	return o->write(o->ctx, p->buf, n);
}

static int
psink_append(void *s, const struct sink_out *o, const void *data, size_t n)
{
	struct psink *p = s;

	if (n > PLAIN_BUFSZ - p->len) {
		if (psink_flush(p, o) != 0)
			return -1;
		if (n > PLAIN_BUFSZ)
			return o->write(o->ctx, data, n);
	}
	memcpy(p->buf + p->len, data, n);
	p->len += n;
	return 0;
}

static bool
psink_sniff(const unsigned char *head, size_t n)
{
	(void)head;
	(void)n;
	return true;	/* whatever is not zstd */
}

static int
psink_decode(int fd, sink_decode_fn fn, void *arg)
{
	char buf[16384];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 1;	/* torn lines are for the caller to find */
		if (fn(arg, buf, (size_t)r) != 0)
			return -1;
	}
}

const struct sink_ops sink_plain = {
	.name = "plain",
	.create = psink_create,
	.append = psink_append,
	.flush = psink_flush,
	.finish = psink_flush,
	.destroy = psink_destroy,
	.sniff = psink_sniff,
	.decode = psink_decode,
};
