/* Data-parallel steps (l2rw_method_set_comm) against one process. Run
 * under `mpirun -np 2` by tests/mpi.sh; every rank runs every case, and
 * builds its own one-process reference, so a failure on any rank fails
 * the case.
 *
 * Tolerances. The group sums each share's gradient where one process
 * sums the whole batch in one pass: the same terms in another order, so
 * float32 results differ by a few ulps per step (relative 1e-7 to 1e-6),
 * and a weight w_i = max(u_i, 0)/S moves by about that relative error of
 * u times the largest weight. Over the few steps here (lr 0.05) the
 * parameters stay within 1e-5 of the largest parameter and the weights
 * within 1e-4 of the largest weight; a wrong share, a missing sum or a
 * local normalisation moves them by 1e-2 or more (a share's own
 * normalisation doubles every weight). The ranks must agree bit for bit:
 * every rank applies the same summed gradient. */
#include "check.h"
#include "group.h"

#include "l2rw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An odd validation batch and, for the baselines, an odd batch: shares
 * of unequal size, where a share's own mean is not the whole batch's. */
enum { C = 1, H = 28, W = 28, CLASSES = 10, BATCH = 100, VBATCH = 41,
       ODD_BATCH = 99,
       N_TRAIN = 500, STEPS = 4 };

static cli_group grp;

/* xorshift64*: the same data on every rank. */
static uint64_t rnd_state;
static double rnd_unit(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return (double)((rnd_state * 2685821657736338717ULL) >> 11) /
           9007199254740992.0;
}

/* Images of noise around a pattern of the label, so that the net learns
 * and the scores spread. */
static void make_batch(float *x, int32_t *y, int n, int c, int h, int w,
                       uint64_t seed)
{
    rnd_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    size_t dim = (size_t)c * h * w;
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)(rnd_unit() * CLASSES);
        for (size_t j = 0; j < dim; j++)
            x[i * dim + j] = (float)(rnd_unit() - 0.5 +
                                     ((j % CLASSES) == (size_t)y[i]));
    }
}

/* max |a - b| / max |b| */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d) d = e;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return m > 0 ? d / m : d;
}

/* 1 when every rank holds the bits of rank 0's buf. */
static int ranks_agree(const float *buf, size_t n)
{
    float *r0 = malloc(n * sizeof *r0);
    if (!r0) return 0;
    if (grp.comm.rank == 0) memcpy(r0, buf, n * sizeof *r0);
    else memset(r0, 0, n * sizeof *r0);
    int same = grp.comm.sum_f32(NULL, r0, n) == L2RW_OK &&
               memcmp(r0, buf, n * sizeof *r0) == 0;
    free(r0);
    double all = same;
    grp.comm.sum_f64(NULL, &all, 1);
    return all == grp.comm.size;
}

typedef struct {
    l2rw_net *net;
    l2rw_sgd *opt;
    l2rw_method_ctx *m;
} trainer;

static int32_t train_y[N_TRAIN];

static int trainer_make(trainer *t, const char *model, int c, int h, int w,
                        l2rw_method method, l2rw_meta_params meta,
                        int max_batch, const l2rw_comm *comm)
{
    memset(t, 0, sizeof *t);
    l2rw_sgd_cfg sc = {0.05f, 0.9f, 1e-4f, 0, {0}, 1.0f};
    l2rw_method_cfg mc = l2rw_method_cfg_default();
    mc.method = method;
    mc.meta_params = meta;
    mc.seed = 7;
    mc.train_y = train_y;
    mc.n_train = N_TRAIN;
    return l2rw_net_create(&t->net, model, c, h, w, CLASSES, max_batch, 11) ||
           l2rw_sgd_create(&t->opt, t->net, &sc) ||
           l2rw_method_create(&t->m, &mc, t->net) ||
           l2rw_method_set_comm(t->m, comm);
}

static void trainer_free(trainer *t)
{
    l2rw_method_free(t->m);
    l2rw_sgd_free(t->opt);
    l2rw_net_free(t->net);
}

/* STEPS steps of `method` over the group and in one process, on the same
 * batches: weights and parameters within tolerance, ranks identical. */
