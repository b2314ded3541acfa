/* STUB: replaced by the real implementation. */
#include "config.h"
#include "input.h"
int input_each(const char *p, input_msg_fn fn, input_err_fn e, void *a) { (void)p; (void)fn; (void)e; (void)a; return -1; }
int input_mbox(const char *n, const char *d, size_t l, input_msg_fn fn, void *a) { (void)n; (void)d; (void)l; (void)fn; (void)a; return -1; }
