/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_client.c - one SMTP connection from oobd to a next hop, on the
 * daemon's event loop: greeting, EHLO (HELO when EHLO is refused),
 * opportunistic STARTTLS, then one transaction per message due for the
 * hop (MAIL, RCPT and DATA sent together with PIPELINING), RSET after a
 * refusal, QUIT when nothing is left. Every reply is awaited under a
 * timeout. Each message's outcome goes back to relay.c as a reply.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "relay_int.h"
#include "server.h"
#include "spool.h"
#include "util.h"

/* Longest reply line accepted from a next hop. */
#define REPLY_LINE_MAX	4096

static void conn_next(struct conn *c);

static void
conn_send(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
conn_send(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

/* The read and write timeouts from now on. */
static void
conn_timeouts(struct conn *c, double secs)
{
	struct timeval tv;

	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void
conn_expect(struct conn *c, enum expect x)
{
	if (c->nq >= EXPECT_MAX)
		fatalx("relay: too many outstanding replies");
	c->q[c->nq++] = x;
}

static void
tx_clear(struct conn *c)
{
	c->msg = NULL;
	free(c->text);
	c->text = NULL;
	free(c->cmd_mail);
	free(c->cmd_rcpt);
	c->cmd_mail = c->cmd_rcpt = NULL;
	free(c->fail.content);
	free(c->fail.command);
	memset(&c->fail, 0, sizeof(c->fail));
	c->discard = false;
}

/*
 * The connection is gone or unusable. The message of a transaction in
 * progress gets a TransientFailure; when the connection never became
 * usable, so does every message waiting for this hop.
 */
static void
conn_broken(struct conn *c, const char *why)
{
	struct hop *h = c->hop;
	bool usable = c->usable;
	struct relay_msg *m;

	log_msg(LOG_INFO, c->session, "event=relay-connection hop=%s "
	    "reason=%s", h->name, log_escape(why, strlen(why), 200));
	if (c->msg != NULL) {
		m = c->msg;
		c->msg = NULL;
		relay_msg_fail(m, 400, NULL, c, "oobd internal: %s", why);
	}
	if (!usable)
		while ((m = relay_ready_pop(h)) != NULL)
			relay_msg_fail(m, 400, NULL, c, "oobd internal: %s", why);
	relay_conn_free(c);
	if (usable)
		relay_hop_kick(h);
}

/* Close after QUIT or when idle; nothing is lost. */
static void
conn_done(struct conn *c)
{
	struct hop *h = c->hop;

	relay_conn_free(c);
	relay_hop_kick(h);
}

void
relay_conn_free(struct conn *c)
{
	c->r->conns_freed++;
	if (c->hop != NULL && c->hop->conn == c)
		c->hop->conn = NULL;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	tx_clear(c);
	buf_free(&c->reply);
	free(c->source);
	free(c->tls_cipher);
	free(c->tls_version);
	free(c);
}

/* Parse a finished reply into resp, KumoMTA's way (client_types.rs). */
static void
reply_parse(const struct conn *c, const char *command, struct response *resp)
{
	const char *text = c->reply.data ? c->reply.data : "";
	struct buf out = { 0 };
	unsigned cls, sub, det;
	int n = 0;
	char prefix[40] = "";

	memset(resp, 0, sizeof(*resp));
	resp->code = c->reply_code;
	if (sscanf(text, "%u.%u.%u %n", &cls, &sub, &det, &n) == 3 && n > 0 &&
	    (cls == 2 || cls == 4 || cls == 5) && text[n - 1] == ' ' &&
	    strspn(text, "0123456789.") == (size_t)(n - 1)) {
		resp->has_enhanced = true;
		resp->cls = cls;
		resp->subject = sub;
		resp->detail = det;
		snprintf(prefix, sizeof(prefix), "%u.%u.%u ", cls, sub, det);
		text += n;
	}
	/* A continuation line repeating the enhanced code loses it. */
	for (const char *line = text; line != NULL; ) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (line != text) {
			buf_putc(&out, '\n');
			if (prefix[0] && len >= strlen(prefix) &&
			    strncmp(line, prefix, strlen(prefix)) == 0) {
				line += strlen(prefix);
				len -= strlen(prefix);
			}
		}
		buf_append(&out, line, len);
		line = nl ? nl + 1 : NULL;
	}
	resp->content = out.data ? buf_steal(&out) : xstrdup("");
	resp->command = command ? xstrdup(command) : NULL;
}

static void
response_free(struct response *r)
{
	free(r->content);
	free(r->command);
	memset(r, 0, sizeof(*r));
}

static bool
needs_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * The message as DATA content: every line ending (CRLF, or a bare LF or
 * CR) written as CRLF, a leading "." doubled, a final CRLF added if
 * missing, then the terminating ".".
 */
static void
add_data(struct evbuffer *out, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		while (j < n && p[j] != '\r' && p[j] != '\n')
			j++;
		/*
		 * Dot-stuffing, also of a line whose first byte after NULs is
		 * a dot: a next hop that strips NULs before it looks for the
		 * end would otherwise take "\0." for it. One that keeps them
		 * removes the added dot and gets the line unchanged.
		 */
		size_t k = i;
		while (k < j && p[k] == '\0')
			k++;
		if (k < j && p[k] == '.')
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, p + i, j - i);
		evbuffer_add(out, "\r\n", 2);
		if (j < n && p[j] == '\r' && j + 1 < n && p[j + 1] == '\n')
			j++;
		i = j + 1;
	}
	evbuffer_add(out, ".\r\n", 3);
}

