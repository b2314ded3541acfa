/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dsn.c - RFC 3464 delivery status notifications (and RFC 6533 global
 * DSNs): one struct bounce per per-recipient group.
 *
 * For a clean DSN the values are exactly KumoMTA's (reference §2.1-2.3).
 * KumoMTA drops the whole report on harmless defects; here each defect is
 * repaired to the value KumoMTA would have given for the clean message:
 * a repeated field keeps its first value, an Action is read
 * case-insensitively up to its first word, a weekday that does not match
 * its date is ignored, a missing or malformed Status is recovered from the
 * Diagnostic-Code or the Action, a bad date counts as absent, and a group
 * with no recipient is skipped rather than failing the others.
 */
#include "config.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "datetime.h"
#include "dsn.h"
#include "fields.h"
#include "kumoref.h"
#include "message.h"
#include "textbounce.h"
#include "util.h"

/* Far beyond any real DSN; bounds the records one message can produce. */
#define DSN_MAX_RECIPIENTS	10000

/* Field groups handed to GMime in one parse (fields_parse_groups). */
#define DSN_GROUP_BATCH		16

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c);
}

static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)		/* SMTPUTF8 */
		return true;
	if (is_alnum((char)c))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * Parse an unsigned decimal the way Rust's str::parse does (an optional
 * '+', then only digits) into *out if it is at most max.
 */
static bool
parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (n > 0 && s[0] == '+') {
		s++;
		n--;
	}
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

/*
 * KumoMTA's Status syntax: the first space-separated token is
 * class.subject.detail (class a u8, the others u16, extra dotted parts
 * ignored); the remaining text is the comment.
 */
static bool
parse_status(const char *s, struct bounce *b)
{
	const char *sp = strchr(s, ' ');
	size_t toklen = sp != NULL ? (size_t)(sp - s) : strlen(s);
	unsigned long v[3];
	const char *p = s, *end = s + toklen;

	for (int i = 0; i < 3; i++) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		const char *e = dot != NULL ? dot : end;
		unsigned long max = i == 0 ? 255 : 65535;
		if (!parse_uint(p, (size_t)(e - p), max, &v[i]))
			return false;
		if (i < 2 && dot == NULL)
			return false;
		p = dot != NULL ? dot + 1 : end;
	}
	b->has_status = true;
	b->cls = (unsigned)v[0];
	b->subject = (unsigned)v[1];
	b->detail = (unsigned)v[2];
	if (sp != NULL && sp[1] != '\0')
		b->status_comment = xstrdup(sp + 1);
	return true;
}

/*
 * Find the first enhanced status code (2, 4 or 5, then two 1-3 digit
 * parts) standing as its own token in s. Returns a pointer to it and its
 * length in *lenp, or NULL.
 */
static const char *
find_enhanced(const char *s, size_t *lenp)
{
	for (const char *p = s; *p != '\0'; p++) {
		if (*p != '2' && *p != '4' && *p != '5')
			continue;
		if (p > s && (is_alnum(p[-1]) || p[-1] == '.'))
			continue;
		const char *q = p + 1;
		int parts = 0;
		while (parts < 2 && *q == '.') {
			int n = 0;
			while (n < 4 && is_digit(q[1 + n]))
				n++;
			if (n == 0 || n > 3)
				break;
			q += 1 + n;
			parts++;
		}
		if (parts != 2 || is_alnum(*q) || (*q == '.' && is_digit(q[1])))
			continue;
		*lenp = (size_t)(q - p);
		return p;
	}
	return NULL;
}

/* The first standalone 2xx-5xx reply code in s, or 0. */
static int
find_reply_code(const char *s)
{
	for (const char *p = s; *p != '\0'; p++) {
		if (p > s && p[-1] != ' ')
			continue;
		if (*p < '2' || *p > '5' || !is_digit(p[1]) || !is_digit(p[2]))
			continue;
		if (p[3] == '\0' || p[3] == ' ' || p[3] == '-')
			return (*p - '0') * 100 + (p[1] - '0') * 10 +
			    (p[2] - '0');
	}
	return 0;
}

