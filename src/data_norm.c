/* Per-channel normalisation: mean and standard deviation over the
 * examples and pixels of the training split (x [n, c, h, w]), applied as
 * (x - mean) / std to every split. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NORM_VERSION = 1 };

/* Below this a channel is treated as constant: dividing by a tiny std
 * would turn rounding noise into large inputs. */
static const double NORM_MIN_STD = 1e-6;

void l2rw_norm_free(l2rw_norm *nm)
{
    if (!nm) return;
    free(nm->mean);
    free(nm->std);
    memset(nm, 0, sizeof *nm);
}

static l2rw_status norm_alloc(l2rw_norm *nm, int c)
{
    memset(nm, 0, sizeof *nm);
    nm->mean = l2rw__calloc((size_t)c, sizeof(float));
    nm->std = l2rw__calloc((size_t)c, sizeof(float));
    if (!nm->mean || !nm->std) {
        l2rw_norm_free(nm);
        return l2rw__fail(L2RW_ERR_NOMEM, "normalisation: out of memory");
    }
    nm->c = c;
    return L2RW_OK;
}

l2rw_status l2rw_norm_fit(l2rw_norm *nm, const l2rw_dataset *train)
{
    if (train->n < 1 || train->c < 1)
        return l2rw__fail(L2RW_ERR_ARG, "normalisation: no training "
                          "examples to fit on");
    L2RW_TRY(norm_alloc(nm, train->c));
    size_t hw = (size_t)train->h * (size_t)train->w;
    size_t dim = l2rw_dataset_dim(train);
    double cnt = (double)train->n * (double)hw;
    for (int ch = 0; ch < train->c; ch++) {
        /* Two passes in double: the mean, then squared deviations
         * (no catastrophic cancellation of E[x^2] - E[x]^2). */
        double s = 0, q = 0;
        for (int i = 0; i < train->n; i++) {
            const float *x = train->x + (size_t)i * dim + (size_t)ch * hw;
            for (size_t p = 0; p < hw; p++) s += x[p];
        }
        double mean = s / cnt;
        for (int i = 0; i < train->n; i++) {
            const float *x = train->x + (size_t)i * dim + (size_t)ch * hw;
            for (size_t p = 0; p < hw; p++) q += (x[p] - mean) * (x[p] - mean);
        }
        double sd = sqrt(q / cnt);
        if (!isfinite(mean) || !isfinite(sd)) {
            l2rw_norm_free(nm);
            return l2rw__fail(L2RW_ERR_NUMERIC, "normalisation: channel %d "
                              "has a non-finite mean or deviation", ch);
        }
        nm->mean[ch] = (float)mean;
        nm->std[ch] = sd < NORM_MIN_STD ? 1.0f : (float)sd;
    }
    return L2RW_OK;
}

l2rw_status l2rw_norm_apply(const l2rw_norm *nm, l2rw_dataset *d)
{
    if (d->n == 0) return L2RW_OK;
    if (nm->c != d->c)
        return l2rw__fail(L2RW_ERR_SHAPE, "normalisation has %d channels, "
                          "the data %d", nm->c, d->c);
    size_t hw = (size_t)d->h * (size_t)d->w, dim = l2rw_dataset_dim(d);
    for (int i = 0; i < d->n; i++)
        for (int ch = 0; ch < d->c; ch++) {
            float *x = d->x + (size_t)i * dim + (size_t)ch * hw;
            float m = nm->mean[ch], inv = 1.0f / nm->std[ch];
            for (size_t p = 0; p < hw; p++) x[p] = (x[p] - m) * inv;
        }
    return L2RW_OK;
}

static l2rw_status norm_write(FILE *fp, void *ctx)
{
    const l2rw_norm *nm = ctx;
    fprintf(fp, "l2rw-norm %d\n%d\n", NORM_VERSION, nm->c);
    /* %.9g round-trips a float exactly. */
    for (int ch = 0; ch < nm->c; ch++)
        fprintf(fp, "%.9g %.9g\n", nm->mean[ch], nm->std[ch]);
    return L2RW_OK;
}

l2rw_status l2rw_norm_save(const l2rw_norm *nm, const char *path)
{
    return l2rw_write_atomic(path, norm_write, (void *)nm);
}

l2rw_status l2rw_norm_load(l2rw_norm *nm, const char *path)
{
    memset(nm, 0, sizeof *nm);
    FILE *fp = fopen(path, "r");
    if (!fp) return l2rw__fail(L2RW_ERR_IO, "%s: cannot open", path);
    int ver, c;
    l2rw_status s = L2RW_OK;
    if (fscanf(fp, "l2rw-norm %d %d", &ver, &c) != 2 || ver != NORM_VERSION ||
        c < 1 || c > (1 << 24))
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: not an l2rw-norm %d file", path,
                       NORM_VERSION);
    if (s == L2RW_OK) s = norm_alloc(nm, c);
    for (int ch = 0; s == L2RW_OK && ch < c; ch++) {
        if (fscanf(fp, "%f %f", &nm->mean[ch], &nm->std[ch]) != 2 ||
            !isfinite(nm->mean[ch]) || !(nm->std[ch] > 0) ||
            !isfinite(nm->std[ch]))
            s = l2rw__fail(L2RW_ERR_FORMAT, "%s: channel %d: bad or "
                           "truncated statistics", path, ch);
    }
    fclose(fp);
    if (s != L2RW_OK) l2rw_norm_free(nm);
    return s;
}
