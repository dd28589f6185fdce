/* Batch norm on the device: x, y, xhat, tangents [n, C, P]; mean, var,
 * istd, g, b and their tangents or gradients [C]. The per-channel sums
 * run in one block per channel in kernels.c's order (cu_channel_sums:
 * 16 float lanes per row, lanes and rows added in double), and every
 * element is the CPU's expression (no contraction), so the results are
 * the CPU's bit for bit; a channel's values are then written by the same
 * block, while its statistics are at hand. */
#include "cu_internal.cuh"

/* Channel-wise (ic over n C planes) kernels use a grid-stride loop over
 * all elements; channel-sum kernels one block per channel. */

struct f_sqdev {
    const float *x;
    float mu;
    __device__ void operator()(size_t o, float &a1, float &a2) const
    {
        float d = x[o] - mu;
        a1 += d * d;
        (void)a2;
    }
};

struct f_sum1 {
    const float *x;
    __device__ void operator()(size_t o, float &a1, float &a2) const
    {
        a1 += x[o];
        (void)a2;
    }
};

/* a1 += a, a2 += a b: kernels.c's row_sum_dot. */
struct f_sum_dot {
    const float *a, *b;
    __device__ void operator()(size_t o, float &a1, float &a2) const
    {
        a1 += a[o];
        a2 += a[o] * b[o];
    }
};

/* kernels.c's channel_stats: two passes (no cancellation for large
 * means); every thread of the block gets mu and var. */
__device__ static void channel_stats(const float *x, int n, int C, size_t P,
                                     int c, float *mu, float *var)
{
    const double m = (double)n * (double)P;
    double s, q, unused;
    cu_channel_sums(f_sum1{x}, n, C, P, c, &s, &unused);
    *mu = (float)(s / m);
    cu_channel_sums(f_sqdev{x, *mu}, n, C, P, c, &q, &unused);
    *var = (float)(q / m);
}

/* Element t of channel c's n P values, as an offset into [n, C, P]. */
__device__ static inline size_t chan_at(size_t t, int C, size_t P, int c)
{
    return ((t / P) * (size_t)C + (size_t)c) * P + t % P;
}

__global__ static void k_bn_stats(float *mean, float *var, const float *x,
                                  int n, int C, size_t P)
{
    const int c = blockIdx.x;
    float mu, v;
    channel_stats(x, n, C, P, c, &mu, &v);
    if (threadIdx.x == 0) {
        mean[c] = mu;
        var[c] = v;
    }
}

void l2rw__cu_bn_stats(float *mean, float *var, const float *x, int n, int C,
                       size_t P)
{
    cu_ctx *cx = l2rw__cu_cur();
    if (!cx || C <= 0) return;
    k_bn_stats<<<C, CU_THREADS, 0, cx->stream>>>(mean, var, x, n, C, P);
    CU_LAUNCHED("bn_stats");
}

__global__ static void k_bn_stats_norm(float *y, float *xhat, float *mean,
                                       float *var, float *istd, const float *x,
                                       const float *g, const float *b,
                                       float eps, int n, int C, size_t P)
{
    const int c = blockIdx.x;
    float mu, v;
    channel_stats(x, n, C, P, c, &mu, &v);
    const float is = 1.0f / sqrtf(v + eps), gc = g[c], bc = b[c];
    if (threadIdx.x == 0) {
        mean[c] = mu;
        var[c] = v;
        istd[c] = is;
    }
    const size_t len = (size_t)n * P;
    for (size_t t = threadIdx.x; t < len; t += blockDim.x) {
        const size_t o = chan_at(t, C, P, c);
        const float h = (x[o] - mu) * is;
        xhat[o] = h;
        y[o] = gc * h + bc;
    }
}

void l2rw__cu_bn_stats_norm(float *y, float *xhat, float *mean, float *var,
                            float *istd, const float *x, const float *g,
                            const float *b, float eps, int n, int C, size_t P)
{
    cu_ctx *cx = l2rw__cu_cur();
    if (!cx || C <= 0) return;
    k_bn_stats_norm<<<C, CU_THREADS, 0, cx->stream>>>(y, xhat, mean, var, istd,
                                                      x, g, b, eps, n, C, P);
    CU_LAUNCHED("bn_stats_norm");
}

