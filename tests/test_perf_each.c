/* The per-example path of the L2RW step (nets without batch norm, net.c
 * l2rw__net_scores_each / l2rw__net_backward_each) against the tangent
 * path it replaces: the scores u_i = D_v l_i and the gradient of
 * sum w_i l_i must agree to float32 rounding (relative 1e-4 of the
 * largest value; a missed layer or a wrong example is O(1)). Also: the
 * path is refused with batch norm, it is deterministic, and the method
 * step picks it for LeNet (same update as the tangent path, to rounding).
 * test_reweight.c checks this path against the finite-difference
 * definition of the meta gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "falloc.h"
#include "graph.h"
#include "l2rw.h"
#include "l2rw_reweight.h"
#include "net_internal.h"

static double max_abs_diff(const float *a, const float *b, size_t n,
                           double *scale)
{
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    *scale = m;
    return d;
}

/* conv(bias) - relu - dropout - maxpool - conv(no bias) - relu - dense -
 * relu - dense: every kind the per-example path has to see. */
static l2rw_status custom_net(l2rw_net **out, int max_batch)
{
    l2rw_graph *g = NULL;
    L2RW_TRY(l2rw__graph_new(&g, 2, 9, 9));
    int x = l2rw__g_conv(g, 0, 4, 3, 1, 1, 1);
    x = l2rw__g_maxpool(g, l2rw__g_dropout(g, l2rw__g_relu(g, x), 0.3f), 2, 2);
    x = l2rw__g_relu(g, l2rw__g_conv(g, x, 5, 3, 2, 1, 0));
    x = l2rw__g_relu(g, l2rw__g_dense(g, x, 6));
    x = l2rw__g_dense(g, x, 3);
    return l2rw__graph_compile(g, x, "custom", 3, max_batch, 5, out);
}

static void compare_paths(l2rw_net *net, const char *what, int threads)
{
    l2rw_set_threads(threads);
    const int n = 7, K = l2rw_net_classes(net);
    int c, h, w;
    l2rw_net_input_shape(net, &c, &h, &w);
    const size_t dim = (size_t)c * h * w, np = l2rw_net_num_params(net);
    float *x = falloc(dim * n), *u_ref = falloc(n), *u = falloc(n);
    float *wt = falloc(n), *g_ref = falloc(np), *u2 = falloc(n);
    int32_t y[7];
    l2rw_rng r;
    l2rw_rng_seed(&r, 11);
    for (size_t i = 0; i < dim * n; i++) x[i] = (float)l2rw_rng_normal(&r);
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)l2rw_rng_below(&r, (uint64_t)K);
        wt[i] = i % 3 ? (float)l2rw_rng_uniform(&r) : 0.0f;
    }
    float *t = l2rw_net_tangents(net);
    for (size_t i = 0; i < np; i++) t[i] = (float)(0.1 * l2rw_rng_normal(&r));
    l2rw_net_set_dropout_key(net, 99);
    for (int uniform = 0; uniform < 2; uniform++) {
        const float *wp = uniform ? NULL : wt;
        CHECK_OK(l2rw_net_forward(net, x, n, L2RW_MODE_TRAIN, 1));
        CHECK_OK(l2rw_net_loss(net, y, NULL, NULL, u_ref));
        CHECK_OK(l2rw_net_backward(net, wp));
        memcpy(g_ref, l2rw_net_grads(net), np * sizeof *g_ref);
        CHECK_OK(l2rw_net_forward(net, x, n, L2RW_MODE_TRAIN, 0));
        CHECK_OK(l2rw_net_loss(net, y, NULL, NULL, NULL));
        CHECK_OK(l2rw__net_scores_each(net, u));
        CHECK_OK(l2rw__net_backward_each(net, wp));
        double su, sg;
        const double du = max_abs_diff(u, u_ref, (size_t)n, &su);
        const double dg = max_abs_diff(l2rw_net_grads(net), g_ref, np, &sg);
        CHECK(su > 0.0 && du <= 1e-4 * su,
              "%s (threads %d): scores differ by %g (max %g)", what, threads,
              du, su);
        CHECK(sg > 0.0 && dg <= 1e-4 * sg,
              "%s (threads %d, %s weights): gradients differ by %g (max %g)",
              what, threads, uniform ? "uniform" : "given", dg, sg);
        /* same inputs, same bits */
        CHECK_OK(l2rw_net_forward(net, x, n, L2RW_MODE_TRAIN, 0));
        CHECK_OK(l2rw_net_loss(net, y, NULL, NULL, NULL));
        CHECK_OK(l2rw__net_scores_each(net, u2));
        CHECK(memcmp(u, u2, (size_t)n * sizeof *u) == 0,
              "%s: scores not deterministic", what);
    }
    l2rw__afree(x), l2rw__afree(u_ref), l2rw__afree(u);
    l2rw__afree(wt), l2rw__afree(g_ref), l2rw__afree(u2);
}

/* One L2RW method step of LeNet (per-example path) against the same step
 * composed from net calls on the tangent path. */
