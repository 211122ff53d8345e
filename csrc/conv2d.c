/*
 * conv2d.c - 2-D convolution (cross-correlation), NHWC activations, HWIO kernels, as GEMM on the
 * implicit im2col matrix, chunk by chunk.
 *
 * The batch is cut into chunks of whole images (about ROWS_PER_CHUNK output pixels each; the cut
 * depends only on the shapes). Each chunk is one task. Its im2col matrix
 *     col[r][(kh*KW + kw)*C + c] = x[n][oh*sh+kh-pt][ow*sw+kw-pl][c]   (r = output pixel)
 * is not stored for the forward pass: the GEMM's packing routine reads it straight from x
 * (pack_rows), except for rows the GEMM reads in place (pc_gemm_reads_rows_in_place: k >= 128
 * on AVX-512 and AVX2), which are copied into scratch as runs of KW*C floats (less than packing). The weight
 * gradient needs col^T, built per chunk in the thread's scratch (im2col) while it is hot in
 * cache:
 *     forward  y_chunk   = col * W + b          (W viewed as a (KH*KW*C) x O matrix)
 *     dw, db   summed over chunks in LANES fixed lanes (chunk i goes to lane i % LANES, in order),
 *              then the lanes are added in order: deterministic for any thread count;
 *     dx       dcol      = dy_chunk * W^T, then scattered back (col2im) into the chunk's images,
 *              in the same pass while dy_chunk is in cache.
 * When the layer's relu is given (its output y), dy is masked by y > 0 chunk by chunk.
 *
 * Other algorithms, chosen from the shapes (and the ISA) only:
 *   - few taps per output (KH*KW*C <= 32, C <= 4: a first layer): the forward by the direct
 *     loops of conv_small.h, whose k of 9 would leave the micro-kernel's tiles idle (the same
 *     FMAs in the same order as the GEMM: the same bits as the fused conv+pool);
 *   - 3x3 stride 1 with enough channels: the forward by Winograd (winograd.h), and dx too, as
 *     the forward convolution of dy with the flipped kernel (dual_shape): no dcol, no col2im;
 *   - dw computed transposed, dw^T = dy^T col, when the filters fill the rows of 8- or 10-row
 *     tiles better than the columns of 32-column ones (dw_transposed: O = 16, 50).
 *
 * Fused max pooling (pc_conv2d_maxpool_*): the chunk's y goes to the thread's scratch and is
 * pooled from there, so the full-size convolution output never reaches memory; the backward
 * rebuilds each chunk's dy from the pooled gradient and argmax in scratch the same way.
 */
#include "pycnn.h"
#include "conv_small.h"
#include "gemm_kernels.h"
#include "direct_conv_pool.h"
#include "winograd.h"

#include <math.h>
#include <string.h>

#define ROWS_PER_CHUNK 512
#define LANES 8
#define DUAL_MIN_SIDE 6   /* dy's height and width for dx by the dual Winograd convolution */
#define GATHER_TAPS 32     /* weight gradients with at most this many taps gather them from x */

typedef struct {
    pc_runtime *rt;
    const pc_conv_shape *s;
    const float *x, *w, *b, *dy;
    const float *y;        /* backward: the relu output whose gradient dy is, or NULL */
    float *out, *dx;
    const pc_pool_shape *pool;   /* fused max pooling of y, or NULL; then out, y and dy are the
                                    pooled ones, and s and pool are cropped to the cells the
                                    windows read (crop_to_windows) */
    int am_w;                    /* with pool: the uncropped conv output's width (argmax rows) */
    int chunk_pix;               /* output pixels per image that set the chunk size: the
                                    uncropped count, so chunks (and sums) do not change */
    int32_t *argmax;             /* forward, with pool */
    const int32_t *argmax_in;    /* backward, with pool */
    const float *w_packed;       /* W (forward) or W^T (backward, for dx) packed once per call,
                                    or the Winograd-transformed kernel */
    int winograd;                /* forward by F(2x2, 3x3) (winograd.h) */
    int direct;                  /* fused forward by the direct kernel (direct_conv_pool.h) */
    const float *w_rows;         /* backward with pool and a finite W on an ISA with sparse
                                    products: W^T row-major (o rows of w_ld floats) for dx's
                                    products, which skip dy's zeros (every cell a window does
                                    not pick); else NULL, and W^T is packed for the GEMM */
    int w_ld;
    int sparse_dw;               /* backward with pool: dw from dy's nonzeros (pc_gemm_sparse_tn),
                                    the lanes' partial dw then held transposed, [o][kdim] */
    int dual;                    /* backward: dx as the forward convolution of dy with the
                                    flipped kernel by Winograd (dual_shape), w_packed holding
                                    that kernel transformed; with or without a fused pooling,
                                    so that the fused layer's dx equals the unfused pair's */
    pc_conv_shape sd;            /* with dual: the dual convolution's shape */
    int small;                   /* few taps (conv_small.h): forward, or dw and db, direct */
    int dw_t;                    /* dw computed transposed, dw^T = dy^T col (dw_transposed) */
    float *partial;        /* LANES x (K*O + O) for dw and db */
    pc_act act;
    int kdim;              /* KH*KW*C */
    int imgs_per_chunk, nchunks;
    int failed;
} conv_job;

static inline int min_i(int a, int b) { return a < b ? a : b; }

static int is_pointwise(const pc_conv_shape *s)
{
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pl == 0 &&
           s->oh == s->h && s->ow == s->w;
}

/* The implicit im2col of one chunk, for the packing callbacks. */
typedef struct {
    const pc_conv_shape *s;
    const float *x;
    int n0;                /* the chunk's first image */
} im2col_view;

/* Walks the output pixels of a chunk in order: the image and the top-left input cell of each
 * pixel's window, with divisions only at the start (per row they cost more than the copy of
 * the first layer's 9-tap rows). */
