/* optimizers.c - Keras' update rules (keras/src/optimizers: sgd.py, rmsprop.py, adam.py),
 * applied in place to one variable of `size` floats. */
#include "pycnn.h"

#include <math.h>

void pc_sgd_update(float *w, const float *g, float *velocity, size_t size, float lr,
                   float momentum, int nesterov)
{
    if (!velocity || momentum == 0.0f) {
        for (size_t i = 0; i < size; i++)
            w[i] -= lr * g[i];
        return;
    }
    for (size_t i = 0; i < size; i++) {
        const float v = momentum * velocity[i] - lr * g[i];
        velocity[i] = v;
        w[i] += nesterov ? momentum * v - lr * g[i] : v;
    }
}

void pc_rmsprop_update(float *w, const float *g, float *v, size_t size, float lr, float rho,
                       float epsilon, float momentum, float *mom, int centered, float *mg)
{
    for (size_t i = 0; i < size; i++) {
        const float gi = g[i];
        v[i] = rho * v[i] + (1.0f - rho) * gi * gi;
        float denom = v[i];
        if (centered && mg) {
            mg[i] = rho * mg[i] + (1.0f - rho) * gi;
            denom -= mg[i] * mg[i];
        }
        const float inc = lr * gi / sqrtf(denom + epsilon);
        if (momentum > 0.0f && mom) {
            mom[i] = momentum * mom[i] + inc;
            w[i] -= mom[i];
        } else {
            w[i] -= inc;
        }
    }
}

void pc_adam_update(float *w, const float *g, float *m, float *v, size_t size, float lr,
                    float beta_1, float beta_2, float epsilon, long long step)
{
    const double b1t = pow((double)beta_1, (double)step), b2t = pow((double)beta_2, (double)step);
    const float alpha = (float)(lr * sqrt(1.0 - b2t) / (1.0 - b1t));
    for (size_t i = 0; i < size; i++) {
        const float gi = g[i];
        m[i] += (gi - m[i]) * (1.0f - beta_1);
        v[i] += (gi * gi - v[i]) * (1.0f - beta_2);
        w[i] -= alpha * m[i] / (sqrtf(v[i]) + epsilon);
    }
}
