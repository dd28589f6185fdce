/* Training loop and command line: bit-identical resume (straight run vs
 * stopped-and-resumed run, in the main phase and during fine-tuning),
 * refusal of a resume from another configuration, a checkpoint whose
 * size does not grow with the steps, clear errors for old-version,
 * truncated and inconsistent checkpoints, the files of a run
 * (summary.json keys, metrics.csv rows), and the CLI's handling of bad
 * input (exit status 2, one line, no out directory left behind).
 *
 * Data: small generated IDX files (4 classes of 8x8 images, a bright
 * quadrant per class plus noise), so the whole test takes seconds. */
#define _POSIX_C_SOURCE 200809L
#include "binio.h" /* l2rw_crc32: checkpoints with a valid checksum */
#include "check.h"
#include "l2rw.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CLASSES = 4, N_TRAIN = 400, N_TEST = 200, HALF = 20 };

static char spec[2048];

static int make_data(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/l2rw-test-train-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    char a[300], b[300], c[300], d[300];
    snprintf(a, sizeof a, "%s/train-img", tmpdir);
    snprintf(b, sizeof b, "%s/train-lab", tmpdir);
    snprintf(c, sizeof c, "%s/test-img", tmpdir);
    snprintf(d, sizeof d, "%s/test-lab", tmpdir);
    if (write_idx(a, b, N_TRAIN, CLASSES, 1) ||
        write_idx(c, d, N_TEST, CLASSES, 2))
        return 1;
    snprintf(spec, sizeof spec, "idx:%s,%s;%s,%s", a, b, c, d);
    return 0;
}

static l2rw_train_cfg base_cfg(const char *out, long steps)
{
    l2rw_train_cfg c = l2rw_train_cfg_default();
    c.data = spec;
    c.model = "mlp:16";
    c.method = "l2rw";
    c.noise = "uniform:0.4";
    c.val_per_class = 5;
    c.batch = 20;
    c.val_batch = 10;
    c.steps = steps;
    c.eval_every = 5;
    c.checkpoint_every = 10;
    c.threads = 2;
    c.sgd.lr = 0.05f;
    c.out_dir = out;
    return c;
}

static int same_file(const char *dir1, const char *dir2, const char *name)
{
    char p1[512], p2[512];
    long n1 = 0, n2 = 0;
    snprintf(p1, sizeof p1, "%s/%s", dir1, name);
    snprintf(p2, sizeof p2, "%s/%s", dir2, name);
    char *a = slurp(p1, &n1), *b = slurp(p2, &n2);
    int same = a && b && n1 == n2 && memcmp(a, b, (size_t)n1) == 0;
    free(a);
    free(b);
    return same;
}

/* Stops the run after `at` steps through the callback. */
static int stop_at(const l2rw_train_progress *p, void *ctx)
{
    return p->event == L2RW_EVENT_STEP && p->step >= *(long *)ctx;
}

