/* Datasets in memory: x [n, c, h, w] float32, y, y_true, id [n] int32.
 * Allocation, subsets, batch gathering, whole-file reads. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* First buffer of a read, and the most one gzread call takes (it counts
 * in unsigned). */
enum { FILE_FIRST_CHUNK = 1 << 16 };
#define FILE_MAX_READ ((size_t)1 << 30)

size_t l2rw_dataset_dim(const l2rw_dataset *d)
{
    return (size_t)d->c * (size_t)d->h * (size_t)d->w;
}

void l2rw_dataset_free(l2rw_dataset *d)
{
    if (!d) return;
    l2rw__afree(d->x);
    free(d->y);
    free(d->y_true);
    free(d->id);
    memset(d, 0, sizeof *d);
}

l2rw_status l2rw_dataset_alloc(l2rw_dataset *d, int n, int c, int h, int w,
                               int classes)
{
    memset(d, 0, sizeof *d);
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || classes < 0)
        return l2rw__fail(L2RW_ERR_ARG,
                          "dataset shape %d x %d x %d x %d (%d classes) "
                          "is invalid", n, c, h, w, classes);
    size_t dim = (size_t)c * (size_t)h;
    if (dim > SIZE_MAX / (size_t)w || dim * (size_t)w > INT_MAX)
        return l2rw__fail(L2RW_ERR_ARG, "example size %d x %d x %d is too "
                          "large", c, h, w);
    dim *= (size_t)w;
    if (n > 0 && dim > SIZE_MAX / sizeof(float) / (size_t)n)
        return l2rw__fail(L2RW_ERR_NOMEM, "dataset of %d x %zu floats "
                          "overflows", n, dim);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->classes = classes;
    d->x = l2rw__aalloc((size_t)n * dim, sizeof(float));
    d->y = l2rw__calloc((size_t)n, sizeof(int32_t));
    d->y_true = l2rw__calloc((size_t)n, sizeof(int32_t));
    d->id = l2rw__calloc((size_t)n, sizeof(int32_t));
    if (!d->x || !d->y || !d->y_true || !d->id) {
        l2rw_dataset_free(d);
        return l2rw__fail(L2RW_ERR_NOMEM, "dataset of %d x %zu floats: out "
                          "of memory", n, dim);
    }
    for (int i = 0; i < n; i++) d->id[i] = i;
    return L2RW_OK;
}

l2rw_status l2rw_dataset_subset(l2rw_dataset *dst, const l2rw_dataset *src,
                                const int32_t *idx, int n)
{
    l2rw_dataset t;
    L2RW_TRY(l2rw_dataset_alloc(&t, n, src->c, src->h, src->w,
                                src->classes));
    l2rw_status s = l2rw_gather(src, idx, n, t.x, t.y, t.y_true, t.id);
    if (s != L2RW_OK) {
        l2rw_dataset_free(&t);
        return s;
    }
    *dst = t;
    return L2RW_OK;
}

l2rw_status l2rw_dataset_copy(l2rw_dataset *dst, const l2rw_dataset *src)
{
    l2rw_dataset t;
    L2RW_TRY(l2rw_dataset_alloc(&t, src->n, src->c, src->h, src->w,
                                src->classes));
    size_t n = (size_t)src->n;
    if (n) {
        memcpy(t.x, src->x, n * l2rw_dataset_dim(src) * sizeof(float));
        memcpy(t.y, src->y, n * sizeof(int32_t));
        memcpy(t.y_true, src->y_true, n * sizeof(int32_t));
        memcpy(t.id, src->id, n * sizeof(int32_t));
    }
    *dst = t;
    return L2RW_OK;
}

