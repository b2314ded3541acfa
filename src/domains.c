/* SPDX-License-Identifier: Apache-2.0 */
/*
 * domains.c - listener domains: loading KumoMTA listener-domain files
 * (TOML or JSON, see reference kumomta-behaviour.md §1.3), validating each
 * entry as kumo.make_listener_domain does, and looking domains up with the
 * domain-map walk of crates/domain-map.
 *
 * The domain map is a trie of labels walked from the right. Instead of one
 * child table per node, every node is keyed by its whole suffix
 * ("example.com", "*.example.com") in one hash table per set, with the
 * listener's number mixed into the key. Hashing a suffix from its last byte
 * backwards lets a lookup extend the hash one label at a time, so a walk
 * costs one probe per label whatever the file holds.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "tomlbridge.h"

const char *
disposition_name(enum disposition d)
{
	switch (d) {
	case DISP_LOG_THEN_RELAY:
		return "LogThenRelay";
	case DISP_LOG_THEN_DROP:
		return "LogThenDrop";
	case DISP_IGNORE:
		break;
	}
	return "Ignore";
}

/* ---------------------------------------------------------------- CIDR */

/*
 * A copy of untrusted text fit for an error message: control bytes become
 * '?' and very long values are cut, so a hostile file cannot garble the
 * terminal or flood the log of `oobd -t`.
 */
static char *
printable(const char *s)
{
	size_t n = strlen(s), max = 200;
	bool cut = n > max;
	char *out;

	if (cut) {
		/* Cut between UTF-8 sequences, not inside one. */
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	out = xmalloc(n + 4);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (cut)
		memcpy(out + n, "...", 4);
	else
		out[n] = '\0';
	return out;
}

static char *
cidr_error(const char *s, const char *reason)
{
	char *p = printable(s);
	char *e = xasprintf("%s is not a valid CIDR: %s", p, reason);

	free(p);
	return e;
}

/*
 * Parse s as an IPv4 or IPv6 address into addr (16 bytes) and return the
 * family, or AF_UNSPEC. inet_pton is strict: dotted quads only, no leading
 * zeros, as Rust's address parser.
 */
static int
parse_ip(const char *s, size_t n, unsigned char *addr)
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (n == 0 || n >= sizeof(tmp))
		return AF_UNSPEC;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(addr, 0, 16);
	if (memchr(tmp, ':', n) != NULL)
		return inet_pton(AF_INET6, tmp, addr) == 1 ? AF_INET6 : AF_UNSPEC;
	return inet_pton(AF_INET, tmp, addr) == 1 ? AF_INET : AF_UNSPEC;
}

static size_t
family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

int
cidr_parse(const char *s, struct cidr *out, char **err)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned prefix;
	struct cidr c = { 0 };
	char *e = NULL;

	if (strcmp(s, "any") == 0) {
		/* AnyIpCidr's spelling of "every address". */
		c.family = AF_UNSPEC;
		*out = c;
		return 0;
	}
	c.family = parse_ip(s, alen, c.addr);
	if (c.family == AF_UNSPEC) {
		e = cidr_error(s, "invalid IP address syntax");
		goto fail;
	}
	prefix = (unsigned)family_bits(c.family);
	if (slash != NULL) {
		const char *p = slash + 1;
		size_t plen = strlen(p);
		if (plen == 0 || plen > 3 || strspn(p, "0123456789") != plen) {
			e = cidr_error(s, "invalid network length");
			goto fail;
		}
		prefix = (unsigned)atoi(p);
		if (prefix > family_bits(c.family)) {
			char reason[96];
			snprintf(reason, sizeof(reason),
			    "network length %u is too long for %s "
			    "(maximum: %zu)", prefix,
			    c.family == AF_INET ? "IPv4" : "IPv6",
			    family_bits(c.family));
			e = cidr_error(s, reason);
			goto fail;
		}
	}
	c.prefix = prefix;

	/* Strict as KumoMTA's parse_cidr: no host bits, with a suggestion. */
	struct cidr net = c;
	size_t nbytes = family_bits(c.family) / 8;
	for (size_t i = 0; i < nbytes; i++) {
		size_t bit = i * 8;
		if (bit >= prefix)
			net.addr[i] = 0;
		else if (prefix - bit < 8)
			net.addr[i] &= (unsigned char)(0xff << (8 - (prefix - bit)));
	}
	if (memcmp(net.addr, c.addr, nbytes) != 0) {
		char ip[INET6_ADDRSTRLEN], reason[160];
		inet_ntop(c.family, net.addr, ip, sizeof(ip));
		snprintf(reason, sizeof(reason), "host part of address was not "
		    "zero. Did you mean %s/%u?", ip, prefix);
		e = cidr_error(s, reason);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	if (err != NULL)
		*err = e;
	else
		free(e);
	return -1;
}

