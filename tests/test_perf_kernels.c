/* The fast paths of kernels.c against plain reference loops:
 *  - convolutions whose output has the input's size (stride 1, 2 pad =
 *    k - 1), which use shifted flat copies with column masks instead of
 *    padded planes: forward, fused tangent (with and without an input
 *    tangent) and backward (dW, db, dx overwritten and accumulated),
 *    against direct convolution sums in double, on planes down to 1x1;
 *  - 2x2 stride-2 max pooling, whose rows go four outputs at a time:
 *    values (bit for bit) and argmax indices against the scalar rules
 *    (first maximum on ties, a NaN wins, of two NaNs in a row the
 *    second), on widths that exercise the vector blocks and the tails;
 *  - the fused batch-norm statistics and normalisation against the two
 *    separate kernels, bit for bit.
 * The conv tolerances (1e-5 relative to the largest term) cover float32
 * GEMM rounding; a wrong tap or a leaked padding column is O(1). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "falloc.h"
#include "kernels.h"

static void fill(l2rw_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)l2rw_rng_normal(r);
}

/* Input value of a tap, 0 in the padding. */
static double at(const float *x, const l2rw__conv_shape *s, int i, int c,
                 int iy, int ix)
{
    if (iy < 0 || iy >= s->ih || ix < 0 || ix >= s->iw) return 0.0;
    return x[(((size_t)i * s->ic + c) * s->ih + iy) * s->iw + ix];
}

/* Direct convolution y[i, o, oy, ox] in double (b may be NULL). */
static double ref_y(const l2rw__conv_shape *s, const float *x, const float *W,
                    const float *b, int i, int o, int oy, int ox)
{
    double v = b ? b[o] : 0.0;
    for (int c = 0; c < s->ic; c++)
        for (int ky = 0; ky < s->k; ky++)
            for (int kx = 0; kx < s->k; kx++)
                v += W[((size_t)(o * s->ic + c) * s->k + ky) * s->k + kx] *
                     at(x, s, i, c, oy * s->stride + ky - s->pad,
                        ox * s->stride + kx - s->pad);
    return v;
}

