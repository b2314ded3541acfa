/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_queue.c - `oobd queue`: the relay spool, as Postfix's postqueue -p
 * (list), postqueue -f (flush) and postsuper -d (delete ID, delete ALL).
 *
 * The running daemon owns the spool: its relay holds each message's retry
 * timer, connection and record write, so the commands go through it, over
 * the admin listener ([admin] listen; GET and POST /api/queue/v1, which
 * only local callers may use, see admin.c), never by touching files
 * behind its back. When nothing answers there, `list` reads the spool
 * directory itself, read-only, and says so; flush and delete need the
 * daemon and exit 3.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "conf.h"
#include "domains.h"
#include "record.h"
#include "spool.h"
#include "util.h"

static void
usage(FILE *f)
{
	fputs("usage: oobd queue [-c FILE] [--json] list\n"
	    "       oobd queue [-c FILE] flush\n"
	    "       oobd queue [-c FILE] delete ID... | delete ALL\n"
	    "The relay spool, through the running daemon's admin listener:\n"
	    "  list    every message: id, size, arrival, attempts, next "
	    "attempt, hop,\n"
	    "          sender, recipient, the reply that deferred it\n"
	    "  flush   retry every deferred message now\n"
	    "  delete  remove messages from the spool and their retries "
	    "(no record)\n"
	    "  -c, --config FILE  the daemon's configuration (default "
	    CLI_DEFAULT_CONFIG ")\n"
	    "  --json             list as one JSON object\n"
	    "Exit status: 0 ok, 1 error, 2 usage, 3 the daemon cannot be "
	    "reached.\n", f);
}

/* ------------------------------------------------------------- HTTP */

struct call {
	int	 code;		/* 0: no answer */
	char	*body;
	struct event_base *base;
};

static void
done_cb(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;

	if (req != NULL && evhttp_request_get_response_code(req) > 0) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(in);
		c->code = evhttp_request_get_response_code(req);
		c->body = xmalloc(n + 1);
		evbuffer_remove(in, c->body, n);
		c->body[n] = '\0';
	}
	/* Done: the kept-alive connection must not hold the loop. */
	event_base_loopexit(c->base, NULL);
}

/*
 * The admin listener's address as a client reaches it: a wildcard
 * listener is reached on loopback. Returns -1 with a message.
 */
static int
admin_addr(const struct config *cfg, char **host, unsigned *port)
{
	char *err = NULL;

	if (relay_host_parse(cfg->admin_listen, host, port, NULL, &err) != 0) {
		fprintf(stderr, "oobd queue: [admin] listen: %s\n", err);
		free(err);
		return -1;
	}
	if (strcmp(*host, "0.0.0.0") == 0) {
		free(*host);
		*host = xstrdup("127.0.0.1");
	} else if (strcmp(*host, "::") == 0) {
		free(*host);
		*host = xstrdup("::1");
	}
	return 0;
}

/* Whether something listens there (a refused connection: oobd is down). */
static bool
listening(const char *host, unsigned port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV }, *res;
	char p[8];
	bool up = false;

	snprintf(p, sizeof(p), "%u", port);
	if (getaddrinfo(host, p, &hints, &res) != 0)
		return false;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		up = connect(fd, res->ai_addr, res->ai_addrlen) == 0;
		close(fd);
	}
	freeaddrinfo(res);
	return up;
}

/* One request to the admin listener; c->code 0 when none came back. */
static void
http_call(const char *host, unsigned port, enum evhttp_cmd_type cmd,
    const char *uri, struct call *c)
{
	struct event_base *base = event_base_new();
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	char hosthdr[80];

	c->code = 0;
	c->body = NULL;
	if (base == NULL)
		fatalx("event_base_new failed");
	c->base = base;
	conn = evhttp_connection_base_new(base, NULL, host, (uint16_t)port);
	if (conn == NULL)
		fatalx("evhttp_connection_base_new failed");
	evhttp_connection_set_timeout(conn, 60);
	req = evhttp_request_new(done_cb, c);
	snprintf(hosthdr, sizeof(hosthdr), strchr(host, ':') ? "[%s]:%u" :
	    "%s:%u", host, port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    hosthdr);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "X-Oobd-Request", "queue");
	if (evhttp_make_request(conn, req, cmd, uri) == 0)
		event_base_dispatch(base);
	evhttp_connection_free(conn);
	event_base_free(base);
}

