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

static l2rw_status build_mlp(l2rw_graph *g, const int *hidden, int n_hidden,
                             int classes, int *output)
{
    int x = 0;
    for (int i = 0; i < n_hidden; i++)
        x = l2rw__g_relu(g, l2rw__g_dense(g, x, hidden[i]));
    *output = l2rw__g_dense(g, x, classes);
    return l2rw__graph_status(g);
}

/* "mlp" or "mlp:H1,H2,...". */
static l2rw_status zoo_mlp(l2rw_graph *g, const char *model, int classes,
                           int *output)
{
    int hidden[ZOO_MAX_HIDDEN];
    int n = 0;
    if (strcmp(model, "mlp") == 0) {
        hidden[0] = 256;
        hidden[1] = 128;
        return build_mlp(g, hidden, 2, classes, output);
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
    return build_mlp(g, hidden, n, classes, output);
}

/* ---------------------------------------------------------------- lenet */

static l2rw_status zoo_lenet(l2rw_graph *g, int classes, int *output)
{
    enum { POOL = 2 };
    int x = 0;
    x = l2rw__g_relu(g, l2rw__g_conv(g, x, 16, 5, 1, 0, 1));
    x = l2rw__g_maxpool(g, x, POOL, POOL);
    x = l2rw__g_relu(g, l2rw__g_conv(g, x, 32, 5, 1, 0, 1));
    x = l2rw__g_maxpool(g, x, POOL, POOL);
    x = l2rw__g_relu(g, l2rw__g_dense(g, x, 100));
    *output = l2rw__g_dense(g, x, classes);
    return l2rw__graph_status(g);
}

/* --------------------------------------------------------------- resnet */

static int conv_bn(l2rw_graph *g, int x, int out_c, int k, int stride)
{
    int y = l2rw__g_conv(g, x, out_c, k, stride, k / 2, 0);
    return l2rw__g_batchnorm(g, y);
}

/* Post-activation basic block: relu(bn(conv(relu(bn(conv(x))))) + s(x)).
 * Where the shape changes, s is a 1x1 conv with the block's stride and a
 * batch norm (option B of He et al.; their CIFAR option A pads channels
 * with zeros, which the graph has no operator for). */
static int resnet_block(l2rw_graph *g, int x, int out_c, int stride)
{
    int c, h, w;
    l2rw__graph_shape(g, x, &c, &h, &w);
    int y = l2rw__g_relu(g, conv_bn(g, x, out_c, 3, stride));
    y = conv_bn(g, y, out_c, 3, 1);
    int s = (stride != 1 || c != out_c) ? conv_bn(g, x, out_c, 1, stride) : x;
    return l2rw__g_relu(g, l2rw__g_add(g, y, s));
}

static l2rw_status build_resnet(l2rw_graph *g, int blocks, int classes,
                                int *output)
{
    static const int widths[3] = {16, 32, 64};
    int x = l2rw__g_relu(g, conv_bn(g, 0, widths[0], 3, 1));
    for (int stage = 0; stage < 3; stage++)
        for (int b = 0; b < blocks; b++)
            x = resnet_block(g, x, widths[stage],
                             (stage > 0 && b == 0) ? 2 : 1);
    x = l2rw__g_avgpool_global(g, x);
    *output = l2rw__g_dense(g, x, classes);
    return l2rw__graph_status(g);
}

/* "resnetN", N = 6k+2 with k >= 1. */
static l2rw_status zoo_resnet(l2rw_graph *g, const char *model, int classes,
                              int *output)
{
    const char *p = model + 6;
    long depth = parse_int(p, strlen(p), 8, ZOO_MAX_DEPTH);
    if (depth < 0 || (depth - 2) % 6 != 0)
        return l2rw__fail(L2RW_ERR_ARG,
                          "model '%s': resnet depth must be 6k+2 "
                          "(8, 14, 20, 32, 44, 56, 110, ...)",
                          model);
    return build_resnet(g, (int)((depth - 2) / 6), classes, output);
}

/* ------------------------------------------------------------------ wrn */

/* Pre-activation wide block:
 *   a = relu(bn(x)); y = conv3(dropout(relu(bn(conv3_s(a))))); y + s
 * with s = x when the shape is kept, else a 1x1 conv (stride s) of a, as
 * in the authors' code. */
static int wrn_block(l2rw_graph *g, int x, int out_c, int stride, float drop)
{
    int c, h, w;
    l2rw__graph_shape(g, x, &c, &h, &w);
    int a = l2rw__g_relu(g, l2rw__g_batchnorm(g, x));
    int y = l2rw__g_conv(g, a, out_c, 3, stride, 1, 0);
    y = l2rw__g_relu(g, l2rw__g_batchnorm(g, y));
    if (drop > 0.0f) y = l2rw__g_dropout(g, y, drop);
    y = l2rw__g_conv(g, y, out_c, 3, 1, 1, 0);
    int s = (stride != 1 || c != out_c)
                ? l2rw__g_conv(g, a, out_c, 1, stride, 0, 0)
                : x;
    return l2rw__g_add(g, y, s);
}

static l2rw_status build_wrn(l2rw_graph *g, int blocks, int width, float drop,
                             int classes, int *output)
{
    int x = l2rw__g_conv(g, 0, 16, 3, 1, 1, 0);
    for (int stage = 0; stage < 3; stage++)
        for (int b = 0; b < blocks; b++)
            x = wrn_block(g, x, (16 << stage) * width,
                          (stage > 0 && b == 0) ? 2 : 1, drop);
    x = l2rw__g_relu(g, l2rw__g_batchnorm(g, x));
    x = l2rw__g_avgpool_global(g, x);
    *output = l2rw__g_dense(g, x, classes);
    return l2rw__graph_status(g);
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
static l2rw_status zoo_wrn(l2rw_graph *g, const char *model, int classes,
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
    return build_wrn(g, (int)((depth - 4) / 6), (int)width, drop, classes,
                     output);
}

/* ------------------------------------------------------------- dispatch */

l2rw_status l2rw__zoo_build(l2rw_graph *g, const char *model, int classes,
                            int *output)
{
    *output = -1;
    if (!g || !model)
        return l2rw__fail(L2RW_ERR_ARG, "model name missing");
    if (classes < 2)
        return l2rw__fail(L2RW_ERR_ARG,
                          "model '%s': need at least 2 classes, got %d",
                          model, classes);
    l2rw_status s;
    if (strcmp(model, "mlp") == 0 || strncmp(model, "mlp:", 4) == 0)
        s = zoo_mlp(g, model, classes, output);
    else if (strcmp(model, "lenet") == 0)
        s = zoo_lenet(g, classes, output);
    else if (strncmp(model, "resnet", 6) == 0)
        s = zoo_resnet(g, model, classes, output);
    else if (strncmp(model, "wrn-", 4) == 0)
        s = zoo_wrn(g, model, classes, output);
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
