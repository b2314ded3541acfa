/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.h - oobd.toml: the daemon's configuration, its defaults, and the
 * checks that `oobd -t` runs.
 */
#ifndef OOBD_CONF_H
#define OOBD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logfile.h"
#include "util.h"

/* [logs] max_records_per_message; `oobd parse` applies it too. */
#define DEFAULT_MAX_RECORDS_PER_MESSAGE	10000

enum line_endings {
	LINE_ENDINGS_DENY,	/* bare CR/LF in DATA: 550 5.5.2 after the end */
	LINE_ENDINGS_FIX,	/* normalise them to CRLF */
	LINE_ENDINGS_ALLOW,	/* keep them as they are */
};

struct strlist {
	char	**v;
	size_t	 n;
};

struct config {
	char	*path;			/* the file it came from */

	/* [listener] */
	struct strlist listen;		/* "ip:port", "[ipv6]:port" */
	char	*hostname;
	char	*banner;		/* greeting text after the hostname */
	uint64_t max_message_size;
	size_t	 max_recipients;
	size_t	 max_line_length;	/* command lines, incl. CRLF */
	size_t	 max_errors;
	size_t	 max_connections;
	size_t	 max_connections_per_ip;
	size_t	 max_connections_per_network;	/* a /24 (IPv4), /64 (IPv6) */
	size_t	 max_junk_commands;	/* NOOP RSET VRFY HELP HELO EHLO */
	double	 command_phase_timeout;	/* commands without ending a DATA */
	double	 idle_timeout;		/* between commands */
	double	 data_timeout;		/* whole DATA phase deadline */
	double	 greet_wait;		/* delay before the greeting, 0: none */
	uint64_t max_header_size;	/* one header field; the excess is cut */
	size_t	 max_mime_depth;	/* multipart/message nesting */
	size_t	 max_mime_parts;	/* MIME entities in one message */
	size_t	 max_header_fields;	/* fields of one header block */
	size_t	 max_received_headers;	/* hop count limit (RFC 5321 §6.3) */
	struct strlist relay_hosts;	/* CIDRs allowed to relay */
	struct strlist listener_domains;/* files */
	enum line_endings invalid_line_endings;
	bool	 received_header;	/* trace_headers.received_header */
	char	*tls_certificate;
	char	*tls_private_key;
	char	*state_dir;
	size_t	 workers;		/* pipeline threads */
	char	*user;			/* switch to it when started as root */
	char	*group;			/* NULL: the user's primary group */
	char	*log_level;		/* operational log: "error" ... "debug" */
	double	 shutdown_timeout;	/* drain limit after SIGTERM */

	/* [logs] */
	char	*log_dir;
	bool	 compress;
	int	 compression_level;
	uint64_t max_file_size;
	double	 max_segment_duration;	/* 0: unlimited */
	double	 retention;		/* finished segments older go; 0: keep */
	bool	 fsync;
	bool	 kumo_strict;
	struct strlist meta;
	struct strlist headers;
	size_t	 max_records_per_message;	/* OOB records of one message */
	struct min_free log_min_free_space;	/* below: 452 4.3.1 at MAIL */
	struct min_free log_min_free_inodes;

	/* [bounce_classifier] */
	struct strlist classifier_files;

	/* [admin] */
	char	*admin_listen;		/* HTTP "ip:port"; "" disables it */

	/* [relay] */
	char	*spool_dir;
	struct min_free spool_min_free_space;
	struct min_free spool_min_free_inodes;
	char	*next_hop;		/* "[ip]:port" or "host:port"; NULL: none */
	double	 retry_interval;	/* delay after the first failure */
	double	 retry_factor;		/* each later delay is this much longer */
	double	 max_retry_interval;	/* delays never grow past this */
	double	 max_age;		/* then an Expiration record */
	double	 connect_timeout;	/* TCP connect, greeting, TLS handshake */
	double	 command_timeout;	/* each reply of the next hop */
	bool	 tls_verify;		/* verify the next hop's certificate */
	char	*tls_ca_file;		/* CA bundle for tls_verify; NULL: system */
};

/*
 * Load and check a configuration file. Every problem is added to errs as
 * "file: [section] key: reason"; NULL is returned when there was any.
 * Referenced files (listener domains, rules, certificates) are checked by
 * their own loaders, not here.
 */
struct config *config_load(const char *path, struct errors *errs);
/*
 * For `oobd -t`: load like config_load, but return the configuration even
 * when it has errors (a key in error keeps its default), so that the files
 * it names can be checked too. NULL only when the file cannot be read or
 * parsed at all.
 */
struct config *config_load_for_check(const char *path, struct errors *errs);
/*
 * Check every listener-domains and bounce rule file that c names, each
 * rule file on its own so that an error in each is reported. A file that
 * cannot be opened, or a rule file not named .toml or .json, is reported
 * as "oobd.toml: [section] key: file: reason"; an error inside a file as
 * its loader words it ("file: key: reason"). The lists are emptied: the
 * files have been checked, and server_init need not load them again.
 */
void	 config_check_files(struct config *c, struct errors *errs);
/* The configuration with every default, as if from an empty file. */
struct config *config_defaults(void);
/*
 * For `oobd config`: key i (0, 1, ...) of the loader's table, as its
 * section ("listener", "listener.trace_headers", ...) and name; false
 * past the last key. config_key_value is its value in c as TOML text
 * (malloc'ed, compact: sizes in bytes, durations in seconds), or NULL
 * when the key is unset (an optional file or address).
 */
bool	 config_key_name(size_t i, const char **section, const char **name);
char	*config_key_value(const struct config *c, size_t i);
void	 config_free(struct config *c);

#endif
