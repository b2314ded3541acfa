/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arf.c - feedback reports: RFC 5965 ARF (with RFC 6591 auth-failure and
 * Yahoo's version 0.1), the legacy Microsoft JMRP complaint, and Apple
 * Mail's one-click unsubscribe notice.
 *
 * The output is KumoMTA's feedback_report object (reference §3.2), key for
 * key and type for type. oobd accepts more than KumoMTA does on input
 * (SPEC §6): where KumoMTA rejects a whole report for a defect that does
 * not hide its meaning, oobd keeps the report; each such place says so.
 *
 * The parts are taken from the raw text (message_children), not from
 * GMime's tree: KumoMTA logs the returned message byte for byte, and
 * types, transfer encodings and bodies must all come from the same spans.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "arf.h"
#include "datetime.h"
#include "fields.h"
#include "kumoref.h"
#include "message.h"
#include "record.h"
#include "report.h"
#include "util.h"

/* A direct child of the top-level multipart. */
struct part {
	struct raw_entity e;
	char	*type;			/* "type/subtype", lowercased */
	GMimeContentEncoding cte;
};

/* "type/subtype" of a Content-Type value, lowercased; NULL if unusable. */
static char *
media_type(const char *value)
{
	GMimeContentType *ct;
	char *out = NULL;

	if (value == NULL)
		return NULL;
	ct = g_mime_content_type_parse(NULL, value);
	if (ct == NULL)
		return NULL;
	const char *t = g_mime_content_type_get_media_type(ct);
	const char *s = g_mime_content_type_get_media_subtype(ct);
	if (t != NULL && s != NULL)
		out = str_lower(xasprintf("%s/%s", t, s));
	g_object_unref(ct);
	return out;
}

static void
part_load(struct part *p, const struct raw_entity *e)
{
	struct fieldblock fb;
	const struct field *f;

	memset(p, 0, sizeof(*p));
	p->e = *e;
	p->cte = GMIME_CONTENT_ENCODING_DEFAULT;
	if (e->headers_len > 0 && fields_parse(e->headers, e->headers_len,
	    &fb) == 0) {
		if ((f = fields_get(&fb, "content-type")) != NULL)
			p->type = media_type(f->value);
		if ((f = fields_get(&fb, "content-transfer-encoding")) != NULL &&
		    f->value != NULL)
			p->cte = g_mime_content_encoding_from_string(f->value);
		fields_free(&fb);
	}
	/* RFC 2045: a part without a (usable) Content-Type is text/plain. */
	if (p->type == NULL)
		p->type = xstrdup("text/plain");
}

static bool
part_is(const struct part *p, const char *type)
{
	return strcmp(p->type, type) == 0;
}

/*
 * A returned message: message/rfc822, text/rfc822-headers, and the
 * singular "text/rfc822-header" that some reporters write.
 */
static bool
part_is_returned(const struct part *p)
{
	return part_is(p, "message/rfc822") ||
	    part_is(p, "text/rfc822-headers") ||
	    part_is(p, "text/rfc822-header");
}

/*
 * The body of p with its transfer encoding removed, in a new buffer;
 * NULL when it has none that changes the bytes (7bit, 8bit, binary).
 */
static char *
part_decoded(const struct part *p, size_t *lenp)
{
	GMimeEncoding enc;
	char *out;

	switch (p->cte) {
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
	case GMIME_CONTENT_ENCODING_UUENCODE:
		break;
	default:
		return NULL;
	}
	g_mime_encoding_init_decode(&enc, p->cte);
	out = xmalloc(g_mime_encoding_outlen(&enc, p->e.body_len) + 1);
	*lenp = g_mime_encoding_flush(&enc, p->e.body, p->e.body_len, out);
	out[*lenp] = '\0';
	return out;
}

/* The trace in a returned message's header block, or NULL. */
static json_t *
returned_trace(const struct part *p)
{
	struct raw_entity inner;
	char *dec;
	size_t len;
	json_t *t;

	/*
	 * KumoMTA scans the raw body. A returned message that was itself
	 * transfer-encoded (against RFC 6522, but seen) hides its headers;
	 * oobd looks through the encoding for the trace.
	 */
	dec = part_decoded(p, &len);
	if (dec != NULL) {
		raw_entity_split(dec, len, &inner);
		t = kumoref_scan_headers(inner.headers, inner.headers_len);
		free(dec);
		if (t != NULL)
			return t;
	}
	raw_entity_split(p->e.body, p->e.body_len, &inner);
	return kumoref_scan_headers(inner.headers, inner.headers_len);
}

/* Which fields of the feedback-report block have been given a key. */
struct fbl {
	const struct fieldblock *fb;
	bool	*used;
};

/*
 * The first field called name, all of them marked used. KumoMTA rejects
 * a report that repeats a single-valued field; oobd takes the first.
 */
static const struct field *
take_single(struct fbl *s, const char *name)
{
	const struct field *first = NULL;

	for (size_t i = 0; i < s->fb->n; i++) {
		if (strcmp(s->fb->v[i].name, name) != 0)
			continue;
		if (first == NULL)
			first = &s->fb->v[i];
		s->used[i] = true;
	}
	return first;
}

/* Put a field that could not be interpreted back among the extensions. */
static void
give_back(struct fbl *s, const struct field *f)
{
	s->used[f - s->fb->v] = false;
}

static json_t *
field_string(const struct field *f)
{
	return json_string_lossy(f->value != NULL ? f->value : "");
}

static json_t *
opt_field_string(const struct field *f)
{
	return f != NULL ? field_string(f) : json_null();
}

/*
 * An envelope address as KumoMTA's EnvelopeAddress displays it: without
 * angle brackets or source route, "<>" as "". Where KumoMTA rejects a
 * malformed address (and with it the report) oobd keeps what is there:
 * the text inside the brackets, or the whole trimmed value.
 */
static char *
envelope_address(const char *v)
{
	const char *lt = strchr(v, '<'), *p, *end;

	if (lt != NULL) {
		p = lt + 1;
		end = strchr(p, '>');
		if (end == NULL)
			end = p + strlen(p);
	} else {
		p = v;
		end = v + strlen(v);
	}
	char *a = str_trim_dup(p, (size_t)(end - p));
	/* "<@relay1,@relay2:user@domain>" (RFC 5321 source route). */
	if (a[0] == '@') {
		char *colon = strchr(a, ':');
		if (colon != NULL) {
			char *rest = str_trim_dup(colon + 1, strlen(colon + 1));
			free(a);
			a = rest;
		}
	}
	return a;
}

static json_t *
address_string(const struct field *f)
{
	char *a = envelope_address(f->value != NULL ? f->value : "");
	json_t *v = json_string_lossy(a);

	free(a);
	return v;
}

/* Every field called name, in order, as strings (addresses if addr). */
static json_t *
take_multiple(struct fbl *s, const char *name, bool addr)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->fb->n; i++) {
		const struct field *f = &s->fb->v[i];
		if (strcmp(f->name, name) != 0)
			continue;
		s->used[i] = true;
		json_array_append_new(a, addr ? address_string(f) :
		    field_string(f));
	}
	return a;
}

