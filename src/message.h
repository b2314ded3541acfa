/* SPDX-License-Identifier: Apache-2.0 */
/*
 * message.h - a received message as the decoders see it: the text with LF
 * line ends, its GMime parse, and byte-exact spans of its parts.
 */
#ifndef OOBD_MESSAGE_H
#define OOBD_MESSAGE_H

#include <gmime/gmime.h>
#include <stdbool.h>
#include <stddef.h>

struct message {
	char	*text;		/* LF line ends, NUL-terminated */
	size_t	 len;
	size_t	 wire_size;	/* size with CRLF line ends, as SMTP carries it */
	/*
	 * The top-level entity, parsed as a MIME part: its header list holds
	 * every top-level field in the order received. NULL when GMime found
	 * no message at all.
	 */
	GMimeObject *mime;
	/*
	 * message_load_max refused the message without parsing it: one of
	 * its header blocks has more fields than the limit (mime is NULL).
	 */
	bool	 too_many_fields;
	/* message_load refused it: more delimiter lines than MESSAGE_MAX_PARTS
	   parts need (mime is NULL). */
	bool	 too_many_parts;
};

/* A header block and body inside message text (not NUL-terminated). */
struct raw_entity {
	const char *headers;	/* the header lines, ending with their LF */
	size_t	 headers_len;
	const char *body;	/* after the blank line */
	size_t	 body_len;
};

/* Initialise GMime once per process (thread-safe). */
void	 message_library_init(void);

/*
 * The header fields one header block may have by default: the daemon's
 * default [listener] max_header_fields.
 */
#define MESSAGE_MAX_HEADER_FIELDS	1000
/* The MIME parts message_load allows: the default max_mime_parts. */
#define MESSAGE_MAX_PARTS		10000

/*
 * Whether no header block of data[0..len) has more than max fields. A
 * header block is a run of lines without an empty line (CRLF, LF or a lone
 * CR ending each), and each line that starts like a field ("name:")
 * counts: so the top-level header, the header of every MIME part and of
 * every message/rfc822 part, each delivery-status field group and returned
 * headers are all bounded without knowing the MIME structure; a body line
 * can only make the count higher. One pass, no allocation: cheap enough to
 * run before GMime, whose header lists cost about a kilobyte per field.
 */
bool	 message_fields_within(const char *data, size_t len, size_t max);

/*
 * Copy data[0..len) into m with every CRLF and every lone CR turned into LF,
 * and parse it with GMime. Returns 0; a message GMime cannot make sense of
 * still loads, with m->mime NULL. A message with a header block of more
 * than max_fields fields (see message_fields_within) is not parsed at
 * all: -1, m->mime NULL and m->too_many_fields set. message_load is
 * message_load_max with MESSAGE_MAX_HEADER_FIELDS, and also refuses (-1,
 * m->too_many_parts) a message with more lines starting "--" than
 * MESSAGE_MAX_PARTS parts would need (the daemon checks its own
 * max_mime_parts so before message_load_max).
 */
int	 message_load(struct message *m, const char *data, size_t len);
int	 message_load_max(struct message *m, const char *data, size_t len,
	    size_t max_fields);
void	 message_free(struct message *m);

/*
 * The MIME structure of m: the deepest nesting of multiparts and
 * message/rfc822 parts (1 for a single-part message, 0 when GMime found
 * no message) and the number of entities. The tree is walked without
 * recursion.
 */
void	 message_mime_shape(const struct message *m, size_t *depth,
	    size_t *parts);

/*
 * The direct children of the top-level multipart, as byte-exact spans of
 * m->text in document order. Each body runs up to the delimiter line and
 * includes the line break just before it, as KumoMTA captures it. Returns
 * the count (0 if the message is not multipart); *out is malloc'ed.
 */
size_t	 message_children(const struct message *m, struct raw_entity **out);

/*
 * The value of the last top-level Subject field, unfolded and decoded as
 * GMime decodes it, or NULL.
 */
const char *message_subject(const struct message *m);

/*
 * The addresses of every top-level field called name (From, To, ...) in
 * their order, parsed with GMime's address parser: a new list the caller
 * unrefs, or NULL when m has no such field.
 */
InternetAddressList *message_addresses(const struct message *m,
	    const char *name);

/* Split text into its header block and body at the first empty line. */
void	 raw_entity_split(const char *text, size_t len, struct raw_entity *e);

/* Whether o's Content-Type is type/subtype (ASCII case-insensitive). */
bool	 mime_is(GMimeObject *o, const char *type, const char *subtype);

/*
 * The content of a leaf part with its Content-Transfer-Encoding removed,
 * NUL-terminated; NULL if o is not a GMimePart or has no content. Caller
 * frees with free().
 */
char	*mime_part_decoded(GMimeObject *o, size_t *lenp);

#endif
