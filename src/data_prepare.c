/* The data pipeline in its fixed order (see l2rw_data.h): load, select
 * classes, clean split, subsample, corrupt, audit, normalise. */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

l2rw_data_cfg l2rw_data_cfg_default(void)
{
    l2rw_data_cfg c;
    memset(&c, 0, sizeof c);
    c.data = "fashion-mnist";
    c.normalise = 1;
    return c;
}

static void free_names(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

void l2rw_sources_free(l2rw_sources *s)
{
    if (!s) return;
    free_names(s->class_names, s->classes);
    free_names(s->train_files, s->n_train);
    free_names(s->val_files, s->n_val);
    free_names(s->test_files, s->n_test);
    memset(s, 0, sizeof *s);
}

void l2rw_data_free(l2rw_data *d)
{
    if (!d) return;
    l2rw_sources_free(&d->sources);
    l2rw_dataset_free(&d->train);
    l2rw_dataset_free(&d->val);
    l2rw_dataset_free(&d->test);
    l2rw_norm_free(&d->norm);
    l2rw_audit_free(&d->audit);
    memset(d, 0, sizeof *d);
}

static void describe_imbalance(const l2rw_imbalance *imb, const char *spec,
                               char *buf, size_t size)
{
    if (imb->kind == L2RW_IMB_NONE) {
        snprintf(buf, size, "none");
        return;
    }
    size_t len = (size_t)snprintf(buf, size, "%s", spec);
    if (imb->kind != L2RW_IMB_SHARE) return;
    /* Say how the listed classes were renumbered. */
    for (int j = 0; j < imb->k && len < size; j++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d->%d",
                                j ? ", " : " (relabelled ", imb->classes[j],
                                j);
    if (len < size) snprintf(buf + len, size - len, ")");
}

static l2rw_status corrupt(l2rw_data *d, const l2rw_data_cfg *cfg)
{
    uint8_t *hit = l2rw__calloc((size_t)d->train.n + 1, 1);
    if (!hit) return l2rw__fail(L2RW_ERR_NOMEM, "noise: out of memory");
    l2rw_status s = l2rw_noise_apply(
        &d->train, &d->noise, l2rw_data_stage_seed(cfg->seed,
                                                   L2RW_STAGE_NOISE), hit);
    long n_hit = 0;
    for (int i = 0; i < d->train.n; i++) n_hit += hit[i];
    free(hit);
    L2RW_TRY(s);
    L2RW_TRY(l2rw_audit_compute(&d->audit, &d->train, &d->val, &d->test));
    l2rw_audit *a = &d->audit;
    a->seed = cfg->seed;
    a->n_hit = n_hit;
    a->nominal_rate = d->noise.kind == L2RW_NOISE_NONE ? 0 : d->noise.p;
    a->expected_rate = l2rw_noise_expected_rate(&d->noise, a->train_true,
                                                a->classes);
    snprintf(a->data, sizeof a->data, "%s", cfg->data);
    l2rw_noise_format(&d->noise, a->noise, sizeof a->noise);
    describe_imbalance(&d->imbalance, cfg->imbalance, a->imbalance,
                       sizeof a->imbalance);
    return L2RW_OK;
}

static l2rw_status normalise(l2rw_data *d)
{
    L2RW_TRY(l2rw_norm_fit(&d->norm, &d->train));
    L2RW_TRY(l2rw_norm_apply(&d->norm, &d->train));
    L2RW_TRY(l2rw_norm_apply(&d->norm, &d->val));
    return l2rw_norm_apply(&d->norm, &d->test);
}

static l2rw_status prepare(l2rw_data *d, const l2rw_data_cfg *cfg)
{
    if (cfg->train_size < 0 || cfg->val_per_class < 0 || cfg->val_size < 0)
        return l2rw__fail(L2RW_ERR_ARG, "train size and validation sizes "
                          "must not be negative");
    if (cfg->val_per_class > 0 && cfg->val_size > 0)
        return l2rw__fail(L2RW_ERR_ARG, "give a validation size per class "
                          "or in total, not both");
    /* Parse every spec before the (slow) load so errors come at once. */
    L2RW_TRY(l2rw_noise_parse(&d->noise, cfg->noise));
    L2RW_TRY(l2rw_imbalance_parse(&d->imbalance, cfg->imbalance));
    L2RW_TRY(l2rw_data_load(cfg->data, &d->train, &d->test));
    L2RW_TRY(l2rw_imbalance_select(&d->train, &d->test, &d->imbalance));
    L2RW_TRY(l2rw_split_clean(&d->train, &d->val, cfg->val_per_class,
                              cfg->val_size,
                              l2rw_data_stage_seed(cfg->seed,
                                                   L2RW_STAGE_SPLIT)));
    if (d->imbalance.kind == L2RW_IMB_NONE && cfg->train_size > d->train.n)
        return l2rw__fail(L2RW_ERR_ARG, "train size %ld exceeds the %d "
                          "training examples available%s", cfg->train_size,
                          d->train.n, d->val.n ? " after the clean split"
                                               : "");
    L2RW_TRY(l2rw_imbalance_subsample(
        &d->train, &d->imbalance, cfg->train_size,
        l2rw_data_stage_seed(cfg->seed, L2RW_STAGE_SUBSAMPLE)));
    if (d->train.n < 1)
        return l2rw__fail(L2RW_ERR_ARG, "no training examples left after "
                          "the clean split");
    L2RW_TRY(corrupt(d, cfg));
    if (cfg->normalise) L2RW_TRY(normalise(d));
    return L2RW_OK;
}

l2rw_status l2rw_data_prepare(l2rw_data *out, const l2rw_data_cfg *cfg)
{
    memset(out, 0, sizeof *out);
    l2rw_status s = prepare(out, cfg);
    if (s != L2RW_OK) l2rw_data_free(out);
    return s;
}
