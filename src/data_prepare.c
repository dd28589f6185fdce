/* The data pipeline in its fixed order (see l2rw_data.h): load, select
 * classes, clean split (or the clean set's own source, --val-data),
 * subsample, corrupt, audit (with the clean set's overlap with the
 * training set), normalise. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "data_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

l2rw_data_cfg l2rw_data_cfg_default(void)
{
    l2rw_data_cfg c;
    memset(&c, 0, sizeof c);
    c.data = "fashion-mnist";
    c.normalise = 1;
    return c;
}

static void free_names(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

void l2rw_sources_free(l2rw_sources *s)
{
    if (!s) return;
    free_names(s->class_names, s->classes);
    free_names(s->train_files, s->n_train);
    free_names(s->val_files, s->n_val);
    free_names(s->test_files, s->n_test);
    free_names(s->bad_files, s->n_bad);
    free_names(s->bad_reasons, s->n_bad);
    free(s->cache_error);
    memset(s, 0, sizeof *s);
}

void l2rw_data_free(l2rw_data *d)
{
    if (!d) return;
    l2rw_sources_free(&d->sources);
    l2rw_dataset_free(&d->train);
    l2rw_dataset_free(&d->val);
    l2rw_dataset_free(&d->test);
    l2rw_norm_free(&d->norm);
    l2rw_audit_free(&d->audit);
    memset(d, 0, sizeof *d);
}

static void describe_imbalance(const l2rw_imbalance *imb, const char *spec,
                               char *buf, size_t size)
{
    if (imb->kind == L2RW_IMB_NONE) {
        snprintf(buf, size, "none");
        return;
    }
    size_t len = (size_t)snprintf(buf, size, "%s", spec);
    if (imb->kind != L2RW_IMB_SHARE) return;
    /* Say how the listed classes were renumbered. */
    for (int j = 0; j < imb->k && len < size; j++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d->%d",
                                j ? ", " : " (relabelled ", imb->classes[j],
                                j);
    if (len < size) snprintf(buf + len, size - len, ")");
}

static l2rw_status corrupt(l2rw_data *d, const l2rw_data_cfg *cfg)
{
    uint8_t *hit = l2rw__calloc((size_t)d->train.n + 1, 1);
    if (!hit) return l2rw__fail(L2RW_ERR_NOMEM, "noise: out of memory");
    l2rw_status s = l2rw_noise_apply(
        &d->train, &d->noise, l2rw_data_stage_seed(cfg->seed,
                                                   L2RW_STAGE_NOISE), hit);
    long n_hit = 0;
    for (int i = 0; i < d->train.n; i++) n_hit += hit[i];
    free(hit);
    L2RW_TRY(s);
    L2RW_TRY(l2rw_audit_compute(&d->audit, &d->train, &d->val, &d->test));
    l2rw_audit *a = &d->audit;
    a->seed = cfg->seed;
    a->n_hit = n_hit;
    a->nominal_rate = d->noise.kind == L2RW_NOISE_NONE ? 0 : d->noise.p;
    a->expected_rate = l2rw_noise_expected_rate(&d->noise, a->train_true,
                                                a->classes);
    snprintf(a->data, sizeof a->data, "%s", cfg->data);
    L2RW_TRY(l2rw__audit_sources(a, &d->sources));
    l2rw_noise_format(&d->noise, a->noise, sizeof a->noise);
    describe_imbalance(&d->imbalance, cfg->imbalance, a->imbalance,
                       sizeof a->imbalance);
    return L2RW_OK;
}

/* ------------------------------------------------ the trusted set's source */

/* A data spec's training and test parts with the names of their files
 * (l2rw_sources), when the spec's kind has them; every other kind leaves
 * src zeroed. */
static l2rw_status load_source(const char *spec, l2rw_dataset *train,
                               l2rw_dataset *test, l2rw_sources *src)
{
    return l2rw__data_load(spec, train, test, src, NULL, NULL);
}

/* The clean set's file names (indexed by its ids) move into d->sources. */
static void keep_val_files(l2rw_data *d, l2rw_sources *vsrc)
{
    d->sources.val_files = vsrc->train_files;
    d->sources.n_val = vsrc->n_train;
    vsrc->train_files = NULL;
    vsrc->n_train = 0;
}

/* map[k] = the training class named as the source's class k, or -1. */
static int *name_map(const l2rw_sources *vsrc, const l2rw_sources *tsrc)
{
    int *map = l2rw__calloc((size_t)vsrc->classes + 1, sizeof *map);
    if (!map) return NULL;
    for (int k = 0; k < vsrc->classes; k++) {
        map[k] = -1;
        for (int j = 0; j < tsrc->classes && map[k] < 0; j++)
            if (!strcmp(vsrc->class_names[k], tsrc->class_names[j]))
                map[k] = j;
    }
    return map;
}

