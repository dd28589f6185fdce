/* The optimizers beyond SGD and the divergence check: AdamW against its
 * formula, a zero extension equal to l2rw_sgd_create bit for bit, the
 * warm-up and cosine schedule, clipping (pre-clip norm, the same for any
 * thread count), L2RW weights that do not depend on the optimizer,
 * bit-identical resume with AdamW (2N steps vs N + N, and a stop in a
 * cosine run), refusal of a resume with other optimizer options, the
 * reading of version-3 (SGD) checkpoints, the divergence rule and a run
 * that it stops (the checkpoint of before stays; CLI exit status 1).
 *
 * Data: a small generated CSV (4 classes of 16 features, class k bright
 * on features 4k..4k+3, plus noise), so the whole test takes seconds. */
#define _POSIX_C_SOURCE 200809L
#include "binio.h" /* l2rw_crc32: a version-3 checkpoint made by hand */
#include "check.h"
#include "cli_path.h"
#include "l2rw.h"
#include "train_internal.h" /* the divergence detector */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CLASSES = 4, FEATURES = 16, ROWS = 500, HALF = 20 };

static char dir[256], spec[512];

/* ------------------------------------------------------------- helpers */

static void in_dir(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static unsigned char *read_all(const char *path, long *len)
{
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    unsigned char *b = NULL;
    long n = -1;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
        fseek(fp, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) &&
        fread(b, 1, (size_t)n, fp) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    if (b) *len = n;
    return b;
}

static int same_file(const char *d1, const char *d2, const char *name)
{
    char p1[600], p2[600];
    long n1, n2;
    snprintf(p1, sizeof p1, "%s/%s", d1, name);
    snprintf(p2, sizeof p2, "%s/%s", d2, name);
    unsigned char *a = read_all(p1, &n1), *b = read_all(p2, &n2);
    int same = a && b && n1 == n2 && memcmp(a, b, (size_t)n1) == 0;
    free(a);
    free(b);
    return same;
}

static int make_data(void)
{
    snprintf(dir, sizeof dir, "/tmp/l2rw-test-adamw-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char path[400];
    in_dir(path, sizeof path, "data.csv");
    FILE *fp = fopen(path, "w");
    if (!fp) return 1;
    uint64_t s = 12345;
    for (int i = 0; i < ROWS; i++) {
        int k = i % CLASSES;
        for (int j = 0; j < FEATURES; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            double noise = (double)(s >> 40) / (double)(1ULL << 24);
            fprintf(fp, "%.4f,", (j / 4 == k ? 1.0 : 0.0) + noise);
        }
        fprintf(fp, "%d\n", k);
    }
    if (fclose(fp) != 0) return 1;
    snprintf(spec, sizeof spec, "csv:%s,frac=0.2", path);
    return 0;
}

static l2rw_train_cfg base_cfg(const char *out, long steps)
{
    l2rw_train_cfg c = l2rw_train_cfg_default();
    c.data = spec;
    c.model = "mlp:16";
    c.method = "l2rw";
    c.noise = "uniform:0.4";
    c.val_per_class = 5;
    c.batch = 20;
    c.val_batch = 10;
    c.steps = steps;
    c.eval_every = 5;
    c.checkpoint_every = 10;
    c.threads = 2;
    c.sgd.lr = 0.01f;
    c.optim = l2rw_optim_cfg_default(L2RW_OPTIM_ADAMW);
    c.optim.clip_grad_norm = 5.0f;
    c.out_dir = out;
    return c;
}

/* A net with its gradient buffer filled with a fixed pattern. */
static l2rw_net *net_with_grads(const char *model, int in, uint64_t seed)
{
    l2rw_net *net = NULL;
    if (l2rw_net_create(&net, model, in, 1, 1, CLASSES, 4, seed) != L2RW_OK)
        return NULL;
    float *g = l2rw_net_grads(net);
    size_t n = l2rw_net_num_params(net);
    for (size_t i = 0; i < n; i++)
        g[i] = 0.01f * (float)((long)(i * 7919 % 201) - 100) / 100.0f;
    return net;
}

/* ------------------------------------------------------------ optimizer */

/* A zero extension (and the default extension, kind SGD) is SGD: the
 * same parameters as l2rw_sgd_create, bit for bit. */
static void test_zero_ext_is_sgd(void)
{
    l2rw_net *a = net_with_grads("mlp:8", 6, 3), *b = net_with_grads("mlp:8", 6, 3),
             *c = net_with_grads("mlp:8", 6, 3);
    l2rw_sgd *oa = NULL, *ob = NULL, *oc = NULL;
    l2rw_sgd_cfg sc = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f,
                       .n_milestones = 1, .milestones = {2}, .decay = 0.1f};
    l2rw_optim_cfg zero;
    memset(&zero, 0, sizeof zero);
    l2rw_optim_cfg dflt = l2rw_optim_cfg_default(L2RW_OPTIM_SGD);
    CHECK(a && b && c, "nets not created");
    if (!a || !b || !c) return;
    CHECK_OK(l2rw_sgd_create(&oa, a, &sc));
    CHECK_OK(l2rw_optim_create(&ob, b, &sc, &zero));
    CHECK_OK(l2rw_optim_create(&oc, c, &sc, &dflt));
    for (long s = 0; s < 4; s++) {
        CHECK_OK(l2rw_sgd_step(oa, a, s));
        CHECK_OK(l2rw_sgd_step(ob, b, s));
        CHECK_OK(l2rw_sgd_step(oc, c, s));
    }
    size_t n = l2rw_net_num_params(a);
    CHECK(!memcmp(l2rw_net_params(a), l2rw_net_params(b), n * sizeof(float)),
          "zero extension differs from SGD");
    CHECK(!memcmp(l2rw_net_params(a), l2rw_net_params(c), n * sizeof(float)),
          "default SGD extension differs from SGD");
    CHECK(l2rw_optim_second_moment(oa) == NULL, "SGD has a second moment");
    CHECK(isnan(l2rw_optim_grad_norm(oa)), "norm without clipping");
    l2rw_sgd_free(oa), l2rw_sgd_free(ob), l2rw_sgd_free(oc);
    l2rw_net_free(a), l2rw_net_free(b), l2rw_net_free(c);
}

/* Three AdamW steps against the formula in double. */
static void test_adamw_formula(void)
{
    l2rw_net *net = net_with_grads("mlp:8", 6, 5);
    CHECK(net != NULL, "net not created");
    if (!net) return;
    size_t n = l2rw_net_num_params(net);
    double *p = malloc(n * sizeof *p), *m = calloc(n, sizeof *m),
           *v = calloc(n, sizeof *v);
    l2rw_sgd_cfg sc = {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 0.1f};
    l2rw_optim_cfg oc = l2rw_optim_cfg_default(L2RW_OPTIM_ADAMW);
    l2rw_sgd *opt = NULL;
    CHECK(p && m && v, "out of memory");
    CHECK_OK(l2rw_optim_create(&opt, net, &sc, &oc));
    if (!p || !m || !v || !opt) goto done;
    for (size_t i = 0; i < n; i++) p[i] = l2rw_net_params(net)[i];
    const float *g = l2rw_net_grads(net);
    double worst = 0;
    for (int t = 1; t <= 3; t++) {
        CHECK_OK(l2rw_sgd_step(opt, net, t - 1));
        for (size_t i = 0; i < n; i++) {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * (double)g[i] * g[i];
            double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.999, t));
            p[i] -= 0.01 * (mh / (sqrt(vh) + 1e-8) + 0.1 * p[i]);
            double e = fabs(p[i] - l2rw_net_params(net)[i]);
            if (e > worst) worst = e;
        }
    }
    CHECK(worst < 1e-6, "AdamW differs from its formula by %g", worst);
    CHECK(l2rw_optim_updates(opt) == 3, "updates %ld", l2rw_optim_updates(opt));
    /* the first step moves each parameter with a gradient by about lr */
    CHECK(l2rw_optim_second_moment(opt) != NULL, "no second moment");
