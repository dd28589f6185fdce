/* Step statistics over a window, the per-example weight record
 * (examples.csv), its checkpoint section, and the ROC AUC of the mean
 * weight (l2rw_reweight.h).
 *
 * Shapes: record arrays [n_examples] indexed by training-set position;
 * a batch adds idx [n], w [n]. */
#include "binio.h"
#include "common.h"
#include "train_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ statistics */

void l2rw_stats_window_reset(l2rw_stats_window *w)
{
    if (w) memset(w, 0, sizeof *w);
}

void l2rw_stats_window_add(l2rw_stats_window *w, const l2rw_step_stats *st)
{
    if (!w || !st) return;
    w->steps++;
    w->warmup_steps += st->warmup != 0;
    w->nonpositive_steps += st->all_nonpositive != 0;
    w->updated_steps += st->updated != 0;
    w->examples += st->n;
    w->zero_weights += st->n_zero;
    w->weight_sum += st->weight_sum;
    w->mean_loss += st->mean_loss;
    w->weighted_loss += st->weighted_loss;
    if (!isnan(st->clean_mass)) {
        w->clean_mass_sum += st->clean_mass;
        w->clean_mass_steps++;
    }
    if (!isnan(st->val_loss)) {
        w->val_loss_sum += st->val_loss;
        w->val_loss_steps++;
    }
}

void l2rw_stats_window_mean(const l2rw_stats_window *w, l2rw_step_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    double steps = w ? (double)w->steps : 0.0;
    out->weight_sum = out->mean_loss = out->weighted_loss = NAN;
    out->clean_mass = out->val_loss = NAN;
    if (!w || w->steps == 0) return;
    out->n = (int)(w->examples > 2147483647L ? 2147483647L : w->examples);
    out->n_zero = (int)(w->zero_weights > 2147483647L ? 2147483647L
                                                      : w->zero_weights);
    out->warmup = (int)w->warmup_steps;
    out->all_nonpositive = (int)w->nonpositive_steps;
    out->updated = (int)w->updated_steps;
    out->weight_sum = w->weight_sum / steps;
    out->mean_loss = w->mean_loss / steps;
    out->weighted_loss = w->weighted_loss / steps;
    if (w->clean_mass_steps)
        out->clean_mass = w->clean_mass_sum / (double)w->clean_mass_steps;
    if (w->val_loss_steps)
        out->val_loss = w->val_loss_sum / (double)w->val_loss_steps;
}

double l2rw_stats_window_zero_share(const l2rw_stats_window *w)
{
    if (!w || w->examples == 0) return NAN;
    return (double)w->zero_weights / (double)w->examples;
}

/* ---------------------------------------------------------------- record */

struct l2rw_record {
    int n;
    int32_t *id, *y, *y_true; /* y_true NULL when unknown */
    double *wsum;             /* sum of batch_size * w */
    int64_t *seen, *zeros;
};

void l2rw_record_free(l2rw_record *r)
{
    if (!r) return;
    free(r->id);
    free(r->y);
    free(r->y_true);
    free(r->wsum);
    free(r->seen);
    free(r->zeros);
    free(r);
}

l2rw_status l2rw_record_create(l2rw_record **out, int n, const int32_t *id,
                               const int32_t *y, const int32_t *y_true)
{
    if (!out || !y || n <= 0)
        return l2rw__fail(L2RW_ERR_ARG, "record: bad arguments (n=%d)", n);
    *out = NULL;
    l2rw_record *r = calloc(1, sizeof *r);
    if (!r) return l2rw__fail(L2RW_ERR_NOMEM, "record: out of memory");
    size_t sn = (size_t)n;
    r->n = n;
    r->id = l2rw__calloc(sn, sizeof(int32_t));
    r->y = l2rw__calloc(sn, sizeof(int32_t));
    r->y_true = y_true ? l2rw__calloc(sn, sizeof(int32_t)) : NULL;
    r->wsum = l2rw__calloc(sn, sizeof(double));
    r->seen = l2rw__calloc(sn, sizeof(int64_t));
    r->zeros = l2rw__calloc(sn, sizeof(int64_t));
    if (!r->id || !r->y || (y_true && !r->y_true) || !r->wsum || !r->seen ||
        !r->zeros) {
        l2rw_record_free(r);
        return l2rw__fail(L2RW_ERR_NOMEM, "record: out of memory (%d "
                                          "examples)", n);
    }
    for (int i = 0; i < n; i++) r->id[i] = id ? id[i] : i;
    memcpy(r->y, y, sn * sizeof(int32_t));
    if (y_true) memcpy(r->y_true, y_true, sn * sizeof(int32_t));
    *out = r;
    return L2RW_OK;
}

