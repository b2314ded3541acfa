/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_rules.c - the bounce rule loader and classifier (classify.c): rule
 * files in TOML or JSON from bytes, then classification of subject lines.
 *
 * Input: one flag byte (bit 0: the file is JSON rather than TOML), the rule
 * file, then optionally a NUL byte followed by subject lines separated by
 * LF. Each subject is classified by the classifier and, independently, by
 * trying every rule in order with PCRE2 (same options and limits, no
 * prefilter, no cache): the answers must agree, which checks the literal
 * prefilter, and the cached answer must equal the uncached one.
 */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "tomlbridge.h"
#include "fuzz_common.h"
#include "util.h"

/* The options and limits classify.c uses. */
#define RULE_OPTIONS	(PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | \
	PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C)
#define MATCH_LIMIT	1000000
#define DEPTH_LIMIT	10000

/* The first rule that matches, trying each in order; -1 if none. */
static long
brute_force(const struct classifier *c, pcre2_code **re, const char *line,
    size_t len, pcre2_match_context *mctx)
{
	size_t n = classifier_rule_count(c);
	char *clean = NULL;
	long found = -1;
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);

	if (!utf8_valid(line, len)) {
		clean = utf8_lossy(line, len);
		line = clean;
		len = strlen(clean);
	}
	for (size_t i = 0; i < n && found < 0; i++)
		if (re[i] != NULL && pcre2_match(re[i], (PCRE2_SPTR)line, len,
		    0, 0, md, mctx) >= 0)
			found = (long)i;
	pcre2_match_data_free(md);
	free(clean);
	return found;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *name, *label, *pattern, *file;
	const uint8_t *nul;
	size_t rlen, n;
	char *path, *err = NULL;
	struct classifier *c;
	pcre2_code **re;
	pcre2_match_context *mctx;

	if (size < 1)
		return 0;
	name = (data[0] & 1) ? "rules.json" : "rules.toml";
	data++;
	size--;
	nul = memchr(data, '\0', size);
	rlen = nul != NULL ? (size_t)(nul - data) : size;
	path = fuzz_write_file(name, data, rlen);
	const char *files[1] = { path };
	c = classifier_load(files, 1, &err);
	free(path);
	if (c == NULL) {
		if (err == NULL)
			abort();	/* a failure always says why */
		free(err);
		return 0;
	}
	/*
	 * Compile the patterns again from the parsed file, in load order
	 * (labels in file order, then patterns), with their real lengths.
	 */
	n = classifier_rule_count(c);
	re = xcalloc(n + 1, sizeof(*re));
	mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(mctx, DEPTH_LIMIT);
	path = xasprintf("%s/%s", fuzz_tmpdir(), name);
	json_t *root = load_data_file(path, 0, &err);
	json_t *rules = json_object_get(root, "rules"), *val, *pat;
	const char *key;
	size_t keylen, k = 0, j;
	free(path);
	if (root == NULL)
		abort();
	json_object_keylen_foreach(rules, key, keylen, val) {
		json_array_foreach(val, j, pat) {
			int ec;
			PCRE2_SIZE eo;

			if (k >= n)
				abort();
			re[k] = pcre2_compile(
			    (PCRE2_SPTR)json_string_value(pat),
			    json_string_length(pat), RULE_OPTIONS, &ec, &eo,
			    NULL);
			if (re[k] == NULL)
				abort();	/* the classifier took it */
			(void)pcre2_jit_compile(re[k], PCRE2_JIT_COMPLETE);
			if (classifier_rule_info(c, k, &label, &pattern,
			    &file) != 0 || label == NULL || pattern == NULL ||
			    strcmp(label, key) != 0)
				abort();
			k++;
		}
	}
	json_decref(root);
	if (k != n || classifier_rule_info(c, n, &label, &pattern, &file) != -1)
		abort();

	const char *p = nul != NULL ? (const char *)nul + 1 : NULL;
	const char *end = (const char *)data + size;
	for (int t = 0; p != NULL && p <= end && t < 64; t++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		long idx = classifier_match_index(c, p, len);
		long want = brute_force(c, re, p, len, mctx);
		const char *l1 = classifier_classify_line(c, p, len);
		const char *l2 = classifier_classify_line(c, p, len);	/* cached */

		if (idx != want)
			abort();
		if (idx >= 0) {
			classifier_rule_info(c, (size_t)idx, &label, NULL, NULL);
			if (strcmp(l1, label) != 0)
				abort();
		} else if (strcmp(l1, "Uncategorized") != 0)
			abort();
		if (l1 != l2)
			abort();
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	for (size_t i = 0; i < n; i++)
		pcre2_code_free(re[i]);
	free(re);
	pcre2_match_context_free(mctx);
	classifier_unref(c);
	return 0;
}
