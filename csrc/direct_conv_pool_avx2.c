/* direct_conv_pool_avx2.c - the AVX2 direct convolution + 2x2 max pooling of
 * direct_conv_pool.h: a tile of 2 rows x 6 columns x 8 filters (one ymm) in 12 accumulators,
 * which leaves the 16 ymm registers room for a kernel row and a broadcast tap. The same sums
 * in the same order as the AVX2 GEMM path, so results are bit-identical to it. Built for AVX2
 * + FMA by target attributes; called only when the runtime selected that path. */
#include "direct_conv_pool.h"

#if PC_DIRECT_X86
#include <immintrin.h>

#define TILE_COLS 6            /* convolution columns per tile: 3 pooled cells */
#define FILTERS 8              /* filters per tile: one ymm */

/* Whether v replaces the running maximum m: v > m, or v is the window's first NaN (a NaN
 * maximum stays: NaN propagates, with the first NaN's cell). */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256
takes_max(__m256 v, __m256 m)
{
    return _mm256_and_ps(_mm256_cmp_ps(v, m, _CMP_NLE_UQ), _mm256_cmp_ps(m, m, _CMP_ORD_Q));
}

/* Pools one window (cells a b / c d): the first maximum in row-major order, and its cell. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
pool_window(__m256 a, __m256 b, __m256 c, __m256 d, __m256i cell, __m256i cell_r,
            __m256i cell_d, __m256i cell_dr, float *y, int32_t *am)
{
    __m256 m = a, i = _mm256_castsi256_ps(cell);
    __m256 k = takes_max(b, m);
    m = _mm256_blendv_ps(m, b, k);
    i = _mm256_blendv_ps(i, _mm256_castsi256_ps(cell_r), k);
    k = takes_max(c, m);
    m = _mm256_blendv_ps(m, c, k);
    i = _mm256_blendv_ps(i, _mm256_castsi256_ps(cell_d), k);
    k = takes_max(d, m);
    m = _mm256_blendv_ps(m, d, k);
    i = _mm256_blendv_ps(i, _mm256_castsi256_ps(cell_dr), k);
    _mm256_storeu_ps(y, m);
    _mm256_storeu_si256((__m256i *)am, _mm256_castps_si256(i));
}

/* One tile: conv rows (0, 1) x columns 0 .. 2*NC-1 from x0 (the top-left window's corner),
 * filters wk[tap * O + 0..7]; NC pooled cells written at y and am (cell stride O). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
tile(const int NC, const float *x0, ptrdiff_t W, int kh_n, int kw_n, const float *wk, int O,
     const float *b, int relu, float *y, int32_t *am, int32_t cell0, int am_w)
{
    const __m256 bias = b ? _mm256_loadu_ps(b) : _mm256_setzero_ps();
    __m256 acc[2][TILE_COLS];
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++)
#pragma GCC unroll 6
        for (int q = 0; q < 2 * NC; q++)
            acc[r][q] = _mm256_setzero_ps();
    for (int kh = 0; kh < kh_n; kh++) {
        const float *ra = x0 + kh * W, *rb = ra + W;
        for (int kw = 0; kw < kw_n; kw++, wk += O) {
            const __m256 b = _mm256_loadu_ps(wk);
#pragma GCC unroll 6
            for (int q = 0; q < 2 * NC; q++) {
                acc[0][q] = _mm256_fmadd_ps(_mm256_broadcast_ss(ra + kw + q), b, acc[0][q]);
                acc[1][q] = _mm256_fmadd_ps(_mm256_broadcast_ss(rb + kw + q), b, acc[1][q]);
            }
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    /* relu as the GEMM's epilogue, max(0, x) + 0 (NaN stays NaN, -0 becomes +0), in one
     * instruction: with the bias's -0 made +0 (b + 0), x + b is never -0 (a sum is -0 only
     * when both terms are), and max(0, x) is x for a NaN x, 0 for x <= 0. */
    const __m256 add = relu ? _mm256_add_ps(bias, zero) : bias;
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++)
#pragma GCC unroll 6
        for (int q = 0; q < 2 * NC; q++) {
            acc[r][q] = _mm256_add_ps(acc[r][q], add);    /* + 0 without bias: exact */
            if (relu)
                acc[r][q] = _mm256_max_ps(zero, acc[r][q]);
        }
