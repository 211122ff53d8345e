/* augment.c - image augmentation: affine warps (rotation, translation, zoom, shear, resize) with
 * nearest or bilinear interpolation and Keras' four fill modes, their adjoint (the input
 * gradient), flips, crops, contrast and brightness. Conventions in pycnn.h.
 *
 * Every kernel handles each image on its own; the batch is split into tasks of a number of
 * images that depends only on the image size, so which thread runs an image never changes its
 * pixels. With the four index-level fill modes the warp reads an image padded by the fill mode
 * (warp_image_padded: no per-pixel index fixing at all); SciPy's modes, and reaches or outputs
 * too large for it, take the row path (warp_image_rows), whose inner loop has a fast path for
 * output pixels whose four source pixels lie inside the image. Both give the same bits. */
#include "pycnn.h"

#include <math.h>
#include <string.h>

#define TASK_FLOATS 4096    /* about this many output floats per task (at least one image) */

static int images_per_task(size_t floats_per_image)
{
    size_t k = TASK_FLOATS / (floats_per_image ? floats_per_image : 1);
    return k < 1 ? 1 : (k > 64 ? 64 : (int)k);
}

/* An index outside [0, size) moved back inside by the fill mode; -1 for CONSTANT (read the fill
 * value). Keras (JAX's map_coordinates) fixes each interpolation corner this way. */
static inline int fix_index(int i, int size, pc_fill fill)
{
    if (i >= 0 && i < size)
        return i;
    switch (fill) {
    case PC_FILL_REFLECT: {   /* half-sample symmetric: period 2 * size */
        const int p = 2 * size;
        int m = i % p;
        if (m < 0)
            m += p;
        return m >= size ? p - 1 - m : m;
    }
    case PC_FILL_WRAP: {
        int m = i % size;
        return m < 0 ? m + size : m;
    }
    case PC_FILL_NEAREST:
    case PC_FILL_SCIPY_WRAP:      /* the coordinate was mapped first: only x0 + 1 can be out */
    case PC_FILL_SCIPY_CONSTANT:
        return i < 0 ? 0 : size - 1;
    default:
        return -1;
    }
}

/* SciPy's legacy modes act on the coordinate before interpolating: SCIPY_CONSTANT gives the
 * fill value when the point is outside [0, size - 1] (returns 0), SCIPY_WRAP maps it into that
 * range with period size - 1 (scipy.ndimage's map_coordinate). Returns 1 otherwise. Points
 * within 1e-4 * size outside the range are first moved onto its border. */
static inline int scipy_coord(pc_fill fill, float *c, int size)
{
    const float len = (float)(size - 1);
    if (fill >= PC_FILL_SCIPY_WRAP) {
        /* a point within 1e-4 * size of the border is on it: SciPy decides in double from a
         * double matrix, and the border is where exact maps (90 degrees, whole shifts) land */
        const float eps = 1e-4f * (float)size;
        if (*c < 0.0f && *c >= -eps)
            *c = 0.0f;
        else if (*c > len && *c <= len + eps)
            *c = len;
    }
    if (fill == PC_FILL_SCIPY_CONSTANT)
        return *c >= 0.0f && *c <= len;
    if (fill == PC_FILL_SCIPY_WRAP) {
        if (size <= 1)
            *c = 0.0f;
        else if (*c < 0.0f)
            *c += len * (float)((long long)(-*c / len) + 1);
        else if (*c > len)
            *c -= len * (float)(long long)(*c / len);
    }
    return 1;
}

/* floor(f) as an int (|f| <= 1e9: see pc_warp_coords_fit). */
static inline int floor_int(float f)
{
    int i = (int)f;
    return (float)i > f ? i - 1 : i;
}


/* Row setup of the warp, loops GCC vectorises (one variant per SIMD path): for each output column q of
 * row r, the source point, then for bilinear the top-left corner's offset and the four weights,
 * for nearest the pixel's offset; ok[q] = 1 when every pixel read lies inside the image (the
 * fast path), else the caller recomputes q with the fill mode. Rows of at most ROW floats. */
#define ROW 256

typedef struct {
    float a0, a1, a2, b0, b1, b2;
    int h, w, c;
} warp_geom;

/* Source coordinates as they are: the binding admits only transforms that map every output
 * pixel within +-1e9 (pc_warp_coords_fit), so their int conversions cannot overflow. (A clamp
 * here would stop GCC vectorising the row loops.) */
static inline float clamp_coord(float f)
{
    return f;
}

/* The top-left corner (x0, y0) = floor of the source point (cx, cy) and the four bilinear
 * weights of its corners (inlined into the vectorised row loops). */
static inline __attribute__((always_inline)) void bilinear_corner(
    float cx, float cy, int *x0, int *y0, float *w00, float *w01, float *w10, float *w11)
{
    int xi = (int)cx, yi = (int)cy;
    xi -= (float)xi > cx;
    yi -= (float)yi > cy;
    const float wx1 = cx - (float)xi, wy1 = cy - (float)yi;
    const float wx0 = 1.0f - wx1, wy0 = 1.0f - wy1;
    *w00 = wy0 * wx0;
    *w01 = wy0 * wx1;
    *w10 = wy1 * wx0;
    *w11 = wy1 * wx1;
    *x0 = xi;
    *y0 = yi;
}

