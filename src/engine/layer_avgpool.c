/* Global average pool: x [n, c, h, w] -> y [n, c, 1, 1], y = mean over
 * the plane; tangent ty = mean(tx); backward dx = dy / (h w). */
#include "layers.h"

static l2rw_status avgpool_setup(l2rw__node *nd, const l2rw__node *a,
                                 const l2rw__node *b, int max_batch,
                                 const l2rw__backend *be)
{
    (void)b, (void)max_batch, (void)be;
    nd->c = a->c, nd->h = nd->w = 1;
    return L2RW_OK;
}

static void avgpool_tangent(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    ps->be->avgpool_fwd(nd->ty, l2rw__tin(ps, nd, 0), ps->n * a->c,
                        (size_t)a->h * a->w);
}

static void avgpool_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    ps->be->avgpool_fwd(nd->y, a->y, ps->n * a->c, (size_t)a->h * a->w);
    if (l2rw__want_tangent(ps, nd)) avgpool_tangent(ps, nd);
}

static void avgpool_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    float *dx = l2rw__din(ps, nd, 0);
    if (dx)
        ps->be->avgpool_bwd(dx, nd->dy, ps->n * a->c, (size_t)a->h * a->w,
                            nd->acc[0]);
}

const l2rw__layer_ops l2rw__ops_avgpool = {"avgpool", 1, avgpool_setup, NULL,
                                           avgpool_forward, avgpool_backward};
