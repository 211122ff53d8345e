/* resample.c - upsampling (nearest, bilinear), zero padding and cropping (one shift kernel),
 * and axis permutation, with their gradients (see pycnn.h). Tasks are groups of rows or of
 * samples sized from the shapes alone; every sum runs in a fixed order, so the results are
 * bit-identical for any thread count. */
#include "pycnn.h"

#include <math.h>
#include <string.h>

#define BLOCK 16384

typedef struct {
    int n, h, w, c, sh, sw, oh, ow;
    int dt, dl;
    const float *x;
    float *y;
    size_t rows, per;       /* rows (or samples) of the task space; per task */
    pc_isa isa;             /* the loops' SIMD path */
} rs_job;

static size_t per_task(size_t work_per_unit)
{
    return work_per_unit && BLOCK / work_per_unit ? BLOCK / work_per_unit : 1;
}

static int launch(pc_runtime *rt, rs_job *j, size_t units, size_t work_per_unit, pc_task_fn fn)
{
    if (units == 0)
        return PC_OK;
    j->rows = units;
    j->per = per_task(work_per_unit);
    j->isa = pc_loop_isa(rt);
    const size_t tasks = (units + j->per - 1) / j->per;
    if (tasks > 0x7fffffff)
        return PC_EINVAL;
    return pc_parallel(rt, (int)tasks, fn, j);
}

static void task_range(const rs_job *j, int task, size_t *r0, size_t *r1)
{
    *r0 = (size_t)task * j->per;
    *r1 = *r0 + j->per < j->rows ? *r0 + j->per : j->rows;
}

static int bad_geometry(int n, int h, int w, int c, int sh, int sw)
{
    return n < 1 || h < 1 || w < 1 || c < 1 || sh < 1 || sw < 1 ||
           (long long)h * sh > 0x7fffffff || (long long)w * sw > 0x7fffffff;
}

/* ---- nearest ------------------------------------------------------------------------------- */

static void nearest_fwd_task(void *ctx, int task, int thread)
{
    (void)thread;
    const rs_job *j = ctx;
    const size_t C = (size_t)j->c, orow = (size_t)j->w * j->sw * C;
    size_t r0, r1;
    task_range(j, task, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {          /* input row r = n * h + i */
        const float *x = j->x + r * (size_t)j->w * C;
        float *y = j->y + r * (size_t)j->sh * orow;
        float *o = y;
        for (int col = 0; col < j->w; col++)
            for (int b = 0; b < j->sw; b++, o += C)
                pc_copy_floats(o, x + (size_t)col * C, C);
        for (int a = 1; a < j->sh; a++)
            memcpy(y + (size_t)a * orow, y, orow * sizeof(float));
    }
}

PC_SIMD_LOOP void add_floats_body(float *restrict d, const float *restrict s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] += s[i];
}
PC_SIMD_VARIANTS(add_floats, (float *restrict d, const float *restrict s, size_t n), (d, s, n))

static void nearest_bwd_task(void *ctx, int task, int thread)
{
    (void)thread;
    const rs_job *j = ctx;
    const size_t C = (size_t)j->c, orow = (size_t)j->w * j->sw * C;
    size_t r0, r1;
    task_range(j, task, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        float *dx = j->y + r * (size_t)j->w * C;
        const float *dy = j->x + r * (size_t)j->sh * orow;
        for (int col = 0; col < j->w; col++) {
            float *d = dx + (size_t)col * C;
            for (int a = 0; a < j->sh; a++)
                for (int b = 0; b < j->sw; b++) {
                    const float *g = dy + (size_t)a * orow + ((size_t)col * j->sw + b) * C;
                    if (a == 0 && b == 0)
                        pc_copy_floats(d, g, C);
                    else
                        add_floats(j->isa, d, g, C);
                }
        }
    }
}

int pc_upsample_nearest2d_forward(pc_runtime *rt, int n, int h, int w, int c, int sh, int sw,
                                  const float *x, float *y)
{
    if (bad_geometry(n, h, w, c, sh, sw))
        return PC_EINVAL;
    rs_job j = {.n = n, .h = h, .w = w, .c = c, .sh = sh, .sw = sw, .x = x, .y = y};
    return launch(rt, &j, (size_t)n * h, (size_t)sh * sw * w * c, nearest_fwd_task);
}

int pc_upsample_nearest2d_backward(pc_runtime *rt, int n, int h, int w, int c, int sh, int sw,
                                   const float *dy, float *dx)
{
    if (bad_geometry(n, h, w, c, sh, sw))
        return PC_EINVAL;
    rs_job j = {.n = n, .h = h, .w = w, .c = c, .sh = sh, .sw = sw, .x = dy, .y = dx};
    return launch(rt, &j, (size_t)n * h, (size_t)sh * sw * w * c, nearest_bwd_task);
}

/* ---- bilinear ------------------------------------------------------------------------------ */

/* Output index o of an axis upsampled by s from `in` cells: the two input cells it reads and
 * the weight of the second. The half-pixel coordinate is clamped to [0, in - 1], so the edge
 * cells copy the edge exactly (as JAX's normalised weights do). */
