/* Standard CIFAR augmentation: x [n, c, h, w] -> out [n, c, h, w], each
 * example a random h x w crop of itself zero-padded by `pad` pixels on
 * every side, mirrored left-right with probability 1/2. */
#include "data_internal.h"

#include <string.h>

int l2rw_augment_default(const l2rw_dataset *d)
{
    return d->c == 3 && d->h == 32 && d->w == 32;
}

/* out[ch][y][x] = in[ch][y + dy - pad][sx + dx - pad], sx = x or w-1-x
 * (flip), 0 outside the image. */
static void crop_flip_one(float *out, const float *in, int c, int h, int w,
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

void l2rw_augment_crop_flip(float *out, const float *x, int n, int c,
                            int h, int w, int pad, uint64_t key)
{
    size_t dim = (size_t)c * h * w;
    uint64_t span = 2 * (uint64_t)(pad > 0 ? pad : 0) + 1;
    for (int i = 0; i < n; i++) {
        uint64_t r = l2rw_hash2(key, (uint64_t)i);
        /* Three independent fields of one 64-bit draw; span <= 2^16 in
         * practice, and the modulo bias (span / 2^21) is negligible. */
        int dy = (int)((r & 0x1FFFFF) % span);
        int dx = (int)(((r >> 21) & 0x1FFFFF) % span);
        int flip = (int)(r >> 63);
        crop_flip_one(out + (size_t)i * dim, x + (size_t)i * dim, c, h, w,
                      pad > 0 ? pad : 0, dy, dx, flip);
    }
}
