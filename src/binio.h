/* Checked binary I/O for the library's file formats (model files,
 * checkpoints). Implemented in model_io.c.
 *
 * Every file is: 8-byte magic, fields written through an l2rw_bwriter
 * (little-endian integers and floats), then the CRC-32 of everything
 * before it. Readers verify magic and checksum when the file is opened,
 * then every read checks that the bytes exist; a field that claims more
 * bytes than the file has is refused before anything is allocated.
 *
 * Errors name the file: a file that cannot be opened is L2RW_ERR_IO;
 * bad magic, bad checksum, short read, trailing bytes or an absurd size
 * are L2RW_ERR_FORMAT. */
#ifndef L2RW_BINIO_H
#define L2RW_BINIO_H

#include <stdio.h>

#include "common.h"

enum { L2RW_MAGIC_LEN = 8 };

/* -------------------------------------------------------------- writer */

typedef struct {
    FILE *fp;
    const char *path; /* for messages */
    uint32_t crc;     /* of every byte written so far */
} l2rw_bwriter;

/* Starts the file: writes the magic (L2RW_MAGIC_LEN bytes). */
l2rw_status l2rw__bw_begin(l2rw_bwriter *w, FILE *fp, const char *path,
                           const char magic[L2RW_MAGIC_LEN]);
l2rw_status l2rw__bw_bytes(l2rw_bwriter *w, const void *buf, size_t len);
l2rw_status l2rw__bw_u32(l2rw_bwriter *w, uint32_t v);
l2rw_status l2rw__bw_i32(l2rw_bwriter *w, int32_t v);
l2rw_status l2rw__bw_u64(l2rw_bwriter *w, uint64_t v);
l2rw_status l2rw__bw_i64(l2rw_bwriter *w, int64_t v);
/* A string of at most 65535 bytes: u32 length, then the bytes. */
l2rw_status l2rw__bw_str(l2rw_bwriter *w, const char *s);
/* n float32 values, little-endian. */
l2rw_status l2rw__write_floats(l2rw_bwriter *w, const float *x, size_t n);
/* n int32 values, little-endian. */
l2rw_status l2rw__write_i32s(l2rw_bwriter *w, const int32_t *x, size_t n);
/* Ends the file: appends the CRC-32. */
l2rw_status l2rw__bw_end(l2rw_bwriter *w);

/* -------------------------------------------------------------- reader */

typedef struct {
    FILE *fp;
    char path[512];  /* for messages (truncated if longer) */
    uint64_t size;   /* payload bytes: the file less its final CRC */
    uint64_t pos;    /* bytes consumed, magic included */
    uint32_t crc;
} l2rw_breader;

/* Opens path, checks the magic (what names the kind of file in
 * messages: "model file", "checkpoint") and the CRC of the whole file.
 * On failure nothing stays open. */
l2rw_status l2rw__br_open(l2rw_breader *r, const char *path,
                          const char magic[L2RW_MAGIC_LEN], const char *what);
void l2rw__br_close(l2rw_breader *r);
/* Bytes left before the final CRC. */
uint64_t l2rw__br_left(const l2rw_breader *r);
/* L2RW_ERR_FORMAT unless `bytes` more bytes remain (call before
 * allocating for a size read from the file). */
l2rw_status l2rw__br_need(l2rw_breader *r, uint64_t bytes, const char *what);
l2rw_status l2rw__br_bytes(l2rw_breader *r, void *buf, size_t len,
                           const char *what);
l2rw_status l2rw__br_u32(l2rw_breader *r, uint32_t *v, const char *what);
l2rw_status l2rw__br_i32(l2rw_breader *r, int32_t *v, const char *what);
l2rw_status l2rw__br_u64(l2rw_breader *r, uint64_t *v, const char *what);
l2rw_status l2rw__br_i64(l2rw_breader *r, int64_t *v, const char *what);
/* A string written by l2rw__bw_str into buf[cap] (NUL-terminated);
 * longer than cap-1 bytes or containing NUL is L2RW_ERR_FORMAT. */
l2rw_status l2rw__br_str(l2rw_breader *r, char *buf, size_t cap,
                         const char *what);
l2rw_status l2rw__read_floats(l2rw_breader *r, float *x, size_t n,
                              const char *what);
l2rw_status l2rw__read_i32s(l2rw_breader *r, int32_t *x, size_t n,
                            const char *what);
/* Checks that every payload byte was consumed (no trailing data) and
 * that the running CRC matches the stored one. Does not close. */
l2rw_status l2rw__br_end(l2rw_breader *r);

#endif
