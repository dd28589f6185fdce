/* The CUDA back end: the kernels of kernels.h on device memory, the
 * per-example losses with their u_i, the L2RW weight normalisation and the
 * optimizer updates; plus the device context and memory helpers. A C
 * header (C11 and C++), no CUDA types in it.
 *
 * Shapes and meanings are those of the CPU functions of the same name
 * (kernels.h, loss.h, optim.c, reweight.c): l2rw__cu_X(args) does what
 * l2rw__X(args) does, every float / int pointer being device memory.
 *
 * Only l2rw__cuda_probe, l2rw__cu_init and l2rw__cu_shutdown exist in a
 * build without CUDA (src/cuda/cuda_stub.c: the probe says "l2rw was
 * built without CUDA"); the rest is declared, and defined, only when
 * L2RW_HAVE_CUDA is (the Makefile defines it when it builds src/cuda/).
 *
 * Execution model. One context per device (cuBLAS handle, one stream, a
 * workspace, a small scratch area), made by l2rw__cu_init; the last
 * initialised (or re-initialised) device is the current one, and every
 * call below works on it. One host thread drives a context at a time.
 * Kernel calls are asynchronous (enqueued on the context's stream, in
 * order) and return nothing: a CUDA error is kept (the first one) and
 * reported by the next l2rw__cu_sync. Calls that return a value to the
 * host (l2rw__cu_dot, l2rw__cu_sumsq, l2rw__cu_loss_eval,
 * l2rw__cu_weights_from_scores, l2rw__cu_download) synchronise.
 * No call allocates device memory except l2rw__cu_init, l2rw__cu_reserve
 * and l2rw__cu_alloc.
 *
 * Determinism: every reduction has a fixed order (no atomics where the
 * order matters) and cuBLAS runs with its atomics off on one stream, so
 * the same inputs, shapes and workspace size on the same GPU give the
 * same bits, run to run.
 *
 * CPU against GPU (checked by tests/test_cuda_kernels.c):
 *  - element-wise kernels, dropout masks, pooling, bias, batch norm, the
 *    weight normalisation and the optimizer updates do the CPU's float
 *    operations in the CPU's order (device code is compiled with
 *    --fmad=false, the host's C11 mode does not contract either; the
 *    channel sums use the CPU's 16 float lanes combined in double):
 *    expected bit-identical; the tests allow a few units in the last
 *    place on the reductions and report how many values differ at all.
 *  - GEMM and convolution (cuBLAS against OpenBLAS, different summation
 *    order): |gpu - cpu| <= 2 (k + 4) 2^-24 sum_l |a_il b_lj| for a
 *    k-term product (the standard float error bound of both sides).
 *  - l2rw__cu_dot / l2rw__cu_sumsq: the GPU sums in double, the CPU's dot
 *    in 16 float lanes: |gpu - cpu| <= (len/16 + 2) 2^-24 sum |a_i b_i|.
 *  - losses: the CPU's double arithmetic, but CUDA's exp, log and pow
 *    (within 2 double ulps of glibc's): a float result differs in its
 *    last place at most, rarely. */
#ifndef L2RW_CUDA_BACKEND_H
#define L2RW_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* common.h and backend.h have no C++ guards of their own: C linkage for
 * their declarations when a .cu file includes this header. */
