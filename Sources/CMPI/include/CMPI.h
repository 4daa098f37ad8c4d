// CMPI: a thin C bridge to Open MPI, loaded at run time with dlopen (RTLD_GLOBAL, as Open MPI's plugins need).
// Swift sees only these functions; MPI's handle types stay in mpi_shim.c. Every call comes from one thread per
// process (MPI_THREAD_FUNNELED). Byte counts are int64 here and split into int-sized pieces inside.
#pragma once
#include <stdint.h>

/// Loads libmpi.so.40 (once). Returns 1 when MPI is usable, 0 otherwise; `reckit_mpi_status()` then says why.
int reckit_mpi_load(void);

/// A human-readable status: the MPI library version when loaded, or the reason it is not.
const char *reckit_mpi_status(void);

/// Whether this process was started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE / PMIX_RANK).
int reckit_mpi_launched(void);

/// MPI_Init_thread(FUNNELED) and errors returned (MPI_ERRORS_RETURN) instead of aborting; writes rank and size.
/// Returns 0 or an MPI error code (negative: not loaded).
int reckit_mpi_init(int *rank, int *size);
int reckit_mpi_finalize(void);
/// Ends every process of the job with `code` (a fatal error on one rank must not leave the others waiting).
void reckit_mpi_abort(int code);
/// The text of an MPI error code.
const char *reckit_mpi_error_string(int code);

/// In-place sum over all ranks of `count` floats / doubles.
int reckit_mpi_allreduce_float(float *buffer, int64_t count);
int reckit_mpi_allreduce_double(double *buffer, int64_t count);
/// Starts an in-place float sum; `reckit_mpi_wait` finishes it. Returns a request handle (>= 0) or a negative error.
int64_t reckit_mpi_iallreduce_float(float *buffer, int64_t count);
int reckit_mpi_wait(int64_t request);

/// All-to-all of bytes with per-peer counts and displacements (each < 2^31).
int reckit_mpi_alltoallv(const void *send, const int64_t *sendCounts, const int64_t *sendDispls,
                         void *recv, const int64_t *recvCounts, const int64_t *recvDispls);
/// Every rank's `count` bytes, concatenated in rank order into `recv` (counts per rank given).
int reckit_mpi_allgatherv(const void *send, int64_t count, void *recv, const int64_t *recvCounts, const int64_t *recvDispls);
int reckit_mpi_bcast(void *buffer, int64_t count, int root);
int reckit_mpi_barrier(void);
double reckit_mpi_wtime(void);
