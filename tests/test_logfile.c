/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_logfile.c - segments, rotation, group commit, repair and failures.
 *
 * Every test works in its own mkdtemp directory under /tmp and reads the
 * segments back two ways: with libzstd here and with the zstdcat command.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zstd.h>

#include "logfile.h"

/* ---- helpers ---- */

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted non-dot names in dir; *np their count. Free with free_names. */
static char **
list_files(const char *dir, size_t *np)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), strp_cmp);
	*np = n;
	return v;
}

static void
free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
is_readonly(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
	return (st.st_mode & 0222) == 0;
}

/*
 * Decode one segment with libzstd (or read it, if plain). *complete tells
 * whether a zstd file ends exactly at the end of a frame.
 */
static char *
decode_file(const char *dir, const char *name, size_t *lenp, bool *complete)
{
	char *p = xasprintf("%s/%s", dir, name);
	size_t n;
	char *raw = read_file(p, &n);
	struct buf out = { 0 };

	free(p);
	assert_non_null(raw);
	*complete = true;
	if (n >= 4 && memcmp(raw, "\x28\xb5\x2f\xfd", 4) == 0) {
		ZSTD_DCtx *dc = ZSTD_createDCtx();
		ZSTD_inBuffer in = { raw, n, 0 };
		char ob[65536];
		size_t last = 1;
		ZSTD_outBuffer o;

		do {
			o = (ZSTD_outBuffer){ ob, sizeof(ob), 0 };
			last = ZSTD_decompressStream(dc, &o, &in);
			if (ZSTD_isError(last))
				fail_msg("%s: %s", name, ZSTD_getErrorName(last));
			buf_append(&out, ob, o.pos);
		} while (in.pos < in.size || o.pos == o.size);
		*complete = last == 0;
		ZSTD_freeDCtx(dc);
	} else
		buf_append(&out, raw, n);
	free(raw);
	*lenp = out.len;
	return out.data ? buf_steal(&out) : xstrdup("");
}

/* All segments of dir, in name order, each required to be complete. */
static char *
read_dir(const char *dir, size_t *lenp)
{
	size_t n;
	char **names = list_files(dir, &n);
	struct buf all = { 0 };

	for (size_t i = 0; i < n; i++) {
		size_t len;
		bool complete;
		char *d = decode_file(dir, names[i], &len, &complete);

		assert_true(complete);
		buf_append(&all, d, len);
		free(d);
	}
	free_names(names, n);
	*lenp = all.len;
	return all.data ? buf_steal(&all) : xstrdup("");
}

/* The same through the zstdcat command. */
static char *
zstdcat_dir(const char *dir, size_t *lenp)
{
	size_t n;
	char **names = list_files(dir, &n);
	struct buf cmd = { 0 }, out = { 0 };
	char chunk[65536];
	size_t r;

	buf_puts(&cmd, "zstdcat -q --");
	for (size_t i = 0; i < n; i++)
		buf_printf(&cmd, " '%s/%s'", dir, names[i]);
	free_names(names, n);
	FILE *f = popen(cmd.data, "r");
	assert_non_null(f);
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&out, chunk, r);
	assert_int_equal(pclose(f), 0);
	buf_free(&cmd);
	*lenp = out.len;
	return out.data ? buf_steal(&out) : xstrdup("");
}

static bool
zstd_test(const char *dir, const char *name)
{
	char *cmd = xasprintf("zstd -q -t -- '%s/%s'", dir, name);
	int rc = system(cmd);

	free(cmd);
	return rc == 0;
}

static bool
name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len != 15 && len != 19 && len != 22 && len != 25)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (i == 8 ? s[i] != '-' : i == 15 ? s[i] != '.' :
		    (s[i] < '0' || s[i] > '9'))
			return false;
	}
	/* The shortest exact fraction: never ends in three zeros. */
	return len == 15 || strcmp(s + len - 3, "000") != 0;
}

/* A record of exactly len bytes (without the newline). */
static char *
record(int id, size_t len)
{
	char *r = xasprintf("{\"type\":\"Reception\",\"id\":\"%08d\",\"pad\":\"", id);
	size_t n = strlen(r);

	assert_true(len >= n + 2);
	r = xrealloc(r, len + 1);
	memset(r + n, 'x', len - n - 2);
	memcpy(r + len - 2, "\"}", 3);
	return r;
}

static struct logfile *
open_log(const char *dir, bool compress, bool fsync_on, uint64_t max,
    double dur)
{
	struct logfile_config c = {
		.dir = dir, .compress = compress, .level = 0,
		.max_file_size = max, .max_segment_duration = dur,
		.fsync = fsync_on,
	};
	char *err = NULL;
	struct logfile *lf = logfile_open(&c, &err);

	if (lf == NULL)
		fail_msg("logfile_open: %s", err ? err : "?");
	return lf;
}

static int
commit1(struct logfile *lf, const char *line)
{
	const char *v[1] = { line };

	return logfile_commit(lf, v, 1);
}

/* Count the lines of b and require each to be a JSON object. */
static size_t
check_json_lines(const char *b, size_t len)
{
	size_t n = 0;

	assert_true(len == 0 || b[len - 1] == '\n');
	for (const char *p = b; p < b + len; ) {
		const char *nl = memchr(p, '\n', (size_t)(b + len - p));
		json_error_t je;
		json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);

		if (j == NULL || !json_is_object(j))
			fail_msg("invalid line: %.*s", (int)(nl - p), p);
		json_decref(j);
		n++;
		p = nl + 1;
	}
	return n;
}

/* ---- naming ---- */

static void
test_name_format(void **state)
{
	char b[32];
	(void)state;

	logfile_format_name(b, sizeof(b), 1757675281, 440526026);
	assert_string_equal(b, "20250912-110801.440526026");
	logfile_format_name(b, sizeof(b), 1757675281, 440526000);
	assert_string_equal(b, "20250912-110801.440526");
	logfile_format_name(b, sizeof(b), 1757675281, 440000000);
	assert_string_equal(b, "20250912-110801.440");
	logfile_format_name(b, sizeof(b), 1757675281, 0);
	assert_string_equal(b, "20250912-110801");
	logfile_format_name(b, sizeof(b), 0, 1);
	assert_string_equal(b, "19700101-000000.000000001");
	logfile_format_name(b, sizeof(b), 0, 1000);
	assert_string_equal(b, "19700101-000000.000001");
	logfile_format_name(b, sizeof(b), 0, 1000000);
	assert_string_equal(b, "19700101-000000.001");
}

/* ---- round trips ---- */

