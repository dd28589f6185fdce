/* The run's data on the device (src/train_data.c): the back ends' data
 * ops against the host's, and whole runs whose batches are gathered and
 * augmented on the checking back end against the CPU's (same bits).
 * The checking back end runs the CPU's kernels on memory the host cannot
 * touch between calls, so a run that passes there kept its batches on
 * the device; the CUDA ops are the same copies and run in
 * test_cuda_kernels where a GPU is present. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_checked.h"
#include "common.h"
#include "data_internal.h"
#include "l2rw.h"
#include "l2rw_data.h"

enum { N = 7, C = 3, H = 32, W = 32, DIM = C * H * W, ROWS = 20, PAD = 4 };

static float *filled(size_t len, float base)
{
    float *x = malloc(len * sizeof *x);
    for (size_t i = 0; x && i < len; i++)
        x[i] = base + (float)(i % 997) * 0.5f - (float)(i % 13);
    return x;
}

/* The checking back end's gather and crop-flip give the host's batch
 * and l2rw_augment_crop_flip's crops; the draws are those of the public
 * function (every crop offset and both flips occur). */
static void test_ops_match_host(void)
{
    const l2rw__backend *be = &l2rw__backend_checked;
    float *set = filled((size_t)ROWS * DIM, 1.0f);
    float *want = malloc((size_t)N * DIM * sizeof *want);
    float *aug = malloc((size_t)N * DIM * sizeof *aug);
    float *got = malloc((size_t)N * DIM * sizeof *got);
    const int32_t idx[N] = {19, 0, 5, 5, 12, 3, 18};
    int32_t draws[3 * N];
    CHECK(set && want && aug && got, "memory");
    if (!set || !want || !aug || !got) goto out;
    CHECK(l2rw_gather(&(l2rw_dataset){.n = ROWS, .c = C, .h = H, .w = W,
                                      .x = set},
                      idx, N, want, NULL, NULL, NULL) == L2RW_OK,
          "host gather");
    const uint64_t key = 0x5eedULL;
    l2rw_augment_crop_flip(aug, want, N, C, H, W, PAD, key);
    l2rw__augment_draws(key, N, PAD, draws);
    int flips = 0;
    for (int i = 0; i < N; i++) {
        CHECK(draws[3 * i] >= 0 && draws[3 * i] <= 2 * PAD &&
                  draws[3 * i + 1] >= 0 && draws[3 * i + 1] <= 2 * PAD &&
                  (draws[3 * i + 2] == 0 || draws[3 * i + 2] == 1),
              "draw %d out of range", i);
        flips += draws[3 * i + 2];
    }
    CHECK(flips > 0 && flips < N, "%d of %d flipped: both kinds wanted",
          flips, N);

    float *dset = be->alloc((size_t)ROWS * DIM, sizeof(float));
    float *db = be->alloc((size_t)N * DIM, sizeof(float));
    float *da = be->alloc((size_t)N * DIM, sizeof(float));
    int32_t *di = be->alloc(N, sizeof(int32_t));
    int32_t *dd = be->alloc(3 * N, sizeof(int32_t));
    CHECK(dset && db && da && di && dd, "device memory");
    if (!dset || !db || !da || !di || !dd) goto out;
    be->upload(dset, set, (size_t)ROWS * DIM * sizeof(float));
    be->upload(di, idx, sizeof idx);
    be->upload(dd, draws, sizeof draws);
    be->gather_rows(db, dset, ROWS, di, N, DIM);
    be->crop_flip(da, db, dd, N, C, H, W, PAD);
    CHECK(be->sync() == L2RW_OK, "ops: %s", l2rw_last_error());
    be->download(got, db, (size_t)N * DIM * sizeof(float));
    CHECK(!memcmp(got, want, (size_t)N * DIM * sizeof(float)),
          "device gather differs from the host's");
    be->download(got, da, (size_t)N * DIM * sizeof(float));
    CHECK(!memcmp(got, aug, (size_t)N * DIM * sizeof(float)),
          "device crop-flip differs from l2rw_augment_crop_flip");
    CHECK(be->mem_free() < ((size_t)8 << 30), "mem_free counts the blocks");

    /* an index outside the set is the caller's bug: caught, not read */
    const int32_t bad[N] = {0, 1, 2, ROWS, 4, 5, 6};
    be->upload(di, bad, sizeof bad);
    be->gather_rows(db, dset, ROWS, di, N, DIM);
    CHECK(be->sync() == L2RW_ERR_ARG &&
              strstr(l2rw_last_error(), "gather_rows"),
          "index %d of %d rows: %s", ROWS, ROWS, l2rw_last_error());
    be->dealloc(dset);
    be->dealloc(db);
    be->dealloc(da);
    be->dealloc(di);
    be->dealloc(dd);
out:
    free(set);
    free(want);
    free(aug);
    free(got);
}


