/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sesnotify.c - Amazon SES bounce notifications delivered by email: the
 * JSON event of SES's "email" notification channel, or the same event
 * wrapped in an SNS notification (its "Message" member holds the JSON as
 * a string).
 *
 * A Bounce event lists its recipients with the fields of a DSN group
 * (emailAddress, action, status, diagnosticCode) and the reporting MTA, so
 * each recipient is decoded exactly as a DSN group would be, through
 * dsn_decode_group(): the records are those of the DSN SES would have
 * sent. The event's "mail.headers" are the returned message's headers,
 * which carry its X-KumoRef.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arf.h"
#include "dsn.h"
#include "fields.h"
#include "kumoref.h"
#include "message.h"
#include "sesnotify.h"
#include "util.h"

/* Far beyond any real notification; bounds the work on a hostile one. */
#define SES_MAX_TEXT		(4 * 1024 * 1024)
#define SES_MAX_RECIPIENTS	10000

/*
 * Parse text as JSON, tolerating the line breaks that mail transport adds
 * to a long line: as it is, then with "LF space" folds undone, then with
 * every line break removed. Returns a new object or NULL.
 */
static json_t *
load_folded(const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);

	for (int pass = 0; j == NULL && pass < 2; pass++) {
		char *t = xmalloc(len + 1);
		size_t o = 0;
		for (size_t i = 0; i < len; i++) {
			if (text[i] == '\n') {
				if (pass == 0 && i + 1 < len && text[i + 1] == ' ')
					i++;
				else if (pass == 0) {
					t[o++] = '\n';
				}
				continue;
			}
			t[o++] = text[i];
		}
		j = json_loadb(t, o, JSON_REJECT_DUPLICATES, NULL);
		free(t);
	}
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* The event object: the notification itself or the one SNS wraps. */
static json_t *
ses_event(const char *text, size_t len)
{
	/* SNS appends a "--" line and an unsubscribe footer. */
	const char *foot = strstr(text, "\n--\n");
	json_t *j = load_folded(text, foot != NULL ? (size_t)(foot - text) : len);
	json_t *msg;

	if (j == NULL)
		return NULL;
	if ((msg = json_object_get(j, "Message")) != NULL &&
	    json_is_string(msg)) {
		json_t *inner = load_folded(json_string_value(msg),
		    json_string_length(msg));
		json_decref(j);
		j = inner;
	}
	return j;
}

static const char *
str_member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An RFC 3339 time ("2016-10-21T00:06:40.502Z") as an RFC 2822 date. */
static bool
rfc2822_of(const char *iso, char *out, size_t n)
{
	struct tm tm;
	const char *rest;

	memset(&tm, 0, sizeof(tm));
	if (iso == NULL || (rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm)) ==
	    NULL)
		return false;
	if (*rest == '.')
		while (*++rest >= '0' && *rest <= '9')
			;
	if (*rest != 'Z' && strcmp(rest, "+00:00") != 0)
		return false;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || gmtime_r(&t, &tm) == NULL)
		return false;
	return strftime(out, n, "%a, %d %b %Y %H:%M:%S +0000", &tm) > 0;
}

/* A JSON string as a field value: one line, no control characters. */
static void
put_field(struct buf *b, const char *name, const char *value)
{
	buf_puts(b, name);
	buf_puts(b, name[0] != '\0' ? ": " : "");
	for (const char *p = value; *p != '\0'; p++)
		buf_putc(b, (unsigned char)*p < 0x20 ? ' ' : *p);
	buf_putc(b, '\n');
}

/* The first X- header of the returned message that decodes as a trace. */
static json_t *
headers_trace(json_t *mail)
{
	json_t *hs = json_object_get(mail, "headers");
	size_t i;
	json_t *h;

	json_array_foreach(hs, i, h) {
		const char *name = str_member(h, "name");
		const char *value = str_member(h, "value");
		if (name == NULL || value == NULL ||
		    strncasecmp(name, "x-", 2) != 0)
			continue;
		json_t *t = kumoref_decode_value(value, strlen(value));
		if (t != NULL)
			return t;
	}
	return NULL;
}

/*
 * The SES event in m's body when its notificationType (or eventType) is
 * kind: a new reference, or NULL.
 */
