/* Model files: save and load a network's parameters and batch-norm
 * statistics, and the checked binary I/O (binio.h) they are built on.
 *
 * Model file, version 2 (integers and floats little-endian):
 *   "L2RWNET\n"   magic
 *   u32           format version (2)
 *   net section   (model_io.h: name, input shape, classes, counts, data)
 *   u32           class names: 0 (none) or the class count, then that
 *                 many strings (l2rw_net_set_class_names)
 *   u32           CRC-32 of every byte before it
 * Version 1 files (no class names section) are still read. */
#define _POSIX_C_SOURCE 200809L
#include "model_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char model_magic[L2RW_MAGIC_LEN] = {'L', '2', 'R', 'W',
                                                 'N', 'E', 'T', '\n'};
enum {
    MODEL_FORMAT_VERSION = 2,
    MODEL_FIRST_NAMES_VERSION = 2, /* the first with class names */
    IO_CHUNK = 1 << 16,        /* bytes per buffered conversion */
    MAX_DIM = 1 << 16,         /* input side / channels / classes */
    MAX_STR = 65535
};

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ------------------------------------------------------------- writer */

l2rw_status l2rw__bw_bytes(l2rw_bwriter *w, const void *buf, size_t len)
{
    if (len == 0) return L2RW_OK;
    if (fwrite(buf, 1, len, w->fp) != len)
        return l2rw__fail(L2RW_ERR_IO, "%s: write failed: %s", w->path,
                          strerror(errno));
    w->crc = l2rw_crc32(w->crc, buf, len);
    return L2RW_OK;
}

l2rw_status l2rw__bw_begin(l2rw_bwriter *w, FILE *fp, const char *path,
                           const char magic[L2RW_MAGIC_LEN])
{
    w->fp = fp;
    w->path = path;
    w->crc = 0;
    return l2rw__bw_bytes(w, magic, L2RW_MAGIC_LEN);
}

