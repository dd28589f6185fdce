/* The network: graph builder (graph.h), compilation into flat buffers and
 * the passes of the public l2rw_net_* API (forward with fused tangent,
 * loss, backward). Every buffer is allocated once at compile for
 * max_batch examples, by the net's back end (backend.h), which does every
 * loop over them; the passes allocate nothing.
 *
 * Host access. Only the batch crosses: a forward uploads its inputs, the
 * loss its labels (and downloads the losses and u), a backward its
 * weights. The host pointer accessors hand out the buffers of a back end
 * whose memory is the host's (the CPU) and NULL otherwise;
 * l2rw_net_read/_write/_copy/_zero work on every back end. What remains
 * slow on a device (values to the host per example or per layer) says
 * so with "DEVICE:". */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "graph.h"
#include "layers.h"
#include "loss.h"
#include "net_internal.h"

/* ------------------------------------------------------------ layer table */

const l2rw__layer_ops *l2rw__layer(l2rw__op op)
{
    static const l2rw__layer_ops *const table[L2RW_OP_COUNT] = {
        [L2RW_OP_INPUT] = &l2rw__ops_input,
        [L2RW_OP_DENSE] = &l2rw__ops_dense,
        [L2RW_OP_CONV] = &l2rw__ops_conv,
        [L2RW_OP_MAXPOOL] = &l2rw__ops_maxpool,
        [L2RW_OP_AVGPOOL] = &l2rw__ops_avgpool,
        [L2RW_OP_RELU] = &l2rw__ops_relu,
        [L2RW_OP_BATCHNORM] = &l2rw__ops_batchnorm,
        [L2RW_OP_ADD] = &l2rw__ops_add,
        [L2RW_OP_FLATTEN] = &l2rw__ops_flatten,
        [L2RW_OP_DROPOUT] = &l2rw__ops_dropout,
    };
    return (unsigned)op < L2RW_OP_COUNT ? table[op] : NULL;
}

void l2rw__he_init(float *w, size_t len, size_t fan_in, l2rw_rng *rng)
{
    const double std = sqrt(2.0 / (double)(fan_in ? fan_in : 1));
    for (size_t i = 0; i < len; i++) w[i] = (float)(std * l2rw_rng_normal(rng));
}

/* ---------------------------------------------------------------- graph */

struct l2rw_graph {
    l2rw__node *nodes;
    int n, cap;
    l2rw_status status;
    char msg[256]; /* detail of the first error */
};

l2rw_status l2rw__graph_new(l2rw_graph **out, int c, int h, int w)
{
    *out = NULL;
    if (c <= 0 || h <= 0 || w <= 0 ||
        (size_t)c * (size_t)h * (size_t)w > (size_t)1 << 30)
        return l2rw__fail(L2RW_ERR_SHAPE, "net input shape %dx%dx%d", c, h,
                          w);
    l2rw_graph *g = l2rw__calloc(1, sizeof *g);
    if (!g) return l2rw__fail(L2RW_ERR_NOMEM, "graph: out of memory");
    g->cap = 16;
    g->nodes = l2rw__calloc((size_t)g->cap, sizeof *g->nodes);
    if (!g->nodes) {
        free(g);
        return l2rw__fail(L2RW_ERR_NOMEM, "graph: out of memory");
    }
    l2rw__node *in = &g->nodes[0];
    in->op = L2RW_OP_INPUT;
    in->c = c, in->h = h, in->w = w;
    in->size = (size_t)c * h * w;
    g->n = 1;
    *out = g;
    return L2RW_OK;
}

void l2rw__graph_free(l2rw_graph *g)
{
    if (!g) return;
    free(g->nodes);
    free(g);
}

l2rw_status l2rw__graph_status(const l2rw_graph *g)
{
    return g ? g->status : L2RW_ERR_ARG;
}

void l2rw__graph_shape(const l2rw_graph *g, int node, int *c, int *h, int *w)
{
    int cc = 0, hh = 0, ww = 0;
    if (g && node >= 0 && node < g->n) {
        cc = g->nodes[node].c, hh = g->nodes[node].h, ww = g->nodes[node].w;
    }
    if (c) *c = cc;
    if (h) *h = hh;
    if (w) *w = ww;
}

static int graph_error(l2rw_graph *g, l2rw_status s)
{
    if (g->status == L2RW_OK) {
        g->status = s;
        snprintf(g->msg, sizeof g->msg, "%s", l2rw_last_error());
    }
    return -1;
}

/* Append a node whose op and hyper-parameters are in `proto`; checks the
 * inputs and computes the output shape. */
static int graph_add(l2rw_graph *g, l2rw__node proto, int a, int b)
{
    if (!g) return -1;
    if (g->status != L2RW_OK) return -1;
    const l2rw__layer_ops *ops = l2rw__layer(proto.op);
    int ins[L2RW_MAX_IN] = {a, b};
    for (int s = 0; s < ops->n_in; s++)
        if (ins[s] < 0 || ins[s] >= g->n)
            return graph_error(g, l2rw__fail(L2RW_ERR_SHAPE,
                                             "%s: input node %d does not exist "
                                             "(graph has %d nodes)",
                                             ops->name, ins[s], g->n));
    if (g->n == g->cap) {
        int cap = g->cap * 2;
        l2rw__node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn)
            return graph_error(g, l2rw__fail(L2RW_ERR_NOMEM,
                                             "graph: out of memory"));
        g->nodes = nn, g->cap = cap;
    }
    l2rw__node nd = proto;
    nd.n_in = ops->n_in;
    for (int s = 0; s < ops->n_in; s++) nd.in[s] = ins[s];
    const l2rw__node *na = ops->n_in > 0 ? &g->nodes[a] : NULL;
    const l2rw__node *nb = ops->n_in > 1 ? &g->nodes[b] : NULL;
    l2rw_status s = ops->setup(&nd, na, nb, 1, NULL);
    if (s != L2RW_OK) return graph_error(g, s);
    if (nd.c <= 0 || nd.h <= 0 || nd.w <= 0)
        return graph_error(g, l2rw__fail(L2RW_ERR_SHAPE,
                                         "%s (node %d): empty output %dx%dx%d",
                                         ops->name, g->n, nd.c, nd.h, nd.w));
    nd.size = (size_t)nd.c * nd.h * nd.w;
    if (nd.size > (size_t)1 << 30) /* kernels index planes with int */
        return graph_error(g, l2rw__fail(L2RW_ERR_SHAPE,
                                         "%s (node %d): output %dx%dx%d too "
                                         "large",
                                         ops->name, g->n, nd.c, nd.h, nd.w));
    g->nodes[g->n] = nd;
    return g->n++;
}

