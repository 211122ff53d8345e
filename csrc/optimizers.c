/* optimizers.c - Keras' update rules (keras/src/optimizers: sgd.py, rmsprop.py, adam.py),
 * applied in place to one variable of `size` floats. A weight whose new value would not be finite
 * (a learning rate far too high) keeps its old value and state; each update returns how many
 * such weights it met (0 normally), so training can stop with usable weights. Large variables
 * are updated by all threads, in ranges (elementwise: the same result for any split). */
#include "pycnn.h"

#include <math.h>

/* |v| <= FLT_MAX: false for inf and NaN; a plain compare, so the loops vectorise */
static inline int pc_finite(float v) { return fabsf(v) <= 3.40282347e38f; }

/* ---- elementwise, so split into ranges over the threads: the same result for any split ---- */

#define RANGE_BLOCK 32768   /* floats per task at least: smaller updates run on one thread */
#define MAX_RANGES 64

typedef size_t (*range_fn)(const void *args, size_t lo, size_t hi);

typedef struct {
    range_fn fn;
    const void *args;
    size_t size, block;
    size_t bad[MAX_RANGES];
} ranges_job;

static void range_task(void *ctx, int task, int thread)
{
    (void)thread;
    ranges_job *r = ctx;
    const size_t lo = (size_t)task * r->block;
    const size_t hi = lo + r->block < r->size ? lo + r->block : r->size;
    r->bad[task] = r->fn(r->args, lo, hi);
}

static size_t over_ranges(pc_runtime *rt, range_fn fn, const void *args, size_t size)
{
    if (size < 2 * RANGE_BLOCK)
        return fn(args, 0, size);
    ranges_job r = {.fn = fn, .args = args, .size = size};
    size_t tasks = (size + RANGE_BLOCK - 1) / RANGE_BLOCK;
    if (tasks > MAX_RANGES)
        tasks = MAX_RANGES;
    r.block = ((size + tasks - 1) / tasks + 15) / 16 * 16;
    tasks = (size + r.block - 1) / r.block;
    pc_parallel(rt, (int)tasks, range_task, &r);
    size_t bad = 0;
    for (size_t t = 0; t < tasks; t++)
        bad += r.bad[t];
    return bad;
}

typedef struct {
    float *w;
    const float *g;
    float *velocity;
    float lr, momentum;
    int nesterov;
} sgd_args;

PC_MULTIVERSION
static size_t sgd_range(const void *args, size_t lo, size_t hi)
{
    const sgd_args *a = args;
    float *w = a->w + lo, *velocity = a->velocity ? a->velocity + lo : NULL;
    const float *g = a->g + lo;
    const float lr = a->lr, momentum = a->momentum;
    const size_t size = hi - lo;
    size_t bad = 0;
    if (!velocity || momentum == 0.0f) {
        for (size_t i = 0; i < size; i++) {
            const float nw = w[i] - lr * g[i];
            const int ok = pc_finite(nw);
            w[i] = ok ? nw : w[i];
            bad += !ok;
        }
        return bad;
    }
    const float nest = a->nesterov ? 1.0f : 0.0f;
    for (size_t i = 0; i < size; i++) {
        const float v = momentum * velocity[i] - lr * g[i];
        const float step = nest * (momentum * v - lr * g[i]) + (1.0f - nest) * v;
        const float nw = w[i] + step;
        const int ok = pc_finite(nw) & pc_finite(v);
        velocity[i] = ok ? v : velocity[i];
        w[i] = ok ? nw : w[i];
        bad += !ok;
    }
    return bad;
}

size_t pc_sgd_update(pc_runtime *rt, float *w, const float *g, float *velocity, size_t size,
                     float lr, float momentum, int nesterov)
{
    const sgd_args a = {w, g, velocity, lr, momentum, nesterov};
    return over_ranges(rt, sgd_range, &a, size);
}

typedef struct {
    float *w;
    const float *g;
    float *v;
    float lr, rho, epsilon, momentum;
    float *mom;
    int centered;
    float *mg;
} rmsprop_args;

