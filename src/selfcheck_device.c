/* Device agreement checks (l2rw check --device D, l2rw_self_check_device):
 * the same net on the CPU and on device D, with the same parameters,
 * computes the same values.
 *
 * For each zoo model at a small size (mlp; lenet; resnet8, batch norm;
 * wrn-10-1 with dropout 0.3; in the full run also lenet on a batch of
 * 136, more than one of the CUDA convolution's 128-example chunks), two
 * nets are built, one on the CPU (the reference) and one on D, and the
 * CPU net's parameters and statistics are written into D's net before
 * every stage, so that each check measures one stage only. Shapes: x
 * [n, c, h, w], labels and example weights [n], logits [n, K], the
 * parameter-shaped buffers [P], the running statistics [S].
 *   round trip  parameters and statistics written to D and read back
 *               (exact on every device: a transfer does not round);
 *   train       TRAIN_FROZEN forward (dropout key set) -> logits,
 *               cross-entropy losses [n], gradient [P] of the backward
 *               of sum_i w_i l_i;
 *   tangent     u [n] of a forward with tangent along one random
 *               direction (the same on both);
 *   l2rw step   one l2rw_method_step (l2rw, meta-params all, SGD with
 *               momentum 0.9 and weight decay; validation batch sharing
 *               half its examples with the training batch, so that some
 *               u_i are positive): the weights w [n], the parameter
 *               update [P] and the running-statistics update [S] (end to
 *               end: v, u and w all computed on D);
 *   eval        EVAL forward after that step (running statistics used);
 *   adamw       two AdamW steps (weight decay, clipping at half the
 *               gradient's norm) from the same gradient, written into
 *               both nets: the parameter update [P].
 * Updates are compared as differences p_after - p_before (both from the
 * same p_before): the parameters themselves would hide an update's error
 * under their own magnitude.
 *
 * Error of a buffer: max_j |dev_j - cpu_j| / max_j |cpu_j| (normwise).
 * Elementwise relative errors are meaningless where an entry is small by
 * cancellation (a gradient entry, a logit near 0): the rounding of such
 * an entry is of the order of its terms, which the buffer's largest
 * entry bounds.
 *
 * Tolerances. On the CPU and on "checked" (the CPU's kernels on the
 * checked arena) every buffer must be bit-identical (memcmp): any
 * difference is a bug in a device code path. On CUDA the GEMMs and
 * convolutions (im2col and cuBLAS, FP32, TF32 off) sum in another order
 * than OpenBLAS, and the per-example path's dot products sum in double
 * where the CPU uses 16 float lanes; every other kernel does the CPU's
 * float operations in the CPU's order (cuda_backend.h). A k-term product
 * then agrees to 2 (k + 4) 2^-24 sum |terms| (the worst-case float bound
 * of both sides: 7e-5 of sum |terms| for k = 576, the largest K here,
 * 3x3 convolutions on 64 channels; the weight gradients sum k = n P
 * terms, 2e4 on the 136-example batch). Worst-case bounds compound over
 * layers and through cancellation into useless numbers, so the
 * tolerances are what reordering does, with a margin: measured on the
 * CPU with every cblas_sgemm replaced by a float loop (no FMA) that sums
 * each dot product from a random start in two random parts, so that the
 * two nets sum every product differently (pessimistic: blocked FMA GEMMs
 * round less). The worst over 10 runs is in each comment; each
 * tolerance is 20 to 60 times that. A rounding difference is random and
 * small; a wrong rule (an index, a sign, a missing term) moves values by
 * a sizable part of their magnitude. With the GEMM inputs of both nets
 * rounded to TF32 (10-bit mantissa) the same experiment gave 1e-4 to
 * 5e-4 on logits, gradient and u: a GEMM left in TF32 fails. The dot products: the CPU's own
 * check "scores (meta-params all) vs per-example backward" (float lanes
 * against a double sum) measures that difference at 1.4e-7 of max |u|.
 * The run takes a few seconds on the CPU and on checked. */
#define _POSIX_C_SOURCE 200809L
#include "selfcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    Q_ROUNDTRIP,
    Q_LOGITS_TRAIN,
    Q_LOSSES,
    Q_GRADS,
    Q_U,
    Q_WEIGHTS,
    Q_SGD,
    Q_STATE,
    Q_LOGITS_EVAL,
    Q_ADAMW,
    Q_COUNT
} quantity;

