/* The training loop (l2rw_train.h): data -> net -> method step -> SGD ->
 * evaluation -> files. Batch shapes: x [batch, c, h, w], y [batch];
 * validation vx [val_batch, c, h, w]; the test set is evaluated in
 * chunks of eval_batch.
 *
 * Determinism: the training batch of step s is a pure function of
 * (seed, s) (l2rw_sampler, or the method's balanced draw), so is the
 * validation batch (its own sampler) and the augmentation; the method
 * derives its own draws from (seed, s). The fine-tune phase is the same
 * with its own sampler over the clean set and its own step count. A
 * checkpoint therefore needs only the two step counts besides the
 * parameters, batch-norm state, velocity and the accumulated statistics
 * (windows, metrics rows, the per-example record). */
#define _POSIX_C_SOURCE 200809L
#include "train_internal.h"
#include "net_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { FINGERPRINT_SIZE = 8192, PATH_SIZE = 4096 };
/* The CIFAR augmentation's zero padding (pixels a side). */
enum { AUGMENT_PAD = 4 };

l2rw_train_cfg l2rw_train_cfg_default(void)
{
    l2rw_train_cfg c;
    memset(&c, 0, sizeof c);
    c.noise = "none";
    c.imbalance = "none";
    c.val_per_class = 100;
    c.normalise = 1;
    c.model = "lenet";
    c.method = "l2rw";
    c.meta_params = "all";
    c.batch = 100;
    c.val_batch = 100;
    c.steps = 3000;
    c.sgd.lr = 0.01f;
    c.sgd.momentum = 0.9f;
    c.sgd.weight_decay = 5e-4f;
    c.sgd.decay = 0.1f;
    c.optim = l2rw_optim_cfg_default(L2RW_OPTIM_SGD);
    c.seed = 1;
    c.eval_every = 500;
    c.eval_batch = 500;
    c.checkpoint_every = 1000;
    c.report_every = 10;
    return c;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The optimizer's options (the run's length is not known yet: a stand-in
 * for the cosine check). The cosine schedule ends at lr_min, where
 * fine-tuning with the main optimizer would run: at 0 it would do
 * nothing. */
static l2rw_status check_optim(const l2rw_train_cfg *c)
{
    l2rw_optim_cfg o = c->optim;
    o.total_steps = 1;
    L2RW_TRY(l2rw_optim_check(&c->sgd, &o));
    if (o.schedule == L2RW_LR_COSINE && c->finetune_clean > 0 &&
        c->finetune_lr == 0 && o.lr_min == 0)
        return l2rw__fail(L2RW_ERR_ARG, "train: --finetune-clean after "
                          "--lr-schedule cosine with --lr-min 0 would run "
                          "at rate 0: give --finetune-lr or --lr-min");
    return L2RW_OK;
}

l2rw_status l2rw_train_check_cfg(const l2rw_train_cfg *c)
{
    l2rw_noise nz;
    l2rw_imbalance imb;
    l2rw_method m;
    l2rw_meta_params mp;
    if (!c) return l2rw__fail(L2RW_ERR_ARG, "train: NULL configuration");
    if (!c->data || !*c->data)
        return l2rw__fail(L2RW_ERR_ARG, "train: no data spec (--data)");
    if (!c->model || !*c->model)
        return l2rw__fail(L2RW_ERR_ARG, "train: no model (--model)");
    L2RW_TRY(l2rw_noise_parse(&nz, c->noise ? c->noise : "none"));
    L2RW_TRY(l2rw_imbalance_parse(&imb, c->imbalance ? c->imbalance
                                                     : "none"));
    L2RW_TRY(l2rw_method_parse(c->method ? c->method : "", &m));
    L2RW_TRY(l2rw_meta_params_parse(c->meta_params ? c->meta_params : "",
                                    &mp));
    if (c->batch < 1 || c->val_batch < 1 || c->eval_batch < 1)
        return l2rw__fail(L2RW_ERR_ARG, "train: batch sizes must be >= 1");
    if (c->comm && (c->comm->size < 1 || c->comm->rank < 0 ||
                    c->comm->rank >= c->comm->size || !c->comm->sum_f32 ||
                    !c->comm->sum_f64))
        return l2rw__fail(L2RW_ERR_ARG, "train: bad process group (rank %d "
                          "of %d, or no sum functions)", c->comm->rank,
                          c->comm->size);
    if (c->steps < 0 || (c->steps == 0 && !(c->epochs > 0)))
        return l2rw__fail(L2RW_ERR_ARG, "train: give steps > 0 or epochs > "
                                        "0");
    if (c->steps == 0 && !(c->epochs < 1e6))
        return l2rw__fail(L2RW_ERR_ARG, "train: epochs %g too large",
                          c->epochs);
    if (c->train_size < 0 || c->val_per_class < 0 || c->val_size < 0 ||
        c->warmup_steps < 0 || c->eval_every < 0 ||
        c->checkpoint_every < 0 || c->finetune_clean < 0 ||
        c->report_every < 0)
        return l2rw__fail(L2RW_ERR_ARG, "train: counts must be >= 0");
    if (!(c->sgd.lr > 0) || !isfinite(c->sgd.lr))
        return l2rw__fail(L2RW_ERR_ARG, "train: learning rate must be > 0");
    if (!(c->sgd.momentum >= 0 && c->sgd.momentum < 1))
        return l2rw__fail(L2RW_ERR_ARG, "train: momentum must be in [0, 1)");
    if (!(c->sgd.weight_decay >= 0) || !isfinite(c->sgd.weight_decay))
        return l2rw__fail(L2RW_ERR_ARG, "train: weight decay must be >= 0");
    L2RW_TRY(check_optim(c));
    if (!(c->finetune_lr >= 0) || !isfinite(c->finetune_lr))
        return l2rw__fail(L2RW_ERR_ARG, "train: fine-tuning learning rate "
                                        "must be >= 0");
    if (c->threads < 0)
        return l2rw__fail(L2RW_ERR_ARG, "train: threads must be >= 0");
    /* with a clean set of its own, sizes 0 take all of it */
    if ((m == L2RW_METHOD_L2RW || c->finetune_clean > 0) && !c->val_data &&
        c->val_per_class == 0 && c->val_size == 0)
        return l2rw__fail(L2RW_ERR_ARG, "train: %s needs a clean validation "
                          "set (--val-per-class K or --val-size N)",
                          c->finetune_clean > 0 ? "--finetune-clean"
                                                : "method l2rw");
    if (c->out_dir && !*c->out_dir)
        return l2rw__fail(L2RW_ERR_ARG, "train: empty out directory");
    return L2RW_OK;
}

