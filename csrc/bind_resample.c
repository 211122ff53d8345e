/*
 * bind_resample.c - the binding's entry points for upsampling, zero padding / cropping and
 * axis permutation (see binding.h; kernels in resample.c).
 */
#include "binding.h"

static int parse_interpolation(const char *F, PyObject *obj, int *bilinear)
{
    const char *s = PyUnicode_Check(obj) ? PyUnicode_AsUTF8(obj) : NULL;
    if (s && strcmp(s, "nearest") == 0)
        *bilinear = 0;
    else if (s && strcmp(s, "bilinear") == 0)
        *bilinear = 1;
    else {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s(): argument 'interpolation' must be 'nearest' or "
                     "'bilinear', got %R", F, obj);
        return -1;
    }
    return 0;
}

/* small (n, h, w, c) and large (n, h*sh, w*sw, c) arrays of an upsampling by (sh, sw) */
static int upsample_args(const char *F, PyObject *args, PyObject *kw, char **kwlist,
                         const char *small_name, const char *large_name, int small_is_in,
                         PyArrayObject **small, PyArrayObject **large, int *sh, int *sw,
                         int *bilinear)
{
    PyObject *osize, *ointerp;
    pc_arg in = {F, small_is_in ? small_name : large_name, NPY_FLOAT32, 4, IN, 0,
                 small_is_in ? small : large};
    pc_arg out = {F, small_is_in ? large_name : small_name, NPY_FLOAT32, 4, OUT, 0,
                  small_is_in ? large : small};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&OO", kwlist, pc_arg_array, &in,
                                     pc_arg_array, &out, &osize, &ointerp) ||
        parse_pair(osize, F, "size", sh, sw) || check_window(F, "size", *sh, *sw, 1) ||
        parse_interpolation(F, ointerp, bilinear))
        return -1;
    const long long H = (long long)dim(*small, 1) * *sh, W = (long long)dim(*small, 2) * *sw;
    if (H > INT_MAX || W > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s(): the upsampled size is too large", F);
        return -1;
    }
    if (expect_shape(F, large_name, *large, 4,
                     (int[]){dim(*small, 0), (int)H, (int)W, dim(*small, 3)}))
        return -1;
    PyArrayObject *arrs[] = {small_is_in ? *small : *large, small_is_in ? *large : *small};
    const char *names[] = {small_is_in ? small_name : large_name,
                           small_is_in ? large_name : small_name};
    return check_disjoint(F, arrs, names, 2, 1);
}

static PyObject *py_upsample2d_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "y", "size", "interpolation", NULL};
    const char *F = "upsample2d_forward";
    PyArrayObject *x, *y;
    int sh, sw, bilinear;
    if (upsample_args(F, args, kw, kwlist, "x", "y", 1, &x, &y, &sh, &sw, &bilinear))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    const int n = dim(x, 0), h = dim(x, 1), w = dim(x, 2), c = dim(x, 3);
    if (bilinear)
        RUN_KERNEL(rt, pc_upsample_bilinear2d_forward(rt, n, h, w, c, sh, sw, FLOAT(x), FLOAT(y)));
    else
        RUN_KERNEL(rt, pc_upsample_nearest2d_forward(rt, n, h, w, c, sh, sw, FLOAT(x), FLOAT(y)));
    return kernel_result(rc, F);
}

static PyObject *py_upsample2d_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dy", "dx", "size", "interpolation", NULL};
    const char *F = "upsample2d_backward";
    PyArrayObject *dx, *dy;
    int sh, sw, bilinear;
    if (upsample_args(F, args, kw, kwlist, "dx", "dy", 0, &dx, &dy, &sh, &sw, &bilinear))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    const int n = dim(dx, 0), h = dim(dx, 1), w = dim(dx, 2), c = dim(dx, 3);
    if (bilinear)
        RUN_KERNEL(rt, pc_upsample_bilinear2d_backward(rt, n, h, w, c, sh, sw, FLOAT(dy),
                                                       FLOAT(dx)));
    else
        RUN_KERNEL(rt, pc_upsample_nearest2d_backward(rt, n, h, w, c, sh, sw, FLOAT(dy),
                                                      FLOAT(dx)));
    return kernel_result(rc, F);
}

