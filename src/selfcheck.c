/* Self test of the built library (l2rw check) and the finite-difference
 * checkers it shares with the tests (selfcheck.h).
 *
 * Checks, each reported through the caller's callback:
 *   - every layer kind inside a small network built with the graph
 *     builder: gradient and tangent against central differences, and
 *     the tangent against the backward;
 *   - the same for each zoo model on small inputs;
 *   - zoo parameter counts;
 *   - save/load round trips (identical outputs; another architecture,
 *     flipped and truncated files refused);
 *   - repeated short training runs bit-identical under a fixed seed;
 *   - the reweighting checks, when linked in. */
#define _POSIX_C_SOURCE 200809L
#include "selfcheck.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph.h"

/* The finite differences probe F at theta, theta +- h and theta +- h/2.
 *
 * Step: h = 1e-2 (times |theta_j| above 1) keeps the float32 rounding of
 * F (delta, about FD_NOISE_EPS |F|) at ~1e-5 of a quotient, and the
 * O(h^2) truncation error of the smooth layers far below the tolerance.
 *
 * Kinks (ReLU, max pool) make a central difference wrong by up to half
 * the jump of the slope. With a kink at distance d < h the quotients c1
 * (step h) and c2 (step h/2) differ by about jump * d / 2h, and the
 * second differences at the two steps by about jump * |h - 3d| / h
 * (times h/2); the larger of the two is at least jump / 8, while c2 is
 * off by at most jump / 4. A probe whose signal exceeds RTOL/4 of the
 * quotient (plus its rounding) is "near a kink" and not compared; an
 * accepted probe's c2 is then within RTOL/2 (plus twice the rounding
 * allowance) of the derivative, which the comparison floor covers. */
enum { FD_MAX_HALVINGS = 5 }; /* tangent steps h, h/2, ..., h/32 */
static const double FD_H = 1e-2;
/* Relative rounding error of F (float32 losses of small nets; measured
 * quotients at tiny steps scatter as if F were off by 1-2 eps). Raising
 * it also loosens the kink test: 4 eps let kinked probes through. */
static const double FD_NOISE_EPS = 2.0 * FLT_EPSILON;
/* The kink signal carries up to ~12 delta / h of rounding. */
static const double FD_SIGNAL_NOISE = 12.0;

typedef struct {
    double c1, c2;   /* central quotients at h and h/2 */
    double right, left; /* one-sided, second order (0, h/2, h) */
    double signal;   /* kink signal (see above) */
} fd_probe;

static double rel_err(double a, double b, double floor)
{
    double d = fmax(fmax(fabs(a), fabs(b)), floor);
    return d > 0.0 ? fabs(a - b) / d : 0.0;
}

/* Derivative at 0 of the parabola through (0, f0), (a, fa), (b, fb). */
static double one_sided(double f0, double fa, double fb, double a, double b)
{
    return ((fa - f0) * b * b - (fb - f0) * a * a) / (a * b * (b - a));
}

/* From F at -h, -h/2, 0, +h/2, +h with the actual steps taken. */
static fd_probe probe_of(const double f[5], double hm1, double hm2,
                         double hp2, double hp1)
{
    fd_probe p;
    p.c1 = (f[4] - f[0]) / (hp1 + hm1);
    p.c2 = (f[3] - f[1]) / (hp2 + hm2);
    /* three-point second differences, exact for quadratics */
    double d1 = 2.0 * ((f[4] - f[2]) / hp1 - (f[2] - f[0]) / hm1) /
                (hp1 + hm1);
    double d2 = 2.0 * ((f[3] - f[2]) / hp2 - (f[2] - f[1]) / hm2) /
                (hp2 + hm2);
    p.signal = fmax(fabs(p.c1 - p.c2), 0.25 * (hp2 + hm2) * fabs(d2 - d1));
    p.right = one_sided(f[2], f[3], f[4], hp2, hp1);
    p.left = one_sided(f[2], f[1], f[0], -hm2, -hm1);
    return p;
}

/* A kink exactly at theta (seen on wrn-10-1: a slope jump of 16% of the
 * tangent right at theta, in about one direction in five) cannot be
 * seen by central differences: they average the two one-sided slopes
 * at every step, while a tangent or gradient rule returns one of them.
 * So the derivative is compared with the nearest of the central and the
 * two one-sided estimates; a wrong rule matches none of them. */
static double probe_err(const fd_probe *p, double d, double floor,
                        double *est)
{
    const double cand[3] = {p->c2, p->right, p->left};
    double best = INFINITY;
    for (int k = 0; k < 3; k++) {
        double e = rel_err(d, cand[k], floor);
        if (e < best) {
            best = e;
            *est = cand[k];
        }
    }
    return best;
}

static int probe_smooth(const fd_probe *p, double noise, double h)
{
    return p->signal <= 0.25 * L2RW_FD_RTOL * fmax(fabs(p->c1), fabs(p->c2))
                            + FD_SIGNAL_NOISE * noise / h;
}

/* Comparison floor matching probe_smooth: rounding of c2 plus what an
 * undetected kink may leave (twice the signal's rounding allowance). */
static double probe_floor(double noise, double h, double rtol)
{
    return (2.0 * FD_SIGNAL_NOISE + 2.0) * noise / h / rtol;
}

/* The model tangent starts at a step of 2^-12: along a dense direction
 * theta + t v crosses some unit's kink at every larger step, and the
 * bias of the quotient falls to ~1% of max |u| only below ~2e-4
 * (measured on resnet8 and wrn-10-1), where float32 rounding costs
 * about as much. */
