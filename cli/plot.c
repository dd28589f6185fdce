/* gnuplot driver for the CLI's SVG plots (see plot.h). */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Replaces every "OUTPUT" in script by out into a new string. */
static char *subst_output(const char *script, const char *out)
{
    size_t n = 0, lo = strlen(out);
    for (const char *p = script; (p = strstr(p, "OUTPUT")); p += 6) n++;
    size_t len = strlen(script) + n * lo + 1;
    char *s = malloc(len), *d = s;
    if (!s) return NULL;
    for (const char *p = script; *p;) {
        if (!strncmp(p, "OUTPUT", 6)) {
            memcpy(d, out, lo);
            d += lo;
            p += 6;
        } else {
            *d++ = *p++;
        }
    }
    *d = 0;
    return s;
}

int plot_svg(const char *script, const char *svg, char *err, size_t size)
{
    if (strchr(svg, '\'') || strchr(svg, '\n')) {
        snprintf(err, size, "path %s has a quote or newline", svg);
        return 1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", svg, (long)getpid());
    char *text = subst_output(script, tmp);
    if (!text) {
        snprintf(err, size, "out of memory");
        return 1;
    }
    FILE *p = popen("gnuplot >/dev/null 2>&1", "w");
    if (!p) {
        free(text);
        snprintf(err, size, "cannot run gnuplot");
        return 1;
    }
    int wr = fputs(text, p) >= 0;
    free(text);
    int st = pclose(p);
    if (!wr || st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        remove(tmp);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
            snprintf(err, size, "gnuplot is not installed (apt-get install "
                     "gnuplot-nox)");
        else
            snprintf(err, size, "gnuplot failed on %s", svg);
        return 1;
    }
    if (rename(tmp, svg) != 0) {
        remove(tmp);
        snprintf(err, size, "cannot rename %s", tmp);
        return 1;
    }
    return 0;
}

int plot_run(const char *dir, int weights, char *err, size_t size)
{
    char csv[4096], svg[4096], script[8192];
    if (strchr(dir, '\'') || strchr(dir, '\n')) {
        snprintf(err, size, "directory %s has a quote or newline", dir);
        return 1;
    }
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    snprintf(svg, sizeof svg, "%s/accuracy.svg", dir);
    /* Column 4 is the test accuracy, 8 the clean weight share (-1 when
     * the data carry no corruption: those rows are skipped). */
    snprintf(script, sizeof script,
             "set terminal svg size 720,440 dynamic background rgb 'white'\n"
             "set output 'OUTPUT'\n"
             "set datafile separator ','\n"
             "set key autotitle columnhead bottom right\n"
             "set xlabel 'step'\nset ylabel 'test accuracy (%%)'\n"
             "set grid\n"
             "plot '%s' using 1:($4 >= 0 ? 100*$4 : 1/0) with linespoints "
             "title 'test accuracy'\n", csv);
    if (plot_svg(script, svg, err, size)) return 1;
    if (!weights) return 0;
    snprintf(svg, sizeof svg, "%s/weights.svg", dir);
    snprintf(script, sizeof script,
             "set terminal svg size 720,440 dynamic background rgb 'white'\n"
             "set output 'OUTPUT'\n"
             "set datafile separator ','\n"
             "set key autotitle columnhead center right\n"
             "set xlabel 'step'\nset ylabel 'share of the weight mass (%%)'\n"
             "set yrange [0:100]\nset grid\n"
             "plot '%s' using 1:($8 >= 0 ? 100*$8 : 1/0) with lines lw 2 "
             "title 'clean examples', "
             "'' using 1:($8 >= 0 ? 100*(1-$8) : 1/0) with lines lw 2 "
             "title 'corrupted examples'\n", csv);
    return plot_svg(script, svg, err, size);
}