/* Start the next message's transaction, or QUIT when there is none. */
static void
conn_next(struct conn *c)
{
	struct relay_msg *m;
	struct hop *h = c->hop;

	c->usable = true;
	while ((m = relay_ready_pop(h)) != NULL) {
		size_t len;
		char *text = spool_read_message(c->r->spool, m->e->id, &len);
		if (text == NULL) {
			log_msg(LOG_ERR, c->session, "event=spool-read-failed "
			    "id=%s error=\"%s\"", m->e->id, strerror(errno));
			relay_msg_free(m);
			continue;
		}
		bool utf8 = needs_8bit(m->e->sender, strlen(m->e->sender)) ||
		    needs_8bit(m->e->recipient, strlen(m->e->recipient));
		if (utf8 && !c->smtputf8) {
			free(text);
			relay_msg_fail(m, 553, "5.6.7", c, "oobd: the next hop "
			    "does not offer SMTPUTF8, which this message's "
			    "addresses need");
			continue;
		}
		if (c->size_max > 0 && len > c->size_max) {
			free(text);
			relay_msg_fail(m, 552, "5.3.4", c, "oobd: the message "
			    "(%zu bytes) exceeds the next hop's SIZE limit of "
			    "%llu bytes", len, (unsigned long long)c->size_max);
			continue;
		}
		struct buf b = { 0 };
		buf_printf(&b, "MAIL FROM:<%s>", m->e->sender);
		if (c->esmtp && c->has_size_ext)
			buf_printf(&b, " SIZE=%zu", len);
		if (c->eightbit && needs_8bit(text, len))
			buf_puts(&b, " BODY=8BITMIME");
		if (utf8)
			buf_puts(&b, " SMTPUTF8");
		buf_puts(&b, "\r\n");
		c->msg = m;
		c->text = text;
		c->text_len = len;
		c->cmd_mail = buf_steal(&b);
		c->cmd_rcpt = xasprintf("RCPT TO:<%s>\r\n", m->e->recipient);
		conn_send(c, "%s", c->cmd_mail);
		conn_expect(c, X_MAIL);
		if (c->pipelining) {
			conn_send(c, "%s", c->cmd_rcpt);
			conn_expect(c, X_RCPT);
			conn_send(c, "DATA\r\n");
			conn_expect(c, X_DATA);
		}
		return;
	}
	conn_send(c, "QUIT\r\n");
	conn_expect(c, X_QUIT);
}

/* Remember the first refusal of the transaction. */
static void
tx_refused(struct conn *c, const char *command)
{
	if (c->fail.code != 0)
		return;
	reply_parse(c, command, &c->fail);
}

/* The transaction was refused before the text: its outcome, then RSET. */
static void
tx_finish_refused(struct conn *c)
{
	struct relay_msg *m = c->msg;

	c->msg = NULL;
	relay_msg_outcome(m, &c->fail, c);
	tx_clear(c);
	conn_send(c, "RSET\r\n");
	conn_expect(c, X_RSET);
}