/* ------------------------------------------------------------ directories */

/* mkdir -p; *created gets 1 when the last component was made here. */
static l2rw_status make_dirs(const char *dir, int *created)
{
    char path[PATH_SIZE];
    struct stat sb;
    *created = 0;
    if (strlen(dir) >= sizeof path)
        return l2rw__fail(L2RW_ERR_ARG, "out directory name too long");
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return l2rw__fail(L2RW_ERR_IO, "%s exists and is not a "
                              "directory", dir);
        if (access(dir, W_OK | X_OK) != 0)
            return l2rw__fail(L2RW_ERR_IO, "out directory %s is not "
                              "writable", dir);
        return L2RW_OK;
    }
    strcpy(path, dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return l2rw__fail(L2RW_ERR_IO, "cannot create out directory %s: "
                              "%s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0)
        return l2rw__fail(L2RW_ERR_IO, "cannot create out directory %s: %s",
                          dir, strerror(errno));
    *created = 1;
    return L2RW_OK;
}

static void join(char *out, const char *dir, const char *file)
{
    snprintf(out, PATH_SIZE, "%s/%s", dir, file);
}

/* ------------------------------------------------------------- evaluation */

/* Correct predictions and the sum of the losses over examples
 * [first, first + count) of d; dx: d's images on the net's device
 * (train_data.c), read in place, or NULL: d->x, uploaded. */
static l2rw_status evaluate_sums(l2rw_net *net, const l2rw_dataset *d,
                                 const float *dx, int first, int count,
                                 int batch, long *correct_out,
                                 double *sum_out)
{
    if (batch > l2rw_net_max_batch(net)) batch = l2rw_net_max_batch(net);
    size_t dim = l2rw_dataset_dim(d);
    float *l = malloc((size_t)batch * sizeof *l);
    int32_t *pred = malloc((size_t)batch * sizeof *pred);
    l2rw_status s = (l && pred) ? L2RW_OK
                                : l2rw__fail(L2RW_ERR_NOMEM, "evaluate: "
                                             "out of memory");
    l2rw_loss ce = l2rw_loss_default(L2RW_LOSS_CE);
    long correct = 0;
    double sum = 0;
    const int end = first + count;
    for (int i = first; s == L2RW_OK && i < end; i += batch) {
        int n = end - i < batch ? end - i : batch;
        s = l2rw_net_forward(net, (dx ? dx : d->x) + (size_t)i * dim, n,
                             L2RW_MODE_EVAL, 0);
        if (s == L2RW_OK) s = l2rw_net_loss(net, d->y + i, &ce, l, NULL);
        if (s != L2RW_OK) break;
        l2rw_net_predict(net, pred);
        for (int j = 0; j < n; j++) {
            correct += pred[j] == d->y[i + j];
            sum += l[j];
        }
    }
    free(l);
    free(pred);
    *correct_out = correct;
    *sum_out = sum;
    return s;
}

l2rw_status l2rw_evaluate(l2rw_net *net, const l2rw_dataset *d, int batch,
                          double *accuracy, double *loss)
{
    if (!net || !d || batch < 1)
        return l2rw__fail(L2RW_ERR_ARG, "evaluate: bad arguments");
    *accuracy = -1;
    *loss = -1;
    if (d->n == 0) return L2RW_OK;
    long correct = 0;
    double sum = 0;
    L2RW_TRY(evaluate_sums(net, d, NULL, 0, d->n, batch, &correct, &sum));
    *accuracy = (double)correct / d->n;
    *loss = sum / d->n;
    return L2RW_OK;
}

/* Rank 0's running statistics to every rank (a sum where the others
 * give zeros), through a host copy: the net may be on a device. */
static l2rw_status broadcast_state(l2rw_net *net, const l2rw_comm *cm,
                                   size_t ns)
{
    float *state = malloc(ns * sizeof *state);
    if (!state)
        return l2rw__fail(L2RW_ERR_NOMEM, "evaluate: out of memory");
    l2rw_status s = L2RW_OK;
    if (cm->rank == 0)
        s = l2rw_net_read(net, L2RW_NET_STATE, 0, ns, state);
    else
        memset(state, 0, ns * sizeof *state);
    if (s == L2RW_OK) s = cm->sum_f32(cm->ctx, state, ns);
    if (s == L2RW_OK) s = l2rw_net_write(net, L2RW_NET_STATE, 0, ns, state);
    free(state);
    return s;
}

/* l2rw_evaluate of the run (d's images on the device when dx) over a
 * group of ranks (cm may be NULL: one process): rank 0's running
 * statistics (the model's: batch norm keeps each rank's own while
 * training) go to every rank, each evaluates its share of d, and the
 * sums are summed. The same accuracy as one process; the loss to
 * rounding. */
static l2rw_status evaluate_group(l2rw_net *net, const l2rw_dataset *d,
                                  const float *dx, int batch,
                                  const l2rw_comm *cm, double *accuracy,
                                  double *loss)
{
    const int p = cm ? cm->size : 1;
    size_t ns = l2rw_net_num_state(net);
    if (p > 1 && ns > 0) L2RW_TRY(broadcast_state(net, cm, ns));
    *accuracy = -1;
    *loss = -1;
    if (d->n == 0) return L2RW_OK;
    int first = 0, count = d->n;
    long correct = 0;
    double sums[2] = {0, 0};
    if (p > 1) l2rw_shard(d->n, cm->rank, cm->size, &first, &count);
    if (count > 0)
        L2RW_TRY(evaluate_sums(net, d, dx, first, count, batch, &correct,
                               &sums[1]));
    sums[0] = (double)correct;
    if (p > 1) L2RW_TRY(cm->sum_f64(cm->ctx, sums, 2));
    *accuracy = sums[0] / d->n;
    *loss = sums[1] / d->n;
    return L2RW_OK;
}

/* --------------------------------------------------------------- the run */

typedef struct {
    const l2rw_train_cfg *cfg;
    l2rw_data data;
    l2rw_net *net;
    l2rw_sgd *opt;
    l2rw_method_ctx *method;
    l2rw_record *record;
    l2rw_sampler sampler, val_sampler;
    l2rw_sampler ft_sampler;  /* fine-tune batches from the clean set */
    l2rw__ddata dd;           /* the data on the net's device, if there */
    int ft_batch;
    l2rw__train_state st;
    l2rw_stats_window report;
    int batch, val_batch, augment, has_noise;
    long total;
    char fingerprint[FINGERPRINT_SIZE];
    char targets[256]; /* the run's length, for the resume config */
    const char *out;          /* out directory or NULL (a rank but 0) */
    int writer;               /* 1: this process writes the outputs */
    int out_created;
    /* step buffers */
    int32_t *idx, *y, *y_true, *vidx, *vy;
    float *x, *xa, *vx, *w;
    double t_start, t_train, seconds_before; /* t_train: first step */
    long steps_this_process;
    double eval_seconds;      /* this process's test evaluations */
    double last_acc, best_acc;
} run;

static void run_free(run *r)
{
    l2rw__ddata_free(&r->dd);
    l2rw_method_free(r->method);
    l2rw_record_free(r->record);
    l2rw_sgd_free(r->opt);
    l2rw_net_free(r->net);
    l2rw_sampler_free(&r->sampler);
    l2rw_sampler_free(&r->val_sampler);
    l2rw_sampler_free(&r->ft_sampler);
    l2rw_data_free(&r->data);
    l2rw__state_free(&r->st);
    free(r->idx);
    free(r->y);
    free(r->y_true);
    free(r->vidx);
    free(r->vy);
    free(r->x);
    free(r->xa);
    free(r->vx);
    free(r->w);
}

l2rw_data_cfg l2rw_train_data_cfg(const l2rw_train_cfg *c)
{
    l2rw_data_cfg dc = l2rw_data_cfg_default();
    dc.data = c->data;
    dc.noise = c->noise;
    dc.imbalance = c->imbalance;
    dc.train_size = c->train_size;
    dc.val_per_class = c->val_size > 0 ? 0 : c->val_per_class;
    dc.val_size = c->val_size;
    dc.val_data = c->val_data;
    dc.normalise = c->normalise;
    dc.seed = c->seed;
    dc.progress = c->data_progress;
    dc.progress_ctx = c->data_progress_ctx;
    return dc;
}

static l2rw_status prepare_data(run *r)
{
    const l2rw_train_cfg *c = r->cfg;
    const l2rw_data_cfg dc = l2rw_train_data_cfg(c);
    L2RW_TRY(l2rw_data_prepare(&r->data, &dc));
    if (r->data.train.n < 1)
        return l2rw__fail(L2RW_ERR_ARG, "train: no training examples left");
    r->has_noise = r->data.audit.n_changed > 0;
    r->batch = c->batch < r->data.train.n ? c->batch : r->data.train.n;
    r->val_batch = c->val_batch < r->data.val.n ? c->val_batch
                                                : r->data.val.n;
    r->augment = l2rw_augment_default(&r->data.train);
    int p = c->comm ? c->comm->size : 1;
    if (r->batch < p || (r->data.val.n > 0 && r->val_batch < p))
        return l2rw__fail(L2RW_ERR_ARG, "train: a batch of %d (validation "
                          "%d) cannot be shared by %d processes: each needs "
                          "at least one example", r->batch, r->val_batch, p);
    r->total = c->steps > 0 ? c->steps
                            : (long)ceil(c->epochs * r->data.train.n /
                                         r->batch);
    if (r->total < 1) r->total = 1;
    return L2RW_OK;
}

static l2rw_status alloc_buffers(run *r)
{
    size_t dim = l2rw_dataset_dim(&r->data.train);
    int b = r->batch, vb = r->val_batch > 0 ? r->val_batch : 1;
    r->idx = malloc((size_t)b * sizeof *r->idx);
    r->y = malloc((size_t)b * sizeof *r->y);
    r->y_true = malloc((size_t)b * sizeof *r->y_true);
    r->w = malloc((size_t)b * sizeof *r->w);
    r->x = malloc((size_t)b * dim * sizeof *r->x);
    r->xa = malloc((size_t)b * dim * sizeof *r->xa);
    r->vidx = malloc((size_t)vb * sizeof *r->vidx);
    r->vy = malloc((size_t)vb * sizeof *r->vy);
    r->vx = malloc((size_t)vb * dim * sizeof *r->vx);
    if (!r->idx || !r->y || !r->y_true || !r->w || !r->x || !r->xa ||
        !r->vidx || !r->vy || !r->vx)
        return l2rw__fail(L2RW_ERR_NOMEM, "train: out of memory for "
                          "batches");
    return L2RW_OK;
}

static l2rw_status build_model(run *r)
{
    const l2rw_train_cfg *c = r->cfg;
    const l2rw_dataset *t = &r->data.train;
    /* over P ranks the net holds a share: ceil(batch / P) examples */
    int p = c->comm ? c->comm->size : 1;
    int mb = (r->batch + p - 1) / p;
    if ((r->val_batch + p - 1) / p > mb) mb = (r->val_batch + p - 1) / p;
    if (c->eval_batch > mb) mb = c->eval_batch;
    L2RW_TRY(l2rw_net_create_on(&r->net, c->model, t->c, t->h, t->w,
                                t->classes, mb, c->seed, c->device));
    /* Folder data name their classes: the model file keeps the names. */
    const l2rw_sources *src = &r->data.sources;
    if (src->class_names && src->classes == t->classes)
        L2RW_TRY(l2rw_net_set_class_names(
            r->net, (const char *const *)src->class_names, src->classes));
    l2rw_optim_cfg oc = c->optim;
    oc.total_steps = r->total;
    L2RW_TRY(l2rw_optim_create(&r->opt, r->net, &c->sgd, &oc));
    l2rw_method_cfg mc = l2rw_method_cfg_default();
    L2RW_TRY(l2rw_method_parse(c->method, &mc.method));
    L2RW_TRY(l2rw_meta_params_parse(c->meta_params, &mc.meta_params));
    mc.warmup_steps = c->warmup_steps;
    mc.seed = c->seed;
    mc.train_y = t->y;
    mc.n_train = t->n;
    mc.classes = t->classes;
    L2RW_TRY(l2rw_method_create(&r->method, &mc, r->net));
    L2RW_TRY(l2rw_method_set_comm(r->method, c->comm));
    L2RW_TRY(l2rw_record_create(&r->record, t->n, t->id, t->y, t->y_true));
    uint64_t ss = l2rw_data_stage_seed(c->seed, L2RW_STAGE_SAMPLER);
    L2RW_TRY(l2rw_sampler_init(&r->sampler, t->n, r->batch, ss));
    if (r->data.val.n > 0)
        L2RW_TRY(l2rw_sampler_init(&r->val_sampler, r->data.val.n,
                                   r->val_batch, l2rw_hash2(ss, 1)));
    return L2RW_OK;
}

/* On a device net, the data sets go there when they fit (train_data.c),
 * and from then on every batch the net is given is device memory. */
static l2rw_status place_data(run *r)
{
    const l2rw_dataset *const sets[DD_SETS] = {
        &r->data.train, &r->data.val, &r->data.test};
    int mb = r->batch > r->val_batch ? r->batch : r->val_batch;
    L2RW_TRY(l2rw__ddata_init(&r->dd, r->net, sets, mb, r->cfg->data_place));
    l2rw__net_input_on_device(r->net, r->dd.be != NULL);
    return L2RW_OK;
}

/* A checkpoint written during fine-tuning continues only the same main
 * phase and the same fine-tune rate (neither is in the fingerprint, so
 * that a finished run may be extended or fine-tuned afterwards). */
static l2rw_status check_finetune_resume(const run *r, const char *path)
{
    const l2rw_train_cfg *c = r->cfg;
    const l2rw__train_state *st = &r->st;
    if (st->ft_step == 0) return L2RW_OK;
    /* The checkpoint's own targets agree with its state (train_io.c
     * checks), so a difference here is the caller's setting: name the
     * checkpoint's field for its value and the setting for the run's. */
    if (r->total != st->step)
        return l2rw__fail(L2RW_ERR_ARG, "%s was written during fine-tuning "
                          "(field step %ld); this run has %ld main steps "
                          "(--steps/--epochs): give --steps %ld to resume "
                          "it", path, st->step, r->total, st->step);
    if (c->finetune_clean < st->ft_step)
        return l2rw__fail(L2RW_ERR_ARG, "%s was written after %ld fine-tune "
                          "steps (field fine-tune step); this run has "
                          "--finetune-clean %ld: give %ld or more",
                          path, st->ft_step, c->finetune_clean, st->ft_step);
    if (c->finetune_lr != st->ft_lr)
        return l2rw__fail(L2RW_ERR_ARG, "%s was written during fine-tuning "
                          "at rate %.9g (field fine-tune rate); this run has "
                          "--finetune-lr %.9g",
                          path, (double)st->ft_lr, (double)c->finetune_lr);
    return L2RW_OK;
}

/* Reads the checkpoint of cfg.resume_dir: state, per-example record, net
 * and the velocity of the optimizer of its phase (see enter_finetune). */
static l2rw_status resume(run *r)
{
    char path[PATH_SIZE];
    join(path, r->cfg->resume_dir, L2RW_FILE_CHECKPOINT);
    L2RW_TRY(l2rw__checkpoint_load_opt(path, r->fingerprint, &r->st,
                                       r->record, r->net, r->opt));
    /* the cosine schedule spans the run: another length is another
     * trajectory from step 0 on */
    if (r->cfg->optim.schedule == L2RW_LR_COSINE &&
        r->st.ckpt_total != r->total)
        return l2rw__fail(L2RW_ERR_ARG, "%s: the cosine schedule spans its "
                          "run of %ld steps; this run has %ld (give --steps "
                          "%ld)", path, r->st.ckpt_total, r->total,
                          r->st.ckpt_total);
    return check_finetune_resume(r, path);
}

static double window_mean_weight(const l2rw_stats_window *w)
{
    /* sum_i w_i is 1 per updated step (0 when skipped), so the mean of
     * n*w_i over the window's examples is the mean weight sum per step */
    return w->steps ? w->weight_sum / (double)w->steps : -1;
}

static void window_row(const run *r, const l2rw_stats_window *w,
                       l2rw_metrics_row *row)
{
    l2rw_step_stats m;
    l2rw_stats_window_mean(w, &m);
    row->train_loss = w->steps ? m.mean_loss : -1;
    row->mean_weight = window_mean_weight(w);
    double z = l2rw_stats_window_zero_share(w);
    row->zero_share = isfinite(z) ? z : -1;
    row->clean_share = (r->has_noise && isfinite(m.clean_mass))
                           ? m.clean_mass : -1;
}

static void progress_base(const run *r, l2rw_train_event ev,
                          l2rw_train_progress *p)
{
    memset(p, 0, sizeof *p);
    p->event = ev;
    p->step = r->st.step;
    p->total_steps = r->total;
    p->finetune_total = r->cfg->finetune_clean;
    p->epoch = l2rw_sampler_epoch(&r->sampler, r->st.step);
    p->seconds = now_seconds() - r->t_start;
    double dt = now_seconds() - r->t_train;
    p->steps_per_sec = r->t_train > 0 && dt > 0
                           ? r->steps_this_process / dt : 0;
    long left = r->total - r->st.step + r->cfg->finetune_clean -
                r->st.ft_step;
    p->eta_seconds = p->steps_per_sec > 0 ? left / p->steps_per_sec : -1;
    p->last_test_accuracy = r->last_acc;
    p->best_test_accuracy = r->best_acc;
    p->recent.step = r->st.step;
    p->recent.test_accuracy = r->last_acc;
}

/* Calls the callback; nonzero means stop. */
static int report(run *r, l2rw_train_progress *p)
{
    if (!r->cfg->progress) return 0;
    return r->cfg->progress(p, r->cfg->progress_ctx);
}

static l2rw_status save_checkpoint(run *r)
{
    char path[PATH_SIZE];
    if (!r->out) return L2RW_OK;
    join(path, r->out, L2RW_FILE_CHECKPOINT);
    r->st.seconds = r->seconds_before + (now_seconds() - r->t_start);
    L2RW_TRY(l2rw__checkpoint_save(path, r->fingerprint, r->targets, &r->st,
                                   r->record, r->net, r->opt));
    l2rw_train_progress p;
    progress_base(r, L2RW_EVENT_CHECKPOINT, &p);
    p.path = path;
    report(r, &p);
    return L2RW_OK;
}

/* The test set's accuracy and loss into row, timed (eval_seconds: a
 * run's steps/s without its evaluations). */
static l2rw_status test_eval(run *r, l2rw_metrics_row *row)
{
    double t0 = now_seconds();
    l2rw_status s = evaluate_group(r->net, &r->data.test, r->dd.x[DD_TEST],
                                   r->cfg->eval_batch, r->cfg->comm,
                                   &row->test_accuracy, &row->test_loss);
    r->eval_seconds += now_seconds() - t0;
    return s;
}

/* Test evaluation at the current step; appends a metrics row. */
static l2rw_status evaluate_row(run *r, int *stop)
{
    l2rw_metrics_row row;
    memset(&row, 0, sizeof row);
    row.step = r->st.step;
    row.epoch = l2rw_sampler_epoch(&r->sampler, r->st.step);
    window_row(r, &r->st.since_eval, &row);
    L2RW_TRY(test_eval(r, &row));
    L2RW_TRY(l2rw__state_add_row(&r->st, &row));
    l2rw_stats_window_reset(&r->st.since_eval);
    r->last_acc = row.test_accuracy;
    if (row.test_accuracy > r->best_acc) r->best_acc = row.test_accuracy;
    if (r->out) {
        char path[PATH_SIZE];
        join(path, r->out, L2RW_FILE_METRICS);
        L2RW_TRY(l2rw__metrics_save(path, &r->st));
    }
    l2rw_train_progress p;
    progress_base(r, L2RW_EVENT_EVAL, &p);
    p.recent = row;
    if (report(r, &p)) *stop = 1;
    return L2RW_OK;
}

/* A NaN or Inf (in a loss or a parameter) is the end of a divergence:
 * say so, and what to try. */
static l2rw_status diverged_numeric(const run *r, l2rw_status s)
{
    if (s != L2RW_ERR_NUMERIC) return s;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", l2rw_last_error());
    return l2rw__fail(L2RW_ERR_DIVERGED,
                      "training diverged at step %ld: %s; try --lr %g or "
                      "--clip-grad-norm 1", r->st.step + 1, msg,
                      (double)r->cfg->sgd.lr / 10);
}

/* Examples idx [n] of data set k (DD_TRAIN, DD_VAL) as a batch: their
 * labels (y, y_true may be NULL) on the host, their images where the net
 * reads them: gathered on the device into the slot's buffer when the set
 * is there, else into hx on the host. *x: the batch's images. */
static l2rw_status gather_batch(run *r, int k, int slot,
                                const int32_t *idx, int n, float *hx,
                                int32_t *y, int32_t *y_true, const float **x)
{
    const l2rw_dataset *d = k == DD_TRAIN ? &r->data.train : &r->data.val;
    const int on_device = r->dd.be != NULL;
    L2RW_TRY(l2rw_gather(d, idx, n, on_device ? NULL : hx, y, y_true, NULL));
    *x = on_device ? l2rw__ddata_gather(&r->dd, k, slot, idx, n) : hx;
    return L2RW_OK;
}

/* The step's crop-flip of a training batch x [n] (CIFAR shapes), where
 * the batch is; the same draws on the host and the device. */
static const float *augment_batch(run *r, const float *x, int n, long step)
{
    const l2rw_dataset *t = &r->data.train;
    uint64_t key = l2rw_hash2(
        l2rw_data_stage_seed(r->cfg->seed, L2RW_STAGE_AUGMENT),
        (uint64_t)step);
    if (r->dd.be)
        return l2rw__ddata_augment(&r->dd, x, n, t->c, t->h, t->w,
                                   AUGMENT_PAD, key);
    l2rw_augment_crop_flip(r->xa, x, n, t->c, t->h, t->w, AUGMENT_PAD, key);
    return r->xa;
}

/* One main-phase step. */
static l2rw_status train_step(run *r)
{
    const l2rw_dataset *t = &r->data.train, *v = &r->data.val;
    long s = r->st.step;
    int n = r->batch, nv = 0;
    const float *x, *vx = NULL;
    if (l2rw_method_needs_balanced_batches(r->method, s))
        L2RW_TRY(l2rw_method_balanced_batch(r->method, s, n, r->idx));
    else
        L2RW_TRY(l2rw_sampler_batch(&r->sampler, s, r->idx));
    L2RW_TRY(gather_batch(r, DD_TRAIN, DD_SLOT_TRAIN, r->idx, n, r->x, r->y,
                          r->y_true, &x));
    if (r->augment) x = augment_batch(r, x, n, s);
    if (l2rw_method_needs_validation(r->method, s)) {
        if (v->n == 0)
            return l2rw__fail(L2RW_ERR_ARG, "train: the method needs a "
                              "clean validation set");
        nv = r->val_batch;
        L2RW_TRY(l2rw_sampler_batch(&r->val_sampler, s, r->vidx));
        L2RW_TRY(gather_batch(r, DD_VAL, DD_SLOT_VAL, r->vidx, nv, r->vx,
                              r->vy, NULL, &vx));
    }
    l2rw_step_stats st;
    L2RW_TRY(diverged_numeric(r, l2rw_method_step(
                                     r->method, r->net, r->opt, s, x, r->y,
                                     r->y_true, n, vx, nv ? r->vy : NULL,
                                     nv, &st, r->w)));
    if (!r->cfg->no_divergence_check)
        L2RW_TRY(l2rw__diverge_add(&r->st.diverge, st.mean_loss, s + 1,
                                   t->classes, r->cfg->sgd.lr));
    L2RW_TRY(l2rw_record_add(r->record, r->idx, n, r->w));
    l2rw_stats_window_add(&r->st.total, &st);
    l2rw_stats_window_add(&r->st.since_eval, &st);
    l2rw_stats_window_add(&r->report, &st);
    r->st.step++;
    r->steps_this_process++;
    return L2RW_OK;
}

/* One fine-tune step: a plain step on a batch of the clean set. With
 * the main optimizer the schedule counts on from the main phase; with
 * its own rate (enter_finetune) it counts from 0. */
static l2rw_status finetune_step(run *r)
{
    long k = r->st.ft_step;
    int n = r->ft_batch;
    l2rw_step_stats st;
    const float *x;
    L2RW_TRY(l2rw_sampler_batch(&r->ft_sampler, k, r->idx));
    L2RW_TRY(gather_batch(r, DD_VAL, DD_SLOT_TRAIN, r->idx, n, r->x, r->y,
                          NULL, &x));
    L2RW_TRY(l2rw_finetune_step(r->method, r->net, r->opt,
                                r->cfg->finetune_lr > 0 ? k : r->total + k,
                                x, r->y, n, &st));
    l2rw_stats_window_add(&r->report, &st);
    r->st.ft_step++;
    r->steps_this_process++;
    return L2RW_OK;
}

typedef enum { PHASE_MAIN, PHASE_FINETUNE } phase;

/* Steps of the phase done and to do. */
static long phase_done(const run *r, phase ph)
{
    return ph == PHASE_MAIN ? r->st.step : r->st.ft_step;
}

static long phase_total(const run *r, phase ph)
{
    return ph == PHASE_MAIN ? r->total : r->cfg->finetune_clean;
}

/* After every step of either phase: the STEP event, the evaluation
 * (main phase), and a checkpoint every checkpoint_every steps of the run
 * (main and fine-tune steps counted together, as the rows of
 * metrics.csv count them) or when stopping. */
/* Over ranks, one rank's stop (a signal, its callback) stops them all
 * after the same step. */
static l2rw_status agree_stop(const l2rw_train_cfg *c, int *stop)
{
    if (!c->comm || c->comm->size == 1) return L2RW_OK;
    double any = *stop ? 1.0 : 0.0;
    L2RW_TRY(c->comm->sum_f64(c->comm->ctx, &any, 1));
    *stop = any > 0.0;
    return L2RW_OK;
}

static l2rw_status after_step(run *r, phase ph, int *stop)
{
    const l2rw_train_cfg *c = r->cfg;
    long k = phase_done(r, ph), run_steps = r->st.step + r->st.ft_step;
    if (c->stop && *c->stop) *stop = 1;
    if (c->report_every > 0 &&
        (k % c->report_every == 0 || k == phase_total(r, ph))) {
        l2rw_train_progress p;
        progress_base(r, L2RW_EVENT_STEP, &p);
        if (ph == PHASE_FINETUNE) p.finetune_step = k;
        window_row(r, &r->report, &p.recent);
        l2rw_stats_window_reset(&r->report);
        if (report(r, &p)) *stop = 1;
    }
    if (ph == PHASE_MAIN && c->eval_every > 0 && k % c->eval_every == 0)
        L2RW_TRY(evaluate_row(r, stop));
    if (c->stop && *c->stop) *stop = 1;
    L2RW_TRY(agree_stop(c, stop));
    if (*stop ||
        (c->checkpoint_every > 0 && run_steps % c->checkpoint_every == 0))
        L2RW_TRY(save_checkpoint(r));
    return L2RW_OK;
}

static l2rw_status run_phase(run *r, phase ph, int *stop)
{
    while (phase_done(r, ph) < phase_total(r, ph) && !*stop) {
        L2RW_TRY(ph == PHASE_MAIN ? train_step(r) : finetune_step(r));
        L2RW_TRY(after_step(r, ph, stop));
    }
    return L2RW_OK;
}

/* --finetune-clean: plain steps on the clean set after the main phase,
 * with the main optimizer (its velocity and schedule continue) or, with
 * --finetune-lr, a fresh one (zero velocity, constant rate) that
 * replaces it, so that the checkpoint always holds the velocity of the
 * optimizer in use. resumed: the velocity in r->opt is that of a
 * checkpoint written during fine-tuning, so it moves to the new one. */
static l2rw_status enter_finetune(run *r, int resumed)
{
    const l2rw_train_cfg *c = r->cfg;
    const l2rw_dataset *v = &r->data.val;
    r->ft_batch = r->batch < v->n ? r->batch : v->n;
    r->st.ft_lr = c->finetune_lr;
    l2rw_stats_window_reset(&r->report);
    L2RW_TRY(l2rw_sampler_init(
        &r->ft_sampler, v->n, r->ft_batch,
        l2rw_hash2(l2rw_data_stage_seed(c->seed, L2RW_STAGE_SAMPLER), 2)));
    if (!(c->finetune_lr > 0)) return L2RW_OK;
    l2rw_sgd_cfg sc = c->sgd;
    sc.lr = c->finetune_lr;
    sc.n_milestones = 0;
    l2rw_optim_cfg oc = c->optim; /* the same kind and clipping */
    oc.schedule = L2RW_LR_STEP;   /* a constant rate */
    oc.warmup_steps = 0;
    l2rw_sgd *own;
    L2RW_TRY(l2rw_optim_create(&own, r->net, &sc, &oc));
    /* the state of a checkpoint, read into r->opt, goes to the new one
     * (on the net's device) */
    if (resumed) {
        l2rw_status s = l2rw_optim_copy_state(own, r->opt);
        if (s != L2RW_OK) {
            l2rw_sgd_free(own);
            return s;
        }
    }
    l2rw_sgd_free(r->opt);
    r->opt = own;
    return L2RW_OK;
}

static l2rw_status write_outputs(run *r, l2rw_train_result *res,
                                 double acc_before_ft)
{
    char path[PATH_SIZE];
    const char *o = r->out;
    join(path, o, L2RW_FILE_METRICS);
    L2RW_TRY(l2rw__metrics_save(path, &r->st));
    join(path, o, L2RW_FILE_MODEL);
    L2RW_TRY(l2rw_net_save(r->net, path));
    if (r->data.norm.c > 0) {
        join(path, o, L2RW_FILE_NORM);
        L2RW_TRY(l2rw_norm_save(&r->data.norm, path));
    }
    join(path, o, L2RW_FILE_EXAMPLES);
    L2RW_TRY(l2rw_record_save_named(r->record, path, &r->data.sources));
    l2rw__summary sm = {r->cfg, res, &r->data, r->total, r->batch,
                        r->val_batch, acc_before_ft, r->dd.be != NULL};
    join(path, o, L2RW_FILE_SUMMARY);
    return l2rw__summary_save(path, &sm);
}

static void fill_result(run *r, l2rw_train_result *res)
{
    l2rw_step_stats m;
    l2rw_stats_window_mean(&r->st.total, &m);
    res->steps = r->st.step;
    res->finetune_steps = r->st.ft_step;
    res->clean_weight_share = (r->has_noise && isfinite(m.clean_mass))
                                  ? m.clean_mass : -1;
    res->mean_weight = window_mean_weight(&r->st.total);
    double z = l2rw_stats_window_zero_share(&r->st.total);
    res->zero_share = isfinite(z) ? z : -1;
    double auc;
    res->auc = -1;
    if (r->has_noise && l2rw_record_auc(r->record, &auc) == L2RW_OK)
        res->auc = auc;
    l2rw__clear_error();
    res->noise_rate = r->data.audit.effective_rate;
    res->n_train = r->data.train.n;
    res->n_val = r->data.val.n;
    res->n_test = r->data.test.n;
    res->seconds = r->seconds_before + (now_seconds() - r->t_start);
    res->loop_steps = r->steps_this_process;
    res->loop_seconds = r->t_train > 0 ? now_seconds() - r->t_train : 0;
    res->eval_seconds = r->eval_seconds;
}

/* A resumed run whose length is below the steps its checkpoint has done
 * would do nothing and rewrite the outputs as if it had run: refuse.
 * (Equal is a finished run: it ends at once, which is fine.) A
 * checkpoint written during fine-tuning is checked by
 * check_finetune_resume. */
static l2rw_status check_resume_length(const run *r)
{
    if (r->st.ft_step > 0 || r->st.step <= r->total) return L2RW_OK;
    return l2rw__fail(L2RW_ERR_ARG, "%s/%s has done %ld steps, more than "
                      "the %ld steps of this run; give --steps %ld or more "
                      "to continue it", r->cfg->resume_dir,
                      L2RW_FILE_CHECKPOINT, r->st.step, r->total,
                      r->st.step);
}

/* l2rw_write_atomic's temporary files ("NAME.tmp.PID") of the run's own
 * file names: a process killed while writing (kill -9, a second Ctrl-C)
 * leaves one behind, and nothing else would ever remove it. */
static const char *const run_files[] = {
    L2RW_FILE_METRICS, L2RW_FILE_SUMMARY, L2RW_FILE_EXAMPLES,
    L2RW_FILE_MODEL,   L2RW_FILE_NORM,    L2RW_FILE_AUDIT,
    L2RW_FILE_CHECKPOINT};
enum { N_RUN_FILES = sizeof run_files / sizeof run_files[0] };

/* The run files in dir as "a, b, c" (empty when none). */
static void run_files_in(const char *dir, char *buf, size_t size)
{
    char path[PATH_SIZE];
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_RUN_FILES && used < size; i++) {
        join(path, dir, run_files[i]);
        if (access(path, F_OK) == 0)
            used += (size_t)snprintf(buf + used, size - used, "%s%s",
                                     used ? ", " : "", run_files[i]);
    }
}

