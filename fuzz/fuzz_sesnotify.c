/*
 * fuzz_sesnotify.c - the Amazon SES notification decoder (sesnotify.c):
 * JSON events, bare or wrapped by SNS, on whole messages, then the bounce
 * side of the ingest pipeline. The first byte also selects --all.
 */
#include "config.h"

#include "sesnotify.h"
#include "fuzz_decode.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size, sesnotify_decode, false, true);
	return 0;
}
