/* ONNX export (l2rw_net_export_onnx): the compiled graph of a net, walked
 * in node order (a topological order), becomes an ONNX GraphProto of
 * standard operators in eval mode:
 *
 *   input     -> (Sub, Div when the normalisation is in the graph)
 *   conv      -> Conv (pads, strides, kernel_shape; W [oc, ic, k, k], b)
 *   dense     -> Flatten (when its input is 4-D) + Gemm (transB = 1,
 *                W [out, in], b [out])
 *   maxpool   -> MaxPool (no padding, floor: ONNX's ceil_mode 0)
 *   avgpool   -> GlobalAveragePool ([N, C, 1, 1])
 *   relu      -> Relu
 *   batchnorm -> BatchNormalization (running statistics), or folded into
 *                the conv before it
 *   add       -> Add
 *   flatten   -> Flatten
 *   dropout   -> nothing (identity in eval mode)
 *
 * Tensors are [N, C, H, W] ("4-D") or [N, C] ("2-D": after a dense layer
 * or a flatten); the engine's per-example shape (c, h, w) of a 2-D tensor
 * is (c, 1, 1). Field numbers are onnx.proto's (onnx/onnx.in.proto). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "net_internal.h"
#include "protobuf.h"

enum {
    ONNX_OPSET = 17,     /* BatchNormalization-15, Gemm-13, Softmax-13 */
    ONNX_IR_VERSION = 8, /* the IR version of opset 17 (onnx/docs/Versioning.md) */
    ONNX_NAME_MAX = 48
};

/* onnx.proto field numbers. */
enum { /* ModelProto */
    MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3,
    MODEL_GRAPH = 7, MODEL_OPSET_IMPORT = 8, MODEL_METADATA_PROPS = 14
};
enum { /* GraphProto */
    GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11,
    GRAPH_OUTPUT = 12
};
enum { /* NodeProto */
    NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4,
    NODE_ATTRIBUTE = 5
};
enum { /* AttributeProto and its AttributeType */
    ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20,
    ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_INTS = 7
};
enum { /* TensorProto and its DataType */
    TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8,
    TENSOR_RAW_DATA = 9, TENSOR_FLOAT = 1
};
enum { /* ValueInfoProto, TypeProto, TypeProto.Tensor, TensorShapeProto,
          TensorShapeProto.Dimension */
    VALUE_INFO_NAME = 1, VALUE_INFO_TYPE = 2, TYPE_TENSOR_TYPE = 1,
    TENSOR_TYPE_ELEM_TYPE = 1, TENSOR_TYPE_SHAPE = 2, SHAPE_DIM = 1,
    DIM_VALUE = 1, DIM_PARAM = 2
};
enum { /* OperatorSetIdProto, StringStringEntryProto */
    OPSET_DOMAIN = 1, OPSET_VERSION = 2, ENTRY_KEY = 1, ENTRY_VALUE = 2
};

/* Batch norm's epsilon: BN_EPS of layer_batchnorm.c (tests/onnx.sh
 * compares the exported BatchNormalization and the folded convs with the
 * engine, so a change there shows). */
static const float ONNX_BN_EPS = 1e-5f;

/* The walk's state. name[i] is the tensor that holds node i's output
 * (an alias of its input's for dropout and folded batch norms); rank2[i]
 * says it is [N, C] rather than [N, C, H, W]. */
typedef struct {
    l2rw__net_view v;
    l2rw_onnx_opts o;
    l2rw_pb graph;
    char (*name)[ONNX_NAME_MAX];
    unsigned char *rank2, *live;
    int *uses;   /* live readers of each node */
    int *fold;   /* conv node -> the batch norm folded into it, or -1 */
    char flat[L2RW_MAX_IN][ONNX_NAME_MAX]; /* input_2d's Flatten outputs */
    float *host; /* host copy of params and state of a device net */
} onnx_ctx;

static const l2rw__node *node_at(const onnx_ctx *x, int i)
{
    return &x->v.nodes[i];
}

/* ---------------------------------------------------------- protobuf pieces */

