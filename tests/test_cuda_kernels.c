/* The CUDA back end against the CPU back end: every kernel of kernels.h,
 * the losses with their u_i, the L2RW weights and the optimizer updates,
 * on the same random inputs (fixed seeds); and each GPU result computed
 * twice must be bit-identical (determinism); and the back-end table
 * l2rw__backend_cuda (its entries, memory calls and extra ops). The probe
 * and table-entry cases run everywhere; the others need a usable GPU and
 * otherwise say why they skip (the probe's reason: no driver, no device,
 * built without CUDA).
 *
 * Tolerances (u = 2^-24, the float unit roundoff):
 *  - exact (bit for bit): element-wise kernels, dropout masks, max
 *    pooling, bias add, average-pool backward, the SGD and AdamW updates,
 *    the weight normalisation: one or two IEEE float operations per
 *    element, the same on both sides (no contraction: --fmad=false on the
 *    device, ISO C11 on the host).
 *  - reductions (bias gradient, average pooling, batch norm): the GPU
 *    repeats the CPU's order (16 float lanes, lanes and rows in double)
 *    and should match bit for bit, but is checked against the float
 *    error bound of the sum, (terms + 4) u sum |terms| (terms = the
 *    number of values summed), and the count of values not bit-identical
 *    is printed.
 *  - GEMM and convolutions: cuBLAS and OpenBLAS sum in different orders;
 *    each side is within (k + 2) u sum_l |a_il b_lj| of the exact result
 *    (k terms), so they differ by at most 2 (k + 4) u times the magnitude
 *    M = the same product on |A|, |B| (computed by the CPU kernel on
 *    absolute values). A transposed or shifted index gives errors of
 *    order M and fails; TF32 (10-bit mantissa) would fail too.
 *  - dot: the CPU sums in 16 float lanes, the GPU in double:
 *    (len/16 + 4) u sum |a_i b_i|; the sum of squares (double on both
 *    sides, another order): 1e-12 relative.
 *  - losses: double on both sides, CUDA's exp/log/pow within 2 ulps of
 *    glibc's: the float results within 2 float ulps of each other plus
 *    1e-12 of the terms' scale (|z| + 1). Error statuses and messages
 *    must be the CPU's. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "cuda_backend.h"
#include "data_internal.h"
#include "kernels.h"
#include "l2rw_reweight.h"
#include "loss.h"

/* CUDA's driver maps memory where AddressSanitizer keeps its shadow gap;
 * ASAN_OPTIONS from the environment still apply on top of these. The
 * driver's own allocations live until exit: not ours to report. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; }
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libcuda.so\nleak:libcudart.so\nleak:libcublas\n"
           "leak:libnvidia\n";
}
#endif

/* ------------------------------------------------------ the probe */

static int looks_like_reason(const char *why)
{
    static const char *const starts[] = {
        "l2rw was built without CUDA", "no CUDA driver (", "no CUDA device",
        "device ", "CUDA runtime error: ", "CUDA device "};
    for (size_t i = 0; i < sizeof starts / sizeof *starts; i++)
        if (!strncmp(why, starts[i], strlen(starts[i]))) return 1;
    return 0;
}

static void test_probe(void)
{
    char why[256] = "";
    const int ok = l2rw__cuda_probe(0, why, sizeof why);
    printf("   probe: %s: %s\n", ok ? "usable" : "not usable", why);
    CHECK(ok == 0 || ok == 1, "probe returned %d", ok);
    CHECK(why[0] && !strchr(why, '\n') && looks_like_reason(why),
          "probe reason '%s'", why);
#ifndef L2RW_HAVE_CUDA
    CHECK(!ok && !strcmp(why, "l2rw was built without CUDA"),
          "without CUDA: %d '%s'", ok, why);
#endif
    /* A device that cannot be there. */
    char why2[256] = "";
    CHECK(l2rw__cuda_probe(999, why2, sizeof why2) == 0, "device 999");
#ifdef L2RW_HAVE_CUDA
    if (ok)
        CHECK(!strncmp(why2, "device 999 not present (", 24), "'%s'", why2);
    else
        CHECK(!strcmp(why, why2), "'%s' then '%s'", why, why2);
#endif
    CHECK(l2rw__cuda_probe(0, NULL, 0) == ok, "probe without a buffer");
    if (ok) return; /* init is exercised by the GPU cases */
    char why3[256] = "";
    l2rw_status s = l2rw__cu_init(0, why3, sizeof why3);
    CHECK(s == L2RW_ERR_UNSUPPORTED, "init without a GPU: %s",
          l2rw_strerror(s));
    CHECK(!strcmp(why3, why), "init's reason '%s', probe's '%s'", why3, why);
    CHECK(!strcmp(l2rw_last_error(), why), "last error '%s'",
          l2rw_last_error());
#ifdef L2RW_HAVE_CUDA
    /* Kernels before init do nothing and the next sync says why. */
    l2rw__cu_relu_fwd(NULL, NULL, 10);
    CHECK(l2rw__cu_sync() == L2RW_ERR_UNSUPPORTED, "sync before init");
    CHECK(strstr(l2rw_last_error(), "before l2rw__cu_init") != NULL, "'%s'",
          l2rw_last_error());
#endif
}

#ifndef L2RW_HAVE_CUDA

static void test_gpu_cases(void) { SKIP("l2rw was built without CUDA"); }

int main(void)
{
    RUN(test_probe);
    RUN(test_gpu_cases);
    return CHECK_DONE("test_cuda_kernels");
}

#else

/* ------------------------------------------------ GPU set-up, helpers */

static const double U = 1.0 / 16777216.0; /* 2^-24 */

static int gpu_state = -1; /* -1 unknown, 0 none, 1 ready */
static char gpu_why[300];

/* 1 when the GPU cases can run; otherwise gpu_why says why. In the
 * sanitized pass the GPU cases run only on request: AddressSanitizer and
 * CUDA's driver share the address space uneasily, and the plain pass runs
 * the same cases. */
static int gpu(void)
{
    if (gpu_state >= 0) return gpu_state;
    gpu_state = 0;
    char why[256];
    if (!l2rw__cuda_probe(0, why, sizeof why)) {
        snprintf(gpu_why, sizeof gpu_why, "no usable GPU: %s", why);
        return 0;
    }
    const char *san = getenv("L2RW_SANITIZED");
    const char *want = getenv("L2RW_CUDA_SANITIZED");
    if (san && *san == '1' && !(want && *want == '1')) {
        snprintf(gpu_why, sizeof gpu_why,
                 "sanitized pass: the plain pass runs the GPU cases "
                 "(L2RW_CUDA_SANITIZED=1 runs them here)");
        return 0;
    }
    l2rw_status s = l2rw__cu_init(0, why, sizeof why);
    CHECK(s == L2RW_OK, "probe says usable, init fails: %s", why);
    if (s != L2RW_OK) {
        snprintf(gpu_why, sizeof gpu_why, "init failed: %s", why);
        return 0;
    }
    printf("   %s\n", why);
    gpu_state = 1;
    return 1;
}

#define NEED_GPU()                                                           \
    do {                                                                     \
        if (!gpu()) {                                                        \
            SKIP("%s", gpu_why);                                             \
            return;                                                          \
        }                                                                    \
    } while (0)

static l2rw_rng rng;

static float *hrand(size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; p && i < n; i++)
        p[i] = lo + (hi - lo) * (float)l2rw_rng_uniform(&rng);
    return p;
}

static float *hzero(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static float *habs(const float *a, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; p && i < n; i++) p[i] = fabsf(a[i]);
    return p;
}

static float *hcopy(const float *a, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (p && n) memcpy(p, a, n * sizeof *p);
    return p;
}

/* A device copy of h (n floats or ints). */
static void *dev(const void *h, size_t bytes)
{
    void *d = NULL;
    CHECK_OK(l2rw__cu_alloc(&d, bytes));
    if (d && h) CHECK_OK(l2rw__cu_upload(d, h, bytes));
    return d;
}

static float *devf(const float *h, size_t n)
{
    return dev(h, n * sizeof(float));
}

/* The device array d (n floats) in a new host array, after a sync. */
static float *back(const float *d, size_t n)
{
    float *h = hzero(n);
    CHECK_OK(l2rw__cu_sync());
    CHECK_OK(l2rw__cu_download(h, d, n * sizeof *h));
    return h;
}

/* gpu == cpu bit for bit. */
static void same_bits(const char *what, const void *g, const void *c,
                      size_t bytes)
{
    const unsigned char *a = g, *b = c;
    size_t i = 0;
    while (i < bytes && a[i] == b[i]) i++;
    CHECK(i == bytes, "%s: differs at byte %zu of %zu", what, i, bytes);
}

