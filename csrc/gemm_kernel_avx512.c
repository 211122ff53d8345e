/* gemm_kernel_avx512.c - the AVX-512 micro-kernel: a 12 x 32 tile in 24 zmm accumulators,
 * B loaded as two zmm per k step, each A value broadcast from memory into the FMA, with
 * variants reading A or B where they are stored, and the narrow products (runtime.h); 8- and
 * 10-row tiles (pc_gemm_serial_fit), 16-column tiles of 24 and 16 rows (the Winograd GEMMs of
 * 16 filters) and a product of one column of C (pc_gemm_one_column_avx512).
 * Only these functions are built for AVX-512 (target attributes); they run only when the CPU
 * reports AVX-512F. Contract: gemm_kernels.h. */
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <stdint.h>

#define MR 12
#define NR 32

static ptrdiff_t round_up16(int k) { return ((ptrdiff_t)k + 15) / 16 * 16; }

/* ---- the SIMD adapter of ukernel_body.inc and sparse_products.inc: zmm ---------------------- */
#define SP_TARGET __attribute__((target("avx512f")))
#define SP_INLINE __attribute__((target("avx512f"), always_inline)) static inline
#define SP_NAME(f) f##_avx512
#define SP_W 16
typedef __m512 sp_v;
typedef __mmask16 sp_m;
SP_INLINE sp_v sp_zero(void) { return _mm512_setzero_ps(); }
SP_INLINE sp_v sp_set1(float x) { return _mm512_set1_ps(x); }
SP_INLINE sp_v sp_load(const float *p) { return _mm512_load_ps(p); }
SP_INLINE sp_v sp_loadu(const float *p) { return _mm512_loadu_ps(p); }
SP_INLINE sp_v sp_maskload(const float *p, sp_m m) { return _mm512_maskz_loadu_ps(m, p); }
SP_INLINE void sp_store(float *p, sp_v v) { _mm512_store_ps(p, v); }
SP_INLINE void sp_storeu(float *p, sp_v v) { _mm512_storeu_ps(p, v); }
SP_INLINE void sp_maskstore(float *p, sp_m m, sp_v v) { _mm512_mask_storeu_ps(p, m, v); }
SP_INLINE sp_v sp_add(sp_v a, sp_v b) { return _mm512_add_ps(a, b); }
SP_INLINE sp_v sp_max(sp_v a, sp_v b) { return _mm512_max_ps(a, b); }
SP_INLINE sp_v sp_fmadd(sp_v a, sp_v b, sp_v c) { return _mm512_fmadd_ps(a, b, c); }
SP_INLINE sp_m sp_mask(int left)
{
    return left >= 16 ? (sp_m)0xFFFF : left > 0 ? (sp_m)((1u << left) - 1) : (sp_m)0;
}
SP_INLINE unsigned sp_nonzero_bits(const float *p, int count)
{
    const sp_m in = sp_mask(count);
    return _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, p), _mm512_setzero_ps(),
                                   _CMP_NEQ_UQ);
}

#define SP_SHORT_TILES SP_SHORT_TILE(8) SP_SHORT_TILE(10)
#define SP_HALF_MAX_MR 28
#define SP_HALF_TILES SP_HALF_TILE(16) SP_HALF_TILE(24)
#include "ukernel_body.inc"

/* 16 rows of 16 floats transposed in registers (four rounds of 16 shuffles): on return r[j]
 * holds what was column j. */
__attribute__((target("avx512f"), always_inline)) static inline void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {       /* pairs of rows interleaved in each 128-bit block */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 4; g++) {           /* u[4g + c], block L: rows 4g..4g+3 of column 4L+c */
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {           /* column 4L+c: block L of u[c], u[4+c], ... */
        const __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        const __m512 x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        const __m512 y0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        const __m512 y1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
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
        /* whole vectors by plain loads (masked ones measured slower), the last one masked */
        const __mmask16 m = k - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - p)) - 1);
        const __m512 x0 = k - p >= 16 ? _mm512_loadu_ps(a0 + p) : _mm512_maskz_loadu_ps(m, a0 + p);
        const __m512 x1 = k - p >= 16 ? _mm512_loadu_ps(a1 + p) : _mm512_maskz_loadu_ps(m, a1 + p);
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
    /* each half: column j's 16 rows in acc[j], transposed into rows of N floats */
    const __mmask16 row = (__mmask16)((1u << N) - 1);
    for (int h = 0; h < 2; h++) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            r[j] = j < N ? (h ? acc1[j] : acc0[j]) : _mm512_setzero_ps();
        transpose16(r);
        for (int i = 0; i < 16 && 16 * h + i < m; i++)
            _mm512_mask_storeu_ps(s + (16 * h + i) * lds, row, r[i]);
    }
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

