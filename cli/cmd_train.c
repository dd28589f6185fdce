/* l2rw train: parse options into an l2rw_train_cfg, run the library's
 * training loop, print progress, draw the plots.
 *
 * Exit status: 0 done, 1 the run failed after it started (NaN, I/O
 * during training), 2 bad usage or bad input (nothing written; this
 * includes an --out directory that holds another run, unless
 * --overwrite), 130/143 stopped by SIGINT/SIGTERM after writing a
 * checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include "cmds.h"
#include "opts.h"
#include "group.h"
#include "plot.h"

#include "l2rw.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_flag = 1;
    stop_signal = sig;
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    /* a second signal kills at once (the checkpoint being written is
     * atomic, so nothing half-written stays) */
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

typedef struct {
    int quiet, tty;
    int line_open;   /* a \r progress line is on screen */
    long eval_every; /* 0: no evaluation lines, so print steps instead */
    const char *resume_dir;
    const char *overwrite_dir; /* --overwrite: its old plots go at START
                                  (the library removes the rest) */
    int device;      /* not the CPU: say where the batches come from */
} progress_ctx;

/* ------------------------------------------------ another run in --out */

/* The plots of a run: the command's own files next to the library's.
 * With --overwrite the library removes the other run's files; its plots
 * go too, once the new run has started, so that an old plot never passes
 * for the new run's. */
static const char *const plot_files[] = {"accuracy.svg", "weights.svg"};

static void remove_old_plots(const char *dir)
{
    char path[4200];
    for (size_t i = 0; i < sizeof plot_files / sizeof plot_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, plot_files[i]);
        if (remove(path) != 0 && errno != ENOENT)
            fprintf(stderr, "l2rw train: --overwrite: cannot remove %s: "
                    "%s\n", path, strerror(errno));
    }
}

/* A resumed run whose checkpoint is at its last step (and past its
 * fine-tuning, if any) has nothing to train. */
static int already_complete(const l2rw_train_progress *p)
{
    return p->resumed_from > 0 && p->step >= p->total_steps &&
           p->finetune_step >= p->finetune_total;
}