static int same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return !strcmp(a, b);
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A run writing into a directory that holds another run would replace
 * that run's checkpoint and model: refused unless it continues that run
 * (resume into the same directory) or cfg.overwrite says to start over.
 * Checked before anything is read or written. */
static l2rw_status check_out_dir(const l2rw_train_cfg *c)
{
    const char *out = c->out_dir, *res = c->resume_dir;
    const int continues = res && (!out || same_dir(out, res));
    if (c->overwrite && !out && !res)
        return l2rw__fail(L2RW_ERR_ARG, "train: --overwrite needs --out DIR");
    if (c->overwrite && continues)
        return l2rw__fail(L2RW_ERR_ARG, "train: --overwrite starts over, "
                          "--resume %s continues the run there: give one of "
                          "them", res);
    if (!out || c->overwrite || continues) return L2RW_OK;
    char found[512];
    run_files_in(out, found, sizeof found);
    if (!found[0]) return L2RW_OK;
    return l2rw__fail(L2RW_ERR_ARG, "train: %s holds another run (%s): "
                      "continue it with --resume %s, or start over with "
                      "--overwrite (removes that run's files)", out, found,
                      out);
}

/* cfg.overwrite, once the run has passed its checks: the other run's
 * files go, so that none of them (a norm.txt this run does not write, a
 * checkpoint it has not yet replaced) passes for this run's. */
