/* STUB: replaced by the real implementation. */
#include "config.h"
#include "datetime.h"
int rfc2822_date(const char *s, time_t *out, bool *w) { (void)s; (void)out; (void)w; return -1; }
