/* Users' own pictures as data: folder:DIR (torchvision's ImageFolder
 * layout) and list:FILE (Clothing1M / WebVision "path label" lines),
 * decoded once on every core into l2rw datasets, with the names of the
 * classes and files in l2rw_sources.
 *
 * Decisions (README "Data formats" says the same to users):
 *   - classes of a folder are its sub-folders, in byte order of their
 *     names; files are found depth first in sorted order, by content
 *     (PNG or JPEG magic), not by extension; dot files are ignored, and
 *     so are plain files next to the class folders (the cache lives
 *     there).
 *   - a class folder of the training data without files is an error
 *     naming it: every later step (clean split per class, imbalance,
 *     the methods' class counts) assumes each class has examples, and
 *     the readers of other formats refuse such gaps too. A test folder
 *     may lack classes, but not have unknown ones.
 *   - a corrupt file or one that is no image is skipped (on-bad=skip,
 *     the default) and listed with why in l2rw_sources (bad_files,
 *     bad_reasons): one bad file among a million should not cost the
 *     run, and the library never prints, so the caller shows the list.
 *     on-bad=fail makes the first one (in file order) an error.
 *   - channels: 3 when any decoded file is colour, else 1, unless
 *     channels=1|3 says; so a colour set with a few grey files stays
 *     colour whatever file comes first.
 *   - without size=HxW every image must have the size of the first; the
 *     first that differs is an error suggesting --image-size.
 *   - decoding is parallel over files, each into its own slot, and every
 *     decision above is taken afterwards in file order, so the result is
 *     the same for any thread count. */
#define _POSIX_C_SOURCE 200809L
#include "data_image.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    MAX_DEPTH = 32,          /* nested folders (a symlink loop stops) */
    PROGRESS_EVERY = 64,     /* files between progress calls */
    DECODE_CHUNK = 4         /* files per OpenMP work item */
};
/* Largest image file read: far above any real photograph, and a bound
 * on what a stray huge file in a class folder can allocate. */
#define MAX_IMAGE_FILE ((size_t)1 << 28)

typedef enum { DEC_OK, DEC_BAD, DEC_SIZE } dec_state;

/* ------------------------------------------------------ string vectors */

typedef struct {
    int n, cap;
    char **s;
} strvec;

static void sv_free(strvec *v)
{
    for (int i = 0; i < v->n; i++) free(v->s[i]);
    free(v->s);
    memset(v, 0, sizeof *v);
}

/* Appends s (taken over; freed on failure). */
static l2rw_status sv_push(strvec *v, char *s)
{
    if (s && v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 16;
        char **t = cap > v->cap ? realloc(v->s, (size_t)cap * sizeof *t)
                                : NULL;
        if (t) {
            v->s = t;
            v->cap = cap;
        }
    }
    if (!s || v->n == v->cap) {
        free(s);
        return l2rw__fail(L2RW_ERR_NOMEM, "image data: out of memory");
    }
    v->s[v->n++] = s;
    return L2RW_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The entries of dir except dot files, sorted. */
static l2rw_status read_dir(const char *dir, strvec *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return l2rw__fail(L2RW_ERR_IO, "%s: cannot open folder: %s", dir,
                          strerror(errno));
    l2rw_status s = L2RW_OK;
    struct dirent *e;
    while (s == L2RW_OK && (errno = 0, e = readdir(d)))
        if (e->d_name[0] != '.') s = sv_push(out, strdup(e->d_name));
    if (s == L2RW_OK && errno)
        s = l2rw__fail(L2RW_ERR_IO, "%s: cannot read folder: %s", dir,
                       strerror(errno));
    closedir(d);
    if (s != L2RW_OK) sv_free(out);
    else if (out->n) qsort(out->s, (size_t)out->n, sizeof *out->s, cmp_str);
    return s;
}

/* ------------------------------------------------------------ listings */

static void listing_free(l2rw__listing *ls)
{
    for (int i = 0; i < ls->n; i++) free(ls->path[i]);
    for (int k = 0; ls->names && k < ls->classes; k++) free(ls->names[k]);
    free(ls->path);
    free(ls->label);
    free(ls->line);
    free(ls->size);
    free(ls->mtime_ns);
    free(ls->names);
    free(ls->where);
    memset(ls, 0, sizeof *ls);
}

static l2rw_status listing_grow(l2rw__listing *ls)
{
    int cap = ls->cap ? 2 * ls->cap : 64;
    if (cap <= ls->cap) return l2rw__fail(L2RW_ERR_NOMEM, "too many files");
    char **p = realloc(ls->path, (size_t)cap * sizeof *p);
    if (p) ls->path = p;
    int32_t *l = realloc(ls->label, (size_t)cap * sizeof *l);
    if (l) ls->label = l;
    int32_t *ln = realloc(ls->line, (size_t)cap * sizeof *ln);
    if (ln) ls->line = ln;
    int64_t *sz = realloc(ls->size, (size_t)cap * sizeof *sz);
    if (sz) ls->size = sz;
    int64_t *mt = realloc(ls->mtime_ns, (size_t)cap * sizeof *mt);
    if (mt) ls->mtime_ns = mt;
    if (!p || !l || !ln || !sz || !mt)
        return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory listing "
                          "files", ls->where);
    ls->cap = cap;
    return L2RW_OK;
}