static void attr_begin(l2rw_pb *a, const char *name, int type)
{
    l2rw__pb_init(a);
    l2rw__pb_string(a, ATTR_NAME, name);
    l2rw__pb_int(a, ATTR_TYPE, type);
}

static void attr_end(l2rw_pb *node, l2rw_pb *a)
{
    l2rw__pb_message(node, NODE_ATTRIBUTE, a);
    l2rw__pb_free(a);
}

static void attr_int(l2rw_pb *node, const char *name, int64_t v)
{
    l2rw_pb a;
    attr_begin(&a, name, ATTR_TYPE_INT);
    l2rw__pb_int(&a, ATTR_I, v);
    attr_end(node, &a);
}

static void attr_float(l2rw_pb *node, const char *name, float v)
{
    l2rw_pb a;
    attr_begin(&a, name, ATTR_TYPE_FLOAT);
    l2rw__pb_float(&a, ATTR_F, v);
    attr_end(node, &a);
}

/* Repeated int64 without [packed]: proto2's encoding of `ints`. */
static void attr_ints(l2rw_pb *node, const char *name, const int64_t *v,
                      int n)
{
    l2rw_pb a;
    attr_begin(&a, name, ATTR_TYPE_INTS);
    for (int i = 0; i < n; i++) l2rw__pb_int(&a, ATTR_INTS, v[i]);
    attr_end(node, &a);
}

/* A NodeProto with its inputs, one output, name and op_type; the caller
 * adds attributes, then node_end appends it to the graph. */
static void node_begin(l2rw_pb *nd, const char *op, const char *const *in,
                       int n_in, const char *out)
{
    l2rw__pb_init(nd);
    for (int i = 0; i < n_in; i++) l2rw__pb_string(nd, NODE_INPUT, in[i]);
    l2rw__pb_string(nd, NODE_OUTPUT, out);
    l2rw__pb_string(nd, NODE_NAME, out); /* unique: one node per tensor */
    l2rw__pb_string(nd, NODE_OP_TYPE, op);
}

static void node_end(onnx_ctx *x, l2rw_pb *nd)
{
    l2rw__pb_message(&x->graph, GRAPH_NODE, nd);
    l2rw__pb_free(nd);
}

/* A node without attributes. */
static void node_plain(onnx_ctx *x, const char *op, const char *const *in,
                       int n_in, const char *out)
{
    l2rw_pb nd;
    node_begin(&nd, op, in, n_in, out);
    node_end(x, &nd);
}

/* A float initializer: TensorProto with dims, FLOAT, name, raw_data. */
static void initializer(onnx_ctx *x, const char *name, const int64_t *dims,
                        int n_dims, const float *data)
{
    size_t count = 1;
    for (int i = 0; i < n_dims; i++) count *= (size_t)dims[i];
    l2rw_pb t;
    l2rw__pb_init(&t);
    for (int i = 0; i < n_dims; i++) l2rw__pb_int(&t, TENSOR_DIMS, dims[i]);
    l2rw__pb_int(&t, TENSOR_DATA_TYPE, TENSOR_FLOAT);
    l2rw__pb_string(&t, TENSOR_NAME, name);
    l2rw__pb_floats_le(&t, TENSOR_RAW_DATA, data, count);
    l2rw__pb_message(&x->graph, GRAPH_INITIALIZER, &t);
    l2rw__pb_free(&t);
}