static void
parse_ehlo(struct conn *c)
{
	const char *p = c->reply.data ? c->reply.data : "";
	const char *nl;

	c->esmtp = true;
	c->pipelining = c->starttls = c->eightbit = c->smtputf8 = false;
	c->has_size_ext = false;
	c->size_max = 0;
	/* The first line is the greeting name; keywords follow. */
	while ((nl = strchr(p, '\n')) != NULL) {
		char kw[32];
		unsigned long long v = 0;
		p = nl + 1;
		size_t n = strcspn(p, " \n");
		if (n == 0 || n >= sizeof(kw))
			continue;
		for (size_t i = 0; i < n; i++)
			kw[i] = (char)((p[i] >= 'a' && p[i] <= 'z') ? p[i] - 32 : p[i]);
		kw[n] = '\0';
		if (strcmp(kw, "PIPELINING") == 0)
			c->pipelining = true;
		else if (strcmp(kw, "STARTTLS") == 0)
			c->starttls = true;
		else if (strcmp(kw, "8BITMIME") == 0)
			c->eightbit = true;
		else if (strcmp(kw, "SMTPUTF8") == 0)
			c->smtputf8 = true;
		else if (strcmp(kw, "SIZE") == 0) {
			c->has_size_ext = true;
			if (sscanf(p + n, " %llu", &v) == 1)
				c->size_max = v;
		}
	}
}

static void relay_read_cb(struct bufferevent *bev, void *arg);
static void relay_write_cb(struct bufferevent *bev, void *arg);
static void relay_event_cb(struct bufferevent *bev, short what, void *arg);

