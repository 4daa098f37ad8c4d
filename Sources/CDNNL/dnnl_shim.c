// oneDNN bf16 matmul behind dlopen: the build needs only the headers (libdnnl-dev); without them this file
// compiles to fallbacks that report "built without oneDNN headers". dlopen (not linking) lets RecKit run where the
// library is missing (fp32 still works).
//
// Threading: RecKit's own pool splits each GEMM and calls this from its threads, one block per thread, so oneDNN
// must run single-threaded inside each call. libgomp's team size is forced to 1 (OMP_NUM_THREADS while it loads,
// and omp_set_num_threads(1) in every calling thread, since the team size is a per-thread setting), so oneDNN's
// `parallel` runs the kernel inline. Each calling thread keeps its own primitives, stream, memory objects and
// scratchpad (thread-local cache, LRU), so calls from different threads share nothing mutable and need no lock.
#include "CDNNL.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#define HAVE_DNNL 1
#endif

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int state = -1;            // -1 not tried, 0 unavailable, 1 ready
static char status[256] = "not loaded";

#ifdef HAVE_DNNL
// Every oneDNN entry point used, once: declared as p_<name> pointers here, bound by dlsym in load_locked.
#define DNNL_FUNCS(X) \
    X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_stream_destroy) X(dnnl_stream_wait) \
    X(dnnl_memory_desc_init_by_strides) X(dnnl_matmul_desc_init) X(dnnl_memory_desc_get_size) \
    X(dnnl_primitive_attr_create) X(dnnl_primitive_attr_destroy) X(dnnl_post_ops_create) \
    X(dnnl_post_ops_destroy) X(dnnl_post_ops_append_sum) X(dnnl_primitive_attr_set_post_ops) \
    X(dnnl_primitive_attr_set_scratchpad_mode) \
    X(dnnl_primitive_desc_create) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_desc_query_md) \
    X(dnnl_primitive_create) X(dnnl_primitive_destroy) X(dnnl_memory_create) X(dnnl_memory_destroy) \
    X(dnnl_memory_set_data_handle) X(dnnl_primitive_execute) X(dnnl_version) X(dnnl_get_effective_cpu_isa)
#define DECLARE(name) static __typeof__(&name) p_##name;
DNNL_FUNCS(DECLARE)
#undef DECLARE
static void (*p_omp_set_num_threads)(int);

static dnnl_engine_t engine;

enum { KEY = 9, CACHE = 64 };
typedef struct {
    int64_t key[KEY];
    uint64_t used;                  // LRU clock
    dnnl_primitive_t prim;
    dnnl_memory_t ma, mb, mc, scratch;
} entry_t;

// One per calling thread (pthread key with a destructor, so short-lived threads do not leak).
typedef struct {
    dnnl_stream_t stream;
    uint64_t clock;
    int count;
    entry_t entries[CACHE];
} thread_cache_t;
static pthread_key_t cache_key;

static void destroy_entry(entry_t *e) {
    if (e->prim) p_dnnl_primitive_destroy(e->prim);
    if (e->ma) p_dnnl_memory_destroy(e->ma);
    if (e->mb) p_dnnl_memory_destroy(e->mb);
    if (e->mc) p_dnnl_memory_destroy(e->mc);
    if (e->scratch) p_dnnl_memory_destroy(e->scratch);
    memset(e, 0, sizeof *e);
}

static void destroy_cache(void *p) {
    thread_cache_t *t = p;
    for (int i = 0; i < t->count; i++) destroy_entry(&t->entries[i]);
    if (t->stream) p_dnnl_stream_destroy(t->stream);
    free(t);
}