static void exact(const char *what, const float *g, const float *c, size_t n)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(g + i, c + i, sizeof *g) && !(isnan(g[i]) && isnan(c[i])))
            if (!bad++) first = i;
    CHECK(bad == 0, "%s: %zu of %zu values differ, first [%zu] %.9g vs %.9g",
          what, bad, n, first, bad ? (double)g[first] : 0.0,
          bad ? (double)c[first] : 0.0);
}

/* |g - c| <= k_tol u mag[i] (+ the smallest normal, for exact zeros);
 * prints how many values are not bit-identical. */
static void close_to(const char *what, const float *g, const float *c,
                     const float *mag, double k_tol, size_t n)
{
    size_t bad = 0, first = 0, differ = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)g[i] - (double)c[i]);
        const double tol = k_tol * U * (double)mag[i] + FLT_MIN;
        if (g[i] != c[i]) differ++;
        if (!(d <= tol) && !bad++) first = i;
        if (mag[i] > 0.0f && d / ((double)mag[i] * U) > worst)
            worst = d / ((double)mag[i] * U);
    }
    printf("   %s: %zu of %zu not bit-identical, worst %.3g u of the "
           "magnitude (bound %.3g)\n", what, differ, n, worst, k_tol);
    CHECK(bad == 0, "%s: %zu of %zu beyond %.3g u, first [%zu] %.9g vs %.9g "
          "(magnitude %.3g)", what, bad, n, k_tol, first,
          bad ? (double)g[first] : 0.0, bad ? (double)c[first] : 0.0,
          bad ? (double)mag[first] : 0.0);
}

/* Runs fn twice on the device and checks the outputs agree bit for bit:
 * out (n floats) is downloaded after each run. */
#define TWICE(what, out, n, call)                                            \
    do {                                                                     \
        call;                                                                \
        float *twice_a = back((out), (n));                                   \
        call;                                                                \
        float *twice_b = back((out), (n));                                   \
        same_bits(what " (two runs)", twice_a, twice_b,                      \
                  (n) * sizeof(float));                                      \
        free(twice_a);                                                       \
        free(twice_b);                                                       \
    } while (0)

/* ------------------------------------------------ the back-end table */

/* Every entry of the CUDA table is filled (a NULL would crash the net at
 * its first call) and the conv workspace entries agree with the
 * documented sizes. Needs no GPU. */
static void test_backend_table(void)
{
    const l2rw__backend *be = &l2rw__backend_cuda;
    CHECK(be->name && !strcmp(be->name, "cuda"), "name");
#define HAS(f) CHECK(be->f != NULL, "table entry " #f " is NULL")
    HAS(alloc); HAS(dealloc); HAS(upload); HAS(download); HAS(copy_dev);
    HAS(zero); HAS(sync); HAS(gemm); HAS(copy); HAS(add); HAS(scale_rows);
    HAS(scale); HAS(relu_fwd); HAS(relu_mask); HAS(mul); HAS(dropout_mask);
    HAS(bias_add); HAS(bias_grad); HAS(conv_ws); HAS(conv_fwd); HAS(conv_bwd);
    HAS(conv_bwd_each); HAS(maxpool_fwd); HAS(maxpool_gather);
    HAS(maxpool_bwd); HAS(avgpool_fwd); HAS(avgpool_bwd); HAS(dot);
    HAS(bn_stats); HAS(bn_stats_norm); HAS(bn_norm); HAS(bn_tangent_train);
    HAS(bn_tangent_eval); HAS(bn_bwd); HAS(copy_2d); HAS(bn_eval_stats);
    HAS(bn_running); HAS(any_nonzero); HAS(conv_slices); HAS(loss_eval);
    HAS(sgd_update); HAS(adamw_update); HAS(sumsq); HAS(mem_free);
    HAS(gather_rows); HAS(crop_flip); HAS(dots_acc);
#undef HAS
    if (!be->conv_slices || !be->conv_ws) return;
    CHECK(be->conv_slices() == L2RW_CU_CONV_CHUNK, "conv_slices %d",
          be->conv_slices());
    l2rw__conv_shape sh = {16, 32, 32, 16, 3, 1, 1, 32, 32, 5};
    const size_t K = 16 * 9, P = 32 * 32;
    CHECK(be->conv_ws(&sh) * sizeof(float) == l2rw__cu_conv_ws_bytes(&sh, 5),
          "conv_ws %zu floats", be->conv_ws(&sh));
    /* Room for 5 examples of the largest call (forward with the fused
     * tangent: [W tW] and 2K P per example). */
    CHECK(be->conv_ws(&sh) >= 16 * 2 * K + 5 * 2 * K * P, "conv_ws %zu",
          be->conv_ws(&sh));
}

/* The table's memory calls and its ops beyond kernels.h. */
static void test_table_ops(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 808);
    const l2rw__backend *be = &l2rw__backend_cuda;
    /* alloc: zeroed, a valid block for size 0, NULL when it overflows. */
    void *z0 = be->alloc(0, sizeof(float));
    CHECK(z0 != NULL, "alloc of 0 bytes");
    be->dealloc(z0);
    CHECK(be->alloc((size_t)-1, 2) == NULL, "overflowing alloc");
    enum { R = 7, LDS = 13, LDD = 11, COLS = 5, N = 300 };
    float *dz = be->alloc(N, sizeof(float)), *h = hrand(N, -1, 1);
    float *zeros = hzero(N), *back_h = hzero(N);
    be->download(back_h, dz, N * sizeof(float));
    exact("alloc zeroed", back_h, zeros, N);
    be->upload(dz, h, N * sizeof(float));
    float *dc = be->alloc(N, sizeof(float));
    be->copy_dev(dc, dz, N * sizeof(float));
    be->download(back_h, dc, N * sizeof(float));
    exact("upload, copy_dev, download", back_h, h, N);
    CHECK(be->any_nonzero(dc, N) == l2rw__any_nonzero(h, N), "any_nonzero");
    be->zero(dc, N * sizeof(float));
    CHECK(be->any_nonzero(dc, N) == 0, "any_nonzero of zeros");
    h[N - 1] = NAN;
    be->upload(dc + N - 1, h + N - 1, sizeof(float));
    CHECK(be->any_nonzero(dc, N) == 1, "any_nonzero: NaN counts");
    be->zero(dc, N * sizeof(float));
    /* copy_2d: rows of 5 floats between strides 13 and 11. */
    float *out = hrand(N, -1, 1);
    be->upload(dc, out, N * sizeof(float));
    l2rw__copy_2d(out, LDD, h, LDS, R, COLS);
    be->copy_2d(dc, LDD, dz, LDS, R, COLS);
    be->download(back_h, dc, N * sizeof(float));
    exact("copy_2d", back_h, out, N);
    /* Batch norm's eval statistics and running averages. */
    enum { C = 37 };
    float *rm = hrand(C, -1, 1), *rv = hrand(C, 0.1f, 2), *m = hrand(C, -1, 1);
    float *v = hrand(C, 0.1f, 2), *st = hzero(3 * C);
    float *Drm = devf(rm, C), *Drv = devf(rv, C), *Dm = devf(m, C);
    float *Dv = devf(v, C), *Dst = devf(NULL, 3 * C);
    l2rw__bn_eval_stats(st, st + C, st + 2 * C, rm, rv, 1e-5f, C);
    be->bn_eval_stats(Dst, Dst + C, Dst + 2 * C, Drm, Drv, 1e-5f, C);
    float *g = back(Dst, 3 * C);
    exact("bn_eval_stats", g, st, 3 * C);
    free(g);
    l2rw__bn_running(rm, rv, m, v, 0.1f, 1.0f + 1.0f / 99.0f, C);
    be->bn_running(Drm, Drv, Dm, Dv, 0.1f, 1.0f + 1.0f / 99.0f, C);
    g = back(Drm, C);
    exact("bn_running mean", g, rm, C);
    free(g);
    g = back(Drv, C);
    exact("bn_running var", g, rv, C);
    free(g);
    CHECK_OK(be->sync());
    be->dealloc(dz), be->dealloc(dc);
    l2rw__cu_free(Drm), l2rw__cu_free(Drv), l2rw__cu_free(Dm);
    l2rw__cu_free(Dv), l2rw__cu_free(Dst);
    free(h), free(zeros), free(back_h), free(out), free(rm), free(rv);
    free(m), free(v), free(st);
}

/* ----------------------------------------------------------------- GEMM */