static void
set_status(struct bounce *b, unsigned cls, unsigned subject, unsigned detail)
{
	b->has_status = true;
	b->cls = cls;
	b->subject = subject;
	b->detail = detail;
}

/* Status from a text holding a dotted code somewhere: "550 5.1.1 text". */
static bool
status_from_text(const char *s, struct bounce *b, bool comment)
{
	size_t n;
	const char *p = find_enhanced(s, &n);
	struct bounce tmp;

	if (p == NULL)
		return false;
	char *code = xstrndup(p, n);
	memset(&tmp, 0, sizeof(tmp));
	bool ok = parse_status(code, &tmp);
	free(code);
	if (!ok)
		return false;
	set_status(b, tmp.cls, tmp.subject, tmp.detail);
	const char *rest = p + n;
	while (*rest == ' ')
		rest++;
	if (comment && *rest != '\0')
		b->status_comment = xstrdup(rest);
	return true;
}

/*
 * A Status for a group that has none: the Diagnostic-Code's enhanced code,
 * else the class of its reply code, else what the Action implies.
 */
static void
derive_status(struct bounce *b, const char *diag_text)
{
	b->status_derived = true;
	if (diag_text != NULL) {
		if (status_from_text(diag_text, b, false))
			return;
		int code = find_reply_code(diag_text);
		if (code >= 400) {
			set_status(b, (unsigned)code / 100, 0, 0);
			return;
		}
		if (code >= 200 && code < 300) {
			set_status(b, 2, 0, 0);
			return;
		}
	}
	if (b->action == NULL)
		b->status_derived = false;
	else if (strcmp(b->action, "failed") == 0)
		set_status(b, 5, 0, 0);
	else if (strcmp(b->action, "delayed") == 0)
		set_status(b, 4, 0, 0);
	else if (strcmp(b->action, "delivered") == 0 ||
	    strcmp(b->action, "relayed") == 0 ||
	    strcmp(b->action, "expanded") == 0)
		set_status(b, 2, 0, 0);
	else
		b->status_derived = false;
}

/* "Failed (comment)" -> "failed". */
static char *
action_word(const char *s)
{
	size_t n = 0;

	while (s[n] != '\0' && s[n] != ' ' && s[n] != '(' && s[n] != ';')
		n++;
	return str_lower(xstrndup(s, n));
}

/* Length of a dot-string local part or domain atom run at p. */
static size_t
span_atext(const char *p)
{
	size_t n = 0;

	while (is_atext((unsigned char)p[n]))
		n++;
	return n;
}

/* dot-string: atom *("." atom). Returns its length, 0 if none. */
static size_t
span_dot_string(const char *p)
{
	size_t n = span_atext(p);

	if (n == 0)
		return 0;
	while (p[n] == '.') {
		size_t m = span_atext(p + n + 1);
		if (m == 0)
			return 0;
		n += 1 + m;
	}
	return n;
}

/* quoted-string of RFC 5321 (UTF-8 allowed). Returns its length, 0 if none. */
static size_t
span_quoted(const char *p)
{
	size_t n = 1;

	if (p[0] != '"')
		return 0;
	for (;;) {
		unsigned char c = (unsigned char)p[n];
		if (c == '"')
			return n + 1;
		if (c == '\\') {
			unsigned char e = (unsigned char)p[n + 1];
			if (e < 0x20 || e > 0x7e)
				return 0;
			n += 2;
		} else if ((c >= 0x20 && c <= 0x7e) || c >= 0x80)
			n++;
		else
			return 0;
	}
}

static bool
is_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    is_digit((char)c) || c >= 0x80;
}