typedef struct {
    const pc_conv_shape *s;
    int n, oh, ow;
} pixel_cursor;

static inline pixel_cursor cursor_at(const im2col_view *v, int r)
{
    const pc_conv_shape *s = v->s;
    const int pix = s->oh * s->ow, q = r % pix;
    return (pixel_cursor){.s = s, .n = v->n0 + r / pix, .oh = q / s->ow, .ow = q % s->ow};
}

static inline void cursor_next(pixel_cursor *c)
{
    if (++c->ow == c->s->ow) {
        c->ow = 0;
        if (++c->oh == c->s->oh) {
            c->oh = 0;
            c->n++;
        }
    }
}

/* A full 12-pixel sliver (the AVX-512 panel) whose windows all lie inside the image: the taps
 * of the 12 pixels written in order, 12 at a time (strided loads, sequential stores: faster
 * than scattering each pixel's taps at a 12-float stride). Returns 0, leaving the cursor, when
 * a window crosses the border. */
static int sliver_12(const im2col_view *v, pixel_cursor *cur, float *restrict dst)
{
    const pc_conv_shape *s = v->s;
    const int C = s->c, KWC = s->kw * C;
    const float *o[12];
    pixel_cursor c = *cur;
    for (int i = 0; i < 12; i++, cursor_next(&c)) {
        const int h0 = c.oh * s->sh - s->pt, w0 = c.ow * s->sw - s->pl;
        if (h0 < 0 || h0 + s->kh > s->h || w0 < 0 || w0 + s->kw > s->w)
            return 0;
        o[i] = v->x + ((size_t)c.n * s->h * s->w + (size_t)h0 * s->w + w0) * C;
    }
    *cur = c;
    const size_t row = (size_t)s->w * C;
    for (int kh = 0; kh < s->kh; kh++) {
        const size_t at = kh * row;
        for (int q = 0; q < KWC; q++, dst += 12)
#pragma GCC unroll 12
            for (int i = 0; i < 12; i++)
                dst[i] = o[i][at + q];
    }
    return 1;
}

/* A = col (rows = output pixels, columns = taps): for each pixel, runs of C channels */
static void pack_rows(const void *ctx, int i0, int mb, int p0, int kb, int mr, float *dst)
{
    const im2col_view *v = ctx;
    const pc_conv_shape *s = v->s;
    const int C = s->c, KWC = s->kw * C;
    const int whole_rows = p0 == 0 && kb == s->kh * KWC;
    pixel_cursor cur = cursor_at(v, i0);
    for (int is = 0; is < mb; is += mr, dst += (ptrdiff_t)kb * mr) {
        const int me = min_i(mr, mb - is);
        if (whole_rows && me == 12 && mr == 12 && sliver_12(v, &cur, dst))
            continue;
        for (int i = 0; i < mr; i++) {
            if (i >= me) {
                for (int p = 0; p < kb; p++)
                    dst[(ptrdiff_t)p * mr + i] = 0.0f;
                continue;
            }
            const int n = cur.n, h0 = cur.oh * s->sh - s->pt, w0 = cur.ow * s->sw - s->pl;
            cursor_next(&cur);
            const float *xn = v->x + (size_t)n * s->h * s->w * C;
            if (whole_rows && h0 >= 0 && h0 + s->kh <= s->h && w0 >= 0 && w0 + s->kw <= s->w) {
                /* the whole window inside the image, the whole row in this k block: each
                 * kernel row is one contiguous run of KW*C floats in x */
                const float *org = xn + ((size_t)h0 * s->w + w0) * C;
                float *d = dst + i;
                if (KWC == 3) {                 /* 3 taps per kernel row: the first layer */
                    for (int kh = 0; kh < s->kh; kh++, d += (ptrdiff_t)3 * mr) {
                        const float *src = org + (size_t)kh * s->w * C;
                        d[0] = src[0];
                        d[mr] = src[1];
                        d[2 * mr] = src[2];
                    }
                    continue;
                }
                for (int kh = 0; kh < s->kh; kh++, d += (ptrdiff_t)KWC * mr) {
                    const float *src = org + (size_t)kh * s->w * C;
                    for (int q = 0; q < KWC; q++)
                        d[(ptrdiff_t)q * mr] = src[q];
                }
                continue;
            }
            int kh = p0 / KWC, kw = (p0 % KWC) / C, c = p0 % C;
            for (int p = 0; p < kb;) {
                const int run = min_i(C - c, kb - p);
                const int ih = h0 + kh, iw = w0 + kw;
                float *d = dst + (ptrdiff_t)p * mr + i;
                if (ih >= 0 && ih < s->h && iw >= 0 && iw < s->w) {
                    const float *src = xn + ((size_t)ih * s->w + iw) * C + c;
                    for (int q = 0; q < run; q++)
                        d[(ptrdiff_t)q * mr] = src[q];
                } else {
                    for (int q = 0; q < run; q++)
                        d[(ptrdiff_t)q * mr] = 0.0f;
                }
                p += run;
                c = 0;
                if (++kw == s->kw) {
                    kw = 0;
                    kh++;
                }
            }
        }
    }
}

/* A = col^T (rows = taps, columns = output pixels) for the weight gradient of a layer with few
 * taps (the first layer: 9 for a 3x3 kernel on one channel): each pixel's taps gathered from x
 * straight into the packed sliver, no column buffer and no second copy. */