/* Appends path (taken over) with what stat says of it; the size and
 * modification time are the cache's key. */
static l2rw_status listing_add(l2rw__listing *ls, char *path,
                               const struct stat *st, int label, int line)
{
    if (ls->n == INT_MAX - 1) {
        free(path);
        return l2rw__fail(L2RW_ERR_ARG, "%s: too many files", ls->where);
    }
    if (ls->n == ls->cap) {
        l2rw_status s = listing_grow(ls);
        if (s != L2RW_OK) {
            free(path);
            return s;
        }
    }
    int i = ls->n++;
    ls->path[i] = path;
    ls->label[i] = label;
    ls->line[i] = line;
    ls->size[i] = (int64_t)st->st_size;
    ls->mtime_ns[i] = (int64_t)st->st_mtim.tv_sec * 1000000000 +
                      st->st_mtim.tv_nsec;
    return L2RW_OK;
}

/* The regular files under dir, depth first in sorted order. */
static l2rw_status walk(l2rw__listing *ls, const char *dir, int label,
                        int depth)
{
    if (depth > MAX_DEPTH)
        return l2rw__fail(L2RW_ERR_IO, "%s: folders nested more than %d "
                          "deep (a symbolic link loop?)", dir, MAX_DEPTH);
    strvec ents;
    L2RW_TRY(read_dir(dir, &ents));
    l2rw_status s = L2RW_OK;
    for (int i = 0; s == L2RW_OK && i < ents.n; i++) {
        char *path = join(dir, ents.s[i]);
        struct stat st;
        if (!path) {
            s = l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", dir);
        } else if (stat(path, &st) != 0) {
            /* A dangling link: listed, so that decoding reports it as a
             * bad file like any other that cannot be read. */
            memset(&st, 0, sizeof st);
            s = listing_add(ls, path, &st, label, 0);
        } else if (S_ISDIR(st.st_mode)) {
            s = walk(ls, path, label, depth + 1);
            free(path);
        } else if (S_ISREG(st.st_mode)) {
            s = listing_add(ls, path, &st, label, 0);
        } else {
            free(path); /* sockets, pipes: not data */
        }
    }
    sv_free(&ents);
    return s;
}

/* Position of name in the sorted names, or -1. */
static int find_name(char *const *names, int n, const char *name)
{
    char *const *hit = n ? bsearch(&name, names, (size_t)n, sizeof *names,
                                   cmp_str)
                         : NULL;
    return hit ? (int)(hit - names) : -1;
}

/* The class folders of dir: its sub-folders (not dot ones), sorted. */
static l2rw_status class_dirs(const char *dir, strvec *out)
{
    strvec ents;
    L2RW_TRY(read_dir(dir, &ents));
    memset(out, 0, sizeof *out);
    l2rw_status s = L2RW_OK;
    for (int i = 0; s == L2RW_OK && i < ents.n; i++) {
        char *path = join(dir, ents.s[i]);
        struct stat st;
        int is_dir = path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
        free(path);
        if (is_dir) {
            s = sv_push(out, ents.s[i]);
            ents.s[i] = NULL;
        }
    }
    sv_free(&ents);
    if (s == L2RW_OK && out->n == 0)
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: no class folders (folder: "
                       "data has one sub-folder of images per class)", dir);
    if (s != L2RW_OK) sv_free(out);
    return s;
}