static void
test_zstd_roundtrip(void **state)
{
	char *top = test_mkdtemp("logfile");
	char *dir = xasprintf("%s/a/b/logs", top);	/* mkdir -p */
	const char *b1[] = { "{\"type\":\"Reception\",\"id\":\"1\"}" };
	const char *b2[] = {
		"{\"type\":\"OOB\",\"content\":\"caf\xc3\xa9 \\u0000 \\\"q\\\"\"}",
		"{\"type\":\"Feedback\",\"x\":[1,2,{}]}",
		"{}",
	};
	const char *expect =
	    "{\"type\":\"Reception\",\"id\":\"1\"}\n"
	    "{\"type\":\"OOB\",\"content\":\"caf\xc3\xa9 \\u0000 \\\"q\\\"\"}\n"
	    "{\"type\":\"Feedback\",\"x\":[1,2,{}]}\n"
	    "{}\n";
	struct logfile_stats st;
	time_t before = time(NULL), after;
	size_t n, len;
	bool complete;
	(void)state;

	struct logfile *lf = open_log(dir, true, true, 0, 0);
	assert_true(logfile_healthy(lf));
	char **names = list_files(dir, &n);
	assert_int_equal(n, 0);		/* created lazily */
	free_names(names, n);

	assert_int_equal(logfile_commit(lf, b1, 1), 0);
	assert_int_equal(logfile_commit(lf, b2, 3), 0);
	after = time(NULL);
	names = list_files(dir, &n);
	assert_int_equal(n, 1);
	assert_true(name_ok(names[0]));
	char lo[32], hi[32];
	logfile_format_name(lo, sizeof(lo), before, 0);
	logfile_format_name(hi, sizeof(hi), after + 1, 0);
	assert_true(strcmp(names[0], lo) >= 0 && strcmp(names[0], hi) < 0);

	/* Open segment: writable, and the flushed bytes already decode. */
	assert_false(is_readonly(dir, names[0]));
	char *d = decode_file(dir, names[0], &len, &complete);
	assert_false(complete);
	assert_int_equal(len, strlen(expect));
	assert_memory_equal(d, expect, len);
	free(d);

	logfile_stats(lf, &st);
	assert_int_equal(st.records, 4);
	assert_int_equal(st.commits, 2);
	assert_int_equal(st.bytes, strlen(expect));
	assert_int_equal(st.syncs, 2);
	assert_int_equal(st.failures, 0);
	logfile_close(lf);

	assert_true(is_readonly(dir, names[0]));
	assert_true(zstd_test(dir, names[0]));
	d = decode_file(dir, names[0], &len, &complete);
	assert_true(complete);
	assert_int_equal(len, strlen(expect));
	assert_memory_equal(d, expect, len);
	free(d);
	d = zstdcat_dir(dir, &len);
	assert_int_equal(len, strlen(expect));
	assert_memory_equal(d, expect, len);
	free(d);
	free_names(names, n);
	free(dir);
	test_rmtree(top);
}

static void
test_plain_roundtrip(void **state)
{
	char *dir = test_mkdtemp("logfile");
	const char *b[] = { "{\"a\":1}", "{\"b\":\"\xe2\x82\xac\"}" };
	size_t n, len;
	(void)state;

	struct logfile *lf = open_log(dir, false, true, 0, 0);
	assert_int_equal(logfile_commit(lf, b, 2), 0);
	assert_int_equal(commit1(lf, "[3]"), 0);
	logfile_close(lf);

	char **names = list_files(dir, &n);
	assert_int_equal(n, 1);
	assert_true(name_ok(names[0]));		/* no suffix, as KumoMTA */
	assert_true(is_readonly(dir, names[0]));
	char *p = xasprintf("%s/%s", dir, names[0]);
	char *d = read_file(p, &len);
	assert_int_equal(len, 24);
	assert_memory_equal(d, "{\"a\":1}\n{\"b\":\"\xe2\x82\xac\"}\n[3]\n", 24);
	free(d);
	free(p);
	free_names(names, n);
	test_rmtree(dir);
}

