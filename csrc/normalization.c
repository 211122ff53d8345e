/* normalization.c - batch normalization over any axis and layer normalization over rows
 * (pycnn.h, "normalization"). Every reduction is done in double: each task sums a fixed block
 * of rows into its own partial sums, and the partials are added in task order on the calling
 * thread, so results are bit-identical for any thread count. The elementwise passes apply
 * per-channel coefficients computed once per call. */
#include "pycnn.h"

#include <math.h>
#include <string.h>

#define BLOCK 16384   /* floats of x per task */

/* ---- batch normalization ------------------------------------------------------------------- */

typedef struct {
    const pc_norm_shape *s;
    const float *x, *dy;
    const float *mu;        /* per channel: the shift of the sums, or the mean */
    const float *k1, *k2, *k3;
    double *partial;        /* [task][2][c] */
    float *out;
    int rows_per;
    pc_isa isa;             /* the loops' SIMD path */
} bn_job;

/* s[ch] += x - mu[ch], q[ch] += (x - mu[ch])^2 over one row of c channels (b = 1) */
PC_SIMD_LOOP void moments_row_body(const float *restrict x, const float *restrict mu,
                                   double *restrict s, double *restrict q, int c)
{
    for (int ch = 0; ch < c; ch++) {
        const double d = (double)x[ch] - (double)mu[ch];
        s[ch] += d;
        q[ch] += d * d;
    }
}
PC_SIMD_VARIANTS(moments_row, (const float *restrict x, const float *restrict mu,
                               double *restrict s, double *restrict q, int c),
                 (x, mu, s, q, c))

/* moments_row over four consecutive rows (stride `row`), each channel's terms added in row
 * order as four calls would: the sums are loaded and stored once per four rows */
PC_SIMD_LOOP void moments_row4_body(const float *restrict x, size_t row,
                                    const float *restrict mu, double *restrict s,
                                    double *restrict q, int c)
{
    for (int ch = 0; ch < c; ch++) {
        const double m = mu[ch];
        const double d0 = (double)x[ch] - m, d1 = (double)x[row + ch] - m;
        const double d2 = (double)x[2 * row + ch] - m, d3 = (double)x[3 * row + ch] - m;
        s[ch] = (((s[ch] + d0) + d1) + d2) + d3;
        q[ch] = (((q[ch] + d0 * d0) + d1 * d1) + d2 * d2) + d3 * d3;
    }
}
PC_SIMD_VARIANTS(moments_row4, (const float *restrict x, size_t row, const float *restrict mu,
                                double *restrict s, double *restrict q, int c),
                 (x, row, mu, s, q, c))

/* s[ch] += dy, q[ch] += dy (x - mu[ch]) over one row (b = 1) */
PC_SIMD_LOOP void grad_sums_row_body(const float *restrict x, const float *restrict dy,
                                     const float *restrict mu, double *restrict s,
                                     double *restrict q, int c)
{
    for (int ch = 0; ch < c; ch++) {
        const double g = dy[ch];
        s[ch] += g;
        q[ch] += g * ((double)x[ch] - (double)mu[ch]);
    }
}
PC_SIMD_VARIANTS(grad_sums_row, (const float *restrict x, const float *restrict dy,
                                 const float *restrict mu, double *restrict s, double *restrict q,
                                 int c),
                 (x, dy, mu, s, q, c))

/* grad_sums_row over four consecutive rows, in row order per channel */
PC_SIMD_LOOP void grad_sums_row4_body(const float *restrict x, const float *restrict dy,
                                      size_t row, const float *restrict mu, double *restrict s,
                                      double *restrict q, int c)
{
    for (int ch = 0; ch < c; ch++) {
        const double m = mu[ch];
        const double g0 = dy[ch], g1 = dy[row + ch], g2 = dy[2 * row + ch];
        const double g3 = dy[3 * row + ch];
        s[ch] = (((s[ch] + g0) + g1) + g2) + g3;
        q[ch] = (((q[ch] + g0 * ((double)x[ch] - m)) + g1 * ((double)x[row + ch] - m)) +
                 g2 * ((double)x[2 * row + ch] - m)) + g3 * ((double)x[3 * row + ch] - m);
    }
}
PC_SIMD_VARIANTS(grad_sums_row4, (const float *restrict x, const float *restrict dy, size_t row,
                                  const float *restrict mu, double *restrict s,
                                  double *restrict q, int c),
                 (x, dy, row, mu, s, q, c))

