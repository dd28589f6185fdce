/* Nets on a back end that is not the host's, proven on this machine with
 * the checking back end (src/cpu/backend_checked.c: the CPU's kernels on
 * memory of its own arena, every pointer argument checked, the arena
 * unreadable from the host between ops). For MLP, LeNet and ResNet-8
 * (batch norm): forward, forward with tangent, loss with u, backward with
 * weights, the frozen validation pass, SGD (with clipping) and AdamW
 * steps and eval-mode predictions give the CPU back end's bits, with
 * nothing crossing but the batch in and per-example values out and no
 * allocation in a step; the public host pointers are NULL; explicit
 * copies round-trip; a file saved on the checked back end loads on the
 * CPU (and back) with the same predictions, and the ONNX export is the
 * same file; the checker itself catches a host pointer in a kernel, a
 * device pointer on the host side of a transfer, an extent past a block
 * and a host read of the arena. And l2rw_net_create_on: the CPU, and
 * CUDA refused with the probe's reason where there is no GPU. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "backend_checked.h"
#include "check.h"
#include "common.h"
#include "l2rw.h"
#include "net_internal.h"
#include "testutil.h"

static const l2rw__backend *const CK = &l2rw__backend_checked;

enum { B = 6, K = 5 }; /* batch, classes */

typedef struct {
    const char *model;
    int c, h, w;
} model_case;

static const model_case MODELS[] = {
    {"mlp:24,12", 1, 6, 6},
    {"lenet", 1, 28, 28},
    {"resnet8", 3, 12, 12},
};

/* Two nets of one model and seed: on the CPU and on the checked table. */
typedef struct {
    l2rw_net *cpu, *dev;
    size_t np, ns, nx;
    float *x, *buf, *w;
    int32_t y[B];
} pair;

static void fill_normal(float *v, size_t n, l2rw_rng *rng, double scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(scale * l2rw_rng_normal(rng));
}

static int pair_make(pair *p, const model_case *m, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    CHECK_OK(l2rw__net_create_be(&p->cpu, m->model, m->c, m->h, m->w, K, B,
                                 seed, &l2rw__backend_cpu));
    CHECK_OK(l2rw__net_create_be(&p->dev, m->model, m->c, m->h, m->w, K, B,
                                 seed, CK));
    if (!p->cpu || !p->dev) return 0;
    p->np = l2rw_net_num_params(p->cpu);
    p->ns = l2rw_net_num_state(p->cpu);
    p->nx = (size_t)B * m->c * m->h * m->w;
    size_t big = p->np > p->ns ? p->np : p->ns;
    if (big < (size_t)B * K) big = (size_t)B * K;
    p->x = malloc(p->nx * sizeof *p->x);
    p->buf = malloc(big * sizeof *p->buf);
    p->w = malloc(B * sizeof *p->w);
    CHECK(p->x && p->buf && p->w, "out of memory");
    if (!p->x || !p->buf || !p->w) return 0;
    l2rw_rng rng;
    l2rw_rng_seed(&rng, seed + 1);
    fill_normal(p->x, p->nx, &rng, 1.0);
    for (int i = 0; i < B; i++) {
        p->y[i] = (int32_t)(l2rw_rng_below(&rng, K));
        p->w[i] = (float)l2rw_rng_uniform(&rng);
    }
    p->w[1] = 0.0f; /* an example without weight */
    return 1;
}

static void pair_free(pair *p)
{
    l2rw_net_free(p->cpu);
    l2rw_net_free(p->dev);
    free(p->x);
    free(p->buf);
    free(p->w);
}

/* The checked net's buffer equals the CPU net's host buffer, bit for
 * bit (n floats). */
static int same_buffer(pair *p, l2rw_net_buffer which, const float *ref,
                       size_t n)
{
    if (l2rw_net_read(p->dev, which, 0, n, p->buf) != L2RW_OK) return 0;
    return memcmp(p->buf, ref, n * sizeof *ref) == 0;
}

static int synced(void)
{
    l2rw_status s = CK->sync();
    if (s != L2RW_OK) printf("   checked back end: %s\n", l2rw_last_error());
    return s == L2RW_OK;
}