const l2rw_fd_tol l2rw__fd_tol_layer = {L2RW_FD_RTOL, 1e-3, 1e-2};
const l2rw_fd_tol l2rw__fd_tol_model = {1e-1, 1e-1, 0x1p-12};

/* ------------------------------------------------------------ helpers */

static const l2rw_loss *ce_loss(void)
{
    static l2rw_loss ce;
    static int ready;
    if (!ready) {
        ce = l2rw_loss_default(L2RW_LOSS_CE);
        ready = 1;
    }
    return &ce;
}

/* F = sum_i w_i l_i and S = sum_i |w_i l_i| at the current parameters;
 * per-example losses go to loss[n]. */
static l2rw_status eval_f(l2rw_net *net, const l2rw_fd_batch *b, float *loss,
                          double *f, double *s)
{
    L2RW_TRY(l2rw_net_forward(net, b->x, b->n, b->mode, 0));
    L2RW_TRY(l2rw_net_loss(net, b->y, ce_loss(), loss, NULL));
    double acc = 0.0, mag = 0.0;
    for (int i = 0; i < b->n; i++) {
        acc += (double)b->w[i] * loss[i];
        mag += fabs((double)b->w[i] * loss[i]);
    }
    *f = acc;
    if (s) *s = mag;
    return L2RW_OK;
}

/* Probe F along coordinate j (F(theta) = f0 known), using the steps
 * float32 actually takes. Restores the parameter. */
static l2rw_status probe_coord(l2rw_net *net, const l2rw_fd_batch *b,
                               float *loss, size_t j, double h, double f0,
                               fd_probe *out)
{
    float *p = l2rw_net_params(net);
    const float p0 = p[j];
    static const double mult[4] = {-1.0, -0.5, 0.5, 1.0};
    static const int slot[4] = {0, 1, 3, 4};
    double f[5], step[4];
    f[2] = f0;
    l2rw_status s = L2RW_OK;
    for (int k = 0; k < 4 && s == L2RW_OK; k++) {
        p[j] = (float)((double)p0 + mult[k] * h);
        step[k] = fabs((double)p[j] - p0);
        s = eval_f(net, b, loss, &f[slot[k]], NULL);
    }
    p[j] = p0;
    if (s == L2RW_OK) *out = probe_of(f, step[0], step[1], step[2], step[3]);
    return s;
}

/* Indices of the k largest |g| (k small), into idx[0..k). */
static void top_k(const float *g, size_t n, size_t *idx, int k)
{
    int have = 0;
    for (size_t j = 0; j < n; j++) {
        float a = fabsf(g[j]);
        int pos = have;
        while (pos > 0 && fabsf(g[idx[pos - 1]]) < a) pos--;
        if (pos >= k) continue;
        int last = have < k ? have : k - 1;
        for (int t = last; t > pos; t--) idx[t] = idx[t - 1];
        idx[pos] = j;
        if (have < k) have++;
    }
}

/* ---------------------------------------------------- gradient check */

l2rw_status l2rw__fd_grad_check(l2rw_net *net, const l2rw_fd_batch *b,
                                int samples, const l2rw_fd_tol *tol,
                                uint64_t seed, l2rw_fd_result *res)
{
    memset(res, 0, sizeof *res);
    size_t np = l2rw_net_num_params(net);
    if (samples < 2 || np == 0)
        return l2rw__fail(L2RW_ERR_ARG, "fd_grad_check: nothing to check");
    float *g = malloc(np * sizeof *g);
    float *loss = malloc((size_t)b->n * sizeof *loss);
    size_t *idx = malloc((size_t)samples * sizeof *idx);
    l2rw_status s = (g && loss && idx) ? L2RW_OK
                                       : l2rw__fail(L2RW_ERR_NOMEM,
                                                    "fd_grad_check: out of "
                                                    "memory");
    double f0 = 0.0, s0 = 0.0;
    if (s == L2RW_OK) s = eval_f(net, b, loss, &f0, &s0);
    if (s == L2RW_OK) s = l2rw_net_backward(net, b->w);
    if (s != L2RW_OK) goto done;
    memcpy(g, l2rw_net_grads(net), np * sizeof *g);

    double gmax = 0.0;
    for (size_t j = 0; j < np; j++) gmax = fmax(gmax, fabs((double)g[j]));
    int n_top = samples / 4;
    if ((size_t)n_top > np) n_top = (int)np;
    top_k(g, np, idx, n_top);
    l2rw_rng rng;
    l2rw_rng_seed(&rng, seed);
    for (int t = n_top; t < samples; t++)
        idx[t] = (size_t)l2rw_rng_below(&rng, np);

    const double noise = FD_NOISE_EPS * s0; /* rounding of F */
    size_t worst = 0;
    double worst_g = 0.0, worst_fd = 0.0;
    for (int t = 0; t < samples && s == L2RW_OK; t++) {
        size_t j = idx[t];
        double h = FD_H * fmax(1.0, fabs((double)l2rw_net_params(net)[j]));
        fd_probe pr;
        s = probe_coord(net, b, loss, j, h, f0, &pr);
        if (s != L2RW_OK) break;
        if (!probe_smooth(&pr, noise, h)) {
            res->skipped++;
            continue;
        }
        double floor = fmax(probe_floor(noise, h, tol->rtol),
                            tol->floor_frac * gmax);
        res->floor = fmax(res->floor, floor);
        double est = 0.0;
        double e = probe_err(&pr, g[j], floor, &est);
        res->checked++;
        if (e >= res->max_rel_err) {
            res->max_rel_err = e;
            worst = j;
            worst_g = g[j];
            worst_fd = est;
        }
    }
    if (s != L2RW_OK) goto done;
    int need = samples / 2;
    res->passed = res->checked >= need && res->max_rel_err <= tol->rtol;
    if (res->checked < need)
        snprintf(res->detail, sizeof res->detail,
                 "only %d of %d coordinates away from kinks (need %d)",
                 res->checked, samples, need);
    else
        snprintf(res->detail, sizeof res->detail,
                 "%d coords (%d skipped at kinks), worst #%zu: backward "
                 "%.6e fd %.6e, |g|max %.3e, floor %.1e",
                 res->checked, res->skipped, worst, worst_g, worst_fd, gmax,
                 res->floor);
done:
    free(g);
    free(loss);
    free(idx);
    return s;
}

