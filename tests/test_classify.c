/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_classify.c - the bounce classifier: KumoMTA's rule files give
 * KumoMTA's answers, first match in load order, the shipped rules have no
 * shadowed pattern, error messages, reload, and the literal prefilter
 * agreeing with a plain first-match loop.
 */
#include "testutil.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <unistd.h>

#include "classify.h"
#include "record.h"
#include "report.h"
#include "tomlbridge.h"

/* ---- helpers ---- */

static char *tmpdir;

static int
setup_tmp(void **state)
{
	(void)state;
	tmpdir = test_mkdtemp("classify");
	return 0;
}

static int
teardown_tmp(void **state)
{
	(void)state;
	test_rmtree(tmpdir);
	return 0;
}

/* Write a file under the temporary directory; returns its path. */
static char *
write_tmp(const char *name, const char *text)
{
	return test_write_file(tmpdir, name, text);
}

static char *
kumo_rules(const char *name)
{
	char *rel = xasprintf("kumomta/bounce_classifier/%s", name);
	char *p = corpus_path(rel);

	free(rel);
	return p;
}

static char *
source_path(const char *rel)
{
	const char *src = getenv("OOBD_SRCDIR");

	if (src == NULL)
		return xasprintf("%s/../%s", OOBD_SOURCE_CONFDIR, rel);
	return xasprintf("%s/%s", src, rel);
}

/* Load exactly the given files; fails the test on error. */
static struct classifier *
load_ok(const char *const *files, size_t n)
{
	char *err = NULL;
	struct classifier *c = classifier_load(files, n, &err);

	if (c == NULL)
		fail_msg("classifier_load: %s", err);
	assert_null(err);
	return c;
}

/* The error message of a load that must fail. */
static char *
load_err(const char *const *files, size_t n)
{
	char *err = NULL;
	struct classifier *c = classifier_load(files, n, &err);

	assert_null(c);
	assert_non_null(err);
	return err;
}

static const char *
cls(const struct classifier *c, const char *line)
{
	return classifier_classify_line(c, line, strlen(line));
}

/* ---- KumoMTA's own files give KumoMTA's answers ---- */

static void
test_iana_kumomta_expectations(void **state)
{
	char *iana = kumo_rules("iana.toml");
	const char *files[] = { iana };
	struct classifier *c;

	(void)state;
	c = load_ok(files, 1);
	assert_int_equal(classifier_rule_count(c), 26);
	assert_string_equal(cls(c, "552 5.2.2 mailbox full"), "QuotaIssues");
	assert_string_equal(cls(c, "552 4.2.2 mailbox full"), "QuotaIssues");
	assert_string_equal(cls(c, "352 5.2.2 mailbox full"), "Uncategorized");
	assert_string_equal(cls(c, "525 4.7.13 account disabled"),
	    "InactiveMailbox");
	assert_string_equal(cls(c, "551 4.7.17 owner changed"),
	    "InvalidRecipient");
	assert_string_equal(cls(c, "551 4.7.18 domain changed"), "BadDomain");
	/* KumoMTA's shadowing is part of compatibility */
	assert_string_equal(cls(c, "452 4.5.3 too many recipients"),
	    "ProtocolErrors");
	assert_int_equal(classifier_match_index(c,
	    "452 4.5.3 too many recipients", 30), 21);
	/* more of the file, including the x.7 alternation */
	assert_string_equal(cls(c, "550 5.1.1 5.1.1 user unknown"),
	    "InvalidRecipient");
	assert_string_equal(cls(c, "553 5.1.1 user unknown"), "Uncategorized");
	assert_string_equal(cls(c, "550 5.7.1 relaying denied"),
	    "AuthenticationFailed");
	assert_string_equal(cls(c, "550 5.7.38 flood"), "PolicyRelated");
	assert_string_equal(cls(c, "421 4.4.2 bad connection"),
	    "BadConnection");
	assert_string_equal(cls(c, "250 "), "Uncategorized");
	classifier_unref(c);
	free(iana);
}

static void
test_community_before_iana(void **state)
{
	char *iana = kumo_rules("iana.toml");
	char *comm = kumo_rules("community-bounces.toml");
	const char *both[] = { comm, iana };
	const char *rev[] = { iana, comm };
	const char *only[] = { iana };
	struct classifier *c, *r, *o;

	(void)state;
	c = load_ok(both, 2);
	r = load_ok(rev, 2);
	o = load_ok(only, 1);
	assert_int_equal(classifier_rule_count(c), 135);

	/* the text rules win over iana's code rules */
	assert_string_equal(cls(c, "550 5.7.1 Message rejected as spam"),
	    "SpamBlock");
	assert_string_equal(cls(o, "550 5.7.1 Message rejected as spam"),
	    "AuthenticationFailed");
	assert_string_equal(cls(c, "552 5.2.2 OverQuotaPerm"),
	    "InactiveMailbox");
	assert_string_equal(cls(o, "552 5.2.2 OverQuotaPerm"), "QuotaIssues");
	assert_string_equal(cls(c, "550 5.1.4 Recipient address rejected: "
	    "Access denied. AS(201806281)"), "PolicyRelated");
	assert_string_equal(cls(o, "550 5.1.4 Recipient address rejected: "
	    "Access denied. AS(201806281)"), "InvalidRecipient");
	assert_string_equal(cls(c, "554 5.7.1 Email not accepted for policy "
	    "reasons"), "PolicyRelated");
	assert_string_equal(cls(c, "503 5.5.1 Bad sequence of commands"),
	    "ProtocolErrors");
	assert_string_equal(cls(c, "530 5.7.0 Authentication required"),
	    "AuthenticationFailed");
	/*
	 * The community pattern "This mailbox is disabled (554\\.30)" has a
	 * group where parentheses were meant, so Yahoo's real text does not
	 * match it, in KumoMTA as here.
	 */
	assert_string_equal(cls(c, "554 delivery error: dd This mailbox is "
	    "disabled (554.30). - mta1234.mail.ne1.yahoo.com"),
	    "Uncategorized");
	assert_string_equal(cls(c, "554 delivery error: dd This mailbox is "
	    "disabled 554.30 - mta1234.mail.ne1.yahoo.com"),
	    "InactiveMailbox");
	assert_string_equal(cls(c, "550 5.1.1 user@example.com User unknown"),
	    "InvalidRecipient");
	assert_string_equal(cls(c, "498 4.4.0 No MX for example.com"),
	    "DNSFailure");
	/* codes without a text rule still reach iana's */
	assert_string_equal(cls(c, "552 5.3.4 too big"), "QuotaIssues");
	assert_string_equal(cls(c, "250 "), "Uncategorized");

	/* and with iana first, the code rules win */
	assert_string_equal(cls(r, "550 5.7.1 Message rejected as spam"),
	    "AuthenticationFailed");
	assert_string_equal(cls(r, "552 5.2.2 OverQuotaPerm"), "QuotaIssues");
	assert_string_equal(cls(r, "550 Message rejected as spam"),
	    "SpamBlock");

	classifier_unref(c);
	classifier_unref(r);
	classifier_unref(o);
	free(iana);
	free(comm);
}

