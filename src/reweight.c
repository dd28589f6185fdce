/* Reweighting methods: names, the method context and the one step
 * function of every method (l2rw_reweight.h).
 *
 * Shapes: training batch x [n, c, h, w], y [n]; validation batch
 * vx [nv, c, h, w], vy [nv]; weights, losses, scores [n].
 *
 * Every method ends in the same update: backward of sum_i w_i l_i from
 * the forward already done, then the SGD step. Weights that come out
 * uniform take l2rw_net_backward(NULL), so those steps are plain steps
 * bit for bit. */
#include "common.h"
#include "kernels.h"
#include "loss.h"
#include "net_internal.h"
#include "selfcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Salts of the per-step keys: each kind of random draw gets its own
 * stream, a pure function of (seed, step). */
enum {
    KEY_TRAIN_DROPOUT = 0x74726e64, /* training-pass dropout masks */
    KEY_VAL_DROPOUT = 0x76616c64,   /* validation-pass dropout masks */
    KEY_FT_DROPOUT = 0x66746472,    /* fine-tuning dropout masks */
    KEY_RANDOM = 0x726e6477,        /* random weights */
    KEY_BALANCED = 0x62616c63       /* resample batches */
};

/* l2rw_self_check refers to the reweighting checks weakly, and a static
 * link pulls an archive member only for a strong reference: this pointer
 * is one, so every program that links the methods also gets their checks
 * (reweight_check.c) into `l2rw check`. */
l2rw_status (*const l2rw__reweight_selfcheck_ref)(l2rw_check_fn, void *,
                                                  l2rw_check_summary *) =
    l2rw__selfcheck_reweight;

static const char *const method_names[L2RW_NUM_METHODS] = {
    "plain", "l2rw", "random", "proportion", "resample", "hard-mining",
    "bootstrap-soft", "bootstrap-hard", "gce", "sce"};

const char *l2rw_method_names(void)
{
    return "plain, l2rw, random, proportion, resample, hard-mining, "
           "bootstrap-soft, bootstrap-hard, gce, sce";
}

const char *l2rw_method_name(l2rw_method m)
{
    if ((int)m < 0 || (int)m >= L2RW_NUM_METHODS) return "?";
    return method_names[m];
}

l2rw_status l2rw_method_parse(const char *name, l2rw_method *out)
{
    if (!name || !out)
        return l2rw__fail(L2RW_ERR_ARG, "method: NULL argument");
    for (int i = 0; i < L2RW_NUM_METHODS; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (l2rw_method)i;
            return L2RW_OK;
        }
    return l2rw__fail(L2RW_ERR_ARG, "unknown method '%s' (valid: %s)", name,
                      l2rw_method_names());
}

l2rw_loss l2rw_method_loss(l2rw_method m)
{
    switch (m) {
    case L2RW_METHOD_BOOTSTRAP_SOFT:
        return l2rw_loss_default(L2RW_LOSS_BOOTSTRAP_SOFT);
    case L2RW_METHOD_BOOTSTRAP_HARD:
        return l2rw_loss_default(L2RW_LOSS_BOOTSTRAP_HARD);
    case L2RW_METHOD_GCE:
        return l2rw_loss_default(L2RW_LOSS_GCE);
    case L2RW_METHOD_SCE:
        return l2rw_loss_default(L2RW_LOSS_SCE);
    default:
        return l2rw_loss_default(L2RW_LOSS_CE);
    }
}

l2rw_status l2rw_meta_params_parse(const char *name, l2rw_meta_params *out)
{
    if (!name || !out)
        return l2rw__fail(L2RW_ERR_ARG, "meta-params: NULL argument");
    if (strcmp(name, "all") == 0) {
        *out = L2RW_META_ALL;
        return L2RW_OK;
    }
    if (strcmp(name, "last") == 0) {
        *out = L2RW_META_LAST;
        return L2RW_OK;
    }
    return l2rw__fail(L2RW_ERR_ARG,
                      "unknown meta-params '%s' (valid: all, last)", name);
}

const char *l2rw_meta_params_name(l2rw_meta_params p)
{
    return p == L2RW_META_ALL ? "all" : p == L2RW_META_LAST ? "last" : "?";
}

/* --------------------------------------------------------------- context */

struct l2rw_method_ctx {
    l2rw_method_cfg cfg;  /* train_y points to the copy below */
    int classes, max_batch;
    int32_t *train_y;     /* [n_train] copy, or NULL */
    long *count;          /* [classes] examples per given label */
    uint8_t *majority;    /* [classes] hard-mining majority classes */
    l2rw_balanced bal;    /* resample draws */
    int has_bal;
    float *w, *loss, *u;  /* [max_batch] scratch of a step */
    int32_t *order;       /* [max_batch] hard-mining sort */
    /* l2rw META_LAST without a tangent pass (see last_scores) */
    int last_d;           /* inputs of the last dense layer, 0 unknown */
    float *dzv, *zdot;    /* [max_batch, K] logit gradients, tangents */
    float *last_v;        /* [K, d] then [K]: v on the last layer */
    /* Data parallel (l2rw_method_set_comm). The whole batch of a step:
     * g_n examples (labels g_y), this rank's share starting at g_off,
     * a validation batch of g_nv; gw, gu, gloss, gorder hold the whole
     * batch's weights, scores, losses and hard-mining order. In one
     * process (dist 0) they are w, u, loss, order themselves and the
     * gathers do nothing. */
    l2rw_comm comm;
    int dist;
    int g_n, g_off, g_nv;
    const int32_t *g_y;
    float *gw, *gu, *gloss;
    int32_t *gorder;
    float *host_grads;    /* [num_params] host copy of a device net's
                             gradient for the sums over ranks, or NULL */
};

/* Input activations [n, dim] of the last dense layer (the one of
 * l2rw_net_last_layer_range) in the last forward, NULL before one. The
 * engine may provide it (net.c); the reference is weak so that this
 * module links either way and then computes META_LAST with the masked
 * tangent pass instead. */
