/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fields.h - header-field blocks: the per-message and per-recipient groups
 * of a delivery-status part, a feedback-report part, the headers of a
 * returned message. Parsed with GMime's header parser.
 */
#ifndef OOBD_FIELDS_H
#define OOBD_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

struct field {
	char	*name;		/* ASCII-lowercased field name */
	char	*value;		/* "unstructured" value: folding whitespace runs
				   collapsed to one space, RFC 2047 words
				   decoded, trimmed; lossy UTF-8 */
	char	*raw;		/* raw value after the colon, folding kept */
	bool	 utf8;		/* the raw value was valid UTF-8 */
};

struct fieldblock {
	struct field *v;
	size_t	 n;
};

/* A span of text (not NUL-terminated). */
struct span {
	const char *p;
	size_t	 n;
};

/*
 * Parse text[0..len) (LF or CRLF line ends) as one header block. Returns 0,
 * or -1 when it is not a header block at all (the first line is not a
 * field) or has more fields than MESSAGE_MAX_HEADER_FIELDS (not given to
 * GMime). Fields keep document order.
 */
int	 fields_parse(const char *text, size_t len, struct fieldblock *fb);
/* The same, names and raw values only: every value is NULL. */
int	 fields_parse_raw(const char *text, size_t len, struct fieldblock *fb);
/*
 * Parse n blocks (the groups of a delivery-status part, the headers of a
 * returned message) into out[0..n), each as fields_parse would (or as
 * fields_parse_raw, where raw_only[i]; raw_only may be NULL), rc[i] its
 * result; in one GMime parse where that gives the same fields, which costs
 * far less than one per block. Returns the number of blocks that failed.
 */
int	 fields_parse_groups(const struct span *blocks, size_t n,
	    struct fieldblock *out, int *rc, const bool *raw_only);
/*
 * The fields of an entity GMime has parsed already, as fields_parse gives
 * them for its header block.
 */
struct _GMimeObject;
void	 fields_of_object(struct _GMimeObject *obj, struct fieldblock *fb);
void	 fields_of_object_raw(struct _GMimeObject *obj, struct fieldblock *fb);
void	 fields_free(struct fieldblock *fb);

/* The first field named lname (lowercase), or NULL. */
const struct field *fields_get(const struct fieldblock *fb, const char *lname);
size_t	 fields_count(const struct fieldblock *fb, const char *lname);

/*
 * Split a field-group text (a delivery-status body) into its groups at
 * empty lines. A run of several empty lines (or lines of only whitespace)
 * separates like one, and leading/trailing empty lines are ignored, so an
 * extra blank line between groups never yields an empty group. Returns the
 * number of groups; *out is malloc'ed.
 */
size_t	 fields_split_groups(const char *text, size_t len, struct span **out);

/*
 * Split "type; value" at the first ';' with both sides trimmed. Returns
 * false when there is no ';'. *type and *value are malloc'ed.
 */
bool	 split_typed(const char *s, char **type, char **value);

#endif
