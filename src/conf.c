/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.c - load oobd.toml into struct config.
 *
 * The file is turned into a jansson tree by the TOML bridge; a table of
 * known keys then drives the conversion, so every key has one row with
 * its type and default, and anything not in the table is an error.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "conf.h"
#include "domains.h"
#include "input.h"
#include "log.h"
#include "message.h"
#include "relay.h"
#include "tomlbridge.h"

enum key_type {
	K_STRING,
	K_STRLIST,
	K_SIZE,
	K_COUNT,
	K_DURATION,
	K_BOOL,
	K_LINE_ENDINGS,
	K_COMPRESSION,
	K_LEVEL,
	K_FACTOR,
	K_MINFREE,		/* "10%", or bytes: 1000000, "1GB" */
	K_MINFREE_INODES,	/* "10%", or inodes: 100000 */
};

struct key {
	const char *section;	/* "listener", "listener.trace_headers", ... */
	const char *name;
	enum key_type type;
	size_t	 offset;
};

#define KEY(sec, name, type, field) \
	{ sec, name, type, offsetof(struct config, field) }

static const struct key keys[] = {
	KEY("listener", "listen", K_STRLIST, listen),
	KEY("listener", "hostname", K_STRING, hostname),
	KEY("listener", "banner", K_STRING, banner),
	KEY("listener", "max_message_size", K_SIZE, max_message_size),
	KEY("listener", "max_recipients", K_COUNT, max_recipients),
	KEY("listener", "max_line_length", K_COUNT, max_line_length),
	KEY("listener", "max_errors", K_COUNT, max_errors),
	KEY("listener", "max_connections", K_COUNT, max_connections),
	KEY("listener", "max_connections_per_ip", K_COUNT,
	    max_connections_per_ip),
	KEY("listener", "max_connections_per_network", K_COUNT,
	    max_connections_per_network),
	KEY("listener", "max_junk_commands", K_COUNT, max_junk_commands),
	KEY("listener", "command_phase_timeout", K_DURATION,
	    command_phase_timeout),
	KEY("listener", "idle_timeout", K_DURATION, idle_timeout),
	KEY("listener", "data_timeout", K_DURATION, data_timeout),
	KEY("listener", "greet_wait", K_DURATION, greet_wait),
	KEY("listener", "max_header_size", K_SIZE, max_header_size),
	KEY("listener", "max_mime_depth", K_COUNT, max_mime_depth),
	KEY("listener", "max_mime_parts", K_COUNT, max_mime_parts),
	KEY("listener", "max_header_fields", K_COUNT, max_header_fields),
	KEY("listener", "max_received_headers", K_COUNT, max_received_headers),
	KEY("listener", "relay_hosts", K_STRLIST, relay_hosts),
	KEY("listener", "listener_domains", K_STRLIST, listener_domains),
	KEY("listener", "invalid_line_endings", K_LINE_ENDINGS,
	    invalid_line_endings),
	KEY("listener", "tls_certificate", K_STRING, tls_certificate),
	KEY("listener", "tls_private_key", K_STRING, tls_private_key),
	KEY("listener", "state_dir", K_STRING, state_dir),
	KEY("listener", "workers", K_COUNT, workers),
	KEY("listener", "user", K_STRING, user),
	KEY("listener", "group", K_STRING, group),
	KEY("listener", "log_level", K_STRING, log_level),
	KEY("listener", "shutdown_timeout", K_DURATION, shutdown_timeout),
	KEY("listener.trace_headers", "received_header", K_BOOL,
	    received_header),
	KEY("logs", "log_dir", K_STRING, log_dir),
	KEY("logs", "compression", K_COMPRESSION, compress),
	KEY("logs", "compression_level", K_LEVEL, compression_level),
	KEY("logs", "max_file_size", K_SIZE, max_file_size),
	KEY("logs", "max_segment_duration", K_DURATION, max_segment_duration),
	KEY("logs", "retention", K_DURATION, retention),
	KEY("logs", "fsync", K_BOOL, fsync),
	KEY("logs", "kumo_strict", K_BOOL, kumo_strict),
	KEY("logs", "meta", K_STRLIST, meta),
	KEY("logs", "headers", K_STRLIST, headers),
	KEY("logs", "max_records_per_message", K_COUNT,
	    max_records_per_message),
	KEY("logs", "min_free_space", K_MINFREE, log_min_free_space),
	KEY("logs", "min_free_inodes", K_MINFREE_INODES, log_min_free_inodes),
	KEY("relay", "min_free_space", K_MINFREE, spool_min_free_space),
	KEY("relay", "min_free_inodes", K_MINFREE_INODES,
	    spool_min_free_inodes),
	KEY("bounce_classifier", "files", K_STRLIST, classifier_files),
	KEY("admin", "listen", K_STRING, admin_listen),
	KEY("relay", "spool_dir", K_STRING, spool_dir),
	KEY("relay", "next_hop", K_STRING, next_hop),
	KEY("relay", "retry_interval", K_DURATION, retry_interval),
	KEY("relay", "retry_factor", K_FACTOR, retry_factor),
	KEY("relay", "max_retry_interval", K_DURATION, max_retry_interval),
	KEY("relay", "max_age", K_DURATION, max_age),
	KEY("relay", "connect_timeout", K_DURATION, connect_timeout),
	KEY("relay", "command_timeout", K_DURATION, command_timeout),
	KEY("relay", "tls_verify", K_BOOL, tls_verify),
	KEY("relay", "tls_ca_file", K_STRING, tls_ca_file),
};

