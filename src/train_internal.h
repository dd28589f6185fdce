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
} l2rw__summary;

l2rw_status l2rw__summary_save(const char *path, const l2rw__summary *s);

#endif
