/* Tests of the reweighting module: the L2RW weights against their
 * definition (finite differences over eps of L_v(theta - alpha grad sum
 * eps_i l_i)) on a conv + batch-norm net (tangent path) and on nets
 * without batch norm (per-example path), the invariants of every
 * weighting method, the distributions of random / resample /
 * hard-mining, and the per-example record (examples.csv, AUC). */
#include "l2rw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common.h"
#include "graph.h"
#include "net_internal.h" /* the per-example path */
#include "selfcheck.h"

enum { C = 2, H = 5, W = 5, D = C * H * W, K = 3, MAXB = 64 };

/* conv3x3(2->4, pad 1) + batchnorm + relu + dense -> 3 classes. */
static l2rw_net *bn_net(uint64_t seed)
{
    l2rw_graph *g = NULL;
    l2rw_net *net = NULL;
    if (l2rw__graph_new(&g, C, H, W) != L2RW_OK) return NULL;
    int x = l2rw__g_conv(g, 0, 4, 3, 1, 1, 1);
    x = l2rw__g_relu(g, l2rw__g_batchnorm(g, x));
    x = l2rw__g_dense(g, x, K);
    if (l2rw__graph_compile(g, x, "test-bn", K, MAXB, seed, &net) != L2RW_OK)
        return NULL;
    return net;
}

/* Network without batch norm: examples do not interact. */
static l2rw_net *mlp_net(uint64_t seed)
{
    l2rw_net *net = NULL;
    if (l2rw_net_create(&net, "mlp:8", C, H, W, K, MAXB, seed) != L2RW_OK)
        return NULL;
    return net;
}

static void fill(float *x, int32_t *y, int n, uint64_t seed)
{
    l2rw_rng r;
    l2rw_rng_seed(&r, seed);
    for (int i = 0; i < n * D; i++) x[i] = (float)l2rw_rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (int32_t)l2rw_rng_below(&r, K);
}

static l2rw_sgd *sgd(l2rw_net *net, float momentum)
{
    l2rw_sgd_cfg c = {0.05f, momentum, 5e-4f, 0, {0}, 1.0f};
    l2rw_sgd *o = NULL;
    return l2rw_sgd_create(&o, net, &c) == L2RW_OK ? o : NULL;
}

static int same_params(l2rw_net *a, l2rw_net *b)
{
    return memcmp(l2rw_net_params(a), l2rw_net_params(b),
                  l2rw_net_num_params(a) * sizeof(float)) == 0 &&
           memcmp(l2rw_net_state(a), l2rw_net_state(b),
                  l2rw_net_num_state(a) * sizeof(float)) == 0;
}

/* max |a - b| over parameters, relative to max |a - before|. */
static double param_diff(l2rw_net *a, l2rw_net *b, const float *before)
{
    size_t np = l2rw_net_num_params(a);
    const float *pa = l2rw_net_params(a), *pb = l2rw_net_params(b);
    double d = 0.0, mv = 0.0;
    for (size_t k = 0; k < np; k++) {
        d = fmax(d, fabs((double)pa[k] - pb[k]));
        mv = fmax(mv, fabs((double)pa[k] - before[k]));
    }
    return d / fmax(mv, 1e-30);
}

static l2rw_method_ctx *ctx_of(l2rw_method meth, const l2rw_net *net,
                               const int32_t *ty, int nt, long warmup,
                               uint64_t seed)
{
    l2rw_method_cfg c = l2rw_method_cfg_default();
    c.method = meth;
    c.train_y = ty;
    c.n_train = nt;
    c.warmup_steps = warmup;
    c.seed = seed;
    l2rw_method_ctx *m = NULL;
    l2rw_status s = l2rw_method_create(&m, &c, net);
    CHECK(s == L2RW_OK, "method_create %s: %s", l2rw_method_name(meth),
          l2rw_last_error());
    return m;
}

/* ------------------------------------------------------------- names */

static void test_names(void)
{
    for (int i = 0; i < L2RW_NUM_METHODS; i++) {
        l2rw_method m;
        CHECK_OK(l2rw_method_parse(l2rw_method_name((l2rw_method)i), &m));
        CHECK(m == (l2rw_method)i, "round trip of method %d", i);
    }
    l2rw_method m;
    CHECK(l2rw_method_parse("l2rw", &m) == L2RW_OK && m == L2RW_METHOD_L2RW,
          "l2rw parses");
    CHECK(l2rw_method_parse("hard-mining", &m) == L2RW_OK &&
              m == L2RW_METHOD_HARD_MINING, "hard-mining parses");
    CHECK(l2rw_method_parse("L2RW", &m) == L2RW_ERR_ARG, "case matters");
    CHECK(strstr(l2rw_last_error(), "bootstrap-soft") &&
              strstr(l2rw_last_error(), "sce"),
          "error lists the valid names: %s", l2rw_last_error());
    l2rw_meta_params p;
    CHECK(l2rw_meta_params_parse("last", &p) == L2RW_OK &&
              p == L2RW_META_LAST, "last parses");
    CHECK(l2rw_meta_params_parse("first", &p) == L2RW_ERR_ARG, "bad meta");
    CHECK(l2rw_method_loss(L2RW_METHOD_GCE).kind == L2RW_LOSS_GCE &&
              l2rw_method_loss(L2RW_METHOD_L2RW).kind == L2RW_LOSS_CE,
          "method losses");
}

/* ------------------------------------------- meta gradient definition */

enum { FD_N = 10, FD_M = 7 };
/* Only s = alpha h moves theta; see src/reweight_check.c for the error
 * budget: float32 rounding of L_v (~1e-7) / 2h ~ 5e-6 on g, relative to
 * max|alpha u| ~ 0.1 about 5e-5. Tolerance 1e-3. */
#define FD_ALPHA 0.1
#define FD_H 1e-2
#define FD_TOL 1e-3

static double val_loss(l2rw_net *net, const float *vx, const int32_t *vy)
{
    float l[FD_M];
    CHECK_OK(l2rw_net_forward(net, vx, FD_M, L2RW_MODE_TRAIN_FROZEN, 0));
    CHECK_OK(l2rw_net_loss(net, vy, NULL, l, NULL));
    double s = 0.0;
    for (int j = 0; j < FD_M; j++) s += l[j];
    return s / FD_M;
}

/* g_i by central differences of the definition, step h in eps. */
static void fd_meta_h(l2rw_net *net, const float *x, const int32_t *y,
                      const float *vx, const int32_t *vy, double h, double *g)
{
    size_t np = l2rw_net_num_params(net);
    float *theta = malloc(np * sizeof(float));
    memcpy(theta, l2rw_net_params(net), np * sizeof(float));
    for (int i = 0; i < FD_N; i++) {
        double lv[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            float w[FD_N] = {0};
            w[i] = (float)((sgn ? -1.0 : 1.0) * h);
            CHECK_OK(l2rw_net_forward(net, x, FD_N, L2RW_MODE_TRAIN_FROZEN, 0));
            CHECK_OK(l2rw_net_loss(net, y, NULL, NULL, NULL));
            CHECK_OK(l2rw_net_backward(net, w));
            float *p = l2rw_net_params(net);
            const float *gr = l2rw_net_grads(net);
            for (size_t k = 0; k < np; k++)
                p[k] = (float)((double)theta[k] - FD_ALPHA * gr[k]);
            lv[sgn] = val_loss(net, vx, vy);
            memcpy(p, theta, np * sizeof(float));
        }
        g[i] = (lv[0] - lv[1]) / (2.0 * h);
    }
    free(theta);
}

