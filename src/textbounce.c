/* SPDX-License-Identifier: Apache-2.0 */
/*
 * textbounce.c - bounces that are not RFC 3464 reports: the plain-text
 * notices of qmail, Exim, OpenSMTPD, DragonFly, Gmail, Yahoo, Sendmail and
 * the many MTAs that imitate them.
 *
 * Such a notice has three parts: a preamble saying the message could not
 * be delivered, one paragraph per failed recipient (the address, then what
 * the remote server said), and a copy of the returned message after a
 * separator line. The decoder
 *   1. accepts only messages that announce themselves as bounces (a
 *      MAILER-DAEMON-like sender or a non-delivery subject, and a body that
 *      says so), so that ordinary mail and auto-replies never yield OOB
 *      records;
 *   2. takes the notice text (the first text/plain part outside any
 *      attached message) up to the separator;
 *   3. finds the recipients: addresses standing alone on a line
 *      ("<a@b>:", "  a@b", "a@b: 550 ..."), else the first address named
 *      in a "could not deliver to" sentence;
 *   4. reads each recipient's reply code, enhanced status code and reply
 *      text from the lines that follow it.
 * Fields map as for a DSN whose Diagnostic-Code carried that reply: code
 * and content from the reply ("550 5.1.1 text" gives 550 and "5.1.1
 * text"), 550 and the whole text when no code is found, the enhanced code
 * from the text or else derived from the reply class (status_derived).
 */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <gmime/gmime.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fields.h"
#include "kumoref.h"
#include "message.h"
#include "textbounce.h"
#include "util.h"

/* Bounds on what one notice can produce and how much of it is read. */
#define TB_MAX_RECIPIENTS	1000
#define TB_MAX_TEXT		(256 * 1024)
#define TB_MATCH_LIMIT		1000000

enum tb_re {
	RE_SENDER,	/* From: of a bounce */
	RE_SUBJECT,	/* Subject: of a bounce */
	RE_AUTOREPLY,	/* Subject: of a vacation notice */
	RE_BODY,	/* a sentence that only a bounce contains */
	RE_CUT,		/* the line before the returned message */
	RE_RCPT_LINE,	/* a line holding only a recipient (and its reply) */
	RE_RCPT_SENTENCE, /* "could not be delivered to <a@b>" */
	RE_REPLY,	/* a reply code where a server's words are quoted */
	RE_REPLY_LINE,	/* a reply code at the start of a line */
	RE_STATUS,	/* an enhanced status code */
	RE_TEMPORARY,	/* the notice says delivery is still being tried */
	RE_COUNT
};