static void test_resume(void)
{
    char a[512], b[512], c[512];
    path_in(a, sizeof a, "straight");
    path_in(b, sizeof b, "resumed");
    path_in(c, sizeof c, "stopped");
    l2rw_train_result ra, rb, rc;

    l2rw_train_cfg ca = base_cfg(a, 2 * HALF);
    CHECK_OK(l2rw_train_run(&ca, &ra));
    CHECK(ra.steps == 2 * HALF, "straight run did %ld steps", ra.steps);
    CHECK(ra.final_test_accuracy > 0.5, "straight run accuracy %g",
          ra.final_test_accuracy);

    /* N steps, then resumed for N more in the same directory */
    l2rw_train_cfg cb = base_cfg(b, HALF);
    CHECK_OK(l2rw_train_run(&cb, &rb));
    cb.steps = 2 * HALF;
    cb.resume_dir = b;
    CHECK_OK(l2rw_train_run(&cb, &rb));
    CHECK(rb.resumed_from == HALF, "resumed from %ld", rb.resumed_from);
    CHECK(same_file(a, b, L2RW_FILE_MODEL), "model differs after resume");
    CHECK(same_file(a, b, L2RW_FILE_METRICS), "metrics differ after resume");
    CHECK(same_file(a, b, L2RW_FILE_EXAMPLES),
          "examples.csv differs after resume");
    CHECK(ra.final_test_accuracy == rb.final_test_accuracy &&
              ra.clean_weight_share == rb.clean_weight_share,
          "results differ after resume");

    /* stopped mid-way (as by SIGINT: checkpoint at the stop, no
     * checkpoint_every multiple), then resumed */
    long at = 13;
    l2rw_train_cfg cc = base_cfg(c, 2 * HALF);
    cc.checkpoint_every = 0;
    cc.report_every = 1;
    cc.progress = stop_at;
    cc.progress_ctx = &at;
    CHECK_OK(l2rw_train_run(&cc, &rc));
    CHECK(rc.stopped == 1 && rc.steps == at, "stop: stopped %d at %ld",
          rc.stopped, rc.steps);
    char ck[600];
    snprintf(ck, sizeof ck, "%s/%s", c, L2RW_FILE_CHECKPOINT);
    CHECK(exists(ck), "no checkpoint after the stop");
    cc.progress = NULL;
    cc.resume_dir = c;
    CHECK_OK(l2rw_train_run(&cc, &rc));
    CHECK(rc.resumed_from == at, "resumed from %ld", rc.resumed_from);
    CHECK(same_file(a, c, L2RW_FILE_MODEL), "model differs after a stop");
    CHECK(same_file(a, c, L2RW_FILE_METRICS), "metrics differ after a stop");
    CHECK(same_file(a, c, L2RW_FILE_EXAMPLES),
          "examples.csv differs after a stop");

    /* another configuration: refused, nothing created */
    char d[512];
    path_in(d, sizeof d, "other");
    l2rw_train_cfg cd = base_cfg(d, 2 * HALF);
    cd.sgd.lr = 0.1f;
    cd.resume_dir = b;
    l2rw_status s = l2rw_train_run(&cd, &rb);
    CHECK(s == L2RW_ERR_ARG, "resume with another lr gave %s",
          l2rw_strerror(s));
    CHECK(strstr(l2rw_last_error(), "lr=") != NULL,
          "message does not name the option: %s", l2rw_last_error());
    CHECK(!exists(d), "out directory created for a refused resume");
    CHECK(rb.started == 0, "refused resume counted as started");
}

static void test_outputs(void)
{
    char a[512], p[600];
    path_in(a, sizeof a, "straight");
    snprintf(p, sizeof p, "%s/%s", a, L2RW_FILE_SUMMARY);
    char *js = slurp(p, NULL);
    CHECK(js != NULL, "no summary.json");
    const char *keys[] = {"\"method\"", "\"model\"", "\"data\"", "\"noise\"",
                          "\"seed\"", "\"steps\"", "\"seconds\"",
                          "\"final_test_accuracy\"", "\"best_test_accuracy\"",
                          "\"clean_weight_share\"", "\"command\""};
    for (size_t i = 0; js && i < sizeof keys / sizeof keys[0]; i++)
        CHECK(strstr(js, keys[i]) != NULL, "summary.json lacks %s", keys[i]);
    if (js) {
        const char *f = strstr(js, "\"final_test_accuracy\": ");
        double acc = f ? atof(f + 23) : -1;
        CHECK(acc > 0 && acc <= 1, "final_test_accuracy %g not a fraction",
              acc);
    }
    free(js);
    snprintf(p, sizeof p, "%s/%s", a, L2RW_FILE_METRICS);
    char *csv = slurp(p, NULL);
    CHECK(csv != NULL, "no metrics.csv");
    int lines = 0;
    for (const char *q = csv; q && *q; q++) lines += *q == '\n';
    CHECK(lines == 1 + 2 * HALF / 5, "metrics.csv has %d lines", lines);
    const char *header = "step,epoch,train_loss,test_accuracy,test_loss,"
                         "mean_weight,zero_weight_share,clean_weight_share\n";
    CHECK(csv && !strncmp(csv, header, strlen(header)), "metrics.csv header");
    free(csv);
    const char *files[] = {L2RW_FILE_EXAMPLES, L2RW_FILE_MODEL,
                           L2RW_FILE_NORM, L2RW_FILE_AUDIT,
                           L2RW_FILE_CHECKPOINT};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", a, files[i]);
        CHECK(exists(p), "run lacks %s", files[i]);
    }
}

