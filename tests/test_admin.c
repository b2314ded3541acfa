/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_admin.c - the metrics: exact totals when many threads count at
 * once, labelled series (classifications, rejection codes) with escaping
 * and the "other" series past the limit, the sync histogram's buckets,
 * and the exposition's lines.
 */
#include "testutil.h"

#include <pthread.h>

#include "admin.h"

#define THREADS	4
#define ROUNDS	20000

/* The value of the sample "name{labels}" (or "name"), or -1. */
static double
sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; *p != '\0'; p = strchr(p, '\n') + 1) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		if (strchr(p, '\n') == NULL)
			break;
	}
	return -1;
}

static void *
counter_thread(void *arg)
{
	static const char *const labels[] = {
		"InvalidRecipient", "QuotaIssues", "Uncategorized",
	};
	long id = (long)arg;

	for (int i = 0; i < ROUNDS; i++) {
		metrics_record(REC_OOB);
		metrics_bounce_classification(labels[(i + id) % 3]);
		metrics_rejection(550, "5.7.1");
		metrics_message(MSG_ACCEPTED);
		metrics_relay_queue_add(1);
		metrics_log_sync(0.0002);
		metrics_connection_open();
		metrics_connection_close();
	}
	return NULL;
}

static void
test_concurrent_counts(void **state)
{
	pthread_t t[THREADS];
	char *text;

	(void)state;
	for (long i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, counter_thread,
		    (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	text = metrics_render(NULL);
	assert_true(sample(text, "oobd_records_total{type=\"OOB\"}") ==
	    THREADS * ROUNDS);
	assert_true(sample(text, "oobd_records_total{type=\"Reception\"}") == 0);
	/*
	 * Thread t counts label (i + t) % 3 for i < 20000: 6667 each for two
	 * of the labels and 6666 for the third, which one depending on t.
	 */
	assert_true(sample(text, "oobd_bounce_classifications_total"
	    "{classification=\"InvalidRecipient\"}") == 6667 + 6666 + 6667 + 6667);
	assert_true(sample(text, "oobd_bounce_classifications_total"
	    "{classification=\"QuotaIssues\"}") == 6667 + 6667 + 6666 + 6667);
	assert_true(sample(text, "oobd_bounce_classifications_total"
	    "{classification=\"Uncategorized\"}") == 6666 + 6667 + 6667 + 6666);
	assert_true(sample(text, "oobd_rejections_total{code=\"550\","
	    "enhanced_code=\"5.7.1\"}") == THREADS * ROUNDS);
	assert_true(sample(text, "oobd_messages_total{result=\"accepted\"}") ==
	    THREADS * ROUNDS);
	assert_true(sample(text, "oobd_relay_queue_depth") == THREADS * ROUNDS);
	assert_true(sample(text, "oobd_connections_total") == THREADS * ROUNDS);
	assert_true(sample(text, "oobd_sessions") == 0);
	/* 0.0002 s falls in the 0.00025 bucket. */
	assert_true(sample(text, "oobd_log_sync_seconds_bucket{le=\"0.0001\"}")
	    == 0);
	assert_true(sample(text, "oobd_log_sync_seconds_bucket{le=\"0.00025\"}")
	    == THREADS * ROUNDS);
	assert_true(sample(text, "oobd_log_sync_seconds_bucket{le=\"+Inf\"}")
	    == THREADS * ROUNDS);
	assert_true(sample(text, "oobd_log_sync_seconds_count") ==
	    THREADS * ROUNDS);
	assert_true(sample(text, "oobd_log_sync_seconds_sum") > 15.99 &&
	    sample(text, "oobd_log_sync_seconds_sum") < 16.01);
	free(text);
	metrics_relay_queue_set(3);
	text = metrics_render(NULL);
	assert_true(sample(text, "oobd_relay_queue_depth") == 3);
	free(text);
}

static void
test_labels(void **state)
{
	char *text, name[64];

	(void)state;
	metrics_bounce_classification("Quote\"Back\\slash\nline");
	metrics_bounce_classification(NULL);
	metrics_rejection(451, NULL);
	metrics_log_sync(20);
	text = metrics_render(NULL);
	assert_true(sample(text, "oobd_bounce_classifications_total"
	    "{classification=\"Quote\\\"Back\\\\slash\\nline\"}") == 1);
	assert_true(sample(text, "oobd_rejections_total{code=\"451\","
	    "enhanced_code=\"\"}") == 1);
	/* 20 s is past the last bound: only +Inf counts it. */
	assert_true(sample(text, "oobd_log_sync_seconds_bucket{le=\"+Inf\"}") -
	    sample(text, "oobd_log_sync_seconds_bucket{le=\"10\"}") == 1);
	free(text);
	/* Past the series limit, new labels count as "other". */
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "Label%d", i);
		metrics_bounce_classification(name);
		metrics_bounce_classification(name);
	}
	text = metrics_render(NULL);
	assert_true(sample(text, "oobd_bounce_classifications_total"
	    "{classification=\"Label0\"}") == 2);
	assert_true(sample(text, "oobd_bounce_classifications_total"
	    "{classification=\"other\"}") > 0);
	assert_true(sample(text, "oobd_bounce_classifications_total"
	    "{classification=\"Label199\"}") == -1);
	/* Every line is a comment or "name{labels} value". */
	size_t samples = 0, processes = 0;
	for (char *p = text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		*nl = '\0';
		if (p[0] == '#') {
			assert_true(strncmp(p, "# HELP oobd_", 12) == 0 ||
			    strncmp(p, "# TYPE oobd_", 12) == 0 ||
			    strncmp(p, "# HELP process_", 15) == 0 ||
			    strncmp(p, "# TYPE process_", 15) == 0);
			continue;
		}
		assert_non_null(strrchr(p, ' '));
		/* The six standard process_* series of client libraries. */
		if (strncmp(p, "process_", 8) == 0) {
			processes++;
			continue;
		}
		assert_true(strncmp(p, "oobd_", 5) == 0);
		samples++;
	}
	/* 23 plain series, 16 + 1 buckets, sum and count, 128
	 * classifications (the last "other"), 2 rejection series. */
	assert_int_equal(samples, 23 + 17 + 2 + 128 + 2);
	assert_int_equal(processes, 6);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_counts),
		cmocka_unit_test(test_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