/* ------------------------------------------------------------- list */

static const char *
jstr(json_t *o, const char *k, const char *dflt)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

/* postqueue -p's layout, one message in three lines at most. */
static void
print_list(json_t *msgs, bool running)
{
	size_t i, n = json_array_size(msgs);
	json_int_t bytes = 0;
	json_t *m;

	if (n == 0) {
		puts("Queue is empty");
		return;
	}
	printf("%-32s %10s %-20s %5s %-20s %s\n", "Queue ID", "Size",
	    "Arrival (UTC)", "Tries", "Next attempt (UTC)", "State");
	json_array_foreach(msgs, i, m) {
		json_t *tries = json_object_get(m, "attempts");
		char t[24];
		bytes += json_integer_value(json_object_get(m, "size"));
		if (json_is_integer(tries))
			snprintf(t, sizeof(t), "%lld",
			    (long long)json_integer_value(tries));
		else
			strcpy(t, "-");
		printf("%-32s %10lld %-20s %5s %-20s %s\n", jstr(m, "id", "?"),
		    (long long)json_integer_value(json_object_get(m, "size")),
		    jstr(m, "created", "-"), t, jstr(m, "next_attempt", "-"),
		    jstr(m, "state", "-"));
		printf("  <%s> -> <%s> via %s\n", jstr(m, "sender", ""),
		    jstr(m, "recipient", ""), jstr(m, "hop", "-"));
		if (jstr(m, "last_reply", NULL) != NULL)
			printf("  (%s)\n", jstr(m, "last_reply", ""));
	}
	printf("-- %lld bytes in %zu message%s%s\n", (long long)bytes, n,
	    n == 1 ? "" : "s", running ? "" : " (read from the spool)");
}

static void
scanned(void *arg, struct spool_entry *e)
{
	json_t *a = arg;
	char created[48];

	format_rfc3339(created, sizeof(created), e->created.tv_sec, 0);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(e->id));
	json_object_set_new(o, "sender", json_string_lossy(e->sender));
	json_object_set_new(o, "recipient", json_string_lossy(e->recipient));
	json_object_set_new(o, "queue", json_string_lossy(e->queue));
	json_object_set_new(o, "hop", json_string_lossy(e->hop));
	json_object_set_new(o, "size", json_integer((json_int_t)e->size));
	json_object_set_new(o, "created", json_string(created));
	json_object_set_new(o, "attempts", json_null());
	json_object_set_new(o, "state", json_string("spooled"));
	json_object_set_new(o, "next_attempt", json_null());
	json_object_set_new(o, "last_reply", json_null());
	json_array_append_new(a, o);
	spool_entry_free(e);
}

