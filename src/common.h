/* Internal helpers shared by every module of the library: error detail,
 * a seeded counter-based RNG, checked allocation. Not part of the API. */
#ifndef L2RW_COMMON_H
#define L2RW_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "l2rw.h"

/* Record a printf-style detail for l2rw_last_error() and return s. */
l2rw_status l2rw__fail(l2rw_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void l2rw__clear_error(void);

/* Propagate a failing status. */
#define L2RW_TRY(expr)                                                       \
    do {                                                                     \
        l2rw_status l2rw__s = (expr);                                        \
        if (l2rw__s != L2RW_OK) return l2rw__s;                              \
    } while (0)

/* The calling thread's thread count (l2rw_set_threads) and OpenMP's,
 * saved and restored around a call that changes them for its own use. */
typedef struct {
    int l2rw, omp;
} l2rw__threads_saved;
l2rw__threads_saved l2rw__threads_save(void);
void l2rw__threads_restore(l2rw__threads_saved s);

/* calloc of n*size bytes with overflow check; NULL on failure. */
void *l2rw__calloc(size_t n, size_t size);
/* 64-byte aligned, zeroed, overflow-checked; free with l2rw__afree. */
void *l2rw__aalloc(size_t n, size_t size);
void l2rw__afree(void *p);

/* xoshiro256** seeded by splitmix64: a fixed seed gives a fixed stream. */
typedef struct {
    uint64_t s[4];
} l2rw_rng;

void l2rw_rng_seed(l2rw_rng *r, uint64_t seed);
uint64_t l2rw_rng_next(l2rw_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double l2rw_rng_uniform(l2rw_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
uint64_t l2rw_rng_below(l2rw_rng *r, uint64_t n);
/* Standard normal (Box-Muller, no cached second value so the stream
 * position depends only on the number of calls). */
double l2rw_rng_normal(l2rw_rng *r);
/* Fisher-Yates shuffle of a[0..n). */
void l2rw_rng_shuffle_i32(l2rw_rng *r, int32_t *a, size_t n);

/* Stateless mixing: a well-distributed 64-bit value of (a, b), used for
 * counter-based draws (dropout masks) that must not depend on thread
 * scheduling. */
uint64_t l2rw_hash2(uint64_t a, uint64_t b);

/* CRC-32 (IEEE) of a buffer, continuing from crc (start with 0). */
uint32_t l2rw_crc32(uint32_t crc, const void *buf, size_t len);

/* One CSV field to fp, quoted (RFC 4180: quotes doubled) only when it
 * must be, so that plain names stay readable; NULL is an empty field. */
void l2rw__csv_field(FILE *fp, const char *v);

/* Write a file atomically: data goes to "path.tmp.PID", is flushed and
 * renamed over path. The writer callback writes through fp and returns a
 * status; on any failure the temporary file is removed. */
#include <stdio.h>
typedef l2rw_status (*l2rw_writer_fn)(FILE *fp, void *ctx);
l2rw_status l2rw_write_atomic(const char *path, l2rw_writer_fn fn, void *ctx);

#endif
