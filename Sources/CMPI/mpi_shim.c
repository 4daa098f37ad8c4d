// Open MPI behind dlopen: the build needs only the headers (libopenmpi-dev); without them this file compiles to
// fallbacks that report "built without MPI headers", and RecKit runs single-process. dlopen (not linking) also keeps
// libmpi out of every process that never trains distributed.
#include "CMPI.h"
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// RECKIT_WITHOUT_MPI builds the fallbacks even where the headers exist (checking that path compiles).
#if defined(RECKIT_WITHOUT_MPI)
#elif __has_include(<openmpi/mpi.h>)
#include <openmpi/mpi.h>
#define HAVE_MPI 1
#elif __has_include(<mpi.h>)
#include <mpi.h>
#define HAVE_MPI 1
#endif

static char status[320] = "not loaded";

int reckit_mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL || getenv("PMI_RANK") != NULL;
}

#ifdef HAVE_MPI
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int state = -1;            // -1 not tried, 0 unavailable, 1 ready

#define MPI_FUNCS(X) \
    X(MPI_Init_thread) X(MPI_Finalize) X(MPI_Abort) X(MPI_Comm_rank) X(MPI_Comm_size) X(MPI_Comm_set_errhandler) \
    X(MPI_Error_string) X(MPI_Allreduce) X(MPI_Iallreduce) X(MPI_Wait) X(MPI_Alltoallv) X(MPI_Allgatherv) \
    X(MPI_Bcast) X(MPI_Barrier) X(MPI_Wtime) X(MPI_Get_library_version) X(MPI_Initialized) X(MPI_Finalized)
#define DECLARE(name) static __typeof__(&name) p_##name;
MPI_FUNCS(DECLARE)
#undef DECLARE
// Open MPI's predefined handles are addresses of exported globals (MPI_COMM_WORLD is &ompi_mpi_comm_world).
static MPI_Comm comm_world;
static MPI_Datatype t_float, t_double, t_byte;
static MPI_Op op_sum;
static MPI_Errhandler errors_return;

static int load_locked(void) {
    void *h = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!h) h = dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        snprintf(status, sizeof status, "Open MPI not found (%s); install libopenmpi-dev openmpi-bin (scripts/bootstrap.sh)", dlerror());
        return 0;
    }
#define BIND(name) p_##name = (__typeof__(p_##name))dlsym(h, #name); \
        if (!p_##name) { snprintf(status, sizeof status, "libmpi lacks %s", #name); return 0; }
    MPI_FUNCS(BIND)
#undef BIND
#define HANDLE(var, type, sym) var = (type)dlsym(h, sym); \
        if (!var) { snprintf(status, sizeof status, "libmpi lacks %s (not Open MPI?)", sym); return 0; }
    HANDLE(comm_world, MPI_Comm, "ompi_mpi_comm_world")
    HANDLE(t_float, MPI_Datatype, "ompi_mpi_float")
    HANDLE(t_double, MPI_Datatype, "ompi_mpi_double")
    HANDLE(t_byte, MPI_Datatype, "ompi_mpi_byte")
    HANDLE(op_sum, MPI_Op, "ompi_mpi_op_sum")
    HANDLE(errors_return, MPI_Errhandler, "ompi_mpi_errors_return")
#undef HANDLE
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    p_MPI_Get_library_version(version, &len);
    char *nl = strchr(version, ',');
    if (nl) *nl = 0;
    snprintf(status, sizeof status, "%s", version);
    return 1;
}

int reckit_mpi_load(void) {
    pthread_mutex_lock(&lock);
    if (state < 0) state = load_locked();
    int s = state;
    pthread_mutex_unlock(&lock);
    return s;
}

const char *reckit_mpi_status(void) { reckit_mpi_load(); return status; }

int reckit_mpi_init(int *rank, int *size) {
    if (!reckit_mpi_load()) return -1;
    int initialized = 0, provided = 0;
    p_MPI_Initialized(&initialized);
    if (!initialized) {
        int rc = p_MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return rc;
    }
    p_MPI_Comm_set_errhandler(comm_world, errors_return);
    p_MPI_Comm_rank(comm_world, rank);
    p_MPI_Comm_size(comm_world, size);
    return 0;
}

int reckit_mpi_finalize(void) {
    if (state != 1) return -1;
    int finalized = 0;
    p_MPI_Finalized(&finalized);
    return finalized ? 0 : p_MPI_Finalize();
}

void reckit_mpi_abort(int code) { if (state == 1) p_MPI_Abort(comm_world, code); }