/*
 * Arrival-Date, or Received-Date only when Arrival-Date is absent, in
 * RFC 3339 UTC. An invalid date is null, and so is a weekday that does
 * not match the date: KumoMTA's value, which oobd's output keeps.
 */
static json_t *
take_arrival_date(struct fbl *s)
{
	const struct field *f = take_single(s, "arrival-date");
	time_t t;
	bool weekday_ok = true;
	char text[40];

	if (f == NULL)
		f = take_single(s, "received-date");
	if (f == NULL || f->value == NULL ||
	    rfc2822_date(f->value, &t, &weekday_ok) != 0 || !weekday_ok)
		return json_null();
	format_rfc3339(text, sizeof(text), t, 0);
	return json_string(text);
}

/*
 * Incidents as Rust's u32::from_str reads it: an optional '+', then
 * digits, at most 4294967295. KumoMTA rejects the report otherwise; oobd
 * writes null and keeps the field among the extensions.
 */
static json_t *
take_incidents(struct fbl *s)
{
	const struct field *f = take_single(s, "incidents");
	const char *p;
	unsigned long long n = 0;

	if (f == NULL)
		return json_null();
	p = f->value != NULL ? f->value : "";
	if (*p == '+')
		p++;
	if (*p == '\0')
		goto bad;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		n = n * 10 + (unsigned)(*p - '0');
		if (n > 4294967295ULL)
			goto bad;
	}
	return json_integer((json_int_t)n);
