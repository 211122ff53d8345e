/*
 * gemm.c - the one GEMM driver (BLIS-style): cache blocking, packing and threading around the
 * register-blocked micro-kernel of the selected SIMD path (gemm_kernels.h).
 *
 *   for pc in K by kc:                 pack B[pc:pc+kc, :] into nr-wide slivers  (shared)
 *     for ic in M by mc (one task):    pack A[ic:ic+mc, pc:pc+kc] into mr-tall slivers (per thread)
 *       for jr in N by nr, ir by mr:   micro-kernel on a mr x nr tile of C
 *
 * Where the SIMD path has strided micro-kernels (runtime.h), an operand already laid out like
 * a packed sliver with another stride is read where it is instead: A by rows (k >= 128) or by
 * columns (direct_a), a row-major B of whole nr-column slivers (direct_b).
 *
 * Every element of C sums its k terms in increasing order whatever the split into tasks, so the
 * result does not depend on the thread count. The epilogue (bias, relu) runs on each tile right
 * after its last k block, while the tile is still in cache.
 */
#include "pycnn.h"
#include "gemm_kernels.h"

#include <stdint.h>
#include <string.h>

#define TRANSPOSE_RUN 16    /* rows of k read in a run when packing a B stored as B^T */

static inline int min_i(int a, int b) { return a < b ? a : b; }
static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* The k block: at most the kernel's kc, with K split into equal blocks (288 -> one block of 288
 * rather than 256 + 32, whose short tail would pay a full load/store of C for little work). */
static int k_block(const pc_ukernel *uk, int k)
{
    const int limit = uk->kc + uk->kc / 4;
    if (k <= limit)
        return k;
    const int blocks = (k + limit - 1) / limit;
    return (k + blocks - 1) / blocks;
}

/* A[i0:i0+mb, p0:p0+kb] -> slivers of mr rows: dst[s][p][i] */
PC_SIMD_LOOP void pack_a_body(const pc_gemm_args *g, int i0, int mb, int p0, int kb, int mr,
                              float *dst)
{
    for (int is = 0; is < mb; is += mr) {
        const int me = min_i(mr, mb - is);
        const float *base = g->a + (ptrdiff_t)(i0 + is) * g->rsa + (ptrdiff_t)p0 * g->csa;
        if (g->rsa == 1) {                      /* columns of A contiguous: copy runs of me */
            for (int p = 0; p < kb; p++) {
                float *d = dst + (ptrdiff_t)p * mr;
                pc_copy_floats(d, base + (ptrdiff_t)p * g->csa, (size_t)me);
                for (int i = me; i < mr; i++)
                    d[i] = 0.0f;
            }
        } else if (g->csa == 1) {               /* rows contiguous: read each row in order */
            for (int i = 0; i < me; i++) {
                const float *row = base + (ptrdiff_t)i * g->rsa;
                for (int p = 0; p < kb; p++)
                    dst[(ptrdiff_t)p * mr + i] = row[p];
            }
            for (int i = me; i < mr; i++)
                for (int p = 0; p < kb; p++)
                    dst[(ptrdiff_t)p * mr + i] = 0.0f;
        } else {
            for (int p = 0; p < kb; p++)
                for (int i = 0; i < mr; i++)
                    dst[(ptrdiff_t)p * mr + i] =
                        i < me ? base[(ptrdiff_t)i * g->rsa + (ptrdiff_t)p * g->csa] : 0.0f;
        }
        dst += (ptrdiff_t)kb * mr;
    }
}

PC_SIMD_VARIANTS(pack_a, (const pc_gemm_args *g, int i0, int mb, int p0, int kb, int mr,
                          float *dst),
                 (g, i0, mb, p0, kb, mr, dst))

static inline void pack_a_any(pc_isa isa, const pc_gemm_args *g, int i0, int mb, int p0, int kb,
                              int mr, float *dst)
{
    if (g->pack_a)
        g->pack_a(g->pack_ctx, i0, mb, p0, kb, mr, dst);
    else
        pack_a(isa, g, i0, mb, p0, kb, mr, dst);
}

