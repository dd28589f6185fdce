/* The arithmetic of the engine: every loop over a large array lives here.
 * GEMMs go through CBLAS (OpenBLAS) called serially from OpenMP threads,
 * which split the work by output blocks or by example. All loops use static
 * OpenMP schedules and fixed-order reductions, so a fixed thread count
 * gives bit-identical results. Images are NCHW; "P" is h*w of a plane.
 * A flag `acc` selects dst += ... (1) or dst = ... (0). */
#ifndef L2RW_KERNELS_H
#define L2RW_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h" /* l2rw__conv_shape */

/* Row-major C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C. Large
 * products are split over threads by blocks of rows or columns of C, each
 * block one serial BLAS call (OpenBLAS's own threads would compete with
 * OpenMP's for the same cores). */
void l2rw__gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta,
                float *c, int ldc);

/* ------------------------------------------------------------ element-wise */
void l2rw__copy(float *dst, const float *src, size_t len, int acc);
/* y = a + b. */
void l2rw__add(float *y, const float *a, const float *b, size_t len);
/* dst[i, :] = s[i] * src[i, :] for rows of `cols` floats. */
void l2rw__scale_rows(float *dst, const float *src, const float *s, int rows,
                      size_t cols);
/* dst = a * src (acc: dst += a * src). */
void l2rw__scale(float *dst, const float *src, float a, size_t len, int acc);
/* y = max(x, 0). */
void l2rw__relu_fwd(float *y, const float *x, size_t len);
/* dst (=|+=) src * [x > 0]: the tangent (src = tx) and the backward
 * (src = dy) of ReLU. */
void l2rw__relu_mask(float *dst, const float *src, const float *x, size_t len,
                     int acc);
/* dst = src * mask (acc: dst += src * mask). */
void l2rw__mul(float *dst, const float *src, const float *mask, size_t len,
               int acc);
/* Dropout mask of n rows of `units`: 0 or 1/(1-p); mask[i,j] is a pure
 * function of (key, layer, i, j). */
void l2rw__dropout_mask(float *mask, uint64_t key, uint64_t layer, int n,
                        size_t units, float p);

/* ---------------------------------------------------------------- bias */
/* y[i, c, :] += b[c] over n examples, C channels, planes of P floats. */
void l2rw__bias_add(float *y, const float *b, int n, int C, size_t P);
/* db[c] (=|+=) sum over i, p of dy[i, c, p]; fixed order. */
void l2rw__bias_grad(float *db, const float *dy, int n, int C, size_t P,
                     int acc);

/* ------------------------------------------------------------ conv */
/* Parallel slices of a conv workspace: the OpenMP threads a pass may
 * use (l2rw_get_threads, or the machine's processors when more). */
int l2rw__conv_slices(void);
/* Workspace floats for l2rw__conv_fwd / l2rw__conv_bwd. */
size_t l2rw__conv_ws(const l2rw__conv_shape *s);
/* Per example, in parallel over the batch (serial BLAS per thread):
 * y_i = W im2col(x_i) + b, and when ty != NULL the fused tangent
 * ty_i = [W tW] [im2col(tx_i); im2col(x_i)] + tb (tx NULL: zero input
 * tangent, ty_i = tW im2col(x_i) + tb). b, tb may be NULL. */
void l2rw__conv_fwd(const l2rw__conv_shape *s, int n, float *y, float *ty,
                    const float *x, const float *tx, const float *W,
                    const float *b, const float *tW, const float *tb,
                    float *ws);
/* dW = sum_i dy_i im2col(x_i)^T (per-thread partial sums added in thread
 * order), db = sum dy (if db), dx_i (=|+=) col2im(W^T dy_i) (if dx). */
void l2rw__conv_bwd(const l2rw__conv_shape *s, int n, float *dW, float *db,
                    float *dx, const float *dy, const float *x,
                    const float *W, int acc, float *ws);

/* Per-example weight gradients: G_i = dy_i im2col(x_i)^T [oc, K] at
 * G + i ldg, followed by db_i = sum_p dy_i [oc] when bias; dx as in
 * l2rw__conv_bwd. For nets whose examples do not couple (no batch norm in
 * training mode), where the L2RW step takes its scores and its weighted
 * gradient from them (net.c). */
void l2rw__conv_bwd_each(const l2rw__conv_shape *s, int n, float *G,
                         size_t ldg, int bias, float *dx, const float *dy,
                         const float *x, const float *W, int acc, float *ws);

/* ------------------------------------------------------------ pooling */
/* Max pooling k x k, stride s, no padding: x [n, c, h, w] -> y
 * [n, c, oh, ow]; idx holds the flat in-plane index of each maximum
 * (first maximum on ties). */
void l2rw__maxpool_fwd(float *y, int32_t *idx, const float *x, int n, int c,
                       int h, int w, int k, int s, int oh, int ow);
/* ty[o] = tx[idx[o]] (tangent), planes of P in, Q out. */
void l2rw__maxpool_gather(float *ty, const float *tx, const int32_t *idx,
                          int nc, size_t P, size_t Q);
/* dx (=|+=) scatter of dy to idx. */
void l2rw__maxpool_bwd(float *dx, const float *dy, const int32_t *idx, int nc,
                       size_t P, size_t Q, int acc);
/* y[i, c] = mean_p x[i, c, p] for nc = n*C planes. */
void l2rw__avgpool_fwd(float *y, const float *x, int nc, size_t P);
/* dx[i, c, p] (=|+=) dy[i, c] / P. */
void l2rw__avgpool_bwd(float *dx, const float *dy, int nc, size_t P, int acc);

