/* The whole training loop in one call: L2RW on Fashion-MNIST with 40%
 * background label flips; metrics, plots' data, the model and the
 * per-example weight record go to out/train_run.
 *
 *   cc train_run.c $(pkg-config --cflags --libs l2rw) -o train_run
 *   ./train_run [STEPS]                                   (1500) */
#include <l2rw.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    l2rw_train_cfg cfg = l2rw_train_cfg_default(); /* LeNet, l2rw, lr 0.01 */
    cfg.data = "fashion-mnist";
    cfg.noise = "background:0.4";
    cfg.steps = argc > 1 ? atol(argv[1]) : 1500;
    cfg.out_dir = "out/train_run";
    cfg.overwrite = 1; /* run again: start over (else refused) */

    l2rw_train_result res;
    if (l2rw_train_run(&cfg, &res) != L2RW_OK) {
        fprintf(stderr, "train_run: %s\n", l2rw_last_error());
        return 1;
    }
    printf("test accuracy %.2f%% after %ld steps; %.1f%% of the weight on "
           "clean labels; AUC of the mean weight for finding flipped "
           "labels %.3f\n", 100 * res.final_test_accuracy, res.steps,
           100 * res.clean_weight_share, res.auc);
    return 0;
}
