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

#include "runtime.h"

/* The micro-kernel table entry for an ISA, or NULL when this build has no kernel for it. */
const pc_ukernel *pc_ukernel_for(pc_isa isa);

extern const pc_ukernel pc_ukernel_generic;
#if defined(__x86_64__) || defined(__i386__)
extern const pc_ukernel pc_ukernel_avx2;
extern const pc_ukernel pc_ukernel_avx512;
#endif

#endif
