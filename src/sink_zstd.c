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

static int
zsink_decode(int fd, sink_decode_fn fn, void *arg)
{
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	size_t incap = ZSTD_DStreamInSize(), outcap = ZSTD_DStreamOutSize();
	char *inb = malloc(incap), *outb = malloc(outcap);
	size_t last = 1;	/* 0 only right after a frame ended */
	bool any = false;
	int rc = 0;

	if (dc == NULL || inb == NULL || outb == NULL) {
		errno = ENOMEM;
		rc = -1;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, inb, incap);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -1;
			goto out;
		}
		if (r == 0)
			break;
		any = true;
		ZSTD_inBuffer in = { inb, (size_t)r, 0 };
		ZSTD_outBuffer ob;
		do {
			ob = (ZSTD_outBuffer){ outb, outcap, 0 };
			last = ZSTD_decompressStream(dc, &ob, &in);
			if (ZSTD_isError(last)) {
				rc = 0;		/* corrupt: keep what came before */
				goto out;
			}
			if (ob.pos > 0 && fn(arg, outb, ob.pos) != 0) {
				rc = -1;
				goto out;
			}
		} while (in.pos < in.size || ob.pos == ob.size);
	}
	/* Complete only if the input ended exactly at the end of a frame. */
	rc = any && last == 0;
out:
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
