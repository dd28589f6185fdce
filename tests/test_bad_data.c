/* Bad data files, one case per problem of the data-robustness issue:
 * each generates the file in a temporary directory and checks the
 * status and that the message names the file and the problem.
 *   1. parts of a spec with other shapes or classes (mnist, idx, csv,
 *      npy pairs and the held-out split)
 *   2. a gzip bomb behind a small IDX or .npy header
 *   3. a CSV whose first row holds nan or an empty field
 *   4. a consistent .npy of an unsupported dtype
 *   5. labels far out of range, in every reader and spec
 *   6. long but valid numbers in CSV fields, and out-of-range ones */
#define _POSIX_C_SOURCE 200809L
#include "l2rw.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------ temp files */

enum { MAX_FILES = 128, PATH_LEN = 256 };
static char tmp_dir[64];
static char files[MAX_FILES][PATH_LEN];
static int n_files;

/* dir/name, remembered for removal at exit. */
static const char *path_of(const char *name)
{
    char *p = files[n_files < MAX_FILES ? n_files++ : MAX_FILES - 1];
    snprintf(p, PATH_LEN, "%s/%s", tmp_dir, name);
    return p;
}

static void cleanup(void)
{
    for (int i = 0; i < n_files; i++) remove(files[i]);
    if (tmp_dir[0]) rmdir(tmp_dir);
}

/* Write bytes to dir/name, gzip-compressed when gz. */
static const char *put(const char *name, const void *b, size_t n, int gz)
{
    const char *p = path_of(name);
    if (gz) {
        gzFile f = gzopen(p, "wb9");
        if (n) gzwrite(f, b, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(p, "wb");
        if (n) fwrite(b, 1, n, f);
        fclose(f);
    }
    return p;
}

static const char *put_text(const char *name, const char *s)
{
    return put(name, s, strlen(s), 0);
}

static int names(const char *what)
{
    return strstr(l2rw_last_error(), what) != NULL;
}

/* Expect status st and a message naming the file and the problem. */
#define CHECK_BAD(expr, st, file, problem)                                   \
    do {                                                                     \
        l2rw_status s_ = (expr);                                             \
        CHECK(s_ == (st), "%s -> %s, expected %s (%s)", #expr,               \
              l2rw_strerror(s_), l2rw_strerror(st), l2rw_last_error());      \
        CHECK(names(file), "message '%s' does not name the file %s",         \
              l2rw_last_error(), (file));                                    \
        CHECK(names(problem), "message '%s' does not say '%s'",              \
              l2rw_last_error(), (problem));                                 \
    } while (0)

/* ------------------------------------------------------------- builders */

/* IDX images n x h x w (pixel i = i * 7) into b; returns the size. */
static size_t idx_images(unsigned char *b, int n, int h, int w)
{
    uint32_t d[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w};
    b[0] = b[1] = 0;
    b[2] = 8;
    b[3] = 3;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * i + k] = (unsigned char)(d[i] >> (24 - 8 * k));
    for (int i = 0; i < n * h * w; i++) b[16 + i] = (unsigned char)(i * 7);
    return 16 + (size_t)n * h * w;
}

/* IDX labels y[0..n) into b; returns the size. */
static size_t idx_labels(unsigned char *b, int n, const unsigned char *y)
{
    unsigned char hdr[8] = {0, 0, 8, 1, 0, 0, (unsigned char)(n >> 8),
                            (unsigned char)n};
    memcpy(b, hdr, 8);
    memcpy(b + 8, y, (size_t)n);
    return 8 + (size_t)n;
}

/* A .npy version 1.0 file in memory (header padded to 64). */
static size_t npy_bytes(unsigned char *b, const char *descr,
                        const char *shape, const void *data, size_t bytes)
{
    char dict[200];
    int dl = snprintf(dict, sizeof dict,
                      "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                      descr, shape);
    size_t hl = (size_t)dl + 1;
    hl += (64 - (10 + hl) % 64) % 64;
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hl & 0xFF);
    b[9] = (unsigned char)(hl >> 8);
    memset(b + 10, ' ', hl);
    memcpy(b + 10, dict, (size_t)dl);
    b[10 + hl - 1] = '\n';
    if (bytes) memcpy(b + 10 + hl, data, bytes);
    return 10 + hl + bytes;
}

