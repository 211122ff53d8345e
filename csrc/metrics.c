/* metrics.c - the per-batch counting of Keras' confusion metrics: true/false positives and
 * negatives over thresholds (AUC, Precision, Recall, TruePositives, ...) and the confusion
 * matrix of the IoU metrics. Sums run in a fixed order in double. */
#include "pycnn.h"

#include <math.h>
#include <string.h>

enum { TP = 0, FP = 1, TN = 2, FN = 3 };

void pc_confusion_thresholds(const float *pred, const float *truth, const float *w, size_t n,
                             size_t labels, const float *thr, size_t nthr, int evenly,
                             int with_epsilon, double *counts)
{
    const size_t plane = labels * nthr;
    memset(counts, 0, 4 * plane * sizeof(double));
    for (size_t l = 0; l < labels; l++) {
        double *tp = counts + TP * plane + l * nthr, *fp = counts + FP * plane + l * nthr;
        double *tn = counts + TN * plane + l * nthr, *fn = counts + FN * plane + l * nthr;
        double total_pos = 0.0, total_neg = 0.0;
        if (evenly) {
            /* bucket histograms, then reversed cumulative sums (Keras' optimized path) */
            const float scale = (float)(nthr - 1);
            for (size_t i = 0; i < n; i++) {
                const size_t k = i * labels + l;
                const double wt = w ? (double)w[k] : 1.0;
                const int pos = truth[k] != 0.0f;
                float p = pred[k];
                p = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);   /* NaN stays NaN: dropped */
                float b = ceilf(p * scale) - 1.0f;
                if (with_epsilon && b < 0.0f)
                    b = 0.0f;
                if (pos)
                    total_pos += wt;
                else
                    total_neg += wt;
                if (!(b >= 0.0f) || b >= (float)nthr)
                    continue;
                (pos ? tp : fp)[(size_t)b] += wt;
            }
            for (size_t t = nthr - 1; t-- > 0;) {
                tp[t] += tp[t + 1];
                fp[t] += fp[t + 1];
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                const size_t k = i * labels + l;
                const double wt = w ? (double)w[k] : 1.0;
                const int pos = truth[k] != 0.0f;
                const float p = pred[k];
                if (pos)
                    total_pos += wt;
                else
                    total_neg += wt;
                double *dst = pos ? tp : fp;
                for (size_t t = 0; t < nthr; t++)
                    if (p > thr[t])
                        dst[t] += wt;
            }
        }
        for (size_t t = 0; t < nthr; t++) {
            tn[t] = total_neg - fp[t];
            fn[t] = total_pos - tp[t];
        }
    }
}

void pc_confusion_matrix(const int64_t *truth, const int64_t *pred, const float *w, size_t n,
                         size_t k, double *cm)
{
    for (size_t i = 0; i < n; i++) {
        const int64_t t = truth[i], p = pred[i];
        if (t < 0 || p < 0 || (uint64_t)t >= k || (uint64_t)p >= k)
            continue;
        cm[(size_t)t * k + (size_t)p] += w ? (double)w[i] : 1.0;
    }
}
