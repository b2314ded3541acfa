/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - oobd's command line: the daemon (`oobd -c FILE`), its
 * configuration check (`oobd -t`), and the subcommands (`oobd parse`,
 * `oobd config`, `oobd queue`, `oobd report`).
 */
#include "config.h"

#include <event2/event.h>
#include <getopt.h>
#ifdef HAVE_MIMALLOC
#include <mimalloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_parse.h"
#include "conf.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define DEFAULT_CONFIG CLI_DEFAULT_CONFIG

static void
usage(FILE *f)
{
	fputs("usage: oobd [-c FILE] [-t] [-v]      run the daemon (foreground)\n"
	    "       oobd parse [options] INPUT...  decode bounces and feedback "
	    "reports offline\n"
	    "       oobd config [-c FILE] [-n|-d] [KEY...]  show the "
	    "configuration\n"
	    "       oobd report [options] [LOGDIR|FILE...]  summarise the "
	    "records\n"
	    "       oobd queue [-c FILE] list|flush|delete ID...|delete ALL\n"
	    "       oobd --version | --help | COMMAND --help\n"
	    "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG
	    ")\n"
	    "  -t, --test         check the configuration and every file it "
	    "names, then exit\n"
	    "  -v, --verbose      log debug detail\n"
	    "Exit status: 0 ok, 1 error, 2 usage error (see oobd(8)).\n", f);
}

/*
 * The event loop handles these signals, but installs its handlers only
 * when it starts. Until then they are held (blocked), so that one that
 * arrives during start-up - the listeners are already bound, and a log
 * segment may be under repair - is acted on once the loop runs instead of
 * killing oobd half-way. Threads started meanwhile inherit the mask and
 * keep them blocked, so the main thread, which runs the loop, takes them.
 */
static void
held_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

/* First loop iteration: the handlers are in place; let pending signals in. */
static void
release_signals(evutil_socket_t fd, short what, void *arg)
{
	sigset_t set;

	(void)fd;
	(void)what;
	(void)arg;
	held_signals(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static int
print_errors(struct errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "%soobd: %s\n", log_prefix(LOG_ERR), errs->v[i]);
	return errs->n > 0;
}

/*
 * oobd -t: every error of the configuration and of the files it names,
 * not only the first; a key in error keeps its default so that the rest
 * can still be checked. Nothing is created (no log or state directory, no
 * socket). Returns the exit status, 0 or 1.
 */
static int
check_config(const char *path)
{
	struct errors errs = { 0 };
	struct server srv;
	struct config *cfg;
	bool no_domains = false;
	int rc;

	cfg = config_load_for_check(path, &errs);
	if (cfg != NULL) {
		no_domains = cfg->listener_domains.n == 0;
		config_check_files(cfg, &errs);
		/* Addresses, CIDRs, TLS files: the server's own checks. */
		server_init(&srv, cfg, true, &errs);
		server_free(&srv);
		config_free(cfg);
	}
	rc = print_errors(&errs);
	/* Valid, but it accepts nothing: said once the rest is right. */
	if (rc == 0 && no_domains)
		fprintf(stderr, "oobd: %s: warning: [listener] listener_domains: "
		    "empty: every recipient is refused (550 5.7.1)\n", path);
	if (rc == 0)
		printf("oobd: %s: configuration ok\n", path);
	errors_free(&errs);
	return rc;
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

	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "parse", cmd_parse },
		{ "config", cmd_config },
		{ "report", cmd_report },
		{ "queue", cmd_queue },
	};
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};

	for (size_t i = 0; argc >= 2 && i < nitems(cmds); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "c:tvh", opts, NULL)) != -1) {
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
		case 'V':
			cli_version(stdout);
#ifdef HAVE_MIMALLOC
			int v = mi_version();
			printf("malloc: mimalloc %d.%d.%d\n", v / 100,
			    v / 10 % 10, v % 10);
#endif
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

	if (check_only)
		return check_config(path);
	cfg = config_load(path, &errs);
	if (cfg == NULL) {
		print_errors(&errs);
		errors_free(&errs);
		return 1;
	}
	sigset_t held;
	held_signals(&held);
	pthread_sigmask(SIG_BLOCK, &held, NULL);
	rc = server_init(&srv, cfg, false, &errs);
	if (rc == 0 && event_base_once(srv.base, -1, EV_TIMEOUT, release_signals,
	    NULL, &(struct timeval){ 0, 0 }) != 0)
		fatalx("event_base_once failed");
	if (rc != 0) {
		print_errors(&errs);
		errors_free(&errs);
		server_free(&srv);
		config_free(cfg);
		return 1;
	}
	rc = server_run(&srv);
	server_free(&srv);
	config_free(cfg);
	errors_free(&errs);
	return rc;
}
