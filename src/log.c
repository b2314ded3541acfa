/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - the operational log on standard error.
 */
#include "config.h"

#include <sys/stat.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static enum log_level current = LOG_INFO;
static bool explicit_level;	/* set on the command line: wins */

static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARN] = "warning",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* sd-daemon.h's SD_ERR, SD_WARNING, SD_INFO and SD_DEBUG. */
static const char *const level_prefixes[] = {
	[LOG_ERR] = "<3>", [LOG_WARN] = "<4>",
	[LOG_INFO] = "<6>", [LOG_DEBUG] = "<7>",
};

static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static bool journal;

/*
 * systemd sets JOURNAL_STREAM to "DEV:INO" of the stream it connects to
 * stderr; the variable is inherited, so it counts only while stderr is
 * still that very stream (not when a shell redirected it to a file).
 */
static void
journal_detect(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat st;
	char end;

	journal = env != NULL &&
	    sscanf(env, "%ju:%ju%c", &dev, &ino, &end) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

const char *
log_prefix(enum log_level level)
{
	pthread_once(&journal_once, journal_detect);
	return journal ? level_prefixes[level] : "";
}

void
log_set_level(enum log_level level)
{
	current = level;
	explicit_level = true;
}

void
log_config_level(enum log_level level)
{
	if (!explicit_level)
		current = level;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; name != NULL && i < nitems(level_names); i++)
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

void
log_msg(enum log_level level, const char *session, const char *fmt, ...)
{
	va_list ap;
	struct buf b = { 0 };

	if (level > current)
		return;
	buf_puts(&b, log_prefix(level));
	if (session != NULL)
		buf_printf(&b, "session=%s ", session);
	buf_printf(&b, "level=%s ", level_names[level]);
	va_start(ap, fmt);
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		fatalx("out of memory formatting a log line");
	va_end(ap);
	buf_puts(&b, msg);
	free(msg);
	buf_putc(&b, '\n');
	/* One write per line keeps lines whole between threads. */
	fwrite(b.data, 1, b.len, stderr);
	fflush(stderr);
	buf_free(&b);
}

const char *
log_escape(const char *s, size_t n, size_t max)
{
	static _Thread_local char out[4 * 256 + 8];
	size_t o = 0;

	if (max > 256)
		max = 256;
	out[o++] = '"';
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
	}
	if (n > max) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
