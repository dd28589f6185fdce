/* The checking back end (backend_checked.c): the CPU's kernels on memory
 * of its own arena, every pointer argument checked. Internal, for tests:
 * a net built on it runs as on a device, and any host pointer handed to
 * a kernel, any back-end pointer handed to the host side of a transfer,
 * any extent past the end of its block is recorded and returned by the
 * table's sync as an error naming the op and the argument. Between ops
 * the arena is mapped without access, so a host read or write of
 * back-end memory (a device pointer dereferenced on the host) faults at
 * once. One thread at a time. */
#ifndef L2RW_BACKEND_CHECKED_H
#define L2RW_BACKEND_CHECKED_H

#include <stddef.h>

#include "backend.h"

extern const l2rw__backend l2rw__backend_checked;

/* What crossed between host and back end, and the arena's blocks, since
 * the process started (a test takes differences around a step). */
typedef struct {
    long allocs, live;          /* alloc calls, blocks not yet freed */
    long uploads, downloads;    /* calls */
    size_t up_bytes, down_bytes;
    long errors;                /* failed checks (each also kept for sync) */
} l2rw__checked_counts;

l2rw__checked_counts l2rw__checked_counts_get(void);

#endif