static void
test_newline_rejected(void **state)
{
	char *dir = test_mkdtemp("logfile");
	const char *b[] = { "{\"a\":1}", "{\"b\":\n2}" };
	struct logfile_stats st;
	size_t n;
	(void)state;

	struct logfile *lf = open_log(dir, true, false, 0, 0);
	assert_int_equal(logfile_commit(lf, b, 2), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(logfile_healthy(lf));
	assert_int_equal(logfile_commit(lf, b, 0), 0);
	logfile_stats(lf, &st);
	assert_int_equal(st.records, 0);
	logfile_close(lf);
	char **names = list_files(dir, &n);
	assert_int_equal(n, 0);
	free_names(names, n);
	test_rmtree(dir);
}

/* ---- rotation ---- */

static void
test_rotation_size(void **state)
{
	(void)state;

	for (int compress = 0; compress < 2; compress++) {
		char *dir = test_mkdtemp("logfile");
		struct logfile *lf = open_log(dir, compress, false, 1000, 0);
		struct buf expect = { 0 };
		size_t n, len;

		/* 100 bytes a record with its newline: 10 per segment. */
		for (int i = 0; i < 95; i++) {
			char *r = record(i, 99);

			assert_int_equal(commit1(lf, r), 0);
			buf_puts(&expect, r);
			buf_putc(&expect, '\n');
			free(r);
		}
		char **names = list_files(dir, &n);
		assert_int_equal(n, 10);
		for (size_t i = 0; i < n; i++) {
			assert_true(name_ok(names[i]));
			if (i > 0)
				assert_true(strcmp(names[i - 1], names[i]) < 0);
			assert_int_equal(is_readonly(dir, names[i]), i < 9);
		}
		free_names(names, n);
		logfile_close(lf);

		names = list_files(dir, &n);
		assert_int_equal(n, 10);
		for (size_t i = 0; i < n; i++) {
			bool complete;
			char *d = decode_file(dir, names[i], &len, &complete);

			assert_true(is_readonly(dir, names[i]));
			assert_true(complete);
			assert_int_equal(len, i < 9 ? 1000 : 500);
			assert_memory_equal(d, expect.data + i * 1000, len);
			free(d);
		}
		free_names(names, n);
		char *all = compress ? zstdcat_dir(dir, &len) : read_dir(dir, &len);
		assert_int_equal(len, expect.len);
		assert_memory_equal(all, expect.data, len);
		free(all);
		buf_free(&expect);
		test_rmtree(dir);
	}
}

static void
test_rotation_age(void **state)
{
	char *dir = test_mkdtemp("logfile");
	struct timespec wait = { 0, 260 * 1000 * 1000 };
	size_t n;
	(void)state;

	struct logfile *lf = open_log(dir, true, true, 0, 0.2);
	assert_int_equal(commit1(lf, "{\"n\":1}"), 0);
	logfile_tick(lf);		/* not yet due */
	char **names = list_files(dir, &n);
	assert_int_equal(n, 1);
	assert_false(is_readonly(dir, names[0]));
	free_names(names, n);

	nanosleep(&wait, NULL);
	logfile_tick(lf);		/* the timer closes the idle segment */
	names = list_files(dir, &n);
	assert_int_equal(n, 1);
	assert_true(is_readonly(dir, names[0]));
	assert_true(zstd_test(dir, names[0]));
	free_names(names, n);

	assert_int_equal(commit1(lf, "{\"n\":2}"), 0);
	nanosleep(&wait, NULL);
	/* No tick: the commit itself notices the deadline has passed. */
	assert_int_equal(commit1(lf, "{\"n\":3}"), 0);
	names = list_files(dir, &n);
	assert_int_equal(n, 3);
	assert_true(is_readonly(dir, names[1]));
	assert_false(is_readonly(dir, names[2]));
	free_names(names, n);

	/* An explicit rotation (SIGUSR1) closes it; the next commit opens. */
	assert_int_equal(logfile_rotate(lf), 0);
	assert_int_equal(logfile_rotate(lf), 0);	/* nothing open: no-op */
	assert_int_equal(commit1(lf, "{\"n\":4}"), 0);
	logfile_close(lf);

	size_t len;
	char *all = zstdcat_dir(dir, &len);
	const char *expect = "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n";
	assert_int_equal(len, strlen(expect));
	assert_memory_equal(all, expect, len);
	free(all);
	names = list_files(dir, &n);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_true(is_readonly(dir, names[i]));
	free_names(names, n);
	test_rmtree(dir);
}

/* ---- startup ---- */

static void
write_path(const char *dir, const char *name, const void *p, size_t n,
    mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	free(path);
}

static ino_t
inode_of(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	free(path);
	return st.st_ino;
}

static void
test_startup_readonly(void **state)
{
	char *dir = test_mkdtemp("logfile");
	const char *content = "{\"old\":1}\n{\"old\":2}\n";
	char z[256];
	size_t zn = ZSTD_compress(z, sizeof(z), content, strlen(content), 3);
	struct logfile_recovery rec;
	size_t n;
	(void)state;

	assert_false(ZSTD_isError(zn));
	write_path(dir, "notes.txt", "x", 1, 0644);
	write_path(dir, ".hidden", "x", 1, 0644);
	write_path(dir, ".20231231-000000.repair", "x", 1, 0644); /* stale temp */
	write_path(dir, "20240101-000000", z, zn, 0644);	/* complete */
	write_path(dir, "29991231-235959.999", z, zn, 0444);	/* the future */
	ino_t ino = inode_of(dir, "20240101-000000");

	struct logfile *lf = open_log(dir, true, true, 0, 0);
	assert_true(is_readonly(dir, "notes.txt"));
	assert_false(is_readonly(dir, ".hidden"));
	char *tmp = xasprintf("%s/.20231231-000000.repair", dir);
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);
	assert_true(is_readonly(dir, "20240101-000000"));
	assert_int_equal(inode_of(dir, "20240101-000000"), ino); /* not rewritten */
	logfile_recovery(lf, &rec);
	assert_int_equal(rec.files, 0);
	assert_int_equal(rec.dropped_lines, 0);

	/* New names sort after every segment already there. */
	assert_int_equal(commit1(lf, "{\"new\":1}"), 0);
	logfile_close(lf);
	char **names = list_files(dir, &n);
	assert_int_equal(n, 4);
	assert_string_equal(names[0], "20240101-000000");
	assert_string_equal(names[1], "29991231-235959.999");
	assert_string_equal(names[2], "29991231-235959.999000001");
	assert_string_equal(names[3], "notes.txt");
	free_names(names, n);
	test_rmtree(dir);
}

/* ---- concurrency ---- */

#define NTHREADS	8
#define NCOMMITS	500

struct worker {
	struct logfile	*lf;
	int		 t;
	int		 n;
	int		 failed;
	bool		 async;		/* logfile_commit_async */
	pthread_mutex_t	 mu;		/* async: the callbacks' counts */
	pthread_cond_t	 cv;
	int		 settled;
	int		 lost;
};

struct async_commit {
	struct log_waiter w;		/* first: the callback's pointer */
	struct worker	*owner;
};

