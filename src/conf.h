/*
 * conf.h - oobd.toml: the daemon's configuration, its defaults, and the
 * checks that `oobd -t` runs.
 */
#ifndef OOBD_CONF_H
#define OOBD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

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
	double	 idle_timeout;		/* between commands */
	double	 data_timeout;		/* whole DATA phase deadline */
	struct strlist relay_hosts;	/* CIDRs allowed to relay */
	struct strlist listener_domains;/* files */
	enum line_endings invalid_line_endings;
	bool	 received_header;	/* trace_headers.received_header */
	char	*tls_certificate;
	char	*tls_private_key;
	char	*state_dir;
	size_t	 workers;		/* pipeline threads */

	/* [logs] */
	char	*log_dir;
	bool	 compress;
	int	 compression_level;
	uint64_t max_file_size;
	double	 max_segment_duration;	/* 0: unlimited */
	bool	 fsync;
	bool	 kumo_strict;
	struct strlist meta;
	struct strlist headers;

	/* [bounce_classifier] */
	struct strlist classifier_files;
};

/*
 * Load and check a configuration file. Every problem is added to errs as
 * "file: [section] key: reason"; NULL is returned when there was any.
 * Referenced files (listener domains, rules, certificates) are checked by
 * their own loaders, not here.
 */
struct config *config_load(const char *path, struct errors *errs);
/* The configuration with every default, as if from an empty file. */
struct config *config_defaults(void);
void	 config_free(struct config *c);

#endif
