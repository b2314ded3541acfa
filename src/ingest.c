/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest.c - from a received message to its log records.
 *
 * The decoders are tried in a fixed order (ARF before DSN, as KumoMTA);
 * the first that recognises the message wins. What they find is turned
 * into KumoMTA records here, so the decoders never build JSON and the
 * record builder never looks at MIME.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "arf.h"
#include "classify.h"
#include "dsn.h"
#include "ingest.h"
#include "sesnotify.h"
#include "textbounce.h"
#include "util.h"

static const struct decoder {
	const char *name;
	decoder_fn fn;
	enum report_kind kind;	/* which disposition enables it */
} decoders[] = {
	{ "arf", arf_decode, REPORT_FEEDBACK },
	{ "ses", sesnotify_decode_complaint, REPORT_FEEDBACK },
	{ "rfc3464", dsn_decode, REPORT_BOUNCE },
	{ "ses", sesnotify_decode, REPORT_BOUNCE },
	{ "text", textbounce_decode, REPORT_BOUNCE },
};

const char *
ingest_decode(const struct message *m, bool log_arf, bool log_oob,
    struct report *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < nitems(decoders); i++) {
		const struct decoder *d = &decoders[i];
		if ((d->kind == REPORT_FEEDBACK && !log_arf) ||
		    (d->kind == REPORT_BOUNCE && !log_oob))
			continue;
		int rc = d->fn(m, r);
		if (rc == 1) {
			if (r->decoder == NULL)
				r->decoder = d->name;
			if (r->kind == REPORT_NONE)
				r->kind = d->kind;
			return r->decoder;
		}
		/* A malformed report is a non-report; the next decoder may know it. */
		report_free(r);
	}
	return NULL;
}

char *
queue_for_recipient(const char *recipient)
{
	const char *at = strrchr(recipient, '@');

	return str_lower(xstrdup(at != NULL ? at + 1 : ""));
}

/* Whether name matches a configured pattern: exact, or "prefix*". */
static bool
name_matches(const char *name, const char *pattern, bool icase)
{
	size_t n = strlen(pattern);

	if (n > 0 && pattern[n - 1] == '*') {
		if (icase)
			return strncasecmp(name, pattern, n - 1) == 0;
		return strncmp(name, pattern, n - 1) == 0;
	}
	return icase ? str_ieq(name, pattern) : strcmp(name, pattern) == 0;
}

/*
 * The logger's meta keys taken from the connection meta. Exact names with
 * a null value are skipped, as KumoMTA does.
 */
static json_t *
capture_meta(const struct ingest_config *cfg, json_t *conn_meta)
{
	json_t *out = json_object();
	const char *key;
	json_t *val;

	if (conn_meta == NULL)
		return out;
	for (size_t i = 0; i < cfg->nmeta_keys; i++) {
		const char *pat = cfg->meta_keys[i];
		size_t n = strlen(pat);
		if (n > 0 && pat[n - 1] == '*') {
			json_object_foreach(conn_meta, key, val)
				if (name_matches(key, pat, false))
					json_object_set(out, key, val);
		} else {
			val = json_object_get(conn_meta, pat);
			if (val != NULL && !json_is_null(val))
				json_object_set(out, pat, val);
		}
	}
	return out;
}

/*
 * A header's value as one line: each fold (CRLF or LF and the whitespace
 * after it) becomes one space, then RFC 2047 words are decoded. The caller
 * frees the result.
 */
static char *
header_line_value(GMimeHeader *h)
{
	const char *raw = g_mime_header_get_raw_value(h);
	const char *value = g_mime_header_get_value(h);

	if (raw == NULL || strchr(raw, '\n') == NULL)
		return xstrdup(value != NULL ? value : "");
	struct buf b = { 0 };
	const char *p = raw;
	while (*p == ' ' || *p == '\t')
		p++;
	for (; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\n') {
			while (b.len > 0 && (b.data[b.len - 1] == ' ' ||
			    b.data[b.len - 1] == '\t'))
				b.len--;
			while (p[1] == ' ' || p[1] == '\t')
				p++;
			if (p[1] != '\0' && p[1] != '\r' && p[1] != '\n')
				buf_putc(&b, ' ');
			continue;
		}
		buf_putc(&b, *p);
	}
	if (b.data == NULL)
		return xstrdup("");
	b.data[b.len] = '\0';
	char *decoded = g_mime_utils_header_decode_text(NULL, b.data);
	char *out = xstrdup(decoded != NULL ? decoded : b.data);
	g_free(decoded);
	buf_free(&b);
	return out;
}

/*
 * The logger's headers from the message: names compared without regard to
 * case, keys spelled as at their first occurrence, a repeated header
 * becoming an array.
 */
