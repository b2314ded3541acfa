/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_report.c - `oobd report`: what the log records say, summed up as
 * pflogsumm and qshape do for Postfix: records by type, bounces by
 * classification, reason, hard or soft, recipient domain, reports by
 * reporting MTA and X-KumoRef campaign, feedback reports by type. It reads
 * zstd and plain segments, the one being written included: a segment that
 * ends mid-frame or mid-line yields the records that are complete.
 *
 * Speed. jansson decodes some 50 MB of JSON a second, 30k whole records
 * (an ARF record carries the reported message); the report needs a few
 * short fields. oobd writes a record's fields in KumoMTA's fixed order, so
 * each field needed is found by its key as written (",\"recipient\":")
 * and only its value goes through jansson (JSON_DECODE_ANY |
 * JSON_DISABLE_EOF_CHECK, which also tells where the value ends). The
 * lookups are exact, not heuristics: a JSON string cannot hold a comma
 * followed by a bare quote (its quotes are escaped), so every match is a
 * key; and each key is looked up only after fields whose keys oobd fixes,
 * or whose values cannot be objects (oobd's header values are strings or
 * arrays, its meta values scalars), as the
 * comments of oob_fields and feedback_fields say. A line not laid out so
 * is decoded whole, so other writers' records count too, only slower.
 * scripts/bench-report measures the rate.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zstd.h>

#include "cli.h"
#include "conf.h"
#include "util.h"

/* The breakdowns, in the order the report prints them. */
enum dim {
	D_TYPE, D_CLASS, D_REASON, D_HARD, D_DOMAIN, D_MTA, D_FEEDBACK,
	D_CAMPAIGN, D_N,
};

static const struct {
	const char *name;	/* --by FIELD, and the JSON key */
	const char *title;
} dims[D_N] = {
	[D_TYPE] = { "type", "Records by type" },
	[D_CLASS] = { "classification", "Bounces (OOB) by classification" },
	[D_REASON] = { "reason", "Bounces (OOB) by reason" },
	[D_HARD] = { "hard", "Bounces (OOB): hard or soft" },
	[D_DOMAIN] = { "domain", "Bounces (OOB) by recipient domain" },
	[D_MTA] = { "mta", "Reports (OOB, Feedback) by reporting MTA" },
	[D_FEEDBACK] = { "feedback_type", "Feedback reports by type" },
	[D_CAMPAIGN] = { "campaign",
	    "Reports (OOB, Feedback) by X-KumoRef campaign" },
};

struct report {
	bool	 has_since, has_until;
	time_t	 since, until;		/* [since, until) on "timestamp" */
	json_t	*count[D_N];		/* name -> integer */
	unsigned long long records;	/* counted (in the time range) */
	unsigned long long skipped;	/* lines that are not records */
	unsigned long long files;
	long long first, last;		/* timestamps of counted records */
	bool	 failed;		/* an input could not be read whole */
};

/* ------------------------------------------------------------ counting */

static void
bump(struct report *r, enum dim d, const char *name)
{
	json_t *v = json_object_get(r->count[d], name);

	if (v != NULL)
		json_integer_set(v, json_integer_value(v) + 1);
	else
		json_object_set_new(r->count[d], name, json_integer(1));
}

/* The lowercased domain of an address; "(none)" without an @. */
static void
bump_domain(struct report *r, const char *addr)
{
	const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
	char *d;

	if (at == NULL || at[1] == '\0') {
		bump(r, D_DOMAIN, "(none)");
		return;
	}
	d = str_lower(xstrdup(at + 1));
	bump(r, D_DOMAIN, d);
	free(d);
}

static const char *
str_or(json_t *v, const char *dflt)
{
	return json_is_string(v) && json_string_length(v) > 0 ?
	    json_string_value(v) : dflt;
}

/* The campaign of a decoded X-KumoRef trace, or "(none)". */
static const char *
campaign(json_t *trace)
{
	return str_or(json_object_get(trace, "campaign"), "(none)");
}

/*
 * The fields the report uses, as decoded values (borrowed from the
 * record, or owned by the fast path; NULL when absent).
 */
struct fields {
	const char *type;
	json_t	*timestamp, *recipient, *peer_address, *classification;
	json_t	*feedback_report, *oob_detail;
};

