/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pool.c - the worker pool: the configured number of jobs compute at
 * once, a job waiting between pool_wait_begin() and pool_wait_end() lets
 * the next job run, a deferred job holds no thread and is done only once
 * completed, and every done() runs on the event loop.
 */
#include "testutil.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <time.h>

#include "pool.h"

#define NJOBS	12

struct state {
	pthread_mutex_t mu;
	pthread_cond_t	cv;
	int		 computing;	/* jobs inside run(), before waiting */
	int		 max_computing;
	int		 finished;	/* done() calls */
	bool		 released;	/* the waiting jobs may go on */
	int		 waiting;	/* jobs inside pool_wait_begin/end */
	int		 started;	/* run() calls */
};

struct tjob {
	struct job	 job;
	struct state	*st;
	bool		 waits;		/* wait until released */
	bool		 timed_out;	/* never released */
	int		 seen_waiting;	/* waiting jobs when run() started */
};

/* Waits on st->cv, bounded so that a broken pool fails instead of hanging. */
static bool
wait_for(struct state *st, bool (*cond)(struct state *))
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	while (!cond(st))
		if (pthread_cond_timedwait(&st->cv, &st->mu, &until) != 0)
			return cond(st);
	return true;
}

static bool
is_released(struct state *st)
{
	return st->released;
}

static void
tjob_run(struct job *j)
{
	struct tjob *t = (struct tjob *)j;
	struct state *st = t->st;

	pthread_mutex_lock(&st->mu);
	t->seen_waiting = st->waiting;
	st->started++;
	if (++st->computing > st->max_computing)
		st->max_computing = st->computing;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	if (!t->waits) {
		pthread_mutex_lock(&st->mu);
		st->computing--;
		pthread_mutex_unlock(&st->mu);
		return;
	}
	pthread_mutex_lock(&st->mu);
	st->computing--;
	st->waiting++;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);

	pool_wait_begin();
	pthread_mutex_lock(&st->mu);
	t->timed_out = !wait_for(st, is_released);
	st->waiting--;
	pthread_mutex_unlock(&st->mu);
	pool_wait_end();
}

static void
tjob_done(struct job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->st->finished++;
}

static void
state_init(struct state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/*
 * Run the event loop until every job's done() ran. A 10 ms timer keeps
 * each pass from returning at once, so 6000 passes bound it to a minute.
 */
static void
loop_until_done(struct event_base *base, struct state *st, int n)
{
	struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
	struct timeval tv = { 0, 10000 };

	event_add(t, &tv);
	for (int i = 0; i < 6000 && st->finished < n; i++)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	assert_int_equal(st->finished, n);
}

/* Two slots: never more than two jobs compute at once, all finish. */
static void
test_slots(void **state)
{
	struct event_base *base = event_base_new();
	struct state st;
	struct tjob jobs[NJOBS];

	(void)state;
	state_init(&st);
	struct pool *p = pool_new(base, 2);
	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct tjob){ { tjob_run, tjob_done, NULL }, &st,
		    false, false, 0 };
		pool_submit(p, &jobs[i].job);
	}
	loop_until_done(base, &st, NJOBS);
	assert_int_equal(pool_pending(p), 0);
	assert_true(st.max_computing >= 1);
	assert_true(st.max_computing <= 2);
	pool_free(p);
	event_base_free(base);
}

static bool
all_started(struct state *st)
{
	return st->started == NJOBS;
}

/*
 * One slot: jobs that wait give it up, so all but the last are waiting at
 * once and the last one starts while they wait; released, all finish.
 */
static void
test_wait_frees_slot(void **state)
{
	struct event_base *base = event_base_new();
	struct state st;
	struct tjob jobs[NJOBS];

	(void)state;
	state_init(&st);
	struct pool *p = pool_new(base, 1);
	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct tjob){ { tjob_run, tjob_done, NULL }, &st,
		    i < NJOBS - 1, false, 0 };
		pool_submit(p, &jobs[i].job);
	}
	pthread_mutex_lock(&st.mu);
	assert_true(wait_for(&st, all_started));
	st.released = true;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
	loop_until_done(base, &st, NJOBS);
	assert_int_equal(st.max_computing, 1);
	for (int i = 0; i < NJOBS; i++)
		assert_false(jobs[i].timed_out);
	assert_int_equal(jobs[0].seen_waiting, 0);
	/* Submitted last, it ran while every other job was waiting. */
	assert_int_equal(jobs[NJOBS - 1].seen_waiting, NJOBS - 1);
	pool_free(p);
	event_base_free(base);
}

