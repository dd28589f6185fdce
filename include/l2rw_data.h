/* l2rw data: datasets in memory, readers, corruptions, clean split.
 * Included by l2rw.h. */
#ifndef L2RW_DATA_H
#define L2RW_DATA_H

#include <stddef.h>
#include <stdint.h>

/* n examples of shape (c, h, w), float32 NCHW, labels in [0, classes).
 * y holds the labels training sees (possibly corrupted), y_true the
 * labels before corruption (equal to y when nothing was corrupted), id
 * the index of each example in its source, for per-example reports. */
typedef struct {
    int n, c, h, w, classes;
    float *x;
    int32_t *y;
    int32_t *y_true;
    int32_t *id;
} l2rw_dataset;

#endif
