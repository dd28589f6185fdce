/* Optimizers: SGD with heavy-ball momentum and L2 weight decay, AdamW
 * (decoupled weight decay), a step or cosine learning-rate schedule with
 * linear warm-up, and gradient clipping by global norm.
 * Shapes: params, grads, velocity (AdamW: m), v are flat [num_params].
 *
 * SGD:
 *   v <- momentum * v + (g + wd * p)
 *   p <- p - lr(step) * v
 *   lr(step) = lr * decay^(number of milestones m with m <= step)
 * This is PyTorch's SGD (dampening 0, no Nesterov), so runs compare
 * step for step.
 *
 * AdamW (Loshchilov & Hutter), with t the number of updates made:
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr(step) * (m_hat / (sqrt(v_hat) + eps) + wd * p)
 *   m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
 *
 * Clipping (clip_grad_norm = C > 0): g is scaled by C / ||g|| when
 * ||g|| > C, before either update (weight decay is not clipped, as with
 * PyTorch's clip_grad_norm_ followed by the optimizer). */
#include "backend.h"
#include "common.h"
#include "net_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double PI = 3.14159265358979323846; /* M_PI is not C11 */

/* The state lives on the net's back end (backend.h), next to the
 * parameters it updates; a step moves one int to the host (the flag of
 * a non-finite parameter) and, with clipping, the norm's square. */
struct l2rw_sgd {
    l2rw_sgd_cfg cfg;
    l2rw_optim_cfg ext;
    size_t n;
    const l2rw__backend *be; /* the net's: owns velocity, second, bad */
    float *velocity;   /* SGD velocity, AdamW first moment */
    float *second;     /* AdamW second moment, NULL for SGD */
    int *bad;          /* [1]: a parameter became non-finite */
    long updates;      /* steps that updated the parameters (AdamW's t) */
    double grad_norm;  /* of the last step, before clipping; NaN */
};

static const char *const optim_names[] = {"sgd", "adamw"};
static const char *const schedule_names[] = {"step", "cosine"};

l2rw_optim_cfg l2rw_optim_cfg_default(l2rw_optim_kind kind)
{
    l2rw_optim_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    return c;
}

