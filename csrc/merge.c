/* merge.c - the elementwise merge layers (add, subtract, multiply, average, maximum, minimum)
 * and concatenation, forward and backward (shapes: pc_merge_shape in pycnn.h).
 *
 * Inputs of y's shape take the fast path: fixed blocks of BLOCK elements, plain loops the
 * compiler vectorises. Inputs broadcast along some axes (size 1 where y is larger) take the
 * general path: tasks of whole samples (the batch axis is never broadcast), rows of the last
 * axis in order, and each broadcast input's gradient summed over its copies in that order.
 * Task boundaries depend on the sizes only: results are bit-identical for any thread count. */
#include "pycnn.h"

#include <stdatomic.h>
#include <string.h>

#define BLOCK 16384

typedef struct {
    pc_runtime *rt;
    pc_merge_op op;
    const pc_merge_shape *s;
    const float *const *xs;
    const float *dy;
    float *y;
    float *const *dxs;
    size_t size, inner;     /* y's elements; elements per sample */
    int per_task;           /* samples per task (general path) */
    atomic_int failed;
} merge_job;

/* ---- the fast path: every input has y's shape ---------------------------------------------- */

PC_SIMD_LOOP void add_into_body(float *restrict y, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}
PC_SIMD_VARIANTS(add_into, (float *restrict y, const float *restrict x, size_t n), (y, x, n))

PC_SIMD_LOOP void sum2_body(float *restrict y, const float *restrict a, const float *restrict b,
                            size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}
PC_SIMD_VARIANTS(sum2, (float *restrict y, const float *restrict a, const float *restrict b,
                        size_t n),
                 (y, a, b, n))

PC_SIMD_LOOP void sub2_body(float *restrict y, const float *restrict a, const float *restrict b,
                            size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] - b[i];
}
PC_SIMD_VARIANTS(sub2, (float *restrict y, const float *restrict a, const float *restrict b,
                        size_t n),
                 (y, a, b, n))

PC_SIMD_LOOP void mul2_body(float *restrict y, const float *restrict a, const float *restrict b,
                            size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}
PC_SIMD_VARIANTS(mul2, (float *restrict y, const float *restrict a, const float *restrict b,
                        size_t n),
                 (y, a, b, n))

PC_SIMD_LOOP void mul_into_body(float *restrict y, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] *= x[i];
}
PC_SIMD_VARIANTS(mul_into, (float *restrict y, const float *restrict x, size_t n), (y, x, n))

PC_SIMD_LOOP void div_by_body(float *restrict y, float d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] /= d;
}
PC_SIMD_VARIANTS(div_by, (float *restrict y, float d, size_t n), (y, d, n))

PC_SIMD_LOOP void div_to_body(float *restrict y, const float *restrict x, float d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] / d;
}
PC_SIMD_VARIANTS(div_to, (float *restrict y, const float *restrict x, float d, size_t n),
                 (y, x, d, n))

PC_SIMD_LOOP void negate_body(float *restrict y, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = -x[i];
}
PC_SIMD_VARIANTS(negate, (float *restrict y, const float *restrict x, size_t n), (y, x, n))

/* One pairwise step of maximum (minimum): the running value o against x. The value propagates
 * NaN; the gradient mask is TensorFlow's (o >= x: the running value keeps the gradient, else x
 * takes it), so of tied inputs the first one gets it. */
static inline int keeps(pc_merge_op op, float o, float x)
{
    return op == PC_MERGE_MAXIMUM ? o >= x : o <= x;
}

static inline float combine(pc_merge_op op, float o, float x)
{
    switch (op) {
    case PC_MERGE_ADD:
    case PC_MERGE_AVERAGE:
        return o + x;
    case PC_MERGE_SUBTRACT:
        return o - x;
    case PC_MERGE_MULTIPLY:
        return o * x;
    default:
        return (keeps(op, o, x) || o != o) ? o : x;
    }
}

PC_SIMD_LOOP void max_step_body(float *restrict o, int32_t *restrict win, const float *restrict x,
                                int32_t k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const int keep = o[i] >= x[i];
        const int nan = o[i] != o[i];
        if (win)
            win[i] = keep ? win[i] : k;
        o[i] = (keep || nan) ? o[i] : x[i];
    }
}
PC_SIMD_VARIANTS(max_step, (float *restrict o, int32_t *restrict win, const float *restrict x,
                            int32_t k, size_t n),
                 (o, win, x, k, n))

PC_SIMD_LOOP void min_step_body(float *restrict o, int32_t *restrict win, const float *restrict x,
                                int32_t k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const int keep = o[i] <= x[i];
        const int nan = o[i] != o[i];
        if (win)
            win[i] = keep ? win[i] : k;
        o[i] = (keep || nan) ? o[i] : x[i];
    }
}
PC_SIMD_VARIANTS(min_step, (float *restrict o, int32_t *restrict win, const float *restrict x,
                            int32_t k, size_t n),
                 (o, win, x, k, n))

