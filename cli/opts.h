/* Table-driven option parsing for the l2rw subcommands.
 *
 * Each option names the variable it fills; `--help` prints the table with
 * each option's default, read from that variable before parsing, so the
 * help text can never disagree with the code. Accepts `--name value` and
 * `--name=value`; numbers must parse completely (an underflow to a tiny
 * value is a number, an overflow is out of range) and lie in [lo, hi]. */
#ifndef L2RW_CLI_OPTS_H
#define L2RW_CLI_OPTS_H

#include "l2rw.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    OPT_STR,    /* const char ** */
    OPT_INT,    /* int * */
    OPT_LONG,   /* long * */
    OPT_U64,    /* uint64_t * */
    OPT_FLOAT,  /* float * */
    OPT_DOUBLE, /* double * */
    OPT_FLAG    /* int *, set to 1, takes no value */
} opt_type;

typedef struct {
    const char *name;    /* without the leading "--" */
    opt_type type;
    void *dst;
    const char *metavar; /* "N", "SPEC", ... */
    const char *help;    /* one line */
    double lo, hi;       /* range of numbers (ignored when lo > hi) */
    int seen;            /* set by opts_parse */
} opt_def;

/* Error messages are "PROG: ..." on one line. */
enum { OPTS_ERR_MAX = 512 };

/* Parses argv[1..argc) (argv[0] is the subcommand). Returns 0 on
 * success, 1 when --help was given (help already printed to out), 2 on
 * bad usage with a one-line message in err. Positional arguments are
 * refused unless pos/max_pos allow them (then collected in order). */
int opts_parse(opt_def *opts, int n_opts, int argc, char **argv,
               const char *prog, const char *usage, FILE *out,
               const char **pos, int max_pos, int *n_pos, char *err,
               size_t err_size);

/* Sets option `name` (if it exists and was not given on the command line)
 * from text, as if given. Returns 0, or 2 with err filled. */
int opts_set_default(opt_def *opts, int n_opts, const char *name,
                     const char *text, const char *prog, char *err,
                     size_t err_size);

/* Prints the usage line and every option with its current value as the
 * default. */
void opts_help(const opt_def *opts, int n_opts, const char *usage,
               FILE *out);

/* Parses "A,B,C" into up to max longs (strictly increasing when
 * increasing != 0). Returns the count, or -1 with a message in err. */
int opts_parse_longs(const char *s, long *out, int max, int increasing,
                     char *err, size_t err_size);

/* The command line as one string (arguments with spaces quoted). */
void opts_join_argv(int argc, char **argv, char *buf, size_t size);

/* Prints msg (one line) to stderr and returns 2, the usage exit status. */
int opts_usage_error(const char *msg);

/* --device NAME of command cmd ("l2rw train"): 0 with the device in out
 * when the command can run there, else prints "cmd: --device NAME: why"
 * (an unknown name, a build without CUDA, no driver, no device, or a
 * command that runs on the CPU only: cpu_only) and returns 2. */
int opts_device(const char *cmd, const char *name, int cpu_only,
                l2rw_device *out);
/* --data-place TEXT of command cmd into *out: 0, or 2 after the usage
 * error "cmd: --data-place: why". */
int opts_data_place(const char *cmd, const char *text, l2rw_data_place *out);
/* --tf32 (the flag's value on) of command cmd on device dev: sets
 * l2rw_set_tf32 and returns 0, or prints "cmd: --tf32 is a CUDA mode"
 * and returns 2 when it was given for another device (a value restored
 * from a checkpoint is kept whatever the device: it does nothing there). */
int opts_tf32(const char *cmd, const opt_def *opts, int n_opts, int on,
              const l2rw_device *dev);

#endif