/* Domain name or address literal. Returns its length, 0 if none. */
static size_t
span_domain(const char *p)
{
	size_t n = 0;

	if (p[0] == '[') {
		n = 1;
		while (p[n] != '\0' && p[n] != ']' && p[n] != '[' &&
		    p[n] != '\\' && (unsigned char)p[n] > ' ')
			n++;
		if (n == 1 || p[n] != ']')
			return 0;
		return n + 1;
	}
	for (;;) {
		size_t m = 0;
		if (!is_letdig((unsigned char)p[n]))
			return 0;
		while (is_letdig((unsigned char)p[n + m]) || p[n + m] == '-')
			m++;
		n += m;
		if (p[n] != '.' || !is_letdig((unsigned char)p[n + 1]))
			return n;
		n++;
	}
}

/*
 * Parse s as KumoMTA's EnvelopeAddress (an SMTP path or a bare mailbox)
 * and return it as "local@domain": no brackets, the source route dropped,
 * a quoted local part kept as written. "<>" gives "" and "Postmaster"
 * "Postmaster". NULL when s is not an address.
 */
static char *
envelope_address(const char *s)
{
	const char *p = s;
	bool bracket = false;

	if (str_ieq(s, "<>"))
		return xstrdup("");
	if (str_ieq(s, "<postmaster>") || str_ieq(s, "postmaster"))
		return xstrdup("Postmaster");
	if (*p == '<') {
		bracket = true;
		p++;
		if (*p == '@') {
			/* A-d-l: "@a,@b:" */
			for (;;) {
				size_t n = span_domain(p + 1);
				if (n == 0 || p[1] == '[')
					return NULL;
				p += 1 + n;
				if (*p == ':') {
					p++;
					break;
				}
				if (p[0] != ',' || p[1] != '@')
					return NULL;
				p++;
			}
		}
	}
	const char *local = p;
	size_t ln = *p == '"' ? span_quoted(p) : span_dot_string(p);
	if (ln == 0 || p[ln] != '@')
		return NULL;
	p += ln + 1;
	const char *domain = p;
	size_t dn = span_domain(p);
	if (dn == 0)
		return NULL;
	p += dn;
	if (bracket && *p++ != '>')
		return NULL;
	if (*p != '\0')
		return NULL;
	return xasprintf("%.*s@%.*s", (int)ln, local, (int)dn, domain);
}

/*
 * The address of a Final- or Original-Recipient value "type; addr": for
 * rfc822 (any case) the parsed envelope address, else the trimmed text.
 * An rfc822 address that does not parse, or a value with no type, keeps
 * its text without surrounding angle brackets.
 */
