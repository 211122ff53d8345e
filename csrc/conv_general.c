/*
 * conv_general.c - convolutions with dilation and groups, and their transposes (the
 * "deconvolution" of U-Net decoders), NHWC activations, HWIO kernels, as GEMMs on explicit
 * im2col columns built chunk by chunk in each thread's scratch.
 *
 * The convolution s (pc_convg_shape in pycnn.h) in im2col form, group g of G:
 *     col_g[r][(i*KW + j)*Cg + c] = x[n][oh*sh + i*dh - pt][ow*sw + j*dw - pl][g*Cg + c]
 *     y[r][g*Og + o]              = col_g[r] . W_g[:, o]     W_g[(i*KW+j)*Cg + c][o] = w[i][j][c][g*Og + o]
 * (r = an output pixel, zero where the tap falls outside the image). Three products give the
 * convolution and its two gradients:
 *     forward      y_g   = col_g W_g (+ b)
 *     data grad    dcol_g = dy_g W_g^T, scattered back (col2im) into dx
 *     filter grad  dW_g  = col_g^T dy_g
 * The transposed convolution swaps the roles: its forward pass is the data gradient of s (x of
 * the transposed layer is s's output side, its output is s's input side), its input gradient is
 * the forward product of s on its output gradient, and its kernel gradient is s's filter
 * gradient with x and dy exchanged. Every product runs on the one GEMM driver (pc_gemm_serial),
 * with W_g (or W_g^T) packed once per call for all chunks.
 *
 * Chunks of whole images (about ROWS_PER_CHUNK output pixels; the cut depends only on the
 * shapes) are the tasks. Weight and bias gradients are summed over chunks in LANES fixed lanes
 * (chunk i in lane i % LANES, in order) and the lanes added in order: bit-identical results for
 * any thread count. The elementwise loops (im2col, col2im, bias + relu, the relu mask, column
 * sums) run on the runtime's SIMD path (PC_SIMD_VARIANTS, pc_loop_isa): the same float
 * operations in every variant.
 */
#include "pycnn.h"

#include <string.h>

#define ROWS_PER_CHUNK 512
#define LANES 8
#define REDUCE_BLOCK 4096

static inline int min_i(int a, int b) { return a < b ? a : b; }

typedef struct {
    pc_runtime *rt;
    pc_isa isa;            /* the elementwise loops' SIMD path (pc_loop_isa) */
    const pc_convg_shape *s;
    int transposed;        /* the job runs s's transpose (see the header comment) */
    const float *x;        /* s's input side: x (conv) or the transposed layer's dy */
    const float *yside;    /* s's output side: the transposed layer's x, or the conv's dy */
    const float *w, *b;
    const float *relu_y;   /* backward: the fused relu's output (shaped like the layer's
                              output), or NULL */
    float *out;            /* forward: the layer's output */
    float *dx;             /* backward: the layer's input gradient, or NULL */
    float *partial;        /* LANES x (wsize + bsize) */
    int want_dw;
    size_t wsize, bsize;
    const float *w_packed; /* per group: W_g or W_g^T packed, group_pack floats apart */
    size_t group_pack;
    pc_act act;
    int cg, og, kdim;      /* channels, filters and taps (KH*KW*Cg) of one group */
    int imgs_per_chunk, nchunks;
    int failed;
} convg_job;

static void chunking(convg_job *j)
{
    j->isa = pc_loop_isa(j->rt);
    const pc_convg_shape *s = j->s;
    const int pix = s->oh * s->ow;
    j->imgs_per_chunk = pix >= ROWS_PER_CHUNK ? 1 : ROWS_PER_CHUNK / pix;
    const int spread = (s->n + LANES - 1) / LANES;       /* every lane gets work */
    if (j->imgs_per_chunk > spread)
        j->imgs_per_chunk = spread > 0 ? spread : 1;
    j->nchunks = (s->n + j->imgs_per_chunk - 1) / j->imgs_per_chunk;
    j->cg = s->c / s->groups;
    j->og = s->o / s->groups;
    j->kdim = s->kh * s->kw * j->cg;
}

