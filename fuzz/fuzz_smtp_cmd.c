/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_smtp_cmd.c - the SMTP command-line parser (smtp_cmd.c): verbs, MAIL
 * and RCPT paths and parameters, EHLO arguments.
 *
 * The input is one command line without its CRLF. The first byte picks
 * whether SMTPUTF8 was offered. Besides the sanitizers, the target checks
 * the parser's contract: arguments point into the line, an accepted path
 * has no line break and its domain lies inside it, a refusal has a 4xx or
 * 5xx reply with an enhanced code and a text.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "smtp_cmd.h"

static void
check_path(const struct smtp_path *p)
{
	size_t n = strlen(p->addr);

	if (strpbrk(p->addr, "\r\n") != NULL)
		abort();
	if (p->domain != NULL && (p->domain < p->addr || p->domain > p->addr + n))
		abort();
}

static void
check_err(const struct smtp_err *e)
{
	if (e->code < 400 || e->code > 599 || e->enhanced == NULL ||
	    e->text == NULL || (e->enhanced[0] != '4' && e->enhanced[0] != '5'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd cmd;
	struct smtp_path path;
	struct mail_params params;
	struct smtp_err err;
	bool utf8;
	char *line;

	if (size < 1)
		return 0;
	utf8 = data[0] & 1;
	data++;
	size--;
	/* Sessions never hand over a line with a NUL inside. */
	if (memchr(data, '\0', size) != NULL)
		return 0;
	line = fuzz_cstr(data, size);

	smtp_cmd_parse(line, &cmd);
	if (smtp_verb_name(cmd.verb) == NULL)
		abort();
	if (cmd.args[0] != '\0' &&
	    (cmd.args < line || cmd.args > line + size))
		abort();

	/* Every argument parser on the arguments, whatever the verb was. */
	memset(&path, 0, sizeof(path));
	if (smtp_parse_mail(cmd.args, utf8, &path, &params, &err) == 0) {
		check_path(&path);
		smtp_path_free(&path);
	} else
		check_err(&err);
	memset(&path, 0, sizeof(path));
	if (smtp_parse_rcpt(cmd.args, utf8, &path, &err) == 0) {
		check_path(&path);
		smtp_path_free(&path);
	} else
		check_err(&err);
	/* And on the whole line, which reaches the parameter parsers more. */
	memset(&path, 0, sizeof(path));
	if (smtp_parse_mail(line, utf8, &path, &params, &err) == 0) {
		check_path(&path);
		smtp_path_free(&path);
	} else
		check_err(&err);
	(void)smtp_valid_helo(cmd.args);
	(void)smtp_valid_helo(line);
	free(line);
	return 0;
}
