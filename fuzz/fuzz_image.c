/* libFuzzer target: the PNG and JPEG decoders of the folder: and list:
 * specs (l2rw__image_decode, libpng and libjpeg-turbo behind it) and the
 * conversion that follows (channels and resampling). Input: 1 byte that
 * picks the target size and channels, then the file's bytes. A hostile
 * header must be refused before it makes the decoder allocate (the run's
 * -rss_limit_mb catches that). */
#include "data_internal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const int c = data[0] & 1 ? 3 : 1;
    const int side = 1 + (data[0] >> 1) % 40; /* shrink and grow */
    l2rw__image im;
    int colour = 0;
    if (l2rw__image_decode(data + 1, size - 1, "fuzz", &im, &colour) !=
        L2RW_OK)
        return 0;
    unsigned char *dst = malloc((size_t)c * side * side);
    if (dst) (void)l2rw__image_convert(&im, c, side, side, dst);
    free(dst);
    l2rw__image_free(&im);
    return 0;
}
