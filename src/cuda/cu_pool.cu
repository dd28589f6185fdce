/* Pooling on the device. Max pooling k x k, stride s, no padding:
 * x [n, c, h, w] -> y [n, c, oh, ow] with idx the flat in-plane index of
 * each maximum; the tangent gathers tx at idx, the backward scatters dy
 * to idx. Global average pooling: x [nc, P] -> y [nc]. The CPU's rules
 * and order throughout, so the values are the CPU's bit for bit. */
#include "cu_internal.cuh"

/* kernels.c's window_argmax: the first maximum; a NaN wins. */
__device__ static int window_argmax(const float *xp, int w, int k, int start)
{
    int best = start;
    float bv = xp[start];
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++) {
            int j = start + ky * w + kx;
            float v = xp[j];
            if (v > bv || (v != v && bv == bv)) {
                bv = v;
                best = j;
            }
        }
    return best;
}

/* kernels.c's 2x2 stride-2 path (pool22_scalar): the same comparisons,
 * including its NaN rule (of two NaNs in a row the second wins). */
__device__ static int pool22_argmax(const float *xp, int w, int start)
{
    const float a = xp[start], b = xp[start + 1];
    const float c2 = xp[start + w], d = xp[start + w + 1];
    const int tb = (b > a) | (b != b), td = (d > c2) | (d != d);
    const float v0 = tb ? b : a, v1 = td ? d : c2;
    const int t1 = (v1 > v0) | ((v1 != v1) & (v0 == v0));
    return t1 ? start + w + td : start + tb;
}

__global__ static void k_maxpool_fwd(float *y, int32_t *idx, const float *x,
                                     int h, int w, int k, int s, int oh,
                                     int ow, size_t len)
{
    CU_FOR(t, len) {
        const size_t Q = (size_t)oh * ow, plane = t / Q, q = t % Q;
        const int oy = (int)(q / (size_t)ow), ox = (int)(q % (size_t)ow);
        const float *xp = x + plane * (size_t)h * w;
        const int start = oy * s * w + ox * s;
        const int best = k == 2 && s == 2 ? pool22_argmax(xp, w, start)
                                          : window_argmax(xp, w, k, start);
        y[t] = xp[best];
        idx[t] = best;
    }
}

void l2rw__cu_maxpool_fwd(float *y, int32_t *idx, const float *x, int n, int c,
                          int h, int w, int k, int s, int oh, int ow)
{
    cu_ctx *cx = l2rw__cu_cur();
    const size_t len = n > 0 && c > 0 ? (size_t)n * c * oh * ow : 0;
    if (!cx || len == 0) return;
    k_maxpool_fwd<<<cu_blocks(len), CU_THREADS, 0, cx->stream>>>(
        y, idx, x, h, w, k, s, oh, ow, len);
    CU_LAUNCHED("maxpool_fwd");
}

__global__ static void k_maxpool_gather(float *ty, const float *tx,
                                        const int32_t *idx, size_t P, size_t Q,
                                        size_t len)
{
    CU_FOR(t, len) ty[t] = tx[(t / Q) * P + (size_t)idx[t]];
}

void l2rw__cu_maxpool_gather(float *ty, const float *tx, const int32_t *idx,
                             int nc, size_t P, size_t Q)
{
    cu_ctx *c = l2rw__cu_cur();
    const size_t len = nc > 0 ? (size_t)nc * Q : 0;
    if (!c || len == 0) return;
    k_maxpool_gather<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(ty, tx, idx,
                                                                   P, Q, len);
    CU_LAUNCHED("maxpool_gather");
}

/* One thread per plane adds dy to dx[idx] in output order, as the CPU:
 * overlapping windows (s < k) add to one input in a fixed order, with no
 * atomics. */
__global__ static void k_maxpool_bwd(float *dx, const float *dy,
                                     const int32_t *idx, int nc, size_t P,
                                     size_t Q)
{
    CU_FOR(ic, (size_t)nc) {
        float *xp = dx + ic * P;
        for (size_t q = 0; q < Q; q++) xp[idx[ic * Q + q]] += dy[ic * Q + q];
    }
}

void l2rw__cu_maxpool_bwd(float *dx, const float *dy, const int32_t *idx,
                          int nc, size_t P, size_t Q, int acc)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || nc <= 0) return;
    if (!acc) l2rw__cu_memset(dx, 0, (size_t)nc * P * sizeof *dx);
    k_maxpool_bwd<<<cu_blocks((size_t)nc), CU_THREADS, 0, c->stream>>>(
        dx, dy, idx, nc, P, Q);
    CU_LAUNCHED("maxpool_bwd");
}

/* One thread per plane: the CPU's 16-lane row sum, divided in double. */
__global__ static void k_avgpool_fwd(float *y, const float *x, int nc,
                                     size_t P)
{
    CU_FOR(ic, (size_t)nc)
        y[ic] = (float)(cu_row_sum(x + ic * P, P) / (double)P);
}

void l2rw__cu_avgpool_fwd(float *y, const float *x, int nc, size_t P)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || nc <= 0) return;
    k_avgpool_fwd<<<cu_blocks((size_t)nc), CU_THREADS, 0, c->stream>>>(y, x,
                                                                       nc, P);
    CU_LAUNCHED("avgpool_fwd");
}

__global__ static void k_avgpool_bwd(float *dx, const float *dy, size_t P,
                                     size_t len, int acc)
{
    CU_FOR(t, len) {
        const float v = dy[t / P] / (float)P;
        dx[t] = acc ? dx[t] + v : v;
    }
}

void l2rw__cu_avgpool_bwd(float *dx, const float *dy, int nc, size_t P,
                          int acc)
{
    cu_ctx *c = l2rw__cu_cur();
    const size_t len = nc > 0 ? (size_t)nc * P : 0;
    if (!c || len == 0) return;
    k_avgpool_bwd<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(dx, dy, P, len,
                                                                acc);
    CU_LAUNCHED("avgpool_bwd");
}