PC_SIMD_LOOP void row_bilinear_body(const warp_geom *g, float fr, int q0, int nq,
                                    int *restrict off, int *restrict ok, int *restrict xs,
                                    int *restrict ys, float *restrict w00, float *restrict w01,
                                    float *restrict w10, float *restrict w11)
{
    const float a0 = g->a0, a1 = g->a1, a2 = g->a2, b0 = g->b0, b1 = g->b1, b2 = g->b2;
    const int h = g->h, w = g->w, c = g->c, rs = g->w * g->c;
    for (int k = 0; k < nq; k++) {
        const float fq = (float)(q0 + k);
        const float cx = clamp_coord((fr * a1 + fq * a0) + a2);
        const float cy = clamp_coord((fr * b1 + fq * b0) + b2);
        int x0, y0;
        bilinear_corner(cx, cy, &x0, &y0, w00 + k, w01 + k, w10 + k, w11 + k);
        const int in = ((unsigned)x0 < (unsigned)(w - 1)) & ((unsigned)y0 < (unsigned)(h - 1));
        xs[k] = x0;
        ys[k] = y0;
        ok[k] = in;
        off[k] = (y0 * rs + x0 * c) & -in;
    }
}

PC_SIMD_VARIANTS(row_bilinear, (const warp_geom *g, float fr, int q0, int nq, int *restrict off,
                                int *restrict ok, int *restrict xs, int *restrict ys,
                                float *restrict w00, float *restrict w01, float *restrict w10,
                                float *restrict w11),
                 (g, fr, q0, nq, off, ok, xs, ys, w00, w01, w10, w11))

/* round half away from zero (lax.round), exactly: the fraction cx - trunc(cx) is exact */
static inline int round_away(float f)
{
    int i = (int)f;
    const float d = f - (float)i;
    i += d >= 0.5f;
    i -= d <= -0.5f;
    return i;
}

PC_SIMD_LOOP void row_nearest_body(const warp_geom *g, float fr, int q0, int nq,
                                   int *restrict off, int *restrict ok, int *restrict xs,
                                   int *restrict ys, int margin)
{
    const float a0 = g->a0, a1 = g->a1, a2 = g->a2, b0 = g->b0, b1 = g->b1, b2 = g->b2;
    const int h = g->h, w = g->w, c = g->c, rs = g->w * g->c;
    for (int k = 0; k < nq; k++) {
        const float fq = (float)(q0 + k);
        const int ix = round_away(clamp_coord((fr * a1 + fq * a0) + a2));
        const int iy = round_away(clamp_coord((fr * b1 + fq * b0) + b2));
        const int in = ((unsigned)(ix - margin) < (unsigned)(w - 2 * margin)) &
                       ((unsigned)(iy - margin) < (unsigned)(h - 2 * margin));
        xs[k] = ix;
        ys[k] = iy;
        ok[k] = in;
        off[k] = (iy * rs + ix * c) & -in;
    }
}

PC_SIMD_VARIANTS(row_nearest, (const warp_geom *g, float fr, int q0, int nq, int *restrict off,
                               int *restrict ok, int *restrict xs, int *restrict ys,
                               int margin),
                 (g, fr, q0, nq, off, ok, xs, ys, margin))

/* The bilinear sum for one channel of n pixels (c == 1), kept scalar: without hardware gathers
 * (GCC does not emit them for generic tuning) the vectorised form of these indexed loads was
 * slower (measured). */
__attribute__((optimize("no-tree-vectorize")))
static void gather_bilinear_1(const float *restrict x, int rs, int nq, const int *restrict off,
                              const float *restrict w00, const float *restrict w01,
                              const float *restrict w10, const float *restrict w11,
                              float *restrict out)
{
    for (int k = 0; k < nq; k++) {
        const int o = off[k];
        out[k] = ((w00[k] * x[o] + w01[k] * x[o + 1]) + w10[k] * x[o + rs]) +
                 w11[k] * x[o + rs + 1];
    }
}

