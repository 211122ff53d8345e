/* direct_conv_pool.c - which direct convolution + pooling kernel serves a layer, and the call
 * to the selected ISA's (direct_conv_pool.h). */
#include "direct_conv_pool.h"

#define FILTER_MULTIPLE 32     /* the AVX-512 tile's filter block; the AVX2 one (8) divides it */

int pc_direct_conv_pool_applies(const pc_runtime *rt, const pc_conv_shape *s,
                                const pc_pool_shape *p, pc_act act)
{
    const pc_isa isa = rt->ukernel.isa;
    return PC_DIRECT_X86 && (isa == PC_ISA_AVX512 || isa == PC_ISA_AVX2) && s->c == 1 &&
           s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pl == 0 &&
           s->oh + s->kh - 1 <= s->h && s->ow + s->kw - 1 <= s->w &&
           s->o % FILTER_MULTIPLE == 0 && p->ph == 2 && p->pw == 2 && p->sh == 2 &&
           p->sw == 2 && p->pt == 0 && p->pl == 0 && p->oh > 0 && p->ow > 0 &&
           2 * p->oh == s->oh && 2 * p->ow == s->ow &&
           (act == PC_ACT_LINEAR || act == PC_ACT_RELU);
}

int pc_direct_conv_pool_backward_applies(const pc_runtime *rt, const pc_conv_shape *s,
                                         const pc_pool_shape *p)
{
    return s->kh == 3 && s->kw == 3 && pc_direct_conv_pool_applies(rt, s, p, PC_ACT_LINEAR);
}

/* Each image, filter block and pooled row in tiles of 3 pooled cells (then 2 or 1). */
void pc_direct_conv_pool(const pc_runtime *rt, const pc_conv_shape *s, const pc_pool_shape *p,
                         const float *x, const float *w, const float *b, int relu, int am_w,
                         int n0, int count, float *pooled, int32_t *argmax)
{
#if PC_DIRECT_X86
    const pc_direct_tiles *t = rt->ukernel.isa == PC_ISA_AVX512 ? &pc_direct_tiles_avx512
                                                                : &pc_direct_tiles_avx2;
    const int O = s->o;
    const size_t img_in = (size_t)s->h * s->w, img_out = (size_t)p->oh * p->ow * O;
    for (int n = n0; n < n0 + count; n++) {
        const float *xn = x + (size_t)n * img_in;
        for (int ob = 0; ob < O; ob += t->filters) {
            for (int ph = 0; ph < p->oh; ph++) {
                const float *row = xn + (size_t)(2 * ph) * s->w;
                const size_t out_row = (size_t)n * img_out + (size_t)ph * p->ow * O + ob;
                for (int pw = 0; pw < p->ow; pw += 3) {
                    const int cells = p->ow - pw < 3 ? p->ow - pw : 3;
                    t->tile[cells - 1](row + 2 * pw, s->w, s->kh, s->kw, w + ob, O,
                                       b ? b + ob : NULL, relu,
                                       pooled + out_row + (size_t)pw * O,
                                       argmax + out_row + (size_t)pw * O,
                                       2 * ph * am_w + 2 * pw, am_w);
                }
            }
        }
    }
#else
    (void)rt; (void)s; (void)p; (void)x; (void)w; (void)b; (void)relu; (void)am_w; (void)n0;
    (void)count; (void)pooled; (void)argmax;
#endif
}

void pc_direct_conv_pool_backward(const pc_runtime *rt, const pc_conv_shape *s,
                                  const pc_pool_shape *p, const float *x, const float *dpooled,
                                  const int32_t *argmax, const float *relu_pooled, int am_w,
                                  int n0, int count, int kc, int accumulate, float *dw,
                                  float *db)
{
#if PC_DIRECT_X86
    if (rt->ukernel.isa == PC_ISA_AVX512)
        pc_direct_conv_pool_backward_avx512(s, p, x, dpooled, argmax, relu_pooled, am_w, n0,
                                            count, kc, accumulate, dw, db);
    else
        pc_direct_conv_pool_backward_avx2(s, p, x, dpooled, argmax, relu_pooled, am_w, n0,
                                          count, kc, accumulate, dw, db);
#else
    (void)rt; (void)s; (void)p; (void)x; (void)dpooled; (void)argmax; (void)relu_pooled;
    (void)am_w; (void)n0; (void)count; (void)kc; (void)accumulate; (void)dw; (void)db;
#endif
}