static void sums_task(void *ctx, int task, int thread)
{
    (void)thread;
    const bn_job *j = ctx;
    const pc_norm_shape *sh = j->s;
    const int c = sh->c, b = sh->b;
    const size_t row = (size_t)c * b;
    const int r0 = task * j->rows_per;
    const int r1 = r0 + j->rows_per < sh->a ? r0 + j->rows_per : sh->a;
    double *s = j->partial + (size_t)task * 2 * c, *q = s + c;
    for (int ch = 0; ch < c; ch++)
        s[ch] = q[ch] = 0.0;
    int r = r0;
    if (b == 1)
        for (; r + 4 <= r1; r += 4) {
            const float *x = j->x + r * row;
            if (j->dy)
                grad_sums_row4(j->isa, x, j->dy + r * row, row, j->mu, s, q, c);
            else
                moments_row4(j->isa, x, row, j->mu, s, q, c);
        }
    for (; r < r1; r++) {
        const float *x = j->x + r * row, *dy = j->dy ? j->dy + r * row : NULL;
        if (b == 1) {
            if (dy)
                grad_sums_row(j->isa, x, dy, j->mu, s, q, c);
            else
                moments_row(j->isa, x, j->mu, s, q, c);
            continue;
        }
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * b, *gc = dy ? dy + (size_t)ch * b : NULL;
            const double m = j->mu[ch];
            double ls = 0.0, lq = 0.0;
            if (gc) {
                for (int i = 0; i < b; i++) {
                    ls += gc[i];
                    lq += (double)gc[i] * ((double)xc[i] - m);
                }
            } else {
                for (int i = 0; i < b; i++) {
                    const double d = (double)xc[i] - m;
                    ls += d;
                    lq += d * d;
                }
            }
            s[ch] += ls;
            q[ch] += lq;
        }
    }
}

/* out = k1[ch] * (x - mu[ch]) + k3[ch]            (dy NULL: the forward pass)
 * out = k1[ch] * dy + k2[ch] * (x - mu[ch]) + k3[ch]   (the input gradient) */
PC_SIMD_LOOP void apply_row_body(const float *restrict x, const float *restrict dy,
                                 const float *restrict mu, const float *restrict k1,
                                 const float *restrict k2, const float *restrict k3,
                                 float *restrict out, int c)
{
    if (dy)
        for (int ch = 0; ch < c; ch++)
            out[ch] = k1[ch] * dy[ch] + k2[ch] * (x[ch] - mu[ch]) + k3[ch];
    else
        for (int ch = 0; ch < c; ch++)
            out[ch] = k1[ch] * (x[ch] - mu[ch]) + k3[ch];
}
PC_SIMD_VARIANTS(apply_row, (const float *restrict x, const float *restrict dy,
                             const float *restrict mu, const float *restrict k1,
                             const float *restrict k2, const float *restrict k3,
                             float *restrict out, int c),
                 (x, dy, mu, k1, k2, k3, out, c))

/* apply_row over four consecutive rows (stride `row`): the coefficients loaded once */
PC_SIMD_LOOP void apply_row4_body(const float *restrict x, const float *restrict dy, size_t row,
                                  const float *restrict mu, const float *restrict k1,
                                  const float *restrict k2, const float *restrict k3,
                                  float *restrict out, int c)
{
    if (dy)
        for (int ch = 0; ch < c; ch++) {
            const float m = mu[ch], a = k1[ch], b = k2[ch], d = k3[ch];
            for (int i = 0; i < 4; i++)
                out[i * row + ch] = a * dy[i * row + ch] + b * (x[i * row + ch] - m) + d;
        }
    else
        for (int ch = 0; ch < c; ch++) {
            const float m = mu[ch], a = k1[ch], d = k3[ch];
            for (int i = 0; i < 4; i++)
                out[i * row + ch] = a * (x[i * row + ch] - m) + d;
        }
}
PC_SIMD_VARIANTS(apply_row4, (const float *restrict x, const float *restrict dy, size_t row,
                              const float *restrict mu, const float *restrict k1,
                              const float *restrict k2, const float *restrict k3,
                              float *restrict out, int c),
                 (x, dy, row, mu, k1, k2, k3, out, c))

PC_SIMD_LOOP void apply_inner_body(const float *restrict x, const float *restrict dy, float mu,
                                   float k1, float k2, float k3, float *restrict out, int b)
{
    if (dy)
        for (int i = 0; i < b; i++)
            out[i] = k1 * dy[i] + k2 * (x[i] - mu) + k3;
    else
        for (int i = 0; i < b; i++)
            out[i] = k1 * (x[i] - mu) + k3;
}
PC_SIMD_VARIANTS(apply_inner, (const float *restrict x, const float *restrict dy, float mu,
                               float k1, float k2, float k3, float *restrict out, int b),
                 (x, dy, mu, k1, k2, k3, out, b))