const char *reckit_mpi_error_string(int code) {
    static __thread char text[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (code < 0 || state != 1) return status;
    if (p_MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", code);
    return text;
}

/// Calls `body` on pieces of at most INT_MAX elements.
#define CHUNKED(count, body) do { int64_t done_ = 0; \
        while (done_ < (count)) { int n_ = (int)((count) - done_ > INT_MAX ? INT_MAX : (count) - done_); \
            int rc_ = (body); if (rc_ != MPI_SUCCESS) return rc_; done_ += n_; } } while (0)

int reckit_mpi_allreduce_float(float *buffer, int64_t count) {
    if (state != 1) return -1;
    CHUNKED(count, p_MPI_Allreduce(MPI_IN_PLACE, buffer + done_, n_, t_float, op_sum, comm_world));
    return 0;
}

int reckit_mpi_allreduce_double(double *buffer, int64_t count) {
    if (state != 1) return -1;
    CHUNKED(count, p_MPI_Allreduce(MPI_IN_PLACE, buffer + done_, n_, t_double, op_sum, comm_world));
    return 0;
}

int64_t reckit_mpi_iallreduce_float(float *buffer, int64_t count) {
    if (state != 1) return -1;
    if (count > INT_MAX) return -2;
    MPI_Request *r = malloc(sizeof *r);
    if (!r) return -3;
    int rc = p_MPI_Iallreduce(MPI_IN_PLACE, buffer, (int)count, t_float, op_sum, comm_world, r);
    if (rc != MPI_SUCCESS) { free(r); return -(int64_t)rc - 16; }
    return (int64_t)(intptr_t)r;
}

int reckit_mpi_wait(int64_t request) {
    if (state != 1 || request < 0) return -1;
    MPI_Request *r = (MPI_Request *)(intptr_t)request;
    int rc = p_MPI_Wait(r, MPI_STATUS_IGNORE);
    free(r);
    return rc;
}

/// int copies of int64 counts (each must fit: the Swift side checks before calling).
static int to_int(const int64_t *in, int *out, int n) {
    for (int i = 0; i < n; i++) { if (in[i] < 0 || in[i] > INT_MAX) return 0; out[i] = (int)in[i]; }
    return 1;
}

int reckit_mpi_alltoallv(const void *send, const int64_t *sendCounts, const int64_t *sendDispls,
                         void *recv, const int64_t *recvCounts, const int64_t *recvDispls) {
    if (state != 1) return -1;
    int size = 0;
    p_MPI_Comm_size(comm_world, &size);
    int *c = malloc(sizeof(int) * 4 * (size_t)size);
    if (!c) return -3;
    int rc = -2;
    if (to_int(sendCounts, c, size) && to_int(sendDispls, c + size, size) && to_int(recvCounts, c + 2 * size, size) &&
        to_int(recvDispls, c + 3 * size, size))
        rc = p_MPI_Alltoallv(send, c, c + size, t_byte, recv, c + 2 * size, c + 3 * size, t_byte, comm_world);
    free(c);
    return rc;
}

int reckit_mpi_allgatherv(const void *send, int64_t count, void *recv, const int64_t *recvCounts, const int64_t *recvDispls) {
    if (state != 1) return -1;
    int size = 0;
    p_MPI_Comm_size(comm_world, &size);
    int *c = malloc(sizeof(int) * 2 * (size_t)size);
    if (!c) return -3;
    int rc = -2;
    if (count <= INT_MAX && to_int(recvCounts, c, size) && to_int(recvDispls, c + size, size))
        rc = p_MPI_Allgatherv(send, (int)count, t_byte, recv, c, c + size, t_byte, comm_world);
    free(c);
    return rc;
}

int reckit_mpi_bcast(void *buffer, int64_t count, int root) {
    if (state != 1) return -1;
    CHUNKED(count, p_MPI_Bcast((char *)buffer + done_, n_, t_byte, root, comm_world));
    return 0;
}

int reckit_mpi_barrier(void) { return state == 1 ? p_MPI_Barrier(comm_world) : -1; }
double reckit_mpi_wtime(void) { return state == 1 ? p_MPI_Wtime() : 0; }

#else  // built without MPI headers

int reckit_mpi_load(void) { snprintf(status, sizeof status, "built without MPI headers (install libopenmpi-dev: scripts/bootstrap.sh)"); return 0; }
const char *reckit_mpi_status(void) { reckit_mpi_load(); return status; }
int reckit_mpi_init(int *rank, int *size) { (void)rank; (void)size; return -1; }
int reckit_mpi_finalize(void) { return -1; }
void reckit_mpi_abort(int code) { (void)code; }
const char *reckit_mpi_error_string(int code) { (void)code; return status; }
int reckit_mpi_allreduce_float(float *b, int64_t n) { (void)b; (void)n; return -1; }
int reckit_mpi_allreduce_double(double *b, int64_t n) { (void)b; (void)n; return -1; }
int64_t reckit_mpi_iallreduce_float(float *b, int64_t n) { (void)b; (void)n; return -1; }
int reckit_mpi_wait(int64_t r) { (void)r; return -1; }
int reckit_mpi_alltoallv(const void *s, const int64_t *sc, const int64_t *sd, void *r, const int64_t *rc, const int64_t *rd) {
    (void)s; (void)sc; (void)sd; (void)r; (void)rc; (void)rd; return -1;
}
int reckit_mpi_allgatherv(const void *s, int64_t n, void *r, const int64_t *rc, const int64_t *rd) { (void)s; (void)n; (void)r; (void)rc; (void)rd; return -1; }
int reckit_mpi_bcast(void *b, int64_t n, int root) { (void)b; (void)n; (void)root; return -1; }
int reckit_mpi_barrier(void) { return -1; }
double reckit_mpi_wtime(void) { return 0; }
#endif
