/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_session.c - one SMTP connection: command dispatch through a table
 * of check and proceed functions, the DATA reader, and the one reply
 * function through which every reply (and its Rejection record) passes.
 *
 * A session lives for the connection; a transaction (struct smtp_tx) from
 * MAIL to the end of DATA. The end of DATA hands the message to a worker
 * (parse, classify, write and sync the records) and the reply waits for
 * it, so a slow parse never stalls other sessions.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "classify.h"
#include "ingest.h"
#include "log.h"
#include "logfile.h"
#include "message.h"
#include "pool.h"
#include "record.h"
#include "relay.h"
#include "server.h"
#include "smtp_cmd.h"
#include "smtp_session.h"
#include "util.h"

/* DATA is read in pieces of at most this many bytes. */
#define DATA_CHUNK	65536
/* Replies a client may leave unread before oobd stops reading from it. */
#define OUTPUT_LIMIT	65536
/* The first read of a plain connection asks for this much (as libevent). */
#define READ_MIN	4096

enum smtp_state {
	S_PREGREET,	/* connected, greeting not yet sent */
	S_INIT,		/* greeted, waiting for HELO/EHLO */
	S_HELO,		/* no transaction */
	S_MAIL,		/* MAIL accepted */
	S_RCPT,		/* at least one RCPT accepted */
	S_DATA,		/* reading message text */
	S_BUSY,		/* waiting for the worker */
	S_CLOSING,	/* last reply queued */
};

static const char *const state_names[] = {
	[S_PREGREET] = "pregreet", [S_INIT] = "init", [S_HELO] = "helo",
	[S_MAIL] = "mail", [S_RCPT] = "rcpt", [S_DATA] = "data", [S_BUSY] = "busy",
	[S_CLOSING] = "closing",
};

enum bare_kind { BARE_NONE, BARE_LF, BARE_CR };

struct smtp_tx {
	struct smtp_path sender;
	struct mail_params params;
	char	**rcpts;
	size_t	 nrcpts;
	size_t	 rcpt_attempts;
	struct buf data;
	uint64_t data_size;		/* bytes of text seen, stored or not */
	bool	 too_big;
	enum bare_kind bare;
	bool	 nul;			/* a NUL byte in the text */
	bool	 line_start;		/* the last piece ended a CRLF line */
	bool	 in_body;		/* past the header section */
	uint64_t field_len;		/* bytes of the current header field */
	bool	 field_cut;		/* the current header field is cut */
	bool	 line_dropped;		/* the current line is not kept at all */
	size_t	 received;		/* Received: header fields */
	size_t	 header_fields;		/* fields of the top-level header */
	bool	 fields_over;		/* more than max_header_fields */
};

struct smtp_session {
	struct smtp_session *prev, *next;	/* srv->sessions */
	struct server *srv;
	struct settings *set;		/* as when the session started */
	struct listener *listener;
	struct bufferevent *bev;
	char	 id[37];
	char	 ip[INET6_ADDRSTRLEN];
	int	 port;
	char	*local;			/* "ip:port" the client connected to */
	struct sockaddr_storage peer;
	char	*ehlo;			/* NULL before HELO/EHLO */
	bool	 esmtp;
	enum smtp_state state;
	struct smtp_tx *tx;
	char	*cmdline;		/* the command being answered */
	size_t	 errors;
	bool	 busy;			/* a worker job is outstanding */
	bool	 gone;			/* the connection is closed */
	bool	 counted;		/* in the server's connection counts */
	bool	 tls;			/* STARTTLS done */
	bool	 handshaking;		/* STARTTLS accepted, handshake running */
	bool	 out_paused;		/* reading stopped: replies not read */
	bool	 direct;		/* replies written by session_flush */
	struct evbuffer *out;		/* replies not yet written, if direct */
	bool	 batching;		/* replies wait for session_flush */
	/* Plain connections: oobd's own read event (NULL after STARTTLS). */
	struct event *rev;
	bool	 rd_on;			/* reading wanted */
	bool	 rd_full;		/* input at its limit: reading paused */
	size_t	 rd_size;		/* bytes the next read asks for */
	struct timeval idle;		/* read timeout */
	char	*tls_cipher;
	char	*tls_version;
	char	**tls_subject;		/* client certificate subject: "C=US", ... */
	size_t	 ntls_subject;
	struct event *timer;		/* greeting delay, then DATA deadline */
	struct event *deadline;		/* command_phase_timeout */
	size_t	 junk;			/* NOOP, RSET, ... since the last DATA */
	struct evbuffer_cb_entry *flush_cb;	/* closing: TLS bytes to send */
	json_t	*meta;
};

/* How many OOB records of a message got one classification. */
struct msg_class {
	char	*name;
	uint64_t n;
};

struct msg_job {
	struct job job;
	struct smtp_session *s;
	struct server *srv;
	char	*data;
	size_t	 len;
	char	*sender;
	char	**rcpts;
	size_t	 nrcpts;
	/* the reply, filled in by the worker */
	int	 code;
	const char *enhanced;
	char	*text;
	/* between the log write and its sync */
	struct log_waiter waiter;
	struct relay_batch rb;		/* spooled, released by the outcome */
	struct buf ids;			/* queue ids, for the 250 */
	/* the records, counted for the metrics once they are durable */
	uint64_t ntype[REC_XFER_IN + 1];
	struct msg_class *classes;	/* OOB records by classification */
	size_t	 nclasses;
	uint64_t capped;		/* OOB records left out by the cap */
	struct buf fbtypes;		/* Feedback records' types, each + NUL */
	bool	 accepted;		/* some recipient is to be relayed */
	bool	 was_report;
};

static void session_enter(struct smtp_session *s, enum smtp_state st);
static void session_flush(struct smtp_session *s);
static struct evbuffer *session_output(struct smtp_session *s);
static size_t session_output_pending(struct smtp_session *s);
static void session_process_batched(struct smtp_session *s);
static void session_write_via_bufferevent(struct smtp_session *s);
static void session_process(struct smtp_session *s);
static void session_free(struct smtp_session *s);
static void session_read(struct smtp_session *s, bool on);
static size_t read_limit(const struct smtp_session *s);
static void session_read_room(struct smtp_session *s);

/* ---- transactions ---- */

static void
tx_free(struct smtp_tx *tx)
{
	if (tx == NULL)
		return;
	smtp_path_free(&tx->sender);
	for (size_t i = 0; i < tx->nrcpts; i++)
		free(tx->rcpts[i]);
	free(tx->rcpts);
	buf_free(&tx->data);
	free(tx);
}

static void
session_reset_tx(struct smtp_session *s)
{
	tx_free(s->tx);
	s->tx = NULL;
}

/* ---- replies ---- */

static const char *
session_ehlo_name(const struct smtp_session *s)
{
	return s->ehlo != NULL ? s->ehlo : "";
}

/*
 * The Rejection record of a 4xx/5xx reply, as KumoMTA logs it
 * (reference §7): sender and recipient of the open transaction, the
 * client's command line, and nothing after DATA has consumed them.
 */
static void
log_rejection(struct smtp_session *s, int code, const char *enhanced,
    const char *text)
{
	struct server *srv = s->srv;
	struct record r;
	struct classifier *c;
	unsigned cls, sub, det;
	char *line;

	record_init(&r, REC_REJECTION);
	if (s->tx != NULL && s->state != S_DATA && s->state != S_BUSY) {
		record_set(&r.sender, s->tx->sender.addr);
		if (s->tx->nrcpts > 0)
			record_add_recipient(&r, s->tx->rcpts[s->tx->nrcpts - 1]);
	}
	if (r.nrecipients == 0)
		record_add_recipient(&r, "");
	record_set_response(&r, code, text, s->cmdline);
	if (enhanced != NULL &&
	    sscanf(enhanced, "%u.%u.%u", &cls, &sub, &det) == 3)
		record_set_enhanced(&r, cls, sub, det);
	r.has_peer = true;
	record_set(&r.peer_name, session_ehlo_name(s));
	record_set(&r.peer_addr, s->ip);
	clock_gettime(CLOCK_REALTIME, &r.timestamp);
	r.created = r.timestamp;
	record_set(&r.nodeid, srv->nodeid);
	record_set(&r.session_id, s->id);
	c = classifier_slot_get(s->set->classifier);
	record_set(&r.bounce_classification,
	    classifier_classify(c, &r.response));
	classifier_unref(c);
	/* Rejection meta comes from the connection. */
	r.meta = json_object();
	for (size_t i = 0; i < s->set->cfg->meta.n; i++) {
		json_t *v = json_object_get(s->meta, s->set->cfg->meta.v[i]);
		if (v != NULL && !json_is_null(v))
			json_object_set(r.meta, s->set->cfg->meta.v[i], v);
	}
	line = record_dump(&r, s->set->cfg->kumo_strict);
	record_free(&r);
	char **lines = xmalloc(sizeof(*lines));
	lines[0] = line;
	server_log_async(srv, lines, 1);
}

