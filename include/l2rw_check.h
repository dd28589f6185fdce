/* l2rw self test (l2rw check). Included by l2rw.h.
 *
 * l2rw_self_check runs, on the built library: gradient and tangent checks
 * of every layer kind through small networks against central finite
 * differences, the same for each zoo model on small inputs, the tangent
 * against the backward (u_i = <v, grad l_i>), save/load round trips,
 * bit-identical repeated training with a fixed seed, zoo parameter
 * counts, and (when linked in) the reweighting checks. Each check is
 * reported through `report` as it finishes. */
#ifndef L2RW_CHECK_API_H
#define L2RW_CHECK_API_H

#include "l2rw.h" /* l2rw_status, l2rw_device (no-op from l2rw.h) */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) /* exported: see l2rw.h */
#pragma GCC visibility push(default)
#endif

/* One finished check: its name, whether it passed, the largest relative
 * error it measured (0 for exact checks) and a one-line detail. */
typedef void (*l2rw_check_fn)(void *ctx, const char *name, int passed,
                              double max_rel_err, const char *detail);

typedef struct {
    int passed, failed;
    double max_rel_err; /* largest over all checks */
} l2rw_check_summary;

/* quick != 0 runs fewer coordinates and skips the large models. Returns
 * L2RW_OK when the checks ran (whether or not they passed: see
 * out->failed); an error only for a NULL argument. A check whose
 * network cannot even be built or run counts as failed. */
l2rw_status l2rw_self_check(l2rw_check_fn report, void *ctx, int quick,
                            l2rw_check_summary *out);

/* Device agreement (l2rw check --device): for small zoo nets (mlp,
 * lenet, resnet8 with batch norm, wrn-10-1 with dropout; quick != 0
 * leaves out a lenet batch of 136), the same net on the CPU and on dev
 * with the same parameters: logits (train and eval), losses, gradient,
 * tangent u_i, the weights and updates of an l2rw_method_step (SGD) and
 * of AdamW, running statistics. Bit-identical required on "checked" (and
 * "cpu"); on CUDA normwise tolerances (selfcheck_device.c). Checks are
 * reported as by l2rw_self_check; an unavailable device is
 * L2RW_ERR_UNSUPPORTED with the reason, and nothing runs. */
l2rw_status l2rw_self_check_device(l2rw_check_fn report, void *ctx,
                                   const l2rw_device *dev, int quick,
                                   l2rw_check_summary *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
