/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_cmd.c - SMTP command lines: verbs, reverse and forward paths, MAIL
 * parameters. No I/O; the session turns the results into replies.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_cmd.h"
#include "util.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", CMD_HELO }, { "EHLO", CMD_EHLO }, { "MAIL", CMD_MAIL },
	{ "RCPT", CMD_RCPT }, { "DATA", CMD_DATA }, { "RSET", CMD_RSET },
	{ "NOOP", CMD_NOOP }, { "QUIT", CMD_QUIT }, { "VRFY", CMD_VRFY },
	{ "EXPN", CMD_EXPN }, { "HELP", CMD_HELP },
	{ "STARTTLS", CMD_STARTTLS }, { "BDAT", CMD_BDAT },
	{ "AUTH", CMD_AUTH }, { "ETRN", CMD_ETRN }, { "TURN", CMD_TURN },
	/* Other protocols talking to port 25: never SMTP clients. */
	{ "CONNECT", CMD_FORBIDDEN }, { "GET", CMD_FORBIDDEN },
	{ "POST", CMD_FORBIDDEN }, { "PUT", CMD_FORBIDDEN },
	{ "HEAD", CMD_FORBIDDEN }, { "USER", CMD_FORBIDDEN },
};

void
smtp_cmd_parse(const char *line, struct smtp_cmd *cmd)
{
	size_t n = strcspn(line, " ");

	cmd->verb = CMD_UNKNOWN;
	cmd->args = line[n] == ' ' ? line + n + 1 : line + n;
	for (size_t i = 0; i < nitems(verbs); i++)
		if (strlen(verbs[i].name) == n &&
		    strncasecmp(line, verbs[i].name, n) == 0) {
			cmd->verb = verbs[i].verb;
			return;
		}
	/* A header line ("Subject: ...") means message text sent as commands. */
	if (n > 0 && line[n - 1] == ':' && strchr(line, '<') == NULL)
		cmd->verb = CMD_FORBIDDEN;
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	for (size_t i = 0; i < nitems(verbs); i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "unknown";
}

static bool
is_atext(unsigned char c, bool utf8)
{
	if (isalnum(c))
		return true;
	if (c >= 0x80)
		return utf8;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

static void
set_err(struct smtp_err *err, int code, const char *enh, const char *text)
{
	err->code = code;
	err->enhanced = enh;
	err->text = text;
}

/* Domain: dotted labels of letters, digits and hyphens (UTF-8 allowed), or an address literal. */
static const char *
scan_domain(const char *s, bool utf8)
{
	const char *start = s;

	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end == s + 1)
			return NULL;
		for (const char *p = s + 1; p < end; p++)
			if (!isalnum((unsigned char)*p) && !strchr(".:-", *p))
				return NULL;
		return end + 1;
	}
	for (;;) {
		const char *label = s;
		while (isalnum((unsigned char)*s) || *s == '-' ||
		    (utf8 && (unsigned char)*s >= 0x80))
			s++;
		if (s == label || s - label > 63)
			return NULL;
		if (*s != '.')
			break;
		s++;
	}
	return s - start > 255 ? NULL : s;
}

/*
 * Scan a path at s into path->addr. On success returns the first byte
 * after it. bounce is the enhanced code detail for address errors
 * (5.1.7 for senders, 5.1.3 for recipients).
 */
static const char *
scan_path(const char *s, bool smtputf8, bool allow_null, const char *enh,
    struct smtp_path *path, struct smtp_err *err)
{
	bool bracket = false, utf8_seen = false, quoted = false;
	struct buf local = { 0 };

	memset(path, 0, sizeof(*path));
	if (*s == '<') {
		bracket = true;
		s++;
		if (*s == '>') {
			if (!allow_null) {
				set_err(err, 501, enh, "Syntax error in address");
				return NULL;
			}
			path->addr = xstrdup("");
			return s + 1;
		}
		/* A source route (@a,@b:) is obsolete; RFC 5321 says ignore it. */
		if (*s == '@') {
			const char *colon = strchr(s, ':');
			if (colon == NULL) {
				set_err(err, 501, enh, "Syntax error in source route");
				return NULL;
			}
			s = colon + 1;
		}
	}
	if (*s == '"') {
		quoted = true;
		buf_putc(&local, '"');
		for (s++; *s != '"'; s++) {
			if (*s == '\0') {
				buf_free(&local);
				set_err(err, 501, enh, "Unterminated quoted local part");
				return NULL;
			}
			if (*s == '\\' && s[1] != '\0')
				buf_putc(&local, *s++);
			/* qtextSMTP and quoted-pairSMTP exclude controls. */
			if ((unsigned char)*s < 0x20 || *s == 0x7f) {
				buf_free(&local);
				set_err(err, 501, enh, "Syntax error in address");
				return NULL;
			}
			if ((unsigned char)*s >= 0x80)
				utf8_seen = true;
			buf_putc(&local, *s);
		}
		buf_putc(&local, '"');
		s++;
	} else {
		const char *start = s;
		while (is_atext((unsigned char)*s, true) || *s == '.') {
			if ((unsigned char)*s >= 0x80)
				utf8_seen = true;
			s++;
		}
		buf_append(&local, start, (size_t)(s - start));
	}
	if (local.len == 0 || *s != '@') {
		set_err(err, 501, enh, *s == '@' || local.len == 0 ?
		    "Syntax error in address" : "Address must have a domain");
		buf_free(&local);
		return NULL;
	}
	if (local.len > 64 + (quoted ? 2 : 0)) {
		buf_free(&local);
		set_err(err, 501, enh, "Local part too long");
		return NULL;
	}
	s++;
	const char *dstart = s;
	const char *dend = scan_domain(s, true);
	if (dend == NULL) {
		buf_free(&local);
		set_err(err, 501, enh, "Syntax error in domain");
		return NULL;
	}
	for (const char *p = dstart; p < dend; p++)
		if ((unsigned char)*p >= 0x80)
			utf8_seen = true;
	if (bracket) {
		if (*dend != '>') {
			buf_free(&local);
			set_err(err, 501, enh, "Syntax error in address");
			return NULL;
		}
		s = dend + 1;
	} else
		s = dend;
	if (utf8_seen && !smtputf8) {
		buf_free(&local);
		set_err(err, 553, "5.6.7",
		    "Must declare SMTPUTF8 to send unicode address");
		return NULL;
	}
	if (utf8_seen && !utf8_valid(local.data, local.len)) {
		buf_free(&local);
		set_err(err, 501, enh, "Invalid UTF-8 in address");
		return NULL;
	}
	buf_putc(&local, '@');
	size_t at = local.len;
	buf_append(&local, dstart, (size_t)(dend - dstart));
	if (local.len > 254) {
		buf_free(&local);
		set_err(err, 501, enh, "Path too long");
		return NULL;
	}
	path->utf8 = utf8_seen;
	path->addr = buf_steal(&local);
	path->domain = path->addr + at;
	return s;
}