/* Output pixel q (ok[q] == 0) by the fill mode, as pycnn.h states. */
static void slow_pixel(const warp_geom *g, pc_interp interp, pc_fill fill, float cval,
                       const float *restrict x, float fr, int q, float *restrict out)
{
    const int h = g->h, w = g->w, c = g->c;
    const ptrdiff_t rs = (ptrdiff_t)w * c;
    const float fq = (float)q;
    float cx = clamp_coord((fr * g->a1 + fq * g->a0) + g->a2);
    float cy = clamp_coord((fr * g->b1 + fq * g->b0) + g->b2);
    if (!scipy_coord(fill, &cx, w) || !scipy_coord(fill, &cy, h)) {
        for (int k = 0; k < c; k++)
            out[k] = cval;
        return;
    }
    if (interp == PC_INTERP_NEAREST) {
        const int ix = fix_index(round_away(cx), w, fill);
        const int iy = fix_index(round_away(cy), h, fill);
        for (int k = 0; k < c; k++)
            out[k] = ix < 0 || iy < 0 ? cval : x[iy * rs + (ptrdiff_t)ix * c + k];
        return;
    }
    int x0 = (int)cx, y0 = (int)cy;
    x0 -= (float)x0 > cx;
    y0 -= (float)y0 > cy;
    const float wx1 = cx - (float)x0, wy1 = cy - (float)y0;
    const float wx0 = 1.0f - wx1, wy0 = 1.0f - wy1;
    const float w00 = wy0 * wx0, w01 = wy0 * wx1, w10 = wy1 * wx0, w11 = wy1 * wx1;
    const int ix0 = fix_index(x0, w, fill), ix1 = fix_index(x0 + 1, w, fill);
    const int iy0 = fix_index(y0, h, fill), iy1 = fix_index(y0 + 1, h, fill);
    const float *p00 = iy0 < 0 || ix0 < 0 ? NULL : x + iy0 * rs + (ptrdiff_t)ix0 * c;
    const float *p01 = iy0 < 0 || ix1 < 0 ? NULL : x + iy0 * rs + (ptrdiff_t)ix1 * c;
    const float *p10 = iy1 < 0 || ix0 < 0 ? NULL : x + iy1 * rs + (ptrdiff_t)ix0 * c;
    const float *p11 = iy1 < 0 || ix1 < 0 ? NULL : x + iy1 * rs + (ptrdiff_t)ix1 * c;
    for (int k = 0; k < c; k++) {
        const float v00 = p00 ? p00[k] : cval, v01 = p01 ? p01[k] : cval;
        const float v10 = p10 ? p10[k] : cval, v11 = p11 ? p11[k] : cval;
        out[k] = ((w00 * v00 + w01 * v01) + w10 * v10) + w11 * v11;
    }
}

/* The fill mode as lookup tables over the indices a warp can reach: tab[i] = the fixed index
 * of lo + i (times `scale`), or -1 for the fill value. The reach comes from the output's
 * corners (the map is affine), widened by 2 for float32 rounding. Returns 0 when the range is
 * longer than TAB (then pixels take the general path). */
#define TAB 2048

static int fill_table(double c00, double c01, double c10, double c11, int size, pc_fill fill,
                      int scale, int *tab, int *lo)
{
    double mn = c00, mx = c00;
    mn = c01 < mn ? c01 : mn; mx = c01 > mx ? c01 : mx;
    mn = c10 < mn ? c10 : mn; mx = c10 > mx ? c10 : mx;
    mn = c11 < mn ? c11 : mn; mx = c11 > mx ? c11 : mx;
    const double first = floor(mn) - 2, last = floor(mx) + 3;
    if (last - first + 1 > TAB)
        return 0;
    *lo = (int)first;
    const int n = (int)(last - first) + 1;
    for (int i = 0; i < n; i++) {
        const int f = fix_index(*lo + i, size, fill);
        tab[i] = f < 0 ? -1 : f * scale;
    }
    return n;
}

static void warp_image_rows(pc_isa isa, const pc_warp_shape *s, const float *restrict x,
                            const float *restrict t, float *restrict y)
{
    const warp_geom g = {.a0 = t[0], .a1 = t[1], .a2 = t[2], .b0 = t[3], .b1 = t[4],
                         .b2 = t[5], .h = s->h, .w = s->w, .c = s->c};
    const int oh = s->oh, ow = s->ow, c = s->c, rs = s->w * s->c;
    const pc_interp interp = s->interp;
    const pc_fill fill = s->fill;
    const float cval = s->fill_value;
    int off[ROW], ok[ROW], xs[ROW], ys[ROW];
    float w00[ROW], w01[ROW], w10[ROW], w11[ROW];
    /* tables for the four index-level fill modes (SciPy's act on the point: general path) */
    int tabx[TAB], taby[TAB], xlo = 0, ylo = 0, nx = 0, ny = 0;
    if (fill < PC_FILL_SCIPY_WRAP) {
        const double R = oh - 1.0, Q = ow - 1.0;
        nx = fill_table(g.a2, Q * g.a0 + g.a2, R * g.a1 + g.a2, R * g.a1 + Q * g.a0 + g.a2,
                        s->w, fill, c, tabx, &xlo);
        ny = fill_table(g.b2, Q * g.b0 + g.b2, R * g.b1 + g.b2, R * g.b1 + Q * g.b0 + g.b2,
                        s->h, fill, rs, taby, &ylo);
    }
    for (int r = 0; r < oh; r++) {
        const float fr = (float)r;
        float *yr = y + (ptrdiff_t)r * ow * c;
        for (int q0 = 0; q0 < ow; q0 += ROW) {
            const int nq = ow - q0 < ROW ? ow - q0 : ROW;
            float *out = yr + (ptrdiff_t)q0 * c;
            if (interp == PC_INTERP_BILINEAR) {
                row_bilinear(isa, &g, fr, q0, nq, off, ok, xs, ys, w00, w01, w10, w11);
                if (s->h < 2 || s->w < 2) {
                    /* no pixel has its four sources inside: all by the fill mode */
                } else if (c == 1) {
                    gather_bilinear_1(x, rs, nq, off, w00, w01, w10, w11, out);
                } else {
                    for (int k = 0; k < nq; k++) {
                        const float *p = x + off[k];
                        float *o = out + (ptrdiff_t)k * c;
                        for (int ch = 0; ch < c; ch++)
                            o[ch] = ((w00[k] * p[ch] + w01[k] * p[c + ch]) +
                                     w10[k] * p[rs + ch]) + w11[k] * p[rs + c + ch];
                    }
                }
            } else {
                /* SciPy's modes decide by the coordinate: only pixels one away from the
                 * border are surely inside */
                row_nearest(isa, &g, fr, q0, nq, off, ok, xs, ys, fill >= PC_FILL_SCIPY_WRAP);
                for (int k = 0; k < nq; k++)
                    pc_copy_floats(out + (ptrdiff_t)k * c, x + off[k], (size_t)c);
            }
            for (int k = 0; k < nq; k++) {
                if (ok[k])
                    continue;
                float *o = out + (ptrdiff_t)k * c;
                const int i = xs[k] - xlo, j = ys[k] - ylo;
                if (i < 0 || i + 1 >= nx || j < 0 || j + 1 >= ny) {
                    slow_pixel(&g, interp, fill, cval, x, fr, q0 + k, o);
                    continue;
                }
                if (interp == PC_INTERP_NEAREST) {
                    const int ix = tabx[i], iy = taby[j];
                    for (int ch = 0; ch < c; ch++)
                        o[ch] = ix < 0 || iy < 0 ? cval : x[iy + ix + ch];
                    continue;
                }
                const int ix0 = tabx[i], ix1 = tabx[i + 1], iy0 = taby[j], iy1 = taby[j + 1];
                for (int ch = 0; ch < c; ch++) {
                    const float v00 = iy0 < 0 || ix0 < 0 ? cval : x[iy0 + ix0 + ch];
                    const float v01 = iy0 < 0 || ix1 < 0 ? cval : x[iy0 + ix1 + ch];
                    const float v10 = iy1 < 0 || ix0 < 0 ? cval : x[iy1 + ix0 + ch];
                    const float v11 = iy1 < 0 || ix1 < 0 ? cval : x[iy1 + ix1 + ch];
                    o[ch] = ((w00[k] * v00 + w01[k] * v01) + w10[k] * v10) + w11[k] * v11;
                }
            }
        }
    }
}

