/*
 * winograd.c - F(2x2, 3x3) forward convolution (see winograd.h).
 *
 *   B^T = | 1  0 -1  0 |     G = | 1    0    0  |     A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |         | 1/2  1/2  1/2|           | 0  1 -1 -1 |
 *         | 0 -1  1  0 |         | 1/2 -1/2  1/2|
 *         | 0  1  0 -1 |         | 0    0    1  |
 *
 * The tiles of a chunk are taken in groups of one micro-panel (mr tiles). For a group:
 *   1. input transform: each tile's 4x4 patch (zeros outside x) -> V[tile][xi][c];
 *   2. 16 GEMMs M[xi] = V[xi] * U[xi] (tiles x C times C x O) by the micro-kernel, reading the
 *      tiles' rows where they are when the SIMD path has such a kernel (AVX-512, AVX2), else from
 *      packed slivers; U packed once per call by pc_winograd_pack_kernel;
 *   3. output transform of each tile's M[.][tile][o] -> 2x2 outputs, + bias, relu, written where
 *      they fall inside the output.
 * Each output sums its terms in a fixed order: the result does not depend on the thread count.
 */
#include "winograd.h"

#include <string.h>

#include "gemm_kernels.h"

#define XI 16                  /* transformed tile: 4 x 4 */
#define GROUP_PANELS 1         /* micro-panels (mr tiles each) per group */

static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }
static inline int tiles_1d(int n) { return (n + 1) / 2; }

int pc_winograd_applies(const pc_runtime *rt, const pc_conv_shape *s)
{
    (void)rt;
    if (s->kh != 3 || s->kw != 3 || s->sh != 1 || s->sw != 1 || s->c < 8 || s->c > 512 ||
        s->o < 16)
        return 0;
    /* multiplies: 9 per output direct, 16 per tile of (up to) 4 outputs */
    const double direct = 9.0 * s->oh * s->ow;
    const double wino = 16.0 * tiles_1d(s->oh) * tiles_1d(s->ow);
    return direct >= 1.5 * wino;
}

/* The micro-kernel of the 16 GEMMs: the runtime's, or on AVX-512 for at most 16 filters a
 * 16-column tile (the 12 x 32 tile would be half empty) of 24 rows for at most 16 channels,
 * else 16 (a group's transformed tiles, G x 16 x C floats, kept within L1: measured). Every
 * element is the same sum, in the same order, with the same epilogue in both: the choice does
 * not change a bit (64x64, 16 -> 16, batch 32, one thread: 8.7 -> 5.0 ms forward). */
static const pc_ukernel *wino_kernel(const pc_runtime *rt, const pc_conv_shape *s)
{
#if defined(__x86_64__) || defined(__i386__)
    if (rt->ukernel.isa == PC_ISA_AVX512 && s->o <= 16)
        return pc_ukernel_avx512_half(s->c <= 16 ? 24 : 16);
#endif
    (void)s;
    return &rt->ukernel;
}

static int o_padded(const pc_runtime *rt, const pc_conv_shape *s)
{
    return round_up(s->o, wino_kernel(rt, s)->nr);
}

size_t pc_winograd_kernel_floats(const pc_runtime *rt, const pc_conv_shape *s)
{
    return (size_t)XI * s->c * o_padded(rt, s);
}

/* G g G^T for one input channel and nr (or fewer) filters: g##k are the kernel's 9 taps
 * (row-major) for filters o..o+n, u##xi the 16 outputs; vectorised over the filters */
