/* l2rw reweighting methods. Included by l2rw.h.
 *
 * One interface for every method: a context made once from a config, and
 * one step function the training loop calls each step. The step computes
 * the example weights w (sum 1, or all 0) and does the update: forward,
 * loss, backward of sum_i w_i l_i, SGD step.
 *
 * Call order of a training loop:
 *
 *   l2rw_method_cfg cfg = l2rw_method_cfg_default();
 *   l2rw_method_parse("l2rw", &cfg.method);       (CLI --method)
 *   cfg.train_y = train.y; cfg.n_train = train.n; cfg.classes = K;
 *   l2rw_method_create(&m, &cfg, net);
 *   l2rw_record_create(&rec, train.n, train.id, train.y, train.y_true);
 *   for step = 0, 1, ...:
 *       if (l2rw_method_needs_balanced_batches(m, step))
 *           l2rw_method_balanced_batch(m, step, batch, idx);
 *       else
 *           l2rw_sampler_batch(&sampler, step, idx);
 *       l2rw_gather(...)  training batch x, y, y_true
 *       (l2rw only) validation batch vx, vy from the clean set
 *       l2rw_method_step(m, net, opt, step, x, y, y_true, n, vx, vy, nv,
 *                        &st, w);
 *       l2rw_record_add(rec, idx, n, w);
 *       l2rw_stats_window_add(&win, &st);        (log its mean now and then)
 *   then, for --finetune-clean S: S calls of l2rw_finetune_step on
 *   batches of the clean set (steps continue the count, so the SGD
 *   schedule continues);
 *   l2rw_record_save(rec, "examples.csv"); l2rw_record_auc(rec, &auc);
 *
 * Determinism: every random choice of a step (random weights, balanced
 * batches, dropout masks) is a pure function of (cfg.seed, step), so a
 * resumed run repeats them. l2rw_method_step sets the net's dropout key
 * itself: l2rw_hash2(seed', step) with separate seeds' for the training
 * and the validation pass. */
#ifndef L2RW_REWEIGHT_H
#define L2RW_REWEIGHT_H

#include "l2rw.h" /* l2rw_status, l2rw_net, l2rw_sgd (no-op from l2rw.h) */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) /* exported: see l2rw.h */
#pragma GCC visibility push(default)
#endif

/* --------------------------------------------------------------- methods */

typedef enum {
    L2RW_METHOD_PLAIN,          /* uniform weights 1/n, cross entropy */
    L2RW_METHOD_L2RW,           /* Ren et al. 2018, exact meta gradient */
    L2RW_METHOD_RANDOM,         /* w = max(z,0)/sum, z ~ N(0,1) */
    L2RW_METHOD_PROPORTION,     /* w ~ 1 / train count of the class */
    L2RW_METHOD_RESAMPLE,       /* class-balanced batches, uniform w */
    L2RW_METHOD_HARD_MINING,    /* minority + hardest majority, see below */
    L2RW_METHOD_BOOTSTRAP_SOFT, /* uniform w, bootstrap-soft loss (0.95) */
    L2RW_METHOD_BOOTSTRAP_HARD, /* uniform w, bootstrap-hard loss (0.8) */
    L2RW_METHOD_GCE,            /* uniform w, generalized CE (q 0.7) */
    L2RW_METHOD_SCE             /* uniform w, symmetric CE (0.1, 1, -4) */
} l2rw_method;

#define L2RW_NUM_METHODS 10

/* Names as above, lower case with '-': "plain", "l2rw", "random",
 * "proportion", "resample", "hard-mining", "bootstrap-soft",
 * "bootstrap-hard", "gce", "sce". An unknown name is L2RW_ERR_ARG and
 * l2rw_last_error() lists the valid names. */
l2rw_status l2rw_method_parse(const char *name, l2rw_method *out);
/* Name of a method ("?" when out of range). */
const char *l2rw_method_name(l2rw_method m);
/* "plain, l2rw, random, ..." for usage texts. */
const char *l2rw_method_names(void);
/* The loss a method trains with (cross entropy except bootstrap, gce,
 * sce, which get l2rw_loss_default of their kind). */