static void pack_taps(const void *ctx, int i0, int mb, int p0, int kb, int mr, float *dst)
{
    const im2col_view *v = ctx;
    const pc_conv_shape *s = v->s;
    const int C = s->c, KWC = s->kw * C, kdim = s->kh * KWC;
    for (int is = 0; is < mb; is += mr, dst += (ptrdiff_t)kb * mr) {
        const int me = min_i(mr, mb - is), t0 = i0 + is;
        const int kh0 = t0 / KWC, kw0 = (t0 % KWC) / C, c0 = t0 % C;
        pixel_cursor cur = cursor_at(v, p0);
        for (int p = 0; p < kb; p++) {
            float *d = dst + (ptrdiff_t)p * mr;
            const int h0 = cur.oh * s->sh - s->pt, w0 = cur.ow * s->sw - s->pl;
            const float *xn = v->x + (size_t)cur.n * s->h * s->w * C;
            cursor_next(&cur);
            for (int i = me; i < mr; i++)
                d[i] = 0.0f;
            if (t0 == 0 && me == kdim && h0 >= 0 && h0 + s->kh <= s->h && w0 >= 0 &&
                w0 + s->kw <= s->w) {
                const float *org = xn + ((size_t)h0 * s->w + w0) * C;
                if (KWC == 3) {                 /* 3 taps per kernel row: the first layer */
                    for (int kh = 0; kh < s->kh; kh++, d += 3) {
                        const float *src = org + (size_t)kh * s->w * C;
                        d[0] = src[0];
                        d[1] = src[1];
                        d[2] = src[2];
                    }
                    continue;
                }
                for (int kh = 0; kh < s->kh; kh++, d += KWC) {
                    const float *src = org + (size_t)kh * s->w * C;
                    for (int q = 0; q < KWC; q++)
                        d[q] = src[q];
                }
                continue;
            }
            int kh = kh0, kw = kw0, c = c0;
            for (int i = 0; i < me;) {
                const int run = min_i(C - c, me - i);
                const int ih = h0 + kh, iw = w0 + kw;
                if (ih >= 0 && ih < s->h && iw >= 0 && iw < s->w) {
                    const float *src = xn + ((size_t)ih * s->w + iw) * C + c;
                    for (int q = 0; q < run; q++)
                        d[i + q] = src[q];
                } else {
                    for (int q = 0; q < run; q++)
                        d[i + q] = 0.0f;
                }
                i += run;
                c = 0;
                if (++kw == s->kw) {
                    kw = 0;
                    kh++;
                }
            }
        }
    }
}

/* col rows for images [n0, n0+count) */
PC_SIMD_LOOP void im2col_body(const pc_conv_shape *s, const float *x, int n0, int count,
                              float *col)
{
    const int C = s->c, kdim = s->kh * s->kw * s->c;
    const size_t img = (size_t)s->h * s->w * C;
    for (int n = n0; n < n0 + count; n++) {
        const float *xn = x + (size_t)n * img;
        for (int oh = 0; oh < s->oh; oh++) {
            for (int ow = 0; ow < s->ow; ow++, col += kdim) {
                const int iw0 = ow * s->sw - s->pl;
                const int inside_w = iw0 >= 0 && iw0 + s->kw <= s->w;
                for (int kh = 0; kh < s->kh; kh++) {
                    const int ih = oh * s->sh + kh - s->pt;
                    float *dst = col + (size_t)kh * s->kw * C;
                    if (ih < 0 || ih >= s->h) {
                        memset(dst, 0, (size_t)s->kw * C * sizeof(float));
                        continue;
                    }
                    const float *row = xn + (size_t)ih * s->w * C;
                    if (inside_w) {
                        pc_copy_floats(dst, row + (size_t)iw0 * C, (size_t)s->kw * C);
                        continue;
                    }
                    for (int kw = 0; kw < s->kw; kw++) {
                        const int iw = iw0 + kw;
                        if (iw < 0 || iw >= s->w)
                            memset(dst + (size_t)kw * C, 0, (size_t)C * sizeof(float));
                        else
                            pc_copy_floats(dst + (size_t)kw * C, row + (size_t)iw * C, (size_t)C);
                    }
                }
            }
        }
    }
}
PC_SIMD_VARIANTS(im2col, (const pc_conv_shape *s, const float *x, int n0, int count, float *col),
                 (s, x, n0, count, col))

/* dx[n0:n0+count] = col2im(dcol): each col entry added back to the input cell it was read from */
PC_SIMD_LOOP void col2im_body(const pc_conv_shape *s, const float *dcol, int n0, int count,
                              float *dx)
{
    const int C = s->c, kdim = s->kh * s->kw * s->c;
    const size_t img = (size_t)s->h * s->w * C;
    memset(dx + (size_t)n0 * img, 0, (size_t)count * img * sizeof(float));
    for (int n = n0; n < n0 + count; n++) {
        float *dxn = dx + (size_t)n * img;
        for (int oh = 0; oh < s->oh; oh++) {
            for (int ow = 0; ow < s->ow; ow++, dcol += kdim) {
                for (int kh = 0; kh < s->kh; kh++) {
                    const int ih = oh * s->sh + kh - s->pt;
                    if (ih < 0 || ih >= s->h)
                        continue;
                    for (int kw = 0; kw < s->kw; kw++) {
                        const int iw = ow * s->sw + kw - s->pl;
                        if (iw < 0 || iw >= s->w)
                            continue;
                        float *d = dxn + ((size_t)ih * s->w + iw) * C;
                        const float *g = dcol + ((size_t)kh * s->kw + kw) * C;
                        for (int c = 0; c < C; c++)
                            d[c] += g[c];
                    }
                }
            }
        }
    }
}
PC_SIMD_VARIANTS(col2im,
                 (const pc_conv_shape *s, const float *dcol, int n0, int count, float *dx),
                 (s, dcol, n0, count, dx))

static void chunk_range(const conv_job *j, int chunk, int *n0, int *count, int *rows)
{
    *n0 = chunk * j->imgs_per_chunk;
    *count = min_i(j->imgs_per_chunk, j->s->n - *n0);
    *rows = *count * j->s->oh * j->s->ow;
}