/* ----------------------------------------------------- tangent checks */

/* A seeded dense random direction, v_j ~ N(0, rms(theta)^2): on the
 * scale of the weights. */
static void random_direction(l2rw_net *net, uint64_t seed, float *v)
{
    size_t np = l2rw_net_num_params(net);
    l2rw_rng rng;
    l2rw_rng_seed(&rng, seed);
    const float *p = l2rw_net_params(net);
    double ss = 0.0;
    for (size_t j = 0; j < np; j++) ss += (double)p[j] * p[j];
    double rms = np ? sqrt(ss / (double)np) : 1.0;
    if (!(rms > 0.0)) rms = 1.0;
    for (size_t j = 0; j < np; j++)
        v[j] = (float)(l2rw_rng_normal(&rng) * rms);
}

/* u[n] from a forward with tangent v (copied into the net). */
static l2rw_status tangent_u(l2rw_net *net, const l2rw_fd_batch *b,
                             const float *v, float *loss, float *u)
{
    memcpy(l2rw_net_tangents(net), v,
           l2rw_net_num_params(net) * sizeof *v);
    L2RW_TRY(l2rw_net_forward(net, b->x, b->n, b->mode, 1));
    return l2rw_net_loss(net, b->y, ce_loss(), loss, u);
}

/* l[i] = l_i(theta + t v) for all examples, l[n] = sum_i w_i l[i];
 * restores theta. */
static l2rw_status losses_at(l2rw_net *net, const l2rw_fd_batch *b,
                             const float *theta, const float *v, double t,
                             float *loss, double *l)
{
    size_t np = l2rw_net_num_params(net);
    float *p = l2rw_net_params(net);
    for (size_t j = 0; j < np; j++) p[j] = (float)(theta[j] + t * v[j]);
    l2rw_status s = l2rw_net_forward(net, b->x, b->n, b->mode, 0);
    if (s == L2RW_OK) s = l2rw_net_loss(net, b->y, ce_loss(), loss, NULL);
    double sum = 0.0;
    for (int i = 0; s == L2RW_OK && i < b->n; i++) {
        l[i] = loss[i];
        sum += (double)b->w[i] * loss[i];
    }
    l[b->n] = sum;
    memcpy(p, theta, np * sizeof *p);
    return s;
}

l2rw_status l2rw__fd_tangent_check(l2rw_net *net, const l2rw_fd_batch *b,
                                   const l2rw_fd_tol *tol, uint64_t seed,
                                   l2rw_fd_result *res)
{
    memset(res, 0, sizeof *res);
    size_t np = l2rw_net_num_params(net);
    int n = b->n;
    /* Series compared: the n examples, then F = sum_i w_i l_i (series
     * n, whose tangent is sum_i w_i u_i). */
    int first = 0, last = n + 1, m = n + 1;
    float *v = malloc(np * sizeof *v), *theta = malloc(np * sizeof *theta);
    float *loss = malloc((size_t)n * sizeof *loss);
    float *uf = malloc((size_t)n * sizeof *uf);
    double *u = malloc((size_t)m * sizeof *u);
    /* series values at -h, -h/2, 0, h/2, h: five rows of m */
    double *f = malloc(5 * (size_t)m * sizeof *f);
    int *done_i = calloc((size_t)m, sizeof *done_i);
    l2rw_status s = (v && theta && loss && uf && u && f && done_i)
                        ? L2RW_OK
                        : l2rw__fail(L2RW_ERR_NOMEM,
                                     "fd_tangent_check: out of memory");
    if (s != L2RW_OK) goto done;
    memcpy(theta, l2rw_net_params(net), np * sizeof *theta);
    random_direction(net, seed, v);
    s = tangent_u(net, b, v, loss, uf);
    if (s != L2RW_OK) goto done;
    u[n] = 0.0;
    for (int i = 0; i < n; i++) {
        u[i] = uf[i];
        u[n] += (double)b->w[i] * uf[i];
    }
    double umax = 0.0;
    for (int i = first; i < last; i++) umax = fmax(umax, fabs(u[i]));
    s = losses_at(net, b, theta, v, 0.0, loss, f + 2 * (size_t)m);
    /* Each series is compared at the largest step where it is smooth:
     * halving the step moves the probe off kinks. */
    double h = tol->h0, hmin = tol->h0;
    static const double mult[4] = {-1.0, -0.5, 0.5, 1.0};
    static const int slot[4] = {0, 1, 3, 4};
    int worst = -1;
    double worst_fd = 0.0;
    for (int level = 0; level <= FD_MAX_HALVINGS && s == L2RW_OK; level++) {
        for (int k = 0; k < 4 && s == L2RW_OK; k++)
            s = losses_at(net, b, theta, v, mult[k] * h, loss,
                          f + (size_t)slot[k] * m);
        if (s != L2RW_OK) break;
        int left = 0;
        for (int i = first; i < last; i++) {
            if (done_i[i]) continue;
            double fi[5];
            for (int k = 0; k < 5; k++) fi[k] = f[(size_t)k * m + i];
            fd_probe pr = probe_of(fi, h, h / 2, h / 2, h);
            double noise = FD_NOISE_EPS * fabs(fi[2]);
            if (!probe_smooth(&pr, noise, h)) {
                left++;
                continue;
            }
            done_i[i] = 1;
            double floor = fmax(probe_floor(noise, h, tol->rtol),
                                tol->floor_frac * umax);
            res->floor = fmax(res->floor, floor);
            double est = 0.0;
            double e = probe_err(&pr, u[i], floor, &est);
            res->checked++;
            if (e >= res->max_rel_err) {
                res->max_rel_err = e;
                worst = i;
                worst_fd = est;
            }
        }
        hmin = h;
        if (left == 0) break;
        h /= 2;
    }
    if (s != L2RW_OK) goto done;
    int total = last - first;
    res->skipped = total - res->checked;
    int need = (total + 1) / 2;
    res->passed = res->checked >= need && res->max_rel_err <= tol->rtol;
    if (res->checked < need)
        snprintf(res->detail, sizeof res->detail,
                 "only %d of %d examples smooth down to step %.1e (need %d)",
                 res->checked, total, hmin, need);
    else
        snprintf(res->detail, sizeof res->detail,
                 "%d of %d series (examples, F) compared, %d skipped at "
                 "kinks, steps down to %.1e, worst %s%d: tangent %.6e fd "
                 "%.6e",
                 res->checked, total, res->skipped, hmin,
                 worst == n ? "F=" : "#", worst, u[worst], worst_fd);
done:
    free(v);
    free(theta);
    free(loss);
    free(uf);
    free(u);
    free(f);
    free(done_i);
    return s;
}

