/*
 * pycnn_module.c - the binding: the C kernels as the CPython extension `pycnn._C`.
 *
 * Thin on purpose. Each entry point converts its arguments once with get_array() (which names
 * the function, the argument and what was expected in every error), checks that the shapes fit
 * together, releases the GIL, runs one kernel inside pc_runtime_enter/leave, and turns the
 * kernel's error code into a Python exception. Nothing here allocates array memory: outputs are
 * created by the caller and overwritten. The contract is docs/kernels.md.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "pycnn.h"

typedef struct {
    pc_runtime *rt;
} module_state;

static pc_runtime *runtime_of(PyObject *module)
{
    return ((module_state *)PyModule_GetState(module))->rt;
}

/* ---- argument conversion --------------------------------------------------------------------- */

enum { IN = 0, OUT = 1 };

/* obj must be an aligned, native-byte-order, C-contiguous, non-empty ndarray of `typenum` with
 * `ndim` dimensions (ndim < 0: any rank); OUT arrays must be writeable. None is accepted when
 * `optional`, giving *out = NULL. Returns 0, or -1 with an exception set. */
static int get_array(PyObject *obj, const char *func, const char *name, int typenum, int ndim,
                     int mode, int optional, PyArrayObject **out)
{
    *out = NULL;
    if (obj == NULL || obj == Py_None) {
        if (optional)
            return 0;
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' is required, got None", func, name);
        return -1;
    }
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be a numpy.ndarray, got %s",
                     func, name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (PyArray_TYPE(a) != typenum || !PyArray_ISNOTSWAPPED(a)) {
        PyArray_Descr *want = PyArray_DescrFromType(typenum);
        PyObject *got = PyObject_Str((PyObject *)PyArray_DESCR(a));
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must have dtype %s (native byte "
                     "order), got %S", func, name, want->typeobj->tp_name, got);
        Py_XDECREF(got);
        Py_DECREF(want);
        return -1;
    }
    if (ndim >= 0 && PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s(): argument '%s' must have rank %d, got rank %d",
                     func, name, ndim, PyArray_NDIM(a));
        return -1;
    }
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a)) {
        PyErr_Format(PyExc_ValueError, "%s(): argument '%s' must be C-contiguous and aligned",
                     func, name);
        return -1;
    }
    if (PyArray_SIZE(a) == 0) {
        PyErr_Format(PyExc_ValueError, "%s(): argument '%s' must not be empty", func, name);
        return -1;
    }
    for (int d = 0; d < PyArray_NDIM(a); d++) {
        if (PyArray_DIM(a, d) > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "%s(): argument '%s' is too large (dimension %d)",
                         func, name, d);
            return -1;
        }
    }
    if (mode == OUT && !PyArray_ISWRITEABLE(a)) {
        PyErr_Format(PyExc_ValueError, "%s(): output argument '%s' is read-only", func, name);
        return -1;
    }
    *out = a;
    return 0;
}

static int dim(PyArrayObject *a, int d) { return (int)PyArray_DIM(a, d); }

static int overlaps(PyArrayObject *a, PyArrayObject *b)
{
    if (!a || !b)
        return 0;
    const char *pa = PyArray_BYTES(a), *pb = PyArray_BYTES(b);
    return pa < pb + PyArray_NBYTES(b) && pb < pa + PyArray_NBYTES(a);
}

/* Outputs must not share memory with inputs or with each other (unless the contract allows). */
static int check_disjoint(const char *func, PyArrayObject **arrs, const char **names, int n,
                          int first_out)
{
    for (int i = first_out; i < n; i++)
        for (int k = 0; k < n; k++)
            if (k != i && (k < first_out || k > i) && overlaps(arrs[i], arrs[k])) {
                PyErr_Format(PyExc_ValueError, "%s(): output '%s' must not share memory with "
                             "'%s'", func, names[i], names[k]);
                return -1;
            }
    return 0;
}

static int expect_shape(const char *func, const char *name, PyArrayObject *a, int ndim,
                        const int *want)
{
    for (int d = 0; d < ndim; d++) {
        if (want[d] >= 0 && dim(a, d) != want[d]) {
            PyObject *shape = PyObject_GetAttrString((PyObject *)a, "shape");
            PyErr_Format(PyExc_ValueError, "%s(): argument '%s' has shape %R; axis %d must be "
                         "%d", func, name, shape ? shape : Py_None, d, want[d]);
            Py_XDECREF(shape);
            return -1;
        }
    }
    return 0;
}

/* After a failed argument parse: a number out of range is a ValueError, like any bad value. */
static PyObject *parse_error(const char *func)
{
    if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s(): a numeric argument is out of range", func);
    }
    return NULL;
}

static PyObject *kernel_result(int rc, const char *func)
{
    switch (rc) {
    case PC_OK:
        Py_RETURN_NONE;
    case PC_ENOMEM:
        return PyErr_Format(PyExc_MemoryError, "%s(): out of memory", func);
    case PC_ENONFINITE:
        return PyErr_Format(PyExc_ValueError, "%s(): non-finite or non-positive values", func);
    default:
        return PyErr_Format(PyExc_ValueError, "%s(): invalid arguments", func);
    }
}

#define FLOAT(a) ((float *)PyArray_DATA(a))
#define OPT_FLOAT(a) ((a) ? (float *)PyArray_DATA(a) : NULL)

/* result = call, without the GIL, with the runtime entered */
#define RUN_KERNEL_INTO(rt, result, call)                                               \
    do {                                                                                \
        Py_BEGIN_ALLOW_THREADS                                                          \
        pc_runtime_enter(rt);                                                           \
        result = (call);                                                                \
        pc_runtime_leave(rt);                                                           \
        Py_END_ALLOW_THREADS                                                            \
    } while (0)
#define RUN_KERNEL(rt, call) RUN_KERNEL_INTO(rt, rc, call)

