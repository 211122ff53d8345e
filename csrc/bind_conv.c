/*
 * bind_conv.c - the binding's entry points for convolution, pooling, and convolution fused with max pooling (see binding.h).
 */
#include "binding.h"

/* The plain convolution (no dilation, one group) of x by w into oh x ow cells, with
 * g = (sh, sw, pt, pl, 1, 1): conv_geometry's checks. */
static int conv_shape(const char *F, PyArrayObject *x, PyArrayObject *w, int oh, int ow,
                      const int g[6], pc_conv_shape *s)
{
    pc_convg_shape c;
    if (conv_geometry(F, x, "x", w, oh, ow, g, 1, &c))
        return -1;
    *s = (pc_conv_shape){.n = c.n, .h = c.h, .w = c.w, .c = c.c, .kh = c.kh, .kw = c.kw,
                         .o = c.o, .oh = c.oh, .ow = c.ow, .sh = c.sh, .sw = c.sw, .pt = c.pt,
                         .pl = c.pl};
    return 0;
}

/* The convolution whose output (or its gradient) is the array y. */
static int conv_out_shape(const char *F, PyArrayObject *x, PyArrayObject *w, PyArrayObject *y,
                          const char *yname, const int g[6], pc_conv_shape *s)
{
    return conv_shape(F, x, w, dim(y, 1), dim(y, 2), g, s) ||
           expect_shape(F, yname, y, 4, (int[]){s->n, -1, -1, s->o});
}

static PyObject *py_conv2d_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "strides", "pads", "activation", NULL};
    const char *F = "conv2d_forward", *acts = "linear";
    conv_fwd a = {0};
    int g[6] = {0, 0, 0, 0, 1, 1};
    pc_act act;
    pc_conv_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_FWD_FMT "O&O&|s", kwlist, CONV_FWD(a),
                                     PAIR("strides", g), PAIR("pads", g + 2), &acts) ||
        parse_act(F, acts, &act, 1) || conv_out_shape(F, a.x, a.w, a.y, "y", g, &s) ||
        check_conv_fwd(F, &a, s.o))
        return NULL;
    RETURN_KERNEL(m, F, pc_conv2d_forward(rt, &s, FLOAT(a.x), FLOAT(a.w), OPT_FLOAT(a.b),
                                          FLOAT(a.y), act));
}

static PyObject *py_conv2d_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "dx", "dw", "db", "strides", "pads", "y", NULL};
    const char *F = "conv2d_backward";
    conv_grads a = {0};
    int g[6] = {0, 0, 0, 0, 1, 1};
    pc_conv_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_GRADS_FMT "O&O&|O&", kwlist, CONV_GRADS(a),
                                     PAIR("strides", g), PAIR("pads", g + 2),
                                     OPT_IN_F32("y", 4, &a.y)) ||
        conv_out_shape(F, a.x, a.w, a.dy, "dy", g, &s) || check_conv_grads(F, &a, s.o))
        return NULL;
    RETURN_KERNEL(m, F, pc_conv2d_backward(rt, &s, FLOAT(a.x), FLOAT(a.w), OPT_FLOAT(a.y),
                                           FLOAT(a.dy), OPT_FLOAT(a.dx), FLOAT(a.dw),
                                           OPT_FLOAT(a.db)));
}


/* Pooling of an n x h x w x c input into y: v = (ph, pw, sh, sw, pt, pl), the strides and pads
 * named with `prefix` in errors. */
static int pool_geometry(const char *F, int n, int h, int w, int c, PyArrayObject *y,
                         const char *xname, const char *yname, const char *prefix,
                         const int v[6], pc_pool_shape *s)
{
    char sname[32], pname[32];
    snprintf(sname, sizeof sname, "%sstrides", prefix);
    snprintf(pname, sizeof pname, "%spads", prefix);
    if (check_window(F, "pool", v[0], v[1], 1) || check_window(F, sname, v[2], v[3], 1) ||
        check_window(F, pname, v[4], v[5], 0))
        return -1;
    *s = (pc_pool_shape){.n = n, .h = h, .w = w, .c = c,
                         .ph = v[0], .pw = v[1], .oh = dim(y, 1), .ow = dim(y, 2),
                         .sh = v[2], .sw = v[3], .pt = v[4], .pl = v[5]};
    if ((long long)s->h * s->w > INT_MAX || !window_fits(s->oh, s->sh, s->ph, s->pt) ||
        !window_fits(s->ow, s->sw, s->pw, s->pl)) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s', pool, strides or pads too large for int "
                     "indexing", F, xname);
        return -1;
    }
    return expect_shape(F, yname, y, 4, (int[]){s->n, -1, -1, s->c});
}

