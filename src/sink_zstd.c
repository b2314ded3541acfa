/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sink_zstd.c - segments as one zstd stream, KumoMTA's format.
 *
 * Every commit ends with ZSTD_e_flush rather than ZSTD_e_end. A flush closes
 * the current block, so once the flushed bytes are on disk a decoder reading
 * the file as it stands (the frame still open) gets every committed record;
 * that is what makes an acknowledged record readable after a crash. Ending a
 * frame per commit would also work, but it resets the compression window
 * and adds a frame header (and checksum) to every commit, so small records
 * would compress far worse, and the file would no longer be the single
 * stream KumoMTA writes. The frame is ended once, when the segment closes;
 * it carries a content checksum so `zstd -t` verifies a finished segment.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "sink.h"

struct zsink {
	ZSTD_CCtx	*cc;
	char		*out;
	size_t		 cap;
};

static void
zsink_destroy(void *p)
{
	struct zsink *z = p;

	if (z == NULL)
		return;
	ZSTD_freeCCtx(z->cc);
	free(z->out);
	free(z);
}

static void *
zsink_create(int level)
{
	struct zsink *z = calloc(1, sizeof(*z));

	if (z == NULL)
		return NULL;
	z->cap = ZSTD_CStreamOutSize();
	z->out = malloc(z->cap);
	z->cc = ZSTD_createCCtx();
	if (z->out == NULL || z->cc == NULL ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z->cc,
	    ZSTD_c_compressionLevel, level == 0 ? 3 : level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z->cc,
	    ZSTD_c_checksumFlag, 1))) {
		zsink_destroy(z);
		errno = ENOMEM;
		return NULL;
	}
	return z;
}

/*
 * Feed p[0..n) with the given directive and write whatever comes out,
 * one output buffer at a time (memory stays at ZSTD_CStreamOutSize()).
 */
static int
zsink_drive(struct zsink *z, const struct sink_out *o, const void *p,
    size_t n, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = { p, n, 0 };

	for (;;) {
		ZSTD_outBuffer ob = { z->out, z->cap, 0 };
		size_t rem = ZSTD_compressStream2(z->cc, &ob, &in, mode);

		if (ZSTD_isError(rem)) {
			errno = EIO;
			return -1;
		}
		if (ob.pos > 0 && o->write(o->ctx, z->out, ob.pos) != 0)
			return -1;
		if (mode == ZSTD_e_continue ? in.pos == in.size : rem == 0)
			return 0;
	}
}

static int
zsink_append(void *s, const struct sink_out *o, const void *p, size_t n)
{
	return zsink_drive(s, o, p, n, ZSTD_e_continue);
}

static int
zsink_flush(void *s, const struct sink_out *o)
{
	return zsink_drive(s, o, NULL, 0, ZSTD_e_flush);
}

static int
zsink_finish(void *s, const struct sink_out *o)
{
	return zsink_drive(s, o, NULL, 0, ZSTD_e_end);
}

static bool
zsink_sniff(const unsigned char *head, size_t n)
{
	static const unsigned char magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };

	/* A file cut inside the magic number is still a (broken) zstd file. */
	return n > 0 && memcmp(head, magic, n < 4 ? n : 4) == 0;
}

/*
 * One decoding pass over fd. ZSTD_decompressStream reports an error without
 * the output it produced earlier in the same call, so the good blocks just
 * before a corrupt one could be lost. Hence two passes: the first reads in
 * large chunks; if it hits an error, the second decodes again and, from
 * the start of the failing call (slow_from) on, feeds one byte per call, so
 * every block before the error is handed over; output the first pass had
 * already passed on (skip) is not repeated.
 */
struct zpass {
	off_t		slow_from;
	uint64_t	skip;
	off_t		fail_at;	/* out: input offset of the failing call */
	uint64_t	out;		/* out: bytes decoded */
};

static int
zdecode_pass(ZSTD_DCtx *dc, int fd, char *inb, size_t incap, char *outb,
    size_t outcap, struct zpass *p, sink_decode_fn fn, void *arg)
{
	size_t last = 1;	/* 0 only right after a frame ended */
	off_t off = 0;
	bool any = false;

	ZSTD_DCtx_reset(dc, ZSTD_reset_session_only);
	p->out = 0;
	for (;;) {
		ssize_t r = pread(fd, inb, incap, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		any = true;
		for (size_t pos = 0; pos < (size_t)r; ) {
			off_t at = off + (off_t)pos;
			size_t step = (size_t)r - pos;
			ZSTD_inBuffer in;
			ZSTD_outBuffer ob;

			if (at >= p->slow_from)
				step = 1;
			else if ((off_t)step > p->slow_from - at)
				step = (size_t)(p->slow_from - at);
			in = (ZSTD_inBuffer){ inb + pos, step, 0 };
			do {
				ob = (ZSTD_outBuffer){ outb, outcap, 0 };
				last = ZSTD_decompressStream(dc, &ob, &in);
				if (ZSTD_isError(last)) {
					p->fail_at = at;
					return 0;
				}
				/* Pass on only what an earlier pass did not. */
				size_t from = p->out >= p->skip ? 0 :
				    (size_t)(p->skip - p->out < ob.pos ?
				    p->skip - p->out : ob.pos);
				p->out += ob.pos;
				if (ob.pos > from &&
				    fn(arg, outb + from, ob.pos - from) != 0)
					return -1;
			} while (in.pos < in.size || ob.pos == ob.size);
			pos += step;
		}
		off += r;
	}
	/* Complete only if the input ended exactly at the end of a frame. */
	return any && last == 0;
}

static int
zsink_decode(int fd, sink_decode_fn fn, void *arg)
{
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	size_t incap = ZSTD_DStreamInSize(), outcap = ZSTD_DStreamOutSize();
	char *inb = malloc(incap), *outb = malloc(outcap);
	struct zpass p = { .slow_from = INT64_MAX, .skip = 0 };
	int rc;

	if (dc == NULL || inb == NULL || outb == NULL) {
		errno = ENOMEM;
		rc = -1;
	} else if ((rc = zdecode_pass(dc, fd, inb, incap, outb, outcap, &p,
	    fn, arg)) == 0) {
		p.slow_from = p.fail_at;
		p.skip = p.out;
		rc = zdecode_pass(dc, fd, inb, incap, outb, outcap, &p, fn, arg);
		if (rc > 0)
			rc = 0;	/* cannot happen; the input was corrupt */
	}
	ZSTD_freeDCtx(dc);
	free(inb);
	free(outb);
	return rc;
}

const struct sink_ops sink_zstd = {
	.name = "zstd",
	.create = zsink_create,
	.append = zsink_append,
	.flush = zsink_flush,
	.finish = zsink_finish,
	.destroy = zsink_destroy,
	.sniff = zsink_sniff,
	.decode = zsink_decode,
};
