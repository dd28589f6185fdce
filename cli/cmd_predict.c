/* l2rw predict: a saved model's predictions and class probabilities.
 *
 *   l2rw predict --load FILE --data SPEC [--image-size HxW] [--norm FILE]
 *                [--imbalance SPEC] [--split test|train] [--out FILE]
 *                [--batch N] [--threads T] [--device cpu|cuda[:N]|checked]
 *
 * One CSV row per example of the chosen split, in the data's order:
 *   id[,file],predicted[,predicted_class],label,p_0,...,p_{K-1}
 * p_k the softmax of the logits. file when the data names its files;
 * the class names (predicted_class, and p_NAME instead of p_k) when the
 * data or the model know them. The normalisation is the model's (norm.txt
 * next to it) as in `l2rw eval`. Without --out the CSV goes to stdout and
 * nothing else does; with it the file is written atomically and a summary
 * line is printed. On a device the model is loaded there, each batch is
 * uploaded and its logits read back (the CSV does not depend on where the
 * net ran beyond the device's rounding: the checked device gives the
 * CPU's bytes). */
#define _POSIX_C_SOURCE 200809L
#include "cmds.h"
#include "model_load.h"
#include "opts.h"

#include "common.h" /* l2rw_write_atomic, l2rw__csv_field */
#include "l2rw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "l2rw predict"

typedef struct {
    const l2rw_dataset *d;
    int classes;                 /* the model's */
    const float *prob;           /* [n, classes] */
    const int32_t *pred;         /* [n] */
    char *const *class_names;    /* [classes] or NULL */
    char *const *files;          /* by id, or NULL */
    int n_files;
} predictions;

/* ------------------------------------------------------------ computing */

/* Softmax of one row of logits, in double so that no class underflows
 * before the division. */
static void softmax(const float *z, int k, float *p)
{
    double m = z[0], sum = 0.0;
    for (int j = 1; j < k; j++)
        if (z[j] > m) m = z[j];
    for (int j = 0; j < k; j++) sum += exp((double)z[j] - m);
    for (int j = 0; j < k; j++) p[j] = (float)(exp((double)z[j] - m) / sum);
}

/* The class of the largest logit, the first on ties: l2rw_net_predict's
 * rule, so that the CSV's predictions are the library's. */
