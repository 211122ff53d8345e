/* losses.c - Keras' losses: each row's loss and the gradient of the weighted sum of the rows.
 *
 * A "row" is one vector of the last axis (a sample of a (N, C) output, a pixel of a segmentation
 * map). Every kernel writes the loss of each row (double), and returns
 *     loss = sum_r w_r * row_loss_r          (w_r = 1 / rows when no weights are given)
 * with, unless the gradient pointer is NULL, grad = d loss / d pred. The rows are split into
 * tasks of a fixed number of rows (never depending on the thread count); the weighted sum then
 * runs over the rows in order, in double: results are bit-identical for any thread count. */
#include "pycnn.h"

#include <math.h>

#define EPS 1e-7f
#define TASK_FLOATS 16384   /* about this many floats of y_pred per task */

static inline float clipf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
static inline float signf(float v) { return (float)((v > 0.0f) - (v < 0.0f)); }
/* log(1 + exp(z)), stable for any z */
static inline float softplusf(float z) { return fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z))); }
static inline float sigmoidf(float z)
{
    if (z >= 0.0f)
        return 1.0f / (1.0f + expf(-z));
    const float e = expf(z);
    return e / (1.0f + e);
}

/* ---- the row driver ---------------------------------------------------------------------- */

/* One task: rows [r0, r1). */
typedef void (*rows_fn)(const void *job, size_t r0, size_t r1);

typedef struct {
    rows_fn fn;
    const void *job;
    size_t rows, per_task;
} driver;

static void driver_task(void *ctx, int task, int thread)
{
    (void)thread;
    const driver *d = ctx;
    const size_t r0 = (size_t)task * d->per_task;
    const size_t r1 = r0 + d->per_task < d->rows ? r0 + d->per_task : d->rows;
    d->fn(d->job, r0, r1);
}

static size_t rows_per_task(size_t cols)
{
    const size_t r = TASK_FLOATS / (cols ? cols : 1);
    return r ? r : 1;
}

/* Runs fn over all rows (in parallel when there is more than one task). */
static int run_rows(pc_runtime *rt, rows_fn fn, const void *job, size_t rows, size_t cols)
{
    driver d = {fn, job, rows, rows_per_task(cols)};
    const size_t tasks = (rows + d.per_task - 1) / d.per_task;
    if (tasks > (size_t)INT32_MAX)
        return PC_EINVAL;
    if (tasks == 1 || !rt) {
        fn(job, 0, rows);
        return PC_OK;
    }
    pc_parallel(rt, (int)tasks, driver_task, &d);   /* a worker that failed: all ran here */
    return PC_OK;
}

/* The row losses: the caller's array, or the runtime's scratch. */
static double *row_buffer(pc_runtime *rt, double *row_loss, size_t rows)
{
    if (row_loss)
        return row_loss;
    return rt ? (double *)pc_shared_scratch(rt, PC_SHARED_SLOT_PARTIAL, 2 * rows) : NULL;
}

static double weighted_sum(const double *row_loss, const float *row_w, size_t rows)
{
    double total = 0.0;
    if (row_w) {
        for (size_t r = 0; r < rows; r++)
            total += (double)row_w[r] * row_loss[r];
        return total;
    }
    for (size_t r = 0; r < rows; r++)
        total += row_loss[r];
    return total / (double)rows;
}

static inline float row_weight(const float *row_w, size_t rows, size_t r)
{
    return row_w ? row_w[r] : 1.0f / (float)rows;
}

/* ---- crossentropies ---------------------------------------------------------------------- */

typedef struct {
    const float *scores;
    const int64_t *labels;
    const float *targets;
    size_t rows, cols;
    const float *row_w;
    double *row_loss;
    float *probs, *grad;
} xent_job;

static void softmax_xent_sparse_rows(const void *vj, size_t r0, size_t r1)
{
    const xent_job *j = vj;
    const size_t C = j->cols;
    for (size_t r = r0; r < r1; r++) {
        const float *z = j->scores + r * C;
        float *p = j->probs + r * C;
        const int64_t y = j->labels[r];
        const double lse = pc_softmax_row(z, p, C);
        j->row_loss[r] = lse - (double)z[y];
        if (j->grad) {
            const float w = row_weight(j->row_w, j->rows, r);
            float *d = j->grad + r * C;
            for (size_t c = 0; c < C; c++)
                d[c] = p[c] * w;
            d[y] = (p[y] - 1.0f) * w;
        }
    }
}