/* folder:DIR. known: the training listing when dir is the test folder
 * (its classes, by name), else NULL. */
static l2rw_status list_folder(l2rw__listing *ls, const char *dir,
                               const l2rw__listing *known)
{
    strvec cls;
    L2RW_TRY(class_dirs(dir, &cls));
    l2rw_status s = L2RW_OK;
    for (int k = 0; s == L2RW_OK && k < cls.n; k++) {
        int label = known ? find_name(known->names, known->classes,
                                      cls.s[k])
                          : k;
        char *sub = join(dir, cls.s[k]);
        int before = ls->n;
        if (label < 0)
            s = l2rw__fail(L2RW_ERR_LABEL, "%s: class '%s' is not one of "
                           "the %d classes of the training data in %s",
                           dir, cls.s[k], known->classes, known->where);
        else if (!sub)
            s = l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", dir);
        else
            s = walk(ls, sub, label, 1);
        if (s == L2RW_OK && !known && ls->n == before)
            s = l2rw__fail(L2RW_ERR_FORMAT, "%s: empty class folder (each "
                           "sub-folder of %s is a class and needs at least "
                           "one image)", sub, dir);
        free(sub);
    }
    if (s == L2RW_OK && !known) {
        ls->classes = cls.n;
        ls->names = cls.s;
        cls.s = NULL;
        cls.n = 0;
    }
    sv_free(&cls);
    return s;
}

/* ^[+-]?[0-9]+$ */
static int is_integer(const char *s)
{
    if (*s == '+' || *s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* Splits a list line in place into the path (leading and trailing blanks
 * removed) and the label (after the last blank): paths may hold spaces. */
static int split_line(char *line, char **path, char **label)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' ||
                 line[n - 1] == '\r'))
        line[--n] = 0;
    while (*line == ' ' || *line == '\t') line++;
    if (!*line || *line == '#') {
        *path = NULL;
        return 1; /* blank or comment */
    }
    char *sp = strrchr(line, ' '), *tab = strrchr(line, '\t');
    if (tab > sp) sp = tab;
    if (!sp) return 0;
    *label = sp + 1;
    while (sp > line && (sp[-1] == ' ' || sp[-1] == '\t')) sp--;
    *sp = 0;
    *path = line;
    return 1;
}

/* The label of one list line: a class index (integer labels) or a name
 * to look up; names of the training list are collected later. */
static l2rw_status line_label(const l2rw__listing *known, int named,
                              const char *label, int classes,
                              const char *file, int line, int *out)
{
    if (named && known) {
        *out = find_name(known->names, known->classes, label);
        if (*out < 0)
            return l2rw__fail(L2RW_ERR_LABEL, "%s:%d: class '%s' is not "
                              "one of the %d classes of the training list "
                              "%s", file, line, label, known->classes,
                              known->where);
        return L2RW_OK;
    }
    if (named) {
        *out = -1; /* set once every name is known */
        return L2RW_OK;
    }
    char *end;
    errno = 0;
    long v = strtol(label, &end, 10);
    long top = classes > 0 ? classes : L2RW__MAX_CLASSES;
    if (!is_integer(label) || errno || v < 0 || v >= top)
        return l2rw__fail(L2RW_ERR_LABEL, "%s:%d: label '%s' is not a class "
                          "index in [0, %ld)%s", file, line, label, top,
                          known ? " (the training list has integer labels)"
                                : "");
    *out = (int)v;
    return L2RW_OK;
}

/* Whether the training list's labels are names: any label that is not
 * an integer makes every label a name. */
static int labels_are_names(char *buf)
{
    for (char *line = buf; line;) {
        char *next = strchr(line, '\n');
        if (next) *next = 0;
        char *tmp = strdup(line), *path, *label;
        int named = tmp && split_line(tmp, &path, &label) && path &&
                    !is_integer(label);
        free(tmp);
        if (next) *next = '\n';
        if (named) return 1;
        line = next ? next + 1 : NULL;
    }
    return 0;
}

