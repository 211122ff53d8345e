/* losses.c - crossentropy losses, each returning the batch mean and its gradient. Sums run over
 * rows in order in double precision: deterministic and accurate. */
#include "pycnn.h"

#include <math.h>

#define EPS 1e-7f

static float clipf(float v) { return v < EPS ? EPS : (v > 1.0f - EPS ? 1.0f - EPS : v); }

int pc_softmax_xent_sparse(const float *logits, const int64_t *labels, int n, int classes,
                           float *probs, float *dlogits, double *loss)
{
    double total = 0.0;
    const float inv_n = 1.0f / (float)n;
    for (int r = 0; r < n; r++) {
        const float *z = logits + (size_t)r * classes;
        float *p = probs + (size_t)r * classes;
        const int64_t y = labels[r];
        if (y < 0 || y >= classes)
            return PC_EINVAL;
        const double lse = pc_softmax_row(z, p, (size_t)classes);
        total += lse - (double)z[y];
        if (dlogits) {
            float *d = dlogits + (size_t)r * classes;
            for (int c = 0; c < classes; c++)
                d[c] = (p[c] - (c == y ? 1.0f : 0.0f)) * inv_n;
        }
    }
    *loss = total / n;
    return PC_OK;
}

int pc_xent_sparse(const float *probs, const int64_t *labels, int n, int classes,
                   float *dprobs, double *loss)
{
    double total = 0.0;
    const float inv_n = 1.0f / (float)n;
    for (int r = 0; r < n; r++) {
        const float *p = probs + (size_t)r * classes;
        const int64_t y = labels[r];
        if (y < 0 || y >= classes)
            return PC_EINVAL;
        const float py = clipf(p[y]);
        total += -log((double)py);
        if (dprobs) {
            float *d = dprobs + (size_t)r * classes;
            for (int c = 0; c < classes; c++)
                d[c] = 0.0f;
            if (p[y] > EPS && p[y] < 1.0f - EPS)
                d[y] = -inv_n / p[y];
        }
    }
    *loss = total / n;
    return PC_OK;
}

int pc_softmax_xent(const float *logits, const float *targets, int n, int classes,
                    float *probs, float *dlogits, double *loss)
{
    double total = 0.0;
    const float inv_n = 1.0f / (float)n;
    for (int r = 0; r < n; r++) {
        const float *z = logits + (size_t)r * classes;
        const float *t = targets + (size_t)r * classes;
        float *p = probs + (size_t)r * classes;
        const double lse = pc_softmax_row(z, p, (size_t)classes);
        double tsum = 0.0;
        for (int c = 0; c < classes; c++) {
            total += (double)t[c] * (lse - z[c]);
            tsum += t[c];
        }
        if (dlogits) {
            float *d = dlogits + (size_t)r * classes;
            for (int c = 0; c < classes; c++)
                d[c] = (p[c] * (float)tsum - t[c]) * inv_n;
        }
    }
    *loss = total / n;
    return PC_OK;
}

int pc_xent(const float *probs, const float *targets, int n, int classes, float *dprobs,
            double *loss)
{
    double total = 0.0;
    const float inv_n = 1.0f / (float)n;
    for (int r = 0; r < n; r++) {
        const float *p = probs + (size_t)r * classes;
        const float *t = targets + (size_t)r * classes;
        double s = 0.0;
        for (int c = 0; c < classes; c++)
            s += p[c];
        if (!(s > 0.0) || !isfinite(s)) {   /* Keras divides by the sum: NaN, as here */
            total = NAN;
            if (dprobs)
                for (int c = 0; c < classes; c++)
                    dprobs[(size_t)r * classes + c] = 0.0f;
            continue;
        }
        double gq = 0.0;   /* sum_c g_c q_c with g_c = dL/dq_c */
        for (int c = 0; c < classes; c++) {
            const float q = (float)(p[c] / s);
            total += -(double)t[c] * log((double)clipf(q));
            if (q > EPS && q < 1.0f - EPS)
                gq += -(double)t[c];
        }
        if (dprobs) {
            float *d = dprobs + (size_t)r * classes;
            for (int c = 0; c < classes; c++) {
                const float q = (float)(p[c] / s);
                const double g = (q > EPS && q < 1.0f - EPS) ? -(double)t[c] / q : 0.0;
                d[c] = (float)((g - gq) / s) * inv_n;
            }
        }
    }
    *loss = total / n;
    return PC_OK;
}