/* ---- the padded path (the four index-level fill modes) ---------------------------------------
 * The fill tables turn the image into a padded one, P[j][i] = x at the fixed indices (taby[j],
 * tabx[i]) or the fill value, that covers every index the warp reads: then every output pixel
 * reads its corners from P without a test, and the sum is the one warp_image_rows forms
 * (same corner values, same operations in the same order): the results are equal bit for bit.
 * The source points are computed for the whole image in one flat loop (fr, fq: each pixel's
 * row and column as floats, made once per task), which GCC vectorises with full vectors. */

static inline void pad_edge(float *restrict p, const float *restrict xr, int ix, int c,
                            float cval)
{
    if (c == 1) {
        *p = ix < 0 ? cval : xr[ix];
        return;
    }
    for (int ch = 0; ch < c; ch++)
        p[ch] = ix < 0 ? cval : xr[ix + ch];
}

static void pad_image(const float *restrict x, int w, int c, const int *tabx, const int *taby,
                      int xlo, int nx, int ny, float cval, float *restrict P)
{
    const size_t prs = (size_t)nx * c;
    /* [i0, i1): the columns inside the image, copied as they are */
    int i0 = -xlo > 0 ? -xlo : 0, i1 = w - xlo < nx ? w - xlo : nx;
    if (i0 > nx)
        i0 = nx;
    if (i1 < i0)
        i1 = i0;
    for (int j = 0; j < ny; j++) {
        float *p = P + (size_t)j * prs;
        const int iy = taby[j];
        if (iy < 0) {
            for (size_t k = 0; k < prs; k++)
                p[k] = cval;
            continue;
        }
        const float *xr = x + iy;
        for (int i = 0; i < i0; i++)
            pad_edge(p + (size_t)i * c, xr, tabx[i], c, cval);
        pc_copy_floats(p + (size_t)i0 * c, xr + (size_t)(xlo + i0) * c,
                       (size_t)(i1 - i0) * c);
        for (int i = i1; i < nx; i++)
            pad_edge(p + (size_t)i * c, xr, tabx[i], c, cval);
    }
}

/* Any channels: the offset into P (in pixels) and the four weights of each of n pixels
 * (nearest: the weights are unused); returns how many points fell outside P (offset 0). */