static void softmax_xent_rows(const void *vj, size_t r0, size_t r1)
{
    const xent_job *j = vj;
    const size_t C = j->cols;
    for (size_t r = r0; r < r1; r++) {
        const float *z = j->scores + r * C, *t = j->targets + r * C;
        float *p = j->probs + r * C;
        const double lse = pc_softmax_row(z, p, C);
        double total = 0.0;
        for (size_t c = 0; c < C; c++)
            total += (double)t[c] * (lse - z[c]);
        j->row_loss[r] = total;
        if (j->grad) {   /* TensorFlow's gradient, p - t: exact when the targets sum to 1 */
            const float w = row_weight(j->row_w, j->rows, r);
            float *d = j->grad + r * C;
            for (size_t c = 0; c < C; c++)
                d[c] = (p[c] - t[c]) * w;
        }
    }
}

/* Keras on probabilities: q = p / sum(p) per row, then -sum t log(clip(q, eps, 1 - eps)). The
 * sparse form is the same with a one-hot t. */
static void xent_rows(const void *vj, size_t r0, size_t r1)
{
    const xent_job *j = vj;
    const size_t C = j->cols;
    for (size_t r = r0; r < r1; r++) {
        const float *p = j->scores + r * C;
        const float *t = j->targets ? j->targets + r * C : NULL;
        const int64_t y = j->labels ? j->labels[r] : -1;
        float *d = j->grad ? j->grad + r * C : NULL;
        double s = 0.0;
        for (size_t c = 0; c < C; c++)
            s += p[c];
        if (!(s > 0.0) || !isfinite(s)) {   /* Keras divides by the sum: NaN, as here */
            j->row_loss[r] = NAN;
            if (d)
                for (size_t c = 0; c < C; c++)
                    d[c] = 0.0f;
            continue;
        }
        const float w = row_weight(j->row_w, j->rows, r);
        double total = 0.0, gq = 0.0;   /* gq = sum_c g_c q_c with g_c = dL/dq_c */
        if (t) {
            for (size_t c = 0; c < C; c++) {
                const float q = (float)(p[c] / s);
                total += -(double)t[c] * log((double)clipf(q, EPS, 1.0f - EPS));
                if (q > EPS && q < 1.0f - EPS)
                    gq += -(double)t[c];
            }
        } else {
            const float q = (float)(p[y] / s);
            total = -log((double)clipf(q, EPS, 1.0f - EPS));
            gq = (q > EPS && q < 1.0f - EPS) ? -1.0 : 0.0;
        }
        j->row_loss[r] = total;
        if (!d)
            continue;
        for (size_t c = 0; c < C; c++) {
            const float q = (float)(p[c] / s);
            const double tc = t ? (double)t[c] : (c == (size_t)y ? 1.0 : 0.0);
            const double g = (q > EPS && q < 1.0f - EPS) ? -tc / q : 0.0;
            d[c] = (float)((g - gq) / s) * w;
        }
    }
}

static int run_xent(pc_runtime *rt, rows_fn fn, xent_job *j, double *loss)
{
    double *own = row_buffer(rt, j->row_loss, j->rows);
    if (!own)
        return PC_ENOMEM;
    j->row_loss = own;
    const int rc = run_rows(rt, fn, j, j->rows, j->cols);
    if (rc)
        return rc;
    *loss = weighted_sum(own, j->row_w, j->rows);
    return PC_OK;
}

static int labels_ok(const int64_t *labels, size_t n, size_t classes)
{
    for (size_t r = 0; r < n; r++)
        if (labels[r] < 0 || (uint64_t)labels[r] >= classes)
            return 0;
    return 1;
}

int pc_softmax_xent_sparse(pc_runtime *rt, const float *logits, const int64_t *labels, size_t n,
                           size_t classes, const float *row_w, float *probs, float *dlogits,
                           double *row_loss, double *loss)
{
    if (!labels_ok(labels, n, classes))
        return PC_EINVAL;
    xent_job j = {logits, labels, NULL, n, classes, row_w, row_loss, probs, dlogits};
    return run_xent(rt, softmax_xent_sparse_rows, &j, loss);
}

