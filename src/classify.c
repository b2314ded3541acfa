/* SPDX-License-Identifier: Apache-2.0 */
/*
 * classify.c - the bounce classifier (reference §5): KumoMTA rule files,
 * the first pattern in load order that matches wins, PCRE2 with JIT.
 *
 * Running every pattern against every response costs time linear in the
 * number of rules. Instead each pattern gets, where one can be proven, a
 * literal that every match must contain (from the pattern's top-level
 * sequence). One Aho-Corasick pass over the response finds the literals
 * present; only the patterns whose literal occurs, plus the few that have
 * none, are run, in load order, stopping at the first match. The answer is
 * the one a plain first-match loop would give; only the work differs.
 */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "report.h"
#include "tomlbridge.h"
#include "util.h"

static const char uncategorized[] = "Uncategorized";

/*
 * Rust's regex crate runs in linear time; PCRE2 backtracks. These bounds
 * keep a pathological pattern in a hostile rule file from stalling a
 * worker: such a match is abandoned and counts as "no match".
 */
#define MATCH_LIMIT	1000000
#define DEPTH_LIMIT	10000

/*
 * The result cache: direct-mapped, keyed by the whole subject, like
 * KumoMTA's (whose default size is 1024). Long subjects are not cached so
 * the cache's memory stays bounded.
 */
#define CACHE_DEFAULT	1024
#define CACHE_MAXLEN	1024
#define CACHE_LOCKS	16

#define NONE		UINT32_MAX

struct rule {
	pcre2_code	*re;
	const char	*label;		/* interned in classifier.labels */
	const char	*file;		/* in classifier.files */
	char		*pattern;	/* the source text, NUL-terminated */
	size_t		 patlen;	/* it may hold NULs from the file */
};

/* Aho-Corasick automaton over ASCII-lowercased literals. */
struct ac {
	uint32_t	 nnodes;
	uint32_t	*fail;		/* longest proper suffix that is a node */
	uint32_t	*dict;		/* nearest suffix node ending a literal */
	uint32_t	*lit;		/* literal ending here, or NONE */
	uint32_t	*edge_start;	/* children: edges[edge_start..+nedges] */
	uint16_t	*nedges;
	uint8_t		*edge_byte;	/* sorted by byte within a node */
	uint32_t	*edge_to;
	uint32_t	 root_next[256];
};

struct cache_entry {
	uint64_t	 hash;
	size_t		 len;
	char		*subject;
	const char	*label;
};

struct classifier {
	atomic_size_t	 refs;
	struct rule	*rules;
	size_t		 nrules;
	char		**labels;
	size_t		 nlabels;
	char		**files;
	size_t		 nfiles;
	pcre2_match_context *mctx;

	/* prefilter */
	struct ac	 ac;
	uint32_t	 nlits;
	uint32_t	*lit_rules_off;	/* rules of literal i: lit_rules[off[i]..off[i+1]) */
	uint32_t	*lit_rules;
	uint64_t	*always;	/* bitmap of rules without a literal */
	size_t		 rule_words;
	size_t		 lit_words;

	/* result cache; mask == 0 when disabled */
	struct cache_entry *cache;
	size_t		 cache_mask;
	pthread_mutex_t	 cache_locks[CACHE_LOCKS];
};

struct classifier_slot {
	pthread_mutex_t	 lock;
	struct classifier *cur;
};

/* ------------------------------------------------------------------ */
/* Required-literal extraction                                         */

/*
 * The analysis follows PCRE2's syntax (the engine that runs the pattern)
 * and is deliberately conservative: anything it does not fully understand
 * yields "no literal", which only costs speed. A literal is taken only
 * from the pattern's top level, where every item is required in sequence;
 * groups, classes, escapes other than quoted punctuation, and optional
 * items end a run of literal characters. Literals are compared ASCII-
 * case-insensitively, so a case-sensitive literal is a looser filter than
 * needed, which is harmless. Under (?i), PCRE2's Unicode caseless matching
 * lets 'k' match U+212A and 's' match U+017F, and non-ASCII letters have
 * non-ASCII case partners, so those characters end a run there.
 */

struct litscan {
	const char	*p;
	size_t		 n;
	size_t		 i;
	size_t		 cur_start;	/* offset in p of the current run */
	size_t		 cur_len;
	char		*run;		/* the current run's bytes */
	char		*best;
	size_t		 best_len;
};

static void
run_end(struct litscan *s)
{
	if (s->cur_len > s->best_len) {
		memcpy(s->best, s->run, s->cur_len);
		s->best_len = s->cur_len;
	}
	s->cur_len = 0;
}

/*
 * A quantifier at p[j]: returns its length (0 when there is none) and its
 * minimum in *min, or -1 when the text after the atom is something this
 * analysis does not model (PCRE2 reads a malformed "{" as a literal).
 */
static int
quantifier(const char *p, size_t n, size_t j, unsigned long *min)
{
	size_t k = j;

	if (j >= n)
		return 0;
	if (p[j] == '*' || p[j] == '?' || p[j] == '+') {
		*min = p[j] == '+' ? 1 : 0;
		k = j + 1;
	} else if (p[j] == '{') {
		unsigned long v = 0;
		size_t d = 0;

		k = j + 1;
		while (k < n && p[k] >= '0' && p[k] <= '9') {
			if (v < 1000000)
				v = v * 10 + (unsigned long)(p[k] - '0');
			k++;
			d++;
		}
		if (d == 0)
			return -1;
		if (k < n && p[k] == ',') {
			k++;
			while (k < n && p[k] >= '0' && p[k] <= '9')
				k++;
		}
		if (k >= n || p[k] != '}')
			return -1;
		k++;
		*min = v;
	} else
		return 0;
	/* lazy or possessive suffix */
	if (k < n && (p[k] == '?' || p[k] == '+'))
		k++;
	return (int)(k - j);
}

/* Skip a character class starting at p[*i] == '['. -1 when not modelled. */
static int
skip_class(const char *p, size_t n, size_t *i)
{
	size_t j = *i + 1;

	if (j < n && p[j] == '^')
		j++;
	if (j < n && p[j] == ']')
		j++;
	while (j < n) {
		if (p[j] == '\\')
			j += 2;
		else if (p[j] == '[')
			return -1;	/* POSIX classes; not worth modelling */
		else if (p[j] == ']') {
			*i = j + 1;
			return 0;
		} else
			j++;
	}
	return -1;
}

/*
 * Skip a group starting at p[*i] == '(' to just after its closing
 * parenthesis. Escapes inside a group cannot hide a parenthesis except as
 * "\(" or "\)" (\Q...\E is excluded earlier), and a comment (?#...) ends
 * at the first ')'.
 */
static int
skip_group(const char *p, size_t n, size_t *i)
{
	size_t j = *i;
	int depth = 0;

	while (j < n) {
		if (p[j] == '\\')
			j += 2;
		else if (p[j] == '[') {
			if (skip_class(p, n, &j) != 0)
				return -1;
		} else if (p[j] == '(' && j + 2 < n && p[j + 1] == '?' &&
		    p[j + 2] == '#') {
			const char *e = memchr(p + j, ')', n - j);
			if (e == NULL)
				return -1;
			j = (size_t)(e - p) + 1;
			if (depth == 0) {
				*i = j;
				return 0;
			}
		} else if (p[j] == '(') {
			depth++;
			j++;
		} else if (p[j] == ')') {
			j++;
			if (--depth == 0) {
				*i = j;
				return 0;
			}
		} else
			j++;
	}
	return -1;
}

static bool
is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

/*
 * Length of the escape at p[i] == '\\' when it is not a literal; -1 when
 * it is not modelled. Over-consuming digits is safe (they are never taken
 * as literal); under-consuming would not be.
 */
