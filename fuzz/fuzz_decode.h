/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_decode.h - the body shared by the decoder targets (fuzz_dsn.c,
 * fuzz_arf.c): load the input as a received message, run one decoder on
 * it, then the whole ingest pipeline with only that kind of report
 * enabled, and require every record to serialise to one line of JSON.
 */
#ifndef OOBD_FUZZ_DECODE_H
#define OOBD_FUZZ_DECODE_H

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "ingest.h"
#include "message.h"
#include "record.h"
#include "report.h"

static void
fuzz_decode(const uint8_t *data, size_t size, decoder_fn decode,
    bool log_arf, bool log_oob)
{
	static const char *const rcpts[1] = { "bounce@bounce.example.com" };
	const struct envelope env = {
		.sender = "",
		.recipients = rcpts,
		.nrecipients = 1,
		.peer_name = "mx.example.net",
		.peer_addr = "192.0.2.9",
		.session_id = "1d5c6a59-9d4e-4a53-8d9e-4c0c0c5f3a11",
	};
	const struct ingest_config cfg = {
		.log_arf = log_arf,
		.log_oob = log_oob,
		.all_actions = size > 0 && (data[0] & 1),
		.nodeid = "7f1e4a62-5b0b-4d8e-9b3a-2f8f3f0f9c10",
		.reception_protocol = "ESMTP",
	};
	const struct timespec t = { 1700000000, 123456789 };
	struct message m;
	struct report r;
	struct ingest_result res;

	message_library_init();
	if (message_load(&m, (const char *)data, size) != 0)
		abort();
	memset(&r, 0, sizeof(r));
	int rc = decode(&m, &r);
	if (rc < -1 || rc > 1)
		abort();
	if (rc == 1 && r.kind == REPORT_BOUNCE)
		for (size_t i = 0; i < r.nbounces; i++)
			if (r.bounces[i].content == NULL)
				abort();
	report_free(&r);

	ingest_message(&cfg, &env, &m, "0123456789abcdef0123456789abcdef", &t,
	    &t, &res);
	for (size_t i = 0; i < res.nrecords; i++) {
		for (int strict = 0; strict < 2; strict++) {
			char *line = record_dump(&res.records[i], strict);
			json_error_t je;
			json_t *j;

			if (line == NULL || strchr(line, '\n') != NULL)
				abort();
			/* Valid JSON; an escaped NUL from the input is allowed. */
			j = json_loads(line, JSON_ALLOW_NUL, &je);
			if (j == NULL || !json_is_object(j))
				abort();
			json_decref(j);
			free(line);
		}
	}
	ingest_result_free(&res);
	message_free(&m);
}

#endif