int pc_xent_sparse(pc_runtime *rt, const float *probs, const int64_t *labels, size_t n,
                   size_t classes, const float *row_w, float *dprobs, double *row_loss,
                   double *loss)
{
    if (!labels_ok(labels, n, classes))
        return PC_EINVAL;
    xent_job j = {probs, labels, NULL, n, classes, row_w, row_loss, NULL, dprobs};
    return run_xent(rt, xent_rows, &j, loss);
}

int pc_softmax_xent(pc_runtime *rt, const float *logits, const float *targets, size_t n,
                    size_t classes, const float *row_w, float *probs, float *dlogits,
                    double *row_loss, double *loss)
{
    xent_job j = {logits, NULL, targets, n, classes, row_w, row_loss, probs, dlogits};
    return run_xent(rt, softmax_xent_rows, &j, loss);
}

int pc_xent(pc_runtime *rt, const float *probs, const float *targets, size_t n, size_t classes,
            const float *row_w, float *dprobs, double *row_loss, double *loss)
{
    xent_job j = {probs, NULL, targets, n, classes, row_w, row_loss, NULL, dprobs};
    return run_xent(rt, xent_rows, &j, loss);
}

/* ---- elementwise and other row losses ------------------------------------------------------ */

typedef struct {
    pc_loss_kind kind;
    pc_loss_params prm;
    const float *pred, *truth;
    size_t rows, cols;
    const float *row_w;
    double *row_loss;
    float *grad, *probs;
    pc_isa isa;             /* the elementwise losses' SIMD path */
} row_job;

/* ELEMENTWISE(name, value, derivative): the row loss is the mean over the row of `value`
 * (a float expression of x = y_pred, y = y_true and the parameters), the gradient `w / cols *
 * derivative`; both loops are plain so that GCC vectorises them. */
#define ELEMENTWISE(NAME, SETUP, VALUE, DERIV)                                                  \
    PC_SIMD_LOOP double NAME##_body(const float *restrict px, const float *restrict py,         \
                                    size_t n, const pc_loss_params *prm, float *restrict g,     \
                                    float gs)                                                   \
    {                                                                                           \
        SETUP;                                                                                  \
        (void)prm;                                                                              \
        double s = 0.0;                                                                         \
        for (size_t i = 0; i < n; i++) {                                                        \
            const float x = px[i], y = py[i];                                                   \
            s += (double)(VALUE);                                                               \
        }                                                                                       \
        if (g)                                                                                  \
            for (size_t i = 0; i < n; i++) {                                                    \
                const float x = px[i], y = py[i];                                               \
                g[i] = gs * (DERIV);                                                            \
            }                                                                                   \
        return s;                                                                               \
    }                                                                                           \
    PC_SIMD_VARIANTS_RET(double, NAME, (const float *restrict px, const float *restrict py,     \
                                        size_t n, const pc_loss_params *prm,                    \
                                        float *restrict g, float gs),                           \
                         (px, py, n, prm, g, gs))

ELEMENTWISE(mse_row, , (x - y) * (x - y), 2.0f * (x - y))
ELEMENTWISE(mae_row, , fabsf(x - y), signf(x - y))
ELEMENTWISE(mape_row, , 100.0f * fabsf(y - x) / fmaxf(fabsf(y), EPS),
            100.0f * signf(x - y) / fmaxf(fabsf(y), EPS))
ELEMENTWISE(msle_row, ,
            (logf(fmaxf(x, EPS) + 1.0f) - logf(fmaxf(y, EPS) + 1.0f)) *
                (logf(fmaxf(x, EPS) + 1.0f) - logf(fmaxf(y, EPS) + 1.0f)),
            x >= EPS ? 2.0f * (logf(x + 1.0f) - logf(fmaxf(y, EPS) + 1.0f)) / (x + 1.0f) : 0.0f)
ELEMENTWISE(huber_row, const float delta = prm->delta,
            fabsf(x - y) <= delta ? 0.5f * (x - y) * (x - y)
                                  : delta * fabsf(x - y) - 0.5f * delta * delta,
            fabsf(x - y) <= delta ? (x - y) : delta * signf(x - y))
