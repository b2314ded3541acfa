/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.h - allocation, strings, byte buffers, time formatting and the
 * human-readable sizes and durations used by the configuration.
 */
#ifndef OOBD_UTIL_H
#define OOBD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

/* Fatal internal error: print "oobd: <message>" and abort. */
void fatalx(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* Allocators that never return NULL (they call fatalx instead). */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/*
 * Make room for element n of the array p, which holds n elements of size
 * bytes: call it before storing p[n] and incrementing the count. Growth is
 * geometric, so adding n elements one at a time copies O(n) bytes, not
 * O(n^2) (the allocator cannot always remap in place; AddressSanitizer's
 * never does). The capacity is implied by the count (at least 4, else the
 * smallest power of two >= n), so p must be NULL or a block that only
 * xgrow has grown (elements removed since are fine). Aborts when the size
 * overflows.
 */
void *xgrow(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated when len > 0. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};
void	 buf_reserve(struct buf *b, size_t extra);
void	 buf_append(struct buf *b, const void *p, size_t n);
void	 buf_puts(struct buf *b, const char *s);
void	 buf_putc(struct buf *b, char c);
void	 buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char	*buf_steal(struct buf *b);	/* returns data (never NULL), resets b */
void	 buf_free(struct buf *b);

/* ASCII helpers; none of them depend on the locale. */
char	*str_lower(char *s);				/* in place */
bool	 str_ieq(const char *a, const char *b);
bool	 str_iprefix(const char *s, const char *prefix);
char	*str_trim_dup(const char *s, size_t n);	/* copy without surrounding ASCII whitespace */

/*
 * Return a copy of s[0..n) that is valid UTF-8: every invalid sequence is
 * replaced by U+FFFD, as Rust's String::from_utf8_lossy does. NUL bytes are
 * kept out (replaced by U+FFFD) so the result is a C string.
 */
char	*utf8_lossy(const char *s, size_t n);
bool	 utf8_valid(const char *s, size_t n);

/*
 * Format a UTC time as RFC 3339 the way chrono's to_rfc3339_opts(AutoSi,
 * true) does: "2025-01-29T16:36:51Z", with ".fff", ".ffffff" or
 * ".fffffffff" only when the nanoseconds need them. out must hold 40 bytes.
 */
void	 format_rfc3339(char *out, size_t outlen, time_t sec, long nsec);

/*
 * A new spool id: a UUID v1 in 32-hex "simple" form, and the time encoded
 * in it (KumoMTA's `created`).
 */
void	 spool_id_new(char out[33], struct timespec *created);
/* A new UUID v4 in hyphenated form (session ids, node ids). */
void	 uuid4_new(char out[37]);

/*
 * "20MB", "1GB", "512 KiB", "1000" -> bytes. Decimal units (kB, MB, GB) are
 * powers of 1000, binary units (KiB, MiB, GiB) powers of 1024, as KumoMTA's
 * size strings. Returns 0 or -1 on a malformed string.
 */
int	 parse_size(const char *s, uint64_t *out);
/* "5 minutes", "30s", "1h", "2 days", "250ms" -> seconds. 0 or -1. */
int	 parse_duration(const char *s, double *out);

/* Read a whole file; NULL with errno set on failure. */
char	*read_file(const char *path, size_t *lenp);

/* A list of error messages, for loaders that report every problem at once. */
struct errors {
	char	**v;
	size_t	 n;
};
void	 errors_add(struct errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void	 errors_free(struct errors *e);

#endif