/* ---- precedence and merging ---- */

static void
test_first_match_file_then_label_order(void **state)
{
	char *a = write_tmp("order-a.toml",
	    "[rules]\n"
	    "Zeta = [\"^550 shared\", \"^550 zeta\"]\n"
	    "Alpha = [\"^550 shared\", \"^550 alpha\", \"^550 zeta\"]\n");
	char *b = write_tmp("order-b.toml",
	    "[rules]\n"
	    "Alpha = [\"^550 b-only\"]\n"
	    "Beta = [\"^550 b-only\", \"^550 alpha\"]\n");
	const char *ab[] = { a, b };
	const char *ba[] = { b, a };
	struct classifier *c1 = load_ok(ab, 2), *c2 = load_ok(ba, 2);

	(void)state;
	/* label order in the file, not alphabetical */
	assert_string_equal(cls(c1, "550 shared"), "Zeta");
	assert_string_equal(cls(c1, "550 zeta"), "Zeta");
	assert_string_equal(cls(c1, "550 alpha"), "Alpha");
	assert_string_equal(cls(c1, "550 b-only"), "Alpha");
	/* file order decides between files */
	assert_string_equal(cls(c2, "550 alpha"), "Beta");
	assert_string_equal(cls(c2, "550 shared"), "Zeta");
	assert_string_equal(cls(c2, "551 none"), "Uncategorized");
	classifier_unref(c1);
	classifier_unref(c2);
	free(a);
	free(b);
}

static void
test_merge_concatenates_same_label(void **state)
{
	char *a = write_tmp("merge-a.toml",
	    "[rules]\n"
	    "InvalidRecipient = [\"^550 a\"]\n"
	    "SpamBlock = [\"^550 b\"]\n");
	char *b = write_tmp("merge-b.json",
	    "{\"rules\": {\"InvalidRecipient\": [\"^550 b\", \"^550 c\"]}}");
	const char *files[] = { a, b };
	struct classifier *c = load_ok(files, 2);
	const char *label, *pattern, *file;

	(void)state;
	assert_int_equal(classifier_rule_count(c), 4);
	assert_string_equal(cls(c, "550 a"), "InvalidRecipient");
	assert_string_equal(cls(c, "550 b"), "SpamBlock");
	assert_string_equal(cls(c, "550 c"), "InvalidRecipient");
	/* load order: a's two labels, then b's patterns appended */
	assert_int_equal(classifier_rule_info(c, 0, &label, &pattern, &file), 0);
	assert_string_equal(label, "InvalidRecipient");
	assert_string_equal(pattern, "^550 a");
	assert_string_equal(file, a);
	assert_int_equal(classifier_rule_info(c, 1, &label, &pattern, NULL), 0);
	assert_string_equal(label, "SpamBlock");
	assert_int_equal(classifier_rule_info(c, 2, &label, &pattern, &file), 0);
	assert_string_equal(label, "InvalidRecipient");
	assert_string_equal(pattern, "^550 b");
	assert_string_equal(file, b);
	assert_int_equal(classifier_rule_info(c, 3, NULL, &pattern, NULL), 0);
	assert_string_equal(pattern, "^550 c");
	assert_int_equal(classifier_rule_info(c, 4, &label, NULL, NULL), -1);
	/* one label string for both files */
	const char *l0, *l2;
	classifier_rule_info(c, 0, &l0, NULL, NULL);
	classifier_rule_info(c, 2, &l2, NULL, NULL);
	assert_ptr_equal(l0, l2);
	classifier_unref(c);
	free(a);
	free(b);
}

static void
test_user_label_verbatim(void **state)
{
	char *a = write_tmp("user.toml",
	    "[rules]\n"
	    "\"My Custom-Label/v2 é\" = [\"custom reason\"]\n"
	    "invalidrecipient = [\"lowercase\"]\n"
	    "Uncategorized = [\"explicitly nothing\"]\n");
	const char *files[] = { a };
	struct classifier *c = load_ok(files, 1);

	(void)state;
	assert_string_equal(cls(c, "550 5.0.0 a custom reason"),
	    "My Custom-Label/v2 é");
	/* predefined names are case-sensitive: this is a user label */
	assert_string_equal(cls(c, "550 lowercase"), "invalidrecipient");
	assert_string_equal(cls(c, "550 explicitly nothing"), "Uncategorized");
	classifier_unref(c);
	free(a);
}