static void put_le(unsigned char *b, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *b, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

l2rw_status l2rw__bw_u32(l2rw_bwriter *w, uint32_t v)
{
    unsigned char b[4];
    put_le(b, v, 4);
    return l2rw__bw_bytes(w, b, 4);
}

l2rw_status l2rw__bw_i32(l2rw_bwriter *w, int32_t v)
{
    return l2rw__bw_u32(w, (uint32_t)v);
}

l2rw_status l2rw__bw_u64(l2rw_bwriter *w, uint64_t v)
{
    unsigned char b[8];
    put_le(b, v, 8);
    return l2rw__bw_bytes(w, b, 8);
}

l2rw_status l2rw__bw_i64(l2rw_bwriter *w, int64_t v)
{
    return l2rw__bw_u64(w, (uint64_t)v);
}

l2rw_status l2rw__bw_str(l2rw_bwriter *w, const char *s)
{
    size_t len = strlen(s);
    if (len > MAX_STR)
        return l2rw__fail(L2RW_ERR_ARG, "%s: string of %zu bytes too long",
                          w->path, len);
    L2RW_TRY(l2rw__bw_u32(w, (uint32_t)len));
    return l2rw__bw_bytes(w, s, len);
}

/* n 4-byte words (float32 or int32 bit patterns) little-endian. */
static l2rw_status bw_words(l2rw_bwriter *w, const void *x, size_t n)
{
    if (host_is_le()) {
        if (n > SIZE_MAX / 4)
            return l2rw__fail(L2RW_ERR_ARG, "%s: too many values", w->path);
        return l2rw__bw_bytes(w, x, n * 4);
    }
    unsigned char buf[IO_CHUNK];
    const unsigned char *src = x;
    while (n > 0) {
        size_t k = n < IO_CHUNK / 4 ? n : IO_CHUNK / 4;
        for (size_t i = 0; i < k; i++) {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            put_le(buf + 4 * i, v, 4);
        }
        L2RW_TRY(l2rw__bw_bytes(w, buf, k * 4));
        src += 4 * k;
        n -= k;
    }
    return L2RW_OK;
}

l2rw_status l2rw__write_floats(l2rw_bwriter *w, const float *x, size_t n)
{
    return bw_words(w, x, n);
}

l2rw_status l2rw__write_i32s(l2rw_bwriter *w, const int32_t *x, size_t n)
{
    return bw_words(w, x, n);
}

l2rw_status l2rw__bw_end(l2rw_bwriter *w)
{
    unsigned char b[4];
    put_le(b, w->crc, 4);
    if (fwrite(b, 1, 4, w->fp) != 4)
        return l2rw__fail(L2RW_ERR_IO, "%s: write failed: %s", w->path,
                          strerror(errno));
    return L2RW_OK;
}

/* ------------------------------------------------------------- reader */

static l2rw_status short_read(l2rw_breader *r, const char *what)
{
    if (ferror(r->fp))
        return l2rw__fail(L2RW_ERR_IO, "%s: read error in %s: %s", r->path,
                          what, strerror(errno));
    return l2rw__fail(L2RW_ERR_FORMAT, "%s: truncated file (ends inside %s)",
                      r->path, what);
}

/* Reads the stored CRC (the file's last 4 bytes) and the CRC of the rest,
 * then rewinds past the magic. */
static l2rw_status verify_crc(l2rw_breader *r, const char *what)
{
    unsigned char *buf = malloc(IO_CHUNK);
    if (!buf) return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", r->path);
    uint32_t crc = 0;
    uint64_t left = r->size;
    l2rw_status s = L2RW_OK;
    if (fseek(r->fp, 0, SEEK_SET) != 0) s = short_read(r, what);
    while (s == L2RW_OK && left > 0) {
        size_t k = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
        if (fread(buf, 1, k, r->fp) != k) s = short_read(r, what);
        else crc = l2rw_crc32(crc, buf, k);
        left -= k;
    }
    if (s == L2RW_OK && fread(buf, 1, 4, r->fp) != 4) s = short_read(r, what);
    if (s == L2RW_OK && (uint32_t)get_le(buf, 4) != crc)
        s = l2rw__fail(L2RW_ERR_FORMAT,
                       "%s: checksum mismatch: the %s is corrupt or "
                       "truncated",
                       r->path, what);
    free(buf);
    if (s == L2RW_OK && fseek(r->fp, L2RW_MAGIC_LEN, SEEK_SET) != 0)
        s = short_read(r, what);
    return s;
}

l2rw_status l2rw__br_open(l2rw_breader *r, const char *path,
                          const char magic[L2RW_MAGIC_LEN], const char *what)
{
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->fp = fopen(path, "rb");
    if (!r->fp)
        return l2rw__fail(L2RW_ERR_IO, "%s: cannot open %s: %s", path, what,
                          strerror(errno));
    struct stat st;
    l2rw_status s = L2RW_OK;
    if (fstat(fileno(r->fp), &st) != 0)
        s = l2rw__fail(L2RW_ERR_IO, "%s: cannot stat: %s", path,
                       strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = l2rw__fail(L2RW_ERR_IO, "%s: not a regular file", path);
    char head[L2RW_MAGIC_LEN];
    if (s == L2RW_OK) {
        size_t got = fread(head, 1, sizeof head, r->fp);
        if (got != sizeof head || memcmp(head, magic, sizeof head) != 0)
            s = l2rw__fail(L2RW_ERR_FORMAT,
                           "%s: not an l2rw %s (bad magic number)", path,
                           what);
    }
    if (s == L2RW_OK && (uint64_t)st.st_size < L2RW_MAGIC_LEN + 4)
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: truncated %s (%lld bytes)",
                       path, what, (long long)st.st_size);
    if (s == L2RW_OK) {
        r->size = (uint64_t)st.st_size - 4;
        s = verify_crc(r, what);
    }
    if (s != L2RW_OK) {
        fclose(r->fp);
        r->fp = NULL;
        return s;
    }
    r->pos = L2RW_MAGIC_LEN;
    r->crc = l2rw_crc32(0, magic, L2RW_MAGIC_LEN);
    return L2RW_OK;
}

void l2rw__br_close(l2rw_breader *r)
{
    if (r && r->fp) fclose(r->fp);
    if (r) r->fp = NULL;
}

uint64_t l2rw__br_left(const l2rw_breader *r) { return r->size - r->pos; }

l2rw_status l2rw__br_need(l2rw_breader *r, uint64_t bytes, const char *what)
{
    if (bytes > l2rw__br_left(r))
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: %s claims %llu bytes but only %llu remain "
                          "(corrupt or truncated file)",
                          r->path, what, (unsigned long long)bytes,
                          (unsigned long long)l2rw__br_left(r));
    return L2RW_OK;
}

