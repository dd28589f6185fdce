/* Self-check of the reweighting module (l2rw check, selfcheck.h): the
 * L2RW meta gradient against its definition, the last-layer scores
 * against per-example backwards, and uniform weights against a plain
 * step. Shapes: a small net with batch norm, input (6, 1, 1):
 * dense 6->8, batchnorm, relu, dense 8->3; training batch n = 8,
 * validation batch m = 5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "selfcheck.h"

enum { CK_IN = 6, CK_HIDDEN = 8, CK_CLASSES = 3, CK_N = 8, CK_M = 5 };

/* Look-ahead rate and epsilon step of the finite differences. Only their
 * product s = alpha * h moves the parameters (theta -/+ s grad l_i); it is
 * chosen so that the change of L_v, about 2 s |u_i| ~ 1e-4..1e-3, is far
 * above the float32 rounding of L_v (a mean of float32 losses ~ 1, error
 * ~ 1e-7), while the truncation error O(s^2) and the error of crossing a
 * ReLU kink O(s) stay near 1e-4 of the quantity. */
#define CK_ALPHA 0.1
#define CK_H 1e-2
/* Tolerance on |g_fd + alpha u_i| / max_k |alpha u_k|: the float32
 * rounding of L_v (~1e-7) divided by 2h gives ~5e-6 on g, against
 * max|alpha u| ~ 0.1: ~5e-5 relative (measured 3.3e-5); 1e-3 leaves a
 * margin of 20, while a wrong meta gradient (a missing batch-norm term,
 * a wrong sign, the last layer only) is off by O(1e-1..1). */
#define CK_META_TOL 1e-3
/* u_i against <v, grad l_i> from a backward seeded by e_i: the same
 * quantity by two float32 evaluation orders. */
#define CK_EXACT_TOL 1e-4

/* dense + batchnorm + relu + dense: the smallest net in which batch
 * statistics couple the examples of the training batch. */
l2rw_status l2rw__reweight_check_net(l2rw_net **out, uint64_t seed);
l2rw_status l2rw__reweight_check_net(l2rw_net **out, uint64_t seed)
{
    l2rw_graph *g = NULL;
    L2RW_TRY(l2rw__graph_new(&g, CK_IN, 1, 1));
    int x = l2rw__g_dense(g, 0, CK_HIDDEN);
    x = l2rw__g_relu(g, l2rw__g_batchnorm(g, x));
    x = l2rw__g_dense(g, x, CK_CLASSES);
    return l2rw__graph_compile(g, x, "check-bn", CK_CLASSES, 16, seed, out);
}

/* Mean validation loss at the current parameters (TRAIN_FROZEN). */
static l2rw_status val_loss(l2rw_net *net, const float *vx, const int32_t *vy,
                            int m, double *out)
{
    float l[CK_M];
    L2RW_TRY(l2rw_net_forward(net, vx, m, L2RW_MODE_TRAIN_FROZEN, 0));
    L2RW_TRY(l2rw_net_loss(net, vy, NULL, l, NULL));
    double s = 0.0;
    for (int j = 0; j < m; j++) s += l[j];
    *out = s / m;
    return L2RW_OK;
}

/* L_v(theta - alpha grad sum_k eps_k l_k) with eps = sign * h e_i. */
static l2rw_status moved_val_loss(l2rw_net *net, const float *theta,
                                  const float *x, const int32_t *y, int n,
                                  const float *vx, const int32_t *vy, int m,
                                  int i, double sign, double *out)
{
    size_t np = l2rw_net_num_params(net);
    float w[CK_N] = {0};
    w[i] = (float)(sign * CK_H);
    L2RW_TRY(l2rw_net_forward(net, x, n, L2RW_MODE_TRAIN_FROZEN, 0));
    L2RW_TRY(l2rw_net_loss(net, y, NULL, NULL, NULL));
    L2RW_TRY(l2rw_net_backward(net, w));
    float *p = l2rw_net_params(net);
    const float *g = l2rw_net_grads(net);
    for (size_t k = 0; k < np; k++)
        p[k] = (float)((double)theta[k] - CK_ALPHA * (double)g[k]);
    l2rw_status s = val_loss(net, vx, vy, m, out);
    memcpy(p, theta, np * sizeof(float));
    return s;
}

/* max_i |g_i + alpha u_i| / max_k |alpha u_k| with g_i the central
 * difference over eps_i of the definition. */
l2rw_status l2rw__reweight_meta_fd(l2rw_net *net, const float *x,
                                   const int32_t *y, int n, const float *vx,
                                   const int32_t *vy, int m, double *max_rel,
                                   double *max_alpha_u);
