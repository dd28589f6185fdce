/* ONNX export: the protobuf writer's bytes on small messages whose
 * encodings are worked out by hand (or are the protobuf documentation's
 * own examples), the model's header fields, the batch norms folded or
 * kept, argument errors, and determinism.
 *
 * `test_onnx --fixtures DIR` writes what tests/onnx.sh compares ONNX
 * Runtime against instead: for each model of the zoo, DIR/LABEL/ holds
 * model.l2rw (random parameters, random non-trivial batch-norm
 * statistics), norm.txt, x.bin (raw inputs, float32 little-endian
 * [N, C, H, W]), logits.bin (l2rw's eval-mode logits of the normalised
 * inputs, [N, classes]) and meta.json; DIR/cases.txt lists the labels. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "l2rw.h"
#include "layers.h"
#include "net_internal.h"
#include "protobuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FIX_N = 5, FIX_CLASSES = 10, FIX_SEED = 13 };

/* pb's bytes equal want[0..n). */
static int bytes_are(const l2rw_pb *pb, const unsigned char *want, size_t n)
{
    return !pb->failed && pb->len == n && memcmp(pb->data, want, n) == 0;
}

static void test_varint(void)
{
    static const struct {
        uint64_t v;
        unsigned char b[10];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {1, {0x01}, 1},
        {127, {0x7f}, 1},
        {128, {0x80, 0x01}, 2},
        {150, {0x96, 0x01}, 2}, /* the protobuf encoding guide's example */
        {300, {0xac, 0x02}, 2},
        {UINT64_MAX,
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        l2rw_pb pb;
        l2rw__pb_init(&pb);
        l2rw__pb_varint(&pb, cases[i].v);
        CHECK(bytes_are(&pb, cases[i].b, cases[i].n), "varint %llu",
              (unsigned long long)cases[i].v);
        l2rw__pb_free(&pb);
    }
}

static void test_int_fields(void)
{
    l2rw_pb pb;
    l2rw__pb_init(&pb);
    l2rw__pb_int(&pb, 1, 150); /* key 1 << 3 | 0 = 0x08 */
    static const unsigned char f1[] = {0x08, 0x96, 0x01};
    CHECK(bytes_are(&pb, f1, sizeof f1), "field 1 = 150");
    l2rw__pb_free(&pb);
    l2rw__pb_int(&pb, 20, 7); /* key 20 << 3 = 160: two bytes a0 01 */
    static const unsigned char f20[] = {0xa0, 0x01, 0x07};
    CHECK(bytes_are(&pb, f20, sizeof f20), "field 20 = 7");
    l2rw__pb_free(&pb);
    l2rw__pb_int(&pb, 3, -1); /* int64 -1: ten bytes, two's complement */
    static const unsigned char neg[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(bytes_are(&pb, neg, sizeof neg), "field 3 = -1");
    l2rw__pb_free(&pb);
}

static void test_string_field(void)
{
    l2rw_pb pb;
    l2rw__pb_init(&pb);
    l2rw__pb_string(&pb, 2, "testing"); /* the encoding guide's example */
    static const unsigned char want[] = {0x12, 0x07, 't', 'e', 's', 't',
                                         'i',  'n',  'g'};
    CHECK(bytes_are(&pb, want, sizeof want), "field 2 = \"testing\"");
    l2rw__pb_free(&pb);
    l2rw__pb_string(&pb, 1, ""); /* present but empty: key, length 0 */
    static const unsigned char empty[] = {0x0a, 0x00};
    CHECK(bytes_are(&pb, empty, sizeof empty), "field 1 = \"\"");
    l2rw__pb_free(&pb);
}

static void test_float_fields(void)
{
    l2rw_pb pb;
    l2rw__pb_init(&pb);
    l2rw__pb_float(&pb, 2, 1.0f); /* key 2 << 3 | 5, 0x3f800000 LE */
    static const unsigned char one[] = {0x15, 0x00, 0x00, 0x80, 0x3f};
    CHECK(bytes_are(&pb, one, sizeof one), "float field 2 = 1");
    l2rw__pb_free(&pb);
    const float v[2] = {1.0f, -2.0f}; /* -2 = 0xc0000000 */
    l2rw__pb_floats_le(&pb, 9, v, 2);
    static const unsigned char raw[] = {0x4a, 0x08, 0x00, 0x00, 0x80, 0x3f,
                                        0x00, 0x00, 0x00, 0xc0};
    CHECK(bytes_are(&pb, raw, sizeof raw), "raw_data {1, -2}");
    l2rw__pb_free(&pb);
}

static void test_nested_message(void)
{
    l2rw_pb child, pb;
    l2rw__pb_init(&child);
    l2rw__pb_init(&pb);
    l2rw__pb_int(&child, 1, 150);
    l2rw__pb_message(&pb, 3, &child); /* the encoding guide's Test3 */
    static const unsigned char want[] = {0x1a, 0x03, 0x08, 0x96, 0x01};
    CHECK(bytes_are(&pb, want, sizeof want), "embedded message");
    child.failed = 1; /* a failed child poisons its parent */
    l2rw__pb_message(&pb, 3, &child);
    CHECK(l2rw__pb_status(&pb, "test") == L2RW_ERR_NOMEM, "failed child");
    l2rw__pb_free(&child);
    l2rw__pb_free(&pb);
}

/* ---------------------------------------------------------- export cases */

static unsigned char *read_all(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *d = NULL;
    size_t cap = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nd = realloc(d, cap);
            if (!nd) break;
            d = nd;
        }
        size_t got = fread(d + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0) break;
    }
    fclose(f);
    return d;
}