l2rw_status l2rw__br_bytes(l2rw_breader *r, void *buf, size_t len,
                           const char *what)
{
    L2RW_TRY(l2rw__br_need(r, len, what));
    if (len == 0) return L2RW_OK;
    if (fread(buf, 1, len, r->fp) != len) return short_read(r, what);
    r->crc = l2rw_crc32(r->crc, buf, len);
    r->pos += len;
    return L2RW_OK;
}

l2rw_status l2rw__br_u32(l2rw_breader *r, uint32_t *v, const char *what)
{
    unsigned char b[4];
    L2RW_TRY(l2rw__br_bytes(r, b, 4, what));
    *v = (uint32_t)get_le(b, 4);
    return L2RW_OK;
}

l2rw_status l2rw__br_i32(l2rw_breader *r, int32_t *v, const char *what)
{
    uint32_t u;
    L2RW_TRY(l2rw__br_u32(r, &u, what));
    memcpy(v, &u, 4); /* two's complement bit pattern */
    return L2RW_OK;
}

l2rw_status l2rw__br_u64(l2rw_breader *r, uint64_t *v, const char *what)
{
    unsigned char b[8];
    L2RW_TRY(l2rw__br_bytes(r, b, 8, what));
    *v = get_le(b, 8);
    return L2RW_OK;
}

l2rw_status l2rw__br_i64(l2rw_breader *r, int64_t *v, const char *what)
{
    uint64_t u;
    L2RW_TRY(l2rw__br_u64(r, &u, what));
    memcpy(v, &u, 8);
    return L2RW_OK;
}

l2rw_status l2rw__br_str(l2rw_breader *r, char *buf, size_t cap,
                         const char *what)
{
    uint32_t len;
    L2RW_TRY(l2rw__br_u32(r, &len, what));
    if (cap == 0 || len > cap - 1)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: %s of %u bytes is longer than %zu (corrupt "
                          "file)",
                          r->path, what, len, cap ? cap - 1 : 0);
    L2RW_TRY(l2rw__br_bytes(r, buf, len, what));
    buf[len] = '\0';
    if (strlen(buf) != len)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: %s contains a NUL byte",
                          r->path, what);
    return L2RW_OK;
}

static l2rw_status br_words(l2rw_breader *r, void *x, size_t n,
                            const char *what)
{
    if (n > SIZE_MAX / 4)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: %s: absurd count %zu",
                          r->path, what, n);
    L2RW_TRY(l2rw__br_need(r, (uint64_t)n * 4, what));
    unsigned char *dst = x;
    while (n > 0) {
        size_t k = n < IO_CHUNK / 4 ? n : IO_CHUNK / 4;
        L2RW_TRY(l2rw__br_bytes(r, dst, k * 4, what));
        if (!host_is_le())
            for (size_t i = 0; i < k; i++) {
                uint32_t v = (uint32_t)get_le(dst + 4 * i, 4);
                memcpy(dst + 4 * i, &v, 4);
            }
        dst += 4 * k;
        n -= k;
    }
    return L2RW_OK;
}

l2rw_status l2rw__read_floats(l2rw_breader *r, float *x, size_t n,
                              const char *what)
{
    return br_words(r, x, n, what);
}