/* The folder relative paths of file are resolved against. */
static char *dir_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    if (!slash) return strdup(".");
    size_t n = slash == file ? 1 : (size_t)(slash - file);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, file, n);
        d[n] = 0;
    }
    return d;
}

static l2rw_status list_one_line(l2rw__listing *ls, char *text, int line,
                                 const char *file, const char *root,
                                 const l2rw__listing *known, int named,
                                 int classes, strvec *labels)
{
    char *path, *label;
    if (!split_line(text, &path, &label))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s:%d: expected 'PATH LABEL'",
                          file, line);
    if (!path) return L2RW_OK;
    int y = -1;
    L2RW_TRY(line_label(known, named, label, classes, file, line, &y));
    char *full = path[0] == '/' ? strdup(path) : join(root, path);
    struct stat st;
    if (!full) return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", file);
    int found = stat(full, &st) == 0;
    if (!found || !S_ISREG(st.st_mode)) {
        l2rw_status s = l2rw__fail(L2RW_ERR_IO, "%s:%d: %s: %s", file, line,
                                   full, found ? "not a regular file"
                                               : strerror(errno));
        free(full);
        return s;
    }
    L2RW_TRY(listing_add(ls, full, &st, y, line));
    return named && !known ? sv_push(labels, strdup(label)) : L2RW_OK;
}

/* Names of the training list: the distinct labels in byte order; then
 * every entry's index. */
static l2rw_status collect_names(l2rw__listing *ls, strvec *labels)
{
    strvec names;
    memset(&names, 0, sizeof names);
    l2rw_status s = L2RW_OK;
    char **sorted = l2rw__calloc((size_t)labels->n + 1, sizeof *sorted);
    if (!sorted) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    memcpy(sorted, labels->s, (size_t)labels->n * sizeof *sorted);
    qsort(sorted, (size_t)labels->n, sizeof *sorted, cmp_str);
    for (int i = 0; s == L2RW_OK && i < labels->n; i++)
        if (i == 0 || strcmp(sorted[i], sorted[i - 1]))
            s = sv_push(&names, strdup(sorted[i]));
    free(sorted);
    if (s == L2RW_OK && names.n > L2RW__MAX_CLASSES)
        s = l2rw__fail(L2RW_ERR_LABEL, "%s: %d class names, more than %d",
                       ls->where, names.n, L2RW__MAX_CLASSES);
    for (int i = 0; s == L2RW_OK && i < ls->n; i++)
        ls->label[i] = find_name(names.s, names.n, labels->s[i]);
    if (s != L2RW_OK) {
        sv_free(&names);
        return s;
    }
    ls->names = names.s;
    ls->classes = names.n;
    return L2RW_OK;
}

/* list:FILE; root NULL: the list file's folder. *named: in for a test
 * list (the training list's kind), out for a training list. */
static l2rw_status list_file(l2rw__listing *ls, const char *file,
                             const char *root, const l2rw__listing *known,
                             int *named, int classes)
{
    unsigned char *buf;
    size_t len;
    L2RW_TRY(l2rw__read_file(file, L2RW__MAX_FILE, "a label list may hold",
                             &buf, &len));
    char *own_root = root ? NULL : dir_of(file);
    strvec labels;
    memset(&labels, 0, sizeof labels);
    l2rw_status s = own_root || root ? L2RW_OK
                                     : l2rw__fail(L2RW_ERR_NOMEM, "%s: out "
                                                  "of memory", file);
    if (!known) *named = labels_are_names((char *)buf);
    int line = 0;
    for (char *p = (char *)buf; s == L2RW_OK && p && *p;) {
        char *next = strchr(p, '\n');
        if (next) *next++ = 0;
        s = list_one_line(ls, p, ++line, file, root ? root : own_root, known,
                          *named, classes, &labels);
        p = next;
    }
    if (s == L2RW_OK && ls->n == 0)
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: no 'PATH LABEL' lines", file);
    if (s == L2RW_OK && *named && !known) s = collect_names(ls, &labels);
    sv_free(&labels);
    free(own_root);
    free(buf);
    return s;
}

/* ------------------------------------------------------------ decoding */

void l2rw__decoded_free(l2rw__decoded *d)
{
    if (!d) return;
    for (int i = 0; d->why && i < d->n; i++) free(d->why[i]);
    free(d->why);
    free(d->ok);
    free(d->px);
    memset(d, 0, sizeof *d);
}