l2rw_status l2rw__reweight_meta_fd(l2rw_net *net, const float *x,
                                   const int32_t *y, int n, const float *vx,
                                   const int32_t *vy, int m, double *max_rel,
                                   double *max_alpha_u)
{
    if (n > CK_N || m > CK_M)
        return l2rw__fail(L2RW_ERR_ARG, "meta FD check: batch too large");
    float u[CK_N];
    L2RW_TRY(l2rw_meta_scores(net, L2RW_META_ALL, L2RW_MODE_TRAIN_FROZEN, x,
                              y, n, vx, vy, m, u, NULL, NULL));
    size_t np = l2rw_net_num_params(net);
    float *theta = malloc(np * sizeof(float));
    if (!theta) return l2rw__fail(L2RW_ERR_NOMEM, "meta FD check: memory");
    memcpy(theta, l2rw_net_params(net), np * sizeof(float));
    double g[CK_N], scale = 0.0, worst = 0.0;
    l2rw_status s = L2RW_OK;
    for (int i = 0; i < n && s == L2RW_OK; i++) {
        double lp = 0.0, lm = 0.0;
        s = moved_val_loss(net, theta, x, y, n, vx, vy, m, i, 1.0, &lp);
        if (s == L2RW_OK)
            s = moved_val_loss(net, theta, x, y, n, vx, vy, m, i, -1.0, &lm);
        g[i] = (lp - lm) / (2.0 * CK_H);
        scale = fmax(scale, fabs(CK_ALPHA * u[i]));
    }
    free(theta);
    L2RW_TRY(s);
    for (int i = 0; i < n; i++)
        worst = fmax(worst, fabs(g[i] + CK_ALPHA * u[i]) / fmax(scale, 1e-30));
    *max_rel = worst;
    if (max_alpha_u) *max_alpha_u = scale;
    return L2RW_OK;
}

/* max_i |u_i - <v, grad l_i>| / max_k |u_k|, the dot restricted to the
 * last layer for META_LAST. */
l2rw_status l2rw__reweight_scores_vs_backward(l2rw_net *net,
                                              l2rw_meta_params meta,
                                              const float *x,
                                              const int32_t *y, int n,
                                              const float *vx,
                                              const int32_t *vy, int m,
                                              double *max_rel);
l2rw_status l2rw__reweight_scores_vs_backward(l2rw_net *net,
                                              l2rw_meta_params meta,
                                              const float *x,
                                              const int32_t *y, int n,
                                              const float *vx,
                                              const int32_t *vy, int m,
                                              double *max_rel)
{
    if (n > CK_N)
        return l2rw__fail(L2RW_ERR_ARG, "scores check: batch too large");
    float u[CK_N];
    L2RW_TRY(l2rw_meta_scores(net, meta, L2RW_MODE_TRAIN_FROZEN, x, y, n, vx,
                              vy, m, u, NULL, NULL));
    size_t np = l2rw_net_num_params(net), b = 0, e = np;
    if (meta == L2RW_META_LAST) l2rw_net_last_layer_range(net, &b, &e);
    double *v = malloc(np * sizeof(double));
    if (!v) return l2rw__fail(L2RW_ERR_NOMEM, "scores check: memory");
    /* the tangent buffer holds v (masked for LAST) after the scores */
    const float *t = l2rw_net_tangents(net);
    for (size_t k = 0; k < np; k++) v[k] = t[k];
    double scale = 0.0, worst = 0.0, dot[CK_N];
    l2rw_status s = L2RW_OK;
    for (int i = 0; i < n && s == L2RW_OK; i++) {
        float w[CK_N] = {0};
        w[i] = 1.0f;
        s = l2rw_net_backward(net, w); /* reuses the training forward */
        const float *gr = l2rw_net_grads(net);
        dot[i] = 0.0;
        for (size_t k = b; k < e; k++) dot[i] += v[k] * (double)gr[k];
        scale = fmax(scale, fabs((double)u[i]));
    }
    free(v);
    L2RW_TRY(s);
    for (int i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)u[i] - dot[i]) / fmax(scale, 1e-30));
    *max_rel = worst;
    return L2RW_OK;
}

/* Seeded inputs and labels of the check. */
static void check_batch_data(float *x, int32_t *y, int n, uint64_t seed)
{
    l2rw_rng r;
    l2rw_rng_seed(&r, seed);
    for (int i = 0; i < n * CK_IN; i++) x[i] = (float)l2rw_rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (int32_t)l2rw_rng_below(&r, CK_CLASSES);
}

static void report_status(l2rw_check_fn report, void *ctx, const char *name,
                          l2rw_status s)
{
    char d[256];
    snprintf(d, sizeof d, "could not run: %s (%s)", l2rw_strerror(s),
             l2rw_last_error());
    report(ctx, name, 0, 0.0, d);
}