static PyObject *py_shift2d(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "y", "offset", NULL};
    const char *F = "shift2d";
    PyObject *ooff;
    PyArrayObject *x, *y;
    int dt, dl;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O", kwlist, IN_F32("x", 4, &x),
                                     OUT_F32("y", 4, &y), &ooff) ||
        parse_pair(ooff, F, "offset", &dt, &dl) ||
        expect_shape(F, "y", y, 4, (int[]){dim(x, 0), -1, -1, dim(x, 3)}))
        return NULL;
    PyArrayObject *arrs[] = {x, y};
    const char *names[] = {"x", "y"};
    if (check_disjoint(F, arrs, names, 2, 1))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_shift2d(rt, dim(x, 0), dim(x, 1), dim(x, 2), dim(x, 3), dim(y, 1),
                              dim(y, 2), dt, dl, FLOAT(x), FLOAT(y)));
    return kernel_result(rc, F);
}

static PyObject *py_permute(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "y", "perm", NULL};
    const char *F = "permute";
    PyObject *operm;
    PyArrayObject *x, *y;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O", kwlist, IN_F32("x", -1, &x),
                                     OUT_F32("y", -1, &y), &operm))
        return NULL;
    const int r = PyArray_NDIM(x);
    if (r < 2 || r > PC_PERMUTE_MAX_RANK || PyArray_NDIM(y) != r)
        return PyErr_Format(PyExc_ValueError, "%s(): 'x' and 'y' must have the same rank, 2 to "
                            "%d", F, PC_PERMUTE_MAX_RANK);
    PyObject *seq = PySequence_Check(operm) ? PySequence_Fast(operm, "") : NULL;
    int perm[PC_PERMUTE_MAX_RANK], xd[PC_PERMUTE_MAX_RANK], seen = 0;
    int ok = seq && PySequence_Fast_GET_SIZE(seq) == r;
    for (int a = 0; ok && a < r; a++) {
        PyObject *it = PySequence_Fast_GET_ITEM(seq, a);
        long v = PyLong_Check(it) ? PyLong_AsLong(it) : -1;
        ok = v >= 0 && v < r && !((seen >> v) & 1) && (a != 0 || v == 0);
        if (ok) {
            seen |= 1 << v;
            perm[a] = (int)v;
        }
    }
    Py_XDECREF(seq);
    if (!ok) {
        PyErr_Clear();
        return PyErr_Format(PyExc_ValueError, "%s(): 'perm' must be a permutation of 0..%d "
                            "starting with 0, got %R", F, r - 1, operm);
    }
    for (int a = 0; a < r; a++) {
        xd[a] = dim(x, a);
        if (dim(y, a) != dim(x, perm[a]))
            return PyErr_Format(PyExc_ValueError, "%s(): 'y' axis %d must be %d (x's axis %d)",
                                F, a, dim(x, perm[a]), perm[a]);
    }
    PyArrayObject *arrs[] = {x, y};
    const char *names[] = {"x", "y"};
    if (check_disjoint(F, arrs, names, 2, 1))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_permute(rt, r, xd, perm, FLOAT(x), FLOAT(y)));
    return kernel_result(rc, F);
}

PyMethodDef pc_methods_resample[] = {
    KW(upsample2d_forward, "upsample2d_forward(x, y, size, interpolation): y (n, h*sh, w*sw, c) "
       "from x (n, h, w, c); interpolation 'nearest' or 'bilinear' (half-pixel centres)."),
    KW(upsample2d_backward, "upsample2d_backward(dy, dx, size, interpolation): its gradient."),
    KW(shift2d, "shift2d(x, y, offset): y[n, i, j] = x[n, i - dt, j - dl] inside x, else 0 "
       "(zero padding with offset >= 0, cropping with offset <= 0)."),
    KW(permute, "permute(x, y, perm): y = x.transpose(perm), perm[0] == 0."),
    {NULL, NULL, 0, NULL}};
