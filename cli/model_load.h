/* A saved model and the normalisation it was trained with, loaded and
 * checked against a data set the same way by `l2rw eval` and
 * `l2rw predict`. Messages go to stderr as "PROG: ...". */
#ifndef L2RW_CLI_MODEL_LOAD_H
#define L2RW_CLI_MODEL_LOAD_H

#include "l2rw.h"

#include <stddef.h>

enum { MODEL_PATH_MAX = 4096 };

typedef struct {
    l2rw_net *net;
    l2rw_norm norm;                 /* c = 0 when none was applied */
    char norm_path[MODEL_PATH_MAX]; /* "" when none was applied */
} cli_model;

/* Reads the model file for batches of up to `batch` examples onto device
 * dev (NULL: the CPU; a net on a device is reached only through
 * l2rw_net_read). Returns 0, or 2 after printing why. */
int cli_model_load(cli_model *m, const char *prog, const char *path,
                   int batch, const l2rw_device *dev);

/* The model against d (input shape, class count), then the
 * normalisation: the file `norm`, or norm.txt next to the model when
 * norm is NULL and that file exists, applied to d. The model comes first:
 * a model of another architecture is the error to report, not the
 * channels of its norm.txt. Returns 0, or 2 after printing why. */
int cli_model_prepare(cli_model *m, const char *prog, const char *path,
                      const char *norm, l2rw_dataset *d);

void cli_model_free(cli_model *m);

/* out = the directory of the model + "/norm.txt" when that file exists,
 * else "": the normalisation a run wrote next to its model. */
void cli_default_norm(const char *model, char *out, size_t size);

#endif
