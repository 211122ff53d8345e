/*
 * bind_augment.c - the binding's entry points for image augmentation (see binding.h; the
 * kernels in augment.c, their conventions in pycnn.h).
 */
#include "binding.h"

#include <math.h>

/* A str argument `name` that must be one of names[0..n-1] ("a', 'b' or 'c" lists them for the
 * error): its index in *out. */
static int parse_choice(const char *F, const char *name, const char *s, const char *const *names,
                        int n, const char *listed, int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    PyErr_Format(PyExc_ValueError, "%s(): argument '%s' must be %s, got '%s'", F, name, listed, s);
    return -1;
}

static int parse_interp(const char *F, const char *s, pc_interp *out)
{
    static const char *const names[] = {"nearest", "bilinear"};
    static const pc_interp values[] = {PC_INTERP_NEAREST, PC_INTERP_BILINEAR};
    int i;
    if (parse_choice(F, "interpolation", s, names, 2, "'nearest' or 'bilinear'", &i))
        return -1;
    *out = values[i];
    return 0;
}

static int parse_fill(const char *F, const char *s, pc_fill *out)
{
    static const char *const names[] = {"reflect", "wrap", "constant", "nearest", "scipy_wrap",
                                        "scipy_constant"};
    static const pc_fill values[] = {PC_FILL_REFLECT, PC_FILL_WRAP, PC_FILL_CONSTANT,
                                     PC_FILL_NEAREST, PC_FILL_SCIPY_WRAP,
                                     PC_FILL_SCIPY_CONSTANT};
    int i;
    if (parse_choice(F, "fill_mode", s, names, 6, "'reflect', 'wrap', 'constant', 'nearest', "
                     "'scipy_wrap' or 'scipy_constant'", &i))
        return -1;
    *out = values[i];
    return 0;
}

/* Every entry point here reads an image batch `in` with per-image parameters p and writes
 * `out`: out must share memory with neither. */
static int outputs_disjoint(const char *F, PyArrayObject *in, const char *in_name,
                            PyArrayObject *p, const char *p_name, PyArrayObject *out,
                            const char *out_name)
{
    PyArrayObject *arrs[] = {in, p, out};
    const char *names[] = {in_name, p_name, out_name};
    return check_disjoint(F, arrs, names, 3, 2);
}

/* The shared checks of the warp and its adjoint: big (n,h,w,c) is the image side, small
 * (n,oh,ow,c) the warped side, t (n,6) finite. */
static int warp_shape(const char *F, PyArrayObject *big, PyArrayObject *small,
                      const char *small_name, PyArrayObject *t, const char *interp,
                      const char *fill, double fill_value, pc_warp_shape *s)
{
    *s = (pc_warp_shape){.n = dim(big, 0), .h = dim(big, 1), .w = dim(big, 2),
                         .c = dim(big, 3), .oh = dim(small, 1), .ow = dim(small, 2),
                         .fill_value = (float)fill_value};
    if (expect_shape(F, small_name, small, 4, (int[]){s->n, -1, -1, s->c}) ||
        expect_shape(F, "transforms", t, 2, (int[]){s->n, 6}) ||
        parse_interp(F, interp, &s->interp) || parse_fill(F, fill, &s->fill))
        return -1;
    if ((long long)s->h * s->w * s->c > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s(): images of %d x %d x %d are too large (more than "
                     "%d values)", F, s->h, s->w, s->c, INT_MAX);
        return -1;
    }
    const int bad = pc_warp_coords_fit(s, FLOAT(t));
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "%s(): transforms[%d] is not finite or maps pixels "
                     "farther than 1e9 from the image", F, bad);
        return -1;
    }
    if (!isfinite(s->fill_value)) {
        PyErr_Format(PyExc_ValueError, "%s(): fill_value must be finite", F);
        return -1;
    }
    return 0;
}

/* affine_warp (backward = 0): a = x (big), b = y (small); affine_warp_backward: a = dy (small),
 * b = dx (big), no fill_value (the adjoint of a constant fill is zero). */
