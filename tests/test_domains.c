/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_domains.c - listener domains: entry values and their errors, CIDR
 * parsing and matching, relay_host, the domain-map walk and the fallback
 * order of listener_domains.lua (reference kumomta-behaviour.md §1.3), the
 * key-by-key merge across files, and KumoMTA's own mod:test() cases.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <unistd.h>

#include "domains.h"

/*
 * Inline JSON is written with single quotes to stay readable in C;
 * this turns them into double quotes.
 */
static json_t *
jq(const char *text)
{
	char *s = xstrdup(text);
	json_error_t jerr;
	json_t *j;

	for (char *p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(s, 0, &jerr);
	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", jerr.text, s);
	free(s);
	return j;
}

/* A set built from inline JSON, which must have no errors. */
static struct domains *
set_of(const char *text)
{
	struct domains *d = domains_new();
	struct errors errs = { 0 };
	json_t *j = jq(text);

	size_t n = domains_add_tree(d, j, "t.json", &errs);
	if (n != 0 || errs.n != 0)
		fail_msg("unexpected error: %s", errs.n ? errs.v[0] : "?");
	json_decref(j);
	return d;
}

/*
 * Build a set from inline JSON and check that the errors are exactly
 * these, in this order.
 */
static void
expect_errors(const char *text, const char *const *want, size_t nwant)
{
	struct domains *d = domains_new();
	struct errors errs = { 0 };
	json_t *j = jq(text);

	size_t n = domains_add_tree(d, j, "t.json", &errs);
	for (size_t i = 0; i < errs.n && i < nwant; i++)
		assert_string_equal(errs.v[i], want[i]);
	assert_int_equal(errs.n, nwant);
	assert_int_equal(n, nwant);
	errors_free(&errs);
	json_decref(j);
	domains_free(d);
}

static void
expect_error(const char *text, const char *want)
{
	expect_errors(text, &want, 1);
}

/*
 * The marker of the entry found: tests give every entry a distinct
 * relay_host "mN:25" so that a lookup shows which entry it reached.
 * "-" for no entry, "" for an entry without a marker.
 */
static const char *
hit(const struct domains *d, const char *listener, const char *domain)
{
	const struct domain_entry *e = domains_lookup(d, listener, domain);

	if (e == NULL)
		return "-";
	return e->relay_host != NULL ? e->relay_host : "";
}

/* A file under $TMPDIR or /tmp with this extension and content. */
static char *
temp_file(const char *ext, const char *content)
{
	const char *dir = getenv("TMPDIR");
	char *path = xasprintf("%s/oobd-test-domains-XXXXXX%s",
	    dir != NULL && *dir != '\0' ? dir : "/tmp", ext);
	int fd = mkstemps(path, (int)strlen(ext));

	if (fd < 0)
		fail_msg("mkstemps %s failed", path);
	size_t n = strlen(content);
	if (write(fd, content, n) != (ssize_t)n)
		fail_msg("write %s failed", path);
	close(fd);
	return path;
}

static void
sin4(struct sockaddr_in *s, const char *ip)
{
	memset(s, 0, sizeof(*s));
	s->sin_family = AF_INET;
	s->sin_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
}

static void
sin6(struct sockaddr_in6 *s, const char *ip)
{
	memset(s, 0, sizeof(*s));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
}

/* Whether ip (v4 or v6 text) is inside the network written as net. */
static bool
in_net(const char *net, const char *ip)
{
	struct cidr c;
	char *err = NULL;
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	if (cidr_parse(net, &c, &err) != 0)
		fail_msg("cidr_parse %s: %s", net, err);
	if (strchr(ip, ':') != NULL) {
		sin6(&s6, ip);
		return cidr_contains(&c, (struct sockaddr *)&s6);
	}
	sin4(&s4, ip);
	return cidr_contains(&c, (struct sockaddr *)&s4);
}

static const char disp_error_tail[] = "expected a boolean value or one of "
    "'Ignore', 'LogThenDrop' or 'LogThenRelay'";

/* ------------------------------------------------------- entry values */

static void
test_dispositions(void **state)
{
	(void)state;
	struct domains *d = set_of("{"
	    "'a.com': {'log_oob': 'Ignore', 'log_arf': false},"
	    "'b.com': {'log_oob': 'LogThenRelay', 'log_arf': true},"
	    "'c.com': {'log_oob': 'LogThenDrop', 'log_arf': 'LogThenDrop'},"
	    "'d.com': {'log_oob': true, 'log_arf': 'LogThenRelay'},"
	    "'e.com': {'log_oob': false, 'log_arf': 'Ignore'},"
	    "'f.com': {}}");
	const struct domain_entry *e;

	e = domains_lookup(d, "127.0.0.1:25", "a.com");
	assert_non_null(e);
	assert_int_equal(e->log_oob, DISP_IGNORE);
	assert_int_equal(e->log_arf, DISP_IGNORE);
	e = domains_lookup(d, "127.0.0.1:25", "b.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_RELAY);
	assert_int_equal(e->log_arf, DISP_LOG_THEN_RELAY);
	e = domains_lookup(d, "127.0.0.1:25", "c.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_DROP);
	assert_int_equal(e->log_arf, DISP_LOG_THEN_DROP);
	e = domains_lookup(d, "127.0.0.1:25", "d.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_RELAY);
	assert_int_equal(e->log_arf, DISP_LOG_THEN_RELAY);
	e = domains_lookup(d, "127.0.0.1:25", "e.com");
	assert_int_equal(e->log_oob, DISP_IGNORE);
	assert_int_equal(e->log_arf, DISP_IGNORE);

	/* The defaults of EsmtpDomain. */
	e = domains_lookup(d, "127.0.0.1:25", "f.com");
	assert_non_null(e);
	assert_int_equal(e->log_oob, DISP_IGNORE);
	assert_int_equal(e->log_arf, DISP_IGNORE);
	assert_false(e->relay_to);
	assert_int_equal(e->nrelay_from, 0);
	assert_int_equal(e->nrelay_from_authz, 0);
	assert_null(e->relay_host);
	domains_free(d);

	assert_string_equal(disposition_name(DISP_IGNORE), "Ignore");
	assert_string_equal(disposition_name(DISP_LOG_THEN_RELAY),
	    "LogThenRelay");
	assert_string_equal(disposition_name(DISP_LOG_THEN_DROP),
	    "LogThenDrop");
	assert_false(disposition_logs(DISP_IGNORE));
	assert_false(disposition_relays(DISP_IGNORE));
	assert_true(disposition_logs(DISP_LOG_THEN_RELAY));
	assert_true(disposition_relays(DISP_LOG_THEN_RELAY));
	assert_true(disposition_logs(DISP_LOG_THEN_DROP));
	assert_false(disposition_relays(DISP_LOG_THEN_DROP));
}

static void
test_disposition_errors(void **state)
{
	static const char *const bad[] = {
		"'yes'", "'logthendrop'", "'LogThenDrop '", "''", "1", "0",
		"null", "['Ignore']", "{}",
	};

	(void)state;
	for (size_t i = 0; i < nitems(bad); i++) {
		char *text = xasprintf("{'x.com': {'log_oob': %s}}", bad[i]);
		char *want = xasprintf("t.json: [\"x.com\"].log_oob: invalid "
		    "value for field 'log_oob': %s", disp_error_tail);
		expect_error(text, want);
		free(text);
		free(want);
	}
	/* The case of KumoMTA's mod:test(), in a per-listener table. */
	char *want = xasprintf("t.json: listener.\"127.0.0.1:25\"."
	    "\"*.example.com\".log_arf: invalid value for field 'log_arf': %s",
	    disp_error_tail);
	expect_error("{'listener': {'127.0.0.1:25': {'*.example.com': "
	    "{'log_arf': 'yes'}}}}", want);
	free(want);
}

static void
test_relay_to(void **state)
{
	(void)state;
	struct domains *d = set_of("{'a.com': {'relay_to': true},"
	    "'b.com': {'relay_to': false}}");
	assert_true(domains_lookup(d, "*", "a.com")->relay_to);
	assert_false(domains_lookup(d, "*", "b.com")->relay_to);
	domains_free(d);

	expect_error("{'a.com': {'relay_to': 'true'}}", "t.json: [\"a.com\"]."
	    "relay_to: invalid value for field 'relay_to': expected a boolean");
	expect_error("{'a.com': {'relay_to': 1}}", "t.json: [\"a.com\"]."
	    "relay_to: invalid value for field 'relay_to': expected a boolean");
}

static void
test_relay_from(void **state)
{
	(void)state;
	struct domains *d = set_of("{'a.com': {'relay_from': "
	    "['10.0.0.0/24', '192.0.2.7', '2001:db8::/32', '::1']},"
	    "'b.com': {'relay_from': []}}");
	const struct domain_entry *e = domains_lookup(d, "*", "a.com");
	static const unsigned char v6net[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	static const unsigned char v6lo[16] = { [15] = 1 };

	assert_int_equal(e->nrelay_from, 4);
	assert_int_equal(e->relay_from[0].family, AF_INET);
	assert_int_equal(e->relay_from[0].prefix, 24);
	assert_memory_equal(e->relay_from[0].addr, "\x0a\x00\x00\x00", 4);
	assert_int_equal(e->relay_from[1].family, AF_INET);
	assert_int_equal(e->relay_from[1].prefix, 32);
	assert_memory_equal(e->relay_from[1].addr, "\xc0\x00\x02\x07", 4);
	assert_int_equal(e->relay_from[2].family, AF_INET6);
	assert_int_equal(e->relay_from[2].prefix, 32);
	assert_memory_equal(e->relay_from[2].addr, v6net, 16);
	assert_int_equal(e->relay_from[3].family, AF_INET6);
	assert_int_equal(e->relay_from[3].prefix, 128);
	assert_memory_equal(e->relay_from[3].addr, v6lo, 16);
	assert_int_equal(domains_lookup(d, "*", "b.com")->nrelay_from, 0);
	domains_free(d);

	expect_error("{'a.com': {'relay_from': ['192.168.1.1/24']}}",
	    "t.json: [\"a.com\"].relay_from: invalid value for field "
	    "'relay_from': 192.168.1.1/24 is not a valid CIDR: host part of "
	    "address was not zero. Did you mean 192.168.1.0/24?");
	expect_error("{'a.com': {'relay_from': ['10.0.0.0/24', '2001:db8::1/32']}}",
	    "t.json: [\"a.com\"].relay_from: invalid value for field "
	    "'relay_from': 2001:db8::1/32 is not a valid CIDR: host part of "
	    "address was not zero. Did you mean 2001:db8::/32?");
	expect_error("{'a.com': {'relay_from': ['example.com']}}",
	    "t.json: [\"a.com\"].relay_from: invalid value for field "
	    "'relay_from': example.com is not a valid CIDR: invalid IP address "
	    "syntax");
	expect_error("{'a.com': {'relay_from': '10.0.0.0/24'}}",
	    "t.json: [\"a.com\"].relay_from: invalid value for field "
	    "'relay_from': expected a list of CIDR strings");
	expect_error("{'a.com': {'relay_from': ['10.0.0.0/24', 7]}}",
	    "t.json: [\"a.com\"].relay_from: invalid value for field "
	    "'relay_from': item 2 is not a string");
}

static void
test_relay_from_authz(void **state)
{
	(void)state;
	struct domains *d = set_of("{'a.com': {'relay_from_authz': "
	    "['user1', 'user2']}}");
	const struct domain_entry *e = domains_lookup(d, "*", "a.com");

	assert_int_equal(e->nrelay_from_authz, 2);
	assert_string_equal(e->relay_from_authz[0], "user1");
	assert_string_equal(e->relay_from_authz[1], "user2");
	domains_free(d);

	expect_error("{'a.com': {'relay_from_authz': 'user1'}}",
	    "t.json: [\"a.com\"].relay_from_authz: invalid value for field "
	    "'relay_from_authz': expected a list of strings");
	expect_error("{'a.com': {'relay_from_authz': ['user1', true]}}",
	    "t.json: [\"a.com\"].relay_from_authz: invalid value for field "
	    "'relay_from_authz': item 2 is not a string");
}

static void
test_ttl(void **state)
{
	(void)state;
	/* Accepted for old configurations and otherwise ignored. */
	struct domains *d = set_of("{'a.com': {'ttl': '60s'},"
	    "'b.com': {'ttl': '5 minutes'}, 'c.com': {'ttl': 60},"
	    "'d.com': {'ttl': 1.5}}");
	assert_non_null(domains_lookup(d, "*", "a.com"));
	assert_non_null(domains_lookup(d, "*", "d.com"));
	domains_free(d);

	static const char *const bad[] = { "'soon'", "true", "-1", "[]" };
	for (size_t i = 0; i < nitems(bad); i++) {
		char *text = xasprintf("{'a.com': {'ttl': %s}}", bad[i]);
		expect_error(text, "t.json: [\"a.com\"].ttl: invalid value for "
		    "field 'ttl': expected a duration such as \"60s\" or a "
		    "number of seconds");
		free(text);
	}
}

static void
test_relay_host(void **state)
{
	static const struct {
		const char *in, *host;
		unsigned port;
		bool literal;
	} good[] = {
		{ "[192.0.2.1]:25", "192.0.2.1", 25, true },
		{ "[2001:db8::1]:2525", "2001:db8::1", 2525, true },
		{ "mx.example.net:25", "mx.example.net", 25, false },
		{ "MX-1.Example.NET.:587", "MX-1.Example.NET.", 587, false },
		{ "192.0.2.1:65535", "192.0.2.1", 65535, false },
		{ "localhost:1", "localhost", 1, false },
	};
	static const struct {
		const char *in, *why;
	} bad[] = {
		{ "mx.example.net", "missing ':port'" },
		{ "mx.example.net:0", "the port must be a number from 1 to 65535" },
		{ "mx.example.net:65536", "the port must be a number from 1 to 65535" },
		{ "mx.example.net:", "the port must be a number from 1 to 65535" },
		{ "mx.example.net:25x", "the port must be a number from 1 to 65535" },
		{ "mx.example.net:+25", "the port must be a number from 1 to 65535" },
		{ "[192.0.2.1]", "expected ':port' after ']'" },
		{ "[192.0.2.1:25", "missing ']'" },
		{ "[mx.example.net]:25", "the bracketed part is not an IP address" },
		{ "2001:db8::1:25", "an IPv6 address must be written in brackets" },
		{ ":25", "invalid host name" },
		{ "a..b:25", "invalid host name" },
		{ "-a.example:25", "invalid host name" },
		{ "a-.example:25", "invalid host name" },
		{ "mx example:25", "invalid host name" },
		{ "mx_1.example:25", "invalid host name" },
		{ "999.0.2.1:25", "invalid IPv4 address" },
	};

	(void)state;
	for (size_t i = 0; i < nitems(good); i++) {
		char *host = NULL, *err = NULL;
		unsigned port = 0;
		bool literal = !good[i].literal;
		assert_int_equal(relay_host_parse(good[i].in, &host, &port,
		    &literal, &err), 0);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
		assert_int_equal(literal, good[i].literal);
		free(host);
	}
	for (size_t i = 0; i < nitems(bad); i++) {
		char *err = NULL;
		char *want = xasprintf("\"%s\": %s (expected \"[ip]:port\" or "
		    "\"host:port\")", bad[i].in, bad[i].why);
		assert_int_equal(relay_host_parse(bad[i].in, NULL, NULL, NULL,
		    &err), -1);
		assert_string_equal(err, want);
		free(err);
		free(want);
	}
	char *long_label = xasprintf("%064d.example:25", 0);
	assert_int_equal(relay_host_parse(long_label, NULL, NULL, NULL, NULL),
	    -1);
	free(long_label);

	struct domains *d = set_of("{'a.com': {'relay_host': '[192.0.2.1]:25'}}");
	assert_string_equal(domains_lookup(d, "*", "a.com")->relay_host,
	    "[192.0.2.1]:25");
	domains_free(d);
	expect_error("{'a.com': {'relay_host': 'mx.example.net'}}",
	    "t.json: [\"a.com\"].relay_host: invalid value for field "
	    "'relay_host': \"mx.example.net\": missing ':port' (expected "
	    "\"[ip]:port\" or \"host:port\")");
	expect_error("{'a.com': {'relay_host': 25}}",
	    "t.json: [\"a.com\"].relay_host: invalid value for field "
	    "'relay_host': expected a string \"[ip]:port\" or \"host:port\"");
}

static void
test_unknown_key(void **state)
{
	(void)state;
	expect_error("{'a.com': {'log_oob': true, 'log_bounce': true}}",
	    "t.json: [\"a.com\"].log_bounce: unknown field 'log_bounce', "
	    "expected one of 'log_oob', 'log_arf', 'relay_to', 'relay_from', "
	    "'relay_from_authz', 'relay_host' or 'ttl'");
	/* Odd names are quoted, control bytes escaped: one line per error. */
	expect_error("{'a.com': {'bad key\\n': 1}}",
	    "t.json: [\"a.com\"].\"bad key\\u000a\": unknown field 'bad key?', "
	    "expected one of 'log_oob', 'log_arf', 'relay_to', 'relay_from', "
	    "'relay_from_authz', 'relay_host' or 'ttl'");
}

static void
test_structure_errors(void **state)
{
	(void)state;
	expect_error("['a.com']",
	    "t.json: expected a table of domains at the top level");
	expect_error("{'a.com': true}", "t.json: [\"a.com\"]: expected a "
	    "table of listener-domain settings");
	expect_error("{'listener': []}",
	    "t.json: listener: expected a table of listeners");
	expect_error("{'listener': {'127.0.0.1:25': 'a.com'}}",
	    "t.json: listener.\"127.0.0.1:25\": expected a table of domains");
	expect_error("{'listener': {'127.0.0.1:25': {'a.com': []}}}",
	    "t.json: listener.\"127.0.0.1:25\".\"a.com\": expected a table of "
	    "listener-domain settings");
	static const char *const bad_listeners[] = {
		"localhost:25", "127.0.0.1", "127.0.0.1:0", "::1:25",
		"[127.0.0.1]:25", "[::1]25", "",
	};
	for (size_t i = 0; i < nitems(bad_listeners); i++) {
		char *text = xasprintf("{'listener': {'%s': {}}}",
		    bad_listeners[i]);
		char *want = xasprintf("t.json: listener.\"%s\": expected a "
		    "listener address \"ip:port\", \"[ipv6]:port\" or \"*\"",
		    bad_listeners[i]);
		expect_error(text, want);
		free(text);
		free(want);
	}

	/* Every problem is reported, not only the first. */
	static const char *const want[] = {
		"t.json: listener.\"nowhere\": expected a listener address "
		    "\"ip:port\", \"[ipv6]:port\" or \"*\"",
		"t.json: listener.\"127.0.0.1:25\".\"b.com\".relay_to: invalid "
		    "value for field 'relay_to': expected a boolean",
		"t.json: [\"a.com\"].log_oob: invalid value for field 'log_oob': "
		    "expected a boolean value or one of 'Ignore', 'LogThenDrop' "
		    "or 'LogThenRelay'",
		"t.json: [\"a.com\"].relay_from: invalid value for field "
		    "'relay_from': 10.1.1.1/8 is not a valid CIDR: host part of "
		    "address was not zero. Did you mean 10.0.0.0/8?",
		"t.json: [\"c.com\"].frobnicate: unknown field 'frobnicate', "
		    "expected one of 'log_oob', 'log_arf', 'relay_to', "
		    "'relay_from', 'relay_from_authz', 'relay_host' or 'ttl'",
	};
	expect_errors("{'a.com': {'log_oob': 'yes', 'relay_from': ['10.1.1.1/8'],"
	    " 'relay_to': true},"
	    "'listener': {'nowhere': {}, '127.0.0.1:25': {'b.com': "
	    "{'relay_to': 'no'}}},"
	    "'c.com': {'frobnicate': 1}}", want, nitems(want));
}

/* ---------------------------------------------------------------- CIDR */

static void
test_cidr_parse(void **state)
{
	static const struct {
		const char *in;
		int family;
		unsigned prefix;
		const char *addr;	/* inet_ntop of the network */
	} good[] = {
		{ "10.0.0.0/24", AF_INET, 24, "10.0.0.0" },
		{ "0.0.0.0/0", AF_INET, 0, "0.0.0.0" },
		{ "127.0.0.1", AF_INET, 32, "127.0.0.1" },
		{ "127.0.0.1/32", AF_INET, 32, "127.0.0.1" },
		{ "10.128.0.0/9", AF_INET, 9, "10.128.0.0" },
		{ "2001:db8::/32", AF_INET6, 32, "2001:db8::" },
		{ "::1", AF_INET6, 128, "::1" },
		{ "::/0", AF_INET6, 0, "::" },
		{ "::ffff:10.0.0.0/104", AF_INET6, 104, "::ffff:10.0.0.0" },
		{ "fe80::/10", AF_INET6, 10, "fe80::" },
	};
	static const struct {
		const char *in, *err;
	} bad[] = {
		{ "192.168.1.1/24", "192.168.1.1/24 is not a valid CIDR: host "
		    "part of address was not zero. Did you mean 192.168.1.0/24?" },
		{ "10.0.0.1/24", "10.0.0.1/24 is not a valid CIDR: host part of "
		    "address was not zero. Did you mean 10.0.0.0/24?" },
		{ "10.0.0.1/0", "10.0.0.1/0 is not a valid CIDR: host part of "
		    "address was not zero. Did you mean 0.0.0.0/0?" },
		{ "10.192.0.0/9", "10.192.0.0/9 is not a valid CIDR: host part "
		    "of address was not zero. Did you mean 10.128.0.0/9?" },
		{ "2001:db8::1/64", "2001:db8::1/64 is not a valid CIDR: host "
		    "part of address was not zero. Did you mean 2001:db8::/64?" },
		{ "fe80::1/10", "fe80::1/10 is not a valid CIDR: host part of "
		    "address was not zero. Did you mean fe80::/10?" },
		{ "10.0.0.0/33", "10.0.0.0/33 is not a valid CIDR: network "
		    "length 33 is too long for IPv4 (maximum: 32)" },
		{ "::/129", "::/129 is not a valid CIDR: network length 129 is "
		    "too long for IPv6 (maximum: 128)" },
		{ "10.0.0.0/", "10.0.0.0/ is not a valid CIDR: invalid network "
		    "length" },
		{ "10.0.0.0/a", "10.0.0.0/a is not a valid CIDR: invalid "
		    "network length" },
		{ "10.0.0.0/-8", "10.0.0.0/-8 is not a valid CIDR: invalid "
		    "network length" },
		{ "10.0.0.0/0008", "10.0.0.0/0008 is not a valid CIDR: invalid "
		    "network length" },
		{ "10.0.0/8", "10.0.0/8 is not a valid CIDR: invalid IP address "
		    "syntax" },
		{ "010.0.0.0/8", "010.0.0.0/8 is not a valid CIDR: invalid IP "
		    "address syntax" },
		{ " 10.0.0.0/8", " 10.0.0.0/8 is not a valid CIDR: invalid IP "
		    "address syntax" },
		{ "", " is not a valid CIDR: invalid IP address syntax" },
		{ "/8", "/8 is not a valid CIDR: invalid IP address syntax" },
		{ "10.0.0.0/8/8", "10.0.0.0/8/8 is not a valid CIDR: invalid "
		    "network length" },
		{ "10.0.0.\x01/8", "10.0.0.?/8 is not a valid CIDR: invalid IP "
		    "address syntax" },
	};

	(void)state;
	for (size_t i = 0; i < nitems(good); i++) {
		struct cidr c;
		char *err = NULL, ip[INET6_ADDRSTRLEN];
		assert_int_equal(cidr_parse(good[i].in, &c, &err), 0);
		assert_null(err);
		assert_int_equal(c.family, good[i].family);
		assert_int_equal(c.prefix, good[i].prefix);
		inet_ntop(c.family, c.addr, ip, sizeof(ip));
		assert_string_equal(ip, good[i].addr);
	}
	for (size_t i = 0; i < nitems(bad); i++) {
		struct cidr c;
		char *err = NULL;
		assert_int_equal(cidr_parse(bad[i].in, &c, &err), -1);
		assert_string_equal(err, bad[i].err);
		free(err);
		assert_int_equal(cidr_parse(bad[i].in, &c, NULL), -1);
	}

	/* A hostile value is cut in the message, between UTF-8 sequences. */
	char longv[401], *err = NULL;
	struct cidr c;
	memset(longv, 'a', 199);
	for (size_t i = 199; i + 1 < sizeof(longv); i += 2)
		memcpy(longv + i, "\xc3\xa9", 2);
	longv[400] = '\0';
	assert_int_equal(cidr_parse(longv, &c, &err), -1);
	char *want = xasprintf("%.199s... is not a valid CIDR: invalid IP "
	    "address syntax", longv);
	assert_string_equal(err, want);
	free(want);
	free(err);

	struct cidr any;
	assert_int_equal(cidr_parse("any", &any, NULL), 0);
	assert_int_equal(any.family, AF_UNSPEC);
}

static void
test_cidr_contains(void **state)
{
	(void)state;
	assert_true(in_net("10.0.0.0/24", "10.0.0.0"));
	assert_true(in_net("10.0.0.0/24", "10.0.0.255"));
	assert_false(in_net("10.0.0.0/24", "10.0.1.0"));
	assert_false(in_net("10.0.0.0/24", "9.255.255.255"));
	assert_true(in_net("10.128.0.0/9", "10.255.1.1"));
	assert_false(in_net("10.128.0.0/9", "10.127.1.1"));
	assert_true(in_net("127.0.0.1", "127.0.0.1"));
	assert_false(in_net("127.0.0.1", "127.0.0.2"));
	assert_true(in_net("0.0.0.0/0", "203.0.113.9"));
	assert_false(in_net("0.0.0.0/0", "2001:db8::1"));
	assert_true(in_net("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in_net("2001:db8::/32", "2001:db9::1"));
	assert_true(in_net("::1", "::1"));
	assert_false(in_net("::1", "::2"));
	assert_false(in_net("::/0", "10.0.0.1"));
	assert_true(in_net("::/0", "2001:db8::1"));

	/* An IPv4 peer on a dual-stack socket is an IPv4 address. */
	assert_true(in_net("10.0.0.0/24", "::ffff:10.0.0.5"));
	assert_false(in_net("10.0.0.0/24", "::ffff:10.0.1.5"));
	assert_true(in_net("127.0.0.1", "::ffff:127.0.0.1"));
	assert_false(in_net("::ffff:10.0.0.0/104", "::ffff:10.0.0.5"));
	assert_false(in_net("::/0", "::ffff:10.0.0.5"));
	/* Not mapped: the IPv4-compatible and NAT64 forms stay IPv6. */
	assert_false(in_net("10.0.0.0/24", "::10.0.0.5"));
	assert_false(in_net("10.0.0.0/24", "64:ff9b::10.0.0.5"));

	assert_true(in_net("any", "10.0.0.5"));
	assert_true(in_net("any", "2001:db8::1"));

	struct cidr list[2];
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct sockaddr_un_like { sa_family_t f; char p[20]; } su = { AF_UNIX,
	    "x" };
	assert_int_equal(cidr_parse("192.0.2.0/24", &list[0], NULL), 0);
	assert_int_equal(cidr_parse("2001:db8::/32", &list[1], NULL), 0);
	sin4(&s4, "192.0.2.200");
	assert_true(cidr_list_contains(list, 2, (struct sockaddr *)&s4));
	assert_false(cidr_list_contains(list, 1, NULL));
	sin4(&s4, "198.51.100.1");
	assert_false(cidr_list_contains(list, 2, (struct sockaddr *)&s4));
	sin6(&s6, "2001:db8::25");
	assert_true(cidr_list_contains(list, 2, (struct sockaddr *)&s6));
	assert_false(cidr_list_contains(list, 1, (struct sockaddr *)&s6));
	assert_false(cidr_list_contains(list, 0, (struct sockaddr *)&s6));
	assert_false(cidr_list_contains(list, 2, (struct sockaddr *)&su));
}

/* -------------------------------------------------------------- lookup */

/* crates/domain-map's own test. */
static void
test_map_kumo_basic(void **state)
{
	(void)state;
	struct domains *d = set_of("{"
	    "'*.example.com': {'relay_host': 'm42:25'},"
	    "'example.com': {'relay_host': 'm24:25'},"
	    "'omg.wtf.woot.example.com': {'relay_host': 'm128:25'}}");

	assert_string_equal(hit(d, "*", "foo.com"), "-");
	assert_string_equal(hit(d, "*", "example.com"), "m24:25");
	assert_string_equal(hit(d, "*", "lemon.example.com"), "m42:25");
	assert_string_equal(hit(d, "*", "lemon.cake.example.com"), "m42:25");
	/* Nodes on the way to omg.wtf.woot.example.com hold no entry. */
	assert_string_equal(hit(d, "*", "woot.example.com"), "-");
	assert_string_equal(hit(d, "*", "wtf.woot.example.com"), "-");
	assert_string_equal(hit(d, "*", "omg.wtf.woot.example.com"), "m128:25");
	/* ... and the walk below them does not come back to the wildcard. */
	assert_string_equal(hit(d, "*", "x.woot.example.com"), "-");
	domains_free(d);
}

static void
test_map_wildcards(void **state)
{
	(void)state;
	struct domains *d = set_of("{"
	    "'*.example.com': {'relay_host': 'wild:25'},"
	    "'x.y.example.com': {'relay_host': 'xy:25'},"
	    "'a.*.example.org': {'relay_host': 'mid:25'}}");

	/* example.com has too few labels for *.example.com. */
	assert_string_equal(hit(d, "*", "example.com"), "-");
	assert_string_equal(hit(d, "*", "a.example.com"), "wild:25");
	assert_string_equal(hit(d, "*", "a.b.example.com"), "wild:25");
	assert_string_equal(hit(d, "*", "x.y.example.com"), "xy:25");
	/* No backtracking: the walk went into y, which has no "*" child. */
	assert_string_equal(hit(d, "*", "z.y.example.com"), "-");
	assert_string_equal(hit(d, "*", "y.example.com"), "-");
	assert_string_equal(hit(d, "*", "w.x.y.example.com"), "-");
	/*
	 * A "*" label in the middle never matches: the walk stops at the
	 * "*" node and takes its value, which is none (DomainMap::get).
	 */
	assert_string_equal(hit(d, "*", "a.b.example.org"), "-");
	assert_string_equal(hit(d, "*", "b.example.org"), "-");
	assert_string_equal(hit(d, "*", "a.*.example.org"), "mid:25");
	/* The literal name "*.example.com" is the wildcard node itself. */
	assert_string_equal(hit(d, "*", "*.example.com"), "wild:25");
	assert_string_equal(hit(d, "*", ""), "-");
	assert_string_equal(hit(d, "*", "."), "-");
	assert_string_equal(hit(d, "*", "com"), "-");
	assert_string_equal(hit(d, "*", "..example.com"), "wild:25");
	domains_free(d);
}

static void
test_star_default(void **state)
{
	(void)state;
	struct domains *d = set_of("{"
	    "'*': {'relay_to': true, 'relay_host': 'star:25'},"
	    "'somewhere.com': {'relay_to': false, 'relay_host': 'some:25'}}");

	assert_string_equal(hit(d, "127.0.0.1:25", "somewhere.com"), "some:25");
	/* "org" is not a node: the single-label "*" matches through the map. */
	assert_string_equal(hit(d, "127.0.0.1:25", "example.org"), "star:25");
	/*
	 * "com" is a node without a "*" child, so the map finds nothing; the
	 * third step, the literal "*" entry, catches it.
	 */
	assert_string_equal(hit(d, "127.0.0.1:25", "example.com"), "star:25");
	assert_string_equal(hit(d, NULL, "anything.example"), "star:25");
	domains_free(d);

	/*
	 * Per listener the difference shows: the listener's own "*" does not
	 * catch example.com (com is a node there), so the "*" listener's "*"
	 * entry answers.
	 */
	d = set_of("{'*': {'relay_host': 'global:25'},"
	    "'listener': {'127.0.0.1:25': {"
	    "'*': {'relay_host': 'lstar:25'},"
	    "'somewhere.com': {'relay_host': 'lsome:25'}}}}");
	assert_string_equal(hit(d, "127.0.0.1:25", "somewhere.com"), "lsome:25");
	assert_string_equal(hit(d, "127.0.0.1:25", "example.org"), "lstar:25");
	assert_string_equal(hit(d, "127.0.0.1:25", "example.com"), "global:25");
	assert_string_equal(hit(d, "127.0.0.1:2525", "example.org"),
	    "global:25");
	assert_string_equal(hit(d, "127.0.0.1:2525", "somewhere.com"),
	    "global:25");
	domains_free(d);

	/* Without any "*" entry nothing matches an unknown domain. */
	d = set_of("{'a.com': {}}");
	assert_string_equal(hit(d, "127.0.0.1:25", "b.com"), "-");
	assert_string_equal(hit(d, "127.0.0.1:25", "b.org"), "-");
	domains_free(d);
}

static void
test_per_listener(void **state)
{
	(void)state;
	struct domains *d = set_of("{"
	    "'*.example.com': {'log_oob': 'LogThenDrop', 'relay_to': true,"
	    "  'relay_host': 'top:25'},"
	    "'listener': {"
	    "  '127.0.0.1:25': {'*.example.com': {'log_oob': false}},"
	    "  '[::1]:25': {'b.example.com': {'relay_host': 'v6:25'}},"
	    "  '[2001:DB8:0:0::1]:2525': {'c.example.com': "
	    "    {'relay_host': 'canon:25'}},"
	    "  '*': {'d.example.com': {'relay_host': 'lany:25'}}}}");
	const struct domain_entry *e;

	/* The listener's entry wins whole: no merging across the steps. */
	e = domains_lookup(d, "127.0.0.1:25", "woof.example.com");
	assert_non_null(e);
	assert_int_equal(e->log_oob, DISP_IGNORE);
	assert_false(e->relay_to);
	assert_null(e->relay_host);
	e = domains_lookup(d, "127.0.0.1:2525", "woof.example.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_DROP);
	assert_true(e->relay_to);
	assert_string_equal(e->relay_host, "top:25");
	/* A listener without an answer falls through to "*". */
	assert_string_equal(hit(d, "127.0.0.1:25", "example.com"), "-");
	assert_string_equal(hit(d, "[::1]:25", "b.example.com"), "v6:25");
	assert_string_equal(hit(d, "[::1]:25", "a.example.com"), "top:25");
	assert_string_equal(hit(d, "[::1]:2525", "b.example.com"), "top:25");
	/* Listener keys are compared in the form the server names them. */
	assert_string_equal(hit(d, "[2001:db8::1]:2525", "c.example.com"),
	    "canon:25");
	/* listener."*" is the same map as the top level. */
	assert_string_equal(hit(d, "127.0.0.1:2525", "d.example.com"),
	    "lany:25");
	domains_free(d);
}

static void
test_case_insensitive(void **state)
{
	(void)state;
	struct domains *d = set_of("{"
	    "'Bounce.Example.COM': {'relay_host': 'b:25'},"
	    "'*.FBL.example.com': {'relay_host': 'f:25'},"
	    "'dot.example.net.': {'relay_host': 'dot:25'}}");

	assert_string_equal(hit(d, "*", "bounce.example.com"), "b:25");
	assert_string_equal(hit(d, "*", "BOUNCE.EXAMPLE.COM"), "b:25");
	assert_string_equal(hit(d, "*", "bounce.example.com."), "b:25");
	assert_string_equal(hit(d, "*", "X.fbl.EXAMPLE.com"), "f:25");
	assert_string_equal(hit(d, "*", "dot.example.net"), "dot:25");
	assert_string_equal(hit(d, "*", "DOT.example.net."), "dot:25");
	/* Only one trailing dot is ignored. */
	assert_string_equal(hit(d, "*", "bounce.example.com.."), "-");
	/* Bytes outside ASCII are compared as they are. */
	assert_string_equal(hit(d, "*", "bounce.example.co\xc3\x9c"), "-");
	domains_free(d);
}

static void
test_merge(void **state)
{
	(void)state;
	struct domains *d = domains_new();
	struct errors errs = { 0 };
	json_t *a = jq("{'a.com': {'log_oob': 'LogThenDrop', 'relay_to': true,"
	    "  'relay_from': ['10.0.0.0/8'], 'relay_host': 'first:25'},"
	    "'listener': {'127.0.0.1:25': {'a.com': {'log_arf': true}}}}");
	json_t *b = jq("{'A.com.': {'relay_to': false, 'log_arf': 'LogThenDrop',"
	    "  'relay_from': ['192.0.2.0/24', '198.51.100.0/24']},"
	    "'b.com': {'relay_to': true},"
	    "'listener': {'127.0.0.1:25': {'a.com': {'log_oob': true}}}}");

	assert_int_equal(domains_add_tree(d, a, "a.json", &errs), 0);
	assert_int_equal(domains_add_tree(d, b, "b.toml", &errs), 0);
	assert_int_equal(errs.n, 0);
	json_decref(a);
	json_decref(b);

	const struct domain_entry *e = domains_lookup(d, "*", "a.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_DROP);	/* kept */
	assert_int_equal(e->log_arf, DISP_LOG_THEN_DROP);	/* added */
	assert_false(e->relay_to);				/* replaced */
	assert_int_equal(e->nrelay_from, 2);			/* replaced */
	assert_int_equal(e->relay_from[0].prefix, 24);
	assert_string_equal(e->relay_host, "first:25");		/* kept */
	e = domains_lookup(d, "127.0.0.1:25", "a.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_RELAY);
	assert_int_equal(e->log_arf, DISP_LOG_THEN_RELAY);
	assert_false(e->relay_to);
	assert_null(e->relay_host);
	assert_true(domains_lookup(d, "*", "b.com")->relay_to);
	domains_free(d);

	/* Within one file, names that differ only in case merge too. */
	d = set_of("{'x.com': {'log_oob': true, 'relay_to': true},"
	    "'X.COM': {'relay_to': false}}");
	e = domains_lookup(d, "*", "x.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_RELAY);
	assert_false(e->relay_to);
	domains_free(d);
}

static void
count_cb(void *arg, const char *listener, const char *domain,
    const struct domain_entry *e)
{
	struct buf *b = arg;

	buf_printf(b, "%s %s %d;", listener, domain, e->relay_to);
}

static void
test_each(void **state)
{
	(void)state;
	struct domains *d = set_of("{"
	    "'Relay.com.': {'relay_to': true},"
	    "'drop.com': {'log_oob': 'LogThenDrop', 'log_arf': 'LogThenDrop'},"
	    "'oob.com': {'log_oob': true},"
	    "'arf.com': {'log_arf': 'LogThenRelay'},"
	    "'from.com': {'relay_from': ['10.0.0.0/8']},"
	    "'listener': {'127.0.0.1:25': {'*.x.com': {'relay_to': true}}}}");
	struct buf b = { 0 };

	assert_int_equal(domains_each(d, count_cb, &b), 4);
	assert_string_equal(b.data, "127.0.0.1:25 *.x.com 1;* relay.com 1;"
	    "* oob.com 0;* arf.com 0;");
	buf_free(&b);
	assert_int_equal(domains_each(d, NULL, NULL), 4);
	assert_int_equal(domains_each(NULL, count_cb, &b), 0);
	domains_free(d);
}

static void
test_relay_from_allowed(void **state)
{
	(void)state;
	struct domains *d = set_of("{"
	    "'send.com': {'relay_from': ['10.0.0.0/24']},"
	    "'auth.com': {'relay_from_authz': ['user1', 'user2']},"
	    "'both.com': {'relay_from': ['10.0.0.0/24'],"
	    "  'relay_from_authz': ['user1']}}");
	struct sockaddr_in in, out;
	const struct sockaddr *pin = (struct sockaddr *)&in;
	const struct sockaddr *pout = (struct sockaddr *)&out;
	const struct domain_entry *send = domains_lookup(d, "*", "send.com");
	const struct domain_entry *auth = domains_lookup(d, "*", "auth.com");
	const struct domain_entry *both = domains_lookup(d, "*", "both.com");

	sin4(&in, "10.0.0.1");
	sin4(&out, "192.0.2.1");
	assert_true(domain_entry_relay_from_allowed(send, pin, NULL));
	assert_false(domain_entry_relay_from_allowed(send, pout, NULL));
	assert_false(domain_entry_relay_from_allowed(send, pout, "user1"));
	assert_true(domain_entry_relay_from_allowed(auth, pout, "user2"));
	assert_false(domain_entry_relay_from_allowed(auth, pout, "User2"));
	assert_false(domain_entry_relay_from_allowed(auth, pout, NULL));
	assert_false(domain_entry_relay_from_allowed(auth, pin, "john"));
	assert_true(domain_entry_relay_from_allowed(both, pout, "user1"));
	assert_true(domain_entry_relay_from_allowed(both, pin, "john"));
	assert_false(domain_entry_relay_from_allowed(both, pout, "john"));
	assert_false(domain_entry_relay_from_allowed(NULL, pin, "user1"));
	domains_free(d);
}

/*
 * mod:test() of assets/policy-extras/listener_domains.lua, with the tree
 * its TOML parses to. Unlike KumoMTA's test (which drops the listener
 * table before loading, reference §1.3), the per-listener table is in
 * force, as in KumoMTA's production file loading.
 */
static const char kumo_test_json[] = "{"
    "'*': {'relay_to': true},"
    "'somewhere.com': {'relay_to': false, 'relay_from': ['10.0.0.0/24']},"
    "'listener': {'127.0.0.1:25': {'*.example.com': {'log_oob': false}}},"
    "'elsewhere.com': {'relay_to': false, 'relay_from_authz': ['john']}}";

static const char kumo_test_toml[] =
    "['*']\n"
    "relay_to = true\n"
    "\n"
    "['somewhere.com']\n"
    "relay_to = false\n"
    "relay_from = ['10.0.0.0/24']\n"
    "\n"
    "# Define a per-listener configuration\n"
    "[listener.\"127.0.0.1:25\".\"*.example.com\"]\n"
    "log_oob = false\n"
    "\n"
    "['elsewhere.com']\n"
    "relay_to = false\n"
    "relay_from_authz = [\"john\"]\n";

static void
check_kumo_test(const struct domains *d)
{
	const struct domain_entry *e;
	struct sockaddr_in peer;
	const struct sockaddr *sa = (struct sockaddr *)&peer;

	/* example.com: no entry of its own, so the "*" default. */
	e = domains_lookup(d, "127.0.0.1:25", "example.com");
	assert_non_null(e);
	assert_true(e->relay_to);
	assert_int_equal(e->log_oob, DISP_IGNORE);
	assert_int_equal(e->log_arf, DISP_IGNORE);
	assert_int_equal(e->nrelay_from, 0);
	assert_ptr_equal(e, domains_lookup(d, "*", "*"));

	/*
	 * woof.example.com on 127.0.0.1:25: the listener's own entry, alone
	 * (KumoMTA's test expects {log_oob=false, relay_to=true} only
	 * because its listener table was lost; see the comment above).
	 */
	e = domains_lookup(d, "127.0.0.1:25", "woof.example.com");
	assert_non_null(e);
	assert_int_equal(e->log_oob, DISP_IGNORE);
	assert_false(e->relay_to);
	/* On another listener: the "*" default, as in KumoMTA's test. */
	e = domains_lookup(d, "10.0.0.1:25", "woof.example.com");
	assert_true(e->relay_to);
	assert_int_equal(e->log_oob, DISP_IGNORE);

	e = domains_lookup(d, "127.0.0.1:25", "somewhere.com");
	assert_false(e->relay_to);
	assert_int_equal(e->nrelay_from, 1);
	assert_int_equal(e->relay_from[0].family, AF_INET);
	assert_int_equal(e->relay_from[0].prefix, 24);
	assert_memory_equal(e->relay_from[0].addr, "\x0a\x00\x00\x00", 4);
	sin4(&peer, "10.0.0.1");
	assert_true(domain_entry_relay_from_allowed(e, sa, NULL));

	/* elsewhere.com without authz_id: relay_to=false and nothing else. */
	e = domains_lookup(d, "10.0.0.1:25", "elsewhere.com");
	assert_false(e->relay_to);
	assert_int_equal(e->nrelay_from, 0);
	assert_int_equal(e->log_oob, DISP_IGNORE);
	assert_int_equal(e->log_arf, DISP_IGNORE);
	assert_false(domain_entry_relay_from_allowed(e, sa, NULL));
	/* authz_id=john from 10.0.0.1: relay_from becomes {10.0.0.1}. */
	assert_true(domain_entry_relay_from_allowed(e, sa, "john"));
	assert_false(domain_entry_relay_from_allowed(e, sa, "jane"));
}

static void
test_kumo_mod_test(void **state)
{
	(void)state;
	struct domains *d = set_of(kumo_test_json);
	check_kumo_test(d);
	domains_free(d);
}

/* ---------------------------------------------------------------- files */

/* Load files, expecting success. */
static struct domains *
load_ok(const char *const *files, size_t n)
{
	struct errors errs = { 0 };
	struct domains *d = domains_load(files, n, &errs);

	if (d == NULL || errs.n != 0)
		fail_msg("domains_load failed: %s", errs.n ? errs.v[0] : "?");
	return d;
}

static void
test_files_json_merge(void **state)
{
	(void)state;
	char *a = temp_file(".json", "{\"bounce.example.com\": "
	    "{\"log_oob\": \"LogThenDrop\", \"relay_to\": true},"
	    "\"*\": {\"relay_to\": false}}");
	/* Any name other than .toml is JSON, as in listener_domains.lua. */
	char *b = temp_file(".conf", "{\"bounce.example.com\": "
	    "{\"relay_to\": false, \"log_arf\": true}}");
	const char *files[] = { a, b };
	struct domains *d = load_ok(files, 2);

	const struct domain_entry *e = domains_lookup(d, "127.0.0.1:25",
	    "bounce.example.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_DROP);
	assert_int_equal(e->log_arf, DISP_LOG_THEN_RELAY);
	assert_false(e->relay_to);
	e = domains_lookup(d, "127.0.0.1:25", "other.example");
	assert_false(e->relay_to);
	assert_int_equal(e->log_oob, DISP_IGNORE);
	domains_free(d);

	/* No files: an empty set that finds nothing. */
	struct errors errs = { 0 };
	d = domains_load(NULL, 0, &errs);
	assert_non_null(d);
	assert_int_equal(errs.n, 0);
	assert_null(domains_lookup(d, "127.0.0.1:25", "bounce.example.com"));
	domains_free(d);
	unlink(a);
	unlink(b);
	free(a);
	free(b);
}

static void
test_files_toml(void **state)
{
	(void)state;
	char *a = temp_file(".toml",
	    "# the documented example\n"
	    "[\"bounce.example.com\"]\n"
	    "log_oob = \"LogThenDrop\"\n"
	    "[\"fbl.example.com\"]\n"
	    "log_arf = true\n"
	    "[\"auth-send.example.com\"]\n"
	    "relay_from_authz = [\"user1\", \"user2\"]\n"
	    "[\"*\"]\n"
	    "relay_to = false\n"
	    "ttl = \"5 minutes\"\n"
	    "[listener.\"127.0.0.1:25\".\"*.example.com\"]\n"
	    "log_oob = false\n");
	char *b = temp_file(".toml",
	    "[\"bounce.example.com\"]\n"
	    "relay_host = \"[192.0.2.1]:25\"\n");
	const char *files[] = { a, b };
	struct domains *d = load_ok(files, 2);
	const struct domain_entry *e;

	e = domains_lookup(d, "127.0.0.1:2525", "bounce.example.com");
	assert_int_equal(e->log_oob, DISP_LOG_THEN_DROP);
	assert_string_equal(e->relay_host, "[192.0.2.1]:25");
	e = domains_lookup(d, "127.0.0.1:2525", "fbl.example.com");
	assert_int_equal(e->log_arf, DISP_LOG_THEN_RELAY);
	e = domains_lookup(d, "127.0.0.1:2525", "auth-send.example.com");
	assert_int_equal(e->nrelay_from_authz, 2);
	assert_string_equal(e->relay_from_authz[1], "user2");
	/* On 127.0.0.1:25 the listener's wildcard catches bounce.example.com. */
	e = domains_lookup(d, "127.0.0.1:25", "bounce.example.com");
	assert_int_equal(e->log_oob, DISP_IGNORE);
	assert_null(e->relay_host);
	domains_free(d);
	unlink(a);
	unlink(b);
	free(a);
	free(b);

	/* KumoMTA's test TOML, with its single-quoted (literal) keys. */
	char *t = temp_file(".toml", kumo_test_toml);
	d = load_ok((const char *const *)&t, 1);
	check_kumo_test(d);
	domains_free(d);
	unlink(t);
	free(t);

	/* mod:test()'s invalid value, through a TOML file. */
	t = temp_file(".toml", "# Define a per-listener configuration\n"
	    "[listener.\"127.0.0.1:25\".\"*.example.com\"]\n"
	    "log_arf = \"yes\"\n");
	struct errors errs = { 0 };
	assert_null(domains_load((const char *const *)&t, 1, &errs));
	assert_int_equal(errs.n, 1);
	char *want = xasprintf("%s: listener.\"127.0.0.1:25\".\"*.example.com\""
	    ".log_arf: invalid value for field 'log_arf': %s", t,
	    disp_error_tail);
	assert_string_equal(errs.v[0], want);
	free(want);
	errors_free(&errs);
	unlink(t);
	free(t);
}

static void
test_files_bad(void **state)
{
	(void)state;
	struct errors errs = { 0 };
	char *good = temp_file(".json", "{\"a.com\": {\"relay_to\": true}}");
	char *missing = xasprintf("%s.missing.json", good);
	char *badjson = temp_file(".json", "{\"a.com\": {\"relay_to\": tru");
	char *badtoml = temp_file(".toml", "[\"a.com\"\nrelay_to = true\n");
	char *badval = temp_file(".json", "{\"a.com\": {\"relay_to\": 1}}");
	const char *files[] = { good, missing, badjson, badtoml, badval };

	assert_null(domains_load(files, nitems(files), &errs));
	/* One error per bad file, each naming its file, in order. */
	assert_int_equal(errs.n, 4);
	assert_non_null(strstr(errs.v[0], missing));
	assert_non_null(strstr(errs.v[1], badjson));
	assert_non_null(strstr(errs.v[2], badtoml));
	char *want = xasprintf("%s: [\"a.com\"].relay_to: invalid value for "
	    "field 'relay_to': expected a boolean", badval);
	assert_string_equal(errs.v[3], want);
	free(want);
	errors_free(&errs);

	/* Hostile content: deep nesting, odd keys, no crash, clear errors. */
	char *odd = temp_file(".json", "{\"\": {}, \"...\": {\"log_oob\": "
	    "true}, \"listener\": {\"*\": {\"*\": "
	    "{\"relay_to\": {\"x\": [[[[]]]]}}}}}");
	assert_null(domains_load((const char *const *)&odd, 1, &errs));
	assert_int_equal(errs.n, 1);
	want = xasprintf("%s: listener.\"*\".\"*\".relay_to: invalid value for "
	    "field 'relay_to': expected a boolean", odd);
	assert_string_equal(errs.v[0], want);
	free(want);
	errors_free(&errs);

	/* errs may be NULL: the result alone tells. */
	assert_null(domains_load(files, 2, NULL));

	unlink(good);
	unlink(badjson);
	unlink(badtoml);
	unlink(badval);
	unlink(odd);
	free(good);
	free(missing);
	free(badjson);
	free(badtoml);
	free(badval);
	free(odd);
}

static void
test_many_entries(void **state)
{
	(void)state;
	/* Enough entries to grow the tables several times. */
	json_t *root = json_object();
	char name[64];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "d%d.sub%d.example.com", i, i % 7);
		json_t *e = json_object();
		json_object_set_new(e, "relay_to", json_boolean(i % 2));
		json_object_set_new(root, name, e);
	}
	struct domains *d = domains_new();
	struct errors errs = { 0 };
	assert_int_equal(domains_add_tree(d, root, "big.json", &errs), 0);
	json_decref(root);
	for (int i = 0; i < 5000; i += 97) {
		snprintf(name, sizeof(name), "D%d.SUB%d.example.com", i, i % 7);
		const struct domain_entry *e = domains_lookup(d, "*", name);
		assert_non_null(e);
		assert_int_equal(e->relay_to, i % 2);
	}
	assert_null(domains_lookup(d, "*", "d1.sub2.example.com"));
	assert_null(domains_lookup(NULL, "*", "d1.sub1.example.com"));
	assert_null(domains_lookup(d, "*", NULL));
	domains_free(d);
	domains_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispositions),
		cmocka_unit_test(test_disposition_errors),
		cmocka_unit_test(test_relay_to),
		cmocka_unit_test(test_relay_from),
		cmocka_unit_test(test_relay_from_authz),
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_relay_host),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_map_kumo_basic),
		cmocka_unit_test(test_map_wildcards),
		cmocka_unit_test(test_star_default),
		cmocka_unit_test(test_per_listener),
		cmocka_unit_test(test_case_insensitive),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_each),
		cmocka_unit_test(test_relay_from_allowed),
		cmocka_unit_test(test_kumo_mod_test),
		cmocka_unit_test(test_files_json_merge),
		cmocka_unit_test(test_files_toml),
		cmocka_unit_test(test_files_bad),
		cmocka_unit_test(test_many_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
