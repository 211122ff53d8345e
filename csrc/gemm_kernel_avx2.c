/* gemm_kernel_avx2.c - the AVX2 + FMA micro-kernel: a 6 x 16 tile in 12 ymm accumulators, with
 * variants reading A or B where they are stored (runtime.h). Compiled for the baseline ISA;
 * only these functions are built for AVX2 (target attribute), and they are called only when
 * the CPU reports AVX2 and FMA. Contract: gemm_kernels.h. */
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <stdint.h>

#define MR 6
#define NR 16

/* ---- the SIMD adapter of ukernel_body.inc and sparse_products.inc: ymm ---------------------- */
#define SP_TARGET __attribute__((target("avx2,fma")))
#define SP_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#define SP_NAME(f) f##_avx2
#define SP_W 8
typedef __m256 sp_v;
typedef __m256i sp_m;
SP_INLINE sp_v sp_zero(void) { return _mm256_setzero_ps(); }
SP_INLINE sp_v sp_set1(float x) { return _mm256_set1_ps(x); }
SP_INLINE sp_v sp_load(const float *p) { return _mm256_load_ps(p); }
SP_INLINE sp_v sp_loadu(const float *p) { return _mm256_loadu_ps(p); }
SP_INLINE sp_v sp_maskload(const float *p, sp_m m) { return _mm256_maskload_ps(p, m); }
SP_INLINE void sp_store(float *p, sp_v v) { _mm256_store_ps(p, v); }
SP_INLINE void sp_storeu(float *p, sp_v v) { _mm256_storeu_ps(p, v); }
SP_INLINE void sp_maskstore(float *p, sp_m m, sp_v v) { _mm256_maskstore_ps(p, m, v); }
SP_INLINE sp_v sp_add(sp_v a, sp_v b) { return _mm256_add_ps(a, b); }
SP_INLINE sp_v sp_max(sp_v a, sp_v b) { return _mm256_max_ps(a, b); }
SP_INLINE sp_v sp_fmadd(sp_v a, sp_v b, sp_v c) { return _mm256_fmadd_ps(a, b, c); }
SP_INLINE sp_m sp_mask(int left)
{
    const int n = left < 0 ? 0 : left > 8 ? 8 : left;   /* lanes l < n: all ones */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
SP_INLINE unsigned sp_nonzero_bits(const float *p, int count)
{
    const sp_v x = _mm256_maskload_ps(p, sp_mask(count));
    return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ)) &
           ((1u << count) - 1);
}

#include "ukernel_body.inc"

/* ---- products from a sparse A (runtime.h) ---------------------------------------------------- */
#include "sparse_products.inc"

const pc_ukernel pc_ukernel_avx2 = {
    .isa = PC_ISA_AVX2, .name = "avx2", .mr = MR, .nr = NR, .kc = 256, .mc = 144,
    .fn = ukernel_avx2, .sparse_rows = sparse_rows_avx2, .sparse_tn = sparse_tn_avx2,
    .fn_rows = ukernel_rows_avx2, .fn_cols = ukernel_cols_avx2};
#endif