static void chunk_range(const convg_job *j, int chunk, int *n0, int *count, int *rows)
{
    *n0 = chunk * j->imgs_per_chunk;
    *count = min_i(j->imgs_per_chunk, j->s->n - *n0);
    *rows = *count * j->s->oh * j->s->ow;
}

/* col_g rows (kdim floats each) of `count` images x[count][h][w][c] */
PC_SIMD_LOOP void im2col_group_body(const pc_convg_shape *s, const float *x, int g, int count,
                                    float *col)
{
    const int C = s->c, cg = C / s->groups, kwcg = s->kw * cg;
    const size_t img = (size_t)s->h * s->w * C;
    for (int n = 0; n < count; n++) {
        const float *xn = x + (size_t)n * img + (size_t)g * cg;
        for (int oh = 0; oh < s->oh; oh++) {
            for (int ow = 0; ow < s->ow; ow++) {
                const int iw0 = ow * s->sw - s->pl;
                for (int i = 0; i < s->kh; i++, col += kwcg) {
                    const int ih = oh * s->sh + i * s->dh - s->pt;
                    if (ih < 0 || ih >= s->h) {
                        memset(col, 0, (size_t)kwcg * sizeof(float));
                        continue;
                    }
                    const float *row = xn + (size_t)ih * s->w * C;
                    if (s->dw == 1 && cg == C && iw0 >= 0 && iw0 + s->kw <= s->w) {
                        pc_copy_floats(col, row + (size_t)iw0 * C, (size_t)kwcg);
                        continue;
                    }
                    for (int jj = 0; jj < s->kw; jj++) {
                        const int iw = iw0 + jj * s->dw;
                        float *d = col + (size_t)jj * cg;
                        if (iw < 0 || iw >= s->w)
                            memset(d, 0, (size_t)cg * sizeof(float));
                        else
                            pc_copy_floats(d, row + (size_t)iw * C, (size_t)cg);
                    }
                }
            }
        }
    }
}
PC_SIMD_VARIANTS(im2col_group, (const pc_convg_shape *s, const float *x, int g, int count,
                                float *col), (s, x, g, count, col))

/* x[0:count][..][..][group g] += col2im(dcol_g) (the caller zeroes x first) */
PC_SIMD_LOOP void col2im_group_body(const pc_convg_shape *s, const float *dcol, int g, int count,
                                    float *x)
{
    const int C = s->c, cg = C / s->groups, kwcg = s->kw * cg;
    const size_t img = (size_t)s->h * s->w * C;
    for (int n = 0; n < count; n++) {
        float *xn = x + (size_t)n * img + (size_t)g * cg;
        for (int oh = 0; oh < s->oh; oh++) {
            for (int ow = 0; ow < s->ow; ow++) {
                const int iw0 = ow * s->sw - s->pl;
                for (int i = 0; i < s->kh; i++, dcol += kwcg) {
                    const int ih = oh * s->sh + i * s->dh - s->pt;
                    if (ih < 0 || ih >= s->h)
                        continue;
                    float *row = xn + (size_t)ih * s->w * C;
                    for (int jj = 0; jj < s->kw; jj++) {
                        const int iw = iw0 + jj * s->dw;
                        if (iw < 0 || iw >= s->w)
                            continue;
                        float *restrict d = row + (size_t)iw * C;
                        const float *restrict src = dcol + (size_t)jj * cg;
                        for (int c = 0; c < cg; c++)
                            d[c] += src[c];
                    }
                }
            }
        }
    }
}
PC_SIMD_VARIANTS(col2im_group, (const pc_convg_shape *s, const float *dcol, int g, int count,
                                float *x), (s, dcol, g, count, x))

/* A transposed layer whose kernel tiles its output (s's strides equal to its kernel, no pads,
 * dilation or groups, the output covered exactly): col2im into a zeroed x, then bias_act, in
 * one pass writing each cell once, with the same operations: x = act((0 + dcol) + b). */
static int tiles_output(const pc_convg_shape *s)
{
    return s->groups == 1 && s->sh == s->kh && s->sw == s->kw && s->dh == 1 && s->dw == 1 &&
           s->pt == 0 && s->pl == 0 && s->h == s->oh * s->sh && s->w == s->ow * s->sw;
}

