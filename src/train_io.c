/* Files of the training loop: checkpoints, metrics.csv, summary.json.
 *
 * Checkpoint, version 4 (binio.h conventions, little-endian):
 *   "L2RWCKPT"  magic
 *   u32         version
 *   str         fingerprint (train_internal.h)
 *   str         targets: the run's length and thread count
 *               (l2rw__train_targets), so that `l2rw train --resume DIR`
 *               needs no other option
 *   i64 step; i64 fine-tune steps; f32 fine-tune rate (as u32 bits);
 *     f64 seconds (as u64 bits)
 *   2 stats windows (total, since the last evaluation), fixed field order
 *   u32 rows; 8 f64 per metrics row (step as f64 is exact below 2^53)
 *   example record (l2rw__record_write: fixed size, n_train entries)
 *   net section (model_io.h)
 *   optimizer: u32 kind (l2rw_optim_kind); i64 updates made (AdamW's t);
 *     f32 beta1, beta2, eps; f32 velocity (AdamW: first moment m)
 *     [num_params]; AdamW only: f32 second moment v [num_params]
 *   divergence detector: i64 steps seen; f64 lowest mean; f64 losses
 *     [DIVERGE_WINDOW]
 *   u32         CRC-32
 * Version 3 ended with the f32 velocity after the net section (SGD
 * only); it is still read (update count 0, empty detector: an SGD run
 * does not use the count). Version 1 kept a log of every step's weights
 * instead of the record (it grew with the run), version 2 had no
 * targets; both are refused with a message saying so. */
#define _POSIX_C_SOURCE 200809L
#include "model_io.h"
#include "train_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char ckpt_magic[L2RW_MAGIC_LEN] = {'L', '2', 'R', 'W',
                                                'C', 'K', 'P', 'T'};
enum { CKPT_VERSION = 4, CKPT_VERSION_SGD = 3, FINGERPRINT_MAX = 8192,
       TARGETS_MAX = 1024 };

/* Steps are stored in metrics rows as f64, exact up to 2^53; a value
 * outside [0, 2^53] or with a fraction cannot come from a run and would
 * be undefined behaviour to convert to long. */
static const double MAX_EXACT_STEP = 9007199254740992.0; /* 2^53 */

static l2rw_status grow(void **p, long *cap, long need, size_t elem)
{
    if (need <= *cap) return L2RW_OK;
    long c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return l2rw__fail(L2RW_ERR_NOMEM, "train: out of memory");
    *p = q;
    *cap = c;
    return L2RW_OK;
}

void l2rw__state_free(l2rw__train_state *st)
{
    free(st->rows);
    memset(st, 0, sizeof *st);
}

l2rw_status l2rw__state_add_row(l2rw__train_state *st,
                                const l2rw_metrics_row *row)
{
    L2RW_TRY(grow((void **)&st->rows, &st->cap_rows, st->n_rows + 1,
                  sizeof *st->rows));
    st->rows[st->n_rows++] = *row;
    return L2RW_OK;
}

/* ------------------------------------------------------------ fingerprint */

/* The optimizer's options beyond SGD's, only those not at their SGD
 * value, so that the fingerprints of SGD runs (and their version-3
 * checkpoints) stay what they were; a resume with other options then
 * differs on the line of the first of them. */
static int optim_text(const l2rw_optim_cfg *o, char *buf, size_t size)
{
    int k = 0;
    if (o->kind != L2RW_OPTIM_SGD)
        k = snprintf(buf, size, "optimizer=%s\nbeta1=%a\nbeta2=%a\neps=%a\n",
                     l2rw_optim_name(o->kind), (double)o->beta1,
                     (double)o->beta2, (double)o->eps);
    if (k >= 0 && (size_t)k < size && o->schedule != L2RW_LR_STEP)
        k += snprintf(buf + k, size - (size_t)k,
                      "lr-schedule=%s\nlr-min=%a\n",
                      l2rw_lr_schedule_name(o->schedule), (double)o->lr_min);
    if (k >= 0 && (size_t)k < size && o->warmup_steps > 0)
        k += snprintf(buf + k, size - (size_t)k, "lr-warmup=%ld\n",
                      o->warmup_steps);
    if (k >= 0 && (size_t)k < size && o->clip_grad_norm > 0)
        k += snprintf(buf + k, size - (size_t)k, "clip-grad-norm=%a\n",
                      (double)o->clip_grad_norm);
    return k;
}

