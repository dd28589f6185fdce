/* l2rw training loop: data -> net -> reweighting -> SGD -> evaluation ->
 * outputs, with checkpoints and bit-identical resume. Included by l2rw.h.
 *
 * The loop never prints: it reports through a callback and writes its
 * files (all atomically) into cfg.out_dir:
 *
 *   metrics.csv    one row per evaluation (step, epoch, train_loss,
 *                  test_accuracy, test_loss, mean_weight, zero_weight_share,
 *                  clean_weight_share), rewritten after every evaluation
 *   summary.json   method, model, data, noise, seed, steps, seconds,
 *                  final/best test accuracy (fractions), clean weight
 *                  share, command, ...
 *   examples.csv   the per-example record of the reweighting module
 *   model.l2rw     the trained net (l2rw_net_save)
 *   norm.txt       the normalisation statistics (for l2rw eval)
 *   data.json      the data audit (what the noise and splits did)
 *   checkpoint.l2rw  every checkpoint_every steps (main and fine-tune
 *                  steps counted together), at the end of the main
 *                  phase, and when *stop is set
 *
 * Resume: a run of 2N steps and a run of N steps resumed for N more give
 * bit-identical parameters and metrics with the same thread count, and
 * so does a run stopped during fine-tuning (--finetune-clean) and
 * resumed. Every random draw of a step is a pure function of (seed,
 * step), so a checkpoint holds the main and fine-tune step counts,
 * parameters, batch-norm state, velocity, the accumulated statistics,
 * the metrics so far, and the per-example record (24 bytes per training
 * example, whatever the number of steps), so that examples.csv equals
 * that of an uninterrupted run. A checkpoint written during fine-tuning
 * resumes only with the same steps and finetune_lr and finetune_clean at
 * least its fine-tune steps (L2RW_ERR_ARG otherwise). The
 * checkpoint carries a fingerprint of every option that shapes the
 * trajectory (not steps, threads, out dir or reporting options); resuming
 * from a directory of another configuration is L2RW_ERR_ARG naming the
 * first option that differs. */
#ifndef L2RW_TRAIN_H
#define L2RW_TRAIN_H

#include "l2rw.h"

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) /* exported: see l2rw.h */
#pragma GCC visibility push(default)
#endif

/* File names inside the out directory. */
#define L2RW_FILE_METRICS "metrics.csv"
#define L2RW_FILE_SUMMARY "summary.json"
#define L2RW_FILE_EXAMPLES "examples.csv"
#define L2RW_FILE_MODEL "model.l2rw"
#define L2RW_FILE_NORM "norm.txt"
#define L2RW_FILE_AUDIT "data.json"
#define L2RW_FILE_CHECKPOINT "checkpoint.l2rw"

typedef enum {
    L2RW_EVENT_START,      /* data and net ready (data, step = start step) */
    L2RW_EVENT_STEP,       /* after every `report_every` training steps */
    L2RW_EVENT_EVAL,       /* after an evaluation (metrics row appended) */
    L2RW_EVENT_CHECKPOINT, /* a checkpoint was written */
    L2RW_EVENT_FINETUNE,   /* fine-tuning on the clean set finished */
    L2RW_EVENT_DONE        /* outputs written (or the run was stopped) */
} l2rw_train_event;

/* One row of metrics.csv. Weight statistics are over the training
 * examples seen since the previous row: mean_weight is the mean of
 * n * w_i (1 for plain training), zero_share the share of examples with
 * w_i = 0, clean_share the share of the weight mass on examples whose
 * given label is the true one (-1 when nothing was corrupted). */
typedef struct {
    long step;
    double epoch;
    double train_loss;     /* mean unweighted loss of the training batches */
    double test_accuracy;  /* fraction in [0, 1]; -1 without a test set */
    double test_loss;
    double mean_weight;
    double zero_share;
    double clean_share;
} l2rw_metrics_row;

/* Where a device run keeps its data sets. DEVICE: the training, clean
 * and test images are uploaded once and batches are gathered (and
 * augmented) on the device; HOST: batches are gathered on the host and
 * uploaded every step; AUTO (the default): DEVICE when the sets fit in
 * 90% of the device's free memory after the net, less 256 MiB, else
 * HOST. The bits of a run are the same either way. On the CPU there is
 * one memory and the setting has no effect. */
