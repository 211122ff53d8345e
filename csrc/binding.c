/*
 * binding.c - the argument converters and checks every entry point of the binding uses
 * (see binding.h).
 */
#include "binding.h"

pc_runtime *runtime_of(PyObject *module)
{
    return ((module_state *)PyModule_GetState(module))->rt;
}

/* ---- argument conversion --------------------------------------------------------------------- */


/* obj must be an aligned, native-byte-order, C-contiguous, non-empty ndarray of `typenum` with
 * `ndim` dimensions (ndim < 0: any rank); OUT arrays must be writeable. None is accepted when
 * `optional`, giving *out = NULL. Returns 0, or -1 with an exception set. */
int get_array(PyObject *obj, const char *func, const char *name, int typenum, int ndim,
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

int pc_arg_array(PyObject *obj, void *arg)
{
    const pc_arg *p = arg;
    PyArrayObject *a;
    if (get_array(obj, p->func, p->name, p->typenum, p->ndim, p->mode, p->optional, &a))
        return 0;
    *p->out = a;
    return 1;
}

int dim(PyArrayObject *a, int d) { return (int)PyArray_DIM(a, d); }

int overlaps(PyArrayObject *a, PyArrayObject *b)
{
    if (!a || !b)
        return 0;
    const char *pa = PyArray_BYTES(a), *pb = PyArray_BYTES(b);
    return pa < pb + PyArray_NBYTES(b) && pb < pa + PyArray_NBYTES(a);
}

/* Outputs must not share memory with inputs or with each other (unless the contract allows). */
int check_disjoint(const char *func, PyArrayObject **arrs, const char **names, int n,
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

int expect_shape(const char *func, const char *name, PyArrayObject *a, int ndim,
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
PyObject *parse_error(const char *func)
{
    if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s(): a numeric argument is out of range", func);
    }
    return NULL;
}

PyObject *kernel_result(int rc, const char *func)
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
int parse_act(const char *func, const char *s, pc_act *act, int fused_only)
{
    static const struct { const char *name; pc_act act; } acts[] = {
        {"linear", PC_ACT_LINEAR}, {"relu", PC_ACT_RELU}, {"sigmoid", PC_ACT_SIGMOID},
        {"tanh", PC_ACT_TANH}, {"softmax", PC_ACT_SOFTMAX},
        {"elu", PC_ACT_ELU}, {"selu", PC_ACT_SELU}, {"softplus", PC_ACT_SOFTPLUS},
        {"softsign", PC_ACT_SOFTSIGN}, {"silu", PC_ACT_SILU}, {"swish", PC_ACT_SILU},
        {"hard_sigmoid", PC_ACT_HARD_SIGMOID}, {"hard_silu", PC_ACT_HARD_SILU},
        {"hard_swish", PC_ACT_HARD_SILU}, {"relu6", PC_ACT_RELU6},
        {"leaky_relu", PC_ACT_LEAKY_RELU}, {"exponential", PC_ACT_EXPONENTIAL},
        {"gelu", PC_ACT_GELU}, {"gelu_tanh", PC_ACT_GELU_TANH}, {"mish", PC_ACT_MISH},
        {"log_sigmoid", PC_ACT_LOG_SIGMOID}, {"hard_tanh", PC_ACT_HARD_TANH}};
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
                            : "'linear', 'relu', 'sigmoid', 'tanh', 'softmax', 'elu', "
                              "'selu', 'softplus', 'softsign', 'silu' ('swish'), "
                              "'hard_sigmoid', 'hard_silu' ('hard_swish'), 'relu6', "
                              "'leaky_relu', 'exponential', 'gelu', 'gelu_tanh', 'mish', "
                              "'log_sigmoid' or 'hard_tanh'");
    return -1;
}

/* The kernels index rows as o*s + k - p in int: that must not overflow for any output o. */
int window_fits(int out, int stride, int window, int pad)
{
    return (long long)(out - 1) * stride + window + pad <= INT_MAX;
}

/* A pair of ints (a tuple or list of two), named in the error. */
int parse_pair(PyObject *obj, const char *func, const char *name, int *a, int *b)
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

int check_window(const char *func, const char *what, int a, int b, int min)
{
    if (a < min || b < min) {
        PyErr_Format(PyExc_ValueError, "%s(): %s must be >= %d, got (%d, %d)", func, what, min,
                     a, b);
        return -1;
    }
    return 0;
}


const char *kind_string(const char *F, PyObject *obj)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s(): argument 'kind' must be a str, got %s", F,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8(obj);
}

