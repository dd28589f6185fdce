/* Internal state of the training loop shared by train.c (the loop) and
 * train_io.c (checkpoints, metrics.csv, summary.json). Not public. */
#ifndef L2RW_TRAIN_INTERNAL_H
#define L2RW_TRAIN_INTERNAL_H

#include "binio.h"
#include "common.h"

/* The per-example record's accumulators as a checkpoint section
 * (reweight_record.c): i32 n, then f64 sum of n*w [n], i64 times seen
 * [n], i64 zero weights [n]; fixed size, whatever the number of steps.
 * Restoring the sums bit for bit gives a resumed run the examples.csv of
 * an uninterrupted one. The reader refuses another n and inconsistent
 * entries (L2RW_ERR_FORMAT naming the file) and then leaves r as it
 * was. */
l2rw_status l2rw__record_write(l2rw_bwriter *w, const l2rw_record *r);
l2rw_status l2rw__record_read(l2rw_breader *br, l2rw_record *r);

/* Divergence detector of the main phase (train_diverge.c): the mean
 * training loss of the last DIVERGE_WINDOW steps against the lowest such
 * mean so far. Kept in checkpoints so that a resumed run stops where an
 * uninterrupted one would. */
enum { DIVERGE_WINDOW = 50 };
typedef struct {
    long seen;                     /* steps fed */
    double recent[DIVERGE_WINDOW]; /* loss of step k at k % DIVERGE_WINDOW */
    double min_mean;               /* lowest full-window mean; 0 before */
} l2rw__diverge;

/* Feeds the loss of one step (steps done = `step`); L2RW_ERR_NUMERIC
 * with the message of the rule when the run has diverged. lr: the run's
 * base rate, for the suggestion. */
l2rw_status l2rw__diverge_add(l2rw__diverge *d, double loss, long step,
                              int classes, float lr);

/* Everything a checkpoint holds besides the net and the optimizer. */
typedef struct {
    long step;                   /* main-phase steps done */
    long ft_step;                /* fine-tune steps done; > 0 only once the
                                    main phase has ended (and its last
                                    evaluation row is in rows) */
    float ft_lr;                 /* cfg.finetune_lr of those steps */
    double seconds;              /* wall time of the run so far */
    l2rw_stats_window total;     /* whole run */
    l2rw_stats_window since_eval;
    long n_rows, cap_rows;
    l2rw_metrics_row *rows;
    l2rw__diverge diverge;
    long ckpt_total;             /* loaded: the checkpoint's run length */
} l2rw__train_state;

void l2rw__state_free(l2rw__train_state *st);
l2rw_status l2rw__state_add_row(l2rw__train_state *st,
                                const l2rw_metrics_row *row);

/* Canonical text of every option that shapes the trajectory, one
 * "key=value" line each. */
l2rw_status l2rw__train_fingerprint(const l2rw_train_cfg *cfg, char *buf,
                                    size_t size);

/* "steps=N\nfinetune-clean=S\nfinetune-lr=F\ncheckpoint-every=C\n": the
 * run's length (total = its main-phase steps), kept in checkpoints for
 * the resume config but not compared: a resumed run may change them. */
l2rw_status l2rw__train_targets(const l2rw_train_cfg *c, long total,
                                char *buf, size_t size);

/* Checkpoint file: fingerprint, targets, state, example record, net
 * section, the optimizer of the current phase (kind, update count,
 * AdamW's hyper-parameters, velocity or moments), the divergence
 * detector. Its size does not depend on the number of steps, only on the
 * rows of metrics.csv. */
l2rw_status l2rw__checkpoint_save(const char *path, const char *fingerprint,
                                  const char *targets,
                                  const l2rw__train_state *st,
                                  const l2rw_record *record,
                                  const l2rw_net *net, const l2rw_sgd *opt);
