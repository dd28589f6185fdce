/* Device names and whether a device can run nets here (l2rw.h). The CUDA
 * probe lives with the CUDA back end (src/cuda/); in a build without
 * CUDA its stub gives the reason. */
#include "common.h"
#include "cuda_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* l2rw_set_tf32's mode, read by the CUDA back end before each product. */
static _Atomic int tf32_on;

void l2rw_set_tf32(int on) { tf32_on = on != 0; }

int l2rw_get_tf32(void) { return tf32_on; }

/* GPU numbers accepted by the parser: CUDA's own limit is far below. */
enum { DEVICE_INDEX_MAX = 1 << 16 };

l2rw_status l2rw_device_parse(const char *name, l2rw_device *out)
{
    if (!name || !out)
        return l2rw__fail(L2RW_ERR_ARG, "device: NULL argument");
    out->kind = L2RW_DEVICE_CPU;
    out->index = 0;
    if (strcmp(name, "cpu") == 0) return L2RW_OK;
    if (strcmp(name, "checked") == 0) {
        out->kind = L2RW_DEVICE_CHECKED;
        return L2RW_OK;
    }
    if (strcmp(name, "cuda") == 0) {
        out->kind = L2RW_DEVICE_CUDA;
        return L2RW_OK;
    }
    if (strncmp(name, "cuda:", 5) == 0 && name[5] >= '0' && name[5] <= '9') {
        char *end = NULL;
        long k = strtol(name + 5, &end, 10);
        if (*end == '\0' && k >= 0 && k < DEVICE_INDEX_MAX) {
            out->kind = L2RW_DEVICE_CUDA;
            out->index = (int)k;
            return L2RW_OK;
        }
    }
    return l2rw__fail(L2RW_ERR_ARG, "unknown device '%s' (cpu, cuda, "
                      "cuda:N or checked)", name);
}

void l2rw_device_format(const l2rw_device *d, char *buf, size_t size)
{
    if (!buf || size == 0) return;
    if (!d || d->kind == L2RW_DEVICE_CPU)
        snprintf(buf, size, "cpu");
    else if (d->kind == L2RW_DEVICE_CHECKED)
        snprintf(buf, size, "checked");
    else
        snprintf(buf, size, "cuda:%d", d->index);
}

l2rw_status l2rw_device_available(const l2rw_device *d, char *desc,
                                  size_t size)
{
    if (desc && size) desc[0] = '\0';
    if (!d) return l2rw__fail(L2RW_ERR_ARG, "device: NULL argument");
    if (d->kind == L2RW_DEVICE_CPU || d->kind == L2RW_DEVICE_CHECKED)
        return L2RW_OK;
    if (d->kind != L2RW_DEVICE_CUDA)
        return l2rw__fail(L2RW_ERR_ARG, "device: unknown kind %d",
                          (int)d->kind);
    char why[512];
    if (!l2rw__cuda_probe(d->index, why, sizeof why))
        return l2rw__fail(L2RW_ERR_UNSUPPORTED, "%s", why);
    if (desc && size) snprintf(desc, size, "%s", why);
    return L2RW_OK;
}