static const char *
skip_prefix(const char *args, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncasecmp(args, prefix, n) != 0)
		return NULL;
	args += n;
	/* Tolerate "MAIL FROM: <a@b>" (KumoMTA issue #76). */
	while (*args == ' ')
		args++;
	return args;
}

int
smtp_parse_mail(const char *args, bool smtputf8_offered,
    struct smtp_path *path, struct mail_params *params, struct smtp_err *err)
{
	const char *s = skip_prefix(args, "FROM:");

	memset(params, 0, sizeof(*params));
	if (s == NULL) {
		set_err(err, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return -1;
	}
	/* SMTPUTF8 is a parameter after the path; look ahead for it. */
	bool utf8 = false;
	if (smtputf8_offered) {
		const char *p = s;
		while ((p = strcasestr(p, " SMTPUTF8")) != NULL) {
			if (p[9] == '\0' || p[9] == ' ')
				utf8 = true;
			p += 9;
		}
	}
	s = scan_path(s, utf8, true, "5.1.7", path, err);
	if (s == NULL)
		return -1;
	while (*s == ' ') {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		size_t n = strcspn(s, " ");
		char *param = xstrndup(s, n);
		char *eq = strchr(param, '=');
		const char *val = eq != NULL ? eq + 1 : NULL;
		if (eq != NULL)
			*eq = '\0';
		int bad = 0;
		if (strcasecmp(param, "SIZE") == 0) {
			char *end;
			if (val == NULL || !isdigit((unsigned char)*val) ||
			    strlen(val) > 19)
				bad = 1;
			else {
				params->size = strtoull(val, &end, 10);
				params->has_size = true;
				bad = *end != '\0';
			}
			if (bad)
				set_err(err, 501, "5.5.4", "Bad message size syntax");
		} else if (strcasecmp(param, "BODY") == 0) {
			if (val != NULL && strcasecmp(val, "8BITMIME") == 0)
				params->body_8bit = true;
			else if (val == NULL || strcasecmp(val, "7BIT") != 0) {
				bad = 1;
				set_err(err, 501, "5.5.4", "Unsupported BODY type");
			}
		} else if (strcasecmp(param, "SMTPUTF8") == 0 && val == NULL &&
		    smtputf8_offered) {
			params->smtputf8 = true;
		} else {
			bad = 1;
			set_err(err, 555, "5.5.4", "Unsupported option");
		}
		free(param);
		if (bad) {
			smtp_path_free(path);
			return -1;
		}
		s += n;
	}
	if (*s != '\0') {
		smtp_path_free(path);
		set_err(err, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return -1;
	}
	return 0;
}

int
smtp_parse_rcpt(const char *args, bool smtputf8, struct smtp_path *path,
    struct smtp_err *err)
{
	const char *s = skip_prefix(args, "TO:");

	if (s == NULL) {
		set_err(err, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return -1;
	}
	s = scan_path(s, smtputf8, false, "5.1.3", path, err);
	if (s == NULL)
		return -1;
	while (*s == ' ')
		s++;
	if (*s != '\0') {
		smtp_path_free(path);
		set_err(err, 555, "5.5.4", "Unsupported option");
		return -1;
	}
	/*
	 * Local parts that route onward (user%host, host!user, a quoted "@")
	 * are how open relays were abused; oobd never routes on them.
	 */
	const char *at = path->domain - 1;
	for (const char *p = path->addr; p < at; p++)
		if (*p == '%' || *p == '!' || *p == '@') {
			smtp_path_free(path);
			set_err(err, 553, "5.1.3",
			    "Address with a routing local part not accepted");
			return -1;
		}
	return 0;
}

void
smtp_path_free(struct smtp_path *p)
{
	free(p->addr);
	memset(p, 0, sizeof(*p));
}

bool
smtp_valid_helo(const char *s)
{
	const char *end = scan_domain(s, true);

	return end != NULL && *end == '\0';
}