static int load_locked(void) {
    // The team size libgomp starts with; the user's value is put back once it has loaded (child processes see
    // their own environment), and every calling thread also sets it to 1 (see the header comment).
    const char *user = getenv("OMP_NUM_THREADS");
    char *saved = user ? strdup(user) : NULL;
    setenv("OMP_NUM_THREADS", "1", 1);
    void *h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libdnnl.so", RTLD_NOW | RTLD_LOCAL);
    if (saved) { setenv("OMP_NUM_THREADS", saved, 1); free(saved); } else unsetenv("OMP_NUM_THREADS");
    if (!h) {
        snprintf(status, sizeof status, "oneDNN not found (%s); install libdnnl-dev (scripts/bootstrap.sh)", dlerror());
        return 0;
    }
#define BIND(name) p_##name = (__typeof__(p_##name))dlsym(h, #name); \
        if (!p_##name) { snprintf(status, sizeof status, "oneDNN lacks %s", #name); return 0; }
    DNNL_FUNCS(BIND)
#undef BIND
    void *gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (gomp) p_omp_set_num_threads = (void (*)(int))dlsym(gomp, "omp_set_num_threads");
    if (pthread_key_create(&cache_key, destroy_cache) != 0 ||
        p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) {
        snprintf(status, sizeof status, "oneDNN engine creation failed");
        return 0;
    }
    dnnl_cpu_isa_t isa = p_dnnl_get_effective_cpu_isa();
    const dnnl_version_t *v = p_dnnl_version();
    const char *isaName = (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx ? "avx512_core_amx"
        : (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16" : "no native bf16";
    snprintf(status, sizeof status, "oneDNN %d.%d.%d, %s", v->major, v->minor, v->patch, isaName);
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16) {
        // oneDNN would emulate bf16 (slower than fp32): refuse rather than silently run slow.
        snprintf(status + strlen(status), sizeof status - strlen(status), ": this CPU has neither AMX nor AVX512-BF16");
        return 0;
    }
    return 1;
}

int reckit_dnnl_load(void) {
    pthread_mutex_lock(&lock);
    if (state < 0) state = load_locked();
    int s = state;
    pthread_mutex_unlock(&lock);
    return s;
}

const char *reckit_dnnl_status(void) { reckit_dnnl_load(); return status; }

/// This thread's cache, created on first use (with its stream, and oneDNN pinned to one thread here).
static thread_cache_t *thread_cache(void) {
    thread_cache_t *t = pthread_getspecific(cache_key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (p_omp_set_num_threads) p_omp_set_num_threads(1);
    if (p_dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags) != dnnl_success ||
        pthread_setspecific(cache_key, t) != 0) {
        if (t->stream) p_dnnl_stream_destroy(t->stream);
        free(t);
        return NULL;
    }
    return t;
}

static int create(const int64_t key[KEY], entry_t *e) {
    int64_t m = key[2], n = key[3], k = key[4], lda = key[5], ldb = key[6], ldc = key[7];
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_dims_t adims = {m, k}, bdims = {k, n}, cdims = {m, n};
    dnnl_dims_t as = {key[0] ? 1 : lda, key[0] ? lda : 1};
    dnnl_dims_t bs = {key[1] ? 1 : ldb, key[1] ? ldb : 1};
    dnnl_dims_t cs = {ldc, 1};
    dnnl_status_t s;
    if ((s = p_dnnl_memory_desc_init_by_strides(&ad, 2, adims, dnnl_bf16, as)) != dnnl_success) return s;
    if ((s = p_dnnl_memory_desc_init_by_strides(&bd, 2, bdims, dnnl_bf16, bs)) != dnnl_success) return s;
    if ((s = p_dnnl_memory_desc_init_by_strides(&cd, 2, cdims, dnnl_f32, cs)) != dnnl_success) return s;
    dnnl_matmul_desc_t md;
    if ((s = p_dnnl_matmul_desc_init(&md, &ad, &bd, NULL, &cd)) != dnnl_success) return s;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    if ((s = p_dnnl_primitive_attr_create(&attr)) != dnnl_success) return s;
    // The scratchpad is this entry's own (not the library's shared one), so threads never share it.
    p_dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (key[8]) {
        p_dnnl_post_ops_create(&ops);
        p_dnnl_post_ops_append_sum(ops, 1.0f);
        p_dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    dnnl_primitive_desc_t pd;
    s = p_dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL);
    if (ops) p_dnnl_post_ops_destroy(ops);
    p_dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return s;
    const dnnl_memory_desc_t *sd = p_dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    s = p_dnnl_primitive_create(&e->prim, pd);
    if (s == dnnl_success && sd && p_dnnl_memory_desc_get_size(sd) > 0)
        s = p_dnnl_memory_create(&e->scratch, sd, engine, DNNL_MEMORY_ALLOCATE);
    p_dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) return s;
    if ((s = p_dnnl_memory_create(&e->ma, &ad, engine, DNNL_MEMORY_NONE)) != dnnl_success) return s;
    if ((s = p_dnnl_memory_create(&e->mb, &bd, engine, DNNL_MEMORY_NONE)) != dnnl_success) return s;
    if ((s = p_dnnl_memory_create(&e->mc, &cd, engine, DNNL_MEMORY_NONE)) != dnnl_success) return s;
    memcpy(e->key, key, sizeof e->key);
    return dnnl_success;
}

/// The entry for `key` in this thread's cache, created (evicting the least recently used) when missing.
static entry_t *entry_for(thread_cache_t *t, const int64_t key[KEY], int *status_out) {
    t->clock++;
    for (int i = 0; i < t->count; i++)
        if (memcmp(t->entries[i].key, key, sizeof t->entries[i].key) == 0) { t->entries[i].used = t->clock; return &t->entries[i]; }
    entry_t *e;
    if (t->count < CACHE) {
        e = &t->entries[t->count++];
    } else {
        e = &t->entries[0];
        for (int i = 1; i < CACHE; i++) if (t->entries[i].used < e->used) e = &t->entries[i];
        destroy_entry(e);
    }
    int s = create(key, e);
    if (s != dnnl_success) { destroy_entry(e); memset(e->key, 0xff, sizeof e->key); *status_out = s; return NULL; }
    e->used = t->clock;
    return e;
}

int reckit_dnnl_bf16_gemm(int transA, int transB, int64_t m, int64_t n, int64_t k,
                          const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                          int accumulate, float *c, int64_t ldc) {
    if (reckit_dnnl_load() != 1) return -1;
    thread_cache_t *t = thread_cache();
    if (!t) return -2;
    int64_t key[KEY] = {transA != 0, transB != 0, m, n, k, lda, ldb, ldc, accumulate != 0};
    int s = dnnl_success;
    entry_t *e = entry_for(t, key, &s);
    if (!e) return s;
    p_dnnl_memory_set_data_handle(e->ma, (void *)a);
    p_dnnl_memory_set_data_handle(e->mb, (void *)b);
    p_dnnl_memory_set_data_handle(e->mc, c);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->ma}, {DNNL_ARG_WEIGHTS, e->mb}, {DNNL_ARG_DST, e->mc},
                               {DNNL_ARG_SCRATCHPAD, e->scratch}};
    s = p_dnnl_primitive_execute(e->prim, t->stream, e->scratch ? 4 : 3, args);
    if (s == dnnl_success) s = p_dnnl_stream_wait(t->stream);
    return s;
}

#else  // no oneDNN headers at build time

int reckit_dnnl_load(void) {
    if (state < 0) {
        snprintf(status, sizeof status, "built without oneDNN headers (install libdnnl-dev and rebuild)");
        state = 0;
    }
    return 0;
}
const char *reckit_dnnl_status(void) { reckit_dnnl_load(); return status; }
int reckit_dnnl_bf16_gemm(int transA, int transB, int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                          const uint16_t *b, int64_t ldb, int accumulate, float *c, int64_t ldc) {
    (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb;
    (void)accumulate; (void)c; (void)ldc;
    return -1;
}
#endif