static void
async_done(struct log_waiter *lw, int err)
{
	struct async_commit *ac = (struct async_commit *)lw;
	struct worker *w = ac->owner;

	free(ac);
	pthread_mutex_lock(&w->mu);
	w->settled++;
	if (err != 0)
		w->lost++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* One asynchronous commit; returns as logfile_commit_async does. */
static int
commit_async1(struct worker *w, const char *line)
{
	const char *v[1] = { line };
	struct async_commit *ac = xcalloc(1, sizeof(*ac));
	int rc;

	ac->w.done = async_done;
	ac->owner = w;
	rc = logfile_commit_async(w->lf, v, 1, &ac->w);
	if (rc != 1)
		free(ac);
	return rc;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	int pending = 0;

	for (int i = 0; i < w->n; i++) {
		char line[128];

		snprintf(line, sizeof(line), "{\"t\":%d,\"i\":%d,\"pad\":\"%0*d\"}",
		    w->t, i, 10 + (i % 40), i);
		if (!w->async) {
			if (commit1(w->lf, line) != 0)
				w->failed++;
			continue;
		}
		int rc = commit_async1(w, line);
		if (rc < 0)
			w->failed++;
		else if (rc == 1)
			pending++;
	}
	if (w->async) {
		pthread_mutex_lock(&w->mu);
		while (w->settled < pending)
			pthread_cond_wait(&w->cv, &w->mu);
		w->failed += w->lost;
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

static void
run_workers(const char *dir, uint64_t max, int per_thread, bool async,
    struct logfile_stats *st)
{
	struct logfile *lf = open_log(dir, true, true, max, 0);
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];

	for (int t = 0; t < NTHREADS; t++) {
		w[t] = (struct worker){ .lf = lf, .t = t, .n = per_thread,
		    .async = async };
		pthread_mutex_init(&w[t].mu, NULL);
		pthread_cond_init(&w[t].cv, NULL);
		assert_int_equal(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].failed, 0);
		pthread_cond_destroy(&w[t].cv);
		pthread_mutex_destroy(&w[t].mu);
	}
	assert_true(logfile_healthy(lf));
	logfile_stats(lf, st);
	logfile_close(lf);
}

/* Every (t, i) exactly once, and each thread's records in its order. */
static void
check_workers(const char *dir, int per_thread)
{
	size_t len;
	char *all = read_dir(dir, &len);
	int *seen = xcalloc(NTHREADS * (size_t)per_thread, sizeof(int));
	int last[NTHREADS];

	for (int t = 0; t < NTHREADS; t++)
		last[t] = -1;
	assert_int_equal(check_json_lines(all, len),
	    (size_t)NTHREADS * per_thread);
	for (char *p = all; p < all + len; ) {
		char *nl = memchr(p, '\n', (size_t)(all + len - p));
		json_error_t je;
		json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
		int t = (int)json_integer_value(json_object_get(j, "t"));
		int i = (int)json_integer_value(json_object_get(j, "i"));

		assert_true(t >= 0 && t < NTHREADS && i >= 0 && i < per_thread);
		seen[t * per_thread + i]++;
		assert_true(i > last[t]);
		last[t] = i;
		json_decref(j);
		p = nl + 1;
	}
	for (int k = 0; k < NTHREADS * per_thread; k++)
		assert_int_equal(seen[k], 1);
	free(seen);
	free(all);
	size_t zl;
	char *z = zstdcat_dir(dir, &zl);
	all = read_dir(dir, &len);
	assert_int_equal(zl, len);
	assert_memory_equal(z, all, len);
	free(z);
	free(all);
}

static void
test_group_commit(void **state)
{
	char *dir = test_mkdtemp("logfile");
	struct logfile_stats st;
	size_t n;
	(void)state;

	run_workers(dir, 0, NCOMMITS, false, &st);
	assert_int_equal(st.commits, NTHREADS * NCOMMITS);
	assert_int_equal(st.records, NTHREADS * NCOMMITS);
	assert_int_equal(st.failures, 0);
	/* Shared syncs: far fewer than commits (plus the one at close). */
	assert_true(st.syncs > 0);
	assert_true(st.syncs < st.commits);
	print_message("group commit: %llu commits, %llu syncs\n",
	    (unsigned long long)st.commits, (unsigned long long)st.syncs);
	check_workers(dir, NCOMMITS);
	char **names = list_files(dir, &n);
	assert_int_equal(n, 1);
	free_names(names, n);
	test_rmtree(dir);
}

static void
test_group_commit_rotating(void **state)
{
	char *dir = test_mkdtemp("logfile");
	struct logfile_stats st;
	size_t n;
	(void)state;

	run_workers(dir, 8192, 200, false, &st);
	assert_int_equal(st.commits, NTHREADS * 200);
	check_workers(dir, 200);
	char **names = list_files(dir, &n);
	/* ~60 bytes a record: 1600 records, at least 8192 bytes a segment. */
	assert_true(n >= 8 && n <= 13);
	for (size_t i = 0; i < n; i++) {
		assert_true(is_readonly(dir, names[i]));
		assert_true(name_ok(names[i]));
	}
	assert_true(zstd_test(dir, names[n - 1]));
	free_names(names, n);
	test_rmtree(dir);
}

/*
 * Asynchronous commits: every record written once, in each committer's
 * order, every callback called once with success, and the syncs shared.
 */
static void
test_async_group_commit(void **state)
{
	char *dir = test_mkdtemp("logfile");
	struct logfile_stats st;
	(void)state;

	run_workers(dir, 0, NCOMMITS, true, &st);
	assert_int_equal(st.commits, NTHREADS * NCOMMITS);
	assert_int_equal(st.records, NTHREADS * NCOMMITS);
	assert_int_equal(st.failures, 0);
	assert_true(st.syncs > 0);
	assert_true(st.syncs < st.commits);
	print_message("async group commit: %llu commits, %llu syncs\n",
	    (unsigned long long)st.commits, (unsigned long long)st.syncs);
	check_workers(dir, NCOMMITS);
	test_rmtree(dir);
}

/* Rotation by size under asynchronous commits: all settled, all there. */
static void
test_async_rotating(void **state)
{
	char *dir = test_mkdtemp("logfile");
	struct logfile_stats st;
	size_t n;
	(void)state;

	run_workers(dir, 8192, 200, true, &st);
	assert_int_equal(st.commits, NTHREADS * 200);
	assert_int_equal(st.failures, 0);
	check_workers(dir, 200);
	char **names = list_files(dir, &n);
	assert_true(n >= 8 && n <= 13);
	for (size_t i = 0; i < n; i++)
		assert_true(is_readonly(dir, names[i]));
	free_names(names, n);
	test_rmtree(dir);
}

/*
 * The outcomes of logfile_commit_async: 0 without fsync (no callback), 1
 * and a callback with 0 with it, the sync's error when the sync fails,
 * -1 and no callback when the write fails, and every waiter settled by
 * logfile_close.
 */
static void
test_async_outcomes(void **state)
{
	char *dir = test_mkdtemp("logfile");
	struct worker w = { .async = true };
	size_t len;
	(void)state;

	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);

	w.lf = open_log(dir, false, false, 0, 0);
	assert_int_equal(commit_async1(&w, "{\"nosync\":1}"), 0);
	logfile_close(w.lf);
	assert_int_equal(w.settled, 0);

	w.lf = open_log(dir, true, true, 0, 0);
	assert_int_equal(commit_async1(&w, "{\"ok\":1}"), 1);
	pthread_mutex_lock(&w.mu);
	while (w.settled < 1)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	assert_int_equal(w.lost, 0);
	assert_true(logfile_healthy(w.lf));

	logfile_inject_fault(w.lf, LOGFILE_FAULT_SYNC, EIO);
	assert_int_equal(commit_async1(&w, "{\"lost\":2}"), 1);
	pthread_mutex_lock(&w.mu);
	while (w.settled < 2)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	assert_int_equal(w.lost, 1);
	assert_false(logfile_healthy(w.lf));

	/* With fsync on, the write happens with the sync: lost there. */
	logfile_inject_fault(w.lf, LOGFILE_FAULT_WRITE, ENOSPC);
	assert_int_equal(commit_async1(&w, "{\"lost\":3}"), 1);
	pthread_mutex_lock(&w.mu);
	while (w.settled < 3)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	assert_int_equal(w.lost, 2);

	/* Commits left pending are settled before close returns. */
	for (int i = 0; i < 50; i++)
		assert_int_equal(commit_async1(&w, "{\"last\":4}"), 1);
	logfile_close(w.lf);
	assert_int_equal(w.settled, 53);
	assert_int_equal(w.lost, 2);

	/* Without fsync a write failure is known at once: -1, no callback. */
	w.lf = open_log(dir, false, false, 0, 0);
	logfile_inject_fault(w.lf, LOGFILE_FAULT_WRITE, ENOSPC);
	errno = 0;
	assert_int_equal(commit_async1(&w, "{\"lost\":5}"), -1);
	assert_int_equal(errno, ENOSPC);
	logfile_close(w.lf);
	assert_int_equal(w.settled, 53);

	/*
	 * The record whose sync failed was written whole and survives the
	 * repair (it was never acknowledged either way); the torn one not.
	 */
	char *all = read_dir(dir, &len);
	assert_int_equal(check_json_lines(all, len), 1 + 1 + 1 + 50);
	assert_non_null(strstr(all, "{\"nosync\":1}\n"));
	assert_non_null(strstr(all, "{\"ok\":1}\n"));
	assert_non_null(strstr(all, "{\"lost\":2}\n"));
	assert_null(strstr(all, "\"lost\":3"));
	assert_null(strstr(all, "\"lost\":5"));
	free(all);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	test_rmtree(dir);
}

