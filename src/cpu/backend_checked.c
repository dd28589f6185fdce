/* The checking back end: the CPU table's kernels on memory from its own
 * arena, each op first checking that every pointer argument lies in a
 * live block of the arena with the extent the op touches ([p, p + bytes)
 * inside one block; NULL passes where the kernel takes it as absent), and
 * that the host side of a transfer is not arena memory. A failed check is
 * counted, the first one kept (op and argument named) and returned by
 * sync, and the op does nothing. Between ops the whole arena is mapped
 * PROT_NONE, so the host cannot read or write it except through the
 * table. Shapes as in kernels.h; extents in floats unless said. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "backend_checked.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels.h"
#include "loss.h"

/* Address space reserved for the arena (backed only where touched). */
#define ARENA_BYTES ((size_t)8 << 30)
enum { ARENA_ALIGN = 64, MAX_BLOCKS = 1 << 16 };

typedef struct {
    size_t off, size; /* bytes from the arena's base */
} block;

static struct {
    unsigned char *base;
    int n;                   /* live blocks, sorted by off */
    block blocks[MAX_BLOCKS];
    l2rw_status err;         /* first failed check since the last sync */
    char msg[320];
    l2rw__checked_counts counts;
} A;

static void record(l2rw_status s, const char *fmt, const char *op,
                   const char *arg, const void *p, size_t bytes)
{
    A.counts.errors++;
    if (A.err != L2RW_OK) return;
    A.err = s;
    snprintf(A.msg, sizeof A.msg, fmt, op, arg, p, bytes);
}

static void unlock(void)
{
    if (A.base) mprotect(A.base, ARENA_BYTES, PROT_READ | PROT_WRITE);
}

static void lock(void)
{
    if (A.base) mprotect(A.base, ARENA_BYTES, PROT_NONE);
}