static json_t *
capture_headers(const struct ingest_config *cfg, const struct message *m)
{
	json_t *out = json_object();

	if (cfg->nheader_names == 0 || m->mime == NULL)
		return out;
	GMimeHeaderList *hl = g_mime_object_get_header_list(m->mime);
	int count = g_mime_header_list_get_count(hl);
	for (int i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);
		bool wanted = false;

		if (name == NULL)
			continue;
		for (size_t j = 0; j < cfg->nheader_names && !wanted; j++)
			wanted = name_matches(name, cfg->header_names[j], true);
		if (!wanted)
			continue;
		char *line = header_line_value(h);
		json_t *v = json_string_lossy(line);
		free(line);
		/* Find an earlier occurrence under any spelling of the name. */
		const char *key;
		json_t *prev = NULL;
		void *iter;
		json_object_foreach_safe(out, iter, key, prev) {
			if (str_ieq(key, name))
				break;
			prev = NULL;
		}
		if (prev == NULL)
			json_object_set_new(out, name, v);
		else if (json_is_array(prev))
			json_array_append_new(prev, v);
		else {
			json_t *a = json_array();
			json_array_append(a, prev);
			json_array_append_new(a, v);
			json_object_set_new(out, key, a);
		}
	}
	return out;
}

/* Fields shared by every record of one received message. */
static void
base_record(struct record *r, enum record_type type,
    const struct ingest_config *cfg, const struct envelope *env,
    const char *id, const struct timespec *created, json_t *meta,
    json_t *headers)
{
	record_init(r, type);
	record_set(&r->id, id);
	record_set(&r->reception_protocol, cfg->reception_protocol);
	record_set(&r->nodeid, cfg->nodeid);
	record_set(&r->session_id, env->session_id);
	r->created = *created;
	r->meta = json_incref(meta);
	r->headers = json_incref(headers);
	r->has_peer = true;
}

static void
set_tls(struct record *r, const struct envelope *env)
{
	record_set(&r->tls_cipher, env->tls_cipher);
	record_set(&r->tls_protocol_version, env->tls_protocol_version);
	if (env->tls_cipher != NULL && env->ntls_peer_subject > 0) {
		r->tls_peer_subject_name = json_array();
		for (size_t i = 0; i < env->ntls_peer_subject; i++)
			json_array_append_new(r->tls_peer_subject_name,
			    json_string_lossy(env->tls_peer_subject[i]));
	}
}

static void
classify(struct record *r, const struct ingest_config *cfg)
{
	if (cfg->classifier == NULL || !record_type_classified(r->type))
		return;
	record_set(&r->bounce_classification,
	    classifier_classify(cfg->classifier, &r->response));
}

/* The Reception record, or the Feedback record that replaces it. */
static void
reception_record(struct record *r, enum record_type type,
    const struct ingest_config *cfg, const struct envelope *env,
    const struct message *m, const char *id, const struct timespec *created,
    const struct timespec *now, json_t *meta, json_t *headers)
{
	base_record(r, type, cfg, env, id, created, meta, headers);
	record_set(&r->sender, env->sender);
	for (size_t i = 0; i < env->nrecipients; i++)
		record_add_recipient(r, env->recipients[i]);
	free(r->queue);
	r->queue = queue_for_recipient(env->nrecipients > 0 ?
	    env->recipients[0] : "");
	r->size = m->wire_size;
	record_set_response(r, 250, "", NULL);
	record_set(&r->peer_name, env->peer_name ? env->peer_name : "");
	record_set(&r->peer_addr, env->peer_addr ? env->peer_addr : "0.0.0.0");
	r->timestamp = *now;
	set_tls(r, env);
	classify(r, cfg);
}

static json_t *
opt_str(const char *s)
{
	return s != NULL ? json_string_lossy(s) : json_null();
}

static void
oob_record(struct record *r, const struct ingest_config *cfg,
    const struct envelope *env, const struct report *rep,
    const struct bounce *b, const char *queue, const char *id,
    const struct timespec *created, const struct timespec *now,
    json_t *meta, json_t *headers)
{
	base_record(r, REC_OOB, cfg, env, id, created, meta, headers);
	/* The bounce address, i.e. the original MAIL FROM. */
	record_set(&r->sender, env->nrecipients > 0 ? env->recipients[0] : "");
	record_add_recipient(r, b->recipient != NULL ? b->recipient : "");
	record_set(&r->queue, queue);
	record_set_response(r, b->code, b->content, NULL);
	if (b->has_status)
		record_set_enhanced(r, b->cls, b->subject, b->detail);
	record_set(&r->peer_name, b->reporting_mta ? b->reporting_mta : "");
	record_set(&r->peer_addr, env->peer_addr ? env->peer_addr : "0.0.0.0");
	r->timestamp = b->has_last_attempt ? b->last_attempt : *now;
	const char *label, *reason;
	bool hard;
	classify_bounce(cfg->classifier, &r->response, b, &label, &reason,
	    &hard);
	if (cfg->classifier != NULL)
		record_set(&r->bounce_classification, label);

	json_t *d = json_object();
	json_object_set_new(d, "decoder", json_string(rep->decoder));
	json_object_set_new(d, "action", opt_str(b->action));
	json_object_set_new(d, "status_comment", opt_str(b->status_comment));
	if (b->status_derived)
		json_object_set_new(d, "status_derived", json_true());
	json_object_set_new(d, "remote_mta", opt_str(b->remote_mta));
	json_object_set_new(d, "diagnostic_type", opt_str(b->diagnostic_type));
	json_object_set_new(d, "trace",
	    rep->trace != NULL ? json_incref(rep->trace) : json_null());
	json_object_set_new(d, "reason", json_string(reason));
	json_object_set_new(d, "hard_bounce", json_boolean(hard));
	if (b->has_diag_enhanced)
		json_object_set_new(d, "diagnostic_enhanced_code",
		    json_pack("{s:i,s:i,s:i}", "class", (int)b->dcls,
		    "subject", (int)b->dsubject, "detail", (int)b->ddetail));
	json_object_set_new(d, "returned_message", rep->returned != NULL ?
	    json_incref(rep->returned) : json_null());
	r->oob_detail = d;
}

