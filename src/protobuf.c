/* Protobuf wire-format writer (protobuf.h). */
#include "protobuf.h"

#include <stdlib.h>
#include <string.h>

enum {
    PB_VARINT_MAX = 10, /* bytes of the longest varint (64 bits / 7) */
    PB_MIN_CAP = 256
};

void l2rw__pb_init(l2rw_pb *pb)
{
    memset(pb, 0, sizeof *pb);
}

void l2rw__pb_free(l2rw_pb *pb)
{
    if (!pb) return;
    free(pb->data);
    l2rw__pb_init(pb);
}

l2rw_status l2rw__pb_status(const l2rw_pb *pb, const char *what)
{
    if (!pb->failed) return L2RW_OK;
    return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", what);
}

/* Room for `more` bytes; 0 (and the buffer marked failed) if not. */
static int pb_reserve(l2rw_pb *pb, size_t more)
{
    if (pb->failed) return 0;
    if (more <= pb->cap - pb->len) return 1;
    if (more > SIZE_MAX / 2 - pb->len) {
        pb->failed = 1;
        return 0;
    }
    size_t cap = pb->cap ? pb->cap : PB_MIN_CAP;
    while (cap - pb->len < more) cap *= 2; /* amortised O(1) appends */
    unsigned char *d = realloc(pb->data, cap);
    if (!d) {
        pb->failed = 1;
        return 0;
    }
    pb->data = d, pb->cap = cap;
    return 1;
}

void l2rw__pb_raw(l2rw_pb *pb, const void *bytes, size_t len)
{
    if (len == 0 || !pb_reserve(pb, len)) return;
    memcpy(pb->data + pb->len, bytes, len);
    pb->len += len;
}

void l2rw__pb_varint(l2rw_pb *pb, uint64_t v)
{
    unsigned char b[PB_VARINT_MAX];
    size_t n = 0;
    do {
        unsigned char low = (unsigned char)(v & 0x7f);
        v >>= 7;
        b[n++] = (unsigned char)(low | (v ? 0x80 : 0)); /* more follows */
    } while (v);
    l2rw__pb_raw(pb, b, n);
}

void l2rw__pb_key(l2rw_pb *pb, int field, l2rw_pb_wire wire)
{
    l2rw__pb_varint(pb, ((uint64_t)(unsigned)field << 3) | (uint64_t)wire);
}

void l2rw__pb_int(l2rw_pb *pb, int field, int64_t v)
{
    l2rw__pb_key(pb, field, L2RW_PB_VARINT);
    l2rw__pb_varint(pb, (uint64_t)v);
}

/* The float's bits, least significant byte first. */
static void put_le32(unsigned char *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(u >> (8 * i));
}

void l2rw__pb_float(l2rw_pb *pb, int field, float v)
{
    unsigned char b[4];
    put_le32(b, v);
    l2rw__pb_key(pb, field, L2RW_PB_I32);
    l2rw__pb_raw(pb, b, sizeof b);
}

void l2rw__pb_bytes(l2rw_pb *pb, int field, const void *bytes, size_t len)
{
    l2rw__pb_key(pb, field, L2RW_PB_LEN);
    l2rw__pb_varint(pb, (uint64_t)len);
    l2rw__pb_raw(pb, bytes, len);
}

void l2rw__pb_string(l2rw_pb *pb, int field, const char *s)
{
    l2rw__pb_bytes(pb, field, s, strlen(s));
}

void l2rw__pb_message(l2rw_pb *pb, int field, const l2rw_pb *child)
{
    if (child->failed) {
        pb->failed = 1; /* a truncated child must not pass for whole */
        return;
    }
    l2rw__pb_bytes(pb, field, child->data, child->len);
}

void l2rw__pb_floats_le(l2rw_pb *pb, int field, const float *v, size_t n)
{
    if (n > SIZE_MAX / 4) {
        pb->failed = 1;
        return;
    }
    l2rw__pb_key(pb, field, L2RW_PB_LEN);
    l2rw__pb_varint(pb, (uint64_t)n * 4);
    if (!pb_reserve(pb, n * 4)) return;
    for (size_t i = 0; i < n; i++) put_le32(pb->data + pb->len + 4 * i, v[i]);
    pb->len += n * 4;
}
