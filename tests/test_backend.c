/* The back-end table (src/engine/backend.h) and its CPU instance: every
 * member is filled, the kernels are kernels.c's own functions (so the CPU
 * back end computes exactly what the engine computed before the table),
 * the memory calls keep their contract (zeroed, overflow-checked, round
 * trips), and the ops added with the table (2-D copy, eval statistics and
 * running averages of batch norm, the nonzero test) against plain loops,
 * bit for bit where the formula is the same float expression. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "common.h"
#include "falloc.h"
#include "kernels.h"

static const l2rw__backend *const be = &l2rw__backend_cpu;

static void test_table_complete(void)
{
    CHECK(be->name && strcmp(be->name, "cpu") == 0, "name %s",
          be->name ? be->name : "(null)");
#define FILLED(m) CHECK(be->m != NULL, "member %s is NULL", #m)
    FILLED(alloc); FILLED(dealloc); FILLED(upload); FILLED(download);
    FILLED(copy_dev); FILLED(zero); FILLED(sync);
    FILLED(gemm); FILLED(copy); FILLED(add); FILLED(scale_rows);
    FILLED(scale); FILLED(relu_fwd); FILLED(relu_mask); FILLED(mul);
    FILLED(dropout_mask); FILLED(bias_add); FILLED(bias_grad);
    FILLED(conv_ws); FILLED(conv_fwd); FILLED(conv_bwd);
    FILLED(conv_bwd_each); FILLED(maxpool_fwd); FILLED(maxpool_gather);
    FILLED(maxpool_bwd); FILLED(avgpool_fwd); FILLED(avgpool_bwd);
    FILLED(dot); FILLED(bn_stats); FILLED(bn_stats_norm); FILLED(bn_norm);
    FILLED(bn_tangent_train); FILLED(bn_tangent_eval); FILLED(bn_bwd);
    FILLED(copy_2d); FILLED(bn_eval_stats); FILLED(bn_running);
    FILLED(any_nonzero); FILLED(conv_slices);
#undef FILLED
}

/* The CPU table points at kernels.c's functions, not at copies. */
static void test_cpu_is_kernels(void)
{
#define SAME(m) CHECK(be->m == l2rw__##m, "member %s is not l2rw__%s", #m, #m)
    SAME(gemm); SAME(copy); SAME(add); SAME(scale_rows); SAME(scale);
    SAME(relu_fwd); SAME(relu_mask); SAME(mul); SAME(dropout_mask);
    SAME(bias_add); SAME(bias_grad); SAME(conv_ws); SAME(conv_fwd);
    SAME(conv_bwd); SAME(conv_bwd_each); SAME(maxpool_fwd);
    SAME(maxpool_gather); SAME(maxpool_bwd); SAME(avgpool_fwd);
    SAME(avgpool_bwd); SAME(dot); SAME(bn_stats); SAME(bn_stats_norm);
    SAME(bn_norm); SAME(bn_tangent_train); SAME(bn_tangent_eval);
    SAME(bn_bwd);
#undef SAME
    CHECK(be->conv_slices() >= l2rw_get_threads(), "conv_slices %d < %d "
          "threads", be->conv_slices(), l2rw_get_threads());
}

static void test_memory(void)
{
    enum { N = 1000 };
    float *d = be->alloc(N, sizeof(float));
    float *e = be->alloc(N, sizeof(float));
    float host[N], back[N];
    CHECK(d && e, "alloc of %d floats failed", N);
    if (!d || !e) goto done;
    CHECK(((uintptr_t)d & 63) == 0, "alloc not 64-byte aligned");
    int zeros = 1;
    for (int i = 0; i < N; i++) zeros &= d[i] == 0.0f;
    CHECK(zeros, "alloc is not zeroed");
    for (int i = 0; i < N; i++) host[i] = (float)i - 0.5f;
    be->upload(d, host, sizeof host);
    be->copy_dev(e, d, sizeof host);
    memset(back, 0, sizeof back);
    be->download(back, e, sizeof back);
    CHECK(memcmp(back, host, sizeof host) == 0, "upload/copy/download "
          "round trip differs");
    be->zero(e + 10, 20 * sizeof(float));
    be->download(back, e, sizeof back);
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= back[i] == (i >= 10 && i < 30 ? 0.0f : host[i]);
    CHECK(ok, "zero cleared the wrong range");
    CHECK(be->sync() == L2RW_OK, "sync failed");
    void *z = be->alloc(0, sizeof(float));
    CHECK(z != NULL, "alloc of 0 floats gave NULL");
    be->dealloc(z);
    CHECK(be->alloc(SIZE_MAX / 2, sizeof(float)) == NULL,
          "an overflowing alloc did not fail");
    be->dealloc(NULL);
done:
    be->dealloc(d);
    be->dealloc(e);
}

