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

int main(void)
{
    check_kind(L2RW_LOSS_CE, "ce");
    check_kind(L2RW_LOSS_BOOTSTRAP_SOFT, "bootstrap-soft");
    check_kind(L2RW_LOSS_BOOTSTRAP_HARD, "bootstrap-hard");
    check_kind(L2RW_LOSS_GCE, "gce");
    check_kind(L2RW_LOSS_SCE, "sce");

    /* The CE of uniform logits is log K. */
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    float z[K] = {0}, l;
    int32_t y = 3;
    CHECK_OK(l2rw__loss_eval(&ce, z, NULL, &y, 1, K, &l, NULL, NULL));
    CHECK_CLOSE(l, log(K), 1e-6, 0, "ce of uniform logits");

    y = K;
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
    return CHECK_DONE("test_loss");
}