done:
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
    free(p), free(m), free(v);
}

static void test_schedules(void)
{
    l2rw_net *net = net_with_grads("mlp:4", 2, 1);
    CHECK(net != NULL, "net not created");
    if (!net) return;
    l2rw_sgd_cfg sc = {.lr = 0.1f, .momentum = 0.9f, .n_milestones = 1,
                       .milestones = {50}, .decay = 0.1f};
    l2rw_optim_cfg oc = l2rw_optim_cfg_default(L2RW_OPTIM_SGD);
    oc.schedule = L2RW_LR_COSINE;
    oc.warmup_steps = 10;
    oc.lr_min = 0.001f;
    oc.total_steps = 110;
    l2rw_sgd *opt = NULL;
    CHECK_OK(l2rw_optim_create(&opt, net, &sc, &oc));
    if (opt) {
        CHECK_CLOSE(l2rw_sgd_lr(opt, 0), 0.01, 1e-6, 0, "warm-up step 0");
        CHECK_CLOSE(l2rw_sgd_lr(opt, 4), 0.05, 1e-6, 0, "warm-up step 4");
        CHECK_CLOSE(l2rw_sgd_lr(opt, 10), 0.1, 1e-6, 0, "cosine start");
        CHECK_CLOSE(l2rw_sgd_lr(opt, 60), 0.0505, 1e-6, 0, "cosine middle");
        CHECK_CLOSE(l2rw_sgd_lr(opt, 110), 0.001, 1e-6, 0, "cosine end");
        CHECK_CLOSE(l2rw_sgd_lr(opt, 500), 0.001, 1e-6, 0, "after the end");
        CHECK(l2rw_sgd_lr(opt, 109) > 0.001f, "last step at lr_min already");
    }
    l2rw_sgd_free(opt);
    opt = NULL;
    /* the step schedule keeps its milestones under a warm-up */
    oc.schedule = L2RW_LR_STEP;
    CHECK_OK(l2rw_optim_create(&opt, net, &sc, &oc));
    if (opt) {
        CHECK_CLOSE(l2rw_sgd_lr(opt, 1), 0.02, 1e-6, 0, "step warm-up");
        CHECK(l2rw_sgd_lr(opt, 49) == 0.1f, "before the milestone");
        CHECK(l2rw_sgd_lr(opt, 50) == 0.1f * 0.1f, "after the milestone");
    }
    l2rw_sgd_free(opt);
    opt = NULL;
    /* refused: cosine without a length, lr_min above lr, bad betas */
    oc.schedule = L2RW_LR_COSINE;
    oc.total_steps = 0;
    CHECK(l2rw_optim_create(&opt, net, &sc, &oc) == L2RW_ERR_ARG,
          "cosine without a length accepted");
    oc.total_steps = 10;
    oc.lr_min = 1.0f;
    CHECK(l2rw_optim_create(&opt, net, &sc, &oc) == L2RW_ERR_ARG,
          "lr_min above lr accepted");
    oc = l2rw_optim_cfg_default(L2RW_OPTIM_ADAMW);
    oc.beta2 = 1.0f;
    CHECK(l2rw_optim_create(&opt, net, &sc, &oc) == L2RW_ERR_ARG &&
              strstr(l2rw_last_error(), "beta2"),
          "beta2 = 1 accepted: %s", l2rw_last_error());
    l2rw_optim_kind k;
    l2rw_lr_schedule ls;
    CHECK(l2rw_optim_parse("adam", &k) == L2RW_ERR_ARG, "adam parsed");
    CHECK(l2rw_optim_parse("adamw", &k) == L2RW_OK && k == L2RW_OPTIM_ADAMW,
          "adamw not parsed");
    CHECK(l2rw_lr_schedule_parse("cosine", &ls) == L2RW_OK &&
              ls == L2RW_LR_COSINE, "cosine not parsed");
    l2rw_net_free(net);
}

