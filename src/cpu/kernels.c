/* The arithmetic of the engine (see kernels.h): CBLAS GEMM, im2col and
 * col2im, pooling, batch-norm statistics, element-wise loops, OpenMP with
 * static schedules (results depend only on the thread count). */
#define _POSIX_C_SOURCE 200809L
#include "kernels.h"

#include <pthread.h>

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "common.h"

#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num(void) { return 0; }
static int omp_get_max_threads(void) { return 1; }
static void omp_set_num_threads(int n) { (void)n; }
#endif

/* Vectors of 16 floats where the compiler has vector extensions. The
 * batch-norm row reductions use them because GCC's auto-vectoriser turns
 * their plain loops into shuffles across several iterations (slow); the
 * vector code does the same additions in the same order, lane by lane,
 * so the results are identical. */
enum { LANES = 16 };
#if defined(__GNUC__)
#define L2RW_VEC 1
typedef float v16f __attribute__((vector_size(LANES * sizeof(float))));
typedef uint32_t v16u __attribute__((vector_size(LANES * sizeof(float))));
static inline v16f ld16(const float *p)
{
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void st16(float *p, v16f v) { memcpy(p, &v, sizeof v); }
#else
#define L2RW_VEC 0
#endif

/* Below this many floats an OpenMP region costs more than it saves. */
enum { PAR_MIN = 1 << 15 };

#define L2RW_STR(x) #x
#define OMP_FOR(len)                                                         \
    _Pragma(L2RW_STR(omp parallel for schedule(static) num_threads(l2rw__nt(len))))

static int l2rw__nt(size_t work) { return work < PAR_MIN ? 1 : l2rw_get_threads(); }

/* OpenBLAS always runs serially, on the thread that calls it: the engine
 * splits products over its own OpenMP threads, and OpenBLAS's threads
 * would compete with them for the same cores. A pthreads build of
 * OpenBLAS keeps one process-wide count: set to 1 once and never
 * switched, so that threads calling the engine at the same time cannot
 * race on it. The OpenMP build (the one the Makefile picks) reads the
 * caller's OpenMP count at every call instead: see sgemm1. */
extern void openblas_set_num_threads(int);
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_serial_init(void)
{
    /* OpenBLAS's OpenMP build also sets the calling thread's OpenMP count
     * (omp_set_num_threads): give it back, or a thread that never set
     * its count would run the rest of its work on one thread. */
    const int omp = omp_get_max_threads();
    openblas_set_num_threads(1);
    omp_set_num_threads(omp);
}
static void blas_serial(void) { pthread_once(&blas_once, blas_serial_init); }

/* cblas_sgemm on the calling thread only. OpenBLAS's OpenMP build takes
 * its thread count from the caller's OpenMP count at every call (and runs
 * serially inside an active parallel region), so a call from outside our
 * parallel regions would start a team of its own: the caller's count is
 * 1 for the call. It is a per-thread setting, so this does not race. */
static void sgemm1(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n,
                   int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc)
{
    const int omp = omp_get_max_threads();
    if (omp != 1) omp_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta,
                c, ldc);
    if (omp != 1) omp_set_num_threads(omp);
}

void l2rw__gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta,
                float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta C */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    int nt = l2rw_get_threads();
    /* Small products (below ~2^18 multiply-adds) run on one thread. */
    if ((double)m * n * k < (double)(1 << 18)) nt = 1;
    const int split_rows = m >= n; /* split the larger side of C */
    const int dim = split_rows ? m : n;
    if (nt > dim / 8) nt = dim / 8 > 0 ? dim / 8 : 1;
    blas_serial();
    if (nt <= 1) {
        sgemm1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    } else {
        /* Blocks of 8 rows/columns, contiguous per thread. */
        const int blocks = (dim + 7) / 8;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int t = 0; t < nt; t++) {
            int lo = 8 * (int)((long)blocks * t / nt);
            int hi = 8 * (int)((long)blocks * (t + 1) / nt);
            if (hi > dim) hi = dim;
            if (hi <= lo) continue;
            if (split_rows) {
                const float *ap = trans_a ? a + lo : a + (size_t)lo * lda;
                sgemm1(ta, tb, hi - lo, n, k, alpha, ap, lda, b, ldb, beta,
                       c + (size_t)lo * ldc, ldc);
            } else {
                const float *bp = trans_b ? b + (size_t)lo * ldb : b + lo;
                sgemm1(ta, tb, m, hi - lo, k, alpha, a, lda, bp, ldb, beta,
                       c + lo, ldc);
            }
        }
    }
}

/* ------------------------------------------------------------ element-wise */

void l2rw__copy(float *dst, const float *src, size_t len, int acc)
{
    if (!acc) {
        if (dst != src) memcpy(dst, src, len * sizeof *dst);
        return;
    }
    OMP_FOR(len)
    for (size_t i = 0; i < len; i++) dst[i] += src[i];
}

void l2rw__add(float *y, const float *a, const float *b, size_t len)
{
    OMP_FOR(len)
    for (size_t i = 0; i < len; i++) y[i] = a[i] + b[i];
}

