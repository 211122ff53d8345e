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
                        const pc_opt_pre *pre, const float *c, size_t nc)
{
    opt_job a = {.w = w, .g = g, .s0 = s0, .s1 = s1, .s2 = s2, .gscale = 1.0f,
                 .clip = INFINITY, .decay = 0.0f};
    if (pre) {
        a.gscale = pre->gscale;
        a.clip = pre->clip;
        a.decay = pre->decay;
    }
    for (size_t k = 0; k < nc && k < sizeof a.c / sizeof a.c[0]; k++)
        a.c[k] = c[k];
    return a;
}

/* The job of an update: the arrays, the preprocessing (NULL: none), then the rule's scalars
 * (c[0], c[1], ...: at most 8, their meaning the rule's). */
#define MAKE_JOB(w, g, s0, s1, s2, pre, ...)                                                \
    make_job(w, g, s0, s1, s2, pre, (const float[]){__VA_ARGS__},                           \
             sizeof((const float[]){__VA_ARGS__}) / sizeof(float))

/* The head every rule's range shares: the range's weights and gradient, the preprocessing
 * scalars, and the count of weights kept. */
#define RANGE_LOCALS                                                                        \
    float *w = a->w + lo;                                                                   \
    const float *g = a->g + lo;                                                             \
    const float gscale = a->gscale, clip = a->clip, decay = a->decay;                       \
    const size_t n = hi - lo;                                                               \
    size_t bad = 0

/* The loop every rule shares, over the range's n weights (after RANGE_LOCALS and the rule's
 * own locals, hoisted so that the loop vectorises): weight i's gradient as the rule sees it (gi)
 * and its decayed value (wd), then the rule's STEP(i, gi, wd, &nw, ...) computes the new weight
 * nw and the rule's new state, stores the state when the state and nw are finite, and returns
 * whether they are. The weight then takes nw, or keeps its value, which `bad` counts. With
 * AS_IS (a constant 1) the gradient goes to the rule as it is and nothing decays: the loop of
 * Keras' defaults (plain_pre), without those operations. Returns bad. */
#define EACH_WEIGHT(AS_IS, STEP, ...)                                                       \
    do {                                                                                    \
        for (size_t i = 0; i < n; i++) {                                                    \
            const float gi = (AS_IS) ? g[i] : pre_grad(g[i], gscale, clip);                 \
            const float w0 = w[i], wd = (AS_IS) ? w0 : w0 - w0 * decay;                     \
            float nw;                                                                       \
            const int ok = STEP(i, gi, wd, &nw, __VA_ARGS__);                               \
            w[i] = ok ? nw : w0;                                                            \
            bad += !ok;                                                                     \
        }                                                                                   \
        return bad;                                                                         \
    } while (0)

/* The loops of a rule with optional state (EXTENDED: whether the update has it), STEP given
 * the arguments DEFAULT without it and EXTENDED_ARGS with it: Keras' default rule without the
 * gradient's scaling, clipping and weight decay when there are none, then with them, else the
 * rule with its optional state. */
#define DEFAULT_OR_EXTENDED(EXTENDED, STEP, DEFAULT, EXTENDED_ARGS)                          \
    do {                                                                                    \
        if (!(EXTENDED) && plain_pre(a))                                                    \
            EACH_WEIGHT(1, STEP, PC_UNPAREN DEFAULT);                                       \
        if (!(EXTENDED))                                                                    \
            EACH_WEIGHT(0, STEP, PC_UNPAREN DEFAULT);                                       \
        EACH_WEIGHT(0, STEP, PC_UNPAREN EXTENDED_ARGS);                                     \
    } while (0)

/* The update of one variable's range by a rule: NAME_range(isa, a, lo, hi) on SIMD path isa. */
#define RULE_VARIANTS(NAME)                                                                 \
    PC_SIMD_VARIANTS_RET(size_t, NAME##_range, (const opt_job *a, size_t lo, size_t hi),    \
                         (a, lo, hi))

