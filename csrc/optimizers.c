/* optimizers.c - Keras' update rules (keras/src/optimizers: sgd.py, rmsprop.py, adam.py,
 * adagrad.py, adadelta.py, adamax.py, nadam.py, lion.py), applied in place to one variable of
 * `size` floats in one pass over memory: the gradient's preprocessing (a scale from clipping by
 * norm, clipping by value), the decoupled weight decay (w -= w * lr * weight_decay), the moments
 * and the step. A weight whose new value or state would not be finite (a learning rate far too
 * high, a NaN gradient) keeps its old value and state; each update returns how many such weights
 * it met (0 normally), so training can stop with usable weights. Large variables are updated by
 * all threads, in ranges whose boundaries depend only on the size (elementwise: the same result
 * for any split); the sum of squares behind clipping by norm adds fixed blocks in a fixed order,
 * so it too is bit-identical for any thread count. */
#include "pycnn.h"

#include <math.h>

/* |v| <= FLT_MAX: false for inf and NaN; a plain compare, so the loops vectorise */
static inline int pc_finite(float v) { return fabsf(v) <= 3.40282347e38f; }

/* the gradient as the rule sees it: scaled (clipping by norm, averaging of accumulated
 * gradients), then clipped to [-clip, clip]; a NaN stays NaN (Keras' ops.clip) */
static inline float pre_grad(float g, float gscale, float clip)
{
    g *= gscale;
    return g > clip ? clip : (g < -clip ? -clip : g);
}

/* the larger of a and b, NaN when b is NaN (a is a finite state value) */
static inline float max_nan(float a, float b) { return a >= b ? a : b; }

/* ---- elementwise, so split into ranges over the threads: the same result for any split ---- */

#define RANGE_BLOCK 32768   /* floats per task at least: smaller updates run on one thread */
#define MAX_RANGES 64

/* Everything one update reads: the variable, its gradient, up to three state arrays, the
 * preprocessing and the rule's scalars (their meaning is the rule's, see each function). */
typedef struct {
    float *w;
    const float *g;
    float *s0, *s1, *s2;
    float gscale, clip, decay;
    float c[8];
    int flag;
} opt_job;

/* Whether the gradient goes to the rule as it is: no scaling, clipping or weight decay (the
 * default of every optimizer: its loop then skips those operations). */
static inline int plain_pre(const opt_job *a)
{
    return a->gscale == 1.0f && a->clip == INFINITY && a->decay == 0.0f;
}


/* a rule's loop over [lo, hi) on SIMD path isa (PC_SIMD_VARIANTS) */
typedef size_t (*range_fn)(pc_isa isa, const opt_job *a, size_t lo, size_t hi);

typedef struct {
    range_fn fn;
    pc_isa isa;
    const opt_job *args;
    size_t size, block;
    size_t bad[MAX_RANGES];
} ranges_job;

static void range_task(void *ctx, int task, int thread)
{
    (void)thread;
    ranges_job *r = ctx;
    const size_t lo = (size_t)task * r->block;
    const size_t hi = lo + r->block < r->size ? lo + r->block : r->size;
    r->bad[task] = r->fn(r->isa, r->args, lo, hi);
}

/* the ranges of a variable of `size` floats: boundaries from the size alone */
static size_t range_block(size_t size)
{
    size_t tasks = (size + RANGE_BLOCK - 1) / RANGE_BLOCK;
    if (tasks > MAX_RANGES)
        tasks = MAX_RANGES;
    return ((size + tasks - 1) / tasks + 15) / 16 * 16;
}

static size_t over_ranges(pc_runtime *rt, range_fn fn, const opt_job *args, size_t size)
{
    const pc_isa isa = pc_loop_isa(rt);
    if (size < 2 * RANGE_BLOCK)
        return fn(isa, args, 0, size);
    ranges_job r = {.fn = fn, .isa = isa, .args = args, .size = size,
                    .block = range_block(size)};
    const size_t tasks = (size + r.block - 1) / r.block;
    pc_parallel(rt, (int)tasks, range_task, &r);
    size_t bad = 0;
    for (size_t t = 0; t < tasks; t++)
        bad += r.bad[t];
    return bad;
}