l2rw_loss l2rw_method_loss(l2rw_method m);

/* Parameters the L2RW meta gradient goes through. */
typedef enum {
    L2RW_META_ALL,  /* every parameter: the exact weights (default) */
    L2RW_META_LAST  /* only the last dense layer (an approximation):
                       u_i = sum_c dz_ic (V h_i + v_b)_c with h_i the
                       input of the last dense layer, (V, v_b) the part of
                       v on it, V = (1/m) dz'^T h', v_b = mean_j dz'_j.
                       l2rw_method_step computes this from h and h' with
                       no validation backward and no tangent pass when
                       the engine provides l2rw__net_last_input (net.c);
                       otherwise, and in l2rw_meta_scores, with the fused
                       forward+tangent pass, the tangent zeroed outside
                       l2rw_net_last_layer_range (same values, the cost
                       of ALL). CPU time, 1 thread, LeNet, batch 100,
                       validation batch 100: plain 11.5 ms, last with
                       h 16.4 ms, last masked 28.5 ms, all 27.7 ms. */
} l2rw_meta_params;

/* "all" or "last"; else L2RW_ERR_ARG. */
l2rw_status l2rw_meta_params_parse(const char *name, l2rw_meta_params *out);
const char *l2rw_meta_params_name(l2rw_meta_params p);

/* ---------------------------------------------------------------- config */

typedef struct {
    l2rw_method method;
    l2rw_meta_params meta_params; /* l2rw only */
    long warmup_steps;            /* plain steps before the method starts */
    uint64_t seed;                /* random, resample, dropout keys */
    /* Training set's given (possibly noisy) labels: proportion,
     * hard-mining and resample need them (class counts, balanced
     * draws); the context keeps its own copy. Other methods may leave
     * them NULL/0. classes = 0 takes l2rw_net_classes(net). */
    const int32_t *train_y;
    int n_train;
    int classes;
} l2rw_method_cfg;

/* method plain, meta ALL, no warmup, seed 0, no labels. */
l2rw_method_cfg l2rw_method_cfg_default(void);

typedef struct l2rw_method_ctx l2rw_method_ctx;

/* Batches of every step may hold up to l2rw_net_max_batch(net) examples
 * (training and validation). Checks the config (labels in range, labels
 * present when the method needs them). */
l2rw_status l2rw_method_create(l2rw_method_ctx **out,
                               const l2rw_method_cfg *cfg,
                               const l2rw_net *net);
void l2rw_method_free(l2rw_method_ctx *m);
const l2rw_method_cfg *l2rw_method_config(const l2rw_method_ctx *m);

/* 1 when the loop must feed class-balanced batches at this step
 * (resample after the warmup), else 0. */
int l2rw_method_needs_balanced_batches(const l2rw_method_ctx *m, long step);
/* Class-balanced batch of training-set indices for `step`: each draw
 * picks a class uniformly among the classes present in cfg.train_y, then
 * an example of that class uniformly, with replacement; a pure function
 * of (seed, step). Only for resample (else L2RW_ERR_ARG). */
l2rw_status l2rw_method_balanced_batch(const l2rw_method_ctx *m, long step,
                                       int n, int32_t *idx);
/* 1 when the method needs a validation batch at this step (l2rw after
 * the warmup). The other methods accept vx = vy = NULL, nv = 0. */
int l2rw_method_needs_validation(const l2rw_method_ctx *m, long step);

/* ------------------------------------------------------------ statistics */

