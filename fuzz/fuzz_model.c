/* libFuzzer target: the model-file reader (l2rw_net_load_new, and
 * l2rw_net_load into an existing mlp:4 net). Input: the file's bytes
 * (its last 4 bytes replaced by the CRC of the rest, see write_input);
 * they go to a temporary file because the reader works on a path (it
 * checks the size and the CRC before parsing). A hostile header must not
 * make the reader allocate the net it names (the run's -rss_limit_mb
 * catches that). */
#define _POSIX_C_SOURCE 200809L
#include "model_io.h"
#include "fuzz_crc_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static l2rw_net *fixed; /* the net of l2rw_net_load */

static void setup(void)
{
    snprintf(path, sizeof path, "/tmp/fuzz_model.%ld", (long)getpid());
    if (l2rw_net_create(&fixed, "mlp:4", 2, 1, 1, 2, 1, 1) != L2RW_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fixed) setup();
    if (write_input(path, data, size) != 0) return 0;
    l2rw_net *net = NULL;
    if (l2rw_net_load_new(&net, path, 2) == L2RW_OK) l2rw_net_free(net);
    (void)l2rw_net_load(fixed, path);
    remove(path);
    return 0;
}
