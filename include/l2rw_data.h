/* l2rw data: datasets in memory, readers, corruptions, clean split,
 * normalisation, augmentation, batch sampling. Included by l2rw.h.
 *
 * Typical use (what l2rw_data_prepare does in one call, with the stage
 * seeds of l2rw_data_stage_seed):
 *
 *   1. load        l2rw_data_load(spec, &train, &test)      pixels in [0,1]
 *   2. classes     l2rw_imbalance_select(&train, &test, &imb)  (A,B:SHARE
 *                  keeps and relabels the listed classes in both)
 *   3. clean split l2rw_split_clean(&train, &val, K, N, seed)
 *   4. subsample   l2rw_imbalance_subsample(&train, &imb, n, seed)
 *                  (shares, long tail, or plain --train-size N)
 *   5. corrupt     l2rw_noise_apply(&train, &noise, seed, hit), then
 *                  l2rw_audit_compute(&audit, &train, &val, &test)
 *   6. normalise   l2rw_norm_fit(&norm, &train); l2rw_norm_apply on
 *                  train, val and test
 *   7. per step    l2rw_sampler_batch (or l2rw_balanced_draw) ->
 *                  l2rw_gather -> l2rw_augment_crop_flip when
 *                  l2rw_augment_default (CIFAR shape)
 *
 * The clean split comes before subsampling (step 3 before 4) so that
 * --train-size N leaves exactly N training examples and a balanced
 * validation set can be drawn even when a subsampled class keeps only a
 * few examples (the paper's imbalance runs: 5,000 training images and a
 * balanced clean set of 10). Validation examples never reach step 5.
 *
 * Every random choice is seeded; stage seeds are derived from one seed
 * with l2rw_data_stage_seed so that changing one stage (say the noise)
 * does not move the draws of another (the split). */
#if !defined(L2RW_H)
/* Included on its own: l2rw.h defines l2rw_status and then includes this
 * header again (next branch), before the headers that use its types. */
#include "l2rw.h"
#elif !defined(L2RW_DATA_H)
#define L2RW_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) /* exported: see l2rw.h */
#pragma GCC visibility push(default)
#endif

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

/* ------------------------------------------------------------ datasets */

/* Allocate (zeroed) storage for n examples; id[i] = i. n may be 0. */
l2rw_status l2rw_dataset_alloc(l2rw_dataset *d, int n, int c, int h, int w,
                               int classes);
/* Free the buffers and zero the struct; NULL or zeroed struct is fine. */
void l2rw_dataset_free(l2rw_dataset *d);
/* c * h * w */
size_t l2rw_dataset_dim(const l2rw_dataset *d);
/* dst = the examples idx[0..n) of src (x, y, y_true, id copied). */
l2rw_status l2rw_dataset_subset(l2rw_dataset *dst, const l2rw_dataset *src,
                                const int32_t *idx, int n);
/* Deep copy. */
l2rw_status l2rw_dataset_copy(l2rw_dataset *dst, const l2rw_dataset *src);
/* Check shape, labels in [0, classes) and finite features; names `what`
 * in the error. */
l2rw_status l2rw_dataset_validate(const l2rw_dataset *d, const char *what);

/* Copy examples idx[0..n) into batch buffers: x [n, c*h*w], y, y_true,
 * id [n]; any output may be NULL. Indices out of range: L2RW_ERR_ARG. */
l2rw_status l2rw_gather(const l2rw_dataset *d, const int32_t *idx, int n,
                        float *x, int32_t *y, int32_t *y_true, int32_t *id);

/* ------------------------------------------------------------- readers */

/* Every reader returns pixels of uint8 sources scaled to [0, 1], float
 * sources as stored; y_true = y, id = index in the source. Files may be
 * gzip-compressed (IDX, CIFAR, CSV) or raw. Failures: L2RW_ERR_IO
 * (missing/unreadable), L2RW_ERR_FORMAT (magic, version, sizes, trailing
 * or missing bytes, non-numeric or non-finite values, ragged rows,
 * unsupported dtype), L2RW_ERR_LABEL (label outside the class range);
 * l2rw_last_error() names the file and the problem. */

