/* Every layer's backward (input and parameter gradients) and tangent
 * (input tangent and parameter tangent together) against central finite
 * differences, on random shapes with odd sizes, strides and padding.
 *
 * Tolerances. The layers compute in float32; the finite differences use a
 * step h = 1e-2 on inputs and parameters of size O(1) and a probe loss
 * L = sum r .* y accumulated in double. Rounding in y (a few float ulps,
 * ~1e-6 relative) perturbs L by about 1e-6 sqrt(#y) |y| <= 1e-4, which
 * becomes <= 1e-2 absolute after dividing by 2h; the analytic gradients
 * here are O(1..30). Dense, conv, pooling, add, flatten and dropout are
 * (piecewise) linear, so the central difference has no truncation error
 * as long as no kink is crossed: ReLU inputs keep |x| >= 0.1 and max-pool
 * inputs are distinct by >= 0.05 per plane, both far beyond h |dx| <= 1e-2.
 * Batch norm is smooth: its O(h^2) truncation term is ~1e-4 relative. We
 * therefore require |analytic - fd| <= 5e-3 max|analytic| + 1e-3, i.e.
 * ~10x above the expected noise, and check that this criterion does flag a
 * 5% error in one coordinate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "falloc.h"
#include "layers.h"

#define FD_H 1e-2
#define FD_RTOL 5e-3
#define FD_ATOL 1e-3
#define MAX_COORDS 150 /* sampled coordinates per buffer */

enum { RIG_MAX = 3 };

/* One layer (node n_in) fed by n_in input nodes. */
typedef struct {
    l2rw__node nodes[RIG_MAX];
    int n_in, n;
    l2rw__pass ps;
    float *params, *tparams, *grads, *state, *ws;
    l2rw_rng rng;
} rig;

static l2rw__node *rig_layer(rig *R) { return &R->nodes[R->n_in]; }

static void fill_normal(l2rw_rng *r, float *x, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * l2rw_rng_normal(r));
}

/* Values away from 0 (ReLU kink): |x| in [0.1, 1.6]. */
static void fill_away_from_zero(l2rw_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v = 0.1 + 1.5 * l2rw_rng_uniform(r);
        x[i] = (float)(l2rw_rng_uniform(r) < 0.5 ? -v : v);
    }
}

/* Distinct values per plane of P, spaced 0.05 (max-pool ties). */
static void fill_distinct(l2rw_rng *r, float *x, size_t planes, size_t P)
{
    int32_t *perm = malloc(P * sizeof *perm);
    for (size_t q = 0; q < planes; q++) {
        for (size_t i = 0; i < P; i++) perm[i] = (int32_t)i;
        l2rw_rng_shuffle_i32(r, perm, P);
        for (size_t i = 0; i < P; i++)
            x[q * P + i] = (float)(0.05 * (perm[i] - 0.5 * (double)P));
    }
    free(perm);
}

static l2rw_status rig_init(rig *R, l2rw__node proto, int n_in,
                            int shapes[][3], int n, uint64_t seed)
{
    memset(R, 0, sizeof *R);
    l2rw_rng_seed(&R->rng, seed);
    R->n_in = n_in;
    R->n = n;
    for (int s = 0; s < n_in; s++) {
        l2rw__node *a = &R->nodes[s];
        a->op = L2RW_OP_INPUT;
        a->c = shapes[s][0], a->h = shapes[s][1], a->w = shapes[s][2];
        a->size = (size_t)a->c * a->h * a->w;
        a->need_dy = 1;
    }
    l2rw__node *nd = &R->nodes[n_in];
    *nd = proto;
    nd->n_in = n_in;
    for (int s = 0; s < n_in; s++) nd->in[s] = s;
    const l2rw__layer_ops *ops = l2rw__layer(nd->op);
    l2rw_status st = ops->setup(nd, &R->nodes[0],
                                n_in > 1 ? &R->nodes[1] : NULL, n,
                                &l2rw__backend_cpu);
    if (st != L2RW_OK) return st;
    nd->size = (size_t)nd->c * nd->h * nd->w;
    nd->need_dy = 1;
    for (int i = 0; i <= n_in; i++) {
        l2rw__node *x = &R->nodes[i];
        x->y = falloc((size_t)n * x->size);
        x->ty = falloc((size_t)n * x->size);
        x->dy = falloc((size_t)n * x->size);
    }
    nd->aux = falloc(nd->n_aux);
    nd->idx = l2rw__aalloc(nd->n_idx ? nd->n_idx : 1, sizeof(int32_t));
    R->params = falloc(nd->n_params);
    R->tparams = falloc(nd->n_params);
    R->grads = falloc(nd->n_params);
    R->state = falloc(nd->n_state);
    R->ws = falloc(nd->n_ws);
    if (ops->init) ops->init(nd, R->params, R->state, &R->rng);
    /* Random parameters of size O(1) (also for batch-norm gamma/beta). */
    fill_normal(&R->rng, R->params, nd->n_params, 0.7);
    for (int s = 0; s < n_in; s++)
        fill_normal(&R->rng, R->nodes[s].y, (size_t)n * R->nodes[s].size, 1.0);
    l2rw__pass ps = {.be = &l2rw__backend_cpu, .nodes = R->nodes, .n = n,
                     .mode = L2RW_MODE_TRAIN_FROZEN,
                     .params = R->params, .tparams = R->tparams,
                     .grads = R->grads, .state = R->state, .ws = R->ws,
                     .dropout_key = 1234};
    R->ps = ps;
    return L2RW_OK;
}