/* sum a[j] b[j] in 16 float lanes, combined in double (fixed order). */
double l2rw__dot(const float *a, const float *b, size_t len);

/* --------------------------------------------------------- batch norm */
/* Batch statistics per channel over m = n*P values: mean[c] and biased
 * var[c]; each row summed in 16 float lanes, rows in double (fixed
 * order). */
void l2rw__bn_stats(float *mean, float *var, const float *x, int n, int C,
                    size_t P);
/* l2rw__bn_stats, istd[c] = 1 / sqrtf(var[c] + eps) and l2rw__bn_norm
 * (with xhat) in one pass per channel, while the channel's values are
 * still in cache; the same results. */
void l2rw__bn_stats_norm(float *y, float *xhat, float *mean, float *var,
                         float *istd, const float *x, const float *g,
                         const float *b, float eps, int n, int C, size_t P);
/* xhat = (x - mean[c]) * istd[c]; y = g[c] xhat + b[c]. xhat may be NULL. */
void l2rw__bn_norm(float *y, float *xhat, const float *x, const float *mean,
                   const float *istd, const float *g, const float *b, int n,
                   int C, size_t P);
/* Training-mode tangent through the batch statistics:
 * ty = tg xhat + g ((tx - mean(tx)) istd - xhat mean(xhat tx) istd) + tb.
 * tx NULL means a zero input tangent; tg/tb NULL mean zero. */
void l2rw__bn_tangent_train(float *ty, const float *tx, const float *xhat,
                            const float *istd, const float *g,
                            const float *tg, const float *tb, int n, int C,
                            size_t P);
/* Eval-mode tangent: ty = tg xhat + g istd tx + tb. */
void l2rw__bn_tangent_eval(float *ty, const float *tx, const float *xhat,
                           const float *istd, const float *g,
                           const float *tg, const float *tb, int n, int C,
                           size_t P);
/* Backward: dg[c] = sum dy xhat, db[c] = sum dy (overwrite); if dx:
 * train: dx (=|+=) g istd (dy - mean(dy) - xhat mean(dy xhat));
 * eval:  dx (=|+=) g istd dy. */
void l2rw__bn_bwd(float *dx, float *dg, float *db, const float *dy,
                  const float *xhat, const float *istd, const float *g, int n,
                  int C, size_t P, int train, int acc);

/* ------------------------------------------------ the back end's extras */
/* dst[r, 0:cols] = src[r, 0:cols], row strides ldd and lds floats. */
void l2rw__copy_2d(float *dst, size_t ldd, const float *src, size_t lds,
                   int rows, size_t cols);
/* mean = rmean, var = rvar, istd = 1 / sqrtf(var + eps) per channel. */
void l2rw__bn_eval_stats(float *mean, float *var, float *istd,
                         const float *rmean, const float *rvar, float eps,
                         int C);
/* rmean = (1 - mom) rmean + mom mean; rvar = (1 - mom) rvar
 * + mom var unbias. */
void l2rw__bn_running(float *rmean, float *rvar, const float *mean,
                      const float *var, float mom, float unbias, int C);
/* 1 when some x[i] != 0. */
int l2rw__any_nonzero(const float *x, size_t len);

/* ------------------------------------------------ optimizer (kernels_update.c)
 * Flat [n] buffers: parameters p, gradients g, state v (AdamW: m, v).
 * *bad (may be NULL) is set to 1 when a parameter became NaN or Inf and
 * left alone otherwise (the caller zeroes it). */
/* SGD: gi = g (scale == 1) or g scale; v = mu v + (gi + wd p);
 * p -= lr v. */
void l2rw__sgd_update(float *p, float *v, const float *g, size_t n, float lr,
                      float momentum, float wd, float scale, int *bad);
/* AdamW: gi = g scale; m = b1 m + (1 - b1) gi; v = b2 v + (1 - b2) gi^2;
 * p -= lr ((m bc1) / (sqrtf(v bc2) + eps) + wd p), the bias corrections
 * bc1 = 1 / (1 - b1^t), bc2 = 1 / (1 - b2^t) given. */
void l2rw__adamw_update(float *p, float *m, float *v, const float *g,
                        size_t n, float lr, float b1, float b2, float eps,
                        float wd, float bc1, float bc2, float scale,
                        int *bad);
/* u[i] += l2rw__dot(a + i lda, b + i ldb, len), i < n. */
void l2rw__dots_acc(double *u, const float *a, size_t lda, const float *b,
                    size_t ldb, int n, size_t len);

/* ------------------------------------------------ data (kernels_data.c) */
/* dst [n, dim] = rows idx[i] of src [*, dim] (indices already checked). */
void l2rw__gather_rows(float *dst, const float *src, const int32_t *idx,
                       int n, size_t dim);
/* One example of the crop-flip augmentation: out [c, h, w] [ch][y][x] =
 * in[ch][y + dy - pad][sx + dx - pad], sx = x or w-1-x (flip), 0
 * outside the image. */
void l2rw__crop_flip_one(float *out, const float *in, int c, int h, int w,
                         int pad, int dy, int dx, int flip);
/* l2rw__crop_flip_one over x [n, c, h, w] with draws [n, 3] (dy, dx,
 * flip), in parallel over examples. */
void l2rw__crop_flip(float *out, const float *x, const int32_t *draws,
                     int n, int c, int h, int w, int pad);

/* sum g_i^2, products and sums in double, over blocks of 8192 in index
 * order then the block sums in order (the same for any thread count). */
double l2rw__sumsq(const float *g, size_t n);

#endif