/* One L2RW-shaped step on both nets: a frozen validation pass, its
 * gradient as the tangent (copied on the device), the training forward
 * with tangent, loss with u, weighted backward; each result compared. */
static void step_pair(pair *p, const char *model)
{
    float lc[B], ld[B], uc[B], ud[B];
    l2rw_net *nets[2] = {p->cpu, p->dev};
    for (int k = 0; k < 2; k++) {
        l2rw_net_set_dropout_key(nets[k], 5);
        CHECK_OK(l2rw_net_forward(nets[k], p->x, B,
                                  L2RW_MODE_TRAIN_FROZEN, 0));
        CHECK_OK(l2rw_net_loss(nets[k], p->y, NULL, k ? ld : lc, NULL));
        CHECK_OK(l2rw_net_backward(nets[k], NULL));
        CHECK_OK(l2rw_net_copy(nets[k], L2RW_NET_TANGENTS, L2RW_NET_GRADS, 0,
                               p->np));
    }
    CHECK(synced(), "%s: validation pass", model);
    CHECK(memcmp(lc, ld, sizeof lc) == 0, "%s: validation losses differ",
          model);
    CHECK(same_buffer(p, L2RW_NET_TANGENTS, l2rw_net_tangents(p->cpu), p->np),
          "%s: validation gradient (as tangent) differs", model);
    l2rw__checked_counts c0 = l2rw__checked_counts_get();
    for (int k = 0; k < 2; k++) {
        CHECK_OK(l2rw_net_forward(nets[k], p->x, B, L2RW_MODE_TRAIN, 1));
        CHECK_OK(l2rw_net_loss(nets[k], p->y, NULL, k ? ld : lc,
                               k ? ud : uc));
        CHECK_OK(l2rw_net_backward(nets[k], p->w));
    }
    l2rw__checked_counts c1 = l2rw__checked_counts_get();
    CHECK(synced(), "%s: training pass", model);
    CHECK(c1.allocs == c0.allocs, "%s: %ld allocations in a step", model,
          c1.allocs - c0.allocs);
    /* in: x, labels, weights; out: losses and u */
    size_t up = (p->nx + 2 * B) * 4, down = 2 * B * 4;
    CHECK(c1.up_bytes - c0.up_bytes == up &&
              c1.down_bytes - c0.down_bytes == down,
          "%s: a step moved %zu bytes in and %zu out (want %zu and %zu)",
          model, c1.up_bytes - c0.up_bytes, c1.down_bytes - c0.down_bytes,
          up, down);
    CHECK(memcmp(lc, ld, sizeof lc) == 0, "%s: losses differ", model);
    CHECK(memcmp(uc, ud, sizeof uc) == 0, "%s: u differs", model);
    int nonzero = 0;
    for (int i = 0; i < B; i++) nonzero |= uc[i] != 0.0f;
    CHECK(nonzero, "%s: u is all zero (the tangent went nowhere)", model);
    CHECK(same_buffer(p, L2RW_NET_LOGITS, l2rw_net_logits(p->cpu), B * K),
          "%s: logits (forward with tangent) differ", model);
    CHECK(same_buffer(p, L2RW_NET_GRADS, l2rw_net_grads(p->cpu), p->np),
          "%s: gradients of the weighted backward differ", model);
    CHECK(same_buffer(p, L2RW_NET_STATE, l2rw_net_state(p->cpu), p->ns),
          "%s: running statistics differ", model);
}

