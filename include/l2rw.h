/* l2rw: learning to reweight examples for robust deep learning.
 *
 * Public API. Every function returns an l2rw_status (L2RW_OK on success)
 * and never prints or exits; l2rw_last_error() gives a one-line detail of
 * the most recent failure on the calling thread (file names, shapes, ...).
 *
 * Conventions: tensors are float32, row-major, images NCHW; labels are
 * int32 in [0, classes). Handles are opaque; *_free(NULL) is a no-op.
 */
#ifndef L2RW_H
#define L2RW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shared library exports what the public headers declare and nothing
 * else (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define L2RW_VERSION "0.1.0"

/* ---------------------------------------------------------------- status */

typedef enum {
    L2RW_OK = 0,
    L2RW_ERR_NOMEM,     /* an allocation failed */
    L2RW_ERR_ARG,       /* invalid argument or option value */
    L2RW_ERR_SHAPE,     /* tensor shapes do not fit together */
    L2RW_ERR_IO,        /* a file could not be opened, read or written */
    L2RW_ERR_FORMAT,    /* a file is corrupt, truncated or of the wrong kind */
    L2RW_ERR_LABEL,     /* a label is outside [0, classes) */
    L2RW_ERR_NUMERIC,   /* NaN or Inf appeared (in a loss, an input, ...) */
    L2RW_ERR_ARCH,      /* a saved model is of another architecture */
    L2RW_ERR_UNSUPPORTED, /* valid request this build cannot serve */
    L2RW_ERR_DIVERGED     /* training diverged (loss far above its minimum,
                             or NaN/Inf) and was stopped */
} l2rw_status;

const char *l2rw_strerror(l2rw_status s);
/* Detail of the last error on this thread ("" when none). */
const char *l2rw_last_error(void);

/* Threads used by the library's OpenMP regions, for calls made from the
 * calling thread (0 = all cores; never set: all cores or OMP_NUM_THREADS).
 * The count belongs to the calling thread, like OpenMP's own setting, so
 * two threads may each drive their own nets with their own counts at the
 * same time; a fixed count gives bit-identical results. l2rw_train_run
 * uses its cfg.threads for the run and then restores the caller's count.
 * OpenBLAS always runs serially inside the library's threads (a program
 * that calls OpenBLAS itself keeps its own OpenMP count for its calls). */
void l2rw_set_threads(int threads);
int l2rw_get_threads(void);

/* -------------------------------------------------------------- devices */

/* Where nets run: the CPU (OpenBLAS and OpenMP) or an NVIDIA GPU through
 * the CUDA back end ("cuda" is GPU 0, "cuda:N" GPU N). "checked" runs the
 * CPU's kernels as a device: every buffer in an arena of its own that
 * the host cannot touch between kernels, every pointer a kernel receives
 * checked (slower; it shows on any machine that a run never reads device
 * memory from the host nor hands a host buffer to a kernel, and gives
 * the CPU's bits). */
typedef enum {
    L2RW_DEVICE_CPU,
    L2RW_DEVICE_CUDA,
    L2RW_DEVICE_CHECKED
} l2rw_device_kind;

typedef struct {
    l2rw_device_kind kind;
    int index; /* GPU number; 0 for the CPU */
} l2rw_device;

/* "cpu", "cuda", "cuda:N" or "checked"; else L2RW_ERR_ARG naming the
 * choices. */
l2rw_status l2rw_device_parse(const char *name, l2rw_device *out);
/* "cpu", "cuda:N", "checked" into buf (truncated to size). */
void l2rw_device_format(const l2rw_device *d, char *buf, size_t size);
/* L2RW_OK when nets can run on d in this process; else
 * L2RW_ERR_UNSUPPORTED with a one-line reason in l2rw_last_error(): a
 * build without CUDA, no driver, no device, no device N, a device too
 * old, or a back end that does not run nets yet. For CUDA, desc (may be
 * NULL) receives the device's name and memory. */
l2rw_status l2rw_device_available(const l2rw_device *d, char *desc,
                                  size_t size);

/* TF32 tensor cores for the CUDA back end's matrix products (and so its
 * convolutions), process-wide, from the next product on: about 8x the
 * FP32 rate on an H200, with inputs rounded to 10-bit mantissas (a
 * relative 5e-4 per product instead of 6e-8). Off by default: results
 * then follow the CPU's to FP32 rounding (l2rw check --device). No effect
 * on the CPU. */
void l2rw_set_tf32(int on);
int l2rw_get_tf32(void);

/* ------------------------------------------------------------------ net */

typedef struct l2rw_net l2rw_net;

typedef enum {
    L2RW_MODE_TRAIN,        /* batch statistics, running averages updated,
                               dropout active */
    L2RW_MODE_TRAIN_FROZEN, /* batch statistics and dropout as in training,
                               running averages left untouched (the
                               validation pass of L2RW) */
    L2RW_MODE_EVAL          /* running averages, no dropout */
} l2rw_mode;

/* Model names of the zoo:
 *   "mlp"              two hidden layers of 256 and 128 units
 *   "mlp:H1,H2,..."    hidden sizes given (at least one)
 *   "lenet"            conv5x5x16-relu-pool2, conv5x5x32-relu-pool2,
 *                      dense100-relu, dense to classes
 *   "resnet32"         CIFAR ResNet-32 (3 stages of 5 basic blocks; 1x1
 *                      conv + BN projection shortcuts where the shape
 *                      changes, option B: 0.467M parameters on 3x32x32)
 *   "resnetN"          N = 6k+2
 *   "wrn-D-K[:P]"      wide ResNet, depth D = 6k+4, width K, dropout P
 *                      (pre-activation; wrn-28-10 has 36.48M parameters)
 * Input shape (channels, height, width) and class count come from the
 * data; max_batch bounds the batch size of every pass; seed fixes the
 * He initialisation. */
l2rw_status l2rw_net_create(l2rw_net **out, const char *model, int channels,
                            int height, int width, int classes,
                            int max_batch, uint64_t seed);
void l2rw_net_free(l2rw_net *net);

const char *l2rw_net_model(const l2rw_net *net);
int l2rw_net_classes(const l2rw_net *net);
/* Names of the net's classes (a folder: data set's class folders), saved
 * with it by l2rw_net_save and read back by the loaders: names[0..k),
 * k = l2rw_net_classes(net), copied; names NULL clears them. */
l2rw_status l2rw_net_set_class_names(l2rw_net *net,
                                     const char *const *names, int k);
/* Name of class k, or NULL when the net has none or k is out of range. */
const char *l2rw_net_class_name(const l2rw_net *net, int k);
int l2rw_net_max_batch(const l2rw_net *net);
void l2rw_net_input_shape(const l2rw_net *net, int *c, int *h, int *w);

/* A net on a device (NULL: the CPU): the CPU, or CUDA GPU dev->index
 * through the CUDA back end. A build without CUDA, no driver, no such
 * GPU: L2RW_ERR_UNSUPPORTED with the probe's one-line reason in
 * l2rw_last_error(). Every buffer of the net (parameters, gradients,
 * tangents, state, activations, workspace) then lives on the device; a
 * pass moves only its batch in (inputs, labels, weights) and per-example
 * values out (losses, u). l2rw_net_create is this with dev NULL.
 * CUDA: the device of the last net created on CUDA is the one every
 * CUDA net of the process runs on (one GPU per process for now). */
l2rw_status l2rw_net_create_on(l2rw_net **out, const char *model,
                               int channels, int height, int width,
                               int classes, int max_batch, uint64_t seed,
                               const l2rw_device *dev);
/* The device the net was created on. */
l2rw_device l2rw_net_device(const l2rw_net *net);

/* Flat buffers, each l2rw_net_num_params() floats, in the same layout:
 * parameters, their gradient (written by backward) and their tangent
 * (read by a forward with tangent). */
size_t l2rw_net_num_params(const l2rw_net *net);
/* Host pointers to the buffers, for nets on the CPU. On a device they
 * are NULL (as are l2rw_net_state and l2rw_net_logits): the host reaches
 * a device net's buffers only through l2rw_net_read / l2rw_net_write
 * below, so no caller can write device memory through a host pointer. */
float *l2rw_net_params(l2rw_net *net);
float *l2rw_net_grads(l2rw_net *net);
float *l2rw_net_tangents(l2rw_net *net);
/* Indices [begin, end) of the parameters of the last dense layer. */
void l2rw_net_last_layer_range(const l2rw_net *net, size_t *begin,
                               size_t *end);
/* Non-trainable state (batch-norm running means and variances). */
size_t l2rw_net_num_state(const l2rw_net *net);
float *l2rw_net_state(l2rw_net *net);

/* The buffers of a net, for explicit copies on any device. */
typedef enum {
    L2RW_NET_PARAMS,   /* l2rw_net_num_params() floats */
    L2RW_NET_GRADS,    /* as PARAMS */
    L2RW_NET_TANGENTS, /* as PARAMS */
    L2RW_NET_STATE,    /* l2rw_net_num_state() floats */
    L2RW_NET_LOGITS    /* n x classes of the last forward; read-only */
} l2rw_net_buffer;

/* Floats in a buffer now (the logits: 0 before a forward). */
size_t l2rw_net_buffer_size(const l2rw_net *net, l2rw_net_buffer which);
/* dst[0..count) = buffer[offset..offset+count) (a download on a device;
 * it returns once dst holds the values, after the net's queued work).
 * A range outside the buffer is L2RW_ERR_ARG; a device error since the
 * last check is reported here. */
l2rw_status l2rw_net_read(const l2rw_net *net, l2rw_net_buffer which,
                          size_t offset, size_t count, float *dst);
/* buffer[offset..offset+count) = src[0..count) (an upload; src may be
 * reused on return). The logits are read-only (L2RW_ERR_ARG). */
l2rw_status l2rw_net_write(l2rw_net *net, l2rw_net_buffer which,
                           size_t offset, size_t count, const float *src);
/* On the device, nothing through the host: dst[offset..offset+count) =
 * src[offset..offset+count) between the parameter-shaped buffers
 * (PARAMS, GRADS, TANGENTS; e.g. the L2RW tangent v = the validation
 * gradient), and a range set to zero. */
l2rw_status l2rw_net_copy(l2rw_net *net, l2rw_net_buffer dst,
                          l2rw_net_buffer src, size_t offset, size_t count);
l2rw_status l2rw_net_zero(l2rw_net *net, l2rw_net_buffer which,
                          size_t offset, size_t count);

/* Dropout masks are a pure function of (key, layer, example, unit): the
 * training loop sets the key once per step so that forward, tangent and
 * backward of that step share one mask and a resumed run draws the same
 * masks. */
void l2rw_net_set_dropout_key(l2rw_net *net, uint64_t key);

/* Forward pass of n <= max_batch examples x [n, c, h, w]. With
 * with_tangent != 0 it also propagates the parameter tangent (the
 * l2rw_net_tangents buffer) with input tangent 0, fused with the forward.
 * Activations are kept for l2rw_net_loss and l2rw_net_backward. */
l2rw_status l2rw_net_forward(l2rw_net *net, const float *x, int n,
                             l2rw_mode mode, int with_tangent);
/* Logits [n, classes] of the last forward (NULL on a device net:
 * l2rw_net_read(net, L2RW_NET_LOGITS, ...)). */
const float *l2rw_net_logits(const l2rw_net *net);

/* Per-example losses. */
typedef enum {
    L2RW_LOSS_CE,             /* softmax cross entropy */
    L2RW_LOSS_BOOTSTRAP_SOFT, /* Reed et al.: target b*y + (1-b)*p */
    L2RW_LOSS_BOOTSTRAP_HARD, /* Reed et al.: target b*y + (1-b)*onehot(argmax p) */
    L2RW_LOSS_GCE,            /* Zhang & Sabuncu: (1 - p_y^q) / q */
    L2RW_LOSS_SCE             /* Wang et al.: a*CE + b*RCE, log 0 := A */
} l2rw_loss_kind;

typedef struct {
    l2rw_loss_kind kind;
    float beta;   /* bootstrap: weight of the given label (0.95 / 0.8) */
    float q;      /* gce exponent (0.7) */
    float alpha;  /* sce: weight of CE (0.1) */
    float sce_b;  /* sce: weight of reverse CE (1.0) */
    float sce_a;  /* sce: value of log 0 in reverse CE (-4) */
} l2rw_loss;

/* The paper's defaults for a loss kind. */
l2rw_loss l2rw_loss_default(l2rw_loss_kind kind);

/* After a forward of n examples: loss[i] = l_i for labels y (may be NULL
 * to skip). If the forward carried a tangent and u != NULL, u[i] is the
 * directional derivative of l_i along the parameter tangent (CE only).
 * Labels out of range give L2RW_ERR_LABEL, a non-finite loss
 * L2RW_ERR_NUMERIC. Loss state is kept for the backward. */
l2rw_status l2rw_net_loss(l2rw_net *net, const int32_t *y,
                          const l2rw_loss *loss_kind, float *loss,
                          float *u);

/* Backward of sum_i w[i] * l_i from the last forward and loss: writes the
 * gradient buffer (overwrites, no accumulation). w may be NULL for
 * uniform 1/n. */
l2rw_status l2rw_net_backward(l2rw_net *net, const float *w);

/* Classes predicted by the last forward (argmax of logits; on a device
 * the logits are downloaded first). */
void l2rw_net_predict(const l2rw_net *net, int32_t *pred);

/* Save and load parameters and batch-norm statistics: a versioned binary
 * file with a magic number, the model name, input shape, classes and a
 * CRC-32 checksum; written atomically (temporary file, then rename). */
l2rw_status l2rw_net_save(const l2rw_net *net, const char *path);
/* Load into an existing net; another architecture is L2RW_ERR_ARCH. */
l2rw_status l2rw_net_load(l2rw_net *net, const char *path);
/* Create a net from a file. Files do not depend on the device: a net
 * saved on one device loads on any other with the same predictions. */
l2rw_status l2rw_net_load_new(l2rw_net **out, const char *path,
                              int max_batch);
/* The same on a device (NULL: the CPU), as l2rw_net_create_on. */
l2rw_status l2rw_net_load_new_on(l2rw_net **out, const char *path,
                                 int max_batch, const l2rw_device *dev);

/* Export to ONNX (opset 17, IR version 8) for inference elsewhere: the
 * eval-mode network (running batch-norm statistics, dropout as identity)
 * with input "input" [N, C, H, W] (N a symbolic batch size), output
 * "logits" [N, classes] and, unless probabilities is 0, "probabilities"
 * (their softmax). Written atomically. */
typedef struct {
    /* Input normalisation x' = (x - mean[c]) / std[c] (l2rw_norm), or
     * NULL for none; norm_channels must equal the net's input channels. */
    const float *mean, *std;
    int norm_channels;
    int norm_in_graph; /* 1: Sub and Div nodes take raw inputs; 0: the
                          model takes normalised inputs and states mean
                          and std in its metadata_props */
    int fold_bn;       /* 1: batch norms right after a conv (whose output
                          nothing else reads) are folded into its weights;
                          0: every batch norm is a BatchNormalization */
    int probabilities; /* 1: also the "probabilities" output */
    const char *producer; /* producer_name; NULL: "l2rw" */
} l2rw_onnx_opts;

/* No normalisation, fold_bn 1, norm_in_graph 1, probabilities 1. */
l2rw_onnx_opts l2rw_onnx_opts_default(void);
/* An operator without an ONNX counterpart in the exporter is
 * L2RW_ERR_UNSUPPORTED naming it; opts may be NULL (the defaults). */
l2rw_status l2rw_net_export_onnx(const l2rw_net *net, const char *path,
                                 const l2rw_onnx_opts *opts);

/* ------------------------------------------------------------- optimizer */

#define L2RW_MAX_MILESTONES 16

typedef struct {
    float lr;            /* learning rate */
    float momentum;      /* heavy-ball momentum, 0 for plain SGD */
    float weight_decay;  /* L2 coefficient added to the gradient */
    int n_milestones;    /* step schedule: lr *= decay at each milestone */
    long milestones[L2RW_MAX_MILESTONES];
    float decay;
} l2rw_sgd_cfg;

typedef struct l2rw_sgd l2rw_sgd;

l2rw_status l2rw_sgd_create(l2rw_sgd **out, const l2rw_net *net,
                            const l2rw_sgd_cfg *cfg);
void l2rw_sgd_free(l2rw_sgd *opt);
/* Learning rate at a given step (0-based). */
float l2rw_sgd_lr(const l2rw_sgd *opt, long step);
/* params -= lr(step) * (velocity = momentum*velocity + grad + wd*params) */
l2rw_status l2rw_sgd_step(l2rw_sgd *opt, l2rw_net *net, long step);
/* Velocity buffer (num_params floats), for checkpoints; AdamW's first
 * moment m. The optimizer's state lives with the net's buffers, on its
 * device: NULL for a net on a device (use l2rw_optim_read/_write). */
float *l2rw_sgd_velocity(l2rw_sgd *opt);

/* Beyond SGD: AdamW, a cosine schedule, warm-up and gradient clipping,
 * on the same l2rw_sgd handle (so l2rw_sgd_step, l2rw_sgd_lr and every
 * method step take it). A zero-initialised l2rw_optim_cfg is SGD with
 * the step schedule of l2rw_sgd_cfg, no warm-up, no clipping: exactly
 * l2rw_sgd_create, bit for bit. */
typedef enum {
    L2RW_OPTIM_SGD = 0, /* heavy-ball SGD, L2 weight decay in the gradient */
    L2RW_OPTIM_ADAMW    /* Loshchilov & Hutter: decoupled weight decay,
                           bias-corrected moments; ignores momentum */
} l2rw_optim_kind;

typedef enum {
    L2RW_LR_STEP = 0, /* lr * decay^(milestones passed), l2rw_sgd_cfg */
    L2RW_LR_COSINE    /* after the warm-up, lr_min + (lr - lr_min) *
                         (1 + cos(pi * p)) / 2, p from 0 to 1 over the
                         steps [warmup, total_steps); lr_min afterwards */
} l2rw_lr_schedule;

typedef struct {
    l2rw_optim_kind kind;
    float beta1, beta2, eps; /* AdamW: moment decays in [0, 1), eps > 0 */
    l2rw_lr_schedule schedule;
    long warmup_steps;       /* linear warm-up (either schedule): step s <
                                N runs at lr * (s + 1) / N, so the first
                                step is lr / N, never a wasted 0 */
    float lr_min;            /* cosine: the final rate, in [0, lr] */
    long total_steps;        /* cosine: the run's length (> 0) */
    float clip_grad_norm;    /* > 0: the gradient (as given, before weight
                                decay) is scaled so that its global L2 norm
                                is at most this; 0: no clipping */
} l2rw_optim_cfg;

/* Zero-initialised but with AdamW's usual beta1 0.9, beta2 0.999,
 * eps 1e-8 (ignored by SGD). */
l2rw_optim_cfg l2rw_optim_cfg_default(l2rw_optim_kind kind);
/* "sgd" | "adamw" and "step" | "cosine"; others are L2RW_ERR_ARG. */
l2rw_status l2rw_optim_parse(const char *name, l2rw_optim_kind *out);
const char *l2rw_optim_name(l2rw_optim_kind kind);
l2rw_status l2rw_lr_schedule_parse(const char *name, l2rw_lr_schedule *out);
const char *l2rw_lr_schedule_name(l2rw_lr_schedule s);
/* Checks both configurations (as create does) without a net. */
l2rw_status l2rw_optim_check(const l2rw_sgd_cfg *cfg,
                             const l2rw_optim_cfg *ext);
/* ext NULL: l2rw_sgd_create. AdamW:
 *   t <- t + 1 (updates made, not steps: an l2rw step that skips its
 *   update leaves t and the moments alone)
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr(step) * (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)
 *                         + wd * p) */
l2rw_status l2rw_optim_create(l2rw_sgd **out, const l2rw_net *net,
                              const l2rw_sgd_cfg *cfg,
                              const l2rw_optim_cfg *ext);
/* The extended configuration the optimizer was made with. */
l2rw_optim_cfg l2rw_optim_config(const l2rw_sgd *opt);
/* AdamW's second moment v (num_params floats), NULL for SGD (and for a
 * net on a device). */
float *l2rw_optim_second_moment(l2rw_sgd *opt);

/* The optimizer's state, for checkpoints, on any device. */
typedef enum {
    L2RW_OPTIM_FIRST, /* SGD's velocity, AdamW's first moment m */
    L2RW_OPTIM_SECOND /* AdamW's second moment v (not SGD's) */
} l2rw_optim_buffer;

/* As l2rw_net_read / l2rw_net_write, over num_params floats. */
l2rw_status l2rw_optim_read(const l2rw_sgd *opt, l2rw_optim_buffer which,
                            size_t offset, size_t count, float *dst);
l2rw_status l2rw_optim_write(l2rw_sgd *opt, l2rw_optim_buffer which,
                             size_t offset, size_t count, const float *src);
/* dst's state (buffers and update count) = src's: optimizers of the same
 * kind made for nets of the same size on the same device; the copy stays
 * on the device. */
l2rw_status l2rw_optim_copy_state(l2rw_sgd *dst, const l2rw_sgd *src);
/* Updates made (AdamW's t), for checkpoints. */
long l2rw_optim_updates(const l2rw_sgd *opt);
l2rw_status l2rw_optim_set_updates(l2rw_sgd *opt, long t);
/* L2 norm of the last step's gradient before clipping, computed in
 * double over fixed blocks in a fixed order (the same for any thread
 * count); NaN when clipping is off or before the first step. */
double l2rw_optim_grad_norm(const l2rw_sgd *opt);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#include "l2rw_data.h"
#include "l2rw_reweight.h"
#include "l2rw_train.h"
#include "l2rw_check.h"

#endif