static const char *put_npy(const char *name, const char *descr,
                           const char *shape, const void *data, size_t bytes)
{
    unsigned char b[1024];
    return put(name, b, npy_bytes(b, descr, shape, data, bytes), 0);
}

/* An mnist:DIR layout: train 28x28 and test h x w images, 3 each,
 * labels 0..2; the spec goes to spec. */
static void mnist_dir(char *spec, size_t size, const char *kind, int h,
                      int w, const char **test_images)
{
    static unsigned char img[16 + 3 * 29 * 29];
    unsigned char lab[16], y[3] = {0, 1, 2};
    size_t ll = idx_labels(lab, 3, y);
    put("train-images-idx3-ubyte", img, idx_images(img, 3, 28, 28), 0);
    put("train-labels-idx1-ubyte", lab, ll, 0);
    *test_images = put("t10k-images-idx3-ubyte.gz", img,
                       idx_images(img, 3, h, w), 1);
    put("t10k-labels-idx1-ubyte.gz", lab, ll, 1);
    snprintf(spec, size, "%s:%s", kind, tmp_dir);
}

/* ------------------------------------------------------- 1. part shapes */

/* mnist:DIR and fashion-mnist:DIR with a 27x29 (smaller) or 29x29
 * (larger) test set: a shape error naming the test images, not a read
 * outside the buffer. */
static void test_mnist_test_shape(void)
{
    const char *kinds[2] = {"mnist", "fashion-mnist"};
    const int hw[2][2] = {{27, 29}, {29, 29}};
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 2; j++) {
            char spec[200], want[32];
            const char *ti;
            l2rw_dataset d, t;
            mnist_dir(spec, sizeof spec, kinds[k], hw[j][0], hw[j][1], &ti);
            snprintf(want, sizeof want, "1x%dx%d", hw[j][0], hw[j][1]);
            CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_SHAPE, ti,
                      want);
            CHECK(names("1x28x28") && names("train-images"),
                  "names the training shape and file: %s",
                  l2rw_last_error());
            CHECK(d.x == NULL && t.x == NULL, "outputs freed");
        }
}

/* The same check for the file pairs of idx, csv and npy. */
static void test_pair_shapes(void)
{
    static unsigned char img[16 + 3 * 28 * 28];
    unsigned char lab[16], y[3] = {0, 1, 2};
    char spec[600];
    l2rw_dataset d, t;
    size_t ll = idx_labels(lab, 3, y);
    const char *a = put("a.idx", img, idx_images(img, 3, 28, 28), 0);
    const char *b = put("b.idx", lab, ll, 0);
    const char *c = put("c.idx", img, idx_images(img, 3, 27, 29), 0);
    snprintf(spec, sizeof spec, "idx:%s,%s;%s,%s", a, b, c, b);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_SHAPE, c, "1x27x29");

    const char *tr = put_text("tr.csv", "1,2,0\n3,4,1\n");
    const char *te = put_text("te.csv", "1,2,3,0\n3,4,5,1\n");
    snprintf(spec, sizeof spec, "csv:%s;%s", tr, te);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_SHAPE, te, "3x1x1");

    float x[12] = {0};
    int32_t yl[2] = {0, 1};
    const char *x1 = put_npy("x1.npy", "<f4", "(2, 2, 3)", x, sizeof x);
    const char *x2 = put_npy("x2.npy", "<f4", "(2, 3, 2)", x, sizeof x);
    const char *y1 = put_npy("y1.npy", "<i4", "(2,)", yl, 8);
    snprintf(spec, sizeof spec, "npy:%s,%s;%s,%s", x1, y1, x2, y1);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_SHAPE, x2, "1x3x2");
}