int l2rw__g_dense(l2rw_graph *g, int in, int units)
{
    l2rw__node p = {.op = L2RW_OP_DENSE, .units = units};
    return graph_add(g, p, in, -1);
}

int l2rw__g_conv(l2rw_graph *g, int in, int out_c, int k, int stride,
                 int pad, int bias)
{
    l2rw__node p = {.op = L2RW_OP_CONV, .units = out_c, .k = k,
                    .stride = stride, .pad = pad, .bias = bias != 0};
    return graph_add(g, p, in, -1);
}

int l2rw__g_maxpool(l2rw_graph *g, int in, int k, int stride)
{
    l2rw__node p = {.op = L2RW_OP_MAXPOOL, .k = k, .stride = stride};
    return graph_add(g, p, in, -1);
}

int l2rw__g_avgpool_global(l2rw_graph *g, int in)
{
    l2rw__node p = {.op = L2RW_OP_AVGPOOL};
    return graph_add(g, p, in, -1);
}

int l2rw__g_relu(l2rw_graph *g, int in)
{
    l2rw__node p = {.op = L2RW_OP_RELU};
    return graph_add(g, p, in, -1);
}

int l2rw__g_batchnorm(l2rw_graph *g, int in)
{
    l2rw__node p = {.op = L2RW_OP_BATCHNORM};
    return graph_add(g, p, in, -1);
}

int l2rw__g_add(l2rw_graph *g, int a, int b)
{
    l2rw__node p = {.op = L2RW_OP_ADD};
    return graph_add(g, p, a, b);
}

int l2rw__g_flatten(l2rw_graph *g, int in)
{
    l2rw__node p = {.op = L2RW_OP_FLATTEN};
    return graph_add(g, p, in, -1);
}

int l2rw__g_dropout(l2rw_graph *g, int in, float p)
{
    l2rw__node q = {.op = L2RW_OP_DROPOUT, .p = p};
    return graph_add(g, q, in, -1);
}

/* ------------------------------------------------------------------ net */

struct l2rw_net {
    const l2rw__backend *be; /* owns every float and int32 buffer below */
    l2rw_device dev;         /* what l2rw_net_device says */
    char *model;
    int classes, max_batch;
    int n_nodes, output;
    l2rw__node *nodes;
    unsigned char *live; /* node is an ancestor of the output */
    size_t n_params, n_state, n_ws;
    float *params, *grads, *tangents, *state, *ws;
    float *dz, *loss;    /* [max_batch, classes], [max_batch] */
    float *w;            /* [max_batch]: example weights, uploaded */
    int32_t *labels;     /* [max_batch]: the loss's labels, uploaded */
    float *u;            /* [max_batch]: the loss's u, downloaded */
    float *host_z;       /* [max_batch, classes] host copy of the logits
                            for predict (back ends not the host's) */
    /* Tangent and gradient buffers, shared by nodes whose lifetimes do not
     * overlap (see net_plan); the nodes' ty and dy point into them. */
    int n_slots;
    float **slots;
    size_t last_begin, last_end;
    int last_dense;      /* node of the last dense layer, -1 if none */
    uint64_t dropout_key;
    int input_on_device; /* l2rw__net_input_on_device */
    /* state of the last passes */
    int n;
    l2rw_mode mode;
    int have_fwd, fwd_tangent, have_loss;
    /* Per-example captures of the last l2rw__net_scores_each (allocated
     * at its first call); valid while have_capture. */
    float *capture;
    double *capture_u; /* [max_batch] score accumulators (host) */
    int have_capture;
    char **class_names; /* [classes] or NULL: l2rw_net_set_class_names */
};

static void free_class_names(l2rw_net *net)
{
    for (int k = 0; net->class_names && k < net->classes; k++)
        free(net->class_names[k]);
    free(net->class_names);
    net->class_names = NULL;
}

l2rw_status l2rw_net_set_class_names(l2rw_net *net,
                                     const char *const *names, int k)
{
    if (!net) return l2rw__fail(L2RW_ERR_ARG, "class names: NULL net");
    if (names && k != net->classes)
        return l2rw__fail(L2RW_ERR_ARG, "class names: %d names for a net "
                          "of %d classes", k, net->classes);
    char **copy = names ? l2rw__calloc((size_t)k, sizeof *copy) : NULL;
    if (names && !copy)
        return l2rw__fail(L2RW_ERR_NOMEM, "class names: out of memory");
    for (int i = 0; names && i < k; i++) {
        size_t n = strlen(names[i] ? names[i] : "") + 1;
        if (!(copy[i] = malloc(n))) {
            while (i--) free(copy[i]);
            free(copy);
            return l2rw__fail(L2RW_ERR_NOMEM, "class names: out of memory");
        }
        memcpy(copy[i], names[i] ? names[i] : "", n);
    }
    free_class_names(net);
    net->class_names = copy;
    return L2RW_OK;
}

const char *l2rw_net_class_name(const l2rw_net *net, int k)
{
    if (!net || !net->class_names || k < 0 || k >= net->classes) return NULL;
    return net->class_names[k];
}

void l2rw_net_free(l2rw_net *net)
{
    if (!net) return;
    const l2rw__backend *be = net->be;
    if (net->nodes)
        for (int i = 0; i < net->n_nodes; i++) {
            l2rw__node *nd = &net->nodes[i];
            if (nd->op != L2RW_OP_FLATTEN) be->dealloc(nd->y); /* alias */
            be->dealloc(nd->aux);
            be->dealloc(nd->idx);
        }
    for (int k = 0; k < net->n_slots; k++) be->dealloc(net->slots[k]);
    free(net->slots);
    free(net->nodes);
    free(net->live);
    free_class_names(net);
    free(net->model);
    be->dealloc(net->params);
    be->dealloc(net->grads);
    be->dealloc(net->tangents);
    be->dealloc(net->capture);
    free(net->capture_u);
    be->dealloc(net->state);
    be->dealloc(net->ws);
    be->dealloc(net->dz);
    be->dealloc(net->loss);
    be->dealloc(net->w);
    be->dealloc(net->labels);
    be->dealloc(net->u);
    free(net->host_z);
    free(net);
}