static void fd_meta(l2rw_net *net, const float *x, const int32_t *y,
                    const float *vx, const int32_t *vy, double *g)
{
    fd_meta_h(net, x, y, vx, vy, FD_H, g);
}

static double rel_err(const double *g, const float *u, int n)
{
    double scale = 0.0, worst = 0.0;
    for (int i = 0; i < n; i++) scale = fmax(scale, fabs(FD_ALPHA * u[i]));
    for (int i = 0; i < n; i++)
        worst = fmax(worst, fabs(g[i] + FD_ALPHA * u[i]) / scale);
    return worst;
}

static void test_meta_gradient(void)
{
    l2rw_net *net = bn_net(5);
    CHECK(net != NULL, "bn net: %s", l2rw_last_error());
    if (!net) return;
    float x[FD_N * D], vx[FD_M * D], u[FD_N], ul[FD_N];
    int32_t y[FD_N], vy[FD_M];
    fill(x, y, FD_N, 21);
    fill(vx, vy, FD_M, 22);
    size_t ns = l2rw_net_num_state(net);
    float *st0 = malloc(ns * sizeof(float));
    memcpy(st0, l2rw_net_state(net), ns * sizeof(float));
    CHECK_OK(l2rw_meta_scores(net, L2RW_META_ALL, L2RW_MODE_TRAIN_FROZEN, x,
                              y, FD_N, vx, vy, FD_M, u, NULL, NULL));
    CHECK(memcmp(st0, l2rw_net_state(net), ns * sizeof(float)) == 0,
          "TRAIN_FROZEN scores leave the running averages alone");
    CHECK_OK(l2rw_meta_scores(net, L2RW_META_LAST, L2RW_MODE_TRAIN_FROZEN,
                              x, y, FD_N, vx, vy, FD_M, ul, NULL, NULL));
    double g[FD_N];
    fd_meta(net, x, y, vx, vy, g);
    double e = rel_err(g, u, FD_N);
    printf("meta gradient vs definition (conv-bn-relu-dense, n=%d m=%d): "
           "max |g + alpha u| / max |alpha u| = %.3g (tol %.0e)\n", FD_N,
           FD_M, e, FD_TOL);
    CHECK(e <= FD_TOL, "meta gradient identity: rel err %g", e);
    /* the check can fail: the last-layer scores are a different
     * quantity and must be far from the definition */
    double el = rel_err(g, ul, FD_N);
    printf("last-layer scores vs the same definition: %.3g (must be > "
           "%.0e)\n", el, 10 * FD_TOL);
    CHECK(el > 10 * FD_TOL, "last-layer scores differ from the exact ones");
    int pos = 0;
    for (int i = 0; i < FD_N; i++) pos += u[i] > 0.0f;
    CHECK(pos > 0 && pos < FD_N, "a mixed batch (%d positive of %d)", pos,
          FD_N);
    free(st0);
    l2rw_net_free(net);
}

/* ---------------- the per-example path (no batch norm) vs the definition
 *
 * Nets without batch norm take the per-example L2RW path automatically
 * (reweight.c step_l2rw_each: u from l2rw__net_scores_each, no tangent
 * pass). Its u is checked here directly against the finite-difference
 * definition g_i = d/d eps_i L_v(theta - alpha grad sum_k eps_k l_k)
 * (fd_meta above: losses summed in double, theta - alpha grad formed in
 * double), -g_i / alpha = u_i, and the weights of the method step against
 * the weights max(-g_i, 0) / sum_k max(-g_k, 0) of the definition.
 *
 * Tolerance: FD_TOL = 1e-3 on max_i |g_i + alpha u_i| / max_k |alpha u_k|,
 * the budget of test_meta_gradient (float32 engine: the rounding of L_v,
 * ~1e-7, over 2h = 2e-2 is ~5e-6 on g against max |alpha u| ~ 1e-2..1e-1;
 * the parameters move by s = alpha h = 1e-3 times a gradient, so the
 * truncation error O(s^2) and a rare crossed ReLU / max-pool kink O(s)
 * stay near 1e-4). A wrong layer, sign or example is off by O(1e-1..1).
 * The weights: with |alpha u_i + g_i| <= d = FD_TOL max|alpha u| for all
 * i, the positive parts differ by at most d each and their sums by n d,
 * so |w_i - w_fd_i| <= (n + 1) d / sum_k max(-g_k, 0). */

/* conv(bias) - relu - maxpool - conv(stride 2, no bias) - relu - dense -
 * relu - dense: LeNet's layer kinds, no batch norm, no dropout. */
static l2rw_net *lenet_like_net(uint64_t seed)
{
    l2rw_graph *g = NULL;
    l2rw_net *net = NULL;
    if (l2rw__graph_new(&g, C, H, W) != L2RW_OK) return NULL;
    int x = l2rw__g_conv(g, 0, 4, 3, 1, 1, 1);
    x = l2rw__g_maxpool(g, l2rw__g_relu(g, x), 2, 2);
    x = l2rw__g_relu(g, l2rw__g_conv(g, x, 5, 3, 2, 1, 0));
    x = l2rw__g_relu(g, l2rw__g_dense(g, x, 6));
    x = l2rw__g_dense(g, x, K);
    if (l2rw__graph_compile(g, x, "test-lenet-like", K, MAXB, seed, &net) !=
        L2RW_OK)
        return NULL;
    return net;
}

/* a: u from the per-example path, then g by differences; b (a twin of
 * a): one L2RW method step, whose weights are compared with g's. */
static void check_meta_each(l2rw_net *a, l2rw_net *b, const char *what)
{
    CHECK(a && b, "%s: %s", what, l2rw_last_error());
    if (!a || !b) return;
    CHECK(l2rw__net_each_ok(a), "%s takes the per-example path", what);
    float x[FD_N * D], vx[FD_M * D], u[FD_N], w[FD_N];
    int32_t y[FD_N], vy[FD_M];
    fill(x, y, FD_N, 61);
    fill(vx, vy, FD_M, 62);
    /* v = grad L_v into the tangent buffer; training forward without
     * tangents; u_i = <v, grad l_i> from the per-example captures */
    CHECK_OK(l2rw_net_forward(a, vx, FD_M, L2RW_MODE_TRAIN_FROZEN, 0));
    CHECK_OK(l2rw_net_loss(a, vy, NULL, NULL, NULL));
    CHECK_OK(l2rw_net_backward(a, NULL));
    const size_t np = l2rw_net_num_params(a);
    memcpy(l2rw_net_tangents(a), l2rw_net_grads(a), np * sizeof(float));
    CHECK_OK(l2rw_net_forward(a, x, FD_N, L2RW_MODE_TRAIN_FROZEN, 0));
    CHECK_OK(l2rw_net_loss(a, y, NULL, NULL, NULL));
    CHECK_OK(l2rw__net_scores_each(a, u));
    double g[FD_N], g2[FD_N], dh = 0.0;
    fd_meta(a, x, y, vx, vy, g);
    /* No ReLU or max-pool kink within the step (the differences at h and
     * h/2 agree): only then is the comparison with a derivative
     * meaningful. The data and the net's seed are fixed; this asserts that
     * they give such a point (a new seed may not: then pick another). */
    fd_meta_h(a, x, y, vx, vy, FD_H / 2, g2);
    for (int i = 0; i < FD_N; i++) g2[i] -= g[i];
    for (int i = 0; i < FD_N; i++) dh = fmax(dh, fabs(g2[i]));
    const double e = rel_err(g, u, FD_N);
    double amax0 = 0.0;
    for (int i = 0; i < FD_N; i++) amax0 = fmax(amax0, fabs(FD_ALPHA * u[i]));
    CHECK(dh <= 0.5 * FD_TOL * amax0,
          "%s: differences at h and h/2 differ by %g (a kink within the "
          "step; max |alpha u| %g)", what, dh, amax0);
    printf("per-example path vs definition (%s, n=%d m=%d): max |g + alpha "
           "u| / max |alpha u| = %.3g (tol %.0e); fd at h vs h/2: %.3g\n",
           what, FD_N, FD_M, e, FD_TOL, dh / fmax(amax0, 1e-30));
    CHECK(e <= FD_TOL, "%s: per-example meta gradient: rel err %g", what, e);
    int pos = 0;
    double amax = 0.0, sfd = 0.0;
    for (int i = 0; i < FD_N; i++) {
        pos += u[i] > 0.0f;
        amax = fmax(amax, fabs(FD_ALPHA * u[i]));
        sfd += fmax(-g[i], 0.0);
    }
    CHECK(pos > 0 && pos < FD_N, "%s: a mixed batch (%d positive of %d)",
          what, pos, FD_N);
    /* the method step (per-example path) on the twin */
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_L2RW, b, NULL, 0, 0, 1);
    l2rw_sgd *o = sgd(b, 0.0f);
    l2rw_step_stats st;
    if (m && o)
        CHECK_OK(l2rw_method_step(m, b, o, 0, x, y, NULL, FD_N, vx, vy, FD_M,
                                  &st, w));
    const double tol = (FD_N + 1) * FD_TOL * amax / fmax(sfd, 1e-30);
    double dw = 0.0;
    for (int i = 0; m && o && i < FD_N; i++)
        dw = fmax(dw, fabs((double)w[i] - fmax(-g[i], 0.0) / sfd));
    printf("  step weights vs the definition's: max diff %.3g (tol %.3g)\n",
           dw, tol);
    CHECK(sfd > 0.0 && dw <= tol, "%s: step weights vs definition: %g (tol %g)",
          what, dw, tol);
    l2rw_method_free(m);
    l2rw_sgd_free(o);
}