/* B[p0:p0+kb, j0:j0+nb] -> slivers of nr columns: dst[s][p][j] */
PC_SIMD_LOOP void pack_b_body(const pc_gemm_args *g, int p0, int kb, int j0, int nb, int nr,
                              float *dst)
{
    for (int js = 0; js < nb; js += nr) {
        const int ne = min_i(nr, nb - js);
        if (g->rsb == 1 && g->csb != 1) {
            /* B^T stored row-major (columns of B contiguous): a transposition. Each of the
             * sliver's columns is read TRANSPOSE_RUN floats at a time, in order; walking all ne
             * columns per k instead touches ne lines a large power-of-two stride apart, which
             * share a few L1 sets and miss on every load (the 10-class layers' inputs). */
            const float *col0 = g->b + (ptrdiff_t)p0 + (ptrdiff_t)(j0 + js) * g->csb;
            for (int pb = 0; pb < kb; pb += TRANSPOSE_RUN) {
                const int run = min_i(TRANSPOSE_RUN, kb - pb);
                float *d = dst + (ptrdiff_t)pb * nr;
                for (int j = 0; j < ne; j++) {
                    const float *src = col0 + (ptrdiff_t)j * g->csb + pb;
                    for (int q = 0; q < run; q++)
                        d[(ptrdiff_t)q * nr + j] = src[q];
                }
                for (int q = 0; q < run; q++)
                    for (int j = ne; j < nr; j++)
                        d[(ptrdiff_t)q * nr + j] = 0.0f;
            }
            dst += (ptrdiff_t)kb * nr;
            continue;
        }
        for (int p = 0; p < kb; p++) {
            const float *src = g->b + (ptrdiff_t)(p0 + p) * g->rsb + (ptrdiff_t)(j0 + js) * g->csb;
            float *d = dst + (ptrdiff_t)p * nr;
            if (g->csb == 1) {
                pc_copy_floats(d, src, (size_t)ne);
            } else {
                for (int j = 0; j < ne; j++)
                    d[j] = src[(ptrdiff_t)j * g->csb];
            }
            for (int j = ne; j < nr; j++)
                d[j] = 0.0f;
        }
        dst += (ptrdiff_t)kb * nr;
    }
}

PC_SIMD_VARIANTS(pack_b, (const pc_gemm_args *g, int p0, int kb, int j0, int nb, int nr,
                          float *dst),
                 (g, p0, kb, j0, nb, nr, dst))

static inline const float *bias_at(const pc_gemm_args *g, int j)
{
    return g->bias ? g->bias + j : NULL;
}

static void epilogue(const pc_gemm_args *g, float *c, int i_count, int j0, int j_count)
{
    for (int i = 0; i < i_count; i++) {
        float *ci = c + (ptrdiff_t)i * g->ldc;
        if (g->bias)
            for (int j = 0; j < j_count; j++)
                ci[j] += g->bias[j0 + j];
        if (g->act == PC_ACT_RELU)
            for (int j = 0; j < j_count; j++)
                ci[j] = ci[j] <= 0.0f ? 0.0f : ci[j];   /* NaN stays NaN */
    }
}

/* Whether the micro-kernel reads A's full panels where they are, and how: A stored
 * column-major (rsa == 1: a weight gradient's x^T, a convolution's column buffer transposed),
 * each k step of a panel mr consecutive floats (the packed layout with another stride); or
 * row-major (csa == 1: a forward pass's x, a dy chunk), mr rows of k consecutive floats. */
enum { A_PACKED = 0, A_COLUMNS = 1, A_ROWS = 2 };
#define ROWS_MIN_K 128   /* shorter rows (a conv dx's k = 64 filters) measured faster packed */

/* Whether B's rows are read where they are (B row-major, whole slivers) instead of packed. */
static int direct_b(const pc_ukernel *uk, const pc_gemm_args *g)
{
    return uk->fn_cols && !g->b_packed && g->csb == 1 && g->n % uk->nr == 0;
}

static int rows_in_place(const pc_ukernel *uk, int k)
{
    return uk->fn_rows && k >= ROWS_MIN_K;
}

int pc_gemm_reads_rows_in_place(const pc_runtime *rt, int k)
{
    return rows_in_place(&rt->ukernel, k);
}

static int direct_a(const pc_ukernel *uk, const pc_gemm_args *g)
{
    if (g->pack_a)
        return A_PACKED;
    if (uk->fn_cols && g->rsa == 1)
        return A_COLUMNS;
    if (g->csa == 1 && rows_in_place(uk, g->k))
        return A_ROWS;
    return A_PACKED;
}

/* C[ic:ic+mb, jc:jc+nb] (+)= A[ic:ic+mb, p0:p0+kb] * B[p0:p0+kb, jc:jc+nb]. With a_mode
 * A_PACKED the block of A is packed in ap; otherwise (direct_a) its full panels are read in
 * place and a short last panel is packed in ap. B is the packed slivers at bp, or with
 * b_in_place (direct_b) B's rows where they are (bp unused). */
