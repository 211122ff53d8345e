/*
 * bind_conv_general.c - the binding's entry points for dilated and grouped convolution, the
 * transposed convolution and the depthwise convolution (see binding.h, pycnn.h).
 */
#include "binding.h"

/* strides, pads and dilation as pairs, checked */
static int parse_geometry(const char *F, PyObject *ost, PyObject *opd, PyObject *odl, int v[6])
{
    return parse_pair(ost, F, "strides", &v[0], &v[1]) ||
           parse_pair(opd, F, "pads", &v[2], &v[3]) ||
           parse_pair(odl, F, "dilation", &v[4], &v[5]) ||
           check_window(F, "strides", v[0], v[1], 1) || check_window(F, "pads", v[2], v[3], 0) ||
           check_window(F, "dilation", v[4], v[5], 1);
}

/* The convolution with input side (n, h, w, c), kernel w and output side (oh, ow, o): every
 * size in int range, groups dividing both channel counts. */
static int convg_geometry(const char *F, int n, int h, int wd, int c, PyArrayObject *w, int oh,
                          int ow, const int v[6], int groups, pc_convg_shape *s)
{
    if (groups < 1) {
        PyErr_Format(PyExc_ValueError, "%s(): groups must be >= 1, got %d", F, groups);
        return -1;
    }
    *s = (pc_convg_shape){.n = n, .h = h, .w = wd, .c = c, .kh = dim(w, 0), .kw = dim(w, 1),
                          .o = dim(w, 3), .oh = oh, .ow = ow, .sh = v[0], .sw = v[1],
                          .pt = v[2], .pl = v[3], .dh = v[4], .dw = v[5], .groups = groups};
    if (c % groups || s->o % groups) {
        PyErr_Format(PyExc_ValueError, "%s(): groups=%d must divide the %d input channels and "
                     "the %d filters", F, groups, c, s->o);
        return -1;
    }
    if ((long long)dim(w, 2) * groups != c) {
        PyErr_Format(PyExc_ValueError, "%s(): kernel 'w' has %d input channels per group but "
                     "the input side has %d channels in %d groups", F, dim(w, 2), c, groups);
        return -1;
    }
    const long long ekh = (long long)(s->kh - 1) * s->dh + 1, ekw = (long long)(s->kw - 1) * s->dw + 1;
    if ((long long)s->kh * s->kw * c > INT_MAX || (long long)n * oh * ow > INT_MAX ||
        ekh > INT_MAX || ekw > INT_MAX || !window_fits(oh, s->sh, (int)ekh, s->pt) ||
        !window_fits(ow, s->sw, (int)ekw, s->pl)) {
        PyErr_Format(PyExc_ValueError, "%s(): sizes, strides, pads or dilation too large: the "
                     "last window must start and end within int range", F);
        return -1;
    }
    return 0;
}

static PyObject *py_convg_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "strides", "pads", "dilation", "groups",
                             "activation", NULL};
    const char *F = "convg_forward", *acts = "linear";
    PyObject *ox, *ow, *ob, *oy, *ost, *opd, *odl;
    int v[6], groups;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOi|s", kwlist, &ox, &ow, &ob, &oy, &ost,
                                     &opd, &odl, &groups, &acts) ||
        parse_geometry(F, ost, opd, odl, v))
        return NULL;
    PyArrayObject *x, *w, *b, *y;
    pc_act act;
    pc_convg_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ob, F, "b", NPY_FLOAT32, 1, IN, 1, &b) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, OUT, 0, &y) || parse_act(F, acts, &act, 1) ||
        convg_geometry(F, dim(x, 0), dim(x, 1), dim(x, 2), dim(x, 3), w, dim(y, 1), dim(y, 2),
                       v, groups, &s) ||
        expect_shape(F, "y", y, 4, (int[]){s.n, -1, -1, s.o}) ||
        (b && expect_shape(F, "b", b, 1, &s.o)))
        return NULL;
    PyArrayObject *arrs[] = {x, w, b, y};
    const char *names[] = {"x", "w", "b", "y"};
    if (check_disjoint(F, arrs, names, 4, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_convg_forward(rt, &s, FLOAT(x), FLOAT(w), OPT_FLOAT(b), FLOAT(y), act));
    return kernel_result(rc, F);
}