static const char *const patterns[RE_COUNT] = {
	[RE_SENDER] =
	    "(?i)mailer[-_ ]?daemon|postmaster|mail ?delivery ?(sub)?system|"
	    "mail ?administrator|mail ?delivery|double-bounce|"
	    "mailadmin|mail router|internet mail delivery|"
	    "mail transport system|smtp ?gateway|post ?office",
	[RE_SUBJECT] =
	    "(?i)undeliver|undelivered|non[- ]?deliver|delivery ?(status "
	    "notification|failure|failed|notification|problem|error|report)|"
	    "failure notice|failed mail|mail (delivery )?fail|returned mail|"
	    "mail ?system error|could not (be )?deliver|can'?t deliver|"
	    "not delivered|returned to sender|delivery has failed|"
	    "message (not )?(delivered|rejected)|mail error|"
	    "error sending|delivery unsuccessful|unzustellbar|"
	    "unable to deliver|bounce|permanent error|failure delivery|"
	    "warning: could not send|rejected",
	[RE_AUTOREPLY] =
	    "(?i)out of (the )?office|auto(matic)?[- ]?(reply|response|"
	    "antwort)|vacation|abwesen|away from",
	[RE_BODY] =
	    "(?i)could not be delivered|couldn'?t be delivered|"
	    "was not delivered|wasn'?t able to deliver|unable to deliver|"
	    "not able to deliver|delivery (to the following|has failed|"
	    "failed|to .{1,200} failed)|failed permanently|"
	    "permanent (fatal )?error|error (has )?occurred while|"
	    "error delivering|could not deliver|cannot be delivered|"
	    "can ?not deliver|undeliverable|undelivered|"
	    "following (address(es)?|recipients?)( had)? (failed|"
	    "permanent|errors)|following (address|recipient)|"
	    "delivery status notification|did not reach|"
	    "rejected (by|your)|returned to (the )?sender|"
	    "message (was )?rejected|failed to deliver|delivery failure|"
	    "mailbox (is )?(full|unavailable|not found)|user unknown|"
	    "unknown user|no such (user|recipient|mailbox)|"
	    "remote host said|said: [45][0-9][0-9]",
	[RE_CUT] =
	    /* a separator line that names the returned message */
	    "(?im)^[ \\t]*(?:-{2,}|={2,}|_{2,}|\\*{2,})[^\\n]*?(?:copy|original|"
	    "returned|undelivered|unsent|message (?:header|text|body)|"
	    "headers? (?:of|follow))|"
	    /* or a sentence that announces it */
	    "^[ \\t]*(?:this is a copy of|below this line|below is a copy|"
	    "(?:the )?original message (?:follows|headers|text|is attached|"
	    "was attached)|(?:the )?returned (?:mail|message) (?:follows|below)|"
	    "(?:the )?start of returned (?:mail|message)|"
	    "message headers follow|(?:the )?headers? of (?:the |your )?"
	    "(?:original )?message|a copy of (?:the |your )?(?:original )?"
	    "message|original message:|unsent message follows|"
	    "(?:your )?message (?:header|text) follows|"
	    "(?:the )?undelivered message (?:follows|headers)|"
	    "(?:included|attached) is a copy)|"
	    /* or the returned header block itself, without a separator */
	    "^(?:received|return-path|delivered-to|x-original-to|message-id|"
	    "dkim-signature|arc-seal|authentication-results|mime-version|"
	    "content-type|x-[a-z0-9-]+)[ \\t]*:|^from \\S+ +\\w{3} \\w{3} ",
	[RE_RCPT_LINE] =
	    "^[ \\t]*(?:[*-][ \\t]+|>{1,3}[ \\t]*|[245][0-9][0-9][ -])?"
	    "(?:(?!(?:message-id|from|"
	    "sender|reply-to|return-path|in-reply-to|references|envelope-from|"
	    "date|subject|to|cc|original-envelope-id|x-[a-z-]+)[ \\t]*:)"
	    "([a-z][a-z0-9 ,()-]{0,60}):[ \\t]*)?"
	    "(?:rfc822;[ \\t]*)?[<'\"]?"
	    "([^\\s<>()'\",;:@]+@[A-Za-z0-9][-A-Za-z0-9.]*[A-Za-z0-9]|"
	    "[^\\s<>()'\",;:@]+@\\[[0-9.:A-Fa-f]+\\])"
	    "[>'\"]?[ \\t]*"
	    "(?:(?::|\\.\\.\\.|,|;| -|[ \\t])[ \\t]*(.*))?$",
	[RE_RCPT_SENTENCE] =
	    "(?i)(?|(?:deliver(?:ed|ing|y)?|sent|send|message|mail|e-?mail)"
	    "[^\\n<]{0,80}?\\b(?:to|for|recipients?)[ \\t:]*(?:\\n[ \\t]*)?"
	    "[<'\"]?([^\\s<>()'\",;:@]+@[A-Za-z0-9][-A-Za-z0-9.]*"
	    "[A-Za-z0-9])[>'\"]?|"
	    /* "The following recipients returned permanent errors: a@b.",
	     * "Server <mx> rejected recipient <a@b> (...)" */
	    "(?:recipients? (?:returned|had|gave) (?:permanent |fatal )?"
	    "errors?[ \\t]*:|rejected (?:the )?recipient)"
	    "[ \\t]*[<'\"]?([^\\s<>()'\",;:@]+@"
	    "[A-Za-z0-9][-A-Za-z0-9.]*[A-Za-z0-9])[>'\"]?)",
	[RE_REPLY] =
	    "(?i)(?|(?:said|says|returned|response|responded|replied|reply|"
	    "answer(?:ed)?|error|reason|diagnostic[- ]code|smtp;|"
	    "failed|rejected|status)[^\\n0-9]{0,48}?(?<![0-9.#])"
	    "([245][0-9][0-9])(?=[ -]|$)|"
	    "[])]:[ \\t]*([245][0-9][0-9])(?=[ -]|$)|"
	    "[0-9a-z]:[ \\t]+([245][0-9][0-9])(?=[ ,:-]|$)|"
	    "error_code[ \\t]*:[ \\t]*([245][0-9][0-9])(?=[ ,:-]|$))",
	[RE_REPLY_LINE] =
	    "(?m)^[ \\t]*(?:<[^>\\n]*>[ \\t]*:?[ \\t]*)?([245][0-9][0-9])(?=[ :-]|$)",
	[RE_STATUS] =
	    "(?<![0-9A-Za-z.])([245])\\.([0-9]{1,3})\\.([0-9]{1,3})"
	    "(?![0-9]|\\.[0-9])",
	[RE_TEMPORARY] =
	    "(?i)has been delayed|will (continue|keep) (trying|to try|"
	    "retrying)|still (trying|being retried|undelivered)|"
	    "will be retried|not yet been delivered|delivery (is )?delayed|"
	    "warning: message",
};

static pcre2_code *res[RE_COUNT];
static pcre2_match_context *mctx;
static pthread_once_t res_once = PTHREAD_ONCE_INIT;

static void
compile_patterns(void)
{
	for (int i = 0; i < RE_COUNT; i++) {
		int err;
		PCRE2_SIZE off;
		uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;

		if (i == RE_RCPT_LINE)
			opts |= PCRE2_CASELESS;
		res[i] = pcre2_compile((PCRE2_SPTR)patterns[i],
		    PCRE2_ZERO_TERMINATED, opts, &err, &off, NULL);
		if (res[i] == NULL)
			fatalx("textbounce: pattern %d does not compile at %zu",
			    i, (size_t)off);
		(void)pcre2_jit_compile(res[i], PCRE2_JIT_COMPLETE);
	}
	mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(mctx, TB_MATCH_LIMIT);
}

/* A match of pattern re in s[0..n) from start: capture groups in md. */
static bool
find(enum tb_re re, const char *s, size_t n, size_t start,
    pcre2_match_data *md)
{
	return pcre2_match(res[re], (PCRE2_SPTR)s, n, start, 0, md, mctx) > 0;
}

static bool
matches(enum tb_re re, const char *s)
{
	pcre2_match_data *md;
	bool ok;

	if (s == NULL)
		return false;
	md = pcre2_match_data_create_from_pattern(res[re], NULL);
	ok = find(re, s, strlen(s), 0, md);
	pcre2_match_data_free(md);
	return ok;
}

/* Capture group g of the last match as [*p, *p + *n). */
static bool
group(pcre2_match_data *md, int g, const char *s, const char **p, size_t *n)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);

	if ((uint32_t)g >= pcre2_get_ovector_count(md) ||
	    ov[2 * g] == PCRE2_UNSET)
		return false;
	*p = s + ov[2 * g];
	*n = ov[2 * g + 1] - ov[2 * g];
	return true;
}

/*
 * The first text/plain leaf in document order that is not inside an
 * attached message (text/html when there is none). Iterative: the tree may
 * be deep.
 */