static void
test_no_files_and_null(void **state)
{
	struct classifier *c = load_ok(NULL, 0);
	struct response r = { .code = 550, .has_enhanced = true, .cls = 5,
	    .subject = 1, .detail = 1, .content = (char *)"user unknown" };

	(void)state;
	assert_int_equal(classifier_rule_count(c), 0);
	assert_string_equal(cls(c, "550 5.1.1 user unknown"), "Uncategorized");
	assert_string_equal(classifier_classify(c, &r), "Uncategorized");
	assert_int_equal(classifier_match_index(c, "550 ", 4), -1);
	assert_string_equal(classifier_classify(NULL, &r), "Uncategorized");
	assert_int_equal(classifier_rule_count(NULL), 0);
	classifier_unref(c);
	classifier_unref(NULL);
}

/* ---- the subject ---- */

static void
test_subject_single_line(void **state)
{
	char *a = write_tmp("subject.toml",
	    "[rules]\n"
	    "Exact = ['^550 5\\.1\\.1 one two  three four five $']\n"
	    "NoEnhanced = ['^421 closing$']\n"
	    "Empty = ['^250 $']\n");
	const char *files[] = { a };
	struct classifier *c = load_ok(files, 1);
	struct response r = { .code = 550, .has_enhanced = true, .cls = 5,
	    .subject = 1, .detail = 1,
	    .content = (char *)"one\r\ntwo\r\n\nthree\rfour\nfive\r\n" };
	struct response r2 = { .code = 421, .content = (char *)"closing" };
	struct response r3 = { .code = 250, .content = (char *)"" };
	char *line;

	(void)state;
	/* CRLF, CR and LF each become one space */
	line = response_single_line(&r);
	assert_string_equal(line, "550 5.1.1 one two  three four five ");
	free(line);
	assert_string_equal(classifier_classify(c, &r), "Exact");
	line = response_single_line(&r2);
	assert_string_equal(line, "421 closing");
	free(line);
	assert_string_equal(classifier_classify(c, &r2), "NoEnhanced");
	assert_string_equal(classifier_classify(c, &r3), "Empty");
	classifier_unref(c);
	free(a);
}

static void
test_invalid_utf8_subject(void **state)
{
	char *a = write_tmp("utf8.toml",
	    "[rules]\n"
	    "Unknown = ['^550 .*user unknown']\n"
	    "Dot = ['^551 a.b$']\n"
	    "Word = ['^552 \\w+ é$']\n");
	const char *files[] = { a };
	struct classifier *c = load_ok(files, 1);
	const char bad[] = "550 5.1.1 \xff\xfe\xc3 user unknown";
	const char dot_bad[] = "551 a\xff" "b";
	const char nul[] = "550 x\0 user unknown";

	(void)state;
	assert_string_equal(classifier_classify_line(c, bad, sizeof(bad) - 1),
	    "Unknown");
	/* an invalid byte becomes U+FFFD, as in KumoMTA's String: "." matches */
	assert_string_equal(classifier_classify_line(c, dot_bad,
	    sizeof(dot_bad) - 1), "Dot");
	assert_string_equal(cls(c, "551 a\xc3\xa9" "b"), "Dot");
	assert_string_equal(cls(c, "552 Grüße é"), "Word");
	/* an embedded NUL is just a byte */
	assert_string_equal(classifier_classify_line(c, nul, sizeof(nul) - 1),
	    "Unknown");
	classifier_unref(c);
	free(a);
}

/* ---- formats and errors ---- */

static void
test_toml_and_json_agree(void **state)
{
	char *iana = kumo_rules("iana.toml");
	char *comm = kumo_rules("community-bounces.toml");
	const char *tfiles[] = { comm, iana };
	char *err = NULL;
	json_t *j1, *j2;
	char *p1 = xasprintf("%s/community.json", tmpdir);
	char *p2 = xasprintf("%s/iana.json", tmpdir);
	const char *subjects[] = {
		"550 5.1.1 No such user here", "552 5.2.2 OverQuotaPerm",
		"452 4.5.3 too many", "550 5.7.1 Message rejected as spam",
		"554 delivery error: This mailbox is disabled (554.30)",
		"551 4.7.18 x", "421 4.4.2 x", "250 ", "550 5.7.26 dmarc",
		"503 5.5.1 Bad sequence of commands",
	};

	(void)state;
	/* the same documents, written as JSON through the TOML bridge */
	j1 = load_data_file(comm, 0, &err);
	assert_non_null(j1);
	j2 = load_data_file(iana, 0, &err);
	assert_non_null(j2);
	assert_int_equal(json_dump_file(j1, p1, 0), 0);
	assert_int_equal(json_dump_file(j2, p2, 0), 0);
	json_decref(j1);
	json_decref(j2);

	const char *jfiles[] = { p1, p2 };
	struct classifier *ct = load_ok(tfiles, 2), *cj = load_ok(jfiles, 2);
	assert_int_equal(classifier_rule_count(cj), 135);
	for (size_t i = 0; i < classifier_rule_count(ct); i++) {
		const char *lt, *pt, *lj, *pj;
		classifier_rule_info(ct, i, &lt, &pt, NULL);
		classifier_rule_info(cj, i, &lj, &pj, NULL);
		assert_string_equal(lt, lj);
		assert_string_equal(pt, pj);
	}
	for (size_t i = 0; i < nitems(subjects); i++)
		assert_string_equal(cls(ct, subjects[i]), cls(cj, subjects[i]));
	assert_string_equal(cls(cj, "552 5.2.2 OverQuotaPerm"),
	    "InactiveMailbox");

	/* and a hand-written pair */
	char *t = write_tmp("pair.toml",
	    "[rules]\nB = ['^5\\d\\d x']\nA = [\"^550 x\"]\n");
	char *j = write_tmp("pair.json",
	    "{\"rules\":{\"B\":[\"^5\\\\d\\\\d x\"],\"A\":[\"^550 x\"]}}");
	const char *tf[] = { t }, *jf[] = { j };
	struct classifier *pt = load_ok(tf, 1), *pj = load_ok(jf, 1);
	assert_string_equal(cls(pt, "550 x"), "B");
	assert_string_equal(cls(pj, "550 x"), "B");
	classifier_unref(pt);
	classifier_unref(pj);
	free(t);
	free(j);

	classifier_unref(ct);
	classifier_unref(cj);
	free(p1);
	free(p2);
	free(iana);
	free(comm);
}