/* One clipped step of each kind on a net of more than 2^15 parameters
 * (the parallel path) with 1 and 4 threads: the same bits; the norm
 * reported is the one before clipping; SGD moves by lr * C * g / ||g||. */
static void clip_once(l2rw_optim_kind kind, int threads, float *out,
                      double *norm)
{
    l2rw_set_threads(threads);
    l2rw_net *net = net_with_grads("mlp:256,128", 64, 9);
    l2rw_sgd_cfg sc = {.lr = 0.1f};
    l2rw_optim_cfg oc = l2rw_optim_cfg_default(kind);
    oc.clip_grad_norm = 0.5f;
    l2rw_sgd *opt = NULL;
    CHECK_OK(l2rw_optim_create(&opt, net, &sc, &oc));
    if (opt) {
        CHECK_OK(l2rw_sgd_step(opt, net, 0));
        *norm = l2rw_optim_grad_norm(opt);
        memcpy(out, l2rw_net_params(net),
               l2rw_net_num_params(net) * sizeof(float));
    }
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
}

static void test_clip(void)
{
    const int saved = l2rw_get_threads();
    l2rw_net *ref = net_with_grads("mlp:256,128", 64, 9);
    CHECK(ref != NULL, "net not created");
    if (!ref) return;
    size_t n = l2rw_net_num_params(ref);
    CHECK(n > (1u << 15), "net too small for the parallel path: %zu", n);
    double want = 0;
    for (size_t i = 0; i < n; i++)
        want += (double)l2rw_net_grads(ref)[i] * l2rw_net_grads(ref)[i];
    want = sqrt(want);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    CHECK(a && b, "out of memory");
    for (int kind = 0; a && b && kind < 2; kind++) {
        double na = 0, nb = 0;
        clip_once((l2rw_optim_kind)kind, 1, a, &na);
        clip_once((l2rw_optim_kind)kind, 4, b, &nb);
        CHECK(!memcmp(a, b, n * sizeof *a), "%s: clipped step differs with "
              "1 and 4 threads", l2rw_optim_name((l2rw_optim_kind)kind));
        CHECK(na == nb, "norm differs with the thread count");
        CHECK_CLOSE(na, want, 1e-12, 0, "pre-clip norm");
        if (kind != L2RW_OPTIM_SGD) continue;
        double worst = 0, scale = 0.5 / want;
        for (size_t i = 0; i < n; i++) {
            double d = l2rw_net_params(ref)[i] - a[i];
            double e = fabs(d - 0.1 * scale * l2rw_net_grads(ref)[i]);
            if (e > worst) worst = e;
        }
        CHECK(worst < 1e-7, "clipped SGD step off by %g", worst);
    }
    free(a), free(b);
    l2rw_net_free(ref);
    l2rw_set_threads(saved);
}

