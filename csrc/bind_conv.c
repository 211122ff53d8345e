/*
 * bind_conv.c - the binding's entry points for convolution, pooling, and convolution fused with max pooling (see binding.h).
 */
#include "binding.h"

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
