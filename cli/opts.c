/* Option parsing for the l2rw subcommands (see opts.h). */
#include "opts.h"

#include "l2rw.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
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

/* Longer values are shown abbreviated in messages, so that a message
 * stays one readable line whatever was typed. */
enum { SHOWN_MAX = 40, SHOWN_HEAD = 24 };

static const char *shown(const char *text, char *buf, size_t size)
{
    size_t n = strlen(text);
    if (n <= SHOWN_MAX) return text;
    snprintf(buf, size, "%.*s... (%zu characters)", SHOWN_HEAD, text, n);
    return buf;
}

/* The limits of option o as stored: its own [lo, hi] (none when
 * lo > hi) within what its type can hold. */
static void limits(const opt_def *o, double *lo, double *hi)
{
    double tlo = -HUGE_VAL, thi = HUGE_VAL;
    if (o->type == OPT_INT) {
        tlo = INT_MIN;
        thi = INT_MAX;
    } else if (o->type == OPT_LONG) {
        tlo = (double)LONG_MIN;
        thi = (double)LONG_MAX;
    } else if (o->type == OPT_FLOAT) {
        tlo = -FLT_MAX;
        thi = FLT_MAX;
    }
    *lo = o->lo > o->hi ? tlo : fmax(o->lo, tlo);
    *hi = o->lo > o->hi ? thi : fmin(o->hi, thi);
}

/* "in [1, 9223372036854775807]", ">= 0", "in [1e-12, 1e+06]". Integers
 * print in full: a limit of "9.22337e+18" would not say which value is
 * the largest. */
static void range_text(const opt_def *o, char *buf, size_t size)
{
    double lo, hi;
    limits(o, &lo, &hi);
    if (o->type == OPT_INT || o->type == OPT_LONG)
        snprintf(buf, size, "in [%ld, %ld]",
                 lo <= (double)LONG_MIN ? LONG_MIN : (long)lo,
                 hi >= (double)LONG_MAX ? LONG_MAX : (long)hi);
    else if (hi >= 1e300)
        snprintf(buf, size, ">= %g", lo);
    else
        snprintf(buf, size, "in [%g, %g]", lo, hi);
}

/* The range messages: "out of range" when the number does not fit its
 * type at all (strtod/strtol overflow), "too small"/"too large" when it
 * is a number outside the option's limits. */
static int range_fail(const opt_def *o, const char *text, const char *what,
                      const char *prog, char *err, size_t size)
{
    char rng[96], sb[96];
    range_text(o, rng, sizeof rng);
    return fail(err, size, "%s: --%s: %s is %s (must be %s)", prog, o->name,
                shown(text, sb, sizeof sb), what, rng);
}

static int check_limits(const opt_def *o, const char *text, double v,
                        const char *prog, char *err, size_t size)
{
    double lo, hi;
    limits(o, &lo, &hi);
    if (v < lo) return range_fail(o, text, "too small", prog, err, size);
    if (v > hi) return range_fail(o, text, "too large", prog, err, size);
    return 0;
}

/* Floats and doubles: anything strtod reads completely is a number. An
 * underflow (ERANGE with a tiny result) is still that tiny number or 0,
 * and then meets the option's limits like any other; an overflow or
 * "inf" is out of range; "nan" is not a number. A nonzero value that
 * would be stored as 0 in a float is refused: 0 often means "default"
 * (--finetune-lr), which the user did not ask for. */
static int set_real(opt_def *o, const char *text, const char *prog,
                    char *err, size_t size)
{
    char *end = NULL, sb[96];
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || isnan(v))
        return fail(err, size, "%s: --%s: '%s' is not a number", prog,
                    o->name, shown(text, sb, sizeof sb));
    if (isinf(v))
        return range_fail(o, text, "out of range", prog, err, size);
    int rc = check_limits(o, text, v, prog, err, size);
    if (rc) return rc;
    if (o->type == OPT_FLOAT && v != 0 && (float)v == 0)
        return fail(err, size, "%s: --%s: %s is too small: it would be 0 "
                    "(give 0, or at least %g)", prog, o->name,
                    shown(text, sb, sizeof sb), (double)FLT_TRUE_MIN);
    if (o->type == OPT_FLOAT) *(float *)o->dst = (float)v;
    else *(double *)o->dst = v;
    return 0;
}