typedef struct {
    const char *name;
    double cuda_tol; /* normwise, see above; 0: exact on CUDA too */
} quantity_def;

static const quantity_def QUANTITIES[Q_COUNT] = {
    {"round trip", 0.0}, /* a transfer does not round */
    /* forward through every layer's GEMM: measured 7.1e-7 */
    {"logits (train)", 2e-5},
    /* log-softmax of those logits: measured 6.3e-7 */
    {"losses", 2e-5},
    /* backward GEMMs, k up to n P: measured 8.3e-7 */
    {"gradient", 5e-5},
    /* fused forward+tangent GEMMs and the loss's u: measured 2.2e-6 */
    {"u_i (tangent)", 5e-5},
    /* v (a backward), u, normalisation: measured 8.6e-7 */
    {"L2RW weights", 5e-5},
    /* the step's weighted gradient: measured 3.9e-6, one ulp of the
     * largest parameter (1.1) over the largest update (0.03) */
    {"SGD update (l2rw step)", 1e-4},
    /* batch means and variances of the step's forward: measured 4.6e-7 */
    {"running statistics", 2e-5},
    /* forward with running statistics: measured 5.9e-7 */
    {"logits (eval)", 2e-5},
    /* element-wise kernels in the CPU's order from the same gradient
     * (measured 0); only the clipping norm, a double sum in another
     * order, may move the scale by an ulp: a few ulps of the largest
     * parameter (~1) over an update of ~lr = 1e-2 */
    {"AdamW update", 1e-4},
};

/* ------------------------------------------------------------ harness */

typedef l2rw__tally tally; /* selfcheck.h */

typedef struct {
    const char *model;
    int c, h, w, classes, n;
    int full_only; /* skipped by quick */
} dev_case;

enum { CASE_BATCH = 8 };

static const dev_case DEV_CASES[] = {
    {"mlp", 1, 8, 8, 4, CASE_BATCH, 0},
    {"lenet", 1, 16, 16, 4, CASE_BATCH, 0},
    {"resnet8", 3, 16, 16, 4, CASE_BATCH, 0},
    {"wrn-10-1:0.3", 3, 8, 8, 4, CASE_BATCH, 0},
    /* 136 > 128: the CUDA convolutions run in two chunks */
    {"lenet", 1, 16, 16, 4, 136, 1},
};

/* The two nets of one case and their host buffers. */
typedef struct {
    tally *t;
    char label[80];   /* "cuda:0 resnet8", "checked lenet n=136" */
    int exact;        /* bit-identical required */
    int tamper;       /* l2rw__self_check_device's test hook */
    l2rw_net *ref, *dev;
    size_t np, ns, nl, nx;
    int n;
    float *x, *vx, *w, *wd, *loss, *lossd, *u, *ud, *dir;
    float *buf, *buf2, *before, *delta;
    int32_t *y, *vy;
} pair;

/* Compares D's values a [len] with the CPU's ref [len] and reports. */
static void compare(pair *p, quantity q, const float *a, const float *ref,
                    size_t len, const char *extra)
{
    const int exact = p->exact || QUANTITIES[q].cuda_tol == 0.0;
    const double tol = exact ? 0.0 : QUANTITIES[q].cuda_tol;
    double dmax = 0.0, rmax = 0.0;
    size_t worst = 0;
    int nan = 0;
    for (size_t j = 0; j < len; j++) {
        double d = fabs((double)a[j] - (double)ref[j]);
        if (isnan(d)) {
            if (!nan) worst = j;
            nan = 1;
        } else if (d > dmax) {
            dmax = d;
            if (!nan) worst = j;
        }
        rmax = fmax(rmax, fabs((double)ref[j]));
    }
    double err = nan ? NAN : rmax > 0.0 ? dmax / rmax
                             : dmax > 0.0 ? INFINITY : 0.0;
    int same = len == 0 || memcmp(a, ref, len * sizeof *a) == 0;
    int passed = exact ? same : !nan && err <= tol;
    char name[160], tol_text[32], detail[400];
    if (exact) snprintf(tol_text, sizeof tol_text, "bits");
    else snprintf(tol_text, sizeof tol_text, "tol %.0e", tol);
    snprintf(name, sizeof name, "%s %s (%s)", p->label, QUANTITIES[q].name,
             tol_text);
    snprintf(detail, sizeof detail,
             "%zu values %s; max |dev - cpu| %.3g at [%zu] (cpu %.9g, dev "
             "%.9g), max |cpu| %.3g; %s%s%s",
             len, same ? "bit-identical" : "differ", dmax, worst,
             len ? (double)ref[worst] : 0.0, len ? (double)a[worst] : 0.0,
             rmax,
             exact ? "bit-identical required" : "normwise tolerance",
             extra ? "; " : "", extra ? extra : "");
    l2rw__tally_report(p->t, name, passed, err, detail);
}