#if defined(__GNUC__)
extern const float *l2rw__net_last_input(const l2rw_net *net, int *dim)
    __attribute__((weak));
#define HAVE_LAST_INPUT() (l2rw__net_last_input != NULL)
#else
#define HAVE_LAST_INPUT() 0
#define l2rw__net_last_input(net, dim) ((const float *)NULL)
#endif

l2rw_method_cfg l2rw_method_cfg_default(void)
{
    l2rw_method_cfg c;
    memset(&c, 0, sizeof c);
    c.method = L2RW_METHOD_PLAIN;
    c.meta_params = L2RW_META_ALL;
    return c;
}

static int method_needs_labels(l2rw_method m)
{
    return m == L2RW_METHOD_PROPORTION || m == L2RW_METHOD_RESAMPLE ||
           m == L2RW_METHOD_HARD_MINING;
}

static l2rw_status check_cfg(const l2rw_method_cfg *c, int classes)
{
    if ((int)c->method < 0 || (int)c->method >= L2RW_NUM_METHODS)
        return l2rw__fail(L2RW_ERR_ARG, "method: unknown method %d",
                          (int)c->method);
    if (c->meta_params != L2RW_META_ALL && c->meta_params != L2RW_META_LAST)
        return l2rw__fail(L2RW_ERR_ARG, "method: unknown meta-params %d",
                          (int)c->meta_params);
    if (c->warmup_steps < 0)
        return l2rw__fail(L2RW_ERR_ARG, "method: warmup steps %ld < 0",
                          c->warmup_steps);
    if (c->n_train < 0 || (c->n_train > 0 && !c->train_y))
        return l2rw__fail(L2RW_ERR_ARG, "method: bad training labels "
                                        "(n_train %d)", c->n_train);
    if (method_needs_labels(c->method) && c->n_train == 0)
        return l2rw__fail(L2RW_ERR_ARG,
                          "method %s needs the training labels (class "
                          "counts)", l2rw_method_name(c->method));
    for (int i = 0; i < c->n_train; i++)
        if (c->train_y[i] < 0 || c->train_y[i] >= classes)
            return l2rw__fail(L2RW_ERR_LABEL,
                              "method: training label %d of example %d "
                              "outside [0, %d)", (int)c->train_y[i], i,
                              classes);
    return L2RW_OK;
}

/* Majority classes of hard mining: count strictly above the mean count
 * of the classes present (see the header). */
static void mark_majority(l2rw_method_ctx *m)
{
    long total = 0, present = 0;
    for (int c = 0; c < m->classes; c++) {
        total += m->count[c];
        present += m->count[c] > 0;
    }
    for (int c = 0; c < m->classes; c++)
        /* count > total / present, in integers */
        m->majority[c] = present > 0 && m->count[c] * present > total;
}

/* One process: the whole batch's arrays are the share's. */
static void dist_alias(l2rw_method_ctx *m)
{
    m->dist = 0;
    m->gw = m->w;
    m->gu = m->u;
    m->gloss = m->loss;
    m->gorder = m->order;
}

static void dist_free(l2rw_method_ctx *m)
{
    if (m->dist) {
        l2rw__afree(m->gw);
        l2rw__afree(m->gu);
        l2rw__afree(m->gloss);
        free(m->gorder);
    }
    dist_alias(m);
}

static l2rw_status ctx_alloc(l2rw_method_ctx *m)
{
    size_t nb = (size_t)m->max_batch;
    m->w = l2rw__aalloc(nb, sizeof(float));
    m->loss = l2rw__aalloc(nb, sizeof(float));
    m->u = l2rw__aalloc(nb, sizeof(float));
    m->order = l2rw__calloc(nb, sizeof(int32_t));
    m->count = l2rw__calloc((size_t)m->classes, sizeof(long));
    m->majority = l2rw__calloc((size_t)m->classes, 1);
    if (!m->w || !m->loss || !m->u || !m->order || !m->count || !m->majority)
        return l2rw__fail(L2RW_ERR_NOMEM, "method: out of memory");
    if (m->last_d > 0) {
        size_t kk = (size_t)m->classes;
        m->dzv = l2rw__aalloc(nb * kk, sizeof(float));
        m->zdot = l2rw__aalloc(nb * kk, sizeof(float));
        m->last_v = l2rw__aalloc(kk * ((size_t)m->last_d + 1), sizeof(float));
        if (!m->dzv || !m->zdot || !m->last_v)
            return l2rw__fail(L2RW_ERR_NOMEM, "method: out of memory");
    }
    if (m->cfg.n_train > 0) {
        m->train_y = l2rw__calloc((size_t)m->cfg.n_train, sizeof(int32_t));
        if (!m->train_y)
            return l2rw__fail(L2RW_ERR_NOMEM, "method: out of memory");
        memcpy(m->train_y, m->cfg.train_y,
               (size_t)m->cfg.n_train * sizeof(int32_t));
    }
    m->cfg.train_y = m->train_y;
    return L2RW_OK;
}

/* d of the last dense layer (W [K, d], b [K]) when the fast META_LAST
 * path applies, else 0. */
static int last_layer_inputs(const l2rw_method_ctx *m, const l2rw_net *net)
{
    size_t b = 0, e = 0, k = (size_t)m->classes;
    if (m->cfg.method != L2RW_METHOD_L2RW ||
        m->cfg.meta_params != L2RW_META_LAST || !HAVE_LAST_INPUT())
        return 0;
    l2rw_net_last_layer_range(net, &b, &e);
    if (e <= b || (e - b) % k != 0 || (e - b) / k < 2 ||
        (e - b) / k - 1 > (size_t)2147483647)
        return 0;
    return (int)((e - b) / k - 1);
}