l2rw_status l2rw__tangent_vs_backward(l2rw_net *net, const l2rw_fd_batch *b,
                                      uint64_t seed, l2rw_fd_result *res)
{
    memset(res, 0, sizeof *res);
    size_t np = l2rw_net_num_params(net);
    int n = b->n;
    float *v = malloc(np * sizeof *v);
    float *loss = malloc((size_t)n * sizeof *loss);
    float *u = malloc((size_t)n * sizeof *u);
    float *u2 = malloc((size_t)n * sizeof *u2);
    float *e = calloc((size_t)n, sizeof *e);
    l2rw_status s = (v && loss && u && u2 && e)
                        ? L2RW_OK
                        : l2rw__fail(L2RW_ERR_NOMEM,
                                     "tangent_vs_backward: out of memory");
    if (s != L2RW_OK) goto done;
    random_direction(net, seed, v);
    s = tangent_u(net, b, v, loss, u);
    double umax = 0.0;
    for (int i = 0; i < n && s == L2RW_OK; i++)
        umax = fmax(umax, fabs((double)u[i]));
    int worst = 0;
    double worst_dot = 0.0;
    for (int i = 0; i < n && s == L2RW_OK; i++) {
        /* Fresh forward and loss so each backward starts from the same
         * kept activations. */
        s = tangent_u(net, b, v, loss, u2);
        if (s != L2RW_OK) break;
        memset(e, 0, (size_t)n * sizeof *e);
        e[i] = 1.0f;
        s = l2rw_net_backward(net, e);
        if (s != L2RW_OK) break;
        const float *g = l2rw_net_grads(net);
        double dot = 0.0, mag = 0.0;
        for (size_t j = 0; j < np; j++) {
            dot += (double)v[j] * g[j];
            mag += fabs((double)v[j] * g[j]);
        }
        /* Rounding of both sides scales with the terms summed, not with
         * their (possibly cancelling) sum. */
        double floor = 1e-2 * fmax(umax, mag);
        double err = rel_err(u[i], dot, floor);
        res->floor = fmax(res->floor, floor);
        if (err >= res->max_rel_err) {
            res->max_rel_err = err;
            worst = i;
            worst_dot = dot;
        }
    }
    if (s != L2RW_OK) goto done;
    res->checked = n;
    res->passed = res->max_rel_err <= L2RW_TVB_RTOL;
    snprintf(res->detail, sizeof res->detail,
             "%d examples, worst #%d: tangent %.8e, <v, grad l_i> %.8e", n,
             worst, (double)u[worst], worst_dot);
done:
    free(v);
    free(loss);
    free(u);
    free(u2);
    free(e);
    return s;
}

/* ------------------------------------------------------------ harness */

typedef l2rw__tally tally;

void l2rw__tally_report(void *ctx, const char *name, int passed,
                        double max_rel_err, const char *detail)
{
    tally *t = ctx;
    if (passed) t->sum.passed++;
    else t->sum.failed++;
    if (max_rel_err > t->sum.max_rel_err || max_rel_err != max_rel_err)
        t->sum.max_rel_err = max_rel_err;
    t->user(t->ctx, name, passed, max_rel_err, detail);
}

/* Report a check that could not run: the error is its detail. */
static void report_error(tally *t, const char *name, l2rw_status s)
{
    char detail[600];
    snprintf(detail, sizeof detail, "%s: %s", l2rw_strerror(s),
             l2rw_last_error());
    l2rw__tally_report(t, name, 0, 0.0, detail);
}

/* A random batch: x ~ N(0, 1), labels uniform, weights positive summing
 * to 1 (unequal, so the weighting of the backward is exercised). */