static l2rw_status remove_old_run(const char *dir)
{
    char path[PATH_SIZE];
    for (int i = 0; i < N_RUN_FILES; i++) {
        join(path, dir, run_files[i]);
        if (remove(path) != 0 && errno != ENOENT)
            return l2rw__fail(L2RW_ERR_IO, "%s: cannot remove the other "
                              "run's file: %s", path, strerror(errno));
    }
    return L2RW_OK;
}

/* The PID of a temporary file of one of run_files, or 0. */
static long temp_file_pid(const char *name)
{
    static const char suffix[] = ".tmp.";
    for (int i = 0; i < N_RUN_FILES; i++) {
        size_t n = strlen(run_files[i]);
        if (strncmp(name, run_files[i], n) ||
            strncmp(name + n, suffix, sizeof suffix - 1))
            continue;
        const char *digits = name + n + sizeof suffix - 1;
        char *end;
        long pid = strtol(digits, &end, 10);
        return end != digits && !*end && pid > 0 ? pid : 0;
    }
    return 0;
}

/* Whether the writer of a temporary file may still be writing it:
 * another live process (one out directory is one run, so that is
 * another l2rw on the same directory, or an unrelated process that got
 * the PID: keeping a stale file is the safe mistake). This process
 * writes nothing while setting up. */
