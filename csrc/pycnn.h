/*
 * pycnn.h - every C kernel of pycnn, with the tensor layout beside each signature.
 *
 * The kernels know nothing of Python. They take raw float32 pointers and sizes, never allocate
 * in their hot loops (scratch comes from the runtime, see runtime.h), return PC_OK or a negative
 * error code, and are safe to call from any thread: the runtime serialises concurrent callers.
 *
 * Layouts follow Keras (channels last):
 *   activations  x[N][H][W][C]            (NHWC, row-major)
 *   conv kernel  w[KH][KW][C][O]          (HWIO, as Keras stores it)
 *   dense kernel w[IN][OUT]
 *   biases       b[OUT]
 * Every array is C-contiguous; the binding (bind_<family>.c) checks this before calling.
 *
 * Worked example: the lecture's second convolution on a batch of 128,
 *   pc_runtime rt;
 *   pc_runtime_init(&rt, 2);
 *   pc_conv_shape s = {.n = 128, .h = 13, .w = 13, .c = 32, .kh = 3, .kw = 3, .o = 64,
 *                      .oh = 11, .ow = 11, .sh = 1, .sw = 1, .pt = 0, .pl = 0};
 *   pc_runtime_enter(&rt);
 *   int rc = pc_conv2d_forward(&rt, &s, x, w, b, y, PC_ACT_RELU);
 *   pc_runtime_leave(&rt);
 *   pc_runtime_destroy(&rt);
 * reads x[128][13][13][32] and w[3][3][32][64] and writes y[128][11][11][64] = relu(x (*) w + b);
 * rc is PC_OK, or PC_ENOMEM when the scratch could not grow.
 *
 * Determinism: every kernel gives bit-identical results for any thread count. Work is split
 * into tasks whose boundaries do not depend on the number of threads, and every reduction adds
 * its terms in a fixed order.
 */
#ifndef PYCNN_H
#define PYCNN_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

enum {
    PC_OK = 0,
    PC_ENOMEM = -1,   /* an allocation failed */
    PC_EINVAL = -2,   /* a size or hyper-parameter is out of range (the binding checks first) */
    PC_ENONFINITE = -3/* a non-finite value where the kernel cannot accept one */
};

/* Elementwise loops for every SIMD path, chosen by the runtime (pc_select_isa, PYCNN_ISA,
 * pycnn.backend.set_simd_path) like the GEMM micro-kernels:
 *
 *     PC_SIMD_LOOP void scale_body(float *restrict y, float a, size_t n)
 *     {
 *         for (size_t i = 0; i < n; i++) y[i] *= a;
 *     }
 *     PC_SIMD_VARIANTS(scale, (float *restrict y, float a, size_t n), (y, a, n))
 *     ...
 *     scale(pc_loop_isa(rt), y, 2.0f, n);
 *
 * The body (a plain loop GCC vectorises) is always inlined into three variants compiled for
 * x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline, and `name(isa, ...)` calls the
 * variant of `isa`. PC_SIMD_VARIANTS_RET(type, ...) does the same for a body returning `type`.
 * ISO C contracts no a*b+c into an FMA and reassociates no sum, so every variant computes the
 * same float operations in the same order: the paths differ in speed, never in results.
 * Elsewhere (other CPUs and compilers, or -DPYCNN_NO_CLONES) there is one portable build.
 * Every vectorised loop outside the GEMM micro-kernels (which the runtime picks by the same ISA)
 * is written this way, so PYCNN_ISA=generic runs the portable path of every kernel on any host. */
