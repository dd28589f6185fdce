/* The l2rw command: dispatch to the subcommands of cmds.h. */
#include "cmds.h"
#include "group.h"

#include "l2rw.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"train", l2rw_cmd_train,
     "train a network (--data SPEC --model NAME --method NAME ...)"},
    {"eval", l2rw_cmd_eval, "test a saved model (--load FILE --data SPEC)"},
    {"predict", l2rw_cmd_predict,
     "class probabilities of a saved model (--load FILE --data SPEC)"},
    {"suspects", l2rw_cmd_suspects,
     "the training examples a run trusted least (RUN_DIR [--top N])"},
    {"export", l2rw_cmd_export,
     "write a saved model as ONNX (--load FILE OUT.onnx)"},
    {"bench", l2rw_cmd_bench, "time plain and l2rw steps of a model"},
    {"check", l2rw_cmd_check, "self test of the built library"},
    {"reproduce", l2rw_cmd_reproduce,
     "the paper's experiments: reproduce imbalance|noise [--quick]"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *out)
{
    fprintf(out,
            "l2rw %s: learning to reweight examples for robust deep "
            "learning\n\nusage: l2rw COMMAND [options]\n\ncommands:\n",
            L2RW_VERSION);
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`l2rw COMMAND --help` lists a command's options with "
                 "their defaults.\nExit status: 0 success, 1 a failed run "
                 "or check, 2 bad usage or bad input.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        /* the commands' own --help texts too: every option with its
         * default */
        usage(stdout);
        for (int i = 0; i < N_COMMANDS; i++) {
            char name[32], help[] = "--help";
            char *args[] = {name, help, NULL};
            snprintf(name, sizeof name, "%s", commands[i].name);
            printf("\n== l2rw %s ==\n", commands[i].name);
            fflush(stdout);
            commands[i].run(2, args);
        }
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("l2rw %s\n", L2RW_VERSION);
        return 0;
    }
    /* under mpirun -np P every other command would run P times over,
     * each copy writing the same files */
    if (cli_group_launched_size() > 1 && strcmp(argv[1], "train") != 0) {
        if (cli_group_launched_rank() == 0)
            fprintf(stderr, "l2rw %s: only `l2rw train` runs as one of "
                    "several processes (started as one of %d); run it "
                    "without mpirun\n", argv[1], cli_group_launched_size());
        return 2;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "l2rw: unknown command '%s' (try l2rw --help)\n",
            argv[1]);
    return 2;
}
