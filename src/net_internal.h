/* Engine internals offered to other modules of the library (not API). */
#ifndef L2RW_NET_INTERNAL_H
#define L2RW_NET_INTERNAL_H

#include "l2rw.h"

/* Input activations [n, *dim] of the last dense layer (the one of
 * l2rw_net_last_layer_range) in the last forward, NULL before a forward
 * or when the net has no dense layer. Valid until the next forward. Lets
 * the reweighting compute last-layer meta scores without a tangent pass. */
const float *l2rw__net_last_input(const l2rw_net *net, int *dim);

#endif