static void gemm_case(int ta, int tb, int m, int n, int k, float alpha,
                      float beta)
{
    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    const size_t na = (size_t)(ta ? k : m) * lda;
    const size_t nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
    float *a = hrand(na, -1, 1), *b = hrand(nb, -1, 1);
    float *c0 = hrand(nc, -1, 1), *c = hcopy(c0, nc);
    float *aa = habs(a, na), *ab = habs(b, nb), *mag = habs(c0, nc);
    l2rw__gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    l2rw__gemm(ta, tb, m, n, k, fabsf(alpha), aa, lda, ab, ldb, fabsf(beta),
               mag, ldc);
    float *da = devf(a, na), *db = devf(b, nb), *dc = devf(c0, nc);
    l2rw__cu_gemm(ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc);
    float *g = back(dc, nc);
    char what[96];
    snprintf(what, sizeof what, "gemm %c%c %dx%dx%d", ta ? 'T' : 'N',
             tb ? 'T' : 'N', m, n, k);
    if (k > 0)
        close_to(what, g, c, mag, 2.0 * (k + 4), nc);
    else
        exact(what, g, c, nc);
    /* beta = 0: C's old values (set to NaN here) must not matter. */
    float *cn = hcopy(c0, nc);
    for (size_t i = 0; i < nc; i++) cn[i] = NAN;
    CHECK_OK(l2rw__cu_upload(dc, cn, nc * sizeof *cn));
    TWICE("gemm", dc, nc,
          l2rw__cu_gemm(ta, tb, m, n, k, alpha, da, lda, db, ldb, 0.0f, dc,
                        ldc));
    float *g0 = back(dc, nc);
    size_t nan_left = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            nan_left += isnan(g0[(size_t)i * ldc + j]) != 0;
    CHECK(nan_left == 0, "%s beta 0: %zu NaN kept", what, nan_left);
    l2rw__cu_free(da);
    l2rw__cu_free(db);
    l2rw__cu_free(dc);
    free(a), free(b), free(c0), free(c), free(aa), free(ab), free(mag);
    free(g), free(cn), free(g0);
}

static void test_gemm(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 101);
    for (int t = 0; t < 4; t++)
        gemm_case(t & 1, t >> 1, 37, 29, 53, 0.7f, 0.3f);
    gemm_case(0, 0, 256, 192, 320, 1.0f, 0.0f);
    gemm_case(1, 0, 3, 5, 0, 1.0f, 0.5f); /* k = 0: C = beta C */
    CHECK_OK(l2rw__cu_sync());
}

/* --------------------------------------------------------- element-wise */

static void test_elementwise(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 202);
    enum { LEN = 10007, ROWS = 13, COLS = 77 };
    float *a = hrand(LEN, -2, 2), *b = hrand(LEN, -2, 2);
    float *m = hrand(LEN, 0, 1), *c = hrand(LEN, -1, 1);
    a[5] = NAN; /* relu lets NaN through on both */
    float *da = devf(a, LEN), *db = devf(b, LEN), *dm = devf(m, LEN);
    float *dc = devf(c, LEN);
    float *out = hcopy(c, LEN);
    float *g;
    /* Each kernel on (dc as output, starting from c), against the CPU. */
#define ELEM(what, cpu_call, gpu_call)                                       \
    do {                                                                     \
        memcpy(out, c, LEN * sizeof *out);                                   \
        cpu_call;                                                            \
        CHECK_OK(l2rw__cu_upload(dc, c, LEN * sizeof *c));                   \
        gpu_call;                                                            \
        g = back(dc, LEN);                                                   \
        exact(what, g, out, LEN);                                            \
        free(g);                                                             \
    } while (0)
    ELEM("copy", l2rw__copy(out, b, LEN, 0), l2rw__cu_copy(dc, db, LEN, 0));
    ELEM("copy acc", l2rw__copy(out, b, LEN, 1),
         l2rw__cu_copy(dc, db, LEN, 1));
    ELEM("add", l2rw__add(out, a, b, LEN), l2rw__cu_add(dc, da, db, LEN));
    ELEM("scale", l2rw__scale(out, b, 0.37f, LEN, 0),
         l2rw__cu_scale(dc, db, 0.37f, LEN, 0));
    ELEM("scale acc", l2rw__scale(out, b, -1.3f, LEN, 1),
         l2rw__cu_scale(dc, db, -1.3f, LEN, 1));
    ELEM("scale_rows", l2rw__scale_rows(out, b, m, ROWS, COLS),
         l2rw__cu_scale_rows(dc, db, dm, ROWS, COLS));
    ELEM("relu", l2rw__relu_fwd(out, a, LEN), l2rw__cu_relu_fwd(dc, da, LEN));
    ELEM("relu_mask", l2rw__relu_mask(out, b, a, LEN, 0),
         l2rw__cu_relu_mask(dc, db, da, LEN, 0));
    ELEM("relu_mask acc", l2rw__relu_mask(out, b, a, LEN, 1),
         l2rw__cu_relu_mask(dc, db, da, LEN, 1));
    ELEM("mul", l2rw__mul(out, b, m, LEN, 0),
         l2rw__cu_mul(dc, db, dm, LEN, 0));
    ELEM("mul acc", l2rw__mul(out, b, m, LEN, 1),
         l2rw__cu_mul(dc, db, dm, LEN, 1));
    ELEM("dropout_mask",
         l2rw__dropout_mask(out, 0x1234abcdull, 7, 97, 103, 0.3f),
         l2rw__cu_dropout_mask(dc, 0x1234abcdull, 7, 97, 103, 0.3f));
    ELEM("bias_add", l2rw__bias_add(out, m, 11, 7, 129),
         l2rw__cu_bias_add(dc, dm, 11, 7, 129));
#undef ELEM
    TWICE("dropout_mask", dc, LEN,
          l2rw__cu_dropout_mask(dc, 99, 3, 50, 200, 0.5f));

    /* Bias gradient: a sum of n P terms per channel. */
    enum { N = 9, C = 5, P = 37 };
    float *db0 = hrand(C, -1, 1), *dbc = hcopy(db0, C);
    float *mag = habs(db0, C), *ab = habs(b, (size_t)N * C * P);
    float *ddb = devf(db0, C);
    for (int acc = 0; acc <= 1; acc++) {
        memcpy(dbc, db0, sizeof(float) * C);
        for (int i = 0; i < C; i++) mag[i] = fabsf(db0[i]);
        l2rw__bias_grad(dbc, b, N, C, P, acc);
        l2rw__bias_grad(mag, ab, N, C, P, acc);
        CHECK_OK(l2rw__cu_upload(ddb, db0, sizeof(float) * C));
        l2rw__cu_bias_grad(ddb, db, N, C, P, acc);
        g = back(ddb, C);
        close_to(acc ? "bias_grad acc" : "bias_grad", g, dbc, mag,
                 N * P + 4, C);
        free(g);
    }
    TWICE("bias_grad", ddb, C, l2rw__cu_bias_grad(ddb, db, N, C, P, 0));

    /* Dot products. */
    double cd = l2rw__dot(a + 6, b, LEN - 6);
    double gd = l2rw__cu_dot(da + 6, db, LEN - 6);
    double gd2 = l2rw__cu_dot(da + 6, db, LEN - 6);
    double sab = 0.0;
    for (size_t i = 0; i < LEN - 6; i++) sab += fabs((double)a[6 + i] * b[i]);
    CHECK(fabs(gd - cd) <= ((LEN - 6) / 16.0 + 4) * U * sab,
          "dot %.17g vs %.17g", gd, cd);
    CHECK(memcmp(&gd, &gd2, sizeof gd) == 0, "dot: two runs differ");
    double cs = 0.0;
    for (size_t i = 0; i < LEN; i++) cs += (double)b[i] * (double)b[i];
    double gs = l2rw__cu_sumsq(db, LEN);
    CHECK(fabs(gs - cs) <= 1e-12 * cs, "sumsq %.17g vs %.17g", gs, cs);
    CHECK(l2rw__cu_dot(da, db, 0) == 0.0, "empty dot");
    /* Row dots (the per-example scores): rows of a against b (ldb 0)
     * and against rows of b, added to what u holds; the dot's bound. */
    enum { DROWS = 5, RLEN = 203 };
    for (int shared = 0; shared < 2; shared++) {
        double gu[DROWS], cu[DROWS];
        for (int i = 0; i < DROWS; i++) gu[i] = cu[i] = 0.25 * i;
        size_t ldb = shared ? 0 : RLEN;
        l2rw__dots_acc(cu, a, RLEN, b, ldb, DROWS, RLEN);
        l2rw__cu_dots_acc(gu, da, RLEN, db, ldb, DROWS, RLEN);
        for (int i = 0; i < DROWS; i++) {
            double s = 0.0;
            for (size_t k = 0; k < RLEN; k++)
                s += fabs((double)a[i * RLEN + k] * b[i * ldb + k]);
            CHECK(fabs(gu[i] - cu[i]) <= (RLEN / 16.0 + 4) * U * s,
                  "dots_acc (ldb %zu) row %d: %.17g vs %.17g", ldb, i,
                  gu[i], cu[i]);
        }
    }

    l2rw__cu_free(da), l2rw__cu_free(db), l2rw__cu_free(dm);
    l2rw__cu_free(dc), l2rw__cu_free(ddb);
    free(a), free(b), free(m), free(c), free(out), free(db0), free(dbc);
    free(mag), free(ab);
    CHECK_OK(l2rw__cu_sync());
}