/* An optimizer step on both nets, its state compared. */
static void optim_pair(pair *p, l2rw_sgd *oc, l2rw_sgd *od, long step,
                       const char *what)
{
    l2rw__checked_counts c0 = l2rw__checked_counts_get();
    CHECK_OK(l2rw_sgd_step(od, p->dev, step));
    l2rw__checked_counts c1 = l2rw__checked_counts_get();
    CHECK_OK(l2rw_sgd_step(oc, p->cpu, step));
    CHECK(synced(), "%s", what);
    CHECK(c1.allocs == c0.allocs && c1.up_bytes == c0.up_bytes &&
              c1.down_bytes - c0.down_bytes == sizeof(int),
          "%s: a step allocated %ld blocks, moved %zu bytes in and %zu out "
          "(want 0, 0 and the flag's %zu)",
          what, c1.allocs - c0.allocs, c1.up_bytes - c0.up_bytes,
          c1.down_bytes - c0.down_bytes, sizeof(int));
    CHECK(same_buffer(p, L2RW_NET_PARAMS, l2rw_net_params(p->cpu), p->np),
          "%s: parameters differ", what);
    CHECK(l2rw_optim_read(od, L2RW_OPTIM_FIRST, 0, p->np, p->buf) ==
                  L2RW_OK &&
              memcmp(p->buf, l2rw_sgd_velocity(oc), p->np * 4) == 0,
          "%s: velocity (first moment) differs", what);
    if (l2rw_optim_second_moment(oc))
        CHECK(l2rw_optim_read(od, L2RW_OPTIM_SECOND, 0, p->np, p->buf) ==
                      L2RW_OK &&
                  memcmp(p->buf, l2rw_optim_second_moment(oc), p->np * 4) ==
                      0,
              "%s: second moment differs", what);
    CHECK(l2rw_optim_grad_norm(oc) == l2rw_optim_grad_norm(od) ||
              (l2rw_optim_grad_norm(oc) != l2rw_optim_grad_norm(oc) &&
               l2rw_optim_grad_norm(od) != l2rw_optim_grad_norm(od)),
          "%s: gradient norms %.17g and %.17g", what,
          l2rw_optim_grad_norm(oc), l2rw_optim_grad_norm(od));
}

static void run_model(const model_case *m)
{
    pair p;
    l2rw_sgd *sc = NULL, *sd = NULL, *ac = NULL, *ad = NULL;
    if (!pair_make(&p, m, 11)) goto done;
    CHECK(same_buffer(&p, L2RW_NET_PARAMS, l2rw_net_params(p.cpu), p.np),
          "%s: initial parameters differ", m->model);
    CHECK(same_buffer(&p, L2RW_NET_STATE, l2rw_net_state(p.cpu), p.ns),
          "%s: initial state differs", m->model);
    l2rw_sgd_cfg cfg = {0.05f, 0.9f, 5e-4f, 0, {0}, 0.1f};
    l2rw_optim_cfg sgd = l2rw_optim_cfg_default(L2RW_OPTIM_SGD);
    sgd.clip_grad_norm = 0.5f; /* the sum of squares and a scaled step */
    l2rw_optim_cfg adamw = l2rw_optim_cfg_default(L2RW_OPTIM_ADAMW);
    CHECK_OK(l2rw_optim_create(&sc, p.cpu, &cfg, &sgd));
    CHECK_OK(l2rw_optim_create(&sd, p.dev, &cfg, &sgd));
    CHECK_OK(l2rw_optim_create(&ac, p.cpu, &cfg, &adamw));
    CHECK_OK(l2rw_optim_create(&ad, p.dev, &cfg, &adamw));
    if (!sc || !sd || !ac || !ad) goto done;
    CHECK(l2rw_sgd_velocity(sd) == NULL && l2rw_sgd_velocity(ad) == NULL &&
              l2rw_optim_second_moment(ad) == NULL,
          "%s: host pointers to a device optimizer's state", m->model);
    char what[64];
    for (long s = 0; s < 2; s++) {
        step_pair(&p, m->model);
        snprintf(what, sizeof what, "%s SGD step %ld", m->model, s);
        optim_pair(&p, sc, sd, s, what);
        step_pair(&p, m->model);
        snprintf(what, sizeof what, "%s AdamW step %ld", m->model, s);
        optim_pair(&p, ac, ad, s, what);
    }
    int32_t pc[B], pd[B];
    CHECK_OK(l2rw_net_forward(p.cpu, p.x, B, L2RW_MODE_EVAL, 0));
    CHECK_OK(l2rw_net_forward(p.dev, p.x, B, L2RW_MODE_EVAL, 0));
    l2rw_net_predict(p.cpu, pc);
    l2rw_net_predict(p.dev, pd);
    CHECK(synced(), "%s: eval pass", m->model);
    CHECK(memcmp(pc, pd, sizeof pc) == 0, "%s: predictions differ",
          m->model);
    CHECK(same_buffer(&p, L2RW_NET_LOGITS, l2rw_net_logits(p.cpu), B * K),
          "%s: eval logits differ", m->model);
done:
    l2rw_sgd_free(sc);
    l2rw_sgd_free(sd);
    l2rw_sgd_free(ac);
    l2rw_sgd_free(ad);
    pair_free(&p);
}

