/*
 * bind_dense.c - the binding's entry points for the GEMM and dense layers (see binding.h).
 */
#include "binding.h"

static PyObject *py_gemm(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"a", "b", "c", "trans_a", "trans_b", "accumulate", NULL};
    const char *F = "gemm";
    PyObject *oa, *ob, *oc;
    int ta = 0, tb = 0, acc = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|ppp", kwlist, &oa, &ob, &oc, &ta, &tb, &acc))
        return NULL;
    PyArrayObject *a, *b, *c;
    if (get_array(oa, F, "a", NPY_FLOAT32, 2, IN, 0, &a) ||
        get_array(ob, F, "b", NPY_FLOAT32, 2, IN, 0, &b) ||
        get_array(oc, F, "c", NPY_FLOAT32, 2, OUT, 0, &c))
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
    PyObject *ox, *ow, *ob, *oy;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO|s", kwlist, &ox, &ow, &ob, &oy, &acts))
        return NULL;
    PyArrayObject *x, *w, *b, *y;
    pc_act act;
    if (get_array(ox, F, "x", NPY_FLOAT32, 2, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 2, IN, 0, &w) ||
        get_array(ob, F, "b", NPY_FLOAT32, 1, IN, 1, &b) ||
        get_array(oy, F, "y", NPY_FLOAT32, 2, OUT, 0, &y) || parse_act(F, acts, &act, 1))
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
    PyObject *ox, *ow, *ody, *odx, *odw, *odb;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO", kwlist, &ox, &ow, &ody, &odx, &odw, &odb))
        return NULL;
    PyArrayObject *x, *w, *dy, *dx, *dw, *db;
    if (get_array(ox, F, "x", NPY_FLOAT32, 2, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 2, IN, 0, &w) ||
        get_array(ody, F, "dy", NPY_FLOAT32, 2, IN, 0, &dy) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 2, OUT, 1, &dx) ||
        get_array(odw, F, "dw", NPY_FLOAT32, 2, OUT, 0, &dw) ||
        get_array(odb, F, "db", NPY_FLOAT32, 1, OUT, 1, &db))
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
