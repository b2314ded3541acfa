/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retention.c - [logs] retention, the removal of old finished segments.
 *
 * A segment is finished when it is read-only (logfile.c makes it so when
 * it closes it, and at start after repairing it), so the write bits tell
 * the open segment and one awaiting repair apart without asking the log:
 * this file needs no hook in logfile.c. Its age is that of its last
 * record, the file's modification time, so a segment is removed only once
 * every record in it is past the retention. Files not named as segments
 * (an operator's notes, a dot file, a repair in progress) are never
 * touched.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"
#include "retention.h"
#include "util.h"

/* KumoMTA's segment name: "YYYYMMDD-HHMMSS", then ".f" with 3, 6 or 9 digits. */
static bool
segment_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 15 || strspn(s, "0123456789") != 8 || s[8] != '-' ||
	    strspn(s + 9, "0123456789") != 6)
		return false;
	if (n == 15)
		return true;
	return s[15] == '.' && (n == 19 || n == 22 || n == 25) &&
	    strspn(s + 16, "0123456789") == n - 16;
}

unsigned
retention_sweep(const char *dir, double max_age, time_t now, uint64_t *bytes)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned removed = 0;

	*bytes = 0;
	if (d == NULL) {
		log_msg(LOG_ERR, NULL, "event=log-retention-failed dir=%s "
		    "error=\"%s\"", log_escape(dir, strlen(dir), 200),
		    strerror(errno));
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (!segment_name(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || (st.st_mode & 0222) != 0 ||
		    (double)(now - st.st_mtime) <= max_age)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
			log_msg(LOG_ERR, NULL, "event=log-segment-remove-failed "
			    "file=%s error=\"%s\"", de->d_name, strerror(errno));
			continue;
		}
		removed++;
		*bytes += (uint64_t)st.st_size;
		metrics_segment_removed((uint64_t)st.st_size);
		log_msg(LOG_INFO, NULL, "event=log-segment-removed file=%s "
		    "bytes=%lld age=%llds", de->d_name, (long long)st.st_size,
		    (long long)(now - st.st_mtime));
	}
	closedir(d);
	return removed;
}

void
retention_tick(const char *dir, double retention)
{
	static struct timespec last;
	static bool swept;
	struct timespec now;
	double every = retention / 10;

	if (retention <= 0 || dir == NULL)
		return;
	if (every > 60)
		every = 60;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (swept && (double)(now.tv_sec - last.tv_sec) +
	    (double)(now.tv_nsec - last.tv_nsec) / 1e9 < every)
		return;
	swept = true;
	last = now;
	uint64_t bytes;
	retention_sweep(dir, retention, time(NULL), &bytes);
}