/* Shapes of the files' axes after the first (examples) become (c, h, w)
 * as: none -> 1,1,1; (D) -> D,1,1 (features are channels); (H, W) ->
 * 1,H,W; (C, H, W); more axes are folded into w. */

/* IDX pair: images of type uint8 (magic 0x0000 08 NDIM, NDIM >= 1),
 * labels uint8 of one dimension with the same count. classes = 0 infers
 * max label + 1. */
l2rw_status l2rw_load_idx(l2rw_dataset *out, const char *images,
                          const char *labels, int classes);

typedef enum {
    L2RW_CIFAR10,          /* 1 label byte per record, 10 classes */
    L2RW_CIFAR100_FINE,    /* 2 label bytes (coarse, fine), 100 classes */
    L2RW_CIFAR100_COARSE   /* same records, 20 coarse classes */
} l2rw_cifar_kind;

/* One CIFAR binary file (data_batch_1.bin, test_batch.bin, train.bin). */
l2rw_status l2rw_load_cifar_file(l2rw_dataset *out, const char *path,
                                 l2rw_cifar_kind kind);
/* A CIFAR directory: data_batch_1..5.bin + test_batch.bin (CIFAR-10) or
 * train.bin + test.bin (CIFAR-100), also found in the subdirectory
 * cifar-10-batches-bin or cifar-100-binary of dir. */
l2rw_status l2rw_load_cifar_dir(l2rw_dataset *train, l2rw_dataset *test,
                                const char *dir, l2rw_cifar_kind kind);

typedef struct {
    const char *label_name; /* label column by header name, or NULL */
    int label_index;        /* label column index; -1 = last column */
    int header;             /* 1 yes, 0 no, -1 auto (first row has a
                               non-numeric field) */
    int classes;            /* 0 = max label + 1 */
} l2rw_csv_opts;

/* CSV: comma separated numbers, one example per row, features become
 * channels (c = features, h = w = 1), so normalisation is per feature. */
l2rw_status l2rw_load_csv(l2rw_dataset *out, const char *path,
                          const l2rw_csv_opts *opts);
l2rw_csv_opts l2rw_csv_opts_default(void);

/* NumPy pair: features '|u1' or '<f4', C order, shape (N, ...); labels
 * '<i4', '<i8' or '|u1' of shape (N) or (N, 1). Format versions 1-3. */
l2rw_status l2rw_load_npy(l2rw_dataset *out, const char *x_path,
                          const char *y_path, int classes);

/* The CLI data spec:
 *   fashion-mnist[:DIR]      default DIR /usr/share/datasets/fashion-mnist
 *   mnist:DIR                IDX files (train|t10k)-(images-idx3|labels-idx1)
 *                            -ubyte[.gz]
 *   cifar10:DIR  cifar100:DIR[,labels=coarse|fine]
 *   idx:IMAGES,LABELS[;TEST_IMAGES,TEST_LABELS]
 *   csv:FILE[;TEST_FILE][,label=NAME|INDEX][,header=0|1|auto]
 *   npy:X,Y[;TEST_X,TEST_Y]
 *   folder:DIR[;TEST_DIR]    PNG/JPEG files, one sub-folder per class
 *                            (class = position of its name in byte order)
 *   list:FILE[;TEST_FILE]    lines "PATH LABEL" (LABEL a class index, or
 *                            else every label is a class name)
 * options for folder and list: ,size=HxW (resize; without it all images
 * must have one size) ,channels=1|3 (default 3 when any image is colour)
 * ,on-bad=skip|fail (corrupt and non-image files; default skip: listed in
 * l2rw_sources) ,cache=1|0 (the decoded set is cached next to the data)
 * ,root=DIR (list: relative paths; default the list file's folder),
 * and frac, split-seed and (list, integer labels) classes as below.
 * options for idx, csv and npy: ,classes=K  ,frac=F (held-out test
 * fraction when no test file is given, default 0.2, 0 for none)
 * ,split-seed=S (default 0: the held-out part is a property of the data,
 * not of the training seed). test gets n = 0 when there is no test set.
 * Every spec checks its parts alike: test examples of another shape than
 * the training ones are L2RW_ERR_SHAPE; without a class count (classes=K
 * or the fixed one of mnist and cifar) the training labels give it
 * (largest + 1), every class below it must occur and test labels must
 * lie in it, else L2RW_ERR_LABEL naming the file, example and label.
 * train and test are zeroed first and freed on failure. */
