/* pool.c - max and average pooling over NHWC activations (shapes: pc_pool_shape in pycnn.h).
 * One task per image; each image's output and gradient are written by that task alone. */
#include "pycnn.h"

#include <string.h>

typedef struct {
    const pc_pool_shape *s;
    const float *x, *dy;
    float *y, *dx;
    int32_t *argmax;
    const int32_t *argmax_in;
    pc_isa isa;              /* the loops' SIMD path */
} pool_job;

/* The window of output (oh, ow) clipped to the image: rows [h0, h1), columns [w0, w1). */
static void window(const pc_pool_shape *s, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
    int hs = oh * s->sh - s->pt, ws = ow * s->sw - s->pl;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + s->ph > s->h ? s->h : hs + s->ph;
    *w1 = ws + s->pw > s->w ? s->w : ws + s->pw;
}

/* Whether v replaces the running maximum m: v > m (strict: the first maximum of the
 * row-by-row scan stays), or v is NaN while m is not: a window holding NaN pools to NaN (as
 * np.maximum and JAX's reduce_window max do), its argmax the first NaN's cell. */
#define TAKES_MAX(v, m) (((v) > (m)) | (((v) != (v)) & ((m) == (m))))

/* y, am: the running maximum over channels and its cell (TAKES_MAX). Separate functions over
 * restrict pointers so the channel loop is vectorised (compiled per ISA). */
PC_SIMD_LOOP void max_update_body(float *restrict y, int32_t *restrict am, const float *restrict xc,
                                  int32_t cell, int C)
{
    for (int c = 0; c < C; c++) {
        const float v = xc[c], m = y[c];
        const int better = TAKES_MAX(v, m);
        y[c] = better ? v : m;
        am[c] = better ? cell : am[c];
    }
}
PC_SIMD_VARIANTS(max_update, (float *restrict y, int32_t *restrict am, const float *restrict xc,
                              int32_t cell, int C),
                 (y, am, xc, cell, C))

static void max_init(float *restrict y, int32_t *restrict am, const float *restrict xc,
                     int32_t cell, int C)
{
    for (int c = 0; c < C; c++) {
        y[c] = xc[c];
        am[c] = cell;
    }
}

/* A whole 2x2 window (cells a, b in the first row, c, d in the second) in one pass over the
 * channels: the common case, without the running max going through memory between cells. */
PC_SIMD_LOOP void max_2x2_body(float *restrict y, int32_t *restrict am, const float *restrict a,
                               const float *restrict b, const float *restrict c,
                               const float *restrict d, int32_t cell, int32_t row, int C)
{
    for (int k = 0; k < C; k++) {
        const float ak = a[k], bk = b[k], ck = c[k], dk = d[k];
        float m = ak;
        int32_t i = cell;
        i = bk > m ? cell + 1 : i;
        m = bk > m ? bk : m;
        i = ck > m ? cell + row : i;
        m = ck > m ? ck : m;
        i = dk > m ? cell + row + 1 : i;
        m = dk > m ? dk : m;
        /* TAKES_MAX's NaN rule as a second pass (this form is vectorised): the window's first
         * NaN, the cells taken in reverse order so that the first one wins */
        i = dk != dk ? cell + row + 1 : i;
        m = dk != dk ? dk : m;
        i = ck != ck ? cell + row : i;
        m = ck != ck ? ck : m;
        i = bk != bk ? cell + 1 : i;
        m = bk != bk ? bk : m;
        i = ak != ak ? cell : i;
        m = ak != ak ? ak : m;
        y[k] = m;
        am[k] = i;
    }
}
PC_SIMD_VARIANTS(max_2x2, (float *restrict y, int32_t *restrict am, const float *restrict a,
                           const float *restrict b, const float *restrict c,
                           const float *restrict d, int32_t cell, int32_t row, int C),
                 (y, am, a, b, c, d, cell, row, C))

void pc_maxpool2d_image_isa(pc_isa isa, const pc_pool_shape *s, const float *x, float *y,
                            int32_t *am, int am_w)
{
    const int C = s->c;
    for (int oh = 0; oh < s->oh; oh++) {
        for (int ow = 0; ow < s->ow; ow++, y += C, am += C) {
            int h0, h1, w0, w1;
            window(s, oh, ow, &h0, &h1, &w0, &w1);
            if (h0 >= h1 || w0 >= w1) {            /* padding only */
                for (int c = 0; c < C; c++) {
                    y[c] = -__builtin_inff();
                    am[c] = -1;
                }
                continue;
            }
            const float *a = x + ((size_t)h0 * s->w + w0) * C;
            const int32_t first = h0 * am_w + w0;
            if (h1 - h0 == 2 && w1 - w0 == 2) {
                const float *c = a + (size_t)s->w * C;
                max_2x2(isa, y, am, a, a + C, c, c + C, first, am_w, C);
                continue;
            }
            max_init(y, am, a, first, C);
            for (int h = h0; h < h1; h++)
                for (int w = (h == h0 ? w0 + 1 : w0); w < w1; w++)
                    max_update(isa, y, am, x + ((size_t)h * s->w + w) * C, h * am_w + w, C);
        }
    }
}

