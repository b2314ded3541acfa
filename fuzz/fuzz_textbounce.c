/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_textbounce.c - the plain-text bounce decoder (textbounce.c): qmail,
 * Exim, OpenSMTPD and similar notices, on whole messages, then the bounce
 * side of the ingest pipeline. The first byte also selects --all.
 */
#include "config.h"

#include "textbounce.h"
#include "fuzz_decode.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size, textbounce_decode, false, true);
	return 0;
}
