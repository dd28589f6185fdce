/* Helpers of the tests that write files and run the command line: the
 * test's temporary directory (tmpdir, which the test creates with
 * mkdtemp) and paths in it, reading a file back, small generated IDX
 * data, and ./build/l2rw run with its exit status and output captured.
 *
 * Include it after check.h, with _POSIX_C_SOURCE 200809L defined before
 * any header. Every function is static and may go unused. */
#ifndef L2RW_TEST_UTIL_H
#define L2RW_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cli_path.h"

#if defined(__GNUC__)
#define TU_UNUSED __attribute__((unused))
#else
#define TU_UNUSED
#endif


enum {
    TU_IDX_SIDE = 8,  /* write_idx's images are TU_IDX_SIDE^2 pixels */
    TU_MSG_SIZE = 4096, /* bytes of stdout and stderr a cli_result keeps */
    TU_CIFAR_RECORD = 1 + 3 * 32 * 32 /* a label byte and the pixels */
};

/* A CIFAR-10 binary file of n records, labels cycling over 0..9. */
TU_UNUSED static int write_cifar(const char *path, int n, unsigned seed)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return 1;
    unsigned char rec[TU_CIFAR_RECORD];
    for (int i = 0; i < n; i++) {
        rec[0] = (unsigned char)(i % 10);
        for (int j = 1; j < TU_CIFAR_RECORD; j++) {
            seed = seed * 1103515245u + 12345u;
            /* class-dependent mean so that training has something to learn */
            rec[j] = (unsigned char)((seed >> 24) / 2 + 12 * rec[0]);
        }
        if (fwrite(rec, 1, sizeof rec, fp) != sizeof rec) {
            fclose(fp);
            return 1;
        }
    }
    return fclose(fp) != 0;
}

/* A CIFAR-10 folder dir (created): data_batch_1..5.bin of per_batch
 * records each, test_batch.bin of n_test. 0 on success. */
TU_UNUSED static int write_cifar_dir(const char *dir, int per_batch,
                                     int n_test)
{
    char path[512];
    if (mkdir(dir, 0755) != 0) return 1;
    for (int b = 1; b <= 5; b++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        if (write_cifar(path, per_batch, (unsigned)b)) return 1;
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    return write_cifar(path, n_test, 99u);
}

/* The test's temporary directory. */
TU_UNUSED static char tmpdir[256];

/* out = tmpdir/name */
TU_UNUSED static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

TU_UNUSED static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The file at path in a malloc'd buffer with a NUL after its bytes (so a
 * text file is a string); *len = its size when len is not NULL (0 when
 * it cannot be read). NULL when it cannot be read. */
TU_UNUSED static char *slurp(const char *path, long *len)
{
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
        fseek(fp, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* ---------------------------------------------------------------- data */

TU_UNUSED static void put_be32(FILE *fp, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, fp);
}

/* An IDX image file and label file of n TU_IDX_SIDE x TU_IDX_SIDE
 * examples of `classes` classes (label i % classes), each class a bright
 * quadrant (classes beyond 4 share them) plus noise drawn from seed.
 * Returns non-zero when a file cannot be written. */
TU_UNUSED static int write_idx(const char *img, const char *lab, int n,
                               int classes, uint64_t seed)
{
    enum { S = TU_IDX_SIDE };
    FILE *fi = fopen(img, "wb"), *fl = fopen(lab, "wb");
    int bad = !fi || !fl;
    if (!bad) {
        put_be32(fi, 0x803);
        put_be32(fi, (uint32_t)n);
        put_be32(fi, S);
        put_be32(fi, S);
        put_be32(fl, 0x801);
        put_be32(fl, (uint32_t)n);
    }
    uint64_t s = seed;
    for (int i = 0; !bad && i < n; i++) {
        int k = i % classes;
        unsigned char px[S * S];
        for (int p = 0; p < S * S; p++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int r = p / S, c = p % S;
            int quad = (r >= S / 2) * 2 + (c >= S / 2);
            px[p] = (unsigned char)((int)(s >> 58) +
                                    (quad == k % 4 ? 150 : 30));
        }
        fwrite(px, 1, sizeof px, fi);
        unsigned char y = (unsigned char)k;
        fwrite(&y, 1, 1, fl);
    }
    if (fi) bad |= ferror(fi) || fclose(fi) != 0;
    if (fl) bad |= ferror(fl) || fclose(fl) != 0;
    return bad;
}

/* ----------------------------------------------------------- the CLI */

/* The CLI cases run the uninstrumented ./build/l2rw: once, in the plain
 * pass. Under L2RW_SANITIZED: SKIP and 1. */
TU_UNUSED static int cli_sanitized_pass(void)
{
    if (!getenv("L2RW_SANITIZED")) return 0;
    SKIP("sanitized pass: runs the uninstrumented %s; the plain pass "
         "covers it", TU_CLI);
    return 1;
}

/* Whether the files at a and b hold the same bytes (both readable). */
TU_UNUSED static int same_bytes(const char *a, const char *b)
{
    long la = 0, lb = 0;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, (size_t)la) == 0;
    free(x);
    free(y);
    return same;
}

/* Whether the CLI cases can run here: not in the sanitized pass (SKIP),
 * not without ./build/l2rw (a failed CHECK when missing_fails, else
 * SKIP). */
TU_UNUSED static int cli_available(int missing_fails)
{
    if (cli_sanitized_pass()) return 0;
    if (access(TU_CLI, X_OK) == 0) return 1;
    if (missing_fails)
        CHECK(0, "%s not built", TU_CLI);
    else
        SKIP("%s not built", TU_CLI);
    return 0;
}

typedef struct {
    int rc;                 /* exit status, -1 when killed */
    int err_lines;          /* lines on stderr */
    char out[TU_MSG_SIZE];  /* stdout (start of) */
    char err[TU_MSG_SIZE];  /* stderr (start of) */
} cli_result;

/* Runs TU_CLI ARGS with stdout into out_path and stderr into
 * err_path (NULL: stdout.txt and stderr.txt in tmpdir), both read back
 * into the result. */
TU_UNUSED static cli_result run_cli_to(const char *args, const char *out_path,
                                       const char *err_path)
{
    cli_result r;
    char cmd[10240], outd[512], errd[512];
    const char *outf = out_path, *errf = err_path;
    if (!outf) {
        path_in(outd, sizeof outd, "stdout.txt");
        outf = outd;
    }
    if (!errf) {
        path_in(errd, sizeof errd, "stderr.txt");
        errf = errd;
    }
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", TU_CLI, args, outf, errf);
    int st = system(cmd);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char *o = slurp(outf, NULL), *e = slurp(errf, NULL);
    snprintf(r.out, sizeof r.out, "%s", o ? o : "");
    snprintf(r.err, sizeof r.err, "%s", e ? e : "");
    r.err_lines = 0;
    for (const char *q = e; q && *q; q++) r.err_lines += *q == '\n';
    free(o);
    free(e);
    return r;
}

/* run_cli_to with stdout and stderr in tmpdir. */
TU_UNUSED static cli_result run_cli(const char *args)
{
    return run_cli_to(args, NULL, NULL);
}

#endif