l2rw_status l2rw__train_fingerprint(const l2rw_train_cfg *c, char *buf,
                                    size_t size)
{
    char ms[16 * 24] = "", noise[64] = "none";
    l2rw_noise nz;
    if (c->noise && l2rw_noise_parse(&nz, c->noise) == L2RW_OK)
        l2rw_noise_format(&nz, noise, sizeof noise);
    for (int i = 0; i < c->sgd.n_milestones; i++) {
        size_t u = strlen(ms);
        snprintf(ms + u, sizeof ms - u, "%s%ld", i ? "," : "",
                 c->sgd.milestones[i]);
    }
    /* Floats as hexadecimal so that the text is exact. */
    int k = snprintf(
        buf, size,
        "data=%s\nnoise=%s\nimbalance=%s\ntrain-size=%ld\n"
        "val-per-class=%d\nval-size=%ld\nnormalise=%d\nmodel=%s\n"
        "method=%s\nmeta-params=%s\nwarmup-steps=%ld\nbatch=%d\n"
        "val-batch=%d\nlr=%a\nmomentum=%a\nwd=%a\nlr-steps=%s\n"
        "lr-decay=%a\nseed=%llu\neval-every=%ld\neval-batch=%d\n",
        c->data, noise, c->imbalance ? c->imbalance : "none", c->train_size,
        c->val_per_class, c->val_size, c->normalise, c->model, c->method,
        c->meta_params, c->warmup_steps, c->batch, c->val_batch,
        (double)c->sgd.lr, (double)c->sgd.momentum,
        (double)c->sgd.weight_decay, ms,
        c->sgd.n_milestones ? (double)c->sgd.decay : 0.0,
        (unsigned long long)c->seed, c->eval_every, c->eval_batch);
    /* only when given, so that checkpoints from before --val-data keep
     * their fingerprint */
    if (k >= 0 && (size_t)k < size && c->val_data)
        k += snprintf(buf + k, size - (size_t)k, "val-data=%s\n",
                      c->val_data);
    if (k >= 0 && (size_t)k < size) {
        int o = optim_text(&c->optim, buf + k, size - (size_t)k);
        k = o < 0 ? o : k + o;
    }
    /* a group's shares and batch statistics depend on its size; one
     * process writes no line ("(default)" in the message), as before
     * groups existed */
    if (k >= 0 && (size_t)k < size && c->comm && c->comm->size > 1)
        k += snprintf(buf + k, size - (size_t)k, "ranks=%d\n",
                      c->comm->size);
    if (k < 0 || (size_t)k >= size)
        return l2rw__fail(L2RW_ERR_ARG, "train: configuration text too long");
    return L2RW_OK;
}

l2rw_status l2rw__train_targets(const l2rw_train_cfg *c, long total,
                                char *buf, size_t size)
{
    /* device, threads and tf32: where and how the run computes (its
     * kernels, its reductions split by the count, its GPU products
     * rounded or not), so that a resume without --device, --threads or
     * --tf32 continues the same bits; not in the fingerprint, so another
     * choice may still be given (and is then the same run to rounding) */
    char dev[32];
    l2rw_device_format(c->device, dev, sizeof dev);
    int k = snprintf(buf, size,
                     "steps=%ld\nfinetune-clean=%ld\nfinetune-lr=%a\n"
                     "checkpoint-every=%ld\ndevice=%s\nthreads=%d\n"
                     "tf32=%d\n",
                     total, c->finetune_clean, (double)c->finetune_lr,
                     c->checkpoint_every, dev, l2rw_get_threads(),
                     l2rw_get_tf32());
    if (k < 0 || (size_t)k >= size)
        return l2rw__fail(L2RW_ERR_ARG, "train: targets text too long");
    return L2RW_OK;
}

/* The first line that differs, for the error message. */
static void first_difference(const char *a, const char *b, char *out,
                             size_t size)
{
    for (;;) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a);
        size_t lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0) {
            /* a line only one side has is an option at its default on
             * the other (see optim_text) */
            snprintf(out, size, "the checkpoint has %.*s, this run %.*s",
                     la ? (int)la : 9, la ? a : "(default)",
                     lb ? (int)lb : 9, lb ? b : "(default)");
            return;
        }
        if (!ea || !eb) break;
        a = ea + 1;
        b = eb + 1;
    }
    snprintf(out, size, "the configurations differ");
}

/* ------------------------------------------------------------- checkpoint */

static l2rw_status bw_f64(l2rw_bwriter *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return l2rw__bw_u64(w, u);
}

static l2rw_status br_f64(l2rw_breader *r, double *v, const char *what)
{
    uint64_t u;
    L2RW_TRY(l2rw__br_u64(r, &u, what));
    memcpy(v, &u, sizeof u);
    return L2RW_OK;
}

static l2rw_status bw_window(l2rw_bwriter *w, const l2rw_stats_window *s)
{
    const long l[] = {s->steps, s->warmup_steps, s->nonpositive_steps,
                      s->updated_steps, s->examples, s->zero_weights,
                      s->clean_mass_steps, s->val_loss_steps};
    const double d[] = {s->weight_sum, s->mean_loss, s->weighted_loss,
                        s->clean_mass_sum, s->val_loss_sum};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        L2RW_TRY(l2rw__bw_i64(w, l[i]));
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        L2RW_TRY(bw_f64(w, d[i]));
    return L2RW_OK;
}

/* A count of the checkpoint: in [0, LONG_MAX] (a long may be 32 bits). */
static l2rw_status br_count(l2rw_breader *r, long *out, const char *field)
{
    int64_t v;
    L2RW_TRY(l2rw__br_i64(r, &v, field));
    if (v < 0 || v > LONG_MAX)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: field %s is %lld, not a count in [0, %ld] "
                          "(corrupt checkpoint)",
                          r->path, field, (long long)v, LONG_MAX);
    *out = (long)v;
    return L2RW_OK;
}