PC_SIMD_LOOP void kernel_transform_body(const float *w, ptrdiff_t tap, float *u,
                                       ptrdiff_t xi_stride, int n)
{
    const float *restrict g0 = w, *restrict g1 = w + tap, *restrict g2 = w + 2 * tap;
    const float *restrict g3 = w + 3 * tap, *restrict g4 = w + 4 * tap;
    const float *restrict g5 = w + 5 * tap, *restrict g6 = w + 6 * tap;
    const float *restrict g7 = w + 7 * tap, *restrict g8 = w + 8 * tap;
    float *restrict u0 = u, *restrict u1 = u + xi_stride, *restrict u2 = u + 2 * xi_stride;
    float *restrict u3 = u + 3 * xi_stride, *restrict u4 = u + 4 * xi_stride;
    float *restrict u5 = u + 5 * xi_stride, *restrict u6 = u + 6 * xi_stride;
    float *restrict u7 = u + 7 * xi_stride, *restrict u8 = u + 8 * xi_stride;
    float *restrict u9 = u + 9 * xi_stride, *restrict u10 = u + 10 * xi_stride;
    float *restrict u11 = u + 11 * xi_stride, *restrict u12 = u + 12 * xi_stride;
    float *restrict u13 = u + 13 * xi_stride, *restrict u14 = u + 14 * xi_stride;
    float *restrict u15 = u + 15 * xi_stride;
    /* U = t G^T for a row (a, b, c) of t = G g: (a, (a+b+c)/2, (a-b+c)/2, c) */
#define PC_WINO_ROW(ua, ub, uc, ud, a, b, c)                                            \
    ua[o] = (a);                                                                        \
    ub[o] = 0.5f * ((a) + (b) + (c));                                                   \
    uc[o] = 0.5f * ((a) - (b) + (c));                                                   \
    ud[o] = (c)
#pragma GCC ivdep
    for (int o = 0; o < n; o++) {
        /* t = G g: rows g0-2 (first kernel row), (sum of the rows) / 2, (r0 - r1 + r2) / 2, r2 */
        const float a0 = g0[o], a1 = g1[o], a2 = g2[o];
        const float b0 = 0.5f * (g0[o] + g3[o] + g6[o]), b1 = 0.5f * (g1[o] + g4[o] + g7[o]);
        const float b2 = 0.5f * (g2[o] + g5[o] + g8[o]);
        const float c0 = 0.5f * (g0[o] - g3[o] + g6[o]), c1 = 0.5f * (g1[o] - g4[o] + g7[o]);
        const float c2 = 0.5f * (g2[o] - g5[o] + g8[o]);
        const float d0 = g6[o], d1 = g7[o], d2 = g8[o];
        PC_WINO_ROW(u0, u1, u2, u3, a0, a1, a2);
        PC_WINO_ROW(u4, u5, u6, u7, b0, b1, b2);
        PC_WINO_ROW(u8, u9, u10, u11, c0, c1, c2);
        PC_WINO_ROW(u12, u13, u14, u15, d0, d1, d2);
    }
#undef PC_WINO_ROW
}
PC_SIMD_VARIANTS(kernel_transform, (const float *w, ptrdiff_t tap, float *u, ptrdiff_t xi_stride,
                                    int n), (w, tap, u, xi_stride, n))

void pc_winograd_pack_kernel(const pc_runtime *rt, const pc_conv_shape *s, const float *w,
                             float *u)
{
    const int C = s->c, O = s->o, nr = wino_kernel(rt, s)->nr, op = o_padded(rt, s);
    const pc_isa isa = pc_loop_isa(rt);
    memset(u, 0, pc_winograd_kernel_floats(rt, s) * sizeof(float));
    /* packed B of xi: sliver o / nr, row c, column o % nr */
    for (int c = 0; c < C; c++)
        for (int o = 0; o < O; o += nr)
            kernel_transform(isa, w + (size_t)c * O + o, (ptrdiff_t)C * O,
                             u + (size_t)(o / nr) * C * nr + (size_t)c * nr, (ptrdiff_t)C * op,
                             O - o < nr ? O - o : nr);
}

static int group_tiles(const pc_runtime *rt, const pc_conv_shape *s)
{
    return GROUP_PANELS * wino_kernel(rt, s)->mr;
}

size_t pc_winograd_scratch_floats(const pc_runtime *rt, const pc_conv_shape *s)
{
    const size_t g = (size_t)group_tiles(rt, s);
    return (size_t)XI * g * s->c            /* V, packed */
           + (size_t)XI * g * o_padded(rt, s)  /* M */
           + g * XI * s->c                  /* the group's transformed tiles */
           + (size_t)XI * s->c              /* 4 patch rows at the borders, zero-padded */
           + (size_t)4 * s->o;              /* a 2x2 output tile at the borders */
}

/* 16 floats as one value: GCC's generic vectors (one zmm, two ymm or four xmm, whatever the
 * variant's ISA has); aligned(4): loads and stores through it need no alignment. The transforms
 * below are written on them because GCC's own vectorisation of the channel loops (32 streams
 * of runtime stride) fell back to scalar inserts. */