static void test_meta_gradient_each_lenet_like(void)
{
    /* seed 7: a point with no kink within the step (see check_meta_each) */
    l2rw_net *a = lenet_like_net(7), *b = lenet_like_net(7);
    check_meta_each(a, b, "conv-relu-pool-conv-relu-dense-relu-dense");
    l2rw_net_free(a);
    l2rw_net_free(b);
}

static void test_meta_gradient_each_mlp(void)
{
    l2rw_net *a = mlp_net(5), *b = mlp_net(5);
    check_meta_each(a, b, "mlp:8");
    l2rw_net_free(a);
    l2rw_net_free(b);
}

/* Scores equal <v, grad l_i> from per-example backwards (all and last). */
l2rw_status l2rw__reweight_scores_vs_backward(l2rw_net *net,
                                              l2rw_meta_params meta,
                                              const float *x,
                                              const int32_t *y, int n,
                                              const float *vx,
                                              const int32_t *vy, int m,
                                              double *max_rel);

static void test_scores_vs_backward(void)
{
    l2rw_net *net = bn_net(9);
    if (!net) return;
    float x[8 * D], vx[5 * D];
    int32_t y[8], vy[5];
    fill(x, y, 8, 31);
    fill(vx, vy, 5, 32);
    for (int meta = 0; meta < 2; meta++) {
        double e = 1.0;
        CHECK_OK(l2rw__reweight_scores_vs_backward(
            net, (l2rw_meta_params)meta, x, y, 8, vx, vy, 5, &e));
        printf("scores (%s) vs <v, grad l_i>: %.3g\n",
               l2rw_meta_params_name((l2rw_meta_params)meta), e);
        CHECK(e <= 1e-4, "scores vs backward (%d): %g", meta, e);
    }
    l2rw_net_free(net);
}

/* ---------------------------------------------------------- l2rw step */

static void test_l2rw_step(void)
{
    enum { N = 16, M = 8 };
    l2rw_net *a = bn_net(3), *b = bn_net(3), *c = bn_net(3);
    l2rw_sgd *oa = sgd(a, 0.9f), *ob = sgd(b, 0.9f), *oc = sgd(c, 0.9f);
    float x[N * D], vx[M * D], u[N], w[N], wref[N];
    int32_t y[N], yt[N], vy[M];
    fill(x, y, N, 41);
    fill(vx, vy, M, 42);
    for (int i = 0; i < N; i++) yt[i] = i % 4 ? y[i] : (y[i] + 1) % K;
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_L2RW, a, NULL, 0, 0, 1);
    size_t np = l2rw_net_num_params(a);
    float *before = malloc(np * sizeof(float));
    memcpy(before, l2rw_net_params(a), np * sizeof(float));
    /* reference weights from the scores on a twin */
    CHECK_OK(l2rw_meta_scores(b, L2RW_META_ALL, L2RW_MODE_TRAIN_FROZEN, x, y,
                              N, vx, vy, M, u, NULL, NULL));
    int pos = 0;
    CHECK_OK(l2rw_weights_from_scores(u, N, wref, &pos));
    l2rw_step_stats st;
    CHECK_OK(l2rw_method_step(m, a, oa, 0, x, y, yt, N, vx, vy, M, &st, w));
    CHECK(memcmp(w, wref, sizeof w) == 0, "l2rw weights = normalised u");
    double sum = 0.0, clean = 0.0;
    int zero = 0;
    for (int i = 0; i < N; i++) {
        sum += w[i];
        zero += w[i] == 0.0f;
        if (y[i] == yt[i]) clean += w[i];
        CHECK((w[i] > 0.0f) == (u[i] > 0.0f), "w_%d > 0 iff u_%d > 0", i, i);
    }
    CHECK_CLOSE(sum, 1.0, 1e-6, 0, "weights sum to 1");
    CHECK_CLOSE(st.weight_sum, sum, 1e-12, 0, "stats weight sum");
    CHECK(st.n_zero == zero && zero == N - pos, "stats zero count");
    CHECK_CLOSE(st.clean_mass, clean / sum, 1e-9, 0, "stats clean mass");
    CHECK(st.updated && !st.all_nonpositive && !st.warmup, "stats flags");
    CHECK(isfinite(st.val_loss) && st.val_loss > 0, "val loss %g",
          st.val_loss);
    /* the update is the weighted step with these weights; the running
     * averages move once, from the training batch only */
    CHECK_OK(l2rw_weighted_step(c, oc, 0, x, y, N, NULL, wref, NULL));
    double d = param_diff(a, c, before);
    printf("l2rw step vs weighted step with its weights: rel diff %.3g\n", d);
    CHECK(d <= 1e-5, "l2rw step == weighted step: %g", d);
    size_t ns = l2rw_net_num_state(a);
    double sd = 0.0;
    for (size_t k = 0; k < ns; k++)
        sd = fmax(sd, fabs((double)l2rw_net_state(a)[k] - l2rw_net_state(c)[k]));
    CHECK(sd <= 1e-6, "running averages as one training forward: %g", sd);
    /* missing validation batch */
    CHECK(l2rw_method_step(m, a, oa, 1, x, y, NULL, N, NULL, NULL, 0, NULL,
                           NULL) != L2RW_OK, "l2rw needs a validation batch");
    CHECK(l2rw_method_needs_validation(m, 0) == 1, "needs validation");
    free(before);
    l2rw_method_free(m);
    l2rw_sgd_free(oa), l2rw_sgd_free(ob), l2rw_sgd_free(oc);
    l2rw_net_free(a), l2rw_net_free(b), l2rw_net_free(c);
}

