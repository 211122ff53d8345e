/* gemm_kernel_avx2.c - the AVX2 + FMA micro-kernel: a 6 x 16 tile in 12 ymm accumulators.
 * Compiled for the baseline ISA; only this function is built for AVX2 (target attribute) and it
 * is called only when the CPU reports AVX2 and FMA. Contract: gemm_kernels.h. */
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define MR 6
#define NR 16

__attribute__((target("avx2,fma")))
static void ukernel_avx2(int k, const float *a, const float *b, float *c, ptrdiff_t ldc,
                         int accumulate, const float *bias, int relu)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int p = 0; p < k; p++) {
        const __m256 b0 = _mm256_load_ps(b);
        const __m256 b1 = _mm256_load_ps(b + 8);
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += MR;
        b += NR;
    }
    const __m256 zero = _mm256_setzero_ps();
    const __m256 bias0 = bias ? _mm256_loadu_ps(bias) : zero;
    const __m256 bias1 = bias ? _mm256_loadu_ps(bias + 8) : zero;
#define STORE_ROW(i, r0, r1)                                                            \
    do {                                                                                \
        float *ci = c + (i) * ldc;                                                      \
        if (accumulate) {                                                               \
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ci));                                \
            r1 = _mm256_add_ps(r1, _mm256_loadu_ps(ci + 8));                            \
        }                                                                               \
        r0 = _mm256_add_ps(r0, bias0);                                                  \
        r1 = _mm256_add_ps(r1, bias1);                                                  \
        if (relu) {                                                                     \
            r0 = _mm256_max_ps(r0, zero);                                               \
            r1 = _mm256_max_ps(r1, zero);                                               \
        }                                                                               \
        _mm256_storeu_ps(ci, r0);                                                       \
        _mm256_storeu_ps(ci + 8, r1);                                                   \
    } while (0)
    STORE_ROW(0, c00, c01); STORE_ROW(1, c10, c11); STORE_ROW(2, c20, c21);
    STORE_ROW(3, c30, c31); STORE_ROW(4, c40, c41); STORE_ROW(5, c50, c51);
#undef STORE_ROW
}

const pc_ukernel pc_ukernel_avx2 = {PC_ISA_AVX2, "avx2", MR, NR, 256, 144, ukernel_avx2, NULL,
                                    NULL, NULL, NULL};
#endif