static void
test_invalid_regex_error(void **state)
{
	char *a = write_tmp("bad-regex.toml",
	    "[rules]\n"
	    "Good = [\"^550 \"]\n"
	    "Bad = [\"^550 ok\", \"^5(50 \"]\n");
	char *b = write_tmp("bad-regex.json",
	    "{\"rules\": {\"SpamBlock\": [\"[z-a]\"]}}");
	const char *fa[] = { a }, *fb[] = { b };
	char *err, *want;

	(void)state;
	err = load_err(fa, 1);
	want = xasprintf("%s: label \"Bad\", pattern \"^5(50 \": invalid "
	    "regex: missing closing parenthesis (at offset 6)", a);
	assert_string_equal(err, want);
	free(err);
	free(want);

	err = load_err(fb, 1);
	want = xasprintf("%s: label \"SpamBlock\", pattern \"[z-a]\": invalid "
	    "regex: range out of order in character class (at offset 3)", b);
	assert_string_equal(err, want);
	free(err);
	free(want);
	free(a);
	free(b);
}

static void
test_file_errors(void **state)
{
	char *yaml = write_tmp("rules.yaml", "rules:\n  A: ['x']\n");
	char *missing = xasprintf("%s/missing.toml", tmpdir);
	char *syntax = write_tmp("syntax.toml", "[rules]\nA = [\"x\"\n");
	char *jsyntax = write_tmp("syntax.json", "{\"rules\": {\"A\": [}}");
	char *norules = write_tmp("norules.toml", "[rule]\nA = [\"x\"]\n");
	char *notable = write_tmp("notable.json", "{\"rules\": [\"x\"]}");
	char *notarr = write_tmp("notarr.toml", "[rules]\nA = \"x\"\n");
	char *notstr = write_tmp("notstr.toml", "[rules]\nA = [\"x\", 5]\n");
	char *emptyl = write_tmp("emptylabel.json", "{\"rules\": {\"\": []}}");
	char *ctrl = write_tmp("ctrl.toml",
	    "[rules]\n\"A\\tB\" = [\"x\\n(\"]\n");
	char *arr = write_tmp("array.json", "[1, 2]");
	char *err, *want;
	struct {
		const char *file;
		char *want;
	} cases[] = {
		{ yaml, xasprintf("%s: unsupported file type: the name must "
		    "end in .toml or .json", yaml) },
		{ missing, xasprintf("%s: No such file or directory",
		    missing) },
		{ norules, xasprintf("%s: no \"rules\" table", norules) },
		{ notable, xasprintf("%s: \"rules\" must be a table of "
		    "label = [regex, ...]", notable) },
		{ notarr, xasprintf("%s: label \"A\": expected an array of "
		    "regex strings", notarr) },
		{ notstr, xasprintf("%s: label \"A\": pattern 2 is not a "
		    "string", notstr) },
		{ emptyl, xasprintf("%s: label \"\": a label must be non-empty "
		    "and free of NUL bytes", emptyl) },
		{ ctrl, xasprintf("%s: label \"A\\x09B\", pattern \"x\\x0a(\": "
		    "invalid regex: missing closing parenthesis (at offset 3)",
		    ctrl) },
		{ arr, xasprintf("%s: expected a table at the top", arr) },
	};

	(void)state;
	for (size_t i = 0; i < nitems(cases); i++) {
		const char *f[] = { cases[i].file };
		err = load_err(f, 1);
		assert_string_equal(err, cases[i].want);
		free(err);
		free(cases[i].want);
	}

	/* parse errors carry file:line:column */
	const char *fs[] = { syntax };
	err = load_err(fs, 1);
	want = xasprintf("%s:2:10: Error while parsing array: encountered "
	    "end-of-file", syntax);
	assert_string_equal(err, want);
	free(want);
	free(err);
	const char *fj[] = { jsyntax };
	err = load_err(fj, 1);
	want = xasprintf("%s:1:18: ", jsyntax);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("unexpected error: %s", err);
	free(want);
	free(err);

	/* a failing file after a good one fails the whole load */
	char *good = write_tmp("good.toml", "[rules]\nA = [\"x\"]\n");
	const char *two[] = { good, yaml };
	err = load_err(two, 2);
	want = xasprintf("%s: unsupported file type: the name must end in "
	    ".toml or .json", yaml);
	assert_string_equal(err, want);
	free(want);
	free(err);

	free(good);
	free(yaml);
	free(missing);
	free(syntax);
	free(jsyntax);
	free(norules);
	free(notable);
	free(notarr);
	free(notstr);
	free(emptyl);
	free(ctrl);
	free(arr);
}

/* ---- reload ---- */

static void
test_reload_keeps_old_on_failure(void **state)
{
	char *v1 = write_tmp("reload-v1.toml", "[rules]\nOld = [\"^550 \"]\n");
	char *v2 = write_tmp("reload-v2.toml", "[rules]\nNew = [\"^550 \"]\n");
	char *bad = write_tmp("reload-bad.toml", "[rules]\nNew = [\"(\"]\n");
	const char *f1[] = { v1 }, *f2[] = { v2 }, *fb[] = { bad };
	struct classifier_slot *s = classifier_slot_new(load_ok(f1, 1));
	struct classifier *c, *held;
	char *err = NULL, *want;

	(void)state;
	c = classifier_slot_get(s);
	assert_string_equal(cls(c, "550 x"), "Old");
	classifier_unref(c);

	assert_int_equal(classifier_slot_reload(s, fb, 1, &err), -1);
	want = xasprintf("%s: label \"New\", pattern \"(\": invalid regex: "
	    "missing closing parenthesis (at offset 1)", bad);
	assert_string_equal(err, want);
	free(want);
	free(err);
	err = NULL;
	c = classifier_slot_get(s);
	assert_string_equal(cls(c, "550 x"), "Old");
	classifier_unref(c);

	/* a reader's reference outlives the swap */
	held = classifier_slot_get(s);
	assert_int_equal(classifier_slot_reload(s, f2, 1, &err), 0);
	assert_null(err);
	c = classifier_slot_get(s);
	assert_string_equal(cls(c, "550 x"), "New");
	classifier_unref(c);
	assert_string_equal(cls(held, "550 x"), "Old");
	classifier_unref(held);

	/* a missing file also keeps the current one */
	const char *fm[] = { "/nonexistent/oobd/rules.toml" };
	assert_int_equal(classifier_slot_reload(s, fm, 1, &err), -1);
	assert_string_equal(err, "/nonexistent/oobd/rules.toml: No such file "
	    "or directory");
	free(err);
	c = classifier_slot_get(s);
	assert_string_equal(cls(c, "550 x"), "New");
	classifier_unref(c);

	classifier_slot_free(s);
	free(v1);
	free(v2);
	free(bad);
}

