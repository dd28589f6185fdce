/* Tests of issue 13's "trusted set of one's own", "suspects" and
 * "predict": the --val-data clean set (selection, checks, overlap report,
 * checkpoint fingerprint), examples.csv's name columns, the suspects and
 * predict commands, and the end-to-end case: a folder of Fashion-MNIST
 * PNGs with 40% of the images moved to a wrong class folder, a trusted
 * list of 100, and the precision of `l2rw suspects` at 100. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "testutil.h"

#include "l2rw.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

enum {
    N_TRAIN = 200,   /* small IDX training set, 4 classes */
    N_POOL = 40,     /* small IDX trusted source */
    E2E_TRAIN = 3000,
    E2E_TRUSTED_PER_CLASS = 10,
    E2E_TOP = 100,
    E2E_SIDE = 28
};

/* ------------------------------------------------------------ helpers */

static void paths(char *img, char *lab, size_t size, const char *stem)
{
    char a[128], b[128];
    snprintf(a, sizeof a, "%s-img.idx", stem);
    snprintf(b, sizeof b, "%s-lab.idx", stem);
    path_in(img, size, a);
    path_in(lab, size, b);
}

/* IDX pair `stem` of n examples (write_idx) and its spec, all of it
 * training data (frac=0). */
static int idx_spec(char *spec, size_t size, const char *stem, int n,
                    int classes, uint64_t seed)
{
    char img[512], lab[512];
    paths(img, lab, sizeof img, stem);
    snprintf(spec, size, "idx:%s,%s,frac=0", img, lab);
    return write_idx(img, lab, n, classes, seed);
}

/* Replaces the labels of IDX pair `stem`. */
static int relabel_idx(const char *stem, const uint8_t *y, int n)
{
    char img[512], lab[512];
    paths(img, lab, sizeof img, stem);
    FILE *fp = fopen(lab, "wb");
    if (!fp) return 1;
    put_be32(fp, 0x801);
    put_be32(fp, (uint32_t)n);
    fwrite(y, 1, (size_t)n, fp);
    return ferror(fp) | (fclose(fp) != 0);
}

static l2rw_data_cfg val_cfg(const char *data, const char *val_data)
{
    l2rw_data_cfg c = l2rw_data_cfg_default();
    c.data = data;
    c.val_data = val_data;
    c.seed = 3;
    return c;
}

static int write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return 1;
    fputs(text, fp);
    return ferror(fp) | (fclose(fp) != 0);
}

/* ------------------------------------------------- --val-data (library) */

/* The trusted source is the first 40 training examples: every clean
 * example is in the training set, by pixels; sizes 0 take all of it. */
static void test_val_data_overlap(void)
{
    char tr[1200], va[1200];
    CHECK(!idx_spec(tr, sizeof tr, "ov-train", N_TRAIN, 4, 1), "write");
    CHECK(!idx_spec(va, sizeof va, "ov-pool", N_POOL, 4, 1), "write");
    l2rw_data_cfg c = val_cfg(tr, va);
    c.noise = "uniform:1";
    l2rw_data d;
    CHECK_OK(l2rw_data_prepare(&d, &c));
    CHECK(d.train.n == N_TRAIN && d.val.n == N_POOL, "train %d val %d",
          d.train.n, d.val.n);
    CHECK(d.audit.overlap_pixels == N_POOL, "overlap %ld",
          d.audit.overlap_pixels);
    CHECK(d.audit.overlap_files == 0 && d.audit.val_balanced, "files/bal");
    CHECK(d.audit.n_overlap_shown == L2RW_AUDIT_OVERLAP_SHOWN, "shown %d",
          d.audit.n_overlap_shown);
    for (int i = 0; i < d.audit.n_overlap_shown; i++)
        CHECK(d.audit.overlap_val_id[i] == d.audit.overlap_train_id[i],
              "pair %d", i);
    /* never corrupted; normalised with the training statistics */
    int clean = 1;
    for (int i = 0; i < d.val.n; i++) clean &= d.val.y[i] == d.val.y_true[i];
    CHECK(clean, "noise reached the clean set");
    size_t dim = l2rw_dataset_dim(&d.train);
    CHECK(!memcmp(d.val.x, d.train.x, dim * sizeof(float)),
          "val example 0 normalised unlike its training twin");
    l2rw_data_free(&d);

    /* a balanced draw; after a subsample only kept twins count */
    c.val_per_class = 5;
    c.train_size = 100;
    CHECK_OK(l2rw_data_prepare(&d, &c));
    long want = 0;
    for (int i = 0; i < d.val.n; i++)
        for (int j = 0; j < d.train.n; j++)
            want += d.train.id[j] == d.val.id[i];
    CHECK(d.val.n == 20 && d.train.n == 100, "val %d train %d", d.val.n,
          d.train.n);
    CHECK(d.audit.overlap_pixels == want, "overlap %ld, want %ld",
          d.audit.overlap_pixels, want);
    l2rw_data_free(&d);
}