static void report_error(pair *p, const char *stage, l2rw_status s)
{
    char name[160], detail[600];
    snprintf(name, sizeof name, "%s %s", p->label, stage);
    snprintf(detail, sizeof detail, "%s: %s", l2rw_strerror(s),
             l2rw_last_error());
    l2rw__tally_report(p->t, name, 0, 0.0, detail);
}

/* D's buffer into p->buf. */
static l2rw_status dev_read(pair *p, l2rw_net_buffer which, size_t count)
{
    return l2rw_net_read(p->dev, which, 0, count, p->buf);
}

/* D's net gets the CPU net's parameters and statistics. The test hook
 * then moves the first parameter of D's net by 2^-10 of its value (one
 * ulp can vanish in the rounding of a sum). */
static l2rw_status sync_nets(pair *p)
{
    L2RW_TRY(l2rw_net_write(p->dev, L2RW_NET_PARAMS, 0, p->np,
                            l2rw_net_params(p->ref)));
    if (p->ns)
        L2RW_TRY(l2rw_net_write(p->dev, L2RW_NET_STATE, 0, p->ns,
                                l2rw_net_state(p->ref)));
    if (p->tamper) {
        float v = l2rw_net_params(p->ref)[0] * (1.0f + 0x1p-10f);
        L2RW_TRY(l2rw_net_write(p->dev, L2RW_NET_PARAMS, 0, 1, &v));
    }
    return L2RW_OK;
}

/* ------------------------------------------------------------- stages */

static l2rw_status stage_round_trip(pair *p)
{
    L2RW_TRY(sync_nets(p));
    /* parameters and statistics in one buffer: one check */
    size_t len = p->np + p->ns;
    float *ref = p->delta, *got = p->buf2;
    memcpy(ref, l2rw_net_params(p->ref), p->np * sizeof *ref);
    if (p->ns)
        memcpy(ref + p->np, l2rw_net_state(p->ref), p->ns * sizeof *ref);
    L2RW_TRY(l2rw_net_read(p->dev, L2RW_NET_PARAMS, 0, p->np, got));
    if (p->ns)
        L2RW_TRY(l2rw_net_read(p->dev, L2RW_NET_STATE, 0, p->ns,
                               got + p->np));
    compare(p, Q_ROUNDTRIP, got, ref, len, NULL);
    return L2RW_OK;
}

static l2rw_status train_pass(l2rw_net *net, pair *p, float *loss)
{
    l2rw_net_set_dropout_key(net, 77);
    L2RW_TRY(l2rw_net_forward(net, p->x, p->n, L2RW_MODE_TRAIN_FROZEN, 0));
    L2RW_TRY(l2rw_net_loss(net, p->y, NULL, loss, NULL));
    return l2rw_net_backward(net, p->w);
}

static l2rw_status stage_train(pair *p)
{
    L2RW_TRY(sync_nets(p));
    L2RW_TRY(train_pass(p->ref, p, p->loss));
    L2RW_TRY(train_pass(p->dev, p, p->lossd));
    L2RW_TRY(dev_read(p, L2RW_NET_LOGITS, p->nl));
    compare(p, Q_LOGITS_TRAIN, p->buf, l2rw_net_logits(p->ref), p->nl, NULL);
    compare(p, Q_LOSSES, p->lossd, p->loss, (size_t)p->n, NULL);
    L2RW_TRY(dev_read(p, L2RW_NET_GRADS, p->np));
    compare(p, Q_GRADS, p->buf, l2rw_net_grads(p->ref), p->np, NULL);
    return L2RW_OK;
}

