/* optimizers.c - Keras' update rules (keras/src/optimizers: sgd.py, rmsprop.py, adam.py),
 * applied in place to one variable of `size` floats. A weight whose new value would not be finite
 * (a learning rate far too high) keeps its old value and state; each update returns how many
 * such weights it met (0 normally), so training can stop with usable weights. */
#include "pycnn.h"

#include <math.h>

size_t pc_sgd_update(float *w, const float *g, float *velocity, size_t size, float lr,
                   float momentum, int nesterov)
{
    size_t bad = 0;
    if (!velocity || momentum == 0.0f) {
        for (size_t i = 0; i < size; i++) {
            const float nw = w[i] - lr * g[i];
            if (isfinite(nw))
                w[i] = nw;
            else
                bad++;
        }
        return bad;
    }
    for (size_t i = 0; i < size; i++) {
        const float v = momentum * velocity[i] - lr * g[i];
        const float nw = w[i] + (nesterov ? momentum * v - lr * g[i] : v);
        if (isfinite(nw) && isfinite(v)) {
            velocity[i] = v;
            w[i] = nw;
        } else {
            bad++;
        }
    }
    return bad;
}

size_t pc_rmsprop_update(float *w, const float *g, float *v, size_t size, float lr, float rho,
                       float epsilon, float momentum, float *mom, int centered, float *mg)
{
    size_t bad = 0;
    for (size_t i = 0; i < size; i++) {
        const float gi = g[i];
        const float nv = rho * v[i] + (1.0f - rho) * gi * gi;
        float denom = nv, nmg = 0.0f;
        if (centered && mg) {
            nmg = rho * mg[i] + (1.0f - rho) * gi;
            denom -= nmg * nmg;
        }
        const float inc = lr * gi / sqrtf(denom + epsilon);
        const float nmom = (momentum > 0.0f && mom) ? momentum * mom[i] + inc : inc;
        const float nw = w[i] - nmom;
        if (!isfinite(nw) || !isfinite(nv)) {
            bad++;
            continue;
        }
        v[i] = nv;
        if (centered && mg)
            mg[i] = nmg;
        if (momentum > 0.0f && mom)
            mom[i] = nmom;
        w[i] = nw;
    }
    return bad;
}

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
        if (!isfinite(nw) || !isfinite(nv)) {
            bad++;
            continue;
        }
        m[i] = nm;
        v[i] = nv;
        w[i] = nw;
    }
    return bad;
}
