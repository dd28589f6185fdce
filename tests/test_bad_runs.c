/* Runs that should not happen quietly: `l2rw train --out DIR` over another
 * run (refused unless --overwrite), `--resume DIR --steps M` below the
 * steps done (refused; equal: "already complete"), stale temporary files
 * of l2rw_write_atomic (removed on a failed write and at the next start),
 * `l2rw reproduce` on data it cannot use (refused before anything is
 * written), and numbers the option parser must take (a 300-character
 * number, an underflow) or call out of range (an overflow).
 *
 * Data: small generated IDX files (4 classes of 8x8 images; a 10-class
 * MNIST-layout directory for reproduce), so the whole test takes
 * seconds. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "common.h" /* l2rw_write_atomic */
#include "l2rw.h"
#include "testutil.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CLASSES = 4, N_TRAIN = 400, N_TEST = 200 };
enum { MNIST_CLASSES = 10, MNIST_TRAIN = 300, MNIST_TEST = 100 };
enum { STEPS = 20 };

/* Above any Linux pid_max (at most 2^22), so kill(pid, 0) says ESRCH:
 * the PID of a temporary file whose writer is surely gone. */
#define DEAD_PID 2147480000L

static char spec[2048];     /* idx: spec of the 4-class data */
static char mnist_dir[320]; /* the same kind of data in MNIST's layout */

static int make_data(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/l2rw-test-bad-runs-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    char a[400], b[400], c[400], d[400];
    path_in(a, sizeof a, "train-img");
    path_in(b, sizeof b, "train-lab");
    path_in(c, sizeof c, "test-img");
    path_in(d, sizeof d, "test-lab");
    if (write_idx(a, b, N_TRAIN, CLASSES, 1) ||
        write_idx(c, d, N_TEST, CLASSES, 2))
        return 1;
    snprintf(spec, sizeof spec, "idx:%s,%s;%s,%s", a, b, c, d);
    path_in(mnist_dir, sizeof mnist_dir, "mnist");
    if (mkdir(mnist_dir, 0777) != 0) return 1;
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", mnist_dir);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte", mnist_dir);
    snprintf(c, sizeof c, "%s/t10k-images-idx3-ubyte", mnist_dir);
    snprintf(d, sizeof d, "%s/t10k-labels-idx1-ubyte", mnist_dir);
    return write_idx(a, b, MNIST_TRAIN, MNIST_CLASSES, 3) ||
           write_idx(c, d, MNIST_TEST, MNIST_CLASSES, 4);
}

static l2rw_train_cfg base_cfg(const char *out, long steps)
{
    l2rw_train_cfg c = l2rw_train_cfg_default();
    c.data = spec;
    c.model = "mlp:16";
    c.method = "plain";
    c.val_per_class = 5;
    c.batch = 20;
    c.steps = steps;
    c.eval_every = 10;
    c.checkpoint_every = 10;
    c.threads = 1;
    c.sgd.lr = 0.05f;
    c.out_dir = out;
    return c;
}

static int file_in(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return exists(p);
}

static void touch_in(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "w");
    CHECK(fp != NULL, "cannot create %s", p);
    if (fp) fclose(fp);
}

/* Entries of dir besides . and .., or -1 when it cannot be read. */
static int n_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Whether the file at path holds exactly len bytes of data. */
static int file_equals(const char *path, const char *data, long len)
{
    long n = 0;
    char *now = slurp(path, &n);
    int same = now && n == len && memcmp(now, data, (size_t)len) == 0;
    free(now);
    return same;
}

/* ----------------------------------------------------------- the CLI */

/* `l2rw train` on the test data with the given options. */
static cli_result train_cli(const char *opts)
{
    char args[8192];
    snprintf(args, sizeof args, "train --data '%s' --model mlp:16 --method "
             "plain --val-per-class 5 --batch 20 --eval-every 10 "
             "--checkpoint-every 10 --threads 1 --no-plots %s", spec, opts);
    return run_cli(args);
}

/* Case 1: --out over another run is refused (exit 2, naming --resume
 * and --overwrite) and leaves that run as it was; a new, empty or
 * unrelated directory is fine; --overwrite starts over, removing the old
 * run's files (also those the new run does not write), but only once the
 * new run has started: bad input with --overwrite keeps the old run. */
