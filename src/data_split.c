/* Class selection, class imbalance, subsampling, the clean validation
 * split and held-out test fractions. Every choice is seeded; kept
 * examples stay in source order, so a split is a mask over the input. */
#include "data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Replace d by its examples with mark[i] == keep; the others go to
 * *rest when rest != NULL. */
static l2rw_status partition(l2rw_dataset *d, const uint8_t *mark,
                             l2rw_dataset *rest)
{
    int32_t *a = l2rw__calloc((size_t)d->n + 1, sizeof *a);
    int32_t *b = l2rw__calloc((size_t)d->n + 1, sizeof *b);
    l2rw_dataset kept, other;
    memset(&other, 0, sizeof other);
    if (!a || !b) {
        free(a);
        free(b);
        return l2rw__fail(L2RW_ERR_NOMEM, "split: out of memory");
    }
    int na = 0, nb = 0;
    for (int i = 0; i < d->n; i++) {
        if (mark[i]) a[na++] = i;
        else b[nb++] = i;
    }
    l2rw_status s = l2rw_dataset_subset(&kept, d, a, na);
    if (s == L2RW_OK && rest) {
        s = l2rw_dataset_subset(&other, d, b, nb);
        if (s != L2RW_OK) l2rw_dataset_free(&kept);
    }
    free(a);
    free(b);
    L2RW_TRY(s);
    l2rw_dataset_free(d);
    *d = kept;
    if (rest) *rest = other;
    return L2RW_OK;
}

static long *class_counts(const l2rw_dataset *d)
{
    long *cnt = l2rw__calloc((size_t)d->classes + 1, sizeof *cnt);
    if (cnt)
        for (int i = 0; i < d->n; i++) cnt[d->y[i]]++;
    return cnt;
}

/* Keep, per class k, need[k] random examples (chosen by label y: the
 * splits run before any corruption). One counting sort groups the
 * examples by class, so the cost is O(n + classes). */
static l2rw_status take_per_class(l2rw_dataset *d, const long *need,
                                  uint64_t seed, l2rw_dataset *rest)
{
    int K = d->classes;
    uint8_t *mark = l2rw__calloc((size_t)d->n + 1, 1);
    int32_t *order = l2rw__calloc((size_t)d->n + 1, sizeof *order);
    long *start = l2rw__calloc((size_t)K + 2, sizeof *start);
    l2rw_status s = L2RW_OK;
    if (!mark || !order || !start) {
        s = l2rw__fail(L2RW_ERR_NOMEM, "split: out of memory");
    } else {
        for (int i = 0; i < d->n; i++) start[d->y[i] + 2]++;
        for (int k = 0; k < K; k++) start[k + 2] += start[k + 1];
        /* start[k + 1] is now the fill position of class k */
        for (int i = 0; i < d->n; i++) order[start[d->y[i] + 1]++] = i;
        /* and start[k] its first index */
        l2rw_rng r;
        l2rw_rng_seed(&r, seed);
        for (int k = 0; k < K; k++) {
            int32_t *a = order + start[k];
            long m = start[k + 1] - start[k];
            /* Partial Fisher-Yates: the first need[k] positions are a
             * uniform sample without replacement. */
            for (long j = 0; j < need[k] && j < m; j++) {
                long t = j + (long)l2rw_rng_below(&r, (uint64_t)(m - j));
                int32_t v = a[j];
                a[j] = a[t];
                a[t] = v;
                mark[a[j]] = 1;
            }
        }
        s = partition(d, mark, rest);
    }
    free(mark);
    free(order);
    free(start);
    return s;
}

static l2rw_status check_need(const long *need, const long *cnt, int k_n,
                              const char *what)
{
    for (int k = 0; k < k_n; k++)
        if (need[k] > cnt[k])
            return l2rw__fail(L2RW_ERR_ARG, "%s needs %ld examples of class "
                              "%d but only %ld are available", what, need[k],
                              k, cnt[k]);
    return L2RW_OK;
}