bad:
	give_back(s, f);
	return json_null();
}

/*
 * "type; name". KumoMTA rejects the report when the ';' is missing;
 * oobd writes null and keeps the field among the extensions.
 */
static json_t *
take_reporting_mta(struct fbl *s)
{
	const struct field *f = take_single(s, "reporting-mta");
	char *type, *name;
	json_t *o;

	if (f == NULL)
		return json_null();
	if (f->value == NULL || !split_typed(f->value, &type, &name)) {
		give_back(s, f);
		return json_null();
	}
	o = json_object();
	json_object_set_new(o, "mta_type", json_string_lossy(type));
	json_object_set_new(o, "name", json_string_lossy(name));
	free(type);
	free(name);
	return o;
}

/*
 * An extension value: the unstructured text when the field was UTF-8,
 * otherwise the raw bytes with folding whitespace collapsed, written as
 * KumoMTA writes non-UTF-8 byte strings (an array of byte values).
 */
static json_t *
extension_value(const struct field *f)
{
	struct buf b = { 0 };
	bool space = false;
	json_t *v;

	if (f->utf8 || f->raw == NULL)
		return field_string(f);
	for (const char *p = f->raw; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			space = b.len > 0;
			continue;
		}
		if (space)
			buf_putc(&b, ' ');
		space = false;
		buf_putc(&b, *p);
	}
	v = json_bytes_or_string(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	return v;
}

/* s as valid UTF-8 (jansson refuses other keys). Caller frees. */
static char *
lossy_dup(const char *s)
{
	size_t n = strlen(s);

	return utf8_valid(s, n) ? xstrdup(s) : utf8_lossy(s, n);
}

struct ext {
	char	*key;
	size_t	 idx;
};