void l2rw__scale_rows(float *dst, const float *src, const float *s, int rows,
                      size_t cols)
{
    OMP_FOR((size_t)rows * cols)
    for (int i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            dst[(size_t)i * cols + j] = s[i] * src[(size_t)i * cols + j];
}

void l2rw__scale(float *dst, const float *src, float a, size_t len, int acc)
{
    if (acc) {
        OMP_FOR(len)
        for (size_t i = 0; i < len; i++) dst[i] += a * src[i];
    } else {
        OMP_FOR(len)
        for (size_t i = 0; i < len; i++) dst[i] = a * src[i];
    }
}

void l2rw__relu_fwd(float *y, const float *x, size_t len)
{
    OMP_FOR(len)
    for (size_t i = 0; i < len; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN passes */
}

void l2rw__relu_mask(float *dst, const float *src, const float *x, size_t len,
                     int acc)
{
    if (acc) {
        OMP_FOR(len)
        for (size_t i = 0; i < len; i++) dst[i] += x[i] > 0.0f ? src[i] : 0.0f;
    } else {
        OMP_FOR(len)
        for (size_t i = 0; i < len; i++) dst[i] = x[i] > 0.0f ? src[i] : 0.0f;
    }
}

void l2rw__mul(float *dst, const float *src, const float *mask, size_t len,
               int acc)
{
    if (acc) {
        OMP_FOR(len)
        for (size_t i = 0; i < len; i++) dst[i] += src[i] * mask[i];
    } else {
        OMP_FOR(len)
        for (size_t i = 0; i < len; i++) dst[i] = src[i] * mask[i];
    }
}

void l2rw__dropout_mask(float *mask, uint64_t key, uint64_t layer, int n,
                        size_t units, float p)
{
    const float keep = 1.0f / (1.0f - p);
    const uint64_t lk = l2rw_hash2(key, layer);
    OMP_FOR((size_t)n * units)
    for (int i = 0; i < n; i++) {
        uint64_t ek = l2rw_hash2(lk, (uint64_t)i);
        for (size_t j = 0; j < units; j++) {
            /* 24 random bits give a uniform float in [0, 1) exactly. */
            float u = (float)(l2rw_hash2(ek, j) >> 40) * (1.0f / 16777216.0f);
            mask[(size_t)i * units + j] = u < p ? 0.0f : keep;
        }
    }
}

static double row_sum(const float *x, size_t P);

/* ---------------------------------------------------------------- bias */

void l2rw__bias_add(float *y, const float *b, int n, int C, size_t P)
{
    OMP_FOR((size_t)n * C * P)
    for (int ic = 0; ic < n * C; ic++) {
        float v = b[ic % C], *row = y + (size_t)ic * P;
        for (size_t p = 0; p < P; p++) row[p] += v;
    }
}

void l2rw__bias_grad(float *db, const float *dy, int n, int C, size_t P,
                     int acc)
{
    OMP_FOR((size_t)n * C * P)
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) s += row_sum(dy + ((size_t)i * C + c) * P, P);
        db[c] = acc ? db[c] + (float)s : (float)s;
    }
}

/* ------------------------------------------------------------ conv */

/* Small row copies stay inline loops: GCC would otherwise turn them into
 * memcpy/memset calls whose overhead dominates rows of 8..32 floats. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_LIBCALLS
#endif

/* Zero-padded copy of x [c, h, w] into pbuf [c, h + 2 pad, w + 2 pad]. */
NO_LIBCALLS static void pad_planes(float *restrict pbuf,
                                   const float *restrict x,
                                   const l2rw__conv_shape *s)
{
    const int pad = s->pad, h = s->ih, w = s->iw, W = w + 2 * pad;
    const size_t plane = (size_t)(h + 2 * pad) * W;
    for (int ch = 0; ch < s->ic; ch++) {
        float *restrict dst = pbuf + ch * plane;
        const float *restrict src = x + (size_t)ch * h * w;
        for (int j = 0; j < pad * W + pad; j++) dst[j] = 0.0f;
        for (int iy = 0; iy < h; iy++) {
            float *restrict d = dst + (size_t)(iy + pad) * W + pad;
            for (int ix = 0; ix < w; ix++) d[ix] = src[(size_t)iy * w + ix];
            /* right border of this row and left border of the next */
            for (int j = w; j < w + 2 * pad; j++) d[j] = 0.0f;
        }
        for (size_t j = (size_t)(h + pad) * W + pad; j < plane; j++) dst[j] = 0.0f;
    }
}

/* Round a float count up to whole cache lines. */
static size_t lines(size_t n) { return (n + 15) & ~(size_t)15; }

/* Stride-1 convolutions whose output has the input's size (2 pad =
 * k - 1, ResNets' 3x3 convs): with ow = w, tap (ky, kx) of a plane is the
 * flat plane shifted by d = (ky - pad) w + (kx - pad), so each row of
 * cols is one contiguous copy through a bit mask that zeroes the columns
 * falling in the padding (one mask per column shift kx - pad != 0, built
 * once per call). No padded planes, no short rows. */
static int conv_same(const l2rw__conv_shape *s)
{
    return s->stride == 1 && s->oh == s->ih && s->ow == s->iw;
}

/* Floats of the column masks: k - 1 planes of P (0 unless conv_same). */
static size_t conv_masks(const l2rw__conv_shape *s)
{
    return conv_same(s) && s->k > 1 ? lines((size_t)(s->k - 1) * s->ih * s->iw) : 0;
}

/* Mask plane of column shift dx != 0: all ones where 0 <= ox + dx < w,
 * zero bits elsewhere (stored in float slots). */
static void build_masks(float *masks, const l2rw__conv_shape *s)
{
    const int w = s->iw, P = s->ih * s->iw;
    for (int dx = -s->pad; dx <= s->pad; dx++) {
        if (dx == 0) continue;
        float *m = masks + (size_t)(dx < 0 ? dx + s->pad : dx + s->pad - 1) * P;
        for (int j = 0; j < P; j++) {
            const int ix = j % w + dx;
            const uint32_t bits = ix >= 0 && ix < w ? ~0u : 0u;
            memcpy(m + j, &bits, sizeof bits);
        }
    }
}