struct worker_arg {
	struct classifier_slot *slot;
	int	 iterations;
	int	 bad;
};

static void *
worker(void *p)
{
	struct worker_arg *a = p;

	for (int i = 0; i < a->iterations; i++) {
		struct classifier *c = classifier_slot_get(a->slot);
		char line[64];
		snprintf(line, sizeof(line), "550 5.1.1 user %d unknown",
		    i % 50);
		const char *l = cls(c, line);
		if (strcmp(l, "Old") != 0 && strcmp(l, "New") != 0)
			a->bad++;
		classifier_unref(c);
	}
	return NULL;
}

static void
test_reload_concurrent(void **state)
{
	char *v1 = write_tmp("conc-v1.toml",
	    "[rules]\nOld = [\"user \\\\d+ unknown\"]\n");
	char *v2 = write_tmp("conc-v2.json",
	    "{\"rules\":{\"New\":[\"^550 5\\\\.1\\\\.1 \"]}}");
	const char *f1[] = { v1 }, *f2[] = { v2 };
	struct classifier_slot *s = classifier_slot_new(load_ok(f1, 1));
	struct worker_arg args[4];
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		args[i] = (struct worker_arg){ s, 3000, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker,
		    &args[i]), 0);
	}
	for (int i = 0; i < 40; i++) {
		char *err = NULL;
		assert_int_equal(classifier_slot_reload(s, i % 2 ? f1 : f2, 1,
		    &err), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	classifier_slot_free(s);
	free(v1);
	free(v2);
}

/* ---- robustness ---- */

static void
test_pathological_pattern_bounded(void **state)
{
	char *a = write_tmp("evil.toml",
	    "[rules]\n"
	    "Evil = ['^550 (a+)+$', '^550 (x|x)*y']\n"
	    "Good = ['!$']\n");
	const char *files[] = { a };
	struct classifier *c = load_ok(files, 1);
	char line[128] = "550 ";

	(void)state;
	memset(line + 4, 'a', 60);
	line[64] = '!';
	line[65] = '\0';
	/* the backtracking bomb gives up (no match), the next rule answers */
	assert_string_equal(cls(c, line), "Good");
	memset(line + 4, 'x', 60);
	assert_string_equal(cls(c, line), "Good");
	classifier_unref(c);
	free(a);
}

static void
test_cache_consistent(void **state)
{
	char *iana = kumo_rules("iana.toml");
	const char *files[] = { iana };
	struct classifier *c = load_ok(files, 1);
	const char *subj[] = { "552 5.2.2 a", "452 4.5.3 b", "250 ",
		"551 4.7.18 c", "550 5.1.1 d" };
	const char *want[] = { "QuotaIssues", "ProtocolErrors",
		"Uncategorized", "BadDomain", "InvalidRecipient" };

	(void)state;
	for (size_t size = 0; size <= 4; size += 1) {
		classifier_set_cache_size(c, size);
		for (int round = 0; round < 3; round++)
			for (size_t i = 0; i < nitems(subj); i++)
				assert_string_equal(cls(c, subj[i]), want[i]);
	}
	/* a subject longer than the cache keeps is still classified */
	classifier_set_cache_size(c, 1024);
	char *longsubj = xmalloc(5000);
	memset(longsubj, 'x', 4999);
	memcpy(longsubj, "552 5.2.2 ", 10);
	longsubj[4999] = '\0';
	assert_string_equal(cls(c, longsubj), "QuotaIssues");
	assert_string_equal(cls(c, longsubj), "QuotaIssues");
	free(longsubj);
	classifier_unref(c);
	free(iana);
}

/* ---- the shipped rules ---- */

static void
test_shipped_rules_not_shadowed(void **state)
{
	char *rules = source_path("conf/bounce_rules.toml");
	char *samples = source_path("tests/data/bounce_rules_samples.txt");
	const char *files[] = { rules };
	struct classifier *c = load_ok(files, 1);
	size_t n = classifier_rule_count(c), len, nsamples = 0;
	size_t *hits = xcalloc(n, sizeof(size_t));
	char *text = read_file(samples, &len), *save = NULL, *line;

	(void)state;
	assert_non_null(text);
	assert_true(n >= 29);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char label[64], nth[16];
		const char *bar = strstr(line, " | ");
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (bar == NULL || sscanf(line, "%63s %15s", label, nth) != 2)
			fail_msg("malformed sample line: %s", line);
		const char *subject = bar + 3;
		long idx = classifier_match_index(c, subject, strlen(subject));
		const char *got = cls(c, subject);
		nsamples++;
		if (strcmp(got, label) != 0)
			fail_msg("\"%s\": got %s, want %s", subject, got, label);
		if (strcmp(nth, "-") == 0) {
			assert_int_equal(idx, -1);
			continue;
		}
		/* the winner must be pattern N of LABEL */
		const char *wl, *wp;
		assert_true(idx >= 0);
		classifier_rule_info(c, (size_t)idx, &wl, &wp, NULL);
		long k = 0;
		for (long i = 0; i <= idx; i++) {
			const char *li;
			classifier_rule_info(c, (size_t)i, &li, NULL, NULL);
			if (strcmp(li, label) == 0)
				k++;
		}
		if (k != atol(nth))
			fail_msg("\"%s\": won by %s pattern %ld (%s), want "
			    "pattern %s", subject, wl, k, wp, nth);
		hits[idx]++;
	}
	/* every pattern is the first match for some sample */
	for (size_t i = 0; i < n; i++) {
		const char *l, *p;
		classifier_rule_info(c, i, &l, &p, NULL);
		if (hits[i] == 0)
			fail_msg("%s pattern '%s' has no sample: shadowed or "
			    "untested", l, p);
	}
	assert_true(nsamples > 100);
	free(hits);
	free(text);
	classifier_unref(c);
	free(rules);
	free(samples);
}

