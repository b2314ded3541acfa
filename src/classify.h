/* SPDX-License-Identifier: Apache-2.0 */
/*
 * classify.h - the bounce classifier: KumoMTA rule files (TOML or JSON, a
 * top-level `rules` table of label -> [regex...]), first match in load
 * order wins, PCRE2 with JIT (reference §5).
 */
#ifndef OOBD_CLASSIFY_H
#define OOBD_CLASSIFY_H

#include <stdbool.h>
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

/*
 * The label for a bounce from its evidence, in order of specificity but
 * KumoMTA's answer first: the record's own response (KumoMTA's subject;
 * whatever label it gets stands, so KumoMTA's rule files keep KumoMTA's
 * semantics), then each of the nmore further subjects in turn (the reply
 * with the Diagnostic-Code's own enhanced code, the reply of the
 * human-readable part), the first that a rule labels deciding. *subject
 * gets the subject that decided (the last one when none did; a string of
 * more[], or *owned, which the caller frees).
 */
const char *classifier_classify_evidence(const struct classifier *c,
	    const struct response *resp, const char *const *more, size_t nmore,
	    const char **subject, char **owned);

/*
 * Sisimai's reason for a bounce (its taxonomy: "userunknown",
 * "mailboxfull", "blocked", ...) from the label the rules gave it and the
 * subject that decided it (a single-line response): first the wording of
 * the text where it draws a finer line than KumoMTA's classes, then the
 * label, then the enhanced code, then the reply class. Never NULL. *hard
 * says whether a sender should stop mailing the address: the address or
 * its domain does not exist, or has moved, or refuses mail for good.
 */
const char *bounce_reason(const char *label, const char *subject,
	    bool *hard);

struct bounce;
/*
 * A bounce's label (classifier_classify_evidence over KumoMTA's response
 * resp, then the subjects its further evidence gives: the Diagnostic-Code
 * text with its own enhanced code, the human-readable part's reply), and
 * its reason and hardness (bounce_reason) from the subject that decided.
 */
void	 classify_bounce(const struct classifier *c,
	    const struct response *resp, const struct bounce *b,
	    const char **label, const char **reason, bool *hard);

size_t	 classifier_rule_count(const struct classifier *c);

/*
 * The index in load order of the first rule matching an already formed
 * subject, or -1 when none does. Uncached. For tests and diagnostics (which
 * rule decided, whether a rule can ever win).
 */
long	 classifier_match_index(const struct classifier *c, const char *line,
	    size_t len);
/*
 * Rule i in load order: its label, pattern text and file (any pointer may
 * be NULL). The strings live as long as c. 0, or -1 when i is out of range.
 */
int	 classifier_rule_info(const struct classifier *c, size_t i,
	    const char **label, const char **pattern, const char **file);
/*
 * Size the result cache (entries, rounded up to a power of two; 0 turns it
 * off; 1024 after classifier_load). Call before c is shared between
 * threads: it is not synchronised with classification.
 */
void	 classifier_set_cache_size(struct classifier *c, size_t entries);

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
