/* l2rw bench: time the engine's passes and the L2RW step on synthetic
 * data, and the machine's SGEMM rate in the same run.
 *
 *   l2rw bench [--model NAME] [--batch N] [--val-batch M] [--threads T]
 *              [--reps R] [--warmup W] [--input CxHxW] [--classes K]
 *              [--seed S] [--device cpu|cuda[:N]|checked]
 *
 * Every figure is the median of R timed repetitions after W untimed ones
 * (the steps also give their fastest repetition, "min").
 * The plain step and the L2RW step are timed interleaved (one of each per
 * repetition) so that a burst of load from other processes on a shared
 * machine hits both alike and their ratio stays meaningful.
 *
 * FLOP counts are analytic (see count_model): 2 * multiply-adds of every
 * convolution and dense layer of the zoo's architecture; the other layers
 * (batch norm, pooling, ReLU, add) are not counted. A training step counts
 * 3x the forward (forward, input gradient, weight gradient), the usual
 * convention; the tangent pass counts 2x the forward (conv(x', W) and
 * conv(x, W')). The analytic parameter count is compared with the net's
 * to catch a zoo that drifted from the count.
 *
 * On a device (--device) the net, its optimizer and every buffer of a step
 * live there; the data stay on the host and each pass uploads its batch,
 * as training does. A device runs asynchronously, so every timed region
 * (and every untimed set-up before one) ends with the back end's sync
 * (the internal l2rw__net_backend(net)->sync of net_internal.h: it waits
 * for all queued work and reports its first error); on the CPU sync does
 * nothing and the figures are those of before. The GEMM rate is then the
 * device's (the back end's gemm, the net's own, on device memory) and the
 * device's name comes from l2rw_device_available. The checked device runs
 * the CPU's kernels with every op's memory opened and closed: it shows
 * that bench runs on a device, and its timings mean nothing. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime(CLOCK_MONOTONIC) */

#include "cmds.h"
#include "opts.h"

#include "backend.h"      /* l2rw__backend: sync and gemm of a device */
#include "common.h"
#include "l2rw.h"
#include "net_internal.h" /* l2rw__net_backend */

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_RUN = 1, EXIT_USAGE = 2 };
enum { SGEMM_N = 1024, SGEMM_REPS = 5 };
enum { REPS_MAX = 100000, BATCH_MAX = 1 << 16 };

typedef struct {
    const char *model, *device;
    l2rw_device dev;
    int batch, val_batch, threads, reps, warmup, classes;
    int c, h, w;
    int input_given;
    int tf32; /* --tf32: TF32 products on CUDA */
    unsigned long long seed;
} bench_opts;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of t[0..n); sorts t. */
static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ------------------------------------------------------------ options */

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: l2rw bench [--model NAME] [--batch N] [--val-batch M]\n"
            "                  [--threads T] [--reps R] [--warmup W]\n"
            "                  [--device cpu|cuda[:N]|checked]\n"
            "                  [--input CxHxW] [--classes K] [--seed S]\n"
            "                  [--tf32]\n"
            "Times ms per forward, forward+tangent, backward, plain step\n"
            "and L2RW step on random data (defaults: lenet, batch 100,\n"
            "val batch 100, 1x28x28 for lenet/mlp and 3x32x32 for resnet\n"
            "and wrn, 10 classes, threads 0 = all cores, 20 reps, the\n"
            "CPU). On a device every timed pass ends with a sync.\n"
            "--tf32 (CUDA only): TF32 tensor cores for the products.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_input(const char *s, bench_opts *o)
{
    int c, h, w;
    char tail;
    if (sscanf(s, "%dx%dx%d%c", &c, &h, &w, &tail) != 3) return -1;
    if (c < 1 || h < 1 || w < 1 || c > 4096 || h > 4096 || w > 4096)
        return -1;
    o->c = c;
    o->h = h;
    o->w = w;
    o->input_given = 1;
    return 0;
}

