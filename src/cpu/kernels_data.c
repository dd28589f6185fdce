/* The data kernels on the CPU: batch gather and the crop-flip
 * augmentation. Shapes: a data set src [rows, dim]; a batch x, out
 * [n, c, h, w] (dim = c h w); draws [n, 3] = (dy, dx, flip) per example.
 * Pure copies (every output element is one input element or 0), so any
 * order and thread count gives the same bits; examples are split over
 * threads once a batch is large enough to pay for the region. */
#include <string.h>

#include "common.h"
#include "kernels.h"

/* Floats of a batch below which one thread copies it. */
enum { DATA_PARALLEL_MIN = 1 << 16 };

static int data_threads(size_t floats)
{
    return floats < DATA_PARALLEL_MIN ? 1 : l2rw_get_threads();
}

void l2rw__gather_rows(float *dst, const float *src, const int32_t *idx,
                       int n, size_t dim)
{
    int nt = data_threads((size_t)n * dim);
    (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * dim, src + (size_t)idx[i] * dim,
               dim * sizeof *dst);
}

void l2rw__crop_flip_one(float *out, const float *in, int c, int h, int w,
                         int pad, int dy, int dx, int flip)
{
    for (int ch = 0; ch < c; ch++) {
        const float *src = in + (size_t)ch * h * w;
        float *dst = out + (size_t)ch * h * w;
        for (int y = 0; y < h; y++) {
            int sy = y + dy - pad;
            float *row = dst + (size_t)y * w;
            if (sy < 0 || sy >= h) {
                memset(row, 0, (size_t)w * sizeof(float));
                continue;
            }
            const float *srow = src + (size_t)sy * w;
            for (int x = 0; x < w; x++) {
                int sx = (flip ? w - 1 - x : x) + dx - pad;
                row[x] = sx >= 0 && sx < w ? srow[sx] : 0.0f;
            }
        }
    }
}

void l2rw__crop_flip(float *out, const float *x, const int32_t *draws,
                     int n, int c, int h, int w, int pad)
{
    size_t dim = (size_t)c * h * w;
    int nt = data_threads((size_t)n * dim);
    (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int i = 0; i < n; i++)
        l2rw__crop_flip_one(out + (size_t)i * dim, x + (size_t)i * dim, c,
                            h, w, pad, draws[3 * i], draws[3 * i + 1],
                            draws[3 * i + 2]);
}
