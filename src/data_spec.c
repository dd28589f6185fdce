/* The data spec of the CLI ("fashion-mnist", "csv:FILE,label=y", ...)
 * turned into a train and a test dataset; grammar in l2rw_data.h. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_FASHION_DIR "/usr/share/datasets/fashion-mnist"
enum { SPEC_MAX_POS = 2, SPEC_GROUPS = 2, SPEC_PATH = 4096 };

typedef enum {
    K_FASHION, K_MNIST, K_CIFAR10, K_CIFAR100, K_IDX, K_CSV, K_NPY
} spec_kind;

static const struct {
    const char *name;
    spec_kind kind;
} kinds[] = {
    {"fashion-mnist", K_FASHION}, {"mnist", K_MNIST},
    {"cifar10", K_CIFAR10},       {"cifar100", K_CIFAR100},
    {"idx", K_IDX},               {"csv", K_CSV},
    {"npy", K_NPY},
};

typedef struct {
    spec_kind kind;
    /* pos[g][i]: positional token i of group g (groups split by ';') */
    char *pos[SPEC_GROUPS][SPEC_MAX_POS];
    int npos[SPEC_GROUPS], ngroups;
    int classes;
    double frac;
    uint64_t split_seed;
    l2rw_csv_opts csv;
    l2rw_cifar_kind cifar;
} spec;

static l2rw_status parse_long(const char *v, long lo, long hi, long *out,
                              const char *spec_s, const char *key)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': %s=%s is not an "
                          "integer in [%ld, %ld]", spec_s, key, v, lo, hi);
    *out = x;
    return L2RW_OK;
}

static l2rw_status set_option(spec *sp, char *tok, const char *s)
{
    char *eq = strchr(tok, '=');
    *eq = 0;
    const char *k = tok, *v = eq + 1;
    long x = 0;
    if (!strcmp(k, "classes")) {
        L2RW_TRY(parse_long(v, 1, L2RW__MAX_CLASSES, &x, s, k));
        sp->classes = sp->csv.classes = (int)x;
    } else if (!strcmp(k, "frac")) {
        char *end;
        sp->frac = strtod(v, &end);
        if (!*v || *end || !(sp->frac >= 0 && sp->frac < 1))
            return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': frac=%s is not "
                              "a fraction in [0, 1)", s, v);
    } else if (!strcmp(k, "split-seed")) {
        L2RW_TRY(parse_long(v, 0, LONG_MAX, &x, s, k));
        sp->split_seed = (uint64_t)x;
    } else if (!strcmp(k, "label") && sp->kind == K_CSV) {
        char *end;
        long idx = strtol(v, &end, 10);
        if (*v && !*end) {
            if (idx < INT_MIN || idx > INT_MAX)
                return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': label "
                                  "column %s out of range", s, v);
            sp->csv.label_index = (int)idx;
            sp->csv.label_name = NULL;
        } else {
            sp->csv.label_name = v;
        }
    } else if (!strcmp(k, "header") && sp->kind == K_CSV) {
        if (!strcmp(v, "1") || !strcmp(v, "yes")) sp->csv.header = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "no")) sp->csv.header = 0;
        else if (!strcmp(v, "auto")) sp->csv.header = -1;
        else
            return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': header=%s "
                              "(expected 0, 1 or auto)", s, v);
    } else if (!strcmp(k, "labels") && sp->kind == K_CIFAR100) {
        if (!strcmp(v, "fine")) sp->cifar = L2RW_CIFAR100_FINE;
        else if (!strcmp(v, "coarse")) sp->cifar = L2RW_CIFAR100_COARSE;
        else
            return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': labels=%s "
                              "(expected fine or coarse)", s, v);
    } else {
        return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': unknown option "
                          "'%s' for this kind of data", s, k);
    }
    return L2RW_OK;
}

/* Split "a,b;c,d,key=v" (modified in place) into groups and options. */
static l2rw_status tokenize(spec *sp, char *rest, const char *s)
{
    char *group = rest;
    sp->ngroups = 0;
    while (group) {
        char *semi = strchr(group, ';');
        if (semi) *semi = 0;
        if (sp->ngroups == SPEC_GROUPS)
            return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': more than one "
                              "';' (train;test)", s);
        int g = sp->ngroups++;
        char *tok = group;
        while (tok) {
            char *comma = strchr(tok, ',');
            if (comma) *comma = 0;
            if (!*tok)
                return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': empty "
                                  "field", s);
            if (strchr(tok, '=')) {
                L2RW_TRY(set_option(sp, tok, s));
            } else {
                if (sp->npos[g] == SPEC_MAX_POS)
                    return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': too "
                                      "many file names in a group", s);
                sp->pos[g][sp->npos[g]++] = tok;
            }
            tok = comma ? comma + 1 : NULL;
        }
        group = semi ? semi + 1 : NULL;
    }
    return L2RW_OK;
}

/* dir/name[.gz] or dir/alt: the first that exists. */
static void idx_path(char *out, const char *dir, const char *name,
                     const char *alt)
{
    const char *cands[3][2] = {{name, ".gz"}, {name, ""}, {alt, ""}};
    struct stat st;
    for (int i = 0; i < 3; i++) {
        snprintf(out, SPEC_PATH, "%s/%s%s", dir, cands[i][0], cands[i][1]);
        if (stat(out, &st) == 0) return;
    }
    /* None exists: name the usual one in the error. */
    snprintf(out, SPEC_PATH, "%s/%s.gz", dir, name);
}