#define PC_UNPAREN(...) __VA_ARGS__
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYCNN_NO_CLONES)
#define PC_SIMD_LOOP static inline __attribute__((always_inline))
#define PC_SIMD_VARIANTS_(ret, name, params, args, RETURN)                                        \
    __attribute__((target("arch=x86-64-v4"), noinline)) static ret name##_v4 params              \
    { RETURN name##_body args; }                                                                  \
    __attribute__((target("arch=x86-64-v3"), noinline)) static ret name##_v3 params              \
    { RETURN name##_body args; }                                                                  \
    __attribute__((noinline)) static ret name##_v1 params { RETURN name##_body args; }            \
    static inline ret name(pc_isa isa, PC_UNPAREN params)                                         \
    {                                                                                             \
        if (isa == PC_ISA_AVX512) { RETURN name##_v4 args; }                                      \
        else if (isa == PC_ISA_AVX2) { RETURN name##_v3 args; }                                   \
        else { RETURN name##_v1 args; }                                                           \
    }
#else
#define PC_SIMD_LOOP static inline
#define PC_SIMD_VARIANTS_(ret, name, params, args, RETURN)                                        \
    static inline ret name(pc_isa isa, PC_UNPAREN params)                                         \
    {                                                                                             \
        (void)isa;                                                                                \
        RETURN name##_body args;                                                                  \
    }
#endif
#define PC_SIMD_VARIANTS(name, params, args) PC_SIMD_VARIANTS_(void, name, params, args, )
#define PC_SIMD_VARIANTS_RET(ret, name, params, args) \
    PC_SIMD_VARIANTS_(ret, name, params, args, return)

/* Copies n floats; an inline loop for the short rows of im2col and packing (a libc memcpy call
 * per 3 or 12 floats costs more than the copy). */
static inline void pc_copy_floats(float *restrict dst, const float *restrict src, size_t n)
{
    if (n >= 64) {
        __builtin_memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
}

/* dst[p*12 + i] = src[i*stride + p] for p < k, i < 12: twelve rows into a packed 12-row GEMM
 * panel (the AVX-512 micro-kernel's height), unrolled, writing in order: the strided side is
 * the loads, which costs less than strided stores (measured). */
static inline void pc_pack_12(float *restrict dst, const float *restrict src, ptrdiff_t stride,
                              int k)
{
    const float *s0 = src, *s1 = s0 + stride, *s2 = s1 + stride, *s3 = s2 + stride;
    const float *s4 = s3 + stride, *s5 = s4 + stride, *s6 = s5 + stride, *s7 = s6 + stride;
    const float *s8 = s7 + stride, *s9 = s8 + stride, *s10 = s9 + stride, *s11 = s10 + stride;
    for (int p = 0; p < k; p++, dst += 12) {
        dst[0] = s0[p];
        dst[1] = s1[p];
        dst[2] = s2[p];
        dst[3] = s3[p];
        dst[4] = s4[p];
        dst[5] = s5[p];
        dst[6] = s6[p];
        dst[7] = s7[p];
        dst[8] = s8[p];
        dst[9] = s9[p];
        dst[10] = s10[p];
        dst[11] = s11[p];
    }
}

/* Fused activations applied by the dense and conv kernels after the bias. */
typedef enum { PC_ACT_LINEAR = 0, PC_ACT_RELU = 1, PC_ACT_SIGMOID = 2, PC_ACT_TANH = 3,
               PC_ACT_SOFTMAX = 4,
               /* elementwise kinds of activations_ext.c (never fused into a GEMM epilogue) */
               PC_ACT_ELU = 5, PC_ACT_SELU = 6, PC_ACT_SOFTPLUS = 7, PC_ACT_SOFTSIGN = 8,
               PC_ACT_SILU = 9, PC_ACT_HARD_SIGMOID = 10, PC_ACT_HARD_SILU = 11,
               PC_ACT_RELU6 = 12, PC_ACT_LEAKY_RELU = 13, PC_ACT_EXPONENTIAL = 14,
               PC_ACT_GELU = 15, PC_ACT_GELU_TANH = 16, PC_ACT_MISH = 17,
               PC_ACT_LOG_SIGMOID = 18, PC_ACT_HARD_TANH = 19 } pc_act;
#define PC_ACT_FIRST_EXT PC_ACT_ELU
#define PC_ACT_LAST_EXT PC_ACT_HARD_TANH

/* ---- GEMM (gemm.c) -------------------------------------------------------------------------
 * C[m][n] (row stride ldc) = A (m x k) * B (k x n)   (+ C when accumulate)
 * A(i, p) = a[i*rsa + p*csa], B(p, j) = b[p*rsb + j*csb]: any transposition through strides.
 * Optional epilogue, applied once after the whole sum: + bias[j], then relu when act == RELU.
 * `parallel` spreads the work over the runtime's threads; 0 runs it on the calling thread.
 * pc_gemm uses the runtime's shared scratch, so it is called only outside pc_parallel; a task
 * that is already parallel calls pc_gemm_serial with its own thread's scratch. */
/* Packs A[i0:i0+mb, p0:p0+kb] into slivers of mr rows (dst[s][p][i], zero-padded), for an A
 * that is never stored: the implicit im2col of a convolution. */
typedef void (*pc_pack_fn)(const void *ctx, int i0, int mb, int p0, int kb, int mr, float *dst);

typedef struct {
    int m, n, k;
    const float *a; ptrdiff_t rsa, csa;   /* ignored when pack_a is set */
    pc_pack_fn pack_a;                    /* NULL: pack from a/rsa/csa */
    const void *pack_ctx;
    const float *b; ptrdiff_t rsb, csb;
    const float *b_packed;                /* B packed by pc_gemm_pack_b, or NULL (serial only) */
    float *c; ptrdiff_t ldc;
    int accumulate;
    const float *bias;    /* NULL or n floats */
    pc_act act;           /* PC_ACT_LINEAR or PC_ACT_RELU */
} pc_gemm_args;

int pc_gemm(pc_runtime *rt, const pc_gemm_args *g, int parallel);
/* Scratch (in floats) that pc_gemm(..., parallel=0) needs on one thread for these sizes. */
size_t pc_gemm_scratch_floats(const pc_runtime *rt, int m, int n, int k);
/* Single-threaded GEMM using caller-supplied scratch of pc_gemm_scratch_floats() floats. */
void pc_gemm_serial(const pc_runtime *rt, const pc_gemm_args *g, float *scratch);
/* C = A B on the calling thread from A's nonzeros only, when the ISA has a kernel for it:
 * B row-major (csb == 1) 64-byte aligned with rsb a multiple of 16 (>= n rounded up), A's rows
 * contiguous, k within one k block (pc_gemm_k_block(k) == k) and <= 320, no accumulation, bias
 * or activation. Bit-identical to pc_gemm_serial for a finite B. Returns 0 when done, -1 when
 * the caller must run pc_gemm_serial instead. */
int pc_gemm_sparse_a(const pc_runtime *rt, const pc_gemm_args *g);
/* One k block of a weight gradient A^T B (A: k rows of nc, sparse; B: k rows of nq) from A's
 * nonzeros, written TRANSPOSED: out[c*ldo + q] (+)= sum_p a[p][c] b[p][q], as the GEMM sums a k
 * block of k <= its k_block (pc_gemm_k_block), bit for bit for a finite B. Returns -1 when the
 * ISA has no kernel for it. */
int pc_gemm_sparse_tn(const pc_runtime *rt, int k, int nc, int nq, const float *a,
                      ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *out, ptrdiff_t ldo,
                      int accumulate);
/* Whether both sparse products run on this ISA, for an A of k columns (sparse_a: its k; the
 * weight gradient's k blocks always fit). */
int pc_gemm_has_sparse(const pc_runtime *rt, int k);
/* B packed once for many serial GEMMs that share it (a convolution's kernel, used by every
 * chunk): pc_gemm_packed_b_floats(k, n) floats, then set b_packed. */
size_t pc_gemm_packed_b_floats(const pc_runtime *rt, int k, int n);
void pc_gemm_pack_b(const pc_runtime *rt, const pc_gemm_args *g, float *dst);
/* The k block the GEMM sums k in (each block's terms in registers, then added to C): kernels
 * that reproduce its results bit for bit sum in the same blocks. */
int pc_gemm_k_block(const pc_runtime *rt, int k);
/* Whether the GEMM reads a row-major A of k columns where it is (no packing), so that a caller
 * building A (a convolution's im2col rows) can store it row-major rather than pack it. */
int pc_gemm_reads_rows_in_place(const pc_runtime *rt, int k);

/* ---- dense (dense.c) ------------------------------------------------------------------------
 * forward:  y[n][out] = act(x[n][in] * w[in][out] + b[out])   (act: LINEAR or RELU)
 * backward: dw[in][out] = x^T dy, db[out] = sum_n dy, dx[n][in] = dy w^T  (dx, db may be NULL) */
int pc_dense_forward(pc_runtime *rt, const float *x, int n, int in, const float *w, int out,
                     const float *b, float *y, pc_act act);
int pc_dense_backward(pc_runtime *rt, const float *x, int n, int in, const float *w, int out,
                      const float *dy, float *dx, float *dw, float *db);

/* ---- conv2d (conv2d.c) ----------------------------------------------------------------------
 * Cross-correlation, no kernel flip:
 *   y[n][oh][ow][o] = act(b[o] + sum_{kh,kw,c} x[n][oh*sh+kh-pt][ow*sw+kw-pl][c] * w[kh][kw][c][o])
 * Input cells outside [0,H) x [0,W) read as zero ("same" padding); oh/ow range over the caller's
 * output size, so any output size is memory-safe. */
typedef struct {
    int n, h, w, c;        /* input  x[n][h][w][c] */
    int kh, kw, o;         /* kernel w[kh][kw][c][o] */
    int oh, ow;            /* output y[n][oh][ow][o] */
    int sh, sw, pt, pl;    /* strides, top and left padding */
} pc_conv_shape;

/* 3x3 stride-1 convolutions with enough channels run the forward pass by Winograd's F(2x2, 3x3)
 * (winograd.h): the same result up to float rounding, about half the multiplies. */
int pc_conv2d_forward(pc_runtime *rt, const pc_conv_shape *s, const float *x, const float *w,
                      const float *b, float *y, pc_act act);
/* dx (may be NULL), dw, db (may be NULL) are overwritten. When y (the forward output of a fused
 * relu) is not NULL, dy is the gradient w.r.t. y and is masked by y > 0 first. */
int pc_conv2d_backward(pc_runtime *rt, const pc_conv_shape *s, const float *x, const float *w,
                       const float *y, const float *dy, float *dx, float *dw, float *db);

/* ---- dilated, grouped and transposed convolution (conv_general.c) ------------------------------
 * The convolution of pc_conv2d with dilation and groups (Keras' dilation_rate and groups):
 *   y[n][oh][ow][g*Og + o] = act(b[g*Og + o] + sum_{i,j,c} x[n][oh*sh + i*dh - pt][ow*sw + j*dw - pl][g*Cg + c]
 *                                                         * w[i][j][c][g*Og + o])
 * for group g < groups, Cg = c / groups, Og = o / groups; kernel w[kh][kw][Cg][o]. Cells outside
 * the image read as zero; any output size is memory-safe. act: LINEAR or RELU. */
typedef struct {
    int n, h, w, c;        /* input  x[n][h][w][c] */
    int kh, kw, o;         /* kernel w[kh][kw][c/groups][o] */
    int oh, ow;            /* output y[n][oh][ow][o] */
    int sh, sw, pt, pl;    /* strides, top and left padding */
    int dh, dw;            /* dilation (>= 1) */
    int groups;            /* divides c and o */
} pc_convg_shape;

int pc_convg_forward(pc_runtime *rt, const pc_convg_shape *s, const float *x, const float *w,
                     const float *b, float *y, pc_act act);
/* dx, db may be NULL; dw, db overwritten. y (a fused relu's output) or NULL, as pc_conv2d. */
int pc_convg_backward(pc_runtime *rt, const pc_convg_shape *s, const float *x, const float *w,
                      const float *y, const float *dy, float *dx, float *dw, float *db);
/* The transpose of the convolution s (Keras' Conv2DTranspose): its input x[n][s->oh][s->ow][s->o]
 * is on s's output side, its output y[n][s->h][s->w][s->c] on s's input side, with the same
 * kernel w[kh][kw][c/groups][o] (Keras: (kh, kw, filters, in_channels)):
 *   y = act(b + s^T x),   y[n][p][q][c] = b[c] + sum over (oh, ow, i, j, o) with
 *        oh*sh + i*dh - pt = p and ow*sw + j*dw - pl = q of x[n][oh][ow][o] * w[i][j][c][o].
 * Backward: dx = s(dy) (the convolution's forward product, no bias), dw = s's kernel gradient
 * with x and dy exchanged, db[c] = sum dy; dy masked by y > 0 first when y (a fused relu's
 * output) is given; dx, db may be NULL. */
int pc_conv_transpose_forward(pc_runtime *rt, const pc_convg_shape *s, const float *x,
                              const float *w, const float *b, float *y, pc_act act);
int pc_conv_transpose_backward(pc_runtime *rt, const pc_convg_shape *s, const float *x,
                               const float *w, const float *y, const float *dy, float *dx,
                               float *dw, float *db);

/* ---- depthwise convolution (depthwise.c) -----------------------------------------------------
 *   y[n][oh][ow][c*dm + m] = act(b[c*dm + m] + sum_{i,j} x[n][oh*sh + i*dh - pt][ow*sw + j*dw - pl][c]
 *                                                          * w[i][j][c][m])
 * kernel w[kh][kw][c][dm] (Keras' DepthwiseConv2D), bias and output c*dm channels. A direct
 * kernel vectorised along the channels (no GEMM: memory-bound). act: LINEAR or RELU. Backward
 * as pc_conv2d_backward (dx, db may be NULL; y a fused relu's output or NULL). */
typedef struct {
    int n, h, w, c;
    int kh, kw, dm;
    int oh, ow;
    int sh, sw, pt, pl;
    int dh, dw;
} pc_dw_shape;

int pc_depthwise_forward(pc_runtime *rt, const pc_dw_shape *s, const float *x, const float *w,
                         const float *b, float *y, pc_act act);
int pc_depthwise_backward(pc_runtime *rt, const pc_dw_shape *s, const float *x, const float *w,
                          const float *y, const float *dy, float *dx, float *dw, float *db);

/* ---- pooling (pool.c) -----------------------------------------------------------------------
 * Windows ph x pw, strides sh x sw, top/left padding pt/pl, output oh x ow given by the caller.
 * Max pooling: padding is -inf; argmax[n][oh][ow][c] = h*W + w of the window's FIRST maximum in
 * a row-by-row scan (TensorFlow's and PyTorch's rule), or -1 for a window of padding only.
 * Average pooling divides by the number of real (non-padding) cells of each window. */
typedef struct {
    int n, h, w, c;
    int ph, pw;
    int oh, ow;
    int sh, sw, pt, pl;
} pc_pool_shape;

int pc_maxpool2d_forward(pc_runtime *rt, const pc_pool_shape *s, const float *x, float *y,
                         int32_t *argmax);
int pc_maxpool2d_backward(pc_runtime *rt, const pc_pool_shape *s, const float *dy,
                          const int32_t *argmax, float *dx);
/* One image, on the calling thread (the building blocks of the fused convolution + pooling):
 * forward as above; backward writes every cell of dx[h][w][c] (zero where no gradient goes),
 * and when relu_y (the pooled output of a relu) is not NULL passes dy only where relu_y > 0.
 * The backward needs ph, pw, sh, sw, pt, pl only to take the fast path for non-overlapping
 * windows; with ph = pw = 0 it scatters through argmax alone. argmax numbers cell (h, w) as
 * h * am_w + w: am_w = s->w for a whole image, larger when x is the top-left s->h x s->w part
 * of a map am_w wide (the fused convolution computes only the cells the windows read). */
void pc_maxpool2d_image_isa(pc_isa isa, const pc_pool_shape *s, const float *x, float *y,
                            int32_t *argmax, int am_w);
void pc_maxpool2d_image_backward_isa(pc_isa isa, const pc_pool_shape *s, const float *dy,
                                     const int32_t *argmax, const float *relu_y, float *dx,
                                     int am_w);
/* The same on the CPU's best loop path, whatever the runtime's choice (pc_best_loop_isa): for
 * callers without a runtime at hand (the fused convolution, conv2d.c). */
void pc_maxpool2d_image(const pc_pool_shape *s, const float *x, float *y, int32_t *argmax,
                        int am_w);
void pc_maxpool2d_image_backward(const pc_pool_shape *s, const float *dy, const int32_t *argmax,
                                 const float *relu_y, float *dx, int am_w);
int pc_avgpool2d_forward(pc_runtime *rt, const pc_pool_shape *s, const float *x, float *y);
int pc_avgpool2d_backward(pc_runtime *rt, const pc_pool_shape *s, const float *dy, float *dx);

/* ---- convolution + max pooling in one pass (conv2d.c) ----------------------------------------
 * conv2d (act: LINEAR or RELU) followed by max pooling p over its output, chunk by chunk in the
 * threads' caches: the convolution's output y[n][s->oh][s->ow][s->o] is never stored. p describes
 * the pooling of that output (p->n, h, w, c = s->n, s->oh, s->ow, s->o); `pooled` and `argmax`
 * are the pooling's outputs [n][p->oh][p->ow][o], bit-identical to the two kernels run in turn.
 * The backward takes d loss / d pooled and, for a relu, the pooled output (relu_pooled, else
 * NULL): relu's gradient is zero exactly where the pooled value is 0. Outputs as for
 * pc_conv2d_backward. Only the convolution outputs some window reads are computed (11x11
 * pooled 2x2 to 5x5 reads 10x10): the others get no gradient, so dx, dw and db are the same. */
int pc_conv2d_maxpool_forward(pc_runtime *rt, const pc_conv_shape *s,
                              const pc_pool_shape *p, const float *x, const float *w,
                              const float *b, pc_act act, float *pooled, int32_t *argmax);
int pc_conv2d_maxpool_backward(pc_runtime *rt, const pc_conv_shape *s,
                               const pc_pool_shape *p, const float *x, const float *w,
                               const float *relu_pooled, const int32_t *argmax,
                               const float *dpooled, float *dx, float *dw, float *db);

/* ---- activations (activations.c) -------------------------------------------------------------
 * Elementwise on `size` floats, softmax over rows of length `cols` (size = rows * cols).
 * y may equal x; the backward pass takes the forward OUTPUT y, and dx may equal dy. */
int pc_activation_forward(pc_runtime *rt, pc_act act, const float *x, float *y, size_t size,
                          size_t cols);
int pc_activation_backward(pc_runtime *rt, pc_act act, const float *y, const float *dy,
                           float *dx, size_t size, size_t cols);
/* One row: p = softmax(z) (p may equal z); returns the row's log-sum-exp, log(sum(exp(z))),
 * computed stably (max subtracted; exponentials summed in double). The crossentropies use it. */
double pc_softmax_row(const float *z, float *p, size_t n);

/* ---- more activations (activations_ext.c) ------------------------------------------------------
 * The elementwise kinds PC_ACT_FIRST_EXT..PC_ACT_LAST_EXT, with Keras 3's formulas; `alpha` is
 * the one parameter some take (elu: alpha; leaky_relu: negative_slope; ignored by the others):
 *   elu        x > 0 ? x : alpha (e^x - 1)           selu   scale * elu(x, alpha_selu)
 *   softplus   log(1 + e^x) (stable)                  softsign  x / (1 + |x|)
 *   silu       x sigmoid(x)                           hard_sigmoid  relu6(x + 3) / 6
 *   hard_silu  x hard_sigmoid(x)                      relu6  min(max(x, 0), 6)
 *   leaky_relu x > 0 ? x : alpha x                    exponential  e^x
 *   gelu       x/2 (1 + erf(x / sqrt 2))              gelu_tanh  tanh approximation
 *   mish       x tanh(softplus(x))                    log_sigmoid  -softplus(-x)
 *   hard_tanh  clip(x, -1, 1)
 * y may equal x. The backward pass computes dx = dy * f'(x) from the forward output y, except
 * for the kinds pc_act_needs_input() names (silu, hard_silu, gelu, gelu_tanh, mish, and elu
 * with alpha <= 0), which read the forward input x (x may be NULL for the others); dx may equal
 * dy. Blocks of 16384 floats are split over the threads. */
int pc_act_needs_input(pc_act act, float alpha);
int pc_activation_forward_ext(pc_runtime *rt, pc_act act, float alpha, const float *x, float *y,
                              size_t size);
int pc_activation_backward_ext(pc_runtime *rt, pc_act act, float alpha, const float *x,
                               const float *y, const float *dy, float *dx, size_t size);
/* The parameter a kind takes by default (elu 1, leaky_relu 0.2 as keras.activations has them). */
float pc_act_default_alpha(pc_act act);

/* ---- normalization (normalization.c) ----------------------------------------------------------
 * x viewed as x[a][c][b]: the normalized axis of size c between the a outer and b inner cells
 * (NHWC with axis -1: a = N*H*W, c = C, b = 1). Per channel over the m = a*b cells:
 *   batch_stats: mean[c], var[c] (biased) are computed from x first (written to the arrays),
 *                in double, each task summing a fixed block of rows, blocks added in order;
 *   y = (x - mean) * gamma / sqrt(var + eps) + beta      (gamma, beta may be NULL: 1, 0)
 * The backward pass writes dgamma[c] = sum dy * xhat, dbeta[c] = sum dy (either may be NULL) and
 * dx (may be NULL): for batch statistics the full gradient through mean and var,
 *   dx = gamma inv (dy - mean(dy) - xhat mean(dy xhat)),  inv = 1/sqrt(var + eps),
 * else (moving statistics, constants) dx = gamma inv dy. */
typedef struct { int a, c, b; } pc_norm_shape;
int pc_batchnorm_forward(pc_runtime *rt, const pc_norm_shape *s, const float *x, float *mean,
                         float *var, const float *gamma, const float *beta, float eps,
                         int batch_stats, float *y);
int pc_batchnorm_backward(pc_runtime *rt, const pc_norm_shape *s, const float *x,
                          const float *mean, const float *var, const float *gamma, float eps,
                          int batch_stats, const float *dy, float *dx, float *dgamma,
                          float *dbeta);
/* Batch normalization over the channels of x[n][h][w][c] followed by max pooling (p: strides
 * equal to the pool size, pads smaller than it), the normalized map never stored: y and argmax
 * as pc_maxpool2d_forward of pc_batchnorm_forward's output, bit for bit. The backward takes the
 * pooled gradient dy and argmax and gives what maxpool backward then batchnorm backward give;
 * with relu, dx is also zero where !(x > 0) (x the output of a relu). */
int pc_batchnorm_maxpool_forward(pc_runtime *rt, const pc_pool_shape *p, const float *x,
                                 float *mean, float *var, const float *gamma, const float *beta,
                                 float eps, int batch_stats, float *y, int32_t *argmax);
int pc_batchnorm_maxpool_backward(pc_runtime *rt, const pc_pool_shape *p, const float *x,
                                  const float *mean, const float *var, const float *gamma,
                                  float eps, int batch_stats, const float *dy,
                                  const int32_t *argmax, int relu, float *dx, float *dgamma,
                                  float *dbeta);
/* Layer normalization over rows x[rows][d] (Keras 3): per row mean, biased var (two passes in
 * double), inv = 1/sqrt(var + eps) saved in mean[rows], inv[rows];
 *   y = (x - mean) inv gamma + beta,  or with rms (Keras' deprecated rms_scaling) y = x inv gamma.
 * gamma, beta [d] may be NULL. Backward: dx (may be NULL), dgamma, dbeta (NULL or [d], summed
 * over rows in fixed blocks, in double). */
int pc_layernorm_forward(pc_runtime *rt, const float *x, int rows, int d, const float *gamma,
                         const float *beta, float eps, int rms, float *y, float *mean,
                         float *inv);
int pc_layernorm_backward(pc_runtime *rt, const float *x, int rows, int d, const float *gamma,
                          const float *mean, const float *inv, int rms, const float *dy,
                          float *dx, float *dgamma, float *dbeta);

/* ---- global pooling (global_pool.c) -----------------------------------------------------------
 * x[n][s][c] (s = H*W for 2-D maps, steps for sequences) -> y[n][c]: the mean (summed in double)
 * or the maximum, argmax[n][c] the FIRST s holding it; a NaN propagates (the first NaN is the
 * maximum, as jnp.max and tf.reduce_max give NaN). Backward: avg dx = dy / s everywhere; max dx = dy at argmax, 0 elsewhere. */
int pc_global_pool_forward(pc_runtime *rt, const float *x, int n, int s, int c, int is_max,
                           float *y, int32_t *argmax);
int pc_global_pool_backward(pc_runtime *rt, const float *dy, int n, int s, int c, int is_max,
                            const int32_t *argmax, float *dx);

/* ---- losses (losses.c) ------------------------------------------------------------------------
 * Keras' losses over "rows": y_pred[rows][cols], the last axis of the model's output (rows = N
 * for a (N, C) output, N*H*W for a (N, H, W, C) one). Every kernel
 *   - writes each row's loss to row_loss[rows] (double; may be NULL: runtime scratch is used),
 *   - returns *loss = sum_r w_r row_loss[r], w = row_w[rows] or 1/rows when row_w is NULL
 *     (the caller folds Keras' reduction and sample weights into w),
 *   - writes grad = d loss / d y_pred unless grad is NULL.
 * Rows are split over the runtime's threads in tasks of a fixed size; the sum runs in row order.
 * Labels are int64 class indices in [0, classes) (PC_EINVAL otherwise; the binding checks).
 *   softmax_xent_sparse: logits -> probs (stable log-softmax, written), grad = w (p - 1hot)
 *   xent_sparse:         Keras on probabilities: q = p / sum(p), -log(clip(q[label], 1e-7, 1-1e-7))
 *   softmax_xent:        as the sparse one with targets[rows][classes]: grad = w (p - t), as
 *                        TensorFlow's (the exact gradient when each target row sums to 1)
 *   xent:                Keras' categorical crossentropy on probabilities (rows renormalised). */
int pc_softmax_xent_sparse(pc_runtime *rt, const float *logits, const int64_t *labels, size_t n,
                           size_t classes, const float *row_w, float *probs, float *dlogits,
                           double *row_loss, double *loss);
int pc_xent_sparse(pc_runtime *rt, const float *probs, const int64_t *labels, size_t n,
                   size_t classes, const float *row_w, float *dprobs, double *row_loss,
                   double *loss);
int pc_softmax_xent(pc_runtime *rt, const float *logits, const float *targets, size_t n,
                    size_t classes, const float *row_w, float *probs, float *dlogits,
                    double *row_loss, double *loss);
int pc_xent(pc_runtime *rt, const float *probs, const float *targets, size_t n, size_t classes,
            const float *row_w, float *dprobs, double *row_loss, double *loss);

/* The other losses, x = y_pred, y = y_true elementwise, eps = 1e-7; the row loss is the MEAN
 * over the row of (unless marked "sum" or "row"):
 *   MSE (x-y)^2 | MAE |x-y| | MAPE 100|y-x|/max(|y|,eps) | MSLE (log(max(x,eps)+1) -
 *   log(max(y,eps)+1))^2 | HUBER 0.5e^2 if |e| <= delta else delta|e| - 0.5 delta^2 (e = x-y) |
 *   LOGCOSH e + softplus(-2e) - log 2 | POISSON x - y log(x+eps) | HINGE max(1-yx, 0) (y in
 *   {-1, 1}: the caller converts 0/1 labels) | SQUARED_HINGE its square | KLD (sum)
 *   clip(y) log(clip(y)/clip(x)), clip to [eps, 1] | BCE -(y log(clip(x)+eps) + (1-y)
 *   log(1-clip(x)+eps)), clip to [eps, 1-eps] (tf.keras 2) | BCE_LOGITS max(x,0) - xy +
 *   log(1+exp(-|x|)) (probs = sigmoid(x) written when not NULL) | FOCAL, FOCAL_LOGITS
 *   w_cb (1-p_t)^gamma bce, p_t = y p + (1-y)(1-p), w_cb = y alpha + (1-y)(1-alpha) when
 *   `balance`, else 1 | COSINE (row) -cos(x, y) with norms floored at 1e-6 | CATEGORICAL_HINGE
 *   (row) max(max((1-y) x) - sum(y x) + 1, 0).
 * Gradients follow TensorFlow's where a function has a kink (clip and max pass the gradient at
 * the bound, sign(0) = 0, a max's gradient is shared among ties). */
typedef enum {
    PC_LOSS_MSE = 0, PC_LOSS_MAE, PC_LOSS_MAPE, PC_LOSS_MSLE, PC_LOSS_HUBER, PC_LOSS_LOGCOSH,
    PC_LOSS_POISSON, PC_LOSS_HINGE, PC_LOSS_SQUARED_HINGE, PC_LOSS_BCE, PC_LOSS_BCE_LOGITS,
    PC_LOSS_FOCAL, PC_LOSS_FOCAL_LOGITS, PC_LOSS_KLD, PC_LOSS_COSINE, PC_LOSS_CATEGORICAL_HINGE
} pc_loss_kind;

typedef struct {
    float delta;          /* HUBER */
    float alpha, gamma;   /* FOCAL */
    int balance;          /* FOCAL: apply_class_balancing */
} pc_loss_params;

int pc_loss_rows(pc_runtime *rt, pc_loss_kind kind, const pc_loss_params *prm, const float *pred,
                 const float *truth, size_t rows, size_t cols, const float *row_w,
                 double *row_loss, float *grad, float *probs, double *loss);

/* ---- metrics (metrics.c) -------------------------------------------------------------------
 * Confusion counts over thresholds, as Keras' update_confusion_matrix_variables: for each of
 * `labels` columns of pred[n][labels] / truth[n][labels] (truth != 0 is a positive; weight
 * w[n][labels] or 1 when NULL) and each threshold t[k] (k < nthr), a prediction is positive when
 * pred > t[k]; counts[4][labels][nthr] (tp, fp, tn, fn) are overwritten (sums in double).
 * evenly != 0: the thresholds are k / (nthr - 1) (up to 1e-7 at the ends): Keras' bucketed path,
 * with its rounding: pred is clipped to [0, 1] and lands in bucket ceil(pred * (nthr - 1)) - 1
 * (float32), positive for the thresholds up to its bucket; bucket -1 counts nowhere, or, when
 * with_epsilon (first threshold < 0 or last > 1, as the AUC's), in bucket 0. */
void pc_confusion_thresholds(const float *pred, const float *truth, const float *w, size_t n,
                             size_t labels, const float *thr, size_t nthr, int evenly, int with_epsilon,
                             double *counts);
/* cm[k][k] += w[i] (or 1) at (truth[i], pred[i]) for i < n; entries outside [0, k) are skipped
 * (the caller checks first). */
void pc_confusion_matrix(const int64_t *truth, const int64_t *pred, const float *w, size_t n,
                         size_t k, double *cm);

/* ---- batches (gather.c) --------------------------------------------------------------------
 * dst row r = src row idx[r], for r < n, rows of row_bytes bytes; every idx[r] must be a row of
 * src (the caller checks). */
void pc_gather_rows(pc_runtime *rt, const void *src, size_t row_bytes, const int64_t *idx, int n,
                    void *dst);

/* ---- dropout (dropout.c) -----------------------------------------------------------------------
 * pc_dropout_forward: element i is kept when (pc_dropout_bits(key, i) >> 8) >=
 * pc_dropout_threshold(rate) (a uniform u = bits >> 8 over 2^24 values, kept when
 * u * 2^-24 >= (float)rate); mask[i] = kept ? s : 0 with s = (float)(1 / (1 - rate)) and
 * y[i] = x[i] * mask[i] (NaN and infinities give NaN where dropped, as x * mask does). The mask
 * is a function of (key, i) only: the same for any thread count. 0 <= rate < 1.
 * pc_dropout_backward: dx[i] = dy[i] * mask[i]. */
uint32_t pc_dropout_bits(uint64_t key, uint64_t i);
uint32_t pc_dropout_threshold(float rate);
int pc_dropout_forward(pc_runtime *rt, const float *x, size_t n, double rate, uint64_t key,
                       float *y, float *mask);
int pc_dropout_backward(pc_runtime *rt, const float *dy, const float *mask, size_t n,
                        float *dx);

/* ---- augmentation (augment.c): image warps and colour changes, one image per task -------------
 * Images are x[n][h][w][c] (NHWC). Every kernel treats each image on its own, in tasks of a fixed
 * number of images, so results are bit-identical for any thread count.
 *
 * pc_affine_warp: Keras' affine_transform (keras/src/ops/image.py, as the JAX backend computes
 * it with map_coordinates). t[i] = {a0, a1, a2, b0, b1, b2} maps output pixel (row r, col q) of
 * image i to the input point
 *     col_in = (a1*r + a0*q) + a2,   row_in = (b1*r + b0*q) + b2     (float32, pixel centres at
 * integers). interp NEAREST reads the pixel at round-half-away-from-zero of both coordinates;
 * BILINEAR sums ((wy0*wx0)*v00 + (wy0*wx1)*v01) + (wy1*wx0)*v10 + (wy1*wx1)*v11 in that order.
 * Each corner's index outside the image is moved back by the fill mode: REFLECT (d c b a | a b c
 * d | d c b a), WRAP (a b c d | a b c d), NEAREST (a a | a b c d | d d); CONSTANT reads
 * fill_value for it instead. SCIPY_WRAP and SCIPY_CONSTANT are scipy.ndimage's legacy 'wrap' and
 * 'constant' (tf.keras 2's ImageDataGenerator): they act on the point before interpolating,
 * SCIPY_CONSTANT reading fill_value for any point outside [0, size - 1], SCIPY_WRAP wrapping the
 * point into that range with period size - 1 (then corners are clamped); for both, a point
 * within 1e-4 * size outside [0, size - 1] counts as on its border (float32 rounding of maps
 * that land exactly there, which SciPy computes in double). The output is y[n][oh][ow][c] (oh, ow may differ from h, w: a
 * resize). Every transform must map the output grid within +-1e9 (pc_warp_coords_fit returns
 * the first image whose transform does not, or -1; the warps return PC_EINVAL then).
 * pc_affine_warp_backward: its adjoint: dx[n][h][w][c] = the sum of every output gradient
 * dy[n][oh][ow][c] times the weight it read each input pixel with (fill_value contributes
 * nothing); the warp is linear in x, so this is its exact input gradient. */
typedef enum { PC_INTERP_NEAREST = 0, PC_INTERP_BILINEAR = 1 } pc_interp;
typedef enum { PC_FILL_REFLECT = 0, PC_FILL_WRAP = 1, PC_FILL_CONSTANT = 2,
               PC_FILL_NEAREST = 3, PC_FILL_SCIPY_WRAP = 4, PC_FILL_SCIPY_CONSTANT = 5 } pc_fill;
typedef struct {
    int n, h, w, c;        /* input */
    int oh, ow;            /* output */
    pc_interp interp;
    pc_fill fill;
    float fill_value;
} pc_warp_shape;
int pc_warp_coords_fit(const pc_warp_shape *s, const float *t);
int pc_affine_warp(pc_runtime *rt, const pc_warp_shape *s, const float *x, const float *t,
                   float *y);
int pc_affine_warp_backward(pc_runtime *rt, const pc_warp_shape *s, const float *dy,
                            const float *t, float *dx);
/* y[i] = x[i] flipped left-right when flags[i] & 1, upside down when flags[i] & 2 (both: both);
 * its own adjoint. */
int pc_flip(pc_runtime *rt, const float *x, int n, int h, int w, int c, const uint8_t *flags,
            float *y);
/* y[i][r][q] = x[i][off[2i] + r][off[2i+1] + q] for r < oh, q < ow (the window inside x; the
 * binding checks). backward: dx zero but for dx[i][window] = dy[i]. */
int pc_crop(pc_runtime *rt, const float *x, int n, int h, int w, int c, const int32_t *off,
            float *y, int oh, int ow);
int pc_crop_backward(pc_runtime *rt, const float *dy, int n, int h, int w, int c,
                     const int32_t *off, float *dx, int oh, int ow);
/* Keras' RandomContrast: per image i and channel k, m = the mean of x[i][..][..][k] (summed in
 * double in a fixed order, then rounded to float), y = clip((x - m) * factor[i] + m, lo, hi). */
int pc_adjust_contrast(pc_runtime *rt, const float *x, int n, int hw, int c,
                       const float *factor, float lo, float hi, float *y);
/* Keras' RandomBrightness: y[i] = clip(x[i] + delta[i], lo, hi) over `size` floats per image. */
int pc_adjust_brightness(pc_runtime *rt, const float *x, int n, size_t size, const float *delta,
                         float lo, float hi, float *y);

/* ---- optimizers (optimizers.c): Keras' update rules, in place on `size` floats -----------------
 * Each update is one pass over memory: the gradient as the rule sees it is
 *   g' = clamp(g * pre->gscale, -pre->clip, pre->clip)   (a NaN stays NaN)
 * and the weight decays first, w' = w - w * pre->decay (decay = lr * weight_decay), both in the
 * same loop as the moments and the step; pre == NULL means gscale 1, clip inf, decay 0. A weight
 * whose new value or state would not be finite keeps its old value and state; each update
 * returns the number of such weights (0 normally). State arrays have `size` floats and start as
 * Keras starts them (zeros; Adagrad's accumulator at its initial value); an optional one (NULL)
 * is left out of the rule as Keras leaves it out. `step` counts updates from 1. */
typedef struct {
    float gscale;   /* clipping by norm (clipnorm / max(norm, clipnorm)), 1 for none */
    float clip;     /* clipvalue, or INFINITY */
    float decay;    /* lr * weight_decay, or 0 */
} pc_opt_pre;

/* SGD: v = momentum v - lr g; w += v (nesterov: w += momentum v - lr g); velocity NULL or
 * momentum 0: w -= lr g */
size_t pc_sgd_update(pc_runtime *rt, float *w, const float *g, float *velocity, size_t size,
                     const pc_opt_pre *pre, float lr, float momentum, int nesterov);
/* RMSprop: v = rho v + (1 - rho) g^2; centered: mg = rho mg + (1 - rho) g, v - mg^2 below;
 * inc = lr g / sqrt(v + eps); momentum > 0: mom = momentum mom + inc, w -= mom; else w -= inc */
size_t pc_rmsprop_update(pc_runtime *rt, float *w, const float *g, float *v, size_t size,
                         const pc_opt_pre *pre, float lr, float rho, float epsilon,
                         float momentum, float *mom, int centered, float *mg);
/* Adam (amsgrad when vhat is not NULL: vhat = max(vhat, v) replaces v in the step) */
size_t pc_adam_update(pc_runtime *rt, float *w, const float *g, float *m, float *v, float *vhat,
                      size_t size, const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                      float epsilon, long long step);
/* Adamax: m += (g - m)(1 - b1); u = max(b2 u, |g|); w -= lr m / ((1 - b1^t)(u + eps)) */
size_t pc_adamax_update(pc_runtime *rt, float *w, const float *g, float *m, float *u, size_t size,
                        const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                        float epsilon, long long step);
/* Nadam; u_product is the product of Keras' momentum schedule u_1 ... u_step (this step's
 * factor included), which the caller keeps across steps */
size_t pc_nadam_update(pc_runtime *rt, float *w, const float *g, float *m, float *v, size_t size,
                       const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                       float epsilon, long long step, double u_product);
/* Adagrad: acc += g^2; w -= lr g / sqrt(acc + eps) */
size_t pc_adagrad_update(pc_runtime *rt, float *w, const float *g, float *acc, size_t size,
                         const pc_opt_pre *pre, float lr, float epsilon);
/* Adadelta: ag = rho ag + (1-rho) g^2; d = -sqrt(ad + eps) g / sqrt(ag + eps);
 * ad = rho ad + (1-rho) d^2; w += lr d */
size_t pc_adadelta_update(pc_runtime *rt, float *w, const float *g, float *acc_grad,
                          float *acc_delta, size_t size, const pc_opt_pre *pre, float lr,
                          float rho, float epsilon);
/* Lion: w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g */
size_t pc_lion_update(pc_runtime *rt, float *w, const float *g, float *m, size_t size,
                      const pc_opt_pre *pre, float lr, float beta_1, float beta_2);
/* The moving average of the weights (use_ema): average = momentum average + (1 - momentum) w */
void pc_ema_update(pc_runtime *rt, float *average, const float *w, size_t size, float momentum);
/* Gradient accumulation: acc = (g + acc) / divisor (1 while accumulating, the number of steps
 * when the accumulated gradient is used) */
void pc_grad_accumulate(pc_runtime *rt, float *acc, const float *g, size_t size, float divisor);
/* sum of x_i^2 in double, in blocks fixed by the size: bit-identical for any thread count */
double pc_sum_squares(pc_runtime *rt, const float *x, size_t size);

/* ---- merge layers (merge.c) -----------------------------------------------------------------
 * y = x[0] op x[1] op ... op x[k-1], pairwise from the left, over inputs of y's rank whose every
 * axis is y's size or 1 (broadcast; axis 0, the batch, never is). ADD and MULTIPLY sum and
 * multiply; SUBTRACT takes exactly 2; AVERAGE is the sum divided by k; MAXIMUM and MINIMUM
 * propagate NaN. Backward: dxs[i] (NULL: not wanted) of x[i]'s shape, overwritten, summed over
 * the copies of a broadcast input in y's order. MULTIPLY's gradient is dy times the product of
 * the other inputs (in input order); MAXIMUM's (MINIMUM's) goes, pairwise, where TensorFlow's
 * maximum gradient sends it: to the running value where it is >= (<=) the next input, else to
 * that input; so of tied inputs the first gets it all. */
typedef enum { PC_MERGE_ADD = 0, PC_MERGE_SUBTRACT = 1, PC_MERGE_MULTIPLY = 2,
               PC_MERGE_AVERAGE = 3, PC_MERGE_MAXIMUM = 4, PC_MERGE_MINIMUM = 5 } pc_merge_op;
#define PC_MERGE_MAX_RANK 8
typedef struct {
    int k;                          /* inputs, >= 1 */
    int rank;                       /* 1 .. PC_MERGE_MAX_RANK */
    int dims[PC_MERGE_MAX_RANK];    /* y's shape */
    const int *in_dims;             /* [k][rank]: each input's shape (y's size or 1 per axis) */
} pc_merge_shape;

int pc_merge_forward(pc_runtime *rt, pc_merge_op op, const pc_merge_shape *s,
                     const float *const *xs, float *y);
int pc_merge_backward(pc_runtime *rt, pc_merge_op op, const pc_merge_shape *s,
                      const float *const *xs, const float *dy, float *const *dxs);
/* Concatenation: y holds `outer` rows of sum(inner) floats, input i's inner[i] floats of each
 * row after those of the inputs before it (the axis and the axes after it, flattened).
 * Backward: dxs[i] = its part of dy (NULL: not wanted). */
int pc_concat_forward(pc_runtime *rt, int k, size_t outer, const size_t *inner,
                      const float *const *xs, float *y);
int pc_concat_backward(pc_runtime *rt, int k, size_t outer, const size_t *inner,
                       const float *dy, float *const *dxs);

/* ---- resampling: upsampling, padding, cropping, permutation (resample.c) ----------------------
 * Over NHWC x[n][h][w][c] (1-D layers pass h = 1).
 * Nearest upsampling: y[n][oh][ow][c] = x[n][oh / sh][ow / sw][c] (y: h*sh x w*sw); backward:
 *   dx = the sum of each sh x sw block of dy, row by row.
 * Bilinear upsampling, as TensorFlow's and JAX's resize with half-pixel centres: output row
 *   oh reads input coordinate (oh + 0.5) / sh - 0.5, clamped to [0, h - 1], between its floor
 *   and ceiling rows, weighted linearly (likewise columns); backward scatters dy with the same
 *   weights, output cells in order.
 * Shift: y[n][i][j][c] = x[n][i - dt][j - dl][c] where that is inside x, else 0, for y of
 *   oh x ow: zero padding (dt, dl >= 0), cropping (dt, dl <= 0), and each one's gradient.
 * Permute: y = x with its axes 1.. permuted: y's axis a (>= 1) is x's axis perm[a]; perm[0] = 0. */
int pc_upsample_nearest2d_forward(pc_runtime *rt, int n, int h, int w, int c, int sh, int sw,
                                  const float *x, float *y);
int pc_upsample_nearest2d_backward(pc_runtime *rt, int n, int h, int w, int c, int sh, int sw,
                                   const float *dy, float *dx);
int pc_upsample_bilinear2d_forward(pc_runtime *rt, int n, int h, int w, int c, int sh, int sw,
                                   const float *x, float *y);
int pc_upsample_bilinear2d_backward(pc_runtime *rt, int n, int h, int w, int c, int sh, int sw,
                                    const float *dy, float *dx);
int pc_shift2d(pc_runtime *rt, int n, int h, int w, int c, int oh, int ow, int dt, int dl,
               const float *x, float *y);
#define PC_PERMUTE_MAX_RANK 8
int pc_permute(pc_runtime *rt, int rank, const int *x_dims, const int *perm, const float *x,
               float *y);

#endif