static void rig_free(rig *R)
{
    for (int i = 0; i <= R->n_in; i++) {
        l2rw__afree(R->nodes[i].y);
        l2rw__afree(R->nodes[i].ty);
        l2rw__afree(R->nodes[i].dy);
    }
    l2rw__afree(rig_layer(R)->aux);
    l2rw__afree(rig_layer(R)->idx);
    l2rw__afree(R->params);
    l2rw__afree(R->tparams);
    l2rw__afree(R->grads);
    l2rw__afree(R->state);
    l2rw__afree(R->ws);
}

static void rig_forward(rig *R, int tangent)
{
    R->ps.tangent = tangent;
    l2rw__layer(rig_layer(R)->op)->forward(&R->ps, rig_layer(R));
}

static double probe(rig *R, const float *r)
{
    rig_forward(R, 0);
    const l2rw__node *nd = rig_layer(R);
    double s = 0.0;
    for (size_t i = 0; i < (size_t)R->n * nd->size; i++) s += (double)r[i] * nd->y[i];
    return s;
}

/* max |a - b| against the criterion; returns the ratio err / allowed. */
static double compare(const double *a, const double *b, size_t n)
{
    double m = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    for (size_t i = 0; i < n; i++) {
        double ratio = fabs(a[i] - b[i]) / (FD_RTOL * m + FD_ATOL);
        worst = fmax(worst, ratio);
    }
    return worst;
}

/* Finite-difference gradient of the probe over sampled coordinates of buf;
 * compares with the analytic gradient g. */
static double check_grad_buffer(rig *R, float *buf, size_t len,
                                const float *g, const float *r)
{
    if (len == 0) return 0.0;
    size_t m = len < MAX_COORDS ? len : MAX_COORDS;
    double *an = calloc(m, sizeof *an), *fd = calloc(m, sizeof *fd);
    for (size_t t = 0; t < m; t++) {
        size_t j = len <= MAX_COORDS ? t : (size_t)l2rw_rng_below(&R->rng, len);
        float v = buf[j];
        buf[j] = (float)(v + FD_H);
        double lp = probe(R, r);
        buf[j] = (float)(v - FD_H);
        double lm = probe(R, r);
        buf[j] = v;
        an[t] = g[j];
        fd[t] = (lp - lm) / (2.0 * FD_H);
    }
    double w = compare(an, fd, m);
    /* The criterion must flag a 5% error in one coordinate. */
    size_t big = 0;
    for (size_t t = 1; t < m; t++)
        if (fabs(an[t]) > fabs(an[big])) big = t;
    an[big] *= 1.05;
    double wbad = compare(an, fd, m);
    CHECK(fabs(an[big]) < 0.05 || wbad > 1.0,
          "criterion misses a 5%% error (%g)", wbad);
    free(an);
    free(fd);
    return w;
}