/* ValueInfoProto of a float tensor; dims < 0 are the symbolic batch "N". */
static void value_info(l2rw_pb *graph, int field, const char *name,
                       const int64_t *dims, int n_dims)
{
    l2rw_pb shape, tensor, type, vi;
    l2rw__pb_init(&shape);
    for (int i = 0; i < n_dims; i++) {
        l2rw_pb d;
        l2rw__pb_init(&d);
        if (dims[i] < 0) l2rw__pb_string(&d, DIM_PARAM, "N");
        else l2rw__pb_int(&d, DIM_VALUE, dims[i]);
        l2rw__pb_message(&shape, SHAPE_DIM, &d);
        l2rw__pb_free(&d);
    }
    l2rw__pb_init(&tensor);
    l2rw__pb_int(&tensor, TENSOR_TYPE_ELEM_TYPE, TENSOR_FLOAT);
    l2rw__pb_message(&tensor, TENSOR_TYPE_SHAPE, &shape);
    l2rw__pb_init(&type);
    l2rw__pb_message(&type, TYPE_TENSOR_TYPE, &tensor);
    l2rw__pb_init(&vi);
    l2rw__pb_string(&vi, VALUE_INFO_NAME, name);
    l2rw__pb_message(&vi, VALUE_INFO_TYPE, &type);
    l2rw__pb_message(graph, field, &vi);
    l2rw__pb_free(&shape);
    l2rw__pb_free(&tensor);
    l2rw__pb_free(&type);
    l2rw__pb_free(&vi);
}

static void metadata(l2rw_pb *model, const char *key, const char *value)
{
    l2rw_pb e;
    l2rw__pb_init(&e);
    l2rw__pb_string(&e, ENTRY_KEY, key);
    l2rw__pb_string(&e, ENTRY_VALUE, value);
    l2rw__pb_message(model, MODEL_METADATA_PROPS, &e);
    l2rw__pb_free(&e);
}

/* ------------------------------------------------------------------ walk */

/* Names the tensor of node i: "logits" for the output when it is [N, C]
 * already, else the op and node number. */
static const char *out_name(onnx_ctx *x, int i, const char *op, int rank2)
{
    if (i == x->v.output && rank2)
        snprintf(x->name[i], ONNX_NAME_MAX, "logits");
    else
        snprintf(x->name[i], ONNX_NAME_MAX, "%s%d", op, i);
    x->rank2[i] = (unsigned char)rank2;
    return x->name[i];
}

/* Node i's input s as a [N, C] tensor: a Flatten of a 4-D one. */
static const char *input_2d(onnx_ctx *x, int i, int s)
{
    const int j = node_at(x, i)->in[s];
    if (x->rank2[j]) return x->name[j];
    snprintf(x->flat[s], ONNX_NAME_MAX, "flatten%d_%d", i, s);
    const char *in[1] = {x->name[j]};
    node_plain(x, "Flatten", in, 1, x->flat[s]); /* axis 1 by default */
    return x->flat[s];
}

/* Node 0: the raw input, then (x - mean) / std when that is in the graph. */
static void emit_input(onnx_ctx *x)
{
    const l2rw__node *nd = node_at(x, 0);
    int64_t dims[4] = {-1, nd->c, nd->h, nd->w};
    value_info(&x->graph, GRAPH_INPUT, "input", dims, 4);
    x->rank2[0] = 0;
    if (!x->o.mean || !x->o.norm_in_graph) {
        snprintf(x->name[0], ONNX_NAME_MAX, "input");
        return;
    }
    /* [1, C, 1, 1] broadcasts over batch and plane, per channel. */
    const int64_t cdims[4] = {1, nd->c, 1, 1};
    initializer(x, "norm_mean", cdims, 4, x->o.mean);
    initializer(x, "norm_std", cdims, 4, x->o.std);
    const char *sub[2] = {"input", "norm_mean"};
    node_plain(x, "Sub", sub, 2, "input_centred");
    const char *div[2] = {"input_centred", "norm_std"};
    snprintf(x->name[0], ONNX_NAME_MAX, "input_normalised");
    node_plain(x, "Div", div, 2, x->name[0]);
}

/* W and b of conv i with batch norm bn (a node index) folded in:
 * bn(conv(x)) = s * (W x + b - mean) + beta, s = gamma / sqrt(var + eps),
 * per output channel; in double, then rounded once. */