static opt_job make_job(float *w, const float *g, float *s0, float *s1, float *s2,
                        const pc_opt_pre *pre)
{
    opt_job a = {.w = w, .g = g, .s0 = s0, .s1 = s1, .s2 = s2, .gscale = 1.0f,
                 .clip = INFINITY, .decay = 0.0f};
    if (pre) {
        a.gscale = pre->gscale;
        a.clip = pre->clip;
        a.decay = pre->decay;
    }
    return a;
}

/* The loop head every rule shares: locals for the range and the preprocessing scalars. */
#define RANGE_LOCALS                                                                      \
    float *w = a->w + lo;                                                        \
    const float *g = a->g + lo;                                                  \
    const float gscale = a->gscale, clip = a->clip, decay = a->decay;                     \
    const size_t n = hi - lo;                                                             \
    size_t bad = 0

/* ---- SGD: v = momentum * v - lr * g; w += v, or w += momentum * v - lr * g (Nesterov) ------ */
/* c: lr, momentum; flag: nesterov; s0: velocity (NULL without momentum) */

PC_SIMD_LOOP size_t sgd_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], momentum = a->c[1];
    if (!a->s0) {
        for (size_t i = 0; i < n; i++) {
            const float gi = pre_grad(g[i], gscale, clip);
            const float w0 = w[i], wd = w0 - w0 * decay;
            const float nw = wd - gi * lr;
            const int ok = pc_finite(nw);
            w[i] = ok ? nw : w0;
            bad += !ok;
        }
        return bad;
    }
    float *vel = a->s0 + lo;
    const float nest = a->flag ? 1.0f : 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float gi = pre_grad(g[i], gscale, clip);
        const float w0 = w[i], wd = w0 - w0 * decay;
        const float v = vel[i] * momentum - gi * lr;
        const float step = nest * (v * momentum - gi * lr) + (1.0f - nest) * v;
        const float nw = wd + step;
        const int ok = pc_finite(nw) & pc_finite(v);
        vel[i] = ok ? v : vel[i];
        w[i] = ok ? nw : w0;
        bad += !ok;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(size_t, sgd_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

size_t pc_sgd_update(pc_runtime *rt, float *w, const float *g, float *velocity, size_t size,
                     const pc_opt_pre *pre, float lr, float momentum, int nesterov)
{
    opt_job a = make_job(w, g, momentum != 0.0f ? velocity : NULL, NULL, NULL, pre);
    a.c[0] = lr;
    a.c[1] = momentum;
    a.flag = nesterov;
    return over_ranges(rt, sgd_range, &a, size);
}

/* ---- RMSprop: v = rho v + (1 - rho) g^2; [mg = rho mg + (1 - rho) g]; --------------------------
 * inc = lr g / sqrt(v [- mg^2] + eps); [mom = momentum mom + inc; w -= mom] else w -= inc
 * c: lr, rho, epsilon, momentum; s0: v, s1: mom (or NULL), s2: mg (or NULL) */

PC_SIMD_LOOP size_t rmsprop_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], rho = a->c[1], epsilon = a->c[2], momentum = a->c[3];
    float *v = a->s0 + lo;
    /* Keras' default RMSprop (the loop that vectorises), without the gradient's scaling,
     * clipping and weight decay when there are none */
#define RMSPROP_LOOP(GI, WD)                                                                \
    for (size_t i = 0; i < n; i++) {                                                        \
        const float gi = (GI), w0 = w[i], wd = (WD);                                        \
        const float nv = rho * v[i] + (1.0f - rho) * gi * gi;                               \
        const float nw = wd - lr * gi / sqrtf(nv + epsilon);                                \
        const int ok = pc_finite(nw) & pc_finite(nv);                                       \
        v[i] = ok ? nv : v[i];                                                              \
        w[i] = ok ? nw : w0;                                                                \
        bad += !ok;                                                                         \
    }                                                                                       \
    return bad
    if (!a->s1 && !a->s2 && plain_pre(a)) {
        RMSPROP_LOOP(g[i], w0);
    }
    if (!a->s1 && !a->s2) {
        RMSPROP_LOOP(pre_grad(g[i], gscale, clip), w0 - w0 * decay);
    }