PC_MULTIVERSION
static size_t rmsprop_range(const void *args, size_t lo, size_t hi)
{
    const rmsprop_args *a = args;
    float *w = a->w + lo, *v = a->v + lo;
    float *mom = a->mom ? a->mom + lo : NULL, *mg = a->mg ? a->mg + lo : NULL;
    const float *g = a->g + lo;
    const float lr = a->lr, rho = a->rho, epsilon = a->epsilon, momentum = a->momentum;
    const size_t size = hi - lo;
    size_t bad = 0;
    const int use_mom = momentum > 0.0f && mom, use_mg = a->centered && mg;
    if (!use_mom && !use_mg) {          /* Keras' default RMSprop: the loop that vectorises */
        for (size_t i = 0; i < size; i++) {
            const float gi = g[i];
            const float nv = rho * v[i] + (1.0f - rho) * gi * gi;
            const float nw = w[i] - lr * gi / sqrtf(nv + epsilon);
            const int ok = pc_finite(nw) & pc_finite(nv);
            v[i] = ok ? nv : v[i];
            w[i] = ok ? nw : w[i];
            bad += !ok;
        }
        return bad;
    }
    for (size_t i = 0; i < size; i++) {
        const float gi = g[i];
        const float nv = rho * v[i] + (1.0f - rho) * gi * gi;
        float denom = nv, nmg = 0.0f;
        if (use_mg) {
            nmg = rho * mg[i] + (1.0f - rho) * gi;
            denom -= nmg * nmg;
        }
        const float inc = lr * gi / sqrtf(denom + epsilon);
        const float nmom = use_mom ? momentum * mom[i] + inc : inc;
        const float nw = w[i] - nmom;
        const int ok = pc_finite(nw) & pc_finite(nv);
        v[i] = ok ? nv : v[i];
        if (use_mg)
            mg[i] = ok ? nmg : mg[i];
        if (use_mom)
            mom[i] = ok ? nmom : mom[i];
        w[i] = ok ? nw : w[i];
        bad += !ok;
    }
    return bad;
}

size_t pc_rmsprop_update(pc_runtime *rt, float *w, const float *g, float *v, size_t size,
                         float lr, float rho, float epsilon, float momentum, float *mom,
                         int centered, float *mg)
{
    const rmsprop_args a = {w, g, v, lr, rho, epsilon, momentum, mom, centered, mg};
    return over_ranges(rt, rmsprop_range, &a, size);
}

typedef struct {
    float *w;
    const float *g;
    float *m, *v;
    float alpha, beta_1, beta_2, epsilon;
} adam_args;

PC_MULTIVERSION
static size_t adam_range(const void *args, size_t lo, size_t hi)
{
    const adam_args *a = args;
    float *w = a->w + lo, *m = a->m + lo, *v = a->v + lo;
    const float *g = a->g + lo;
    const float alpha = a->alpha, beta_1 = a->beta_1, beta_2 = a->beta_2, epsilon = a->epsilon;
    const size_t size = hi - lo;
    size_t bad = 0;
    for (size_t i = 0; i < size; i++) {
        const float gi = g[i];
        const float nm = m[i] + (gi - m[i]) * (1.0f - beta_1);
        const float nv = v[i] + (gi * gi - v[i]) * (1.0f - beta_2);
        const float nw = w[i] - alpha * nm / (sqrtf(nv) + epsilon);
        const int ok = pc_finite(nw) & pc_finite(nv);
        m[i] = ok ? nm : m[i];
        v[i] = ok ? nv : v[i];
        w[i] = ok ? nw : w[i];
        bad += !ok;
    }
    return bad;
}

size_t pc_adam_update(pc_runtime *rt, float *w, const float *g, float *m, float *v, size_t size,
                      float lr, float beta_1, float beta_2, float epsilon, long long step)
{
    const double b1t = pow((double)beta_1, (double)step), b2t = pow((double)beta_2, (double)step);
    const adam_args a = {w, g, m, v, (float)(lr * sqrt(1.0 - b2t) / (1.0 - b1t)), beta_1, beta_2,
                         epsilon};
    return over_ranges(rt, adam_range, &a, size);
}
