/* Determinism: two identical short training runs (forward with tangent,
 * loss and tangents u, backward with unequal example weights, SGD step
 * with momentum; five steps, a new dropout key each step) with the same
 * seed and thread count end bit-identical: parameters, batch-norm
 * statistics, velocity, and every step's losses and tangents. With 1
 * and with 2 threads. A run with another seed must differ (so the
 * comparison can fail). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h" /* l2rw_rng */

enum { STEPS = 5, N = 6, K = 4 };

typedef struct {
    const char *model;
    int c, h, w;
} det_case;

static const det_case cases[] = {
    {"lenet", 1, 16, 16},
    {"resnet8", 3, 8, 8},
    {"wrn-10-1:0.3", 3, 8, 8},
};

/* Everything a run produces, flattened. */
typedef struct {
    float *buf;
    size_t len;
} record;

static void record_free(record *r) { free(r->buf); }

static l2rw_status run(const det_case *dc, uint64_t seed, record *out)
{
    l2rw_net *net = NULL;
    l2rw_sgd *opt = NULL;
    float *x = NULL;
    out->buf = NULL;
    l2rw_sgd_cfg cfg = {.lr = 0.05f, .momentum = 0.9f,
                        .weight_decay = 5e-4f, .n_milestones = 1,
                        .milestones = {3}, .decay = 0.1f};
    l2rw_status s = l2rw_net_create(&net, dc->model, dc->c, dc->h, dc->w, K,
                                    N, seed);
    if (s == L2RW_OK) s = l2rw_sgd_create(&opt, net, &cfg);
    size_t per = (size_t)dc->c * dc->h * dc->w;
    size_t np = net ? l2rw_net_num_params(net) : 0;
    size_t ns = net ? l2rw_net_num_state(net) : 0;
    size_t len = 2 * np + ns + (size_t)STEPS * 2 * N;
    if (s == L2RW_OK) {
        x = malloc((size_t)N * per * sizeof *x);
        out->buf = malloc(len * sizeof *out->buf);
        if (!x || !out->buf) s = L2RW_ERR_NOMEM;
    }
    int32_t y[N];
    float w[N];
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    if (s == L2RW_OK) {
        l2rw_rng rng;
        l2rw_rng_seed(&rng, seed);
        for (size_t i = 0; i < (size_t)N * per; i++)
            x[i] = (float)l2rw_rng_normal(&rng);
        for (int i = 0; i < N; i++) {
            y[i] = (int32_t)l2rw_rng_below(&rng, K);
            w[i] = (float)(i + 1) / (N * (N + 1) / 2);
        }
        float *t = l2rw_net_tangents(net);
        for (size_t j = 0; j < np; j++)
            t[j] = (float)(l2rw_rng_uniform(&rng) - 0.5);
    }
    float *trace = out->buf ? out->buf + 2 * np + ns : NULL;
    for (long step = 0; s == L2RW_OK && step < STEPS; step++) {
        l2rw_net_set_dropout_key(net, seed * 1000 + (uint64_t)step);
        s = l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN, 1);
        if (s == L2RW_OK)
            s = l2rw_net_loss(net, y, &ce, trace + step * 2 * N,
                              trace + step * 2 * N + N);
        if (s == L2RW_OK) s = l2rw_net_backward(net, w);
        if (s == L2RW_OK) s = l2rw_sgd_step(opt, net, step);
    }
    if (s == L2RW_OK) {
        memcpy(out->buf, l2rw_net_params(net), np * sizeof(float));
        memcpy(out->buf + np, l2rw_sgd_velocity(opt), np * sizeof(float));
        memcpy(out->buf + 2 * np, l2rw_net_state(net), ns * sizeof(float));
        out->len = len;
    } else {
        free(out->buf);
        out->buf = NULL;
    }
    free(x);
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
    return s;
}

static void check_case(const det_case *dc, int threads)
{
    l2rw_set_threads(threads);
    record a = {0}, b = {0}, c = {0};
    CHECK_OK(run(dc, 11, &a));
    CHECK_OK(run(dc, 11, &b));
    CHECK_OK(run(dc, 12, &c));
    if (a.buf && b.buf)
        CHECK(a.len == b.len &&
                  memcmp(a.buf, b.buf, a.len * sizeof(float)) == 0,
              "%s, %d threads: repeated run differs", dc->model, threads);
    if (a.buf && c.buf)
        CHECK(memcmp(a.buf, c.buf, a.len * sizeof(float)) != 0,
              "%s: another seed gave the same run", dc->model);
    record_free(&a);
    record_free(&b);
    record_free(&c);
}

/* Each model with 1 and with 2 threads. */
static void check_model(const det_case *dc)
{
    for (int threads = 1; threads <= 2; threads++) check_case(dc, threads);
}

static void test_lenet(void) { check_model(&cases[0]); }         /* plain */
static void test_resnet8(void) { check_model(&cases[1]); }       /* batch norm */
static void test_wrn_10_1(void) { check_model(&cases[2]); }      /* wide, dropout */

int main(void)
{
    RUN(test_lenet);
    RUN(test_resnet8);
    RUN(test_wrn_10_1);
    l2rw_set_threads(0);
    return CHECK_DONE("test_determinism");
}