#undef RMSPROP_LOOP
    float *mom = a->s1 ? a->s1 + lo : NULL, *mg = a->s2 ? a->s2 + lo : NULL;
    for (size_t i = 0; i < n; i++) {
        const float gi = pre_grad(g[i], gscale, clip);
        const float w0 = w[i], wd = w0 - w0 * decay;
        const float nv = rho * v[i] + (1.0f - rho) * gi * gi;
        float denom = nv, nmg = 0.0f;
        if (mg) {
            nmg = rho * mg[i] + (1.0f - rho) * gi;
            denom -= nmg * nmg;
        }
        const float inc = lr * gi / sqrtf(denom + epsilon);
        const float nmom = mom ? momentum * mom[i] + inc : inc;
        const float nw = wd - nmom;
        const int ok = pc_finite(nw) & pc_finite(nv) & pc_finite(nmom) & pc_finite(nmg);
        v[i] = ok ? nv : v[i];
        if (mg)
            mg[i] = ok ? nmg : mg[i];
        if (mom)
            mom[i] = ok ? nmom : mom[i];
        w[i] = ok ? nw : w0;
        bad += !ok;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(size_t, rmsprop_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

size_t pc_rmsprop_update(pc_runtime *rt, float *w, const float *g, float *v, size_t size,
                         const pc_opt_pre *pre, float lr, float rho, float epsilon,
                         float momentum, float *mom, int centered, float *mg)
{
    opt_job a = make_job(w, g, v, momentum > 0.0f ? mom : NULL, centered ? mg : NULL, pre);
    a.c[0] = lr;
    a.c[1] = rho;
    a.c[2] = epsilon;
    a.c[3] = momentum;
    return over_ranges(rt, rmsprop_range, &a, size);
}

/* ---- Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); [vh = max(vh, v)]; ---------------------
 * w -= alpha m / (sqrt(v or vh) + eps), alpha = lr sqrt(1 - b2^t) / (1 - b1^t)
 * c: alpha, beta_1, beta_2, epsilon; s0: m, s1: v, s2: vh (amsgrad) or NULL */

PC_SIMD_LOOP size_t adam_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float alpha = a->c[0], beta_1 = a->c[1], beta_2 = a->c[2], epsilon = a->c[3];
    float *m = a->s0 + lo, *v = a->s1 + lo;
    /* Keras' default Adam, without the gradient's scaling, clipping and weight decay when
     * there are none */
#define ADAM_LOOP(GI, WD)                                                                   \
    for (size_t i = 0; i < n; i++) {                                                        \
        const float gi = (GI), w0 = w[i], wd = (WD);                                        \
        const float nm = m[i] + (gi - m[i]) * (1.0f - beta_1);                              \
        const float nv = v[i] + (gi * gi - v[i]) * (1.0f - beta_2);                         \
        const float nw = wd - nm * alpha / (sqrtf(nv) + epsilon);                           \
        const int ok = pc_finite(nw) & pc_finite(nv) & pc_finite(nm);                       \
        m[i] = ok ? nm : m[i];                                                              \
        v[i] = ok ? nv : v[i];                                                              \
        w[i] = ok ? nw : w0;                                                                \
        bad += !ok;                                                                         \
    }                                                                                       \
    return bad
    if (!a->s2 && plain_pre(a)) {
        ADAM_LOOP(g[i], w0);
    }
    if (!a->s2) {
        ADAM_LOOP(pre_grad(g[i], gscale, clip), w0 - w0 * decay);
    }
#undef ADAM_LOOP
    float *vh = a->s2 + lo;
    for (size_t i = 0; i < n; i++) {
        const float gi = pre_grad(g[i], gscale, clip);
        const float w0 = w[i], wd = w0 - w0 * decay;
        const float nm = m[i] + (gi - m[i]) * (1.0f - beta_1);
        const float nv = v[i] + (gi * gi - v[i]) * (1.0f - beta_2);
        const float nvh = max_nan(vh[i], nv);
        const float nw = wd - nm * alpha / (sqrtf(nvh) + epsilon);
        const int ok = pc_finite(nw) & pc_finite(nvh) & pc_finite(nm);
        m[i] = ok ? nm : m[i];
        v[i] = ok ? nv : v[i];
        vh[i] = ok ? nvh : vh[i];
        w[i] = ok ? nw : w0;
        bad += !ok;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(size_t, adam_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

size_t pc_adam_update(pc_runtime *rt, float *w, const float *g, float *m, float *v, float *vhat,
                      size_t size, const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                      float epsilon, long long step)
{
    const double b1t = pow((double)beta_1, (double)step), b2t = pow((double)beta_2, (double)step);
    opt_job a = make_job(w, g, m, v, vhat, pre);
    a.c[0] = (float)(lr * sqrt(1.0 - b2t) / (1.0 - b1t));
    a.c[1] = beta_1;
    a.c[2] = beta_2;
    a.c[3] = epsilon;
    return over_ranges(rt, adam_range, &a, size);
}

/* ---- Adamax: m += (g - m)(1 - b1); u = max(b2 u, |g|); w -= lr m / ((1 - b1^t)(u + eps)) -----
 * c: lr / (1 - b1^t), beta_1, beta_2, epsilon; s0: m, s1: u */

PC_SIMD_LOOP size_t adamax_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float scale = a->c[0], beta_1 = a->c[1], beta_2 = a->c[2], epsilon = a->c[3];
    float *m = a->s0 + lo, *u = a->s1 + lo;
    for (size_t i = 0; i < n; i++) {
        const float gi = pre_grad(g[i], gscale, clip);
        const float w0 = w[i], wd = w0 - w0 * decay;
        const float nm = m[i] + (gi - m[i]) * (1.0f - beta_1);
        const float nu = max_nan(beta_2 * u[i], fabsf(gi));
        const float nw = wd - scale * nm / (nu + epsilon);
        const int ok = pc_finite(nw) & pc_finite(nu) & pc_finite(nm);
        m[i] = ok ? nm : m[i];
        u[i] = ok ? nu : u[i];
        w[i] = ok ? nw : w0;
        bad += !ok;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(size_t, adamax_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

size_t pc_adamax_update(pc_runtime *rt, float *w, const float *g, float *m, float *u, size_t size,
                        const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                        float epsilon, long long step)
{
    opt_job a = make_job(w, g, m, u, NULL, pre);
    a.c[0] = (float)((double)lr / (1.0 - pow((double)beta_1, (double)step)));
    a.c[1] = beta_1;
    a.c[2] = beta_2;
    a.c[3] = epsilon;
    return over_ranges(rt, adamax_range, &a, size);
}

/* ---- Nadam (Keras' schedule of momentum, decay 0.96): with u_t = b1 (1 - 0.5 0.96^t),
 * u_t1 = b1 (1 - 0.5 0.96^(t+1)), P = the product of u_1..u_t (u_product, after this step),
 *   m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
 *   m_hat = u_t1 m / (1 - P u_t1) + (1 - u_t) g / (1 - P); v_hat = v / (1 - b2^t);
 *   w -= lr m_hat / (sqrt(v_hat) + eps)
 * c: u_t1 / (1 - P u_t1), (1 - u_t) / (1 - P), 1 / (1 - b2^t), lr, beta_1, beta_2, epsilon;
 * s0: m, s1: v */

PC_SIMD_LOOP size_t nadam_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float cm = a->c[0], cg = a->c[1], cv = a->c[2], lr = a->c[3];
    const float beta_1 = a->c[4], beta_2 = a->c[5];
    const float epsilon = a->c[6];
    float *m = a->s0 + lo, *v = a->s1 + lo;
    for (size_t i = 0; i < n; i++) {
        const float gi = pre_grad(g[i], gscale, clip);
        const float w0 = w[i], wd = w0 - w0 * decay;
        const float nm = m[i] + (gi - m[i]) * (1.0f - beta_1);
        const float nv = v[i] + (gi * gi - v[i]) * (1.0f - beta_2);
        const float m_hat = cm * nm + cg * gi;
        const float nw = wd - m_hat * lr / (sqrtf(nv * cv) + epsilon);
        const int ok = pc_finite(nw) & pc_finite(nv) & pc_finite(nm);
        m[i] = ok ? nm : m[i];
        v[i] = ok ? nv : v[i];
        w[i] = ok ? nw : w0;
        bad += !ok;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(size_t, nadam_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

size_t pc_nadam_update(pc_runtime *rt, float *w, const float *g, float *m, float *v, size_t size,
                       const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                       float epsilon, long long step, double u_product)
{
    const double b1 = beta_1, t = (double)step;
    const double u_t = b1 * (1.0 - 0.5 * pow(0.96, t));
    const double u_t1 = b1 * (1.0 - 0.5 * pow(0.96, t + 1.0));
    opt_job a = make_job(w, g, m, v, NULL, pre);
    a.c[0] = (float)(u_t1 / (1.0 - u_product * u_t1));
    a.c[1] = (float)((1.0 - u_t) / (1.0 - u_product));
    a.c[2] = (float)(1.0 / (1.0 - pow((double)beta_2, t)));
    a.c[3] = lr;
    a.c[4] = beta_1;
    a.c[5] = beta_2;
    a.c[6] = epsilon;
    return over_ranges(rt, nadam_range, &a, size);
}

/* ---- Adagrad: acc += g^2; w -= lr g / sqrt(acc + eps) -------------------------------------------
 * c: lr, epsilon; s0: acc */

PC_SIMD_LOOP size_t adagrad_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], epsilon = a->c[1];
    float *acc = a->s0 + lo;
    for (size_t i = 0; i < n; i++) {
        const float gi = pre_grad(g[i], gscale, clip);
        const float w0 = w[i], wd = w0 - w0 * decay;
        const float nacc = acc[i] + gi * gi;
        const float nw = wd - lr * gi / sqrtf(nacc + epsilon);
        const int ok = pc_finite(nw) & pc_finite(nacc);
        acc[i] = ok ? nacc : acc[i];
        w[i] = ok ? nw : w0;
        bad += !ok;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(size_t, adagrad_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

size_t pc_adagrad_update(pc_runtime *rt, float *w, const float *g, float *acc, size_t size,
                         const pc_opt_pre *pre, float lr, float epsilon)
{
    opt_job a = make_job(w, g, acc, NULL, NULL, pre);
    a.c[0] = lr;
    a.c[1] = epsilon;
    return over_ranges(rt, adagrad_range, &a, size);
}

/* ---- Adadelta: ag = rho ag + (1 - rho) g^2; d = -sqrt(ad + eps) g / sqrt(ag + eps); -----------
 * ad = rho ad + (1 - rho) d^2; w += lr d.   c: lr, rho, epsilon; s0: ag, s1: ad */

PC_SIMD_LOOP size_t adadelta_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], rho = a->c[1], epsilon = a->c[2];
    float *ag = a->s0 + lo, *ad = a->s1 + lo;
    for (size_t i = 0; i < n; i++) {
        const float gi = pre_grad(g[i], gscale, clip);
        const float w0 = w[i], wd = w0 - w0 * decay;
        const float nag = rho * ag[i] + (1.0f - rho) * (gi * gi);
        const float d = -(sqrtf(ad[i] + epsilon) * gi) / sqrtf(nag + epsilon);
        const float nad = rho * ad[i] + (1.0f - rho) * (d * d);
        const float nw = wd + lr * d;
        const int ok = pc_finite(nw) & pc_finite(nag) & pc_finite(nad);
        ag[i] = ok ? nag : ag[i];
        ad[i] = ok ? nad : ad[i];
        w[i] = ok ? nw : w0;
        bad += !ok;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(size_t, adadelta_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

size_t pc_adadelta_update(pc_runtime *rt, float *w, const float *g, float *acc_grad,
                          float *acc_delta, size_t size, const pc_opt_pre *pre, float lr,
                          float rho, float epsilon)
{
    opt_job a = make_job(w, g, acc_grad, acc_delta, NULL, pre);
    a.c[0] = lr;
    a.c[1] = rho;
    a.c[2] = epsilon;
    return over_ranges(rt, adadelta_range, &a, size);
}

/* ---- Lion: w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g ------------------------------
 * c: lr, beta_1, beta_2; s0: m */

PC_SIMD_LOOP size_t lion_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], beta_1 = a->c[1], beta_2 = a->c[2];
    float *m = a->s0 + lo;
    for (size_t i = 0; i < n; i++) {
        const float gi = pre_grad(g[i], gscale, clip);
        const float w0 = w[i], wd = w0 - w0 * decay;
        const float c = m[i] * beta_1 + gi * (1.0f - beta_1);
        const float sign = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : c * 0.0f);   /* NaN stays */
        const float nw = wd - lr * sign;
        const float nm = m[i] * beta_2 + gi * (1.0f - beta_2);
        const int ok = pc_finite(nw) & pc_finite(nm);
        m[i] = ok ? nm : m[i];
        w[i] = ok ? nw : w0;
        bad += !ok;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(size_t, lion_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

size_t pc_lion_update(pc_runtime *rt, float *w, const float *g, float *m, size_t size,
                      const pc_opt_pre *pre, float lr, float beta_1, float beta_2)
{
    opt_job a = make_job(w, g, m, NULL, NULL, pre);
    a.c[0] = lr;
    a.c[1] = beta_1;
    a.c[2] = beta_2;
    return over_ranges(rt, lion_range, &a, size);
}

/* ---- moving average of the weights: avg = momentum avg + (1 - momentum) w --------------------
 * (the "g" of the job is the weights, read only; s0 is the average) */

PC_SIMD_LOOP size_t ema_range_body(const opt_job *a, size_t lo, size_t hi)
{
    float *avg = a->s0 + lo;
    const float *w = a->g + lo;
    const float momentum = a->c[0];
    const size_t n = hi - lo;
    for (size_t i = 0; i < n; i++)
        avg[i] = momentum * avg[i] + (1.0f - momentum) * w[i];
    return 0;
}
PC_SIMD_VARIANTS_RET(size_t, ema_range, (const opt_job *a, size_t lo, size_t hi), (a, lo, hi))

void pc_ema_update(pc_runtime *rt, float *average, const float *w, size_t size, float momentum)
{
    opt_job a = make_job(NULL, w, average, NULL, NULL, NULL);
    a.c[0] = momentum;
    over_ranges(rt, ema_range, &a, size);
}

/* ---- gradient accumulation: acc = (g + acc) / divisor --------------------------------------- */

PC_SIMD_LOOP size_t accumulate_range_body(const opt_job *a, size_t lo, size_t hi)
{
    float *acc = a->s0 + lo;
    const float *g = a->g + lo;
    const float divisor = a->c[0];
    const size_t n = hi - lo;
    for (size_t i = 0; i < n; i++)
        acc[i] = (g[i] + acc[i]) / divisor;
    return 0;
}
PC_SIMD_VARIANTS_RET(size_t, accumulate_range, (const opt_job *a, size_t lo, size_t hi),
                     (a, lo, hi))

void pc_grad_accumulate(pc_runtime *rt, float *acc, const float *g, size_t size, float divisor)
{
    opt_job a = make_job(NULL, g, acc, NULL, NULL, NULL);
    a.c[0] = divisor;
    over_ranges(rt, accumulate_range, &a, size);
}

/* ---- sum of squares, for clipping by norm ------------------------------------------------------
 * Blocks of at least SUM_BLOCK floats (at most MAX_RANGES of them), their boundaries set by the
 * size alone; each block sums in 8 double lanes (x_i^2 is exact in double), the lanes and then
 * the blocks added in order: the same bits for any thread count. */

#define SUM_BLOCK 32768
#define SUM_LANES 8

typedef struct {
    const float *x;
    size_t size, block;
    pc_isa isa;
    double part[MAX_RANGES];
} sumsq_job;

PC_SIMD_LOOP double sum_squares_range_body(const float *x, size_t n)
{
    double acc[SUM_LANES] = {0};
    size_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++)
            acc[l] += (double)x[i + l] * (double)x[i + l];
    for (int l = 0; i < n; i++, l++)
        acc[l] += (double)x[i] * (double)x[i];
    double s = 0.0;
    for (int l = 0; l < SUM_LANES; l++)
        s += acc[l];
    return s;
}
PC_SIMD_VARIANTS_RET(double, sum_squares_range, (const float *x, size_t n), (x, n))

static void sumsq_task(void *ctx, int task, int thread)
{
    (void)thread;
    sumsq_job *j = ctx;
    const size_t lo = (size_t)task * j->block;
    const size_t hi = lo + j->block < j->size ? lo + j->block : j->size;
    j->part[task] = sum_squares_range(j->isa, j->x + lo, hi - lo);
}

double pc_sum_squares(pc_runtime *rt, const float *x, size_t size)
{
    size_t tasks = (size + SUM_BLOCK - 1) / SUM_BLOCK;
    if (tasks > MAX_RANGES)
        tasks = MAX_RANGES;
    if (tasks <= 1)
        return sum_squares_range(pc_loop_isa(rt), x, size);
    sumsq_job j = {.x = x, .size = size, .isa = pc_loop_isa(rt)};
    j.block = ((size + tasks - 1) / tasks + 15) / 16 * 16;
    tasks = (size + j.block - 1) / j.block;
    pc_parallel(rt, (int)tasks, sumsq_task, &j);
    double s = 0.0;
    for (size_t t = 0; t < tasks; t++)
        s += j.part[t];
    return s;
}
