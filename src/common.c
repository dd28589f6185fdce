/* Error detail, RNG, allocation and atomic file writing shared by the
 * library. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static _Thread_local char last_error[512];

const char *l2rw_strerror(l2rw_status s)
{
    switch (s) {
    case L2RW_OK: return "success";
    case L2RW_ERR_NOMEM: return "out of memory";
    case L2RW_ERR_ARG: return "invalid argument";
    case L2RW_ERR_SHAPE: return "shape mismatch";
    case L2RW_ERR_IO: return "input/output error";
    case L2RW_ERR_FORMAT: return "corrupt or unrecognised file";
    case L2RW_ERR_LABEL: return "label out of range";
    case L2RW_ERR_NUMERIC: return "non-finite value";
    case L2RW_ERR_ARCH: return "architecture mismatch";
    case L2RW_ERR_UNSUPPORTED: return "unsupported";
    case L2RW_ERR_DIVERGED: return "run stopped";
    }
    return "unknown status";
}

const char *l2rw_last_error(void) { return last_error; }

void l2rw__clear_error(void) { last_error[0] = '\0'; }

l2rw_status l2rw__fail(l2rw_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

/* The thread count belongs to the calling thread, like OpenMP's own
 * nthreads setting: two threads that each drive a net use their own
 * counts without racing, and l2rw_train_run gives the caller's back.
 * 0: never set on this thread (all cores, or OMP_NUM_THREADS). Kernels
 * read it on the thread that calls them, never from inside a parallel
 * region. */
static _Thread_local int n_threads;

void l2rw_set_threads(int threads)
{
#ifdef _OPENMP
    n_threads = threads > 0 ? threads : omp_get_num_procs();
    omp_set_num_threads(n_threads);
#else
    n_threads = 1;
    (void)threads;
#endif
}

int l2rw_get_threads(void)
{
#ifdef _OPENMP
    return n_threads > 0 ? n_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

l2rw__threads_saved l2rw__threads_save(void)
{
    l2rw__threads_saved s = {n_threads, 1};
#ifdef _OPENMP
    s.omp = omp_get_max_threads();
#endif
    return s;
}

void l2rw__threads_restore(l2rw__threads_saved s)
{
    n_threads = s.l2rw;
#ifdef _OPENMP
    omp_set_num_threads(s.omp);
#endif
}

void *l2rw__calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0) return calloc(1, 1);
    if (n > SIZE_MAX / size) return NULL;
    return calloc(n, size);
}

void *l2rw__aalloc(size_t n, size_t size)
{
    if (size != 0 && n > (SIZE_MAX - 64) / size) return NULL;
    size_t bytes = n * size;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    void *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void l2rw__afree(void *p) { free(p); }

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void l2rw_rng_seed(l2rw_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t l2rw_rng_next(l2rw_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double l2rw_rng_uniform(l2rw_rng *r)
{
    return (double)(l2rw_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t l2rw_rng_below(l2rw_rng *r, uint64_t n)
{
    /* Reject the top partial range so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = l2rw_rng_next(r);
    while (x >= limit);
    return x % n;
}

double l2rw_rng_normal(l2rw_rng *r)
{
    double u1 = 1.0 - l2rw_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = l2rw_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void l2rw_rng_shuffle_i32(l2rw_rng *r, int32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)l2rw_rng_below(r, i);
        int32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

uint64_t l2rw_hash2(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b * 0xD6E8FEB86659FD93ull);
    uint64_t h = splitmix64(&x);
    return h ^ splitmix64(&x);
}

uint32_t l2rw_crc32(uint32_t crc, const void *buf, size_t len)
{
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        /* Idempotent fill: racing threads write the same values. */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *p = buf;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

l2rw_status l2rw_write_atomic(const char *path, l2rw_writer_fn fn, void *ctx)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        l2rw_status s = l2rw__fail(L2RW_ERR_IO, "%s: cannot write: %s", path,
                                   strerror(errno));
        free(tmp);
        return s;
    }
    l2rw_status s = fn(fp, ctx);
    if (s == L2RW_OK && (fflush(fp) != 0 || ferror(fp)))
        s = l2rw__fail(L2RW_ERR_IO, "%s: write failed: %s", path,
                       strerror(errno));
    if (s == L2RW_OK && fsync(fileno(fp)) != 0)
        s = l2rw__fail(L2RW_ERR_IO, "%s: fsync failed: %s", path,
                       strerror(errno));
    if (fclose(fp) != 0 && s == L2RW_OK)
        s = l2rw__fail(L2RW_ERR_IO, "%s: close failed: %s", path,
                       strerror(errno));
    if (s == L2RW_OK && rename(tmp, path) != 0)
        s = l2rw__fail(L2RW_ERR_IO, "%s: rename failed: %s", path,
                       strerror(errno));
    if (s != L2RW_OK) remove(tmp);
    free(tmp);
    return s;
}

void l2rw__csv_field(FILE *fp, const char *v)
{
    if (!v) return;
    if (!strpbrk(v, ",\"\r\n")) {
        fputs(v, fp);
        return;
    }
    fputc('"', fp);
    for (; *v; v++) {
        if (*v == '"') fputc('"', fp);
        fputc(*v, fp);
    }
    fputc('"', fp);
}
