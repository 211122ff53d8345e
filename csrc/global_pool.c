/* global_pool.c - global average and max pooling over x[n][s][c] (pycnn.h, "global pooling").
 * One task per sample; the mean sums in double in the order of s. */
#include "pycnn.h"

#include <stdatomic.h>
#include <string.h>

typedef struct {
    const float *x, *dy;
    float *y, *dx;
    int32_t *argmax;
    const int32_t *argmax_in;
    pc_runtime *rt;
    int s, c, is_max;
    pc_isa isa;              /* the loops' SIMD path */
    atomic_int failed;
} gp_job;

PC_SIMD_LOOP void add_row_body(double *restrict acc, const float *restrict x, int c)
{
    for (int k = 0; k < c; k++)
        acc[k] += x[k];
}
PC_SIMD_VARIANTS(add_row, (double *restrict acc, const float *restrict x, int c), (acc, x, c))

PC_SIMD_LOOP void max_row_body(float *restrict y, int32_t *restrict am, const float *restrict x,
                               int32_t i, int c)
{
    for (int k = 0; k < c; k++) {
        const float v = x[k];
        /* larger, or the first NaN (NaN propagates) */
        const int take = v > y[k] || (v != v && y[k] == y[k]);
        y[k] = take ? v : y[k];
        am[k] = take ? i : am[k];
    }
}
PC_SIMD_VARIANTS(max_row, (float *restrict y, int32_t *restrict am, const float *restrict x,
                           int32_t i, int c),
                 (y, am, x, i, c))

static void gp_forward_task(void *ctx, int n, int thread)
{
    gp_job *j = ctx;
    const int s = j->s, c = j->c;
    const float *x = j->x + (size_t)n * s * c;
    float *y = j->y + (size_t)n * c;
    if (j->is_max) {
        int32_t *am = j->argmax + (size_t)n * c;
        for (int k = 0; k < c; k++) {
            y[k] = x[k];
            am[k] = 0;
        }
        for (int i = 1; i < s; i++)
            max_row(j->isa, y, am, x + (size_t)i * c, i, c);
        return;
    }
    double *acc = (double *)(void *)pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK,
                                                      (size_t)c * 2);
    if (!acc) {
        atomic_store(&j->failed, 1);
        return;
    }
    for (int k = 0; k < c; k++)
        acc[k] = 0.0;
    for (int i = 0; i < s; i++)
        add_row(j->isa, acc, x + (size_t)i * c, c);
    for (int k = 0; k < c; k++)
        y[k] = (float)(acc[k] / s);
}

static void gp_backward_task(void *ctx, int n, int thread)
{
    (void)thread;
    const gp_job *j = ctx;
    const int s = j->s, c = j->c;
    const float *dy = j->dy + (size_t)n * c;
    float *dx = j->dx + (size_t)n * s * c;
    if (j->is_max) {
        memset(dx, 0, (size_t)s * c * sizeof(float));
        const int32_t *am = j->argmax_in + (size_t)n * c;
        for (int k = 0; k < c; k++)
            dx[(size_t)am[k] * c + k] = dy[k];
        return;
    }
    for (int i = 0; i < s; i++)
        for (int k = 0; k < c; k++)
            dx[(size_t)i * c + k] = dy[k] / (float)s;
}

int pc_global_pool_forward(pc_runtime *rt, const float *x, int n, int s, int c, int is_max,
                           float *y, int32_t *argmax)
{
    if (n <= 0 || s <= 0 || c <= 0 || (is_max && !argmax))
        return PC_EINVAL;
    gp_job j = {.x = x, .y = y, .argmax = argmax, .rt = rt, .s = s, .c = c, .is_max = is_max,
                .isa = pc_loop_isa(rt)};
    atomic_init(&j.failed, 0);
    int rc = pc_parallel(rt, n, gp_forward_task, &j);
    return rc ? rc : (atomic_load(&j.failed) ? PC_ENOMEM : PC_OK);
}

int pc_global_pool_backward(pc_runtime *rt, const float *dy, int n, int s, int c, int is_max,
                            const int32_t *argmax, float *dx)
{
    if (n <= 0 || s <= 0 || c <= 0 || (is_max && !argmax))
        return PC_EINVAL;
    for (size_t i = 0; is_max && i < (size_t)n * c; i++)
        if (argmax[i] < 0 || argmax[i] >= s)
            return PC_EINVAL;
    gp_job j = {.dy = dy, .dx = dx, .argmax_in = argmax, .s = s, .c = c, .is_max = is_max,
                .isa = pc_loop_isa(rt)};
    atomic_init(&j.failed, 0);
    return pc_parallel(rt, n, gp_backward_task, &j);
}
