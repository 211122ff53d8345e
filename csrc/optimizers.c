/* optimizers.c - Keras' update rules (keras/src/optimizers: sgd.py, rmsprop.py, adam.py),
 * applied in place to one variable of `size` floats. A weight whose new value would not be finite
 * (a learning rate far too high) keeps its old value and state; each update returns how many
 * such weights it met (0 normally), so training can stop with usable weights. */
#include "pycnn.h"

#include <math.h>

/* |v| <= FLT_MAX: false for inf and NaN; a plain compare, so the loops vectorise */
static inline int pc_finite(float v) { return fabsf(v) <= 3.40282347e38f; }

PC_MULTIVERSION
size_t pc_sgd_update(float *w, const float *g, float *velocity, size_t size, float lr,
                   float momentum, int nesterov)
{
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
    const float nest = nesterov ? 1.0f : 0.0f;
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

PC_MULTIVERSION
size_t pc_rmsprop_update(float *w, const float *g, float *v, size_t size, float lr, float rho,
                       float epsilon, float momentum, float *mom, int centered, float *mg)
{
    size_t bad = 0;
    const int use_mom = momentum > 0.0f && mom, use_mg = centered && mg;
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

PC_MULTIVERSION
size_t pc_adam_update(float *w, const float *g, float *m, float *v, size_t size, float lr,
                    float beta_1, float beta_2, float epsilon, long long step)
{
    const double b1t = pow((double)beta_1, (double)step), b2t = pow((double)beta_2, (double)step);
    const float alpha = (float)(lr * sqrt(1.0 - b2t) / (1.0 - b1t));
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