static size_t count_of(const unsigned char *d, size_t len, const char *s)
{
    const size_t n = strlen(s);
    size_t c = 0;
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(d + i, s, n) == 0) c++;
    return c;
}

static void tmp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "/tmp/l2rw_test_onnx_%ld_%s", (long)getpid(), name);
}

static void test_model_header(void)
{
    l2rw_net *net;
    CHECK_OK(l2rw_net_create(&net, "mlp:4", 3, 2, 2, 3, 1, 1));
    if (!net) return;
    char path[256];
    tmp_path(path, sizeof path, "mlp.onnx");
    CHECK_OK(l2rw_net_export_onnx(net, path, NULL));
    size_t len;
    unsigned char *d = read_all(path, &len);
    CHECK(d && len > 2 && d[0] == 0x08 && d[1] == 8, "ir_version 8 first");
    /* opset_import (8): key 0x42, length 4, domain "" (0a 00), version 17
     * (10 11) */
    static const unsigned char opset[] = {0x42, 0x04, 0x0a, 0x00, 0x10, 0x11};
    int found = 0;
    for (size_t i = 0; d && i + sizeof opset <= len; i++)
        if (memcmp(d + i, opset, sizeof opset) == 0) found = 1;
    CHECK(found, "opset_import {\"\", 17}");
    CHECK(d && count_of(d, len, "Gemm") == 2, "two Gemm nodes");
    CHECK(d && count_of(d, len, "probabilities") >= 1, "softmax output");
    /* 3*2*2*4 + 4 + 4*3 + 3 = 67 parameters as raw float data */
    CHECK(len > 67 * 4, "file of %zu bytes", len);
    free(d);
    remove(path);
    l2rw_net_free(net);
}

/* Number of BatchNormalization nodes in net's export. */
static size_t bn_nodes(l2rw_net *net, int fold)
{
    char path[256];
    tmp_path(path, sizeof path, "bn.onnx");
    l2rw_onnx_opts o = l2rw_onnx_opts_default();
    o.fold_bn = fold;
    CHECK_OK(l2rw_net_export_onnx(net, path, &o));
    size_t len;
    unsigned char *d = read_all(path, &len);
    size_t n = d ? count_of(d, len, "BatchNormalization") : (size_t)-1;
    free(d);
    remove(path);
    return n;
}