__global__ static void k_bn_norm(float *y, float *xhat, const float *x,
                                 const float *mean, const float *istd,
                                 const float *g, const float *b, int C,
                                 size_t P, size_t len)
{
    CU_FOR(t, len) {
        const int c = (int)((t / P) % (size_t)C);
        const float mu = mean[c], is = istd[c], gc = g[c], bc = b[c];
        if (xhat) {
            const float h = (x[t] - mu) * is;
            xhat[t] = h;
            y[t] = gc * h + bc;
        } else {
            y[t] = gc * ((x[t] - mu) * is) + bc;
        }
    }
}

void l2rw__cu_bn_norm(float *y, float *xhat, const float *x, const float *mean,
                      const float *istd, const float *g, const float *b, int n,
                      int C, size_t P)
{
    cu_ctx *cx = l2rw__cu_cur();
    const size_t len = n > 0 && C > 0 ? (size_t)n * C * P : 0;
    if (!cx || len == 0) return;
    k_bn_norm<<<cu_blocks(len), CU_THREADS, 0, cx->stream>>>(
        y, xhat, x, mean, istd, g, b, C, P, len);
    CU_LAUNCHED("bn_norm");
}

/* ty = tg xhat + g ((tx - mean(tx)) istd - xhat mean(xhat tx) istd) + tb,
 * written as kernels.c: dg h + gi ((t - mt) - h mht) + db. */
__global__ static void k_bn_tangent_train(float *ty, const float *tx,
                                          const float *xhat, const float *istd,
                                          const float *g, const float *tg,
                                          const float *tb, int n, int C,
                                          size_t P)
{
    const int c = blockIdx.x;
    const double m = (double)n * (double)P;
    double st = 0.0, sht = 0.0;
    if (tx) cu_channel_sums(f_sum_dot{tx, xhat}, n, C, P, c, &st, &sht);
    const float mt = (float)(st / m), mht = (float)(sht / m);
    const float gi = g[c] * istd[c];
    const float dg = tg ? tg[c] : 0.0f, db = tb ? tb[c] : 0.0f;
    const size_t len = (size_t)n * P;
    for (size_t t = threadIdx.x; t < len; t += blockDim.x) {
        const size_t o = chan_at(t, C, P, c);
        const float h = xhat[o];
        ty[o] = tx ? dg * h + gi * ((tx[o] - mt) - h * mht) + db : dg * h + db;
    }
}

void l2rw__cu_bn_tangent_train(float *ty, const float *tx, const float *xhat,
                               const float *istd, const float *g,
                               const float *tg, const float *tb, int n, int C,
                               size_t P)
{
    cu_ctx *cx = l2rw__cu_cur();
    if (!cx || C <= 0) return;
    k_bn_tangent_train<<<C, CU_THREADS, 0, cx->stream>>>(ty, tx, xhat, istd, g,
                                                         tg, tb, n, C, P);
    CU_LAUNCHED("bn_tangent_train");
}

__global__ static void k_bn_tangent_eval(float *ty, const float *tx,
                                         const float *xhat, const float *istd,
                                         const float *g, const float *tg,
                                         const float *tb, int C, size_t P,
                                         size_t len)
{
    CU_FOR(t, len) {
        const int c = (int)((t / P) % (size_t)C);
        const float gi = g[c] * istd[c];
        const float dg = tg ? tg[c] : 0.0f, db = tb ? tb[c] : 0.0f;
        ty[t] = tx ? dg * xhat[t] + gi * tx[t] + db : dg * xhat[t] + db;
    }
}