/* The im2col matrix of a chunk: x itself for a pointwise convolution, else built in scratch. */
static const float *chunk_columns(conv_job *j, int thread, int n0, int count, int rows)
{
    const pc_conv_shape *s = j->s;
    if (is_pointwise(s))
        return j->x + (size_t)n0 * s->h * s->w * s->c;
    float *col = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK, (size_t)rows * j->kdim);
    if (col)
        im2col(pc_loop_isa(j->rt), s, j->x, n0, count, col);
    return col;
}

/* Scratch for pc_gemm_serial of m x n x k, and with rows > 0 also for the transposed weight
 * gradient's product (o x kdim x rows). */
static float *gemm_scratch(conv_job *j, int thread, int m, int n, int k, int rows)
{
    size_t f = pc_gemm_scratch_floats(j->rt, m, n, k);
    if (rows > 0) {
        const size_t t = pc_gemm_scratch_floats(j->rt, j->s->o, j->kdim, rows);
        f = t > f ? t : f;
    }
    return pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK, f);
}

/* The chunk's convolution output into out (rows x O): Winograd or the implicit-im2col GEMM */
static int forward_chunk(conv_job *j, int thread, int n0, int count, int rows, float *out)
{
    const pc_conv_shape *s = j->s;
    if (j->small) {
        float *scratch = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK,
                                           pc_conv_small_scratch_floats(s));
        if (!scratch)
            return PC_ENOMEM;
        pc_conv_small_forward(j->rt, s, j->w_packed, j->x, j->act == PC_ACT_RELU, n0, count, out,
                              scratch);
        return PC_OK;
    }
    if (j->winograd) {
        float *scratch = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK,
                                           pc_winograd_scratch_floats(j->rt, s));
        if (!scratch)
            return PC_ENOMEM;
        pc_winograd_forward(j->rt, s, j->w_packed, j->x, j->b, j->act, n0, count, out, scratch);
        return PC_OK;
    }
    float *scratch = gemm_scratch(j, thread, rows, s->o, j->kdim, 0);
    if (!scratch)
        return PC_ENOMEM;
    const im2col_view view = {.s = s, .x = j->x, .n0 = n0};
    const int pointwise = is_pointwise(s);
    /* im2col rows the GEMM reads in place (long ones): copied as rows into scratch (runs of
     * KW*C floats), cheaper than transposing them into packed panels */
    float *col = NULL;
    if (!pointwise && pc_gemm_reads_rows_in_place(j->rt, j->kdim)) {
        col = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_GRAD, (size_t)rows * j->kdim);
        if (!col)
            return PC_ENOMEM;
        im2col(pc_loop_isa(j->rt), s, j->x, n0, count, col);
    }
    const pc_gemm_args g = {
        .m = rows, .n = s->o, .k = j->kdim,
        .a = col ? col : j->x + (size_t)n0 * s->h * s->w * s->c, .rsa = j->kdim, .csa = 1,
        .pack_a = pointwise || col ? NULL : pack_rows, .pack_ctx = &view,
        .b = j->w, .rsb = s->o, .csb = 1, .b_packed = j->w_packed,
        .c = out, .ldc = s->o,
        .accumulate = 0, .bias = j->b, .act = j->act,
    };
    pc_gemm_serial(j->rt, &g, scratch);
    return PC_OK;
}

static void forward_task(void *ctx, int chunk, int thread)
{
    conv_job *j = ctx;
    const pc_conv_shape *s = j->s;
    int n0, count, rows;
    chunk_range(j, chunk, &n0, &count, &rows);
    if (j->direct) {
        pc_direct_conv_pool(j->rt, s, j->pool, j->x, j->w, j->b, j->act == PC_ACT_RELU,
                            j->am_w, n0, count, j->out, j->argmax);
        return;
    }
    float *out = j->pool ? pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK,
                                             (size_t)rows * s->o)
                         : j->out + (size_t)n0 * s->oh * s->ow * s->o;
    if (!out || forward_chunk(j, thread, n0, count, rows, out)) {
        j->failed = 1;
        return;
    }
    if (!j->pool)
        return;
    const pc_pool_shape *p = j->pool;
    const size_t img = (size_t)s->oh * s->ow * s->o, pimg = (size_t)p->oh * p->ow * p->c;
    for (int i = 0; i < count; i++)
        pc_maxpool2d_image(p, out + i * img, j->out + (n0 + i) * pimg,
                           j->argmax + (n0 + i) * pimg, j->am_w);
}

static void chunking(conv_job *j)
{
    const int pix = j->chunk_pix > 0 ? j->chunk_pix : j->s->oh * j->s->ow;
    j->imgs_per_chunk = pix >= ROWS_PER_CHUNK ? 1 : ROWS_PER_CHUNK / pix;
    /* at least LANES chunks when the batch allows, so that every lane has work */
    const int spread = (j->s->n + LANES - 1) / LANES;
    if (j->imgs_per_chunk > spread)
        j->imgs_per_chunk = spread > 0 ? spread : 1;
    j->nchunks = (j->s->n + j->imgs_per_chunk - 1) / j->imgs_per_chunk;
    j->kdim = j->s->kh * j->s->kw * j->s->c;
}

/* The kernel as the GEMM's B, packed once for all chunks: W (k = taps, n = filters) for the
 * forward pass, W^T for the input gradient. */
static int pack_kernel(conv_job *j, int transposed)
{
    const pc_conv_shape *s = j->s;
    const int k = transposed ? s->o : j->kdim, n = transposed ? j->kdim : s->o;
    float *dst = pc_shared_scratch(j->rt, PC_SHARED_SLOT_PACK_B,
                                   pc_gemm_packed_b_floats(j->rt, k, n));
    if (!dst)
        return PC_ENOMEM;
    const pc_gemm_args g = {.m = 1, .n = n, .k = k, .b = j->w,
                            .rsb = transposed ? 1 : s->o, .csb = transposed ? s->o : 1};
    pc_gemm_pack_b(j->rt, &g, dst);
    j->w_packed = dst;
    return PC_OK;
}