static void macro_kernel(const pc_ukernel *uk, const pc_gemm_args *g, int ic, int mb, int jc,
                         int nb, int p0, int kb, float *ap, const float *bp, int accumulate,
                         int last, int a_mode, int b_in_place, float *b_tail)
{
    const pc_ukernel_strided_fn fn_in_place = a_mode == A_ROWS ? uk->fn_rows : uk->fn_cols;
    const ptrdiff_t lda = a_mode == A_ROWS ? g->rsa : g->csa;
    const int mr = uk->mr, nr = uk->nr;
    const ptrdiff_t ldb = b_in_place ? g->rsb : nr;
    float tile[16 * 64] __attribute__((aligned(64)));   /* mr * nr <= 1024 for every kernel */
    const int short_panel = mb / mr * mr;
    if (a_mode != A_PACKED && short_panel < mb)
        pack_a(uk->isa, g, ic + short_panel, mb - short_panel, p0, kb, mr, ap);
    for (int jr = 0; jr < nb; jr += nr) {
        const int ne = min_i(nr, nb - jr);
        const float *bs = b_in_place ? g->b + (ptrdiff_t)p0 * g->rsb + jc + jr
                                     : bp + (ptrdiff_t)jr * kb;
        ptrdiff_t ldb_s = ldb;
        if (b_in_place && ne < nr) {   /* B's short last sliver (b_tail): packed */
            pack_b(uk->isa, g, p0, kb, jc + jr, ne, nr, b_tail);
            bs = b_tail;
            ldb_s = nr;
        }
        for (int ir = 0; ir < mb; ir += mr) {
            const int me = min_i(mr, mb - ir);
            const int in_place = a_mode != A_PACKED && me == mr;
            const float *as = in_place ? g->a + (ptrdiff_t)(ic + ir) * g->rsa +
                                             (ptrdiff_t)p0 * g->csa
                              : a_mode != A_PACKED ? ap : ap + (ptrdiff_t)ir * kb;
            float *c = g->c + (ptrdiff_t)(ic + ir) * g->ldc + jc + jr;
            float *out = me == mr && ne == nr ? c : tile;
            const ptrdiff_t ldo = out == c ? g->ldc : nr;
            const int fused = out == c && last;
            const float *bias = fused ? bias_at(g, jc + jr) : NULL;
            const int relu = fused && g->act == PC_ACT_RELU;
            if (out == tile && accumulate)
                for (int i = 0; i < me; i++)
                    pc_copy_floats(tile + i * nr, c + (ptrdiff_t)i * g->ldc, (size_t)ne);
            if (in_place)
                fn_in_place(kb, as, lda, bs, ldb_s, out, ldo, accumulate, bias, relu);
            else if (b_in_place)       /* a packed panel is A by columns with stride mr */
                uk->fn_cols(kb, as, mr, bs, ldb_s, out, ldo, accumulate, bias, relu);
            else
                uk->fn(kb, as, bs, out, ldo, accumulate, bias, relu);
            if (out == c)
                continue;
            for (int i = 0; i < me; i++)
                pc_copy_floats(c + (ptrdiff_t)i * g->ldc, tile + i * nr, (size_t)ne);
            if (last && (g->bias || g->act == PC_ACT_RELU))
                epilogue(g, c, me, jc + jr, ne);
        }
    }
}

/* C[i0:i0+rows][0:n] = (accumulate ? C : 0) + S, S(r, j) = s[r*rs + j*cs]; then the epilogue:
 * how the products computed outside the micro-kernel's tiles (transposed, narrow) land in C */
static void store_sums(const pc_gemm_args *g, int i0, int rows, const float *s, ptrdiff_t rs,
                       ptrdiff_t cs)
{
    float *c0 = g->c + (ptrdiff_t)i0 * g->ldc;
    for (int r = 0; r < rows; r++) {
        float *c = c0 + (ptrdiff_t)r * g->ldc;
        for (int j = 0; j < g->n; j++) {
            const float v = s[r * rs + j * cs];
            c[j] = g->accumulate ? v + c[j] : v;
        }
    }
    epilogue(g, c0, rows, 0, g->n);
}

/* Whether C takes the sums as they are: no accumulation, bias or activation. */
static int plain_sums(const pc_gemm_args *g)
{
    return !g->accumulate && !g->bias && g->act == PC_ACT_LINEAR;
}

static int gemm_k_zero(const pc_gemm_args *g)
{
    for (int i = 0; i < g->m; i++) {
        float *ci = g->c + (ptrdiff_t)i * g->ldc;
        if (!g->accumulate)
            memset(ci, 0, (size_t)g->n * sizeof(float));
    }
    epilogue(g, g->c, g->m, 0, g->n);
    return PC_OK;
}

/* The ISA's kernel with shorter tiles number i (i = 0, 1, ...), or NULL */
static const pc_ukernel *short_tiles(const pc_runtime *rt, int i)
{
#if defined(__x86_64__) || defined(__i386__)
    if (rt->ukernel.isa == PC_ISA_AVX512)
        return pc_ukernel_avx512_short(i);
#endif
    (void)rt;
    (void)i;
    return NULL;
}

size_t pc_gemm_scratch_floats(const pc_runtime *rt, int m, int n, int k)
{
    const pc_ukernel *uk = &rt->ukernel;
    const int kc = k_block(uk, k > 0 ? k : 1);
    int mc = min_i(uk->mc, round_up(m > 0 ? m : 1, uk->mr));
    for (int i = 0; short_tiles(rt, i); i++) {     /* enough for pc_gemm_serial_fit's too */
        const pc_ukernel *v = short_tiles(rt, i);
        const int mv = min_i(v->mc, round_up(m > 0 ? m : 1, v->mr));
        mc = mv > mc ? mv : mc;
    }
    return (size_t)kc * (size_t)round_up(n > 0 ? n : 1, uk->nr) + (size_t)kc * (size_t)mc;
}