static inline void coord(int o, int s, int in, int *i0, int *i1, float *l)
{
    double src = ((double)o + 0.5) / s - 0.5;
    src = src < 0.0 ? 0.0 : src > in - 1 ? in - 1 : src;
    const int f = (int)floor(src);
    *i0 = f;
    *i1 = f + 1 < in ? f + 1 : f;
    *l = (float)(src - f);
}

PC_SIMD_LOOP void lerp4_body(float *restrict y, const float *restrict a, const float *restrict b,
                             const float *restrict c, const float *restrict d, float lx, float ly,
                             size_t n)
{
    const float mx = 1.0f - lx, my = 1.0f - ly;
    for (size_t i = 0; i < n; i++)
        y[i] = my * (mx * a[i] + lx * b[i]) + ly * (mx * c[i] + lx * d[i]);
}
PC_SIMD_VARIANTS(lerp4, (float *restrict y, const float *restrict a, const float *restrict b,
                         const float *restrict c, const float *restrict d, float lx, float ly,
                         size_t n),
                 (y, a, b, c, d, lx, ly, n))

PC_SIMD_LOOP void axpy_body(float *restrict d, const float *restrict g, float wgt, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] += wgt * g[i];
}
PC_SIMD_VARIANTS(axpy, (float *restrict d, const float *restrict g, float wgt, size_t n),
                 (d, g, wgt, n))

