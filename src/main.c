/*
 * main.c - oobd's command line: the daemon (`oobd -c FILE`), its
 * configuration check (`oobd -t`), and `oobd parse`.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd_parse.h"
#include "conf.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define DEFAULT_CONFIG OOBD_SYSCONFDIR "/oobd.toml"

static void
usage(FILE *f)
{
	fputs("usage: oobd [-c FILE] [-t] [-v]      run the daemon (foreground)\n"
	    "       oobd parse [options] INPUT...  decode bounces and feedback "
	    "reports offline\n"
	    "       oobd --version\n"
	    "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -t       check the configuration and every file it names, "
	    "then exit\n"
	    "  -v       log debug detail\n", f);
}

static int
print_errors(struct errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "oobd: %s\n", errs->v[i]);
	return errs->n > 0;
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	bool check_only = false;
	struct errors errs = { 0 };
	struct server srv;
	struct config *cfg;
	int c, rc;

	if (argc >= 2 && strcmp(argv[1], "parse") == 0)
		return cmd_parse(argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("oobd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	while ((c = getopt(argc, argv, "c:tvh")) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	cfg = config_load(path, &errs);
	if (cfg == NULL) {
		print_errors(&errs);
		errors_free(&errs);
		return 1;
	}
	rc = server_init(&srv, cfg, check_only, &errs);
	if (rc != 0 || check_only) {
		print_errors(&errs);
		if (rc == 0)
			printf("oobd: %s: configuration ok\n", path);
		errors_free(&errs);
		server_free(&srv);
		config_free(cfg);
		return rc != 0;
	}
	rc = server_run(&srv);
	server_free(&srv);
	config_free(cfg);
	errors_free(&errs);
	return rc;
}
