/*
 * conv_small.c - direct convolution for few taps per output (conv_small.h).
 *
 * The loops are written on 16-float vectors (GCC's generic vectors: one zmm, two ymm or four
 * xmm, whatever the variant's ISA has) and compiled per SIMD path (PC_SIMD_VARIANTS; the
 * forward's own variants pass the FMA flag of each path).
 */
#include "conv_small.h"

#include <stdint.h>
#include <string.h>

typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int vi16 __attribute__((vector_size(64), aligned(4)));
#define CV16(p) (*(const v16 *)(p))
#define V16(p) (*(v16 *)(p))

static inline int round16(int x) { return (x + 15) / 16 * 16; }

int pc_conv_small_applies(const pc_conv_shape *s)
{
    const long long taps = (long long)s->kh * s->kw * s->c;
    return s->c <= 4 && taps <= PC_SMALL_TAPS && taps > 1 && s->o >= 1;
}

size_t pc_conv_small_kernel_floats(const pc_conv_shape *s)
{
    return (size_t)(s->kh * s->kw * s->c + 1) * round16(s->o);
}

void pc_conv_small_pack(const pc_conv_shape *s, const float *w, const float *b, float *wp)
{
    const int T = s->kh * s->kw * s->c, O = s->o, op = round16(O);
    memset(wp, 0, pc_conv_small_kernel_floats(s) * sizeof(float));
    for (int t = 0; t < T; t++)
        memcpy(wp + (size_t)t * op, w + (size_t)t * O, (size_t)O * sizeof(float));
    if (b)
        memcpy(wp + (size_t)T * op, b, (size_t)O * sizeof(float));
}

/* the padded image's size: the cells the windows read */
static int padded_h(const pc_conv_shape *s) { return (s->oh - 1) * s->sh + s->kh; }
static int padded_w(const pc_conv_shape *s) { return (s->ow - 1) * s->sw + s->kw; }

size_t pc_conv_small_scratch_floats(const pc_conv_shape *s)
{
    const size_t T = (size_t)s->kh * s->kw * s->c;
    return (size_t)padded_h(s) * padded_w(s) * s->c + (T + 1) * round16(s->o) + 16;
}

/* xp[i][j][c] = x[i - pt][j - pl][c], zero outside x */
static void pad_image(const pc_conv_shape *s, const float *xn, float *xp)
{
    const int Hp = padded_h(s), Wp = padded_w(s), C = s->c;
    for (int i = 0; i < Hp; i++) {
        float *row = xp + (size_t)i * Wp * C;
        const int ih = i - s->pt;
        if (ih < 0 || ih >= s->h) {
            memset(row, 0, (size_t)Wp * C * sizeof(float));
            continue;
        }
        const float *src = xn + (size_t)ih * s->w * C;
        for (int j = 0; j < Wp; j++) {
            const int iw = j - s->pl;
            for (int c = 0; c < C; c++)
                row[j * C + c] = iw >= 0 && iw < s->w ? src[iw * C + c] : 0.0f;
        }
    }
}

/* ---- forward ------------------------------------------------------------------------------ */

/* Pixels are taken in groups of GROUP (their outputs or gradients stay in L1 while each block
 * of 16 filters passes over them): orgs[] are their windows' top-left cells in xp. */
#define GROUP 16

static int group_windows(const pc_conv_shape *s, const float *xp, int p0, const float **orgs)
{
    const int pix = s->oh * s->ow, ng = pix - p0 < GROUP ? pix - p0 : GROUP;
    const ptrdiff_t row = (ptrdiff_t)padded_w(s) * s->c;
    int i = p0 / s->ow, jx = p0 % s->ow;
    for (int g = 0; g < ng; g++) {
        orgs[g] = xp + (ptrdiff_t)i * s->sh * row + (ptrdiff_t)jx * s->sw * s->c;
        if (++jx == s->ow) {
            jx = 0;
            i++;
        }
    }
    return ng;
}

/* acc + x * w as the GEMM's micro-kernels compute it: one fused multiply-add on the AVX2 and
 * AVX-512 paths (fused = 1, written as fmaf per lane: GCC vectorises it into vfmadd at -O2 and
 * above, and any build, -O0 or sanitized, gives the same bits), a product then a sum on the
 * portable path (fused = 0: ISO C contracts nothing), as the portable GEMM kernel */