/*
 * Every reply goes through here: "code enhanced text\r\n". 4xx and 5xx
 * replies are logged as Rejection records, except the 421 4.3.2 replies
 * of a shutdown (as KumoMTA). enhanced may be NULL (greeting, EHLO).
 */
static void
session_reply(struct smtp_session *s, int code, const char *enhanced,
    const char *fmt, ...)
{
	va_list ap;
	char *text;

	if (s->gone)
		return;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		fatalx("out of memory formatting a reply");
	va_end(ap);
	if (enhanced != NULL)
		evbuffer_add_printf(session_output(s), "%d %s %s\r\n", code,
		    enhanced, text);
	else
		evbuffer_add_printf(session_output(s), "%d %s\r\n", code, text);
	if (code >= 400) {
		s->errors++;
		if (!(code == 421 && enhanced != NULL &&
		    strcmp(enhanced, "4.3.2") == 0)) {
			metrics_rejection(code, enhanced);
			log_rejection(s, code, enhanced, text);
		}
	}
	free(text);
	if (!s->batching)
		session_flush(s);
}

/*
 * Replies on a plain connection are written straight to the socket from
 * s->out, and the bufferevent's write event stays off: that spares the two
 * epoll_ctl calls libevent makes per reply to turn it on and off. Output
 * the socket cannot take at once goes the bufferevent's way (and write_cb
 * turns the direct path back on once that has drained).
 */
static struct evbuffer *
session_output(struct smtp_session *s)
{
	return s->direct ? s->out : bufferevent_get_output(s->bev);
}

/* Bytes of replies not yet written. */
static size_t
session_output_pending(struct smtp_session *s)
{
	return evbuffer_get_length(bufferevent_get_output(s->bev)) +
	    evbuffer_get_length(s->out);
}

static void
session_flush(struct smtp_session *s)
{
	if (s->gone || !s->direct || evbuffer_get_length(s->out) == 0)
		return;
	(void)evbuffer_write(s->out, bufferevent_getfd(s->bev));
	if (evbuffer_get_length(s->out) > 0)
		session_write_via_bufferevent(s);	/* the rest, or the error */
}

/* Leave the direct path: what is pending, and all that follows, via libevent. */
static void
session_write_via_bufferevent(struct smtp_session *s)
{
	if (s->gone || !s->direct)
		return;
	s->direct = false;
	bufferevent_write_buffer(s->bev, s->out);
	bufferevent_enable(s->bev, EV_WRITE);
}

/* Reply, then close once the reply is written. */
static void
session_reply_close(struct smtp_session *s, int code, const char *enhanced,
    const char *fmt, const char *arg)
{
	/* write_cb closes the connection once the reply is out. */
	session_write_via_bufferevent(s);
	session_reply(s, code, enhanced, fmt, arg);
	session_enter(s, S_CLOSING);
	session_read(s, false);
}

static void
session_enter(struct smtp_session *s, enum smtp_state st)
{
	if (s->state != st)
		log_msg(LOG_DEBUG, s->id, "event=state from=%s to=%s",
		    state_names[s->state], state_names[st]);
	s->state = st;
}

/* ---- commands: a check function and a proceed function per verb ---- */

typedef bool (*check_fn)(struct smtp_session *s, const char *args);
typedef void (*proceed_fn)(struct smtp_session *s, const char *args);

static bool
check_helo(struct smtp_session *s, const char *args)
{
	if (*args == '\0') {
		session_reply(s, 501, "5.5.4", "Syntax: %s hostname",
		    s->esmtp ? "EHLO" : "HELO");
		return false;
	}
	return true;
}

static void
set_ehlo(struct smtp_session *s, const char *args, bool esmtp)
{
	free(s->ehlo);
	s->ehlo = xstrndup(args, strcspn(args, " "));
	s->esmtp = esmtp;
	json_object_set_new(s->meta, "ehlo_domain", json_string_lossy(s->ehlo));
	session_reset_tx(s);
	session_enter(s, S_HELO);
}

static void
proceed_helo(struct smtp_session *s, const char *args)
{
	set_ehlo(s, args, false);
	session_reply(s, 250, NULL, "%s", s->set->cfg->hostname);
}

static void
proceed_ehlo(struct smtp_session *s, const char *args)
{
	struct evbuffer *out = session_output(s);
	const struct config *cfg = s->set->cfg;

	set_ehlo(s, args, true);
	evbuffer_add_printf(out, "250-%s\r\n", cfg->hostname);
	evbuffer_add_printf(out, "250-PIPELINING\r\n");
	evbuffer_add_printf(out, "250-SIZE %llu\r\n",
	    (unsigned long long)cfg->max_message_size);
	evbuffer_add_printf(out, "250-8BITMIME\r\n");
	evbuffer_add_printf(out, "250-SMTPUTF8\r\n");
	if (s->set->tls != NULL && !s->tls)
		evbuffer_add_printf(out, "250-STARTTLS\r\n");
	evbuffer_add_printf(out, "250 ENHANCEDSTATUSCODES\r\n");
}

static bool
check_ehlo(struct smtp_session *s, const char *args)
{
	s->esmtp = true;
	return check_helo(s, args);
}

static bool
check_mail(struct smtp_session *s, const char *args)
{
	(void)args;
	if (s->state == S_INIT) {
		session_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return false;
	}
	if (s->tx != NULL) {
		session_reply(s, 503, "5.5.1", "Error: nested MAIL command");
		return false;
	}
	if (!logfile_storage_ok(s->srv->log, NULL, 0)) {
		session_reply(s, 452, "4.3.1", "Error: insufficient system storage");
		return false;
	}
	return true;
}

static void
proceed_mail(struct smtp_session *s, const char *args)
{
	struct smtp_tx *tx = xcalloc(1, sizeof(*tx));
	struct smtp_err err;

	if (smtp_parse_mail(args, s->esmtp, &tx->sender, &tx->params,
	    &err) != 0) {
		free(tx);
		session_reply(s, err.code, err.enhanced, "%s", err.text);
		return;
	}
	if (tx->params.has_size &&
	    tx->params.size > s->set->cfg->max_message_size) {
		tx_free(tx);
		session_reply(s, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size");
		return;
	}
	s->tx = tx;
	session_enter(s, S_MAIL);
	session_reply(s, 250, "2.1.0", "Ok");
}

static bool
check_rcpt(struct smtp_session *s, const char *args)
{
	(void)args;
	if (s->tx == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return false;
	}
	return true;
}

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/*
 * KumoMTA's check_relaying (reference §1.2): relaying is allowed by the
 * listener's relay_hosts, by the sender domain's relay_from, or by the
 * recipient domain's relay_to; a recipient is accepted when relaying is
 * allowed or its domain logs reports.
 */
static bool
rcpt_permitted(struct smtp_session *s, const char *rcpt)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->peer;
	const struct domain_entry *e;

	if (cidr_list_contains(s->set->relay_hosts, s->set->nrelay_hosts, sa))
		return true;
	if (s->set->domains == NULL)
		return false;
	if (s->tx->sender.domain != NULL) {
		e = domains_lookup(s->set->domains, s->local,
		    s->tx->sender.domain);
		if (e != NULL && domain_entry_relay_from_allowed(e, sa, NULL))
			return true;
	}
	e = domains_lookup(s->set->domains, s->local, domain_of(rcpt));
	return e != NULL && (e->relay_to || disposition_logs(e->log_oob) ||
	    disposition_logs(e->log_arf));
}

static void
proceed_rcpt(struct smtp_session *s, const char *args)
{
	struct smtp_tx *tx = s->tx;
	struct smtp_path path;
	struct smtp_err err;

	tx->rcpt_attempts++;
	if (smtp_parse_rcpt(args, tx->params.smtputf8, &path, &err) != 0) {
		session_reply(s, err.code, err.enhanced, "%s", err.text);
		return;
	}
	if (!rcpt_permitted(s, path.addr)) {
		smtp_path_free(&path);
		session_reply(s, 550, "5.7.1", "relaying not permitted for %s%s%s:%d",
		    s->peer.ss_family == AF_INET6 ? "[" : "", s->ip,
		    s->peer.ss_family == AF_INET6 ? "]" : "", s->port);
		return;
	}
	if (tx->nrcpts >= s->set->cfg->max_recipients) {
		smtp_path_free(&path);
		session_reply(s, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	tx->rcpts = xgrow(tx->rcpts, tx->nrcpts, sizeof(*tx->rcpts));
	tx->rcpts[tx->nrcpts++] = path.addr;
	session_enter(s, S_RCPT);
	session_reply(s, 250, "2.1.5", "Ok");
}

static bool
check_data(struct smtp_session *s, const char *args)
{
	if (*args != '\0') {
		session_reply(s, 501, "5.5.4", "Syntax: DATA");
		return false;
	}
	if (s->tx == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return false;
	}
	if (s->tx->nrcpts == 0) {
		if (s->tx->rcpt_attempts > 0)
			session_reply(s, 554, "5.5.1", "Error: no valid recipients");
		else
			session_reply(s, 503, "5.5.1", "Error: need RCPT command");
		return false;
	}
	return true;
}

static void session_greet(struct smtp_session *s);

/* The greeting delay has passed, or the DATA deadline. */
static void
session_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->gone)
		return;
	if (s->state == S_PREGREET) {
		session_greet(s);
		return;
	}
	if (s->state == S_CLOSING && s->flush_cb != NULL) {
		session_free(s);
		return;
	}
	if (s->handshaking) {
		/* A whole-handshake deadline: trickled bytes do not extend it. */
		log_msg(LOG_INFO, s->id, "event=tls-failed reason=deadline");
		session_free(s);
		return;
	}
	if (s->state != S_DATA)
		return;
	log_msg(LOG_INFO, s->id, "event=timeout phase=data");
	session_reply_close(s, 421, "4.4.2", "%s Error: timeout exceeded",
	    s->set->cfg->hostname);
}

