/* STUB: replaced by the real implementation. */
#include "config.h"
#include "arf.h"
int arf_decode(const struct message *m, struct report *r) { (void)m; (void)r; return 0; }