static void test_mlp(void) { run_model(&MODELS[0]); }
static void test_lenet(void) { run_model(&MODELS[1]); }
static void test_resnet8(void) { run_model(&MODELS[2]); }

/* The per-example L2RW path (scores and weighted gradient from per-example
 * captures) on the checked back end: the CPU's bits. */
static void test_scores_each(void)
{
    pair p;
    if (!pair_make(&p, &MODELS[1], 3)) goto done;
    float uc[B], ud[B];
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 9);
    fill_normal(l2rw_net_tangents(p.cpu), p.np, &rng, 0.01);
    CHECK_OK(l2rw_net_write(p.dev, L2RW_NET_TANGENTS, 0, p.np,
                            l2rw_net_tangents(p.cpu)));
    l2rw_net *nets[2] = {p.cpu, p.dev};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(l2rw_net_forward(nets[k], p.x, B, L2RW_MODE_TRAIN, 0));
        CHECK_OK(l2rw_net_loss(nets[k], p.y, NULL, NULL, NULL));
        CHECK_OK(l2rw__net_scores_each(nets[k], k ? ud : uc));
        CHECK_OK(l2rw__net_backward_each(nets[k], p.w));
    }
    CHECK(synced(), "per-example path");
    CHECK(memcmp(uc, ud, sizeof uc) == 0, "per-example scores differ");
    CHECK(same_buffer(&p, L2RW_NET_GRADS, l2rw_net_grads(p.cpu), p.np),
          "per-example weighted gradients differ");
done:
    pair_free(&p);
}

/* What the host sees of a net on a device. */
static void test_host_view(void)
{
    pair p;
    if (!pair_make(&p, &MODELS[2], 4)) goto done;
    l2rw_net *n = p.dev;
    CHECK(l2rw_net_params(n) == NULL && l2rw_net_grads(n) == NULL &&
              l2rw_net_tangents(n) == NULL && l2rw_net_state(n) == NULL,
          "host pointers of a device net");
    CHECK(l2rw_net_params(p.cpu) && l2rw_net_state(p.cpu),
          "a CPU net lost its host pointers");
    CHECK(l2rw_net_buffer_size(n, L2RW_NET_LOGITS) == 0,
          "logits before a forward");
    CHECK_OK(l2rw_net_forward(n, p.x, 3, L2RW_MODE_EVAL, 0));
    CHECK(l2rw_net_logits(n) == NULL, "host pointer to a device's logits");
    CHECK(l2rw_net_buffer_size(n, L2RW_NET_LOGITS) == 3 * K,
          "logits of 3 examples: %zu floats",
          l2rw_net_buffer_size(n, L2RW_NET_LOGITS));
    l2rw_device d = l2rw_net_device(n);
    CHECK(d.kind == L2RW_DEVICE_CPU && d.index == 0,
          "a net on a table of no device says kind %d", (int)d.kind);
    CHECK(l2rw__net_backend(n) == CK && l2rw__net_backend(p.cpu) ==
              &l2rw__backend_cpu, "the nets' tables");
    CHECK(synced(), "host view");
done:
    pair_free(&p);
}

/* Explicit copies: round trips at offsets, device-side copy and zero,
 * refusals. */
