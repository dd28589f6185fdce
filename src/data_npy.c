/* NumPy .npy reader: "\x93NUMPY", version, header length, a Python dict
 * literal {'descr': ..., 'fortran_order': ..., 'shape': (...)}, then the
 * raw array. Features uint8 or float32 [N, ...], labels integer [N]. */
#include "data_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* NPY_PREAMBLE_V1/V2: magic, version and header length field of format
 * version 1 (2-byte length) and 2-3 (4-byte length). */
enum { NPY_MAX_DIMS = 16, NPY_MAX_HEADER = 1 << 20, NPY_PREAMBLE_V1 = 10,
       NPY_PREAMBLE_V2 = 12 };

/* What a file holds: the role decides the dtypes accepted. */
typedef enum { NPY_FEATURES, NPY_LABELS } npy_role;

typedef enum { DT_U1, DT_F4, DT_I4, DT_I8, DT_OTHER } npy_dtype;

typedef struct {
    npy_dtype dt;
    char descr[16];
    int ndim;
    uint64_t shape[NPY_MAX_DIMS];
    const unsigned char *data;
    size_t count; /* elements */
} npy_array;

static size_t dt_size(npy_dtype dt)
{
    return dt == DT_U1 ? 1 : dt == DT_I8 ? 8 : 4;
}

/* The value after 'key': in the header dict, or NULL. */
static const char *dict_value(const char *h, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = h; (p = strchr(p, key[0])) != NULL; p++) {
        /* key[0] is the quote: match quote-key-quote. */
        if (strncmp(p, key, kl) != 0) continue;
        const char *q = p + kl;
        while (*q == ' ') q++;
        if (*q != ':') continue;
        q++;
        while (*q == ' ') q++;
        return q;
    }
    return NULL;
}

static const char *find_key(const char *h, const char *name)
{
    char k[32];
    snprintf(k, sizeof k, "'%s'", name);
    const char *v = dict_value(h, k);
    if (v) return v;
    snprintf(k, sizeof k, "\"%s\"", name);
    return dict_value(h, k);
}

static l2rw_status parse_descr(npy_array *a, const char *v, const char *name)
{
    if (!v || (*v != '\'' && *v != '"'))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy header has no 'descr' "
                          "string", name);
    char q = *v++;
    size_t n = 0;
    while (v[n] && v[n] != q && n < sizeof a->descr - 1) n++;
    if (v[n] != q)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy 'descr' is not a "
                          "simple type string", name);
    memcpy(a->descr, v, n);
    a->descr[n] = 0;
    const char *d = a->descr;
    if (!strcmp(d, "|u1") || !strcmp(d, "<u1") || !strcmp(d, "u1"))
        a->dt = DT_U1;
    else if (!strcmp(d, "<f4"))
        a->dt = DT_F4;
    else if (!strcmp(d, "<i4"))
        a->dt = DT_I4;
    else if (!strcmp(d, "<i8"))
        a->dt = DT_I8;
    else
        a->dt = DT_OTHER;
    return L2RW_OK;
}

static l2rw_status parse_shape(npy_array *a, const char *v, const char *name)
{
    if (!v || *v != '(')
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy header has no 'shape' "
                          "tuple", name);
    v++;
    a->ndim = 0;
    for (;;) {
        while (*v == ' ') v++;
        if (*v == ')') break;
        if (*v < '0' || *v > '9')
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy shape is not a "
                              "tuple of sizes", name);
        uint64_t x = 0;
        while (*v >= '0' && *v <= '9') {
            if (x > (UINT64_MAX - 9) / 10)
                return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy shape size "
                                  "overflows", name);
            x = x * 10 + (uint64_t)(*v++ - '0');
        }
        if (*v == 'L') v++; /* Python 2 longs */
        if (a->ndim == NPY_MAX_DIMS)
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy array has more "
                              "than %d axes", name, NPY_MAX_DIMS);
        a->shape[a->ndim++] = x;
        while (*v == ' ') v++;
        if (*v == ',') v++;
        else if (*v != ')')
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy shape is not a "
                              "tuple of sizes", name);
    }
    return L2RW_OK;
}

/* The dtypes each role accepts, and the list for messages. */
static int role_accepts(npy_role role, npy_dtype dt)
{
    if (role == NPY_FEATURES) return dt == DT_U1 || dt == DT_F4;
    return dt == DT_U1 || dt == DT_I4 || dt == DT_I8;
}

static const char *role_dtypes(npy_role role)
{
    return role == NPY_FEATURES ? "feature dtypes '|u1', '<f4'"
                                : "label dtypes '<i4', '<i8', '|u1'";
}

