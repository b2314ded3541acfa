/*
 * main.c - oobd's command line: `oobd parse ...` runs the pipeline offline.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cmd_parse.h"

static void
usage(FILE *f)
{
	fputs("usage: oobd parse [options] INPUT...   decode bounces and "
	    "feedback reports offline\n"
	    "       oobd --version\n", f);
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "parse") == 0)
		return cmd_parse(argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("oobd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