static void test_val_data_distinct(void)
{
    char tr[1200], va[1200];
    CHECK(!idx_spec(tr, sizeof tr, "di-train", N_TRAIN, 4, 1), "write");
    CHECK(!idx_spec(va, sizeof va, "di-pool", N_POOL, 4, 2), "write");
    l2rw_data_cfg c = val_cfg(tr, va);
    c.val_size = 10;
    l2rw_data d;
    CHECK_OK(l2rw_data_prepare(&d, &c));
    CHECK(d.val.n == 10 && d.train.n == N_TRAIN, "val %d train %d", d.val.n,
          d.train.n);
    CHECK(d.audit.overlap_pixels == 0 && d.audit.n_overlap_shown == 0,
          "overlap %ld", d.audit.overlap_pixels);
    CHECK(!strcmp(d.audit.val_data, va), "audit names the source");
    char json[1400];
    path_in(json, sizeof json, "di.json");
    CHECK_OK(l2rw_audit_save(&d.audit, json, L2RW_AUDIT_JSON));
    char *t = slurp(json, NULL);
    CHECK(t && strstr(t, "\"overlap\": {\"pixels\": 0, \"files\": 0"),
          "data.json overlap: %s", t ? t : "(none)");
    free(t);
    l2rw_data_free(&d);
}

/* The user's trusted set as it is: unbalanced is kept and flagged. */
static void test_val_data_unbalanced(void)
{
    char tr[1200], va[1200];
    uint8_t y[N_POOL];
    for (int i = 0; i < N_POOL; i++) y[i] = (uint8_t)(i < 4 ? i : 0);
    CHECK(!idx_spec(tr, sizeof tr, "ub-train", N_TRAIN, 4, 1), "write");
    CHECK(!idx_spec(va, sizeof va, "ub-pool", N_POOL, 4, 2), "write");
    CHECK(!relabel_idx("ub-pool", y, N_POOL), "relabel");
    l2rw_data_cfg c = val_cfg(tr, va);
    l2rw_data d;
    CHECK_OK(l2rw_data_prepare(&d, &c));
    CHECK(d.val.n == N_POOL && !d.audit.val_balanced, "val %d balanced %d",
          d.val.n, d.audit.val_balanced);
    CHECK(d.audit.val_count[0] == N_POOL - 3, "count %ld",
          d.audit.val_count[0]);
    l2rw_data_free(&d);
    /* a balanced draw cannot find 5 of class 1 */
    c.val_per_class = 5;
    CHECK(l2rw_data_prepare(&d, &c) == L2RW_ERR_ARG, "too few accepted");
    CHECK(strstr(l2rw_last_error(), "validation sizes 0 take the whole"),
          "message: %s", l2rw_last_error());
}

/* The part check of the data spec: shape, and labels in the classes. */
static void test_val_data_checks(void)
{
    char tr[1200], va[1200], csv[1200], spec[1300];
    CHECK(!idx_spec(tr, sizeof tr, "ck-train", N_TRAIN, 4, 1), "write");
    CHECK(!idx_spec(va, sizeof va, "ck-pool", N_POOL, 6, 2), "write");
    l2rw_data_cfg c = val_cfg(tr, va);
    l2rw_data d;
    CHECK(l2rw_data_prepare(&d, &c) == L2RW_ERR_LABEL, "label 5 accepted");
    CHECK(strstr(l2rw_last_error(), "outside [0, 4)"), "message: %s",
          l2rw_last_error());
    path_in(csv, sizeof csv, "ck.csv");
    CHECK(!write_text(csv, "1,2,0\n3,4,1\n"), "write");
    snprintf(spec, sizeof spec, "csv:%s,frac=0", csv);
    c.val_data = spec;
    CHECK(l2rw_data_prepare(&d, &c) == L2RW_ERR_SHAPE, "shape accepted");
    CHECK(strstr(l2rw_last_error(), "clean examples are 2x1x1"),
          "message: %s", l2rw_last_error());
}

