/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.h - worker threads for the work that must not stall the event loop
 * (parsing, classifying, writing and syncing the logs).
 *
 * A job's run() executes on a worker thread; its done() then executes on
 * the event loop thread. The job is owned by the caller throughout.
 * Jobs may finish in any order.
 */
#ifndef OOBD_POOL_H
#define OOBD_POOL_H

#include <stddef.h>

struct event_base;

struct job {
	void	(*run)(struct job *j);		/* worker thread */
	void	(*done)(struct job *j);		/* event loop thread; may be NULL */
	struct job *next;
};

struct pool;

struct pool *pool_new(struct event_base *base, size_t nthreads);
void	 pool_submit(struct pool *p, struct job *j);
/* Jobs submitted and not yet done. */
size_t	 pool_pending(const struct pool *p);
/*
 * Called by a job's run() around a wait that needs no CPU (its log records
 * being synced): the job's slot goes to the next queued job meanwhile.
 * No-op on a thread that is not a pool worker.
 */
void	 pool_wait_begin(void);
void	 pool_wait_end(void);
/*
 * Called by a job's run() that hands the job to something else to finish
 * (an asynchronous log commit): when run() returns, the job is not done
 * yet, and must not be touched by run() once handed over. The finisher
 * calls pool_complete() from any thread, and done() follows on the event
 * loop. pool_free() waits for every deferred job.
 */
void	 pool_defer(void);
void	 pool_complete(struct pool *p, struct job *j);
/* Finish every queued job (running done() too), then stop the threads. */
void	 pool_free(struct pool *p);

#endif
