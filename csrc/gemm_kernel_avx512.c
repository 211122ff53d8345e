/* gemm_kernel_avx512.c - the AVX-512 micro-kernel: a 12 x 32 tile in 24 zmm accumulators,
 * B loaded as two zmm per k step, each A value broadcast from memory into the FMA, with
 * variants reading A or B where they are stored, and the narrow products (runtime.h).
 * Only these functions are built for AVX-512 (target attributes); they run only when the CPU
 * reports AVX-512F. Contract: gemm_kernels.h. */
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define MR 12
#define NR 32

#define ROW_FMA(i)                                                                      \
    do {                                                                                \
        const __m512 ai = _mm512_set1_ps(a[(i) * ri]);                                  \
        acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);                                 \
        acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);                                 \
    } while (0)

/* A(i, p) = a[i * ri + p * rp], B(p, j) = b[p * rb + j]: packed panels (ri = 1, rp = MR,
 * rb = NR), A's rows in place (ri = lda, rp = 1) or its columns (rp = lda), B's rows in place
 * (rb = ldb); constants after inlining */
__attribute__((target("avx512f"), always_inline)) static inline void
ukernel_body(int k, const float *a, ptrdiff_t ri, ptrdiff_t rp, const float *b, ptrdiff_t rb,
             float *c, ptrdiff_t ldc, int accumulate, const float *bias, int relu)
{
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        const __m512 b0 = _mm512_loadu_ps(b);
        const __m512 b1 = _mm512_loadu_ps(b + 16);
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
        ROW_FMA(6); ROW_FMA(7); ROW_FMA(8); ROW_FMA(9); ROW_FMA(10); ROW_FMA(11);
        a += rp;
        b += rb;
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

__attribute__((target("avx512f")))
static void ukernel_avx512(int k, const float *a, const float *b, float *c, ptrdiff_t ldc,
                           int accumulate, const float *bias, int relu)
{
    ukernel_body(k, a, 1, MR, b, NR, c, ldc, accumulate, bias, relu);
}

/* A's MR rows read where they are (row i at a + i * lda): no packing of A */
__attribute__((target("avx512f")))
static void ukernel_rows_avx512(int k, const float *a, ptrdiff_t lda, const float *b,
                                ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate,
                                const float *bias, int relu)
{
    ukernel_body(k, a, lda, 1, b, ldb, c, ldc, accumulate, bias, relu);
}

/* A's columns read where they are (column p: MR consecutive floats at a + p * lda) */
__attribute__((target("avx512f")))
static void ukernel_cols_avx512(int k, const float *a, ptrdiff_t lda, const float *b,
                                ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate,
                                const float *bias, int relu)
{
    ukernel_body(k, a, 1, lda, b, ldb, c, ldc, accumulate, bias, relu);
}

/* ---- narrow products (runtime.h): n <= 12 columns, all accumulators in registers -------- */

/* Two rows of A against N <= 12 rows of B^T: 2N zmm accumulators of 16 lanes (lane l sums the
 * terms p = l mod 16 in order), a masked load for the last partial vector of A, then each
 * accumulator's lanes added by _mm512_reduce_add_ps (a fixed tree). N is a constant in each
 * instance (narrow_rows_avx512 switches on n), so the accumulators stay in registers. */
__attribute__((target("avx512f"), always_inline)) static inline void
rows_n(const int N, int k, int rows, const float *a, ptrdiff_t lda, const float *bt,
       ptrdiff_t ldbt, float *s, ptrdiff_t lds)
{
    __m512 acc0[PC_NARROW_N], acc1[PC_NARROW_N];
    const float *a0 = a, *a1 = rows > 1 ? a + lda : a;
#pragma GCC unroll 12
    for (int j = 0; j < N; j++)
        acc0[j] = acc1[j] = _mm512_setzero_ps();
    for (int p = 0; p < k; p += 16) {
        const __mmask16 m = k - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - p)) - 1);
        const __m512 x0 = _mm512_maskz_loadu_ps(m, a0 + p);
        const __m512 x1 = _mm512_maskz_loadu_ps(m, a1 + p);
