/* Conv2d: x [n, ic, h, w], W [oc, ic, k, k], b [oc] (optional) ->
 * y [n, oc, oh, ow], oh = (h + 2 pad - k) / stride + 1, zero padding.
 * As GEMMs on im2col columns cols(x) [K = ic k k, n P] (P = oh ow), over
 * chunks of examples that bound the workspace:
 *   forward  Y = W cols(x) (+ b)
 *   tangent  tY = [W tW] [cols(tx); cols(x)] (+ tb), one GEMM fused with
 *            the forward (cols(x) is built once for both)
 *   backward dW = sum dY cols(x)^T, db = sum dY, dx = col2im(W^T dY). */
#include <string.h>

#include "kernels.h"
#include "layers.h"

/* Workspace target per chunk (floats): large enough for efficient GEMMs,
 * small enough to stay bounded for wide networks. */
enum { CONV_WS_TARGET = 8 << 20 };

static l2rw_status conv_setup(l2rw__node *nd, const l2rw__node *a,
                              const l2rw__node *b, int max_batch)
{
    (void)b;
    const int k = nd->k, s = nd->stride, pad = nd->pad, oc = nd->units;
    if (oc <= 0 || k <= 0 || s <= 0 || pad < 0)
        return l2rw__fail(L2RW_ERR_SHAPE,
                          "conv: out channels %d, kernel %d, stride %d, "
                          "pad %d",
                          oc, k, s, pad);
    if (a->h + 2 * pad < k || a->w + 2 * pad < k)
        return l2rw__fail(L2RW_ERR_SHAPE,
                          "conv: kernel %d larger than padded input %dx%d "
                          "(pad %d)",
                          k, a->h, a->w, pad);
    nd->c = oc;
    nd->h = (a->h + 2 * pad - k) / s + 1;
    nd->w = (a->w + 2 * pad - k) / s + 1;
    const size_t K = (size_t)a->c * k * k, P = (size_t)nd->h * nd->w;
    nd->n_params = (size_t)oc * K + (nd->bias ? (size_t)oc : 0);
    /* Per example: stacked columns 2K x P, Y and tY oc x P each. */
    const size_t per = P * (2 * K + 2 * (size_t)oc);
    size_t chunk = CONV_WS_TARGET / per;
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)max_batch) chunk = (size_t)max_batch;
    nd->chunk = (int)chunk;
    nd->n_ws = (size_t)oc * 2 * K + chunk * per;
    return L2RW_OK;
}

static void conv_init(const l2rw__node *nd, float *p, float *st,
                      l2rw_rng *rng)
{
    (void)st;
    const size_t nw = nd->n_params - (nd->bias ? (size_t)nd->units : 0);
    l2rw__he_init(p, nw, nw / (size_t)nd->units, rng);
}

/* Geometry shared by the passes. */
typedef struct {
    int ic, ih, iw, oc, k, s, pad, oh, ow, K;
    size_t P, in_size;
} conv_geom;

static conv_geom conv_geometry(const l2rw__node *nd, const l2rw__node *a)
{
    conv_geom g = {a->c, a->h, a->w, nd->units, nd->k, nd->stride, nd->pad,
                   nd->h, nd->w, a->c * nd->k * nd->k,
                   (size_t)nd->h * nd->w, a->size};
    return g;
}

/* Tangent of one chunk of nc examples starting at i0, given the columns:
 * cols2 = [cols(tx); cols(x)] when tx != 0, else colsx alone. */
static void conv_tangent(const l2rw__pass *ps, l2rw__node *nd,
                         const conv_geom *g, int i0, int nc, const float *w2,
                         const float *cols2, const float *colsx, float *tY)
{
    const float *tW = ps->tparams + nd->p_off;
    const float *tb = nd->bias ? tW + (size_t)g->oc * g->K : NULL;
    const int ld = nc * (int)g->P;
    if (cols2)
        l2rw__gemm(0, 0, g->oc, ld, 2 * g->K, 1.0f, w2, 2 * g->K, cols2, ld,
                   0.0f, tY, ld);
    else
        l2rw__gemm(0, 0, g->oc, ld, g->K, 1.0f, tW, g->K, colsx, ld, 0.0f,
                   tY, ld);
    l2rw__cpn_to_nchw(nd->ty + (size_t)i0 * nd->size, tY, ld, nc, g->oc,
                      g->P, tb);
}

