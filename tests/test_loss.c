/* Losses: logit gradients of every kind against central differences,
 * the tangent identity u = <dz, zdot>, and bad labels / non-finite logits.
 *
 * Tolerance: logits are float32 and the loss is evaluated in double from
 * them, so a step h = 1e-2 on logits of size ~1 has rounding error
 * ~1e-7/1e-2 = 1e-5 and truncation error ~h^2 * |l'''| ~ 1e-4; rtol 1e-3
 * with atol 1e-4 is comfortably above both. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "loss.h"

enum { N = 7, K = 5 };

static double loss_at(const l2rw_loss *cfg, const float *z, int32_t y)
{
    float l;
    if (l2rw__loss_eval(cfg, z, NULL, &y, 1, K, &l, NULL, NULL) != L2RW_OK)
        return NAN;
    return l;
}

static void check_kind(l2rw_loss_kind kind, const char *name)
{
    l2rw_loss cfg = l2rw_loss_default(kind);
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 42);
    float z[N * K], dz[N * K], zdot[N * K], loss[N], u[N];
    int32_t y[N];
    for (int j = 0; j < N * K; j++) {
        z[j] = (float)(2.0 * l2rw_rng_normal(&rng));
        zdot[j] = (float)l2rw_rng_normal(&rng);
    }
    for (int i = 0; i < N; i++) y[i] = (int32_t)l2rw_rng_below(&rng, K);
    CHECK_OK(l2rw__loss_eval(&cfg, z, zdot, y, N, K, loss, dz, u));
    for (int i = 0; i < N; i++) {
        CHECK_CLOSE(loss[i], loss_at(&cfg, z + i * K, y[i]), 1e-6, 1e-7, name);
        /* Bootstrap targets are held constant: differentiate with the
         * target frozen, i.e. check only the kinds whose gradient is the
         * true derivative. */
        if (kind == L2RW_LOSS_BOOTSTRAP_SOFT || kind == L2RW_LOSS_BOOTSTRAP_HARD) {
            double sum = 0.0;
            for (int c = 0; c < K; c++) sum += dz[i * K + c];
            CHECK(fabs(sum) < 1e-5, "%s: gradient rows sum to zero (%g)", name, sum);
            continue;
        }
        double dot = 0.0;
        for (int c = 0; c < K; c++) {
            const double h = 1e-2;
            float zp[K], zm[K];
            memcpy(zp, z + i * K, sizeof zp);
            memcpy(zm, z + i * K, sizeof zm);
            zp[c] += (float)h;
            zm[c] -= (float)h;
            double fd = (loss_at(&cfg, zp, y[i]) - loss_at(&cfg, zm, y[i])) /
                        ((double)zp[c] - (double)zm[c]);
            CHECK_CLOSE(dz[i * K + c], fd, 1e-3, 1e-4, name);
            dot += (double)dz[i * K + c] * zdot[i * K + c];
        }
        CHECK_CLOSE(u[i], dot, 1e-5, 1e-6, name);
    }
}

static void test_ce(void) { check_kind(L2RW_LOSS_CE, "ce"); }
static void test_bootstrap_soft(void)
{
    check_kind(L2RW_LOSS_BOOTSTRAP_SOFT, "bootstrap-soft");
}
static void test_bootstrap_hard(void)
{
    check_kind(L2RW_LOSS_BOOTSTRAP_HARD, "bootstrap-hard");
}
static void test_gce(void) { check_kind(L2RW_LOSS_GCE, "gce"); }
static void test_sce(void) { check_kind(L2RW_LOSS_SCE, "sce"); }