static void
start_tls(struct conn *c)
{
	SSL *ssl = SSL_new(c->r->tls);
	struct bufferevent *tls;

	if (ssl == NULL) {
		conn_broken(c, "cannot create a TLS session");
		return;
	}
	if (!c->hop->literal)
		SSL_set_tlsext_host_name(ssl, c->hop->host);
	if (c->r->srv->cfg->tls_verify) {
		if (c->hop->literal)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
			    c->hop->host);
		else
			SSL_set1_host(ssl, c->hop->host);
	}
	/* Nothing the hop sent after its 220 may count as TLS data. */
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	tls = bufferevent_openssl_filter_new(c->r->srv->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		conn_broken(c, "cannot start TLS");
		return;
	}
	c->bev = tls;
	c->handshaking = true;
	conn_timeouts(c, c->r->srv->cfg->connect_timeout);
	bufferevent_setcb(tls, relay_read_cb, relay_write_cb, relay_event_cb, c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* The peer's greeting or HELO reply refused us: the connection is broken. */
static void
conn_refused(struct conn *c)
{
	struct response resp;

	reply_parse(c, NULL, &resp);
	char *why = response_single_line(&resp);
	response_free(&resp);
	conn_broken(c, why);
	free(why);
}

/* One whole reply has arrived: act on what it answers. */
static void
conn_reply(struct conn *c)
{
	enum expect x = c->q[0];
	int code = c->reply_code;
	struct response resp;

	memmove(c->q, c->q + 1, (--c->nq) * sizeof(c->q[0]));
	switch (x) {
	case X_GREETING:
		if (code / 100 != 2) {
			conn_refused(c);
			return;
		}
		conn_timeouts(c, c->r->srv->cfg->command_timeout);
		conn_send(c, "EHLO %s\r\n", c->r->srv->cfg->hostname);
		conn_expect(c, X_EHLO);
		return;
	case X_EHLO:
		if (code / 100 == 2) {
			parse_ehlo(c);
			if (c->starttls && !c->tls && !c->hop->no_tls &&
			    c->r->tls != NULL) {
				conn_send(c, "STARTTLS\r\n");
				conn_expect(c, X_STARTTLS);
				return;
			}
			conn_next(c);
			return;
		}
		conn_send(c, "HELO %s\r\n", c->r->srv->cfg->hostname);
		conn_expect(c, X_HELO);
		return;
	case X_HELO:
		if (code / 100 != 2) {
			conn_refused(c);
			return;
		}
		c->esmtp = false;
		conn_next(c);
		return;
	case X_STARTTLS:
		if (code == 220) {
			start_tls(c);
			return;
		}
		conn_next(c);		/* opportunistic: go on in the clear */
		return;
	case X_MAIL:
		if (code / 100 != 2)
			tx_refused(c, c->cmd_mail);
		if (!c->pipelining) {
			if (c->fail.code != 0)
				tx_finish_refused(c);
			else {
				conn_send(c, "%s", c->cmd_rcpt);
				conn_expect(c, X_RCPT);
			}
		}
		return;
	case X_RCPT:
		if (code / 100 != 2)
			tx_refused(c, c->cmd_rcpt);
		if (!c->pipelining) {
			if (c->fail.code != 0)
				tx_finish_refused(c);
			else {
				conn_send(c, "DATA\r\n");
				conn_expect(c, X_DATA);
			}
		}
		return;
	case X_DATA:
		if (code == 354) {
			if (c->fail.code != 0) {
				/* Refused earlier yet asked for text: end it empty. */
				c->discard = true;
				conn_send(c, ".\r\n");
			} else
				add_data(bufferevent_get_output(c->bev), c->text,
				    c->text_len);
			conn_expect(c, X_DOT);
			return;
		}
		tx_refused(c, "DATA\r\n");
		tx_finish_refused(c);
		return;
	case X_DOT: {
		if (c->discard) {
			tx_finish_refused(c);
			return;
		}
		struct relay_msg *m = c->msg;
		reply_parse(c, ".\r\n", &resp);
		c->msg = NULL;
		tx_clear(c);
		relay_msg_outcome(m, &resp, c);
		response_free(&resp);
		conn_next(c);
		return;
	}
	case X_RSET:
		if (code / 100 != 2) {
			conn_done(c);
			return;
		}
		conn_next(c);
		return;
	case X_QUIT:
		conn_done(c);
		return;
	}
}

static void
relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX)
				conn_broken(c, "reply line too long");
			return;
		}
		if (c->nq == 0) {
			free(line);
			conn_broken(c, "reply without a command");
			return;
		}
		if (n < 3 || n > REPLY_LINE_MAX || line[0] < '2' ||
		    line[0] > '5' || line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' ||
		    (n > 3 && line[3] != ' ' && line[3] != '-') ||
		    memchr(line, '\0', n) != NULL) {
			char *why = xasprintf("malformed reply %s",
			    log_escape(line, n, 100));
			free(line);
			conn_broken(c, why);
			free(why);
			return;
		}
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		if (c->reply_lines > 0 && code != c->reply_code) {
			free(line);
			conn_broken(c, "reply lines with different codes");
			return;
		}
		if (c->reply_lines++ > 0)
			buf_putc(&c->reply, '\n');
		c->reply_code = code;
		buf_append(&c->reply, n > 4 ? line + 4 : "", n > 4 ? n - 4 : 0);
		bool more = n > 3 && line[3] == '-';
		free(line);
		if (c->reply.len > 64 * REPLY_LINE_MAX) {
			conn_broken(c, "reply too long");
			return;
		}
		if (more)
			continue;
		unsigned long gen = c->r->conns_freed;
		struct relay *r = c->r;
		conn_reply(c);
		/* The connection may be gone now. */
		if (r->conns_freed != gen)
			return;
		c->reply.len = 0;
		c->reply_lines = 0;
		if (c->reply.data != NULL)
			c->reply.data[0] = '\0';
	}
}

static void
relay_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)arg;
}

static char *
addr_text(const struct sockaddr *sa, char *ip, size_t iplen)
{
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    ip, (socklen_t)iplen);
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    ip, (socklen_t)iplen);
	return ip;
}

/* Whether the connected peer is one of our own listeners. */
static bool
conn_is_loop(struct conn *c, const struct sockaddr *peer)
{
	struct server *srv = c->r->srv;
	char **names = xcalloc(srv->nlisteners + 1, sizeof(*names));
	bool loop;

	for (size_t i = 0; i < srv->nlisteners; i++)
		names[i] = srv->listeners[i].name;
	loop = relay_own_listener(peer, (const char *const *)names,
	    srv->nlisteners);
	free(names);
	return loop;
}