/* Full check of one configured rig: tangent, gradients, accumulation. */
static void check_rig(rig *R, const char *what)
{
    l2rw__node *nd = rig_layer(R);
    const size_t ny = (size_t)R->n * nd->size;
    const size_t np = nd->n_params;
    /* Tangent: parameter and input tangents together. */
    fill_normal(&R->rng, R->tparams, np, 1.0);
    for (int s = 0; s < R->n_in; s++)
        fill_normal(&R->rng, R->nodes[s].ty, (size_t)R->n * R->nodes[s].size,
                    1.0);
    /* Keep |tx| <= 1 so that h |tx| stays below the kink margins. */
    for (int s = 0; s < R->n_in; s++)
        for (size_t i = 0; i < (size_t)R->n * R->nodes[s].size; i++)
            R->nodes[s].ty[i] = fmaxf(-1.0f, fminf(1.0f, R->nodes[s].ty[i]));
    rig_forward(R, 1);
    double *ty = malloc(ny * sizeof *ty), *fd = malloc(ny * sizeof *fd);
    for (size_t i = 0; i < ny; i++) ty[i] = nd->ty[i];
    for (int sign = 1; sign >= -1; sign -= 2) {
        for (size_t j = 0; j < np; j++)
            R->params[j] += (float)(sign * FD_H) * R->tparams[j];
        for (int s = 0; s < R->n_in; s++)
            for (size_t i = 0; i < (size_t)R->n * R->nodes[s].size; i++)
                R->nodes[s].y[i] += (float)(sign * FD_H) * R->nodes[s].ty[i];
        rig_forward(R, 0);
        for (size_t i = 0; i < ny; i++)
            fd[i] = sign > 0 ? nd->y[i] : (fd[i] - nd->y[i]) / (2.0 * FD_H);
        for (size_t j = 0; j < np; j++)
            R->params[j] -= (float)(sign * FD_H) * R->tparams[j];
        for (int s = 0; s < R->n_in; s++)
            for (size_t i = 0; i < (size_t)R->n * R->nodes[s].size; i++)
                R->nodes[s].y[i] -= (float)(sign * FD_H) * R->nodes[s].ty[i];
    }
    double wt = compare(ty, fd, ny);
    CHECK(wt <= 1.0, "%s: tangent vs FD, error %.3g of allowed", what, wt);
    free(ty);
    free(fd);

    /* Backward of the probe sum r .* y. */
    float *r = falloc(ny);
    fill_normal(&R->rng, r, ny, 1.0);
    rig_forward(R, 0);
    memcpy(nd->dy, r, ny * sizeof *r);
    nd->acc[0] = nd->acc[1] = 0;
    l2rw__layer(nd->op)->backward(&R->ps, nd);
    float *g = falloc(np);
    memcpy(g, R->grads, np * sizeof *g);
    double wp = check_grad_buffer(R, R->params, np, g, r);
    CHECK(wp <= 1.0, "%s: parameter gradient vs FD, error %.3g of allowed",
          what, wp);
    float *dxs[RIG_MAX] = {NULL};
    for (int s = 0; s < R->n_in; s++) {
        const size_t nx = (size_t)R->n * R->nodes[s].size;
        dxs[s] = falloc(nx);
        memcpy(dxs[s], R->nodes[s].dy, nx * sizeof(float));
    }
    for (int s = 0; s < R->n_in; s++) {
        l2rw__node *a = &R->nodes[s];
        const size_t nx = (size_t)R->n * a->size;
        float *dx = dxs[s];
        double wx = check_grad_buffer(R, a->y, nx, dx, r);
        CHECK(wx <= 1.0, "%s: input %d gradient vs FD, error %.3g of allowed",
              what, s, wx);
        /* Accumulating backward adds exactly what the plain one wrote. */
        float *base = falloc(nx);
        fill_normal(&R->rng, base, nx, 1.0);
        memcpy(a->dy, base, nx * sizeof *base);
        rig_forward(R, 0);
        nd->acc[0] = nd->acc[1] = 1;
        if (R->n_in == 2) /* keep the other input's dy meaningful */
            memset(R->nodes[1 - s].dy, 0, (size_t)R->n * R->nodes[1 - s].size * sizeof(float));
        l2rw__layer(nd->op)->backward(&R->ps, nd);
        double worst = 0.0;
        for (size_t i = 0; i < nx; i++)
            worst = fmax(worst, fabs(a->dy[i] - (base[i] + dx[i])) /
                                    (1e-5 * (fabs(base[i]) + fabs(dx[i])) + 1e-6));
        CHECK(worst <= 1.0, "%s: accumulating backward of input %d", what, s);
        nd->acc[0] = nd->acc[1] = 0;
        l2rw__afree(base);
        l2rw__afree(dx);
    }
    l2rw__afree(g);
    l2rw__afree(r);
}

static int rand_int(l2rw_rng *r, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)l2rw_rng_below(r, (uint64_t)(hi - lo + 1));
}

/* The shapes of the random dense, conv and max-pool cases are drawn from
 * one generator seeded in main(), in that order. */
static l2rw_rng cfg_rng;

