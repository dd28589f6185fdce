/* libFuzzer target: the checkpoint reader (l2rw_train_resume_config and
 * l2rw__checkpoint_load) for a fixed run: fingerprint FUZZ_FINGERPRINT,
 * an mlp:4 net on 2x1x1 inputs, 2 classes, an example record of
 * FUZZ_EXAMPLES examples. The seed corpus (fuzz/corpus/fuzz_checkpoint)
 * holds checkpoints of that run, so inputs get past the fingerprint.
 * Input: the file's bytes (CRC made to fit, see write_input), written
 * to DIR/checkpoint.l2rw. */
#define _POSIX_C_SOURCE 200809L
#include "model_io.h"
#include "fuzz_crc_file.h"
#include "train_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FINGERPRINT "fuzz=1\nlr=0x1.47ae147ae147bp-7\n"
enum { FUZZ_EXAMPLES = 8 };

static char dir[64], path[96];
static l2rw_net *net;
static int32_t ids[FUZZ_EXAMPLES], ys[FUZZ_EXAMPLES];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/fuzz_checkpoint.%ld", (long)getpid());
    snprintf(path, sizeof path, "%s/%s", dir, L2RW_FILE_CHECKPOINT);
    mkdir(dir, 0700);
    for (int i = 0; i < FUZZ_EXAMPLES; i++) ids[i] = i, ys[i] = i % 2;
    if (l2rw_net_create(&net, "mlp:4", 2, 1, 1, 2, 1, 1) != L2RW_OK)
        abort();
}

static void load(void)
{
    l2rw_record *rec = NULL;
    if (l2rw_record_create(&rec, FUZZ_EXAMPLES, ids, ys, ys) != L2RW_OK)
        return;
    size_t np = l2rw_net_num_params(net);
    float *velocity = calloc(np, sizeof *velocity);
    l2rw__train_state st;
    memset(&st, 0, sizeof st);
    if (velocity)
        (void)l2rw__checkpoint_load(path, FUZZ_FINGERPRINT, &st, rec, net,
                                    velocity, np);
    l2rw__state_free(&st);
    free(velocity);
    l2rw_record_free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!net) setup();
    if (write_input(path, data, size) != 0) return 0;
    char conf[4096];
    (void)l2rw_train_resume_config(dir, conf, sizeof conf);
    load();
    remove(path);
    return 0;
}