/*
 * The command phase (from the greeting, or the end of the last DATA, to
 * the next DATA) has its own deadline: commands trickled within the idle
 * timeout, NOOP after NOOP, would otherwise hold a connection for ever.
 */
static void
session_deadline_arm(struct smtp_session *s, double seconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	evtimer_add(s->deadline, &tv);
}

static void
session_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->gone || s->state == S_CLOSING || s->state == S_DATA ||
	    s->state == S_BUSY)
		return;
	if (s->handshaking) {
		/* The handshake's own deadline ends it, or the session after. */
		session_deadline_arm(s, 1);
		return;
	}
	log_msg(LOG_INFO, s->id, "event=timeout phase=commands");
	session_reply_close(s, 421, "4.4.2", "%s Error: timeout exceeded",
	    s->set->cfg->hostname);
}

static void
proceed_data(struct smtp_session *s, const char *args)
{
	struct timeval tv;

	(void)args;
	evtimer_del(s->deadline);
	s->tx->line_start = true;
	session_enter(s, S_DATA);
	tv.tv_sec = (time_t)s->set->cfg->data_timeout;
	tv.tv_usec = (suseconds_t)((s->set->cfg->data_timeout - (double)tv.tv_sec) * 1e6);
	evtimer_add(s->timer, &tv);
	s->tx->in_body = false;
	s->tx->field_len = 0;
	session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static bool
check_no_args(struct smtp_session *s, const char *args)
{
	if (*args != '\0') {
		struct smtp_cmd cmd;
		smtp_cmd_parse(s->cmdline, &cmd);
		session_reply(s, 501, "5.5.4", "Syntax: %s",
		    smtp_verb_name(cmd.verb));
		return false;
	}
	return true;
}

static void
proceed_rset(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reset_tx(s);
	if (s->state != S_INIT)
		session_enter(s, S_HELO);
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
proceed_noop(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
proceed_quit(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply_close(s, 221, "2.0.0", "%s", "Bye");
}

static void
proceed_vrfy(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply(s, 252, "2.0.0",
	    "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
proceed_help(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply(s, 214, "2.0.0",
	    "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
}

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static bool
check_starttls(struct smtp_session *s, const char *args)
{
	if (*args != '\0') {
		session_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return false;
	}
	if (s->tls) {
		session_reply(s, 554, "5.5.1", "Error: TLS already active");
		return false;
	}
	if (s->set->tls == NULL) {
		session_reply(s, 454, "4.7.0", "TLS not available");
		return false;
	}
	return true;
}

static int
tls_accept_any(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

/*
 * Reply 220, discard any plaintext the client pipelined after STARTTLS
 * (CVE-2011-0411: it must never be read as if it came through TLS), and
 * start the handshake on a filter over the connection. The session starts
 * over once the handshake is done (RFC 3207 §4.2).
 */
static void
proceed_starttls(struct smtp_session *s, const char *args)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tls;
	SSL *ssl;

	(void)args;
	/* The filter will write through the socket bufferevent, and read. */
	session_write_via_bufferevent(s);
	if (s->rev != NULL) {
		event_free(s->rev);
		s->rev = NULL;
		s->rd_on = false;
		s->rd_full = false;
	}
	session_reply(s, 220, "2.0.0", "Ready to start TLS");
	if (evbuffer_get_length(in) > 0) {
		log_msg(LOG_INFO, s->id, "event=starttls-discard bytes=%zu",
		    evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	ssl = SSL_new(s->set->tls);
	if (ssl == NULL) {
		session_reply_close(s, 454, "4.7.0", "%s", "TLS not available");
		return;
	}
	/*
	 * Ask for a client certificate, for tls_peer_subject_name, and take
	 * whatever comes: this is opportunistic TLS, not authentication.
	 */
	SSL_set_verify(ssl, SSL_VERIFY_PEER, tls_accept_any);
	SSL_set_session_id_context(ssl, (const unsigned char *)"oobd", 4);
	tls = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		session_reply_close(s, 454, "4.7.0", "%s", "TLS not available");
		return;
	}
	/* The filter now owns the socket bufferevent; it stops encrypting
	 * while that one holds OUTPUT_LIMIT bytes. */
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, OUTPUT_LIMIT);
	/*
	 * libevent lifts the socket bufferevent's read watermark for the
	 * filter, and the filter has none: a client that keeps sending
	 * while its message is with a worker (nothing consumes the input)
	 * would be read without end. Bound both as plain input is bounded:
	 * the filter stops decrypting at read_limit, and the socket
	 * bufferevent stops reading once read_limit bytes of records wait.
	 */
	bufferevent_setwatermark(s->bev, EV_READ, 0, read_limit(s));
	bufferevent_setwatermark(tls, EV_READ, 0, read_limit(s));
	s->bev = tls;
	s->handshaking = true;
	session_reset_tx(s);
	bufferevent_setcb(tls, read_cb, write_cb, event_cb, s);
	struct timeval idle;
	idle.tv_sec = (time_t)s->set->cfg->idle_timeout;
	idle.tv_usec = 0;
	bufferevent_set_timeouts(tls, &idle, &idle);
	evtimer_add(s->timer, &idle);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* The handshake is done: record what it negotiated, start the session over. */
static void
tls_established(struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	X509 *cert;

	s->handshaking = false;
	s->tls = true;
	evtimer_del(s->timer);
	s->tls_cipher = xstrdup(SSL_get_cipher_name(ssl));
	s->tls_version = xstrdup(SSL_get_version(ssl));
	cert = SSL_get_peer_certificate(ssl);
	if (cert != NULL) {
		/* KumoMTA's form: one "SN=value" string per name entry. */
		X509_NAME *name = X509_get_subject_name(cert);
		int n = X509_NAME_entry_count(name);
		s->tls_subject = xcalloc((size_t)(n > 0 ? n : 1),
		    sizeof(*s->tls_subject));
		for (int i = 0; i < n; i++) {
			X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
			ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
			unsigned char *utf8 = NULL;
			int len = ASN1_STRING_to_UTF8(&utf8, v);
			const char *sn = OBJ_nid2sn(OBJ_obj2nid(
			    X509_NAME_ENTRY_get_object(e)));
			if (len < 0)
				continue;
			s->tls_subject[s->ntls_subject++] = xasprintf("%s=%.*s",
			    sn != NULL ? sn : "UNDEF", len, (const char *)utf8);
			OPENSSL_free(utf8);
		}
		X509_free(cert);
	}
	free(s->ehlo);
	s->ehlo = NULL;
	s->esmtp = false;
	json_object_del(s->meta, "ehlo_domain");
	session_enter(s, S_INIT);
	json_object_set_new(s->meta, "tls", json_true());
	log_msg(LOG_INFO, s->id, "event=tls version=%s cipher=%s",
	    s->tls_version, s->tls_cipher);
	/* Commands that came with the client's Finished: no read event follows. */
	session_process_batched(s);
}

static void
proceed_unimplemented(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply(s, 502, "5.5.1", "Error: command not implemented");
}

static void
proceed_bdat(struct smtp_session *s, const char *args)
{
	(void)args;
	/* The chunk bytes that follow would be read as commands: hang up. */
	session_reply_close(s, 521, "5.5.1", "%s",
	    "Error: command not implemented");
}

static void
proceed_forbidden(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply_close(s, 221, "2.7.0", "%s",
	    "Error: I can break rules, too. Goodbye.");
}

static void
proceed_unknown(struct smtp_session *s, const char *args)
{
	(void)args;
	session_reply(s, 500, "5.5.2", "Error: command not recognized");
}

static const struct command {
	enum smtp_verb verb;
	check_fn check;
	proceed_fn proceed;
	bool	 group_end;	/* RFC 2920: must be last in a pipelined group */
} commands[] = {
	{ CMD_HELO, check_helo, proceed_helo, true },
	{ CMD_EHLO, check_ehlo, proceed_ehlo, true },
	{ CMD_MAIL, check_mail, proceed_mail, false },
	{ CMD_RCPT, check_rcpt, proceed_rcpt, false },
	{ CMD_DATA, check_data, proceed_data, true },
	{ CMD_RSET, check_no_args, proceed_rset, false },
	{ CMD_NOOP, NULL, proceed_noop, true },
	{ CMD_QUIT, check_no_args, proceed_quit, true },
	{ CMD_VRFY, NULL, proceed_vrfy, true },
	{ CMD_EXPN, NULL, proceed_unimplemented, true },
	{ CMD_HELP, NULL, proceed_help, true },
	{ CMD_STARTTLS, check_starttls, proceed_starttls, true },
	{ CMD_BDAT, NULL, proceed_bdat, true },
	{ CMD_AUTH, NULL, proceed_unimplemented, true },
	{ CMD_ETRN, NULL, proceed_unimplemented, true },
	{ CMD_TURN, NULL, proceed_unimplemented, true },
	{ CMD_FORBIDDEN, NULL, proceed_forbidden, true },
	{ CMD_UNKNOWN, NULL, proceed_unknown, false },
};

static const struct command *
find_command(enum smtp_verb v)
{
	for (size_t i = 0; i < nitems(commands); i++)
		if (commands[i].verb == v)
			return &commands[i];
	return &commands[nitems(commands) - 1];
}

/*
 * Execute one complete command line (CRLF removed). The caller has
 * checked framing (CRLF only, no bare CR, no NUL).
 */
static void
session_command(struct smtp_session *s, const char *line)
{
	struct smtp_cmd cmd;
	const struct command *c;

	free(s->cmdline);
	s->cmdline = xstrdup(line);
	smtp_cmd_parse(line, &cmd);
	c = find_command(cmd.verb);

	/*
	 * Pipelining synchronisation (RFC 2920 §3.1, Postfix's
	 * smtpd_forbid_unauth_pipelining): after a command that must end a
	 * group, or any command of a HELO client, the client must wait for
	 * our reply. Input already waiting is a protocol violation, refused
	 * before the command runs (so DATA never answers 354 to it).
	 * STARTTLS discards such input instead (Postfix); QUIT and BDAT end
	 * the session anyway.
	 */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	bool must_sync = (c->group_end || (s->ehlo != NULL && !s->esmtp)) &&
	    cmd.verb != CMD_STARTTLS && cmd.verb != CMD_QUIT &&
	    cmd.verb != CMD_BDAT;
	if (must_sync && evbuffer_get_length(in) > 0) {
		size_t n = evbuffer_get_length(in);
		const char *peek = (const char *)evbuffer_pullup(in,
		    n < 100 ? (ssize_t)n : 100);
		log_msg(LOG_INFO, s->id, "event=pipelining-violation at=%s "
		    "input=%s", smtp_verb_name(cmd.verb),
		    log_escape(peek, n, 100));
		session_reply_close(s, 554, "5.5.0",
		    "%s", "Error: SMTP protocol synchronization");
		return;
	}
	/*
	 * Postfix's smtpd_junk_command_limit: commands that carry no mail,
	 * counted until a DATA ends, so NOOP or RSET cannot hold the slot.
	 */
	switch (cmd.verb) {
	case CMD_NOOP: case CMD_RSET: case CMD_VRFY: case CMD_HELP:
	case CMD_HELO: case CMD_EHLO:
		if (++s->junk > s->set->cfg->max_junk_commands) {
			log_msg(LOG_INFO, s->id, "event=junk-commands count=%zu",
			    s->junk - 1);
			session_reply_close(s, 421, "4.7.0",
			    "%s Error: too many commands without mail",
			    s->set->cfg->hostname);
			return;
		}
		break;
	default:
		break;
	}
	if (c->check == NULL || c->check(s, cmd.args))
		c->proceed(s, cmd.args);

	if (s->state == S_CLOSING || s->gone)
		return;
	if (s->errors >= s->set->cfg->max_errors)
		session_reply_close(s, 421, "4.7.0", "%s Error: too many errors",
		    s->set->cfg->hostname);
}

/* ---- DATA ---- */

static void msg_job_run(struct job *j);
static void msg_job_done(struct job *j);

/* The end of DATA: answer size and line-ending errors, or queue the message. */
static void
data_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	evtimer_del(s->timer);
	s->junk = 0;
	session_deadline_arm(s, s->set->cfg->command_phase_timeout);
	free(s->cmdline);
	s->cmdline = xstrdup("DATA");
	if (tx->too_big) {
		session_enter(s, S_HELO);
		session_reset_tx(s);
		session_reply(s, 552, "5.3.4", "Error: message too big");
		metrics_message(MSG_REJECTED);
		return;
	}
	if (tx->received > s->set->cfg->max_received_headers) {
		session_enter(s, S_HELO);
		session_reset_tx(s);
		session_reply(s, 554, "5.4.0", "Error: too many hops");
		metrics_message(MSG_REJECTED);
		return;
	}
	/* As the MIME limits: the structure, not the size, is refused. */
	if (tx->fields_over) {
		session_enter(s, S_HELO);
		session_reset_tx(s);
		session_reply(s, 554, "5.6.0", "Error: more header fields in "
		    "one header block than the limit of %zu",
		    s->set->cfg->max_header_fields);
		metrics_message(MSG_REJECTED);
		return;
	}
	if (tx->bare != BARE_NONE &&
	    s->set->cfg->invalid_line_endings == LINE_ENDINGS_DENY) {
		enum bare_kind bare = tx->bare;
		session_enter(s, S_HELO);
		session_reset_tx(s);
		session_reply(s, 550, "5.5.2", "Error: bare <%s> received",
		    bare == BARE_LF ? "LF" : "CR");
		metrics_message(MSG_REJECTED);
		return;
	}
	/*
	 * Postfix refuses NUL only when told to (message_reject_characters);
	 * here "Deny" refuses it as it refuses bare line ends: a line "\0."
	 * is the end of data to a next hop or parser that strips NULs.
	 */
	if (tx->nul && s->set->cfg->invalid_line_endings == LINE_ENDINGS_DENY) {
		session_enter(s, S_HELO);
		session_reset_tx(s);
		session_reply(s, 550, "5.6.0", "Error: NUL character in message");
		metrics_message(MSG_REJECTED);
		return;
	}

	struct msg_job *mj = xcalloc(1, sizeof(*mj));
	mj->job.run = msg_job_run;
	mj->job.done = msg_job_done;
	mj->s = s;
	mj->srv = s->srv;
	mj->len = tx->data.len;
	mj->data = buf_steal(&tx->data);
	mj->sender = xstrdup(tx->sender.addr);
	mj->rcpts = tx->rcpts;
	mj->nrcpts = tx->nrcpts;
	tx->rcpts = NULL;
	tx->nrcpts = 0;
	session_reset_tx(s);
	session_enter(s, S_BUSY);
	s->busy = true;
	/*
	 * Reading stays on: input that comes meanwhile waits in the buffer,
	 * bounded by its watermark, and a disconnect is noticed at once.
	 */
	pool_submit(s->srv->pool, &mj->job);
}

static void
data_count(struct smtp_tx *tx, size_t n, uint64_t max)
{
	tx->data_size += n;
	if (!tx->too_big && tx->data_size > max) {
		tx->too_big = true;
		buf_free(&tx->data);
	}
}

static void
data_store(struct smtp_tx *tx, const char *p, size_t n, uint64_t max)
{
	data_count(tx, n, max);
	if (!tx->too_big)
		buf_append(&tx->data, p, n);
}

/*
 * Postfix's header_size_limit: of a header field longer than
 * max_header_size (its continuation lines included), the excess is
 * discarded; the lines kept keep their line ends. *blen and *eol are
 * the bytes of text and line end of this piece to keep. Past max_fields
 * fields, tx->fields_over is set: the message will get 554 5.6.0, so
 * nothing more of it is kept (a few bytes a field cost GMime about a
 * kilobyte each).
 */
static void
data_header_limit(struct smtp_tx *tx, const char *p, size_t body,
    bool complete, bool line_start, uint64_t max, size_t max_fields,
    size_t *blen, size_t *eol)
{
	if (tx->in_body)
		return;
	if (line_start) {
		if (complete && body == 0) {
			tx->in_body = true;	/* the empty line */
			return;
		}
		if (body == 0 || (p[0] != ' ' && p[0] != '\t')) {
			if (body > 0 && ++tx->header_fields > max_fields)
				tx->fields_over = true;
			tx->field_len = 0;
			tx->field_cut = false;
			if (body >= 9 && strncasecmp(p, "Received:", 9) == 0)
				tx->received++;
		}
		tx->line_dropped = tx->field_cut;
	}
	uint64_t room = tx->field_len < max ? max - tx->field_len : 0;
	if (tx->field_cut)
		*blen = 0;
	else if (*blen > room) {
		*blen = (size_t)room;
		tx->field_cut = true;
		/* Nothing left of the line: drop it, or it would end the header. */
		if (line_start && room == 0)
			tx->line_dropped = true;
	}
	tx->field_len += body;
	if (tx->line_dropped)
		*eol = 0;
}

/*
 * One piece of message text: a whole line ending in LF (complete), or a
 * part of a longer line. Only a complete CRLF line that starts where a
 * CRLF line ended can be the terminator or be dot-stuffed (smtp-robustness
 * §1.3). Returns true at the end of the message.
 */
static bool
data_piece(struct smtp_session *s, const char *p, size_t n, bool complete)
{
	struct smtp_tx *tx = s->tx;
	const struct config *cfg = s->set->cfg;
	uint64_t max = cfg->max_message_size;
	bool line_start = tx->line_start;
	bool crlf = complete && n >= 2 && p[n - 2] == '\r';
	size_t body = complete ? n - (crlf ? 2 : 1) : n;

	if (complete && crlf && line_start && n == 3 && p[0] == '.')
		return true;
	if (complete && !crlf && tx->bare == BARE_NONE)
		tx->bare = BARE_LF;
	if (memchr(p, '\r', body) != NULL && tx->bare == BARE_NONE)
		tx->bare = BARE_CR;
	if (!tx->nul && memchr(p, '\0', body) != NULL)
		tx->nul = true;
	tx->line_start = crlf;

	if (line_start && body > 0 && p[0] == '.') {
		p++;
		body--;
		n--;
	}
	if ((tx->bare != BARE_NONE || tx->nul) &&
	    cfg->invalid_line_endings == LINE_ENDINGS_DENY) {
		/* The message will be refused: count it, do not keep it. */
		data_count(tx, n, max);
		return false;
	}
	size_t blen = body, eol = n - body;
	data_header_limit(tx, p, body, complete, line_start,
	    cfg->max_header_size, cfg->max_header_fields, &blen, &eol);
	if (tx->fields_over) {
		/* The message will be refused: count it, do not keep it. */
		buf_free(&tx->data);
		data_count(tx, n, max);
		return false;
	}
	data_count(tx, (body - blen) + (n - body - eol), max);
	if (cfg->invalid_line_endings == LINE_ENDINGS_FIX) {
		size_t start = 0;
		/*
		 * A lone CR becomes CRLF; a NUL goes (a next hop that strips
		 * NULs itself could otherwise see a line "\0." as the end).
		 */
		for (size_t i = 0; i < blen; i++) {
			if (p[i] != '\r' && p[i] != '\0')
				continue;
			data_store(tx, p + start, i - start, max);
			if (p[i] == '\r')
				data_store(tx, "\r\n", 2, max);
			else
				data_count(tx, 1, max);
			start = i + 1;
		}
		data_store(tx, p + start, blen - start, max);
		if (eol > 0)
			data_store(tx, "\r\n", 2, max);
	} else {
		data_store(tx, p, blen, max);
		data_store(tx, p + body, eol, max);
	}
	return false;
}

/*
 * Consume message text from the input buffer: every piece in it, then
 * one drain (a drain per line would re-arm the read event each time).
 */
static void
data_read(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t avail = evbuffer_get_length(in), off = 0;
	const char *p;

	if (avail == 0)
		return;
	p = (const char *)evbuffer_pullup(in, -1);
	while (s->state == S_DATA && off < avail) {
		size_t left = avail - off, n;
		const char *nl = memchr(p + off, '\n',
		    left < DATA_CHUNK ? left : DATA_CHUNK);
		bool complete = nl != NULL;

		if (complete)
			n = (size_t)(nl - (p + off)) + 1;
		else if (left >= DATA_CHUNK)
			n = DATA_CHUNK;
		else
			break;		/* wait for the rest of the line */
		/* Keep a CR that may start the CRLF of the next piece. */
		if (!complete && p[off + n - 1] == '\r')
			n--;
		bool end = data_piece(s, p + off, n, complete);
		off += n;
		if (end) {
			evbuffer_drain(in, off);
			data_end(s);
			return;
		}
	}
	evbuffer_drain(in, off);
}

/* ---- the worker side of a message ---- */

static char *
received_header(const struct msg_job *mj, const struct smtp_session *s,
    const char *id, const char *rcpt)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	(void)mj;
	return xasprintf("Received: from %s (%s)\r\n\tby %s (oobd) with %s id %s"
	    "\r\n\tfor <%s>; %s\r\n", s->ehlo ? s->ehlo : "unknown", s->ip,
	    s->set->cfg->hostname, s->esmtp ? "ESMTP" : "SMTP", id, rcpt, date);
}

/*
 * Lines that could be MIME delimiters ("--" at a line start). Each MIME
 * part needs one, so far more of them than max_mime_parts allows means a
 * message that must not reach GMime, which would build every part.
 */
static size_t
delimiter_lines(const char *p, size_t len)
{
	size_t count = 0;

	for (size_t i = 0; i + 1 < len; i++) {
		if ((i == 0 || p[i - 1] == '\n') && p[i] == '-' && p[i + 1] == '-')
			count++;
		const char *nl = memchr(p + i, '\n', len - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - p);
	}
	return count;
}

/*
 * The MIME limits (max_mime_depth, max_mime_parts): 0 when m is within
 * them, else -1 with the 554 5.6.0 reply in mj.
 */
static int
msg_mime_limits(struct msg_job *mj, const struct message *m,
    const struct config *cfg)
{
	size_t depth = 0, parts = 0;

	if (m != NULL)
		message_mime_shape(m, &depth, &parts);
	else
		parts = delimiter_lines(mj->data, mj->len) / 2;
	/* Every header block, nested ones too, before GMime sees any. */
	if (m == NULL && !message_fields_within(mj->data, mj->len,
	    cfg->max_header_fields)) {
		mj->code = 554;
		mj->enhanced = "5.6.0";
		mj->text = xasprintf("Error: more header fields in one header "
		    "block than the limit of %zu", cfg->max_header_fields);
		return -1;
	}
	if (depth > cfg->max_mime_depth) {
		mj->code = 554;
		mj->enhanced = "5.6.0";
		mj->text = xasprintf("Error: MIME nesting exceeds the limit of %zu",
		    cfg->max_mime_depth);
		return -1;
	}
	if (parts > cfg->max_mime_parts) {
		mj->code = 554;
		mj->enhanced = "5.6.0";
		mj->text = xasprintf("Error: more MIME parts than the limit of %zu",
		    cfg->max_mime_parts);
		return -1;
	}
	return 0;
}

/*
 * Parse the message once, then treat each recipient as its own message
 * (KumoMTA's BifurcateAlways batching): its domain's dispositions decide
 * which decoders run and whether the message is relayed, dropped or
 * refused (reference §1.2). All records of the transaction are committed
 * together before the reply.
 */
/*
 * The outcome of the transaction once its records are settled: the reply,
 * the relay batch delivered or dropped, the records counted.
 */
static void
msg_job_settle(struct msg_job *mj)
{
	struct server *srv = mj->srv;

	if (mj->code == 0 && !mj->accepted && !mj->was_report) {
		mj->code = 550;
		mj->enhanced = "5.7.1";
		mj->text = xstrdup("relaying not permitted");
	} else if (mj->code == 0) {
		mj->code = 250;
		mj->enhanced = "2.0.0";
		mj->text = xasprintf("OK ids=%s",
		    mj->ids.data ? mj->ids.data : "");
	}
	relay_release(srv->relay, &mj->rb, mj->code == 250);
	if (mj->code != 451) {
		for (size_t t = 0; t < nitems(mj->ntype); t++)
			metrics_records_add((enum record_type)t, mj->ntype[t]);
		for (size_t k = 0; k < mj->nclasses; k++)
			metrics_bounce_classification_add(mj->classes[k].name,
			    mj->classes[k].n);
		metrics_records_capped(mj->capped);
		for (size_t o = 0; o < mj->fbtypes.len;
		    o += strlen(mj->fbtypes.data + o) + 1)
			metrics_feedback_type(mj->fbtypes.data + o);
	}
	buf_free(&mj->fbtypes);
	for (size_t k = 0; k < mj->nclasses; k++)
		free(mj->classes[k].name);
	free(mj->classes);
	mj->classes = NULL;
	mj->nclasses = 0;
	memset(mj->ntype, 0, sizeof(mj->ntype));
	buf_free(&mj->ids);
}

/* The log has settled the message's records (err 0: durable). */
static void
msg_job_durable(struct log_waiter *w, int err)
{
	struct msg_job *mj = (struct msg_job *)((char *)w -
	    offsetof(struct msg_job, waiter));

	if (err != 0) {
		mj->code = 451;
		mj->enhanced = "4.3.0";
		mj->text = xasprintf("Error: local error writing the log: %s",
		    strerror(err));
	}
	msg_job_settle(mj);
	pool_complete(mj->srv->pool, &mj->job);
}

/* Where the records of a message go as ingest builds them. */
struct msg_emit {
	struct msg_job	*mj;
	struct log_batch *batch;
	bool		 kumo_strict;
	json_t		*meta;		/* of the recipient's first record */
	json_t		*headers;
};

static void
msg_count_class(struct msg_job *mj, const char *name)
{
	for (size_t k = 0; k < mj->nclasses; k++)
		if (strcmp(mj->classes[k].name, name) == 0) {
			mj->classes[k].n++;
			return;
		}
	mj->classes = xrealloc(mj->classes,
	    (mj->nclasses + 1) * sizeof(*mj->classes));
	mj->classes[mj->nclasses].name = xstrdup(name);
	mj->classes[mj->nclasses++].n = 1;
}

/*
 * One record built: straight into the message's log batch (which spills
 * to a file past LOG_BATCH_MEM), so memory holds one record at a time.
 * After a failed add the batch is failed and the commit answers 451.
 */
static void
msg_emit_record(void *arg, struct record *r)
{
	struct msg_emit *me = arg;
	struct msg_job *mj = me->mj;

	if (me->meta == NULL) {
		me->meta = json_incref(r->meta);
		me->headers = json_incref(r->headers);
	}
	char *line = record_dump(r, me->kumo_strict);
	if (logfile_batch_add(me->batch, line) == 0) {
		if ((size_t)r->type < nitems(mj->ntype))
			mj->ntype[r->type]++;
		if (r->type == REC_OOB)
			msg_count_class(mj, r->bounce_classification ?
			    r->bounce_classification : "Uncategorized");
		if (r->type == REC_FEEDBACK) {
			json_t *ft = json_object_get(r->feedback_report,
			    "feedback_type");
			buf_puts(&mj->fbtypes, json_is_string(ft) ?
			    json_string_value(ft) : "");
			buf_putc(&mj->fbtypes, '\0');
		}
	}
	free(line);
	record_free(r);
}

static void
msg_job_run(struct job *j)
{
	struct msg_job *mj = (struct msg_job *)j;
	struct smtp_session *s = mj->s;
	struct server *srv = mj->srv;
	const struct config *cfg = s->set->cfg;
	struct message m;
	struct ingest_cache cache = { 0 };
	struct msg_emit me = { .mj = mj, .kumo_strict = cfg->kumo_strict };
	struct ingest_stream st = { .emit = msg_emit_record, .arg = &me,
	    .max_oob = cfg->max_records_per_message, .cache = &cache };
	bool was_report = false, accepted = false;
	struct classifier *cls = classifier_slot_get(s->set->classifier);
	const struct sockaddr *sa = (const struct sockaddr *)&s->peer;
	bool relay_hosts = cidr_list_contains(s->set->relay_hosts,
	    s->set->nrelay_hosts, sa);
	const struct domain_entry *sender_entry = NULL;
	struct relay_batch *rb = &mj->rb;	/* released after the commit */
	bool spool_failed = false;

	if (msg_mime_limits(mj, NULL, cfg) != 0) {
		classifier_unref(cls);
		return;
	}
	message_load_max(&m, mj->data, mj->len, cfg->max_header_fields);
	/* The size is of the bytes received, bare CR or LF included. */
	m.wire_size = mj->len;
	if (msg_mime_limits(mj, &m, cfg) != 0) {
		message_free(&m);
		classifier_unref(cls);
		return;
	}
	if (s->set->domains != NULL && *domain_of(mj->sender) != '\0')
		sender_entry = domains_lookup(s->set->domains, s->local,
		    domain_of(mj->sender));
	bool relay_from = sender_entry != NULL &&
	    domain_entry_relay_from_allowed(sender_entry, sa, NULL);

	me.batch = logfile_batch_new(srv->log);
	for (size_t i = 0; i < mj->nrcpts; i++) {
		const char *rcpt = mj->rcpts[i];
		const struct domain_entry *e = s->set->domains == NULL ? NULL :
		    domains_lookup(s->set->domains, s->local,
		    domain_of(rcpt));
		struct ingest_config ic = {
			.log_arf = e != NULL && disposition_logs(e->log_arf),
			.log_oob = e != NULL && disposition_logs(e->log_oob),
			.kumo_strict = cfg->kumo_strict,
			.nodeid = srv->nodeid,
			.reception_protocol = "ESMTP",
			.classifier = cls,
			.meta_keys = (const char *const *)cfg->meta.v,
			.nmeta_keys = cfg->meta.n,
			.header_names = (const char *const *)cfg->headers.v,
			.nheader_names = cfg->headers.n,
		};
		const char *rcpts[1] = { rcpt };
		struct envelope env = {
			.sender = mj->sender,
			.recipients = rcpts,
			.nrecipients = 1,
			.peer_name = s->ehlo ? s->ehlo : "",
			.peer_addr = s->ip,
			.session_id = s->id,
			.tls_cipher = s->tls_cipher,
			.tls_protocol_version = s->tls_version,
			.tls_peer_subject = (const char *const *)s->tls_subject,
			.ntls_peer_subject = s->ntls_subject,
			.conn_meta = s->meta,
		};
		char id[33];
		struct timespec created, now;

		spool_id_new(id, &created);
		clock_gettime(CLOCK_REALTIME, &now);
		struct message batch = m;
		char *hdr = NULL;
		if (cfg->received_header) {
			hdr = received_header(mj, s, id, rcpt);
			batch.wire_size += strlen(hdr);
		}
		ingest_message_stream(&ic, &env, &batch, id, &created, &now, &st);
		bool relay = relay_hosts || relay_from || (e && e->relay_to);
		if (st.kind == REPORT_FEEDBACK) {
			was_report = true;
			relay = disposition_relays(e->log_arf);
		} else if (st.kind == REPORT_BOUNCE) {
			was_report = true;
			relay = disposition_relays(e->log_oob);
		}
		if (relay) {
			struct relay_request rq = { .id = id, .sender = mj->sender,
			    .recipient = rcpt, .listener = s->local,
			    .created = &created, .trace = hdr, .data = mj->data,
			    .len = mj->len, .meta = me.meta,
			    .headers = me.headers, .entry = e,
			    .next_hop = cfg->next_hop };
			int rc = relay_spool(srv->relay, rb, &rq);
			if (rc < 0)
				spool_failed = true;
			else if (rc == 0)
				accepted = true;
			else
				log_msg(LOG_WARN, s->id, "event=relay-no-next-hop "
				    "id=%s rcpt=%s", id,
				    log_escape(rcpt, strlen(rcpt), 200));
		}
		free(hdr);
		json_decref(me.meta);
		json_decref(me.headers);
		me.meta = me.headers = NULL;
		if ((ic.log_arf || ic.log_oob) && st.kind == REPORT_NONE)
			metrics_parse_failure();
		buf_printf(&mj->ids, "%s%s", mj->ids.len ? " " : "", id);
	}
	ingest_cache_free(&cache);
	classifier_unref(cls);
	message_free(&m);
	mj->capped = st.dropped;
	if (st.dropped > 0)
		log_msg(LOG_WARN, s->id, "event=records-capped "
		    "max_records_per_message=%zu kept_oob=%zu dropped_oob=%llu "
		    "rcpts=%zu", cfg->max_records_per_message, st.oob,
		    (unsigned long long)st.dropped, mj->nrcpts);
	mj->accepted = accepted;
	mj->was_report = was_report;

	if (spool_failed) {
		mj->code = 451;
		mj->enhanced = "4.3.0";
		mj->text = xstrdup("Error: local error writing the spool");
		msg_job_settle(mj);
	} else {
		/*
		 * The reply waits for the sync, but no thread does: the log
		 * calls msg_job_durable() back and this worker moves on.
		 */
		pool_defer();
		mj->waiter.done = msg_job_durable;
		int rc = logfile_batch_commit_async(srv->log, me.batch,
		    &mj->waiter);
		/* From here on mj may be finished and freed: hands off. */
		if (rc <= 0)
			msg_job_durable(&mj->waiter, rc == 0 ? 0 : errno);
	}
	logfile_batch_free(me.batch);
}

static void
msg_job_free(struct msg_job *mj)
{
	free(mj->data);
	free(mj->sender);
	for (size_t i = 0; i < mj->nrcpts; i++)
		free(mj->rcpts[i]);
	free(mj->rcpts);
	free(mj->text);
	buf_free(&mj->fbtypes);
	free(mj);
}

static void
msg_job_done(struct job *j)
{
	struct msg_job *mj = (struct msg_job *)j;
	struct smtp_session *s = mj->s;

	s->busy = false;
	if (s->gone) {
		msg_job_free(mj);
		session_free(s);
		return;
	}
	log_msg(LOG_INFO, s->id, "event=message code=%d reply=%s", mj->code,
	    log_escape(mj->text, strlen(mj->text), 200));
	s->srv->messages++;
	metrics_message(mj->code < 300 ? MSG_ACCEPTED : mj->code < 500 ?
	    MSG_TEMPFAILED : MSG_REJECTED);
	session_enter(s, S_HELO);
	s->batching = true;
	session_reply(s, mj->code, mj->enhanced, "%s", mj->text);
	msg_job_free(mj);
	if (s->srv->draining && s->state != S_CLOSING)
		session_reply_close(s, 421, "4.3.2", "%s Service shutting down",
		    s->set->cfg->hostname);
	if (s->state != S_CLOSING)
		session_process(s);
	s->batching = false;
	session_flush(s);
	session_read_room(s);
}

/* ---- input ---- */

/*
 * The client talked before our greeting (Postfix's PREGREET): it does not
 * wait for replies, so nothing it sends can be trusted to be in step.
 * Logs the first 100 bytes, escaped.
 */
static void
session_pregreet(struct smtp_session *s, const char *peek, size_t n)
{
	log_msg(LOG_INFO, s->id, "event=pregreet input=%s",
	    log_escape(peek, n, 100));
	session_reply_close(s, 554, "5.5.0", "%s",
	    "Error: SMTP protocol synchronization");
}

/*
 * Send the greeting, unless input is already waiting: in the input
 * buffer (read during greet_wait) or in the socket (looked at without
 * reading).
 */
static void
session_greet(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t n = evbuffer_get_length(in);
	char peek[100];
	ssize_t got;

	if (n > 0) {
		session_pregreet(s, (const char *)evbuffer_pullup(in,
		    n < 100 ? (ssize_t)n : 100), n);
		return;
	}
	got = recv(bufferevent_getfd(s->bev), peek, sizeof(peek),
	    MSG_PEEK | MSG_DONTWAIT);
	if (got > 0) {
		session_pregreet(s, peek, (size_t)got);
		return;
	}
	session_enter(s, S_INIT);
	session_reply(s, 220, NULL, "%s %s", s->set->cfg->hostname,
	    s->set->cfg->banner);
}

/*
 * Process whatever complete input there is. Command lines end only in
 * CRLF; a bare LF, a CR inside, a NUL or an over-long line ends the
 * session, because the command boundary is then unknown.
 */
static void
session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	const struct config *cfg = s->set->cfg;

	while (!s->gone && s->state != S_CLOSING && s->state != S_BUSY &&
	    !s->handshaking) {
		/*
		 * A client that sends commands without reading the replies
		 * must not make us buffer them without end: wait until they
		 * are written (write_cb).
		 */
		if (session_output_pending(s) > OUTPUT_LIMIT)
			session_flush(s);	/* what the socket takes now */
		if (session_output_pending(s) > OUTPUT_LIMIT) {
			/* session_flush handed the rest to the bufferevent. */
			s->out_paused = true;
			session_read(s, false);
			return;
		}
		if (s->state == S_PREGREET) {
			size_t n = evbuffer_get_length(in);
			if (n > 0)
				session_pregreet(s, (const char *)evbuffer_pullup(in,
				    n < 100 ? (ssize_t)n : 100), n);
			return;
		}
		if (s->state == S_DATA) {
			data_read(s);
			if (s->state == S_DATA)
				return;
			continue;
		}
		size_t avail = evbuffer_get_length(in), eol_len = 0;
		if (avail == 0)
			return;
		struct evbuffer_ptr pos = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_LF);
		if (pos.pos < 0) {
			if (avail > cfg->max_line_length)
				session_reply_close(s, 500, "5.5.2", "%s",
				    "Error: line too long");
			return;
		}
		size_t n = (size_t)pos.pos + 1;
		if (n > cfg->max_line_length) {
			session_reply_close(s, 500, "5.5.2", "%s",
			    "Error: line too long");
			return;
		}
		char *line = xmalloc(n + 1);
		evbuffer_remove(in, line, n);
		line[n] = '\0';
		if (n < 2 || line[n - 2] != '\r') {
			free(line);
			session_reply_close(s, 550, "5.5.2", "%s",
			    "Error: bare <LF> received");
			return;
		}
		line[n - 2] = '\0';
		if (memchr(line, '\r', n - 2) != NULL) {
			free(line);
			session_reply_close(s, 500, "5.5.2", "%s",
			    "Error: bare <CR> received");
			return;
		}
		if (strlen(line) != n - 2) {
			free(line);
			session_reply_close(s, 500, "5.5.2", "%s",
			    "Error: NUL character in command");
			return;
		}
		if (!utf8_valid(line, n - 2)) {
			free(s->cmdline);
			s->cmdline = utf8_lossy(line, n - 2);
			free(line);
			session_reply(s, 500, "5.5.2", "Error: bad UTF-8 syntax");
			continue;
		}
		session_command(s, line);
		free(line);
	}
}

/* session_process, with the replies to everything read in one write. */
static void
session_process_batched(struct smtp_session *s)
{
	s->batching = true;
	session_process(s);
	s->batching = false;
	session_flush(s);
	session_read_room(s);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	session_process_batched(s);
}

/*
 * Plain connections are read by oobd, not by the bufferevent: libevent
 * asks the kernel how many bytes wait (ioctl FIONREAD) before each read,
 * a system call per command round trip that this path does without. The
 * bytes go to the bufferevent's input buffer, so all that reads them is
 * the same; the input is bounded as the bufferevent's read watermark
 * would bound it, and the idle timeout is the event's. After STARTTLS
 * the TLS filter reads through the bufferevent instead.
 */

/* Most input oobd holds for a client before it stops reading. */
static size_t
read_limit(const struct smtp_session *s)
{
	size_t line = s->set->cfg->max_line_length;

	return line > DATA_CHUNK ? line * 2 : DATA_CHUNK * 2;
}

static void
session_read(struct smtp_session *s, bool on)
{
	if (s->gone)
		return;
	if (s->rev == NULL) {
		if (on)
			bufferevent_enable(s->bev, EV_READ);
		else
			bufferevent_disable(s->bev, EV_READ);
		return;
	}
	if (on == s->rd_on)
		return;
	s->rd_on = on;
	if (!on)
		event_del(s->rev);
	else if (!s->rd_full)
		event_add(s->rev, &s->idle);
}

/* Input was consumed: reading paused at the limit may go on. */
static void
session_read_room(struct smtp_session *s)
{
	if (s->gone || s->rev == NULL || !s->rd_full ||
	    evbuffer_get_length(bufferevent_get_input(s->bev)) >=
	    read_limit(s))
		return;
	s->rd_full = false;
	if (s->rd_on)
		event_add(s->rev, &s->idle);
}

/* The end of input, a read error or the idle timeout, as libevent reports them. */
static void
plain_read_stop(struct smtp_session *s, short what)
{
	int e = errno;

	event_del(s->rev);
	s->rd_on = false;
	errno = e;	/* for event_cb's error text */
	event_cb(s->bev, (short)(BEV_EVENT_READING | what), s);
}

static void
plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v;
	size_t have = evbuffer_get_length(in), limit = read_limit(s), want;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		plain_read_stop(s, BEV_EVENT_TIMEOUT);
		return;
	}
	if (have >= limit) {
		s->rd_full = true;
		event_del(s->rev);
		return;
	}
	want = s->rd_size < limit - have ? s->rd_size : limit - have;
	/* The bufferevent keeps its input's end frozen but for its own reads. */
	evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) != 1) {
		evbuffer_freeze(in, 0);
		errno = ENOMEM;
		plain_read_stop(s, BEV_EVENT_ERROR);
		return;
	}
	n = read(fd, v.iov_base, want);
	if (n > 0) {
		v.iov_len = (size_t)n;
		evbuffer_commit_space(in, &v, 1);
	}
	evbuffer_freeze(in, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n <= 0) {
		plain_read_stop(s, n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR);
		return;
	}
	/* A read that filled its room: the next one may take more at once. */
	if ((size_t)n == want)
		s->rd_size = s->rd_size * 2 < DATA_CHUNK ? s->rd_size * 2 :
		    DATA_CHUNK;
	else
		s->rd_size = READ_MIN;
	read_cb(s->bev, s);
}

