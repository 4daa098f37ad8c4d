// CRecKitShims: the few things Swift cannot express directly. Everything is `static inline`,
// so calls are inlined into the Swift kernels at no cost.
#pragma once
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/// Hint the CPU to bring the cache line holding `p` into L1 (read intent).
static inline void reckit_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Hint the CPU to bring the cache line holding `p` into L2 (for far-ahead prefetches that must not crowd L1).
static inline void reckit_prefetch_l2(const void *p) { __builtin_prefetch(p, 0, 2); }

/// Hint the CPU to bring the cache line holding `p` into L1 with intent to write (read-modify-write rows).
static inline void reckit_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }

/// Spin-wait hint (x86 `pause`); keeps a spinning thread polite to its hyper-thread sibling.
static inline void reckit_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// Executes `cpuid` with `leaf`/`subleaf`; returns 0 when the leaf is unsupported (outputs then zero).
static inline int reckit_cpuid(uint32_t leaf, uint32_t subleaf,
                               uint32_t *eax, uint32_t *ebx, uint32_t *ecx, uint32_t *edx) {
    *eax = *ebx = *ecx = *edx = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(leaf, subleaf, &a, &b, &c, &d)) return 0;
    *eax = a; *ebx = b; *ecx = c; *edx = d;
    return 1;
#else
    (void)leaf; (void)subleaf;
    return 0;
#endif
}

/// Reads XCR0 (which register states the OS saves); AVX/AVX-512 are usable only when the OS enables them.
static inline uint64_t reckit_xgetbv0(void) {
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
#else
    return 0;
#endif
}
