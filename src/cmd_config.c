/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_config.c - `oobd config`: the effective configuration, as Postfix's
 * postconf shows main.cf: one "section.key = value" line per key of the
 * loader's table (conf.c), the value in TOML, so that the output is itself
 * a TOML document (dotted keys) that oobd can load. -n shows only the
 * values that differ from the defaults, -d the defaults; KEY arguments
 * select keys. The defaults are config_defaults(), the loader's own.
 */
#include "config.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "util.h"

void
cli_version(FILE *f)
{
	fprintf(f, "oobd %s\n", PACKAGE_VERSION);
}

static void
usage(FILE *f)
{
	fputs("usage: oobd config [-c FILE] [-n|-d] [KEY...]\n"
	    "Print the configuration, one \"section.key = value\" line per key "
	    "(TOML).\n"
	    "  -c, --config FILE    configuration file (default "
	    CLI_DEFAULT_CONFIG ")\n"
	    "  -n, --non-default    only the values that differ from the "
	    "defaults\n"
	    "  -d, --defaults       the defaults (no file is read)\n"
	    "KEY is section.key, for example logs.log_dir or "
	    "listener.trace_headers.received_header.\n", f);
}

/* The table index of "section.key", or -1. */
static long
key_index(const char *full)
{
	const char *sec, *name;

	for (size_t i = 0; config_key_name(i, &sec, &name); i++) {
		size_t n = strlen(sec);
		if (strncmp(full, sec, n) == 0 && full[n] == '.' &&
		    strcmp(full + n + 1, name) == 0)
			return (long)i;
	}
	return -1;
}

/*
 * One key: "section.key = value", or, when unset, a TOML comment that
 * says so (the output stays loadable).
 */
static void
print_key(const struct config *c, size_t i)
{
	const char *sec, *name;
	char *v = config_key_value(c, i);

	config_key_name(i, &sec, &name);
	if (v == NULL)
		printf("# %s.%s is not set\n", sec, name);
	else
		printf("%s.%s = %s\n", sec, name, v);
	free(v);
}

/* Whether key i has the same value in a and b. */
static bool
same_value(const struct config *a, const struct config *b, size_t i)
{
	char *x = config_key_value(a, i), *y = config_key_value(b, i);
	bool same = (x == NULL && y == NULL) ||
	    (x != NULL && y != NULL && strcmp(x, y) == 0);

	free(x);
	free(y);
	return same;
}

int
cmd_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "non-default", no_argument, NULL, 'n' },
		{ "defaults", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CLI_DEFAULT_CONFIG;
	bool only_changed = false, defaults = false;
	struct errors errs = { 0 };
	struct config *c, *d;
	long *sel = NULL;
	size_t nsel = 0;
	int ch, rc = EXIT_OK;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:ndh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			only_changed = true;
			break;
		case 'd':
			defaults = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			cli_version(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (only_changed && defaults) {
		fputs("oobd config: -n and -d exclude each other\n", stderr);
		usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		long k = key_index(argv[i]);
		if (k < 0) {
			fprintf(stderr, "oobd config: %s: unknown key\n", argv[i]);
			rc = EXIT_ERROR;
			continue;
		}
		sel = xrealloc(sel, (nsel + 1) * sizeof(*sel));
		sel[nsel++] = k;
	}
	if (rc != EXIT_OK) {
		free(sel);
		return rc;
	}
	d = config_defaults();
	if (defaults)
		c = d;
	else if ((c = config_load(path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "oobd: %s\n", errs.v[i]);
		errors_free(&errs);
		config_free(d);
		free(sel);
		return EXIT_ERROR;
	}
	if (nsel > 0) {
		for (size_t i = 0; i < nsel; i++)
			if (!only_changed || !same_value(c, d, (size_t)sel[i]))
				print_key(c, (size_t)sel[i]);
	} else {
		const char *sec, *name;
		for (size_t i = 0; config_key_name(i, &sec, &name); i++)
			if (!only_changed || !same_value(c, d, i))
				print_key(c, i);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("oobd config: standard output");
		rc = EXIT_ERROR;
	}
	if (c != d)
		config_free(c);
	config_free(d);
	free(sel);
	return rc;
}
