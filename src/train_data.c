/* The run's data on the net's device (train_internal.h, l2rw__ddata):
 * images of the training, clean and test sets x [rows, c, h, w] uploaded
 * once; per step the batch indices idx [n] (and the augmentation's draws
 * [n, 3]) go up and the back end gathers x[idx] [n, c, h, w] (and crops
 * and flips it) in place. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "data_internal.h"
#include "net_internal.h"
#include "train_internal.h"

/* Room left on the device after the data: the workspace growth of cuBLAS
 * and the convolutions, the optimizer, fragmentation. */
#define DD_RESERVE ((size_t)256 << 20)

static const char *const place_names[] = {"auto", "device", "host"};

l2rw_status l2rw_data_place_parse(const char *s, l2rw_data_place *out)
{
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, place_names[i])) {
            *out = (l2rw_data_place)i;
            return L2RW_OK;
        }
    return l2rw__fail(L2RW_ERR_ARG, "data place '%s': expected auto, "
                      "device or host", s ? s : "(null)");
}

const char *l2rw_data_place_name(l2rw_data_place p)
{
    return (unsigned)p < 3 ? place_names[p] : "?";
}

void l2rw__ddata_free(l2rw__ddata *dd)
{
    const l2rw__backend *be = dd->be;
    if (be) {
        for (int k = 0; k < DD_SETS; k++) be->dealloc(dd->x[k]);
        for (int s = 0; s < DD_SLOTS; s++) {
            be->dealloc(dd->batch[s]);
            be->dealloc(dd->idx[s]);
        }
        be->dealloc(dd->aug);
        be->dealloc(dd->draws);
    }
    free(dd->host_draws);
    memset(dd, 0, sizeof *dd);
}

static double mib(size_t bytes) { return (double)bytes / (1 << 20); }

/* Bytes the upload takes: the sets and the step buffers. */
static size_t needed(const l2rw_dataset *const sets[DD_SETS], size_t dim,
                     int mb)
{
    size_t rows = 0;
    for (int k = 0; k < DD_SETS; k++) rows += (size_t)sets[k]->n;
    size_t batch = (size_t)mb * dim * sizeof(float);
    return rows * dim * sizeof(float) + (DD_SLOTS + 1) * batch +
           (DD_SLOTS + 3) * (size_t)mb * sizeof(int32_t);
}

static int alloc_all(l2rw__ddata *dd, const l2rw_dataset *const s[DD_SETS])
{
    const l2rw__backend *be = dd->be;
    size_t mb = (size_t)dd->max_batch, dim = dd->dim;
    int ok = 1;
    for (int k = 0; k < DD_SETS; k++) {
        dd->rows[k] = s[k]->n;
        dd->x[k] = be->alloc((size_t)s[k]->n * dim, sizeof(float));
        ok = ok && dd->x[k];
    }
    for (int k = 0; k < DD_SLOTS; k++) {
        dd->batch[k] = be->alloc(mb * dim, sizeof(float));
        dd->idx[k] = be->alloc(mb, sizeof(int32_t));
        ok = ok && dd->batch[k] && dd->idx[k];
    }
    dd->aug = be->alloc(mb * dim, sizeof(float));
    dd->draws = be->alloc(3 * mb, sizeof(int32_t));
    dd->host_draws = malloc(3 * mb * sizeof(int32_t));
    return ok && dd->aug && dd->draws && dd->host_draws;
}

/* Streams from the host, saying why. */
static l2rw_status stream(l2rw__ddata *dd, const char *why)
{
    char msg[sizeof dd->where];
    snprintf(msg, sizeof msg, "host memory, a batch uploaded per step "
             "(%.150s)", why);
    l2rw__ddata_free(dd);
    snprintf(dd->where, sizeof dd->where, "%s", msg);
    return L2RW_OK;
}

l2rw_status l2rw__ddata_init(l2rw__ddata *dd, const l2rw_net *net,
                             const l2rw_dataset *const sets[DD_SETS],
                             int max_batch, l2rw_data_place place)
{
    memset(dd, 0, sizeof *dd);
    const l2rw__backend *be = l2rw__net_backend(net);
    if (be->host) {
        snprintf(dd->where, sizeof dd->where, "host memory (the CPU's)");
        return L2RW_OK;
    }
    if (place == L2RW_PLACE_HOST) return stream(dd, "--data-place host");
    dd->dim = l2rw_dataset_dim(sets[DD_TRAIN]);
    dd->max_batch = max_batch;
    size_t want = needed(sets, dd->dim, max_batch), room = be->mem_free();
    size_t usable = room / 10 * 9;
    usable = usable > DD_RESERVE ? usable - DD_RESERVE : 0;
    char sizes[160];
    snprintf(sizes, sizeof sizes, "%.0f MiB of data, %.0f MiB free on the "
             "device", mib(want), mib(room));
    if (want > usable) {
        if (place == L2RW_PLACE_DEVICE)
            return l2rw__fail(L2RW_ERR_NOMEM, "data on the device: %s "
                              "(they must fit in 90%% of it less 256 MiB); "
                              "use --data-place host", sizes);
        return stream(dd, sizes);
    }
    dd->be = be;
    if (!alloc_all(dd, sets)) {
        if (place == L2RW_PLACE_DEVICE) {
            l2rw__ddata_free(dd);
            return l2rw__fail(L2RW_ERR_NOMEM, "data on the device: out of "
                              "memory (%s)", sizes);
        }
        return stream(dd, "the device refused the memory");
    }
    for (int k = 0; k < DD_SETS; k++)
        be->upload(dd->x[k], sets[k]->x,
                   (size_t)sets[k]->n * dd->dim * sizeof(float));
    l2rw_status s = be->sync(); /* a failed upload shows here */
    if (s != L2RW_OK) {
        l2rw__ddata_free(dd);
        return s;
    }
    dd->bytes = want;
    snprintf(dd->where, sizeof dd->where, "device memory (%.0f MiB: "
             "training, clean and test images uploaded once; batches "
             "gathered there)", mib(want));
    return L2RW_OK;
}

const float *l2rw__ddata_gather(l2rw__ddata *dd, int k, int slot,
                                const int32_t *idx, int n)
{
    const l2rw__backend *be = dd->be;
    be->upload(dd->idx[slot], idx, (size_t)n * sizeof *idx);
    be->gather_rows(dd->batch[slot], dd->x[k], (size_t)dd->rows[k],
                    dd->idx[slot], n, dd->dim);
    return dd->batch[slot];
}

const float *l2rw__ddata_augment(l2rw__ddata *dd, const float *x, int n,
                                 int c, int h, int w, int pad, uint64_t key)
{
    const l2rw__backend *be = dd->be;
    l2rw__augment_draws(key, n, pad, dd->host_draws);
    be->upload(dd->draws, dd->host_draws, 3 * (size_t)n * sizeof(int32_t));
    be->crop_flip(dd->aug, x, dd->draws, n, c, h, w, pad);
    return dd->aug;
}