/* The L2RW weights of a step depend on the gradients only: the same net,
 * batch and clean batch give the same weights under SGD and AdamW. */
static void test_weights_independent_of_optimizer(void)
{
    enum { N = 12, NV = 8 };
    l2rw_net *a = NULL, *b = NULL;
    CHECK_OK(l2rw_net_create(&a, "mlp:16", FEATURES, 1, 1, CLASSES, N, 7));
    CHECK_OK(l2rw_net_create(&b, "mlp:16", FEATURES, 1, 1, CLASSES, N, 7));
    l2rw_method_cfg mc = l2rw_method_cfg_default();
    mc.method = L2RW_METHOD_L2RW;
    mc.seed = 1;
    l2rw_method_ctx *ma = NULL, *mb = NULL;
    l2rw_sgd *sgd = NULL, *adamw = NULL;
    l2rw_sgd_cfg sc = {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 5e-4f};
    l2rw_optim_cfg oc = l2rw_optim_cfg_default(L2RW_OPTIM_ADAMW);
    if (!a || !b) return;
    CHECK_OK(l2rw_method_create(&ma, &mc, a));
    CHECK_OK(l2rw_method_create(&mb, &mc, b));
    CHECK_OK(l2rw_sgd_create(&sgd, a, &sc));
    CHECK_OK(l2rw_optim_create(&adamw, b, &sc, &oc));
    float x[N * FEATURES], vx[NV * FEATURES], wa[N], wb[N];
    int32_t y[N], vy[NV];
    for (int i = 0; i < N * FEATURES; i++) x[i] = (float)((i * 37) % 11) / 5;
    for (int i = 0; i < NV * FEATURES; i++) vx[i] = (float)((i * 13) % 7) / 3;
    for (int i = 0; i < N; i++) y[i] = (i * 3) % CLASSES;
    for (int i = 0; i < NV; i++) vy[i] = i % CLASSES;
    if (ma && mb && sgd && adamw) {
        CHECK_OK(l2rw_method_step(ma, a, sgd, 0, x, y, NULL, N, vx, vy, NV,
                                  NULL, wa));
        CHECK_OK(l2rw_method_step(mb, b, adamw, 0, x, y, NULL, N, vx, vy, NV,
                                  NULL, wb));
        CHECK(!memcmp(wa, wb, sizeof wa), "L2RW weights differ between SGD "
              "and AdamW");
        size_t n = l2rw_net_num_params(a);
        CHECK(memcmp(l2rw_net_params(a), l2rw_net_params(b),
                     n * sizeof(float)) != 0,
              "the two optimizers made the same update");
    }
    l2rw_sgd_free(sgd), l2rw_sgd_free(adamw);
    l2rw_method_free(ma), l2rw_method_free(mb);
    l2rw_net_free(a), l2rw_net_free(b);
}