/* resnet8: every batch norm follows a conv nothing else reads (9 of
 * them). wrn-10-2 has 7: the middle one of each block and the first
 * block's first (the stem conv's output, which the widening 1x1 shortcut
 * does not read) fold; the 3 after an add stay. */
static void test_fold_counts(void)
{
    static const struct {
        const char *model;
        size_t folded, kept;
    } cases[] = {{"resnet8", 0, 9}, {"wrn-10-2:0.3", 3, 7}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        l2rw_net *net;
        CHECK_OK(l2rw_net_create(&net, cases[i].model, 3, 8, 8, 10, 1, 1));
        if (!net) continue;
        size_t f = bn_nodes(net, 1), k = bn_nodes(net, 0);
        CHECK(f == cases[i].folded && k == cases[i].kept,
              "%s: %zu BatchNormalization folded (want %zu), %zu kept (want "
              "%zu)", cases[i].model, f, cases[i].folded, k, cases[i].kept);
        l2rw_net_free(net);
    }
}

static void test_export_errors(void)
{
    l2rw_net *net;
    CHECK_OK(l2rw_net_create(&net, "lenet", 1, 28, 28, 10, 1, 1));
    if (!net) return;
    char path[256];
    tmp_path(path, sizeof path, "bad.onnx");
    CHECK(l2rw_net_export_onnx(NULL, path, NULL) == L2RW_ERR_ARG, "NULL net");
    CHECK(l2rw_net_export_onnx(net, NULL, NULL) == L2RW_ERR_ARG,
          "NULL path");
    const float mean[2] = {0, 0}, std[2] = {1, 1}, zero[1] = {0};
    l2rw_onnx_opts o = l2rw_onnx_opts_default();
    o.mean = mean, o.std = std, o.norm_channels = 2;
    CHECK(l2rw_net_export_onnx(net, path, &o) == L2RW_ERR_ARG,
          "2 channels of normalisation for 1: %s", l2rw_last_error());
    o.norm_channels = 1, o.std = zero;
    CHECK(l2rw_net_export_onnx(net, path, &o) == L2RW_ERR_ARG, "std 0");
    const float nan[1] = {NAN};
    o.std = std, o.mean = nan;
    CHECK(l2rw_net_export_onnx(net, path, &o) == L2RW_ERR_ARG, "mean NaN");
    CHECK(access(path, F_OK) != 0, "nothing written on refusal");
    CHECK(l2rw_net_export_onnx(net, "/nonexistent-dir/x.onnx", NULL) ==
              L2RW_ERR_IO,
          "unwritable path: %s", l2rw_last_error());
    l2rw_net_free(net);
}

/* Class names go into the metadata as a JSON array, escaped. */
static void test_class_names(void)
{
    l2rw_net *net;
    CHECK_OK(l2rw_net_create(&net, "mlp:4", 2, 1, 1, 3, 1, 1));
    if (!net) return;
    char path[256];
    tmp_path(path, sizeof path, "names.onnx");
    CHECK_OK(l2rw_net_export_onnx(net, path, NULL));
    size_t len;
    unsigned char *d = read_all(path, &len);
    CHECK(d && count_of(d, len, "class_names") == 0, "no names, no key");
    free(d);
    const char *names[3] = {"T-shirt", "a,b", "say \"hi\"\\"};
    CHECK_OK(l2rw_net_set_class_names(net, names, 3));
    CHECK_OK(l2rw_net_export_onnx(net, path, NULL));
    d = read_all(path, &len);
    CHECK(d && count_of(d, len, "[\"T-shirt\",\"a,b\",\"say \\\"hi\\\"\\\\\"]") == 1,
          "class_names [\"T-shirt\",\"a,b\",\"say \\\"hi\\\"\\\\\"]");
    free(d);
    remove(path);
    l2rw_net_free(net);
}

