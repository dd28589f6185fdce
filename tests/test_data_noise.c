/* Corruptions (rates within binomial bounds for fixed seeds), spec
 * parsers, class imbalance, subsampling, the clean split, normalisation,
 * the audit and the whole pipeline on a generated IDX pair. */
#define _POSIX_C_SOURCE 200809L
#include "l2rw.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bound for a Binomial(n, q) count: 5 standard deviations. For a fixed
 * seed the result is deterministic; the bound says a correct generator
 * would fail it with probability below 6e-7 for a random seed, while a
 * wrong rate (e.g. the paper code's never-drawn last class, or P instead
 * of P(1-1/K)) lies far outside it at these sample sizes. */
static int within_5sigma(long count, long n, double q)
{
    double mean = n * q, sd = sqrt(n * q * (1 - q));
    return fabs((double)count - mean) <= 5 * sd + 1e-9;
}

/* n examples of K classes (label i % K); x[i] = (i, label) so tests can
 * trace an example back to its source. */
static void make_set(l2rw_dataset *d, int n, int K)
{
    l2rw_status s = l2rw_dataset_alloc(d, n, 2, 1, 1, K);
    if (s != L2RW_OK) {
        printf("alloc failed\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        d->y[i] = d->y_true[i] = i % K;
        d->x[2 * i] = (float)i;
        d->x[2 * i + 1] = (float)(i % K);
    }
}

#define CHECK_ARG(expr, what)                                                \
    do {                                                                     \
        l2rw_status s_ = (expr);                                             \
        CHECK(s_ == L2RW_ERR_ARG, "%s -> %s (%s)", #expr, l2rw_strerror(s_),  \
              l2rw_last_error());                                            \
        CHECK(strstr(l2rw_last_error(), (what)) != NULL,                     \
              "%s: message '%s' lacks '%s'", #expr, l2rw_last_error(),       \
              (what));                                                       \
    } while (0)

static void test_noise_parse(void)
{
    l2rw_noise nz;
    char buf[64];
    CHECK_OK(l2rw_noise_parse(&nz, "uniform:0.4"));
    CHECK(nz.kind == L2RW_NOISE_UNIFORM && nz.p == 0.4, "uniform parse");
    CHECK_OK(l2rw_noise_parse(&nz, "background:0.4"));
    CHECK(nz.kind == L2RW_NOISE_BACKGROUND && nz.background == 0,
          "background default class 0");
    l2rw_noise_format(&nz, buf, sizeof buf);
    CHECK(!strcmp(buf, "background:0.4:0"), "format prints the class: %s",
          buf);
    CHECK_OK(l2rw_noise_parse(&nz, "background:1:7"));
    CHECK(nz.p == 1 && nz.background == 7, "background:1:7");
    CHECK_OK(l2rw_noise_parse(&nz, "pair:0"));
    CHECK(nz.kind == L2RW_NOISE_PAIR && nz.p == 0, "pair:0");
    CHECK_OK(l2rw_noise_parse(&nz, "none"));
    CHECK(nz.kind == L2RW_NOISE_NONE, "none");
    CHECK_OK(l2rw_noise_parse(&nz, NULL));
    CHECK_ARG(l2rw_noise_parse(&nz, "uniform:1.7"), "1.7");
    CHECK_ARG(l2rw_noise_parse(&nz, "uniform:-0.1"), "[0, 1]");
    CHECK_ARG(l2rw_noise_parse(&nz, "uniform:nan"), "nan");
    CHECK_ARG(l2rw_noise_parse(&nz, "uniform:"), "probability");
    CHECK_ARG(l2rw_noise_parse(&nz, "uniform:0.4x"), "0.4x");
    CHECK_ARG(l2rw_noise_parse(&nz, "uniform:0.4:2"), ":2");
    CHECK_ARG(l2rw_noise_parse(&nz, "pair:0.4:1"), ":1");
    CHECK_ARG(l2rw_noise_parse(&nz, "background:0.4:x"), "'x'");
    CHECK_ARG(l2rw_noise_parse(&nz, "background:0.4:-1"), "-1");
    CHECK_ARG(l2rw_noise_parse(&nz, "background:0.4:"), "background");
    CHECK_ARG(l2rw_noise_parse(&nz, "gauss:0.1"), "unknown kind");
    CHECK(nz.kind == L2RW_NOISE_NONE, "failed parse leaves none");
}

static void test_uniform(void)
{
    enum { N = 20000, K = 10 };
    l2rw_dataset d;
    l2rw_noise nz = {L2RW_NOISE_UNIFORM, 0.4, 0};
    make_set(&d, N, K);
    uint8_t *hit = malloc(N);
    CHECK_OK(l2rw_noise_apply(&d, &nz, 42, hit));
    long changed = 0, n_hit = 0, per_cls[K] = {0}, to[K] = {0}, ok = 1;
    for (int i = 0; i < N; i++) {
        n_hit += hit[i];
        if (d.y[i] != d.y_true[i]) {
            changed++;
            per_cls[d.y_true[i]]++;
            ok &= hit[i];
        }
        if (hit[i]) to[d.y[i]]++;
        ok &= d.y_true[i] == i % K && d.y[i] >= 0 && d.y[i] < K;
    }
    CHECK(ok, "y_true untouched, labels in range, changes only where hit");
    CHECK(within_5sigma(n_hit, N, 0.4), "uniform hits %ld of %d", n_hit, N);
    /* Effective rate P(1 - 1/K) = 0.36, the number. */
    CHECK(within_5sigma(changed, N, 0.36), "uniform changed %ld (exp. %g)",
          changed, 0.36 * N);
    for (int k = 0; k < K; k++) {
        CHECK(within_5sigma(per_cls[k], N / K, 0.36),
              "class %d changed %ld of %d", k, per_cls[k], N / K);
        /* Every class, the last included, is drawn 1/K of the time. */
        CHECK(within_5sigma(to[k], n_hit, 1.0 / K), "class %d drawn %ld of "
              "%ld hits", k, to[k], n_hit);
    }
    long cnt[K];
    for (int k = 0; k < K; k++) cnt[k] = N / K;
    CHECK_CLOSE(l2rw_noise_expected_rate(&nz, cnt, K), 0.36, 1e-12, 0,
                "expected uniform rate");
    /* Same seed: identical labels; another seed: different ones. */
    l2rw_dataset e, f;
    make_set(&e, N, K);
    make_set(&f, N, K);
    CHECK_OK(l2rw_noise_apply(&e, &nz, 42, NULL));
    CHECK_OK(l2rw_noise_apply(&f, &nz, 43, NULL));
    CHECK(memcmp(d.y, e.y, N * sizeof(int32_t)) == 0, "same seed, same noise");
    CHECK(memcmp(d.y, f.y, N * sizeof(int32_t)) != 0, "seed changes noise");
    /* P = 1: every example hit, 1 - 1/K changed; P = 0: nothing. */
    l2rw_dataset_free(&e);
    make_set(&e, N, K);
    nz.p = 1;
    CHECK_OK(l2rw_noise_apply(&e, &nz, 7, hit));
    changed = n_hit = 0;
    for (int i = 0; i < N; i++) {
        changed += e.y[i] != e.y_true[i];
        n_hit += hit[i];
    }
    CHECK(n_hit == N && within_5sigma(changed, N, 0.9), "p=1: %ld hit, %ld "
          "changed", n_hit, changed);
    l2rw_dataset_free(&e);
    make_set(&e, N, K);
    nz.p = 0;
    CHECK_OK(l2rw_noise_apply(&e, &nz, 7, hit));
    changed = 0;
    for (int i = 0; i < N; i++) changed += e.y[i] != e.y_true[i] || hit[i];
    CHECK(changed == 0, "p=0 changes nothing");
    free(hit);
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&e);
    l2rw_dataset_free(&f);
}

