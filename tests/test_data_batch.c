/* Batches: the shuffled-epoch sampler (determinism, coverage, resume),
 * class-balanced draws, gather, and the crop/flip augmentation checked
 * against an explicit pad-crop-mirror reference. */
#include "l2rw.h"
#include "check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int within_5sigma(long count, long n, double q)
{
    return fabs(count - n * q) <= 5 * sqrt(n * q * (1 - q));
}

static void test_sampler(void)
{
    enum { N = 10, B = 4, STEPS = 10 }; /* 40 positions = 4 epochs */
    l2rw_sampler s, r, o;
    int32_t seq[STEPS][B], idx[B];
    CHECK_OK(l2rw_sampler_init(&s, N, B, 123));
    for (int t = 0; t < STEPS; t++) CHECK_OK(l2rw_sampler_batch(&s, t, seq[t]));
    int ok = 1;
    for (int e = 0; e < STEPS * B / N; e++) {
        int seen[N] = {0};
        for (int p = e * N; p < (e + 1) * N; p++) seen[seq[p / B][p % B]]++;
        for (int i = 0; i < N; i++) ok &= seen[i] == 1;
    }
    CHECK(ok, "every epoch is a permutation, batches cross epoch ends");
    int same01 = 1;
    for (int p = 0; p < N; p++)
        same01 &= seq[p / B][p % B] == seq[(p + N) / B][(p + N) % B];
    CHECK(!same01, "epochs are shuffled differently");
    /* Resume: a fresh sampler asked for step 7 alone, then step 2. */
    CHECK_OK(l2rw_sampler_init(&r, N, B, 123));
    CHECK_OK(l2rw_sampler_batch(&r, 7, idx));
    CHECK(memcmp(idx, seq[7], sizeof idx) == 0, "resume at step 7");
    CHECK_OK(l2rw_sampler_batch(&r, 2, idx));
    CHECK(memcmp(idx, seq[2], sizeof idx) == 0, "step 2 after step 7");
    CHECK_OK(l2rw_sampler_init(&o, N, B, 124));
    int diff = 0;
    for (int t = 0; t < STEPS; t++) {
        CHECK_OK(l2rw_sampler_batch(&o, t, idx));
        diff |= memcmp(idx, seq[t], sizeof idx) != 0;
    }
    CHECK(diff, "another seed, another order");
    CHECK_CLOSE(l2rw_sampler_epoch(&s, 5), 2.0, 0, 1e-12, "epoch of step 5");
    CHECK(l2rw_sampler_batch(&s, -1, idx) == L2RW_ERR_ARG, "negative step");
    l2rw_sampler bad;
    CHECK(l2rw_sampler_init(&bad, 0, 4, 1) == L2RW_ERR_ARG, "empty sampler");
    l2rw_sampler_free(&s);
    l2rw_sampler_free(&r);
    l2rw_sampler_free(&o);
    l2rw_sampler_free(&bad);
}

static void test_balanced(void)
{
    enum { N = 100, DRAWS = 30000 };
    int32_t y[N];
    for (int i = 0; i < N; i++) y[i] = i < 90 ? 0 : i < 99 ? 1 : 2;
    l2rw_balanced b;
    CHECK_OK(l2rw_balanced_init(&b, y, N, 4)); /* class 3 absent */
    CHECK(b.present == 3, "3 classes present");
    int32_t *idx = malloc(DRAWS * sizeof *idx), *idx2 = malloc(DRAWS * sizeof *idx2);
    l2rw_balanced_draw(&b, 99, DRAWS, idx);
    l2rw_balanced_draw(&b, 99, DRAWS, idx2);
    CHECK(memcmp(idx, idx2, DRAWS * sizeof *idx) == 0, "draws fixed by key");
    long per[4] = {0}, ex[N] = {0};
    for (int j = 0; j < DRAWS; j++) {
        per[y[idx[j]]]++;
        ex[idx[j]]++;
    }
    for (int k = 0; k < 3; k++)
        CHECK(within_5sigma(per[k], DRAWS, 1.0 / 3), "class %d drawn %ld", k,
              per[k]);
    int all = 1;
    for (int i = 90; i < 99; i++)
        all &= within_5sigma(ex[i], per[1], 1.0 / 9);
    CHECK(all, "examples uniform within class 1");
    l2rw_balanced_draw(&b, 100, DRAWS, idx2);
    CHECK(memcmp(idx, idx2, DRAWS * sizeof *idx) != 0, "another key");
    l2rw_balanced_free(&b);
    y[5] = 4;
    CHECK(l2rw_balanced_init(&b, y, N, 4) == L2RW_ERR_LABEL, "bad label");
    l2rw_balanced_free(&b);
    free(idx);
    free(idx2);
}

