/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_classify.c - classifications per second for a set of rule files
 * over a file of subjects (one single-line response per line), run by
 * scripts/bench-classify. Not a test: it asserts no timing.
 *
 *   bench_classify [-t SECONDS] SUBJECTS RULES...
 *
 * Prints the rule count and the rate of three ways of classifying:
 *   uncached   oobd's classifier with its result cache off
 *   cached     oobd's classifier with its default cache (subjects repeat)
 *   plain      every pattern in load order until one matches (PCRE2 JIT,
 *              the same compile options): what the prefilter avoids
 * and checks that the three give the same answer for every subject.
 */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "util.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct plain {
	pcre2_code	**re;
	size_t		 n;
	pcre2_match_data *md;
};

static long
plain_match(struct plain *p, const char *s, size_t len)
{
	for (size_t i = 0; i < p->n; i++)
		if (pcre2_match(p->re[i], (PCRE2_SPTR)s, len, 0, 0, p->md,
		    NULL) >= 0)
			return (long)i;
	return -1;
}

static volatile size_t sink;

/* Classify every subject repeatedly for about `secs`; returns per second. */
static double
run(const struct classifier *c, struct plain *p, char **subj, size_t *lens,
    size_t n, double secs)
{
	size_t done = 0;
	double t0 = now(), t;

	do {
		for (size_t i = 0; i < n; i++) {
			if (p != NULL)
				sink += (size_t)plain_match(p, subj[i], lens[i]);
			else
				sink += (size_t)classifier_classify_line(c,
				    subj[i], lens[i])[0];
		}
		done += n;
		t = now() - t0;
	} while (t < secs);
	return (double)done / t;
}

int
main(int argc, char **argv)
{
	double secs = 1.0;
	size_t len, n = 0, cap = 0, mismatches = 0;
	char *text, *save = NULL, *line, *err = NULL, **subj = NULL;
	size_t *lens = NULL;
	struct classifier *c;
	struct plain p = { 0 };
	int ch;

	while ((ch = getopt(argc, argv, "t:")) != -1) {
		if (ch == 't')
			secs = atof(optarg);
		else {
			fprintf(stderr, "usage: bench_classify [-t SECONDS] "
			    "SUBJECTS RULES...\n");
			return 2;
		}
	}
	if (argc - optind < 1) {
		fprintf(stderr, "usage: bench_classify [-t SECONDS] SUBJECTS "
		    "RULES...\n");
		return 2;
	}
	if ((text = read_file(argv[optind], &len)) == NULL) {
		perror(argv[optind]);
		return 1;
	}
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			subj = xrealloc(subj, cap * sizeof(*subj));
			lens = xrealloc(lens, cap * sizeof(*lens));
		}
		subj[n] = line;
		lens[n++] = strlen(line);
	}
	c = classifier_load((const char *const *)argv + optind + 1,
	    (size_t)(argc - optind - 1), &err);
	if (c == NULL) {
		fprintf(stderr, "bench_classify: %s\n", err);
		return 1;
	}

	p.n = classifier_rule_count(c);
	p.re = xcalloc(p.n + 1, sizeof(*p.re));
	p.md = pcre2_match_data_create(1, NULL);
	for (size_t i = 0; i < p.n; i++) {
		const char *pat;
		int ec;
		PCRE2_SIZE eo;
		classifier_rule_info(c, i, NULL, &pat, NULL);
		p.re[i] = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
		    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
		    PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
		if (p.re[i] == NULL)
			fatalx("cannot compile %s", pat);
		pcre2_jit_compile(p.re[i], PCRE2_JIT_COMPLETE);
	}

	size_t categorised = 0;
	for (size_t i = 0; i < n; i++) {
		long a = classifier_match_index(c, subj[i], lens[i]);
		if (a != plain_match(&p, subj[i], lens[i]))
			mismatches++;
		if (a >= 0)
			categorised++;
	}

	classifier_set_cache_size(c, 0);
	double unc = run(c, NULL, subj, lens, n, secs);
	classifier_set_cache_size(c, 1024);
	double cac = run(c, NULL, subj, lens, n, secs);
	double pl = run(c, &p, subj, lens, n, secs);

	printf("rules=%zu subjects=%zu categorised=%zu uncached=%.0f/s "
	    "cached=%.0f/s plain-loop=%.0f/s mismatches=%zu\n",
	    classifier_rule_count(c), n, categorised, unc, cac, pl,
	    mismatches);

	for (size_t i = 0; i < p.n; i++)
		pcre2_code_free(p.re[i]);
	free(p.re);
	pcre2_match_data_free(p.md);
	classifier_unref(c);
	free(subj);
	free(lens);
	free(text);
	return mismatches == 0 ? 0 : 1;
}
