/* dropout.c - Dropout's mask from a counter-based generator (pycnn.h, "dropout").
 *
 * Element i is kept when the top 24 bits of hash(key, i) reach the rate's threshold: the mask
 * is a pure function of (key, i), so it is the same for any thread count and any split into
 * tasks, and costs a few integer operations per element in vectorised loops (no generator
 * state to carry from one element to the next). The hash: two rounds of a 32-bit integer
 * finaliser (shift-xor-multiply, a bijection of the 32-bit words) with the key's halves and the
 * index's high word mixed in between. */
#include "pycnn.h"

#include <math.h>

#define DROP_BLOCK 16384   /* elements per task */

static inline uint32_t mix32(uint32_t v)
{
    v ^= v >> 16;
    v *= 0x7feb352dU;
    v ^= v >> 15;
    v *= 0x846ca68bU;
    v ^= v >> 16;
    return v;
}

uint32_t pc_dropout_bits(uint64_t key, uint64_t i)
{
    const uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    const uint32_t hi = mix32((uint32_t)(i >> 32) ^ k1);
    return mix32(mix32((uint32_t)i ^ k0) ^ hi);
}

uint32_t pc_dropout_threshold(float rate)
{
    /* u = bits >> 8 is kept when u * 2^-24 >= rate (the float32 comparison, exact) */
    const double t = ceil((double)rate * 16777216.0);
    return t <= 0.0 ? 0u : (t >= 16777216.0 ? 16777216u : (uint32_t)t);
}

/* mask = kept ? scale : 0, y = x * mask, for elements i0 .. i0 + n - 1 */
PC_SIMD_LOOP void drop_fwd_body(const float *restrict x, float *restrict y,
                                float *restrict mask, size_t n, uint64_t i0, uint32_t k0,
                                uint32_t hi, uint32_t thr, float scale)
{
    for (size_t k = 0; k < n; k++) {
        uint32_t v = (uint32_t)(i0 + k) ^ k0;
        v ^= v >> 16;
        v *= 0x7feb352dU;
        v ^= v >> 15;
        v *= 0x846ca68bU;
        v ^= v >> 16;
        v ^= hi;
        v ^= v >> 16;
        v *= 0x7feb352dU;
        v ^= v >> 15;
        v *= 0x846ca68bU;
        v ^= v >> 16;
        const float mk = (v >> 8) >= thr ? scale : 0.0f;
        mask[k] = mk;
        y[k] = x[k] * mk;
    }
}
PC_SIMD_VARIANTS(drop_fwd, (const float *restrict x, float *restrict y, float *restrict mask,
                            size_t n, uint64_t i0, uint32_t k0, uint32_t hi, uint32_t thr,
                            float scale),
                 (x, y, mask, n, i0, k0, hi, thr, scale))

PC_SIMD_LOOP void drop_bwd_body(const float *restrict dy, const float *restrict mask,
                                float *restrict dx, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dx[k] = dy[k] * mask[k];
}
PC_SIMD_VARIANTS(drop_bwd, (const float *restrict dy, const float *restrict mask,
                            float *restrict dx, size_t n),
                 (dy, mask, dx, n))

typedef struct {
    const float *x;
    float *y;
    const float *mask_in;
    float *mask;
    size_t n;
    uint64_t key;
    uint32_t thr;
    float scale;
    pc_isa isa;
} drop_job;

static void drop_fwd_task(void *ctx, int task, int thread)
{
    (void)thread;
    const drop_job *j = ctx;
    const size_t a = (size_t)task * DROP_BLOCK;
    const size_t n = j->n - a < DROP_BLOCK ? j->n - a : DROP_BLOCK;
    /* a block never crosses a multiple of 2^32 (DROP_BLOCK divides it): one high word */
    const uint32_t hi = mix32((uint32_t)((uint64_t)a >> 32) ^ (uint32_t)(j->key >> 32));
    drop_fwd(j->isa, j->x + a, j->y + a, j->mask + a, n, a, (uint32_t)j->key, hi, j->thr,
             j->scale);
}

static void drop_bwd_task(void *ctx, int task, int thread)
{
    (void)thread;
    const drop_job *j = ctx;
    const size_t a = (size_t)task * DROP_BLOCK;
    const size_t n = j->n - a < DROP_BLOCK ? j->n - a : DROP_BLOCK;
    drop_bwd(j->isa, j->x + a, j->mask_in + a, j->y + a, n);
}

static int drop_valid(size_t n, double rate)
{
    return n > 0 && n / DROP_BLOCK < (size_t)1 << 30 && rate >= 0.0 && rate < 1.0;
}

static float drop_scale(double rate)
{
    return (float)(1.0 / (1.0 - rate));
}

int pc_dropout_forward(pc_runtime *rt, const float *x, size_t n, double rate, uint64_t key,
                       float *y, float *mask)
{
    if (!drop_valid(n, rate))
        return PC_EINVAL;
    drop_job j = {.x = x, .y = y, .mask = mask, .n = n, .key = key,
                  .thr = pc_dropout_threshold((float)rate), .scale = drop_scale(rate),
                  .isa = pc_loop_isa(rt)};
    return pc_parallel(rt, (int)((n + DROP_BLOCK - 1) / DROP_BLOCK), drop_fwd_task, &j);
}

int pc_dropout_backward(pc_runtime *rt, const float *dy, const float *mask, size_t n,
                        float *dx)
{
    if (n == 0 || n / DROP_BLOCK >= (size_t)1 << 30)
        return PC_EINVAL;
    drop_job j = {.x = dy, .y = dx, .mask_in = mask, .n = n, .isa = pc_loop_isa(rt)};
    return pc_parallel(rt, (int)((n + DROP_BLOCK - 1) / DROP_BLOCK), drop_bwd_task, &j);
}
