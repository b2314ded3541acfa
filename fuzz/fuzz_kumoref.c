/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_kumoref.c - the X-KumoRef decoder (kumoref.c): one header value, or
 * a raw header block scanned for it, chosen by the first input byte.
 * Whatever decodes must survive a round trip: encoding the object again
 * and decoding that gives an equal object.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kumoref.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *obj, *again;
	char *enc;

	if (size < 1)
		return 0;
	if (data[0] & 1)
		obj = kumoref_scan_headers((const char *)data + 1, size - 1);
	else
		obj = kumoref_decode_value((const char *)data + 1, size - 1);
	if (obj == NULL)
		return 0;
	if (!json_is_object(obj) || json_object_get(obj, "_@_") != NULL)
		abort();
	enc = kumoref_encode(obj);
	if (enc == NULL)
		abort();
	again = kumoref_decode_value(enc, strlen(enc));
	if (again == NULL || !json_equal(obj, again))
		abort();
	json_decref(again);
	free(enc);
	json_decref(obj);
	return 0;
}