/* Integer option: name, bounds, destination. */
static int int_opt(const char *name, const char *val, long lo, long hi,
                   int *dst)
{
    long v;
    if (parse_long(val, lo, hi, &v) != 0) {
        fprintf(stderr, "l2rw bench: %s needs an integer in [%ld, %ld]%s%s\n",
                name, lo, hi, val ? ", got " : "", val ? val : "");
        return -1;
    }
    *dst = (int)v;
    return 0;
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.model = "lenet", .device = "cpu",
                      .dev = {L2RW_DEVICE_CPU, 0}, .batch = 100,
                      .val_batch = 100,
                      .threads = 0, .reps = 20, .warmup = 3, .classes = 10,
                      .seed = 1};
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0;
        if (strcmp(a, "--tf32") == 0) { /* the one option without a value */
            o->tf32 = 1;
            i--;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--model") == 0) {
            if (!v) {
                fprintf(stderr, "l2rw bench: --model needs a name\n");
                return -1;
            }
            o->model = v;
        } else if (strcmp(a, "--device") == 0) {
            if (!v) {
                fprintf(stderr, "l2rw bench: --device needs cpu, cuda, "
                                "cuda:N or checked\n");
                return -1;
            }
            if (opts_device("l2rw bench", v, 0, &o->dev)) return -1;
            o->device = v;
        } else if (strcmp(a, "--batch") == 0) {
            r = int_opt(a, v, 1, BATCH_MAX, &o->batch);
        } else if (strcmp(a, "--val-batch") == 0) {
            r = int_opt(a, v, 1, BATCH_MAX, &o->val_batch);
        } else if (strcmp(a, "--threads") == 0) {
            r = int_opt(a, v, 0, 1024, &o->threads);
        } else if (strcmp(a, "--reps") == 0) {
            r = int_opt(a, v, 1, REPS_MAX, &o->reps);
        } else if (strcmp(a, "--warmup") == 0) {
            r = int_opt(a, v, 0, REPS_MAX, &o->warmup);
        } else if (strcmp(a, "--classes") == 0) {
            r = int_opt(a, v, 2, 1 << 20, &o->classes);
        } else if (strcmp(a, "--seed") == 0) {
            long s;
            if (parse_long(v, 0, LONG_MAX, &s) != 0) {
                fprintf(stderr, "l2rw bench: --seed needs a non-negative "
                                "integer\n");
                return -1;
            }
            o->seed = (unsigned long long)s;
        } else if (strcmp(a, "--input") == 0) {
            if (!v || parse_input(v, o) != 0) {
                fprintf(stderr, "l2rw bench: --input needs CxHxW with "
                                "positive sizes, e.g. 3x32x32\n");
                return -1;
            }
        } else {
            fprintf(stderr, "l2rw bench: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
        if (r != 0) return -1;
    }
    if (o->tf32 && o->dev.kind != L2RW_DEVICE_CUDA) {
        fprintf(stderr, "l2rw bench: --tf32 is a mode of CUDA's matrix "
                        "products; give --device cuda[:N]\n");
        return -1;
    }
    l2rw_set_tf32(o->tf32);
    if (!o->input_given) {
        int cifar = strncmp(o->model, "resnet", 6) == 0 ||
                    strncmp(o->model, "wrn-", 4) == 0;
        o->c = cifar ? 3 : 1;
        o->h = o->w = cifar ? 32 : 28;
    }
    return 0;
}

/* ----------------------------------------------------- analytic counts */

typedef struct {
    double flops;  /* forward: 2 * multiply-adds of convs and denses */
    double params; /* trainable parameters */
    int c, h, w;   /* running shape */
} counter;

