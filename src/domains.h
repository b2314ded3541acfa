/* SPDX-License-Identifier: Apache-2.0 */
/*
 * domains.h - listener domains: which domains oobd accepts mail for and
 * what it does with their reports, in KumoMTA's listener-domains file
 * format and lookup rules (reference kumomta-behaviour.md §1.1, §1.3).
 */
#ifndef OOBD_DOMAINS_H
#define OOBD_DOMAINS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util.h"

/* LogReportDisposition: "Ignore"/false, "LogThenRelay"/true, "LogThenDrop". */
enum disposition {
	DISP_IGNORE,
	DISP_LOG_THEN_RELAY,
	DISP_LOG_THEN_DROP,
};

static inline bool
disposition_logs(enum disposition d)
{
	return d != DISP_IGNORE;
}

static inline bool
disposition_relays(enum disposition d)
{
	return d == DISP_LOG_THEN_RELAY;
}

const char *disposition_name(enum disposition d);

/*
 * An IPv4 or IPv6 network. A bare address is a /32 or /128. "any" (as
 * KumoMTA's AnyIpCidr accepts it) is family AF_UNSPEC and contains every
 * address.
 */
struct cidr {
	int	 family;		/* AF_INET, AF_INET6 or AF_UNSPEC */
	unsigned char addr[16];
	unsigned prefix;
};

/*
 * Parse "192.0.2.0/24", "2001:db8::/32" or a bare address, strictly as
 * KumoMTA does: host bits set is an error whose message suggests the
 * network ("Did you mean 192.168.1.0/24?"). Returns 0, or -1 with *err.
 */
int	 cidr_parse(const char *s, struct cidr *out, char **err);
/*
 * Whether the address in sa (AF_INET or AF_INET6; others never match) is
 * inside c. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack
 * socket reports for an IPv4 peer) is treated as the IPv4 address: it
 * matches IPv4 networks and no IPv6 network.
 */
bool	 cidr_contains(const struct cidr *c, const struct sockaddr *sa);
bool	 cidr_list_contains(const struct cidr *v, size_t n,
	    const struct sockaddr *sa);

/* One listener-domain entry (KumoMTA's EsmtpDomain plus relay_host). */
struct domain_entry {
	enum disposition log_oob;
	enum disposition log_arf;
	bool	 relay_to;
	struct cidr *relay_from;
	size_t	 nrelay_from;
	char	**relay_from_authz;	/* see domain_entry_relay_from_allowed */
	size_t	 nrelay_from_authz;
	char	*relay_host;		/* oobd: "[192.0.2.1]:25", "host:port" */
};

struct domains;

/*
 * Whether the entry of the sender's domain lets peer relay, with
 * relay_from_authz applied as listener_domains.lua does: when authz_id (the
 * SMTP AUTH authorization identity, NULL when not authenticated) is in
 * relay_from_authz, relay_from is replaced by the peer's own address, so
 * the answer is yes; otherwise the peer must be inside relay_from.
 */
bool	 domain_entry_relay_from_allowed(const struct domain_entry *e,
	    const struct sockaddr *peer, const char *authz_id);

/*
 * Parse a relay_host value: "[192.0.2.1]:25", "[2001:db8::1]:25" (address
 * literals, used without DNS lookups) or "host.example:25" (a host name,
 * or a dotted IPv4 address). The port (1-65535) is required. On success
 * *hostp is a malloc'ed host without brackets, *portp the port and
 * *literalp whether the host was bracketed; returns 0. Otherwise -1 and a
 * malloc'ed reason in *err. Any of the out pointers may be NULL.
 */
int	 relay_host_parse(const char *s, char **hostp, unsigned *portp,
	    bool *literalp, char **err);

/*
 * Load listener-domain files in order (".toml" as TOML, any other name as
 * JSON, as KumoMTA's listener_domains.lua). Entries for the same
 * (listener, domain) merge key by key, later files overwriting (within a
 * file, top-level entries after the listener table). Listener keys must be
 * "*" or an address and port, and are compared in the form inet_ntop gives
 * ("[2001:db8::1]:25"). Every problem is added to errs as
 * "file: key: reason" and NULL is returned when there was any.
 */
struct domains *domains_load(const char *const *files, size_t nfiles,
	    struct errors *errs);
void	 domains_free(struct domains *d);

/*
 * The steps of domains_load for callers that already hold the parsed data
 * (tests, configuration built in memory): domains_new returns an empty set,
 * domains_add_tree merges one file's tree into it, name standing for the
 * file in error messages. domains_add_tree returns the number of errors it
 * added to errs; after an error d must not be used for lookups.
 */
struct domains *domains_new(void);
struct json_t;				/* jansson's json_t */
size_t	 domains_add_tree(struct domains *d, const struct json_t *root,
	    const char *name, struct errors *errs);

/*
 * The entry for domain as received on listener ("ip:port" as KumoMTA
 * formats the local socket address), or NULL: the listener's own map, then
 * the "*" listener's map, then the "*" listener's literal "*" entry; first
 * hit wins. Labels are walked from the right, exact before "*", without
 * backtracking. Domain names compare without regard to (ASCII) case, and
 * one trailing dot is ignored, in the query and in the files' keys.
 */
const struct domain_entry *domains_lookup(const struct domains *d,
	    const char *listener, const char *domain);

/*
 * Call fn for every entry that relays (relay_to or a LogThenRelay), for
 * checks at start, in the order the entries first appeared; listener is
 * "*" for top-level entries and domain the key lowercased, without a
 * trailing dot. Returns the number of calls.
 */
size_t	 domains_each(const struct domains *d,
	    void (*fn)(void *arg, const char *listener, const char *domain,
	    const struct domain_entry *e), void *arg);

#endif