/* B^T: from B's rows (csb == 1) 16 at a time, each masked to its n <= 16 floats and transposed
 * in registers; element by element otherwise. Lanes past k are zero. */
__attribute__((target("avx512f")))
static void narrow_pack_avx512(int k, int n, const float *b, ptrdiff_t rsb, ptrdiff_t csb,
                               float *bt, ptrdiff_t ldbt)
{
    if (csb == 1) {
        const __mmask16 cols = (__mmask16)((1u << n) - 1);
        for (int p = 0; p < k; p += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = p + i < k ? _mm512_maskz_loadu_ps(cols, b + (ptrdiff_t)(p + i) * rsb)
                                 : _mm512_setzero_ps();
            transpose16(r);
            for (int j = 0; j < n; j++)
                _mm512_store_ps(bt + j * ldbt + p, r[j]);
        }
    } else {
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++)
                bt[j * ldbt + p] = b[(ptrdiff_t)p * rsb + j * csb];
        for (int j = 0; j < n; j++)
            for (int p = k; p < round_up16(k); p++)
                bt[j * ldbt + p] = 0.0f;
    }
    for (int j = 0; j < n; j++)
        for (ptrdiff_t p = round_up16(k); p < ldbt; p++)
            bt[j * ldbt + p] = 0.0f;
}

/* Up to 4 rows of C, 64 columns (4 vectors, masked at the end) at a time: 16 zmm
 * accumulators, each k step 4 loads of B's row and 4 broadcasts of A. R is a constant in
 * each instance. */
__attribute__((target("avx512f"), always_inline)) static inline void
narrow_k_n(const int R, int k, int n, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
           const float *bt, ptrdiff_t ldbt, float *c, ptrdiff_t ldc, int accumulate)
{
    for (int p = 0; p < n; p += 64) {
        __mmask16 m[4];
        for (int v = 0; v < 4; v++) {
            const int left = n - p - 16 * v;
            m[v] = left >= 16 ? (__mmask16)0xFFFF
                              : left > 0 ? (__mmask16)((1u << left) - 1) : (__mmask16)0;
        }
        __m512 acc[4][4];
        for (int r = 0; r < R; r++)
            for (int v = 0; v < 4; v++)
                acc[r][v] = _mm512_setzero_ps();
        for (int j = 0; j < k; j++) {
            const float *bj = bt + j * ldbt + p;
            __m512 b[4];
            for (int v = 0; v < 4; v++)
                b[v] = _mm512_maskz_load_ps(m[v], bj + 16 * v);
            for (int r = 0; r < R; r++) {
                const __m512 ar = _mm512_set1_ps(a[r * rsa + j * csa]);
                for (int v = 0; v < 4; v++)
                    acc[r][v] = _mm512_fmadd_ps(ar, b[v], acc[r][v]);
            }
        }
        for (int r = 0; r < R; r++)
            for (int v = 0; v < 4; v++) {
                float *cp = c + r * ldc + p + 16 * v;
                const __m512 sum = accumulate
                    ? _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], cp), acc[r][v]) : acc[r][v];
                _mm512_mask_storeu_ps(cp, m[v], sum);
            }
    }
}

__attribute__((target("avx512f")))
static void narrow_k_avx512(int k, int rows, int n, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                            const float *bt, ptrdiff_t ldbt, float *c, ptrdiff_t ldc,
                            int accumulate)
{
    switch (rows) {
    case 1: narrow_k_n(1, k, n, a, rsa, csa, bt, ldbt, c, ldc, accumulate); break;
    case 2: narrow_k_n(2, k, n, a, rsa, csa, bt, ldbt, c, ldc, accumulate); break;
    case 3: narrow_k_n(3, k, n, a, rsa, csa, bt, ldbt, c, ldc, accumulate); break;
    case 4: narrow_k_n(4, k, n, a, rsa, csa, bt, ldbt, c, ldc, accumulate); break;
    default: break;
    }
}

/* ---- one column of C (a convolution with one filter, its 1x1 weight gradient) ------------- */

/* C[i*ldc] (+)= sum_p A(i, p) b[p*ldb] for i < m, A(i, p) = a[i*rsa + p*csa] with rsa == 1 (A's
 * columns: m consecutive floats) or csa == 1 (A's rows, 16 at a time transposed in registers).
 * Each element is the micro-kernel's sum: one FMA per p in increasing order from 0, then
 * (+ C when accumulating) + 0, so the bits of the 12 x 32 tile's column 0. */
