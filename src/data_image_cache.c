/* The cache of decoded image sets: decoding a large folder takes
 * minutes, reading back its pixels a second. One file per part (the
 * training or test folder or list) with the pixels of every decoded
 * file and why the others were skipped:
 *
 *   "L2RWIMG\n"  magic
 *   u32          format version (CACHE_VERSION)
 *   u64 u64      content key: format version, part, size=, channels
 *                requested, the source's path, and every file's path,
 *                size, mtime (ns) and label
 *   i32          n files, c, h, w, kept (files decoded)
 *   u8 [n]       1 decoded, 0 skipped
 *   str [n-kept] why each skipped file was skipped
 *   u64, bytes   kept * c * h * w pixels, planar, in file order
 *   u32          CRC-32 of every byte before it
 *
 * It is read only when every field checks out and the key matches; a
 * stale, truncated or corrupt cache is ignored and rewritten, never
 * trusted. Its name depends on the source and the pixel options only
 * (.l2rw-cache-<16 hex digits>.bin), so a changed source overwrites its
 * own stale cache instead of piling up new ones. It lives next to the
 * data (in the folder; next to the list file), else, when that folder is
 * not writable, in $XDG_CACHE_HOME/l2rw or ~/.cache/l2rw. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "data_image.h"

#include "binio.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    CACHE_VERSION = 1,
    CACHE_PATH = 4096,
    MAX_SIDE = 1 << 16,
    MAX_REASON = 4096
};

static const char cache_magic[L2RW_MAGIC_LEN] = {'L', '2', 'R', 'W',
                                                 'I', 'M', 'G', '\n'};

/* 128 bits, so that two sources colliding is not a practical worry. */
typedef struct {
    uint64_t a, b;
} key128;

static void mix(key128 *k, uint64_t v)
{
    k->a = l2rw_hash2(k->a, v);
    k->b = l2rw_hash2(k->b ^ 0x9e3779b97f4a7c15ull, ~v);
}

static void mix_str(key128 *k, const char *s)
{
    size_t n = strlen(s);
    mix(k, n);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = 0;
        for (size_t j = i; j < n && j < i + 8; j++)
            v |= (uint64_t)(unsigned char)s[j] << (8 * (j - i));
        mix(k, v);
    }
}

/* The source and what decides its pixels: the cache's name. */
static key128 name_key(const l2rw__listing *ls, l2rw__part part,
                       const l2rw__image_opts *o, int channels)
{
    key128 k = {1, 2};
    char *abs = realpath(ls->where, NULL);
    mix(&k, CACHE_VERSION);
    mix(&k, (uint64_t)part);
    mix(&k, (uint64_t)o->h);
    mix(&k, (uint64_t)o->w);
    mix(&k, (uint64_t)channels);
    mix_str(&k, abs ? abs : ls->where);
    free(abs);
    return k;
}

/* ... and every file: the content key. */
static key128 content_key(const l2rw__listing *ls, l2rw__part part,
                          const l2rw__image_opts *o, int channels)
{
    key128 k = name_key(ls, part, o, channels);
    mix(&k, (uint64_t)ls->n);
    for (int i = 0; i < ls->n; i++) {
        mix_str(&k, ls->path[i]);
        mix(&k, (uint64_t)ls->size[i]);
        mix(&k, (uint64_t)ls->mtime_ns[i]);
        mix(&k, (uint64_t)(uint32_t)ls->label[i]);
    }
    return k;
}

/* Candidate i (0: next to the data, 1: the user's cache folder) for the
 * cache's path; 0 when there is none. mkdir: create the user's folder. */