static GMimeObject *
notice_part(GMimeObject *top)
{
	GMimeObject *stack[64], *html = NULL;
	size_t n = 0;

	stack[n++] = top;
	while (n > 0) {
		GMimeObject *o = stack[--n];
		if (GMIME_IS_MULTIPART(o)) {
			GMimeMultipart *mp = GMIME_MULTIPART(o);
			int count = g_mime_multipart_get_count(mp);
			/* Push in reverse so the first child is visited first. */
			for (int i = count - 1; i >= 0 && n < nitems(stack); i--)
				stack[n++] = g_mime_multipart_get_part(mp, i);
		} else if (GMIME_IS_TEXT_PART(o)) {
			if (mime_is(o, "text", "plain"))
				return o;
			if (html == NULL && mime_is(o, "text", "html"))
				html = o;
		}
	}
	return html;
}

/* Text with HTML tags dropped and <br>/<p> turned into line ends. */
static char *
strip_html(const char *s)
{
	struct buf b = { 0 };

	buf_reserve(&b, strlen(s));
	while (*s != '\0') {
		if (*s == '<') {
			const char *e = strchr(s, '>');
			if (e == NULL)
				break;
			if (strncasecmp(s, "<br", 3) == 0 ||
			    strncasecmp(s, "<p", 2) == 0 ||
			    strncasecmp(s, "</p", 3) == 0 ||
			    strncasecmp(s, "<div", 4) == 0 ||
			    strncasecmp(s, "<tr", 3) == 0)
				buf_putc(&b, '\n');
			s = e + 1;
		} else if (strncmp(s, "&lt;", 4) == 0) {
			buf_putc(&b, '<');
			s += 4;
		} else if (strncmp(s, "&gt;", 4) == 0) {
			buf_putc(&b, '>');
			s += 4;
		} else if (strncmp(s, "&amp;", 5) == 0) {
			buf_putc(&b, '&');
			s += 5;
		} else if (strncmp(s, "&nbsp;", 6) == 0) {
			buf_putc(&b, ' ');
			s += 6;
		} else
			buf_putc(&b, *s++);
	}
	return buf_steal(&b);
}

/*
 * The notice as valid UTF-8 with LF line ends, at most TB_MAX_TEXT bytes,
 * or NULL when the message has no text part.
 */
static char *
notice_text(const struct message *m)
{
	GMimeObject *top = m->mime;
	GMimeObject *part;
	char *text, *out;

	if (top == NULL)
		return NULL;
	if ((part = notice_part(top)) != NULL)
		text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	else if (GMIME_IS_MULTIPART(top) &&
	    g_mime_multipart_get_count(GMIME_MULTIPART(top)) == 0) {
		/* A "multipart" whose boundary never occurs: all preamble. */
		const char *pro = g_mime_multipart_get_prologue(
		    GMIME_MULTIPART(top));
		text = pro != NULL ? g_strdup(pro) : NULL;
	} else if (GMIME_IS_PART(top)) {
		/* A notice sent with a wrong type (message/delivery-status). */
		size_t n;
		char *raw = mime_part_decoded(top, &n);
		text = raw != NULL ? g_strndup(raw, n) : NULL;
		free(raw);
	} else
		text = NULL;
	if (text == NULL)
		return NULL;
	if (part != NULL && mime_is(part, "text", "html")) {
		out = strip_html(text);
		g_free(text);
		text = g_strdup(out);
		free(out);
	}
	size_t len = strlen(text), o = 0;
	if (len > TB_MAX_TEXT)
		len = TB_MAX_TEXT;
	out = utf8_lossy(text, len);
	g_free(text);
	for (size_t i = 0; out[i] != '\0'; i++) {
		if (out[i] == '\r') {
			if (out[i + 1] != '\n')
				out[o++] = '\n';
			continue;
		}
		out[o++] = out[i];
	}
	out[o] = '\0';
	return out;
}

/* Whether the message presents itself as a bounce. */
static bool
looks_like_bounce(const struct message *m, const char *text)
{
	const char *from = g_mime_object_get_header(m->mime, "From");
	const char *subject = message_subject(m);
	const char *auto_sub = g_mime_object_get_header(m->mime,
	    "Auto-Submitted");

	bool daemon = matches(RE_SENDER, from);

	/* Exim marks its bounces auto-replied too; a vacation notice is not
	 * from a mailer daemon. */
	if (!daemon && auto_sub != NULL &&
	    strncasecmp(auto_sub, "auto-replied", 12) == 0)
		return false;
	if (matches(RE_AUTOREPLY, subject))
		return false;
	if (!daemon && !matches(RE_SUBJECT, subject))
		return false;
	return matches(RE_BODY, text) || matches(RE_SUBJECT, subject);
}

/* Lowercased copy of the address a@b for comparisons. */
static char *
addr_key(const char *p, size_t n)
{
	return str_lower(xstrndup(p, n));
}

static bool
seen(char **v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], key) == 0)
			return true;
	return false;
}

/* Whether [p, e) is a ruler such as "=====" or "-----" (and spaces). */
static bool
rule_line(const char *p, const char *e)
{
	size_t marks = 0;

	for (; p < e; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r')
			continue;
		if (strchr("=-_*~#", *p) == NULL)
			return false;
		marks++;
	}
	return marks >= 3;
}

/*
 * The reply in a recipient's diagnostic text: code, enhanced status and
 * content into b. The content is the reply from its code on, its
 * continuation lines joined by spaces; without a code, the whole text.
 */