l2rw_status l2rw_dataset_validate(const l2rw_dataset *d, const char *what)
{
    if (d->n < 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->classes <= 0)
        return l2rw__fail(L2RW_ERR_SHAPE, "%s: invalid shape %d x %d x %d "
                          "x %d, %d classes", what, d->n, d->c, d->h, d->w,
                          d->classes);
    if (d->n > 0 && (!d->x || !d->y || !d->y_true || !d->id))
        return l2rw__fail(L2RW_ERR_ARG, "%s: missing buffers", what);
    for (int i = 0; i < d->n; i++) {
        if (d->y[i] < 0 || d->y[i] >= d->classes || d->y_true[i] < 0 ||
            d->y_true[i] >= d->classes)
            return l2rw__fail(L2RW_ERR_LABEL, "%s: example %d has label "
                              "%d (true %d) outside [0, %d)", what, i,
                              d->y[i], d->y_true[i], d->classes);
    }
    size_t total = (size_t)d->n * l2rw_dataset_dim(d);
    for (size_t i = 0; i < total; i++)
        if (!isfinite(d->x[i]))
            return l2rw__fail(L2RW_ERR_NUMERIC, "%s: feature %zu of "
                              "example %zu is not finite", what,
                              i % l2rw_dataset_dim(d),
                              i / l2rw_dataset_dim(d));
    return L2RW_OK;
}

l2rw_status l2rw_gather(const l2rw_dataset *d, const int32_t *idx, int n,
                        float *x, int32_t *y, int32_t *y_true, int32_t *id)
{
    size_t dim = l2rw_dataset_dim(d);
    for (int i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= d->n)
            return l2rw__fail(L2RW_ERR_ARG, "gather: index %d at batch "
                              "position %d is outside [0, %d)", idx[i], i,
                              d->n);
    for (int i = 0; i < n; i++) {
        size_t j = (size_t)idx[i];
        if (x) memcpy(x + (size_t)i * dim, d->x + j * dim,
                      dim * sizeof(float));
        if (y) y[i] = d->y[j];
        if (y_true) y_true[i] = d->y_true[j];
        if (id) id[i] = d->id[j];
    }
    return L2RW_OK;
}

l2rw_status l2rw__check_labels(const int32_t *y, int n, int *classes,
                               const char *name)
{
    int limit = *classes > 0 ? *classes : L2RW__MAX_CLASSES;
    int max = -1;
    for (int i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= limit)
            return l2rw__fail(L2RW_ERR_LABEL, "%s: label %ld of example %d "
                              "is outside [0, %d)", name, (long)y[i], i,
                              limit);
        if (y[i] > max) max = y[i];
    }
    if (*classes <= 0) *classes = max + 1 > 0 ? max + 1 : 1;
    return L2RW_OK;
}

l2rw_status l2rw__dataset_concat(l2rw_dataset *out, l2rw_dataset *a,
                                 l2rw_dataset *b)
{
    l2rw_dataset t;
    memset(out, 0, sizeof *out);
    if (a->c != b->c || a->h != b->h || a->w != b->w) {
        l2rw_status s = l2rw__fail(L2RW_ERR_SHAPE, "cannot join parts of "
                                   "shapes %dx%dx%d and %dx%dx%d", a->c,
                                   a->h, a->w, b->c, b->h, b->w);
        l2rw_dataset_free(a);
        l2rw_dataset_free(b);
        return s;
    }
    if ((long)a->n + b->n > INT_MAX) {
        l2rw_dataset_free(a);
        l2rw_dataset_free(b);
        return l2rw__fail(L2RW_ERR_ARG, "too many examples");
    }
    int classes = a->classes > b->classes ? a->classes : b->classes;
    l2rw_status s = l2rw_dataset_alloc(&t, a->n + b->n, a->c, a->h, a->w,
                                       classes);
    if (s == L2RW_OK) {
        size_t dim = l2rw_dataset_dim(a);
        size_t na = (size_t)a->n, nb = (size_t)b->n;
        if (na) memcpy(t.x, a->x, na * dim * sizeof(float));
        if (nb) memcpy(t.x + na * dim, b->x, nb * dim * sizeof(float));
        for (size_t i = 0; i < na + nb; i++) {
            const l2rw_dataset *src = i < na ? a : b;
            size_t j = i < na ? i : i - na;
            t.y[i] = src->y[j];
            t.y_true[i] = src->y_true[j];
            t.id[i] = (int32_t)i; /* position in the joined source */
        }
        *out = t;
    }
    l2rw_dataset_free(a);
    l2rw_dataset_free(b);
    return s;
}