typedef struct {
    float *x, *w;
    int32_t *y;
    l2rw_fd_batch b;
} batch;

static l2rw_status batch_make(batch *bt, int n, int c, int h, int w,
                              int classes, uint64_t seed)
{
    size_t per = (size_t)c * h * w;
    bt->x = malloc((size_t)n * per * sizeof *bt->x);
    bt->w = malloc((size_t)n * sizeof *bt->w);
    bt->y = malloc((size_t)n * sizeof *bt->y);
    if (!bt->x || !bt->w || !bt->y)
        return l2rw__fail(L2RW_ERR_NOMEM, "self check: out of memory");
    l2rw_rng rng;
    l2rw_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)n * per; i++)
        bt->x[i] = (float)l2rw_rng_normal(&rng);
    double tot = 0.0;
    for (int i = 0; i < n; i++) {
        bt->y[i] = (int32_t)l2rw_rng_below(&rng, (uint64_t)classes);
        bt->w[i] = (float)(0.5 + l2rw_rng_uniform(&rng));
        tot += bt->w[i];
    }
    for (int i = 0; i < n; i++) bt->w[i] = (float)(bt->w[i] / tot);
    bt->b = (l2rw_fd_batch){bt->x, bt->y, bt->w, n, L2RW_MODE_TRAIN_FROZEN};
    return L2RW_OK;
}

static void batch_free(batch *bt)
{
    free(bt->x);
    free(bt->w);
    free(bt->y);
}

/* The three network checks (gradient, tangent, tangent vs backward) of
 * one net on one batch, reported as "<label> gradient" and so on. */
static void check_net(tally *t, l2rw_net *net, const l2rw_fd_batch *b,
                      const char *label, int samples,
                      const l2rw_fd_tol *tol, uint64_t seed)
{
    char name[160];
    l2rw_fd_result r;
    l2rw_status s;

    snprintf(name, sizeof name, "%s gradient", label);
    s = l2rw__fd_grad_check(net, b, samples, tol, seed, &r);
    if (s != L2RW_OK) report_error(t, name, s);
    else l2rw__tally_report(t, name, r.passed, r.max_rel_err, r.detail);

    snprintf(name, sizeof name, "%s tangent", label);
    s = l2rw__fd_tangent_check(net, b, tol, seed + 1, &r);
    if (s != L2RW_OK) report_error(t, name, s);
    else l2rw__tally_report(t, name, r.passed, r.max_rel_err, r.detail);

    snprintf(name, sizeof name, "%s tangent vs backward", label);
    s = l2rw__tangent_vs_backward(net, b, seed + 2, &r);
    if (s != L2RW_OK) report_error(t, name, s);
    else l2rw__tally_report(t, name, r.passed, r.max_rel_err, r.detail);
}

/* -------------------------------------------------------- layer checks */

enum { LAYER_CLASSES = 3, LAYER_BATCH = 5 };

typedef int (*graph_fn)(l2rw_graph *g);

typedef struct {
    const char *name;
    int c, h, w;
    graph_fn build; /* returns the node before the final dense */
    l2rw_mode mode;
} layer_case;

static int lg_dense(l2rw_graph *g) { return l2rw__g_dense(g, 0, 6); }

static int lg_conv(l2rw_graph *g)
{
    /* odd sizes, stride 2 with padding, an even kernel, no bias, 1x1 */
    int x = l2rw__g_conv(g, 0, 3, 3, 2, 1, 1);
    x = l2rw__g_conv(g, x, 4, 2, 1, 0, 0);
    return l2rw__g_conv(g, x, 2, 1, 1, 0, 1);
}

static int lg_relu(l2rw_graph *g)
{
    return l2rw__g_relu(g, l2rw__g_dense(g, 0, 8));
}

/* Pooling graphs keep few windows (5x5 maps): every window whose two
 * largest inputs are within a step of each other is a kink on the path
 * of every weight of its channel. */
static int lg_maxpool(l2rw_graph *g)
{
    /* overlapping 3x3 windows, stride 2 (5x5 -> 2x2), then 2x2 */
    int x = l2rw__g_conv(g, 0, 2, 3, 1, 1, 1);
    x = l2rw__g_maxpool(g, x, 3, 2);
    return l2rw__g_maxpool(g, x, 2, 2);
}

static int lg_maxpool_odd(l2rw_graph *g)
{
    /* 2x2 windows on an odd size: the last row and column are unused */
    return l2rw__g_maxpool(g, l2rw__g_conv(g, 0, 2, 3, 1, 1, 1), 2, 2);
}

static int lg_avgpool(l2rw_graph *g)
{
    return l2rw__g_avgpool_global(g, l2rw__g_conv(g, 0, 4, 3, 1, 1, 1));
}

static int lg_batchnorm(l2rw_graph *g)
{
    int x = l2rw__g_batchnorm(g, l2rw__g_conv(g, 0, 4, 3, 1, 1, 0));
    x = l2rw__g_relu(g, x);
    return l2rw__g_batchnorm(g, l2rw__g_dense(g, x, 6)); /* on units */
}

static int lg_add(l2rw_graph *g)
{
    int a = l2rw__g_conv(g, 0, 3, 3, 1, 1, 1);
    int b = l2rw__g_relu(g, l2rw__g_conv(g, a, 3, 3, 1, 1, 0));
    return l2rw__g_add(g, a, b);
}

static int lg_flatten(l2rw_graph *g)
{
    return l2rw__g_flatten(g, l2rw__g_conv(g, 0, 2, 3, 1, 0, 1));
}

