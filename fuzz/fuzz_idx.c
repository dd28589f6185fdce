/* libFuzzer target: the IDX parser. Input: 2 bytes label-file length L
 * (big-endian), 1 byte class count (0 = infer), L bytes of label file,
 * the rest the image file. */
#include "data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    size_t l = (size_t)data[0] << 8 | data[1];
    int classes = data[2];
    data += 3;
    size -= 3;
    if (l > size) l = size;
    l2rw_dataset d;
    if (l2rw__idx_parse(&d, data + l, size - l, "img", data, l, "lab",
                        classes) == L2RW_OK)
        l2rw_dataset_free(&d);
    return 0;
}