static int pool_shape(const char *F, PyArrayObject *x, PyArrayObject *y, const char *xname,
                      const char *yname, const int v[6], pc_pool_shape *s)
{
    return pool_geometry(F, dim(x, 0), dim(x, 1), dim(x, 2), dim(x, 3), y, xname, yname, "", v,
                         s);
}

/* pool, strides and pads as converters into v[0..5] */
#define POOL_PAIRS(v) PAIR("pool", v), PAIR("strides", (v) + 2), PAIR("pads", (v) + 4)

static PyObject *py_maxpool2d_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "y", "argmax", "pool", "strides", "pads", NULL};
    const char *F = "maxpool2d_forward";
    PyArrayObject *x, *y, *am;
    int v[6];
    pc_pool_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&", kwlist, IN_F32("x", 4, &x),
                                     OUT_F32("y", 4, &y), OUT_I32("argmax", 4, &am),
                                     POOL_PAIRS(v)) ||
        pool_shape(F, x, y, "x", "y", v, &s) ||
        expect_shape(F, "argmax", am, 4, (int[]){s.n, s.oh, s.ow, s.c}))
        return NULL;
    PyArrayObject *arrs[] = {x, y, am};
    const char *names[] = {"x", "y", "argmax"};
    if (check_disjoint(F, arrs, names, 3, 1))
        return NULL;
    RETURN_KERNEL(m, F, pc_maxpool2d_forward(rt, &s, FLOAT(x), FLOAT(y),
                                             (int32_t *)PyArray_DATA(am)));
}

static PyObject *py_maxpool2d_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dy", "argmax", "dx", NULL};
    const char *F = "maxpool2d_backward";
    PyArrayObject *dy, *am, *dx;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", kwlist, IN_F32("dy", 4, &dy),
                                     IN_I32("argmax", 4, &am), OUT_F32("dx", 4, &dx)))
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
    /* argmax values outside the image are ignored by the kernel, so any int32 content is safe */
    RETURN_KERNEL(m, F, pc_maxpool2d_backward(rt, &s, FLOAT(dy),
                                              (const int32_t *)PyArray_DATA(am), FLOAT(dx)));
}


/* The geometry both fused entry points share, v = (strides, pads, conv_hw, pool, pool_strides,
 * pool_pads) as pairs: the convolution's (its output conv_hw is never stored) and the pooling
 * of that output into `pooled`, whose argmax is am. */
static int conv_pool_shapes(const char *F, PyArrayObject *x, PyArrayObject *w,
                            PyArrayObject *pooled, const char *pname, PyArrayObject *am,
                            const int v[12], pc_conv_shape *s, pc_pool_shape *p)
{
    const int g[6] = {v[0], v[1], v[2], v[3], 1, 1};
    if (check_window(F, "conv_hw", v[4], v[5], 1) || conv_shape(F, x, w, v[4], v[5], g, s))
        return -1;
    /* the output is not the caller's array here but scratch sized by conv_hw: every window must
     * start inside x, as for any output a layer computes */
    if ((long long)(s->oh - 1) * s->sh - s->pt >= s->h ||
        (long long)(s->ow - 1) * s->sw - s->pl >= s->w) {
        PyErr_Format(PyExc_ValueError, "%s(): conv_hw (%d, %d) is larger than 'x' of %dx%d "
                     "cells gives with these strides and pads", F, s->oh, s->ow, s->h, s->w);
        return -1;
    }
    return pool_geometry(F, s->n, s->oh, s->ow, s->o, pooled, "the convolution's output",
                         pname, "pool_", v + 6, p) ||
           expect_shape(F, "argmax", am, 4, (int[]){p->n, p->oh, p->ow, p->c});
}

/* the six pairs of the fused entry points as converters into v[0..11] */
#define CONV_POOL_PAIRS(v)                                                                   \
    PAIR("strides", v), PAIR("pads", (v) + 2), PAIR("conv_hw", (v) + 4), PAIR("pool", (v) + 6), \
        PAIR("pool_strides", (v) + 8), PAIR("pool_pads", (v) + 10)

