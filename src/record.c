/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.c - KumoMTA-compatible log records: the struct, its JSON form in
 * KumoMTA's field order (reference §6.3), and serde_json-identical text.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "util.h"

static const char *const type_names[] = {
	[REC_RECEPTION] = "Reception",
	[REC_DELIVERY] = "Delivery",
	[REC_BOUNCE] = "Bounce",
	[REC_TRANSIENT_FAILURE] = "TransientFailure",
	[REC_EXPIRATION] = "Expiration",
	[REC_ADMIN_BOUNCE] = "AdminBounce",
	[REC_OOB] = "OOB",
	[REC_FEEDBACK] = "Feedback",
	[REC_REJECTION] = "Rejection",
	[REC_ADMIN_REBIND] = "AdminRebind",
	[REC_DEFERRED_INJECTION_REBIND] = "DeferredInjectionRebind",
	[REC_DELAYED] = "Delayed",
	[REC_XFER_OUT] = "XferOut",
	[REC_XFER_IN] = "XferIn",
};

const char *
record_type_name(enum record_type t)
{
	if ((size_t)t >= nitems(type_names) || type_names[t] == NULL)
		fatalx("record_type_name: bad type %d", (int)t);
	return type_names[t];
}

bool
record_type_classified(enum record_type t)
{
	switch (t) {
	case REC_BOUNCE:
	case REC_TRANSIENT_FAILURE:
	case REC_EXPIRATION:
	case REC_ADMIN_BOUNCE:
	case REC_OOB:
	case REC_FEEDBACK:
	case REC_REJECTION:
		return true;
	default:
		return false;
	}
}

void
record_init(struct record *r, enum record_type type)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->id = xstrdup("");
	r->sender = xstrdup("");
	r->queue = xstrdup("");
	r->site = xstrdup("");
	r->response.content = xstrdup("");
}

static void
decref(json_t *v)
{
	if (v != NULL)
		json_decref(v);
}

void
record_free(struct record *r)
{
	free(r->id);
	free(r->sender);
	for (size_t i = 0; i < r->nrecipients; i++)
		free(r->recipients[i]);
	free(r->recipients);
	free(r->queue);
	free(r->site);
	free(r->response.content);
	free(r->response.command);
	free(r->peer_name);
	free(r->peer_addr);
	free(r->bounce_classification);
	free(r->egress_pool);
	free(r->egress_source);
	decref(r->source_address);
	decref(r->feedback_report);
	decref(r->meta);
	decref(r->headers);
	free(r->delivery_protocol);
	free(r->reception_protocol);
	free(r->nodeid);
	free(r->tls_cipher);
	free(r->tls_protocol_version);
	decref(r->tls_peer_subject_name);
	free(r->provider_name);
	free(r->session_id);
	decref(r->oob_detail);
	memset(r, 0, sizeof(*r));
}

void
record_set(char **field, const char *s)
{
	free(*field);
	*field = s != NULL ? xstrdup(s) : NULL;
}

void
record_add_recipient(struct record *r, const char *addr)
{
	r->recipients = xgrow(r->recipients, r->nrecipients,
	    sizeof(*r->recipients));
	r->recipients[r->nrecipients++] = xstrdup(addr);
}

void
record_set_response(struct record *r, int code, const char *content,
    const char *command)
{
	r->response.code = code;
	record_set(&r->response.content, content != NULL ? content : "");
	record_set(&r->response.command, command);
}

void
record_set_enhanced(struct record *r, unsigned cls, unsigned subject,
    unsigned detail)
{
	r->response.has_enhanced = true;
	r->response.cls = cls;
	r->response.subject = subject;
	r->response.detail = detail;
}

/* Append s with every CRLF, CR or LF replaced by one space. */
static void
append_single_line(struct buf *b, const char *s)
{
	while (*s) {
		size_t run = strcspn(s, "\r\n");

		buf_append(b, s, run);
		s += run;
		if (*s == '\0')
			break;
		s += s[0] == '\r' && s[1] == '\n' ? 2 : 1;
		buf_putc(b, ' ');
	}
}

