/*
 * gemm_kernels.h - the GEMM micro-kernels, one per SIMD path, behind one signature
 * (pc_ukernel_fn in runtime.h). This is the only code a port to a new CPU writes.
 *
 * Contract (all paths): for p in 0..k-1, i in 0..mr-1, j in 0..nr-1
 *     C[i*ldc + j] (+)= sum_p a[p*mr + i] * b[p*nr + j]
 * summing p in increasing order per element (so results do not depend on the thread count),
 * with `accumulate` = 0 meaning C is overwritten; then C[i*ldc + j] += bias[j] when bias is not
 * NULL, and C = max(C, 0) when relu is set. a and b are 64-byte aligned packed panels.
 */
#ifndef PYCNN_GEMM_KERNELS_H
#define PYCNN_GEMM_KERNELS_H

#include "pycnn.h"
#include "runtime.h"

/* The micro-kernel table entry for an ISA, or NULL when this build has no kernel for it. */
const pc_ukernel *pc_ukernel_for(pc_isa isa);

extern const pc_ukernel pc_ukernel_generic;
#if defined(__x86_64__) || defined(__i386__)
extern const pc_ukernel pc_ukernel_avx2;
extern const pc_ukernel pc_ukernel_avx512;
/* The AVX-512 kernel with shorter tiles (8 and 10 rows), i = 0, 1, ...; NULL past the last. */
const pc_ukernel *pc_ukernel_avx512_short(int i);
/* The AVX-512 kernel with a 16-column tile (one zmm) of more rows, 24 when rows >= 24, else
 * 16: for products of n <= 16 (the Winograd GEMMs of 16 filters), whose 32-column tiles are
 * half empty. Same sums and epilogue as the 32-column kernel: the same bits. */
const pc_ukernel *pc_ukernel_avx512_half(int rows);
/* C[i*ldc] (+)= sum_p A(i, p) b[p*ldb], i < m, p < k, A(i, p) = a[i*rsa + p*csa] with rsa == 1
 * or csa == 1: one column of C with the bits of the AVX-512 micro-kernel's (one FMA per p in
 * order from 0, then + C when accumulating, + 0), for pc_gemm_serial's products of n = 1. */
void pc_gemm_one_column_avx512(int m, int k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                               const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                               int accumulate);
#endif

/* pc_gemm_serial with the tile height among the ISA's kernels (gemm_kernel_avx512.c's shorter
 * tiles) that wastes least of C's m rows: for m = 50 ten-row tiles rather than 12-row ones
 * whose last holds 2 rows. Scratch: pc_gemm_scratch_floats(), which covers every tile height.
 * Each element's sum is taken in the same order whatever the tile: results do not depend on
 * the choice beyond it being a function of the shapes and the ISA. */
void pc_gemm_serial_fit(const pc_runtime *rt, const pc_gemm_args *g, float *scratch);
/* The tile height pc_gemm_serial_fit uses for m rows. */
int pc_gemm_fit_mr(const pc_runtime *rt, int m);

#endif
