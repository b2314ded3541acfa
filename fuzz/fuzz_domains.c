/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_domains.c - the listener-domains loader (domains.c) from bytes, in
 * TOML or JSON (first byte, bit 0), then lookups on what was loaded: the
 * lookup rules (listener map, "*" listener, wildcards, trailing dots,
 * case) run over the fuzzed keys, and every relaying entry is visited.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "fuzz_common.h"
#include "util.h"

static size_t visits;

static void
visit(void *arg, const char *listener, const char *domain,
    const struct domain_entry *e)
{
	const struct domains *d = arg;

	if (listener == NULL || domain == NULL || e == NULL)
		abort();
	/*
	 * An entry that exists is found again under its own name. A lookup
	 * drops one trailing dot, so a key that keeps one (from "b..") is
	 * asked for with one more; any other with and without.
	 */
	char *dotted = xasprintf("%s.", domain);
	if (domains_lookup(d, listener, dotted) == NULL)
		abort();
	free(dotted);
	if (domain[0] != '\0' && domain[strlen(domain) - 1] != '.' &&
	    domains_lookup(d, listener, domain) == NULL)
		abort();
	visits++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const listeners[] = {
		"127.0.0.1:25", "[::1]:25", "192.0.2.1:2525", "*",
	};
	static const char *const names[] = {
		"bounce.example.com", "BOUNCE.Example.COM.", "a.b.example.com",
		"example.com", "x", "", ".", "..", "*", "*.example.com",
		"sub.bounce.example.com", "\xc3\xa9.example", "example.com..",
	};
	struct errors errs = { 0 };
	struct domains *d;
	char *path;

	if (size < 1)
		return 0;
	path = fuzz_write_file((data[0] & 1) ? "domains.json" : "domains.toml",
	    data + 1, size - 1);
	const char *files[1] = { path };
	d = domains_load(files, 1, &errs);
	free(path);
	if (d == NULL) {
		if (errs.n == 0)
			abort();
		errors_free(&errs);
		return 0;
	}
	if (errs.n != 0)
		abort();
	struct sockaddr_in sin = { .sin_family = AF_INET };
	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	for (size_t i = 0; i < nitems(listeners); i++)
		for (size_t j = 0; j < nitems(names); j++) {
			const struct domain_entry *e =
			    domains_lookup(d, listeners[i], names[j]);
			if (e != NULL)
				(void)domain_entry_relay_from_allowed(e,
				    (struct sockaddr *)&sin, "user");
		}
	visits = 0;
	if (domains_each(d, visit, d) != visits)
		abort();
	domains_free(d);
	return 0;
}
