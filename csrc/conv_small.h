/*
 * conv_small.h - direct convolution for layers with few taps per output (KH*KW*C <=
 * PC_SMALL_TAPS: a first layer on one or a few input channels), used by conv2d.c in place of
 * the implicit-im2col GEMM, whose k (9 for 3x3 on one channel) is too short for the
 * micro-kernel's tiles.
 *
 * Forward: each image is copied with its zero padding into scratch; for each block of 16
 * filters the taps' weights stay in registers and every output pixel is
 *     y[o] = (sum over taps t in order of x_t * w[t][o]) + b[o],  then relu
 * (on x86-64-v3 and v4 each term an FMA, as their GEMM micro-kernels: the bits of the GEMM's
 * and of the fused conv+pool's forward).
 * Weight gradient: for each block of 16 filters, per pixel in order g = dy (masked by y > 0
 * when the relu's output is given), dw[t][o] += x_t * g[o], db[o] += g[o], in registers, with
 * the pixels of a chunk in the GEMM's k blocks (pc_gemm_k_block): each block's sums start from 0
 * and are stored as the GEMM's micro-kernel stores them, and db goes on from the caller's column
 * sums: the bits of conv2d.c's GEMM path (and of the fused conv+pool's).
 */
#ifndef PYCNN_CONV_SMALL_H
#define PYCNN_CONV_SMALL_H

#include "pycnn.h"

#define PC_SMALL_TAPS 32

/* Whether the direct path serves this convolution (few taps, at most 4 input channels). */
int pc_conv_small_applies(const pc_conv_shape *s);

/* Floats of the packed kernel (taps x O rounded up to 16, then the padded bias). */
size_t pc_conv_small_kernel_floats(const pc_conv_shape *s);
void pc_conv_small_pack(const pc_conv_shape *s, const float *w, const float *b, float *wp);

/* Scratch of one thread, in floats: one padded image. */
size_t pc_conv_small_scratch_floats(const pc_conv_shape *s);

/* y of images [n0, n0+count) into out (the chunk's first image's output). */
void pc_conv_small_forward(const pc_runtime *rt, const pc_conv_shape *s, const float *wp,
                           const float *x, int relu, int n0, int count, float *out,
                           float *scratch);

/* dw (taps x O, row-major as w) of images [n0, n0+count), their pixels in k blocks of kc
 * (pc_gemm_k_block of the chunk's rows): dw = the blocks' sums added in order to (first ? 0 :
 * dw), as pc_gemm_serial with accumulate = !first; db (O) += the pixels' g in order, as
 * conv2d.c's column sums. dy and y (or NULL) are the chunk's first image's. */
void pc_conv_small_dw(const pc_runtime *rt, const pc_conv_shape *s, const float *x,
                      const float *dy, const float *y, int n0, int count, int first, int kc,
                      float *dw, float *db, float *scratch);

#endif