l2rw_status l2rw_record_add(l2rw_record *r, const int32_t *idx, int n,
                            const float *w)
{
    if (!r || !idx || !w || n <= 0)
        return l2rw__fail(L2RW_ERR_ARG, "record: bad batch (n=%d)", n);
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= r->n)
            return l2rw__fail(L2RW_ERR_ARG,
                              "record: example index %d outside [0, %d)",
                              (int)idx[i], r->n);
        if (!isfinite(w[i]) || w[i] < 0.0f)
            return l2rw__fail(L2RW_ERR_NUMERIC,
                              "record: weight %g of batch example %d",
                              (double)w[i], i);
    }
    for (int i = 0; i < n; i++) {
        r->wsum[idx[i]] += (double)n * (double)w[i];
        r->seen[idx[i]]++;
        r->zeros[idx[i]] += w[i] == 0.0f;
    }
    return L2RW_OK;
}

void l2rw_record_get(const l2rw_record *r, int i, double *mean_weight,
                     double *zero_share, long *seen)
{
    int ok = r && i >= 0 && i < r->n;
    int64_t s = ok ? r->seen[i] : 0;
    if (seen) *seen = (long)s;
    if (mean_weight) *mean_weight = s ? r->wsum[i] / (double)s : NAN;
    if (zero_share) *zero_share = s ? (double)r->zeros[i] / (double)s : NAN;
}

int l2rw_record_size(const l2rw_record *r) { return r ? r->n : 0; }

void l2rw_record_arrays(l2rw_record *r, double **weight_sum, int64_t **seen,
                        int64_t **zeros)
{
    if (weight_sum) *weight_sum = r ? r->wsum : NULL;
    if (seen) *seen = r ? r->seen : NULL;
    if (zeros) *zeros = r ? r->zeros : NULL;
}

/* ------------------------------------------------- checkpoint section */

enum { WORDS_CHUNK = 512 }; /* 8-byte values encoded per write */

/* n 8-byte words (double or int64 bit patterns) little-endian. */
static l2rw_status write_words64(l2rw_bwriter *w, const void *x, size_t n)
{
    unsigned char buf[WORDS_CHUNK * 8];
    const unsigned char *src = x;
    for (size_t i = 0; i < n;) {
        size_t m = n - i < WORDS_CHUNK ? n - i : WORDS_CHUNK;
        for (size_t k = 0; k < m; k++) {
            uint64_t v;
            memcpy(&v, src + 8 * (i + k), 8);
            for (int b = 0; b < 8; b++)
                buf[8 * k + (size_t)b] = (unsigned char)(v >> (8 * b));
        }
        L2RW_TRY(l2rw__bw_bytes(w, buf, m * 8));
        i += m;
    }
    return L2RW_OK;
}

static l2rw_status read_words64(l2rw_breader *r, void *x, size_t n,
                                const char *what)
{
    unsigned char buf[WORDS_CHUNK * 8];
    unsigned char *dst = x;
    for (size_t i = 0; i < n;) {
        size_t m = n - i < WORDS_CHUNK ? n - i : WORDS_CHUNK;
        L2RW_TRY(l2rw__br_bytes(r, buf, m * 8, what));
        for (size_t k = 0; k < m; k++) {
            uint64_t v = 0;
            for (int b = 0; b < 8; b++)
                v |= (uint64_t)buf[8 * k + (size_t)b] << (8 * b);
            memcpy(dst + 8 * (i + k), &v, 8);
        }
        i += m;
    }
    return L2RW_OK;
}

l2rw_status l2rw__record_write(l2rw_bwriter *w, const l2rw_record *r)
{
    size_t n = (size_t)r->n;
    L2RW_TRY(l2rw__bw_i32(w, r->n));
    L2RW_TRY(write_words64(w, r->wsum, n));
    L2RW_TRY(write_words64(w, r->seen, n));
    return write_words64(w, r->zeros, n);
}

/* A sum of n*w_i (each in [0, n]) is finite and >= 0; an example never
 * seen has nothing; zero weights are counted among the times seen. */
static int entry_ok(double wsum, int64_t seen, int64_t zeros)
{
    return isfinite(wsum) && wsum >= 0.0 && seen >= 0 && zeros >= 0 &&
           zeros <= seen && (seen > 0 || wsum == 0.0);
}