/* meta-params last through the step: w = normalised last-layer scores.
 * A dropout net: the step sets its own dropout keys from (seed, step), so
 * two twins stepping through the same steps stay bit-identical, and the
 * weights differ between steps (the masks change). */
static void test_l2rw_last_and_dropout(void)
{
    enum { N = 12, M = 6 };
    float x[N * D], vx[M * D], u[N], w[N], wref[N];
    int32_t y[N], vy[M];
    fill(x, y, N, 141);
    fill(vx, vy, M, 142);
    l2rw_net *a = bn_net(3), *b = bn_net(3);
    l2rw_sgd *oa = sgd(a, 0.9f);
    l2rw_method_cfg c = l2rw_method_cfg_default();
    c.method = L2RW_METHOD_L2RW;
    c.meta_params = L2RW_META_LAST;
    l2rw_method_ctx *m = NULL;
    CHECK_OK(l2rw_method_create(&m, &c, a));
    CHECK_OK(l2rw_meta_scores(b, L2RW_META_LAST, L2RW_MODE_TRAIN_FROZEN, x, y,
                              N, vx, vy, M, u, NULL, NULL));
    CHECK_OK(l2rw_weights_from_scores(u, N, wref, NULL));
    CHECK_OK(l2rw_method_step(m, a, oa, 0, x, y, NULL, N, vx, vy, M, NULL, w));
    /* the step may compute the same scores without a tangent pass (from
     * the last layer's inputs, when the engine exposes them): float32
     * rounding of another evaluation order */
    double wmax = 0.0, wd_ = 0.0;
    for (int i = 0; i < N; i++) wmax = fmax(wmax, wref[i]);
    for (int i = 0; i < N; i++) wd_ = fmax(wd_, fabs((double)w[i] - wref[i]));
    printf("meta-params last: step weights vs masked-tangent scores: %.3g\n",
           wd_ / wmax);
    CHECK(wd_ <= 1e-5 * wmax, "last: w = normalised scores (%g)", wd_ / wmax);
    l2rw_method_free(m);
    l2rw_sgd_free(oa);
    l2rw_net_free(a), l2rw_net_free(b);

    l2rw_net *d[2] = {NULL, NULL};
    l2rw_sgd *od[2] = {NULL, NULL};
    l2rw_method_ctx *md[2] = {NULL, NULL};
    float wd[2][3][N];
    for (int t = 0; t < 2; t++) {
        l2rw_graph *g = NULL;
        CHECK_OK(l2rw__graph_new(&g, C, H, W));
        int h = l2rw__g_relu(g, l2rw__g_dense(g, 0, 16));
        h = l2rw__g_dense(g, l2rw__g_dropout(g, h, 0.5f), K);
        CHECK_OK(l2rw__graph_compile(g, h, "test-dropout", K, MAXB, 5, &d[t]));
        if (!d[t]) return;
        od[t] = sgd(d[t], 0.9f);
        md[t] = ctx_of(L2RW_METHOD_L2RW, d[t], NULL, 0, 0, 9);
        for (long s = 0; s < 3; s++) {
            /* whatever key the caller left, the step uses its own */
            if (t == 1) l2rw_net_set_dropout_key(d[t], 0xdead0000u + (uint64_t)s);
            CHECK_OK(l2rw_method_step(md[t], d[t], od[t], s, x, y, NULL, N,
                                      vx, vy, M, NULL, wd[t][s]));
        }
    }
    CHECK(same_params(d[0], d[1]) && memcmp(wd[0], wd[1], sizeof wd[0]) == 0,
          "dropout net: repeatable from (seed, step)");
    CHECK(memcmp(wd[0][1], wd[0][2], sizeof wd[0][1]) != 0,
          "weights change between steps");
    for (int t = 0; t < 2; t++) {
        l2rw_method_free(md[t]);
        l2rw_sgd_free(od[t]);
        l2rw_net_free(d[t]);
    }
}

/* A single training example whose gradient opposes the validation
 * gradient: u < 0, so no update, flagged, step still counted. */
static void test_l2rw_nonpositive(void)
{
    l2rw_net *a = mlp_net(4);
    l2rw_sgd *oa = sgd(a, 0.9f);
    float x[D], u[1], w[1] = {-1.0f};
    int32_t y[1], vy[1] = {0};
    fill(x, y, 1, 51);
    int found = 0;
    for (int c = 0; c < K && !found; c++) {
        vy[0] = c; /* validation: the same input with another label */
        CHECK_OK(l2rw_meta_scores(a, L2RW_META_ALL, L2RW_MODE_TRAIN_FROZEN, x,
                                  y, 1, x, vy, 1, u, NULL, NULL));
        found = u[0] < 0.0f;
    }
    CHECK(found, "a label with u < 0 exists");
    size_t np = l2rw_net_num_params(a);
    float *before = malloc(np * sizeof(float));
    memcpy(before, l2rw_net_params(a), np * sizeof(float));
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_L2RW, a, NULL, 0, 0, 1);
    l2rw_step_stats st;
    CHECK_OK(l2rw_method_step(m, a, oa, 0, x, y, NULL, 1, x, vy, 1, &st, w));
    CHECK(st.all_nonpositive == 1 && st.updated == 0 && st.weight_sum == 0.0,
          "flagged, no update");
    CHECK(w[0] == 0.0f && st.n_zero == 1, "zero weight");
    CHECK(isnan(st.clean_mass), "clean mass undefined without y_true");
    CHECK(memcmp(before, l2rw_net_params(a), np * sizeof(float)) == 0,
          "parameters untouched");
    const float *vel = l2rw_sgd_velocity(oa);
    int vz = 1;
    for (size_t k = 0; k < np; k++) vz &= vel[k] == 0.0f;
    CHECK(vz, "momentum not advanced");
    l2rw_stats_window win;
    l2rw_stats_window_reset(&win);
    l2rw_stats_window_add(&win, &st);
    l2rw_step_stats mean;
    l2rw_stats_window_mean(&win, &mean);
    CHECK(win.steps == 1 && mean.all_nonpositive == 1 && mean.updated == 0,
          "window counts the step");
    free(before);
    l2rw_method_free(m);
    l2rw_sgd_free(oa);
    l2rw_net_free(a);
}

/* ------------------------------------------------------- invariants */

/* Explicit forward, loss, backward(NULL), SGD step. */
static void plain_ref(l2rw_net *net, l2rw_sgd *o, long step, const float *x,
                      const int32_t *y, int n)
{
    CHECK_OK(l2rw_net_forward(net, x, n, L2RW_MODE_TRAIN, 0));
    CHECK_OK(l2rw_net_loss(net, y, NULL, NULL, NULL));
    CHECK_OK(l2rw_net_backward(net, NULL));
    CHECK_OK(l2rw_sgd_step(o, net, step));
}

/* Methods whose weights are uniform here reproduce plain training bit for
 * bit over several steps (BN net, momentum). */
