/* Dense: x [n, in] (input flattened), W [out, in], b [out] -> y [n, out].
 * y = x W^T + b; tangent ty = tx W^T + x tW^T + tb as one GEMM on
 * [tx x] [W tW]^T; backward dW = dy^T x, db = sum_i dy, dx = dy W. */
#include "layers.h"

static l2rw_status dense_setup(l2rw__node *nd, const l2rw__node *a,
                               const l2rw__node *b, int max_batch,
                               const l2rw__backend *be)
{
    (void)b, (void)be;
    if (nd->units <= 0 || nd->units > L2RW_DIM_MAX)
        return l2rw__fail(L2RW_ERR_SHAPE, "dense: %d output units",
                          nd->units);
    nd->c = nd->units;
    nd->h = nd->w = 1;
    nd->n_params = (size_t)nd->units * a->size + (size_t)nd->units;
    /* Fused tangent: [tx x] [max_batch, 2 in] and [W tW] [out, 2 in]. */
    nd->n_ws = 2 * a->size * ((size_t)max_batch + (size_t)nd->units);
    return L2RW_OK;
}

static void dense_init(const l2rw__node *nd, float *p, float *st,
                       l2rw_rng *rng)
{
    (void)st;
    size_t in = nd->n_params / (size_t)nd->units - 1;
    l2rw__he_init(p, (size_t)nd->units * in, in, rng);
    /* biases start at 0 (buffer is zeroed) */
}

/* ty = tx W^T + x tW^T + tb (tx may be NULL: zero input tangent). */
static void dense_tangent(const l2rw__pass *ps, l2rw__node *nd,
                          const float *x, const float *tx, const float *W,
                          const float *tW, const float *tb, int in)
{
    const int n = ps->n, out = nd->units;
    const l2rw__backend *be = ps->be;
    if (!tx) {
        be->gemm(0, 1, n, out, in, 1.0f, x, in, tW, in, 0.0f, nd->ty, out);
    } else {
        const size_t in2 = 2 * (size_t)in;
        float *x2 = ps->ws, *w2 = ps->ws + (size_t)n * in2;
        be->copy_2d(x2, in2, tx, (size_t)in, n, (size_t)in);
        be->copy_2d(x2 + in, in2, x, (size_t)in, n, (size_t)in);
        be->copy_2d(w2, in2, W, (size_t)in, out, (size_t)in);
        be->copy_2d(w2 + in, in2, tW, (size_t)in, out, (size_t)in);
        be->gemm(0, 1, n, out, 2 * in, 1.0f, x2, 2 * in, w2, 2 * in, 0.0f,
                 nd->ty, out);
    }
    be->bias_add(nd->ty, tb, n, out, 1);
}

static void dense_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const int n = ps->n, out = nd->units, in = (int)a->size;
    const float *W = ps->params + nd->p_off, *b = W + (size_t)out * in;
    ps->be->gemm(0, 1, n, out, in, 1.0f, a->y, in, W, in, 0.0f, nd->y, out);
    ps->be->bias_add(nd->y, b, n, out, 1);
    if (l2rw__want_tangent(ps, nd)) {
        const float *tW = ps->tparams + nd->p_off;
        dense_tangent(ps, nd, a->y, l2rw__tin(ps, nd, 0), W, tW,
                      tW + (size_t)out * in, in);
    }
}

static void dense_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const int n = ps->n, out = nd->units, in = (int)a->size;
    const float *W = ps->params + nd->p_off;
    float *dW = ps->grads + nd->p_off, *db = dW + (size_t)out * in;
    if (ps->capture) {
        ps->be->copy(ps->capture + nd->cap_off, nd->dy, (size_t)n * out, 0);
    } else {
        ps->be->gemm(1, 0, out, in, n, 1.0f, nd->dy, out, a->y, in, 0.0f, dW,
                     in);
        ps->be->bias_grad(db, nd->dy, n, out, 1, 0);
    }
    float *dx = l2rw__din(ps, nd, 0);
    if (dx)
        ps->be->gemm(0, 0, n, in, out, 1.0f, nd->dy, out, W, in,
                     nd->acc[0] ? 1.0f : 0.0f, dx, in);
}

const l2rw__layer_ops l2rw__ops_dense = {"dense", 1, dense_setup, dense_init,
                                         dense_forward, dense_backward};