l2rw_status l2rw__read_i32s(l2rw_breader *r, int32_t *x, size_t n,
                            const char *what)
{
    return br_words(r, x, n, what);
}

l2rw_status l2rw__br_end(l2rw_breader *r)
{
    if (r->pos != r->size)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: %llu unexpected bytes after the data",
                          r->path,
                          (unsigned long long)(r->size - r->pos));
    unsigned char b[4];
    if (fread(b, 1, 4, r->fp) != 4) return short_read(r, "checksum");
    if ((uint32_t)get_le(b, 4) != r->crc)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: checksum mismatch (file changed while read)",
                          r->path);
    return L2RW_OK;
}

/* -------------------------------------------------------- net section */

/* A net's buffers and an optimizer's state may live on a device: the
 * host reads them in place where the accessors give host pointers (the
 * CPU) and otherwise through chunks of a host buffer (writing) or a whole
 * host copy (reading, so that the checks see every value before the
 * device does). */
enum { COPY_CHUNK = 4096 }; /* floats per chunk of a device's buffer */

/* The host pointer of a net buffer, NULL on a device. The accessors
 * take a non-const net; writing only reads through them. */
static float *host_buf(const l2rw_net *net, l2rw_net_buffer which)
{
    l2rw_net *m = (l2rw_net *)net;
    return which == L2RW_NET_PARAMS ? l2rw_net_params(m) : l2rw_net_state(m);
}

/* Reads floats [at, at + k) of buffer `which` of src into buf. */
typedef l2rw_status (*chunk_read)(const void *src, int which, size_t at,
                                  size_t k, float *buf);

static l2rw_status net_chunk(const void *src, int which, size_t at,
                             size_t k, float *buf)
{
    return l2rw_net_read(src, (l2rw_net_buffer)which, at, k, buf);
}

static l2rw_status optim_chunk(const void *src, int which, size_t at,
                               size_t k, float *buf)
{
    return l2rw_optim_read(src, (l2rw_optim_buffer)which, at, k, buf);
}

/* n floats: from host memory h in place, or (h NULL: a device) read in
 * chunks through a host buffer. */
static l2rw_status write_staged(l2rw_bwriter *w, const float *h, size_t n,
                                chunk_read read, const void *src, int which)
{
    if (h) return l2rw__write_floats(w, h, n);
    float buf[COPY_CHUNK];
    for (size_t at = 0; at < n; at += COPY_CHUNK) {
        size_t k = n - at < COPY_CHUNK ? n - at : COPY_CHUNK;
        L2RW_TRY(read(src, which, at, k, buf));
        L2RW_TRY(l2rw__write_floats(w, buf, k));
    }
    return L2RW_OK;
}

l2rw_status l2rw__write_net_buffer(l2rw_bwriter *w, const l2rw_net *net,
                                   l2rw_net_buffer which)
{
    return write_staged(w, host_buf(net, which),
                        l2rw_net_buffer_size(net, which), net_chunk, net,
                        (int)which);
}

static float *host_state(const l2rw_sgd *opt, l2rw_optim_buffer which)
{
    l2rw_sgd *m = (l2rw_sgd *)opt; /* read only */
    return which == L2RW_OPTIM_FIRST ? l2rw_sgd_velocity(m)
                                     : l2rw_optim_second_moment(m);
}

l2rw_status l2rw__write_optim_buffer(l2rw_bwriter *w, const l2rw_sgd *opt,
                                     l2rw_optim_buffer which, size_t n)
{
    return write_staged(w, host_state(opt, which), n, optim_chunk, opt,
                        (int)which);
}