typedef float pc_v16 __attribute__((vector_size(64), aligned(4)));
typedef int pc_vi16 __attribute__((vector_size(64), aligned(4)));
#define V16(p) (*(pc_v16 *)(p))
#define CV16(p) (*(const pc_v16 *)(p))

/* B^T d B for one tile, over the channels: row r of the 4x4 patch is 4 cells of C floats at
 * d0..d3; v[xi][c] */
PC_SIMD_LOOP void input_transform_body(const float *restrict d0, const float *restrict d1,
                                      const float *restrict d2, const float *restrict d3,
                                      float *restrict v, int C)
{
    /* t = B^T d (rows): t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3 per column q;
     * then V = t B (columns) for each row r of t: (t_r0 - t_r2, t_r1 + t_r2, t_r2 - t_r1,
     * t_r1 - t_r3) */
    int c = 0;
    for (; c + 16 <= C; c += 16) {
        pc_v16 t[4][4];
        for (int q = 0; q < 4; q++) {
            const pc_v16 a = CV16(d0 + q * C + c), b = CV16(d1 + q * C + c);
            const pc_v16 e = CV16(d2 + q * C + c), f = CV16(d3 + q * C + c);
            t[0][q] = a - e;
            t[1][q] = b + e;
            t[2][q] = e - b;
            t[3][q] = b - f;
        }
        for (int r = 0; r < 4; r++) {
            V16(v + (4 * r + 0) * C + c) = t[r][0] - t[r][2];
            V16(v + (4 * r + 1) * C + c) = t[r][1] + t[r][2];
            V16(v + (4 * r + 2) * C + c) = t[r][2] - t[r][1];
            V16(v + (4 * r + 3) * C + c) = t[r][1] - t[r][3];
        }
    }
    for (; c < C; c++) {
        float t[4][4];
        for (int q = 0; q < 4; q++) {
            const float a = d0[q * C + c], b = d1[q * C + c];
            const float e = d2[q * C + c], f = d3[q * C + c];
            t[0][q] = a - e;
            t[1][q] = b + e;
            t[2][q] = e - b;
            t[3][q] = b - f;
        }
        for (int r = 0; r < 4; r++) {
            v[(4 * r + 0) * C + c] = t[r][0] - t[r][2];
            v[(4 * r + 1) * C + c] = t[r][1] + t[r][2];
            v[(4 * r + 2) * C + c] = t[r][2] - t[r][1];
            v[(4 * r + 3) * C + c] = t[r][1] - t[r][3];
        }
    }
}
PC_SIMD_VARIANTS(input_transform, (const float *restrict d0, const float *restrict d1,
                                   const float *restrict d2, const float *restrict d3,
                                   float *restrict v, int C), (d0, d1, d2, d3, v, C))

/* A^T m A for one tile, over the filters: m[xi * stride + o] is M[xi][tile][o]; the 2x2
 * outputs go to y0 (first row: 2 cells of O floats) and y1 (second row). For each row r of m:
 * s_r0 = m_r0 + m_r1 + m_r2, s_r1 = m_r1 - m_r2 - m_r3 (m A), then A^T (rows) and the bias;
 * relu zeroes what is <= 0 (NaN stays NaN, -0 becomes +0, as everywhere). */
#define PC_WINO_OUT(T, LD, o)                                                              \
    const T s00 = LD(m + (o)) + LD(m + stride + (o)) + LD(m + 2 * stride + (o));            \
    const T s01 = LD(m + stride + (o)) - LD(m + 2 * stride + (o)) - LD(m + 3 * stride + (o)); \
    const T s10 = LD(m + 4 * stride + (o)) + LD(m + 5 * stride + (o)) +                     \
                  LD(m + 6 * stride + (o));                                                 \
    const T s11 = LD(m + 5 * stride + (o)) - LD(m + 6 * stride + (o)) -                     \
                  LD(m + 7 * stride + (o));                                                 \
    const T s20 = LD(m + 8 * stride + (o)) + LD(m + 9 * stride + (o)) +                     \
                  LD(m + 10 * stride + (o));                                                \
    const T s21 = LD(m + 9 * stride + (o)) - LD(m + 10 * stride + (o)) -                    \
                  LD(m + 11 * stride + (o));                                                \
    const T s30 = LD(m + 12 * stride + (o)) + LD(m + 13 * stride + (o)) +                   \
                  LD(m + 14 * stride + (o));                                                \
    const T s31 = LD(m + 13 * stride + (o)) - LD(m + 14 * stride + (o)) -                   \
                  LD(m + 15 * stride + (o));                                                \
    const T a0 = s00 + s10 + s20 + bo, a1 = s01 + s11 + s21 + bo;                         \
    const T b0 = s10 - s20 - s30 + bo, b1 = s11 - s21 - s31 + bo