static int cache_path(const l2rw__listing *ls, const key128 *name, int i,
                      int mkdirs, char *out)
{
    char file[64];
    snprintf(file, sizeof file, ".l2rw-cache-%016llx.bin",
             (unsigned long long)(name->a ^ name->b));
    if (i == 0) {
        const char *slash = ls->is_list ? strrchr(ls->where, '/') : NULL;
        int dl = ls->is_list ? (slash ? (int)(slash - ls->where) : 1)
                             : (int)strlen(ls->where);
        const char *dir = ls->is_list && !slash ? "." : ls->where;
        return snprintf(out, CACHE_PATH, "%.*s/%s", dl, dir, file) <
               CACHE_PATH;
    }
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char base[CACHE_PATH];
    if (xdg && *xdg) snprintf(base, sizeof base, "%s", xdg);
    else if (home && *home) snprintf(base, sizeof base, "%s/.cache", home);
    else return 0;
    if (mkdirs) mkdir(base, 0700); /* EEXIST and the like: fopen says */
    int n = snprintf(out, CACHE_PATH, "%s/l2rw", base);
    if (mkdirs && n < CACHE_PATH) mkdir(out, 0700);
    return n < CACHE_PATH &&
           snprintf(out, CACHE_PATH, "%s/l2rw/%s", base, file + 1) <
               CACHE_PATH;
}

/* -------------------------------------------------------------- read */

static l2rw_status read_i32_in(l2rw_breader *r, int lo, int hi, int *out,
                               const char *what)
{
    int32_t v;
    L2RW_TRY(l2rw__br_i32(r, &v, what));
    if (v < lo || v > hi)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: %s %d out of range",
                          r->path, what, (int)v);
    *out = v;
    return L2RW_OK;
}

/* Header and shape: the key and every count must match what the
 * listing and the options expect. */
static l2rw_status read_head(l2rw_breader *r, const key128 *key,
                             const l2rw__listing *ls,
                             const l2rw__image_opts *o, int channels,
                             l2rw__decoded *d)
{
    uint32_t version;
    uint64_t a, b;
    L2RW_TRY(l2rw__br_u32(r, &version, "version"));
    L2RW_TRY(l2rw__br_u64(r, &a, "key"));
    L2RW_TRY(l2rw__br_u64(r, &b, "key"));
    if (version != CACHE_VERSION || a != key->a || b != key->b)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: stale", r->path);
    L2RW_TRY(read_i32_in(r, ls->n, ls->n, &d->n, "file count"));
    L2RW_TRY(read_i32_in(r, 1, 3, &d->c, "channels"));
    L2RW_TRY(read_i32_in(r, 1, MAX_SIDE, &d->h, "height"));
    L2RW_TRY(read_i32_in(r, 1, MAX_SIDE, &d->w, "width"));
    L2RW_TRY(read_i32_in(r, 0, ls->n, &d->kept, "kept"));
    if (d->c == 2 || (channels && d->c != channels) ||
        (o->h && (d->h != o->h || d->w != o->w)))
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: shape", r->path);
    return L2RW_OK;
}

static l2rw_status read_body(l2rw_breader *r, l2rw__decoded *d)
{
    d->ok = l2rw__calloc((size_t)d->n, 1);
    d->why = l2rw__calloc((size_t)d->n, sizeof *d->why);
    if (!d->ok || !d->why)
        return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", r->path);
    L2RW_TRY(l2rw__br_bytes(r, d->ok, (size_t)d->n, "flags"));
    int kept = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->ok[i] > 1)
            return l2rw__fail(L2RW_ERR_FORMAT, "%s: flag", r->path);
        kept += d->ok[i];
    }
    if (kept != d->kept)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: kept", r->path);
    char reason[MAX_REASON];
    for (int i = 0; i < d->n; i++) {
        if (d->ok[i]) continue;
        L2RW_TRY(l2rw__br_str(r, reason, sizeof reason, "reason"));
        if (!(d->why[i] = strdup(reason)))
            return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", r->path);
    }
    uint64_t bytes;
    const uint64_t want = (uint64_t)d->kept * d->c * d->h * d->w;
    L2RW_TRY(l2rw__br_u64(r, &bytes, "pixel count"));
    if (bytes != want || want > SIZE_MAX)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: pixel count", r->path);
    L2RW_TRY(l2rw__br_need(r, bytes, "pixels"));
    if (!(d->px = malloc((size_t)bytes + 1)))
        return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", r->path);
    L2RW_TRY(l2rw__br_bytes(r, d->px, (size_t)bytes, "pixels"));
    return l2rw__br_end(r);
}

