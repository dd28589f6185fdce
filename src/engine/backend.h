/* The back-end interface: one table of functions per device (ggml-style),
 * through which the layers (ps->be) and the net (net->be) do every
 * allocation, transfer and loop over a tensor. A back end lives in its own
 * folder: src/cpu/ (OpenBLAS and OpenMP, l2rw__backend_cpu; and, for the
 * tests, l2rw__backend_checked of backend_checked.h: the CPU's kernels on
 * memory the host cannot touch, every pointer argument checked),
 * src/cuda/ (l2rw__backend_cuda).
 * The kernels keep the argument lists of src/cpu/kernels.h, where each
 * one's formula is documented; shapes are NCHW, "P" is h*w of a plane,
 * and a flag `acc` selects dst += ... (1) or dst = ... (0).
 *
 * The contract a back end meets:
 * - Memory. Every pointer passed to a kernel or to copy_dev/zero is the
 *   back end's own memory, from its alloc (or an offset into it); the host
 *   reaches it only through upload/download. alloc returns zeroed memory
 *   of n * size bytes, aligned for any kernel (overflow-checked: NULL
 *   when it does not fit; n * size == 0 still gives a valid block), and
 *   dealloc(NULL) does nothing. Host values by design: the scalars of a
 *   call (alpha, eps, sizes, keys) and the shape structs.
 * - Order. Calls act as if run one after another in call order; a back
 *   end may queue them (a device stream) as long as download, dot,
 *   any_nonzero, loss_eval and sumsq (the calls that hand values to the
 *   host) return only after everything queued before them has
 *   finished. sync waits for all queued work and returns the first
 *   error since the last sync (L2RW_OK on the CPU, where nothing can
 *   fail after alloc). The net syncs in its loss and reads, the
 *   optimizer in its step: errors of a pass surface there.
 * - Determinism. For a fixed device and thread count the results are
 *   bit-identical from run to run: fixed-order reductions, no atomics
 *   where the order of additions matters, deterministic library
 *   algorithms. Different back ends agree to rounding only.
 * - No allocation inside a pass: a kernel's scratch comes from the
 *   workspace the net allocates once (conv_ws sizes it); the net
 *   allocates every buffer at compile time.
 * - The kernels are pure functions of their arguments (and, on the CPU,
 *   of the thread count l2rw_set_threads gave); none prints or exits. */
#ifndef L2RW_BACKEND_H
#define L2RW_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* Geometry of a 2-D convolution: x [n, ic, ih, iw], W [oc, ic, k, k] ->
 * y [n, oc, oh, ow], zero padding `pad`. K = ic k k, P = oh ow. */
typedef struct {
    int ic, ih, iw, oc, k, stride, pad, oh, ow;
    int max_threads; /* parallel slices the workspace was sized for
                        (conv_slices of the back end) */
} l2rw__conv_shape;