/* which: "total" or "since-eval", for messages. */
static l2rw_status br_window(l2rw_breader *r, l2rw_stats_window *s,
                             const char *which)
{
    long *l[] = {&s->steps, &s->warmup_steps, &s->nonpositive_steps,
                 &s->updated_steps, &s->examples, &s->zero_weights,
                 &s->clean_mass_steps, &s->val_loss_steps};
    static const char *const names[] = {
        "steps", "warmup_steps", "nonpositive_steps", "updated_steps",
        "examples", "zero_weights", "clean_mass_steps", "val_loss_steps"};
    double *d[] = {&s->weight_sum, &s->mean_loss, &s->weighted_loss,
                   &s->clean_mass_sum, &s->val_loss_sum};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++) {
        char field[64];
        snprintf(field, sizeof field, "statistics.%s.%s", which, names[i]);
        L2RW_TRY(br_count(r, l[i], field));
    }
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        L2RW_TRY(br_f64(r, d[i], "statistics"));
    return L2RW_OK;
}

static l2rw_status bw_row(l2rw_bwriter *w, const l2rw_metrics_row *m)
{
    const double d[] = {(double)m->step, m->epoch,       m->train_loss,
                        m->test_accuracy, m->test_loss,  m->mean_weight,
                        m->zero_share,    m->clean_share};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        L2RW_TRY(bw_f64(w, d[i]));
    return L2RW_OK;
}

/* A step stored as f64: checked before the conversion to long. */
static l2rw_status br_row(l2rw_breader *r, l2rw_metrics_row *m, uint32_t i)
{
    double step;
    L2RW_TRY(br_f64(r, &step, "metrics row"));
    if (!(step >= 0 && step <= MAX_EXACT_STEP && step <= (double)LONG_MAX &&
          step == floor(step)))
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: metrics row %u: field step is %g, not a whole "
                          "number of steps in [0, 2^53] (corrupt "
                          "checkpoint)",
                          r->path, (unsigned)i, step);
    m->step = (long)step;
    double *d[] = {&m->epoch,      &m->train_loss,  &m->test_accuracy,
                   &m->test_loss,  &m->mean_weight, &m->zero_share,
                   &m->clean_share};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        L2RW_TRY(br_f64(r, d[i], "metrics row"));
    return L2RW_OK;
}

typedef struct {
    const char *path, *fingerprint, *targets;
    const l2rw__train_state *st;
    const l2rw_record *record;
    const l2rw_net *net;
    const l2rw_sgd *opt;
} ckpt_ctx;

/* The optimizer section: kind, update count, AdamW's hyper-parameters,
 * the velocity (or first moment), AdamW's second moment (from any
 * device). */
static l2rw_status bw_optim(l2rw_bwriter *w, const l2rw_sgd *opt, size_t n)
{
    const l2rw_optim_cfg o = l2rw_optim_config(opt);
    const float hyper[] = {o.beta1, o.beta2, o.eps};
    L2RW_TRY(l2rw__bw_u32(w, (uint32_t)o.kind));
    L2RW_TRY(l2rw__bw_i64(w, l2rw_optim_updates(opt)));
    L2RW_TRY(l2rw__write_floats(w, hyper, 3));
    L2RW_TRY(l2rw__write_optim_buffer(w, opt, L2RW_OPTIM_FIRST, n));
    if (o.kind == L2RW_OPTIM_ADAMW)
        L2RW_TRY(l2rw__write_optim_buffer(w, opt, L2RW_OPTIM_SECOND, n));
    return L2RW_OK;
}

static l2rw_status bw_diverge(l2rw_bwriter *w, const l2rw__diverge *d)
{
    L2RW_TRY(l2rw__bw_i64(w, d->seen));
    L2RW_TRY(bw_f64(w, d->min_mean));
    for (int i = 0; i < DIVERGE_WINDOW; i++)
        L2RW_TRY(bw_f64(w, d->recent[i]));
    return L2RW_OK;
}

static l2rw_status ckpt_write(FILE *fp, void *vctx)
{
    const ckpt_ctx *c = vctx;
    const l2rw__train_state *st = c->st;
    l2rw_bwriter w;
    L2RW_TRY(l2rw__bw_begin(&w, fp, c->path, ckpt_magic));
    L2RW_TRY(l2rw__bw_u32(&w, CKPT_VERSION));
    L2RW_TRY(l2rw__bw_str(&w, c->fingerprint));
    L2RW_TRY(l2rw__bw_str(&w, c->targets));
    L2RW_TRY(l2rw__bw_i64(&w, st->step));
    L2RW_TRY(l2rw__bw_i64(&w, st->ft_step));
    L2RW_TRY(l2rw__write_floats(&w, &st->ft_lr, 1));
    L2RW_TRY(bw_f64(&w, st->seconds));
    L2RW_TRY(bw_window(&w, &st->total));
    L2RW_TRY(bw_window(&w, &st->since_eval));
    L2RW_TRY(l2rw__bw_u32(&w, (uint32_t)st->n_rows));
    for (long i = 0; i < st->n_rows; i++)
        L2RW_TRY(bw_row(&w, &st->rows[i]));
    L2RW_TRY(l2rw__record_write(&w, c->record));
    L2RW_TRY(l2rw__net_write(&w, c->net));
    L2RW_TRY(bw_optim(&w, c->opt, l2rw_net_num_params(c->net)));
    L2RW_TRY(bw_diverge(&w, &st->diverge));
    return l2rw__bw_end(&w);
}