static void
read_reply(const char *diag, struct bounce *b, pcre2_match_data *md)
{
	size_t n = strlen(diag);
	const char *p, *code_at = NULL;
	size_t pn;

	if (find(RE_REPLY_LINE, diag, n, 0, md) && group(md, 1, diag, &p, &pn))
		code_at = p;
	if (find(RE_REPLY, diag, n, 0, md) && group(md, 1, diag, &p, &pn) &&
	    (code_at == NULL || p < code_at))
		code_at = p;

	/*
	 * The content, one line at a time: the continuation lines of a
	 * multiline reply ("550-5.7.26 ...") lose the code and the enhanced
	 * code that they repeat, and all whitespace runs become one space.
	 */
	struct buf c = { 0 };
	const char *from = code_at != NULL ? code_at + 3 : diag;
	size_t enh_len = 0;
	if (code_at != NULL && (*from == ' ' || *from == '-' || *from == ':'))
		from++;
	while (code_at != NULL && (*from == ' ' || *from == ','))
		from++;
	if (code_at != NULL && find(RE_STATUS, from, strlen(from), 0, md) &&
	    group(md, 0, from, &p, &pn) && p == from)
		enh_len = pn;
	const char *enh = from;
	for (const char *line = from; *line != '\0';) {
		const char *eol = strchr(line, '\n');
		const char *e = eol != NULL ? eol : line + strlen(line);
		const char *q = line;
		if (line != from) {
			while (q < e && (*q == ' ' || *q == '\t'))
				q++;
			if (code_at != NULL && e - q >= 4 &&
			    strncmp(q, code_at, 3) == 0 &&
			    (q[3] == '-' || q[3] == ' ')) {
				q += 4;
				if (enh_len > 0 && (size_t)(e - q) >= enh_len &&
				    strncmp(q, enh, enh_len) == 0 &&
				    (q + enh_len == e || q[enh_len] == ' '))
					q += enh_len;
			}
		}
		if (rule_line(q, e)) {
			line = eol != NULL ? eol + 1 : e;
			continue;
		}
		for (; q < e; q++) {
			if (*q == ' ' || *q == '\t' || *q == '\r') {
				if (c.len > 0 && c.data[c.len - 1] != ' ')
					buf_putc(&c, ' ');
				continue;
			}
			buf_putc(&c, *q);
		}
		if (c.len > 0 && c.data[c.len - 1] != ' ')
			buf_putc(&c, ' ');
		line = eol != NULL ? eol + 1 : e;
	}
	while (c.len > 0 && c.data[c.len - 1] == ' ')
		c.data[--c.len] = '\0';
	free(b->content);
	b->content = c.data != NULL ? buf_steal(&c) : xstrdup("");
	if (code_at != NULL)
		b->code = (code_at[0] - '0') * 100 + (code_at[1] - '0') * 10 +
		    (code_at[2] - '0');

	/* The enhanced code: in the reply if there is one, else anywhere. */
	const char *base = NULL;
	if (code_at != NULL && find(RE_STATUS, code_at, strlen(code_at), 0, md))
		base = code_at;
	else if (find(RE_STATUS, diag, n, 0, md))
		base = diag;
	if (base != NULL) {
		const char *g[3];
		size_t gn[3];
		for (int i = 0; i < 3; i++)
			if (!group(md, i + 1, base, &g[i], &gn[i]))
				return;
		b->has_status = true;
		b->cls = (unsigned)(*g[0] - '0');
		b->subject = (unsigned)strtoul(g[1], NULL, 10);
		b->detail = (unsigned)strtoul(g[2], NULL, 10);
		return;
	}
	b->status_derived = true;
	b->has_status = true;
	b->cls = code_at != NULL && b->code >= 400 ? (unsigned)b->code / 100 :
	    matches(RE_TEMPORARY, diag) ? 4 : 5;
	b->subject = 0;
	b->detail = 0;
}

/* The text from p to the next recipient line (or the end), trimmed. */
static char *
diag_between(const char *p, const char *end)
{
	return str_trim_dup(p, (size_t)(end - p));
}

/*
 * Whether the text [p, end) shows that the refusal answered DATA or the
 * end of the data, after the recipient had been accepted: Postfix's "(in
 * reply to end of DATA command)", Exim's "after end of data", or a session
 * transcript whose first 4xx/5xx reply ("<<< 550 ...") follows ">>> DATA"
 * or the end-of-data dot. The first refusal of a transcript decides, and
 * only when it is the sole refusal before the next command: a client that
 * pipelines shows ">>> DATA" then the RCPT's refusal, then DATA's own
 * ("<<< 503 Need RCPT").
 */
static bool
refused_after_data(const char *p, const char *end)
{
	static const char *const phrases[] = {
		"in reply to end of data command", "in reply to data command",
		"after end of data",
	};
	struct buf t = { 0 };
	const char *cmd = NULL;
	size_t cmdlen = 0;
	bool found = false, decided = false;

	/* lowercased, every run of white space one space (folded lines) */
	for (const char *q = p; q < end; q++) {
		unsigned char c = (unsigned char)*q;
		if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
			if (t.len > 0 && t.data[t.len - 1] != ' ')
				buf_putc(&t, ' ');
		} else
			buf_putc(&t, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
	}
	buf_putc(&t, '\0');
	for (size_t i = 0; i < nitems(phrases) && !found; i++)
		found = strstr(t.data, phrases[i]) != NULL;
	buf_free(&t);

	if (found)
		return true;
	/* refusals after the first one's command, up to the next command */
	int refusals = 0;
	while (p < end && !(decided && cmd == NULL)) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line = p, *le = eol != NULL ? eol : end;
		p = eol != NULL ? eol + 1 : end;
		while (line < le && (*line == ' ' || *line == '\t'))
			line++;
		while (le > line && (le[-1] == '\r' || le[-1] == ' ' ||
		    le[-1] == '\t'))
			le--;
		if (le - line >= 4 && strncmp(line, ">>> ", 4) == 0) {
			if (decided)
				break;
			cmd = line + 4;
			cmdlen = (size_t)(le - cmd);
		} else if (le - line >= 7 && strncmp(line, "<<< ", 4) == 0 &&
		    (line[4] == '4' || line[4] == '5')) {
			if (!decided && (cmd == NULL || !((cmdlen == 4 &&
			    strncasecmp(cmd, "DATA", 4) == 0) ||
			    (cmdlen == 1 && cmd[0] == '.'))))
				return false;
			decided = true;
			refusals++;
		}
	}
	return refusals == 1;
}