static void
tls_flushed(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct smtp_session *s = arg;

	(void)info;
	/* Not freed here: the buffer's own bufferevent is running. */
	if (evbuffer_get_length(buf) == 0)
		event_active(s->timer, EV_TIMEOUT, 1);
}

/*
 * Close once every byte is out. With TLS the filter hands its records to
 * the socket bufferevent, which may still hold them (the last reply, an
 * alert): wait for that buffer to drain, at most 10 seconds.
 */
static void
session_close_flushed(struct smtp_session *s)
{
	struct bufferevent *under = s->gone ? NULL :
	    bufferevent_get_underlying(s->bev);
	struct timeval tv = { 10, 0 };

	if (s->busy)
		return;
	if (s->tls && under != NULL && s->flush_cb == NULL) {
		/* close_notify, so the client sees a clean end. */
		SSL_shutdown(bufferevent_openssl_get_ssl(s->bev));
	}
	if (under == NULL ||
	    evbuffer_get_length(bufferevent_get_output(under)) == 0) {
		session_free(s);
		return;
	}
	session_enter(s, S_CLOSING);
	if (s->flush_cb != NULL)
		return;
	session_read(s, false);
	s->flush_cb = evbuffer_add_cb(bufferevent_get_output(under),
	    tls_flushed, s);
	evtimer_add(s->timer, &tv);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->state == S_CLOSING) {
		/*
		 * libevent may run this callback late (deferred), after more
		 * replies were queued: close only once they are all out.
		 */
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
			session_close_flushed(s);
		return;
	}
	if (!s->tls && !s->direct && evbuffer_get_length(
	    bufferevent_get_output(s->bev)) == 0) {
		bufferevent_disable(s->bev, EV_WRITE);
		s->direct = true;
	}
	if (s->out_paused && s->state != S_BUSY) {
		s->out_paused = false;
		session_read(s, true);
		session_process_batched(s);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if ((what & BEV_EVENT_CONNECTED) && s->handshaking) {
		tls_established(s);
		return;
	}
	if (s->handshaking && (what & (BEV_EVENT_TIMEOUT | BEV_EVENT_ERROR |
	    BEV_EVENT_EOF))) {
		log_msg(LOG_INFO, s->id, "event=tls-failed%s",
		    (what & BEV_EVENT_TIMEOUT) ? " reason=timeout" : "");
		s->handshaking = false;
		if (what & (BEV_EVENT_TIMEOUT | BEV_EVENT_EOF))
			session_free(s);
		else
			session_close_flushed(s);	/* send the alert */
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->busy) {
		/* The client waits for our reply: not idle. */
		session_read(s, true);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->state != S_CLOSING) {
		log_msg(LOG_INFO, s->id, "event=timeout phase=%s",
		    state_names[s->state]);
		session_reply_close(s, 421, "4.4.2", "%s Error: timeout exceeded",
		    s->set->cfg->hostname);
		return;
	}
	unsigned long tls_err = s->tls ? bufferevent_get_openssl_error(bev) : 0;
	char why[160] = "";
	if (tls_err != 0) {
		char e[120];
		ERR_error_string_n(tls_err, e, sizeof(e));
		snprintf(why, sizeof(why), " tls_error=%s", log_escape(e,
		    strlen(e), sizeof(e)));
	}
	else if (what & BEV_EVENT_ERROR)
		snprintf(why, sizeof(why), " error=\"%s\"",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	log_msg(LOG_INFO, s->id, "event=disconnect state=%s%s%s",
	    state_names[s->state], (what & BEV_EVENT_ERROR) ? " reason=error" : "",
	    why);
	session_free(s);
}

/* ---- life cycle ---- */

/*
 * Release the connection; the session itself lives on while a worker
 * job still points at it, and is freed when that job is done.
 */
static void
session_free(struct smtp_session *s)
{
	if (!s->gone) {
		s->gone = true;
		if (s->flush_cb != NULL)
			evbuffer_remove_cb_entry(bufferevent_get_output(
			    bufferevent_get_underlying(s->bev)), s->flush_cb);
		if (s->rev != NULL)
			event_free(s->rev);
		s->rev = NULL;
		bufferevent_free(s->bev);
		s->bev = NULL;
		if (s->counted)
			server_conn_del(s->srv, s->ip);
		s->counted = false;
	}
	if (s->busy)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		s->srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	event_free(s->timer);
	event_free(s->deadline);
	evbuffer_free(s->out);
	tx_free(s->tx);
	free(s->ehlo);
	free(s->cmdline);
	free(s->tls_cipher);
	free(s->tls_version);
	for (size_t i = 0; i < s->ntls_subject; i++)
		free(s->tls_subject[i]);
	free(s->tls_subject);
	free(s->local);
	json_decref(s->meta);
	settings_unref(s->set);
	metrics_connection_close();
	free(s);
}

void
smtp_session_start(struct server *srv, struct listener *l, evutil_socket_t fd,
    const struct sockaddr *peer, int peerlen)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	const struct config *cfg = srv->cfg;
	struct timeval idle;
	const char *why = NULL;

	s->srv = srv;
	s->set = settings_ref(srv->cur);
	s->listener = l;
	uuid4_new(s->id);
	memcpy(&s->peer, peer, (size_t)peerlen < sizeof(s->peer) ?
	    (size_t)peerlen : sizeof(s->peer));
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
		inet_ntop(AF_INET, &sin->sin_addr, s->ip, sizeof(s->ip));
		s->port = ntohs(sin->sin_port);
	} else if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)peer;
		inet_ntop(AF_INET6, &sin6->sin6_addr, s->ip, sizeof(s->ip));
		s->port = ntohs(sin6->sin6_port);
	} else
		strcpy(s->ip, "0.0.0.0");
	/* KumoMTA names the listener by the connection's local address. */
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	/* Only an IP socket has an "ip:port" name (not a socketpair). */
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0 &&
	    (local.ss_family == AF_INET || local.ss_family == AF_INET6))
		s->local = sockaddr_name((struct sockaddr *)&local);
	else
		s->local = xstrdup(l->name);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->out = evbuffer_new();
	s->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, plain_read_cb,
	    s);
	if (s->bev == NULL || s->out == NULL || s->rev == NULL) {
		if (s->rev != NULL)
			event_free(s->rev);
		if (s->out != NULL)
			evbuffer_free(s->out);
		if (s->bev != NULL)
			bufferevent_free(s->bev);	/* closes fd */
		else
			evutil_closesocket(fd);
		settings_unref(s->set);
		free(s->local);
		free(s);
		return;
	}
	s->timer = evtimer_new(srv->base, session_timer, s);
	s->deadline = evtimer_new(srv->base, session_deadline, s);
	s->next = srv->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	srv->sessions = s;
	metrics_connection_open();
	s->meta = json_object();
	json_object_set_new(s->meta, "reception_protocol", json_string("ESMTP"));
	char *from = s->peer.ss_family == AF_INET6 ?
	    xasprintf("[%s]:%d", s->ip, s->port) : xasprintf("%s:%d", s->ip, s->port);
	json_object_set_new(s->meta, "received_from", json_string(from));
	free(from);
	json_object_set_new(s->meta, "received_via", json_string(s->local));
	json_object_set_new(s->meta, "hostname", json_string(cfg->hostname));
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	idle.tv_sec = (time_t)cfg->idle_timeout;
	idle.tv_usec = (suseconds_t)((cfg->idle_timeout - (double)idle.tv_sec) * 1e6);
	bufferevent_set_timeouts(s->bev, &idle, &idle);
	s->idle = idle;
	s->rd_size = READ_MIN;
	/* Bound what one client can make us buffer. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, read_limit(s));
	log_msg(LOG_INFO, s->id, "event=connect addr=%s port=%d via=%s", s->ip,
	    s->port, l->name);

	if (!server_conn_add(srv, s->ip, &why)) {
		session_reply_close(s, 421, "4.7.0", "%s", why);
		return;
	}
	s->counted = true;
	session_deadline_arm(s, cfg->command_phase_timeout);
	/* A new socket bufferevent has writing on: replies go direct. */
	bufferevent_disable(s->bev, EV_WRITE);
	s->direct = true;
	session_read(s, true);
	if (cfg->greet_wait > 0) {
		struct timeval tv;
		tv.tv_sec = (time_t)cfg->greet_wait;
		tv.tv_usec = (suseconds_t)((cfg->greet_wait -
		    (double)tv.tv_sec) * 1e6);
		evtimer_add(s->timer, &tv);
		return;
	}
	session_greet(s);
}

void
smtp_session_drain(struct server *srv)
{
	struct smtp_session *s, *next;

	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->gone || s->busy || s->state == S_CLOSING ||
		    s->state == S_DATA)
			continue;
		if (s->handshaking) {
			log_msg(LOG_INFO, s->id, "event=disconnect state=tls "
			    "reason=shutdown");
			session_free(s);
			continue;
		}
		log_msg(LOG_INFO, s->id, "event=shutdown state=%s",
		    state_names[s->state]);
		session_reply_close(s, 421, "4.3.2", "%s Service shutting down",
		    s->set->cfg->hostname);
	}
}

void
smtp_session_free_all(struct server *srv)
{
	while (srv->sessions != NULL) {
		srv->sessions->busy = false;
		session_free(srv->sessions);
	}
}
