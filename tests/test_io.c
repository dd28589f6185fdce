/* Model files: save and load give bit-identical outputs; another
 * architecture is L2RW_ERR_ARCH; truncated, flipped, mislabelled or
 * padded files are L2RW_ERR_FORMAT naming the file; a missing file is
 * L2RW_ERR_IO; a failed load leaves the net untouched; writing is atomic
 * (no temporary file left behind); the checked binary helpers round-trip
 * and refuse short reads. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binio.h"
#include "check.h"
#include "l2rw.h"
#include "model_io.h"
#include "testutil.h"

static int write_all(const char *path, const unsigned char *buf, long len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    int ok = fwrite(buf, 1, (size_t)len, fp) == (size_t)len;
    return (fclose(fp) == 0 && ok) ? 0 : -1;
}

enum { N = 3 };

/* x for a model's input shape */
static float *input_for(const l2rw_net *net)
{
    int c, h, w;
    l2rw_net_input_shape(net, &c, &h, &w);
    size_t len = (size_t)N * c * h * w;
    float *x = malloc(len * sizeof *x);
    if (!x) return NULL;
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 77);
    for (size_t i = 0; i < len; i++) x[i] = (float)l2rw_rng_normal(&rng);
    return x;
}

/* eval logits into out[N * classes] */
static int logits(l2rw_net *net, const float *x, float *out)
{
    if (l2rw_net_forward(net, x, N, L2RW_MODE_EVAL, 0) != L2RW_OK) return -1;
    memcpy(out, l2rw_net_logits(net),
           (size_t)N * l2rw_net_classes(net) * sizeof *out);
    return 0;
}

static void check_round_trip(const char *model, int c, int h, int w)
{
    enum { K = 5 };
    char path[300];
    path_in(path, sizeof path, "model.l2rw");
    l2rw_net *a = NULL, *b = NULL, *d = NULL;
    CHECK_OK(l2rw_net_create(&a, model, c, h, w, K, N, 1));
    if (!a) return;
    float *x = input_for(a);
    float la[N * K], lb[N * K];
    /* a training forward and an SGD step make the state and the
     * parameters differ from any fresh net's */
    int32_t y[N] = {0, 3, 4};
    l2rw_sgd_cfg cfg = {.lr = 0.1f, .momentum = 0.9f};
    l2rw_sgd *opt = NULL;
    CHECK_OK(l2rw_sgd_create(&opt, a, &cfg));
    CHECK_OK(l2rw_net_forward(a, x, N, L2RW_MODE_TRAIN, 0));
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    CHECK_OK(l2rw_net_loss(a, y, &ce, NULL, NULL));
    CHECK_OK(l2rw_net_backward(a, NULL));
    if (opt) CHECK_OK(l2rw_sgd_step(opt, a, 0));
    l2rw_sgd_free(opt);
    CHECK(x && logits(a, x, la) == 0, "%s: forward", model);
    CHECK_OK(l2rw_net_save(a, path));

    CHECK_OK(l2rw_net_load_new(&b, path, N));
    if (b && x) {
        CHECK(strcmp(l2rw_net_model(b), model) == 0, "loaded name %s",
              l2rw_net_model(b));
        int bc, bh, bw;
        l2rw_net_input_shape(b, &bc, &bh, &bw);
        CHECK(bc == c && bh == h && bw == w && l2rw_net_classes(b) == K,
              "loaded shape");
        CHECK(logits(b, x, lb) == 0 && memcmp(la, lb, sizeof la) == 0,
              "%s: outputs after load_new differ", model);
        CHECK(memcmp(l2rw_net_state(a), l2rw_net_state(b),
                     l2rw_net_num_state(a) * sizeof(float)) == 0,
              "%s: state differs", model);
    }
    /* into an existing net of the same model with other weights */
    CHECK_OK(l2rw_net_create(&d, model, c, h, w, K, N, 99));
    if (d && x) {
        CHECK_OK(l2rw_net_load(d, path));
        CHECK(logits(d, x, lb) == 0 && memcmp(la, lb, sizeof la) == 0,
              "%s: outputs after load differ", model);
    }
    free(x);
    l2rw_net_free(a);
    l2rw_net_free(b);
    l2rw_net_free(d);
}

