/* L2RW inside your own training loop, with the library's per-step API.
 *
 * Fashion-MNIST (or any data spec), 40% of the training labels flipped to
 * class 0, 10 clean images per class held out; a LeNet trained with
 * l2rw_method_step; prints the test accuracy and the share of the weight
 * that landed on correctly labelled examples.
 *
 *   cc custom_loop.c $(pkg-config --cflags --libs l2rw) -o custom_loop
 *   ./custom_loop [DATA_SPEC [STEPS]]          (fashion-mnist, 1000) */
#include <l2rw.h>

#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 100, VAL_BATCH = 100 };

int main(int argc, char **argv)
{
    l2rw_data_cfg dc = l2rw_data_cfg_default();
    dc.data = argc > 1 ? argv[1] : "fashion-mnist";
    dc.noise = "background:0.4";
    dc.val_per_class = 10;
    dc.seed = 1;
    long steps = argc > 2 ? atol(argv[2]) : 1000;

    l2rw_data d = {0};
    l2rw_net *net = NULL;
    l2rw_sgd *opt = NULL;
    l2rw_method_ctx *m = NULL;
    l2rw_sampler train_s = {0}, val_s = {0};
    float *x = NULL, *vx = NULL;
    int32_t *idx = NULL, *y = NULL, *y_true = NULL, *vy = NULL;
    int ok = 0;

    if (l2rw_data_prepare(&d, &dc) != L2RW_OK) goto done;
    const l2rw_dataset *tr = &d.train, *va = &d.val;
    int nv = va->n < VAL_BATCH ? va->n : VAL_BATCH;
    if (l2rw_net_create(&net, "lenet", tr->c, tr->h, tr->w, tr->classes,
                        BATCH, dc.seed) != L2RW_OK)
        goto done;

    l2rw_sgd_cfg sc = {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 5e-4f};
    l2rw_method_cfg mc = l2rw_method_cfg_default();
    mc.method = L2RW_METHOD_L2RW;
    mc.seed = dc.seed;
    if (l2rw_sgd_create(&opt, net, &sc) != L2RW_OK ||
        l2rw_method_create(&m, &mc, net) != L2RW_OK ||
        l2rw_sampler_init(&train_s, tr->n, BATCH, 2) != L2RW_OK ||
        l2rw_sampler_init(&val_s, va->n, nv, 3) != L2RW_OK)
        goto done;

    size_t dim = l2rw_dataset_dim(tr);
    x = malloc(sizeof *x * dim * BATCH);
    vx = malloc(sizeof *vx * dim * (size_t)nv);
    idx = malloc(sizeof *idx * BATCH);
    y = malloc(sizeof *y * BATCH);
    y_true = malloc(sizeof *y_true * BATCH);
    vy = malloc(sizeof *vy * (size_t)nv);
    if (!x || !vx || !idx || !y || !y_true || !vy) {
        fprintf(stderr, "custom_loop: out of memory\n");
        goto freed;
    }

    double clean = 0;
    long weighted_steps = 0;
    for (long step = 0; step < steps; step++) {
        l2rw_step_stats st;
        if (l2rw_sampler_batch(&train_s, step, idx) != L2RW_OK ||
            l2rw_gather(tr, idx, BATCH, x, y, y_true, NULL) != L2RW_OK ||
            l2rw_sampler_batch(&val_s, step, idx) != L2RW_OK ||
            l2rw_gather(va, idx, nv, vx, vy, NULL, NULL) != L2RW_OK ||
            l2rw_method_step(m, net, opt, step, x, y, y_true, BATCH, vx, vy,
                             nv, &st, NULL) != L2RW_OK)
            goto done;
        if (st.clean_mass == st.clean_mass) { /* not NaN: weights given */
            clean += st.clean_mass;
            weighted_steps++;
        }
    }

    double acc, loss;
    if (l2rw_evaluate(net, &d.test, 500, &acc, &loss) != L2RW_OK) goto done;
    printf("%ld steps: test accuracy %.2f%%, %.1f%% of the weight on clean "
           "labels\n", steps, 100 * acc,
           weighted_steps ? 100 * clean / (double)weighted_steps : 0.0);
    ok = 1;
done:
    if (!ok) fprintf(stderr, "custom_loop: %s\n", l2rw_last_error());
freed:
    free(x), free(vx), free(idx), free(y), free(y_true), free(vy);
    l2rw_sampler_free(&train_s);
    l2rw_sampler_free(&val_s);
    l2rw_method_free(m);
    l2rw_sgd_free(opt);
    l2rw_net_free(net);
    l2rw_data_free(&d);
    return ok ? 0 : 1;
}