l2rw_status l2rw_method_create(l2rw_method_ctx **out,
                               const l2rw_method_cfg *cfg,
                               const l2rw_net *net)
{
    if (!out || !cfg || !net)
        return l2rw__fail(L2RW_ERR_ARG, "method: NULL argument");
    *out = NULL;
    int classes = cfg->classes ? cfg->classes : l2rw_net_classes(net);
    if (classes != l2rw_net_classes(net))
        return l2rw__fail(L2RW_ERR_SHAPE,
                          "method: %d classes but the net has %d", classes,
                          l2rw_net_classes(net));
    L2RW_TRY(check_cfg(cfg, classes));
    l2rw_method_ctx *m = calloc(1, sizeof *m);
    if (!m) return l2rw__fail(L2RW_ERR_NOMEM, "method: out of memory");
    m->cfg = *cfg;
    m->cfg.classes = m->classes = classes;
    m->max_batch = l2rw_net_max_batch(net);
    m->last_d = last_layer_inputs(m, net);
    l2rw_status s = ctx_alloc(m);
    dist_alias(m);
    if (s == L2RW_OK) {
        for (int i = 0; i < m->cfg.n_train; i++) m->count[m->train_y[i]]++;
        mark_majority(m);
        if (cfg->method == L2RW_METHOD_RESAMPLE) {
            s = l2rw_balanced_init(&m->bal, m->train_y, m->cfg.n_train,
                                   classes);
            m->has_bal = s == L2RW_OK;
        }
    }
    if (s != L2RW_OK) {
        l2rw_method_free(m);
        return s;
    }
    *out = m;
    return L2RW_OK;
}

void l2rw_method_free(l2rw_method_ctx *m)
{
    if (!m) return;
    if (m->has_bal) l2rw_balanced_free(&m->bal);
    dist_free(m);
    l2rw__afree(m->host_grads);
    l2rw__afree(m->w);
    l2rw__afree(m->loss);
    l2rw__afree(m->u);
    l2rw__afree(m->dzv);
    l2rw__afree(m->zdot);
    l2rw__afree(m->last_v);
    free(m->order);
    free(m->count);
    free(m->majority);
    free(m->train_y);
    free(m);
}

const l2rw_method_cfg *l2rw_method_config(const l2rw_method_ctx *m)
{
    return m ? &m->cfg : NULL;
}

/* ------------------------------------------------------- data parallel */

void l2rw_shard(int n, int rank, int size, int *begin, int *count)
{
    if (n < 0 || size < 1 || rank < 0 || rank >= size) {
        *begin = 0;
        *count = n > 0 ? n : 0;
        return;
    }
    long long b = (long long)n * rank / size;
    long long e = (long long)n * (rank + 1) / size;
    *begin = (int)b;
    *count = (int)(e - b);
}

l2rw_status l2rw_method_set_comm(l2rw_method_ctx *m, const l2rw_comm *comm)
{
    if (!m) return l2rw__fail(L2RW_ERR_ARG, "method: NULL context");
    if (comm && (comm->size < 1 || comm->rank < 0 ||
                 comm->rank >= comm->size || !comm->sum_f32 ||
                 !comm->sum_f64))
        return l2rw__fail(L2RW_ERR_ARG, "method: bad process group "
                          "(rank %d of %d, or no sum functions)",
                          comm->rank, comm->size);
    dist_free(m);
    if (!comm || comm->size == 1) return L2RW_OK;
    size_t nb = (size_t)comm->size * (size_t)m->max_batch;
    m->gw = l2rw__aalloc(nb, sizeof(float));
    m->gu = l2rw__aalloc(nb, sizeof(float));
    m->gloss = l2rw__aalloc(nb, sizeof(float));
    m->gorder = l2rw__calloc(nb, sizeof(int32_t));
    m->dist = 1;
    m->comm = *comm;
    if (!m->gw || !m->gu || !m->gloss || !m->gorder) {
        dist_free(m);
        return l2rw__fail(L2RW_ERR_NOMEM, "method: out of memory");
    }
    return L2RW_OK;
}

/* all[0..g_n) <- every rank's mine[0..n) at its share: a gather made of
 * a sum (adding zeros is exact). Nothing to do in one process, where all
 * is mine. */
static l2rw_status gather_f32(const l2rw_method_ctx *m, const float *mine,
                              int n, float *all)
{
    if (!m->dist) return L2RW_OK;
    memset(all, 0, (size_t)m->g_n * sizeof *all);
    memcpy(all + m->g_off, mine, (size_t)n * sizeof *all);
    return m->comm.sum_f32(m->comm.ctx, all, (size_t)m->g_n);
}

/* This rank's share of the whole batch's weights into m->w. */
static void share_weights(l2rw_method_ctx *m, int n)
{
    if (m->dist)
        memcpy(m->w, m->gw + m->g_off, (size_t)n * sizeof *m->w);
}

/* The whole batch's weights from the scores m->u[0..n) of this rank's
 * share (gathered), and the share's part in m->w. */
static l2rw_status weights_of_scores(l2rw_method_ctx *m, int n, int *pos)
{
    L2RW_TRY(gather_f32(m, m->u, n, m->gu));
    L2RW_TRY(l2rw_weights_from_scores(m->gu, m->g_n, m->gw, pos));
    share_weights(m, n);
    return L2RW_OK;
}

/* The dropout key of a pass. A mask is a function of the key and the
 * example's index in the pass, which restarts at 0 in every share: over
 * ranks each share takes its own key, or example i of every share would
 * drop the same units. */
static uint64_t pass_key(const l2rw_method_ctx *m, uint64_t key)
{
    return m->dist ? l2rw_hash2(key, (uint64_t)m->comm.rank) : key;
}

/* Gradient buffer <- scale x its sum over the ranks. A net on a device
 * goes through a host copy (the comm sums host memory). */
static l2rw_status sum_grads(l2rw_method_ctx *m, l2rw_net *net, float scale)
{
    float *g = l2rw_net_grads(net);
    size_t np = l2rw_net_num_params(net);
    if (!g) {
        if (!m->host_grads) {
            m->host_grads = l2rw__aalloc(np, sizeof(float));
            if (!m->host_grads)
                return l2rw__fail(L2RW_ERR_NOMEM, "method: out of memory");
        }
        g = m->host_grads;
        L2RW_TRY(l2rw_net_read(net, L2RW_NET_GRADS, 0, np, g));
    }
    if (scale != 1.0f)
        for (size_t i = 0; i < np; i++) g[i] *= scale;
    L2RW_TRY(m->comm.sum_f32(m->comm.ctx, g, np));
    return g == m->host_grads ? l2rw_net_write(net, L2RW_NET_GRADS, 0, np, g)
                              : L2RW_OK;
}

