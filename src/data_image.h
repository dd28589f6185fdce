/* Between the image readers (data_image.c) and the cache of decoded sets
 * (data_image_cache.c). Not part of the API. */
#ifndef L2RW_DATA_IMAGE_H
#define L2RW_DATA_IMAGE_H

#include "data_internal.h"

/* The files of one part (a class folder tree or a label list), in
 * example order, before decoding. */
typedef struct {
    int n, cap;
    char **path;          /* [n] the path as opened */
    int32_t *label;       /* [n] class index */
    int32_t *line;        /* [n] line in the list file; 0 for folders */
    int64_t *size, *mtime_ns;
    int classes;          /* named classes; 0 for integer labels */
    char **names;         /* [classes] in byte order, or NULL */
    char *where;          /* the folder or list file, for messages */
    int is_list;          /* where is a list file (else a folder) */
} l2rw__listing;

/* The outcome of decoding a listing: which files decoded (ok) and why
 * the others did not, and the pixels of those that did, planar uint8,
 * in listing order. What the cache stores. */
typedef struct {
    int c, h, w;
    int n;                /* = listing n */
    int kept;             /* files with ok[i] = 1 */
    uint8_t *ok;          /* [n] */
    char **why;           /* [n] NULL for decoded files */
    unsigned char *px;    /* [kept * c * h * w] */
} l2rw__decoded;

void l2rw__decoded_free(l2rw__decoded *d);

/* Which part a cache belongs to, so that a folder used as training data
 * in one spec and as test data in another keeps two caches. */
typedef enum { L2RW__PART_TRAIN, L2RW__PART_TEST } l2rw__part;

/* The decoded set of ls from its cache, when there is one whose key
 * (format version, every file's path, size, mtime and label, the pixel
 * options and the requested channels) matches: 1, dec filled. 0 for no
 * cache, a stale one or a corrupt one (never trusted; dec zeroed). */
int l2rw__cache_load(const l2rw__listing *ls, l2rw__part part,
                     const l2rw__image_opts *o, int channels,
                     l2rw__decoded *dec);
/* Writes the cache of ls atomically: next to the data, else in
 * $XDG_CACHE_HOME/l2rw (or ~/.cache/l2rw). An error only says why
 * neither place could be written; the data are fine either way. */
l2rw_status l2rw__cache_save(const l2rw__listing *ls, l2rw__part part,
                             const l2rw__image_opts *o, int channels,
                             const l2rw__decoded *dec);

#endif