PC_SIMD_LOOP int pad_coords_body(int nearest, int pnx, int pny, int xlo, int ylo,
                                 const float *restrict fr, const float *restrict fq,
                                 const float *restrict m, int n, int *restrict off,
                                 float *restrict w00, float *restrict w01, float *restrict w10,
                                 float *restrict w11)
{
    const float a0 = m[0], a1 = m[1], a2 = m[2], b0 = m[3], b1 = m[4], b2 = m[5];
    int bad = 0;
    if (nearest) {
        for (int k = 0; k < n; k++) {
            const int i = round_away((fr[k] * a1 + fq[k] * a0) + a2) - xlo;
            const int j = round_away((fr[k] * b1 + fq[k] * b0) + b2) - ylo;
            const int in = ((unsigned)i < (unsigned)pnx) & ((unsigned)j < (unsigned)pny);
            off[k] = (j * pnx + i) & -in;
            bad += 1 - in;
        }
        return bad;
    }
    for (int k = 0; k < n; k++) {
        const float cx = (fr[k] * a1 + fq[k] * a0) + a2;
        const float cy = (fr[k] * b1 + fq[k] * b0) + b2;
        int x0, y0;
        bilinear_corner(cx, cy, &x0, &y0, w00 + k, w01 + k, w10 + k, w11 + k);
        const int i = x0 - xlo, j = y0 - ylo;
        const int in = ((unsigned)i < (unsigned)(pnx - 1)) & ((unsigned)j < (unsigned)(pny - 1));
        off[k] = (j * pnx + i) & -in;
        bad += 1 - in;
    }
    return bad;
}
PC_SIMD_VARIANTS_RET(int, pad_coords, (int nearest, int pnx, int pny, int xlo, int ylo,
                                       const float *restrict fr, const float *restrict fq,
                                       const float *restrict m, int n, int *restrict off,
                                       float *restrict w00, float *restrict w01,
                                       float *restrict w10, float *restrict w11),
                     (nearest, pnx, pny, xlo, ylo, fr, fq, m, n, off, w00, w01, w10, w11))

#define PIX_CHUNK 256
#define PAD_MAX_PIXELS (1 << 20)   /* larger outputs take the row path (fr, fq: 8 MB at most) */

/* warp_image by the padded path; returns 0 when it cannot (SciPy's modes, a reach longer than
 * TAB, no scratch): then the caller runs warp_image_rows. fr, fq: the output pixels' rows and
 * columns as floats. */
static int warp_image_padded(pc_runtime *rt, int thread, pc_isa isa, const pc_warp_shape *s,
                             const float *restrict x, const float *restrict t,
                             const float *restrict fr, const float *restrict fq,
                             float *restrict y)
{
    const pc_fill fill = s->fill;
    if (fill >= PC_FILL_SCIPY_WRAP)
        return 0;
    const int oh = s->oh, ow = s->ow, c = s->c;
    const double R = oh - 1.0, Q = ow - 1.0;
    int tabx[TAB], taby[TAB], xlo = 0, ylo = 0;
    const int nx = fill_table(t[2], Q * t[0] + t[2], R * t[1] + t[2], R * t[1] + Q * t[0] + t[2],
                              s->w, fill, c, tabx, &xlo);
    const int ny = fill_table(t[5], Q * t[3] + t[5], R * t[4] + t[5], R * t[4] + Q * t[3] + t[5],
                              s->h, fill, s->w * c, taby, &ylo);
    if (!nx || !ny || (size_t)nx * ny * c >= (1u << 31))
        return 0;
    float *P = pc_thread_scratch(rt, thread, PC_THREAD_SLOT_PACK, (size_t)nx * ny * c);
    if (!P)
        return 0;
    const float cval = s->fill_value;
    pad_image(x, s->w, c, tabx, taby, xlo, nx, ny, cval, P);
    const int npix = oh * ow, nearest = s->interp == PC_INTERP_NEAREST;
    int bad = 0;
    if (c == 1 && !nearest) {
        /* the gather stays scalar (gather_bilinear_1): GCC's emulated gathers and the
         * hardware ones were both slower here (measured) */
        int off[PIX_CHUNK];
        float w00[PIX_CHUNK], w01[PIX_CHUNK], w10[PIX_CHUNK], w11[PIX_CHUNK];
        for (int p0 = 0; p0 < npix; p0 += PIX_CHUNK) {
            const int n = npix - p0 < PIX_CHUNK ? npix - p0 : PIX_CHUNK;
            bad += pad_coords(isa, 0, nx, ny, xlo, ylo, fr + p0, fq + p0, t, n, off, w00,
                              w01, w10, w11);
            gather_bilinear_1(P, nx, n, off, w00, w01, w10, w11, y + p0);
        }
    } else {
        int off[PIX_CHUNK];
        float w00[PIX_CHUNK], w01[PIX_CHUNK], w10[PIX_CHUNK], w11[PIX_CHUNK];
        const ptrdiff_t prs = (ptrdiff_t)nx * c;
        for (int p0 = 0; p0 < npix; p0 += PIX_CHUNK) {
            const int n = npix - p0 < PIX_CHUNK ? npix - p0 : PIX_CHUNK;
            bad += pad_coords(isa, nearest, nx, ny, xlo, ylo, fr + p0, fq + p0, t, n, off, w00,
                              w01, w10, w11);
            float *out = y + (ptrdiff_t)p0 * c;
            if (nearest) {
                for (int k = 0; k < n; k++)
                    pc_copy_floats(out + (ptrdiff_t)k * c, P + (ptrdiff_t)off[k] * c, (size_t)c);
                continue;
            }
            for (int k = 0; k < n; k++) {
                const float *p = P + (ptrdiff_t)off[k] * c;
                float *o = out + (ptrdiff_t)k * c;
                for (int ch = 0; ch < c; ch++)
                    o[ch] = ((w00[k] * p[ch] + w01[k] * p[c + ch]) + w10[k] * p[prs + ch]) +
                            w11[k] * p[prs + c + ch];
            }
        }
    }
    if (bad) {
        /* points outside the tables' reach (float rounding beyond the margin of 2): by the
         * general rule, pixel by pixel */
        const warp_geom g = {.a0 = t[0], .a1 = t[1], .a2 = t[2], .b0 = t[3], .b1 = t[4],
                             .b2 = t[5], .h = s->h, .w = s->w, .c = c};
        for (int p = 0; p < npix; p++) {
            const float cx = (fr[p] * g.a1 + fq[p] * g.a0) + g.a2;
            const float cy = (fr[p] * g.b1 + fq[p] * g.b0) + g.b2;
            int i, j, span;
            if (nearest) {
                i = round_away(cx) - xlo;
                j = round_away(cy) - ylo;
                span = 0;
            } else {
                i = floor_int(cx) - xlo;
                j = floor_int(cy) - ylo;
                span = 1;
            }
            if (i < 0 || j < 0 || i + span >= nx || j + span >= ny)
                slow_pixel(&g, s->interp, fill, cval, x, fr[p], (int)fq[p],
                           y + (ptrdiff_t)p * c);
        }
    }
    return 1;
}