#define PC_LD1(p) (*(p))

PC_SIMD_LOOP void output_transform_body(const float *restrict m, ptrdiff_t stride,
                                       const float *restrict bias, int relu,
                                       float *restrict y0, float *restrict y1, int O)
{
    int o = 0;
    const pc_v16 zero = {0};
    for (; o + 16 <= O; o += 16) {
        const pc_v16 bo = bias ? CV16(bias + o) : zero;
        PC_WINO_OUT(pc_v16, CV16, o);
        if (relu) {
            V16(y0 + o) = (pc_v16)((pc_vi16)a0 & ~(pc_vi16)(a0 <= zero));
            V16(y0 + O + o) = (pc_v16)((pc_vi16)a1 & ~(pc_vi16)(a1 <= zero));
            V16(y1 + o) = (pc_v16)((pc_vi16)b0 & ~(pc_vi16)(b0 <= zero));
            V16(y1 + O + o) = (pc_v16)((pc_vi16)b1 & ~(pc_vi16)(b1 <= zero));
        } else {
            V16(y0 + o) = a0;
            V16(y0 + O + o) = a1;
            V16(y1 + o) = b0;
            V16(y1 + O + o) = b1;
        }
    }
    for (; o < O; o++) {
        const float bo = bias ? bias[o] : 0.0f;
        PC_WINO_OUT(float, PC_LD1, o);
        y0[o] = relu && a0 <= 0.0f ? 0.0f : a0;
        y0[O + o] = relu && a1 <= 0.0f ? 0.0f : a1;
        y1[o] = relu && b0 <= 0.0f ? 0.0f : b0;
        y1[O + o] = relu && b1 <= 0.0f ? 0.0f : b1;
    }
}
PC_SIMD_VARIANTS(output_transform, (const float *restrict m, ptrdiff_t stride,
                                    const float *restrict bias, int relu, float *restrict y0,
                                    float *restrict y1, int O), (m, stride, bias, relu, y0, y1, O))
#undef PC_WINO_OUT
#undef PC_LD1

/* The 16 GEMMs of a group from packed slivers: V[xi][sliver][c][i] written in order from
 * tmp[t][xi][c] (the strided side is the reads), then M[xi][t][o] = V[xi] * U[xi]. */
static void gemms_packed(const pc_ukernel *uk, const float *tmp, float *V, const float *u,
                         float *M, int C, int G, int op, int gt)
{
    const int mr = uk->mr, nr = uk->nr, gp = round_up(gt, mr);
    for (int ts = 0; ts < gp; ts += mr) {
        const int me = gt - ts < mr ? gt - ts : mr;
        for (int xi = 0; xi < XI; xi++) {
            float *dst = V + (size_t)xi * G * C + (size_t)ts * C;
            const float *src = tmp + (size_t)ts * XI * C + (size_t)xi * C;
            if (me == 12 && mr == 12) {     /* the AVX-512 panel, unrolled */
                pc_pack_12(dst, src, (ptrdiff_t)XI * C, C);
                continue;
            }
            for (int c = 0; c < C; c++, dst += mr) {
                for (int i = 0; i < me; i++)
                    dst[i] = src[(size_t)i * XI * C + c];
                for (int i = me; i < mr; i++)
                    dst[i] = 0.0f;
            }
        }
    }
    for (int xi = 0; xi < XI; xi++)
        for (int ts = 0; ts < gp; ts += mr)
            for (int os = 0; os < op; os += nr)
                uk->fn(C, V + (size_t)xi * G * C + (size_t)ts * C,
                       u + (size_t)xi * C * op + (size_t)os * C,
                       M + (size_t)xi * G * op + (size_t)ts * op + os, op, 0, NULL, 0);
}