static int run_forward(conv_job *j)
{
    if (j->act != PC_ACT_LINEAR && j->act != PC_ACT_RELU)
        return PC_EINVAL;
    chunking(j);
    if (j->nchunks == 0)
        return PC_EINVAL;
    /* the direct kernel reads w as it is; the other two paths pack it once per call */
    j->direct = j->pool && pc_direct_conv_pool_applies(j->rt, j->s, j->pool, j->act);
    /* few taps: with relu only, whose +0 for every sum <= 0 matches the GEMM's bits (a linear
     * sum of -0 products keeps the sign its path gives it: the GEMM's, as the fused pair's) */
    j->small = !j->direct && !j->pool && j->act == PC_ACT_RELU && pc_conv_small_applies(j->s);
    j->winograd = !j->direct && !j->small && pc_winograd_applies(j->rt, j->s);
    if (j->small) {
        float *u = pc_shared_scratch(j->rt, PC_SHARED_SLOT_PACK_B,
                                     pc_conv_small_kernel_floats(j->s));
        if (!u)
            return PC_ENOMEM;
        pc_conv_small_pack(j->s, j->w, j->b, u);
        j->w_packed = u;
    } else if (j->winograd) {
        float *u = pc_shared_scratch(j->rt, PC_SHARED_SLOT_PACK_B,
                                     pc_winograd_kernel_floats(j->rt, j->s));
        if (!u)
            return PC_ENOMEM;
        pc_winograd_pack_kernel(j->rt, j->s, j->w, u);
        j->w_packed = u;
    } else if (!j->direct && pack_kernel(j, 0)) {
        return PC_ENOMEM;
    }
    pc_parallel(j->rt, j->nchunks, forward_task, j);
    return j->failed ? PC_ENOMEM : PC_OK;
}

int pc_conv2d_forward(pc_runtime *rt, const pc_conv_shape *s, const float *x, const float *w,
                      const float *b, float *y, pc_act act)
{
    conv_job j = {.rt = rt, .s = s, .x = x, .w = w, .b = b, .out = y, .act = act};
    return run_forward(&j);
}

static int pool_matches(const pc_conv_shape *s, const pc_pool_shape *p)
{
    return p->n == s->n && p->h == s->oh && p->w == s->ow && p->c == s->o;
}

/* The extent of the convolution's output that the pooling windows read: windows that stop
 * short of the bottom or right edge (11 rows pooled 2 by 2 read 10) leave cells that reach
 * neither the pooled output nor, in the backward, any gradient. The cropped shapes describe
 * the same convolution and pooling over the top-left cells only. */
static int windows_extent(int n, int out, int stride, int pad, int window)
{
    const long long end = (long long)(out - 1) * stride - pad + window;
    return out > 0 && end >= 1 && end < n ? (int)end : n;
}

static void crop_to_windows(conv_job *j, const pc_conv_shape *s, const pc_pool_shape *p,
                            pc_conv_shape *sc, pc_pool_shape *pc)
{
    *sc = *s;
    *pc = *p;
    sc->oh = pc->h = windows_extent(p->h, p->oh, p->sh, p->pt, p->ph);
    sc->ow = pc->w = windows_extent(p->w, p->ow, p->sw, p->pl, p->pw);
    j->s = sc;
    j->pool = pc;
    j->am_w = s->ow;
    j->chunk_pix = s->oh * s->ow;
}

int pc_conv2d_maxpool_forward(pc_runtime *rt, const pc_conv_shape *s, const pc_pool_shape *p,
                              const float *x, const float *w, const float *b, pc_act act,
                              float *pooled, int32_t *argmax)
{
    if (!pool_matches(s, p))
        return PC_EINVAL;
    conv_job j = {.rt = rt, .x = x, .w = w, .b = b, .out = pooled, .act = act, .argmax = argmax};
    pc_conv_shape sc;
    pc_pool_shape pc;
    crop_to_windows(&j, s, p, &sc, &pc);
    return run_forward(&j);
}

/* ---- backward -------------------------------------------------------------------------------- */

PC_SIMD_LOOP void relu_mask_body(const float *restrict dy, const float *restrict y,
                                 float *restrict g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float d = dy[i];        /* loaded unconditionally: a select, vectorised */
        g[i] = y[i] > 0.0f ? d : 0.0f;
    }
}
PC_SIMD_VARIANTS(relu_mask,
                 (const float *restrict dy, const float *restrict y, float *restrict g, size_t n),
                 (dy, y, g, n))

/* db[o] += sum_r dy[r][o], rows in order */
PC_SIMD_LOOP void column_sums_body(const float *restrict dy, int rows, int cols,
                                   float *restrict db)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < cols; o++)
            db[o] += dy[(size_t)r * cols + o];
}
PC_SIMD_VARIANTS(column_sums, (const float *restrict dy, int rows, int cols, float *restrict db),
                 (dy, rows, cols, db))

/* dy of a chunk, or relu's gradient dy * (y > 0) copied into the thread's scratch, or with a
 * fused pooling the chunk's dy rebuilt in scratch from the pooled gradient */
static const float *chunk_output_grad(conv_job *j, int thread, int n0, int count, int rows)
{
    const pc_conv_shape *s = j->s;
    const size_t img = (size_t)s->oh * s->ow * s->o, n = (size_t)rows * s->o;
    if (!j->y && !j->pool)
        return j->dy + n0 * img;
    float *g = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_GRAD, n);
    if (!g)
        return NULL;
    if (!j->pool) {
        relu_mask(pc_loop_isa(j->rt), j->dy + n0 * img, j->y + n0 * img, g, n);
        return g;
    }
    const pc_pool_shape *p = j->pool;
    const size_t pimg = (size_t)p->oh * p->ow * p->c;
    for (int i = 0; i < count; i++) {
        const size_t at = (size_t)(n0 + i) * pimg;
        pc_maxpool2d_image_backward(p, j->dy + at, j->argmax_in + at, j->y ? j->y + at : NULL,
                                    g + i * img, j->am_w);
    }
    return g;
}

