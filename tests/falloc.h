/* Aligned float buffers of the kernel and layer tests (free with
 * l2rw__afree); running out of memory ends the test with status 2. */
#ifndef L2RW_TEST_FALLOC_H
#define L2RW_TEST_FALLOC_H

#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static float *falloc(size_t n)
{
    float *p = l2rw__aalloc(n ? n : 1, sizeof(float));
    if (!p) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

#endif