l2rw_status l2rw__read_optim_buffer(l2rw_breader *r, l2rw_sgd *opt,
                                    l2rw_optim_buffer which, size_t n,
                                    const char *what)
{
    float *h = host_state(opt, which);
    float *buf = h ? h : l2rw__aalloc(n, sizeof *buf);
    if (!buf)
        return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory (%s)", r->path,
                          what);
    l2rw_status s = l2rw__read_floats(r, buf, n, what);
    if (s == L2RW_OK) s = l2rw__check_finite(buf, n, r->path, what);
    if (s == L2RW_OK && !h) s = l2rw_optim_write(opt, which, 0, n, buf);
    if (!h) l2rw__afree(buf);
    return s;
}

l2rw_status l2rw__net_write(l2rw_bwriter *w, const l2rw_net *net)
{
    int c, h, wd;
    l2rw_net_input_shape(net, &c, &h, &wd);
    const char *model = l2rw_net_model(net);
    if (strlen(model) >= L2RW_MODEL_NAME_MAX)
        return l2rw__fail(L2RW_ERR_ARG, "%s: model name too long", w->path);
    size_t np = l2rw_net_num_params(net), ns = l2rw_net_num_state(net);
    L2RW_TRY(l2rw__bw_str(w, model));
    L2RW_TRY(l2rw__bw_i32(w, c));
    L2RW_TRY(l2rw__bw_i32(w, h));
    L2RW_TRY(l2rw__bw_i32(w, wd));
    L2RW_TRY(l2rw__bw_i32(w, l2rw_net_classes(net)));
    L2RW_TRY(l2rw__bw_u64(w, np));
    L2RW_TRY(l2rw__bw_u64(w, ns));
    L2RW_TRY(l2rw__write_net_buffer(w, net, L2RW_NET_PARAMS));
    return l2rw__write_net_buffer(w, net, L2RW_NET_STATE);
}

static l2rw_status read_dim(l2rw_breader *r, int *out, const char *what)
{
    int32_t v;
    L2RW_TRY(l2rw__br_i32(r, &v, what));
    if (v < 1 || v > MAX_DIM)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: %s %d out of range [1, %d]",
                          r->path, what, (int)v, MAX_DIM);
    *out = v;
    return L2RW_OK;
}

l2rw_status l2rw__net_read_header(l2rw_breader *r, l2rw_net_header *h)
{
    L2RW_TRY(l2rw__br_str(r, h->model, sizeof h->model, "model name"));
    if (h->model[0] == '\0')
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: empty model name", r->path);
    L2RW_TRY(read_dim(r, &h->c, "input channels"));
    L2RW_TRY(read_dim(r, &h->h, "input height"));
    L2RW_TRY(read_dim(r, &h->w, "input width"));
    L2RW_TRY(read_dim(r, &h->classes, "class count"));
    L2RW_TRY(l2rw__br_u64(r, &h->num_params, "parameter count"));
    L2RW_TRY(l2rw__br_u64(r, &h->num_state, "state count"));
    /* Both counts must be within the bound and fit in what remains, so a
     * corrupt count cannot drive an allocation. */
    if (h->num_params > L2RW_MODEL_MAX_PARAMS ||
        h->num_state > L2RW_MODEL_MAX_PARAMS)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: declares %llu parameters and %llu state "
                          "values, more than the %llu a model may have",
                          r->path, (unsigned long long)h->num_params,
                          (unsigned long long)h->num_state,
                          L2RW_MODEL_MAX_PARAMS);
    return l2rw__br_need(r, 4 * (h->num_params + h->num_state),
                         "parameter data");
}

