/* The L2RW weights and the optimizer updates on the device. Scores s and
 * weights w [n]; parameters p, gradients g and optimizer state [n]
 * (flat). Each is reweight.c's or optim.c's arithmetic, element by
 * element (no contraction), and the weights' sum is the CPU's double sum
 * in index order (one thread: n is a batch), so the values are the CPU's
 * bit for bit. */
#include "cu_internal.cuh"

/* One block: thread 0 sums in index order, then every thread writes its
 * weights. */
__global__ static void k_weights(const float *s, int n, float *w, int *info)
{
    __shared__ double sum;
    __shared__ int pos, bad;
    if (threadIdx.x == 0) {
        double t = 0.0;
        int np = 0, nb = -1;
        for (int i = 0; i < n; i++) {
            if (!isfinite(s[i])) {
                nb = i;
                break;
            }
            if (s[i] > 0.0f) {
                t += s[i];
                np++;
            }
        }
        sum = t;
        pos = nb < 0 ? np : 0;
        bad = nb;
        if (info) {
            info[0] = pos;
            info[1] = nb;
        }
    }
    __syncthreads();
    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x)
        w[i] =
            bad < 0 && pos && s[i] > 0.0f ? (float)((double)s[i] / sum) : 0.0f;
}

void l2rw__cu_weights_normalise(const float *s, int n, float *w, int *info)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || n <= 0) return;
    k_weights<<<1, CU_THREADS, 0, c->stream>>>(s, n, w, info);
    CU_LAUNCHED("weights");
}

l2rw_status l2rw__cu_weights_from_scores(const float *s, int n, float *w,
                                         int *positive)
{
    if (!s || !w || n <= 0)
        return l2rw__fail(L2RW_ERR_ARG, "weights: bad arguments (n=%d)", n);
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return l2rw__cu_sync();
    l2rw__cu_weights_normalise(s, n, w, c->scr->winfo);
    int info[2] = {0, -1};
    l2rw__cu_note(cudaMemcpyAsync(info, c->scr->winfo, sizeof info,
                                  cudaMemcpyDeviceToHost, c->stream),
                  "weights (info)");
    L2RW_TRY(l2rw__cu_sync());
    if (info[1] >= 0) {
        float v = 0.0f;
        L2RW_TRY(l2rw__cu_download(&v, s + info[1], sizeof v));
        return l2rw__fail(L2RW_ERR_NUMERIC,
                          "weights: non-finite score %g of example %d",
                          (double)v, info[1]);
    }
    if (positive) *positive = info[0];
    return L2RW_OK;
}

/* ---------------------------------------------------------- optimizers */

__global__ static void k_sgd(float *p, float *v, const float *g, size_t n,
                             float lr, float mu, float wd, float scale,
                             int clip, int *bad)
{
    CU_FOR(i, n) {
        const float gi = clip ? g[i] * scale : g[i];
        const float vi = mu * v[i] + (gi + wd * p[i]);
        const float pi = p[i] - lr * vi;
        v[i] = vi;
        p[i] = pi;
        if (bad && !isfinite(pi)) *bad = 1;
    }
}

void l2rw__cu_sgd_update(float *p, float *v, const float *g, size_t n,
                         float lr, float momentum, float wd, float scale,
                         int *bad)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || n == 0) return;
    /* Unclipped (scale 1): optim.c's exact arithmetic, g unscaled. */
    k_sgd<<<cu_blocks(n), CU_THREADS, 0, c->stream>>>(
        p, v, g, n, lr, momentum, wd, scale, scale != 1.0f, bad);
    CU_LAUNCHED("sgd_update");
}

__global__ static void k_adamw(float *p, float *m, float *v, const float *g,
                               size_t n, float lr, float b1, float b2,
                               float c1, float c2, float eps, float wd,
                               float bc1, float bc2, float scale, int *bad)
{
    CU_FOR(i, n) {
        const float gi = g[i] * scale;
        const float mi = b1 * m[i] + c1 * gi;
        const float vi = b2 * v[i] + c2 * (gi * gi);
        const float u = (mi * bc1) / (sqrtf(vi * bc2) + eps) + wd * p[i];
        const float pi = p[i] - lr * u;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
        if (bad && !isfinite(pi)) *bad = 1;
    }
}

void l2rw__cu_adamw_update(float *p, float *m, float *v, const float *g,
                           size_t n, float lr, float b1, float b2, float eps,
                           float wd, float bc1, float bc2, float scale,
                           int *bad)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || n == 0) return;
    const float c1 = 1.0f - b1, c2 = 1.0f - b2; /* as optim.c, on the host */
    k_adamw<<<cu_blocks(n), CU_THREADS, 0, c->stream>>>(
        p, m, v, g, n, lr, b1, b2, c1, c2, eps, wd, bc1, bc2, scale, bad);
    CU_LAUNCHED("adamw_update");
}
