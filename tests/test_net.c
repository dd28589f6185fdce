/* The net end to end on a small residual graph (conv-bn-relu-pool, a
 * conv-bn branch added back, relu, dropout, dense): the gradient of
 * sum_i w_i l_i and the per-example tangents u_i against central finite
 * differences; the identity sum_i w_i u_i = <grad, tangent>; batch-norm
 * modes; bit-identical repeats; no allocation in the passes; bad shapes,
 * labels, batch sizes and non-finite inputs give their status codes.
 *
 * Tolerances: the losses are float32 and summed in double; with a step
 * h = 2e-3 on parameters of size O(0.1..1) the rounding noise of a loss
 * (~1e-7 relative, losses ~2) is ~1e-4 after dividing by 2h, while kinks
 * (ReLU, max-pool switches) are crossed only rarely at that step. We
 * require |analytic - fd| <= 3e-2 |analytic| + 3e-3 max|analytic|. The
 * identity sum w u = <g, t> is exact up to float rounding of two different
 * summation orders: relative 1e-4. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "graph.h"
#include "net_internal.h"

enum { C = 2, H = 9, W = 9, K = 5, N = 6 };
#define FD_H 1e-3
#define FD_RTOL 3e-2
#define FD_ATOL 3e-3

/* Central differences at h and h/2 agree where no kink (ReLU, max-pool
 * switch) lies within h of the point; only there is the comparison with
 * the analytic derivative meaningful. A wrong derivative is still caught:
 * the two differences agree with each other, not with it. */
static int agree(double fd_h, double fd_h2, double scale)
{
    return fabs(fd_h - fd_h2) <= 0.5 * (FD_RTOL * fabs(fd_h2) + FD_ATOL * scale);
}

static l2rw_status build(l2rw_net **net, int avg_head, uint64_t seed)
{
    l2rw_graph *g;
    L2RW_TRY(l2rw__graph_new(&g, C, H, W));
    int c1 = l2rw__g_conv(g, 0, 4, 3, 1, 1, 1);
    int b1 = l2rw__g_batchnorm(g, c1);
    int r1 = l2rw__g_relu(g, b1);
    int p1 = l2rw__g_maxpool(g, r1, 2, 2); /* 4x4x4 */
    int c2 = l2rw__g_conv(g, p1, 4, 3, 1, 1, 0);
    int b2 = l2rw__g_batchnorm(g, c2);
    int a = l2rw__g_add(g, b2, p1);
    int r2 = l2rw__g_relu(g, a);
    int out;
    if (avg_head) {
        out = l2rw__g_dense(g, l2rw__g_avgpool_global(g, r2), K);
    } else {
        int d = l2rw__g_dropout(g, r2, 0.25f);
        out = l2rw__g_dense(g, l2rw__g_flatten(g, d), K);
    }
    return l2rw__graph_compile(g, out, "test-res", K, N, seed, net);
}

static double wsum(const float *w, const float *l, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)w[i] * l[i];
    return s;
}

static void eval_losses(l2rw_net *net, const float *x, const int32_t *y,
                        float *loss)
{
    CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN_FROZEN, 0));
    CHECK_OK(l2rw_net_loss(net, y, NULL, loss, NULL));
}