/* Mean of loss[0..n) of this rank's share, over the whole batch of
 * `total` (sum over the ranks). */
static l2rw_status mean_over_ranks(const l2rw_method_ctx *m,
                                   const float *loss, int n, int total,
                                   float *mean)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += loss[i];
    if (m && m->dist) L2RW_TRY(m->comm.sum_f64(m->comm.ctx, &s, 1));
    *mean = (float)(s / (m && m->dist ? total : n));
    return L2RW_OK;
}

static int in_warmup(const l2rw_method_ctx *m, long step)
{
    return step < m->cfg.warmup_steps;
}

int l2rw_method_needs_balanced_batches(const l2rw_method_ctx *m, long step)
{
    return m && m->cfg.method == L2RW_METHOD_RESAMPLE && !in_warmup(m, step);
}

int l2rw_method_needs_validation(const l2rw_method_ctx *m, long step)
{
    return m && m->cfg.method == L2RW_METHOD_L2RW && !in_warmup(m, step);
}

l2rw_status l2rw_method_balanced_batch(const l2rw_method_ctx *m, long step,
                                       int n, int32_t *idx)
{
    if (!m || !idx || n <= 0)
        return l2rw__fail(L2RW_ERR_ARG, "balanced batch: bad arguments");
    if (!m->has_bal)
        return l2rw__fail(L2RW_ERR_ARG,
                          "balanced batch: method %s does not resample",
                          l2rw_method_name(m->cfg.method));
    l2rw_balanced_draw(&m->bal, l2rw_hash2(m->cfg.seed ^ KEY_BALANCED,
                                           (uint64_t)step),
                       n, idx);
    return L2RW_OK;
}

/* --------------------------------------------------------------- weights */

l2rw_status l2rw_weights_from_scores(const float *s, int n, float *w,
                                     int *positive)
{
    if (!s || !w || n <= 0)
        return l2rw__fail(L2RW_ERR_ARG, "weights: bad arguments (n=%d)", n);
    double sum = 0.0;
    int pos = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(s[i]))
            return l2rw__fail(L2RW_ERR_NUMERIC,
                              "weights: non-finite score %g of example %d",
                              (double)s[i], i);
        if (s[i] > 0.0f) {
            sum += s[i];
            pos++;
        }
    }
    for (int i = 0; i < n; i++)
        w[i] = pos && s[i] > 0.0f ? (float)((double)s[i] / sum) : 0.0f;
    if (positive) *positive = pos;
    return L2RW_OK;
}

int l2rw_weights_normalise(const float *s, int n, float *w)
{
    int pos = 0;
    if (l2rw_weights_from_scores(s, n, w, &pos) != L2RW_OK) {
        for (int i = 0; w && i < n; i++) w[i] = 0.0f;
        return 0;
    }
    return pos;
}

static int all_equal(const float *w, int n)
{
    for (int i = 1; i < n; i++)
        if (w[i] != w[0]) return 0;
    return 1;
}

/* -------------------------------------------------------------- the step */

static void stats_begin(l2rw_step_stats *st, int n)
{
    memset(st, 0, sizeof *st);
    st->n = n;
    st->clean_mass = NAN;
    st->val_loss = NAN;
}

/* Weight statistics from the weights used (w, NULL = uniform) and the
 * losses of the forward. */
static void stats_finish(l2rw_step_stats *st, const float *w, int n,
                         const float *loss, const int32_t *y,
                         const int32_t *y_true)
{
    double sum = 0.0, clean = 0.0, lsum = 0.0, wl = 0.0;
    int zero = 0;
    float uni = 1.0f / (float)n;
    for (int i = 0; i < n; i++) {
        double wi = w ? w[i] : uni;
        sum += wi;
        zero += wi == 0.0;
        lsum += loss[i];
        wl += wi * loss[i];
        if (y_true && y[i] == y_true[i]) clean += wi;
    }
    st->weight_sum = sum;
    st->n_zero = zero;
    st->mean_loss = lsum / n;
    st->weighted_loss = wl;
    st->clean_mass = y_true && sum > 0.0 ? clean / sum : NAN;
}

static l2rw_status check_batch(const l2rw_net *net, const float *x,
                               const int32_t *y, int n, const char *what)
{
    if (!x || !y)
        return l2rw__fail(L2RW_ERR_ARG, "%s batch: NULL data", what);
    if (n <= 0 || n > l2rw_net_max_batch(net))
        return l2rw__fail(L2RW_ERR_SHAPE,
                          "%s batch of %d examples (net max batch %d)", what,
                          n, l2rw_net_max_batch(net));
    return L2RW_OK;
}

/* Update from the kept forward and loss: backward of sum w_i l_i (NULL or
 * uniform w: the plain path) and the SGD step; `positive` = 0 means every
 * weight is 0 and the step makes no update. */
typedef l2rw_status (*backward_fn)(l2rw_net *net, const float *w);

/* The update of a weighted step through a given backward (the net's, or
 * the per-example path's). Over ranks, the weights are the share's part
 * of the whole batch's (uniform: 1/g_n each, never the share's mean) and
 * the gradients are summed before the update. */
static l2rw_status update_by(l2rw_method_ctx *m, l2rw_net *net,
                             l2rw_sgd *opt, long step, const float *w,
                             int n, int positive, l2rw_step_stats *st,
                             backward_fn backward)
{
    if (w && positive == 0) {
        st->all_nonpositive = 1;
        return L2RW_OK;
    }
    if (m->dist && !w) {
        for (int i = 0; i < n; i++) m->w[i] = 1.0f / (float)m->g_n;
        w = m->w;
    } else if (!m->dist && w && all_equal(w, n)) {
        w = NULL;
    }
    L2RW_TRY(backward(net, w));
    if (m->dist) L2RW_TRY(sum_grads(m, net, 1.0f));
    L2RW_TRY(l2rw_sgd_step(opt, net, step));
    st->updated = 1;
    return L2RW_OK;
}