static void check_meta(l2rw_net *net, const float *x, const int32_t *y,
                       const float *vx, const int32_t *vy,
                       l2rw_check_fn report, void *ctx)
{
    const char *name = "reweight: L2RW meta gradient vs its definition";
    double rel = 0.0, scale = 0.0;
    l2rw_status s = l2rw__reweight_meta_fd(net, x, y, CK_N, vx, vy, CK_M,
                                           &rel, &scale);
    if (s != L2RW_OK) {
        report_status(report, ctx, name, s);
        return;
    }
    char d[200];
    snprintf(d, sizeof d,
             "dense-bn-relu-dense, n=%d m=%d, alpha=%g h=%g: max |g+alpha u| "
             "/ max|alpha u| = %.2e (tol %.0e, max|alpha u| %.2e)", CK_N,
             CK_M, CK_ALPHA, CK_H, rel, CK_META_TOL, scale);
    report(ctx, name, rel <= CK_META_TOL, rel, d);
}

static void check_scores(l2rw_net *net, l2rw_meta_params meta,
                         const float *x, const int32_t *y, const float *vx,
                         const int32_t *vy, l2rw_check_fn report, void *ctx)
{
    char name[96];
    snprintf(name, sizeof name, "reweight: scores (meta-params %s) vs "
             "per-example backward", l2rw_meta_params_name(meta));
    double rel = 0.0;
    l2rw_status s = l2rw__reweight_scores_vs_backward(net, meta, x, y, CK_N,
                                                      vx, vy, CK_M, &rel);
    if (s != L2RW_OK) {
        report_status(report, ctx, name, s);
        return;
    }
    char d[160];
    snprintf(d, sizeof d, "max |u - <v, grad l_i>| / max|u| = %.2e (tol %.0e)",
             rel, CK_EXACT_TOL);
    report(ctx, name, rel <= CK_EXACT_TOL, rel, d);
}

/* l2rw_method_step with method plain and an explicit step with
 * l2rw_net_backward(NULL) on a twin net give identical bits. */
static void check_uniform(const float *x, const int32_t *y,
                          l2rw_check_fn report, void *ctx)
{
    const char *name = "reweight: uniform method step == plain step (bits)";
    l2rw_net *a = NULL, *b = NULL;
    l2rw_sgd *oa = NULL, *ob = NULL;
    l2rw_method_ctx *m = NULL;
    l2rw_sgd_cfg sc = {0.05f, 0.9f, 5e-4f, 0, {0}, 1.0f};
    l2rw_method_cfg mc = l2rw_method_cfg_default();
    l2rw_status s = l2rw__reweight_check_net(&a, 7);
    if (s == L2RW_OK) s = l2rw__reweight_check_net(&b, 7);
    if (s == L2RW_OK) s = l2rw_sgd_create(&oa, a, &sc);
    if (s == L2RW_OK) s = l2rw_sgd_create(&ob, b, &sc);
    if (s == L2RW_OK) s = l2rw_method_create(&m, &mc, a);
    for (long step = 0; step < 3 && s == L2RW_OK; step++) {
        s = l2rw_method_step(m, a, oa, step, x, y, NULL, CK_N, NULL, NULL, 0,
                             NULL, NULL);
        if (s == L2RW_OK) s = l2rw_net_forward(b, x, CK_N, L2RW_MODE_TRAIN, 0);
        if (s == L2RW_OK) s = l2rw_net_loss(b, y, NULL, NULL, NULL);
        if (s == L2RW_OK) s = l2rw_net_backward(b, NULL);
        if (s == L2RW_OK) s = l2rw_sgd_step(ob, b, step);
    }
    if (s != L2RW_OK) {
        report_status(report, ctx, name, s);
    } else {
        size_t np = l2rw_net_num_params(a), ns = l2rw_net_num_state(a);
        int same = memcmp(l2rw_net_params(a), l2rw_net_params(b),
                          np * sizeof(float)) == 0 &&
                   memcmp(l2rw_net_state(a), l2rw_net_state(b),
                          ns * sizeof(float)) == 0;
        report(ctx, name, same, 0.0,
               same ? "3 SGD steps, parameters and batch-norm state equal"
                    : "parameters or state differ");
    }
    l2rw_method_free(m);
    l2rw_sgd_free(oa);
    l2rw_sgd_free(ob);
    l2rw_net_free(a);
    l2rw_net_free(b);
}

/* Networks without batch norm take the per-example path in
 * l2rw_method_step (no tangent pass); its weights must equal those of the
 * tangent scores (checked against the definition above) on a twin net.
 * LeNet on 1x16x16 inputs exercises convolutions, pooling and dense. */
