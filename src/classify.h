/*
 * classify.h - the bounce classifier: KumoMTA rule files (TOML or JSON, a
 * top-level `rules` table of label -> [regex...]), first match in load
 * order wins, PCRE2 with JIT (reference §5).
 */
#ifndef OOBD_CLASSIFY_H
#define OOBD_CLASSIFY_H

#include <stddef.h>

#include "record.h"

struct classifier;

/*
 * Build a classifier from rule files, in order (file order, then label
 * order within the file, then pattern order). Returns NULL and a malloc'ed
 * message in *err naming the file, and the label and pattern where one is
 * at fault, when a file cannot be read or parsed, has an extension other
 * than .toml or .json, or holds an invalid regex. nfiles may be 0: every
 * response is then "Uncategorized".
 */
struct classifier *classifier_load(const char *const *files, size_t nfiles,
	    char **err);

/* Take and drop references; the last release frees. Thread-safe. */
struct classifier *classifier_ref(struct classifier *c);
void	 classifier_unref(struct classifier *c);

/*
 * The label for a response: the first rule matching its single-line form
 * (response_single_line()), or "Uncategorized". The string lives as long as
 * c. Safe to call from several threads at once.
 */
const char *classifier_classify(const struct classifier *c,
	    const struct response *resp);
/* The same for an already formed single-line subject. */
const char *classifier_classify_line(const struct classifier *c,
	    const char *line, size_t len);

size_t	 classifier_rule_count(const struct classifier *c);

/*
 * A slot holding the current classifier, swapped atomically on reload.
 * Readers take a reference with classifier_slot_get() and release it with
 * classifier_unref() when done, so a reload never frees a classifier that
 * is in use.
 */
struct classifier_slot;
struct classifier_slot *classifier_slot_new(struct classifier *initial);
void	 classifier_slot_free(struct classifier_slot *s);
struct classifier *classifier_slot_get(struct classifier_slot *s);
/*
 * Load the files into a new classifier and swap it in. On failure the old
 * classifier stays and -1 is returned with *err set; 0 on success.
 */
int	 classifier_slot_reload(struct classifier_slot *s,
	    const char *const *files, size_t nfiles, char **err);

#endif