static void test_deterministic(void)
{
    l2rw_net *net;
    CHECK_OK(l2rw_net_create(&net, "resnet8", 3, 8, 8, 10, 1, 7));
    if (!net) return;
    char a[256], b[256];
    tmp_path(a, sizeof a, "a.onnx");
    tmp_path(b, sizeof b, "b.onnx");
    CHECK_OK(l2rw_net_export_onnx(net, a, NULL));
    CHECK_OK(l2rw_net_export_onnx(net, b, NULL));
    size_t la, lb;
    unsigned char *da = read_all(a, &la), *db = read_all(b, &lb);
    CHECK(da && db && la == lb && memcmp(da, db, la) == 0,
          "two exports of one net are identical");
    free(da);
    free(db);
    remove(a);
    remove(b);
    l2rw_net_free(net);
}

/* -------------------------------------------------------------- fixtures */

typedef struct {
    const char *label, *model;
    int c, h, w;
} fixture;

static const fixture FIXTURES[] = {
    {"mlp", "mlp", 1, 12, 12},
    {"mlp-32-16", "mlp:32,16", 20, 1, 1}, /* tabular: features as channels */
    {"lenet", "lenet", 1, 28, 28},
    {"resnet8", "resnet8", 3, 32, 32},
    {"resnet20", "resnet20", 3, 16, 16},
    {"wrn-10-2", "wrn-10-2:0.3", 3, 32, 32},
};

/* lenet's fixture names its classes: the export states them. */
static const char *const FASHION[FIX_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static float uniform(l2rw_rng *r, double lo, double hi)
{
    return (float)(lo + (hi - lo) * l2rw_rng_uniform(r));
}

/* Random biases and batch-norm parameters and running statistics, far
 * from the identity (gamma 1, beta 0, mean 0, var 1) that would make a
 * wrong fold invisible. */
static void randomise(l2rw_net *net, l2rw_rng *r)
{
    const l2rw__net_view v = l2rw__net_view_of(net);
    float *p = l2rw_net_params(net), *st = l2rw_net_state(net);
    for (int i = 0; i < v.n_nodes; i++) {
        const l2rw__node *nd = &v.nodes[i];
        float *np = p + nd->p_off;
        if (nd->op == L2RW_OP_BATCHNORM) {
            for (int c = 0; c < nd->c; c++) {
                np[c] = uniform(r, 0.5, 1.5);                  /* gamma */
                np[nd->c + c] = uniform(r, -0.3, 0.3);         /* beta */
                st[nd->s_off + c] = uniform(r, -0.5, 0.5);     /* mean */
                st[nd->s_off + nd->c + c] = uniform(r, 0.3, 2); /* var */
            }
        } else if (nd->op == L2RW_OP_DENSE || (nd->op == L2RW_OP_CONV &&
                                               nd->bias)) {
            const size_t nb = (size_t)nd->units;
            for (size_t k = nd->n_params - nb; k < nd->n_params; k++)
                np[k] = uniform(r, -0.2, 0.2);
        }
    }
}

/* dir/name into out; 0 when it does not fit. */
static int join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < size;
}

static int write_bytes(const char *dir, const char *name, const void *d,
                       size_t len)
{
    char path[4096];
    if (!join(path, sizeof path, dir, name)) return 0;
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(d, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "test_onnx: cannot write %s\n", path);
    return ok;
}

/* Float32 little-endian (the byte order ONNX Runtime's Float32Array reads
 * on the little-endian machines this runs on). */
static int write_floats(const char *dir, const char *name, const float *v,
                        size_t n)
{
    return write_bytes(dir, name, v, n * sizeof *v);
}

