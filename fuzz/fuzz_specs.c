/* libFuzzer target: the option parsers of the CLI (noise and imbalance
 * specs) and, on a generated 12-example dataset, the pipeline steps they
 * drive: class selection, imbalance subsampling, the clean split and the
 * corruption. Input: a NUL-free string "NOISE|IMBALANCE". */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const char *noise, const char *imb, unsigned seed)
{
    l2rw_noise nz;
    l2rw_imbalance ib;
    l2rw_dataset tr, te, val;
    if (l2rw_noise_parse(&nz, noise) != L2RW_OK) memset(&nz, 0, sizeof nz);
    if (l2rw_imbalance_parse(&ib, imb) != L2RW_OK) memset(&ib, 0, sizeof ib);
    if (l2rw_dataset_alloc(&tr, 12, 1, 1, 1, 4) != L2RW_OK) return;
    if (l2rw_dataset_alloc(&te, 4, 1, 1, 1, 4) != L2RW_OK) {
        l2rw_dataset_free(&tr);
        return;
    }
    for (int i = 0; i < 12; i++) tr.y[i] = tr.y_true[i] = i % 4;
    for (int i = 0; i < 4; i++) te.y[i] = te.y_true[i] = i;
    memset(&val, 0, sizeof val);
    if (l2rw_imbalance_select(&tr, &te, &ib) == L2RW_OK &&
        l2rw_split_clean(&tr, &val, (int)(seed % 2), 0, seed) == L2RW_OK &&
        l2rw_imbalance_subsample(&tr, &ib, (long)(seed % 7), seed) ==
            L2RW_OK) {
        char buf[64];
        l2rw_noise_format(&nz, buf, sizeof buf);
        l2rw_noise_apply(&tr, &nz, seed, NULL);
        l2rw_audit a;
        memset(&a, 0, sizeof a);
        if (l2rw_audit_compute(&a, &tr, &val, &te) == L2RW_OK)
            l2rw_audit_free(&a);
    }
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_dataset_free(&val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    if (strlen(s) == size) {
        char *bar = strchr(s, '|');
        const char *imb = "";
        if (bar) {
            *bar = 0;
            imb = bar + 1;
        }
        exercise(s, imb, (unsigned)size);
    }
    free(s);
    return 0;
}
