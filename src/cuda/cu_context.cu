/* The CUDA back end's device contexts: the probe, init and shutdown, the
 * sticky first error, the workspace, device memory and the row-major
 * GEMM mapping onto cuBLAS. One context per device: a non-blocking
 * stream, a cuBLAS handle bound to it (FP32 math, pointer mode host,
 * atomics off, its own workspace so that it never allocates), the back
 * end's workspace and a small scratch area for reductions and checks. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cu_internal.cuh"

enum { CUBLAS_WS_BYTES = 32 << 20 }; /* NVIDIA's advice for Hopper */

static cu_ctx g_ctx[CU_MAX_DEVICES];
static int g_cur = -1;
/* An error met with no context to keep it in (a call before init). */
static char g_orphan[320];

/* why = the formatted reason, when there is a buffer. */
static void say(char *why, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void say(char *why, size_t n, const char *fmt, ...)
{
    if (!why || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
}

int l2rw__cuda_probe(int device, char *why, size_t n)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorInsufficientDriver) {
        say(why, n, "no CUDA driver (%s: %s)", cudaGetErrorName(e),
            cudaGetErrorString(e));
        return 0;
    }
    if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) {
        say(why, n, "no CUDA device");
        return 0;
    }
    if (e != cudaSuccess) {
        say(why, n, "CUDA runtime error: %s (%s)", cudaGetErrorName(e),
            cudaGetErrorString(e));
        return 0;
    }
    if (device < 0 || device >= count) {
        say(why, n, "device %d not present (%d device%s)", device, count,
            count == 1 ? "" : "s");
        return 0;
    }
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, device);
    if (e != cudaSuccess) {
        say(why, n, "CUDA runtime error: %s (%s)", cudaGetErrorName(e),
            cudaGetErrorString(e));
        return 0;
    }
    /* The fat binary holds sm_90 code and compute_90 PTX. */
    if (prop.major < 9) {
        say(why, n,
            "device %d is compute capability %d.%d; l2rw's CUDA "
            "code needs 9.0 or newer",
            device, prop.major, prop.minor);
        return 0;
    }
    say(why, n, "CUDA device %d: %s (compute capability %d.%d, %zu MiB)",
        device, prop.name, prop.major, prop.minor,
        (size_t)(prop.totalGlobalMem >> 20));
    return 1;
}

/* ------------------------------------------------------------ errors */

static l2rw_status code_of(cudaError_t e)
{
    return e == cudaErrorMemoryAllocation ? L2RW_ERR_NOMEM
                                          : L2RW_ERR_UNSUPPORTED;
}

void l2rw__cu_note_msg(l2rw_status code, const char *msg)
{
    cu_ctx *c = g_cur >= 0 ? &g_ctx[g_cur] : NULL;
    if (!c) {
        if (!g_orphan[0]) snprintf(g_orphan, sizeof g_orphan, "%s", msg);
        return;
    }
    if (c->failed) return;
    c->failed = 1;
    c->fail_code = code;
    snprintf(c->fail_msg, sizeof c->fail_msg, "%s", msg);
}

void l2rw__cu_note(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return;
    char msg[300];
    snprintf(msg, sizeof msg, "CUDA: %s: %s (%s)", what, cudaGetErrorName(e),
             cudaGetErrorString(e));
    l2rw__cu_note_msg(code_of(e), msg);
}

void l2rw__cu_note_blas(cublasStatus_t e, const char *what)
{
    if (e == CUBLAS_STATUS_SUCCESS) return;
    char msg[300];
    snprintf(msg, sizeof msg, "cuBLAS: %s: %s (%s)", what,
             cublasGetStatusName(e), cublasGetStatusString(e));
    l2rw__cu_note_msg(e == CUBLAS_STATUS_ALLOC_FAILED ? L2RW_ERR_NOMEM
                                                      : L2RW_ERR_UNSUPPORTED,
                      msg);
}

/* A failing status with the CUDA error's detail. */
static l2rw_status cu_fail(cudaError_t e, const char *what)
{
    return l2rw__fail(code_of(e), "CUDA: %s: %s (%s)", what,
                      cudaGetErrorName(e), cudaGetErrorString(e));
}