static int parse_act(const char *func, const char *s, pc_act *act, int fused_only)
{
    static const struct { const char *name; pc_act act; } acts[] = {
        {"linear", PC_ACT_LINEAR}, {"relu", PC_ACT_RELU}, {"sigmoid", PC_ACT_SIGMOID},
        {"tanh", PC_ACT_TANH}, {"softmax", PC_ACT_SOFTMAX}};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        if (strcmp(s, acts[i].name) == 0) {
            if (fused_only && acts[i].act != PC_ACT_LINEAR && acts[i].act != PC_ACT_RELU)
                break;
            *act = acts[i].act;
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "%s(): unknown activation '%s' (argument 'kind' or "
                 "'activation'); expected %s", func, s,
                 fused_only ? "'linear' or 'relu'"
                            : "'linear', 'relu', 'sigmoid', 'tanh' or 'softmax'");
    return -1;
}

/* The kernels index rows as o*s + k - p in int: that must not overflow for any output o. */
static int window_fits(int out, int stride, int window, int pad)
{
    return (long long)(out - 1) * stride + window + pad <= INT_MAX;
}

/* A pair of ints (a tuple or list of two), named in the error. */
static int parse_pair(PyObject *obj, const char *func, const char *name, int *a, int *b)
{
    PyObject *seq = PySequence_Check(obj) ? PySequence_Fast(obj, "") : NULL;
    if (!seq || PySequence_Fast_GET_SIZE(seq) != 2) {
        Py_XDECREF(seq);
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be a pair of integers, got %R",
                     func, name, obj);
        return -1;
    }
    long v[2];
    for (int i = 0; i < 2; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        v[i] = PyLong_Check(item) ? PyLong_AsLong(item) : -1;
        if (!PyLong_Check(item) || (v[i] == -1 && PyErr_Occurred()) || v[i] < INT_MIN ||
            v[i] > INT_MAX) {
            Py_DECREF(seq);
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be a pair of integers, "
                         "got %R", func, name, obj);
            return -1;
        }
    }
    Py_DECREF(seq);
    *a = (int)v[0];
    *b = (int)v[1];
    return 0;
}

static int check_window(const char *func, const char *what, int a, int b, int min)
{
    if (a < min || b < min) {
        PyErr_Format(PyExc_ValueError, "%s(): %s must be >= %d, got (%d, %d)", func, what, min,
                     a, b);
        return -1;
    }
    return 0;
}

static int same_shape(const char *F, PyArrayObject *a, const char *an, PyArrayObject *b,
                      const char *bn);

/* ---- runtime ------------------------------------------------------------------------------- */

static PyObject *py_num_threads(PyObject *m, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(runtime_of(m)->nthreads);
}

static PyObject *py_set_num_threads(PyObject *m, PyObject *arg)
{
    int overflow = 0;
    long n = PyLong_Check(arg) ? PyLong_AsLongAndOverflow(arg, &overflow) : -1;
    if (!PyLong_Check(arg))
        return PyErr_Format(PyExc_TypeError, "set_num_threads(): expected an int, got %s",
                            Py_TYPE(arg)->tp_name);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (overflow)
        n = -1;
    if (n < 1 || n > 1024)
        return PyErr_Format(PyExc_ValueError, "set_num_threads(): expected 1 <= n <= 1024, "
                            "got %ld", n);
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_set_num_threads(rt, (int)n));
    return kernel_result(rc, "set_num_threads");
}

static PyObject *py_isa(PyObject *m, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(pc_isa_name(runtime_of(m)->ukernel.isa));
}

static PyObject *py_best_isa(PyObject *m, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(pc_isa_name(runtime_of(m)->best_isa));
}

static PyObject *py_set_isa(PyObject *m, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name)
        return NULL;
    pc_isa isa;
    if (strcmp(name, "avx512") == 0) isa = PC_ISA_AVX512;
    else if (strcmp(name, "avx2") == 0) isa = PC_ISA_AVX2;
    else if (strcmp(name, "generic") == 0) isa = PC_ISA_GENERIC;
    else
        return PyErr_Format(PyExc_ValueError, "set_isa(): unknown SIMD path '%s'; expected "
                            "'avx512', 'avx2' or 'generic'", name);
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_select_isa(rt, isa));
    if (rc)
        return PyErr_Format(PyExc_ValueError, "set_isa(): this CPU does not support '%s' "
                            "(best: '%s')", name, pc_isa_name(rt->best_isa));
    Py_RETURN_NONE;
}

/* ---- gemm and dense ---------------------------------------------------------------------------- */

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

/* ---- conv2d ------------------------------------------------------------------------------------ */

/* The convolution of x by w with an output of oh x ow cells. */
static int conv_geometry(const char *F, PyArrayObject *x, PyArrayObject *w, int oh, int ow,
                         int sh, int sw, int pt, int pl, pc_conv_shape *s)
{
    if (check_window(F, "strides", sh, sw, 1) || check_window(F, "pads", pt, pl, 0))
        return -1;
    *s = (pc_conv_shape){.n = dim(x, 0), .h = dim(x, 1), .w = dim(x, 2), .c = dim(x, 3),
                         .kh = dim(w, 0), .kw = dim(w, 1), .o = dim(w, 3),
                         .oh = oh, .ow = ow, .sh = sh, .sw = sw, .pt = pt, .pl = pl};
    if (dim(w, 2) != s->c) {
        PyErr_Format(PyExc_ValueError, "%s(): kernel 'w' has %d input channels but 'x' has %d",
                     F, dim(w, 2), s->c);
        return -1;
    }
    if ((long long)s->kh * s->kw * s->c > INT_MAX ||
        (long long)s->n * s->oh * s->ow > INT_MAX ||
        !window_fits(s->oh, s->sh, s->kh, s->pt) || !window_fits(s->ow, s->sw, s->kw, s->pl)) {
        PyErr_Format(PyExc_ValueError, "%s(): sizes, strides or pads too large: the last window "
                     "must start and end within int range", F);
        return -1;
    }
    return 0;
}

/* The convolution whose output (or its gradient) is the array y. */
static int conv_shape(const char *F, PyArrayObject *x, PyArrayObject *w, PyArrayObject *y,
                      const char *yname, int sh, int sw, int pt, int pl, pc_conv_shape *s)
{
    return conv_geometry(F, x, w, dim(y, 1), dim(y, 2), sh, sw, pt, pl, s) ||
           expect_shape(F, yname, y, 4, (int[]){s->n, -1, -1, s->o});
}