l2rw_status l2rw__file_open(l2rw__file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return l2rw__fail(L2RW_ERR_IO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "gzopen failed");
    f->cap = FILE_FIRST_CHUNK;
    f->buf = malloc(f->cap + 1);
    if (!f->buf) {
        l2rw__file_close(f);
        return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", path);
    }
    return L2RW_OK;
}

void l2rw__file_close(l2rw__file *f)
{
    if (f->gz) gzclose((gzFile)f->gz);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

/* Room for at least one more byte, at most `want` in all: the buffer
 * doubles with the bytes actually read, never past what is asked for. */
static l2rw_status file_grow(l2rw__file *f, size_t want)
{
    if (f->len < f->cap) return L2RW_OK;
    size_t cap = f->cap * 2 < want ? f->cap * 2 : want;
    unsigned char *nb = realloc(f->buf, cap + 1);
    if (!nb)
        return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory after %zu "
                          "bytes", f->path, f->len);
    f->buf = nb;
    f->cap = cap;
    return L2RW_OK;
}

/* End of the stream: a gzip stream cut short reads as EOF with an error
 * state, which is a corrupt file, not a short one. */
static l2rw_status file_at_eof(l2rw__file *f)
{
    int err;
    const char *msg = gzerror((gzFile)f->gz, &err);
    f->eof = 1;
    if (err != Z_OK && err != Z_STREAM_END)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: corrupt or truncated gzip "
                          "data: %s", f->path, msg);
    return L2RW_OK;
}

l2rw_status l2rw__file_fill(l2rw__file *f, size_t want)
{
    while (f->len < want && !f->eof) {
        L2RW_TRY(file_grow(f, want));
        size_t ask = f->cap - f->len;
        if (ask > want - f->len) ask = want - f->len;
        if (ask > FILE_MAX_READ) ask = FILE_MAX_READ;
        int got = gzread((gzFile)f->gz, f->buf + f->len, (unsigned)ask);
        if (got < 0) {
            int err;
            const char *msg = gzerror((gzFile)f->gz, &err);
            return l2rw__fail(err == Z_ERRNO ? L2RW_ERR_IO : L2RW_ERR_FORMAT,
                              "%s: read failed: %s", f->path,
                              err == Z_ERRNO ? strerror(errno) : msg);
        }
        if (got == 0) return file_at_eof(f);
        f->len += (size_t)got;
    }
    return L2RW_OK;
}

void l2rw__file_take(l2rw__file *f, unsigned char **buf, size_t *len)
{
    f->buf[f->len] = 0;
    *buf = f->buf;
    *len = f->len;
    f->buf = NULL;
    l2rw__file_close(f);
}

l2rw_status l2rw__file_finish(l2rw__file *f, size_t limit, const char *why,
                              unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    /* One byte past the limit tells a file that holds more, without
     * inflating the rest of a gzip bomb. */
    l2rw_status s = l2rw__file_fill(f, limit + 1);
    if (s == L2RW_OK && f->len > limit)
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: holds more than the %zu bytes "
                       "%s; stopped reading there", f->path, limit, why);
    if (s != L2RW_OK) {
        l2rw__file_close(f);
        return s;
    }
    l2rw__file_take(f, buf, len);
    return L2RW_OK;
}

l2rw_status l2rw__read_file(const char *path, size_t limit, const char *why,
                            unsigned char **buf, size_t *len)
{
    l2rw__file f;
    *buf = NULL;
    *len = 0;
    L2RW_TRY(l2rw__file_open(&f, path));
    return l2rw__file_finish(&f, limit, why, buf, len);
}

uint64_t l2rw_data_stage_seed(uint64_t seed, l2rw_data_stage stage)
{
    return l2rw_hash2(seed, 0x6c32727764617461ull + (uint64_t)stage);
}