/* -------------------------------------------------------------- pooling */

static void maxpool_case(int n, int c, int h, int w, int k, int s)
{
    const int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    const size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * oh * ow;
    const size_t P = (size_t)h * w, Q = (size_t)oh * ow;
    float *x = hrand(nx, 0, 1);
    for (size_t i = 0; i < nx; i++) /* four levels: many ties */
        x[i] = floorf(x[i] * 4.0f) / 4.0f;
    float *y = hzero(ny), *tx = hrand(nx, -1, 1), *ty = hzero(ny);
    float *dy = hrand(ny, -1, 1), *dx0 = hrand(nx, -1, 1), *dx = hzero(nx);
    int32_t *idx = calloc(ny, sizeof *idx), *gidx = calloc(ny, sizeof *gidx);
    float *dxd = devf(x, nx), *dyd = devf(NULL, ny), *dtx = devf(tx, nx);
    float *dty = devf(NULL, ny), *ddy = devf(dy, ny), *ddx = devf(dx0, nx);
    int32_t *didx = dev(NULL, ny * sizeof *didx);
    char what[96];
    snprintf(what, sizeof what, "maxpool %dx%d/%d on %dx%d", k, k, s, h, w);
    l2rw__maxpool_fwd(y, idx, x, n, c, h, w, k, s, oh, ow);
    l2rw__cu_maxpool_fwd(dyd, didx, dxd, n, c, h, w, k, s, oh, ow);
    float *g = back(dyd, ny);
    exact(what, g, y, ny);
    CHECK_OK(l2rw__cu_download(gidx, didx, ny * sizeof *gidx));
    same_bits("maxpool idx", gidx, idx, ny * sizeof *idx);
    free(g);
    l2rw__maxpool_gather(ty, tx, idx, n * c, P, Q);
    l2rw__cu_maxpool_gather(dty, dtx, didx, n * c, P, Q);
    g = back(dty, ny);
    exact("maxpool gather", g, ty, ny);
    free(g);
    for (int acc = 0; acc <= 1; acc++) {
        memcpy(dx, dx0, nx * sizeof *dx);
        l2rw__maxpool_bwd(dx, dy, idx, n * c, P, Q, acc);
        CHECK_OK(l2rw__cu_upload(ddx, dx0, nx * sizeof *dx0));
        l2rw__cu_maxpool_bwd(ddx, ddy, didx, n * c, P, Q, acc);
        g = back(ddx, nx);
        exact(acc ? "maxpool bwd acc" : "maxpool bwd", g, dx, nx);
        free(g);
    }
    TWICE("maxpool bwd", ddx, nx,
          l2rw__cu_maxpool_bwd(ddx, ddy, didx, n * c, P, Q, 0));
    l2rw__cu_free(dxd), l2rw__cu_free(dyd), l2rw__cu_free(dtx);
    l2rw__cu_free(dty), l2rw__cu_free(ddy), l2rw__cu_free(ddx);
    l2rw__cu_free(didx);
    free(x), free(y), free(tx), free(ty), free(dy), free(dx0), free(dx);
    free(idx), free(gidx);
}

static void test_pooling(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 303);
    maxpool_case(3, 4, 8, 8, 2, 2);   /* the CPU's 2x2 fast path */
    maxpool_case(2, 3, 9, 9, 3, 2);   /* overlapping windows */
    maxpool_case(2, 2, 6, 7, 3, 1);
    maxpool_case(2, 2, 7, 9, 2, 2);   /* odd sizes: last row/col unused */
    /* Global average pooling: sums of P terms. */
    enum { NC = 300, PP = 67 };
    float *x = hrand((size_t)NC * PP, -1, 1), *y = hzero(NC);
    float *ax = habs(x, (size_t)NC * PP), *mag = hzero(NC);
    float *dx0 = hrand((size_t)NC * PP, -1, 1), *dx = hzero((size_t)NC * PP);
    float *dy = hrand(NC, -1, 1);
    float *dxd = devf(x, (size_t)NC * PP), *dyd = devf(NULL, NC);
    float *ddx = devf(dx0, (size_t)NC * PP), *ddy = devf(dy, NC);
    l2rw__avgpool_fwd(y, x, NC, PP);
    l2rw__avgpool_fwd(mag, ax, NC, PP);
    TWICE("avgpool", dyd, NC, l2rw__cu_avgpool_fwd(dyd, dxd, NC, PP));
    float *g = back(dyd, NC);
    close_to("avgpool", g, y, mag, PP + 4, NC);
    free(g);
    for (int acc = 0; acc <= 1; acc++) {
        memcpy(dx, dx0, sizeof(float) * NC * PP);
        l2rw__avgpool_bwd(dx, dy, NC, PP, acc);
        CHECK_OK(l2rw__cu_upload(ddx, dx0, sizeof(float) * NC * PP));
        l2rw__cu_avgpool_bwd(ddx, ddy, NC, PP, acc);
        g = back(ddx, (size_t)NC * PP);
        exact(acc ? "avgpool bwd acc" : "avgpool bwd", g, dx,
              (size_t)NC * PP);
        free(g);
    }
    l2rw__cu_free(dxd), l2rw__cu_free(dyd), l2rw__cu_free(ddx);
    l2rw__cu_free(ddy);
    free(x), free(y), free(ax), free(mag), free(dx0), free(dx), free(dy);
    CHECK_OK(l2rw__cu_sync());
}

/* --------------------------------------------------------- convolution */

typedef struct {
    l2rw__conv_shape s;
    int n;
    size_t nx, ny, nw, K, P;
} conv_case;

static conv_case conv_make(int n, int ic, int ih, int iw, int oc, int k,
                           int stride, int pad)
{
    conv_case c;
    memset(&c, 0, sizeof c);
    c.s.ic = ic, c.s.ih = ih, c.s.iw = iw, c.s.oc = oc, c.s.k = k;
    c.s.stride = stride, c.s.pad = pad;
    c.s.oh = (ih + 2 * pad - k) / stride + 1;
    c.s.ow = (iw + 2 * pad - k) / stride + 1;
    c.s.max_threads = 3;
    c.n = n;
    c.K = (size_t)ic * k * k;
    c.P = (size_t)c.s.oh * c.s.ow;
    c.nx = (size_t)n * ic * ih * iw;
    c.ny = (size_t)n * oc * c.P;
    c.nw = (size_t)oc * c.K;
    return c;
}

/* Host and device copies of the convolution's inputs. */
typedef struct {
    float *x, *tx, *W, *b, *tW, *tb, *dy, *dx0;
    float *ax, *atx, *aW, *ab, *atW, *atb, *ady, *adx0; /* |inputs| */
    float *dx_, *dtx, *dW, *db, *dtW, *dtb, *ddy, *ddx; /* device */
    float *ws;                                          /* CPU workspace */
} conv_data;

static void conv_data_make(conv_data *d, const conv_case *c)
{
    d->x = hrand(c->nx, -1, 1), d->tx = hrand(c->nx, -1, 1);
    d->W = hrand(c->nw, -1, 1), d->b = hrand(c->s.oc, -1, 1);
    d->tW = hrand(c->nw, -1, 1), d->tb = hrand(c->s.oc, -1, 1);
    d->dy = hrand(c->ny, -1, 1), d->dx0 = hrand(c->nx, -1, 1);
    d->ax = habs(d->x, c->nx), d->atx = habs(d->tx, c->nx);
    d->aW = habs(d->W, c->nw), d->ab = habs(d->b, c->s.oc);
    d->atW = habs(d->tW, c->nw), d->atb = habs(d->tb, c->s.oc);
    d->ady = habs(d->dy, c->ny), d->adx0 = habs(d->dx0, c->nx);
    d->dx_ = devf(d->x, c->nx), d->dtx = devf(d->tx, c->nx);
    d->dW = devf(d->W, c->nw), d->db = devf(d->b, c->s.oc);
    d->dtW = devf(d->tW, c->nw), d->dtb = devf(d->tb, c->s.oc);
    d->ddy = devf(d->dy, c->ny), d->ddx = devf(d->dx0, c->nx);
    d->ws = hzero(l2rw__conv_ws(&c->s));
}

