/* IDX reader (MNIST, Fashion-MNIST): images [N, ...] uint8 and labels [N]
 * uint8, big-endian header "00 00 TYPE NDIM" then NDIM uint32 sizes. */
#include "data_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* IDX_PREFIX: magic (2 bytes), type, number of dimensions. */
enum { IDX_UBYTE = 0x08, IDX_MAX_DIMS = 8, IDX_PREFIX = 4 };

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

l2rw_status l2rw__shape_from_dims(const uint64_t *dims, int k, int *c,
                                  int *h, int *w, const char *name)
{
    uint64_t prod = 1;
    for (int i = 0; i < k; i++) {
        if (dims[i] == 0)
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: axis %d has size 0",
                              name, i + 1);
        if (dims[i] > INT_MAX || prod > INT_MAX / dims[i])
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: example size overflows "
                              "(axis %d of size %llu)", name, i + 1,
                              (unsigned long long)dims[i]);
        prod *= dims[i];
    }
    *c = *h = *w = 1;
    if (k == 1) {
        *c = (int)dims[0];
    } else if (k == 2) {
        *h = (int)dims[0];
        *w = (int)dims[1];
    } else if (k >= 3) {
        *c = (int)dims[0];
        *h = (int)dims[1];
        *w = (int)(prod / (dims[0] * dims[1]));
    }
    return L2RW_OK;
}

/* The fixed part of an IDX header of a uint8 file: magic, type, number
 * of dimensions (1..max_dims) and that the sizes are all there. */
static l2rw_status idx_prefix(const unsigned char *b, size_t len,
                              const char *name, int max_dims, int *ndim,
                              size_t *offset)
{
    if (len < IDX_PREFIX)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: truncated IDX header (%zu "
                          "bytes)", name, len);
    if (b[0] != 0 || b[1] != 0)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: bad IDX magic %02x %02x "
                          "(expected 00 00)", name, b[0], b[1]);
    if (b[2] != IDX_UBYTE)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: IDX element type 0x%02x is "
                          "not supported (only unsigned byte 0x08)", name,
                          b[2]);
    int nd = b[3];
    if (nd < 1 || nd > max_dims)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: IDX file has %d dimensions "
                          "(expected 1..%d)", name, nd, max_dims);
    size_t off = IDX_PREFIX + 4 * (size_t)nd;
    if (len < off)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: truncated IDX header (%zu "
                          "bytes, need %zu)", name, len, off);
    *ndim = nd;
    *offset = off;
    return L2RW_OK;
}

/* The header's sizes and the data bytes they give, which must not exceed
 * cap (`cap_what` says what cap is, for the message). */
static l2rw_status idx_sizes(const unsigned char *b, const char *name,
                             int nd, uint64_t cap, const char *cap_what,
                             uint64_t *dims, uint64_t *total_out)
{
    uint64_t total = 1;
    for (int i = 0; i < nd; i++) {
        dims[i] = be32(b + IDX_PREFIX + 4 * i);
        if (dims[i] == 0)
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: IDX dimension %d is 0",
                              name, i);
        /* Compared before multiplying, so the product cannot overflow. */
        if (total > cap / dims[i])
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: header sizes need more "
                              "than %s (truncated or corrupt header)", name,
                              cap_what);
        total *= dims[i];
    }
    *total_out = total;
    return L2RW_OK;
}

/* Parse an IDX header of a uint8 file: count n, sizes of the other
 * axes, and the offset of the data; checks the data size exactly. */
static l2rw_status idx_header(const unsigned char *b, size_t len,
                              const char *name, int want_dims_max,
                              uint64_t *dims, int *ndim, size_t *offset)
{
    int nd = 0;
    size_t off = 0;
    uint64_t total = 0;
    char present[64];
    L2RW_TRY(idx_prefix(b, len, name, want_dims_max, &nd, &off));
    snprintf(present, sizeof present, "the %zu data bytes present",
             len - off);
    L2RW_TRY(idx_sizes(b, name, nd, (uint64_t)(len - off), present, dims,
                       &total));
    if (total != (uint64_t)(len - off))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: header sizes give %llu data "
                          "bytes but the file has %zu (%s)", name,
                          (unsigned long long)total, len - off,
                          total < (uint64_t)(len - off) ? "trailing data"
                                                        : "truncated");
    if (dims[0] > INT_MAX)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: %llu examples is too many",
                          name, (unsigned long long)dims[0]);
    *ndim = nd;
    *offset = off;
    return L2RW_OK;
}

