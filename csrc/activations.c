/* activations.c - relu, sigmoid, tanh, softmax (stable, over rows) and their gradients, which
 * are computed from the forward OUTPUT y. Elementwise work is split in fixed blocks. */
#include "pycnn.h"

#include <math.h>

#define BLOCK 16384

typedef struct {
    pc_act act;
    const float *x, *y, *dy;
    float *out;
    size_t size, cols;
    int backward;
    pc_isa isa;              /* the loops' SIMD path */
} act_job;

double pc_softmax_row(const float *z, float *p, size_t n)
{
    float mx = z[0];
    for (size_t c = 1; c < n; c++)
        mx = z[c] > mx ? z[c] : mx;
    double sum = 0.0;
    for (size_t c = 0; c < n; c++) {
        p[c] = expf(z[c] - mx);
        sum += p[c];
    }
    const float inv = (float)(1.0 / sum);
    for (size_t c = 0; c < n; c++)
        p[c] *= inv;
    return (double)mx + log(sum);
}

static void softmax_rows(const float *x, float *y, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++, x += cols, y += cols)
        pc_softmax_row(x, y, cols);
}

/* dx = y * (dy - sum(dy * y)) per row */
static void softmax_rows_backward(const float *y, const float *dy, float *dx, size_t rows,
                                  size_t cols)
{
    for (size_t r = 0; r < rows; r++, y += cols, dy += cols, dx += cols) {
        double dot = 0.0;
        for (size_t c = 0; c < cols; c++)
            dot += (double)dy[c] * y[c];
        for (size_t c = 0; c < cols; c++)
            dx[c] = y[c] * (dy[c] - (float)dot);
    }
}

/* Elementwise loops over restrict pointers (and an in-place variant), so the compiler
 * vectorises them. relu(x) = x <= 0 ? 0 : x: NaN stays NaN (as in NumPy, TensorFlow and JAX)
 * and -0 becomes +0; its gradient passes dy where y > 0 (0 where y is NaN). */
PC_SIMD_LOOP void forward_range_body(pc_act act, const float *restrict x, float *restrict y,
                                     size_t n)
{
    switch (act) {
    case PC_ACT_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] <= 0.0f ? 0.0f : x[i];   /* NaN stays */
        break;
    case PC_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case PC_ACT_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    default:
        for (size_t i = 0; i < n; i++) y[i] = x[i];
    }
}

PC_SIMD_VARIANTS(forward_range, (pc_act act, const float *restrict x, float *restrict y, size_t n),
                 (act, x, y, n))

PC_SIMD_LOOP void forward_range_inplace_body(pc_act act, float *restrict v, size_t n)
{
    switch (act) {
    case PC_ACT_RELU:
        for (size_t i = 0; i < n; i++) v[i] = v[i] <= 0.0f ? 0.0f : v[i];
        break;
    case PC_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) v[i] = 1.0f / (1.0f + expf(-v[i]));
        break;
    case PC_ACT_TANH:
        for (size_t i = 0; i < n; i++) v[i] = tanhf(v[i]);
        break;
    default:
        break;
    }
}

PC_SIMD_VARIANTS(forward_range_inplace, (pc_act act, float *restrict v, size_t n), (act, v, n))

PC_SIMD_LOOP void backward_range_body(pc_act act, const float *restrict y, const float *restrict dy,
                                      float *restrict dx, size_t n)
{
    switch (act) {
    case PC_ACT_RELU:
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case PC_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case PC_ACT_TANH:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    default:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i];
    }
}

PC_SIMD_VARIANTS(backward_range, (pc_act act, const float *restrict y, const float *restrict dy,
                                  float *restrict dx, size_t n),
                 (act, y, dy, dx, n))

PC_SIMD_LOOP void backward_range_inplace_body(pc_act act, const float *restrict y,
                                              float *restrict g, size_t n)
{
    switch (act) {
    case PC_ACT_RELU:
        for (size_t i = 0; i < n; i++) g[i] = y[i] > 0.0f ? g[i] : 0.0f;
        break;
    case PC_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) g[i] = g[i] * y[i] * (1.0f - y[i]);
        break;
    case PC_ACT_TANH:
        for (size_t i = 0; i < n; i++) g[i] *= 1.0f - y[i] * y[i];
        break;
    default:
        break;
    }
}

PC_SIMD_VARIANTS(backward_range_inplace, (pc_act act, const float *restrict y, float *restrict g,
                                          size_t n),
                 (act, y, g, n))

static void act_task(void *ctx, int task, int thread)
{
    (void)thread;
    const act_job *j = ctx;
    size_t lo = (size_t)task * BLOCK, hi = lo + BLOCK < j->size ? lo + BLOCK : j->size;
    if (j->act == PC_ACT_SOFTMAX) {
        /* blocks of whole rows */
        const size_t rows_per = BLOCK / j->cols ? BLOCK / j->cols : 1;
        const size_t r0 = (size_t)task * rows_per, rows = j->size / j->cols;
        const size_t r1 = r0 + rows_per < rows ? r0 + rows_per : rows;
        if (r0 >= r1)
            return;
        const size_t off = r0 * j->cols;
        if (j->backward)
            softmax_rows_backward(j->y + off, j->dy + off, j->out + off, r1 - r0, j->cols);
        else
            softmax_rows(j->x + off, j->out + off, r1 - r0, j->cols);
        return;
    }
    if (!j->backward && j->x == j->out)
        forward_range_inplace(j->isa, j->act, j->out + lo, hi - lo);
    else if (!j->backward)
        forward_range(j->isa, j->act, j->x + lo, j->out + lo, hi - lo);
    else if (j->out == j->dy)
        backward_range_inplace(j->isa, j->act, j->y + lo, j->out + lo, hi - lo);
    else
        backward_range(j->isa, j->act, j->y + lo, j->dy + lo, j->out + lo, hi - lo);
}

static int run(pc_runtime *rt, act_job *j)
{
    if (j->size == 0)
        return PC_OK;
    j->isa = pc_loop_isa(rt);
    size_t tasks;
    if (j->act == PC_ACT_SOFTMAX) {
        if (j->cols == 0 || j->size % j->cols)
            return PC_EINVAL;
        const size_t rows_per = BLOCK / j->cols ? BLOCK / j->cols : 1;
        tasks = (j->size / j->cols + rows_per - 1) / rows_per;
    } else {
        tasks = (j->size + BLOCK - 1) / BLOCK;
    }
    if (tasks > 0x7fffffff)
        return PC_EINVAL;
    return pc_parallel(rt, (int)tasks, act_task, j);
}

int pc_activation_forward(pc_runtime *rt, pc_act act, const float *x, float *y, size_t size,
                          size_t cols)
{
    if (act >= PC_ACT_FIRST_EXT)     /* activations_ext.c, with the kind's default parameter */
        return pc_activation_forward_ext(rt, act, pc_act_default_alpha(act), x, y, size);
    act_job j = {.act = act, .x = x, .out = y, .size = size, .cols = cols};
    return run(rt, &j);
}

int pc_activation_backward(pc_runtime *rt, pc_act act, const float *y, const float *dy,
                           float *dx, size_t size, size_t cols)
{
    if (act >= PC_ACT_FIRST_EXT)     /* from y alone: EINVAL for the kinds that need x */
        return pc_activation_backward_ext(rt, act, pc_act_default_alpha(act), NULL, y, dy, dx,
                                          size);
    act_job j = {.act = act, .y = y, .dy = dy, .out = dx, .size = size, .cols = cols,
                 .backward = 1};
    return run(rt, &j);
}
