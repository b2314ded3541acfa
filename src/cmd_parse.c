/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_parse.c - `oobd parse`: run the ingestion pipeline over message
 * files, Maildirs, mbox files or standard input and print the records the
 * daemon would log, one compact JSON object per line.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "cli.h"
#include "cmd_parse.h"
#include "conf.h"
#include "ingest.h"
#include "input.h"
#include "message.h"
#include "util.h"

/* Where the shipped rules are when oobd runs from its build tree. */
#ifndef OOBD_SOURCE_CONFDIR
#define OOBD_SOURCE_CONFDIR NULL
#endif
#define NODEID_FILE OOBD_LOCALSTATEDIR "/lib/oobd/nodeid"

struct parse_ctx {
	struct ingest_config cfg;
	const char *sender;	/* --sender, or NULL */
	const char *recipient;	/* --recipient, or NULL */
	const char *peer_ip;
	struct input_opts in;	/* --max-size in in.max_size */
	size_t	 max_records;	/* --max-records: OOB records per message */
	bool	 failed;
};

static void
usage(FILE *f)
{
	fputs("usage: oobd parse [--sender ADDR] [--recipient ADDR] "
	    "[--peer-ip IP]\n"
	    "                  [--rules FILE]... [--all] [--kumo-strict] "
	    "[--max-records N]\n                  [--max-size SIZE] INPUT...\n"
	    "INPUT is a message file, a Maildir, a directory of message files, "
	    "an mbox file,\nor - for standard input.\n", f);
}

/*
 * The address in a header value such as "Name <a@b>": GMime's address
 * parser, so groups, comments and encoded words are handled.
 */
static char *
header_address(GMimeObject *msg, const char *name)
{
	const char *value = g_mime_object_get_header(msg, name);
	InternetAddressList *list;
	char *addr = NULL;

	if (value == NULL)
		return NULL;
	list = internet_address_list_parse(NULL, value);
	if (list == NULL)
		return NULL;
	for (int i = 0; i < internet_address_list_length(list) && !addr; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *a = internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia));
			if (a != NULL && *a != '\0')
				addr = xstrdup(a);
		}
	}
	g_object_unref(list);
	return addr;
}

/* The Return-Path address without its angle brackets ("" for <>). */
static char *
return_path(GMimeObject *msg)
{
	const char *v = g_mime_object_get_header(msg, "Return-Path");
	char *s, *p;

	if (v == NULL)
		return NULL;
	s = str_trim_dup(v, strlen(v));
	p = s;
	if (*p == '<') {
		p++;
		char *end = strchr(p, '>');
		if (end != NULL)
			*end = '\0';
	}
	memmove(s, p, strlen(p) + 1);
	return s;
}

static void
print_record(void *arg, struct record *r)
{
	struct parse_ctx *ctx = arg;
	char *line = record_dump(r, ctx->cfg.kumo_strict);

	fputs(line, stdout);
	fputc('\n', stdout);
	free(line);
	record_free(r);
}

static int
parse_one(void *arg, const char *name, const char *data, size_t len)
{
	struct parse_ctx *ctx = arg;
	struct message m;
	struct timespec created, now;
	char id[33];
	char *sender = NULL, *rcpt = NULL;

	if (len == 0) {
		fprintf(stderr, "oobd: %s: empty message\n", name);
		return -1;
	}
	if (message_load(&m, data, len) != 0 &&
	    (m.too_many_fields || m.too_many_parts)) {
		if (m.too_many_fields)
			fprintf(stderr, "oobd: %s: more than %d header fields "
			    "in one block (not parsed)\n", name,
			    MESSAGE_MAX_HEADER_FIELDS);
		else
			fprintf(stderr, "oobd: %s: more than %d MIME parts "
			    "(not parsed)\n", name, MESSAGE_MAX_PARTS);
		message_free(&m);
		return -1;
	}
	if (m.mime == NULL) {
		fprintf(stderr, "oobd: %s: not a message\n", name);
		message_free(&m);
		return -1;
	}
	if (ctx->recipient != NULL)
		rcpt = xstrdup(ctx->recipient);
	else {
		static const char *const hdrs[] = {
			"Delivered-To", "X-Original-To", "To"
		};
		for (size_t i = 0; i < nitems(hdrs) && rcpt == NULL; i++)
			rcpt = header_address(m.mime, hdrs[i]);
	}
	if (ctx->sender != NULL)
		sender = xstrdup(ctx->sender);
	else if ((sender = return_path(m.mime)) == NULL)
		sender = xstrdup("");

	const char *rcpts[1] = { rcpt };
	struct envelope env = {
		.sender = sender,
		.recipients = rcpts,
		.nrecipients = rcpt != NULL ? 1 : 0,
		.peer_name = "",
		.peer_addr = ctx->peer_ip,
	};
	spool_id_new(id, &created);
	clock_gettime(CLOCK_REALTIME, &now);
	/* Printed as built, under the daemon's default record cap. */
	struct ingest_stream st = { .emit = print_record, .arg = ctx,
	    .max_oob = ctx->max_records };
	ingest_message_stream(&ctx->cfg, &env, &m, id, &created, &now, &st);
	if (st.dropped > 0)
		fprintf(stderr, "oobd: %s: records capped: kept the first %zu "
		    "OOB records, left out %llu (max_records_per_message)\n",
		    name, st.oob, (unsigned long long)st.dropped);
	message_free(&m);
	free(sender);
	free(rcpt);
	return 0;
}