#pragma GCC unroll 3
    for (int q = 0; q < NC; q++) {
        const int32_t c0 = cell0 + 2 * q;
        pool_window(acc[0][2 * q], acc[0][2 * q + 1], acc[1][2 * q], acc[1][2 * q + 1],
                    _mm256_set1_epi32(c0), _mm256_set1_epi32(c0 + 1),
                    _mm256_set1_epi32(c0 + am_w), _mm256_set1_epi32(c0 + am_w + 1),
                    y + q * O, am + q * O);
    }
}

PC_DIRECT_TILES(avx2, __attribute__((target("avx2,fma"))), FILTERS)

/* The 9 tap accumulators of one filter block: dw block (+)= acc, + 0 as the GEMM's epilogue */
#define FLUSH(t)                                                                            \
    do {                                                                                    \
        float *d_ = dw + (t) * O + ob;                                                      \
        __m256 r_ = acc[t];                                                                 \
        if (acc_mode)                                                                       \
            r_ = _mm256_add_ps(r_, _mm256_loadu_ps(d_));                                    \
        _mm256_storeu_ps(d_, _mm256_add_ps(r_, zero));                                      \
        acc[t] = zero;                                                                      \
    } while (0)

__attribute__((target("avx2,fma")))
void pc_direct_conv_pool_backward_avx2(const pc_conv_shape *s, const pc_pool_shape *p,
                                       const float *x, const float *dpooled,
                                       const int32_t *argmax, const float *relu_pooled,
                                       int am_w, int n0, int count, int kc, int accumulate,
                                       float *dw, float *db)
{
    const int O = s->o;
    const ptrdiff_t W = s->w;
    const size_t img_in = (size_t)s->h * s->w, img_out = (size_t)p->oh * p->ow * O;
    const __m256 zero = _mm256_setzero_ps();
    for (int ob = 0; ob < O; ob += FILTERS) {
        __m256 acc[9];
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++)
            acc[t] = zero;
        __m256 dbv = _mm256_loadu_ps(db + ob);
        int acc_mode = accumulate, in_block = 0;
        for (int n = n0; n < n0 + count; n++) {
            const float *xn = x + (size_t)n * img_in;
            for (int r = 0; r < s->oh; r++) {
                const float *x0 = xn + (size_t)r * W;
                const size_t prow = (size_t)n * img_out + (size_t)(r / 2) * p->ow * O + ob;
                for (int c = 0; c < s->ow; c++) {
                    const size_t q = prow + (size_t)(c / 2) * O;
                    __m256 g = _mm256_loadu_ps(dpooled + q);
                    if (relu_pooled)
                        g = _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(relu_pooled + q),
                                                           zero, _CMP_GT_OQ));
                    const __m256i hit = _mm256_cmpeq_epi32(
                        _mm256_loadu_si256((const __m256i *)(argmax + q)),
                        _mm256_set1_epi32(r * am_w + c));
                    g = _mm256_and_ps(g, _mm256_castsi256_ps(hit));
#pragma GCC unroll 9
                    for (int t = 0; t < 9; t++)
                        acc[t] = _mm256_fmadd_ps(_mm256_broadcast_ss(x0 + (t / 3) * W + c + t % 3),
                                                 g, acc[t]);
                    dbv = _mm256_add_ps(dbv, g);
                    if (++in_block == kc) {
#pragma GCC unroll 9
                        for (int t = 0; t < 9; t++)
                            FLUSH(t);
                        acc_mode = 1;
                        in_block = 0;
                    }
                }
            }
        }
        if (in_block > 0) {
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++)
                FLUSH(t);
        }
        _mm256_storeu_ps(db + ob, dbv);
    }
}

#endif