static void test_uniform_is_plain(void)
{
    enum { N = 12, STEPS = 4 };
    float x[N * D], vx[4 * D];
    int32_t y[N], vy[4], ty[60];
    fill(x, y, N, 61);
    fill(vx, vy, 4, 62);
    for (int i = 0; i < 60; i++) ty[i] = i % K; /* balanced counts */
    const l2rw_method meths[] = {L2RW_METHOD_PLAIN, L2RW_METHOD_RESAMPLE,
                                 L2RW_METHOD_PROPORTION,
                                 L2RW_METHOD_HARD_MINING, L2RW_METHOD_L2RW};
    for (size_t k = 0; k < sizeof meths / sizeof *meths; k++) {
        l2rw_net *a = bn_net(8), *b = bn_net(8);
        l2rw_sgd *oa = sgd(a, 0.9f), *ob = sgd(b, 0.9f);
        /* l2rw is uniform only during its warmup */
        long warm = meths[k] == L2RW_METHOD_L2RW ? STEPS : 0;
        l2rw_method_ctx *m = ctx_of(meths[k], a, ty, 60, warm, 2);
        float w[N];
        for (long s = 0; s < STEPS; s++) {
            l2rw_step_stats st;
            CHECK_OK(l2rw_method_step(m, a, oa, s, x, y, NULL, N, vx, vy, 4,
                                      &st, w));
            plain_ref(b, ob, s, x, y, N);
            CHECK(st.n_zero == 0 && st.warmup == (warm > 0), "stats of %s",
                  l2rw_method_name(meths[k]));
        }
        CHECK(same_params(a, b), "%s == plain bit for bit",
              l2rw_method_name(meths[k]));
        CHECK(w[0] == 1.0f / N && w[N - 1] == 1.0f / N, "uniform w_out");
        l2rw_method_free(m);
        l2rw_sgd_free(oa), l2rw_sgd_free(ob);
        l2rw_net_free(a), l2rw_net_free(b);
    }
    /* an explicit weight vector 1/n == backward(NULL) */
    l2rw_net *a = bn_net(8), *b = bn_net(8);
    l2rw_sgd *oa = sgd(a, 0.9f), *ob = sgd(b, 0.9f);
    float w[N];
    for (int i = 0; i < N; i++) w[i] = 1.0f / N;
    for (long s = 0; s < STEPS; s++) {
        CHECK_OK(l2rw_weighted_step(a, oa, s, x, y, N, NULL, w, NULL));
        plain_ref(b, ob, s, x, y, N);
    }
    CHECK(same_params(a, b), "weights 1/n == plain bit for bit");
    l2rw_sgd_free(oa), l2rw_sgd_free(ob);
    l2rw_net_free(a), l2rw_net_free(b);
}

/* bootstrap-soft/hard, gce, sce: uniform weights with their loss, i.e. a
 * weighted step with that loss and NULL weights, bit for bit; and not
 * the cross-entropy step (the loss really changes). finetune == plain. */
static void test_loss_methods(void)
{
    enum { N = 10 };
    float x[N * D];
    int32_t y[N];
    fill(x, y, N, 65);
    const l2rw_method meths[] = {L2RW_METHOD_BOOTSTRAP_SOFT,
                                 L2RW_METHOD_BOOTSTRAP_HARD, L2RW_METHOD_GCE,
                                 L2RW_METHOD_SCE};
    for (size_t k = 0; k < sizeof meths / sizeof *meths; k++) {
        l2rw_net *a = bn_net(4), *b = bn_net(4), *c = bn_net(4);
        l2rw_sgd *oa = sgd(a, 0.9f), *ob = sgd(b, 0.9f), *oc = sgd(c, 0.9f);
        l2rw_method_ctx *m = ctx_of(meths[k], a, NULL, 0, 0, 1);
        l2rw_loss lk = l2rw_method_loss(meths[k]);
        for (long s = 0; s < 2; s++) {
            CHECK_OK(l2rw_method_step(m, a, oa, s, x, y, NULL, N, NULL, NULL,
                                      0, NULL, NULL));
            CHECK_OK(l2rw_weighted_step(b, ob, s, x, y, N, &lk, NULL, NULL));
            plain_ref(c, oc, s, x, y, N);
        }
        CHECK(same_params(a, b), "%s == its loss, uniform weights",
              l2rw_method_name(meths[k]));
        CHECK(!same_params(a, c), "%s differs from cross entropy",
              l2rw_method_name(meths[k]));
        l2rw_method_free(m);
        l2rw_sgd_free(oa), l2rw_sgd_free(ob), l2rw_sgd_free(oc);
        l2rw_net_free(a), l2rw_net_free(b), l2rw_net_free(c);
    }
    /* fine-tuning is a plain step whatever the method */
    l2rw_net *a = bn_net(4), *b = bn_net(4);
    l2rw_sgd *oa = sgd(a, 0.9f), *ob = sgd(b, 0.9f);
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_GCE, a, NULL, 0, 0, 1);
    l2rw_step_stats st;
    for (long s = 0; s < 2; s++) {
        CHECK_OK(l2rw_finetune_step(m, a, oa, s, x, y, N, &st));
        plain_ref(b, ob, s, x, y, N);
    }
    CHECK(same_params(a, b) && st.updated && st.n_zero == 0,
          "finetune == plain");
    l2rw_method_free(m);
    l2rw_sgd_free(oa), l2rw_sgd_free(ob);
    l2rw_net_free(a), l2rw_net_free(b);
}

/* Zero weight == removing the example (no batch norm). */
static void test_zero_is_removal(void)
{
    enum { N = 9, DROP = 4 };
    float x[N * D], xr[(N - 1) * D], w[N];
    int32_t y[N], yr[N - 1];
    fill(x, y, N, 71);
    for (int i = 0, j = 0; i < N; i++) {
        w[i] = i == DROP ? 0.0f : 1.0f / (N - 1);
        if (i == DROP) continue;
        memcpy(xr + (size_t)j * D, x + (size_t)i * D, D * sizeof(float));
        yr[j++] = y[i];
    }
    l2rw_net *a = mlp_net(6), *b = mlp_net(6);
    l2rw_sgd *oa = sgd(a, 0.0f), *ob = sgd(b, 0.0f);
    size_t np = l2rw_net_num_params(a);
    float *before = malloc(np * sizeof(float));
    memcpy(before, l2rw_net_params(a), np * sizeof(float));
    CHECK_OK(l2rw_weighted_step(a, oa, 0, x, y, N, NULL, w, NULL));
    CHECK_OK(l2rw_weighted_step(b, ob, 0, xr, yr, N - 1, NULL, NULL, NULL));
    /* same sums in another order: float32 rounding of the update only */
    double d = param_diff(a, b, before);
    printf("zero weight vs removed example: rel diff of the update %.3g\n", d);
    CHECK(d <= 1e-5, "zero weight == removal: %g", d);
    free(before);
    l2rw_sgd_free(oa), l2rw_sgd_free(ob);
    l2rw_net_free(a), l2rw_net_free(b);
}

