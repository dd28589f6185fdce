/* Input: x [n, c, h, w], the batch (ps->input) in host memory, uploaded
 * into the node's buffer, or already in back-end memory (a batch gathered
 * on the device), copied there; its tangent is zero and it needs no
 * gradient. */
#include "layers.h"

static l2rw_status input_setup(l2rw__node *nd, const l2rw__node *a,
                               const l2rw__node *b, int max_batch,
                               const l2rw__backend *be)
{
    (void)a, (void)b, (void)max_batch, (void)be;
    if (nd->c <= 0 || nd->h <= 0 || nd->w <= 0)
        return l2rw__fail(L2RW_ERR_SHAPE, "input shape %dx%dx%d", nd->c,
                          nd->h, nd->w);
    return L2RW_OK;
}

static void input_forward(const l2rw__pass *ps, l2rw__node *nd)
{
    size_t bytes = (size_t)ps->n * nd->size * sizeof *nd->y;
    if (ps->input_on_device)
        ps->be->copy_dev(nd->y, ps->input, bytes);
    else
        ps->be->upload(nd->y, ps->input, bytes);
}

static void input_backward(const l2rw__pass *ps, l2rw__node *nd)
{
    (void)ps, (void)nd; /* nothing upstream */
}

const l2rw__layer_ops l2rw__ops_input = {"input", 0, input_setup, NULL,
                                         input_forward, input_backward};