ELEMENTWISE(logcosh_row, , (x - y) + softplusf(-2.0f * (x - y)) - 0.69314718f, tanhf(x - y))
ELEMENTWISE(poisson_row, , x - y * logf(x + EPS), 1.0f - y / (x + EPS))
ELEMENTWISE(hinge_row, , fmaxf(1.0f - y * x, 0.0f), 1.0f - y * x >= 0.0f ? -y : 0.0f)
ELEMENTWISE(squared_hinge_row, , fmaxf(1.0f - y * x, 0.0f) * fmaxf(1.0f - y * x, 0.0f),
            -2.0f * y * fmaxf(1.0f - y * x, 0.0f))
/* KL divergence sums over the row: the driver scales it back (see row_value) */
ELEMENTWISE(kld_row, ,
            clipf(y, EPS, 1.0f) * logf(clipf(y, EPS, 1.0f) / clipf(x, EPS, 1.0f)),
            (x >= EPS && x <= 1.0f) ? -clipf(y, EPS, 1.0f) / x : 0.0f)
/* tf.keras 2: -(y log(clip(p) + eps) + (1 - y) log(1 - clip(p) + eps)) */
ELEMENTWISE(bce_row, ,
            -(y * logf(clipf(x, EPS, 1.0f - EPS) + EPS) +
              (1.0f - y) * logf(1.0f - clipf(x, EPS, 1.0f - EPS) + EPS)),
            (x >= EPS && x <= 1.0f - EPS) ? -(y / (x + EPS) - (1.0f - y) / (1.0f - x + EPS))
                                          : 0.0f)
/* tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x y + log(1 + exp(-|x|)) */
ELEMENTWISE(bce_logits_row, , fmaxf(x, 0.0f) - x * y + log1pf(expf(-fabsf(x))),
            sigmoidf(x) - y)

/* Binary focal crossentropy: w_cb (1 - p_t)^gamma bce, p_t = y p + (1 - y)(1 - p). */
static inline float focal_pow(float base, float gamma)
{
    return base > 0.0f ? powf(base, gamma) : (gamma == 0.0f ? 1.0f : 0.0f);
}

static double focal_row(const float *px, const float *py, size_t n, const pc_loss_params *prm,
                        float *g, float gs, int logits)
{
    const float gamma = prm->gamma, alpha = prm->alpha;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float x = px[i], y = py[i];
        const float p = logits ? sigmoidf(x) : x;
        const float pt = y * p + (1.0f - y) * (1.0f - p);
        const float ff = focal_pow(1.0f - pt, gamma);
        const float wcb = prm->balance ? y * alpha + (1.0f - y) * (1.0f - alpha) : 1.0f;
        float bce, dbce;
        if (logits) {
            bce = fmaxf(x, 0.0f) - x * y + log1pf(expf(-fabsf(x)));
            dbce = p - y;
        } else {
            const float xc = clipf(x, EPS, 1.0f - EPS);
            bce = -(y * logf(xc + EPS) + (1.0f - y) * logf(1.0f - xc + EPS));
            dbce = (x >= EPS && x <= 1.0f - EPS) ? -(y / (x + EPS) - (1.0f - y) / (1.0f - x + EPS))
                                                 : 0.0f;
        }
        s += (double)(wcb * ff * bce);
        if (g) {
            /* d ff / d p = -gamma (1 - p_t)^(gamma - 1) (2y - 1) */
            const float dff_dp = gamma == 0.0f ? 0.0f
                : -gamma * focal_pow(1.0f - pt, gamma - 1.0f) * (2.0f * y - 1.0f);
            const float dp_dx = logits ? p * (1.0f - p) : 1.0f;
            g[i] = gs * wcb * (ff * dbce + bce * dff_dp * dp_dx);
        }
    }
    return s;
}

/* -sum(l2_normalize(y) * l2_normalize(p)), l2_normalize(v) = v / sqrt(max(sum v^2, 1e-12)) */
static double cosine_row(const float *p, const float *t, size_t n, float *g, float gs)
{
    double pp = 0.0, tt = 0.0, pt = 0.0;
    for (size_t i = 0; i < n; i++) {
        pp += (double)p[i] * p[i];
        tt += (double)t[i] * t[i];
        pt += (double)p[i] * t[i];
    }
    const double np_ = sqrt(pp > 1e-12 ? pp : 1e-12), nt = sqrt(tt > 1e-12 ? tt : 1e-12);
    const double cos = pt / (np_ * nt);
    if (g) {
        /* d/dp_i of -(p.t)/(|p| |t|) = -(t_i / |t| - cos p_i / |p|) / |p|; the norm is the
         * constant 1e-6 below the floor */
        const int floored = !(pp > 1e-12);
        for (size_t i = 0; i < n; i++) {
            const double tn = t[i] / nt;
            const double d = floored ? -tn / np_ : -(tn - cos * p[i] / np_) / np_;
            g[i] = (float)d * gs;
        }
    }
    return -cos;
}