/* the kernel whose tiles leave the fewest empty rows in m (the ISA's own on a tie) */
static const pc_ukernel *fit_kernel(const pc_runtime *rt, int m)
{
    const pc_ukernel *best = &rt->ukernel;
    for (int i = 0; short_tiles(rt, i); i++) {
        const pc_ukernel *v = short_tiles(rt, i);
        if (round_up(m, v->mr) - m < round_up(m, best->mr) - m)
            best = v;
    }
    return best;
}

int pc_gemm_fit_mr(const pc_runtime *rt, int m)
{
    return fit_kernel(rt, m > 0 ? m : 1)->mr;
}

int pc_gemm_k_block(const pc_runtime *rt, int k)
{
    return k_block(&rt->ukernel, k > 0 ? k : 1);
}

size_t pc_gemm_packed_b_floats(const pc_runtime *rt, int k, int n)
{
    const pc_ukernel *uk = &rt->ukernel;
    return (size_t)(k > 0 ? k : 0) * (size_t)round_up(n > 0 ? n : 1, uk->nr);
}

void pc_gemm_pack_b(const pc_runtime *rt, const pc_gemm_args *g, float *dst)
{
    const pc_ukernel *uk = &rt->ukernel;
    if (g->k <= 0 || g->n <= 0)
        return;
    const int kc = k_block(uk, g->k);
    const ptrdiff_t npad = round_up(g->n, uk->nr);
    for (int pc = 0; pc < g->k; pc += kc)
        pack_b(uk->isa, g, pc, min_i(kc, g->k - pc), 0, g->n, uk->nr,
               dst + (ptrdiff_t)pc * npad);
}

int pc_gemm_sparse_a(const pc_runtime *rt, const pc_gemm_args *g)
{
    const pc_ukernel *uk = &rt->ukernel;
    if (!uk->sparse_rows || g->b_packed || g->pack_a || !plain_sums(g) || g->csa != 1 ||
        g->csb != 1 || g->rsb % 16 != 0 || g->rsb < round_up(g->n, 16) ||
        (uintptr_t)g->b % 64 != 0 || g->k <= 0 || g->k > PC_SPARSE_MAX_K ||
        g->k > k_block(uk, g->k) || g->m <= 0 || g->n <= 0)
        return -1;
    uk->sparse_rows(g->m, g->n, g->k, g->a, g->rsa, g->b, g->rsb, g->c, g->ldc);
    return 0;
}

int pc_gemm_sparse_tn(const pc_runtime *rt, int k, int nc, int nq, const float *a,
                      ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *out, ptrdiff_t ldo,
                      int accumulate)
{
    const pc_ukernel *uk = &rt->ukernel;
    if (!uk->sparse_tn || k > PC_SPARSE_MAX_K)
        return -1;
    if (k > 0 && nc > 0 && nq > 0)
        uk->sparse_tn(k, nc, nq, a, lda, b, ldb, out, ldo, accumulate);
    return 0;
}

int pc_gemm_has_sparse(const pc_runtime *rt, int k)
{
    const pc_ukernel *uk = &rt->ukernel;
    return uk->sparse_rows && uk->sparse_tn && uk->kc + uk->kc / 4 <= PC_SPARSE_MAX_K &&
           k <= PC_SPARSE_MAX_K;
}

static void gemm_serial(const pc_ukernel *uk, const pc_gemm_args *g, float *scratch);

void pc_gemm_serial(const pc_runtime *rt, const pc_gemm_args *g, float *scratch)
{
    gemm_serial(&rt->ukernel, g, scratch);
}

void pc_gemm_serial_fit(const pc_runtime *rt, const pc_gemm_args *g, float *scratch)
{
    /* the packed B of a caller (b_packed) is laid out for the ISA's kernel: same nr and kc */
    gemm_serial(fit_kernel(rt, g->m > 0 ? g->m : 1), g, scratch);
}

/* A product of one column (a convolution with one filter, the weight gradient of a 1x1 one)
 * by pc_gemm_one_column_avx512, vectorised over C's rows: the 12 x 32 tile would use one of its
 * 32 columns. The same k blocks, sums and epilogue as the tiles: the same bits. */
static int one_column(const pc_ukernel *uk, const pc_gemm_args *g)
{
#if defined(__x86_64__) || defined(__i386__)
    if (uk->isa != PC_ISA_AVX512 || uk->nr != 32 || g->n != 1 || g->pack_a ||
        (g->rsa != 1 && g->csa != 1))
        return 0;
    const int kc = k_block(uk, g->k);
    for (int pc = 0; pc < g->k; pc += kc) {
        const int kb = min_i(kc, g->k - pc);
        const float *b = g->b_packed ? g->b_packed + (ptrdiff_t)pc * uk->nr
                                     : g->b + (ptrdiff_t)pc * g->rsb;
        pc_gemm_one_column_avx512(g->m, kb, g->a + (ptrdiff_t)pc * g->csa, g->rsa, g->csa, b,
                                  g->b_packed ? uk->nr : g->rsb, g->c, g->ldc,
                                  pc > 0 || g->accumulate);
    }
    if (g->bias || g->act == PC_ACT_RELU)
        epilogue(g, g->c, g->m, 0, 1);
    return 1;
#else
    (void)uk;
    (void)g;
    return 0;
#endif
}

