/* The arithmetic of the engine (see kernels.h): CBLAS GEMM, im2col and
 * col2im, pooling, batch-norm statistics, element-wise loops, OpenMP with
 * static schedules (results depend only on the thread count). */
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "common.h"

/* Below this many floats an OpenMP region costs more than it saves. */
enum { PAR_MIN = 1 << 15 };

#define L2RW_STR(x) #x
#define OMP_FOR(len)                                                         \
    _Pragma(L2RW_STR(omp parallel for schedule(static) num_threads(l2rw__nt(len))))

static int l2rw__nt(size_t work) { return work < PAR_MIN ? 1 : l2rw_get_threads(); }

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
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
                ldb, beta, c, ldc);
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

void l2rw__fill(float *dst, float v, size_t len)
{
    OMP_FOR(len)
    for (size_t i = 0; i < len; i++) dst[i] = v;
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
        for (int i = 0; i < n; i++) {
            const float *row = dy + ((size_t)i * C + c) * P;
            for (size_t p = 0; p < P; p++) s += row[p];
        }
        db[c] = acc ? db[c] + (float)s : (float)s;
    }
}

/* ------------------------------------------------------------ im2col */

void l2rw__im2col(float *cols, int ld, const float *x, int n, int c, int h,
                  int w, int k, int stride, int pad, int oh, int ow)
{
    const size_t P = (size_t)oh * ow;
    OMP_FOR((size_t)n * c * k * k * P)
    for (int ic = 0; ic < n * c; ic++) {
        int i = ic / c, ch = ic % c;
        const float *xp = x + (size_t)ic * h * w;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = cols + ((size_t)(ch * k + ky) * k + kx) * ld +
                             (size_t)i * P;
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * stride - pad + ky;
                    float *out = row + (size_t)oy * ow;
                    if (iy < 0 || iy >= h) {
                        memset(out, 0, (size_t)ow * sizeof *out);
                        continue;
                    }
                    const float *in = xp + (size_t)iy * w;
                    if (stride == 1) {
                        /* Columns ox with 0 <= ox - pad + kx < w. */
                        int lo = pad - kx, hi = w + pad - kx;
                        if (lo < 0) lo = 0;
                        if (hi > ow) hi = ow;
                        if (lo > ow) lo = ow;
                        if (hi < lo) hi = lo;
                        for (int ox = 0; ox < lo; ox++) out[ox] = 0.0f;
                        if (hi > lo)
                            memcpy(out + lo, in + lo - pad + kx,
                                   (size_t)(hi - lo) * sizeof *out);
                        for (int ox = hi; ox < ow; ox++) out[ox] = 0.0f;
                    } else {
                        for (int ox = 0; ox < ow; ox++) {
                            int ix = ox * stride - pad + kx;
                            out[ox] = (ix >= 0 && ix < w) ? in[ix] : 0.0f;
                        }
                    }
                }
            }
    }
}

void l2rw__col2im(float *dx, const float *cols, int ld, int n, int c, int h,
                  int w, int k, int stride, int pad, int oh, int ow, int acc)
{
    const size_t P = (size_t)oh * ow;
    /* One plane per iteration: each thread owns its planes, and the
     * scatter order within a plane is fixed. */
    OMP_FOR((size_t)n * c * k * k * P)
    for (int ic = 0; ic < n * c; ic++) {
        int i = ic / c, ch = ic % c;
        float *xp = dx + (size_t)ic * h * w;
        if (!acc) memset(xp, 0, (size_t)h * w * sizeof *xp);
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *row = cols +
                                   ((size_t)(ch * k + ky) * k + kx) * ld +
                                   (size_t)i * P;
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    const float *in = row + (size_t)oy * ow;
                    float *out = xp + (size_t)iy * w;
                    for (int ox = 0; ox < ow; ox++) {
                        int ix = ox * stride - pad + kx;
                        if (ix >= 0 && ix < w) out[ix] += in[ox];
                    }
                }
            }
    }
}