static bool
prefix_match(const unsigned char *net, const unsigned char *addr,
    unsigned prefix)
{
	size_t whole = prefix / 8, rest = prefix % 8;

	if (memcmp(net, addr, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (net[whole] & mask) == (addr[whole] & mask);
}

bool
cidr_contains(const struct cidr *c, const struct sockaddr *sa)
{
	const unsigned char *addr;
	int family;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		addr = (const unsigned char *)&s4->sin_addr;
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
		    (const struct sockaddr_in6 *)sa;
		addr = (const unsigned char *)&s6->sin6_addr;
		family = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			addr += 12;
			family = AF_INET;
		}
	} else
		return false;
	if (c->family == AF_UNSPEC)
		return true;
	return c->family == family && prefix_match(c->addr, addr, c->prefix);
}

bool
cidr_list_contains(const struct cidr *v, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_contains(&v[i], sa))
			return true;
	return false;
}

/* ---------------------------------------------------------- relay_host */

/* An RFC 1123 host name: LDH labels of 1-63 bytes, 253 bytes in all. */
static bool
valid_hostname(const char *s, size_t n)
{
	size_t label = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9');
		if (!alnum && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return s[n - 1] != '-';
}

static bool
parse_port(const char *s, unsigned *port)
{
	size_t n = strlen(s);

	if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
		return false;
	unsigned long v = strtoul(s, NULL, 10);
	if (v < 1 || v > 65535)
		return false;
	*port = (unsigned)v;
	return true;
}

int
relay_host_parse(const char *s, char **hostp, unsigned *portp, bool *literalp,
    char **err)
{
	const char *hs, *colon;
	size_t hn;
	bool literal = false;
	unsigned port;
	const char *why = NULL;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		unsigned char addr[16];
		if (close == NULL) {
			why = "missing ']'";
			goto fail;
		}
		hs = s + 1;
		hn = (size_t)(close - hs);
		if (parse_ip(hs, hn, addr) == AF_UNSPEC) {
			why = "the bracketed part is not an IP address";
			goto fail;
		}
		literal = true;
		if (close[1] != ':') {
			why = "expected ':port' after ']'";
			goto fail;
		}
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			why = "missing ':port'";
			goto fail;
		}
		hs = s;
		hn = (size_t)(colon - s);
		if (memchr(hs, ':', hn) != NULL) {
			why = "an IPv6 address must be written in brackets";
			goto fail;
		}
		unsigned char addr[16];
		if (!valid_hostname(hs, hn)) {
			why = "invalid host name";
			goto fail;
		}
		/* All digits and dots is an IPv4 address or nothing. */
		if (strspn(hs, "0123456789.") >= hn &&
		    parse_ip(hs, hn, addr) != AF_INET) {
			why = "invalid IPv4 address";
			goto fail;
		}
	}
	if (!parse_port(colon + 1, &port)) {
		why = "the port must be a number from 1 to 65535";
		goto fail;
	}
	if (hostp != NULL)
		*hostp = xstrndup(hs, hn);
	if (portp != NULL)
		*portp = port;
	if (literalp != NULL)
		*literalp = literal;
	return 0;
fail:
	if (err != NULL) {
		char *p = printable(s);
		*err = xasprintf("\"%s\": %s (expected \"[ip]:port\" or "
		    "\"host:port\")", p, why);
		free(p);
	}
	return -1;
}

/* ------------------------------------------------------------- entries */

