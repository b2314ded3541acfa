/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c - worker threads fed from one queue, handing finished jobs back
 * to the event loop through a libevent event.
 *
 * At most `slots` jobs compute at once (the configured worker count). A
 * job that waits without computing - for its log records to be synced -
 * gives its slot up for the wait (pool_wait_begin/end), and another thread
 * (an idle one, or a new one up to POOL_MAX_THREADS) takes the next job.
 * So the messages of every session can be written and wait for the same
 * fdatasync together, instead of at most `slots` of them.
 *
 * A job can also finish later, off the pool: its run() calls pool_defer()
 * and returns, and whoever finishes it calls pool_complete().
 */
#include "config.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "pool.h"
#include "util.h"

/* Threads in all: computing, waiting in a job, or idle. */
#define POOL_MAX_THREADS	256

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t	cond;
	struct job	*head, *tail;		/* waiting to run */
	struct job	*done_head, *done_tail;	/* waiting for done() */
	bool		 stopping;
	pthread_t	*threads;
	size_t		 nthreads;		/* started */
	size_t		 max_threads;
	size_t		 slots;			/* jobs computing at once */
	size_t		 running;		/* jobs computing now */
	size_t		 idle;			/* threads waiting for a job */
	size_t		 waiting;		/* threads inside a job's wait */
	size_t		 wakeups;		/* signals not yet taken */
	size_t		 deferred;		/* run, awaiting pool_complete */
	pthread_cond_t	 settled;		/* deferred fell to 0 */
	struct event	*ev_done;
	atomic_size_t	 pending;
};

/* The pool whose worker this thread is, for pool_wait_begin/end. */
static _Thread_local struct pool *self;
/* The job running on this worker called pool_defer(). */
static _Thread_local bool deferring;

static void *worker_main(void *);

static void
push(struct job **head, struct job **tail, struct job *j)
{
	j->next = NULL;
	if (*tail != NULL)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

/*
 * Hand a finished job to the event loop. Only the first of a batch wakes
 * it: until drain_done takes the list, the event is active already.
 */
static void
push_done_locked(struct pool *p, struct job *j)
{
	bool wake = p->done_head == NULL;

	push(&p->done_head, &p->done_tail, j);
	if (wake)
		event_active(p->ev_done, EV_READ, 0);
}

/* Start one more worker; false when none can be started. */
static bool
start_thread_locked(struct pool *p)
{
	if (p->nthreads >= p->max_threads)
		return false;
	if (pthread_create(&p->threads[p->nthreads], NULL, worker_main,
	    p) != 0)
		return false;
	p->nthreads++;
	return true;
}

/* A job is queued and a slot is free: get a thread to take it. */
static void
wake_locked(struct pool *p)
{
	if (p->head == NULL || p->running >= p->slots)
		return;
	if (p->idle > p->wakeups) {
		p->wakeups++;
		pthread_cond_signal(&p->cond);
	} else if (p->nthreads - p->waiting < p->slots)
		(void)start_thread_locked(p);
	/* else a thread that is computing takes the job when it is done */
}

static void *
worker_main(void *arg)
{
	struct pool *p = arg;

	self = p;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		/* While stopping, the queue is still run to its end. */
		while (p->head == NULL ? !p->stopping :
		    p->running >= p->slots) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
			if (p->wakeups > 0)
				p->wakeups--;
		}
		if (p->head == NULL)
			break;
		struct job *j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->running++;
		wake_locked(p);
		pthread_mutex_unlock(&p->lock);

		deferring = false;
		j->run(j);

		pthread_mutex_lock(&p->lock);
		p->running--;
		/* A deferred job may be finished, even freed, by now. */
		if (!deferring)
			push_done_locked(p, j);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void
pool_wait_begin(void)
{
	struct pool *p = self;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->running--;
	p->waiting++;
	wake_locked(p);
	pthread_mutex_unlock(&p->lock);
}

void
pool_wait_end(void)
{
	struct pool *p = self;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->running++;
	p->waiting--;
	pthread_mutex_unlock(&p->lock);
}

void
pool_defer(void)
{
	struct pool *p = self;

	if (p == NULL)
		fatalx("pool_defer: not on a pool worker");
	pthread_mutex_lock(&p->lock);
	p->deferred++;
	pthread_mutex_unlock(&p->lock);
	deferring = true;
}

void
pool_complete(struct pool *p, struct job *j)
{
	pthread_mutex_lock(&p->lock);
	push_done_locked(p, j);
	if (--p->deferred == 0)
		pthread_cond_broadcast(&p->settled);
	pthread_mutex_unlock(&p->lock);
}

/* On the event loop: call done() for every finished job. */
static void
drain_done(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct job *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->lock);
	list = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	while (list != NULL) {
		struct job *j = list;
		list = j->next;
		atomic_fetch_sub(&p->pending, 1);
		if (j->done != NULL)
			j->done(j);
	}
}

struct pool *
pool_new(struct event_base *base, size_t nthreads)
{
	struct pool *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_cond_init(&p->settled, NULL);
	p->ev_done = event_new(base, -1, 0, drain_done, p);
	if (p->ev_done == NULL)
		fatalx("pool: event_new failed");
	p->slots = nthreads ? nthreads : 1;
	p->max_threads = p->slots > POOL_MAX_THREADS ? p->slots :
	    POOL_MAX_THREADS;
	p->threads = xcalloc(p->max_threads, sizeof(*p->threads));
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->slots; i++)
		if (!start_thread_locked(p))
			fatalx("pool: cannot start a worker thread");
	pthread_mutex_unlock(&p->lock);
	return p;
}

void
pool_submit(struct pool *p, struct job *j)
{
	atomic_fetch_add(&p->pending, 1);
	pthread_mutex_lock(&p->lock);
	push(&p->head, &p->tail, j);
	wake_locked(p);
	pthread_mutex_unlock(&p->lock);
}

size_t
pool_pending(const struct pool *p)
{
	return atomic_load(&((struct pool *)p)->pending);
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* A thread may start another while the queue drains: join all. */
	for (size_t i = 0; ; i++) {
		pthread_t t;

		pthread_mutex_lock(&p->lock);
		if (i >= p->nthreads) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		t = p->threads[i];
		pthread_mutex_unlock(&p->lock);
		pthread_join(t, NULL);
	}
	pthread_mutex_lock(&p->lock);
	while (p->deferred > 0)
		pthread_cond_wait(&p->settled, &p->lock);
	pthread_mutex_unlock(&p->lock);
	drain_done(-1, 0, p);
	event_free(p->ev_done);
	pthread_cond_destroy(&p->settled);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