typedef struct {
    pc_runtime *rt;
    const pc_warp_shape *s;
    const float *x, *t;
    float *y;
    int per_task;
    pc_isa isa;
} warp_job;

static void warp_task(void *ctx, int task, int thread)
{
    const warp_job *j = ctx;
    const pc_warp_shape *s = j->s;
    const size_t in_sz = (size_t)s->h * s->w * s->c, out_sz = (size_t)s->oh * s->ow * s->c;
    const int i0 = task * j->per_task;
    const int i1 = i0 + j->per_task < s->n ? i0 + j->per_task : s->n;
    const size_t npix = (size_t)s->oh * s->ow;
    float *fr = s->fill < PC_FILL_SCIPY_WRAP && npix <= PAD_MAX_PIXELS
                    ? pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK, 2 * npix) : NULL;
    float *fq = fr ? fr + npix : NULL;
    if (fr) {
        size_t p = 0;
        for (int r = 0; r < s->oh; r++)
            for (int q = 0; q < s->ow; q++, p++) {
                fr[p] = (float)r;
                fq[p] = (float)q;
            }
    }
    for (int i = i0; i < i1; i++) {
        const float *x = j->x + i * in_sz, *t = j->t + 6 * (size_t)i;
        float *y = j->y + i * out_sz;
        if (!fr || !warp_image_padded(j->rt, thread, j->isa, s, x, t, fr, fq, y))
            warp_image_rows(j->isa, s, x, t, y);
    }
}

int pc_warp_coords_fit(const pc_warp_shape *s, const float *t)
{
    for (int i = 0; i < s->n; i++) {
        const float *m = t + 6 * (size_t)i;
        for (int k = 0; k < 6; k++)
            if (!(m[k] >= -1e9f && m[k] <= 1e9f))
                return i;
        /* affine: the largest |coordinate| is at a corner of the output */
        const double qs[2] = {0.0, s->ow - 1.0}, rs[2] = {0.0, s->oh - 1.0};
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                const double cx = rs[a] * m[1] + qs[b] * m[0] + m[2];
                const double cy = rs[a] * m[4] + qs[b] * m[3] + m[5];
                if (fabs(cx) > 1e9 || fabs(cy) > 1e9)
                    return i;
            }
    }
    return -1;
}

static int warp_valid(const pc_warp_shape *s)
{
    return s->n > 0 && s->h > 0 && s->w > 0 && s->c > 0 && s->oh > 0 && s->ow > 0 &&
           (size_t)s->h * s->w * s->c < (1u << 31) &&
           (s->interp == PC_INTERP_NEAREST || s->interp == PC_INTERP_BILINEAR) &&
           s->fill >= PC_FILL_REFLECT && s->fill <= PC_FILL_SCIPY_CONSTANT;
}

int pc_affine_warp(pc_runtime *rt, const pc_warp_shape *s, const float *x, const float *t,
                   float *y)
{
    if (!warp_valid(s) || pc_warp_coords_fit(s, t) >= 0)
        return PC_EINVAL;
    warp_job j = {.rt = rt, .s = s, .x = x, .t = t, .y = y,
                  .per_task = images_per_task((size_t)s->oh * s->ow * s->c),
                  .isa = pc_loop_isa(rt)};
    pc_parallel(rt, (s->n + j.per_task - 1) / j.per_task, warp_task, &j);
    return PC_OK;
}