static void apply_task(void *ctx, int task, int thread)
{
    (void)thread;
    const bn_job *j = ctx;
    const pc_norm_shape *sh = j->s;
    const int c = sh->c, b = sh->b;
    const size_t row = (size_t)c * b;
    const int r0 = task * j->rows_per;
    const int r1 = r0 + j->rows_per < sh->a ? r0 + j->rows_per : sh->a;
    int r = r0;
    if (b == 1)
        for (; r + 4 <= r1; r += 4)
            apply_row4(j->isa, j->x + r * row, j->dy ? j->dy + r * row : NULL, row, j->mu, j->k1,
                       j->k2, j->k3, j->out + r * row, c);
    for (; r < r1; r++) {
        const float *x = j->x + r * row, *dy = j->dy ? j->dy + r * row : NULL;
        float *out = j->out + r * row;
        if (b == 1) {
            apply_row(j->isa, x, dy, j->mu, j->k1, j->k2, j->k3, out, c);
            continue;
        }
        for (int ch = 0; ch < c; ch++)
            apply_inner(j->isa, x + (size_t)ch * b, dy ? dy + (size_t)ch * b : NULL, j->mu[ch],
                        j->k1[ch], j->k2[ch], j->k3[ch], out + (size_t)ch * b, b);
    }
}

static int bn_tasks(const pc_norm_shape *s, int *rows_per)
{
    const size_t row = (size_t)s->c * s->b;
    *rows_per = row >= BLOCK ? 1 : (int)(BLOCK / row);
    return (int)((s->a + (size_t)*rows_per - 1) / (size_t)*rows_per);
}

/* Scratch: 4 coefficient arrays of c floats, then the partial sums (doubles, 64-byte aligned). */
static int bn_scratch(pc_runtime *rt, const pc_norm_shape *s, int tasks, float **coef,
                      double **partial)
{
    const size_t cpad = ((size_t)s->c * 4 + 15) & ~(size_t)15;
    float *buf = pc_shared_scratch(rt, PC_SHARED_SLOT_PARTIAL,
                                   cpad + (size_t)tasks * 2 * s->c * 2);
    if (!buf)
        return PC_ENOMEM;
    *coef = buf;
    *partial = (double *)(void *)(buf + cpad);
    return PC_OK;
}

/* S[ch] = the partials of every task added in task order (into partial's first block) */
static void combine(double *partial, int tasks, int c)
{
    for (int t = 1; t < tasks; t++) {
        const double *p = partial + (size_t)t * 2 * c;
        for (int ch = 0; ch < 2 * c; ch++)
            partial[ch] += p[ch];
    }
}

static int check_shape(const pc_norm_shape *s)
{
    return s->a > 0 && s->c > 0 && s->b > 0 &&
           (size_t)s->a * s->c * s->b / s->a / s->c == (size_t)s->b;
}

/* The job of one call: its tasks, and the scratch for the coefficients (mu, k1, k2, k3: c
 * floats each, from *coef on) and the partial sums. */
static int bn_setup(pc_runtime *rt, const pc_norm_shape *s, const float *x, const float *dy,
                    float *out, bn_job *j, int *tasks, float **coef)
{
    if (!check_shape(s))
        return PC_EINVAL;
    int rows_per, rc;
    *tasks = bn_tasks(s, &rows_per);
    double *partial;
    if ((rc = bn_scratch(rt, s, *tasks, coef, &partial)))
        return rc;
    const int c = s->c;
    *j = (bn_job){.s = s, .x = x, .dy = dy, .mu = *coef, .k1 = *coef + c, .k2 = *coef + 2 * c,
                  .k3 = *coef + 3 * c, .partial = partial, .out = out, .rows_per = rows_per,
                  .isa = pc_loop_isa(rt)};
    return PC_OK;
}

/* The forward pass's statistics (batch_stats: into mean and var) and its coefficients. */
static int forward_coefficients(pc_runtime *rt, const pc_norm_shape *s, bn_job *j, int tasks,
                                float *coef, const float *x, float *mean, float *var,
                                const float *gamma, const float *beta, float eps,
                                int batch_stats)
{
    const int c = s->c;
    float *mu = coef, *k1 = coef + c, *k2 = coef + 2 * c, *k3 = coef + 3 * c;
    double *partial = j->partial;
    int rc;
    if (batch_stats) {
        /* shifted by the first cell of each channel: no cancellation for a large mean */
        for (int ch = 0; ch < c; ch++)
            mu[ch] = x[(size_t)ch * s->b];
        if ((rc = pc_parallel(rt, tasks, sums_task, j)))
            return rc;
        combine(partial, tasks, c);
        const double m = (double)s->a * s->b;
        for (int ch = 0; ch < c; ch++) {
            const double dm = partial[ch] / m;
            const double v = partial[c + ch] / m - dm * dm;
            mean[ch] = (float)(mu[ch] + dm);
            var[ch] = (float)(v > 0.0 ? v : 0.0);
        }
    }
    for (int ch = 0; ch < c; ch++) {
        const double inv = 1.0 / sqrt((double)var[ch] + eps);
        mu[ch] = mean[ch];
        k1[ch] = (float)(gamma ? gamma[ch] * inv : inv);
        k2[ch] = 0.0f;
        k3[ch] = beta ? beta[ch] : 0.0f;
    }
    return PC_OK;
}