static void
entry_free(struct domain_entry *e)
{
	if (e == NULL)
		return;
	free(e->relay_from);
	for (size_t i = 0; i < e->nrelay_from_authz; i++)
		free(e->relay_from_authz[i]);
	free(e->relay_from_authz);
	free(e->relay_host);
	free(e);
}

bool
domain_entry_relay_from_allowed(const struct domain_entry *e,
    const struct sockaddr *peer, const char *authz_id)
{
	if (e == NULL)
		return false;
	if (authz_id != NULL) {
		for (size_t i = 0; i < e->nrelay_from_authz; i++)
			if (strcmp(e->relay_from_authz[i], authz_id) == 0)
				return true;
	}
	return cidr_list_contains(e->relay_from, e->nrelay_from, peer);
}

/*
 * Field parsers: each checks one value and, only when it is valid, stores
 * it in e (replacing what an earlier file set: the key-by-key merge).
 * They return NULL or a malloc'ed reason.
 */

static char *
set_disposition(struct domain_entry *e, const char *field, const json_t *v)
{
	enum disposition d;
	const char *s;

	if (json_is_boolean(v))
		d = json_is_true(v) ? DISP_LOG_THEN_RELAY : DISP_IGNORE;
	else if ((s = json_string_value(v)) != NULL &&
	    strcmp(s, "Ignore") == 0)
		d = DISP_IGNORE;
	else if (s != NULL && strcmp(s, "LogThenRelay") == 0)
		d = DISP_LOG_THEN_RELAY;
	else if (s != NULL && strcmp(s, "LogThenDrop") == 0)
		d = DISP_LOG_THEN_DROP;
	else
		return xasprintf("invalid value for field '%s': expected a "
		    "boolean value or one of 'Ignore', 'LogThenDrop' or "
		    "'LogThenRelay'", field);
	if (strcmp(field, "log_oob") == 0)
		e->log_oob = d;
	else
		e->log_arf = d;
	return NULL;
}

static char *
set_relay_to(struct domain_entry *e, const char *field, const json_t *v)
{
	if (!json_is_boolean(v))
		return xasprintf("invalid value for field '%s': expected a "
		    "boolean", field);
	e->relay_to = json_is_true(v);
	return NULL;
}

static char *
set_relay_from(struct domain_entry *e, const char *field, const json_t *v)
{
	struct cidr *list;
	size_t n = json_array_size(v);
	char *err = NULL;

	if (!json_is_array(v))
		return xasprintf("invalid value for field '%s': expected a list "
		    "of CIDR strings", field);
	list = xcalloc(n > 0 ? n : 1, sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(v, i));
		if (s == NULL) {
			free(list);
			return xasprintf("invalid value for field '%s': item %zu "
			    "is not a string", field, i + 1);
		}
		if (cidr_parse(s, &list[i], &err) != 0) {
			char *r = xasprintf("invalid value for field '%s': %s",
			    field, err);
			free(err);
			free(list);
			return r;
		}
	}
	free(e->relay_from);
	e->relay_from = list;
	e->nrelay_from = n;
	return NULL;
}