l2rw_status l2rw_data_load(const char *spec, l2rw_dataset *train,
                           l2rw_dataset *test);

/* Progress of a long step (decoding images): done of total, called on
 * the calling thread only. */
typedef void (*l2rw_data_progress_fn)(void *ctx, long done, long total);

/* spec with ",size=HxW" added (the CLI's --image-size HxW) into out,
 * replacing a size the spec has already;
 * L2RW_ERR_ARG when spec is not folder: or list: data or hxw is not
 * two positive integers. */
l2rw_status l2rw_data_spec_set_size(const char *spec, const char *hxw,
                                    char *out, size_t size);

/* Seed of one pipeline stage: a hash of (seed, stage). */
typedef enum {
    L2RW_STAGE_SPLIT = 1, L2RW_STAGE_SUBSAMPLE, L2RW_STAGE_NOISE,
    L2RW_STAGE_SAMPLER, L2RW_STAGE_AUGMENT
} l2rw_data_stage;
uint64_t l2rw_data_stage_seed(uint64_t seed, l2rw_data_stage stage);

/* --------------------------------------------------- classes and splits */

/* Keep the examples whose label is one of classes[0..k), relabelled to
 * their position in that list (y and y_true); classes becomes k. */
l2rw_status l2rw_select_classes(l2rw_dataset *d, const int *classes, int k);

#define L2RW_MAX_IMB_CLASSES 64

typedef enum {
    L2RW_IMB_NONE,
    L2RW_IMB_SHARE,    /* "A,B[,...]:SHARE" */
    L2RW_IMB_LONGTAIL  /* "longtail:FACTOR" */
} l2rw_imbalance_kind;

typedef struct {
    l2rw_imbalance_kind kind;
    int k;                            /* listed classes (SHARE) */
    int classes[L2RW_MAX_IMB_CLASSES];
    double share;                     /* dominant share, in (0, 1) */
    double factor;                    /* LONGTAIL: n_max / n_min >= 1 */
} l2rw_imbalance;

/* "none", "A,B[,...]:SHARE" (SHARE in (0,1), distinct classes >= 0, at
 * least two) or "longtail:F" (F >= 1). Errors: L2RW_ERR_ARG with the
 * problem in l2rw_last_error(). */
l2rw_status l2rw_imbalance_parse(l2rw_imbalance *out, const char *spec);
/* SHARE: keeps the listed classes in train and test, relabelled 0..k-1
 * in listed order (the first listed = 0 is dominant). */
l2rw_status l2rw_imbalance_select(l2rw_dataset *train, l2rw_dataset *test,
                                  const l2rw_imbalance *imb);
/* Subsample train. SHARE: class 0 gets round(share * n) examples, the
 * others share the rest equally (the first ones one more when it does
 * not divide); n = 0 means the largest n the class counts allow.
 * LONGTAIL: class k keeps round(m * factor^(-k/(K-1))) examples, m the
 * smallest class count (then n must be 0). Seeded; kept examples stay
 * in source order. Not enough examples: L2RW_ERR_ARG. */
l2rw_status l2rw_imbalance_subsample(l2rw_dataset *train,
                                     const l2rw_imbalance *imb, long n,
                                     uint64_t seed);
/* Uniform random subsample of n examples (n >= d->n keeps all). */
l2rw_status l2rw_subsample(l2rw_dataset *d, long n, uint64_t seed);

