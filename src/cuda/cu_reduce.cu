/* Long reductions on the device: the dot product of two flat vectors
 * [len] and the sum of squares of one (the gradient's norm), in double.
 * Two stages with a fixed shape (the grid depends only on len): each
 * thread sums a fixed stride of terms, each block adds its threads in a
 * fixed tree, one block adds the blocks' partials in a fixed tree; the
 * same input gives the same bits. The CPU's dot sums in 16 float lanes,
 * so the two differ by at most (len/16 + 2) 2^-24 sum |a_i b_i|. */
#include <math.h>

#include "cu_internal.cuh"

/* Tree sum of v over the block (CU_THREADS, a power of two); thread 0
 * gets the total. */
__device__ static double block_sum(double v)
{
    __shared__ double s[CU_THREADS];
    s[threadIdx.x] = v;
    __syncthreads();
    for (int h = CU_THREADS / 2; h > 0; h /= 2) {
        if ((int)threadIdx.x < h) s[threadIdx.x] += s[threadIdx.x + h];
        __syncthreads();
    }
    return s[0];
}

/* Stage 1: partial[b] = this block's terms; dot: float products (as the
 * CPU's), sumsq (b == NULL): double products (as optim.c's norm). */
__global__ static void k_partials(const float *a, const float *b, size_t len,
                                  double *partial)
{
    double v = 0.0;
    CU_FOR(t, len)
        v += b ? (double)(a[t] * b[t]) : (double)a[t] * (double)a[t];
    double s = block_sum(v);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ static void k_total(const double *partial, int np, double *out)
{
    double v = 0.0;
    for (int t = (int)threadIdx.x; t < np; t += CU_THREADS) v += partial[t];
    double s = block_sum(v);
    if (threadIdx.x == 0) *out = s;
}

static void reduce(cu_ctx *c, const float *a, const float *b, size_t len,
                   double *out)
{
    size_t nb = (len + 4 * CU_THREADS - 1) / (4 * CU_THREADS);
    if (nb < 1) nb = 1;
    if (nb > CU_PARTIALS) nb = CU_PARTIALS;
    k_partials<<<(unsigned)nb, CU_THREADS, 0, c->stream>>>(a, b, len,
                                                           c->scr->partial);
    CU_LAUNCHED("dot (partials)");
    k_total<<<1, CU_THREADS, 0, c->stream>>>(c->scr->partial, (int)nb, out);
    CU_LAUNCHED("dot (total)");
}

static double reduce_sync(const float *a, const float *b, size_t len)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return NAN;
    reduce(c, a, b, len, &c->scr->result);
    double r = NAN;
    cudaError_t e = cudaMemcpyAsync(&r, &c->scr->result, sizeof r,
                                    cudaMemcpyDeviceToHost, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    l2rw__cu_note(e, "dot (result)");
    return e == cudaSuccess && !c->failed ? r : NAN;
}

void l2rw__cu_dot_dev(const float *a, const float *b, size_t len, double *out)
{
    cu_ctx *c = l2rw__cu_cur();
    if (c) reduce(c, a, b, len, out);
}

double l2rw__cu_dot(const float *a, const float *b, size_t len)
{
    return reduce_sync(a, b, len);
}

double l2rw__cu_sumsq(const float *g, size_t n)
{
    return reduce_sync(g, NULL, n);
}

/* out[i] = sum_k (double)(a_i[k] b_i[k]) (float products, as the CPU's
 * dot), one block a row in a fixed tree: the same bits run to run. */
__global__ static void k_row_dots(const float *a, size_t lda, const float *b,
                                  size_t ldb, int n, size_t len, double *out)
{
    for (int i = (int)blockIdx.x; i < n; i += (int)gridDim.x) {
        const float *ai = a + (size_t)i * lda, *bi = b + (size_t)i * ldb;
        double v = 0.0;
        for (size_t t = threadIdx.x; t < len; t += blockDim.x)
            v += (double)(ai[t] * bi[t]);
        double s = block_sum(v);
        if (threadIdx.x == 0) out[i] = s;
        __syncthreads(); /* block_sum's shared sums are reused next row */
    }
}

void l2rw__cu_dots_acc(double *u, const float *a, size_t lda, const float *b,
                       size_t ldb, int n, size_t len)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return;
    double h[CU_PARTIALS];
    for (int i0 = 0; i0 < n; i0 += CU_PARTIALS) {
        const int m = n - i0 < CU_PARTIALS ? n - i0 : CU_PARTIALS;
        k_row_dots<<<(unsigned)m, CU_THREADS, 0, c->stream>>>(
            a + (size_t)i0 * lda, lda, b + (size_t)i0 * ldb, ldb, m, len,
            c->scr->partial);
        CU_LAUNCHED("dots_acc");
        cudaError_t e = cudaMemcpyAsync(h, c->scr->partial,
                                        (size_t)m * sizeof *h,
                                        cudaMemcpyDeviceToHost, c->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
        l2rw__cu_note(e, "dots_acc (results)");
        for (int i = 0; i < m; i++)
            u[i0 + i] += e == cudaSuccess && !c->failed ? h[i] : NAN;
    }
}

/* *flag = 1 when some x[i] != 0: every writer stores the same value, so
 * the order does not matter. */
__global__ static void k_any_nonzero(const float *x, size_t len, int *flag)
{
    CU_FOR(i, len) if (x[i] != 0.0f) *flag = 1;
}

int l2rw__cu_any_nonzero(const float *x, size_t len)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || len == 0) return 0;
    int *flag = &c->scr->any;
    l2rw__cu_note(cudaMemsetAsync(flag, 0, sizeof *flag, c->stream),
                  "any_nonzero");
    k_any_nonzero<<<cu_blocks(len), CU_THREADS, 0, c->stream>>>(x, len, flag);
    CU_LAUNCHED("any_nonzero");
    int r = 0;
    cudaError_t e = cudaMemcpyAsync(&r, flag, sizeof r,
                                    cudaMemcpyDeviceToHost, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    l2rw__cu_note(e, "any_nonzero (result)");
    return r;
}
