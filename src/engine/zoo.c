/* Model zoo: parses a model name (see l2rw_net_create) and builds the
 * network on a graph whose input node 0 already exists.
 *
 *   mlp, mlp:H1,H2,...  dense-relu stack, dense to classes
 *   lenet               conv5x5x16-relu-pool2, conv5x5x32-relu-pool2,
 *                       dense100-relu, dense to classes (no padding)
 *   resnetN             CIFAR ResNet (He et al. 2016), N = 6k+2
 *   wrn-D-K[:P]         wide ResNet (Zagoruyko & Komodakis 2016),
 *                       D = 6k+4, width K, dropout P between the convs
 *
 * Convolutions followed (directly, or through a residual add) by batch
 * norm have no bias: the norm's shift makes it redundant. */
#include "graph.h"
#include "model_io.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ZOO_MAX_HIDDEN = 64,       /* hidden layers of an mlp */
    ZOO_MAX_UNITS = 1 << 20,   /* units of one hidden layer */
    ZOO_MAX_DEPTH = 1000,      /* depth of a resnet or wrn */
    ZOO_MAX_WIDTH = 64         /* widening factor of a wrn */
};

/* The graph being built and the parameter and state counts of its layers
 * so far: l2rw__zoo_count needs them before any buffer exists (a model
 * file names its architecture; the counts say whether the file can hold
 * it before l2rw__graph_compile allocates anything). */
typedef struct {
    l2rw_graph *g;
    uint64_t params, state;
} zoo_b;

/* The builders below mirror the layers' setup (layer_conv.c,
 * layer_dense.c, layer_batchnorm.c); test_bad_files checks the counts
 * against compiled nets. */
static int z_conv(zoo_b *z, int x, int out_c, int k, int stride, int pad,
                  int bias)
{
    int c, h, w;
    l2rw__graph_shape(z->g, x, &c, &h, &w);
    z->params += (uint64_t)out_c * (uint64_t)c * (uint64_t)k * (uint64_t)k +
                 (bias ? (uint64_t)out_c : 0);
    return l2rw__g_conv(z->g, x, out_c, k, stride, pad, bias);
}

static int z_dense(zoo_b *z, int x, int units)
{
    int c, h, w;
    l2rw__graph_shape(z->g, x, &c, &h, &w);
    z->params += (uint64_t)units * ((uint64_t)c * (uint64_t)h * (uint64_t)w +
                                    1);
    return l2rw__g_dense(z->g, x, units);
}

static int z_batchnorm(zoo_b *z, int x)
{
    int c, h, w;
    l2rw__graph_shape(z->g, x, &c, &h, &w);
    z->params += 2 * (uint64_t)c; /* scale, shift */
    z->state += 2 * (uint64_t)c;  /* running mean, variance */
    return l2rw__g_batchnorm(z->g, x);
}

/* Parse a decimal integer in [lo, hi] that spans s[0..len): digits only,
 * no sign, no leading zero. Returns -1 when malformed or out of range. */
static long parse_int(const char *s, size_t len, long lo, long hi)
{
    if (len == 0 || len > 9 || (s[0] == '0' && len > 1)) return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < lo || v > hi ? -1 : v;
}

/* ------------------------------------------------------------------ mlp */

static l2rw_status build_mlp(zoo_b *z, const int *hidden, int n_hidden,
                             int classes, int *output)
{
    int x = 0;
    for (int i = 0; i < n_hidden; i++)
        x = l2rw__g_relu(z->g, z_dense(z, x, hidden[i]));
    *output = z_dense(z, x, classes);
    return l2rw__graph_status(z->g);
}

/* "mlp" or "mlp:H1,H2,...". */
static l2rw_status zoo_mlp(zoo_b *z, const char *model, int classes,
                           int *output)
{
    int hidden[ZOO_MAX_HIDDEN];
    int n = 0;
    if (strcmp(model, "mlp") == 0) {
        hidden[0] = 256;
        hidden[1] = 128;
        return build_mlp(z, hidden, 2, classes, output);
    }
    const char *p = model + 4; /* after "mlp:" */
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        long v = parse_int(p, len, 1, ZOO_MAX_UNITS);
        if (v < 0)
            return l2rw__fail(L2RW_ERR_ARG,
                              "model '%s': hidden sizes must be integers in "
                              "[1, %d] separated by commas",
                              model, ZOO_MAX_UNITS);
        if (n == ZOO_MAX_HIDDEN)
            return l2rw__fail(L2RW_ERR_ARG,
                              "model '%s': more than %d hidden layers", model,
                              ZOO_MAX_HIDDEN);
        hidden[n++] = (int)v;
        if (!end) break;
        p = end + 1;
    }
    return build_mlp(z, hidden, n, classes, output);
}