/* Every file's slot and outcome while the team decodes. */
typedef struct {
    const l2rw__listing *ls;
    const l2rw__image_opts *o;
    int c, h, w, sized;
    size_t dim;
    unsigned char *slots;   /* [n][dim] */
    uint8_t *state, *colour;
    char **why;
    int *fh, *fw;           /* a file's own size (DEC_SIZE) */
} decode_job;

static l2rw_status read_image_file(const char *path, unsigned char **buf,
                                   size_t *len)
{
    *buf = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return l2rw__fail(L2RW_ERR_IO, "%s: cannot open: %s", path,
                          strerror(errno));
    struct stat st;
    l2rw_status s = L2RW_OK;
    if (fstat(fileno(fp), &st) != 0 || st.st_size < 0)
        s = l2rw__fail(L2RW_ERR_IO, "%s: cannot stat", path);
    else if ((uint64_t)st.st_size > MAX_IMAGE_FILE)
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: %lld bytes, more than an "
                       "image file may hold here", path,
                       (long long)st.st_size);
    *len = s == L2RW_OK ? (size_t)st.st_size : 0;
    if (s == L2RW_OK && !(*buf = malloc(*len + 1)))
        s = l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", path);
    if (s == L2RW_OK && fread(*buf, 1, *len, fp) != *len)
        s = l2rw__fail(L2RW_ERR_IO, "%s: read error", path);
    fclose(fp);
    if (s != L2RW_OK) {
        free(*buf);
        *buf = NULL;
    }
    return s;
}

/* The message of the last failure without its leading "path: ". */
static char *reason_of(const char *path)
{
    const char *m = l2rw_last_error();
    size_t n = strlen(path);
    if (!strncmp(m, path, n) && !strncmp(m + n, ": ", 2)) m += n + 2;
    return strdup(m);
}

/* File i into its slot; the outcome goes to state[i] (and why[i]). */
static void decode_one(decode_job *j, int i)
{
    const char *path = j->ls->path[i];
    unsigned char *buf;
    size_t len;
    l2rw__image im;
    int colour = 0;
    l2rw_status s = read_image_file(path, &buf, &len);
    if (s == L2RW_OK) {
        s = l2rw__image_decode(buf, len, path, &im, &colour);
        free(buf);
    }
    if (s == L2RW_OK && !j->sized && (im.h != j->h || im.w != j->w)) {
        j->state[i] = DEC_SIZE;
        j->fh[i] = im.h;
        j->fw[i] = im.w;
        l2rw__image_free(&im);
        return;
    }
    if (s == L2RW_OK) {
        s = l2rw__image_convert(&im, j->c, j->h, j->w,
                                j->slots + (size_t)i * j->dim);
        l2rw__image_free(&im);
    }
    j->colour[i] = (uint8_t)colour;
    j->state[i] = s == L2RW_OK ? DEC_OK : DEC_BAD;
    if (s != L2RW_OK) j->why[i] = reason_of(path);
}

/* Without size=: the size of the first file that decodes. */
static void probe_size(decode_job *j)
{
    j->h = j->w = 1; /* none decodes: every file will be bad */
    for (int i = 0; i < j->ls->n; i++) {
        unsigned char *buf;
        size_t len;
        l2rw__image im;
        if (read_image_file(j->ls->path[i], &buf, &len) != L2RW_OK) continue;
        l2rw_status s = l2rw__image_decode(buf, len, j->ls->path[i], &im,
                                           NULL);
        free(buf);
        if (s != L2RW_OK) continue;
        j->h = im.h;
        j->w = im.w;
        l2rw__image_free(&im);
        return;
    }
}