static void
conn_connected(struct conn *c)
{
	struct sockaddr_storage peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0) {
		conn_broken(c, "connection lost");
		return;
	}
	c->connected = true;
	addr_text((struct sockaddr *)&peer, c->peer_ip, sizeof(c->peer_ip));
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		c->source = sockaddr_name((struct sockaddr *)&local);
	if (conn_is_loop(c, (struct sockaddr *)&peer)) {
		char *why = xasprintf("next hop %s is one of oobd's own "
		    "listeners (a mail loop)", c->hop->name);
		c->connected = false;
		conn_broken(c, why);
		free(why);
		return;
	}
	log_msg(LOG_DEBUG, c->session, "event=relay-connected hop=%s addr=%s",
	    c->hop->name, c->peer_ip);
}

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->handshaking) {
			SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
			c->handshaking = false;
			c->tls = true;
			c->tls_cipher = xstrdup(SSL_get_cipher_name(ssl));
			c->tls_version = xstrdup(SSL_get_version(ssl));
			conn_timeouts(c, c->r->srv->cfg->command_timeout);
			conn_send(c, "EHLO %s\r\n", c->r->srv->cfg->hostname);
			conn_expect(c, X_EHLO);
			return;
		}
		conn_connected(c);
		return;
	}
	if (c->handshaking) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		char buf[160] = "handshake failed";
		if (e != 0)
			ERR_error_string_n(e, buf, sizeof(buf));
		/*
		 * Without tls_verify TLS is opportunistic: nothing was sent
		 * yet, so connect again at once without STARTTLS rather than
		 * failing the messages. With it, a checked certificate is
		 * required: the messages wait for a retry.
		 */
		struct hop *h = c->hop;
		if (c->r->srv->cfg->tls_verify) {
			char *why = xasprintf("STARTTLS: %s", buf);
			conn_broken(c, why);
			free(why);
			return;
		}
		h->no_tls = true;
		log_msg(LOG_INFO, c->session, "event=relay-tls-failed hop=%s "
		    "error=%s action=retry-without-tls", h->name,
		    log_escape(buf, strlen(buf), 160));
		relay_conn_free(c);
		relay_hop_kick(h);
		return;
	}
	if (c->nq == 1 && c->q[0] == X_QUIT && c->msg == NULL) {
		conn_done(c);
		return;
	}
	char *why;
	if (what & BEV_EVENT_TIMEOUT)
		why = xasprintf("timeout waiting for %s",
		    !c->connected ? "the connection" : "a reply");
	else if (!c->connected) {
		int e = EVUTIL_SOCKET_ERROR();
		int dns = bufferevent_socket_get_dns_error(c->bev);
		why = dns != 0 ? xasprintf("failed to resolve %s: %s",
		    c->hop->host, evutil_gai_strerror(dns)) :
		    xasprintf("failed to connect to %s: %s", c->hop->name,
		    e != 0 ? evutil_socket_error_to_string(e) : "error");
	} else
		why = xstrdup((what & BEV_EVENT_EOF) ? "connection closed by "
		    "the next hop" : "connection error");
	conn_broken(c, why);
	free(why);
}

static void
conn_open(struct hop *h)
{
	struct relay *r = h->ready->r;
	struct conn *c = xcalloc(1, sizeof(*c));
	int rc;

	c->r = r;
	c->hop = h;
	h->conn = c;
	uuid4_new(c->session);
	c->bev = bufferevent_socket_new(r->srv->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		conn_broken(c, "cannot create a socket");
		return;
	}
	bufferevent_setcb(c->bev, relay_read_cb, relay_write_cb, relay_event_cb, c);
	/* The connection and the greeting: connect_timeout. */
	conn_timeouts(c, r->srv->cfg->connect_timeout);
	conn_expect(c, X_GREETING);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_msg(LOG_DEBUG, c->session, "event=relay-connect hop=%s", h->name);
	if (h->literal) {
		struct sockaddr_storage ss;
		socklen_t len;
		if (relay_numeric_addr(h->host, h->port, &ss, &len) != 0) {
			conn_broken(c, "bad next hop address");
			return;
		}
		rc = bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss,
		    (int)len);
	} else {
		if (r->dns == NULL)
			r->dns = evdns_base_new(r->srv->base,
			    EVDNS_BASE_INITIALIZE_NAMESERVERS |
			    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		rc = bufferevent_socket_connect_hostname(c->bev, r->dns,
		    AF_UNSPEC, h->host, (int)h->port);
	}
	if (rc != 0) {
		int e = EVUTIL_SOCKET_ERROR();
		char *why = xasprintf("failed to connect to %s: %s", h->name,
		    evutil_socket_error_to_string(e));
		conn_broken(c, why);
		free(why);
	}
}

void
relay_hop_kick(struct hop *h)
{
	if (h->conn == NULL && h->ready != NULL)
		conn_open(h);
}