/* Scaling the scores by c > 0 leaves the normalised weights unchanged. */
static void test_scale_invariance(void)
{
    enum { N = 20 };
    float s[N], s4[N], s37[N], w[N], w4[N], w37[N];
    l2rw_rng r;
    l2rw_rng_seed(&r, 81);
    for (int i = 0; i < N; i++) {
        s[i] = (float)l2rw_rng_normal(&r);
        s4[i] = 4.0f * s[i];
        s37[i] = 3.7f * s[i];
    }
    int p = 0, p4 = 0, p37 = 0;
    CHECK_OK(l2rw_weights_from_scores(s, N, w, &p));
    CHECK_OK(l2rw_weights_from_scores(s4, N, w4, &p4));
    CHECK_OK(l2rw_weights_from_scores(s37, N, w37, &p37));
    CHECK(p == p4 && p == p37 && p > 0, "same support");
    CHECK(memcmp(w, w4, sizeof w) == 0, "power-of-two scale: same bits");
    double worst = 0.0;
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs((double)w[i] - w37[i]) / fmax(w[i], 1e-30));
    /* 3.7 s rounds each score (2^-24) and the division rounds again */
    CHECK(worst <= 4e-7, "scale 3.7: rel diff %g", worst);
    /* the steps with both weight vectors agree to that rounding */
    float x[N * D];
    int32_t y[N];
    fill(x, y, N, 82);
    l2rw_net *a = bn_net(2), *b = bn_net(2);
    l2rw_sgd *oa = sgd(a, 0.0f), *ob = sgd(b, 0.0f);
    size_t np = l2rw_net_num_params(a);
    float *before = malloc(np * sizeof(float));
    memcpy(before, l2rw_net_params(a), np * sizeof(float));
    CHECK_OK(l2rw_weighted_step(a, oa, 0, x, y, N, NULL, w, NULL));
    CHECK_OK(l2rw_weighted_step(b, ob, 0, x, y, N, NULL, w37, NULL));
    double d = param_diff(a, b, before);
    CHECK(d <= 1e-5, "scaled scores give the same step: %g", d);
    /* all scores <= 0: zero weights */
    for (int i = 0; i < N; i++) s[i] = -fabsf(s[i]);
    s[3] = 0.0f;
    CHECK(l2rw_weights_normalise(s, N, w) == 0 && w[3] == 0.0f && w[0] == 0.0f,
          "nonpositive scores: w = 0");
    s[5] = NAN;
    CHECK(l2rw_weights_from_scores(s, N, w, &p) == L2RW_ERR_NUMERIC, "NaN");
    w[0] = -1.0f;
    CHECK(l2rw_weighted_step(a, oa, 1, x, y, N, NULL, w, NULL) == L2RW_ERR_ARG,
          "negative weight rejected");
    free(before);
    l2rw_sgd_free(oa), l2rw_sgd_free(ob);
    l2rw_net_free(a), l2rw_net_free(b);
}

/* --------------------------------------------------- distributions */

/* random: each weight is zero with probability 1/2 (z <= 0), so the zero
 * count over T steps of n is Binomial(Tn, 1/2); and q = mean(w+^2) /
 * mean(w+)^2 over the positive weights of a step (scale free) has mean
 * 1.5561 for n = 64 (E z^2 / (E z)^2 = pi/2 for the half normal, minus
 * the small-sample bias; 2e5 simulated batches, sd 0.148 per step), so
 * its mean over T = 200 steps has sd 0.0104: bound 5 sd = 0.052. Uniform
 * weights over the positives would give 1, exponential ones 2. */
static void test_random(void)
{
    enum { N = 64, T = 200 };
    l2rw_net *a = mlp_net(1);
    l2rw_sgd *oa = sgd(a, 0.0f);
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_RANDOM, a, NULL, 0, 0, 123);
    float x[N * D], w[N], w2[N];
    int32_t y[N];
    fill(x, y, N, 91);
    long zeros = 0;
    double qsum = 0.0;
    for (long s = 0; s < T; s++) {
        l2rw_step_stats st;
        CHECK_OK(l2rw_method_step(m, a, oa, s, x, y, NULL, N, NULL, NULL, 0,
                                  &st, w));
        double m1 = 0.0, m2 = 0.0;
        int pos = 0;
        for (int i = 0; i < N; i++)
            if (w[i] > 0.0f) {
                m1 += w[i], m2 += (double)w[i] * w[i], pos++;
            }
        zeros += N - pos;
        qsum += (m2 / pos) / ((m1 / pos) * (m1 / pos));
        if (st.n_zero != N - pos) CHECK(0, "stats zero count at step %ld", s);
    }
    double mean = 0.5 * N * T, sd = sqrt(0.25 * N * T);
    printf("random: %ld zero weights of %d (expected %.0f, sd %.1f); "
           "q = %.4f (expected 1.5561 +- 0.052)\n", zeros, N * T, mean, sd,
           qsum / T);
    CHECK(fabs((double)zeros - mean) <= 5 * sd, "zero share binomial");
    CHECK(fabs(qsum / T - 1.5561) <= 0.052, "half-normal shape q=%g",
          qsum / T);
    /* a pure function of (seed, step): step 7 again gives the same w */
    l2rw_method_ctx *m2 = ctx_of(L2RW_METHOD_RANDOM, a, NULL, 0, 0, 123);
    CHECK_OK(l2rw_method_step(m, a, oa, 7, x, y, NULL, N, NULL, NULL, 0,
                              NULL, w));
    CHECK_OK(l2rw_method_step(m2, a, oa, 7, x, y, NULL, N, NULL, NULL, 0,
                              NULL, w2));
    CHECK(memcmp(w, w2, sizeof w) == 0, "random weights repeat per step");
    l2rw_method_free(m), l2rw_method_free(m2);
    l2rw_sgd_free(oa);
    l2rw_net_free(a);
}

/* resample: 3 classes with 900, 90 and 10 examples; every draw is a
 * class with probability 1/3 (Binomial(N, 1/3) counts, 5 sd) and, within
 * class 2, each of its 10 examples with probability 1/10 (5 sd). */
static void test_resample(void)
{
    enum { NT = 1000, B = 100, T = 100 };
    int32_t *ty = malloc(NT * sizeof(int32_t));
    for (int i = 0; i < NT; i++) ty[i] = i < 900 ? 0 : i < 990 ? 1 : 2;
    /* interleave so that classes are not contiguous */
    for (int i = 0; i < NT; i++) {
        int j = (i * 7919) % NT;
        int32_t t = ty[i];
        ty[i] = ty[j], ty[j] = t;
    }
    l2rw_net *a = mlp_net(1);
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_RESAMPLE, a, ty, NT, 5, 77);
    CHECK(l2rw_method_needs_balanced_batches(m, 4) == 0, "warmup: plain");
    CHECK(l2rw_method_needs_balanced_batches(m, 5) == 1, "then balanced");
    long cls[K] = {0}, *per = calloc(NT, sizeof(long));
    int32_t idx[B], idx2[B];
    for (long s = 0; s < T; s++) {
        CHECK_OK(l2rw_method_balanced_batch(m, s, B, idx));
        for (int i = 0; i < B; i++) {
            if (idx[i] < 0 || idx[i] >= NT) {
                CHECK(0, "index in range");
                continue;
            }
            cls[ty[idx[i]]]++;
            per[idx[i]]++;
        }
    }
    double n = (double)B * T, e = n / 3, sd = sqrt(n * (1.0 / 3) * (2.0 / 3));
    printf("resample: class counts %ld %ld %ld (expected %.0f, sd %.1f)\n",
           cls[0], cls[1], cls[2], e, sd);
    for (int c = 0; c < K; c++)
        CHECK(fabs(cls[c] - e) <= 5 * sd, "class %d frequency", c);
    double e2 = cls[2] / 10.0, sd2 = sqrt(cls[2] * 0.1 * 0.9);
    for (int i = 0; i < NT; i++)
        if (ty[i] == 2)
            CHECK(fabs(per[i] - e2) <= 5 * sd2, "example %d of class 2: %ld",
                  i, per[i]);
    CHECK_OK(l2rw_method_balanced_batch(m, 3, B, idx));
    CHECK_OK(l2rw_method_balanced_batch(m, 3, B, idx2));
    CHECK(memcmp(idx, idx2, sizeof idx) == 0, "pure function of the step");
    l2rw_method_ctx *pl = ctx_of(L2RW_METHOD_PLAIN, a, NULL, 0, 0, 1);
    CHECK(l2rw_method_balanced_batch(pl, 0, B, idx) == L2RW_ERR_ARG,
          "only resample draws balanced batches");
    l2rw_method_cfg c = l2rw_method_cfg_default();
    c.method = L2RW_METHOD_RESAMPLE;
    l2rw_method_ctx *bad = NULL;
    CHECK(l2rw_method_create(&bad, &c, a) == L2RW_ERR_ARG && !bad,
          "resample without labels rejected");
    free(per);
    free(ty);
    l2rw_method_free(m), l2rw_method_free(pl);
    l2rw_net_free(a);
}

