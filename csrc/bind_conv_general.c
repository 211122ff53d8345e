/*
 * bind_conv_general.c - the binding's entry points for dilated and grouped convolution, the
 * transposed convolution and the depthwise convolution (see binding.h, pycnn.h).
 */
#include "binding.h"

/* strides, pads and dilation as converters into g[0..5], the layout conv_geometry takes */
#define GEOMETRY(g) PAIR("strides", g), PAIR("pads", (g) + 2), PAIR("dilation", (g) + 4)

static PyObject *py_convg_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "strides", "pads", "dilation", "groups",
                             "activation", NULL};
    const char *F = "convg_forward", *acts = "linear";
    conv_fwd a = {0};
    int g[6], groups;
    pc_act act;
    pc_convg_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_FWD_FMT "O&O&O&i|s", kwlist, CONV_FWD(a),
                                     GEOMETRY(g), &groups, &acts) ||
        parse_act(F, acts, &act, 1) ||
        conv_geometry(F, a.x, "x", a.w, dim(a.y, 1), dim(a.y, 2), g, groups, &s) ||
        expect_shape(F, "y", a.y, 4, (int[]){s.n, -1, -1, s.o}) || check_conv_fwd(F, &a, s.o))
        return NULL;
    RETURN_KERNEL(m, F, pc_convg_forward(rt, &s, FLOAT(a.x), FLOAT(a.w), OPT_FLOAT(a.b),
                                         FLOAT(a.y), act));
}

static PyObject *py_convg_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", "strides", "pads", "dilation",
                             "groups", "y", NULL};
    const char *F = "convg_backward";
    conv_grads a = {0};
    int g[6], groups;
    pc_convg_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_GRADS_FMT "O&O&O&i|O&", kwlist,
                                     CONV_GRADS(a), GEOMETRY(g), &groups,
                                     OPT_IN_F32("y", 4, &a.y)) ||
        conv_geometry(F, a.x, "x", a.w, dim(a.dy, 1), dim(a.dy, 2), g, groups, &s) ||
        expect_shape(F, "dy", a.dy, 4, (int[]){s.n, -1, -1, s.o}) ||
        check_conv_grads(F, &a, s.o))
        return NULL;
    RETURN_KERNEL(m, F, pc_convg_backward(rt, &s, FLOAT(a.x), FLOAT(a.w), OPT_FLOAT(a.y),
                                          FLOAT(a.dy), OPT_FLOAT(a.dx), FLOAT(a.dw),
                                          OPT_FLOAT(a.db)));
}

/* The transposed convolution of x into y is the adjoint of the convolution s of y's shape
 * (named yname) into x's: s's input side is y, its output side x, whose channels are w's
 * filters. */
static int transpose_shape(const char *F, PyArrayObject *x, PyArrayObject *w, PyArrayObject *y,
                           const char *yname, const int g[6], int groups, pc_convg_shape *s)
{
    return conv_geometry(F, y, yname, w, dim(x, 1), dim(x, 2), g, groups, s) ||
           expect_shape(F, "x", x, 4, (int[]){s->n, -1, -1, s->o});
}

static PyObject *py_conv_transpose_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "strides", "pads", "dilation", "groups",
                             "activation", NULL};
    const char *F = "conv_transpose_forward", *acts = "linear";
    conv_fwd a = {0};
    int g[6], groups = 1;
    pc_act act;
    pc_convg_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_FWD_FMT "O&O&O&|is", kwlist, CONV_FWD(a),
                                     GEOMETRY(g), &groups, &acts) ||
        parse_act(F, acts, &act, 1) || transpose_shape(F, a.x, a.w, a.y, "y", g, groups, &s) ||
        check_conv_fwd(F, &a, s.c))
        return NULL;
    RETURN_KERNEL(m, F, pc_conv_transpose_forward(rt, &s, FLOAT(a.x), FLOAT(a.w),
                                                  OPT_FLOAT(a.b), FLOAT(a.y), act));
}

