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
 * Copy data[0..len) into m with every CRLF and every lone CR turned into LF,
 * and parse it with GMime. Returns 0; a message GMime cannot make sense of
 * still loads, with m->mime NULL.
 */
int	 message_load(struct message *m, const char *data, size_t len);
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