static void test_dense(void)
{
    l2rw_rng *cfg = &cfg_rng;
    for (int t = 0; t < 4; t++) {
        int shape[1][3] = {{rand_int(cfg, 1, 4), rand_int(cfg, 1, 3), rand_int(cfg, 1, 3)}};
        l2rw__node p = {.op = L2RW_OP_DENSE, .units = rand_int(cfg, 1, 9)};
        rig R;
        char what[96];
        snprintf(what, sizeof what, "dense %dx%dx%d -> %d", shape[0][0],
                 shape[0][1], shape[0][2], p.units);
        CHECK_OK(rig_init(&R, p, 1, shape, rand_int(cfg, 1, 5), 100 + t));
        check_rig(&R, what);
        rig_free(&R);
    }
    /* Large enough for the GEMMs to be split over threads. */
    int shape[1][3] = {{3, 8, 8}};
    l2rw__node p = {.op = L2RW_OP_DENSE, .units = 70};
    rig R;
    CHECK_OK(rig_init(&R, p, 1, shape, 33, 110));
    check_rig(&R, "dense 3x8x8 -> 70, n 33 (threaded GEMM)");
    rig_free(&R);
}

static void test_conv(void)
{
    l2rw_rng *cfg = &cfg_rng;
    /* The zoo's cases first (valid 5x5 as in LeNet, padded 3x3 and strided
     * 1x1 as in ResNets), then random ones. */
    static const int fixed[3][3] = {{5, 1, 0}, {3, 1, 1}, {1, 2, 0}};
    for (int t = 0; t < 11; t++) {
        int k = rand_int(cfg, 1, 5), s = rand_int(cfg, 1, 3), pad = rand_int(cfg, 0, 2);
        if (t < 3) k = fixed[t][0], s = fixed[t][1], pad = fixed[t][2];
        int h = rand_int(cfg, 3, 9), w = rand_int(cfg, 3, 9);
        if (h + 2 * pad < k) h = k;
        if (w + 2 * pad < k) w = k;
        int shape[1][3] = {{rand_int(cfg, 1, 3), h, w}};
        l2rw__node p = {.op = L2RW_OP_CONV, .units = rand_int(cfg, 1, 4),
                        .k = k, .stride = s, .pad = pad, .bias = t % 2};
        rig R;
        char what[128];
        snprintf(what, sizeof what, "conv %dx%dx%d k%d s%d p%d oc%d bias%d",
                 shape[0][0], h, w, k, s, pad, p.units, p.bias);
        CHECK_OK(rig_init(&R, p, 1, shape, rand_int(cfg, 2, 5), 200 + t));
        check_rig(&R, what);
        rig_free(&R);
    }
}

/* Ties pick the first maximum (row-major in the window) and a NaN wins,
 * in the unrolled 2x2 path and in the generic one. */
static void test_maxpool_ties_nan(void)
{
    for (int path = 0; path < 2; path++) {
        const int k = 2, st = path ? 1 : 2; /* stride 1: generic path */
        int shape[1][3] = {{1, 4, 4}};
        l2rw__node p = {.op = L2RW_OP_MAXPOOL, .k = k, .stride = st};
        rig R;
        CHECK_OK(rig_init(&R, p, 1, shape, 1, 600 + path));
        float *x = R.nodes[0].y;
        for (int i = 0; i < 16; i++) x[i] = 1.0f; /* all tied */
        x[1 * 4 + 3] = 2.0f;                      /* a later maximum */
        x[3 * 4 + 0] = NAN;                       /* a NaN, bottom left */
        rig_forward(&R, 0);
        const l2rw__node *nd = rig_layer(&R);
        /* window (0,0): all 1 -> first element, index 0 */
        CHECK(nd->y[0] == 1.0f && nd->idx[0] == 0, "maxpool ties: first maximum (path %d)", path);
        /* the window holding x[1][3] = 2 picks it */
        int w13 = path ? 0 * nd->w + 2 : 0 * nd->w + 1;
        CHECK(nd->y[w13] == 2.0f && nd->idx[w13] == 7, "maxpool: later larger wins (path %d)", path);
        /* the window holding the NaN outputs NaN */
        int wn = path ? 2 * nd->w + 0 : 1 * nd->w + 0;
        CHECK(nd->y[wn] != nd->y[wn] && nd->idx[wn] == 12, "maxpool: NaN propagates (path %d)", path);
        rig_free(&R);
    }
}