static void gemm_serial(const pc_ukernel *uk, const pc_gemm_args *g, float *scratch)
{
    if (g->m <= 0 || g->n <= 0)
        return;
    if (g->k <= 0) {
        gemm_k_zero(g);
        return;
    }
    if (one_column(uk, g))
        return;
    const int kc = k_block(uk, g->k);
    const int mc = min_i(uk->mc, round_up(g->m, uk->mr));
    float *bp = scratch;
    float *ap = scratch + (ptrdiff_t)kc * round_up(g->n, uk->nr);
    /* B's rows read in place: a conv's dy chunk for its weight gradient, or its column buffer
     * for the transposed one, whose short last sliver is packed into bp (b_tail) */
    const int b_tail = !direct_b(uk, g) && uk->fn_cols && !g->b_packed && g->csb == 1 &&
                       g->n > uk->nr;
    const int b_in_place = direct_b(uk, g) || b_tail;
    const int a_mode = direct_a(uk, g);
    for (int pc = 0; pc < g->k; pc += kc) {
        const int kb = min_i(kc, g->k - pc);
        const int accumulate = pc > 0 || g->accumulate;
        const int last = pc + kb >= g->k;
        const float *bs = b_in_place ? NULL
                          : g->b_packed ? g->b_packed + (ptrdiff_t)pc * round_up(g->n, uk->nr)
                          : bp;
        if (!b_in_place && !g->b_packed)
            pack_b(uk->isa, g, pc, kb, 0, g->n, uk->nr, bp);
        for (int ic = 0; ic < g->m; ic += mc) {
            const int mb = min_i(mc, g->m - ic);
            if (a_mode == A_PACKED)
                pack_a_any(uk->isa, g, ic, mb, pc, kb, uk->mr, ap);
            macro_kernel(uk, g, ic, mb, 0, g->n, pc, kb, ap, bs, accumulate, last, a_mode,
                         b_in_place, b_tail ? bp : NULL);
        }
    }
}

/* ---- the parallel driver ------------------------------------------------------------------- */

typedef struct {
    pc_runtime *rt;
    const pc_gemm_args *g;
    int pc, kb, accumulate, last;
    int mc, mblocks;
    int nsplit, slivers_per_split;
    int slivers_per_pack;  /* B is packed by all threads, whatever the compute split */
    int b_in_place;        /* or read where it is (direct_b): no packing */
    float *bp;
    int failed;
} gemm_job;

static void pack_b_task(void *ctx, int task, int thread)
{
    (void)thread;
    gemm_job *j = ctx;
    const int nr = j->rt->ukernel.nr;
    const int j0 = task * j->slivers_per_pack * nr;
    const int nb = min_i(j->slivers_per_pack * nr, j->g->n - j0);
    if (nb > 0)
        pack_b(j->rt->ukernel.isa, j->g, j->pc, j->kb, j0, nb, nr,
               j->bp + (ptrdiff_t)j0 * j->kb);
}

static void compute_task(void *ctx, int task, int thread)
{
    gemm_job *j = ctx;
    const pc_ukernel *uk = &j->rt->ukernel;
    const int mi = task / j->nsplit, ni = task % j->nsplit;
    const int ic = mi * j->mc;
    const int mb = min_i(j->mc, j->g->m - ic);
    const int j0 = ni * j->slivers_per_split * uk->nr;
    const int nb = min_i(j->slivers_per_split * uk->nr, j->g->n - j0);
    if (mb <= 0 || nb <= 0)
        return;
    float *ap = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK, (size_t)j->mc * j->kb);
    if (!ap) {
        j->failed = 1;
        return;
    }
    const int a_mode = direct_a(uk, j->g);
    if (a_mode == A_PACKED)
        pack_a_any(uk->isa, j->g, ic, mb, j->pc, j->kb, uk->mr, ap);
    const float *bs = j->b_in_place ? NULL : j->bp + (ptrdiff_t)j0 * j->kb;
    macro_kernel(uk, j->g, ic, mb, j0, nb, j->pc, j->kb, ap, bs, j->accumulate, j->last, a_mode,
                 j->b_in_place, NULL);
}

/* ---- the column-split driver, for short A (M within one mc block, as in dense layers) ------
 * Each task owns a range of B's nr-slivers for the whole k loop: it packs its own B columns
 * (unless direct_b reads them in place) and (all of) A into its thread scratch, so one
 * parallel call does the whole product with no barrier between k blocks, and the threads get
 * equal column counts whatever M is. */
typedef struct {
    pc_runtime *rt;
    const pc_gemm_args *g;
    int kc, mc, slivers_per_task;
    int failed;
} gemm_cols_job;