static int file_has(const char *path, const char *text)
{
    char *s = slurp(path, NULL);
    int has = s && strstr(s, text);
    free(s);
    return has;
}

/* CIFAR-shaped data (so batches are augmented) with l2rw, its
 * validation batches, and a fine-tune phase on the clean set: the CPU's
 * run, the checking back end's with the data uploaded (auto) and with
 * every batch streamed (host) give the same files. */
static void test_runs_same_bits(void)
{
    if (!cli_available(0)) return;
    char dir[300], args[2048];
    snprintf(dir, sizeof dir, "%s/cifar", tmpdir);
    CHECK(write_cifar_dir(dir, 40, 30) == 0, "CIFAR files");
    const char *runs[][2] = {{"cpu", "auto"},
                             {"checked", "auto"},
                             {"checked", "host"},
                             {"checked", "device"}};
    const int n_runs = (int)(sizeof runs / sizeof runs[0]);
    cli_result res[4];
    for (int r = 0; r < n_runs; r++) {
        snprintf(args, sizeof args,
                 "train --data cifar10:%s --model resnet8 --method l2rw "
                 "--noise uniform:0.4 --val-size 30 --batch 16 "
                 "--val-batch 10 --steps 4 --eval-every 2 --eval-batch 16 "
                 "--finetune-clean 2 --threads 1 --seed 9 --no-plots "
                 "--device %s --data-place %s --out %s/run-%d",
                 dir, runs[r][0], runs[r][1], tmpdir, r);
        res[r] = run_cli(args);
        CHECK(res[r].rc == 0, "%s / %s: %s", runs[r][0], runs[r][1],
              res[r].err);
    }
    const char *files[] = {"model.l2rw", "metrics.csv", "examples.csv"};
    for (int f = 0; f < 3; f++)
        for (int r = 1; r < n_runs; r++) {
            char a[600], b[600];
            snprintf(a, sizeof a, "%s/run-0/%s", tmpdir, files[f]);
            snprintf(b, sizeof b, "%s/run-%d/%s", tmpdir, r, files[f]);
            CHECK(same_bytes(a, b), "%s of %s / %s differs from the CPU's",
                  files[f], runs[r][0], runs[r][1]);
        }
    /* the log and summary.json say which path each run took */
    CHECK(strstr(res[1].out, "batches from device memory") &&
              strstr(res[3].out, "batches from device memory"),
          "uploaded runs say so: %s", res[1].out);
    CHECK(strstr(res[2].out, "batches from host memory, a batch uploaded "
                             "per step (--data-place host)"),
          "streamed run says so: %s", res[2].out);
    CHECK(!strstr(res[0].out, "batches from"), "the CPU run says nothing");
    for (int r = 0; r < n_runs; r++) { /* FP32 products, and resumed so */
        char sum[400], conf[8192];
        snprintf(sum, sizeof sum, "%s/run-%d/summary.json", tmpdir, r);
        CHECK(file_has(sum, "\"tf32\": false"), "run %d: tf32", r);
        snprintf(sum, sizeof sum, "%s/run-%d", tmpdir, r);
        CHECK(l2rw_train_resume_config(sum, conf, sizeof conf) == L2RW_OK &&
                  strstr(conf, "\ntf32=0\n"),
              "run %d: the checkpoint's tf32", r);
    }
    const char *want[] = {"\"data_on_device\": false",
                          "\"data_on_device\": true",
                          "\"data_on_device\": false",
                          "\"data_on_device\": true"};
    for (int r = 0; r < n_runs; r++) {
        char sum[400];
        snprintf(sum, sizeof sum, "%s/run-%d/summary.json", tmpdir, r);
        CHECK(file_has(sum, want[r]), "run %d: no %s", r, want[r]);
    }
}

