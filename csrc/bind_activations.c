/*
 * bind_activations.c - the binding's entry points for activations (see binding.h).
 */
#include "binding.h"

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

PyMethodDef pc_methods_activations[] = {
    KW(activation_forward, "activation_forward(kind, x, y)."),
    KW(activation_backward, "activation_backward(kind, y, dy, dx): from the forward output y."),
    {NULL, NULL, 0, NULL}};