/* File name appears in the message of every refusal. */
static void expect(l2rw_status got, l2rw_status want, const char *path,
                   const char *what)
{
    CHECK(got == want, "%s: got %s, want %s (%s)", what, l2rw_strerror(got),
          l2rw_strerror(want), l2rw_last_error());
    if (got != L2RW_OK)
        CHECK(strstr(l2rw_last_error(), path) != NULL,
              "%s: message '%s' does not name the file", what,
              l2rw_last_error());
}

static void test_round_trip_lenet(void) { check_round_trip("lenet", 1, 16, 16); }
/* batch-norm statistics travel with the parameters */
static void test_round_trip_resnet8(void) { check_round_trip("resnet8", 3, 8, 8); }
static void test_round_trip_wrn(void) { check_round_trip("wrn-10-1:0.3", 3, 8, 8); }

static void test_refusals(void)
{
    char path[300], bad[300];
    path_in(path, sizeof path, "lenet.l2rw");
    path_in(bad, sizeof bad, "bad.l2rw");
    l2rw_net *net = NULL, *other = NULL;
    CHECK_OK(l2rw_net_create(&net, "lenet", 1, 28, 28, 10, 2, 5));
    if (!net) return;
    CHECK_OK(l2rw_net_save(net, path));

    /* other architectures */
    CHECK_OK(l2rw_net_create(&other, "mlp", 1, 28, 28, 10, 2, 5));
    if (other) expect(l2rw_net_load(other, path), L2RW_ERR_ARCH, path,
                      "mlp from a lenet file");
    l2rw_net_free(other);
    CHECK_OK(l2rw_net_create(&other, "lenet", 1, 28, 28, 7, 2, 5));
    if (other) expect(l2rw_net_load(other, path), L2RW_ERR_ARCH, path,
                      "lenet of 7 classes from one of 10");
    l2rw_net_free(other);
    CHECK_OK(l2rw_net_create(&other, "lenet", 3, 28, 28, 10, 2, 5));
    if (other) expect(l2rw_net_load(other, path), L2RW_ERR_ARCH, path,
                      "lenet on 3 channels from one on 1");
    l2rw_net_free(other);

    /* a missing file */
    char missing[300];
    path_in(missing, sizeof missing, "no-such-file.l2rw");
    expect(l2rw_net_load(net, missing), L2RW_ERR_IO, missing, "missing");
    l2rw_net *nn = NULL;
    expect(l2rw_net_load_new(&nn, missing, 1), L2RW_ERR_IO, missing,
           "missing (load_new)");
    CHECK(nn == NULL, "load_new of a missing file returned a net");

    long len = 0;
    unsigned char *buf = (unsigned char *)slurp(path, &len);
    CHECK(buf != NULL, "read back %s", path);
    if (!buf) {
        l2rw_net_free(net);
        return;
    }
    size_t np = l2rw_net_num_params(net);
    float *before = malloc(np * sizeof *before);
    if (before) memcpy(before, l2rw_net_params(net), np * sizeof *before);

    /* truncations: empty, inside the magic, the header, the data, the
     * checksum */
    static const long cut_from_end[] = {1, 3, 4, 5, 1000};
    static const long keep[] = {0, 4, 11, 20};
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
        CHECK(write_all(bad, buf, keep[k]) == 0, "write");
        expect(l2rw_net_load(net, bad), L2RW_ERR_FORMAT, bad, "truncated");
    }
    for (size_t k = 0; k < sizeof cut_from_end / sizeof cut_from_end[0];
         k++) {
        CHECK(write_all(bad, buf, len - cut_from_end[k]) == 0, "write");
        expect(l2rw_net_load(net, bad), L2RW_ERR_FORMAT, bad, "truncated");
        nn = NULL;
        expect(l2rw_net_load_new(&nn, bad, 1), L2RW_ERR_FORMAT, bad,
               "truncated (load_new)");
        CHECK(nn == NULL, "load_new of a truncated file returned a net");
    }
    /* one flipped byte anywhere: magic, version, name, shape, counts,
     * data, checksum */
    const long flips[] = {0, 7, 8, 13, 14, 24, 40, 100, len / 2, len - 5,
                          len - 2};
    for (size_t k = 0; k < sizeof flips / sizeof flips[0]; k++) {
        buf[flips[k]] ^= 0x10;
        CHECK(write_all(bad, buf, len) == 0, "write");
        buf[flips[k]] ^= 0x10;
        expect(l2rw_net_load(net, bad), L2RW_ERR_FORMAT, bad,
               "flipped byte");
    }
    /* trailing garbage */
    unsigned char *longer = malloc((size_t)len + 8);
    if (longer) {
        memcpy(longer, buf, (size_t)len);
        memset(longer + len, 0xAB, 8);
        CHECK(write_all(bad, longer, len + 8) == 0, "write");
        expect(l2rw_net_load(net, bad), L2RW_ERR_FORMAT, bad,
               "trailing bytes");
        free(longer);
    }
    /* not a model file at all */
    CHECK(write_all(bad, (const unsigned char *)"P5\n28 28\n255\n", 13) == 0,
          "write");
    expect(l2rw_net_load(net, bad), L2RW_ERR_FORMAT, bad, "bad magic");

    if (before)
        CHECK(memcmp(before, l2rw_net_params(net), np * sizeof *before) ==
                  0,
              "a failed load changed the net");
    free(before);
    free(buf);
    remove(bad);
    l2rw_net_free(net);
}