/* Magic, version and header length: the dict is b[*off, *off + *hl). */
static l2rw_status parse_preamble(const unsigned char *b, size_t len,
                                  const char *name, size_t *off, size_t *hl)
{
    if (len < NPY_PREAMBLE_V1 || memcmp(b, "\x93NUMPY", 6) != 0)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: not a .npy file (bad "
                          "magic)", name);
    int major = b[6];
    if (major < 1 || major > 3)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy format version %d.%d "
                          "is not supported", name, major, b[7]);
    if (major == 1) {
        *hl = (size_t)b[8] | (size_t)b[9] << 8;
        *off = NPY_PREAMBLE_V1;
    } else {
        if (len < NPY_PREAMBLE_V2)
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: truncated .npy header",
                              name);
        *hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
              (size_t)b[11] << 24;
        *off = NPY_PREAMBLE_V2;
    }
    if (*hl > NPY_MAX_HEADER || *hl > len - *off)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy header length %zu "
                          "exceeds the file (%zu bytes)", name, *hl, len);
    return L2RW_OK;
}

/* The header dict: dtype (one the role accepts: an unsupported one is
 * named as such before any size check, whose item size it would get
 * wrong), C order, shape. */
static l2rw_status parse_dict(npy_array *a, const unsigned char *b,
                              size_t hl, const char *name, npy_role role)
{
    char *h = malloc(hl + 1);
    if (!h) return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", name);
    memcpy(h, b, hl);
    h[hl] = 0;
    l2rw_status s = strlen(h) == hl
                        ? parse_descr(a, find_key(h, "descr"), name)
                        : l2rw__fail(L2RW_ERR_FORMAT, "%s: NUL byte in .npy "
                                     "header", name);
    if (s == L2RW_OK && !role_accepts(role, a->dt))
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: unsupported dtype '%s' "
                       "(supported %s)", name, a->descr, role_dtypes(role));
    const char *fo = s == L2RW_OK ? find_key(h, "fortran_order") : NULL;
    if (s == L2RW_OK && !fo)
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy header has no "
                       "'fortran_order'", name);
    if (s == L2RW_OK && strncmp(fo, "False", 5) != 0)
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: Fortran-order .npy arrays are "
                       "not supported (save with C order)", name);
    if (s == L2RW_OK) s = parse_shape(a, find_key(h, "shape"), name);
    free(h);
    return s;
}

/* Elements the shape gives, whose bytes must not exceed cap (`cap_what`
 * says what cap is, for the message). */
static l2rw_status shape_count(npy_array *a, size_t cap,
                               const char *cap_what, const char *name)
{
    size_t esz = dt_size(a->dt);
    uint64_t count = 1;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] == 0) count = 0; /* an empty array: no data */
    for (int i = 0; i < a->ndim && count; i++) {
        /* Compared before multiplying, so the product cannot overflow. */
        if (count > (uint64_t)(cap / esz) / a->shape[i])
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy shape needs more "
                              "than %s", name, cap_what);
        count *= a->shape[i];
    }
    a->count = (size_t)count;
    return L2RW_OK;
}

static l2rw_status parse_header(npy_array *a, const unsigned char *b,
                                size_t len, const char *name, npy_role role)
{
    size_t off = 0, hl = 0;
    char present[64];
    memset(a, 0, sizeof *a);
    L2RW_TRY(parse_preamble(b, len, name, &off, &hl));
    L2RW_TRY(parse_dict(a, b + off, hl, name, role));
    size_t avail = len - off - hl, esz = dt_size(a->dt);
    snprintf(present, sizeof present, "the %zu data bytes present (truncated)",
             avail);
    L2RW_TRY(shape_count(a, avail, present, name));
    if (a->count * esz != avail)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: .npy shape gives %zu bytes "
                          "of data but the file has %zu (trailing data)",
                          name, a->count * esz, avail);
    a->data = b + off + hl;
    return L2RW_OK;
}

/* Where the header dict ends, from the preamble alone; len when the
 * preamble is short or bad, so that nothing more is read before
 * parse_preamble names the problem. */
static size_t header_end(const unsigned char *b, size_t len)
{
    if (len < NPY_PREAMBLE_V2 || memcmp(b, "\x93NUMPY", 6) != 0)
        return len;
    size_t hl = (size_t)b[8] | (size_t)b[9] << 8;
    if (b[6] == 1) return NPY_PREAMBLE_V1 + hl;
    if (b[6] > 3) return len;
    hl |= (size_t)b[10] << 16 | (size_t)b[11] << 24;
    return hl > NPY_MAX_HEADER ? len : NPY_PREAMBLE_V2 + hl;
}

/* Read a .npy file up to the size its header announces and no further
 * (zlib passes raw files through, and a gzip bomb stops there). */