/* Bootstrap gradients against central differences.
 *
 * src/loss.c documents the bootstrap target t (soft: b e_y + (1-b) p,
 * hard: b e_y + (1-b) e_argmax(p)) as held constant in the gradient, so
 * dz = p - t is the derivative of the frozen-target loss
 *     l_t(z) = -sum_c t_c log softmax(z)_c,   t computed at the base z.
 * The checks:
 *   - l_t(z0) equals the library's loss (the frozen target is the one the
 *     code uses);
 *   - dz against central differences of l_t (the documented definition);
 *   - soft: dz against central differences of the library's own loss
 *     minus the stop-gradient term, i.e. d l / dz = (p - t) + d/dz of the
 *     target's dependence on p, which for t = b e_y + (1-b) p is
 *     -(1-b) p (log p - <p, log p>): this confirms the code is the
 *     stop-gradient derivative and nothing else;
 *   - hard: the argmax is piecewise constant, so away from ties the
 *     library's own loss has derivative exactly p - t; rows whose two
 *     largest logits are within 0.1 of each other are re-drawn (the
 *     central step moves a logit gap by at most 2h = 0.02);
 *   - the tangent u = <dz, zdot>, which check_kind does not check for the
 *     bootstrap kinds.
 * Tolerances as in the header of this file (h = 1e-2 on float32 logits of
 * size ~2: rounding ~1e-5, truncation ~1e-4; rtol 1e-3, atol 1e-4); the
 * value identity is rtol 1e-6 (float32 loss output). */
static double frozen_loss(const double *t, const float *z)
{
    double m = z[0], s = 0.0, l = 0.0;
    for (int c = 1; c < K; c++) m = z[c] > m ? z[c] : m;
    for (int c = 0; c < K; c++) s += exp((double)z[c] - m);
    const double lse = m + log(s);
    for (int c = 0; c < K; c++) l -= t[c] * ((double)z[c] - lse);
    return l;
}

static void check_bootstrap_fd(l2rw_loss_kind kind, const char *name)
{
    const int hard = kind == L2RW_LOSS_BOOTSTRAP_HARD;
    l2rw_loss cfg = l2rw_loss_default(kind);
    const double b = cfg.beta;
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 7);
    float z[N * K], dz[N * K], zdot[N * K], loss[N], u[N];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        for (int tries = 0;; tries++) {
            float *zi = z + i * K;
            for (int c = 0; c < K; c++) zi[c] = (float)(2.0 * l2rw_rng_normal(&rng));
            int a = 0;
            for (int c = 1; c < K; c++) a = zi[c] > zi[a] ? c : a;
            double gap = INFINITY;
            for (int c = 0; c < K; c++)
                if (c != a) gap = fmin(gap, (double)zi[a] - zi[c]);
            if (!hard || gap > 0.1 || tries > 100) break;
        }
        for (int c = 0; c < K; c++) zdot[i * K + c] = (float)l2rw_rng_normal(&rng);
        y[i] = (int32_t)l2rw_rng_below(&rng, K);
    }
    CHECK_OK(l2rw__loss_eval(&cfg, z, zdot, y, N, K, loss, dz, u));
    for (int i = 0; i < N; i++) {
        const float *zi = z + i * K;
        double p[K], t[K], s = 0.0, m = zi[0], plogp = 0.0;
        int a = 0;
        for (int c = 1; c < K; c++) {
            m = zi[c] > m ? zi[c] : m;
            a = zi[c] > zi[a] ? c : a;
        }
        for (int c = 0; c < K; c++) s += p[c] = exp((double)zi[c] - m);
        for (int c = 0; c < K; c++) {
            p[c] /= s;
            plogp += p[c] * log(p[c]);
        }
        for (int c = 0; c < K; c++)
            t[c] = b * (c == y[i]) + (1.0 - b) * (hard ? (double)(c == a) : p[c]);
        CHECK_CLOSE(loss[i], frozen_loss(t, zi), 1e-6, 1e-7, name);
        double dot = 0.0;
        for (int c = 0; c < K; c++) {
            const double h = 1e-2;
            float zp[K], zm[K];
            memcpy(zp, zi, sizeof zp);
            memcpy(zm, zi, sizeof zm);
            zp[c] += (float)h;
            zm[c] -= (float)h;
            const double step = (double)zp[c] - (double)zm[c];
            const double fd_frozen = (frozen_loss(t, zp) - frozen_loss(t, zm)) / step;
            const double fd_full = (loss_at(&cfg, zp, y[i]) - loss_at(&cfg, zm, y[i])) / step;
            CHECK_CLOSE(dz[i * K + c], fd_frozen, 1e-3, 1e-4,
                        hard ? "bootstrap-hard: dz vs fd of the frozen-target loss"
                             : "bootstrap-soft: dz vs fd of the frozen-target loss");
            if (hard) {
                CHECK_CLOSE(dz[i * K + c], fd_full, 1e-3, 1e-4,
                            "bootstrap-hard: dz vs fd of the loss (no tie near)");
            } else {
                const double target_term = -(1.0 - b) * p[c] * (log(p[c]) - plogp);
                CHECK_CLOSE(dz[i * K + c] + target_term, fd_full, 1e-3, 1e-4,
                            "bootstrap-soft: dz + target term vs fd of the loss");
            }
            dot += (double)dz[i * K + c] * zdot[i * K + c];
        }
        CHECK_CLOSE(u[i], dot, 1e-5, 1e-6, name);
    }
}