cu_ctx *l2rw__cu_cur(void)
{
    if (g_cur < 0 || !g_ctx[g_cur].ready) {
        l2rw__cu_note_msg(L2RW_ERR_UNSUPPORTED,
                          "CUDA back end used before l2rw__cu_init");
        return NULL;
    }
    cu_ctx *c = &g_ctx[g_cur];
    /* The runtime's current device is per host thread. */
    int d = -1;
    if (cudaGetDevice(&d) != cudaSuccess || d != c->device)
        l2rw__cu_note(cudaSetDevice(c->device), "cudaSetDevice");
    return c;
}

/* ------------------------------------------------------- init, shutdown */

static void ctx_release(cu_ctx *c)
{
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->blas) cublasDestroy(c->blas);
    cudaFree(c->blas_ws);
    cudaFree(c->ws);
    cudaFree(c->scr);
    if (c->stream) cudaStreamDestroy(c->stream);
    memset(c, 0, sizeof *c);
}

static l2rw_status blas_fail(cublasStatus_t e, const char *what)
{
    return l2rw__fail(e == CUBLAS_STATUS_ALLOC_FAILED ? L2RW_ERR_NOMEM
                                                      : L2RW_ERR_UNSUPPORTED,
                      "cuBLAS: %s: %s (%s)", what, cublasGetStatusName(e),
                      cublasGetStatusString(e));
}

#define CU_TRY(call, what)                                                    \
    do {                                                                      \
        cudaError_t cu_e = (call);                                            \
        if (cu_e != cudaSuccess) return cu_fail(cu_e, (what));                \
    } while (0)
#define BLAS_TRY(call, what)                                                  \
    do {                                                                      \
        cublasStatus_t cu_b = (call);                                         \
        if (cu_b != CUBLAS_STATUS_SUCCESS) return blas_fail(cu_b, (what));    \
    } while (0)

static l2rw_status ctx_make(cu_ctx *c, int device)
{
    c->device = device;
    CU_TRY(cudaSetDevice(device), "cudaSetDevice");
    CU_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking),
           "cudaStreamCreate");
    BLAS_TRY(cublasCreate(&c->blas), "cublasCreate");
    BLAS_TRY(cublasSetStream(c->blas, c->stream), "cublasSetStream");
    CU_TRY(cudaMalloc(&c->blas_ws, CUBLAS_WS_BYTES), "cudaMalloc");
    BLAS_TRY(cublasSetWorkspace(c->blas, c->blas_ws, CUBLAS_WS_BYTES),
             "cublasSetWorkspace");
    BLAS_TRY(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH),
             "cublasSetMathMode");
    BLAS_TRY(cublasSetAtomicsMode(c->blas, CUBLAS_ATOMICS_NOT_ALLOWED),
             "cublasSetAtomicsMode");
    BLAS_TRY(cublasSetPointerMode(c->blas, CUBLAS_POINTER_MODE_HOST),
             "cublasSetPointerMode");
    CU_TRY(cudaMalloc(&c->ws, L2RW_CU_WS_INIT), "cudaMalloc");
    c->ws_bytes = L2RW_CU_WS_INIT;
    CU_TRY(cudaMalloc(&c->scr, sizeof(cu_scratch)), "cudaMalloc");
    CU_TRY(cudaMemsetAsync(c->scr, 0, sizeof(cu_scratch), c->stream),
           "cudaMemset");
    CU_TRY(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    c->ready = 1;
    return L2RW_OK;
}