/* --finetune-clean: S more plain steps on the clean set, one more row. */
static void test_finetune(void)
{
    char d[512], p[600];
    path_in(d, sizeof d, "finetune");
    l2rw_train_cfg c = base_cfg(d, 10);
    c.method = "plain";
    c.finetune_clean = 7;
    l2rw_train_result r;
    CHECK_OK(l2rw_train_run(&c, &r));
    CHECK(r.steps == 10 && r.finetune_steps == 7, "finetune: %ld + %ld steps",
          r.steps, r.finetune_steps);
    snprintf(p, sizeof p, "%s/%s", d, L2RW_FILE_METRICS);
    char *csv = slurp(p, NULL);
    CHECK(csv && strstr(csv, "\n17,"), "no row at step 17 after fine-tuning");
    free(csv);
}

static long file_size(const char *dir, const char *name)
{
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* The checkpoint holds fixed-size state: without evaluation rows (eval
 * every 0: the last row comes after the checkpoint) its size after N and
 * after 3N steps is the same. */
static void test_checkpoint_size(void)
{
    char a[512], b[512];
    path_in(a, sizeof a, "size-n");
    path_in(b, sizeof b, "size-3n");
    l2rw_train_cfg ca = base_cfg(a, HALF), cb = base_cfg(b, 3 * HALF);
    ca.eval_every = cb.eval_every = 0;
    l2rw_train_result r;
    CHECK_OK(l2rw_train_run(&ca, &r));
    CHECK_OK(l2rw_train_run(&cb, &r));
    long na = file_size(a, L2RW_FILE_CHECKPOINT);
    long nb = file_size(b, L2RW_FILE_CHECKPOINT);
    CHECK(na > 0 && na == nb, "checkpoint %ld bytes after %d steps, %ld "
          "after %d", na, HALF, nb, 3 * HALF);
}

/* Files of two runs that must agree, and summary.json but for the keys
 * that differ by nature (time, the step resumed at). */
static void check_same_run(const char *a, const char *b, const char *what)
{
    const char *files[] = {L2RW_FILE_MODEL, L2RW_FILE_METRICS,
                           L2RW_FILE_EXAMPLES};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        CHECK(same_file(a, b, files[i]), "%s: %s differs", what, files[i]);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/%s", a, L2RW_FILE_SUMMARY);
    snprintf(p2, sizeof p2, "%s/%s", b, L2RW_FILE_SUMMARY);
    char *s1 = slurp(p1, NULL), *s2 = slurp(p2, NULL);
    CHECK(s1 && s2, "%s: no summary.json", what);
    const char *skip[] = {"\"seconds\"", "\"resumed_from\"", "\"loop_",
                          "\"eval_seconds\""};
    for (char *s = s1, *t = s2; s && t && *s && *t;) {
        char *es = strchr(s, '\n'), *et = strchr(t, '\n');
        if (!es || !et) break;
        *es = *et = 0;
        int skipped = 0;
        for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
            skipped |= strstr(s, skip[i]) != NULL;
        CHECK(skipped || !strcmp(s, t), "%s: summary.json has %s vs %s", what,
              s, t);
        s = es + 1;
        t = et + 1;
    }
    free(s1);
    free(s2);
}

/* Stops the run after `at` fine-tune steps: through the stop flag (as
 * the CLI's SIGINT handler does) when the context has one, else through
 * the callback's return value. */
typedef struct {
    long at;
    volatile sig_atomic_t *flag;
} ft_stop;

static int stop_in_finetune(const l2rw_train_progress *p, void *ctx)
{
    ft_stop *f = ctx;
    int hit = p->event == L2RW_EVENT_STEP && p->finetune_step >= f->at;
    if (hit && f->flag) *f->flag = 1;
    return hit && !f->flag;
}

static l2rw_train_cfg finetune_cfg(const char *out, float lr)
{
    l2rw_train_cfg c = base_cfg(out, HALF);
    c.finetune_clean = 15;
    c.finetune_lr = lr;
    c.checkpoint_every = 0;
    c.report_every = 1;
    return c;
}

/* A run stopped during fine-tuning and resumed equals an uninterrupted
 * one, with the main optimizer (lr 0: velocity and schedule continue)
 * and with its own (the fine-tune velocity is the one checkpointed). */
static void check_finetune_resume(float lr, int use_flag)
{
    char a[512], b[512], what[64];
    snprintf(what, sizeof what, "fine-tune resume (lr %g)", (double)lr);
    /* one directory per variant: a run never writes over another */
    snprintf(a, sizeof a, "%s/ft-straight-%d-%g", tmpdir, use_flag,
             (double)lr);
    snprintf(b, sizeof b, "%s/ft-stopped-%d-%g", tmpdir, use_flag,
             (double)lr);
    l2rw_train_result ra, rb;
    l2rw_train_cfg ca = finetune_cfg(a, lr);
    CHECK_OK(l2rw_train_run(&ca, &ra));
    CHECK(ra.steps == HALF && ra.finetune_steps == 15, "%s: %ld + %ld steps",
          what, ra.steps, ra.finetune_steps);

    volatile sig_atomic_t flag = 0;
    ft_stop fs = {6, use_flag ? &flag : NULL};
    l2rw_train_cfg cb = finetune_cfg(b, lr);
    cb.progress = stop_in_finetune;
    cb.progress_ctx = &fs;
    cb.stop = &flag;
    CHECK_OK(l2rw_train_run(&cb, &rb));
    CHECK(rb.stopped && rb.steps == HALF && rb.finetune_steps == 6,
          "%s: stopped %d at %ld + %ld", what, rb.stopped, rb.steps,
          rb.finetune_steps);
    flag = 0;
    cb.progress = NULL;
    cb.resume_dir = b;
    CHECK_OK(l2rw_train_run(&cb, &rb));
    CHECK(rb.resumed_from == HALF && rb.finetune_steps == 15,
          "%s: resumed from %ld, %ld fine-tune steps", what, rb.resumed_from,
          rb.finetune_steps);
    check_same_run(a, b, what);
    CHECK(ra.final_test_accuracy == rb.final_test_accuracy &&
              ra.final_test_loss == rb.final_test_loss &&
              ra.best_test_accuracy == rb.best_test_accuracy &&
              ra.clean_weight_share == rb.clean_weight_share &&
              ra.auc == rb.auc && ra.mean_weight == rb.mean_weight,
          "%s: results differ", what);

    /* periodic checkpoints inside fine-tuning: resuming the finished run
     * from its last one (after fine-tune step 12) redoes the same steps */
    if (use_flag) return;
    char c[512];
    snprintf(c, sizeof c, "%s/ft-periodic-%g", tmpdir, (double)lr);
    l2rw_train_cfg cc = finetune_cfg(c, lr);
    cc.checkpoint_every = 8; /* run steps 24, 32: fine-tune steps 4, 12 */
    CHECK_OK(l2rw_train_run(&cc, &rb));
    check_same_run(a, c, "fine-tune periodic checkpoints");
    cc.resume_dir = c;
    CHECK_OK(l2rw_train_run(&cc, &rb));
    check_same_run(a, c, "resumed at fine-tune step 12");

    /* a fine-tune checkpoint continues only the same main phase/rate */
    cc.steps = 2 * HALF;
    l2rw_status s = l2rw_train_run(&cc, &rb);
    CHECK(s == L2RW_ERR_ARG && strstr(l2rw_last_error(), "--steps"),
          "fine-tune checkpoint with more steps: %s: %s", l2rw_strerror(s),
          l2rw_last_error());
    cc.steps = HALF;
    cc.finetune_lr = lr + 0.5f;
    s = l2rw_train_run(&cc, &rb);
    CHECK(s == L2RW_ERR_ARG && strstr(l2rw_last_error(), "--finetune-lr"),
          "fine-tune checkpoint with another rate: %s: %s",
          l2rw_strerror(s), l2rw_last_error());
}

/* Stopped by the progress callback, lr 0: the main optimizer goes on. */
static void test_finetune_resume_main_optimizer(void)
{
    check_finetune_resume(0.0f, 0);
}

/* Stopped by the progress callback, its own optimizer (lr 0.02). */
static void test_finetune_resume_own_optimizer(void)
{
    check_finetune_resume(0.02f, 0);
}

/* Stopped through the stop flag (as a signal handler does). */
static void test_finetune_resume_stop_flag(void)
{
    check_finetune_resume(0.0f, 1);
}

/* Writes path (the file's bytes with a fresh CRC-32): a damaged file
 * that passes the checksum, so that the field checks are what refuse
 * it. */
static int write_with_crc(const char *path, const unsigned char *b,
                          long payload)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return 1;
    uint32_t crc = l2rw_crc32(0, b, (size_t)payload);
    unsigned char c[4] = {(unsigned char)crc, (unsigned char)(crc >> 8),
                          (unsigned char)(crc >> 16),
                          (unsigned char)(crc >> 24)};
    int bad = fwrite(b, 1, (size_t)payload, fp) != (size_t)payload;
    bad |= fwrite(c, 1, 4, fp) != 4;
    bad |= fclose(fp) != 0;
    return bad;
}

