/* SGD: momentum and weight-decay updates against a sequence computed by
 * hand, the step schedule, plain SGD, invalid settings, a non-finite
 * gradient, and thread-count independence of one update. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "l2rw.h"

/* A small net whose buffers the tests fill by hand. */
static l2rw_net *small_net(void)
{
    l2rw_net *net = NULL;
    CHECK_OK(l2rw_net_create(&net, "mlp:3", 1, 1, 2, 2, 1, 1));
    return net;
}

static l2rw_sgd_cfg cfg_of(float lr, float mu, float wd)
{
    l2rw_sgd_cfg c;
    memset(&c, 0, sizeof c);
    c.lr = lr;
    c.momentum = mu;
    c.weight_decay = wd;
    c.decay = 0.1f;
    return c;
}

/* p0 = 1, g = 0.3 every step, momentum 0.9, weight decay 0.1, lr 0.5
 * decayed by 0.1 at steps 2 and 4. By hand:
 *   step 0 lr .5    v = 0.3 + 0.1          = 0.4        p = 0.8
 *   step 1 lr .5    v = .36 + .3 + .08     = 0.74       p = 0.43
 *   step 2 lr .05   v = .666 + .3 + .043   = 1.009      p = 0.37955
 *   step 3 lr .05   v = .9081+.3+.037955   = 1.246055   p = 0.31724725
 *   step 4 lr .005  v = 1.1214495+.3+.031724725 = 1.453174225
 *                                                       p = 0.309981378875 */
static void test_momentum_sequence(void)
{
    static const double v_ref[5] = {0.4, 0.74, 1.009, 1.246055,
                                    1.453174225};
    static const double p_ref[5] = {0.8, 0.43, 0.37955, 0.31724725,
                                    0.309981378875};
    l2rw_net *net = small_net();
    if (!net) return;
    l2rw_sgd_cfg c = cfg_of(0.5f, 0.9f, 0.1f);
    c.n_milestones = 2;
    c.milestones[0] = 2;
    c.milestones[1] = 4;
    l2rw_sgd *opt = NULL;
    CHECK_OK(l2rw_sgd_create(&opt, net, &c));
    if (!opt) {
        l2rw_net_free(net);
        return;
    }
    size_t n = l2rw_net_num_params(net);
    float *p = l2rw_net_params(net), *g = l2rw_net_grads(net);
    for (size_t j = 0; j < n; j++) p[j] = 1.0f;
    for (long step = 0; step < 5; step++) {
        for (size_t j = 0; j < n; j++) g[j] = 0.3f;
        CHECK_OK(l2rw_sgd_step(opt, net, step));
        const float *v = l2rw_sgd_velocity(opt);
        /* float32 arithmetic against the exact sequence */
        for (size_t j = 0; j < n; j++) {
            CHECK_CLOSE(v[j], v_ref[step], 1e-6, 0.0, "velocity");
            CHECK_CLOSE(p[j], p_ref[step], 1e-6, 0.0, "parameter");
        }
    }
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
}

static void test_schedule(void)
{
    l2rw_net *net = small_net();
    if (!net) return;
    l2rw_sgd_cfg c = cfg_of(0.5f, 0.9f, 0.0f);
    c.n_milestones = 3;
    c.milestones[0] = 2;
    c.milestones[1] = 4;
    c.milestones[2] = 100;
    c.decay = 0.2f;
    l2rw_sgd *opt = NULL;
    CHECK_OK(l2rw_sgd_create(&opt, net, &c));
    if (opt) {
        static const long steps[] = {0, 1, 2, 3, 4, 99, 100, 5000};
        static const double lr[] = {0.5, 0.5, 0.1, 0.1, 0.02, 0.02, 0.004,
                                    0.004};
        for (int k = 0; k < 8; k++)
            CHECK_CLOSE(l2rw_sgd_lr(opt, steps[k]), lr[k], 1e-6, 0.0,
                        "learning rate");
    }
    l2rw_sgd_free(opt);
    /* no milestones: constant */
    c.n_milestones = 0;
    CHECK_OK(l2rw_sgd_create(&opt, net, &c));
    if (opt) CHECK(l2rw_sgd_lr(opt, 123456) == 0.5f, "constant rate");
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
}

/* momentum 0, no decay: p <- p - lr g exactly as float32 computes it */
static void test_plain(void)
{
    l2rw_net *net = small_net();
    if (!net) return;
    l2rw_sgd_cfg c = cfg_of(0.25f, 0.0f, 0.0f);
    l2rw_sgd *opt = NULL;
    CHECK_OK(l2rw_sgd_create(&opt, net, &c));
    if (opt) {
        size_t n = l2rw_net_num_params(net);
        float *p = l2rw_net_params(net), *g = l2rw_net_grads(net);
        float *want = malloc(n * sizeof *want);
        if (want) {
            for (size_t j = 0; j < n; j++) {
                g[j] = (float)j - 3.0f;
                want[j] = p[j] - 0.25f * g[j];
            }
            CHECK_OK(l2rw_sgd_step(opt, net, 0));
            CHECK(memcmp(p, want, n * sizeof *p) == 0, "plain sgd update");
            free(want);
        }
    }
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
}