static char *
recipient_address(const char *value)
{
	char *type, *addr, *out;

	if (!split_typed(value, &type, &addr)) {
		type = xstrdup("rfc822");
		addr = xstrdup(value);
	}
	bool rfc822 = str_ieq(type, "rfc822");
	size_t n = strlen(addr);
	if (rfc822 && (out = envelope_address(addr)) != NULL)
		goto done;
	if (rfc822 && n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		out = str_trim_dup(addr + 1, n - 2);
	else
		out = xstrdup(addr);
done:
	free(type);
	free(addr);
	return out;
}

/* The name part of "type; name", or the whole value when there is no type. */
static char *
typed_name(const char *value)
{
	char *type, *name;

	if (!split_typed(value, &type, &name))
		return str_trim_dup(value, strlen(value));
	free(type);
	return name;
}

/*
 * Add a bounce for one per-recipient group. Returns false (r untouched)
 * when the group names no recipient.
 */
static bool
decode_recipient(const struct fieldblock *fb, const char *reporting_mta,
    struct report *r)
{
	const struct field *orig = fields_get(fb, "original-recipient");
	const struct field *final = fields_get(fb, "final-recipient");
	const struct field *f;
	char *dtype = NULL, *dtext = NULL;
	struct bounce *b;

	if (orig == NULL && final == NULL)
		return false;
	b = report_add_bounce(r);
	if (final != NULL)
		b->final_recipient = xstrdup(final->value);
	if (orig != NULL)
		b->original_recipient = xstrdup(orig->value);
	b->recipient = recipient_address(orig != NULL ? orig->value :
	    final->value);
	b->reporting_mta = xstrdup(reporting_mta);
	if ((f = fields_get(fb, "action")) != NULL && f->value[0] != '\0')
		b->action = action_word(f->value);
	if ((f = fields_get(fb, "remote-mta")) != NULL)
		b->remote_mta = typed_name(f->value);

	if ((f = fields_get(fb, "diagnostic-code")) != NULL) {
		if (!split_typed(f->value, &dtype, &dtext))
			dtext = xstrdup(f->value);
		b->diagnostic_type = dtype != NULL ? xstrdup(dtype) : NULL;
	}
	if (dtype != NULL && str_ieq(dtype, "smtp")) {
		const char *sp = strchr(dtext, ' ');
		unsigned long code;
		free(b->content);
		if (sp != NULL && parse_uint(dtext, (size_t)(sp - dtext), 65535,
		    &code)) {
			b->code = (int)code;
			b->content = xstrdup(sp + 1);
		} else
			b->content = xstrdup(dtext);
	}

	f = fields_get(fb, "status");
	if (f == NULL || (!parse_status(f->value, b) &&
	    !status_from_text(f->value, b, true)))
		derive_status(b, dtext);
	/*
	 * Evidence for the classifier beyond KumoMTA's fields: the whole
	 * diagnostic text, and its own enhanced code where Status says only
	 * "permanent" or "transient" (X.0.0) and the text says more.
	 */
	if (dtext != NULL && dtext[0] != '\0')
		b->diagnostic_text = xstrdup(dtext);
	if (b->has_status && b->subject == 0 && b->detail == 0 &&
	    dtext != NULL) {
		struct bounce tmp = { 0 };
		if (status_from_text(dtext, &tmp, false) &&
		    (tmp.subject != 0 || tmp.detail != 0)) {
			b->has_diag_enhanced = true;
			b->dcls = tmp.cls;
			b->dsubject = tmp.subject;
			b->ddetail = tmp.detail;
		}
	}
	/* No Action at all: the status class says what happened. */
	if (b->action == NULL && b->has_status)
		b->action = xstrdup(b->cls == 5 ? "failed" :
		    b->cls == 4 ? "delayed" : "delivered");

	if ((f = fields_get(fb, "last-attempt-date")) != NULL) {
		time_t t;
		bool wday_ok;
		if (rfc2822_date(f->value, &t, &wday_ok) == 0) {
			b->has_last_attempt = true;
			b->last_attempt.tv_sec = t;
			b->last_attempt.tv_nsec = 0;
		}
	}
	free(dtype);
	free(dtext);
	return true;
}

/* The media type of a raw entity's Content-Type, lowercased; NULL if none. */
static char *
raw_content_type(const struct fieldblock *fb)
{
	const struct field *f = fields_get(fb, "content-type");

	if (f == NULL)
		return NULL;
	size_t n = strcspn(f->value, ";");
	return str_lower(str_trim_dup(f->value, n));
}

/* Whether a raw entity's Content-Transfer-Encoding changes its bytes. */
static bool
raw_is_encoded(const struct fieldblock *fb)
{
	const struct field *f = fields_get(fb, "content-transfer-encoding");

	return f != NULL && !str_ieq(f->value, "7bit") &&
	    !str_ieq(f->value, "8bit") && !str_ieq(f->value, "binary") &&
	    f->value[0] != '\0';
}

/* Whether text[0..n) holds word (lowercase), ASCII case-insensitively. */
static bool
contains_word_ci(const char *text, size_t n, const char *word)
{
	size_t w = strlen(word);
	char up = word[0] >= 'a' && word[0] <= 'z' ? (char)(word[0] - 32) :
	    word[0];

	if (w == 0 || n < w)
		return w == 0;
	/* Candidates are found with memchr, first letter in either case. */
	const char *p = text, *lim = text + (n - w) + 1;
	while (p < lim) {
		const char *lo = memchr(p, word[0], (size_t)(lim - p));
		const char *hi = up == word[0] ? NULL :
		    memchr(p, up, (size_t)((lo != NULL ? lo : lim) - p));
		const char *c = hi != NULL ? hi : lo;

		if (c == NULL)
			return false;
		if (strncasecmp(c, word, w) == 0)
			return true;
		p = c + 1;
	}
	return false;
}

/*
 * Whether a child's header block can give one of the returned-message
 * types. Their names hold "rfc822" or "global", and neither unfolding nor
 * decoding makes those letters up unless the block has an encoded word,
 * a CR or a NUL; a block without any of these needs no parsing.
 */
static bool
may_be_returned(const char *h, size_t n)
{
	if (h == NULL || n == 0)
		return false;	/* no fields, no type */
	return contains_word_ci(h, n, "rfc822") ||
	    contains_word_ci(h, n, "global") ||
	    contains_word_ci(h, n, "=?") || memchr(h, '\r', n) != NULL ||
	    memchr(h, '\0', n) != NULL;
}

/*
 * A direct child that carries the returned message's header fields
 * (message/rfc822 or message/global: the headers of its body;
 * text/rfc822-headers or message/global-headers: the body itself).
 */
struct returned {
	GMimeMessage *inner;	/* GMime parsed the fields already, or */
	struct span block;	/* the raw header block, byte-exact */
	char	*decoded;	/* the decoded body block points into */
};

/*
 * The children that may carry the trace, in document order. Raw spans are
 * used so the header block is byte-exact; an encoded part is decoded by
 * GMime when its GMime counterpart can be matched by position. Returns the
 * count; *out is malloc'ed.
 */
static size_t
returned_parts(const struct message *m, GMimeMultipart *mp,
    struct returned **out)
{
	struct raw_entity *kids;
	size_t nkids = message_children(m, &kids), n = 0;
	int ngm = g_mime_multipart_get_count(mp);
	/* GMime's children are the raw ones when their counts agree. */
	bool matched = ngm >= 0 && (size_t)ngm == nkids;
	struct returned *v = NULL;

	for (size_t i = 0; i < nkids; i++) {
		struct fieldblock fb;
		char *ct, *decoded = NULL;
		const char *body = kids[i].body;
		size_t blen = kids[i].body_len;
		GMimeObject *o = matched ?
		    g_mime_multipart_get_part(mp, (int)i) : NULL;

		if (!may_be_returned(kids[i].headers, kids[i].headers_len))
			continue;
		/* The fields GMime parsed already, or the raw block's. */
		if (o != NULL)
			fields_of_object(o, &fb);
		else if (fields_parse(kids[i].headers, kids[i].headers_len,
		    &fb) != 0)
			continue;
		ct = raw_content_type(&fb);
		bool whole = ct != NULL && (strcmp(ct, "message/rfc822") == 0 ||
		    strcmp(ct, "message/global") == 0);
		bool headers = ct != NULL &&
		    (strcmp(ct, "text/rfc822-headers") == 0 ||
		    strcmp(ct, "message/global-headers") == 0);
		bool encoded = raw_is_encoded(&fb);
		free(ct);
		fields_free(&fb);
		if (!whole && !headers)
			continue;
		if (encoded) {
			if (o == NULL || !GMIME_IS_PART(o) ||
			    (decoded = mime_part_decoded(o, &blen)) == NULL)
				continue;
			body = decoded;
		}
		v = xgrow(v, n, sizeof(*v));
		v[n] = (struct returned){ .decoded = decoded };
		v[n].inner = whole && !encoded && o != NULL &&
		    GMIME_IS_MESSAGE_PART(o) ?
		    g_mime_message_part_get_message(GMIME_MESSAGE_PART(o)) : NULL;
		if (v[n].inner == NULL && whole) {
			struct raw_entity inner;
			raw_entity_split(body, blen, &inner);
			body = inner.headers;
			blen = inner.headers_len;
		}
		v[n].block = (struct span){ body, blen };
		n++;
	}
	free(kids);
	*out = v;
	return n;
}

static void
returned_free(struct returned *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].decoded);
	free(v);
}

