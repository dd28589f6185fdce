/* l2rw suspects: the training examples a run trusted least.
 *
 *   l2rw suspects RUN_DIR [--top N] [--out FILE]
 *
 * Reads RUN_DIR/examples.csv (the per-example record of l2rw train),
 * ranks the examples by mean weight, lowest first (ties: higher
 * zero-weight share, then more times seen, then lower id), and
 * prints the first N with their given label, mean weight, zero-weight
 * share, times seen and file; writes the same rows as CSV (atomically,
 * RUN_DIR/suspects.csv unless --out). When the run knows which labels
 * were corrupted (synthetic noise), says how many of the N were.
 *
 * Columns are found by their header name, so every examples.csv written
 * so far reads (id, given_label, true_label, corrupted, mean_weight,
 * zero_weight_share, seen; given_class and file when the data named them)
 * and so will one with columns added. The ranking is redone here rather
 * than trusting the file's order. Examples never seen (empty mean weight)
 * are not ranked. */
#define _POSIX_C_SOURCE 200809L
#include "cmds.h"
#include "opts.h"

#include "common.h" /* l2rw_write_atomic, l2rw__csv_field */
#include "l2rw.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "l2rw suspects"

/* The columns this command reads. */
typedef enum {
    COL_ID, COL_GIVEN, COL_TRUE, COL_CORRUPTED, COL_MEAN, COL_ZERO, COL_SEEN,
    COL_CLASS, COL_FILE, N_COLS
} column;

static const char *const col_names[N_COLS] = {
    "id", "given_label", "true_label", "corrupted", "mean_weight",
    "zero_weight_share", "seen", "given_class", "file"};

/* One example of the record; fields unknown to the file are -1 / NaN /
 * NULL. The strings point into the file's buffer. */
typedef struct {
    long id, seen;
    int label, true_label, corrupted;
    double mean, zero;
    const char *cls, *file;
} example;

typedef struct {
    char *buf;          /* the file, fields unquoted in place */
    int col[N_COLS];    /* field index of each column, -1 absent */
    int n_fields;       /* fields of the header */
    example *ex;
    long n, cap;
    long unseen;        /* rows without a mean weight */
} table;

/* ---------------------------------------------------------- CSV reading */

typedef struct {
    char *p, *end;
    long line;          /* 1-based line of p, for messages */
} cursor;

/* The next field, unquoted in place (RFC 4180: "..." with "" for a
 * quote) and NUL-terminated; *eol = 1 when it ends its row. NULL on a
 * malformed quoted field. */
static char *next_field(cursor *c, int *eol)
{
    char *start = c->p, *w = c->p;
    if (c->p < c->end && *c->p == '"') {
        for (c->p++;; c->p++) {
            if (c->p >= c->end) return NULL; /* unterminated */
            if (*c->p == '"' && c->p + 1 < c->end && c->p[1] == '"') {
                *w++ = '"';
                c->p++;
            } else if (*c->p == '"') {
                c->p++;
                break;
            } else {
                c->line += *c->p == '\n';
                *w++ = *c->p;
            }
        }
    } else {
        while (c->p < c->end && *c->p != ',' && *c->p != '\n' &&
               *c->p != '\r')
            *w++ = *c->p++;
    }
    if (c->p < c->end && *c->p == '\r') c->p++;
    *eol = c->p >= c->end || *c->p == '\n';
    if (c->p < c->end && *c->p != ',' && *c->p != '\n') return NULL;
    if (c->p < c->end) {
        c->line += *c->p == '\n';
        c->p++;
    }
    *w = 0;
    return start;
}

/* Strict numbers: the whole field, or empty (unknown). */
static int parse_long_field(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) return 0;
    *out = v;
    return 1;
}