static void
input_error(void *arg, const char *name, const char *reason)
{
	struct parse_ctx *ctx = arg;

	ctx->failed = true;
	fprintf(stderr, "oobd: %s: %s\n", name, reason);
}

/* The node id kept by the daemon, or a new one for this run. */
static char *
load_nodeid(void)
{
	size_t len;
	char *text = read_file(NODEID_FILE, &len);
	char id[37];

	if (text != NULL) {
		char *t = str_trim_dup(text, len);
		free(text);
		if (strlen(t) == 36)
			return t;
		free(t);
	}
	uuid4_new(id);
	return xstrdup(id);
}

/* The shipped rule file: installed, else the one in the source tree. */
static char *
default_rules(void)
{
	char *path = xstrdup(OOBD_DATADIR "/bounce_rules.toml");

	if (access(path, R_OK) == 0 || OOBD_SOURCE_CONFDIR == NULL)
		return path;
	free(path);
	return xasprintf("%s/bounce_rules.toml", OOBD_SOURCE_CONFDIR);
}

int
cmd_parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sender", required_argument, NULL, 's' },
		{ "recipient", required_argument, NULL, 'r' },
		{ "peer-ip", required_argument, NULL, 'p' },
		{ "rules", required_argument, NULL, 'R' },
		{ "all", no_argument, NULL, 'a' },
		{ "kumo-strict", no_argument, NULL, 'k' },
		{ "max-size", required_argument, NULL, 'S' },
		{ "max-records", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct parse_ctx ctx = {
		.cfg = {
			.log_arf = true,
			.log_oob = true,
			.reception_protocol = "ESMTP",
		},
		.peer_ip = "0.0.0.0",
		.in = {
			.fn = parse_one,
			.errfn = input_error,
			.max_size = INPUT_MAX_SIZE_DEFAULT,
		},
		.max_records = DEFAULT_MAX_RECORDS_PER_MESSAGE,
	};
	const char **rules = NULL;
	size_t nrules = 0;
	char *deflt = NULL, *err = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:r:p:R:akh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			ctx.sender = optarg;
			break;
		case 'r':
			ctx.recipient = optarg;
			break;
		case 'p':
			ctx.peer_ip = optarg;
			break;
		case 'R':
			rules = xgrow(rules, nrules, sizeof(*rules));
			rules[nrules++] = optarg;
			break;
		case 'a':
			ctx.cfg.all_actions = true;
			break;
		case 'k':
			ctx.cfg.kumo_strict = true;
			break;
		case 'S': {
			uint64_t v;

			if (parse_size(optarg, &v) != 0 || v < 1 ||
			    v > SIZE_MAX - 1) {
				fprintf(stderr, "oobd: --max-size: expected a size "
				    "such as \"20MB\"\n");
				usage(stderr);
				free(rules);
				return 2;
			}
			ctx.in.max_size = (size_t)v;
			break;
		}
		case 'm': {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v < 1 || v > SIZE_MAX || optarg[0] == '-') {
				fprintf(stderr, "oobd: --max-records: expected a "
				    "positive integer\n");
				usage(stderr);
				free(rules);
				return 2;
			}
			ctx.max_records = (size_t)v;
			break;
		}
		case 'h':
			usage(stdout);
			free(rules);
			return 0;
		case 'V':
			cli_version(stdout);
			free(rules);
			return 0;
		default:
			usage(stderr);
			free(rules);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		free(rules);
		return 2;
	}
	if (nrules == 0) {
		deflt = default_rules();
		rules = xmalloc(sizeof(*rules));
		rules[nrules++] = deflt;
	}
	ctx.cfg.classifier = classifier_load(rules, nrules, &err);
	if (ctx.cfg.classifier == NULL) {
		fprintf(stderr, "oobd: %s\n", err ? err : "cannot load rules");
		free(err);
		free(rules);
		free(deflt);
		return 2;
	}
	char *nodeid = load_nodeid();
	ctx.cfg.nodeid = nodeid;

	for (int i = optind; i < argc; i++)
		if (input_each(argv[i], &ctx.in, &ctx) != 0)
			ctx.failed = true;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "oobd: writing records: %s\n", strerror(errno));
		ctx.failed = true;
	}
	classifier_unref(ctx.cfg.classifier);
	free(nodeid);
	free(rules);
	free(deflt);
	return ctx.failed ? 1 : 0;
}