static void test_maxpool(void)
{
    l2rw_rng *cfg = &cfg_rng;
    for (int t = 0; t < 6; t++) {
        int k = rand_int(cfg, 1, 3), s = rand_int(cfg, 1, 3);
        if (t < 2) k = s = 2; /* the unrolled 2x2 path */
        int shape[1][3] = {{rand_int(cfg, 1, 3), rand_int(cfg, k, 9), rand_int(cfg, k, 9)}};
        l2rw__node p = {.op = L2RW_OP_MAXPOOL, .k = k, .stride = s};
        rig R;
        char what[96];
        snprintf(what, sizeof what, "maxpool %dx%dx%d k%d s%d", shape[0][0],
                 shape[0][1], shape[0][2], k, s);
        int n = rand_int(cfg, 1, 4);
        CHECK_OK(rig_init(&R, p, 1, shape, n, 300 + t));
        fill_distinct(&R.rng, R.nodes[0].y, (size_t)n * shape[0][0],
                      (size_t)shape[0][1] * shape[0][2]);
        check_rig(&R, what);
        rig_free(&R);
    }
}

static void check_simple(l2rw__op op, const char *name, int n_in, uint64_t seed)
{
    int shape[2][3] = {{3, 5, 7}, {3, 5, 7}};
    l2rw__node p = {.op = op, .p = 0.3f};
    rig R;
    CHECK_OK(rig_init(&R, p, n_in, shape, 3, seed));
    if (op == L2RW_OP_RELU)
        fill_away_from_zero(&R.rng, R.nodes[0].y, (size_t)3 * 3 * 5 * 7);
    check_rig(&R, name);
    rig_free(&R);
}

static void test_relu(void) { check_simple(L2RW_OP_RELU, "relu", 1, 501); }
static void test_avgpool(void) { check_simple(L2RW_OP_AVGPOOL, "avgpool", 1, 502); }
static void test_add(void) { check_simple(L2RW_OP_ADD, "add", 2, 503); }
static void test_flatten(void) { check_simple(L2RW_OP_FLATTEN, "flatten", 1, 504); }
static void test_dropout(void) { check_simple(L2RW_OP_DROPOUT, "dropout", 1, 505); }

static void test_dropout_mask(void)
{
    int shape[1][3] = {{4, 10, 10}};
    l2rw__node p = {.op = L2RW_OP_DROPOUT, .p = 0.3f};
    rig R;
    CHECK_OK(rig_init(&R, p, 1, shape, 5, 77));
    l2rw__node *nd = rig_layer(&R);
    const size_t len = 5 * 400;
    for (size_t i = 0; i < len; i++) R.nodes[0].y[i] = 1.0f;
    rig_forward(&R, 0);
    size_t zeros = 0;
    int values_ok = 1;
    for (size_t i = 0; i < len; i++) {
        if (nd->y[i] == 0.0f) zeros++;
        else if (fabsf(nd->y[i] - 1.0f / 0.7f) > 1e-6f) values_ok = 0;
    }
    /* 2000 Bernoulli(0.3) draws: mean 600, sd ~20.5; allow 5 sd. */
    CHECK(zeros > 500 && zeros < 700, "dropout: %zu of %zu dropped", zeros, len);
    CHECK(values_ok, "dropout: kept units are scaled by 1/(1-p)");
    float *first = falloc(len);
    memcpy(first, nd->y, len * sizeof *first);
    rig_forward(&R, 0);
    CHECK(memcmp(first, nd->y, len * sizeof *first) == 0, "dropout: same key, same mask");
    R.ps.dropout_key = 99;
    rig_forward(&R, 0);
    CHECK(memcmp(first, nd->y, len * sizeof *first) != 0, "dropout: new key, new mask");
    R.ps.mode = L2RW_MODE_EVAL;
    rig_forward(&R, 0);
    int ident = 1;
    for (size_t i = 0; i < len; i++) ident &= nd->y[i] == 1.0f;
    CHECK(ident, "dropout: identity in eval mode");
    l2rw__afree(first);
    rig_free(&R);
}

