/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - the operational log: one line of key=value pairs per event on
 * standard error (journald adds the time), starting with the session id
 * when there is one. Untrusted text goes through log_escape(). When
 * stderr is the journal (JOURNAL_STREAM names it), each line starts with
 * its syslog priority as "<N>", which journald reads as the level.
 */
#ifndef OOBD_LOG_H
#define OOBD_LOG_H

#include <stddef.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void	 log_set_level(enum log_level level);
/* The configured level ([listener] log_level), unless -v set one. */
void	 log_config_level(enum log_level level);
/* "error", "warning", "info" or "debug": 0, or -1 for anything else. */
int	 log_level_parse(const char *name, enum log_level *out);
/* "<N>" for level when stderr is the journal, else "". */
const char *log_prefix(enum log_level level);
/* "session=<id> " is prepended when session is not NULL. */
void	 log_msg(enum log_level level, const char *session, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Quote untrusted bytes for a key=value value: printable ASCII except '"'
 * and '\' as is, everything else as \xHH, at most max input bytes (with
 * "..." when cut). Returns a static per-thread buffer, valid until the
 * next call from the same thread.
 */
const char *log_escape(const char *s, size_t n, size_t max);

#endif
