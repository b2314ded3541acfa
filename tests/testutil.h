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

#endif
