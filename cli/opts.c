/* Option parsing for the l2rw subcommands (see opts.h). */
#include "opts.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return 2;
}

static int in_range(const opt_def *o, double v)
{
    return o->lo > o->hi || (v >= o->lo && v <= o->hi);
}

static void range_text(const opt_def *o, char *buf, size_t size)
{
    if (o->hi >= 1e300)
        snprintf(buf, size, ">= %g", o->lo);
    else
        snprintf(buf, size, "in [%g, %g]", o->lo, o->hi);
}

/* Stores text into o->dst; 0 or 2 with err filled. */
static int set_value(opt_def *o, const char *text, const char *prog,
                     char *err, size_t size)
{
    char *end = NULL, rng[64];
    range_text(o, rng, sizeof rng);
    if (o->type == OPT_STR) {
        if (!*text)
            return fail(err, size, "%s: --%s needs a non-empty value", prog,
                        o->name);
        *(const char **)o->dst = text;
        return 0;
    }
    errno = 0;
    if (o->type == OPT_FLOAT || o->type == OPT_DOUBLE) {
        double v = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(v))
            return fail(err, size, "%s: --%s: '%s' is not a number", prog,
                        o->name, text);
        if (!in_range(o, v))
            return fail(err, size, "%s: --%s: %s is out of range (must be "
                        "%s)", prog, o->name, text, rng);
        if (o->type == OPT_FLOAT) *(float *)o->dst = (float)v;
        else *(double *)o->dst = v;
        return 0;
    }
    if (o->type == OPT_U64) {
        if (text[0] == '-')
            return fail(err, size, "%s: --%s: '%s' is not a non-negative "
                        "integer", prog, o->name, text);
        unsigned long long v = strtoull(text, &end, 10);
        if (end == text || *end || errno)
            return fail(err, size, "%s: --%s: '%s' is not a non-negative "
                        "integer", prog, o->name, text);
        *(uint64_t *)o->dst = (uint64_t)v;
        return 0;
    }
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno)
        return fail(err, size, "%s: --%s: '%s' is not an integer", prog,
                    o->name, text);
    if (!in_range(o, (double)v))
        return fail(err, size, "%s: --%s: %s is out of range (must be %s)",
                    prog, o->name, text, rng);
    if (o->type == OPT_INT) {
        if (v > 2147483647L || v < -2147483647L - 1)
            return fail(err, size, "%s: --%s: %s is too large", prog,
                        o->name, text);
        *(int *)o->dst = (int)v;
    } else {
        *(long *)o->dst = v;
    }
    return 0;
}

static opt_def *find(opt_def *opts, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
            return &opts[i];
    return NULL;
}

int opts_parse(opt_def *opts, int n_opts, int argc, char **argv,
               const char *prog, const char *usage, FILE *out,
               const char **pos, int max_pos, int *n_pos, char *err,
               size_t err_size)
{
    int np = 0;
    err[0] = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            opts_help(opts, n_opts, usage, out);
            return 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (np >= max_pos)
                return fail(err, err_size, "%s: unexpected argument '%s' "
                            "(try --help)", prog, a);
            pos[np++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        opt_def *o = find(opts, n_opts, name, len);
        if (!o)
            return fail(err, err_size, "%s: unknown option '--%.*s' (try "
                        "--help)", prog, (int)len, name);
        if (o->seen)
            return fail(err, err_size, "%s: --%s given twice", prog, o->name);
        o->seen = 1;
        if (o->type == OPT_FLAG) {
            if (eq)
                return fail(err, err_size, "%s: --%s takes no value", prog,
                            o->name);
            *(int *)o->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc)
                return fail(err, err_size, "%s: --%s needs a value (%s)",
                            prog, o->name, o->metavar);
            val = argv[++i];
        }
        int rc = set_value(o, val, prog, err, err_size);
        if (rc) return rc;
    }
    if (n_pos) *n_pos = np;
    return 0;
}

int opts_set_default(opt_def *opts, int n_opts, const char *name,
                     const char *text, const char *prog, char *err,
                     size_t err_size)
{
    opt_def *o = find(opts, n_opts, name, strlen(name));
    if (!o || o->seen) return 0;
    if (o->type == OPT_FLAG) {
        *(int *)o->dst = strcmp(text, "0") != 0;
        return 0;
    }
    return set_value(o, text, prog, err, err_size);
}

static void default_text(const opt_def *o, char *buf, size_t size)
{
    switch (o->type) {
    case OPT_STR: {
        const char *s = *(const char *const *)o->dst;
        snprintf(buf, size, "%s", s ? s : "none");
        break;
    }
    case OPT_INT: snprintf(buf, size, "%d", *(const int *)o->dst); break;
    case OPT_LONG: snprintf(buf, size, "%ld", *(const long *)o->dst); break;
    case OPT_U64:
        snprintf(buf, size, "%" PRIu64, *(const uint64_t *)o->dst);
        break;
    case OPT_FLOAT:
        snprintf(buf, size, "%g", (double)*(const float *)o->dst);
        break;
    case OPT_DOUBLE: snprintf(buf, size, "%g", *(const double *)o->dst); break;
    case OPT_FLAG: snprintf(buf, size, "off"); break;
    }
}

void opts_help(const opt_def *opts, int n_opts, const char *usage, FILE *out)
{
    fprintf(out, "%s\n\noptions:\n", usage);
    for (int i = 0; i < n_opts; i++) {
        char left[64], def[256];
        const opt_def *o = &opts[i];
        if (o->type == OPT_FLAG)
            snprintf(left, sizeof left, "--%s", o->name);
        else
            snprintf(left, sizeof left, "--%s %s", o->name, o->metavar);
        default_text(o, def, sizeof def);
        if (strstr(o->help, "(required)"))
            fprintf(out, "  %-26s %s\n", left, o->help);
        else
            fprintf(out, "  %-26s %s (default: %s)\n", left, o->help, def);
    }
    fprintf(out, "  %-26s %s\n", "--help", "show this help");
}

int opts_parse_longs(const char *s, long *out, int max, int increasing,
                     char *err, size_t err_size)
{
    int n = 0;
    const char *p = s;
    if (!*s) {
        snprintf(err, err_size, "empty list");
        return -1;
    }
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || (*end && *end != ',') || v < 0) {
            snprintf(err, err_size, "'%s' is not a list of non-negative "
                     "integers", s);
            return -1;
        }
        if (n >= max) {
            snprintf(err, err_size, "more than %d values in '%s'", max, s);
            return -1;
        }
        if (increasing && n > 0 && v <= out[n - 1]) {
            snprintf(err, err_size, "values in '%s' must increase", s);
            return -1;
        }
        out[n++] = v;
        if (!*end) break;
        p = end + 1;
    }
    return n;
}

void opts_join_argv(int argc, char **argv, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0) return;
    buf[0] = 0;
    for (int i = 0; i < argc && used + 1 < size; i++) {
        int quote = strpbrk(argv[i], " \t;\"'") != NULL;
        int k = snprintf(buf + used, size - used, "%s%s%s%s", i ? " " : "",
                         quote ? "'" : "", argv[i], quote ? "'" : "");
        if (k < 0) break;
        used += (size_t)k;
        if (used >= size) {
            buf[size - 1] = 0;
            break;
        }
    }
}

int opts_usage_error(const char *msg)
{
    fprintf(stderr, "%s\n", msg);
    return 2;
}