/* Raw inputs, their normalisation and the logits of the normalised ones. */
static int fixture_data(const fixture *fx, l2rw_net *net, const char *dir,
                        l2rw_rng *r)
{
    const size_t per = (size_t)fx->c * fx->h * fx->w, P = per / fx->c;
    float mean[32], std[32];
    for (int c = 0; c < fx->c; c++)
        mean[c] = uniform(r, 0.1, 0.6), std[c] = uniform(r, 0.2, 0.5);
    float *x = malloc(FIX_N * per * sizeof *x), *xn = malloc(FIX_N * per * 4);
    int ok = x && xn;
    for (size_t i = 0; ok && i < FIX_N * per; i++) {
        const int c = (int)(i / P % (size_t)fx->c);
        x[i] = mean[c] + std[c] * uniform(r, -1.7, 1.7);
        xn[i] = (x[i] - mean[c]) / std[c]; /* as l2rw_norm_apply */
    }
    l2rw_norm nm = {fx->c, mean, std};
    char path[4096];
    ok = ok && join(path, sizeof path, dir, L2RW_FILE_NORM) &&
         l2rw_norm_save(&nm, path) == L2RW_OK &&
         l2rw_net_forward(net, xn, FIX_N, L2RW_MODE_EVAL, 0) == L2RW_OK &&
         write_floats(dir, "x.bin", x, FIX_N * per) &&
         write_floats(dir, "logits.bin", l2rw_net_logits(net),
                      (size_t)FIX_N * FIX_CLASSES);
    free(x);
    free(xn);
    return ok;
}

static int write_fixture(const fixture *fx, const char *root, l2rw_rng *r)
{
    char dir[4096], path[4096], meta[512];
    if (!join(dir, sizeof dir, root, fx->label) || mkdir(dir, 0777) != 0)
        return 0;
    l2rw_net *net;
    if (l2rw_net_create(&net, fx->model, fx->c, fx->h, fx->w, FIX_CLASSES,
                        FIX_N, FIX_SEED) != L2RW_OK)
        return 0;
    randomise(net, r);
    if (strcmp(fx->label, "lenet") == 0 &&
        l2rw_net_set_class_names(net, FASHION, FIX_CLASSES) != L2RW_OK)
        return 0;
    int ok = join(path, sizeof path, dir, "model.l2rw") &&
             l2rw_net_save(net, path) == L2RW_OK &&
             fixture_data(fx, net, dir, r);
    int len = snprintf(meta, sizeof meta,
                       "{\"model\": \"%s\", \"n\": %d, \"c\": %d, \"h\": %d, "
                       "\"w\": %d, \"classes\": %d}\n",
                       fx->model, FIX_N, fx->c, fx->h, fx->w, FIX_CLASSES);
    ok = ok && write_bytes(dir, "meta.json", meta, (size_t)len);
    if (ok && l2rw_net_class_name(net, 0)) { /* plain names: no escapes */
        char names[512] = "[";
        for (int k = 0; k < FIX_CLASSES; k++)
            snprintf(names + strlen(names), sizeof names - strlen(names),
                     "%s\"%s\"", k ? "," : "", l2rw_net_class_name(net, k));
        strcat(names, "]");
        ok = write_bytes(dir, "names.json", names, strlen(names));
    }
    l2rw_net_free(net);
    return ok;
}

static int write_fixtures(const char *root)
{
    l2rw_rng r;
    l2rw_rng_seed(&r, FIX_SEED);
    char list[1024] = "";
    for (size_t i = 0; i < sizeof FIXTURES / sizeof FIXTURES[0]; i++) {
        if (!write_fixture(&FIXTURES[i], root, &r)) {
            fprintf(stderr, "test_onnx: fixture %s: %s\n", FIXTURES[i].label,
                    l2rw_last_error());
            return 1;
        }
        strcat(list, FIXTURES[i].label);
        strcat(list, "\n");
    }
    return write_bytes(root, "cases.txt", list, strlen(list)) ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--fixtures") == 0)
        return write_fixtures(argv[2]);
    RUN(test_varint);
    RUN(test_int_fields);
    RUN(test_string_field);
    RUN(test_float_fields);
    RUN(test_nested_message);
    RUN(test_model_header);
    RUN(test_fold_counts);
    RUN(test_export_errors);
    RUN(test_class_names);
    RUN(test_deterministic);
    return CHECK_DONE("test_onnx");
}
