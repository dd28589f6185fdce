/* Readers: round trips of small generated IDX (raw and gzip), CIFAR,
 * CSV and .npy files, every bad-input case of the data issue, the data
 * spec parser, and the real Fashion-MNIST files when installed. */
#define _POSIX_C_SOURCE 200809L
#include "l2rw.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------ temp files */

#define MAX_TMP 256
static char tmp_paths[MAX_TMP][64];
static int n_tmp;

/* A new unique empty file name in /tmp (removed at exit). */
static const char *tmp_name(const char *suffix)
{
    char *p = tmp_paths[n_tmp++];
    snprintf(p, 64, "/tmp/l2rw_data_XXXXXX");
    int fd = mkstemp(p);
    if (fd >= 0) close(fd);
    if (suffix && *suffix) {
        /* Keep the unique stem, add the suffix: rename the placeholder. */
        char q[64];
        snprintf(q, sizeof q, "%s%s", p, suffix);
        rename(p, q);
        snprintf(p, 64, "%s", q);
    }
    return p;
}

static void tmp_cleanup(void)
{
    for (int i = 0; i < n_tmp; i++) remove(tmp_paths[i]);
}

static const char *write_bytes(const void *b, size_t n, int gz)
{
    const char *p = tmp_name(gz ? ".gz" : "");
    if (gz) {
        gzFile f = gzopen(p, "wb");
        if (n) gzwrite(f, b, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(p, "wb");
        fwrite(b, 1, n, f);
        fclose(f);
    }
    return p;
}

static const char *write_text(const char *s)
{
    return write_bytes(s, strlen(s), 0);
}

static int err_names(const char *what)
{
    return strstr(l2rw_last_error(), what) != NULL;
}

/* Expect status st from a reader and a message naming `what`. */
#define CHECK_FAIL(expr, st, what)                                           \
    do {                                                                     \
        l2rw_status s_ = (expr);                                             \
        CHECK(s_ == (st), "%s -> %s, expected %s (%s)", #expr,               \
              l2rw_strerror(s_), l2rw_strerror(st), l2rw_last_error());      \
        CHECK(err_names(what), "%s: message '%s' does not name '%s'", #expr, \
              l2rw_last_error(), (what));                                    \
    } while (0)

/* ------------------------------------------------------------------- IDX */

enum { IDX_N = 5, IDX_H = 3, IDX_W = 4 };

static size_t make_idx_images(unsigned char *b, int n, int h, int w)
{
    unsigned char hdr[16] = {0, 0, 8, 3};
    uint32_t d[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            hdr[4 + 4 * i + k] = (unsigned char)(d[i] >> (24 - 8 * k));
    memcpy(b, hdr, 16);
    for (int i = 0; i < n * h * w; i++) b[16 + i] = (unsigned char)(i * 7);
    return 16 + (size_t)n * h * w;
}

static size_t make_idx_labels(unsigned char *b, int n, int first_label)
{
    unsigned char hdr[8] = {0, 0, 8, 1, 0, 0, 0, (unsigned char)n};
    memcpy(b, hdr, 8);
    for (int i = 0; i < n; i++) b[8 + i] = (unsigned char)(first_label + i);
    return 8 + (size_t)n;
}

static void test_idx(void)
{
    unsigned char img[16 + IDX_N * IDX_H * IDX_W + 8], lab[8 + IDX_N + 4];
    size_t il = make_idx_images(img, IDX_N, IDX_H, IDX_W);
    size_t ll = make_idx_labels(lab, IDX_N, 0);
    for (int gz = 0; gz <= 1; gz++) {
        const char *pi = write_bytes(img, il, gz), *pl = write_bytes(lab, ll, gz);
        l2rw_dataset d;
        CHECK_OK(l2rw_load_idx(&d, pi, pl, 0));
        CHECK(d.n == IDX_N && d.c == 1 && d.h == IDX_H && d.w == IDX_W,
              "idx shape %d %d %d %d", d.n, d.c, d.h, d.w);
        CHECK(d.classes == IDX_N, "inferred classes %d", d.classes);
        int ok = 1;
        for (int i = 0; i < IDX_N * IDX_H * IDX_W; i++)
            ok &= d.x[i] == (unsigned char)(i * 7) / 255.0f;
        for (int i = 0; i < IDX_N; i++)
            ok &= d.y[i] == i && d.y_true[i] == i && d.id[i] == i;
        CHECK(ok, "idx round trip values (gz=%d)", gz);
        l2rw_dataset_free(&d);
        CHECK(d.x == NULL && d.n == 0, "free zeroes the struct");
    }
    const char *pl = write_bytes(lab, ll, 0), *pi = write_bytes(img, il, 0);
    l2rw_dataset d;
    /* missing file */
    CHECK_FAIL(l2rw_load_idx(&d, "/nonexistent/im.idx", pl, 0), L2RW_ERR_IO,
               "/nonexistent/im.idx");
    CHECK(d.x == NULL && d.n == 0, "output zeroed on failure");
    /* labels outside the forced class range */
    CHECK_FAIL(l2rw_load_idx(&d, pi, pl, 3), L2RW_ERR_LABEL, pl);
    /* wrong magic */
    unsigned char bad[sizeof img];
    memcpy(bad, img, il);
    bad[0] = 1;
    CHECK_FAIL(l2rw_load_idx(&d, write_bytes(bad, il, 0), pl, 0),
               L2RW_ERR_FORMAT, "magic");
    /* unsupported element type (float) */
    memcpy(bad, img, il);
    bad[2] = 0x0D;
    CHECK_FAIL(l2rw_load_idx(&d, write_bytes(bad, il, 0), pl, 0),
               L2RW_ERR_FORMAT, "type");
    /* truncated data, truncated header, empty file */
    CHECK_FAIL(l2rw_load_idx(&d, write_bytes(img, il - 1, 0), pl, 0),
               L2RW_ERR_FORMAT, "truncated");
    CHECK_FAIL(l2rw_load_idx(&d, write_bytes(img, 10, 0), pl, 0),
               L2RW_ERR_FORMAT, "truncated");
    CHECK_FAIL(l2rw_load_idx(&d, write_bytes(img, 0, 0), pl, 0),
               L2RW_ERR_FORMAT, "truncated");
    /* trailing data */
    memcpy(bad, img, il);
    bad[il] = 1;
    CHECK_FAIL(l2rw_load_idx(&d, write_bytes(bad, il + 1, 0), pl, 0),
               L2RW_ERR_FORMAT, "trailing");
    /* header sizes whose product overflows 64 bits */
    memcpy(bad, img, il);
    memset(bad + 4, 0xFF, 12);
    CHECK_FAIL(l2rw_load_idx(&d, write_bytes(bad, il, 0), pl, 0),
               L2RW_ERR_FORMAT, "header sizes");
    /* dimension 0 */
    memcpy(bad, img, il);
    memset(bad + 8, 0, 4);
    CHECK_FAIL(l2rw_load_idx(&d, write_bytes(bad, il, 0), pl, 0),
               L2RW_ERR_FORMAT, "dimension");
    /* image and label counts differ */
    unsigned char lab4[8 + IDX_N];
    size_t l4 = make_idx_labels(lab4, IDX_N - 1, 0);
    CHECK_FAIL(l2rw_load_idx(&d, pi, write_bytes(lab4, l4, 0), 0),
               L2RW_ERR_FORMAT, "labels");
    /* labels file with 2 dimensions */
    memcpy(bad, lab, ll);
    bad[3] = 2;
    CHECK_FAIL(l2rw_load_idx(&d, pi, write_bytes(bad, ll, 0), 0),
               L2RW_ERR_FORMAT, "dimensions");
    /* truncated gzip stream */
    const char *gz = write_bytes(img, il, 1);
    struct stat st;
    stat(gz, &st);
    CHECK(truncate(gz, st.st_size / 2) == 0, "truncate");
    CHECK_FAIL(l2rw_load_idx(&d, gz, pl, 0), L2RW_ERR_FORMAT, gz);
    /* a directory instead of a file */
    CHECK_FAIL(l2rw_load_idx(&d, "/tmp", pl, 0), L2RW_ERR_IO, "/tmp");
}

/* ----------------------------------------------------------------- CIFAR */

enum { REC_PIX = 3072 };

static unsigned char *make_cifar(int n, int label_bytes, int label_mod,
                                 size_t *len)
{
    size_t rec = (size_t)label_bytes + REC_PIX;
    unsigned char *b = malloc((size_t)n * rec);
    for (int i = 0; i < n; i++) {
        unsigned char *r = b + (size_t)i * rec;
        r[0] = (unsigned char)(i % 20);         /* coarse (or only) label */
        if (label_bytes == 2) r[1] = (unsigned char)((i * 13) % label_mod);
        for (int p = 0; p < REC_PIX; p++)
            r[label_bytes + p] = (unsigned char)(i + p);
    }
    *len = (size_t)n * rec;
    return b;
}

static void test_cifar(void)
{
    size_t len;
    unsigned char *b10 = make_cifar(4, 1, 10, &len);
    l2rw_dataset d, t;
    const char *p10 = write_bytes(b10, len, 0);
    CHECK_OK(l2rw_load_cifar_file(&d, p10, L2RW_CIFAR10));
    CHECK(d.n == 4 && d.c == 3 && d.h == 32 && d.w == 32 && d.classes == 10,
          "cifar10 shape");
    CHECK(d.y[3] == 3 && d.x[(size_t)2 * REC_PIX + 5] == 7 / 255.0f &&
              d.x[(size_t)3 * REC_PIX + 1024] == (unsigned char)(3 + 1024) / 255.0f,
          "cifar10 values (channel-major copy)");
    l2rw_dataset_free(&d);
    /* not a multiple of the record, empty, label 10 of CIFAR-10 */
    CHECK_FAIL(l2rw_load_cifar_file(&d, write_bytes(b10, len - 7, 0),
                                    L2RW_CIFAR10),
               L2RW_ERR_FORMAT, "multiple");
    CHECK_FAIL(l2rw_load_cifar_file(&d, write_bytes(b10, 0, 0), L2RW_CIFAR10),
               L2RW_ERR_FORMAT, "empty");
    b10[REC_PIX + 1] = 10;
    const char *pbad = write_bytes(b10, len, 0);
    CHECK_FAIL(l2rw_load_cifar_file(&d, pbad, L2RW_CIFAR10), L2RW_ERR_LABEL,
               pbad);
    free(b10);

    unsigned char *b100 = make_cifar(6, 2, 100, &len);
    const char *p100 = write_bytes(b100, len, 1);
    CHECK_OK(l2rw_load_cifar_file(&d, p100, L2RW_CIFAR100_FINE));
    CHECK(d.classes == 100 && d.y[5] == 65, "cifar100 fine label %d", d.y[5]);
    l2rw_dataset_free(&d);
    CHECK_OK(l2rw_load_cifar_file(&d, p100, L2RW_CIFAR100_COARSE));
    CHECK(d.classes == 20 && d.y[5] == 5, "cifar100 coarse label %d", d.y[5]);
    l2rw_dataset_free(&d);
    /* CIFAR-10 file read as CIFAR-100: record size does not divide */
    size_t len10;
    unsigned char *b10b = make_cifar(4, 1, 10, &len10);
    CHECK_FAIL(l2rw_load_cifar_file(&d, write_bytes(b10b, len10, 0),
                                    L2RW_CIFAR100_FINE),
               L2RW_ERR_FORMAT, "record");
    free(b10b);
    b100[1] = 100;
    CHECK_FAIL(l2rw_load_cifar_file(&d, write_bytes(b100, len, 0),
                                    L2RW_CIFAR100_FINE),
               L2RW_ERR_LABEL, "label");
    free(b100);

    /* A CIFAR-10 directory in the tarball's subdirectory, via the spec. */
    char dir[64] = "/tmp/l2rw_cifar_XXXXXX", sub[128], path[160];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    mkdir(sub, 0700);
    unsigned char *bb = make_cifar(3, 1, 10, &len);
    for (int i = 1; i <= 6; i++) {
        if (i <= 5) snprintf(path, sizeof path, "%s/data_batch_%d.bin", sub, i);
        else snprintf(path, sizeof path, "%s/test_batch.bin", sub);
        FILE *f = fopen(path, "wb");
        fwrite(bb, 1, len, f);
        fclose(f);
    }
    free(bb);
    char spec[200];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    CHECK(d.n == 15 && t.n == 3 && d.id[14] == 14, "cifar dir: %d train, %d "
          "test", d.n, t.n);
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
    /* a missing batch file is an IO error naming it */
    snprintf(path, sizeof path, "%s/data_batch_4.bin", sub);
    remove(path);
    CHECK_FAIL(l2rw_data_load(spec, &d, &t), L2RW_ERR_IO, "data_batch_4.bin");
    CHECK(d.x == NULL && t.x == NULL, "outputs freed on failure");
    for (int i = 1; i <= 6; i++) {
        if (i <= 5) snprintf(path, sizeof path, "%s/data_batch_%d.bin", sub, i);
        else snprintf(path, sizeof path, "%s/test_batch.bin", sub);
        remove(path);
    }
    rmdir(sub);
    rmdir(dir);
}

/* ------------------------------------------------------------------- CSV */

static void test_csv(void)
{
    l2rw_dataset d, t;
    l2rw_csv_opts o = l2rw_csv_opts_default();
    const char *p = write_text("a,b,label\n1.5,2,1\n-3,4e1,0\r\n\n5,6,2\n");
    CHECK_OK(l2rw_load_csv(&d, p, &o));
    CHECK(d.n == 3 && d.c == 2 && d.h == 1 && d.w == 1 && d.classes == 3,
          "csv shape %d x %d, %d classes", d.n, d.c, d.classes);
    CHECK(d.x[0] == 1.5f && d.x[1] == 2 && d.x[2] == -3 && d.x[3] == 40 &&
              d.y[0] == 1 && d.y[1] == 0 && d.y[2] == 2,
          "csv values");
    l2rw_dataset_free(&d);
    /* label by name, in the first column */
    const char *p2 = write_text("y, f1 ,\"f2\"\n0,1,2\n1,3,4\n");
    o.label_name = "y";
    CHECK_OK(l2rw_load_csv(&d, p2, &o));
    CHECK(d.c == 2 && d.x[2] == 3 && d.y[1] == 1, "csv label by name");
    l2rw_dataset_free(&d);
    o = l2rw_csv_opts_default();
    o.label_index = 0;
    o.header = 0;
    const char *p3 = write_text("2,0.5\n0,0.25\n");
    CHECK_OK(l2rw_load_csv(&d, p3, &o));
    CHECK(d.n == 2 && d.c == 1 && d.y[0] == 2 && d.x[1] == 0.25f,
          "csv no header, label index 0");
    l2rw_dataset_free(&d);

    /* Through the spec: test file, then held-out fraction. */
    char spec[256];
    const char *tr = write_text("1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,10,1\n");
    const char *te = write_text("1,1,1\n2,2,0\n");
    snprintf(spec, sizeof spec, "csv:%s;%s,label=-1,header=0", tr, te);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    CHECK(d.n == 5 && t.n == 2 && d.classes == 2 && t.classes == 2,
          "csv spec with test file: %d %d", d.n, t.n);
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
    snprintf(spec, sizeof spec, "csv:%s,frac=0.4", tr);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    CHECK(d.n == 3 && t.n == 2, "csv held-out 0.4: %d + %d", d.n, t.n);
    int seen[5] = {0};
    for (int i = 0; i < d.n; i++) seen[d.id[i]]++;
    for (int i = 0; i < t.n; i++) seen[t.id[i]]++;
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1 &&
              seen[4] == 1,
          "held-out split is a partition of the file");
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);

    o = l2rw_csv_opts_default();
    CHECK_FAIL(l2rw_load_csv(&d, "/nonexistent.csv", &o), L2RW_ERR_IO,
               "/nonexistent.csv");
    const char *q;
    q = write_text("1,2,0\n3,x,1\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "not a number");
    CHECK(err_names(q) && err_names(":2:"), "names file and line: %s",
          l2rw_last_error());
    q = write_text("1,2,0\n3,nan,1\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "NaN");
    q = write_text("1,2,0\n3,-inf,1\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "finite");
    q = write_text("1,2,0\n3,,1\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "empty");
    q = write_text("1,2,0\n3,4,5,1\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "ragged");
    q = write_text("1,2,0\n3,4\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "ragged");
    q = write_text("1,2,0\n3,4,1.5\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_LABEL, "label");
    q = write_text("1,2,0\n3,4,-1\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_LABEL, "label");
    q = write_text("1,2,0\n3,4,1e300\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_LABEL, "label");
    q = write_text("1,2,0\n3,1e300,1\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "float range");
    q = write_text("a,b,c\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "no data");
    q = write_text("\n\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "no rows");
    q = write_text("1\n2\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "feature");
    const char nul[] = "1,2,0\n3,4\0,1\n";
    q = write_bytes(nul, sizeof nul - 1, 0);
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_FORMAT, "not a number");
    o.classes = 2;
    q = write_text("1,2,0\n3,4,2\n");
    CHECK_FAIL(l2rw_load_csv(&d, q, &o), L2RW_ERR_LABEL, "outside");
    o = l2rw_csv_opts_default();
    o.label_name = "zz";
    CHECK_FAIL(l2rw_load_csv(&d, p, &o), L2RW_ERR_ARG, "zz");
    o = l2rw_csv_opts_default();
    o.label_index = 7;
    CHECK_FAIL(l2rw_load_csv(&d, p, &o), L2RW_ERR_ARG, "column");
    /* forced header=0 on a file with a header: the header is bad data */
    o = l2rw_csv_opts_default();
    o.header = 0;
    CHECK_FAIL(l2rw_load_csv(&d, p, &o), L2RW_ERR_FORMAT, ":1:");
}

/* ------------------------------------------------------------------- npy */

/* A .npy file: version 1.0 header padded to a multiple of 64. */
static const char *write_npy(const char *descr, const char *fortran,
                             const char *shape, const void *data,
                             size_t bytes, int major)
{
    char dict[256];
    int dl = snprintf(dict, sizeof dict,
                      "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                      descr, fortran, shape);
    size_t pre = major == 1 ? 10 : 12;
    size_t hl = (size_t)dl + 1;
    hl += (64 - (pre + hl) % 64) % 64;
    unsigned char *b = calloc(1, pre + hl + bytes);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)(hl & 0xFF);
    b[9] = (unsigned char)(hl >> 8);
    memset(b + pre, ' ', hl);
    memcpy(b + pre, dict, (size_t)dl);
    b[pre + hl - 1] = '\n';
    if (bytes) memcpy(b + pre + hl, data, bytes);
    const char *p = write_bytes(b, pre + hl + bytes, 0);
    free(b);
    return p;
}

static void test_npy(void)
{
    float xf[6 * 2 * 3];
    unsigned char xu[4 * 5];
    int32_t y4[6] = {0, 1, 2, 0, 1, 3};
    int64_t y8[4] = {1, 0, 1, 2};
    unsigned char yu[6] = {0, 1, 2, 0, 1, 3};
    for (int i = 0; i < 36; i++) xf[i] = (float)i * 0.5f - 3;
    for (int i = 0; i < 20; i++) xu[i] = (unsigned char)(i * 12);
    l2rw_dataset d, t;
    const char *xp = write_npy("<f4", "False", "(6, 2, 3)", xf, sizeof xf, 1);
    const char *yp = write_npy("<i4", "False", "(6,)", y4, sizeof y4, 1);
    CHECK_OK(l2rw_load_npy(&d, xp, yp, 0));
    CHECK(d.n == 6 && d.c == 1 && d.h == 2 && d.w == 3 && d.classes == 4,
          "npy f4 (N,H,W) shape %d %d %d %d", d.n, d.c, d.h, d.w);
    CHECK(d.x[35] == 14.5f && d.y[5] == 3, "npy f4 values");
    l2rw_dataset_free(&d);
    const char *xp2 = write_npy("|u1", "False", "(4, 5)", xu, sizeof xu, 2);
    const char *yp2 = write_npy("<i8", "False", "(4, 1)", y8, sizeof y8, 1);
    CHECK_OK(l2rw_load_npy(&d, xp2, yp2, 0));
    CHECK(d.n == 4 && d.c == 5 && d.h == 1 && d.w == 1 && d.classes == 3,
          "npy u1 (N,D) v2 shape");
    CHECK(d.x[19] == (unsigned char)(19 * 12) / 255.0f && d.y[3] == 2,
          "npy u1 values");
    l2rw_dataset_free(&d);
    const char *yp3 = write_npy("|u1", "False", "(6,)", yu, sizeof yu, 1);
    char spec[300];
    snprintf(spec, sizeof spec, "npy:%s,%s;%s,%s", xp, yp3, xp, yp);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    CHECK(d.n == 6 && t.n == 6 && d.classes == 4, "npy spec with test pair");
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
    /* 4-d (N, C, H, W) and 5-d folding */
    const char *x4 = write_npy("<f4", "False", "(3, 2, 3, 2)", xf, sizeof xf, 1);
    const char *y3 = write_npy("<i4", "False", "(3,)", y4, 12, 1);
    CHECK_OK(l2rw_load_npy(&d, x4, y3, 0));
    CHECK(d.c == 2 && d.h == 3 && d.w == 2, "npy 4-d shape");
    l2rw_dataset_free(&d);
    const char *x5 = write_npy("<f4", "False", "(3, 2, 1, 3, 2)", xf,
                               sizeof xf, 1);
    CHECK_OK(l2rw_load_npy(&d, x5, y3, 0));
    CHECK(d.c == 2 && d.h == 1 && d.w == 6, "npy 5-d folded into w");
    l2rw_dataset_free(&d);

    CHECK_FAIL(l2rw_load_npy(&d, "/nonexistent.npy", yp, 0), L2RW_ERR_IO,
               "/nonexistent.npy");
    const char *b;
    b = write_npy("<f8", "False", "(6, 6)", xf, 6 * 6 * 8 / 2, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "<f8");
    b = write_npy(">f4", "False", "(6, 2, 3)", xf, sizeof xf, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "dtype");
    b = write_npy("<f4", "True", "(6, 2, 3)", xf, sizeof xf, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "Fortran");
    b = write_npy("<f4", "False", "(6, 2, 3)", xf, sizeof xf - 4, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "truncated");
    b = write_npy("<f4", "False", "(5, 2, 3)", xf, sizeof xf, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "trailing");
    b = write_npy("<f4", "False", "(4294967296, 4294967296, 4294967296)", xf,
                  sizeof xf, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "shape");
    b = write_npy("<f4", "False", "(99999999999999999999999, 2)", xf,
                  sizeof xf, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "overflow");
    b = write_npy("<f4", "False", "()", xf, 4, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "axis");
    b = write_npy("<f4", "False", "(6, 0)", xf, 0, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "size 0");
    b = write_npy("<f4", "False", "(6, 2, 3)", xf, sizeof xf, 4);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "version");
    float xn[36];
    memcpy(xn, xf, sizeof xn);
    xn[17] = NAN;
    b = write_npy("<f4", "False", "(6, 2, 3)", xn, sizeof xn, 1);
    CHECK_FAIL(l2rw_load_npy(&d, b, yp, 0), L2RW_ERR_FORMAT, "finite");
    /* labels: count, shape, dtype, negative, out of the given range */
    CHECK_FAIL(l2rw_load_npy(&d, xp, y3, 0), L2RW_ERR_FORMAT, "labels");
    b = write_npy("<i4", "False", "(3, 2)", y4, sizeof y4, 1);
    CHECK_FAIL(l2rw_load_npy(&d, x4, b, 0), L2RW_ERR_FORMAT, "shape");
    b = write_npy("<f4", "False", "(6,)", xf, 24, 1);
    CHECK_FAIL(l2rw_load_npy(&d, xp, b, 0), L2RW_ERR_FORMAT, "label dtype");
    int32_t yneg[6] = {0, 1, -2, 0, 1, 3};
    b = write_npy("<i4", "False", "(6,)", yneg, sizeof yneg, 1);
    CHECK_FAIL(l2rw_load_npy(&d, xp, b, 0), L2RW_ERR_LABEL, "-2");
    CHECK_FAIL(l2rw_load_npy(&d, xp, yp, 3), L2RW_ERR_LABEL, "outside");
    /* header damage: bad magic, header length beyond the file, no shape */
    unsigned char raw[16] = "\x93NUMPX\x01\x00\x10\x00";
    CHECK_FAIL(l2rw_load_npy(&d, write_bytes(raw, 16, 0), yp, 0),
               L2RW_ERR_FORMAT, "magic");
    memcpy(raw, "\x93NUMPY\x01\x00\xff\x7f", 10);
    CHECK_FAIL(l2rw_load_npy(&d, write_bytes(raw, 16, 0), yp, 0),
               L2RW_ERR_FORMAT, "header length");
    static const char nos[] = "\x93NUMPY\x01\x00\x28\x00{'descr': '<f4', "
                              "'fortran_order': False}";
    CHECK_FAIL(l2rw_load_npy(&d, write_bytes(nos, sizeof nos - 1, 0), yp, 0),
               L2RW_ERR_FORMAT, "shape");
}

/* ------------------------------------------------------------------ spec */

static void test_spec(void)
{
    l2rw_dataset d, t;
    CHECK_FAIL(l2rw_data_load("bogus:x", &d, &t), L2RW_ERR_ARG, "unknown kind");
    CHECK_FAIL(l2rw_data_load("", &d, &t), L2RW_ERR_ARG, "empty");
    CHECK_FAIL(l2rw_data_load("mnist", &d, &t), L2RW_ERR_ARG, "directory");
    CHECK_FAIL(l2rw_data_load("mnist:", &d, &t), L2RW_ERR_ARG, "nothing");
    CHECK_FAIL(l2rw_data_load("idx:a", &d, &t), L2RW_ERR_ARG, "IMAGES");
    CHECK_FAIL(l2rw_data_load("npy:a,b,c", &d, &t), L2RW_ERR_ARG, "too many");
    CHECK_FAIL(l2rw_data_load("csv:a,frac=2", &d, &t), L2RW_ERR_ARG, "frac");
    CHECK_FAIL(l2rw_data_load("csv:a,wat=1", &d, &t), L2RW_ERR_ARG, "wat");
    CHECK_FAIL(l2rw_data_load("csv:a,header=maybe", &d, &t), L2RW_ERR_ARG,
               "header");
    CHECK_FAIL(l2rw_data_load("idx:a,b,label=3", &d, &t), L2RW_ERR_ARG,
               "label");
    CHECK_FAIL(l2rw_data_load("csv:a;b;c", &d, &t), L2RW_ERR_ARG, "';'");
    CHECK_FAIL(l2rw_data_load("csv:a,,b", &d, &t), L2RW_ERR_ARG, "empty");
    CHECK_FAIL(l2rw_data_load("cifar100:/x,labels=medium", &d, &t),
               L2RW_ERR_ARG, "labels");
    CHECK_FAIL(l2rw_data_load("fashion-mnist:/nonexistent/dir", &d, &t),
               L2RW_ERR_IO, "/nonexistent/dir");
    CHECK_FAIL(l2rw_data_load("csv:/nonexistent/f.csv", &d, &t), L2RW_ERR_IO,
               "/nonexistent/f.csv");
    CHECK(d.x == NULL && t.x == NULL && d.n == 0, "zeroed after failure");
    /* idx with a held-out part and a class count given */
    unsigned char img[16 + IDX_N * IDX_H * IDX_W], lab[8 + IDX_N];
    size_t il = make_idx_images(img, IDX_N, IDX_H, IDX_W);
    size_t ll = make_idx_labels(lab, IDX_N, 0);
    const char *pi = write_bytes(img, il, 1), *pl = write_bytes(lab, ll, 0);
    char spec[256];
    snprintf(spec, sizeof spec, "idx:%s,%s,classes=12,frac=0.2,split-seed=3",
             pi, pl);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    CHECK(d.n == 4 && t.n == 1 && d.classes == 12 && t.classes == 12 &&
              t.c == 1 && t.h == IDX_H,
          "idx spec held out: %d + %d, %d classes", d.n, t.n, d.classes);
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
    snprintf(spec, sizeof spec, "idx:%s,%s,frac=0", pi, pl);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    CHECK(d.n == 5 && t.n == 0 && t.h == IDX_H, "frac=0: empty test set");
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
}

/* An mnist:DIR directory with raw train files and gzip test files named
 * as MNIST's distribution names them. */
static void test_mnist_dir(void)
{
    char dir[64] = "/tmp/l2rw_mnist_XXXXXX", p[4][160], spec[100];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                            "t10k-images-idx3-ubyte.gz",
                            "t10k-labels-idx1-ubyte.gz"};
    unsigned char img[16 + IDX_N * IDX_H * IDX_W], lab[8 + IDX_N];
    size_t il = make_idx_images(img, IDX_N, IDX_H, IDX_W);
    size_t ll = make_idx_labels(lab, IDX_N, 5);
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
        gzFile f = gzopen(p[i], i < 2 ? "wbT" : "wb"); /* T: no compression */
        gzwrite(f, i % 2 ? lab : img, (unsigned)(i % 2 ? ll : il));
        gzclose(f);
    }
    l2rw_dataset d, t;
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    CHECK(d.n == IDX_N && t.n == IDX_N && d.classes == 10 && d.y[4] == 9,
          "mnist dir: %d/%d, %d classes", d.n, t.n, d.classes);
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
    /* (Fashion-)MNIST has 10 classes: label 10 is out of range. */
    ll = make_idx_labels(lab, IDX_N, 6);
    FILE *f = fopen(p[1], "wb");
    fwrite(lab, 1, ll, f);
    fclose(f);
    CHECK_FAIL(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, p[1]);
    for (int i = 0; i < 4; i++) remove(p[i]);
    rmdir(dir);
}

/* ------------------------------------------------------- Fashion-MNIST */

static void test_fashion(void)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (stat(dir, &st) != 0) {
        SKIP("Fashion-MNIST: %s is absent (make deps installs it)", dir);
        return;
    }
    l2rw_dataset d, t;
    CHECK_OK(l2rw_data_load("fashion-mnist", &d, &t));
    CHECK(d.n == 60000 && t.n == 10000 && d.c == 1 && d.h == 28 &&
              d.w == 28 && d.classes == 10 && t.classes == 10,
          "fashion-mnist %d/%d %dx%dx%d %d classes", d.n, t.n, d.c, d.h, d.w,
          d.classes);
    if (d.n == 60000 && t.n == 10000) {
        long cnt[10] = {0}, tcnt[10] = {0};
        double sum = 0;
        float mn = 1, mx = 0;
        for (int i = 0; i < d.n; i++) cnt[d.y[i]]++;
        for (int i = 0; i < t.n; i++) tcnt[t.y[i]]++;
        for (size_t i = 0; i < (size_t)d.n * 784; i++) {
            sum += d.x[i];
            mn = d.x[i] < mn ? d.x[i] : mn;
            mx = d.x[i] > mx ? d.x[i] : mx;
        }
        int bal = 1;
        for (int k = 0; k < 10; k++) bal &= cnt[k] == 6000 && tcnt[k] == 1000;
        CHECK(bal, "fashion-mnist: 6000/1000 examples per class");
        CHECK(d.y[0] == 9 && t.y[0] == 9, "first labels (ankle boot) %d %d",
              d.y[0], t.y[0]);
        /* Known mean pixel of the training set: 72.94 / 255 = 0.2860. */
        CHECK_CLOSE(sum / ((double)d.n * 784), 0.2860, 0, 5e-4,
                    "fashion-mnist mean pixel");
        CHECK(mn == 0.0f && mx == 1.0f, "pixels in [0,1]: %g..%g", mn, mx);
    }
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
}

int main(void)
{
    atexit(tmp_cleanup);
    RUN(test_idx);
    RUN(test_cifar);
    RUN(test_csv);
    RUN(test_npy);
    RUN(test_spec);
    RUN(test_mnist_dir);
    RUN(test_fashion);
    return CHECK_DONE("test_data_readers");
}