static int writer_alive(long pid)
{
    if ((pid_t)pid == getpid()) return 0;
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Removes the stale temporary files of dir; best effort (one that
 * cannot be removed does no harm). */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char path[PATH_SIZE];
    for (struct dirent *e; (e = readdir(d));) {
        long pid = temp_file_pid(e->d_name);
        if (pid == 0 || writer_alive(pid)) continue;
        join(path, dir, e->d_name);
        remove(path);
    }
    closedir(d);
}

/* Everything that can fail on bad input, before any file is written. */
static l2rw_status setup(run *r, l2rw_train_result *res)
{
    const l2rw_train_cfg *c = r->cfg;
    L2RW_TRY(l2rw_train_check_cfg(c));
    /* over ranks, rank 0 writes the files; every rank reads a resumed
     * run's checkpoint */
    r->writer = !c->comm || c->comm->rank == 0;
    if (r->writer) L2RW_TRY(check_out_dir(c));
    if (c->threads > 0) l2rw_set_threads(c->threads);
    L2RW_TRY(l2rw__train_fingerprint(c, r->fingerprint,
                                     sizeof r->fingerprint));
    L2RW_TRY(prepare_data(r));
    L2RW_TRY(l2rw__train_targets(c, r->total, r->targets,
                                 sizeof r->targets));
    L2RW_TRY(alloc_buffers(r));
    L2RW_TRY(build_model(r));
    L2RW_TRY(place_data(r));
    if (c->resume_dir) {
        L2RW_TRY(resume(r));
        L2RW_TRY(check_resume_length(r));
        res->resumed_from = r->st.step;
        r->seconds_before = r->st.seconds;
        /* the best accuracy so far comes back with the rows */
        for (long i = 0; i < r->st.n_rows; i++) {
            r->last_acc = r->st.rows[i].test_accuracy;
            if (r->last_acc > r->best_acc) r->best_acc = r->last_acc;
        }
    }
    r->out = !r->writer ? NULL : c->out_dir ? c->out_dir : c->resume_dir;
    if (r->out) {
        L2RW_TRY(make_dirs(r->out, &r->out_created));
        remove_stale_temps(r->out);
        if (c->overwrite) L2RW_TRY(remove_old_run(r->out));
    }
    return L2RW_OK;
}