int pc_batchnorm_forward(pc_runtime *rt, const pc_norm_shape *s, const float *x, float *mean,
                         float *var, const float *gamma, const float *beta, float eps,
                         int batch_stats, float *y)
{
    bn_job j;
    int tasks, rc;
    float *coef;
    if ((rc = bn_setup(rt, s, x, NULL, y, &j, &tasks, &coef)) ||
        (rc = forward_coefficients(rt, s, &j, tasks, coef, x, mean, var, gamma, beta, eps,
                                   batch_stats)))
        return rc;
    return pc_parallel(rt, tasks, apply_task, &j);
}

/* The backward pass's sums (dgamma, dbeta) and its coefficients, from j's sums_task. */
static int backward_coefficients(pc_runtime *rt, const pc_norm_shape *s, bn_job *j, int tasks,
                                 float *coef, const float *mean, const float *var,
                                 const float *gamma, float eps, int batch_stats, int need_dx,
                                 float *dgamma, float *dbeta, pc_task_fn sums, void *sums_ctx)
{
    const int c = s->c;
    float *mu = coef, *k1 = coef + c, *k2 = coef + 2 * c, *k3 = coef + 3 * c;
    double *partial = j->partial;
    int rc;
    memcpy(mu, mean, (size_t)c * sizeof(float));
    const int need_sums = dgamma || dbeta || (need_dx && batch_stats);
    if (need_sums) {
        if ((rc = pc_parallel(rt, tasks, sums, sums_ctx)))
            return rc;
        combine(partial, tasks, c);
    }
    const double m = (double)s->a * s->b;
    for (int ch = 0; ch < c; ch++) {
        const double inv = 1.0 / sqrt((double)var[ch] + eps);
        const double g = gamma ? gamma[ch] : 1.0;
        if (need_sums) {
            const double sdy = partial[ch], sdyx = partial[c + ch];
            if (dgamma)
                dgamma[ch] = (float)(sdyx * inv);
            if (dbeta)
                dbeta[ch] = (float)sdy;
            /* dx = g inv (dy - sdy/m - xhat * sdyx inv / m), xhat = (x - mean) inv */
            k2[ch] = batch_stats ? (float)(-g * inv * inv * inv * sdyx / m) : 0.0f;
            k3[ch] = batch_stats ? (float)(-g * inv * sdy / m) : 0.0f;
        } else {
            k2[ch] = k3[ch] = 0.0f;
        }
        k1[ch] = (float)(g * inv);
    }
    return PC_OK;
}

int pc_batchnorm_backward(pc_runtime *rt, const pc_norm_shape *s, const float *x,
                          const float *mean, const float *var, const float *gamma, float eps,
                          int batch_stats, const float *dy, float *dx, float *dgamma,
                          float *dbeta)
{
    bn_job j;
    int tasks, rc;
    float *coef;
    if ((rc = bn_setup(rt, s, x, dy, dx, &j, &tasks, &coef)) ||
        (rc = backward_coefficients(rt, s, &j, tasks, coef, mean, var, gamma, eps, batch_stats,
                                    dx != NULL, dgamma, dbeta, sums_task, &j)))
        return rc;
    if (!dx)
        return PC_OK;
    return pc_parallel(rt, tasks, apply_task, &j);
}

/* ---- batch normalization followed by max pooling ---------------------------------------------
 * The pair bn -> maxpool over channels-last images (x: n x h x w x c, the normalization over
 * c) without storing the normalized map: the forward normalizes each image into the thread's
 * scratch (apply_row, the same bits as the unfused pass) and pools it there; the backward
 * rebuilds the normalization's output gradient, row by row, from the pooled gradient and
 * argmax (the same values maxpool backward writes) and runs the unfused sums and apply on it,
 * in the same tasks and order. With relu, dx is also masked by x > 0 (the gradient of a relu
 * whose output is x), as the preceding convolution's backward would mask it. */

typedef struct {
    bn_job bn;
    const pc_pool_shape *p;
    const float *dyp;          /* the pooled gradient */
    const int32_t *am;
    float *y;                  /* forward: the pooled output */
    int32_t *am_out;
    int relu, add0;            /* add0: maxpool backward's dx = 0 + dy (not tiled) */
    int failed;                /* a task could not get its scratch */
    pc_runtime *rt;
} bnpool_job;