static l2rw_status update(l2rw_method_ctx *m, l2rw_net *net,
                          l2rw_sgd *opt, long step, const float *w, int n,
                          int positive, l2rw_step_stats *st)
{
    return update_by(m, net, opt, step, w, n, positive, st,
                     l2rw_net_backward);
}

static void copy_weights(float *w_out, const float *w, int n)
{
    if (!w_out) return;
    for (int i = 0; i < n; i++) w_out[i] = w ? w[i] : 1.0f / (float)n;
}

/* Forward (training mode, no tangent) and per-example loss. */
static l2rw_status forward_loss(l2rw_net *net, const float *x,
                                const int32_t *y, int n,
                                const l2rw_loss *loss, float *out)
{
    L2RW_TRY(l2rw_net_forward(net, x, n, L2RW_MODE_TRAIN, 0));
    return l2rw_net_loss(net, y, loss, out, NULL);
}

l2rw_status l2rw_weighted_step(l2rw_net *net, l2rw_sgd *opt, long step,
                               const float *x, const int32_t *y, int n,
                               const l2rw_loss *loss, const float *w,
                               float *loss_out)
{
    if (!net || !opt)
        return l2rw__fail(L2RW_ERR_ARG, "weighted step: NULL net/optimizer");
    L2RW_TRY(check_batch(net, x, y, n, "training"));
    for (int i = 0; w && i < n; i++)
        if (!(w[i] >= 0.0f) || !isfinite(w[i]))
            return l2rw__fail(L2RW_ERR_ARG,
                              "weighted step: weight %g of example %d is "
                              "not finite and >= 0", (double)w[i], i);
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    L2RW_TRY(l2rw_net_forward(net, x, n, L2RW_MODE_TRAIN, 0));
    L2RW_TRY(l2rw_net_loss(net, y, loss ? loss : &ce, loss_out, NULL));
    L2RW_TRY(l2rw_net_backward(net, w));
    return l2rw_sgd_step(opt, net, step);
}

/* ---------------------------------------------------------------- l2rw */

/* Tangent buffer = v (the gradient buffer), restricted to the last dense
 * layer for META_LAST; on the net's device. */
static l2rw_status set_tangent(l2rw_net *net, l2rw_meta_params meta)
{
    size_t np = l2rw_net_num_params(net);
    L2RW_TRY(l2rw_net_copy(net, L2RW_NET_TANGENTS, L2RW_NET_GRADS, 0, np));
    if (meta == L2RW_META_LAST) {
        size_t b = 0, e = 0;
        l2rw_net_last_layer_range(net, &b, &e);
        if (b > np) b = np;
        if (e > np) e = np;
        if (b > 0) L2RW_TRY(l2rw_net_zero(net, L2RW_NET_TANGENTS, 0, b));
        if (e < np)
            L2RW_TRY(l2rw_net_zero(net, L2RW_NET_TANGENTS, e, np - e));
    }
    return L2RW_OK;
}

/* v: validation forward (running statistics untouched), loss and
 * backward, then the tangent buffer = v (masked for META_LAST); the
 * dropout key of the training pass is set for what follows (keys ==
 * NULL: leave the net's key as it is). Over ranks (m->dist), v is that
 * of the whole validation batch: each share's mean gradient weighted by
 * its share of the batch, summed. */
static l2rw_status validation_tangent(l2rw_method_ctx *m,
                                      l2rw_net *net, l2rw_meta_params meta,
                                      const float *vx, const int32_t *vy,
                                      int nv, float *vloss_scratch,
                                      float *val_loss, const uint64_t *keys)
{
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    if (keys) l2rw_net_set_dropout_key(net, keys[1]);
    L2RW_TRY(l2rw_net_forward(net, vx, nv, L2RW_MODE_TRAIN_FROZEN, 0));
    L2RW_TRY(l2rw_net_loss(net, vy, &ce, vloss_scratch, NULL));
    L2RW_TRY(l2rw_net_backward(net, NULL));
    if (m && m->dist)
        L2RW_TRY(sum_grads(m, net, (float)nv / (float)m->g_nv));
    float vl = 0.0f;
    L2RW_TRY(mean_over_ranks(m, vloss_scratch, nv, m ? m->g_nv : nv, &vl));
    if (val_loss) *val_loss = vl;
    L2RW_TRY(set_tangent(net, meta));
    if (keys) l2rw_net_set_dropout_key(net, keys[0]);
    return L2RW_OK;
}

/* l2rw_meta_scores with optional dropout keys for the two passes; m
 * (NULL: one process) for a rank's share. */
static l2rw_status meta_scores(l2rw_method_ctx *m, l2rw_net *net,
                               l2rw_meta_params meta,
                               l2rw_mode mode, const float *x,
                               const int32_t *y, int n, const float *vx,
                               const int32_t *vy, int nv, float *u,
                               float *loss, float *vloss_scratch,
                               float *val_loss, const uint64_t *keys)
{
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    L2RW_TRY(validation_tangent(m, net, meta, vx, vy, nv, vloss_scratch,
                                val_loss, keys));
    L2RW_TRY(l2rw_net_forward(net, x, n, mode, 1));
    return l2rw_net_loss(net, y, &ce, loss, u);
}

l2rw_status l2rw_meta_scores(l2rw_net *net, l2rw_meta_params meta,
                             l2rw_mode mode, const float *x,
                             const int32_t *y, int n, const float *vx,
                             const int32_t *vy, int nv, float *u,
                             float *loss, float *val_loss)
{
    if (!net || !u)
        return l2rw__fail(L2RW_ERR_ARG, "meta scores: NULL net or u");
    if (meta != L2RW_META_ALL && meta != L2RW_META_LAST)
        return l2rw__fail(L2RW_ERR_ARG, "meta scores: unknown meta-params");
    L2RW_TRY(check_batch(net, x, y, n, "training"));
    L2RW_TRY(check_batch(net, vx, vy, nv, "validation"));
    float *vl = malloc((size_t)nv * sizeof(float));
    if (!vl) return l2rw__fail(L2RW_ERR_NOMEM, "meta scores: out of memory");
    l2rw_status s = meta_scores(NULL, net, meta, mode, x, y, n, vx, vy, nv,
                                u, loss, vl, val_loss, NULL);
    free(vl);
    return s;
}

