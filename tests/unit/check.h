/*  check.h: the checks every unit test uses: CHECK and CHECK_RC count what ran and what
    failed, say where a failure was, and test_done prints the tally and gives the exit code.
    A test goes on after a failed check, so one run shows every failure. */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>

#include "sos_error.h"

static int s_failed;
static int s_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        s_checks++;                                                                                \
        if (!(cond)) {                                                                             \
            s_failed++;                                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/*  Check that an expression returns the expected sos_rc, and say what it was if not. */
#define CHECK_RC(expr, want)                                                                       \
    do {                                                                                           \
        s_checks++;                                                                                \
        sos_rc rc_got_ = (expr);                                                                   \
        if (rc_got_ != (want)) {                                                                   \
            s_failed++;                                                                            \
            fprintf(stderr, "%s:%d: %s gave %s, expected %s\n", __FILE__, __LINE__, #expr,         \
                    sos_strerror(rc_got_), sos_strerror(want));                                    \
        }                                                                                          \
    } while (0)

#define SECTION(name) printf("  %s\n", name)

/*  Print the tally under the test's name; the exit code for main. */
static inline int
test_done(const char *name)
{
    if (s_failed)
        printf("%s: %d of %d checks FAILED\n", name, s_failed, s_checks);
    else
        printf("%s: all %d checks passed\n", name, s_checks);
    return s_failed ? 1 : 0;
}

#endif