/* Subtables that hold keys of their own. */
static const char *const sections[] = {
	"listener", "listener.trace_headers", "logs", "bounce_classifier",
	"relay", "admin",
};

static void
strlist_add(struct strlist *l, const char *s)
{
	l->v = xgrow(l->v, l->n, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

static void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

struct config *
config_defaults(void)
{
	struct config *c = xcalloc(1, sizeof(*c));
	char host[256];

	strlist_add(&c->listen, "0.0.0.0:25");
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	c->hostname = xstrdup(host);
	c->banner = xstrdup("ESMTP oobd");
	/* The same bound as oobd parse's --max-size default. */
	c->max_message_size = INPUT_MAX_SIZE_DEFAULT;
	c->max_recipients = 100;
	c->max_line_length = 2048;
	c->max_errors = 20;
	c->max_connections = 1000;
	c->max_connections_per_ip = 50;
	c->max_connections_per_network = 100;
	/* Postfix's smtpd_junk_command_limit */
	c->max_junk_commands = 100;
	c->command_phase_timeout = 600;
	c->idle_timeout = 300;
	c->data_timeout = 600;
	c->greet_wait = 0;
	c->max_header_size = 102400;
	c->max_mime_depth = 100;
	c->max_mime_parts = MESSAGE_MAX_PARTS;
	c->max_header_fields = MESSAGE_MAX_HEADER_FIELDS;
	c->max_received_headers = 100;
	c->invalid_line_endings = LINE_ENDINGS_DENY;
	c->received_header = true;
	c->state_dir = xstrdup(OOBD_LOCALSTATEDIR "/lib/oobd");
	/*
	 * Messages parsed at once. A message waiting for its records to be
	 * synced gives its worker up meanwhile (pool.c), so concurrent
	 * messages share one fdatasync whatever this is.
	 */
	c->workers = 2;
	c->log_level = xstrdup("info");
	c->shutdown_timeout = 30;
	c->admin_listen = xstrdup("127.0.0.1:8025");
	c->log_dir = xstrdup(OOBD_LOCALSTATEDIR "/log/oobd");
	c->compress = true;
	c->compression_level = 0;
	c->max_file_size = 1000000000;
	c->max_segment_duration = 0;
	c->retention = 0;		/* keep every segment */
	c->fsync = true;
	c->max_records_per_message = DEFAULT_MAX_RECORDS_PER_MESSAGE;
	/* KumoMTA's defaults: below them, reception is refused. */
	c->log_min_free_space = (struct min_free){ true, 10 };
	c->log_min_free_inodes = (struct min_free){ true, 10 };
	c->spool_min_free_space = (struct min_free){ true, 10 };
	c->spool_min_free_inodes = (struct min_free){ true, 10 };
	strlist_add(&c->classifier_files, OOBD_DATADIR "/bounce_rules.toml");
	c->spool_dir = xstrdup(OOBD_LOCALSTATEDIR "/spool/oobd");
	c->retry_interval = 60;
	c->retry_factor = 2;
	c->max_retry_interval = 3600;
	c->max_age = 5 * 86400;
	c->connect_timeout = 60;
	c->command_timeout = 300;
	return c;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	strlist_free(&c->listen);
	free(c->hostname);
	free(c->banner);
	strlist_free(&c->relay_hosts);
	strlist_free(&c->listener_domains);
	free(c->tls_certificate);
	free(c->tls_private_key);
	free(c->state_dir);
	free(c->log_dir);
	strlist_free(&c->meta);
	strlist_free(&c->headers);
	strlist_free(&c->classifier_files);
	free(c->spool_dir);
	free(c->next_hop);
	free(c->tls_ca_file);
	free(c->user);
	free(c->group);
	free(c->log_level);
	free(c->admin_listen);
	free(c);
}

static const struct key *
find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < nitems(keys); i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool
is_section(const char *name)
{
	for (size_t i = 0; i < nitems(sections); i++)
		if (strcmp(sections[i], name) == 0)
			return true;
	return false;
}

/* Convert one value into the struct field; a message on error. */
static char *
set_value(struct config *c, const struct key *k, json_t *v)
{
	void *field = (char *)c + k->offset;
	double d;
	uint64_t u;

	switch (k->type) {
	case K_STRING:
		if (!json_is_string(v))
			return xstrdup("expected a string");
		free(*(char **)field);
		*(char **)field = xstrdup(json_string_value(v));
		return NULL;
	case K_STRLIST: {
		struct strlist *l = field;
		size_t i;
		json_t *e;
		if (!json_is_array(v))
			return xstrdup("expected an array of strings");
		json_array_foreach(v, i, e)
			if (!json_is_string(e))
				return xasprintf("element %zu: expected a string", i);
		strlist_free(l);
		json_array_foreach(v, i, e)
			strlist_add(l, json_string_value(e));
		return NULL;
	}
	case K_SIZE:
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			u = (uint64_t)json_integer_value(v);
		else if (!json_is_string(v) ||
		    parse_size(json_string_value(v), &u) != 0)
			return xstrdup("expected a size such as \"20MB\"");
		*(uint64_t *)field = u;
		return NULL;
	case K_COUNT:
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return xstrdup("expected a positive integer");
		*(size_t *)field = (size_t)json_integer_value(v);
		return NULL;
	case K_DURATION:
		if (json_is_number(v) && json_number_value(v) >= 0)
			d = json_number_value(v);
		else if (!json_is_string(v) ||
		    parse_duration(json_string_value(v), &d) != 0)
			return xstrdup("expected a duration such as \"5 minutes\"");
		/*
		 * Durations become time_t and libevent timeouts: "1e300 s"
		 * would overflow them (undefined behaviour), so cap them at
		 * a hundred years, far beyond any timeout or age.
		 */
		if (!(d <= 100.0 * 365 * 86400))
			return xstrdup("expected a duration of at most 100 years");
		*(double *)field = d;
		return NULL;
	case K_BOOL:
		if (!json_is_boolean(v))
			return xstrdup("expected true or false");
		*(bool *)field = json_is_true(v);
		return NULL;
	case K_LINE_ENDINGS: {
		static const char *const names[] = { "Deny", "Fix", "Allow" };
		for (size_t i = 0; json_is_string(v) && i < nitems(names); i++)
			if (strcmp(json_string_value(v), names[i]) == 0) {
				*(enum line_endings *)field = (enum line_endings)i;
				return NULL;
			}
		return xstrdup("expected \"Deny\", \"Fix\" or \"Allow\"");
	}
	case K_COMPRESSION:
		if (json_is_string(v) && strcmp(json_string_value(v), "zstd") == 0)
			*(bool *)field = true;
		else if (json_is_string(v) &&
		    strcmp(json_string_value(v), "none") == 0)
			*(bool *)field = false;
		else
			return xstrdup("expected \"zstd\" or \"none\"");
		return NULL;
	case K_LEVEL:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 22)
			return xstrdup("expected an integer from 0 to 22");
		*(int *)field = (int)json_integer_value(v);
		return NULL;
	case K_FACTOR:
		if (!json_is_number(v) || json_number_value(v) < 1 ||
		    json_number_value(v) > 100)
			return xstrdup("expected a number from 1 to 100");
		*(double *)field = json_number_value(v);
		return NULL;
	case K_MINFREE:
	case K_MINFREE_INODES: {
		struct min_free *mf = field;
		const char *t = json_is_string(v) ? json_string_value(v) : NULL;
		size_t tl = t != NULL ? strlen(t) : 0;
		char *end;

		if (json_is_integer(v) && json_integer_value(v) >= 0) {
			*mf = (struct min_free){ false,
			    (double)json_integer_value(v) };
			return NULL;
		}
		if (t != NULL && tl > 1 && t[tl - 1] == '%') {
			double d = strtod(t, &end);
			if (end == t + tl - 1 && t[0] >= '0' && t[0] <= '9' &&
			    d >= 0 && d <= 100) {
				*mf = (struct min_free){ true, d };
				return NULL;
			}
		} else if (t != NULL && k->type == K_MINFREE &&
		    parse_size(t, &u) == 0) {
			*mf = (struct min_free){ false, (double)u };
			return NULL;
		}
		return xstrdup(k->type == K_MINFREE ?
		    "expected a percentage such as \"10%\" or a size such as "
		    "\"1GB\"" :
		    "expected a percentage such as \"10%\" or a number of "
		    "inodes");
	}
	}
	return xstrdup("unsupported key type");
}

static void
load_table(struct config *c, const char *path, const char *section,
    json_t *table, struct errors *errs)
{
	const char *name;
	json_t *v;

	json_object_foreach(table, name, v) {
		char *sub = section[0] ? xasprintf("%s.%s", section, name) :
		    xstrdup(name);
		const struct key *k = find_key(section, name);
		if (k != NULL) {
			char *why = set_value(c, k, v);
			if (why != NULL) {
				errors_add(errs, "%s: [%s] %s: %s", path,
				    section, name, why);
				free(why);
			}
		} else if (is_section(sub)) {
			if (json_is_object(v))
				load_table(c, path, sub, v, errs);
			else
				errors_add(errs, "%s: %s: expected a table",
				    path, sub);
		} else if (section[0])
			errors_add(errs, "%s: [%s] %s: unknown key", path,
			    section, name);
		else
			errors_add(errs, "%s: [%s]: unknown section", path, name);
		free(sub);
	}
}

/* A control character (or, in a name, a space) in a [listener] value. */
static void
wire_value(struct errors *errs, const char *path, const char *key,
    const char *v, bool name)
{
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0';
	    p++)
		if (*p < 0x20 || *p == 0x7f || (name && *p == ' ')) {
			errors_add(errs, "%s: [listener] %s: %s (0x%02x) not "
			    "allowed: the value is sent to SMTP peers", path, key,
			    *p == ' ' ? "space" : "control character", *p);
			return;
		}
}