static void check_fd(int avg_head)
{
    l2rw_net *net;
    CHECK_OK(build(&net, avg_head, 11));
    if (!net) return;
    l2rw_rng r;
    l2rw_rng_seed(&r, 5 + avg_head);
    float x[N * C * H * W], w[N], loss[N], u[N], lp[N], lm[N];
    int32_t y[N];
    for (int i = 0; i < N * C * H * W; i++) x[i] = (float)l2rw_rng_normal(&r);
    for (int i = 0; i < N; i++) {
        y[i] = (int32_t)l2rw_rng_below(&r, K);
        w[i] = (float)l2rw_rng_uniform(&r);
    }
    const size_t np = l2rw_net_num_params(net);
    float *p = l2rw_net_params(net), *t = l2rw_net_tangents(net);
    for (size_t j = 0; j < np; j++) t[j] = (float)l2rw_rng_normal(&r);
    l2rw_net_set_dropout_key(net, 42);
    const size_t ns = l2rw_net_num_state(net);
    float *st0 = malloc(ns * sizeof *st0);
    memcpy(st0, l2rw_net_state(net), ns * sizeof *st0);

    CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN_FROZEN, 1));
    CHECK_OK(l2rw_net_loss(net, y, NULL, loss, u));
    CHECK_OK(l2rw_net_backward(net, w));
    float *g = malloc(np * sizeof *g);
    memcpy(g, l2rw_net_grads(net), np * sizeof *g);
    CHECK(memcmp(st0, l2rw_net_state(net), ns * sizeof *st0) == 0,
          "train-frozen leaves the running statistics");

    /* sum_i w_i u_i = <grad of sum w_i l_i, t>: the L2RW identity. */
    double gt = 0.0;
    for (size_t j = 0; j < np; j++) gt += (double)g[j] * t[j];
    CHECK_CLOSE(wsum(w, u, N), gt, 1e-4, 1e-6, "sum w u vs <grad, tangent>");

    /* u_i against a directional finite difference along t. */
    float *p0 = malloc(np * sizeof *p0);
    memcpy(p0, p, np * sizeof *p0);
    double fdu[2][N];
    for (int k = 0; k < 2; k++) {
        const double ht = FD_H / (4 << k); /* t is O(1) on every coordinate */
        for (size_t j = 0; j < np; j++) p[j] = (float)(p0[j] + ht * t[j]);
        eval_losses(net, x, y, lp);
        for (size_t j = 0; j < np; j++) p[j] = (float)(p0[j] - ht * t[j]);
        eval_losses(net, x, y, lm);
        for (int i = 0; i < N; i++) fdu[k][i] = (lp[i] - lm[i]) / (2 * ht);
    }
    memcpy(p, p0, np * sizeof *p0);
    double umax = 0.0;
    for (int i = 0; i < N; i++) umax = fmax(umax, fabs(u[i]));
    int smooth = 0;
    for (int i = 0; i < N; i++) {
        if (!agree(fdu[0][i], fdu[1][i], umax)) continue;
        smooth++;
        CHECK_CLOSE(u[i], fdu[1][i], FD_RTOL, FD_ATOL * umax,
                    avg_head ? "u_i vs FD (avgpool head)" : "u_i vs FD");
    }
    CHECK(smooth >= N / 2, "u: only %d of %d examples away from kinks", smooth, N);

    /* Gradient on sampled coordinates (every layer's parameters). */
    double gmax = 0.0;
    for (size_t j = 0; j < np; j++) gmax = fmax(gmax, fabs(g[j]));
    smooth = 0;
    const int samples = 40;
    for (int s = 0; s < samples; s++) {
        size_t j = s < 8 ? (size_t)s * (np / 8) : (size_t)l2rw_rng_below(&r, np);
        double fd[2];
        for (int k = 0; k < 2; k++) {
            const double h = FD_H / (1 << k);
            p[j] = (float)(p0[j] + h);
            eval_losses(net, x, y, lp);
            p[j] = (float)(p0[j] - h);
            eval_losses(net, x, y, lm);
            p[j] = p0[j];
            fd[k] = (wsum(w, lp, N) - wsum(w, lm, N)) / (2 * h);
        }
        if (!agree(fd[0], fd[1], gmax)) continue;
        smooth++;
        CHECK_CLOSE(g[j], fd[1], FD_RTOL, FD_ATOL * gmax,
                    avg_head ? "grad vs FD (avgpool head)" : "grad vs FD");
    }
    CHECK(smooth >= samples * 3 / 4, "grad: only %d of %d coordinates away from kinks",
          smooth, samples);

    /* w = NULL means uniform 1/n. */
    float wu[N];
    for (int i = 0; i < N; i++) wu[i] = 1.0f / N;
    CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN_FROZEN, 0));
    CHECK_OK(l2rw_net_loss(net, y, NULL, loss, NULL));
    CHECK_OK(l2rw_net_backward(net, NULL));
    memcpy(g, l2rw_net_grads(net), np * sizeof *g);
    CHECK_OK(l2rw_net_backward(net, wu));
    double dmax = 0.0;
    for (size_t j = 0; j < np; j++)
        dmax = fmax(dmax, fabs(g[j] - l2rw_net_grads(net)[j]));
    CHECK(dmax < 1e-6, "w NULL = uniform 1/n (max diff %g)", dmax);

    /* Train mode moves the running statistics. */
    CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN, 0));
    CHECK(memcmp(st0, l2rw_net_state(net), ns * sizeof *st0) != 0,
          "train mode updates the running statistics");
    free(st0);
    free(p0);
    free(g);
    l2rw_net_free(net);
}

/* The dropout + flatten head, then the global-average-pool head. */
static void test_fd_dropout_head(void) { check_fd(0); }
static void test_fd_avgpool_head(void) { check_fd(1); }