static void bilinear_fwd_task(void *ctx, int task, int thread)
{
    (void)thread;
    const rs_job *j = ctx;
    const size_t C = (size_t)j->c;
    size_t r0, r1;
    task_range(j, task, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {          /* output row r = n * oh + i */
        const size_t n = r / (size_t)j->oh;
        const int i = (int)(r % (size_t)j->oh);
        int i0, i1;
        float ly;
        coord(i, j->sh, j->h, &i0, &i1, &ly);
        const float *x = j->x + n * (size_t)j->h * j->w * C;
        const float *top = x + (size_t)i0 * j->w * C, *bot = x + (size_t)i1 * j->w * C;
        float *y = j->y + r * (size_t)j->ow * C;
        for (int o = 0; o < j->ow; o++) {
            int c0, c1;
            float lx;
            coord(o, j->sw, j->w, &c0, &c1, &lx);
            lerp4(j->isa, y + (size_t)o * C, top + (size_t)c0 * C, top + (size_t)c1 * C,
                  bot + (size_t)c0 * C, bot + (size_t)c1 * C, lx, ly, C);
        }
    }
}

static void bilinear_bwd_task(void *ctx, int task, int thread)
{
    (void)thread;
    const rs_job *j = ctx;
    const size_t C = (size_t)j->c, in_img = (size_t)j->h * j->w * C;
    size_t s0, s1;
    task_range(j, task, &s0, &s1);
    for (size_t n = s0; n < s1; n++) {          /* one sample's dx, output cells in order */
        float *dx = j->y + n * in_img;
        memset(dx, 0, in_img * sizeof(float));
        const float *dy = j->x + n * (size_t)j->oh * j->ow * C;
        for (int i = 0; i < j->oh; i++) {
            int i0, i1;
            float ly;
            coord(i, j->sh, j->h, &i0, &i1, &ly);
            float *top = dx + (size_t)i0 * j->w * C, *bot = dx + (size_t)i1 * j->w * C;
            for (int o = 0; o < j->ow; o++, dy += C) {
                int c0, c1;
                float lx;
                coord(o, j->sw, j->w, &c0, &c1, &lx);
                const float mx = 1.0f - lx, my = 1.0f - ly;
                axpy(j->isa, top + (size_t)c0 * C, dy, my * mx, C);
                axpy(j->isa, top + (size_t)c1 * C, dy, my * lx, C);
                axpy(j->isa, bot + (size_t)c0 * C, dy, ly * mx, C);
                axpy(j->isa, bot + (size_t)c1 * C, dy, ly * lx, C);
            }
        }
    }
}

int pc_upsample_bilinear2d_forward(pc_runtime *rt, int n, int h, int w, int c, int sh, int sw,
                                   const float *x, float *y)
{
    if (bad_geometry(n, h, w, c, sh, sw))
        return PC_EINVAL;
    rs_job j = {.n = n, .h = h, .w = w, .c = c, .sh = sh, .sw = sw, .oh = h * sh,
                .ow = w * sw, .x = x, .y = y};
    return launch(rt, &j, (size_t)n * j.oh, (size_t)j.ow * c, bilinear_fwd_task);
}

int pc_upsample_bilinear2d_backward(pc_runtime *rt, int n, int h, int w, int c, int sh, int sw,
                                    const float *dy, float *dx)
{
    if (bad_geometry(n, h, w, c, sh, sw))
        return PC_EINVAL;
    rs_job j = {.n = n, .h = h, .w = w, .c = c, .sh = sh, .sw = sw, .oh = h * sh,
                .ow = w * sw, .x = dy, .y = dx};
    return launch(rt, &j, (size_t)n, (size_t)j.oh * j.ow * c * 4, bilinear_bwd_task);
}

/* ---- shift (zero padding, cropping) -------------------------------------------------------- */

static void shift_task(void *ctx, int task, int thread)
{
    (void)thread;
    const rs_job *j = ctx;
    const size_t C = (size_t)j->c, orow = (size_t)j->ow * C;
    /* the output columns [j0, j1) read input columns [j0 - dl, j1 - dl) */
    long long lo = j->dl > 0 ? j->dl : 0, hi = (long long)j->w + j->dl;
    hi = hi < j->ow ? hi : j->ow;
    if (hi < lo)
        hi = lo;
    const size_t j0 = (size_t)lo, j1 = (size_t)hi;
    size_t r0, r1;
    task_range(j, task, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {          /* output row r = n * oh + i */
        const size_t n = r / (size_t)j->oh;
        const long long si = (long long)(r % (size_t)j->oh) - j->dt;
        float *y = j->y + r * orow;
        if (si < 0 || si >= j->h || j0 == j1) {
            memset(y, 0, orow * sizeof(float));
            continue;
        }
        const float *x = j->x + ((n * (size_t)j->h + (size_t)si) * j->w) * C;
        memset(y, 0, j0 * C * sizeof(float));
        memcpy(y + j0 * C, x + (size_t)((long long)j0 - j->dl) * C, (j1 - j0) * C * sizeof(float));
        memset(y + j1 * C, 0, ((size_t)j->ow - j1) * C * sizeof(float));
    }
}

int pc_shift2d(pc_runtime *rt, int n, int h, int w, int c, int oh, int ow, int dt, int dl,
               const float *x, float *y)
{
    if (n < 1 || h < 1 || w < 1 || c < 1 || oh < 1 || ow < 1)
        return PC_EINVAL;
    rs_job j = {.n = n, .h = h, .w = w, .c = c, .oh = oh, .ow = ow, .dt = dt, .dl = dl,
                .x = x, .y = y};
    return launch(rt, &j, (size_t)n * oh, (size_t)ow * c, shift_task);
}

/* ---- permute ------------------------------------------------------------------------------- */

typedef struct {
    int rank;
    int dims[PC_PERMUTE_MAX_RANK];      /* y's shape */
    ptrdiff_t st[PC_PERMUTE_MAX_RANK];  /* x's stride of y's axis a */
    const float *x;
    float *y;
    size_t inner, per, n;
} perm_job;

static void permute_task(void *ctx, int task, int thread)
{
    (void)thread;
    const perm_job *j = ctx;
    const int r = j->rank;
    const size_t s0 = (size_t)task * j->per, s1 = s0 + j->per < j->n ? s0 + j->per : j->n;
    const int L = j->dims[r - 1];
    const ptrdiff_t ls = j->st[r - 1];
    const size_t rows = j->inner / (size_t)L;
    int idx[PC_PERMUTE_MAX_RANK] = {0};
    for (size_t n = s0; n < s1; n++) {
        for (int a = 1; a < r; a++)
            idx[a] = 0;
        float *y = j->y + n * j->inner;
        for (size_t row = 0; row < rows; row++, y += L) {
            ptrdiff_t o = (ptrdiff_t)n * j->st[0];
            for (int a = 1; a < r - 1; a++)
                o += idx[a] * j->st[a];
            const float *x = j->x + o;
            for (int t = 0; t < L; t++)
                y[t] = x[t * ls];
            for (int a = r - 2; a >= 1; a--) {
                if (++idx[a] < j->dims[a])
                    break;
                idx[a] = 0;
            }
        }
    }
}

int pc_permute(pc_runtime *rt, int rank, const int *x_dims, const int *perm, const float *x,
               float *y)
{
    if (rank < 2 || rank > PC_PERMUTE_MAX_RANK || perm[0] != 0)
        return PC_EINVAL;
    perm_job j = {.rank = rank, .x = x, .y = y};
    ptrdiff_t xst[PC_PERMUTE_MAX_RANK];
    ptrdiff_t stride = 1;
    int seen = 0;
    for (int a = rank - 1; a >= 0; a--) {
        if (x_dims[a] < 1)
            return PC_EINVAL;
        xst[a] = stride;
        stride *= x_dims[a];
    }
    for (int a = 0; a < rank; a++) {
        if (perm[a] < 0 || perm[a] >= rank || (seen >> perm[a]) & 1)
            return PC_EINVAL;
        seen |= 1 << perm[a];
        j.dims[a] = x_dims[perm[a]];
        j.st[a] = xst[perm[a]];
    }
    j.n = (size_t)x_dims[0];
    j.inner = (size_t)stride / j.n;
    j.per = per_task(j.inner);
    const size_t tasks = (j.n + j.per - 1) / j.per;
    if (tasks > 0x7fffffff)
        return PC_EINVAL;
    return pc_parallel(rt, (int)tasks, permute_task, &j);
}