/* Column col (0-based) of the metrics.csv row of step `step`; -1 when
 * there is none. Columns: step, epoch, train_loss, test_accuracy, ... */
static double metric_at(const char *path, long step, int col)
{
    char *s = slurp(path, NULL), *save = NULL;
    double v = -1;
    for (char *line = s ? strtok_r(s, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strtol(line, NULL, 10) != step || line[0] == 's') continue;
        char *f = line;
        for (int k = 0; k < col && f; k++) {
            f = strchr(f, ',');
            if (f) f++;
        }
        if (f) v = strtod(f, NULL);
    }
    free(s);
    return v;
}

/* On a GPU (skipped elsewhere): the CIFAR-shaped l2rw run of
 * test_runs_same_bits on cuda with the data uploaded and streamed (the
 * same bits: the gathers and crops are copies), resumed from its
 * step-2 checkpoint (the same bits: the GPU's reductions have a fixed
 * order), and against the CPU's run. CPU and GPU differ in GEMM
 * summation order (cuBLAS against OpenBLAS), a relative 1e-6 per
 * product that 4 steps at rate 0.01 carry into the parameters without
 * amplifying much: the test accuracy (30 images) may differ by one
 * image at most, 1/30, and the training loss by 1% relative. */
static void test_gpu_runs(void)
{
    l2rw_device cuda = {L2RW_DEVICE_CUDA, 0};
    if (l2rw_device_available(&cuda, NULL, 0) != L2RW_OK) {
        SKIP("no usable GPU: %s", l2rw_last_error());
        return;
    }
    if (!cli_available(0)) return;
    char dir[300], args[2048];
    snprintf(dir, sizeof dir, "%s/cifar", tmpdir); /* test_runs_same_bits' */
    const char *runs[][3] = {{"cuda", "device", "--steps 4"},
                             {"cuda", "host", "--steps 4"},
                             {"cuda", "device", "--steps 2"}};
    for (int r = 0; r < 3; r++) {
        snprintf(args, sizeof args,
                 "train --data cifar10:%s --model resnet8 --method l2rw "
                 "--noise uniform:0.4 --val-size 30 --batch 16 "
                 "--val-batch 10 %s --eval-every 2 --eval-batch 16 "
                 "--checkpoint-every 2 --threads 1 --seed 9 --no-plots "
                 "--quiet --device %s --data-place %s --out %s/gpu-%d",
                 dir, runs[r][2], runs[r][0], runs[r][1], tmpdir, r);
        cli_result res = run_cli(args);
        CHECK(res.rc == 0, "%s / %s: %s", runs[r][0], runs[r][1], res.err);
    }
    snprintf(args, sizeof args, "train --resume %s/gpu-2 --steps 4 "
             "--device cuda --threads 1 --quiet --no-plots", tmpdir);
    cli_result res = run_cli(args);
    CHECK(res.rc == 0, "resume on the GPU: %s", res.err);
    const char *files[] = {"model.l2rw", "metrics.csv", "examples.csv"};
    for (int f = 0; f < 3; f++)
        for (int r = 1; r < 3; r++) {
            char a[600], b[600];
            snprintf(a, sizeof a, "%s/gpu-0/%s", tmpdir, files[f]);
            snprintf(b, sizeof b, "%s/gpu-%d/%s", tmpdir, r, files[f]);
            CHECK(same_bytes(a, b), "GPU: %s of run %d (%s) differs from "
                  "the uploaded run's", files[f], r,
                  r == 1 ? "streamed" : "resumed");
        }
    /* against the CPU's run of test_runs_same_bits (run-0: the same
     * options, then a fine-tune phase that comes after its step-4 row) */
    char cpu[600], gpu[600];
    snprintf(cpu, sizeof cpu, "%s/run-0/metrics.csv", tmpdir);
    snprintf(gpu, sizeof gpu, "%s/gpu-0/metrics.csv", tmpdir);
    double cl = metric_at(cpu, 4, 2), ca = metric_at(cpu, 4, 3);
    double gl = metric_at(gpu, 4, 2), ga = metric_at(gpu, 4, 3);
    printf("   after 4 steps: train loss GPU %.6f CPU %.6f, test accuracy "
           "GPU %.4f CPU %.4f\n", gl, cl, ga, ca);
    CHECK(cl > 0 && gl > 0 && fabs(gl - cl) <= 0.01 * cl,
          "train loss GPU %.6f vs CPU %.6f (1%% relative)", gl, cl);
    CHECK(ca >= 0 && ga >= 0 && fabs(ga - ca) <= 1.0 / 30 + 1e-9,
          "test accuracy GPU %.4f vs CPU %.4f (one image in 30)", ga, ca);
}