/* A test file whose labels go beyond the classes inferred from the
 * training file (the parts' class counts differ): a label error naming
 * the test file, the example and the label. */
static void test_pair_classes(void)
{
    char spec[600];
    l2rw_dataset d, t;
    const char *tr = put_text("trc.csv", "1,0\n2,1\n3,2\n");
    const char *te = put_text("tec.csv", "1,0\n2,7\n");
    snprintf(spec, sizeof spec, "csv:%s;%s", tr, te);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, te,
              "label 7 of example 1 is outside [0, 3)");
    CHECK(names(tr), "names the training file: %s", l2rw_last_error());
    /* Consistent parts load with one class count. */
    const char *te2 = put_text("te2.csv", "1,0\n2,1\n");
    snprintf(spec, sizeof spec, "csv:%s;%s", tr, te2);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    CHECK(d.classes == 3 && t.classes == 3, "classes %d and %d", d.classes,
          t.classes);
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
}

/* ----------------------------------------------------------- 2. gzip bomb */

enum { BOMB_BYTES = 8 << 20 };

/* A gzip stream of a header followed by `extra` zero bytes (chunks, so
 * the bomb is never whole in memory). */
static const char *put_bomb(const char *name, const unsigned char *head,
                            size_t head_len, size_t extra)
{
    static unsigned char zeros[1 << 16];
    const char *p = path_of(name);
    gzFile f = gzopen(p, "wb9");
    gzwrite(f, head, (unsigned)head_len);
    for (size_t done = 0; done < extra; done += sizeof zeros)
        gzwrite(f, zeros, sizeof zeros);
    gzclose(f);
    return p;
}

/* A small gz announcing 3 labels (11 bytes) and 3 images of 2x2 (28
 * bytes) that inflates to megabytes: rejected as soon as the output
 * passes the announced size, saying so. */
static void test_gzip_bomb_idx(void)
{
    unsigned char lab[16], img[64], y[3] = {0, 1, 2};
    size_t ll = idx_labels(lab, 3, y), il = idx_images(img, 3, 2, 2);
    const char *pl = put("bomb-labels.gz", lab, ll, 1);
    const char *pi = put("bomb-images.gz", img, il, 1);
    const char *bl = put_bomb("bomb-l.gz", lab, ll, BOMB_BYTES);
    const char *bi = put_bomb("bomb-i.gz", img, il, BOMB_BYTES);
    l2rw_dataset d;
    CHECK_OK(l2rw_load_idx(&d, pi, pl, 0));
    l2rw_dataset_free(&d);
    CHECK_BAD(l2rw_load_idx(&d, pi, bl, 0), L2RW_ERR_FORMAT, bl,
              "more than the 11 bytes its IDX header announces");
    CHECK(names("gzip bomb"), "says gzip bomb: %s", l2rw_last_error());
    CHECK_BAD(l2rw_load_idx(&d, bi, pl, 0), L2RW_ERR_FORMAT, bi,
              "more than the 28 bytes its IDX header announces");
    /* The same through the mnist:DIR spec. */
    char spec[200];
    const char *ti;
    mnist_dir(spec, sizeof spec, "mnist", 28, 28, &ti);
    unsigned char big[16 + 3 * 28 * 28];
    size_t bl2 = idx_images(big, 3, 28, 28);
    put_bomb("t10k-images-idx3-ubyte.gz", big, bl2, BOMB_BYTES);
    l2rw_dataset t;
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_FORMAT, ti,
              "its IDX header announces");
}

/* The same for a .npy header (zlib reads .npy.gz as well). */
static void test_gzip_bomb_npy(void)
{
    unsigned char hx[256], hy[256];
    float x[6] = {0};
    int32_t yl[2] = {0, 1};
    size_t xl = npy_bytes(hx, "<f4", "(2, 3)", x, sizeof x);
    size_t yn = npy_bytes(hy, "<i4", "(2,)", yl, sizeof yl);
    const char *px = put("x.npy.gz", hx, xl, 1);
    const char *py = put("y.npy.gz", hy, yn, 1);
    const char *bx = put_bomb("bx.npy.gz", hx, xl, BOMB_BYTES);
    l2rw_dataset d;
    CHECK_OK(l2rw_load_npy(&d, px, py, 0));
    l2rw_dataset_free(&d);
    char want[64];
    snprintf(want, sizeof want, "more than the %zu bytes its .npy header",
             xl);
    CHECK_BAD(l2rw_load_npy(&d, bx, py, 0), L2RW_ERR_FORMAT, bx, want);
}