static void test_out_holds_run(void)
{
    if (!cli_available(1)) return;
    char out[512], opts[2048], ckpt[1024];
    path_in(out, sizeof out, "holds-run");
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.l2rw", out);
    snprintf(opts, sizeof opts, "--steps %d --out %s --quiet", STEPS, out);
    cli_result r = train_cli(opts);
    CHECK(r.rc == 0, "first run: exit %d: %s", r.rc, r.err);
    long before_len = 0;
    char *before = slurp(ckpt, &before_len);
    CHECK(before != NULL, "no checkpoint after the first run");

    snprintf(opts, sizeof opts, "--steps %d --out %s --quiet --lr 0.02",
             STEPS, out);
    r = train_cli(opts);
    CHECK(r.rc == 2, "second run into %s: exit %d", out, r.rc);
    CHECK(r.err_lines == 1, "%d lines on stderr: %s", r.err_lines, r.err);
    CHECK(strstr(r.err, "holds another run") &&
              strstr(r.err, "checkpoint.l2rw") &&
              strstr(r.err, "--resume") && strstr(r.err, out) &&
              strstr(r.err, "--overwrite"),
          "refusal does not name the run, --resume DIR and --overwrite: %s",
          r.err);
    CHECK(before && file_equals(ckpt, before, before_len),
          "the refused run changed %s", ckpt);

    /* --overwrite with bad input: refused before the old run is touched */
    snprintf(opts, sizeof opts, "--steps %d --out %s --quiet --overwrite "
             "--method nope", STEPS, out);
    r = train_cli(opts);
    CHECK(r.rc == 2, "--overwrite --method nope: exit %d", r.rc);
    CHECK(file_in(out, "checkpoint.l2rw") && file_in(out, "model.l2rw"),
          "bad input with --overwrite removed the old run");

    /* --overwrite and --resume into the same directory contradict */
    snprintf(opts, sizeof opts, "--resume %s --overwrite", out);
    r = train_cli(opts);
    CHECK(r.rc == 2 && strstr(r.err, "--overwrite") &&
              strstr(r.err, "--resume"),
          "--resume DIR --overwrite: exit %d: %s", r.rc, r.err);

    /* --overwrite starts over: norm.txt (not written with
     * --no-normalise) and a plot of the old run go */
    touch_in(out, "weights.svg");
    snprintf(opts, sizeof opts, "--steps %d --out %s --quiet --overwrite "
             "--no-normalise", STEPS / 2, out);
    r = train_cli(opts);
    CHECK(r.rc == 0, "--overwrite: exit %d: %s", r.rc, r.err);
    CHECK(!file_in(out, "norm.txt") && !file_in(out, "weights.svg"),
          "--overwrite left the old run's norm.txt or weights.svg");
    CHECK(file_in(out, "model.l2rw") && file_in(out, "checkpoint.l2rw") &&
              file_in(out, "data.json") && file_in(out, "summary.json"),
          "--overwrite: the new run's files are missing");
    char summary[1024];
    snprintf(summary, sizeof summary, "%s/summary.json", out);
    char *sj = slurp(summary, NULL);
    CHECK(sj && strstr(sj, "--overwrite"), "summary.json is not the new "
          "run's");
    free(sj);
    free(before);

    /* an existing empty directory, or one without run files, is fine */
    char empty[512];
    path_in(empty, sizeof empty, "empty-out");
    CHECK(mkdir(empty, 0777) == 0, "mkdir %s", empty);
    touch_in(empty, "notes.txt");
    snprintf(opts, sizeof opts, "--steps 5 --out %s --quiet", empty);
    r = train_cli(opts);
    CHECK(r.rc == 0, "directory without run files: exit %d: %s", r.rc,
          r.err);
}

/* Case 2 through the library (both passes): a resume whose length is
 * below the checkpoint's steps is L2RW_ERR_ARG before the run starts;
 * equal is a finished run that ends at once. */
/* The library itself refuses an out_dir that holds another run (the
 * command line is only one of its callers), leaves that run alone, and
 * with cfg.overwrite starts over. */
