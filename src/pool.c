/*
 * pool.c - a fixed set of worker threads fed from one queue, handing
 * finished jobs back to the event loop through a libevent event.
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

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t	cond;
	struct job	*head, *tail;		/* waiting to run */
	struct job	*done_head, *done_tail;	/* waiting for done() */
	bool		 stopping;
	pthread_t	*threads;
	size_t		 nthreads;
	struct event	*ev_done;
	atomic_size_t	 pending;
};

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

static void *
worker_main(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->head == NULL)
			break;
		struct job *j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		j->run(j);

		pthread_mutex_lock(&p->lock);
		push(&p->done_head, &p->done_tail, j);
		event_active(p->ev_done, EV_READ, 0);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
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
	p->ev_done = event_new(base, -1, 0, drain_done, p);
	if (p->ev_done == NULL)
		fatalx("pool: event_new failed");
	p->nthreads = nthreads ? nthreads : 1;
	p->threads = xcalloc(p->nthreads, sizeof(*p->threads));
	for (size_t i = 0; i < p->nthreads; i++)
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
			fatalx("pool: cannot start a worker thread");
	return p;
}

void
pool_submit(struct pool *p, struct job *j)
{
	atomic_fetch_add(&p->pending, 1);
	pthread_mutex_lock(&p->lock);
	push(&p->head, &p->tail, j);
	pthread_cond_signal(&p->cond);
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
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	drain_done(-1, 0, p);
	event_free(p->ev_done);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