/* Sizes, offsets, tangent/gradient flags of the compiled nodes. */
static l2rw_status net_layout(l2rw_net *net)
{
    l2rw__node *N = net->nodes;
    for (int i = 0; i < net->n_nodes; i++) {
        l2rw__node *nd = &N[i];
        const l2rw__layer_ops *ops = l2rw__layer(nd->op);
        const l2rw__node *a = nd->n_in > 0 ? &N[nd->in[0]] : NULL;
        const l2rw__node *b = nd->n_in > 1 ? &N[nd->in[1]] : NULL;
        L2RW_TRY(ops->setup(nd, a, b, net->max_batch, net->be));
        nd->size = (size_t)nd->c * nd->h * nd->w;
        nd->p_off = net->n_params, net->n_params += nd->n_params;
        nd->s_off = net->n_state, net->n_state += nd->n_state;
        if (nd->n_ws > net->n_ws) net->n_ws = nd->n_ws;
        /* The tangent is zero unless a parameter lies upstream; the
         * gradient is needed where a parameter lies upstream. */
        nd->tzero = nd->n_params == 0;
        nd->need_dy = nd->n_params > 0;
        for (int s = 0; s < nd->n_in; s++) {
            if (!N[nd->in[s]].tzero) nd->tzero = 0;
            if (N[nd->in[s]].need_dy) nd->need_dy = 1;
        }
    }
    /* Only ancestors of the output take part in the passes. */
    net->live[net->output] = 1;
    for (int i = net->output; i > 0; i--)
        if (net->live[i])
            for (int s = 0; s < N[i].n_in; s++) net->live[N[i].in[s]] = 1;
    for (int i = 0; i < net->n_nodes; i++)
        if (!net->live[i]) N[i].need_dy = 0;
    /* The first consumer met in reverse order overwrites an input's
     * gradient, later ones accumulate. */
    unsigned char *seen = l2rw__calloc((size_t)net->n_nodes, 1);
    if (!seen) return l2rw__fail(L2RW_ERR_NOMEM, "net: out of memory");
    for (int i = net->output; i > 0; i--) {
        if (!net->live[i] || !N[i].need_dy) continue;
        for (int s = 0; s < N[i].n_in; s++) {
            int j = N[i].in[s];
            if (!N[j].need_dy) continue;
            N[i].acc[s] = seen[j];
            seen[j] = 1;
        }
    }
    free(seen);
    return L2RW_OK;
}

/* Buffer sharing. Node i's tangent is live from its forward to the
 * forward of its last reader last[i]; its gradient from the backward of
 * last[i] (first write) down to its own backward: the same interval
 * [i, last[i]] in node order. Nodes with disjoint intervals share a slot
 * (greedy in node order, optimal for intervals). A flatten aliases its
 * input's tangent, so it extends the input's interval. */
typedef struct {
    int n;
    size_t *size;   /* floats per slot */
    int *until;     /* last node using the slot */
} slot_plan;

static int plan_take(slot_plan *sp, int i, int last, size_t need)
{
    int best = -1;
    for (int k = 0; k < sp->n; k++) /* a free slot, preferably big enough */
        if (sp->until[k] < i &&
            (best < 0 || (sp->size[best] < need && sp->size[k] > sp->size[best])))
            best = k;
    if (best < 0) best = sp->n++;
    if (sp->size[best] < need) sp->size[best] = need;
    sp->until[best] = last;
    return best;
}

/* Slot of every node's ty (kind 0) or dy (kind 1), -1 for none. */
static void net_plan(const l2rw_net *net, const int *last, int kind,
                     slot_plan *sp, int *slot_of)
{
    const size_t mb = (size_t)net->max_batch;
    for (int i = 0; i < net->n_nodes; i++) {
        const l2rw__node *nd = &net->nodes[i];
        slot_of[i] = -1;
        if (!net->live[i]) continue;
        int want = kind == 0 ? !nd->tzero && nd->op != L2RW_OP_FLATTEN
                             : nd->need_dy;
        if (want) slot_of[i] = plan_take(sp, i, last[i], mb * nd->size);
    }
}

static l2rw_status net_alloc_slots(l2rw_net *net)
{
    const int nn = net->n_nodes;
    l2rw_status s = L2RW_OK;
    int *last = l2rw__calloc((size_t)nn, sizeof *last);
    int *slot_of = l2rw__calloc(2 * (size_t)nn, sizeof *slot_of);
    slot_plan sp[2] = {{0, l2rw__calloc((size_t)nn, sizeof(size_t)),
                        l2rw__calloc((size_t)nn, sizeof(int))},
                       {0, l2rw__calloc((size_t)nn, sizeof(size_t)),
                        l2rw__calloc((size_t)nn, sizeof(int))}};
    if (!last || !slot_of || !sp[0].size || !sp[0].until || !sp[1].size ||
        !sp[1].until) {
        s = l2rw__fail(L2RW_ERR_NOMEM, "net: out of memory");
        goto done;
    }
    for (int i = 0; i < nn; i++) last[i] = i;
    for (int i = 0; i < nn; i++)
        if (net->live[i])
            for (int k = 0; k < net->nodes[i].n_in; k++) {
                int j = net->nodes[i].in[k];
                if (last[j] < i) last[j] = i;
            }
    last[net->output] = nn; /* the loss reads the logits' tangent */
    for (int i = nn - 1; i > 0; i--)
        if (net->live[i] && net->nodes[i].op == L2RW_OP_FLATTEN) {
            int j = net->nodes[i].in[0];
            if (last[j] < last[i]) last[j] = last[i];
        }
    net_plan(net, last, 0, &sp[0], slot_of);
    net_plan(net, last, 1, &sp[1], slot_of + nn);
    net->slots = l2rw__calloc((size_t)(sp[0].n + sp[1].n) + 1, sizeof *net->slots);
    if (!net->slots) {
        s = l2rw__fail(L2RW_ERR_NOMEM, "net: out of memory");
        goto done;
    }
    for (int kind = 0; kind < 2; kind++) {
        const int base = net->n_slots;
        for (int k = 0; k < sp[kind].n; k++) {
            net->slots[net->n_slots] =
                net->be->alloc(sp[kind].size[k], sizeof(float));
            if (!net->slots[net->n_slots]) {
                s = l2rw__fail(L2RW_ERR_NOMEM, "net %s: out of memory (%zu floats)",
                               net->model, sp[kind].size[k]);
                goto done;
            }
            net->n_slots++;
        }
        for (int i = 0; i < nn; i++) {
            int k = slot_of[kind * nn + i];
            l2rw__node *nd = &net->nodes[i];
            float *buf = k >= 0 ? net->slots[base + k] : NULL;
            if (kind == 0) nd->ty = buf;
            else nd->dy = buf;
        }
    }
    for (int i = 0; i < nn; i++) /* flatten: its input's tangent */
        if (net->live[i] && net->nodes[i].op == L2RW_OP_FLATTEN)
            net->nodes[i].ty = net->nodes[net->nodes[i].in[0]].ty;
done:
    free(last);
    free(slot_of);
    for (int k = 0; k < 2; k++) {
        free(sp[k].size);
        free(sp[k].until);
    }
    return s;
}