/* Same seed, same threads: bit-identical parameters, logits, gradients. */
static void test_repeat(void)
{
    l2rw_net *a, *b;
    CHECK_OK(build(&a, 0, 3));
    CHECK_OK(build(&b, 0, 3));
    if (!a || !b) return;
    const size_t np = l2rw_net_num_params(a);
    CHECK(memcmp(l2rw_net_params(a), l2rw_net_params(b), np * sizeof(float)) == 0,
          "same seed, same parameters");
    l2rw_rng r;
    l2rw_rng_seed(&r, 9);
    float x[N * C * H * W], ua[N], ub[N];
    int32_t y[N];
    for (int i = 0; i < N * C * H * W; i++) x[i] = (float)l2rw_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = i % K;
    for (size_t j = 0; j < np; j++)
        l2rw_net_tangents(a)[j] = l2rw_net_tangents(b)[j] = (float)l2rw_rng_normal(&r);
    l2rw_net *nets[2] = {a, b};
    float *us[2] = {ua, ub};
    for (int k = 0; k < 2; k++) {
        l2rw_net_set_dropout_key(nets[k], 7);
        CHECK_OK(l2rw_net_forward(nets[k], x, N, L2RW_MODE_TRAIN, 1));
        CHECK_OK(l2rw_net_loss(nets[k], y, NULL, NULL, us[k]));
        CHECK_OK(l2rw_net_backward(nets[k], NULL));
    }
    CHECK(memcmp(l2rw_net_logits(a), l2rw_net_logits(b), N * K * sizeof(float)) == 0,
          "bit-identical logits");
    CHECK(memcmp(ua, ub, sizeof ua) == 0, "bit-identical tangents u");
    CHECK(memcmp(l2rw_net_grads(a), l2rw_net_grads(b), np * sizeof(float)) == 0,
          "bit-identical gradients");
    CHECK(memcmp(l2rw_net_state(a), l2rw_net_state(b),
                 l2rw_net_num_state(a) * sizeof(float)) == 0,
          "bit-identical running statistics");
    /* Another dropout key changes the forward. */
    l2rw_net_set_dropout_key(b, 8);
    CHECK_OK(l2rw_net_forward(b, x, N, L2RW_MODE_TRAIN, 0));
    CHECK_OK(l2rw_net_forward(a, x, N, L2RW_MODE_TRAIN, 0));
    CHECK(memcmp(l2rw_net_logits(a), l2rw_net_logits(b), N * K * sizeof(float)) != 0,
          "dropout key changes the mask");
    /* Eval mode ignores the dropout key. */
    CHECK_OK(l2rw_net_forward(b, x, N, L2RW_MODE_EVAL, 0));
    CHECK_OK(l2rw_net_forward(a, x, N, L2RW_MODE_EVAL, 0));
    CHECK(memcmp(l2rw_net_logits(a), l2rw_net_logits(b), N * K * sizeof(float)) == 0,
          "eval mode has no dropout");
    int32_t pred[N];
    l2rw_net_predict(a, pred);
    int pred_ok = 1;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++)
            pred_ok &= l2rw_net_logits(a)[i * K + c] <= l2rw_net_logits(a)[i * K + pred[i]];
    CHECK(pred_ok, "predict is the argmax of the logits");
    l2rw_net_free(a);
    l2rw_net_free(b);
}

/* The passes allocate nothing: the plain build counts every heap
 * allocation of the process by wrapping glibc's allocator (ASan has its
 * own allocator, so the sanitized build skips this check). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define L2RW_ASAN 1
#endif
#endif
#include <stdlib.h> /* defines __GLIBC__ */
#if !defined(__SANITIZE_ADDRESS__) && !defined(L2RW_ASAN) && defined(__GLIBC__)
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static _Atomic long n_allocs;
void *malloc(size_t n) { n_allocs++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { n_allocs++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { n_allocs++; return __libc_realloc(p, n); }
void *aligned_alloc(size_t al, size_t n) { n_allocs++; return __libc_memalign(al, n); }
int posix_memalign(void **p, size_t al, size_t n)
{
    n_allocs++;
    *p = __libc_memalign(al, n);
    return *p ? 0 : 12; /* ENOMEM */
}
#endif

static void test_no_alloc(void)
{
#ifdef COUNT_ALLOCS
    l2rw_net *net;
    long at_start = n_allocs;
    CHECK_OK(build(&net, 0, 4));
    if (!net) return;
    CHECK(n_allocs > at_start, "the allocation counter counts (%ld)", n_allocs - at_start);
    float x[N * C * H * W] = {0}, loss[N], u[N];
    int32_t y[N] = {0};
    for (int i = 0; i < N * C * H * W; i++) x[i] = (float)(i % 7) - 3.0f;
    /* Warm up: OpenMP and OpenBLAS set up their threads on first use. */
    for (int k = 0; k < 2; k++) {
        CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN, 1));
        CHECK_OK(l2rw_net_loss(net, y, NULL, loss, u));
        CHECK_OK(l2rw_net_backward(net, NULL));
    }
    long before = n_allocs;
    for (int k = 0; k < 3; k++) {
        CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN, 1));
        CHECK_OK(l2rw_net_loss(net, y, NULL, loss, u));
        CHECK_OK(l2rw_net_backward(net, NULL));
        CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_EVAL, 0));
    }
    CHECK(n_allocs == before, "no allocation in the passes (%ld)", n_allocs - before);
    l2rw_net_free(net);