static l2rw_status tangent_pass(l2rw_net *net, pair *p, float *u)
{
    l2rw_net_set_dropout_key(net, 78);
    L2RW_TRY(l2rw_net_write(net, L2RW_NET_TANGENTS, 0, p->np, p->dir));
    L2RW_TRY(l2rw_net_forward(net, p->x, p->n, L2RW_MODE_TRAIN_FROZEN, 1));
    return l2rw_net_loss(net, p->y, NULL, p->loss, u);
}

static l2rw_status stage_tangent(pair *p)
{
    L2RW_TRY(sync_nets(p));
    L2RW_TRY(tangent_pass(p->ref, p, p->u));
    L2RW_TRY(tangent_pass(p->dev, p, p->ud));
    compare(p, Q_U, p->ud, p->u, (size_t)p->n, NULL);
    return L2RW_OK;
}

/* One l2rw_method_step of net with a fresh method and SGD. */
static l2rw_status l2rw_step(l2rw_net *net, pair *p, float *w)
{
    l2rw_method_cfg mc = l2rw_method_cfg_default();
    mc.method = L2RW_METHOD_L2RW;
    mc.meta_params = L2RW_META_ALL;
    mc.seed = 31;
    l2rw_sgd_cfg sc = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 5e-4f,
                       .decay = 1.0f};
    l2rw_method_ctx *m = NULL;
    l2rw_sgd *opt = NULL;
    l2rw_status s = l2rw_method_create(&m, &mc, net);
    if (s == L2RW_OK) s = l2rw_sgd_create(&opt, net, &sc);
    if (s == L2RW_OK)
        s = l2rw_method_step(m, net, opt, 0, p->x, p->y, NULL, p->n, p->vx,
                             p->vy, p->n, NULL, w);
    l2rw_sgd_free(opt);
    l2rw_method_free(m);
    return s;
}

/* delta = after - before, for len floats. */
static void diff(float *delta, const float *after, const float *before,
                 size_t len)
{
    for (size_t j = 0; j < len; j++) delta[j] = after[j] - before[j];
}

static l2rw_status stage_step(pair *p)
{
    L2RW_TRY(sync_nets(p));
    float *p0 = p->before, *s0 = p->before + p->np;
    memcpy(p0, l2rw_net_params(p->ref), p->np * sizeof *p0);
    if (p->ns) memcpy(s0, l2rw_net_state(p->ref), p->ns * sizeof *s0);
    L2RW_TRY(l2rw_step(p->ref, p, p->w));
    L2RW_TRY(l2rw_step(p->dev, p, p->wd));
    int pos = 0;
    for (int i = 0; i < p->n; i++) pos += p->w[i] > 0.0f;
    char extra[64];
    snprintf(extra, sizeof extra, "%d of %d weights positive on the CPU",
             pos, p->n);
    compare(p, Q_WEIGHTS, p->wd, p->w, (size_t)p->n, extra);

    diff(p->delta, l2rw_net_params(p->ref), p0, p->np);
    L2RW_TRY(dev_read(p, L2RW_NET_PARAMS, p->np));
    diff(p->buf2, p->buf, p0, p->np);
    compare(p, Q_SGD, p->buf2, p->delta, p->np, NULL);
    if (p->ns) {
        diff(p->delta, l2rw_net_state(p->ref), s0, p->ns);
        L2RW_TRY(dev_read(p, L2RW_NET_STATE, p->ns));
        diff(p->buf2, p->buf, s0, p->ns);
        compare(p, Q_STATE, p->buf2, p->delta, p->ns, NULL);
    }
    /* The CPU net's gradient buffer keeps the step's weighted gradient:
     * the AdamW stage starts from it. */
    return L2RW_OK;
}

static l2rw_status stage_eval(pair *p)
{
    L2RW_TRY(sync_nets(p));
    L2RW_TRY(l2rw_net_forward(p->ref, p->x, p->n, L2RW_MODE_EVAL, 0));
    L2RW_TRY(l2rw_net_forward(p->dev, p->x, p->n, L2RW_MODE_EVAL, 0));
    L2RW_TRY(dev_read(p, L2RW_NET_LOGITS, p->nl));
    compare(p, Q_LOGITS_EVAL, p->buf, l2rw_net_logits(p->ref), p->nl, NULL);
    return L2RW_OK;
}

