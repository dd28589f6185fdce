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
/* (Fashion-)MNIST has ten classes whatever labels a file holds. */
enum { SPEC_MAX_POS = 2, SPEC_GROUPS = 2, SPEC_PATH = 4096,
       MNIST_CLASSES = 10 };

typedef enum {
    K_FASHION, K_MNIST, K_CIFAR10, K_CIFAR100, K_IDX, K_CSV, K_NPY,
    K_FOLDER, K_LIST
} spec_kind;

static const struct {
    const char *name;
    spec_kind kind;
} kinds[] = {
    {"fashion-mnist", K_FASHION}, {"mnist", K_MNIST},
    {"cifar10", K_CIFAR10},       {"cifar100", K_CIFAR100},
    {"idx", K_IDX},               {"csv", K_CSV},
    {"npy", K_NPY},               {"folder", K_FOLDER},
    {"list", K_LIST},
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
    l2rw__image_opts img;
} spec;

/* The files a part (training or test) of a spec was read from, named in
 * the messages of check_parts: x holds the examples, y the labels (the
 * same file for CSV, the directory for CIFAR). */
typedef struct {
    char x[SPEC_PATH], y[SPEC_PATH];
} part_files;

static void set_files(part_files *p, const char *x, const char *y)
{
    snprintf(p->x, sizeof p->x, "%s", x);
    snprintf(p->y, sizeof p->y, "%s", y);
}

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

/* "HxW", both in [1, 65536]. */
static l2rw_status parse_size(const char *v, int *h, int *w, const char *s)
{
    char *end, *end2;
    errno = 0;
    long hh = strtol(v, &end, 10), ww = 0;
    end2 = end; /* not a number after the 'x': *end2 is non-zero */
    if (*end == 'x' && end > v && end[1]) ww = strtol(end + 1, &end2, 10);
    if (*end != 'x' || errno || *end2 || hh < 1 || hh > 65536 || ww < 1 ||
        ww > 65536)
        return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': size=%s is not "
                          "HxW (height x width, e.g. 32x32)", s, v);
    *h = (int)hh;
    *w = (int)ww;
    return L2RW_OK;
}

/* The options of folder: and list: data (l2rw_data.h). */
static l2rw_status set_image_option(spec *sp, const char *k, const char *v,
                                    const char *s)
{
    l2rw__image_opts *o = &sp->img;
    if (!strcmp(k, "size")) return parse_size(v, &o->h, &o->w, s);
    if (!strcmp(k, "channels") && (!strcmp(v, "1") || !strcmp(v, "3"))) {
        o->channels = *v - '0';
    } else if (!strcmp(k, "on-bad") && !strcmp(v, "skip")) {
        o->on_bad = L2RW__ON_BAD_SKIP;
    } else if (!strcmp(k, "on-bad") && !strcmp(v, "fail")) {
        o->on_bad = L2RW__ON_BAD_FAIL;
    } else if (!strcmp(k, "cache") && (!strcmp(v, "0") || !strcmp(v, "1"))) {
        o->cache = *v - '0';
    } else if (!strcmp(k, "root") && sp->kind == K_LIST && *v) {
        o->root = v;
    } else {
        return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': bad option %s=%s "
                          "(folder and list take size=HxW, channels=1|3, "
                          "on-bad=skip|fail, cache=0|1; list also root=DIR)",
                          s, k, v);
    }
    return L2RW_OK;
}

static int is_image_option(const spec *sp, const char *k)
{
    static const char *keys[] = {"size", "channels", "on-bad", "cache",
                                 "root"};
    if (sp->kind != K_FOLDER && sp->kind != K_LIST) return 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i])) return 1;
    return 0;
}

