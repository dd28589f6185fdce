/* The thread-count contract: l2rw_set_threads applies to the calling
 * thread only, l2rw_train_run gives the caller's count back, and two nets
 * trained at the same time from two threads with different counts end
 * bit-identical to the same runs made one after the other. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "l2rw.h"

enum { BATCH = 16, VAL = 8, STEPS = 6, C = 3, H = 8, W = 8, CLASSES = 4 };

/* ------------------------------------------------ per-thread thread count */

static void *read_after_set(void *arg)
{
    int *got = arg;
    l2rw_set_threads(2);
    got[0] = l2rw_get_threads();
    return NULL;
}

static void test_count_is_per_thread(void)
{
    l2rw_set_threads(1);
    int got[1] = {0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, read_after_set, got) == 0, "pthread_create");
    pthread_join(t, NULL);
    CHECK(got[0] == 2, "the other thread reads its own count: %d", got[0]);
    CHECK(l2rw_get_threads() == 1, "this thread keeps 1, reads %d",
          l2rw_get_threads());
}

/* A thread that never set its count uses OpenMP's (all cores): the first
 * GEMM, which sets OpenBLAS serial, must not leave it at one. Runs first,
 * before any other case has made a GEMM. */
static void test_default_count_survives_blas(void)
{
    const int before = l2rw_get_threads();
    l2rw_net *net = NULL;
    float x[4 * 16] = {0};
    CHECK_OK(l2rw_net_create(&net, "mlp:64", 16, 1, 1, 4, 4, 1));
    if (net) CHECK_OK(l2rw_net_forward(net, x, 4, L2RW_MODE_EVAL, 0));
    l2rw_net_free(net);
    CHECK(l2rw_get_threads() == before, "count %d after the first GEMM, "
          "%d before", l2rw_get_threads(), before);
}

/* ------------------------------------------------ two trainings at once */

typedef struct {
    const char *model;
    int threads;
    uint64_t seed;
    float *params; /* out: final parameters (malloc'd) */
    size_t n;
    l2rw_status status;
} job;

static void fill(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((s >> 40) & 0xFFFF) / 65536.0f - 0.5f;
    }
}

/* STEPS L2RW steps (tangent pass, validation pass, weighted backward,
 * SGD) of `model` on fixed random batches, on the calling thread. */
static l2rw_status train(job *j)
{
    l2rw_set_threads(j->threads);
    l2rw_net *net = NULL;
    l2rw_sgd *opt = NULL;
    l2rw_method_ctx *m = NULL;
    float x[BATCH * C * H * W], vx[VAL * C * H * W];
    int32_t y[BATCH], vy[VAL];
    fill(x, sizeof x / sizeof *x, j->seed);
    fill(vx, sizeof vx / sizeof *vx, j->seed + 1);
    for (int i = 0; i < BATCH; i++) y[i] = (int32_t)((i * 7 + (int)j->seed) % CLASSES);
    for (int i = 0; i < VAL; i++) vy[i] = (int32_t)(i % CLASSES);
    l2rw_sgd_cfg sc = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f};
    l2rw_method_cfg mc = l2rw_method_cfg_default();
    mc.method = L2RW_METHOD_L2RW;
    mc.seed = j->seed;
    l2rw_status s = l2rw_net_create(&net, j->model, C, H, W, CLASSES, BATCH, j->seed);
    if (s == L2RW_OK) s = l2rw_sgd_create(&opt, net, &sc);
    if (s == L2RW_OK) s = l2rw_method_create(&m, &mc, net);
    for (long step = 0; s == L2RW_OK && step < STEPS; step++)
        s = l2rw_method_step(m, net, opt, step, x, y, y, BATCH, vx, vy, VAL,
                             NULL, NULL);
    if (s == L2RW_OK) {
        j->n = l2rw_net_num_params(net);
        j->params = malloc(j->n * sizeof *j->params);
        if (j->params)
            memcpy(j->params, l2rw_net_params(net), j->n * sizeof *j->params);
        else
            s = L2RW_ERR_NOMEM;
    }
    l2rw_method_free(m);
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
    return s;
}

