/* Per-example losses on logits, shared by the net (loss and backward) and
 * the tests. Shapes: logits, dlogits, tangent [n, K]; y, loss, u [n]. */
#ifndef L2RW_LOSS_H
#define L2RW_LOSS_H

#include "common.h"

/* loss[i] = l_i(z_i, y_i) for the configured kind;
 * dz[i, :] = d l_i / d z_i (unweighted; the net scales rows by w_i);
 * if zdot != NULL and u != NULL (CE only): u[i] = sum_c dz[i,c] zdot[i,c],
 * the tangent of l_i. Checks labels (L2RW_ERR_LABEL) and finiteness
 * (L2RW_ERR_NUMERIC). dz may be NULL when only losses are wanted. */
l2rw_status l2rw__loss_eval(const l2rw_loss *cfg, const float *z,
                            const float *zdot, const int32_t *y, int n,
                            int k, float *loss, float *dz, float *u);

#endif