static int pool_tiled(const pc_pool_shape *p)
{
    return p->pt == 0 && p->pl == 0 && (long long)p->oh * p->ph <= p->h &&
           (long long)p->ow * p->pw <= p->w;
}

static void bnpool_forward_task(void *ctx, int n, int thread)
{
    bnpool_job *bj = ctx;
    const bn_job *j = &bj->bn;
    const pc_pool_shape *p = bj->p;
    const int c = p->c, cells = p->h * p->w;
    const size_t img = (size_t)cells * c, out = (size_t)n * p->oh * p->ow * c;
    float *z = pc_thread_scratch(bj->rt, thread, PC_THREAD_SLOT_WORK, img);
    if (!z) {
        bj->failed = 1;
        return;
    }
    const float *x = j->x + (size_t)n * img;
    int r = 0;
    for (; r + 4 <= cells; r += 4)
        apply_row4(j->isa, x + (size_t)r * c, NULL, (size_t)c, j->mu, j->k1, j->k2, j->k3,
                   z + (size_t)r * c, c);
    for (; r < cells; r++)
        apply_row(j->isa, x + (size_t)r * c, NULL, j->mu, j->k1, j->k2, j->k3,
                  z + (size_t)r * c, c);
    pc_maxpool2d_image_isa(j->isa, p, z, bj->y + out, bj->am_out + out, p->w);
}

/* The pooled gradient's view of one input cell: g = am[ch] == cell ? dy[ch] + zero : 0, the
 * value maxpool backward writes there (zero = +0 where it adds into a zeroed dx, -0 where it
 * copies: dy + -0 == dy bit for bit). A cell no window covers gets cell = -2 (never matched). */
typedef struct {
    const float *dy;
    const int32_t *am;
    int32_t cell;
} pool_cell;

/* The cells of rows r, r+1, ... in order: the position is stepped, not divided, per row. */
typedef struct {
    const bnpool_job *bj;
    int n, hh, ww;
} cell_walk;

static void walk_start(cell_walk *w, const bnpool_job *bj, size_t r)
{
    const pc_pool_shape *p = bj->p;
    const size_t cells = (size_t)p->h * p->w;
    w->bj = bj;
    w->n = (int)(r / cells);
    const int cell = (int)(r - (size_t)w->n * cells);
    w->hh = cell / p->w;
    w->ww = cell - w->hh * p->w;
}

static pool_cell walk_next(cell_walk *w)
{
    const bnpool_job *bj = w->bj;
    const pc_pool_shape *p = bj->p;
    const int oh = (w->hh + p->pt) / p->sh, ow = (w->ww + p->pl) / p->sw;
    const size_t img = (size_t)w->n * p->oh * p->ow;
    pool_cell pc;
    if (oh < p->oh && ow < p->ow) {
        const size_t o = (img + (size_t)oh * p->ow + ow) * p->c;
        pc = (pool_cell){bj->dyp + o, bj->am + o, w->hh * p->w + w->ww};
    } else {
        pc = (pool_cell){bj->dyp + img * p->c, bj->am + img * p->c, -2};
    }
    if (++w->ww == p->w) {
        w->ww = 0;
        if (++w->hh == p->h) {
            w->hh = 0;
            w->n++;
        }
    }
    return pc;
}

/* (dy loaded unconditionally: a select, vectorised) */
static inline float pool_g(float dv, int32_t av, int32_t cell)
{
    uint32_t bits;
    memcpy(&bits, &dv, sizeof bits);
    bits &= -(uint32_t)(av == cell);      /* dv, or +0 */
    float g;
    memcpy(&g, &bits, sizeof g);
    return g;
}
#define POOL_G(d, a, cl, ch) pool_g((d)[ch] + zero, (a)[ch], cl)

/* grad_sums_row4 with the four rows' gradients read through the pooled gradient */
PC_SIMD_LOOP void pool_sums4_body(const float *restrict x, size_t row, const float *restrict d0,
                                  const float *restrict d1, const float *restrict d2, const float *restrict d3,
                                  const int32_t *restrict a0, const int32_t *restrict a1, const int32_t *restrict a2,
                                  const int32_t *restrict a3, int32_t c0, int32_t c1, int32_t c2,
                                  int32_t c3, float zero, const float *restrict mu,
                                  double *restrict s, double *restrict q, int c)
{
    for (int ch = 0; ch < c; ch++) {
        const double m = mu[ch];
        const double g0 = POOL_G(d0, a0, c0, ch), g1 = POOL_G(d1, a1, c1, ch);
        const double g2 = POOL_G(d2, a2, c2, ch), g3 = POOL_G(d3, a3, c3, ch);
        s[ch] = (((s[ch] + g0) + g1) + g2) + g3;
        q[ch] = (((q[ch] + g0 * ((double)x[ch] - m)) + g1 * ((double)x[row + ch] - m)) +
                 g2 * ((double)x[2 * row + ch] - m)) + g3 * ((double)x[3 * row + ch] - m);
    }
}
PC_SIMD_VARIANTS(pool_sums4, (const float *restrict x, size_t row, const float *restrict d0,
                              const float *restrict d1, const float *restrict d2, const float *restrict d3,
                              const int32_t *restrict a0, const int32_t *restrict a1, const int32_t *restrict a2,
                              const int32_t *restrict a3, int32_t c0, int32_t c1, int32_t c2, int32_t c3,
                              float zero, const float *restrict mu, double *restrict s,
                              double *restrict q, int c),
                 (x, row, d0, d1, d2, d3, a0, a1, a2, a3, c0, c1, c2, c3, zero, mu, s, q, c))