/* ---- reasons and evidence ---- */

/*
 * Sisimai's reason: the wording where it says more than the class, the
 * class otherwise, then the enhanced code; never a reason that
 * contradicts the class; hard only for addresses that will not work.
 */
static void
test_bounce_reason(void **state)
{
	static const struct {
		const char *label, *subject, *reason;
		bool hard;
	} cases[] = {
		{ "InvalidRecipient", "550 5.1.1 <a@b>: User unknown", "userunknown", true },
		/* a domain not found, called temporary: a DNS failure, soft */
		{ "BadDomain", "550 5.1.2 Domain name not found: example.org", "hostunknown", true },
		{ "BadDomain", "450 4.0.0 DNS Error: NXDOMAIN Domain name not found: example.org", "networkerror", false },
		/* refused only in reply to DATA: a filter, not a missing user */
		{ "InvalidRecipient", "550 5.0.0 <a@b>: User unknown (in reply to end of DATA command)", "filtered", false },
		{ "SpamBlock", "554 5.7.1 Client host [192.0.2.1] blocked using zen.spamhaus.org", "blocked", false },
		{ "AuthenticationFailed", "554 5.7.1 Missing reverse DNS for 192.0.2.1", "requireptr", false },
		{ "PolicyRelated", "550 5.7.1 Unauthenticated email is not accepted due to domain's DMARC policy", "authfailure", false },
		/* an authentication code whose text names a policy */
		{ "AuthenticationFailed", "554 5.7.9 Message not accepted for policy reasons", "policyviolation", false },
		{ "AuthenticationFailed", "550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy", "authfailure", false },
		{ "QuotaIssues", "552 5.2.2 Mailbox full", "mailboxfull", false },
		{ "QuotaIssues", "552 5.3.4 Message too large", "mesgtoobig", false },
		{ "BadDomain", "550 5.0.0 Unrouteable address", "hostunknown", true },
		{ "MessageExpired", "550 4.4.7 retry timeout exceeded", "expired", false },
		{ "InactiveMailbox", "550 5.2.1 The email account that you tried to reach is disabled", "suspend", false },
		{ "InactiveMailbox", "550 5.1.6 recipient no longer on server", "hasmoved", true },
		/* "user unknown" under a SpamBlock label: the label's reason */
		{ "SpamBlock", "550 5.7.1 user unknown", "blocked", false },
		/* a user-defined label: the wording decides */
		{ "MyLabel", "550 5.0.0 no such user here", "userunknown", true },
		/* no wording, no label: the enhanced code, then the class */
		{ "Uncategorized", "550 5.1.10 ", "notaccept", true },
		{ "Uncategorized", "550 5.0.0 ", "undefined", false },
		{ "Uncategorized", "451 4.0.0 ", "onhold", false },
	};

	(void)state;
	for (size_t i = 0; i < nitems(cases); i++) {
		bool hard = !cases[i].hard;
		const char *r = bounce_reason(cases[i].label, cases[i].subject,
		    &hard);
		if (strcmp(r, cases[i].reason) != 0 || hard != cases[i].hard)
			fail_msg("%s \"%s\": got %s/%d, want %s/%d",
			    cases[i].label, cases[i].subject, r, hard,
			    cases[i].reason, cases[i].hard);
	}
}

/*
 * KumoMTA's answer stands whenever its subject gets one (iana.toml knows
 * 5.1.1); the further evidence is read only when it does not, and the
 * first subject a rule labels decides.
 */
static void
test_classify_evidence(void **state)
{
	char *iana = kumo_rules("iana.toml");
	const char *files[] = { iana };
	struct classifier *c = load_ok(files, 1);
	struct response resp = { .code = 550, .has_enhanced = true, .cls = 5,
	    .subject = 1, .detail = 1, .content = "5.1.1 full" };
	const char *more[2] = { "552 5.2.2 mailbox full", NULL }, *subject;
	char *owned;

	(void)state;
	assert_string_equal(classifier_classify_evidence(c, &resp, more, 1,
	    &subject, &owned), "InvalidRecipient");
	assert_string_equal(subject, "550 5.1.1 5.1.1 full");
	free(owned);
	/* a generic status: KumoMTA says Uncategorized, the next decides */
	resp.subject = 0;
	resp.detail = 0;
	resp.content = "";
	more[1] = more[0];
	more[0] = "550 5.0.0 nothing a rule knows";
	assert_string_equal(classifier_classify_evidence(c, &resp, more, 2,
	    &subject, &owned), "QuotaIssues");
	assert_string_equal(subject, "552 5.2.2 mailbox full");
	free(owned);
	/* nothing labels it: the last subject tried */
	assert_string_equal(classifier_classify_evidence(c, &resp, more, 1,
	    &subject, &owned), "Uncategorized");
	assert_string_equal(subject, "550 5.0.0 nothing a rule knows");
	free(owned);
	classifier_unref(c);
	free(iana);
}

/*
 * A bounce's label and reason from its evidence: the Diagnostic-Code's
 * own code where Status is generic, the text of a non-smtp diagnostic,
 * the notice's reply last.
 */
