/* Internal state of the training loop shared by train.c (the loop) and
 * train_io.c (checkpoints, metrics.csv, summary.json). Not public. */
#ifndef L2RW_TRAIN_INTERNAL_H
#define L2RW_TRAIN_INTERNAL_H

#include "common.h"

/* Per-step weights kept for the per-example record: a resumed run
 * replays them into a fresh record, so examples.csv is the same as that
 * of an uninterrupted run (same additions in the same order). */
typedef struct {
    long len, cap;   /* entries */
    int32_t *idx;    /* [len] training-set index */
    float *w;        /* [len] weight of the step */
    int32_t *n;      /* [steps] batch size of each step */
    long steps, steps_cap;
} l2rw__weight_log;

l2rw_status l2rw__wlog_add(l2rw__weight_log *log, const int32_t *idx,
                           const float *w, int n);
void l2rw__wlog_free(l2rw__weight_log *log);

/* Everything a checkpoint holds besides the net and the velocity. */
typedef struct {
    long step;                   /* main-phase steps done */
    double seconds;              /* wall time of the run so far */
    l2rw_stats_window total;     /* whole run */
    l2rw_stats_window since_eval;
    long n_rows, cap_rows;
    l2rw_metrics_row *rows;
    l2rw__weight_log wlog;
} l2rw__train_state;

void l2rw__state_free(l2rw__train_state *st);
l2rw_status l2rw__state_add_row(l2rw__train_state *st,
                                const l2rw_metrics_row *row);

/* Canonical text of every option that shapes the trajectory, one
 * "key=value" line each. */
l2rw_status l2rw__train_fingerprint(const l2rw_train_cfg *cfg, char *buf,
                                    size_t size);

/* Checkpoint file: fingerprint, state, net section, velocity. */
l2rw_status l2rw__checkpoint_save(const char *path, const char *fingerprint,
                                  const l2rw__train_state *st,
                                  const l2rw_net *net, const float *velocity,
                                  size_t n_velocity);
/* Reads a checkpoint written for the same fingerprint into st, the net
 * and the velocity; another fingerprint is L2RW_ERR_ARG naming the first
 * option that differs. */
l2rw_status l2rw__checkpoint_load(const char *path, const char *fingerprint,
                                  l2rw__train_state *st, l2rw_net *net,
                                  float *velocity, size_t n_velocity);

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
