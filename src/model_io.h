/* The network section of model files and checkpoints (model_io.c), for
 * writers of other formats that embed a network (the training loop's
 * checkpoints). A section is:
 *
 *   str model name; i32 channels, height, width, classes;
 *   u64 num_params, num_state; float32 params[num_params],
 *   state[num_state]
 *
 * written with the checked helpers of binio.h. */
#ifndef L2RW_MODEL_IO_H
#define L2RW_MODEL_IO_H

#include "binio.h"

enum { L2RW_MODEL_NAME_MAX = 256 };

/* The most parameters (and the most batch-norm state values) a model
 * file or checkpoint may declare: 150 million, about 4x wrn-28-10 (36.5
 * million), the largest model of the paper's experiments. Such a net
 * takes some 2.4 GB (parameters, gradients, tangents, velocity) before
 * activations; anything larger in a file is taken for corruption or
 * hostility rather than allocated. */
#define L2RW_MODEL_MAX_PARAMS 150000000ull

typedef struct {
    char model[L2RW_MODEL_NAME_MAX];
    int c, h, w, classes;
    uint64_t num_params, num_state;
} l2rw_net_header;

l2rw_status l2rw__net_write(l2rw_bwriter *w, const l2rw_net *net);

/* Parameter and state counts of the zoo's `model` for inputs c x h x w
 * and `classes`, from the layer descriptions only: nothing of the net's
 * size is allocated (zoo.c). Errors as l2rw_net_create's. */
l2rw_status l2rw__zoo_count(const char *model, int c, int h, int w,
                            int classes, uint64_t *params, uint64_t *state);

/* Reads the header of a section (sizes checked against the file and
 * against L2RW_MODEL_MAX_PARAMS). */
l2rw_status l2rw__net_read_header(l2rw_breader *r, l2rw_net_header *h);
/* L2RW_ERR_ARCH when the section's model name, input shape, classes or
 * buffer sizes differ from net's (the message names the difference). */
l2rw_status l2rw__net_check_arch(const l2rw_net_header *h,
                                 const l2rw_net *net, const char *path);
/* Before building a net for a section: the architecture it names must
 * be one of the zoo (else L2RW_ERR_ARCH), have at most
 * L2RW_MODEL_MAX_PARAMS parameters (else L2RW_ERR_FORMAT) and exactly the
 * section's counts (else L2RW_ERR_ARCH), so that a small file cannot
 * make the reader allocate a large net. */
l2rw_status l2rw__net_check_counts(const l2rw_net_header *h,
                                   const char *path);
/* Reads the data of a section into params[num_params], state[num_state];
 * a NaN or infinite value is L2RW_ERR_FORMAT naming the file and the
 * first bad index. */
/* L2RW_ERR_FORMAT naming path, what and the first index of x[n] that is
 * NaN or infinite. */
l2rw_status l2rw__check_finite(const float *x, size_t n, const char *path,
                               const char *what);
l2rw_status l2rw__net_read_data(l2rw_breader *r, const l2rw_net_header *h,
                                float *params, float *state);
/* The same into the net itself, on any device (a device net through a
 * host copy, uploaded once every value has passed the checks); sizes
 * checked before by l2rw__net_check_arch. */
l2rw_status l2rw__net_read_into(l2rw_breader *r, const l2rw_net_header *h,
                                l2rw_net *net);

/* A net buffer (L2RW_NET_PARAMS or L2RW_NET_STATE, all of it) and n
 * floats of an optimizer's state written from any device: in place on
 * the CPU, through chunks of a host buffer otherwise (checkpoints). */
l2rw_status l2rw__write_net_buffer(l2rw_bwriter *w, const l2rw_net *net,
                                   l2rw_net_buffer which);
l2rw_status l2rw__write_optim_buffer(l2rw_bwriter *w, const l2rw_sgd *opt,
                                     l2rw_optim_buffer which, size_t n);
/* n floats into an optimizer's state buffer (any device); a NaN or Inf
 * is L2RW_ERR_FORMAT naming `what` and the index, as check_finite. */
l2rw_status l2rw__read_optim_buffer(l2rw_breader *r, l2rw_sgd *opt,
                                    l2rw_optim_buffer which, size_t n,
                                    const char *what);

#endif