static void test_copy_2d(void)
{
    enum { ROWS = 7, COLS = 5, LDS = 9, LDD = 12 };
    float src[ROWS * LDS], dst[ROWS * LDD];
    for (int i = 0; i < ROWS * LDS; i++) src[i] = (float)i;
    for (int i = 0; i < ROWS * LDD; i++) dst[i] = -1.0f;
    be->copy_2d(dst + 3, LDD, src + 2, LDS, ROWS, COLS);
    int ok = 1;
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < LDD; j++) {
            float want = j >= 3 && j < 3 + COLS
                             ? src[r * LDS + 2 + (j - 3)]
                             : -1.0f;
            ok &= dst[r * LDD + j] == want;
        }
    CHECK(ok, "copy_2d wrote wrong values or outside its rows");
}

static void test_bn_ops(void)
{
    enum { C = 19 };
    float rmean[C], rvar[C], mean[C], var[C], istd[C];
    float rm2[C], rv2[C], bm[C], bv[C];
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 7);
    for (int c = 0; c < C; c++) {
        rmean[c] = (float)l2rw_rng_normal(&rng);
        rvar[c] = (float)(0.1 + l2rw_rng_uniform(&rng));
        bm[c] = (float)l2rw_rng_normal(&rng);
        bv[c] = (float)(0.1 + l2rw_rng_uniform(&rng));
    }
    be->bn_eval_stats(mean, var, istd, rmean, rvar, 1e-5f, C);
    int ok = 1;
    for (int c = 0; c < C; c++)
        ok &= mean[c] == rmean[c] && var[c] == rvar[c] &&
              istd[c] == 1.0f / sqrtf(rvar[c] + 1e-5f);
    CHECK(ok, "bn_eval_stats differs from the running statistics");
    memcpy(rm2, rmean, sizeof rm2);
    memcpy(rv2, rvar, sizeof rv2);
    const float unbias = 50.0f / 49.0f, mom = 0.1f;
    be->bn_running(rm2, rv2, bm, bv, mom, unbias, C);
    ok = 1;
    for (int c = 0; c < C; c++) {
        ok &= rm2[c] == (1.0f - mom) * rmean[c] + mom * bm[c];
        ok &= rv2[c] == (1.0f - mom) * rvar[c] + mom * bv[c] * unbias;
        ok &= rm2[c] != rmean[c]; /* it moved */
    }
    CHECK(ok, "bn_running differs from momentum 0.1 averaging");
}

static void test_any_nonzero(void)
{
    float x[33] = {0};
    CHECK(be->any_nonzero(x, 33) == 0, "zeros reported nonzero");
    x[20] = -0.0f;
    CHECK(be->any_nonzero(x, 33) == 0, "-0 reported nonzero");
    x[32] = 1e-30f;
    CHECK(be->any_nonzero(x, 33) == 1, "a tiny last value missed");
    CHECK(be->any_nonzero(x, 32) == 0, "read past len");
    x[0] = NAN;
    CHECK(be->any_nonzero(x, 1) == 1, "NaN counted as zero");
    CHECK(be->any_nonzero(x, 0) == 0, "empty range reported nonzero");
}

int main(void)
{
    RUN(test_table_complete);
    RUN(test_cpu_is_kernels);
    RUN(test_memory);
    RUN(test_copy_2d);
    RUN(test_bn_ops);
    RUN(test_any_nonzero);
    return CHECK_DONE("test_backend");
}