l2rw_status l2rw_select_classes(l2rw_dataset *d, const int *classes, int k)
{
    if (k < 1)
        return l2rw__fail(L2RW_ERR_ARG, "select classes: empty list");
    int *map = l2rw__calloc((size_t)d->classes + 1, sizeof *map);
    uint8_t *mark = l2rw__calloc((size_t)d->n + 1, 1);
    l2rw_status s = L2RW_OK;
    if (!map || !mark)
        s = l2rw__fail(L2RW_ERR_NOMEM, "select classes: out of memory");
    for (int c = 0; s == L2RW_OK && c < d->classes; c++) map[c] = -1;
    for (int j = 0; s == L2RW_OK && j < k; j++) {
        if (classes[j] < 0 || classes[j] >= d->classes)
            s = l2rw__fail(L2RW_ERR_ARG, "class %d is not in the data "
                           "(classes 0..%d)", classes[j], d->classes - 1);
        else if (map[classes[j]] >= 0)
            s = l2rw__fail(L2RW_ERR_ARG, "class %d is listed twice",
                           classes[j]);
        else
            map[classes[j]] = j;
    }
    for (int i = 0; s == L2RW_OK && i < d->n; i++) mark[i] = map[d->y[i]] >= 0;
    /* Selection happens before corruption, but keep y_true consistent
     * should a caller corrupt first: examples are chosen by given label. */
    if (s == L2RW_OK) s = partition(d, mark, NULL);
    if (s == L2RW_OK) {
        for (int i = 0; i < d->n; i++) {
            d->y[i] = map[d->y[i]];
            d->y_true[i] = map[d->y_true[i]] >= 0 ? map[d->y_true[i]] : 0;
        }
        d->classes = k;
    }
    free(map);
    free(mark);
    return s;
}

/* ------------------------------------------------------------ imbalance */

static l2rw_status parse_share_list(l2rw_imbalance *o, const char *spec)
{
    const char *p = spec, *colon = strrchr(spec, ':');
    if (!colon)
        return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': expected "
                          "A,B[,...]:SHARE or longtail:FACTOR", spec);
    while (p < colon) {
        if (!isdigit((unsigned char)*p))
            return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': '%.*s' is not "
                              "a class number", spec, (int)(colon - p), p);
        char *end;
        errno = 0;
        long c = strtol(p, &end, 10);
        if (errno || c > L2RW__MAX_CLASSES || (end != colon && *end != ','))
            return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': bad class "
                              "list", spec);
        if (o->k == L2RW_MAX_IMB_CLASSES)
            return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': more than %d "
                              "classes", spec, L2RW_MAX_IMB_CLASSES);
        for (int j = 0; j < o->k; j++)
            if (o->classes[j] == c)
                return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': class %ld "
                                  "listed twice", spec, c);
        o->classes[o->k++] = (int)c;
        p = end == colon ? colon : end + 1;
        if (end != colon && p == colon)
            return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': empty class",
                              spec);
    }
    if (o->k < 2)
        return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': list at least two "
                          "classes", spec);
    char *end;
    o->share = strtod(colon + 1, &end);
    if (!colon[1] || *end || !(o->share > 0 && o->share < 1))
        return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': share '%s' is not "
                          "a number in (0, 1)", spec, colon + 1);
    o->kind = L2RW_IMB_SHARE;
    return L2RW_OK;
}

l2rw_status l2rw_imbalance_parse(l2rw_imbalance *o, const char *spec)
{
    memset(o, 0, sizeof *o);
    if (!spec || !*spec || !strcmp(spec, "none")) return L2RW_OK;
    if (!strncmp(spec, "longtail:", 9)) {
        char *end;
        o->factor = strtod(spec + 9, &end);
        if (!spec[9] || *end || !(o->factor >= 1 && o->factor <= 1e6))
            return l2rw__fail(L2RW_ERR_ARG, "imbalance '%s': factor '%s' is "
                              "not a number in [1, 1e6]", spec, spec + 9);
        o->kind = L2RW_IMB_LONGTAIL;
        return L2RW_OK;
    }
    l2rw_status s = parse_share_list(o, spec);
    if (s != L2RW_OK) memset(o, 0, sizeof *o);
    return s;
}

