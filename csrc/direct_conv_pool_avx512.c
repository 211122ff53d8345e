/* direct_conv_pool_avx512.c - the AVX-512 direct convolution + 2x2 max pooling of
 * direct_conv_pool.h: a tile of 2 rows x 6 columns x 32 filters (two zmm) in 24 accumulators.
 * Built for AVX-512 by target attributes; called only when the runtime selected that path. */
#include "direct_conv_pool.h"

#if PC_DIRECT_X86
#include <immintrin.h>

#define TILE_COLS 6            /* convolution columns per tile: 3 pooled cells */
#define FILTERS 32             /* filters per tile: two zmm */

/* Pools one window (cells a b / c d, 16 filters): the first maximum in row-major order. A cell
 * replaces the running maximum m_ when it is greater or NaN, unless m_ is NaN already: NaN
 * propagates, with the first NaN's cell. The ordered compares run first; only when a lane of
 * the window holds a NaN (two unordered compares) is the chain redone with the NaN rule, so
 * windows without NaN cost two compares more than before NaN was handled. */
#define POOL_HALF(a, b, c, d, ydst, amdst)                                                  \
    do {                                                                                    \
        __m512 m_ = (a);                                                                    \
        __m512i i_ = cell;                                                                  \
        __mmask16 k_ = _mm512_cmp_ps_mask((b), m_, _CMP_GT_OQ);                             \
        m_ = _mm512_mask_blend_ps(k_, m_, (b));                                             \
        i_ = _mm512_mask_blend_epi32(k_, i_, cell_r);                                       \
        k_ = _mm512_cmp_ps_mask((c), m_, _CMP_GT_OQ);                                       \
        m_ = _mm512_mask_blend_ps(k_, m_, (c));                                             \
        i_ = _mm512_mask_blend_epi32(k_, i_, cell_d);                                       \
        k_ = _mm512_cmp_ps_mask((d), m_, _CMP_GT_OQ);                                       \
        m_ = _mm512_mask_blend_ps(k_, m_, (d));                                             \
        i_ = _mm512_mask_blend_epi32(k_, i_, cell_dr);                                      \
        if (_mm512_kor(_mm512_cmp_ps_mask((a), (b), _CMP_UNORD_Q),                         \
                       _mm512_cmp_ps_mask((c), (d), _CMP_UNORD_Q))) {                       \
            m_ = (a);                                                                       \
            i_ = cell;                                                                      \
            k_ = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(m_, m_, _CMP_ORD_Q), (b), m_,     \
                                         _CMP_NLE_UQ);                                      \
            m_ = _mm512_mask_blend_ps(k_, m_, (b));                                         \
            i_ = _mm512_mask_blend_epi32(k_, i_, cell_r);                                   \
            k_ = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(m_, m_, _CMP_ORD_Q), (c), m_,     \
                                         _CMP_NLE_UQ);                                      \
            m_ = _mm512_mask_blend_ps(k_, m_, (c));                                         \
            i_ = _mm512_mask_blend_epi32(k_, i_, cell_d);                                   \
            k_ = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(m_, m_, _CMP_ORD_Q), (d), m_,     \
                                         _CMP_NLE_UQ);                                      \
            m_ = _mm512_mask_blend_ps(k_, m_, (d));                                         \
            i_ = _mm512_mask_blend_epi32(k_, i_, cell_dr);                                  \
        }                                                                                   \
        _mm512_storeu_ps((ydst), m_);                                                       \
        _mm512_storeu_si512((void *)(amdst), i_);                                           \
    } while (0)

/* One tile: conv rows (0, 1) x columns 0 .. 2*NC-1 from x0 (the top-left window's corner),
 * filters wk[tap * O + 0..31]; NC pooled cells written at y and am (cell stride O). */
