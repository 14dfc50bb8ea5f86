/* tests/run_tests.c: one Check runner for every tests/test_<module>.c.
 * The Makefile generates build/.../suites.inc with one X(module) line per test file, so a new
 * test file needs no edit here. Select suites with CK_RUN_SUITE=name (Check's own variable);
 * CK_FORK=no runs in-process for gdb. */
#include "cli.h"
#include <check.h>
#include <stdlib.h>

#define X(name) Suite *test_##name##_suite(void);
#include "suites.inc"
#undef X

int main(int argc, char **argv) {
    (void)argc;
    cli_runtime_init(argv);
    SRunner *sr = srunner_create(NULL);
#define X(name) srunner_add_suite(sr, test_##name##_suite());
#include "suites.inc"
#undef X
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY decides; the Makefile asks for "minimal" */
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