#ifdef __cplusplus
extern "C" {
#endif

#include "backend.h" /* l2rw__conv_shape, l2rw__backend */
#include "common.h"

/* 1 when device `device` can run l2rw's CUDA code, with a one-line
 * description of it in why; 0 with the reason: "l2rw was built without
 * CUDA", "no CUDA driver (cudaErrorInsufficientDriver: ...)", "no CUDA
 * device", "device N not present (K devices)", "device N is compute
 * capability X.Y; l2rw's CUDA code needs 9.0 or newer", or "CUDA runtime
 * error: NAME (text)". why may be NULL. */
int l2rw__cuda_probe(int device, char *why, size_t why_size);

/* Makes (or re-selects) the context of a device and makes it current: a
 * stream, a cuBLAS handle (FP32 math, its own 32 MiB workspace), the
 * workspace (L2RW_CU_WS_INIT bytes) and the scratch area. On failure the
 * probe's reason (or the CUDA error) is in why and l2rw_last_error();
 * L2RW_ERR_UNSUPPORTED (no usable device) or L2RW_ERR_NOMEM. */
l2rw_status l2rw__cu_init(int device, char *why, size_t why_size);
/* Frees every context (waits for their work first). */
void l2rw__cu_shutdown(void);

#ifdef L2RW_HAVE_CUDA

enum {
    L2RW_CU_WS_INIT = 16 << 20, /* bytes of the context's workspace at init */
    L2RW_CU_CONV_CHUNK = 128    /* examples per chunk of a net's conv
                                   workspace (l2rw__cu_conv_slices) */
};

/* The back-end table of src/engine/backend.h for the current context
 * (src/cuda/backend_cuda.c). */
extern const l2rw__backend l2rw__backend_cuda;

/* ------------------------------------------------------ context, memory */
/* Waits for the current context's work; returns the first CUDA error
 * since the last sync (L2RW_ERR_UNSUPPORTED, L2RW_ERR_NOMEM for memory,
 * with the detail in l2rw_last_error()), and clears it. */
l2rw_status l2rw__cu_sync(void);
/* Grows the workspace to at least `bytes` (never shrinks it). */
l2rw_status l2rw__cu_reserve(size_t bytes);
size_t l2rw__cu_workspace_bytes(void);
/* TF32 for the GEMMs: l2rw_set_tf32 (l2rw.h), read at every product. */
/* The context's cudaStream_t, for callers that capture graphs. */
void *l2rw__cu_stream(void);

/* The same in the back-end table's forms (backend.h's contract): alloc
 * of n * size zeroed bytes, NULL when they do not fit (n * size == 0 is
 * still a valid block); transfers whose errors wait for l2rw__cu_sync. */
void *l2rw__cu_be_alloc(size_t n, size_t size);
void l2rw__cu_be_upload(void *dst, const void *src, size_t bytes);
void l2rw__cu_be_download(void *dst, const void *src, size_t bytes);
void l2rw__cu_be_copy(void *dst, const void *src, size_t bytes);
void l2rw__cu_be_zero(void *dst, size_t bytes);

/* Zeroed device memory (bytes 0: *p = NULL). */
l2rw_status l2rw__cu_alloc(void **p, size_t bytes);
void l2rw__cu_free(void *p);
/* Host <-> device copies; they return when the host buffer may be
 * reused (upload) or holds the data (download). */
l2rw_status l2rw__cu_upload(void *dst, const void *src, size_t bytes);
l2rw_status l2rw__cu_download(void *dst, const void *src, size_t bytes);
void l2rw__cu_memset(void *p, int byte, size_t bytes);

/* ------------------------------------------------ the kernels of kernels.h */
void l2rw__cu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb,
                   float beta, float *c, int ldc);
void l2rw__cu_copy(float *dst, const float *src, size_t len, int acc);
void l2rw__cu_add(float *y, const float *a, const float *b, size_t len);
void l2rw__cu_scale_rows(float *dst, const float *src, const float *s,
                         int rows, size_t cols);
void l2rw__cu_scale(float *dst, const float *src, float a, size_t len,
                    int acc);
void l2rw__cu_relu_fwd(float *y, const float *x, size_t len);
void l2rw__cu_relu_mask(float *dst, const float *src, const float *x,
                        size_t len, int acc);
void l2rw__cu_mul(float *dst, const float *src, const float *mask, size_t len,
                  int acc);
/* The CPU's mask bit for bit (same hash). */
void l2rw__cu_dropout_mask(float *mask, uint64_t key, uint64_t layer, int n,
                           size_t units, float p);
void l2rw__cu_bias_add(float *y, const float *b, int n, int C, size_t P);
void l2rw__cu_bias_grad(float *db, const float *dy, int n, int C, size_t P,
                        int acc);

