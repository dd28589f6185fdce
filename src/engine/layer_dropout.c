/* Inverted dropout: x [n, c, h, w] -> y [n, c, h, w], y = x * mask with
 * mask 0 (probability p) or 1/(1-p), a pure function of (dropout key,
 * node id, example, unit); tangent ty = tx * mask; backward dx = dy * mask.
 * The mask of the forward is kept for the tangent and backward of the
 * same step. Identity in eval mode or when p = 0. */
#include "layers.h"

static l2rw_status dropout_setup(l2rw__node *nd, const l2rw__node *a,
                                 const l2rw__node *b, int max_batch,
                                 const l2rw__backend *be)
{
    (void)b, (void)be;
    if (!(nd->p >= 0.0f && nd->p < 1.0f))
        return l2rw__fail(L2RW_ERR_ARG, "dropout: rate %g not in [0, 1)",
                          (double)nd->p);
    nd->c = a->c, nd->h = a->h, nd->w = a->w;
    nd->n_aux = (size_t)max_batch * a->size;
    return L2RW_OK;
}

static int dropout_active(const l2rw__pass *ps, const l2rw__node *nd)
{
    return ps->mode != L2RW_MODE_EVAL && nd->p > 0.0f;
}

static void dropout_tangent(const l2rw__pass *ps, l2rw__node *nd)
{
    const size_t len = (size_t)ps->n * nd->size;
    if (dropout_active(ps, nd))
        ps->be->mul(nd->ty, l2rw__tin(ps, nd, 0), nd->aux, len, 0);
    else
        ps->be->copy(nd->ty, l2rw__tin(ps, nd, 0), len, 0);
}

static void dropout_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const size_t len = (size_t)ps->n * nd->size;
    if (dropout_active(ps, nd)) {
        ps->be->dropout_mask(nd->aux, ps->dropout_key,
                             (uint64_t)(nd - ps->nodes), ps->n, nd->size,
                             nd->p);
        ps->be->mul(nd->y, a->y, nd->aux, len, 0);
    } else {
        ps->be->copy(nd->y, a->y, len, 0);
    }
    if (l2rw__want_tangent(ps, nd)) dropout_tangent(ps, nd);
}

static void dropout_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    float *dx = l2rw__din(ps, nd, 0);
    const size_t len = (size_t)ps->n * nd->size;
    if (!dx) return;
    if (dropout_active(ps, nd))
        ps->be->mul(dx, nd->dy, nd->aux, len, nd->acc[0]);
    else
        ps->be->copy(dx, nd->dy, len, nd->acc[0]);
}

const l2rw__layer_ops l2rw__ops_dropout = {"dropout", 1, dropout_setup, NULL,
                                           dropout_forward, dropout_backward};