static PyObject *py_conv2d_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "strides", "pads", "activation", NULL};
    const char *F = "conv2d_forward", *acts = "linear";
    PyObject *ox, *ow, *ob, *oy, *ost, *opd;
    int sh, sw, pt, pl;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO|s", kwlist, &ox, &ow, &ob, &oy, &ost,
                                     &opd, &acts) ||
        parse_pair(ost, F, "strides", &sh, &sw) || parse_pair(opd, F, "pads", &pt, &pl))
        return NULL;
    PyArrayObject *x, *w, *b, *y;
    pc_act act;
    pc_conv_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ob, F, "b", NPY_FLOAT32, 1, IN, 1, &b) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, OUT, 0, &y) || parse_act(F, acts, &act, 1) ||
        conv_shape(F, x, w, y, "y", sh, sw, pt, pl, &s) ||
        (b && expect_shape(F, "b", b, 1, &s.o)))
        return NULL;
    PyArrayObject *arrs[] = {x, w, b, y};
    const char *names[] = {"x", "w", "b", "y"};
    if (check_disjoint(F, arrs, names, 4, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_conv2d_forward(rt, &s, FLOAT(x), FLOAT(w), OPT_FLOAT(b), FLOAT(y), act));
    return kernel_result(rc, F);
}

/* The gradients of a convolution s: dx (optional) like x, dw like w, db (optional) one per
 * filter; y (optional, a relu's output) shaped like dy. */
static int conv_grad_shapes(const char *F, const pc_conv_shape *s, PyArrayObject *dy,
                            PyArrayObject *y, PyArrayObject *dx, PyArrayObject *dw,
                            PyArrayObject *db)
{
    return (dx && expect_shape(F, "dx", dx, 4, (int[]){s->n, s->h, s->w, s->c})) ||
           expect_shape(F, "dw", dw, 4, (int[]){s->kh, s->kw, s->c, s->o}) ||
           (db && expect_shape(F, "db", db, 1, &s->o)) ||
           (y && same_shape(F, dy, "dy", y, "y"));
}

static PyObject *py_conv2d_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", "strides", "pads", "y", NULL};
    const char *F = "conv2d_backward";
    PyObject *ox, *ow, *ody, *odx, *odw, *odb, *ost, *opd, *oy = Py_None;
    int sh, sw, pt, pl;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOO|O", kwlist, &ox, &ow, &ody, &odx,
                                     &odw, &odb, &ost, &opd, &oy) ||
        parse_pair(ost, F, "strides", &sh, &sw) || parse_pair(opd, F, "pads", &pt, &pl))
        return NULL;
    PyArrayObject *x, *w, *dy, *dx, *dw, *db, *y;
    pc_conv_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ody, F, "dy", NPY_FLOAT32, 4, IN, 0, &dy) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 4, OUT, 1, &dx) ||
        get_array(odw, F, "dw", NPY_FLOAT32, 4, OUT, 0, &dw) ||
        get_array(odb, F, "db", NPY_FLOAT32, 1, OUT, 1, &db) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, IN, 1, &y) ||
        conv_shape(F, x, w, dy, "dy", sh, sw, pt, pl, &s))
        return NULL;
    if (conv_grad_shapes(F, &s, dy, y, dx, dw, db))
        return NULL;
    PyArrayObject *arrs[] = {x, w, dy, y, dx, dw, db};
    const char *names[] = {"x", "w", "dy", "y", "dx", "dw", "db"};
    if (check_disjoint(F, arrs, names, 7, 4))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_conv2d_backward(rt, &s, FLOAT(x), FLOAT(w), OPT_FLOAT(y), FLOAT(dy), OPT_FLOAT(dx),
                                      FLOAT(dw), OPT_FLOAT(db)));
    return kernel_result(rc, F);
}

/* ---- pooling ----------------------------------------------------------------------------------- */

/* Pooling of an n x h x w x c input into y; the dims of the input are given. */
static int pool_geometry(const char *F, int n, int h, int w, int c, PyArrayObject *y,
                         const char *xname, const char *yname, const char *prefix, int ph,
                         int pw, int sh, int sw, int pt, int pl, pc_pool_shape *s)
{
    char sname[32], pname[32];
    snprintf(sname, sizeof sname, "%sstrides", prefix);
    snprintf(pname, sizeof pname, "%spads", prefix);
    if (check_window(F, "pool", ph, pw, 1) || check_window(F, sname, sh, sw, 1) ||
        check_window(F, pname, pt, pl, 0))
        return -1;
    *s = (pc_pool_shape){.n = n, .h = h, .w = w, .c = c,
                         .ph = ph, .pw = pw, .oh = dim(y, 1), .ow = dim(y, 2),
                         .sh = sh, .sw = sw, .pt = pt, .pl = pl};
    if ((long long)s->h * s->w > INT_MAX || !window_fits(s->oh, sh, ph, pt) ||
        !window_fits(s->ow, sw, pw, pl)) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s', pool, strides or pads too large for int "
                     "indexing", F, xname);
        return -1;
    }
    return expect_shape(F, yname, y, 4, (int[]){s->n, -1, -1, s->c});
}

static int pool_shape(const char *F, PyArrayObject *x, PyArrayObject *y, const char *xname,
                      const char *yname, int ph, int pw, int sh, int sw, int pt, int pl,
                      pc_pool_shape *s)
{
    return pool_geometry(F, dim(x, 0), dim(x, 1), dim(x, 2), dim(x, 3), y, xname, yname, "", ph,
                         pw, sh, sw, pt, pl, s);
}