/* Named classes are matched by name: a trusted folder lacking a class
 * numbers the others differently from the training folder, so its labels
 * become the training data's index of the same name (the training names
 * are those the class selection kept). A name the training data lacks is
 * a label error, unless a class selection (--imbalance A,B:SHARE) left it
 * out: then its examples go, as the selection drops them everywhere. */
static l2rw_status relabel_by_name(l2rw_dataset *pool,
                                   const l2rw_sources *vsrc,
                                   const l2rw_sources *tsrc, int selected,
                                   const char *spec)
{
    int *map = name_map(vsrc, tsrc);
    int32_t *keep = l2rw__calloc((size_t)pool->n + 1, sizeof *keep);
    l2rw_status s = map && keep ? L2RW_OK
                                : l2rw__fail(L2RW_ERR_NOMEM, "clean set: "
                                             "out of memory");
    int n = 0;
    for (int i = 0; i < pool->n && s == L2RW_OK; i++) {
        int k = pool->y[i], j = k >= 0 && k < vsrc->classes ? map[k] : -1;
        if (j < 0 && !selected)
            s = l2rw__fail(L2RW_ERR_LABEL, "clean set %s: example %d has "
                           "class '%s', which the training data does not "
                           "have", spec, (int)pool->id[i],
                           k >= 0 && k < vsrc->classes
                               ? vsrc->class_names[k] : "?");
        if (j < 0) continue;
        pool->y[i] = pool->y_true[i] = j;
        keep[n++] = i;
    }
    l2rw_dataset kept;
    if (s == L2RW_OK) s = l2rw_dataset_subset(&kept, pool, keep, n);
    if (s == L2RW_OK) {
        l2rw_dataset_free(pool);
        *pool = kept;
        pool->classes = tsrc->classes;
    }
    free(map);
    free(keep);
    return s;
}

/* The --val-data source's training part in the training data's classes
 * (by name when both sides name them, else by index with the class
 * selection applied), then checked against the training data as a test
 * part is. Its test part is not used: it is not the trusted set. */
static l2rw_status load_val_pool(l2rw_data *d, const l2rw_data_cfg *cfg,
                                 l2rw_dataset *pool)
{
    l2rw_dataset unused;
    l2rw_sources vsrc;
    l2rw_status s = load_source(cfg->val_data, pool, &unused, &vsrc);
    l2rw_dataset_free(&unused);
    int named = vsrc.class_names && d->sources.class_names;
    if (s == L2RW_OK && named)
        s = relabel_by_name(pool, &vsrc, &d->sources,
                            d->imbalance.kind == L2RW_IMB_SHARE,
                            cfg->val_data);
    else if (s == L2RW_OK)
        s = l2rw_imbalance_select(pool, NULL, &d->imbalance);
    if (s == L2RW_OK)
        s = l2rw__data_check_part(&d->train, cfg->data, pool, cfg->val_data,
                                  "clean");
    if (s == L2RW_OK) keep_val_files(d, &vsrc);
    l2rw_sources_free(&vsrc);
    return s;
}

/* The clean set drawn from the pool as the split draws it from the
 * training set (balanced, seeded), or the whole pool when no size is
 * given: the user's trusted set as it is. */
static l2rw_status select_val(l2rw_data *d, const l2rw_data_cfg *cfg,
                              l2rw_dataset *pool)
{
    if (cfg->val_per_class == 0 && cfg->val_size == 0) {
        d->val = *pool;
        memset(pool, 0, sizeof *pool);
        return L2RW_OK;
    }
    l2rw_status s = l2rw_split_clean(
        pool, &d->val, cfg->val_per_class, cfg->val_size,
        l2rw_data_stage_seed(cfg->seed, L2RW_STAGE_SPLIT));
    if (s != L2RW_ERR_ARG) return s;
    char why[512]; /* the message is rewritten in its own buffer */
    snprintf(why, sizeof why, "%s", l2rw_last_error());
    return l2rw__fail(s, "clean set %s: %s (validation sizes 0 take the "
                      "whole trusted set)", cfg->val_data, why);
}