/* ---- batches ---- */

struct batch_waiter {
	struct log_waiter w;
	pthread_mutex_t	  mu;
	pthread_cond_t	  cv;
	bool		  done;
	int		  err;
};

static void
batch_done(struct log_waiter *w, int err)
{
	struct batch_waiter *bw = (struct batch_waiter *)w;

	pthread_mutex_lock(&bw->mu);
	bw->done = true;
	bw->err = err;
	pthread_cond_signal(&bw->cv);
	pthread_mutex_unlock(&bw->mu);
}

/* Commit b and wait for its outcome: 0 durable, else the error. */
static int
batch_commit_wait(struct logfile *lf, struct log_batch *b)
{
	struct batch_waiter bw = { .w.done = batch_done };
	int rc;

	pthread_mutex_init(&bw.mu, NULL);
	pthread_cond_init(&bw.cv, NULL);
	rc = logfile_batch_commit_async(lf, b, &bw.w);
	if (rc == 1) {
		pthread_mutex_lock(&bw.mu);
		while (!bw.done)
			pthread_cond_wait(&bw.cv, &bw.mu);
		pthread_mutex_unlock(&bw.mu);
		rc = bw.err;
	} else if (rc < 0)
		rc = errno;
	pthread_cond_destroy(&bw.cv);
	pthread_mutex_destroy(&bw.mu);
	return rc;
}

/*
 * A batch past LOG_BATCH_MEM goes to a temporary file and reaches the
 * segment whole, in order, between the commits around it; a small one
 * stays in memory. No temporary file is left behind.
 */
static void
test_batch(void **state)
{
	(void)state;
	for (int compress = 0; compress < 2; compress++) {
		char *dir = test_mkdtemp("logfile");
		struct logfile *lf = open_log(dir, compress, true, 0, 0);
		struct logfile_stats st;
		/* 3 MB of records: twelve times the memory a batch keeps. */
		size_t nbig = 3 * (1u << 20) / 1000, len, n;

		assert_int_equal(commit1(lf, "{\"before\":1}"), 0);
		struct log_batch *small = logfile_batch_new(lf);
		assert_int_equal(logfile_batch_add(small, "{\"small\":1}"), 0);
		assert_int_equal(logfile_batch_add(small, "{\"small\":2}"), 0);
		assert_int_equal(logfile_batch_count(small), 2);
		assert_int_equal(batch_commit_wait(lf, small), 0);
		logfile_batch_free(small);

		struct log_batch *big = logfile_batch_new(lf);
		for (size_t i = 0; i < nbig; i++) {
			char *r = record((int)i, 1000);
			assert_int_equal(logfile_batch_add(big, r), 0);
			free(r);
		}
		assert_int_equal(logfile_batch_add(big, "{\"a\":\"x\ny\"}"), -1);
		assert_int_equal(errno, EINVAL);
		/* A failed batch stays failed: its commit writes nothing. */
		assert_int_equal(batch_commit_wait(lf, big), EINVAL);
		logfile_batch_free(big);

		big = logfile_batch_new(lf);
		for (size_t i = 0; i < nbig; i++) {
			char *r = record((int)i, 1000);
			assert_int_equal(logfile_batch_add(big, r), 0);
			free(r);
		}
		assert_int_equal(logfile_batch_count(big), nbig);
		assert_int_equal(batch_commit_wait(lf, big), 0);
		logfile_batch_free(big);
		assert_int_equal(commit1(lf, "{\"after\":1}"), 0);
		logfile_stats(lf, &st);
		assert_int_equal(st.records, 1 + 2 + nbig + 1);
		assert_int_equal(st.commits, 4);
		logfile_close(lf);

		char *all = compress ? read_dir(dir, &len) : NULL;
		if (!compress) {
			char **names = list_files(dir, &n);
			char *p = xasprintf("%s/%s", dir, names[0]);
			all = read_file(p, &len);
			free(p);
			free_names(names, n);
		}
		assert_int_equal(check_json_lines(all, len), 1 + 2 + nbig + 1);
		struct buf want = { 0 };
		buf_puts(&want, "{\"before\":1}\n{\"small\":1}\n{\"small\":2}\n");
		for (size_t i = 0; i < nbig; i++) {
			char *r = record((int)i, 1000);
			buf_printf(&want, "%s\n", r);
			free(r);
		}
		buf_puts(&want, "{\"after\":1}\n");
		assert_int_equal(len, want.len);
		assert_memory_equal(all, want.data, len);
		buf_free(&want);
		free(all);
		/* The spill file was unnamed: nothing but the segment. */
		DIR *d = opendir(dir);
		struct dirent *de;
		size_t entries = 0;
		while ((de = readdir(d)) != NULL)
			entries += strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0;
		closedir(d);
		assert_int_equal(entries, 1);
		test_rmtree(dir);
	}
}

/* ---- repair ---- */

#define REPAIR_RECORDS	40

/*
 * A crash image: the bytes of an open segment after REPAIR_RECORDS
 * commits, and the file size after each commit.
 */
static char *
crash_image(bool compress, size_t *lenp, size_t ends[REPAIR_RECORDS],
    struct buf *expect)
{
	char *dir = test_mkdtemp("logfile");
	struct logfile *lf = open_log(dir, compress, false, 0, 0);
	char *img = NULL;
	size_t n;

	for (int i = 0; i < REPAIR_RECORDS; i++) {
		char *r = record(i, 50 + (size_t)(i * 7) % 50);
		struct stat st;

		assert_int_equal(commit1(lf, r), 0);
		buf_puts(expect, r);
		buf_putc(expect, '\n');
		free(r);
		char **names = list_files(dir, &n);
		assert_int_equal(n, 1);
		char *p = xasprintf("%s/%s", dir, names[0]);
		assert_int_equal(stat(p, &st), 0);
		ends[i] = (size_t)st.st_size;
		if (i == REPAIR_RECORDS - 1)
			img = read_file(p, lenp);
		free(p);
		free_names(names, n);
	}
	logfile_close(lf);
	test_rmtree(dir);
	return img;
}