static void fmt_duration(double s, char *buf, size_t size)
{
    if (!(s >= 0) || !isfinite(s)) {
        snprintf(buf, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

static void fmt_share(double v, char *buf, size_t size)
{
    if (v < 0) snprintf(buf, size, "-");
    else snprintf(buf, size, "%.1f%%", 100.0 * v);
}

static void print_status(const l2rw_train_progress *p, progress_ctx *c)
{
    char eta[32], zero[16], clean[16], acc[16];
    fmt_duration(p->eta_seconds, eta, sizeof eta);
    fmt_share(p->recent.zero_share, zero, sizeof zero);
    fmt_share(p->recent.clean_share, clean, sizeof clean);
    fmt_share(p->last_test_accuracy, acc, sizeof acc);
    if (p->finetune_total > 0 && p->step >= p->total_steps)
        printf("%sfinetune %ld/%ld | %.1f steps/s | loss %.4f | test %s | "
               "ETA %s%s", c->tty ? "\r" : "", p->finetune_step,
               p->finetune_total, p->steps_per_sec, p->recent.train_loss, acc,
               eta, c->tty ? "\033[K" : "\n");
    else
        printf("%sstep %ld/%ld | epoch %.2f | %.1f steps/s | loss %.4f | "
               "w mean %.2f zero %s clean %s | test %s | ETA %s%s",
               c->tty ? "\r" : "", p->step, p->total_steps, p->epoch,
               p->steps_per_sec, p->recent.train_loss, p->recent.mean_weight,
               zero, clean, acc, eta, c->tty ? "\033[K" : "\n");
    c->line_open = c->tty;
    fflush(stdout);
}

static void end_line(progress_ctx *c)
{
    if (c->line_open) {
        printf("\n");
        c->line_open = 0;
    }
}

/* --val-data: the trusted set's balance and what it shares with the
 * training set (reported, not removed: the user decides). */
static void print_val_source(const l2rw_audit *a)
{
    if (!a->val_data[0]) return;
    printf("clean set from %s: %ld examples, %s; %ld also in the training "
           "set by pixels, %ld by file%s", a->val_data, a->n_val,
           a->val_balanced ? "balanced" : "UNBALANCED (class counts differ: "
           "see data.json val_count)", a->overlap_pixels, a->overlap_files,
           a->n_overlap_shown ? " (val id/train id:" : "");
    for (int i = 0; i < a->n_overlap_shown; i++)
        printf(" %d/%d", (int)a->overlap_val_id[i],
               (int)a->overlap_train_id[i]);
    printf("%s\n", a->n_overlap_shown ? "; not removed)" : "");
}

/* Image files skipped as bad (on-bad=skip) are named on stderr, even
 * with --quiet, the first few of them; data.json counts them all. */
static void warn_sources(const l2rw_sources *s)
{
    enum { BAD_SHOWN = 20 };
    for (int i = 0; i < s->n_bad && i < BAD_SHOWN; i++)
        fprintf(stderr, "l2rw train: warning: skipped %s: %s\n",
                s->bad_files[i], s->bad_reasons[i]);
    if (s->n_bad > BAD_SHOWN)
        fprintf(stderr, "l2rw train: warning: and %d more skipped files\n",
                s->n_bad - BAD_SHOWN);
    if (s->cache_error)
        fprintf(stderr, "l2rw train: warning: %s\n", s->cache_error);
}

/* "decoding images: done/total" on stderr for sets that take a while:
 * redrawn on a terminal, one line at the end otherwise. */
static void on_decode(void *ctx, long done, long total)
{
    enum { DECODE_SHOWN_FROM = 2000 };
    const int tty = isatty(STDERR_FILENO);
    (void)ctx;
    if (total <= DECODE_SHOWN_FROM || (!tty && done < total)) return;
    fprintf(stderr, "%sdecoding images: %ld/%ld%s", tty ? "\r" : "", done,
            total, done == total ? "\n" : "");
}

static int on_progress(const l2rw_train_progress *p, void *vctx)
{
    progress_ctx *c = vctx;
    if (p->event == L2RW_EVENT_START && c->overwrite_dir)
        remove_old_plots(c->overwrite_dir);
    if (p->event == L2RW_EVENT_START && p->data)
        warn_sources(&p->data->sources);
    if (c->quiet) return 0;
    switch (p->event) {
    case L2RW_EVENT_START:
        if (p->data) {
            const l2rw_audit *a = &p->data->audit;
            printf("data: %ld train, %ld clean val, %ld test, %d classes; "
                   "noise %s (%.1f%% of labels changed)\n",
                   a->n_train, a->n_val, a->n_test, a->classes, a->noise,
                   100.0 * a->effective_rate);
            print_val_source(a);
        }
        if (c->device && p->data_place)
            printf("batches from %s\n", p->data_place);
        if (already_complete(p))
            printf("the run in %s is already complete (%ld of %ld steps): "
                   "nothing left to train\n", c->resume_dir, p->step,
                   p->total_steps);
        else if (p->resumed_from > 0)
            printf("resuming at step %ld of %ld\n", p->resumed_from,
                   p->total_steps);
        break;
    case L2RW_EVENT_STEP:
        /* On a terminal the line is redrawn in place; elsewhere one
         * line per evaluation (see EVAL), or per tenth of the run when
         * there are no evaluations. */
        if (c->tty) print_status(p, c);
        else if (c->eval_every == 0 && p->total_steps >= 10 &&
                 p->step % (p->total_steps / 10) == 0)
            print_status(p, c);
        break;
    case L2RW_EVENT_EVAL:
        print_status(p, c); /* on a terminal: redrawn with the accuracy */
        break;
    case L2RW_EVENT_CHECKPOINT:
        break;
    case L2RW_EVENT_FINETUNE:
        end_line(c);
        printf("fine-tuned %ld steps on the clean set\n", p->finetune_step);
        break;
    case L2RW_EVENT_DONE:
        end_line(c);
        break;
    }
    fflush(stdout);
    return 0;
}

/* --resume DIR: options not given on the command line come from the
 * checkpoint, so `l2rw train --resume DIR --steps N` continues a run. */
static int resume_defaults(opt_def *opts, int n_opts, const char *dir,
                           int *no_normalise, char *ckpt_device,
                           size_t dev_size, char *err, size_t size)
{
    static char text[8192]; /* option values point into it */
    if (l2rw_train_resume_config(dir, text, sizeof text) != L2RW_OK) {
        snprintf(err, size, "l2rw train: --resume: %s", l2rw_last_error());
        return 2;
    }
    int norm_seen = 0;
    for (int i = 0; i < n_opts; i++)
        if (!strcmp(opts[i].name, "no-normalise")) norm_seen = opts[i].seen;
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n'), *eq = strchr(line, '=');
        if (next) *next++ = 0;
        if (eq) {
            *eq = 0;
            const char *key = line, *val = eq + 1;
            int rc = 0;
            if (!strcmp(key, "device"))
                snprintf(ckpt_device, dev_size, "%s", val);
            if (!strcmp(key, "normalise")) {
                if (!norm_seen) *no_normalise = !strcmp(val, "0");
            } else if (*val && !(!strcmp(key, "lr-decay") &&
                                 strtod(val, NULL) == 0)) {
                rc = opts_set_default(opts, n_opts, key, val, "l2rw train",
                                      err, size);
            }
            if (rc) return rc;
        }
        line = next;
    }
    return 0;
}

/* A run resumed on another device than its checkpoint's continues the
 * same run to rounding: other kernels sum in other orders. Say so. */
static void note_other_device(const char *ckpt_device,
                              const l2rw_device *dev, int quiet)
{
    char name[32];
    l2rw_device_format(dev, name, sizeof name);
    if (quiet || !ckpt_device[0] || !strcmp(ckpt_device, name)) return;
    printf("note: the checkpoint was written on %s and the run continues on "
           "%s: the same run to rounding, not bit for bit\n", ckpt_device,
           name);
}

/* The result lines and the plots of a finished (or stopped) run; the
 * exit status. */
static int print_result(const l2rw_train_cfg *cfg,
                        const l2rw_train_result *res, int no_plots,
                        int quiet)
{
    const char *dir = cfg->out_dir ? cfg->out_dir : cfg->resume_dir;
    if (res->stopped) {
        printf("stopped at step %ld", res->steps);
        if (res->finetune_steps > 0)
            printf(" and fine-tune step %ld", res->finetune_steps);
        if (dir)
            printf("; checkpoint in %s (continue with --resume %s)", dir, dir);
        printf("\n");
        return stop_signal == SIGTERM ? 143 : 130;
    }
    if (dir && !no_plots) {
        char perr[512];
        if (plot_run(dir, res->clean_weight_share >= 0, perr,
                     sizeof perr) != 0)
            fprintf(stderr, "l2rw train: plots not drawn: %s\n", perr);
        else if (!quiet)
            printf("plots: %s/accuracy.svg %s/weights.svg\n", dir, dir);
    }
    if (res->clean_weight_share >= 0 && !quiet)
        printf("weight on examples with clean labels %.1f%% (%.1f%% of the "
               "labels are clean)%s", 100.0 * res->clean_weight_share,
               100.0 * (1.0 - res->noise_rate),
               res->auc >= 0 ? "" : "\n");
    if (res->clean_weight_share >= 0 && !quiet && res->auc >= 0)
        printf("; mean weight separates clean from corrupted with AUC "
               "%.3f\n", res->auc);
    if (res->final_test_accuracy >= 0)
        printf("%s: test accuracy %.2f%% (best %.2f%%), %ld steps, %.1f s%s%s\n",
               cfg->method, 100.0 * res->final_test_accuracy,
               100.0 * res->best_test_accuracy, res->steps, res->seconds,
               dir ? ", outputs in " : "", dir ? dir : "");
    else
        printf("%s: %ld steps, %.1f s (no test set)%s%s\n", cfg->method,
               res->steps, res->seconds, dir ? ", outputs in " : "",
               dir ? dir : "");
    return 0;
}

int l2rw_cmd_train(int argc, char **argv)
{
    l2rw_train_cfg cfg = l2rw_train_cfg_default();
    const char *lr_steps = NULL, *optimizer = "sgd", *schedule = "step";
    const char *image_size = NULL, *device = "cpu", *data_place = "auto";
    int quiet = 0, no_plots = 0, no_normalise = 0, overwrite = 0, tf32 = 0;
    double epochs = 0;
    opt_def opts[] = {
        {"image-size", OPT_STR, &image_size, "HxW",
         "resize folder: and list: images (size=HxW in the data spec)", 1,
         0, 0},
        {"data", OPT_STR, &cfg.data, "SPEC",
         "fashion-mnist[:DIR] mnist:DIR cifar10:DIR cifar100:DIR idx:.. "
         "csv:.. npy:.. (required)", 1, 0, 0},
        {"model", OPT_STR, &cfg.model, "NAME",
         "mlp, mlp:H1,H2, lenet, resnetN, wrn-D-K[:P]", 1, 0, 0},
        {"method", OPT_STR, &cfg.method, "NAME",
         "plain l2rw random proportion resample hard-mining bootstrap-soft "
         "bootstrap-hard gce sce", 1, 0, 0},
        {"noise", OPT_STR, &cfg.noise, "SPEC",
         "none, uniform:P, background:P[:C], pair:P", 1, 0, 0},
        {"imbalance", OPT_STR, &cfg.imbalance, "SPEC",
         "none, A,B[,...]:SHARE (first class dominant), longtail:F", 1, 0, 0},
        {"train-size", OPT_LONG, &cfg.train_size, "N",
         "training examples kept (0 = all)", 0, 1e300, 0},
        {"val-per-class", OPT_INT, &cfg.val_per_class, "K",
         "clean validation examples per class", 0, 1e9, 0},
        {"val-size", OPT_LONG, &cfg.val_size, "N",
         "clean validation examples in total, balanced (wins over "
         "--val-per-class; 0 = use it)", 0, 1e300, 0},
        {"val-data", OPT_STR, &cfg.val_data, "SPEC",
         "the clean set from its own data (any --data spec; its training "
         "part) instead of the training data; --val-per-class 0 takes all "
         "of it", 1, 0, 0},
        {"batch", OPT_INT, &cfg.batch, "N", "training batch", 1, 65536, 0},
        {"val-batch", OPT_INT, &cfg.val_batch, "M",
         "validation batch of l2rw (whole clean set when smaller)", 1, 65536,
         0},
        {"steps", OPT_LONG, &cfg.steps, "N", "training steps", 1, 1e300, 0},
        {"epochs", OPT_DOUBLE, &epochs, "E",
         "training epochs instead of --steps (0 = use --steps)", 0, 1e6, 0},
        {"lr", OPT_FLOAT, &cfg.sgd.lr, "F", "learning rate", 1e-12, 1e6, 0},
        {"momentum", OPT_FLOAT, &cfg.sgd.momentum, "F", "momentum", 0, 0.9999,
         0},
        {"wd", OPT_FLOAT, &cfg.sgd.weight_decay, "F", "weight decay", 0, 1e3,
         0},
        {"lr-steps", OPT_STR, &lr_steps, "S1,S2,..",
         "steps at which the learning rate is multiplied by --lr-decay", 1, 0,
         0},
        {"lr-decay", OPT_FLOAT, &cfg.sgd.decay, "F",
         "learning-rate factor at each --lr-steps step", 1e-12, 1e6, 0},
        {"optimizer", OPT_STR, &optimizer, "sgd|adamw",
         "sgd (momentum, L2 decay) or adamw (decoupled --wd)", 1, 0, 0},
        {"beta1", OPT_FLOAT, &cfg.optim.beta1, "F",
         "adamw: decay of the first moment", 0, 0.9999999, 0},
        {"beta2", OPT_FLOAT, &cfg.optim.beta2, "F",
         "adamw: decay of the second moment", 0, 0.9999999, 0},
        {"eps", OPT_FLOAT, &cfg.optim.eps, "F",
         "adamw: added to the root of the second moment", 1e-30, 1, 0},
        {"lr-schedule", OPT_STR, &schedule, "step|cosine",
         "step: x --lr-decay at --lr-steps; cosine: to --lr-min at the "
         "run's end", 1, 0, 0},
        {"lr-warmup", OPT_LONG, &cfg.optim.warmup_steps, "N",
         "linear warm-up: step s < N at lr*(s+1)/N (either schedule)", 0,
         1e300, 0},
        {"lr-min", OPT_FLOAT, &cfg.optim.lr_min, "F",
         "cosine: the rate at the end of the run", 0, 1e6, 0},
        {"clip-grad-norm", OPT_FLOAT, &cfg.optim.clip_grad_norm, "C",
         "scale the gradient to global L2 norm <= C (0 = off)", 0, 1e30, 0},
        {"no-divergence-check", OPT_FLAG, &cfg.no_divergence_check, "",
         "train on when the loss diverges (50-step mean > 3x its minimum "
         "and > 1.5 ln(classes); else exit 1)", 1, 0, 0},
        {"seed", OPT_U64, &cfg.seed, "S", "seed of every random choice", 1, 0,
         0},
        {"device", OPT_STR, &device, "cpu|cuda[:N]",
         "where the net runs", 1, 0, 0},
        {"tf32", OPT_FLAG, &tf32, "",
         "CUDA: TF32 tensor cores for the matrix products (about 8x FP32 "
         "on an H200; inputs rounded to 10-bit mantissas)", 1, 0, 0},
        {"data-place", OPT_STR, &data_place, "auto|device|host",
         "on a GPU: upload the data sets once and gather batches there "
         "(device), or upload every batch (host); auto: device if they fit",
         1, 0, 0},
        {"threads", OPT_INT, &cfg.threads, "T", "threads (0 = all cores)", 0,
         1024, 0},
        {"out", OPT_STR, &cfg.out_dir, "DIR",
         "output directory (metrics, summary, model, plots, checkpoints)", 1,
         0, 0},
        {"resume", OPT_STR, &cfg.resume_dir, "DIR",
         "continue the run whose checkpoint is in DIR (outputs go there "
         "unless --out is given)", 1, 0, 0},
        {"overwrite", OPT_FLAG, &overwrite, "",
         "start over in an --out DIR that holds another run (refused "
         "otherwise): its files go once this run has started", 1, 0, 0},
        {"eval-every", OPT_LONG, &cfg.eval_every, "N",
         "steps between test evaluations (0 = at the end only)", 0, 1e300, 0},
        {"eval-batch", OPT_INT, &cfg.eval_batch, "N",
         "batch of the test evaluation", 1, 65536, 0},
        {"checkpoint-every", OPT_LONG, &cfg.checkpoint_every, "N",
         "steps between checkpoints (0 = only when interrupted)", 0, 1e300,
         0},
        {"finetune-clean", OPT_LONG, &cfg.finetune_clean, "STEPS",
         "after training, fine-tune on the clean validation set (+FT)", 0,
         1e300, 0},
        {"finetune-lr", OPT_FLOAT, &cfg.finetune_lr, "F",
         "learning rate of the fine-tuning (0 = last of the schedule)", 0,
         1e6, 0},
        {"meta-params", OPT_STR, &cfg.meta_params, "all|last",
         "l2rw: meta gradient through every layer or the last dense layer",
         1, 0, 0},
        {"warmup-steps", OPT_LONG, &cfg.warmup_steps, "N",
         "plain training for the first N steps", 0, 1e300, 0},
        {"no-normalise", OPT_FLAG, &no_normalise, "",
         "keep inputs in [0,1] (no per-channel standardisation)", 1, 0, 0},
        {"no-plots", OPT_FLAG, &no_plots, "", "do not run gnuplot", 1, 0, 0},
        {"quiet", OPT_FLAG, &quiet, "",
         "no progress output (errors and the result line only)", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    char err[OPTS_ERR_MAX], ckpt_device[32] = "";
    int rc = opts_parse(opts, n_opts, argc, argv, "l2rw train",
                        "usage: l2rw train --data SPEC [--model NAME] "
                        "[--method NAME] [options]",
                        stdout, NULL, 0, NULL, err, sizeof err);
    if (rc == 1) return 0;
    if (rc) return opts_usage_error(err);

    if (cfg.resume_dir) {
        rc = resume_defaults(opts, n_opts, cfg.resume_dir, &no_normalise,
                             ckpt_device, sizeof ckpt_device, err,
                             sizeof err);
        if (rc) return opts_usage_error(err);
    }
    if (!cfg.data)
        return opts_usage_error("l2rw train: --data SPEC is required (try "
                               "--help)");
    l2rw_device dev;
    if (opts_device("l2rw train", device, 0, &dev)) return 2;
    cfg.device = &dev;
    note_other_device(ckpt_device, &dev, quiet);
    if (opts_tf32("l2rw train", opts, n_opts, tf32, &dev)) return 2;
    if (opts_data_place("l2rw train", data_place, &cfg.data_place))
        return 2;
    static char sized[8192];
    if (image_size) {
        if (l2rw_data_spec_set_size(cfg.data, image_size, sized,
                                    sizeof sized) != L2RW_OK) {
            snprintf(err, sizeof err, "l2rw train: --image-size: %s",
                     l2rw_last_error());
            return opts_usage_error(err);
        }
        cfg.data = sized;
    }
    cfg.data_progress = quiet ? NULL : on_decode;
    int steps_seen = 0, epochs_seen = 0, vpc_seen = 0;
    for (int i = 0; i < n_opts; i++) {
        if (!strcmp(opts[i].name, "steps")) steps_seen = opts[i].seen;
        if (!strcmp(opts[i].name, "epochs")) epochs_seen = opts[i].seen;
        if (!strcmp(opts[i].name, "val-per-class")) vpc_seen = opts[i].seen;
    }
    if (steps_seen && epochs_seen && epochs > 0)
        return opts_usage_error("l2rw train: give --steps or --epochs, not "
                               "both");
    if (epochs > 0) {
        cfg.steps = 0;
        cfg.epochs = epochs;
    }
    if (cfg.val_size > 0 && vpc_seen)
        return opts_usage_error("l2rw train: give --val-per-class or "
                               "--val-size, not both");
    if (cfg.val_size > 0) cfg.val_per_class = 0;
    if (lr_steps) {
        char e2[256];
        int n = opts_parse_longs(lr_steps, cfg.sgd.milestones,
                                 L2RW_MAX_MILESTONES, 1, e2, sizeof e2);
        if (n < 0) {
            snprintf(err, sizeof err, "l2rw train: --lr-steps: %s", e2);
            return opts_usage_error(err);
        }
        cfg.sgd.n_milestones = n;
    }
    if (l2rw_optim_parse(optimizer, &cfg.optim.kind) != L2RW_OK ||
        l2rw_lr_schedule_parse(schedule, &cfg.optim.schedule) != L2RW_OK) {
        snprintf(err, sizeof err, "l2rw train: %s", l2rw_last_error());
        return opts_usage_error(err);
    }
    cfg.normalise = !no_normalise;
    cfg.overwrite = overwrite;

    char command[4096] = "l2rw ";
    opts_join_argv(argc, argv, command + 5, sizeof command - 5);
    cfg.command = command;

    /* under mpirun -np P: this process's rank of the run */
    cli_group grp;
    char why[512];
    if (cli_group_start(&grp, why, sizeof why) != 0) {
        fprintf(stderr, "l2rw train: %s\n", why);
        return 2;
    }
    if (grp.active) {
        cfg.comm = &grp.comm;
        if (cfg.threads == 0) cfg.threads = cli_group_threads();
        if (grp.comm.rank != 0) quiet = no_plots = 1;
        else if (!quiet)
            printf("training over %d processes (MPI), %d threads each\n",
                   grp.comm.size, cfg.threads);
    }
    progress_ctx pc = {quiet, isatty(STDOUT_FILENO), 0, cfg.eval_every,
                       cfg.resume_dir, overwrite ? cfg.out_dir : NULL,
                       dev.kind != L2RW_DEVICE_CPU};
    cfg.progress = on_progress;
    cfg.progress_ctx = &pc;
    cfg.stop = &stop_flag;
    install_handlers();

    l2rw_train_result res;
    memset(&res, 0, sizeof res);
    l2rw_status s = l2rw_train_run(&cfg, &res);
    end_line(&pc);
    if (s != L2RW_OK) {
        if (grp.active)
            fprintf(stderr, "l2rw train (rank %d of %d): %s: %s\n",
                    grp.comm.rank, grp.comm.size, l2rw_strerror(s),
                    l2rw_last_error());
        else
            fprintf(stderr, "l2rw train: %s: %s\n", l2rw_strerror(s),
                    l2rw_last_error());
        return cli_group_fail(&grp, res.started ? 1 : 2);
    }
    /* over processes, rank 0 speaks for the run */
    rc = grp.comm.rank == 0 ? print_result(&cfg, &res, no_plots, quiet)
         : res.stopped      ? (stop_signal == SIGTERM ? 143 : 130)
                            : 0;
    cli_group_end(&grp);
    return rc;
}
