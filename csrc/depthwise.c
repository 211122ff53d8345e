/*
 * depthwise.c - depthwise 2-D convolution (each input channel convolved with its own
 * depth_multiplier filters), NHWC, a direct kernel vectorised along the channels.
 *
 *   y[n][oh][ow][c*DM + m] = act(b[c*DM + m] + sum_{i,j} x[n][oh*sh + i*dh - pt][ow*sw + j*dw - pl][c]
 *                                                          * w[i][j][c][m])
 *
 * In NHWC a pixel's channels are contiguous, and so are a tap's weights w[i][j][:][:]. Every
 * pass walks one row of pixels at a time, each pixel's channels 8 at a time (a GNU C vector of
 * 8 floats: one ymm on the AVX-512 and AVX2 paths, two xmm on the baseline; one variant per
 * SIMD path of the runtime, PC_SIMD_VARIANTS): memory is read and written in order, a vector's sum stays in a register
 * across the taps, and the KH input rows an output row reads stay in L1/L2 (the row after them
 * is prefetched into L2 while the row is computed). The 3x3 interior has its own unrolled
 * paths: the nine source pointers in registers, two vectors at a time for the forward and dx,
 * four pixels per load and store of each dw vector. There is no GEMM: each input value is
 * used KH*KW*DM times only, so the passes are bound by memory traffic (2.25 FLOP per byte for
 * 3x3: x and y each read or written once), not by arithmetic (benchmarks/conv_variants.py).
 *
 *   forward        y row = act(b + sum over taps of x rows * w)           (one task per image)
 *   input grad     dx row ih = sum over taps of g rows * w, the gather form (the correlation
 *                  with the flipped kernel, any stride and dilation): each dx row written once,
 *                  as soon as the last g row it reads is ready
 *   weight grad    dw[i][j] += x * g, db += g, pixel by pixel in order
 * g is dy, or dy masked by the fused relu's output (y > 0), one row at a time into a ring of
 * the rows dx still needs (thread scratch). The backward tasks are LANES fixed lanes of images
 * (image i in lane i % LANES); each lane sums its rows' dw and db in order, and the lanes are
 * added in order: bit-identical for any thread count. Every SIMD path does the same float
 * multiplies and adds in the same order (ISO C contracts none into an FMA): identical results.
 */
#include "pycnn.h"

#include <string.h>

#define LANES 8
/* channels per vector: 8. A vector of 16 floats ran the AVX2 variant at less than half the
 * speed (GCC lowered each 64-byte vector through the stack and general registers: forward
 * 97 ms against 41 at batch 128); on Zen 4 (a zmm operation is two ymm halves) 8 and 16 run
 * alike on the AVX-512 path (38-41 ms forward, 78-83 ms backward). Per channel the
 * operations do not depend on the width. */
#define VL 8

typedef float vec __attribute__((vector_size(VL * sizeof(float)), aligned(4)));
typedef int veci __attribute__((vector_size(VL * sizeof(int)), aligned(4)));

/* macros, not functions: a vector passed or returned by value changes the ABI
 * between the SIMD paths (-Wpsabi) */
#define LD(p) (*(const vec *)(p))
#define ST(p, v) (*(vec *)(p) = (v))
/* x's VL values for output channels co0..co0+VL-1: x[co / dm] */
#define LDX(x, co0, dm)                                                                      \
    ({                                                                                      \
        vec v_;                                                                             \
        if ((dm) == 1)                                                                      \
            v_ = LD((x) + (co0));                                                           \
        else                                                                                \
            for (int l_ = 0; l_ < VL; l_++)                                                 \
                v_[l_] = (x)[((co0) + l_) / (dm)];                                          \
        v_;                                                                                 \
    })
/* a > 0 ? a : 0 (NaN -> 0), as the scalar rule */
#define RELU(a) ((vec)((veci)(a) & ((a) > (vec){0})))

/* The taps of one row of pixels: the input (or g) rows they read, rows[r] for kernel row
 * ti[r], r < nr; for a pixel, the columns cols[q] (float offsets in those rows) for kernel
 * column tj[q], q < nc. `full`: every tap is there (ti[r] = r, tj[q] = q), the interior. */