l2rw_status l2rw__cu_init(int device, char *why, size_t why_size)
{
    char reason[256];
    if (!l2rw__cuda_probe(device, reason, sizeof reason)) {
        say(why, why_size, "%s", reason);
        return l2rw__fail(L2RW_ERR_UNSUPPORTED, "%s", reason);
    }
    if (device >= CU_MAX_DEVICES) {
        say(why, why_size, "device %d: l2rw handles devices 0..%d", device,
            CU_MAX_DEVICES - 1);
        return l2rw__fail(L2RW_ERR_UNSUPPORTED,
                          "CUDA device %d: l2rw "
                          "handles devices 0..%d",
                          device, CU_MAX_DEVICES - 1);
    }
    cu_ctx *c = &g_ctx[device];
    if (!c->ready) {
        l2rw_status s = ctx_make(c, device);
        if (s != L2RW_OK) {
            say(why, why_size, "%s", l2rw_last_error());
            ctx_release(c);
            return s;
        }
    }
    g_cur = device;
    g_orphan[0] = '\0';
    say(why, why_size, "%s", reason);
    CU_TRY(cudaSetDevice(device), "cudaSetDevice");
    return L2RW_OK;
}

void l2rw__cu_shutdown(void)
{
    for (int d = 0; d < CU_MAX_DEVICES; d++)
        if (g_ctx[d].ready || g_ctx[d].stream) {
            cudaSetDevice(d);
            ctx_release(&g_ctx[d]);
        }
    g_cur = -1;
}

/* ------------------------------------------------------------ context */

l2rw_status l2rw__cu_sync(void)
{
    if (g_cur < 0 || !g_ctx[g_cur].ready) {
        l2rw_status s = l2rw__fail(L2RW_ERR_UNSUPPORTED, "%s",
                                   g_orphan[0] ? g_orphan
                                               : "CUDA back end not "
                                                 "initialised");
        g_orphan[0] = '\0';
        return s;
    }
    cu_ctx *c = l2rw__cu_cur();
    l2rw__cu_note(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    if (!c->failed) return L2RW_OK;
    c->failed = 0;
    return l2rw__fail(c->fail_code, "%s", c->fail_msg);
}

l2rw_status l2rw__cu_reserve(size_t bytes)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return l2rw__cu_sync();
    if (bytes <= c->ws_bytes) return L2RW_OK;
    CU_TRY(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    CU_TRY(cudaFree(c->ws), "cudaFree");
    c->ws = NULL;
    c->ws_bytes = 0;
    CU_TRY(cudaMalloc(&c->ws, bytes), "cudaMalloc (workspace)");
    c->ws_bytes = bytes;
    return L2RW_OK;
}

size_t l2rw__cu_workspace_bytes(void)
{
    cu_ctx *c = l2rw__cu_cur();
    return c ? c->ws_bytes : 0;
}

void *l2rw__cu_stream(void)
{
    cu_ctx *c = l2rw__cu_cur();
    return c ? (void *)c->stream : NULL;
}

/* ------------------------------------------------------------- memory */

l2rw_status l2rw__cu_alloc(void **p, size_t bytes)
{
    *p = NULL;
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return l2rw__cu_sync();
    if (bytes == 0) return L2RW_OK;
    CU_TRY(cudaMalloc(p, bytes), "cudaMalloc");
    cudaError_t e = cudaMemsetAsync(*p, 0, bytes, c->stream);
    if (e != cudaSuccess) {
        cudaFree(*p);
        *p = NULL;
        return cu_fail(e, "cudaMemset");
    }
    return L2RW_OK;
}

void l2rw__cu_free(void *p)
{
    if (!p) return;
    cu_ctx *c = l2rw__cu_cur();
    /* cudaFree waits for the device; the stream's work may use p. */
    if (c)
        l2rw__cu_note(cudaStreamSynchronize(c->stream),
                      "cudaStreamSynchronize");
    l2rw__cu_note(cudaFree(p), "cudaFree");
}

static l2rw_status copy_sync(void *dst, const void *src, size_t bytes,
                             cudaMemcpyKind kind, const char *what)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c) return l2rw__cu_sync();
    if (bytes == 0) return L2RW_OK;
    CU_TRY(cudaMemcpyAsync(dst, src, bytes, kind, c->stream), what);
    CU_TRY(cudaStreamSynchronize(c->stream), what);
    return L2RW_OK;
}

l2rw_status l2rw__cu_upload(void *dst, const void *src, size_t bytes)
{
    return copy_sync(dst, src, bytes, cudaMemcpyHostToDevice,
                     "cudaMemcpy (upload)");
}