PC_SIMD_LOOP void select_winner_body(float *restrict dx, const float *restrict dy,
                                     const int32_t *restrict win, int32_t k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = win[i] == k ? dy[i] : 0.0f;
}
PC_SIMD_VARIANTS(select_winner, (float *restrict dx, const float *restrict dy,
                                 const int32_t *restrict win, int32_t k, size_t n),
                 (dx, dy, win, k, n))

/* y[lo, lo + n) from the inputs (o: y itself, or scratch for the backward's winners) */
static void extreme_range(pc_merge_op op, const merge_job *j, size_t lo, size_t n, float *o,
                          int32_t *win)
{
    const int k = j->s->k;
    const pc_isa isa = pc_loop_isa(j->rt);
    memcpy(o, j->xs[0] + lo, n * sizeof(float));
    if (win)
        memset(win, 0, n * sizeof(int32_t));
    for (int i = 1; i < k; i++) {
        if (op == PC_MERGE_MAXIMUM)
            max_step(isa, o, win, j->xs[i] + lo, i, n);
        else
            min_step(isa, o, win, j->xs[i] + lo, i, n);
    }
}

static void fast_forward(merge_job *j, size_t lo, size_t n)
{
    const int k = j->s->k;
    const pc_isa isa = pc_loop_isa(j->rt);
    float *y = j->y + lo;
    const float *const *xs = j->xs;
    switch (j->op) {
    case PC_MERGE_ADD:
    case PC_MERGE_AVERAGE:
        if (k == 1)
            memcpy(y, xs[0] + lo, n * sizeof(float));
        else
            sum2(isa, y, xs[0] + lo, xs[1] + lo, n);
        for (int i = 2; i < k; i++)
            add_into(isa, y, xs[i] + lo, n);
        if (j->op == PC_MERGE_AVERAGE)
            div_by(isa, y, (float)k, n);
        break;
    case PC_MERGE_SUBTRACT:
        sub2(isa, y, xs[0] + lo, xs[1] + lo, n);
        break;
    case PC_MERGE_MULTIPLY:
        if (k == 1)
            memcpy(y, xs[0] + lo, n * sizeof(float));
        else
            mul2(isa, y, xs[0] + lo, xs[1] + lo, n);
        for (int i = 2; i < k; i++)
            mul_into(isa, y, xs[i] + lo, n);
        break;
    default:
        extreme_range(j->op, j, lo, n, y, NULL);
    }
}

static void fast_backward(merge_job *j, size_t lo, size_t n, int thread)
{
    const int k = j->s->k;
    const pc_isa isa = pc_loop_isa(j->rt);
    const float *dy = j->dy + lo;
    switch (j->op) {
    case PC_MERGE_ADD:
    case PC_MERGE_SUBTRACT:
    case PC_MERGE_AVERAGE:
        for (int i = 0; i < k; i++) {
            if (!j->dxs[i])
                continue;
            float *dx = j->dxs[i] + lo;
            if (j->op == PC_MERGE_AVERAGE)
                div_to(isa, dx, dy, (float)k, n);
            else if (j->op == PC_MERGE_SUBTRACT && i == 1)
                negate(isa, dx, dy, n);
            else
                memcpy(dx, dy, n * sizeof(float));
        }
        break;
    case PC_MERGE_MULTIPLY:
        /* dy times the product of the other inputs, in input order */
        for (int i = 0; i < k; i++) {
            if (!j->dxs[i])
                continue;
            float *dx = j->dxs[i] + lo;
            memcpy(dx, dy, n * sizeof(float));
            for (int m = 0; m < k; m++)
                if (m != i)
                    mul_into(isa, dx, j->xs[m] + lo, n);
        }
        break;
    default: {
        float *o = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK, 2 * (size_t)BLOCK);
        if (!o) {
            atomic_store(&j->failed, 1);
            return;
        }
        int32_t *win = (int32_t *)(o + BLOCK);
        extreme_range(j->op, j, lo, n, o, win);
        for (int i = 0; i < k; i++)
            if (j->dxs[i])
                select_winner(isa, j->dxs[i] + lo, dy, win, i, n);
    }
    }
}

/* ---- the general path: broadcast inputs ---------------------------------------------------- */

/* Per-thread scratch for the general path: strides[k][rank], then room for the inputs'
 * row offsets[k] and last-axis strides[k]. */