char *
response_single_line(const struct response *resp)
{
	struct buf b = { 0 };

	buf_printf(&b, "%d ", resp->code);
	if (resp->has_enhanced)
		buf_printf(&b, "%u.%u.%u ", resp->cls, resp->subject,
		    resp->detail);
	if (resp->content != NULL)
		append_single_line(&b, resp->content);
	return buf_steal(&b);
}

json_t *
json_string_lossy(const char *s)
{
	char *clean;
	json_t *v;

	if (s == NULL)
		return json_null();
	size_t n = strlen(s);
	/* Checked here already: jansson need not check again. */
	if (utf8_valid(s, n))
		return json_stringn_nocheck(s, n);
	clean = utf8_lossy(s, n);
	v = json_stringn_nocheck(clean, strlen(clean));
	free(clean);
	return v;
}

json_t *
json_bytes_or_string(const char *s, size_t n)
{
	json_t *a;

	if (utf8_valid(s, n))
		return json_stringn_nocheck(s, n);
	a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer((unsigned char)s[i]));
	return a;
}

static json_t *
opt_string(const char *s)
{
	return s != NULL ? json_string_lossy(s) : json_null();
}

static json_t *
opt_json(json_t *v)
{
	return v != NULL ? json_incref(v) : json_null();
}

static json_t *
response_json(const struct response *resp)
{
	json_t *o = json_object(), *enh;
	struct buf content = { 0 };

	json_object_set_new_nocheck(o, "code", json_integer(resp->code));
	if (resp->has_enhanced) {
		enh = json_object();
		json_object_set_new_nocheck(enh, "class", json_integer(resp->cls));
		json_object_set_new_nocheck(enh, "subject", json_integer(resp->subject));
		json_object_set_new_nocheck(enh, "detail", json_integer(resp->detail));
		json_object_set_new_nocheck(o, "enhanced_code", enh);
	} else
		json_object_set_new_nocheck(o, "enhanced_code", json_null());
	/* KumoMTA serialises the content on one line. */
	append_single_line(&content, resp->content ? resp->content : "");
	json_object_set_new_nocheck(o, "content",
	    json_string_lossy(content.data ? content.data : ""));
	buf_free(&content);
	json_object_set_new_nocheck(o, "command", opt_string(resp->command));
	return o;
}

static void
set_time(json_t *o, const char *ikey, const char *skey,
    const struct timespec *ts)
{
	char text[48];

	json_object_set_new_nocheck(o, ikey, json_integer((json_int_t)ts->tv_sec));
	format_rfc3339(text, sizeof(text), ts->tv_sec, ts->tv_nsec);
	json_object_set_new_nocheck(o, skey, json_string_nocheck(text));
}