static l2rw_status adamw_steps(l2rw_net *net, const l2rw_optim_cfg *ext)
{
    l2rw_sgd_cfg sc = {.lr = 1e-2f, .weight_decay = 1e-2f, .decay = 1.0f};
    l2rw_sgd *opt = NULL;
    l2rw_status s = l2rw_optim_create(&opt, net, &sc, ext);
    for (long step = 0; s == L2RW_OK && step < 2; step++)
        s = l2rw_sgd_step(opt, net, step);
    l2rw_sgd_free(opt);
    return s;
}

static l2rw_status stage_adamw(pair *p)
{
    L2RW_TRY(sync_nets(p));
    const float *g = l2rw_net_grads(p->ref);
    L2RW_TRY(l2rw_net_write(p->dev, L2RW_NET_GRADS, 0, p->np, g));
    double sq = 0.0;
    for (size_t j = 0; j < p->np; j++) sq += (double)g[j] * g[j];
    l2rw_optim_cfg ext = l2rw_optim_cfg_default(L2RW_OPTIM_ADAMW);
    ext.clip_grad_norm = (float)(0.5 * sqrt(sq)); /* 0: no clipping */
    memcpy(p->before, l2rw_net_params(p->ref), p->np * sizeof *p->before);
    L2RW_TRY(adamw_steps(p->ref, &ext));
    L2RW_TRY(adamw_steps(p->dev, &ext));
    diff(p->delta, l2rw_net_params(p->ref), p->before, p->np);
    L2RW_TRY(dev_read(p, L2RW_NET_PARAMS, p->np));
    diff(p->buf2, p->buf, p->before, p->np);
    compare(p, Q_ADAMW, p->buf2, p->delta, p->np, NULL);
    return L2RW_OK;
}

/* ---------------------------------------------------------- one case */

static void fill_normal(float *v, size_t n, l2rw_rng *rng)
{
    for (size_t j = 0; j < n; j++) v[j] = (float)l2rw_rng_normal(rng);
}

/* The batches: x ~ N(0, 1), labels uniform, weights positive summing to
 * 1; the validation batch's first half is the training batch's. */
static void fill_batches(pair *p, int classes, uint64_t seed)
{
    l2rw_rng rng;
    l2rw_rng_seed(&rng, seed);
    size_t per = p->nx / (size_t)p->n;
    fill_normal(p->x, p->nx, &rng);
    fill_normal(p->vx, p->nx, &rng);
    memcpy(p->vx, p->x, (size_t)(p->n / 2) * per * sizeof *p->x);
    fill_normal(p->dir, p->np, &rng);
    double tot = 0.0;
    for (int i = 0; i < p->n; i++) {
        p->y[i] = (int32_t)l2rw_rng_below(&rng, (uint64_t)classes);
        p->vy[i] = i < p->n / 2
                       ? p->y[i]
                       : (int32_t)l2rw_rng_below(&rng, (uint64_t)classes);
        p->w[i] = (float)(0.5 + l2rw_rng_uniform(&rng));
        tot += p->w[i];
    }
    for (int i = 0; i < p->n; i++) p->w[i] = (float)(p->w[i] / tot);
}