/* Whether line starts with a reply code ("554 <a@b>... Host unknown"). */
static bool
reply_first(const char *line)
{
	while (*line == ' ' || *line == '\t')
		line++;
	return (line[0] == '2' || line[0] == '4' || line[0] == '5') &&
	    line[1] >= '0' && line[1] <= '9' && line[2] >= '0' &&
	    line[2] <= '9' && (line[3] == ' ' || line[3] == '-');
}

/*
 * The end of a line ending at eol and of the indented, non-blank lines
 * that continue it, within [eol, end).
 */
static const char *
continued(const char *eol, const char *end)
{
	while (eol < end && eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t')) {
		const char *p = eol + 1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end || *p == '\n')
			break;
		const char *next = memchr(p, '\n', (size_t)(end - p));
		eol = next != NULL ? next : end;
	}
	return eol;
}

/* Whether [p, e) holds a reply code where a reply is quoted. */
static bool
has_reply(const char *p, const char *e)
{
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	bool found = find(RE_REPLY_LINE, p, (size_t)(e - p), 0, md) ||
	    find(RE_REPLY, p, (size_t)(e - p), 0, md);

	pcre2_match_data_free(md);
	return found;
}

/* Whether the last non-empty line before line introduces the sender. */
static bool
names_sender(const char *text, const char *line)
{
	const char *e = line;

	while (e > text && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	const char *b = e;
	while (b > text && b[-1] != '\n')
		b--;
	size_t n = (size_t)(e - b);
	return (n >= 7 && strncasecmp(e - 7, "sent by", 7) == 0) ||
	    (n >= 5 && strncasecmp(e - 5, "from:", 5) == 0) ||
	    (n >= 7 && strncasecmp(e - 7, "sender:", 7) == 0);
}

struct rcpt_at {
	const char *line;	/* start of its line */
	const char *after;	/* first byte after the address (and ':') */
	char	*addr;
	char	*label;		/* the words before "addr" and a colon */
	const char *end;	/* end of its diagnostic, NULL: next recipient */
};

/*
 * Whether the n recipient lines all name one address (a transcript that
 * repeats it in "<<< 550 Unknown user a@b" is still about a lone recipient).
 */
static bool
one_address(const struct rcpt_at *rc, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (rc[i].addr == NULL || rc[0].addr == NULL ||
		    strcasecmp(rc[i].addr, rc[0].addr) != 0)
			return false;
	return n > 0;
}

/*
 * Whether the line [line, eol) is only the address [a, a + an) as a
 * heading, "<a@b>:" or "a@b:", as qmail and Exim list failed recipients.
 */
static bool
address_heading(const char *line, const char *eol, const char *a, size_t an)
{
	const char *p = a + an;

	while (line < a && (*line == ' ' || *line == '\t' || *line == '<'))
		line++;
	if (line != a)
		return false;
	if (p < eol && *p == '>')
		p++;
	if (p >= eol || *p != ':')
		return false;
	for (p++; p < eol; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	return true;
}

/*
 * Recipient lines in text[0..n): addresses alone on a line, the sender
 * and the bounce's own To: excluded unless the line is the address as a
 * heading (a message its sender addressed to itself). Returns the count;
 * *out malloc'ed.
 */
static size_t
recipient_lines(const char *text, size_t n, char **exclude, size_t nexclude,
    struct rcpt_at **out, pcre2_match_data *md)
{
	struct rcpt_at *v = NULL;
	size_t count = 0, cap = 0;
	char **keys = NULL;

	for (const char *line = text; line < text + n;) {
		const char *eol = memchr(line, '\n', (size_t)(text + n - line));
		if (eol == NULL)
			eol = text + n;
		const char *a;
		size_t an;
		if ((size_t)(eol - line) < 512 &&
		    find(RE_RCPT_LINE, line, (size_t)(eol - line), 0, md) &&
		    group(md, 2, line, &a, &an)) {
			char *key = addr_key(a, an);
			if (!names_sender(text, line) &&
			    (!seen(exclude, nexclude, key) ||
			    address_heading(line, eol, a, an)) &&
			    !seen(keys, count, key) &&
			    count < TB_MAX_RECIPIENTS) {
				if (count == cap) {
					cap = cap ? cap * 2 : 4;
					v = xrealloc(v, cap * sizeof(*v));
					keys = xrealloc(keys, cap * sizeof(*keys));
				}
				const char *rest;
				size_t rn;
				v[count].line = line;
				v[count].after = group(md, 3, line, &rest, &rn) ?
				    rest : eol;
				/*
				 * "554 <a@b>... 550 Host unknown": the reply
				 * after the address; "554 <a@b>... User
				 * unknown": the line is the reply.
				 */
				bool quoted = has_reply(v[count].after, eol);
				if (reply_first(line) && !quoted)
					v[count].after = line;
				/*
				 * A reply on the address's line is all of it,
				 * with its indented continuation lines.
				 */
				v[count].end = quoted || reply_first(line) ?
				    continued(eol, text + n) : NULL;
				/* "User mailbox exceeds allowed size: a@b" */
				v[count].label = group(md, 1, line, &rest, &rn) ?
				    xstrndup(rest, rn) : NULL;
				v[count].addr = xstrndup(a, an);
				keys[count] = key;
				count++;
			} else
				free(key);
		}
		line = eol < text + n ? eol + 1 : eol;
	}
	for (size_t i = 0; i < count; i++)
		free(keys[i]);
	free(keys);
	*out = v;
	return count;
}

/* Addresses of the bounce's own From and To headers, lowercased. */
static size_t
own_addresses(const struct message *m, char ***out)
{
	char **v = NULL;
	size_t n = 0;
	const char *types[] = { "From", "To" };

	for (size_t t = 0; t < nitems(types); t++) {
		InternetAddressList *l = message_addresses(m, types[t]);
		int count = l != NULL ? internet_address_list_length(l) : 0;
		for (int i = 0; i < count && i < 16; i++) {
			InternetAddress *ia = internet_address_list_get_address(l, i);
			if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
				continue;
			const char *a = internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia));
			if (a == NULL || *a == '\0')
				continue;
			v = xgrow(v, n, sizeof(*v));
			v[n++] = addr_key(a, strlen(a));
		}
		if (l != NULL)
			g_object_unref(l);
	}
	*out = v;
	return n;
}

