/* gemm_kernel_generic.c - the portable micro-kernel (plain C11, any CPU). The compiler
 * vectorises the inner j loop with whatever the baseline ISA offers (SSE2, NEON). It is also
 * the reference the SIMD kernels are tested against. Contract: gemm_kernels.h. */
#include "gemm_kernels.h"

#define MR 4
#define NR 16

static void ukernel_generic(int k, const float *a, const float *b, float *c, ptrdiff_t ldc,
                            int accumulate, const float *bias, int relu)
{
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < k; p++) {
        const float *ap = a + (ptrdiff_t)p * MR;
        const float *bp = b + (ptrdiff_t)p * NR;
        for (int i = 0; i < MR; i++) {
            const float ai = ap[i];
            for (int j = 0; j < NR; j++)
                acc[i][j] += ai * bp[j];
        }
    }
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (accumulate)
            for (int j = 0; j < NR; j++)
                acc[i][j] += ci[j];
        if (bias)
            for (int j = 0; j < NR; j++)
                acc[i][j] += bias[j];
        if (relu)
            for (int j = 0; j < NR; j++)
                acc[i][j] = acc[i][j] <= 0.0f ? 0.0f : acc[i][j];   /* NaN stays NaN */
        for (int j = 0; j < NR; j++)
            ci[j] = acc[i][j];
    }
}

const pc_ukernel pc_ukernel_generic = {
    .isa = PC_ISA_GENERIC, .name = "generic", .mr = MR, .nr = NR, .kc = 256, .mc = 128,
    .fn = ukernel_generic};

const pc_ukernel *pc_ukernel_for(pc_isa isa)
{
    switch (isa) {
#if defined(__x86_64__) || defined(__i386__)
    case PC_ISA_AVX512: return &pc_ukernel_avx512;
    case PC_ISA_AVX2: return &pc_ukernel_avx2;
#endif
    case PC_ISA_GENERIC: return &pc_ukernel_generic;
    default: return NULL;
    }
}
