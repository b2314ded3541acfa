/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_spool.c - the relay spool: durable writes, the exact file layout,
 * reading a message back, removal, and recovery at start (complete files
 * found again, interrupted writes removed, damaged files kept).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "spool.h"

/* Names in dir, sorted, joined by spaces. */
static char *
listing(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *names[16];
	size_t n = 0;
	struct buf b = { 0 };

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < 16)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			names[n++] = xstrdup(de->d_name);
	closedir(d);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(names[j], names[i]) < 0) {
				char *t = names[i];
				names[i] = names[j];
				names[j] = t;
			}
	for (size_t i = 0; i < n; i++) {
		buf_printf(&b, "%s%s", i ? " " : "", names[i]);
		free(names[i]);
	}
	return b.data != NULL ? buf_steal(&b) : xstrdup("");
}

static const char ID1[] = "0d9a2c4e1b2a11ef8f3c0242ac120002";
static const char ID2[] = "1e8b3d5f1b2a11ef8f3c0242ac120002";
static const char TRACE[] = "Received: from client (127.0.0.1)\r\n"
    "\tby mx.test.example (oobd) with ESMTP id x\r\n";
static const char DATA[] = "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n";

static struct spool_entry *
entry(const char *id)
{
	struct spool_entry *e = xcalloc(1, sizeof(*e));

	snprintf(e->id, sizeof(e->id), "%s", id);
	e->sender = xstrdup("sender@example.org");
	e->recipient = xstrdup("r\xc3\xa9@example.com");
	e->queue = xstrdup("example.com");
	e->listener = xstrdup("127.0.0.1:2525");
	e->hop = xstrdup("[127.0.0.1]:2526");
	e->created.tv_sec = 1764000000;
	e->created.tv_nsec = 123456000;
	e->meta = json_pack("{s:s}", "received_from", "127.0.0.1:40000");
	e->headers = json_pack("{s:s}", "Subject", "hi");
	return e;
}

static void
test_write_layout(void **state)
{
	char *dir = test_mkdtemp("spool");
	char *err = NULL;
	struct spool *sp = spool_open(dir, &err);
	struct spool_entry *e = entry(ID1);
	struct stat st;

	(void)state;
	assert_non_null(sp);
	assert_int_equal(0, spool_write(sp, e, TRACE, strlen(TRACE), DATA,
	    strlen(DATA)));
	assert_int_equal(strlen(TRACE) + strlen(DATA), e->size);
	char *names = listing(dir);
	assert_string_equal(ID1, names);
	free(names);

	char *path = xasprintf("%s/%s", dir, ID1);
	assert_int_equal(0, stat(path, &st));
	assert_int_equal(0600, st.st_mode & 0777);
	size_t len;
	char *text = read_file(path, &len);
	char *expect = xasprintf("{\"v\":1,\"id\":\"%s\","
	    "\"sender\":\"sender@example.org\","
	    "\"recipient\":\"r\xc3\xa9@example.com\",\"queue\":\"example.com\","
	    "\"listener\":\"127.0.0.1:2525\",\"hop\":\"[127.0.0.1]:2526\","
	    "\"created\":1764000000,\"created_nsec\":123456000,"
	    "\"meta\":{\"received_from\":\"127.0.0.1:40000\"},"
	    "\"headers\":{\"Subject\":\"hi\"}}\n%s%s", ID1, TRACE, DATA);
	assert_int_equal(strlen(expect), len);
	assert_memory_equal(expect, text, len);
	free(expect);
	free(text);

	text = spool_read_message(sp, ID1, &len);
	assert_non_null(text);
	assert_int_equal(strlen(TRACE) + strlen(DATA), len);
	assert_memory_equal(TRACE, text, strlen(TRACE));
	assert_memory_equal(DATA, text + strlen(TRACE), strlen(DATA));
	free(text);

	/* The same id twice is refused, and leaves the first intact. */
	assert_int_equal(-1, spool_write(sp, e, "", 0, "x", 1));
	assert_int_equal(EEXIST, errno);
	names = listing(dir);
	assert_string_equal(ID1, names);
	free(names);

	assert_int_equal(0, spool_remove(sp, ID1));
	names = listing(dir);
	assert_string_equal("", names);
	free(names);
	assert_null(spool_read_message(sp, ID1, &len));
	assert_int_equal(ENOENT, errno);
	assert_int_equal(-1, spool_remove(sp, ID1));

	free(path);
	spool_entry_free(e);
	spool_close(sp);
	test_rmtree(dir);
}

