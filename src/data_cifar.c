/* CIFAR-10/100 binary reader: fixed-size records of label byte(s) then
 * 3072 pixel bytes (3 x 32 x 32, channel-major, as NCHW wants). */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* CIFAR_MAX_RECORDS: the whole of CIFAR-10 or -100 (60,000 images) in
 * one file, the most a CIFAR file can hold: files are read no further,
 * so a gzip bomb stops there instead of at 4 GiB. */
enum { CIFAR_C = 3, CIFAR_HW = 32, CIFAR_PIXELS = 3 * 32 * 32,
       CIFAR10_BATCHES = 5, CIFAR_MAX_RECORDS = 60000 };

static int label_bytes(l2rw_cifar_kind kind)
{
    return kind == L2RW_CIFAR10 ? 1 : 2;
}

static int kind_classes(l2rw_cifar_kind kind)
{
    return kind == L2RW_CIFAR10 ? 10 : kind == L2RW_CIFAR100_FINE ? 100 : 20;
}

/* Check a whole file's bytes (record size, label range) and count its
 * records, without allocating. */
static l2rw_status cifar_check(const unsigned char *buf, size_t len,
                               const char *name, l2rw_cifar_kind kind,
                               int *n_out)
{
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
    /* CIFAR-100 records are (coarse, fine): check the requested byte. */
    size_t which = kind == L2RW_CIFAR100_FINE ? 1 : 0;
    for (int i = 0; i < n; i++) {
        const unsigned char *r = buf + (size_t)i * rec;
        if (r[which] >= classes)
            return l2rw__fail(L2RW_ERR_LABEL, "%s: record %d has %s label "
                              "%d outside [0, %d)", name, i,
                              kind == L2RW_CIFAR100_COARSE ? "coarse"
                                                           : "class",
                              r[which], classes);
    }
    *n_out = n;
    return L2RW_OK;
}

/* A CIFAR file of at most CIFAR_MAX_RECORDS records. */
static l2rw_status cifar_read(const char *path, l2rw_cifar_kind kind,
                              unsigned char **buf, size_t *len)
{
    size_t rec = (size_t)label_bytes(kind) + CIFAR_PIXELS;
    return l2rw__read_file(path, CIFAR_MAX_RECORDS * rec,
                           "of 60000 CIFAR records, the whole data set "
                           "(a gzip bomb?)", buf, len);
}

/* Examples [first, first + n) of d from checked records. */
static void cifar_fill(l2rw_dataset *d, int first, const unsigned char *buf,
                       int n, l2rw_cifar_kind kind)
{
    size_t lb = (size_t)label_bytes(kind), rec = lb + CIFAR_PIXELS;
    size_t which = kind == L2RW_CIFAR100_FINE ? 1 : 0;
    for (int i = 0; i < n; i++) {
        const unsigned char *r = buf + (size_t)i * rec;
        int j = first + i;
        d->y[j] = d->y_true[j] = r[which];
        float *x = d->x + (size_t)j * CIFAR_PIXELS;
        for (int p = 0; p < CIFAR_PIXELS; p++) x[p] = r[lb + p] / 255.0f;
    }
}

l2rw_status l2rw__cifar_parse(l2rw_dataset *out, const unsigned char *buf,
                              size_t len, const char *name,
                              l2rw_cifar_kind kind)
{
    int n;
    memset(out, 0, sizeof *out);
    L2RW_TRY(cifar_check(buf, len, name, kind, &n));
    L2RW_TRY(l2rw_dataset_alloc(out, n, CIFAR_C, CIFAR_HW, CIFAR_HW,
                                kind_classes(kind)));
    cifar_fill(out, 0, buf, n, kind);
    return L2RW_OK;
}

l2rw_status l2rw_load_cifar_file(l2rw_dataset *out, const char *path,
                                 l2rw_cifar_kind kind)
{
    unsigned char *b;
    size_t len;
    memset(out, 0, sizeof *out);
    L2RW_TRY(cifar_read(path, kind, &b, &len));
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

/* Read and check files paths[0..k), then convert them into one dataset:
 * the raw bytes (a quarter of the floats) are all that is held twice. */
static l2rw_status load_files(l2rw_dataset *d, char paths[][4200], int k,
                              l2rw_cifar_kind kind)
{
    unsigned char *buf[CIFAR10_BATCHES] = {0};
    size_t len[CIFAR10_BATCHES];
    int cnt[CIFAR10_BATCHES];
    long total = 0;
    l2rw_status s = L2RW_OK;
    for (int i = 0; i < k && s == L2RW_OK; i++) {
        s = cifar_read(paths[i], kind, &buf[i], &len[i]);
        if (s == L2RW_OK) s = cifar_check(buf[i], len[i], paths[i], kind,
                                          &cnt[i]);
        if (s == L2RW_OK) total += cnt[i];
    }
    if (s == L2RW_OK && total > INT_MAX)
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: too many records", paths[0]);
    if (s == L2RW_OK)
        s = l2rw_dataset_alloc(d, (int)total, CIFAR_C, CIFAR_HW, CIFAR_HW,
                               kind_classes(kind));
    for (int i = 0, first = 0; s == L2RW_OK && i < k; first += cnt[i++])
        cifar_fill(d, first, buf[i], cnt[i], kind);
    for (int i = 0; i < k; i++) free(buf[i]);
    return s;
}

l2rw_status l2rw_load_cifar_dir(l2rw_dataset *train, l2rw_dataset *test,
                                const char *dir, l2rw_cifar_kind kind)
{
    char base[4096], paths[CIFAR10_BATCHES][4200], tpath[1][4200];
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (strlen(dir) > 3000)
        return l2rw__fail(L2RW_ERR_ARG, "CIFAR directory name too long");
    int k;
    if (kind == L2RW_CIFAR10) {
        cifar_base(base, sizeof base, dir, "cifar-10-batches-bin",
                   "data_batch_1.bin");
        for (k = 0; k < CIFAR10_BATCHES; k++)
            snprintf(paths[k], sizeof paths[k], "%s/data_batch_%d.bin", base,
                     k + 1);
        snprintf(tpath[0], sizeof tpath[0], "%s/test_batch.bin", base);
    } else {
        cifar_base(base, sizeof base, dir, "cifar-100-binary", "train.bin");
        k = 1;
        snprintf(paths[0], sizeof paths[0], "%s/train.bin", base);
        snprintf(tpath[0], sizeof tpath[0], "%s/test.bin", base);
    }
    l2rw_status s = load_files(train, paths, k, kind);
    if (s == L2RW_OK) s = load_files(test, tpath, 1, kind);
    if (s != L2RW_OK) {
        l2rw_dataset_free(train);
        l2rw_dataset_free(test);
    }
    return s;
}
