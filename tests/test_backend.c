/* The back-end table (src/engine/backend.h) and its CPU instance: every
 * member is filled, the kernels are kernels.c's own functions (so the CPU
 * back end computes exactly what the engine computed before the table),
 * the memory calls keep their contract (zeroed, overflow-checked, round
 * trips), and the ops added with the table (2-D copy, eval statistics and
 * running averages of batch norm, the nonzero test) against plain loops,
 * bit for bit where the formula is the same float expression; and a net
 * built on a table that counts its memory calls: every buffer from the
 * table and back to it, no allocation in a step, one upload of the batch
 * and one of the labels and one of the weights, one download of the
 * losses and one of u, and results bit for bit those of the CPU table. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "common.h"
#include "graph.h"
#include "kernels.h"
#include "l2rw.h"
#include "loss.h"
#include "net_internal.h"

static const l2rw__backend *const be = &l2rw__backend_cpu;

static void test_table_complete(void)
{
    CHECK(be->name && strcmp(be->name, "cpu") == 0, "name %s",
          be->name ? be->name : "(null)");
#define FILLED(m) CHECK(be->m != NULL, "member %s is NULL", #m)
    FILLED(alloc); FILLED(dealloc); FILLED(upload); FILLED(download);
    FILLED(copy_dev); FILLED(zero); FILLED(sync);
    FILLED(gemm); FILLED(copy); FILLED(add); FILLED(scale_rows);
    FILLED(scale); FILLED(relu_fwd); FILLED(relu_mask); FILLED(mul);
    FILLED(dropout_mask); FILLED(bias_add); FILLED(bias_grad);
    FILLED(conv_ws); FILLED(conv_fwd); FILLED(conv_bwd);
    FILLED(conv_bwd_each); FILLED(maxpool_fwd); FILLED(maxpool_gather);
    FILLED(maxpool_bwd); FILLED(avgpool_fwd); FILLED(avgpool_bwd);
    FILLED(dot); FILLED(bn_stats); FILLED(bn_stats_norm); FILLED(bn_norm);
    FILLED(bn_tangent_train); FILLED(bn_tangent_eval); FILLED(bn_bwd);
    FILLED(copy_2d); FILLED(bn_eval_stats); FILLED(bn_running);
    FILLED(any_nonzero); FILLED(conv_slices);
    FILLED(loss_eval); FILLED(sgd_update); FILLED(adamw_update);
    FILLED(sumsq);
#undef FILLED
    CHECK(be->host == 1, "the CPU back end's memory is the host's");
}

/* The CPU table points at kernels.c's functions, not at copies. */
static void test_cpu_is_kernels(void)
{
#define SAME(m) CHECK(be->m == l2rw__##m, "member %s is not l2rw__%s", #m, #m)
    SAME(gemm); SAME(copy); SAME(add); SAME(scale_rows); SAME(scale);
    SAME(relu_fwd); SAME(relu_mask); SAME(mul); SAME(dropout_mask);
    SAME(bias_add); SAME(bias_grad); SAME(conv_ws); SAME(conv_fwd);
    SAME(conv_bwd); SAME(conv_bwd_each); SAME(maxpool_fwd);
    SAME(maxpool_gather); SAME(maxpool_bwd); SAME(avgpool_fwd);
    SAME(avgpool_bwd); SAME(dot); SAME(bn_stats); SAME(bn_stats_norm);
    SAME(bn_norm); SAME(bn_tangent_train); SAME(bn_tangent_eval);
    SAME(bn_bwd); SAME(loss_eval); SAME(sgd_update); SAME(adamw_update);
    SAME(sumsq);
#undef SAME
    CHECK(be->conv_slices() >= l2rw_get_threads(), "conv_slices %d < %d "
          "threads", be->conv_slices(), l2rw_get_threads());
}

static void test_memory(void)
{
    enum { N = 1000 };
    float *d = be->alloc(N, sizeof(float));
    float *e = be->alloc(N, sizeof(float));
    float host[N], back[N];
    CHECK(d && e, "alloc of %d floats failed", N);
    if (!d || !e) goto done;
    CHECK(((uintptr_t)d & 63) == 0, "alloc not 64-byte aligned");
    int zeros = 1;
    for (int i = 0; i < N; i++) zeros &= d[i] == 0.0f;
    CHECK(zeros, "alloc is not zeroed");
    for (int i = 0; i < N; i++) host[i] = (float)i - 0.5f;
    be->upload(d, host, sizeof host);
    be->copy_dev(e, d, sizeof host);
    memset(back, 0, sizeof back);
    be->download(back, e, sizeof back);
    CHECK(memcmp(back, host, sizeof host) == 0, "upload/copy/download "
          "round trip differs");
    be->zero(e + 10, 20 * sizeof(float));
    be->download(back, e, sizeof back);
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= back[i] == (i >= 10 && i < 30 ? 0.0f : host[i]);
    CHECK(ok, "zero cleared the wrong range");
    CHECK(be->sync() == L2RW_OK, "sync failed");
    void *z = be->alloc(0, sizeof(float));
    CHECK(z != NULL, "alloc of 0 floats gave NULL");
    be->dealloc(z);
    CHECK(be->alloc(SIZE_MAX / 2, sizeof(float)) == NULL,
          "an overflowing alloc did not fail");
    be->dealloc(NULL);
done:
    be->dealloc(d);
    be->dealloc(e);
}

