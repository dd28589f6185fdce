/* Model zoo: every name builds with the expected parameter and state
 * counts and logits shape; malformed names are refused; model-level
 * gradient and tangent of the summed weighted loss against finite
 * differences (selfcheck.h) on small inputs for mlp, lenet, resnet8 and
 * wrn-10-1 with dropout; the quick self test (l2rw check --quick).
 *
 * Tolerances: l2rw__fd_tol_model (rtol 0.1, floor 10% of the largest
 * entry), justified in selfcheck.h: deep float32 ReLU nets have kinks in
 * the path of every finite difference; measured worst errors over 60
 * seeds are 4.2% (gradient) and 5% (tangent); a wrong rule is off by
 * O(1).
 * The tangent against the backward is exact up to rounding: 1e-3. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "l2rw.h"
#include "selfcheck.h"

typedef struct {
    const char *model;
    int c, h, w, classes;
    size_t params; /* exact count, computed by hand below */
} count_case;

/* mlp 784-256-128-10: 784*256+256 + 256*128+128 + 128*10+10.
 * mlp:7,5 on 2x3x3, 3 classes: 18*7+7 + 7*5+5 + 5*3+3.
 * lenet on 1x28x28: conv 16*1*25+16, conv 32*16*25+32 (16x24x24 ->
 * 12x12 -> 32x8x8 -> 4x4), dense 512*100+100, dense 100*10+10.
 * resnet8/32: conv 3*16*9 + bn 32, per block two 3x3 convs and bns,
 * 1x1 projection + bn at the two stage changes (option B), dense 64*10+10.
 * wrn-10-1 and wrn-28-10: the authors' counts with bias-free convs. */
static const count_case counts[] = {
    {"mlp", 1, 28, 28, 10, 235146},
    {"mlp:7,5", 2, 3, 3, 3, 191},
    {"lenet", 1, 28, 28, 10, 65558},
    {"resnet8", 3, 32, 32, 10, 78042},
    {"resnet32", 3, 32, 32, 10, 466906},
    {"wrn-10-1", 3, 32, 32, 10, 77850},
    {"wrn-28-10", 3, 32, 32, 10, 36479194},
};

static void test_counts(void)
{
    /* The sanitized pass skips wrn-28-10 (36.5M parameters, seconds of
     * initialisation under ASan; its code path is resnet32's). */
    const char *san = getenv("L2RW_SANITIZED");
    int sanitized = san && *san && strcmp(san, "0") != 0;
    if (sanitized)
        SKIP("parameter counts above 10M in the sanitized pass");
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        const count_case *cc = &counts[k];
        if (sanitized && cc->params > 10000000) continue;
        l2rw_net *net = NULL;
        /* max_batch 1 keeps wrn-28-10's activations small */
        CHECK_OK(l2rw_net_create(&net, cc->model, cc->c, cc->h, cc->w,
                                 cc->classes, 1, 7));
        if (!net) continue;
        CHECK(l2rw_net_num_params(net) == cc->params,
              "%s: %zu parameters, expected %zu", cc->model,
              l2rw_net_num_params(net), cc->params);
        CHECK(strcmp(l2rw_net_model(net), cc->model) == 0, "%s: name %s",
              cc->model, l2rw_net_model(net));
        CHECK(l2rw_net_classes(net) == cc->classes, "%s: classes",
              cc->model);
        l2rw_net_free(net);
    }
}

/* The headline sizes of the papers. */
static void test_paper_sizes(void)
{
    l2rw_net *net = NULL;
    CHECK_OK(l2rw_net_create(&net, "resnet32", 3, 32, 32, 10, 1, 1));
    if (net) {
        double m = (double)l2rw_net_num_params(net) / 1e6;
        CHECK(m > 0.455 && m < 0.475, "resnet32: %.4fM parameters", m);
        /* batch norm: a mean and a variance per channel; 31 norms on
         * the main path + 2 on projections */
        CHECK(l2rw_net_num_state(net) > 0, "resnet32 has no bn state");
        l2rw_net_free(net);
    }
    const char *san = getenv("L2RW_SANITIZED");
    if (san && *san && strcmp(san, "0") != 0) {
        SKIP("wrn-28-10 build in the sanitized pass (36.5M parameters; "
             "its code path is resnet32's)");
        return;
    }
    CHECK_OK(l2rw_net_create(&net, "wrn-28-10:0.3", 3, 32, 32, 10, 1, 1));
    if (net) {
        double m = (double)l2rw_net_num_params(net) / 1e6;
        CHECK(m > 36.4 && m < 36.6, "wrn-28-10: %.3fM parameters", m);
        l2rw_net_free(net);
    }
}

