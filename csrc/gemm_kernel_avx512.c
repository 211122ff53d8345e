/* gemm_kernel_avx512.c - the AVX-512 micro-kernel: a 12 x 32 tile in 24 zmm accumulators,
 * B loaded as two zmm per k step, each A value broadcast from memory into the FMA.
 * Only this function is built for AVX-512 (target attribute); it runs only when the CPU reports
 * AVX-512F. Contract: gemm_kernels.h. */
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define MR 12
#define NR 32

#define ROW_FMA(i)                                                                      \
    do {                                                                                \
        const __m512 ai = _mm512_set1_ps(a[i]);                                         \
        acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);                                 \
        acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);                                 \
    } while (0)

__attribute__((target("avx512f")))
static void ukernel_avx512(int k, const float *a, const float *b, float *c, ptrdiff_t ldc,
                           int accumulate, const float *bias, int relu)
{
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        const __m512 b0 = _mm512_load_ps(b);
        const __m512 b1 = _mm512_load_ps(b + 16);
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
        ROW_FMA(6); ROW_FMA(7); ROW_FMA(8); ROW_FMA(9); ROW_FMA(10); ROW_FMA(11);
        a += MR;
        b += NR;
    }
    const __m512 zero = _mm512_setzero_ps();
    const __m512 bias0 = bias ? _mm512_loadu_ps(bias) : zero;
    const __m512 bias1 = bias ? _mm512_loadu_ps(bias + 16) : zero;
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        __m512 r0 = acc[i][0], r1 = acc[i][1];
        if (accumulate) {
            r0 = _mm512_add_ps(r0, _mm512_loadu_ps(ci));
            r1 = _mm512_add_ps(r1, _mm512_loadu_ps(ci + 16));
        }
        r0 = _mm512_add_ps(r0, bias0);   /* + 0 when there is no bias: exact */
        r1 = _mm512_add_ps(r1, bias1);
        if (relu) {
            r0 = _mm512_max_ps(r0, zero);
            r1 = _mm512_max_ps(r1, zero);
        }
        _mm512_storeu_ps(ci, r0);
        _mm512_storeu_ps(ci + 16, r1);
    }
}

const pc_ukernel pc_ukernel_avx512 = {PC_ISA_AVX512, "avx512", MR, NR, 256, 144,
                                      ukernel_avx512};
#endif