static int32_t argmax(const float *z, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

/* The logits of each batch come to the host through l2rw_net_read (a
 * download on a device, which also reports a device error of the pass),
 * never through the host pointer l2rw_net_logits, which a device net
 * does not have. */
static l2rw_status predict_all(l2rw_net *net, const l2rw_dataset *d,
                               int batch, float *prob, int32_t *pred)
{
    int k = l2rw_net_classes(net);
    size_t dim = l2rw_dataset_dim(d);
    if (batch > l2rw_net_max_batch(net)) batch = l2rw_net_max_batch(net);
    if (batch > d->n) batch = d->n;
    float *z = malloc((size_t)batch * (size_t)k * sizeof *z);
    if (!z)
        return l2rw__fail(L2RW_ERR_NOMEM, "out of memory for %d x %d "
                          "logits", batch, k);
    l2rw_status s = L2RW_OK;
    for (int i = 0; i < d->n && s == L2RW_OK; i += batch) {
        int n = d->n - i < batch ? d->n - i : batch;
        size_t len = (size_t)n * (size_t)k;
        s = l2rw_net_forward(net, d->x + (size_t)i * dim, n, L2RW_MODE_EVAL,
                             0);
        if (s == L2RW_OK) s = l2rw_net_read(net, L2RW_NET_LOGITS, 0, len, z);
        for (int j = 0; s == L2RW_OK && j < n; j++) {
            const float *row = z + (size_t)j * (size_t)k;
            pred[i + j] = argmax(row, k);
            softmax(row, k, prob + (size_t)(i + j) * (size_t)k);
        }
    }
    free(z);
    return s;
}

/* -------------------------------------------------------------- writing */


static void write_header(FILE *fp, const predictions *p)
{
    fprintf(fp, "id,%spredicted,%slabel", p->files ? "file," : "",
            p->class_names ? "predicted_class," : "");
    for (int k = 0; k < p->classes; k++) {
        char name[256];
        if (p->class_names)
            snprintf(name, sizeof name, "p_%s", p->class_names[k]);
        else
            snprintf(name, sizeof name, "p_%d", k);
        fputc(',', fp);
        l2rw__csv_field(fp, name);
    }
    fputc('\n', fp);
}

static void write_row(FILE *fp, const predictions *p, int i)
{
    int32_t id = p->d->id[i];
    fprintf(fp, "%d,", (int)id);
    if (p->files) {
        l2rw__csv_field(fp, id >= 0 && id < p->n_files ? p->files[id] : NULL);
        fputc(',', fp);
    }
    fprintf(fp, "%d,", (int)p->pred[i]);
    if (p->class_names) {
        l2rw__csv_field(fp, p->class_names[p->pred[i]]);
        fputc(',', fp);
    }
    fprintf(fp, "%d", (int)p->d->y[i]);
    const float *pr = p->prob + (size_t)i * (size_t)p->classes;
    for (int k = 0; k < p->classes; k++) fprintf(fp, ",%.6g", (double)pr[k]);
    fputc('\n', fp);
}

static l2rw_status write_csv(FILE *fp, void *ctx)
{
    const predictions *p = ctx;
    write_header(fp, p);
    for (int i = 0; i < p->d->n; i++) write_row(fp, p, i);
    return ferror(fp) ? l2rw__fail(L2RW_ERR_IO, "write failed") : L2RW_OK;
}

static double accuracy(const predictions *p)
{
    long right = 0;
    for (int i = 0; i < p->d->n; i++) right += p->pred[i] == p->d->y[i];
    return (double)right / (double)p->d->n;
}

/* What run() predicts and the names it writes. */
typedef struct {
    const l2rw_dataset *d;
    char *const *files;
    int n_files;
    char **names;
} job;

/* Predicts the job's data and writes the CSV; 0, or 1 after printing
 * why. */
static int run(cli_model *m, const job *jb, int batch, const char *out)
{
    const l2rw_dataset *d = jb->d;
    int k = l2rw_net_classes(m->net);
    float *prob = malloc((size_t)d->n * (size_t)k * sizeof *prob);
    int32_t *pred = malloc((size_t)d->n * sizeof *pred);
    predictions p = {d, k, prob, pred, jb->names, jb->files, jb->n_files};
    l2rw_status s = prob && pred ? predict_all(m->net, d, batch, prob, pred)
                                 : l2rw__fail(L2RW_ERR_NOMEM, "out of memory "
                                              "for %d predictions", d->n);
    if (s == L2RW_OK && out) s = l2rw_write_atomic(out, write_csv, &p);
    if (s == L2RW_OK && !out) {
        s = write_csv(stdout, &p);
        if (s == L2RW_OK && fflush(stdout) != 0)
            s = l2rw__fail(L2RW_ERR_IO, "stdout: write failed");
    }
    if (s == L2RW_OK && out)
        printf("wrote %d predictions to %s (accuracy against the given "
               "labels %.2f%%)\n", d->n, out, 100.0 * accuracy(&p));
    if (s != L2RW_OK)
        fprintf(stderr, PROG ": %s%s%s\n", out ? out : "", out ? ": " : "",
                l2rw_last_error());
    free(prob);
    free(pred);
    return s == L2RW_OK ? 0 : 1;
}

/* ------------------------------------------------------------- command */

/* The data through the library's pipeline with nothing done to it (no
 * noise, split or normalisation), so that the sources come with it; the
 * class selection of --imbalance as eval makes it (no subsampling). */
static int load_data(const char *data, const char *imb, l2rw_data *d)
{
    l2rw_imbalance im;
    l2rw_data_cfg c = l2rw_data_cfg_default();
    c.data = data;
    c.normalise = 0;
    if (l2rw_imbalance_parse(&im, imb) != L2RW_OK ||
        l2rw_data_prepare(d, &c) != L2RW_OK ||
        l2rw_imbalance_select(&d->train, &d->test, &im) != L2RW_OK) {
        fprintf(stderr, PROG ": %s\n", l2rw_last_error());
        return 2;
    }
    /* the data's class names no longer match selected classes */
    if (im.kind == L2RW_IMB_SHARE) l2rw_sources_free(&d->sources);
    return 0;
}

/* Class names: the model's (saved from its training data), else the
 * data's; NULL when neither has all of them. */
static char **class_names(const l2rw_net *net, const l2rw_sources *src,
                          int k)
{
    char **names = calloc((size_t)k, sizeof *names);
    for (int j = 0; names && j < k; j++) {
        const char *n = l2rw_net_class_name(net, j);
        if (!n && src->class_names && j < src->classes)
            n = src->class_names[j];
        if (!n) {
            free(names);
            return NULL;
        }
        names[j] = (char *)n;
    }
    return names;
}

int l2rw_cmd_predict(int argc, char **argv)
{
    const char *load = NULL, *data = NULL, *norm = NULL, *imb = "none",
               *split = "test", *out = NULL, *image_size = NULL,
               *device = "cpu";
    int batch = 500, threads = 0;
    opt_def opts[] = {
        {"load", OPT_STR, &load, "FILE", "model file (required)", 1, 0, 0},
        {"data", OPT_STR, &data, "SPEC", "data spec as for train (required)",
         1, 0, 0},
        {"image-size", OPT_STR, &image_size, "HxW",
         "resize folder: and list: images, as in training", 1, 0, 0},
        {"norm", OPT_STR, &norm, "FILE",
         "normalisation file (none = norm.txt next to the model, if any)", 1,
         0, 0},
        {"imbalance", OPT_STR, &imb, "SPEC",
         "keep the classes of a training --imbalance A,B:SHARE", 1, 0, 0},
        {"split", OPT_STR, &split, "test|train", "which part of the data", 1,
         0, 0},
        {"out", OPT_STR, &out, "FILE", "CSV file (none = stdout)", 1, 0, 0},
        {"batch", OPT_INT, &batch, "N", "prediction batch", 1, 65536, 0},
        {"device", OPT_STR, &device, "cpu|cuda[:N]|checked",
         "where the net runs", 1, 0, 0},
        {"threads", OPT_INT, &threads, "T", "threads (0 = all cores)", 0,
         1024, 0},
    };
    char err[OPTS_ERR_MAX];
    int rc = opts_parse(opts, (int)(sizeof opts / sizeof opts[0]), argc, argv,
                        PROG, "usage: l2rw predict --load FILE --data SPEC "
                        "[options]", stdout, NULL, 0, NULL, err, sizeof err);
    if (rc == 1) return 0;
    if (rc) return opts_usage_error(err);
    if (!load || !data)
        return opts_usage_error(PROG ": --load FILE and --data SPEC are "
                                "required (try --help)");
    l2rw_device dev;
    if (opts_device(PROG, device, 0, &dev)) return 2;
    if (strcmp(split, "test") && strcmp(split, "train"))
        return opts_usage_error(PROG ": --split must be test or train");
    static char sized[8192];
    if (image_size) {
        if (l2rw_data_spec_set_size(data, image_size, sized, sizeof sized) !=
            L2RW_OK) {
            fprintf(stderr, PROG ": --image-size: %s\n", l2rw_last_error());
            return 2;
        }
        data = sized;
    }
    if (threads > 0) l2rw_set_threads(threads);

    cli_model model;
    if (cli_model_load(&model, PROG, load, batch, &dev)) return 2;
    l2rw_data d;
    memset(&d, 0, sizeof d);
    rc = load_data(data, imb, &d);
    int train = !strcmp(split, "train");
    l2rw_dataset *part = train ? &d.train : &d.test;
    if (!rc && part->n == 0) {
        fprintf(stderr, PROG ": the %s split of %s is empty\n", split, data);
        rc = 2;
    }
    if (!rc) rc = cli_model_prepare(&model, PROG, load, norm, part);
    if (!rc) {
        const l2rw_sources *s = &d.sources;
        /* a held-out test part has training ids (no files of its own) */
        int own = !train && s->test_files;
        job j = {part, own ? s->test_files : s->train_files,
                 own ? s->n_test : s->n_train,
                 class_names(model.net, s, l2rw_net_classes(model.net))};
        rc = run(&model, &j, batch, out);
        free(j.names);
    }
    cli_model_free(&model);
    l2rw_data_free(&d);
    return rc;
}