l2rw_status l2rw__record_read(l2rw_breader *br, l2rw_record *r)
{
    int32_t n;
    L2RW_TRY(l2rw__br_i32(br, &n, "example record"));
    if (n != r->n)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: example record of %d "
                          "examples, the training set has %d", br->path,
                          (int)n, r->n);
    size_t sn = (size_t)n;
    L2RW_TRY(l2rw__br_need(br, (uint64_t)sn * 24, "example record"));
    /* read aside, so that a bad file leaves the record as it was */
    double *wsum = l2rw__calloc(sn, sizeof *wsum);
    int64_t *seen = l2rw__calloc(sn, sizeof *seen);
    int64_t *zeros = l2rw__calloc(sn, sizeof *zeros);
    l2rw_status s = (wsum && seen && zeros)
                        ? L2RW_OK
                        : l2rw__fail(L2RW_ERR_NOMEM, "record: out of memory");
    if (s == L2RW_OK) s = read_words64(br, wsum, sn, "example weights");
    if (s == L2RW_OK) s = read_words64(br, seen, sn, "example counts");
    if (s == L2RW_OK) s = read_words64(br, zeros, sn, "example counts");
    for (size_t i = 0; s == L2RW_OK && i < sn; i++)
        if (!entry_ok(wsum[i], seen[i], zeros[i]))
            s = l2rw__fail(L2RW_ERR_FORMAT, "%s: bad example record entry "
                           "%zu", br->path, i);
    if (s == L2RW_OK) {
        memcpy(r->wsum, wsum, sn * sizeof *wsum);
        memcpy(r->seen, seen, sn * sizeof *seen);
        memcpy(r->zeros, zeros, sn * sizeof *zeros);
    }
    free(wsum);
    free(seen);
    free(zeros);
    return s;
}

/* Row order of examples.csv: seen before unseen, lower mean weight first,
 * then lower id. */
typedef struct {
    double mean;
    int seen;
    int32_t id;
    int idx;
} row_key;

static int cmp_row(const void *a, const void *b)
{
    const row_key *p = a, *q = b;
    if (p->seen != q->seen) return p->seen ? -1 : 1;
    if (p->seen && p->mean != q->mean) return p->mean < q->mean ? -1 : 1;
    if (p->id != q->id) return p->id < q->id ? -1 : 1;
    return (p->idx > q->idx) - (p->idx < q->idx);
}

typedef struct {
    const l2rw_record *r;
    const row_key *rows;
    const l2rw_sources *src; /* NULL: no name columns */
} csv_job;

/* The name columns the sources allow. */
static int has_class_names(const l2rw_sources *src)
{
    return src && src->class_names && src->classes > 0;
}

static int has_files(const l2rw_sources *src)
{
    return src && src->train_files && src->n_train > 0;
}


static const char *name_of(char **names, int n, int32_t i)
{
    return names && i >= 0 && i < n ? names[i] : NULL;
}

static void write_names(FILE *fp, const l2rw_record *r, int i,
                        const l2rw_sources *src)
{
    if (has_class_names(src)) {
        fputc(',', fp);
        l2rw__csv_field(fp, name_of(src->class_names, src->classes, r->y[i]));
    }
    if (has_files(src)) {
        fputc(',', fp);
        l2rw__csv_field(fp, name_of(src->train_files, src->n_train, r->id[i]));
    }
}

static void write_row(FILE *fp, const l2rw_record *r, int i,
                      const l2rw_sources *src)
{
    fprintf(fp, "%d,%d,", (int)r->id[i], (int)r->y[i]);
    if (r->y_true)
        fprintf(fp, "%d,%d,", (int)r->y_true[i], r->y[i] != r->y_true[i]);
    else
        fputs(",,", fp);
    if (r->seen[i])
        fprintf(fp, "%.9g,%.9g,%lld", r->wsum[i] / (double)r->seen[i],
                (double)r->zeros[i] / (double)r->seen[i],
                (long long)r->seen[i]);
    else
        fputs(",,0", fp);
    write_names(fp, r, i, src);
    fputc('\n', fp);
}

static l2rw_status write_csv(FILE *fp, void *ctx)
{
    const csv_job *job = ctx;
    const l2rw_record *r = job->r;
    fprintf(fp, "id,given_label,true_label,corrupted,mean_weight,"
                "zero_weight_share,seen%s%s\n",
            has_class_names(job->src) ? ",given_class" : "",
            has_files(job->src) ? ",file" : "");
    for (int k = 0; k < r->n; k++)
        write_row(fp, r, job->rows[k].idx, job->src);
    if (ferror(fp))
        return l2rw__fail(L2RW_ERR_IO, "examples.csv: write failed");
    return L2RW_OK;
}