static void decode_parallel(decode_job *j)
{
    const int n = j->ls->n;
    long done = 0, shown = 0;
    l2rw_data_progress_fn progress = j->o->progress;
#pragma omp parallel for schedule(dynamic, DECODE_CHUNK) \
    num_threads(l2rw_get_threads())
    for (int i = 0; i < n; i++) {
        decode_one(j, i);
        long now;
#pragma omp atomic capture
        now = ++done;
#ifdef _OPENMP
        /* Thread 0 of the team is the calling thread. */
        if (progress && omp_get_thread_num() == 0 &&
            now - shown >= PROGRESS_EVERY) {
#else
        if (progress && now - shown >= PROGRESS_EVERY) {
#endif
            shown = now;
            progress(j->o->progress_ctx, now, n);
        }
    }
    if (progress) progress(j->o->progress_ctx, n, n);
}

static l2rw_status job_alloc(decode_job *j, int n)
{
    /* One more than needed: a test folder of empty class folders has
     * no files, and calloc(0) may be NULL. */
    const size_t m = (size_t)n + 1;
    j->slots = l2rw__calloc(m, j->dim);
    j->state = l2rw__calloc(m, 1);
    j->colour = l2rw__calloc(m, 1);
    j->why = l2rw__calloc(m, sizeof *j->why);
    j->fh = l2rw__calloc(m, sizeof *j->fh);
    j->fw = l2rw__calloc(m, sizeof *j->fw);
    if (!j->slots || !j->state || !j->colour || !j->why || !j->fh || !j->fw)
        return l2rw__fail(L2RW_ERR_NOMEM, "images: out of memory for %d "
                          "images of %zu bytes", n, j->dim);
    return L2RW_OK;
}

static void job_free(decode_job *j)
{
    for (int i = 0; j->why && i < j->ls->n; i++) free(j->why[i]);
    free(j->slots);
    free(j->state);
    free(j->colour);
    free(j->why);
    free(j->fh);
    free(j->fw);
}

/* The first file (in order) whose size differs from the first one's. */
static l2rw_status check_sizes(const decode_job *j)
{
    const l2rw__listing *ls = j->ls;
    int first = 0;
    while (first < ls->n && j->state[first] != DEC_OK) first++;
    for (int i = 0; i < ls->n; i++)
        if (j->state[i] == DEC_SIZE)
            return l2rw__fail(L2RW_ERR_SHAPE, "%s: %dx%d pixels (height x "
                              "width) but %s has %dx%d: give --image-size "
                              "HxW (size=HxW in the data spec) to resize "
                              "every image to one size", ls->path[i],
                              j->fh[i], j->fw[i],
                              first < ls->n ? ls->path[first] : "the first",
                              j->h, j->w);
    return L2RW_OK;
}

/* The job's outcome as a decoded set: decoded files packed in order,
 * and one channel when auto channels found no colour file. */
static void job_result(decode_job *j, int auto_channels, l2rw__decoded *d)
{
    const int n = j->ls->n;
    int colour = 0, kept = 0;
    for (int i = 0; i < n; i++)
        if (j->state[i] == DEC_OK) colour |= j->colour[i];
    const int c = auto_channels && !colour ? 1 : j->c;
    const size_t plane = (size_t)j->h * j->w, dim = (size_t)c * plane;
    for (int i = 0; i < n; i++)
        if (j->state[i] == DEC_OK) /* grey replicated: plane 0 is it */
            memmove(j->slots + kept++ * dim, j->slots + (size_t)i * j->dim,
                    dim);
    d->c = c;
    d->h = j->h;
    d->w = j->w;
    d->n = n;
    d->kept = kept;
    d->ok = j->state; /* DEC_OK is 0: turned into 1 = decoded below */
    for (int i = 0; i < n; i++) d->ok[i] = d->ok[i] == DEC_OK;
    d->why = j->why;
    d->px = j->slots;
    j->state = NULL;
    j->why = NULL;
    j->slots = NULL;
}

static l2rw_status decode_listing(const l2rw__listing *ls,
                                  const l2rw__image_opts *o, int channels,
                                  l2rw__decoded *out)
{
    decode_job j;
    memset(&j, 0, sizeof j);
    j.ls = ls;
    j.o = o;
    j.c = channels ? channels : 3;
    j.sized = o->h > 0;
    j.h = o->h;
    j.w = o->w;
    if (!j.sized) probe_size(&j);
    j.dim = (size_t)j.c * j.h * j.w;
    l2rw_status s = job_alloc(&j, ls->n);
    if (s == L2RW_OK) {
        decode_parallel(&j);
        s = check_sizes(&j);
    }
    if (s == L2RW_OK) job_result(&j, channels == 0, out);
    job_free(&j);
    return s;
}

/* --------------------------------------------------------------- parts */

/* on-bad=fail: the first bad file (in order) is the error. */
static l2rw_status check_bad(const l2rw__listing *ls, const l2rw__decoded *d,
                             const l2rw__image_opts *o)
{
    if (o->on_bad != L2RW__ON_BAD_FAIL) return L2RW_OK;
    for (int i = 0; i < d->n; i++)
        if (!d->ok[i])
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: %s (on-bad=skip skips "
                              "such files)", ls->path[i],
                              d->why[i] ? d->why[i] : "cannot decode");
    return L2RW_OK;
}

/* A training class all of whose files were bad is the empty class
 * folder's error, said with what was wrong with its files. */
static l2rw_status check_classes_filled(const l2rw__listing *ls,
                                        const l2rw__decoded *d)
{
    if (!ls->names) return L2RW_OK; /* integer labels: check_no_gap */
    int *cnt = l2rw__calloc((size_t)ls->classes, sizeof *cnt);
    if (!cnt) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < d->n; i++)
        if (d->ok[i]) cnt[ls->label[i]]++;
    int k = 0;
    while (k < ls->classes && cnt[k]) k++;
    free(cnt);
    if (k == ls->classes) return L2RW_OK;
    int i = 0;
    while (ls->label[i] != k) i++; /* its first (bad) file */
    return l2rw__fail(L2RW_ERR_FORMAT, "%s: class '%s' has no image that "
                      "decodes (%s: %s)", ls->where, ls->names[k],
                      ls->path[i], d->why[i] ? d->why[i] : "bad file");
}