static void test_background_pair(void)
{
    enum { N = 20000, K = 10 };
    l2rw_dataset d;
    l2rw_noise bg = {L2RW_NOISE_BACKGROUND, 0.4, 3};
    make_set(&d, N, K);
    CHECK_OK(l2rw_noise_apply(&d, &bg, 5, NULL));
    long changed = 0, on_c = 0, ok = 1;
    for (int i = 0; i < N; i++) {
        if (d.y[i] != d.y_true[i]) {
            changed++;
            ok &= d.y[i] == 3;
        }
        on_c += d.y_true[i] == 3 && d.y[i] != 3;
    }
    CHECK(ok && on_c == 0, "background flips go to class 3 only");
    /* Examples of class 3 cannot change: rate 0.4 * (1 - 1/10). */
    CHECK(within_5sigma(changed, N - N / K, 0.4), "background changed %ld",
          changed);
    long cnt[K];
    for (int k = 0; k < K; k++) cnt[k] = N / K;
    CHECK_CLOSE(l2rw_noise_expected_rate(&bg, cnt, K), 0.36, 1e-12, 0,
                "expected background rate");
    bg.background = K;
    CHECK_ARG(l2rw_noise_apply(&d, &bg, 5, NULL), "background class 10");
    l2rw_dataset_free(&d);

    l2rw_noise pr = {L2RW_NOISE_PAIR, 0.3, 0};
    make_set(&d, N, K);
    CHECK_OK(l2rw_noise_apply(&d, &pr, 9, NULL));
    changed = 0;
    ok = 1;
    long per[K] = {0};
    for (int i = 0; i < N; i++)
        if (d.y[i] != d.y_true[i]) {
            changed++;
            per[d.y_true[i]]++;
            ok &= d.y[i] == (d.y_true[i] + 1) % K;
        }
    CHECK(ok, "pair flips k -> k+1 mod K (9 -> 0)");
    CHECK(within_5sigma(changed, N, 0.3), "pair changed %ld", changed);
    for (int k = 0; k < K; k++)
        CHECK(within_5sigma(per[k], N / K, 0.3), "pair class %d: %ld", k,
              per[k]);
    l2rw_dataset_free(&d);
}

