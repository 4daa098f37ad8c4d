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

/// Hint the CPU to bring the cache line holding `p` into L2 with intent to write (rows updated later).
static inline void reckit_prefetch_write_l2(const void *p) { __builtin_prefetch(p, 1, 2); }

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

/// CRC-32C (Castagnoli) of `n` bytes continuing from `crc` (start with 0): the shard block checksum.
/// Uses the SSE4.2 `crc32` instruction when the CPU has it, a bitwise loop otherwise.
#include <stddef.h>
#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static inline uint32_t reckit_crc32c_hw(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 8) { uint64_t v; __builtin_memcpy(&v, p, 8); c = __builtin_ia32_crc32di(c, v); p += 8; n -= 8; }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif
static inline uint32_t reckit_crc32c_sw(uint32_t crc, const unsigned char *p, size_t n) {
    uint32_t c = ~crc;
    while (n--) { c ^= *p++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u))); }
    return ~c;
}
static inline uint32_t reckit_crc32c(uint32_t crc, const void *data, size_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return reckit_crc32c_hw(crc, (const unsigned char *)data, n);
#endif
    return reckit_crc32c_sw(crc, (const unsigned char *)data, n);
}