l2rw_status l2rw__checkpoint_save(const char *path, const char *fingerprint,
                                  const char *targets,
                                  const l2rw__train_state *st,
                                  const l2rw_record *record,
                                  const l2rw_net *net, const l2rw_sgd *opt)
{
    if (!opt || l2rw_net_num_params(net) == 0)
        return l2rw__fail(L2RW_ERR_ARG, "checkpoint: no optimizer");
    ckpt_ctx c = {path, fingerprint, targets, st, record, net, opt};
    return l2rw_write_atomic(path, ckpt_write, &c);
}

/* The format version, right after the magic: this one or version 3. */
static l2rw_status read_version(l2rw_breader *r, uint32_t *out)
{
    uint32_t version;
    L2RW_TRY(l2rw__br_u32(r, &version, "version"));
    *out = version;
    if (version == CKPT_VERSION || version == CKPT_VERSION_SGD)
        return L2RW_OK;
    return l2rw__fail(L2RW_ERR_FORMAT, "%s: checkpoint format version %u, "
                      "this build reads versions %d and %d only%s", r->path,
                      version, CKPT_VERSION_SGD, CKPT_VERSION,
                      version < CKPT_VERSION
                          ? " (written by an older l2rw; start the run "
                            "afresh)"
                          : " (written by a newer l2rw)");
}

static l2rw_status read_fingerprint(l2rw_breader *r, const char *fingerprint)
{
    char *fp = malloc(FINGERPRINT_MAX);
    if (!fp) return l2rw__fail(L2RW_ERR_NOMEM, "train: out of memory");
    l2rw_status s = l2rw__br_str(r, fp, FINGERPRINT_MAX, "fingerprint");
    if (s == L2RW_OK && strcmp(fp, fingerprint) != 0) {
        char diff[1024];
        first_difference(fp, fingerprint, diff, sizeof diff);
        s = l2rw__fail(L2RW_ERR_ARG, "%s is from another configuration: %s",
                       r->path, diff);
    }
    free(fp);
    return s;
}

/* --------------------------------------------------- values of the text */

/* The value of line "key=..." of text into buf, or 0 when absent. */
static int text_value(const char *text, const char *key, char *buf,
                      size_t size)
{
    const size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen && memcmp(line, key, klen) == 0 && line[klen] == '=') {
            snprintf(buf, size, "%.*s", (int)(len - klen - 1),
                     line + klen + 1);
            return 1;
        }
        line = end ? end + 1 : NULL;
    }
    return 0;
}

/* A whole number in [lo, hi], digits only: -1 when not. */
static long parse_count(const char *v, long lo, long hi)
{
    if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 18)
        return -1;
    long long x = strtoll(v, NULL, 10);
    return x < lo || x > hi ? -1 : (long)x;
}

/* A finite number (decimal or the %a of the writer); NAN when not. */
static double parse_real(const char *v)
{
    char *end;
    double x = strtod(v, &end);
    return *v && *end == '\0' && isfinite(x) ? x : NAN;
}

/* The values a checkpoint's text gives the run: each is checked here and
 * blamed on the checkpoint, so that a resumed run's options (which take
 * them as defaults) are never blamed for a value the user did not type. */
typedef enum { V_COUNT, V_POSITIVE, V_INT_POS, V_INT, V_RATE, V_UNIT,
               V_NONNEG, V_SEED, V_FLAG, V_COUNT_LIST, V_OPTIMIZER,
               V_SCHEDULE, V_DEVICE } value_kind;

typedef struct {
    const char *key;
    value_kind kind;
} value_rule;

static const value_rule value_rules[] = {
    {"train-size", V_COUNT},     {"val-per-class", V_INT},
    {"val-size", V_COUNT},       {"normalise", V_FLAG},
    {"warmup-steps", V_COUNT},   {"batch", V_INT_POS},
    {"val-batch", V_INT_POS},    {"lr", V_RATE},
    {"momentum", V_UNIT},        {"wd", V_NONNEG},
    {"lr-steps", V_COUNT_LIST},  {"lr-decay", V_NONNEG},
    {"seed", V_SEED},            {"eval-every", V_COUNT},
    {"eval-batch", V_INT_POS},   {"steps", V_POSITIVE},
    {"finetune-clean", V_COUNT}, {"finetune-lr", V_NONNEG},
    {"checkpoint-every", V_COUNT}, {"optimizer", V_OPTIMIZER},
    {"beta1", V_UNIT},           {"beta2", V_UNIT},
    {"eps", V_RATE},             {"lr-schedule", V_SCHEDULE},
    {"lr-min", V_NONNEG},        {"lr-warmup", V_COUNT},
    {"clip-grad-norm", V_RATE},  {"threads", V_INT_POS},
    {"tf32", V_FLAG},            {"device", V_DEVICE}};

/* A parse's verdict; its message is dropped (the caller writes its
 * own, blaming the checkpoint). */
static int quiet_ok(l2rw_status s)
{
    l2rw__clear_error();
    return s == L2RW_OK;
}

