/* The CPU back end: host memory (64-byte aligned, zeroed) and the kernels
 * of kernels.c (OpenBLAS called serially from OpenMP threads, static
 * schedules, fixed-order reductions), the optimizer's of kernels_update.c
 * and the loss of loss.c. Memory is the host's, so transfers
 * are memcpy and sync has nothing to wait for. */
#include <string.h>

#include "backend.h"
#include "kernels.h"
#include "loss.h"

static void cpu_copy_bytes(void *dst, const void *src, size_t bytes)
{
    if (bytes && dst != src) memcpy(dst, src, bytes);
}

static void cpu_zero(void *dst, size_t bytes)
{
    if (bytes) memset(dst, 0, bytes);
}

static l2rw_status cpu_sync(void) { return L2RW_OK; }

static size_t cpu_mem_free(void) { return SIZE_MAX; }

static void cpu_gather_rows(float *dst, const float *src, size_t rows,
                            const int32_t *idx, int n, size_t dim)
{
    (void)rows;
    l2rw__gather_rows(dst, src, idx, n, dim);
}

const l2rw__backend l2rw__backend_cpu = {
    .name = "cpu",
    .host = 1,
    .alloc = l2rw__aalloc,
    .dealloc = l2rw__afree,
    .upload = cpu_copy_bytes,
    .download = cpu_copy_bytes,
    .copy_dev = cpu_copy_bytes,
    .zero = cpu_zero,
    .sync = cpu_sync,

    .gemm = l2rw__gemm,
    .copy = l2rw__copy,
    .add = l2rw__add,
    .scale_rows = l2rw__scale_rows,
    .scale = l2rw__scale,
    .relu_fwd = l2rw__relu_fwd,
    .relu_mask = l2rw__relu_mask,
    .mul = l2rw__mul,
    .dropout_mask = l2rw__dropout_mask,
    .bias_add = l2rw__bias_add,
    .bias_grad = l2rw__bias_grad,
    .conv_ws = l2rw__conv_ws,
    .conv_fwd = l2rw__conv_fwd,
    .conv_bwd = l2rw__conv_bwd,
    .conv_bwd_each = l2rw__conv_bwd_each,
    .maxpool_fwd = l2rw__maxpool_fwd,
    .maxpool_gather = l2rw__maxpool_gather,
    .maxpool_bwd = l2rw__maxpool_bwd,
    .avgpool_fwd = l2rw__avgpool_fwd,
    .avgpool_bwd = l2rw__avgpool_bwd,
    .dot = l2rw__dot,
    .bn_stats = l2rw__bn_stats,
    .bn_stats_norm = l2rw__bn_stats_norm,
    .bn_norm = l2rw__bn_norm,
    .bn_tangent_train = l2rw__bn_tangent_train,
    .bn_tangent_eval = l2rw__bn_tangent_eval,
    .bn_bwd = l2rw__bn_bwd,

    .copy_2d = l2rw__copy_2d,
    .bn_eval_stats = l2rw__bn_eval_stats,
    .bn_running = l2rw__bn_running,
    .any_nonzero = l2rw__any_nonzero,
    .conv_slices = l2rw__conv_slices,

    .loss_eval = l2rw__loss_eval,
    .sgd_update = l2rw__sgd_update,
    .adamw_update = l2rw__adamw_update,
    .sumsq = l2rw__sumsq,
    .mem_free = cpu_mem_free,
    .gather_rows = cpu_gather_rows,
    .crop_flip = l2rw__crop_flip,
    .dots_acc = l2rw__dots_acc,
};