static void test_copy_2d(void)
{
    enum { ROWS = 7, COLS = 5, LDS = 9, LDD = 12 };
    float src[ROWS * LDS], dst[ROWS * LDD];
    for (int i = 0; i < ROWS * LDS; i++) src[i] = (float)i;
    for (int i = 0; i < ROWS * LDD; i++) dst[i] = -1.0f;
    be->copy_2d(dst + 3, LDD, src + 2, LDS, ROWS, COLS);
    int ok = 1;
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < LDD; j++) {
            float want = j >= 3 && j < 3 + COLS
                             ? src[r * LDS + 2 + (j - 3)]
                             : -1.0f;
            ok &= dst[r * LDD + j] == want;
        }
    CHECK(ok, "copy_2d wrote wrong values or outside its rows");
}

static void test_bn_ops(void)
{
    enum { C = 19 };
    float rmean[C], rvar[C], mean[C], var[C], istd[C];
    float rm2[C], rv2[C], bm[C], bv[C];
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 7);
    for (int c = 0; c < C; c++) {
        rmean[c] = (float)l2rw_rng_normal(&rng);
        rvar[c] = (float)(0.1 + l2rw_rng_uniform(&rng));
        bm[c] = (float)l2rw_rng_normal(&rng);
        bv[c] = (float)(0.1 + l2rw_rng_uniform(&rng));
    }
    be->bn_eval_stats(mean, var, istd, rmean, rvar, 1e-5f, C);
    int ok = 1;
    for (int c = 0; c < C; c++)
        ok &= mean[c] == rmean[c] && var[c] == rvar[c] &&
              istd[c] == 1.0f / sqrtf(rvar[c] + 1e-5f);
    CHECK(ok, "bn_eval_stats differs from the running statistics");
    memcpy(rm2, rmean, sizeof rm2);
    memcpy(rv2, rvar, sizeof rv2);
    const float unbias = 50.0f / 49.0f, mom = 0.1f;
    be->bn_running(rm2, rv2, bm, bv, mom, unbias, C);
    ok = 1;
    for (int c = 0; c < C; c++) {
        ok &= rm2[c] == (1.0f - mom) * rmean[c] + mom * bm[c];
        ok &= rv2[c] == (1.0f - mom) * rvar[c] + mom * bv[c] * unbias;
        ok &= rm2[c] != rmean[c]; /* it moved */
    }
    CHECK(ok, "bn_running differs from momentum 0.1 averaging");
}

static void test_any_nonzero(void)
{
    float x[33] = {0};
    CHECK(be->any_nonzero(x, 33) == 0, "zeros reported nonzero");
    x[20] = -0.0f;
    CHECK(be->any_nonzero(x, 33) == 0, "-0 reported nonzero");
    x[32] = 1e-30f;
    CHECK(be->any_nonzero(x, 33) == 1, "a tiny last value missed");
    CHECK(be->any_nonzero(x, 32) == 0, "read past len");
    x[0] = NAN;
    CHECK(be->any_nonzero(x, 1) == 1, "NaN counted as zero");
    CHECK(be->any_nonzero(x, 0) == 0, "empty range reported nonzero");
}

/* ---------------------------------------------- a net on a counting table */

/* The CPU table with its memory calls counted: a net built on it must get
 * every buffer from it and give every one back, and a step may move only
 * the batch in (one upload per forward, one for the labels of the loss,
 * one for the weights of a backward) and the losses and u out. */
static l2rw__backend counting;
static long live_blocks, n_allocs, n_uploads, n_downloads;

static void *count_alloc(size_t n, size_t size)
{
    void *p = l2rw__backend_cpu.alloc(n, size);
    if (p) live_blocks++, n_allocs++;
    return p;
}
static void count_dealloc(void *p)
{
    if (p) live_blocks--;
    l2rw__backend_cpu.dealloc(p);
}
static void count_upload(void *dst, const void *src, size_t bytes)
{
    n_uploads++;
    l2rw__backend_cpu.upload(dst, src, bytes);
}
static void count_download(void *dst, const void *src, size_t bytes)
{
    n_downloads++;
    l2rw__backend_cpu.download(dst, src, bytes);
}

enum { NC = 2, NH = 8, NW = 8, NK = 4, NB = 5 };