static void max_forward_task(void *ctx, int n, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    const pc_pool_shape *s = j->s;
    const size_t out = (size_t)n * s->oh * s->ow * s->c;
    pc_maxpool2d_image_isa(j->isa, s, j->x + (size_t)n * s->h * s->w * s->c, j->y + out,
                           j->argmax + out, s->w);
}

/* Non-overlapping windows without padding: every input cell is in at most one window, so each
 * is written once, by a select over the channels (no zeroing pass, no scatter). */
static int tiled(const pc_pool_shape *s)
{
    return s->ph > 0 && s->pw > 0 && s->sh == s->ph && s->sw == s->pw && s->pt == 0 &&
           s->pl == 0 &&
           (long long)s->oh * s->ph <= s->h && (long long)s->ow * s->pw <= s->w;
}

PC_SIMD_LOOP void select_cell_body(float *restrict dx, const float *restrict dy,
                                   const int32_t *restrict am, const float *restrict relu_y,
                                   int32_t cell, int C)
{
    if (relu_y) {
        for (int c = 0; c < C; c++)
            dx[c] = am[c] == cell && relu_y[c] > 0.0f ? dy[c] : 0.0f;
    } else {
        for (int c = 0; c < C; c++)
            dx[c] = am[c] == cell ? dy[c] : 0.0f;
    }
}
PC_SIMD_VARIANTS(select_cell, (float *restrict dx, const float *restrict dy,
                               const int32_t *restrict am, const float *restrict relu_y,
                               int32_t cell, int C),
                 (dx, dy, am, relu_y, cell, C))

/* select_cell for the four cells of a 2x2 window at once (dy, argmax and mask read once) */
PC_SIMD_LOOP void select_2x2_body(float *restrict a, float *restrict b, float *restrict c,
                                  float *restrict d, const float *restrict dy,
                                  const int32_t *restrict am, const float *restrict relu_y,
                                  int32_t cell, int32_t row, int C)
{
    for (int k = 0; k < C; k++) {
        const float g = relu_y && !(relu_y[k] > 0.0f) ? 0.0f : dy[k];
        const int32_t i = am[k];
        a[k] = i == cell ? g : 0.0f;
        b[k] = i == cell + 1 ? g : 0.0f;
        c[k] = i == cell + row ? g : 0.0f;
        d[k] = i == cell + row + 1 ? g : 0.0f;
    }
}
PC_SIMD_VARIANTS(select_2x2, (float *restrict a, float *restrict b, float *restrict c,
                              float *restrict d, const float *restrict dy,
                              const int32_t *restrict am, const float *restrict relu_y,
                              int32_t cell, int32_t row, int C),
                 (a, b, c, d, dy, am, relu_y, cell, row, C))

void pc_maxpool2d_image_backward_isa(pc_isa isa, const pc_pool_shape *s, const float *dy,
                                     const int32_t *am, const float *relu_y, float *dx, int am_w)
{
    const int C = s->c;
    const size_t cells = (size_t)s->h * s->w;
    if (tiled(s)) {
        for (int oh = 0; oh < s->oh; oh++) {
            for (int ow = 0; ow < s->ow; ow++) {
                const size_t o = ((size_t)oh * s->ow + ow) * C;
                if (s->ph == 2 && s->pw == 2) {
                    float *a = dx + ((size_t)2 * oh * s->w + 2 * ow) * C;
                    float *c = a + (size_t)s->w * C;
                    select_2x2(isa, a, a + C, c, c + C, dy + o, am + o, relu_y ? relu_y + o : NULL,
                               2 * oh * am_w + 2 * ow, am_w, C);
                    continue;
                }
                for (int h = oh * s->ph; h < (oh + 1) * s->ph; h++)
                    for (int w = ow * s->pw; w < (ow + 1) * s->pw; w++)
                        select_cell(isa, dx + ((size_t)h * s->w + w) * C, dy + o, am + o,
                                    relu_y ? relu_y + o : NULL, h * am_w + w, C);
            }
            for (int w = s->ow * s->pw; w < s->w; w++)         /* columns no window covers */
                for (int h = oh * s->ph; h < (oh + 1) * s->ph; h++)
                    memset(dx + ((size_t)h * s->w + w) * C, 0, (size_t)C * sizeof(float));
        }
        const size_t covered = (size_t)s->oh * s->ph * s->w;   /* rows no window covers */
        memset(dx + covered * C, 0, (cells - covered) * C * sizeof(float));
        return;
    }
    memset(dx, 0, cells * C * sizeof(float));
    if (am_w <= 0)
        return;
    const size_t outs = (size_t)s->oh * s->ow;
    for (size_t o = 0; o < outs; o++, dy += C, am += C) {
        const float *ry = relu_y ? relu_y + o * C : NULL;
        for (int c = 0; c < C; c++) {
            if (am[c] < 0 || (ry && !(ry[c] > 0.0f)))
                continue;
            const int32_t h = am[c] / am_w, w = am[c] % am_w;
            if (h < s->h && w < s->w)
                dx[((size_t)h * s->w + w) * C + c] += dy[c];
        }
    }
}