/* Files with a valid checksum but impossible contents. */
typedef struct {
    uint32_t version;
    const char *name;
    int32_t classes;
    uint64_t np;
} forged;

static l2rw_status write_forged(FILE *fp, void *ctx)
{
    const forged *f = ctx;
    static const char magic[L2RW_MAGIC_LEN] = {'L', '2', 'R', 'W',
                                               'N', 'E', 'T', '\n'};
    l2rw_bwriter w;
    L2RW_TRY(l2rw__bw_begin(&w, fp, "forged", magic));
    L2RW_TRY(l2rw__bw_u32(&w, f->version));
    L2RW_TRY(l2rw__bw_str(&w, f->name));
    L2RW_TRY(l2rw__bw_i32(&w, 1));
    L2RW_TRY(l2rw__bw_i32(&w, 28));
    L2RW_TRY(l2rw__bw_i32(&w, 28));
    L2RW_TRY(l2rw__bw_i32(&w, f->classes));
    L2RW_TRY(l2rw__bw_u64(&w, f->np));
    L2RW_TRY(l2rw__bw_u64(&w, 0));
    float zeros[16] = {0};
    L2RW_TRY(l2rw__write_floats(&w, zeros, 16));
    return l2rw__bw_end(&w);
}

static void test_forged(void)
{
    char path[300];
    path_in(path, sizeof path, "forged.l2rw");
    static const forged cases[] = {
        {3, "lenet", 10, 16},               /* future version */
        {1, "lenet", 10, (uint64_t)1 << 60}, /* absurd count */
        {1, "lenet", 10, 16},               /* count below the model's */
        {1, "lenet", -3, 16},               /* negative classes */
        {1, "", 10, 16},                    /* empty name */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CHECK_OK(l2rw_write_atomic(path, write_forged, (void *)&cases[k]));
        l2rw_net *net = NULL;
        l2rw_status s = l2rw_net_load_new(&net, path, 1);
        /* a count that fits the file but not the model is an
         * architecture mismatch; the rest are format errors */
        l2rw_status want = k == 2 ? L2RW_ERR_ARCH : L2RW_ERR_FORMAT;
        CHECK(s == want && net == NULL, "forged file %zu: %s (%s)", k,
              l2rw_strerror(s), l2rw_last_error());
        l2rw_net_free(net);
    }
    /* a model name this build cannot build */
    static const forged unknown = {1, "transformer", 10, 16};
    CHECK_OK(l2rw_write_atomic(path, write_forged, (void *)&unknown));
    l2rw_net *net = NULL;
    l2rw_status s = l2rw_net_load_new(&net, path, 1);
    CHECK(s == L2RW_ERR_ARCH && net == NULL, "unknown model: %s",
          l2rw_strerror(s));
    remove(path);
}

/* No temporary file survives a save, nor a save that fails. */
static int temp_files_in(const char *d)
{
    DIR *dp = opendir(d);
    if (!dp) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(dp);
    return n;
}

