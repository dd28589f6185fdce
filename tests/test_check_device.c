/* The device agreement checks of `l2rw check --device`
 * (l2rw_self_check_device, src/selfcheck_device.c): on the checked back
 * end every check passes and every compared buffer is bit-identical to
 * the CPU's; with one parameter of the device net 2^-10 off, every check
 * fails (so the checks can fail); an absent device runs nothing and says
 * why; on a usable GPU the CUDA back end agrees within its tolerances
 * (skipped without one). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "l2rw.h"
#include "selfcheck.h"

/* Checks of the full run: 5 cases x 9 quantities, plus the running
 * statistics of the two nets with batch norm (resnet8, wrn-10-1); the
 * quick run leaves out the 136-example lenet. */
enum { FULL_CHECKS = 47, QUICK_CHECKS = 38 };

typedef struct {
    int n, passed, bits; /* reported, passed, detail says bit-identical */
    int models;          /* bit set: mlp, lenet, resnet8, wrn, n=136 */
    double worst;
    char first_fail[200];
} seen;

static void on_check(void *ctx, const char *name, int passed, double err,
                     const char *detail)
{
    seen *s = ctx;
    s->n++;
    s->passed += passed != 0;
    s->bits += strstr(detail, "values bit-identical") != NULL;
    if (err > s->worst || err != err) s->worst = err;
    const char *models[] = {" mlp ", " lenet ", " resnet8 ", " wrn-10-1",
                            "n=136"};
    for (int k = 0; k < 5; k++)
        if (strstr(name, models[k])) s->models |= 1 << k;
    if (!passed && !s->first_fail[0])
        snprintf(s->first_fail, sizeof s->first_fail, "%s: %s", name, detail);
}

static void test_checked_bits(void)
{
    l2rw_device d = {L2RW_DEVICE_CHECKED, 0};
    seen s = {0};
    l2rw_check_summary sum;
    CHECK_OK(l2rw_self_check_device(on_check, &s, &d, 0, &sum));
    CHECK(s.n == FULL_CHECKS && sum.passed + sum.failed == s.n,
          "%d checks reported (want %d), summary %d + %d", s.n, FULL_CHECKS,
          sum.passed, sum.failed);
    CHECK(sum.failed == 0 && s.passed == s.n, "%d failed, first: %s",
          sum.failed, s.first_fail);
    CHECK(s.bits == s.n, "%d of %d checks bit-identical", s.bits, s.n);
    CHECK(sum.max_rel_err == 0.0 && s.worst == 0.0,
          "largest error %g (summary %g)", s.worst, sum.max_rel_err);
    CHECK(s.models == 0x1f, "models seen: mask %#x", (unsigned)s.models);
}

/* One parameter of the device net 2^-10 off: every check must see it. */
static void test_tamper_caught(void)
{
    l2rw_device d = {L2RW_DEVICE_CHECKED, 0};
    seen s = {0};
    l2rw_check_summary sum;
    CHECK_OK(l2rw__self_check_device(on_check, &s, &d, 1, 1, &sum));
    CHECK(s.n == QUICK_CHECKS, "%d checks reported (want %d)", s.n,
          QUICK_CHECKS);
    CHECK(sum.failed == s.n && sum.passed == 0 && s.passed == 0,
          "%d of %d checks passed with a parameter 2^-10 off", sum.passed,
          s.n);
    CHECK(s.bits == 0, "%d checks still bit-identical", s.bits);
    CHECK(sum.max_rel_err > 0.0, "largest error %g", sum.max_rel_err);
}

static void test_refusals(void)
{
    l2rw_device d = {L2RW_DEVICE_CUDA, 999};
    seen s = {0};
    l2rw_check_summary sum;
    CHECK(l2rw_self_check_device(on_check, &s, &d, 1, &sum) ==
              L2RW_ERR_UNSUPPORTED,
          "cuda:999 not refused");
    CHECK(*l2rw_last_error() != '\0', "no reason given");
    CHECK(s.n == 0, "%d checks ran on an absent device", s.n);
    l2rw_device c = {L2RW_DEVICE_CHECKED, 0};
    CHECK(l2rw_self_check_device(NULL, NULL, &c, 1, &sum) == L2RW_ERR_ARG,
          "NULL report");
    CHECK(l2rw_self_check_device(on_check, &s, NULL, 1, &sum) ==
              L2RW_ERR_ARG,
          "NULL device");
    CHECK(l2rw_self_check_device(on_check, &s, &c, 1, NULL) == L2RW_ERR_ARG,
          "NULL summary");
}

/* On a usable GPU: the CUDA back end within tolerance (what `l2rw check
 * --device cuda` prints). Not under the sanitizers unless asked, as
 * test_cuda_kernels. */
static void test_cuda_agreement(void)
{
    l2rw_device d = {L2RW_DEVICE_CUDA, 0};
    char desc[512];
    if (l2rw_device_available(&d, desc, sizeof desc) != L2RW_OK) {
        SKIP("no usable GPU: %s", l2rw_last_error());
        return;
    }
    if (getenv("L2RW_SANITIZED") && !getenv("L2RW_CUDA_SANITIZED")) {
        SKIP("sanitized pass (L2RW_CUDA_SANITIZED=1 runs it here)");
        return;
    }
    printf("   %s\n", desc);
    seen s = {0};
    l2rw_check_summary sum;
    CHECK_OK(l2rw_self_check_device(on_check, &s, &d, 0, &sum));
    CHECK(s.n == FULL_CHECKS, "%d checks reported (want %d)", s.n,
          FULL_CHECKS);
    CHECK(sum.failed == 0, "%d failed, first: %s", sum.failed, s.first_fail);
    printf("   largest normwise error %.2e\n", sum.max_rel_err);
}

int main(void)
{
    l2rw_set_threads(2);
    RUN(test_checked_bits);
    RUN(test_tamper_caught);
    RUN(test_refusals);
    RUN(test_cuda_agreement);
    CHECK_DONE("test_check_device");
}