void l2rw__cu_bn_tangent_eval(float *ty, const float *tx, const float *xhat,
                              const float *istd, const float *g,
                              const float *tg, const float *tb, int n, int C,
                              size_t P)
{
    cu_ctx *cx = l2rw__cu_cur();
    const size_t len = n > 0 && C > 0 ? (size_t)n * C * P : 0;
    if (!cx || len == 0) return;
    k_bn_tangent_eval<<<cu_blocks(len), CU_THREADS, 0, cx->stream>>>(
        ty, tx, xhat, istd, g, tg, tb, C, P, len);
    CU_LAUNCHED("bn_tangent_eval");
}

/* dg = sum dy xhat, db = sum dy; train: dx (=|+=) g istd (dy - mean(dy)
 * - xhat mean(dy xhat)); eval: dx (=|+=) g istd dy. */
__global__ static void k_bn_bwd(float *dx, float *dg, float *db,
                                const float *dy, const float *xhat,
                                const float *istd, const float *g, int n,
                                int C, size_t P, int train, int acc)
{
    const int c = blockIdx.x;
    const double m = (double)n * (double)P;
    double sd, sdh;
    cu_channel_sums(f_sum_dot{dy, xhat}, n, C, P, c, &sd, &sdh);
    if (threadIdx.x == 0) {
        dg[c] = (float)sdh;
        db[c] = (float)sd;
    }
    if (!dx) return;
    const float gi = g[c] * istd[c];
    const float md = train ? (float)(sd / m) : 0.0f;
    const float mdh = train ? (float)(sdh / m) : 0.0f;
    const size_t len = (size_t)n * P;
    for (size_t t = threadIdx.x; t < len; t += blockDim.x) {
        const size_t o = chan_at(t, C, P, c);
        const float v = gi * (dy[o] - md - xhat[o] * mdh);
        dx[o] = acc ? dx[o] + v : v;
    }
}

void l2rw__cu_bn_bwd(float *dx, float *dg, float *db, const float *dy,
                     const float *xhat, const float *istd, const float *g,
                     int n, int C, size_t P, int train, int acc)
{
    cu_ctx *cx = l2rw__cu_cur();
    if (!cx || C <= 0) return;
    k_bn_bwd<<<C, CU_THREADS, 0, cx->stream>>>(dx, dg, db, dy, xhat, istd, g,
                                               n, C, P, train, acc);
    CU_LAUNCHED("bn_bwd");
}

/* Eval mode: the running statistics, istd = 1 / sqrtf(var + eps). */
__global__ static void k_bn_eval_stats(float *mean, float *var, float *istd,
                                       const float *rmean, const float *rvar,
                                       float eps, int C)
{
    CU_FOR(c, (size_t)C) {
        mean[c] = rmean[c];
        var[c] = rvar[c];
        istd[c] = 1.0f / sqrtf(var[c] + eps);
    }
}

void l2rw__cu_bn_eval_stats(float *mean, float *var, float *istd,
                            const float *rmean, const float *rvar, float eps,
                            int C)
{
    cu_ctx *cx = l2rw__cu_cur();
    if (!cx || C <= 0) return;
    k_bn_eval_stats<<<cu_blocks((size_t)C), CU_THREADS, 0, cx->stream>>>(
        mean, var, istd, rmean, rvar, eps, C);
    CU_LAUNCHED("bn_eval_stats");
}

/* r = (1 - mom) r + mom batch; the variance's batch value times unbias. */
__global__ static void k_bn_running(float *rmean, float *rvar,
                                    const float *mean, const float *var,
                                    float mom, float unbias, int C)
{
    CU_FOR(c, (size_t)C) {
        rmean[c] = (1.0f - mom) * rmean[c] + mom * mean[c];
        rvar[c] = (1.0f - mom) * rvar[c] + mom * var[c] * unbias;
    }
}

void l2rw__cu_bn_running(float *rmean, float *rvar, const float *mean,
                         const float *var, float mom, float unbias, int C)
{
    cu_ctx *cx = l2rw__cu_cur();
    if (!cx || C <= 0) return;
    k_bn_running<<<cu_blocks((size_t)C), CU_THREADS, 0, cx->stream>>>(
        rmean, rvar, mean, var, mom, unbias, C);
    CU_LAUNCHED("bn_running");
}