/* conv-bn-relu-pool, a residual conv-bn, dropout, dense: every layer. */
static l2rw_status build_net(const l2rw__backend *b, l2rw_net **net)
{
    l2rw_graph *g;
    L2RW_TRY(l2rw__graph_new(&g, NC, NH, NW));
    int c1 = l2rw__g_conv(g, 0, 3, 3, 1, 1, 1);
    int p1 = l2rw__g_maxpool(g, l2rw__g_relu(g, l2rw__g_batchnorm(g, c1)),
                             2, 2);
    int c2 = l2rw__g_batchnorm(g, l2rw__g_conv(g, p1, 3, 3, 1, 1, 0));
    int r = l2rw__g_relu(g, l2rw__g_add(g, c2, p1));
    int d = l2rw__g_dropout(g, r, 0.25f);
    int a = l2rw__g_avgpool_global(g, r);
    int o = l2rw__g_add(g, l2rw__g_dense(g, l2rw__g_flatten(g, d), NK),
                        l2rw__g_dense(g, a, NK));
    return l2rw__graph_compile_on(g, o, "test-backend", NK, NB, 9, b, net);
}

static int same_floats(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

static void test_net_on_table(void)
{
    counting = l2rw__backend_cpu;
    counting.name = "counting";
    counting.host = 0; /* parameters initialised by staging and upload */
    counting.alloc = count_alloc;
    counting.dealloc = count_dealloc;
    counting.upload = count_upload;
    counting.download = count_download;
    l2rw_net *ref = NULL, *net = NULL;
    float *buf = NULL;
    CHECK_OK(build_net(&l2rw__backend_cpu, &ref));
    CHECK_OK(build_net(&counting, &net));
    if (!ref || !net) goto done;
    CHECK(n_allocs > 10 && live_blocks == n_allocs, "%ld buffers from the "
          "table, %ld live", n_allocs, live_blocks);
    const size_t np = l2rw_net_num_params(net);
    CHECK(l2rw_net_params(net) == NULL && l2rw_net_grads(net) == NULL &&
          l2rw_net_tangents(net) == NULL && l2rw_net_state(net) == NULL,
          "host pointers of a net whose back end is not the host's");
    buf = calloc(np, sizeof *buf);
    CHECK(buf != NULL, "out of memory");
    if (!buf) goto done;
    CHECK_OK(l2rw_net_read(net, L2RW_NET_PARAMS, 0, np, buf));
    CHECK(same_floats(l2rw_net_params(ref), buf, np),
          "initial parameters differ between the two tables");
    float x[NB * NC * NH * NW], w[NB] = {0.1f, 0.3f, 0.0f, 0.4f, 0.2f};
    float l1[NB], l2[NB], u1[NB], u2[NB];
    int32_t y[NB] = {0, 1, 2, 3, 1};
    l2rw_rng rng;
    l2rw_rng_seed(&rng, 3);
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = (float)l2rw_rng_normal(&rng);
    for (size_t i = 0; i < np; i++)
        l2rw_net_tangents(ref)[i] = (float)l2rw_rng_normal(&rng);
    CHECK_OK(l2rw_net_write(net, L2RW_NET_TANGENTS, 0, np,
                            l2rw_net_tangents(ref)));
    l2rw_net *nets[2] = {ref, net};
    float *ls[2] = {l1, l2}, *us[2] = {u1, u2};
    long allocs = n_allocs, up = n_uploads, down = n_downloads;
    for (int k = 0; k < 2; k++) {
        l2rw_net_set_dropout_key(nets[k], 77);
        CHECK_OK(l2rw_net_forward(nets[k], x, NB, L2RW_MODE_TRAIN, 1));
        CHECK_OK(l2rw_net_loss(nets[k], y, NULL, ls[k], us[k]));
        CHECK_OK(l2rw_net_backward(nets[k], w));
    }
    CHECK(n_allocs == allocs, "%ld allocations in a step", n_allocs - allocs);
    CHECK(n_uploads - up == 3 && n_downloads - down == 2, "a step made %ld "
          "uploads, %ld downloads (want 3 and 2)", n_uploads - up,
          n_downloads - down);
    CHECK(same_floats(l1, l2, NB) && same_floats(u1, u2, NB),
          "losses or u differ between the two tables");
    CHECK_OK(l2rw_net_read(net, L2RW_NET_GRADS, 0, np, buf));
    CHECK(same_floats(l2rw_net_grads(ref), buf, np),
          "gradients differ between the two tables");
    const size_t ns = l2rw_net_num_state(net);
    float *st = calloc(ns ? ns : 1, sizeof *st);
    CHECK(st != NULL, "out of memory");
    if (st) CHECK_OK(l2rw_net_read(net, L2RW_NET_STATE, 0, ns, st));
    CHECK(st && same_floats(l2rw_net_state(ref), st, ns),
          "running statistics differ between the two tables");
    free(st);
done:
    free(buf);
    l2rw_net_free(ref);
    l2rw_net_free(net);
    CHECK(live_blocks == 0, "%ld buffers not given back", live_blocks);
}

int main(void)
{
    RUN(test_table_complete);
    RUN(test_cpu_is_kernels);
    RUN(test_memory);
    RUN(test_copy_2d);
    RUN(test_bn_ops);
    RUN(test_any_nonzero);
    RUN(test_net_on_table);
    return CHECK_DONE("test_backend");
}
