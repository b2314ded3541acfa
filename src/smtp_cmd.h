/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_cmd.h - parsing of SMTP command lines: verbs, paths and MAIL/RCPT
 * parameters. Pure functions, no I/O.
 */
#ifndef OOBD_SMTP_CMD_H
#define OOBD_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
	CMD_UNKNOWN,
	CMD_HELO,
	CMD_EHLO,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_RSET,
	CMD_NOOP,
	CMD_QUIT,
	CMD_VRFY,
	CMD_EXPN,
	CMD_HELP,
	CMD_STARTTLS,
	CMD_BDAT,
	CMD_AUTH,
	CMD_ETRN,
	CMD_TURN,
	CMD_FORBIDDEN,		/* CONNECT, GET, POST, or a header line */
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *args;	/* after the verb and one space; "" if none */
};

/*
 * Split a command line (without its CRLF, NUL-terminated, no NUL inside)
 * into verb and arguments. Verbs compare without regard to case.
 */
void	 smtp_cmd_parse(const char *line, struct smtp_cmd *cmd);
const char *smtp_verb_name(enum smtp_verb v);

/* A reply for a rejected argument. */
struct smtp_err {
	int	 code;
	const char *enhanced;
	const char *text;
};

struct smtp_path {
	char	*addr;		/* "local@domain", "" for the null path */
	char	*domain;	/* points into addr, or NULL for the null path */
	bool	 utf8;		/* has non-ASCII bytes */
};

struct mail_params {
	bool	 has_size;
	uint64_t size;
	bool	 body_8bit;
	bool	 smtputf8;
};

/*
 * Parse the arguments of MAIL ("FROM:<path> [params]") or RCPT ("TO:<path>
 * [params]"). A space after the colon and a path without angle brackets
 * are accepted (senders of bounces are not always careful); a source route
 * is dropped. Returns 0, or -1 with *err describing the reply. For RCPT,
 * params may be NULL. path->addr is malloc'ed on success.
 */
int	 smtp_parse_mail(const char *args, bool smtputf8_offered,
	    struct smtp_path *path, struct mail_params *params,
	    struct smtp_err *err);
int	 smtp_parse_rcpt(const char *args, bool smtputf8, struct smtp_path *path,
	    struct smtp_err *err);
void	 smtp_path_free(struct smtp_path *p);

/* Whether s is a syntactically valid EHLO/HELO argument (domain or literal). */
bool	 smtp_valid_helo(const char *s);

#endif
