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

static int same_file(const char *a, const char *b)
{
    long la = 0, lb = 0;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, (size_t)la) == 0;
    free(x);
    free(y);
    return same;
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
            CHECK(same_file(a, b), "%s of %s / %s differs from the CPU's",
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

static void test_bad_place(void)
{
    if (!cli_available(0)) return;
    cli_result r = run_cli("train --data fashion-mnist --data-place gpu");
    CHECK(r.rc == 2 && strstr(r.err, "--data-place") &&
              strstr(r.err, "auto, device or host"),
          "--data-place gpu: rc %d, %s", r.rc, r.err);
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
    RUN(test_bad_place);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return CHECK_DONE("test_device_data");
}