static l2rw_status set_option(spec *sp, char *tok, const char *s)
{
    char *eq = strchr(tok, '=');
    *eq = 0;
    const char *k = tok, *v = eq + 1;
    long x = 0;
    if (is_image_option(sp, k)) return set_image_option(sp, k, v, s);
    if (!strcmp(k, "classes")) {
        L2RW_TRY(parse_long(v, 1, L2RW__MAX_CLASSES, &x, s, k));
        sp->classes = sp->csv.classes = sp->img.classes = (int)x;
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
                                l2rw_dataset *test, part_files *tf,
                                part_files *sf)
{
    if (strlen(dir) > SPEC_PATH - 64)
        return l2rw__fail(L2RW_ERR_ARG, "directory name too long");
    idx_path(tf->x, dir, "train-images-idx3-ubyte", "train-images.idx3-ubyte");
    idx_path(tf->y, dir, "train-labels-idx1-ubyte", "train-labels.idx1-ubyte");
    idx_path(sf->x, dir, "t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte");
    idx_path(sf->y, dir, "t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte");
    L2RW_TRY(l2rw_load_idx(train, tf->x, tf->y, MNIST_CLASSES));
    return l2rw_load_idx(test, sf->x, sf->y, MNIST_CLASSES);
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
                              part_files *pf, const char *s)
{
    const char *x = sp->pos[g][0], *y = sp->pos[g][sp->npos[g] > 1];
    if (sp->npos[g] > 0) set_files(pf, x, y);
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

/* The example of d with label k, as its index in the source file. */
static int example_with(const l2rw_dataset *d, int k)
{
    for (int i = 0; i < d->n; i++)
        if (d->y[i] == k) return d->id[i];
    return -1;
}

/* Test labels must lie in the training data's classes (inferred from
 * the training labels when no count was given). */
static l2rw_status check_test_labels(const l2rw_dataset *test, int classes,
                                     const part_files *sf,
                                     const part_files *tf)
{
    for (int i = 0; i < test->n; i++)
        if (test->y[i] < 0 || test->y[i] >= classes)
            return l2rw__fail(L2RW_ERR_LABEL, "%s: label %d of example %d "
                              "is outside [0, %d), the classes of the "
                              "training labels in %s (give classes=K when "
                              "the training data lacks some)", sf->y,
                              (int)test->y[i], test->id[i], classes, tf->y);
    return L2RW_OK;
}

/* Inferred classes (largest label + 1) must all occur in the data: an
 * empty class below the largest label means a label far out of range,
 * which would otherwise surface later as a class the clean split cannot
 * fill. */
static l2rw_status check_no_gap(const l2rw_dataset *train,
                                const l2rw_dataset *test, int classes,
                                const part_files *tf, const part_files *sf)
{
    uint8_t *seen = l2rw__calloc((size_t)classes, 1);
    if (!seen) return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", tf->y);
    for (int i = 0; i < train->n; i++) seen[train->y[i]] = 1;
    for (int i = 0; i < test->n; i++) seen[test->y[i]] = 1;
    int gap = 0, next;
    while (gap < classes && seen[gap]) gap++;
    for (next = gap; next < classes && !seen[next]; next++) {}
    free(seen);
    if (next >= classes) return L2RW_OK; /* no class above the gap */
    int ex = example_with(train, next);
    const char *file = ex >= 0 ? tf->y : sf->y;
    if (ex < 0) ex = example_with(test, next);
    if (gap == 0)
        return l2rw__fail(L2RW_ERR_LABEL, "%s: labels must start at 0 but "
                          "the smallest, %d (example %d), leaves classes "
                          "0..%d without examples (give classes=K to allow "
                          "empty classes)", file, next, ex, next - 1);
    return l2rw__fail(L2RW_ERR_LABEL, "%s: label %d of example %d is "
                      "outside [0, %d): it leaves classes %d..%d without "
                      "examples (classes are inferred as largest label + "
                      "1; give classes=K to allow empty classes)", file,
                      next, ex, gap, gap, next - 1);
}

/* The one check every spec's parts go through, right after loading: the
 * test examples have the training examples' shape, and both parts have
 * the same class count. A given count (classes=K, or the fixed one of
 * MNIST and CIFAR) was checked by the readers; an inferred one comes
 * from the training labels. */
static l2rw_status check_parts(l2rw_dataset *train, const part_files *tf,
                               l2rw_dataset *test, const part_files *sf,
                               int classes_given, const char *part)
{
    if (test->n > 0 && (test->c != train->c || test->h != train->h ||
                        test->w != train->w))
        return l2rw__fail(L2RW_ERR_SHAPE, "%s: %s examples are %dx%dx%d "
                          "(channels x height x width) but the training "
                          "examples in %s are %dx%dx%d", sf->x, part,
                          test->c, test->h, test->w, tf->x, train->c,
                          train->h, train->w);
    if (classes_given && (train->classes != classes_given ||
                          test->classes != classes_given))
        return l2rw__fail(L2RW_ERR_LABEL, "%s: %d classes but %s has %d "
                          "(expected %d)", sf->y, test->classes, tf->y,
                          train->classes, classes_given);
    L2RW_TRY(check_test_labels(test, train->classes, sf, tf));
    if (!classes_given)
        L2RW_TRY(check_no_gap(train, test, train->classes, tf, sf));
    test->classes = train->classes;
    return L2RW_OK;
}

l2rw_status l2rw__data_check_part(l2rw_dataset *train, const char *train_src,
                                  l2rw_dataset *part, const char *part_src,
                                  const char *what)
{
    part_files *pf = calloc(2, sizeof *pf); /* 16 KB: off the stack */
    if (!pf) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    set_files(&pf[0], train_src, train_src);
    set_files(&pf[1], part_src, part_src);
    /* The training part's class count is the given one: the part's own
     * (inferred from fewer labels, say) gives way to it, and its labels
     * must lie in it. */
    part->classes = train->classes;
    l2rw_status st = check_parts(train, &pf[0], part, &pf[1],
                                 train->classes, what);
    free(pf);
    return st;
}

/* The class count a spec fixes (0: inferred from the training labels). */
static int fixed_classes(const spec *sp)
{
    switch (sp->kind) {
    case K_FASHION:
    case K_MNIST: return MNIST_CLASSES;
    case K_CIFAR10: return 10;
    case K_CIFAR100: return sp->cifar == L2RW_CIFAR100_COARSE ? 20 : 100;
    default: return sp->classes;
    }
}

/* The directory kinds: MNIST's IDX files or CIFAR's binaries. */
static l2rw_status load_dir(spec *sp, const char *s, l2rw_dataset *train,
                            l2rw_dataset *test, part_files *tf,
                            part_files *sf)
{
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
        return load_idx_dir(dir ? dir : DEFAULT_FASHION_DIR, train, test, tf,
                            sf);
    /* CIFAR's records have a fixed shape: the directory names both. */
    set_files(tf, dir, dir);
    set_files(sf, dir, dir);
    return l2rw_load_cifar_dir(train, test, dir, sp->cifar);
}

/* folder: and list: data; without a test folder or list, the held-out
 * part (frac) comes from the training files, as for idx, csv and npy. */
static l2rw_status load_images(spec *sp, const char *s, l2rw_dataset *train,
                               l2rw_dataset *test, l2rw_sources *src,
                               part_files *pf)
{
    const char *form = sp->kind == K_LIST
                           ? "list:FILE[;TEST_FILE][,options]"
                           : "folder:DIR[;TEST_DIR][,options]";
    L2RW_TRY(need_pos(sp, 0, 1, s, form));
    if (sp->ngroups == 2) L2RW_TRY(need_pos(sp, 1, 1, s, form));
    const char *tr = sp->pos[0][0];
    const char *te = sp->ngroups == 2 ? sp->pos[1][0] : NULL;
    set_files(&pf[0], tr, tr);
    set_files(&pf[1], te ? te : tr, te ? te : tr);
    L2RW_TRY(l2rw__image_load(sp->kind == K_LIST, tr, te, &sp->img, train,
                              test, src));
    if (te) return L2RW_OK;
    l2rw_dataset_free(test);
    double frac = sp->frac < 0 ? 0.2 : sp->frac;
    return l2rw_split_fraction(train, test, frac, sp->split_seed);
}

static l2rw_status load_spec(spec *sp, const char *s, l2rw_dataset *train,
                             l2rw_dataset *test, l2rw_sources *src)
{
    part_files *pf = calloc(2, sizeof *pf); /* 16 KB: off the stack */
    if (!pf) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    l2rw_status st;
    int classes = fixed_classes(sp);
    if (sp->kind == K_FASHION || sp->kind == K_MNIST ||
        sp->kind == K_CIFAR10 || sp->kind == K_CIFAR100) {
        st = load_dir(sp, s, train, test, &pf[0], &pf[1]);
    } else if (sp->kind == K_FOLDER || sp->kind == K_LIST) {
        st = load_images(sp, s, train, test, src, pf);
        /* Named classes (folders, names in a list) fix the count. */
        if (src->class_names) classes = src->classes;
    } else {
        st = load_files(sp, 0, train, &pf[0], s);
        if (st == L2RW_OK && sp->ngroups == 2) {
            st = load_files(sp, 1, test, &pf[1], s);
        } else if (st == L2RW_OK) {
            /* The held-out part comes from the training file. */
            pf[1] = pf[0];
            double frac = sp->frac < 0 ? 0.2 : sp->frac;
            st = l2rw_split_fraction(train, test, frac, sp->split_seed);
        }
    }
    if (st == L2RW_OK)
        st = check_parts(train, &pf[0], test, &pf[1], classes, "test");
    free(pf);
    return st;
}

l2rw_status l2rw_data_load(const char *s, l2rw_dataset *train,
                           l2rw_dataset *test)
{
    return l2rw__data_load(s, train, test, NULL, NULL, NULL);
}

l2rw_status l2rw_data_spec_set_size(const char *spec, const char *hxw,
                                    char *out, size_t size)
{
    int h, w;
    if (!spec || !hxw || !out)
        return l2rw__fail(L2RW_ERR_ARG, "image size: NULL argument");
    if (strncmp(spec, "folder:", 7) && strncmp(spec, "list:", 5))
        return l2rw__fail(L2RW_ERR_ARG, "an image size applies to folder: "
                          "and list: data, not '%s'", spec);
    L2RW_TRY(parse_size(hxw, &h, &w, spec));
    /* A size the spec has already (a resumed run's spec, given
     * --image-size again) is replaced, not followed by a second one. */
    size_t n = 0;
    for (const char *p = spec; *p;) {
        const size_t len = strcspn(p + 1, ",") + 1; /* up to the next ',' */
        if (strncmp(p, ",size=", 6) != 0) {
            if (n + len >= size) {
                n = size; /* too long: refused below */
                break;
            }
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    if (n >= size || (size_t)snprintf(out + n, size - n, ",size=%dx%d", h,
                                      w) >= size - n)
        return l2rw__fail(L2RW_ERR_ARG, "data spec '%s': too long", spec);
    return L2RW_OK;
}

l2rw_status l2rw__data_load(const char *s, l2rw_dataset *train,
                            l2rw_dataset *test, l2rw_sources *src_out,
                            l2rw_data_progress_fn progress, void *progress_ctx)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (src_out) memset(src_out, 0, sizeof *src_out);
    if (!s || !*s) return l2rw__fail(L2RW_ERR_ARG, "empty data spec");
    spec sp;
    memset(&sp, 0, sizeof sp);
    sp.img.cache = 1;
    sp.img.progress = progress;
    sp.img.progress_ctx = progress_ctx;
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
                          "cifar100, idx, csv, npy, folder or list)", s,
                          (int)kl, s);
    sp.kind = kinds[i].kind;
    if (sp.kind == K_CIFAR100) sp.cifar = L2RW_CIFAR100_FINE;
    char *rest = strdup(colon ? colon + 1 : "");
    if (!rest) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    l2rw_status st = L2RW_OK;
    if (colon && !*rest)
        st = l2rw__fail(L2RW_ERR_ARG, "data spec '%s': nothing after ':'",
                        s);
    if (st == L2RW_OK && colon) st = tokenize(&sp, rest, s);
    l2rw_sources src_own; /* the names, when the caller wants none */
    memset(&src_own, 0, sizeof src_own);
    l2rw_sources *src = src_out ? src_out : &src_own;
    if (st == L2RW_OK) st = load_spec(&sp, s, train, test, src);
    free(rest);
    l2rw_sources_free(&src_own);
    if (st != L2RW_OK) {
        l2rw_dataset_free(train);
        l2rw_dataset_free(test);
        l2rw_sources_free(src);
    }
    return st;
}