static void test_copies(void)
{
    pair p;
    if (!pair_make(&p, &MODELS[1], 5)) goto done;
    l2rw_net *n = p.dev;
    const size_t np = p.np, off = 17, cnt = np - 40;
    float *a = malloc(np * sizeof *a), *b = malloc(np * sizeof *b);
    CHECK(a && b, "out of memory");
    if (!a || !b) goto out;
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 6);
    fill_normal(a, np, &rng, 1.0);
    const l2rw_net_buffer bufs[] = {L2RW_NET_PARAMS, L2RW_NET_GRADS,
                                    L2RW_NET_TANGENTS};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(l2rw_net_write(n, bufs[i], off, cnt, a));
        CHECK_OK(l2rw_net_read(n, bufs[i], off, cnt, b));
        CHECK(memcmp(a, b, cnt * sizeof *a) == 0, "round trip of buffer %d",
              i);
    }
    CHECK_OK(l2rw_net_write(n, L2RW_NET_GRADS, 0, np, a));
    CHECK_OK(l2rw_net_copy(n, L2RW_NET_TANGENTS, L2RW_NET_GRADS, 0, np));
    CHECK_OK(l2rw_net_zero(n, L2RW_NET_TANGENTS, 0, off));
    CHECK_OK(l2rw_net_read(n, L2RW_NET_TANGENTS, 0, np, b));
    int ok = 1;
    for (size_t i = 0; i < np; i++) ok &= b[i] == (i < off ? 0.0f : a[i]);
    CHECK(ok, "copy of the gradients with a zeroed head");
    CHECK(l2rw_net_read(n, L2RW_NET_PARAMS, np - 3, 4, b) == L2RW_ERR_ARG,
          "a read past the end accepted");
    CHECK(l2rw_net_write(n, L2RW_NET_PARAMS, SIZE_MAX, 2, a) == L2RW_ERR_ARG,
          "an overflowing offset accepted");
    CHECK(l2rw_net_read(n, L2RW_NET_LOGITS, 0, 1, b) == L2RW_ERR_ARG,
          "logits read before a forward");
    CHECK_OK(l2rw_net_forward(n, p.x, B, L2RW_MODE_EVAL, 0));
    CHECK(l2rw_net_write(n, L2RW_NET_LOGITS, 0, 1, a) == L2RW_ERR_ARG,
          "logits written");
    CHECK(l2rw_net_copy(n, L2RW_NET_STATE, L2RW_NET_PARAMS, 0, 1) ==
              L2RW_ERR_ARG,
          "a copy into the state accepted");
    CHECK(l2rw_net_read(n, (l2rw_net_buffer)9, 0, 1, b) == L2RW_ERR_ARG,
          "an unknown buffer accepted");
    /* the optimizer's state */
    l2rw_sgd_cfg cfg = {0.1f, 0.9f, 0.0f, 0, {0}, 0.1f};
    l2rw_sgd *o = NULL, *o2 = NULL;
    CHECK_OK(l2rw_sgd_create(&o, n, &cfg));
    CHECK_OK(l2rw_sgd_create(&o2, n, &cfg));
    if (o && o2) {
        CHECK_OK(l2rw_optim_write(o, L2RW_OPTIM_FIRST, off, cnt, a));
        CHECK_OK(l2rw_optim_set_updates(o, 7));
        CHECK_OK(l2rw_optim_copy_state(o2, o));
        CHECK_OK(l2rw_optim_read(o2, L2RW_OPTIM_FIRST, off, cnt, b));
        CHECK(memcmp(a, b, cnt * sizeof *a) == 0 &&
                  l2rw_optim_updates(o2) == 7,
              "velocity round trip through copy_state");
        CHECK(l2rw_optim_read(o, L2RW_OPTIM_SECOND, 0, 1, b) == L2RW_ERR_ARG,
              "SGD's second moment read");
        CHECK(l2rw_sgd_step(o, p.cpu, 0) == L2RW_ERR_ARG,
              "an optimizer of a checked net stepped a CPU net");
    }
    l2rw_sgd_free(o);
    l2rw_sgd_free(o2);
    CHECK(synced(), "copies");
out:
    free(a);
    free(b);
done:
    pair_free(&p);
}

/* A model saved on the checked back end loads on the CPU with the same
 * predictions, and the CPU's file into a checked net; the ONNX export of
 * both nets is the same file. */