l2rw_status l2rw__net_check_arch(const l2rw_net_header *h,
                                 const l2rw_net *net, const char *path)
{
    int c, hh, w;
    l2rw_net_input_shape(net, &c, &hh, &w);
    if (strcmp(h->model, l2rw_net_model(net)) != 0)
        return l2rw__fail(L2RW_ERR_ARCH,
                          "%s: holds model '%s', the net is '%s'", path,
                          h->model, l2rw_net_model(net));
    if (h->c != c || h->h != hh || h->w != w)
        return l2rw__fail(L2RW_ERR_ARCH,
                          "%s: model for input %dx%dx%d, the net takes "
                          "%dx%dx%d",
                          path, h->c, h->h, h->w, c, hh, w);
    if (h->classes != l2rw_net_classes(net))
        return l2rw__fail(L2RW_ERR_ARCH,
                          "%s: model for %d classes, the net has %d", path,
                          h->classes, l2rw_net_classes(net));
    if (h->num_params != l2rw_net_num_params(net) ||
        h->num_state != l2rw_net_num_state(net))
        return l2rw__fail(L2RW_ERR_ARCH,
                          "%s: %llu parameters and %llu state values, the "
                          "net '%s' has %zu and %zu (saved by another "
                          "version of the zoo?)",
                          path, (unsigned long long)h->num_params,
                          (unsigned long long)h->num_state, h->model,
                          l2rw_net_num_params(net), l2rw_net_num_state(net));
    return L2RW_OK;
}

l2rw_status l2rw__net_check_counts(const l2rw_net_header *h,
                                   const char *path)
{
    uint64_t np, ns;
    l2rw_status s = l2rw__zoo_count(h->model, h->c, h->h, h->w, h->classes,
                                    &np, &ns);
    if (s != L2RW_OK) {
        /* A file that names a model this build cannot build. */
        char detail[400];
        snprintf(detail, sizeof detail, "%s", l2rw_last_error());
        return l2rw__fail(s == L2RW_ERR_ARG ? L2RW_ERR_ARCH : s,
                          "%s: cannot build its model: %s", path, detail);
    }
    if (np > L2RW_MODEL_MAX_PARAMS || ns > L2RW_MODEL_MAX_PARAMS)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: model '%s' has %llu parameters, more than "
                          "the %llu a model file may hold",
                          path, h->model, (unsigned long long)np,
                          L2RW_MODEL_MAX_PARAMS);
    if (np != h->num_params || ns != h->num_state)
        return l2rw__fail(L2RW_ERR_ARCH,
                          "%s: holds %llu parameters and %llu state "
                          "values, model '%s' for input %dx%dx%d and %d "
                          "classes has %llu and %llu (corrupt file, or "
                          "saved by another version of the zoo?)",
                          path, (unsigned long long)h->num_params,
                          (unsigned long long)h->num_state, h->model, h->c,
                          h->h, h->w, h->classes, (unsigned long long)np,
                          (unsigned long long)ns);
    return L2RW_OK;
}

l2rw_status l2rw__check_finite(const float *x, size_t n, const char *path,
                               const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return l2rw__fail(L2RW_ERR_FORMAT,
                              "%s: %s [%zu] is %s (the file is corrupt)",
                              path, what, i, isnan(x[i]) ? "NaN" : "infinite");
    return L2RW_OK;
}

l2rw_status l2rw__net_read_data(l2rw_breader *r, const l2rw_net_header *h,
                                float *params, float *state)
{
    const size_t np = (size_t)h->num_params, ns = (size_t)h->num_state;
    L2RW_TRY(l2rw__read_floats(r, params, np, "parameters"));
    L2RW_TRY(l2rw__read_floats(r, state, ns, "batch-norm statistics"));
    /* A NaN would only surface as a failed evaluation (a runtime error)
     * far from its cause; it is bad input, so refuse it here. */
    L2RW_TRY(l2rw__check_finite(params, np, r->path, "parameter"));
    return l2rw__check_finite(state, ns, r->path, "batch-norm statistic");
}

/* params and state in one host block (a device net's staging). */
static l2rw_status alloc_staging(const l2rw_net_header *h, const char *path,
                                 float **p, float **st)
{
    *p = l2rw__aalloc((size_t)h->num_params, sizeof(float));
    *st = l2rw__aalloc((size_t)h->num_state, sizeof(float));
    if (*p && *st) return L2RW_OK;
    l2rw__afree(*p);
    l2rw__afree(*st);
    *p = *st = NULL;
    return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", path);
}