/* Reopen a directory holding img[0..len) as a writable segment. */
static void
repair_case(const char *img, size_t len, const char *tail, size_t tlen,
    const struct buf *expect, size_t min_kept, bool run_zstd)
{
	char *dir = test_mkdtemp("logfile");
	const char *name = "20240101-000000.001";
	struct logfile_recovery rec;
	char *both = xmalloc(len + tlen + 1);
	size_t n, dl;
	bool complete;

	memcpy(both, img, len);
	memcpy(both + len, tail, tlen);
	write_path(dir, name, both, len + tlen, 0644);
	free(both);
	struct logfile *lf = open_log(dir, true, true, 0, 0);
	logfile_recovery(lf, &rec);
	logfile_close(lf);

	char **names = list_files(dir, &n);
	if (len + tlen == 0) {
		assert_int_equal(n, 0);		/* an empty leftover goes */
		free_names(names, n);
		test_rmtree(dir);
		return;
	}
	assert_int_equal(n, 1);
	assert_true(is_readonly(dir, name));
	char *d = decode_file(dir, name, &dl, &complete);
	assert_true(complete);
	size_t lines = check_json_lines(d, dl);
	/* What is kept is a byte-exact prefix of the records written. */
	assert_true(dl <= expect->len);
	assert_memory_equal(d, expect->data, dl);
	if (lines < min_kept)
		fail_msg("cut %zu+%zu: kept %zu < %zu", len, tlen, lines, min_kept);
	if (rec.files == 0) {
		/* Only a plain file cut at a line end is left as it was. */
		assert_int_equal(tlen, 0);
		assert_int_equal(dl, len);
	} else {
		assert_int_equal(rec.files, 1);
		assert_int_equal(rec.kept, lines);
	}
	if (run_zstd && n > 0 && memcmp(img, "\x28\xb5\x2f\xfd", 4) == 0)
		assert_true(zstd_test(dir, name));
	free(d);
	free_names(names, n);
	test_rmtree(dir);
}

static void
repair_cuts(bool compress)
{
	struct buf expect = { 0 };
	size_t ends[REPAIR_RECORDS], len;
	char *img = crash_image(compress, &len, ends, &expect);
	const char garbage[] = "\x01\x02garbage{\"x\":1}\xff\xfe\n{\"y\"";
	int k = 0, cases = 0;

	/* Every cut near a commit boundary, and a stride across the rest. */
	for (size_t cut = 0; cut <= len; cut++) {
		bool near = false;

		for (int i = 0; i < REPAIR_RECORDS; i++)
			if (cut + 1 >= ends[i] && cut <= ends[i] + 1)
				near = true;
		if (!near && cut % 23 != 0)
			continue;
		while (k < REPAIR_RECORDS && ends[k] <= cut)
			k++;
		/* Only the whole image decodes as the full zstd block, so
		 * zstd -t runs on a sample of the cuts to keep this quick. */
		repair_case(img, cut, "", 0, &expect, (size_t)k,
		    cases++ % 10 == 0);
		if (cut > 0 && cut % 5 == 0)
			repair_case(img, cut, garbage, sizeof(garbage) - 1,
			    &expect, (size_t)k, false);
	}
	repair_case(img, len, garbage, sizeof(garbage) - 1, &expect,
	    REPAIR_RECORDS, true);
	free(img);
	buf_free(&expect);
}

static void
test_repair_zstd(void **state)
{
	(void)state;
	repair_cuts(true);
}

static void
test_repair_plain(void **state)
{
	(void)state;
	repair_cuts(false);
}

static void
test_repair_keeps_valid_lines(void **state)
{
	char *dir = test_mkdtemp("logfile");
	const char *in = "{\"a\":1}\nnot json\n{\"b\":2}\n\n{\"c\":3}\n{\"d\"";
	struct logfile_recovery rec;
	size_t len;
	(void)state;

	write_path(dir, "20240101-000000", in, strlen(in), 0600);
	struct logfile *lf = open_log(dir, false, true, 0, 0);
	logfile_recovery(lf, &rec);
	logfile_close(lf);
	assert_int_equal(rec.files, 1);
	assert_int_equal(rec.kept, 3);
	assert_int_equal(rec.dropped_lines, 3);	/* "not json", "", the tail */
	assert_int_equal(rec.dropped_bytes, 9 + 1 + 4);
	char *p = xasprintf("%s/20240101-000000", dir);
	char *d = read_file(p, &len);
	assert_string_equal(d, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0400);	/* write bits cleared */
	free(d);
	free(p);
	test_rmtree(dir);
}

/* ---- failures ---- */

static void
fault_case(bool compress, enum logfile_fault op, int err)
{
	char *dir = test_mkdtemp("logfile");
	struct logfile_stats st;
	struct logfile_recovery rec;
	size_t n, len;

	struct logfile *lf = open_log(dir, compress, true, 0, 0);
	assert_int_equal(commit1(lf, "{\"ok\":1}"), 0);
	logfile_inject_fault(lf, op, err);
	errno = 0;
	assert_int_equal(commit1(lf, "{\"lost\":2,\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}"),
	    -1);
	assert_int_equal(errno, err);
	assert_false(logfile_healthy(lf));
	logfile_stats(lf, &st);
	assert_int_equal(st.failures, 1);

	/* The failed segment was finished as far as possible: complete,
	 * read-only, and holding every record acknowledged before it. */
	char **names = list_files(dir, &n);
	assert_int_equal(n, 1);
	assert_true(is_readonly(dir, names[0]));
	bool complete;
	char *d = decode_file(dir, names[0], &len, &complete);
	assert_true(complete);
	assert_true(len >= 9);
	assert_memory_equal(d, "{\"ok\":1}\n", 9);
	check_json_lines(d, len);
	free(d);
	if (compress)
		assert_true(zstd_test(dir, names[0]));
	free_names(names, n);
	logfile_recovery(lf, &rec);
	/* A plain file holding only whole lines needs no rewrite. */
	assert_int_equal(rec.files, compress || op == LOGFILE_FAULT_WRITE);

	/* The next commit starts a fresh segment and is healthy again. */
	assert_int_equal(commit1(lf, "{\"ok\":3}"), 0);
	assert_true(logfile_healthy(lf));
	logfile_close(lf);
	names = list_files(dir, &n);
	assert_int_equal(n, 2);
	d = decode_file(dir, names[1], &len, &complete);
	assert_true(complete);
	assert_int_equal(len, 9);
	assert_memory_equal(d, "{\"ok\":3}\n", 9);
	free(d);
	free_names(names, n);
	test_rmtree(dir);
}

static void
test_fault_sync(void **state)
{
	(void)state;
	fault_case(true, LOGFILE_FAULT_SYNC, EIO);
	fault_case(false, LOGFILE_FAULT_SYNC, EIO);
}