#define KMAX 256                 /* kernel rows or columns at most (pc_depthwise_* check) */

/* out[co] = act(bias[co] + sum over the taps of src[co / dm] * w[tap][co]), co < CO, taps in
 * order (rows, then columns) */
PC_SIMD_LOOP void gather_sum(float *restrict out, int CO, int dm, const float *const *rows,
                             const int *ti, int nr, const int *cols, const int *tj, int nc,
                             int full, int kw, const float *w, const float *bias, int relu)
{
    int c0 = 0;
    for (; c0 + VL <= CO; c0 += VL) {
        vec acc = bias ? LD(bias + c0) : (vec){0};
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            const float *wr = w + (size_t)(full ? r : ti[r]) * kw * CO + c0;
#pragma GCC unroll 8
            for (int q = 0; q < nc; q++)
                acc += LDX(rows[r] + cols[q], c0, dm) * LD(wr + (size_t)(full ? q : tj[q]) * CO);
        }
        ST(out + c0, relu ? RELU(acc) : acc);
    }
    for (int co = c0; co < CO; co++) {
        float acc = bias ? bias[co] : 0.0f;
        for (int r = 0; r < nr; r++)
            for (int q = 0; q < nc; q++)
                acc += rows[r][cols[q] + co / dm] * w[(size_t)(ti[r] * kw + tj[q]) * CO + co];
        out[co] = relu ? (acc > 0.0f ? acc : 0.0f) : acc;
    }
}

/* gather_sum for 3x3 with every tap inside and dm = 1, the interior: the nine source
 * pointers in registers, two vectors (two independent sums) at a time; the same operations */
#define SUM9(acc, c)                                                                          \
    do {                                                                                      \
        _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++)                                   \
            acc += LD(p[t] + (c)) * LD(w + (size_t)t * CO + (c));                             \
    } while (0)

PC_SIMD_LOOP void gather_sum9(float *restrict out, int CO, const float *const *rows,
                              const int *cols, const float *w, const float *bias, int relu)
{
    const float *p[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++)
        p[t] = rows[t / 3] + cols[t % 3];
    int c0 = 0;
    for (; c0 + 2 * VL <= CO; c0 += 2 * VL) {
        vec a = bias ? LD(bias + c0) : (vec){0};
        vec b = bias ? LD(bias + c0 + VL) : (vec){0};
        SUM9(a, c0);
        SUM9(b, c0 + VL);
        ST(out + c0, relu ? RELU(a) : a);
        ST(out + c0 + VL, relu ? RELU(b) : b);
    }
    for (; c0 + VL <= CO; c0 += VL) {
        vec a = bias ? LD(bias + c0) : (vec){0};
        SUM9(a, c0);
        ST(out + c0, relu ? RELU(a) : a);
    }
    for (int co = c0; co < CO; co++) {
        float acc = bias ? bias[co] : 0.0f;
        for (int t = 0; t < 9; t++)
            acc += p[t][co] * w[(size_t)t * CO + co];
        out[co] = relu ? (acc > 0.0f ? acc : 0.0f) : acc;
    }
}

/* dw[tap][co] += src[co / dm] * g[co] for the taps, db[co] += g[co] */
PC_SIMD_LOOP void scatter_acc(float *restrict dw, float *restrict db, int CO, int dm,
                              const float *const *rows, const int *ti, int nr, const int *cols,
                              const int *tj, int nc, int full, int kw, const float *g)
{
    int c0 = 0;
    for (; c0 + VL <= CO; c0 += VL) {
        const vec gv = LD(g + c0);
        ST(db + c0, LD(db + c0) + gv);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            float *dr = dw + (size_t)(full ? r : ti[r]) * kw * CO + c0;
#pragma GCC unroll 8
            for (int q = 0; q < nc; q++) {
                float *d = dr + (size_t)(full ? q : tj[q]) * CO;
                ST(d, LD(d) + LDX(rows[r] + cols[q], c0, dm) * gv);
            }
        }
    }
    for (int co = c0; co < CO; co++) {
        db[co] += g[co];
        for (int r = 0; r < nr; r++)
            for (int q = 0; q < nc; q++)
                dw[(size_t)(ti[r] * kw + tj[q]) * CO + co] += rows[r][cols[q] + co / dm] * g[co];
    }
}

