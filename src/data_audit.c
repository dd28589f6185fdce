/* The corruption audit: what the data pipeline produced (class counts,
 * labels changed per class, achieved against expected noise rate), as
 * text or JSON. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

static void free_class_names(l2rw_audit *a)
{
    for (int k = 0; a->class_names && k < a->classes; k++)
        free(a->class_names[k]);
    free(a->class_names);
    a->class_names = NULL;
}

void l2rw_audit_free(l2rw_audit *a)
{
    if (!a) return;
    free_class_names(a);
    free(a->train_true);
    free(a->train_given);
    free(a->changed);
    free(a->val_count);
    free(a->test_count);
    a->train_true = a->train_given = a->changed = NULL;
    a->val_count = a->test_count = NULL;
}

static void count(long *cnt, const l2rw_dataset *d, int K)
{
    if (!d) return;
    for (int i = 0; i < d->n; i++)
        if (d->y[i] >= 0 && d->y[i] < K) cnt[d->y[i]]++;
}

l2rw_status l2rw_audit_compute(l2rw_audit *a, const l2rw_dataset *train,
                               const l2rw_dataset *val,
                               const l2rw_dataset *test)
{
    /* Keep the caller's descriptive fields (data, noise, seed, ...). */
    l2rw_audit_free(a);
    int K = train->classes;
    size_t k1 = (size_t)K + 1;
    a->classes = K;
    a->train_true = l2rw__calloc(k1, sizeof(long));
    a->train_given = l2rw__calloc(k1, sizeof(long));
    a->changed = l2rw__calloc(k1, sizeof(long));
    a->val_count = l2rw__calloc(k1, sizeof(long));
    a->test_count = l2rw__calloc(k1, sizeof(long));
    if (!a->train_true || !a->train_given || !a->changed || !a->val_count ||
        !a->test_count) {
        l2rw_audit_free(a);
        return l2rw__fail(L2RW_ERR_NOMEM, "audit: out of memory");
    }
    a->n_train = train->n;
    a->n_val = val ? val->n : 0;
    a->n_test = test ? test->n : 0;
    a->n_changed = 0;
    for (int i = 0; i < train->n; i++) {
        int t = train->y_true[i], g = train->y[i];
        if (t < 0 || t >= K || g < 0 || g >= K) {
            l2rw_audit_free(a);
            return l2rw__fail(L2RW_ERR_LABEL, "audit: training example %d "
                              "has label %d (true %d) outside [0, %d)", i, g,
                              t, K);
        }
        a->train_true[t]++;
        a->train_given[g]++;
        if (g != t) {
            a->changed[t]++;
            a->n_changed++;
        }
    }
    count(a->val_count, val, K);
    count(a->test_count, test, K);
    a->effective_rate = train->n ? (double)a->n_changed / train->n : 0;
    return L2RW_OK;
}

l2rw_status l2rw__audit_sources(l2rw_audit *a, const l2rw_sources *src)
{
    free_class_names(a);
    a->n_decoded = src->n_decoded;
    a->n_cached = src->n_cached;
    a->n_bad_files = src->n_bad;
    if (!src->class_names || src->classes != a->classes) return L2RW_OK;
    a->class_names = l2rw__calloc((size_t)a->classes, sizeof *a->class_names);
    for (int k = 0; a->class_names && k < a->classes; k++)
        if (!(a->class_names[k] = strdup(src->class_names[k]))) {
            free_class_names(a);
            break;
        }
    if (!a->class_names)
        return l2rw__fail(L2RW_ERR_NOMEM, "audit: out of memory");
    return L2RW_OK;
}

static void json_str(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(fp, "\\%c", ch);
        else if (ch < 0x20) fprintf(fp, "\\u%04x", ch);
        else fputc(ch, fp);
    }
    fputc('"', fp);
}

static void json_arr(FILE *fp, const char *key, const long *v, int K)
{
    fprintf(fp, "  \"%s\": [", key);
    for (int k = 0; k < K; k++) fprintf(fp, "%s%ld", k ? ", " : "", v[k]);
    fprintf(fp, "]");
}

/* --val-data: the trusted set's source and what it shares with the
 * training set (overlap is reported, not removed). */
static void json_val_source(const l2rw_audit *a, FILE *fp)
{
    if (!a->val_data[0]) return;
    fprintf(fp, ",\n  \"val_data\": ");
    json_str(fp, a->val_data);
    fprintf(fp, ",\n  \"val_balanced\": %s,\n  \"overlap\": {\"pixels\": "
                "%ld, \"files\": %ld, \"first\": [",
            a->val_balanced ? "true" : "false", a->overlap_pixels,
            a->overlap_files);
    for (int i = 0; i < a->n_overlap_shown; i++)
        fprintf(fp, "%s{\"val_id\": %d, \"train_id\": %d}", i ? ", " : "",
                (int)a->overlap_val_id[i], (int)a->overlap_train_id[i]);
    fprintf(fp, "]}");
}

/* Image data: the class names, and whether the decoded-set cache was
 * used (files decoded now vs read from the cache). */