static long
escape_len(const char *p, size_t n, size_t i)
{
	size_t j = i + 1;
	const char *e;

	if (j >= n)
		return -1;
	switch (p[j]) {
	case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
	case 'h': case 'H': case 'v': case 'V': case 'R': case 'X':
	case 'b': case 'B': case 'A': case 'z': case 'Z': case 'G':
	case 'K': case 'n': case 'r': case 't': case 'f': case 'e':
	case 'a':
		return 2;
	case 'N':
	case 'p':
	case 'P':
	case 'x':
	case 'o':
		if (j + 1 < n && p[j + 1] == '{') {
			if ((e = memchr(p + j, '}', n - j)) == NULL)
				return -1;
			return (long)((size_t)(e - p) + 1 - i);
		}
		if (p[j] == 'N')
			return 2;
		if (p[j] == 'p' || p[j] == 'P')
			return j + 1 < n ? 3 : -1;
		if (p[j] == 'x') {
			size_t k = j + 1;
			while (k < n && k < j + 3 && (is_alnum((unsigned char)p[k])))
				k++;
			return (long)(k - i);
		}
		return -1;
	case 'c':
		return j + 1 < n ? 3 : -1;
	default:
		if (p[j] >= '0' && p[j] <= '9') {
			size_t k = j;
			while (k < n && p[k] >= '0' && p[k] <= '9')
				k++;
			return (long)(k - i);
		}
		return -1;
	}
}

/* Whether the pattern uses syntax that this analysis refuses outright. */
static bool
unmodelled(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] == '\\' && (p[i + 1] == 'Q' || p[i + 1] == 'E'))
			return true;
		/* (*ACCEPT) and friends can make later items optional */
		if (p[i] == '(' && p[i + 1] == '*')
			return true;
		if (p[i] == '(' && p[i + 1] == '?') {
			size_t j = i + 2;
			if (j < n && p[j] == 'C')
				return true;	/* callouts may quote ")" */
			/* extended mode changes what whitespace and '#' mean */
			for (; j < n && (is_alnum((unsigned char)p[j]) ||
			    p[j] == '-' || p[j] == '^'); j++)
				if (p[j] == 'x')
					return true;
		}
	}
	return false;
}

/*
 * Set *out to a malloc'ed literal (ASCII-lowercased) that every match of
 * p[0..n) contains, and return its length; 0 when none can be proven.
 */
static size_t
required_literal(const char *p, size_t n, char **out)
{
	struct litscan s = { .p = p, .n = n };
	bool ci = false;
	size_t len = 0;

	*out = NULL;
	if (n == 0 || unmodelled(p, n))
		return 0;
	s.run = xmalloc(n);
	s.best = xmalloc(n);
	while (s.i < n) {
		unsigned char c = (unsigned char)p[s.i];
		size_t alen;		/* length of a literal atom */
		unsigned long min;
		int q;

		if (c == '|' || c == ')' || c == '*' || c == '+' || c == '?' ||
		    c == '{')
			goto none;	/* top-level alternation or oddities */
		if (c == '(') {
			if (s.i + 2 < n && p[s.i + 1] == '?' &&
			    (is_alnum((unsigned char)p[s.i + 2]) ||
			    p[s.i + 2] == '-' || p[s.i + 2] == '^')) {
				/* (?flags) applies to the rest of the level */
				size_t j = s.i + 2;
				bool neg = false, nci = ci;
				for (; j < n && (is_alnum((unsigned char)p[j]) ||
				    p[j] == '-' || p[j] == '^'); j++) {
					if (p[j] == '-')
						neg = true;
					else if (p[j] == '^')
						nci = false;
					else if (p[j] == 'i')
						nci = !neg;
				}
				if (j < n && p[j] == ')') {
					run_end(&s);
					ci = nci;
					s.i = j + 1;
					continue;
				}
			}
			if (skip_group(p, n, &s.i) != 0)
				goto none;
			goto nonliteral;
		}
		if (c == '[') {
			if (skip_class(p, n, &s.i) != 0)
				goto none;
			goto nonliteral;
		}
		if (c == '.' || c == '^' || c == '$') {
			s.i++;
			goto nonliteral;
		}
		if (c == '\\') {
			unsigned char e;
			long el;

			if (s.i + 1 >= n)
				goto none;
			e = (unsigned char)p[s.i + 1];
			if (e < 0x80 && !is_alnum(e)) {
				/* quoted punctuation is that literal character */
				alen = 2;
				c = e;
				goto literal;
			}
			if ((el = escape_len(p, n, s.i)) < 0)
				goto none;
			s.i += (size_t)el;
			goto nonliteral;
		}
		/* a literal character, one to four bytes of UTF-8 */
		alen = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (s.i + alen > n)
			goto none;
literal:
		q = quantifier(p, n, s.i + alen, &min);
		if (q < 0)
			goto none;
		{
			const char *bytes = alen == 2 && p[s.i] == '\\' ?
			    p + s.i + 1 : p + s.i;
			size_t blen = p[s.i] == '\\' ? 1 : alen;
			bool breaks = ci && (c >= 0x80 || c == 'k' ||
			    c == 'K' || c == 's' || c == 'S');

			if (breaks || (q > 0 && min == 0))
				run_end(&s);
			else {
				for (size_t k = 0; k < blen; k++) {
					unsigned char b = (unsigned char)bytes[k];
					s.run[s.cur_len++] = (char)(b >= 'A' &&
					    b <= 'Z' ? b + 32 : b);
				}
				if (q > 0)
					run_end(&s);
			}
		}
		s.i += alen + (size_t)q;
		continue;
nonliteral:
		run_end(&s);
		q = quantifier(p, n, s.i, &min);
		if (q < 0)
			goto none;
		s.i += (size_t)q;
	}
	run_end(&s);
	if (s.best_len > 0) {
		*out = s.best;
		len = s.best_len;
		s.best = NULL;
	}
none:
	free(s.run);
	free(s.best);
	return len;
}

/* ------------------------------------------------------------------ */
/* Aho-Corasick                                                        */

struct trie_build {
	uint32_t	*first_child;
	uint32_t	*next_sibling;
	uint8_t		*byte;
	uint32_t	*lit;
	uint32_t	 n, cap;
};

static uint32_t
trie_new_node(struct trie_build *t, uint8_t byte)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->first_child = xrealloc(t->first_child,
		    t->cap * sizeof(uint32_t));
		t->next_sibling = xrealloc(t->next_sibling,
		    t->cap * sizeof(uint32_t));
		t->byte = xrealloc(t->byte, t->cap);
		t->lit = xrealloc(t->lit, t->cap * sizeof(uint32_t));
	}
	t->first_child[t->n] = NONE;
	t->next_sibling[t->n] = NONE;
	t->byte[t->n] = byte;
	t->lit[t->n] = NONE;
	return t->n++;
}

/* Insert a literal; returns the id of an equal literal already present. */
static uint32_t
trie_insert(struct trie_build *t, const char *s, size_t len, uint32_t id)
{
	uint32_t node = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t b = (uint8_t)s[i];
		uint32_t ch = t->first_child[node];

		while (ch != NONE && t->byte[ch] != b)
			ch = t->next_sibling[ch];
		if (ch == NONE) {
			ch = trie_new_node(t, b);
			t->next_sibling[ch] = t->first_child[node];
			t->first_child[node] = ch;
		}
		node = ch;
	}
	if (t->lit[node] == NONE)
		t->lit[node] = id;
	return t->lit[node];
}