#endif
}

static void test_errors(void)
{
    /* Shapes that do not fit, at build and at compile. */
    l2rw_graph *g;
    l2rw_net *net = NULL;
    CHECK_OK(l2rw__graph_new(&g, 1, 4, 4));
    CHECK(l2rw__g_conv(g, 0, 3, 5, 1, 0, 1) == -1, "conv 5x5 on 4x4 fails");
    CHECK(l2rw__graph_status(g) == L2RW_ERR_SHAPE, "graph records SHAPE");
    CHECK(l2rw__g_relu(g, 0) == -1, "later builder calls do nothing");
    CHECK(l2rw__graph_compile(g, 0, "bad", 3, 4, 1, &net) == L2RW_ERR_SHAPE && !net,
          "compile of a failed graph gives SHAPE");
    CHECK(strstr(l2rw_last_error(), "conv") != NULL, "message names the layer: %s",
          l2rw_last_error());

    CHECK_OK(l2rw__graph_new(&g, 2, 6, 6));
    int a = l2rw__g_conv(g, 0, 3, 3, 1, 1, 1);
    int b = l2rw__g_conv(g, 0, 4, 3, 1, 1, 1);
    CHECK(l2rw__g_add(g, a, b) == -1 && l2rw__graph_status(g) == L2RW_ERR_SHAPE,
          "add of 3 and 4 channels fails");
    l2rw__graph_free(g);

    CHECK_OK(l2rw__graph_new(&g, 2, 6, 6));
    CHECK(l2rw__g_maxpool(g, 0, 7, 1) == -1, "pool window larger than input");
    l2rw__graph_free(g);

    CHECK_OK(l2rw__graph_new(&g, 2, 6, 6));
    CHECK(l2rw__g_relu(g, 5) == -1, "input node that does not exist");
    l2rw__graph_free(g);

    CHECK_OK(l2rw__graph_new(&g, 2, 6, 6));
    int d = l2rw__g_dense(g, 0, 4);
    CHECK(l2rw__graph_compile(g, d, "bad", 3, 4, 1, &net) == L2RW_ERR_SHAPE && !net,
          "logits of 4 units for 3 classes give SHAPE");
    CHECK(l2rw__graph_new(&g, 0, 6, 6) == L2RW_ERR_SHAPE, "empty input shape");
    CHECK(l2rw__graph_new(&g, 1 << 16, 1 << 16, 2) == L2RW_ERR_SHAPE, "huge input shape");
    CHECK_OK(l2rw__graph_new(&g, 2, 6, 6));
    CHECK(l2rw__g_conv(g, 0, 3, 3, 1, 1 << 30, 0) == -1 &&
              l2rw__graph_status(g) == L2RW_ERR_SHAPE,
          "absurd padding gives SHAPE");
    l2rw__graph_free(g);
    CHECK_OK(l2rw__graph_new(&g, 2, 6, 6));
    CHECK(l2rw__g_dense(g, 0, -3) == -1 && l2rw__graph_status(g) == L2RW_ERR_SHAPE,
          "negative units give SHAPE");
    l2rw__graph_free(g);

    /* Batch sizes, labels, non-finite values. */
    CHECK_OK(build(&net, 1, 1));
    if (!net) return;
    float x[N * C * H * W], loss[N], u[N];
    int32_t y[N];
    for (int i = 0; i < N * C * H * W; i++) x[i] = (float)((i * 37) % 11) / 11.0f;
    for (int i = 0; i < N; i++) y[i] = i % K;
    CHECK(l2rw_net_forward(net, x, N + 1, L2RW_MODE_TRAIN, 0) == L2RW_ERR_ARG,
          "n > max_batch");
    CHECK(l2rw_net_forward(net, x, 0, L2RW_MODE_TRAIN, 0) == L2RW_ERR_ARG, "n = 0");
    CHECK(l2rw_net_backward(net, NULL) == L2RW_ERR_ARG, "backward before a loss");
    CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN, 0));
    CHECK(l2rw_net_loss(net, y, NULL, loss, u) == L2RW_ERR_ARG,
          "u without a tangent forward");
    y[2] = K;
    CHECK(l2rw_net_loss(net, y, NULL, loss, NULL) == L2RW_ERR_LABEL, "label = classes");
    y[2] = -1;
    CHECK(l2rw_net_loss(net, y, NULL, loss, NULL) == L2RW_ERR_LABEL, "label < 0");
    CHECK(l2rw_net_backward(net, NULL) == L2RW_ERR_ARG, "backward after a failed loss");
    y[2] = 0;
    x[5] = NAN;
    CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_EVAL, 0));
    CHECK(l2rw_net_loss(net, y, NULL, loss, NULL) == L2RW_ERR_NUMERIC, "NaN input");
    x[5] = INFINITY;
    CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_EVAL, 0));
    CHECK(l2rw_net_loss(net, y, NULL, loss, NULL) == L2RW_ERR_NUMERIC, "Inf input");
    l2rw_net_free(net);

    CHECK(l2rw_net_create(&net, "lenet", 1, 4, 4, 10, 8, 1) == L2RW_ERR_SHAPE && !net,
          "lenet on 4x4 images gives SHAPE");
    CHECK(l2rw_net_create(&net, "mlp", 1, 4, 4, 10, 0, 1) == L2RW_ERR_ARG,
          "max_batch 0");
}