/* ---------------------------------------------------------------- lenet */

static l2rw_status zoo_lenet(zoo_b *z, int classes, int *output)
{
    enum { POOL = 2 };
    int x = 0;
    x = l2rw__g_relu(z->g, z_conv(z, x, 16, 5, 1, 0, 1));
    x = l2rw__g_maxpool(z->g, x, POOL, POOL);
    x = l2rw__g_relu(z->g, z_conv(z, x, 32, 5, 1, 0, 1));
    x = l2rw__g_maxpool(z->g, x, POOL, POOL);
    x = l2rw__g_relu(z->g, z_dense(z, x, 100));
    *output = z_dense(z, x, classes);
    return l2rw__graph_status(z->g);
}

/* --------------------------------------------------------------- resnet */

static int conv_bn(zoo_b *z, int x, int out_c, int k, int stride)
{
    int y = z_conv(z, x, out_c, k, stride, k / 2, 0);
    return z_batchnorm(z, y);
}

/* Post-activation basic block: relu(bn(conv(relu(bn(conv(x))))) + s(x)).
 * Where the shape changes, s is a 1x1 conv with the block's stride and a
 * batch norm (option B of He et al.; their CIFAR option A pads channels
 * with zeros, which the graph has no operator for). */
static int resnet_block(zoo_b *z, int x, int out_c, int stride)
{
    int c, h, w;
    l2rw__graph_shape(z->g, x, &c, &h, &w);
    int y = l2rw__g_relu(z->g, conv_bn(z, x, out_c, 3, stride));
    y = conv_bn(z, y, out_c, 3, 1);
    int s = (stride != 1 || c != out_c) ? conv_bn(z, x, out_c, 1, stride) : x;
    return l2rw__g_relu(z->g, l2rw__g_add(z->g, y, s));
}

static l2rw_status build_resnet(zoo_b *z, int blocks, int classes,
                                int *output)
{
    static const int widths[3] = {16, 32, 64};
    int x = l2rw__g_relu(z->g, conv_bn(z, 0, widths[0], 3, 1));
    for (int stage = 0; stage < 3; stage++)
        for (int b = 0; b < blocks; b++)
            x = resnet_block(z, x, widths[stage],
                             (stage > 0 && b == 0) ? 2 : 1);
    x = l2rw__g_avgpool_global(z->g, x);
    *output = z_dense(z, x, classes);
    return l2rw__graph_status(z->g);
}

/* "resnetN", N = 6k+2 with k >= 1. */
static l2rw_status zoo_resnet(zoo_b *z, const char *model, int classes,
                              int *output)
{
    const char *p = model + 6;
    long depth = parse_int(p, strlen(p), 8, ZOO_MAX_DEPTH);
    if (depth < 0 || (depth - 2) % 6 != 0)
        return l2rw__fail(L2RW_ERR_ARG,
                          "model '%s': resnet depth must be 6k+2 "
                          "(8, 14, 20, 32, 44, 56, 110, ...)",
                          model);
    return build_resnet(z, (int)((depth - 2) / 6), classes, output);
}

/* ------------------------------------------------------------------ wrn */

/* Pre-activation wide block:
 *   a = relu(bn(x)); y = conv3(dropout(relu(bn(conv3_s(a))))); y + s
 * with s = x when the shape is kept, else a 1x1 conv (stride s) of a, as
 * in the authors' code. */
static int wrn_block(zoo_b *z, int x, int out_c, int stride, float drop)
{
    int c, h, w;
    l2rw__graph_shape(z->g, x, &c, &h, &w);
    int a = l2rw__g_relu(z->g, z_batchnorm(z, x));
    int y = z_conv(z, a, out_c, 3, stride, 1, 0);
    y = l2rw__g_relu(z->g, z_batchnorm(z, y));
    if (drop > 0.0f) y = l2rw__g_dropout(z->g, y, drop);
    y = z_conv(z, y, out_c, 3, 1, 1, 0);
    int s = (stride != 1 || c != out_c)
                ? z_conv(z, a, out_c, 1, stride, 0, 0)
                : x;
    return l2rw__g_add(z->g, y, s);
}

static l2rw_status build_wrn(zoo_b *z, int blocks, int width, float drop,
                             int classes, int *output)
{
    int x = z_conv(z, 0, 16, 3, 1, 1, 0);
    for (int stage = 0; stage < 3; stage++)
        for (int b = 0; b < blocks; b++)
            x = wrn_block(z, x, (16 << stage) * width,
                          (stage > 0 && b == 0) ? 2 : 1, drop);
    x = l2rw__g_relu(z->g, z_batchnorm(z, x));
    x = l2rw__g_avgpool_global(z->g, x);
    *output = z_dense(z, x, classes);
    return l2rw__graph_status(z->g);
}