/* Clean validation split: per_class examples of every class, or (when
 * per_class = 0) total examples balanced over classes (the first
 * total % classes classes get one more); moved from train to val, drawn
 * at random with the seed, both kept in source order. A class with too
 * few examples: L2RW_ERR_ARG. Must run before l2rw_noise_apply. */
l2rw_status l2rw_split_clean(l2rw_dataset *train, l2rw_dataset *val,
                             int per_class, long total, uint64_t seed);
/* Random held-out fraction frac of d moved to out (test sets of files
 * without one). */
l2rw_status l2rw_split_fraction(l2rw_dataset *d, l2rw_dataset *out,
                                double frac, uint64_t seed);

/* ---------------------------------------------------------- corruptions */

typedef enum {
    L2RW_NOISE_NONE,
    L2RW_NOISE_UNIFORM,    /* with prob. p: class uniform over all K
                              (the true one included) */
    L2RW_NOISE_BACKGROUND, /* with prob. p: class `background` */
    L2RW_NOISE_PAIR        /* with prob. p: class k -> k+1 mod K */
} l2rw_noise_kind;

typedef struct {
    l2rw_noise_kind kind;
    double p;
    int background; /* BACKGROUND only, default 0 */
} l2rw_noise;

/* "none", "uniform:P", "background:P[:C]", "pair:P", P in [0, 1], C a
 * non-negative integer. Errors: L2RW_ERR_ARG naming the problem. */
l2rw_status l2rw_noise_parse(l2rw_noise *out, const char *spec);
/* Canonical text of a noise ("uniform:0.4", "background:0.4:0"). */
void l2rw_noise_format(const l2rw_noise *nz, char *buf, size_t size);
/* Expected share of changed labels for the given class counts:
 * uniform p(1-1/K), background p(1 - n_C/n), pair p (K > 1). */
double l2rw_noise_expected_rate(const l2rw_noise *nz, const long *count,
                                int classes);

/* Corrupt d->y in place (y_true untouched): example i takes two draws
 * of the seeded stream, a coin with probability p deciding whether it is
 * hit and a number choosing the new class (used by uniform only), so a
 * label's fate depends only on the seed and its position.
 * Background class >= classes: L2RW_ERR_ARG. hit (optional, n bytes)
 * gets 1 for examples the coin hit, whether or not the label changed;
 * changed examples are those with y != y_true. */
l2rw_status l2rw_noise_apply(l2rw_dataset *d, const l2rw_noise *nz,
                             uint64_t seed, uint8_t *hit);

/* ---------------------------------------------------------------- audit */

/* Overlapping examples the audit lists by id (the counts are complete). */
#define L2RW_AUDIT_OVERLAP_SHOWN 5

/* What the data pipeline did, for the CLI to print and save. Arrays have
 * `classes` entries. */
typedef struct {
    int classes;
    uint64_t seed;
    char data[256], noise[64], imbalance[256];
    long n_train, n_val, n_test;
    long n_hit;              /* training examples the noise coin hit */
    long n_changed;          /* training examples with y != y_true */
    double nominal_rate;     /* p of the noise */
    double expected_rate;    /* l2rw_noise_expected_rate on train */
    double effective_rate;   /* n_changed / n_train */
    char **class_names;      /* [classes] or NULL (data without names) */
    long n_decoded, n_cached;/* image files decoded now, read from the
                                decoded-set cache (0 for other data) */
    long n_bad_files;        /* image files skipped as corrupt */
    long *train_true;        /* training examples per true class */
    long *train_given;       /* training examples per observed label */
    long *changed;           /* changed labels per true class */
    long *val_count;         /* clean validation examples per class */
    long *test_count;        /* test examples per class */
    /* --val-data only (val_data[0] != 0): the trusted set's source, whether
     * its selection has equal class counts, and the clean examples that
     * are also training examples: same raw pixels (exact, before
     * normalisation) or the same file (when both name their files). The
     * first few pairs are kept by id (val id, training id). */
    char val_data[256];
    int val_balanced;
    long overlap_pixels, overlap_files;
    int n_overlap_shown;
    int32_t overlap_val_id[L2RW_AUDIT_OVERLAP_SHOWN];
    int32_t overlap_train_id[L2RW_AUDIT_OVERLAP_SHOWN];
} l2rw_audit;