static char *
set_relay_from_authz(struct domain_entry *e, const char *field,
    const json_t *v)
{
	size_t n = json_array_size(v);
	char **list;

	if (!json_is_array(v))
		return xasprintf("invalid value for field '%s': expected a list "
		    "of strings", field);
	for (size_t i = 0; i < n; i++)
		if (!json_is_string(json_array_get(v, i)))
			return xasprintf("invalid value for field '%s': item "
			    "%zu is not a string", field, i + 1);
	list = xcalloc(n > 0 ? n : 1, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		list[i] = xstrdup(json_string_value(json_array_get(v, i)));
	for (size_t i = 0; i < e->nrelay_from_authz; i++)
		free(e->relay_from_authz[i]);
	free(e->relay_from_authz);
	e->relay_from_authz = list;
	e->nrelay_from_authz = n;
	return NULL;
}

/* KumoMTA keeps ttl for old configurations and never uses it. */
static char *
set_ttl(struct domain_entry *e, const char *field, const json_t *v)
{
	double secs;

	(void)e;
	if (json_is_number(v) && json_number_value(v) >= 0)
		return NULL;
	if (json_is_string(v) && parse_duration(json_string_value(v), &secs) == 0)
		return NULL;
	return xasprintf("invalid value for field '%s': expected a duration "
	    "such as \"60s\" or a number of seconds", field);
}

static char *
set_relay_host(struct domain_entry *e, const char *field, const json_t *v)
{
	const char *s = json_string_value(v);
	char *err = NULL, *r;

	if (s == NULL)
		return xasprintf("invalid value for field '%s': expected a "
		    "string \"[ip]:port\" or \"host:port\"", field);
	if (relay_host_parse(s, NULL, NULL, NULL, &err) != 0) {
		r = xasprintf("invalid value for field '%s': %s", field, err);
		free(err);
		return r;
	}
	free(e->relay_host);
	e->relay_host = xstrdup(s);
	return NULL;
}

static const struct field {
	const char *name;
	char *(*set)(struct domain_entry *, const char *, const json_t *);
} fields[] = {
	{ "log_oob", set_disposition },
	{ "log_arf", set_disposition },
	{ "relay_to", set_relay_to },
	{ "relay_from", set_relay_from },
	{ "relay_from_authz", set_relay_from_authz },
	{ "relay_host", set_relay_host },
	{ "ttl", set_ttl },
};

/* ------------------------------------------------------------ hash map */

/* What the hash table holds: a domain-map node or a listener. */
struct hkey {
	uint64_t hash;
	uint32_t lid;
	size_t	 klen;
	char	*key;			/* lowercased */
};

struct dnode {
	struct hkey k;
	struct domain_entry *entry;	/* NULL for a node on the way only */
	struct dnode *wild;		/* the "*" child, if any */
};

struct lst {
	struct hkey k;
	uint32_t id;
	struct dnode *topwild;		/* the single-label "*" node */
};

struct htab {
	struct hkey **slot;
	size_t	 cap;			/* a power of two, or 0 */
	size_t	 n;
};

struct domains {
	struct htab nodes;
	struct htab listeners;
	struct lst **lv;		/* by id */
	size_t	 nl;
	struct dnode **all;		/* every node, for freeing */
	size_t	 nall;
	struct dnode **with_entry;	/* in order of first appearance */
	size_t	 nwith_entry;
};

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

static unsigned char
lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static uint64_t
hash_seed(uint32_t lid)
{
	return (FNV_OFFSET ^ lid) * FNV_PRIME;
}

/* One more byte on the left of the hashed text. */
static uint64_t
hash_step(uint64_t h, unsigned char c)
{
	return (h ^ lower(c)) * FNV_PRIME;
}

static uint64_t
hash_text(uint32_t lid, const char *s, size_t n)
{
	uint64_t h = hash_seed(lid);

	while (n > 0)
		h = hash_step(h, (unsigned char)s[--n]);
	return h;
}

static struct hkey *
htab_find(const struct htab *t, uint32_t lid, uint64_t h, const char *s,
    size_t n)
{
	if (t->cap == 0)
		return NULL;
	for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct hkey *k = t->slot[i];
		if (k == NULL)
			return NULL;
		if (k->hash != h || k->lid != lid || k->klen != n)
			continue;
		size_t j = 0;
		while (j < n && (unsigned char)k->key[j] ==
		    lower((unsigned char)s[j]))
			j++;
		if (j == n)
			return k;
	}
}

static void
htab_put(struct htab *t, struct hkey *k)
{
	if ((t->n + 1) * 2 > t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct hkey **ns = xcalloc(ncap, sizeof(*ns));
		for (size_t i = 0; i < t->cap; i++) {
			struct hkey *o = t->slot[i];
			if (o == NULL)
				continue;
			size_t j = o->hash & (ncap - 1);
			while (ns[j] != NULL)
				j = (j + 1) & (ncap - 1);
			ns[j] = o;
		}
		free(t->slot);
		t->slot = ns;
		t->cap = ncap;
	}
	size_t i = k->hash & (t->cap - 1);
	while (t->slot[i] != NULL)
		i = (i + 1) & (t->cap - 1);
	t->slot[i] = k;
	t->n++;
}