/*
 * The X-KumoRef trace of the returned message: the last part that
 * carries one that decodes wins. parsed[] holds the fields of the parts
 * with a raw block, in order, rc[] their parse results; when parsed is
 * NULL they are parsed here.
 */
static json_t *
returned_trace(const struct returned *v, size_t n,
    const struct fieldblock *parsed, const int *rc, json_t **returned)
{
	json_t *trace = NULL;
	size_t k = 0;

	*returned = NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *t, *h = NULL;
		if (v[i].inner != NULL) {
			/* GMime parsed the returned message's fields already. */
			struct fieldblock inner;
			fields_of_object_raw(GMIME_OBJECT(v[i].inner), &inner);
			t = kumoref_scan_fields(&inner);
			h = report_returned_headers(&inner);
			fields_free(&inner);
		} else if (parsed != NULL) {
			/* A block that does not parse has no trace. */
			t = rc[k] == 0 ? kumoref_scan_fields(&parsed[k]) : NULL;
			h = rc[k] == 0 ? report_returned_headers(&parsed[k]) :
			    NULL;
			k++;
		} else {
			struct fieldblock fb;
			t = kumoref_scan_headers(v[i].block.p, v[i].block.n);
			if (fields_parse_raw(v[i].block.p, v[i].block.n,
			    &fb) == 0) {
				h = report_returned_headers(&fb);
				fields_free(&fb);
			}
		}
		if (t != NULL) {
			if (trace != NULL)
				json_decref(trace);
			trace = t;
		}
		/* As for the trace, the last returned part that has them. */
		if (h != NULL) {
			if (*returned != NULL)
				json_decref(*returned);
			*returned = h;
		}
	}
	return trace;
}

