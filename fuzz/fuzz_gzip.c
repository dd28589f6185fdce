/* libFuzzer target: the whole-file reader (zlib, raw or gzip, with its
 * truncation and corruption checks) followed by the IDX parser on what it
 * read, as the label file of itself; then the bounded readers that stop
 * at the size a header announces (IDX and .npy, the file as both parts
 * of the pair) and at CIFAR's largest file. The input goes through a
 * file because the readers take a path. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/l2rw_fuzz_gzip_%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    unsigned char *buf;
    size_t len;
    l2rw_dataset d;
    if (l2rw__read_file(path, L2RW__MAX_FILE, "a reader accepts", &buf,
                        &len) == L2RW_OK) {
        if (l2rw__idx_parse(&d, buf, len, "img", buf, len, "lab", 0) ==
            L2RW_OK)
            l2rw_dataset_free(&d);
        free(buf);
    }
    if (l2rw_load_idx(&d, path, path, 0) == L2RW_OK) l2rw_dataset_free(&d);
    if (l2rw_load_npy(&d, path, path, 0) == L2RW_OK) l2rw_dataset_free(&d);
    if (l2rw_load_cifar_file(&d, path, L2RW_CIFAR10) == L2RW_OK)
        l2rw_dataset_free(&d);
    remove(path);
    return 0;
}