/* Output size of a k x k window with stride s and padding p. */
static int out_size(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

static void cnt_conv(counter *q, int out_c, int k, int s, int p, int bias)
{
    int oh = out_size(q->h, k, s, p), ow = out_size(q->w, k, s, p);
    q->flops += 2.0 * oh * ow * out_c * (double)q->c * k * k;
    q->params += (double)out_c * q->c * k * k + (bias ? out_c : 0);
    q->c = out_c;
    q->h = oh;
    q->w = ow;
}

static void cnt_bn(counter *q) { q->params += 2.0 * q->c; }

static void cnt_dense(counter *q, int units)
{
    double in = (double)q->c * q->h * q->w;
    q->flops += 2.0 * in * units;
    q->params += in * units + units;
    q->c = units;
    q->h = q->w = 1;
}

/* Shortcut 1x1 convolution (stride s) on the block input `in`, counted
 * into q; bn adds its batch norm (resnet's option B). */
static void cnt_shortcut(counter *q, counter in, int out_c, int s, int bn)
{
    in.flops = in.params = 0.0;
    cnt_conv(&in, out_c, 1, s, 0, 0);
    if (bn) cnt_bn(&in);
    q->flops += in.flops;
    q->params += in.params;
}

static void cnt_resnet(counter *q, int blocks, int classes)
{
    cnt_conv(q, 16, 3, 1, 1, 0);
    cnt_bn(q);
    for (int st = 0; st < 3; st++)
        for (int b = 0; b < blocks; b++) {
            int oc = 16 << st, s = (st > 0 && b == 0) ? 2 : 1;
            counter in = *q;
            cnt_conv(q, oc, 3, s, 1, 0);
            cnt_bn(q);
            cnt_conv(q, oc, 3, 1, 1, 0);
            cnt_bn(q);
            if (s != 1 || in.c != oc) cnt_shortcut(q, in, oc, s, 1);
        }
    q->h = q->w = 1; /* global average pool */
    cnt_dense(q, classes);
}

/* Forward FLOPs and parameters of the zoo's `model` on a c x h x w input;
 * returns -1 for a name this counter does not know. Mirrors src/zoo.c. */
static int count_model(const char *model, int c, int h, int w, int classes,
                       counter *q)
{
    *q = (counter){0.0, 0.0, c, h, w};
    if (strcmp(model, "lenet") == 0) {
        cnt_conv(q, 16, 5, 1, 0, 1);
        q->h /= 2, q->w /= 2;
        cnt_conv(q, 32, 5, 1, 0, 1);
        q->h /= 2, q->w /= 2;
        cnt_dense(q, 100);
        cnt_dense(q, classes);
        return 0;
    }
    if (strcmp(model, "mlp") == 0) {
        cnt_dense(q, 256);
        cnt_dense(q, 128);
        cnt_dense(q, classes);
        return 0;
    }
    if (strncmp(model, "mlp:", 4) == 0) {
        const char *p = model + 4;
        for (;;) {
            char *end;
            long u = strtol(p, &end, 10);
            if (end == p || u < 1) return -1;
            cnt_dense(q, (int)u);
            if (*end == '\0') break;
            if (*end != ',') return -1;
            p = end + 1;
        }
        cnt_dense(q, classes);
        return 0;
    }
    if (strncmp(model, "resnet", 6) == 0) {
        long d;
        if (parse_long(model + 6, 8, 1000, &d) != 0 || (d - 2) % 6) return -1;
        cnt_resnet(q, (int)((d - 2) / 6), classes);
        return 0;
    }
    if (strncmp(model, "wrn-", 4) == 0) {
        int d, k;
        if (sscanf(model + 4, "%d-%d", &d, &k) != 2 || d < 10 ||
            (d - 4) % 6 || k < 1)
            return -1;
        int blocks = (d - 4) / 6;
        cnt_conv(q, 16, 3, 1, 1, 0);
        for (int st = 0; st < 3; st++)
            for (int b = 0; b < blocks; b++) {
                int oc = (16 << st) * k, s = (st > 0 && b == 0) ? 2 : 1;
                counter in = *q;
                cnt_bn(q);
                cnt_conv(q, oc, 3, s, 1, 0);
                cnt_bn(q);
                cnt_conv(q, oc, 3, 1, 1, 0);
                if (s != 1 || in.c != oc) cnt_shortcut(q, in, oc, s, 0);
            }
        cnt_bn(q);
        q->h = q->w = 1;
        cnt_dense(q, classes);
        return 0;
    }
    return -1;
}

/* -------------------------------------------------------------- passes */

/* The steps timed side by side (interleaved). */
enum { STEP_PLAIN, STEP_L2RW, STEP_L2RW_LAST, STEP_COMPOSED, N_STEPS };

typedef struct {
    l2rw_net *net;
    l2rw_sgd *opt;
    l2rw_method_ctx *meth[N_STEPS - 1]; /* plain, l2rw all, l2rw last */
    long skipped[N_STEPS];  /* l2rw steps where every u_i <= 0 */
    float *x, *xv;      /* training [n, c*h*w] and validation [m, ...] */
    int32_t *y, *yv;
    float *loss, *u, *w; /* [n] */
    int n, m;
    long step;
    l2rw_loss ce;
} bench_ctx;

typedef l2rw_status (*bench_fn)(bench_ctx *b);

static l2rw_status pass_forward(bench_ctx *b)
{
    return l2rw_net_forward(b->net, b->x, b->n, L2RW_MODE_TRAIN, 0);
}

static l2rw_status pass_forward_tangent(bench_ctx *b)
{
    return l2rw_net_forward(b->net, b->x, b->n, L2RW_MODE_TRAIN, 1);
}

/* Untimed set-up of the backward: forward and loss. */
static l2rw_status pass_forward_loss(bench_ctx *b)
{
    L2RW_TRY(pass_forward(b));
    return l2rw_net_loss(b->net, b->y, &b->ce, b->loss, NULL);
}

static l2rw_status pass_backward(bench_ctx *b)
{
    return l2rw_net_backward(b->net, NULL);
}

static l2rw_status pass_loss(bench_ctx *b)
{
    return l2rw_net_loss(b->net, b->y, &b->ce, b->loss, NULL);
}

static l2rw_status pass_update(bench_ctx *b)
{
    return l2rw_sgd_step(b->opt, b->net, b->step++);
}

/* One step of the library's method k (l2rw_method_step): what training
 * runs. Plain: forward, mean cross entropy, backward, SGD update. */
static l2rw_status method_step(bench_ctx *b, int k)
{
    l2rw_step_stats st;
    int val = k != STEP_PLAIN;
    L2RW_TRY(l2rw_method_step(b->meth[k], b->net, b->opt, b->step++, b->x,
                              b->y, NULL, b->n, val ? b->xv : NULL,
                              val ? b->yv : NULL, val ? b->m : 0, &st, b->w));
    b->skipped[k] += st.all_nonpositive;
    return L2RW_OK;
}

static l2rw_status step_plain(bench_ctx *b) { return method_step(b, STEP_PLAIN); }
static l2rw_status step_l2rw(bench_ctx *b) { return method_step(b, STEP_L2RW); }
static l2rw_status step_l2rw_last(bench_ctx *b)
{
    return method_step(b, STEP_L2RW_LAST);
}

/* The L2RW step composed from net calls (DESIGN.md section 2), as a
 * cross-check of the library's step (same work, no statistics):
 * validation forward (batch statistics, running averages frozen), mean
 * loss, backward -> v; v into the tangent buffer; training forward with
 * tangent, loss with u; weights; weighted backward; SGD update. */
static l2rw_status step_composed(bench_ctx *b)
{
    l2rw_net *net = b->net;
    L2RW_TRY(l2rw_net_forward(net, b->xv, b->m, L2RW_MODE_TRAIN_FROZEN, 0));
    L2RW_TRY(l2rw_net_loss(net, b->yv, &b->ce, NULL, NULL));
    L2RW_TRY(l2rw_net_backward(net, NULL));
    L2RW_TRY(l2rw_net_copy(net, L2RW_NET_TANGENTS, L2RW_NET_GRADS, 0,
                           l2rw_net_num_params(net)));
    L2RW_TRY(l2rw_net_forward(net, b->x, b->n, L2RW_MODE_TRAIN, 1));
    L2RW_TRY(l2rw_net_loss(net, b->y, &b->ce, b->loss, b->u));
    if (l2rw_weights_normalise(b->u, b->n, b->w) == 0)
        b->skipped[STEP_COMPOSED]++; /* every u_i <= 0: w = 0 */
    L2RW_TRY(l2rw_net_backward(net, b->w));
    return l2rw_sgd_step(b->opt, net, b->step++);
}

/* Waits until the net's queued work has finished: a device queues
 * kernels and returns, so a region timed without it would time the
 * launches only. The CPU's sync returns at once. */
static l2rw_status sync_net(const bench_ctx *b)
{
    return l2rw__net_backend(b->net)->sync();
}

/* fn, then the sync that makes its time the device's. */
static l2rw_status run_synced(bench_ctx *b, bench_fn fn)
{
    L2RW_TRY(fn(b));
    return sync_net(b);
}

/* Median ms of fn over reps after warmup untimed calls; pre (may be NULL)
 * runs untimed before each call (and is finished before the clock
 * starts). t has room for reps values. */
static l2rw_status time_fn(bench_ctx *b, bench_fn pre, bench_fn fn,
                           int warmup, int reps, double *t, double *ms)
{
    for (int r = 0; r < warmup + reps; r++) {
        if (pre) L2RW_TRY(run_synced(b, pre));
        double t0 = now_ms();
        L2RW_TRY(run_synced(b, fn));
        if (r >= warmup) t[r - warmup] = now_ms() - t0;
    }
    *ms = median(t, reps);
    return L2RW_OK;
}

/* The steps fn[0..k) interleaved, one of each per repetition, so that
 * load from other processes hits all alike; t has room for k * reps
 * values; ms[j] = median ms of fn[j], mins[j] the fastest repetition
 * (the least disturbed by other processes). */
static l2rw_status time_steps(bench_ctx *b, const bench_fn *fn, int k,
                              int warmup, int reps, double *t, double *ms,
                              double *mins)
{
    for (int r = 0; r < warmup + reps; r++)
        for (int j = 0; j < k; j++) {
            double t0 = now_ms();
            L2RW_TRY(run_synced(b, fn[j]));
            if (r >= warmup) t[(size_t)j * reps + (r - warmup)] = now_ms() - t0;
        }
    for (int j = 0; j < k; j++) {
        ms[j] = median(t + (size_t)j * reps, reps);
        mins[j] = t[(size_t)j * reps]; /* sorted by median() */
    }
    return L2RW_OK;
}

/* Rate of cblas_sgemm on SGEMM_N^3 (GFLOP/s), median of SGEMM_REPS. */
static int sgemm_rate(double *gflops)
{
    size_t nn = (size_t)SGEMM_N * SGEMM_N;
    float *a = malloc(nn * sizeof *a), *bm = malloc(nn * sizeof *bm),
          *c = malloc(nn * sizeof *c);
    if (!a || !bm || !c) {
        free(a), free(bm), free(c);
        return -1;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 7u) % 13u) * 0.01f;
        bm[i] = (float)((i * 5u) % 11u) * 0.01f;
    }
    double t[SGEMM_REPS];
    for (int r = -1; r < SGEMM_REPS; r++) { /* r = -1: warm-up */
        double t0 = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, SGEMM_N,
                    SGEMM_N, SGEMM_N, 1.0f, a, SGEMM_N, bm, SGEMM_N, 0.0f, c,
                    SGEMM_N);
        if (r >= 0) t[r] = now_ms() - t0;
    }
    double ms = median(t, SGEMM_REPS);
    *gflops = 2.0 * SGEMM_N * (double)SGEMM_N * SGEMM_N / (ms * 1e6);
    free(a), free(bm), free(c);
    return 0;
}

