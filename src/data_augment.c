/* Standard CIFAR augmentation: x [n, c, h, w] -> out [n, c, h, w], each
 * example a random h x w crop of itself zero-padded by `pad` pixels on
 * every side, mirrored left-right with probability 1/2. */
#include "data_internal.h"
#include "kernels.h"

#include <string.h>

int l2rw_augment_default(const l2rw_dataset *d)
{
    return d->c == 3 && d->h == 32 && d->w == 32;
}

/* Example i's move: three independent fields of one 64-bit draw; span
 * <= 2^16 in practice, and the modulo bias (span / 2^21) is
 * negligible. */
static void draw_one(uint64_t key, int i, int pad, int32_t d[3])
{
    uint64_t span = 2 * (uint64_t)(pad > 0 ? pad : 0) + 1;
    uint64_t r = l2rw_hash2(key, (uint64_t)i);
    d[0] = (int32_t)((r & 0x1FFFFF) % span);
    d[1] = (int32_t)(((r >> 21) & 0x1FFFFF) % span);
    d[2] = (int32_t)(r >> 63);
}

void l2rw__augment_draws(uint64_t key, int n, int pad, int32_t *draws)
{
    for (int i = 0; i < n; i++) draw_one(key, i, pad, draws + 3 * i);
}

void l2rw_augment_crop_flip(float *out, const float *x, int n, int c,
                            int h, int w, int pad, uint64_t key)
{
    size_t dim = (size_t)c * h * w;
    for (int i = 0; i < n; i++) {
        int32_t d[3];
        draw_one(key, i, pad, d);
        l2rw__crop_flip_one(out + (size_t)i * dim, x + (size_t)i * dim, c,
                            h, w, pad > 0 ? pad : 0, d[0], d[1], d[2]);
    }
}