/* Bad files of d into src's list. */
static l2rw_status add_bad(l2rw_sources *src, l2rw__listing *ls,
                           l2rw__decoded *d)
{
    int bad = d->n - d->kept;
    if (!bad) return L2RW_OK;
    char **f = realloc(src->bad_files, (size_t)(src->n_bad + bad) *
                                           sizeof *f);
    if (f) src->bad_files = f;
    char **r = realloc(src->bad_reasons, (size_t)(src->n_bad + bad) *
                                             sizeof *r);
    if (r) src->bad_reasons = r;
    if (!f || !r) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < d->n; i++) {
        if (d->ok[i]) continue;
        f[src->n_bad] = ls->path[i];
        r[src->n_bad++] = d->why[i] ? d->why[i] : strdup("cannot decode");
        ls->path[i] = NULL;
        d->why[i] = NULL;
    }
    return L2RW_OK;
}

/* The dataset of the decoded files and their names (taken from ls). */
static l2rw_status to_dataset(l2rw__listing *ls, const l2rw__decoded *d,
                              int classes, l2rw_dataset *out, char ***files,
                              int *n_files)
{
    L2RW_TRY(l2rw_dataset_alloc(out, d->kept, d->c, d->h, d->w, classes));
    *files = l2rw__calloc((size_t)d->kept + 1, sizeof **files);
    if (!*files) {
        l2rw_dataset_free(out);
        return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    }
    *n_files = d->kept;
    const size_t dim = l2rw_dataset_dim(out);
    for (size_t p = 0; p < (size_t)d->kept * dim; p++)
        out->x[p] = d->px[p] / 255.0f;
    for (int i = 0, k = 0; i < d->n; i++) {
        if (!d->ok[i]) continue;
        out->y[k] = out->y_true[k] = ls->label[i];
        (*files)[k++] = ls->path[i];
        ls->path[i] = NULL;
    }
    return L2RW_OK;
}

/* The decoded set of ls: from the cache, or decoded (and cached). */
static l2rw_status obtain(const l2rw__listing *ls, l2rw__part part,
                          const l2rw__image_opts *o, int channels,
                          l2rw__decoded *d, l2rw_sources *src)
{
    if (o->cache && l2rw__cache_load(ls, part, o, channels, d)) {
        src->n_cached += ls->n;
        return L2RW_OK;
    }
    L2RW_TRY(decode_listing(ls, o, channels, d));
    src->n_decoded += ls->n;
    if (o->cache && l2rw__cache_save(ls, part, o, channels, d) != L2RW_OK &&
        !src->cache_error)
        src->cache_error = strdup(l2rw_last_error());
    return L2RW_OK;
}

