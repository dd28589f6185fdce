/* l2rw reproduce noise on CIFAR-shaped data: the CIFAR protocol (ResNet,
 * learning rate 0.1, weight decay 2e-4, +FT) runs end to end on a tiny
 * generated CIFAR-10 directory, and the table names the model. Runs the
 * built command (./build/l2rw), so only in the plain pass. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "l2rw.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    PER_BATCH = 240,  /* 5 files: 1,200 images, 1,000 of them clean */
    N_TEST = 40,
    N_NOISE_RUNS = 16 /* 8 methods x 2 noises */
};

/* The table rows of results.md ("| ..." lines), which hold no timing. */
static char *table_rows(const char *md)
{
    char *rows = calloc(1, md ? strlen(md) + 1 : 1);
    if (!rows || !md) return rows;
    for (const char *line = md; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        if (line[0] == '|') strncat(rows, line, len);
        line += len;
    }
    return rows;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *c = text; c && *c; c++) n += *c == '\n';
    return n;
}

static void make_data(char *dir, size_t size)
{
    snprintf(dir, size, "%s/cifar", tmpdir);
    CHECK(write_cifar_dir(dir, PER_BATCH, N_TEST) == 0, "cannot write "
          "CIFAR files in %s", dir);
}

static void check_summary(const char *out, const char *run, const char *key,
                          const char *want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/runs/%s/summary.json", out, run);
    char *s = slurp(path, NULL);
    CHECK(s && strstr(s, want), "%s: %s is not %s", path, key, want);
    free(s);
}

/* Set in main(): the sanitized pass runs no case (they run ./build/l2rw,
 * which it does not instrument) and needs no directory. */
static int sanitized;

static void test_cifar_noise(void)
{
    if (cli_sanitized_pass()) return;
    char data[300], out[300], args[1024];
    make_data(data, sizeof data);
    snprintf(out, sizeof out, "%s/r", tmpdir);
    snprintf(args, sizeof args,
             "reproduce noise --data cifar10:%s --model resnet8 --steps 2 "
             "--threads 1 --out %s",
             data, out);
    cli_result cli = run_cli(args);
    CHECK(cli.rc == 0, "reproduce noise on CIFAR: exit %d: %s", cli.rc,
          cli.err);

    snprintf(args, sizeof args, "%s/results.md", out);
    char *md = slurp(args, NULL);
    CHECK(md && strstr(md, "resnet8"), "results.md does not name the model");
    CHECK(md && strstr(md, "| l2rw |") && strstr(md, "| plain+FT |") &&
              strstr(md, "| sce |"),
          "results.md lacks method rows:\n%s", md ? md : "(none)");
    free(md);
    snprintf(args, sizeof args, "%s/results.csv", out);
    char *csv = slurp(args, NULL);
    CHECK(count_lines(csv) == 1 + N_NOISE_RUNS, "results.csv: %d lines",
          count_lines(csv));
    free(csv);

    /* the paper's CIFAR protocol, scaled to --steps 2 */
    check_summary(out, "uniform_0.4-l2rw", "model", "\"model\": \"resnet8\"");
    check_summary(out, "uniform_0.4-l2rw", "lr", "\"lr\": 0.1000");
    check_summary(out, "uniform_0.4-l2rw", "weight decay",
                  "\"weight_decay\": 0.0001999");
    check_summary(out, "background_0.4-plain-ft", "fine-tune steps",
                  "\"finetune_clean_steps\": 1");
    check_summary(out, "background_0.4-plain", "clean images",
                  "\"n_val\": 1000");

    /* the same command again resumes every run from its checkpoint and
     * gives the same table */
    snprintf(args, sizeof args, "%s/results.md", out);
    char *md1 = slurp(args, NULL);
    snprintf(args, sizeof args,
             "reproduce noise --data cifar10:%s --model resnet8 --steps 2 "
             "--threads 1 --out %s",
             data, out);
    cli = run_cli(args);
    CHECK(cli.rc == 0, "reproduce again: exit %d", cli.rc);
    path_in(args, sizeof args, "stdout.txt");
    char *log = slurp(args, NULL);
    int resumed = 0;
    for (const char *q = log; q && (q = strstr(q, ", resumed)")); q++)
        resumed++;
    CHECK(resumed == N_NOISE_RUNS, "%d of %d runs resumed:\n%s", resumed,
          N_NOISE_RUNS, log ? log : "");
    free(log);
    snprintf(args, sizeof args, "%s/results.md", out);
    char *md2 = slurp(args, NULL);
    char *t1 = table_rows(md1), *t2 = table_rows(md2);
    CHECK(t1 && t2 && t1[0] && !strcmp(t1, t2),
          "resumed table differs:\n%s\nvs\n%s", t1 ? t1 : "",
          t2 ? t2 : "");
    free(t1);
    free(t2);
    free(md1);
    free(md2);
}