enum { EACH_HW = 16, EACH_DIM = EACH_HW * EACH_HW, EACH_CLASSES = 10 };

static l2rw_status each_vs_tangent(double *max_rel, int *positive)
{
    float x[CK_N * EACH_DIM], vx[CK_M * EACH_DIM], u[CK_N];
    float w_step[CK_N], w_tan[CK_N];
    int32_t y[CK_N], vy[CK_M];
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 21);
    for (int j = 0; j < CK_N * EACH_DIM; j++)
        x[j] = (float)l2rw_rng_normal(&rng);
    for (int j = 0; j < CK_M * EACH_DIM; j++)
        vx[j] = (float)l2rw_rng_normal(&rng);
    for (int i = 0; i < CK_N; i++)
        y[i] = (int32_t)l2rw_rng_below(&rng, EACH_CLASSES);
    for (int i = 0; i < CK_M; i++)
        vy[i] = (int32_t)l2rw_rng_below(&rng, EACH_CLASSES);
    l2rw_net *a = NULL, *b = NULL;
    l2rw_sgd *opt = NULL;
    l2rw_method_ctx *m = NULL;
    l2rw_sgd_cfg sc = {0.01f, 0.0f, 0.0f, 0, {0}, 1.0f};
    l2rw_method_cfg mc = l2rw_method_cfg_default();
    mc.method = L2RW_METHOD_L2RW;
    l2rw_status s = l2rw_net_create(&a, "lenet", 1, EACH_HW, EACH_HW,
                                    EACH_CLASSES, CK_N, 5);
    if (s == L2RW_OK)
        s = l2rw_net_create(&b, "lenet", 1, EACH_HW, EACH_HW, EACH_CLASSES,
                            CK_N, 5);
    if (s == L2RW_OK) s = l2rw_sgd_create(&opt, a, &sc);
    if (s == L2RW_OK) s = l2rw_method_create(&m, &mc, a);
    if (s == L2RW_OK)
        s = l2rw_method_step(m, a, opt, 0, x, y, NULL, CK_N, vx, vy, CK_M,
                             NULL, w_step);
    if (s == L2RW_OK)
        s = l2rw_meta_scores(b, L2RW_META_ALL, L2RW_MODE_TRAIN, x, y, CK_N,
                             vx, vy, CK_M, u, NULL, NULL);
    if (s == L2RW_OK) {
        *positive = l2rw_weights_normalise(u, CK_N, w_tan);
        double worst = 0.0;
        for (int i = 0; i < CK_N; i++)
            worst = fmax(worst, fabs((double)w_step[i] - w_tan[i]));
        *max_rel = worst; /* weights sum to 1: absolute = relative */
    }
    l2rw_method_free(m);
    l2rw_sgd_free(opt);
    l2rw_net_free(a);
    l2rw_net_free(b);
    return s;
}

static void check_each(l2rw_check_fn report, void *ctx)
{
    const char *name = "reweight: no-batch-norm path vs tangent path";
    double rel = 0.0;
    int positive = 0;
    l2rw_status s = each_vs_tangent(&rel, &positive);
    if (s != L2RW_OK) {
        report_status(report, ctx, name, s);
        return;
    }
    char d[160];
    snprintf(d, sizeof d, "lenet 1x16x16, n=%d m=%d: max |w - w_tangent| = "
             "%.2e (tol %.0e), %d positive weights", CK_N, CK_M, rel,
             CK_EXACT_TOL, positive);
    report(ctx, name, rel <= CK_EXACT_TOL && positive > 0, rel, d);
}

l2rw_status l2rw__selfcheck_reweight(l2rw_check_fn report, void *ctx,
                                     l2rw_check_summary *sum)
{
    (void)sum; /* read-only counts; report() does the counting */
    if (!report)
        return l2rw__fail(L2RW_ERR_ARG, "reweight self-check: NULL report");
    float x[CK_N * CK_IN], vx[CK_M * CK_IN];
    int32_t y[CK_N], vy[CK_M];
    check_batch_data(x, y, CK_N, 11);
    check_batch_data(vx, vy, CK_M, 12);
    l2rw_net *net = NULL;
    l2rw_status s = l2rw__reweight_check_net(&net, 3);
    if (s != L2RW_OK) {
        report_status(report, ctx, "reweight: build check net", s);
        return L2RW_OK;
    }
    check_meta(net, x, y, vx, vy, report, ctx);
    check_scores(net, L2RW_META_ALL, x, y, vx, vy, report, ctx);
    check_scores(net, L2RW_META_LAST, x, y, vx, vy, report, ctx);
    l2rw_net_free(net);
    check_uniform(x, y, report, ctx);
    check_each(report, ctx);
    return L2RW_OK;
}