/* A checkpoint keeps its device: a resume without --device continues
 * there (the same bits), a resume on another device says that it is the
 * same run to rounding only. */
static void test_resume_device(void)
{
    if (!cli_available(0)) return;
    char args[2048], sum[400];
    snprintf(args, sizeof args,
             "train --data cifar10:%s/cifar --model mlp:8 --val-size 30 "
             "--batch 16 --steps 2 --eval-every 0 --threads 1 --no-plots "
             "--quiet --device checked --out %s/resume-dev", tmpdir, tmpdir);
    cli_result r = run_cli(args);
    CHECK(r.rc == 0, "checked run: %s", r.err);
    snprintf(args, sizeof args, "train --resume %s/resume-dev --steps 3 "
             "--no-plots", tmpdir);
    r = run_cli(args);
    snprintf(sum, sizeof sum, "%s/resume-dev/summary.json", tmpdir);
    CHECK(r.rc == 0 && file_has(sum, "\"device\": \"checked\"") &&
              !strstr(r.out, "note: the checkpoint"),
          "resumed without --device: rc %d, %s", r.rc, r.out);
    snprintf(args, sizeof args, "train --resume %s/resume-dev --steps 4 "
             "--device cpu --no-plots", tmpdir);
    r = run_cli(args);
    CHECK(r.rc == 0 && file_has(sum, "\"device\": \"cpu\"") &&
              strstr(r.out, "note: the checkpoint was written on checked "
                            "and the run continues on cpu: the same run to "
                            "rounding, not bit for bit"),
          "resumed on the CPU: rc %d, %s", r.rc, r.out);
}

/* Bad --data-place values, and --tf32 anywhere but on CUDA: exit 2 and
 * one line naming the option. */
static void test_bad_options(void)
{
    l2rw_set_tf32(1);
    CHECK(l2rw_get_tf32() == 1, "tf32 on");
    l2rw_set_tf32(0);
    CHECK(l2rw_get_tf32() == 0, "tf32 off");
    if (!cli_available(0)) return;
    cli_result r = run_cli("train --data fashion-mnist --data-place gpu");
    CHECK(r.rc == 2 && strstr(r.err, "--data-place") &&
              strstr(r.err, "auto, device or host"),
          "--data-place gpu: rc %d, %s", r.rc, r.err);
    const char *tf32[] = {"train --data fashion-mnist --tf32",
                          "train --data fashion-mnist --tf32 --device checked",
                          "bench --tf32", "reproduce noise --tf32 --dry-run"};
    for (size_t i = 0; i < sizeof tf32 / sizeof tf32[0]; i++) {
        r = run_cli(tf32[i]);
        CHECK(r.rc == 2 && r.err_lines == 1 && strstr(r.err, "--tf32") &&
                  strstr(r.err, "--device cuda"),
              "%s: rc %d, %s", tf32[i], r.rc, r.err);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/l2rw-ddata-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp failed");
        return CHECK_DONE("test_device_data");
    }
    RUN(test_ops_match_host);
    RUN(test_runs_same_bits);
    RUN(test_gpu_runs);
    RUN(test_resume_device);
    RUN(test_bad_options);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return CHECK_DONE("test_device_data");
}
