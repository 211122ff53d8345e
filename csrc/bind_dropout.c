/*
 * bind_dropout.c - the binding's entry points for Dropout (see binding.h; kernels in
 * dropout.c).
 */
#include "binding.h"

/* A rate argument: a float in [0, 1). */
static int get_rate(const char *F, PyObject *obj, double *rate)
{
    const double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    if (!(v >= 0.0 && v < 1.0)) {
        PyErr_Format(PyExc_ValueError, "%s(): argument 'rate' must be a float in [0, 1), got %R",
                     F, obj);
        return -1;
    }
    *rate = v;
    return 0;
}

/* x is not empty. */
static int not_empty(const char *F, PyArrayObject *x, const char *xn)
{
    if (PyArray_SIZE(x) == 0) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s' must not be empty", F, xn);
        return -1;
    }
    return 0;
}

static PyObject *py_dropout_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "y", "mask", "rate", "key", NULL};
    const char *F = "dropout_forward";
    PyArrayObject *x, *y, *mask;
    PyObject *orate;
    unsigned long long key;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&OK", kwlist, IN_F32("x", -1, &x),
                                     OUT_F32("y", -1, &y),
                                     OUT_F32("mask", -1, &mask), &orate, &key))
        return NULL;
    double rate;
    if (same_shape(F, x, "x", y, "y") || same_shape(F, x, "x", mask, "mask") ||
        not_empty(F, x, "x") || get_rate(F, orate, &rate))
        return NULL;
    PyArrayObject *arrs[] = {x, y, mask};
    const char *names[] = {"x", "y", "mask"};
    if (check_disjoint(F, arrs, names, 3, 1))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_dropout_forward(rt, FLOAT(x), (size_t)PyArray_SIZE(x), rate,
                                      (uint64_t)key, FLOAT(y), FLOAT(mask)));
    return kernel_result(rc, F);
}

static PyObject *py_dropout_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dy", "mask", "dx", NULL};
    const char *F = "dropout_backward";
    PyArrayObject *dy, *mask, *dx;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", kwlist, IN_F32("dy", -1, &dy),
                                     IN_F32("mask", -1, &mask), OUT_F32("dx", -1, &dx)))
        return NULL;
    if (same_shape(F, dy, "dy", dx, "dx") || same_shape(F, dy, "dy", mask, "mask") ||
        not_empty(F, dy, "dy"))
        return NULL;
    PyArrayObject *arrs[] = {dy, mask, dx};
    const char *names[] = {"dy", "mask", "dx"};
    if (check_disjoint(F, arrs, names, 3, 2))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_dropout_backward(rt, FLOAT(dy), FLOAT(mask), (size_t)PyArray_SIZE(dy),
                                       FLOAT(dx)));
    return kernel_result(rc, F);
}

static PyObject *py_dropout_bits(PyObject *m, PyObject *args, PyObject *kw)
{
    (void)m;
    static char *kwlist[] = {"key", "i", NULL};
    unsigned long long key, i;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KK", kwlist, &key, &i))
        return NULL;
    return PyLong_FromUnsignedLong(pc_dropout_bits((uint64_t)key, (uint64_t)i));
}

PyMethodDef pc_methods_dropout[] = {
    KW(dropout_forward, "dropout_forward(x, y, mask, rate, key): Dropout's training pass: "
                        "mask = 1 / (1 - rate) where kept by (key, rate) else 0, y = x * mask"),
    KW(dropout_backward, "dropout_backward(dy, mask, dx): dx = dy * mask"),
    KW(dropout_bits, "dropout_bits(key, i): the 32 random bits of element i (for tests)"),
    {NULL, NULL, 0, NULL}};