static l2rw_status net_alloc(l2rw_net *net)
{
    const size_t mb = (size_t)net->max_batch;
#define NET_ALLOC(ptr, n, T)                                                 \
    do {                                                                     \
        if (!((ptr) = net->be->alloc((n), sizeof(T))))                       \
            return l2rw__fail(L2RW_ERR_NOMEM,                                \
                              "net %s: out of memory (%zu floats)",          \
                              net->model, (size_t)(n));                      \
    } while (0)
    for (int i = 0; i < net->n_nodes; i++) {
        l2rw__node *nd = &net->nodes[i];
        if (!net->live[i]) continue;
        if (nd->op == L2RW_OP_FLATTEN) /* aliases its input */
            nd->y = net->nodes[nd->in[0]].y;
        else
            NET_ALLOC(nd->y, mb * nd->size, float);
        if (nd->n_aux) NET_ALLOC(nd->aux, nd->n_aux, float);
        if (nd->n_idx) NET_ALLOC(nd->idx, nd->n_idx, int32_t);
    }
    NET_ALLOC(net->params, net->n_params, float);
    NET_ALLOC(net->grads, net->n_params, float);
    NET_ALLOC(net->tangents, net->n_params, float);
    NET_ALLOC(net->state, net->n_state, float);
    NET_ALLOC(net->ws, net->n_ws, float);
    NET_ALLOC(net->dz, mb * (size_t)net->classes, float);
    NET_ALLOC(net->loss, mb, float);
    NET_ALLOC(net->w, mb, float);
    NET_ALLOC(net->labels, mb, int32_t);
    NET_ALLOC(net->u, mb, float);
#undef NET_ALLOC
    if (!net->be->host &&
        !(net->host_z = l2rw__calloc(mb * (size_t)net->classes,
                                     sizeof *net->host_z)))
        return l2rw__fail(L2RW_ERR_NOMEM, "net %s: out of memory",
                          net->model);
    return net_alloc_slots(net);
}

/* The layers initialise their parameters and state in host memory: in
 * place on a host back end; otherwise one node at a time in a zeroed
 * staging buffer of the largest node, uploaded to the node's place. Every
 * node in order: the generator's sequence does not depend on which nodes
 * are live. (In place on the CPU also keeps the process's heap as it was:
 * freeing a staging buffer of megabytes raises glibc's mmap threshold,
 * which moved later buffers and cost the CPU steps ~3%.) */
static l2rw_status net_init_params(l2rw_net *net, uint64_t seed)
{
    const l2rw__backend *be = net->be;
    size_t np = 0, ns = 0;
    for (int i = 0; i < net->n_nodes && !be->host; i++) {
        if (net->nodes[i].n_params > np) np = net->nodes[i].n_params;
        if (net->nodes[i].n_state > ns) ns = net->nodes[i].n_state;
    }
    float *hp = be->host ? NULL : l2rw__calloc(np + ns, sizeof *hp);
    if (!be->host && !hp)
        return l2rw__fail(L2RW_ERR_NOMEM, "net %s: out of memory (%zu "
                          "floats)", net->model, np + ns);
    l2rw_rng rng;
    l2rw_rng_seed(&rng, seed);
    net->last_dense = -1;
    for (int i = 0; i < net->n_nodes; i++) {
        l2rw__node *nd = &net->nodes[i];
        const l2rw__layer_ops *ops = l2rw__layer(nd->op);
        if (ops->init && be->host) {
            ops->init(nd, net->params + nd->p_off, net->state + nd->s_off,
                      &rng);
        } else if (ops->init) {
            float *hs = hp + np;
            memset(hp, 0, nd->n_params * sizeof *hp);
            memset(hs, 0, nd->n_state * sizeof *hs);
            ops->init(nd, hp, hs, &rng);
            be->upload(net->params + nd->p_off, hp,
                       nd->n_params * sizeof *hp);
            be->upload(net->state + nd->s_off, hs, nd->n_state * sizeof *hs);
        }
        if (nd->op == L2RW_OP_DENSE && net->live[i]) {
            net->last_begin = nd->p_off;
            net->last_end = nd->p_off + nd->n_params;
            net->last_dense = i;
        }
    }
    free(hp);
    return L2RW_OK;
}

l2rw_status l2rw__graph_compile(l2rw_graph *g, int output, const char *model,
                                int classes, int max_batch, uint64_t seed,
                                l2rw_net **out)
{
    return l2rw__graph_compile_on(g, output, model, classes, max_batch, seed,
                                  &l2rw__backend_cpu, out);
}