static int value_ok(const char *v, value_kind kind)
{
    double x;
    l2rw_optim_kind ok;
    l2rw_lr_schedule ls;
    l2rw_device dev;
    switch (kind) {
    case V_COUNT: return parse_count(v, 0, LONG_MAX) >= 0;
    case V_POSITIVE: return parse_count(v, 1, LONG_MAX) >= 0;
    case V_INT: return parse_count(v, 0, INT_MAX) >= 0;
    case V_INT_POS: return parse_count(v, 1, INT_MAX) >= 0;
    case V_FLAG: return !strcmp(v, "0") || !strcmp(v, "1");
    case V_SEED:
        errno = 0;
        return *v && strspn(v, "0123456789") == strlen(v) &&
               strlen(v) <= 20 && (strtoull(v, NULL, 10), errno == 0);
    case V_RATE: return (x = parse_real(v)) > 0;
    case V_UNIT: x = parse_real(v); return x >= 0 && x < 1;
    case V_NONNEG: return parse_real(v) >= 0;
    case V_OPTIMIZER: return quiet_ok(l2rw_optim_parse(v, &ok));
    case V_SCHEDULE: return quiet_ok(l2rw_lr_schedule_parse(v, &ls));
    case V_DEVICE: return quiet_ok(l2rw_device_parse(v, &dev));
    case V_COUNT_LIST:
        for (const char *q = v; *q;) {
            char one[32];
            size_t n = strcspn(q, ",");
            snprintf(one, sizeof one, "%.*s", (int)(n < 31 ? n : 31), q);
            if (n > 31 || parse_count(one, 0, LONG_MAX) < 0) return 0;
            q += n + (q[n] == ',');
        }
        return 1;
    }
    return 0;
}

/* Every known key present in text has a valid value. */
static l2rw_status check_values(const char *path, const char *text)
{
    char v[FINGERPRINT_MAX];
    for (size_t i = 0; i < sizeof value_rules / sizeof value_rules[0]; i++)
        if (text_value(text, value_rules[i].key, v, sizeof v) &&
            !value_ok(v, value_rules[i].kind))
            return l2rw__fail(L2RW_ERR_FORMAT,
                              "%s: field %s has the invalid value '%.64s' "
                              "(corrupt checkpoint)",
                              path, value_rules[i].key, v);
    return L2RW_OK;
}

/* The run's length and fine-tuning of the targets text. */
typedef struct {
    long steps, finetune_clean;
    double finetune_lr;
} ckpt_targets;

static l2rw_status parse_targets(const char *path, const char *text,
                                 ckpt_targets *t)
{
    char v[64];
    L2RW_TRY(check_values(path, text));
    if (!text_value(text, "steps", v, sizeof v))
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: no run length (field steps missing from the "
                          "targets)",
                          path);
    t->steps = parse_count(v, 1, LONG_MAX);
    t->finetune_clean = text_value(text, "finetune-clean", v, sizeof v)
                            ? parse_count(v, 0, LONG_MAX) : -1;
    t->finetune_lr = text_value(text, "finetune-lr", v, sizeof v)
                         ? parse_real(v) : NAN;
    return L2RW_OK;
}

/* The state against its own run: a step past the run's length, or a
 * fine-tuning state the targets do not describe, is no checkpoint this
 * program writes. */
static l2rw_status check_state(const char *path, const ckpt_targets *t,
                               const l2rw__train_state *st)
{
    if (st->step > t->steps)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: field step %ld is past the run's length "
                          "(field steps = %ld)",
                          path, st->step, t->steps);
    if (st->ft_step == 0) return L2RW_OK;
    if (st->step != t->steps)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: field fine-tune step is %ld but field step "
                          "%ld is not the run's length (field steps = %ld)",
                          path, st->ft_step, st->step, t->steps);
    if (st->ft_step > t->finetune_clean)
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: field fine-tune step %ld is past field "
                          "finetune-clean (%ld)",
                          path, st->ft_step, t->finetune_clean);
    if (!((double)st->ft_lr == t->finetune_lr))
        return l2rw__fail(L2RW_ERR_FORMAT,
                          "%s: field fine-tune rate %.9g differs from field "
                          "finetune-lr (%.9g)",
                          path, (double)st->ft_lr, t->finetune_lr);
    return L2RW_OK;
}

/* Reads the targets string and returns it in text[TARGETS_MAX]. */
static l2rw_status read_targets(l2rw_breader *r, char *text,
                                ckpt_targets *t)
{
    L2RW_TRY(l2rw__br_str(r, text, TARGETS_MAX, "targets"));
    return parse_targets(r->path, text, t);
}

/* Steps, fine-tune steps and rate, seconds. */
static l2rw_status read_counts(l2rw_breader *r, l2rw__train_state *st)
{
    L2RW_TRY(br_count(r, &st->step, "step"));
    L2RW_TRY(br_count(r, &st->ft_step, "fine-tune step"));
    L2RW_TRY(l2rw__read_floats(r, &st->ft_lr, 1, "fine-tune rate"));
    L2RW_TRY(br_f64(r, &st->seconds, "seconds"));
    if (st->ft_step > 0 && st->step == 0)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: field fine-tune step is %ld "
                          "but field step is 0", r->path, st->ft_step);
    if (!(st->ft_lr >= 0) || !isfinite(st->ft_lr))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: field fine-tune rate is %g",
                          r->path, (double)st->ft_lr);
    if (!(st->seconds >= 0) || !isfinite(st->seconds))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: field seconds is %g",
                          r->path, st->seconds);
    return L2RW_OK;
}

