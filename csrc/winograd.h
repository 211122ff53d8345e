/*
 * winograd.h - the forward pass of 3x3, stride-1 convolutions by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), used by
 * conv2d.c for the chunks of images it hands out.
 *
 * Each 2x2 block of outputs ("tile") reads a 4x4 patch d of the input; per channel pair (c, o)
 *     Y = A^T [ (G g G^T) (.) (B^T d B) ] A
 * so the 9 multiplies per output of the direct method become 16 per 4 outputs, and the sum over
 * input channels becomes 16 independent GEMMs (tiles x C) * (C x O) run by the micro-kernel.
 * Results differ from the direct method by rounding only (the transforms add and halve).
 */
#ifndef PYCNN_WINOGRAD_H
#define PYCNN_WINOGRAD_H

#include "pycnn.h"

/* Whether the Winograd path serves this convolution: 3x3, stride 1, enough channels for the
 * 16 GEMMs to run well, and enough outputs per tile that it saves at least a third of the work. */
int pc_winograd_applies(const pc_runtime *rt, const pc_conv_shape *s);

/* The transformed kernel U = G g G^T, packed as the micro-kernel's B panels (16 of them). */
size_t pc_winograd_kernel_floats(const pc_runtime *rt, const pc_conv_shape *s);
void pc_winograd_pack_kernel(const pc_runtime *rt, const pc_conv_shape *s, const float *w,
                             float *u);

/* Outputs of images [n0, n0+count): out[(i*oh + oh_)*ow + ow_][o] for image n0+i, + bias,
 * then relu when act is PC_ACT_RELU. `scratch` holds pc_winograd_scratch_floats() floats. */
size_t pc_winograd_scratch_floats(const pc_runtime *rt, const pc_conv_shape *s);
void pc_winograd_forward(const pc_runtime *rt, const pc_conv_shape *s, const float *u,
                         const float *x, const float *b, pc_act act, int n0, int count,
                         float *out, float *scratch);

#endif