static void conv_data_free(conv_data *d)
{
    float *h[] = {d->x, d->tx, d->W, d->b, d->tW, d->tb, d->dy, d->dx0,
                  d->ax, d->atx, d->aW, d->ab, d->atW, d->atb, d->ady,
                  d->adx0, d->ws};
    float *g[] = {d->dx_, d->dtx, d->dW, d->db, d->dtW, d->dtb, d->ddy,
                  d->ddx};
    for (size_t i = 0; i < sizeof h / sizeof *h; i++) free(h[i]);
    for (size_t i = 0; i < sizeof g / sizeof *g; i++) l2rw__cu_free(g[i]);
}

/* Forward: y (+ b) and the tangent in its three forms. */
static void conv_forward(const conv_case *c, const conv_data *d,
                         const char *name, float *gws)
{
    const size_t ny = c->ny;
    float *y = hzero(ny), *ty = hzero(ny), *my = hzero(ny), *mty = hzero(ny);
    float *gy = devf(NULL, ny), *gty = devf(NULL, ny);
    char what[128];
    for (int form = 0; form < 3; form++) {
        /* 0: y + b only; 1: fused tangent with tx; 2: tx NULL, no biases */
        const int tan = form > 0, withx = form == 1, bias = form < 2;
        l2rw__conv_fwd(&c->s, c->n, y, tan ? ty : NULL, d->x,
                       withx ? d->tx : NULL, d->W, bias ? d->b : NULL, d->tW,
                       bias ? d->tb : NULL, d->ws);
        l2rw__conv_fwd(&c->s, c->n, my, tan ? mty : NULL, d->ax,
                       withx ? d->atx : NULL, d->aW, bias ? d->ab : NULL,
                       d->atW, bias ? d->atb : NULL, d->ws);
        l2rw__cu_conv_fwd(&c->s, c->n, gy, tan ? gty : NULL, d->dx_,
                          withx ? d->dtx : NULL, d->dW, bias ? d->db : NULL,
                          d->dtW, bias ? d->dtb : NULL, gws);
        float *g = back(gy, ny);
        snprintf(what, sizeof what, "%s forward y (form %d)", name, form);
        close_to(what, g, y, my, 2.0 * (c->K + 1 + 4), ny);
        free(g);
        if (!tan) continue;
        g = back(gty, ny);
        snprintf(what, sizeof what, "%s tangent (form %d)", name, form);
        close_to(what, g, ty, mty, 2.0 * (2 * c->K + 1 + 4), ny);
        free(g);
    }
    TWICE("conv tangent", gty, ny,
          l2rw__cu_conv_fwd(&c->s, c->n, gy, gty, d->dx_, d->dtx, d->dW,
                            d->db, d->dtW, d->dtb, gws));
    l2rw__cu_free(gy), l2rw__cu_free(gty);
    free(y), free(ty), free(my), free(mty);
}

/* Backward: dW, db, dx (overwritten and accumulated). */
static void conv_backward(const conv_case *c, const conv_data *d,
                          const char *name, float *gws)
{
    const size_t nx = c->nx, nw = c->nw, oc = (size_t)c->s.oc;
    float *dW = hzero(nw), *db = hzero(oc), *dx = hzero(nx);
    float *mW = hzero(nw), *mb = hzero(oc), *mx = hzero(nx);
    float *gW = devf(NULL, nw), *gb = devf(NULL, oc), *gx = devf(NULL, nx);
    char what[128];
    for (int acc = 0; acc <= 1; acc++) {
        memcpy(dx, d->dx0, nx * sizeof *dx);
        memcpy(mx, d->adx0, nx * sizeof *mx);
        l2rw__conv_bwd(&c->s, c->n, dW, db, dx, d->dy, d->x, d->W, acc,
                       d->ws);
        l2rw__conv_bwd(&c->s, c->n, mW, mb, mx, d->ady, d->ax, d->aW, acc,
                       d->ws);
        CHECK_OK(l2rw__cu_upload(gx, d->dx0, nx * sizeof *dx));
        l2rw__cu_conv_bwd(&c->s, c->n, gW, gb, gx, d->ddy, d->dx_, d->dW,
                          acc, gws);
        float *g = back(gW, nw);
        snprintf(what, sizeof what, "%s dW", name);
        close_to(what, g, dW, mW, 2.0 * (c->n * c->P + 4), nw);
        free(g);
        g = back(gb, oc);
        snprintf(what, sizeof what, "%s db", name);
        close_to(what, g, db, mb, 2.0 * (c->n * c->P + 4), oc);
        free(g);
        g = back(gx, nx);
        snprintf(what, sizeof what, "%s dx%s", name, acc ? " acc" : "");
        close_to(what, g, dx, mx, 2.0 * (oc * c->s.k * c->s.k + 1 + 4), nx);
        free(g);
    }
    TWICE("conv dW", gW, nw,
          l2rw__cu_conv_bwd(&c->s, c->n, gW, gb, gx, d->ddy, d->dx_, d->dW,
                            0, gws));
    /* No dx, no db: only dW. */
    l2rw__cu_conv_bwd(&c->s, c->n, gW, NULL, NULL, d->ddy, d->dx_, d->dW, 0,
                      gws);
    float *g = back(gW, nw);
    snprintf(what, sizeof what, "%s dW alone", name);
    close_to(what, g, dW, mW, 2.0 * (c->n * c->P + 4), nw);
    free(g);
    l2rw__cu_free(gW), l2rw__cu_free(gb), l2rw__cu_free(gx);
    free(dW), free(db), free(dx), free(mW), free(mb), free(mx);
}

/* Per-example weight gradients (+ bias sums) and dx. */
static void conv_each(const conv_case *c, const conv_data *d,
                      const char *name, float *gws)
{
    const size_t nx = c->nx, oc = (size_t)c->s.oc;
    const size_t ldg = c->nw + oc + 5, ng = (size_t)c->n * ldg;
    float *G = hzero(ng), *mG = hzero(ng), *dx = hzero(nx), *mx = hzero(nx);
    float *gG = devf(NULL, ng), *gx = devf(NULL, nx);
    char what[128];
    l2rw__conv_bwd_each(&c->s, c->n, G, ldg, 1, dx, d->dy, d->x, d->W, 0,
                        d->ws);
    l2rw__conv_bwd_each(&c->s, c->n, mG, ldg, 1, mx, d->ady, d->ax, d->aW, 0,
                        d->ws);
    l2rw__cu_conv_bwd_each(&c->s, c->n, gG, ldg, 1, gx, d->ddy, d->dx_,
                           d->dW, 0, gws);
    float *g = back(gG, ng);
    snprintf(what, sizeof what, "%s per-example G", name);
    close_to(what, g, G, mG, 2.0 * (c->P + 4), ng); /* the gaps stay 0 */
    free(g);
    g = back(gx, nx);
    snprintf(what, sizeof what, "%s per-example dx", name);
    close_to(what, g, dx, mx, 2.0 * (oc * c->s.k * c->s.k + 4), nx);
    free(g);
    TWICE("conv per-example G", gG, ng,
          l2rw__cu_conv_bwd_each(&c->s, c->n, gG, ldg, 1, gx, d->ddy,
                                 d->dx_, d->dW, 0, gws));
    l2rw__cu_free(gG), l2rw__cu_free(gx);
    free(G), free(mG), free(dx), free(mx);
}

/* With net_ws, through a device workspace of l2rw__cu_conv_ws floats
 * (chunks of max_threads = 3 examples, as a net passes it); otherwise
 * through the context's. */
static void conv_run(conv_case c, const char *name, int net_ws)
{
    conv_data d;
    char label[96];
    snprintf(label, sizeof label, "%s%s", name, net_ws ? " (net ws)" : "");
    conv_data_make(&d, &c);
    float *gws = net_ws ? devf(NULL, l2rw__cu_conv_ws(&c.s)) : NULL;
    conv_forward(&c, &d, label, gws);
    conv_backward(&c, &d, label, gws);
    conv_each(&c, &d, label, gws);
    l2rw__cu_free(gws);
    conv_data_free(&d);
}