static void print_json_images(const l2rw_audit *a, FILE *fp)
{
    if (a->class_names) {
        fprintf(fp, ",\n  \"class_names\": [");
        for (int k = 0; k < a->classes; k++) {
            fprintf(fp, "%s", k ? ", " : "");
            json_str(fp, a->class_names[k]);
        }
        fprintf(fp, "]");
    }
    if (a->n_decoded || a->n_cached)
        fprintf(fp, ",\n  \"images_decoded\": %ld,\n  \"images_cached\": "
                    "%ld,\n  \"cache_used\": %s,\n  \"images_skipped\": %ld",
                a->n_decoded, a->n_cached, a->n_cached ? "true" : "false",
                a->n_bad_files);
}

static void print_json(const l2rw_audit *a, FILE *fp)
{
    fprintf(fp, "{\n  \"data\": ");
    json_str(fp, a->data);
    fprintf(fp, ",\n  \"noise\": ");
    json_str(fp, a->noise);
    fprintf(fp, ",\n  \"imbalance\": ");
    json_str(fp, a->imbalance);
    fprintf(fp, ",\n  \"seed\": %llu,\n  \"classes\": %d,\n"
                "  \"n_train\": %ld,\n  \"n_val\": %ld,\n  \"n_test\": %ld,\n"
                "  \"n_hit\": %ld,\n  \"n_changed\": %ld,\n"
                "  \"nominal_rate\": %.6g,\n  \"expected_rate\": %.6g,\n"
                "  \"effective_rate\": %.6g,\n",
            (unsigned long long)a->seed, a->classes, a->n_train, a->n_val,
            a->n_test, a->n_hit, a->n_changed, a->nominal_rate,
            a->expected_rate, a->effective_rate);
    json_arr(fp, "train_true", a->train_true, a->classes);
    fprintf(fp, ",\n");
    json_arr(fp, "train_given", a->train_given, a->classes);
    fprintf(fp, ",\n");
    json_arr(fp, "changed", a->changed, a->classes);
    fprintf(fp, ",\n  \"noise_rate_per_class\": [");
    for (int k = 0; k < a->classes; k++)
        fprintf(fp, "%s%.6g", k ? ", " : "",
                a->train_true[k] ? (double)a->changed[k] / a->train_true[k]
                                 : 0.0);
    fprintf(fp, "],\n");
    json_arr(fp, "val_count", a->val_count, a->classes);
    fprintf(fp, ",\n");
    json_arr(fp, "test_count", a->test_count, a->classes);
    json_val_source(a, fp);
    print_json_images(a, fp);
    fprintf(fp, "\n}\n");
}

static void print_text(const l2rw_audit *a, FILE *fp)
{
    fprintf(fp, "data %s, imbalance %s, seed %llu: %ld train, %ld clean "
                "validation, %ld test, %d classes\n",
            a->data, a->imbalance, (unsigned long long)a->seed, a->n_train,
            a->n_val, a->n_test, a->classes);
    fprintf(fp, "noise %s: %ld of %ld labels hit, %ld changed; effective "
                "rate %.4f (expected %.4f, nominal %.4f)\n",
            a->noise, a->n_hit, a->n_train, a->n_changed, a->effective_rate,
            a->expected_rate, a->nominal_rate);
    if (a->val_data[0])
        fprintf(fp, "clean set from %s%s: %ld also in the training set by "
                    "pixels, %ld by file (reported, not removed)\n",
                a->val_data, a->val_balanced ? "" : " (unbalanced)",
                a->overlap_pixels, a->overlap_files);
    if (a->n_decoded || a->n_cached)
        fprintf(fp, "images: %ld decoded, %ld from the cache, %ld skipped "
                    "as bad files\n", a->n_decoded, a->n_cached,
                a->n_bad_files);
    fprintf(fp, "class  train(true) train(given) changed  rate    val   "
                "test\n");
    for (int k = 0; k < a->classes; k++)
        fprintf(fp, "%5d %12ld %12ld %7ld %6.4f %6ld %6ld\n", k,
                a->train_true[k], a->train_given[k], a->changed[k],
                a->train_true[k] ? (double)a->changed[k] / a->train_true[k]
                                 : 0.0,
                a->val_count[k], a->test_count[k]);
    for (int k = 0; a->class_names && k < a->classes; k++)
        fprintf(fp, "class %d: %s\n", k, a->class_names[k]);
}

l2rw_status l2rw_audit_fprint(const l2rw_audit *a, FILE *fp,
                              l2rw_audit_format fmt)
{
    if (!a->train_true)
        return l2rw__fail(L2RW_ERR_ARG, "audit: not computed");
    if (fmt == L2RW_AUDIT_JSON) print_json(a, fp);
    else print_text(a, fp);
    return ferror(fp) ? l2rw__fail(L2RW_ERR_IO, "audit: write failed")
                      : L2RW_OK;
}

typedef struct {
    const l2rw_audit *a;
    l2rw_audit_format fmt;
} save_ctx;

static l2rw_status save_fn(FILE *fp, void *ctx)
{
    const save_ctx *c = ctx;
    return l2rw_audit_fprint(c->a, fp, c->fmt);
}

l2rw_status l2rw_audit_save(const l2rw_audit *a, const char *path,
                            l2rw_audit_format fmt)
{
    save_ctx c = {a, fmt};
    return l2rw_write_atomic(path, save_fn, &c);
}
