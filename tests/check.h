/* Minimal test harness: each CHECK counts one assertion; main() ends with
 * CHECK_DONE(), which prints "name: P passed, F failed" and returns the
 * exit status (non-zero when anything failed). */
#ifndef L2RW_CHECK_H
#define L2RW_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            check_passed++;                                                  \
        } else {                                                             \
            check_failed++;                                                  \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                      \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
            fflush(stdout);                                                  \
        }                                                                    \
    } while (0)

/* |a - b| <= atol + rtol * max(|a|, |b|) */
#define CHECK_CLOSE(a, b, rtol, atol, what)                                  \
    do {                                                                     \
        double check_a = (a), check_b = (b);                                 \
        double check_m = fmax(fabs(check_a), fabs(check_b));                 \
        CHECK(fabs(check_a - check_b) <= (atol) + (rtol) * check_m,          \
              "%s: %.9g vs %.9g", (what), check_a, check_b);                 \
    } while (0)

#define CHECK_OK(expr)                                                       \
    do {                                                                     \
        l2rw_status check_s = (expr);                                        \
        CHECK(check_s == L2RW_OK, "%s -> %s (%s)", #expr,                    \
              l2rw_strerror(check_s), l2rw_last_error());                    \
    } while (0)

#define CHECK_DONE(name)                                                     \
    (printf("%s: %d passed, %d failed\n", (name), check_passed,              \
            check_failed),                                                   \
     check_failed ? 1 : 0)

#endif
