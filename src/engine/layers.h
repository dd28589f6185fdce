/* Layers of the engine: one file per kind (layer_<kind>.c), each with
 * setup (shapes, sizes), init, forward (with the tangent fused where it
 * pays), tangent and backward next to each other. Shared by net.c and the
 * layer tests. Shapes are per example (c, h, w); buffers hold n examples
 * back to back. */
#ifndef L2RW_LAYERS_H
#define L2RW_LAYERS_H

#include "backend.h"
#include "common.h"

typedef enum {
    L2RW_OP_INPUT,
    L2RW_OP_DENSE,
    L2RW_OP_CONV,
    L2RW_OP_MAXPOOL,
    L2RW_OP_AVGPOOL,   /* global average pooling */
    L2RW_OP_RELU,
    L2RW_OP_BATCHNORM,
    L2RW_OP_ADD,
    L2RW_OP_FLATTEN,
    L2RW_OP_DROPOUT,
    L2RW_OP_COUNT
} l2rw__op;

enum {
    L2RW_MAX_IN = 2,
    /* Bound on kernel sizes, strides, padding and unit counts, so that
     * shape arithmetic in int cannot overflow. */
    L2RW_DIM_MAX = 1 << 16
};

typedef struct l2rw__node {
    l2rw__op op;
    int n_in, in[L2RW_MAX_IN];  /* input node ids */
    int c, h, w;                /* output shape per example */
    size_t size;                /* c*h*w */
    /* hyper-parameters */
    int units;                  /* dense */
    int k, stride, pad, bias;   /* conv, maxpool (k, stride) */
    float p;                    /* dropout rate */
    int chunk;                  /* conv: threads the workspace fits */
    /* sizes reported by setup, offsets assigned by the net */
    size_t n_params, n_state, n_aux, n_idx, n_ws;
    size_t p_off, s_off;
    int tzero;    /* tangent identically zero (no parameter upstream) */
    int tzero_now; /* zero in this pass: tzero, or every parameter tangent
                      upstream is zero (set by the net per forward) */
    int need_dy;  /* gradient w.r.t. this output is needed */
    size_t cap_off; /* per-example capture (net.c), conv and dense */
    int acc[L2RW_MAX_IN]; /* backward accumulates into the input's dy */
    /* buffers of max_batch examples: output, its tangent (NULL when
     * tzero), its gradient (NULL when !need_dy), per-layer extras */
    float *y, *ty, *dy, *aux;
    int32_t *idx;
} l2rw__node;

/* Everything a pass needs besides the nodes. Every buffer here and in the
 * nodes is memory of the back end `be`, and the layers reach it through
 * be's calls only. */
typedef struct {
    const l2rw__backend *be;
    l2rw__node *nodes;
    int n;               /* examples in this pass */
    l2rw_mode mode;
    int tangent;         /* propagate tangents in this forward */
    const float *params, *tparams; /* tparams: parameter tangent */
    float *grads, *state;
    float *ws;           /* shared workspace, max over nodes of n_ws */
    /* Per-example backward (nets without batch norm in training mode):
     * conv and dense layers store what gives each example's weight
     * gradient at capture + cap_off (conv: G_i = dy_i cols(x_i)^T and
     * db_i, per example; dense: a copy of dy) instead of summing parameter
     * gradients; NULL in ordinary passes. */
    float *capture;
    uint64_t dropout_key;
    const float *input;  /* the batch: the input layer's */
    int input_on_device; /* input is back-end memory (a device batch) */
} l2rw__pass;

typedef struct {
    const char *name;
    int n_in;
    /* Output shape and sizes from the input nodes (in[] already set);
     * L2RW_ERR_SHAPE with a message when the shapes do not fit. be sizes
     * the workspace; NULL while a graph is built (shapes only). */
    l2rw_status (*setup)(l2rw__node *nd, const l2rw__node *a,
                         const l2rw__node *b, int max_batch,
                         const l2rw__backend *be);
    /* Initial parameters and state (NULL for kinds without them), in
     * host memory (the net uploads them). */
    void (*init)(const l2rw__node *nd, float *p, float *st, l2rw_rng *rng);
    /* y (and ty when pass->tangent and !nd->tzero_now) from the inputs. */
    void (*forward)(const l2rw__pass *ps, l2rw__node *nd);
    /* From nd->dy: parameter gradients (overwritten) and, for each input
     * with need_dy, its dy (accumulated when nd->acc[s]). */
    void (*backward)(const l2rw__pass *ps, l2rw__node *nd);
} l2rw__layer_ops;

const l2rw__layer_ops *l2rw__layer(l2rw__op op);

extern const l2rw__layer_ops l2rw__ops_input, l2rw__ops_dense,
    l2rw__ops_conv, l2rw__ops_maxpool, l2rw__ops_avgpool, l2rw__ops_relu,
    l2rw__ops_batchnorm, l2rw__ops_add, l2rw__ops_flatten,
    l2rw__ops_dropout;

/* Helpers for layer code. */
static inline const l2rw__node *l2rw__in(const l2rw__pass *ps,
                                         const l2rw__node *nd, int s)
{
    return &ps->nodes[nd->in[s]];
}
/* Tangent of an input in this pass, NULL when it is zero. */
static inline const float *l2rw__tin(const l2rw__pass *ps,
                                     const l2rw__node *nd, int s)
{
    const l2rw__node *a = l2rw__in(ps, nd, s);
    return ps->tangent && !a->tzero_now ? a->ty : NULL;
}
/* Gradient buffer of an input, NULL when not needed. */
static inline float *l2rw__din(const l2rw__pass *ps, const l2rw__node *nd,
                               int s)
{
    const l2rw__node *a = l2rw__in(ps, nd, s);
    return a->need_dy ? a->dy : NULL;
}
static inline int l2rw__want_tangent(const l2rw__pass *ps,
                                     const l2rw__node *nd)
{
    return ps->tangent && !nd->tzero_now;
}

/* He initialisation: normal with std sqrt(2 / fan_in). */
void l2rw__he_init(float *w, size_t len, size_t fan_in, l2rw_rng *rng);

#endif