/* --------------------------------------------------------------- resume */

static int stop_at(const l2rw_train_progress *p, void *ctx)
{
    return p->event == L2RW_EVENT_STEP && p->step >= *(long *)ctx;
}

/* AdamW with clipping: 2N steps straight, N + N resumed (the step
 * schedule may be extended), and a cosine run with warm-up stopped and
 * resumed: model, metrics and examples byte for byte. */
static void test_adamw_resume(void)
{
    char a[512], b[512], c[512], d[512];
    in_dir(a, sizeof a, "straight");
    in_dir(b, sizeof b, "resumed");
    l2rw_train_result ra, rb;
    l2rw_train_cfg ca = base_cfg(a, 2 * HALF);
    CHECK_OK(l2rw_train_run(&ca, &ra));
    l2rw_train_cfg cb = base_cfg(b, HALF);
    CHECK_OK(l2rw_train_run(&cb, &rb));
    cb.steps = 2 * HALF;
    cb.resume_dir = b;
    CHECK_OK(l2rw_train_run(&cb, &rb));
    CHECK(rb.resumed_from == HALF, "resumed from %ld", rb.resumed_from);
    CHECK(same_file(a, b, L2RW_FILE_MODEL), "AdamW model differs after "
          "resume");
    CHECK(same_file(a, b, L2RW_FILE_METRICS), "metrics differ after resume");
    CHECK(same_file(a, b, L2RW_FILE_EXAMPLES), "examples differ");

    /* cosine with warm-up: stopped at step 13 and resumed */
    in_dir(c, sizeof c, "cos-straight");
    in_dir(d, sizeof d, "cos-stopped");
    l2rw_train_cfg cc = base_cfg(c, 2 * HALF);
    cc.optim.schedule = L2RW_LR_COSINE;
    cc.optim.warmup_steps = 5;
    cc.optim.lr_min = 1e-4f;
    CHECK_OK(l2rw_train_run(&cc, &ra));
    l2rw_train_cfg cd = cc;
    cd.out_dir = d;
    cd.checkpoint_every = 0;
    cd.report_every = 1;
    long at = 13;
    cd.progress = stop_at;
    cd.progress_ctx = &at;
    CHECK_OK(l2rw_train_run(&cd, &rb));
    CHECK(rb.stopped == 1 && rb.steps == at, "not stopped at %ld", at);
    cd.progress = NULL;
    cd.resume_dir = d;
    CHECK_OK(l2rw_train_run(&cd, &rb));
    CHECK(same_file(c, d, L2RW_FILE_MODEL), "cosine model differs after a "
          "stop");
    CHECK(same_file(c, d, L2RW_FILE_METRICS), "cosine metrics differ");
    CHECK(!same_file(a, c, L2RW_FILE_MODEL), "cosine made no difference");

    /* a cosine run of another length: refused (its rates differ) */
    cd.steps = 3 * HALF;
    l2rw_status s = l2rw_train_run(&cd, &rb);
    CHECK(s == L2RW_ERR_ARG && strstr(l2rw_last_error(), "cosine"),
          "cosine resume with another length: %s: %s", l2rw_strerror(s),
          l2rw_last_error());
}