static void
count_fields(struct report *r, const struct fields *f)
{
	json_int_t ts = json_is_integer(f->timestamp) ?
	    json_integer_value(f->timestamp) : 0;

	if ((r->has_since && ts < r->since) || (r->has_until && ts >= r->until))
		return;
	r->records++;
	if (r->records == 1 || ts < r->first)
		r->first = ts;
	if (r->records == 1 || ts > r->last)
		r->last = ts;
	bump(r, D_TYPE, f->type);
	if (strcmp(f->type, "OOB") == 0) {
		json_t *rcpt = f->recipient;
		if (json_is_array(rcpt))
			rcpt = json_array_get(rcpt, 0);
		bump(r, D_CLASS, str_or(f->classification, "Uncategorized"));
		bump_domain(r, json_string_value(rcpt));
		bump(r, D_MTA, str_or(json_object_get(f->peer_address, "name"),
		    "(unknown)"));
		json_t *reason = json_object_get(f->oob_detail, "reason");
		json_t *hard = json_object_get(f->oob_detail, "hard_bounce");
		if (json_is_string(reason))
			bump(r, D_REASON, json_string_value(reason));
		bump(r, D_HARD, json_is_true(hard) ? "hard" :
		    json_is_false(hard) ? "soft" : "(unknown)");
		bump(r, D_CAMPAIGN, campaign(json_object_get(f->oob_detail,
		    "trace")));
	} else if (strcmp(f->type, "Feedback") == 0) {
		json_t *fr = f->feedback_report;
		bump(r, D_FEEDBACK, str_or(json_object_get(fr, "feedback_type"),
		    "(unknown)"));
		bump(r, D_MTA, str_or(json_object_get(json_object_get(fr,
		    "reporting_mta"), "name"), "(unknown)"));
		bump(r, D_CAMPAIGN, campaign(json_object_get(fr,
		    "supplemental_trace")));
	}
}

/* ------------------------------------------------------------- parsing */

/* The line whole, with jansson: for records not laid out as oobd's. */
static void
count_slow(struct report *r, const char *line, size_t len)
{
	json_t *o = json_loadb(line, len, 0, NULL);
	json_t *type = json_object_get(o, "type");

	if (!json_is_string(type)) {
		r->skipped++;
		json_decref(o);
		return;
	}
	struct fields f = {
		.type = json_string_value(type),
		.timestamp = json_object_get(o, "timestamp"),
		.recipient = json_object_get(o, "recipient"),
		.peer_address = json_object_get(o, "peer_address"),
		.classification = json_object_get(o, "bounce_classification"),
		.feedback_report = json_object_get(o, "feedback_report"),
		.oob_detail = json_object_get(o, "oob_detail"),
	};
	count_fields(r, &f);
	json_decref(o);
}

/* The value at line[off], decoded, and in *end the offset past it. */
static json_t *
decode_at(const char *line, size_t len, size_t off, size_t *end)
{
	json_error_t e;
	json_t *v;

	if (off >= len)
		return NULL;
	v = json_loadb(line + off, len - off, JSON_DECODE_ANY |
	    JSON_DISABLE_EOF_CHECK, &e);
	if (v != NULL)
		*end = off + (size_t)e.position;
	return v;
}

/*
 * The offset of the value of the first `,"key":` in line[*pos, len) whose
 * value starts with one of the bytes of starts (NULL: any), or 0.
 */
static size_t
key_at(const char *line, size_t len, size_t pos, const char *key,
    const char *starts)
{
	char pat[48];
	size_t n = (size_t)snprintf(pat, sizeof(pat), ",\"%s\":", key);
	const char *p;

	while (pos < len && (p = memmem(line + pos, len - pos, pat, n)) != NULL) {
		size_t off = (size_t)(p - line) + n;
		if (off < len && (starts == NULL || strchr(starts, line[off])))
			return off;
		pos = off;
	}
	return 0;
}

/* The value of the first `,"key":` from *pos on; *pos moves past it. */
static json_t *
value_at(const char *line, size_t len, size_t *pos, const char *key)
{
	size_t off = key_at(line, len, *pos, key, NULL), end;
	json_t *v;

	if (off == 0 || (v = decode_at(line, len, off, &end)) == NULL)
		return NULL;
	*pos = end;
	return v;
}

/* Whether line[off] starts with the text lit. */
static bool
at(const char *line, size_t len, size_t off, const char *lit)
{
	size_t n = strlen(lit);

	return off + n <= len && memcmp(line + off, lit, n) == 0;
}

