/* Label corruptions of the paper (UniformFlip, BackgroundFlip) and the
 * pair flip of later work. Only y changes; y_true keeps the truth, so
 * the changed examples are exactly those with y != y_true. */
#include "data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static l2rw_status parse_p(const char *v, const char *spec, double *p,
                           const char **rest)
{
    char *end;
    *p = strtod(v, &end);
    /* No errno test: an underflow (ERANGE, 0 or a denormal) is a number,
     * and an overflow (inf) fails the range test. */
    if (end == v || (*end && *end != ':') || !(*p >= 0 && *p <= 1))
        return l2rw__fail(L2RW_ERR_ARG, "noise '%s': probability '%.*s' is "
                          "not a number in [0, 1]", spec,
                          (int)strcspn(v, ":"), v);
    *rest = end;
    return L2RW_OK;
}

l2rw_status l2rw_noise_parse(l2rw_noise *out, const char *spec)
{
    static const struct {
        const char *name;
        l2rw_noise_kind kind;
    } kinds[] = {{"uniform:", L2RW_NOISE_UNIFORM},
                 {"background:", L2RW_NOISE_BACKGROUND},
                 {"pair:", L2RW_NOISE_PAIR}};
    memset(out, 0, sizeof *out);
    if (!spec || !*spec || !strcmp(spec, "none")) return L2RW_OK;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t l = strlen(kinds[i].name);
        if (strncmp(spec, kinds[i].name, l) != 0) continue;
        const char *rest = "";
        l2rw_noise nz = {kinds[i].kind, 0, 0};
        L2RW_TRY(parse_p(spec + l, spec, &nz.p, &rest));
        if (*rest == ':' && nz.kind == L2RW_NOISE_BACKGROUND) {
            const char *c = rest + 1;
            char *end;
            errno = 0;
            long v = strtol(c, &end, 10);
            if (!isdigit((unsigned char)*c) || *end || errno ||
                v >= L2RW__MAX_CLASSES)
                return l2rw__fail(L2RW_ERR_ARG, "noise '%s': background "
                                  "class '%s' is not a class number", spec,
                                  c);
            nz.background = (int)v;
        } else if (*rest) {
            return l2rw__fail(L2RW_ERR_ARG, "noise '%s': unexpected '%s'",
                              spec, rest);
        }
        *out = nz;
        return L2RW_OK;
    }
    return l2rw__fail(L2RW_ERR_ARG, "noise '%s': unknown kind (expected "
                      "none, uniform:P, background:P[:C] or pair:P)", spec);
}

void l2rw_noise_format(const l2rw_noise *nz, char *buf, size_t size)
{
    switch (nz->kind) {
    case L2RW_NOISE_UNIFORM: snprintf(buf, size, "uniform:%g", nz->p); break;
    case L2RW_NOISE_BACKGROUND:
        snprintf(buf, size, "background:%g:%d", nz->p, nz->background);
        break;
    case L2RW_NOISE_PAIR: snprintf(buf, size, "pair:%g", nz->p); break;
    default: snprintf(buf, size, "none"); break;
    }
}

double l2rw_noise_expected_rate(const l2rw_noise *nz, const long *count,
                                int classes)
{
    long n = 0;
    for (int k = 0; k < classes; k++) n += count[k];
    switch (nz->kind) {
    case L2RW_NOISE_UNIFORM:
        return classes > 0 ? nz->p * (1.0 - 1.0 / classes) : 0;
    case L2RW_NOISE_BACKGROUND:
        if (n == 0 || nz->background >= classes) return 0;
        return nz->p * (1.0 - (double)count[nz->background] / (double)n);
    case L2RW_NOISE_PAIR: return classes > 1 ? nz->p : 0;
    default: return 0;
    }
}

l2rw_status l2rw_noise_apply(l2rw_dataset *d, const l2rw_noise *nz,
                             uint64_t seed, uint8_t *hit)
{
    if (hit) memset(hit, 0, (size_t)d->n);
    if (nz->kind == L2RW_NOISE_NONE) return L2RW_OK;
    if (!(nz->p >= 0 && nz->p <= 1))
        return l2rw__fail(L2RW_ERR_ARG, "noise probability %g is not in "
                          "[0, 1]", nz->p);
    if (d->classes < 1)
        return l2rw__fail(L2RW_ERR_ARG, "noise: dataset has no classes");
    if (nz->kind == L2RW_NOISE_BACKGROUND &&
        (nz->background < 0 || nz->background >= d->classes))
        return l2rw__fail(L2RW_ERR_ARG, "noise: background class %d is not "
                          "one of the %d classes", nz->background,
                          d->classes);
    l2rw_rng r;
    l2rw_rng_seed(&r, seed);
    for (int i = 0; i < d->n; i++) {
        /* The coin is always tossed so example i's draw does not depend
         * on the labels before it. */
        int h = l2rw_rng_uniform(&r) < nz->p;
        uint64_t draw = l2rw_rng_next(&r);
        if (!h) continue;
        if (hit) hit[i] = 1;
        switch (nz->kind) {
        case L2RW_NOISE_UNIFORM:
            /* 64-bit draw mod K: bias below K / 2^64, negligible. */
            d->y[i] = (int32_t)(draw % (uint64_t)d->classes);
            break;
        case L2RW_NOISE_BACKGROUND: d->y[i] = nz->background; break;
        case L2RW_NOISE_PAIR:
            d->y[i] = (int32_t)((d->y_true[i] + 1) % d->classes);
            break;
        default: break;
        }
    }
    return L2RW_OK;
}