static const float *col_mask(const float *masks, const l2rw__conv_shape *s,
                             int dx)
{
    const size_t P = (size_t)s->ih * s->iw;
    return dx == 0 ? NULL : masks + (size_t)(dx < 0 ? dx + s->pad : dx + s->pad - 1) * P;
}

/* Valid flat range [lo, hi) of one tap: j + d inside the plane and the
 * output row inside the input; positions outside it are padding. */
typedef struct {
    int lo, hi, d;
} tap_range;

static tap_range same_tap(const l2rw__conv_shape *s, int ky, int kx)
{
    const int w = s->iw, h = s->ih, P = h * w;
    const int dy = ky - s->pad, dx = kx - s->pad, d = dy * w + dx;
    int lo = (dy < 0 ? -dy : 0) * w, hi = (dy > 0 ? h - dy : h) * w;
    if (lo < -d) lo = -d;
    if (hi > P - d) hi = P - d;
    tap_range r = {lo, hi, d};
    return r;
}

/* row[j] = src[j + d] & m[j] (bits) for j in [lo, hi). */
static void copy_masked(float *restrict row, const float *restrict src,
                        const float *restrict m, tap_range r)
{
    for (int j = r.lo; j < r.hi; j++) {
        uint32_t a, b;
        memcpy(&a, src + j + r.d, sizeof a);
        memcpy(&b, m + j, sizeof b);
        a &= b;
        memcpy(row + j, &a, sizeof a);
    }
}

/* dst[j + d] += row[j] & m[j] (bits) for j in [lo, hi). */
static void add_masked(float *restrict dst, const float *restrict row,
                       const float *restrict m, tap_range r)
{
    for (int j = r.lo; j < r.hi; j++) {
        uint32_t a, b;
        memcpy(&a, row + j, sizeof a);
        memcpy(&b, m + j, sizeof b);
        a &= b;
        float v;
        memcpy(&v, &a, sizeof v);
        dst[j + r.d] += v;
    }
}

NO_LIBCALLS static void im2col_same(float *restrict cols,
                                    const float *restrict x,
                                    const l2rw__conv_shape *s,
                                    const float *masks)
{
    const int k = s->k, P = s->ih * s->iw;
    for (int ch = 0; ch < s->ic; ch++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *restrict row = cols + ((size_t)(ch * k + ky) * k + kx) * P;
                const tap_range r = same_tap(s, ky, kx);
                const float *restrict src = x + (size_t)ch * P;
                const float *m = col_mask(masks, s, kx - s->pad);
                for (int j = 0; j < r.lo; j++) row[j] = 0.0f;
                if (m)
                    copy_masked(row, src, m, r);
                else
                    for (int j = r.lo; j < r.hi; j++) row[j] = src[j + r.d];
                for (int j = r.hi > r.lo ? r.hi : r.lo; j < P; j++) row[j] = 0.0f;
            }
}

/* Adjoint of im2col_same into t [c, h, w], which the caller zeroed or
 * which holds the values to add to: the same additions, in the same
 * order, as col2im1 makes, plus additions of +0 at the padding columns,
 * which change nothing (t starts at +0, and a sum that starts at +0 is
 * never -0). */
NO_LIBCALLS static void col2im_same(float *restrict t,
                                    const float *restrict cols,
                                    const l2rw__conv_shape *s,
                                    const float *masks)
{
    const int k = s->k, P = s->ih * s->iw;
    for (int ch = 0; ch < s->ic; ch++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *restrict row = cols + ((size_t)(ch * k + ky) * k + kx) * P;
                const tap_range r = same_tap(s, ky, kx);
                float *restrict dst = t + (size_t)ch * P;
                const float *m = col_mask(masks, s, kx - s->pad);
                if (m)
                    add_masked(dst, row, m, r);
                else
                    for (int j = r.lo; j < r.hi; j++) dst[j + r.d] += row[j];
            }
}

/* dst[0..n) = src[0..n) for the short rows of im2col (LeNet: 8 and 24
 * floats): blocks of 8 as fixed-size copies, which compile to single
 * vector moves; a loop with a run-time count spends more time deciding
 * how to vectorise than copying. */
static inline void copy_short(float *restrict dst, const float *restrict src,
                              int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) memcpy(dst + i, src + i, 8 * sizeof *dst);
    for (; i < n; i++) dst[i] = src[i];
}

/* dst[0..n) += src[0..n), blocks of 8 as in copy_short. */
static inline void add_short(float *restrict dst, const float *restrict src,
                             int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float a[8], b[8];
        memcpy(a, dst + i, sizeof a);
        memcpy(b, src + i, sizeof b);
        for (int j = 0; j < 8; j++) a[j] += b[j];
        memcpy(dst + i, a, sizeof a);
    }
    for (; i < n; i++) dst[i] += src[i];
}

/* x [c, h, w] of one example -> cols [c k k, oh ow]; pbuf holds the
 * zero-padded planes when pad > 0. */
NO_LIBCALLS static void im2col1(float *restrict cols, const float *x,
                                const l2rw__conv_shape *s,
                                float *restrict pbuf, const float *masks)
{
    const int k = s->k, st = s->stride, pad = s->pad, oh = s->oh, ow = s->ow;
    const int H = s->ih + 2 * pad, W = s->iw + 2 * pad;
    const size_t P = (size_t)oh * ow;
    if (conv_same(s)) {
        im2col_same(cols, x, s, masks);
        return;
    }
    if (pad) {
        pad_planes(pbuf, x, s);
        x = pbuf;
    }
    for (int ch = 0; ch < s->ic; ch++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *restrict row = cols + ((size_t)(ch * k + ky) * k + kx) * P;
                const float *restrict src = x + ((size_t)ch * H + ky) * W + kx;
                if (st == 1) {
                    for (int oy = 0; oy < oh; oy++)
                        copy_short(row + oy * ow, src + oy * W, ow);
                } else {
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++)
                            row[oy * ow + ox] = src[(oy * W + ox) * st];
                }
            }
}