/*
 * The value of oob_detail's own `,"key":`: its first match after the
 * object's start d, skipping the span [t0, t1) of the trace (the one value
 * in it that the sender shapes); the other values of oob_detail have
 * fixed keys. 0 when it has no such key.
 */
static size_t
detail_key(const char *line, size_t len, size_t d, size_t t0, size_t t1,
    const char *key)
{
	size_t off = key_at(line, len, d, key, NULL);

	if (off != 0 && t0 != 0 && off >= t0 && off < t1)
		off = key_at(line, len, t1, key, NULL);
	return off;
}

/*
 * OOB: the reporting MTA (peer_address.name) and, from oob_detail, the
 * trace, reason and hard_bounce, each decoded alone. oob_detail is the
 * first `,"oob_detail":{`: before it only header values (strings and
 * arrays) and meta values (scalars) are unfixed. Inside it, only the
 * trace is shaped by the sender, and no other value of oob_detail has a
 * "trace" key, so its first `,"trace":` is its own; reason and
 * hard_bounce are looked up around the trace's span, in whatever order
 * the keys come. Returns false when the record is not laid out so.
 */
static bool
oob_fields(const char *line, size_t len, size_t pos, json_t **mta,
    json_t **trace, json_t **reason, json_t **hard)
{
	size_t off, end, d, t0, t1 = 0;

	off = key_at(line, len, pos, "peer_address", NULL);
	if (off == 0)
		return false;
	if (at(line, len, off, "{\"name\":")) {
		if ((*mta = decode_at(line, len, off + 8, &end)) == NULL)
			return false;
	} else if (!at(line, len, off, "null,"))
		return false;
	d = key_at(line, len, off, "oob_detail", "{n");
	if (d == 0 || at(line, len, d, "null"))
		return true;		/* no oob_detail: kumo_strict */
	t0 = key_at(line, len, d, "trace", NULL);
	if (t0 != 0 && (*trace = decode_at(line, len, t0, &t1)) == NULL)
		return false;
	off = detail_key(line, len, d, t0, t1, "reason");
	if (off != 0 && (*reason = decode_at(line, len, off, &end)) == NULL)
		return false;
	off = detail_key(line, len, d, t0, t1, "hard_bounce");
	if (off != 0 && (*hard = decode_at(line, len, off, &end)) == NULL)
		return false;
	return true;
}

/*
 * Feedback: feedback_type is the first key of feedback_report, and
 * reporting_mta follows scalar fields only. supplemental_trace is an
 * object or null; the extensions before it have array values, so its
 * first match that is not an array is its own.
 */
static bool
feedback_fields(const char *line, size_t len, size_t pos, json_t **type,
    json_t **mta, json_t **trace)
{
	size_t off = key_at(line, len, pos, "feedback_report", NULL), end;

	if (off == 0 || !at(line, len, off, "{\"feedback_type\":") ||
	    (*type = decode_at(line, len, off + 17, &end)) == NULL)
		return false;
	off = key_at(line, len, end, "reporting_mta", NULL);
	if (off == 0 || (*mta = decode_at(line, len, off, &end)) == NULL)
		return false;
	off = key_at(line, len, end, "supplemental_trace", "{n");
	if (off == 0 || (*trace = decode_at(line, len, off, &end)) == NULL)
		return false;
	return true;
}