/* Read an IDX file up to the size its header announces and no further:
 * a gzip bomb behind a small header stops a byte past that size. */
static l2rw_status idx_read(const char *path, int max_dims,
                            unsigned char **buf, size_t *len)
{
    l2rw__file f;
    uint64_t dims[IDX_MAX_DIMS], total = 0;
    int nd = 0;
    size_t off = 0;
    *buf = NULL;
    *len = 0;
    L2RW_TRY(l2rw__file_open(&f, path));
    l2rw_status s = l2rw__file_fill(&f, IDX_PREFIX);
    if (s == L2RW_OK && f.len == IDX_PREFIX)
        s = l2rw__file_fill(&f, IDX_PREFIX + 4 * (size_t)f.buf[3]);
    if (s == L2RW_OK)
        s = idx_prefix(f.buf, f.len, path, max_dims, &nd, &off);
    if (s == L2RW_OK)
        s = idx_sizes(f.buf, path, nd, (uint64_t)(L2RW__MAX_FILE - off),
                      "the 4 GiB a reader accepts", dims, &total);
    if (s != L2RW_OK) {
        l2rw__file_close(&f);
        return s;
    }
    return l2rw__file_finish(&f, off + (size_t)total,
                             "its IDX header announces (trailing data, or "
                             "a gzip bomb)", buf, len);
}

l2rw_status l2rw__idx_parse(l2rw_dataset *out, const unsigned char *img,
                            size_t img_len, const char *img_name,
                            const unsigned char *lab, size_t lab_len,
                            const char *lab_name, int classes)
{
    uint64_t di[IDX_MAX_DIMS], dl[IDX_MAX_DIMS];
    int ni, nl, c, h, w;
    size_t oi, ol;
    memset(out, 0, sizeof *out);
    L2RW_TRY(idx_header(img, img_len, img_name, IDX_MAX_DIMS, di, &ni, &oi));
    L2RW_TRY(idx_header(lab, lab_len, lab_name, 1, dl, &nl, &ol));
    if (di[0] != dl[0])
        return l2rw__fail(L2RW_ERR_FORMAT, "%s has %llu images but %s has "
                          "%llu labels", img_name,
                          (unsigned long long)di[0], lab_name,
                          (unsigned long long)dl[0]);
    L2RW_TRY(l2rw__shape_from_dims(di + 1, ni - 1, &c, &h, &w, img_name));
    int n = (int)di[0];
    l2rw_dataset d;
    L2RW_TRY(l2rw_dataset_alloc(&d, n, c, h, w, 0));
    for (int i = 0; i < n; i++) d.y[i] = lab[ol + (size_t)i];
    l2rw_status s = l2rw__check_labels(d.y, n, &classes, lab_name);
    if (s != L2RW_OK) {
        l2rw_dataset_free(&d);
        return s;
    }
    d.classes = classes;
    memcpy(d.y_true, d.y, (size_t)n * sizeof(int32_t));
    size_t total = (size_t)n * l2rw_dataset_dim(&d);
    for (size_t i = 0; i < total; i++) d.x[i] = img[oi + i] / 255.0f;
    *out = d;
    return L2RW_OK;
}

l2rw_status l2rw_load_idx(l2rw_dataset *out, const char *images,
                          const char *labels, int classes)
{
    unsigned char *ib = NULL, *lb = NULL;
    size_t il = 0, ll = 0;
    memset(out, 0, sizeof *out);
    l2rw_status s = idx_read(labels, 1, &lb, &ll);
    if (s == L2RW_OK) s = idx_read(images, IDX_MAX_DIMS, &ib, &il);
    if (s == L2RW_OK)
        s = l2rw__idx_parse(out, ib, il, images, lb, ll, labels, classes);
    free(ib);
    free(lb);
    return s;
}
