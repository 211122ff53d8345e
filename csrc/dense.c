/* dense.c - the fully connected layer, y = x W + b, as calls to the GEMM driver. */
#include "pycnn.h"

#include <string.h>

int pc_dense_forward(pc_runtime *rt, const float *x, int n, int in, const float *w, int out,
                     const float *b, float *y, pc_act act)
{
    if (act != PC_ACT_LINEAR && act != PC_ACT_RELU)
        return PC_EINVAL;
    pc_gemm_args g = {
        .m = n, .n = out, .k = in,
        .a = x, .rsa = in, .csa = 1,
        .b = w, .rsb = out, .csb = 1,
        .c = y, .ldc = out,
        .accumulate = 0, .bias = b, .act = act,
    };
    return pc_gemm(rt, &g, 1);
}

int pc_dense_backward(pc_runtime *rt, const float *x, int n, int in, const float *w, int out,
                      const float *dy, float *dx, float *dw, float *db)
{
    /* dw[in][out] = x^T dy: A(i, p) = x[p][i] */
    pc_gemm_args gw = {
        .m = in, .n = out, .k = n,
        .a = x, .rsa = 1, .csa = in,
        .b = dy, .rsb = out, .csb = 1,
        .c = dw, .ldc = out,
        .accumulate = 0, .bias = NULL, .act = PC_ACT_LINEAR,
    };
    int rc = pc_gemm(rt, &gw, 1);
    if (rc)
        return rc;
    if (db) {
        /* rows added in order: deterministic */
        memset(db, 0, (size_t)out * sizeof(float));
        for (int r = 0; r < n; r++)
            for (int o = 0; o < out; o++)
                db[o] += dy[(size_t)r * out + o];
    }
    if (dx) {
        /* dx[n][in] = dy w^T: B(p, j) = w[j][p] */
        pc_gemm_args gx = {
            .m = n, .n = in, .k = out,
            .a = dy, .rsa = out, .csa = 1,
            .b = w, .rsb = 1, .csb = out,
            .c = dx, .ldc = in,
            .accumulate = 0, .bias = NULL, .act = PC_ACT_LINEAR,
        };
        rc = pc_gemm(rt, &gx, 1);
    }
    return rc;
}
