/* SGD with heavy-ball momentum, L2 weight decay and a step schedule.
 * Shapes: params, grads, velocity are flat [num_params] buffers.
 *
 *   v <- momentum * v + (g + wd * p)
 *   p <- p - lr(step) * v
 *   lr(step) = lr * decay^(number of milestones m with m <= step)
 *
 * This is PyTorch's SGD (dampening 0, no Nesterov), so runs compare
 * step for step. */
#include "common.h"

#include <math.h>
#include <stdlib.h>

/* Parameters below which one thread updates the buffer. */
enum { OPTIM_PARALLEL_MIN = 1 << 15 };

struct l2rw_sgd {
    l2rw_sgd_cfg cfg;
    size_t n;
    float *velocity;
};

static l2rw_status check_cfg(const l2rw_sgd_cfg *c)
{
    if (!(c->lr > 0.0f) || !isfinite(c->lr))
        return l2rw__fail(L2RW_ERR_ARG, "sgd: learning rate must be > 0, "
                                        "got %g", (double)c->lr);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return l2rw__fail(L2RW_ERR_ARG, "sgd: momentum must be in [0, 1), "
                                        "got %g", (double)c->momentum);
    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
        return l2rw__fail(L2RW_ERR_ARG, "sgd: weight decay must be >= 0, "
                                        "got %g", (double)c->weight_decay);
    if (c->n_milestones < 0 || c->n_milestones > L2RW_MAX_MILESTONES)
        return l2rw__fail(L2RW_ERR_ARG, "sgd: %d milestones, at most %d",
                          c->n_milestones, L2RW_MAX_MILESTONES);
    if (c->n_milestones > 0 && (!(c->decay > 0.0f) || !isfinite(c->decay)))
        return l2rw__fail(L2RW_ERR_ARG, "sgd: decay factor must be > 0, "
                                        "got %g", (double)c->decay);
    for (int i = 0; i < c->n_milestones; i++) {
        if (c->milestones[i] < 0 ||
            (i > 0 && c->milestones[i] <= c->milestones[i - 1]))
            return l2rw__fail(L2RW_ERR_ARG,
                              "sgd: milestones must be >= 0 and strictly "
                              "increasing (milestone %d is %ld)",
                              i + 1, c->milestones[i]);
    }
    return L2RW_OK;
}

l2rw_status l2rw_sgd_create(l2rw_sgd **out, const l2rw_net *net,
                            const l2rw_sgd_cfg *cfg)
{
    if (!out || !net || !cfg)
        return l2rw__fail(L2RW_ERR_ARG, "sgd: NULL argument");
    *out = NULL;
    L2RW_TRY(check_cfg(cfg));
    l2rw_sgd *o = calloc(1, sizeof *o);
    if (!o) return l2rw__fail(L2RW_ERR_NOMEM, "sgd: out of memory");
    o->cfg = *cfg;
    o->n = l2rw_net_num_params(net);
    o->velocity = l2rw__aalloc(o->n, sizeof(float));
    if (!o->velocity) {
        free(o);
        return l2rw__fail(L2RW_ERR_NOMEM,
                          "sgd: cannot allocate velocity of %zu floats",
                          l2rw_net_num_params(net));
    }
    *out = o;
    return L2RW_OK;
}

void l2rw_sgd_free(l2rw_sgd *opt)
{
    if (!opt) return;
    l2rw__afree(opt->velocity);
    free(opt);
}

float l2rw_sgd_lr(const l2rw_sgd *opt, long step)
{
    /* Repeated float multiplication, as a step scheduler does, so the
     * rate equals what a PyTorch MultiStepLR run reaches. */
    float lr = opt->cfg.lr;
    for (int i = 0; i < opt->cfg.n_milestones; i++)
        if (step >= opt->cfg.milestones[i]) lr *= opt->cfg.decay;
    return lr;
}

float *l2rw_sgd_velocity(l2rw_sgd *opt) { return opt->velocity; }

l2rw_status l2rw_sgd_step(l2rw_sgd *opt, l2rw_net *net, long step)
{
    if (!opt || !net) return l2rw__fail(L2RW_ERR_ARG, "sgd: NULL argument");
    if (l2rw_net_num_params(net) != opt->n)
        return l2rw__fail(L2RW_ERR_ARG,
                          "sgd: optimizer made for %zu parameters, net has "
                          "%zu",
                          opt->n, l2rw_net_num_params(net));
    if (step < 0)
        return l2rw__fail(L2RW_ERR_ARG, "sgd: negative step %ld", step);
    const float lr = l2rw_sgd_lr(opt, step);
    const float mu = opt->cfg.momentum, wd = opt->cfg.weight_decay;
    float *restrict p = l2rw_net_params(net);
    const float *restrict g = l2rw_net_grads(net);
    float *restrict v = opt->velocity;
    const long n = (long)opt->n;
    /* x - x is 0 for finite x and NaN otherwise, so `bad` is NaN exactly
     * when a parameter became non-finite, whatever the reduction order. */
    float bad = 0.0f;
    /* Each element is updated on its own, so the result does not depend
     * on the thread count; small nets skip the cost of a team. */
#pragma omp parallel for simd schedule(static) reduction(+ : bad) \
    if (n >= OPTIM_PARALLEL_MIN)
    for (long i = 0; i < n; i++) {
        float vi = mu * v[i] + (g[i] + wd * p[i]);
        float pi = p[i] - lr * vi;
        v[i] = vi;
        p[i] = pi;
        bad += pi - pi;
    }
    if (bad != 0.0f)
        return l2rw__fail(L2RW_ERR_NUMERIC,
                          "sgd step %ld: a parameter became NaN or Inf "
                          "(non-finite gradient or divergent learning rate "
                          "%g)",
                          step, (double)lr);
    return L2RW_OK;
}