static void
check(struct config *c, const char *path, struct errors *errs)
{
	if (c->listen.n == 0)
		errors_add(errs, "%s: [listener] listen: no address", path);
	if (c->hostname[0] == '\0')
		errors_add(errs, "%s: [listener] hostname: empty", path);
	/*
	 * Values sent on the wire (the greeting, EHLO replies, 421s, the
	 * relay's EHLO, Received headers): a CR or LF would add a reply or
	 * a command of its own.
	 */
	wire_value(errs, path, "hostname", c->hostname, true);
	wire_value(errs, path, "banner", c->banner, false);
	if ((c->tls_certificate == NULL) != (c->tls_private_key == NULL))
		errors_add(errs, "%s: [listener] tls_certificate and "
		    "tls_private_key go together", path);
	if (c->max_line_length < 512)
		errors_add(errs, "%s: [listener] max_line_length: below the "
		    "512 octets RFC 5321 requires", path);
	if (c->max_recipients < 100)
		errors_add(errs, "%s: [listener] max_recipients: below the "
		    "100 recipients RFC 5321 requires", path);
	if (c->max_message_size < 65536)
		errors_add(errs, "%s: [listener] max_message_size: below the "
		    "64 KB RFC 5321 requires", path);
	if (c->idle_timeout <= 0 || c->data_timeout <= 0 ||
	    c->command_phase_timeout <= 0)
		errors_add(errs, "%s: [listener] timeouts must be positive", path);
	if (c->max_header_size < 1000)
		errors_add(errs, "%s: [listener] max_header_size: below the "
		    "1000 octets of one RFC 5322 line", path);
	if (c->max_header_fields < 100)
		errors_add(errs, "%s: [listener] max_header_fields: below 100 "
		    "(real messages carry dozens)", path);
	if (c->workers > 256)
		errors_add(errs, "%s: [listener] workers: at most 256", path);
	enum log_level lv;
	if (log_level_parse(c->log_level, &lv) != 0)
		errors_add(errs, "%s: [listener] log_level: expected \"error\", "
		    "\"warning\", \"info\" or \"debug\"", path);
	if (c->shutdown_timeout <= 0)
		errors_add(errs, "%s: [listener] shutdown_timeout: must be "
		    "positive", path);
	if (c->user != NULL && c->user[0] == '\0')
		errors_add(errs, "%s: [listener] user: empty", path);
	if (c->group != NULL && (c->group[0] == '\0' || c->user == NULL))
		errors_add(errs, "%s: [listener] group: %s", path,
		    c->user == NULL ? "needs user" : "empty");
	if (c->retry_interval <= 0 || c->connect_timeout <= 0 ||
	    c->command_timeout <= 0 || c->max_age <= 0)
		errors_add(errs, "%s: [relay] retry_interval, max_age and the "
		    "timeouts must be positive", path);
	if (c->max_retry_interval < c->retry_interval)
		errors_add(errs, "%s: [relay] max_retry_interval: below "
		    "retry_interval", path);
}