/* The public constructor with a zoo model; last layer range. */
static void test_create(void)
{
    l2rw_net *net;
    CHECK_OK(l2rw_net_create(&net, "mlp:7", 1, 3, 4, 3, 5, 1));
    if (!net) return;
    size_t b, e;
    l2rw_net_last_layer_range(net, &b, &e);
    /* dense 12 -> 7 (91 params), dense 7 -> 3 (24 params) */
    CHECK(l2rw_net_num_params(net) == 91 + 24, "mlp:7 parameter count %zu",
          l2rw_net_num_params(net));
    CHECK(b == 91 && e == 115, "last layer range [%zu, %zu)", b, e);
    CHECK(strcmp(l2rw_net_model(net), "mlp:7") == 0, "model name");
    int c, h, w;
    l2rw_net_input_shape(net, &c, &h, &w);
    CHECK(c == 1 && h == 3 && w == 4 && l2rw_net_classes(net) == 3 &&
              l2rw_net_max_batch(net) == 5,
          "shape accessors");
    /* He initialisation: std sqrt(2/12) on the first layer, zero bias. */
    const float *p = l2rw_net_params(net);
    double q = 0.0;
    for (int j = 0; j < 84; j++) q += (double)p[j] * p[j];
    CHECK(fabs(sqrt(q / 84) - sqrt(2.0 / 12)) < 0.15 * sqrt(2.0 / 12),
          "He init std %g", sqrt(q / 84));
    int zero_bias = 1;
    for (int j = 84; j < 91; j++) zero_bias &= p[j] == 0.0f;
    CHECK(zero_bias, "biases start at 0");
    /* Last dense layer input: logits = a W^T + b. */
    int dim = 0;
    CHECK(l2rw__net_last_input(net, &dim) == NULL, "no last input before a forward");
    float x[5 * 12];
    for (int i = 0; i < 5 * 12; i++) x[i] = (float)((i * 11) % 13) / 6.0f - 1.0f;
    CHECK_OK(l2rw_net_forward(net, x, 5, L2RW_MODE_EVAL, 0));
    const float *a = l2rw__net_last_input(net, &dim);
    CHECK(a != NULL && dim == 7, "last input dim %d", dim);
    if (a && dim == 7) {
        double worst = 0.0;
        for (int i = 0; i < 5; i++)
            for (int k = 0; k < 3; k++) {
                double z = p[b + 21 + k];
                for (int j = 0; j < 7; j++) z += (double)a[i * 7 + j] * p[b + k * 7 + j];
                worst = fmax(worst, fabs(z - l2rw_net_logits(net)[i * 3 + k]));
            }
        CHECK(worst < 1e-5, "logits from the last input (%g)", worst);
    }
    l2rw_net_free(net);
}