static void compare_method(const char *model, l2rw_method method,
                           l2rw_meta_params meta, int n)
{
    trainer g, one;
    int share = (n + grp.comm.size - 1) / grp.comm.size;
    CHECK(trainer_make(&g, model, C, H, W, method, meta, share,
                       &grp.comm) == 0 &&
              trainer_make(&one, model, C, H, W, method, meta, BATCH,
                           NULL) == 0,
          "%s/%s: set-up: %s", model, l2rw_method_name(method),
          l2rw_last_error());
    size_t dim = (size_t)C * H * W;
    float *x = malloc(BATCH * dim * sizeof *x);
    float *vx = malloc(VBATCH * dim * sizeof *vx);
    int32_t y[BATCH], vy[VBATCH];
    float wg[BATCH], w1[BATCH];
    double worst_w = 0;
    const int failed_before = check_failed;
    for (int s = 0; x && vx && s < STEPS && check_failed == failed_before;
         s++) {
        make_batch(x, y, n, C, H, W, 100 + s);
        make_batch(vx, vy, VBATCH, C, H, W, 200 + s);
        l2rw_step_stats sg, s1;
        CHECK_OK(l2rw_method_step(g.m, g.net, g.opt, s, x, y, NULL, n,
                                  vx, vy, VBATCH, &sg, wg));
        CHECK_OK(l2rw_method_step(one.m, one.net, one.opt, s, x, y, NULL, n,
                                  vx, vy, VBATCH, &s1, w1));
        double d = rel_diff(wg, w1, (size_t)n);
        if (d > worst_w) worst_w = d;
        CHECK_CLOSE(sg.mean_loss, s1.mean_loss, 1e-5, 0, "mean loss");
        CHECK(sg.n_zero <= s1.n_zero + 2 && s1.n_zero <= sg.n_zero + 2,
              "zero weights %d vs %d", sg.n_zero, s1.n_zero);
    }
    size_t np = l2rw_net_num_params(one.net);
    double dp = rel_diff(l2rw_net_params(g.net), l2rw_net_params(one.net),
                         np);
    CHECK(worst_w <= 1e-4, "%s/%s: weights differ by %.3g of the largest",
          model, l2rw_method_name(method), worst_w);
    CHECK(dp <= 1e-5, "%s/%s: parameters differ by %.3g of the largest",
          model, l2rw_method_name(method), dp);
    CHECK(ranks_agree(l2rw_net_params(g.net), np),
          "%s/%s: the ranks' parameters differ", model,
          l2rw_method_name(method));
    if (grp.comm.rank == 0)
        printf("   %s %s: weights %.2g, parameters %.2g (relative)\n", model,
               l2rw_method_name(method), worst_w, dp);
    free(x);
    free(vx);
    trainer_free(&g);
    trainer_free(&one);
}

/* LeNet, no batch norm: the group is one process with the whole batch
 * (the per-example path: no tangent pass). */
static void test_lenet_l2rw(void)
{
    compare_method("lenet", L2RW_METHOD_L2RW, L2RW_META_ALL, BATCH);
}

/* The last-layer approximation: (V, v_b) summed over the ranks. */
static void test_lenet_l2rw_last(void)
{
    compare_method("lenet", L2RW_METHOD_L2RW, L2RW_META_LAST, BATCH);
}

/* The baselines' normalisations over the whole batch, in unequal
 * shares. */
static void test_lenet_baselines(void)
{
    const l2rw_method ms[] = {L2RW_METHOD_PLAIN, L2RW_METHOD_RANDOM,
                              L2RW_METHOD_PROPORTION,
                              L2RW_METHOD_HARD_MINING,
                              L2RW_METHOD_BOOTSTRAP_SOFT, L2RW_METHOD_GCE};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        compare_method("lenet", ms[i], L2RW_META_ALL, ODD_BATCH);
}

/* The definition with batch norm (DESIGN.md section 5), computed by hand
 * in one process: v is the share-weighted sum of each share's validation
 * gradient (batch statistics of the share), u_i the tangent pass of the
 * example's own share, w normalised over the whole batch, the gradient
 * the sum of the shares' weighted gradients. */
typedef struct {
    trainer t;
    float *acc;
    float *u, *w, *loss;
} by_hand;

static void hand_validation(by_hand *b, const float *vx, const int32_t *vy,
                            size_t dim)
{
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    size_t np = l2rw_net_num_params(b->t.net);
    memset(b->acc, 0, np * sizeof *b->acc);
    for (int r = 0; r < grp.comm.size; r++) {
        int off, cnt;
        l2rw_shard(VBATCH, r, grp.comm.size, &off, &cnt);
        CHECK_OK(l2rw_net_forward(b->t.net, vx + off * dim, cnt,
                                  L2RW_MODE_TRAIN_FROZEN, 0));
        CHECK_OK(l2rw_net_loss(b->t.net, vy + off, &ce, b->loss, NULL));
        CHECK_OK(l2rw_net_backward(b->t.net, NULL));
        const float *g = l2rw_net_grads(b->t.net);
        float share = (float)cnt / (float)VBATCH;
        for (size_t i = 0; i < np; i++) b->acc[i] += g[i] * share;
    }
    memcpy(l2rw_net_tangents(b->t.net), b->acc, np * sizeof *b->acc);
}