static double max_abs(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

typedef struct {
    l2rw__conv_shape s;
    int n;
    size_t in_sz, out_sz, nw;
    float *x, *tx, *W, *tW, *b, *tb, *y, *ty, *dy, *dW, *db, *dx, *ws;
} conv_case;

static void case_init(conv_case *C, l2rw_rng *r, int ic, int h, int w,
                      int oc, int k, int n)
{
    const int pad = (k - 1) / 2;
    l2rw__conv_shape s = {ic, h, w, oc, k, 1, pad, h, w, 2};
    C->s = s;
    C->n = n;
    C->in_sz = (size_t)ic * h * w;
    C->out_sz = (size_t)oc * h * w;
    C->nw = (size_t)oc * ic * k * k;
    float **bufs[] = {&C->x, &C->tx, &C->W, &C->tW, &C->b, &C->tb, &C->y,
                      &C->ty, &C->dy, &C->dW, &C->db, &C->dx};
    const size_t len[] = {n * C->in_sz, n * C->in_sz, C->nw, C->nw,
                          (size_t)oc, (size_t)oc, n * C->out_sz,
                          n * C->out_sz, n * C->out_sz, C->nw, (size_t)oc,
                          n * C->in_sz};
    for (int j = 0; j < 12; j++) {
        *bufs[j] = falloc(len[j]);
        fill(r, *bufs[j], len[j]);
    }
    C->ws = falloc(l2rw__conv_ws(&C->s));
}

static void case_free(conv_case *C)
{
    float *bufs[] = {C->x, C->tx, C->W, C->tW, C->b, C->tb, C->y,
                     C->ty, C->dy, C->dW, C->db, C->dx, C->ws};
    for (int j = 0; j < 13; j++) free(bufs[j]);
}

/* y and ty (tx given or NULL) against the direct sums. */
static void check_forward(conv_case *C, int with_tx, const char *what)
{
    const l2rw__conv_shape *s = &C->s;
    l2rw__conv_fwd(s, C->n, C->y, C->ty, C->x, with_tx ? C->tx : NULL, C->W,
                   C->b, C->tW, C->tb, C->ws);
    const double sy = max_abs(C->y, C->n * C->out_sz) + 1.0;
    const double st = max_abs(C->ty, C->n * C->out_sz) + 1.0;
    double ey = 0.0, et = 0.0;
    for (int i = 0; i < C->n; i++)
        for (int o = 0; o < s->oc; o++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    const size_t at_o = (((size_t)i * s->oc + o) * s->oh + oy) * s->ow + ox;
                    double t = ref_y(s, C->x, C->tW, C->tb, i, o, oy, ox);
                    if (with_tx) t += ref_y(s, C->tx, C->W, NULL, i, o, oy, ox);
                    ey = fmax(ey, fabs(C->y[at_o] - ref_y(s, C->x, C->W, C->b, i, o, oy, ox)));
                    et = fmax(et, fabs(C->ty[at_o] - t));
                }
    CHECK(ey <= 1e-5 * sy, "%s: forward error %g (scale %g)", what, ey, sy);
    CHECK(et <= 1e-5 * st, "%s: tangent error %g (scale %g)", what, et, st);
}

/* dW, db and dx (overwritten, then accumulated onto dx0) against the
 * direct sums. */
static void check_backward(conv_case *C, int acc, const char *what)
{
    const l2rw__conv_shape *s = &C->s;
    const size_t nin = C->n * C->in_sz;
    float *dx0 = falloc(nin);
    memcpy(dx0, C->dx, nin * sizeof *dx0);
    l2rw__conv_bwd(s, C->n, C->dW, C->db, C->dx, C->dy, C->x, C->W, acc,
                   C->ws);
    double ew = 0.0, eb = 0.0, ex = 0.0;
    const int k = s->k;
    for (int o = 0; o < s->oc; o++) {
        double sb = 0.0;
        for (int i = 0; i < C->n; i++)
            for (size_t p = 0; p < (size_t)s->oh * s->ow; p++)
                sb += C->dy[((size_t)i * s->oc + o) * s->oh * s->ow + p];
        eb = fmax(eb, fabs(C->db[o] - sb));
        for (int c = 0; c < s->ic; c++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    double v = 0.0;
                    for (int i = 0; i < C->n; i++)
                        for (int oy = 0; oy < s->oh; oy++)
                            for (int ox = 0; ox < s->ow; ox++)
                                v += C->dy[(((size_t)i * s->oc + o) * s->oh + oy) * s->ow + ox] *
                                     at(C->x, s, i, c, oy + ky - s->pad, ox + kx - s->pad);
                    ew = fmax(ew, fabs(C->dW[((size_t)(o * s->ic + c) * k + ky) * k + kx] - v));
                }
    }
    for (int i = 0; i < C->n; i++)
        for (int c = 0; c < s->ic; c++)
            for (int iy = 0; iy < s->ih; iy++)
                for (int ix = 0; ix < s->iw; ix++) {
                    const size_t xi = (((size_t)i * s->ic + c) * s->ih + iy) * s->iw + ix;
                    double v = acc ? dx0[xi] : 0.0;
                    for (int o = 0; o < s->oc; o++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                const int oy = iy - ky + s->pad, ox = ix - kx + s->pad;
                                if (oy < 0 || oy >= s->oh || ox < 0 || ox >= s->ow) continue;
                                v += C->W[((size_t)(o * s->ic + c) * k + ky) * k + kx] *
                                     C->dy[(((size_t)i * s->oc + o) * s->oh + oy) * s->ow + ox];
                            }
                    ex = fmax(ex, fabs(C->dx[xi] - v));
                }
    const double sw = max_abs(C->dW, C->nw) + 1.0, sx = max_abs(C->dx, nin) + 1.0;
    CHECK(ew <= 1e-5 * sw, "%s: dW error %g", what, ew);
    CHECK(eb <= 1e-5 * (max_abs(C->db, (size_t)s->oc) + 1.0), "%s: db error %g", what, eb);
    CHECK(ex <= 1e-5 * sx, "%s: dx (acc %d) error %g", what, acc, ex);
    free(dx0);
}

static void check_conv_same(void)
{
    /* ic, h, w, oc, k, n */
    static const int cases[][6] = {
        {3, 8, 8, 4, 3, 3},  {2, 1, 1, 3, 3, 2},  {1, 1, 5, 2, 3, 2},
        {2, 7, 3, 2, 3, 3},  {2, 6, 9, 3, 5, 2},  {1, 2, 2, 2, 5, 2},
        {3, 4, 5, 2, 1, 3},  {4, 16, 16, 5, 3, 2}, {2, 3, 17, 3, 3, 4},
    };
    l2rw_rng r;
    l2rw_rng_seed(&r, 77);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *c = cases[t];
        char what[96];
        snprintf(what, sizeof what, "same conv %dx%dx%d k%d oc%d n%d", c[0],
                 c[1], c[2], c[4], c[3], c[5]);
        conv_case C;
        case_init(&C, &r, c[0], c[1], c[2], c[3], c[4], c[5]);
        check_forward(&C, 1, what);
        check_forward(&C, 0, what);
        check_backward(&C, 0, what);
        check_backward(&C, 1, what);
        case_free(&C);
    }
}

/* --------------------------------------------------------------- pooling */

/* The rules of 2x2 stride-2 pooling, one window at a time. */
static void ref_pool22(float *y, int32_t *idx, const float *x, int h, int w)
{
    const int oh = (h - 2) / 2 + 1, ow = (w - 2) / 2 + 1;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            const int i0 = 2 * oy * w + 2 * ox, i1 = i0 + w;
            float a = x[i0], b = x[i0 + 1], c = x[i1], d = x[i1 + 1];
            int j0 = i0, j1 = i1;
            float v0 = a, v1 = c;
            if (b > a || isnan(b)) v0 = b, j0 = i0 + 1;
            if (d > c || isnan(d)) v1 = d, j1 = i1 + 1;
            const int take1 = v1 > v0 || (isnan(v1) && !isnan(v0));
            y[oy * ow + ox] = take1 ? v1 : v0;
            idx[oy * ow + ox] = take1 ? j1 : j0;
        }
}

