/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_parse.h - `oobd parse`: the ingestion pipeline offline.
 */
#ifndef OOBD_CMD_PARSE_H
#define OOBD_CMD_PARSE_H

/* argv[0] is "parse". Returns the process exit status. */
int	 cmd_parse(int argc, char **argv);

#endif