static void test_imbalance(void)
{
    l2rw_imbalance imb;
    CHECK_OK(l2rw_imbalance_parse(&imb, "4,9:0.995"));
    CHECK(imb.kind == L2RW_IMB_SHARE && imb.k == 2 && imb.classes[0] == 4 &&
              imb.classes[1] == 9 && imb.share == 0.995,
          "imbalance parse");
    CHECK_OK(l2rw_imbalance_parse(&imb, "longtail:100"));
    CHECK(imb.kind == L2RW_IMB_LONGTAIL && imb.factor == 100, "longtail");
    CHECK_OK(l2rw_imbalance_parse(&imb, "none"));
    CHECK(imb.kind == L2RW_IMB_NONE, "none");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "4,9:x"), "'x'");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "4,9:1"), "(0, 1)");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "4,9:0"), "(0, 1)");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "4:0.9"), "two");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "4,4:0.9"), "twice");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "4,9"), "SHARE");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "4,,9:0.5"), "class");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "4,9,:0.5"), "class");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "a,9:0.5"), "class");
    CHECK_ARG(l2rw_imbalance_parse(&imb, "longtail:0.5"), "factor");
    CHECK(imb.kind == L2RW_IMB_NONE, "failed parse leaves none");

    enum { N = 6000, K = 10 };
    l2rw_dataset tr, te;
    make_set(&tr, N, K);
    make_set(&te, 1000, K);
    CHECK_OK(l2rw_imbalance_parse(&imb, "4,9:0.9"));
    CHECK_OK(l2rw_imbalance_select(&tr, &te, &imb));
    CHECK(tr.n == 1200 && tr.classes == 2 && te.n == 200 && te.classes == 2,
          "select keeps classes 4 and 9: %d, %d", tr.n, te.n);
    int ok = 1;
    for (int i = 0; i < tr.n; i++)
        ok &= tr.y[i] == (tr.x[2 * i + 1] == 4 ? 0 : 1) && tr.y[i] == tr.y_true[i];
    for (int i = 0; i < te.n; i++)
        ok &= te.y[i] == (te.x[2 * i + 1] == 4 ? 0 : 1);
    CHECK(ok, "listed order relabels 4 -> 0, 9 -> 1 in train and test");
    l2rw_dataset big;
    CHECK_OK(l2rw_dataset_copy(&big, &tr));
    CHECK_ARG(l2rw_imbalance_subsample(&big, &imb, 1000, 1), "900");
    l2rw_dataset_free(&big);
    CHECK_OK(l2rw_dataset_copy(&big, &tr));
    CHECK_OK(l2rw_imbalance_subsample(&big, &imb, 500, 1));
    long c0 = 0;
    for (int i = 0; i < big.n; i++) c0 += big.y[i] == 0;
    CHECK(big.n == 500 && c0 == 450, "share 0.9 of 500: %d, %ld dominant",
          big.n, c0);
    ok = 1;
    for (int i = 1; i < big.n; i++) ok &= big.id[i] > big.id[i - 1];
    CHECK(ok, "subsample keeps source order, no repeats");
    l2rw_dataset_free(&big);
    /* n = 0: the largest feasible size, 600 dominant + 67. */
    CHECK_OK(l2rw_imbalance_subsample(&tr, &imb, 0, 1));
    c0 = 0;
    for (int i = 0; i < tr.n; i++) c0 += tr.y[i] == 0;
    CHECK(tr.n == 667 && c0 == 600, "largest n: %d with %ld dominant", tr.n,
          c0);
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);

    /* Three classes: the rest shared equally, first ones get remainders. */
    make_set(&tr, N, K);
    CHECK_OK(l2rw_imbalance_parse(&imb, "1,2,3:0.5"));
    CHECK_OK(l2rw_imbalance_select(&tr, NULL, &imb));
    CHECK_OK(l2rw_imbalance_subsample(&tr, &imb, 101, 3));
    long cc[3] = {0};
    for (int i = 0; i < tr.n; i++) cc[tr.y[i]]++;
    CHECK(cc[0] == 51 && cc[1] == 25 && cc[2] == 25, "1,2,3:0.5 of 101: "
          "%ld %ld %ld", cc[0], cc[1], cc[2]);
    l2rw_dataset_free(&tr);

    make_set(&tr, N, K);
    CHECK_OK(l2rw_imbalance_parse(&imb, "longtail:10"));
    CHECK_OK(l2rw_imbalance_subsample(&tr, &imb, 0, 4));
    long lt[K] = {0};
    for (int i = 0; i < tr.n; i++) lt[tr.y[i]]++;
    CHECK(lt[0] == 600 && lt[9] == 60 && lt[3] == 278,
          "longtail 10: %ld .. %ld (class 3: %ld)", lt[0], lt[9], lt[3]);
    CHECK_ARG(l2rw_imbalance_subsample(&tr, &imb, 100, 4), "train size");
    l2rw_dataset_free(&tr);

    make_set(&tr, N, K);
    CHECK_OK(l2rw_imbalance_parse(&imb, "3,12:0.5"));
    CHECK_ARG(l2rw_imbalance_select(&tr, NULL, &imb), "class 12");
    l2rw_dataset_free(&tr);
}