static void test_library_refuses_other_run(void)
{
    char dir[512], model[600];
    path_in(dir, sizeof dir, "lib-other-run");
    snprintf(model, sizeof model, "%s/%s", dir, L2RW_FILE_MODEL);
    l2rw_train_cfg c = base_cfg(dir, STEPS);
    l2rw_train_result res;
    CHECK_OK(l2rw_train_run(&c, &res));
    long len = 0;
    char *before = slurp(model, &len);
    c.seed = 2;
    l2rw_status s = l2rw_train_run(&c, &res);
    CHECK(s == L2RW_ERR_ARG && !res.started &&
              strstr(l2rw_last_error(), "holds another run") &&
              strstr(l2rw_last_error(), "--overwrite"),
          "second run into %s: %s: %s", dir, l2rw_strerror(s),
          l2rw_last_error());
    long len2 = 0;
    char *after = slurp(model, &len2);
    CHECK(before && after && len == len2 && !memcmp(before, after, (size_t)len),
          "the refused run changed %s", model);
    free(after);
    c.overwrite = 1;
    CHECK_OK(l2rw_train_run(&c, &res));
    after = slurp(model, &len2);
    CHECK(before && after && (len != len2 || memcmp(before, after, (size_t)len)),
          "--overwrite (seed 2) left the old model in place");
    free(before);
    free(after);
}

static void test_resume_below_steps_done(void)
{
    char dir[512];
    path_in(dir, sizeof dir, "lib-resume");
    l2rw_train_cfg c = base_cfg(dir, STEPS);
    l2rw_train_result res;
    CHECK_OK(l2rw_train_run(&c, &res));
    c = base_cfg(NULL, STEPS / 2);
    c.resume_dir = dir;
    l2rw_status s = l2rw_train_run(&c, &res);
    CHECK(s == L2RW_ERR_ARG, "resume with fewer steps: %s",
          l2rw_strerror(s));
    CHECK(!res.started, "the refused run counts as started");
    CHECK(strstr(l2rw_last_error(), "has done 20 steps") &&
              strstr(l2rw_last_error(), "10 steps") &&
              strstr(l2rw_last_error(), "--steps 20"),
          "message: %s", l2rw_last_error());
    c.steps = STEPS;
    CHECK_OK(l2rw_train_run(&c, &res));
    CHECK(res.resumed_from == STEPS && res.steps == STEPS,
          "finished run resumed with its length: from %ld, %ld steps",
          res.resumed_from, res.steps);
}

/* Case 2 on the command line: exit 2 naming the steps done and M; equal
 * exits 0 saying the run is complete. */
static void test_resume_below_steps_cli(void)
{
    if (!cli_available(1)) return;
    char dir[512], opts[2048];
    path_in(dir, sizeof dir, "cli-resume");
    snprintf(opts, sizeof opts, "--steps %d --out %s --quiet", STEPS, dir);
    cli_result r = train_cli(opts);
    CHECK(r.rc == 0, "first run: exit %d: %s", r.rc, r.err);
    char args[2048];
    snprintf(args, sizeof args, "train --resume %s --steps 5", dir);
    r = run_cli(args);
    CHECK(r.rc == 2, "--resume --steps 5 after %d: exit %d", STEPS, r.rc);
    CHECK(r.err_lines == 1, "%d lines on stderr: %s", r.err_lines, r.err);
    CHECK(strstr(r.err, "has done 20 steps") && strstr(r.err, "5 steps") &&
              strstr(r.err, "--steps 20"),
          "message does not name the steps done and M: %s", r.err);
    snprintf(args, sizeof args, "train --resume %s --steps %d --no-plots",
             dir, STEPS);
    r = run_cli(args);
    CHECK(r.rc == 0, "--resume --steps %d (equal): exit %d: %s", STEPS, r.rc,
          r.err);
    CHECK(strstr(r.out, "already complete (20 of 20 steps)") != NULL,
          "no 'already complete' message: %s", r.out);
}

/* Case 3: a failed atomic write leaves no temporary file; stale
 * temporary files of l2rw's own names whose writer is gone are removed
 * when a run starts in their directory, others stay. */