/* hard-mining keeps exactly minority + the k = max(M,1) highest-loss
 * majority examples. Counts 0: 50, 1: 5, 2: 5 -> mean 20, class 0 is the
 * majority. */
static void hm_case(l2rw_net *a, l2rw_sgd *oa, l2rw_method_ctx *m,
                    const int32_t *y, int n, long step, uint64_t seed)
{
    float x[32 * D], loss[32], w[32];
    int32_t yy[32];
    fill(x, yy, n, seed);
    /* losses at the parameters before the step (mlp: mode irrelevant) */
    CHECK_OK(l2rw_net_forward(a, x, n, L2RW_MODE_TRAIN_FROZEN, 0));
    CHECK_OK(l2rw_net_loss(a, y, NULL, loss, NULL));
    l2rw_step_stats st;
    CHECK_OK(l2rw_method_step(m, a, oa, step, x, y, NULL, n, NULL, NULL, 0,
                              &st, w));
    int minority = 0, nmaj = 0;
    for (int i = 0; i < n; i++) minority += y[i] != 0, nmaj += y[i] == 0;
    int k = minority > 0 ? minority : 1;
    if (k > nmaj) k = nmaj;
    int kept = 0;
    for (int i = 0; i < n; i++) {
        int keep;
        if (y[i] != 0) {
            keep = 1;
        } else { /* rank among majority: higher loss or equal and earlier */
            int rank = 0;
            for (int j = 0; j < n; j++)
                if (y[j] == 0 && (loss[j] > loss[i] ||
                                  (loss[j] == loss[i] && j < i)))
                    rank++;
            keep = rank < k;
        }
        kept += keep;
        float want = keep ? 1.0f / (float)(minority + k) : 0.0f;
        CHECK(w[i] == want || (minority + k == n && w[i] == 1.0f / n),
              "hard-mining w_%d = %g, want %g (M=%d)", i, (double)w[i],
              (double)want, minority);
    }
    CHECK(kept == minority + k, "kept %d", kept);
    CHECK(st.n_zero == n - kept, "stats zero count");
}

static void test_hard_mining(void)
{
    int32_t ty[60];
    for (int i = 0; i < 60; i++) ty[i] = i < 50 ? 0 : i < 55 ? 1 : 2;
    l2rw_net *a = mlp_net(12);
    l2rw_sgd *oa = sgd(a, 0.0f);
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_HARD_MINING, a, ty, 60, 0, 1);
    int32_t y0[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};      /* M=0: keep 1 */
    int32_t y3[12] = {0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0}; /* M=3 */
    int32_t y6[8] = {1, 2, 0, 1, 2, 0, 1, 1};              /* M=6 > 2 maj */
    hm_case(a, oa, m, y0, 10, 0, 101);
    hm_case(a, oa, m, y3, 12, 1, 102);
    hm_case(a, oa, m, y6, 8, 2, 103);
    int32_t bad[2] = {0, 5};
    float x[2 * D];
    CHECK(l2rw_method_step(m, a, oa, 3, x, bad, NULL, 2, NULL, NULL, 0, NULL,
                           NULL) == L2RW_ERR_LABEL, "label out of range");
    l2rw_method_free(m);
    l2rw_sgd_free(oa);
    l2rw_net_free(a);
}

/* Zero weight == removal through a method: a hard-mining step (MLP, no
 * batch norm) equals a plain step on the kept examples only. */
static void test_hard_mining_removal(void)
{
    enum { N = 12 };
    int32_t ty[60];
    for (int i = 0; i < 60; i++) ty[i] = i < 50 ? 0 : i < 55 ? 1 : 2;
    int32_t y[N] = {0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0};
    float x[N * D], xk[N * D], w[N];
    int32_t yy[N], yk[N];
    fill(x, yy, N, 131);
    l2rw_net *a = mlp_net(14), *b = mlp_net(14);
    l2rw_sgd *oa = sgd(a, 0.9f), *ob = sgd(b, 0.9f);
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_HARD_MINING, a, ty, 60, 0, 1);
    size_t np = l2rw_net_num_params(a);
    float *before = malloc(np * sizeof(float));
    memcpy(before, l2rw_net_params(a), np * sizeof(float));
    CHECK_OK(l2rw_method_step(m, a, oa, 0, x, y, NULL, N, NULL, NULL, 0,
                              NULL, w));
    int k = 0;
    for (int i = 0; i < N; i++)
        if (w[i] > 0.0f) {
            memcpy(xk + (size_t)k * D, x + (size_t)i * D, D * sizeof(float));
            yk[k++] = y[i];
        }
    CHECK(k == 6, "3 minority + 3 majority kept (%d)", k);
    plain_ref(b, ob, 0, xk, yk, k);
    double d = param_diff(a, b, before);
    CHECK(d <= 1e-5, "hard-mining step == plain step on the kept: %g", d);
    free(before);
    l2rw_method_free(m);
    l2rw_sgd_free(oa), l2rw_sgd_free(ob);
    l2rw_net_free(a), l2rw_net_free(b);
}

/* proportion: w_i = (1/count(y_i)) / sum_k 1/count(y_k). */
static void test_proportion(void)
{
    int32_t ty[60];
    for (int i = 0; i < 60; i++) ty[i] = i < 40 ? 0 : i < 55 ? 1 : 2;
    l2rw_net *a = mlp_net(13);
    l2rw_sgd *oa = sgd(a, 0.0f);
    l2rw_method_ctx *m = ctx_of(L2RW_METHOD_PROPORTION, a, ty, 60, 0, 1);
    int32_t y[6] = {0, 0, 1, 2, 0, 1};
    float x[6 * D], w[6];
    int32_t yy[6];
    fill(x, yy, 6, 111);
    CHECK_OK(l2rw_method_step(m, a, oa, 0, x, y, NULL, 6, NULL, NULL, 0,
                              NULL, w));
    const double cnt[K] = {40, 15, 5};
    double s = 0.0;
    for (int i = 0; i < 6; i++) s += 1.0 / cnt[y[i]];
    for (int i = 0; i < 6; i++)
        CHECK_CLOSE(w[i], (1.0 / cnt[y[i]]) / s, 2e-7, 0, "proportion w");
    CHECK(w[3] > w[2] && w[2] > w[0], "rarer class weighs more");
    /* scaling every class count by 2 (each label twice) scales the raw
     * weights by 1/2 exactly: the normalised weights keep their bits */
    int32_t ty2[120];
    for (int i = 0; i < 120; i++) ty2[i] = ty[i / 2];
    l2rw_method_ctx *m2 = ctx_of(L2RW_METHOD_PROPORTION, a, ty2, 120, 0, 1);
    float w2[6];
    CHECK_OK(l2rw_method_step(m2, a, oa, 1, x, y, NULL, 6, NULL, NULL, 0,
                              NULL, w2));
    CHECK(memcmp(w, w2, sizeof w) == 0, "count scale invariance");
    l2rw_method_free(m2);
    l2rw_method_free(m);
    l2rw_sgd_free(oa);
    l2rw_net_free(a);
}

/* ------------------------------------------------------------ record */

