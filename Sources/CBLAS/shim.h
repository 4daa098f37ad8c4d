// CBLAS: OpenBLAS's C interface from Debian's libopenblas-dev, for its types and prototypes only.
//
// There is deliberately no `link "openblas"` here: linking would load the library (and run its constructor,
// which reads OPENBLAS_CORETYPE) before main(). RecKitKernels' BLASRuntime chooses the core type first
// and then dlopen()s the library, binding the function pointers declared below.
#pragma once
#include <stddef.h>
#include <cblas.h>

typedef __typeof__(&cblas_sgemm) reckit_sgemm_fn;
typedef __typeof__(&cblas_sgemv) reckit_sgemv_fn;
typedef void (*reckit_set_num_threads_fn)(int);
typedef int (*reckit_get_num_threads_fn)(void);
typedef char *(*reckit_get_string_fn)(void);

// Dense linear algebra for the collaborative-filtering models (RecKitCF): symmetric rank-k update, triangular
// solve, and LAPACK's Cholesky family, all exported by Debian's libopenblas (LAPACK is built in).
typedef __typeof__(&cblas_ssyrk) reckit_ssyrk_fn;
typedef __typeof__(&cblas_strsm) reckit_strsm_fn;
typedef void (*reckit_spotrf_fn)(const char *uplo, const int *n, float *a, const int *lda, int *info);
typedef void (*reckit_spotri_fn)(const char *uplo, const int *n, float *a, const int *lda, int *info);
