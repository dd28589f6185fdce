/* The CUDA back end's table (src/engine/backend.h): device memory and the
 * kernels of src/cuda/, on the current context (l2rw__cu_init makes it;
 * the net initialises the device before it uses the table). Calls are
 * queued on the context's stream; download, dot and any_nonzero wait for
 * it, and sync reports the first error since the last sync. Built only
 * with CUDA (the Makefile compiles cuda_stub.c instead without it). */
#include "backend.h"
#include "cuda_backend.h"

const l2rw__backend l2rw__backend_cuda = {
    .name = "cuda",
    .host = 0, /* device memory: the host reaches it by upload/download */
    .alloc = l2rw__cu_be_alloc,
    .dealloc = l2rw__cu_free,
    .upload = l2rw__cu_be_upload,
    .download = l2rw__cu_be_download,
    .copy_dev = l2rw__cu_be_copy,
    .zero = l2rw__cu_be_zero,
    .sync = l2rw__cu_sync,

    .gemm = l2rw__cu_gemm,
    .copy = l2rw__cu_copy,
    .add = l2rw__cu_add,
    .scale_rows = l2rw__cu_scale_rows,
    .scale = l2rw__cu_scale,
    .relu_fwd = l2rw__cu_relu_fwd,
    .relu_mask = l2rw__cu_relu_mask,
    .mul = l2rw__cu_mul,
    .dropout_mask = l2rw__cu_dropout_mask,
    .bias_add = l2rw__cu_bias_add,
    .bias_grad = l2rw__cu_bias_grad,
    .conv_ws = l2rw__cu_conv_ws,
    .conv_fwd = l2rw__cu_conv_fwd,
    .conv_bwd = l2rw__cu_conv_bwd,
    .conv_bwd_each = l2rw__cu_conv_bwd_each,
    .maxpool_fwd = l2rw__cu_maxpool_fwd,
    .maxpool_gather = l2rw__cu_maxpool_gather,
    .maxpool_bwd = l2rw__cu_maxpool_bwd,
    .avgpool_fwd = l2rw__cu_avgpool_fwd,
    .avgpool_bwd = l2rw__cu_avgpool_bwd,
    .dot = l2rw__cu_dot,
    .bn_stats = l2rw__cu_bn_stats,
    .bn_stats_norm = l2rw__cu_bn_stats_norm,
    .bn_norm = l2rw__cu_bn_norm,
    .bn_tangent_train = l2rw__cu_bn_tangent_train,
    .bn_tangent_eval = l2rw__cu_bn_tangent_eval,
    .bn_bwd = l2rw__cu_bn_bwd,

    .copy_2d = l2rw__cu_copy_2d,
    .bn_eval_stats = l2rw__cu_bn_eval_stats,
    .bn_running = l2rw__cu_bn_running,
    .any_nonzero = l2rw__cu_any_nonzero,
    .conv_slices = l2rw__cu_conv_slices,

    .loss_eval = l2rw__cu_loss_eval,
    .sgd_update = l2rw__cu_sgd_update,
    .adamw_update = l2rw__cu_adamw_update,
    .sumsq = l2rw__cu_sumsq,

    .mem_free = l2rw__cu_mem_free,
    .gather_rows = l2rw__cu_gather_rows,
    .crop_flip = l2rw__cu_crop_flip,
    .dots_acc = l2rw__cu_dots_acc,
};