#pragma GCC unroll 12
        for (int j = 0; j < N; j++) {
            const __m512 b = _mm512_load_ps(bt + j * ldbt + p);
            acc0[j] = _mm512_fmadd_ps(x0, b, acc0[j]);
            acc1[j] = _mm512_fmadd_ps(x1, b, acc1[j]);
        }
    }
#pragma GCC unroll 12
    for (int j = 0; j < N; j++) {
        s[j] = _mm512_reduce_add_ps(acc0[j]);
        s[lds + j] = _mm512_reduce_add_ps(acc1[j]);
    }
}

/* m <= 32 rows of C = A^T B from A^T's rows (32 consecutive floats each, masked at the end)
 * and broadcasts of B's N <= 12 values per k: 2N zmm accumulators, terms summed in order of
 * p; then the block transposed out through a small buffer. */
__attribute__((target("avx512f"), always_inline)) static inline void
cols_n(const int N, int k, int m, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
       float *s, ptrdiff_t lds)
{
    __m512 acc0[PC_NARROW_N], acc1[PC_NARROW_N];
    const __mmask16 m0 = m >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << m) - 1);
    const __mmask16 m1 = m >= 32 ? (__mmask16)0xFFFF
                         : m > 16 ? (__mmask16)((1u << (m - 16)) - 1) : (__mmask16)0;
#pragma GCC unroll 12
    for (int j = 0; j < N; j++)
        acc0[j] = acc1[j] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *ap = a + p * lda, *bp = b + p * ldb;
        const __m512 x0 = _mm512_maskz_loadu_ps(m0, ap);
        const __m512 x1 = _mm512_maskz_loadu_ps(m1, ap + 16);
#pragma GCC unroll 12
        for (int j = 0; j < N; j++) {
            const __m512 bj = _mm512_set1_ps(bp[j]);
            acc0[j] = _mm512_fmadd_ps(x0, bj, acc0[j]);
            acc1[j] = _mm512_fmadd_ps(x1, bj, acc1[j]);
        }
    }
    float t[PC_NARROW_N][32] __attribute__((aligned(64)));
#pragma GCC unroll 12
    for (int j = 0; j < N; j++) {
        _mm512_store_ps(t[j], acc0[j]);
        _mm512_store_ps(t[j] + 16, acc1[j]);
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < N; j++)
            s[i * lds + j] = t[j][i];
}

#define NARROW_CASES(CALL)                                                                  \
    switch (n) {                                                                            \
    case 1: CALL(1); break;   case 2: CALL(2); break;   case 3: CALL(3); break;             \
    case 4: CALL(4); break;   case 5: CALL(5); break;   case 6: CALL(6); break;             \
    case 7: CALL(7); break;   case 8: CALL(8); break;   case 9: CALL(9); break;             \
    case 10: CALL(10); break; case 11: CALL(11); break; case 12: CALL(12); break;           \
    default: break;                                                                         \
    }

__attribute__((target("avx512f")))
static void narrow_rows_avx512(int k, int rows, const float *a, ptrdiff_t lda, const float *bt,
                               ptrdiff_t ldbt, int n, float *s, ptrdiff_t lds)
{
    float two[2 * PC_NARROW_N];     /* a single row computes a second, discarded one */
    float *out = rows > 1 ? s : two;
#define ROWS(N) rows_n(N, k, rows, a, lda, bt, ldbt, out, rows > 1 ? lds : PC_NARROW_N)
    NARROW_CASES(ROWS)
#undef ROWS
    if (rows == 1)
        for (int j = 0; j < n; j++)
            s[j] = two[j];
}

__attribute__((target("avx512f")))
static void narrow_cols_avx512(int k, int m, const float *a, ptrdiff_t lda, const float *b,
                               ptrdiff_t ldb, int n, float *s, ptrdiff_t lds)
{
#define COLS(N) cols_n(N, k, m, a, lda, b, ldb, s, lds)
    NARROW_CASES(COLS)
#undef COLS
}

const pc_ukernel pc_ukernel_avx512 = {PC_ISA_AVX512, "avx512", MR, NR, 256, 144,
                                      ukernel_avx512, narrow_rows_avx512, narrow_cols_avx512,
                                      ukernel_rows_avx512, ukernel_cols_avx512};
#endif