static l2rw_status clean_set(l2rw_data *d, const l2rw_data_cfg *cfg)
{
    if (!cfg->val_data)
        return l2rw_split_clean(&d->train, &d->val, cfg->val_per_class,
                                cfg->val_size,
                                l2rw_data_stage_seed(cfg->seed,
                                                     L2RW_STAGE_SPLIT));
    l2rw_dataset pool;
    memset(&pool, 0, sizeof pool);
    l2rw_status s = load_val_pool(d, cfg, &pool);
    if (s == L2RW_OK) s = select_val(d, cfg, &pool);
    l2rw_dataset_free(&pool);
    if (s == L2RW_OK && d->val.n < 1)
        s = l2rw__fail(L2RW_ERR_ARG, "clean set %s: no examples",
                       cfg->val_data);
    return s;
}

/* ------------------------------------------------------------- overlap */

/* An example's raw features (FNV-1a over their bytes); equal hashes are
 * confirmed byte for byte, so the match is exact. */
static uint64_t hash_features(const float *x, size_t dim)
{
    const unsigned char *b = (const unsigned char *)x;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < dim * sizeof *x; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

typedef struct {
    uint64_t key;
    const char *name; /* file overlap: the canonical file name */
    int idx;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *p = a, *q = b;
    if (p->key != q->key) return p->key < q->key ? -1 : 1;
    if (p->name && q->name) {
        int c = strcmp(p->name, q->name);
        if (c) return c;
    }
    return (p->idx > q->idx) - (p->idx < q->idx);
}

/* First of the sorted keys equal to k (pixels: key; files: name). */
static const keyed *find_key(const keyed *t, int n, const keyed *k)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = t[mid].key != k->key ? (t[mid].key < k->key ? -1 : 1)
                                     : (k->name ? strcmp(t[mid].name,
                                                         k->name) : 0);
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < n ? &t[lo] : NULL;
}

static void note_overlap(l2rw_audit *a, int32_t val_id, int32_t train_id)
{
    if (a->n_overlap_shown >= L2RW_AUDIT_OVERLAP_SHOWN) return;
    a->overlap_val_id[a->n_overlap_shown] = val_id;
    a->overlap_train_id[a->n_overlap_shown] = train_id;
    a->n_overlap_shown++;
}

/* The training example with val example v's pixels, or -1. */
static int pixel_twin(const l2rw_dataset *t, const keyed *keys,
                      const l2rw_dataset *v, int i)
{
    size_t dim = l2rw_dataset_dim(v);
    const float *x = v->x + (size_t)i * dim;
    keyed k = {hash_features(x, dim), NULL, 0};
    const keyed *p = find_key(keys, t->n, &k);
    for (; p && p < keys + t->n && p->key == k.key; p++)
        if (!memcmp(t->x + (size_t)p->idx * dim, x, dim * sizeof *x))
            return p->idx;
    return -1;
}

static l2rw_status pixel_overlap(l2rw_data *d)
{
    const l2rw_dataset *t = &d->train, *v = &d->val;
    size_t dim = l2rw_dataset_dim(t);
    keyed *keys = l2rw__calloc((size_t)t->n + 1, sizeof *keys);
    if (!keys) return l2rw__fail(L2RW_ERR_NOMEM, "overlap: out of memory");
    for (int j = 0; j < t->n; j++)
        keys[j] = (keyed){hash_features(t->x + (size_t)j * dim, dim), NULL,
                          j};
    qsort(keys, (size_t)t->n, sizeof *keys, cmp_keyed);
    for (int i = 0; i < v->n; i++) {
        int j = pixel_twin(t, keys, v, i);
        if (j < 0) continue;
        d->audit.overlap_pixels++;
        note_overlap(&d->audit, v->id[i], t->id[j]);
    }
    free(keys);
    return L2RW_OK;
}

/* The file's canonical name (links and ./.. resolved) when it exists,
 * else its name as given; NULL for an id without a name. */
static char *canonical(char **files, int n, int32_t id)
{
    if (!files || id < 0 || id >= n || !files[id]) return NULL;
    char *r = realpath(files[id], NULL);
    return r ? r : strdup(files[id]);
}

static void free_keyed_names(keyed *k, int n)
{
    for (int i = 0; k && i < n; i++) free((char *)k[i].name);
    free(k);
}

