/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dsn.c - the RFC 3464 / RFC 6533 DSN decoder (dsn.c), on whole
 * messages, and the bounce side of the ingest pipeline behind it
 * (non-standard bounce decoders, X-KumoRef of the returned message,
 * record building). The first byte also selects --all (every action).
 */
#include "config.h"

#include "dsn.h"
#include "fuzz_decode.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size, dsn_decode, false, true);
	return 0;
}