static void fold_weights(const onnx_ctx *x, int i, int bn, float *w,
                         float *b)
{
    const l2rw__node *cv = node_at(x, i), *nb = node_at(x, bn);
    const int oc = cv->units;
    const size_t per = (size_t)node_at(x, cv->in[0])->c * cv->k * cv->k;
    const float *W = x->v.params + cv->p_off;
    const float *gamma = x->v.params + nb->p_off, *beta = gamma + oc;
    const float *mean = x->v.state + nb->s_off, *var = mean + oc;
    for (int o = 0; o < oc; o++) {
        const double s = gamma[o] / sqrt((double)var[o] + ONNX_BN_EPS);
        const double b0 = cv->bias ? W[(size_t)oc * per + o] : 0.0;
        for (size_t q = 0; q < per; q++)
            w[(size_t)o * per + q] = (float)(W[(size_t)o * per + q] * s);
        b[o] = (float)((b0 - mean[o]) * s + beta[o]);
    }
}

static l2rw_status emit_conv(onnx_ctx *x, int i)
{
    const l2rw__node *cv = node_at(x, i);
    const int j = cv->in[0], bn = x->fold[i];
    if (x->rank2[j])
        return l2rw__fail(L2RW_ERR_UNSUPPORTED,
                          "onnx export: conv (node %d) of a flattened tensor",
                          i);
    const int64_t wd[4] = {cv->units, node_at(x, j)->c, cv->k, cv->k};
    const size_t nw = (size_t)wd[0] * wd[1] * wd[2] * wd[3];
    char wname[ONNX_NAME_MAX], bname[ONNX_NAME_MAX];
    snprintf(wname, sizeof wname, "conv%d.W", i);
    snprintf(bname, sizeof bname, "conv%d.b", i);
    const float *W = x->v.params + cv->p_off;
    const int64_t bd[1] = {cv->units};
    if (bn >= 0) {
        float *w = malloc((nw + (size_t)cv->units) * sizeof *w);
        if (!w) return l2rw__fail(L2RW_ERR_NOMEM, "onnx export: out of memory");
        fold_weights(x, i, bn, w, w + nw);
        initializer(x, wname, wd, 4, w);
        initializer(x, bname, bd, 1, w + nw);
        free(w);
    } else {
        initializer(x, wname, wd, 4, W);
        if (cv->bias) initializer(x, bname, bd, 1, W + nw);
    }
    const char *in[3] = {x->name[j], wname, bname};
    /* A folded conv writes its batch norm's tensor: nothing else reads
     * the conv's own output (fold_plan checked). */
    const char *out = out_name(x, bn >= 0 ? bn : i, "conv", 0);
    if (bn >= 0) memcpy(x->name[i], x->name[bn], ONNX_NAME_MAX);
    l2rw_pb nd;
    node_begin(&nd, "Conv", in, cv->bias || bn >= 0 ? 3 : 2, out);
    const int64_t k2[2] = {cv->k, cv->k}, s2[2] = {cv->stride, cv->stride};
    const int64_t p4[4] = {cv->pad, cv->pad, cv->pad, cv->pad};
    attr_ints(&nd, "kernel_shape", k2, 2);
    attr_ints(&nd, "strides", s2, 2);
    attr_ints(&nd, "pads", p4, 4);
    node_end(x, &nd);
    return L2RW_OK;
}

static l2rw_status emit_dense(onnx_ctx *x, int i)
{
    const l2rw__node *d = node_at(x, i);
    const int64_t in_size = (int64_t)node_at(x, d->in[0])->size;
    const int64_t wd[2] = {d->units, in_size}, bd[1] = {d->units};
    const float *W = x->v.params + d->p_off;
    char wname[ONNX_NAME_MAX], bname[ONNX_NAME_MAX];
    snprintf(wname, sizeof wname, "dense%d.W", i);
    snprintf(bname, sizeof bname, "dense%d.b", i);
    initializer(x, wname, wd, 2, W);
    initializer(x, bname, bd, 1, W + (size_t)d->units * (size_t)in_size);
    const char *in[3] = {input_2d(x, i, 0), wname, bname};
    l2rw_pb nd;
    node_begin(&nd, "Gemm", in, 3, out_name(x, i, "dense", 1));
    attr_int(&nd, "transB", 1); /* W is [out, in]: y = x W^T + b */
    node_end(x, &nd);
    return L2RW_OK;
}