/* What one step did. */
typedef struct {
    int n;                 /* training examples */
    int warmup;            /* 1: ran plain because step < warmup_steps */
    double weight_sum;     /* sum_i w_i: 1, or 0 when skipped */
    int n_zero;            /* examples with w_i = 0 */
    double clean_mass;     /* sum of w_i over y_i == y_true_i, divided by
                              weight_sum; NaN without y_true or when
                              weight_sum = 0 */
    int all_nonpositive;   /* l2rw: every u_i <= 0, so no update (the
                              step still counts) */
    int updated;           /* 1 when the SGD step ran */
    double mean_loss;      /* unweighted mean of l_i (the method's loss) */
    double weighted_loss;  /* sum_i w_i l_i */
    double val_loss;       /* l2rw: mean loss of the validation batch,
                              else NaN */
} l2rw_step_stats;

/* Means over a window of steps (reset after each log line). clean_mass
 * averages the steps where it is defined. */
typedef struct {
    long steps, warmup_steps, nonpositive_steps, updated_steps;
    long examples, zero_weights;
    double weight_sum, mean_loss, weighted_loss;
    double clean_mass_sum, val_loss_sum;
    long clean_mass_steps, val_loss_steps;
} l2rw_stats_window;

void l2rw_stats_window_reset(l2rw_stats_window *w);
void l2rw_stats_window_add(l2rw_stats_window *w, const l2rw_step_stats *st);
/* Means of the window: weight_sum, mean_loss, weighted_loss, clean_mass
 * and val_loss are averages per step (NaN when no step defined them);
 * n_zero is the total, n the examples, all_nonpositive and warmup the
 * number of such steps, updated the number of updates. */
void l2rw_stats_window_mean(const l2rw_stats_window *w, l2rw_step_stats *out);
/* Share of zero weights among the window's examples (NaN if empty). */
double l2rw_stats_window_zero_share(const l2rw_stats_window *w);

/* ------------------------------------------------------------------ step */

/* One training step of the method on the batch x [n, c, h, w], labels y
 * (y_true may be NULL: only for the clean_mass statistic). vx [nv, ...],
 * vy: a clean validation batch (l2rw only). Writes the weights used to
 * w_out [n] (may be NULL) and the statistics to st (may be NULL). Step
 * `step` is passed to l2rw_sgd_step (learning-rate schedule).
 *
 *   plain, resample, bootstrap-*, gce, sce: uniform weights through
 *     l2rw_net_backward(NULL), the method's loss.
 *   l2rw: see l2rw_meta_scores; w_i = max(u_i,0)/sum_k max(u_k,0); when
 *     every u_i <= 0, w = 0, no SGD step (momentum is not advanced
 *     either), stats all_nonpositive = 1. The backward reuses the
 *     forward of the tangent pass (no second forward).
 *   random: z_i ~ N(0,1) from an RNG seeded by hash(seed, step),
 *     w_i = max(z_i,0)/sum_k max(z_k,0) (all z_i <= 0: no update, as
 *     l2rw).
 *   proportion: a_i = 1 / count(y_i) over cfg.train_y, w_i = a_i/sum a_k.
 *   hard-mining: the majority classes are those whose count in
 *     cfg.train_y is strictly above the mean count of the classes
 *     present; every other class is a minority class. Let M = number of
 *     minority-class examples in the batch and k = max(M, 1). Keep all
 *     minority examples and the k majority examples of highest loss
 *     (ties: lower batch position first; all of them when the batch has
 *     fewer); w = 1/kept on kept examples, 0 on the others. One forward
 *     gives the losses, the backward reuses it (zero weights drop
 *     examples). Balanced counts: no majority, every example is kept,
 *     and the step is exactly a plain step.
 * Every method whose weights come out uniform takes the plain path, so
 * it reproduces plain training bit for bit. Before warmup_steps, every
 * method runs a plain step with cross entropy. */
l2rw_status l2rw_method_step(l2rw_method_ctx *m, l2rw_net *net,
                             l2rw_sgd *opt, long step, const float *x,
                             const int32_t *y, const int32_t *y_true, int n,
                             const float *vx, const int32_t *vy, int nv,
                             l2rw_step_stats *st, float *w_out);

/* --finetune-clean: one plain cross-entropy step (uniform weights) on a
 * batch of the clean set, whatever the method. The loop draws the
 * batches from the clean set with its own sampler and passes steps that
 * continue its count. st may be NULL. */