/* Adjoint of im2col1: dx [c, h, w] (=|+=) scatter-add of cols, through
 * the padded planes pbuf when pad > 0. */
NO_LIBCALLS static void col2im1(float *restrict dx,
                                const float *restrict cols,
                                const l2rw__conv_shape *s, int acc,
                                float *restrict pbuf, const float *masks)
{
    const int k = s->k, st = s->stride, pad = s->pad, oh = s->oh, ow = s->ow;
    const int h = s->ih, w = s->iw, H = h + 2 * pad, W = w + 2 * pad;
    const size_t P = (size_t)oh * ow;
    float *restrict t = pad ? pbuf : dx;
    if (conv_same(s)) { /* t unpadded [c, h, w] */
        if (pad || !acc) memset(t, 0, (size_t)s->ic * h * w * sizeof *t);
        col2im_same(t, cols, s, masks);
        if (pad) {
            const size_t len = (size_t)s->ic * h * w;
            if (acc)
                for (size_t j = 0; j < len; j++) dx[j] += t[j];
            else
                memcpy(dx, t, len * sizeof *dx);
        }
        return;
    }
    if (pad || !acc) memset(t, 0, (size_t)s->ic * H * W * sizeof *t);
    for (int ch = 0; ch < s->ic; ch++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *restrict row = cols + ((size_t)(ch * k + ky) * k + kx) * P;
                float *restrict dst = t + ((size_t)ch * H + ky) * W + kx;
                if (st == 1) {
                    for (int oy = 0; oy < oh; oy++)
                        add_short(dst + oy * W, row + oy * ow, ow);
                } else {
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++)
                            dst[(oy * W + ox) * st] += row[oy * ow + ox];
                }
            }
    if (!pad) return;
    for (int ch = 0; ch < s->ic; ch++)
        for (int iy = 0; iy < h; iy++) {
            const float *restrict src = t + ((size_t)ch * H + iy + pad) * W + pad;
            float *restrict d = dx + ((size_t)ch * h + iy) * w;
            if (acc)
                for (int ix = 0; ix < w; ix++) d[ix] += src[ix];
            else
                for (int ix = 0; ix < w; ix++) d[ix] = src[ix];
        }
}


static size_t conv_K(const l2rw__conv_shape *s) { return (size_t)s->ic * s->k * s->k; }
static size_t conv_P(const l2rw__conv_shape *s) { return (size_t)s->oh * s->ow; }

/* Per-thread workspace: forward stacked columns 2K x P; backward K x P
 * columns and an oc x K partial weight gradient. */
/* Zero-padded input planes of one example (0 without padding). */
static size_t conv_plane(const l2rw__conv_shape *s)
{
    return s->pad ? lines((size_t)s->ic * (s->ih + 2 * s->pad) * (s->iw + 2 * s->pad)) : 0;
}

static size_t conv_per_thread(const l2rw__conv_shape *s)
{
    const size_t K = conv_K(s), P = conv_P(s);
    size_t f = 2 * K * P, b = K * P + (size_t)s->oc * K;
    return lines(f > b ? f : b) + conv_plane(s);
}

size_t l2rw__conv_ws(const l2rw__conv_shape *s)
{
    return lines((size_t)s->oc * 2 * conv_K(s)) + conv_masks(s) +
           (size_t)s->max_threads * conv_per_thread(s);
}

int l2rw__conv_slices(void)
{
    int threads = l2rw_get_threads();
#ifdef _OPENMP
    if (omp_get_num_procs() > threads) threads = omp_get_num_procs();
#endif
    return threads;
}

static int conv_threads(const l2rw__conv_shape *s, int n)
{
    int nt = l2rw_get_threads();
    if (nt > s->max_threads) nt = s->max_threads;
    if (nt > n) nt = n;
    return nt < 1 ? 1 : nt;
}


static void add_rows(float *y, const float *b, int rows, size_t P)
{
    for (int o = 0; o < rows; o++) {
        float v = b[o], *r = y + (size_t)o * P;
        for (size_t p = 0; p < P; p++) r[p] += v;
    }
}