/* scatter_acc for 3x3, dm = 1 and four interior pixels: pixel k reads rows[r] + cols[q] +
 * k*step and gradient g + k*CO. Each dw (and db) vector is loaded and stored once for the four
 * pixels, their products added in pixel order: the same operations as four scatter_acc. */
PC_SIMD_LOOP void scatter_acc9x4(float *restrict dw, float *restrict db, int CO,
                                 const float *const *rows, const int *cols, int step,
                                 const float *g)
{
    const float *p[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++)
        p[t] = rows[t / 3] + cols[t % 3];
    const float *g1 = g + CO, *g2 = g + 2 * CO, *g3 = g + 3 * CO;
    int c0 = 0;
    for (; c0 + VL <= CO; c0 += VL) {
        const vec a0 = LD(g + c0), a1 = LD(g1 + c0), a2 = LD(g2 + c0), a3 = LD(g3 + c0);
        vec d = LD(db + c0);
        d += a0;
        d += a1;
        d += a2;
        d += a3;
        ST(db + c0, d);
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) {
            const float *x = p[t] + c0;
            float *o = dw + (size_t)t * CO + c0;
            vec e = LD(o);
            e += LD(x) * a0;
            e += LD(x + step) * a1;
            e += LD(x + 2 * step) * a2;
            e += LD(x + 3 * step) * a3;
            ST(o, e);
        }
    }
    for (int co = c0; co < CO; co++) {
        for (int k = 0; k < 4; k++) {
            const float gk = g[(size_t)k * CO + co];
            db[co] += gk;
            for (int t = 0; t < 9; t++)
                dw[(size_t)t * CO + co] += p[t][co + k * step] * gk;
        }
    }
}

/* input rows (x's, offsets of iw*C) read by output row oh */
static int rows_fwd(const pc_dw_shape *s, const float *xn, int oh, const float **rows, int *ti)
{
    int nr = 0;
    for (int i = 0; i < s->kh; i++) {
        const int ih = oh * s->sh + i * s->dh - s->pt;
        if (ih >= 0 && ih < s->h) {
            rows[nr] = xn + (size_t)ih * s->w * s->c;
            ti[nr++] = i;
        }
    }
    return nr;
}

static int cols_fwd(const pc_dw_shape *s, int ow, int *cols, int *tj)
{
    int nc = 0;
    for (int j = 0; j < s->kw; j++) {
        const int iw = ow * s->sw + j * s->dw - s->pl;
        if (iw >= 0 && iw < s->w) {
            cols[nc] = iw * s->c;
            tj[nc++] = j;
        }
    }
    return nc;
}

/* The input row the next output row reads first (its last kernel row), or NULL: prefetched into
 * L2 a pixel's share at a time while this row is computed, so that the loads of the next row do
 * not wait for memory (the hardware prefetcher does not follow the walk over three rows). */
static const float *next_row(const pc_dw_shape *s, const float *xn, int oh)
{
    const int ih = (oh + 1) * s->sh + (s->kh - 1) * s->dh - s->pt;
    return oh + 1 < s->oh && ih >= 0 && ih < s->h ? xn + (size_t)ih * s->w * s->c : NULL;
}

static inline void prefetch_share(const pc_dw_shape *s, const float *row, int ow)
{
    if (!row)
        return;
    const size_t share = (size_t)s->sw * s->c, end = (size_t)s->w * s->c;
    for (size_t i = ow * share; i < (ow + 1) * share && i < end; i += 16)
        __builtin_prefetch(row + i, 0, 2);
}

/* ---- forward -------------------------------------------------------------------------------- */

