/* Divergence of a training run (train_internal.h), the rule:
 *
 *   mean = the mean training loss of the last DIVERGE_WINDOW (50) steps
 *   diverged when mean > DIVERGE_FACTOR (3) * (lowest mean so far)
 *             and mean > DIVERGE_CHANCE (1.5) * ln(classes)
 *
 * Why, from L2RW with an MLP on scikit-learn's digits, 40% uniform flips,
 * lr 0.01, momentum 0.9, six seeds (README, "Divergence and gradient
 * clipping"): the four healthy runs' 50-step mean never exceeded 1.22x
 * its running minimum nor 2.22 in absolute terms (the flipped labels
 * keep the unweighted loss at 1-2). Seed 2's jumped to 6.2x (11.7
 * against 1.9) in the 30 steps before its net died (all logits equal,
 * loss ln 10 for good, test accuracy at chance, no NaN); seed 5's rose to
 * 3.9x (4.47 against 1.14) as its accuracy sank to 47%. Batch losses
 * jump; a mean of 50 steps smooths that, and 3x the run's own minimum is
 * 2.5 times what the healthy runs did. The second bound keeps a net that
 * fits its data almost perfectly (minimum 0.01) from firing on a
 * harmless rise to 0.1: a mean loss 1.5x that of guessing every class
 * with equal probability (ln(classes)) is a net worse than one that
 * knows nothing, which a learning run never is. */
#include "train_internal.h"

#include <math.h>

static const double DIVERGE_FACTOR = 3.0;
static const double DIVERGE_CHANCE = 1.5;

/* Mean of the full window, summed in index order (not time order: a
 * fixed order is what makes it reproducible, and the ring's is fixed). */
static double window_mean(const l2rw__diverge *d)
{
    double s = 0.0;
    for (int i = 0; i < DIVERGE_WINDOW; i++) s += d->recent[i];
    return s / DIVERGE_WINDOW;
}

l2rw_status l2rw__diverge_add(l2rw__diverge *d, double loss, long step,
                              int classes, float lr)
{
    d->recent[d->seen % DIVERGE_WINDOW] = loss;
    d->seen++;
    if (d->seen < DIVERGE_WINDOW) return L2RW_OK;
    const double mean = window_mean(d);
    if (d->seen == DIVERGE_WINDOW || mean < d->min_mean) d->min_mean = mean;
    const double chance = DIVERGE_CHANCE * log(classes > 1 ? classes : 2);
    if (!(mean > DIVERGE_FACTOR * d->min_mean && mean > chance))
        return L2RW_OK;
    return l2rw__fail(L2RW_ERR_DIVERGED,
                      "training diverged at step %ld: the mean training "
                      "loss of the last %d steps is %.3g, %.1fx its minimum "
                      "%.3g (and above %g ln %d = %.2f, worse than "
                      "guessing); try --lr %g or --clip-grad-norm 1 "
                      "(--no-divergence-check trains on regardless)",
                      step, DIVERGE_WINDOW, mean, mean / d->min_mean,
                      d->min_mean, DIVERGE_CHANCE, classes, chance,
                      (double)lr / 10);
}