/* Resuming with other optimizer options names the option. */
static void test_resume_other_optimizer(void)
{
    char a[512], o[512];
    in_dir(a, sizeof a, "straight");
    in_dir(o, sizeof o, "other");
    l2rw_train_result r;
    for (int i = 0; i < 4; i++) {
        l2rw_train_cfg c = base_cfg(o, 2 * HALF);
        const char *needle = "optimizer=";
        if (i == 0) c.optim.kind = L2RW_OPTIM_SGD;
        if (i == 1) c.optim.beta1 = 0.8f, needle = "beta1=";
        if (i == 2) c.optim.clip_grad_norm = 0, needle = "clip-grad-norm=";
        if (i == 3) c.optim.schedule = L2RW_LR_COSINE, needle = "lr-schedule=";
        c.resume_dir = a;
        l2rw_status s = l2rw_train_run(&c, &r);
        CHECK(s == L2RW_ERR_ARG && strstr(l2rw_last_error(), needle),
              "case %d: %s: %s", i, l2rw_strerror(s), l2rw_last_error());
        CHECK(!file_exists(o), "out directory made for a refused resume");
    }
    /* the resume config carries the options (the CLI's defaults) */
    char text[8192];
    CHECK_OK(l2rw_train_resume_config(a, text, sizeof text));
    CHECK(strstr(text, "optimizer=adamw\n") && strstr(text, "beta2=") &&
              strstr(text, "clip-grad-norm="),
          "resume config lacks the optimizer: %s", text);
}

/* A version-3 checkpoint (SGD: the velocity right after the net, no
 * optimizer section, no detector) made from a version-4 one: resumed,
 * to the same model as an uninterrupted run. */
