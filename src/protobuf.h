/* A small protobuf wire-format writer: enough to emit ONNX models
 * (onnx_export.c) without a protobuf library, which nothing packages for
 * C here. Messages are built bottom-up: a sub-message is written into
 * its own buffer and appended to its parent as a length-delimited field,
 * since the wire format puts a message's length before its bytes.
 *
 * Wire format (https://protobuf.dev/programming-guides/encoding/): a
 * field is a key varint (field_number << 3 | wire_type) and a value;
 * varints are little-endian base-128 with the high bit of each byte
 * saying "more follows". Not part of the API. */
#ifndef L2RW_PROTOBUF_H
#define L2RW_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef enum {
    L2RW_PB_VARINT = 0, /* int32, int64, uint64, bool, enum */
    L2RW_PB_I64 = 1,    /* fixed64, double */
    L2RW_PB_LEN = 2,    /* string, bytes, sub-message, packed repeated */
    L2RW_PB_I32 = 5     /* fixed32, float */
} l2rw_pb_wire;

/* A growing byte buffer. Writers do not return a status: the first
 * failed allocation sets `failed` and makes every later write a no-op,
 * so a caller can emit a whole message and check once (l2rw__pb_status). */
typedef struct {
    unsigned char *data;
    size_t len, cap;
    int failed;
} l2rw_pb;

void l2rw__pb_init(l2rw_pb *pb);
void l2rw__pb_free(l2rw_pb *pb);
/* L2RW_OK, or L2RW_ERR_NOMEM (with a message) after a failed write. */
l2rw_status l2rw__pb_status(const l2rw_pb *pb, const char *what);

/* Raw pieces. */
void l2rw__pb_raw(l2rw_pb *pb, const void *bytes, size_t len);
void l2rw__pb_varint(l2rw_pb *pb, uint64_t v);
void l2rw__pb_key(l2rw_pb *pb, int field, l2rw_pb_wire wire);

/* Fields. Negative int64 values take ten bytes (two's complement), as
 * protobuf's int64 does. */
void l2rw__pb_int(l2rw_pb *pb, int field, int64_t v);
void l2rw__pb_float(l2rw_pb *pb, int field, float v);
void l2rw__pb_bytes(l2rw_pb *pb, int field, const void *bytes, size_t len);
void l2rw__pb_string(l2rw_pb *pb, int field, const char *s);
/* child's bytes as a length-delimited field (an embedded message). */
void l2rw__pb_message(l2rw_pb *pb, int field, const l2rw_pb *child);
/* n floats as one bytes field of IEEE 754 little-endian values (ONNX's
 * TensorProto.raw_data), whatever the host's byte order. */
void l2rw__pb_floats_le(l2rw_pb *pb, int field, const float *v, size_t n);

#endif