static l2rw_status emit_maxpool(onnx_ctx *x, int i)
{
    const l2rw__node *p = node_at(x, i);
    if (x->rank2[p->in[0]])
        return l2rw__fail(L2RW_ERR_UNSUPPORTED,
                          "onnx export: maxpool (node %d) of a flattened "
                          "tensor", i);
    const char *in[1] = {x->name[p->in[0]]};
    l2rw_pb nd;
    node_begin(&nd, "MaxPool", in, 1, out_name(x, i, "maxpool", 0));
    const int64_t k2[2] = {p->k, p->k}, s2[2] = {p->stride, p->stride};
    attr_ints(&nd, "kernel_shape", k2, 2);
    attr_ints(&nd, "strides", s2, 2);
    node_end(x, &nd);
    return L2RW_OK;
}

static l2rw_status emit_batchnorm(onnx_ctx *x, int i)
{
    const l2rw__node *b = node_at(x, i);
    const int j = b->in[0];
    if (x->fold[j] == i) return L2RW_OK; /* emit_conv did it */
    const int64_t cd[1] = {b->c};
    const float *gamma = x->v.params + b->p_off;
    const float *mean = x->v.state + b->s_off;
    char names[4][ONNX_NAME_MAX];
    static const char *const what[4] = {"scale", "B", "mean", "var"};
    const float *data[4] = {gamma, gamma + b->c, mean, mean + b->c};
    const char *in[5] = {x->name[j]};
    for (int k = 0; k < 4; k++) {
        snprintf(names[k], ONNX_NAME_MAX, "bn%d.%s", i, what[k]);
        initializer(x, names[k], cd, 1, data[k]);
        in[k + 1] = names[k];
    }
    l2rw_pb nd;
    node_begin(&nd, "BatchNormalization", in, 5,
               out_name(x, i, "bn", x->rank2[j]));
    attr_float(&nd, "epsilon", ONNX_BN_EPS);
    node_end(x, &nd);
    return L2RW_OK;
}

static l2rw_status emit_add(onnx_ctx *x, int i)
{
    const l2rw__node *a = node_at(x, i);
    const int r2 = x->rank2[a->in[0]] || x->rank2[a->in[1]];
    /* Same per-example shapes: a [N, C] and a [N, C, 1, 1] operand would
     * broadcast to [N, N, ...], so both become [N, C] then. */
    const char *in[2];
    for (int s = 0; s < 2; s++)
        in[s] = r2 ? input_2d(x, i, s) : x->name[a->in[s]];
    node_plain(x, "Add", in, 2, out_name(x, i, "add", r2));
    return L2RW_OK;
}

/* Ops whose ONNX node has one input and keeps the rank. */
static l2rw_status emit_unary(onnx_ctx *x, int i, const char *op,
                              const char *tag)
{
    const int j = node_at(x, i)->in[0];
    const char *in[1] = {x->name[j]};
    node_plain(x, op, in, 1, out_name(x, i, tag, x->rank2[j]));
    return L2RW_OK;
}

/* The tensor of node i is its input's. */
static l2rw_status emit_alias(onnx_ctx *x, int i)
{
    const int j = node_at(x, i)->in[0];
    memcpy(x->name[i], x->name[j], ONNX_NAME_MAX);
    x->rank2[i] = x->rank2[j];
    return L2RW_OK;
}

static l2rw_status emit_node(onnx_ctx *x, int i)
{
    const l2rw__node *nd = node_at(x, i);
    switch (nd->op) {
    case L2RW_OP_CONV: return emit_conv(x, i);
    case L2RW_OP_DENSE: return emit_dense(x, i);
    case L2RW_OP_MAXPOOL: return emit_maxpool(x, i);
    case L2RW_OP_AVGPOOL:
        if (x->rank2[nd->in[0]]) return emit_alias(x, i); /* plane 1x1 */
        return emit_unary(x, i, "GlobalAveragePool", "avgpool");
    case L2RW_OP_RELU: return emit_unary(x, i, "Relu", "relu");
    case L2RW_OP_BATCHNORM: return emit_batchnorm(x, i);
    case L2RW_OP_ADD: return emit_add(x, i);
    case L2RW_OP_FLATTEN:
        if (x->rank2[nd->in[0]]) return emit_alias(x, i);
        node_plain(x, "Flatten", (const char *const[]){x->name[nd->in[0]]},
                   1, out_name(x, i, "flatten", 1));
        return L2RW_OK;
    case L2RW_OP_DROPOUT: return emit_alias(x, i); /* eval: identity */
    default: break;
    }
    const l2rw__layer_ops *ops = l2rw__layer(nd->op);
    return l2rw__fail(L2RW_ERR_UNSUPPORTED,
                      "onnx export: node %d: operator '%s' has no ONNX "
                      "counterpart in the exporter",
                      i, ops ? ops->name : "unknown");
}