l2rw_status l2rw__graph_compile_on(l2rw_graph *g, int output,
                                   const char *model, int classes,
                                   int max_batch, uint64_t seed,
                                   const l2rw__backend *be, l2rw_net **out)
{
    l2rw_status s = L2RW_OK;
    l2rw_net *net = NULL;
    if (out) *out = NULL;
    if (!g || !out || !be) {
        l2rw__graph_free(g);
        return l2rw__fail(L2RW_ERR_ARG, "graph_compile: NULL argument");
    }
    if (g->status != L2RW_OK) {
        s = l2rw__fail(g->status, "%s", g->msg);
        goto done;
    }
    if (max_batch <= 0 || classes <= 0) {
        s = l2rw__fail(L2RW_ERR_ARG, "net: max_batch %d, classes %d",
                       max_batch, classes);
        goto done;
    }
    if (output < 0 || output >= g->n) {
        s = l2rw__fail(L2RW_ERR_SHAPE, "net: output node %d of %d", output,
                       g->n);
        goto done;
    }
    const l2rw__node *o = &g->nodes[output];
    if (o->c != classes || o->h != 1 || o->w != 1) {
        s = l2rw__fail(L2RW_ERR_SHAPE,
                       "net %s: output shape %dx%dx%d, expected %dx1x1",
                       model ? model : "?", o->c, o->h, o->w, classes);
        goto done;
    }
    net = l2rw__calloc(1, sizeof *net);
    if (!net) {
        s = l2rw__fail(L2RW_ERR_NOMEM, "net: out of memory");
        goto done;
    }
    net->be = be;
    net->dev.kind = L2RW_DEVICE_CPU; /* l2rw_net_create_on sets others */
    net->model = strdup(model ? model : "custom");
    net->live = l2rw__calloc((size_t)g->n, 1);
    if (!net->model || !net->live) {
        s = l2rw__fail(L2RW_ERR_NOMEM, "net: out of memory");
        goto done;
    }
    net->classes = classes;
    net->max_batch = max_batch;
    net->output = output;
    net->n_nodes = g->n;
    net->nodes = g->nodes; /* take over the node array */
    g->nodes = NULL;
    if ((s = net_layout(net)) != L2RW_OK) goto done;
    if ((s = net_alloc(net)) != L2RW_OK) goto done;
    if ((s = net_init_params(net, seed)) != L2RW_OK) goto done;
    *out = net;
    net = NULL;
done:
    l2rw_net_free(net);
    l2rw__graph_free(g);
    return s;
}

l2rw_status l2rw__net_create_be(l2rw_net **out, const char *model,
                                int channels, int height, int width,
                                int classes, int max_batch, uint64_t seed,
                                const l2rw__backend *be)
{
    if (!out) return l2rw__fail(L2RW_ERR_ARG, "net_create: NULL output");
    *out = NULL;
    if (!model || !be)
        return l2rw__fail(L2RW_ERR_ARG, "net_create: NULL model name or "
                          "back end");
    if (classes < 1 || max_batch < 1)
        return l2rw__fail(L2RW_ERR_ARG,
                          "net_create: classes %d, max_batch %d", classes,
                          max_batch);
    l2rw_graph *g;
    L2RW_TRY(l2rw__graph_new(&g, channels, height, width));
    int output = -1;
    l2rw_status s = l2rw__zoo_build(g, model, classes, &output);
    if (s != L2RW_OK) {
        l2rw__graph_free(g);
        return s;
    }
    return l2rw__graph_compile_on(g, output, model, classes, max_batch, seed,
                                  be, out);
}

l2rw_status l2rw_net_create_on(l2rw_net **out, const char *model,
                               int channels, int height, int width,
                               int classes, int max_batch, uint64_t seed,
                               const l2rw_device *dev)
{
    if (!out) return l2rw__fail(L2RW_ERR_ARG, "net_create: NULL output");
    *out = NULL;
    const l2rw__backend *be = NULL;
    L2RW_TRY(l2rw__backend_of(dev, &be));
    L2RW_TRY(l2rw__net_create_be(out, model, channels, height, width,
                                 classes, max_batch, seed, be));
    if (dev) (*out)->dev = *dev;
    return L2RW_OK;
}

l2rw_status l2rw_net_create(l2rw_net **out, const char *model, int channels,
                            int height, int width, int classes,
                            int max_batch, uint64_t seed)
{
    return l2rw__net_create_be(out, model, channels, height, width, classes,
                               max_batch, seed, &l2rw__backend_cpu);
}

/* -------------------------------------------------------------- accessors */

/* l2rw_net_params, _grads, _tangents, _state and _logits hand out the
 * back end's buffers where they are host memory (the CPU), else NULL. */

l2rw_device l2rw_net_device(const l2rw_net *net) { return net->dev; }
const l2rw__backend *l2rw__net_backend(const l2rw_net *net)
{
    return net->be;
}
const char *l2rw_net_model(const l2rw_net *net) { return net->model; }
int l2rw_net_classes(const l2rw_net *net) { return net->classes; }
int l2rw_net_max_batch(const l2rw_net *net) { return net->max_batch; }
void l2rw_net_input_shape(const l2rw_net *net, int *c, int *h, int *w)
{
    if (c) *c = net->nodes[0].c;
    if (h) *h = net->nodes[0].h;
    if (w) *w = net->nodes[0].w;
}
size_t l2rw_net_num_params(const l2rw_net *net) { return net->n_params; }
float *l2rw_net_params(l2rw_net *net)
{
    return net->be->host ? net->params : NULL;
}
float *l2rw_net_grads(l2rw_net *net)
{
    return net->be->host ? net->grads : NULL;
}
float *l2rw_net_tangents(l2rw_net *net)
{
    return net->be->host ? net->tangents : NULL;
}
void l2rw_net_last_layer_range(const l2rw_net *net, size_t *begin,
                               size_t *end)
{
    if (begin) *begin = net->last_begin;
    if (end) *end = net->last_end;
}
size_t l2rw_net_num_state(const l2rw_net *net) { return net->n_state; }
float *l2rw_net_state(l2rw_net *net)
{
    return net->be->host ? net->state : NULL;
}
void l2rw_net_set_dropout_key(l2rw_net *net, uint64_t key)
{
    net->dropout_key = key;
}

const float *l2rw_net_logits(const l2rw_net *net)
{
    return net->be->host ? net->nodes[net->output].y : NULL;
}

/* ------------------------------------------------- explicit copies */