/* Adam's and Nadam's moments of weight i: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2) */
PC_SIMD_LOOP float first_moment(const float *m, size_t i, float gi, float beta_1)
{
    return m[i] + (gi - m[i]) * (1.0f - beta_1);
}

PC_SIMD_LOOP float second_moment(const float *v, size_t i, float gi, float beta_2)
{
    return v[i] + (gi * gi - v[i]) * (1.0f - beta_2);
}

/* x[i] takes nx when ok, else keeps its value */
PC_SIMD_LOOP void store_if(int ok, float *x, size_t i, float nx)
{
    x[i] = ok ? nx : x[i];
}

/* ---- SGD: v = momentum * v - lr * g; w += v, or w += momentum * v - lr * g (Nesterov) ------ */
/* c: lr, momentum, nesterov (1 or 0); s0: velocity (NULL without momentum) */

PC_SIMD_LOOP int sgd_step(size_t i, float gi, float wd, float *nw, int has_vel, float *vel,
                          float lr, float momentum, float nest)
{
    if (!has_vel) {
        *nw = wd - gi * lr;
        return pc_finite(*nw);
    }
    const float v = vel[i] * momentum - gi * lr;
    const float step = nest * (v * momentum - gi * lr) + (1.0f - nest) * v;
    *nw = wd + step;
    const int ok = pc_finite(*nw) & pc_finite(v);
    store_if(ok, vel, i, v);
    return ok;
}

PC_SIMD_LOOP size_t sgd_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], momentum = a->c[1];
    if (!a->s0)
        EACH_WEIGHT(0, sgd_step, 0, NULL, lr, momentum, 0.0f);
    float *vel = a->s0 + lo;
    const float nest = a->c[2];
    EACH_WEIGHT(0, sgd_step, 1, vel, lr, momentum, nest);
}
RULE_VARIANTS(sgd)

size_t pc_sgd_update(pc_runtime *rt, float *w, const float *g, float *velocity, size_t size,
                     const pc_opt_pre *pre, float lr, float momentum, int nesterov)
{
    const opt_job a = MAKE_JOB(w, g, momentum != 0.0f ? velocity : NULL, NULL, NULL, pre,
                               lr, momentum, nesterov ? 1.0f : 0.0f);
    return over_ranges(rt, sgd_range, &a, size);
}

/* ---- RMSprop: v = rho v + (1 - rho) g^2; [mg = rho mg + (1 - rho) g]; --------------------------
 * inc = lr g / sqrt(v [- mg^2] + eps); [mom = momentum mom + inc; w -= mom] else w -= inc
 * c: lr, rho, epsilon, momentum; s0: v, s1: mom (or NULL), s2: mg (or NULL) */

PC_SIMD_LOOP int rmsprop_step(size_t i, float gi, float wd, float *nw, float *v, int extras,
                              float *mom, float *mg, float lr, float rho, float epsilon,
                              float momentum)
{
    const float nv = rho * v[i] + (1.0f - rho) * gi * gi;
    float denom = nv, nmg = 0.0f;
    if (mg) {
        nmg = rho * mg[i] + (1.0f - rho) * gi;
        denom -= nmg * nmg;
    }
    const float inc = lr * gi / sqrtf(denom + epsilon);
    const float nmom = mom ? momentum * mom[i] + inc : inc;
    *nw = wd - nmom;
    /* without mom and mg (extras 0), nmom (= inc) is finite wherever nw is, and nmg is 0 */
    int ok = pc_finite(*nw) & pc_finite(nv);
    if (extras)
        ok &= pc_finite(nmom) & pc_finite(nmg);
    store_if(ok, v, i, nv);
    if (mg)
        store_if(ok, mg, i, nmg);
    if (mom)
        store_if(ok, mom, i, nmom);
    return ok;
}