static void
test_fault_write(void **state)
{
	(void)state;
	fault_case(true, LOGFILE_FAULT_WRITE, ENOSPC);
	fault_case(false, LOGFILE_FAULT_WRITE, ENOSPC);
}

/*
 * A real failure from the kernel, no hook: a file size limit makes write()
 * fail with EFBIG once the segment reaches it. Runs in a child so the
 * limit does not leak into the other tests.
 */
static void
test_fault_fsize_limit(void **state)
{
	char *dir = test_mkdtemp("logfile");
	int status;
	size_t len;
	(void)state;

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 8192, 8192 };
		int i, rc = 0;

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(10);
		struct logfile_config c = { .dir = dir, .compress = false,
		    .fsync = true };
		char *err = NULL;
		struct logfile *lf = logfile_open(&c, &err);
		if (lf == NULL)
			_exit(11);
		for (i = 0; i < 1000; i++) {
			char *r = record(i, 99);
			rc = commit1(lf, r);
			free(r);
			if (rc != 0)
				break;
		}
		if (rc == 0 || errno != EFBIG)
			_exit(12);
		if (i != 81)		/* 8192 / 100: the 82nd is cut */
			_exit(13);
		if (logfile_healthy(lf))
			_exit(14);
		if (commit1(lf, "{\"after\":1}") != 0 || !logfile_healthy(lf))
			_exit(15);
		logfile_close(lf);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	char *all = read_dir(dir, &len);
	assert_int_equal(check_json_lines(all, len), 82);
	assert_memory_equal(all + len - 12, "{\"after\":1}\n", 12);
	free(all);
	size_t n;
	char **names = list_files(dir, &n);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_true(is_readonly(dir, names[i]));
	free_names(names, n);
	test_rmtree(dir);
}

/* ---- a finished file cut at every byte ---- */

#define CUT_RECORDS	8

/*
 * What a tailer gets from the first n bytes of a zstd file: everything
 * libzstd's streaming decoder yields for them, as zstdcat prints it.
 * Truncation is not an error to it; it just waits for more input.
 * Returns whether the bytes end exactly at the end of a frame.
 */
static bool
reader_prefix(const char *p, size_t n, struct buf *out)
{
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	ZSTD_inBuffer in = { p, n, 0 };
	char ob[65536];
	ZSTD_outBuffer o;
	size_t r = 1;

	do {
		o = (ZSTD_outBuffer){ ob, sizeof(ob), 0 };
		r = ZSTD_decompressStream(dc, &o, &in);
		if (ZSTD_isError(r))
			fail_msg("cut %zu: %s", n, ZSTD_getErrorName(r));
		buf_append(out, ob, o.pos);
	} while (in.pos < in.size || o.pos == o.size);
	ZSTD_freeDCtx(dc);
	return n > 0 && r == 0;	/* ends exactly where a frame ends */
}

/*
 * A finished segment of CUT_RECORDS commits (each one flushed, so one or
 * more blocks each, then the end of the frame). ends[i] is the file size
 * once commit i was written; expect receives the records.
 */
static char *
finished_image(size_t *lenp, size_t *ends, struct buf *expect, int first)
{
	char *dir = test_mkdtemp("logfile");
	struct logfile *lf = open_log(dir, true, false, 0, 0);
	char **names, *p, *img;
	size_t n;

	for (int i = 0; i < CUT_RECORDS; i++) {
		char *r = record(first + i, 60 + (size_t)(i * 13) % 60);
		struct stat st;

		assert_int_equal(commit1(lf, r), 0);
		buf_puts(expect, r);
		buf_putc(expect, '\n');
		free(r);
		names = list_files(dir, &n);
		assert_int_equal(n, 1);
		p = xasprintf("%s/%s", dir, names[0]);
		assert_int_equal(stat(p, &st), 0);
		ends[i] = (size_t)st.st_size;
		free(p);
		free_names(names, n);
	}
	logfile_close(lf);
	names = list_files(dir, &n);
	assert_int_equal(n, 1);
	p = xasprintf("%s/%s", dir, names[0]);
	img = read_file(p, lenp);
	assert_non_null(img);
	free(p);
	free_names(names, n);
	test_rmtree(dir);
	return img;
}

/* What zstdcat prints for one file, whether or not it ends cleanly. */
static char *
zstdcat_cut(const char *dir, const char *name, size_t *lenp)
{
	char *cmd = xasprintf("zstdcat -q -- '%s/%s' 2>/dev/null", dir, name);
	struct buf out = { 0 };
	char chunk[65536];
	size_t r;
	FILE *f = popen(cmd, "r");

	assert_non_null(f);
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&out, chunk, r);
	pclose(f);
	free(cmd);
	*lenp = out.len;
	return out.data ? buf_steal(&out) : xstrdup("");
}

/* The bytes up to and including the last newline of b. */
static size_t
whole_len(const struct buf *b)
{
	size_t n = b->len;

	while (n > 0 && b->data[n - 1] != '\n')
		n--;
	return n;
}

/*
 * Cut img at every offset. A reader gets a byte-exact prefix of expect,
 * whole lines of JSON, at least every record whose commit was entirely
 * before the cut; zstdcat agrees (on a sample of cuts). logfile_open then
 * repairs the cut file: read-only, a complete frame, holding exactly the
 * whole lines the reader got; an empty file is removed; a file of whole
 * frames is left as it is. Returns the number of files rewritten.
 */
static size_t
cut_everywhere(const char *img, size_t len, const size_t *ends, size_t nends,
    const struct buf *expect)
{
	const char *name = "20240101-000000.001";
	size_t k = 0, repaired = 0;

	for (size_t cut = 0; cut <= len; cut++) {
		struct buf got = { 0 };
		struct logfile_recovery rec;
		bool near = false;

		bool at_frame_end = reader_prefix(img, cut, &got);
		while (k < nends && ends[k] <= cut)
			k++;
		size_t wl = whole_len(&got);
		assert_true(got.len <= expect->len);
		if (got.len > 0)
			assert_memory_equal(got.data, expect->data, got.len);
		size_t lines = check_json_lines(got.data ? got.data : "", wl);
		if (lines < k)
			fail_msg("cut %zu: %zu lines readable, %zu committed",
			    cut, lines, k);

		char *dir = test_mkdtemp("logfile");
		write_path(dir, name, img, cut, 0644);
		for (size_t i = 0; i < nends; i++)
			if (cut + 1 >= ends[i] && cut <= ends[i] + 1)
				near = true;
		if (near || cut % 17 == 0) {
			size_t zl;
			char *z = zstdcat_cut(dir, name, &zl);
			size_t zw = zl;
			while (zw > 0 && z[zw - 1] != '\n')
				zw--;
			/* zstdcat passes a too short file through as it is. */
			if (cut >= 4) {
				assert_int_equal(zw, wl);
				assert_memory_equal(z, got.data ? got.data : "", zw);
			}
			free(z);
		}
		struct logfile *lf = open_log(dir, true, true, 0, 0);
		logfile_recovery(lf, &rec);
		logfile_close(lf);
		size_t n, dl;
		bool complete;
		char **names = list_files(dir, &n);
		if (cut == 0)
			assert_int_equal(n, 0);
		else {
			assert_int_equal(n, 1);
			assert_string_equal(names[0], name);
			assert_true(is_readonly(dir, name));
			char *d = decode_file(dir, name, &dl, &complete);
			assert_true(complete);
			assert_int_equal(dl, wl);
			assert_memory_equal(d, got.data ? got.data : "", dl);
			/* Whole frames are complete: nothing to rewrite. */
			assert_int_equal(rec.files, at_frame_end ? 0 : 1);
			if (!at_frame_end) {
				assert_int_equal(rec.kept, lines);
				repaired++;
			}
			free(d);
		}
		free_names(names, n);
		test_rmtree(dir);
		buf_free(&got);
	}
	print_message("%zu cuts, %zu repaired\n", len + 1, repaired);
	return repaired;
}