static PyObject *py_conv_transpose_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", "strides", "pads", "dilation",
                             "groups", "y", NULL};
    const char *F = "conv_transpose_backward";
    conv_grads a = {0};
    int g[6], groups = 1;
    pc_convg_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_GRADS_FMT "O&O&O&|iO&", kwlist,
                                     CONV_GRADS(a), GEOMETRY(g), &groups,
                                     OPT_IN_F32("y", 4, &a.y)) ||
        transpose_shape(F, a.x, a.w, a.dy, "dy", g, groups, &s) || check_conv_grads(F, &a, s.c))
        return NULL;
    RETURN_KERNEL(m, F, pc_conv_transpose_backward(rt, &s, FLOAT(a.x), FLOAT(a.w),
                                                   OPT_FLOAT(a.y), FLOAT(a.dy),
                                                   OPT_FLOAT(a.dx), FLOAT(a.dw),
                                                   OPT_FLOAT(a.db)));
}

/* The depthwise convolution of x by w[kh][kw][c][dm] into the array y (or its gradient): the
 * windows of the convolution by a kh x kw x c x dm kernel, c * dm output channels. */
static int dw_shape(const char *F, PyArrayObject *x, PyArrayObject *w, PyArrayObject *y,
                    const char *yname, const int g[6], pc_dw_shape *s)
{
    pc_convg_shape c;
    if (conv_geometry(F, x, "x", w, dim(y, 1), dim(y, 2), g, 1, &c))
        return -1;
    if ((long long)c.c * c.o > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s(): %d channels times depth multiplier %d is beyond "
                     "int range", F, c.c, c.o);
        return -1;
    }
    *s = (pc_dw_shape){.n = c.n, .h = c.h, .w = c.w, .c = c.c, .kh = c.kh, .kw = c.kw,
                       .dm = c.o, .oh = c.oh, .ow = c.ow, .sh = c.sh, .sw = c.sw, .pt = c.pt,
                       .pl = c.pl, .dh = c.dh, .dw = c.dw};
    return expect_shape(F, yname, y, 4, (int[]){s->n, -1, -1, s->c * s->dm});
}

static PyObject *py_depthwise_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "strides", "pads", "dilation", "activation",
                             NULL};
    const char *F = "depthwise_forward", *acts = "linear";
    conv_fwd a = {0};
    int g[6];
    pc_act act;
    pc_dw_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_FWD_FMT "O&O&O&|s", kwlist, CONV_FWD(a),
                                     GEOMETRY(g), &acts) ||
        parse_act(F, acts, &act, 1) || dw_shape(F, a.x, a.w, a.y, "y", g, &s) ||
        check_conv_fwd(F, &a, s.c * s.dm))
        return NULL;
    RETURN_KERNEL(m, F, pc_depthwise_forward(rt, &s, FLOAT(a.x), FLOAT(a.w), OPT_FLOAT(a.b),
                                             FLOAT(a.y), act));
}

static PyObject *py_depthwise_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", "strides", "pads", "dilation",
                             "y", NULL};
    const char *F = "depthwise_backward";
    conv_grads a = {0};
    int g[6];
    pc_dw_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_GRADS_FMT "O&O&O&|O&", kwlist,
                                     CONV_GRADS(a), GEOMETRY(g), OPT_IN_F32("y", 4, &a.y)) ||
        dw_shape(F, a.x, a.w, a.dy, "dy", g, &s) || check_conv_grads(F, &a, s.c * s.dm))
        return NULL;
    RETURN_KERNEL(m, F, pc_depthwise_backward(rt, &s, FLOAT(a.x), FLOAT(a.w), OPT_FLOAT(a.y),
                                              FLOAT(a.dy), OPT_FLOAT(a.dx), FLOAT(a.dw),
                                              OPT_FLOAT(a.db)));
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
