/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_arf.c - the ARF feedback-report decoder (arf.c) on whole messages,
 * and the Feedback record built from what it finds.
 */
#include "config.h"

#include "arf.h"
#include "fuzz_decode.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size, arf_decode, true, false);
	return 0;
}