static inline __attribute__((always_inline)) void fmadd16(const int fused, float x,
                                                          const v16 *w, v16 *acc)
{
    if (!fused) {
        *acc += x * *w;
        return;
    }
    for (int l = 0; l < 16; l++)
        (*acc)[l] = __builtin_fmaf(x, (*w)[l], (*acc)[l]);
}

PC_SIMD_LOOP void fwd_body(const int FMA, const int KH, const int KWC, const pc_conv_shape *s,
                           const float *xp, const float *wp, int relu, float *out)
{
    const int T = KH * KWC, O = s->o, op = round16(O), pix = s->oh * s->ow;
    const ptrdiff_t row = (ptrdiff_t)padded_w(s) * s->c;
    for (int p0 = 0; p0 < pix; p0 += GROUP) {
        const float *orgs[GROUP];
        const int ng = group_windows(s, xp, p0, orgs);
        /* blocks from the last: a short last block (O not a multiple of 16) stores whole
         * vectors, its lanes past O landing on the next pixels' first outputs, which later
         * blocks (or pixels, or groups) overwrite; only where a whole vector would pass the
         * image's end is the short block stored element by element */
        for (int ob = op - 16; ob >= 0; ob -= 16) {
            v16 w[PC_SMALL_TAPS];
            for (int t = 0; t < T; t++)
                w[t] = CV16(wp + (size_t)t * op + ob);
            const v16 bias = CV16(wp + (size_t)T * op + ob);
            const int n16 = O - ob < 16 ? O - ob : 16;
            for (int g = 0; g < ng; g++) {
                const float *org = orgs[g];
                v16 acc = {0};
                for (int kh = 0; kh < KH; kh++)
                    for (int q = 0; q < KWC; q++)
                        fmadd16(FMA, org[kh * row + q], &w[kh * KWC + q], &acc);
                acc += bias;
                float *o = out + (size_t)(p0 + g) * O + ob;
                if (n16 == 16 || (size_t)(pix - p0 - g) * O - ob >= 16) {
                    if (relu)      /* 0 where acc <= 0; NaN stays NaN */
                        acc = (v16)((vi16)acc & ~(acc <= (v16){0}));
                    V16(o) = acc;
                    continue;
                }
                for (int l = 0; l < n16; l++)
                    o[l] = relu && acc[l] <= 0.0f ? 0.0f : acc[l];
            }
        }
    }
}

PC_SIMD_LOOP void fwd_image_body(const int FMA, const pc_conv_shape *s, const float *xp,
                                 const float *wp, int relu, float *out)
{
    if (s->kh == 3 && s->kw * s->c == 3)        /* 3x3 on one channel: the first layers */
        fwd_body(FMA, 3, 3, s, xp, wp, relu, out);
    else
        fwd_body(FMA, s->kh, s->kw * s->c, s, xp, wp, relu, out);
}

/* PC_SIMD_VARIANTS with the FMA flag of each path */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYCNN_NO_CLONES)
__attribute__((target("arch=x86-64-v4"), noinline)) static void
fwd_image_v4(const pc_conv_shape *s, const float *xp, const float *wp, int relu, float *out)
{
    fwd_image_body(1, s, xp, wp, relu, out);
}
__attribute__((target("arch=x86-64-v3"), noinline)) static void
fwd_image_v3(const pc_conv_shape *s, const float *xp, const float *wp, int relu, float *out)
{
    fwd_image_body(1, s, xp, wp, relu, out);
}
__attribute__((noinline)) static void
fwd_image_v1(const pc_conv_shape *s, const float *xp, const float *wp, int relu, float *out)
{
    fwd_image_body(0, s, xp, wp, relu, out);
}
static void fwd_image(pc_isa isa, const pc_conv_shape *s, const float *xp, const float *wp,
                      int relu, float *out)
{
    if (isa == PC_ISA_AVX512)
        fwd_image_v4(s, xp, wp, relu, out);
    else if (isa == PC_ISA_AVX2)
        fwd_image_v3(s, xp, wp, relu, out);
    else
        fwd_image_v1(s, xp, wp, relu, out);
}
#else
static void fwd_image(pc_isa isa, const pc_conv_shape *s, const float *xp, const float *wp,
                      int relu, float *out)
{
    (void)isa;
    fwd_image_body(0, s, xp, wp, relu, out);
}
#endif