static int parse_double_field(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int read_header(table *t, cursor *c, const char *path)
{
    for (int k = 0; k < N_COLS; k++) t->col[k] = -1;
    int eol = 0;
    for (t->n_fields = 0; !eol; t->n_fields++) {
        char *f = next_field(c, &eol);
        if (!f) {
            fprintf(stderr, PROG ": %s: malformed header\n", path);
            return 2;
        }
        for (int k = 0; k < N_COLS; k++)
            if (!strcmp(f, col_names[k]) && t->col[k] < 0)
                t->col[k] = t->n_fields;
    }
    if (t->col[COL_ID] < 0 || t->col[COL_MEAN] < 0 || t->col[COL_GIVEN] < 0) {
        fprintf(stderr, PROG ": %s: no id, given_label and mean_weight "
                "columns (not an examples.csv of l2rw train?)\n", path);
        return 2;
    }
    return 0;
}

/* Field f of a row into column k of e; 0 when its text is no value. */
static int set_column(example *e, int k, const char *f)
{
    long v = -1;
    switch ((column)k) {
    case COL_ID: return parse_long_field(f, &e->id);
    case COL_GIVEN:
        if (!parse_long_field(f, &v) || v < 0 || v > INT_MAX) return 0;
        e->label = (int)v;
        return 1;
    case COL_TRUE:
    case COL_CORRUPTED:
        if (*f && (!parse_long_field(f, &v) || v < 0 || v > INT_MAX))
            return 0;
        *(k == COL_TRUE ? &e->true_label : &e->corrupted) = (int)v;
        return 1;
    case COL_MEAN: return !*f || parse_double_field(f, &e->mean);
    case COL_ZERO: return !*f || parse_double_field(f, &e->zero);
    case COL_SEEN: return !*f || parse_long_field(f, &e->seen);
    case COL_CLASS: e->cls = *f ? f : NULL; return 1;
    case COL_FILE: e->file = *f ? f : NULL; return 1;
    default: return 1;
    }
}

static example blank_example(void)
{
    example e = {-1, -1, -1, -1, -1, NAN, NAN, NULL, NULL};
    return e;
}

/* The fields of one row; 0, or 2 after printing why. */
static int read_row(table *t, cursor *c, example *e, const char *path)
{
    long line = c->line;
    int eol = 0, i = 0;
    *e = blank_example();
    for (; !eol; i++) {
        char *f = next_field(c, &eol);
        if (!f) {
            fprintf(stderr, PROG ": %s line %ld: malformed quoted field\n",
                    path, line);
            return 2;
        }
        for (int k = 0; k < N_COLS; k++)
            if (t->col[k] == i && !set_column(e, k, f)) {
                fprintf(stderr, PROG ": %s line %ld: column %s has the bad "
                        "value '%.40s'\n", path, line, col_names[k], f);
                return 2;
            }
    }
    if (i != t->n_fields) {
        fprintf(stderr, PROG ": %s line %ld: %d fields, the header has %d\n",
                path, line, i, t->n_fields);
        return 2;
    }
    return 0;
}

static int push(table *t, const example *e)
{
    if (t->n == t->cap) {
        long cap = t->cap ? 2 * t->cap : 1024;
        example *ex = realloc(t->ex, (size_t)cap * sizeof *ex);
        if (!ex) {
            fprintf(stderr, PROG ": out of memory\n");
            return 2;
        }
        t->ex = ex;
        t->cap = cap;
    }
    t->ex[t->n++] = *e;
    return 0;
}

static int read_table(table *t, const char *path)
{
    long len = 0;
    memset(t, 0, sizeof *t);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, PROG ": cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    if (fseek(fp, 0, SEEK_END) == 0 && (len = ftell(fp)) >= 0 &&
        fseek(fp, 0, SEEK_SET) == 0)
        t->buf = malloc((size_t)len + 1);
    int ok = t->buf && fread(t->buf, 1, (size_t)len, fp) == (size_t)len;
    fclose(fp);
    if (!ok) {
        fprintf(stderr, PROG ": cannot read %s\n", path);
        return 2;
    }
    t->buf[len] = 0;
    cursor c = {t->buf, t->buf + len, 1};
    int rc = read_header(t, &c, path);
    while (!rc && c.p < c.end) {
        example e;
        rc = read_row(t, &c, &e, path);
        if (rc) break;
        if (isnan(e.mean)) t->unseen++;
        else rc = push(t, &e);
    }
    return rc;
}

static void free_table(table *t)
{
    free(t->buf);
    free(t->ex);
}

/* ---------------------------------------------------------------- ranking */

/* Lowest mean weight first (the order of examples.csv); among equal
 * means (many examples end at 0) the one refused more often, then the one
 * seen more often, is the stronger suspect; then lower id. Unknown
 * shares and counts (NaN, -1) rank last among equals. */
static int cmp_example(const void *a, const void *b)
{
    const example *p = a, *q = b;
    double pz = isnan(p->zero) ? -1.0 : p->zero;
    double qz = isnan(q->zero) ? -1.0 : q->zero;
    if (p->mean != q->mean) return p->mean < q->mean ? -1 : 1;
    if (pz != qz) return pz > qz ? -1 : 1;
    if (p->seen != q->seen) return p->seen > q->seen ? -1 : 1;
    return (p->id > q->id) - (p->id < q->id);
}

/* ----------------------------------------------------------------- output */


typedef struct {
    const table *t;
    long top;
} out_job;

static void put_int(FILE *fp, long v)
{
    if (v >= 0) fprintf(fp, "%ld", v);
}

static void write_row(FILE *fp, const table *t, long r)
{
    const example *e = &t->ex[r];
    fprintf(fp, "%ld,%ld,%d,", r + 1, e->id, e->label);
    if (t->col[COL_CLASS] >= 0) {
        l2rw__csv_field(fp, e->cls);
        fputc(',', fp);
    }
    fprintf(fp, "%.9g,", e->mean);
    if (!isnan(e->zero)) fprintf(fp, "%.9g", e->zero);
    fputc(',', fp);
    put_int(fp, e->seen);
    if (t->col[COL_TRUE] >= 0) {
        fputc(',', fp);
        put_int(fp, e->true_label);
    }
    if (t->col[COL_CORRUPTED] >= 0) {
        fputc(',', fp);
        put_int(fp, e->corrupted);
    }
    if (t->col[COL_FILE] >= 0) {
        fputc(',', fp);
        l2rw__csv_field(fp, e->file);
    }
    fputc('\n', fp);
}