static l2rw_status file_overlap(l2rw_data *d)
{
    const l2rw_sources *src = &d->sources;
    const l2rw_dataset *t = &d->train, *v = &d->val;
    keyed *keys = l2rw__calloc((size_t)t->n + 1, sizeof *keys);
    if (!keys) return l2rw__fail(L2RW_ERR_NOMEM, "overlap: out of memory");
    int m = 0;
    for (int j = 0; j < t->n; j++) {
        char *nm = canonical(src->train_files, src->n_train, t->id[j]);
        if (nm) keys[m++] = (keyed){0, nm, j};
    }
    qsort(keys, (size_t)m, sizeof *keys, cmp_keyed);
    int before = d->audit.n_overlap_shown;
    for (int i = 0; i < v->n; i++) {
        char *nm = canonical(src->val_files, src->n_val, v->id[i]);
        keyed k = {0, nm, 0};
        const keyed *p = nm ? find_key(keys, m, &k) : NULL;
        if (p && !strcmp(p->name, nm)) {
            d->audit.overlap_files++;
            /* the pixel pairs come first; a pair listed there stays */
            if (before == 0) note_overlap(&d->audit, v->id[i], t->id[p->idx]);
        }
        free(nm);
    }
    free_keyed_names(keys, m);
    return L2RW_OK;
}

/* Clean examples that are also training examples: reported, not
 * removed (a trusted set drawn from the same pool is the user's call;
 * the report makes it visible). Raw pixels, so before normalisation. */
static l2rw_status overlap(l2rw_data *d, const l2rw_data_cfg *cfg)
{
    l2rw_audit *a = &d->audit;
    snprintf(a->val_data, sizeof a->val_data, "%s", cfg->val_data);
    long lo = LONG_MAX, hi = 0;
    for (int k = 0; k < a->classes; k++) {
        if (a->val_count[k] < lo) lo = a->val_count[k];
        if (a->val_count[k] > hi) hi = a->val_count[k];
    }
    /* a total that does not divide gives the first classes one more */
    a->val_balanced = a->classes > 0 && hi - lo <= 1;
    L2RW_TRY(pixel_overlap(d));
    if (d->sources.train_files && d->sources.val_files)
        L2RW_TRY(file_overlap(d));
    return L2RW_OK;
}

static l2rw_status normalise(l2rw_data *d)
{
    L2RW_TRY(l2rw_norm_fit(&d->norm, &d->train));
    L2RW_TRY(l2rw_norm_apply(&d->norm, &d->train));
    L2RW_TRY(l2rw_norm_apply(&d->norm, &d->val));
    return l2rw_norm_apply(&d->norm, &d->test);
}

static l2rw_status prepare(l2rw_data *d, const l2rw_data_cfg *cfg)
{
    if (cfg->train_size < 0 || cfg->val_per_class < 0 || cfg->val_size < 0)
        return l2rw__fail(L2RW_ERR_ARG, "train size and validation sizes "
                          "must not be negative");
    if (cfg->val_per_class > 0 && cfg->val_size > 0)
        return l2rw__fail(L2RW_ERR_ARG, "give a validation size per class "
                          "or in total, not both");
    /* Parse every spec before the (slow) load so errors come at once. */
    L2RW_TRY(l2rw_noise_parse(&d->noise, cfg->noise));
    L2RW_TRY(l2rw_imbalance_parse(&d->imbalance, cfg->imbalance));
    L2RW_TRY(l2rw__data_load(cfg->data, &d->train, &d->test, &d->sources,
                             cfg->progress, cfg->progress_ctx));
    L2RW_TRY(l2rw_imbalance_select(&d->train, &d->test, &d->imbalance));
    L2RW_TRY(l2rw__sources_select(&d->sources, &d->imbalance));
    L2RW_TRY(clean_set(d, cfg));
    if (d->imbalance.kind == L2RW_IMB_NONE && cfg->train_size > d->train.n)
        return l2rw__fail(L2RW_ERR_ARG, "train size %ld exceeds the %d "
                          "training examples available%s", cfg->train_size,
                          d->train.n, d->val.n && !cfg->val_data
                                          ? " after the clean split" : "");
    L2RW_TRY(l2rw_imbalance_subsample(
        &d->train, &d->imbalance, cfg->train_size,
        l2rw_data_stage_seed(cfg->seed, L2RW_STAGE_SUBSAMPLE)));
    if (d->train.n < 1)
        return l2rw__fail(L2RW_ERR_ARG, "no training examples left after "
                          "the clean split");
    L2RW_TRY(corrupt(d, cfg));
    if (cfg->val_data) L2RW_TRY(overlap(d, cfg));
    if (cfg->normalise) L2RW_TRY(normalise(d));
    return L2RW_OK;
}

l2rw_status l2rw_data_prepare(l2rw_data *out, const l2rw_data_cfg *cfg)
{
    memset(out, 0, sizeof *out);
    l2rw_status s = prepare(out, cfg);
    if (s != L2RW_OK) l2rw_data_free(out);
    return s;
}
