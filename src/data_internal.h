/* Internal contract of the data module (src/data_*.c): whole-file reads
 * and the in-memory parsers behind each reader, so that the fuzz targets
 * exercise exactly the code the readers run. Not part of the API. */
#ifndef L2RW_DATA_INTERNAL_H
#define L2RW_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* The draws of l2rw_augment_crop_flip for key: draws [n, 3] = (dy, dx,
 * flip) of example i at 3i, each dy, dx in [0, 2 pad], flip 0 or 1; the
 * moves that the back ends' crop_flip applies (train_data.c augments a
 * batch on the device with them, the same crops as on the host). */
void l2rw__augment_draws(uint64_t key, int n, int pad, int32_t *draws);

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

/* The part check of l2rw_data_load (shape, labels within the training
 * classes) for a part loaded from a source of its own (the --val-data
 * clean set, `what` = "clean"), the sources named in the messages.
 * part->classes becomes train->classes. */
l2rw_status l2rw__data_check_part(l2rw_dataset *train, const char *train_src,
                                  l2rw_dataset *part, const char *part_src,
                                  const char *what);

/* (c, h, w) of an example from the file's axes after the first
 * (rule in l2rw_data.h); FORMAT error naming `name` when a size is 0
 * or the product exceeds INT_MAX. */
l2rw_status l2rw__shape_from_dims(const uint64_t *dims, int k, int *c,
                                  int *h, int *w, const char *name);

/* ------------------------------------------------------------- images */

typedef enum { L2RW__IMG_NONE, L2RW__IMG_PNG, L2RW__IMG_JPEG } l2rw__image_kind;

/* Decoded pixels, interleaved (h, w, c), c 1 (grey) or 3 (RGB). */
typedef struct {
    int c, h, w;
    unsigned char *px;
} l2rw__image;

/* PNG or JPEG by the file's first bytes (its magic), whatever its name. */
l2rw__image_kind l2rw__image_sniff(const unsigned char *buf, size_t len);
/* One PNG or JPEG file in memory -> 8-bit grey or RGB (conversions in
 * data_png_jpeg.c); *colour (may be NULL) = 1 when the file is colour
 * (RGB, palette or YCbCr). FORMAT error naming `name` for a corrupt,
 * unsupported (CMYK) or non-image file; im is zeroed on failure. */
l2rw_status l2rw__image_decode(const unsigned char *buf, size_t len,
                               const char *name, l2rw__image *im,
                               int *colour);
void l2rw__image_free(l2rw__image *im);
/* im -> c channels (grey replicated, colour to BT.601 luma) and h x w
 * (area average along an axis that shrinks, bilinear with pixel-centre
 * alignment along one that grows), rounded to 8 bits, planar (c, h, w)
 * into dst[c * h * w]. */
l2rw_status l2rw__image_convert(const l2rw__image *im, int c, int h, int w,
                                unsigned char *dst);

typedef enum { L2RW__ON_BAD_SKIP, L2RW__ON_BAD_FAIL } l2rw__on_bad;

/* Options of the folder: and list: specs (data_spec.c parses them). */
typedef struct {
    int h, w;           /* size=HxW; 0: the files' own, all equal */
    int channels;       /* channels=1|3; 0: 3 when any file is colour */
    l2rw__on_bad on_bad;
    int cache;          /* cache=1 (default) | 0 */
    const char *root;   /* list: root=DIR; NULL: the list file's folder */
    int classes;        /* classes=K for integer labels; 0: inferred */
    l2rw_data_progress_fn progress;
    void *progress_ctx;
} l2rw__image_opts;

/* folder:TRAIN[;TEST] (is_list 0) or list:TRAIN[;TEST] (is_list 1):
 * train, test (n = 0 when test_src is NULL) and the names in src (class
 * names, train_files, test_files, skipped files, cache counts). On
 * failure everything is freed and zeroed. */
l2rw_status l2rw__image_load(int is_list, const char *train_src,
                             const char *test_src,
                             const l2rw__image_opts *o, l2rw_dataset *train,
                             l2rw_dataset *test, l2rw_sources *src);

/* The class names of src after l2rw_imbalance_select kept and
 * relabelled the classes listed by imb (A,B:SHARE). */
l2rw_status l2rw__sources_select(l2rw_sources *src,
                                 const l2rw_imbalance *imb);
/* The audit's class names (copied) and image counts, from src. */
l2rw_status l2rw__audit_sources(l2rw_audit *a, const l2rw_sources *src);

/* Internal form of l2rw_data_load: src (may be NULL) gets the names of
 * image data; progress (may be NULL) is called while images decode. */
l2rw_status l2rw__data_load(const char *spec, l2rw_dataset *train,
                            l2rw_dataset *test, l2rw_sources *src,
                            l2rw_data_progress_fn progress, void *progress_ctx);

#endif
