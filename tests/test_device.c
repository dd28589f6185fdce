/* Device names and availability (l2rw_device_*), and the command's
 * --device on a machine where the device cannot be used: one line naming
 * why, exit status 2. This machine has no GPU: CUDA is refused with the
 * probe's reason (no driver, no device, or a build without CUDA). */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "l2rw.h"

static void test_parse(void)
{
    l2rw_device d;
    char buf[32];
    CHECK_OK(l2rw_device_parse("cpu", &d));
    CHECK(d.kind == L2RW_DEVICE_CPU && d.index == 0, "cpu");
    CHECK_OK(l2rw_device_parse("cuda", &d));
    CHECK(d.kind == L2RW_DEVICE_CUDA && d.index == 0, "cuda is cuda:0");
    CHECK_OK(l2rw_device_parse("cuda:3", &d));
    CHECK(d.kind == L2RW_DEVICE_CUDA && d.index == 3, "cuda:3");
    l2rw_device_format(&d, buf, sizeof buf);
    CHECK(strcmp(buf, "cuda:3") == 0, "format: %s", buf);
    const char *bad[] = {"gpu", "CUDA", "cuda:", "cuda:-1", "cuda:1x",
                         "cuda:99999999999", "", "cpu:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(l2rw_device_parse(bad[i], &d) == L2RW_ERR_ARG,
              "'%s' accepted", bad[i]);
        CHECK(strstr(l2rw_last_error(), "cpu, cuda, cuda:N or checked") !=
                  NULL,
              "'%s': %s", bad[i], l2rw_last_error());
    }
}

/* The CPU and the checking back end are always there; CUDA is refused
 * here with a reason of the probe's kinds. */
static void test_available(void)
{
    l2rw_device cpu = {L2RW_DEVICE_CPU, 0}, gpu = {L2RW_DEVICE_CUDA, 0};
    CHECK_OK(l2rw_device_available(&cpu, NULL, 0));
    char desc[256];
    l2rw_status s = l2rw_device_available(&gpu, desc, sizeof desc);
    CHECK(s == L2RW_ERR_UNSUPPORTED, "cuda: %s", l2rw_strerror(s));
    const char *why = l2rw_last_error();
    CHECK(strstr(why, "built without CUDA") || strstr(why, "driver") ||
              strstr(why, "no CUDA device"),
          "reason: %s", why);
    l2rw_device chk;
    CHECK_OK(l2rw_device_parse("checked", &chk));
    CHECK_OK(l2rw_device_available(&chk, NULL, 0));
    CHECK(!strchr(why, '\n'), "one line: %s", why);
    printf("   cuda:0 here: %s\n", why);
}

/* --device on the commands: exit 2 and the reason on one line. */
static void test_cli_device(void)
{
    if (!cli_available(0)) return;
    const char *cmds[] = {
        "train --data fashion-mnist --steps 1 --device cuda",
        "eval --load none.l2rw --data fashion-mnist --device cuda:1",
        "check --quick --device cuda", "bench --device cuda",
        "predict --load none.l2rw --data fashion-mnist --device cuda"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cli_result r = run_cli(cmds[i]);
        CHECK(r.rc == 2 && r.err_lines == 1 &&
                  strstr(r.err, "--device ") != NULL,
              "l2rw %s: rc %d, %s", cmds[i], r.rc, r.err);
    }
    cli_result r = run_cli("check --device tpu");
    CHECK(r.rc == 2 && strstr(r.err, "unknown device 'tpu'"), "tpu: %s",
          r.err);
}

/* Same bits on the checking back end as on the CPU (it runs the CPU's
 * kernels), through the whole loop: l2rw's tangent path (ResNet-8, batch
 * norm) and per-example path (MLP), evaluation, examples.csv, the model
 * file, and a checkpoint written on the CPU resumed on the device. The
 * checking back end faults on any host access to its memory, so the run
 * itself shows that the loop keeps device memory on the device. */
static void test_train_checked_same_bits(void)
{
    if (!cli_available(0)) return;
    char tr[300], trl[300], te[300], tel[300], args[4096];
    path_in(tr, sizeof tr, "train-img");
    path_in(trl, sizeof trl, "train-lab");
    path_in(te, sizeof te, "test-img");
    path_in(tel, sizeof tel, "test-lab");
    CHECK(write_idx(tr, trl, 240, 4, 1) == 0 &&
              write_idx(te, tel, 60, 4, 2) == 0,
          "data");
    const char *models[] = {"resnet8", "mlp:16"};
    const char *files[] = {"model.l2rw", "metrics.csv", "examples.csv"};
    for (int m = 0; m < 2; m++) {
        const char *runs[][2] = {{"cpu", "--steps 6"},
                                 {"checked", "--steps 6"},
                                 {"cpu", "--steps 3"}};
        for (int r = 0; r < 3; r++) {
            snprintf(args, sizeof args,
                     "train --data 'idx:%s,%s;%s,%s' --model %s --method l2rw "
                     "--noise uniform:0.3 --val-size 24 --batch 24 "
                     "--val-batch 12 --eval-every 2 --checkpoint-every 3 "
                     "--threads 1 --seed 5 --no-plots --quiet --device %s "
                     "%s --out %s/%s-%d",
                     tr, trl, te, tel, models[m], runs[r][0], runs[r][1],
                     tmpdir, models[m][0] == 'r' ? "r" : "m", r);
            cli_result res = run_cli(args);
            CHECK(res.rc == 0, "%s on %s: %s", models[m], runs[r][0],
                  res.err);
        }
        char sum[600];
        snprintf(sum, sizeof sum, "%s/%s-1/summary.json", tmpdir,
                 models[m][0] == 'r' ? "r" : "m");
        char *js = slurp(sum, NULL);
        CHECK(js && strstr(js, "\"device\": \"checked\""),
              "summary.json names the device");
        free(js);
        /* the CPU's checkpoint at step 3, continued on the device (with
         * the same thread count: it is not part of the checkpoint) */
        snprintf(args, sizeof args,
                 "train --resume %s/%s-2 --steps 6 --device checked --threads 1 "
                 "--quiet --no-plots", tmpdir, models[m][0] == 'r' ? "r" : "m");
        cli_result res = run_cli(args);
        CHECK(res.rc == 0, "%s resumed on checked: %s", models[m], res.err);
        for (int f = 0; f < 3; f++)
            for (int r = 1; r < 3; r++) {
                char a[600], b[600];
                const char *k = models[m][0] == 'r' ? "r" : "m";
                snprintf(a, sizeof a, "%s/%s-0/%s", tmpdir, k, files[f]);
                snprintf(b, sizeof b, "%s/%s-%d/%s", tmpdir, k, r, files[f]);
                CHECK(same_bytes(a, b), "%s: %s of run %d differs from the "
                      "CPU's", models[m], files[f], r);
            }
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/l2rw-device-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp failed");
        return CHECK_DONE("test_device");
    }
    RUN(test_parse);
    RUN(test_available);
    RUN(test_cli_device);
    RUN(test_train_checked_same_bits);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    return CHECK_DONE("test_device");
}