static PyObject *py_convg_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", "strides", "pads", "dilation",
                             "groups", "y", NULL};
    const char *F = "convg_backward";
    PyObject *ox, *ow, *ody, *odx, *odw, *odb, *ost, *opd, *odl, *oy = Py_None;
    int v[6], groups;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOi|O", kwlist, &ox, &ow, &ody, &odx,
                                     &odw, &odb, &ost, &opd, &odl, &groups, &oy) ||
        parse_geometry(F, ost, opd, odl, v))
        return NULL;
    PyArrayObject *x, *w, *dy, *dx, *dw, *db, *y;
    pc_convg_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ody, F, "dy", NPY_FLOAT32, 4, IN, 0, &dy) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 4, OUT, 1, &dx) ||
        get_array(odw, F, "dw", NPY_FLOAT32, 4, OUT, 0, &dw) ||
        get_array(odb, F, "db", NPY_FLOAT32, 1, OUT, 1, &db) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, IN, 1, &y) ||
        convg_geometry(F, dim(x, 0), dim(x, 1), dim(x, 2), dim(x, 3), w, dim(dy, 1),
                       dim(dy, 2), v, groups, &s) ||
        expect_shape(F, "dy", dy, 4, (int[]){s.n, -1, -1, s.o}) ||
        (dx && expect_shape(F, "dx", dx, 4, (int[]){s.n, s.h, s.w, s.c})) ||
        expect_shape(F, "dw", dw, 4, (int[]){s.kh, s.kw, s.c / s.groups, s.o}) ||
        (db && expect_shape(F, "db", db, 1, &s.o)) || (y && same_shape(F, dy, "dy", y, "y")))
        return NULL;
    PyArrayObject *arrs[] = {x, w, dy, y, dx, dw, db};
    const char *names[] = {"x", "w", "dy", "y", "dx", "dw", "db"};
    if (check_disjoint(F, arrs, names, 7, 4))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_convg_backward(rt, &s, FLOAT(x), FLOAT(w), OPT_FLOAT(y), FLOAT(dy),
                                     OPT_FLOAT(dx), FLOAT(dw), OPT_FLOAT(db)));
    return kernel_result(rc, F);
}

/* The transposed convolution's x (s's output side) and y (its input side). */
static int transpose_shape(const char *F, PyArrayObject *x, PyArrayObject *w, PyArrayObject *y,
                           const char *yname, const int v[6], int groups, pc_convg_shape *s)
{
    if (convg_geometry(F, dim(y, 0), dim(y, 1), dim(y, 2), dim(y, 3), w, dim(x, 1), dim(x, 2),
                       v, groups, s))
        return -1;
    return expect_shape(F, "x", x, 4, (int[]){s->n, -1, -1, s->o}) ||
           expect_shape(F, yname, y, 4, (int[]){s->n, -1, -1, dim(w, 2) * groups});
}

static PyObject *py_conv_transpose_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "strides", "pads", "dilation", "groups",
                             "activation", NULL};
    const char *F = "conv_transpose_forward", *acts = "linear";
    PyObject *ox, *ow, *ob, *oy, *ost, *opd, *odl;
    int v[6], groups = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOO|is", kwlist, &ox, &ow, &ob, &oy, &ost,
                                     &opd, &odl, &groups, &acts) ||
        parse_geometry(F, ost, opd, odl, v))
        return NULL;
    PyArrayObject *x, *w, *b, *y;
    pc_act act;
    pc_convg_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ob, F, "b", NPY_FLOAT32, 1, IN, 1, &b) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, OUT, 0, &y) || parse_act(F, acts, &act, 1) ||
        transpose_shape(F, x, w, y, "y", v, groups, &s) ||
        (b && expect_shape(F, "b", b, 1, &s.c)))
        return NULL;
    PyArrayObject *arrs[] = {x, w, b, y};
    const char *names[] = {"x", "w", "b", "y"};
    if (check_disjoint(F, arrs, names, 4, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_conv_transpose_forward(rt, &s, FLOAT(x), FLOAT(w), OPT_FLOAT(b), FLOAT(y),
                                             act));
    return kernel_result(rc, F);
}