static PyObject *warp_common(PyObject *m, PyObject *args, PyObject *kw, int backward)
{
    static char *kwf[] = {"x", "transforms", "y", "interpolation", "fill_mode", "fill_value",
                          NULL};
    static char *kwb[] = {"dy", "transforms", "dx", "interpolation", "fill_mode", NULL};
    const char *F = backward ? "affine_warp_backward" : "affine_warp";
    const char *an = backward ? "dy" : "x", *bn = backward ? "dx" : "y";
    const char *interp = "bilinear", *fill = "constant";
    double fill_value = 0.0;
    PyArrayObject *a, *t, *b;
    pc_warp_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, backward ? "O&O&O&|ss" : "O&O&O&|ssd",
                                     backward ? kwb : kwf, IN_F32(an, 4, &a),
                                     IN_F32("transforms", 2, &t), OUT_F32(bn, 4, &b), &interp,
                                     &fill, &fill_value))
        return parse_error(F);
    if (warp_shape(F, backward ? b : a, backward ? a : b, backward ? an : bn, t, interp, fill,
                   fill_value, &s) ||
        outputs_disjoint(F, a, an, t, "transforms", b, bn))
        return NULL;
    if (backward)
        RETURN_KERNEL(m, F, pc_affine_warp_backward(rt, &s, FLOAT(a), FLOAT(t), FLOAT(b)));
    RETURN_KERNEL(m, F, pc_affine_warp(rt, &s, FLOAT(a), FLOAT(t), FLOAT(b)));
}

KW_VARIANT(affine_warp, warp_common, 0)
KW_VARIANT(affine_warp_backward, warp_common, 1)

static PyObject *py_flip(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "flags", "y", NULL};
    const char *F = "flip";
    PyArrayObject *x, *fl, *y;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", kwlist, IN_F32("x", 4, &x),
                                     IN_U8("flags", 1, &fl), OUT_F32("y", 4, &y)))
        return parse_error(F);
    if (same_shape(F, x, "x", y, "y") || expect_shape(F, "flags", fl, 1, (int[]){dim(x, 0)}) ||
        outputs_disjoint(F, x, "x", fl, "flags", y, "y"))
        return NULL;
    RETURN_KERNEL(m, F, pc_flip(rt, FLOAT(x), dim(x, 0), dim(x, 1), dim(x, 2), dim(x, 3),
                                (const uint8_t *)PyArray_DATA(fl), FLOAT(y)));
}

/* crop (backward = 0): big = x, small = y; crop_backward: small = dy, big = dx. */
static PyObject *crop_common(PyObject *m, PyObject *args, PyObject *kw, int backward)
{
    static char *kwf[] = {"x", "offsets", "y", NULL};
    static char *kwb[] = {"dy", "offsets", "dx", NULL};
    const char *F = backward ? "crop_backward" : "crop";
    const char *an = backward ? "dy" : "x", *bn = backward ? "dx" : "y";
    PyArrayObject *a, *off, *b;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", backward ? kwb : kwf,
                                     IN_F32(an, 4, &a), IN_I32("offsets", 2, &off),
                                     OUT_F32(bn, 4, &b)))
        return parse_error(F);
    if (expect_shape(F, bn, b, 4, (int[]){dim(a, 0), -1, -1, dim(a, 3)}) ||
        expect_shape(F, "offsets", off, 2, (int[]){dim(a, 0), 2}))
        return NULL;
    PyArrayObject *big = backward ? b : a, *small = backward ? a : b;
    const int n = dim(big, 0), h = dim(big, 1), w = dim(big, 2), c = dim(big, 3);
    const int oh = dim(small, 1), ow = dim(small, 2);
    if (oh > h || ow > w)
        return PyErr_Format(PyExc_ValueError, "%s(): the window (%d x %d) is larger than the "
                            "image (%d x %d)", F, oh, ow, h, w);
    const int32_t *o = (const int32_t *)PyArray_DATA(off);
    for (int i = 0; i < n; i++)
        if (o[2 * i] < 0 || o[2 * i] > h - oh || o[2 * i + 1] < 0 || o[2 * i + 1] > w - ow)
            return PyErr_Format(PyExc_ValueError, "%s(): offsets[%d] = (%d, %d) puts the "
                                "window outside the image", F, i, o[2 * i], o[2 * i + 1]);
    if (outputs_disjoint(F, a, an, off, "offsets", b, bn))
        return NULL;
    if (backward)
        RETURN_KERNEL(m, F, pc_crop_backward(rt, FLOAT(a), n, h, w, c, o, FLOAT(b), oh, ow));
    RETURN_KERNEL(m, F, pc_crop(rt, FLOAT(a), n, h, w, c, o, FLOAT(b), oh, ow));
}