/* Fill from the final datasets (val and test may be NULL or empty). */
l2rw_status l2rw_audit_compute(l2rw_audit *a, const l2rw_dataset *train,
                               const l2rw_dataset *val,
                               const l2rw_dataset *test);
void l2rw_audit_free(l2rw_audit *a);
typedef enum { L2RW_AUDIT_TEXT, L2RW_AUDIT_JSON } l2rw_audit_format;
/* Write to an open stream (the CLI's stdout) or atomically to a path. */
l2rw_status l2rw_audit_fprint(const l2rw_audit *a, FILE *fp,
                              l2rw_audit_format fmt);
l2rw_status l2rw_audit_save(const l2rw_audit *a, const char *path,
                            l2rw_audit_format fmt);

/* -------------------------------------------------------- normalisation */

/* Per-channel mean and standard deviation (population, over examples
 * and pixels), fitted on the training split only. A channel with
 * std < 1e-6 gets std 1 (constant features stay finite). */
typedef struct {
    int c;
    float *mean, *std;
} l2rw_norm;

l2rw_status l2rw_norm_fit(l2rw_norm *nm, const l2rw_dataset *train);
/* x = (x - mean[ch]) / std[ch]; channel count must match. */
l2rw_status l2rw_norm_apply(const l2rw_norm *nm, l2rw_dataset *d);
void l2rw_norm_free(l2rw_norm *nm);
/* Small text file "l2rw-norm 1\nC\nmean std\n..." written atomically,
 * so that `l2rw eval` applies the training statistics. */
l2rw_status l2rw_norm_save(const l2rw_norm *nm, const char *path);
l2rw_status l2rw_norm_load(l2rw_norm *nm, const char *path);

/* --------------------------------------------------------- augmentation */

/* Random crop with `pad` pixels of zero padding and a horizontal flip
 * with probability 1/2, per example: out[i] from x[i], both [n, c, h, w].
 * Example i draws from l2rw_hash2(key, i), so a batch's augmentation is a
 * pure function of (key, position): the train loop passes
 * l2rw_hash2(augment seed, step) and a resumed run repeats it. out and x
 * must not overlap. */
void l2rw_augment_crop_flip(float *out, const float *x, int n, int c,
                            int h, int w, int pad, uint64_t key);
/* 1 for CIFAR-shaped data (3 x 32 x 32), where the standard
 * augmentation (pad 4) applies. */
int l2rw_augment_default(const l2rw_dataset *d);

/* ------------------------------------------------------------- sampling */

/* Shuffled epochs over n examples: the stream is the concatenation of
 * permutations perm_0, perm_1, ... (perm_e seeded by hash(seed, e));
 * step s takes positions [s*batch, (s+1)*batch) of it, crossing epoch
 * boundaries when batch does not divide n. A batch is a pure function of
 * (seed, n, batch, step): a resumed run needs only the step. */
typedef struct {
    int n, batch;
    uint64_t seed;
    long epoch;     /* epoch whose permutation is cached, -1 none */
    int32_t *perm;  /* [n] */
} l2rw_sampler;

l2rw_status l2rw_sampler_init(l2rw_sampler *s, int n, int batch,
                              uint64_t seed);
void l2rw_sampler_free(l2rw_sampler *s);
/* idx[0..batch) = indices of the batch of step `step` (>= 0). */
l2rw_status l2rw_sampler_batch(l2rw_sampler *s, long step, int32_t *idx);
/* Epochs completed after `steps` steps, as a fraction. */
double l2rw_sampler_epoch(const l2rw_sampler *s, long steps);

