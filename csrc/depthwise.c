/*
 * depthwise.c - depthwise 2-D convolution (each input channel convolved with its own
 * depth_multiplier filters), NHWC, a direct kernel vectorised along the channels.
 *
 *   y[n][oh][ow][c*DM + m] = act(b[c*DM + m] + sum_{i,j} x[n][oh*sh + i*dh - pt][ow*sw + j*dw - pl][c]
 *                                                          * w[i][j][c][m])
 *
 * In NHWC a pixel's channels are contiguous, and so are a tap's weights w[i][j][:][:]: every
 * tap of every output pixel is one multiply-add of two contiguous rows of C*DM floats into the
 * pixel's output row, which the compiler turns into full-width vector FMAs (PC_MULTIVERSION).
 * There is no GEMM here: each input value is used KH*KW*DM times only, so the kernel is bound
 * by memory traffic (x and y each read or written once), not by arithmetic.
 *
 * Forward: one task per image. Backward: the output gradient (masked by the fused relu's output
 * row by row, in a thread-local row) flows to dx (each image by the task that owns it) and to dw
 * and db, summed over images in LANES fixed lanes (image i in lane i % LANES) and the lanes added
 * in order: bit-identical for any thread count.
 */
#include "pycnn.h"

#include <string.h>

#define LANES 8

typedef struct {
    pc_runtime *rt;
    const pc_dw_shape *s;
    const float *x, *w, *b, *dy, *y;
    float *out, *dx;
    float *partial;        /* LANES x (wsize + co) */
    size_t wsize;
    int relu;
    int failed;
} dw_job;

/* acc[c*dm + m] += x[c] * w[c*dm + m] */
PC_MULTIVERSION
static void tap_forward(float *restrict acc, const float *restrict x, const float *restrict w,
                        int c, int dm)
{
    if (dm == 1) {
        for (int i = 0; i < c; i++)
            acc[i] += x[i] * w[i];
        return;
    }
    for (int i = 0; i < c; i++)
        for (int m = 0; m < dm; m++)
            acc[i * dm + m] += x[i] * w[i * dm + m];
}

/* dw[c*dm+m] += x[c] * g[c*dm+m]; dx[c] += sum_m g[c*dm+m] * w[c*dm+m] (dx may be NULL) */
PC_MULTIVERSION
static void tap_backward(float *restrict dw, float *restrict dx, const float *restrict x,
                         const float *restrict g, const float *restrict w, int c, int dm)
{
    if (dm == 1) {
        if (dx)
            for (int i = 0; i < c; i++) {
                dw[i] += x[i] * g[i];
                dx[i] += g[i] * w[i];
            }
        else
            for (int i = 0; i < c; i++)
                dw[i] += x[i] * g[i];
        return;
    }
    for (int i = 0; i < c; i++) {
        float s = 0.0f;
        for (int m = 0; m < dm; m++) {
            dw[i * dm + m] += x[i] * g[i * dm + m];
            s += g[i * dm + m] * w[i * dm + m];
        }
        if (dx)
            dx[i] += s;
    }
}

PC_MULTIVERSION
static void row_init(float *restrict acc, const float *restrict b, int n)
{
    if (b)
        for (int i = 0; i < n; i++)
            acc[i] = b[i];
    else
        for (int i = 0; i < n; i++)
            acc[i] = 0.0f;
}

PC_MULTIVERSION
static void row_relu(float *restrict acc, int n)
{
    for (int i = 0; i < n; i++)
        acc[i] = acc[i] > 0.0f ? acc[i] : 0.0f;
}

/* g = dy where y > 0, else 0; db += g */
PC_MULTIVERSION
static void row_grad(float *restrict g, const float *restrict dy, const float *restrict y,
                     float *restrict db, int n)
{
    if (y)
        for (int i = 0; i < n; i++) {
            const float d = dy[i];
            g[i] = y[i] > 0.0f ? d : 0.0f;
        }
    else
        for (int i = 0; i < n; i++)
            g[i] = dy[i];
    for (int i = 0; i < n; i++)
        db[i] += g[i];
}

static void forward_task(void *ctx, int n, int thread)
{
    (void)thread;
    dw_job *j = ctx;
    const pc_dw_shape *s = j->s;
    const int C = s->c, CO = C * s->dm;
    const float *xn = j->x + (size_t)n * s->h * s->w * C;
    float *acc = j->out + (size_t)n * s->oh * s->ow * CO;
    for (int oh = 0; oh < s->oh; oh++) {
        for (int ow = 0; ow < s->ow; ow++, acc += CO) {
            row_init(acc, j->b, CO);
            for (int i = 0; i < s->kh; i++) {
                const int ih = oh * s->sh + i * s->dh - s->pt;
                if (ih < 0 || ih >= s->h)
                    continue;
                for (int jj = 0; jj < s->kw; jj++) {
                    const int iw = ow * s->sw + jj * s->dw - s->pl;
                    if (iw < 0 || iw >= s->w)
                        continue;
                    tap_forward(acc, xn + ((size_t)ih * s->w + iw) * C,
                                j->w + ((size_t)i * s->kw + jj) * CO, C, s->dm);
                }
            }
            if (j->relu)
                row_relu(acc, CO);
        }
    }
}