static ptrdiff_t *general_scratch(merge_job *j, int thread)
{
    const pc_merge_shape *s = j->s;
    const size_t words = (size_t)s->k * (s->rank + 2);
    float *buf = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK,
                                   words * (sizeof(ptrdiff_t) / sizeof(float)));
    if (!buf) {
        atomic_store(&j->failed, 1);
        return NULL;
    }
    ptrdiff_t *st = (ptrdiff_t *)buf;
    for (int i = 0; i < s->k; i++) {
        const int *d = s->in_dims + (size_t)i * s->rank;
        ptrdiff_t stride = 1;
        for (int a = s->rank - 1; a >= 0; a--) {
            st[(size_t)i * s->rank + a] = d[a] == 1 ? 0 : stride;
            stride *= d[a];
        }
    }
    return st;
}

static inline float input_at(const merge_job *j, const ptrdiff_t *off, const ptrdiff_t *last,
                             int i, int t)
{
    return j->xs[i][off[i] + t * last[i]];
}

/* Runs the samples [n0, n1) of the general path. */
static void general_task(merge_job *j, int n0, int n1, int thread, int backward)
{
    const pc_merge_shape *s = j->s;
    const int k = s->k, r = s->rank, L = r > 1 ? s->dims[r - 1] : 1;
    ptrdiff_t *st = general_scratch(j, thread);
    if (!st)
        return;
    ptrdiff_t *off = st + (size_t)k * r, *last = off + k;
    /* the last axis' stride of every input (0 or 1) */
    for (int i = 0; i < k; i++)
        last[i] = r > 1 ? st[(size_t)i * r + r - 1] : 0;
    const size_t rows = r > 1 ? j->inner / (size_t)L : 1;
    if (backward) {
        for (int i = 0; i < k; i++) {
            if (!j->dxs[i])
                continue;
            size_t in_inner = 1;
            for (int a = 1; a < r; a++)
                in_inner *= (size_t)s->in_dims[(size_t)i * r + a];
            memset(j->dxs[i] + (size_t)n0 * in_inner, 0,
                   (size_t)(n1 - n0) * in_inner * sizeof(float));
        }
    }
    int idx[PC_MERGE_MAX_RANK];
    for (int n = n0; n < n1; n++) {
        for (int a = 0; a < r; a++)
            idx[a] = 0;
        idx[0] = n;
        for (size_t row = 0; row < rows; row++) {
            for (int i = 0; i < k; i++) {
                ptrdiff_t o = 0;
                for (int a = 0; a < r - 1; a++)
                    o += idx[a] * st[(size_t)i * r + a];
                off[i] = o;
            }
            const size_t yo = ((size_t)n * rows + row) * (size_t)L;
            for (int t = 0; t < L; t++) {
                if (!backward) {
                    float o = input_at(j, off, last, 0, t);
                    for (int i = 1; i < k; i++)
                        o = combine(j->op, o, input_at(j, off, last, i, t));
                    j->y[yo + t] = j->op == PC_MERGE_AVERAGE ? o / (float)k : o;
                    continue;
                }
                const float g = j->dy[yo + t];
                if (j->op == PC_MERGE_MAXIMUM || j->op == PC_MERGE_MINIMUM) {
                    float o = input_at(j, off, last, 0, t);
                    int w = 0;
                    for (int i = 1; i < k; i++) {
                        const float x = input_at(j, off, last, i, t);
                        w = keeps(j->op, o, x) ? w : i;
                        o = combine(j->op, o, x);
                    }
                    if (j->dxs[w])
                        j->dxs[w][off[w] + t * last[w]] += g;
                    continue;
                }
                for (int i = 0; i < k; i++) {
                    if (!j->dxs[i])
                        continue;
                    float v = g;
                    if (j->op == PC_MERGE_AVERAGE)
                        v = g / (float)k;
                    else if (j->op == PC_MERGE_SUBTRACT && i == 1)
                        v = -g;
                    else if (j->op == PC_MERGE_MULTIPLY)
                        for (int m = 0; m < k; m++)
                            if (m != i)
                                v *= input_at(j, off, last, m, t);
                    j->dxs[i][off[i] + t * last[i]] += v;
                }
            }
            /* next row: the multi-index over axes 1 .. r-2 */
            for (int a = r - 2; a >= 1; a--) {
                if (++idx[a] < s->dims[a])
                    break;
                idx[a] = 0;
            }
        }
    }
}

/* ---- driver -------------------------------------------------------------------------------- */

static int same_shapes(const pc_merge_shape *s)
{
    for (int i = 0; i < s->k; i++)
        for (int a = 0; a < s->rank; a++)
            if (s->in_dims[(size_t)i * s->rank + a] != s->dims[a])
                return 0;
    return 1;
}