json_t *
record_json(const struct record *r, bool kumo_strict)
{
	json_t *o = json_object();

	json_object_set_new_nocheck(o, "type",
	    json_string_nocheck(record_type_name(r->type)));
	json_object_set_new_nocheck(o, "id", json_string_lossy(r->id ? r->id : ""));
	json_object_set_new_nocheck(o, "sender",
	    json_string_lossy(r->sender ? r->sender : ""));
	if (r->nrecipients == 1)
		json_object_set_new_nocheck(o, "recipient",
		    json_string_lossy(r->recipients[0]));
	else {
		json_t *a = json_array();
		for (size_t i = 0; i < r->nrecipients; i++)
			json_array_append_new(a,
			    json_string_lossy(r->recipients[i]));
		json_object_set_new_nocheck(o, "recipient", a);
	}
	json_object_set_new_nocheck(o, "queue", json_string_lossy(r->queue ? r->queue : ""));
	json_object_set_new_nocheck(o, "site", json_string_lossy(r->site ? r->site : ""));
	json_object_set_new_nocheck(o, "size", json_integer((json_int_t)r->size));
	json_object_set_new_nocheck(o, "response", response_json(&r->response));
	if (r->has_peer) {
		json_t *p = json_object();
		json_object_set_new_nocheck(p, "name",
		    json_string_lossy(r->peer_name ? r->peer_name : ""));
		json_object_set_new_nocheck(p, "addr",
		    json_string_lossy(r->peer_addr ? r->peer_addr : ""));
		json_object_set_new_nocheck(o, "peer_address", p);
	} else
		json_object_set_new_nocheck(o, "peer_address", json_null());
	set_time(o, "timestamp", "event_time", &r->timestamp);
	set_time(o, "created", "created_time", &r->created);
	json_object_set_new_nocheck(o, "num_attempts", json_integer(r->num_attempts));
	json_object_set_new_nocheck(o, "bounce_classification",
	    json_string_lossy(r->bounce_classification ?
	    r->bounce_classification : "Uncategorized"));
	json_object_set_new_nocheck(o, "egress_pool", opt_string(r->egress_pool));
	json_object_set_new_nocheck(o, "egress_source", opt_string(r->egress_source));
	json_object_set_new_nocheck(o, "source_address", opt_json(r->source_address));
	json_object_set_new_nocheck(o, "feedback_report", opt_json(r->feedback_report));
	json_object_set_new_nocheck(o, "meta",
	    r->meta != NULL ? json_incref(r->meta) : json_object());
	json_object_set_new_nocheck(o, "headers",
	    r->headers != NULL ? json_incref(r->headers) : json_object());
	json_object_set_new_nocheck(o, "delivery_protocol",
	    opt_string(r->delivery_protocol));
	json_object_set_new_nocheck(o, "reception_protocol",
	    opt_string(r->reception_protocol));
	json_object_set_new_nocheck(o, "nodeid", opt_string(r->nodeid));
	if (r->tls_cipher != NULL)
		json_object_set_new_nocheck(o, "tls_cipher", json_string_lossy(r->tls_cipher));
	if (r->tls_protocol_version != NULL)
		json_object_set_new_nocheck(o, "tls_protocol_version",
		    json_string_lossy(r->tls_protocol_version));
	if (r->tls_peer_subject_name != NULL)
		json_object_set_nocheck(o, "tls_peer_subject_name",
		    r->tls_peer_subject_name);
	if (r->provider_name != NULL)
		json_object_set_new_nocheck(o, "provider_name",
		    json_string_lossy(r->provider_name));
	if (r->session_id != NULL)
		json_object_set_new_nocheck(o, "session_id",
		    json_string_lossy(r->session_id));
	if (!kumo_strict && r->oob_detail != NULL)
		json_object_set_nocheck(o, "oob_detail", r->oob_detail);
	return o;
}

/*
 * jansson writes control characters as \u00XX with upper-case hex digits;
 * serde_json uses lower case. Rewrite them so the text is byte-identical.
 */
void
json_lowercase_escapes(char *s, size_t len)
{
	char *end = s + len;

	while ((s = memchr(s, '\\', (size_t)(end - s))) != NULL) {
		if (s[1] == 'u') {
			for (int i = 2; i < 6 && s[i]; i++)
				if (s[i] >= 'A' && s[i] <= 'F')
					s[i] = (char)(s[i] - 'A' + 'a');
			s += 6;
		} else
			s += s[1] ? 2 : 1;
		if (s >= end)
			break;
	}
}

char *
json_dump_compact(const json_t *v)
{
	/*
	 * Into a stack buffer first, then copied out at its size: a record
	 * needs one allocation instead of jansson's growing string.
	 */
	char small[8192];
	size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	size_t need = json_dumpb(v, small, sizeof(small), flags);
	char *text;

	if (need == 0)
		fatalx("json_dumpb failed");
	text = xmalloc(need + 1);
	if (need <= sizeof(small))
		memcpy(text, small, need);
	else if (json_dumpb(v, text, need, flags) != need)
		fatalx("json_dumpb failed");
	text[need] = '\0';
	json_lowercase_escapes(text, need);
	return text;
}

char *
record_dump(const struct record *r, bool kumo_strict)
{
	json_t *o = record_json(r, kumo_strict);
	char *s = json_dump_compact(o);

	json_decref(o);
	return s;
}
