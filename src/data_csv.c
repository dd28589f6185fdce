/* CSV reader: one example per row, comma-separated numeric fields, one of
 * them the integer label; optional header row. Features become channels
 * (c = features, h = w = 1). Strict: empty, non-numeric or non-finite
 * fields and rows of another length are errors, not zeros. */
#include "data_internal.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CSV_FIELD_MAX = 255 };

l2rw_csv_opts l2rw_csv_opts_default(void)
{
    l2rw_csv_opts o = {NULL, -1, -1, 0};
    return o;
}

/* A line [b, e) of the buffer, without its '\r'. */
typedef struct {
    const char *b, *e;
} span;

static span trim(span s)
{
    while (s.b < s.e && (*s.b == ' ' || *s.b == '\t')) s.b++;
    while (s.e > s.b && (s.e[-1] == ' ' || s.e[-1] == '\t' ||
                         s.e[-1] == '\r'))
        s.e--;
    /* One pair of surrounding double quotes is markup, not content. */
    if (s.e - s.b >= 2 && *s.b == '"' && s.e[-1] == '"') {
        s.b++;
        s.e--;
    }
    return s;
}

/* Next line starting at *p (< end); advances *p past its '\n'. */
static span next_line(const char **p, const char *end)
{
    span s = {*p, *p};
    while (s.e < end && *s.e != '\n') s.e++;
    *p = s.e < end ? s.e + 1 : end;
    return s;
}

static int blank(span s)
{
    for (const char *q = s.b; q < s.e; q++)
        if (!isspace((unsigned char)*q)) return 0;
    return 1;
}

/* Fields of a line, saturating at INT_MAX (a longer row is an error). */
static int count_fields(span line)
{
    long n = 1;
    for (const char *q = line.b; q < line.e && n < INT_MAX; q++)
        n += *q == ',';
    return (int)n;
}

/* The field starting at *q (on the line ending at e), trimmed; advances
 * *q past its comma. */
static span next_field(const char **q, const char *e)
{
    span f = {*q, *q};
    while (f.e < e && *f.e != ',') f.e++;
    *q = f.e + 1;
    return trim(f);
}

/* Parse a number filling the whole field; 0 ok, -1 not a number, -2 not
 * finite. */
static int parse_num(span f, double *v)
{
    char tmp[CSV_FIELD_MAX + 1];
    size_t n = (size_t)(f.e - f.b);
    if (n == 0 || n > CSV_FIELD_MAX) return -1;
    memcpy(tmp, f.b, n);
    tmp[n] = 0;
    if (strlen(tmp) != n) return -1; /* embedded NUL */
    char *end;
    *v = strtod(tmp, &end);
    if (end != tmp + n) return -1;
    return isfinite(*v) ? 0 : -2;
}

static int row_is_numeric(span line, int nf)
{
    double v;
    const char *q = line.b;
    for (int k = 0; k < nf; k++)
        if (parse_num(next_field(&q, line.e), &v) != 0) return 0;
    return 1;
}

static l2rw_status find_label(span header, int nf, int has_header,
                              const l2rw_csv_opts *o, const char *name,
                              int *label)
{
    if (o->label_name) {
        if (!has_header)
            return l2rw__fail(L2RW_ERR_ARG, "%s: label column '%s' given "
                              "by name but the file has no header", name,
                              o->label_name);
        size_t want = strlen(o->label_name);
        const char *q = header.b;
        for (int k = 0; k < nf; k++) {
            span f = next_field(&q, header.e);
            if ((size_t)(f.e - f.b) == want &&
                memcmp(f.b, o->label_name, want) == 0) {
                *label = k;
                return L2RW_OK;
            }
        }
        return l2rw__fail(L2RW_ERR_ARG, "%s: no column named '%s' in the "
                          "header", name, o->label_name);
    }
    int k = o->label_index < 0 ? nf + o->label_index : o->label_index;
    if (k < 0 || k >= nf)
        return l2rw__fail(L2RW_ERR_ARG, "%s: label column %d does not "
                          "exist (%d columns)", name, o->label_index, nf);
    *label = k;
    return L2RW_OK;
}

