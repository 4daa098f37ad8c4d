// CLibURing: batched positional reads and writes through io_uring (Debian's liburing-dev, linked), for RecKit's
// tiered embedding storage. One call runs a whole batch of requests with up to the ring's depth in flight and
// returns when every one has completed; a short transfer is finished with pread/pwrite. A process where io_uring is
// unavailable (old kernel, seccomp) sees reckit_uring_init fail, and RecKit falls back to a pread thread pool.
#pragma once
#include <errno.h>
#include <liburing.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

typedef struct {
    struct io_uring ring;
    unsigned depth;
} reckit_uring;

/// 0 on success, -errno otherwise (then the ring must not be used).
static inline int reckit_uring_init(reckit_uring *u, unsigned depth) {
    u->depth = depth;
    return io_uring_queue_init(depth, &u->ring, 0);
}

static inline void reckit_uring_exit(reckit_uring *u) { io_uring_queue_exit(&u->ring); }

/// Finishes a transfer that the ring left short (or that must be retried) with plain pread/pwrite.
static inline int reckit_uring_finish(int write, int fd, char *buf, size_t len, int64_t off) {
    while (len > 0) {
        ssize_t n = write ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return -EIO;  // past the end of the file: a request outside the records
        buf += n; len -= (size_t)n; off += n;
    }
    return 0;
}

/// Runs `n` reads (write = 0) or writes (write = 1) on `fd`: request i moves lens[i] bytes between bufs[i] and the
/// file at offs[i]. Returns 0 when all completed, or the -errno of the first failure (the others still complete).
static inline int reckit_uring_run(reckit_uring *u, int write, int fd, void *const *bufs, const uint32_t *lens,
                                   const int64_t *offs, size_t n) {
    size_t next = 0, done = 0, inflight = 0;
    int failure = 0;
    while (done < n) {
        while (next < n && inflight < u->depth) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
            if (!sqe) break;
            if (write) io_uring_prep_write(sqe, fd, bufs[next], lens[next], (uint64_t)offs[next]);
            else io_uring_prep_read(sqe, fd, bufs[next], lens[next], (uint64_t)offs[next]);
            io_uring_sqe_set_data64(sqe, (uint64_t)next);
            next++; inflight++;
        }
        int r = io_uring_submit_and_wait(&u->ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) return r;
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe) {
            size_t i = (size_t)io_uring_cqe_get_data64(cqe);
            int res = cqe->res;
            seen++;
            if (res < 0 && res != -EAGAIN && res != -EINTR) {
                if (!failure) failure = res;
            } else {
                size_t got = res < 0 ? 0 : (size_t)res;
                if (got < lens[i]) {
                    int f = reckit_uring_finish(write, fd, (char *)bufs[i] + got, lens[i] - got, offs[i] + (int64_t)got);
                    if (f && !failure) failure = f;
                }
            }
        }
        io_uring_cq_advance(&u->ring, seen);
        inflight -= seen;
        done += seen;
    }
    return failure;
}