static void
test_classify_bounce(void **state)
{
	char *iana = kumo_rules("iana.toml");
	const char *files[] = { iana };
	struct classifier *c = load_ok(files, 1);
	struct response resp = { .code = 550, .has_enhanced = true, .cls = 5,
	    .content = "" };
	struct bounce b = { .diagnostic_text = "550 5.1.1 <bob@example.org>: user unknown",
	    .has_diag_enhanced = true, .dcls = 5, .dsubject = 1, .ddetail = 1 };
	const char *label, *reason;
	bool hard;

	(void)state;
	classify_bounce(c, &resp, &b, &label, &reason, &hard);
	assert_string_equal(label, "InvalidRecipient");
	assert_string_equal(reason, "userunknown");
	assert_true(hard);
	/* the notice shows the refusal answered DATA: filtered, soft */
	b.refused_after_data = true;
	classify_bounce(c, &resp, &b, &label, &reason, &hard);
	assert_string_equal(label, "InvalidRecipient");
	assert_string_equal(reason, "filtered");
	assert_false(hard);
	/* no diagnostic code: the notice's reply */
	b = (struct bounce){ .notice_reply = "552 5.2.2 mailbox full" };
	b.refused_after_data = true;	/* only an unknown user changes */
	classify_bounce(c, &resp, &b, &label, &reason, &hard);
	assert_string_equal(label, "QuotaIssues");
	assert_string_equal(reason, "mailboxfull");
	assert_false(hard);
	/* nothing at all: Uncategorized, a reason from the class only */
	b = (struct bounce){ 0 };
	classify_bounce(c, &resp, &b, &label, &reason, &hard);
	assert_string_equal(label, "Uncategorized");
	assert_string_equal(reason, "undefined");
	assert_false(hard);
	classifier_unref(c);
	free(iana);
}

static void
test_shipped_rules_fix_kumomta_shadowing(void **state)
{
	char *rules = source_path("conf/bounce_rules.toml");
	char *iana = kumo_rules("iana.toml");
	const char *files[] = { rules };
	const char *kfiles[] = { iana };
	struct classifier *c = load_ok(files, 1), *k = load_ok(kfiles, 1);

	(void)state;
	assert_string_equal(cls(k, "452 4.5.3 Too many recipients"),
	    "ProtocolErrors");
	assert_string_equal(cls(c, "452 4.5.3 Too many recipients"),
	    "TooManyRecipients");
	/* the cases KumoMTA's tests pin agree with iana.toml */
	assert_string_equal(cls(c, "552 5.2.2 full"), "QuotaIssues");
	assert_string_equal(cls(c, "552 4.2.2 full"), "QuotaIssues");
	assert_string_equal(cls(c, "352 5.2.2 full"), "Uncategorized");
	assert_string_equal(cls(c, "525 4.7.13 disabled"), "InactiveMailbox");
	assert_string_equal(cls(c, "551 4.7.17 changed"), "InvalidRecipient");
	assert_string_equal(cls(c, "551 4.7.18 changed"), "BadDomain");
	/* an OOB record's subject carries the Status code twice */
	assert_string_equal(cls(c, "550 5.1.1 5.1.1 Mailbox does not exist"),
	    "InvalidRecipient");
	classifier_unref(c);
	classifier_unref(k);
	free(rules);
	free(iana);
}

/* ---- the prefilter gives a plain first-match loop's answers ---- */

static long
naive_first_match(pcre2_code **re, size_t n, const char *s, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	long found = -1;

	for (size_t i = 0; i < n && found < 0; i++)
		if (pcre2_match(re[i], (PCRE2_SPTR)s, len, 0, 0, md, NULL) >= 0)
			found = (long)i;
	pcre2_match_data_free(md);
	return found;
}

static void
check_against_naive(const char *const *files, size_t nfiles,
    const char *const *subjects, size_t nsubjects)
{
	struct classifier *c = load_ok(files, nfiles);
	size_t n = classifier_rule_count(c);
	pcre2_code **re = xcalloc(n + 1, sizeof(*re));

	for (size_t i = 0; i < n; i++) {
		const char *p;
		int ec;
		PCRE2_SIZE eo;
		classifier_rule_info(c, i, NULL, &p, NULL);
		re[i] = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED,
		    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
		    PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
		assert_non_null(re[i]);
	}
	for (size_t s = 0; s < nsubjects; s++) {
		size_t len = strlen(subjects[s]);
		long want = naive_first_match(re, n, subjects[s], len);
		long got = classifier_match_index(c, subjects[s], len);
		if (want != got)
			fail_msg("\"%s\": prefilter rule %ld, plain loop %ld",
			    subjects[s], got, want);
	}
	for (size_t i = 0; i < n; i++)
		pcre2_code_free(re[i]);
	free(re);
	classifier_unref(c);
}

