/* Conv2d: x [n, ic, h, w], W [oc, ic, k, k], b [oc] (optional) ->
 * y [n, oc, oh, ow], oh = (h + 2 pad - k) / stride + 1, zero padding.
 * Per example, as GEMMs on the im2col columns cols(x) [ic k k, oh ow]:
 *   forward  y = W cols(x) (+ b)
 *   tangent  ty = [W tW] [cols(tx); cols(x)] (+ tb), one GEMM fused with
 *            the forward (cols(x) is built once for both)
 *   backward dW = sum_i dy_i cols(x_i)^T, db = sum dy,
 *            dx_i = col2im(W^T dy_i).
 * The loops over examples live in the back end (conv_fwd, conv_bwd). */
#include "layers.h"

static l2rw_status conv_setup(l2rw__node *nd, const l2rw__node *a,
                              const l2rw__node *b, int max_batch,
                              const l2rw__backend *be)
{
    (void)b, (void)max_batch, (void)be;
    const int k = nd->k, s = nd->stride, pad = nd->pad, oc = nd->units;
    if (oc <= 0 || k <= 0 || s <= 0 || pad < 0 || oc > L2RW_DIM_MAX ||
        k > L2RW_DIM_MAX || s > L2RW_DIM_MAX || pad > L2RW_DIM_MAX)
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
    const size_t K = (size_t)a->c * k * k;
    nd->n_params = (size_t)oc * K + (nd->bias ? (size_t)oc : 0);
    if (!be) return L2RW_OK; /* graph building: shapes only */
    /* Workspace for the back end's parallel slices (CPU: as many threads
     * as the machine has, or more if set). */
    nd->chunk = be->conv_slices();
    l2rw__conv_shape sh = {a->c, a->h, a->w, oc, k, s, pad, nd->h, nd->w,
                           nd->chunk};
    nd->n_ws = be->conv_ws(&sh);
    return L2RW_OK;
}

static void conv_init(const l2rw__node *nd, float *p, float *st,
                      l2rw_rng *rng)
{
    (void)st;
    const size_t nw = nd->n_params - (nd->bias ? (size_t)nd->units : 0);
    l2rw__he_init(p, nw, nw / (size_t)nd->units, rng);
}

static l2rw__conv_shape conv_shape(const l2rw__node *nd, const l2rw__node *a)
{
    l2rw__conv_shape sh = {a->c, a->h, a->w, nd->units, nd->k, nd->stride,
                           nd->pad, nd->h, nd->w, nd->chunk};
    return sh;
}

/* The tangent is fused with the forward: see l2rw__conv_fwd. */
static void conv_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const l2rw__conv_shape sh = conv_shape(nd, a);
    const size_t nw = (size_t)nd->units * a->c * nd->k * nd->k;
    const float *W = ps->params + nd->p_off, *b = nd->bias ? W + nw : NULL;
    const int tan = l2rw__want_tangent(ps, nd);
    const float *tW = tan ? ps->tparams + nd->p_off : NULL;
    const float *tb = tan && nd->bias ? tW + nw : NULL;
    ps->be->conv_fwd(&sh, ps->n, nd->y, tan ? nd->ty : NULL, a->y,
                     tan ? l2rw__tin(ps, nd, 0) : NULL, W, b, tW, tb, ps->ws);
}

static void conv_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const l2rw__conv_shape sh = conv_shape(nd, a);
    const size_t nw = (size_t)nd->units * a->c * nd->k * nd->k;
    float *dW = ps->grads + nd->p_off;
    if (ps->capture) {
        ps->be->conv_bwd_each(&sh, ps->n, ps->capture + nd->cap_off,
                              nd->n_params, nd->bias, l2rw__din(ps, nd, 0),
                              nd->dy, a->y, ps->params + nd->p_off,
                              nd->acc[0], ps->ws);
        return;
    }
    ps->be->conv_bwd(&sh, ps->n, dW, nd->bias ? dW + nw : NULL,
                     l2rw__din(ps, nd, 0), nd->dy, a->y,
                     ps->params + nd->p_off, nd->acc[0], ps->ws);
}

const l2rw__layer_ops l2rw__ops_conv = {"conv", 1, conv_setup, conv_init,
                                        conv_forward, conv_backward};