/* Where the optimizer section goes: the optimizer's kind and AdamW
 * hyper-parameters (the file must agree: they are in the fingerprint
 * too), its buffers; the update count comes back in updates. */
typedef struct {
    l2rw_optim_cfg cfg;
    float *first, *second; /* second: AdamW only */
    size_t n;
    long updates;
} optim_sink;

static l2rw_status br_buffer(l2rw_breader *r, float *buf, size_t n,
                             const char *what)
{
    L2RW_TRY(l2rw__read_floats(r, buf, n, what));
    return l2rw__check_finite(buf, n, r->path, what);
}

static l2rw_status br_optim(l2rw_breader *r, optim_sink *o)
{
    uint32_t kind;
    float hyper[3];
    L2RW_TRY(l2rw__br_u32(r, &kind, "optimizer kind"));
    L2RW_TRY(br_count(r, &o->updates, "optimizer updates"));
    L2RW_TRY(l2rw__read_floats(r, hyper, 3, "optimizer hyper-parameters"));
    if (kind != (uint32_t)o->cfg.kind)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: field optimizer kind is %u, "
                          "its fingerprint says %s (corrupt checkpoint)",
                          r->path, (unsigned)kind,
                          l2rw_optim_name(o->cfg.kind));
    if (o->cfg.kind == L2RW_OPTIM_ADAMW &&
        (hyper[0] != o->cfg.beta1 || hyper[1] != o->cfg.beta2 ||
         hyper[2] != o->cfg.eps))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: fields beta1, beta2, eps "
                          "(%g, %g, %g) differ from its fingerprint's "
                          "(corrupt checkpoint)", r->path, (double)hyper[0],
                          (double)hyper[1], (double)hyper[2]);
    L2RW_TRY(br_buffer(r, o->first, o->n, "velocity"));
    if (o->cfg.kind == L2RW_OPTIM_ADAMW)
        L2RW_TRY(br_buffer(r, o->second, o->n, "second moment"));
    return L2RW_OK;
}

static l2rw_status br_diverge(l2rw_breader *r, l2rw__diverge *d)
{
    L2RW_TRY(br_count(r, &d->seen, "divergence steps"));
    L2RW_TRY(br_f64(r, &d->min_mean, "divergence minimum"));
    for (int i = 0; i < DIVERGE_WINDOW; i++)
        L2RW_TRY(br_f64(r, &d->recent[i], "divergence losses"));
    if (!(d->min_mean >= 0) || !isfinite(d->min_mean))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: field divergence minimum is "
                          "%g (corrupt checkpoint)", r->path, d->min_mean);
    for (int i = 0; i < DIVERGE_WINDOW; i++)
        if (!(d->recent[i] >= 0) || !isfinite(d->recent[i]))
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: field divergence losses "
                              "holds %g (corrupt checkpoint)", r->path,
                              d->recent[i]);
    return L2RW_OK;
}

/* After the net: version 3 has the SGD velocity only. */
static l2rw_status br_tail(l2rw_breader *r, uint32_t version,
                           l2rw__train_state *st, optim_sink *o)
{
    memset(&st->diverge, 0, sizeof st->diverge);
    o->updates = 0;
    if (version == CKPT_VERSION) {
        L2RW_TRY(br_optim(r, o));
        return br_diverge(r, &st->diverge);
    }
    if (o->cfg.kind != L2RW_OPTIM_SGD)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: a version-3 checkpoint "
                          "holds SGD state only, this run uses %s", r->path,
                          l2rw_optim_name(o->cfg.kind));
    return br_buffer(r, o->first, o->n, "velocity");
}

static l2rw_status ckpt_read(l2rw_breader *r, const char *fingerprint,
                             l2rw__train_state *st, l2rw_record *record,
                             l2rw_net *net, optim_sink *o)
{
    uint32_t rows, version;
    char targets[TARGETS_MAX];
    ckpt_targets t;
    L2RW_TRY(read_version(r, &version));
    L2RW_TRY(read_fingerprint(r, fingerprint));
    L2RW_TRY(read_targets(r, targets, &t));
    L2RW_TRY(read_counts(r, st));
    L2RW_TRY(check_state(r->path, &t, st));
    st->ckpt_total = t.steps;
    L2RW_TRY(br_window(r, &st->total, "total"));
    L2RW_TRY(br_window(r, &st->since_eval, "since-eval"));
    L2RW_TRY(l2rw__br_u32(r, &rows, "row count"));
    L2RW_TRY(l2rw__br_need(r, (uint64_t)rows * 64, "metrics rows"));
    for (uint32_t i = 0; i < rows; i++) {
        l2rw_metrics_row m;
        L2RW_TRY(br_row(r, &m, i));
        L2RW_TRY(l2rw__state_add_row(st, &m));
    }
    L2RW_TRY(l2rw__record_read(r, record));
    l2rw_net_header h;
    L2RW_TRY(l2rw__net_read_header(r, &h));
    L2RW_TRY(l2rw__net_check_arch(&h, net, r->path));
    L2RW_TRY(l2rw__net_read_into(r, &h, net));
    L2RW_TRY(br_tail(r, version, st, o));
    return l2rw__br_end(r);
}

