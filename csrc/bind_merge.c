/*
 * bind_merge.c - the binding's entry points for the merge layers and concatenation
 * (see binding.h; kernels in merge.c).
 */
#include "binding.h"

/* At most this many inputs to one merge (a sanity bound on the pointer lists). */
#define MAX_INPUTS 65536

typedef struct {
    int k;
    PyArrayObject **arr;     /* k arrays (entries NULL where optional and None) */
    const float **ptr;       /* their data */
    PyObject *seq;           /* the fast sequence holding the references */
} array_list;

static void free_list(array_list *l)
{
    PyMem_Free(l->arr);
    PyMem_Free((void *)l->ptr);
    Py_XDECREF(l->seq);
    l->arr = NULL;
    l->ptr = NULL;
    l->seq = NULL;
}

/* A list or tuple of float32 arrays of rank `ndim` (-1: any), named "<name>[i]" in errors;
 * None entries are allowed when `optional`. */
static int get_list(PyObject *obj, const char *F, const char *name, int mode, int optional,
                    int ndim, array_list *l)
{
    *l = (array_list){0};
    if (!PyList_Check(obj) && !PyTuple_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be a list of arrays, got %s",
                     F, name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    l->seq = PySequence_Fast(obj, "");
    if (!l->seq)
        return -1;
    Py_ssize_t k = PySequence_Fast_GET_SIZE(l->seq);
    if (k < 1 || k > MAX_INPUTS) {
        PyErr_Format(PyExc_ValueError, "%s(): argument '%s' must hold 1 to %d arrays, got %zd",
                     F, name, MAX_INPUTS, k);
        free_list(l);
        return -1;
    }
    l->k = (int)k;
    l->arr = PyMem_Calloc((size_t)k, sizeof *l->arr);
    l->ptr = PyMem_Calloc((size_t)k, sizeof *l->ptr);
    if (!l->arr || !l->ptr) {
        free_list(l);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        char label[64];
        snprintf(label, sizeof label, "%s[%zd]", name, i);
        if (get_array(PySequence_Fast_GET_ITEM(l->seq, i), F, label, NPY_FLOAT32, ndim, mode,
                      optional, &l->arr[i])) {
            free_list(l);
            return -1;
        }
        l->ptr[i] = OPT_FLOAT(l->arr[i]);
    }
    return 0;
}

/* Outputs (dxs, or y) must not share memory with the inputs or with each other. */
static int list_disjoint(const char *F, array_list *outs, const char *oname, array_list *ins,
                         PyArrayObject *other, const char *other_name)
{
    for (int i = 0; i < outs->k; i++) {
        PyArrayObject *a = outs->arr[i];
        if (!a)
            continue;
        int bad = overlaps(a, other);
        const char *with = other_name;
        for (int m = 0; !bad && ins && m < ins->k; m++)
            if (overlaps(a, ins->arr[m])) {
                bad = 1;
                with = "an input";
            }
        for (int m = i + 1; !bad && m < outs->k; m++)
            if (overlaps(a, outs->arr[m])) {
                bad = 1;
                with = "another output";
            }
        if (bad) {
            PyErr_Format(PyExc_ValueError, "%s(): output '%s[%d]' must not share memory with "
                         "%s", F, oname, i, with);
            return -1;
        }
    }
    return 0;
}

static int parse_op(const char *F, PyObject *obj, pc_merge_op *op)
{
    static const struct { const char *name; pc_merge_op op; } ops[] = {
        {"add", PC_MERGE_ADD}, {"subtract", PC_MERGE_SUBTRACT},
        {"multiply", PC_MERGE_MULTIPLY}, {"average", PC_MERGE_AVERAGE},
        {"maximum", PC_MERGE_MAXIMUM}, {"minimum", PC_MERGE_MINIMUM}};
    const char *s = kind_string(F, obj);
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(s, ops[i].name) == 0) {
            *op = ops[i].op;
            return 0;
        }
    PyErr_Format(PyExc_ValueError, "%s(): unknown merge '%s' (argument 'kind'); expected "
                 "'add', 'subtract', 'multiply', 'average', 'maximum' or 'minimum'", F, s);
    return -1;
}

/* The merge's shape from y and the inputs: same rank, axis 0 equal, other axes y's or 1.
 * in_dims gets k * rank ints (PyMem; the caller frees). */