static l2rw_status failing_writer(FILE *fp, void *ctx)
{
    (void)ctx;
    fputs("half a file", fp);
    return l2rw__fail(L2RW_ERR_IO, "writer failed on purpose");
}

static void test_failed_write_leaves_no_temp(void)
{
    char dir[512], path[1024];
    path_in(dir, sizeof dir, "failed-write");
    CHECK(mkdir(dir, 0777) == 0, "mkdir %s", dir);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    l2rw_status s = l2rw_write_atomic(path, failing_writer, NULL);
    CHECK(s == L2RW_ERR_IO, "failing writer: %s", l2rw_strerror(s));
    CHECK(n_entries(dir) == 0, "%d files left after a failed write",
          n_entries(dir));
}

static void test_stale_temps_removed(void)
{
    char dir[512], name[128];
    path_in(dir, sizeof dir, "stale");
    l2rw_train_cfg c = base_cfg(dir, STEPS / 2);
    l2rw_train_result res;
    CHECK_OK(l2rw_train_run(&c, &res));
    snprintf(name, sizeof name, "checkpoint.l2rw.tmp.%ld", DEAD_PID);
    touch_in(dir, name);
    snprintf(name, sizeof name, "metrics.csv.tmp.%ld", DEAD_PID);
    touch_in(dir, name);
    /* this process's own: it writes nothing while the run sets up */
    snprintf(name, sizeof name, "model.l2rw.tmp.%ld", (long)getpid());
    touch_in(dir, name);
    /* a live writer's (the parent), and a file that is not l2rw's */
    snprintf(name, sizeof name, "summary.json.tmp.%ld", (long)getppid());
    touch_in(dir, name);
    snprintf(name, sizeof name, "notes.txt.tmp.%ld", DEAD_PID);
    touch_in(dir, name);

    c = base_cfg(NULL, STEPS);
    c.resume_dir = dir;
    CHECK_OK(l2rw_train_run(&c, &res));
    snprintf(name, sizeof name, "checkpoint.l2rw.tmp.%ld", DEAD_PID);
    CHECK(!file_in(dir, name), "stale %s not removed", name);
    snprintf(name, sizeof name, "metrics.csv.tmp.%ld", DEAD_PID);
    CHECK(!file_in(dir, name), "stale %s not removed", name);
    snprintf(name, sizeof name, "model.l2rw.tmp.%ld", (long)getpid());
    CHECK(!file_in(dir, name), "stale %s not removed", name);
    snprintf(name, sizeof name, "summary.json.tmp.%ld", (long)getppid());
    CHECK(file_in(dir, name), "a live process's %s was removed", name);
    snprintf(name, sizeof name, "notes.txt.tmp.%ld", DEAD_PID);
    CHECK(file_in(dir, name), "%s (not l2rw's) was removed", name);

    /* a fresh run into a new directory with a stale file in it */
    char fresh[512];
    path_in(fresh, sizeof fresh, "stale-fresh");
    CHECK(mkdir(fresh, 0777) == 0, "mkdir %s", fresh);
    snprintf(name, sizeof name, "checkpoint.l2rw.tmp.%ld", DEAD_PID);
    touch_in(fresh, name);
    c = base_cfg(fresh, 5);
    CHECK_OK(l2rw_train_run(&c, &res));
    CHECK(!file_in(fresh, name), "stale %s not removed by a fresh run",
          name);
}

/* Case 4: reproduce on data with too few examples of the dominant class
 * is refused (exit 2, one line naming the problem) before anything is
 * written: no --out, no table, no runs/, no gnuplot. */
