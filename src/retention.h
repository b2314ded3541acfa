/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retention.h - [logs] retention: finished log segments older than the
 * retention are removed.
 */
#ifndef OOBD_RETENTION_H
#define OOBD_RETENTION_H

#include <stdint.h>
#include <time.h>

/*
 * Remove from dir every finished segment whose modification time (its
 * last record) is before now - max_age: a file named as a segment
 * ("YYYYMMDD-HHMMSS" with an optional fraction) that is read-only, the
 * mark of a finished segment, so never the one being written nor one a
 * failure left for repair. Each removal is logged and counted in the
 * metrics. Returns the number of segments removed, their bytes in *bytes.
 */
unsigned retention_sweep(const char *dir, double max_age, time_t now,
	    uint64_t *bytes);

/*
 * The daemon's timer (every second): sweep when retention is set, first
 * at once, then every minute, or every tenth of the retention when that is
 * shorter (but at most once a second).
 */
void	 retention_tick(const char *dir, double retention);

#endif