static void
test_cut_finished_segment(void **state)
{
	struct buf expect = { 0 };
	size_t ends[CUT_RECORDS], len;
	(void)state;

	char *img = finished_image(&len, ends, &expect, 0);
	assert_int_equal(check_json_lines(expect.data, expect.len), CUT_RECORDS);
	/* Every cut but the empty and the whole file needs a rewrite. */
	assert_int_equal(cut_everywhere(img, len, ends, CUT_RECORDS, &expect),
	    len - 1);
	free(img);
	buf_free(&expect);
}

/*
 * Two finished segments concatenated: a file of two frames, as zstd
 * allows and a copy or an archive tool can make. The reader, zstdcat and
 * the repair carry on from the first frame into the second.
 */
static void
test_cut_multi_frame(void **state)
{
	struct buf expect = { 0 };
	size_t ends[2 * CUT_RECORDS], l1, l2;
	(void)state;

	char *a = finished_image(&l1, ends, &expect, 0);
	char *b = finished_image(&l2, ends + CUT_RECORDS, &expect, 100);
	char *img = xmalloc(l1 + l2);
	memcpy(img, a, l1);
	memcpy(img + l1, b, l2);
	/* The first frame's end, then the second's commits after it. */
	ends[CUT_RECORDS - 1] = l1;
	for (int i = 0; i < CUT_RECORDS; i++)
		ends[CUT_RECORDS + i] += l1;
	/* ... nor the cut at the end of the first frame. */
	assert_int_equal(cut_everywhere(img, l1 + l2, ends, 2 * CUT_RECORDS,
	    &expect), l1 + l2 - 2);
	free(a);
	free(b);
	free(img);
	buf_free(&expect);
}

/* ---- kill -9 ---- */

static void
kill9_child(const char *dir, int fd)
{
	struct logfile_config c = { .dir = dir, .compress = true, .level = 1,
	    .max_file_size = 4096, .fsync = true };
	char *err = NULL;
	struct logfile *lf = logfile_open(&c, &err);

	if (lf == NULL)
		_exit(1);
	for (uint32_t i = 0; ; i++) {
		char line[128];

		snprintf(line, sizeof(line), "{\"seq\":%u,\"pad\":\"%0*u\"}", i,
		    (int)(i % 50), i);
		if (commit1(lf, line) != 0)
			_exit(2);
		/* Acknowledged: only now may the "client" hear of it. */
		if (write(fd, &i, sizeof(i)) != sizeof(i))
			_exit(3);
	}
}

static void
test_kill9(void **state)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	uint64_t total_acked = 0, total_repaired = 0;
	(void)state;

	print_message("kill -9 seed %u\n", seed);
	for (int round = 0; round < 20; round++) {
		char *dir = test_mkdtemp("logfile");
		int pfd[2];
		uint32_t v, acked = 0;
		bool any = false;

		assert_int_equal(pipe(pfd), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			kill9_child(dir, pfd[1]);
		}
		close(pfd[1]);
		struct timespec ts = { 0, (long)(5 + rand_r(&seed) % 60) * 1000000L };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		while (read(pfd[0], &v, sizeof(v)) == sizeof(v)) {
			assert_int_equal(v, acked);	/* in order */
			acked = v + 1;
			any = true;
		}
		close(pfd[0]);

		struct logfile_recovery rec;
		struct logfile *lf = open_log(dir, true, true, 4096, 0);
		logfile_recovery(lf, &rec);
		total_repaired += rec.files;
		logfile_close(lf);

		size_t len, n;
		char **names = list_files(dir, &n);
		for (size_t i = 0; i < n; i++)
			assert_true(is_readonly(dir, names[i]));
		if (n > 0)
			assert_true(zstd_test(dir, names[n - 1]));
		free_names(names, n);
		char *all = read_dir(dir, &len);
		size_t lines = check_json_lines(all, len);
		/* Records come back in order, none twice, none acked missing. */
		uint32_t next = 0;
		for (char *p = all; p < all + len; ) {
			char *nl = memchr(p, '\n', (size_t)(all + len - p));
			json_error_t je;
			json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);

			assert_int_equal(json_integer_value(json_object_get(j,
			    "seq")), next);
			next++;
			json_decref(j);
			p = nl + 1;
		}
		assert_int_equal(lines, next);
		if (any && next < acked)
			fail_msg("round %d: %u acknowledged, %u found", round,
			    acked, next);
		total_acked += acked;
		free(all);
		test_rmtree(dir);
	}
	print_message("kill -9: %llu records acknowledged, %llu segments "
	    "repaired\n", (unsigned long long)total_acked,
	    (unsigned long long)total_repaired);
	assert_true(total_acked > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_format),
		cmocka_unit_test(test_zstd_roundtrip),
		cmocka_unit_test(test_plain_roundtrip),
		cmocka_unit_test(test_newline_rejected),
		cmocka_unit_test(test_rotation_size),
		cmocka_unit_test(test_rotation_age),
		cmocka_unit_test(test_startup_readonly),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_group_commit_rotating),
		cmocka_unit_test(test_async_group_commit),
		cmocka_unit_test(test_async_rotating),
		cmocka_unit_test(test_async_outcomes),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_repair_zstd),
		cmocka_unit_test(test_repair_plain),
		cmocka_unit_test(test_repair_keeps_valid_lines),
		cmocka_unit_test(test_fault_sync),
		cmocka_unit_test(test_fault_write),
		cmocka_unit_test(test_fault_fsize_limit),
		cmocka_unit_test(test_cut_finished_segment),
		cmocka_unit_test(test_cut_multi_frame),
		cmocka_unit_test(test_kill9),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