l2rw_status l2rw_record_save_named(const l2rw_record *r, const char *path,
                                   const l2rw_sources *src)
{
    if (!r || !path)
        return l2rw__fail(L2RW_ERR_ARG, "record save: NULL argument");
    row_key *rows = l2rw__calloc((size_t)r->n, sizeof *rows);
    if (!rows) return l2rw__fail(L2RW_ERR_NOMEM, "record save: out of memory");
    for (int i = 0; i < r->n; i++) {
        rows[i].seen = r->seen[i] > 0;
        rows[i].mean = rows[i].seen ? r->wsum[i] / (double)r->seen[i] : 0.0;
        rows[i].id = r->id[i];
        rows[i].idx = i;
    }
    qsort(rows, (size_t)r->n, sizeof *rows, cmp_row);
    csv_job job = {r, rows, src};
    l2rw_status s = l2rw_write_atomic(path, write_csv, &job);
    free(rows);
    return s;
}

l2rw_status l2rw_record_save(const l2rw_record *r, const char *path)
{
    return l2rw_record_save_named(r, path, NULL);
}

/* ------------------------------------------------------------------- AUC */

typedef struct {
    double score;
    int pos;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *p = a, *q = b;
    return (p->score > q->score) - (p->score < q->score);
}

/* Mann-Whitney: AUC = (R_pos - P(P+1)/2) / (P N), R_pos the sum of the
 * mid-ranks (ties share the mean of their ranks) of the positives. */
static l2rw_status auc_sorted(scored *s, int n, double *auc)
{
    qsort(s, (size_t)n, sizeof *s, cmp_scored);
    double rpos = 0.0, npos = 0.0;
    for (int a = 0; a < n;) {
        int b = a;
        while (b < n && s[b].score == s[a].score) b++;
        double mid = 0.5 * ((double)(a + 1) + (double)b); /* ranks a+1..b */
        for (int k = a; k < b; k++)
            if (s[k].pos) {
                rpos += mid;
                npos += 1.0;
            }
        a = b;
    }
    double nneg = (double)n - npos;
    if (npos == 0.0 || nneg == 0.0)
        return l2rw__fail(L2RW_ERR_ARG,
                          "AUC needs both classes (%.0f positive, %.0f "
                          "negative)", npos, nneg);
    *auc = (rpos - npos * (npos + 1.0) / 2.0) / (npos * nneg);
    return L2RW_OK;
}

l2rw_status l2rw_auc(const double *score, const uint8_t *positive, int n,
                     double *auc)
{
    if (!score || !positive || !auc || n <= 0)
        return l2rw__fail(L2RW_ERR_ARG, "AUC: bad arguments (n=%d)", n);
    scored *s = l2rw__calloc((size_t)n, sizeof *s);
    if (!s) return l2rw__fail(L2RW_ERR_NOMEM, "AUC: out of memory");
    l2rw_status st = L2RW_OK;
    for (int i = 0; i < n && st == L2RW_OK; i++) {
        if (isnan(score[i]))
            st = l2rw__fail(L2RW_ERR_NUMERIC, "AUC: score %d is NaN", i);
        s[i].score = score[i];
        s[i].pos = positive[i] != 0;
    }
    if (st == L2RW_OK) st = auc_sorted(s, n, auc);
    free(s);
    return st;
}

l2rw_status l2rw_record_auc(const l2rw_record *r, double *auc)
{
    if (!r || !auc)
        return l2rw__fail(L2RW_ERR_ARG, "record AUC: NULL argument");
    if (!r->y_true)
        return l2rw__fail(L2RW_ERR_ARG,
                          "record AUC: true labels unknown");
    scored *s = l2rw__calloc((size_t)r->n, sizeof *s);
    if (!s) return l2rw__fail(L2RW_ERR_NOMEM, "record AUC: out of memory");
    int m = 0;
    for (int i = 0; i < r->n; i++)
        if (r->seen[i]) {
            s[m].score = r->wsum[i] / (double)r->seen[i];
            s[m].pos = r->y[i] == r->y_true[i];
            m++;
        }
    l2rw_status st = m > 0 ? auc_sorted(s, m, auc)
                           : l2rw__fail(L2RW_ERR_ARG,
                                        "record AUC: no example seen");
    free(s);
    return st;
}