/* META_LAST without a tangent pass. The last dense layer is z = h W^T + b
 * (W [K, d] then b [K] in l2rw_net_last_layer_range). v restricted to it
 * is V = (1/m) dz'^T h', v_b = (1/m) sum_j dz'_j, dz' the logit gradients
 * of the validation batch; the logit tangent of the training batch along
 * (V, v_b), all other tangents 0, is zdot = h V^T + v_b, and the loss
 * turns it into u_i = sum_c dz_ic zdot_ic: the masked-tangent values of
 * l2rw_meta_scores(META_LAST) without a validation backward or a tangent
 * pass. Returns L2RW_ERR_UNSUPPORTED when the activations do not match
 * (the caller then takes the masked path). */
static l2rw_status last_scores(l2rw_method_ctx *m, l2rw_net *net,
                               const float *x, const int32_t *y, int n,
                               const float *vx, const int32_t *vy, int nv,
                               float *val_loss, const uint64_t *keys)
{
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    const int k = m->classes, d = m->last_d;
    float *V = m->last_v, *vb = m->last_v + (size_t)k * d;
    int dim = 0;
    /* h and the logits are read on the host: a net on a device takes the
     * masked tangent path (the same values) */
    if (!l2rw__net_backend(net)->host) return L2RW_ERR_UNSUPPORTED;
    l2rw_net_set_dropout_key(net, keys[1]);
    L2RW_TRY(l2rw_net_forward(net, vx, nv, L2RW_MODE_TRAIN_FROZEN, 0));
    const float *hv = l2rw__net_last_input(net, &dim);
    if (!hv || dim != d)
        return L2RW_ERR_UNSUPPORTED;
    /* m->w holds the validation losses until the weights */
    L2RW_TRY(l2rw__loss_eval(&ce, l2rw_net_logits(net), NULL, vy, nv, k,
                             m->w, m->dzv, NULL));
    L2RW_TRY(mean_over_ranks(m, m->w, nv, m->g_nv, val_loss));
    l2rw__gemm(1, 0, k, d, nv, 1.0f / (float)nv, m->dzv, k, hv, d, 0.0f, V,
               d);
    for (int c = 0; c < k; c++) {
        double s = 0.0;
        for (int j = 0; j < nv; j++) s += m->dzv[(size_t)j * k + c];
        vb[c] = (float)(s / nv);
    }
    if (m->dist) { /* the whole validation batch's (V, v_b) */
        float share = (float)nv / (float)m->g_nv;
        size_t len = (size_t)k * ((size_t)d + 1);
        for (size_t i = 0; i < len; i++) m->last_v[i] *= share;
        L2RW_TRY(m->comm.sum_f32(m->comm.ctx, m->last_v, len));
    }
    l2rw_net_set_dropout_key(net, keys[0]);
    L2RW_TRY(l2rw_net_forward(net, x, n, L2RW_MODE_TRAIN, 0));
    L2RW_TRY(l2rw_net_loss(net, y, &ce, m->loss, NULL));
    const float *h = l2rw__net_last_input(net, &dim);
    if (!h || dim != d) return L2RW_ERR_UNSUPPORTED;
    for (int i = 0; i < n; i++)
        memcpy(m->zdot + (size_t)i * k, vb, (size_t)k * sizeof(float));
    l2rw__gemm(0, 1, n, k, d, 1.0f, h, d, V, d, 1.0f, m->zdot, k);
    return l2rw__loss_eval(&ce, l2rw_net_logits(net), m->zdot, y, n, k, NULL,
                           m->dzv, m->u);
}

/* The L2RW step of a net whose examples do not couple (no batch norm):
 * the validation pass gives v as usual; the training pass is a plain
 * forward, and one backward of the unweighted per-example losses gives
 * u_i = <v, grad l_i> and, from the same per-example gradients, the
 * weighted gradient (net.c, l2rw__net_scores_each): no tangent pass and
 * no second backward. The same u and update as the tangent path, to
 * float rounding. */
static l2rw_status step_l2rw_each(l2rw_method_ctx *m, l2rw_net *net,
                                  l2rw_sgd *opt, long step, const float *x,
                                  const int32_t *y, int n, const float *vx,
                                  const int32_t *vy, int nv,
                                  l2rw_step_stats *st, const uint64_t *keys)
{
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    float vloss = 0.0f;
    /* m->w holds the validation losses until the weights */
    L2RW_TRY(validation_tangent(m, net, L2RW_META_ALL, vx, vy, nv, m->w,
                                &vloss, keys));
    st->val_loss = vloss;
    L2RW_TRY(forward_loss(net, x, y, n, &ce, m->loss));
    L2RW_TRY(l2rw__net_scores_each(net, m->u));
    int pos = 0;
    L2RW_TRY(weights_of_scores(m, n, &pos));
    return update_by(m, net, opt, step, m->w, n, pos, st,
                     l2rw__net_backward_each);
}

