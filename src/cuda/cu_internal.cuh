/* Shared by the CUDA back end's .cu files (not part of any API): the
 * device context, the sticky error, launch sizes, and device helpers that
 * reproduce the CPU's arithmetic (the dropout hash, the 16-lane sums). */
#ifndef L2RW_CU_INTERNAL_CUH
#define L2RW_CU_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda_backend.h"

enum {
    CU_THREADS = 256, /* threads per block of the element-wise kernels */
    CU_MAX_BLOCKS = 1 << 16, /* grid-stride loops beyond this */
    CU_MAX_DEVICES = 16,
    CU_LANES = 16,       /* the CPU's float lanes (kernels.c LANES) */
    CU_PARTIALS = 1024,  /* blocks of the first stage of a dot product */
    CU_ALIGN_FLOATS = 64 /* workspace sub-buffers start on 256 bytes */
};

/* Device-side scalars of a context: reduction partials, check flags. */
struct cu_scratch {
    double partial[CU_PARTIALS];
    double result;
    unsigned long long bad_logit; /* first non-finite logit (flat index) */
    unsigned int bad_label;       /* first example with a bad label */
    unsigned int bad_loss;        /* first example with a non-finite loss */
    int winfo[2];                 /* weights: positive count, bad score */
    int any;                      /* any_nonzero's flag */
};

struct cu_ctx {
    int device, ready;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS's workspace (so it never allocates) */
    float *ws;     /* the back end's workspace (im2col columns) */
    size_t ws_bytes;
    cu_scratch *scr; /* device */
    int failed;      /* a CUDA error since the last sync */
    int tf32;        /* the math mode set on blas (l2rw_set_tf32) */
    l2rw_status fail_code;
    char fail_msg[320];
};

/* The current context, its device made current on the calling thread;
 * NULL (and the error kept) before l2rw__cu_init. */
cu_ctx *l2rw__cu_cur(void);
/* Keep the first error (for l2rw__cu_sync); what names the call. */
void l2rw__cu_note(cudaError_t e, const char *what);
void l2rw__cu_note_blas(cublasStatus_t e, const char *what);
void l2rw__cu_note_msg(l2rw_status code, const char *msg);
/* After a kernel launch. */
#define CU_LAUNCHED(what) l2rw__cu_note(cudaGetLastError(), (what))

static inline unsigned cu_blocks(size_t n)
{
    const size_t most = CU_MAX_BLOCKS;
    size_t b = (n + CU_THREADS - 1) / CU_THREADS;
    if (b < 1) b = 1;
    return (unsigned)(b < most ? b : most);
}

static inline size_t cu_round(size_t floats)
{
    return (floats + CU_ALIGN_FLOATS - 1) / CU_ALIGN_FLOATS * CU_ALIGN_FLOATS;
}

#define CU_FOR(i, len)                                                        \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (len); \
         i += (size_t)gridDim.x * blockDim.x)

/* Row-major GEMMs through cuBLAS's column-major interface (C = A B is
 * C^T = B^T A^T): plain and strided-batched (stride 0: the same matrix
 * for every item). */
void l2rw__cu_sgemm(cu_ctx *c, int ta, int tb, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *cm, int ldc);
void l2rw__cu_sgemm_batched(cu_ctx *c, int ta, int tb, int m, int n, int k,
                            float alpha, const float *a, int lda, long long sa,
                            const float *b, int ldb, long long sb, float beta,
                            float *cm, int ldc, long long sc, int batch);

/* ---------------------------------------------------- device helpers */

/* common.c's splitmix64 and l2rw_hash2, the same bits. */
__device__ static inline uint64_t cu_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ static inline uint64_t cu_hash2(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b * 0xD6E8FEB86659FD93ull);
    uint64_t h = cu_splitmix64(&x);
    return h ^ cu_splitmix64(&x);
}

/* kernels.c's row_sum of a row of P floats: lane j sums x[j], x[j + 16],
 * ... in float, in order; the 16 lanes are added in double, lane 0
 * first. One thread does the whole row (short rows: pooled planes). */
__device__ static inline double cu_row_sum(const float *x, size_t P)
{
    double s = 0.0;
    for (int j = 0; j < CU_LANES; j++) {
        float acc = 0.0f;
        for (size_t p = (size_t)j; p < P; p += CU_LANES) acc += x[p];
        s += (double)acc;
    }
    return s;
}

/* Sums over one channel c of n rows of P floats (row i at (i C + c) P),
 * for one block of CU_THREADS threads, in kernels.c's order: per row, 16
 * float lanes (lane j takes p = j, j + 16, ...; f adds the terms of index
 * o to a1, a2), the lanes added in double, lane 0 first; the rows added in
 * double in row order. The two totals are returned to every thread.
 * Threads work on tiles of 16 rows, one (row, lane) each. */
template <class F>
__device__ static void cu_channel_sums(F f, int n, int C, size_t P, int c,
                                       double *t1, double *t2)
{
    enum { ROWS = CU_THREADS / CU_LANES };
    __shared__ float lane1[CU_THREADS], lane2[CU_THREADS];
    __shared__ double row1[ROWS], row2[ROWS], tot[2];
    const int r = (int)threadIdx.x / CU_LANES, j = (int)threadIdx.x % CU_LANES;
    if (threadIdx.x == 0) tot[0] = tot[1] = 0.0;
    for (int i0 = 0; i0 < n; i0 += ROWS) {
        const int i = i0 + r;
        float a1 = 0.0f, a2 = 0.0f;
        if (i < n) {
            const size_t o = ((size_t)i * C + c) * P;
            for (size_t p = (size_t)j; p < P; p += CU_LANES) f(o + p, a1, a2);
        }
        lane1[threadIdx.x] = a1;
        lane2[threadIdx.x] = a2;
        __syncthreads();
        if (j == 0 && i < n) { /* the row's lanes, in lane order */
            double s1 = 0.0, s2 = 0.0;
            for (int l = 0; l < CU_LANES; l++) {
                s1 += (double)lane1[r * CU_LANES + l];
                s2 += (double)lane2[r * CU_LANES + l];
            }
            row1[r] = s1;
            row2[r] = s2;
        }
        __syncthreads();
        if (threadIdx.x == 0) /* the rows, in row order */
            for (int q = 0; q < ROWS && i0 + q < n; q++) {
                tot[0] += row1[q];
                tot[1] += row2[q];
            }
        __syncthreads();
    }
    *t1 = tot[0];
    *t2 = tot[1];
    __syncthreads(); /* tot may be reset by a next call */
}

#endif