/* Resumes from dir; the checkpoint must be refused as L2RW_ERR_FORMAT
 * with a message that names the file and contains `needle`. */
static void expect_bad_checkpoint(const char *dir, long steps,
                                  const char *needle, const char *what)
{
    l2rw_train_cfg c = base_cfg(NULL, steps);
    c.eval_every = 0;
    c.resume_dir = dir;
    l2rw_train_result r;
    l2rw_status s = l2rw_train_run(&c, &r);
    const char *msg = l2rw_last_error();
    CHECK(s == L2RW_ERR_FORMAT && strstr(msg, dir) &&
              strstr(msg, L2RW_FILE_CHECKPOINT) && strstr(msg, needle),
          "%s: %s: %s", what, l2rw_strerror(s), msg);
}

static void test_bad_checkpoints(void)
{
    char a[512], ck[600];
    path_in(a, sizeof a, "size-n"); /* test_checkpoint_size: no rows */
    snprintf(ck, sizeof ck, "%s/%s", a, L2RW_FILE_CHECKPOINT);
    long len = 0;
    unsigned char *orig = (unsigned char *)slurp(ck, &len);
    CHECK(orig && len > 100, "no checkpoint in %s", a);
    if (!orig || len <= 100) return;
    long payload = len - 4;
    uint32_t stored = (uint32_t)orig[payload] |
                      (uint32_t)orig[payload + 1] << 8 |
                      (uint32_t)orig[payload + 2] << 16 |
                      (uint32_t)orig[payload + 3] << 24;
    CHECK(l2rw_crc32(0, orig, (size_t)payload) == stored,
          "checkpoint CRC not over the whole payload");
    char d[512], bad[600];
    path_in(d, sizeof d, "bad-ckpt");
    mkdir(d, 0777);
    snprintf(bad, sizeof bad, "%s/%s", d, L2RW_FILE_CHECKPOINT);
    unsigned char *b = malloc((size_t)len);
    CHECK(b != NULL, "out of memory");
    if (!b) {
        free(orig);
        return;
    }

    /* the file rewritten as is resumes (the test's writer is sound) */
    memcpy(b, orig, (size_t)len);
    CHECK(write_with_crc(bad, b, payload) == 0, "cannot write %s", bad);
    l2rw_train_cfg ok = base_cfg(NULL, HALF);
    ok.eval_every = 0;
    ok.resume_dir = d;
    l2rw_train_result r;
    CHECK_OK(l2rw_train_run(&ok, &r));

    /* an older format version: refused by the loop and by the CLI's
     * l2rw_train_resume_config, naming the file and the version */
    b[8] = 1;
    b[9] = b[10] = b[11] = 0;
    CHECK(write_with_crc(bad, b, payload) == 0, "cannot write %s", bad);
    expect_bad_checkpoint(d, HALF, "version 1", "old version");
    char text[8192];
    l2rw_status s = l2rw_train_resume_config(d, text, sizeof text);
    CHECK(s == L2RW_ERR_FORMAT && strstr(l2rw_last_error(), "version 1") &&
              strstr(l2rw_last_error(), d),
          "resume config of an old version: %s: %s", l2rw_strerror(s),
          l2rw_last_error());

    /* truncated anywhere (checksum fixed up): every read is checked */
    memcpy(b, orig, (size_t)len);
    int tried = 0;
    for (long cut = 8; cut < payload; cut += cut < 200 ? 3 : 211) {
        CHECK(write_with_crc(bad, b, cut) == 0, "cannot write %s", bad);
        expect_bad_checkpoint(d, HALF, "", "truncated");
        tried++;
    }
    CHECK(write_with_crc(bad, b, payload - 1) == 0, "cannot write %s", bad);
    expect_bad_checkpoint(d, HALF, "", "truncated by one byte");
    CHECK(tried > 20, "only %d truncations tried", tried);

    /* a record entry seen -1 times: magic, version, fingerprint and
     * targets strings (the resume config is both texts), 3 counts and the
     * time (32 bytes), 2 windows (208), no rows (4), the record's n (4)
     * and its n weight sums */
    CHECK_OK(l2rw_train_resume_config(a, text, sizeof text));
    long n = N_TRAIN - CLASSES * 5; /* less the clean validation set */
    long off = 8 + 4 + 4 + 4 + (long)strlen(text) + 32 + 208 + 4 + 4 + 8 * n;
    CHECK(off + 8 < payload, "record offset %ld beyond the file", off);
    if (off + 8 < payload) {
        memset(b + off, 0xff, 8);
        CHECK(write_with_crc(bad, b, payload) == 0, "cannot write %s", bad);
        expect_bad_checkpoint(d, HALF, "example record", "bad record");
    }
    free(b);
    free(orig);
}