/* The adjoint of warp_image: every output gradient scattered back with its weights. */
static void warp_image_backward(const pc_warp_shape *s, const float *restrict dy,
                                const float *restrict t, float *restrict dx)
{
    const int h = s->h, w = s->w, c = s->c, oh = s->oh, ow = s->ow;
    const pc_fill fill = s->fill;
    const float a0 = t[0], a1 = t[1], a2 = t[2], b0 = t[3], b1 = t[4], b2 = t[5];
    const ptrdiff_t rs = (ptrdiff_t)w * c;
    memset(dx, 0, sizeof(float) * (size_t)h * rs);
    for (int r = 0; r < oh; r++) {
        const float fr = (float)r;
        const float *dyr = dy + (ptrdiff_t)r * ow * c;
        for (int q = 0; q < ow; q++) {
            const float fq = (float)q;
            float cx = (fr * a1 + fq * a0) + a2;
            float cy = (fr * b1 + fq * b0) + b2;
            const float *g = dyr + (ptrdiff_t)q * c;
            if (!scipy_coord(fill, &cx, w) || !scipy_coord(fill, &cy, h))
                continue;
            if (s->interp == PC_INTERP_NEAREST) {
                const int ix = fix_index(round_away(clamp_coord(cx)), w, fill);
                const int iy = fix_index(round_away(clamp_coord(cy)), h, fill);
                if (ix >= 0 && iy >= 0) {
                    float *d = dx + iy * rs + (ptrdiff_t)ix * c;
                    for (int k = 0; k < c; k++)
                        d[k] += g[k];
                }
                continue;
            }
            const int x0 = floor_int(cx), y0 = floor_int(cy);
            const float wx1 = cx - (float)x0, wy1 = cy - (float)y0;
            const float wx0 = 1.0f - wx1, wy0 = 1.0f - wy1;
            const int ix[2] = {fix_index(x0, w, fill), fix_index(x0 + 1, w, fill)};
            const int iy[2] = {fix_index(y0, h, fill), fix_index(y0 + 1, h, fill)};
            const float wt[2][2] = {{wy0 * wx0, wy0 * wx1}, {wy1 * wx0, wy1 * wx1}};
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) {
                    if (iy[a] < 0 || ix[b] < 0)
                        continue;
                    float *d = dx + iy[a] * rs + (ptrdiff_t)ix[b] * c;
                    const float wab = wt[a][b];
                    for (int k = 0; k < c; k++)
                        d[k] += wab * g[k];
                }
        }
    }
}

typedef struct {
    const pc_warp_shape *s;
    const float *dy, *t;
    float *dx;
    int per_task;
} warp_back_job;

static void warp_back_task(void *ctx, int task, int thread)
{
    (void)thread;
    const warp_back_job *j = ctx;
    const pc_warp_shape *s = j->s;
    const size_t in_sz = (size_t)s->h * s->w * s->c, out_sz = (size_t)s->oh * s->ow * s->c;
    const int i0 = task * j->per_task;
    const int i1 = i0 + j->per_task < s->n ? i0 + j->per_task : s->n;
    for (int i = i0; i < i1; i++)
        warp_image_backward(s, j->dy + i * out_sz, j->t + 6 * (size_t)i, j->dx + i * in_sz);
}

int pc_affine_warp_backward(pc_runtime *rt, const pc_warp_shape *s, const float *dy,
                            const float *t, float *dx)
{
    if (!warp_valid(s) || pc_warp_coords_fit(s, t) >= 0)
        return PC_EINVAL;
    warp_back_job j = {.s = s, .dy = dy, .t = t, .dx = dx,
                       .per_task = images_per_task((size_t)s->oh * s->ow * s->c)};
    pc_parallel(rt, (s->n + j.per_task - 1) / j.per_task, warp_back_task, &j);
    return PC_OK;
}

/* ---- flips and crops ------------------------------------------------------------------------ */

typedef struct {
    const float *x;
    float *y;
    int n, h, w, c, oh, ow, per_task;
    const uint8_t *flags;
    const int32_t *off;
    int backward;
} copy_job;

static void flip_task(void *ctx, int task, int thread)
{
    (void)thread;
    const copy_job *j = ctx;
    const int h = j->h, w = j->w, c = j->c;
    const size_t sz = (size_t)h * w * c;
    const int i0 = task * j->per_task;
    const int i1 = i0 + j->per_task < j->n ? i0 + j->per_task : j->n;
    for (int i = i0; i < i1; i++) {
        const float *x = j->x + i * sz;
        float *y = j->y + i * sz;
        const int hf = j->flags[i] & 1, vf = (j->flags[i] >> 1) & 1;
        for (int r = 0; r < h; r++) {
            const float *xr = x + (size_t)(vf ? h - 1 - r : r) * w * c;
            float *yr = y + (size_t)r * w * c;
            if (!hf) {
                memcpy(yr, xr, sizeof(float) * (size_t)w * c);
                continue;
            }
            for (int q = 0; q < w; q++)
                pc_copy_floats(yr + (size_t)q * c, xr + (size_t)(w - 1 - q) * c, (size_t)c);
        }
    }
}

int pc_flip(pc_runtime *rt, const float *x, int n, int h, int w, int c, const uint8_t *flags,
            float *y)
{
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0)
        return PC_EINVAL;
    copy_job j = {.x = x, .y = y, .n = n, .h = h, .w = w, .c = c, .flags = flags,
                  .per_task = images_per_task((size_t)h * w * c)};
    pc_parallel(rt, (n + j.per_task - 1) / j.per_task, flip_task, &j);
    return PC_OK;
}

