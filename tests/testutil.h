/* SPDX-License-Identifier: Apache-2.0 */
/*
 * testutil.h - common includes and helpers for the cmocka unit tests.
 */
#ifndef OOBD_TESTUTIL_H
#define OOBD_TESTUTIL_H

#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>

#include "util.h"

/*
 * Path of a file under the shared corpus directory ($OOBD_SHARED/corpus),
 * e.g. corpus_path("kumomta/rfc3464/1.eml"). Aborts the test run when
 * OOBD_SHARED is not set. Caller frees.
 */
static inline char *
corpus_path(const char *rel)
{
	const char *shared = getenv("OOBD_SHARED");

	if (shared == NULL) {
		fprintf(stderr, "OOBD_SHARED is not set\n");
		abort();
	}
	return xasprintf("%s/corpus/%s", shared, rel);
}

/* Read a corpus file whole; fails the test when it cannot. */
static inline char *
corpus_read(const char *rel, size_t *lenp)
{
	char *path = corpus_path(rel);
	char *data = read_file(path, lenp);

	if (data == NULL)
		fail_msg("cannot read %s", path);
	free(path);
	return data;
}

/* A new private directory /tmp/oobd-NAME-XXXXXX; caller frees the path. */
static inline char *
test_mkdtemp(const char *name)
{
	char *d = xasprintf("/tmp/oobd-%s-XXXXXX", name);

	if (mkdtemp(d) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	return d;
}

static inline int
test_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove the tree at dir and free the path. */
static inline void
test_rmtree(char *dir)
{
	nftw(dir, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* Write text to dir/name; returns the path (caller frees). */
static inline char *
test_write_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

#endif