static void test_split(void)
{
    enum { N = 6000, K = 10 };
    l2rw_dataset tr, val, tr2, val2;
    make_set(&tr, N, K);
    CHECK_OK(l2rw_split_clean(&tr, &val, 50, 0, 11));
    CHECK(val.n == 500 && tr.n == 5500, "split 50/class: %d + %d", val.n,
          tr.n);
    long cnt[K] = {0};
    char *seen = calloc(N, 1);
    int ok = 1;
    for (int i = 0; i < val.n; i++) {
        cnt[val.y[i]]++;
        seen[val.id[i]]++;
        ok &= val.x[2 * i] == (float)val.id[i];
    }
    for (int i = 0; i < tr.n; i++) {
        seen[tr.id[i]]++;
        ok &= tr.x[2 * i] == (float)tr.id[i];
    }
    for (int i = 0; i < N; i++) ok &= seen[i] == 1;
    for (int k = 0; k < K; k++) ok &= cnt[k] == 50;
    CHECK(ok, "clean split disjoint, covers all, 50 per class, x follows id");
    /* Same seed, same split; noise on train leaves val clean. */
    make_set(&tr2, N, K);
    CHECK_OK(l2rw_split_clean(&tr2, &val2, 50, 0, 11));
    CHECK(memcmp(val.id, val2.id, 500 * sizeof(int32_t)) == 0,
          "split deterministic");
    l2rw_noise nz = {L2RW_NOISE_UNIFORM, 1, 0};
    CHECK_OK(l2rw_noise_apply(&tr, &nz, 1, NULL));
    ok = 1;
    for (int i = 0; i < val.n; i++) ok &= val.y[i] == val.y_true[i];
    CHECK(ok, "validation labels stay clean");
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&val);
    l2rw_dataset_free(&tr2);
    l2rw_dataset_free(&val2);

    make_set(&tr, N, K);
    CHECK_OK(l2rw_split_clean(&tr, &val, 0, 25, 2));
    long c2[K] = {0};
    for (int i = 0; i < val.n; i++) c2[val.y[i]]++;
    CHECK(val.n == 25 && c2[0] == 3 && c2[4] == 3 && c2[5] == 2 &&
              c2[9] == 2 && tr.n == N - 25,
          "total 25 balanced: %ld..%ld", c2[0], c2[9]);
    l2rw_dataset_free(&val);
    CHECK_ARG(l2rw_split_clean(&tr, &val, 1000, 0, 2), "only");
    CHECK(tr.n == N - 25, "failed split leaves train alone");
    CHECK_OK(l2rw_split_clean(&tr, &val, 0, 0, 2));
    CHECK(val.n == 0 && val.c == 2, "no split: empty val of the same shape");
    l2rw_dataset_free(&val);
    CHECK_OK(l2rw_subsample(&tr, 1000, 8));
    CHECK(tr.n == 1000, "subsample to 1000");
    l2rw_dataset_free(&tr);
    free(seen);
}

