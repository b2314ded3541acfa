/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c - allocation, strings, byte buffers, time formatting, ids and the
 * human-readable sizes and durations used by the configuration.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "util.h"

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	fputs("oobd: fatal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu bytes", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu x %zu bytes", nmemb, size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		fatalx("out of memory reallocating %zu bytes", n);
	return q;
}

void *
xgrow(void *p, size_t n, size_t size)
{
	/*
	 * The implied capacity is 4 for 1 to 4 elements, else the smallest
	 * power of two >= n: only an empty array or a full one (n a power of
	 * two from 4 up) needs a bigger block.
	 */
	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return p;
	size_t cap = n == 0 ? 4 : 2 * n;
	if (n > SIZE_MAX / 2 || (size != 0 && cap > SIZE_MAX / size))
		fatalx("array of %zu elements of %zu bytes too large", n, size);
	return xrealloc(p, cap * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	if (n > 0)	/* s may be NULL when n is 0 (an empty GMime buffer) */
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		fatalx("out of memory formatting a string");
	va_end(ap);
	return s;
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';	/* a reserved buffer is always a string */
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("buf_printf: bad format");
	if ((size_t)n < sizeof(small)) {
		buf_append(b, small, (size_t)n);
		return;
	}
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data ? b->data : xstrdup("");

	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
str_lower(char *s)
{
	for (char *p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

static int
ascii_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

bool
str_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
			return false;
	return *a == *b;
}

bool
str_iprefix(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (*s == '\0' ||
		    ascii_lower((unsigned char)*s) != ascii_lower((unsigned char)*prefix))
			return false;
	return true;
}

static bool
is_ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	    c == '\v';
}

char *
str_trim_dup(const char *s, size_t n)
{
	while (n > 0 && is_ascii_space(*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_ascii_space(s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/*
 * Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there
 * do not start one. Follows the Unicode "maximal subpart" rules that Rust's
 * decoder uses, so a bad sequence is replaced by one U+FFFD per subpart.
 */
static size_t
utf8_seq(const unsigned char *s, size_t n, size_t *badlen)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;

	*badlen = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (i >= n)
			return 0;
		unsigned char lo_i = i == 1 ? lo : 0x80;
		unsigned char hi_i = i == 1 ? hi : 0xBF;
		if (s[i] < lo_i || s[i] > hi_i)
			return 0;
		*badlen = i + 1;
	}
	return len;
}

/*
 * Eight bytes at a time over ASCII, which is nearly all of a bounce:
 * true when none of p[0..7] has its high bit set (and, for ascii8_nonul,
 * none is NUL).
 */
#define ONES	0x0101010101010101ULL
#define HIGHS	0x8080808080808080ULL

static inline bool
ascii8(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return (v & HIGHS) == 0;
}

static inline bool
ascii8_nonul(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return ((v | ((v - ONES) & ~v)) & HIGHS) == 0;
}

char *
utf8_lossy(const char *s, size_t n)
{
	struct buf b = { 0 };
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	buf_reserve(&b, n);
	while (i < n) {
		size_t start = i, bad = 1;

		/* Copy each run of valid sequences in one piece. */
		while (i < n) {
			if (n - i >= 8 && ascii8_nonul(p + i)) {
				i += 8;
				continue;
			}
			if (p[i] >= 0x01 && p[i] < 0x80) {
				i++;
				continue;
			}
			if (p[i] == 0)
				break;
			size_t len = utf8_seq(p + i, n - i, &bad);
			if (len == 0)
				break;
			i += len;
		}
		buf_append(&b, p + start, i - start);
		if (i < n) {
			buf_append(&b, "\xEF\xBF\xBD", 3);
			i += p[i] == 0 ? 1 : bad;
		}
	}
	return buf_steal(&b);
}

bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		if (n - i >= 8 && ascii8(p + i)) {
			i += 8;
			continue;
		}
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t bad, len = utf8_seq(p + i, n - i, &bad);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

/* v as exactly `width` decimal digits, zero-padded; the end. */
static char *
put_digits(char *p, unsigned long v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

/*
 * Every record has two of these, so the common case (years 0 to 9999,
 * nanoseconds in range) is written digit by digit rather than through
 * strftime and snprintf; other values take the general path.
 */
void
format_rfc3339(char *out, size_t outlen, time_t sec, long nsec)
{
	struct tm tm;
	char base[64], *p = base;
	long year, scaled;
	/* Fraction digits: none, or 3, 6 or 9, as few as keep the value. */
	int frac = nsec == 0 ? 0 : nsec % 1000000 == 0 ? 3 :
	    nsec % 1000 == 0 ? 6 : 9;

	if (outlen == 0)
		return;
	scaled = frac == 3 ? nsec / 1000000 : frac == 6 ? nsec / 1000 : nsec;
	gmtime_r(&sec, &tm);
	year = tm.tm_year + 1900L;
	if (year < 0 || year > 9999 || nsec < 0 || nsec > 999999999) {
		char ymd[48];

		strftime(ymd, sizeof(ymd), "%Y-%m-%dT%H:%M:%S", &tm);
		if (frac == 0)
			snprintf(out, outlen, "%sZ", ymd);
		else
			snprintf(out, outlen, "%s.%0*ldZ", ymd, frac, scaled);
		return;
	}
	p = put_digits(p, (unsigned long)year, 4);
	*p++ = '-';
	p = put_digits(p, (unsigned long)tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, (unsigned long)tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned long)tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned long)tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned long)tm.tm_sec, 2);
	if (frac != 0) {
		*p++ = '.';
		p = put_digits(p, (unsigned long)scaled, frac);
	}
	*p++ = 'Z';
	size_t n = (size_t)(p - base);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, base, n);
	out[n] = '\0';
}

/*
 * Spool ids are issued from one process-wide clock. libuuid keeps its
 * clock per thread and, without uuidd, asks the uuidd socket for every id
 * before falling back to it; two worker threads could then draw the same
 * timestamp. So libuuid makes one UUID v1 at the first call (the node),
 * with a random clock sequence, fresh at every start, and each id is that
 * UUID with the current time, kept strictly increasing under a lock, the
 * way libuuid serves ids from a uuidd block.
 */
static pthread_mutex_t spool_id_lock = PTHREAD_MUTEX_INITIALIZER;
static uuid_t spool_id_base;
static uint64_t spool_id_last;	/* last 60-bit timestamp issued */

void
spool_id_new(char out[33], struct timespec *created)
{
	/* 100 ns intervals from 1582-10-15 (the UUID epoch) to 1970-01-01. */
	static const uint64_t uuid_epoch = 0x01B21DD213814000ULL;
	uuid_t u;
	struct timeval tv;
	struct timespec now;
	static const char hex[] = "0123456789abcdef";

	/*
	 * Microseconds, as libuuid: the last 100 ns digit only counts the ids
	 * drawn within one microsecond.
	 */
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t t = (uint64_t)now.tv_sec * 10000000ULL +
	    (uint64_t)(now.tv_nsec / 1000) * 10 + uuid_epoch;
	pthread_mutex_lock(&spool_id_lock);
	if (spool_id_last == 0) {
		uuid_t r;

		uuid_generate_time(spool_id_base);
		/*
		 * A clock sequence of our own: this clock is not uuidd's, so
		 * must not share its sequence with other uuidd clients.
		 */
		uuid_generate_random(r);
		spool_id_base[8] = (unsigned char)(0x80 | (r[8] & 0x3f));
		spool_id_base[9] = r[9];
	}
	if (t <= spool_id_last)
		t = spool_id_last + 1;
	spool_id_last = t;
	memcpy(u, spool_id_base, sizeof(u));
	pthread_mutex_unlock(&spool_id_lock);
	u[0] = (unsigned char)(t >> 24);
	u[1] = (unsigned char)(t >> 16);
	u[2] = (unsigned char)(t >> 8);
	u[3] = (unsigned char)t;
	u[4] = (unsigned char)(t >> 40);
	u[5] = (unsigned char)(t >> 32);
	u[6] = (unsigned char)(0x10 | ((t >> 56) & 0x0f));
	u[7] = (unsigned char)(t >> 48);
	uuid_time(u, &tv);
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[u[i] >> 4];
		out[2 * i + 1] = hex[u[i] & 15];
	}
	out[32] = '\0';
	if (created != NULL) {
		created->tv_sec = tv.tv_sec;
		created->tv_nsec = tv.tv_usec * 1000L;
	}
}

