/*
 * bind_dense.c - the binding's entry points for the GEMM and dense layers (see binding.h).
 */
#include "binding.h"

static PyObject *py_gemm(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"a", "b", "c", "trans_a", "trans_b", "accumulate", NULL};
    const char *F = "gemm";
    PyArrayObject *a, *b, *c;
    int ta = 0, tb = 0, acc = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&|ppp", kwlist, IN_F32("a", 2, &a),
                                     IN_F32("b", 2, &b), OUT_F32("c", 2, &c), &ta, &tb, &acc))
        return NULL;
    const int M = ta ? dim(a, 1) : dim(a, 0), K = ta ? dim(a, 0) : dim(a, 1);
    const int KB = tb ? dim(b, 1) : dim(b, 0), N = tb ? dim(b, 0) : dim(b, 1);
    if (K != KB)
        return PyErr_Format(PyExc_ValueError, "gemm(): inner dimensions differ: op(a) is "
                            "(%d, %d), op(b) is (%d, %d)", M, K, KB, N);
    if (expect_shape(F, "c", c, 2, (int[]){M, N}))
        return NULL;
    PyArrayObject *arrs[] = {a, b, c};
    const char *names[] = {"a", "b", "c"};
    if (check_disjoint(F, arrs, names, 3, 2))
        return NULL;
    pc_gemm_args g = {
        .m = M, .n = N, .k = K,
        .a = FLOAT(a), .rsa = ta ? 1 : K, .csa = ta ? M : 1,
        .b = FLOAT(b), .rsb = tb ? 1 : N, .csb = tb ? K : 1,
        .c = FLOAT(c), .ldc = N, .accumulate = acc, .bias = NULL, .act = PC_ACT_LINEAR,
    };
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_gemm(rt, &g, 1));
    return kernel_result(rc, F);
}

static PyObject *py_dense_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "activation", NULL};
    const char *F = "dense_forward", *acts = "linear";
    PyArrayObject *x, *w, *b, *y;
    pc_act act;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&|s", kwlist, IN_F32("x", 2, &x),
                                     IN_F32("w", 2, &w), OPT_IN_F32("b", 1, &b),
                                     OUT_F32("y", 2, &y), &acts) ||
        parse_act(F, acts, &act, 1))
        return NULL;
    const int N = dim(x, 0), NI = dim(x, 1), NO = dim(w, 1);
    if (expect_shape(F, "w", w, 2, (int[]){NI, NO}) || (b && expect_shape(F, "b", b, 1, &NO)) ||
        expect_shape(F, "y", y, 2, (int[]){N, NO}))
        return NULL;
    PyArrayObject *arrs[] = {x, w, b, y};
    const char *names[] = {"x", "w", "b", "y"};
    if (check_disjoint(F, arrs, names, 4, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_dense_forward(rt, FLOAT(x), N, NI, FLOAT(w), NO, OPT_FLOAT(b), FLOAT(y), act));
    return kernel_result(rc, F);
}

static PyObject *py_dense_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", NULL};
    const char *F = "dense_backward";
    PyArrayObject *x, *w, *dy, *dx, *dw, *db;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&", kwlist, IN_F32("x", 2, &x),
                                     IN_F32("w", 2, &w), IN_F32("dy", 2, &dy),
                                     OPT_OUT_F32("dx", 2, &dx), OUT_F32("dw", 2, &dw),
                                     OPT_OUT_F32("db", 1, &db)))
        return NULL;
    const int N = dim(x, 0), NI = dim(x, 1), NO = dim(w, 1);
    if (expect_shape(F, "w", w, 2, (int[]){NI, NO}) || expect_shape(F, "dy", dy, 2, (int[]){N, NO}) ||
        (dx && expect_shape(F, "dx", dx, 2, (int[]){N, NI})) ||
        expect_shape(F, "dw", dw, 2, (int[]){NI, NO}) || (db && expect_shape(F, "db", db, 1, &NO)))
        return NULL;
    PyArrayObject *arrs[] = {x, w, dy, dx, dw, db};
    const char *names[] = {"x", "w", "dy", "dx", "dw", "db"};
    if (check_disjoint(F, arrs, names, 6, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_dense_backward(rt, FLOAT(x), N, NI, FLOAT(w), NO, FLOAT(dy), OPT_FLOAT(dx),
                                     FLOAT(dw), OPT_FLOAT(db)));
    return kernel_result(rc, F);
}

PyMethodDef pc_methods_dense[] = {
    KW(gemm, "gemm(a, b, c, trans_a=False, trans_b=False, accumulate=False): c = op(a) @ op(b) (+ c)."),
    KW(dense_forward, "dense_forward(x, w, b, y, activation='linear'): y = act(x @ w + b)."),
    KW(dense_backward, "dense_backward(x, w, dy, dx, dw, db): gradients of dense_forward."),
    {NULL, NULL, 0, NULL}};