static PyObject *py_maxpool2d_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "y", "argmax", "pool", "strides", "pads", NULL};
    const char *F = "maxpool2d_forward";
    PyObject *ox, *oy, *oa, *opl, *ost, *opd;
    int ph, pw, sh, sw, pt, pl;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO", kwlist, &ox, &oy, &oa, &opl, &ost,
                                     &opd) ||
        parse_pair(opl, F, "pool", &ph, &pw) || parse_pair(ost, F, "strides", &sh, &sw) ||
        parse_pair(opd, F, "pads", &pt, &pl))
        return NULL;
    PyArrayObject *x, *y, *am;
    pc_pool_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, OUT, 0, &y) ||
        get_array(oa, F, "argmax", NPY_INT32, 4, OUT, 0, &am) ||
        pool_shape(F, x, y, "x", "y", ph, pw, sh, sw, pt, pl, &s) ||
        expect_shape(F, "argmax", am, 4, (int[]){s.n, s.oh, s.ow, s.c}))
        return NULL;
    PyArrayObject *arrs[] = {x, y, am};
    const char *names[] = {"x", "y", "argmax"};
    if (check_disjoint(F, arrs, names, 3, 1))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_maxpool2d_forward(rt, &s, FLOAT(x), FLOAT(y), (int32_t *)PyArray_DATA(am)));
    return kernel_result(rc, F);
}

static PyObject *py_maxpool2d_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dy", "argmax", "dx", NULL};
    const char *F = "maxpool2d_backward";
    PyObject *ody, *oa, *odx;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", kwlist, &ody, &oa, &odx))
        return NULL;
    PyArrayObject *dy, *am, *dx;
    if (get_array(ody, F, "dy", NPY_FLOAT32, 4, IN, 0, &dy) ||
        get_array(oa, F, "argmax", NPY_INT32, 4, IN, 0, &am) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 4, OUT, 0, &dx))
        return NULL;
    pc_pool_shape s = {.n = dim(dx, 0), .h = dim(dx, 1), .w = dim(dx, 2), .c = dim(dx, 3),
                       .oh = dim(dy, 1), .ow = dim(dy, 2)};
    if (expect_shape(F, "dy", dy, 4, (int[]){s.n, -1, -1, s.c}) ||
        expect_shape(F, "argmax", am, 4, (int[]){s.n, s.oh, s.ow, s.c}))
        return NULL;
    PyArrayObject *arrs[] = {dy, am, dx};
    const char *names[] = {"dy", "argmax", "dx"};
    if (check_disjoint(F, arrs, names, 3, 2))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    /* argmax values outside the image are ignored by the kernel, so any int32 content is safe */
    RUN_KERNEL(rt, pc_maxpool2d_backward(rt, &s, FLOAT(dy), (const int32_t *)PyArray_DATA(am),
                                         FLOAT(dx)));
    return kernel_result(rc, F);
}

/* ---- conv2d + max pooling ---------------------------------------------------------------------- */

/* The arguments both fused entry points share: the convolution's geometry (its output conv_hw
 * is never stored) and the pooling of that output into `pooled`. */
static int conv_pool_shapes(const char *F, PyArrayObject *x, PyArrayObject *w,
                            PyArrayObject *pooled, const char *pname, PyArrayObject *am,
                            PyObject *const *pairs, pc_conv_shape *s, pc_pool_shape *p)
{
    int v[10];
    static const char *names[] = {"strides", "pads", "conv_hw", "pool", "pool_strides",
                                  "pool_pads"};
    for (int i = 0; i < 5; i++)
        if (parse_pair(pairs[i], F, names[i], &v[2 * i], &v[2 * i + 1]))
            return -1;
    int pt, pl;
    if (parse_pair(pairs[5], F, names[5], &pt, &pl) ||
        check_window(F, "conv_hw", v[4], v[5], 1) ||
        conv_geometry(F, x, w, v[4], v[5], v[0], v[1], v[2], v[3], s))
        return -1;
    /* the output is not the caller's array here but scratch sized by conv_hw: every window must
     * start inside x, as for any output a layer computes */
    if ((long long)(s->oh - 1) * s->sh - s->pt >= s->h ||
        (long long)(s->ow - 1) * s->sw - s->pl >= s->w) {
        PyErr_Format(PyExc_ValueError, "%s(): conv_hw (%d, %d) is larger than 'x' of %dx%d "
                     "cells gives with these strides and pads", F, s->oh, s->ow, s->h, s->w);
        return -1;
    }
    if (pool_geometry(F, s->n, s->oh, s->ow, s->o, pooled, "the convolution's output", pname,
                      "pool_", v[6], v[7], v[8], v[9], pt, pl, p) ||
        expect_shape(F, "argmax", am, 4, (int[]){p->n, p->oh, p->ow, p->c}))
        return -1;
    return 0;
}

static PyObject *py_conv2d_maxpool_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "argmax", "strides", "pads", "conv_hw", "pool",
                             "pool_strides", "pool_pads", "activation", NULL};
    const char *F = "conv2d_maxpool_forward", *acts = "linear";
    PyObject *ox, *ow, *ob, *oy, *oa, *pairs[6];
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOOO|s", kwlist, &ox, &ow, &ob, &oy, &oa,
                                     &pairs[0], &pairs[1], &pairs[2], &pairs[3], &pairs[4],
                                     &pairs[5], &acts))
        return NULL;
    PyArrayObject *x, *w, *b, *y, *am;
    pc_act act;
    pc_conv_shape s;
    pc_pool_shape p;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ob, F, "b", NPY_FLOAT32, 1, IN, 1, &b) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, OUT, 0, &y) ||
        get_array(oa, F, "argmax", NPY_INT32, 4, OUT, 0, &am) || parse_act(F, acts, &act, 1) ||
        conv_pool_shapes(F, x, w, y, "y", am, pairs, &s, &p) ||
        (b && expect_shape(F, "b", b, 1, &s.o)))
        return NULL;
    PyArrayObject *arrs[] = {x, w, b, y, am};
    const char *names[] = {"x", "w", "b", "y", "argmax"};
    if (check_disjoint(F, arrs, names, 5, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_conv2d_maxpool_forward(rt, &s, &p, FLOAT(x), FLOAT(w), OPT_FLOAT(b), act,
                                             FLOAT(y), (int32_t *)PyArray_DATA(am)));
    return kernel_result(rc, F);
}