/* ------------------------------------------------- 3. CSV header detection */

/* A first row of numbers with nan or an empty field is data, not a
 * header: an error naming file, line and column, as for any data row. */
static void test_csv_nan_first_row(void)
{
    l2rw_csv_opts o = l2rw_csv_opts_default();
    l2rw_dataset d;
    const char *p = put_text("nan1.csv", "nan,1,0\n1,2,1\n3,4,0\n");
    CHECK_BAD(l2rw_load_csv(&d, p, &o), L2RW_ERR_FORMAT, p,
              ":1: column 1 'nan' is not finite");
    p = put_text("nan2.csv", "1,NaN,0\n1,2,1\n");
    CHECK_BAD(l2rw_load_csv(&d, p, &o), L2RW_ERR_FORMAT, p,
              ":1: column 2 'NaN' is not finite");
    p = put_text("empty1.csv", "1,,0\n1,2,1\n");
    CHECK_BAD(l2rw_load_csv(&d, p, &o), L2RW_ERR_FORMAT, p,
              ":1: column 2 '' is empty");
    p = put_text("inf1.csv", "1,2,0\n-inf,2,1\n");
    CHECK_BAD(l2rw_load_csv(&d, p, &o), L2RW_ERR_FORMAT, p,
              ":2: column 1 '-inf' is not finite");
    /* A real header is still found, an empty column name included. */
    p = put_text("hdr.csv", ",a,label\n1,2,0\n3,4,1\n");
    CHECK_OK(l2rw_load_csv(&d, p, &o));
    CHECK(d.n == 2 && d.c == 2, "header row dropped: %d rows", d.n);
    l2rw_dataset_free(&d);
}

/* -------------------------------------------------------- 4. .npy dtypes */

static void test_npy_dtype(void)
{
    int16_t x2[6] = {1, 2, 3, 4, 5, 6};
    unsigned char b1[2] = {1, 0};
    int32_t y4[2] = {0, 1};
    float xf[6] = {0};
    const char *xi2 = put_npy("xi2.npy", "<i2", "(2, 3)", x2, sizeof x2);
    const char *xf4 = put_npy("xf4.npy", "<f4", "(2, 3)", xf, sizeof xf);
    const char *yb1 = put_npy("yb1.npy", "|b1", "(2,)", b1, sizeof b1);
    const char *yi4 = put_npy("yi4.npy", "<i4", "(2,)", y4, sizeof y4);
    l2rw_dataset d;
    CHECK_BAD(l2rw_load_npy(&d, xi2, yi4, 0), L2RW_ERR_FORMAT, xi2,
              "unsupported dtype '<i2' (supported feature dtypes '|u1', "
              "'<f4')");
    CHECK(!names("truncated"), "not called truncated: %s",
          l2rw_last_error());
    CHECK_BAD(l2rw_load_npy(&d, xf4, yb1, 0), L2RW_ERR_FORMAT, yb1,
              "unsupported dtype '|b1' (supported label dtypes");
    CHECK(!names("truncated"), "not called truncated: %s",
          l2rw_last_error());
    CHECK_OK(l2rw_load_npy(&d, xf4, yi4, 0));
    l2rw_dataset_free(&d);
}

/* ------------------------------------------------------ 5. label ranges */

/* Labels of ten classes and one far beyond (200): with classes inferred,
 * the label is named where it is read, not as a class the clean split
 * cannot fill. */