struct found {
	struct spool_entry *v[4];
	size_t n;
};

static void
collect(void *arg, struct spool_entry *e)
{
	struct found *f = arg;

	assert_true(f->n < 4);
	f->v[f->n++] = e;
}

static void
test_recover(void **state)
{
	char *dir = test_mkdtemp("spool");
	char *err = NULL;
	struct spool *sp = spool_open(dir, &err);
	struct spool_entry *a = entry(ID1), *b = entry(ID2);
	struct found f = { .n = 0 };
	size_t removed = 99;

	(void)state;
	assert_int_equal(0, spool_write(sp, b, "", 0, DATA, strlen(DATA)));
	assert_int_equal(0, spool_write(sp, a, TRACE, strlen(TRACE), DATA,
	    strlen(DATA)));
	/* An interrupted write, a damaged file and an unrelated file. */
	char *p = xasprintf("%s/" SPOOL_TMP_PREFIX "2f7c4e6a1b2a11ef8f3c0242ac120002",
	    dir);
	FILE *fp = fopen(p, "w");
	fputs("{\"v\":1,\"id\":\"2f7c", fp);
	fclose(fp);
	free(p);
	p = xasprintf("%s/3a6d5f7b1b2a11ef8f3c0242ac120002", dir);
	fp = fopen(p, "w");
	fputs("not an envelope\nSubject: x\r\n\r\n", fp);
	fclose(fp);
	free(p);
	p = xasprintf("%s/README", dir);
	fp = fopen(p, "w");
	fclose(fp);
	free(p);
	spool_close(sp);

	sp = spool_open(dir, &err);
	assert_non_null(sp);
	assert_int_equal(2, spool_recover(sp, collect, &f, &removed));
	assert_int_equal(1, removed);
	assert_int_equal(2, f.n);
	/* In id order, every field as written. */
	assert_string_equal(ID1, f.v[0]->id);
	assert_string_equal(ID2, f.v[1]->id);
	assert_string_equal("sender@example.org", f.v[0]->sender);
	assert_string_equal("r\xc3\xa9@example.com", f.v[0]->recipient);
	assert_string_equal("example.com", f.v[0]->queue);
	assert_string_equal("127.0.0.1:2525", f.v[0]->listener);
	assert_string_equal("[127.0.0.1]:2526", f.v[0]->hop);
	assert_int_equal(1764000000, f.v[0]->created.tv_sec);
	assert_int_equal(123456000, f.v[0]->created.tv_nsec);
	assert_int_equal(strlen(TRACE) + strlen(DATA), f.v[0]->size);
	assert_int_equal(strlen(DATA), f.v[1]->size);
	char *m = json_dumps(f.v[0]->meta, JSON_COMPACT);
	assert_string_equal("{\"received_from\":\"127.0.0.1:40000\"}", m);
	free(m);
	m = json_dumps(f.v[0]->headers, JSON_COMPACT);
	assert_string_equal("{\"Subject\":\"hi\"}", m);
	free(m);
	/* The temporary file is gone; the damaged one is kept. */
	char *names = listing(dir);
	assert_string_equal("0d9a2c4e1b2a11ef8f3c0242ac120002 "
	    "1e8b3d5f1b2a11ef8f3c0242ac120002 "
	    "3a6d5f7b1b2a11ef8f3c0242ac120002 README", names);
	free(names);

	for (size_t i = 0; i < f.n; i++)
		spool_entry_free(f.v[i]);
	spool_entry_free(a);
	spool_entry_free(b);
	spool_close(sp);
	test_rmtree(dir);
}

static void
test_open_creates(void **state)
{
	char *dir = test_mkdtemp("spool");
	char *sub = xasprintf("%s/a/b/spool", dir);
	char *err = NULL;
	struct spool *sp = spool_open(sub, &err);
	struct stat st;

	(void)state;
	assert_non_null(sp);
	assert_string_equal(sub, spool_dir(sp));
	assert_int_equal(0, stat(sub, &st));
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(0700, st.st_mode & 0777);
	spool_close(sp);

	/* A file in the way is a clear error. */
	char *file = xasprintf("%s/file", dir);
	FILE *fp = fopen(file, "w");
	fclose(fp);
	assert_null(spool_open(file, &err));
	char *expect = xasprintf("%s: cannot open the spool directory: "
	    "Not a directory", file);
	assert_string_equal(expect, err);
	free(expect);
	free(err);
	free(file);
	free(sub);
	test_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_layout),
		cmocka_unit_test(test_recover),
		cmocka_unit_test(test_open_creates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
