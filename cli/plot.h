/* SVG plots through gnuplot (run as a child process by the CLI; the
 * library never spawns processes). Each SVG is drawn into a temporary
 * file and renamed over its final name, so a failed or killed gnuplot
 * never leaves a half-written plot. */
#ifndef L2RW_CLI_PLOT_H
#define L2RW_CLI_PLOT_H

#include <stddef.h>

/* Runs a gnuplot script whose only output is `svg` (the script must use
 * the placeholder OUTPUT in its `set output 'OUTPUT'` line). 0 on
 * success; nonzero with a one-line reason in err. */
int plot_svg(const char *script, const char *svg, char *err, size_t size);

/* The two plots of a training run from DIR/metrics.csv:
 * DIR/accuracy.svg (test accuracy over steps) and DIR/weights.svg
 * (weight share on clean vs corrupted examples over steps; only when
 * `weights` is nonzero, as it needs corrupted labels). */
int plot_run(const char *dir, int weights, char *err, size_t size);

#endif