static void backward_task(void *ctx, int lane, int thread)
{
    dw_job *j = ctx;
    const pc_dw_shape *s = j->s;
    const int C = s->c, CO = C * s->dm;
    float *dw = j->partial + (size_t)lane * (j->wsize + CO);
    float *db = dw + j->wsize;
    memset(dw, 0, (j->wsize + CO) * sizeof(float));
    float *g = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_GRAD, (size_t)CO);
    if (!g) {
        j->failed = 1;
        return;
    }
    const size_t ximg = (size_t)s->h * s->w * C, yimg = (size_t)s->oh * s->ow * CO;
    for (int n = lane; n < s->n; n += LANES) {
        const float *xn = j->x + (size_t)n * ximg;
        float *dxn = j->dx ? j->dx + (size_t)n * ximg : NULL;
        if (dxn)
            memset(dxn, 0, ximg * sizeof(float));
        const float *dyp = j->dy + (size_t)n * yimg;
        const float *yp = j->y ? j->y + (size_t)n * yimg : NULL;
        for (int oh = 0; oh < s->oh; oh++) {
            for (int ow = 0; ow < s->ow; ow++, dyp += CO, yp = yp ? yp + CO : NULL) {
                row_grad(g, dyp, yp, db, CO);
                for (int i = 0; i < s->kh; i++) {
                    const int ih = oh * s->sh + i * s->dh - s->pt;
                    if (ih < 0 || ih >= s->h)
                        continue;
                    for (int jj = 0; jj < s->kw; jj++) {
                        const int iw = ow * s->sw + jj * s->dw - s->pl;
                        if (iw < 0 || iw >= s->w)
                            continue;
                        const size_t at = ((size_t)ih * s->w + iw) * C;
                        const size_t t = ((size_t)i * s->kw + jj) * CO;
                        tap_backward(dw + t, dxn ? dxn + at : NULL, xn + at, g, j->w + t, C,
                                     s->dm);
                    }
                }
            }
        }
    }
}

static int check(const pc_dw_shape *s)
{
    return s->n > 0 && s->c > 0 && s->dm > 0 && s->kh > 0 && s->kw > 0 && s->oh > 0 &&
           s->ow > 0 && s->sh > 0 && s->sw > 0 && s->dh > 0 && s->dw > 0 && s->pt >= 0 &&
           s->pl >= 0;
}

int pc_depthwise_forward(pc_runtime *rt, const pc_dw_shape *s, const float *x, const float *w,
                         const float *b, float *y, pc_act act)
{
    if (!check(s) || (act != PC_ACT_LINEAR && act != PC_ACT_RELU))
        return PC_EINVAL;
    dw_job j = {.rt = rt, .s = s, .x = x, .w = w, .b = b, .out = y, .relu = act == PC_ACT_RELU};
    pc_parallel(rt, s->n, forward_task, &j);
    return PC_OK;
}

int pc_depthwise_backward(pc_runtime *rt, const pc_dw_shape *s, const float *x, const float *w,
                          const float *y, const float *dy, float *dx, float *dw, float *db)
{
    if (!check(s))
        return PC_EINVAL;
    const int CO = s->c * s->dm;
    const size_t wsize = (size_t)s->kh * s->kw * CO, total = wsize + CO;
    float *partial = pc_shared_scratch(rt, PC_SHARED_SLOT_PARTIAL, (size_t)LANES * total);
    if (!partial)
        return PC_ENOMEM;
    dw_job j = {.rt = rt, .s = s, .x = x, .w = w, .y = y, .dy = dy, .dx = dx,
                .partial = partial, .wsize = wsize};
    const int lanes = s->n < LANES ? s->n : LANES;
    pc_parallel(rt, lanes, backward_task, &j);
    if (j.failed)
        return PC_ENOMEM;
    for (size_t e = 0; e < total; e++) {       /* the lanes, added in order */
        float acc = partial[e];
        for (int l = 1; l < lanes; l++)
            acc += partial[(size_t)l * total + e];
        if (e < wsize)
            dw[e] = acc;
        else if (db)
            db[e - wsize] = acc;
    }
    return PC_OK;
}