static void test_pool22(void)
{
    l2rw_rng r;
    l2rw_rng_seed(&r, 78);
    const float vals[] = {0.0f, -0.0f, 1.0f, 2.0f, -1.0f, NAN};
    for (int w = 2; w <= 21; w++)
        for (int h = 2; h <= 5; h++) {
            const int planes = 3, oh = (h - 2) / 2 + 1, ow = (w - 2) / 2 + 1;
            const size_t P = (size_t)h * w, Q = (size_t)oh * ow;
            float *x = falloc(planes * P), *y = falloc(planes * Q), *ry = falloc(Q);
            int32_t *idx = l2rw__aalloc(planes * Q, sizeof *idx);
            int32_t *ridx = l2rw__aalloc(Q, sizeof *ridx);
            if (!idx || !ridx) exit(2);
            /* Mostly ties, some NaN (fewer in the first plane). */
            for (size_t i = 0; i < planes * P; i++) {
                int v = (int)(l2rw_rng_uniform(&r) * (i < P ? 5 : 6));
                x[i] = vals[v];
            }
            l2rw__maxpool_fwd(y, idx, x, 1, planes, h, w, 2, 2, oh, ow);
            int bad = 0;
            for (int p = 0; p < planes; p++) {
                ref_pool22(ry, ridx, x + p * P, h, w);
                for (size_t q = 0; q < Q; q++) {
                    const float a = y[p * Q + q], b = ry[q];
                    uint32_t ua, ub;
                    memcpy(&ua, &a, sizeof ua);
                    memcpy(&ub, &b, sizeof ub);
                    if (ua != ub || idx[p * Q + q] != ridx[q]) bad++;
                }
            }
            CHECK(bad == 0, "pool 2x2 on %dx%d: %d outputs differ", h, w, bad);
            free(x), free(y), free(ry), free(idx), free(ridx);
        }
}

/* ----------------------------------------------------------- batch norm */

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

static void check_bn_stats_norm(void)
{
    static const int cases[][3] = {{3, 4, 1}, {2, 3, 17}, {5, 2, 64}, {1, 16, 100}};
    l2rw_rng r;
    l2rw_rng_seed(&r, 79);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int n = cases[t][0], C = cases[t][1];
        const size_t P = (size_t)cases[t][2], len = (size_t)n * C * P;
        float *x = falloc(len), *y1 = falloc(len), *y2 = falloc(len);
        float *h1 = falloc(len), *h2 = falloc(len), *g = falloc(C), *b = falloc(C);
        float *st1 = falloc(3 * (size_t)C), *st2 = falloc(3 * (size_t)C);
        fill(&r, x, len);
        for (size_t i = 0; i < len; i++) x[i] = 3.0f + 2.0f * x[i];
        fill(&r, g, C);
        fill(&r, b, C);
        l2rw__bn_stats(st1, st1 + C, x, n, C, P);
        for (int c = 0; c < C; c++) st1[2 * C + c] = 1.0f / sqrtf(st1[C + c] + 1e-5f);
        l2rw__bn_norm(y1, h1, x, st1, st1 + 2 * C, g, b, n, C, P);
        l2rw__bn_stats_norm(y2, h2, st2, st2 + C, st2 + 2 * C, x, g, b, 1e-5f,
                            n, C, P);
        CHECK(same_bits(st1, st2, 3 * (size_t)C) && same_bits(y1, y2, len) &&
                  same_bits(h1, h2, len),
              "bn stats+norm fused == separate (n %d, C %d, P %zu)", n, C, P);
        free(x), free(y1), free(y2), free(h1), free(h2), free(g), free(b);
        free(st1), free(st2);
    }
}

/* The kernels split work over threads: each is checked with one and two. */
static void test_conv_same_2_threads(void)
{
    l2rw_set_threads(2);
    check_conv_same();
}

static void test_conv_same_1_thread(void)
{
    l2rw_set_threads(1);
    check_conv_same();
}

static void test_bn_stats_norm_1_thread(void)
{
    l2rw_set_threads(1);
    check_bn_stats_norm();
}

static void test_bn_stats_norm_2_threads(void)
{
    l2rw_set_threads(2);
    check_bn_stats_norm();
}

int main(void)
{
    RUN(test_conv_same_2_threads);
    RUN(test_conv_same_1_thread);
    RUN(test_pool22); /* one thread */
    RUN(test_bn_stats_norm_1_thread);
    RUN(test_bn_stats_norm_2_threads);
    return CHECK_DONE("test_perf_kernels");
}