static PyObject *py_conv2d_maxpool_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "b", "y", "argmax", "strides", "pads", "conv_hw", "pool",
                             "pool_strides", "pool_pads", "activation", NULL};
    const char *F = "conv2d_maxpool_forward", *acts = "linear";
    conv_fwd a = {0};
    PyArrayObject *am;
    int v[12];
    pc_act act;
    pc_conv_shape s;
    pc_pool_shape p;
    if (!PyArg_ParseTupleAndKeywords(args, kw, CONV_FWD_FMT "O&O&O&O&O&O&O&|s", kwlist,
                                     CONV_FWD(a), OUT_I32("argmax", 4, &am), CONV_POOL_PAIRS(v),
                                     &acts) ||
        parse_act(F, acts, &act, 1) || conv_pool_shapes(F, a.x, a.w, a.y, "y", am, v, &s, &p) ||
        check_conv_fwd(F, &a, s.o))
        return NULL;
    PyArrayObject *arrs[] = {a.x, a.w, a.b, a.y, am};
    const char *names[] = {"x", "w", "b", "y", "argmax"};
    if (check_disjoint(F, arrs, names, 5, 4))
        return NULL;
    RETURN_KERNEL(m, F, pc_conv2d_maxpool_forward(rt, &s, &p, FLOAT(a.x), FLOAT(a.w),
                                                  OPT_FLOAT(a.b), act, FLOAT(a.y),
                                                  (int32_t *)PyArray_DATA(am)));
}

static PyObject *py_conv2d_maxpool_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "w", "dy", "argmax", "dx", "dw", "db", "strides", "pads",
                             "conv_hw", "pool", "pool_strides", "pool_pads", "y", NULL};
    const char *F = "conv2d_maxpool_backward";
    conv_grads a = {0};
    PyArrayObject *am;
    int v[12];
    pc_conv_shape s;
    pc_pool_shape p;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&O&O&O&O&O&O&O&|O&", kwlist,
                                     IN_F32("x", 4, &a.x), IN_F32("w", 4, &a.w),
                                     IN_F32("dy", 4, &a.dy), IN_I32("argmax", 4, &am),
                                     OPT_OUT_F32("dx", 4, &a.dx), OUT_F32("dw", 4, &a.dw),
                                     OPT_OUT_F32("db", 1, &a.db), CONV_POOL_PAIRS(v),
                                     OPT_IN_F32("y", 4, &a.y)) ||
        conv_pool_shapes(F, a.x, a.w, a.dy, "dy", am, v, &s, &p) ||
        check_conv_grads(F, &a, s.o))
        return NULL;
    PyArrayObject *arrs[] = {am, a.dx, a.dw, a.db};
    const char *names[] = {"argmax", "dx", "dw", "db"};
    if (check_disjoint(F, arrs, names, 4, 1))
        return NULL;
    /* argmax values outside the convolution's output are ignored, so any content is safe */
    RETURN_KERNEL(m, F, pc_conv2d_maxpool_backward(rt, &s, &p, FLOAT(a.x), FLOAT(a.w),
                                                   OPT_FLOAT(a.y),
                                                   (const int32_t *)PyArray_DATA(am),
                                                   FLOAT(a.dy), OPT_FLOAT(a.dx), FLOAT(a.dw),
                                                   OPT_FLOAT(a.db)));
}

/* avgpool2d_forward (backward = 0): a = x, b = y; avgpool2d_backward: a = dy, b = dx. */
static PyObject *avgpool_common(PyObject *m, PyObject *args, PyObject *kw, int backward)
{
    static char *kwf[] = {"x", "y", "pool", "strides", "pads", NULL};
    static char *kwb[] = {"dy", "dx", "pool", "strides", "pads", NULL};
    const char *F = backward ? "avgpool2d_backward" : "avgpool2d_forward";
    const char *an = backward ? "dy" : "x", *bn = backward ? "dx" : "y";
    PyArrayObject *a, *b;
    int v[6];
    pc_pool_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&", backward ? kwb : kwf,
                                     IN_F32(an, 4, &a), OUT_F32(bn, 4, &b), POOL_PAIRS(v)) ||
        (backward ? pool_shape(F, b, a, bn, an, v, &s) : pool_shape(F, a, b, an, bn, v, &s)))
        return NULL;
    PyArrayObject *arrs[] = {a, b};
    const char *names[] = {an, bn};
    if (check_disjoint(F, arrs, names, 2, 1))
        return NULL;
    if (backward)
        RETURN_KERNEL(m, F, pc_avgpool2d_backward(rt, &s, FLOAT(a), FLOAT(b)));
    RETURN_KERNEL(m, F, pc_avgpool2d_forward(rt, &s, FLOAT(a), FLOAT(b)));
}

KW_VARIANT(avgpool2d_forward, avgpool_common, 0)
KW_VARIANT(avgpool2d_backward, avgpool_common, 1)

PyMethodDef pc_methods_conv[] = {
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
    {NULL, NULL, 0, NULL}};