static uint32_t
ac_child(const struct ac *a, uint32_t node, uint8_t b)
{
	uint32_t lo = a->edge_start[node], hi = lo + a->nedges[node];

	/* most nodes deep in the trie have one or two children */
	if (hi - lo <= 4) {
		for (; lo < hi; lo++)
			if (a->edge_byte[lo] == b)
				return a->edge_to[lo];
		return NONE;
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (a->edge_byte[mid] == b)
			return a->edge_to[mid];
		if (a->edge_byte[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NONE;
}

struct edge {
	uint32_t	to;
	uint8_t		byte;
};

static int
cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;

	return (int)x->byte - (int)y->byte;
}

/* Build the automaton from the trie; consumes t. */
static void
ac_build(struct ac *a, struct trie_build *t)
{
	uint32_t n = t->n, nedges = 0, *queue, qh = 0, qt = 0;
	struct edge *tmp;

	a->nnodes = n;
	a->fail = xcalloc(n, sizeof(uint32_t));
	a->dict = xcalloc(n, sizeof(uint32_t));
	a->lit = t->lit;
	a->edge_start = xcalloc(n, sizeof(uint32_t));
	a->nedges = xcalloc(n, sizeof(uint16_t));
	a->edge_byte = xmalloc(n);
	a->edge_to = xmalloc(n * sizeof(uint32_t));
	tmp = xmalloc(256 * sizeof(*tmp));

	/* Flatten each node's children into a sorted run of edges. */
	for (uint32_t u = 0; u < n; u++) {
		uint32_t k = 0;
		for (uint32_t ch = t->first_child[u]; ch != NONE;
		    ch = t->next_sibling[ch])
			tmp[k++] = (struct edge){ ch, t->byte[ch] };
		qsort(tmp, k, sizeof(*tmp), cmp_edge);
		a->edge_start[u] = nedges;
		a->nedges[u] = (uint16_t)k;
		for (uint32_t e = 0; e < k; e++) {
			a->edge_byte[nedges] = tmp[e].byte;
			a->edge_to[nedges] = tmp[e].to;
			nedges++;
		}
	}
	free(tmp);

	/* Failure and dictionary links, breadth first. */
	queue = xmalloc(n * sizeof(uint32_t));
	for (int b = 0; b < 256; b++)
		a->root_next[b] = 0;
	for (uint32_t e = 0; e < a->nedges[0]; e++) {
		uint32_t v = a->edge_to[a->edge_start[0] + e];
		a->root_next[a->edge_byte[a->edge_start[0] + e]] = v;
		a->fail[v] = 0;
		a->dict[v] = 0;
		queue[qt++] = v;
	}
	while (qh < qt) {
		uint32_t u = queue[qh++];
		for (uint32_t e = 0; e < a->nedges[u]; e++) {
			uint8_t b = a->edge_byte[a->edge_start[u] + e];
			uint32_t v = a->edge_to[a->edge_start[u] + e];
			uint32_t f = a->fail[u], g;

			for (;;) {
				g = f == 0 ? a->root_next[b] : ac_child(a, f, b);
				if (g != NONE && g != 0)
					break;
				if (f == 0) {
					g = 0;
					break;
				}
				f = a->fail[f];
			}
			a->fail[v] = g;
			a->dict[v] = a->lit[g] != NONE ? g : a->dict[g];
			queue[qt++] = v;
		}
	}
	free(queue);
	free(t->first_child);
	free(t->next_sibling);
	free(t->byte);
	t->lit = NULL;
}

static void
ac_free(struct ac *a)
{
	free(a->fail);
	free(a->dict);
	free(a->lit);
	free(a->edge_start);
	free(a->nedges);
	free(a->edge_byte);
	free(a->edge_to);
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

static struct classifier *
classifier_new(void)
{
	struct classifier *c = xcalloc(1, sizeof(*c));

	atomic_init(&c->refs, 1);
	for (size_t i = 0; i < CACHE_LOCKS; i++)
		pthread_mutex_init(&c->cache_locks[i], NULL);
	c->mctx = pcre2_match_context_create(NULL);
	if (c->mctx == NULL)
		fatalx("out of memory");
	pcre2_set_match_limit(c->mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(c->mctx, DEPTH_LIMIT);
	return c;
}

static void
cache_clear(struct classifier *c)
{
	if (c->cache != NULL)
		for (size_t i = 0; i <= c->cache_mask; i++)
			free(c->cache[i].subject);
	free(c->cache);
	c->cache = NULL;
	c->cache_mask = 0;
}

static void
classifier_free(struct classifier *c)
{
	for (size_t i = 0; i < c->nrules; i++) {
		pcre2_code_free(c->rules[i].re);
		free(c->rules[i].pattern);
	}
	free(c->rules);
	for (size_t i = 0; i < c->nlabels; i++)
		free(c->labels[i]);
	free(c->labels);
	for (size_t i = 0; i < c->nfiles; i++)
		free(c->files[i]);
	free(c->files);
	pcre2_match_context_free(c->mctx);
	ac_free(&c->ac);
	free(c->lit_rules_off);
	free(c->lit_rules);
	free(c->always);
	cache_clear(c);
	for (size_t i = 0; i < CACHE_LOCKS; i++)
		pthread_mutex_destroy(&c->cache_locks[i]);
	free(c);
}

/*
 * Text from a rule file for an error message: control characters and
 * invalid bytes are shown as \xNN so the message stays one clean line.
 */
static char *
printable(const char *s, size_t n)
{
	struct buf b = { 0 };

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			buf_printf(&b, "\\x%02x", ch);
		else
			buf_putc(&b, (char)ch);
	}
	buf_putc(&b, '\0');
	return buf_steal(&b);
}

static const char *
intern_label(struct classifier *c, const char *s)
{
	for (size_t i = 0; i < c->nlabels; i++)
		if (strcmp(c->labels[i], s) == 0)
			return c->labels[i];
	c->labels = xgrow(c->labels, c->nlabels, sizeof(char *));
	return c->labels[c->nlabels++] = xstrdup(s);
}

/*
 * Compile one pattern. The options follow Rust's regex crate where PCRE2
 * differs by default: Unicode-aware classes (\d, \w, \b), "$" only at the
 * very end. Subjects are made valid UTF-8 before matching; the
 * PCRE2_MATCH_INVALID_UTF option is a second line of defence, so that a
 * subject that slipped through could never make a match fail with an error.
 */
static int
add_pattern(struct classifier *c, const char *file, const char *label,
    const char *pat, size_t patlen, char **err)
{
	int errcode;
	PCRE2_SIZE erroff;
	pcre2_code *re;
	struct rule *r;

	re = pcre2_compile((PCRE2_SPTR)pat, patlen,
	    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
	    PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C,
	    &errcode, &erroff, NULL);
	if (re == NULL) {
		PCRE2_UCHAR msg[256];
		char *pl = printable(label, strlen(label));
		char *pp = printable(pat, patlen);

		if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
			strcpy((char *)msg, "unknown error");
		*err = xasprintf("%s: label \"%s\", pattern \"%s\": invalid "
		    "regex: %s (at offset %zu)", file, pl, pp, (char *)msg,
		    (size_t)erroff);
		free(pl);
		free(pp);
		return -1;
	}
	/* Without JIT (an unsupported CPU) the interpreter still answers. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);

	c->rules = xgrow(c->rules, c->nrules, sizeof(*c->rules));
	r = &c->rules[c->nrules++];
	r->re = re;
	r->label = intern_label(c, label);
	r->file = c->files[c->nfiles - 1];
	r->pattern = xmalloc(patlen + 1);
	memcpy(r->pattern, pat, patlen);
	r->pattern[patlen] = '\0';
	r->patlen = patlen;
	return 0;
}

static int
load_file(struct classifier *c, const char *file, char **err)
{
	json_t *root, *rules, *val;
	const char *key;
	size_t keylen;
	int rc = -1;

	if ((root = load_data_file(file, 0, err)) == NULL)
		return -1;
	c->files = xgrow(c->files, c->nfiles, sizeof(char *));
	c->files[c->nfiles++] = xstrdup(file);
	if (!json_is_object(root)) {
		*err = xasprintf("%s: expected a table at the top", file);
		goto out;
	}
	rules = json_object_get(root, "rules");
	if (rules == NULL) {
		*err = xasprintf("%s: no \"rules\" table", file);
		goto out;
	}
	if (!json_is_object(rules)) {
		*err = xasprintf("%s: \"rules\" must be a table of "
		    "label = [regex, ...]", file);
		goto out;
	}
	json_object_keylen_foreach(rules, key, keylen, val) {
		size_t i;
		json_t *pat;
		char *pl;

		if (keylen == 0 || strlen(key) != keylen) {
			pl = printable(key, keylen);
			*err = xasprintf("%s: label \"%s\": a label must be "
			    "non-empty and free of NUL bytes", file, pl);
			free(pl);
			goto out;
		}
		if (!json_is_array(val)) {
			pl = printable(key, keylen);
			*err = xasprintf("%s: label \"%s\": expected an array "
			    "of regex strings", file, pl);
			free(pl);
			goto out;
		}
		json_array_foreach(val, i, pat) {
			if (!json_is_string(pat)) {
				pl = printable(key, keylen);
				*err = xasprintf("%s: label \"%s\": pattern %zu "
				    "is not a string", file, pl, i + 1);
				free(pl);
				goto out;
			}
			if (add_pattern(c, file, key, json_string_value(pat),
			    json_string_length(pat), err) != 0)
				goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* Build the literal index over all rules. */
static void
build_prefilter(struct classifier *c)
{
	struct trie_build t = { 0 };
	uint32_t *rule_lit = xmalloc((c->nrules + 1) * sizeof(uint32_t));
	uint32_t nlits = 0;

	c->rule_words = (c->nrules + 63) / 64;
	c->always = xcalloc(c->rule_words + 1, sizeof(uint64_t));
	trie_new_node(&t, 0);
	for (size_t i = 0; i < c->nrules; i++) {
		char *lit;
		size_t len = required_literal(c->rules[i].pattern,
		    c->rules[i].patlen, &lit);

		if (len == 0) {
			rule_lit[i] = NONE;
			c->always[i / 64] |= (uint64_t)1 << (i % 64);
			continue;
		}
		rule_lit[i] = trie_insert(&t, lit, len, nlits);
		if (rule_lit[i] == nlits)
			nlits++;
		free(lit);
	}
	c->nlits = nlits;
	c->lit_words = (nlits + 63) / 64;
	c->lit_rules_off = xcalloc((size_t)nlits + 1, sizeof(uint32_t));
	c->lit_rules = xmalloc((c->nrules + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < c->nrules; i++)
		if (rule_lit[i] != NONE)
			c->lit_rules_off[rule_lit[i] + 1]++;
	for (uint32_t l = 0; l < nlits; l++)
		c->lit_rules_off[l + 1] += c->lit_rules_off[l];
	{
		uint32_t *fill = xmalloc(((size_t)nlits + 1) *
		    sizeof(uint32_t));
		memcpy(fill, c->lit_rules_off, ((size_t)nlits + 1) *
		    sizeof(uint32_t));
		for (size_t i = 0; i < c->nrules; i++)
			if (rule_lit[i] != NONE)
				c->lit_rules[fill[rule_lit[i]]++] = (uint32_t)i;
		free(fill);
	}
	free(rule_lit);
	ac_build(&c->ac, &t);
}

struct classifier *
classifier_load(const char *const *files, size_t nfiles, char **err)
{
	struct classifier *c = classifier_new();

	*err = NULL;
	for (size_t f = 0; f < nfiles; f++) {
		if (load_file(c, files[f], err) != 0) {
			classifier_free(c);
			return NULL;
		}
		/* the index is 32-bit; no real rule set comes near this */
		if (c->nrules >= NONE / 2) {
			*err = xasprintf("%s: too many rules", files[f]);
			classifier_free(c);
			return NULL;
		}
	}
	build_prefilter(c);
	classifier_set_cache_size(c, CACHE_DEFAULT);
	return c;
}

void
classifier_set_cache_size(struct classifier *c, size_t entries)
{
	size_t n = 1;

	cache_clear(c);
	if (entries == 0)
		return;
	while (n < entries && n < ((size_t)1 << 20))
		n <<= 1;
	c->cache = xcalloc(n, sizeof(*c->cache));
	c->cache_mask = n - 1;
}

struct classifier *
classifier_ref(struct classifier *c)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void
classifier_unref(struct classifier *c)
{
	if (c == NULL)
		return;
	/* acq_rel: the freeing thread must see every other thread's use */
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		classifier_free(c);
}

size_t
classifier_rule_count(const struct classifier *c)
{
	return c != NULL ? c->nrules : 0;
}

int
classifier_rule_info(const struct classifier *c, size_t i,
    const char **label, const char **pattern, const char **file)
{
	if (c == NULL || i >= c->nrules)
		return -1;
	if (label != NULL)
		*label = c->rules[i].label;
	if (pattern != NULL)
		*pattern = c->rules[i].pattern;
	if (file != NULL)
		*file = c->rules[i].file;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */

static const uint8_t ascii_lower[256] = {
#define L(x) (uint8_t)((x) >= 'A' && (x) <= 'Z' ? (x) + 32 : (x))
#define R4(x) L(x), L((x) + 1), L((x) + 2), L((x) + 3)
#define R16(x) R4(x), R4((x) + 4), R4((x) + 8), R4((x) + 12)
#define R64(x) R16(x), R16((x) + 16), R16((x) + 32), R16((x) + 48)
	R64(0), R64(64), R64(128), R64(192)
#undef R64
#undef R16
#undef R4
#undef L
};

/* Mark in cand the rules whose literal occurs in the subject. */
static void
scan_literals(const struct classifier *c, const uint8_t *s, size_t len,
    uint64_t *cand, uint64_t *seen)
{
	const struct ac *a = &c->ac;
	uint32_t state = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t b = ascii_lower[s[i]];

		for (;;) {
			if (state == 0) {
				state = a->root_next[b];
				break;
			}
			uint32_t nx = ac_child(a, state, b);
			if (nx != NONE) {
				state = nx;
				break;
			}
			state = a->fail[state];
		}
		for (uint32_t t = a->lit[state] != NONE ? state :
		    a->dict[state]; t != 0; t = a->dict[t]) {
			uint32_t l = a->lit[t];
			if (seen[l / 64] & ((uint64_t)1 << (l % 64)))
				continue;
			seen[l / 64] |= (uint64_t)1 << (l % 64);
			for (uint32_t k = c->lit_rules_off[l];
			    k < c->lit_rules_off[l + 1]; k++) {
				uint32_t r = c->lit_rules[k];
				cand[r / 64] |= (uint64_t)1 << (r % 64);
			}
		}
	}
}

static bool
rule_matches(const struct classifier *c, size_t r, const char *line,
    size_t len, pcre2_match_data **md)
{
	int rc;

	if (*md == NULL && (*md = pcre2_match_data_create(1, NULL)) == NULL)
		fatalx("out of memory");
	rc = pcre2_match(c->rules[r].re, (PCRE2_SPTR)line, len, 0, 0, *md,
	    c->mctx);
	/*
	 * rc == 0 would mean the ovector was too small, still a match.
	 * Errors (the match or depth limit, the JIT stack) count as no match:
	 * one bad pattern must not stop classification by the rest.
	 */
	return rc >= 0;
}

/* The common case, checked faster than full UTF-8 validation. */
static bool
ascii_only(const char *s, size_t n)
{
	unsigned char acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= (unsigned char)s[i];
	return acc < 0x80;
}

long
classifier_match_index(const struct classifier *c, const char *line,
    size_t len)
{
	uint64_t stackbuf[512], *cand, *seen, *heap = NULL;
	pcre2_match_data *md = NULL;
	char *clean = NULL;
	size_t words;
	long found = -1;

	if (c == NULL || c->nrules == 0)
		return -1;
	/*
	 * KumoMTA's subject is a Rust String, where invalid UTF-8 has become
	 * U+FFFD, which "." and negated classes match. Do the same rather
	 * than let PCRE2 treat the bytes as unmatchable.
	 */
	if (!ascii_only(line, len) && !utf8_valid(line, len)) {
		clean = utf8_lossy(line, len);
		line = clean;
		len = strlen(clean);
	}
	words = c->rule_words + c->lit_words;
	if (words <= nitems(stackbuf))
		cand = stackbuf;
	else
		cand = heap = xmalloc(words * sizeof(uint64_t));
	seen = cand + c->rule_words;
	memcpy(cand, c->always, c->rule_words * sizeof(uint64_t));
	memset(seen, 0, c->lit_words * sizeof(uint64_t));
	if (c->nlits > 0)
		scan_literals(c, (const uint8_t *)line, len, cand, seen);

	for (size_t w = 0; w < c->rule_words && found < 0; w++) {
		uint64_t bits = cand[w];
		while (bits != 0) {
			size_t r = w * 64 + (size_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			if (rule_matches(c, r, line, len, &md)) {
				found = (long)r;
				break;
			}
		}
	}
	pcre2_match_data_free(md);
	free(heap);
	free(clean);
	return found;
}

/* FNV-1a: the cache only needs a cheap, well-spread index. */
static uint64_t
subject_hash(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

const char *
classifier_classify_line(const struct classifier *c, const char *line,
    size_t len)
{
	/* the cache is logically part of the answer, not of the rules */
	struct classifier *mc = (struct classifier *)c;
	const char *label = NULL;
	uint64_t h = 0;
	size_t slot = 0;
	pthread_mutex_t *lock = NULL;
	long r;

	if (c == NULL || c->nrules == 0)
		return uncategorized;
	if (c->cache != NULL && len <= CACHE_MAXLEN) {
		h = subject_hash(line, len);
		slot = (size_t)h & c->cache_mask;
		lock = &mc->cache_locks[slot % CACHE_LOCKS];
		pthread_mutex_lock(lock);
		struct cache_entry *e = &c->cache[slot];
		if (e->subject != NULL && e->hash == h && e->len == len &&
		    memcmp(e->subject, line, len) == 0)
			label = e->label;
		pthread_mutex_unlock(lock);
		if (label != NULL)
			return label;
	}
	r = classifier_match_index(c, line, len);
	label = r < 0 ? uncategorized : c->rules[r].label;
	if (lock != NULL) {
		char *copy = xmalloc(len + 1);
		memcpy(copy, line, len);
		copy[len] = '\0';
		pthread_mutex_lock(lock);
		struct cache_entry *e = &mc->cache[slot];
		free(e->subject);
		e->subject = copy;
		e->hash = h;
		e->len = len;
		e->label = label;
		pthread_mutex_unlock(lock);
	}
	return label;
}

const char *
classifier_classify(const struct classifier *c, const struct response *resp)
{
	const char *label;
	char *line;

	if (c == NULL || c->nrules == 0)
		return uncategorized;
	line = response_single_line(resp);
	label = classifier_classify_line(c, line, strlen(line));
	free(line);
	return label;
}

/* ------------------------------------------------------------------ */
/* Reloadable slot                                                     */

struct classifier_slot *
classifier_slot_new(struct classifier *initial)
{
	struct classifier_slot *s = xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	s->cur = initial;
	return s;
}

void
classifier_slot_free(struct classifier_slot *s)
{
	if (s == NULL)
		return;
	classifier_unref(s->cur);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/*
 * A mutex rather than a bare atomic pointer: a reader must take its
 * reference before a concurrent reload can drop the slot's, and the lock
 * makes "load pointer, increment count" one step. It is held only for that.
 */
struct classifier *
classifier_slot_get(struct classifier_slot *s)
{
	struct classifier *c;

	pthread_mutex_lock(&s->lock);
	c = classifier_ref(s->cur);
	pthread_mutex_unlock(&s->lock);
	return c;
}

int
classifier_slot_reload(struct classifier_slot *s, const char *const *files,
    size_t nfiles, char **err)
{
	struct classifier *c, *old;

	/* Compile outside the lock: readers keep using the old rules. */
	if ((c = classifier_load(files, nfiles, err)) == NULL)
		return -1;
	pthread_mutex_lock(&s->lock);
	old = s->cur;
	s->cur = c;
	pthread_mutex_unlock(&s->lock);
	classifier_unref(old);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Evidence                                                            */

const char *
classifier_classify_evidence(const struct classifier *c,
    const struct response *resp, const char *const *more, size_t nmore,
    const char **subject, char **owned)
{
	const char *label;

	*owned = response_single_line(resp);
	*subject = *owned;
	label = classifier_classify_line(c, *owned, strlen(*owned));
	for (size_t i = 0; i < nmore && label == uncategorized; i++) {
		if (more[i] == NULL || strcmp(more[i], *subject) == 0)
			continue;
		*subject = more[i];
		label = classifier_classify_line(c, more[i], strlen(more[i]));
	}
	return label;
}

/* ------------------------------------------------------------------ */
/* Reasons                                                             */

/*
 * Wordings that say more than KumoMTA's classes can: which kind of
 * refusal (a blocked client, a missing PTR, spam content, a refused
 * sender, a rate limit), which kind of capacity problem. Matched like the
 * rule files (first match wins, unanchored, case-insensitive by "(?i)").
 * Each pattern has a literal run at its top level, so the prefilter skips
 * it for texts without that word.
 */
static const char *const reason_rules[][2] = {
	/* the client's address has no name, or the name does not match */
	{ "requireptr", "(?i)reverse dns" },
	{ "requireptr", "(?i)reverse lookup" },
	{ "requireptr", "(?i)reverse (?:dns )?(?:record|hostname|name)" },
	{ "requireptr", "(?i)\\bptr\\b" },
	{ "requireptr", "(?i)\\brdns\\b" },
	{ "requireptr", "(?i)cannot find your (?:reverse )?hostname" },
	{ "requireptr", "(?i)client host name (?:is )?(?:unknown|not)" },
	{ "requireptr", "(?i)unresolvable (?:client|host|ip|address)" },
	{ "requireptr", "(?i)(?:ip|address|client|host) (?:name )?(?:does not|doesn't|did not) resolve" },
	{ "requireptr", "(?i)no (?:host)?name for (?:your |the )?(?:ip|address)" },
	{ "requireptr", "(?i)mismatches client ip" },
	{ "requireptr", "(?i)ip name lookup failed" },
	/* not a mail system: Null MX or a refusal of all mail */
	{ "notaccept", "(?i)does not accept mail" },
	{ "notaccept", "(?i)not accept(?:ing)? (?:any )?(?:e-?)?mail" },
	{ "notaccept", "(?i)null mx" },
	{ "notaccept", "(?i)no mx" },
	{ "notaccept", "(?i)no smtp service" },
	{ "notaccept", "(?i)find a mail exchanger" },
	{ "notaccept", "(?i)(?:doesn't|does not) receive (?:e-?)?mail" },
	/* the sender's address or domain is refused */
	{ "rejected", "(?i)sender address rejected" },
	{ "rejected", "(?i)sender (?:address |domain )?(?:is )?(?:rejected|refused|denied|blocked|invalid|unknown|not allowed)" },
	{ "rejected", "(?i)(?:mail ?from|envelope sender|return.path)[^.]{0,40}(?:rejected|refused|invalid|denied)" },
	{ "rejected", "(?i)sender verify failed" },
	{ "rejected", "(?i)domain of sender address" },
	{ "rejected", "(?i)sender domain (?:must|does not) (?:exist|resolve)" },
	{ "rejected", "(?i)unverifiable sender" },
	{ "rejected", "(?i)from (?:address|domain) (?:is )?(?:invalid|rejected|not allowed)" },
	/* relaying refused */
	{ "norelaying", "(?i)relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited|refused)" },
	{ "norelaying", "(?i)(?:not|n't) (?:permitted|allowed|authori[sz]ed) to relay" },
	{ "norelaying", "(?i)unable to relay" },
	{ "norelaying", "(?i)no relaying" },
	{ "norelaying", "(?i)relay not permitted" },
	{ "norelaying", "(?i)not a gateway" },
	/* too many connections or messages: slow down */
	{ "toomanyconn", "(?i)too many (?:concurrent |simultaneous )?(?:connections|sessions|smtp sessions)" },
	{ "toomanyconn", "(?i)connection (?:limit|rate limit)" },
	{ "speeding", "(?i)rate limit" },
	{ "speeding", "(?i)too many (?:messages|mails|emails)" },
	{ "speeding", "(?i)sending (?:too fast|rate)" },
	{ "speeding", "(?i)(?:unexpected|unusual|excessive) (?:volume|rate|traffic)" },
	/* reputation of the sending address */
	{ "badreputation", "(?i)(?:poor|bad|low) (?:ip |sender |sending )?reputation" },
	{ "badreputation", "(?i)reputation (?:of|for) (?:the |your )?(?:ip|sending|sender)" },
	/* the client is listed or blocked */
	{ "blocked", "(?i)black ?list" },
	{ "blocked", "(?i)block ?list" },
	{ "blocked", "(?i)spamhaus" },
	{ "blocked", "(?i)spamcop" },
	{ "blocked", "(?i)barracuda" },
	{ "blocked", "(?i)\\bsorbs\\b" },
	{ "blocked", "(?i)dnsbl" },
	{ "blocked", "(?i)\\brbl\\b" },
	{ "blocked", "(?i)\\brbl:" },
	{ "blocked", "(?i)listed (?:at|in|on|by) " },
	{ "blocked", "(?i)client host \\[?[^ ]{0,80}\\]? ?(?:is )?blocked" },
	{ "blocked", "(?i)blocked using" },
	{ "blocked", "(?i)(?:your |the )?(?:ip|ip address|host|network|server|client) (?:address )?(?:\\[[^]]{0,45}\\] |[0-9a-f.:]{3,45} )?(?:is |has been |was )?(?:currently |temporarily |permanently )?(?:blocked|banned|refused|not allowed|denied)" },
	{ "blocked", "(?i)connection (?:refused|rejected|denied)" },
	{ "blocked", "(?i)access denied" },
	{ "blocked", "(?i)dynamic (?:ip|address|pool|range)" },
	{ "blocked", "(?i)residential (?:ip|address)" },
	{ "blocked", "(?i)(?:ip|host) (?:address )?(?:has been |is )?(?:listed|blacklisted)" },
	/* the message looked like spam */
	{ "spamdetected", "(?i)spam" },
	{ "spamdetected", "(?i)junk mail" },
	{ "spamdetected", "(?i)unsolicited" },
	{ "spamdetected", "(?i)bulk mail" },
	/* viruses */
	{ "virusdetected", "(?i)virus" },
	{ "virusdetected", "(?i)malware" },
	{ "virusdetected", "(?i)infected" },
	/* authentication of the sending domain */
	{ "authfailure", "(?i)dmarc" },
	{ "authfailure", "(?i)\\bspf\\b" },
	{ "authfailure", "(?i)dkim" },
	{ "authfailure", "(?i)sender policy framework" },
	/* TLS and other security requirements */
	{ "failedstarttls", "(?i)starttls" },
	{ "failedstarttls", "(?i)\\btls\\b.{0,40}(?:required|failed|handshake)" },
	{ "securityerror", "(?i)authentication required" },
	{ "securityerror", "(?i)unauthenticated senders" },
	{ "securityerror", "(?i)smtp authentication" },
	{ "securityerror", "(?i)must (?:be )?authenticat" },
	{ "securityerror", "(?i)encryption required" },
	/* the recipient has moved or is disabled */
	{ "hasmoved", "(?i)(?:has )?moved (?:to|permanently)" },
	{ "hasmoved", "(?i)no longer (?:at|with|on) " },
	{ "suspend", "(?i)(?:account|mailbox|user|address|recipient)[^.]{0,40}(?:disabled|suspended|deactivated|inactive|locked|expired|closed|frozen|blocked)" },
	{ "suspend", "(?i)(?:disabled|suspended|deactivated|inactive|locked|closed|frozen) (?:account|mailbox|user|address)" },
	{ "suspend", "(?i)not (?:currently )?active" },
	/* size */
	{ "exceedlimit", "(?i)(?:message|mail) (?:size )?(?:exceeds|exceeded|is larger than)" },
	{ "exceedlimit", "(?i)(?:size|length) (?:limit )?exceed" },
	{ "exceedlimit", "(?i)exceeds? (?:the )?(?:maximum |max\\.? )?(?:message |allowed )?size" },
	{ "mesgtoobig", "(?i)too (?:big|large)" },
	/* capacity of the recipient's system rather than the mailbox */
	{ "systemfull", "(?i)(?:system|disk|server) (?:storage )?(?:is )?full" },
	{ "systemfull", "(?i)insufficient (?:system )?storage" },
	{ "systemfull", "(?i)out of (?:disk|storage)" },
	/* the recipient's mailbox is full */
	{ "mailboxfull", "(?i)quota" },
	{ "mailboxfull", "(?i)mailbox (?:is )?full" },
	{ "mailboxfull", "(?i)(?:mailbox|inbox|mail ?box|account|storage) (?:is )?(?:over|full|exceeded)" },
	{ "mailboxfull", "(?i)(?:insufficient|not enough|no) (?:disk )?space" },
	{ "mailboxfull", "(?i)out of (?:storage )?space" },
	{ "mailboxfull", "(?i)(?:mailbox|account) size" },
	/*
	 * An unknown recipient refused only after the message was sent
	 * (the reply to DATA): the recipient's filter turned the message
	 * away, the address may well exist.
	 */
	{ "filtered", "(?i)end of data command" },
	{ "filtered", "(?i)>>> data" },
	{ "filtered", "(?i)smtp command data" },
	{ "filtered", "(?i)after end of data" },
	/* the recipient does not exist */
	{ "hostunknown", "(?i)unrouteable address" },
	{ "hostunknown", "(?i)host (?:or domain name )?not found" },
	{ "hostunknown", "(?i)(?:domain|host) (?:name )?(?:not found|does not exist|doesn't exist|unknown)" },
	{ "hostunknown", "(?i)unknown (?:domain|host)" },
	{ "hostunknown", "(?i)no such (?:domain|host)" },
	{ "hostunknown", "(?i)name or service not known" },
	{ "hostunknown", "(?i)nxdomain" },
	{ "hostunknown", "(?i)no (?:mx|mail exchanger|valid mx)" },
	{ "userunknown", "(?i)user unknown" },
	{ "userunknown", "(?i)not a registered" },
	{ "userunknown", "(?i)unknown (?:user|recipient|mailbox|address|local.?part)" },
	{ "userunknown", "(?i)no such (?:user|recipient|mailbox|address|account|local user)" },
	{ "userunknown", "(?i)(?:user|recipient|mailbox|address|account|addressee) (?:name )?(?:does not|doesn't|did not|no longer) exist" },
	{ "userunknown", "(?i)(?:user|recipient|mailbox|address|account) (?:is )?(?:not found|unknown|invalid|not valid)" },
	{ "userunknown", "(?i)invalid (?:recipient|mailbox|address|user)" },
	{ "userunknown", "(?i)not (?:a )?(?:valid|known) (?:recipient|user|mailbox|address)" },
	{ "userunknown", "(?i)(?:mailbox|user|recipient) unavailable" },
	/* timing */
	{ "expired", "(?i)(?:retry|delivery) (?:time(?:out)? )?(?:expired|exceeded)" },
	{ "expired", "(?i)(?:too long|too old) (?:in|on) (?:the )?queue" },
	{ "expired", "(?i)(?:message|mail) (?:has been |was )?(?:in|on) (?:the )?queue too long" },
	{ "expired", "(?i)giving up" },
	/* network */
	{ "networkerror", "(?i)(?:connection|connect) (?:timed out|timeout|time-out|lost|reset|closed)" },
	{ "networkerror", "(?i)no route to host" },
	{ "networkerror", "(?i)network (?:is )?unreachable" },
	{ "networkerror", "(?i)mail loop" },
	{ "networkerror", "(?i)routing loop" },
	{ "networkerror", "(?i)too many hops" },
	{ "networkerror", "(?i)hop count" },
	/* content and protocol */
	{ "notcompliantrfc", "(?i)rfc ?5322" },
	{ "notcompliantrfc", "(?i)rfc ?2822" },
	{ "notcompliantrfc", "(?i)not (?:rfc|standards) ?compliant" },
	{ "contenterror", "(?i)(?:message|mail) content" },
	{ "syntaxerror", "(?i)syntax error" },
	{ "syntaxerror", "(?i)bad sequence of commands" },
	{ "systemerror", "(?i)(?:local|system|internal|server|configuration) error" },
	{ "systemerror", "(?i)temporary (?:local |system )?(?:problem|failure)" },
	{ "mailererror", "(?i)command (?:died|failed|output)" },
	{ "mailererror", "(?i)mailer error" },
	{ "policyviolation", "(?i)(?:local|security|content|our) polic(?:y|ies)" },
	{ "policyviolation", "(?i)policy (?:reasons|violation|rejection)" },
};

/*
 * The classes a reason can refine: a wording never contradicts the class
 * the rules gave (a "user unknown" text under a SpamBlock label is the
 * label's reason, "blocked"). Labels outside this list (Uncategorized,
 * user-defined labels) accept any reason.
 */
static const char *const reason_classes[][2] = {
	{ "userunknown", " InvalidRecipient " },
	{ "filtered", " InvalidRecipient InactiveMailbox " },
	{ "hostunknown", " BadDomain DNSFailure RoutingErrors InvalidRecipient " },
	{ "notaccept", " BadDomain RoutingErrors BadConfiguration PolicyRelated " },
	{ "hasmoved", " InactiveMailbox InvalidRecipient " },
	{ "suspend", " InactiveMailbox InvalidRecipient PolicyRelated " },
	{ "mailboxfull", " QuotaIssues InactiveMailbox " },
	{ "exceedlimit", " QuotaIssues ContentRelated PolicyRelated " },
	{ "mesgtoobig", " QuotaIssues ContentRelated PolicyRelated " },
	{ "systemfull", " QuotaIssues BadConfiguration TransientFailure " },
	{ "rejected", " InvalidSender PolicyRelated SpamBlock InvalidRecipient " },
	{ "norelaying", " RelayDenied RelayingIssues PolicyRelated " },
	{ "requireptr", " AuthenticationFailed SpamBlock PolicyRelated DNSFailure ProtocolErrors " },
	{ "blocked", " SpamBlock PolicyRelated TransientFailure NoAnswerFromHost ProtocolErrors " },
	{ "badreputation", " SpamBlock PolicyRelated TransientFailure " },
	{ "speeding", " TransientFailure PolicyRelated SpamBlock InactiveMailbox " },
	{ "toomanyconn", " TransientFailure PolicyRelated SpamBlock TooManyRecipients " },
	{ "spamdetected", " SpamContent SpamBlock PolicyRelated ContentRelated " },
	{ "virusdetected", " VirusRelated ContentRelated PolicyRelated " },
	{ "authfailure", " AuthenticationFailed PolicyRelated " },
	{ "failedstarttls", " AuthenticationFailed PolicyRelated ProtocolErrors BadConnection " },
	{ "securityerror", " AuthenticationFailed PolicyRelated " },
	{ "expired", " MessageExpired " },
	{ "networkerror", " NoAnswerFromHost BadConnection DNSFailure RoutingErrors TransientFailure " },
	{ "notcompliantrfc", " ContentRelated ProtocolErrors PolicyRelated " },
	{ "contenterror", " ContentRelated PolicyRelated " },
	{ "syntaxerror", " ProtocolErrors " },
	{ "systemerror", " BadConfiguration TransientFailure RoutingErrors " },
	{ "mailererror", " BadConfiguration " },
	/*
	 * Under an authentication code too: "5.7.9 Message not accepted for
	 * policy reasons" names the receiver's policy, not a failed login.
	 */
	{ "policyviolation", " PolicyRelated ContentRelated ProhibitedAttachment AuthenticationFailed " },
};

/* KumoMTA's predefined classes and the reason each means by default. */
static const char *const label_reasons[][2] = {
	{ "InvalidRecipient", "userunknown" },
	{ "BadDomain", "hostunknown" },
	{ "InactiveMailbox", "suspend" },
	{ "QuotaIssues", "mailboxfull" },
	{ "InvalidSender", "rejected" },
	{ "NoAnswerFromHost", "networkerror" },
	{ "BadConnection", "networkerror" },
	{ "DNSFailure", "networkerror" },
	{ "RoutingErrors", "networkerror" },
	{ "MessageExpired", "expired" },
	{ "BadConfiguration", "systemerror" },
	{ "TooManyRecipients", "syntaxerror" },
	{ "ProtocolErrors", "syntaxerror" },
	{ "ContentRelated", "contenterror" },
	{ "AuthenticationFailed", "authfailure" },
	{ "PolicyRelated", "policyviolation" },
	{ "SpamBlock", "blocked" },
	{ "SpamContent", "spamdetected" },
	{ "VirusRelated", "virusdetected" },
	{ "ProhibitedAttachment", "policyviolation" },
	{ "RelayDenied", "norelaying" },
	{ "RelayingIssues", "norelaying" },
	{ "AutoReply", "vacation" },
	{ "ChallengeResponse", "filtered" },
};

static struct classifier *reason_classifier;
static pthread_once_t reason_once = PTHREAD_ONCE_INIT;

static void
reason_init(void)
{
	struct classifier *c = classifier_new();
	char *err = NULL;

	c->files = xmalloc(sizeof(char *));
	c->files[c->nfiles++] = xstrdup("(built-in reasons)");
	for (size_t i = 0; i < nitems(reason_rules); i++)
		if (add_pattern(c, c->files[0], reason_rules[i][0],
		    reason_rules[i][1], strlen(reason_rules[i][1]), &err) != 0)
			fatalx("%s", err);
	build_prefilter(c);
	classifier_set_cache_size(c, CACHE_DEFAULT);
	reason_classifier = c;
}

/* Whether reason may refine label (reason_classes). */
static bool
reason_fits(const char *reason, const char *label)
{
	size_t n = strlen(label);
	bool predefined = false;

	for (size_t i = 0; i < nitems(label_reasons); i++)
		predefined |= strcmp(label, label_reasons[i][0]) == 0;
	if (!predefined)
		return true;
	for (size_t i = 0; i < nitems(reason_classes); i++) {
		if (strcmp(reason, reason_classes[i][0]) != 0)
			continue;
		for (const char *p = reason_classes[i][1];
		    (p = strstr(p, label)) != NULL; p += n)
			if (p[-1] == ' ' && p[n] == ' ')
				return true;
		return false;
	}
	return true;
}

/*
 * The reason an enhanced status code means by itself, or NULL: exact
 * codes only, or (generic) whatever its subject says too.
 */
static const char *
code_reason(unsigned cls, unsigned subject, unsigned detail, bool generic)
{
	switch (subject * 100 + detail) {
	case 101: case 103: case 104: return "userunknown";
	case 102: return "hostunknown";
	case 106: return "hasmoved";
	case 107: case 108: return "rejected";
	case 110: return "notaccept";
	case 201: return "suspend";
	case 202: return "mailboxfull";
	case 203: return "exceedlimit";
	case 204: return "filtered";
	case 301: return "systemfull";
	case 302: return "notaccept";
	case 304: return "mesgtoobig";
	case 401: case 402: case 406: return "networkerror";
	case 404: return "hostunknown";
	case 407: return "expired";
	case 713: return "suspend";
	case 717: return "userunknown";
	case 718: return "hostunknown";
	case 720: case 721: case 722: case 723: case 724: case 726:
		return "authfailure";
	case 725: return "requireptr";
	case 727: return "rejected";
	case 728: return "speeding";
	}
	if (!generic)
		return NULL;
	switch (subject) {
	case 1: return "userunknown";
	case 3: return "systemerror";
	case 4: return "networkerror";
	case 5: return "syntaxerror";
	case 6: return "contenterror";
	case 7: return detail == 1 ? "blocked" : "securityerror";
	}
	(void)cls;
	return NULL;
}

/* Hard: nothing will change without the recipient's side acting. */
static bool
reason_hard(const char *reason, unsigned cls)
{
	return strcmp(reason, "userunknown") == 0 ||
	    strcmp(reason, "hostunknown") == 0 ||
	    strcmp(reason, "hasmoved") == 0 ||
	    (strcmp(reason, "notaccept") == 0 && cls == 5);
}

const char *
bounce_reason(const char *label, const char *subject, bool *hard)
{
	const char *reason = NULL;
	unsigned cls = 0, sub = 0, det = 0;
	int code = 0;
	const char *p = subject;

	pthread_once(&reason_once, reason_init);
	/* "<code> [<class>.<subject>.<detail> ]<text>" */
	if (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' &&
	    p[2] >= '0' && p[2] <= '9' && p[3] == ' ') {
		code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		unsigned a, b, c;
		int n = 0;
		if (sscanf(p + 4, "%u.%u.%u%n", &a, &b, &c, &n) == 3 && n > 0 &&
		    (p[4 + n] == ' ' || p[4 + n] == '\0')) {
			cls = a;
			sub = b;
			det = c;
		}
	}
	if (cls == 0 && code >= 400 && code < 600)
		cls = (unsigned)code / 100;

	reason = classifier_classify_line(reason_classifier, subject,
	    strlen(subject));
	if (reason == uncategorized)
		reason = NULL;
	if (reason != NULL && label != NULL && !reason_fits(reason, label))
		reason = NULL;
	if (reason == NULL && (sub != 0 || det != 0))
		reason = code_reason(cls, sub, det, false);
	if (reason != NULL && label != NULL && !reason_fits(reason, label))
		reason = NULL;
	for (size_t i = 0; reason == NULL && i < nitems(label_reasons); i++)
		if (label != NULL && strcmp(label, label_reasons[i][0]) == 0)
			reason = label_reasons[i][1];
	if (reason == NULL && (sub != 0 || det != 0))
		reason = code_reason(cls, sub, det, true);
	if (reason == NULL)
		reason = cls == 4 ? "onhold" : "undefined";
	/*
	 * A domain not found that the reporting MTA calls temporary (class
	 * 4): its lookup failed for now (a DNS server failing or slow), a
	 * network error that may clear, not a domain known not to exist.
	 */
	if (cls == 4 && strcmp(reason, "hostunknown") == 0)
		reason = "networkerror";
	*hard = reason_hard(reason, cls);
	return reason;
}

/*
 * The reply of a Diagnostic-Code text as a single-line subject: its own
 * reply code (else code) and the enhanced code given, then the text after
 * them, every line break a space.
 */
static char *
diagnostic_subject(const char *text, int code, bool has, unsigned cls,
    unsigned sub, unsigned det)
{
	struct response r = { .code = code, .has_enhanced = has, .cls = cls,
	    .subject = sub, .detail = det };
	const char *p = text;
	char enh[40];
	size_t n;

	if (p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
	    p[2] >= '0' && p[2] <= '9' && (p[3] == ' ' || p[3] == '-')) {
		r.code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		p += 4;
	}
	/* the enhanced code is in the subject already */
	n = (size_t)snprintf(enh, sizeof(enh), "%u.%u.%u", cls, sub, det);
	if (has && strncmp(p, enh, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
		p += n + (p[n] == ' ');
	r.content = (char *)p;
	return response_single_line(&r);
}

void
classify_bounce(const struct classifier *c, const struct response *resp,
    const struct bounce *b, const char **label, const char **reason,
    bool *hard)
{
	const char *more[2] = { NULL, NULL }, *subject;
	char *owned, *diag = NULL;
	size_t nmore = 0;

	if (b->has_diag_enhanced || (resp->content[0] == '\0' &&
	    b->diagnostic_text != NULL)) {
		const char *text = resp->content[0] != '\0' ? resp->content :
		    b->diagnostic_text;
		if (b->has_diag_enhanced)
			diag = diagnostic_subject(text, resp->code, true,
			    b->dcls, b->dsubject, b->ddetail);
		else
			diag = diagnostic_subject(text, resp->code,
			    resp->has_enhanced, resp->cls, resp->subject,
			    resp->detail);
		more[nmore++] = diag;
	}
	if (b->notice_reply != NULL)
		more[nmore++] = b->notice_reply;
	*label = classifier_classify_evidence(c, resp, more, nmore, &subject,
	    &owned);
	*reason = bounce_reason(*label, subject, hard);
	/*
	 * Nothing labelled the bounce: the first subject, most KumoMTA-like
	 * first, whose wording or code says more than its reply class.
	 */
	if (*label == uncategorized) {
		const char *all[3] = { owned, more[0], more[1] };
		for (size_t i = 0; i < nmore + 1; i++) {
			const char *r = bounce_reason(*label, all[i], hard);
			if (strcmp(r, "undefined") != 0 &&
			    strcmp(r, "onhold") != 0) {
				*reason = r;
				subject = all[i];
				break;
			}
		}
		*reason = bounce_reason(*label, subject, hard);
	}
	/*
	 * An unknown recipient said only in reply to the message (the notice
	 * shows the refusal answered DATA): the recipient had been accepted,
	 * so its filter turned the message away and the address may exist.
	 */
	if (b->refused_after_data && strcmp(*reason, "userunknown") == 0) {
		*reason = "filtered";
		*hard = false;
	}
	free(owned);
	free(diag);
}
