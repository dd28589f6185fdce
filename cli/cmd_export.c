/* l2rw export: write a saved model in a standard format for inference
 * elsewhere.
 *
 *   l2rw export --load FILE [--format onnx] (--out OUT | OUT)
 *               [--norm FILE] [--no-norm-in-graph] [--fold-bn|--no-fold-bn]
 *               [--no-probabilities]
 *
 * The normalisation of training (norm.txt next to the model file, as
 * `l2rw eval` reads it) goes into the model: as Sub/Div nodes in front
 * (default) or, with --no-norm-in-graph, as metadata for the caller. */
#define _POSIX_C_SOURCE 200809L
#include "cmds.h"
#include "opts.h"
#include "model_load.h"

#include "l2rw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
    fprintf(stderr, "l2rw export: %s%s%s\n", what, *what ? ": " : "",
            l2rw_last_error());
    return 2;
}


typedef struct {
    const char *load, *format, *out, *norm;
    int fold, no_fold, no_norm_in_graph, no_probs;
} export_args;

/* Options and the one positional OUT; 0 to go on, else the exit status. */
static int parse_args(export_args *a, int argc, char **argv, int *done)
{
    opt_def opts[] = {
        {"load", OPT_STR, &a->load, "FILE", "model file (required)", 1, 0, 0},
        {"format", OPT_STR, &a->format, "onnx", "output format", 1, 0, 0},
        {"out", OPT_STR, &a->out, "FILE", "output file (or give it as OUT)",
         1, 0, 0},
        {"norm", OPT_STR, &a->norm, "FILE",
         "normalisation file (none = norm.txt next to the model, if any)", 1,
         0, 0},
        {"no-norm-in-graph", OPT_FLAG, &a->no_norm_in_graph, NULL,
         "state mean and std in the metadata; the model takes normalised "
         "inputs", 1, 0, 0},
        {"fold-bn", OPT_FLAG, &a->fold, NULL,
         "fold batch norms into the convs before them (on unless "
         "--no-fold-bn)", 1, 0, 0},
        {"no-fold-bn", OPT_FLAG, &a->no_fold, NULL,
         "keep every batch norm as a BatchNormalization node", 1, 0, 0},
        {"no-probabilities", OPT_FLAG, &a->no_probs, NULL,
         "logits only, no softmax output", 1, 0, 0},
    };
    const char *pos[1] = {NULL};
    int n_pos = 0;
    char err[OPTS_ERR_MAX];
    int rc = opts_parse(opts, (int)(sizeof opts / sizeof opts[0]), argc, argv,
                        "l2rw export",
                        "usage: l2rw export --load FILE [--format onnx] "
                        "(--out OUT | OUT) [options]",
                        stdout, pos, 1, &n_pos, err, sizeof err);
    *done = 1;
    if (rc == 1) return 0;
    if (rc) return opts_usage_error(err);
    if (n_pos && a->out)
        return opts_usage_error("l2rw export: give the output once, as "
                                "--out OUT or as OUT");
    if (n_pos) a->out = pos[0];
    if (!a->load || !a->out)
        return opts_usage_error("l2rw export: --load FILE and an output "
                                "file are required (try --help)");
    if (strcmp(a->format, "onnx") != 0)
        return opts_usage_error("l2rw export: --format must be onnx (the "
                                "only format)");
    if (a->fold && a->no_fold)
        return opts_usage_error("l2rw export: --fold-bn and --no-fold-bn "
                                "contradict each other");
    *done = 0;
    return 0;
}

/* Loads the normalisation the options name (or the model's default);
 * nm->c stays 0 when there is none. 0 or the exit status. */
static int load_norm(const export_args *a, l2rw_norm *nm, int channels)
{
    char path[4096];
    if (a->norm) snprintf(path, sizeof path, "%s", a->norm);
    else cli_default_norm(a->load, path, sizeof path);
    if (!path[0]) return 0;
    if (l2rw_norm_load(nm, path) != L2RW_OK) return fail("");
    if (nm->c != channels) {
        fprintf(stderr, "l2rw export: %s: normalisation of %d channels, the "
                "model %s takes %d\n", path, nm->c, a->load, channels);
        return 2;
    }
    return 0;
}

int l2rw_cmd_export(int argc, char **argv)
{
    export_args a = {NULL, "onnx", NULL, NULL, 0, 0, 0, 0};
    int done;
    int rc = parse_args(&a, argc, argv, &done);
    if (done) return rc;
    l2rw_net *net = NULL;
    if (l2rw_net_load_new(&net, a.load, 1) != L2RW_OK) return fail(""); /* the message names the file */
    l2rw_norm nm;
    memset(&nm, 0, sizeof nm);
    int c;
    l2rw_net_input_shape(net, &c, NULL, NULL);
    int status = load_norm(&a, &nm, c);
    if (status == 0) {
        l2rw_onnx_opts o = l2rw_onnx_opts_default();
        if (nm.c) o.mean = nm.mean, o.std = nm.std, o.norm_channels = nm.c;
        o.norm_in_graph = !a.no_norm_in_graph;
        o.fold_bn = !a.no_fold;
        o.probabilities = !a.no_probs;
        l2rw_status s = l2rw_net_export_onnx(net, a.out, &o);
        if (s != L2RW_OK) {
            fail("");
            status = s == L2RW_ERR_NOMEM ? 1 : 2; /* 2: the path, the model */
        } else
            printf("%s: model '%s' as ONNX (opset 17)%s%s\n", a.out,
                   l2rw_net_model(net),
                   !nm.c ? ", no normalisation"
                   : o.norm_in_graph ? ", normalisation in the graph"
                                     : ", normalisation in the metadata",
                   o.fold_bn ? ", batch norms folded" : "");
    }
    l2rw_norm_free(&nm);
    l2rw_net_free(net);
    return status;
}