static void test_conv(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 404);
    for (int net_ws = 0; net_ws <= 1; net_ws++) {
        conv_run(conv_make(4, 3, 9, 9, 5, 3, 1, 1), "3x3 same", net_ws);
        conv_run(conv_make(3, 4, 8, 8, 6, 3, 2, 1), "3x3/2 pad 1", net_ws);
        conv_run(conv_make(2, 2, 7, 7, 3, 5, 1, 0), "5x5 valid", net_ws);
        conv_run(conv_make(3, 4, 8, 8, 8, 1, 2, 0), "1x1/2", net_ws);
    }
    /* A ResNet-sized layer bigger than the initial workspace: chunks of a
     * few examples; then the whole batch at once after a reserve. */
    conv_case big = conv_make(32, 16, 32, 32, 16, 3, 1, 1);
    const size_t need = l2rw__cu_conv_ws_bytes(&big.s, big.n);
    printf("   workspace %zu bytes, the whole batch needs %zu\n",
           l2rw__cu_workspace_bytes(), need);
    CHECK(need > l2rw__cu_workspace_bytes(), "the big case fits already");
    conv_run(big, "16x32x32 chunked", 0);
    conv_run(big, "16x32x32", 1);
    CHECK_OK(l2rw__cu_reserve(need));
    CHECK(l2rw__cu_workspace_bytes() >= need, "reserve");
    conv_run(big, "16x32x32 whole batch", 0);
    CHECK_OK(l2rw__cu_sync());
}

/* ---------------------------------------------------------- batch norm */

static void bn_case(int n, int C, size_t P)
{
    const size_t len = (size_t)n * C * P;
    const float eps = 1e-5f;
    float *x = hrand(len, -2, 3), *g = hrand(C, 0.5f, 1.5f);
    float *b = hrand(C, -1, 1), *tx = hrand(len, -1, 1);
    float *tg = hrand(C, -1, 1), *tb = hrand(C, -1, 1);
    float *dy = hrand(len, -1, 1), *dx0 = hrand(len, -1, 1);
    float *y = hzero(len), *xh = hzero(len), *mean = hzero(C), *var = hzero(C);
    float *istd = hzero(C), *ty = hzero(len), *dx = hzero(len);
    float *dg = hzero(C), *dbb = hzero(C);
    float *Dx = devf(x, len), *Dg = devf(g, C), *Db = devf(b, C);
    float *Dtx = devf(tx, len), *Dtg = devf(tg, C), *Dtb = devf(tb, C);
    float *Ddy = devf(dy, len), *Ddx = devf(dx0, len);
    float *Dy = devf(NULL, len), *Dxh = devf(NULL, len);
    float *Dmean = devf(NULL, C), *Dvar = devf(NULL, C);
    float *Distd = devf(NULL, C);
    float *Dty = devf(NULL, len), *Ddg = devf(NULL, C), *Ddb = devf(NULL, C);
    const double terms = (double)n * P + 4;
    /* Magnitudes: of the mean, sum |x| / m; of the variance, itself (the
     * mean's rounding enters squared); of an output, the sizes of its
     * terms. */
    float *mmean = hzero(C), *mvar = hzero(C), *mis = hzero(C);
    float *mout = hzero(len), *mC = hzero(C);
    l2rw__bn_stats_norm(y, xh, mean, var, istd, x, g, b, eps, n, C, P);
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            for (size_t p = 0; p < P; p++)
                s += fabs(x[((size_t)i * C + c) * P + p]);
        mmean[c] = (float)(s / ((double)n * P));
        mvar[c] = var[c];
        mis[c] = istd[c];
    }
    char what[96];
#define BN_CMP(label, dptr, host, mag, k, count)                             \
    do {                                                                     \
        float *bn_g = back((dptr), (count));                                 \
        snprintf(what, sizeof what, "bn %dx%dx%zu %s", n, C, P, (label));    \
        close_to(what, bn_g, (host), (mag), (k), (count));                   \
        free(bn_g);                                                          \
    } while (0)
    /* Outputs' magnitude: |g| (|x| + |mean|) istd + |b| (and the same
     * shape for every normalised output). */
    for (size_t t = 0; t < len; t++) {
        const int c = (int)(t / P % (size_t)C);
        mout[t] =
            fabsf(g[c]) * (fabsf(x[t]) + mmean[c]) * istd[c] + fabsf(b[c]);
    }
    l2rw__cu_bn_stats(Dmean, Dvar, Dx, n, C, P);
    BN_CMP("stats mean", Dmean, mean, mmean, terms, C);
    BN_CMP("stats var", Dvar, var, mvar, terms, C);
    TWICE("bn stats", Dvar, C, l2rw__cu_bn_stats(Dmean, Dvar, Dx, n, C, P));
    l2rw__cu_bn_stats_norm(Dy, Dxh, Dmean, Dvar, Distd, Dx, Dg, Db, eps, n, C,
                           P);
    BN_CMP("stats_norm istd", Distd, istd, mis, terms, C);
    BN_CMP("stats_norm y", Dy, y, mout, terms, len);
    TWICE("bn stats_norm", Dy, len,
          l2rw__cu_bn_stats_norm(Dy, Dxh, Dmean, Dvar, Distd, Dx, Dg, Db,
                                 eps, n, C, P));
    /* From here on the GPU works on the CPU's statistics and xhat, so
     * each kernel is compared on its own. */
    float *Dxh_c = devf(xh, len), *Distd_c = devf(istd, C);
    float *Dmean_c = devf(mean, C);
    l2rw__bn_norm(y, NULL, x, mean, istd, g, b, n, C, P);
    l2rw__cu_bn_norm(Dy, NULL, Dx, Dmean_c, Distd_c, Dg, Db, n, C, P);
    BN_CMP("norm (no xhat)", Dy, y, mout, 4, len);
    l2rw__bn_norm(y, xh, x, mean, istd, g, b, n, C, P);
    l2rw__cu_bn_norm(Dy, Dxh, Dx, Dmean_c, Distd_c, Dg, Db, n, C, P);
    BN_CMP("norm", Dy, y, mout, 4, len);
    BN_CMP("norm xhat", Dxh, xh, mout, 4, len);
    /* Tangents: |ty| <= |tg| |xh| + |g| istd (|tx| + mean|tx| + |xh|
     * mean|xh tx|) + |tb|, bounded with mean|tx| <= 1, |tx| <= 1. */
    for (size_t t = 0; t < len; t++) {
        const int c = (int)(t / P % (size_t)C);
        mout[t] = fabsf(tg[c]) * fabsf(xh[t]) +
                  fabsf(g[c]) * istd[c] * (2.0f + fabsf(xh[t]) * 4.0f) +
                  fabsf(tb[c]);
    }
    for (int form = 0; form < 3; form++) {
        const float *htx = form == 1 ? NULL : tx;
        const float *Htx = form == 1 ? NULL : Dtx;
        const float *htg = form == 2 ? NULL : tg;
        const float *Htg = form == 2 ? NULL : Dtg;
        const float *htb = form == 2 ? NULL : tb;
        const float *Htb = form == 2 ? NULL : Dtb;
        static const char *const names[] = {"tangent train",
                                            "tangent train tx=0",
                                            "tangent train tg=tb=0"};
        l2rw__bn_tangent_train(ty, htx, xh, istd, g, htg, htb, n, C, P);
        l2rw__cu_bn_tangent_train(Dty, Htx, Dxh_c, Distd_c, Dg, Htg, Htb, n,
                                  C, P);
        BN_CMP(names[form], Dty, ty, mout, terms, len);
        l2rw__bn_tangent_eval(ty, htx, xh, istd, g, htg, htb, n, C, P);
        l2rw__cu_bn_tangent_eval(Dty, Htx, Dxh_c, Distd_c, Dg, Htg, Htb, n,
                                 C, P);
        BN_CMP("tangent eval", Dty, ty, mout, 4, len);
    }
    TWICE("bn tangent train", Dty, len,
          l2rw__cu_bn_tangent_train(Dty, Dtx, Dxh_c, Distd_c, Dg, Dtg, Dtb,
                                    n, C, P));
    /* Backward: dg, db sums of n P terms; dx as the tangent's shape. */
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            for (size_t p = 0; p < P; p++) {
                const size_t o = ((size_t)i * C + c) * P + p;
                s += fabs(dy[o]) * (1.0 + fabs(xh[o]));
            }
        mC[c] = (float)s;
    }
    for (size_t t = 0; t < len; t++) {
        const int c = (int)(t / P % (size_t)C);
        mout[t] = fabsf(dx0[t]) +
                  fabsf(g[c]) * istd[c] * (2.0f + fabsf(xh[t]) * 4.0f);
    }
    for (int mode = 0; mode < 4; mode++) {
        const int train = mode & 1, acc = mode >> 1;
        memcpy(dx, dx0, len * sizeof *dx);
        CHECK_OK(l2rw__cu_upload(Ddx, dx0, len * sizeof *dx0));
        l2rw__bn_bwd(dx, dg, dbb, dy, xh, istd, g, n, C, P, train, acc);
        l2rw__cu_bn_bwd(Ddx, Ddg, Ddb, Ddy, Dxh_c, Distd_c, Dg, n, C, P,
                        train, acc);
        BN_CMP("bwd dg", Ddg, dg, mC, terms, C);
        BN_CMP("bwd db", Ddb, dbb, mC, terms, C);
        BN_CMP(train ? (acc ? "bwd dx train acc" : "bwd dx train")
                     : (acc ? "bwd dx eval acc" : "bwd dx eval"),
               Ddx, dx, mout, terms, len);
    }
    l2rw__cu_bn_bwd(NULL, Ddg, Ddb, Ddy, Dxh_c, Distd_c, Dg, n, C, P, 1, 0);
    BN_CMP("bwd dg (no dx)", Ddg, dg, mC, terms, C);