/*
 * The message's report for these dispositions: decoded on the first call,
 * then taken from the cache for every later recipient with the same ones.
 */
static const struct report *
decoded(struct ingest_cache *cache, const struct message *m, bool log_arf,
    bool log_oob, struct report *own)
{
	unsigned k = (log_arf ? 2u : 0u) | (log_oob ? 1u : 0u);

	if (cache == NULL) {
		ingest_decode(m, log_arf, log_oob, own);
		return own;
	}
	if (!cache->have[k]) {
		ingest_decode(m, log_arf, log_oob, &cache->rep[k]);
		cache->have[k] = true;
	}
	return &cache->rep[k];
}

void
ingest_cache_free(struct ingest_cache *cache)
{
	for (size_t k = 0; k < nitems(cache->rep); k++)
		if (cache->have[k])
			report_free(&cache->rep[k]);
	memset(cache, 0, sizeof(*cache));
}

static bool
oob_wanted(const struct ingest_config *cfg, const struct bounce *b)
{
	return cfg->all_actions ||
	    (b->action != NULL && strcmp(b->action, "failed") == 0);
}

void
ingest_message_stream(const struct ingest_config *cfg,
    const struct envelope *env, const struct message *m, const char *id,
    const struct timespec *created, const struct timespec *now,
    struct ingest_stream *st)
{
	struct report own;
	const struct report *rep;
	json_t *meta, *headers;
	struct record r;

	memset(&own, 0, sizeof(own));
	rep = decoded(st->cache, m, cfg->log_arf, cfg->log_oob, &own);
	st->kind = rep->kind;
	st->decoder = rep->kind != REPORT_NONE ? rep->decoder : NULL;
	meta = capture_meta(cfg, env->conn_meta);
	headers = capture_headers(cfg, m);

	if (rep->kind == REPORT_FEEDBACK) {
		reception_record(&r, REC_FEEDBACK, cfg, env, m, id, created, now,
		    meta, headers);
		r.feedback_report = json_incref(rep->feedback_report);
		r.oob_detail = json_pack("{s:s}", "decoder", rep->decoder);
		st->emit(st->arg, &r);
	} else {
		reception_record(&r, REC_RECEPTION, cfg, env, m, id, created,
		    now, meta, headers);
		char *queue = xstrdup(r.queue);
		st->emit(st->arg, &r);
		for (size_t i = 0; i < rep->nbounces; i++) {
			const struct bounce *b = &rep->bounces[i];
			if (!oob_wanted(cfg, b))
				continue;
			/* Past the cap, count what is left out; build nothing. */
			if (st->max_oob != 0 && st->oob >= st->max_oob) {
				st->dropped++;
				continue;
			}
			st->oob++;
			oob_record(&r, cfg, env, rep, b, queue, id, created, now,
			    meta, headers);
			st->emit(st->arg, &r);
		}
		free(queue);
	}
	json_decref(meta);
	json_decref(headers);
	report_free(&own);
}

/* Collects the streamed records into an ingest_result. */
static void
collect(void *arg, struct record *r)
{
	struct ingest_result *out = arg;

	if (out->nrecords == out->cap) {
		out->cap = out->cap != 0 ? out->cap * 2 : 4;
		out->records = xrealloc(out->records,
		    out->cap * sizeof(*out->records));
	}
	out->records[out->nrecords++] = *r;	/* the record is ours now */
}

void
ingest_message(const struct ingest_config *cfg, const struct envelope *env,
    const struct message *m, const char *id, const struct timespec *created,
    const struct timespec *now, struct ingest_result *out)
{
	struct ingest_stream st = { .emit = collect, .arg = out };

	memset(out, 0, sizeof(*out));
	ingest_message_stream(cfg, env, m, id, created, now, &st);
	out->kind = st.kind;
	out->decoder = st.decoder;
}

void
ingest_result_free(struct ingest_result *res)
{
	for (size_t i = 0; i < res->nrecords; i++)
		record_free(&res->records[i]);
	free(res->records);
	memset(res, 0, sizeof(*res));
}