static void test_version3(void)
{
    char a[512], b[512], path[600];
    in_dir(a, sizeof a, "sgd-straight");
    in_dir(b, sizeof b, "sgd-v3");
    l2rw_train_result r;
    l2rw_train_cfg ca = base_cfg(a, 2 * HALF);
    ca.optim = l2rw_optim_cfg_default(L2RW_OPTIM_SGD);
    CHECK_OK(l2rw_train_run(&ca, &r));
    l2rw_train_cfg cb = ca;
    cb.out_dir = b;
    cb.steps = HALF;
    CHECK_OK(l2rw_train_run(&cb, &r));
    snprintf(path, sizeof path, "%s/%s", b, L2RW_FILE_CHECKPOINT);
    long len;
    unsigned char *v4 = read_all(path, &len);
    CHECK(v4 != NULL, "no checkpoint");
    if (!v4) return;
    /* tail of version 4: u32 kind, i64 t, 3 f32, velocity, detector,
     * CRC */
    long np = 0;
    l2rw_net *net = NULL;
    CHECK_OK(l2rw_net_create(&net, "mlp:16", FEATURES, 1, 1, CLASSES, 1, 1));
    if (net) np = (long)l2rw_net_num_params(net);
    l2rw_net_free(net);
    const long detector = 8 + 8 + 8 * DIVERGE_WINDOW, head = 4 + 8 + 12;
    const long net_end = len - 4 - detector - 4 * np - head;
    CHECK(v4[8] == 4 && net_end > 0, "unexpected layout");
    unsigned char *v3 = malloc((size_t)len);
    if (v3 && net_end > 0) {
        long k = net_end;
        memcpy(v3, v4, (size_t)net_end);
        memcpy(v3 + k, v4 + net_end + head, (size_t)(4 * np));
        k += 4 * np;
        v3[8] = 3;
        uint32_t crc = l2rw_crc32(0, v3, (size_t)k);
        for (int i = 0; i < 4; i++) v3[k + i] = (unsigned char)(crc >> 8 * i);
        FILE *fp = fopen(path, "wb");
        CHECK(fp && fwrite(v3, 1, (size_t)(k + 4), fp) == (size_t)(k + 4),
              "cannot write %s", path);
        if (fp) fclose(fp);
        cb.steps = 2 * HALF;
        cb.resume_dir = b;
        CHECK_OK(l2rw_train_run(&cb, &r));
        CHECK(r.resumed_from == HALF, "resumed from %ld", r.resumed_from);
        CHECK(same_file(a, b, L2RW_FILE_MODEL), "model differs after a "
              "version-3 resume");
    }
    free(v3);
    free(v4);
}

/* ------------------------------------------------------------ divergence */

static l2rw_status feed(l2rw__diverge *d, double loss, long *step)
{
    ++*step;
    return l2rw__diverge_add(d, loss, *step, 10, 0.01f);
}

static void test_divergence_rule(void)
{
    l2rw__diverge d;
    long step = 0;
    l2rw_status s = L2RW_OK;
    /* healthy: from ln 10 down to 0.01 with batch noise up to x5 */
    memset(&d, 0, sizeof d);
    for (int i = 0; i < 3000 && s == L2RW_OK; i++) {
        double base = 2.3 * exp(-i / 300.0) + 0.01;
        s = feed(&d, base * (i % 7 == 0 ? 5.0 : 1.0), &step);
    }
    CHECK(s == L2RW_OK, "healthy run flagged: %s", l2rw_last_error());
    /* a loss that rises from 0.01 to 3 (ln 10 = 2.3) is a net no worse
     * than guessing */
    for (int i = 0; i < 500 && s == L2RW_OK; i++) s = feed(&d, 3.0, &step);
    CHECK(s == L2RW_OK, "rise below 1.5 ln(classes) flagged");
    /* climbing from ~1 to 200: flagged while the mean is still low */
    memset(&d, 0, sizeof d);
    step = 0;
    for (int i = 0; i < 200 && s == L2RW_OK; i++)
        s = feed(&d, 1.0 + 0.2 * (i % 3), &step);
    long fired = 0;
    for (int i = 0; i < 1000 && s == L2RW_OK; i++) {
        s = feed(&d, 1.0 + 0.2 * i, &step);
        if (s != L2RW_OK) fired = step;
    }
    CHECK(s == L2RW_ERR_DIVERGED && fired > 200 && fired < 300,
          "climb flagged at %ld: %s", fired, l2rw_last_error());
    CHECK(strstr(l2rw_last_error(), "diverged at step") &&
              strstr(l2rw_last_error(), "--lr 0.001") &&
              strstr(l2rw_last_error(), "--clip-grad-norm"),
          "message: %s", l2rw_last_error());
}

/* A run at a learning rate far too high: stopped with the step in the
 * message, no checkpoint of the diverged state (the one of before
 * stays), no model; with the check off it trains on (or ends in NaN). */