/* The same product with the back end's gemm on its own memory (a
 * device's rate, each repetition ending with a sync); the operands are
 * the CPU test's values, uploaded once. */
static l2rw_status device_gemm_rate(const l2rw__backend *be, double *gflops)
{
    size_t nn = (size_t)SGEMM_N * SGEMM_N;
    float *host = malloc(nn * sizeof *host);
    float *a = be->alloc(nn, sizeof(float));
    float *bm = be->alloc(nn, sizeof(float));
    float *c = be->alloc(nn, sizeof(float));
    l2rw_status s = L2RW_OK;
    if (!host || !a || !bm || !c)
        s = l2rw__fail(L2RW_ERR_NOMEM, "bench: no memory for the %dx%d "
                       "GEMM test on the device", SGEMM_N, SGEMM_N);
    for (size_t i = 0; s == L2RW_OK && i < nn; i++)
        host[i] = (float)((i * 7u) % 13u) * 0.01f;
    if (s == L2RW_OK) be->upload(a, host, nn * sizeof *host);
    for (size_t i = 0; s == L2RW_OK && i < nn; i++)
        host[i] = (float)((i * 5u) % 11u) * 0.01f;
    if (s == L2RW_OK) be->upload(bm, host, nn * sizeof *host);
    double t[SGEMM_REPS];
    /* r = -1: warm-up */
    for (int r = -1; s == L2RW_OK && r < SGEMM_REPS; r++) {
        s = be->sync();
        double t0 = now_ms();
        be->gemm(0, 0, SGEMM_N, SGEMM_N, SGEMM_N, 1.0f, a, SGEMM_N, bm,
                 SGEMM_N, 0.0f, c, SGEMM_N);
        if (s == L2RW_OK) s = be->sync();
        if (r >= 0) t[r] = now_ms() - t0;
    }
    if (s == L2RW_OK)
        *gflops = 2.0 * SGEMM_N * (double)SGEMM_N * SGEMM_N /
                  (median(t, SGEMM_REPS) * 1e6);
    be->dealloc(a), be->dealloc(bm), be->dealloc(c);
    free(host);
    return s;
}