PC_SIMD_LOOP void place_tiles_body(const pc_convg_shape *s, const float *dcol, int count,
                                   const float *restrict b, int relu, float *x)
{
    const int C = s->c, kwc = s->kw * C;
    const size_t img = (size_t)s->h * s->w * C;
    for (int n = 0; n < count; n++) {
        float *xn = x + (size_t)n * img;
        for (int oh = 0; oh < s->oh; oh++)
            for (int ow = 0; ow < s->ow; ow++)
                for (int i = 0; i < s->kh; i++, dcol += kwc) {
                    float *restrict d = xn + ((size_t)(oh * s->sh + i) * s->w +
                                              (size_t)ow * s->sw) * C;
                    for (int jj = 0; jj < s->kw; jj++) {
                        const float *restrict src = dcol + (size_t)jj * C;
                        float *restrict dj = d + (size_t)jj * C;
                        if (b && relu)
                            for (int c = 0; c < C; c++) {
                                const float v = (0.0f + src[c]) + b[c];
                                dj[c] = v > 0.0f ? v : 0.0f;
                            }
                        else if (b)
                            for (int c = 0; c < C; c++)
                                dj[c] = (0.0f + src[c]) + b[c];
                        else if (relu)
                            for (int c = 0; c < C; c++) {
                                const float v = 0.0f + src[c];
                                dj[c] = v > 0.0f ? v : 0.0f;
                            }
                        else
                            for (int c = 0; c < C; c++)
                                dj[c] = 0.0f + src[c];
                    }
                }
    }
}
PC_SIMD_VARIANTS(place_tiles, (const pc_convg_shape *s, const float *dcol, int count,
                               const float *restrict b, int relu, float *x),
                 (s, dcol, count, b, relu, x))

/* y[r][c] = act(y[r][c] + b[c]) for rows r (b may be NULL) */
PC_SIMD_LOOP void bias_act_body(float *restrict y, size_t rows, int cols,
                                const float *restrict b, int relu)
{
    for (size_t r = 0; r < rows; r++, y += cols) {
        if (b)
            for (int c = 0; c < cols; c++)
                y[c] += b[c];
        if (relu)
            for (int c = 0; c < cols; c++)
                y[c] = y[c] > 0.0f ? y[c] : 0.0f;
    }
}
PC_SIMD_VARIANTS(bias_act, (float *restrict y, size_t rows, int cols, const float *restrict b,
                            int relu), (y, rows, cols, b, relu))

PC_SIMD_LOOP void relu_mask_body(const float *restrict dy, const float *restrict y,
                                  float *restrict g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float d = dy[i];
        g[i] = y[i] > 0.0f ? d : 0.0f;
    }
}
PC_SIMD_VARIANTS(relu_mask, (const float *restrict dy, const float *restrict y,
                             float *restrict g, size_t n), (dy, y, g, n))

/* db[c] += sum_r v[r][c], rows in order */
PC_SIMD_LOOP void column_sums_body(const float *restrict v, size_t rows, int cols,
                                   float *restrict db)
{
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            db[c] += v[r * cols + c];
}
PC_SIMD_VARIANTS(column_sums, (const float *restrict v, size_t rows, int cols,
                               float *restrict db), (v, rows, cols, db))

/* W_g (transposed = 0: kdim x Og) or W_g^T (Og x kdim) of every group, packed once */
static int pack_groups(convg_job *j, int transposed)
{
    const pc_convg_shape *s = j->s;
    const int k = transposed ? j->og : j->kdim, n = transposed ? j->kdim : j->og;
    j->group_pack = (pc_gemm_packed_b_floats(j->rt, k, n) + 15) / 16 * 16;
    float *dst = pc_shared_scratch(j->rt, PC_SHARED_SLOT_PACK_B,
                                   j->group_pack * (size_t)s->groups);
    if (!dst)
        return PC_ENOMEM;
    for (int g = 0; g < s->groups; g++) {
        const pc_gemm_args a = {.m = 1, .n = n, .k = k, .b = j->w + (size_t)g * j->og,
                                .rsb = transposed ? 1 : s->o, .csb = transposed ? s->o : 1};
        pc_gemm_pack_b(j->rt, &a, dst + j->group_pack * g);
    }
    j->w_packed = dst;
    return PC_OK;
}