static int
ext_cmp(const void *a, const void *b)
{
	const struct ext *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The fields nobody took: {lowercased name: [values]}, keys sorted. */
static json_t *
extensions(struct fbl *s)
{
	struct ext *v = xcalloc(s->fb->n + 1, sizeof(*v));
	size_t n = 0;
	json_t *o = json_object(), *cur = NULL;

	for (size_t i = 0; i < s->fb->n; i++) {
		if (s->used[i])
			continue;
		v[n].key = lossy_dup(s->fb->v[i].name);
		v[n].idx = i;
		n++;
	}
	/* Sorting by (key, position) keeps values in header order. */
	qsort(v, n, sizeof(*v), ext_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(v[i].key, v[i - 1].key) != 0) {
			cur = json_array();
			json_object_set_new(o, v[i].key, cur);
		}
		json_array_append_new(cur, extension_value(&s->fb->v[v[i].idx]));
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
	return o;
}

/* The returned message as KumoMTA logs it: raw body, string or bytes. */
static json_t *
original_message(const struct part *ret)
{
	if (ret == NULL)
		return json_null();
	return json_bytes_or_string(ret->e.body, ret->e.body_len);
}

/*
 * Fill in the §3.2 object from a parsed feedback-report block. ret is the
 * returned-message part (may be NULL), trace its decoded X-KumoRef
 * (reference taken over, may be NULL). Returns 1, or -1 when the block
 * has no Feedback-Type.
 *
 * KumoMTA also requires User-Agent and Version. Reporters that leave them
 * out still say what happened, so oobd requires only Feedback-Type and
 * writes "" for a missing user_agent or version, keeping both strings.
 */
static int
build_report(const struct fieldblock *fb, const struct part *ret,
    json_t *trace, struct report *r)
{
	struct fbl s = { fb, xcalloc(fb->n + 1, sizeof(bool)) };
	const struct field *ft, *ua, *ver;
	json_t *o;

	ft = take_single(&s, "feedback-type");
	if (ft == NULL) {
		free(s.used);
		if (trace != NULL)
			json_decref(trace);
		return -1;
	}
	ua = take_single(&s, "user-agent");
	ver = take_single(&s, "version");

	o = json_object();
	json_object_set_new(o, "feedback_type", field_string(ft));
	json_object_set_new(o, "user_agent",
	    ua != NULL ? field_string(ua) : json_string(""));
	json_object_set_new(o, "version",
	    ver != NULL ? field_string(ver) : json_string(""));
	json_object_set_new(o, "arrival_date", take_arrival_date(&s));
	json_object_set_new(o, "incidents", take_incidents(&s));
	json_object_set_new(o, "original_envelope_id",
	    opt_field_string(take_single(&s, "original-envelope-id")));
	const struct field *mf = take_single(&s, "original-mail-from");
	json_object_set_new(o, "original_mail_from",
	    mf != NULL ? address_string(mf) : json_null());
	json_object_set_new(o, "reporting_mta", take_reporting_mta(&s));
	json_object_set_new(o, "source_ip",
	    opt_field_string(take_single(&s, "source-ip")));
	json_object_set_new(o, "authentication_results",
	    take_multiple(&s, "authentication-results", false));
	json_object_set_new(o, "original_rcpto_to",
	    take_multiple(&s, "original-rcpt-to", true));
	json_object_set_new(o, "reported_domain",
	    take_multiple(&s, "reported-domain", false));
	json_object_set_new(o, "reported_uri",
	    take_multiple(&s, "reported-uri", false));
	json_object_set_new(o, "extensions", extensions(&s));
	json_object_set_new(o, "original_message", original_message(ret));
	json_object_set_new(o, "supplemental_trace",
	    trace != NULL ? json_incref(trace) : json_null());
	free(s.used);

	r->kind = REPORT_FEEDBACK;
	r->feedback_report = o;
	r->trace = trace;
	return 1;
}

/*
 * The returned message (the last returned part, as KumoMTA) and its
 * trace (the last one that decodes). Returns the part or NULL.
 */
static const struct part *
find_returned(const struct part *parts, size_t n, json_t **trace)
{
	const struct part *ret = NULL;

	*trace = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!part_is_returned(&parts[i]))
			continue;
		ret = &parts[i];
		json_t *t = returned_trace(ret);
		if (t != NULL) {
			if (*trace != NULL)
				json_decref(*trace);
			*trace = t;
		}
	}
	return ret;
}

/* Parse a feedback-report part's field block; 0 or -1. */
static int
parse_feedback_part(const struct part *p, struct fieldblock *fb)
{
	char *dec;
	size_t len;
	const char *body;
	int rc;

	/*
	 * KumoMTA parses the raw body, so a base64 or quoted-printable part
	 * fails there; oobd removes the transfer encoding first.
	 */
	dec = part_decoded(p, &len);
	body = dec != NULL ? dec : p->e.body;
	if (dec == NULL)
		len = p->e.body_len;
	/* A blank line before the fields is a harmless defect. */
	while (len > 0 && (*body == '\n' || *body == '\r' || *body == ' ' ||
	    *body == '\t')) {
		body++;
		len--;
	}
	rc = fields_parse(body, len, fb);
	free(dec);
	return rc;
}