void pc_winograd_forward(const pc_runtime *rt, const pc_conv_shape *s, const float *u,
                         const float *x, const float *b, pc_act act, int n0, int count,
                         float *out, float *scratch)
{
    const pc_ukernel *uk = wino_kernel(rt, s);
    const pc_isa isa = pc_loop_isa(rt);
    const int C = s->c, O = s->o, mr = uk->mr, nr = uk->nr, op = o_padded(rt, s);
    const int G = group_tiles(rt, s);
    const int tw = tiles_1d(s->ow), per_img = tiles_1d(s->oh) * tw, total = count * per_img;
    float *V = scratch;
    float *M = V + (size_t)XI * G * C;
    float *tmp = M + (size_t)XI * G * op;
    float *edge_rows = tmp + (size_t)G * XI * C;
    float *edge_tile = edge_rows + (size_t)XI * C;
    const size_t img_in = (size_t)s->h * s->w * C, img_out = (size_t)s->oh * s->ow * O;
    for (int t0 = 0; t0 < total; t0 += G) {
        const int gt = total - t0 < G ? total - t0 : G;
        /* 1. input transform of each tile into tmp[t][xi][c], then packed slivers
         * V[xi][sliver][c][i] written in order (the strided side is the reads) */
        for (int t = 0; t < gt; t++) {
            const int tile = t0 + t, n = tile / per_img, q = tile % per_img;
            const int h0 = 2 * (q / tw) - s->pt, w0 = 2 * (q % tw) - s->pl;
            const float *xn = x + (size_t)(n0 + n) * img_in;
            const float *row[4];
            for (int r = 0; r < 4; r++) {
                const int ih = h0 + r;
                if (ih >= 0 && ih < s->h && w0 >= 0 && w0 + 4 <= s->w) {
                    row[r] = xn + ((size_t)ih * s->w + w0) * C;
                    continue;
                }
                float *e = edge_rows + (size_t)r * 4 * C;     /* the cells inside x, else 0 */
                for (int k = 0; k < 4; k++) {
                    const int iw = w0 + k;
                    if (ih >= 0 && ih < s->h && iw >= 0 && iw < s->w)
                        memcpy(e + k * C, xn + ((size_t)ih * s->w + iw) * C,
                               (size_t)C * sizeof(float));
                    else
                        memset(e + k * C, 0, (size_t)C * sizeof(float));
                }
                row[r] = e;
            }
            input_transform(isa, row[0], row[1], row[2], row[3], tmp + (size_t)t * XI * C, C);
        }
        /* 2. the 16 GEMMs M[xi][t][o]: straight from tmp when the micro-kernel can read A's
         * rows in place (tile t's row of xi at tmp + (t*XI + xi)*C; a group short of a panel
         * is padded with zero tiles, whose results are not used), else from packed slivers */
        if (uk->fn_rows && GROUP_PANELS == 1) {
            memset(tmp + (size_t)gt * XI * C, 0, (size_t)(mr - gt) * XI * C * sizeof(float));
            for (int xi = 0; xi < XI; xi++)
                for (int os = 0; os < op; os += nr)
                    uk->fn_rows(C, tmp + (size_t)xi * C, (ptrdiff_t)XI * C,
                                u + (size_t)xi * C * op + (size_t)os * C, nr,
                                M + (size_t)xi * G * op + os, op, 0, NULL, 0);
        } else {
            gemms_packed(uk, tmp, V, u, M, C, G, op, gt);
        }
        /* 3. output transform */
        for (int t = 0; t < gt; t++) {
            const int tile = t0 + t, n = tile / per_img, q = tile % per_img;
            const int oh0 = 2 * (q / tw), ow0 = 2 * (q % tw);
            float *yn = out + (size_t)n * img_out;
            const int rows = oh0 + 1 < s->oh ? 2 : 1, cols = ow0 + 1 < s->ow ? 2 : 1;
            float *y0 = yn + ((size_t)oh0 * s->ow + ow0) * O;
            if (rows == 2 && cols == 2) {
                output_transform(isa, M + (size_t)t * op, (ptrdiff_t)G * op, b, act == PC_ACT_RELU,
                                 y0, y0 + (size_t)s->ow * O, O);
                continue;
            }
            /* a tile on the bottom or right border: only its cells inside the output */
            output_transform(isa, M + (size_t)t * op, (ptrdiff_t)G * op, b, act == PC_ACT_RELU,
                             edge_tile, edge_tile + 2 * O, O);
            memcpy(y0, edge_tile, (size_t)cols * O * sizeof(float));
            if (rows == 2)
                memcpy(y0 + (size_t)s->ow * O, edge_tile + 2 * O, (size_t)cols * O * sizeof(float));
        }
    }
}
