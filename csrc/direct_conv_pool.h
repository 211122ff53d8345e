/*
 * direct_conv_pool.h - the first layer of an image network (one input channel) convolved and
 * 2x2 max-pooled in registers, used by conv2d.c's fused convolution + pooling.
 *
 * With one channel the im2col GEMM has k = KH*KW (9) and spends as long packing each 12-pixel
 * panel and storing and re-reading the convolution's output for the pooling as multiplying.
 * Here a tile of 2 convolution rows x 6 columns x a block of filters (AVX-512: 32 filters in 24
 * zmm accumulators, direct_conv_pool_avx512.c; AVX2: 8 filters in 12 ymm,
 * direct_conv_pool_avx2.c) takes its taps straight from x (each a broadcast load) and the
 * kernel straight from w, and the epilogue adds the bias, applies relu and pools the tile's
 * three 2x2 windows before anything is stored.
 * Every output is the same float32 computation as the GEMM path's (taps summed in order from 0
 * by fused multiply-adds, + bias, relu, the first maximum of each window in row-major order):
 * results are bit-identical to it.
 */
#ifndef PYCNN_DIRECT_CONV_POOL_H
#define PYCNN_DIRECT_CONV_POOL_H

#include "pycnn.h"

/* Whether this kernel serves the fused pair: one input channel, stride 1, windows inside x,
 * filters a multiple of 32, non-overlapping 2x2 pooling without padding, linear or relu, and
 * the AVX-512 or AVX2 path selected (the portable path keeps the GEMM). s and p are the cropped
 * shapes: 2*p->oh x 2*p->ow convolution cells. */
int pc_direct_conv_pool_applies(const pc_runtime *rt, const pc_conv_shape *s,
                                const pc_pool_shape *p, pc_act act);

/* Images [n0, n0 + count): pooled[n][ph][pw][o] and argmax (cells numbered h * am_w + w). */
void pc_direct_conv_pool(const pc_runtime *rt, const pc_conv_shape *s, const pc_pool_shape *p,
                         const float *x, const float *w, const float *b, int relu, int am_w,
                         int n0, int count, float *pooled, int32_t *argmax);

/* The weight and bias gradients of the same pair for 3x3 kernels, without dx (a first layer's
 * input needs none): for images [n0, n0 + count) (one chunk of conv2d.c's backward), with the
 * convolution's dy rebuilt in registers from the pooled gradient, argmax and, for a relu, the
 * pooled output (relu_pooled, else NULL):
 *     dw[t][o] = (accumulate ? dw[t][o] : 0) + sum over the chunk's pixels of x[tap t] dy[o]
 *     db[o] += sum over the chunk's pixels of dy[o]
 * summed as pc_gemm_serial and conv2d.c's column sums do (pixels in order, in k blocks of kc,
 * each block's sum added to dw): bit-identical to that path. */
int pc_direct_conv_pool_backward_applies(const pc_runtime *rt, const pc_conv_shape *s,
                                         const pc_pool_shape *p);
void pc_direct_conv_pool_backward(const pc_runtime *rt, const pc_conv_shape *s,
                                  const pc_pool_shape *p, const float *x, const float *dpooled,
                                  const int32_t *argmax, const float *relu_pooled, int am_w,
                                  int n0, int count, int kc, int accumulate, float *dw,
                                  float *db);

/* ---- the per-ISA parts (x86-64 with GCC or Clang only) ------------------------------------
 * Forward: tiles, walked by pc_direct_conv_pool. tile[NC - 1] computes conv rows 0-1 x columns
 * 0 .. 2*NC-1 from x0 (the top-left window's corner; rows W floats apart) for `filters`
 * filters at wk[tap * O], + bias (NULL: none), relu, and writes NC pooled cells at y and am
 * (cell stride O; argmax cells numbered cell0 + h * am_w + w). Backward: the whole contract. */
typedef void (*pc_direct_tile_fn)(const float *x0, ptrdiff_t W, int kh_n, int kw_n,
                                  const float *wk, int O, const float *bias, int relu, float *y,
                                  int32_t *am, int32_t cell0, int am_w);
typedef struct {
    int filters;                   /* per tile: divides 32 */
    pc_direct_tile_fn tile[3];     /* 1, 2 and 3 pooled cells */
} pc_direct_tiles;

#if defined(__x86_64__) && defined(__GNUC__)
#define PC_DIRECT_X86 1
#define PC_DIRECT_DECLARE(isa)                                                                 \
    extern const pc_direct_tiles pc_direct_tiles_##isa;                                        \
    void pc_direct_conv_pool_backward_##isa(const pc_conv_shape *s, const pc_pool_shape *p,     \
                                            const float *x, const float *dpooled,               \
                                            const int32_t *argmax, const float *relu_pooled,    \
                                            int am_w, int n0, int count, int kc,                \
                                            int accumulate, float *dw, float *db);
PC_DIRECT_DECLARE(avx512)
PC_DIRECT_DECLARE(avx2)
#undef PC_DIRECT_DECLARE

/* In an ISA's file, after its always-inline tile(NC, ...): the three tile functions, compiled
 * for that ISA, and its table pc_direct_tiles_<isa>. */
#define PC_DIRECT_TILE_FN(TARGET, NC)                                                          \
    TARGET static void tile##NC(const float *x0, ptrdiff_t W, int kh_n, int kw_n,              \
                                const float *wk, int O, const float *bias, int relu, float *y, \
                                int32_t *am, int32_t cell0, int am_w)                          \
    {                                                                                          \
        tile(NC, x0, W, kh_n, kw_n, wk, O, bias, relu, y, am, cell0, am_w);                    \
    }
#define PC_DIRECT_TILES(isa, TARGET, filters)                                                  \
    PC_DIRECT_TILE_FN(TARGET, 1)                                                               \
    PC_DIRECT_TILE_FN(TARGET, 2)                                                               \
    PC_DIRECT_TILE_FN(TARGET, 3)                                                               \
    const pc_direct_tiles pc_direct_tiles_##isa = {filters, {tile1, tile2, tile3}};
#else
#define PC_DIRECT_X86 0
#endif

#endif
