/* libFuzzer target: the .npy parser. Input: 2 bytes label-file length L
 * (big-endian), L bytes of the labels .npy, the rest the features .npy. */
#include "data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t l = (size_t)data[0] << 8 | data[1];
    data += 2;
    size -= 2;
    if (l > size) l = size;
    l2rw_dataset d;
    if (l2rw__npy_parse(&d, data + l, size - l, "x.npy", data, l, "y.npy",
                        0) == L2RW_OK)
        l2rw_dataset_free(&d);
    return 0;
}