static void *train_thread(void *arg)
{
    job *j = arg;
    j->status = train(j);
    return NULL;
}

static void same_params(const job *a, const job *b, const char *what)
{
    CHECK(a->status == L2RW_OK && b->status == L2RW_OK, "%s: runs failed", what);
    if (!a->params || !b->params) return;
    CHECK(a->n == b->n && memcmp(a->params, b->params, a->n * sizeof *a->params) == 0,
          "%s: parameters differ from the run made alone", what);
}

/* ResNet-8 (batch norm: tangent path) and LeNet-sized MLP (per-example
 * path), one thread at 1 and one at 2 threads, at the same time. */
static void concurrent(const char *model_a, const char *model_b)
{
    job alone[2] = {{model_a, 1, 11, NULL, 0, 0}, {model_b, 2, 12, NULL, 0, 0}};
    job both[2] = {{model_a, 1, 11, NULL, 0, 0}, {model_b, 2, 12, NULL, 0, 0}};
    for (int k = 0; k < 2; k++) alone[k].status = train(&alone[k]);
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        CHECK(pthread_create(&t[k], NULL, train_thread, &both[k]) == 0,
              "pthread_create");
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    same_params(&alone[0], &both[0], model_a);
    same_params(&alone[1], &both[1], model_b);
    for (int k = 0; k < 2; k++) free(alone[k].params), free(both[k].params);
}

static void test_concurrent_resnet_and_mlp(void) { concurrent("resnet8", "mlp:32,16"); }

static void test_concurrent_two_resnets(void) { concurrent("resnet8", "resnet8"); }

/* ------------------------------------------------ l2rw_train_run */

static char dir[256];

static int write_csv(const char *path)
{
    FILE *fp = fopen(path, "w");
    if (!fp) return 1;
    fprintf(fp, "a,b,c,label\n");
    for (int i = 0; i < 120; i++)
        fprintf(fp, "%d,%d,%d,%d\n", i % 7, (i * 3) % 5, i % 2, i % 2);
    return fclose(fp) != 0;
}

static void test_train_run_restores_count(void)
{
    char csv[300], spec[320], out[300];
    snprintf(csv, sizeof csv, "%s/d.csv", dir);
    snprintf(spec, sizeof spec, "csv:%s,label=label", csv);
    snprintf(out, sizeof out, "%s/run", dir);
    CHECK(write_csv(csv) == 0, "cannot write %s", csv);
    l2rw_train_cfg c = l2rw_train_cfg_default();
    c.data = spec;
    c.model = "mlp:8";
    c.method = "plain";
    c.val_per_class = 5;
    c.batch = 10;
    c.val_batch = 10;
    c.steps = 3;
    c.eval_every = 0;
    c.checkpoint_every = 0;
    c.threads = 2;
    c.out_dir = out;
    l2rw_set_threads(1);
    l2rw_train_result res;
    CHECK_OK(l2rw_train_run(&c, &res));
    CHECK(l2rw_get_threads() == 1, "after a run with 2 threads the caller's "
          "count is %d, not 1", l2rw_get_threads());
    c.data = "csv:/nonexistent/file.csv";
    c.out_dir = NULL;
    CHECK(l2rw_train_run(&c, &res) != L2RW_OK, "a run on a missing file fails");
    CHECK(l2rw_get_threads() == 1, "after a failed run the count is %d",
          l2rw_get_threads());
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/l2rw-test-threads-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("cannot create a temporary directory\n");
        return 1;
    }
    RUN(test_default_count_survives_blas);
    RUN(test_count_is_per_thread);
    RUN(test_concurrent_resnet_and_mlp);
    RUN(test_concurrent_two_resnets);
    RUN(test_train_run_restores_count);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return CHECK_DONE("test_threads");
}