/* The test evaluation after fine-tuning, as one more metrics row. */
static l2rw_status finetune_row(run *r, long steps)
{
    l2rw_metrics_row row;
    memset(&row, 0, sizeof row);
    row.step = r->st.step + steps;
    row.epoch = l2rw_sampler_epoch(&r->sampler, r->st.step);
    row.train_loss = row.mean_weight = -1;
    row.zero_share = row.clean_share = -1;
    L2RW_TRY(test_eval(r, &row));
    L2RW_TRY(l2rw__state_add_row(&r->st, &row));
    r->last_acc = row.test_accuracy;
    if (row.test_accuracy > r->best_acc) r->best_acc = row.test_accuracy;
    l2rw_train_progress p;
    progress_base(r, L2RW_EVENT_FINETUNE, &p);
    p.finetune_step = steps;
    report(r, &p);
    return L2RW_OK;
}

/* End of the main phase: a checkpoint first (a later run with more steps
 * resumes from here), then the evaluation at the last step if the
 * schedule did not just make one (it is not in the checkpoint, so a
 * resumed run's rows match those of an uninterrupted one). A run
 * resumed during fine-tuning did this before. */
static l2rw_status end_main_phase(run *r)
{
    const l2rw_train_cfg *c = r->cfg;
    int ignored = 0;
    if (r->st.ft_step > 0) return L2RW_OK;
    if (r->out &&
        !(c->checkpoint_every > 0 && r->st.step % c->checkpoint_every == 0))
        L2RW_TRY(save_checkpoint(r));
    if (r->st.n_rows == 0 || r->st.rows[r->st.n_rows - 1].step != r->st.step)
        L2RW_TRY(evaluate_row(r, &ignored));
    return L2RW_OK;
}