static void test_norm(void)
{
    l2rw_dataset d, e;
    l2rw_norm nm, nm2;
    /* channel 0: 0,2,0,2 (mean 1, std 1); channel 1 constant 5. */
    CHECK_OK(l2rw_dataset_alloc(&d, 2, 2, 1, 2, 2));
    float v[8] = {0, 2, 5, 5, 0, 2, 5, 5};
    memcpy(d.x, v, sizeof v);
    CHECK_OK(l2rw_dataset_copy(&e, &d));
    CHECK_OK(l2rw_norm_fit(&nm, &d));
    CHECK(nm.c == 2 && nm.mean[0] == 1 && nm.std[0] == 1 && nm.mean[1] == 5 &&
              nm.std[1] == 1,
          "fit: %g %g %g %g", nm.mean[0], nm.std[0], nm.mean[1], nm.std[1]);
    CHECK_OK(l2rw_norm_apply(&nm, &d));
    CHECK(d.x[0] == -1 && d.x[1] == 1 && d.x[2] == 0, "apply");
    char path[] = "/tmp/l2rw_norm_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    nm.mean[0] = 0.1f; /* not representable: tests %.9g round trip */
    nm.std[0] = 0.3f;
    CHECK_OK(l2rw_norm_save(&nm, path));
    CHECK_OK(l2rw_norm_load(&nm2, path));
    CHECK(nm2.c == 2 && nm2.mean[0] == 0.1f && nm2.std[0] == 0.3f,
          "norm save/load exact");
    l2rw_norm_free(&nm2);
    FILE *f = fopen(path, "w");
    fprintf(f, "l2rw-norm 1\n2\n0 1\n");
    fclose(f);
    l2rw_status s = l2rw_norm_load(&nm2, path);
    CHECK(s == L2RW_ERR_FORMAT && nm2.mean == NULL, "truncated norm file: %s",
          l2rw_last_error());
    remove(path);
    l2rw_dataset bad;
    CHECK_OK(l2rw_dataset_alloc(&bad, 1, 3, 1, 1, 2));
    CHECK(l2rw_norm_apply(&nm, &bad) == L2RW_ERR_SHAPE, "channel mismatch");
    l2rw_dataset_free(&bad);
    l2rw_norm_free(&nm);
    l2rw_dataset_free(&d);
    l2rw_dataset_free(&e);
}