/* Dropout rate: a plain decimal in [0, 1) ("0.3", "0", ".5"). */
static int parse_rate(const char *s, float *out)
{
    if (*s == '\0' || strspn(s, "0123456789.") != strlen(s)) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v >= 0.0 && v < 1.0)) return -1;
    *out = (float)v;
    return 0;
}

/* "wrn-D-K" or "wrn-D-K:P". */
static l2rw_status zoo_wrn(zoo_b *z, const char *model, int classes,
                           int *output)
{
    const char *p = model + 4;
    const char *dash = strchr(p, '-');
    if (!dash)
        return l2rw__fail(L2RW_ERR_ARG,
                          "model '%s': expected wrn-DEPTH-WIDTH[:DROPOUT]",
                          model);
    const char *colon = strchr(dash + 1, ':');
    size_t wlen = colon ? (size_t)(colon - dash - 1) : strlen(dash + 1);
    long depth = parse_int(p, (size_t)(dash - p), 10, ZOO_MAX_DEPTH);
    long width = parse_int(dash + 1, wlen, 1, ZOO_MAX_WIDTH);
    if (depth < 0 || (depth - 4) % 6 != 0)
        return l2rw__fail(L2RW_ERR_ARG,
                          "model '%s': wrn depth must be 6k+4 "
                          "(10, 16, 22, 28, 40, ...)",
                          model);
    if (width < 0)
        return l2rw__fail(L2RW_ERR_ARG,
                          "model '%s': wrn width must be an integer in "
                          "[1, %d]",
                          model, ZOO_MAX_WIDTH);
    float drop = 0.0f;
    if (colon && parse_rate(colon + 1, &drop) != 0)
        return l2rw__fail(L2RW_ERR_ARG,
                          "model '%s': dropout must be a number in [0, 1)",
                          model);
    return build_wrn(z, (int)((depth - 4) / 6), (int)width, drop, classes,
                     output);
}

/* ------------------------------------------------------------- dispatch */

/* Builds model on z->g, counting its parameters and state. */
static l2rw_status zoo_dispatch(zoo_b *z, const char *model, int classes,
                                int *output)
{
    *output = -1;
    if (!z->g || !model)
        return l2rw__fail(L2RW_ERR_ARG, "model name missing");
    if (classes < 2)
        return l2rw__fail(L2RW_ERR_ARG,
                          "model '%s': need at least 2 classes, got %d",
                          model, classes);
    l2rw_status s;
    if (strcmp(model, "mlp") == 0 || strncmp(model, "mlp:", 4) == 0)
        s = zoo_mlp(z, model, classes, output);
    else if (strcmp(model, "lenet") == 0)
        s = zoo_lenet(z, classes, output);
    else if (strncmp(model, "resnet", 6) == 0)
        s = zoo_resnet(z, model, classes, output);
    else if (strncmp(model, "wrn-", 4) == 0)
        s = zoo_wrn(z, model, classes, output);
    else
        return l2rw__fail(L2RW_ERR_ARG,
                          "unknown model '%s' (known: mlp, mlp:H1,H2,..., "
                          "lenet, resnetN with N=6k+2, wrn-D-K[:P] with "
                          "D=6k+4)",
                          model);
    if (s == L2RW_OK) return s;
    *output = -1;
    /* Name the model in a builder error (a shape error on a small input,
     * say); copy first: the detail lives in the buffer l2rw__fail writes. */
    char detail[400];
    snprintf(detail, sizeof detail, "%s", l2rw_last_error());
    if (strncmp(detail, "model '", 7) == 0) return s;
    return l2rw__fail(s, "model '%s': %s", model, detail);
}

l2rw_status l2rw__zoo_build(l2rw_graph *g, const char *model, int classes,
                            int *output)
{
    zoo_b z = {g, 0, 0};
    return zoo_dispatch(&z, model, classes, output);
}

/* The graph holds only node descriptions (a few hundred bytes per layer,
 * at most some thousands of layers within the zoo's limits): cheap
 * beside the buffers l2rw__graph_compile would allocate. */
l2rw_status l2rw__zoo_count(const char *model, int c, int h, int w,
                            int classes, uint64_t *params, uint64_t *state)
{
    l2rw_graph *g;
    L2RW_TRY(l2rw__graph_new(&g, c, h, w));
    zoo_b z = {g, 0, 0};
    int output;
    l2rw_status s = zoo_dispatch(&z, model, classes, &output);
    l2rw__graph_free(g);
    *params = z.params;
    *state = z.state;
    return s;
}