/* "logits" [N, classes] from the output node's tensor, then the graph's
 * outputs. */
static void emit_outputs(onnx_ctx *x)
{
    const int o = x->v.output;
    if (strcmp(x->name[o], "logits") != 0) {
        const char *in[1] = {x->name[o]};
        node_plain(x, x->rank2[o] ? "Identity" : "Flatten", in, 1, "logits");
    }
    const int64_t dims[2] = {-1, node_at(x, o)->c};
    value_info(&x->graph, GRAPH_OUTPUT, "logits", dims, 2);
    if (!x->o.probabilities) return;
    const char *in[1] = {"logits"};
    l2rw_pb nd;
    node_begin(&nd, "Softmax", in, 1, "probabilities");
    attr_int(&nd, "axis", 1);
    node_end(x, &nd);
    value_info(&x->graph, GRAPH_OUTPUT, "probabilities", dims, 2);
}

/* Live nodes (ancestors of the output), their readers, and which convs
 * take the batch norm after them: a conv whose only live reader is a
 * batch norm, so no other node sees the unnormalised output. */
static void plan(onnx_ctx *x)
{
    const int n = x->v.n_nodes;
    x->live[x->v.output] = 1;
    for (int i = x->v.output; i > 0; i--)
        if (x->live[i])
            for (int s = 0; s < node_at(x, i)->n_in; s++)
                x->live[node_at(x, i)->in[s]] = 1;
    for (int i = 0; i < n; i++) {
        x->fold[i] = -1;
        if (!x->live[i]) continue;
        for (int s = 0; s < node_at(x, i)->n_in; s++)
            x->uses[node_at(x, i)->in[s]]++;
    }
    if (!x->o.fold_bn) return;
    for (int i = 1; i < n; i++) {
        const l2rw__node *b = node_at(x, i);
        if (!x->live[i] || b->op != L2RW_OP_BATCHNORM) continue;
        const int j = b->in[0];
        if (node_at(x, j)->op == L2RW_OP_CONV && x->uses[j] == 1)
            x->fold[j] = i;
    }
}

static l2rw_status build_graph(onnx_ctx *x, const char *model)
{
    l2rw__pb_string(&x->graph, GRAPH_NAME, model);
    plan(x);
    emit_input(x);
    for (int i = 1; i < x->v.n_nodes; i++)
        if (x->live[i]) L2RW_TRY(emit_node(x, i));
    emit_outputs(x);
    return l2rw__pb_status(&x->graph, "onnx export");
}

/* ------------------------------------------------------------- the model */

/* Comma-separated floats, each exact to float precision (%.9g). */
static l2rw_status float_list(const float *v, int n, char **out)
{
    enum { PER_FLOAT = 20 }; /* "-1.23456789e-38," and slack */
    char *s = malloc((size_t)n * PER_FLOAT + 1);
    if (!s) return l2rw__fail(L2RW_ERR_NOMEM, "onnx export: out of memory");
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, PER_FLOAT + 1, "%s%.9g",
                                i ? "," : "", (double)v[i]);
    *out = s;
    return L2RW_OK;
}