static PyObject *py_conv_transpose_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", "strides", "pads", "dilation",
                             "groups", "y", NULL};
    const char *F = "conv_transpose_backward";
    PyObject *ox, *ow, *ody, *odx, *odw, *odb, *ost, *opd, *odl, *oy = Py_None;
    int v[6], groups = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOO|iO", kwlist, &ox, &ow, &ody, &odx,
                                     &odw, &odb, &ost, &opd, &odl, &groups, &oy) ||
        parse_geometry(F, ost, opd, odl, v))
        return NULL;
    PyArrayObject *x, *w, *dy, *dx, *dw, *db, *y;
    pc_convg_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ody, F, "dy", NPY_FLOAT32, 4, IN, 0, &dy) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 4, OUT, 1, &dx) ||
        get_array(odw, F, "dw", NPY_FLOAT32, 4, OUT, 0, &dw) ||
        get_array(odb, F, "db", NPY_FLOAT32, 1, OUT, 1, &db) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, IN, 1, &y) ||
        transpose_shape(F, x, w, dy, "dy", v, groups, &s) ||
        (dx && same_shape(F, x, "x", dx, "dx")) ||
        expect_shape(F, "dw", dw, 4, (int[]){s.kh, s.kw, s.c / s.groups, s.o}) ||
        (db && expect_shape(F, "db", db, 1, &s.c)) || (y && same_shape(F, dy, "dy", y, "y")))
        return NULL;
    PyArrayObject *arrs[] = {x, w, dy, y, dx, dw, db};
    const char *names[] = {"x", "w", "dy", "y", "dx", "dw", "db"};
    if (check_disjoint(F, arrs, names, 7, 4))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_conv_transpose_backward(rt, &s, FLOAT(x), FLOAT(w), OPT_FLOAT(y),
                                              FLOAT(dy), OPT_FLOAT(dx), FLOAT(dw),
                                              OPT_FLOAT(db)));
    return kernel_result(rc, F);
}

/* The depthwise convolution of x by w[kh][kw][c][dm] into the array y (or its gradient). */
static int dw_shape(const char *F, PyArrayObject *x, PyArrayObject *w, PyArrayObject *y,
                    const char *yname, const int v[6], pc_dw_shape *s)
{
    *s = (pc_dw_shape){.n = dim(x, 0), .h = dim(x, 1), .w = dim(x, 2), .c = dim(x, 3),
                       .kh = dim(w, 0), .kw = dim(w, 1), .dm = dim(w, 3), .oh = dim(y, 1),
                       .ow = dim(y, 2), .sh = v[0], .sw = v[1], .pt = v[2], .pl = v[3],
                       .dh = v[4], .dw = v[5]};
    if (dim(w, 2) != s->c) {
        PyErr_Format(PyExc_ValueError, "%s(): kernel 'w' has %d input channels but 'x' has %d",
                     F, dim(w, 2), s->c);
        return -1;
    }
    const long long ekh = (long long)(s->kh - 1) * s->dh + 1, ekw = (long long)(s->kw - 1) * s->dw + 1;
    if ((long long)s->c * s->dm > INT_MAX || ekh > INT_MAX || ekw > INT_MAX ||
        !window_fits(s->oh, s->sh, (int)ekh, s->pt) || !window_fits(s->ow, s->sw, (int)ekw, s->pl)) {
        PyErr_Format(PyExc_ValueError, "%s(): sizes, strides, pads or dilation too large: the "
                     "last window must start and end within int range", F);
        return -1;
    }
    return expect_shape(F, yname, y, 4, (int[]){s->n, -1, -1, s->c * s->dm});
}

