/* The CUDA back end's entry points in a build without CUDA (the Makefile
 * compiles this file instead of the .cu files of src/cuda/ when nvcc is
 * not found or CUDA=0): the probe says why there is no GPU, init refuses. */
#include <stdio.h>

#include "cuda_backend.h"

static const char NO_CUDA[] = "l2rw was built without CUDA";

int l2rw__cuda_probe(int device, char *why, size_t why_size)
{
    (void)device;
    if (why && why_size) snprintf(why, why_size, "%s", NO_CUDA);
    return 0;
}

l2rw_status l2rw__cu_init(int device, char *why, size_t why_size)
{
    l2rw__cuda_probe(device, why, why_size);
    return l2rw__fail(L2RW_ERR_UNSUPPORTED, "%s", NO_CUDA);
}

void l2rw__cu_shutdown(void) {}