float *l2rw__net_buf(const l2rw_net *net, l2rw_net_buffer which)
{
    switch (which) {
    case L2RW_NET_PARAMS: return net->params;
    case L2RW_NET_GRADS: return net->grads;
    case L2RW_NET_TANGENTS: return net->tangents;
    case L2RW_NET_STATE: return net->state;
    case L2RW_NET_LOGITS:
        return net->have_fwd ? net->nodes[net->output].y : NULL;
    }
    return NULL;
}

size_t l2rw_net_buffer_size(const l2rw_net *net, l2rw_net_buffer which)
{
    switch (which) {
    case L2RW_NET_PARAMS:
    case L2RW_NET_GRADS:
    case L2RW_NET_TANGENTS: return net->n_params;
    case L2RW_NET_STATE: return net->n_state;
    case L2RW_NET_LOGITS:
        return net->have_fwd ? (size_t)net->n * (size_t)net->classes : 0;
    }
    return 0;
}

static const char *buffer_name(l2rw_net_buffer which)
{
    static const char *const names[] = {"parameters", "gradients",
                                        "tangents", "state", "logits"};
    return (unsigned)which <= L2RW_NET_LOGITS ? names[which] : "?";
}

/* The back-end address of [offset, offset + count) of a buffer, after
 * the checks every copy makes. */
static l2rw_status net_range(const l2rw_net *net, l2rw_net_buffer which,
                             size_t offset, size_t count, const char *fn,
                             float **at)
{
    if (!net) return l2rw__fail(L2RW_ERR_ARG, "%s: NULL net", fn);
    if ((unsigned)which > L2RW_NET_LOGITS)
        return l2rw__fail(L2RW_ERR_ARG, "%s: unknown buffer %d", fn,
                          (int)which);
    size_t size = l2rw_net_buffer_size(net, which);
    if (offset > size || count > size - offset)
        return l2rw__fail(L2RW_ERR_ARG, "%s: %s [%zu, +%zu) outside the "
                          "%zu floats", fn, buffer_name(which), offset, count,
                          size);
    float *base = l2rw__net_buf(net, which);
    *at = base ? base + offset : NULL;
    return L2RW_OK;
}

l2rw_status l2rw_net_read(const l2rw_net *net, l2rw_net_buffer which,
                          size_t offset, size_t count, float *dst)
{
    float *at = NULL;
    L2RW_TRY(net_range(net, which, offset, count, "net_read", &at));
    if (count == 0) return net->be->sync();
    if (!dst) return l2rw__fail(L2RW_ERR_ARG, "net_read: NULL destination");
    net->be->download(dst, at, count * sizeof *dst);
    return net->be->sync();
}

l2rw_status l2rw_net_write(l2rw_net *net, l2rw_net_buffer which,
                           size_t offset, size_t count, const float *src)
{
    float *at = NULL;
    L2RW_TRY(net_range(net, which, offset, count, "net_write", &at));
    if (which == L2RW_NET_LOGITS)
        return l2rw__fail(L2RW_ERR_ARG, "net_write: the logits are "
                          "read-only");
    if (count == 0) return net->be->sync();
    if (!src) return l2rw__fail(L2RW_ERR_ARG, "net_write: NULL source");
    net->be->upload(at, src, count * sizeof *src);
    return net->be->sync();
}

l2rw_status l2rw_net_copy(l2rw_net *net, l2rw_net_buffer dst,
                          l2rw_net_buffer src, size_t offset, size_t count)
{
    float *d = NULL, *s = NULL;
    L2RW_TRY(net_range(net, dst, offset, count, "net_copy", &d));
    L2RW_TRY(net_range(net, src, offset, count, "net_copy", &s));
    if (dst > L2RW_NET_TANGENTS || src > L2RW_NET_TANGENTS)
        return l2rw__fail(L2RW_ERR_ARG, "net_copy: %s to %s (parameters, "
                          "gradients and tangents only)", buffer_name(src),
                          buffer_name(dst));
    if (count) net->be->copy_dev(d, s, count * sizeof *d);
    return L2RW_OK;
}

l2rw_status l2rw_net_zero(l2rw_net *net, l2rw_net_buffer which,
                          size_t offset, size_t count)
{
    float *at = NULL;
    L2RW_TRY(net_range(net, which, offset, count, "net_zero", &at));
    if (which == L2RW_NET_LOGITS)
        return l2rw__fail(L2RW_ERR_ARG, "net_zero: the logits are "
                          "read-only");
    if (count) net->be->zero(at, count * sizeof *at);
    return L2RW_OK;
}

/* Back-end memory (net_internal.h): the last-layer path of the
 * reweighting reads it on the host, which only a host back end allows. */
void l2rw__net_input_on_device(l2rw_net *net, int on)
{
    net->input_on_device = on && !net->be->host;
}

const float *l2rw__net_last_input(const l2rw_net *net, int *dim)
{
    if (!net || !net->have_fwd || net->last_dense < 0) return NULL;
    const l2rw__node *a = &net->nodes[net->nodes[net->last_dense].in[0]];
    if (dim) *dim = (int)a->size;
    return a->y;
}

/* params and state are back-end memory: the exporter reads copies on a
 * back end that is not the host's. */
l2rw__net_view l2rw__net_view_of(const l2rw_net *net)
{
    l2rw__net_view v = {net->nodes, net->n_nodes, net->output, net->params,
                        net->state};
    return v;
}

/* On a back end that is not the host's the logits are downloaded into a
 * host buffer of the net (DEVICE: n x classes floats; an argmax kernel
 * would bring n ints). */
void l2rw_net_predict(const l2rw_net *net, int32_t *pred)
{
    if (!net->have_fwd) return;
    const float *z = net->nodes[net->output].y;
    if (!net->be->host) {
        net->be->download(net->host_z, z,
                          (size_t)net->n * net->classes * sizeof *z);
        z = net->host_z;
    }
    for (int i = 0; i < net->n; i++) {
        const float *r = z + (size_t)i * net->classes;
        int best = 0;
        for (int c = 1; c < net->classes; c++)
            if (r[c] > r[best]) best = c;
        pred[i] = best;
    }
}

/* ---------------------------------------------------------------- passes */

static l2rw__pass net_pass(l2rw_net *net, int tangent)
{
    l2rw__pass ps = {
        .be = net->be, .nodes = net->nodes, .n = net->n, .mode = net->mode,
        .tangent = tangent, .params = net->params,
        .tparams = net->tangents, .grads = net->grads, .state = net->state,
        .ws = net->ws, .dropout_key = net->dropout_key,
    };
    return ps;
}

