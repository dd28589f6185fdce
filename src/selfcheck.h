/* Finite-difference checks of whole networks (selfcheck.c), used by
 * l2rw_self_check and the tests.
 *
 * The checked function is F(theta) = sum_i w_i l_i(theta), the summed
 * weighted cross entropy of one batch, evaluated by the float32 net and
 * summed in double. Every evaluation runs in the batch's mode; use
 * L2RW_MODE_TRAIN_FROZEN for training-mode checks so that batch-norm
 * running averages do not move between evaluations. Dropout nets must
 * have their key set: the mask is then the same in every evaluation. */
#ifndef L2RW_SELFCHECK_H
#define L2RW_SELFCHECK_H

#include "common.h"

/* Relative tolerance of the finite-difference comparisons of layers.
 * The net is float32, so a central difference with step h carries a
 * rounding error of about 2 eps32 |F| / h besides its O(h^2) truncation
 * error; with h = 1e-2 both stay far below 5% of a typical coordinate,
 * while a wrong rule (a missing term, a transposed kernel, a wrong mask)
 * is off by O(1). The rounding enters as an absolute floor
 * (l2rw_fd_result.floor). Measured over 60 seeds: at most 3.3e-2
 * (batch-norm tangent), typically 1e-4..1e-3. */
#define L2RW_FD_RTOL 5e-2
/* The tangent against the backward is exact up to float32 rounding of
 * two different evaluation orders (measured: below 3e-6). */
#define L2RW_TVB_RTOL 1e-3

/* Tolerance of a finite-difference comparison: pass when every
 * |a - b| / max(|a|, |b|, floor) <= rtol with floor = floor_frac times
 * the largest entry (|g|max or max |u_i|), or the rounding floor if
 * larger, comparing with the nearest of the central and the one-sided
 * estimates (selfcheck.c).
 *   layer: shallow graphs, {L2RW_FD_RTOL, 1e-3}, tangent step 1e-2.
 *   model: deep zoo nets, {1e-1, 1e-1}, tangent step 2^-12. Moving one
 *     weight of a deep ReLU net moves thousands of units (batch of 4,
 *     8x8 maps); some cross their kink within any step float32 can
 *     resolve, each too small to detect, and together they bias a
 *     quotient by a few percent of its value or ~1% of the largest
 *     entry. Measured over 60 seeds on mlp, lenet, resnet8 and
 *     wrn-10-1: at most 4.2e-2 (gradient) and 5.0e-2 (tangent). A
 *     wrong rule is off by O(1); the exact tangent-vs-backward check
 *     covers the rest at 1e-3. */
typedef struct {
    double rtol, floor_frac;
    double h0; /* first step of the tangent check */
} l2rw_fd_tol;
extern const l2rw_fd_tol l2rw__fd_tol_layer, l2rw__fd_tol_model;

typedef struct {
    const float *x;    /* [n, c, h, w] */
    const int32_t *y;  /* [n] */
    const float *w;    /* [n] example weights */
    int n;
    l2rw_mode mode;
} l2rw_fd_batch;

typedef struct {
    int passed;
    int checked;        /* coordinates (or examples) compared */
    int skipped;        /* coordinates skipped near a kink */
    double max_rel_err; /* largest |a - b| / max(|a|, |b|, floor) */
    double floor;       /* the absolute floor used in the denominator */
    char detail[200];
} l2rw_fd_result;

/* Gradient of F (l2rw_net_backward with weights w) against central
 * differences on `samples` coordinates: a quarter the largest gradient
 * entries, the rest drawn uniformly (seeded). Each coordinate is probed
 * at steps h and h/2 (h = 1e-2); a probe whose quotients or second
 * differences disagree sits near a ReLU or max-pool kink and is skipped
 * (counted); the check fails when fewer than half the coordinates
 * remain. Leaves the parameters as they were. */
l2rw_status l2rw__fd_grad_check(l2rw_net *net, const l2rw_fd_batch *b,
                                int samples, const l2rw_fd_tol *tol,
                                uint64_t seed, l2rw_fd_result *res);

/* Per-example tangent u_i (forward with tangent along a seeded dense
 * random direction v on the scale of the weights) against the central
 * difference of t -> l_i(theta + t v). Each example is compared at the
 * largest step (tol->h0, halved up to five times) where its probe is
 * smooth; the check fails when fewer than half the examples get there.
 * F itself (tangent sum_i w_i u_i) is compared as one more series.
 * Overwrites the tangent buffer. */
l2rw_status l2rw__fd_tangent_check(l2rw_net *net, const l2rw_fd_batch *b,
                                   const l2rw_fd_tol *tol, uint64_t seed,
                                   l2rw_fd_result *res);

/* u_i against <v, grad l_i> from a backward with weights e_i, for each
 * example, v dense and random (an exact identity: tolerance
 * L2RW_TVB_RTOL relative to the magnitude of the summed terms). */
l2rw_status l2rw__tangent_vs_backward(l2rw_net *net, const l2rw_fd_batch *b,
                                      uint64_t seed, l2rw_fd_result *res);

/* Reweighting checks, implemented with the reweighting methods
 * (reweight_check.c); called by l2rw_self_check when linked in. Call
 * report once per check: the report function l2rw_self_check passes
 * counts every check into the summary itself, so *sum is read-only
 * information (the counts so far) and must not be added to. */
l2rw_status l2rw__selfcheck_reweight(l2rw_check_fn report, void *ctx,
                                     l2rw_check_summary *sum);

/* A run of checks: the caller's report, and the summary counted from
 * every check passed through l2rw__tally_report (an l2rw_check_fn whose
 * ctx is the tally). */
typedef struct {
    l2rw_check_fn user;
    void *ctx;
    l2rw_check_summary sum;
} l2rw__tally;
void l2rw__tally_report(void *tally, const char *name, int passed,
                        double max_rel_err, const char *detail);

/* l2rw_self_check_device with a test hook: tamper != 0 makes the device
 * net's first parameter 2^-10 of its value off the CPU net's before every
 * stage, so that (on a bit-identical device) every check must fail. */
l2rw_status l2rw__self_check_device(l2rw_check_fn report, void *ctx,
                                    const l2rw_device *dev, int quick,
                                    int tamper, l2rw_check_summary *out);

#endif
