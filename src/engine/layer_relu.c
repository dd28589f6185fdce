/* ReLU: x [n, c, h, w] -> y [n, c, h, w]. y = max(x, 0);
 * tangent ty = tx [x > 0]; backward dx = dy [x > 0] ([y > 0] = [x > 0]). */
#include "layers.h"

static l2rw_status relu_setup(l2rw__node *nd, const l2rw__node *a,
                              const l2rw__node *b, int max_batch,
                              const l2rw__backend *be)
{
    (void)b, (void)max_batch, (void)be;
    nd->c = a->c, nd->h = a->h, nd->w = a->w;
    return L2RW_OK;
}

static void relu_tangent(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    ps->be->relu_mask(nd->ty, l2rw__tin(ps, nd, 0), a->y,
                      (size_t)ps->n * nd->size, 0);
}

static void relu_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    ps->be->relu_fwd(nd->y, a->y, (size_t)ps->n * nd->size);
    if (l2rw__want_tangent(ps, nd)) relu_tangent(ps, nd);
}

static void relu_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    float *dx = l2rw__din(ps, nd, 0);
    if (dx)
        ps->be->relu_mask(dx, nd->dy, nd->y, (size_t)ps->n * nd->size,
                          nd->acc[0]);
}

const l2rw__layer_ops l2rw__ops_relu = {"relu", 1, relu_setup, NULL,
                                        relu_forward, relu_backward};