/* An IDX pair of n 4x4 images, K classes, pixel values depending on the
 * example, gzip-free; returns the spec "idx:IMG,LAB". */
static void write_idx(char *spec, size_t size, char *img, char *lab, int n,
                      int K)
{
    int fd = mkstemp(img);
    FILE *f = fdopen(fd, "wb");
    unsigned char h[16] = {0, 0, 8, 3, (unsigned char)(n >> 24),
                           (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                           (unsigned char)n, 0, 0, 0, 4, 0, 0, 0, 4};
    fwrite(h, 1, 16, f);
    for (int i = 0; i < n * 16; i++) fputc((i * 31 + i / 16) & 0xFF, f);
    fclose(f);
    fd = mkstemp(lab);
    f = fdopen(fd, "wb");
    unsigned char hl[8] = {0, 0, 8, 1, (unsigned char)(n >> 24),
                           (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                           (unsigned char)n};
    fwrite(hl, 1, 8, f);
    for (int i = 0; i < n; i++) fputc(i % K, f);
    fclose(f);
    snprintf(spec, size, "idx:%s,%s,frac=0.1", img, lab);
}

static void test_pipeline(void)
{
    char img[] = "/tmp/l2rw_pimg_XXXXXX", lab[] = "/tmp/l2rw_plab_XXXXXX";
    char spec[200];
    write_idx(spec, sizeof spec, img, lab, 3000, 10);
    l2rw_data_cfg cfg = l2rw_data_cfg_default();
    cfg.data = spec;
    cfg.noise = "uniform:0.4";
    cfg.val_per_class = 10;
    cfg.train_size = 2000;
    cfg.seed = 5;
    l2rw_data a, b, c;
    CHECK_OK(l2rw_data_prepare(&a, &cfg));
    CHECK_OK(l2rw_data_prepare(&b, &cfg));
    cfg.seed = 6;
    CHECK_OK(l2rw_data_prepare(&c, &cfg));
    CHECK(a.train.n == 2000 && a.val.n == 100 && a.test.n == 300 &&
              a.train.classes == 10,
          "pipeline sizes %d %d %d", a.train.n, a.val.n, a.test.n);
    size_t nx = (size_t)a.train.n * 16;
    CHECK(b.train.n == a.train.n &&
              memcmp(a.train.x, b.train.x, nx * sizeof(float)) == 0 &&
              memcmp(a.train.y, b.train.y, 2000 * sizeof(int32_t)) == 0 &&
              memcmp(a.val.id, b.val.id, 100 * sizeof(int32_t)) == 0,
          "same seed, identical data");
    CHECK(memcmp(a.train.id, c.train.id, 2000 * sizeof(int32_t)) != 0 &&
              memcmp(a.train.y, c.train.y, 2000 * sizeof(int32_t)) != 0,
          "another seed, other data");
    /* Held-out test set does not depend on the training seed. */
    CHECK(memcmp(a.test.id, c.test.id, 300 * sizeof(int32_t)) == 0,
          "test split fixed by the data spec");
    double m = 0, q = 0;
    for (size_t i = 0; i < nx; i++) m += a.train.x[i];
    m /= (double)nx;
    for (size_t i = 0; i < nx; i++) q += (a.train.x[i] - m) * (a.train.x[i] - m);
    CHECK_CLOSE(m, 0, 0, 1e-5, "normalised train mean");
    CHECK_CLOSE(sqrt(q / (double)nx), 1, 1e-5, 0, "normalised train std");
    int ok = 1;
    for (int i = 0; i < a.val.n; i++) ok &= a.val.y[i] == a.val.y_true[i];
    CHECK(ok, "val clean");
    const l2rw_audit *au = &a.audit;
    long changed = 0, tot = 0;
    for (int i = 0; i < a.train.n; i++) changed += a.train.y[i] != a.train.y_true[i];
    for (int k = 0; k < au->classes; k++) tot += au->train_true[k];
    CHECK(au->n_changed == changed && tot == 2000 && au->n_val == 100 &&
              au->n_test == 300 && au->val_count[3] == 10,
          "audit counts");
    CHECK_CLOSE(au->effective_rate, changed / 2000.0, 1e-12, 0, "audit rate");
    CHECK(within_5sigma(changed, 2000, 0.36), "changed %ld", changed);
    CHECK(within_5sigma(au->n_hit, 2000, 0.4), "hit %ld", au->n_hit);
    CHECK_CLOSE(au->expected_rate, 0.36, 1e-12, 0, "audit expected rate");
    CHECK(au->nominal_rate == 0.4, "audit nominal rate");
    char jp[] = "/tmp/l2rw_audit_XXXXXX";
    int fd = mkstemp(jp);
    close(fd);
    CHECK_OK(l2rw_audit_save(au, jp, L2RW_AUDIT_JSON));
    FILE *f = fopen(jp, "r");
    char buf[4096];
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = 0;
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "\"n_changed\": %ld,", changed);
    CHECK(strstr(buf, want) && strstr(buf, "\"noise\": \"uniform:0.4\"") &&
              strstr(buf, "\"val_count\": [10, 10,") && buf[got - 2] == '}',
          "audit JSON: %s", buf);
    CHECK_OK(l2rw_audit_save(au, jp, L2RW_AUDIT_TEXT));
    f = fopen(jp, "r");
    got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = 0;
    fclose(f);
    CHECK(strstr(buf, "effective rate") && strstr(buf, "expected 0.3600"),
          "audit text: %s", buf);
    CHECK(l2rw_audit_save(au, "/nonexistent/dir/a.json", L2RW_AUDIT_JSON) ==
              L2RW_ERR_IO,
          "audit to an unwritable path");
    remove(jp);
    l2rw_data_free(&a);
    l2rw_data_free(&b);
    l2rw_data_free(&c);

    /* Imbalance through the pipeline; errors leave the output zeroed. */
    cfg.noise = "background:0.4:1";
    cfg.imbalance = "4,9:0.9";
    cfg.val_per_class = 5;
    cfg.train_size = 200;
    l2rw_dataset ltr, lte;
    CHECK_OK(l2rw_data_load(spec, &ltr, &lte));
    int n49 = 0;
    for (int i = 0; i < lte.n; i++) n49 += lte.y[i] == 4 || lte.y[i] == 9;
    l2rw_dataset_free(&ltr);
    l2rw_dataset_free(&lte);
    CHECK_OK(l2rw_data_prepare(&a, &cfg));
    CHECK(a.train.n == 200 && a.val.n == 10 && a.test.n == n49 &&
              a.train.classes == 2 && a.audit.train_true[0] == 180,
          "imbalanced pipeline: %d %d %d", a.train.n, a.val.n, a.test.n);
    CHECK(strstr(a.audit.imbalance, "4->0") != NULL, "audit says relabel: %s",
          a.audit.imbalance);
    l2rw_data_free(&a);
    cfg.noise = "uniform:1.7";
    CHECK_ARG(l2rw_data_prepare(&a, &cfg), "1.7");
    CHECK(a.train.x == NULL && a.audit.train_true == NULL, "zeroed on error");
    cfg.noise = "background:0.4:5";
    CHECK_ARG(l2rw_data_prepare(&a, &cfg), "background class 5");
    cfg.noise = NULL;
    cfg.imbalance = "4,9:x";
    CHECK_ARG(l2rw_data_prepare(&a, &cfg), "'x'");
    cfg.imbalance = NULL;
    cfg.train_size = 2651; /* 2700 after the held-out tenth, 50 to val */
    CHECK_ARG(l2rw_data_prepare(&a, &cfg), "2650");
    cfg.train_size = 2650;
    CHECK_OK(l2rw_data_prepare(&a, &cfg));
    CHECK(a.train.n == 2650, "train size = all available");
    l2rw_data_free(&a);
    cfg.val_size = 10;
    CHECK_ARG(l2rw_data_prepare(&a, &cfg), "not both");
    remove(img);
    remove(lab);
}

int main(void)
{
    RUN(test_noise_parse);
    RUN(test_uniform);
    RUN(test_background_pair);
    RUN(test_imbalance);
    RUN(test_split);
    RUN(test_norm);
    RUN(test_pipeline);
    return CHECK_DONE("test_data_noise");
}