PC_SIMD_LOOP int all_finite_body(const float *restrict v, size_t n)
{
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= fabsf(v[i]) <= 3.40282347e38f;
    return ok;
}
PC_SIMD_VARIANTS_RET(int, all_finite, (const float *restrict v, size_t n), (v, n))

/* The sparse weight gradient left out the terms col x 0; the GEMM's would be NaN where col is
 * inf or NaN: those sums (held transposed, dwt[c][q]) made NaN, as the GEMM leaves them. Only
 * for a chunk whose x is not all finite. */
static void nan_where_gemm_would(const conv_job *j, const float *col, const float *dyc, int rows,
                                 float *dwt)
{
    const int o = j->s->o, kdim = j->kdim;
    for (int p = 0; p < rows; p++)
        for (int q = 0; q < kdim; q++)
            if (!(fabsf(col[(size_t)p * kdim + q]) <= 3.40282347e38f))
                for (int c = 0; c < o; c++)
                    if (dyc[(size_t)p * o + c] == 0.0f)
                        dwt[(size_t)c * kdim + q] = NAN;
}

/* One lane: its chunks in order, each giving dw and db terms (summed into the lane's partial
 * sums) and, when wanted, the chunk's dx. */
static void backward_task(void *ctx, int lane, int thread)
{
    conv_job *j = ctx;
    const pc_conv_shape *s = j->s;
    const size_t wsize = (size_t)j->kdim * s->o;
    float *dw = j->partial + (size_t)lane * (wsize + s->o);
    float *db = dw + wsize;
    memset(db, 0, (size_t)s->o * sizeof(float));
    const int pointwise = is_pointwise(s);
    int first = 1;
    for (int chunk = lane; chunk < j->nchunks; chunk += LANES) {
        int n0, count, rows;
        chunk_range(j, chunk, &n0, &count, &rows);
        if (j->direct) {
            pc_direct_conv_pool_backward(j->rt, s, j->pool, j->x, j->dy, j->argmax_in, j->y,
                                         j->am_w, n0, count, pc_gemm_k_block(j->rt, rows),
                                         !first, dw, db);
            first = 0;
            continue;
        }
        if (j->small) {            /* dw and db straight from x, dy and y */
            const size_t oimg = (size_t)s->oh * s->ow * s->o;
            float *ss = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK,
                                          pc_conv_small_scratch_floats(s));
            if (!ss) {
                j->failed = 1;
                return;
            }
            pc_conv_small_dw(j->rt, s, j->x, j->dy + n0 * oimg, j->y ? j->y + n0 * oimg : NULL,
                             n0, count, first, pc_gemm_k_block(j->rt, rows), dw, db, ss);
            first = 0;
            if (!j->dx)
                continue;
        }
        const float *dyc = chunk_output_grad(j, thread, n0, count, rows);
        /* dw needs col^T: for many taps, building col in scratch and packing its contiguous
         * columns beats gathering taps from x (measured); for a few, gathering wins */
        const int gather = j->kdim <= GATHER_TAPS && !pointwise;
        const im2col_view view = {.s = s, .x = j->x, .n0 = n0};
        const float *col = !dyc ? NULL
                           : gather ? j->x : chunk_columns(j, thread, n0, count, rows);
        float *scratch = gemm_scratch(j, thread, rows > j->kdim ? rows : j->kdim,
                                      s->o > j->kdim ? s->o : j->kdim, rows > s->o ? rows : s->o,
                                      j->dw_t ? rows : 0);
        if (!col || !scratch) {
            j->failed = 1;
            return;
        }
        if (j->small) {
            /* dw and db done above */
        } else if (j->sparse_dw) { /* the GEMM's k blocks, from dy's nonzeros */
            const int kc = pc_gemm_k_block(j->rt, rows);
            for (int p0 = 0; p0 < rows; p0 += kc)
                if (pc_gemm_sparse_tn(j->rt, min_i(kc, rows - p0), s->o, j->kdim,
                                      dyc + (size_t)p0 * s->o, s->o, col + (size_t)p0 * j->kdim,
                                      j->kdim, dw, j->kdim, !first || p0 > 0)) {
                    j->failed = 1;       /* not reached: run_backward checked the ISA */
                    return;
                }
            const size_t ximg = (size_t)s->h * s->w * s->c;
            if (!all_finite(pc_loop_isa(j->rt), j->x + (size_t)n0 * ximg, (size_t)count * ximg))
                nan_where_gemm_would(j, col, dyc, rows, dw);
        } else if (j->dw_t) {      /* [o][kdim] += dy^T col: A = dy by columns, B = col */
            pc_gemm_args gw = {
                .m = s->o, .n = j->kdim, .k = rows,
                .a = dyc, .rsa = 1, .csa = s->o,
                .b = col, .rsb = j->kdim, .csb = 1,
                .c = dw, .ldc = j->kdim,
                .accumulate = !first, .bias = NULL, .act = PC_ACT_LINEAR,
            };
            pc_gemm_serial_fit(j->rt, &gw, scratch);
        } else {
            pc_gemm_args gw = {
                .m = j->kdim, .n = s->o, .k = rows,
                .a = col, .rsa = 1, .csa = j->kdim,
                .pack_a = gather ? pack_taps : NULL, .pack_ctx = &view,
                .b = dyc, .rsb = s->o, .csb = 1,
                .c = dw, .ldc = s->o,
                .accumulate = !first, .bias = NULL, .act = PC_ACT_LINEAR,
            };
            pc_gemm_serial(j->rt, &gw, scratch);
        }
        if (!j->small)
            column_sums(pc_loop_isa(j->rt), dyc, rows, s->o, db);
        first = 0;
        if (!j->dx)
            continue;
        if (j->dual) {             /* dx = dy (*) flip(W), image by image: no dcol, no col2im */
            float *ws = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK,
                                          pc_winograd_scratch_floats(j->rt, &j->sd));
            if (!ws) {
                j->failed = 1;
                return;
            }
            pc_winograd_forward(j->rt, &j->sd, j->w_packed, dyc, NULL, PC_ACT_LINEAR, 0, count,
                                j->dx + (size_t)n0 * s->h * s->w * s->c, ws);
            continue;
        }
        float *dcol = pointwise ? j->dx + (size_t)n0 * s->h * s->w * s->c
                                : pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK,
                                                    (size_t)rows * j->kdim);
        if (!dcol) {
            j->failed = 1;
            return;
        }
        pc_gemm_args gx = {
            .m = rows, .n = j->kdim, .k = s->o,
            .a = dyc, .rsa = s->o, .csa = 1,
            .b = j->w, .rsb = 1, .csb = s->o, .b_packed = j->w_packed,
            .c = dcol, .ldc = j->kdim,
            .accumulate = 0, .bias = NULL, .act = PC_ACT_LINEAR,
        };
        if (j->w_rows) {           /* from dy's nonzeros, W^T's rows */
            gx.b = j->w_rows;
            gx.rsb = j->w_ld;
            gx.csb = 1;
            gx.b_packed = NULL;
            if (pc_gemm_sparse_a(j->rt, &gx)) {
                j->failed = 1;           /* not reached: run_backward checked the ISA */
                return;
            }
        } else {
            pc_gemm_serial(j->rt, &gx, scratch);
        }
        if (!pointwise)
            col2im(pc_loop_isa(j->rt), s, dcol, n0, count, j->dx);
    }
}