static l2rw_status load_idx_dir(const char *dir, l2rw_dataset *train,
                                l2rw_dataset *test)
{
    char ti[SPEC_PATH], tl[SPEC_PATH], vi[SPEC_PATH], vl[SPEC_PATH];
    if (strlen(dir) > SPEC_PATH - 64)
        return l2rw__fail(L2RW_ERR_ARG, "directory name too long");
    idx_path(ti, dir, "train-images-idx3-ubyte", "train-images.idx3-ubyte");
    idx_path(tl, dir, "train-labels-idx1-ubyte", "train-labels.idx1-ubyte");
    idx_path(vi, dir, "t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte");
    idx_path(vl, dir, "t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte");
    /* (Fashion-)MNIST has ten classes whatever labels a file holds. */
    L2RW_TRY(l2rw_load_idx(train, ti, tl, 10));
    return l2rw_load_idx(test, vi, vl, 10);
}

static l2rw_status need_pos(const spec *sp, int g, int n, const char *s,
                            const char *form)
{
    if (sp->npos[g] != n)
        return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': expected %s", s,
                          form);
    return L2RW_OK;
}

static l2rw_status load_files(const spec *sp, int g, l2rw_dataset *d,
                              const char *s)
{
    switch (sp->kind) {
    case K_IDX:
        L2RW_TRY(need_pos(sp, g, 2, s, "idx:IMAGES,LABELS[;TEST_IMAGES,"
                          "TEST_LABELS]"));
        return l2rw_load_idx(d, sp->pos[g][0], sp->pos[g][1], sp->classes);
    case K_NPY:
        L2RW_TRY(need_pos(sp, g, 2, s, "npy:X,Y[;TEST_X,TEST_Y]"));
        return l2rw_load_npy(d, sp->pos[g][0], sp->pos[g][1], sp->classes);
    case K_CSV:
        L2RW_TRY(need_pos(sp, g, 1, s, "csv:FILE[;TEST_FILE][,options]"));
        return l2rw_load_csv(d, sp->pos[g][0], &sp->csv);
    default:
        return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': internal kind", s);
    }
}

/* Both sets get the larger inferred class count. */
static l2rw_status join_classes(l2rw_dataset *train, l2rw_dataset *test,
                                const char *s)
{
    if (test->n > 0 && (test->c != train->c || test->h != train->h ||
                        test->w != train->w))
        return l2rw__fail(L2RW_ERR_SHAPE, "data spec '%s': test examples "
                          "are %dx%dx%d, training ones %dx%dx%d", s, test->c,
                          test->h, test->w, train->c, train->h, train->w);
    int k = train->classes > test->classes ? train->classes : test->classes;
    train->classes = test->classes = k;
    return L2RW_OK;
}

static l2rw_status load_spec(spec *sp, const char *s, l2rw_dataset *train,
                             l2rw_dataset *test)
{
    if (sp->kind == K_FASHION || sp->kind == K_MNIST ||
        sp->kind == K_CIFAR10 || sp->kind == K_CIFAR100) {
        const char *dir = sp->npos[0] ? sp->pos[0][0] : NULL;
        if (sp->ngroups > 1 || sp->npos[0] > 1)
            return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': expected one "
                              "directory", s);
        if (sp->frac > 0)
            return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': frac= only "
                              "applies to idx, csv and npy", s);
        if (!dir && sp->kind != K_FASHION)
            return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': a directory is "
                              "needed (%s:DIR)", s, kinds[sp->kind].name);
        if (sp->kind == K_FASHION || sp->kind == K_MNIST)
            return load_idx_dir(dir ? dir : DEFAULT_FASHION_DIR, train,
                                test);
        return l2rw_load_cifar_dir(train, test, dir, sp->cifar);
    }
    L2RW_TRY(load_files(sp, 0, train, s));
    if (sp->ngroups == 2) {
        L2RW_TRY(load_files(sp, 1, test, s));
    } else {
        double frac = sp->frac < 0 ? 0.2 : sp->frac;
        L2RW_TRY(l2rw_split_fraction(train, test, frac, sp->split_seed));
    }
    return join_classes(train, test, s);
}

l2rw_status l2rw_data_load(const char *s, l2rw_dataset *train,
                           l2rw_dataset *test)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!s || !*s) return l2rw__fail(L2RW_ERR_ARG, "empty data spec");
    spec sp;
    memset(&sp, 0, sizeof sp);
    sp.frac = -1; /* not given */
    sp.csv = l2rw_csv_opts_default();
    sp.cifar = L2RW_CIFAR10;
    const char *colon = strchr(s, ':');
    size_t kl = colon ? (size_t)(colon - s) : strlen(s);
    size_t nk = sizeof kinds / sizeof kinds[0], i;
    for (i = 0; i < nk; i++)
        if (strlen(kinds[i].name) == kl && !strncmp(s, kinds[i].name, kl))
            break;
    if (i == nk)
        return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': unknown kind '%.*s'"
                          " (expected fashion-mnist, mnist, cifar10, "
                          "cifar100, idx, csv or npy)", s, (int)kl, s);
    sp.kind = kinds[i].kind;
    if (sp.kind == K_CIFAR100) sp.cifar = L2RW_CIFAR100_FINE;
    char *rest = strdup(colon ? colon + 1 : "");
    if (!rest) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    l2rw_status st = L2RW_OK;
    if (colon && !*rest)
        st = l2rw__fail(L2RW_ERR_ARG, "data spec '%s': nothing after ':'",
                        s);
    if (st == L2RW_OK && colon) st = tokenize(&sp, rest, s);
    if (st == L2RW_OK) st = load_spec(&sp, s, train, test);
    free(rest);
    if (st != L2RW_OK) {
        l2rw_dataset_free(train);
        l2rw_dataset_free(test);
    }
    return st;
}