/* Convolutions: im2col into a workspace and cuBLAS, the batch in chunks.
 * The workspace is ws, of l2rw__cu_conv_ws(s) floats on the device (the
 * engine's: chunks of s->max_threads examples, which the net sets to
 * l2rw__cu_conv_slices(), or to its largest batch for a single chunk),
 * or, when ws is NULL, the context's (chunks of as many examples as it
 * holds; l2rw__cu_reserve(l2rw__cu_conv_ws_bytes(s, n)) bytes do n
 * examples at once). A workspace too small for one example is an error
 * (kept for l2rw__cu_sync), and the call does nothing. */
size_t l2rw__cu_conv_ws(const l2rw__conv_shape *s);
int l2rw__cu_conv_slices(void);
size_t l2rw__cu_conv_ws_bytes(const l2rw__conv_shape *s, int n);
void l2rw__cu_conv_fwd(const l2rw__conv_shape *s, int n, float *y, float *ty,
                       const float *x, const float *tx, const float *W,
                       const float *b, const float *tW, const float *tb,
                       float *ws);
void l2rw__cu_conv_bwd(const l2rw__conv_shape *s, int n, float *dW, float *db,
                       float *dx, const float *dy, const float *x,
                       const float *W, int acc, float *ws);
void l2rw__cu_conv_bwd_each(const l2rw__conv_shape *s, int n, float *G,
                            size_t ldg, int bias, float *dx, const float *dy,
                            const float *x, const float *W, int acc,
                            float *ws);

void l2rw__cu_maxpool_fwd(float *y, int32_t *idx, const float *x, int n, int c,
                          int h, int w, int k, int s, int oh, int ow);
void l2rw__cu_maxpool_gather(float *ty, const float *tx, const int32_t *idx,
                             int nc, size_t P, size_t Q);
void l2rw__cu_maxpool_bwd(float *dx, const float *dy, const int32_t *idx,
                          int nc, size_t P, size_t Q, int acc);
void l2rw__cu_avgpool_fwd(float *y, const float *x, int nc, size_t P);
void l2rw__cu_avgpool_bwd(float *dx, const float *dy, int nc, size_t P,
                          int acc);

/* sum a[j] b[j] in double (synchronises; NaN after a CUDA error). */
double l2rw__cu_dot(const float *a, const float *b, size_t len);
/* The same sum written to device memory *out, without synchronising. */
void l2rw__cu_dot_dev(const float *a, const float *b, size_t len, double *out);

void l2rw__cu_bn_stats(float *mean, float *var, const float *x, int n, int C,
                       size_t P);
void l2rw__cu_bn_stats_norm(float *y, float *xhat, float *mean, float *var,
                            float *istd, const float *x, const float *g,
                            const float *b, float eps, int n, int C, size_t P);
void l2rw__cu_bn_norm(float *y, float *xhat, const float *x, const float *mean,
                      const float *istd, const float *g, const float *b, int n,
                      int C, size_t P);
void l2rw__cu_bn_tangent_train(float *ty, const float *tx, const float *xhat,
                               const float *istd, const float *g,
                               const float *tg, const float *tb, int n, int C,
                               size_t P);
void l2rw__cu_bn_tangent_eval(float *ty, const float *tx, const float *xhat,
                              const float *istd, const float *g,
                              const float *tg, const float *tb, int n, int C,
                              size_t P);
void l2rw__cu_bn_bwd(float *dx, float *dg, float *db, const float *dy,
                     const float *xhat, const float *istd, const float *g,
                     int n, int C, size_t P, int train, int acc);

/* The back-end table's other ops (backend.h; the CPU's in kernels.c). */
void l2rw__cu_copy_2d(float *dst, size_t ldd, const float *src, size_t lds,
                      int rows, size_t cols);
void l2rw__cu_bn_eval_stats(float *mean, float *var, float *istd,
                            const float *rmean, const float *rvar, float eps,
                            int C);