/* One part: listing -> decoded -> dataset, names into src. */
static l2rw_status load_part(l2rw__listing *ls, l2rw__part part,
                             const l2rw__image_opts *o, int channels,
                             int classes, l2rw_dataset *out, char ***files,
                             int *n_files, l2rw_sources *src)
{
    l2rw__decoded d;
    memset(&d, 0, sizeof d);
    l2rw_status s = obtain(ls, part, o, channels, &d, src);
    if (s == L2RW_OK) s = check_bad(ls, &d, o);
    if (s == L2RW_OK && part == L2RW__PART_TRAIN)
        s = check_classes_filled(ls, &d);
    if (s == L2RW_OK && classes == 0) {
        /* Integer labels without classes=K: largest + 1. */
        s = l2rw__check_labels(ls->label, ls->n, &classes, ls->where);
    }
    if (s == L2RW_OK) s = to_dataset(ls, &d, classes, out, files, n_files);
    if (s == L2RW_OK) s = add_bad(src, ls, &d);
    l2rw__decoded_free(&d);
    return s;
}

static l2rw_status make_listing(l2rw__listing *ls, int is_list,
                                const char *where, const l2rw__image_opts *o,
                                const l2rw__listing *known, int *named)
{
    memset(ls, 0, sizeof *ls);
    ls->where = strdup(where);
    ls->is_list = is_list;
    if (!ls->where) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    if (!is_list) return list_folder(ls, where, known);
    return list_file(ls, where, o->root, known, named, o->classes);
}

static l2rw_status load_both(int is_list, const char *train_src,
                             const char *test_src, const l2rw__image_opts *o,
                             l2rw_dataset *train, l2rw_dataset *test,
                             l2rw_sources *src, l2rw__listing *ls)
{
    int named = 1; /* folders always name their classes */
    L2RW_TRY(make_listing(&ls[0], is_list, train_src, o, NULL, &named));
    L2RW_TRY(load_part(&ls[0], L2RW__PART_TRAIN, o, o->channels,
                       ls[0].names ? ls[0].classes : o->classes, train,
                       &src->train_files, &src->n_train, src));
    src->classes = train->classes;
    src->class_names = ls[0].names; /* NULL for integer labels */
    ls[0].names = NULL;
    if (!test_src) return L2RW_OK;
    /* The test part has the training part's classes and channels. */
    ls[0].names = src->class_names;
    ls[0].classes = named ? src->classes : 0;
    l2rw_status s = make_listing(&ls[1], is_list, test_src, o, &ls[0],
                                 &named);
    ls[0].names = NULL;
    ls[0].classes = 0;
    if (s == L2RW_OK)
        s = load_part(&ls[1], L2RW__PART_TEST, o, train->c, train->classes,
                      test, &src->test_files, &src->n_test, src);
    return s;
}

l2rw_status l2rw__image_load(int is_list, const char *train_src,
                             const char *test_src,
                             const l2rw__image_opts *o, l2rw_dataset *train,
                             l2rw_dataset *test, l2rw_sources *src)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    l2rw__listing ls[2];
    memset(ls, 0, sizeof ls);
    l2rw_status s = load_both(is_list, train_src, test_src, o, train, test,
                              src, ls);
    listing_free(&ls[0]);
    listing_free(&ls[1]);
    if (s != L2RW_OK) {
        l2rw_dataset_free(train);
        l2rw_dataset_free(test);
        l2rw_sources_free(src);
    }
    return s;
}

l2rw_status l2rw__sources_select(l2rw_sources *src,
                                 const l2rw_imbalance *imb)
{
    if (!src->class_names || imb->kind != L2RW_IMB_SHARE) return L2RW_OK;
    char **names = l2rw__calloc((size_t)imb->k, sizeof *names);
    if (!names) return l2rw__fail(L2RW_ERR_NOMEM, "out of memory");
    /* l2rw_imbalance_select checked the listed classes against the
     * count; listed class j becomes class j. */
    for (int j = 0; j < imb->k; j++) {
        names[j] = src->class_names[imb->classes[j]];
        src->class_names[imb->classes[j]] = NULL;
    }
    for (int k = 0; k < src->classes; k++) free(src->class_names[k]);
    free(src->class_names);
    src->class_names = names;
    src->classes = imb->k;
    return L2RW_OK;
}