static void
test_prefilter_matches_plain_loop(void **state)
{
	/* patterns aimed at the literal extraction's corners */
	char *tricky = write_tmp("tricky.toml",
	    "[rules]\n"
	    "Alt = ['foo|bar baz', '^(?:qux|quux) corge']\n"
	    "Opt = ['colou?r name', 'abc*d', 'xy{0,2}zz', 'mn{2}op']\n"
	    "Case = ['(?i)mailbox FULL', '(?i)ask sk', 'ab(?i)CD(?-i)ef',"
	    " '(?i:Quota) exceeded', '(?i)straße k']\n"
	    "Esc = ['a\\.b\\(c\\)', '\\d{3} \\w+ \\x41\\x{42}C', "
	    "'\\Qlit|eral\\E', 'tab\\there', '\\p{Lu}\\pL end']\n"
	    "Groups = ['(?#comment)after', '(?<n>x)\\k<n>yz', "
	    "'(a|b(c|d))+ tail', '[|)(]pipe', '[]x] brk', '[^]a] neg']\n"
	    "Multi = ['héllo wörld', 'é+z', '日本語']\n"
	    "Anch = ['^$', 'end$', '\\bword\\b', 'a(?=bc)bc', "
	    "'(?<=x)yq', 'a(*ACCEPT)never']\n"
	    "Flags = ['(?x) s p a c e', '(?s)dot.all', '(?m)^line']\n"
	    "Quant = ['a{2,}b', 'q{,3}r', 'zz{1}+w', '(?:ab)+c+d']\n");
	char *iana = kumo_rules("iana.toml");
	char *comm = kumo_rules("community-bounces.toml");
	const char *subjects[] = {
		"foo", "bar baz", "qux corge", "quux corge", "bar", "corge",
		"color name", "colour name", "colouur name", "abd", "abccd",
		"xzz", "xyyzz", "xyyyzz", "mnnop", "mnop",
		"MAILBOX full", "Mailbox Full", "ASK SK", "a\xe2\x84\xaask sk",
		"as\xc5\xbf sk", "abcdef", "abCDef", "abcdEF", "quota exceeded",
		"QUOTA exceeded", "quota EXCEEDED", "STRASSE K", "straße k",
		"STRAẞE \xe2\x84\xaa", "a.b(c)", "axb(c)", "123 foo ABC",
		"lit|eral", "lit", "tab\there", "Ü\xc3\xa4 end", "after",
		"xxyz", "ab tail", "bc tail", "a tail", "|pipe", ")pipe",
		"] brk", "x brk", "b neg", "héllo wörld", "hello world",
		"éz", "éééz", "日本語", "日本", "", "x end", "the word here",
		"words", "abc", "xyq", "yq", "anever", "a", "space",
		"s p a c e", "dot\nall", "dotxall", "l\nline", "aab", "ab",
		"q{,3}r", "qr", "zzw", "zzzw", "ababccd", "abd",
		"552 5.2.2 mailbox full", "452 4.5.3 too many",
		"550 5.1.1 5.1.1 No such user here",
		"554 delivery error: dd This mailbox is disabled (554.30)",
		"550 5.7.1 Message rejected as spam", "550 User x unknown",
		"550 5.7.515 Access denied, domain in the 5322.From",
		"550 sorry, no mailbox", "551 4.7.18 x", "250 ",
		"552 OverQuotaPerm", "550 5.1.1 User Unknown",
		"503 5.5.1 Bad sequence of commands", "\xff\xfe\xfd",
	};
	const char *f1[] = { tricky };
	const char *f2[] = { comm, iana, tricky };

	(void)state;
	check_against_naive(f1, 1, subjects, nitems(subjects));
	check_against_naive(f2, 3, subjects, nitems(subjects));
	free(tricky);
	free(iana);
	free(comm);
}

/*
 * Random patterns assembled from pieces that exercise the extractor, and
 * random subjects over a small alphabet, so that literals, near misses and
 * case variants all occur. Deterministic (fixed seed).
 */
static void
test_prefilter_random(void **state)
{
	static const char *pieces[] = {
		"ab", "c", "d?", "e*", "f+", "g{2}", "h{0,1}", "(?:ab|c)",
		"[a-c]", ".", "\\.", "(?i)", "(?-i)", "k", "s", "A", "B", "x|y",
		"(d)", "\\d", "^", "$", "\\b", "(?i:ks)", "é", "a{1,}", " ",
	};
	static const char alphabet[] = "abcdefghksxyABCDKS. 01";
	struct buf toml = { 0 };
	unsigned seed = 12345;
	char *subjects[400];

	(void)state;
#define RND(n) ((seed = seed * 1103515245u + 12345u) >> 16) % (n)
	buf_puts(&toml, "[rules]\n");
	for (int l = 0; l < 8; l++) {
		buf_printf(&toml, "L%d = [", l);
		for (int p = 0; p < 25; p++) {
			int np = 1 + (int)RND(5);
			buf_puts(&toml, p ? ", '" : "'");
			for (int k = 0; k < np; k++)
				buf_puts(&toml, pieces[RND(nitems(pieces))]);
			buf_puts(&toml, "'");
		}
		buf_puts(&toml, "]\n");
	}
	char *text = buf_steal(&toml);
	char *path = write_tmp("random.toml", text);
	free(text);
	for (size_t i = 0; i < nitems(subjects); i++) {
		size_t len = RND(12);
		subjects[i] = xmalloc(len + 1);
		for (size_t k = 0; k < len; k++)
			subjects[i][k] = alphabet[RND(sizeof(alphabet) - 1)];
		subjects[i][len] = '\0';
	}
#undef RND
	const char *files[] = { path };
	check_against_naive(files, 1, (const char *const *)subjects,
	    nitems(subjects));
	for (size_t i = 0; i < nitems(subjects); i++)
		free(subjects[i]);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iana_kumomta_expectations),
		cmocka_unit_test(test_community_before_iana),
		cmocka_unit_test(test_first_match_file_then_label_order),
		cmocka_unit_test(test_merge_concatenates_same_label),
		cmocka_unit_test(test_user_label_verbatim),
		cmocka_unit_test(test_no_files_and_null),
		cmocka_unit_test(test_subject_single_line),
		cmocka_unit_test(test_invalid_utf8_subject),
		cmocka_unit_test(test_toml_and_json_agree),
		cmocka_unit_test(test_invalid_regex_error),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_reload_keeps_old_on_failure),
		cmocka_unit_test(test_reload_concurrent),
		cmocka_unit_test(test_pathological_pattern_bounded),
		cmocka_unit_test(test_cache_consistent),
		cmocka_unit_test(test_shipped_rules_not_shadowed),
		cmocka_unit_test(test_shipped_rules_fix_kumomta_shadowing),
		cmocka_unit_test(test_bounce_reason),
		cmocka_unit_test(test_classify_evidence),
		cmocka_unit_test(test_classify_bounce),
		cmocka_unit_test(test_prefilter_matches_plain_loop),
		cmocka_unit_test(test_prefilter_random),
	};

	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