static PyObject *py_conv2d_maxpool_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "argmax", "dx", "dw", "db", "strides", "pads",
                             "conv_hw", "pool", "pool_strides", "pool_pads", "y", NULL};
    const char *F = "conv2d_maxpool_backward";
    PyObject *ox, *ow, *ody, *oa, *odx, *odw, *odb, *pairs[6], *oy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOOOOO|O", kwlist, &ox, &ow, &ody, &oa,
                                     &odx, &odw, &odb, &pairs[0], &pairs[1], &pairs[2],
                                     &pairs[3], &pairs[4], &pairs[5], &oy))
        return NULL;
    PyArrayObject *x, *w, *dy, *am, *dx, *dw, *db, *y;
    pc_conv_shape s;
    pc_pool_shape p;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ody, F, "dy", NPY_FLOAT32, 4, IN, 0, &dy) ||
        get_array(oa, F, "argmax", NPY_INT32, 4, IN, 0, &am) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 4, OUT, 1, &dx) ||
        get_array(odw, F, "dw", NPY_FLOAT32, 4, OUT, 0, &dw) ||
        get_array(odb, F, "db", NPY_FLOAT32, 1, OUT, 1, &db) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, IN, 1, &y) ||
        conv_pool_shapes(F, x, w, dy, "dy", am, pairs, &s, &p))
        return NULL;
    if (conv_grad_shapes(F, &s, dy, y, dx, dw, db))
        return NULL;
    PyArrayObject *arrs[] = {x, w, dy, am, y, dx, dw, db};
    const char *names[] = {"x", "w", "dy", "argmax", "y", "dx", "dw", "db"};
    if (check_disjoint(F, arrs, names, 8, 5))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    /* argmax values outside the convolution's output are ignored, so any content is safe */
    RUN_KERNEL(rt, pc_conv2d_maxpool_backward(rt, &s, &p, FLOAT(x), FLOAT(w), OPT_FLOAT(y),
                                              (const int32_t *)PyArray_DATA(am), FLOAT(dy),
                                              OPT_FLOAT(dx), FLOAT(dw), OPT_FLOAT(db)));
    return kernel_result(rc, F);
}

static PyObject *py_avgpool2d_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "y", "pool", "strides", "pads", NULL};
    const char *F = "avgpool2d_forward";
    PyObject *ox, *oy, *opl, *ost, *opd;
    int ph, pw, sh, sw, pt, pl;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOO", kwlist, &ox, &oy, &opl, &ost, &opd) ||
        parse_pair(opl, F, "pool", &ph, &pw) || parse_pair(ost, F, "strides", &sh, &sw) ||
        parse_pair(opd, F, "pads", &pt, &pl))
        return NULL;
    PyArrayObject *x, *y;
    pc_pool_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, OUT, 0, &y) ||
        pool_shape(F, x, y, "x", "y", ph, pw, sh, sw, pt, pl, &s))
        return NULL;
    PyArrayObject *arrs[] = {x, y};
    const char *names[] = {"x", "y"};
    if (check_disjoint(F, arrs, names, 2, 1))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_avgpool2d_forward(rt, &s, FLOAT(x), FLOAT(y)));
    return kernel_result(rc, F);
}

static PyObject *py_avgpool2d_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dy", "dx", "pool", "strides", "pads", NULL};
    const char *F = "avgpool2d_backward";
    PyObject *ody, *odx, *opl, *ost, *opd;
    int ph, pw, sh, sw, pt, pl;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOO", kwlist, &ody, &odx, &opl, &ost, &opd) ||
        parse_pair(opl, F, "pool", &ph, &pw) || parse_pair(ost, F, "strides", &sh, &sw) ||
        parse_pair(opd, F, "pads", &pt, &pl))
        return NULL;
    PyArrayObject *dy, *dx;
    pc_pool_shape s;
    if (get_array(ody, F, "dy", NPY_FLOAT32, 4, IN, 0, &dy) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 4, OUT, 0, &dx) ||
        pool_shape(F, dx, dy, "dx", "dy", ph, pw, sh, sw, pt, pl, &s))
        return NULL;
    PyArrayObject *arrs[] = {dy, dx};
    const char *names[] = {"dy", "dx"};
    if (check_disjoint(F, arrs, names, 2, 1))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_avgpool2d_backward(rt, &s, FLOAT(dy), FLOAT(dx)));
    return kernel_result(rc, F);
}

/* ---- activations ------------------------------------------------------------------------------- */

static const char *kind_string(const char *F, PyObject *obj)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s(): argument 'kind' must be a str, got %s", F,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8(obj);
}

static int same_shape(const char *F, PyArrayObject *a, const char *an, PyArrayObject *b,
                      const char *bn)
{
    if (PyArray_NDIM(a) != PyArray_NDIM(b) ||
        !PyArray_CompareLists(PyArray_DIMS(a), PyArray_DIMS(b), PyArray_NDIM(a))) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s' and '%s' must have the same shape", F, an, bn);
        return -1;
    }
    return 0;
}

static PyObject *py_activation_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"kind", "x", "y", NULL};
    const char *F = "activation_forward", *kind;
    PyObject *okind, *ox, *oy;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", kwlist, &okind, &ox, &oy) ||
        !(kind = kind_string(F, okind)))
        return NULL;
    PyArrayObject *x, *y;
    pc_act act;
    if (parse_act(F, kind, &act, 0) || get_array(ox, F, "x", NPY_FLOAT32, -1, IN, 0, &x) ||
        get_array(oy, F, "y", NPY_FLOAT32, -1, OUT, 0, &y) || same_shape(F, x, "x", y, "y"))
        return NULL;
    if (x != y && overlaps(x, y))
        return PyErr_Format(PyExc_ValueError, "%s(): 'y' must be 'x' itself or not share "
                            "memory with it", F);
    if (PyArray_NDIM(x) == 0 && act == PC_ACT_SOFTMAX)
        return PyErr_Format(PyExc_ValueError, "%s(): softmax needs rank >= 1", F);
    const size_t size = (size_t)PyArray_SIZE(x);
    const size_t cols = PyArray_NDIM(x) ? (size_t)PyArray_DIM(x, PyArray_NDIM(x) - 1) : 1;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_activation_forward(rt, act, FLOAT(x), FLOAT(y), size, cols));
    return kernel_result(rc, F);
}