static void cols_task(void *ctx, int task, int thread)
{
    gemm_cols_job *j = ctx;
    const pc_gemm_args *g = j->g;
    const pc_ukernel *uk = &j->rt->ukernel;
    const int j0 = task * j->slivers_per_task * uk->nr;
    const int nb = min_i(j->slivers_per_task * uk->nr, g->n - j0);
    if (nb <= 0)
        return;
    const int b_in_place = direct_b(uk, g);
    const size_t nbp = b_in_place ? 0 : (size_t)round_up(nb, uk->nr);
    float *bp = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK,
                                  (size_t)j->kc * (nbp + (size_t)j->mc));
    if (!bp) {
        j->failed = 1;
        return;
    }
    float *ap = bp + (ptrdiff_t)j->kc * (ptrdiff_t)nbp;
    const int a_mode = direct_a(uk, g);
    for (int pc = 0; pc < g->k; pc += j->kc) {
        const int kb = min_i(j->kc, g->k - pc);
        const int accumulate = pc > 0 || g->accumulate;
        const int last = pc + kb >= g->k;
        if (!b_in_place)
            pack_b(uk->isa, g, pc, kb, j0, nb, uk->nr, bp);
        for (int ic = 0; ic < g->m; ic += j->mc) {
            const int mb = min_i(j->mc, g->m - ic);
            if (a_mode == A_PACKED)
                pack_a_any(uk->isa, g, ic, mb, pc, kb, uk->mr, ap);
            macro_kernel(uk, g, ic, mb, j0, nb, pc, kb, ap, bp, accumulate, last, a_mode,
                         b_in_place, NULL);
        }
    }
}

/* Fraction of the threads' time doing useful work when `units` equal units are dealt out. */
static double balance(int units, int nthreads)
{
    const int rounds = (units + nthreads - 1) / nthreads;
    return (double)units / ((double)rounds * nthreads);
}

/* Use the column split when A fits one mc block and columns divide better than rows. */
static int split_by_columns(const pc_ukernel *uk, const pc_gemm_args *g, int nthreads)
{
    if (g->m > uk->mc || g->pack_a)
        return 0;
    const int panels = (g->m + uk->mr - 1) / uk->mr;
    const int slivers = (g->n + uk->nr - 1) / uk->nr;
    if (slivers < nthreads)
        return 0;
    return balance(slivers, nthreads) > balance(panels, nthreads);
}

static int gemm_by_columns(pc_runtime *rt, const pc_gemm_args *g)
{
    const pc_ukernel *uk = &rt->ukernel;
    const int nthreads = rt->nthreads;
    const int slivers = (g->n + uk->nr - 1) / uk->nr;
    gemm_cols_job j;
    memset(&j, 0, sizeof j);
    j.rt = rt;
    j.g = g;
    j.kc = k_block(uk, g->k);
    j.mc = min_i(uk->mc, round_up(g->m, uk->mr));
    j.slivers_per_task = (slivers + nthreads - 1) / nthreads;
    const int ntasks = (slivers + j.slivers_per_task - 1) / j.slivers_per_task;
    pc_parallel(rt, ntasks, cols_task, &j);
    return j.failed ? PC_ENOMEM : PC_OK;
}

/* ---- narrow C: computed as C^T = B^T A^T ------------------------------------------------------
 * A product with few columns (a 10-class output layer: n = 10 of the 32 lanes of a sliver) wastes
 * most of the micro-kernel; transposed, the 10 become rows of one mr-tall panel and the many rows
 * fill whole slivers. C^T goes to scratch, then back into C with the accumulation and the
 * epilogue. The path depends on the shapes only, so results stay thread-count independent. */
static double tile_use(int rows, int cols, int mr, int nr)
{
    return (double)rows / round_up(rows, mr) * (double)cols / round_up(cols, nr);
}

static int narrow_c(const pc_ukernel *uk, const pc_gemm_args *g)
{
    return !g->pack_a && !g->b_packed && g->n < uk->nr &&
           tile_use(g->n, g->m, uk->mr, uk->nr) > 1.5 * tile_use(g->m, g->n, uk->mr, uk->nr);
}

static int gemm_transposed(pc_runtime *rt, const pc_gemm_args *g, int parallel)
{
    float *t = pc_shared_scratch(rt, PC_SHARED_SLOT_TRANSPOSED, (size_t)g->m * g->n);
    if (!t)
        return PC_ENOMEM;
    const pc_gemm_args gt = {
        .m = g->n, .n = g->m, .k = g->k,
        .a = g->b, .rsa = g->csb, .csa = g->rsb,
        .b = g->a, .rsb = g->csa, .csb = g->rsa,
        .c = t, .ldc = g->m, .accumulate = 0, .bias = NULL, .act = PC_ACT_LINEAR,
    };
    const int rc = pc_gemm(rt, &gt, parallel);
    if (rc)
        return rc;
    store_sums(g, 0, g->m, t, 1, g->m);
    return PC_OK;
}

/* ---- narrow C by the ISA's narrow kernels (runtime.h) -----------------------------------------
 * n <= PC_NARROW_N columns. With A's rows contiguous (a forward pass x w), dot products of
 * rows of A with rows of B^T; with A^T's rows contiguous (a weight gradient x^T dy), outer
 * products of A^T's rows with broadcasts of B's. Neither packs A. For the dot products each
 * task builds B^T itself, in its thread's scratch (n x k, L1- or L2-sized): the tasks split
 * the rows, one per thread, and no thread waits for a shared copy or reads one across cores.
 * Each element is computed once, in the same order, whichever task computes it: the result
 * does not depend on the thread count. Each block's sums land in C by store_sums (or straight
 * from the outer-product kernel when there is nothing to add: plain_sums). */