/* val_data is part of a checkpoint's configuration. */
static void test_val_data_fingerprint(void)
{
    char tr[1200], va[1200], vb[1200], dir[600];
    CHECK(!idx_spec(tr, sizeof tr, "fp-train", N_TRAIN, 4, 1), "write");
    CHECK(!idx_spec(va, sizeof va, "fp-a", N_POOL, 4, 2), "write");
    CHECK(!idx_spec(vb, sizeof vb, "fp-b", N_POOL, 4, 3), "write");
    path_in(dir, sizeof dir, "fp-run");
    l2rw_train_cfg c = l2rw_train_cfg_default();
    c.data = tr;
    c.val_data = va;
    c.val_per_class = 0;
    c.model = "mlp";
    c.steps = 4;
    c.batch = 20;
    c.val_batch = 20;
    c.eval_every = 0;
    c.checkpoint_every = 2;
    c.threads = 1;
    c.out_dir = dir;
    CHECK_OK(l2rw_train_run(&c, NULL));
    char text[8192];
    CHECK_OK(l2rw_train_resume_config(dir, text, sizeof text));
    CHECK(strstr(text, "val-data=") && strstr(text, "fp-a"),
          "resume config lacks val-data: %s", text);
    c.out_dir = NULL;
    c.resume_dir = dir;
    c.steps = 6;
    c.val_data = vb;
    CHECK(l2rw_train_run(&c, NULL) == L2RW_ERR_ARG, "other val-data resumed");
    CHECK(strstr(l2rw_last_error(), "val-data"), "message: %s",
          l2rw_last_error());
    c.val_data = NULL;
    c.val_per_class = 5;
    CHECK(l2rw_train_run(&c, NULL) == L2RW_ERR_ARG, "split resumed");
    c.val_data = va;
    c.val_per_class = 0;
    CHECK_OK(l2rw_train_run(&c, NULL));
}

/* ---------------------------------------------------- examples.csv names */

static void test_record_names(void)
{
    int32_t id[3] = {2, 0, 1}, y[3] = {1, 0, 1};
    l2rw_record *r;
    CHECK_OK(l2rw_record_create(&r, 3, id, y, NULL));
    int32_t idx[3] = {0, 1, 2};
    float w[3] = {0.0f, 0.25f, 0.75f};
    CHECK_OK(l2rw_record_add(r, idx, 3, w));
    char *cls[2] = {"coat", "bag, small"};
    char *files[3] = {"a \"x\".png", NULL, "c\nd.png"};
    l2rw_sources src;
    memset(&src, 0, sizeof src);
    src.classes = 2;
    src.class_names = cls;
    src.n_train = 3;
    src.train_files = files;
    char path[600];
    path_in(path, sizeof path, "named.csv");
    CHECK_OK(l2rw_record_save_named(r, path, &src));
    char *t = slurp(path, NULL);
    const char *want =
        "id,given_label,true_label,corrupted,mean_weight,zero_weight_share,"
        "seen,given_class,file\n"
        "2,1,,,0,1,1,\"bag, small\",\"c\nd.png\"\n"
        "0,0,,,0.75,0,1,coat,\"a \"\"x\"\".png\"\n"
        "1,1,,,2.25,0,1,\"bag, small\",\n";
    CHECK(t && !strcmp(t, want), "named examples.csv:\n%s", t ? t : "");
    free(t);
    /* without names: the file as before */
    CHECK_OK(l2rw_record_save_named(r, path, NULL));
    t = slurp(path, NULL);
    CHECK(t && !strncmp(t, "id,given_label,true_label,corrupted,mean_weight,"
                           "zero_weight_share,seen\n2,1,,,0,1,1\n", 76),
          "plain examples.csv:\n%s", t ? t : "");
    free(t);
    l2rw_record_free(r);
}

/* ------------------------------------------------------- suspects (CLI) */

static void make_run_dir(const char *name, const char *examples, char *dir,
                         size_t size)
{
    char p[700];
    path_in(dir, size, name);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/examples.csv", dir);
    CHECK(!write_text(p, examples), "write %s", p);
}