struct config *
config_load_for_check(const char *path, struct errors *errs)
{
	struct config *c = config_defaults();
	char *err = NULL;
	json_t *root;

	c->path = xstrdup(path);
	root = load_data_file(path, 0, &err);
	if (root == NULL) {
		errors_add(errs, "%s", err ? err : path);
		free(err);
		config_free(c);
		return NULL;
	}
	if (!json_is_object(root))
		errors_add(errs, "%s: expected a table at the top", path);
	else
		load_table(c, path, "", root, errs);
	json_decref(root);
	check(c, path, errs);
	return c;
}

struct config *
config_load(const char *path, struct errors *errs)
{
	size_t before = errs->n;
	struct config *c = config_load_for_check(path, errs);

	if (c != NULL && errs->n != before) {
		config_free(c);
		return NULL;
	}
	return c;
}

/* Whether path can be opened for reading; a keyed error if not. */
static bool
file_readable(const struct config *c, const char *key, const char *path,
    struct errors *errs)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		errors_add(errs, "%s: %s: %s: %s", c->path ? c->path : "", key,
		    path, strerror(errno));
		return false;
	}
	fclose(f);
	return true;
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

void
config_check_files(struct config *c, struct errors *errs)
{
	struct strlist readable = { 0 };

	for (size_t i = 0; i < c->listener_domains.n; i++)
		if (file_readable(c, "[listener] listener_domains",
		    c->listener_domains.v[i], errs))
			strlist_add(&readable, c->listener_domains.v[i]);
	if (readable.n > 0) {
		struct domains *d = domains_load(
		    (const char *const *)readable.v, readable.n, errs);
		if (d != NULL) {
			relay_check_domains(c, d, errs);
			domains_free(d);
		}
	}
	strlist_free(&readable);
	strlist_free(&c->listener_domains);

	for (size_t i = 0; i < c->classifier_files.n; i++) {
		const char *f = c->classifier_files.v[i];
		char *err = NULL;
		struct classifier *cl;

		if (!file_readable(c, "[bounce_classifier] files", f, errs))
			continue;
		if (!has_suffix(f, ".toml") && !has_suffix(f, ".json")) {
			errors_add(errs, "%s: [bounce_classifier] files: %s: "
			    "unsupported file type: the name must end in .toml "
			    "or .json", c->path ? c->path : "", f);
			continue;
		}
		cl = classifier_load(&f, 1, &err);
		if (cl == NULL) {
			errors_add(errs, "%s", err ? err : f);
			free(err);
		} else
			classifier_unref(cl);
	}
	strlist_free(&c->classifier_files);
}

