/* libFuzzer target: the CIFAR binary parser. Input: 1 byte kind (mod 3),
 * then the file. */
#include "data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    l2rw_cifar_kind kind = (l2rw_cifar_kind)(data[0] % 3);
    l2rw_dataset d;
    if (l2rw__cifar_parse(&d, data + 1, size - 1, "cifar", kind) == L2RW_OK)
        l2rw_dataset_free(&d);
    return 0;
}