typedef enum {
    L2RW_PLACE_AUTO,
    L2RW_PLACE_DEVICE,
    L2RW_PLACE_HOST
} l2rw_data_place;

/* "auto", "device", "host"; L2RW_ERR_ARG for anything else. */
l2rw_status l2rw_data_place_parse(const char *s, l2rw_data_place *out);
const char *l2rw_data_place_name(l2rw_data_place p);

typedef struct {
    l2rw_train_event event;
    long step;             /* steps done (main phase) */
    long total_steps;
    long finetune_step, finetune_total;
    double epoch;
    double seconds;        /* wall time of this process so far */
    double steps_per_sec;  /* over this process's steps */
    double eta_seconds;    /* estimate of the time left, -1 unknown */
    l2rw_metrics_row recent; /* window since the last STEP event */
    double last_test_accuracy; /* -1 before the first evaluation */
    double best_test_accuracy;
    long resumed_from;     /* step the run resumed at, 0 for a fresh run */
    const l2rw_data *data; /* START only */
    const char *data_place; /* START: where the batches come from, in
                               words ("device memory (212 MiB: ...)") */
    const char *path;      /* CHECKPOINT: its file */
} l2rw_train_progress;

/* Returns nonzero to stop the run (a checkpoint is written first). */
typedef int (*l2rw_progress_fn)(const l2rw_train_progress *p, void *ctx);

typedef struct {
    /* data (see l2rw_data_cfg) */
    const char *data;        /* required */
    const char *noise;       /* "none" */
    const char *imbalance;   /* "none" */
    long train_size;         /* 0: all */
    int val_per_class;       /* clean validation set: K per class */
    long val_size;           /* or N in total (wins when > 0) */
    const char *val_data;    /* NULL, or the clean set's own data spec
                                (l2rw_data_cfg.val_data; both sizes 0:
                                all of it) */
    int normalise;           /* 1 */
    l2rw_data_progress_fn data_progress; /* image decoding, or NULL */
    void *data_progress_ctx;
    /* model and method */
    const char *model;       /* "lenet" */
    const char *method;      /* "l2rw" */
    const char *meta_params; /* "all" or "last" */
    long warmup_steps;       /* plain steps before the method starts */
    /* optimisation */
    int batch;               /* 100 */
    int val_batch;           /* 100 (the whole clean set when smaller) */
    long steps;              /* > 0, or 0 to use epochs */
    double epochs;           /* used when steps == 0 */
    l2rw_sgd_cfg sgd;        /* lr, momentum, weight decay, schedule */
    l2rw_optim_cfg optim;    /* SGD or AdamW, step or cosine schedule,
                                warm-up, clipping (total_steps is set by
                                the loop: the run's main-phase steps) */
    int no_divergence_check; /* 1: train on when the loss diverges (else
                                the run fails with L2RW_ERR_NUMERIC: the
                                mean loss of 50 steps above 3x its
                                minimum and 1.5 ln(classes); the last
                                checkpoint stays that of before) */
    long finetune_clean;     /* steps on the clean set after training */
    float finetune_lr;       /* 0: the last learning rate of the schedule */
    uint64_t seed;
    int threads;             /* 0: all cores */
    /* reporting and outputs */
    long eval_every;         /* steps between evaluations; 0: only at end */
    int eval_batch;          /* batch of the test-set evaluation */
    long checkpoint_every;   /* 0: only when stopped */
    long report_every;       /* steps between STEP events (1) */
    const char *out_dir;     /* NULL: no files at all */
    const char *resume_dir;  /* NULL: fresh run; else read its checkpoint
                                (outputs go to out_dir, or resume_dir
                                when out_dir is NULL) */
    int overwrite;           /* an out_dir that holds another run (its
                                checkpoint, model, ...) is refused with
                                L2RW_ERR_ARG unless the run continues it
                                (resume_dir is out_dir) or this is 1: then
                                that run's files are removed once this
                                run's options and data passed their
                                checks */
    const char *command;     /* recorded in summary.json */
    l2rw_progress_fn progress;
    void *progress_ctx;
    /* polled every step: nonzero => checkpoint and stop (a signal
       handler may set it) */
    volatile sig_atomic_t *stop;
    /* NULL: one process. Else this process is rank `rank` of `size`
     * training together (l2rw_method_set_comm says what is computed):
     * every rank is given the same configuration and data; every rank
     * draws the whole batch, computes on its share and evaluates its
     * share of the test set (with rank 0's batch-norm running
     * statistics); rank 0 alone writes the outputs (out_dir need only
     * exist where rank 0 runs; a resumed run's checkpoint is read by
     * every rank). The number of ranks is part of the fingerprint: a
     * run resumes with the same number. */
    const l2rw_comm *comm;
    /* NULL: the CPU. Else the device the net runs on (l2rw_net_create_on):
     * the batches go in, losses and weights come out; evaluation runs
     * there too. The data stay on the host. A checkpoint holds host
     * copies, so a run resumes on another device (not bit-identically
     * across CPU and GPU; bit-identically on the same one). */
    const l2rw_device *device;
    /* On a device: where the data live (see l2rw_data_place). */
    l2rw_data_place data_place;
} l2rw_train_cfg;