static int merge_shape(const char *F, pc_merge_op op, PyArrayObject *y, const char *yname,
                       array_list *xs, pc_merge_shape *s, int **in_dims)
{
    const int r = PyArray_NDIM(y);
    if (r < 1 || r > PC_MERGE_MAX_RANK) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s' must have rank 1 to %d, got %d", F, yname,
                     PC_MERGE_MAX_RANK, r);
        return -1;
    }
    if (op == PC_MERGE_SUBTRACT && xs->k != 2) {
        PyErr_Format(PyExc_ValueError, "%s(): 'subtract' takes exactly 2 inputs, got %d", F,
                     xs->k);
        return -1;
    }
    *s = (pc_merge_shape){.k = xs->k, .rank = r};
    for (int a = 0; a < r; a++)
        s->dims[a] = dim(y, a);
    int *d = PyMem_Malloc((size_t)xs->k * r * sizeof(int));
    if (!d) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < xs->k; i++) {
        PyArrayObject *x = xs->arr[i];
        int ok = PyArray_NDIM(x) == r;
        for (int a = 0; ok && a < r; a++) {
            d[(size_t)i * r + a] = dim(x, a);
            ok = dim(x, a) == s->dims[a] || (a > 0 && dim(x, a) == 1);
        }
        if (!ok) {
            PyObject *xsh = PyObject_GetAttrString((PyObject *)x, "shape");
            PyObject *ysh = PyObject_GetAttrString((PyObject *)y, "shape");
            PyErr_Format(PyExc_ValueError, "%s(): input %d of shape %R does not broadcast to "
                         "'%s' of shape %R (same rank; each axis equal or 1, the first equal)",
                         F, i, xsh ? xsh : Py_None, yname, ysh ? ysh : Py_None);
            Py_XDECREF(xsh);
            Py_XDECREF(ysh);
            PyMem_Free(d);
            return -1;
        }
    }
    s->in_dims = d;
    *in_dims = d;
    return 0;
}

static PyObject *py_merge_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"kind", "xs", "y", NULL};
    const char *F = "merge_forward";
    PyObject *okind, *oxs;
    PyArrayObject *y;
    pc_merge_op op;
    array_list xs;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO&", kwlist, &okind, &oxs,
                                     OUT_F32("y", -1, &y)) ||
        parse_op(F, okind, &op) || get_list(oxs, F, "xs", IN, 0, -1, &xs))
        return NULL;
    pc_merge_shape s;
    int *in_dims = NULL;
    PyObject *result = NULL;
    array_list ys = {.k = 1, .arr = &y};
    if (merge_shape(F, op, y, "y", &xs, &s, &in_dims) ||
        list_disjoint(F, &ys, "y", &xs, NULL, ""))
        goto done;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_merge_forward(rt, op, &s, xs.ptr, FLOAT(y)));
    result = kernel_result(rc, F);
done:
    PyMem_Free(in_dims);
    free_list(&xs);
    return result;
}

static PyObject *py_merge_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"kind", "xs", "dy", "dxs", NULL};
    const char *F = "merge_backward";
    PyObject *okind, *oxs, *odxs;
    PyArrayObject *dy;
    pc_merge_op op;
    array_list xs, dxs;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO&O", kwlist, &okind, &oxs,
                                     IN_F32("dy", -1, &dy), &odxs) ||
        parse_op(F, okind, &op) || get_list(oxs, F, "xs", IN, 0, -1, &xs))
        return NULL;
    if (get_list(odxs, F, "dxs", OUT, 1, -1, &dxs)) {
        free_list(&xs);
        return NULL;
    }
    pc_merge_shape s;
    int *in_dims = NULL;
    PyObject *result = NULL;
    if (merge_shape(F, op, dy, "dy", &xs, &s, &in_dims))
        goto done;
    if (dxs.k != xs.k) {
        PyErr_Format(PyExc_ValueError, "%s(): 'dxs' must hold one entry per input (%d), got %d",
                     F, xs.k, dxs.k);
        goto done;
    }
    for (int i = 0; i < xs.k; i++) {
        if (dxs.arr[i] && same_shape(F, dxs.arr[i], "dxs[i]", xs.arr[i], "xs[i]"))
            goto done;
    }
    if (list_disjoint(F, &dxs, "dxs", &xs, dy, "dy"))
        goto done;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_merge_backward(rt, op, &s, xs.ptr, FLOAT(dy), (float *const *)dxs.ptr));
    result = kernel_result(rc, F);
done:
    PyMem_Free(in_dims);
    free_list(&xs);
    free_list(&dxs);
    return result;
}

/* Concatenation along `axis` (1 .. rank-1) of arrays shaped like `whole` elsewhere; lengths
 * along the axis in len[] (given, or from the arrays). Fills outer and inner[] (PyMem). */