PC_SIMD_LOOP size_t rmsprop_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], rho = a->c[1], epsilon = a->c[2], momentum = a->c[3];
    float *v = a->s0 + lo, *mom = a->s1 ? a->s1 + lo : NULL, *mg = a->s2 ? a->s2 + lo : NULL;
    DEFAULT_OR_EXTENDED(mom || mg, rmsprop_step,
                        (v, 0, NULL, NULL, lr, rho, epsilon, momentum),
                        (v, 1, mom, mg, lr, rho, epsilon, momentum));
}
RULE_VARIANTS(rmsprop)

size_t pc_rmsprop_update(pc_runtime *rt, float *w, const float *g, float *v, size_t size,
                         const pc_opt_pre *pre, float lr, float rho, float epsilon,
                         float momentum, float *mom, int centered, float *mg)
{
    const opt_job a = MAKE_JOB(w, g, v, momentum > 0.0f ? mom : NULL, centered ? mg : NULL, pre,
                               lr, rho, epsilon, momentum);
    return over_ranges(rt, rmsprop_range, &a, size);
}

/* ---- Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); [vh = max(vh, v)]; ---------------------
 * w -= alpha m / (sqrt(v or vh) + eps), alpha = lr sqrt(1 - b2^t) / (1 - b1^t)
 * c: alpha, beta_1, beta_2, epsilon; s0: m, s1: v, s2: vh (amsgrad) or NULL */

PC_SIMD_LOOP int adam_step(size_t i, float gi, float wd, float *nw, float *m, float *v,
                           int amsgrad, float *vh, float alpha, float beta_1, float beta_2,
                           float epsilon)
{
    const float nm = first_moment(m, i, gi, beta_1), nv = second_moment(v, i, gi, beta_2);
    const float nvh = amsgrad ? max_nan(vh[i], nv) : nv;
    *nw = wd - nm * alpha / (sqrtf(nvh) + epsilon);
    const int ok = pc_finite(*nw) & pc_finite(nvh) & pc_finite(nm);
    store_if(ok, m, i, nm);
    store_if(ok, v, i, nv);
    if (amsgrad)
        store_if(ok, vh, i, nvh);
    return ok;
}

PC_SIMD_LOOP size_t adam_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float alpha = a->c[0], beta_1 = a->c[1], beta_2 = a->c[2], epsilon = a->c[3];
    float *m = a->s0 + lo, *v = a->s1 + lo, *vh = a->s2 ? a->s2 + lo : NULL;
    DEFAULT_OR_EXTENDED(vh, adam_step, (m, v, 0, NULL, alpha, beta_1, beta_2, epsilon),
                        (m, v, 1, vh, alpha, beta_1, beta_2, epsilon));
}
RULE_VARIANTS(adam)

size_t pc_adam_update(pc_runtime *rt, float *w, const float *g, float *m, float *v, float *vhat,
                      size_t size, const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                      float epsilon, long long step)
{
    const double b1t = pow((double)beta_1, (double)step), b2t = pow((double)beta_2, (double)step);
    const float alpha = (float)(lr * sqrt(1.0 - b2t) / (1.0 - b1t));
    const opt_job a = MAKE_JOB(w, g, m, v, vhat, pre, alpha, beta_1, beta_2, epsilon);
    return over_ranges(rt, adam_range, &a, size);
}

/* ---- Adamax: m += (g - m)(1 - b1); u = max(b2 u, |g|); w -= lr m / ((1 - b1^t)(u + eps)) -----
 * c: lr / (1 - b1^t), beta_1, beta_2, epsilon; s0: m, s1: u */

PC_SIMD_LOOP int adamax_step(size_t i, float gi, float wd, float *nw, float *m, float *u,
                             float scale, float beta_1, float beta_2, float epsilon)
{
    const float nm = first_moment(m, i, gi, beta_1);
    const float nu = max_nan(beta_2 * u[i], fabsf(gi));
    *nw = wd - scale * nm / (nu + epsilon);
    const int ok = pc_finite(*nw) & pc_finite(nu) & pc_finite(nm);
    store_if(ok, m, i, nm);
    store_if(ok, u, i, nu);
    return ok;
}