/* y_g (rows x Og, row stride o) = col_g W_g (+ b_g, act) */
static void product_forward(convg_job *j, int g, const float *col, int rows, float *y,
                            const float *bias, pc_act act, float *scratch)
{
    const pc_convg_shape *s = j->s;
    const pc_gemm_args a = {
        .m = rows, .n = j->og, .k = j->kdim,
        .a = col, .rsa = j->kdim, .csa = 1,
        .b = j->w + (size_t)g * j->og, .rsb = s->o, .csb = 1,
        .b_packed = j->w_packed + j->group_pack * g,
        .c = y + (size_t)g * j->og, .ldc = s->o,
        .bias = bias ? bias + (size_t)g * j->og : NULL, .act = act,
    };
    pc_gemm_serial(j->rt, &a, scratch);
}

/* dcol_g (rows x kdim) = dy_g W_g^T, dy with row stride o */
static void product_data(convg_job *j, int g, const float *dy, int rows, float *dcol,
                         float *scratch)
{
    const pc_convg_shape *s = j->s;
    const pc_gemm_args a = {
        .m = rows, .n = j->kdim, .k = j->og,
        .a = dy + (size_t)g * j->og, .rsa = s->o, .csa = 1,
        .b = j->w + (size_t)g * j->og, .rsb = 1, .csb = s->o,
        .b_packed = j->w_packed + j->group_pack * g,
        .c = dcol, .ldc = j->kdim, .act = PC_ACT_LINEAR,
    };
    pc_gemm_serial(j->rt, &a, scratch);
}

/* dW_g (kdim x Og, row stride o) (+)= col_g^T dy_g */
static void product_filter(convg_job *j, int g, const float *col, const float *dy, int rows,
                           float *dw, int accumulate, float *scratch)
{
    const pc_convg_shape *s = j->s;
    const pc_gemm_args a = {
        .m = j->kdim, .n = j->og, .k = rows,
        .a = col, .rsa = 1, .csa = j->kdim,
        .b = dy + (size_t)g * j->og, .rsb = s->o, .csb = 1,
        .c = dw + (size_t)g * j->og, .ldc = s->o,
        .accumulate = accumulate, .act = PC_ACT_LINEAR,
    };
    pc_gemm_serial(j->rt, &a, scratch);
}

static size_t scratch_floats(const convg_job *j, int rows)
{
    const int mx = rows > j->kdim ? rows : j->kdim;
    const int nx = j->og > j->kdim ? j->og : j->kdim;
    const int kx = rows > j->og ? (rows > j->kdim ? rows : j->kdim)
                                : (j->og > j->kdim ? j->og : j->kdim);
    return pc_gemm_scratch_floats(j->rt, mx, nx, kx);
}

/* ---- forward passes ------------------------------------------------------------------------- */

static void forward_task(void *ctx, int chunk, int thread)
{
    convg_job *j = ctx;
    const pc_convg_shape *s = j->s;
    int n0, count, rows;
    chunk_range(j, chunk, &n0, &count, &rows);
    float *scratch = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK, scratch_floats(j, rows));
    float *col = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK, (size_t)rows * j->kdim);
    if (!scratch || !col) {
        j->failed = 1;
        return;
    }
    if (!j->transposed) {
        const size_t ximg = (size_t)s->h * s->w * s->c;
        float *y = j->out + (size_t)n0 * s->oh * s->ow * s->o;
        for (int g = 0; g < s->groups; g++) {
            im2col_group(j->isa, s, j->x + (size_t)n0 * ximg, g, count, col);
            product_forward(j, g, col, rows, y, j->b, j->act, scratch);
        }
        return;
    }
    /* transposed: the layer's x is s's output side, its output s's input side */
    const size_t img = (size_t)s->h * s->w * s->c;
    if (tiles_output(s)) {
        product_data(j, 0, j->yside + (size_t)n0 * s->oh * s->ow * s->o, rows, col, scratch);
        place_tiles(j->isa, s, col, count, j->b, j->act == PC_ACT_RELU,
                    j->out + (size_t)n0 * img);
        return;
    }
    memset(j->out + (size_t)n0 * img, 0, (size_t)count * img * sizeof(float));
    const float *xt = j->yside + (size_t)n0 * s->oh * s->ow * s->o;
    for (int g = 0; g < s->groups; g++) {
        product_data(j, g, xt, rows, col, scratch);
        col2im_group(j->isa, s, col, g, count, j->out + (size_t)n0 * img);
    }
    if (j->b || j->act == PC_ACT_RELU)
        bias_act(j->isa, j->out + (size_t)n0 * img, (size_t)count * s->h * s->w, s->c, j->b,
                 j->act == PC_ACT_RELU);
}

