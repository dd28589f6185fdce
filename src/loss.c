/* Per-example losses on logits z [n, K] with labels y [n].
 *
 * Every kind is written as l_i = f(p_i, y_i) with p = softmax(z), and its
 * logit gradient dz = d l_i / d z_i. The tangent of a loss along a logit
 * tangent zdot is then u_i = <dz_i, zdot_i> (chain rule), which is what
 * L2RW needs from the training batch.
 *
 *   ce              l = -log p_y                      dz = p - e_y
 *   bootstrap-soft  l = -sum_c t_c log p_c,  t = b e_y + (1-b) p
 *   bootstrap-hard  l = -sum_c t_c log p_c,  t = b e_y + (1-b) e_argmax(p)
 *                   (t is a target: held constant in the gradient, as in
 *                   Reed et al.'s EM reading), dz = p - t
 *   gce             l = (1 - p_y^q) / q               dz = p_y^q (p - e_y)
 *   sce             l = a ce + b rce, rce = -A (1 - p_y)  (log 0 := A)
 *                   dz = a (p - e_y) + b (-A) p_y (p - e_y)
 */
#include "loss.h"

#include <math.h>

l2rw_loss l2rw_loss_default(l2rw_loss_kind kind)
{
    l2rw_loss l = {kind, 1.0f, 0.7f, 0.1f, 1.0f, -4.0f};
    if (kind == L2RW_LOSS_BOOTSTRAP_SOFT) l.beta = 0.95f;
    if (kind == L2RW_LOSS_BOOTSTRAP_HARD) l.beta = 0.8f;
    return l;
}

/* Softmax of one row in double: p[K], returns log-sum-exp. */
static double softmax_row(const float *z, int k, double *p)
{
    double m = z[0];
    for (int c = 1; c < k; c++) m = z[c] > m ? z[c] : m;
    double s = 0.0;
    for (int c = 0; c < k; c++) {
        p[c] = exp((double)z[c] - m);
        s += p[c];
    }
    for (int c = 0; c < k; c++) p[c] /= s;
    return m + log(s);
}

static int argmax_row(const double *p, int k)
{
    int best = 0;
    for (int c = 1; c < k; c++)
        if (p[c] > p[best]) best = c;
    return best;
}

/* Loss of one row and its logit gradient g[K] (double). */
static double loss_row(const l2rw_loss *cfg, const float *z, int y, int k,
                       double *p, double *g)
{
    double lse = softmax_row(z, k, p);
    double ce = lse - (double)z[y];
    double py = p[y];
    for (int c = 0; c < k; c++) g[c] = p[c] - (c == y);
    switch (cfg->kind) {
    case L2RW_LOSS_CE:
        return ce;
    case L2RW_LOSS_BOOTSTRAP_SOFT:
    case L2RW_LOSS_BOOTSTRAP_HARD: {
        double b = cfg->beta;
        int hard = cfg->kind == L2RW_LOSS_BOOTSTRAP_HARD;
        int am = argmax_row(p, k);
        double l = 0.0;
        for (int c = 0; c < k; c++) {
            double other = hard ? (double)(c == am) : p[c];
            double t = b * (c == y) + (1.0 - b) * other;
            double logp = (double)z[c] - lse;
            l -= t * logp;
            g[c] = p[c] - t;
        }
        return l;
    }
    case L2RW_LOSS_GCE: {
        double pq = pow(py, cfg->q);
        for (int c = 0; c < k; c++) g[c] *= pq;
        return (1.0 - pq) / cfg->q;
    }
    case L2RW_LOSS_SCE: {
        double scale = cfg->alpha + cfg->sce_b * (-(double)cfg->sce_a) * py;
        for (int c = 0; c < k; c++) g[c] *= scale;
        return cfg->alpha * ce + cfg->sce_b * (-(double)cfg->sce_a) * (1.0 - py);
    }
    }
    return NAN;
}

static l2rw_status check_cfg(const l2rw_loss *cfg)
{
    switch (cfg->kind) {
    case L2RW_LOSS_CE:
        return L2RW_OK;
    case L2RW_LOSS_BOOTSTRAP_SOFT:
    case L2RW_LOSS_BOOTSTRAP_HARD:
        if (!(cfg->beta >= 0.0f && cfg->beta <= 1.0f))
            return l2rw__fail(L2RW_ERR_ARG, "bootstrap beta %g not in [0, 1]",
                              (double)cfg->beta);
        return L2RW_OK;
    case L2RW_LOSS_GCE:
        if (!(cfg->q > 0.0f && cfg->q <= 1.0f))
            return l2rw__fail(L2RW_ERR_ARG, "gce q %g not in (0, 1]",
                              (double)cfg->q);
        return L2RW_OK;
    case L2RW_LOSS_SCE:
        if (!(cfg->alpha >= 0.0f && cfg->sce_b >= 0.0f && cfg->sce_a < 0.0f))
            return l2rw__fail(L2RW_ERR_ARG,
                              "sce needs alpha >= 0, beta >= 0, A < 0");
        return L2RW_OK;
    }
    return l2rw__fail(L2RW_ERR_ARG, "unknown loss kind %d", (int)cfg->kind);
}

/* Labels first: a bad label is a data error, reported before numerics. */
static l2rw_status check_inputs(const float *z, const int32_t *y, int n,
                                int k)
{
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= k)
            return l2rw__fail(L2RW_ERR_LABEL,
                              "label %d of example %d outside [0, %d)",
                              (int)y[i], i, k);
    for (size_t j = 0; j < (size_t)n * (size_t)k; j++)
        if (!isfinite(z[j]))
            return l2rw__fail(L2RW_ERR_NUMERIC,
                              "non-finite logit %g at example %zu "
                              "(training diverged? lower the learning rate)",
                              (double)z[j], j / (size_t)k);
    return L2RW_OK;
}

#define LOSS_MAX_STACK_CLASSES 1024

l2rw_status l2rw__loss_eval(const l2rw_loss *cfg, const float *z,
                            const float *zdot, const int32_t *y, int n,
                            int k, float *loss, float *dz, float *u)
{
    if (n <= 0 || k < 2 || k > LOSS_MAX_STACK_CLASSES || !z || !y)
        return l2rw__fail(L2RW_ERR_ARG, "loss: bad sizes n=%d classes=%d", n,
                          k);
    L2RW_TRY(check_cfg(cfg));
    L2RW_TRY(check_inputs(z, y, n, k));
    for (int i = 0; i < n; i++) {
        double p[LOSS_MAX_STACK_CLASSES], g[LOSS_MAX_STACK_CLASSES];
        const float *zi = z + (size_t)i * k;
        double l = loss_row(cfg, zi, y[i], k, p, g);
        if (!isfinite(l))
            return l2rw__fail(L2RW_ERR_NUMERIC,
                              "non-finite loss at example %d", i);
        if (loss) loss[i] = (float)l;
        if (dz)
            for (int c = 0; c < k; c++) dz[(size_t)i * k + c] = (float)g[c];
        if (zdot && u) {
            double s = 0.0;
            for (int c = 0; c < k; c++) s += g[c] * zdot[(size_t)i * k + c];
            u[i] = (float)s;
        }
    }
    return L2RW_OK;
}