/* The column set written so far, rows out of order, an unseen row. */
static void test_suspects_plain(void)
{
    if (!cli_available(0)) return;
    char dir[600], args[1400], out[700];
    make_run_dir("sp-run",
                 "id,given_label,true_label,corrupted,mean_weight,"
                 "zero_weight_share,seen\n"
                 "5,1,1,0,1.5,0,4\n"
                 "7,2,,,,,0\n"
                 "3,0,2,1,0,1,4\n"
                 "9,1,0,1,0,0.5,4\n"
                 "4,2,2,0,0.2,0.75,4\n",
                 dir, sizeof dir);
    snprintf(args, sizeof args, "suspects %s --top 3", dir);
    cli_result r = run_cli(args);
    CHECK(r.rc == 0, "rc %d: %s", r.rc, r.err);
    CHECK(strstr(r.out, "2 of the top 3 (precision 0.667)"), "out: %s",
          r.out);
    CHECK(strstr(r.out, "1 examples never seen"), "out: %s", r.out);
    snprintf(out, sizeof out, "%s/suspects.csv", dir);
    char *t = slurp(out, NULL);
    const char *want =
        "rank,id,given_label,mean_weight,zero_weight_share,seen,true_label,"
        "corrupted\n"
        "1,3,0,0,1,4,2,1\n2,9,1,0,0.5,4,0,1\n3,4,2,0.2,0.75,4,2,0\n";
    CHECK(t && !strcmp(t, want), "suspects.csv:\n%s", t ? t : "");
    free(t);
}

/* A file with the name columns (quoted, CRLF) and an extra column. */
static void test_suspects_named(void)
{
    if (!cli_available(0)) return;
    char dir[600], args[1400], out[700];
    make_run_dir("sn-run",
                 "id,given_label,true_label,corrupted,mean_weight,"
                 "zero_weight_share,seen,future,given_class,file\r\n"
                 "1,0,,,0.5,0,2,x,coat,\"a,b.png\"\r\n"
                 "2,1,,,0.1,0.5,2,y,\"bag \"\"s\"\"\",\"c\nd.png\"\r\n",
                 dir, sizeof dir);
    path_in(out, sizeof out, "sn.csv");
    snprintf(args, sizeof args, "suspects %s --out %s", dir, out);
    cli_result r = run_cli(args);
    CHECK(r.rc == 0, "rc %d: %s", r.rc, r.err);
    CHECK(strstr(r.out, "1 (bag \"s\")") && strstr(r.out, "a,b.png"),
          "out: %s", r.out);
    CHECK(!strstr(r.out, "precision"), "precision without truth: %s", r.out);
    char *t = slurp(out, NULL);
    const char *want =
        "rank,id,given_label,given_class,mean_weight,zero_weight_share,seen,"
        "true_label,corrupted,file\n"
        "1,2,1,\"bag \"\"s\"\"\",0.1,0.5,2,,,\"c\nd.png\"\n"
        "2,1,0,coat,0.5,0,2,,,\"a,b.png\"\n";
    CHECK(t && !strcmp(t, want), "suspects.csv:\n%s", t ? t : "");
    free(t);
}

static void test_suspects_bad(void)
{
    if (!cli_available(0)) return;
    char dir[600], args[1400];
    make_run_dir("sb-run", "id,mean_weight\n1,0\n", dir, sizeof dir);
    snprintf(args, sizeof args, "suspects %s", dir);
    cli_result r = run_cli(args);
    CHECK(r.rc == 2 && strstr(r.err, "no id, given_label and mean_weight"),
          "rc %d: %s", r.rc, r.err);
    make_run_dir("sb-run2", "id,given_label,mean_weight\n1,0,abc\n", dir,
                 sizeof dir);
    snprintf(args, sizeof args, "suspects %s", dir);
    r = run_cli(args);
    CHECK(r.rc == 2 && strstr(r.err, "line 2: column mean_weight"),
          "rc %d: %s", r.rc, r.err);
    make_run_dir("sb-run3", "id,given_label,mean_weight\n1,0\n", dir,
                 sizeof dir);
    snprintf(args, sizeof args, "suspects %s", dir);
    r = run_cli(args);
    CHECK(r.rc == 2 && strstr(r.err, "2 fields, the header has 3"),
          "rc %d: %s", r.rc, r.err);
    r = run_cli("suspects /nonexistent-dir");
    CHECK(r.rc == 2 && strstr(r.err, "cannot open"), "rc %d: %s", r.rc,
          r.err);
    r = run_cli("suspects");
    CHECK(r.rc == 2, "no dir: rc %d", r.rc);
}