/* Staged values into the net (sizes checked by l2rw__net_check_arch). */
static l2rw_status net_upload(l2rw_net *net, const l2rw_net_header *h,
                              const float *p, const float *st)
{
    L2RW_TRY(l2rw_net_write(net, L2RW_NET_PARAMS, 0, (size_t)h->num_params,
                            p));
    return l2rw_net_write(net, L2RW_NET_STATE, 0, (size_t)h->num_state, st);
}

l2rw_status l2rw__net_read_into(l2rw_breader *r, const l2rw_net_header *h,
                                l2rw_net *net)
{
    if (l2rw_net_params(net))
        return l2rw__net_read_data(r, h, l2rw_net_params(net),
                                   l2rw_net_state(net));
    float *p, *st;
    L2RW_TRY(alloc_staging(h, r->path, &p, &st));
    l2rw_status s = l2rw__net_read_data(r, h, p, st);
    if (s == L2RW_OK) s = net_upload(net, h, p, st);
    l2rw__afree(p);
    l2rw__afree(st);
    return s;
}

/* ---------------------------------------------------------- model file */

typedef struct {
    const l2rw_net *net;
    const char *path;
} save_ctx;

static l2rw_status write_class_names(l2rw_bwriter *w, const l2rw_net *net)
{
    const int k = l2rw_net_classes(net);
    const int named = l2rw_net_class_name(net, 0) != NULL;
    L2RW_TRY(l2rw__bw_u32(w, named ? (uint32_t)k : 0));
    for (int i = 0; named && i < k; i++)
        L2RW_TRY(l2rw__bw_str(w, l2rw_net_class_name(net, i)));
    return L2RW_OK;
}

/* The class names section into names[count] (malloc'd strings; *names
 * NULL when the file has none). */
static l2rw_status read_class_names(l2rw_breader *r, int classes,
                                    char ***names)
{
    uint32_t n;
    *names = NULL;
    L2RW_TRY(l2rw__br_u32(r, &n, "class name count"));
    if (n == 0) return L2RW_OK;
    if (n != (uint32_t)classes)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: %u class names for %d "
                          "classes", r->path, n, classes);
    char **v = l2rw__calloc(n, sizeof *v), buf[MAX_STR + 1];
    if (!v) return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", r->path);
    l2rw_status s = L2RW_OK;
    for (uint32_t i = 0; s == L2RW_OK && i < n; i++) {
        s = l2rw__br_str(r, buf, sizeof buf, "class name");
        if (s == L2RW_OK && !(v[i] = malloc(strlen(buf) + 1)))
            s = l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", r->path);
        if (s == L2RW_OK) memcpy(v[i], buf, strlen(buf) + 1);
    }
    if (s == L2RW_OK) {
        *names = v;
        return L2RW_OK;
    }
    for (uint32_t i = 0; i < n; i++) free(v[i]);
    free(v);
    return s;
}

/* The tail of a model file: class names (version 2) and the checksum;
 * the names go to net on success. */
static l2rw_status read_tail(l2rw_breader *r, uint32_t version, int classes,
                             l2rw_net *net)
{
    char **names = NULL;
    l2rw_status s = L2RW_OK;
    if (version >= MODEL_FIRST_NAMES_VERSION)
        s = read_class_names(r, classes, &names);
    if (s == L2RW_OK) s = l2rw__br_end(r);
    if (s == L2RW_OK && net)
        s = l2rw_net_set_class_names(net, (const char *const *)names,
                                     names ? classes : 0);
    for (int i = 0; names && i < classes; i++) free(names[i]);
    free(names);
    return s;
}

static l2rw_status write_model(FILE *fp, void *ctx)
{
    const save_ctx *sc = ctx;
    l2rw_bwriter w;
    L2RW_TRY(l2rw__bw_begin(&w, fp, sc->path, model_magic));
    L2RW_TRY(l2rw__bw_u32(&w, MODEL_FORMAT_VERSION));
    L2RW_TRY(l2rw__net_write(&w, sc->net));
    L2RW_TRY(write_class_names(&w, sc->net));
    return l2rw__bw_end(&w);
}