/* Reads a checkpoint written for the same fingerprint into st, the
 * record, the net and the optimizer (its state; its configuration must
 * be the checkpoint's); another fingerprint is L2RW_ERR_ARG naming the
 * first option that differs; another format version, a truncated or
 * damaged file is L2RW_ERR_FORMAT naming the file. Version 3 (SGD only,
 * no update count, no detector) is read too. */
l2rw_status l2rw__checkpoint_load_opt(const char *path,
                                      const char *fingerprint,
                                      l2rw__train_state *st,
                                      l2rw_record *record, l2rw_net *net,
                                      l2rw_sgd *opt);
/* The same for an SGD run, into a bare velocity buffer (the fuzz target
 * reads checkpoints so). */
l2rw_status l2rw__checkpoint_load(const char *path, const char *fingerprint,
                                  l2rw__train_state *st, l2rw_record *record,
                                  l2rw_net *net, float *velocity,
                                  size_t n_velocity);

l2rw_status l2rw__metrics_save(const char *path,
                               const l2rw__train_state *st);

typedef struct {
    const l2rw_train_cfg *cfg;
    const l2rw_train_result *res;
    const l2rw_data *data;
    long total_steps;
    int batch, val_batch;
    double acc_before_finetune;
    int data_on_device;      /* the sets were uploaded (train_data.c) */
} l2rw__summary;

/* ------------------------------------------- the run's data on a device
 * (train_data.c). On a device net the training, clean and test images
 * are uploaded once, when they fit (cfg.data_place), and every batch is
 * gathered by index, and augmented, there: only the indices (and the
 * augmentation's draws) cross per step, and evaluation reads the test
 * set in place. Labels stay on the host (the statistics need them there;
 * the loss uploads a batch's). Elsewhere (the CPU, or data that do not
 * fit) batches are gathered on the host and uploaded by the forward. The
 * same bits either way: gathering and the crop-flip are copies. */
enum { DD_TRAIN, DD_VAL, DD_TEST, DD_SETS };
/* A batch buffer: the training batch and the validation batch of one
 * step live at the same time. */
enum { DD_SLOT_TRAIN, DD_SLOT_VAL, DD_SLOTS };

typedef struct {
    const struct l2rw__backend *be; /* NULL: batches from host memory */
    float *x[DD_SETS];         /* [rows, dim] images of each set (device) */
    int rows[DD_SETS];
    size_t dim;
    int max_batch;
    float *batch[DD_SLOTS];    /* [max_batch, dim] gathered batches */
    int32_t *idx[DD_SLOTS];    /* [max_batch] their indices (device) */
    float *aug;                /* [max_batch, dim] the augmented batch */
    int32_t *draws;            /* [max_batch, 3] its draws (device) */
    int32_t *host_draws;       /* [max_batch, 3] */
    size_t bytes;              /* device memory taken */
    char where[256];           /* where the batches come from, in words */
} l2rw__ddata;

/* Decides and, on a device with room, uploads sets[DD_SETS] (any may
 * have no rows). place: cfg.data_place; L2RW_PLACE_DEVICE fails
 * (L2RW_ERR_NOMEM, with the sizes) where the sets do not fit, AUTO then
 * streams from the host. dd->where says which path, for the log. */
l2rw_status l2rw__ddata_init(l2rw__ddata *dd, const l2rw_net *net,
                             const l2rw_dataset *const sets[DD_SETS],
                             int max_batch, l2rw_data_place place);
void l2rw__ddata_free(l2rw__ddata *dd);
/* Rows idx [n] (checked by the caller) of set k into slot's buffer;
 * returns it (device memory). */
const float *l2rw__ddata_gather(l2rw__ddata *dd, int k, int slot,
                                const int32_t *idx, int n);
/* The crop-flip of l2rw_augment_crop_flip(.., pad, key) of a device
 * batch x [n, c, h, w]; returns the augmented batch (device memory). */
const float *l2rw__ddata_augment(l2rw__ddata *dd, const float *x, int n,
                                 int c, int h, int w, int pad, uint64_t key);

l2rw_status l2rw__summary_save(const char *path, const l2rw__summary *s);

#endif