/* Metadata of a model whose caller normalises the inputs. */
static l2rw_status norm_metadata(l2rw_pb *head, const l2rw_onnx_opts *o)
{
    char *mean = NULL, *std = NULL;
    l2rw_status s = float_list(o->mean, o->norm_channels, &mean);
    if (s == L2RW_OK) s = float_list(o->std, o->norm_channels, &std);
    if (s == L2RW_OK) {
        metadata(head, "mean", mean);
        metadata(head, "std", std);
    }
    free(mean);
    free(std);
    return s;
}

/* s as the body of a JSON string: quote, backslash and control
 * characters escaped (names come from folder names, anything goes). */
static size_t json_escape(char *out, const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') out[n++] = '\\', out[n++] = (char)ch;
        else if (ch < 0x20) n += (size_t)sprintf(out + n, "\\u%04x", ch);
        else out[n++] = (char)ch;
    }
    return n;
}

/* The class names as a JSON array of strings ("class_names"): a list a
 * caller parses with any JSON reader, whatever the names contain. */
static l2rw_status class_metadata(l2rw_pb *head, const l2rw_net *net)
{
    const int k = l2rw_net_classes(net);
    size_t size = 3;
    for (int c = 0; c < k; c++) {
        const char *name = l2rw_net_class_name(net, c);
        if (!name) return L2RW_OK; /* the net has none */
        size += 6 * strlen(name) + 3; /* worst case \u00XX, quotes, comma */
    }
    char *json = malloc(size);
    if (!json) return l2rw__fail(L2RW_ERR_NOMEM, "onnx export: out of memory");
    size_t n = 0;
    json[n++] = '[';
    for (int c = 0; c < k; c++) {
        if (c) json[n++] = ',';
        json[n++] = '"';
        n += json_escape(json + n, l2rw_net_class_name(net, c));
        json[n++] = '"';
    }
    json[n++] = ']';
    json[n] = '\0';
    metadata(head, "class_names", json);
    free(json);
    return L2RW_OK;
}

/* Every ModelProto field but the graph. */
static l2rw_status model_head(l2rw_pb *head, const l2rw_net *net,
                              const l2rw_onnx_opts *o)
{
    l2rw__pb_int(head, MODEL_IR_VERSION, ONNX_IR_VERSION);
    l2rw__pb_string(head, MODEL_PRODUCER_NAME,
                    o->producer ? o->producer : "l2rw");
    l2rw__pb_string(head, MODEL_PRODUCER_VERSION, L2RW_VERSION);
    l2rw_pb opset;
    l2rw__pb_init(&opset);
    l2rw__pb_string(&opset, OPSET_DOMAIN, ""); /* the default ai.onnx */
    l2rw__pb_int(&opset, OPSET_VERSION, ONNX_OPSET);
    l2rw__pb_message(head, MODEL_OPSET_IMPORT, &opset);
    l2rw__pb_free(&opset);
    metadata(head, "l2rw_model", l2rw_net_model(net));
    const char *where = !o->mean ? "none"
                        : o->norm_in_graph ? "in-graph"
                                           : "caller: (x - mean) / std per channel";
    metadata(head, "input_normalisation", where);
    if (o->mean && !o->norm_in_graph) L2RW_TRY(norm_metadata(head, o));
    L2RW_TRY(class_metadata(head, net));
    return l2rw__pb_status(head, "onnx export");
}

typedef struct {
    const l2rw_pb *head, *graph;
} onnx_file;

/* The head, then the graph as field 7 (length-delimited), straight to the
 * file: the graph holds every weight and is not copied again. */
static l2rw_status write_model(FILE *fp, void *ctx)
{
    const onnx_file *f = ctx;
    l2rw_pb key;
    l2rw__pb_init(&key);
    l2rw__pb_key(&key, MODEL_GRAPH, L2RW_PB_LEN);
    l2rw__pb_varint(&key, (uint64_t)f->graph->len);
    l2rw_status s = l2rw__pb_status(&key, "onnx export");
    if (s == L2RW_OK &&
        (fwrite(f->head->data, 1, f->head->len, fp) != f->head->len ||
         fwrite(key.data, 1, key.len, fp) != key.len ||
         fwrite(f->graph->data, 1, f->graph->len, fp) != f->graph->len))
        s = l2rw__fail(L2RW_ERR_IO, "onnx export: write failed");
    l2rw__pb_free(&key);
    return s;
}