/* Fine-tuning's evaluation row, the result and the files. acc_before_ft:
 * the accuracy at the end of the main phase (the last row before
 * fine-tuning). */
static l2rw_status finish(run *r, l2rw_train_result *res, double acc_before_ft)
{
    if (r->st.ft_step > 0) L2RW_TRY(finetune_row(r, r->st.ft_step));
    fill_result(r, res);
    const l2rw_metrics_row *last = &r->st.rows[r->st.n_rows - 1];
    res->final_test_accuracy = last->test_accuracy;
    res->final_test_loss = last->test_loss;
    res->best_test_accuracy = r->best_acc;
    return r->out ? write_outputs(r, res, acc_before_ft) : L2RW_OK;
}

/* Main phase, its end, fine-tuning; *stop when stopped (checkpoint
 * written), *acc_before_ft the accuracy at the end of the main phase. */
static l2rw_status train_phases(run *r, int *stop, double *acc_before_ft)
{
    L2RW_TRY(run_phase(r, PHASE_MAIN, stop));
    if (*stop) return L2RW_OK;
    L2RW_TRY(end_main_phase(r));
    *acc_before_ft = r->last_acc;
    if (r->cfg->finetune_clean == 0 || r->data.val.n == 0) return L2RW_OK;
    L2RW_TRY(enter_finetune(r, r->st.ft_step > 0));
    return run_phase(r, PHASE_FINETUNE, stop);
}