#undef BN_CMP
    float *dptrs[] = {Dx, Dg, Db, Dtx, Dtg, Dtb, Ddy, Ddx, Dy, Dxh, Dmean,
                      Dvar, Distd, Dty, Ddg, Ddb, Dxh_c, Distd_c, Dmean_c};
    for (size_t i = 0; i < sizeof dptrs / sizeof *dptrs; i++)
        l2rw__cu_free(dptrs[i]);
    float *hptrs[] = {x, g, b, tx, tg, tb, dy, dx0, y, xh, mean, var,
                      istd, ty, dx, dg, dbb, mmean, mvar, mis, mout, mC};
    for (size_t i = 0; i < sizeof hptrs / sizeof *hptrs; i++) free(hptrs[i]);
}

static void test_batchnorm(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 505);
    bn_case(5, 3, 37);  /* rows not a multiple of the 16 lanes */
    bn_case(20, 4, 64); /* more rows than one tile of 16 */
    bn_case(33, 6, 1);  /* a dense layer's batch norm */
    CHECK_OK(l2rw__cu_sync());
}

/* ------------------------------------------------------ losses, weights */

static void loss_kind_case(l2rw_loss cfg, int n, int k)
{
    const size_t nz = (size_t)n * k;
    float *z = hrand(nz, -4, 4), *zd = hrand(nz, -1, 1);
    int32_t *y = malloc((size_t)n * sizeof *y);
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)l2rw_rng_below(&rng, (uint64_t)k);
    float *loss = hzero(n), *dz = hzero(nz), *u = hzero(n);
    float *Dz = devf(z, nz), *Dzd = devf(zd, nz);
    int32_t *Dy = dev(y, (size_t)n * sizeof *y);
    float *Dl = devf(NULL, n), *Ddz = devf(NULL, nz), *Du = devf(NULL, n);
    CHECK_OK(l2rw__loss_eval(&cfg, z, zd, y, n, k, loss, dz, u));
    CHECK_OK(l2rw__cu_loss_eval(&cfg, Dz, Dzd, Dy, n, k, Dl, Ddz, Du));
    /* 2 float ulps of the value plus 1e-12 of the terms' scale. */
    float *ml = hzero(n), *mdz = hzero(nz), *mu = hzero(n);
    for (int i = 0; i < n; i++) {
        ml[i] = fabsf(loss[i]) + 1e-12f * 5.0f / (float)U;
        mu[i] = fabsf(u[i]) + 1e-12f * 5.0f / (float)U;
    }
    for (size_t t = 0; t < nz; t++)
        mdz[t] = fabsf(dz[t]) + 1e-12f * 5.0f / (float)U;
    char what[64];
    snprintf(what, sizeof what, "loss kind %d", (int)cfg.kind);
    float *g = back(Dl, n);
    close_to(what, g, loss, ml, 4, n);
    free(g);
    g = back(Ddz, nz);
    close_to("  dz", g, dz, mdz, 4, nz);
    free(g);
    g = back(Du, n);
    close_to("  u", g, u, mu, 4, n);
    free(g);
    TWICE("loss u", Du, n,
          l2rw__cu_loss_eval(&cfg, Dz, Dzd, Dy, n, k, Dl, Ddz, Du));
    /* Errors: a bad label, then a non-finite logit; the CPU's words. */
    char cpu_msg[256];
    y[3] = (int32_t)k;
    CHECK_OK(l2rw__cu_upload(Dy, y, (size_t)n * sizeof *y));
    l2rw_status sc = l2rw__loss_eval(&cfg, z, zd, y, n, k, loss, dz, u);
    snprintf(cpu_msg, sizeof cpu_msg, "%s", l2rw_last_error());
    l2rw_status sg = l2rw__cu_loss_eval(&cfg, Dz, Dzd, Dy, n, k, Dl, Ddz, Du);
    CHECK(sc == L2RW_ERR_LABEL && sg == sc, "bad label: %s / %s",
          l2rw_strerror(sc), l2rw_strerror(sg));
    CHECK(!strcmp(cpu_msg, l2rw_last_error()), "'%s' vs '%s'", cpu_msg,
          l2rw_last_error());
    y[3] = 0;
    z[2 * k + 1] = INFINITY;
    z[5 * k] = NAN;
    CHECK_OK(l2rw__cu_upload(Dy, y, (size_t)n * sizeof *y));
    CHECK_OK(l2rw__cu_upload(Dz, z, nz * sizeof *z));
    sc = l2rw__loss_eval(&cfg, z, zd, y, n, k, loss, dz, u);
    snprintf(cpu_msg, sizeof cpu_msg, "%s", l2rw_last_error());
    sg = l2rw__cu_loss_eval(&cfg, Dz, Dzd, Dy, n, k, Dl, Ddz, Du);
    CHECK(sc == L2RW_ERR_NUMERIC && sg == sc, "bad logit: %s / %s",
          l2rw_strerror(sc), l2rw_strerror(sg));
    CHECK(!strcmp(cpu_msg, l2rw_last_error()), "'%s' vs '%s'", cpu_msg,
          l2rw_last_error());
    l2rw__cu_free(Dz), l2rw__cu_free(Dzd), l2rw__cu_free(Dy);
    l2rw__cu_free(Dl), l2rw__cu_free(Ddz), l2rw__cu_free(Du);
    free(z), free(zd), free(y), free(loss), free(dz), free(u);
    free(ml), free(mdz), free(mu);
}

static void weights_case(int n, float lo, float hi, int poison)
{
    float *s = hrand((size_t)n, lo, hi), *w = hzero(n);
    if (poison) s[n / 2] = NAN;
    float *Ds = devf(s, n), *Dw = devf(NULL, n);
    int *Dinfo = dev(NULL, 2 * sizeof(int));
    int pc = l2rw_weights_normalise(s, n, w), pg = -1, info[2];
    char cpu_msg[256] = "";
    l2rw_status sc = l2rw_weights_from_scores(s, n, w, &pc);
    snprintf(cpu_msg, sizeof cpu_msg, "%s", l2rw_last_error());
    l2rw_status sg = l2rw__cu_weights_from_scores(Ds, n, Dw, &pg);
    CHECK(sc == sg, "weights status %s vs %s", l2rw_strerror(sg),
          l2rw_strerror(sc));
    if (sc != L2RW_OK)
        CHECK(!strcmp(cpu_msg, l2rw_last_error()), "'%s' vs '%s'", cpu_msg,
              l2rw_last_error());
    else
        CHECK(pg == pc, "positive %d vs %d", pg, pc);
    pc = l2rw_weights_normalise(s, n, w);
    l2rw__cu_weights_normalise(Ds, n, Dw, Dinfo);
    float *g = back(Dw, n);
    exact("weights", g, w, n);
    CHECK_OK(l2rw__cu_download(info, Dinfo, sizeof info));
    CHECK(info[0] == pc && info[1] == (poison ? n / 2 : -1),
          "info %d %d, CPU %d positive", info[0], info[1], pc);
    free(g);
    l2rw__cu_free(Ds), l2rw__cu_free(Dw), l2rw__cu_free(Dinfo);
    free(s), free(w);
}

