/*
 * bind_activations.c - the binding's entry points for activations (see binding.h).
 */
#include "binding.h"

#include <math.h>

/* The parameter of elu (alpha) and leaky_relu (negative_slope): None for the kind's default, a
 * finite number otherwise; the other kinds take none. */
static int get_alpha(const char *F, pc_act act, PyObject *obj, float *alpha)
{
    *alpha = act >= PC_ACT_FIRST_EXT ? pc_act_default_alpha(act) : 0.0f;
    if (obj == Py_None)
        return 0;
    if (act != PC_ACT_ELU && act != PC_ACT_LEAKY_RELU) {
        PyErr_Format(PyExc_ValueError, "%s(): argument 'alpha' is only for 'elu' and "
                     "'leaky_relu'", F);
        return -1;
    }
    const double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    if (!isfinite(v) || fabs(v) > 3.4e38) {
        PyErr_Format(PyExc_ValueError, "%s(): argument 'alpha' must be a finite float, got %R",
                     F, obj);
        return -1;
    }
    *alpha = (float)v;
    return 0;
}

static PyObject *py_activation_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"kind", "x", "y", "alpha", NULL};
    const char *F = "activation_forward", *kind;
    PyObject *okind, *oalpha = Py_None;
    PyArrayObject *x, *y;
    pc_act act;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO&O&|O", kwlist, &okind, IN_F32("x", -1, &x),
                                     OUT_F32("y", -1, &y), &oalpha) ||
        !(kind = kind_string(F, okind)) || parse_act(F, kind, &act, 0) ||
        same_shape(F, x, "x", y, "y"))
        return NULL;
    if (x != y && overlaps(x, y))
        return PyErr_Format(PyExc_ValueError, "%s(): 'y' must be 'x' itself or not share "
                            "memory with it", F);
    if (PyArray_NDIM(x) == 0 && act == PC_ACT_SOFTMAX)
        return PyErr_Format(PyExc_ValueError, "%s(): softmax needs rank >= 1", F);
    float alpha;
    if (get_alpha(F, act, oalpha, &alpha))
        return NULL;
    const size_t size = (size_t)PyArray_SIZE(x);
    const size_t cols = PyArray_NDIM(x) ? (size_t)PyArray_DIM(x, PyArray_NDIM(x) - 1) : 1;
    pc_runtime *rt = runtime_of(m);
    int rc;
    if (act >= PC_ACT_FIRST_EXT)
        RUN_KERNEL(rt, pc_activation_forward_ext(rt, act, alpha, FLOAT(x), FLOAT(y), size));
    else
        RUN_KERNEL(rt, pc_activation_forward(rt, act, FLOAT(x), FLOAT(y), size, cols));
    return kernel_result(rc, F);
}

static PyObject *py_activation_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"kind", "y", "dy", "dx", "x", "alpha", NULL};
    const char *F = "activation_backward", *kind;
    PyObject *okind, *oalpha = Py_None;
    PyArrayObject *y, *dy, *dx, *x = NULL;
    pc_act act;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO&O&O&|O&O", kwlist, &okind,
                                     IN_F32("y", -1, &y), IN_F32("dy", -1, &dy),
                                     OUT_F32("dx", -1, &dx), OPT_IN_F32("x", -1, &x), &oalpha) ||
        !(kind = kind_string(F, okind)) || parse_act(F, kind, &act, 0) ||
        same_shape(F, y, "y", dy, "dy") || same_shape(F, y, "y", dx, "dx") ||
        (x && same_shape(F, y, "y", x, "x")))
        return NULL;
    if (overlaps(dx, y) || (dx != dy && overlaps(dx, dy)) || overlaps(dx, x))
        return PyErr_Format(PyExc_ValueError, "%s(): 'dx' must be 'dy' itself or not share "
                            "memory with 'dy', 'y' and 'x'", F);
    float alpha;
    if (get_alpha(F, act, oalpha, &alpha))
        return NULL;
    if (!x && act >= PC_ACT_FIRST_EXT && pc_act_needs_input(act, alpha))
        return PyErr_Format(PyExc_ValueError, "%s(): the gradient of '%s' needs the forward "
                            "input: argument 'x' is required", F, kind);
    if (PyArray_NDIM(y) == 0 && act == PC_ACT_SOFTMAX)
        return PyErr_Format(PyExc_ValueError, "%s(): softmax needs rank >= 1", F);
    const size_t size = (size_t)PyArray_SIZE(y);
    const size_t cols = PyArray_NDIM(y) ? (size_t)PyArray_DIM(y, PyArray_NDIM(y) - 1) : 1;
    pc_runtime *rt = runtime_of(m);
    int rc;
    if (act >= PC_ACT_FIRST_EXT)
        RUN_KERNEL(rt, pc_activation_backward_ext(rt, act, alpha, OPT_FLOAT(x), FLOAT(y),
                                                  FLOAT(dy), FLOAT(dx), size));
    else
        RUN_KERNEL(rt, pc_activation_backward(rt, act, FLOAT(y), FLOAT(dy), FLOAT(dx), size,
                                              cols));
    return kernel_result(rc, F);
}

PyMethodDef pc_methods_activations[] = {
    KW(activation_forward, "activation_forward(kind, x, y, alpha=None)."),
    KW(activation_backward, "activation_backward(kind, y, dy, dx, x=None, alpha=None): from the "
                            "forward output y (and the input x for the kinds that need it)."),
    {NULL, NULL, 0, NULL}};
