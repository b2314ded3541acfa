/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_util.c - array growth, strings, UTF-8 repair, RFC 3339 times, ids,
 * sizes and durations.
 */
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uuid/uuid.h>

/*
 * xgrow: every element kept, room for element n after each call, and the
 * block resized only at the doublings (malloc_usable_size changes about
 * log2(n) times; growing by one element it would change on nearly every
 * call past the allocator's small size classes).
 */
static void
test_xgrow(void **state)
{
	(void)state;
	const size_t total = 100000;
	uint32_t *v = NULL;
	size_t n = 0, resizes = 0, usable = 0;

	for (size_t i = 0; i < total; i++) {
		uint32_t *before = v;
		v = xgrow(v, n, sizeof(*v));
		/* Between the doublings the same block comes back. */
		if (n > 4 && (n & (n - 1)) != 0)
			assert_ptr_equal(v, before);
		assert_true(malloc_usable_size(v) >= (n + 1) * sizeof(*v));
		if (malloc_usable_size(v) != usable) {
			usable = malloc_usable_size(v);
			resizes++;
		}
		v[n++] = (uint32_t)i * 7u;
	}
	for (size_t i = 0; i < total; i++)
		assert_int_equal(v[i], (uint32_t)i * 7u);
	/* 4, 8, ..., 131072 elements: 16 blocks. */
	assert_in_range(resizes, 2, 17);

	/* Removing elements keeps the implied capacity valid. */
	n = 9;
	n -= 4;
	for (size_t i = 0; i < 20; i++) {
		v = xgrow(v, n, sizeof(*v));
		v[n++] = 1000u + (uint32_t)i;
	}
	assert_int_equal(n, 25);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(v[i], (uint32_t)i * 7u);
	for (size_t i = 5; i < 25; i++)
		assert_int_equal(v[i], 1000u + (uint32_t)(i - 5));
	free(v);

	/* The first call allocates room for 4. */
	char *c = xgrow(NULL, 0, 1);
	assert_true(malloc_usable_size(c) >= 4);
	free(c);
}