/* ----------------------------------------------- predict and --val-data */

/* A short CLI run on IDX data with its own trusted IDX set; then
 * predict's CSV against eval's accuracy. */
static void test_cli_val_data_predict(void)
{
    if (!cli_available(0)) return;
    char tr[1200], va[1200], dir[600], args[4000], out[700];
    CHECK(!idx_spec(tr, sizeof tr, "cp-train", N_TRAIN, 4, 1), "write");
    CHECK(!idx_spec(va, sizeof va, "cp-pool", N_POOL, 4, 1), "write");
    tr[strlen(tr) - strlen(",frac=0")] = 0; /* keep a test part */
    path_in(dir, sizeof dir, "cp-run");
    snprintf(args, sizeof args, "train --data %s --val-data %s "
             "--val-per-class 5 --model mlp --steps 6 --batch 20 "
             "--eval-every 0 --threads 1 --no-plots --out %s", tr, va, dir);
    cli_result r = run_cli(args);
    CHECK(r.rc == 0, "train rc %d: %s", r.rc, r.err);
    CHECK(strstr(r.out, "clean set from") && strstr(r.out, "balanced") &&
          strstr(r.out, "not removed"), "start line: %s", r.out);
    path_in(out, sizeof out, "cp-pred.csv");
    snprintf(args, sizeof args, "predict --load %s/model.l2rw --data %s "
             "--out %s", dir, tr, out);
    r = run_cli(args);
    CHECK(r.rc == 0 && strstr(r.out, "wrote 40 predictions"), "rc %d: %s%s",
          r.rc, r.out, r.err);
    char *t = slurp(out, NULL);
    CHECK(t && !strncmp(t, "id,predicted,label,p_0,p_1,p_2,p_3\n", 35),
          "header: %.60s", t ? t : "");
    int rows = 0, ok = 1;
    for (char *line = t ? strchr(t, '\n') : NULL; line && line[1];
         line = strchr(line + 1, '\n')) {
        int id, pred, lab;
        double p[4];
        if (sscanf(line + 1, "%d,%d,%d,%lf,%lf,%lf,%lf", &id, &pred, &lab,
                   &p[0], &p[1], &p[2], &p[3]) != 7) {
            ok = 0;
            break;
        }
        int best = 0;
        for (int k = 1; k < 4; k++) best = p[k] > p[best] ? k : best;
        ok &= fabs(p[0] + p[1] + p[2] + p[3] - 1.0) < 1e-4 &&
              (best == pred || p[best] == p[pred]);
        rows++;
    }
    CHECK(ok && rows == 40, "%d rows, consistent %d", rows, ok);
    free(t);
    snprintf(args, sizeof args, "predict --load %s/model.l2rw --data %s",
             dir, tr);
    r = run_cli(args);
    CHECK(r.rc == 0 && !strncmp(r.out, "id,predicted,label,p_0", 22),
          "stdout CSV: rc %d %.40s", r.rc, r.out);
    snprintf(args, sizeof args, "predict --load %s/model.l2rw --data "
             "fashion-mnist:/nonexistent", dir);
    r = run_cli(args);
    CHECK(r.rc == 2, "bad data: rc %d", r.rc);
    snprintf(args, sizeof args, "eval --load %s/model.l2rw --data %s", dir,
             tr);
    r = run_cli(args);
    CHECK(r.rc == 0 && strstr(r.out, "normalised by"), "eval: %s%s", r.out,
          r.err);
}

/* ---------------------------------------------- end to end (issue 13) */

/* One 8-bit grey PNG: signature, IHDR, one zlib IDAT, IEND. */
static void png_chunk(FILE *fp, const char *type, const unsigned char *d,
                      uint32_t n)
{
    put_be32(fp, n);
    fwrite(type, 1, 4, fp);
    if (n) fwrite(d, 1, n, fp);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, d, n);
    put_be32(fp, (uint32_t)crc);
}