static l2rw_status step_l2rw(l2rw_method_ctx *m, l2rw_net *net,
                             l2rw_sgd *opt, long step, const float *x,
                             const int32_t *y, int n, const float *vx,
                             const int32_t *vy, int nv, l2rw_step_stats *st)
{
    L2RW_TRY(check_batch(net, vx, vy, nv, "validation"));
    uint64_t keys[2] = {
        pass_key(m, l2rw_hash2(m->cfg.seed ^ KEY_TRAIN_DROPOUT,
                               (uint64_t)step)),
        pass_key(m, l2rw_hash2(m->cfg.seed ^ KEY_VAL_DROPOUT,
                               (uint64_t)step))};
    float vloss = 0.0f;
    l2rw_status s = L2RW_ERR_UNSUPPORTED;
    if (m->cfg.meta_params == L2RW_META_ALL && l2rw__net_each_ok(net))
        return step_l2rw_each(m, net, opt, step, x, y, n, vx, vy, nv, st,
                              keys);
    if (m->last_d > 0)
        s = last_scores(m, net, x, y, n, vx, vy, nv, &vloss, keys);
    if (s == L2RW_ERR_UNSUPPORTED) /* m->w holds the validation losses */
        s = meta_scores(m, net, m->cfg.meta_params, L2RW_MODE_TRAIN, x, y,
                        n, vx, vy, nv, m->u, m->loss, m->w, &vloss, keys);
    L2RW_TRY(s);
    st->val_loss = vloss;
    int pos = 0;
    L2RW_TRY(weights_of_scores(m, n, &pos));
    return update(m, net, opt, step, m->w, n, pos, st);
}

/* ------------------------------------------------------ other methods */

static l2rw_status step_random(l2rw_method_ctx *m, l2rw_net *net,
                               l2rw_sgd *opt, long step, const float *x,
                               const int32_t *y, int n, l2rw_step_stats *st)
{
    /* the whole batch's draws on every rank: the same stream as one
     * process */
    l2rw_rng r;
    l2rw_rng_seed(&r, l2rw_hash2(m->cfg.seed ^ KEY_RANDOM, (uint64_t)step));
    for (int i = 0; i < m->g_n; i++) m->gu[i] = (float)l2rw_rng_normal(&r);
    int pos = 0;
    L2RW_TRY(l2rw_weights_from_scores(m->gu, m->g_n, m->gw, &pos));
    share_weights(m, n);
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    L2RW_TRY(forward_loss(net, x, y, n, &ce, m->loss));
    return update(m, net, opt, step, m->w, n, pos, st);
}

static l2rw_status check_labels(const l2rw_method_ctx *m, const int32_t *y,
                                int n)
{
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->classes)
            return l2rw__fail(L2RW_ERR_LABEL,
                              "label %d of batch example %d outside [0, %d)",
                              (int)y[i], i, m->classes);
    return L2RW_OK;
}

static l2rw_status step_proportion(l2rw_method_ctx *m, l2rw_net *net,
                                   l2rw_sgd *opt, long step, const float *x,
                                   const int32_t *y, int n,
                                   l2rw_step_stats *st)
{
    L2RW_TRY(check_labels(m, y, n));
    for (int i = 0; i < n; i++) {
        long c = m->count[y[i]];
        /* a class absent from the training set (only possible when the
         * batch is not from it) gets the weight of a single example */
        m->u[i] = (float)(1.0 / (double)(c > 0 ? c : 1));
    }
    int pos = 0;
    L2RW_TRY(weights_of_scores(m, n, &pos));
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    L2RW_TRY(forward_loss(net, x, y, n, &ce, m->loss));
    return update(m, net, opt, step, m->w, n, pos, st);
}

/* 1 when example i ranks before j: higher loss first, ties by position. */
static int ranks_before(const float *loss, int32_t i, int32_t j)
{
    return loss[i] != loss[j] ? loss[i] > loss[j] : i < j;
}

/* Insertion sort of order[0..n) by rank: batches are small (<= a few
 * hundred) and this keeps the step free of global state. */
static void sort_by_loss(int32_t *order, int n, const float *loss)
{
    for (int a = 1; a < n; a++) {
        int32_t v = order[a];
        int b = a;
        while (b > 0 && ranks_before(loss, v, order[b - 1])) {
            order[b] = order[b - 1];
            b--;
        }
        order[b] = v;
    }
}

/* Hard-mining selection (header rule): w = 1/kept on kept examples. */
static void hard_mining_select(const l2rw_method_ctx *m, const int32_t *y,
                               const float *loss, int n, int32_t *order,
                               float *w)
{
    int minority = 0, nmaj = 0;
    for (int i = 0; i < n; i++) {
        if (m->majority[y[i]])
            order[nmaj++] = i;
        else
            minority++;
    }
    int k = minority > 0 ? minority : 1;
    if (k > nmaj) k = nmaj;
    sort_by_loss(order, nmaj, loss);
    for (int i = 0; i < n; i++) w[i] = m->majority[y[i]] ? 0.0f : 1.0f;
    for (int j = 0; j < k; j++) w[order[j]] = 1.0f;
    int kept = minority + k;
    for (int i = 0; i < n; i++) w[i] = w[i] > 0.0f ? 1.0f / (float)kept : 0.0f;
}

static l2rw_status step_hard_mining(l2rw_method_ctx *m, l2rw_net *net,
                                    l2rw_sgd *opt, long step, const float *x,
                                    const int32_t *y, int n,
                                    l2rw_step_stats *st)
{
    L2RW_TRY(check_labels(m, m->g_y, m->g_n));
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    L2RW_TRY(forward_loss(net, x, y, n, &ce, m->loss));
    /* over ranks, the whole batch's losses are ranked */
    L2RW_TRY(gather_f32(m, m->loss, n, m->gloss));
    hard_mining_select(m, m->g_y, m->gloss, m->g_n, m->gorder, m->gw);
    share_weights(m, n);
    return update(m, net, opt, step, m->w, n, n, st);
}

/* Uniform weights with a given loss: the plain path. */
static l2rw_status step_uniform(l2rw_method_ctx *m, l2rw_net *net,
                                l2rw_sgd *opt, long step, const float *x,
                                const int32_t *y, int n,
                                const l2rw_loss *loss, l2rw_step_stats *st)
{
    L2RW_TRY(forward_loss(net, x, y, n, loss, m->loss));
    return update(m, net, opt, step, NULL, n, n, st);
}

