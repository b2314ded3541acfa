/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_input.c - message files, Maildirs, mbox files and standard input.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input.h"

/* What the callbacks saw. */
struct seen {
	size_t	 n;
	char	*name[64];
	char	*data[64];
	size_t	 len[64];
	size_t	 nerr;
	char	*ename[8];
	char	*ereason[8];
	int	 fail_at;	/* make the fail_at-th message (1-based) fail */
};

static int
on_msg(void *arg, const char *name, const char *data, size_t len)
{
	struct seen *s = arg;

	if (s->n < nitems(s->name)) {
		s->name[s->n] = xstrdup(name);
		s->data[s->n] = xmalloc(len + 1);
		memcpy(s->data[s->n], data, len);
		s->data[s->n][len] = '\0';
		s->len[s->n] = len;
	}
	s->n++;
	return (int)s->n == s->fail_at ? -1 : 0;
}

static void
on_err(void *arg, const char *name, const char *reason)
{
	struct seen *s = arg;

	if (s->nerr < nitems(s->ename)) {
		s->ename[s->nerr] = xstrdup(name);
		s->ereason[s->nerr] = xstrdup(reason);
	}
	s->nerr++;
}

static const struct input_opts opts = {
	.fn = on_msg,
	.errfn = on_err,
	.max_size = INPUT_MAX_SIZE_DEFAULT,
};

static void
seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n && i < nitems(s->name); i++) {
		free(s->name[i]);
		free(s->data[i]);
	}
	for (size_t i = 0; i < s->nerr && i < nitems(s->ename); i++) {
		free(s->ename[i]);
		free(s->ereason[i]);
	}
	memset(s, 0, sizeof(*s));
}

/* Assert that message i is exactly the bytes exp[0..n). */
static void
assert_msg(const struct seen *s, size_t i, const char *name, const char *exp,
    size_t n)
{
	assert_true(i < s->n);
	assert_string_equal(s->name[i], name);
	assert_int_equal(s->len[i], n);
	assert_memory_equal(s->data[i], exp, n);
}

#define assert_msg_str(s, i, name, exp) \
	assert_msg((s), (i), (name), (exp), strlen(exp))