PC_SIMD_LOOP void fwd_row_body(const pc_dw_shape *s, const float *xn, const float *w,
                               const float *b, float *yrow, int oh, int relu)
{
    const int CO = s->c * s->dm;
    const float *rows[KMAX];
    int ti[KMAX], cols[KMAX], tj[KMAX];
    const int nr = rows_fwd(s, xn, oh, rows, ti);
    const float *next = next_row(s, xn, oh);
    for (int ow = 0; ow < s->ow; ow++) {
        prefetch_share(s, next, ow);
        const int nc = cols_fwd(s, ow, cols, tj);
        float *out = yrow + (size_t)ow * CO;
        if (nr == 3 && nc == 3 && s->kh == 3 && s->kw == 3 && s->dm == 1)
            gather_sum9(out, CO, rows, cols, w, b, relu);
        else
            gather_sum(out, CO, s->dm, rows, ti, nr, cols, tj, nc, 0, s->kw, w, b, relu);
    }
}
PC_SIMD_VARIANTS(fwd_row, (const pc_dw_shape *s, const float *xn, const float *w,
                           const float *b, float *yrow, int oh, int relu),
                 (s, xn, w, b, yrow, oh, relu))

/* ---- backward: the masked gradient, the weight and bias gradients ---------------------------- */

/* g = dy where y > 0, else 0 */
PC_SIMD_LOOP void mask_row_body(const float *restrict dy, const float *restrict y,
                                float *restrict g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float d = dy[i];
        g[i] = y[i] > 0.0f ? d : 0.0f;
    }
}
PC_SIMD_VARIANTS(mask_row, (const float *restrict dy, const float *restrict y,
                            float *restrict g, size_t n), (dy, y, g, n))

/* dw[tap] += x * g and db += g over output row oh, pixels in order */
PC_SIMD_LOOP void dw_row_body(const pc_dw_shape *s, const float *xn, const float *grow,
                              float *dw, float *db, int oh)
{
    const int CO = s->c * s->dm;
    const float *rows[KMAX];
    int ti[KMAX], cols[KMAX], tj[KMAX];
    const int nr = rows_fwd(s, xn, oh, rows, ti);
    const int k3 = nr == 3 && s->kh == 3 && s->kw == 3 && s->dm == 1;
    const float *next = next_row(s, xn, oh);
    for (int ow = 0; ow < s->ow; ow++) {
        prefetch_share(s, next, ow);
        const int nc = cols_fwd(s, ow, cols, tj);
        const float *g = grow + (size_t)ow * CO;
        /* four pixels whose windows are all inside: the last one's too */
        if (k3 && nc == 3 && ow + 3 < s->ow && (ow + 3) * s->sw + 2 * s->dw - s->pl < s->w) {
            scatter_acc9x4(dw, db, CO, rows, cols, s->sw * s->c, g);
            for (int k = 1; k < 4; k++)
                prefetch_share(s, next, ow + k);
            ow += 3;
            continue;
        }
        if (nr == 3 && nc == 3 && s->kh == 3 && s->kw == 3)
            scatter_acc(dw, db, CO, s->dm, rows, ti, 3, cols, tj, 3, 1, 3, g);
        else
            scatter_acc(dw, db, CO, s->dm, rows, ti, nr, cols, tj, nc, 0, s->kw, g);
    }
}
PC_SIMD_VARIANTS(dw_row, (const pc_dw_shape *s, const float *xn, const float *grow, float *dw,
                          float *db, int oh), (s, xn, grow, dw, db, oh))

/* ---- backward: the input gradient ------------------------------------------------------------ */

/* where the g rows are: row oh at g0 + (oh % ring) * rowlen (ring 0: no wrap) */
typedef struct {
    const float *g0;
    size_t rowlen;
    int ring;
} grows;

/* output row (or column) reached by tap `tap` from input cell `in`, or -1 */
static inline int tap_out(int in, int tap, int pad, int dil, int stride, int nout)
{
    const int t = in + pad - tap * dil;
    if (t < 0 || t % stride)
        return -1;
    return t / stride < nout ? t / stride : -1;
}