void l2rw__conv_fwd(const l2rw__conv_shape *s, int n, float *y, float *ty,
                    const float *x, const float *tx, const float *W,
                    const float *b, const float *tW, const float *tb,
                    float *ws)
{
    const int K = (int)conv_K(s), P = (int)conv_P(s), oc = s->oc;
    const size_t in_sz = (size_t)s->ic * s->ih * s->iw, out_sz = (size_t)oc * P;
    float *w2 = ws, *masks = ws + lines((size_t)oc * 2 * K);
    float *thr = masks + conv_masks(s);
    if (conv_masks(s)) build_masks(masks, s);
    const size_t per = conv_per_thread(s);
    if (ty && tx) /* [W tW] for the fused tangent GEMM */
        for (int o = 0; o < oc; o++) {
            memcpy(w2 + (size_t)o * 2 * K, W + (size_t)o * K, (size_t)K * sizeof *w2);
            memcpy(w2 + (size_t)o * 2 * K + K, tW + (size_t)o * K, (size_t)K * sizeof *w2);
        }
    const int nt = conv_threads(s, n);
    blas_serial();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int i = 0; i < n; i++) {
        float *cols = thr + (size_t)omp_get_thread_num() * per;
        float *pbuf = cols + per - conv_plane(s);
        /* With an input tangent, cols(tx) goes on top of cols(x). */
        float *colsx = ty && tx ? cols + (size_t)K * P : cols;
        float *yi = y + i * out_sz;
        im2col1(colsx, x + i * in_sz, s, pbuf, masks);
        sgemm1(CblasNoTrans, CblasNoTrans, oc, P, K, 1.0f, W, K, colsx, P,
               0.0f, yi, P);
        if (b) add_rows(yi, b, oc, (size_t)P);
        if (!ty) continue;
        float *tyi = ty + i * out_sz;
        if (tx) {
            im2col1(cols, tx + i * in_sz, s, pbuf, masks);
            sgemm1(CblasNoTrans, CblasNoTrans, oc, P, 2 * K, 1.0f, w2, 2 * K,
                   cols, P, 0.0f, tyi, P);
        } else {
            sgemm1(CblasNoTrans, CblasNoTrans, oc, P, K, 1.0f, tW, K, colsx, P,
                   0.0f, tyi, P);
        }
        if (tb) add_rows(tyi, tb, oc, (size_t)P);
    }
}

void l2rw__conv_bwd(const l2rw__conv_shape *s, int n, float *dW, float *db,
                    float *dx, const float *dy, const float *x,
                    const float *W, int acc, float *ws)
{
    const int K = (int)conv_K(s), P = (int)conv_P(s), oc = s->oc;
    const size_t in_sz = (size_t)s->ic * s->ih * s->iw, out_sz = (size_t)oc * P;
    float *masks = ws + lines((size_t)oc * 2 * K);
    float *thr = masks + conv_masks(s);
    const size_t per = conv_per_thread(s), nw = (size_t)oc * K;
    if (conv_masks(s)) build_masks(masks, s);
    const int nt = conv_threads(s, n);
    blas_serial();
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        float *cols = thr + (size_t)t * per;
        float *pbuf = cols + per - conv_plane(s);
        /* One thread writes dW directly; otherwise partial sums. */
        float *pw = nt == 1 ? dW : cols + (size_t)K * P;
        int first = 1;
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            const float *dyi = dy + i * out_sz;
            im2col1(cols, x + i * in_sz, s, pbuf, masks);
            sgemm1(CblasNoTrans, CblasTrans, oc, K, P, 1.0f, dyi, P, cols, P,
                   first ? 0.0f : 1.0f, pw, K);
            first = 0;
            if (!dx) continue;
            sgemm1(CblasTrans, CblasNoTrans, K, P, oc, 1.0f, W, K, dyi, P,
                   0.0f, cols, P);
            col2im1(dx + i * in_sz, cols, s, acc, pbuf, masks);
        }
        if (first) /* no example for this thread */
            memset(pw, 0, nw * sizeof *pw);
    }
    if (nt > 1) {
        /* Partial sums added in thread order: fixed for a thread count. */
        OMP_FOR(nw * (size_t)nt)
        for (size_t j = 0; j < nw; j++) {
            float v = 0.0f;
            for (int t = 0; t < nt; t++) v += thr[(size_t)t * per + (size_t)K * P + j];
            dW[j] = v;
        }
    }
    if (db) l2rw__bias_grad(db, dy, n, oc, (size_t)P, 0);
}

void l2rw__conv_bwd_each(const l2rw__conv_shape *s, int n, float *G,
                         size_t ldg, int bias, float *dx, const float *dy,
                         const float *x, const float *W, int acc, float *ws)
{
    const int K = (int)conv_K(s), P = (int)conv_P(s), oc = s->oc;
    const size_t in_sz = (size_t)s->ic * s->ih * s->iw, out_sz = (size_t)oc * P;
    const size_t nw = (size_t)oc * K;
    float *masks = ws + lines((size_t)oc * 2 * K);
    float *thr = masks + conv_masks(s);
    const size_t per = conv_per_thread(s);
    if (conv_masks(s)) build_masks(masks, s);
    const int nt = conv_threads(s, n);
    blas_serial();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int i = 0; i < n; i++) {
        float *cols = thr + (size_t)omp_get_thread_num() * per;
        float *pbuf = cols + per - conv_plane(s);
        const float *dyi = dy + i * out_sz;
        float *Gi = G + (size_t)i * ldg;
        im2col1(cols, x + i * in_sz, s, pbuf, masks);
        sgemm1(CblasNoTrans, CblasTrans, oc, K, P, 1.0f, dyi, P, cols, P, 0.0f,
               Gi, K);
        if (bias)
            for (int o = 0; o < oc; o++)
                Gi[nw + o] = (float)row_sum(dyi + (size_t)o * P, (size_t)P);
        if (!dx) continue;
        sgemm1(CblasTrans, CblasNoTrans, K, P, oc, 1.0f, W, K, dyi, P, 0.0f,
               cols, P);
        col2im1(dx + i * in_sz, cols, s, acc, pbuf, masks);
    }
}

/* ------------------------------------------------------------ pooling */

/* Index of the maximum of a k x k window at xp (row stride w), first one
 * on ties; a NaN wins so that it propagates instead of being hidden. */
static inline int window_argmax(const float *xp, int w, int k, int start)
{
    int best = start;
    float bv = xp[start];
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++) {
            int j = start + ky * w + kx;
            float v = xp[j];
            if (v > bv || (v != v && bv == bv)) {
                bv = v;
                best = j;
            }
        }
    return best;
}

