/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sesnotify.c - the Amazon SES notification decoders (sesnotify.c):
 * JSON bounce and complaint events, bare or wrapped by SNS, on whole
 * messages, then each side of the ingest pipeline. The first byte also
 * selects --all.
 */
#include "config.h"

#include "sesnotify.h"
#include "fuzz_decode.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size, sesnotify_decode, false, true);
	fuzz_decode(data, size, sesnotify_decode_complaint, true, false);
	return 0;
}
