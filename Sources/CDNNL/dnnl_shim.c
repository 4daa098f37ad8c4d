// oneDNN bf16 matmul behind dlopen: the build needs only the headers (libdnnl-dev); without them this file
// compiles to fallbacks that report "built without oneDNN headers". dlopen (not linking) lets RecKit run where the
// library is missing (fp32 still works) and set OMP_WAIT_POLICY before libgomp starts.
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
    X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_stream_wait) \
    X(dnnl_memory_desc_init_by_strides) X(dnnl_matmul_desc_init) \
    X(dnnl_primitive_attr_create) X(dnnl_primitive_attr_destroy) X(dnnl_post_ops_create) \
    X(dnnl_post_ops_destroy) X(dnnl_post_ops_append_sum) X(dnnl_primitive_attr_set_post_ops) \
    X(dnnl_primitive_desc_create) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_desc_query) \
    X(dnnl_primitive_create) X(dnnl_memory_create) X(dnnl_memory_set_data_handle) \
    X(dnnl_primitive_execute) X(dnnl_version) X(dnnl_get_effective_cpu_isa)
#define DECLARE(name) static __typeof__(&name) p_##name;
DNNL_FUNCS(DECLARE)
#undef DECLARE

static dnnl_engine_t engine;
static dnnl_stream_t stream;

typedef struct {
    int64_t key[10];
    dnnl_primitive_t prim;
    dnnl_memory_t ma, mb, mc;
} entry_t;
enum { CACHE = 128 };
static entry_t cache[CACHE];
static int cached = 0;

static int load_locked(void) {
    // libgomp reads these once, when it loads: let idle OpenMP threads sleep instead of spinning, so they do
    // not steal the cores from RecKit's own pool between GEMMs. A user's value wins.
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    void *h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libdnnl.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(status, sizeof status, "oneDNN not found (%s); install libdnnl-dev (scripts/bootstrap.sh)", dlerror());
        return 0;
    }
#define BIND(name) p_##name = (__typeof__(p_##name))dlsym(h, #name); \
        if (!p_##name) { snprintf(status, sizeof status, "oneDNN lacks %s", #name); return 0; }
    DNNL_FUNCS(BIND)
#undef BIND
    if (p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
        p_dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(status, sizeof status, "oneDNN engine/stream creation failed");
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

static entry_t *lookup(const int64_t key[10]) {
    for (int i = 0; i < cached; i++)
        if (memcmp(cache[i].key, key, sizeof cache[i].key) == 0) return &cache[i];
    return NULL;
}

static int create(const int64_t key[10], entry_t *e) {
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
    if (key[8]) {
        p_dnnl_primitive_attr_create(&attr);
        p_dnnl_post_ops_create(&ops);
        p_dnnl_post_ops_append_sum(ops, 1.0f);
        p_dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    dnnl_primitive_desc_t pd;
    s = p_dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL);
    if (ops) p_dnnl_post_ops_destroy(ops);
    if (attr) p_dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return s;
    s = p_dnnl_primitive_create(&e->prim, pd);
    p_dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) return s;
    if ((s = p_dnnl_memory_create(&e->ma, &ad, engine, DNNL_MEMORY_NONE)) != dnnl_success) return s;
    if ((s = p_dnnl_memory_create(&e->mb, &bd, engine, DNNL_MEMORY_NONE)) != dnnl_success) return s;
    if ((s = p_dnnl_memory_create(&e->mc, &cd, engine, DNNL_MEMORY_NONE)) != dnnl_success) return s;
    memcpy(e->key, key, sizeof e->key);
    return dnnl_success;
}

int reckit_dnnl_bf16_gemm(int transA, int transB, int64_t m, int64_t n, int64_t k,
                          const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                          int accumulate, float *c, int64_t ldc) {
    if (reckit_dnnl_load() != 1) return -1;
    int64_t key[10] = {transA != 0, transB != 0, m, n, k, lda, ldb, ldc, accumulate != 0, 0};
    // One caller at a time: the cached memory objects are rebound to this call's pointers.
    pthread_mutex_lock(&lock);
    entry_t *e = lookup(key);
    if (!e) {
        if (cached == CACHE) { pthread_mutex_unlock(&lock); return -2; }
        int s = create(key, &cache[cached]);
        if (s != dnnl_success) { pthread_mutex_unlock(&lock); return s; }
        e = &cache[cached++];
    }
    p_dnnl_memory_set_data_handle(e->ma, (void *)a);
    p_dnnl_memory_set_data_handle(e->mb, (void *)b);
    p_dnnl_memory_set_data_handle(e->mc, c);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->ma}, {DNNL_ARG_WEIGHTS, e->mb}, {DNNL_ARG_DST, e->mc}};
    int s = p_dnnl_primitive_execute(e->prim, stream, 3, args);
    if (s == dnnl_success) s = p_dnnl_stream_wait(stream);
    pthread_mutex_unlock(&lock);
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