void l2rw__cu_bn_running(float *rmean, float *rvar, const float *mean,
                         const float *var, float mom, float unbias, int C);
/* 1 when some x[i] != 0 (NaN included), else 0 (synchronises). */
int l2rw__cu_any_nonzero(const float *x, size_t len);

/* ------------------------------------------------------------ the loss */
/* l2rw__loss_eval on the device (cfg on the host; z, zdot, y, loss, dz, u
 * on the device): the same values, the same checks and messages (labels,
 * then finite logits, then finite losses). u is written whenever zdot
 * and u are given. Synchronises once to read the checks; on an error the
 * outputs are unspecified. */
l2rw_status l2rw__cu_loss_eval(const l2rw_loss *cfg, const float *z,
                               const float *zdot, const int32_t *y, int n,
                               int k, float *loss, float *dz, float *u);
/* The same in two halves: enqueue (checks the sizes and cfg only) ... */
l2rw_status l2rw__cu_loss_enqueue(const l2rw_loss *cfg, const float *z,
                                  const float *zdot, const int32_t *y, int n,
                                  int k, float *loss, float *dz, float *u);
/* ... and, later, the data checks of the last enqueue (synchronises). */
l2rw_status l2rw__cu_loss_check(const float *z, const int32_t *y, int n,
                                int k);

/* ------------------------------------------------- L2RW weights, optimizer */
/* w_i = max(s_i, 0) / sum_k max(s_k, 0), the sum in double in index order
 * (bit-identical to l2rw_weights_normalise); all s_i <= 0 or a non-finite
 * s gives w = 0. info (device, may be NULL): info[0] = number of positive
 * s_i, info[1] = first example with a non-finite s or -1. Asynchronous. */
void l2rw__cu_weights_normalise(const float *s, int n, float *w, int *info);
/* l2rw_weights_from_scores on the device (synchronises): the same status
 * and messages; *positive (host, may be NULL) as there. */
l2rw_status l2rw__cu_weights_from_scores(const float *s, int n, float *w,
                                         int *positive);

/* SGD as optim.c: gi = g (scale == 1) or g scale; v = mu v + (gi + wd p);
 * p -= lr v. *bad (device, may be NULL) is set to 1 when a parameter
 * became non-finite (the caller zeroes it). lr from l2rw_sgd_lr. */
void l2rw__cu_sgd_update(float *p, float *v, const float *g, size_t n,
                         float lr, float momentum, float wd, float scale,
                         int *bad);
/* AdamW as optim.c, with the host's bias corrections bc1 = 1 / (1 -
 * b1^t), bc2 = 1 / (1 - b2^t) (float, computed in double). */
void l2rw__cu_adamw_update(float *p, float *m, float *v, const float *g,
                           size_t n, float lr, float b1, float b2, float eps,
                           float wd, float bc1, float bc2, float scale,
                           int *bad);
/* sum g_i^2 in double (products in double, as optim.c's norm):
 * synchronises; NaN after a CUDA error. */
double l2rw__cu_sumsq(const float *g, size_t n);

/* The data kernels (cu_data.cu), as kernels_data.c's: free device memory
 * (cudaMemGetInfo; 0 when it cannot say), batch gather of rows idx [n]
 * (device) of src [rows, dim], and the crop-flip of x [n, c, h, w] by
 * draws [n, 3] (device). */
size_t l2rw__cu_mem_free(void);
/* u[i] += dot(a + i lda, b + i ldb, len) for i < n, in double on the
 * device (u on the host): one transfer per 1,024 rows (cu_reduce.cu). */
void l2rw__cu_dots_acc(double *u, const float *a, size_t lda, const float *b,
                       size_t ldb, int n, size_t len);
void l2rw__cu_gather_rows(float *dst, const float *src, size_t rows,
                          const int32_t *idx, int n, size_t dim);
void l2rw__cu_crop_flip(float *out, const float *x, const int32_t *draws,
                        int n, int c, int h, int w, int pad);

#endif /* L2RW_HAVE_CUDA */

#ifdef __cplusplus
}
#endif

#endif
