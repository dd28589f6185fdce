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

typedef struct {
    char model[L2RW_MODEL_NAME_MAX];
    int c, h, w, classes;
    uint64_t num_params, num_state;
} l2rw_net_header;

l2rw_status l2rw__net_write(l2rw_bwriter *w, const l2rw_net *net);

/* Reads the header of a section (sizes checked against the file). */
l2rw_status l2rw__net_read_header(l2rw_breader *r, l2rw_net_header *h);
/* L2RW_ERR_ARCH when the section's model name, input shape, classes or
 * buffer sizes differ from net's (the message names the difference). */
l2rw_status l2rw__net_check_arch(const l2rw_net_header *h,
                                 const l2rw_net *net, const char *path);
/* Reads the data of a section into params[num_params], state[num_state]. */
l2rw_status l2rw__net_read_data(l2rw_breader *r, const l2rw_net_header *h,
                                float *params, float *state);

#endif