static void conv_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const conv_geom g = conv_geometry(nd, a);
    const float *W = ps->params + nd->p_off;
    const float *b = nd->bias ? W + (size_t)g.oc * g.K : NULL;
    const int tan = l2rw__want_tangent(ps, nd);
    const float *tx = tan ? l2rw__tin(ps, nd, 0) : NULL;
    const size_t cap = (size_t)nd->chunk * g.P;
    float *w2 = ps->ws, *cols = w2 + (size_t)g.oc * 2 * g.K;
    float *Y = cols + 2 * (size_t)g.K * cap, *tY = Y + (size_t)g.oc * cap;
    if (tx) { /* [W tW] for the fused tangent GEMM */
        const float *tW = ps->tparams + nd->p_off;
        for (int o = 0; o < g.oc; o++) {
            memcpy(w2 + (size_t)o * 2 * g.K, W + (size_t)o * g.K,
                   (size_t)g.K * sizeof *w2);
            memcpy(w2 + (size_t)o * 2 * g.K + g.K, tW + (size_t)o * g.K,
                   (size_t)g.K * sizeof *w2);
        }
    }
    for (int i0 = 0; i0 < ps->n; i0 += nd->chunk) {
        const int nc = ps->n - i0 < nd->chunk ? ps->n - i0 : nd->chunk;
        const int ld = nc * (int)g.P;
        /* With an input tangent, cols(tx) goes on top of cols(x). */
        float *colsx = tx ? cols + (size_t)g.K * ld : cols;
        l2rw__im2col(colsx, ld, a->y + (size_t)i0 * g.in_size, nc, g.ic,
                     g.ih, g.iw, g.k, g.s, g.pad, g.oh, g.ow);
        l2rw__gemm(0, 0, g.oc, ld, g.K, 1.0f, W, g.K, colsx, ld, 0.0f, Y, ld);
        l2rw__cpn_to_nchw(nd->y + (size_t)i0 * nd->size, Y, ld, nc, g.oc,
                          g.P, b);
        if (!tan) continue;
        if (tx)
            l2rw__im2col(cols, ld, tx + (size_t)i0 * g.in_size, nc, g.ic,
                         g.ih, g.iw, g.k, g.s, g.pad, g.oh, g.ow);
        conv_tangent(ps, nd, &g, i0, nc, w2, tx ? cols : NULL, colsx, tY);
    }
}

static void conv_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const conv_geom g = conv_geometry(nd, a);
    const float *W = ps->params + nd->p_off;
    float *dW = ps->grads + nd->p_off;
    float *dx = l2rw__din(ps, nd, 0);
    const size_t cap = (size_t)nd->chunk * g.P;
    float *cols = ps->ws, *dY = cols + (size_t)g.K * cap;
    for (int i0 = 0; i0 < ps->n; i0 += nd->chunk) {
        const int nc = ps->n - i0 < nd->chunk ? ps->n - i0 : nd->chunk;
        const int ld = nc * (int)g.P;
        l2rw__im2col(cols, ld, a->y + (size_t)i0 * g.in_size, nc, g.ic, g.ih,
                     g.iw, g.k, g.s, g.pad, g.oh, g.ow);
        l2rw__nchw_to_cpn(dY, ld, nd->dy + (size_t)i0 * nd->size, nc, g.oc,
                          g.P);
        /* Chunks accumulate into dW in a fixed order. */
        l2rw__gemm(0, 1, g.oc, g.K, ld, 1.0f, dY, ld, cols, ld,
                   i0 ? 1.0f : 0.0f, dW, g.K);
        if (!dx) continue;
        l2rw__gemm(1, 0, g.K, ld, g.oc, 1.0f, W, g.K, dY, ld, 0.0f, cols, ld);
        l2rw__col2im(dx + (size_t)i0 * g.in_size, cols, ld, nc, g.ic, g.ih,
                     g.iw, g.k, g.s, g.pad, g.oh, g.ow, nd->acc[0]);
    }
    if (nd->bias)
        l2rw__bias_grad(dW + (size_t)g.oc * g.K, nd->dy, ps->n, g.oc, g.P, 0);
}

const l2rw__layer_ops l2rw__ops_conv = {"conv", 1, conv_setup, conv_init,
                                        conv_forward, conv_backward};