static int write_png(const char *path, const unsigned char *px, int h, int w)
{
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    unsigned char ihdr[13] = {0};
    for (int b = 0; b < 4; b++) {
        ihdr[b] = (unsigned char)((unsigned)w >> (24 - 8 * b));
        ihdr[4 + b] = (unsigned char)((unsigned)h >> (24 - 8 * b));
    }
    ihdr[8] = 8; /* bit depth; colour type 0 (grey), no interlace */
    unsigned char raw[E2E_SIDE * (E2E_SIDE + 1)], z[2 * sizeof raw + 64];
    for (int r = 0; r < h; r++) {
        raw[r * (w + 1)] = 0; /* filter: none */
        memcpy(raw + r * (w + 1) + 1, px + r * w, (size_t)w);
    }
    uLongf zn = sizeof z;
    if (compress(z, &zn, raw, (uLong)(h * (w + 1))) != Z_OK) return 1;
    FILE *fp = fopen(path, "wb");
    if (!fp) return 1;
    fwrite(sig, 1, 8, fp);
    png_chunk(fp, "IHDR", ihdr, 13);
    png_chunk(fp, "IDAT", z, (uint32_t)zn);
    png_chunk(fp, "IEND", NULL, 0);
    return ferror(fp) | (fclose(fp) != 0);
}

/* n images and labels of the Fashion-MNIST training IDX files. */
static int read_fashion(unsigned char *img, unsigned char *lab, int n)
{
    gzFile fi = gzopen(FASHION_DIR "/train-images-idx3-ubyte.gz", "rb");
    gzFile fl = gzopen(FASHION_DIR "/train-labels-idx1-ubyte.gz", "rb");
    unsigned char hdr[16];
    int ok = fi && fl && gzread(fi, hdr, 16) == 16 &&
             gzread(fl, hdr, 8) == 8 &&
             gzread(fi, img, (unsigned)(n * E2E_SIDE * E2E_SIDE)) ==
                 n * E2E_SIDE * E2E_SIDE &&
             gzread(fl, lab, (unsigned)n) == n;
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    return ok;
}

static const char *const fashion_names[10] = {
    "tshirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt",   "sneaker",  "bag",   "boot"};

/* Which images are moved: a seeded choice of exactly 40%, each to a
 * class drawn uniformly from the nine wrong ones. */
static void choose_moves(const unsigned char *lab, int n, int *folder,
                         uint8_t *moved)
{
    uint64_t s = 42;
    int32_t *perm = malloc((size_t)n * sizeof *perm);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((s >> 33) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < n; i++) {
        folder[i] = lab[i];
        moved[i] = 0;
    }
    for (int k = 0; k < n * 2 / 5; k++) {
        int i = perm[k];
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        folder[i] = (lab[i] + 1 + (int)((s >> 33) % 9)) % 10;
        moved[i] = 1;
    }
    free(perm);
}

/* DIR/train/<class>/img<i>.png (moved ones in a wrong class) and
 * DIR/trusted/img<i>.png listed in DIR/trusted.txt by class name: the
 * first 10 per class of the images after the training ones. */
static int write_e2e(const char *root, const unsigned char *img,
                     const unsigned char *lab, int n_all, const int *folder)
{
    char p[1200];
    int bad = 0;
    snprintf(p, sizeof p, "%s/train", root);
    bad |= mkdir(root, 0755) | mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/trusted", root);
    bad |= mkdir(p, 0755);
    for (int k = 0; k < 10; k++) {
        snprintf(p, sizeof p, "%s/train/%s", root, fashion_names[k]);
        bad |= mkdir(p, 0755);
    }
    for (int i = 0; i < E2E_TRAIN && !bad; i++) {
        snprintf(p, sizeof p, "%s/train/%s/img%d.png", root,
                 fashion_names[folder[i]], i);
        bad |= write_png(p, img + (size_t)i * E2E_SIDE * E2E_SIDE, E2E_SIDE,
                         E2E_SIDE);
    }
    snprintf(p, sizeof p, "%s/trusted.txt", root);
    FILE *list = fopen(p, "w");
    int taken[10] = {0};
    for (int i = E2E_TRAIN; i < n_all && list && !bad; i++) {
        if (taken[lab[i]] >= E2E_TRUSTED_PER_CLASS) continue;
        taken[lab[i]]++;
        snprintf(p, sizeof p, "%s/trusted/img%d.png", root, i);
        bad |= write_png(p, img + (size_t)i * E2E_SIDE * E2E_SIDE, E2E_SIDE,
                         E2E_SIDE);
        fprintf(list, "trusted/img%d.png %s\n", i, fashion_names[lab[i]]);
    }
    return bad || !list || (ferror(list) | (fclose(list) != 0));
}