static l2rw_status train_run(const l2rw_train_cfg *cfg, l2rw_train_result *res)
{
    l2rw_train_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    res->final_test_accuracy = res->best_test_accuracy = -1;
    res->final_test_loss = res->clean_weight_share = res->auc = -1;
    run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.last_acc = r.best_acc = -1;
    r.t_start = now_seconds();
    l2rw_stats_window_reset(&r.st.total);
    l2rw_stats_window_reset(&r.st.since_eval);
    l2rw_stats_window_reset(&r.report);
    l2rw_status s = setup(&r, res);
    if (s != L2RW_OK) {
        if (r.out_created) rmdir(r.out);
        run_free(&r);
        return s;
    }
    res->started = 1;
    char path[PATH_SIZE];
    if (r.out) {
        join(path, r.out, L2RW_FILE_AUDIT);
        s = l2rw_audit_save(&r.data.audit, path, L2RW_AUDIT_JSON);
    }
    l2rw_train_progress p;
    progress_base(&r, L2RW_EVENT_START, &p);
    p.data = &r.data;
    p.data_place = r.dd.where;
    p.resumed_from = res->resumed_from;
    p.finetune_step = r.st.ft_step; /* with step: is a resumed run done? */
    int stop = s == L2RW_OK && report(&r, &p);
    if (s == L2RW_OK) s = agree_stop(cfg, &stop);
    r.t_train = now_seconds();
    double acc_before_ft = -1;
    if (s == L2RW_OK && !stop) s = train_phases(&r, &stop, &acc_before_ft);
    if (s == L2RW_OK && stop) {
        /* the checkpoint of the stop was written after the last step,
         * unless the stop came before the first step */
        res->stopped = 1;
        fill_result(&r, res);
        progress_base(&r, L2RW_EVENT_DONE, &p);
        report(&r, &p);
        run_free(&r);
        return L2RW_OK;
    }
    if (s == L2RW_OK) s = finish(&r, res, acc_before_ft);
    progress_base(&r, L2RW_EVENT_DONE, &p);
    report(&r, &p);
    run_free(&r);
    return s;
}

l2rw_status l2rw_train_run(const l2rw_train_cfg *cfg, l2rw_train_result *res)
{
    /* cfg->threads holds for this run only: the caller's count returns. */
    const l2rw__threads_saved saved = l2rw__threads_save();
    const l2rw_status s = train_run(cfg, res);
    l2rw__threads_restore(saved);
    return s;
}
