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
 * Every array is C-contiguous; the binding (pycnn_module.c) checks this before calling.
 *
 * Worked example: the lecture's second convolution on a batch of 128,
 *   pc_conv2d_forward(&rt, x, 128, 13, 13, 32, w, 3, 3, 64, b, y, 11, 11, 1, 1, 0, 0, PC_ACT_RELU)
 * reads x[128][13][13][32] and w[3][3][32][64] and writes y[128][11][11][64] = relu(x (*) w + b).
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

/* PC_MULTIVERSION marks an elementwise loop to be compiled for AVX-512, AVX2 and the baseline
 * ISA, the loader picking the best the CPU supports (GCC's target_clones; the GEMM micro-kernels
 * are chosen by the runtime instead, see runtime.h). Elsewhere it is empty: one portable build. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYCNN_NO_CLONES)
#define PC_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PC_MULTIVERSION
#endif

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
               PC_ACT_SOFTMAX = 4 } pc_act;

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

/* ---- losses (losses.c) ------------------------------------------------------------------------
 * Each returns the MEAN loss over the n rows in *loss and, unless the gradient pointer is NULL,
 * the gradient of that mean. Labels are int64 class indices in [0, classes); the binding checks.
 *   softmax_xent_sparse: logits[n][classes] -> probs (stable log-softmax), dlogits = (p - 1hot)/n
 *   xent_sparse:         probs -> -log(clip(p[label], 1e-7, 1 - 1e-7))
 *   softmax_xent:        as the sparse one with targets[n][classes]
 *   xent:                Keras' categorical crossentropy on probabilities (rows renormalised). */
int pc_softmax_xent_sparse(const float *logits, const int64_t *labels, int n, int classes,
                           float *probs, float *dlogits, double *loss);
int pc_xent_sparse(const float *probs, const int64_t *labels, int n, int classes,
                   float *dprobs, double *loss);
int pc_softmax_xent(const float *logits, const float *targets, int n, int classes,
                    float *probs, float *dlogits, double *loss);
int pc_xent(const float *probs, const float *targets, int n, int classes, float *dprobs,
            double *loss);

/* ---- batches (gather.c) --------------------------------------------------------------------
 * dst row r = src row idx[r], for r < n, rows of row_bytes bytes; every idx[r] must be a row of
 * src (the caller checks). */
void pc_gather_rows(pc_runtime *rt, const void *src, size_t row_bytes, const int64_t *idx, int n,
                    void *dst);

/* ---- optimizers (optimizers.c): Keras' update rules, in place on `size` floats ----------------
 * Each returns the number of updated weights that are not finite. */
size_t pc_sgd_update(pc_runtime *rt, float *w, const float *g, float *velocity, size_t size,
                     float lr, float momentum, int nesterov);
size_t pc_rmsprop_update(pc_runtime *rt, float *w, const float *g, float *v, size_t size,
                         float lr, float rho, float epsilon, float momentum, float *mom,
                         int centered, float *mg);
size_t pc_adam_update(pc_runtime *rt, float *w, const float *g, float *m, float *v, size_t size,
                      float lr, float beta_1, float beta_2, float epsilon, long long step);

#endif