PC_SIMD_LOOP size_t adamax_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float scale = a->c[0], beta_1 = a->c[1], beta_2 = a->c[2], epsilon = a->c[3];
    float *m = a->s0 + lo, *u = a->s1 + lo;
    EACH_WEIGHT(0, adamax_step, m, u, scale, beta_1, beta_2, epsilon);
}
RULE_VARIANTS(adamax)

size_t pc_adamax_update(pc_runtime *rt, float *w, const float *g, float *m, float *u, size_t size,
                        const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                        float epsilon, long long step)
{
    const float scale = (float)((double)lr / (1.0 - pow((double)beta_1, (double)step)));
    const opt_job a = MAKE_JOB(w, g, m, u, NULL, pre, scale, beta_1, beta_2, epsilon);
    return over_ranges(rt, adamax_range, &a, size);
}

/* ---- Nadam (Keras' schedule of momentum, decay 0.96): with u_t = b1 (1 - 0.5 0.96^t),
 * u_t1 = b1 (1 - 0.5 0.96^(t+1)), P = the product of u_1..u_t (u_product, after this step),
 *   m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
 *   m_hat = u_t1 m / (1 - P u_t1) + (1 - u_t) g / (1 - P); v_hat = v / (1 - b2^t);
 *   w -= lr m_hat / (sqrt(v_hat) + eps)
 * c: u_t1 / (1 - P u_t1), (1 - u_t) / (1 - P), 1 / (1 - b2^t), lr, beta_1, beta_2, epsilon;
 * s0: m, s1: v */

PC_SIMD_LOOP int nadam_step(size_t i, float gi, float wd, float *nw, float *m, float *v,
                            float cm, float cg, float cv, float lr, float beta_1, float beta_2,
                            float epsilon)
{
    const float nm = first_moment(m, i, gi, beta_1), nv = second_moment(v, i, gi, beta_2);
    const float m_hat = cm * nm + cg * gi;
    *nw = wd - m_hat * lr / (sqrtf(nv * cv) + epsilon);
    const int ok = pc_finite(*nw) & pc_finite(nv) & pc_finite(nm);
    store_if(ok, m, i, nm);
    store_if(ok, v, i, nv);
    return ok;
}

PC_SIMD_LOOP size_t nadam_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float cm = a->c[0], cg = a->c[1], cv = a->c[2], lr = a->c[3];
    const float beta_1 = a->c[4], beta_2 = a->c[5], epsilon = a->c[6];
    float *m = a->s0 + lo, *v = a->s1 + lo;
    EACH_WEIGHT(0, nadam_step, m, v, cm, cg, cv, lr, beta_1, beta_2, epsilon);
}
RULE_VARIANTS(nadam)

size_t pc_nadam_update(pc_runtime *rt, float *w, const float *g, float *m, float *v, size_t size,
                       const pc_opt_pre *pre, float lr, float beta_1, float beta_2,
                       float epsilon, long long step, double u_product)
{
    const double b1 = beta_1, t = (double)step;
    const double u_t = b1 * (1.0 - 0.5 * pow(0.96, t));
    const double u_t1 = b1 * (1.0 - 0.5 * pow(0.96, t + 1.0));
    const float cm = (float)(u_t1 / (1.0 - u_product * u_t1));
    const float cg = (float)((1.0 - u_t) / (1.0 - u_product));
    const float cv = (float)(1.0 / (1.0 - pow((double)beta_2, t)));
    const opt_job a = MAKE_JOB(w, g, m, v, NULL, pre, cm, cg, cv, lr, beta_1, beta_2, epsilon);
    return over_ranges(rt, nadam_range, &a, size);
}

/* ---- Adagrad: acc += g^2; w -= lr g / sqrt(acc + eps) -------------------------------------------
 * c: lr, epsilon; s0: acc */

PC_SIMD_LOOP int adagrad_step(size_t i, float gi, float wd, float *nw, float *acc, float lr,
                              float epsilon)
{
    const float nacc = acc[i] + gi * gi;
    *nw = wd - lr * gi / sqrtf(nacc + epsilon);
    const int ok = pc_finite(*nw) & pc_finite(nacc);
    store_if(ok, acc, i, nacc);
    return ok;
}