__attribute__((target("avx512f")))
void pc_gemm_one_column_avx512(int m, int k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                               const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                               int accumulate)
{
    const __m512 zero = _mm512_setzero_ps();
    for (int i0 = 0; i0 < m; i0 += 16) {
        const int rows = m - i0 < 16 ? m - i0 : 16;
        const __mmask16 mi = (__mmask16)((1u << rows) - 1);
        __m512 acc = zero;
        if (rsa == 1) {
            const float *ap = a + i0;
            for (int p = 0; p < k; p++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(b[p * ldb]),
                                      _mm512_maskz_loadu_ps(mi, ap + (ptrdiff_t)p * csa), acc);
        } else {
            for (int p0 = 0; p0 < k; p0 += 16) {
                const int cols = k - p0 < 16 ? k - p0 : 16;
                const __mmask16 mp = (__mmask16)((1u << cols) - 1);
                __m512 r[16];
                for (int j = 0; j < 16; j++)
                    r[j] = j < rows ? _mm512_maskz_loadu_ps(mp, a + (ptrdiff_t)(i0 + j) * rsa + p0)
                                    : zero;
                transpose16(r);
                for (int q = 0; q < cols; q++)
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(b[(p0 + q) * ldb]), r[q], acc);
            }
        }
        float out[16], old[16];
        if (accumulate) {
            for (int i = 0; i < rows; i++)
                old[i] = c[(i0 + i) * ldc];
            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mi, old));
        }
        acc = _mm512_add_ps(acc, zero);
        _mm512_mask_storeu_ps(out, mi, acc);
        for (int i = 0; i < rows; i++)
            c[(i0 + i) * ldc] = out[i];
    }
}

/* ---- products from a sparse A (runtime.h) ---------------------------------------------------- */
#include "sparse_products.inc"

const pc_ukernel pc_ukernel_avx512 = {
    .isa = PC_ISA_AVX512, .name = "avx512", .mr = MR, .nr = NR, .kc = 256, .mc = 144,
    .fn = ukernel_avx512, .narrow_rows = narrow_rows_avx512, .narrow_cols = narrow_cols_avx512,
    .narrow_pack = narrow_pack_avx512, .narrow_k = narrow_k_avx512,
    .sparse_rows = sparse_rows_avx512, .sparse_tn = sparse_tn_avx512,
    .fn_rows = ukernel_rows_avx512,
    .fn_cols = ukernel_cols_avx512};

/* the same kernel with 8- and 10-row tiles (pc_gemm_serial_fit): no narrow or sparse products */
static const pc_ukernel short_tiles[] = {
    {.isa = PC_ISA_AVX512, .name = "avx512", .mr = 8, .nr = NR, .kc = 256, .mc = 144,
     .fn = ukernel_m8_avx512, .fn_rows = ukernel_rows_m8_avx512,
     .fn_cols = ukernel_cols_m8_avx512},
    {.isa = PC_ISA_AVX512, .name = "avx512", .mr = 10, .nr = NR, .kc = 256, .mc = 140,
     .fn = ukernel_m10_avx512, .fn_rows = ukernel_rows_m10_avx512,
     .fn_cols = ukernel_cols_m10_avx512},
};

/* 16 columns (one zmm) by 24 or 16 rows: the Winograd GEMMs of at most 16 filters */
static const pc_ukernel half_tiles[] = {
    {.isa = PC_ISA_AVX512, .name = "avx512", .mr = 24, .nr = 16, .kc = 256, .mc = 144,
     .fn = ukernel_m24_half_avx512, .fn_rows = ukernel_rows_m24_half_avx512,
     .fn_cols = ukernel_cols_m24_half_avx512},
    {.isa = PC_ISA_AVX512, .name = "avx512", .mr = 16, .nr = 16, .kc = 256, .mc = 144,
     .fn = ukernel_m16_half_avx512, .fn_rows = ukernel_rows_m16_half_avx512,
     .fn_cols = ukernel_cols_m16_half_avx512},
};

const pc_ukernel *pc_ukernel_avx512_half(int rows)
{
    return rows >= 24 ? &half_tiles[0] : &half_tiles[1];
}

const pc_ukernel *pc_ukernel_avx512_short(int i)
{
    return i >= 0 && i < (int)(sizeof short_tiles / sizeof short_tiles[0]) ? &short_tiles[i]
                                                                          : NULL;
}
#endif