typedef struct {
    conv_job *j;
    float *dw, *db;
    size_t total;          /* K*O + O */
} reduce_job;

#define REDUCE_BLOCK 4096

static void reduce_task(void *ctx, int task, int thread)
{
    (void)thread;
    reduce_job *r = ctx;
    const conv_job *j = r->j;
    const size_t wsize = (size_t)j->kdim * j->s->o;
    const size_t lo = (size_t)task * REDUCE_BLOCK;
    const size_t hi = lo + REDUCE_BLOCK < r->total ? lo + REDUCE_BLOCK : r->total;
    const int used = min_i(LANES, j->nchunks);
    for (size_t e = lo; e < hi; e++) {
        /* dw[q][c] is partial[c][q] when the lanes summed it transposed */
        const size_t at = (j->sparse_dw || j->dw_t) && e < wsize
                              ? (e % (size_t)j->s->o) * (size_t)j->kdim + e / (size_t)j->s->o : e;
        float acc = j->partial[at];
        for (int l = 1; l < used; l++)
            acc += j->partial[(size_t)l * r->total + at];
        if (e < wsize)
            r->dw[e] = acc;
        else if (r->db)
            r->db[e - wsize] = acc;
    }
}

/* The input gradient of a stride-1 convolution is itself a stride-1 convolution: of dy (C_in =
 * O) with the kernel flipped in both spatial axes and its channel axes exchanged,
 *     dx[n][h][w][c] = sum_{kh,kw,o} dy[n][h + pt - kh][w + pl - kw][o] w[kh][kw][c][o]
 *                    = sum_{kh',kw',o} dy[n][h - pt' + kh'][w - pl' + kw'][o] wd[kh'][kw'][o][c]
 * with kh' = KH-1-kh, pt' = KH-1-pt (likewise for w) and wd the flipped kernel; the cells
 * outside dy are zeros, as the padding's. Returns 0 when the convolution is not of that kind. */
static int dual_shape(const pc_conv_shape *s, pc_conv_shape *sd)
{
    /* a dy of a few cells (3x3 under the lecture's third layer) is all border tiles, with
     * the 2 cells of padding of a 'valid' layer's dual: measured 2x slower than the GEMM */
    /* Only for 'same' padding (the dual's padding the same): a 'valid' layer's dual reads 2
     * cells of padding around dy, and the lecture's valid conv+pool layers keep their sparse
     * dx products (fused and unfused, the shapes decide, so both take the same path). */
    /* (pads compared without doubling them: a pad may be near INT_MAX) */
    if (s->sh != 1 || s->sw != 1 || (s->kh - 1) % 2 || s->pt != (s->kh - 1) / 2 ||
        (s->kw - 1) % 2 || s->pl != (s->kw - 1) / 2 ||
        is_pointwise(s) || s->oh < DUAL_MIN_SIDE || s->ow < DUAL_MIN_SIDE)
        return 0;
    *sd = (pc_conv_shape){.n = s->n, .h = s->oh, .w = s->ow, .c = s->o,
                          .kh = s->kh, .kw = s->kw, .o = s->c, .oh = s->h, .ow = s->w,
                          .sh = 1, .sw = 1, .pt = s->kh - 1 - s->pt, .pl = s->kw - 1 - s->pl};
    return 1;
}

/* wd[kh'][kw'][o][c] = w[KH-1-kh'][KW-1-kw'][c][o], Winograd-transformed into w_packed */
static int pack_dual_kernel(conv_job *j)
{
    const pc_conv_shape *s = j->s;
    const int C = s->c, O = s->o, taps = s->kh * s->kw;
    float *wd = pc_shared_scratch(j->rt, PC_SHARED_SLOT_TRANSPOSED, (size_t)taps * C * O);
    float *u = wd ? pc_shared_scratch(j->rt, PC_SHARED_SLOT_PACK_B,
                                      pc_winograd_kernel_floats(j->rt, &j->sd)) : NULL;
    if (!u)
        return PC_ENOMEM;
    for (int t = 0; t < taps; t++) {
        const float *src = j->w + (size_t)(taps - 1 - t) * C * O;
        float *dst = wd + (size_t)t * O * C;
        for (int c = 0; c < C; c++)
            for (int o = 0; o < O; o++)
                dst[(size_t)o * C + c] = src[(size_t)c * O + o];
    }
    pc_winograd_pack_kernel(j->rt, &j->sd, wd, u);
    j->w_packed = u;
    return PC_OK;
}