static void test_divergent_run(void)
{
    char o[512], ck[600];
    in_dir(o, sizeof o, "diverged");
    snprintf(ck, sizeof ck, "%s/%s", o, L2RW_FILE_CHECKPOINT);
    l2rw_train_cfg c = base_cfg(o, 400);
    c.optim = l2rw_optim_cfg_default(L2RW_OPTIM_SGD);
    c.method = "plain";
    c.noise = "uniform:0.4";
    c.sgd.lr = 3.0f;
    c.sgd.momentum = 0.9f;
    c.eval_every = 0;
    c.checkpoint_every = 0;
    l2rw_train_result r;
    l2rw_status s = l2rw_train_run(&c, &r);
    CHECK(s == L2RW_ERR_DIVERGED && strstr(l2rw_last_error(), "diverged at "
                                          "step"),
          "divergent run: %s: %s", l2rw_strerror(s), l2rw_last_error());
    CHECK(r.started == 1, "a divergence counts as a failed run");
    char model[600];
    snprintf(model, sizeof model, "%s/%s", o, L2RW_FILE_MODEL);
    CHECK(!file_exists(model), "model written for a diverged run");
    CHECK(!file_exists(ck), "checkpoint of the diverged state");
}

/* --------------------------------------------------------------- the CLI */

static int run_cli(const char *args, char *out, size_t size)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", TU_CLI, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void)
{
    if (getenv("L2RW_SANITIZED")) {
        SKIP("runs the uninstrumented %s", TU_CLI);
        return;
    }
    if (access(TU_CLI, X_OK) != 0) {
        SKIP("%s not built", TU_CLI);
        return;
    }
    char args[4096], out[8192], o[512];
    in_dir(o, sizeof o, "cli");
    const char *common = "--model mlp:16 --batch 20 --val-per-class 5 "
                         "--quiet --no-plots --threads 2";
    snprintf(args, sizeof args, "train --data '%s' %s --optimizer adam "
             "--out %s", spec, common, o);
    CHECK(run_cli(args, out, sizeof out) == 2 && strstr(out, "adam"),
          "bad --optimizer: %s", out);
    snprintf(args, sizeof args, "train --data '%s' %s --steps 10 "
             "--optimizer adamw --lr-schedule cosine --lr-warmup 3 "
             "--clip-grad-norm 1 --out %s", spec, common, o);
    CHECK(run_cli(args, out, sizeof out) == 0, "adamw run: %s", out);
    /* --resume alone continues with the checkpoint's options */
    snprintf(args, sizeof args, "train --resume %s --quiet --no-plots", o);
    CHECK(run_cli(args, out, sizeof out) == 0, "resume: %s", out);
    snprintf(args, sizeof args, "train --resume %s --quiet --no-plots "
             "--optimizer sgd", o);
    CHECK(run_cli(args, out, sizeof out) == 2 && strstr(out, "optimizer"),
          "resume with sgd: %s", out);
    /* a divergent run: exit status 1, the step named */
    in_dir(o, sizeof o, "cli-diverged");
    snprintf(args, sizeof args, "train --data '%s' %s --method plain "
             "--noise uniform:0.4 --steps 400 --lr 3 --eval-every 0 "
             "--out %s", spec, common, o);
    CHECK(run_cli(args, out, sizeof out) == 1 &&
              strstr(out, "diverged at step"),
          "divergent CLI run: %s", out);
}

int main(void)
{
    if (make_data()) {
        printf("cannot write the test data\n");
        return 1;
    }
    RUN(test_zero_ext_is_sgd);
    RUN(test_adamw_formula);
    RUN(test_schedules);
    RUN(test_clip);
    RUN(test_weights_independent_of_optimizer);
    RUN(test_adamw_resume);
    RUN(test_resume_other_optimizer);
    RUN(test_version3);
    RUN(test_divergence_rule);
    RUN(test_divergent_run);
    RUN(test_cli);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    return CHECK_DONE("test_optim_adamw");
}
