/* CSV reader: one example per row, comma-separated numeric fields, one of
 * them the integer label; optional header row. Features become channels
 * (c = features, h = w = 1). Strict: empty, non-numeric or non-finite
 * fields and rows of another length are errors, not zeros. */
#include "data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fields up to this length are parsed from a copy on the stack. */
enum { CSV_FIELD_SMALL = 255, CSV_QUOTE_MAX = 40 };

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

/* What a field holds. Only NUM_TEXT makes a row a header: a row of
 * numbers with an empty or NaN field is bad data, not column names. */
typedef enum {
    NUM_OK,        /* a finite number (an underflow to 0 or a denormal
                      is one) */
    NUM_EMPTY,
    NUM_TEXT,      /* not a number */
    NUM_NONFINITE, /* nan, inf written as such */
    NUM_RANGE,     /* a number beyond double range (overflows to inf) */
    NUM_FLOAT_RANGE, /* a double beyond float range (features only) */
    NUM_NOMEM
} num_kind;

/* Parse a number filling the whole field, of any length: strtod needs a
 * NUL-terminated copy (the buffer is not terminated after the field). */
static num_kind parse_num(span f, double *v)
{
    char small[CSV_FIELD_SMALL + 1];
    size_t n = (size_t)(f.e - f.b);
    if (n == 0) return NUM_EMPTY;
    char *tmp = n <= CSV_FIELD_SMALL ? small : malloc(n + 1);
    if (!tmp) return NUM_NOMEM;
    memcpy(tmp, f.b, n);
    tmp[n] = 0;
    num_kind k = NUM_OK;
    char *end;
    errno = 0;
    *v = strtod(tmp, &end);
    if (strlen(tmp) != n || end != tmp + n) k = NUM_TEXT; /* or a NUL */
    else if (errno == ERANGE && isinf(*v)) k = NUM_RANGE;
    else if (!isfinite(*v)) k = NUM_NONFINITE;
    if (tmp != small) free(tmp);
    return k;
}

/* A row with a field that is text (not a number, not empty, not nan):
 * the header of auto-detection. */
static int row_has_text(span line, int nf)
{
    double v;
    const char *q = line.b;
    for (int k = 0; k < nf; k++)
        if (parse_num(next_field(&q, line.e), &v) == NUM_TEXT) return 1;
    return 0;
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

static const char *num_problem(num_kind k)
{
    switch (k) {
    case NUM_EMPTY: return "empty";
    case NUM_TEXT: return "not a number";
    case NUM_NONFINITE: return "not finite (NaN or Inf)";
    case NUM_RANGE: return "out of range (overflows a double)";
    case NUM_FLOAT_RANGE: return "out of float range (|x| > 3.4e38)";
    default: return "unreadable";
    }
}

/* The error for field k of a row (quoted, shortened when long). */
static l2rw_status field_error(span f, num_kind k, int col, long lineno,
                               const char *name)
{
    if (k == NUM_NOMEM)
        return l2rw__fail(L2RW_ERR_NOMEM, "%s:%ld: out of memory", name,
                          lineno);
    int n = (int)(f.e - f.b), shown = n > CSV_QUOTE_MAX ? CSV_QUOTE_MAX : n;
    return l2rw__fail(L2RW_ERR_FORMAT, "%s:%ld: column %d '%.*s%s' is %s",
                      name, lineno, col, shown, f.b,
                      n > shown ? "..." : "", num_problem(k));
}

/* A label: an integer in [0, limit) (limit: the class count when given,
 * else the most classes a reader infers). */
static l2rw_status check_label(double v, int limit, int i, long lineno,
                               const char *name)
{
    if (v != floor(v))
        return l2rw__fail(L2RW_ERR_LABEL, "%s:%ld: label %.10g of example "
                          "%d is not an integer", name, lineno, v, i);
    if (v < 0 || v >= limit)
        return l2rw__fail(L2RW_ERR_LABEL, "%s:%ld: label %.10g of example "
                          "%d is outside [0, %d)", name, lineno, v, i,
                          limit);
    return L2RW_OK;
}

/* Fill example i from a data row. */
static l2rw_status parse_row(l2rw_dataset *d, int i, span line, int nf,
                             int label, int limit, long lineno,
                             const char *name)
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
        num_kind r = parse_num(f, &v);
        if (r != NUM_OK) return field_error(f, r, k + 1, lineno, name);
        if (k == label) {
            L2RW_TRY(check_label(v, limit, i, lineno, name));
            d->y[i] = (int32_t)v;
        } else {
            if (fabs(v) > FLT_MAX)
                return field_error(f, NUM_FLOAT_RANGE, k + 1, lineno, name);
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
                     (o.header < 0 && row_has_text(first, nf));
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
    int limit = o.classes > 0 ? o.classes : L2RW__MAX_CLASSES;
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
        s = parse_row(&d, i++, l, nf, label, limit, lineno, name);
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
    /* CSV announces no size: the general limit is all there is. */
    L2RW_TRY(l2rw__read_file(path, L2RW__MAX_FILE, "a reader accepts", &b,
                             &len));
    l2rw_status s = l2rw__csv_parse(out, (const char *)b, len, path, opts);
    free(b);
    return s;
}