/* Class-balanced sampling: each draw picks a class uniformly among the
 * classes present in y, then an example of it uniformly (with
 * replacement): the `resample` baseline. */
typedef struct {
    int classes, present;  /* classes with at least one example */
    int32_t *cls;          /* [present] class ids present */
    int32_t *start;        /* [classes + 1] offsets into order */
    int32_t *order;        /* [n] example indices grouped by class */
} l2rw_balanced;

l2rw_status l2rw_balanced_init(l2rw_balanced *b, const int32_t *y, int n,
                               int classes);
void l2rw_balanced_free(l2rw_balanced *b);
/* idx[0..count) drawn from l2rw_hash2(key, j) for draw j: a pure function
 * of key (pass l2rw_hash2(seed, step)). */
void l2rw_balanced_draw(const l2rw_balanced *b, uint64_t key, int count,
                        int32_t *idx);

/* -------------------------------------------------------------- pipeline */

typedef struct {
    const char *data;      /* data spec (l2rw_data_load) */
    const char *noise;     /* noise spec or NULL/"none" */
    const char *imbalance; /* imbalance spec or NULL/"none" */
    long train_size;       /* 0: all (or imbalance's largest); more
                              than available: L2RW_ERR_ARG */
    int val_per_class;     /* clean validation split: K per class */
    long val_size;         /* or N in total, balanced; both 0: none */
    int normalise;         /* 1: per-channel mean/std of train */
    uint64_t seed;
    /* NULL: the clean set is split off the training set (step 3).
     * A data spec: the clean set comes from the training part of that
     * source instead (give frac=0 to an idx/csv/npy file to use all of
     * it): checked against the training data like a test part (shape,
     * classes), the --imbalance class selection applied, then
     * val_per_class / val_size examples drawn from it as by
     * l2rw_split_clean, or all of it when both are 0. It is never
     * corrupted or subsampled and is normalised with the training
     * statistics; examples it shares with the training set are reported
     * in the audit (overlap_*), not removed. */
    const char *val_data;
    l2rw_data_progress_fn progress; /* image decoding, or NULL */
    void *progress_ctx;
} l2rw_data_cfg;

/* Where the examples came from, when they are files of their own
 * (image folders, label lists): the class names and each example's file,
 * indexed by the example's id (l2rw_dataset.id, which subsets and splits
 * keep). Every pointer is NULL (and every count 0) for data that have no
 * names (IDX, CIFAR, CSV, .npy); val_files only when the clean set came
 * from a source of its own, otherwise its ids are training ids (test_files
 * likewise: NULL when the test part was held out of the training source).
 * Owned by
 * l2rw_data (freed by l2rw_data_free). */
typedef struct {
    int classes;
    char **class_names;          /* [classes] */
    int n_train, n_val, n_test;
    char **train_files, **val_files, **test_files; /* [n_*] by id */
    /* Image data: files skipped as corrupt or not images (on-bad=skip),
     * with why; how many files were decoded now and how many came from
     * the decoded-set cache; why a cache could not be written (NULL when
     * it was, or was not needed). */
    int n_bad;
    char **bad_files, **bad_reasons;   /* [n_bad] */
    long n_decoded, n_cached;
    char *cache_error;
} l2rw_sources;
/* Frees the names and zeroes the struct; a zeroed struct is fine. */
void l2rw_sources_free(l2rw_sources *s);

typedef struct {
    l2rw_dataset train, val, test;
    l2rw_sources sources;
    l2rw_noise noise;
    l2rw_imbalance imbalance;
    l2rw_norm norm;        /* c = 0 when normalise was 0 */
    l2rw_audit audit;
} l2rw_data;

l2rw_data_cfg l2rw_data_cfg_default(void);
/* Steps 1-6 of the order at the top of this header. On failure
 * everything is freed and out is zeroed. */
l2rw_status l2rw_data_prepare(l2rw_data *out, const l2rw_data_cfg *cfg);
void l2rw_data_free(l2rw_data *d);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