static void test_gather(void)
{
    l2rw_dataset d;
    CHECK_OK(l2rw_dataset_alloc(&d, 5, 1, 1, 3, 4));
    for (int i = 0; i < 15; i++) d.x[i] = (float)i;
    for (int i = 0; i < 5; i++) {
        d.y[i] = i % 4;
        d.y_true[i] = (i + 1) % 4;
        d.id[i] = 100 + i;
    }
    int32_t idx[3] = {4, 0, 4}, y[3], yt[3], id[3];
    float x[9];
    CHECK_OK(l2rw_gather(&d, idx, 3, x, y, yt, id));
    CHECK(x[0] == 12 && x[2] == 14 && x[3] == 0 && x[8] == 14 && y[0] == 0 &&
              yt[0] == 1 && id[1] == 100 && id[2] == 104,
          "gather copies x, y, y_true, id");
    CHECK_OK(l2rw_gather(&d, idx, 3, NULL, y, NULL, NULL));
    idx[1] = 5;
    CHECK(l2rw_gather(&d, idx, 3, x, y, yt, id) == L2RW_ERR_ARG,
          "index out of range");
    CHECK(l2rw_augment_default(&d) == 0, "no augmentation for 1x1x3");
    CHECK_OK(l2rw_dataset_validate(&d, "set"));
    d.y_true[2] = 4;
    CHECK(l2rw_dataset_validate(&d, "set") == L2RW_ERR_LABEL &&
              strstr(l2rw_last_error(), "set: example 2"),
          "validate: label: %s", l2rw_last_error());
    d.y_true[2] = 3;
    d.x[7] = NAN;
    CHECK(l2rw_dataset_validate(&d, "set") == L2RW_ERR_NUMERIC,
          "validate: NaN feature");
    l2rw_dataset sub;
    int32_t pick[2] = {3, 1};
    CHECK_OK(l2rw_dataset_subset(&sub, &d, pick, 2));
    CHECK(sub.n == 2 && sub.x[0] == 9 && sub.id[1] == 101 && sub.classes == 4,
          "subset");
    l2rw_dataset_free(&sub);
    l2rw_dataset_free(&d);
    CHECK_OK(l2rw_dataset_alloc(&d, 1, 3, 32, 32, 10));
    CHECK(l2rw_augment_default(&d) == 1, "augmentation for CIFAR shape");
    l2rw_dataset_free(&d);
}

/* Reference: pad by p with zeros, take the h x w window at (dy, dx),
 * mirror it when flip. */
static void reference(float *out, const float *in, int c, int h, int w,
                      int p, int dy, int dx, int flip)
{
    int H = h + 2 * p, W = w + 2 * p;
    float *pad = calloc((size_t)c * H * W, sizeof *pad);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                pad[(ch * H + y + p) * W + x + p] = in[(ch * h + y) * w + x];
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = pad[(ch * H + y + dy) * W + x + dx];
                out[(ch * h + y) * w + (flip ? w - 1 - x : x)] = v;
            }
    free(pad);
}

static void test_augment(void)
{
    enum { C = 2, H = 4, W = 5, P = 1, N = 3600, D = C * H * W };
    enum { COMBOS = (2 * P + 1) * (2 * P + 1) * 2 };
    float img[D], cand[COMBOS][D];
    for (int i = 0; i < D; i++) img[i] = (float)(i + 1);
    for (int dy = 0; dy <= 2 * P; dy++)
        for (int dx = 0; dx <= 2 * P; dx++)
            for (int f = 0; f < 2; f++)
                reference(cand[(dy * (2 * P + 1) + dx) * 2 + f], img, C, H,
                          W, P, dy, dx, f);
    /* Sanity of the reference itself on one case: shift right by one
     * (dx = 0), no flip: column 0 is padding, column 1 is column 0. */
    CHECK(cand[(1 * 3 + 0) * 2][0] == 0 && cand[(1 * 3 + 0) * 2][1] == 1,
          "reference shift");
    float *x = malloc(sizeof(float) * N * D), *o = malloc(sizeof(float) * N * D);
    float *o2 = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N; i++) memcpy(x + (size_t)i * D, img, sizeof img);
    l2rw_augment_crop_flip(o, x, N, C, H, W, P, 777);
    l2rw_augment_crop_flip(o2, x, N, C, H, W, P, 777);
    CHECK(memcmp(o, o2, sizeof(float) * N * D) == 0, "augment deterministic");
    long hits[COMBOS] = {0};
    int all_match = 1;
    for (int i = 0; i < N; i++) {
        int found = -1;
        for (int k = 0; k < COMBOS && found < 0; k++)
            if (!memcmp(o + (size_t)i * D, cand[k], sizeof img)) found = k;
        if (found < 0) all_match = 0;
        else hits[found]++;
    }
    CHECK(all_match, "every output is a padded crop (mirrored or not)");
    for (int k = 0; k < COMBOS; k++)
        CHECK(within_5sigma(hits[k], N, 1.0 / COMBOS), "crop/flip %d drawn "
              "%ld of %d", k, hits[k], N);
    l2rw_augment_crop_flip(o2, x, N, C, H, W, P, 778);
    CHECK(memcmp(o, o2, sizeof(float) * N * D) != 0, "another key");
    /* pad 0: only identity or mirror. */
    l2rw_augment_crop_flip(o, x, 50, C, H, W, 0, 5);
    int ok = 1;
    for (int i = 0; i < 50; i++)
        ok &= !memcmp(o + (size_t)i * D, cand[(1 * 3 + 1) * 2], sizeof img) ||
              !memcmp(o + (size_t)i * D, cand[(1 * 3 + 1) * 2 + 1], sizeof img);
    CHECK(ok, "pad 0 gives the image or its mirror");
    free(x);
    free(o);
    free(o2);
}

int main(void)
{
    RUN(test_sampler);
    RUN(test_balanced);
    RUN(test_gather);
    RUN(test_augment);
    return CHECK_DONE("test_data_batch");
}