/* Deferred jobs, handed to whoever completes them. */
struct handoff {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct tjob	*v[NJOBS];
	int		 n;
	struct pool	*pool;
	int		 finished_at_complete;	/* done() calls seen then */
	struct state	*st;
};

static struct handoff handoff;

static void
djob_run(struct job *j)
{
	struct tjob *t = (struct tjob *)j;

	pthread_mutex_lock(&t->st->mu);
	t->st->started++;
	pthread_mutex_unlock(&t->st->mu);
	pool_defer();
	pthread_mutex_lock(&handoff.mu);
	handoff.v[handoff.n++] = t;
	pthread_cond_broadcast(&handoff.cv);
	pthread_mutex_unlock(&handoff.mu);
	/* Handed over: t is not touched again here. */
}

/* Completes every job once all of them are deferred. */
static void *
completer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&handoff.mu);
	while (handoff.n < NJOBS)
		pthread_cond_wait(&handoff.cv, &handoff.mu);
	pthread_mutex_unlock(&handoff.mu);
	/* Give the event loop (if any) time to run done() too early. */
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	handoff.finished_at_complete = handoff.st->finished;
	for (int i = 0; i < NJOBS; i++)
		pool_complete(handoff.pool, &handoff.v[i]->job);
	return NULL;
}

static void
handoff_init(struct state *st, struct pool *p)
{
	memset(&handoff, 0, sizeof(handoff));
	pthread_mutex_init(&handoff.mu, NULL);
	pthread_cond_init(&handoff.cv, NULL);
	handoff.pool = p;
	handoff.st = st;
}

/*
 * One slot, and every job defers itself: all of them run (a deferred job
 * holds no thread), none is done before pool_complete, all are after.
 */
static void
test_defer(void **state)
{
	struct event_base *base = event_base_new();
	struct state st;
	struct tjob jobs[NJOBS];
	pthread_t th;

	(void)state;
	state_init(&st);
	struct pool *p = pool_new(base, 1);
	handoff_init(&st, p);
	assert_int_equal(pthread_create(&th, NULL, completer, NULL), 0);
	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct tjob){ { djob_run, tjob_done, NULL }, &st,
		    false, false, 0 };
		pool_submit(p, &jobs[i].job);
	}
	/* The loop runs while the jobs are deferred, and after. */
	loop_until_done(base, &st, NJOBS);
	pthread_join(th, NULL);
	assert_int_equal(handoff.finished_at_complete, 0);
	assert_int_equal(st.started, NJOBS);
	assert_int_equal(pool_pending(p), 0);
	pool_free(p);
	event_base_free(base);
}

/* pool_free waits for deferred jobs and runs their done(). */
static void
test_free_waits_for_deferred(void **state)
{
	struct event_base *base = event_base_new();
	struct state st;
	struct tjob jobs[NJOBS];
	pthread_t th;

	(void)state;
	state_init(&st);
	struct pool *p = pool_new(base, 2);
	handoff_init(&st, p);
	assert_int_equal(pthread_create(&th, NULL, completer, NULL), 0);
	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct tjob){ { djob_run, tjob_done, NULL }, &st,
		    false, false, 0 };
		pool_submit(p, &jobs[i].job);
	}
	pool_free(p);
	assert_int_equal(st.finished, NJOBS);
	assert_int_equal(handoff.finished_at_complete, 0);
	pthread_join(th, NULL);
	event_base_free(base);
}

/* Outside a worker thread the wait calls do nothing. */
static void
test_wait_outside_pool(void **state)
{
	(void)state;
	pool_wait_begin();
	pool_wait_end();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_wait_frees_slot),
		cmocka_unit_test(test_wait_outside_pool),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_free_waits_for_deferred),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