/* ---------------------------------------------------------------- main */

static void free_ctx(bench_ctx *b)
{
    for (int k = 0; k < N_STEPS - 1; k++) l2rw_method_free(b->meth[k]);
    l2rw_sgd_free(b->opt);
    l2rw_net_free(b->net);
    free(b->x), free(b->xv), free(b->y), free(b->yv);
    free(b->loss), free(b->u), free(b->w);
}

static int report_error(l2rw_status s, const char *what)
{
    fprintf(stderr, "l2rw bench: %s: %s: %s\n", what, l2rw_strerror(s),
            l2rw_last_error());
    return s == L2RW_ERR_ARG || s == L2RW_ERR_SHAPE ? EXIT_USAGE : EXIT_RUN;
}

/* Method contexts: plain, l2rw through every layer, l2rw last layer. */
static l2rw_status setup_methods(bench_ctx *b, uint64_t seed)
{
    static const l2rw_method meth[N_STEPS - 1] = {
        L2RW_METHOD_PLAIN, L2RW_METHOD_L2RW, L2RW_METHOD_L2RW};
    static const l2rw_meta_params meta[N_STEPS - 1] = {
        L2RW_META_ALL, L2RW_META_ALL, L2RW_META_LAST};
    for (int k = 0; k < N_STEPS - 1; k++) {
        l2rw_method_cfg cfg = l2rw_method_cfg_default();
        cfg.method = meth[k];
        cfg.meta_params = meta[k];
        cfg.seed = seed;
        L2RW_TRY(l2rw_method_create(&b->meth[k], &cfg, b->net));
    }
    return L2RW_OK;
}