/*
 * The addresses of the X-Failed-Recipients header fields, each one's
 * diagnostic the whole notice (its rc_at entry points at the text).
 * Returns the count; *out malloc'ed.
 */
static size_t
failed_recipients_header(const struct message *m, const char *text,
    struct rcpt_at **out)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(m->mime);
	int count = g_mime_header_list_get_count(hl);
	struct rcpt_at *v = NULL;
	size_t n = 0;

	for (int i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);
		const char *value = g_mime_header_get_value(h);
		if (name == NULL || value == NULL ||
		    strcasecmp(name, "X-Failed-Recipients") != 0)
			continue;
		char *copy = xstrdup(value), *save = NULL;
		for (char *a = strtok_r(copy, ", \t\r\n", &save); a != NULL &&
		    n < TB_MAX_RECIPIENTS; a = strtok_r(NULL, ", \t\r\n", &save)) {
			if (strchr(a, '@') == NULL || a[0] == '@')
				continue;
			v = xgrow(v, n, sizeof(*v));
			v[n].line = text;
			v[n].after = text;
			v[n].addr = xstrdup(a);
			v[n].label = NULL;
			v[n].end = NULL;
			n++;
		}
		free(copy);
	}
	*out = v;
	return n;
}

/*
 * The returned message's header block: an attached message's (the first
 * child after the notice that has header fields), else the block quoted
 * after the cut. Sets *hp and *hn; false when there is none.
 */
static bool
returned_block(const struct message *m, const char *cut,
    struct raw_entity *kids, size_t nkids, const char **hp, size_t *hn)
{
	for (size_t i = 1; i < nkids; i++) {
		struct raw_entity inner;
		/* only a returned message or its headers, not a status part */
		char *h = str_lower(xstrndup(kids[i].headers != NULL ?
		    kids[i].headers : "", kids[i].headers_len));
		bool returned = strstr(h, "rfc822") != NULL ||
		    strstr(h, "message/global") != NULL;
		free(h);
		if (!returned)
			continue;
		raw_entity_split(kids[i].body, kids[i].body_len, &inner);
		if (inner.headers != NULL && inner.headers_len > 0 &&
		    memchr(inner.headers, ':', inner.headers_len) != NULL) {
			*hp = inner.headers;
			*hn = inner.headers_len;
			return true;
		}
	}
	(void)m;
	if (cut != NULL) {
		const char *h = strchr(cut, '\n');
		size_t name = strcspn(cut, ": \t\n");
		/* The cut may be the block's own first line: "Received: ..." */
		if (name > 0 && cut[name] == ':')
			h = cut;
		else if (h != NULL)
			while (*h == '\n' || *h == ' ' || *h == '\t')
				h++;
		if (h != NULL && *h != '\0') {
			const char *end = strstr(h, "\n\n");
			*hp = h;
			*hn = end != NULL ? (size_t)(end - h) + 1 : strlen(h);
			return true;
		}
	}
	return false;
}

/*
 * X-KumoRef and the correlation headers (report.h) of the returned
 * message: an attached message, else the text.
 */
static json_t *
returned_trace(const struct message *m, const char *cut, json_t **returned)
{
	struct raw_entity *kids;
	size_t n = message_children(m, &kids);
	json_t *trace = NULL;
	const char *h;
	size_t hn;

	*returned = NULL;
	for (size_t i = 1; i < n && trace == NULL; i++) {
		struct raw_entity inner;
		raw_entity_split(kids[i].body, kids[i].body_len, &inner);
		trace = kumoref_scan_headers(inner.headers, inner.headers_len);
	}
	if (trace == NULL && cut != NULL) {
		const char *t = strchr(cut, '\n');
		if (t != NULL) {
			while (*t == '\n')
				t++;
			const char *end = strstr(t, "\n\n");
			size_t tn = end != NULL ? (size_t)(end - t) + 1 : strlen(t);
			trace = kumoref_scan_headers(t, tn);
		}
	}
	if (returned_block(m, cut, kids, n, &h, &hn)) {
		struct fieldblock fb;
		if (fields_parse_raw(h, hn, &fb) == 0) {
			*returned = report_returned_headers(&fb);
			fields_free(&fb);
		}
	}
	free(kids);
	return trace;
}

/*
 * Whether a delivery-status part somewhere in the message (a notice sent
 * as multipart/mixed, which the DSN decoder does not take) reports a delay
 * and no failure: "Action: delayed" makes the notice a delay warning,
 * whatever its text says.
 */
static bool
delay_report(GMimeObject *top)
{
	GMimeObject *stack[64], *ds = NULL;
	size_t n = 0;
	bool delayed = false, failed = false;

	stack[n++] = top;
	while (n > 0 && ds == NULL) {
		GMimeObject *o = stack[--n];
		if (GMIME_IS_MULTIPART(o)) {
			GMimeMultipart *mp = GMIME_MULTIPART(o);
			int count = g_mime_multipart_get_count(mp);
			for (int i = count - 1; i >= 0 && n < nitems(stack); i--)
				stack[n++] = g_mime_multipart_get_part(mp, i);
		} else if (mime_is(o, "message", "delivery-status") ||
		    mime_is(o, "message", "global-delivery-status"))
			ds = o;
	}
	if (ds == NULL || !GMIME_IS_PART(ds))
		return false;
	size_t len;
	char *raw = mime_part_decoded(ds, &len);
	if (raw == NULL)
		return false;
	struct span *groups;
	size_t ngroups = fields_split_groups(raw, len, &groups);
	for (size_t i = 0; i < ngroups; i++) {
		struct fieldblock fb;
		const struct field *f;
		if (fields_parse(groups[i].p, groups[i].n, &fb) != 0)
			continue;
		if ((f = fields_get(&fb, "action")) != NULL && f->value != NULL) {
			delayed |= strncasecmp(f->value, "delayed", 7) == 0;
			failed |= strncasecmp(f->value, "failed", 6) == 0;
		}
		fields_free(&fb);
	}
	free(groups);
	free(raw);
	return delayed && !failed;
}