#define NARROW_COLS_BLOCK 32   /* rows of C per call of the outer-product kernel */
#define NARROW_COLS_TASK 128   /* rows of C per task, outer products */

static int narrow_by_rows(const pc_ukernel *uk, const pc_gemm_args *g)
{
    return uk->narrow_rows && uk->narrow_pack && !g->pack_a && !g->b_packed &&
           g->n <= PC_NARROW_N && g->csa == 1;
}

static int narrow_by_cols(const pc_ukernel *uk, const pc_gemm_args *g)
{
    return uk->narrow_cols && !g->pack_a && !g->b_packed && g->n <= PC_NARROW_N &&
           g->rsa == 1 && g->csb == 1;
}

/* ---- few k (<= PC_NARROW_N): C = A B by the ISA's narrow_k kernel ------------------------------
 * The input gradient of a class layer (dy w^T, k = 10 classes): a micro-tile would run 10 k
 * steps per load and store of C. One task per thread, each over a block of C's rows: it lays
 * out B (k rows, the whole of it) with narrow_pack in its scratch, then runs through its rows 4
 * at a time. Each thread writes one contiguous block of C; split by columns instead, the threads'
 * stores interleaved within every row of C and measured up to 2x slower (1152 columns). Each
 * element's k terms are summed in order by one task: thread-count independent. */
#define NARROW_K_ROWS 4

static int narrow_k(const pc_ukernel *uk, const pc_gemm_args *g)
{
    return uk->narrow_k && uk->narrow_pack && !g->pack_a && !g->b_packed &&
           g->k <= PC_NARROW_N && g->n > PC_NARROW_N;
}

enum { NARROW_ROWS, NARROW_COLS, NARROW_K };

typedef struct {
    pc_runtime *rt;
    const pc_gemm_args *g;
    int rows_per_task;
    int failed;
} narrow_job;

/* rows x cols of b (strides rs, cs) transposed by narrow_pack into the thread's scratch, rows of
 * round_up(rows, 16) floats (*ld); NULL (and the job failed) when out of memory */
static float *pack_for_thread(narrow_job *j, int thread, int rows, int cols, const float *b,
                              ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t *ld)
{
    *ld = round_up(rows, 16);
    float *t = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK, (size_t)cols * *ld);
    if (!t) {
        j->failed = 1;
        return NULL;
    }
    j->rt->ukernel.narrow_pack(rows, cols, b, rs, cs, t, *ld);
    return t;
}

static void narrow_rows_task(void *ctx, int task, int thread)
{
    narrow_job *j = ctx;
    const pc_gemm_args *g = j->g;
    ptrdiff_t ldbt;
    const float *bt = pack_for_thread(j, thread, g->k, g->n, g->b, g->rsb, g->csb, &ldbt);
    if (!bt)
        return;
    const int i1 = min_i(g->m, (task + 1) * j->rows_per_task);
    float s[2 * PC_NARROW_N];
    for (int i = task * j->rows_per_task; i < i1; i += 2) {
        const int rows = min_i(2, i1 - i);
        j->rt->ukernel.narrow_rows(g->k, rows, g->a + (ptrdiff_t)i * g->rsa, g->rsa, bt, ldbt,
                                   g->n, s, PC_NARROW_N);
        store_sums(g, i, rows, s, PC_NARROW_N, 1);
    }
}

static void narrow_cols_task(void *ctx, int task, int thread)
{
    (void)thread;
    const narrow_job *j = ctx;
    const pc_gemm_args *g = j->g;
    const pc_ukernel *uk = &j->rt->ukernel;
    const int i1 = min_i(g->m, (task + 1) * j->rows_per_task);
    float s[NARROW_COLS_BLOCK * PC_NARROW_N];
    for (int i = task * j->rows_per_task; i < i1; i += NARROW_COLS_BLOCK) {
        const int rows = min_i(NARROW_COLS_BLOCK, i1 - i);
        if (plain_sums(g)) {        /* straight into C */
            uk->narrow_cols(g->k, rows, g->a + i, g->csa, g->b, g->rsb, g->n,
                            g->c + (ptrdiff_t)i * g->ldc, g->ldc);
            continue;
        }
        uk->narrow_cols(g->k, rows, g->a + i, g->csa, g->b, g->rsb, g->n, s, PC_NARROW_N);
        store_sums(g, i, rows, s, PC_NARROW_N, 1);
    }
}

