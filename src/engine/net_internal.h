/* Engine internals offered to other modules of the library (not API). */
#ifndef L2RW_NET_INTERNAL_H
#define L2RW_NET_INTERNAL_H

#include "l2rw.h"

/* Input activations [n, *dim] of the last dense layer (the one of
 * l2rw_net_last_layer_range) in the last forward, NULL before a forward
 * or when the net has no dense layer. Valid until the next forward. Lets
 * the reweighting compute last-layer meta scores without a tangent pass. */
const float *l2rw__net_last_input(const l2rw_net *net, int *dim);

/* The L2RW scores without a tangent pass, for nets whose examples do not
 * couple: every live layer with parameters is a conv or dense layer (no
 * batch norm). 1 when that holds. */
int l2rw__net_each_ok(const l2rw_net *net);
/* After a forward (no tangent needed) and l2rw_net_loss: one backward of
 * the unweighted per-example losses keeps, per example, the weight
 * gradient of every conv layer and the output gradient of every dense
 * layer; then u_i = <tangent buffer, grad l_i> (the u of the tangent path,
 * to rounding). L2RW_ERR_UNSUPPORTED unless l2rw__net_each_ok. */
l2rw_status l2rw__net_scores_each(l2rw_net *net, float *u);
/* The parameter gradients of sum_i w_i l_i (w NULL: the mean) from the
 * captures of the last l2rw__net_scores_each: l2rw_net_backward's result,
 * to rounding, without a second backward through the layers. */
l2rw_status l2rw__net_backward_each(l2rw_net *net, const float *w);

/* The compiled graph, read-only, for exporters (onnx_export.c): node 0 is
 * the input, creation order is a topological order, `output` is the logits
 * node (nodes that are no ancestor of it take no part in a pass); each
 * node's parameters are at params + p_off, its state at state + s_off. */
struct l2rw__node;
typedef struct {
    const struct l2rw__node *nodes;
    int n_nodes, output;
    const float *params, *state;
} l2rw__net_view;
l2rw__net_view l2rw__net_view_of(const l2rw_net *net);

#endif
