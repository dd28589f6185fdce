/* Element-wise kernels, dropout masks and bias on the device: flat
 * vectors of len floats; bias over y [n, C, P]. Each output element is
 * the CPU's expression (kernels.c) evaluated by one thread, so the values
 * are the CPU's bit for bit (no contraction: --fmad=false); the bias
 * gradient sums in the CPU's order (cu_channel_sums). */
#include "cu_internal.cuh"

__global__ static void k_acc(float *dst, const float *src, size_t len)
{
    CU_FOR(i, len) dst[i] += src[i];
}

void l2rw__cu_copy(float *dst, const float *src, size_t len, int acc)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || len == 0) return;
    if (!acc) {
        if (dst != src)
            l2rw__cu_note(cudaMemcpyAsync(dst, src, len * sizeof *dst,
                                          cudaMemcpyDeviceToDevice, c->stream),
                          "copy");
        return;
    }
    k_acc<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(dst, src, len);
    CU_LAUNCHED("copy (acc)");
}

__global__ static void k_add(float *y, const float *a, const float *b,
                             size_t len)
{
    CU_FOR(i, len) y[i] = a[i] + b[i];
}

void l2rw__cu_add(float *y, const float *a, const float *b, size_t len)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || len == 0) return;
    k_add<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(y, a, b, len);
    CU_LAUNCHED("add");
}

__global__ static void k_scale_rows(float *dst, const float *src,
                                    const float *s, size_t cols, size_t len)
{
    CU_FOR(t, len) dst[t] = s[t / cols] * src[t];
}

void l2rw__cu_scale_rows(float *dst, const float *src, const float *s,
                         int rows, size_t cols)
{
    cu_ctx *c = l2rw__cu_cur();
    const size_t len = rows > 0 ? (size_t)rows * cols : 0;
    if (!c || len == 0) return;
    k_scale_rows<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(dst, src, s,
                                                               cols, len);
    CU_LAUNCHED("scale_rows");
}

__global__ static void k_scale(float *dst, const float *src, float a,
                               size_t len, int acc)
{
    if (acc) {
        CU_FOR(i, len) dst[i] += a * src[i];
    } else {
        CU_FOR(i, len) dst[i] = a * src[i];
    }
}

void l2rw__cu_scale(float *dst, const float *src, float a, size_t len, int acc)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || len == 0) return;
    k_scale<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(dst, src, a, len,
                                                          acc);
    CU_LAUNCHED("scale");
}

__global__ static void k_relu(float *y, const float *x, size_t len)
{
    CU_FOR(i, len) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN passes */
}

void l2rw__cu_relu_fwd(float *y, const float *x, size_t len)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || len == 0) return;
    k_relu<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(y, x, len);
    CU_LAUNCHED("relu_fwd");
}

__global__ static void k_relu_mask(float *dst, const float *src,
                                   const float *x, size_t len, int acc)
{
    if (acc) {
        CU_FOR(i, len) dst[i] += x[i] > 0.0f ? src[i] : 0.0f;
    } else {
        CU_FOR(i, len) dst[i] = x[i] > 0.0f ? src[i] : 0.0f;
    }
}

void l2rw__cu_relu_mask(float *dst, const float *src, const float *x,
                        size_t len, int acc)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || len == 0) return;
    k_relu_mask<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(dst, src, x, len,
                                                              acc);
    CU_LAUNCHED("relu_mask");
}

__global__ static void k_mul(float *dst, const float *src, const float *mask,
                             size_t len, int acc)
{
    if (acc) {
        CU_FOR(i, len) dst[i] += src[i] * mask[i];
    } else {
        CU_FOR(i, len) dst[i] = src[i] * mask[i];
    }
}

void l2rw__cu_mul(float *dst, const float *src, const float *mask, size_t len,
                  int acc)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || len == 0) return;
    k_mul<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(dst, src, mask, len,
                                                        acc);
    CU_LAUNCHED("mul");
}

/* mask[i, j] from hash2(hash2(lk, i), j) as kernels.c: 24 random bits
 * give u in [0, 1) exactly; lk = hash2(key, layer) and keep come from the
 * host (the same functions and float operations as the CPU's). */
__global__ static void k_dropout(float *mask, uint64_t lk, size_t units,
                                 size_t len, float p, float keep)
{
    CU_FOR(t, len) {
        const uint64_t i = t / units, j = t % units;
        const uint64_t ek = cu_hash2(lk, i);
        float u = (float)(cu_hash2(ek, j) >> 40) * (1.0f / 16777216.0f);
        mask[t] = u < p ? 0.0f : keep;
    }
}

void l2rw__cu_dropout_mask(float *mask, uint64_t key, uint64_t layer, int n,
                           size_t units, float p)
{
    cu_ctx *c = l2rw__cu_cur();
    const size_t len = n > 0 ? (size_t)n * units : 0;
    if (!c || len == 0) return;
    const float keep = 1.0f / (1.0f - p);
    const uint64_t lk = l2rw_hash2(key, layer);
    k_dropout<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(mask, lk, units,
                                                            len, p, keep);
    CU_LAUNCHED("dropout_mask");
}

/* dst[r, 0:cols] = src[r, 0:cols], row strides ldd and lds floats. */
void l2rw__cu_copy_2d(float *dst, size_t ldd, const float *src, size_t lds,
                      int rows, size_t cols)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || rows <= 0 || cols == 0) return;
    l2rw__cu_note(cudaMemcpy2DAsync(dst, ldd * sizeof *dst, src,
                                    lds * sizeof *src, cols * sizeof *dst,
                                    (size_t)rows, cudaMemcpyDeviceToDevice,
                                    c->stream),
                  "copy_2d");
}

/* ---------------------------------------------------------------- bias */

__global__ static void k_bias_add(float *y, const float *b, int C, size_t P,
                                  size_t len)
{
    CU_FOR(t, len) y[t] += b[(t / P) % (size_t)C];
}

void l2rw__cu_bias_add(float *y, const float *b, int n, int C, size_t P)
{
    cu_ctx *c = l2rw__cu_cur();
    const size_t len = n > 0 && C > 0 ? (size_t)n * C * P : 0;
    if (!c || len == 0) return;
    k_bias_add<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(y, b, C, P, len);
    CU_LAUNCHED("bias_add");
}

struct f_sum {
    const float *x;
    __device__ void operator()(size_t o, float &a1, float &a2) const
    {
        a1 += x[o];
        (void)a2;
    }
};

/* One block per channel. */
__global__ static void k_bias_grad(float *db, const float *dy, int n, int C,
                                   size_t P, int acc)
{
    const int c = blockIdx.x;
    double s, unused;
    cu_channel_sums(f_sum{dy}, n, C, P, c, &s, &unused);
    if (threadIdx.x == 0) db[c] = acc ? db[c] + (float)s : (float)s;
}

void l2rw__cu_bias_grad(float *db, const float *dy, int n, int C, size_t P,
                        int acc)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || C <= 0) return;
    k_bias_grad<<<C, CU_THREADS, 0, c->stream>>>(db, dy, n, C, P, acc);
    CU_LAUNCHED("bias_grad");
}