static void test_bad_usage(void)
{
    if (cli_sanitized_pass()) return;
    char args[1024];
    snprintf(args, sizeof args,
             "reproduce imbalance --data cifar10:%s/cifar --out %s/imb",
             tmpdir, tmpdir);
    cli_result cli = run_cli(args);
    CHECK(cli.rc == 2 && cli.err_lines == 1 && strstr(cli.err, "imbalance"),
          "imbalance on CIFAR: exit %d: %s", cli.rc, cli.err);
    snprintf(args, sizeof args, "%s/imb", tmpdir);
    CHECK(access(args, F_OK) != 0, "imbalance on CIFAR left %s", args);
}

/* The line of run `name` in a --dry-run listing ("" when absent). */
static void plan_line(const char *out, const char *name, char *line,
                      size_t size)
{
    line[0] = '\0';
    const char *at = strstr(out, name);
    if (!at) return;
    size_t n = strcspn(at, "\n");
    snprintf(line, size, "%.*s", (int)(n < size ? n : size - 1), at);
}

/* --paper (the default of --device cuda): the paper's network and clean
 * set per noise, the CIFAR schedule scaled to --steps, on any data; the
 * dry run lists it after checking the data and writes nothing. */
static void test_paper_plan(void)
{
    if (cli_sanitized_pass()) return;
    char args[1024], line[512];
    snprintf(args, sizeof args,
             "reproduce noise --data cifar10:%s/cifar --paper --steps 1000 "
             "--device checked --dry-run --out %s/paper", tmpdir, tmpdir);
    cli_result cli = run_cli(args);
    CHECK(cli.rc == 0, "dry run: exit %d: %s", cli.rc, cli.err);
    CHECK(strstr(cli.out, "16 runs") && strstr(cli.out, "device checked"),
          "dry run header: %s", cli.out);
    plan_line(cli.out, "background_0.4-l2rw ", line, sizeof line);
    CHECK(strstr(line, "model resnet32") &&
              strstr(line, "10 clean/class") &&
              strstr(line, "1000 steps, lr 0.1, x0.1 at 500,750"),
          "background l2rw: '%s'", line);
    plan_line(cli.out, "uniform_0.4-plain-ft ", line, sizeof line);
    CHECK(strstr(line, "model wrn-28-10") && strstr(line, "1000 clean") &&
              strstr(line, "x0.1 at 666,833") &&
              strstr(line, "+62 fine-tune steps"),
          "uniform plain+FT: '%s'", line);
    snprintf(args, sizeof args, "%s/paper", tmpdir);
    CHECK(access(args, F_OK) != 0, "the dry run wrote %s", args);
    /* --model keeps one network for both noises */
    snprintf(args, sizeof args,
             "reproduce noise --data cifar10:%s/cifar --paper --quick "
             "--model resnet8 --dry-run", tmpdir);
    cli = run_cli(args);
    plan_line(cli.out, "uniform_0.4-l2rw ", line, sizeof line);
    CHECK(cli.rc == 0 && strstr(line, "model resnet8"),
          "--model with --paper: '%s' (%s)", line, cli.err);
}

int main(void)
{
    sanitized = getenv("L2RW_SANITIZED") != NULL;
    if (!sanitized) {
        CHECK(access(TU_CLI, X_OK) == 0, "%s not built", TU_CLI);
        snprintf(tmpdir, sizeof tmpdir, "/tmp/l2rw-test-reproduce-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            CHECK(0, "mkdtemp failed");
            return CHECK_DONE("test_reproduce");
        }
    }
    RUN(test_cifar_noise);
    RUN(test_bad_usage);
    RUN(test_paper_plan);
    if (!sanitized) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    }
    return CHECK_DONE("test_reproduce");
}
