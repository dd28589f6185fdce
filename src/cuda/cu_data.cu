/* The data kernels on the device: batch gather and the crop-flip
 * augmentation (kernels_data.c's, element by element). Shapes: a data
 * set src [rows, dim] resident on the device; a batch x, out
 * [n, c, h, w] (dim = c h w); idx [n] and draws [n, 3] = (dy, dx, flip),
 * uploaded by the caller. Pure copies: every output element is one input
 * element or 0, so the bits are the CPU's. */
#include "cu_internal.cuh"

size_t l2rw__cu_mem_free(void)
{
    size_t free_b = 0, total_b = 0;
    if (!l2rw__cu_cur()) return 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        (void)cudaGetLastError(); /* a failed query is "no room" */
        return 0;
    }
    return free_b;
}

__global__ static void k_gather_rows(float *dst, const float *src,
                                     const int32_t *idx, size_t dim,
                                     size_t len)
{
    CU_FOR(t, len) dst[t] = src[(size_t)idx[t / dim] * dim + t % dim];
}

void l2rw__cu_gather_rows(float *dst, const float *src, size_t rows,
                          const int32_t *idx, int n, size_t dim)
{
    (void)rows; /* the caller checked the indices */
    cu_ctx *c = l2rw__cu_cur();
    const size_t len = n > 0 ? (size_t)n * dim : 0;
    if (!c || len == 0) return;
    k_gather_rows<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(
        dst, src, idx, dim, len);
    CU_LAUNCHED("gather_rows");
}

/* out[i][ch][y][x] = x[i][ch][y + dy - pad][sx + dx - pad], sx = x or
 * w-1-x (flip), 0 outside the image: one output element a thread. */
__global__ static void k_crop_flip(float *out, const float *in,
                                   const int32_t *draws, int c, int h,
                                   int w, int pad, size_t len)
{
    const size_t plane = (size_t)h * w, dim = (size_t)c * plane;
    CU_FOR(t, len) {
        const size_t i = t / dim, r = t % dim;
        const int y = (int)((r % plane) / w), x = (int)(r % w);
        const int32_t *d = draws + 3 * i;
        const int sy = y + d[0] - pad;
        const int sx = (d[2] ? w - 1 - x : x) + d[1] - pad;
        out[t] = sy >= 0 && sy < h && sx >= 0 && sx < w
                     ? in[t - (size_t)y * w - x + (size_t)sy * w + sx]
                     : 0.0f;
    }
}

void l2rw__cu_crop_flip(float *out, const float *x, const int32_t *draws,
                        int n, int c, int h, int w, int pad)
{
    cu_ctx *cx = l2rw__cu_cur();
    const size_t len = n > 0 ? (size_t)n * c * h * w : 0;
    if (!cx || len == 0) return;
    k_crop_flip<<<cu_blocks(len), CU_THREADS, 0, cx->stream>>>(
        out, x, draws, c, h, w, pad, len);
    CU_LAUNCHED("crop_flip");
}