static void narrow_k_task(void *ctx, int task, int thread)
{
    narrow_job *j = ctx;
    const pc_gemm_args *g = j->g;
    ptrdiff_t ldb;       /* B's k rows, contiguous: B^T's layout transposed */
    const float *b = pack_for_thread(j, thread, g->n, g->k, g->b, g->csb, g->rsb, &ldb);
    if (!b)
        return;
    const int i1 = min_i(g->m, (task + 1) * j->rows_per_task);
    for (int i = task * j->rows_per_task; i < i1; i += NARROW_K_ROWS) {
        const int rows = min_i(NARROW_K_ROWS, i1 - i);
        float *c = g->c + (ptrdiff_t)i * g->ldc;
        j->rt->ukernel.narrow_k(g->k, rows, g->n, g->a + (ptrdiff_t)i * g->rsa, g->rsa, g->csa,
                                b, ldb, c, g->ldc, g->accumulate);
        epilogue(g, c, rows, 0, g->n);
    }
}

/* The three kinds' tasks over C's rows: for ROWS and K one per thread (rows in whole row pairs /
 * blocks of 4), for COLS blocks of NARROW_COLS_TASK. */
static int gemm_narrow(pc_runtime *rt, const pc_gemm_args *g, int parallel, int kind)
{
    static const pc_task_fn fns[] = {narrow_rows_task, narrow_cols_task, narrow_k_task};
    const int threads = parallel ? rt->nthreads : 1;
    narrow_job j = {.rt = rt, .g = g};
    j.rows_per_task = kind == NARROW_COLS ? NARROW_COLS_TASK
                      : round_up((g->m + threads - 1) / threads,
                                 kind == NARROW_ROWS ? 2 : NARROW_K_ROWS);
    const int ntasks = (g->m + j.rows_per_task - 1) / j.rows_per_task;
    if (parallel)
        pc_parallel(rt, ntasks, fns[kind], &j);
    else
        for (int t = 0; t < ntasks; t++)
            fns[kind](&j, t, 0);
    return j.failed ? PC_ENOMEM : PC_OK;
}

int pc_gemm(pc_runtime *rt, const pc_gemm_args *g, int parallel)
{
    const pc_ukernel *uk = &rt->ukernel;
    if (g->m <= 0 || g->n <= 0)
        return PC_OK;
    if (g->k <= 0)
        return gemm_k_zero(g);
    if (narrow_by_rows(uk, g))
        return gemm_narrow(rt, g, parallel, NARROW_ROWS);
    if (narrow_by_cols(uk, g))
        return gemm_narrow(rt, g, parallel, NARROW_COLS);
    if (narrow_k(uk, g))
        return gemm_narrow(rt, g, parallel, NARROW_K);
    if (narrow_c(uk, g))
        return gemm_transposed(rt, g, parallel);
    const int nthreads = rt->nthreads;
    if (!parallel || nthreads == 1) {
        float *s = pc_thread_scratch(rt, 0, PC_THREAD_SLOT_PACK,
                                     pc_gemm_scratch_floats(rt, g->m, g->n, g->k));
        if (!s)
            return PC_ENOMEM;
        pc_gemm_serial(rt, g, s);
        return PC_OK;
    }
    if (split_by_columns(uk, g, nthreads))
        return gemm_by_columns(rt, g);
    gemm_job j;
    memset(&j, 0, sizeof j);
    j.rt = rt;
    j.g = g;
    const int kc = k_block(uk, g->k);
    /* m blocks: at most mc rows, and at least 2 per thread when M allows it */
    int mc = round_up((g->m + 2 * nthreads - 1) / (2 * nthreads), uk->mr);
    j.mc = min_i(uk->mc, mc < uk->mr ? uk->mr : mc);
    j.mblocks = (g->m + j.mc - 1) / j.mc;
    if (j.mblocks > 1) {
        /* a whole number of blocks per thread, of near-equal size (784 rows on 2 threads:
         * 6 x 132 rather than 5 x 144 + 64) */
        const int want = (j.mblocks + nthreads - 1) / nthreads * nthreads;
        j.mc = round_up((g->m + want - 1) / want, uk->mr);
        j.mblocks = (g->m + j.mc - 1) / j.mc;
    }
    const int slivers = (g->n + uk->nr - 1) / uk->nr;
    j.nsplit = 1;
    if (j.mblocks < 2 * nthreads)
        j.nsplit = min_i(slivers, (2 * nthreads + j.mblocks - 1) / j.mblocks);
    j.slivers_per_split = (slivers + j.nsplit - 1) / j.nsplit;
    j.slivers_per_pack = (slivers + nthreads - 1) / nthreads;
    const int pack_tasks = (slivers + j.slivers_per_pack - 1) / j.slivers_per_pack;
    j.b_in_place = direct_b(uk, g);
    if (!j.b_in_place) {
        j.bp = pc_shared_scratch(rt, PC_SHARED_SLOT_PACK_B, (size_t)kc * slivers * uk->nr);
        if (!j.bp)
            return PC_ENOMEM;
    }
    for (int pc = 0; pc < g->k; pc += kc) {
        j.pc = pc;
        j.kb = min_i(kc, g->k - pc);
        j.accumulate = pc > 0 || g->accumulate;
        j.last = pc + j.kb >= g->k;
        if (!j.b_in_place)
            pc_parallel(rt, pack_tasks, pack_b_task, &j);
        pc_parallel(rt, j.mblocks * j.nsplit, compute_task, &j);
        if (j.failed)
            return PC_ENOMEM;
    }
    return PC_OK;
}