/* ---- `oobd config`: the table read back ---- */

bool
config_key_name(size_t i, const char **section, const char **name)
{
	if (i >= nitems(keys))
		return false;
	*section = keys[i].section;
	*name = keys[i].name;
	return true;
}

/* A number of seconds or a factor: an integer when it is one. */
static json_t *
number_value(double d)
{
	if (d == (double)(json_int_t)d)
		return json_integer((json_int_t)d);
	return json_real(d);
}

char *
config_key_value(const struct config *c, size_t i)
{
	const struct key *k = &keys[i];
	const void *field = (const char *)c + k->offset;
	json_t *v = NULL;
	char *text;

	switch (k->type) {
	case K_STRING:
		if (*(char *const *)field == NULL)
			return NULL;
		v = json_string(*(char *const *)field);
		break;
	case K_STRLIST: {
		const struct strlist *l = field;
		v = json_array();
		for (size_t j = 0; j < l->n; j++)
			json_array_append_new(v, json_string(l->v[j]));
		break;
	}
	case K_SIZE:
		v = json_integer((json_int_t)*(const uint64_t *)field);
		break;
	case K_COUNT:
		v = json_integer((json_int_t)*(const size_t *)field);
		break;
	case K_DURATION:
	case K_FACTOR:
		v = number_value(*(const double *)field);
		break;
	case K_BOOL:
		v = json_boolean(*(const bool *)field);
		break;
	case K_LINE_ENDINGS: {
		static const char *const names[] = { "Deny", "Fix", "Allow" };
		v = json_string(names[*(const enum line_endings *)field]);
		break;
	}
	case K_COMPRESSION:
		v = json_string(*(const bool *)field ? "zstd" : "none");
		break;
	case K_LEVEL:
		v = json_integer(*(const int *)field);
		break;
	case K_MINFREE:
	case K_MINFREE_INODES: {
		const struct min_free *mf = field;
		if (mf->percent) {
			char pct[32];
			snprintf(pct, sizeof(pct), "%g%%", mf->value);
			v = json_string(pct);
		} else
			v = json_integer((json_int_t)mf->value);
		break;
	}
	}
	if (v == NULL)
		return NULL;
	/*
	 * JSON strings, numbers, booleans and arrays of strings are TOML
	 * values as they are (TOML basic strings have JSON's escapes).
	 */
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (text == NULL)
		fatalx("out of memory");
	return text;
}