static int reserve(void)
{
    if (A.base) return 1;
    void *p = mmap(NULL, ARENA_BYTES, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 0;
    A.base = p;
    return 1;
}

/* The live block holding byte offset off (index), or -1. */
static int find(size_t off)
{
    int lo = 0, hi = A.n - 1, at = -1;
    while (lo <= hi) { /* last block with blocks[i].off <= off */
        int mid = (lo + hi) / 2;
        if (A.blocks[mid].off <= off) at = mid, lo = mid + 1;
        else hi = mid - 1;
    }
    return at;
}

static int in_arena(const void *p)
{
    const unsigned char *q = p;
    return A.base && q >= A.base && q < A.base + ARENA_BYTES;
}

/* 1 when [p, p + bytes) lies in one live block (NULL: absent, fine). */
static int need(const char *op, const char *arg, const void *p, size_t bytes)
{
    if (!p) return 1;
    if (!in_arena(p)) {
        record(L2RW_ERR_ARG, "checked back end: %s: argument %s (%p, %zu "
               "bytes) is host memory, not the back end's", op, arg, p,
               bytes);
        return 0;
    }
    size_t off = (size_t)((const unsigned char *)p - A.base);
    int i = find(off);
    if (i < 0 || off + bytes > A.blocks[i].off + A.blocks[i].size) {
        record(L2RW_ERR_ARG, "checked back end: %s: argument %s (%p, %zu "
               "bytes) runs outside every live block of the arena", op, arg,
               p, bytes);
        return 0;
    }
    return 1;
}

/* The host side of a transfer must not be back-end memory. */
static int host(const char *op, const char *arg, const void *p, size_t bytes)
{
    if (!in_arena(p)) return 1;
    record(L2RW_ERR_ARG, "checked back end: %s: argument %s (%p, %zu bytes) "
           "is back-end memory where host memory is due", op, arg, p, bytes);
    return 0;
}

#define F(n) ((size_t)(n) * sizeof(float))

/* --------------------------------------------------------------- memory */

static size_t round_up(size_t x)
{
    return (x + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static void *ck_alloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    size_t want = round_up(n * size > 0 ? n * size : 1);
    if (want > ARENA_BYTES || A.n == MAX_BLOCKS || !reserve()) return NULL;
    /* first fit: the gap before each block, then after the last */
    size_t at = 0;
    int i = 0;
    for (; i < A.n; i++) {
        if (A.blocks[i].off - at >= want) break;
        at = round_up(A.blocks[i].off + A.blocks[i].size);
    }
    if (i == A.n && ARENA_BYTES - at < want) return NULL;
    memmove(&A.blocks[i + 1], &A.blocks[i],
            (size_t)(A.n - i) * sizeof(block));
    A.blocks[i].off = at;
    A.blocks[i].size = n * size;
    A.n++;
    A.counts.allocs++;
    A.counts.live++;
    unlock();
    memset(A.base + at, 0, want); /* reused memory is zeroed too */
    lock();
    return A.base + at;
}

static void ck_dealloc(void *p)
{
    if (!p) return;
    int i = in_arena(p) ? find((size_t)((unsigned char *)p - A.base)) : -1;
    if (i < 0 || A.base + A.blocks[i].off != (unsigned char *)p) {
        record(L2RW_ERR_ARG, "checked back end: %s: argument %s (%p, %zu) "
               "is not a block of the arena", "dealloc", "p", p, 0);
        return;
    }
    memmove(&A.blocks[i], &A.blocks[i + 1],
            (size_t)(A.n - i - 1) * sizeof(block));
    A.n--;
    A.counts.live--;
}

static void ck_upload(void *dst, const void *src, size_t bytes)
{
    A.counts.uploads++;
    A.counts.up_bytes += bytes;
    int ok = need("upload", "dst", dst, bytes) &
             host("upload", "src", src, bytes);
    if (!ok) return;
    unlock();
    l2rw__backend_cpu.upload(dst, src, bytes);
    lock();
}

static void ck_download(void *dst, const void *src, size_t bytes)
{
    A.counts.downloads++;
    A.counts.down_bytes += bytes;
    int ok = host("download", "dst", dst, bytes) &
             need("download", "src", src, bytes);
    if (!ok) return;
    unlock();
    l2rw__backend_cpu.download(dst, src, bytes);
    lock();
}

static void ck_copy_dev(void *dst, const void *src, size_t bytes)
{
    int ok = need("copy_dev", "dst", dst, bytes) &
             need("copy_dev", "src", src, bytes);
    if (!ok) return;
    unlock();
    l2rw__backend_cpu.copy_dev(dst, src, bytes);
    lock();
}

static void ck_zero(void *dst, size_t bytes)
{
    if (!need("zero", "dst", dst, bytes)) return;
    unlock();
    l2rw__backend_cpu.zero(dst, bytes);
    lock();
}

static l2rw_status ck_sync(void)
{
    l2rw_status s = A.err;
    A.err = L2RW_OK;
    if (s != L2RW_OK) return l2rw__fail(s, "%s", A.msg);
    return L2RW_OK;
}

l2rw__checked_counts l2rw__checked_counts_get(void) { return A.counts; }

/* ------------------------------------------------------------- kernels */

/* Each kernel: the checks (all of them, so that the first failure is the
 * first argument in order), then the CPU's kernel with the arena open. */
#define RUN(ok, call)                                                       \
    do {                                                                    \
        if (!(ok)) return;                                                  \
        unlock();                                                           \
        call;                                                               \
        lock();                                                             \
    } while (0)

/* Floats spanned by a row-major [rows, cols] block with leading dim ld. */
static size_t span(size_t rows, size_t cols, size_t ld)
{
    return rows && cols ? (rows - 1) * ld + cols : 0;
}

static void ck_gemm(int ta, int tb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb,
                    float beta, float *c, int ldc)
{
    size_t sa = ta ? span(k, m, lda) : span(m, k, lda);
    size_t sb = tb ? span(n, k, ldb) : span(k, n, ldb);
    int ok = need("gemm", "a", a, F(sa)) & need("gemm", "b", b, F(sb)) &
             need("gemm", "c", c, F(span(m, n, ldc)));
    RUN(ok, l2rw__gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
}

static void ck_copy(float *dst, const float *src, size_t len, int acc)
{
    int ok = need("copy", "dst", dst, F(len)) &
             need("copy", "src", src, F(len));
    RUN(ok, l2rw__copy(dst, src, len, acc));
}

static void ck_add(float *y, const float *a, const float *b, size_t len)
{
    int ok = need("add", "y", y, F(len)) & need("add", "a", a, F(len)) &
             need("add", "b", b, F(len));
    RUN(ok, l2rw__add(y, a, b, len));
}

static void ck_scale_rows(float *dst, const float *src, const float *s,
                          int rows, size_t cols)
{
    size_t len = (size_t)rows * cols;
    int ok = need("scale_rows", "dst", dst, F(len)) &
             need("scale_rows", "src", src, F(len)) &
             need("scale_rows", "s", s, F(rows));
    RUN(ok, l2rw__scale_rows(dst, src, s, rows, cols));
}

static void ck_scale(float *dst, const float *src, float a, size_t len,
                     int acc)
{
    int ok = need("scale", "dst", dst, F(len)) &
             need("scale", "src", src, F(len));
    RUN(ok, l2rw__scale(dst, src, a, len, acc));
}

static void ck_relu_fwd(float *y, const float *x, size_t len)
{
    int ok = need("relu_fwd", "y", y, F(len)) &
             need("relu_fwd", "x", x, F(len));
    RUN(ok, l2rw__relu_fwd(y, x, len));
}

static void ck_relu_mask(float *dst, const float *src, const float *x,
                         size_t len, int acc)
{
    int ok = need("relu_mask", "dst", dst, F(len)) &
             need("relu_mask", "src", src, F(len)) &
             need("relu_mask", "x", x, F(len));
    RUN(ok, l2rw__relu_mask(dst, src, x, len, acc));
}

static void ck_mul(float *dst, const float *src, const float *mask,
                   size_t len, int acc)
{
    int ok = need("mul", "dst", dst, F(len)) &
             need("mul", "src", src, F(len)) &
             need("mul", "mask", mask, F(len));
    RUN(ok, l2rw__mul(dst, src, mask, len, acc));
}

static void ck_dropout_mask(float *mask, uint64_t key, uint64_t layer, int n,
                            size_t units, float p)
{
    int ok = need("dropout_mask", "mask", mask, F((size_t)n * units));
    RUN(ok, l2rw__dropout_mask(mask, key, layer, n, units, p));
}

static void ck_bias_add(float *y, const float *b, int n, int C, size_t P)
{
    int ok = need("bias_add", "y", y, F((size_t)n * C * P)) &
             need("bias_add", "b", b, F(C));
    RUN(ok, l2rw__bias_add(y, b, n, C, P));
}

static void ck_bias_grad(float *db, const float *dy, int n, int C, size_t P,
                         int acc)
{
    int ok = need("bias_grad", "db", db, F(C)) &
             need("bias_grad", "dy", dy, F((size_t)n * C * P));
    RUN(ok, l2rw__bias_grad(db, dy, n, C, P, acc));
}

/* Sizes of a convolution's tensors. */
static size_t conv_in(const l2rw__conv_shape *s, int n)
{
    return (size_t)n * s->ic * s->ih * s->iw;
}
static size_t conv_out(const l2rw__conv_shape *s, int n)
{
    return (size_t)n * s->oc * s->oh * s->ow;
}
static size_t conv_w(const l2rw__conv_shape *s)
{
    return (size_t)s->oc * s->ic * s->k * s->k;
}

static void ck_conv_fwd(const l2rw__conv_shape *s, int n, float *y,
                        float *ty, const float *x, const float *tx,
                        const float *W, const float *b, const float *tW,
                        const float *tb, float *ws)
{
    const char *op = "conv_fwd";
    int ok = need(op, "y", y, F(conv_out(s, n))) &
             need(op, "ty", ty, F(conv_out(s, n))) &
             need(op, "x", x, F(conv_in(s, n))) &
             need(op, "tx", tx, F(conv_in(s, n))) &
             need(op, "W", W, F(conv_w(s))) & need(op, "b", b, F(s->oc)) &
             need(op, "tW", tW, F(conv_w(s))) & need(op, "tb", tb, F(s->oc)) &
             need(op, "ws", ws, F(l2rw__conv_ws(s)));
    RUN(ok, l2rw__conv_fwd(s, n, y, ty, x, tx, W, b, tW, tb, ws));
}

static void ck_conv_bwd(const l2rw__conv_shape *s, int n, float *dW,
                        float *db, float *dx, const float *dy,
                        const float *x, const float *W, int acc, float *ws)
{
    const char *op = "conv_bwd";
    int ok = need(op, "dW", dW, F(conv_w(s))) & need(op, "db", db, F(s->oc)) &
             need(op, "dx", dx, F(conv_in(s, n))) &
             need(op, "dy", dy, F(conv_out(s, n))) &
             need(op, "x", x, F(conv_in(s, n))) &
             need(op, "W", W, F(conv_w(s))) &
             need(op, "ws", ws, F(l2rw__conv_ws(s)));
    RUN(ok, l2rw__conv_bwd(s, n, dW, db, dx, dy, x, W, acc, ws));
}

static void ck_conv_bwd_each(const l2rw__conv_shape *s, int n, float *G,
                             size_t ldg, int bias, float *dx, const float *dy,
                             const float *x, const float *W, int acc,
                             float *ws)
{
    const char *op = "conv_bwd_each";
    size_t row = conv_w(s) + (bias ? (size_t)s->oc : 0);
    int ok = need(op, "G", G, F(span((size_t)n, row, ldg))) &
             need(op, "dx", dx, F(conv_in(s, n))) &
             need(op, "dy", dy, F(conv_out(s, n))) &
             need(op, "x", x, F(conv_in(s, n))) &
             need(op, "W", W, F(conv_w(s))) &
             need(op, "ws", ws, F(l2rw__conv_ws(s)));
    RUN(ok, l2rw__conv_bwd_each(s, n, G, ldg, bias, dx, dy, x, W, acc, ws));
}

static void ck_maxpool_fwd(float *y, int32_t *idx, const float *x, int n,
                           int c, int h, int w, int k, int s, int oh, int ow)
{
    size_t out = (size_t)n * c * oh * ow;
    int ok = need("maxpool_fwd", "y", y, F(out)) &
             need("maxpool_fwd", "idx", idx, out * sizeof *idx) &
             need("maxpool_fwd", "x", x, F((size_t)n * c * h * w));
    RUN(ok, l2rw__maxpool_fwd(y, idx, x, n, c, h, w, k, s, oh, ow));
}

static void ck_maxpool_gather(float *ty, const float *tx, const int32_t *idx,
                              int nc, size_t P, size_t Q)
{
    int ok = need("maxpool_gather", "ty", ty, F(nc * Q)) &
             need("maxpool_gather", "tx", tx, F(nc * P)) &
             need("maxpool_gather", "idx", idx, nc * Q * sizeof *idx);
    RUN(ok, l2rw__maxpool_gather(ty, tx, idx, nc, P, Q));
}

static void ck_maxpool_bwd(float *dx, const float *dy, const int32_t *idx,
                           int nc, size_t P, size_t Q, int acc)
{
    int ok = need("maxpool_bwd", "dx", dx, F(nc * P)) &
             need("maxpool_bwd", "dy", dy, F(nc * Q)) &
             need("maxpool_bwd", "idx", idx, nc * Q * sizeof *idx);
    RUN(ok, l2rw__maxpool_bwd(dx, dy, idx, nc, P, Q, acc));
}

static void ck_avgpool_fwd(float *y, const float *x, int nc, size_t P)
{
    int ok = need("avgpool_fwd", "y", y, F(nc)) &
             need("avgpool_fwd", "x", x, F(nc * P));
    RUN(ok, l2rw__avgpool_fwd(y, x, nc, P));
}

static void ck_avgpool_bwd(float *dx, const float *dy, int nc, size_t P,
                           int acc)
{
    int ok = need("avgpool_bwd", "dx", dx, F(nc * P)) &
             need("avgpool_bwd", "dy", dy, F(nc));
    RUN(ok, l2rw__avgpool_bwd(dx, dy, nc, P, acc));
}

static double ck_dot(const float *a, const float *b, size_t len)
{
    if (!(need("dot", "a", a, F(len)) & need("dot", "b", b, F(len))))
        return 0.0;
    unlock();
    double r = l2rw__dot(a, b, len);
    lock();
    return r;
}

static void ck_bn_stats(float *mean, float *var, const float *x, int n,
                        int C, size_t P)
{
    int ok = need("bn_stats", "mean", mean, F(C)) &
             need("bn_stats", "var", var, F(C)) &
             need("bn_stats", "x", x, F((size_t)n * C * P));
    RUN(ok, l2rw__bn_stats(mean, var, x, n, C, P));
}

static void ck_bn_stats_norm(float *y, float *xhat, float *mean, float *var,
                             float *istd, const float *x, const float *g,
                             const float *b, float eps, int n, int C,
                             size_t P)
{
    const char *op = "bn_stats_norm";
    size_t len = (size_t)n * C * P;
    int ok = need(op, "y", y, F(len)) & need(op, "xhat", xhat, F(len)) &
             need(op, "mean", mean, F(C)) & need(op, "var", var, F(C)) &
             need(op, "istd", istd, F(C)) & need(op, "x", x, F(len)) &
             need(op, "g", g, F(C)) & need(op, "b", b, F(C));
    RUN(ok, l2rw__bn_stats_norm(y, xhat, mean, var, istd, x, g, b, eps, n, C,
                                P));
}

static void ck_bn_norm(float *y, float *xhat, const float *x,
                       const float *mean, const float *istd, const float *g,
                       const float *b, int n, int C, size_t P)
{
    const char *op = "bn_norm";
    size_t len = (size_t)n * C * P;
    int ok = need(op, "y", y, F(len)) & need(op, "xhat", xhat, F(len)) &
             need(op, "x", x, F(len)) & need(op, "mean", mean, F(C)) &
             need(op, "istd", istd, F(C)) & need(op, "g", g, F(C)) &
             need(op, "b", b, F(C));
    RUN(ok, l2rw__bn_norm(y, xhat, x, mean, istd, g, b, n, C, P));
}

/* The arguments of both batch-norm tangents. */
static int bn_tangent_ok(const char *op, float *ty, const float *tx,
                         const float *xhat, const float *istd,
                         const float *g, const float *tg, const float *tb,
                         int n, int C, size_t P)
{
    size_t len = (size_t)n * C * P;
    return need(op, "ty", ty, F(len)) & need(op, "tx", tx, F(len)) &
           need(op, "xhat", xhat, F(len)) & need(op, "istd", istd, F(C)) &
           need(op, "g", g, F(C)) & need(op, "tg", tg, F(C)) &
           need(op, "tb", tb, F(C));
}

static void ck_bn_tangent_train(float *ty, const float *tx, const float *xhat,
                                const float *istd, const float *g,
                                const float *tg, const float *tb, int n,
                                int C, size_t P)
{
    int ok = bn_tangent_ok("bn_tangent_train", ty, tx, xhat, istd, g, tg, tb,
                           n, C, P);
    RUN(ok, l2rw__bn_tangent_train(ty, tx, xhat, istd, g, tg, tb, n, C, P));
}

static void ck_bn_tangent_eval(float *ty, const float *tx, const float *xhat,
                               const float *istd, const float *g,
                               const float *tg, const float *tb, int n, int C,
                               size_t P)
{
    int ok = bn_tangent_ok("bn_tangent_eval", ty, tx, xhat, istd, g, tg, tb,
                           n, C, P);
    RUN(ok, l2rw__bn_tangent_eval(ty, tx, xhat, istd, g, tg, tb, n, C, P));
}

static void ck_bn_bwd(float *dx, float *dg, float *db, const float *dy,
                      const float *xhat, const float *istd, const float *g,
                      int n, int C, size_t P, int train, int acc)
{
    const char *op = "bn_bwd";
    size_t len = (size_t)n * C * P;
    int ok = need(op, "dx", dx, F(len)) & need(op, "dg", dg, F(C)) &
             need(op, "db", db, F(C)) & need(op, "dy", dy, F(len)) &
             need(op, "xhat", xhat, F(len)) & need(op, "istd", istd, F(C)) &
             need(op, "g", g, F(C));
    RUN(ok, l2rw__bn_bwd(dx, dg, db, dy, xhat, istd, g, n, C, P, train, acc));
}

static void ck_copy_2d(float *dst, size_t ldd, const float *src, size_t lds,
                       int rows, size_t cols)
{
    int ok = need("copy_2d", "dst", dst, F(span((size_t)rows, cols, ldd))) &
             need("copy_2d", "src", src, F(span((size_t)rows, cols, lds)));
    RUN(ok, l2rw__copy_2d(dst, ldd, src, lds, rows, cols));
}

static void ck_bn_eval_stats(float *mean, float *var, float *istd,
                             const float *rmean, const float *rvar, float eps,
                             int C)
{
    const char *op = "bn_eval_stats";
    int ok = need(op, "mean", mean, F(C)) & need(op, "var", var, F(C)) &
             need(op, "istd", istd, F(C)) & need(op, "rmean", rmean, F(C)) &
             need(op, "rvar", rvar, F(C));
    RUN(ok, l2rw__bn_eval_stats(mean, var, istd, rmean, rvar, eps, C));
}

static void ck_bn_running(float *rmean, float *rvar, const float *mean,
                          const float *var, float mom, float unbias, int C)
{
    const char *op = "bn_running";
    int ok = need(op, "rmean", rmean, F(C)) & need(op, "rvar", rvar, F(C)) &
             need(op, "mean", mean, F(C)) & need(op, "var", var, F(C));
    RUN(ok, l2rw__bn_running(rmean, rvar, mean, var, mom, unbias, C));
}

static int ck_any_nonzero(const float *x, size_t len)
{
    if (!need("any_nonzero", "x", x, F(len))) return 0;
    unlock();
    int r = l2rw__any_nonzero(x, len);
    lock();
    return r;
}

/* ------------------------------------------------ loss and optimizer */

static l2rw_status ck_loss_eval(const l2rw_loss *cfg, const float *z,
                                const float *zdot, const int32_t *y, int n,
                                int k, float *loss, float *dz, float *u)
{
    const char *op = "loss_eval";
    size_t nk = n > 0 && k > 0 ? (size_t)n * (size_t)k : 0;
    size_t nn = n > 0 ? (size_t)n : 0;
    int ok = host(op, "cfg", cfg, sizeof *cfg) & need(op, "z", z, F(nk)) &
             need(op, "zdot", zdot, F(nk)) & need(op, "y", y, nn * sizeof *y) &
             need(op, "loss", loss, F(nn)) & need(op, "dz", dz, F(nk)) &
             need(op, "u", u, F(nn));
    if (!ok) return ck_sync();
    unlock();
    l2rw_status s = l2rw__loss_eval(cfg, z, zdot, y, n, k, loss, dz, u);
    lock();
    return s;
}

static void ck_sgd_update(float *p, float *v, const float *g, size_t n,
                          float lr, float mu, float wd, float scale, int *bad)
{
    int ok = need("sgd_update", "p", p, F(n)) &
             need("sgd_update", "v", v, F(n)) &
             need("sgd_update", "g", g, F(n)) &
             need("sgd_update", "bad", bad, sizeof *bad);
    RUN(ok, l2rw__sgd_update(p, v, g, n, lr, mu, wd, scale, bad));
}

static void ck_adamw_update(float *p, float *m, float *v, const float *g,
                            size_t n, float lr, float b1, float b2, float eps,
                            float wd, float bc1, float bc2, float scale,
                            int *bad)
{
    const char *op = "adamw_update";
    int ok = need(op, "p", p, F(n)) & need(op, "m", m, F(n)) &
             need(op, "v", v, F(n)) & need(op, "g", g, F(n)) &
             need(op, "bad", bad, sizeof *bad);
    RUN(ok, l2rw__adamw_update(p, m, v, g, n, lr, b1, b2, eps, wd, bc1, bc2,
                               scale, bad));
}

static double ck_sumsq(const float *g, size_t n)
{
    if (!need("sumsq", "g", g, F(n))) return 0.0;
    unlock();
    double r = l2rw__sumsq(g, n);
    lock();
    return r;
}

/* ------------------------------------------------ data on the device */

/* What alloc could still give: the arena after its last block (gaps
 * between blocks are not counted, so never more than there is). */
static size_t ck_mem_free(void)
{
    if (A.n == 0) return ARENA_BYTES;
    const block *b = &A.blocks[A.n - 1];
    return ARENA_BYTES - round_up(b->off + b->size);
}

/* Every entry of a back-end int32 array in [lo, hi]; records the first
 * that is not (the CUDA kernels trust the caller's check: this is it). */
static int ints_in(const char *op, const char *arg, const int32_t *v,
                   size_t len, size_t stride, int32_t lo, int32_t hi)
{
    unlock();
    size_t bad = len;
    for (size_t i = 0; i < len && bad == len; i += stride)
        if (v[i] < lo || v[i] > hi) bad = i;
    lock();
    if (bad == len) return 1;
    record(L2RW_ERR_ARG, "checked back end: %s: argument %s (%p, entry "
           "%zu) out of range", op, arg, v, bad);
    return 0;
}

static void ck_gather_rows(float *dst, const float *src, size_t rows,
                           const int32_t *idx, int n, size_t dim)
{
    const char *op = "gather_rows";
    size_t nn = n > 0 ? (size_t)n : 0;
    int ok = need(op, "dst", dst, F(nn * dim)) &
             need(op, "src", src, F(rows * dim)) &
             need(op, "idx", idx, nn * sizeof *idx);
    ok = ok && rows > 0 &&
         ints_in(op, "idx", idx, nn, 1, 0, (int32_t)(rows - 1));
    RUN(ok, l2rw__gather_rows(dst, src, idx, n, dim));
}

static void ck_crop_flip(float *out, const float *x, const int32_t *draws,
                         int n, int c, int h, int w, int pad)
{
    const char *op = "crop_flip";
    size_t nn = n > 0 ? (size_t)n : 0, dim = (size_t)c * h * w;
    int ok = need(op, "out", out, F(nn * dim)) &
             need(op, "x", x, F(nn * dim)) &
             need(op, "draws", draws, 3 * nn * sizeof *draws);
    /* every example's dy and dx in [0, 2 pad], its flip 0 or 1 */
    size_t len = 3 * nn;
    ok = ok && nn > 0 && pad >= 0 &&
         ints_in(op, "draws", draws, len, 3, 0, 2 * pad) &&
         ints_in(op, "draws", draws + 1, len - 1, 3, 0, 2 * pad) &&
         ints_in(op, "draws", draws + 2, len - 2, 3, 0, 1);
    RUN(ok, l2rw__crop_flip(out, x, draws, n, c, h, w, pad));
}

static void ck_dots_acc(double *u, const float *a, size_t lda,
                        const float *b, size_t ldb, int n, size_t len)
{
    const char *op = "dots_acc";
    size_t rows = n > 0 ? (size_t)n - 1 : 0;
    int ok = host(op, "u", u, (size_t)(n > 0 ? n : 0) * sizeof *u) &
             need(op, "a", a, F(rows * lda + len)) &
             need(op, "b", b, F(rows * ldb + len));
    RUN(ok, l2rw__dots_acc(u, a, lda, b, ldb, n, len));
}

const l2rw__backend l2rw__backend_checked = {
    .name = "checked",
    .host = 0,
    .alloc = ck_alloc,
    .dealloc = ck_dealloc,
    .upload = ck_upload,
    .download = ck_download,
    .copy_dev = ck_copy_dev,
    .zero = ck_zero,
    .sync = ck_sync,

    .gemm = ck_gemm,
    .copy = ck_copy,
    .add = ck_add,
    .scale_rows = ck_scale_rows,
    .scale = ck_scale,
    .relu_fwd = ck_relu_fwd,
    .relu_mask = ck_relu_mask,
    .mul = ck_mul,
    .dropout_mask = ck_dropout_mask,
    .bias_add = ck_bias_add,
    .bias_grad = ck_bias_grad,
    .conv_ws = l2rw__conv_ws,
    .conv_fwd = ck_conv_fwd,
    .conv_bwd = ck_conv_bwd,
    .conv_bwd_each = ck_conv_bwd_each,
    .maxpool_fwd = ck_maxpool_fwd,
    .maxpool_gather = ck_maxpool_gather,
    .maxpool_bwd = ck_maxpool_bwd,
    .avgpool_fwd = ck_avgpool_fwd,
    .avgpool_bwd = ck_avgpool_bwd,
    .dot = ck_dot,
    .bn_stats = ck_bn_stats,
    .bn_stats_norm = ck_bn_stats_norm,
    .bn_norm = ck_bn_norm,
    .bn_tangent_train = ck_bn_tangent_train,
    .bn_tangent_eval = ck_bn_tangent_eval,
    .bn_bwd = ck_bn_bwd,

    .copy_2d = ck_copy_2d,
    .bn_eval_stats = ck_bn_eval_stats,
    .bn_running = ck_bn_running,
    .any_nonzero = ck_any_nonzero,
    .conv_slices = l2rw__conv_slices,

    .loss_eval = ck_loss_eval,
    .sgd_update = ck_sgd_update,
    .adamw_update = ck_adamw_update,
    .sumsq = ck_sumsq,
    .mem_free = ck_mem_free,
    .gather_rows = ck_gather_rows,
    .crop_flip = ck_crop_flip,
    .dots_acc = ck_dots_acc,
};