int same_shape(const char *F, PyArrayObject *a, const char *an, PyArrayObject *b,
                      const char *bn)
{
    if (PyArray_NDIM(a) != PyArray_NDIM(b) ||
        !PyArray_CompareLists(PyArray_DIMS(a), PyArray_DIMS(b), PyArray_NDIM(a))) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s' and '%s' must have the same shape", F, an, bn);
        return -1;
    }
    return 0;
}

int pc_arg_pair(PyObject *obj, void *arg)
{
    const pc_pair *p = arg;
    return parse_pair(obj, p->func, p->name, &p->v[0], &p->v[1]) ? 0 : 1;
}

int conv_geometry(const char *F, PyArrayObject *in, const char *in_name, PyArrayObject *w,
                  int oh, int ow, const int g[6], int groups, pc_convg_shape *s)
{
    if (check_window(F, "strides", g[0], g[1], 1) || check_window(F, "pads", g[2], g[3], 0) ||
        check_window(F, "dilation", g[4], g[5], 1))
        return -1;
    if (groups < 1) {
        PyErr_Format(PyExc_ValueError, "%s(): groups must be >= 1, got %d", F, groups);
        return -1;
    }
    *s = (pc_convg_shape){.n = dim(in, 0), .h = dim(in, 1), .w = dim(in, 2), .c = dim(in, 3),
                          .kh = dim(w, 0), .kw = dim(w, 1), .o = dim(w, 3), .oh = oh, .ow = ow,
                          .sh = g[0], .sw = g[1], .pt = g[2], .pl = g[3], .dh = g[4],
                          .dw = g[5], .groups = groups};
    if (s->c % groups || s->o % groups) {
        PyErr_Format(PyExc_ValueError, "%s(): groups=%d must divide the %d input channels and "
                     "the %d filters", F, groups, s->c, s->o);
        return -1;
    }
    if ((long long)dim(w, 2) * groups != s->c) {
        if (groups == 1)
            PyErr_Format(PyExc_ValueError, "%s(): kernel 'w' has %d input channels but '%s' "
                         "has %d", F, dim(w, 2), in_name, s->c);
        else
            PyErr_Format(PyExc_ValueError, "%s(): kernel 'w' has %d input channels per group "
                         "but '%s' has %d channels in %d groups", F, dim(w, 2), in_name, s->c,
                         groups);
        return -1;
    }
    const long long ekh = (long long)(s->kh - 1) * s->dh + 1;
    const long long ekw = (long long)(s->kw - 1) * s->dw + 1;
    if ((long long)s->kh * s->kw * s->c > INT_MAX || (long long)s->n * oh * ow > INT_MAX ||
        ekh > INT_MAX || ekw > INT_MAX || !window_fits(oh, s->sh, (int)ekh, s->pt) ||
        !window_fits(ow, s->sw, (int)ekw, s->pl)) {
        PyErr_Format(PyExc_ValueError, "%s(): sizes, strides, pads or dilation too large: the "
                     "last window must start and end within int range", F);
        return -1;
    }
    return 0;
}

/* The rank-4 array a (named in errors) must have the shape of the rank-4 array ref. */
static int shaped_like(const char *F, const char *name, PyArrayObject *a, PyArrayObject *ref)
{
    return expect_shape(F, name, a, 4, (int[]){dim(ref, 0), dim(ref, 1), dim(ref, 2), dim(ref, 3)});
}

int check_conv_grads(const char *F, const conv_grads *a, int filters)
{
    if ((a->dx && shaped_like(F, "dx", a->dx, a->x)) || shaped_like(F, "dw", a->dw, a->w) ||
        (a->db && expect_shape(F, "db", a->db, 1, &filters)) ||
        (a->y && shaped_like(F, "y", a->y, a->dy)))
        return -1;
    PyArrayObject *arrs[] = {a->x, a->w, a->dy, a->y, a->dx, a->dw, a->db};
    const char *names[] = {"x", "w", "dy", "y", "dx", "dw", "db"};
    return check_disjoint(F, arrs, names, 7, 4);
}

int check_conv_fwd(const char *F, const conv_fwd *a, int filters)
{
    if (a->b && expect_shape(F, "b", a->b, 1, &filters))
        return -1;
    PyArrayObject *arrs[] = {a->x, a->w, a->b, a->y};
    const char *names[] = {"x", "w", "b", "y"};
    return check_disjoint(F, arrs, names, 4, 3);
}

int epsilon_arg(const char *F, PyObject *obj, float *eps)
{
    const double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    if (!(v >= 0.0) || v > 3.4e38) {
        PyErr_Format(PyExc_ValueError, "%s(): argument 'epsilon' must be a finite float >= 0, "
                     "got %R", F, obj);
        return -1;
    }
    *eps = (float)v;
    return 0;
}

int channel_vector(const char *F, const char *name, PyArrayObject *a, int c)
{
    return a ? expect_shape(F, name, a, 1, &c) : 0;
}