static void test_save_load(void)
{
    pair p;
    l2rw_net *back = NULL, *dev2 = NULL;
    if (!pair_make(&p, &MODELS[2], 8)) goto done;
    /* train the checked net a little so its state is not the initial one */
    l2rw_sgd_cfg cfg = {0.05f, 0.9f, 0.0f, 0, {0}, 0.1f};
    l2rw_sgd *o = NULL;
    CHECK_OK(l2rw_sgd_create(&o, p.dev, &cfg));
    for (int s = 0; o && s < 2; s++) {
        CHECK_OK(l2rw_net_forward(p.dev, p.x, B, L2RW_MODE_TRAIN, 0));
        CHECK_OK(l2rw_net_loss(p.dev, p.y, NULL, NULL, NULL));
        CHECK_OK(l2rw_net_backward(p.dev, NULL));
        CHECK_OK(l2rw_sgd_step(o, p.dev, s));
    }
    l2rw_sgd_free(o);
    char path[512], path2[512], onnx1[512], onnx2[512];
    path_in(path, sizeof path, "dev.l2rw");
    path_in(path2, sizeof path2, "cpu.l2rw");
    path_in(onnx1, sizeof onnx1, "dev.onnx");
    path_in(onnx2, sizeof onnx2, "cpu.onnx");
    CHECK_OK(l2rw_net_save(p.dev, path));
    CHECK_OK(l2rw_net_load_new(&back, path, B));
    if (!back) goto done;
    CHECK(same_buffer(&p, L2RW_NET_PARAMS, l2rw_net_params(back), p.np) &&
              same_buffer(&p, L2RW_NET_STATE, l2rw_net_state(back), p.ns),
          "the CPU net loaded from the checked net's file differs");
    int32_t pd[B], pc[B], p2[B];
    CHECK_OK(l2rw_net_forward(p.dev, p.x, B, L2RW_MODE_EVAL, 0));
    CHECK_OK(l2rw_net_forward(back, p.x, B, L2RW_MODE_EVAL, 0));
    l2rw_net_predict(p.dev, pd);
    l2rw_net_predict(back, pc);
    CHECK(memcmp(pd, pc, sizeof pd) == 0, "predictions after the load");
    /* and back: the CPU's file into a fresh checked net */
    CHECK_OK(l2rw_net_save(back, path2));
    CHECK_OK(l2rw__net_create_be(&dev2, MODELS[2].model, MODELS[2].c,
                                 MODELS[2].h, MODELS[2].w, K, B, 99, CK));
    if (dev2) {
        CHECK_OK(l2rw_net_load(dev2, path2));
        CHECK_OK(l2rw_net_forward(dev2, p.x, B, L2RW_MODE_EVAL, 0));
        l2rw_net_predict(dev2, p2);
        CHECK(memcmp(p2, pc, sizeof pc) == 0, "predictions after a load "
              "into a checked net");
        CHECK(same_buffer(&p, L2RW_NET_LOGITS, l2rw_net_logits(back), B * K),
              "logits after the round trip");
    }
    CHECK_OK(l2rw_net_export_onnx(p.dev, onnx1, NULL));
    CHECK_OK(l2rw_net_export_onnx(back, onnx2, NULL));
    long n1 = 0, n2 = 0;
    char *f1 = slurp(onnx1, &n1), *f2 = slurp(onnx2, &n2);
    CHECK(f1 && f2 && n1 == n2 && n1 > 0 && memcmp(f1, f2, (size_t)n1) == 0,
          "ONNX files of the checked net and its CPU copy differ");
    free(f1);
    free(f2);
    CHECK(synced(), "save and load");
    remove(path);
    remove(path2);
    remove(onnx1);
    remove(onnx2);
done:
    l2rw_net_free(back);
    l2rw_net_free(dev2);
    pair_free(&p);
}

