/* Max pool: x [n, c, h, w] -> y [n, c, oh, ow], window k, stride s, no
 * padding, oh = (h - k) / s + 1; y = x[argmax] (first maximum on ties, NaN
 * propagates), tangent ty = tx[argmax], backward dx = scatter of dy to
 * argmax. */
#include "layers.h"

static l2rw_status maxpool_setup(l2rw__node *nd, const l2rw__node *a,
                                 const l2rw__node *b, int max_batch,
                                 const l2rw__backend *be)
{
    (void)b, (void)be;
    if (nd->k <= 0 || nd->stride <= 0 || nd->k > L2RW_DIM_MAX ||
        nd->stride > L2RW_DIM_MAX)
        return l2rw__fail(L2RW_ERR_SHAPE, "maxpool: kernel %d, stride %d",
                          nd->k, nd->stride);
    if (a->h < nd->k || a->w < nd->k)
        return l2rw__fail(L2RW_ERR_SHAPE,
                          "maxpool: window %d larger than input %dx%d", nd->k,
                          a->h, a->w);
    nd->c = a->c;
    nd->h = (a->h - nd->k) / nd->stride + 1;
    nd->w = (a->w - nd->k) / nd->stride + 1;
    nd->n_idx = (size_t)max_batch * nd->c * nd->h * nd->w;
    return L2RW_OK;
}

static void maxpool_tangent(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    ps->be->maxpool_gather(nd->ty, l2rw__tin(ps, nd, 0), nd->idx, ps->n * a->c,
                           (size_t)a->h * a->w, (size_t)nd->h * nd->w);
}

static void maxpool_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    ps->be->maxpool_fwd(nd->y, nd->idx, a->y, ps->n, a->c, a->h, a->w, nd->k,
                        nd->stride, nd->h, nd->w);
    if (l2rw__want_tangent(ps, nd)) maxpool_tangent(ps, nd);
}

static void maxpool_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    float *dx = l2rw__din(ps, nd, 0);
    if (dx)
        ps->be->maxpool_bwd(dx, nd->dy, nd->idx, ps->n * a->c,
                            (size_t)a->h * a->w, (size_t)nd->h * nd->w,
                            nd->acc[0]);
}

const l2rw__layer_ops l2rw__ops_maxpool = {"maxpool", 1, maxpool_setup, NULL,
                                           maxpool_forward, maxpool_backward};