/* State counts: none without batch norm; two per normalised channel. */
static void test_state(void)
{
    l2rw_net *net = NULL;
    CHECK_OK(l2rw_net_create(&net, "lenet", 1, 28, 28, 10, 2, 1));
    if (net) {
        CHECK(l2rw_net_num_state(net) == 0, "lenet state %zu",
              l2rw_net_num_state(net));
        l2rw_net_free(net);
    }
    /* resnet8: 16 (stem) + stage widths 16,32,64 with two bns each and
     * two projection bns (32, 64): 16 + 2*16 + 2*32 + 2*64 + 32 + 64 =
     * 336 channels, 2 statistics each */
    CHECK_OK(l2rw_net_create(&net, "resnet8", 3, 8, 8, 4, 2, 1));
    if (net) {
        CHECK(l2rw_net_num_state(net) == 672, "resnet8 state %zu",
              l2rw_net_num_state(net));
        l2rw_net_free(net);
    }
}

/* Every model runs a forward on its smallest sensible input and yields
 * [n, classes] finite logits. */
static void test_forward_shapes(void)
{
    static const struct {
        const char *model;
        int c, h, w;
    } cases[] = {
        {"mlp", 1, 4, 4},        {"mlp:3", 2, 2, 2},
        {"mlp:9,8,7,6", 1, 1, 5}, {"lenet", 1, 16, 16},
        {"lenet", 3, 28, 28},    {"resnet8", 3, 8, 8},
        {"resnet14", 1, 12, 12}, {"wrn-10-2", 3, 8, 8},
        {"wrn-16-1:0.5", 3, 8, 8},
    };
    enum { N = 3, K = 5 };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        l2rw_net *net = NULL;
        CHECK_OK(l2rw_net_create(&net, cases[k].model, cases[k].c,
                                 cases[k].h, cases[k].w, K, N, 3));
        if (!net) continue;
        size_t per = (size_t)cases[k].c * cases[k].h * cases[k].w;
        float *x = malloc(N * per * sizeof *x);
        if (!x) {
            l2rw_net_free(net);
            CHECK(0, "out of memory");
            continue;
        }
        for (size_t i = 0; i < N * per; i++)
            x[i] = (float)((i * 37 % 11) / 5.0 - 1.0);
        CHECK_OK(l2rw_net_forward(net, x, N, L2RW_MODE_TRAIN, 0));
        const float *z = l2rw_net_logits(net);
        int finite = 1;
        for (int i = 0; i < N * K; i++) finite &= isfinite(z[i]) != 0;
        CHECK(finite, "%s: non-finite logits", cases[k].model);
        free(x);
        l2rw_net_free(net);
    }
}

static void test_bad_names(void)
{
    static const char *bad[] = {
        "",          "MLP",         "mlp:",       "mlp:0",
        "mlp:5,",    "mlp:,5",      "mlp:05",     "mlp:-3",
        "mlp:3x",    "mlp:99999999", "lenet5",    "resnet",
        "resnet0",   "resnet2",     "resnet33",   "resnet32x",
        "resnet-32", "wrn",         "wrn-28",     "wrn-27-10",
        "wrn-28-0",  "wrn-28-10:",  "wrn-28-10:1.0", "wrn-28-10:abc",
        "wrn-28-10:-0.1", "wrn-28-10-3", "wrn-4-1",  "wrn-28-10:0.3:1",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        l2rw_net *net = NULL;
        l2rw_status s = l2rw_net_create(&net, bad[k], 3, 32, 32, 10, 1, 1);
        CHECK(s == L2RW_ERR_ARG, "'%s' gave %s", bad[k], l2rw_strerror(s));
        CHECK(net == NULL, "'%s' returned a net", bad[k]);
        CHECK(strstr(l2rw_last_error(), "model") != NULL,
              "'%s': message '%s' does not say what is wrong", bad[k],
              l2rw_last_error());
        l2rw_net_free(net);
    }
    /* a well-formed name on an input too small for it: a clear error */
    l2rw_net *net = NULL;
    l2rw_status s = l2rw_net_create(&net, "lenet", 1, 8, 8, 10, 1, 1);
    CHECK(s != L2RW_OK && net == NULL, "lenet on 8x8 accepted");
    CHECK(strstr(l2rw_last_error(), "lenet") != NULL,
          "lenet on 8x8: message '%s' does not name the model",
          l2rw_last_error());
    s = l2rw_net_create(&net, "mlp", 1, 8, 8, 1, 1, 1);
    CHECK(s == L2RW_ERR_ARG && net == NULL, "1 class accepted");
}

/* ------------------------------------------------- finite differences */

typedef struct {
    const char *model;
    int c, h, w;
} fd_case;

