/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool.c - one durable file per message waiting to be relayed.
 *
 * Durability follows the usual rename protocol: write a temporary file,
 * fsync it, rename it to its final name, fsync the directory. Only then
 * does the caller answer 250. Removal syncs the directory too, so a
 * delivered message does not come back after a crash.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "spool.h"
#include "util.h"

struct spool {
	char	*dir;
	int	 dirfd;
};

/* mkdir -p with mode for the last component. */
static int
mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = '/';
	}
	if (rc == 0 && mkdir(p, mode) != 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

struct spool *
spool_open(const char *dir, char **err)
{
	struct spool *sp;
	int fd;

	if (mkdir_p(dir, 0700) != 0) {
		*err = xasprintf("%s: cannot create the spool directory: %s",
		    dir, strerror(errno));
		return NULL;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*err = xasprintf("%s: cannot open the spool directory: %s",
		    dir, strerror(errno));
		return NULL;
	}
	sp = xcalloc(1, sizeof(*sp));
	sp->dir = xstrdup(dir);
	sp->dirfd = fd;
	return sp;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	close(sp->dirfd);
	free(sp->dir);
	free(sp);
}

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static char *
envelope_line(const struct spool_entry *e)
{
	json_t *o = json_object();
	char *text;

	json_object_set_new(o, "v", json_integer(1));
	json_object_set_new(o, "id", json_string(e->id));
	json_object_set_new(o, "sender", json_string_lossy(e->sender));
	json_object_set_new(o, "recipient", json_string_lossy(e->recipient));
	json_object_set_new(o, "queue", json_string_lossy(e->queue ? e->queue : ""));
	json_object_set_new(o, "listener",
	    json_string_lossy(e->listener ? e->listener : ""));
	json_object_set_new(o, "hop", json_string_lossy(e->hop ? e->hop : ""));
	json_object_set_new(o, "created", json_integer(e->created.tv_sec));
	json_object_set_new(o, "created_nsec", json_integer(e->created.tv_nsec));
	json_object_set_new(o, "meta",
	    e->meta != NULL ? json_incref(e->meta) : json_object());
	json_object_set_new(o, "headers",
	    e->headers != NULL ? json_incref(e->headers) : json_object());
	text = json_dump_compact(o);
	json_decref(o);
	return text;
}

int
spool_write(struct spool *sp, struct spool_entry *e, const char *trace,
    size_t tlen, const char *data, size_t len)
{
	char *tmp = xasprintf("%s/" SPOOL_TMP_PREFIX "%s", sp->dir, e->id);
	char *path = xasprintf("%s/%s", sp->dir, e->id);
	char *env = envelope_line(e);
	int fd, saved;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (write_all(fd, env, strlen(env)) != 0 || write_all(fd, "\n", 1) != 0 ||
	    write_all(fd, trace, tlen) != 0 || write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	/* Never replace a message already spooled under this id. */
	if (close(fd) != 0 || renameat2(AT_FDCWD, tmp, AT_FDCWD, path,
	    RENAME_NOREPLACE) != 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	if (fsync(sp->dirfd) != 0) {
		saved = errno;
		unlink(path);
		errno = saved;
		goto fail;
	}
	e->size = tlen + len;
	free(tmp);
	free(path);
	free(env);
	return 0;
fail:
	saved = errno;
	free(tmp);
	free(path);
	free(env);
	errno = saved;
	return -1;
}

int
spool_remove(struct spool *sp, const char *id)
{
	if (unlinkat(sp->dirfd, id, 0) != 0)
		return -1;
	return fsync(sp->dirfd);
}

/* The offset of the message text: just past the envelope line. */
static const char *
message_start(const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len);

	return nl != NULL ? nl + 1 : NULL;
}

char *
spool_read_message(struct spool *sp, const char *id, size_t *lenp)
{
	char *path = xasprintf("%s/%s", sp->dir, id);
	size_t len;
	char *text = read_file(path, &len);
	const char *m;

	free(path);
	if (text == NULL)
		return NULL;
	if ((m = message_start(text, len)) == NULL) {
		free(text);
		errno = EINVAL;
		return NULL;
	}
	*lenp = len - (size_t)(m - text);
	memmove(text, m, *lenp);
	text[*lenp] = '\0';
	return text;
}

void
spool_entry_free(struct spool_entry *e)
{
	if (e == NULL)
		return;
	free(e->sender);
	free(e->recipient);
	free(e->queue);
	free(e->listener);
	free(e->hop);
	if (e->meta != NULL)
		json_decref(e->meta);
	if (e->headers != NULL)
		json_decref(e->headers);
	free(e);
}

static bool
is_spool_id(const char *s)
{
	return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

static char *
get_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

/* Parse the envelope line of a spool file; NULL when it is not one. */
static struct spool_entry *
entry_load(struct spool *sp, const char *name)
{
	char *path = xasprintf("%s/%s", sp->dir, name);
	size_t len;
	char *text = read_file(path, &len);
	struct spool_entry *e = NULL;
	const char *m;
	json_t *o = NULL;

	free(path);
	if (text == NULL || (m = message_start(text, len)) == NULL)
		goto out;
	o = json_loadb(text, (size_t)(m - text - 1), 0, NULL);
	if (!json_is_object(o) ||
	    json_integer_value(json_object_get(o, "v")) != 1 ||
	    !json_is_string(json_object_get(o, "id")) ||
	    strcmp(json_string_value(json_object_get(o, "id")), name) != 0)
		goto out;
	e = xcalloc(1, sizeof(*e));
	memcpy(e->id, name, 33);
	e->sender = get_str(o, "sender");
	e->recipient = get_str(o, "recipient");
	e->queue = get_str(o, "queue");
	e->listener = get_str(o, "listener");
	e->hop = get_str(o, "hop");
	e->created.tv_sec = (time_t)json_integer_value(json_object_get(o, "created"));
	e->created.tv_nsec = (long)json_integer_value(json_object_get(o,
	    "created_nsec"));
	e->meta = json_incref(json_object_get(o, "meta"));
	e->headers = json_incref(json_object_get(o, "headers"));
	e->size = len - (size_t)(m - text);
	if (e->sender == NULL || e->recipient == NULL || e->queue == NULL ||
	    e->listener == NULL || e->hop == NULL ||
	    !json_is_object(e->meta) || !json_is_object(e->headers)) {
		spool_entry_free(e);
		e = NULL;
	}
out:
	if (o != NULL)
		json_decref(o);
	free(text);
	return e;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t
spool_recover(struct spool *sp, void (*fn)(void *arg, struct spool_entry *e),
    void *arg, size_t *removed)
{
	DIR *d = opendir(sp->dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, found = 0, gone = 0;

	if (d == NULL) {
		log_msg(LOG_ERR, NULL, "event=spool-unreadable dir=%s error=\"%s\"",
		    log_escape(sp->dir, strlen(sp->dir), 200), strerror(errno));
		if (removed != NULL)
			*removed = 0;
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, SPOOL_TMP_PREFIX,
		    strlen(SPOOL_TMP_PREFIX)) == 0) {
			if (unlinkat(sp->dirfd, de->d_name, 0) == 0) {
				gone++;
				log_msg(LOG_WARN, NULL, "event=spool-incomplete "
				    "file=%s action=removed", log_escape(de->d_name,
				    strlen(de->d_name), 100));
			} else
				log_msg(LOG_ERR, NULL, "event=spool-incomplete "
				    "file=%s error=\"%s\"", log_escape(de->d_name,
				    strlen(de->d_name), 100), strerror(errno));
			continue;
		}
		if (!is_spool_id(de->d_name))
			continue;
		names = xgrow(names, n, sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (gone > 0)
		fsync(sp->dirfd);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		struct spool_entry *e = entry_load(sp, names[i]);
		if (e == NULL)
			log_msg(LOG_ERR, NULL, "event=spool-invalid file=%s "
			    "action=kept", names[i]);
		else {
			found++;
			fn(arg, e);
		}
		free(names[i]);
	}
	free(names);
	if (removed != NULL)
		*removed = gone;
	return found;
}

size_t
spool_scan(const char *dir, void (*fn)(void *arg, struct spool_entry *e),
    void *arg, int *err)
{
	struct spool sp = { .dir = (char *)dir, .dirfd = -1 };
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, found = 0;

	*err = 0;
	if (d == NULL) {
		*err = errno;
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (is_spool_id(de->d_name)) {
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = xstrdup(de->d_name);
		}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		struct spool_entry *e = entry_load(&sp, names[i]);
		if (e != NULL) {
			found++;
			fn(arg, e);
		}
		free(names[i]);
	}
	free(names);
	return found;
}