static void test_auc(void)
{
    double sc[6] = {0.1, 0.2, 0.3, 0.7, 0.8, 0.9}, auc = -1;
    uint8_t perfect[6] = {0, 0, 0, 1, 1, 1}, rev[6] = {1, 1, 1, 0, 0, 0};
    CHECK_OK(l2rw_auc(sc, perfect, 6, &auc));
    CHECK(auc == 1.0, "perfect AUC %g", auc);
    CHECK_OK(l2rw_auc(sc, rev, 6, &auc));
    CHECK(auc == 0.0, "reversed AUC %g", auc);
    double tie[6] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    CHECK_OK(l2rw_auc(tie, perfect, 6, &auc));
    CHECK(auc == 0.5, "all tied AUC %g", auc);
    /* 1 2 3 4 with positives 2 and 4: pairs (2>1) (2<3) (4>1) (4>3) */
    double s4[4] = {1, 2, 3, 4};
    uint8_t p4[4] = {0, 1, 0, 1};
    CHECK_OK(l2rw_auc(s4, p4, 4, &auc));
    CHECK(auc == 0.75, "mixed AUC %g", auc);
    /* a tie across classes counts 1/2: positives 2, 3 against negatives
     * 1, 2: (2>1) 1, (2=2) 1/2, (3>1) 1, (3>2) 1 -> 3.5 / 4 */
    double s5[4] = {1, 2, 2, 3};
    uint8_t p5[4] = {0, 1, 0, 1};
    CHECK_OK(l2rw_auc(s5, p5, 4, &auc));
    CHECK(auc == 0.875, "tied pair AUC %g", auc);
    CHECK(l2rw_auc(sc, (uint8_t[6]){1, 1, 1, 1, 1, 1}, 6, &auc) ==
              L2RW_ERR_ARG, "one class only");
}

static void test_record(void)
{
    enum { NT = 6 };
    int32_t id[NT] = {100, 101, 102, 103, 104, 105};
    int32_t y[NT] = {0, 1, 2, 0, 1, 2}, yt[NT] = {0, 1, 1, 0, 2, 2};
    l2rw_record *r = NULL;
    CHECK_OK(l2rw_record_create(&r, NT, id, y, yt));
    /* batch 1: uniform over 0..3 -> n*w = 1 each */
    int32_t i1[4] = {0, 1, 2, 3};
    float w1[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    CHECK_OK(l2rw_record_add(r, i1, 4, w1));
    /* batch 2: example 2 (corrupted) gets 0, 4 (corrupted) 0.1 */
    int32_t i2[4] = {2, 4, 0, 1};
    float w2[4] = {0.0f, 0.1f, 0.5f, 0.4f};
    CHECK_OK(l2rw_record_add(r, i2, 4, w2));
    double mw, zs;
    long seen;
    l2rw_record_get(r, 0, &mw, &zs, &seen);
    CHECK(seen == 2 && fabs(mw - 1.5) < 1e-6 && zs == 0.0, "example 0");
    l2rw_record_get(r, 2, &mw, &zs, &seen);
    CHECK(seen == 2 && fabs(mw - 0.5) < 1e-6 && zs == 0.5, "example 2");
    l2rw_record_get(r, 5, &mw, &zs, &seen);
    CHECK(seen == 0 && isnan(mw), "unseen example");
    double auc = -1;
    CHECK_OK(l2rw_record_auc(r, &auc));
    /* clean seen: 0 (1.5), 1 (1.3), 3 (1.0); corrupted: 2 (0.5), 4 (0.4) */
    CHECK(auc == 1.0, "record AUC %g", auc);
    char path[64];
    snprintf(path, sizeof path, "/tmp/l2rw_test_examples_%d.csv",
             (int)getpid());
    CHECK_OK(l2rw_record_save(r, path));
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL, "examples.csv exists");
    if (fp) {
        char line[256];
        int ids[NT], k = 0;
        CHECK(fgets(line, sizeof line, fp) &&
                  strcmp(line, "id,given_label,true_label,corrupted,"
                               "mean_weight,zero_weight_share,seen\n") == 0,
              "header: %s", line);
        while (k < NT && fgets(line, sizeof line, fp)) ids[k++] = atoi(line);
        CHECK(k == NT, "one row per example");
        int want[NT] = {104, 102, 103, 101, 100, 105};
        CHECK(memcmp(ids, want, sizeof want) == 0,
              "least trusted first: %d %d %d %d %d %d", ids[0], ids[1],
              ids[2], ids[3], ids[4], ids[5]);
        fclose(fp);
    }
    remove(path);
    CHECK(access(path, F_OK) != 0, "cleaned up");
    int32_t bad[1] = {NT};
    CHECK(l2rw_record_add(r, bad, 1, w1) == L2RW_ERR_ARG, "index range");
    double *ws;
    int64_t *se, *ze;
    l2rw_record_arrays(r, &ws, &se, &ze);
    CHECK(l2rw_record_size(r) == NT && se[0] == 2 && ze[2] == 1,
          "checkpoint arrays");
    l2rw_record_free(r);
    /* unknown true labels: no AUC, empty columns */
    CHECK_OK(l2rw_record_create(&r, NT, NULL, y, NULL));
    CHECK(l2rw_record_auc(r, &auc) == L2RW_ERR_ARG, "no AUC without y_true");
    l2rw_record_free(r);
}

static void test_window(void)
{
    l2rw_stats_window w;
    l2rw_stats_window_reset(&w);
    l2rw_step_stats a = {10, 0, 1.0, 4, 0.8, 0, 1, 2.0, 1.5, NAN};
    l2rw_step_stats b = {10, 0, 1.0, 2, NAN, 0, 1, 1.0, 0.5, NAN};
    l2rw_stats_window_add(&w, &a);
    l2rw_stats_window_add(&w, &b);
    l2rw_step_stats m;
    l2rw_stats_window_mean(&w, &m);
    CHECK(m.n == 20 && m.n_zero == 6 && m.updated == 2, "window counts");
    CHECK_CLOSE(m.mean_loss, 1.5, 1e-12, 0, "window loss");
    CHECK_CLOSE(m.clean_mass, 0.8, 1e-12, 0, "clean mass over defined");
    CHECK(isnan(m.val_loss), "val loss undefined");
    CHECK_CLOSE(l2rw_stats_window_zero_share(&w), 0.3, 1e-12, 0, "zeros");
}

/* ---------------------------------------------------------- self-check */

static int sc_passed, sc_failed;
static void sc_report(void *ctx, const char *name, int passed, double err,
                      const char *detail)
{
    (void)ctx;
    /* "self-check:" first, so that the line is not read as a test case */
    printf("  self-check: %s %s (%.3g): %s\n", passed ? "ok  " : "FAIL", name,
           err, detail);
    passed ? sc_passed++ : sc_failed++;
}

static void test_selfcheck(void)
{
    l2rw_check_summary sum = {0, 0, 0.0};
    CHECK_OK(l2rw__selfcheck_reweight(sc_report, NULL, &sum));
    CHECK(sc_passed >= 4 && sc_failed == 0, "self-check: %d passed %d failed",
          sc_passed, sc_failed);
}

int main(void)
{
    l2rw_set_threads(1);
    RUN(test_names);
    RUN(test_meta_gradient);
    RUN(test_meta_gradient_each_lenet_like);
    RUN(test_meta_gradient_each_mlp);
    RUN(test_scores_vs_backward);
    RUN(test_l2rw_step);
    RUN(test_l2rw_last_and_dropout);
    RUN(test_l2rw_nonpositive);
    RUN(test_uniform_is_plain);
    RUN(test_loss_methods);
    RUN(test_zero_is_removal);
    RUN(test_scale_invariance);
    RUN(test_random);
    RUN(test_resample);
    RUN(test_hard_mining);
    RUN(test_hard_mining_removal);
    RUN(test_proportion);
    RUN(test_auc);
    RUN(test_record);
    RUN(test_window);
    RUN(test_selfcheck);
    return CHECK_DONE("test_reweight");
}
