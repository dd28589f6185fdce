/* The optimizer's arithmetic on the CPU: SGD and AdamW updates and the
 * sum of squares of a gradient (for clipping by global norm). Shapes:
 * parameters p, gradients g and optimizer state (v; AdamW: m, v) are flat
 * [n]. optim.c chooses the rates and corrections; these loops do the
 * float work, element by element (no reduction order to fix but the sum
 * of squares', which is blocked: see l2rw__sumsq). */
#include <math.h>

#include "kernels.h"

/* Parameters below which one thread updates the buffer. */
enum { UPDATE_PARALLEL_MIN = 1 << 15 };
/* The sum of squares adds blocks of this many squares, each in double in
 * index order, then the block sums in block order: a fixed order, so the
 * norm (and the clipped step) is the same for every thread count. The
 * blocks are summed in rounds of SUMSQ_ROUND, each into a stack array:
 * adding a round's partials in order to the running total is the same
 * sequence of additions as one array of all of them. */
enum { NORM_BLOCK = 1 << 13, SUMSQ_ROUND = 256 };

void l2rw__sgd_update(float *p_, float *v_, const float *g_, size_t len,
                      float lr, float mu, float wd, float scale, int *bad_out)
{
    float *restrict p = p_, *restrict v = v_;
    const float *restrict g = g_;
    const long n = (long)len;
    const int clip = scale != 1.0f; /* unclipped: g itself, unscaled */
    /* x - x is 0 for finite x and NaN otherwise, so `bad` is NaN exactly
     * when a parameter became non-finite, whatever the reduction order. */
    float bad = 0.0f;
    /* Each element is updated on its own, so the result does not depend
     * on the thread count; small nets skip the cost of a team. */
#pragma omp parallel for simd schedule(static) reduction(+ : bad) \
    if (n >= UPDATE_PARALLEL_MIN)
    for (long i = 0; i < n; i++) {
        float gi = clip ? g[i] * scale : g[i];
        float vi = mu * v[i] + (gi + wd * p[i]);
        float pi = p[i] - lr * vi;
        v[i] = vi;
        p[i] = pi;
        bad += pi - pi;
    }
    if (bad_out && bad != 0.0f) *bad_out = 1;
}

void l2rw__adamw_update(float *p_, float *m_, float *v_, const float *g_,
                        size_t len, float lr, float b1, float b2, float eps,
                        float wd, float bc1, float bc2, float scale,
                        int *bad_out)
{
    float *restrict p = p_, *restrict m = m_, *restrict v = v_;
    const float *restrict g = g_;
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    const long n = (long)len;
    float bad = 0.0f; /* as in l2rw__sgd_update */
#pragma omp parallel for simd schedule(static) reduction(+ : bad) \
    if (n >= UPDATE_PARALLEL_MIN)
    for (long i = 0; i < n; i++) {
        float gi = g[i] * scale;
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * (gi * gi);
        float u = (mi * bc1) / (sqrtf(vi * bc2) + eps) + wd * p[i];
        float pi = p[i] - lr * u;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
        bad += pi - pi;
    }
    if (bad_out && bad != 0.0f) *bad_out = 1;
}

double l2rw__sumsq(const float *g_, size_t len)
{
    const float *restrict g = g_;
    const long n = (long)len, nb = n / NORM_BLOCK + 1;
    double s = 0.0;
    for (long b0 = 0; b0 < nb; b0 += SUMSQ_ROUND) {
        const long m = nb - b0 < SUMSQ_ROUND ? nb - b0 : SUMSQ_ROUND;
        double part[SUMSQ_ROUND];
#pragma omp parallel for schedule(static) if (n >= UPDATE_PARALLEL_MIN)
        for (long j = 0; j < m; j++) {
            const long lo = (b0 + j) * NORM_BLOCK;
            const long hi = lo + NORM_BLOCK < n ? lo + NORM_BLOCK : n;
            double t = 0.0;
            for (long i = lo; i < hi; i++) t += (double)g[i] * (double)g[i];
            part[j] = t;
        }
        for (long j = 0; j < m; j++) s += part[j];
    }
    return s;
}
