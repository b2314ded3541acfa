/* STUB test: replaced by the real tests. */
#include "testutil.h"
static void stub(void **state) { (void)state; }
int main(void) { const struct CMUnitTest t[] = { cmocka_unit_test(stub) }; return cmocka_run_group_tests(t, NULL, NULL); }