/* Batch norm: FD in train-frozen and eval modes; running statistics. */
static void test_batchnorm(void)
{
    const int shapes[2][3] = {{3, 4, 5}, {6, 1, 1}}; /* conv and dense inputs */
    for (int t = 0; t < 2; t++) {
        int shape[1][3] = {{shapes[t][0], shapes[t][1], shapes[t][2]}};
        l2rw__node p = {.op = L2RW_OP_BATCHNORM};
        const int n = t ? 7 : 3;
        for (int mode = 0; mode < 2; mode++) {
            rig R;
            CHECK_OK(rig_init(&R, p, 1, shape, n, 400 + t * 2 + mode));
            const int C = shape[0][0];
            /* Random running statistics for eval mode. */
            for (int c = 0; c < C; c++) {
                R.state[c] = (float)(0.3 * l2rw_rng_normal(&R.rng));
                R.state[C + c] = (float)(0.5 + l2rw_rng_uniform(&R.rng));
            }
            R.ps.mode = mode ? L2RW_MODE_EVAL : L2RW_MODE_TRAIN_FROZEN;
            char what[64];
            snprintf(what, sizeof what, "batchnorm %dx%dx%d n%d %s", shape[0][0],
                     shape[0][1], shape[0][2], n, mode ? "eval" : "train");
            float *st0 = falloc(2 * (size_t)C);
            memcpy(st0, R.state, 2 * (size_t)C * sizeof *st0);
            check_rig(&R, what);
            CHECK(memcmp(st0, R.state, 2 * (size_t)C * sizeof *st0) == 0,
                  "%s: running statistics untouched", what);
            if (mode == 0) {
                /* Train mode: running = 0.9 running + 0.1 batch statistic
                 * (unbiased variance), computed here in double. */
                R.ps.mode = L2RW_MODE_TRAIN;
                rig_forward(&R, 0);
                const size_t P = (size_t)shape[0][1] * shape[0][2];
                const double m = (double)n * (double)P;
                for (int c = 0; c < C; c++) {
                    double s = 0, q = 0;
                    for (int i = 0; i < n; i++)
                        for (size_t j = 0; j < P; j++)
                            s += R.nodes[0].y[((size_t)i * C + c) * P + j];
                    double mu = s / m;
                    for (int i = 0; i < n; i++)
                        for (size_t j = 0; j < P; j++) {
                            double d = R.nodes[0].y[((size_t)i * C + c) * P + j] - mu;
                            q += d * d;
                        }
                    CHECK_CLOSE(R.state[c], 0.9 * st0[c] + 0.1 * mu, 1e-5, 1e-6,
                                "batchnorm running mean");
                    CHECK_CLOSE(R.state[C + c], 0.9 * st0[C + c] + 0.1 * q / (m - 1),
                                1e-5, 1e-6, "batchnorm running var");
                }
                /* Train-mode output is normalised: per-channel mean beta. */
                const float *beta = R.params + C;
                for (int c = 0; c < C; c++) {
                    double s = 0;
                    for (int i = 0; i < n; i++)
                        for (size_t j = 0; j < P; j++)
                            s += rig_layer(&R)->y[((size_t)i * C + c) * P + j];
                    CHECK_CLOSE(s / m, beta[c], 1e-4, 1e-5, "batchnorm output mean");
                }
            }
            l2rw__afree(st0);
            rig_free(&R);
        }
    }
}

static void test_shapes(void)
{
    int shape[2][3] = {{2, 3, 3}, {2, 3, 4}};
    rig R;
    l2rw__node conv = {.op = L2RW_OP_CONV, .units = 2, .k = 5, .stride = 1};
    l2rw__node pool = {.op = L2RW_OP_MAXPOOL, .k = 4, .stride = 1};
    l2rw__node add = {.op = L2RW_OP_ADD};
    l2rw__node drop = {.op = L2RW_OP_DROPOUT, .p = 1.0f};
    CHECK(rig_init(&R, conv, 1, shape, 2, 1) == L2RW_ERR_SHAPE, "conv kernel > input");
    CHECK(rig_init(&R, pool, 1, shape, 2, 1) == L2RW_ERR_SHAPE, "pool window > input");
    CHECK(rig_init(&R, add, 2, shape, 2, 1) == L2RW_ERR_SHAPE, "add of two shapes");
    CHECK(rig_init(&R, drop, 1, shape, 2, 1) == L2RW_ERR_ARG, "dropout rate 1");
}

int main(void)
{
    l2rw_set_threads(2);
    l2rw_rng_seed(&cfg_rng, 2018);
    RUN(test_dense);
    RUN(test_conv);
    RUN(test_maxpool_ties_nan);
    RUN(test_maxpool);
    RUN(test_relu);
    RUN(test_avgpool);
    RUN(test_add);
    RUN(test_flatten);
    RUN(test_dropout);
    RUN(test_dropout_mask);
    RUN(test_batchnorm);
    RUN(test_shapes);
    return CHECK_DONE("test_layers");
}