/* The daemon is not there: the spool itself, read-only. */
static int
list_offline(const struct config *cfg, bool json, const char *why)
{
	json_t *a = json_array();
	int err;

	fprintf(stderr, "oobd queue: %s: reading the spool %s directly "
	    "(read-only; attempts and retry times are the daemon's)\n", why,
	    cfg->spool_dir);
	spool_scan(cfg->spool_dir, scanned, a, &err);
	if (err != 0 && err != ENOENT) {
		fprintf(stderr, "oobd queue: %s: %s\n", cfg->spool_dir,
		    strerror(err));
		json_decref(a);
		return EXIT_ERROR;
	}
	if (json) {
		json_t *o = json_pack("{s:o,s:b}", "messages", a, "running", 0);
		char *text = json_dumps(o, JSON_COMPACT);
		puts(text);
		free(text);
		json_decref(o);
	} else {
		print_list(a, false);
		json_decref(a);
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------- main */

int
cmd_queue(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CLI_DEFAULT_CONFIG, *verb;
	struct errors errs = { 0 };
	struct config *cfg;
	bool json = false;
	char *host = NULL;
	unsigned port = 0;
	int ch, rc = EXIT_OK;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'j':
			json = true;
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
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	verb = argv[optind++];
	if ((strcmp(verb, "list") == 0 || strcmp(verb, "flush") == 0) ?
	    optind != argc : strcmp(verb, "delete") != 0 || optind == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((cfg = config_load(path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "oobd: %s\n", errs.v[i]);
		errors_free(&errs);
		return EXIT_ERROR;
	}
	bool list = strcmp(verb, "list") == 0;
	if (cfg->admin_listen[0] == '\0') {
		if (list)
			rc = list_offline(cfg, json, "the admin listener is off "
			    "([admin] listen = \"\")");
		else {
			fprintf(stderr, "oobd queue: %s needs the daemon's admin "
			    "listener, which is off ([admin] listen = \"\")\n",
			    verb);
			rc = EXIT_NOT_RUNNING;
		}
		config_free(cfg);
		return rc;
	}
	if (admin_addr(cfg, &host, &port) != 0) {
		config_free(cfg);
		return EXIT_ERROR;
	}
	if (!listening(host, port)) {
		char *why = xasprintf("oobd is not running (nothing listens on "
		    "%s)", cfg->admin_listen);
		if (list)
			rc = list_offline(cfg, json, why);
		else {
			fprintf(stderr, "oobd queue: %s: nothing done\n", why);
			rc = EXIT_NOT_RUNNING;
		}
		free(why);
		free(host);
		config_free(cfg);
		return rc;
	}

	struct call c;
	if (list) {
		http_call(host, port, EVHTTP_REQ_GET, "/api/queue/v1", &c);
		json_t *o = c.code == 200 ? json_loads(c.body, 0, NULL) : NULL;
		json_t *msgs = json_object_get(o, "messages");
		if (!json_is_array(msgs)) {
			fprintf(stderr, "oobd queue: %s: %s\n",
			    cfg->admin_listen, c.code ? (c.body ? c.body : "") :
			    "no answer");
			rc = c.code ? EXIT_ERROR : EXIT_NOT_RUNNING;
		} else if (json) {
			json_object_set_new(o, "running", json_true());
			char *text = json_dumps(o, JSON_COMPACT);
			puts(text);
			free(text);
		} else
			print_list(msgs, true);
		json_decref(o);
		free(c.body);
	} else if (strcmp(verb, "flush") == 0) {
		http_call(host, port, EVHTTP_REQ_POST, "/api/queue/v1/flush", &c);
		json_t *o = c.code == 200 ? json_loads(c.body, 0, NULL) : NULL;
		if (!json_is_integer(json_object_get(o, "flushed"))) {
			fprintf(stderr, "oobd queue: flush: %s\n", c.code ?
			    (c.body ? c.body : "") : "no answer");
			rc = c.code ? EXIT_ERROR : EXIT_NOT_RUNNING;
		} else
			printf("oobd queue: %lld deferred message%s retried "
			    "now\n", (long long)json_integer_value(
			    json_object_get(o, "flushed")),
			    json_integer_value(json_object_get(o, "flushed")) ==
			    1 ? "" : "s");
		json_decref(o);
		free(c.body);
	} else {
		for (int i = optind; i < argc; i++) {
			char *enc = evhttp_encode_uri(argv[i]);
			char *uri = xasprintf("/api/queue/v1/delete?id=%s", enc);
			free(enc);
			http_call(host, port, EVHTTP_REQ_POST, uri, &c);
			free(uri);
			json_t *o = c.body ? json_loads(c.body, 0, NULL) : NULL;
			if (c.code == 200)
				printf("oobd queue: %s: %lld deleted%s\n",
				    argv[i], (long long)json_integer_value(
				    json_object_get(o, "deleted")),
				    json_integer_value(json_object_get(o,
				    "busy")) > 0 ? ", some busy (in delivery): "
				    "try again" : "");
			else {
				fprintf(stderr, "oobd queue: %s: %s\n", argv[i],
				    c.code == 0 ? "no answer" :
				    jstr(o, "error", c.body ? c.body : ""));
				rc = c.code ? EXIT_ERROR : EXIT_NOT_RUNNING;
			}
			if (c.code == 200 && json_integer_value(
			    json_object_get(o, "busy")) > 0)
				rc = EXIT_ERROR;
			json_decref(o);
			free(c.body);
		}
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("oobd queue: standard output");
		rc = EXIT_ERROR;
	}
	free(host);
	config_free(cfg);
	return rc;
}