/* grad_sums_row through the pooled gradient */
PC_SIMD_LOOP void pool_sums1_body(const float *restrict x, const float *restrict d0, const int32_t *restrict a0,
                                  int32_t c0, float zero, const float *restrict mu,
                                  double *restrict s, double *restrict q, int c)
{
    for (int ch = 0; ch < c; ch++) {
        const double g = POOL_G(d0, a0, c0, ch);
        s[ch] += g;
        q[ch] += g * ((double)x[ch] - (double)mu[ch]);
    }
}
PC_SIMD_VARIANTS(pool_sums1, (const float *restrict x, const float *restrict d0, const int32_t *restrict a0,
                              int32_t c0, float zero, const float *restrict mu,
                              double *restrict s, double *restrict q, int c),
                 (x, d0, a0, c0, zero, mu, s, q, c))

/* apply_row (dy given) through the pooled gradient, then with relu the mask x > 0 */
PC_SIMD_LOOP void pool_apply1_body(const float *restrict x, const float *restrict d0, const int32_t *restrict a0,
                                   int32_t c0, float zero, int relu, const float *restrict mu,
                                   const float *restrict k1, const float *restrict k2,
                                   const float *restrict k3, float *restrict out, int c)
{
    if (relu)
        for (int ch = 0; ch < c; ch++) {
            const float v = k1[ch] * POOL_G(d0, a0, c0, ch) + k2[ch] * (x[ch] - mu[ch]) + k3[ch];
            out[ch] = x[ch] > 0.0f ? v : 0.0f;
        }
    else
        for (int ch = 0; ch < c; ch++)
            out[ch] = k1[ch] * POOL_G(d0, a0, c0, ch) + k2[ch] * (x[ch] - mu[ch]) + k3[ch];
}
PC_SIMD_VARIANTS(pool_apply1, (const float *restrict x, const float *restrict d0, const int32_t *restrict a0,
                               int32_t c0, float zero, int relu, const float *restrict mu,
                               const float *restrict k1, const float *restrict k2,
                               const float *restrict k3, float *restrict out, int c),
                 (x, d0, a0, c0, zero, relu, mu, k1, k2, k3, out, c))

static void bnpool_sums_task(void *ctx, int task, int thread)
{
    (void)thread;
    const bnpool_job *bj = ctx;
    const bn_job *j = &bj->bn;
    const int c = j->s->c;
    const int r0 = task * j->rows_per;
    const int r1 = r0 + j->rows_per < j->s->a ? r0 + j->rows_per : j->s->a;
    const float zero = bj->add0 ? 0.0f : -0.0f;
    double *s = j->partial + (size_t)task * 2 * c, *q = s + c;
    for (int ch = 0; ch < c; ch++)
        s[ch] = q[ch] = 0.0;
    cell_walk w;
    walk_start(&w, bj, (size_t)r0);
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const pool_cell p0 = walk_next(&w), p1 = walk_next(&w), p2 = walk_next(&w);
        const pool_cell p3 = walk_next(&w);
        pool_sums4(j->isa, j->x + (size_t)r * c, (size_t)c, p0.dy, p1.dy, p2.dy, p3.dy, p0.am,
                   p1.am, p2.am, p3.am, p0.cell, p1.cell, p2.cell, p3.cell, zero, j->mu, s, q,
                   c);
    }
    for (; r < r1; r++) {
        const pool_cell p0 = walk_next(&w);
        pool_sums1(j->isa, j->x + (size_t)r * c, p0.dy, p0.am, p0.cell, zero, j->mu, s, q, c);
    }
}