static PyObject *py_activation_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"kind", "y", "dy", "dx", NULL};
    const char *F = "activation_backward", *kind;
    PyObject *okind, *oy, *ody, *odx;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO", kwlist, &okind, &oy, &ody, &odx) ||
        !(kind = kind_string(F, okind)))
        return NULL;
    PyArrayObject *y, *dy, *dx;
    pc_act act;
    if (parse_act(F, kind, &act, 0) || get_array(oy, F, "y", NPY_FLOAT32, -1, IN, 0, &y) ||
        get_array(ody, F, "dy", NPY_FLOAT32, -1, IN, 0, &dy) ||
        get_array(odx, F, "dx", NPY_FLOAT32, -1, OUT, 0, &dx) ||
        same_shape(F, y, "y", dy, "dy") || same_shape(F, y, "y", dx, "dx"))
        return NULL;
    if (overlaps(dx, y) || (dx != dy && overlaps(dx, dy)))
        return PyErr_Format(PyExc_ValueError, "%s(): 'dx' must be 'dy' itself or not share "
                            "memory with 'dy' and 'y'", F);
    if (PyArray_NDIM(y) == 0 && act == PC_ACT_SOFTMAX)
        return PyErr_Format(PyExc_ValueError, "%s(): softmax needs rank >= 1", F);
    const size_t size = (size_t)PyArray_SIZE(y);
    const size_t cols = PyArray_NDIM(y) ? (size_t)PyArray_DIM(y, PyArray_NDIM(y) - 1) : 1;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_activation_backward(rt, act, FLOAT(y), FLOAT(dy), FLOAT(dx), size, cols));
    return kernel_result(rc, F);
}

/* ---- losses ------------------------------------------------------------------------------------ */

/* The four crossentropies share one entry point. Arguments, in order:
 *   scores  (N, C) float32: logits ("softmax_" variants) or probabilities
 *   truth   labels int64 (N,) (sparse variants) or targets float32 (N, C)
 *   probs   (N, C) float32 output of the softmax (softmax variants only)
 *   grad    (N, C) float32 output, or None
 * and the mean loss is returned. */
static int check_labels(const char *F, PyArrayObject *labels, int n, int classes)
{
    if (expect_shape(F, "labels", labels, 1, &n))
        return -1;
    const int64_t *l = (const int64_t *)PyArray_DATA(labels);
    for (int i = 0; i < n; i++)
        if (l[i] < 0 || l[i] >= classes) {
            PyErr_Format(PyExc_ValueError, "%s(): labels[%d] = %lld is out of range: expected "
                         "a class index in [0, %d)", F, i, (long long)l[i], classes);
            return -1;
        }
    return 0;
}

typedef struct {
    const char *name;
    int sparse, softmax;
    char *kwlist[5];
} loss_spec;

static const loss_spec LOSS_SOFTMAX_XENT_SPARSE = {
    "softmax_xent_sparse", 1, 1, {"logits", "labels", "probs", "dlogits", NULL}};
static const loss_spec LOSS_XENT_SPARSE = {
    "xent_sparse", 1, 0, {"probs", "labels", "dprobs", NULL, NULL}};
static const loss_spec LOSS_SOFTMAX_XENT = {
    "softmax_xent", 0, 1, {"logits", "targets", "probs", "dlogits", NULL}};
static const loss_spec LOSS_XENT = {
    "xent", 0, 0, {"probs", "targets", "dprobs", NULL, NULL}};

static PyObject *crossentropy(const loss_spec *L, PyObject *args, PyObject *kw)
{
    const char *F = L->name;
    char *const *names = L->kwlist;
    PyObject *o[4] = {NULL, NULL, Py_None, Py_None};
    PyArrayObject *a[4] = {NULL, NULL, NULL, NULL};   /* scores, truth, probs, grad */
    int ok = L->softmax
        ? PyArg_ParseTupleAndKeywords(args, kw, "OOOO", (char **)names, &o[0], &o[1], &o[2], &o[3])
        : PyArg_ParseTupleAndKeywords(args, kw, "OOO", (char **)names, &o[0], &o[1], &o[3]);
    if (!ok)
        return NULL;
    const char *grad_name = names[L->softmax ? 3 : 2];
    if (get_array(o[0], F, names[0], NPY_FLOAT32, 2, IN, 0, &a[0]) ||
        get_array(o[1], F, names[1], L->sparse ? NPY_INT64 : NPY_FLOAT32, L->sparse ? 1 : 2, IN,
                  0, &a[1]) ||
        (L->softmax && get_array(o[2], F, names[2], NPY_FLOAT32, 2, OUT, 0, &a[2])) ||
        get_array(o[3], F, grad_name, NPY_FLOAT32, 2, OUT, 1, &a[3]) ||
        (a[2] && same_shape(F, a[0], names[0], a[2], names[2])) ||
        (a[3] && same_shape(F, a[0], names[0], a[3], grad_name)))
        return NULL;
    const int n = dim(a[0], 0), classes = dim(a[0], 1);
    if (L->sparse ? check_labels(F, a[1], n, classes) : same_shape(F, a[0], names[0], a[1], names[1]))
        return NULL;
    const char *all_names[] = {names[0], names[1], L->softmax ? names[2] : "", grad_name};
    if (check_disjoint(F, a, all_names, 4, 2))
        return NULL;
    const float *scores = FLOAT(a[0]);
    float *probs = OPT_FLOAT(a[2]), *grad = OPT_FLOAT(a[3]);
    double loss = 0.0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (L->sparse) {
        const int64_t *labels = (const int64_t *)PyArray_DATA(a[1]);
        rc = L->softmax ? pc_softmax_xent_sparse(scores, labels, n, classes, probs, grad, &loss)
                        : pc_xent_sparse(scores, labels, n, classes, grad, &loss);
    } else {
        const float *targets = FLOAT(a[1]);
        rc = L->softmax ? pc_softmax_xent(scores, targets, n, classes, probs, grad, &loss)
                        : pc_xent(scores, targets, n, classes, grad, &loss);
    }
    Py_END_ALLOW_THREADS
    if (rc)
        return kernel_result(rc, F);
    return PyFloat_FromDouble(loss);
}

