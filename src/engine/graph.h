/* Internal network builder used by the model zoo (zoo.c) and the tests.
 *
 * A network is a static graph of nodes. Node 0 is the input; every other
 * node takes inputs created before it, so creation order is a topological
 * order. Builder calls return the new node's id, or -1 after recording
 * the first error in the graph (later calls then do nothing and return -1,
 * so a zoo function can build a whole model and check once at the end).
 * Shapes are per example: (channels, height, width); dense outputs are
 * (units, 1, 1). */
#ifndef L2RW_GRAPH_H
#define L2RW_GRAPH_H

#include "backend.h"
#include "common.h"

typedef struct l2rw_graph l2rw_graph;

/* New graph whose node 0 is an input of shape (c, h, w). */
l2rw_status l2rw__graph_new(l2rw_graph **out, int c, int h, int w);
void l2rw__graph_free(l2rw_graph *g);
/* First error recorded by a builder call (L2RW_OK if none). */
l2rw_status l2rw__graph_status(const l2rw_graph *g);
/* Output shape of a node. */
void l2rw__graph_shape(const l2rw_graph *g, int node, int *c, int *h, int *w);

int l2rw__g_dense(l2rw_graph *g, int in, int units);   /* flattens input */
int l2rw__g_conv(l2rw_graph *g, int in, int out_c, int k, int stride,
                 int pad, int bias);
int l2rw__g_maxpool(l2rw_graph *g, int in, int k, int stride);
int l2rw__g_avgpool_global(l2rw_graph *g, int in);      /* -> (c, 1, 1) */
int l2rw__g_relu(l2rw_graph *g, int in);
int l2rw__g_batchnorm(l2rw_graph *g, int in);           /* per channel */
int l2rw__g_add(l2rw_graph *g, int a, int b);           /* same shapes */
int l2rw__g_flatten(l2rw_graph *g, int in);             /* -> (c*h*w,1,1) */
int l2rw__g_dropout(l2rw_graph *g, int in, float p);    /* inverted dropout */

/* Compile the graph into a net whose logits are node `output` (shape
 * (classes, 1, 1)); allocates every buffer for max_batch examples once
 * and He-initialises the parameters from seed. Frees g in all cases. */
l2rw_status l2rw__graph_compile(l2rw_graph *g, int output, const char *model,
                                int classes, int max_batch, uint64_t seed,
                                l2rw_net **out);
/* The same on back end `be` (backend.h), which then owns every buffer of
 * the net; l2rw__graph_compile is this on l2rw__backend_cpu. */
l2rw_status l2rw__graph_compile_on(l2rw_graph *g, int output,
                                   const char *model, int classes,
                                   int max_batch, uint64_t seed,
                                   const l2rw__backend *be,
                                   l2rw_net **out);

/* The model zoo (zoo.c): build `model` (see l2rw_net_create) on g, whose
 * input node 0 is already there; *output receives the logits node. */
l2rw_status l2rw__zoo_build(l2rw_graph *g, const char *model, int classes,
                            int *output);

#endif