void pc_conv_small_forward(const pc_runtime *rt, const pc_conv_shape *s, const float *wp,
                           const float *x, int relu, int n0, int count, float *out,
                           float *scratch)
{
    const size_t img = (size_t)s->h * s->w * s->c, oimg = (size_t)s->oh * s->ow * s->o;
    for (int i = 0; i < count; i++) {
        pad_image(s, x + (size_t)(n0 + i) * img, scratch);
        fwd_image(pc_loop_isa(rt), s, scratch, wp, relu, out + (size_t)i * oimg);
    }
}

/* ---- weight gradient ---------------------------------------------------------------------- */

/* g[o] for o in [ob, ob + 16): dy masked by y > 0, zeros past O */
PC_SIMD_LOOP void grad_at(v16 *out, const float *dy, const float *y, int n16)
{
    v16 g = {0};
    if (n16 == 16) {
        g = CV16(dy);
        if (y)
            g = (v16)((vi16)g & (CV16(y) > (v16){0}));
    } else {
        for (int l = 0; l < n16; l++)
            g[l] = !y || y[l] > 0.0f ? dy[l] : 0.0f;
    }
    *out = g;
}

/* The GEMM's store of one k block's sums for the lanes [ob, ob + n16) of each tap's row:
 * dw = (mode ? sum + dw : sum) (+ 0 on the SIMD kernels, whose epilogue adds a zero bias;
 * the portable kernel stores the sum as it is), then the sums restart from 0. */
static inline __attribute__((always_inline)) void flush_block(v16 *a, int T, float *dw, int O,
                                                              int ob, int n16, int mode,
                                                              int add0)
{
    for (int t = 0; t < T; t++) {
        float *d = dw + (size_t)t * O + ob;
        float v[16] __attribute__((aligned(64)));
        V16(v) = a[t];                  /* a stays in registers: only its value is stored */
        for (int l = 0; l < n16; l++) {
            float r = v[l];
            if (mode)
                r = r + d[l];
            if (add0)
                r = r + 0.0f;
            d[l] = r;
        }
        a[t] = (v16){0};
    }
}

/* This image's terms, pixels in order: acc (T rows of op floats: the current k block's sums,
 * then db's op floats: the running column sums) += x_t g and g. The chunk's pixels are in
 * k blocks of kc as the GEMM's (this image's first pixel is the chunk's `pbase`): at each
 * block's end its sums go to dw (flush_block, mode: accumulate or a block before). */
PC_SIMD_LOOP void dw_body(const int FMA, const int KH, const int KWC, const pc_conv_shape *s, const float *xp,
                          const float *dy, const float *y, float *acc, float *dw, int pbase,
                          int kc, int accumulate, int add0)
{
    const int T = KH * KWC, O = s->o, op = round16(O), pix = s->oh * s->ow;
    const ptrdiff_t row = (ptrdiff_t)padded_w(s) * s->c;
    for (int p0 = 0; p0 < pix; p0 += GROUP) {
        const float *orgs[GROUP];
        const int ng = group_windows(s, xp, p0, orgs);
        const int until0 = kc - (pbase + p0) % kc;     /* pixels to this block's end */
        for (int ob = 0; ob < op; ob += 16) {
            v16 a[PC_SMALL_TAPS];
            for (int t = 0; t < T; t++)
                a[t] = CV16(acc + (size_t)t * op + ob);
            v16 adb = CV16(acc + (size_t)T * op + ob);
            const int n16 = O - ob < 16 ? O - ob : 16;
            int until = until0;
            for (int g = 0; g < ng; g++) {
                const size_t at = (size_t)(p0 + g) * O + ob;
                /* whole vectors but where one would pass the image's end (lanes past O: sums
                 * never read) */
                v16 gv;
                grad_at(&gv, dy + at, y ? y + at : NULL,
                        (size_t)(pix - p0 - g) * O - ob >= 16 ? 16 : n16);
                if (ob == 0)            /* the next group's gradients, a group ahead */
                    for (int l = 0; l < O; l += 16)
                        __builtin_prefetch(dy + (size_t)(p0 + GROUP + g) * O + l);
                const float *org = orgs[g];
                adb += gv;
                for (int kh = 0; kh < KH; kh++)
                    for (int q = 0; q < KWC; q++)
                        fmadd16(FMA, org[kh * row + q], &gv, &a[kh * KWC + q]);
                if (--until == 0) {    /* (flush_block written out: a stays in registers) */
                    const int mode = accumulate || pbase + p0 + g + 1 > kc;
#pragma GCC unroll 32
                    for (int t = 0; t < T; t++) {
                        float v[16] __attribute__((aligned(64)));
                        V16(v) = a[t];
                        float *d = dw + (size_t)t * O + ob;
                        for (int l = 0; l < n16; l++) {
                            float r = v[l];
                            if (mode)
                                r = r + d[l];
                            if (add0)
                                r = r + 0.0f;
                            d[l] = r;
                        }
                        a[t] = (v16){0};
                    }
                    until = kc;
                }
            }
            for (int t = 0; t < T; t++)
                V16(acc + (size_t)t * op + ob) = a[t];
            V16(acc + (size_t)T * op + ob) = adb;
        }
    }
}