/* Branch-free select through integer masks: GCC turns float ternaries
 * into branches, which mispredict on ReLU outputs. */
static inline float fsel(uint32_t take_a, float a, float b)
{
    uint32_t ua, ub, m = 0u - take_a, r;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    r = (ua & m) | (ub & ~m);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* Outputs [from, ow) of one row of 2x2, stride-2 max pooling, scalar;
 * same first-max and NaN rules as window_argmax, except that of two NaNs
 * in a row the second wins (b != b alone decides), as it always has
 * here. */
static void pool22_scalar(float *restrict yr, int32_t *restrict ir,
                          const float *restrict r0, int w, int from, int ow,
                          int base)
{
    const float *restrict r1 = r0 + w;
    for (int ox = from; ox < ow; ox++) {
        float a = r0[2 * ox], b = r0[2 * ox + 1];
        float c2 = r1[2 * ox], d = r1[2 * ox + 1];
        uint32_t tb = (uint32_t)((b > a) | (b != b));
        uint32_t td = (uint32_t)((d > c2) | (d != d));
        float v0 = fsel(tb, b, a), v1 = fsel(td, d, c2);
        uint32_t t1 = (uint32_t)((v1 > v0) | ((v1 != v1) & (v0 == v0)));
        yr[ox] = fsel(t1, v1, v0);
        int32_t j0 = 2 * ox + (int32_t)tb, j1 = w + 2 * ox + (int32_t)td;
        int32_t m = -(int32_t)t1;
        ir[ox] = base + ((j1 & m) | (j0 & ~m));
    }
}

#if defined(__GNUC__) && !defined(__clang__)
/* Four outputs at a time in 128-bit vectors (LeNet's rows are 12 and 4
 * outputs long, too short for the auto-vectoriser's wide loops): the
 * same comparisons as pool22_scalar, lane by lane. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f ld4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline v4f vsel(v4i m, v4f a, v4f b) /* m ? a : b */
{
    return (v4f)(((v4i)a & m) | ((v4i)b & ~m));
}
/* Even and odd elements of 8 floats at p: (p[0], p[2], ..), (p[1], ..). */
static inline void deinterleave(const float *p, v4f *ev, v4f *od)
{
    const v4f lo = ld4(p), hi = ld4(p + 4);
    *ev = __builtin_shuffle(lo, hi, (v4i){0, 2, 4, 6});
    *od = __builtin_shuffle(lo, hi, (v4i){1, 3, 5, 7});
}

static int pool22_vec(float *restrict yr, int32_t *restrict ir,
                      const float *restrict r0, int w, int ow, int base)
{
    int ox = 0;
    for (; ox + 4 <= ow; ox += 4) {
        v4f a, b, c2, d;
        deinterleave(r0 + 2 * ox, &a, &b);
        deinterleave(r0 + w + 2 * ox, &c2, &d);
        const v4i tb = (b > a) | (b != b), td = (d > c2) | (d != d);
        const v4f v0 = vsel(tb, b, a), v1 = vsel(td, d, c2);
        const v4i t1 = (v1 > v0) | ((v1 != v1) & (v0 == v0));
        const v4f y = vsel(t1, v1, v0);
        const v4i o2 = 2 * ox + (v4i){0, 2, 4, 6};
        const v4i j0 = o2 - tb, j1 = w + o2 - td; /* masks are 0 or -1 */
        const v4i j = base + ((j1 & t1) | (j0 & ~t1));
        memcpy(yr + ox, &y, sizeof y);
        memcpy(ir + ox, &j, sizeof j);
    }
    return ox;
}
#else
static int pool22_vec(float *restrict yr, int32_t *restrict ir,
                      const float *restrict r0, int w, int ow, int base)
{
    (void)yr, (void)ir, (void)r0, (void)w, (void)ow, (void)base;
    return 0;
}
#endif

static void pool22_row(float *restrict yr, int32_t *restrict ir,
                       const float *restrict r0, int w, int ow, int base)
{
    const int done = pool22_vec(yr, ir, r0, w, ow, base);
    pool22_scalar(yr, ir, r0, w, done, ow, base);
}

void l2rw__maxpool_fwd(float *y, int32_t *idx, const float *x, int n, int c,
                       int h, int w, int k, int s, int oh, int ow)
{
    const int nc = n * c;
    OMP_FOR((size_t)nc * h * w)
    for (int ic = 0; ic < nc; ic++) {
        const float *xp = x + (size_t)ic * h * w;
        float *yp = y + (size_t)ic * oh * ow;
        int32_t *ip = idx + (size_t)ic * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            if (k == 2 && s == 2) { /* the common case */
                pool22_row(yp + oy * ow, ip + oy * ow,
                           xp + (size_t)(2 * oy) * w, w, ow, 2 * oy * w);
                continue;
            }
            for (int ox = 0; ox < ow; ox++) {
                int best = window_argmax(xp, w, k, oy * s * w + ox * s);
                yp[oy * ow + ox] = xp[best];
                ip[oy * ow + ox] = best;
            }
        }
    }
}

void l2rw__maxpool_gather(float *ty, const float *tx, const int32_t *idx,
                          int nc, size_t P, size_t Q)
{
    OMP_FOR((size_t)nc * Q)
    for (int ic = 0; ic < nc; ic++)
        for (size_t q = 0; q < Q; q++)
            ty[(size_t)ic * Q + q] = tx[(size_t)ic * P + idx[(size_t)ic * Q + q]];
}

