/* Per-example losses on the device: logits z, dz, zdot [n, K]; labels y,
 * loss, u [n]. One thread per example evaluates loss.c's loss_row in
 * double, in the same order (softmax, then the kind's loss and logit
 * gradient g, then u = sum_c g_c zdot_c), recomputing p_c = exp(z_c - m)
 * / s where the CPU keeps an array. The differences from the CPU are
 * CUDA's exp, log and pow (within 2 ulps in double), so float results
 * agree to their last place. Checks as loss.c: a bad label (first
 * example), then a non-finite logit (first in flat order), then a
 * non-finite loss (first example), kept with atomicMin (order-free) in
 * the context's scratch and read by l2rw__cu_loss_check. */
#include <limits.h>
#include <math.h>

#include "cu_internal.cuh"

enum { LOSS_MAX_CLASSES = 1024 }; /* loss.c's LOSS_MAX_STACK_CLASSES */

/* The loss of row i and its gradient: loss.c's loss_row. */
struct loss_args {
    l2rw_loss cfg;
    const float *z, *zdot;
    const int32_t *y;
    int n, k;
    float *loss, *dz, *u;
};

/* p_c of the row: loss.c's softmax_row value (exp, then / s). */
__device__ static inline double prob(const float *z, int c, double m, double s)
{
    return exp((double)z[c] - m) / s;
}

__global__ static void k_loss(loss_args a, cu_scratch *scr)
{
    CU_FOR(t, (size_t)a.n) {
        const int i = (int)t, k = a.k, y = a.y[i];
        const float *z = a.z + (size_t)i * k;
        if (y < 0 || y >= k) {
            atomicMin(&scr->bad_label, (unsigned)i);
            continue;
        }
        for (int c = 0; c < k; c++)
            if (!isfinite(z[c])) {
                atomicMin(&scr->bad_logit,
                          (unsigned long long)i * (unsigned long long)k + c);
                break;
            }
        double m = z[0];
        for (int c = 1; c < k; c++) m = z[c] > m ? z[c] : m;
        double s = 0.0;
        for (int c = 0; c < k; c++) s += exp((double)z[c] - m);
        const double lse = m + log(s);
        const double ce = lse - (double)z[y];
        const double py = prob(z, y, m, s);
        const l2rw_loss_kind kind = a.cfg.kind;
        const int boot = kind == L2RW_LOSS_BOOTSTRAP_SOFT ||
                         kind == L2RW_LOSS_BOOTSTRAP_HARD;
        const int hard = kind == L2RW_LOSS_BOOTSTRAP_HARD;
        int am = 0; /* loss.c's argmax_row of p: the first maximum */
        if (hard) {
            double best = prob(z, 0, m, s);
            for (int c = 1; c < k; c++) {
                const double pc = prob(z, c, m, s);
                if (pc > best) {
                    best = pc;
                    am = c;
                }
            }
        }
        /* The factor on (p - e_y) of GCE and SCE, and the loss. */
        double scale = 1.0, l = ce;
        if (kind == L2RW_LOSS_GCE) {
            const double pq = pow(py, (double)a.cfg.q);
            scale = pq;
            l = (1.0 - pq) / a.cfg.q;
        } else if (kind == L2RW_LOSS_SCE) {
            scale = a.cfg.alpha + a.cfg.sce_b * (-(double)a.cfg.sce_a) * py;
            l = a.cfg.alpha * ce +
                a.cfg.sce_b * (-(double)a.cfg.sce_a) * (1.0 - py);
        } else if (boot) {
            l = 0.0;
        }
        const double b = a.cfg.beta;
        double uu = 0.0;
        for (int c = 0; c < k; c++) {
            const double pc = prob(z, c, m, s);
            double g = pc - (c == y);
            if (boot) {
                const double other = hard ? (double)(c == am) : pc;
                const double tc = b * (c == y) + (1.0 - b) * other;
                const double logp = (double)z[c] - lse;
                l -= tc * logp;
                g = pc - tc;
            } else if (kind == L2RW_LOSS_GCE || kind == L2RW_LOSS_SCE) {
                g *= scale;
            }
            if (a.dz) a.dz[(size_t)i * k + c] = (float)g;
            if (a.zdot && a.u) uu += g * a.zdot[(size_t)i * k + c];
        }
        if (!isfinite(l)) atomicMin(&scr->bad_loss, (unsigned)i);
        if (a.loss) a.loss[i] = (float)l;
        if (a.zdot && a.u) a.u[i] = (float)uu;
    }
}

/* loss.c's check_cfg, with its messages. */
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

l2rw_status l2rw__cu_loss_enqueue(const l2rw_loss *cfg, const float *z,
                                  const float *zdot, const int32_t *y, int n,
                                  int k, float *loss, float *dz, float *u)
{
    if (n <= 0 || k < 2 || k > LOSS_MAX_CLASSES || !z || !y || !cfg)
        return l2rw__fail(L2RW_ERR_ARG, "loss: bad sizes n=%d classes=%d", n,
                          k);
    L2RW_TRY(check_cfg(cfg));
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return l2rw__cu_sync();
    /* All ones: "no failure" for the three atomicMin flags. */
    l2rw__cu_note(
        cudaMemsetAsync(&c->scr->bad_logit, 0xff,
                        sizeof c->scr->bad_logit + 2 * sizeof(unsigned),
                        c->stream),
        "loss (flags)");
    loss_args a = {*cfg, z, zdot, y, n, k, loss, dz, u};
    /* 64 threads a block: n is a batch, often below 256. */
    k_loss<<<(unsigned)((n + 63) / 64), 64, 0, c->stream>>>(a, c->scr);
    CU_LAUNCHED("loss");
    return L2RW_OK;
}

l2rw_status l2rw__cu_loss_check(const float *z, const int32_t *y, int n, int k)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return l2rw__cu_sync();
    struct {
        unsigned long long logit;
        unsigned label, loss;
    } f;
    static_assert(sizeof f ==
                      sizeof(unsigned long long) + 2 * sizeof(unsigned),
                  "flags layout");
    l2rw__cu_note(cudaMemcpyAsync(&f, &c->scr->bad_logit, sizeof f,
                                  cudaMemcpyDeviceToHost, c->stream),
                  "loss (flags)");
    L2RW_TRY(l2rw__cu_sync());
    if (f.label != UINT_MAX) {
        int32_t lab = 0;
        L2RW_TRY(l2rw__cu_download(&lab, y + f.label, sizeof lab));
        return l2rw__fail(L2RW_ERR_LABEL,
                          "label %d of example %d outside "
                          "[0, %d)",
                          (int)lab, (int)f.label, k);
    }
    if (f.logit != ULLONG_MAX) {
        float v = 0.0f;
        L2RW_TRY(l2rw__cu_download(&v, z + f.logit, sizeof v));
        return l2rw__fail(L2RW_ERR_NUMERIC,
                          "non-finite logit %g at example %zu "
                          "(training diverged? lower the learning rate)",
                          (double)v, (size_t)(f.logit / (size_t)k));
    }
    if (f.loss != UINT_MAX)
        return l2rw__fail(L2RW_ERR_NUMERIC, "non-finite loss at example %d",
                          (int)f.loss);
    (void)n;
    return L2RW_OK;
}

l2rw_status l2rw__cu_loss_eval(const l2rw_loss *cfg, const float *z,
                               const float *zdot, const int32_t *y, int n,
                               int k, float *loss, float *dz, float *u)
{
    L2RW_TRY(l2rw__cu_loss_enqueue(cfg, z, zdot, y, n, k, loss, dz, u));
    return l2rw__cu_loss_check(z, y, n, k);
}