/* Which tangents are zero in this pass: a node's tangent vanishes when
 * its own parameter tangent is all zero and its inputs' tangents vanish
 * (e.g. a tangent on the last layer only skips every layer before it). */
static void net_tangent_support(l2rw_net *net)
{
    for (int i = 0; i <= net->output; i++) {
        l2rw__node *nd = &net->nodes[i];
        if (!net->live[i]) continue;
        int zero = !net->be->any_nonzero(net->tangents + nd->p_off,
                                         nd->n_params);
        for (int s = 0; s < nd->n_in && zero; s++)
            zero = net->nodes[nd->in[s]].tzero_now;
        nd->tzero_now = nd->tzero || zero;
    }
}

l2rw_status l2rw_net_forward(l2rw_net *net, const float *x, int n,
                             l2rw_mode mode, int with_tangent)
{
    if (!net || !x) return l2rw__fail(L2RW_ERR_ARG, "net_forward: NULL argument");
    if (n <= 0 || n > net->max_batch)
        return l2rw__fail(L2RW_ERR_ARG,
                          "net_forward: batch of %d (max_batch %d)", n,
                          net->max_batch);
    if (mode != L2RW_MODE_TRAIN && mode != L2RW_MODE_TRAIN_FROZEN &&
        mode != L2RW_MODE_EVAL)
        return l2rw__fail(L2RW_ERR_ARG, "net_forward: mode %d", (int)mode);
    net->have_fwd = net->have_loss = net->have_capture = 0;
    net->n = n;
    net->mode = mode;
    net->fwd_tangent = with_tangent != 0;
    if (net->fwd_tangent) net_tangent_support(net);
    l2rw__pass ps = net_pass(net, net->fwd_tangent);
    ps.input = x; /* node 0, the input layer, uploads (or copies) it */
    ps.input_on_device = net->input_on_device;
    for (int i = 0; i <= net->output; i++)
        if (net->live[i])
            l2rw__layer(net->nodes[i].op)->forward(&ps, &net->nodes[i]);
    net->have_fwd = 1;
    return L2RW_OK;
}

l2rw_status l2rw_net_loss(l2rw_net *net, const int32_t *y,
                          const l2rw_loss *loss_kind, float *loss, float *u)
{
    if (!net || !y) return l2rw__fail(L2RW_ERR_ARG, "net_loss: NULL argument");
    if (!net->have_fwd)
        return l2rw__fail(L2RW_ERR_ARG, "net_loss: no forward pass before");
    if (u && !net->fwd_tangent)
        return l2rw__fail(L2RW_ERR_ARG,
                          "net_loss: u requested but the forward carried no "
                          "tangent");
    l2rw_loss ce;
    memset(&ce, 0, sizeof ce);
    ce.kind = L2RW_LOSS_CE;
    if (!loss_kind) loss_kind = &ce;
    const l2rw__node *o = &net->nodes[net->output];
    /* With no (nonzero) parameter tangent upstream the logits' tangent is
     * zero: u = 0. */
    const float *zdot = u && !o->tzero_now ? o->ty : NULL;
    net->have_loss = 0;
    const l2rw__backend *be = net->be;
    const size_t n = (size_t)net->n;
    be->upload(net->labels, y, n * sizeof *y);
    l2rw_status s = be->loss_eval(loss_kind, o->y, zdot, net->labels, net->n,
                                  net->classes, net->loss, net->dz,
                                  zdot ? net->u : NULL);
    /* an error of the queued work (the passes before) comes first */
    l2rw_status q = be->sync();
    if (q != L2RW_OK) return q;
    if (s != L2RW_OK) return s;
    if (u && zdot) be->download(u, net->u, n * sizeof *u);
    if (u && !zdot) memset(u, 0, n * sizeof *u);
    if (loss) be->download(loss, net->loss, n * sizeof *loss);
    net->have_loss = 1;
    return L2RW_OK;
}

l2rw_status l2rw_net_backward(l2rw_net *net, const float *w)
{
    if (!net) return l2rw__fail(L2RW_ERR_ARG, "net_backward: NULL net");
    if (!net->have_loss)
        return l2rw__fail(L2RW_ERR_ARG,
                          "net_backward: no loss of the last forward");
    const l2rw__backend *be = net->be;
    l2rw__node *o = &net->nodes[net->output];
    if (!o->need_dy) { /* no parameters: nothing to differentiate */
        be->zero(net->grads, net->n_params * sizeof *net->grads);
        return L2RW_OK;
    }
    const size_t k = (size_t)net->classes;
    if (w) {
        be->upload(net->w, w, (size_t)net->n * sizeof *w);
        be->scale_rows(o->dy, net->dz, net->w, net->n, k);
    } else {
        be->scale(o->dy, net->dz, 1.0f / (float)net->n, (size_t)net->n * k,
                  0);
    }
    l2rw__pass ps = net_pass(net, 0);
    for (int i = net->output; i > 0; i--) {
        l2rw__node *nd = &net->nodes[i];
        if (net->live[i] && nd->need_dy)
            l2rw__layer(nd->op)->backward(&ps, nd);
    }
    return L2RW_OK;
}

/* ------------------------------------------------- per-example path */

static int each_node(const l2rw__node *nd)
{
    return nd->op == L2RW_OP_CONV || nd->op == L2RW_OP_DENSE;
}

int l2rw__net_each_ok(const l2rw_net *net)
{
    for (int i = 1; i <= net->output; i++) {
        const l2rw__node *nd = &net->nodes[i];
        if (net->live[i] && nd->n_params > 0 && !each_node(nd)) return 0;
    }
    return 1;
}

/* Capture regions: conv max_batch x n_params (G_i, db_i); dense
 * 2 max_batch x units (a copy of dy, then scratch). */