static void test_bad_settings(void)
{
    l2rw_net *net = small_net();
    if (!net) return;
    l2rw_sgd_cfg base = cfg_of(0.1f, 0.9f, 5e-4f), c;
    l2rw_sgd *opt = NULL;
#define BAD(field_assign, what)                                              \
    do {                                                                     \
        c = base;                                                            \
        field_assign;                                                        \
        l2rw_status s_ = l2rw_sgd_create(&opt, net, &c);                     \
        CHECK(s_ == L2RW_ERR_ARG && opt == NULL, "%s accepted (%s)", what,   \
              l2rw_strerror(s_));                                            \
        l2rw_sgd_free(opt);                                                  \
        opt = NULL;                                                          \
    } while (0)
    BAD(c.lr = 0.0f, "lr 0");
    BAD(c.lr = -1.0f, "negative lr");
    BAD(c.lr = NAN, "NaN lr");
    BAD(c.lr = INFINITY, "infinite lr");
    BAD(c.momentum = 1.0f, "momentum 1");
    BAD(c.momentum = -0.1f, "negative momentum");
    BAD(c.weight_decay = -1e-4f, "negative weight decay");
    BAD(c.n_milestones = L2RW_MAX_MILESTONES + 1, "too many milestones");
    BAD(c.n_milestones = -1, "negative milestone count");
    BAD((c.n_milestones = 2, c.milestones[0] = 5, c.milestones[1] = 5),
        "repeated milestone");
    BAD((c.n_milestones = 2, c.milestones[0] = 5, c.milestones[1] = 3),
        "decreasing milestones");
    BAD((c.n_milestones = 1, c.milestones[0] = -1), "negative milestone");
    BAD((c.n_milestones = 1, c.milestones[0] = 5, c.decay = 0.0f),
        "decay 0");
#undef BAD
    CHECK(l2rw_sgd_create(&opt, net, NULL) == L2RW_ERR_ARG, "NULL cfg");

    /* an optimizer made for another net */
    l2rw_net *other = NULL;
    CHECK_OK(l2rw_net_create(&other, "mlp:4", 1, 1, 2, 2, 1, 1));
    CHECK_OK(l2rw_sgd_create(&opt, net, &base));
    if (opt && other)
        CHECK(l2rw_sgd_step(opt, other, 0) == L2RW_ERR_ARG,
              "step on another net accepted");
    if (opt)
        CHECK(l2rw_sgd_step(opt, net, -1) == L2RW_ERR_ARG,
              "negative step accepted");
    /* a NaN gradient is reported, not silently applied */
    if (opt) {
        l2rw_net_grads(net)[2] = NAN;
        l2rw_status s = l2rw_sgd_step(opt, net, 0);
        CHECK(s == L2RW_ERR_NUMERIC, "NaN gradient gave %s",
              l2rw_strerror(s));
    }
    l2rw_sgd_free(opt);
    l2rw_net_free(other);
    l2rw_net_free(net);
    l2rw_sgd_free(NULL);
}

/* One update of a larger buffer is the same with 1 and 2 threads: the
 * update is element-wise. */
static void test_threads(void)
{
    float *res[2] = {NULL, NULL};
    size_t n = 0;
    for (int t = 0; t < 2; t++) {
        l2rw_set_threads(t + 1);
        l2rw_net *net = NULL;
        l2rw_sgd *opt = NULL;
        l2rw_sgd_cfg c = cfg_of(0.1f, 0.9f, 5e-4f);
        CHECK_OK(l2rw_net_create(&net, "mlp:300,200", 1, 10, 10, 10, 1, 9));
        if (net) CHECK_OK(l2rw_sgd_create(&opt, net, &c));
        if (net && opt) {
            n = l2rw_net_num_params(net);
            float *g = l2rw_net_grads(net);
            for (size_t j = 0; j < n; j++)
                g[j] = (float)sin((double)j);
            for (long step = 0; step < 3; step++)
                CHECK_OK(l2rw_sgd_step(opt, net, step));
            res[t] = malloc(n * sizeof(float));
            if (res[t])
                memcpy(res[t], l2rw_net_params(net), n * sizeof(float));
        }
        l2rw_sgd_free(opt);
        l2rw_net_free(net);
    }
    CHECK(res[0] && res[1] && memcmp(res[0], res[1], n * sizeof(float)) == 0,
          "1 and 2 threads differ");
    free(res[0]);
    free(res[1]);
    l2rw_set_threads(0);
}

int main(void)
{
    RUN(test_momentum_sequence);
    RUN(test_schedule);
    RUN(test_plain);
    RUN(test_bad_settings);
    RUN(test_threads);
    return CHECK_DONE("test_optim");
}
