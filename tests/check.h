/* Minimal test harness. A test case is a function `static void
 * test_xxx(void)` run from main() with RUN(test_xxx); inside it, CHECK and
 * its friends are assertions. A case passes when none of its assertions
 * failed, and prints one line:
 *
 *     ok test_loss/test_ce_values
 *     FAIL test_loss/test_ce_values
 *     skip test_zoo/test_wrn: reason
 *
 * scripts/run_tests.sh reads those lines from every pass (plain and
 * sanitized) and counts test cases, not assertions. main() ends with
 * CHECK_DONE(name), which prints "name: P passed, F failed" over the cases
 * (with the assertion count in brackets) and returns the exit status
 * (non-zero when anything failed). */
#ifndef L2RW_CHECK_H
#define L2RW_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;  /* assertions */
static int case_passed, case_failed, case_skipped;
static int case_skip_flag;              /* the running case called SKIP */
static int check_failed_in_cases;       /* failed assertions inside RUN */

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

/* The test file's name without directory and extension. */
static const char *check_file_stem(const char *file, char *buf, size_t size)
{
    const char *slash = strrchr(file, '/');
    snprintf(buf, size, "%s", slash ? slash + 1 : file);
    char *dot = strrchr(buf, '.');
    if (dot) *dot = '\0';
    return buf;
}

/* SKIP("why"): the running case did not run its checks (or part of
 * them) here; the reason is printed. A case skipped in one pass and run in
 * another counts as run. Call it, then return. */
#define SKIP(...)                                                            \
    do {                                                                     \
        case_skip_flag = 1;                                                  \
        printf("   (skipped: ");                                             \
        printf(__VA_ARGS__);                                                 \
        printf(")\n");                                                       \
    } while (0)

static void check_run(const char *file, const char *name, void (*fn)(void))
{
    char stem[128];
    const int before = check_failed, asserts = check_passed + check_failed;
    case_skip_flag = 0;
    fflush(stdout);
    fn();
    const int failed = check_failed - before;
    check_failed_in_cases += failed;
    check_file_stem(file, stem, sizeof stem);
    if (failed) {
        case_failed++;
        printf("FAIL %s/%s\n", stem, name);
    } else if (case_skip_flag && check_passed + check_failed == asserts) {
        case_skipped++;
        printf("skip %s/%s\n", stem, name);
    } else {
        case_passed++;
        printf("ok %s/%s\n", stem, name);
    }
    fflush(stdout);
}

#define RUN(fn) check_run(__FILE__, #fn, fn)

/* Assertions outside any case count as one failed case "main". */
static int check_done(const char *file, const char *name)
{
    char stem[128];
    if (check_failed > check_failed_in_cases) {
        case_failed++;
        printf("FAIL %s/main\n", check_file_stem(file, stem, sizeof stem));
    }
    printf("%s: %d passed, %d failed (test cases; %d assertions)\n", name,
           case_passed, case_failed, check_passed + check_failed);
    return case_failed || check_failed ? 1 : 0;
}

#define CHECK_DONE(name) check_done(__FILE__, (name))

#endif
