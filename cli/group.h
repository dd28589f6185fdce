/* Training over several processes: the process group of an MPI job
 * (`mpirun -np P l2rw train ...`), as the library's l2rw_comm. Built with
 * Open MPI when the Makefile finds mpicc (L2RW_HAVE_MPI); without it a
 * job of several processes is refused with the reason, and one process
 * runs as always. */
#ifndef L2RW_CLI_GROUP_H
#define L2RW_CLI_GROUP_H

#include "l2rw.h"

#include <stddef.h>

typedef struct {
    int active;     /* 1: MPI is initialised, comm is the job's */
    l2rw_comm comm; /* rank 0 of 1 when not active */
} cli_group;

/* The number of processes the launcher (mpirun, srun) started, from its
 * environment; 1 when not launched so. */
int cli_group_launched_size(void);
/* This process's rank by the launcher's environment (0 when none), for
 * messages before MPI is up. */
int cli_group_launched_rank(void);

/* Threads per process when --threads is not given: the cores divided
 * among the processes on this machine (OMPI_COMM_WORLD_LOCAL_SIZE), at
 * least 1, so that P processes do not each take every core. */
int cli_group_threads(void);

/* Join the job when the launcher started more than one process (MPI_Init
 * and the comm), else a group of one. 0, or -1 with the reason in why
 * (for example a build without MPI under mpirun -np 2). */
int cli_group_start(cli_group *g, char *why, size_t why_size);
/* Leave the job normally (MPI_Finalize); nothing for a group of one. */
void cli_group_end(cli_group *g);
/* A rank that cannot go on ends the whole job with `code` (MPI_Abort),
 * so that the others do not wait for it; returns `code` otherwise. */
int cli_group_fail(cli_group *g, int code);

#endif