static int
decode_arf(const struct part *parts, size_t n, struct report *r)
{
	const struct part *fbp = NULL, *ret;
	struct fieldblock fb;
	json_t *trace;
	int rc;

	for (size_t i = 0; i < n && fbp == NULL; i++)
		if (part_is(&parts[i], "message/feedback-report"))
			fbp = &parts[i];
	if (fbp == NULL || parse_feedback_part(fbp, &fb) != 0)
		return -1;
	ret = find_returned(parts, n, &trace);
	rc = build_report(&fb, ret, trace, r);
	fields_free(&fb);
	if (rc == 1)
		r->decoder = "arf";
	return rc;
}

/* ASCII case-insensitive substring search. */
static bool
contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/*
 * The sending IP in a JMRP subject, "complaint about message from
 * 192.0.2.1": the next token, if it is made of address characters.
 */
static char *
jmrp_source_ip(const char *subject)
{
	static const char marker[] = "complaint about message from ";
	const char *p = subject;

	for (; *p != '\0'; p++)
		if (strncasecmp(p, marker, sizeof(marker) - 1) == 0)
			break;
	if (*p == '\0')
		return NULL;
	p += sizeof(marker) - 1;
	size_t n = strspn(p, "0123456789abcdefABCDEF.:");
	if (n == 0 || (p[n] != '\0' && p[n] != ' '))
		return NULL;
	if (memchr(p, '.', n) == NULL && memchr(p, ':', n) == NULL)
		return NULL;
	return xstrndup(p, n);
}

/*
 * Microsoft's JMRP (Hotmail/Outlook.com) complaint: a multipart/mixed
 * message whose only content is the complained-about message, with no
 * feedback-report part. It is recognised by Hotmail's
 * X-HmXmrOriginalRecipient header in the returned message, or by the
 * From/Subject pair that Sisimai also keys on. It is a complaint, so the
 * feedback type is "abuse"; the fields JMRP has no place for are empty.
 */
static int
decode_jmrp(const struct fieldblock *top, const struct part *parts,
    size_t n, struct report *r)
{
	const struct part *ret = NULL;
	const struct field *from, *subj;
	struct fieldblock inner = { 0 };
	struct raw_entity ie;
	json_t *trace, *rcpts;
	bool hotmail;
	int rc;

	for (size_t i = 0; i < n; i++)
		if (part_is(&parts[i], "message/rfc822"))
			ret = &parts[i];
	if (ret == NULL)
		return 0;
	from = fields_get(top, "from");
	subj = fields_get(top, "subject");
	hotmail = from != NULL && subj != NULL && from->value != NULL &&
	    subj->value != NULL && contains_ci(from->value, "staff@hotmail.com") &&
	    contains_ci(subj->value, "complaint about message from ");
	rcpts = json_array();
	raw_entity_split(ret->e.body, ret->e.body_len, &ie);
	if (fields_parse(ie.headers, ie.headers_len, &inner) == 0) {
		for (size_t i = 0; i < inner.n; i++)
			if (strcmp(inner.v[i].name, "x-hmxmroriginalrecipient") == 0)
				json_array_append_new(rcpts,
				    address_string(&inner.v[i]));
		fields_free(&inner);
	}
	if (!hotmail && json_array_size(rcpts) == 0) {
		json_decref(rcpts);
		return 0;
	}

	/* The same object an ARF report gives, from what JMRP carries. */
	static char ft_name[] = "feedback-type", ft_value[] = "abuse";
	struct field ft = { ft_name, ft_value, ft_value, true };
	struct fieldblock fb = { &ft, 1 };
	ret = find_returned(parts, n, &trace);
	rc = build_report(&fb, ret, trace, r);
	if (rc != 1) {
		json_decref(rcpts);
		return rc;
	}
	json_object_set_new(r->feedback_report, "original_rcpto_to", rcpts);
	char *ip = subj != NULL && subj->value != NULL ?
	    jmrp_source_ip(subj->value) : NULL;
	if (ip != NULL) {
		json_object_set_new(r->feedback_report, "source_ip",
		    json_string_lossy(ip));
		free(ip);
	}
	r->decoder = "jmrp";
	return 1;
}

