/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.h - KumoMTA-compatible log records and their JSON form.
 *
 * A struct record holds every field of KumoMTA's JsonLogRecord; record_json()
 * writes them in KumoMTA's order and types (reference kumomta-behaviour.md
 * §6.3), then oob_detail unless kumo_strict. The record owns every pointer
 * in it; record_free() releases them.
 */
#ifndef OOBD_RECORD_H
#define OOBD_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum record_type {
	REC_RECEPTION,
	REC_DELIVERY,
	REC_BOUNCE,
	REC_TRANSIENT_FAILURE,
	REC_EXPIRATION,
	REC_ADMIN_BOUNCE,
	REC_OOB,
	REC_FEEDBACK,
	REC_REJECTION,
	REC_ADMIN_REBIND,
	REC_DEFERRED_INJECTION_REBIND,
	REC_DELAYED,
	REC_XFER_OUT,
	REC_XFER_IN,
};

const char *record_type_name(enum record_type t);
/* Whether KumoMTA classifies records of this type (is_bounce_classifiable). */
bool record_type_classified(enum record_type t);

struct response {
	int	 code;
	bool	 has_enhanced;
	unsigned cls, subject, detail;
	char	*content;		/* never NULL once set by record_set_* */
	char	*command;		/* NULL is written as null */
};

struct record {
	enum record_type type;
	char	*id;
	char	*sender;
	char	**recipients;
	size_t	 nrecipients;
	char	*queue;
	char	*site;
	uint64_t size;
	struct response response;
	bool	 has_peer;
	char	*peer_name;
	char	*peer_addr;
	struct timespec timestamp;
	struct timespec created;
	unsigned num_attempts;
	char	*bounce_classification;	/* NULL is "Uncategorized" */
	char	*egress_pool;		/* NULL is null */
	char	*egress_source;
	json_t	*source_address;
	json_t	*feedback_report;
	json_t	*meta;			/* NULL is {} */
	json_t	*headers;		/* NULL is {} */
	char	*delivery_protocol;
	char	*reception_protocol;
	char	*nodeid;
	/* written only when set */
	char	*tls_cipher;
	char	*tls_protocol_version;
	json_t	*tls_peer_subject_name;	/* array of strings */
	char	*provider_name;
	char	*session_id;
	/* oobd's extension, left out under kumo_strict */
	json_t	*oob_detail;
};

void	 record_init(struct record *r, enum record_type type);
void	 record_free(struct record *r);
/* Replace a string field (frees the old value; s may be NULL). */
void	 record_set(char **field, const char *s);
void	 record_add_recipient(struct record *r, const char *addr);
void	 record_set_response(struct record *r, int code, const char *content,
	    const char *command);
void	 record_set_enhanced(struct record *r, unsigned cls, unsigned subject,
	    unsigned detail);

/*
 * KumoMTA's single-line response form (Response::to_single_line): "<code> ",
 * then "<c>.<s>.<d> " when there is an enhanced code, then the content with
 * every CRLF, CR or LF replaced by one space. Caller frees.
 */
char	*response_single_line(const struct response *resp);

/* The record as a jansson object in KumoMTA's field order. */
json_t	*record_json(const struct record *r, bool kumo_strict);
/* One compact JSON line, without the trailing newline. Caller frees. */
char	*record_dump(const struct record *r, bool kumo_strict);

/*
 * A JSON string for s[0..n), or, when the bytes are not UTF-8, an array of
 * byte values (KumoMTA's serialisation of its byte strings).
 */
json_t	*json_bytes_or_string(const char *s, size_t n);
/* A JSON string from arbitrary bytes, invalid UTF-8 replaced by U+FFFD. */
json_t	*json_string_lossy(const char *s);
/* Compact, raw UTF-8, "/" unescaped: the serde_json text of v. */
char	*json_dump_compact(const json_t *v);
/*
 * jansson's \u escapes in s[0..len) in lower-case hex, as serde_json
 * writes them (the text jansson dumped, NUL-terminated).
 */
void	 json_lowercase_escapes(char *s, size_t len);

#endif