l2rw_status l2rw__cu_download(void *dst, const void *src, size_t bytes)
{
    return copy_sync(dst, src, bytes, cudaMemcpyDeviceToHost,
                     "cudaMemcpy (download)");
}

void l2rw__cu_memset(void *p, int byte, size_t bytes)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || bytes == 0) return;
    l2rw__cu_note(cudaMemsetAsync(p, byte, bytes, c->stream), "cudaMemset");
}

/* The back-end table's forms: errors wait for l2rw__cu_sync. */
void *l2rw__cu_be_alloc(size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size) return NULL;
    const size_t bytes = n * size;
    void *p = NULL;
    /* A zero-size request still gets a valid (one-byte) block. */
    if (l2rw__cu_alloc(&p, bytes ? bytes : 1) != L2RW_OK) return NULL;
    return p;
}

static void keep(l2rw_status s)
{
    if (s != L2RW_OK) l2rw__cu_note_msg(s, l2rw_last_error());
}

void l2rw__cu_be_upload(void *dst, const void *src, size_t bytes)
{
    keep(l2rw__cu_upload(dst, src, bytes));
}

void l2rw__cu_be_download(void *dst, const void *src, size_t bytes)
{
    keep(l2rw__cu_download(dst, src, bytes));
}

void l2rw__cu_be_copy(void *dst, const void *src, size_t bytes)
{
    cu_ctx *c = l2rw__cu_cur();
    if (!c || bytes == 0 || dst == src) return;
    l2rw__cu_note(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                                  c->stream),
                  "copy (device)");
}

void l2rw__cu_be_zero(void *dst, size_t bytes)
{
    l2rw__cu_memset(dst, 0, bytes);
}

/* --------------------------------------------------------------- GEMM */

static cublasOperation_t op(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

/* The process's mode (l2rw_set_tf32) on the context's handle, switched
 * only when it changed: a host-side setting, ordered with the stream. */
static void math_mode(cu_ctx *c)
{
    const int want = l2rw_get_tf32();
    if (c->tf32 == want) return;
    cublasStatus_t e = cublasSetMathMode(
        c->blas, want ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    l2rw__cu_note_blas(e, "cublasSetMathMode");
    if (e == CUBLAS_STATUS_SUCCESS) c->tf32 = want;
}

void l2rw__cu_sgemm(cu_ctx *c, int ta, int tb, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *cm, int ldc)
{
    math_mode(c);
    l2rw__cu_note_blas(cublasSgemm(c->blas, op(tb), op(ta), n, m, k, &alpha, b,
                                   ldb, a, lda, &beta, cm, ldc),
                       "cublasSgemm");
}

void l2rw__cu_sgemm_batched(cu_ctx *c, int ta, int tb, int m, int n, int k,
                            float alpha, const float *a, int lda, long long sa,
                            const float *b, int ldb, long long sb, float beta,
                            float *cm, int ldc, long long sc, int batch)
{
    math_mode(c);
    l2rw__cu_note_blas(cublasSgemmStridedBatched(
                           c->blas, op(tb), op(ta), n, m, k, &alpha, b, ldb,
                           sb, a, lda, sa, &beta, cm, ldc, sc, batch),
                       "cublasSgemmStridedBatched");
}

/* C = beta C (0 when beta is 0, whatever C held), as the CPU's k <= 0. */
__global__ static void k_gemm_scale(float *c, int m, int n, int ldc,
                                    float beta)
{
    CU_FOR(t, (size_t)m * n) {
        size_t i = t / (size_t)n, j = t % (size_t)n;
        float *p = c + i * (size_t)ldc + j;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

void l2rw__cu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb,
                   float beta, float *c, int ldc)
{
    cu_ctx *x = l2rw__cu_cur();
    if (!x || m <= 0 || n <= 0) return;
    if (k <= 0) {
        k_gemm_scale<<<cu_blocks((size_t)m * n), CU_THREADS, 0, x->stream>>>(
            c, m, n, ldc, beta);
        CU_LAUNCHED("gemm (k = 0)");
        return;
    }
    l2rw__cu_sgemm(x, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta,
                   c, ldc);
}