static void
hkey_init(struct hkey *k, uint32_t lid, uint64_t h, const char *s, size_t n)
{
	k->hash = h;
	k->lid = lid;
	k->klen = n;
	k->key = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		k->key[i] = (char)lower((unsigned char)s[i]);
	k->key[n] = '\0';
}

/* Listener names are stored under this id in the listener table. */
#define LISTENER_TABLE	UINT32_MAX

static struct lst *
listener_find(const struct domains *d, const char *name)
{
	size_t n = strlen(name);

	return (struct lst *)htab_find(&d->listeners, LISTENER_TABLE,
	    hash_text(LISTENER_TABLE, name, n), name, n);
}

static struct lst *
listener_get(struct domains *d, const char *name)
{
	struct lst *l = listener_find(d, name);
	size_t n = strlen(name);

	if (l != NULL)
		return l;
	l = xcalloc(1, sizeof(*l));
	hkey_init(&l->k, LISTENER_TABLE, hash_text(LISTENER_TABLE, name, n),
	    name, n);
	l->id = (uint32_t)d->nl;
	d->lv = xgrow(d->lv, d->nl, sizeof(*d->lv));
	d->lv[d->nl++] = l;
	htab_put(&d->listeners, &l->k);
	return l;
}

/* A domain as a map key or a query: one trailing dot does not count. */
static size_t
domain_len(const char *s)
{
	size_t n = strlen(s);

	if (n > 0 && s[n - 1] == '.')
		n--;
	return n;
}

/*
 * The node for the whole of key in listener l's map, created with every
 * node on its way, as DomainMap::insert does.
 */
static struct dnode *
node_get(struct domains *d, struct lst *l, const char *key)
{
	size_t n = domain_len(key), i = n;
	uint64_t h = hash_seed(l->id);
	struct dnode *parent = NULL, *node = NULL;

	for (;;) {
		if (parent != NULL)
			h = hash_step(h, '.'), i--;
		size_t label_end = i;
		while (i > 0 && key[i - 1] != '.')
			h = hash_step(h, (unsigned char)key[--i]);
		node = (struct dnode *)htab_find(&d->nodes, l->id, h, key + i,
		    n - i);
		if (node == NULL) {
			node = xcalloc(1, sizeof(*node));
			hkey_init(&node->k, l->id, h, key + i, n - i);
			htab_put(&d->nodes, &node->k);
			d->all = xgrow(d->all, d->nall, sizeof(*d->all));
			d->all[d->nall++] = node;
			if (label_end - i == 1 && key[i] == '*') {
				if (parent != NULL)
					parent->wild = node;
				else
					l->topwild = node;
			}
		}
		if (i == 0)
			return node;
		parent = node;
	}
}

/*
 * DomainMap::get: walk the labels from the right taking the exact child;
 * when there is none, the answer is the "*" child of the last node reached
 * (or nothing), never a step back up the tree.
 */
static const struct domain_entry *
map_get(const struct domains *d, const struct lst *l, const char *domain)
{
	size_t n = domain_len(domain), i = n;
	uint64_t h = hash_seed(l->id);
	const struct dnode *parent = NULL, *node, *wild;

	for (;;) {
		if (parent != NULL)
			h = hash_step(h, '.'), i--;
		while (i > 0 && domain[i - 1] != '.')
			h = hash_step(h, (unsigned char)domain[--i]);
		node = (const struct dnode *)htab_find(&d->nodes, l->id, h,
		    domain + i, n - i);
		if (node == NULL) {
			wild = parent != NULL ? parent->wild : l->topwild;
			return wild != NULL ? wild->entry : NULL;
		}
		if (i == 0)
			return node->entry;
		parent = node;
	}
}

const struct domain_entry *
domains_lookup(const struct domains *d, const char *listener,
    const char *domain)
{
	const struct domain_entry *e;
	const struct lst *l, *any;

	if (d == NULL || domain == NULL)
		return NULL;
	if (listener != NULL && (l = listener_find(d, listener)) != NULL &&
	    (e = map_get(d, l, domain)) != NULL)
		return e;
	if ((any = listener_find(d, "*")) == NULL)
		return NULL;
	if ((e = map_get(d, any, domain)) != NULL)
		return e;
	return map_get(d, any, "*");
}