/* Run xgrow(NULL, n, size) in a child: it must abort, saying why. */
static void
assert_xgrow_aborts(size_t n, size_t size)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		signal(SIGABRT, SIG_DFL);
		(void)xgrow(NULL, n, size);
		_exit(0);
	}
	close(fds[1]);
	char out[512];
	size_t len = 0;
	ssize_t r;
	while (len < sizeof(out) - 1 &&
	    (r = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	char want[200];
	snprintf(want, sizeof(want), "oobd: fatal: array of %zu elements of "
	    "%zu bytes too large\n", n, size);
	assert_non_null(strstr(out, want));
}

static void
test_xgrow_overflow(void **state)
{
	(void)state;
	/* Doubling the count overflows; doubling the bytes overflows. */
	assert_xgrow_aborts((SIZE_MAX >> 1) + 1, 1);
	assert_xgrow_aborts((size_t)1 << 40, (size_t)1 << 24);
}

static void
test_utf8_lossy(void **state)
{
	(void)state;
	char *s = utf8_lossy("ok \xc3\xa9", 5);
	assert_string_equal(s, "ok \xc3\xa9");
	free(s);
	/* Each maximal invalid subpart becomes one U+FFFD, as in Rust. */
	s = utf8_lossy("a\x80\xff" "b", 4);
	assert_string_equal(s, "a\xef\xbf\xbd\xef\xbf\xbd" "b");
	free(s);
	s = utf8_lossy("\xe2\x82", 2);		/* truncated 3-byte sequence */
	assert_string_equal(s, "\xef\xbf\xbd");
	free(s);
	s = utf8_lossy("\xed\xa0\x80", 3);	/* surrogate: 3 subparts */
	assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	free(s);
	s = utf8_lossy("a\0b", 3);
	assert_string_equal(s, "a\xef\xbf\xbd" "b");
	free(s);
	/* Valid runs around bad bytes are copied whole. */
	s = utf8_lossy("plain ascii \xc3\xa9 then\xc3 more"
	    "\xf0\x9f\x98\x80!", 30);
	assert_string_equal(s, "plain ascii \xc3\xa9 then\xef\xbf\xbd more"
	    "\xf0\x9f\x98\x80!");
	free(s);
	s = utf8_lossy("", 0);
	assert_string_equal(s, "");
	free(s);
	assert_true(utf8_valid("ascii \xc3\xa9", 8));
	assert_false(utf8_valid("ascii \xc3", 7));
	assert_true(utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_false(utf8_valid("\xc0\xaf", 2));
	assert_false(utf8_valid("\xf4\x90\x80\x80", 4));
}

/* A bad byte or a NUL at every offset of a long ASCII run (the runs are
 * read eight bytes at a time), and a valid two-byte sequence across the
 * eight-byte steps. */
static void
test_utf8_offsets(void **state)
{
	(void)state;
	const char *bad[] = { "\x80", "\xc3", "\xff", "" };

	for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++)
		for (size_t k = 0; k < 20; k++) {
			char in[21], want[24];
			memset(in, 'a', 20);
			in[20] = '\0';
			in[k] = bad[b][0];
			memset(want, 'a', k);
			memcpy(want + k, "\xef\xbf\xbd", 3);
			memset(want + k + 3, 'a', 19 - k);
			want[22] = '\0';
			assert_int_equal(utf8_valid(in, 20), b == 3);
			char *s = utf8_lossy(in, 20);
			assert_string_equal(s, want);
			free(s);
		}
	for (size_t k = 0; k < 19; k++) {
		char in[21];
		memset(in, 'a', 20);
		in[20] = '\0';
		memcpy(in + k, "\xc3\xa9", 2);
		assert_true(utf8_valid(in, 20));
		char *s = utf8_lossy(in, 20);
		assert_string_equal(s, in);
		free(s);
		in[k + 1] = 'a';	/* the lead byte alone */
		assert_false(utf8_valid(in, 20));
	}
}

static void
test_rfc3339(void **state)
{
	char out[48];

	(void)state;
	format_rfc3339(out, sizeof(out), 773615749, 0);
	assert_string_equal(out, "1994-07-07T21:15:49Z");
	format_rfc3339(out, sizeof(out), 1738168611, 440000000);
	assert_string_equal(out, "2025-01-29T16:36:51.440Z");
	format_rfc3339(out, sizeof(out), 1738168611, 440526000);
	assert_string_equal(out, "2025-01-29T16:36:51.440526Z");
	format_rfc3339(out, sizeof(out), 1738168611, 440526026);
	assert_string_equal(out, "2025-01-29T16:36:51.440526026Z");
	format_rfc3339(out, sizeof(out), 1738168611, 1);
	assert_string_equal(out, "2025-01-29T16:36:51.000000001Z");
	/* The first and last seconds of years 0 and 9999, and beyond. */
	format_rfc3339(out, sizeof(out), -62167219200, 0);
	assert_string_equal(out, "0000-01-01T00:00:00Z");
	format_rfc3339(out, sizeof(out), 253402300799, 999000000);
	assert_string_equal(out, "9999-12-31T23:59:59.999Z");
	format_rfc3339(out, sizeof(out), 253402300800, 0);
	assert_string_equal(out, "10000-01-01T00:00:00Z");
	format_rfc3339(out, sizeof(out), 253402300800, 5);
	assert_string_equal(out, "10000-01-01T00:00:00.000000005Z");
	format_rfc3339(out, sizeof(out), 253402300800, 440000000);
	assert_string_equal(out, "10000-01-01T00:00:00.440Z");
	format_rfc3339(out, sizeof(out), 253402300800, 440526000);
	assert_string_equal(out, "10000-01-01T00:00:00.440526Z");
	/* Cut to the buffer, as snprintf would. */
	format_rfc3339(out, 11, 1738168611, 0);
	assert_string_equal(out, "2025-01-29");
}

static void
test_spool_id(void **state)
{
	char id[33], uuid_text[37];
	struct timespec created, before, after;
	uuid_t u;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &before);
	spool_id_new(id, &created);
	clock_gettime(CLOCK_REALTIME, &after);
	assert_int_equal(strlen(id), 32);
	assert_int_equal(strspn(id, "0123456789abcdef"), 32);
	/* Version nibble 1: time-based. */
	assert_int_equal(id[12], '1');
	snprintf(uuid_text, sizeof(uuid_text), "%.8s-%.4s-%.4s-%.4s-%.12s",
	    id, id + 8, id + 12, id + 16, id + 20);
	assert_int_equal(uuid_parse(uuid_text, u), 0);
	assert_true(created.tv_sec >= before.tv_sec - 1);
	assert_true(created.tv_sec <= after.tv_sec + 1);
	assert_int_equal(created.tv_nsec % 1000, 0);

	char v4[37];
	uuid4_new(v4);
	assert_int_equal(strlen(v4), 36);
	assert_int_equal(v4[14], '4');
}

