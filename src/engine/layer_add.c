/* Residual add: a [n, c, h, w], b [n, c, h, w] -> y [n, c, h, w].
 * y = a + b; tangent ty = ta + tb; backward da = dy, db = dy. */
#include "layers.h"

static l2rw_status add_setup(l2rw__node *nd, const l2rw__node *a,
                             const l2rw__node *b, int max_batch,
                             const l2rw__backend *be)
{
    (void)max_batch, (void)be;
    if (a->c != b->c || a->h != b->h || a->w != b->w)
        return l2rw__fail(L2RW_ERR_SHAPE,
                          "add: shapes %dx%dx%d and %dx%dx%d differ", a->c,
                          a->h, a->w, b->c, b->h, b->w);
    nd->c = a->c, nd->h = a->h, nd->w = a->w;
    return L2RW_OK;
}

static void add_tangent(const l2rw__pass *ps, l2rw__node *nd)
{
    const float *ta = l2rw__tin(ps, nd, 0), *tb = l2rw__tin(ps, nd, 1);
    const size_t len = (size_t)ps->n * nd->size;
    if (ta && tb)
        ps->be->add(nd->ty, ta, tb, len);
    else /* one of them is zero (not both: then this node would be too) */
        ps->be->copy(nd->ty, ta ? ta : tb, len, 0);
}

static void add_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    ps->be->add(nd->y, l2rw__in(ps, nd, 0)->y, l2rw__in(ps, nd, 1)->y,
                (size_t)ps->n * nd->size);
    if (l2rw__want_tangent(ps, nd)) add_tangent(ps, nd);
}

static void add_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    for (int s = 0; s < 2; s++) {
        float *dx = l2rw__din(ps, nd, s);
        if (dx) ps->be->copy(dx, nd->dy, (size_t)ps->n * nd->size, nd->acc[s]);
    }
}

const l2rw__layer_ops l2rw__ops_add = {"add", 2, add_setup, NULL,
                                       add_forward, add_backward};
