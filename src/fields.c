/* STUB: replaced by the real implementation. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "fields.h"
#include "util.h"
int fields_parse(const char *t, size_t l, struct fieldblock *fb) { (void)t; (void)l; memset(fb, 0, sizeof(*fb)); return -1; }
void fields_free(struct fieldblock *fb) { (void)fb; }
const struct field *fields_get(const struct fieldblock *fb, const char *n) { (void)fb; (void)n; return NULL; }
size_t fields_count(const struct fieldblock *fb, const char *n) { (void)fb; (void)n; return 0; }
size_t fields_split_groups(const char *t, size_t l, struct span **o) { (void)t; (void)l; *o = NULL; return 0; }
bool split_typed(const char *s, char **a, char **b) { (void)s; (void)a; (void)b; return false; }