static void max_backward_task(void *ctx, int n, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    const pc_pool_shape *s = j->s;
    const size_t out = (size_t)n * s->oh * s->ow * s->c;
    pc_maxpool2d_image_backward_isa(j->isa, s, j->dy + out, j->argmax_in + out, NULL,
                                    j->dx + (size_t)n * s->h * s->w * s->c, s->w);
}

PC_SIMD_LOOP void avg_forward_body(void *ctx, int n, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    const pc_pool_shape *s = j->s;
    const int C = s->c;
    const float *x = j->x + (size_t)n * s->h * s->w * C;
    float *y = j->y + (size_t)n * s->oh * s->ow * C;
    for (int oh = 0; oh < s->oh; oh++) {
        for (int ow = 0; ow < s->ow; ow++, y += C) {
            int h0, h1, w0, w1;
            window(s, oh, ow, &h0, &h1, &w0, &w1);
            memset(y, 0, (size_t)C * sizeof(float));
            if (h1 <= h0 || w1 <= w0)                /* padding only */
                continue;
            const int count = (h1 - h0) * (w1 - w0);
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) {
                    const float *xc = x + ((size_t)h * s->w + w) * C;
                    for (int c = 0; c < C; c++)
                        y[c] += xc[c];
                }
            const float inv = 1.0f / (float)count;
            for (int c = 0; c < C; c++)
                y[c] *= inv;
        }
    }
}
PC_SIMD_VARIANTS(avg_forward, (void *ctx, int n, int thread), (ctx, n, thread))

static void avg_forward_task(void *ctx, int n, int thread)
{
    avg_forward(((const pool_job *)ctx)->isa, ctx, n, thread);
}

PC_SIMD_LOOP void avg_backward_body(void *ctx, int n, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    const pc_pool_shape *s = j->s;
    const int C = s->c;
    float *dx = j->dx + (size_t)n * s->h * s->w * C;
    const float *dy = j->dy + (size_t)n * s->oh * s->ow * C;
    memset(dx, 0, (size_t)s->h * s->w * C * sizeof(float));
    for (int oh = 0; oh < s->oh; oh++) {
        for (int ow = 0; ow < s->ow; ow++, dy += C) {
            int h0, h1, w0, w1;
            window(s, oh, ow, &h0, &h1, &w0, &w1);
            if (h1 <= h0 || w1 <= w0)                /* padding only */
                continue;
            const int count = (h1 - h0) * (w1 - w0);
            const float inv = 1.0f / (float)count;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) {
                    float *d = dx + ((size_t)h * s->w + w) * C;
                    for (int c = 0; c < C; c++)
                        d[c] += dy[c] * inv;
                }
        }
    }
}
PC_SIMD_VARIANTS(avg_backward, (void *ctx, int n, int thread), (ctx, n, thread))

static void avg_backward_task(void *ctx, int n, int thread)
{
    avg_backward(((const pool_job *)ctx)->isa, ctx, n, thread);
}

void pc_maxpool2d_image(const pc_pool_shape *s, const float *x, float *y, int32_t *am, int am_w)
{
    pc_maxpool2d_image_isa(pc_best_loop_isa(), s, x, y, am, am_w);
}

void pc_maxpool2d_image_backward(const pc_pool_shape *s, const float *dy, const int32_t *am,
                                 const float *relu_y, float *dx, int am_w)
{
    pc_maxpool2d_image_backward_isa(pc_best_loop_isa(), s, dy, am, relu_y, dx, am_w);
}

int pc_maxpool2d_forward(pc_runtime *rt, const pc_pool_shape *s, const float *x, float *y,
                         int32_t *argmax)
{
    pool_job j = {.s = s, .x = x, .y = y, .argmax = argmax, .isa = pc_loop_isa(rt)};
    return pc_parallel(rt, s->n, max_forward_task, &j);
}

int pc_maxpool2d_backward(pc_runtime *rt, const pc_pool_shape *s, const float *dy,
                          const int32_t *argmax, float *dx)
{
    pool_job j = {.s = s, .dy = dy, .argmax_in = argmax, .dx = dx, .isa = pc_loop_isa(rt)};
    return pc_parallel(rt, s->n, max_backward_task, &j);
}

int pc_avgpool2d_forward(pc_runtime *rt, const pc_pool_shape *s, const float *x, float *y)
{
    pool_job j = {.s = s, .x = x, .y = y, .isa = pc_loop_isa(rt)};
    return pc_parallel(rt, s->n, avg_forward_task, &j);
}

int pc_avgpool2d_backward(pc_runtime *rt, const pc_pool_shape *s, const float *dy, float *dx)
{
    pool_job j = {.s = s, .dy = dy, .dx = dx, .isa = pc_loop_isa(rt)};
    return pc_parallel(rt, s->n, avg_backward_task, &j);
}