/*
 * The per-message group: *reporting_mta gets its Reporting-MTA name (""
 * without one). Returns whether the group names a recipient as well, as it
 * does when an MTA omits the blank line after the per-message fields.
 */
static bool
per_message(const struct fieldblock *fb, char **reporting_mta)
{
	const struct field *f = fields_get(fb, "reporting-mta");

	*reporting_mta = f != NULL ? typed_name(f->value) : NULL;
	if (*reporting_mta == NULL)
		*reporting_mta = xstrdup("");
	return fields_get(fb, "final-recipient") != NULL ||
	    fields_get(fb, "original-recipient") != NULL;
}

/* The delivery-status text: decoded, valid UTF-8, LF line ends, trimmed. */
static char *
status_text(GMimeObject *part)
{
	size_t len = 0, o = 0;
	char *raw = mime_part_decoded(part, &len);
	char *text;

	if (raw == NULL)
		return xstrdup("");
	text = utf8_lossy(raw, len);
	free(raw);
	for (size_t i = 0; text[i] != '\0'; i++) {
		if (text[i] == '\r' && text[i + 1] == '\n')
			continue;
		text[o++] = text[i];
	}
	text[o] = '\0';
	char *trimmed = str_trim_dup(text, o);
	free(text);
	return trimmed;
}

/*
 * For each recipient whose group says no more than "permanent" or
 * "transient" failure (a generic Status and no more specific code in its
 * diagnostic), the reply that the human-readable part gives it: Sendmail
 * puts the remote reply only there, Exim its "Unrouteable address".
 */
static void
notice_replies(const struct message *m, struct report *r)
{
	struct textbounce_notice *tn = NULL;

	for (size_t i = 0; i < r->nbounces; i++) {
		struct bounce *b = &r->bounces[i];
		if (b->recipient == NULL)
			continue;
		if (tn == NULL && (tn = textbounce_notice_open(m)) == NULL)
			return;
		/* whatever its Status, whether the refusal answered DATA */
		textbounce_notice_after_data(tn, b);
		if (!b->has_status || b->subject != 0 || b->detail != 0 ||
		    b->has_diag_enhanced)
			continue;
		textbounce_notice_reply(tn, b);
	}
	textbounce_notice_close(tn);
}