KW_VARIANT(crop, crop_common, 0)
KW_VARIANT(crop_backward, crop_common, 1)

/* contrast (kind 0) and brightness (kind 1): x (n,h,w,c), per-image params (n,), y like x. */
static PyObject *color_common(PyObject *m, PyObject *args, PyObject *kw, int kind)
{
    static char *kwc[] = {"x", "factors", "y", "lo", "hi", NULL};
    static char *kwb[] = {"x", "deltas", "y", "lo", "hi", NULL};
    const char *F = kind ? "adjust_brightness" : "adjust_contrast";
    const char *pn = kind ? "deltas" : "factors";
    PyArrayObject *x, *p, *y;
    double lo, hi;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&dd", kind ? kwb : kwc, IN_F32("x", 4, &x),
                                     IN_F32(pn, 1, &p), OUT_F32("y", 4, &y), &lo, &hi))
        return parse_error(F);
    if (same_shape(F, x, "x", y, "y") || expect_shape(F, pn, p, 1, (int[]){dim(x, 0)}))
        return NULL;
    if (isnan(lo) || isnan(hi) || lo > hi)
        return PyErr_Format(PyExc_ValueError, "%s(): expected lo <= hi, got %g and %g", F, lo,
                            hi);
    if (outputs_disjoint(F, x, "x", p, pn, y, "y"))
        return NULL;
    const int n = dim(x, 0), hw = dim(x, 1) * dim(x, 2), c = dim(x, 3);
    if ((long long)dim(x, 1) * dim(x, 2) > INT_MAX)
        return PyErr_Format(PyExc_ValueError, "%s(): images too large", F);
    if (kind)
        RETURN_KERNEL(m, F, pc_adjust_brightness(rt, FLOAT(x), n, (size_t)hw * c, FLOAT(p),
                                                 (float)lo, (float)hi, FLOAT(y)));
    RETURN_KERNEL(m, F, pc_adjust_contrast(rt, FLOAT(x), n, hw, c, FLOAT(p), (float)lo,
                                           (float)hi, FLOAT(y)));
}

KW_VARIANT(adjust_contrast, color_common, 0)
KW_VARIANT(adjust_brightness, color_common, 1)

PyMethodDef pc_methods_augment[] = {
    KW(affine_warp, "affine_warp(x, transforms, y, interpolation='bilinear', "
                    "fill_mode='constant', fill_value=0.0): Keras' affine_transform of each "
                    "image x[i] (NHWC) by transforms[i] = (a0, a1, a2, b0, b1, b2) into y "
                    "(n, oh, ow, c)."),
    KW(affine_warp_backward, "affine_warp_backward(dy, transforms, dx, interpolation, "
                             "fill_mode): the warp's input gradient (its adjoint) into dx."),
    KW(flip, "flip(x, flags, y): y[i] = x[i] flipped left-right (flags[i] & 1) and/or upside "
             "down (flags[i] & 2)."),
    KW(crop, "crop(x, offsets, y): y[i] = x[i][top:top+oh, left:left+ow], offsets int32 "
             "(n, 2) = (top, left)."),
    KW(crop_backward, "crop_backward(dy, offsets, dx): dx zero but for the windows = dy."),
    KW(adjust_contrast, "adjust_contrast(x, factors, y, lo, hi): y = clip((x - m) * f + m, lo, "
                        "hi), m the per-image, per-channel mean."),
    KW(adjust_brightness, "adjust_brightness(x, deltas, y, lo, hi): y = clip(x + d, lo, hi)."),
    {NULL, NULL, 0, NULL}};