static int lg_dropout(l2rw_graph *g)
{
    return l2rw__g_dropout(g, l2rw__g_dense(g, 0, 10), 0.5f);
}

static const layer_case layer_cases[] = {
    {"layer dense", 2, 3, 3, lg_dense, L2RW_MODE_TRAIN_FROZEN},
    {"layer conv", 2, 7, 6, lg_conv, L2RW_MODE_TRAIN_FROZEN},
    {"layer relu", 2, 3, 3, lg_relu, L2RW_MODE_TRAIN_FROZEN},
    {"layer maxpool", 2, 5, 5, lg_maxpool, L2RW_MODE_TRAIN_FROZEN},
    {"layer maxpool 2x2 odd", 2, 5, 5, lg_maxpool_odd,
     L2RW_MODE_TRAIN_FROZEN},
    {"layer avgpool", 2, 5, 6, lg_avgpool, L2RW_MODE_TRAIN_FROZEN},
    {"layer batchnorm (train)", 2, 5, 5, lg_batchnorm,
     L2RW_MODE_TRAIN_FROZEN},
    {"layer batchnorm (eval)", 2, 5, 5, lg_batchnorm, L2RW_MODE_EVAL},
    {"layer add", 2, 5, 5, lg_add, L2RW_MODE_TRAIN_FROZEN},
    {"layer flatten", 2, 5, 5, lg_flatten, L2RW_MODE_TRAIN_FROZEN},
    {"layer dropout", 3, 2, 2, lg_dropout, L2RW_MODE_TRAIN_FROZEN},
};

static l2rw_status build_layer_net(const layer_case *lc, int max_batch,
                                   uint64_t seed, l2rw_net **net)
{
    l2rw_graph *g;
    L2RW_TRY(l2rw__graph_new(&g, lc->c, lc->h, lc->w));
    int x = lc->build(g);
    int out = l2rw__g_dense(g, x, LAYER_CLASSES);
    /* compile reports a builder error recorded in g, and frees g */
    return l2rw__graph_compile(g, out, lc->name, LAYER_CLASSES, max_batch,
                               seed, net);
}

static void check_layers(tally *t, int samples)
{
    int n_cases = (int)(sizeof layer_cases / sizeof layer_cases[0]);
    for (int k = 0; k < n_cases; k++) {
        const layer_case *lc = &layer_cases[k];
        uint64_t seed = 1000 + (uint64_t)k;
        l2rw_net *net = NULL;
        batch bt = {0};
        l2rw_status s = build_layer_net(lc, LAYER_BATCH, seed, &net);
        if (s == L2RW_OK)
            s = batch_make(&bt, LAYER_BATCH, lc->c, lc->h, lc->w,
                           LAYER_CLASSES, seed);
        if (s == L2RW_OK && lc->mode == L2RW_MODE_EVAL) {
            /* move the running averages away from (0, 1) first */
            s = l2rw_net_forward(net, bt.x, bt.b.n, L2RW_MODE_TRAIN, 0);
        }
        if (s == L2RW_OK) l2rw_net_set_dropout_key(net, seed);
        bt.b.mode = lc->mode;
        if (s == L2RW_OK)
            check_net(t, net, &bt.b, lc->name, samples, &l2rw__fd_tol_layer,
                      seed);
        else report_error(t, lc->name, s);
        batch_free(&bt);
        l2rw_net_free(net);
    }
}

/* ---------------------------------------------------------- zoo checks */

typedef struct {
    const char *model;
    int c, h, w, classes;
} zoo_case;

static const zoo_case zoo_cases[] = {
    {"mlp", 1, 8, 8, 4},
    {"lenet", 1, 16, 16, 4},
    {"resnet8", 3, 8, 8, 4},
    {"wrn-10-1:0.3", 3, 8, 8, 4},
};

enum { ZOO_BATCH = 4 };

static void check_zoo(tally *t, int samples)
{
    int n_cases = (int)(sizeof zoo_cases / sizeof zoo_cases[0]);
    for (int k = 0; k < n_cases; k++) {
        const zoo_case *zc = &zoo_cases[k];
        uint64_t seed = 2000 + (uint64_t)k;
        char label[96];
        snprintf(label, sizeof label, "model %s", zc->model);
        l2rw_net *net = NULL;
        batch bt = {0};
        l2rw_status s = l2rw_net_create(&net, zc->model, zc->c, zc->h, zc->w,
                                        zc->classes, ZOO_BATCH, seed);
        if (s == L2RW_OK)
            s = batch_make(&bt, ZOO_BATCH, zc->c, zc->h, zc->w, zc->classes,
                           seed);
        if (s == L2RW_OK) {
            l2rw_net_set_dropout_key(net, seed);
            check_net(t, net, &bt.b, label, samples, &l2rw__fd_tol_model,
                      seed);
        } else {
            report_error(t, label, s);
        }
        batch_free(&bt);
        l2rw_net_free(net);
    }
}

typedef struct {
    const char *model;
    int c, h, w, classes;
    size_t params;
    int big; /* full mode only */
} count_case;

/* lenet on 1x28x28: conv 16*25+16, conv 32*16*25+32, dense 512*100+100,
 * dense 100*10+10. resnet32 with 1x1 projection shortcuts (option B):
 * 464,154 of the paper's option A plus 2,752. wrn-28-10: the authors'
 * 36.5M (36,479,194 with bias-free convolutions). */
static const count_case count_cases[] = {
    {"lenet", 1, 28, 28, 10, 65558, 0},
    {"resnet32", 3, 32, 32, 10, 466906, 0},
    {"wrn-28-10", 3, 32, 32, 10, 36479194, 1},
};

