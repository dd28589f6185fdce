/* Internal contract of the data module (src/data_*.c): whole-file reads
 * and the in-memory parsers behind each reader, so that the fuzz targets
 * exercise exactly the code the readers run. Not part of the API. */
#ifndef L2RW_DATA_INTERNAL_H
#define L2RW_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* Largest file (after gunzip) a reader accepts: 4 GiB, which becomes
 * 16 GiB of floats for byte pixels (CIFAR-100's train.bin is 150 MB).
 * Formats whose header announces their size (IDX, .npy) are read up to
 * that size and no further, CIFAR up to its largest record count, so a
 * gzip bomb stops after a few KB of excess output; CSV, which announces
 * nothing, stops at this size. The buffer grows with the bytes actually
 * read, so a lying header never makes us allocate more than twice the
 * real data. */
#define L2RW__MAX_FILE ((size_t)1 << 32)
/* Largest class count a reader infers (counts arrays are sized by it). */
#define L2RW__MAX_CLASSES 100000

/* A file being read, gunzipped when it is gzip (zlib reads raw files as
 * they are), into a buffer that grows as bytes arrive. */
typedef struct {
    const char *path;
    void *gz;            /* gzFile */
    unsigned char *buf;  /* cap + 1 bytes (room for a NUL) */
    size_t len, cap;
    int eof;
} l2rw__file;

l2rw_status l2rw__file_open(l2rw__file *f, const char *path);
/* Read until f->len >= want or the end of the file (f->eof). */
l2rw_status l2rw__file_fill(l2rw__file *f, size_t want);
/* Read the rest: a FORMAT error when the file holds more than `limit`
 * bytes (reading stops one byte past it); `why` completes "holds more
 * than the N bytes ..." in the message. On success *buf (malloc'd,
 * NUL-terminated one past *len) gets the bytes. f is closed either way. */
l2rw_status l2rw__file_finish(l2rw__file *f, size_t limit, const char *why,
                              unsigned char **buf, size_t *len);
/* The bytes read so far, without reading further; closes f. */
void l2rw__file_take(l2rw__file *f, unsigned char **buf, size_t *len);
void l2rw__file_close(l2rw__file *f);
/* open + finish: a whole file of at most `limit` bytes. */
l2rw_status l2rw__read_file(const char *path, size_t limit, const char *why,
                            unsigned char **buf, size_t *len);

/* Parsers of whole-file buffers; `name` is the file name for errors.
 * out is allocated on success and left zeroed on failure. */
l2rw_status l2rw__idx_parse(l2rw_dataset *out, const unsigned char *img,
                            size_t img_len, const char *img_name,
                            const unsigned char *lab, size_t lab_len,
                            const char *lab_name, int classes);
l2rw_status l2rw__cifar_parse(l2rw_dataset *out, const unsigned char *buf,
                              size_t len, const char *name,
                              l2rw_cifar_kind kind);
l2rw_status l2rw__csv_parse(l2rw_dataset *out, const char *buf, size_t len,
                            const char *name, const l2rw_csv_opts *opts);
l2rw_status l2rw__npy_parse(l2rw_dataset *out, const unsigned char *xb,
                            size_t x_len, const char *x_name,
                            const unsigned char *yb, size_t y_len,
                            const char *y_name, int classes);

/* Largest label + 1 of y[0..n), or the checked class count: labels
 * must be in [0, classes) when classes > 0, else in [0, MAX_CLASSES). */
l2rw_status l2rw__check_labels(const int32_t *y, int n, int *classes,
                               const char *name);

/* Concatenate a and b (same shape) into out, ids renumbered 0..n-1
 * (position in the joined source); a and b are freed either way. */
l2rw_status l2rw__dataset_concat(l2rw_dataset *out, l2rw_dataset *a,
                                 l2rw_dataset *b);

/* (c, h, w) of an example from the file's axes after the first
 * (rule in l2rw_data.h); FORMAT error naming `name` when a size is 0
 * or the product exceeds INT_MAX. */
l2rw_status l2rw__shape_from_dims(const uint64_t *dims, int k, int *c,
                                  int *h, int *w, const char *name);

#endif
