/* activations_ext.c - the elementwise activations beyond relu/sigmoid/tanh/softmax (pycnn.h,
 * "more activations"): forward, and backward from the forward output y where y determines the
 * derivative, from the input x where it does not. Work is split in fixed blocks of BLOCK
 * floats, each computed on its own: results do not depend on the thread count. */
#include "pycnn.h"

#include <math.h>

#define BLOCK 16384

/* Keras 3's selu constants */
#define SELU_ALPHA 1.6732632423543772f
#define SELU_SCALE 1.0507009873554805f
#define SQRT_HALF 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f
#define SQRT_2_OVER_PI 0.79788456080286536f
#define GELU_C 0.044715f

typedef struct {
    pc_act act;
    float alpha;
    const float *x, *y, *dy;
    float *out;
    size_t size;
    int backward;
    pc_isa isa;              /* the loops' SIMD path */
} ext_job;

int pc_act_needs_input(pc_act act, float alpha)
{
    switch (act) {
    case PC_ACT_SILU: case PC_ACT_HARD_SILU: case PC_ACT_GELU: case PC_ACT_GELU_TANH:
    case PC_ACT_MISH:
        return 1;
    case PC_ACT_ELU:
        return !(alpha > 0.0f);    /* y > 0 tells x > 0 only for a positive alpha */
    case PC_ACT_LEAKY_RELU:
        return alpha < 0.0f;
    default:
        return 0;
    }
}

float pc_act_default_alpha(pc_act act)
{
    switch (act) {
    case PC_ACT_ELU: return 1.0f;
    case PC_ACT_LEAKY_RELU: return 0.2f;
    default: return 0.0f;
    }
}

/* log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|) */
static inline float softplusf(float x)
{
    return (x > 0.0f ? x : 0.0f) + log1pf(expf(-fabsf(x)));
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

PC_SIMD_LOOP void fwd_body(pc_act act, float alpha, const float *x, float *y, size_t n)
{
    switch (act) {
    case PC_ACT_ELU:
        for (size_t i = 0; i < n; i++) { const float v = x[i]; y[i] = v > 0.0f ? v : alpha * expm1f(v); }
        break;
    case PC_ACT_SELU:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i];
            y[i] = SELU_SCALE * (v > 0.0f ? v : SELU_ALPHA * expm1f(v));
        }
        break;
    case PC_ACT_SOFTPLUS:
        for (size_t i = 0; i < n; i++) y[i] = softplusf(x[i]);
        break;
    case PC_ACT_SOFTSIGN:
        for (size_t i = 0; i < n; i++) { const float v = x[i]; y[i] = v / (1.0f + fabsf(v)); }
        break;
    case PC_ACT_SILU:
        for (size_t i = 0; i < n; i++) { const float v = x[i]; y[i] = v * sigmoidf(v); }
        break;
    case PC_ACT_HARD_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i] + 3.0f;
            y[i] = (v > 0.0f ? (v < 6.0f ? v : 6.0f) : (v == v ? 0.0f : v)) / 6.0f;
        }
        break;
    case PC_ACT_HARD_SILU:
        for (size_t i = 0; i < n; i++) {
            const float u = x[i], v = u + 3.0f;
            y[i] = u * (v > 0.0f ? (v < 6.0f ? v : 6.0f) : (v == v ? 0.0f : v)) / 6.0f;
        }
        break;
    case PC_ACT_RELU6:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i];
            y[i] = v > 0.0f ? (v < 6.0f ? v : 6.0f) : (v == v ? 0.0f : v);
        }
        break;
    case PC_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) { const float v = x[i]; y[i] = v > 0.0f ? v : alpha * v; }
        break;
    case PC_ACT_EXPONENTIAL:
        for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
        break;
    case PC_ACT_GELU:
        for (size_t i = 0; i < n; i++) { const float v = x[i]; y[i] = 0.5f * v * (1.0f + erff(v * SQRT_HALF)); }
        break;
    case PC_ACT_GELU_TANH:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i];
            y[i] = 0.5f * v * (1.0f + tanhf(SQRT_2_OVER_PI * (v + GELU_C * v * v * v)));
        }
        break;
    case PC_ACT_MISH:
        for (size_t i = 0; i < n; i++) { const float v = x[i]; y[i] = v * tanhf(softplusf(v)); }
        break;
    case PC_ACT_LOG_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = -softplusf(-x[i]);
        break;
    case PC_ACT_HARD_TANH:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i];
            y[i] = v > -1.0f ? (v < 1.0f ? v : 1.0f) : (v == v ? -1.0f : v);
        }
        break;
    default:
        break;
    }
}
PC_SIMD_VARIANTS(fwd, (pc_act act, float alpha, const float *x, float *y, size_t n),
                 (act, alpha, x, y, n))

/* d = f'(.) given y (and x for the kinds that need it); dx = dy * d. dx may equal dy, so each
 * element is read before it is written, one at a time. */