int
textbounce_decode(const struct message *m, struct report *r)
{
	pcre2_match_data *md;
	char *text;
	int rc = 0;

	if (m->mime == NULL)
		return 0;
	pthread_once(&res_once, compile_patterns);
	if ((text = notice_text(m)) == NULL)
		return 0;
	if (!looks_like_bounce(m, text)) {
		free(text);
		return 0;
	}
	md = pcre2_match_data_create(8, NULL);

	/* The notice ends where the returned message begins. */
	size_t n = strlen(text);
	const char *cut = NULL, *p;
	size_t pn;
	if (find(RE_CUT, text, n, 0, md) && group(md, 0, text, &p, &pn)) {
		cut = p;
		n = (size_t)(p - text);
	}

	char **own;
	size_t nown = own_addresses(m, &own);
	struct rcpt_at *rc_at;
	size_t nr = recipient_lines(text, n, own, nown, &rc_at, md);

	if (nr == 0 && find(RE_RCPT_SENTENCE, text, n, 0, md) &&
	    group(md, 1, text, &p, &pn)) {
		char *key = addr_key(p, pn);
		if (!seen(own, nown, key)) {
			rc_at = xmalloc(sizeof(*rc_at));
			rc_at[0].line = p;
			rc_at[0].after = p + pn;
			rc_at[0].addr = xstrndup(p, pn);
			rc_at[0].label = NULL;
			rc_at[0].end = NULL;
			nr = 1;
		}
		free(key);
	}

	/* Exim and Google name the failed recipients in a header too. */
	if (nr == 0)
		nr = failed_recipients_header(m, text, &rc_at);

	if (nr > 0) {
		bool temporary = matches(RE_TEMPORARY, text) ||
		    delay_report(m->mime);
		bool lone = one_address(rc_at, nr);
		r->kind = REPORT_BOUNCE;
		r->decoder = "text";
		for (size_t i = 0; i < nr; i++) {
			struct bounce *b = report_add_bounce(r);
			/* Up to the next recipient; header ones share the text. */
			const char *end = i + 1 < nr &&
			    rc_at[i + 1].line > rc_at[i].line ?
			    rc_at[i + 1].line : text + n;
			if (rc_at[i].end != NULL && rc_at[i].end < end)
				end = rc_at[i].end;
			char *diag = diag_between(rc_at[i].after, end);
			/* "a@b" then a blank line and the reason: Gmail. */
			if (*diag == '\0' && i + 1 == nr) {
				free(diag);
				diag = diag_between(rc_at[i].after, text + n);
			}
			/* Nothing after the address: the label is the reason. */
			if (*diag == '\0' && rc_at[i].label != NULL) {
				free(diag);
				diag = str_trim_dup(rc_at[i].label,
				    strlen(rc_at[i].label));
			}
			b->recipient = rc_at[i].addr;
			rc_at[i].addr = NULL;
			b->action = xstrdup(temporary ? "delayed" : "failed");
			/* a lone recipient's transcript may follow its line */
			b->refused_after_data = lone ?
			    refused_after_data(text, text + n) :
			    refused_after_data(rc_at[i].after, end);
			read_reply(diag, b, md);
			free(diag);
		}
		r->trace = returned_trace(m, cut, &r->returned);
		rc = 1;
	}

	for (size_t i = 0; i < nr; i++) {
		free(rc_at[i].addr);
		free(rc_at[i].label);
	}
	free(rc_at);
	for (size_t i = 0; i < nown; i++)
		free(own[i]);
	free(own);
	pcre2_match_data_free(md);
	free(text);
	return rc;
}

struct textbounce_notice {
	char	*text;
	size_t	 n;		/* the notice proper: up to the returned message */
	struct rcpt_at *rc;
	size_t	 nr;
	pcre2_match_data *md;
};

struct textbounce_notice *
textbounce_notice_open(const struct message *m)
{
	struct textbounce_notice *tn;
	const char *p;
	size_t pn;
	char **own;
	size_t nown;

	if (m->mime == NULL)
		return NULL;
	pthread_once(&res_once, compile_patterns);
	tn = xcalloc(1, sizeof(*tn));
	if ((tn->text = notice_text(m)) == NULL) {
		free(tn);
		return NULL;
	}
	tn->md = pcre2_match_data_create(8, NULL);
	tn->n = strlen(tn->text);
	if (find(RE_CUT, tn->text, tn->n, 0, tn->md) &&
	    group(tn->md, 0, tn->text, &p, &pn))
		tn->n = (size_t)(p - tn->text);
	nown = own_addresses(m, &own);
	tn->nr = recipient_lines(tn->text, tn->n, own, nown, &tn->rc, tn->md);
	for (size_t i = 0; i < nown; i++)
		free(own[i]);
	free(own);
	return tn;
}

/* The address of a "type; addr" recipient value, lowercased, or NULL. */
static char *
typed_addr_key(const char *value)
{
	const char *semi = value != NULL ? strchr(value, ';') : NULL;
	const char *a = semi != NULL ? semi + 1 : value;
	size_t n;

	if (a == NULL)
		return NULL;
	while (*a == ' ' || *a == '\t' || *a == '<')
		a++;
	n = strcspn(a, "> \t");
	return n > 0 ? addr_key(a, n) : NULL;
}