static void test_label_far_out_of_range(void)
{
    enum { N = 40 };
    static unsigned char img[16 + N * 4];
    unsigned char lab[8 + N], y[N];
    for (int i = 0; i < N; i++) y[i] = (unsigned char)(i % 10);
    y[23] = 200;
    const char *pi = put("far-img", img, idx_images(img, N, 2, 2), 0);
    const char *pl = put("far-lab", lab, idx_labels(lab, N, y), 0);
    char spec[600];
    l2rw_dataset d, t;
    snprintf(spec, sizeof spec, "idx:%s,%s,frac=0", pi, pl);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, pl,
              "label 200 of example 23 is outside [0, 10)");
    /* The pipeline stops there too, before the clean split. */
    l2rw_data_cfg cfg = l2rw_data_cfg_default();
    cfg.data = spec;
    cfg.val_per_class = 1;
    l2rw_data data;
    CHECK_BAD(l2rw_data_prepare(&data, &cfg), L2RW_ERR_LABEL, pl,
              "label 200 of example 23");
    /* With the held-out split, the example index is the file's. */
    snprintf(spec, sizeof spec, "idx:%s,%s,frac=0.5", pi, pl);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, pl,
              "label 200 of example 23 is outside [0, 10)");
    /* A given class count: the reader names the label. */
    snprintf(spec, sizeof spec, "idx:%s,%s,classes=10", pi, pl);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, pl,
              "label 200 of example 23 is outside [0, 10)");
    /* It is meant: classes=K allows empty classes. */
    snprintf(spec, sizeof spec, "idx:%s,%s,classes=201,frac=0", pi, pl);
    CHECK_OK(l2rw_data_load(spec, &d, &t));
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&t);
    /* Labels that do not start at 0. */
    for (int i = 0; i < N; i++) y[i] = (unsigned char)(1 + i % 10);
    const char *p1 = put("one-lab", lab, idx_labels(lab, N, y), 0);
    snprintf(spec, sizeof spec, "idx:%s,%s,frac=0", pi, p1);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, p1,
              "labels must start at 0");
}

/* Every reader names file, example and label against a given count. */
static void test_label_readers(void)
{
    l2rw_dataset d, t;
    char spec[600];
    /* CSV: line, example, label, range */
    const char *c = put_text("lab.csv", "a,label\n1,0\n2,1\n3,12\n");
    snprintf(spec, sizeof spec, "csv:%s,classes=10", c);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, c,
              ":4: label 12 of example 2 is outside [0, 10)");
    /* npy */
    float x[6] = {0};
    int32_t yl[3] = {0, 1, 12};
    const char *px = put_npy("lx.npy", "<f4", "(3, 2)", x, sizeof x);
    const char *py = put_npy("ly.npy", "<i4", "(3,)", yl, sizeof yl);
    snprintf(spec, sizeof spec, "npy:%s,%s,classes=10", px, py);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, py,
              "label 12 of example 2 is outside [0, 10)");
    /* mnist: ten classes */
    const char *ti;
    mnist_dir(spec, sizeof spec, "mnist", 28, 28, &ti);
    unsigned char lab[16], y[3] = {0, 1, 200};
    const char *tl = put("train-labels-idx1-ubyte", lab, idx_labels(lab, 3, y),
                         0);
    CHECK_BAD(l2rw_data_load(spec, &d, &t), L2RW_ERR_LABEL, tl,
              "label 200 of example 2 is outside [0, 10)");
    /* CIFAR-10: record, label, range */
    size_t rec = 1 + 3072;
    unsigned char *cb = calloc(2, rec);
    cb[rec] = 10;
    const char *pc = put("c10.bin", cb, 2 * rec, 0);
    free(cb);
    CHECK_BAD(l2rw_load_cifar_file(&d, pc, L2RW_CIFAR10), L2RW_ERR_LABEL, pc,
              "record 1 has class label 10 outside [0, 10)");
}

/* ------------------------------------------------------ 6. long numbers */