static void
count_line(struct report *r, const char *line, size_t len)
{
	static const char head[] = "{\"type\":\"";
	const size_t hl = sizeof(head) - 1;
	struct fields f = { 0 };
	json_t *mta = NULL, *trace = NULL, *reason = NULL, *hard = NULL;
	json_t *ftype = NULL, *detail = NULL, *report = NULL;
	char type[32];
	size_t pos, tl;
	const char *q;
	bool fast = true;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return;
	/* A record type is a plain word: no escapes in it. */
	if (len < hl + 2 || line[len - 1] != '}' ||
	    memcmp(line, head, hl) != 0 ||
	    (q = memchr(line + hl, '"', len - hl)) == NULL ||
	    (tl = (size_t)(q - line) - hl) >= sizeof(type) ||
	    memchr(line + hl, '\\', tl) != NULL) {
		count_slow(r, line, len);
		return;
	}
	memcpy(type, line + hl, tl);
	type[tl] = '\0';
	f.type = type;
	pos = hl + tl;
	if (strcmp(type, "OOB") == 0) {
		f.recipient = value_at(line, len, &pos, "recipient");
		fast = f.recipient != NULL && oob_fields(line, len, pos, &mta,
		    &trace, &reason, &hard);
		if (fast) {
			/* The shape count_fields reads, from the parts. */
			f.peer_address = json_object();
			if (mta != NULL)
				json_object_set(f.peer_address, "name", mta);
			detail = json_object();
			if (trace != NULL)
				json_object_set(detail, "trace", trace);
			if (reason != NULL)
				json_object_set(detail, "reason", reason);
			if (hard != NULL)
				json_object_set(detail, "hard_bounce", hard);
			f.oob_detail = detail;
		}
	} else if (strcmp(type, "Feedback") == 0) {
		fast = feedback_fields(line, len, pos, &ftype, &mta, &trace);
		if (fast) {
			report = json_pack("{s:O,s:O,s:O}", "feedback_type",
			    ftype, "reporting_mta", mta, "supplemental_trace",
			    trace);
			f.feedback_report = report;
		}
	}
	if (fast) {
		f.timestamp = value_at(line, len, &pos, "timestamp");
		if (strcmp(type, "OOB") == 0)
			f.classification = value_at(line, len, &pos,
			    "bounce_classification");
		fast = f.timestamp != NULL && (strcmp(type, "OOB") != 0 ||
		    f.classification != NULL);
	}
	if (fast)
		count_fields(r, &f);
	else
		count_slow(r, line, len);
	json_decref(f.timestamp);
	json_decref(f.recipient);
	json_decref(f.peer_address);
	json_decref(f.classification);
	json_decref(report);
	json_decref(detail);
	json_decref(mta);
	json_decref(trace);
	json_decref(reason);
	json_decref(hard);
	json_decref(ftype);
}

/* ------------------------------------------------------------- reading */

/* Complete lines of b go to count_line; the incomplete tail stays. */
static void
take_lines(struct report *r, struct buf *b)
{
	size_t start = 0;
	const char *nl;

	while ((nl = memchr(b->data + start, '\n', b->len - start)) != NULL) {
		count_line(r, b->data + start, (size_t)(nl - b->data) - start);
		start = (size_t)(nl - b->data) + 1;
	}
	memmove(b->data, b->data + start, b->len - start);
	b->len -= start;
}

static void
read_error(struct report *r, const char *path, const char *what)
{
	fprintf(stderr, "oobd report: %s: %s\n", path, what);
	r->failed = true;
}

/*
 * One segment, zstd (by its magic number) or plain. A zstd segment that
 * ends inside a frame (being written, or cut by a crash) and a last line
 * without its newline are not errors: what is complete is counted.
 */