l2rw_onnx_opts l2rw_onnx_opts_default(void)
{
    l2rw_onnx_opts o = {NULL, NULL, 0, 1, 1, 1, NULL};
    return o;
}

static l2rw_status check_opts(const l2rw_net *net, const l2rw_onnx_opts *o)
{
    if (!o->mean) return L2RW_OK;
    int c;
    l2rw_net_input_shape(net, &c, NULL, NULL);
    if (!o->std || o->norm_channels != c)
        return l2rw__fail(L2RW_ERR_ARG,
                          "onnx export: normalisation of %d channels, the "
                          "model '%s' takes %d",
                          o->std ? o->norm_channels : 0, l2rw_net_model(net),
                          c);
    for (int i = 0; i < c; i++)
        if (!isfinite(o->mean[i]) || !isfinite(o->std[i]) || !(o->std[i] > 0))
            return l2rw__fail(L2RW_ERR_ARG,
                              "onnx export: channel %d: mean %g, std %g "
                              "(need finite values, std > 0)",
                              i, (double)o->mean[i], (double)o->std[i]);
    return L2RW_OK;
}

/* The view reads params and state on the host: a net on a device (no
 * host pointers) lends a host copy instead. */
static l2rw_status host_view(onnx_ctx *x, const l2rw_net *net)
{
    x->v = l2rw__net_view_of(net);
    if (l2rw_net_params((l2rw_net *)net)) return L2RW_OK; /* read only */
    const size_t np = l2rw_net_num_params(net), ns = l2rw_net_num_state(net);
    x->host = malloc((np + ns ? np + ns : 1) * sizeof *x->host);
    if (!x->host)
        return l2rw__fail(L2RW_ERR_NOMEM, "onnx export: out of memory");
    L2RW_TRY(l2rw_net_read(net, L2RW_NET_PARAMS, 0, np, x->host));
    L2RW_TRY(l2rw_net_read(net, L2RW_NET_STATE, 0, ns, x->host + np));
    x->v.params = x->host;
    x->v.state = x->host + np;
    return L2RW_OK;
}

static l2rw_status ctx_alloc(onnx_ctx *x)
{
    const size_t n = (size_t)x->v.n_nodes;
    x->name = calloc(n, sizeof *x->name);
    x->rank2 = calloc(n, 1);
    x->live = calloc(n, 1);
    x->uses = calloc(n, sizeof *x->uses);
    x->fold = calloc(n, sizeof *x->fold);
    if (!x->name || !x->rank2 || !x->live || !x->uses || !x->fold)
        return l2rw__fail(L2RW_ERR_NOMEM, "onnx export: out of memory");
    return L2RW_OK;
}

static void ctx_free(onnx_ctx *x)
{
    free(x->name);
    free(x->rank2);
    free(x->live);
    free(x->uses);
    free(x->fold);
    free(x->host);
    l2rw__pb_free(&x->graph);
}

l2rw_status l2rw_net_export_onnx(const l2rw_net *net, const char *path,
                                 const l2rw_onnx_opts *opts)
{
    if (!net || !path)
        return l2rw__fail(L2RW_ERR_ARG, "onnx export: NULL net or path");
    onnx_ctx x;
    memset(&x, 0, sizeof x);
    x.o = opts ? *opts : l2rw_onnx_opts_default();
    L2RW_TRY(check_opts(net, &x.o));
    l2rw_pb head;
    l2rw__pb_init(&head);
    l2rw_status s = host_view(&x, net);
    if (s == L2RW_OK) s = ctx_alloc(&x);
    if (s == L2RW_OK) s = build_graph(&x, l2rw_net_model(net));
    if (s == L2RW_OK) s = model_head(&head, net, &x.o);
    if (s == L2RW_OK) {
        onnx_file f = {&head, &x.graph};
        s = l2rw_write_atomic(path, write_model, &f);
    }
    l2rw__pb_free(&head);
    ctx_free(&x);
    return s;
}