size_t
domains_each(const struct domains *d,
    void (*fn)(void *arg, const char *listener, const char *domain,
    const struct domain_entry *e), void *arg)
{
	size_t calls = 0;

	if (d == NULL)
		return 0;
	for (size_t i = 0; i < d->nwith_entry; i++) {
		const struct dnode *n = d->with_entry[i];
		const struct domain_entry *e = n->entry;
		if (!e->relay_to && !disposition_relays(e->log_oob) &&
		    !disposition_relays(e->log_arf))
			continue;
		if (fn != NULL)
			fn(arg, d->lv[n->k.lid]->k.key, n->k.key, e);
		calls++;
	}
	return calls;
}

/* ------------------------------------------------------------- loading */

struct domains *
domains_new(void)
{
	return xcalloc(1, sizeof(struct domains));
}

void
domains_free(struct domains *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nall; i++) {
		entry_free(d->all[i]->entry);
		free(d->all[i]->k.key);
		free(d->all[i]);
	}
	for (size_t i = 0; i < d->nl; i++) {
		free(d->lv[i]->k.key);
		free(d->lv[i]);
	}
	free(d->all);
	free(d->with_entry);
	free(d->lv);
	free(d->nodes.slot);
	free(d->listeners.slot);
	free(d);
}

/* Append s as a double-quoted key, escaped so the path stays one line. */
static void
quote_key(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\u%04x", c);
		else
			buf_putc(b, (char)c);
	}
	buf_putc(b, '"');
}

/*
 * The key of an entry as the user would write it in TOML:
 * ["bounce.example.com"] or listener."127.0.0.1:25"."*.example.com".
 */
static void
entry_path(struct buf *b, const char *listener, const char *domain)
{
	if (listener == NULL) {
		buf_putc(b, '[');
		quote_key(b, domain);
		buf_putc(b, ']');
	} else {
		buf_puts(b, "listener.");
		quote_key(b, listener);
		if (domain != NULL) {
			buf_putc(b, '.');
			quote_key(b, domain);
		}
	}
}

static void
add_error(struct errors *errs, const char *name, struct buf *path,
    const char *reason)
{
	errors_add(errs, "%s: %s: %s", name, path->data ? path->data : "",
	    reason);
}

/*
 * Merge one entry object into the (listener, domain) entry. listener_key
 * is the key as written, or NULL for a top-level entry (listener "*").
 */
static size_t
add_entry(struct domains *d, struct lst *l, const char *listener_key,
    const char *domain, const json_t *obj, const char *name,
    struct errors *errs)
{
	struct buf path = { 0 };
	size_t nerr = 0;
	const char *field;
	json_t *v;

	entry_path(&path, listener_key, domain);
	if (!json_is_object(obj)) {
		add_error(errs, name, &path, "expected a table of "
		    "listener-domain settings");
		buf_free(&path);
		return 1;
	}
	struct dnode *node = node_get(d, l, domain);
	if (node->entry == NULL) {
		node->entry = xcalloc(1, sizeof(*node->entry));
		d->with_entry = xgrow(d->with_entry, d->nwith_entry,
		    sizeof(*d->with_entry));
		d->with_entry[d->nwith_entry++] = node;
	}
	size_t base = path.len;
	json_object_foreach((json_t *)obj, field, v) {
		const struct field *f = NULL;
		char *reason;

		for (size_t i = 0; i < nitems(fields); i++)
			if (strcmp(fields[i].name, field) == 0)
				f = &fields[i];
		path.len = base;
		path.data[base] = '\0';
		buf_putc(&path, '.');
		/* Bare names read like TOML; anything odd is quoted. */
		if (strspn(field, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == strlen(field) &&
		    field[0] != '\0')
			buf_puts(&path, field);
		else
			quote_key(&path, field);
		if (f == NULL) {
			char *p = printable(field);
			reason = xasprintf("unknown field '%s', expected one of "
			    "'log_oob', 'log_arf', 'relay_to', 'relay_from', "
			    "'relay_from_authz', 'relay_host' or 'ttl'", p);
			free(p);
		} else
			reason = f->set(node->entry, field, v);
		if (reason != NULL) {
			add_error(errs, name, &path, reason);
			free(reason);
			nerr++;
		}
	}
	buf_free(&path);
	return nerr;
}

/*
 * A listener key as the server names its listeners ("127.0.0.1:25",
 * "[::1]:25"), rewritten in the canonical form inet_ntop gives so that
 * "[0:0::1]:25" finds the same listener. NULL when it is no such thing.
 */
static char *
listener_canon(const char *s)
{
	unsigned char addr[16];
	const char *hs, *colon;
	size_t hn;
	unsigned port;
	int family;
	char ip[INET6_ADDRSTRLEN];

	if (strcmp(s, "*") == 0)
		return xstrdup(s);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return NULL;
		hs = s + 1;
		hn = (size_t)(close - hs);
		colon = close + 1;
		family = parse_ip(hs, hn, addr);
		if (family != AF_INET6)
			return NULL;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return NULL;
		hs = s;
		hn = (size_t)(colon - s);
		family = parse_ip(hs, hn, addr);
		if (family != AF_INET)
			return NULL;
	}
	if (!parse_port(colon + 1, &port))
		return NULL;
	inet_ntop(family, addr, ip, sizeof(ip));
	if (family == AF_INET6)
		return xasprintf("[%s]:%u", ip, port);
	return xasprintf("%s:%u", ip, port);
}

