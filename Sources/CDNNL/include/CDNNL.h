// CDNNL: a thin C bridge to oneDNN's bf16 matmul (AMX / AVX512-BF16), loaded at run time with dlopen.
// Swift sees only these functions; the oneDNN types stay in dnnl_shim.c.
#pragma once
#include <stdint.h>

/// Loads libdnnl.so.2 (once, with libgomp's team size forced to 1) and creates the CPU engine. Returns 1 when bf16 matmul is usable,
/// 0 otherwise; `reckit_dnnl_status()` then says why. Thread-safe.
int reckit_dnnl_load(void);

/// A human-readable status: the oneDNN version and ISA when loaded, or the reason it is not.
const char *reckit_dnnl_status(void);

/// C (m×n, fp32, row stride ldc) = op(A)·op(B) (+ C when accumulate != 0), with A and B in bf16 (raw uint16 bits),
/// fp32 accumulation. op(A) is m×k: A row-major with row stride lda, read transposed when transA != 0 (then A is
/// k×m). op(B) is k×n likewise. Runs on the calling thread only (callers split large GEMMs across their own
/// threads); any number of threads may call at once. Primitives are cached per thread and shape/stride/mode.
/// Returns 0 on success, else a oneDNN status code (negative: not loaded / out of memory).
int reckit_dnnl_bf16_gemm(int transA, int transB, int64_t m, int64_t n, int64_t k,
                          const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                          int accumulate, float *c, int64_t ldc);
