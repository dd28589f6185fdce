/* The l2rw command the CLI cases run: the uninstrumented build under
 * test, $L2RW_BUILD/l2rw (scripts/run_tests.sh exports the BUILD of
 * `make BUILD=... test`), else ./build/l2rw. */
#ifndef L2RW_TEST_CLI_PATH_H
#define L2RW_TEST_CLI_PATH_H

#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__)
__attribute__((unused))
#endif
static const char *tu_cli(void)
{
    static char path[512];
    if (!path[0]) {
        const char *b = getenv("L2RW_BUILD");
        snprintf(path, sizeof path, "%s/l2rw", b && *b ? b : "./build");
    }
    return path;
}

#define TU_CLI tu_cli()

#endif