l2rw_status l2rw_imbalance_select(l2rw_dataset *train, l2rw_dataset *test,
                                  const l2rw_imbalance *imb)
{
    if (imb->kind != L2RW_IMB_SHARE) return L2RW_OK;
    L2RW_TRY(l2rw_select_classes(train, imb->classes, imb->k));
    if (test && (test->n > 0 || test->x))
        L2RW_TRY(l2rw_select_classes(test, imb->classes, imb->k));
    return L2RW_OK;
}

/* need[] for SHARE with n examples; 0 when feasible. */
static int share_need(const l2rw_imbalance *imb, long n, const long *cnt,
                      long *need)
{
    int k = imb->k, bad = 0;
    need[0] = lround(imb->share * (double)n);
    long rest = n - need[0];
    for (int j = 1; j < k; j++)
        need[j] = rest / (k - 1) + (j - 1 < rest % (k - 1) ? 1 : 0);
    for (int j = 0; j < k; j++) bad |= need[j] > cnt[j] || need[j] < 1;
    return bad;
}

static l2rw_status subsample_share(l2rw_dataset *d, const l2rw_imbalance *imb,
                                   long n, const long *cnt, long *need)
{
    if (d->classes != imb->k)
        return l2rw__fail(L2RW_ERR_ARG, "imbalance: data has %d classes, the "
                          "list %d (select the classes first)", d->classes,
                          imb->k);
    if (n <= 0) {
        /* The largest n the class counts allow. */
        long mn = cnt[1];
        for (int j = 2; j < imb->k; j++) mn = cnt[j] < mn ? cnt[j] : mn;
        double a = (double)cnt[0] / imb->share;
        double b = (double)mn * (imb->k - 1) / (1 - imb->share);
        n = (long)floor(a < b ? a : b) + 1;
        while (n > 0 && share_need(imb, n, cnt, need)) n--;
        if (n == 0)
            return l2rw__fail(L2RW_ERR_ARG, "imbalance: share %g leaves a "
                              "class without examples", imb->share);
        return L2RW_OK;
    }
    if (share_need(imb, n, cnt, need)) {
        for (int j = 0; j < imb->k; j++)
            if (need[j] < 1)
                return l2rw__fail(L2RW_ERR_ARG, "imbalance: share %g of %ld "
                                  "examples leaves listed class %d without "
                                  "examples", imb->share, n, imb->classes[j]);
        for (int j = 0; j < imb->k; j++)
            if (need[j] > cnt[j])
                return l2rw__fail(L2RW_ERR_ARG, "imbalance: %ld training "
                                  "examples at share %g need %ld of class %d "
                                  "but only %ld are available", n,
                                  imb->share, need[j], imb->classes[j],
                                  cnt[j]);
    }
    return L2RW_OK;
}

static l2rw_status longtail_need(const l2rw_dataset *d, double factor,
                                 long n, const long *cnt, long *need)
{
    if (n > 0)
        return l2rw__fail(L2RW_ERR_ARG, "longtail imbalance fixes the class "
                          "sizes itself: do not give a train size");
    int K = d->classes;
    long m = cnt[0];
    for (int k = 1; k < K; k++) m = cnt[k] < m ? cnt[k] : m;
    if (m < 1)
        return l2rw__fail(L2RW_ERR_ARG, "longtail: a class has no examples");
    for (int k = 0; k < K; k++) {
        double e = K > 1 ? (double)k / (K - 1) : 0;
        need[k] = lround((double)m * pow(factor, -e));
        if (need[k] < 1) need[k] = 1;
    }
    return L2RW_OK;
}

l2rw_status l2rw_imbalance_subsample(l2rw_dataset *train,
                                     const l2rw_imbalance *imb, long n,
                                     uint64_t seed)
{
    if (imb->kind == L2RW_IMB_NONE) return l2rw_subsample(train, n, seed);
    long *cnt = class_counts(train);
    long *need = l2rw__calloc((size_t)train->classes + 1, sizeof *need);
    l2rw_status s = L2RW_OK;
    if (!cnt || !need)
        s = l2rw__fail(L2RW_ERR_NOMEM, "imbalance: out of memory");
    else if (imb->kind == L2RW_IMB_SHARE)
        s = subsample_share(train, imb, n, cnt, need);
    else
        s = longtail_need(train, imb->factor, n, cnt, need);
    if (s == L2RW_OK) s = take_per_class(train, need, seed, NULL);
    free(cnt);
    free(need);
    return s;
}