PC_SIMD_LOOP size_t adagrad_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], epsilon = a->c[1];
    float *acc = a->s0 + lo;
    EACH_WEIGHT(0, adagrad_step, acc, lr, epsilon);
}
RULE_VARIANTS(adagrad)

size_t pc_adagrad_update(pc_runtime *rt, float *w, const float *g, float *acc, size_t size,
                         const pc_opt_pre *pre, float lr, float epsilon)
{
    const opt_job a = MAKE_JOB(w, g, acc, NULL, NULL, pre, lr, epsilon);
    return over_ranges(rt, adagrad_range, &a, size);
}

/* ---- Adadelta: ag = rho ag + (1 - rho) g^2; d = -sqrt(ad + eps) g / sqrt(ag + eps); -----------
 * ad = rho ad + (1 - rho) d^2; w += lr d.   c: lr, rho, epsilon; s0: ag, s1: ad */

PC_SIMD_LOOP int adadelta_step(size_t i, float gi, float wd, float *nw, float *ag, float *ad,
                               float lr, float rho, float epsilon)
{
    const float nag = rho * ag[i] + (1.0f - rho) * (gi * gi);
    const float d = -(sqrtf(ad[i] + epsilon) * gi) / sqrtf(nag + epsilon);
    const float nad = rho * ad[i] + (1.0f - rho) * (d * d);
    *nw = wd + lr * d;
    const int ok = pc_finite(*nw) & pc_finite(nag) & pc_finite(nad);
    store_if(ok, ag, i, nag);
    store_if(ok, ad, i, nad);
    return ok;
}

PC_SIMD_LOOP size_t adadelta_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], rho = a->c[1], epsilon = a->c[2];
    float *ag = a->s0 + lo, *ad = a->s1 + lo;
    EACH_WEIGHT(0, adadelta_step, ag, ad, lr, rho, epsilon);
}
RULE_VARIANTS(adadelta)

size_t pc_adadelta_update(pc_runtime *rt, float *w, const float *g, float *acc_grad,
                          float *acc_delta, size_t size, const pc_opt_pre *pre, float lr,
                          float rho, float epsilon)
{
    const opt_job a = MAKE_JOB(w, g, acc_grad, acc_delta, NULL, pre, lr, rho, epsilon);
    return over_ranges(rt, adadelta_range, &a, size);
}

/* ---- Lion: w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g ------------------------------
 * c: lr, beta_1, beta_2; s0: m */

PC_SIMD_LOOP int lion_step(size_t i, float gi, float wd, float *nw, float *m, float lr,
                           float beta_1, float beta_2)
{
    const float c = m[i] * beta_1 + gi * (1.0f - beta_1);
    const float sign = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : c * 0.0f);   /* NaN stays */
    *nw = wd - lr * sign;
    const float nm = m[i] * beta_2 + gi * (1.0f - beta_2);
    const int ok = pc_finite(*nw) & pc_finite(nm);
    store_if(ok, m, i, nm);
    return ok;
}

PC_SIMD_LOOP size_t lion_range_body(const opt_job *a, size_t lo, size_t hi)
{
    RANGE_LOCALS;
    const float lr = a->c[0], beta_1 = a->c[1], beta_2 = a->c[2];
    float *m = a->s0 + lo;
    EACH_WEIGHT(0, lion_step, m, lr, beta_1, beta_2);
}
RULE_VARIANTS(lion)

size_t pc_lion_update(pc_runtime *rt, float *w, const float *g, float *m, size_t size,
                      const pc_opt_pre *pre, float lr, float beta_1, float beta_2)
{
    const opt_job a = MAKE_JOB(w, g, m, NULL, NULL, pre, lr, beta_1, beta_2);
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
    const opt_job a = MAKE_JOB(NULL, w, average, NULL, NULL, NULL, momentum);
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
    const opt_job a = MAKE_JOB(NULL, g, acc, NULL, NULL, NULL, divisor);
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
