/* Batch norm per channel: x [n, c, h, w] -> y [n, c, h, w], gamma [c],
 * beta [c]; state running mean [c], running var [c].
 * Train (and train-frozen) modes use the batch statistics over n h w:
 *   xhat = (x - mu) / sigma, sigma = sqrt(var + eps), y = gamma xhat + beta
 *   tangent through the statistics (DESIGN.md table):
 *   ty = tgamma xhat + gamma ((tx - mean tx) - xhat mean(xhat tx)) / sigma
 *        + tbeta
 *   backward dx = gamma / sigma (dy - mean dy - xhat mean(dy xhat)).
 * Train mode updates the running averages with momentum 0.1 (PyTorch:
 * running = 0.9 running + 0.1 batch, unbiased variance); train-frozen leaves
 * them; eval mode normalises with them (a per-channel affine map). */
#include "layers.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static l2rw_status bn_setup(l2rw__node *nd, const l2rw__node *a,
                            const l2rw__node *b, int max_batch,
                            const l2rw__backend *be)
{
    (void)b, (void)be;
    nd->c = a->c, nd->h = a->h, nd->w = a->w;
    nd->n_params = 2 * (size_t)a->c;
    nd->n_state = 2 * (size_t)a->c;
    /* xhat [max_batch, size], then mean, var, 1/sigma [c] each. */
    nd->n_aux = (size_t)max_batch * a->size + 3 * (size_t)a->c;
    return L2RW_OK;
}

static void bn_init(const l2rw__node *nd, float *p, float *st, l2rw_rng *rng)
{
    (void)rng;
    for (int c = 0; c < nd->c; c++) {
        p[c] = 1.0f;          /* gamma */
        p[nd->c + c] = 0.0f;  /* beta */
        st[c] = 0.0f;         /* running mean */
        st[nd->c + c] = 1.0f; /* running var */
    }
}

typedef struct {
    float *xhat, *mean, *var, *istd;
    size_t P;
} bn_bufs;

static bn_bufs bn_buffers(const l2rw__pass *ps, const l2rw__node *nd)
{
    (void)ps;
    const size_t P = (size_t)nd->h * nd->w;
    float *xhat = nd->aux;
    float *mean = nd->aux + (nd->n_aux - 3 * (size_t)nd->c);
    bn_bufs b = {xhat, mean, mean + nd->c, mean + 2 * nd->c, P};
    return b;
}

static void bn_tangent(const l2rw__pass *ps, l2rw__node *nd)
{
    const bn_bufs B = bn_buffers(ps, nd);
    const float *g = ps->params + nd->p_off;
    const float *tg = ps->tparams + nd->p_off, *tb = tg + nd->c;
    const float *tx = l2rw__tin(ps, nd, 0);
    if (ps->mode == L2RW_MODE_EVAL)
        ps->be->bn_tangent_eval(nd->ty, tx, B.xhat, B.istd, g, tg, tb,
                                ps->n, nd->c, B.P);
    else
        ps->be->bn_tangent_train(nd->ty, tx, B.xhat, B.istd, g, tg, tb,
                                 ps->n, nd->c, B.P);
}

static void bn_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    const l2rw__node *a = l2rw__in(ps, nd, 0);
    const bn_bufs B = bn_buffers(ps, nd);
    const int C = nd->c;
    const float *g = ps->params + nd->p_off, *beta = g + C;
    float *rmean = ps->state + nd->s_off, *rvar = rmean + C;
    const l2rw__backend *be = ps->be;
    if (ps->mode == L2RW_MODE_EVAL) {
        be->bn_eval_stats(B.mean, B.var, B.istd, rmean, rvar, BN_EPS, C);
        be->bn_norm(nd->y, B.xhat, a->y, B.mean, B.istd, g, beta, ps->n, C,
                    B.P);
    } else {
        be->bn_stats_norm(nd->y, B.xhat, B.mean, B.var, B.istd, a->y, g,
                          beta, BN_EPS, ps->n, C, B.P);
    }
    if (ps->mode == L2RW_MODE_TRAIN) {
        const double m = (double)ps->n * (double)B.P;
        const float unbias = m > 1.0 ? (float)(m / (m - 1.0)) : 1.0f;
        be->bn_running(rmean, rvar, B.mean, B.var, BN_MOMENTUM, unbias, C);
    }
    if (l2rw__want_tangent(ps, nd)) bn_tangent(ps, nd);
}

static void bn_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    const bn_bufs B = bn_buffers(ps, nd);
    const float *g = ps->params + nd->p_off;
    float *dg = ps->grads + nd->p_off, *db = dg + nd->c;
    ps->be->bn_bwd(l2rw__din(ps, nd, 0), dg, db, nd->dy, B.xhat, B.istd, g,
                   ps->n, nd->c, B.P, ps->mode != L2RW_MODE_EVAL, nd->acc[0]);
}

const l2rw__layer_ops l2rw__ops_batchnorm = {"batchnorm", 1, bn_setup,
                                             bn_init, bn_forward, bn_backward};