static void test_lenet_step(void)
{
    l2rw_set_threads(2);
    const int n = 6, m = 5;
    l2rw_net *a = NULL, *b = NULL;
    CHECK_OK(l2rw_net_create(&a, "lenet", 1, 28, 28, 10, n, 3));
    CHECK_OK(l2rw_net_create(&b, "lenet", 1, 28, 28, 10, n, 3));
    if (!a || !b) return;
    CHECK(l2rw__net_each_ok(a), "lenet takes the per-example path");
    const size_t dim = 28 * 28, np = l2rw_net_num_params(a);
    float *x = falloc(dim * n), *vx = falloc(dim * m), *u = falloc(n);
    float *w = falloc(n), *w2 = falloc(n);
    int32_t y[6], vy[5];
    l2rw_rng r;
    l2rw_rng_seed(&r, 12);
    for (size_t i = 0; i < dim * n; i++) x[i] = (float)l2rw_rng_normal(&r);
    for (size_t i = 0; i < dim * m; i++) vx[i] = (float)l2rw_rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (int32_t)l2rw_rng_below(&r, 10);
    for (int i = 0; i < m; i++) vy[i] = (int32_t)l2rw_rng_below(&r, 10);
    /* a: the library's step */
    l2rw_sgd_cfg sc = {.lr = 0.1f, .momentum = 0.0f, .weight_decay = 0.0f};
    l2rw_sgd *oa = NULL, *ob = NULL;
    CHECK_OK(l2rw_sgd_create(&oa, a, &sc));
    CHECK_OK(l2rw_sgd_create(&ob, b, &sc));
    l2rw_method_cfg cfg = l2rw_method_cfg_default();
    CHECK_OK(l2rw_method_parse("l2rw", &cfg.method));
    cfg.classes = 10;
    cfg.train_y = y;
    cfg.n_train = n;
    l2rw_method_ctx *mc = NULL;
    CHECK_OK(l2rw_method_create(&mc, &cfg, a));
    l2rw_step_stats st;
    CHECK_OK(l2rw_method_step(mc, a, oa, 0, x, y, NULL, n, vx, vy, m, &st, w));
    /* b: validation gradient, tangent forward, weights, backward, update
     * (LeNet has no dropout: the keys do not matter) */
    CHECK_OK(l2rw_net_forward(b, vx, m, L2RW_MODE_TRAIN_FROZEN, 0));
    CHECK_OK(l2rw_net_loss(b, vy, NULL, NULL, NULL));
    CHECK_OK(l2rw_net_backward(b, NULL));
    memcpy(l2rw_net_tangents(b), l2rw_net_grads(b), np * sizeof(float));
    CHECK_OK(l2rw_net_forward(b, x, n, L2RW_MODE_TRAIN, 1));
    CHECK_OK(l2rw_net_loss(b, y, NULL, NULL, u));
    l2rw_weights_normalise(u, n, w2);
    double sw, sp;
    CHECK(max_abs_diff(w, w2, (size_t)n, &sw) <= 1e-4 * (sw + 1e-30),
          "step weights: per-example path vs tangent path");
    CHECK_OK(l2rw_net_backward(b, w2));
    CHECK_OK(l2rw_sgd_step(ob, b, 0));
    const double dp = max_abs_diff(l2rw_net_params(a), l2rw_net_params(b),
                                   np, &sp);
    CHECK(dp <= 1e-5 * sp, "step parameters differ by %g (max %g)", dp, sp);
    l2rw_method_free(mc);
    l2rw_sgd_free(oa), l2rw_sgd_free(ob);
    l2rw_net_free(a), l2rw_net_free(b);
    l2rw__afree(x), l2rw__afree(vx), l2rw__afree(u);
    l2rw__afree(w), l2rw__afree(w2);
}

/* A zoo model: both paths with 1 and with 2 threads. */
static void check_zoo_model(const char *model, int c, int h, int w)
{
    for (int threads = 1; threads <= 2; threads++) {
        l2rw_net *net = NULL;
        CHECK_OK(l2rw_net_create(&net, model, c, h, w, 10, 7, 1));
        if (!net) continue;
        compare_paths(net, model, threads);
        l2rw_net_free(net);
    }
}

static void test_lenet_paths(void) { check_zoo_model("lenet", 1, 28, 28); }
static void test_mlp_paths(void) { check_zoo_model("mlp:12,8", 1, 6, 6); }

static void test_custom_net_paths(void)
{
    for (int threads = 1; threads <= 2; threads++) {
        l2rw_net *net = NULL;
        CHECK_OK(custom_net(&net, 7));
        if (!net) continue;
        CHECK(l2rw__net_each_ok(net), "custom net takes the per-example path");
        compare_paths(net, "conv-bias/dropout/strided net", threads);
        l2rw_net_free(net);
    }
}

static void test_batchnorm_refused(void)
{
    l2rw_net *rn = NULL;
    CHECK_OK(l2rw_net_create(&rn, "resnet8", 3, 8, 8, 10, 4, 1));
    if (rn) {
        CHECK(!l2rw__net_each_ok(rn), "resnet8 (batch norm) is refused");
        float x[4 * 3 * 8 * 8] = {0}, u[4];
        int32_t y[4] = {0, 1, 2, 3};
        CHECK_OK(l2rw_net_forward(rn, x, 4, L2RW_MODE_TRAIN, 0));
        CHECK_OK(l2rw_net_loss(rn, y, NULL, NULL, NULL));
        CHECK(l2rw__net_scores_each(rn, u) == L2RW_ERR_UNSUPPORTED,
              "scores_each with batch norm: unsupported");
        l2rw_net_free(rn);
    }
}

int main(void)
{
    RUN(test_lenet_paths);
    RUN(test_mlp_paths);
    RUN(test_custom_net_paths);
    RUN(test_batchnorm_refused);
    RUN(test_lenet_step);
    return CHECK_DONE("test_perf_each");
}