static json_t *
load_event(const struct message *m, const char *kind)
{
	GMimeObject *top;
	char *text;

	if ((top = m->mime) == NULL ||
	    !GMIME_IS_TEXT_PART(top) || !mime_is(top, "text", "plain"))
		return NULL;
	text = g_mime_text_part_get_text(GMIME_TEXT_PART(top));
	if (text == NULL)
		return NULL;
	/* Cheap test first: most messages are not JSON at all. */
	const char *p = text;
	while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
		p++;
	size_t len = strlen(p);
	json_t *ev = NULL;
	if (*p == '{' && len <= SES_MAX_TEXT && strstr(p, kind) != NULL)
		ev = ses_event(p, len);
	g_free(text);
	if (ev == NULL)
		return NULL;
	const char *type = str_member(ev, "notificationType");
	if (type == NULL)
		type = str_member(ev, "eventType");
	if (type == NULL || strcmp(type, kind) != 0) {
		json_decref(ev);
		return NULL;
	}
	return ev;
}

int
sesnotify_decode(const struct message *m, struct report *r)
{
	json_t *ev = load_event(m, "Bounce");

	if (ev == NULL)
		return 0;
	json_t *bounce = json_object_get(ev, "bounce");
	json_t *rcpts = json_object_get(bounce, "bouncedRecipients");
	if (!json_is_array(rcpts)) {
		json_decref(ev);
		return 0;
	}

	r->kind = REPORT_BOUNCE;
	r->decoder = "ses";
	char *mta = NULL, *mta_type = NULL;
	const char *rm = str_member(bounce, "reportingMTA");
	if (rm != NULL && !split_typed(rm, &mta_type, &mta))
		mta = xstrdup(rm);
	char date[64];
	bool has_date = rfc2822_of(str_member(bounce, "timestamp"), date,
	    sizeof(date));
	size_t i;
	json_t *rc;
	json_array_foreach(rcpts, i, rc) {
		const char *addr = str_member(rc, "emailAddress");
		const char *v;
		struct buf g = { 0 };
		if (addr == NULL || r->nbounces >= SES_MAX_RECIPIENTS)
			continue;
		buf_puts(&g, "Final-Recipient: rfc822; ");
		put_field(&g, "", addr);	/* the rest of that line */
		if ((v = str_member(rc, "action")) != NULL)
			put_field(&g, "Action", v);
		else
			put_field(&g, "Action", "failed");
		if ((v = str_member(rc, "status")) != NULL)
			put_field(&g, "Status", v);
		if ((v = str_member(rc, "diagnosticCode")) != NULL)
			put_field(&g, "Diagnostic-Code", v);
		if (has_date)
			put_field(&g, "Last-Attempt-Date", date);
		(void)dsn_decode_group(g.data, g.len, mta, r);
		buf_free(&g);
	}
	free(mta);
	free(mta_type);
	r->trace = headers_trace(json_object_get(ev, "mail"));
	json_decref(ev);
	return r->nbounces > 0 ? 1 : -1;
}

int
sesnotify_decode_complaint(const struct message *m, struct report *r)
{
	json_t *ev = load_event(m, "Complaint");
	json_t *c, *mail, *rc;
	const char *v;
	char date[64];
	struct buf f = { 0 };
	size_t i;

	if (ev == NULL)
		return 0;
	c = json_object_get(ev, "complaint");
	mail = json_object_get(ev, "mail");
	if (!json_is_object(c)) {
		json_decref(ev);
		return 0;
	}
	/* The facts of the complaint as the fields of an ARF report. */
	v = str_member(c, "complaintFeedbackType");
	put_field(&f, "Feedback-Type", v != NULL ? v : "abuse");
	if ((v = str_member(c, "userAgent")) != NULL)
		put_field(&f, "User-Agent", v);
	if (rfc2822_of(str_member(c, "arrivalDate"), date, sizeof(date)))
		put_field(&f, "Arrival-Date", date);
	if ((v = str_member(mail, "source")) != NULL)
		put_field(&f, "Original-Mail-From", v);
	json_array_foreach(json_object_get(c, "complainedRecipients"), i, rc)
		if ((v = str_member(rc, "emailAddress")) != NULL)
			put_field(&f, "Original-Rcpt-To", v);
	if ((v = str_member(mail, "sourceIp")) != NULL)
		put_field(&f, "Source-IP", v);
	if ((v = str_member(c, "feedbackId")) != NULL)
		put_field(&f, "Feedback-Id", v);
	r->decoder = "ses";
	int ok = arf_decode_fields(f.data, f.len, headers_trace(mail), r);
	buf_free(&f);
	json_decref(ev);
	return ok;
}