void l2rw__maxpool_bwd(float *dx, const float *dy, const int32_t *idx, int nc,
                       size_t P, size_t Q, int acc)
{
    OMP_FOR((size_t)nc * P)
    for (int ic = 0; ic < nc; ic++) {
        float *xp = dx + (size_t)ic * P;
        if (!acc) memset(xp, 0, P * sizeof *xp);
        for (size_t q = 0; q < Q; q++)
            xp[idx[(size_t)ic * Q + q]] += dy[(size_t)ic * Q + q];
    }
}

void l2rw__avgpool_fwd(float *y, const float *x, int nc, size_t P)
{
    OMP_FOR((size_t)nc * P)
    for (int ic = 0; ic < nc; ic++) {
        y[ic] = (float)(row_sum(x + (size_t)ic * P, P) / (double)P);
    }
}

void l2rw__avgpool_bwd(float *dx, const float *dy, int nc, size_t P, int acc)
{
    OMP_FOR((size_t)nc * P)
    for (int ic = 0; ic < nc; ic++) {
        float v = dy[ic] / (float)P, *xp = dx + (size_t)ic * P;
        if (acc)
            for (size_t p = 0; p < P; p++) xp[p] += v;
        else
            for (size_t p = 0; p < P; p++) xp[p] = v;
    }
}

/* --------------------------------------------------------- batch norm */

/* Row reductions with 16 float lanes (vectorisable without reassociating:
 * the order is fixed), lanes then rows combined in double. */
static double lanes_total(const float *acc)
{
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}