/* The checker itself: each kind of misuse is caught and named. */
static void test_checker(void)
{
    float host[8] = {0};
    float *d = CK->alloc(8, sizeof(float));
    CHECK(d != NULL, "alloc");
    if (!d) return;
    l2rw__checked_counts c0 = l2rw__checked_counts_get();
    CK->copy(d, host, 8, 0); /* host memory as a kernel's source */
    CHECK(CK->sync() == L2RW_ERR_ARG &&
              strstr(l2rw_last_error(), "copy: argument src") &&
              strstr(l2rw_last_error(), "host memory"),
          "host pointer in a kernel: %s", l2rw_last_error());
    CHECK(synced(), "sync did not clear the error");
    CK->upload(d, d + 4, 4 * sizeof(float)); /* device memory as host src */
    CHECK(CK->sync() == L2RW_ERR_ARG && strstr(l2rw_last_error(), "upload"),
          "back-end memory on the host side: %s", l2rw_last_error());
    CK->scale(d + 4, d, 2.0f, 5, 0); /* 5 floats from d + 4: past the end */
    CHECK(CK->sync() == L2RW_ERR_ARG &&
              strstr(l2rw_last_error(), "scale: argument dst"),
          "extent past the block: %s", l2rw_last_error());
    float *e = CK->alloc(8, sizeof(float));
    CK->dealloc(e);
    CK->zero(e, 4); /* a freed block */
    CHECK(CK->sync() == L2RW_ERR_ARG && strstr(l2rw_last_error(), "zero"),
          "use after free: %s", l2rw_last_error());
    CHECK(l2rw__checked_counts_get().errors - c0.errors == 4,
          "%ld errors counted", l2rw__checked_counts_get().errors - c0.errors);
    CK->scale(d, d, 2.0f, 8, 0); /* a correct call */
    CHECK(synced(), "a correct call flagged");
    /* The host cannot read the arena between ops: a child that tries
     * dies of SIGSEGV (under AddressSanitizer, which catches the signal,
     * it exits non-zero instead; its report goes to /dev/null). */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 2);
        volatile float v = d[0];
        (void)v;
        _exit(0);
    }
    int st = 0;
    int waited = pid > 0 && waitpid(pid, &st, 0) == pid;
    CHECK(waited && ((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
                     (WIFEXITED(st) && WEXITSTATUS(st) != 0)),
          "a host read of the arena did not fault (status %d)", st);
    CK->dealloc(d);
}

/* l2rw_net_create_on: NULL and "cpu" are the CPU table; CUDA without a
 * GPU is refused with the probe's reason. */
static void test_create_on(void)
{
    l2rw_net *n = NULL;
    l2rw_device cpu = {L2RW_DEVICE_CPU, 0}, cuda = {L2RW_DEVICE_CUDA, 0};
    CHECK_OK(l2rw_net_create_on(&n, "mlp:8", 1, 4, 4, 3, 2, 1, &cpu));
    CHECK(n && l2rw__net_backend(n) == &l2rw__backend_cpu &&
              l2rw_net_device(n).kind == L2RW_DEVICE_CPU,
          "cpu net not on the CPU table");
    l2rw_net_free(n);
    n = NULL;
    CHECK_OK(l2rw_net_create_on(&n, "mlp:8", 1, 4, 4, 3, 2, 1, NULL));
    CHECK(n && l2rw_net_params(n) != NULL, "dev NULL is not the CPU");
    l2rw_net_free(n);
    n = NULL;
    char why[256];
    if (l2rw_device_available(&cuda, why, sizeof why) == L2RW_OK ||
        strstr(l2rw_last_error(), "does not run networks yet")) {
        SKIP("a GPU is present: tests/test_cuda_kernels and "
             "scripts/gpu_check.sh cover nets on it");
        return;
    }
    char reason[512];
    snprintf(reason, sizeof reason, "%s", l2rw_last_error());
    l2rw_status s = l2rw_net_create_on(&n, "mlp:8", 1, 4, 4, 3, 2, 1, &cuda);
    CHECK(s == L2RW_ERR_UNSUPPORTED && n == NULL,
          "cuda without a GPU: %s", l2rw_strerror(s));
    CHECK(strstr(reason, l2rw_last_error()) || strstr(l2rw_last_error(),
                                                      reason),
          "reason '%s', probe '%s'", l2rw_last_error(), reason);
    l2rw_net_free(n);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/l2rw-test-dev-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "cannot create a temporary directory in %s", tmpdir);
        return CHECK_DONE("test_device_net");
    }
    RUN(test_checker);
    RUN(test_mlp);
    RUN(test_lenet);
    RUN(test_resnet8);
    RUN(test_scores_each);
    RUN(test_host_view);
    RUN(test_copies);
    RUN(test_save_load);
    RUN(test_create_on);
    rmdir(tmpdir);
    CHECK(l2rw__checked_counts_get().live == 0, "%ld blocks not freed",
          l2rw__checked_counts_get().live);
    return CHECK_DONE("test_device_net");
}
