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
        CHECK(strstr(l2rw_last_error(), "cpu, cuda or cuda:N") != NULL,
              "'%s': %s", bad[i], l2rw_last_error());
    }
}

/* The CPU is always there; CUDA is refused here with a reason of the
 * probe's kinds (a GPU machine gives the back end's own reason until nets
 * run on it). */
static void test_available(void)
{
    l2rw_device cpu = {L2RW_DEVICE_CPU, 0}, gpu = {L2RW_DEVICE_CUDA, 0};
    CHECK_OK(l2rw_device_available(&cpu, NULL, 0));
    char desc[256];
    l2rw_status s = l2rw_device_available(&gpu, desc, sizeof desc);
    CHECK(s == L2RW_ERR_UNSUPPORTED, "cuda: %s", l2rw_strerror(s));
    const char *why = l2rw_last_error();
    CHECK(strstr(why, "built without CUDA") || strstr(why, "driver") ||
              strstr(why, "no CUDA device") ||
              strstr(why, "does not run networks yet"),
          "reason: %s", why);
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
        "check --quick --device cuda", "bench --device cuda"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cli_result r = run_cli(cmds[i]);
        CHECK(r.rc == 2 && r.err_lines == 1 &&
                  strstr(r.err, "--device cuda") != NULL,
              "l2rw %s: rc %d, %s", cmds[i], r.rc, r.err);
    }
    cli_result r = run_cli("check --device tpu");
    CHECK(r.rc == 2 && strstr(r.err, "unknown device 'tpu'"), "tpu: %s",
          r.err);
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
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    return CHECK_DONE("test_device");
}