static void test_cli(void)
{
    if (cli_sanitized_pass()) return;
    CHECK(access(TU_CLI, X_OK) == 0, "%s not built", TU_CLI);
    char out[512], resumed[512], args[4096];
    path_in(out, sizeof out, "cli-out");
    path_in(resumed, sizeof resumed, "resumed");
    const char *common = "--steps 4 --batch 20 "
                         "--val-per-class 5 --quiet --no-plots";
    struct {
        const char *extra, *needle;
    } bad[] = {
        {"--bogus 3", "--bogus"},
        {"--noise uniform:1.7", "1.7"},
        {"--imbalance 4,9:x", "imbalance"},
        {"--lr abc", "--lr"},
        {"--steps", "--steps"},
        {"--method nope", "nope"},
        {"--model nonet", "nonet"},
        {"--resume RESUMED --lr 0.3", "another configuration"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char extra[1024];
        const char *r = strstr(bad[i].extra, "RESUMED");
        if (r)
            snprintf(extra, sizeof extra, "%.*s%s%s",
                     (int)(r - bad[i].extra), bad[i].extra, resumed,
                     r + 7);
        else
            snprintf(extra, sizeof extra, "%s", bad[i].extra);
        snprintf(args, sizeof args, "train --data '%s' %s --out %s %s %s",
                 spec, common, out, extra,
                 strstr(extra, "--model") ? "" : "--model mlp:16");
        cli_result cli = run_cli(args);
        CHECK(cli.rc == 2, "'%s': exit %d", bad[i].extra, cli.rc);
        CHECK(cli.err_lines == 1, "'%s': %d lines on stderr: %s",
              bad[i].extra, cli.err_lines, cli.err);
        CHECK(strstr(cli.err, bad[i].needle) != NULL,
              "'%s': message does not name it: %s", bad[i].extra, cli.err);
        CHECK(!exists(out), "'%s': out directory left behind",
              bad[i].extra);
    }
    /* missing data file */
    snprintf(args, sizeof args, "train --data idx:%s/none,%s/none %s --out %s",
             tmpdir, tmpdir, common, out);
    strncat(args, " --model mlp:16", sizeof args - strlen(args) - 1);
    cli_result cli = run_cli(args);
    CHECK(cli.rc == 2 && cli.err_lines == 1 && !exists(out),
          "missing data: exit %d, %d lines: %s", cli.rc, cli.err_lines,
          cli.err);
    /* unwritable out directory */
    snprintf(args, sizeof args, "train --data '%s' %s --out /proc/l2rw-x/y "
             "--model mlp:16", spec, common);
    cli = run_cli(args);
    CHECK(cli.rc == 2 && cli.err_lines == 1 &&
              strstr(cli.err, "/proc/l2rw-x"),
          "unwritable out: exit %d, %d lines: %s", cli.rc, cli.err_lines,
          cli.err);
    /* help lists defaults; a good run works */
    cli = run_cli("train --help");
    CHECK(cli.rc == 0, "train --help: exit %d", cli.rc);
    cli = run_cli("--version");
    CHECK(cli.rc == 0, "--version: exit %d", cli.rc);
    cli = run_cli("frobnicate");
    CHECK(cli.rc == 2 && cli.err_lines == 1, "unknown command: exit %d",
          cli.rc);
    snprintf(args, sizeof args, "train --data '%s' %s --out %s --model mlp:16",
             spec, common, out);
    cli = run_cli(args);
    CHECK(cli.rc == 0 && cli.err_lines == 0, "good run: exit %d: %s", cli.rc,
          cli.err);
    /* --resume DIR alone takes the run's length from the checkpoint (the
     * last one, at step 30): nothing left to do, where the default
     * --steps 3000 would train 2,970 more steps */
    char alone[512];
    path_in(alone, sizeof alone, "resume-alone");
    snprintf(args, sizeof args, "train --data '%s' --model mlp:16 --batch 20 "
             "--val-per-class 5 --steps 30 --checkpoint-every 20 --no-plots "
             "--eval-every 0 --quiet --out %s", spec, alone);
    cli = run_cli(args);
    CHECK(cli.rc == 0, "30-step run: exit %d: %s", cli.rc, cli.err);
    snprintf(args, sizeof args, "train --resume %s --quiet", alone);
    cli = run_cli(args);
    CHECK(cli.rc == 0, "--resume alone: exit %d: %s", cli.rc, cli.err);
    char sum_alone[600];
    snprintf(sum_alone, sizeof sum_alone, "%s/%s", alone, L2RW_FILE_SUMMARY);
    char *sa_text = slurp(sum_alone, NULL);
    CHECK(sa_text && strstr(sa_text, "\"steps\": 30,") &&
              strstr(sa_text, "\"resumed_from\": 30,"),
          "--resume alone did not keep the run's 30 steps: %s",
          sa_text ? sa_text : "(no summary)");
    free(sa_text);
    /* SIGINT: exit 130 with a checkpoint, then the run resumes */
    char sig[512];
    path_in(sig, sizeof sig, "sigint");
    snprintf(args, sizeof args,
             "sh -c \"%s train --data '%s' --model mlp:16 --batch 20 "
             "--val-per-class 5 --steps 1000000 --checkpoint-every 0 "
             "--no-plots --eval-every 0 --out %s >%s/stdout 2>&1 & p=\\$!; "
             "sleep 1; kill -INT \\$p; wait \\$p; echo \\$? > %s/rc\"",
             TU_CLI, spec, sig, tmpdir, tmpdir);
    CHECK(system(args) == 0, "sigint run: %s", args);
    char rcf[600], ckf[600], sof[600];
    snprintf(rcf, sizeof rcf, "%s/rc", tmpdir);
    snprintf(sof, sizeof sof, "%s/stdout", tmpdir);
    snprintf(ckf, sizeof ckf, "%s/%s", sig, L2RW_FILE_CHECKPOINT);
    char *rct = slurp(rcf, NULL), *sot = slurp(sof, NULL);
    CHECK(rct && atoi(rct) == 130, "SIGINT exit status %s", rct ? rct : "?");
    CHECK(exists(ckf), "no checkpoint after SIGINT");
    const char *at = sot ? strstr(sot, "stopped at step ") : NULL;
    long stopped = at ? atol(at + 16) : -1;
    CHECK(stopped > 0, "no 'stopped at step N' line: %s", sot ? sot : "");
    free(rct);
    free(sot);
    char conf[8192];
    CHECK(l2rw_train_resume_config(sig, conf, sizeof conf) == L2RW_OK &&
              strstr(conf, "\nsteps=1000000\n") &&
              strstr(conf, "\ncheckpoint-every=0\n"),
          "resume config lacks the run's length: %s", conf);
    /* the other options come from the checkpoint */
    snprintf(args, sizeof args, "train --resume %s --steps %ld "
             "--checkpoint-every 0 --quiet --no-plots", sig, stopped + 5);
    cli = run_cli(args);
    CHECK(cli.rc == 0, "resume after SIGINT: exit %d: %s", cli.rc, cli.err);
    snprintf(sof, sizeof sof, "%s/%s", sig, L2RW_FILE_SUMMARY);
    sot = slurp(sof, NULL);
    char want[64];
    snprintf(want, sizeof want, "\"resumed_from\": %ld,", stopped);
    CHECK(sot && strstr(sot, want), "summary after SIGINT resume lacks %s",
          want);
    free(sot);
    char p[600];
    snprintf(p, sizeof p, "%s/%s", out, L2RW_FILE_MODEL);
    char ev[600], sm[600];
    snprintf(ev, sizeof ev, "%s/eval.txt", tmpdir);
    snprintf(args, sizeof args, "eval --load %s --data '%s'", p, spec);
    cli = run_cli_to(args, ev, NULL);
    CHECK(cli.rc == 0, "eval: exit %d: %s", cli.rc, cli.err);
    /* eval of the saved model gives the run's final accuracy */
    snprintf(sm, sizeof sm, "%s/%s", out, L2RW_FILE_SUMMARY);
    char *evt = slurp(ev, NULL), *smt = slurp(sm, NULL);
    const char *ea = evt ? strstr(evt, "accuracy ") : NULL;
    const char *sa = smt ? strstr(smt, "\"final_test_accuracy\": ") : NULL;
    CHECK(ea && sa && fabs(atof(ea + 9) - 100 * atof(sa + 23)) < 0.006,
          "eval accuracy %s vs summary %s", ea ? ea : "?", sa ? sa : "?");
    free(evt);
    free(smt);

    /* a damaged checkpoint: one line, exit 2 */
    char ck[600];
    snprintf(ck, sizeof ck, "%s/%s", out, L2RW_FILE_CHECKPOINT);
    CHECK(truncate(ck, 100) == 0, "cannot truncate %s", ck);
    snprintf(args, sizeof args, "train --resume %s --steps 8 --quiet", out);
    cli = run_cli(args);
    CHECK(cli.rc == 2 && cli.err_lines == 1 && strstr(cli.err, "checkpoint"),
          "damaged checkpoint: exit %d, %d lines: %s", cli.rc, cli.err_lines,
          cli.err);

    /* reproduce: bad usage */
    cli = run_cli("reproduce bogus");
    CHECK(cli.rc == 2 && cli.err_lines == 1, "reproduce bogus: exit %d: %s",
          cli.rc, cli.err);
    snprintf(args, sizeof args, "reproduce noise --data cifar10:%s --out %s/r",
             tmpdir, tmpdir);
    cli = run_cli(args);
    CHECK(cli.rc == 2 && cli.err_lines == 1,
          "reproduce cifar10: exit %d: %s", cli.rc, cli.err);
    snprintf(args, sizeof args, "%s/r", tmpdir);
    CHECK(!exists(args), "reproduce left %s behind", args);
}

static void cleanup(void)
{
    char cmd[600];
    if (!tmpdir[0] || strncmp(tmpdir, "/tmp/l2rw-test-train-", 21)) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* A checkpoint keeps the thread count its run computed with and a resume
 * without --threads takes it, so the trajectory goes on bit for bit (a
 * ResNet's sums are split by the count); a resume with --threads takes
 * that count instead, shown here to give other bits (else this test
 * could not fail). */
static void test_resume_threads(void)
{
    if (cli_sanitized_pass()) return;
    if (l2rw_get_threads() < 2) {
        SKIP("one core: every run has one thread");
        return;
    }
    const char *names[] = {"thr-full", "thr-same", "thr-other"};
    const char *resume_extra[] = {NULL, "", "--threads 2"};
    char dir[3][512], args[4096];
    for (int r = 0; r < 3; r++) {
        path_in(dir[r], sizeof dir[r], names[r]);
        snprintf(args, sizeof args,
                 "train --data '%s' --model resnet8 --batch 20 "
                 "--val-per-class 5 --eval-every 0 --seed 4 --threads 1 "
                 "--quiet --no-plots --steps %d --out %s",
                 spec, r == 0 ? 4 : 2, dir[r]);
        cli_result cli = run_cli(args);
        CHECK(cli.rc == 0, "%s: %s", names[r], cli.err);
        if (!resume_extra[r]) continue;
        snprintf(args, sizeof args, "train --resume %s --steps 4 --quiet "
                 "--no-plots %s", dir[r], resume_extra[r]);
        cli = run_cli(args);
        CHECK(cli.rc == 0, "%s resumed: %s", names[r], cli.err);
    }
    CHECK(same_file(dir[0], dir[1], L2RW_FILE_MODEL),
          "resumed without --threads: not the run's bits");
    CHECK(!same_file(dir[0], dir[2], L2RW_FILE_MODEL),
          "resumed with --threads 2: the same bits as one thread");
}

int main(void)
{
    if (make_data()) {
        CHECK(0, "cannot write test data in /tmp");
        return CHECK_DONE("test_train");
    }
    RUN(test_resume);
    RUN(test_outputs);
    RUN(test_finetune);
    RUN(test_checkpoint_size);
    RUN(test_finetune_resume_main_optimizer);
    RUN(test_finetune_resume_own_optimizer);
    RUN(test_finetune_resume_stop_flag);
    RUN(test_bad_checkpoints); /* reads test_checkpoint_size's run */
    RUN(test_cli);
    RUN(test_resume_threads);
    cleanup();
    return CHECK_DONE("test_train");
}