static void check_counts(tally *t, int quick)
{
    int n_cases = (int)(sizeof count_cases / sizeof count_cases[0]);
    for (int k = 0; k < n_cases; k++) {
        const count_case *cc = &count_cases[k];
        if (quick && cc->big) continue;
        char name[96], detail[160];
        snprintf(name, sizeof name, "parameter count %s", cc->model);
        l2rw_net *net = NULL;
        l2rw_status s = l2rw_net_create(&net, cc->model, cc->c, cc->h, cc->w,
                                        cc->classes, 1, 1);
        if (s != L2RW_OK) {
            report_error(t, name, s);
            continue;
        }
        size_t got = l2rw_net_num_params(net);
        snprintf(detail, sizeof detail, "%zu parameters, expected %zu", got,
                 cc->params);
        l2rw__tally_report(t, name, got == cc->params, 0.0, detail);
        l2rw_net_free(net);
    }
}

/* ------------------------------------------------------ save and load */

static void temp_path(char *buf, size_t cap, const char *tag)
{
    static int counter;
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    snprintf(buf, cap, "%s/l2rw-check-%ld-%d-%s", dir, (long)getpid(),
             counter++, tag);
}

/* Eval-mode logits of net on x into out[n * classes]. */
static l2rw_status logits_of(l2rw_net *net, const float *x, int n,
                             float *out)
{
    L2RW_TRY(l2rw_net_forward(net, x, n, L2RW_MODE_EVAL, 0));
    memcpy(out, l2rw_net_logits(net),
           (size_t)n * l2rw_net_classes(net) * sizeof *out);
    return L2RW_OK;
}

/* Copy src to dst keeping `keep` bytes, with byte `flip` (if >= 0)
 * inverted. */
static int copy_damaged(const char *src, const char *dst, long keep,
                        long flip)
{
    FILE *in = fopen(src, "rb");
    if (!in) return -1;
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return -1;
    }
    int ch, rc = 0;
    for (long i = 0; (keep < 0 || i < keep) && (ch = fgetc(in)) != EOF;
         i++) {
        if (i == flip) ch ^= 0xFF;
        if (fputc(ch, out) == EOF) rc = -1;
    }
    fclose(in);
    if (fclose(out) != 0) rc = -1;
    return rc;
}

static long file_size(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    long n = -1;
    if (fseek(fp, 0, SEEK_END) == 0) n = ftell(fp);
    fclose(fp);
    return n;
}

static void check_save_load(tally *t, const zoo_case *zc)
{
    enum { N = 3 };
    char name[96], path[400], bad[420], detail[200];
    snprintf(name, sizeof name, "save/load %s", zc->model);
    temp_path(path, sizeof path, "model.bin");
    snprintf(bad, sizeof bad, "%s.bad", path);
    l2rw_net *a = NULL, *b = NULL, *c = NULL, *other = NULL;
    batch bt = {0};
    size_t nl = (size_t)N * zc->classes;
    float *la = malloc(nl * sizeof *la), *lb = malloc(nl * sizeof *lb);
    l2rw_status s = (la && lb) ? L2RW_OK
                               : l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    if (s == L2RW_OK)
        s = l2rw_net_create(&a, zc->model, zc->c, zc->h, zc->w, zc->classes,
                            N, 11);
    if (s == L2RW_OK)
        s = batch_make(&bt, N, zc->c, zc->h, zc->w, zc->classes, 11);
    /* a training forward gives batch norm non-trivial running averages */
    if (s == L2RW_OK) s = l2rw_net_forward(a, bt.x, N, L2RW_MODE_TRAIN, 0);
    if (s == L2RW_OK) s = logits_of(a, bt.x, N, la);
    if (s == L2RW_OK) s = l2rw_net_save(a, path);
    if (s == L2RW_OK) s = l2rw_net_load_new(&b, path, N);
    if (s == L2RW_OK) s = logits_of(b, bt.x, N, lb);
    if (s != L2RW_OK) {
        report_error(t, name, s);
        goto done;
    }
    int same = memcmp(la, lb, nl * sizeof *la) == 0;
    /* load into a net of the same model but other initial weights */
    s = l2rw_net_create(&c, zc->model, zc->c, zc->h, zc->w, zc->classes, N,
                        12);
    if (s == L2RW_OK) s = l2rw_net_load(c, path);
    if (s == L2RW_OK) s = logits_of(c, bt.x, N, lb);
    if (s != L2RW_OK) {
        report_error(t, name, s);
        goto done;
    }
    same = same && memcmp(la, lb, nl * sizeof *la) == 0;
    snprintf(detail, sizeof detail,
             "logits after load_new and load %s the saved net's",
             same ? "bit-identical to" : "DIFFER from");
    l2rw__tally_report(t, name, same, 0.0, detail);

    /* refusals: another architecture, a flipped byte, a truncated file */
    snprintf(name, sizeof name, "load refuses bad files (%s)", zc->model);
    s = l2rw_net_create(&other, "mlp:3", zc->c, zc->h, zc->w, zc->classes, N,
                        1);
    if (s != L2RW_OK) {
        report_error(t, name, s);
        goto done;
    }
    l2rw_status s_arch = l2rw_net_load(other, path);
    long size = file_size(path);
    l2rw_status s_flip = L2RW_OK, s_trunc = L2RW_OK;
    if (size > 16 && copy_damaged(path, bad, -1, size / 2) == 0)
        s_flip = l2rw_net_load(c, bad);
    if (size > 16 && copy_damaged(path, bad, size - 5, -1) == 0)
        s_trunc = l2rw_net_load(c, bad);
    snprintf(detail, sizeof detail,
             "other arch: %s, flipped byte: %s, truncated: %s",
             l2rw_strerror(s_arch), l2rw_strerror(s_flip),
             l2rw_strerror(s_trunc));
    l2rw__tally_report(t, name,
                 s_arch == L2RW_ERR_ARCH && s_flip == L2RW_ERR_FORMAT &&
                     s_trunc == L2RW_ERR_FORMAT,
                 0.0, detail);
done:
    remove(path);
    remove(bad);
    batch_free(&bt);
    free(la);
    free(lb);
    l2rw_net_free(a);
    l2rw_net_free(b);
    l2rw_net_free(c);
    l2rw_net_free(other);
}