static int load_from(const char *path, const key128 *key,
                     const l2rw__listing *ls, const l2rw__image_opts *o,
                     int channels, l2rw__decoded *d)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    l2rw_breader r;
    memset(d, 0, sizeof *d);
    if (l2rw__br_open(&r, path, cache_magic, "image cache") != L2RW_OK)
        return 0;
    l2rw_status s = read_head(&r, key, ls, o, channels, d);
    if (s == L2RW_OK) s = read_body(&r, d);
    l2rw__br_close(&r);
    if (s == L2RW_OK) return 1;
    l2rw__decoded_free(d);
    return 0;
}

int l2rw__cache_load(const l2rw__listing *ls, l2rw__part part,
                     const l2rw__image_opts *o, int channels,
                     l2rw__decoded *dec)
{
    const key128 name = name_key(ls, part, o, channels);
    const key128 key = content_key(ls, part, o, channels);
    char path[CACHE_PATH];
    memset(dec, 0, sizeof *dec);
    for (int i = 0; i < 2; i++)
        if (cache_path(ls, &name, i, 0, path) &&
            load_from(path, &key, ls, o, channels, dec))
            return 1;
    l2rw__clear_error(); /* a missing or stale cache is no failure */
    return 0;
}

/* ------------------------------------------------------------- write */

typedef struct {
    const l2rw__decoded *d;
    key128 key;
    const char *path;
} save_ctx;

static l2rw_status write_cache(FILE *fp, void *vctx)
{
    const save_ctx *c = vctx;
    const l2rw__decoded *d = c->d;
    l2rw_bwriter w;
    L2RW_TRY(l2rw__bw_begin(&w, fp, c->path, cache_magic));
    L2RW_TRY(l2rw__bw_u32(&w, CACHE_VERSION));
    L2RW_TRY(l2rw__bw_u64(&w, c->key.a));
    L2RW_TRY(l2rw__bw_u64(&w, c->key.b));
    const int32_t head[5] = {d->n, d->c, d->h, d->w, d->kept};
    for (int i = 0; i < 5; i++) L2RW_TRY(l2rw__bw_i32(&w, head[i]));
    L2RW_TRY(l2rw__bw_bytes(&w, d->ok, (size_t)d->n));
    for (int i = 0; i < d->n; i++) {
        if (d->ok[i]) continue;
        char reason[MAX_REASON]; /* a longer one is cut, not refused */
        snprintf(reason, sizeof reason, "%s", d->why[i] ? d->why[i] : "");
        L2RW_TRY(l2rw__bw_str(&w, reason));
    }
    const size_t bytes = (size_t)d->kept * d->c * d->h * d->w;
    L2RW_TRY(l2rw__bw_u64(&w, bytes));
    L2RW_TRY(l2rw__bw_bytes(&w, d->px, bytes));
    return l2rw__bw_end(&w);
}

l2rw_status l2rw__cache_save(const l2rw__listing *ls, l2rw__part part,
                             const l2rw__image_opts *o, int channels,
                             const l2rw__decoded *dec)
{
    const key128 name = name_key(ls, part, o, channels);
    save_ctx c = {dec, content_key(ls, part, o, channels), NULL};
    char path[CACHE_PATH], first[512] = "";
    for (int i = 0; i < 2; i++) {
        if (!cache_path(ls, &name, i, 1, path)) continue;
        c.path = path;
        if (l2rw_write_atomic(path, write_cache, &c) == L2RW_OK)
            return L2RW_OK;
        if (!first[0]) snprintf(first, sizeof first, "%s", l2rw_last_error());
    }
    return l2rw__fail(L2RW_ERR_IO, "image cache of %s not written: %s",
                      ls->where, first[0] ? first : "no place for it");
}