static void
read_segment(struct report *r, const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t insz = ZSTD_DStreamInSize(), outsz = ZSTD_DStreamOutSize();
	char *in, *out;
	struct buf b = { 0 };
	ZSTD_DCtx *dc = NULL;
	size_t n;
	bool zstd = false, first = true;

	if (f == NULL) {
		read_error(r, path, strerror(errno));
		return;
	}
	r->files++;
	in = xmalloc(insz);
	out = xmalloc(outsz);
	while ((n = fread(in, 1, insz, f)) > 0) {
		if (first) {
			static const unsigned char magic[4] = {
				0x28, 0xb5, 0x2f, 0xfd
			};
			zstd = n >= 4 && memcmp(in, magic, 4) == 0;
			if (zstd && (dc = ZSTD_createDCtx()) == NULL)
				fatalx("ZSTD_createDCtx failed");
			first = false;
		}
		if (!zstd) {
			buf_append(&b, in, n);
			take_lines(r, &b);
			continue;
		}
		ZSTD_inBuffer zin = { in, n, 0 };
		while (zin.pos < zin.size) {
			ZSTD_outBuffer zout = { out, outsz, 0 };
			size_t rc = ZSTD_decompressStream(dc, &zout, &zin);
			if (ZSTD_isError(rc)) {
				char *why = xasprintf("corrupt zstd data after "
				    "%llu records: %s", r->records,
				    ZSTD_getErrorName(rc));
				read_error(r, path, why);
				free(why);
				goto out;
			}
			buf_append(&b, out, zout.pos);
			take_lines(r, &b);
		}
	}
	/* Frames decoded but not yet returned (the output was full). */
	while (zstd && dc != NULL) {
		ZSTD_inBuffer zin = { in, 0, 0 };
		ZSTD_outBuffer zout = { out, outsz, 0 };
		size_t rc = ZSTD_decompressStream(dc, &zout, &zin);
		buf_append(&b, out, zout.pos);
		take_lines(r, &b);
		if (ZSTD_isError(rc) || zout.pos == 0)
			break;
	}
	if (ferror(f))
		read_error(r, path, strerror(errno));
out:
	ZSTD_freeDCtx(dc);
	fclose(f);
	buf_free(&b);
	free(in);
	free(out);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or every file of a directory (dot files aside) in name order. */
static void
read_input(struct report *r, const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (stat(path, &st) != 0) {
		read_error(r, path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		read_segment(r, path);
		return;
	}
	if ((d = opendir(path)) == NULL) {
		read_error(r, path, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *p = xasprintf("%s/%s", path, de->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = p;
		} else
			free(p);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		read_segment(r, names[i]);
		free(names[i]);
	}
	free(names);
}

/* ------------------------------------------------------------- output */

struct row {
	const char *name;
	json_int_t n;
};

static int
row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The rows of a breakdown, most frequent first. */
static struct row *
rows(json_t *o, size_t *np)
{
	struct row *v = xcalloc(json_object_size(o) + 1, sizeof(*v));
	const char *k;
	json_t *c;
	size_t n = 0;

	json_object_foreach(o, k, c) {
		v[n].name = k;
		v[n++].n = json_integer_value(c);
	}
	qsort(v, n, sizeof(*v), row_cmp);
	*np = n;
	return v;
}

static void
time_text(char *out, size_t n, long long t)
{
	format_rfc3339(out, n, (time_t)t, 0);
}

static void
print_json(const struct report *r, const bool *want)
{
	json_t *o = json_object(), *by = json_object();
	char a[48], b[48];

	json_object_set_new(o, "records", json_integer((json_int_t)r->records));
	json_object_set_new(o, "files", json_integer((json_int_t)r->files));
	json_object_set_new(o, "skipped_lines",
	    json_integer((json_int_t)r->skipped));
	time_text(a, sizeof(a), r->first);
	time_text(b, sizeof(b), r->last);
	json_object_set_new(o, "first", r->records ? json_string(a) :
	    json_null());
	json_object_set_new(o, "last", r->records ? json_string(b) :
	    json_null());
	for (int d = 0; d < D_N; d++) {
		if (!want[d])
			continue;
		size_t n;
		struct row *v = rows(r->count[d], &n);
		json_t *x = json_object();
		for (size_t i = 0; i < n; i++)
			json_object_set_new(x, v[i].name, json_integer(v[i].n));
		json_object_set_new(by, dims[d].name, x);
		free(v);
	}
	json_object_set_new(o, "by", by);
	char *text = json_dumps(o, JSON_COMPACT);
	puts(text);
	free(text);
	json_decref(o);
}

static void
print_table(const struct report *r, const bool *want, size_t top)
{
	char a[48], b[48];

	printf("%llu records in %llu files", r->records, r->files);
	if (r->records > 0) {
		time_text(a, sizeof(a), r->first);
		time_text(b, sizeof(b), r->last);
		printf(", %s to %s", a, b);
	}
	putchar('\n');
	if (r->skipped > 0)
		printf("%llu lines skipped: not records\n", r->skipped);
	for (int d = 0; d < D_N; d++) {
		if (!want[d])
			continue;
		size_t n;
		struct row *v = rows(r->count[d], &n);
		json_int_t total = 0;
		for (size_t i = 0; i < n; i++)
			total += v[i].n;
		printf("\n%s\n", dims[d].title);
		if (n == 0)
			printf("  (none)\n");
		for (size_t i = 0; i < n && (top == 0 || i < top); i++)
			printf("  %10lld %5.1f%%  %s\n", (long long)v[i].n,
			    100.0 * (double)v[i].n / (double)total, v[i].name);
		if (top > 0 && n > top) {
			json_int_t rest = 0;
			for (size_t i = top; i < n; i++)
				rest += v[i].n;
			printf("  %10lld %5.1f%%  (%zu more)\n", (long long)rest,
			    100.0 * (double)rest / (double)total, n - top);
		}
		free(v);
	}
}

/* ------------------------------------------------------------- options */

/*
 * A time for --since/--until: seconds since the epoch ("@1700000000"), a
 * UTC date or date and time ("2026-12-01", "2026-12-01T08:00:00Z",
 * "2026-12-01 08:00"), or a duration before now ("24 hours", "7d").
 */
static int
parse_time(const char *s, time_t now, time_t *out)
{
	static const char *const formats[] = {
		"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
		"%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
		"%Y-%m-%d",
	};
	double ago;
	char *end;

	if (s[0] == '@') {
		errno = 0;
		long long v = strtoll(s + 1, &end, 10);
		if (errno != 0 || end == s + 1 || *end != '\0')
			return -1;
		*out = (time_t)v;
		return 0;
	}
	for (size_t i = 0; i < nitems(formats); i++) {
		struct tm tm = { 0 };
		end = strptime(s, formats[i], &tm);
		if (end != NULL && *end == '\0') {
			*out = timegm(&tm);
			return 0;
		}
	}
	if (parse_duration(s, &ago) == 0) {
		*out = now - (time_t)ago;
		return 0;
	}
	return -1;
}

static void
usage(FILE *f)
{
	fputs("usage: oobd report [--since TIME] [--until TIME] [--by FIELD]... "
	    "[--top N]\n"
	    "                   [--json] [-c FILE] [LOGDIR|FILE...]\n"
	    "Summarise the log records (zstd or plain segments; default: the "
	    "log_dir of\nthe configuration).\n"
	    "  --since TIME, --until TIME  records with since <= timestamp < "
	    "until; TIME is\n"
	    "                   2026-12-01, 2026-12-01T08:00:00Z, @EPOCH, or a "
	    "duration ago (24h)\n"
	    "  --by FIELD       only this breakdown, every row: type, "
	    "classification, reason,\n"
	    "                   hard, domain, mta, feedback_type, campaign\n"
	    "  --top N          rows per breakdown in the table (default 10, "
	    "0: all)\n"
	    "  --json           one JSON object, every row\n"
	    "  -c, --config FILE  find log_dir there (default "
	    CLI_DEFAULT_CONFIG ")\n", f);
}

int
cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "by", required_argument, NULL, 'b' },
		{ "top", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct report r = { 0 };
	const char *path = CLI_DEFAULT_CONFIG;
	bool want[D_N] = { false }, json = false, any_by = false;
	time_t now = time(NULL);
	size_t top = 10;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
		case 'u':
			if (parse_time(optarg, now, ch == 's' ? &r.since :
			    &r.until) != 0) {
				fprintf(stderr, "oobd report: --%s %s: not a "
				    "time\n", ch == 's' ? "since" : "until",
				    optarg);
				return EXIT_USAGE;
			}
			*(ch == 's' ? &r.has_since : &r.has_until) = true;
			break;
		case 'b': {
			int d;
			for (d = 0; d < D_N; d++)
				if (strcmp(optarg, dims[d].name) == 0)
					break;
			if (d == D_N) {
				fprintf(stderr, "oobd report: --by %s: not one "
				    "of the fields\n", optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			want[d] = any_by = true;
			break;
		}
		case 'n': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    optarg[0] == '-') {
				fprintf(stderr, "oobd report: --top %s: not a "
				    "count\n", optarg);
				return EXIT_USAGE;
			}
			top = v;
			break;
		}
		case 'j':
			json = true;
			break;
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			cli_version(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (any_by)
		top = 0;
	else
		for (int d = 0; d < D_N; d++)
			want[d] = true;
	for (int d = 0; d < D_N; d++)
		r.count[d] = json_object();
	if (optind < argc) {
		for (int i = optind; i < argc; i++)
			read_input(&r, argv[i]);
	} else {
		struct errors errs = { 0 };
		struct config *c = config_load(path, &errs);
		if (c == NULL) {
			for (size_t i = 0; i < errs.n; i++)
				fprintf(stderr, "oobd: %s\n", errs.v[i]);
			errors_free(&errs);
			for (int d = 0; d < D_N; d++)
				json_decref(r.count[d]);
			return EXIT_ERROR;
		}
		read_input(&r, c->log_dir);
		config_free(c);
	}
	if (json)
		print_json(&r, want);
	else
		print_table(&r, want, top);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("oobd report: standard output");
		r.failed = true;
	}
	for (int d = 0; d < D_N; d++)
		json_decref(r.count[d]);
	return r.failed ? EXIT_ERROR : EXIT_OK;
}