static char tmpdir[64];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static int
setup_tmp(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/oobd-test-input.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown_tmp(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write a file under tmpdir; returns its path (caller frees). */
static char *
write_tmp(const char *rel, const char *data, size_t len)
{
	char *path = xasprintf("%s/%s", tmpdir, rel);
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void
mkdir_tmp(const char *rel)
{
	char *path = xasprintf("%s/%s", tmpdir, rel);

	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
}

static void
test_message_file(void **state)
{
	static const char msg[] = "Subject: hi\r\n\r\nFrom here on, body\n";
	struct seen s = { 0 };
	char *path;

	(void)state;
	path = write_tmp("one.eml", msg, sizeof(msg) - 1);
	assert_int_equal(input_each(path, &opts, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.nerr, 0);
	assert_msg_str(&s, 0, path, msg);
	seen_free(&s);
	free(path);
}

static void
test_corpus_message_file(void **state)
{
	struct seen s = { 0 };
	char *path = corpus_path("kumomta/rfc3464/1.eml");
	size_t len;
	char *data = corpus_read("kumomta/rfc3464/1.eml", &len);

	(void)state;
	assert_int_equal(input_each(path, &opts, &s), 0);
	assert_int_equal(s.n, 1);
	assert_msg(&s, 0, path, data, len);
	seen_free(&s);
	free(data);
	free(path);
}

static void
test_empty_file(void **state)
{
	struct seen s = { 0 };
	char *path;

	(void)state;
	path = write_tmp("empty.eml", "", 0);
	assert_int_equal(input_each(path, &opts, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.nerr, 0);
	assert_msg(&s, 0, path, "", 0);
	seen_free(&s);
	free(path);
}

static void
test_missing_path(void **state)
{
	struct seen s = { 0 };
	char *path = xasprintf("%s/does-not-exist.eml", tmpdir);

	(void)state;
	assert_int_equal(input_each(path, &opts, &s), -1);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.nerr, 1);
	assert_string_equal(s.ename[0], path);
	assert_string_equal(s.ereason[0], "No such file or directory");
	seen_free(&s);
	free(path);
}

/*
 * A directory without cur/ or new/: its files in name order, an mbox
 * among them split, dot files and subdirectories skipped.
 */
static void
test_plain_directory(void **state)
{
	struct seen s = { 0 };
	char *path = xasprintf("%s/plain", tmpdir);
	char *name;

	(void)state;
	mkdir_tmp("plain");
	mkdir_tmp("plain/sub");
	free(write_tmp("plain/b.eml", "Subject: b\n\nb\n", 14));
	free(write_tmp("plain/a.eml", "Subject: a\n\nx\n", 14));
	free(write_tmp("plain/.hidden", "Subject: h\n\nh\n", 14));
	free(write_tmp("plain/sub/c.eml", "Subject: c\n\nc\n", 14));
	free(write_tmp("plain/c.mbox", "From x Thu Jan  1 00:00:00 2024\n"
	    "Subject: m1\n\n1\n\nFrom y Thu Jan  1 00:00:00 2024\n"
	    "Subject: m2\n\n2\n", 95));
	assert_int_equal(input_each(path, &opts, &s), 0);
	assert_int_equal(s.nerr, 0);
	assert_int_equal(s.n, 4);
	name = xasprintf("%s/a.eml", path);
	assert_msg_str(&s, 0, name, "Subject: a\n\nx\n");
	free(name);
	name = xasprintf("%s/b.eml", path);
	assert_msg_str(&s, 1, name, "Subject: b\n\nb\n");
	free(name);
	name = xasprintf("%s/c.mbox:1", path);
	assert_msg_str(&s, 2, name, "Subject: m1\n\n1\n");
	free(name);
	name = xasprintf("%s/c.mbox:2", path);
	assert_msg_str(&s, 3, name, "Subject: m2\n\n2\n");
	free(name);
	seen_free(&s);
	free(path);
}

static void
test_maildir(void **state)
{
	struct seen s = { 0 };
	char *dir = xasprintf("%s/Maildir", tmpdir);
	char *name;

	(void)state;
	mkdir_tmp("Maildir");
	mkdir_tmp("Maildir/cur");
	mkdir_tmp("Maildir/new");
	mkdir_tmp("Maildir/tmp");
	mkdir_tmp("Maildir/cur/subdir");
	free(write_tmp("Maildir/cur/1700000002.M2P2.host:2,S",
	    "Subject: b\n\nb\n", 14));
	free(write_tmp("Maildir/cur/1700000001.M1P1.host:2,",
	    "Subject: a\n\na\n", 14));
	free(write_tmp("Maildir/cur/.hidden", "Subject: h\n\nh\n", 14));
	/* A Maildir file is one message even when it starts with "From ". */
	free(write_tmp("Maildir/new/1700000000.M0P0.host",
	    "From x Thu Jan  1 00:00:00 2024\nSubject: c\n\nFrom y\n", 51));
	free(write_tmp("Maildir/tmp/1700000003.M3P3.host",
	    "Subject: t\n\nt\n", 14));

	assert_int_equal(input_each(dir, &opts, &s), 0);
	assert_int_equal(s.nerr, 0);
	assert_int_equal(s.n, 3);
	name = xasprintf("%s/cur/1700000001.M1P1.host:2,", dir);
	assert_msg_str(&s, 0, name, "Subject: a\n\na\n");
	free(name);
	name = xasprintf("%s/cur/1700000002.M2P2.host:2,S", dir);
	assert_msg_str(&s, 1, name, "Subject: b\n\nb\n");
	free(name);
	name = xasprintf("%s/new/1700000000.M0P0.host", dir);
	assert_msg_str(&s, 2, name,
	    "From x Thu Jan  1 00:00:00 2024\nSubject: c\n\nFrom y\n");
	free(name);
	seen_free(&s);
	free(dir);
}

static void
test_maildir_new_only_and_bad_entry(void **state)
{
	struct seen s = { 0 };
	char *dir = xasprintf("%s/md2", tmpdir);
	char *name, *target;

	(void)state;
	mkdir_tmp("md2");
	mkdir_tmp("md2/new");
	free(write_tmp("md2/new/b", "Subject: b\n\nb\n", 14));
	free(write_tmp("md2/new/c", "Subject: c\n\nc\n", 14));
	/* A dangling link: reported, and the other messages still read. */
	name = xasprintf("%s/new/a", dir);
	target = xasprintf("%s/nowhere", tmpdir);
	assert_int_equal(symlink(target, name), 0);
	free(target);

	assert_int_equal(input_each(dir, &opts, &s), -1);
	assert_int_equal(s.nerr, 1);
	assert_string_equal(s.ename[0], name);
	assert_string_equal(s.ereason[0], "No such file or directory");
	free(name);
	assert_int_equal(s.n, 2);
	name = xasprintf("%s/new/b", dir);
	assert_msg_str(&s, 0, name, "Subject: b\n\nb\n");
	free(name);
	name = xasprintf("%s/new/c", dir);
	assert_msg_str(&s, 1, name, "Subject: c\n\nc\n");
	free(name);
	seen_free(&s);
	free(dir);
}

/*
 * A FIFO in a Maildir is refused at once (opening it for reading would
 * wait for a writer for ever), and the messages around it are read.
 */
static void
test_maildir_fifo(void **state)
{
	struct seen s = { 0 };
	char *dir = xasprintf("%s/md3", tmpdir);
	char *name;

	(void)state;
	mkdir_tmp("md3");
	mkdir_tmp("md3/cur");
	free(write_tmp("md3/cur/a", "Subject: a\n\na\n", 14));
	free(write_tmp("md3/cur/c", "Subject: c\n\nc\n", 14));
	name = xasprintf("%s/cur/b", dir);
	assert_int_equal(mkfifo(name, 0600), 0);

	assert_int_equal(input_each(dir, &opts, &s), -1);
	assert_int_equal(s.nerr, 1);
	assert_string_equal(s.ename[0], name);
	assert_string_equal(s.ereason[0], "not a regular file");
	free(name);
	assert_int_equal(s.n, 2);
	name = xasprintf("%s/cur/a", dir);
	assert_msg_str(&s, 0, name, "Subject: a\n\na\n");
	free(name);
	name = xasprintf("%s/cur/c", dir);
	assert_msg_str(&s, 1, name, "Subject: c\n\nc\n");
	free(name);
	seen_free(&s);
	free(dir);
}

/*
 * max_size: a larger file is refused without being read, each message of
 * an mbox is checked on its own, and a stream (a character device) is
 * read no further than max_size bytes.
 */
static void
test_max_size(void **state)
{
	struct input_opts small = opts;
	struct seen s = { 0 };
	char *path, *name;

	(void)state;
	small.max_size = 14;
	path = write_tmp("fits.eml", "Subject: a\n\na\n", 14);
	assert_int_equal(input_each(path, &small, &s), 0);
	assert_int_equal(s.n, 1);
	assert_msg_str(&s, 0, path, "Subject: a\n\na\n");
	seen_free(&s);
	free(path);

	path = write_tmp("big.eml", "Subject: a\n\nab\n", 15);
	assert_int_equal(input_each(path, &small, &s), -1);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.nerr, 1);
	assert_string_equal(s.ename[0], path);
	assert_string_equal(s.ereason[0], "larger than 14 bytes (--max-size)");
	seen_free(&s);
	free(path);

	static const char box[] = "From x\nSubject: a\n\na\n\n"
	    "From y\nSubject: b\n\nbig\n\nFrom z\nSubject: c\n\nc\n";
	path = write_tmp("sizes.mbox", box, strlen(box));
	assert_int_equal(input_each(path, &small, &s), -1);
	assert_int_equal(s.n, 2);
	name = xasprintf("%s:1", path);
	assert_msg_str(&s, 0, name, "Subject: a\n\na\n");
	free(name);
	name = xasprintf("%s:3", path);
	assert_msg_str(&s, 1, name, "Subject: c\n\nc\n");
	free(name);
	assert_int_equal(s.nerr, 1);
	name = xasprintf("%s:2", path);
	assert_string_equal(s.ename[0], name);
	free(name);
	assert_string_equal(s.ereason[0], "larger than 14 bytes (--max-size)");
	seen_free(&s);
	free(path);

	small.max_size = 100000;
	assert_int_equal(input_each("/dev/zero", &small, &s), -1);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.nerr, 1);
	assert_string_equal(s.ename[0], "/dev/zero");
	assert_string_equal(s.ereason[0],
	    "larger than 100000 bytes (--max-size)");
	seen_free(&s);
}

static void
test_mbox_corpus_0(void **state)
{
	struct seen s = { 0 };
	char *path = corpus_path("sisimai/mbox/mbox-0");
	char *name;
	size_t len;
	char *data = corpus_read("sisimai/mbox/mbox-0", &len);

	(void)state;
	assert_int_equal(len, 96906);
	assert_int_equal(input_each(path, &opts, &s), 0);
	assert_int_equal(s.nerr, 0);
	assert_int_equal(s.n, 37);
	for (size_t i = 0; i < s.n; i++) {
		name = xasprintf("%s:%zu", path, i + 1);
		assert_string_equal(s.name[i], name);
		free(name);
	}
	/*
	 * Cross-check every message against a split done here independently:
	 * separators are "\r\n" "\r\n" "From ...\r\n" in this CRLF file.
	 */
	const char *p = data, *end = data + len;
	for (size_t i = 0; i < s.n; i++) {
		const char *body = memchr(p, '\n', (size_t)(end - p)) + 1;
		const char *next = memmem(body, (size_t)(end - body),
		    "\r\n\r\nFrom ", 9);
		size_t n = next ? (size_t)(next - body) + 2 :
		    (size_t)(end - body) - 2;
		assert_int_equal(s.len[i], n);
		assert_memory_equal(s.data[i], body, n);
		p = next ? next + 4 : end;
	}
	/*
	 * The first "From " line is 45 bytes with its CRLF; message 1 ends
	 * before the empty separator line at offset 2512, message 2 starts
	 * after the next "From " line, and message 37 runs to the end but for
	 * the final empty line.
	 */
	name = xasprintf("%s:1", path);
	assert_msg(&s, 0, name, data + 45, 2467);
	free(name);
	name = xasprintf("%s:2", path);
	assert_msg(&s, 1, name, data + 2559, 2728);
	free(name);
	name = xasprintf("%s:37", path);
	assert_msg(&s, 36, name, data + 94675, 2229);
	free(name);
	assert_memory_equal(s.data[36] + 2229 - 40,
	    "KZh014511.1247824040/mx.example.jp--\r\n\r\n", 40);
	seen_free(&s);
	free(data);
	free(path);
}

static void
test_mbox_corpus_1(void **state)
{
	struct seen s = { 0 };
	char *path = corpus_path("sisimai/mbox/mbox-1");
	char *name = xasprintf("%s:1", path);
	size_t len;
	char *data = corpus_read("sisimai/mbox/mbox-1", &len);

	(void)state;
	/* One "From " line (44 bytes) and a final empty line. */
	assert_int_equal(len, 2535);
	assert_int_equal(input_each(path, &opts, &s), 0);
	assert_int_equal(s.n, 1);
	assert_msg(&s, 0, name, data + 44, 2490);
	assert_memory_equal(s.data[0], "Return-Path: <MAILER-DAEMON@", 28);
	seen_free(&s);
	free(data);
	free(name);
	free(path);
}

/* An mbox with LF line ends; the variants replace "\n" by eol. */
static const char mbox_lf[] =
    "From a@example.com Mon Jan  1 00:00:00 2024\n"
    "Subject: one\n"
    "\n"
    "body one\n"
    "From not-a-separator: no blank line before it\n"
    "\n"
    "From b@example.com Mon Jan  1 00:00:01 2024\n"
    "Subject: two\n"
    "\n"
    ">From quoted\n"
    ">>From twice quoted\n"
    "> From not quoted\n"
    "x>From not quoted\n"
    ">From\n"
    "\n"
    "\n"
    "From c@example.com Mon Jan  1 00:00:02 2024\n"
    "Subject: three\n"
    "\n"
    "last\n"
    "\n";

static const char *const mbox_msgs[] = {
	"Subject: one\n"
	"\n"
	"body one\n"
	"From not-a-separator: no blank line before it\n",

	"Subject: two\n"
	"\n"
	"From quoted\n"
	">From twice quoted\n"
	"> From not quoted\n"
	"x>From not quoted\n"
	">From\n"
	"\n",

	"Subject: three\n"
	"\n"
	"last\n",
};

static char *
replace_eol(const char *s, const char *eol)
{
	struct buf b = { 0 };

	for (; *s; s++) {
		if (*s == '\n')
			buf_puts(&b, eol);
		else
			buf_putc(&b, *s);
	}
	return buf_steal(&b);
}

static void
check_mbox_variant(const char *eol)
{
	struct seen s = { 0 };
	char *mbox = replace_eol(mbox_lf, eol);

	assert_int_equal(input_mbox("box", mbox, strlen(mbox), &opts, &s),
	    0);
	assert_int_equal(s.n, 3);
	for (size_t i = 0; i < 3; i++) {
		char *exp = replace_eol(mbox_msgs[i], eol);
		char *name = xasprintf("box:%zu", i + 1);
		assert_msg_str(&s, i, name, exp);
		free(name);
		free(exp);
	}
	seen_free(&s);
	free(mbox);
}

static void
test_mbox_lf(void **state)
{
	(void)state;
	check_mbox_variant("\n");
}

static void
test_mbox_crlf(void **state)
{
	(void)state;
	check_mbox_variant("\r\n");
}

static void
test_mbox_cr(void **state)
{
	(void)state;
	check_mbox_variant("\r");
}

static void
test_mbox_edges(void **state)
{
	struct seen s = { 0 };
	static const char noeol[] = "From x\nSubject: a\n\nno final newline";
	static const char empty_msgs[] = "From x\n\nFrom y\n";
	static const char lead[] = "stray\n\nFrom x\nSubject: a\n";

	(void)state;
	assert_int_equal(input_mbox("m", noeol, strlen(noeol), &opts, &s), 0);
	assert_int_equal(s.n, 1);
	assert_msg_str(&s, 0, "m:1", "Subject: a\n\nno final newline");
	seen_free(&s);

	/* Two empty messages: the blank line is the separator. */
	assert_int_equal(input_mbox("m", empty_msgs, strlen(empty_msgs),
	    &opts, &s), 0);
	assert_int_equal(s.n, 2);
	assert_msg_str(&s, 0, "m:1", "");
	assert_msg_str(&s, 1, "m:2", "");
	seen_free(&s);

	/* Bytes before the first "From " line are not thrown away. */
	assert_int_equal(input_mbox("m", lead, strlen(lead), &opts, &s), 0);
	assert_int_equal(s.n, 2);
	assert_msg_str(&s, 0, "m:1", "stray\n");
	assert_msg_str(&s, 1, "m:2", "Subject: a\n");
	seen_free(&s);

	assert_int_equal(input_mbox("m", "", 0, &opts, &s), 0);
	assert_int_equal(s.n, 0);
	seen_free(&s);
}

static void
test_mbox_file_and_failing_callback(void **state)
{
	struct seen s = { .fail_at = 2 };
	char *path = write_tmp("box.mbox", mbox_lf, strlen(mbox_lf));
	char *name;

	(void)state;
	/* A message that fails makes the result -1; the rest is still read. */
	assert_int_equal(input_each(path, &opts, &s), -1);
	assert_int_equal(s.nerr, 0);
	assert_int_equal(s.n, 3);
	for (size_t i = 0; i < 3; i++) {
		name = xasprintf("%s:%zu", path, i + 1);
		assert_msg_str(&s, i, name, mbox_msgs[i]);
		free(name);
	}
	seen_free(&s);
	free(path);
}

/* Run input_each("-") with standard input read from a file. */
static void
run_stdin(const char *data, size_t len, struct seen *s, int *rc)
{
	char *path = write_tmp("stdin", data, len);
	int saved = dup(STDIN_FILENO);
	int fd = open(path, O_RDONLY);

	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
	*rc = input_each("-", &opts, s);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	unlink(path);
	free(path);
}

static void
test_stdin(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	struct seen s = { 0 };
	int rc;

	(void)state;
	run_stdin(msg, strlen(msg), &s, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(s.n, 1);
	assert_msg_str(&s, 0, "-", msg);
	seen_free(&s);

	run_stdin(mbox_lf, strlen(mbox_lf), &s, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(s.n, 3);
	assert_msg_str(&s, 0, "-:1", mbox_msgs[0]);
	assert_msg_str(&s, 1, "-:2", mbox_msgs[1]);
	assert_msg_str(&s, 2, "-:3", mbox_msgs[2]);
	seen_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_file),
		cmocka_unit_test(test_corpus_message_file),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_missing_path),
		cmocka_unit_test(test_plain_directory),
		cmocka_unit_test(test_maildir),
		cmocka_unit_test(test_maildir_new_only_and_bad_entry),
		cmocka_unit_test(test_maildir_fifo),
		cmocka_unit_test(test_max_size),
		cmocka_unit_test(test_mbox_corpus_0),
		cmocka_unit_test(test_mbox_corpus_1),
		cmocka_unit_test(test_mbox_lf),
		cmocka_unit_test(test_mbox_crlf),
		cmocka_unit_test(test_mbox_cr),
		cmocka_unit_test(test_mbox_edges),
		cmocka_unit_test(test_mbox_file_and_failing_callback),
		cmocka_unit_test(test_stdin),
	};

	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