__attribute__((target("avx512f"), always_inline)) static inline void
tile(const int NC, const float *x0, ptrdiff_t W, int kh_n, int kw_n, const float *wk, int O,
     const float *bias, int relu, float *y, int32_t *am, int32_t cell0, int am_w)
{
    const __m512 bias0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    const __m512 bias1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    __m512 acc[2][TILE_COLS][2];
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++)
#pragma GCC unroll 6
        for (int q = 0; q < 2 * NC; q++)
            acc[r][q][0] = acc[r][q][1] = _mm512_setzero_ps();
    for (int kh = 0; kh < kh_n; kh++) {
        const float *ra = x0 + kh * W, *rb = ra + W;
        for (int kw = 0; kw < kw_n; kw++, wk += O) {
            const __m512 b0 = _mm512_loadu_ps(wk), b1 = _mm512_loadu_ps(wk + 16);
#pragma GCC unroll 6
            for (int q = 0; q < 2 * NC; q++) {
                const __m512 a0 = _mm512_set1_ps(ra[kw + q]);
                const __m512 a1 = _mm512_set1_ps(rb[kw + q]);
                acc[0][q][0] = _mm512_fmadd_ps(a0, b0, acc[0][q][0]);
                acc[0][q][1] = _mm512_fmadd_ps(a0, b1, acc[0][q][1]);
                acc[1][q][0] = _mm512_fmadd_ps(a1, b0, acc[1][q][0]);
                acc[1][q][1] = _mm512_fmadd_ps(a1, b1, acc[1][q][1]);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    /* relu as the GEMM's epilogue, max(0, x) + 0 (NaN stays NaN, -0 becomes +0), in one
     * instruction: with the bias's -0 made +0 (b + 0), x + b is never -0 (a sum is -0 only
     * when both terms are), and max(0, x) is x for a NaN x, 0 for x <= 0. */
    const __m512 add0 = relu ? _mm512_add_ps(bias0, zero) : bias0;
    const __m512 add1 = relu ? _mm512_add_ps(bias1, zero) : bias1;
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++)
#pragma GCC unroll 6
        for (int q = 0; q < 2 * NC; q++) {
            acc[r][q][0] = _mm512_add_ps(acc[r][q][0], add0);    /* + 0 without bias: exact */
            acc[r][q][1] = _mm512_add_ps(acc[r][q][1], add1);
            if (relu) {
                acc[r][q][0] = _mm512_max_ps(zero, acc[r][q][0]);
                acc[r][q][1] = _mm512_max_ps(zero, acc[r][q][1]);
            }
        }
#pragma GCC unroll 3
    for (int q = 0; q < NC; q++) {
        const int32_t c0 = cell0 + 2 * q;
        const __m512i cell = _mm512_set1_epi32(c0), cell_r = _mm512_set1_epi32(c0 + 1);
        const __m512i cell_d = _mm512_set1_epi32(c0 + am_w);
        const __m512i cell_dr = _mm512_set1_epi32(c0 + am_w + 1);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
            POOL_HALF(acc[0][2 * q][h], acc[0][2 * q + 1][h], acc[1][2 * q][h],
                      acc[1][2 * q + 1][h], y + q * O + 16 * h, am + q * O + 16 * h);
    }
}

PC_DIRECT_TILES(avx512, __attribute__((target("avx512f"))), FILTERS)

/* The 9 tap accumulators (2 zmm each) of one filter block: dw block += acc (+ 0) */
#define FLUSH(t)                                                                            \
    do {                                                                                    \
        float *d_ = dw + (t) * O + ob;                                                      \
        __m512 r0_ = acc##t##0, r1_ = acc##t##1;                                            \
        if (acc_mode) {                                                                     \
            r0_ = _mm512_add_ps(r0_, _mm512_loadu_ps(d_));                                  \
            r1_ = _mm512_add_ps(r1_, _mm512_loadu_ps(d_ + 16));                             \
        }                                                                                   \
        _mm512_storeu_ps(d_, _mm512_add_ps(r0_, zero));                                     \
        _mm512_storeu_ps(d_ + 16, _mm512_add_ps(r1_, zero));                                \
        acc##t##0 = acc##t##1 = zero;                                                       \
    } while (0)

#define TAP(t, row, col)                                                                    \
    do {                                                                                    \
        const __m512 a_ = _mm512_set1_ps((row)[col]);                                       \
        acc##t##0 = _mm512_fmadd_ps(a_, g0, acc##t##0);                                     \
        acc##t##1 = _mm512_fmadd_ps(a_, g1, acc##t##1);                                     \
    } while (0)

__attribute__((target("avx512f")))
void pc_direct_conv_pool_backward_avx512(const pc_conv_shape *s, const pc_pool_shape *p,
                                         const float *x, const float *dpooled,
                                         const int32_t *argmax, const float *relu_pooled,
                                         int am_w, int n0, int count, int kc, int accumulate,
                                         float *dw, float *db)
{
    const int O = s->o;
    const ptrdiff_t W = s->w;
    const size_t img_in = (size_t)s->h * s->w, img_out = (size_t)p->oh * p->ow * O;
    const __m512 zero = _mm512_setzero_ps();
    for (int ob = 0; ob < O; ob += FILTERS) {
        __m512 acc00 = zero, acc01 = zero, acc10 = zero, acc11 = zero, acc20 = zero;
        __m512 acc21 = zero, acc30 = zero, acc31 = zero, acc40 = zero, acc41 = zero;
        __m512 acc50 = zero, acc51 = zero, acc60 = zero, acc61 = zero, acc70 = zero;
        __m512 acc71 = zero, acc80 = zero, acc81 = zero;
        __m512 db0 = _mm512_loadu_ps(db + ob), db1 = _mm512_loadu_ps(db + ob + 16);
        int acc_mode = accumulate, in_block = 0;
        for (int n = n0; n < n0 + count; n++) {
            const float *xn = x + (size_t)n * img_in;
            for (int r = 0; r < s->oh; r++) {
                const float *x0 = xn + (size_t)r * W, *x1 = x0 + W, *x2 = x1 + W;
                const size_t prow = (size_t)n * img_out + (size_t)(r / 2) * p->ow * O + ob;
                /* the two cells of a pooling window's row share its gradient, relu mask and
                 * argmax: loaded and masked once, then each cell in order */
                for (int c0 = 0; c0 < s->ow; c0 += 2) {
                    const size_t q = prow + (size_t)(c0 / 2) * O;
                    __m512 gq0 = _mm512_loadu_ps(dpooled + q);
                    __m512 gq1 = _mm512_loadu_ps(dpooled + q + 16);
                    if (relu_pooled) {
                        gq0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(
                                  relu_pooled + q), zero, _CMP_GT_OQ), gq0);
                        gq1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(
                                  relu_pooled + q + 16), zero, _CMP_GT_OQ), gq1);
                    }
                    const __m512i am0 = _mm512_loadu_si512((const void *)(argmax + q));
                    const __m512i am1 = _mm512_loadu_si512((const void *)(argmax + q + 16));
#pragma GCC unroll 2
                    for (int c = c0; c < c0 + 2; c++) {
                        const __m512i cell = _mm512_set1_epi32(r * am_w + c);
                        const __m512 g0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(am0, cell),
                                                              gq0);
                        const __m512 g1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(am1, cell),
                                                              gq1);
                        TAP(0, x0 + c, 0); TAP(1, x0 + c, 1); TAP(2, x0 + c, 2);
                        TAP(3, x1 + c, 0); TAP(4, x1 + c, 1); TAP(5, x1 + c, 2);
                        TAP(6, x2 + c, 0); TAP(7, x2 + c, 1); TAP(8, x2 + c, 2);
                        db0 = _mm512_add_ps(db0, g0);
                        db1 = _mm512_add_ps(db1, g1);
                        if (++in_block == kc) {
                            FLUSH(0); FLUSH(1); FLUSH(2); FLUSH(3); FLUSH(4);
                            FLUSH(5); FLUSH(6); FLUSH(7); FLUSH(8);
                            acc_mode = 1;
                            in_block = 0;
                        }
                    }
                }
            }
        }
        if (in_block > 0) {
            FLUSH(0); FLUSH(1); FLUSH(2); FLUSH(3); FLUSH(4);
            FLUSH(5); FLUSH(6); FLUSH(7); FLUSH(8);
        }
        _mm512_storeu_ps(db + ob, db0);
        _mm512_storeu_ps(db + ob + 16, db1);
    }
}

#endif