static l2rw_status capture_alloc(l2rw_net *net)
{
    if (net->capture) return L2RW_OK;
    size_t off = 0;
    for (int i = 1; i <= net->output; i++) {
        l2rw__node *nd = &net->nodes[i];
        if (!net->live[i] || !each_node(nd)) continue;
        nd->cap_off = off;
        off += (size_t)net->max_batch *
               (nd->op == L2RW_OP_CONV ? nd->n_params : 2 * (size_t)nd->units);
    }
    net->capture = net->be->alloc(off ? off : 1, sizeof(float));
    net->capture_u = calloc((size_t)net->max_batch, sizeof(double));
    if (!net->capture || !net->capture_u) {
        net->be->dealloc(net->capture);
        free(net->capture_u);
        net->capture = NULL;
        net->capture_u = NULL;
        return l2rw__fail(L2RW_ERR_NOMEM,
                          "per-example scores: out of memory (%zu floats)",
                          off);
    }
    return L2RW_OK;
}

/* u_i += <tW, G_i> + <tb, db_i> of a conv node (one transfer of n
 * scores from a device). */
static void conv_scores(const l2rw_net *net, const l2rw__node *nd,
                        double *u)
{
    const float *t = net->tangents + nd->p_off;
    const float *G = net->capture + nd->cap_off;
    net->be->dots_acc(u, G, nd->n_params, t, 0, net->n, nd->n_params);
}

/* u_i += <dy_i, x_i tW^T + tb> of a dense node. */
static void dense_scores(const l2rw_net *net, const l2rw__node *nd,
                         double *u)
{
    const l2rw__node *a = &net->nodes[nd->in[0]];
    const int n = net->n, out = nd->units, in = (int)a->size;
    const float *tW = net->tangents + nd->p_off, *tb = tW + (size_t)out * in;
    const float *d = net->capture + nd->cap_off;
    float *z = net->capture + nd->cap_off + (size_t)net->max_batch * out;
    const l2rw__backend *be = net->be;
    be->gemm(0, 1, n, out, in, 1.0f, a->y, in, tW, in, 0.0f, z, out);
    be->bias_add(z, tb, n, out, 1);
    be->dots_acc(u, d, (size_t)out, z, (size_t)out, n, (size_t)out);
}

l2rw_status l2rw__net_scores_each(l2rw_net *net, float *u)
{
    if (!net || !u) return l2rw__fail(L2RW_ERR_ARG, "scores_each: NULL argument");
    if (!net->have_loss)
        return l2rw__fail(L2RW_ERR_ARG, "scores_each: no loss of the last forward");
    if (!l2rw__net_each_ok(net))
        return l2rw__fail(L2RW_ERR_UNSUPPORTED,
                          "scores_each: a layer with parameters other than "
                          "conv and dense couples the examples");
    L2RW_TRY(capture_alloc(net));
    const int n = net->n;
    l2rw__node *o = &net->nodes[net->output];
    for (int i = 0; i < n; i++) u[i] = 0.0f;
    if (!o->need_dy) return L2RW_OK;
    double *ud = net->capture_u; /* allocated once, like the captures */
    memset(ud, 0, (size_t)n * sizeof *ud);
    /* unit weights: each example's own loss gradient at every layer */
    net->be->copy(o->dy, net->dz, (size_t)n * net->classes, 0);
    l2rw__pass ps = net_pass(net, 0);
    ps.capture = net->capture;
    for (int i = net->output; i > 0; i--) {
        l2rw__node *nd = &net->nodes[i];
        if (net->live[i] && nd->need_dy)
            l2rw__layer(nd->op)->backward(&ps, nd);
    }
    for (int i = 1; i <= net->output; i++) {
        const l2rw__node *nd = &net->nodes[i];
        if (!net->live[i] || !nd->need_dy) continue;
        if (nd->op == L2RW_OP_CONV) conv_scores(net, nd, ud);
        if (nd->op == L2RW_OP_DENSE) dense_scores(net, nd, ud);
    }
    for (int i = 0; i < n; i++) u[i] = (float)ud[i];
    net->have_capture = 1;
    return L2RW_OK;
}

/* Parameter gradients of sum_i w_i l_i from the captures. */
static void conv_grads_each(l2rw_net *net, const l2rw__node *nd,
                            const float *w, float w0)
{
    float *dW = net->grads + nd->p_off;
    const float *G = net->capture + nd->cap_off;
    for (int i = 0; i < net->n; i++) /* w: host; w[i] a scalar argument */
        net->be->scale(dW, G + (size_t)i * nd->n_params, w ? w[i] : w0,
                       nd->n_params, i > 0);
}

static void dense_grads_each(l2rw_net *net, const l2rw__node *nd,
                             const float *w, float w0)
{
    const l2rw__node *a = &net->nodes[nd->in[0]];
    const int n = net->n, out = nd->units, in = (int)a->size;
    float *dW = net->grads + nd->p_off, *db = dW + (size_t)out * in;
    const float *d = net->capture + nd->cap_off;
    float *sd = net->capture + nd->cap_off + (size_t)net->max_batch * out;
    const l2rw__backend *be = net->be;
    if (w) /* net->w: the weights uploaded by l2rw__net_backward_each */
        be->scale_rows(sd, d, net->w, n, (size_t)out);
    else
        be->scale(sd, d, w0, (size_t)n * out, 0);
    be->gemm(1, 0, out, in, n, 1.0f, sd, out, a->y, in, 0.0f, dW, in);
    be->bias_grad(db, sd, n, out, 1, 0);
}

l2rw_status l2rw__net_backward_each(l2rw_net *net, const float *w)
{
    if (!net) return l2rw__fail(L2RW_ERR_ARG, "backward_each: NULL net");
    if (!net->have_capture)
        return l2rw__fail(L2RW_ERR_ARG,
                          "backward_each: no l2rw__net_scores_each since the "
                          "last forward");
    if (!net->nodes[net->output].need_dy) {
        net->be->zero(net->grads, net->n_params * sizeof *net->grads);
        return L2RW_OK;
    }
    if (w) net->be->upload(net->w, w, (size_t)net->n * sizeof *w);
    const float w0 = 1.0f / (float)net->n;
    for (int i = 1; i <= net->output; i++) {
        const l2rw__node *nd = &net->nodes[i];
        if (!net->live[i] || !nd->need_dy) continue;
        if (nd->op == L2RW_OP_CONV) conv_grads_each(net, nd, w, w0);
        if (nd->op == L2RW_OP_DENSE) dense_grads_each(net, nd, w, w0);
    }
    return L2RW_OK;
}