#define LOSS_ENTRY(fn, spec)                                                            \
    static PyObject *py_##fn(PyObject *m, PyObject *args, PyObject *kw)                 \
    {                                                                                   \
        (void)m;                                                                        \
        return crossentropy(&spec, args, kw);                                           \
    }
LOSS_ENTRY(softmax_xent_sparse, LOSS_SOFTMAX_XENT_SPARSE)
LOSS_ENTRY(xent_sparse, LOSS_XENT_SPARSE)
LOSS_ENTRY(softmax_xent, LOSS_SOFTMAX_XENT)
LOSS_ENTRY(xent, LOSS_XENT)
#undef LOSS_ENTRY

/* ---- optimizers -------------------------------------------------------------------------------- */

/* w (OUT) and the other arrays: float32, contiguous, each of w's size, pairwise disjoint */
static int opt_arrays(const char *F, PyObject **objs, const char **names, int n, int first_opt,
                      PyArrayObject **arrs)
{
    for (int i = 0; i < n; i++) {
        const int mode = (i == 1) ? IN : OUT;   /* index 1 is the gradient */
        if (get_array(objs[i], F, names[i], NPY_FLOAT32, -1, mode, i >= first_opt, &arrs[i]))
            return -1;
        if (arrs[i] && PyArray_SIZE(arrs[i]) != PyArray_SIZE(arrs[0])) {
            PyErr_Format(PyExc_ValueError, "%s(): '%s' has %zd elements but 'w' has %zd", F,
                         names[i], (Py_ssize_t)PyArray_SIZE(arrs[i]),
                         (Py_ssize_t)PyArray_SIZE(arrs[0]));
            return -1;
        }
    }
    for (int i = 0; i < n; i++)
        for (int k = i + 1; k < n; k++)
            if (overlaps(arrs[i], arrs[k])) {
                PyErr_Format(PyExc_ValueError, "%s(): '%s' and '%s' must not share memory", F,
                             names[i], names[k]);
                return -1;
            }
    return 0;
}

/* ---- batches ---------------------------------------------------------------------------------- */

static PyObject *py_take_rows(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "indices", "out", NULL};
    const char *F = "take_rows";
    PyObject *o[3];
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", kwlist, &o[0], &o[1], &o[2]))
        return parse_error(F);
    PyArrayObject *x, *idx, *out;
    if (get_array(o[0], F, "x", NPY_FLOAT32, -1, IN, 0, &x) ||
        get_array(o[1], F, "indices", NPY_INT64, 1, IN, 0, &idx) ||
        get_array(o[2], F, "out", NPY_FLOAT32, -1, OUT, 0, &out))
        return NULL;
    if (PyArray_NDIM(out) != PyArray_NDIM(x))
        return PyErr_Format(PyExc_ValueError, "%s(): argument 'out' must have the rank of 'x' "
                            "(%d), got rank %d", F, PyArray_NDIM(x), PyArray_NDIM(out));
    const int n = dim(idx, 0);
    int want[NPY_MAXDIMS];
    want[0] = n;
    for (int d = 1; d < PyArray_NDIM(x); d++)
        want[d] = dim(x, d);
    if (expect_shape(F, "out", out, PyArray_NDIM(x), want))
        return NULL;
    PyArrayObject *arrs[] = {x, idx, out};
    const char *names[] = {"x", "indices", "out"};
    if (check_disjoint(F, arrs, names, 3, 2))
        return NULL;
    const int64_t *ix = (const int64_t *)PyArray_DATA(idx);
    const int64_t rows = PyArray_DIM(x, 0);
    for (int r = 0; r < n; r++)
        if (ix[r] < 0 || ix[r] >= rows)
            return PyErr_Format(PyExc_ValueError, "%s(): indices[%d] = %lld is out of range for "
                                "'x' with %lld rows", F, r, (long long)ix[r], (long long)rows);
    pc_runtime *rt = runtime_of(m);
    const size_t row_bytes = (size_t)PyArray_NBYTES(x) / (size_t)rows;
    Py_BEGIN_ALLOW_THREADS
    pc_runtime_enter(rt);
    pc_gather_rows(rt, PyArray_DATA(x), row_bytes, ix, n, PyArray_DATA(out));
    pc_runtime_leave(rt);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_sgd_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "velocity", "lr", "momentum", "nesterov", NULL};
    const char *F = "sgd_update";
    PyObject *o[3];
    float lr, momentum;
    int nesterov = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOff|p", kwlist, &o[0], &o[1], &o[2], &lr,
                                     &momentum, &nesterov))
        return parse_error(F);
    const char *names[] = {"w", "g", "velocity"};
    PyArrayObject *a[3];
    if (opt_arrays(F, o, names, 3, 2, a))
        return NULL;
    if (momentum != 0.0f && !a[2])
        return PyErr_Format(PyExc_ValueError, "%s(): 'velocity' is required when momentum != 0", F);
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_sgd_update(rt, FLOAT(a[0]), FLOAT(a[1]), OPT_FLOAT(a[2]),
                                 (size_t)PyArray_SIZE(a[0]), lr, momentum, nesterov));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_rmsprop_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "v", "lr", "rho", "epsilon", "momentum", "mom",
                             "centered", "mg", NULL};
    const char *F = "rmsprop_update";
    PyObject *o[5] = {NULL, NULL, NULL, Py_None, Py_None};
    float lr, rho, eps, momentum = 0.0f;
    int centered = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOfff|fOpO", kwlist, &o[0], &o[1], &o[2], &lr,
                                     &rho, &eps, &momentum, &o[3], &centered, &o[4]))
        return parse_error(F);
    const char *names[] = {"w", "g", "v", "mom", "mg"};
    PyArrayObject *a[5];
    if (opt_arrays(F, o, names, 5, 3, a))
        return NULL;
    if (momentum > 0.0f && !a[3])
        return PyErr_Format(PyExc_ValueError, "%s(): 'mom' is required when momentum > 0", F);
    if (centered && !a[4])
        return PyErr_Format(PyExc_ValueError, "%s(): 'mg' is required when centered", F);
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_rmsprop_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                     (size_t)PyArray_SIZE(a[0]), lr, rho, eps, momentum,
                                     OPT_FLOAT(a[3]), centered, OPT_FLOAT(a[4])));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_adam_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "m", "v", "lr", "beta_1", "beta_2", "epsilon", "step",
                             NULL};
    const char *F = "adam_update";
    PyObject *o[4];
    float lr, b1, b2, eps;
    long long step;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOffffL", kwlist, &o[0], &o[1], &o[2], &o[3],
                                     &lr, &b1, &b2, &eps, &step))
        return parse_error(F);
    if (step < 1)
        return PyErr_Format(PyExc_ValueError, "%s(): 'step' must be >= 1, got %lld", F, step);
    const char *names[] = {"w", "g", "m", "v"};
    PyArrayObject *a[4];
    if (opt_arrays(F, o, names, 4, 4, a))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_adam_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]), FLOAT(a[3]),
                                  (size_t)PyArray_SIZE(a[0]), lr, b1, b2, eps, step));
    return PyLong_FromSize_t(bad);
}