/* fused: the GEMM micro-kernel's FMA (add0 marks the same kernels: AVX2, AVX-512) */
PC_SIMD_LOOP void dw_image_body(const pc_conv_shape *s, const float *xp, const float *dy,
                                const float *y, float *acc, float *dw, int pbase, int kc,
                                int accumulate, int add0)
{
    if (add0 && s->kh == 3 && s->kw * s->c == 3)
        dw_body(1, 3, 3, s, xp, dy, y, acc, dw, pbase, kc, accumulate, add0);
    else if (add0)
        dw_body(1, s->kh, s->kw * s->c, s, xp, dy, y, acc, dw, pbase, kc, accumulate, add0);
    else if (s->kh == 3 && s->kw * s->c == 3)
        dw_body(0, 3, 3, s, xp, dy, y, acc, dw, pbase, kc, accumulate, add0);
    else
        dw_body(0, s->kh, s->kw * s->c, s, xp, dy, y, acc, dw, pbase, kc, accumulate, add0);
}
PC_SIMD_VARIANTS(dw_image, (const pc_conv_shape *s, const float *xp, const float *dy,
                            const float *y, float *acc, float *dw, int pbase, int kc,
                            int accumulate, int add0),
                 (s, xp, dy, y, acc, dw, pbase, kc, accumulate, add0))

void pc_conv_small_dw(const pc_runtime *rt, const pc_conv_shape *s, const float *x,
                      const float *dy, const float *y, int n0, int count, int first, int kc,
                      float *dw, float *db, float *scratch)
{
    const int T = s->kh * s->kw * s->c, O = s->o, op = round16(O), pix = s->oh * s->ow;
    const size_t img = (size_t)s->h * s->w * s->c, oimg = (size_t)pix * O;
    const int add0 = rt->ukernel.isa != PC_ISA_GENERIC, accumulate = !first;
    float *xp = scratch;
    float *acc = scratch + (size_t)padded_h(s) * padded_w(s) * s->c;
    acc = (float *)(((uintptr_t)acc + 63) & ~(uintptr_t)63);
    memset(acc, 0, (size_t)(T + 1) * op * sizeof(float));
    memcpy(acc + (size_t)T * op, db, (size_t)O * sizeof(float));   /* column sums go on */
    for (int i = 0; i < count; i++) {
        pad_image(s, x + (size_t)(n0 + i) * img, xp);
        dw_image(pc_loop_isa(rt), s, xp, dy + (size_t)i * oimg, y ? y + (size_t)i * oimg : NULL,
                 acc, dw, i * pix, kc, accumulate, add0);
    }
    const int rows = count * pix;
    if (rows % kc) {            /* the last, short k block */
        for (int ob = 0; ob < op; ob += 16) {
            v16 a[PC_SMALL_TAPS];
            for (int t = 0; t < T; t++)
                a[t] = CV16(acc + (size_t)t * op + ob);
            flush_block(a, T, dw, O, ob, O - ob < 16 ? O - ob : 16, accumulate || rows > kc,
                        add0);
        }
    }
    memcpy(db, acc + (size_t)T * op, (size_t)O * sizeof(float));
}