/* Index of name in names[n], or -1. */
static int name_index(const char *name, const char *const *names, int n)
{
    for (int i = 0; name && i < n; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

l2rw_status l2rw_optim_parse(const char *name, l2rw_optim_kind *out)
{
    int i = name_index(name, optim_names, 2);
    if (i < 0)
        return l2rw__fail(L2RW_ERR_ARG, "unknown optimizer '%s' (sgd, "
                          "adamw)", name ? name : "");
    *out = (l2rw_optim_kind)i;
    return L2RW_OK;
}

const char *l2rw_optim_name(l2rw_optim_kind kind)
{
    return kind == L2RW_OPTIM_ADAMW ? optim_names[1] : optim_names[0];
}

l2rw_status l2rw_lr_schedule_parse(const char *name, l2rw_lr_schedule *out)
{
    int i = name_index(name, schedule_names, 2);
    if (i < 0)
        return l2rw__fail(L2RW_ERR_ARG, "unknown learning-rate schedule "
                          "'%s' (step, cosine)", name ? name : "");
    *out = (l2rw_lr_schedule)i;
    return L2RW_OK;
}

const char *l2rw_lr_schedule_name(l2rw_lr_schedule s)
{
    return s == L2RW_LR_COSINE ? schedule_names[1] : schedule_names[0];
}

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

static l2rw_status check_adamw(const l2rw_optim_cfg *e)
{
    if (!(e->beta1 >= 0.0f && e->beta1 < 1.0f))
        return l2rw__fail(L2RW_ERR_ARG, "adamw: beta1 must be in [0, 1), "
                          "got %g", (double)e->beta1);
    if (!(e->beta2 >= 0.0f && e->beta2 < 1.0f))
        return l2rw__fail(L2RW_ERR_ARG, "adamw: beta2 must be in [0, 1), "
                          "got %g", (double)e->beta2);
    if (!(e->eps > 0.0f) || !isfinite(e->eps))
        return l2rw__fail(L2RW_ERR_ARG, "adamw: eps must be > 0, got %g",
                          (double)e->eps);
    return L2RW_OK;
}

static l2rw_status check_schedule(const l2rw_sgd_cfg *c,
                                  const l2rw_optim_cfg *e)
{
    if (e->schedule != L2RW_LR_STEP && e->schedule != L2RW_LR_COSINE)
        return l2rw__fail(L2RW_ERR_ARG, "optimizer: unknown schedule %d",
                          (int)e->schedule);
    if (e->warmup_steps < 0)
        return l2rw__fail(L2RW_ERR_ARG, "optimizer: warm-up steps must be "
                          ">= 0, got %ld", e->warmup_steps);
    if (e->schedule != L2RW_LR_COSINE) return L2RW_OK;
    if (e->total_steps < 1)
        return l2rw__fail(L2RW_ERR_ARG, "optimizer: the cosine schedule "
                          "needs the run's length (total steps > 0)");
    if (!(e->lr_min >= 0.0f && e->lr_min <= c->lr))
        return l2rw__fail(L2RW_ERR_ARG, "optimizer: the final rate of the "
                          "cosine schedule must be in [0, lr = %g], got %g",
                          (double)c->lr, (double)e->lr_min);
    return L2RW_OK;
}

l2rw_status l2rw_optim_check(const l2rw_sgd_cfg *cfg,
                             const l2rw_optim_cfg *ext)
{
    if (!cfg) return l2rw__fail(L2RW_ERR_ARG, "optimizer: NULL argument");
    L2RW_TRY(check_cfg(cfg));
    if (!ext) return L2RW_OK;
    if (ext->kind != L2RW_OPTIM_SGD && ext->kind != L2RW_OPTIM_ADAMW)
        return l2rw__fail(L2RW_ERR_ARG, "optimizer: unknown kind %d",
                          (int)ext->kind);
    if (ext->kind == L2RW_OPTIM_ADAMW) L2RW_TRY(check_adamw(ext));
    L2RW_TRY(check_schedule(cfg, ext));
    if (!(ext->clip_grad_norm >= 0.0f) || !isfinite(ext->clip_grad_norm))
        return l2rw__fail(L2RW_ERR_ARG, "optimizer: the clipping norm must "
                          "be >= 0 (0: none), got %g",
                          (double)ext->clip_grad_norm);
    return L2RW_OK;
}

void l2rw_sgd_free(l2rw_sgd *opt)
{
    if (!opt) return;
    if (opt->be) {
        opt->be->dealloc(opt->velocity);
        opt->be->dealloc(opt->second);
        opt->be->dealloc(opt->bad);
    }
    free(opt);
}

/* The buffers the kind and clipping need, zeroed. */
static l2rw_status alloc_state(l2rw_sgd *o)
{
    o->velocity = o->be->alloc(o->n, sizeof(float));
    if (o->ext.kind == L2RW_OPTIM_ADAMW)
        o->second = o->be->alloc(o->n, sizeof(float));
    o->bad = o->be->alloc(1, sizeof *o->bad);
    if (!o->velocity || (o->ext.kind == L2RW_OPTIM_ADAMW && !o->second) ||
        !o->bad)
        return l2rw__fail(L2RW_ERR_NOMEM, "optimizer: cannot allocate its "
                          "state for %zu parameters", o->n);
    return L2RW_OK;
}

l2rw_status l2rw_optim_create(l2rw_sgd **out, const l2rw_net *net,
                              const l2rw_sgd_cfg *cfg,
                              const l2rw_optim_cfg *ext)
{
    if (!out || !net || !cfg)
        return l2rw__fail(L2RW_ERR_ARG, "sgd: NULL argument");
    *out = NULL;
    L2RW_TRY(l2rw_optim_check(cfg, ext));
    l2rw_sgd *o = calloc(1, sizeof *o);
    if (!o) return l2rw__fail(L2RW_ERR_NOMEM, "sgd: out of memory");
    o->cfg = *cfg;
    if (ext) o->ext = *ext; /* else all zero: SGD, step schedule */
    o->n = l2rw_net_num_params(net);
    o->be = l2rw__net_backend(net);
    o->grad_norm = NAN;
    l2rw_status s = alloc_state(o);
    if (s != L2RW_OK) {
        l2rw_sgd_free(o);
        return s;
    }
    *out = o;
    return L2RW_OK;
}

l2rw_status l2rw_sgd_create(l2rw_sgd **out, const l2rw_net *net,
                            const l2rw_sgd_cfg *cfg)
{
    return l2rw_optim_create(out, net, cfg, NULL);
}

/* The step schedule, as repeated float multiplication (as a step
 * scheduler does), so the rate equals what a PyTorch MultiStepLR run
 * reaches. */
static float step_lr(const l2rw_sgd_cfg *c, long step)
{
    float lr = c->lr;
    for (int i = 0; i < c->n_milestones; i++)
        if (step >= c->milestones[i]) lr *= c->decay;
    return lr;
}

/* Cosine from lr at the end of the warm-up to lr_min at total_steps (in
 * double, then rounded once; PyTorch's CosineAnnealingLR with
 * T_max = total - warmup). */
static float cosine_lr(const l2rw_sgd_cfg *c, const l2rw_optim_cfg *e,
                       long step)
{
    long span = e->total_steps - e->warmup_steps;
    double p = span > 0 ? (double)(step - e->warmup_steps) / (double)span
                        : 1.0;
    if (p < 0.0) p = 0.0;
    if (p > 1.0) p = 1.0;
    const double lo = e->lr_min, hi = c->lr;
    return (float)(lo + (hi - lo) * 0.5 * (1.0 + cos(PI * p)));
}

float l2rw_sgd_lr(const l2rw_sgd *opt, long step)
{
    const l2rw_optim_cfg *e = &opt->ext;
    float lr = e->schedule == L2RW_LR_COSINE ? cosine_lr(&opt->cfg, e, step)
                                             : step_lr(&opt->cfg, step);
    if (step < e->warmup_steps)
        lr = (float)((double)lr * (double)(step + 1) /
                     (double)e->warmup_steps);
    return lr;
}

float *l2rw_sgd_velocity(l2rw_sgd *opt)
{
    return opt->be->host ? opt->velocity : NULL;
}

l2rw_optim_cfg l2rw_optim_config(const l2rw_sgd *opt) { return opt->ext; }

float *l2rw_optim_second_moment(l2rw_sgd *opt)
{
    return opt->be->host ? opt->second : NULL;
}

/* The back-end address of [offset, offset + count) of a state buffer. */
static l2rw_status state_range(const l2rw_sgd *opt, l2rw_optim_buffer which,
                               size_t offset, size_t count, const char *fn,
                               float **at)
{
    if (!opt) return l2rw__fail(L2RW_ERR_ARG, "%s: NULL optimizer", fn);
    float *base = which == L2RW_OPTIM_FIRST    ? opt->velocity
                  : which == L2RW_OPTIM_SECOND ? opt->second
                                               : NULL;
    if (!base)
        return l2rw__fail(L2RW_ERR_ARG, "%s: %s has no buffer %d (first "
                          "moment or velocity 0, AdamW's second moment 1)",
                          fn, l2rw_optim_name(opt->ext.kind), (int)which);
    if (offset > opt->n || count > opt->n - offset)
        return l2rw__fail(L2RW_ERR_ARG, "%s: [%zu, +%zu) outside the %zu "
                          "floats", fn, offset, count, opt->n);
    *at = base + offset;
    return L2RW_OK;
}

l2rw_status l2rw_optim_read(const l2rw_sgd *opt, l2rw_optim_buffer which,
                            size_t offset, size_t count, float *dst)
{
    float *at = NULL;
    L2RW_TRY(state_range(opt, which, offset, count, "optim_read", &at));
    if (count && !dst)
        return l2rw__fail(L2RW_ERR_ARG, "optim_read: NULL destination");
    if (count) opt->be->download(dst, at, count * sizeof *dst);
    return opt->be->sync();
}

l2rw_status l2rw_optim_write(l2rw_sgd *opt, l2rw_optim_buffer which,
                             size_t offset, size_t count, const float *src)
{
    float *at = NULL;
    L2RW_TRY(state_range(opt, which, offset, count, "optim_write", &at));
    if (count && !src)
        return l2rw__fail(L2RW_ERR_ARG, "optim_write: NULL source");
    if (count) opt->be->upload(at, src, count * sizeof *src);
    return opt->be->sync();
}

l2rw_status l2rw_optim_copy_state(l2rw_sgd *dst, const l2rw_sgd *src)
{
    if (!dst || !src)
        return l2rw__fail(L2RW_ERR_ARG, "optim_copy_state: NULL argument");
    if (dst->be != src->be || dst->n != src->n ||
        dst->ext.kind != src->ext.kind)
        return l2rw__fail(L2RW_ERR_ARG, "optim_copy_state: %s of %zu "
                          "floats on %s to %s of %zu on %s",
                          l2rw_optim_name(src->ext.kind), src->n,
                          src->be->name, l2rw_optim_name(dst->ext.kind),
                          dst->n, dst->be->name);
    dst->be->copy_dev(dst->velocity, src->velocity, dst->n * sizeof(float));
    if (dst->second)
        dst->be->copy_dev(dst->second, src->second, dst->n * sizeof(float));
    dst->updates = src->updates;
    return dst->be->sync();
}

long l2rw_optim_updates(const l2rw_sgd *opt) { return opt->updates; }

l2rw_status l2rw_optim_set_updates(l2rw_sgd *opt, long t)
{
    if (!opt || t < 0)
        return l2rw__fail(L2RW_ERR_ARG, "optimizer: bad update count %ld", t);
    opt->updates = t;
    return L2RW_OK;
}

double l2rw_optim_grad_norm(const l2rw_sgd *opt) { return opt->grad_norm; }

/* The factor that brings the gradient's norm down to the clipping
 * norm (1 when clipping is off or the norm is within it). */
static l2rw_status clip_scale(l2rw_sgd *opt, const float *g, long step,
                              float *scale)
{
    *scale = 1.0f;
    if (!(opt->ext.clip_grad_norm > 0.0f)) return L2RW_OK;
    opt->grad_norm = sqrt(opt->be->sumsq(g, opt->n));
    /* a non-finite gradient would be scaled to 0 and hide the problem */
    if (!isfinite(opt->grad_norm))
        return l2rw__fail(L2RW_ERR_NUMERIC, "optimizer step %ld: the "
                          "gradient is NaN or Inf", step);
    if (opt->grad_norm > (double)opt->ext.clip_grad_norm)
        *scale = (float)((double)opt->ext.clip_grad_norm / opt->grad_norm);
    return L2RW_OK;
}

/* SGD (the flag opt->bad zeroed before). */
static void sgd_update(l2rw_sgd *opt, l2rw_net *net, float lr, float scale)
{
    opt->be->sgd_update(l2rw__net_buf(net, L2RW_NET_PARAMS), opt->velocity,
                        l2rw__net_buf(net, L2RW_NET_GRADS), opt->n, lr,
                        opt->cfg.momentum, opt->cfg.weight_decay, scale,
                        opt->bad);
}

/* AdamW with the update count already advanced; as sgd_update. */
static void adamw_update(l2rw_sgd *opt, l2rw_net *net, float lr, float scale)
{
    const float b1 = opt->ext.beta1, b2 = opt->ext.beta2;
    /* bias corrections in double: b2^t stays accurate for large t */
    const float bc1 = (float)(1.0 / (1.0 - pow(b1, (double)opt->updates)));
    const float bc2 = (float)(1.0 / (1.0 - pow(b2, (double)opt->updates)));
    opt->be->adamw_update(l2rw__net_buf(net, L2RW_NET_PARAMS), opt->velocity,
                          opt->second, l2rw__net_buf(net, L2RW_NET_GRADS),
                          opt->n, lr, b1, b2, opt->ext.eps,
                          opt->cfg.weight_decay, bc1, bc2, scale, opt->bad);
}

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
    const l2rw__backend *be = opt->be;
    if (l2rw__net_backend(net) != be)
        return l2rw__fail(L2RW_ERR_ARG, "sgd: optimizer made for a net on "
                          "%s, this net is on %s", be->name,
                          l2rw__net_backend(net)->name);
    const float lr = l2rw_sgd_lr(opt, step);
    float scale;
    L2RW_TRY(clip_scale(opt, l2rw__net_buf(net, L2RW_NET_GRADS), step,
                        &scale));
    opt->updates++;
    be->zero(opt->bad, sizeof *opt->bad);
    if (opt->ext.kind == L2RW_OPTIM_ADAMW)
        adamw_update(opt, net, lr, scale);
    else
        sgd_update(opt, net, lr, scale);
    int bad = 0;
    be->download(&bad, opt->bad, sizeof bad);
    L2RW_TRY(be->sync());
    if (bad)
        return l2rw__fail(L2RW_ERR_NUMERIC,
                          "%s step %ld: a parameter became NaN or Inf "
                          "(non-finite gradient or divergent learning rate "
                          "%g)",
                          l2rw_optim_name(opt->ext.kind), step, (double)lr);
    return L2RW_OK;
}