l2rw_status l2rw_subsample(l2rw_dataset *d, long n, uint64_t seed)
{
    if (n <= 0 || n >= d->n) return L2RW_OK;
    uint8_t *mark = l2rw__calloc((size_t)d->n, 1);
    int32_t *perm = l2rw__calloc((size_t)d->n, sizeof *perm);
    l2rw_status s = L2RW_OK;
    if (!mark || !perm) {
        s = l2rw__fail(L2RW_ERR_NOMEM, "subsample: out of memory");
    } else {
        l2rw_rng r;
        l2rw_rng_seed(&r, seed);
        for (int i = 0; i < d->n; i++) perm[i] = i;
        l2rw_rng_shuffle_i32(&r, perm, (size_t)d->n);
        for (long i = 0; i < n; i++) mark[perm[i]] = 1;
        s = partition(d, mark, NULL);
    }
    free(mark);
    free(perm);
    return s;
}

/* ---------------------------------------------------------------- splits */

l2rw_status l2rw_split_clean(l2rw_dataset *train, l2rw_dataset *val,
                             int per_class, long total, uint64_t seed)
{
    memset(val, 0, sizeof *val);
    if (per_class < 0 || total < 0)
        return l2rw__fail(L2RW_ERR_ARG, "clean split: negative size");
    if (per_class == 0 && total == 0)
        return l2rw_dataset_alloc(val, 0, train->c, train->h, train->w,
                                  train->classes);
    int K = train->classes;
    long *cnt = class_counts(train);
    long *need = l2rw__calloc((size_t)K + 1, sizeof *need);
    l2rw_status s = L2RW_OK;
    if (!cnt || !need) {
        s = l2rw__fail(L2RW_ERR_NOMEM, "clean split: out of memory");
    } else {
        for (int k = 0; k < K; k++)
            need[k] = per_class > 0 ? per_class
                                    : total / K + (k < total % K ? 1 : 0);
        s = check_need(need, cnt, K, "the clean validation split");
    }
    /* take_per_class keeps the chosen ones in *train and hands the rest
     * back: so choose the validation set, then swap. */
    l2rw_dataset rest;
    if (s == L2RW_OK) s = take_per_class(train, need, seed, &rest);
    if (s == L2RW_OK) {
        *val = *train;
        *train = rest;
    }
    free(cnt);
    free(need);
    return s;
}

l2rw_status l2rw_split_fraction(l2rw_dataset *d, l2rw_dataset *out,
                                double frac, uint64_t seed)
{
    memset(out, 0, sizeof *out);
    if (!(frac >= 0 && frac < 1))
        return l2rw__fail(L2RW_ERR_ARG, "held-out fraction %g is not in "
                          "[0, 1)", frac);
    long m = lround(frac * d->n);
    if (m == 0)
        return l2rw_dataset_alloc(out, 0, d->c, d->h, d->w, d->classes);
    if (m >= d->n)
        return l2rw__fail(L2RW_ERR_ARG, "held-out fraction %g of %d "
                          "examples leaves none for training", frac, d->n);
    uint8_t *mark = l2rw__calloc((size_t)d->n, 1);
    int32_t *perm = l2rw__calloc((size_t)d->n, sizeof *perm);
    l2rw_status s = L2RW_OK;
    if (!mark || !perm) {
        s = l2rw__fail(L2RW_ERR_NOMEM, "held-out split: out of memory");
    } else {
        l2rw_rng r;
        l2rw_rng_seed(&r, seed);
        for (int i = 0; i < d->n; i++) perm[i] = i;
        l2rw_rng_shuffle_i32(&r, perm, (size_t)d->n);
        for (long i = 0; i < m; i++) mark[perm[i]] = 1;
        l2rw_dataset train;
        /* mark = held out: partition keeps the marked part. */
        s = partition(d, mark, &train);
        if (s == L2RW_OK) {
            *out = *d;
            *d = train;
        }
    }
    free(mark);
    free(perm);
    return s;
}
