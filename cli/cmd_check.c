/* l2rw check: run the library's self test (l2rw_self_check) and print
 * one line per check, then a summary line.
 *
 *   l2rw check [--quick] [--threads T] [--device D] [--verbose]
 *
 * With a device other than the CPU, the CPU checks run first (they prove
 * the reference right), then the device agreement checks
 * (l2rw_self_check_device: the same nets on the CPU and on D), after a
 * line naming the device; the summary counts both.
 *
 * Exit status: 0 when every check passed, 1 when one failed, 2 on bad
 * usage. */
#include "cmds.h"

#include <stdio.h>

#include "l2rw.h"
#include "opts.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct {
    int verbose;
} print_ctx;

static void print_check(void *ctx, const char *name, int passed,
                        double max_rel_err, const char *detail)
{
    const print_ctx *pc = ctx;
    printf("%-4s %-44s max rel err %.1e\n", passed ? "ok" : "FAIL", name,
           max_rel_err);
    /* A failure always says why; a pass only when asked. */
    if ((!passed || pc->verbose) && detail && *detail)
        printf("       %s\n", detail);
    fflush(stdout);
}

/* The device agreement checks after a line naming the device; their
 * counts are added to *sum. */
static l2rw_status check_device(print_ctx *pc, const l2rw_device *dev,
                                int quick, l2rw_check_summary *sum)
{
    char name[32], desc[512];
    l2rw_device_format(dev, name, sizeof name);
    l2rw_status s = l2rw_device_available(dev, desc, sizeof desc);
    if (s != L2RW_OK) return s;
    if (dev->kind == L2RW_DEVICE_CHECKED)
        snprintf(desc, sizeof desc, "the CPU's kernels on a guarded arena");
    printf("device %s: %s; against the CPU (%s)\n", name, desc,
           dev->kind == L2RW_DEVICE_CUDA ? "normwise tolerances"
                                         : "bit-identical required");
    fflush(stdout);
    l2rw_check_summary ds;
    s = l2rw_self_check_device(print_check, pc, dev, quick, &ds);
    if (s != L2RW_OK) return s;
    sum->passed += ds.passed;
    sum->failed += ds.failed;
    if (ds.max_rel_err > sum->max_rel_err || ds.max_rel_err != ds.max_rel_err)
        sum->max_rel_err = ds.max_rel_err;
    return L2RW_OK;
}

int l2rw_cmd_check(int argc, char **argv)
{
    int quick = 0, verbose = 0, threads = 0;
    const char *device = "cpu";
    opt_def opts[] = {
        {"quick", OPT_FLAG, &quick, NULL,
         "fewer coordinates, skip the largest model", 0, -1, 0},
        {"threads", OPT_INT, &threads, "T",
         "threads for OpenMP and BLAS (0 = all cores)", 0, 1024, 0},
        {"device", OPT_STR, &device, "cpu|cuda[:N]|checked",
         "also compare nets there with the CPU (cpu: CPU checks only)", 1,
         0, 0},
        {"verbose", OPT_FLAG, &verbose, NULL,
         "print the detail line of passing checks too", 0, -1, 0},
    };
    char err[OPTS_ERR_MAX];
    int rc = opts_parse(opts, (int)(sizeof opts / sizeof opts[0]), argc,
                        argv, "l2rw check", "usage: l2rw check [options]\n"
                        "Checks gradients, tangents, save/load and "
                        "determinism of the built library.",
                        stdout, NULL, 0, NULL, err, sizeof err);
    if (rc == 1) return 0;
    if (rc != 0) return opts_usage_error(err);
    l2rw_device dev;
    if (opts_device("l2rw check", device, 0, &dev)) return 2;
    l2rw_set_threads(threads);

    print_ctx pc = {verbose};
    l2rw_check_summary sum;
    l2rw_status s = l2rw_self_check(print_check, &pc, quick, &sum);
    if (s == L2RW_OK && dev.kind != L2RW_DEVICE_CPU)
        s = check_device(&pc, &dev, quick, &sum);
    if (s != L2RW_OK) {
        fprintf(stderr, "l2rw check: %s: %s\n", l2rw_strerror(s),
                l2rw_last_error());
        return EXIT_FAILED;
    }
    printf("%d checks passed, %d failed, largest relative error %.1e\n",
           sum.passed, sum.failed, sum.max_rel_err);
    return sum.failed == 0 && sum.passed > 0 ? 0 : EXIT_FAILED;
}