PC_SIMD_LOOP void bwd_body(pc_act act, float alpha, const float *x, const float *y, const float *dy,
                           float *dx, size_t n)
{
    switch (act) {
    case PC_ACT_ELU:
        if (x)
            for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (x[i] > 0.0f ? 1.0f : alpha * expf(x[i]));
        else
            for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (y[i] > 0.0f ? 1.0f : y[i] + alpha);
        break;
    case PC_ACT_SELU:
        for (size_t i = 0; i < n; i++)
            dx[i] = dy[i] * (y[i] > 0.0f ? SELU_SCALE : y[i] + SELU_SCALE * SELU_ALPHA);
        break;
    case PC_ACT_SOFTPLUS:      /* sigmoid(x) = 1 - e^-y */
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * -expm1f(-y[i]);
        break;
    case PC_ACT_SOFTSIGN:      /* 1 / (1 + |x|)^2 = (1 - |y|)^2 */
        for (size_t i = 0; i < n; i++) { const float t = 1.0f - fabsf(y[i]); dx[i] = dy[i] * t * t; }
        break;
    case PC_ACT_SILU:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i], s = sigmoidf(v);
            dx[i] = dy[i] * s * (1.0f + v * (1.0f - s));
        }
        break;
    case PC_ACT_HARD_SIGMOID:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (y[i] > 0.0f && y[i] < 1.0f ? 1.0f / 6.0f : 0.0f);
        break;
    case PC_ACT_HARD_SILU:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i];
            dx[i] = dy[i] * (v > 3.0f ? 1.0f : (v > -3.0f ? (2.0f * v + 3.0f) / 6.0f : 0.0f));
        }
        break;
    case PC_ACT_RELU6:
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f && y[i] < 6.0f ? dy[i] : 0.0f;
        break;
    case PC_ACT_LEAKY_RELU:
        if (x)
            for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (x[i] > 0.0f ? 1.0f : alpha);
        else
            for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (y[i] > 0.0f ? 1.0f : alpha);
        break;
    case PC_ACT_EXPONENTIAL:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i];
        break;
    case PC_ACT_GELU:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i];
            dx[i] = dy[i] * (0.5f * (1.0f + erff(v * SQRT_HALF)) +
                             v * INV_SQRT_2PI * expf(-0.5f * v * v));
        }
        break;
    case PC_ACT_GELU_TANH:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i];
            const float t = tanhf(SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
            dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * SQRT_2_OVER_PI *
                                                     (1.0f + 3.0f * GELU_C * v * v));
        }
        break;
    case PC_ACT_MISH:
        for (size_t i = 0; i < n; i++) {
            const float v = x[i], t = tanhf(softplusf(v));
            dx[i] = dy[i] * (t + v * (1.0f - t * t) * sigmoidf(v));
        }
        break;
    case PC_ACT_LOG_SIGMOID:   /* sigmoid(-x) = 1 - e^y */
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * -expm1f(y[i]);
        break;
    case PC_ACT_HARD_TANH:
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > -1.0f && y[i] < 1.0f ? dy[i] : 0.0f;
        break;
    default:
        break;
    }
}
PC_SIMD_VARIANTS(bwd, (pc_act act, float alpha, const float *x, const float *y, const float *dy,
                       float *dx, size_t n),
                 (act, alpha, x, y, dy, dx, n))

static void ext_task(void *ctx, int task, int thread)
{
    (void)thread;
    const ext_job *j = ctx;
    const size_t lo = (size_t)task * BLOCK, hi = lo + BLOCK < j->size ? lo + BLOCK : j->size;
    if (j->backward)
        bwd(j->isa, j->act, j->alpha, j->x ? j->x + lo : NULL, j->y + lo, j->dy + lo, j->out + lo,
            hi - lo);
    else
        fwd(j->isa, j->act, j->alpha, j->x + lo, j->out + lo, hi - lo);
}

static int run_ext(pc_runtime *rt, ext_job *j)
{
    if (j->act < PC_ACT_FIRST_EXT || j->act > PC_ACT_LAST_EXT || !(j->alpha == j->alpha))
        return PC_EINVAL;
    if (j->size == 0)
        return PC_OK;
    const size_t tasks = (j->size + BLOCK - 1) / BLOCK;
    if (tasks > 0x7fffffff)
        return PC_EINVAL;
    j->isa = pc_loop_isa(rt);
    return pc_parallel(rt, (int)tasks, ext_task, j);
}

int pc_activation_forward_ext(pc_runtime *rt, pc_act act, float alpha, const float *x, float *y,
                              size_t size)
{
    ext_job j = {.act = act, .alpha = alpha, .x = x, .out = y, .size = size};
    return run_ext(rt, &j);
}

int pc_activation_backward_ext(pc_runtime *rt, pc_act act, float alpha, const float *x,
                               const float *y, const float *dy, float *dx, size_t size)
{
    if (!y || (!x && pc_act_needs_input(act, alpha)))
        return PC_EINVAL;
    ext_job j = {.act = act, .alpha = alpha, .x = x, .y = y, .dy = dy, .out = dx, .size = size,
                 .backward = 1};
    return run_ext(rt, &j);
}