static PyObject *py_depthwise_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "strides", "pads", "dilation", "activation",
                             NULL};
    const char *F = "depthwise_forward", *acts = "linear";
    PyObject *ox, *ow, *ob, *oy, *ost, *opd, *odl;
    int v[6];
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOO|s", kwlist, &ox, &ow, &ob, &oy, &ost,
                                     &opd, &odl, &acts) ||
        parse_geometry(F, ost, opd, odl, v))
        return NULL;
    PyArrayObject *x, *w, *b, *y;
    pc_act act;
    pc_dw_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ob, F, "b", NPY_FLOAT32, 1, IN, 1, &b) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, OUT, 0, &y) || parse_act(F, acts, &act, 1) ||
        dw_shape(F, x, w, y, "y", v, &s) ||
        (b && expect_shape(F, "b", b, 1, (int[]){s.c * s.dm})))
        return NULL;
    PyArrayObject *arrs[] = {x, w, b, y};
    const char *names[] = {"x", "w", "b", "y"};
    if (check_disjoint(F, arrs, names, 4, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_depthwise_forward(rt, &s, FLOAT(x), FLOAT(w), OPT_FLOAT(b), FLOAT(y), act));
    return kernel_result(rc, F);
}

static PyObject *py_depthwise_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", "strides", "pads", "dilation",
                             "y", NULL};
    const char *F = "depthwise_backward";
    PyObject *ox, *ow, *ody, *odx, *odw, *odb, *ost, *opd, *odl, *oy = Py_None;
    int v[6];
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOO|O", kwlist, &ox, &ow, &ody, &odx,
                                     &odw, &odb, &ost, &opd, &odl, &oy) ||
        parse_geometry(F, ost, opd, odl, v))
        return NULL;
    PyArrayObject *x, *w, *dy, *dx, *dw, *db, *y;
    pc_dw_shape s;
    if (get_array(ox, F, "x", NPY_FLOAT32, 4, IN, 0, &x) ||
        get_array(ow, F, "w", NPY_FLOAT32, 4, IN, 0, &w) ||
        get_array(ody, F, "dy", NPY_FLOAT32, 4, IN, 0, &dy) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 4, OUT, 1, &dx) ||
        get_array(odw, F, "dw", NPY_FLOAT32, 4, OUT, 0, &dw) ||
        get_array(odb, F, "db", NPY_FLOAT32, 1, OUT, 1, &db) ||
        get_array(oy, F, "y", NPY_FLOAT32, 4, IN, 1, &y) ||
        dw_shape(F, x, w, dy, "dy", v, &s) ||
        (dx && same_shape(F, x, "x", dx, "dx")) || same_shape(F, w, "w", dw, "dw") ||
        (db && expect_shape(F, "db", db, 1, (int[]){s.c * s.dm})) ||
        (y && same_shape(F, dy, "dy", y, "y")))
        return NULL;
    PyArrayObject *arrs[] = {x, w, dy, y, dx, dw, db};
    const char *names[] = {"x", "w", "dy", "y", "dx", "dw", "db"};
    if (check_disjoint(F, arrs, names, 7, 4))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_depthwise_backward(rt, &s, FLOAT(x), FLOAT(w), OPT_FLOAT(y), FLOAT(dy),
                                         OPT_FLOAT(dx), FLOAT(dw), OPT_FLOAT(db)));
    return kernel_result(rc, F);
}

PyMethodDef pc_methods_conv_general[] = {
    KW(convg_forward, "convg_forward(x, w, b, y, strides, pads, dilation, groups, "
       "activation='linear'): conv2d with dilation and groups, w[kh][kw][c/groups][o]."),
    KW(convg_backward, "convg_backward(x, w, dy, dx, dw, db, strides, pads, dilation, groups, "
       "y=None): with y (the output of a fused relu), dy is masked by y > 0 first."),
    KW(conv_transpose_forward, "conv_transpose_forward(x, w, b, y, strides, pads, dilation, "
       "groups=1, activation='linear'): the transpose of the convolution of y's shape by "
       "w[kh][kw][filters/groups][in] with these strides, pads and dilation, applied to "
       "x[n][h][w][in]; y[n][H][W][filters] = act(b + ...)."),
    KW(conv_transpose_backward, "conv_transpose_backward(x, w, dy, dx, dw, db, strides, pads, "
       "dilation, groups=1, y=None)."),
    KW(depthwise_forward, "depthwise_forward(x, w, b, y, strides, pads, dilation, "
       "activation='linear'): w[kh][kw][c][depth_multiplier], y channels c*dm + m."),
    KW(depthwise_backward, "depthwise_backward(x, w, dy, dx, dw, db, strides, pads, dilation, "
       "y=None)."),
    {NULL, NULL, 0, NULL}};
