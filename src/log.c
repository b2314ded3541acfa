/*
 * log.c - the operational log on standard error.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static enum log_level current = LOG_INFO;

static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARN] = "warning",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void
log_set_level(enum log_level level)
{
	current = level;
}

void
log_msg(enum log_level level, const char *session, const char *fmt, ...)
{
	va_list ap;
	struct buf b = { 0 };

	if (level > current)
		return;
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
