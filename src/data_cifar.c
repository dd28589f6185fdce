/* CIFAR-10/100 binary reader: fixed-size records of label byte(s) then
 * 3072 pixel bytes (3 x 32 x 32, channel-major, as NCHW wants). */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { CIFAR_C = 3, CIFAR_HW = 32, CIFAR_PIXELS = 3 * 32 * 32,
       CIFAR10_BATCHES = 5 };

static int label_bytes(l2rw_cifar_kind kind)
{
    return kind == L2RW_CIFAR10 ? 1 : 2;
}

static int kind_classes(l2rw_cifar_kind kind)
{
    return kind == L2RW_CIFAR10 ? 10 : kind == L2RW_CIFAR100_FINE ? 100 : 20;
}

l2rw_status l2rw__cifar_parse(l2rw_dataset *out, const unsigned char *buf,
                              size_t len, const char *name,
                              l2rw_cifar_kind kind)
{
    memset(out, 0, sizeof *out);
    if (kind != L2RW_CIFAR10 && kind != L2RW_CIFAR100_FINE &&
        kind != L2RW_CIFAR100_COARSE)
        return l2rw__fail(L2RW_ERR_ARG, "%s: unknown CIFAR kind %d", name,
                          (int)kind);
    size_t lb = (size_t)label_bytes(kind), rec = lb + CIFAR_PIXELS;
    if (len == 0)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: empty CIFAR file", name);
    if (len % rec != 0)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: size %zu is not a multiple "
                          "of the %zu-byte CIFAR-%s record (truncated or "
                          "wrong kind)", name, len, rec,
                          kind == L2RW_CIFAR10 ? "10" : "100");
    if (len / rec > INT_MAX)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: too many records", name);
    int n = (int)(len / rec), classes = kind_classes(kind);
    /* CIFAR-100 records are (coarse, fine): pick the requested byte. */
    size_t which = kind == L2RW_CIFAR100_FINE ? 1 : 0;
    l2rw_dataset d;
    L2RW_TRY(l2rw_dataset_alloc(&d, n, CIFAR_C, CIFAR_HW, CIFAR_HW,
                                classes));
    for (int i = 0; i < n; i++) {
        const unsigned char *r = buf + (size_t)i * rec;
        if (r[which] >= classes) {
            l2rw_dataset_free(&d);
            return l2rw__fail(L2RW_ERR_LABEL, "%s: record %d has %s label "
                              "%d outside [0, %d)", name, i,
                              kind == L2RW_CIFAR100_COARSE ? "coarse"
                                                           : "class",
                              r[which], classes);
        }
        d.y[i] = d.y_true[i] = r[which];
        float *x = d.x + (size_t)i * CIFAR_PIXELS;
        for (int p = 0; p < CIFAR_PIXELS; p++) x[p] = r[lb + p] / 255.0f;
    }
    *out = d;
    return L2RW_OK;
}

l2rw_status l2rw_load_cifar_file(l2rw_dataset *out, const char *path,
                                 l2rw_cifar_kind kind)
{
    unsigned char *b;
    size_t len;
    memset(out, 0, sizeof *out);
    L2RW_TRY(l2rw__read_file(path, &b, &len));
    l2rw_status s = l2rw__cifar_parse(out, b, len, path, kind);
    free(b);
    return s;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir itself when it holds `probe`, else dir/sub when that does. */
static void cifar_base(char *base, size_t size, const char *dir,
                       const char *sub, const char *probe)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, probe);
    if (!file_exists(p)) {
        snprintf(p, sizeof p, "%s/%s/%s", dir, sub, probe);
        if (file_exists(p)) {
            snprintf(base, size, "%s/%s", dir, sub);
            return;
        }
    }
    snprintf(base, size, "%s", dir);
}

static l2rw_status load_append(l2rw_dataset *acc, const char *path,
                               l2rw_cifar_kind kind)
{
    l2rw_dataset part;
    L2RW_TRY(l2rw_load_cifar_file(&part, path, kind));
    if (acc->n == 0 && !acc->x) {
        *acc = part;
        return L2RW_OK;
    }
    l2rw_dataset joined, prev = *acc;
    memset(acc, 0, sizeof *acc);
    L2RW_TRY(l2rw__dataset_concat(&joined, &prev, &part));
    *acc = joined;
    return L2RW_OK;
}

l2rw_status l2rw_load_cifar_dir(l2rw_dataset *train, l2rw_dataset *test,
                                const char *dir, l2rw_cifar_kind kind)
{
    char base[4096], path[4200];
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (strlen(dir) > 3000)
        return l2rw__fail(L2RW_ERR_ARG, "CIFAR directory name too long");
    l2rw_status s = L2RW_OK;
    if (kind == L2RW_CIFAR10) {
        cifar_base(base, sizeof base, dir, "cifar-10-batches-bin",
                   "data_batch_1.bin");
        for (int b = 1; b <= CIFAR10_BATCHES && s == L2RW_OK; b++) {
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", base, b);
            s = load_append(train, path, kind);
        }
        snprintf(path, sizeof path, "%s/test_batch.bin", base);
    } else {
        cifar_base(base, sizeof base, dir, "cifar-100-binary", "train.bin");
        snprintf(path, sizeof path, "%s/train.bin", base);
        s = load_append(train, path, kind);
        snprintf(path, sizeof path, "%s/test.bin", base);
    }
    if (s == L2RW_OK) s = l2rw_load_cifar_file(test, path, kind);
    if (s != L2RW_OK) {
        l2rw_dataset_free(train);
        l2rw_dataset_free(test);
    }
    return s;
}
