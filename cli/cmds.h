/* Subcommands of the l2rw command. Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 a failed check or run, 2 bad usage or bad input. */
#ifndef L2RW_CLI_CMDS_H
#define L2RW_CLI_CMDS_H

int l2rw_cmd_train(int argc, char **argv);     /* cmd_train.c */
int l2rw_cmd_eval(int argc, char **argv);      /* cmd_eval.c */
int l2rw_cmd_bench(int argc, char **argv);     /* cmd_bench.c */
int l2rw_cmd_check(int argc, char **argv);     /* cmd_check.c */
int l2rw_cmd_reproduce(int argc, char **argv); /* cmd_reproduce.c */
int l2rw_cmd_suspects(int argc, char **argv);  /* cmd_suspects.c */
int l2rw_cmd_predict(int argc, char **argv);   /* cmd_predict.c */
int l2rw_cmd_export(int argc, char **argv);    /* cmd_export.c */

#endif