static l2rw_status write_csv(FILE *fp, void *ctx)
{
    const out_job *j = ctx;
    const table *t = j->t;
    fprintf(fp, "rank,id,given_label,%smean_weight,zero_weight_share,seen"
                "%s%s%s\n",
            t->col[COL_CLASS] >= 0 ? "given_class," : "",
            t->col[COL_TRUE] >= 0 ? ",true_label" : "",
            t->col[COL_CORRUPTED] >= 0 ? ",corrupted" : "",
            t->col[COL_FILE] >= 0 ? ",file" : "");
    for (long r = 0; r < j->top; r++) write_row(fp, t, r);
    return ferror(fp) ? l2rw__fail(L2RW_ERR_IO, "write failed") : L2RW_OK;
}

static void print_table(const table *t, long top, const char *dir)
{
    printf("the %ld training examples %s trusted least (of %ld ranked; mean "
           "weight 1 = an even share):\n", top, dir, t->n);
    printf("%6s %8s  %-20s %9s %6s %6s%s\n", "rank", "id", "given label",
           "mean_w", "zero", "seen", t->col[COL_FILE] >= 0 ? "  file" : "");
    for (long r = 0; r < top; r++) {
        const example *e = &t->ex[r];
        char label[64], zero[16];
        if (e->cls) snprintf(label, sizeof label, "%d (%s)", e->label, e->cls);
        else snprintf(label, sizeof label, "%d", e->label);
        if (isnan(e->zero)) snprintf(zero, sizeof zero, "-");
        else snprintf(zero, sizeof zero, "%.0f%%", 100.0 * e->zero);
        printf("%6ld %8ld  %-20s %9.4f %6s %6ld%s%s%s\n", r + 1, e->id, label,
               e->mean, zero, e->seen, e->corrupted == 1 ? " *" : "",
               e->file ? "  " : "", e->file ? e->file : "");
    }
}

/* With ground truth (synthetic noise): the share of corrupted labels in
 * the top against the share over every ranked example. */
static void print_precision(const table *t, long top)
{
    long hit = 0, all = 0, known = 0;
    for (long r = 0; r < t->n; r++) {
        if (t->ex[r].corrupted < 0) continue;
        known++;
        all += t->ex[r].corrupted == 1;
        hit += r < top && t->ex[r].corrupted == 1;
    }
    if (known < t->n || top == 0) return;
    printf("corrupted labels (*): %ld of the top %ld (precision %.3f); "
           "%ld of all %ld ranked (%.1f%%)\n", hit, top,
           (double)hit / (double)top, all, t->n,
           100.0 * (double)all / (double)t->n);
}

int l2rw_cmd_suspects(int argc, char **argv)
{
    long top = 20;
    const char *out = NULL, *pos[1] = {NULL};
    int n_pos = 0;
    opt_def opts[] = {
        {"top", OPT_LONG, &top, "N",
         "how many of the least trusted examples (0 = every one ranked)", 0,
         1e18, 0},
        {"out", OPT_STR, &out, "FILE",
         "CSV of the listed examples (none = RUN_DIR/suspects.csv)", 1, 0,
         0},
    };
    char err[OPTS_ERR_MAX];
    int rc = opts_parse(opts, (int)(sizeof opts / sizeof opts[0]), argc, argv,
                        PROG, "usage: l2rw suspects RUN_DIR [--top N] "
                        "[--out FILE]", stdout, pos, 1, &n_pos, err,
                        sizeof err);
    if (rc == 1) return 0;
    if (rc) return opts_usage_error(err);
    if (n_pos != 1)
        return opts_usage_error(PROG ": give the run directory (RUN_DIR of "
                                "l2rw train --out RUN_DIR)");
    const char *dir = pos[0];
    char path[4200], out_path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, L2RW_FILE_EXAMPLES);
    snprintf(out_path, sizeof out_path, "%s%s%s", out ? out : dir,
             out ? "" : "/", out ? "" : "suspects.csv");
    table t;
    rc = read_table(&t, path);
    if (!rc) {
        qsort(t.ex, (size_t)t.n, sizeof *t.ex, cmp_example);
        if (top == 0 || top > t.n) top = t.n;
        print_table(&t, top, dir);
        if (t.unseen)
            printf("(%ld examples never seen in training are not ranked)\n",
                   t.unseen);
        print_precision(&t, top);
        out_job job = {&t, top};
        if (l2rw_write_atomic(out_path, write_csv, &job) != L2RW_OK) {
            fprintf(stderr, PROG ": %s: %s\n", out_path, l2rw_last_error());
            rc = 1;
        } else {
            printf("wrote %s\n", out_path);
        }
    }
    free_table(&t);
    return rc;
}