/* dx row ih = sum over the taps of g * w, the gather form: dx[ih][iw] reads g[oh][ow] where
 * oh*sh + i*dh - pt = ih and ow*sw + j*dw - pl = iw */
PC_SIMD_LOOP void dx_row_body(const pc_dw_shape *s, const grows *G, const float *w, float *dxrow,
                              int ih)
{
    const int C = s->c, dm = s->dm, CO = C * dm;
    const float *rows[KMAX];
    int ti[KMAX], cols[KMAX], tj[KMAX], nr = 0;
    for (int i = 0; i < s->kh; i++) {
        const int oh = tap_out(ih, i, s->pt, s->dh, s->sh, s->oh);
        if (oh >= 0) {
            rows[nr] = G->g0 + (size_t)(G->ring ? oh % G->ring : oh) * G->rowlen;
            ti[nr++] = i;
        }
    }
    for (int iw = 0; iw < s->w; iw++) {
        int nc = 0;
        for (int j = 0; j < s->kw; j++) {
            const int ow = tap_out(iw, j, s->pl, s->dw, s->sw, s->ow);
            if (ow >= 0) {
                cols[nc] = ow * CO;
                tj[nc++] = j;
            }
        }
        float *out = dxrow + (size_t)iw * C;
        if (dm == 1 && nr == 3 && nc == 3 && s->kh == 3 && s->kw == 3) {
            gather_sum9(out, C, rows, cols, w, NULL, 0);
        } else if (dm == 1) {
            gather_sum(out, C, 1, rows, ti, nr, cols, tj, nc, 0, s->kw, w, NULL, 0);
        } else {
            /* dx[c] = sum over the taps, over m, of g[c*dm + m] * w[tap][c*dm + m] */
            for (int c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int r = 0; r < nr; r++)
                    for (int q = 0; q < nc; q++) {
                        const float *g = rows[r] + cols[q] + (size_t)c * dm;
                        const float *wt = w + (size_t)(ti[r] * s->kw + tj[q]) * CO + (size_t)c * dm;
                        for (int m = 0; m < dm; m++)
                            acc += g[m] * wt[m];
                    }
                out[c] = acc;
            }
        }
    }
}
PC_SIMD_VARIANTS(dx_row, (const pc_dw_shape *s, const grows *G, const float *w, float *dxrow,
                          int ih), (s, G, w, dxrow, ih))

/* ---- tasks ---------------------------------------------------------------------------------- */

typedef struct {
    pc_runtime *rt;
    pc_isa isa;
    const pc_dw_shape *s;
    const float *x, *w, *b, *dy, *y;
    float *out, *dx;
    float *partial;        /* LANES x (wsize + co) */
    size_t wsize;
    int relu, ring;
    int failed;
} dw_job;

static void forward_task(void *ctx, int n, int thread)
{
    (void)thread;
    dw_job *j = ctx;
    const pc_dw_shape *s = j->s;
    const size_t CO = (size_t)s->c * s->dm;
    const float *xn = j->x + (size_t)n * s->h * s->w * s->c;
    float *yn = j->out + (size_t)n * s->oh * s->ow * CO;
    for (int oh = 0; oh < s->oh; oh++)
        fwd_row(j->isa, s, xn, j->w, j->b, yn + (size_t)oh * s->ow * CO, oh, j->relu);
}

/* the last output row that dx row ih reads */
static int last_row(const pc_dw_shape *s, int ih)
{
    const int o = (ih + s->pt) / s->sh;
    return o < s->oh - 1 ? o : s->oh - 1;
}

