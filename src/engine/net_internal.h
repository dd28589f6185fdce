/* Engine internals offered to other modules of the library (not API). */
#ifndef L2RW_NET_INTERNAL_H
#define L2RW_NET_INTERNAL_H

#include "l2rw.h"

/* ------------------------------------------------- back end of a net */
struct l2rw__backend;

/* The table every buffer of the net belongs to (backend.h). */
const struct l2rw__backend *l2rw__net_backend(const l2rw_net *net);
/* The back-end pointer of a buffer (device memory on a device: for
 * kernels of the same table, never for the host), NULL for the logits
 * before a forward. */
float *l2rw__net_buf(const l2rw_net *net, l2rw_net_buffer which);
/* l2rw_net_create on a given table (a back end that is not a device of
 * l2rw_device: the checking back end of the tests); l2rw_net_device
 * then says "cpu". */
l2rw_status l2rw__net_create_be(l2rw_net **out, const char *model,
                                int channels, int height, int width,
                                int classes, int max_batch, uint64_t seed,
                                const struct l2rw__backend *be);
/* The table of a device, after making the device ready (CUDA: its
 * context); L2RW_ERR_UNSUPPORTED with the reason where it cannot run. */
l2rw_status l2rw__backend_of(const l2rw_device *dev,
                             const struct l2rw__backend **be);

/* While on, the batches that l2rw_net_forward is given (and every call
 * that passes a batch on to it: l2rw_method_step, l2rw_evaluate, ...)
 * are back-end memory, gathered on the device by the caller, and are
 * copied there instead of uploaded. No effect on a host back end, where
 * the two are the same memory. Off when the net is created. */
void l2rw__net_input_on_device(l2rw_net *net, int on);

/* Input activations [n, *dim] of the last dense layer (the one of
 * l2rw_net_last_layer_range) in the last forward, NULL before a forward
 * or when the net has no dense layer. Valid until the next forward. Lets
 * the reweighting compute last-layer meta scores without a tangent pass.
 * Back-end memory: host-readable only when l2rw__net_backend(net)->host. */
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
 * node's parameters are at params + p_off, its state at state + s_off.
 * params and state are back-end memory (see l2rw__net_buf): an exporter
 * of a net whose back end is not the host's reads copies instead. */
struct l2rw__node;
typedef struct {
    const struct l2rw__node *nodes;
    int n_nodes, output;
    const float *params, *state;
} l2rw__net_view;
l2rw__net_view l2rw__net_view_of(const l2rw_net *net);

#endif