/* Moved images among the suspects.csv rows (file column). */
static int count_moved(const char *csv, const uint8_t *moved, int *rows)
{
    char *t = slurp(csv, NULL);
    int hit = 0;
    *rows = 0;
    for (char *line = t ? strchr(t, '\n') : NULL; line && line[1];
         line = strchr(line + 1, '\n')) {
        char *end = strchr(line + 1, '\n'), *im = NULL;
        for (char *q = line + 1; q < end; q++)
            if (!strncmp(q, "img", 3)) im = q;
        int i = im ? atoi(im + 3) : -1;
        (*rows)++;
        hit += i >= 0 && i < E2E_TRAIN && moved[i];
    }
    free(t);
    return hit;
}

static void test_e2e_folder_suspects(void)
{
    if (!cli_available(0)) return;
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK)) {
        SKIP("Fashion-MNIST not in " FASHION_DIR);
        return;
    }
    l2rw_dataset a, b;
    if (l2rw_data_load("folder:/nonexistent-l2rw", &a, &b) == L2RW_ERR_ARG &&
        strstr(l2rw_last_error(), "unknown kind")) {
        SKIP("this build has no folder: reader");
        return;
    }
    enum { N_ALL = E2E_TRAIN + 400 };
    unsigned char *img = malloc((size_t)N_ALL * E2E_SIDE * E2E_SIDE);
    unsigned char lab[N_ALL];
    int folder[E2E_TRAIN];
    uint8_t moved[E2E_TRAIN];
    CHECK(img && read_fashion(img, lab, N_ALL), "read Fashion-MNIST");
    choose_moves(lab, E2E_TRAIN, folder, moved);
    char root[600], dir[600], args[4000], csv[700];
    path_in(root, sizeof root, "e2e");
    path_in(dir, sizeof dir, "e2e-run");
    CHECK(!write_e2e(root, img, lab, N_ALL, folder), "write PNGs");
    free(img);
    snprintf(args, sizeof args, "train --method l2rw --model lenet "
             "--data folder:%s/train,frac=0 --val-data list:%s/trusted.txt,"
             "frac=0 --val-per-class 0 --steps 200 --batch 100 --eval-every 0 "
             "--no-plots --out %s", root, root, dir);
    cli_result r = run_cli(args);
    CHECK(r.rc == 0, "train rc %d: %s", r.rc, r.err);
    CHECK(strstr(r.out, "100 examples, balanced; 0 also in the training set "
                        "by pixels, 0 by file"), "start: %s", r.out);
    snprintf(csv, sizeof csv, "%s/suspects.csv", dir);
    snprintf(args, sizeof args, "suspects %s --top %d", dir, E2E_TOP);
    r = run_cli(args);
    CHECK(r.rc == 0, "suspects rc %d: %s", r.rc, r.err);
    int rows, hit = count_moved(csv, moved, &rows);
    double prec = (double)hit / E2E_TOP;
    printf("   e2e: %d of the top %d suspects were moved (precision@100 "
           "%.2f; 40%% of the folder was moved)\n", hit, E2E_TOP, prec);
    CHECK(rows == E2E_TOP && prec > 0.6, "rows %d, precision@100 %.2f", rows,
          prec);
    /* predict names the files and classes of folder data */
    snprintf(csv, sizeof csv, "%s/pred.csv", dir);
    snprintf(args, sizeof args, "predict --load %s/model.l2rw --data "
             "folder:%s/train,frac=0 --split train --out %s", dir, root, csv);
    r = run_cli(args);
    CHECK(r.rc == 0, "predict rc %d: %s", r.rc, r.err);
    char *t = slurp(csv, NULL);
    CHECK(t && !strncmp(t, "id,file,predicted,predicted_class,label,p_bag,"
                           "p_boot,p_coat,", 59) && strstr(t, "/img"),
          "predict header: %.80s", t ? t : "");
    free(t);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/l2rw-suspects-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp failed");
        return CHECK_DONE("test_suspects");
    }
    RUN(test_val_data_overlap);
    RUN(test_val_data_distinct);
    RUN(test_val_data_unbalanced);
    RUN(test_val_data_checks);
    RUN(test_val_data_fingerprint);
    RUN(test_record_names);
    RUN(test_suspects_plain);
    RUN(test_suspects_named);
    RUN(test_suspects_bad);
    RUN(test_cli_val_data_predict);
    RUN(test_e2e_folder_suspects);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    return CHECK_DONE("test_suspects");
}