void
uuid4_new(char out[37])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;

	while (is_ascii_space(*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || v < 0)
		return -1;
	while (is_ascii_space(*end))
		end++;

	static const struct {
		const char *unit;
		double mult;
	} units[] = {
		{ "", 1 }, { "b", 1 }, { "bytes", 1 },
		{ "k", 1e3 }, { "kb", 1e3 }, { "m", 1e6 }, { "mb", 1e6 },
		{ "g", 1e9 }, { "gb", 1e9 }, { "t", 1e12 }, { "tb", 1e12 },
		{ "kib", 1024.0 }, { "mib", 1048576.0 }, { "gib", 1073741824.0 },
		{ "tib", 1099511627776.0 },
	};
	for (size_t i = 0; i < nitems(units); i++) {
		if (str_ieq(end, units[i].unit)) {
			double bytes = floor(v * units[i].mult);
			if (bytes > 1.8e19)
				return -1;
			*out = (uint64_t)bytes;
			return 0;
		}
	}
	return -1;
}

int
parse_duration(const char *s, double *out)
{
	char *end;
	double v, total = 0;
	bool any = false;

	static const struct {
		const char *unit;
		double secs;
	} units[] = {
		{ "ms", 0.001 }, { "msec", 0.001 }, { "millisecond", 0.001 },
		{ "milliseconds", 0.001 },
		{ "s", 1 }, { "sec", 1 }, { "secs", 1 }, { "second", 1 },
		{ "seconds", 1 },
		{ "m", 60 }, { "min", 60 }, { "mins", 60 }, { "minute", 60 },
		{ "minutes", 60 },
		{ "h", 3600 }, { "hr", 3600 }, { "hrs", 3600 }, { "hour", 3600 },
		{ "hours", 3600 },
		{ "d", 86400 }, { "day", 86400 }, { "days", 86400 },
		{ "w", 604800 }, { "week", 604800 }, { "weeks", 604800 },
	};

	for (;;) {
		while (is_ascii_space(*s))
			s++;
		if (*s == '\0')
			break;
		if (!isdigit((unsigned char)*s))
			return -1;
		errno = 0;
		v = strtod(s, &end);
		if (errno != 0 || v < 0)
			return -1;
		while (is_ascii_space(*end))
			end++;
		const char *u = end;
		while (isalpha((unsigned char)*end))
			end++;
		size_t ulen = (size_t)(end - u);
		double mult = -1;
		if (ulen == 0)
			mult = 1;	/* a bare number is seconds */
		for (size_t i = 0; i < nitems(units) && mult < 0; i++)
			if (strlen(units[i].unit) == ulen &&
			    strncasecmp(u, units[i].unit, ulen) == 0)
				mult = units[i].secs;
		if (mult < 0)
			return -1;
		total += v * mult;
		any = true;
		s = end;
	}
	if (!any)
		return -1;
	*out = total;
	return 0;
}

char *
read_file(const char *path, size_t *lenp)
{
	struct buf b = { 0 };
	char chunk[65536];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return NULL;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			close(fd);
			buf_free(&b);
			errno = saved;
			return NULL;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	*lenp = b.len;
	return buf_steal(&b);
}

void
errors_add(struct errors *e, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		fatalx("out of memory formatting an error");
	va_end(ap);
	e->v = xgrow(e->v, e->n, sizeof(*e->v));
	e->v[e->n++] = s;
}

void
errors_free(struct errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}