/* ---- module ------------------------------------------------------------------------------------ */

#define KW(name, doc) {#name, (PyCFunction)(void (*)(void))py_##name, METH_VARARGS | METH_KEYWORDS, doc}

static PyMethodDef methods[] = {
    {"num_threads", py_num_threads, METH_NOARGS, "num_threads() -> int: the thread pool's size."},
    {"set_num_threads", py_set_num_threads, METH_O, "set_num_threads(n): use n threads (n >= 1)."},
    {"isa", py_isa, METH_NOARGS, "isa() -> str: the SIMD path in use."},
    {"best_isa", py_best_isa, METH_NOARGS, "best_isa() -> str: the best SIMD path this CPU supports."},
    {"set_isa", py_set_isa, METH_O, "set_isa(name): choose 'avx512', 'avx2' or 'generic'."},
    KW(gemm, "gemm(a, b, c, trans_a=False, trans_b=False, accumulate=False): c = op(a) @ op(b) (+ c)."),
    KW(dense_forward, "dense_forward(x, w, b, y, activation='linear'): y = act(x @ w + b)."),
    KW(dense_backward, "dense_backward(x, w, dy, dx, dw, db): gradients of dense_forward."),
    KW(conv2d_forward, "conv2d_forward(x, w, b, y, strides, pads, activation='linear')."),
    KW(conv2d_backward, "conv2d_backward(x, w, dy, dx, dw, db, strides, pads, y=None): with y "
                        "(the output of a fused relu), dy is masked by y > 0 first."),
    KW(conv2d_maxpool_forward, "conv2d_maxpool_forward(x, w, b, y, argmax, strides, pads, "
       "conv_hw, pool, pool_strides, pool_pads, activation='linear'): conv2d then max pooling, "
       "the convolution's output (conv_hw cells) never stored."),
    KW(conv2d_maxpool_backward, "conv2d_maxpool_backward(x, w, dy, argmax, dx, dw, db, strides, "
       "pads, conv_hw, pool, pool_strides, pool_pads, y=None): dy is the pooled gradient; with y "
       "(the pooled output of a relu) dy passes where y > 0."),
    KW(maxpool2d_forward, "maxpool2d_forward(x, y, argmax, pool, strides, pads)."),
    KW(maxpool2d_backward, "maxpool2d_backward(dy, argmax, dx)."),
    KW(avgpool2d_forward, "avgpool2d_forward(x, y, pool, strides, pads)."),
    KW(avgpool2d_backward, "avgpool2d_backward(dy, dx, pool, strides, pads)."),
    KW(activation_forward, "activation_forward(kind, x, y)."),
    KW(activation_backward, "activation_backward(kind, y, dy, dx): from the forward output y."),
    KW(softmax_xent_sparse, "softmax_xent_sparse(logits, labels, probs, dlogits) -> mean loss."),
    KW(xent_sparse, "xent_sparse(probs, labels, dprobs) -> mean loss."),
    KW(softmax_xent, "softmax_xent(logits, targets, probs, dlogits) -> mean loss."),
    KW(xent, "xent(probs, targets, dprobs) -> mean loss."),
    KW(take_rows, "take_rows(x, indices, out): out[r] = x[indices[r]] (float32 rows, int64 "
                  "indices in range)."),
    KW(sgd_update, "sgd_update(w, g, velocity, lr, momentum, nesterov=False) -> number of non-finite weights after the update: Keras SGD."),
    KW(rmsprop_update, "rmsprop_update(w, g, v, lr, rho, epsilon, momentum=0, mom=None, "
                       "centered=False, mg=None): Keras RMSprop."),
    KW(adam_update, "adam_update(w, g, m, v, lr, beta_1, beta_2, epsilon, step): Keras Adam."),
    {NULL, NULL, 0, NULL}};

static int module_exec(PyObject *module)
{
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
    module_state *st = PyModule_GetState(module);
    st->rt = malloc(sizeof *st->rt);
    if (!st->rt || pc_runtime_init(st->rt, 1)) {
        free(st->rt);
        st->rt = NULL;
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void module_free(void *module)
{
    module_state *st = PyModule_GetState((PyObject *)module);
    if (st && st->rt) {
        pc_runtime_destroy(st->rt);
        free(st->rt);
        st->rt = NULL;
    }
}

static PyModuleDef_Slot slots[] = {{Py_mod_exec, module_exec}, {0, NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "pycnn._C",
    "pycnn's C kernels (internal; use the pycnn API). Contract: docs/kernels.md.",
    sizeof(module_state), methods, slots, NULL, NULL, module_free};

PyMODINIT_FUNC PyInit__C(void) { return PyModuleDef_Init(&moduledef); }