static l2rw_status pair_make(pair *p, const dev_case *dc,
                             const l2rw_device *dev, uint64_t seed)
{
    L2RW_TRY(l2rw_net_create(&p->ref, dc->model, dc->c, dc->h, dc->w,
                             dc->classes, dc->n, seed));
    L2RW_TRY(l2rw_net_create_on(&p->dev, dc->model, dc->c, dc->h, dc->w,
                                dc->classes, dc->n, seed, dev));
    p->n = dc->n;
    p->np = l2rw_net_num_params(p->ref);
    p->ns = l2rw_net_num_state(p->ref);
    p->nl = (size_t)dc->n * (size_t)dc->classes;
    p->nx = (size_t)dc->n * dc->c * dc->h * dc->w;
    size_t big = p->np + p->ns;
    if (big < p->nl) big = p->nl;
    size_t n = (size_t)dc->n;
    float **bufs[] = {&p->buf, &p->buf2, &p->before, &p->delta};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        if (!(*bufs[k] = malloc(big * sizeof(float))))
            return l2rw__fail(L2RW_ERR_NOMEM, "device check: out of memory");
    float **small[] = {&p->w, &p->wd, &p->loss, &p->lossd, &p->u, &p->ud};
    for (size_t k = 0; k < sizeof small / sizeof small[0]; k++)
        if (!(*small[k] = malloc(n * sizeof(float))))
            return l2rw__fail(L2RW_ERR_NOMEM, "device check: out of memory");
    p->x = malloc(p->nx * sizeof *p->x);
    p->vx = malloc(p->nx * sizeof *p->vx);
    p->dir = malloc(p->np * sizeof *p->dir);
    p->y = malloc(n * sizeof *p->y);
    p->vy = malloc(n * sizeof *p->vy);
    if (!p->x || !p->vx || !p->dir || !p->y || !p->vy)
        return l2rw__fail(L2RW_ERR_NOMEM, "device check: out of memory");
    fill_batches(p, dc->classes, seed + 1);
    return L2RW_OK;
}

static void pair_free(pair *p)
{
    l2rw_net_free(p->ref);
    l2rw_net_free(p->dev);
    float *f[] = {p->x, p->vx, p->w, p->wd, p->loss, p->lossd, p->u,
                  p->ud, p->dir, p->buf, p->buf2, p->before, p->delta};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) free(f[k]);
    free(p->y);
    free(p->vy);
}

typedef l2rw_status (*stage_fn)(pair *p);

static const struct {
    const char *name;
    stage_fn run;
} STAGES[] = {
    {"round trip", stage_round_trip}, {"train pass", stage_train},
    {"tangent pass", stage_tangent},  {"l2rw step", stage_step},
    {"eval pass", stage_eval},        {"adamw steps", stage_adamw},
};

static void check_case(tally *t, const dev_case *dc, const l2rw_device *dev,
                       int tamper, uint64_t seed)
{
    pair p;
    memset(&p, 0, sizeof p);
    p.t = t;
    p.tamper = tamper;
    p.exact = dev->kind != L2RW_DEVICE_CUDA;
    char dname[32];
    l2rw_device_format(dev, dname, sizeof dname);
    if (dc->n != CASE_BATCH)
        snprintf(p.label, sizeof p.label, "%s %s n=%d", dname, dc->model,
                 dc->n);
    else snprintf(p.label, sizeof p.label, "%s %s", dname, dc->model);
    l2rw_status s = pair_make(&p, dc, dev, seed);
    if (s != L2RW_OK) report_error(&p, "nets", s);
    size_t n_stages = sizeof STAGES / sizeof STAGES[0];
    for (size_t k = 0; s == L2RW_OK && k < n_stages; k++) {
        s = STAGES[k].run(&p);
        if (s != L2RW_OK) report_error(&p, STAGES[k].name, s);
    }
    pair_free(&p);
}

l2rw_status l2rw__self_check_device(l2rw_check_fn report, void *ctx,
                                    const l2rw_device *dev, int quick,
                                    int tamper, l2rw_check_summary *out)
{
    if (!report || !dev || !out)
        return l2rw__fail(L2RW_ERR_ARG, "self_check_device: NULL argument");
    L2RW_TRY(l2rw_device_available(dev, NULL, 0));
    tally t = {report, ctx, {0, 0, 0.0}};
    size_t n_cases = sizeof DEV_CASES / sizeof DEV_CASES[0];
    for (size_t k = 0; k < n_cases; k++) {
        if (quick && DEV_CASES[k].full_only) continue;
        check_case(&t, &DEV_CASES[k], dev, tamper, 4000 + (uint64_t)k);
    }
    *out = t.sum;
    return L2RW_OK;
}

l2rw_status l2rw_self_check_device(l2rw_check_fn report, void *ctx,
                                   const l2rw_device *dev, int quick,
                                   l2rw_check_summary *out)
{
    return l2rw__self_check_device(report, ctx, dev, quick, 0, out);
}