/* -------------------------------------------------------- determinism */

enum { DET_STEPS = 3, DET_BATCH = 4 };

/* A short training run from seed; params, state and logits into out
 * (allocated here). */
static l2rw_status train_run(const zoo_case *zc, float **out, size_t *len)
{
    l2rw_net *net = NULL;
    l2rw_sgd *opt = NULL;
    batch bt = {0};
    l2rw_sgd_cfg cfg = {.lr = 0.05f, .momentum = 0.9f,
                        .weight_decay = 5e-4f, .n_milestones = 1,
                        .milestones = {2}, .decay = 0.1f};
    *out = NULL;
    l2rw_status s = l2rw_net_create(&net, zc->model, zc->c, zc->h, zc->w,
                                    zc->classes, DET_BATCH, 21);
    if (s == L2RW_OK) s = l2rw_sgd_create(&opt, net, &cfg);
    if (s == L2RW_OK)
        s = batch_make(&bt, DET_BATCH, zc->c, zc->h, zc->w, zc->classes, 21);
    for (long step = 0; s == L2RW_OK && step < DET_STEPS; step++) {
        l2rw_net_set_dropout_key(net, 100 + (uint64_t)step);
        s = l2rw_net_forward(net, bt.x, DET_BATCH, L2RW_MODE_TRAIN, 0);
        if (s == L2RW_OK) s = l2rw_net_loss(net, bt.y, ce_loss(), NULL, NULL);
        if (s == L2RW_OK) s = l2rw_net_backward(net, bt.w);
        if (s == L2RW_OK) s = l2rw_sgd_step(opt, net, step);
    }
    if (s == L2RW_OK) s = l2rw_net_forward(net, bt.x, DET_BATCH,
                                           L2RW_MODE_EVAL, 0);
    if (s == L2RW_OK) {
        size_t np = l2rw_net_num_params(net), ns = l2rw_net_num_state(net);
        size_t nl = (size_t)DET_BATCH * zc->classes;
        *len = np + ns + nl;
        *out = malloc(*len * sizeof **out);
        if (!*out) {
            s = l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
        } else {
            memcpy(*out, l2rw_net_params(net), np * sizeof **out);
            memcpy(*out + np, l2rw_net_state(net), ns * sizeof **out);
            memcpy(*out + np + ns, l2rw_net_logits(net), nl * sizeof **out);
        }
    }
    batch_free(&bt);
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
    return s;
}

static void check_determinism(tally *t, const zoo_case *zc)
{
    char name[96], detail[160];
    snprintf(name, sizeof name, "repeatable training %s (%d threads)",
             zc->model, l2rw_get_threads());
    float *r1 = NULL, *r2 = NULL;
    size_t n1 = 0, n2 = 0;
    l2rw_status s = train_run(zc, &r1, &n1);
    if (s == L2RW_OK) s = train_run(zc, &r2, &n2);
    if (s != L2RW_OK) {
        report_error(t, name, s);
    } else {
        int same = n1 == n2 && memcmp(r1, r2, n1 * sizeof *r1) == 0;
        snprintf(detail, sizeof detail,
                 "%d SGD steps twice: parameters, statistics and logits %s",
                 DET_STEPS, same ? "bit-identical" : "DIFFER");
        l2rw__tally_report(t, name, same, 0.0, detail);
    }
    free(r1);
    free(r2);
}

/* ---------------------------------------------------------------- main */

/* Defined by reweight_check.c when it is part of the build. */
extern l2rw_status l2rw__selfcheck_reweight(l2rw_check_fn report, void *ctx,
                                            l2rw_check_summary *sum)
    __attribute__((weak));

l2rw_status l2rw_self_check(l2rw_check_fn report, void *ctx, int quick,
                            l2rw_check_summary *out)
{
    if (!report || !out)
        return l2rw__fail(L2RW_ERR_ARG, "self_check: NULL argument");
    tally t = {report, ctx, {0, 0, 0.0}};
    int samples = quick ? 20 : 40;
    check_layers(&t, samples);
    check_zoo(&t, samples);
    check_counts(&t, quick);
    check_save_load(&t, &zoo_cases[1]); /* lenet: no state */
    check_save_load(&t, &zoo_cases[2]); /* resnet8: batch-norm state */
    check_determinism(&t, &zoo_cases[2]);
    if (!quick) check_determinism(&t, &zoo_cases[3]); /* with dropout */
    if (l2rw__selfcheck_reweight) {
        l2rw_check_summary so_far = t.sum;
        l2rw_status s = l2rw__selfcheck_reweight(l2rw__tally_report, &t, &so_far);
        if (s != L2RW_OK) report_error(&t, "reweighting checks", s);
    }
    *out = t.sum;
    return L2RW_OK;
}