static void hand_step(by_hand *b, long step, const float *x,
                      const int32_t *y, const float *vx, const int32_t *vy,
                      size_t dim)
{
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    size_t np = l2rw_net_num_params(b->t.net);
    hand_validation(b, vx, vy, dim);
    for (int r = 0; r < grp.comm.size; r++) {
        int off, cnt;
        l2rw_shard(BATCH, r, grp.comm.size, &off, &cnt);
        CHECK_OK(l2rw_net_forward(b->t.net, x + off * dim, cnt,
                                  L2RW_MODE_TRAIN, 1));
        CHECK_OK(l2rw_net_loss(b->t.net, y + off, &ce, b->loss,
                               b->u + off));
    }
    int pos = 0;
    CHECK_OK(l2rw_weights_from_scores(b->u, BATCH, b->w, &pos));
    memset(b->acc, 0, np * sizeof *b->acc);
    for (int r = 0; r < grp.comm.size; r++) {
        int off, cnt;
        l2rw_shard(BATCH, r, grp.comm.size, &off, &cnt);
        CHECK_OK(l2rw_net_forward(b->t.net, x + off * dim, cnt,
                                  L2RW_MODE_TRAIN, 0));
        CHECK_OK(l2rw_net_loss(b->t.net, y + off, &ce, b->loss, NULL));
        CHECK_OK(l2rw_net_backward(b->t.net, b->w + off));
        const float *g = l2rw_net_grads(b->t.net);
        for (size_t i = 0; i < np; i++) b->acc[i] += g[i];
    }
    memcpy(l2rw_net_grads(b->t.net), b->acc, np * sizeof *b->acc);
    if (pos > 0) CHECK_OK(l2rw_sgd_step(b->t.opt, b->t.net, step));
}

/* ResNet-8 with batch norm: per-rank batch statistics, checked against
 * the same definition computed by hand. */
static void test_resnet8_batchnorm_per_rank(void)
{
    enum { RC = 3, RH = 16, RW = 16 };
    const size_t dim = (size_t)RC * RH * RW;
    int share = (BATCH + grp.comm.size - 1) / grp.comm.size;
    trainer g;
    by_hand b;
    memset(&b, 0, sizeof b);
    CHECK(trainer_make(&g, "resnet8", RC, RH, RW, L2RW_METHOD_L2RW,
                       L2RW_META_ALL, share, &grp.comm) == 0 &&
              trainer_make(&b.t, "resnet8", RC, RH, RW, L2RW_METHOD_L2RW,
                           L2RW_META_ALL, share, NULL) == 0,
          "resnet8 set-up: %s", l2rw_last_error());
    size_t np = l2rw_net_num_params(g.net);
    float *x = malloc(BATCH * dim * sizeof *x);
    float *vx = malloc(VBATCH * dim * sizeof *vx);
    b.acc = malloc(np * sizeof *b.acc);
    b.u = malloc(BATCH * sizeof *b.u);
    b.w = malloc(BATCH * sizeof *b.w);
    b.loss = malloc(BATCH * sizeof *b.loss);
    int32_t y[BATCH], vy[VBATCH];
    float wg[BATCH];
    double worst_w = 0;
    CHECK(x && vx && b.acc && b.u && b.w && b.loss, "out of memory");
    const int failed_before = check_failed;
    for (int s = 0; s < STEPS && check_failed == failed_before; s++) {
        make_batch(x, y, BATCH, RC, RH, RW, 300 + s);
        make_batch(vx, vy, VBATCH, RC, RH, RW, 400 + s);
        CHECK_OK(l2rw_method_step(g.m, g.net, g.opt, s, x, y, NULL, BATCH,
                                  vx, vy, VBATCH, NULL, wg));
        hand_step(&b, s, x, y, vx, vy, dim);
        double d = rel_diff(wg, b.w, BATCH);
        if (d > worst_w) worst_w = d;
    }
    double dp = rel_diff(l2rw_net_params(g.net), l2rw_net_params(b.t.net),
                         np);
    CHECK(worst_w <= 1e-4, "resnet8: weights differ by %.3g", worst_w);
    CHECK(dp <= 1e-5, "resnet8: parameters differ by %.3g", dp);
    CHECK(ranks_agree(l2rw_net_params(g.net), np),
          "resnet8: the ranks' parameters differ");
    if (grp.comm.rank == 0)
        printf("   resnet8 by hand: weights %.2g, parameters %.2g\n",
               worst_w, dp);
    free(x);
    free(vx);
    free(b.acc);
    free(b.u);
    free(b.w);
    free(b.loss);
    trainer_free(&g);
    trainer_free(&b.t);
}

int main(void)
{
    char why[256];
    if (cli_group_start(&grp, why, sizeof why) != 0 || !grp.active) {
        printf("skip mpi_steps/all: %s\n",
               grp.active ? why : "not started by mpirun with -np > 1");
        return 0;
    }
    l2rw_set_threads(1);
    for (int i = 0; i < N_TRAIN; i++) train_y[i] = (int32_t)(i * i % 7);
    RUN(test_lenet_l2rw);
    RUN(test_lenet_l2rw_last);
    RUN(test_lenet_baselines);
    RUN(test_resnet8_batchnorm_per_rank);
    int rc = CHECK_DONE("mpi_steps");
    fflush(stdout);
    cli_group_end(&grp);
    return rc;
}