/* max(max((1 - y) p) - sum(y p) + 1, 0); the max's gradient split among ties as TF's */
static double categorical_hinge_row(const float *p, const float *t, size_t n, float *g, float gs)
{
    float neg = -INFINITY;
    double pos = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float v = (1.0f - t[i]) * p[i];
        neg = v > neg ? v : neg;
        pos += (double)t[i] * p[i];
    }
    const double m = (double)neg - pos + 1.0;
    if (g) {
        int ties = 0;
        for (size_t i = 0; i < n; i++)
            ties += (1.0f - t[i]) * p[i] == neg;
        const float share = m >= 0.0 ? gs / (float)ties : 0.0f;
        for (size_t i = 0; i < n; i++)
            g[i] = m >= 0.0 ? (((1.0f - t[i]) * p[i] == neg ? share * (1.0f - t[i]) : 0.0f) -
                               gs * t[i])
                            : 0.0f;
    }
    return m > 0.0 ? m : 0.0;
}

/* One row's loss, its gradient scaled by gs (the row's weight). */
static double row_value(const row_job *j, const float *x, const float *y, float *g, float w)
{
    const size_t n = j->cols;
    const float per = w / (float)n;    /* the elementwise losses are means over the row */
    const double inv = 1.0 / (double)n;
    switch (j->kind) {
    case PC_LOSS_MSE: return mse_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_MAE: return mae_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_MAPE: return mape_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_MSLE: return msle_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_HUBER: return huber_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_LOGCOSH: return logcosh_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_POISSON: return poisson_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_HINGE: return hinge_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_SQUARED_HINGE: return squared_hinge_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_BCE: return bce_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_BCE_LOGITS: return bce_logits_row(j->isa, x, y, n, &j->prm, g, per) * inv;
    case PC_LOSS_FOCAL: return focal_row(x, y, n, &j->prm, g, per, 0) * inv;
    case PC_LOSS_FOCAL_LOGITS: return focal_row(x, y, n, &j->prm, g, per, 1) * inv;
    case PC_LOSS_KLD: return kld_row(j->isa, x, y, n, &j->prm, g, w);
    case PC_LOSS_COSINE: return cosine_row(x, y, n, g, w);
    case PC_LOSS_CATEGORICAL_HINGE: return categorical_hinge_row(x, y, n, g, w);
    }
    return NAN;
}

static void loss_rows_task(const void *vj, size_t r0, size_t r1)
{
    const row_job *j = vj;
    const size_t C = j->cols;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->pred + r * C, *y = j->truth + r * C;
        float *g = j->grad ? j->grad + r * C : NULL;
        j->row_loss[r] = row_value(j, x, y, g, row_weight(j->row_w, j->rows, r));
        if (j->probs)
            for (size_t c = 0; c < C; c++)
                j->probs[r * C + c] = sigmoidf(x[c]);
    }
}

int pc_loss_rows(pc_runtime *rt, pc_loss_kind kind, const pc_loss_params *prm, const float *pred,
                 const float *truth, size_t rows, size_t cols, const float *row_w,
                 double *row_loss, float *grad, float *probs, double *loss)
{
    if ((unsigned)kind > PC_LOSS_CATEGORICAL_HINGE || rows == 0 || cols == 0)
        return PC_EINVAL;
    double *own = row_buffer(rt, row_loss, rows);
    if (!own)
        return PC_ENOMEM;
    row_job j = {kind, *prm, pred, truth, rows, cols, row_w, own, grad, probs, pc_loop_isa(rt)};
    const int rc = run_rows(rt, loss_rows_task, &j, rows, cols);
    if (rc)
        return rc;
    *loss = weighted_sum(own, row_w, rows);
    return PC_OK;
}