static void test_reproduce_refused_before_writing(void)
{
    if (!cli_available(1)) return;
    char out[512], args[2048];
    path_in(out, sizeof out, "reproduce-out");
    snprintf(args, sizeof args, "reproduce imbalance --quick --data mnist:%s "
             "--out %s --threads 1", mnist_dir, out);
    cli_result r = run_cli(args);
    CHECK(r.rc == 2, "reproduce on too little data: exit %d", r.rc);
    CHECK(r.err_lines == 1, "%d lines on stderr: %s", r.err_lines, r.err);
    CHECK(strstr(r.err, "imbalance 9,4:0.9") &&
              strstr(r.err, "nothing written"),
          "message does not name the setting: %s", r.err);
    CHECK(!strstr(r.err, "gnuplot") && !strstr(r.err, "plot"),
          "a plot was attempted: %s", r.err);
    CHECK(!exists(out), "%s created by a refused reproduction", out);

    /* an existing --out stays as it was */
    CHECK(mkdir(out, 0777) == 0, "mkdir %s", out);
    r = run_cli(args);
    CHECK(r.rc == 2, "reproduce into an existing dir: exit %d", r.rc);
    CHECK(n_entries(out) == 0, "%d entries written into %s", n_entries(out),
          out);
}

/* Case 5: numbers strtod/strtol read completely are numbers, whatever
 * their length; an underflow is a (tiny) number that meets the option's
 * limits; an overflow is out of range. */
static void test_numbers(void)
{
    if (!cli_available(1)) return;
    enum { LONG_NUMBER = 300 };
    char lr[LONG_NUMBER + 1], tiny[LONG_NUMBER + 1], opts[4096], out[512];
    /* 0.0500...0 and 0.000...01, 300 characters each */
    memset(lr, '0', LONG_NUMBER);
    lr[1] = '.';
    lr[3] = '5';
    lr[LONG_NUMBER] = 0;
    memset(tiny, '0', LONG_NUMBER);
    tiny[1] = '.';
    tiny[LONG_NUMBER - 1] = '1';
    tiny[LONG_NUMBER] = 0;
    path_in(out, sizeof out, "numbers");

    snprintf(opts, sizeof opts, "--steps 5 --out %s --quiet --lr %s", out,
             lr);
    cli_result r = train_cli(opts);
    CHECK(r.rc == 0, "--lr of 300 characters (0.05): exit %d: %s", r.rc,
          r.err);

    struct {
        const char *opt, *value, *needle;
    } bad[] = {
        {"--lr", tiny, "is too small (must be in [1e-12, 1e+06])"},
        {"--lr", "1e-310", "is too small"},
        {"--wd", tiny, "is too small: it would be 0"},
        {"--finetune-lr", "1e-50", "is too small: it would be 0"},
        {"--lr", "1e999", "is out of range (must be in [1e-12, 1e+06])"},
        {"--steps", "99999999999999999999", "is out of range"},
        {"--seed", "99999999999999999999999", "is out of range"},
        {"--batch", "99999999999", "is too large (must be in [1, 65536])"},
        {"--lr", "abc", "'abc' is not a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* refused while parsing: no other option needed */
        snprintf(opts, sizeof opts, "train --data '%s' --out %s-bad %s %s",
                 spec, out, bad[i].opt, bad[i].value);
        r = run_cli(opts);
        CHECK(r.rc == 2, "%s %.20s: exit %d", bad[i].opt, bad[i].value,
              r.rc);
        CHECK(r.err_lines == 1 && strstr(r.err, bad[i].opt) &&
                  strstr(r.err, bad[i].needle),
              "%s %.20s: message lacks '%s': %s", bad[i].opt, bad[i].value,
              bad[i].needle, r.err);
        CHECK(!strstr(r.err, "not a number") ||
                  !strcmp(bad[i].value, "abc"),
              "%s %.20s: called not a number: %s", bad[i].opt,
              bad[i].value, r.err);
    }
    /* the 300-character value appears abbreviated */
    snprintf(opts, sizeof opts, "--steps 5 --quiet --lr %s", tiny);
    r = train_cli(opts);
    CHECK(strlen(r.err) < 200, "message of %zu characters: %s",
          strlen(r.err), r.err);
}

int main(void)
{
    if (make_data()) {
        printf("cannot write the test data under /tmp\n");
        return 1;
    }
    RUN(test_out_holds_run);
    RUN(test_library_refuses_other_run);
    RUN(test_resume_below_steps_done);
    RUN(test_resume_below_steps_cli);
    RUN(test_failed_write_leaves_no_temp);
    RUN(test_stale_temps_removed);
    RUN(test_reproduce_refused_before_writing);
    RUN(test_numbers);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    return CHECK_DONE("test_bad_runs");
}
