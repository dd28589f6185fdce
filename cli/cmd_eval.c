/* l2rw eval: test a saved model on a data set.
 *
 *   l2rw eval --load FILE --data SPEC [--norm FILE] [--imbalance SPEC]
 *             [--split test|train] [--batch N] [--threads T]
 *             [--device cpu|cuda[:N]|checked]
 *
 * The normalisation of training (norm.txt next to the model file, as
 * `l2rw train --out DIR` writes it) is applied when present. On a device
 * the model is loaded there and l2rw_evaluate uploads each batch; the
 * metrics it returns are host values. */
#define _POSIX_C_SOURCE 200809L
#include "cmds.h"
#include "model_load.h"
#include "opts.h"

#include "l2rw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
    fprintf(stderr, "l2rw eval: %s%s%s\n", what, *what ? ": " : "",
            l2rw_last_error());
    return 2;
}

int l2rw_cmd_eval(int argc, char **argv)
{
    const char *load = NULL, *data = NULL, *norm = NULL, *imb = "none",
               *split = "test", *image_size = NULL, *device = "cpu";
    int batch = 500, threads = 0;
    opt_def opts[] = {
        {"load", OPT_STR, &load, "FILE", "model file (required)", 1, 0, 0},
        {"data", OPT_STR, &data, "SPEC", "data spec as for train (required)",
         1, 0, 0},
        {"norm", OPT_STR, &norm, "FILE",
         "normalisation file (none = norm.txt next to the model, if any)", 1,
         0, 0},
        {"imbalance", OPT_STR, &imb, "SPEC",
         "keep the classes of a training --imbalance A,B:SHARE", 1, 0, 0},
        {"split", OPT_STR, &split, "test|train", "which part of the data", 1,
         0, 0},
        {"image-size", OPT_STR, &image_size, "HxW",
         "resize folder: and list: images, as in training", 1, 0, 0},
        {"batch", OPT_INT, &batch, "N", "evaluation batch", 1, 65536, 0},
        {"device", OPT_STR, &device, "cpu|cuda[:N]|checked",
         "where the net runs", 1, 0, 0},
        {"threads", OPT_INT, &threads, "T", "threads (0 = all cores)", 0,
         1024, 0},
    };
    char err[OPTS_ERR_MAX];
    int rc = opts_parse(opts, (int)(sizeof opts / sizeof opts[0]), argc, argv,
                        "l2rw eval",
                        "usage: l2rw eval --load FILE --data SPEC [options]",
                        stdout, NULL, 0, NULL, err, sizeof err);
    if (rc == 1) return 0;
    if (rc) return opts_usage_error(err);
    if (!load || !data)
        return opts_usage_error("l2rw eval: --load FILE and --data SPEC are "
                                "required (try --help)");
    l2rw_device dev;
    if (opts_device("l2rw eval", device, 0, &dev)) return 2;
    if (strcmp(split, "test") && strcmp(split, "train"))
        return opts_usage_error("l2rw eval: --split must be test or train");
    static char sized[8192];
    if (image_size) {
        if (l2rw_data_spec_set_size(data, image_size, sized, sizeof sized) !=
            L2RW_OK)
            return fail("--image-size");
        data = sized;
    }
    if (threads > 0) l2rw_set_threads(threads);

    l2rw_imbalance im;
    if (l2rw_imbalance_parse(&im, imb) != L2RW_OK) return fail("--imbalance");
    cli_model model;
    if (cli_model_load(&model, "l2rw eval", load, batch, &dev)) return 2;
    l2rw_dataset train, test;
    int status = 2;
    if (l2rw_data_load(data, &train, &test) != L2RW_OK) {
        fail("");
        goto done;
    }
    if (im.kind == L2RW_IMB_SHARE &&
        l2rw_imbalance_select(&train, &test, &im) != L2RW_OK) {
        fail("--imbalance");
        goto done;
    }
    l2rw_dataset *d = strcmp(split, "train") ? &test : &train;
    if (cli_model_prepare(&model, "l2rw eval", load, norm, d)) goto done;
    const char *norm_path = model.norm_path;
    if (d->n == 0) {
        fprintf(stderr, "l2rw eval: the %s split of %s is empty\n", split,
                data);
        goto done;
    }
    double acc, loss;
    if (l2rw_evaluate(model.net, d, batch, &acc, &loss) != L2RW_OK) {
        fail("");
        status = 1;
        goto done;
    }
    printf("%s on %s (%s, %d examples%s%s): accuracy %.2f%%, loss %.4f\n",
           load, data, split, d->n, norm_path[0] ? ", normalised by " : "",
           norm_path, 100.0 * acc, loss);
    status = 0;
done:
    cli_model_free(&model);
    l2rw_dataset_free(&train);
    l2rw_dataset_free(&test);
    return status;
}