static void backward_task(void *ctx, int lane, int thread)
{
    dw_job *j = ctx;
    const pc_dw_shape *s = j->s;
    const int CO = s->c * s->dm;
    float *dw = j->partial + (size_t)lane * (j->wsize + CO);
    float *db = dw + j->wsize;
    memset(dw, 0, (j->wsize + CO) * sizeof(float));
    const size_t rowlen = (size_t)s->ow * CO;
    float *ring = NULL;
    if (j->y) {
        ring = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_GRAD, (size_t)j->ring * rowlen);
        if (!ring) {
            j->failed = 1;
            return;
        }
    }
    const size_t ximg = (size_t)s->h * s->w * s->c, yimg = (size_t)s->oh * rowlen;
    const size_t xrow = (size_t)s->w * s->c;
    for (int n = lane; n < s->n; n += LANES) {
        const float *xn = j->x + (size_t)n * ximg;
        const float *dyn = j->dy + (size_t)n * yimg;
        float *dxn = j->dx ? j->dx + (size_t)n * ximg : NULL;
        const grows G = ring ? (grows){ring, rowlen, j->ring} : (grows){dyn, rowlen, 0};
        int ih = 0;
        for (int oh = 0; oh < s->oh; oh++) {
            const float *grow = dyn + (size_t)oh * rowlen;
            if (ring) {
                float *r = ring + (size_t)(oh % j->ring) * rowlen;
                mask_row(j->isa, grow, j->y + (size_t)n * yimg + (size_t)oh * rowlen, r, rowlen);
                grow = r;
            }
            dw_row(j->isa, s, xn, grow, dw, db, oh);
            for (; dxn && ih < s->h && last_row(s, ih) <= oh; ih++)
                dx_row(j->isa, s, &G, j->w, dxn + (size_t)ih * xrow, ih);
        }
        for (; dxn && ih < s->h; ih++)
            dx_row(j->isa, s, &G, j->w, dxn + (size_t)ih * xrow, ih);
    }
}

static int check(const pc_dw_shape *s)
{
    return s->n > 0 && s->c > 0 && s->dm > 0 && s->kh > 0 && s->kw > 0 && s->oh > 0 &&
           s->ow > 0 && s->sh > 0 && s->sw > 0 && s->dh > 0 && s->dw > 0 && s->pt >= 0 &&
           s->pl >= 0 && s->kh <= KMAX && s->kw <= KMAX;
}

int pc_depthwise_forward(pc_runtime *rt, const pc_dw_shape *s, const float *x, const float *w,
                         const float *b, float *y, pc_act act)
{
    if (!check(s) || (act != PC_ACT_LINEAR && act != PC_ACT_RELU))
        return PC_EINVAL;
    dw_job j = {.rt = rt, .isa = pc_loop_isa(rt), .s = s, .x = x, .w = w, .b = b, .out = y,
                .relu = act == PC_ACT_RELU};
    pc_parallel(rt, s->n, forward_task, &j);
    return PC_OK;
}

int pc_depthwise_backward(pc_runtime *rt, const pc_dw_shape *s, const float *x, const float *w,
                          const float *y, const float *dy, float *dx, float *dw, float *db)
{
    if (!check(s))
        return PC_EINVAL;
    const int CO = s->c * s->dm;
    const size_t wsize = (size_t)s->kh * s->kw * CO, total = wsize + CO;
    float *partial = pc_shared_scratch(rt, PC_SHARED_SLOT_PARTIAL, (size_t)LANES * total);
    if (!partial)
        return PC_ENOMEM;
    /* the g rows a dx row reads span at most (kh-1)*dh/sh + 1 output rows; one more spare */
    const int ring = ((s->kh - 1) * s->dh) / s->sh + 2;
    dw_job j = {.rt = rt, .isa = pc_loop_isa(rt), .s = s, .x = x, .w = w, .y = y, .dy = dy,
                .dx = dx, .partial = partial, .wsize = wsize, .ring = ring};
    const int lanes = s->n < LANES ? s->n : LANES;
    pc_parallel(rt, lanes, backward_task, &j);
    if (j.failed)
        return PC_ENOMEM;
    for (size_t e = 0; e < total; e++) {       /* the lanes, added in order */
        float acc = partial[e];
        for (int l = 1; l < lanes; l++)
            acc += partial[(size_t)l * total + e];
        if (e < wsize)
            dw[e] = acc;
        else if (db)
            db[e - wsize] = acc;
    }
    return PC_OK;
}