/* Fill example i from a data row. */
static l2rw_status parse_row(l2rw_dataset *d, int i, span line, int nf,
                             int label, long lineno, const char *name)
{
    int got = count_fields(line);
    if (got != nf)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s:%ld: %d fields, expected %d "
                          "(ragged row)", name, lineno, got, nf);
    float *x = d->x + (size_t)i * (size_t)(nf - 1);
    int j = 0;
    const char *q = line.b;
    for (int k = 0; k < nf; k++) {
        span f = next_field(&q, line.e);
        double v;
        int r = parse_num(f, &v);
        if (r != 0)
            return l2rw__fail(L2RW_ERR_FORMAT, "%s:%ld: field %d '%.*s' is "
                              "%s", name, lineno, k + 1,
                              (int)(f.e - f.b > 40 ? 40 : f.e - f.b), f.b,
                              r == -2 ? "not finite (NaN or Inf)"
                                      : f.b == f.e ? "empty"
                                                   : "not a number");
        if (k == label) {
            if (v != floor(v) || v < 0 || v >= L2RW__MAX_CLASSES)
                return l2rw__fail(L2RW_ERR_LABEL, "%s:%ld: label %g is not "
                                  "an integer in [0, %d)", name, lineno, v,
                                  L2RW__MAX_CLASSES);
            d->y[i] = (int32_t)v;
        } else {
            if (fabs(v) > 3.4e38)
                return l2rw__fail(L2RW_ERR_FORMAT, "%s:%ld: field %d is "
                                  "beyond float range", name, lineno, k + 1);
            x[j++] = (float)v;
        }
    }
    return L2RW_OK;
}

l2rw_status l2rw__csv_parse(l2rw_dataset *out, const char *buf, size_t len,
                            const char *name, const l2rw_csv_opts *opts)
{
    l2rw_csv_opts o = opts ? *opts : l2rw_csv_opts_default();
    const char *p = buf, *end = buf + len;
    memset(out, 0, sizeof *out);
    long lineno = 0, rows = 0;
    span first = {0, 0};
    int nf = 0;
    /* First pass: rows and fields per row. Every row must have as many
     * fields as the first, so the allocation below is bounded by the
     * file's size (no huge first row times many short ones). */
    while (p < end) {
        span l = next_line(&p, end);
        lineno++;
        if (blank(l)) continue;
        if (!first.b) {
            first = l;
            nf = count_fields(l);
        } else if (count_fields(l) != nf) {
            return l2rw__fail(L2RW_ERR_FORMAT, "%s:%ld: %d fields, expected "
                              "%d (ragged row)", name, lineno,
                              count_fields(l), nf);
        }
        rows++;
    }
    if (!first.b)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: no rows", name);
    if (nf == INT_MAX)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: too many fields", name);
    if (nf < 2)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: rows need a label and at "
                          "least one feature (found %d field)", name, nf);
    int has_header = o.header == 1 ||
                     (o.header < 0 && !row_is_numeric(first, nf));
    int label = 0;
    L2RW_TRY(find_label(first, nf, has_header, &o, name, &label));
    long n = rows - has_header;
    if (n <= 0)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: header but no data rows",
                          name);
    if (n > INT_MAX)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: too many rows", name);
    l2rw_dataset d;
    L2RW_TRY(l2rw_dataset_alloc(&d, (int)n, nf - 1, 1, 1, 0));
    l2rw_status s = L2RW_OK;
    int i = 0, skip = has_header;
    p = buf;
    lineno = 0;
    while (p < end && s == L2RW_OK) {
        span l = next_line(&p, end);
        lineno++;
        if (blank(l)) continue;
        if (skip) {
            skip = 0;
            continue;
        }
        s = parse_row(&d, i++, l, nf, label, lineno, name);
    }
    if (s == L2RW_OK) s = l2rw__check_labels(d.y, d.n, &o.classes, name);
    if (s != L2RW_OK) {
        l2rw_dataset_free(&d);
        return s;
    }
    d.classes = o.classes;
    memcpy(d.y_true, d.y, (size_t)d.n * sizeof(int32_t));
    *out = d;
    return L2RW_OK;
}

l2rw_status l2rw_load_csv(l2rw_dataset *out, const char *path,
                          const l2rw_csv_opts *opts)
{
    unsigned char *b;
    size_t len;
    memset(out, 0, sizeof *out);
    L2RW_TRY(l2rw__read_file(path, &b, &len));
    l2rw_status s = l2rw__csv_parse(out, (const char *)b, len, path, opts);
    free(b);
    return s;
}