/*
 * Apple Mail's unsubscribe: a plain message sent to the List-Unsubscribe
 * mailto address, marked "X-Apple-Unsubscribe: true". The recipient asks
 * to be removed, which is what an ARF "opt-out" report says.
 */
static int
decode_apple(const struct fieldblock *top, struct report *r)
{
	const struct field *f = fields_get(top, "x-apple-unsubscribe");
	static char ft_name[] = "feedback-type", ft_value[] = "opt-out";
	struct field ft = { ft_name, ft_value, ft_value, true };
	struct fieldblock fb = { &ft, 1 };

	if (f == NULL || f->value == NULL || !str_ieq(f->value, "true"))
		return 0;
	if (build_report(&fb, NULL, NULL, r) != 1)
		return 0;
	r->decoder = "apple-unsubscribe";
	return 1;
}

/*
 * Whether the top level is a feedback report: multipart/report with
 * report-type=feedback-report. Type and parameter value are compared
 * without regard to case (KumoMTA compares bytes). A multipart that is
 * not a report of another type but holds a message/feedback-report part
 * is taken as a mislabelled feedback report.
 */
static bool
is_feedback_report(GMimeObject *top, const struct part *parts, size_t n)
{
	const char *rt = g_mime_object_get_content_type_parameter(top,
	    "report-type");

	if (mime_is(top, "multipart", "report") && rt != NULL)
		return str_ieq(rt, "feedback-report");
	for (size_t i = 0; i < n; i++)
		if (part_is(&parts[i], "message/feedback-report"))
			return true;
	return false;
}

/* A multipart/report of another kind (a DSN): never a complaint. */
static bool
is_other_report(GMimeObject *top)
{
	return mime_is(top, "multipart", "report");
}

int
arf_decode(const struct message *m, struct report *r)
{
	struct raw_entity whole, *kids = NULL;
	struct fieldblock top = { 0 };
	struct part *parts = NULL;
	GMimeObject *mp = NULL;
	size_t n = 0;
	int rc = 0;

	mp = m->mime;
	/*
	 * A multipart/report that names another report type (a DSN) is
	 * neither ARF nor a complaint: decide that before parsing any part.
	 */
	if (mp != NULL && GMIME_IS_MULTIPART(mp) && is_other_report(mp)) {
		const char *rt = g_mime_object_get_content_type_parameter(mp,
		    "report-type");
		if (rt != NULL && !str_ieq(rt, "feedback-report"))
			return 0;
	}
	/* The top-level fields only serve JMRP and Apple; GMime has the rest. */
	raw_entity_split(m->text, m->len, &whole);
	if (fields_parse(whole.headers, whole.headers_len, &top) != 0)
		memset(&top, 0, sizeof(top));
	if (mp != NULL && GMIME_IS_MULTIPART(mp)) {
		n = message_children(m, &kids);
		parts = xcalloc(n + 1, sizeof(*parts));
		for (size_t i = 0; i < n; i++)
			part_load(&parts[i], &kids[i]);
		if (is_feedback_report(mp, parts, n))
			rc = decode_arf(parts, n, r);
		else if (!is_other_report(mp) &&
		    (rc = decode_jmrp(&top, parts, n, r)) == 0)
			rc = decode_apple(&top, r);
	} else
		rc = decode_apple(&top, r);

	for (size_t i = 0; i < n; i++)
		free(parts[i].type);
	free(parts);
	free(kids);
	fields_free(&top);
	return rc;
}

int
arf_decode_fields(const char *text, size_t len, json_t *trace,
    struct report *r)
{
	struct fieldblock fb;
	int rc;

	if (fields_parse(text, len, &fb) != 0) {
		if (trace != NULL)
			json_decref(trace);
		return -1;
	}
	rc = build_report(&fb, NULL, trace, r);
	fields_free(&fb);
	return rc;
}