static int concat_shape(const char *F, PyArrayObject *whole, const char *wname, int axis,
                        array_list *parts, const long *len, size_t *outer, size_t **inner)
{
    const int r = PyArray_NDIM(whole);
    if (axis < 1 || axis >= r) {
        PyErr_Format(PyExc_ValueError, "%s(): 'axis' must be in [1, %d) for '%s' of rank %d, "
                     "got %d", F, r, wname, r, axis);
        return -1;
    }
    size_t *in = PyMem_Malloc((size_t)parts->k * sizeof(size_t));
    if (!in) {
        PyErr_NoMemory();
        return -1;
    }
    size_t o = 1, after = 1;
    for (int a = 0; a < axis; a++)
        o *= (size_t)dim(whole, a);
    for (int a = axis + 1; a < r; a++)
        after *= (size_t)dim(whole, a);
    long total = 0;
    for (int i = 0; i < parts->k; i++) {
        PyArrayObject *x = parts->arr[i];
        long li = len ? len[i] : (x && PyArray_NDIM(x) == r ? dim(x, axis) : -1);
        int ok = li >= 1;
        if (ok && x) {
            ok = PyArray_NDIM(x) == r && dim(x, axis) == li;
            for (int a = 0; ok && a < r; a++)
                ok = a == axis || dim(x, a) == dim(whole, a);
        }
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "%s(): part %d does not match '%s' outside axis %d "
                         "(or its length along the axis is not the one given)", F, i, wname,
                         axis);
            PyMem_Free(in);
            return -1;
        }
        in[i] = (size_t)li * after;
        total += li;
    }
    if (total != dim(whole, axis)) {
        PyErr_Format(PyExc_ValueError, "%s(): the parts' lengths along axis %d sum to %ld, "
                     "'%s' has %d", F, axis, total, wname, dim(whole, axis));
        PyMem_Free(in);
        return -1;
    }
    *outer = o;
    *inner = in;
    return 0;
}

static PyObject *py_concat_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"xs", "y", "axis", NULL};
    const char *F = "concat_forward";
    PyObject *oxs;
    PyArrayObject *y;
    int axis;
    array_list xs;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO&i", kwlist, &oxs, OUT_F32("y", -1, &y),
                                     &axis))
        return parse_error(F);
    if (get_list(oxs, F, "xs", IN, 0, -1, &xs))
        return NULL;
    size_t outer, *inner = NULL;
    PyObject *result = NULL;
    array_list ys = {.k = 1, .arr = &y};
    if (concat_shape(F, y, "y", axis, &xs, NULL, &outer, &inner) ||
        list_disjoint(F, &ys, "y", &xs, NULL, ""))
        goto done;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_concat_forward(rt, xs.k, outer, inner, xs.ptr, FLOAT(y)));
    result = kernel_result(rc, F);
done:
    PyMem_Free(inner);
    free_list(&xs);
    return result;
}

static PyObject *py_concat_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dy", "dxs", "axis", "sizes", NULL};
    const char *F = "concat_backward";
    PyObject *odxs, *osizes;
    PyArrayObject *dy;
    int axis;
    array_list dxs;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&OiO", kwlist, IN_F32("dy", -1, &dy), &odxs,
                                     &axis, &osizes))
        return parse_error(F);
    if (get_list(odxs, F, "dxs", OUT, 1, -1, &dxs))
        return NULL;
    size_t outer, *inner = NULL;
    long *len = NULL;
    PyObject *result = NULL, *sizes = PySequence_Check(osizes) ? PySequence_Fast(osizes, "")
                                                               : NULL;
    if (!sizes || PySequence_Fast_GET_SIZE(sizes) != dxs.k) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s(): 'sizes' must be a sequence of %d ints (each "
                     "part's length along the axis)", F, dxs.k);
        goto done;
    }
    len = PyMem_Malloc((size_t)dxs.k * sizeof(long));
    if (!len) {
        PyErr_NoMemory();
        goto done;
    }
    for (int i = 0; i < dxs.k; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(sizes, i);
        len[i] = PyLong_Check(it) ? PyLong_AsLong(it) : -1;
        if (PyErr_Occurred() || len[i] < 1 || len[i] > INT_MAX) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s(): 'sizes' must hold positive ints, got %R", F,
                         it);
            goto done;
        }
    }
    if (concat_shape(F, dy, "dy", axis, &dxs, len, &outer, &inner) ||
        list_disjoint(F, &dxs, "dxs", NULL, dy, "dy"))
        goto done;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_concat_backward(rt, dxs.k, outer, inner, FLOAT(dy),
                                      (float *const *)dxs.ptr));
    result = kernel_result(rc, F);
done:
    Py_XDECREF(sizes);
    PyMem_Free(len);
    PyMem_Free(inner);
    free_list(&dxs);
    return result;
}

PyMethodDef pc_methods_merge[] = {
    KW(merge_forward, "merge_forward(kind, xs, y): y = xs[0] op xs[1] op ... for kind 'add', "
       "'subtract', 'multiply', 'average', 'maximum' or 'minimum'; inputs of y's rank, each "
       "axis y's or 1 (broadcast), the first equal."),
    KW(merge_backward, "merge_backward(kind, xs, dy, dxs): the inputs' gradients into dxs "
       "(None entries: not wanted), summed over broadcast copies."),
    KW(concat_forward, "concat_forward(xs, y, axis): y = the xs concatenated along axis >= 1."),
    KW(concat_backward, "concat_backward(dy, dxs, axis, sizes): each part of dy along axis "
       "(lengths `sizes`) into dxs (None entries: skipped)."),
    {NULL, NULL, 0, NULL}};