int
dsn_decode(const struct message *m, struct report *r)
{
	GMimeObject *top, *ds = NULL;
	GMimeMultipart *mp;
	bool global = false;

	top = m->mime;
	if (top == NULL || !GMIME_IS_MULTIPART(top) ||
	    !mime_is(top, "multipart", "report"))
		return 0;
	mp = GMIME_MULTIPART(top);
	int count = g_mime_multipart_get_count(mp);
	for (int i = 0; i < count && ds == NULL; i++) {
		GMimeObject *o = g_mime_multipart_get_part(mp, i);
		if (mime_is(o, "message", "delivery-status"))
			ds = o;
		else if (mime_is(o, "message", "global-delivery-status")) {
			ds = o;
			global = true;
		}
	}
	if (ds == NULL)
		return 0;

	r->kind = REPORT_BOUNCE;
	r->decoder = global ? "rfc6533" : "rfc3464";

	char *text = status_text(ds);
	struct span *groups;
	size_t ngroups = fields_split_groups(text, strlen(text), &groups);
	struct fieldblock fbs[DSN_GROUP_BATCH];
	struct span blocks[DSN_GROUP_BATCH];
	bool raw_only[DSN_GROUP_BATCH] = { false };
	int rcs[DSN_GROUP_BATCH];
	char *reporting_mta = NULL;
	bool first_is_recipient = false, ret_parsed = false;
	struct returned *ret = NULL;
	size_t nret = 0, nraw = 0;
	int rc = 1;

	if (ngroups == 0) {
		rc = -1;
		goto done;
	}
	nret = returned_parts(m, mp, &ret);
	for (size_t j = 0; j < nret; j++)
		nraw += ret[j].inner == NULL;
	/* The returned header blocks join the groups' parse when they fit. */
	bool join_ret = ngroups + nraw <= DSN_GROUP_BATCH;
	for (size_t i = 0; i < ngroups; i += DSN_GROUP_BATCH) {
		size_t k = ngroups - i < DSN_GROUP_BATCH ?
		    ngroups - i : DSN_GROUP_BATCH, nb = k;

		if (r->nbounces >= DSN_MAX_RECIPIENTS)
			break;
		memcpy(blocks, groups + i, k * sizeof(*blocks));
		if (join_ret && i == 0) {
			for (size_t j = 0; j < nret; j++) {
				if (ret[j].inner != NULL)
					continue;
				raw_only[nb] = true;
				blocks[nb++] = ret[j].block;
			}
			ret_parsed = true;
		}
		fields_parse_groups(blocks, nb, fbs, rcs, raw_only);
		if (i == 0) {
			if (rcs[0] != 0 && ngroups == 1) {
				fields_free(&fbs[0]);
				rc = -1;
				goto done;
			}
			first_is_recipient = per_message(&fbs[0],
			    &reporting_mta);
		}
		for (size_t j = 0; j < k; j++) {
			if (rcs[j] == 0 && (i + j > 0 || first_is_recipient) &&
			    r->nbounces < DSN_MAX_RECIPIENTS)
				decode_recipient(&fbs[j], reporting_mta, r);
			fields_free(&fbs[j]);
		}
	}
	/* Recipient groups that all failed: nothing sensible to report. */
	if (r->nbounces == 0 && ngroups > 1)
		rc = -1;
	else
		r->trace = returned_trace(ret, nret,
		    ret_parsed ? fbs + ngroups : NULL,
		    ret_parsed ? rcs + ngroups : NULL, &r->returned);
	if (rc == 1)
		notice_replies(m, r);

done:
	if (ret_parsed)
		for (size_t j = 0; j < nraw; j++)
			fields_free(&fbs[ngroups + j]);
	returned_free(ret, nret);
	free(reporting_mta);
	free(groups);
	free(text);
	return rc;
}

bool
dsn_decode_group(const char *text, size_t len, const char *reporting_mta,
    struct report *r)
{
	struct fieldblock fb;
	bool ok;

	if (fields_parse(text, len, &fb) != 0)
		return false;
	ok = decode_recipient(&fb, reporting_mta != NULL ? reporting_mta : "",
	    r);
	fields_free(&fb);
	return ok;
}