static l2rw_status load_into(const char *path, const char *fingerprint,
                             l2rw__train_state *st, l2rw_record *record,
                             l2rw_net *net, optim_sink *o)
{
    l2rw_breader r;
    if (o->n != l2rw_net_num_params(net))
        return l2rw__fail(L2RW_ERR_ARG, "checkpoint: optimizer state of %zu "
                          "floats for a net of %zu parameters", o->n,
                          l2rw_net_num_params(net));
    L2RW_TRY(l2rw__br_open(&r, path, ckpt_magic, "checkpoint"));
    l2rw_status s = ckpt_read(&r, fingerprint, st, record, net, o);
    l2rw__br_close(&r);
    return s;
}

l2rw_status l2rw__checkpoint_load_opt(const char *path,
                                      const char *fingerprint,
                                      l2rw__train_state *st,
                                      l2rw_record *record, l2rw_net *net,
                                      l2rw_sgd *opt)
{
    optim_sink o;
    memset(&o, 0, sizeof o);
    o.cfg = l2rw_optim_config(opt);
    o.first = l2rw_sgd_velocity(opt);
    o.second = l2rw_optim_second_moment(opt);
    o.n = l2rw_net_num_params(net);
    if (o.first) {
        L2RW_TRY(load_into(path, fingerprint, st, record, net, &o));
        return l2rw_optim_set_updates(opt, o.updates);
    }
    /* on a device: read into host copies, then upload */
    int adamw = o.cfg.kind == L2RW_OPTIM_ADAMW;
    float *tmp = malloc(((adamw ? 2 : 1) * o.n + 1) * sizeof *tmp);
    if (!tmp) return l2rw__fail(L2RW_ERR_NOMEM, "checkpoint: out of memory");
    o.first = tmp;
    o.second = adamw ? tmp + o.n : NULL;
    l2rw_status s = load_into(path, fingerprint, st, record, net, &o);
    if (s == L2RW_OK)
        s = l2rw_optim_write(opt, L2RW_OPTIM_FIRST, 0, o.n, o.first);
    if (s == L2RW_OK && adamw)
        s = l2rw_optim_write(opt, L2RW_OPTIM_SECOND, 0, o.n, o.second);
    free(tmp);
    return s == L2RW_OK ? l2rw_optim_set_updates(opt, o.updates) : s;
}

l2rw_status l2rw__checkpoint_load(const char *path, const char *fingerprint,
                                  l2rw__train_state *st, l2rw_record *record,
                                  l2rw_net *net, float *velocity,
                                  size_t n_velocity)
{
    optim_sink o;
    memset(&o, 0, sizeof o); /* SGD */
    o.first = velocity;
    o.n = n_velocity;
    return load_into(path, fingerprint, st, record, net, &o);
}

/* The fingerprint into buf, the targets after it; both checked, and the
 * step counts against the targets, since the caller takes them as the
 * resumed run's defaults. */
static l2rw_status read_resume_config(l2rw_breader *r, char *buf,
                                      size_t size)
{
    ckpt_targets t;
    l2rw__train_state st;
    uint32_t version;
    memset(&st, 0, sizeof st);
    L2RW_TRY(read_version(r, &version));
    L2RW_TRY(l2rw__br_str(r, buf, size, "fingerprint"));
    L2RW_TRY(check_values(r->path, buf));
    size_t used = strlen(buf);
    L2RW_TRY(l2rw__br_str(r, buf + used, size - used, "targets"));
    L2RW_TRY(parse_targets(r->path, buf + used, &t));
    L2RW_TRY(read_counts(r, &st));
    return check_state(r->path, &t, &st);
}

l2rw_status l2rw_train_resume_config(const char *dir, char *buf,
                                     size_t size)
{
    char path[4096];
    if (!dir || !buf || size == 0)
        return l2rw__fail(L2RW_ERR_ARG, "resume: bad arguments");
    snprintf(path, sizeof path, "%s/%s", dir, L2RW_FILE_CHECKPOINT);
    l2rw_breader r;
    L2RW_TRY(l2rw__br_open(&r, path, ckpt_magic, "checkpoint"));
    l2rw_status s = read_resume_config(&r, buf, size);
    l2rw__br_close(&r);
    return s;
}

/* ---------------------------------------------------------------- metrics */

/* Values are printed with %.9g (float32 quantities round-trip; doubles
 * are exact enough for a table) and -1 for "not defined". */
static l2rw_status metrics_write(FILE *fp, void *vctx)
{
    const l2rw__train_state *st = vctx;
    fprintf(fp, "step,epoch,train_loss,test_accuracy,test_loss,mean_weight,"
                "zero_weight_share,clean_weight_share\n");
    for (long i = 0; i < st->n_rows; i++) {
        const l2rw_metrics_row *m = &st->rows[i];
        fprintf(fp, "%ld,%.6f,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n", m->step,
                m->epoch, m->train_loss, m->test_accuracy, m->test_loss,
                m->mean_weight, m->zero_share, m->clean_share);
    }
    return ferror(fp) ? l2rw__fail(L2RW_ERR_IO, "metrics.csv: write failed")
                      : L2RW_OK;
}

l2rw_status l2rw__metrics_save(const char *path, const l2rw__train_state *st)
{
    return l2rw_write_atomic(path, metrics_write, (void *)st);
}

/* ---------------------------------------------------------------- summary */

