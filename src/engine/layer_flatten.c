/* Flatten: x [n, c, h, w] -> y [n, c*h*w, 1, 1], the same memory.
 * Forward and tangent alias the input buffers (set by the net at
 * compile: no copy); backward dx = dy. */
#include "layers.h"

static l2rw_status flatten_setup(l2rw__node *nd, const l2rw__node *a,
                                 const l2rw__node *b, int max_batch,
                                 const l2rw__backend *be)
{
    (void)b, (void)max_batch, (void)be;
    nd->c = (int)a->size, nd->h = nd->w = 1;
    return L2RW_OK;
}

static void flatten_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    /* y and ty alias the input's y and ty unless the caller gave own
     * buffers (layer tests): then copy. */
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const size_t len = (size_t)ps->n * nd->size;
    if (nd->y != a->y) ps->be->copy(nd->y, a->y, len, 0);
    if (l2rw__want_tangent(ps, nd) && nd->ty != a->ty)
        ps->be->copy(nd->ty, l2rw__tin(ps, nd, 0), len, 0);
}

static void flatten_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    float *dx = l2rw__din(ps, nd, 0);
    if (dx) ps->be->copy(dx, nd->dy, (size_t)ps->n * nd->size, nd->acc[0]);
}

const l2rw__layer_ops l2rw__ops_flatten = {"flatten", 1, flatten_setup, NULL,
                                           flatten_forward, flatten_backward};
