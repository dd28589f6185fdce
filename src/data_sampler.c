/* Batch sampling: shuffled epochs (a pure function of seed and step, so
 * resuming needs no saved state) and class-balanced draws for the
 * resample baseline. */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

l2rw_status l2rw_sampler_init(l2rw_sampler *s, int n, int batch,
                              uint64_t seed)
{
    memset(s, 0, sizeof *s);
    if (n < 1 || batch < 1)
        return l2rw__fail(L2RW_ERR_ARG, "sampler: %d examples, batch %d "
                          "(both must be >= 1)", n, batch);
    s->perm = l2rw__calloc((size_t)n, sizeof(int32_t));
    if (!s->perm)
        return l2rw__fail(L2RW_ERR_NOMEM, "sampler: out of memory");
    s->n = n;
    s->batch = batch;
    s->seed = seed;
    s->epoch = -1;
    return L2RW_OK;
}

void l2rw_sampler_free(l2rw_sampler *s)
{
    if (!s) return;
    free(s->perm);
    memset(s, 0, sizeof *s);
}

static void load_epoch(l2rw_sampler *s, long e)
{
    if (s->epoch == e) return;
    l2rw_rng r;
    l2rw_rng_seed(&r, l2rw_hash2(s->seed, (uint64_t)e));
    for (int i = 0; i < s->n; i++) s->perm[i] = i;
    l2rw_rng_shuffle_i32(&r, s->perm, (size_t)s->n);
    s->epoch = e;
}

l2rw_status l2rw_sampler_batch(l2rw_sampler *s, long step, int32_t *idx)
{
    if (step < 0 || !s->perm)
        return l2rw__fail(L2RW_ERR_ARG, "sampler: step %ld (or sampler not "
                          "initialised)", step);
    /* Position of the batch in the endless stream of epochs; long long
     * keeps step * batch exact for any realistic run. */
    long long pos = (long long)step * s->batch;
    for (int j = 0; j < s->batch; j++, pos++) {
        load_epoch(s, (long)(pos / s->n));
        idx[j] = s->perm[pos % s->n];
    }
    return L2RW_OK;
}

double l2rw_sampler_epoch(const l2rw_sampler *s, long steps)
{
    return s->n > 0 ? (double)steps * s->batch / s->n : 0;
}

l2rw_status l2rw_balanced_init(l2rw_balanced *b, const int32_t *y, int n,
                               int classes)
{
    memset(b, 0, sizeof *b);
    if (n < 1 || classes < 1)
        return l2rw__fail(L2RW_ERR_ARG, "balanced sampler: %d examples, %d "
                          "classes", n, classes);
    b->cls = l2rw__calloc((size_t)classes, sizeof(int32_t));
    b->start = l2rw__calloc((size_t)classes + 1, sizeof(int32_t));
    b->order = l2rw__calloc((size_t)n, sizeof(int32_t));
    if (!b->cls || !b->start || !b->order) {
        l2rw_balanced_free(b);
        return l2rw__fail(L2RW_ERR_NOMEM, "balanced sampler: out of memory");
    }
    for (int i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= classes) {
            l2rw_balanced_free(b);
            return l2rw__fail(L2RW_ERR_LABEL, "balanced sampler: label %d "
                              "of example %d outside [0, %d)", y[i], i,
                              classes);
        }
        b->start[y[i] + 1]++;
    }
    for (int k = 0; k < classes; k++) {
        if (b->start[k + 1] > 0) b->cls[b->present++] = k;
        b->start[k + 1] += b->start[k];
    }
    /* Counting sort: examples grouped by class, in index order. */
    int32_t *fill = l2rw__calloc((size_t)classes, sizeof(int32_t));
    if (!fill) {
        l2rw_balanced_free(b);
        return l2rw__fail(L2RW_ERR_NOMEM, "balanced sampler: out of memory");
    }
    for (int i = 0; i < n; i++) b->order[b->start[y[i]] + fill[y[i]]++] = i;
    free(fill);
    b->classes = classes;
    return L2RW_OK;
}

void l2rw_balanced_free(l2rw_balanced *b)
{
    if (!b) return;
    free(b->cls);
    free(b->start);
    free(b->order);
    memset(b, 0, sizeof *b);
}

void l2rw_balanced_draw(const l2rw_balanced *b, uint64_t key, int count,
                        int32_t *idx)
{
    for (int j = 0; j < count; j++) {
        l2rw_rng r;
        l2rw_rng_seed(&r, l2rw_hash2(key, (uint64_t)j));
        int k = b->cls[l2rw_rng_below(&r, (uint64_t)b->present)];
        int32_t m = b->start[k + 1] - b->start[k];
        idx[j] = b->order[b->start[k] + (int32_t)l2rw_rng_below(&r,
                                                              (uint64_t)m)];
    }
}
