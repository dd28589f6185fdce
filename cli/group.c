/* The process group of an MPI job as an l2rw_comm (see group.h).
 *
 * Sums are a reduce to rank 0 followed by a broadcast, not an
 * all-reduce: MPI does not promise that an all-reduce leaves the same
 * bits on every rank, and the ranks' parameters must never drift apart.
 * Buffers are sent in chunks whose count fits MPI's int. */
#include "group.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

/* Launchers that say how many processes they started: Open MPI, then
 * MPICH and Slurm (PMI). */
static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK"};

static int env_int(const char *const *vars, int n_vars, int fallback)
{
    for (int i = 0; i < n_vars; i++) {
        const char *v = getenv(vars[i]);
        char *end = NULL;
        long x = v ? strtol(v, &end, 10) : 0;
        if (v && *v && end && !*end && x >= 0 && x < 1 << 24) return (int)x;
    }
    return fallback;
}

int cli_group_launched_size(void)
{
    int n = env_int(size_vars, 2, 1);
    return n < 1 ? 1 : n;
}

int cli_group_launched_rank(void)
{
    return env_int(rank_vars, 2, 0);
}

int cli_group_threads(void)
{
    static const char *const local_vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE",
                                             "MPI_LOCALNRANKS"};
    long cores = omp_get_num_procs();
    int local = env_int(local_vars, 2, cli_group_launched_size());
    long t = cores / (local > 0 ? local : 1);
    return t < 1 ? 1 : (int)t;
}

static void solo(cli_group *g)
{
    g->active = 0;
    g->comm.rank = 0;
    g->comm.size = 1;
    g->comm.ctx = NULL;
    g->comm.sum_f32 = NULL;
    g->comm.sum_f64 = NULL;
}

#ifdef L2RW_HAVE_MPI
#include <mpi.h>

enum { CHUNK = 1 << 26 }; /* elements per MPI call */

static l2rw_status sum_typed(void *buf, size_t n, size_t elem,
                             MPI_Datatype type)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char *p = buf;
    for (size_t done = 0; done < n; done += CHUNK) {
        int k = (int)(n - done < CHUNK ? n - done : CHUNK);
        void *at = p + done * elem;
        int rc = MPI_Reduce(rank == 0 ? MPI_IN_PLACE : at, at, k, type,
                            MPI_SUM, 0, MPI_COMM_WORLD);
        if (rc == MPI_SUCCESS) rc = MPI_Bcast(at, k, type, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return L2RW_ERR_IO;
    }
    return L2RW_OK;
}

static l2rw_status sum_f32(void *ctx, float *buf, size_t n)
{
    (void)ctx;
    return sum_typed(buf, n, sizeof *buf, MPI_FLOAT);
}

static l2rw_status sum_f64(void *ctx, double *buf, size_t n)
{
    (void)ctx;
    return sum_typed(buf, n, sizeof *buf, MPI_DOUBLE);
}

int cli_group_start(cli_group *g, char *why, size_t why_size)
{
    solo(g);
    if (cli_group_launched_size() == 1) return 0;
    int provided = 0, rank = 0, size = 1;
    /* the library's OpenMP threads never call MPI */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) !=
        MPI_SUCCESS) {
        snprintf(why, why_size, "MPI_Init failed");
        return -1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    g->active = 1;
    g->comm.rank = rank;
    g->comm.size = size;
    g->comm.sum_f32 = sum_f32;
    g->comm.sum_f64 = sum_f64;
    return 0;
}

void cli_group_end(cli_group *g)
{
    if (g->active) MPI_Finalize();
    g->active = 0;
}

int cli_group_fail(cli_group *g, int code)
{
    if (g->active) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    return code;
}

#else /* built without MPI */

int cli_group_start(cli_group *g, char *why, size_t why_size)
{
    solo(g);
    int n = cli_group_launched_size();
    if (n == 1) return 0;
    /* P copies of one run would each train alone and write over each
     * other's outputs */
    snprintf(why, why_size, "started as one of %d processes, but this l2rw "
             "was built without MPI (install libopenmpi-dev, e.g. with "
             "`sh scripts/deps.sh mpi`, and run make again)", n);
    return -1;
}

void cli_group_end(cli_group *g)
{
    (void)g;
}

int cli_group_fail(cli_group *g, int code)
{
    (void)g;
    return code;
}

#endif