static void test_loss_weights(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 606);
    const l2rw_loss_kind kinds[] = {L2RW_LOSS_CE, L2RW_LOSS_BOOTSTRAP_SOFT,
                                    L2RW_LOSS_BOOTSTRAP_HARD, L2RW_LOSS_GCE,
                                    L2RW_LOSS_SCE};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        loss_kind_case(l2rw_loss_default(kinds[i]), 37, 10);
    loss_kind_case(l2rw_loss_default(L2RW_LOSS_CE), 300, 100);
    l2rw_loss bad = l2rw_loss_default(L2RW_LOSS_GCE);
    bad.q = 0.0f;
    CHECK(l2rw__cu_loss_eval(&bad, NULL, NULL, NULL, 0, 10, NULL, NULL,
                             NULL) == L2RW_ERR_ARG,
          "bad sizes");
    weights_case(100, -1, 1, 0);
    weights_case(1000, -1, 3, 0);
    weights_case(50, -2, -0.5f, 0); /* none positive: w = 0 */
    weights_case(64, -1, 1, 1);     /* a NaN score */
    CHECK_OK(l2rw__cu_sync());
}

/* ---------------------------------------------------------- optimizers */

/* n_steps optimizer steps on the CPU (optim.c through a real net) and on
 * the device with the same learning rates. */
static void optim_case(l2rw_optim_kind kind, float clip)
{
    l2rw_net *net = NULL;
    CHECK_OK(l2rw_net_create(&net, "mlp:64", 1, 16, 16, 10, 4, 7));
    if (!net) return;
    const size_t np = l2rw_net_num_params(net);
    l2rw_sgd_cfg sc;
    memset(&sc, 0, sizeof sc);
    sc.lr = 0.05f, sc.momentum = 0.9f, sc.weight_decay = 5e-4f;
    sc.n_milestones = 1, sc.milestones[0] = 2, sc.decay = 0.1f;
    l2rw_optim_cfg oc = l2rw_optim_cfg_default(kind);
    oc.clip_grad_norm = clip;
    l2rw_sgd *opt = NULL;
    CHECK_OK(l2rw_optim_create(&opt, net, &sc, &oc));
    float *p = l2rw_net_params(net), *gr = l2rw_net_grads(net);
    float *Dp = devf(p, np), *Dv = devf(NULL, np), *Dm2 = devf(NULL, np);
    float *Dg = devf(NULL, np);
    int *Dbad = dev(NULL, sizeof(int));
    for (long step = 0; opt && step < 4; step++) {
        float *g = hrand(np, -1, 1);
        memcpy(gr, g, np * sizeof *g);
        CHECK_OK(l2rw__cu_upload(Dg, g, np * sizeof *g));
        const float lr = l2rw_sgd_lr(opt, step);
        float scale = 1.0f;
        if (clip > 0.0f) {
            const double norm = sqrt(l2rw__cu_sumsq(Dg, np));
            if (norm > (double)clip) scale = (float)((double)clip / norm);
        }
        CHECK_OK(l2rw_sgd_step(opt, net, step));
        if (kind == L2RW_OPTIM_SGD) {
            l2rw__cu_sgd_update(Dp, Dv, Dg, np, lr, sc.momentum,
                                sc.weight_decay, scale, Dbad);
        } else {
            const double t = (double)(step + 1);
            const float bc1 = (float)(1.0 / (1.0 - pow(oc.beta1, t)));
            const float bc2 = (float)(1.0 / (1.0 - pow(oc.beta2, t)));
            l2rw__cu_adamw_update(Dp, Dv, Dm2, Dg, np, lr, oc.beta1,
                                  oc.beta2, oc.eps, sc.weight_decay, bc1,
                                  bc2, scale, Dbad);
        }
        free(g);
    }
    float *gp = back(Dp, np);
    const char *what = kind == L2RW_OPTIM_SGD
                           ? (clip > 0 ? "sgd clipped" : "sgd")
                           : (clip > 0 ? "adamw clipped" : "adamw");
    if (clip > 0.0f) {
        /* The clipping factor may round differently (the norm's sums run
         * in another order): parameters within a few ulps. */
        float *mag = habs(p, np);
        for (size_t i = 0; i < np; i++) mag[i] += 1e-3f;
        close_to(what, gp, p, mag, 64, np);
        free(mag);
    } else {
        exact(what, gp, p, np);
    }
    int bad = -1;
    CHECK_OK(l2rw__cu_download(&bad, Dbad, sizeof bad));
    CHECK(bad == 0, "%s: bad flag %d", what, bad);
    l2rw__cu_free(Dp), l2rw__cu_free(Dv), l2rw__cu_free(Dm2);
    l2rw__cu_free(Dg), l2rw__cu_free(Dbad);
    free(gp);
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
}

static void test_optim(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 707);
    optim_case(L2RW_OPTIM_SGD, 0.0f);
    optim_case(L2RW_OPTIM_SGD, 1.0f);
    optim_case(L2RW_OPTIM_ADAMW, 0.0f);
    optim_case(L2RW_OPTIM_ADAMW, 1.0f);
    /* A parameter that becomes NaN raises the flag. */
    float p[3] = {1, 2, 3}, v[3] = {0, 0, 0}, g[3] = {0, NAN, 0};
    float *Dp = devf(p, 3), *Dv = devf(v, 3), *Dg = devf(g, 3);
    int *Dbad = dev(NULL, sizeof(int)), bad = 0;
    l2rw__cu_sgd_update(Dp, Dv, Dg, 3, 0.1f, 0.9f, 0.0f, 1.0f, Dbad);
    CHECK_OK(l2rw__cu_sync());
    CHECK_OK(l2rw__cu_download(&bad, Dbad, sizeof bad));
    CHECK(bad == 1, "NaN parameter: flag %d", bad);
    l2rw__cu_free(Dp), l2rw__cu_free(Dv), l2rw__cu_free(Dg);
    l2rw__cu_free(Dbad);
    CHECK_OK(l2rw__cu_sync());
}

/* The data ops of device-resident runs (cu_data.cu): a batch gathered
 * by index from a set on the device, and the crop-flip by the host's
 * draws, against kernels_data.c: copies, so bit for bit (CIFAR shapes,
 * repeated and extreme indices, every offset and both flips among 64
 * draws). mem_free: positive and below the device's memory. */
static void test_data_ops(void)
{
    NEED_GPU();
    l2rw_rng_seed(&rng, 909);
    const l2rw__backend *be = &l2rw__backend_cuda;
    enum { ROWS = 50, N = 64, C = 3, H = 32, W = 32, PAD = 4 };
    const size_t dim = (size_t)C * H * W;
    float *set = hrand(ROWS * dim, -2, 2);
    int32_t idx[N], draws[3 * N];
    for (int i = 0; i < N; i++)
        idx[i] = i == 0 ? 0 : i == 1 ? ROWS - 1 : (int32_t)((i * 37) % ROWS);
    l2rw__augment_draws(0xda7aULL, N, PAD, draws);
    float *want = hzero(N * dim), *want_aug = hzero(N * dim);
    l2rw__gather_rows(want, set, idx, N, dim);
    l2rw__crop_flip(want_aug, want, draws, N, C, H, W, PAD);
    float *Dset = devf(set, ROWS * dim), *Db = devf(NULL, N * dim);
    float *Da = devf(NULL, N * dim);
    int32_t *Di = dev(idx, sizeof idx), *Dd = dev(draws, sizeof draws);
    TWICE("gather_rows", Db, N * dim,
          be->gather_rows(Db, Dset, ROWS, Di, N, dim));
    float *got = back(Db, N * dim);
    exact("gather_rows", got, want, N * dim);
    free(got);
    TWICE("crop_flip", Da, N * dim,
          be->crop_flip(Da, Db, Dd, N, C, H, W, PAD));
    got = back(Da, N * dim);
    exact("crop_flip", got, want_aug, N * dim);
    free(got);
    size_t room = be->mem_free();
    CHECK(room > ((size_t)1 << 20) && room < ((size_t)1 << 40),
          "mem_free %zu bytes", room);
    l2rw__cu_free(Dset), l2rw__cu_free(Db), l2rw__cu_free(Da);
    l2rw__cu_free(Di), l2rw__cu_free(Dd);
    CHECK_OK(l2rw__cu_sync());
    free(set), free(want), free(want_aug);
}

int main(void)
{
    RUN(test_probe);
    RUN(test_backend_table);
    RUN(test_table_ops);
    RUN(test_gemm);
    RUN(test_elementwise);
    RUN(test_pooling);
    RUN(test_conv);
    RUN(test_batchnorm);
    RUN(test_loss_weights);
    RUN(test_optim);
    RUN(test_data_ops);
    l2rw__cu_shutdown();
    return CHECK_DONE("test_cuda_kernels");
}

#endif