static void test_bootstrap_soft_gradient_fd(void)
{
    check_bootstrap_fd(L2RW_LOSS_BOOTSTRAP_SOFT, "bootstrap-soft");
}

static void test_bootstrap_hard_gradient_fd(void)
{
    check_bootstrap_fd(L2RW_LOSS_BOOTSTRAP_HARD, "bootstrap-hard");
}

/* The CE of uniform logits is log K. */
static void test_ce_uniform_logits(void)
{
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    float z[K] = {0}, l;
    int32_t y = 3;
    CHECK_OK(l2rw__loss_eval(&ce, z, NULL, &y, 1, K, &l, NULL, NULL));
    CHECK_CLOSE(l, log(K), 1e-6, 0, "ce of uniform logits");
}

static void test_loss_rejects_bad_input(void)
{
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    float z[K] = {0}, l;
    int32_t y = K;
    CHECK(l2rw__loss_eval(&ce, z, NULL, &y, 1, K, &l, NULL, NULL) == L2RW_ERR_LABEL,
          "label K rejected");
    y = -1;
    CHECK(l2rw__loss_eval(&ce, z, NULL, &y, 1, K, &l, NULL, NULL) == L2RW_ERR_LABEL,
          "label -1 rejected");
    y = 0;
    z[2] = NAN;
    CHECK(l2rw__loss_eval(&ce, z, NULL, &y, 1, K, &l, NULL, NULL) == L2RW_ERR_NUMERIC,
          "NaN logit rejected");
    z[2] = INFINITY;
    CHECK(l2rw__loss_eval(&ce, z, NULL, &y, 1, K, &l, NULL, NULL) == L2RW_ERR_NUMERIC,
          "Inf logit rejected");
    CHECK(strstr(l2rw_last_error(), "non-finite") != NULL, "message names the problem");
    l2rw_loss bad = l2rw_loss_default(L2RW_LOSS_GCE);
    bad.q = 0.0f;
    z[2] = 0.0f;
    CHECK(l2rw__loss_eval(&bad, z, NULL, &y, 1, K, &l, NULL, NULL) == L2RW_ERR_ARG,
          "gce q = 0 rejected");
}

int main(void)
{
    RUN(test_ce);
    RUN(test_bootstrap_soft);
    RUN(test_bootstrap_hard);
    RUN(test_gce);
    RUN(test_sce);
    RUN(test_bootstrap_soft_gradient_fd);
    RUN(test_bootstrap_hard_gradient_fd);
    RUN(test_ce_uniform_logits);
    RUN(test_loss_rejects_bad_input);
    return CHECK_DONE("test_loss");
}