static double tile_use(int m, int mr)
{
    return (double)m / ((m + mr - 1) / mr * mr);
}

/* Whether dw = col^T dy (kdim x O, tiles of mr x nr) wastes clearly more of its tiles than
 * dw^T = dy^T col (O x kdim, with the tile height that fits O: pc_gemm_fit_mr): O = 16 fills
 * half of a 32-column tile, O = 50 64 % of two; as rows, 16 = 2 x 8 and 50 = 5 x 10. Only for
 * the column-buffer path (taps gathered from x serve the few-taps layers). */
static int dw_transposed(const conv_job *j)
{
    const pc_ukernel *uk = &j->rt->ukernel;
    const int o = j->s->o, k = j->kdim;
    if (k <= GATHER_TAPS || is_pointwise(j->s))
        return 0;
    const double plain = tile_use(k, uk->mr) * tile_use(o, uk->nr);
    const double trans = tile_use(o, pc_gemm_fit_mr(j->rt, o)) * tile_use(k, uk->nr);
    return trans > 1.1 * plain;
}

static int run_backward(conv_job *j, float *dw, float *db)
{
    chunking(j);
    if (j->nchunks == 0)
        return PC_EINVAL;
    const size_t total = (size_t)j->kdim * j->s->o + j->s->o;
    j->direct = j->pool && !j->dx && pc_direct_conv_pool_backward_applies(j->rt, j->s, j->pool);
    /* With a fused pooling at most one cell per window has a gradient (a quarter for 2x2), and
     * relu zeroes more: the products skip them, same FMAs in the same order otherwise. A term
     * left out is 0 x (a value of W or x); the GEMM makes NaN of it when that value is inf or
     * NaN. So dx's products skip zeros only for a finite W, and dw's chunks whose x is not all
     * finite get the GEMM's NaN where it would have made them (nan_where_gemm_would). */
    const int sparse = j->pool && !j->direct && pc_gemm_has_sparse(j->rt, j->s->o);
    j->sparse_dw = sparse && j->kdim > GATHER_TAPS && !is_pointwise(j->s);
    /* few taps without a fused pooling: dw and db direct (conv_small.c), summed in the GEMM's
     * k blocks and stored as its micro-kernel stores them (the bits of the GEMM path) */
    j->small = !j->pool && pc_conv_small_applies(j->s);
    j->dw_t = !j->direct && !j->sparse_dw && !j->small && dw_transposed(j);
    j->partial = pc_shared_scratch(j->rt, PC_SHARED_SLOT_PARTIAL, (size_t)LANES * total);
    if (!j->partial)
        return PC_ENOMEM;
    /* dx by the dual convolution with or without a fused pooling (a fused layer's gradients
     * equal the unfused pair's bit for bit) */
    j->dual = j->dx && !j->direct && dual_shape(j->s, &j->sd) &&
              pc_winograd_applies(j->rt, &j->sd);
    if (sparse && j->dx && !j->dual &&
        all_finite(pc_loop_isa(j->rt), j->w, (size_t)j->kdim * j->s->o)) {
        const int o = j->s->o;
        j->w_ld = (j->kdim + 15) / 16 * 16;
        float *wr = pc_shared_scratch(j->rt, PC_SHARED_SLOT_TRANSPOSED, (size_t)o * j->w_ld);
        if (!wr)
            return PC_ENOMEM;
        for (int q = 0; q < j->kdim; q++)          /* w[q][c] -> wr[c][q] */
            for (int c = 0; c < o; c++)
                wr[(size_t)c * j->w_ld + q] = j->w[(size_t)q * o + c];
        j->w_rows = wr;
    }
    if (j->dual) {
        if (pack_dual_kernel(j))
            return PC_ENOMEM;
    } else if (j->dx && !j->w_rows && pack_kernel(j, 1)) {
        return PC_ENOMEM;
    }
    pc_parallel(j->rt, min_i(LANES, j->nchunks), backward_task, j);
    if (j->failed)
        return PC_ENOMEM;
    reduce_job r = {.j = j, .dw = dw, .db = db, .total = total};
    pc_parallel(j->rt, (int)((total + REDUCE_BLOCK - 1) / REDUCE_BLOCK), reduce_task, &r);
    return PC_OK;
}

int pc_conv2d_backward(pc_runtime *rt, const pc_conv_shape *s, const float *x, const float *w,
                       const float *y, const float *dy, float *dx, float *dw, float *db)
{
    conv_job j = {.rt = rt, .s = s, .x = x, .w = w, .y = y, .dy = dy, .dx = dx};
    return run_backward(&j, dw, db);
}

int pc_conv2d_maxpool_backward(pc_runtime *rt, const pc_conv_shape *s, const pc_pool_shape *p,
                               const float *x, const float *w, const float *relu_pooled,
                               const int32_t *argmax, const float *dpooled, float *dx, float *dw,
                               float *db)
{
    if (!pool_matches(s, p))
        return PC_EINVAL;
    conv_job j = {.rt = rt, .x = x, .w = w, .y = relu_pooled, .dy = dpooled, .dx = dx,
                  .argmax_in = argmax};
    pc_conv_shape sc;
    pc_pool_shape pc;
    crop_to_windows(&j, s, p, &sc, &pc);
    return run_backward(&j, dw, db);
}