#define ID_THREADS	4
#define IDS_PER_THREAD	5000

static void *
make_ids(void *arg)
{
	char (*ids)[33] = arg;

	for (int i = 0; i < IDS_PER_THREAD; i++)
		spool_id_new(ids[i], NULL);
	return NULL;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Ids drawn on several threads at once are all distinct UUID v1s. */
static void
test_spool_id_threads(void **state)
{
	static char ids[ID_THREADS * IDS_PER_THREAD][33];
	pthread_t t[ID_THREADS];

	(void)state;
	for (int i = 0; i < ID_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, make_ids,
		    ids[i * IDS_PER_THREAD]), 0);
	for (int i = 0; i < ID_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	/* One thread's ids follow each other in time. */
	for (int i = 1; i < IDS_PER_THREAD; i++) {
		char a[33], b[33];
		/* time_hi, time_mid, time_low: the order of significance */
		snprintf(a, sizeof(a), "%.4s%.4s%.8s", ids[i - 1] + 12,
		    ids[i - 1] + 8, ids[i - 1]);
		snprintf(b, sizeof(b), "%.4s%.4s%.8s", ids[i] + 12,
		    ids[i] + 8, ids[i]);
		assert_true(strcmp(a, b) < 0);
	}
	for (int i = 0; i < ID_THREADS * IDS_PER_THREAD; i++) {
		assert_int_equal(ids[i][12], '1');
		assert_memory_equal(ids[i] + 16, ids[0] + 16, 16);
	}
	qsort(ids, ID_THREADS * IDS_PER_THREAD, sizeof(ids[0]), id_cmp);
	for (int i = 1; i < ID_THREADS * IDS_PER_THREAD; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
}

static void
test_sizes(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_size("20MB", &v), 0);
	assert_int_equal(v, 20000000);
	assert_int_equal(parse_size("1GB", &v), 0);
	assert_int_equal(v, 1000000000);
	assert_int_equal(parse_size("512 KiB", &v), 0);
	assert_int_equal(v, 524288);
	assert_int_equal(parse_size("1000", &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(parse_size("1.5 mb", &v), 0);
	assert_int_equal(v, 1500000);
	assert_int_equal(parse_size("", &v), -1);
	assert_int_equal(parse_size("MB", &v), -1);
	assert_int_equal(parse_size("10 parsecs", &v), -1);
	assert_int_equal(parse_size("-1", &v), -1);
}

static void
test_durations(void **state)
{
	double d;

	(void)state;
	assert_int_equal(parse_duration("5 minutes", &d), 0);
	assert_true(d == 300);
	assert_int_equal(parse_duration("30s", &d), 0);
	assert_true(d == 30);
	assert_int_equal(parse_duration("1h 30m", &d), 0);
	assert_true(d == 5400);
	assert_int_equal(parse_duration("250ms", &d), 0);
	assert_true(d == 0.25);
	assert_int_equal(parse_duration("2 days", &d), 0);
	assert_true(d == 172800);
	assert_int_equal(parse_duration("soon", &d), -1);
	assert_int_equal(parse_duration("", &d), -1);
	assert_int_equal(parse_duration("5 fortnights", &d), -1);
}

static void
test_strings(void **state)
{
	(void)state;
	assert_true(str_ieq("Content-Type", "content-TYPE"));
	assert_false(str_ieq("Content-Type", "Content-Typ"));
	assert_true(str_iprefix("X-KumoRef", "x-"));
	assert_false(str_iprefix("X", "x-"));
	char *t = str_trim_dup("  a b \t\n", 8);
	assert_string_equal(t, "a b");
	free(t);
	char s[] = "MiXeD";
	assert_string_equal(str_lower(s), "mixed");

	struct buf b = { 0 };
	buf_printf(&b, "%d-%s", 42, "x");
	buf_putc(&b, '!');
	assert_int_equal(b.len, 5);
	char *out = buf_steal(&b);
	assert_string_equal(out, "42-x!");
	free(out);
	assert_null(b.data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xgrow),
		cmocka_unit_test(test_xgrow_overflow),
		cmocka_unit_test(test_utf8_lossy),
		cmocka_unit_test(test_utf8_offsets),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_spool_id),
		cmocka_unit_test(test_spool_id_threads),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