/*
 * The paragraph of the notice proper that names one of the addresses
 * keys[] (lowercased), as a reply for b: "<code> <b's Status> <text>".
 */
static void
paragraph_reply(struct textbounce_notice *tn, struct bounce *b,
    char *const *keys, size_t nkeys)
{
	char *lower = str_lower(xstrndup(tn->text, tn->n));
	const char *at = NULL;

	for (size_t k = 0; k < nkeys && at == NULL; k++)
		if (keys[k] != NULL && keys[k][0] != '\0')
			at = strstr(lower, keys[k]);
	if (at != NULL && b->has_status) {
		size_t off = (size_t)(at - lower);
		const char *start = tn->text + off, *end = start;
		const char *lim = tn->text + tn->n;
		while (start > tn->text && !(start[-1] == '\n' &&
		    start - 1 > tn->text && start[-2] == '\n'))
			start--;
		while (end < lim && !(end[0] == '\n' && end + 1 < lim &&
		    end[1] == '\n'))
			end++;
		struct buf t = { 0 };
		for (const char *q = start; q < end; q++) {
			if (*q == '\n' || *q == '\t' || *q == ' ') {
				if (t.len > 0 && t.data[t.len - 1] != ' ')
					buf_putc(&t, ' ');
			} else
				buf_putc(&t, *q);
		}
		while (t.len > 0 && t.data[t.len - 1] == ' ')
			t.len--;
		if (t.len > 0)
			b->notice_reply = xasprintf("%d %u.%u.%u %.*s", b->code,
			    b->cls, b->subject, b->detail, (int)t.len, t.data);
		buf_free(&t);
	}
	free(lower);
}

void
textbounce_notice_reply(struct textbounce_notice *tn, struct bounce *b)
{
	char *want[2] = {
		b->recipient != NULL ? addr_key(b->recipient,
		    strlen(b->recipient)) : NULL,
		typed_addr_key(b->final_recipient),
	};
	size_t i, found = tn != NULL ? tn->nr : 0;

	for (i = 0; tn != NULL && i < tn->nr && found == tn->nr; i++) {
		char *key = addr_key(tn->rc[i].addr, strlen(tn->rc[i].addr));
		for (int k = 0; k < 2; k++)
			if (want[k] != NULL && strcmp(want[k], key) == 0)
				found = i;
		free(key);
	}
	if (tn != NULL && found == tn->nr) {
		/*
		 * Named in a sentence, not on a line of its own ("Your message
		 * wasn't delivered to a@b because ..."): that paragraph.
		 */
		paragraph_reply(tn, b, want, 2);
		free(want[0]);
		free(want[1]);
		return;
	}
	free(want[0]);
	free(want[1]);
	if (tn == NULL)
		return;

	const char *end = found + 1 < tn->nr &&
	    tn->rc[found + 1].line > tn->rc[found].line ?
	    tn->rc[found + 1].line : tn->text + tn->n;
	if (tn->rc[found].end != NULL && tn->rc[found].end < end)
		end = tn->rc[found].end;
	char *diag = diag_between(tn->rc[found].after, end);
	if (*diag == '\0' && tn->rc[found].label != NULL) {
		free(diag);
		diag = str_trim_dup(tn->rc[found].label,
		    strlen(tn->rc[found].label));
	}
	if (*diag != '\0') {
		struct bounce tmp = { .code = b->code };
		read_reply(diag, &tmp, tn->md);
		if (tmp.status_derived && b->has_status) {
			tmp.cls = b->cls;
			tmp.subject = b->subject;
			tmp.detail = b->detail;
		}
		char enh[40];
		const char *text = tmp.content != NULL ? tmp.content : "";
		size_t n = (size_t)snprintf(enh, sizeof(enh), "%u.%u.%u ",
		    tmp.cls, tmp.subject, tmp.detail);
		size_t tl;
		/* the reply's text once, without "(reason: ...)"'s parenthesis */
		if (strncmp(text, enh, n) == 0)
			text += n;
		tl = strlen(text);
		if (diag[0] == '(' && tl > 0 && text[tl - 1] == ')')
			tl--;
		if (tl > 0)
			b->notice_reply = xasprintf("%d %s%.*s", tmp.code, enh,
			    (int)tl, text);
		free(tmp.content);
	}
	free(diag);
}

void
textbounce_notice_after_data(struct textbounce_notice *tn, struct bounce *b)
{
	char *want[2] = {
		b->recipient != NULL ? addr_key(b->recipient,
		    strlen(b->recipient)) : NULL,
		typed_addr_key(b->final_recipient),
	};
	size_t i, found = tn->nr;

	for (i = 0; i < tn->nr && found == tn->nr; i++) {
		char *key = addr_key(tn->rc[i].addr, strlen(tn->rc[i].addr));
		for (int k = 0; k < 2; k++)
			if (want[k] != NULL && strcmp(want[k], key) == 0)
				found = i;
		free(key);
	}
	free(want[0]);
	free(want[1]);
	if (found == tn->nr)
		return;
	if (one_address(tn->rc, tn->nr)) {
		b->refused_after_data = refused_after_data(tn->text,
		    tn->text + tn->n);
		return;
	}
	const char *end = found + 1 < tn->nr &&
	    tn->rc[found + 1].line > tn->rc[found].line ?
	    tn->rc[found + 1].line : tn->text + tn->n;
	if (tn->rc[found].end != NULL && tn->rc[found].end < end)
		end = tn->rc[found].end;
	b->refused_after_data = refused_after_data(tn->rc[found].after, end);
}

void
textbounce_notice_close(struct textbounce_notice *tn)
{
	if (tn == NULL)
		return;
	for (size_t i = 0; i < tn->nr; i++) {
		free(tn->rc[i].addr);
		free(tn->rc[i].label);
	}
	free(tn->rc);
	pcre2_match_data_free(tn->md);
	free(tn->text);
	free(tn);
}