static l2rw_status npy_read(const char *path, npy_role role,
                            unsigned char **buf, size_t *len)
{
    l2rw__file f;
    npy_array a;
    size_t off = 0, hl = 0;
    *buf = NULL;
    *len = 0;
    memset(&a, 0, sizeof a);
    L2RW_TRY(l2rw__file_open(&f, path));
    l2rw_status s = l2rw__file_fill(&f, NPY_PREAMBLE_V2);
    if (s == L2RW_OK) s = l2rw__file_fill(&f, header_end(f.buf, f.len));
    if (s == L2RW_OK) s = parse_preamble(f.buf, f.len, path, &off, &hl);
    if (s == L2RW_OK) s = parse_dict(&a, f.buf + off, hl, path, role);
    if (s == L2RW_OK)
        s = shape_count(&a, L2RW__MAX_FILE - off - hl,
                        "the 4 GiB a reader accepts (corrupt header?)", path);
    if (s != L2RW_OK) {
        l2rw__file_close(&f);
        return s;
    }
    return l2rw__file_finish(&f, off + hl + a.count * dt_size(a.dt),
                             "its .npy header announces (trailing data, or "
                             "a gzip bomb)", buf, len);
}

static l2rw_status read_labels(l2rw_dataset *d, const npy_array *a,
                               const char *name)
{
    if (a->ndim < 1 || a->ndim > 2 || (a->ndim == 2 && a->shape[1] != 1))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: labels must have shape (N,) "
                          "or (N, 1) (got %d axes)", name, a->ndim);
    if (a->shape[0] != (uint64_t)d->n)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s has %llu labels for %d "
                          "examples", name, (unsigned long long)a->shape[0],
                          d->n);
    for (int i = 0; i < d->n; i++) {
        const unsigned char *p = a->data + (size_t)i * dt_size(a->dt);
        int64_t v;
        if (a->dt == DT_U1) {
            v = p[0];
        } else if (a->dt == DT_I4) {
            int32_t t;
            memcpy(&t, p, 4); /* little-endian host assumed, as the dtype */
            v = t;
        } else {
            memcpy(&v, p, 8);
        }
        if (v < 0 || v >= L2RW__MAX_CLASSES)
            return l2rw__fail(L2RW_ERR_LABEL, "%s: label %lld of example %d "
                              "is outside [0, %d)", name, (long long)v, i,
                              L2RW__MAX_CLASSES);
        d->y[i] = (int32_t)v;
    }
    return L2RW_OK;
}

static l2rw_status read_features(l2rw_dataset *d, const npy_array *a,
                                 const char *name)
{
    size_t total = (size_t)d->n * l2rw_dataset_dim(d);
    if (a->dt == DT_U1) {
        for (size_t i = 0; i < total; i++) d->x[i] = a->data[i] / 255.0f;
        return L2RW_OK;
    }
    memcpy(d->x, a->data, total * sizeof(float));
    for (size_t i = 0; i < total; i++)
        if (!isfinite(d->x[i]))
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: value %zu of example %zu "
                              "is not finite", name,
                              i % l2rw_dataset_dim(d),
                              i / l2rw_dataset_dim(d));
    return L2RW_OK;
}

l2rw_status l2rw__npy_parse(l2rw_dataset *out, const unsigned char *xb,
                            size_t x_len, const char *x_name,
                            const unsigned char *yb, size_t y_len,
                            const char *y_name, int classes)
{
    npy_array xa, ya;
    int c, h, w;
    memset(out, 0, sizeof *out);
    L2RW_TRY(parse_header(&xa, xb, x_len, x_name, NPY_FEATURES));
    L2RW_TRY(parse_header(&ya, yb, y_len, y_name, NPY_LABELS));
    if (xa.ndim < 1)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: features must have at least "
                          "one axis (the examples)", x_name);
    if (xa.shape[0] == 0 || xa.shape[0] > INT_MAX)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: %llu examples is not "
                          "supported", x_name,
                          (unsigned long long)xa.shape[0]);
    L2RW_TRY(l2rw__shape_from_dims(xa.shape + 1, xa.ndim - 1, &c, &h, &w,
                                   x_name));
    l2rw_dataset d;
    L2RW_TRY(l2rw_dataset_alloc(&d, (int)xa.shape[0], c, h, w, 0));
    l2rw_status s = read_labels(&d, &ya, y_name);
    if (s == L2RW_OK) s = l2rw__check_labels(d.y, d.n, &classes, y_name);
    if (s == L2RW_OK) s = read_features(&d, &xa, x_name);
    if (s != L2RW_OK) {
        l2rw_dataset_free(&d);
        return s;
    }
    d.classes = classes;
    memcpy(d.y_true, d.y, (size_t)d.n * sizeof(int32_t));
    *out = d;
    return L2RW_OK;
}

l2rw_status l2rw_load_npy(l2rw_dataset *out, const char *x_path,
                          const char *y_path, int classes)
{
    unsigned char *xb = NULL, *yb = NULL;
    size_t xl = 0, yl = 0;
    memset(out, 0, sizeof *out);
    l2rw_status s = npy_read(y_path, NPY_LABELS, &yb, &yl);
    if (s == L2RW_OK) s = npy_read(x_path, NPY_FEATURES, &xb, &xl);
    if (s == L2RW_OK)
        s = l2rw__npy_parse(out, xb, xl, x_path, yb, yl, y_path,
                            classes);
    free(xb);
    free(yb);
    return s;
}
