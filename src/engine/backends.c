/* Which back end runs a device (l2rw_device, l2rw.h): the CPU table, or
 * the CUDA table once the GPU's context is made (src/cuda/; a build
 * without CUDA has only the stub, whose init gives the reason). */
#include "backend.h"
#include "backend_checked.h"
#include "cuda_backend.h"
#include "net_internal.h"

l2rw_status l2rw__backend_of(const l2rw_device *dev,
                             const l2rw__backend **be)
{
    *be = NULL;
    if (!dev || dev->kind == L2RW_DEVICE_CPU) {
        *be = &l2rw__backend_cpu;
        return L2RW_OK;
    }
    if (dev->kind == L2RW_DEVICE_CHECKED) {
        *be = &l2rw__backend_checked;
        return L2RW_OK;
    }
    if (dev->kind != L2RW_DEVICE_CUDA)
        return l2rw__fail(L2RW_ERR_ARG, "device: unknown kind %d",
                          (int)dev->kind);
    char why[512];
    /* On failure init leaves the probe's reason in l2rw_last_error(). */
    L2RW_TRY(l2rw__cu_init(dev->index, why, sizeof why));
#ifdef L2RW_HAVE_CUDA
    *be = &l2rw__backend_cuda;
    return L2RW_OK;
#else
    return l2rw__fail(L2RW_ERR_UNSUPPORTED, "%s", why); /* not reached */
#endif
}
