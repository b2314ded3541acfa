/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - oobd's subcommands (`oobd config`, `oobd queue`, `oobd report`;
 * `oobd parse` is in cmd_parse.h) and what they share: the version line,
 * the default configuration path, and the exit statuses of oobd(8).
 */
#ifndef OOBD_CLI_H
#define OOBD_CLI_H

#include <stdio.h>

#define CLI_DEFAULT_CONFIG OOBD_SYSCONFDIR "/oobd.toml"

/* Exit statuses, as oobd(8) EXIT STATUS documents them. */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,		/* configuration, input or run-time error */
	EXIT_USAGE = 2,		/* bad command line */
	EXIT_NOT_RUNNING = 3,	/* oobd queue: the daemon cannot be reached */
};

/* "oobd VERSION" on f: every subcommand's --version. */
void	 cli_version(FILE *f);

int	 cmd_config(int argc, char **argv);
int	 cmd_report(int argc, char **argv);
int	 cmd_queue(int argc, char **argv);

#endif