static double row_sum(const float *x, size_t P)
{
    float acc[LANES] = {0};
    size_t p = 0;
#if L2RW_VEC
    v16f a = {0};
    for (; p + LANES <= P; p += LANES) a += ld16(x + p);
    st16(acc, a);
#endif
    for (; p + LANES <= P; p += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[p + j];
    for (int j = 0; p < P; p++, j++) acc[j] += x[p];
    return lanes_total(acc);
}

static double row_sqdev(const float *x, size_t P, float mu)
{
    float acc[LANES] = {0};
    size_t p = 0;
#if L2RW_VEC
    v16f a = {0};
    for (; p + LANES <= P; p += LANES) {
        v16f d = ld16(x + p) - mu;
        a += d * d;
    }
    st16(acc, a);
#endif
    for (; p + LANES <= P; p += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = x[p + j] - mu;
            acc[j] += d * d;
        }
    for (int j = 0; p < P; p++, j++) {
        float d = x[p] - mu;
        acc[j] += d * d;
    }
    return lanes_total(acc);
}

/* sum a and sum a*b of a row at once. */
static void row_sum_dot(const float *a, const float *b, size_t P, double *sa,
                        double *sab)
{
    float s1[LANES] = {0}, s2[LANES] = {0};
    size_t p = 0;
#if L2RW_VEC
    v16f v1 = {0}, v2 = {0};
    for (; p + LANES <= P; p += LANES) {
        v16f va = ld16(a + p);
        v1 += va;
        v2 += va * ld16(b + p);
    }
    st16(s1, v1);
    st16(s2, v2);
#endif
    for (; p + LANES <= P; p += LANES)
        for (int j = 0; j < LANES; j++) {
            s1[j] += a[p + j];
            s2[j] += a[p + j] * b[p + j];
        }
    for (int j = 0; p < P; p++, j++) {
        s1[j] += a[p];
        s2[j] += a[p] * b[p];
    }
    *sa += lanes_total(s1);
    *sab += lanes_total(s2);
}

double l2rw__dot(const float *a, const float *b, size_t len)
{
    double s1 = 0.0, s2 = 0.0;
    row_sum_dot(a, b, len, &s1, &s2);
    return s2;
}

void l2rw__dots_acc(double *u, const float *a, size_t lda, const float *b,
                    size_t ldb, int n, size_t len)
{
    for (int i = 0; i < n; i++)
        u[i] += l2rw__dot(a + (size_t)i * lda, b + (size_t)i * ldb, len);
}

/* Mean and variance of channel c over the n examples (m = n P values). */
static void channel_stats(float *mean, float *var, const float *x, int n,
                          int C, size_t P, int c, double m)
{
    double s = 0.0, q = 0.0;
    for (int i = 0; i < n; i++) s += row_sum(x + ((size_t)i * C + c) * P, P);
    const float mu = (float)(s / m);
    /* Two passes: no cancellation for large means. */
    for (int i = 0; i < n; i++)
        q += row_sqdev(x + ((size_t)i * C + c) * P, P, mu);
    mean[c] = mu;
    var[c] = (float)(q / m);
}

void l2rw__bn_stats(float *mean, float *var, const float *x, int n, int C,
                    size_t P)
{
    const double m = (double)n * (double)P;
    OMP_FOR((size_t)n * C * P)
    for (int c = 0; c < C; c++) channel_stats(mean, var, x, n, C, P, c, m);
}

void l2rw__bn_stats_norm(float *y, float *xhat, float *mean, float *var,
                         float *istd, const float *x, const float *g,
                         const float *b, float eps, int n, int C, size_t P)
{
    const double m = (double)n * (double)P;
    OMP_FOR((size_t)n * C * P)
    for (int c = 0; c < C; c++) {
        channel_stats(mean, var, x, n, C, P, c, m);
        const float mu = mean[c];
        const float is = 1.0f / sqrtf(var[c] + eps), gc = g[c], bc = b[c];
        istd[c] = is;
        for (int i = 0; i < n; i++) {
            const size_t o = ((size_t)i * C + c) * P;
            const float *restrict xr = x + o;
            float *restrict yr = y + o, *restrict hr = xhat + o;
            for (size_t p = 0; p < P; p++) {
                float h = (xr[p] - mu) * is;
                hr[p] = h;
                yr[p] = gc * h + bc;
            }
        }
    }
}

void l2rw__bn_norm(float *y, float *xhat, const float *x, const float *mean,
                   const float *istd, const float *g, const float *b, int n,
                   int C, size_t P)
{
    OMP_FOR((size_t)n * C * P)
    for (int ic = 0; ic < n * C; ic++) {
        int c = ic % C;
        const float mu = mean[c], is = istd[c], gc = g[c], bc = b[c];
        const float *xr = x + (size_t)ic * P;
        float *yr = y + (size_t)ic * P;
        if (xhat) {
            float *hr = xhat + (size_t)ic * P;
            for (size_t p = 0; p < P; p++) {
                float h = (xr[p] - mu) * is;
                hr[p] = h;
                yr[p] = gc * h + bc;
            }
        } else {
            for (size_t p = 0; p < P; p++) yr[p] = gc * ((xr[p] - mu) * is) + bc;
        }
    }
}

void l2rw__bn_tangent_train(float *ty, const float *tx, const float *xhat,
                            const float *istd, const float *g,
                            const float *tg, const float *tb, int n, int C,
                            size_t P)
{
    const double m = (double)n * (double)P;
    OMP_FOR((size_t)n * C * P)
    for (int c = 0; c < C; c++) {
        /* mean(tx) and mean(xhat tx) of this channel, then the tangent. */
        double st = 0.0, sht = 0.0;
        if (tx)
            for (int i = 0; i < n; i++) {
                const size_t o = ((size_t)i * C + c) * P;
                row_sum_dot(tx + o, xhat + o, P, &st, &sht);
            }
        const float mt = (float)(st / m), mht = (float)(sht / m);
        const float gi = g[c] * istd[c];
        const float dg = tg ? tg[c] : 0.0f, db = tb ? tb[c] : 0.0f;
        for (int i = 0; i < n; i++) {
            const size_t o = ((size_t)i * C + c) * P;
            const float *h = xhat + o;
            float *out = ty + o;
            if (tx) {
                const float *t = tx + o;
                for (size_t p = 0; p < P; p++)
                    out[p] = dg * h[p] + gi * ((t[p] - mt) - h[p] * mht) + db;
            } else {
                for (size_t p = 0; p < P; p++) out[p] = dg * h[p] + db;
            }
        }
    }
}

void l2rw__bn_tangent_eval(float *ty, const float *tx, const float *xhat,
                           const float *istd, const float *g,
                           const float *tg, const float *tb, int n, int C,
                           size_t P)
{
    OMP_FOR((size_t)n * C * P)
    for (int ic = 0; ic < n * C; ic++) {
        int c = ic % C;
        const float gi = g[c] * istd[c];
        const float dg = tg ? tg[c] : 0.0f, db = tb ? tb[c] : 0.0f;
        const size_t o = (size_t)ic * P;
        if (tx)
            for (size_t p = 0; p < P; p++)
                ty[o + p] = dg * xhat[o + p] + gi * tx[o + p] + db;
        else
            for (size_t p = 0; p < P; p++) ty[o + p] = dg * xhat[o + p] + db;
    }
}

void l2rw__bn_bwd(float *dx, float *dg, float *db, const float *dy,
                  const float *xhat, const float *istd, const float *g, int n,
                  int C, size_t P, int train, int acc)
{
    const double m = (double)n * (double)P;
    OMP_FOR((size_t)n * C * P)
    for (int c = 0; c < C; c++) {
        double sd = 0.0, sdh = 0.0;
        for (int i = 0; i < n; i++) {
            const size_t o = ((size_t)i * C + c) * P;
            row_sum_dot(dy + o, xhat + o, P, &sd, &sdh);
        }
        dg[c] = (float)sdh;
        db[c] = (float)sd;
        if (!dx) continue;
        const float gi = g[c] * istd[c];
        const float md = train ? (float)(sd / m) : 0.0f;
        const float mdh = train ? (float)(sdh / m) : 0.0f;
        for (int i = 0; i < n; i++) {
            const size_t o = ((size_t)i * C + c) * P;
            const float *d = dy + o, *h = xhat + o;
            float *out = dx + o;
            if (acc)
                for (size_t p = 0; p < P; p++) out[p] += gi * (d[p] - md - h[p] * mdh);
            else
                for (size_t p = 0; p < P; p++) out[p] = gi * (d[p] - md - h[p] * mdh);
        }
    }
}

/* ------------------------------------------------ the back end's extras */

void l2rw__copy_2d(float *dst, size_t ldd, const float *src, size_t lds,
                   int rows, size_t cols)
{
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * ldd, src + (size_t)r * lds,
               cols * sizeof *dst);
}

void l2rw__bn_eval_stats(float *mean, float *var, float *istd,
                         const float *rmean, const float *rvar, float eps,
                         int C)
{
    for (int c = 0; c < C; c++) {
        mean[c] = rmean[c];
        var[c] = rvar[c];
        istd[c] = 1.0f / sqrtf(var[c] + eps);
    }
}

void l2rw__bn_running(float *rmean, float *rvar, const float *mean,
                      const float *var, float mom, float unbias, int C)
{
    for (int c = 0; c < C; c++) {
        rmean[c] = (1.0f - mom) * rmean[c] + mom * mean[c];
        rvar[c] = (1.0f - mom) * rvar[c] + mom * var[c] * unbias;
    }
}

int l2rw__any_nonzero(const float *x, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (x[i] != 0.0f) return 1;
    return 0;
}