size_t
domains_add_tree(struct domains *d, const struct json_t *root,
    const char *name, struct errors *errs)
{
	size_t nerr = 0;
	const char *key;
	json_t *v;

	if (!json_is_object(root)) {
		errors_add(errs, "%s: expected a table of domains at the top "
		    "level", name);
		return 1;
	}

	/*
	 * The listener table first, then the top-level entries, which
	 * listener_domains.lua files under listener "*" after it.
	 */
	json_t *by_listener = json_object_get(root, "listener");
	if (by_listener != NULL && !json_is_object(by_listener)) {
		errors_add(errs, "%s: listener: expected a table of listeners",
		    name);
		nerr++;
	} else if (by_listener != NULL) {
		const char *lkey;
		json_t *map;
		json_object_foreach(by_listener, lkey, map) {
			struct buf path = { 0 };
			char *canon = listener_canon(lkey);
			entry_path(&path, lkey, NULL);
			if (canon == NULL) {
				add_error(errs, name, &path, "expected a "
				    "listener address \"ip:port\", "
				    "\"[ipv6]:port\" or \"*\"");
				nerr++;
			} else if (!json_is_object(map)) {
				add_error(errs, name, &path, "expected a table "
				    "of domains");
				nerr++;
			} else {
				struct lst *l = listener_get(d, canon);
				const char *dom;
				json_t *obj;
				json_object_foreach(map, dom, obj)
					nerr += add_entry(d, l, lkey, dom, obj,
					    name, errs);
			}
			free(canon);
			buf_free(&path);
		}
	}
	struct lst *any = listener_get(d, "*");
	json_object_foreach((json_t *)root, key, v) {
		if (strcmp(key, "listener") == 0)
			continue;
		nerr += add_entry(d, any, NULL, key, v, name, errs);
	}
	return nerr;
}

struct domains *
domains_load(const char *const *files, size_t nfiles, struct errors *errs)
{
	struct errors local = { 0 };
	struct domains *d = domains_new();
	size_t nerr = 0;

	if (errs == NULL)
		errs = &local;
	for (size_t i = 0; i < nfiles; i++) {
		char *err = NULL;
		json_t *root = load_data_file(files[i], 1, &err);
		if (root == NULL) {
			/* The loader names the file; make sure of it. */
			if (err != NULL && strstr(err, files[i]) != NULL)
				errors_add(errs, "%s", err);
			else if (err != NULL)
				errors_add(errs, "%s: %s", files[i], err);
			else
				errors_add(errs, "%s: cannot load", files[i]);
			free(err);
			nerr++;
			continue;
		}
		nerr += domains_add_tree(d, root, files[i], errs);
		json_decref(root);
	}
	errors_free(&local);
	if (nerr > 0) {
		domains_free(d);
		return NULL;
	}
	return d;
}
