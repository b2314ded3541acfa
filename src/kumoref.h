/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumoref.h - the X-KumoRef supplemental trace header (reference §4).
 */
#ifndef OOBD_KUMOREF_H
#define OOBD_KUMOREF_H

#include <jansson.h>
#include <stddef.h>

/*
 * Decode one header value as KumoMTA does: remove all ASCII whitespace,
 * base64-decode strictly (standard alphabet, '=' padding required, length a
 * multiple of 4, '=' only at the end), parse as a JSON object whose "_@_"
 * member is the string "\_/". Returns a new object without the "_@_" key,
 * or NULL when any step fails.
 */
json_t	*kumoref_decode_value(const char *raw, size_t len);

/*
 * Scan a raw header block (LF or CRLF line ends): every field whose name
 * starts with "X-" or "x-", in order, raw value unfolded; the first value
 * that decodes wins. Returns a new reference or NULL.
 */
json_t	*kumoref_scan_headers(const char *headers, size_t len);
/* The same scan over fields already parsed (struct fieldblock of fields.h). */
struct fieldblock;
json_t	*kumoref_scan_fields(const struct fieldblock *fb);

/*
 * Encode a payload as KumoMTA's TraceHeaders::apply_supplemental does: the
 * object plus "_@_":"\_/", compact with sorted keys, standard padded
 * base64, folded into 75-character chunks joined by CRLF TAB. Returns the
 * header value (without the name). Caller frees.
 */
char	*kumoref_encode(const json_t *payload);

#endif