static void bnpool_apply_task(void *ctx, int task, int thread)
{
    (void)thread;
    const bnpool_job *bj = ctx;
    const bn_job *j = &bj->bn;
    const int c = j->s->c;
    const int r0 = task * j->rows_per;
    const int r1 = r0 + j->rows_per < j->s->a ? r0 + j->rows_per : j->s->a;
    const float zero = bj->add0 ? 0.0f : -0.0f;
    cell_walk w;
    walk_start(&w, bj, (size_t)r0);
    for (int r = r0; r < r1; r++) {
        const pool_cell p0 = walk_next(&w);
        pool_apply1(j->isa, j->x + (size_t)r * c, p0.dy, p0.am, p0.cell, zero, bj->relu, j->mu,
                    j->k1, j->k2, j->k3, j->out + (size_t)r * c, c);
    }
}

static int bnpool_check(const pc_pool_shape *p, pc_norm_shape *s)
{
    if (p->n <= 0 || p->h <= 0 || p->w <= 0 || p->c <= 0 || p->oh <= 0 || p->ow <= 0 ||
        p->ph <= 0 || p->pw <= 0 || p->sh != p->ph || p->sw != p->pw || p->pt < 0 ||
        p->pl < 0 || p->pt >= p->ph || p->pl >= p->pw ||
        (long long)p->h * p->w * p->n > 0x7fffffffLL)
        return PC_EINVAL;
    *s = (pc_norm_shape){.a = p->n * p->h * p->w, .c = p->c, .b = 1};
    return PC_OK;
}

int pc_batchnorm_maxpool_forward(pc_runtime *rt, const pc_pool_shape *p, const float *x,
                                 float *mean, float *var, const float *gamma, const float *beta,
                                 float eps, int batch_stats, float *y, int32_t *argmax)
{
    pc_norm_shape s;
    bnpool_job bj = {.p = p, .y = y, .am_out = argmax, .rt = rt};
    int tasks, rc;
    float *coef;
    if ((rc = bnpool_check(p, &s)) || (rc = bn_setup(rt, &s, x, NULL, NULL, &bj.bn, &tasks,
                                                     &coef)) ||
        (rc = forward_coefficients(rt, &s, &bj.bn, tasks, coef, x, mean, var, gamma, beta, eps,
                                   batch_stats)) ||
        (rc = pc_parallel(rt, p->n, bnpool_forward_task, &bj)))
        return rc;
    return bj.failed ? PC_ENOMEM : PC_OK;
}

int pc_batchnorm_maxpool_backward(pc_runtime *rt, const pc_pool_shape *p, const float *x,
                                  const float *mean, const float *var, const float *gamma,
                                  float eps, int batch_stats, const float *dy,
                                  const int32_t *argmax, int relu, float *dx, float *dgamma,
                                  float *dbeta)
{
    pc_norm_shape s;
    bnpool_job bj = {.p = p, .dyp = dy, .am = argmax, .relu = relu, .add0 = !pool_tiled(p),
                     .rt = rt};
    int tasks, rc;
    float *coef;
    if ((rc = bnpool_check(p, &s)) || (rc = bn_setup(rt, &s, x, NULL, dx, &bj.bn, &tasks,
                                                     &coef)) ||
        (rc = backward_coefficients(rt, &s, &bj.bn, tasks, coef, mean, var, gamma, eps,
                                    batch_stats, dx != NULL, dgamma, dbeta, bnpool_sums_task,
                                    &bj)))
        return rc;
    if (bj.failed)
        return PC_ENOMEM;
    if (dx && (rc = pc_parallel(rt, tasks, bnpool_apply_task, &bj)))
        return rc;
    return bj.failed ? PC_ENOMEM : PC_OK;
}

/* ---- layer normalization ------------------------------------------------------------------- */

typedef struct {
    const float *x, *dy, *gamma, *beta;
    const float *mean_in, *inv_in;
    float *y, *mean, *inv, *dx;
    double *partial;        /* [task][2][d]: dgamma, dbeta */
    int rows, d, rms, rows_per;
    float eps;
} ln_job;

static void ln_forward_task(void *ctx, int task, int thread)
{
    (void)thread;
    const ln_job *j = ctx;
    const int d = j->d, r0 = task * j->rows_per;
    const int r1 = r0 + j->rows_per < j->rows ? r0 + j->rows_per : j->rows;
    for (int r = r0; r < r1; r++) {
        const float *x = j->x + (size_t)r * d;
        float *y = j->y + (size_t)r * d;
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < d; i++)
            sum += x[i];
        const double mean = sum / d;
        for (int i = 0; i < d; i++)
            sq += ((double)x[i] - mean) * ((double)x[i] - mean);
        const double inv = 1.0 / sqrt(sq / d + j->eps);
        const float mf = (float)mean, inf = (float)inv;
        j->mean[r] = mf;
        j->inv[r] = inf;
        const float *g = j->gamma, *b = j->beta;
        if (j->rms) {
            for (int i = 0; i < d; i++)
                y[i] = x[i] * inf * (g ? g[i] : 1.0f);
        } else {
            for (int i = 0; i < d; i++)
                y[i] = (x[i] - mf) * inf * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
        }
    }
}