l2rw_status l2rw_finetune_step(l2rw_method_ctx *m, l2rw_net *net,
                               l2rw_sgd *opt, long step, const float *x,
                               const int32_t *y, int n, l2rw_step_stats *st);

/* One update with given weights w [n] (NULL: uniform, the plain path)
 * and loss (NULL: cross entropy): forward in training mode, loss,
 * backward of sum_i w_i l_i, SGD step. loss_out [n] (may be NULL) gets
 * the per-example losses. Weights must be finite and >= 0. */
l2rw_status l2rw_weighted_step(l2rw_net *net, l2rw_sgd *opt, long step,
                               const float *x, const int32_t *y, int n,
                               const l2rw_loss *loss, const float *w,
                               float *loss_out);

/* The L2RW scores u_i = D_v l_i(theta) = <v, grad_theta l_i>, with
 * v = grad_theta of the mean cross entropy of the validation batch:
 *   1. validation forward in L2RW_MODE_TRAIN_FROZEN, loss, backward
 *      (uniform 1/nv) -> gradient buffer = v; val_loss (may be NULL)
 *      gets the mean validation loss;
 *   2. tangent buffer = v (META_LAST: zero outside
 *      l2rw_net_last_layer_range);
 *   3. training forward with tangent in mode `mode` (L2RW_MODE_TRAIN in
 *      a step: the step's only update of the batch-norm running
 *      averages; TRAIN_FROZEN leaves the net untouched), cross entropy:
 *      loss [n] (may be NULL) and u [n].
 * The meta gradient of the paper is g_i = -alpha u_i (DESIGN.md sec. 2).
 * The training forward and its loss stay in the net, so an
 * l2rw_net_backward may follow. The gradient buffer holds v and the
 * tangent buffer the tangent used. */
l2rw_status l2rw_meta_scores(l2rw_net *net, l2rw_meta_params meta,
                             l2rw_mode mode, const float *x,
                             const int32_t *y, int n, const float *vx,
                             const int32_t *vy, int nv, float *u,
                             float *loss, float *val_loss);

/* w_i = max(s_i, 0) / sum_k max(s_k, 0) (sum in double); all s_i <= 0
 * gives w = 0. Returns the number of positive entries. Non-finite s is
 * L2RW_ERR_NUMERIC via the status-returning variant below. */
int l2rw_weights_normalise(const float *s, int n, float *w);
l2rw_status l2rw_weights_from_scores(const float *s, int n, float *w,
                                     int *positive);

/* -------------------------------------------------------- data parallel */

/* A group of `size` processes (ranks) that train one net together, each
 * on its share of every batch (DESIGN.md section 5). The caller supplies
 * the communication (MPI, NCCL, threads); the library only calls these.
 * Every rank makes the same calls in the same order. A sum must leave
 * the same bits on every rank (e.g. a reduce to one rank followed by a
 * broadcast), so that the ranks' parameters never drift apart. A failed
 * call returns a status (with l2rw__fail's message) and the step fails
 * with it; the caller then ends the group (MPI_Abort), since the other
 * ranks wait in their next sum. */
typedef struct {
    int rank, size;   /* 0 <= rank < size */
    void *ctx;        /* passed to the functions */
    /* buf[0..n) <- sum over the ranks of their buf[0..n) */
    l2rw_status (*sum_f32)(void *ctx, float *buf, size_t n);
    l2rw_status (*sum_f64)(void *ctx, double *buf, size_t n);
} l2rw_comm;

/* The share of rank r of n examples: [*begin, *begin + *count) with
 * begin = floor(n r / size); shares differ by at most one example, so a
 * batch need not be divisible by the number of ranks. */
void l2rw_shard(int n, int rank, int size, int *begin, int *count);