static void json_escape(FILE *fp, const char *v)
{
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(fp, "\\%c", *p);
        else if (*p < 0x20) fprintf(fp, "\\u%04x", *p);
        else fputc(*p, fp);
    }
    fputc('"', fp);
}

static void json_str(FILE *fp, const char *key, const char *v)
{
    fprintf(fp, "  \"%s\": ", key);
    if (v) json_escape(fp, v);
    else fprintf(fp, "null");
    fprintf(fp, ",\n");
}

/* A number, or null for "not defined" (negative or NaN). */
static void json_num(FILE *fp, const char *key, double v, int allow_neg)
{
    if (!isfinite(v) || (!allow_neg && v < 0))
        fprintf(fp, "  \"%s\": null,\n", key);
    else
        fprintf(fp, "  \"%s\": %.9g,\n", key, v);
}

static l2rw_status summary_write(FILE *fp, void *vctx)
{
    const l2rw__summary *s = vctx;
    const l2rw_train_cfg *c = s->cfg;
    const l2rw_train_result *r = s->res;
    const l2rw_audit *a = &s->data->audit;
    char noise[64];
    l2rw_noise_format(&s->data->noise, noise, sizeof noise);
    fprintf(fp, "{\n");
    json_str(fp, "version", L2RW_VERSION);
    json_str(fp, "method", c->method);
    json_str(fp, "model", c->model);
    json_str(fp, "data", c->data);
    json_str(fp, "noise", noise);
    json_str(fp, "imbalance", c->imbalance ? c->imbalance : "none");
    fprintf(fp, "  \"seed\": %llu,\n", (unsigned long long)c->seed);
    fprintf(fp, "  \"steps\": %ld,\n", r->steps);
    fprintf(fp, "  \"total_steps\": %ld,\n", s->total_steps);
    fprintf(fp, "  \"finetune_clean_steps\": %ld,\n", r->finetune_steps);
    json_num(fp, "seconds", r->seconds, 0);
    fprintf(fp, "  \"loop_steps\": %ld,\n", r->loop_steps);
    json_num(fp, "loop_seconds", r->loop_seconds, 0);
    json_num(fp, "eval_seconds", r->eval_seconds, 0);
    json_num(fp, "final_test_accuracy", r->final_test_accuracy, 0);
    json_num(fp, "final_test_loss", r->final_test_loss, 0);
    json_num(fp, "best_test_accuracy", r->best_test_accuracy, 0);
    json_num(fp, "test_accuracy_before_finetune", s->acc_before_finetune, 0);
    json_num(fp, "clean_weight_share", r->clean_weight_share, 0);
    json_num(fp, "mean_weight", r->mean_weight, 0);
    json_num(fp, "zero_weight_share", r->zero_share, 0);
    json_num(fp, "weight_auc", r->auc, 0);
    fprintf(fp, "  \"n_train\": %ld,\n  \"n_val\": %ld,\n  \"n_test\": %ld,\n",
            r->n_train, r->n_val, r->n_test);
    json_num(fp, "effective_noise_rate", a->effective_rate, 0);
    fprintf(fp, "  \"batch\": %d,\n  \"val_batch\": %d,\n", s->batch,
            s->val_batch);
    json_num(fp, "lr", c->sgd.lr, 0);
    json_num(fp, "momentum", c->sgd.momentum, 0);
    json_num(fp, "weight_decay", c->sgd.weight_decay, 0);
    json_str(fp, "optimizer", l2rw_optim_name(c->optim.kind));
    json_str(fp, "lr_schedule", l2rw_lr_schedule_name(c->optim.schedule));
    fprintf(fp, "  \"lr_warmup\": %ld,\n", c->optim.warmup_steps);
    json_num(fp, "clip_grad_norm", c->optim.clip_grad_norm, 0);
    json_str(fp, "meta_params", c->meta_params);
    fprintf(fp, "  \"warmup_steps\": %ld,\n", c->warmup_steps);
    fprintf(fp, "  \"threads\": %d,\n", l2rw_get_threads());
    fprintf(fp, "  \"ranks\": %d,\n", c->comm ? c->comm->size : 1);
    char device[32];
    l2rw_device_format(c->device, device, sizeof device);
    json_str(fp, "device", device);
    /* the GPU's name and memory (the CPU: none) */
    char desc[256] = "";
    if (c->device && c->device->kind != L2RW_DEVICE_CPU &&
        l2rw_device_available(c->device, desc, sizeof desc) != L2RW_OK)
        desc[0] = '\0';
    json_str(fp, "device_name", desc);
    fprintf(fp, "  \"data_on_device\": %s,\n",
            s->data_on_device ? "true" : "false");
    fprintf(fp, "  \"tf32\": %s,\n", l2rw_get_tf32() ? "true" : "false");
    fprintf(fp, "  \"resumed_from\": %ld,\n", r->resumed_from);
    /* the last key, without a trailing comma */
    fprintf(fp, "  \"command\": ");
    json_escape(fp, c->command ? c->command : "");
    fprintf(fp, "\n}\n");
    return ferror(fp) ? l2rw__fail(L2RW_ERR_IO, "summary.json: write failed")
                      : L2RW_OK;
}

l2rw_status l2rw__summary_save(const char *path, const l2rw__summary *s)
{
    return l2rw_write_atomic(path, summary_write, (void *)s);
}