/* Net, optimizer, methods and random data (inputs N(0,1), uniform
 * labels). */
static l2rw_status setup_ctx(bench_ctx *b, const bench_opts *o)
{
    int maxb = o->batch > o->val_batch ? o->batch : o->val_batch;
    L2RW_TRY(l2rw_net_create_on(&b->net, o->model, o->c, o->h, o->w,
                                o->classes, maxb, o->seed, &o->dev));
    /* A learning rate too small to move the parameters: every repetition
     * then times the same net. With 0.01 and random labels, LeNet's ReLUs
     * died within about ten steps; the validation gradient of the layers
     * below them became exactly zero, the tangent pass skipped those
     * layers, and the L2RW step looked 24 -> 18 ms cheaper than it is on
     * a live net (2026-11-27). The update does the same work either way. */
    l2rw_sgd_cfg cfg = {.lr = 1e-20f, .momentum = 0.9f, .weight_decay = 5e-4f};
    L2RW_TRY(l2rw_sgd_create(&b->opt, b->net, &cfg));
    L2RW_TRY(setup_methods(b, o->seed));
    size_t dim = (size_t)o->c * o->h * o->w;
    b->n = o->batch;
    b->m = o->val_batch;
    b->ce = l2rw_loss_default(L2RW_LOSS_CE);
    b->x = malloc(dim * (size_t)b->n * sizeof(float));
    b->xv = malloc(dim * (size_t)b->m * sizeof(float));
    b->y = malloc((size_t)b->n * sizeof(int32_t));
    b->yv = malloc((size_t)b->m * sizeof(int32_t));
    b->loss = malloc((size_t)b->n * sizeof(float));
    b->u = malloc((size_t)b->n * sizeof(float));
    b->w = malloc((size_t)b->n * sizeof(float));
    if (!b->x || !b->xv || !b->y || !b->yv || !b->loss || !b->u || !b->w)
        return l2rw__fail(L2RW_ERR_NOMEM, "bench: no memory for the data");
    l2rw_rng rng;
    l2rw_rng_seed(&rng, o->seed ^ 0x62656e6368ULL); /* "bench" */
    for (size_t i = 0; i < dim * (size_t)b->n; i++)
        b->x[i] = (float)l2rw_rng_normal(&rng);
    for (size_t i = 0; i < dim * (size_t)b->m; i++)
        b->xv[i] = (float)l2rw_rng_normal(&rng);
    for (int i = 0; i < b->n; i++)
        b->y[i] = (int32_t)l2rw_rng_below(&rng, (uint64_t)o->classes);
    for (int i = 0; i < b->m; i++)
        b->yv[i] = (int32_t)l2rw_rng_below(&rng, (uint64_t)o->classes);
    /* A parameter tangent of the scale of a gradient, for the timing of
     * the forward with tangent before any L2RW step has written one
     * (written through l2rw_net_write: the net may be on a device). */
    size_t np = l2rw_net_num_params(b->net);
    float *tan = malloc(np * sizeof *tan);
    if (!tan)
        return l2rw__fail(L2RW_ERR_NOMEM, "bench: no memory for the "
                          "tangent");
    for (size_t i = 0; i < np; i++)
        tan[i] = 1e-3f * (float)l2rw_rng_normal(&rng);
    l2rw_status s = l2rw_net_write(b->net, L2RW_NET_TANGENTS, 0, np, tan);
    free(tan);
    L2RW_TRY(s);
    return sync_net(b);
}