static void test_atomic(void)
{
    char path[300];
    path_in(path, sizeof path, "atomic.l2rw");
    l2rw_net *net = NULL;
    CHECK_OK(l2rw_net_create(&net, "mlp:4", 1, 2, 2, 3, 1, 1));
    if (!net) return;
    CHECK_OK(l2rw_net_save(net, path));
    CHECK_OK(l2rw_net_save(net, path)); /* over an existing file */
    CHECK(temp_files_in(tmpdir) == 0, "temporary file left after save");
    char nodir[300];
    path_in(nodir, sizeof nodir, "no-such-dir/m.l2rw");
    CHECK(l2rw_net_save(net, nodir) == L2RW_ERR_IO, "save into a missing "
                                                    "directory");
    CHECK(temp_files_in(tmpdir) == 0, "temporary file left after a failure");
    remove(path);
    l2rw_net_free(net);
}

/* The checked helpers on their own. */
static l2rw_status write_sample(FILE *fp, void *ctx)
{
    (void)ctx;
    static const char magic[L2RW_MAGIC_LEN] = "TESTMAGI";
    l2rw_bwriter w;
    L2RW_TRY(l2rw__bw_begin(&w, fp, "sample", magic));
    L2RW_TRY(l2rw__bw_u32(&w, 0xDEADBEEFu));
    L2RW_TRY(l2rw__bw_i64(&w, -1234567890123LL));
    L2RW_TRY(l2rw__bw_str(&w, "hello"));
    float f[3] = {1.5f, -0.0f, 3e-38f};
    int32_t iv[2] = {-7, 1 << 30};
    L2RW_TRY(l2rw__write_floats(&w, f, 3));
    L2RW_TRY(l2rw__write_i32s(&w, iv, 2));
    return l2rw__bw_end(&w);
}

static void test_binio(void)
{
    char path[300];
    path_in(path, sizeof path, "sample.bin");
    static const char magic[L2RW_MAGIC_LEN] = "TESTMAGI";
    CHECK_OK(l2rw_write_atomic(path, write_sample, NULL));
    l2rw_breader r;
    CHECK_OK(l2rw__br_open(&r, path, magic, "sample file"));
    uint32_t u;
    int64_t i64;
    char s[8];
    float f[3];
    int32_t iv[2];
    CHECK_OK(l2rw__br_u32(&r, &u, "u32"));
    CHECK_OK(l2rw__br_i64(&r, &i64, "i64"));
    CHECK_OK(l2rw__br_str(&r, s, sizeof s, "str"));
    CHECK_OK(l2rw__read_floats(&r, f, 3, "floats"));
    CHECK_OK(l2rw__read_i32s(&r, iv, 2, "ints"));
    CHECK(u == 0xDEADBEEFu && i64 == -1234567890123LL, "integers");
    CHECK(strcmp(s, "hello") == 0, "string '%s'", s);
    CHECK(f[0] == 1.5f && f[1] == 0.0f && signbit(f[1]) && f[2] == 3e-38f,
          "floats");
    CHECK(iv[0] == -7 && iv[1] == (1 << 30), "ints");
    CHECK(l2rw__br_left(&r) == 0, "bytes left");
    CHECK_OK(l2rw__br_end(&r));
    /* reading past the end is a format error, not a crash */
    CHECK(l2rw__br_u32(&r, &u, "extra") == L2RW_ERR_FORMAT, "past the end");
    l2rw__br_close(&r);

    /* a string longer than the buffer */
    CHECK_OK(l2rw__br_open(&r, path, magic, "sample file"));
    char small[4];
    CHECK_OK(l2rw__br_u32(&r, &u, "u32"));
    CHECK_OK(l2rw__br_i64(&r, &i64, "i64"));
    CHECK(l2rw__br_str(&r, small, sizeof small, "str") == L2RW_ERR_FORMAT,
          "long string accepted");
    l2rw__br_close(&r);
    /* another magic */
    CHECK(l2rw__br_open(&r, path, "OTHERMAG", "other file") ==
              L2RW_ERR_FORMAT,
          "wrong magic accepted");
    CHECK(r.fp == NULL, "reader left open after a failure");
    remove(path);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/l2rw-test-io-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "cannot create a temporary directory in %s", tmpdir);
        return CHECK_DONE("test_io");
    }
    RUN(test_round_trip_lenet);
    RUN(test_round_trip_resnet8);
    RUN(test_round_trip_wrn);
    RUN(test_refusals);
    RUN(test_forged);
    RUN(test_atomic);
    RUN(test_binio);
    rmdir(tmpdir);
    return CHECK_DONE("test_io");
}
