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

/* y, am: the running maximum over channels and its cell; strict '>' keeps the first maximum
 * of the row-by-row scan. Separate functions over restrict pointers so the channel loop is
 * vectorised (compiled per ISA). */
PC_MULTIVERSION __attribute__((noinline))
static void max_update(float *restrict y, int32_t *restrict am, const float *restrict xc,
                       int32_t cell, int C)
{
    for (int c = 0; c < C; c++) {
        const float v = xc[c];
        const int better = v > y[c];
        y[c] = better ? v : y[c];
        am[c] = better ? cell : am[c];
    }
}

static void max_init(float *restrict y, int32_t *restrict am, const float *restrict xc,
                     int32_t cell, int C)
{
    for (int c = 0; c < C; c++) {
        y[c] = xc[c];
        am[c] = cell;
    }
}

static void max_forward_task(void *ctx, int n, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    const pc_pool_shape *s = j->s;
    const int C = s->c;
    const float *x = j->x + (size_t)n * s->h * s->w * C;
    float *y = j->y + (size_t)n * s->oh * s->ow * C;
    int32_t *am = j->argmax + (size_t)n * s->oh * s->ow * C;
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
            const int32_t first = h0 * s->w + w0;
            max_init(y, am, x + (size_t)first * C, first, C);
            for (int h = h0; h < h1; h++)
                for (int w = (h == h0 ? w0 + 1 : w0); w < w1; w++)
                    max_update(y, am, x + ((size_t)h * s->w + w) * C, h * s->w + w, C);
        }
    }
}

PC_MULTIVERSION
static void max_backward_task(void *ctx, int n, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    const pc_pool_shape *s = j->s;
    const int C = s->c;
    const size_t cells = (size_t)s->h * s->w;
    float *dx = j->dx + (size_t)n * cells * C;
    const float *dy = j->dy + (size_t)n * s->oh * s->ow * C;
    const int32_t *am = j->argmax_in + (size_t)n * s->oh * s->ow * C;
    memset(dx, 0, cells * C * sizeof(float));
    const size_t outs = (size_t)s->oh * s->ow;
    for (size_t o = 0; o < outs; o++, dy += C, am += C)
        for (int c = 0; c < C; c++)
            if (am[c] >= 0 && (size_t)am[c] < cells)
                dx[(size_t)am[c] * C + c] += dy[c];
}

PC_MULTIVERSION
static void avg_forward_task(void *ctx, int n, int thread)
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
            const int count = (h1 - h0) * (w1 - w0);
            if (count <= 0)
                continue;
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

PC_MULTIVERSION
static void avg_backward_task(void *ctx, int n, int thread)
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
            const int count = (h1 - h0) * (w1 - w0);
            if (count <= 0)
                continue;
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

int pc_maxpool2d_forward(pc_runtime *rt, const pc_pool_shape *s, const float *x, float *y,
                         int32_t *argmax)
{
    pool_job j = {.s = s, .x = x, .y = y, .argmax = argmax};
    return pc_parallel(rt, s->n, max_forward_task, &j);
}

int pc_maxpool2d_backward(pc_runtime *rt, const pc_pool_shape *s, const float *dy,
                          const int32_t *argmax, float *dx)
{
    pool_job j = {.s = s, .dy = dy, .argmax_in = argmax, .dx = dx};
    return pc_parallel(rt, s->n, max_backward_task, &j);
}

int pc_avgpool2d_forward(pc_runtime *rt, const pc_pool_shape *s, const float *x, float *y)
{
    pool_job j = {.s = s, .x = x, .y = y};
    return pc_parallel(rt, s->n, avg_forward_task, &j);
}

int pc_avgpool2d_backward(pc_runtime *rt, const pc_pool_shape *s, const float *dy, float *dx)
{
    pool_job j = {.s = s, .dy = dy, .dx = dx};
    return pc_parallel(rt, s->n, avg_backward_task, &j);
}
