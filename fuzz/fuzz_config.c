/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config.c - the configuration loader (conf.c) and the TOML bridge
 * (tomlbridge.cc) from bytes. The first byte picks TOML or JSON (bit 0).
 * A loaded configuration must respect the RFC 5321 minimums config_load
 * enforces (no NaN timeout slipping through either); a TOML document must
 * convert to a tree that survives a JSON round trip.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz_common.h"
#include "tomlbridge.h"
#include "util.h"

#define MAX_DURATION	(100.0 * 365 * 86400)	/* conf.c's cap */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errors errs = { 0 };
	struct config *c;
	char *path, *err = NULL;
	bool json;

	if (size < 1)
		return 0;
	json = data[0] & 1;
	data++;
	size--;

	path = fuzz_write_file(json ? "oobd.json" : "oobd.toml", data, size);
	c = config_load(path, &errs);
	if (c == NULL) {
		if (errs.n == 0)
			abort();	/* a refusal always says why */
	} else {
		/* The limits RFC 5321 sets, which config_load enforces. */
		if (errs.n != 0 || c->hostname == NULL ||
		    c->max_line_length < 512 || c->max_recipients < 100 ||
		    c->max_message_size < 65536 ||
		    !(c->idle_timeout > 0) || !(c->data_timeout > 0))
			abort();
		/* Durations must convert to time_t and timeouts. */
		if (!(c->idle_timeout <= MAX_DURATION) ||
		    !(c->data_timeout <= MAX_DURATION) ||
		    !(c->max_segment_duration >= 0 &&
		    c->max_segment_duration <= MAX_DURATION))
			abort();
		config_free(c);
	}
	errors_free(&errs);
	free(path);

	if (!json) {
		json_t *t = toml_to_json((const char *)data, size, "fuzz", &err);
		if (t == NULL) {
			if (err == NULL)
				abort();
			free(err);
		} else {
			char *text = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY);
			json_error_t je;
			json_t *back = text ? json_loads(text, JSON_ALLOW_NUL |
			    JSON_DECODE_ANY, &je) : NULL;
			if (back == NULL || !json_equal(t, back))
				abort();
			json_decref(back);
			free(text);
			json_decref(t);
		}
	}
	return 0;
}
