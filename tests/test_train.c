/* Training loop and command line: bit-identical resume (straight run vs
 * stopped-and-resumed run), refusal of a resume from another
 * configuration, the files of a run (summary.json keys, metrics.csv
 * rows), and the CLI's handling of bad input (exit status 2, one line,
 * no out directory left behind).
 *
 * Data: small generated IDX files (4 classes of 8x8 images, a bright
 * quadrant per class plus noise), so the whole test takes seconds. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "l2rw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SIDE = 8, CLASSES = 4, N_TRAIN = 400, N_TEST = 200, HALF = 20 };

static char tmpdir[256];
static char spec[2048];

static void put_be32(FILE *fp, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, fp);
}

/* Writes an IDX image file and label file of n examples. */
static int write_idx(const char *img, const char *lab, int n, uint64_t seed)
{
    FILE *fi = fopen(img, "wb"), *fl = fopen(lab, "wb");
    if (!fi || !fl) return 1;
    put_be32(fi, 0x803);
    put_be32(fi, (uint32_t)n);
    put_be32(fi, SIDE);
    put_be32(fi, SIDE);
    put_be32(fl, 0x801);
    put_be32(fl, (uint32_t)n);
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        int k = i % CLASSES;
        unsigned char px[SIDE * SIDE];
        for (int p = 0; p < SIDE * SIDE; p++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int r = p / SIDE, c = p % SIDE;
            int quad = (r >= SIDE / 2) * 2 + (c >= SIDE / 2);
            int v = (int)(s >> 58) + (quad == k ? 150 : 30);
            px[p] = (unsigned char)v;
        }
        fwrite(px, 1, sizeof px, fi);
        unsigned char y = (unsigned char)k;
        fwrite(&y, 1, 1, fl);
    }
    int bad = ferror(fi) || ferror(fl);
    bad |= fclose(fi) != 0;
    bad |= fclose(fl) != 0;
    return bad;
}