/* From now on l2rw_method_step and l2rw_finetune_step are given the
 * whole batch (the same on every rank) and compute the forward and
 * backward of this rank's share only (l2rw_shard of the training and of
 * the validation batch). Then:
 *   v    = the validation gradient of the whole validation batch (sum
 *          over ranks of their share's gradient times share/nv);
 *   u_i  = the rank's own tangent pass (exact for its share);
 *   w    = the normalisation over the whole batch (u gathered);
 *   g    = sum over ranks of the gradient of sum_i w_i l_i of the share;
 * and every rank applies the same update. Other methods normalise over
 * the whole batch likewise (hard mining ranks the whole batch's losses).
 * Without batch norm in training mode this is one process with the
 * whole batch, to float rounding; with it, batch statistics are each
 * rank's own (as PyTorch's DistributedDataParallel), and so is each
 * rank's running state. The step statistics and w_out are those of the
 * whole batch, the same on every rank. The net may be built for the
 * share size; the whole batch may hold up to size x the net's max batch.
 * A comm of size 1 (or NULL) is one process. The comm is copied. */
l2rw_status l2rw_method_set_comm(l2rw_method_ctx *m, const l2rw_comm *comm);

/* ---------------------------------------------------- per-example record */

/* For every training example (by its index 0..n-1 in the training set):
 * sum of n*w_i over the batches it was in (so a uniform weight counts
 * 1 whatever the batch size), number of times seen, number of zero
 * weights. */
typedef struct l2rw_record l2rw_record;

/* id [n]: the example ids written to the CSV (NULL: 0..n-1); y [n] the
 * given labels; y_true [n] the true labels or NULL when unknown. The
 * arrays are copied. */
l2rw_status l2rw_record_create(l2rw_record **out, int n, const int32_t *id,
                               const int32_t *y, const int32_t *y_true);
void l2rw_record_free(l2rw_record *r);
/* A batch: idx [n] training-set indices (repeats allowed), w [n] the
 * weights of the step (sum 1 or 0). */
l2rw_status l2rw_record_add(l2rw_record *r, const int32_t *idx, int n,
                            const float *w);
/* Example i: mean weight (NaN when never seen), zero-weight share, times
 * seen. */
void l2rw_record_get(const l2rw_record *r, int i, double *mean_weight,
                     double *zero_share, long *seen);
/* The accumulated arrays (a caller's own checkpoints, inspection): each
 * l2rw_record_size(r) entries, indexed by training-set position. Writing
 * them back restores the record exactly. */
int l2rw_record_size(const l2rw_record *r);
void l2rw_record_arrays(l2rw_record *r, double **weight_sum, int64_t **seen,
                        int64_t **zeros);
/* Write examples.csv atomically: header
 *   id,given_label,true_label,corrupted,mean_weight,zero_weight_share,seen
 * one row per example, lowest mean weight first (ties: lower id first),
 * never-seen examples last with empty weight fields; true_label and
 * corrupted are empty when the true labels are unknown. */
l2rw_status l2rw_record_save(const l2rw_record *r, const char *path);
/* Same, naming what the data's sources know (NULL or a zeroed struct:
 * the plain file above): with class names, a column given_class (the
 * given label's name); with training files, a last column file (the
 * example's file, by its id). Both are quoted as RFC 4180 says when they
 * hold a comma, quote, CR or LF. An id without a name leaves the field
 * empty. Readers should find columns by their header name: columns may
 * be added, never renamed. */
l2rw_status l2rw_record_save_named(const l2rw_record *r, const char *path,
                                   const l2rw_sources *src);
/* Area under the ROC curve of the mean weight separating clean
 * (y == y_true, positive) from corrupted examples, over the examples
 * seen at least once; ties count 1/2 (Mann-Whitney U / (P N)). No true
 * labels, or no clean or no corrupted example seen: L2RW_ERR_ARG. */
l2rw_status l2rw_record_auc(const l2rw_record *r, double *auc);
/* Same statistic on plain arrays: score [n], positive [n] (0/1). */
l2rw_status l2rw_auc(const double *score, const uint8_t *positive, int n,
                     double *auc);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