static int run_forward(convg_job *j)
{
    if (j->act != PC_ACT_LINEAR && j->act != PC_ACT_RELU)
        return PC_EINVAL;
    const pc_convg_shape *s = j->s;
    if (s->groups < 1 || s->c % s->groups || s->o % s->groups || s->dh < 1 || s->dw < 1)
        return PC_EINVAL;
    chunking(j);
    if (j->nchunks == 0)
        return PC_EINVAL;
    if (pack_groups(j, j->transposed))
        return PC_ENOMEM;
    pc_parallel(j->rt, j->nchunks, forward_task, j);
    return j->failed ? PC_ENOMEM : PC_OK;
}

int pc_convg_forward(pc_runtime *rt, const pc_convg_shape *s, const float *x, const float *w,
                     const float *b, float *y, pc_act act)
{
    convg_job j = {.rt = rt, .s = s, .x = x, .w = w, .b = b, .out = y, .act = act};
    return run_forward(&j);
}

int pc_conv_transpose_forward(pc_runtime *rt, const pc_convg_shape *s, const float *x,
                              const float *w, const float *b, float *y, pc_act act)
{
    convg_job j = {.rt = rt, .s = s, .transposed = 1, .yside = x, .w = w, .b = b, .out = y,
                   .act = act};
    return run_forward(&j);
}

/* ---- backward passes ------------------------------------------------------------------------ */

/* The layer's output gradient for a chunk: as given, or masked by the fused relu's output
 * into the thread's scratch. */
static const float *chunk_grad(convg_job *j, int thread, const float *dy, size_t at, size_t n)
{
    if (!j->relu_y)
        return dy + at;
    float *g = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_GRAD, n);
    if (g)
        relu_mask(j->isa, dy + at, j->relu_y + at, g, n);
    return g;
}

static void backward_task(void *ctx, int lane, int thread)
{
    convg_job *j = ctx;
    const pc_convg_shape *s = j->s;
    float *dw = j->partial + (size_t)lane * (j->wsize + j->bsize);
    float *db = dw + j->wsize;
    memset(db, 0, j->bsize * sizeof(float));
    const size_t ximg = (size_t)s->h * s->w * s->c, yimg = (size_t)s->oh * s->ow * s->o;
    int first = 1;
    for (int chunk = lane; chunk < j->nchunks; chunk += LANES) {
        int n0, count, rows;
        chunk_range(j, chunk, &n0, &count, &rows);
        float *scratch = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_PACK,
                                           scratch_floats(j, rows));
        float *col = pc_thread_scratch(j->rt, thread, PC_THREAD_SLOT_WORK,
                                       (size_t)rows * j->kdim);
        if (!scratch || !col) {
            j->failed = 1;
            return;
        }
        if (!j->transposed) {
            const float *dyc = chunk_grad(j, thread, j->yside, (size_t)n0 * yimg,
                                          (size_t)count * yimg);
            if (!dyc) {
                j->failed = 1;
                return;
            }
            column_sums(j->isa, dyc, (size_t)rows, s->o, db);
            if (j->dx)
                memset(j->dx + (size_t)n0 * ximg, 0, (size_t)count * ximg * sizeof(float));
            for (int g = 0; g < s->groups; g++) {
                im2col_group(j->isa, s, j->x + (size_t)n0 * ximg, g, count, col);
                product_filter(j, g, col, dyc, rows, dw, !first, scratch);
                if (!j->dx)
                    continue;
                product_data(j, g, dyc, rows, col, scratch);      /* col no longer needed */
                col2im_group(j->isa, s, col, g, count, j->dx + (size_t)n0 * ximg);
            }
        } else {
            /* s's input side is the transposed layer's output gradient */
            const float *gt = chunk_grad(j, thread, j->x, (size_t)n0 * ximg,
                                         (size_t)count * ximg);
            if (!gt) {
                j->failed = 1;
                return;
            }
            column_sums(j->isa, gt, (size_t)count * s->h * s->w, s->c, db);
            const float *xt = j->yside + (size_t)n0 * yimg;
            for (int g = 0; g < s->groups; g++) {
                im2col_group(j->isa, s, gt, g, count, col);
                if (j->dx)
                    product_forward(j, g, col, rows, j->dx + (size_t)n0 * yimg, NULL,
                                    PC_ACT_LINEAR, scratch);
                product_filter(j, g, col, xt, rows, dw, !first, scratch);
            }
        }
        first = 0;
    }
}