static int method_uniform(l2rw_method meth)
{
    return meth == L2RW_METHOD_PLAIN || meth == L2RW_METHOD_RESAMPLE ||
           meth == L2RW_METHOD_BOOTSTRAP_SOFT ||
           meth == L2RW_METHOD_BOOTSTRAP_HARD || meth == L2RW_METHOD_GCE ||
           meth == L2RW_METHOD_SCE;
}

/* This rank's share of a step's batches (the batches themselves in one
 * process). */
typedef struct {
    const float *x, *vx;
    const int32_t *y, *vy;
    int n, nv;
} share;

static l2rw_status take_share(l2rw_method_ctx *m, const l2rw_net *net,
                              const float *x, const int32_t *y, int n,
                              const float *vx, const int32_t *vy, int nv,
                              share *sh)
{
    int c = 0, h = 0, wd = 0, off = 0, voff = 0;
    l2rw_net_input_shape(net, &c, &h, &wd);
    size_t dim = (size_t)c * (size_t)h * (size_t)wd;
    sh->n = n;
    sh->nv = nv;
    if (m->dist) {
        int p = m->comm.size;
        if (n < p || (nv > 0 && nv < p) ||
            (size_t)n > (size_t)p * (size_t)m->max_batch)
            return l2rw__fail(L2RW_ERR_SHAPE,
                              "batch of %d (validation %d) for %d ranks: "
                              "every rank needs at least one example and "
                              "at most %d", n, nv, p, m->max_batch);
        l2rw_shard(n, m->comm.rank, p, &off, &sh->n);
        l2rw_shard(nv, m->comm.rank, p, &voff, &sh->nv);
    }
    L2RW_TRY(check_batch(net, x, y, sh->n, "training"));
    if (sh->n > m->max_batch)
        return l2rw__fail(L2RW_ERR_SHAPE, "method step: batch too large");
    sh->x = x + (size_t)off * dim;
    sh->y = y + off;
    sh->vx = vx ? vx + (size_t)voff * dim : NULL;
    sh->vy = vy ? vy + voff : NULL;
    m->g_n = n;
    m->g_off = off;
    m->g_nv = nv;
    m->g_y = y;
    return L2RW_OK;
}

static l2rw_status dispatch(l2rw_method_ctx *m, l2rw_net *net,
                            l2rw_sgd *opt, long step, const float *x,
                            const int32_t *y, int n, const float *vx,
                            const int32_t *vy, int nv, l2rw_step_stats *st,
                            int *uniform)
{
    l2rw_method meth = m->cfg.method;
    *uniform = 0;
    if (in_warmup(m, step) || method_uniform(meth)) {
        l2rw_loss loss = l2rw_method_loss(in_warmup(m, step)
                                              ? L2RW_METHOD_PLAIN
                                              : meth);
        st->warmup = in_warmup(m, step);
        *uniform = 1;
        return step_uniform(m, net, opt, step, x, y, n, &loss, st);
    }
    switch (meth) {
    case L2RW_METHOD_L2RW:
        return step_l2rw(m, net, opt, step, x, y, n, vx, vy, nv, st);
    case L2RW_METHOD_RANDOM:
        return step_random(m, net, opt, step, x, y, n, st);
    case L2RW_METHOD_PROPORTION:
        return step_proportion(m, net, opt, step, x, y, n, st);
    case L2RW_METHOD_HARD_MINING:
        return step_hard_mining(m, net, opt, step, x, y, n, st);
    default:
        return l2rw__fail(L2RW_ERR_ARG, "method: unknown method %d",
                          (int)meth);
    }
}

l2rw_status l2rw_method_step(l2rw_method_ctx *m, l2rw_net *net,
                             l2rw_sgd *opt, long step, const float *x,
                             const int32_t *y, const int32_t *y_true, int n,
                             const float *vx, const int32_t *vy, int nv,
                             l2rw_step_stats *st, float *w_out)
{
    if (!m || !net || !opt)
        return l2rw__fail(L2RW_ERR_ARG, "method step: NULL argument");
    if (step < 0)
        return l2rw__fail(L2RW_ERR_ARG, "method step: step %ld < 0", step);
    if (l2rw_net_classes(net) != m->classes)
        return l2rw__fail(L2RW_ERR_SHAPE,
                          "method step: net does not match the context");
    share sh;
    L2RW_TRY(take_share(m, net, x, y, n, vx, vy, nv, &sh));
    l2rw_step_stats local;
    if (!st) st = &local;
    stats_begin(st, n);
    l2rw_net_set_dropout_key(
        net, pass_key(m, l2rw_hash2(m->cfg.seed ^ KEY_TRAIN_DROPOUT,
                                    (uint64_t)step)));
    int uniform = 0;
    L2RW_TRY(dispatch(m, net, opt, step, sh.x, sh.y, sh.n, sh.vx, sh.vy,
                      sh.nv, st, &uniform));
    L2RW_TRY(gather_f32(m, m->loss, sh.n, m->gloss));
    const float *w = uniform ? NULL : m->gw;
    stats_finish(st, w, n, m->gloss, y, y_true);
    copy_weights(w_out, w, n);
    return L2RW_OK;
}

l2rw_status l2rw_finetune_step(l2rw_method_ctx *m, l2rw_net *net,
                               l2rw_sgd *opt, long step, const float *x,
                               const int32_t *y, int n, l2rw_step_stats *st)
{
    if (!m || !net || !opt)
        return l2rw__fail(L2RW_ERR_ARG, "finetune step: NULL argument");
    share sh;
    L2RW_TRY(take_share(m, net, x, y, n, NULL, NULL, 0, &sh));
    l2rw_step_stats local;
    if (!st) st = &local;
    stats_begin(st, n);
    l2rw_net_set_dropout_key(
        net, pass_key(m, l2rw_hash2(m->cfg.seed ^ KEY_FT_DROPOUT,
                                    (uint64_t)step)));
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    L2RW_TRY(step_uniform(m, net, opt, step, sh.x, sh.y, sh.n, &ce, st));
    L2RW_TRY(gather_f32(m, m->loss, sh.n, m->gloss));
    stats_finish(st, NULL, n, m->gloss, y, NULL);
    return L2RW_OK;
}