/* The device line, on a device only (the CPU's output is that of
 * before): its name, and for CUDA the GPU the probe found. */
static void print_device(const bench_opts *o)
{
    char name[32], desc[512];
    if (o->dev.kind == L2RW_DEVICE_CPU) return;
    l2rw_device_format(&o->dev, name, sizeof name);
    if (o->dev.kind == L2RW_DEVICE_CHECKED) {
        printf("device %s (the CPU's kernels on a guarded arena, every op "
               "checked: the timings below mean nothing; this run shows "
               "that bench works on a device)\n", name);
        return;
    }
    if (l2rw_device_available(&o->dev, desc, sizeof desc) != L2RW_OK)
        snprintf(desc, sizeof desc, "%s", l2rw_last_error());
    printf("device %s (%s); %s products; batches uploaded from the host "
           "every pass, every timed region ends with a sync\n", name, desc,
           o->tf32 ? "TF32" : "FP32");
}

static void print_header(const bench_opts *o, const bench_ctx *b,
                         const counter *q, int counted)
{
    printf("bench model=%s input=%dx%dx%d classes=%d batch=%d val_batch=%d "
           "threads=%d reps=%d warmup=%d params=%zu\n",
           o->model, o->c, o->h, o->w, o->classes, o->batch, o->val_batch,
           l2rw_get_threads(), o->reps, o->warmup,
           l2rw_net_num_params(b->net));
    print_device(o);
    if (!counted) {
        printf("flops unknown for this model (no analytic count)\n");
        return;
    }
    printf("flops forward %.2f MFLOP/example (2 x multiply-adds of convs "
           "and denses; step = 3 x forward)\n", q->flops * 1e-6);
    if ((size_t)q->params != l2rw_net_num_params(b->net))
        printf("note: analytic parameter count %.0f differs from the net's "
               "%zu: FLOP figures may be off\n",
               q->params, l2rw_net_num_params(b->net));
}

/* GFLOP/s of `flops` done in `ms` milliseconds. */
static double rate(double flops, double ms) { return flops / (ms * 1e6); }

/* Single passes: forward, forward+tangent, loss, backward, update. */
enum { P_FWD, P_FWDT, P_LOSS, P_BWD, P_UPD, N_PASSES };