static int set_u64(opt_def *o, const char *text, const char *prog,
                   char *err, size_t size)
{
    char *end = NULL, sb[96];
    const char *p = text;
    while (*p == ' ' || *p == '\t') p++;
    /* strtoull would turn "-1" into 2^64 - 1 */
    if (*p == '-')
        return fail(err, size, "%s: --%s: '%s' is not a non-negative "
                    "integer", prog, o->name, shown(text, sb, sizeof sb));
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end)
        return fail(err, size, "%s: --%s: '%s' is not a non-negative "
                    "integer", prog, o->name, shown(text, sb, sizeof sb));
    if (errno == ERANGE)
        return fail(err, size, "%s: --%s: %s is out of range (must be in "
                    "[0, %" PRIu64 "])", prog, o->name,
                    shown(text, sb, sizeof sb), UINT64_MAX);
    *(uint64_t *)o->dst = (uint64_t)v;
    return 0;
}

static int set_integer(opt_def *o, const char *text, const char *prog,
                       char *err, size_t size)
{
    char *end = NULL, sb[96];
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end)
        return fail(err, size, "%s: --%s: '%s' is not an integer", prog,
                    o->name, shown(text, sb, sizeof sb));
    if (errno == ERANGE)
        return range_fail(o, text, "out of range", prog, err, size);
    int rc = check_limits(o, text, (double)v, prog, err, size);
    if (rc) return rc;
    if (o->type == OPT_INT) *(int *)o->dst = (int)v;
    else *(long *)o->dst = v;
    return 0;
}

/* Stores text into o->dst; 0 or 2 with err filled. */
static int set_value(opt_def *o, const char *text, const char *prog,
                     char *err, size_t size)
{
    switch (o->type) {
    case OPT_STR:
        if (!*text)
            return fail(err, size, "%s: --%s needs a non-empty value", prog,
                        o->name);
        *(const char **)o->dst = text;
        return 0;
    case OPT_FLOAT:
    case OPT_DOUBLE: return set_real(o, text, prog, err, size);
    case OPT_U64: return set_u64(o, text, prog, err, size);
    case OPT_INT:
    case OPT_LONG: return set_integer(o, text, prog, err, size);
    case OPT_FLAG: break;
    }
    return fail(err, size, "%s: --%s takes no value", prog, o->name);
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

int opts_device(const char *cmd, const char *name, int cpu_only,
                l2rw_device *out)
{
    l2rw_device d;
    if (l2rw_device_parse(name, &d) != L2RW_OK ||
        l2rw_device_available(&d, NULL, 0) != L2RW_OK) {
        fprintf(stderr, "%s: --device %s: %s\n", cmd, name,
                l2rw_last_error());
        return 2;
    }
    if (cpu_only && d.kind != L2RW_DEVICE_CPU) {
        fprintf(stderr, "%s: --device %s: this command runs on the CPU "
                "only for now (l2rw train runs on the device)\n", cmd,
                name);
        return 2;
    }
    if (out) *out = d;
    return 0;
}

int opts_tf32(const char *cmd, const opt_def *opts, int n_opts, int on,
              const l2rw_device *dev)
{
    const opt_def *o = find((opt_def *)opts, n_opts, "tf32", 4);
    if (on && o && o->seen && dev->kind != L2RW_DEVICE_CUDA) {
        fprintf(stderr, "%s: --tf32 is a mode of CUDA's matrix products; "
                "give --device cuda[:N]\n", cmd);
        return 2;
    }
    l2rw_set_tf32(on);
    return 0;
}

int opts_data_place(const char *cmd, const char *text, l2rw_data_place *out)
{
    if (l2rw_data_place_parse(text, out) == L2RW_OK) return 0;
    char err[OPTS_ERR_MAX];
    snprintf(err, sizeof err, "%s: --data-place: %s", cmd,
             l2rw_last_error());
    return opts_usage_error(err);
}