static void ln_backward_task(void *ctx, int task, int thread)
{
    (void)thread;
    const ln_job *j = ctx;
    const int d = j->d, r0 = task * j->rows_per;
    const int r1 = r0 + j->rows_per < j->rows ? r0 + j->rows_per : j->rows;
    double *pg = j->partial ? j->partial + (size_t)task * 2 * d : NULL, *pb = pg ? pg + d : NULL;
    if (pg)
        for (int i = 0; i < 2 * d; i++)
            pg[i] = 0.0;
    const float *g = j->gamma;
    for (int r = r0; r < r1; r++) {
        const float *x = j->x + (size_t)r * d, *dy = j->dy + (size_t)r * d;
        const double mean = j->mean_in[r], inv = j->inv_in[r];
        if (pg) {
            for (int i = 0; i < d; i++) {
                const double xh = j->rms ? (double)x[i] * inv : ((double)x[i] - mean) * inv;
                pg[i] += (double)dy[i] * xh;
                pb[i] += dy[i];
            }
        }
        if (!j->dx)
            continue;
        float *dx = j->dx + (size_t)r * d;
        if (j->rms) {
            /* y = x inv g: dx = inv g dy - inv^3 (x - mean) / d * sum(g dy x) */
            double c = 0.0;
            for (int i = 0; i < d; i++)
                c += (g ? g[i] : 1.0) * dy[i] * x[i];
            const double k = inv * inv * inv * c / d;
            for (int i = 0; i < d; i++)
                dx[i] = (float)(inv * (g ? g[i] : 1.0) * dy[i] - k * ((double)x[i] - mean));
        } else {
            /* dx = inv (gdy - mean(gdy) - xhat mean(gdy xhat)) */
            double a = 0.0, bsum = 0.0;
            for (int i = 0; i < d; i++) {
                const double gd = (g ? g[i] : 1.0) * dy[i];
                a += gd;
                bsum += gd * ((double)x[i] - mean) * inv;
            }
            a /= d;
            bsum /= d;
            for (int i = 0; i < d; i++) {
                const double gd = (g ? g[i] : 1.0) * dy[i];
                const double xh = ((double)x[i] - mean) * inv;
                dx[i] = (float)(inv * (gd - a - xh * bsum));
            }
        }
    }
}

static int ln_tasks(int rows, int d, int *rows_per)
{
    *rows_per = d >= BLOCK ? 1 : BLOCK / d;
    return (int)(((size_t)rows + *rows_per - 1) / *rows_per);
}

int pc_layernorm_forward(pc_runtime *rt, const float *x, int rows, int d, const float *gamma,
                         const float *beta, float eps, int rms, float *y, float *mean,
                         float *inv)
{
    if (rows <= 0 || d <= 0)
        return PC_EINVAL;
    int rows_per;
    const int tasks = ln_tasks(rows, d, &rows_per);
    ln_job j = {.x = x, .gamma = gamma, .beta = rms ? NULL : beta, .y = y, .mean = mean,
                .inv = inv, .rows = rows, .d = d, .rms = rms, .rows_per = rows_per, .eps = eps};
    return pc_parallel(rt, tasks, ln_forward_task, &j);
}

int pc_layernorm_backward(pc_runtime *rt, const float *x, int rows, int d, const float *gamma,
                          const float *mean, const float *inv, int rms, const float *dy,
                          float *dx, float *dgamma, float *dbeta)
{
    if (rows <= 0 || d <= 0)
        return PC_EINVAL;
    int rows_per, rc;
    const int tasks = ln_tasks(rows, d, &rows_per);
    double *partial = NULL;
    if (dgamma || dbeta) {
        float *buf = pc_shared_scratch(rt, PC_SHARED_SLOT_PARTIAL, (size_t)tasks * 2 * d * 2);
        if (!buf)
            return PC_ENOMEM;
        partial = (double *)(void *)buf;
    }
    ln_job j = {.x = x, .dy = dy, .gamma = gamma, .mean_in = mean, .inv_in = inv, .dx = dx,
                .partial = partial, .rows = rows, .d = d, .rms = rms, .rows_per = rows_per};
    if ((rc = pc_parallel(rt, tasks, ln_backward_task, &j)))
        return rc;
    if (partial) {
        combine(partial, tasks, d);
        for (int i = 0; i < d; i++) {
            if (dgamma)
                dgamma[i] = (float)partial[i];
            if (dbeta)
                dbeta[i] = (float)partial[d + i];
        }
    }
    return PC_OK;
}