static void print_results(const bench_opts *o, const bench_ctx *b,
                          const counter *q, int counted, double sgemm,
                          const double *p, const double *st,
                          const double *st_min)
{
    double fl = counted ? q->flops * o->batch : 0.0;
    double tang = p[P_FWDT] - p[P_FWD];
    printf("forward %.3f ms", p[P_FWD]);
    if (counted) printf(" (%.1f GFLOP/s)", rate(fl, p[P_FWD]));
    printf("\nforward+tangent %.3f ms\n", p[P_FWDT]);
    printf("tangent %.3f ms (forward+tangent - forward)\n", tang);
    printf("loss %.3f ms\n", p[P_LOSS]);
    printf("backward %.3f ms", p[P_BWD]);
    if (counted) printf(" (%.1f GFLOP/s)", rate(2.0 * fl, p[P_BWD]));
    printf("\nupdate %.3f ms (SGD momentum, weight decay)\n", p[P_UPD]);
    printf("tangent/backward %.3f\n", p[P_BWD] > 0.0 ? tang / p[P_BWD] : 0.0);
    printf("plain %.3f ms/step (min %.3f", st[STEP_PLAIN],
           st_min[STEP_PLAIN]);
    if (counted)
        printf("; %.1f GFLOP/s, %.0f%% of sgemm",
               rate(3.0 * fl, st[STEP_PLAIN]),
               100.0 * rate(3.0 * fl, st[STEP_PLAIN]) / sgemm);
    long runs = (long)o->warmup + o->reps;
    printf(")\nl2rw-composed %.3f ms/step (min %.3f; net calls of DESIGN.md "
           "sec. 2; %ld of %ld steps all u <= 0)\n",
           st[STEP_COMPOSED], st_min[STEP_COMPOSED],
           b->skipped[STEP_COMPOSED], runs);
    printf("l2rw-last %.3f ms/step (min %.3f; --meta-params last; %ld of %ld "
           "steps skipped)\n",
           st[STEP_L2RW_LAST], st_min[STEP_L2RW_LAST],
           b->skipped[STEP_L2RW_LAST], runs);
    printf("ratio l2rw-last/plain %.3f\n",
           st[STEP_L2RW_LAST] / st[STEP_PLAIN]);
    printf("l2rw %.3f ms/step (min %.3f; %ld of %ld steps skipped: all "
           "u <= 0)\n",
           st[STEP_L2RW], st_min[STEP_L2RW], b->skipped[STEP_L2RW], runs);
    printf("ratio-of-mins l2rw/plain %.3f\n",
           st_min[STEP_L2RW] / st_min[STEP_PLAIN]);
    printf("ratio l2rw/plain %.3f\n", st[STEP_L2RW] / st[STEP_PLAIN]);
}

/* t has room for N_STEPS * reps timings. */
static int run_bench(const bench_opts *o, bench_ctx *b, double *t)
{
    counter q;
    int counted = count_model(o->model, o->c, o->h, o->w, o->classes, &q) == 0;
    double sgemm = 0.0;
    int on_cpu = o->dev.kind == L2RW_DEVICE_CPU;
    if (on_cpu && sgemm_rate(&sgemm) != 0) {
        fprintf(stderr, "l2rw bench: out of memory for the SGEMM test\n");
        return EXIT_RUN;
    }
    if (!on_cpu) {
        l2rw_status s = device_gemm_rate(l2rw__net_backend(b->net), &sgemm);
        if (s != L2RW_OK) return report_error(s, "the device's GEMM test");
    }
    print_header(o, b, &q, counted);
    printf("sgemm %dx%dx%d %.1f GFLOP/s%s\n", SGEMM_N, SGEMM_N, SGEMM_N,
           sgemm, on_cpu ? "" : " (the device's gemm, the net's own, on "
                                "its memory)");
    fflush(stdout);

    static const bench_fn pass[N_PASSES] = {
        pass_forward, pass_forward_tangent, pass_loss, pass_backward,
        pass_update};
    static const bench_fn pre[N_PASSES] = {NULL, NULL, pass_forward,
                                           pass_forward_loss, NULL};
    static const bench_fn steps[N_STEPS] = {step_plain, step_l2rw,
                                            step_l2rw_last, step_composed};
    double p[N_PASSES], st[N_STEPS], st_min[N_STEPS];
    for (int k = 0; k < N_PASSES; k++) {
        l2rw_status s = time_fn(b, pre[k], pass[k], o->warmup, o->reps, t,
                                &p[k]);
        if (s != L2RW_OK) return report_error(s, "timing a pass");
    }
    l2rw_status s = time_steps(b, steps, N_STEPS, o->warmup, o->reps, t, st,
                               st_min);
    if (s != L2RW_OK) return report_error(s, "timing the steps");
    print_results(o, b, &q, counted, sgemm, p, st, st_min);
    return 0;
}

int l2rw_cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int r = parse_opts(argc, argv, &o);
    if (r != 0) return r > 0 ? 0 : EXIT_USAGE;
    l2rw_set_threads(o.threads);

    bench_ctx b;
    memset(&b, 0, sizeof b);
    double *t = malloc((size_t)o.reps * N_STEPS * sizeof *t);
    int rc;
    l2rw_status s = t ? setup_ctx(&b, &o)
                      : l2rw__fail(L2RW_ERR_NOMEM, "bench: no memory for %d "
                                   "timings", o.reps);
    if (s != L2RW_OK)
        rc = report_error(s, "set-up");
    else
        rc = run_bench(&o, &b, t);
    free(t);
    free_ctx(&b);
    return rc;
}