/* "0." then `zeros` zeros then digits. */
static char *long_number(int zeros, const char *digits)
{
    char *s = malloc((size_t)zeros + strlen(digits) + 3);
    strcpy(s, "0.");
    memset(s + 2, '0', (size_t)zeros);
    strcpy(s + 2 + zeros, digits);
    return s;
}

static void test_csv_long_numbers(void)
{
    l2rw_csv_opts o = l2rw_csv_opts_default();
    l2rw_dataset d;
    char text[2048];
    /* 300 characters: 1e-298 (a double, 0 as a float), 42 with 298
     * leading zeros, a label 1 with leading zeros, a double denormal. */
    char *tiny = long_number(296, "1");
    char z42[301], z1[301];
    memset(z42, '0', 298);
    strcpy(z42 + 298, "42");
    memset(z1, '0', 299);
    strcpy(z1 + 299, "1");
    snprintf(text, sizeof text, "%s,%s,4.9e-324,0\n1,2,3,%s\n", tiny, z42,
             z1);
    const char *p = put_text("long.csv", text);
    CHECK_OK(l2rw_load_csv(&d, p, &o));
    CHECK(d.n == 2 && d.c == 3 && d.x[0] == 0.0f && d.x[1] == 42.0f &&
              d.x[2] == 0.0f && d.y[1] == 1,
          "long numbers read: n %d, x %g %g, y %d", d.n, d.x[0], d.x[1],
          d.y[1]);
    l2rw_dataset_free(&d);
    free(tiny);
    /* Underflow of a double: a number (0), not an error. */
    p = put_text("under.csv", "1e-400,0\n2,1\n");
    CHECK_OK(l2rw_load_csv(&d, p, &o));
    l2rw_dataset_free(&d);
    /* Overflow of a double: out of range, named. */
    p = put_text("over.csv", "1,0\n1e400,1\n");
    CHECK_BAD(l2rw_load_csv(&d, p, &o), L2RW_ERR_FORMAT, p,
              ":2: column 1 '1e400' is out of range (overflows a double)");
    /* 300 digits: a double, beyond float range. */
    char big[310];
    big[0] = '1';
    memset(big + 1, '0', 299);
    big[300] = 0;
    snprintf(text, sizeof text, "1,0\n%s,1\n", big);
    p = put_text("big.csv", text);
    CHECK_BAD(l2rw_load_csv(&d, p, &o), L2RW_ERR_FORMAT, p,
              ":2: column 1 '1000000000000000000000000000000000000000...' is "
              "out of float range");
    /* Long text is still not a number, quoted short. */
    char word[400];
    memset(word, 'x', 350);
    word[350] = 0;
    snprintf(text, sizeof text, "1,0\n%s,1\n", word);
    p = put_text("word.csv", text);
    CHECK_BAD(l2rw_load_csv(&d, p, &o), L2RW_ERR_FORMAT, p,
              "...' is not a number");
}

/* The same rule in the data specs' numbers: an underflow is a number. */
static void test_spec_numbers(void)
{
    l2rw_noise nz;
    CHECK_OK(l2rw_noise_parse(&nz, "uniform:1e-320"));
    CHECK(nz.kind == L2RW_NOISE_UNIFORM && nz.p < 1e-300, "p %g", nz.p);
    CHECK(l2rw_noise_parse(&nz, "uniform:1e400") == L2RW_ERR_ARG &&
              names("'1e400' is not a number in [0, 1]"),
          "overflow rejected: %s", l2rw_last_error());
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/l2rw_bad_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        printf("test_bad_data: cannot make a temporary directory\n");
        return 1;
    }
    RUN(test_mnist_test_shape);
    RUN(test_pair_shapes);
    RUN(test_pair_classes);
    RUN(test_gzip_bomb_idx);
    RUN(test_gzip_bomb_npy);
    RUN(test_csv_nan_first_row);
    RUN(test_npy_dtype);
    RUN(test_label_far_out_of_range);
    RUN(test_label_readers);
    RUN(test_csv_long_numbers);
    RUN(test_spec_numbers);
    cleanup();
    return CHECK_DONE("test_bad_data");
}