static const fd_case fd_cases[] = {
    {"mlp", 1, 8, 8},
    {"lenet", 1, 16, 16},
    {"resnet8", 3, 8, 8},
    {"wrn-10-1:0.3", 3, 8, 8},
};

enum { FD_N = 4, FD_K = 4, FD_SAMPLES = 24 };

static void test_fd(void)
{
    for (size_t k = 0; k < sizeof fd_cases / sizeof fd_cases[0]; k++) {
        const fd_case *fc = &fd_cases[k];
        uint64_t seed = 500 + k;
        l2rw_net *net = NULL;
        CHECK_OK(l2rw_net_create(&net, fc->model, fc->c, fc->h, fc->w, FD_K,
                                 FD_N, seed));
        if (!net) continue;
        size_t per = (size_t)fc->c * fc->h * fc->w;
        float *x = malloc(FD_N * per * sizeof *x);
        int32_t y[FD_N];
        float w[FD_N];
        if (!x) {
            l2rw_net_free(net);
            CHECK(0, "out of memory");
            continue;
        }
        l2rw_rng rng;
        l2rw_rng_seed(&rng, seed);
        for (size_t i = 0; i < FD_N * per; i++)
            x[i] = (float)l2rw_rng_normal(&rng);
        double tot = 0.0;
        for (int i = 0; i < FD_N; i++) {
            y[i] = (int32_t)l2rw_rng_below(&rng, FD_K);
            w[i] = (float)(0.25 + l2rw_rng_uniform(&rng));
            tot += w[i];
        }
        for (int i = 0; i < FD_N; i++) w[i] = (float)(w[i] / tot);
        l2rw_net_set_dropout_key(net, seed);
        /* training-mode batch norm with frozen running averages */
        l2rw_fd_batch b = {x, y, w, FD_N, L2RW_MODE_TRAIN_FROZEN};
        l2rw_fd_result r;

        CHECK_OK(l2rw__fd_grad_check(net, &b, FD_SAMPLES,
                                     &l2rw__fd_tol_model, seed, &r));
        CHECK(r.passed, "%s gradient: max rel err %.3g (%s)", fc->model,
              r.max_rel_err, r.detail);
        printf("%-14s gradient            max rel err %.2e  %s\n",
               fc->model, r.max_rel_err, r.detail);

        CHECK_OK(l2rw__fd_tangent_check(net, &b, &l2rw__fd_tol_model,
                                        seed, &r));
        CHECK(r.passed, "%s tangent: max rel err %.3g (%s)", fc->model,
              r.max_rel_err, r.detail);
        printf("%-14s tangent             max rel err %.2e  %s\n",
               fc->model, r.max_rel_err, r.detail);

        CHECK_OK(l2rw__tangent_vs_backward(net, &b, seed, &r));
        CHECK(r.passed, "%s tangent vs backward: max rel err %.3g (%s)",
              fc->model, r.max_rel_err, r.detail);
        printf("%-14s tangent vs backward max rel err %.2e\n", fc->model,
               r.max_rel_err);
        free(x);
        l2rw_net_free(net);
    }
}

/* The user-facing self test (l2rw check --quick) passes on this build,
 * reports every check once, and keeps its counts straight. */
typedef struct {
    int calls, failed;
} check_tally;

static void on_check(void *ctx, const char *name, int passed,
                     double max_rel_err, const char *detail)
{
    check_tally *t = ctx;
    t->calls++;
    if (!passed) {
        t->failed++;
        printf("self check FAIL %s (max rel err %.2e): %s\n", name,
               max_rel_err, detail);
    }
}

static void test_self_check(void)
{
    check_tally t = {0, 0};
    l2rw_check_summary sum;
    CHECK_OK(l2rw_self_check(on_check, &t, 1, &sum));
    CHECK(t.failed == 0 && sum.failed == 0, "%d self checks failed",
          sum.failed);
    /* 10 layer kinds x 3, 4 models x 3, 2 counts, 4 file checks, 1
     * determinism run */
    CHECK(sum.passed >= 49, "only %d self checks passed", sum.passed);
    CHECK(t.calls == sum.passed + sum.failed, "%d reports, summary %d+%d",
          t.calls, sum.passed, sum.failed);
    CHECK(sum.max_rel_err < 0.1, "largest relative error %.3g",
          sum.max_rel_err);
    CHECK(l2rw_self_check(NULL, NULL, 1, &sum) == L2RW_ERR_ARG,
          "NULL report accepted");
}

int main(void)
{
    RUN(test_counts);
    RUN(test_paper_sizes);
    RUN(test_state);
    RUN(test_forward_shapes);
    RUN(test_bad_names);
    RUN(test_fd);
    RUN(test_self_check);
    return CHECK_DONE("test_zoo");
}