typedef struct {
    convg_job *j;
    float *dw, *db;
} reduce_job;

static void reduce_task(void *ctx, int task, int thread)
{
    (void)thread;
    reduce_job *r = ctx;
    const convg_job *j = r->j;
    const size_t total = j->wsize + j->bsize;
    const size_t lo = (size_t)task * REDUCE_BLOCK;
    const size_t hi = lo + REDUCE_BLOCK < total ? lo + REDUCE_BLOCK : total;
    const int used = min_i(LANES, j->nchunks);
    for (size_t e = lo; e < hi; e++) {
        float acc = j->partial[e];
        for (int l = 1; l < used; l++)
            acc += j->partial[(size_t)l * total + e];
        if (e < j->wsize)
            r->dw[e] = acc;
        else if (r->db)
            r->db[e - j->wsize] = acc;
    }
}

static int run_backward(convg_job *j, float *dw, float *db)
{
    const pc_convg_shape *s = j->s;
    if (s->groups < 1 || s->c % s->groups || s->o % s->groups || s->dh < 1 || s->dw < 1)
        return PC_EINVAL;
    chunking(j);
    if (j->nchunks == 0)
        return PC_EINVAL;
    j->wsize = (size_t)j->kdim * s->o;
    j->bsize = j->transposed ? (size_t)s->c : (size_t)s->o;
    j->partial = pc_shared_scratch(j->rt, PC_SHARED_SLOT_PARTIAL,
                                   (size_t)LANES * (j->wsize + j->bsize));
    if (!j->partial)
        return PC_ENOMEM;
    /* the data product: W_g^T (conv) or, for the transposed layer's input gradient, W_g */
    if ((j->dx || j->transposed) && pack_groups(j, !j->transposed))
        return PC_ENOMEM;
    pc_parallel(j->rt, min_i(LANES, j->nchunks), backward_task, j);
    if (j->failed)
        return PC_ENOMEM;
    reduce_job r = {.j = j, .dw = dw, .db = db};
    const size_t total = j->wsize + j->bsize;
    pc_parallel(j->rt, (int)((total + REDUCE_BLOCK - 1) / REDUCE_BLOCK), reduce_task, &r);
    return PC_OK;
}

int pc_convg_backward(pc_runtime *rt, const pc_convg_shape *s, const float *x, const float *w,
                      const float *y, const float *dy, float *dx, float *dw, float *db)
{
    convg_job j = {.rt = rt, .s = s, .x = x, .yside = dy, .w = w, .relu_y = y, .dx = dx};
    return run_backward(&j, dw, db);
}

int pc_conv_transpose_backward(pc_runtime *rt, const pc_convg_shape *s, const float *x,
                               const float *w, const float *y, const float *dy, float *dx,
                               float *dw, float *db)
{
    convg_job j = {.rt = rt, .s = s, .transposed = 1, .x = dy, .yside = x, .w = w,
                   .relu_y = y, .dx = dx};
    return run_backward(&j, dw, db);
}