/* forward: big image x -> window y; backward: window dy (j->x) -> big image dx (j->y). */
static void crop_task(void *ctx, int task, int thread)
{
    (void)thread;
    const copy_job *j = ctx;
    const int h = j->h, w = j->w, c = j->c, oh = j->oh, ow = j->ow;
    const size_t big = (size_t)h * w * c, small = (size_t)oh * ow * c;
    const int i0 = task * j->per_task;
    const int i1 = i0 + j->per_task < j->n ? i0 + j->per_task : j->n;
    for (int i = i0; i < i1; i++) {
        const int top = j->off[2 * i], left = j->off[2 * i + 1];
        if (j->backward) {
            float *dx = j->y + i * big;
            const float *dy = j->x + i * small;
            memset(dx, 0, sizeof(float) * big);
            for (int r = 0; r < oh; r++)
                memcpy(dx + ((size_t)(top + r) * w + left) * c, dy + (size_t)r * ow * c,
                       sizeof(float) * (size_t)ow * c);
        } else {
            const float *x = j->x + i * big;
            float *y = j->y + i * small;
            for (int r = 0; r < oh; r++)
                memcpy(y + (size_t)r * ow * c, x + ((size_t)(top + r) * w + left) * c,
                       sizeof(float) * (size_t)ow * c);
        }
    }
}

static int crop_run(pc_runtime *rt, const float *src, int n, int h, int w, int c,
                    const int32_t *off, float *dst, int oh, int ow, int backward)
{
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0 || oh <= 0 || ow <= 0 || oh > h || ow > w)
        return PC_EINVAL;
    for (int i = 0; i < n; i++)
        if (off[2 * i] < 0 || off[2 * i] > h - oh || off[2 * i + 1] < 0 ||
            off[2 * i + 1] > w - ow)
            return PC_EINVAL;
    copy_job j = {.x = src, .y = dst, .n = n, .h = h, .w = w, .c = c, .oh = oh, .ow = ow,
                  .off = off, .backward = backward,
                  .per_task = images_per_task((size_t)h * w * c)};
    pc_parallel(rt, (n + j.per_task - 1) / j.per_task, crop_task, &j);
    return PC_OK;
}

int pc_crop(pc_runtime *rt, const float *x, int n, int h, int w, int c, const int32_t *off,
            float *y, int oh, int ow)
{
    return crop_run(rt, x, n, h, w, c, off, y, oh, ow, 0);
}

int pc_crop_backward(pc_runtime *rt, const float *dy, int n, int h, int w, int c,
                     const int32_t *off, float *dx, int oh, int ow)
{
    return crop_run(rt, dy, n, h, w, c, off, dx, oh, ow, 1);
}

/* ---- contrast and brightness ------------------------------------------------------------------ */

typedef struct {
    const float *x;
    float *y;
    int n, hw, c, per_task;
    size_t size;
    const float *param;
    float lo, hi;
} color_job;

static inline float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static void contrast_task(void *ctx, int task, int thread)
{
    (void)thread;
    const color_job *j = ctx;
    const int hw = j->hw, c = j->c;
    const size_t sz = (size_t)hw * c;
    const int i0 = task * j->per_task;
    const int i1 = i0 + j->per_task < j->n ? i0 + j->per_task : j->n;
    for (int i = i0; i < i1; i++) {
        const float *x = j->x + i * sz;
        float *y = j->y + i * sz;
        const float f = j->param[i];
        for (int k = 0; k < c; k++) {
            double sum = 0.0;
            for (int p = 0; p < hw; p++)
                sum += x[(size_t)p * c + k];
            const float m = (float)(sum / hw);
            for (int p = 0; p < hw; p++)
                y[(size_t)p * c + k] = clampf((x[(size_t)p * c + k] - m) * f + m, j->lo, j->hi);
        }
    }
}

int pc_adjust_contrast(pc_runtime *rt, const float *x, int n, int hw, int c,
                       const float *factor, float lo, float hi, float *y)
{
    if (n <= 0 || hw <= 0 || c <= 0 || !(lo <= hi))
        return PC_EINVAL;
    color_job j = {.x = x, .y = y, .n = n, .hw = hw, .c = c, .param = factor, .lo = lo,
                   .hi = hi, .per_task = images_per_task((size_t)hw * c)};
    pc_parallel(rt, (n + j.per_task - 1) / j.per_task, contrast_task, &j);
    return PC_OK;
}

static void brightness_task(void *ctx, int task, int thread)
{
    (void)thread;
    const color_job *j = ctx;
    const size_t sz = j->size;
    const float lo = j->lo, hi = j->hi;
    const int i0 = task * j->per_task;
    const int i1 = i0 + j->per_task < j->n ? i0 + j->per_task : j->n;
    for (int i = i0; i < i1; i++) {
        const float *restrict x = j->x + i * sz;
        float *restrict y = j->y + i * sz;
        const float d = j->param[i];
        for (size_t p = 0; p < sz; p++) {
            const float v = x[p] + d;
            y[p] = v < lo ? lo : (v > hi ? hi : v);
        }
    }
}

int pc_adjust_brightness(pc_runtime *rt, const float *x, int n, size_t size, const float *delta,
                         float lo, float hi, float *y)
{
    if (n <= 0 || size == 0 || !(lo <= hi))
        return PC_EINVAL;
    color_job j = {.x = x, .y = y, .n = n, .size = size, .param = delta, .lo = lo, .hi = hi,
                   .per_task = images_per_task(size)};
    pc_parallel(rt, (n + j.per_task - 1) / j.per_task, brightness_task, &j);
    return PC_OK;
}