typedef struct l2rw__backend {
    const char *name; /* "cpu", "cuda" */
    /* 1 when the back end's memory is the host's (the CPU): the net then
     * lets the layers initialise parameters in place. */
    int host;

    /* ---------------------------------------------------------- memory */
    void *(*alloc)(size_t n, size_t size);  /* zeroed; NULL: no memory */
    void (*dealloc)(void *p);
    void (*upload)(void *dst, const void *src_host, size_t bytes);
    void (*download)(void *dst_host, const void *src, size_t bytes);
    void (*copy_dev)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *dst, size_t bytes);
    l2rw_status (*sync)(void);

    /* ---------------------------------------------- kernels (kernels.h) */
    void (*gemm)(int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
    void (*copy)(float *dst, const float *src, size_t len, int acc);
    void (*add)(float *y, const float *a, const float *b, size_t len);
    void (*scale_rows)(float *dst, const float *src, const float *s,
                       int rows, size_t cols);
    void (*scale)(float *dst, const float *src, float a, size_t len,
                  int acc);
    void (*relu_fwd)(float *y, const float *x, size_t len);
    void (*relu_mask)(float *dst, const float *src, const float *x,
                      size_t len, int acc);
    void (*mul)(float *dst, const float *src, const float *mask, size_t len,
                int acc);
    void (*dropout_mask)(float *mask, uint64_t key, uint64_t layer, int n,
                         size_t units, float p);
    void (*bias_add)(float *y, const float *b, int n, int C, size_t P);
    void (*bias_grad)(float *db, const float *dy, int n, int C, size_t P,
                      int acc);
    size_t (*conv_ws)(const l2rw__conv_shape *s);
    void (*conv_fwd)(const l2rw__conv_shape *s, int n, float *y, float *ty,
                     const float *x, const float *tx, const float *W,
                     const float *b, const float *tW, const float *tb,
                     float *ws);
    void (*conv_bwd)(const l2rw__conv_shape *s, int n, float *dW, float *db,
                     float *dx, const float *dy, const float *x,
                     const float *W, int acc, float *ws);
    void (*conv_bwd_each)(const l2rw__conv_shape *s, int n, float *G,
                          size_t ldg, int bias, float *dx, const float *dy,
                          const float *x, const float *W, int acc,
                          float *ws);
    void (*maxpool_fwd)(float *y, int32_t *idx, const float *x, int n, int c,
                        int h, int w, int k, int s, int oh, int ow);
    void (*maxpool_gather)(float *ty, const float *tx, const int32_t *idx,
                           int nc, size_t P, size_t Q);
    void (*maxpool_bwd)(float *dx, const float *dy, const int32_t *idx,
                        int nc, size_t P, size_t Q, int acc);
    void (*avgpool_fwd)(float *y, const float *x, int nc, size_t P);
    void (*avgpool_bwd)(float *dx, const float *dy, int nc, size_t P,
                        int acc);
    double (*dot)(const float *a, const float *b, size_t len);
    void (*bn_stats)(float *mean, float *var, const float *x, int n, int C,
                     size_t P);
    void (*bn_stats_norm)(float *y, float *xhat, float *mean, float *var,
                          float *istd, const float *x, const float *g,
                          const float *b, float eps, int n, int C, size_t P);
    void (*bn_norm)(float *y, float *xhat, const float *x, const float *mean,
                    const float *istd, const float *g, const float *b, int n,
                    int C, size_t P);
    void (*bn_tangent_train)(float *ty, const float *tx, const float *xhat,
                             const float *istd, const float *g,
                             const float *tg, const float *tb, int n, int C,
                             size_t P);
    void (*bn_tangent_eval)(float *ty, const float *tx, const float *xhat,
                            const float *istd, const float *g,
                            const float *tg, const float *tb, int n, int C,
                            size_t P);
    void (*bn_bwd)(float *dx, float *dg, float *db, const float *dy,
                   const float *xhat, const float *istd, const float *g,
                   int n, int C, size_t P, int train, int acc);

    /* ------------------- the ops that keep loops out of layers and net */
    /* dst[r, 0:cols] = src[r, 0:cols] for rows r, row strides ldd and lds
     * floats (dense's [tx x] and [W tW] side by side). */
    void (*copy_2d)(float *dst, size_t ldd, const float *src, size_t lds,
                    int rows, size_t cols);
    /* Eval-mode batch norm: mean = rmean, var = rvar,
     * istd = 1 / sqrtf(var + eps), per channel. */
    void (*bn_eval_stats)(float *mean, float *var, float *istd,
                          const float *rmean, const float *rvar, float eps,
                          int C);
    /* Running averages: r = (1 - mom) r + mom batch, the variance's batch
     * value times unbias (m / (m - 1)). */
    void (*bn_running)(float *rmean, float *rvar, const float *mean,
                       const float *var, float mom, float unbias, int C);
    /* 1 when some x[i] != 0 (the net's zero-tangent test), else 0. */
    int (*any_nonzero)(const float *x, size_t len);
    /* Parallel slices a conv workspace holds (CPU: the OpenMP threads it
     * may use; a device: 1); read when the net is laid out. */
    int (*conv_slices)(void);

    /* ------------------------------------------- loss and optimizer */
    /* l2rw__loss_eval (loss.h) on back-end memory: logits z and their
     * tangent zdot [n, k], labels y [n] (int32), loss [n], dz [n, k],
     * u [n]; cfg on the host. zdot, loss, dz, u may be NULL as there.
     * Returns the checks' status (labels, then finite logits, then finite
     * losses, with loss.c's messages), so it waits for the queued work. */
    l2rw_status (*loss_eval)(const l2rw_loss *cfg, const float *z,
                             const float *zdot, const int32_t *y, int n,
                             int k, float *loss, float *dz, float *u);
    /* The optimizer updates of kernels.h (l2rw__sgd_update,
     * l2rw__adamw_update): p, v (m), g [n]; *bad (back-end memory, one
     * int, may be NULL) set to 1 when a parameter became NaN or Inf. */
    void (*sgd_update)(float *p, float *v, const float *g, size_t n,
                       float lr, float momentum, float wd, float scale,
                       int *bad);
    void (*adamw_update)(float *p, float *m, float *v, const float *g,
                         size_t n, float lr, float b1, float b2, float eps,
                         float wd, float bc1, float bc2, float scale,
                         int *bad);
    /* sum g_i^2 in double (the clipping norm's square), to the host. */
    double (*sumsq)(const float *g, size_t n);

    /* ------------------------------------------- data on the device
     * (train_data.c: a run's data sets uploaded once, batches gathered
     * and augmented where the net is). */
    /* Bytes that alloc could still give (the host: SIZE_MAX). */
    size_t (*mem_free)(void);
    /* dst [n, dim] = rows idx[i] of src [rows, dim]; idx [n] int32, every
     * entry in [0, rows) (the caller checks them on the host). */
    void (*gather_rows)(float *dst, const float *src, size_t rows,
                        const int32_t *idx, int n, size_t dim);
    /* The padded random crop and flip of l2rw_augment_crop_flip:
     * out [n, c, h, w] from x [n, c, h, w], example i moved by its draw
     * (dy, dx, flip) = draws[3i], draws[3i+1], draws[3i+2] (int32,
     * back-end memory; drawn on the host by l2rw__augment_draws). */
    void (*crop_flip)(float *out, const float *x, const int32_t *draws,
                      int n, int c, int h, int w, int pad);

    /* u[i] += dot(a + i lda, b + i ldb, len) for i < n (ldb 0: the same
     * b for every row), each dot as `dot` computes it; u on the host
     * (double [n]). The per-example L2RW scores: one transfer for the
     * batch instead of one per example. */
    void (*dots_acc)(double *u, const float *a, size_t lda, const float *b,
                     size_t ldb, int n, size_t len);
} l2rw__backend;

/* The CPU back end (src/cpu/backend_cpu.c). */
extern const l2rw__backend l2rw__backend_cpu;

#endif
