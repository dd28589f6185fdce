/* Model and normalisation loading shared by eval and predict. */
#define _POSIX_C_SOURCE 200809L
#include "model_load.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *prog)
{
    fprintf(stderr, "%s: %s\n", prog, l2rw_last_error());
    return 2;
}

int cli_model_load(cli_model *m, const char *prog, const char *path,
                   int batch, const l2rw_device *dev)
{
    memset(m, 0, sizeof *m);
    if (l2rw_net_load_new_on(&m->net, path, batch, dev) != L2RW_OK)
        return fail(prog);
    return 0;
}

void cli_default_norm(const char *model, char *out, size_t size)
{
    const char *slash = strrchr(model, '/');
    int len = slash ? (int)(slash - model) : 1;
    snprintf(out, size, "%.*s/%s", len, slash ? model : ".", L2RW_FILE_NORM);
    if (access(out, R_OK) != 0) out[0] = 0;
}

/* 1 when net takes d's inputs and predicts its classes; else says why. */
static int model_fits(const l2rw_net *net, const char *prog,
                      const char *path, const l2rw_dataset *d)
{
    int c, h, w;
    l2rw_net_input_shape(net, &c, &h, &w);
    if (c != d->c || h != d->h || w != d->w) {
        fprintf(stderr, "%s: %s: model '%s' takes inputs %dx%dx%d, the data "
                "has %dx%dx%d\n", prog, path, l2rw_net_model(net), c, h, w,
                d->c, d->h, d->w);
        return 0;
    }
    if (d->classes > l2rw_net_classes(net)) {
        fprintf(stderr, "%s: %s: model '%s' predicts %d classes, the data "
                "has %d\n", prog, path, l2rw_net_model(net),
                l2rw_net_classes(net), d->classes);
        return 0;
    }
    return 1;
}

int cli_model_prepare(cli_model *m, const char *prog, const char *path,
                      const char *norm, l2rw_dataset *d)
{
    if (!model_fits(m->net, prog, path, d)) return 2;
    if (norm) snprintf(m->norm_path, sizeof m->norm_path, "%s", norm);
    else cli_default_norm(path, m->norm_path, sizeof m->norm_path);
    if (m->norm_path[0] &&
        (l2rw_norm_load(&m->norm, m->norm_path) != L2RW_OK ||
         l2rw_norm_apply(&m->norm, d) != L2RW_OK))
        return fail(prog);
    return 0;
}

void cli_model_free(cli_model *m)
{
    if (!m) return;
    l2rw_norm_free(&m->norm);
    l2rw_net_free(m->net);
    m->net = NULL;
}