l2rw_status l2rw_net_save(const l2rw_net *net, const char *path)
{
    if (!net || !path)
        return l2rw__fail(L2RW_ERR_ARG, "net_save: NULL argument");
    save_ctx sc = {net, path};
    return l2rw_write_atomic(path, write_model, &sc);
}

/* Opens a model file and reads up to the data. */
static l2rw_status open_model(l2rw_breader *r, const char *path,
                              l2rw_net_header *h, uint32_t *version_out)
{
    L2RW_TRY(l2rw__br_open(r, path, model_magic, "model file"));
    uint32_t version = 0;
    l2rw_status s = l2rw__br_u32(r, &version, "format version");
    *version_out = version;
    if (s == L2RW_OK && (version < 1 || version > MODEL_FORMAT_VERSION))
        s = l2rw__fail(L2RW_ERR_FORMAT,
                       "%s: model format version %u, this build reads "
                       "versions 1 to %d",
                       path, version, MODEL_FORMAT_VERSION);
    if (s == L2RW_OK) s = l2rw__net_read_header(r, h);
    if (s != L2RW_OK) l2rw__br_close(r);
    return s;
}

l2rw_status l2rw_net_load(l2rw_net *net, const char *path)
{
    if (!net || !path)
        return l2rw__fail(L2RW_ERR_ARG, "net_load: NULL argument");
    l2rw_breader r;
    l2rw_net_header h;
    uint32_t version;
    L2RW_TRY(open_model(&r, path, &h, &version));
    l2rw_status s = l2rw__net_check_arch(&h, net, path);
    /* Read into scratch buffers so a failure leaves the net untouched. */
    float *p = NULL, *st = NULL;
    if (s == L2RW_OK) s = alloc_staging(&h, path, &p, &st);
    if (s == L2RW_OK) s = l2rw__net_read_data(&r, &h, p, st);
    if (s == L2RW_OK) s = read_tail(&r, version, h.classes, net);
    if (s == L2RW_OK) s = net_upload(net, &h, p, st);
    l2rw__afree(p);
    l2rw__afree(st);
    l2rw__br_close(&r);
    return s;
}

l2rw_status l2rw_net_load_new(l2rw_net **out, const char *path,
                              int max_batch)
{
    return l2rw_net_load_new_on(out, path, max_batch, NULL);
}

l2rw_status l2rw_net_load_new_on(l2rw_net **out, const char *path,
                                 int max_batch, const l2rw_device *dev)
{
    if (!out || !path)
        return l2rw__fail(L2RW_ERR_ARG, "net_load_new: NULL argument");
    *out = NULL;
    if (max_batch < 1)
        return l2rw__fail(L2RW_ERR_ARG, "net_load_new: max_batch %d < 1",
                          max_batch);
    l2rw_breader r;
    l2rw_net_header h;
    uint32_t version;
    L2RW_TRY(open_model(&r, path, &h, &version));
    l2rw_net *net = NULL;
    /* The counts first: the net is only built for a file that holds it. */
    l2rw_status s = l2rw__net_check_counts(&h, path);
    if (s == L2RW_OK &&
        (s = l2rw_net_create_on(&net, h.model, h.c, h.h, h.w, h.classes,
                                max_batch, 0, dev)) != L2RW_OK) {
        char detail[400]; /* out of memory for max_batch, say */
        snprintf(detail, sizeof detail, "%s", l2rw_last_error());
        s = l2rw__fail(s, "%s: cannot build its model: %s", path, detail);
    }
    if (s == L2RW_OK) s = l2rw__net_check_arch(&h, net, path);
    if (s == L2RW_OK) s = l2rw__net_read_into(&r, &h, net);
    if (s == L2RW_OK) s = read_tail(&r, version, h.classes, net);
    l2rw__br_close(&r);
    if (s != L2RW_OK) {
        l2rw_net_free(net);
        return s;
    }
    *out = net;
    return L2RW_OK;
}