void l2rw__cpn_to_nchw(float *y, const float *Y, int ld, int n, int C,
                       size_t P, const float *b)
{
    OMP_FOR((size_t)n * C * P)
    for (int ic = 0; ic < n * C; ic++) {
        int i = ic / C, c = ic % C;
        const float *src = Y + (size_t)c * ld + (size_t)i * P;
        float *dst = y + (size_t)ic * P;
        if (b) {
            float v = b[c];
            for (size_t p = 0; p < P; p++) dst[p] = src[p] + v;
        } else {
            memcpy(dst, src, P * sizeof *dst);
        }
    }
}

void l2rw__nchw_to_cpn(float *Y, int ld, const float *y, int n, int C,
                       size_t P)
{
    OMP_FOR((size_t)n * C * P)
    for (int ic = 0; ic < n * C; ic++) {
        int i = ic / C, c = ic % C;
        memcpy(Y + (size_t)c * ld + (size_t)i * P, y + (size_t)ic * P,
               P * sizeof *Y);
    }
}

/* ------------------------------------------------------------ pooling */

void l2rw__maxpool_fwd(float *y, int32_t *idx, const float *x, int n, int c,
                       int h, int w, int k, int s, int oh, int ow)
{
    const int nc = n * c;
    OMP_FOR((size_t)nc * h * w)
    for (int ic = 0; ic < nc; ic++) {
        const float *xp = x + (size_t)ic * h * w;
        float *yp = y + (size_t)ic * oh * ow;
        int32_t *ip = idx + (size_t)ic * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int best = oy * s * w + ox * s;
                float bv = xp[best];
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int j = (oy * s + ky) * w + ox * s + kx;
                        /* A NaN wins, so it propagates instead of being
                         * hidden behind a finite maximum. */
                        if (xp[j] > bv || (xp[j] != xp[j] && bv == bv)) {
                            bv = xp[j];
                            best = j;
                        }
                    }
                yp[oy * ow + ox] = bv;
                ip[oy * ow + ox] = best;
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
        const float *xp = x + (size_t)ic * P;
        double s = 0.0;
        for (size_t p = 0; p < P; p++) s += xp[p];
        y[ic] = (float)(s / (double)P);
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

void l2rw__bn_stats(float *mean, float *var, const float *x, int n, int C,
                    size_t P)
{
    const double m = (double)n * (double)P;
    OMP_FOR((size_t)n * C * P)
    for (int c = 0; c < C; c++) {
        double s = 0.0, q = 0.0;
        for (int i = 0; i < n; i++) {
            const float *row = x + ((size_t)i * C + c) * P;
            for (size_t p = 0; p < P; p++) s += row[p];
        }
        double mu = s / m;
        /* Two passes: no cancellation for large means. */
        for (int i = 0; i < n; i++) {
            const float *row = x + ((size_t)i * C + c) * P;
            for (size_t p = 0; p < P; p++) {
                double d = row[p] - mu;
                q += d * d;
            }
        }
        mean[c] = (float)mu;
        var[c] = (float)(q / m);
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
        float *hr = xhat ? xhat + (size_t)ic * P : NULL;
        for (size_t p = 0; p < P; p++) {
            float h = (xr[p] - mu) * is;
            if (hr) hr[p] = h;
            yr[p] = gc * h + bc;
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
                const float *t = tx + ((size_t)i * C + c) * P;
                const float *h = xhat + ((size_t)i * C + c) * P;
                for (size_t p = 0; p < P; p++) {
                    st += t[p];
                    sht += (double)h[p] * t[p];
                }
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
        for (size_t p = 0; p < P; p++)
            ty[o + p] = dg * xhat[o + p] + (tx ? gi * tx[o + p] : 0.0f) + db;
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
            for (size_t p = 0; p < P; p++) {
                sd += dy[o + p];
                sdh += (double)dy[o + p] * xhat[o + p];
            }
        }
        dg[c] = (float)sdh;
        db[c] = (float)sd;
        if (!dx) continue;
        const float gi = g[c] * istd[c];
        const float md = train ? (float)(sd / m) : 0.0f;
        const float mdh = train ? (float)(sdh / m) : 0.0f;
        for (int i = 0; i < n; i++) {
            const size_t o = ((size_t)i * C + c) * P;
            for (size_t p = 0; p < P; p++) {
                float v = gi * (dy[o + p] - md - xhat[o + p] * mdh);
                dx[o + p] = acc ? dx[o + p] + v : v;
            }
        }
    }
}