static void fast_task(void *ctx, int task, int thread)
{
    merge_job *j = ctx;
    const size_t lo = (size_t)task * BLOCK, n = lo + BLOCK < j->size ? BLOCK : j->size - lo;
    if (j->dy)
        fast_backward(j, lo, n, thread);
    else
        fast_forward(j, lo, n);
}

static void general_entry(void *ctx, int task, int thread)
{
    merge_job *j = ctx;
    const int n0 = task * j->per_task;
    const int n1 = n0 + j->per_task < j->s->dims[0] ? n0 + j->per_task : j->s->dims[0];
    general_task(j, n0, n1, thread, j->dy != NULL);
}

static int run(pc_runtime *rt, merge_job *j)
{
    const pc_merge_shape *s = j->s;
    if (s->k < 1 || s->rank < 1 || s->rank > PC_MERGE_MAX_RANK ||
        (j->op == PC_MERGE_SUBTRACT && s->k != 2))
        return PC_EINVAL;
    size_t size = 1;
    for (int a = 0; a < s->rank; a++)
        size *= (size_t)s->dims[a];
    if (size == 0)
        return PC_OK;
    j->rt = rt;
    j->size = size;
    j->inner = size / (size_t)s->dims[0];
    atomic_init(&j->failed, 0);
    int rc;
    if (same_shapes(s)) {
        const size_t tasks = (size + BLOCK - 1) / BLOCK;
        if (tasks > 0x7fffffff)
            return PC_EINVAL;
        rc = pc_parallel(rt, (int)tasks, fast_task, j);
    } else {
        const size_t per = BLOCK / j->inner ? BLOCK / j->inner : 1;
        j->per_task = per > (size_t)s->dims[0] ? s->dims[0] : (int)per;
        const int tasks = (s->dims[0] + j->per_task - 1) / j->per_task;
        rc = pc_parallel(rt, tasks, general_entry, j);
    }
    if (rc)
        return rc;
    return atomic_load(&j->failed) ? PC_ENOMEM : PC_OK;
}

int pc_merge_forward(pc_runtime *rt, pc_merge_op op, const pc_merge_shape *s,
                     const float *const *xs, float *y)
{
    merge_job j = {.op = op, .s = s, .xs = xs, .y = y};
    return run(rt, &j);
}

int pc_merge_backward(pc_runtime *rt, pc_merge_op op, const pc_merge_shape *s,
                      const float *const *xs, const float *dy, float *const *dxs)
{
    merge_job j = {.op = op, .s = s, .xs = xs, .dy = dy, .dxs = dxs};
    return run(rt, &j);
}

/* ---- concatenation ---------------------------------------------------------------------------
 * Rows of y: outer rows of `total` floats, input i's part of `inner[i]` floats at its offset. */
typedef struct {
    int k;
    size_t outer, total, rows_per;
    const size_t *inner;
    const float *const *xs;
    float *y;
    const float *dy;
    float *const *dxs;
} concat_job;

static void concat_task(void *ctx, int task, int thread)
{
    (void)thread;
    const concat_job *j = ctx;
    const size_t r0 = (size_t)task * j->rows_per;
    const size_t r1 = r0 + j->rows_per < j->outer ? r0 + j->rows_per : j->outer;
    size_t off = 0;
    for (int i = 0; i < j->k; i++) {
        const size_t m = j->inner[i];
        for (size_t r = r0; r < r1; r++) {
            if (j->dy) {
                if (j->dxs[i])
                    pc_copy_floats(j->dxs[i] + r * m, j->dy + r * j->total + off, m);
            } else {
                pc_copy_floats(j->y + r * j->total + off, j->xs[i] + r * m, m);
            }
        }
        off += m;
    }
}

static int concat_run(pc_runtime *rt, concat_job *j)
{
    if (j->k < 1)
        return PC_EINVAL;
    j->total = 0;
    for (int i = 0; i < j->k; i++)
        j->total += j->inner[i];
    if (j->outer == 0 || j->total == 0)
        return PC_OK;
    j->rows_per = BLOCK / j->total ? BLOCK / j->total : 1;
    const size_t tasks = (j->outer + j->rows_per - 1) / j->rows_per;
    if (tasks > 0x7fffffff)
        return PC_EINVAL;
    return pc_parallel(rt, (int)tasks, concat_task, j);
}

int pc_concat_forward(pc_runtime *rt, int k, size_t outer, const size_t *inner,
                      const float *const *xs, float *y)
{
    concat_job j = {.k = k, .outer = outer, .inner = inner, .xs = xs, .y = y};
    return concat_run(rt, &j);
}

int pc_concat_backward(pc_runtime *rt, int k, size_t outer, const size_t *inner,
                       const float *dy, float *const *dxs)
{
    concat_job j = {.k = k, .outer = outer, .inner = inner, .dy = dy, .dxs = dxs};
    return concat_run(rt, &j);
}