/* Tangents on part of the parameters (the last layer, or one batch-norm
 * layer): the layers before them are skipped, and u still satisfies
 * sum w u = <grad, t>; a zero tangent gives u = 0. */
static void test_partial_tangent(void)
{
    l2rw_net *net;
    CHECK_OK(build(&net, 0, 31));
    if (!net) return;
    const size_t np = l2rw_net_num_params(net);
    float x[N * C * H * W], w[N], u[N];
    int32_t y[N];
    for (int i = 0; i < N * C * H * W; i++) x[i] = (float)((i * 13) % 19) / 9.0f - 1.0f;
    for (int i = 0; i < N; i++) {
        y[i] = (i * 2) % K;
        w[i] = (float)(i + 1) / N;
    }
    size_t b, e;
    l2rw_net_last_layer_range(net, &b, &e);
    float *t = l2rw_net_tangents(net);
    /* cases: last layer, first batch norm (parameters 76..83), none */
    const size_t lo[3] = {b, 76, 0}, hi[3] = {e, 84, 0};
    for (int c = 0; c < 3; c++) {
        for (size_t j = 0; j < np; j++)
            t[j] = j >= lo[c] && j < hi[c] ? (float)((j * 5) % 7) - 3.0f : 0.0f;
        CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN_FROZEN, 1));
        CHECK_OK(l2rw_net_loss(net, y, NULL, NULL, u));
        CHECK_OK(l2rw_net_backward(net, w));
        double gt = 0.0;
        for (size_t j = 0; j < np; j++) gt += (double)l2rw_net_grads(net)[j] * t[j];
        if (c < 2) {
            CHECK_CLOSE(wsum(w, u, N), gt, 1e-4, 1e-6,
                        c ? "partial tangent (batch norm)" : "partial tangent (last layer)");
            CHECK(fabs(gt) > 1e-3, "partial tangent case %d is not trivial", c);
        } else {
            int zero = 1;
            for (int i = 0; i < N; i++) zero &= u[i] == 0.0f;
            CHECK(zero, "zero tangent gives u = 0");
        }
    }
    l2rw_net_free(net);
}

/* Another thread count after compile (more than the workspace was sized
 * for, or fewer): same results up to float rounding of the reductions. */
static void test_thread_change(void)
{
    l2rw_net *net;
    CHECK_OK(build(&net, 1, 21));
    if (!net) return;
    const size_t np = l2rw_net_num_params(net);
    float x[N * C * H * W], u[3][N];
    int32_t y[N];
    for (int i = 0; i < N * C * H * W; i++) x[i] = (float)((i * 29) % 17) / 8.0f - 1.0f;
    for (int i = 0; i < N; i++) y[i] = (i * 3) % K;
    for (size_t j = 0; j < np; j++) l2rw_net_tangents(net)[j] = (float)((j * 7) % 5) - 2.0f;
    float *g[3];
    const int threads[3] = {2, 1, 7};
    for (int k = 0; k < 3; k++) {
        l2rw_set_threads(threads[k]);
        CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN_FROZEN, 1));
        CHECK_OK(l2rw_net_loss(net, y, NULL, NULL, u[k]));
        CHECK_OK(l2rw_net_backward(net, NULL));
        g[k] = malloc(np * sizeof(float));
        memcpy(g[k], l2rw_net_grads(net), np * sizeof(float));
    }
    l2rw_set_threads(2);
    double gmax = 0.0;
    for (size_t j = 0; j < np; j++) gmax = fmax(gmax, fabs(g[0][j]));
    for (int k = 1; k < 3; k++) {
        double d = 0.0;
        for (size_t j = 0; j < np; j++) d = fmax(d, fabs(g[k][j] - g[0][j]));
        CHECK(d <= 1e-5 * gmax, "%d threads vs 2: gradient differs by %g", threads[k], d);
        for (int i = 0; i < N; i++)
            CHECK_CLOSE(u[k][i], u[0][i], 1e-5, 1e-6, "u with another thread count");
    }
    for (int k = 0; k < 3; k++) free(g[k]);
    l2rw_net_free(net);
}

int main(void)
{
    l2rw_set_threads(2);
    RUN(test_fd_dropout_head);
    RUN(test_fd_avgpool_head);
    RUN(test_repeat);
    RUN(test_no_alloc);
    RUN(test_errors);
    RUN(test_create);
    RUN(test_thread_change);
    RUN(test_partial_tangent);
    return CHECK_DONE("test_net");
}