typedef struct {
    long steps;                 /* main-phase steps done */
    long finetune_steps;
    double seconds;             /* all processes of the run together */
    double final_test_accuracy; /* -1 without a test set */
    double final_test_loss;
    double best_test_accuracy;
    double clean_weight_share;  /* over the whole run, -1 if unknown */
    double mean_weight, zero_share;
    double auc;                 /* corrupted vs clean by mean weight, -1 */
    double noise_rate;          /* share of training labels corrupted */
    long resumed_from;
    int started;                /* 1 once training began: a failure after
                                   it is a failed run, not bad input */
    int stopped;                /* 1 when *stop or the callback ended it */
    long n_train, n_val, n_test;
    /* This process's training loop, from its first step to the outputs
     * (evaluations and checkpoints included; data loading not): steps
     * of both phases and seconds. Their ratio against `l2rw bench`'s
     * step time is the loop's overhead. */
    long loop_steps;
    double loop_seconds;
    double eval_seconds;        /* of loop_seconds, the test evaluations */
} l2rw_train_result;

/* The defaults, chosen for Fashion-MNIST with LeNet: model lenet, method
 * l2rw, batch 100, val batch 100, 3000 steps, lr 0.01, momentum 0.9,
 * weight decay 5e-4, 100 clean validation examples per class, seed 1,
 * evaluation every 500 steps, checkpoint every 1000. The rate: with 40%
 * background flips and 800 steps, l2rw reached 80.4% test accuracy at
 * lr 0.01, 78.2% at 0.02 and diverged at 0.05 and 0.1 (its weights put
 * the whole step on the examples that agree with the clean set, so the
 * step is longer than a plain step's mean gradient); plain reached 68.2%,
 * 69.9% and 70.7% at 0.01, 0.02, 0.05. */
l2rw_train_cfg l2rw_train_cfg_default(void);

/* Checks every option that can be checked without reading data (names,
 * specs, ranges) and returns L2RW_ERR_ARG naming the first bad one. */
l2rw_status l2rw_train_check_cfg(const l2rw_train_cfg *cfg);
/* The data configuration a run of cfg prepares its data with (spec,
 * noise, imbalance, sizes, clean split, normalisation, seed), for
 * preparing the same data outside the loop. */
l2rw_data_cfg l2rw_train_data_cfg(const l2rw_train_cfg *cfg);

/* Runs training. Validates the configuration, loads and prepares the
 * data, builds the net and reads the resume checkpoint before it creates
 * the out directory, so bad input leaves nothing behind. res may be NULL. */
l2rw_status l2rw_train_run(const l2rw_train_cfg *cfg, l2rw_train_result *res);

/* The options a checkpoint was written with, as "key=value" lines whose
 * keys are the CLI's option names (data, noise, model, lr, ...; floats in
 * C99 hexadecimal), then the run's length (steps, finetune-clean,
 * finetune-lr, checkpoint-every: a resumed run may change these) and the
 * thread count it computed with (threads: the CLI resumes with it unless
 * told otherwise, since the bits depend on it), read
 * from DIR/checkpoint.l2rw, so that `l2rw train --resume DIR` needs no
 * other option. */
l2rw_status l2rw_train_resume_config(const char *dir, char *buf,
                                     size_t size);

/* Accuracy (fraction) and mean CE loss of net on d in batches of at most
 * batch examples (evaluation mode). */
l2rw_status l2rw_evaluate(l2rw_net *net, const l2rw_dataset *d, int batch,
                          double *accuracy, double *loss);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