static int make_data(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/l2rw-test-train-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    char a[300], b[300], c[300], d[300];
    snprintf(a, sizeof a, "%s/train-img", tmpdir);
    snprintf(b, sizeof b, "%s/train-lab", tmpdir);
    snprintf(c, sizeof c, "%s/test-img", tmpdir);
    snprintf(d, sizeof d, "%s/test-lab", tmpdir);
    if (write_idx(a, b, N_TRAIN, 1) || write_idx(c, d, N_TEST, 2)) return 1;
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

static char *slurp(const char *path, long *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
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

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
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

/* Runs the CLI; returns its exit status, *lines = lines on stderr. */
static int run_cli_to(const char *args, const char *stdout_path, int *lines,
                      char *first, size_t size)
{
    char cmd[4096], errf[512];
    snprintf(errf, sizeof errf, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "./build/l2rw %s >%s 2>%s", args, stdout_path,
             errf);
    int st = system(cmd);
    char *e = slurp(errf, NULL);
    *lines = 0;
    for (const char *q = e; q && *q; q++) *lines += *q == '\n';
    snprintf(first, size, "%s", e ? e : "");
    free(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_cli(const char *args, int *lines, char *first, size_t size)
{
    return run_cli_to(args, "/dev/null", lines, first, size);
}

static void test_cli(void)
{
    if (getenv("L2RW_SANITIZED")) return; /* the plain pass covers it */
    CHECK(access("./build/l2rw", X_OK) == 0, "./build/l2rw not built");
    char out[512], resumed[512], args[4096], msg[1024];
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
        int lines, rc = run_cli(args, &lines, msg, sizeof msg);
        CHECK(rc == 2, "'%s': exit %d", bad[i].extra, rc);
        CHECK(lines == 1, "'%s': %d lines on stderr: %s", bad[i].extra,
              lines, msg);
        CHECK(strstr(msg, bad[i].needle) != NULL,
              "'%s': message does not name it: %s", bad[i].extra, msg);
        CHECK(!exists(out), "'%s': out directory left behind",
              bad[i].extra);
    }
    /* missing data file */
    snprintf(args, sizeof args, "train --data idx:%s/none,%s/none %s --out %s",
             tmpdir, tmpdir, common, out);
    strncat(args, " --model mlp:16", sizeof args - strlen(args) - 1);
    int lines, rc = run_cli(args, &lines, msg, sizeof msg);
    CHECK(rc == 2 && lines == 1 && !exists(out),
          "missing data: exit %d, %d lines: %s", rc, lines, msg);
    /* unwritable out directory */
    snprintf(args, sizeof args, "train --data '%s' %s --out /proc/l2rw-x/y "
             "--model mlp:16", spec, common);
    rc = run_cli(args, &lines, msg, sizeof msg);
    CHECK(rc == 2 && lines == 1 && strstr(msg, "/proc/l2rw-x"),
          "unwritable out: exit %d, %d lines: %s", rc, lines, msg);
    /* help lists defaults; a good run works */
    rc = run_cli("train --help", &lines, msg, sizeof msg);
    CHECK(rc == 0, "train --help: exit %d", rc);
    rc = run_cli("--version", &lines, msg, sizeof msg);
    CHECK(rc == 0, "--version: exit %d", rc);
    rc = run_cli("frobnicate", &lines, msg, sizeof msg);
    CHECK(rc == 2 && lines == 1, "unknown command: exit %d", rc);
    snprintf(args, sizeof args, "train --data '%s' %s --out %s --model mlp:16",
             spec, common, out);
    rc = run_cli(args, &lines, msg, sizeof msg);
    CHECK(rc == 0 && lines == 0, "good run: exit %d: %s", rc, msg);
    /* SIGINT: exit 130 with a checkpoint, then the run resumes */
    char sig[512];
    path_in(sig, sizeof sig, "sigint");
    snprintf(args, sizeof args,
             "sh -c \"./build/l2rw train --data '%s' --model mlp:16 --batch 20 "
             "--val-per-class 5 --steps 1000000 --checkpoint-every 0 "
             "--no-plots --eval-every 0 --out %s >%s/stdout 2>&1 & p=\\$!; "
             "sleep 1; kill -INT \\$p; wait \\$p; echo \\$? > %s/rc\"",
             spec, sig, tmpdir, tmpdir);
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
    /* the other options come from the checkpoint */
    snprintf(args, sizeof args, "train --resume %s --steps %ld "
             "--checkpoint-every 0 --quiet --no-plots", sig, stopped + 5);
    rc = run_cli(args, &lines, msg, sizeof msg);
    CHECK(rc == 0, "resume after SIGINT: exit %d: %s", rc, msg);
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
    rc = run_cli_to(args, ev, &lines, msg, sizeof msg);
    CHECK(rc == 0, "eval: exit %d: %s", rc, msg);
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
    rc = run_cli(args, &lines, msg, sizeof msg);
    CHECK(rc == 2 && lines == 1 && strstr(msg, "checkpoint"),
          "damaged checkpoint: exit %d, %d lines: %s", rc, lines, msg);

    /* reproduce: bad usage */
    rc = run_cli("reproduce bogus", &lines, msg, sizeof msg);
    CHECK(rc == 2 && lines == 1, "reproduce bogus: exit %d: %s", rc, msg);
    snprintf(args, sizeof args, "reproduce noise --data cifar10:%s --out %s/r",
             tmpdir, tmpdir);
    rc = run_cli(args, &lines, msg, sizeof msg);
    CHECK(rc == 2 && lines == 1, "reproduce cifar10: exit %d: %s", rc, msg);
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

int main(void)
{
    if (make_data()) {
        printf("cannot write test data in /tmp\n");
        return 1;
    }
    test_resume();
    test_outputs();
    test_finetune();
    test_cli();
    cleanup();
    return CHECK_DONE("test_train");
}
