/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_common.h - small helpers shared by the libFuzzer targets: a private
 * scratch directory per process and writing fuzz input into a file there,
 * for the loaders that take file names.
 */
#ifndef OOBD_FUZZ_COMMON_H
#define OOBD_FUZZ_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static char *fuzz_dir;

static inline int
fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static inline void
fuzz_rm_tmpdir(void)
{
	if (fuzz_dir != NULL)
		nftw(fuzz_dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * A directory of this process's own under $TMPDIR (or /tmp), made once and
 * removed with everything in it when the process exits.
 */
static inline const char *
fuzz_tmpdir(void)
{
	char *dir = fuzz_dir;

	if (dir == NULL) {
		const char *t = getenv("TMPDIR");
		dir = xasprintf("%s/oobd-fuzz-XXXXXX", t && *t ? t : "/tmp");
		if (mkdtemp(dir) == NULL) {
			fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
			abort();
		}
		fuzz_dir = dir;
		atexit(fuzz_rm_tmpdir);
	}
	return dir;
}

/* Write p[0..n) to name inside fuzz_tmpdir(); returns the malloc'ed path. */
static inline char *
fuzz_write_file(const char *name, const void *p, size_t n)
{
	char *path = xasprintf("%s/%s", fuzz_tmpdir(), name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *c = p;

	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		abort();
	}
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "write %s: %s\n", path, strerror(errno));
			abort();
		}
		c += w;
		n -= (size_t)w;
	}
	close(fd);
	return path;
}

/* A NUL-terminated copy of the input (which may hold NULs itself). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
