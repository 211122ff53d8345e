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

void pc_direct_conv_pool(const pc_runtime *rt, const pc_conv_shape *s, const pc_pool_shape *p,
                         const float *x, const float *w, const float *b, int relu, int am_w,
                         int n0, int count, float *pooled, int32_t *argmax)
{
#if PC_DIRECT_X86
    if (rt->ukernel.isa == PC_ISA_AVX512)
        pc_direct_conv_pool_avx512(s, p, x, w, b, relu, am_w, n0, count, pooled, argmax);
    else
        pc_direct_conv_pool_avx2(s, p, x, w, b, relu, am_w, n0, count, pooled, argmax);
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
