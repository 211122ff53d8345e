/*
 * bind_normalization.c - the binding's entry points for batch and layer normalization and
 * global pooling (see binding.h).
 */
#include "binding.h"

/* A float argument that must be finite and >= 0 (epsilon). */
static int get_eps(const char *F, PyObject *obj, float *eps)
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

/* A (c,) float32 array or None. */
static int get_channels(PyObject *obj, const char *F, const char *name, int c, int mode,
                        int optional, PyArrayObject **out)
{
    const int want[1] = {c};
    if (get_array(obj, F, name, NPY_FLOAT32, 1, mode, optional, out))
        return -1;
    return *out ? expect_shape(F, name, *out, 1, want) : 0;
}

static PyObject *py_batchnorm_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "mean", "var", "gamma", "beta", "y", "epsilon", "training",
                             NULL};
    const char *F = "batchnorm_forward";
    PyObject *ox, *omean, *ovar, *ogamma, *obeta, *oy, *oeps;
    int training;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOp", kwlist, &ox, &omean, &ovar, &ogamma,
                                     &obeta, &oy, &oeps, &training))
        return NULL;
    PyArrayObject *x, *mean, *var, *gamma, *beta, *y;
    float eps;
    const int mode = training ? OUT : IN;
    if (get_array(ox, F, "x", NPY_FLOAT32, 3, IN, 0, &x) ||
        get_channels(omean, F, "mean", dim(x, 1), mode, 0, &mean) ||
        get_channels(ovar, F, "var", dim(x, 1), mode, 0, &var) ||
        get_channels(ogamma, F, "gamma", dim(x, 1), IN, 1, &gamma) ||
        get_channels(obeta, F, "beta", dim(x, 1), IN, 1, &beta) ||
        get_array(oy, F, "y", NPY_FLOAT32, 3, OUT, 0, &y) || same_shape(F, x, "x", y, "y") ||
        get_eps(F, oeps, &eps))
        return NULL;
    PyArrayObject *arrs[] = {x, gamma, beta, mean, var, y};
    const char *names[] = {"x", "gamma", "beta", "mean", "var", "y"};
    if (check_disjoint(F, arrs, names, 6, training ? 3 : 5))
        return NULL;
    const pc_norm_shape s = {dim(x, 0), dim(x, 1), dim(x, 2)};
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_batchnorm_forward(rt, &s, FLOAT(x), FLOAT(mean), FLOAT(var),
                                        OPT_FLOAT(gamma), OPT_FLOAT(beta), eps, training,
                                        FLOAT(y)));
    return kernel_result(rc, F);
}

static PyObject *py_batchnorm_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "mean", "var", "gamma", "dy", "dx", "dgamma", "dbeta",
                             "epsilon", "training", NULL};
    const char *F = "batchnorm_backward";
    PyObject *ox, *omean, *ovar, *ogamma, *ody, *odx, *odg, *odb, *oeps;
    int training;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOp", kwlist, &ox, &omean, &ovar,
                                     &ogamma, &ody, &odx, &odg, &odb, &oeps, &training))
        return NULL;
    PyArrayObject *x, *mean, *var, *gamma, *dy, *dx, *dg, *db;
    float eps;
    if (get_array(ox, F, "x", NPY_FLOAT32, 3, IN, 0, &x) ||
        get_channels(omean, F, "mean", dim(x, 1), IN, 0, &mean) ||
        get_channels(ovar, F, "var", dim(x, 1), IN, 0, &var) ||
        get_channels(ogamma, F, "gamma", dim(x, 1), IN, 1, &gamma) ||
        get_array(ody, F, "dy", NPY_FLOAT32, 3, IN, 0, &dy) || same_shape(F, x, "x", dy, "dy") ||
        get_array(odx, F, "dx", NPY_FLOAT32, 3, OUT, 1, &dx) ||
        (dx && same_shape(F, x, "x", dx, "dx")) ||
        get_channels(odg, F, "dgamma", dim(x, 1), OUT, 1, &dg) ||
        get_channels(odb, F, "dbeta", dim(x, 1), OUT, 1, &db) || get_eps(F, oeps, &eps))
        return NULL;
    PyArrayObject *arrs[] = {x, mean, var, gamma, dy, dx, dg, db};
    const char *names[] = {"x", "mean", "var", "gamma", "dy", "dx", "dgamma", "dbeta"};
    if (check_disjoint(F, arrs, names, 8, 5))
        return NULL;
    const pc_norm_shape s = {dim(x, 0), dim(x, 1), dim(x, 2)};
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_batchnorm_backward(rt, &s, FLOAT(x), FLOAT(mean), FLOAT(var),
                                         OPT_FLOAT(gamma), eps, training, FLOAT(dy),
                                         OPT_FLOAT(dx), OPT_FLOAT(dg), OPT_FLOAT(db)));
    return kernel_result(rc, F);
}

static PyObject *py_layernorm_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "gamma", "beta", "y", "mean", "inv", "epsilon", "rms", NULL};
    const char *F = "layernorm_forward";
    PyObject *ox, *ogamma, *obeta, *oy, *omean, *oinv, *oeps;
    int rms = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOO|p", kwlist, &ox, &ogamma, &obeta, &oy,
                                     &omean, &oinv, &oeps, &rms))
        return NULL;
    PyArrayObject *x, *gamma, *beta, *y, *mean, *inv;
    float eps;
    if (get_array(ox, F, "x", NPY_FLOAT32, 2, IN, 0, &x) ||
        get_channels(ogamma, F, "gamma", dim(x, 1), IN, 1, &gamma) ||
        get_channels(obeta, F, "beta", dim(x, 1), IN, 1, &beta) ||
        get_array(oy, F, "y", NPY_FLOAT32, 2, OUT, 0, &y) || same_shape(F, x, "x", y, "y") ||
        get_channels(omean, F, "mean", dim(x, 0), OUT, 0, &mean) ||
        get_channels(oinv, F, "inv", dim(x, 0), OUT, 0, &inv) || get_eps(F, oeps, &eps))
        return NULL;
    if (rms && beta)
        return PyErr_Format(PyExc_ValueError, "%s(): rms scaling takes no 'beta'", F);
    PyArrayObject *arrs[] = {x, gamma, beta, y, mean, inv};
    const char *names[] = {"x", "gamma", "beta", "y", "mean", "inv"};
    if (check_disjoint(F, arrs, names, 6, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_layernorm_forward(rt, FLOAT(x), dim(x, 0), dim(x, 1), OPT_FLOAT(gamma),
                                        OPT_FLOAT(beta), eps, rms, FLOAT(y), FLOAT(mean),
                                        FLOAT(inv)));
    return kernel_result(rc, F);
}

static PyObject *py_layernorm_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "gamma", "mean", "inv", "dy", "dx", "dgamma", "dbeta", "rms",
                             NULL};
    const char *F = "layernorm_backward";
    PyObject *ox, *ogamma, *omean, *oinv, *ody, *odx, *odg, *odb;
    int rms = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOO|p", kwlist, &ox, &ogamma, &omean,
                                     &oinv, &ody, &odx, &odg, &odb, &rms))
        return NULL;
    PyArrayObject *x, *gamma, *mean, *inv, *dy, *dx, *dg, *db;
    if (get_array(ox, F, "x", NPY_FLOAT32, 2, IN, 0, &x) ||
        get_channels(ogamma, F, "gamma", dim(x, 1), IN, 1, &gamma) ||
        get_channels(omean, F, "mean", dim(x, 0), IN, 0, &mean) ||
        get_channels(oinv, F, "inv", dim(x, 0), IN, 0, &inv) ||
        get_array(ody, F, "dy", NPY_FLOAT32, 2, IN, 0, &dy) || same_shape(F, x, "x", dy, "dy") ||
        get_array(odx, F, "dx", NPY_FLOAT32, 2, OUT, 1, &dx) ||
        (dx && same_shape(F, x, "x", dx, "dx")) ||
        get_channels(odg, F, "dgamma", dim(x, 1), OUT, 1, &dg) ||
        get_channels(odb, F, "dbeta", dim(x, 1), OUT, 1, &db))
        return NULL;
    PyArrayObject *arrs[] = {x, gamma, mean, inv, dy, dx, dg, db};
    const char *names[] = {"x", "gamma", "mean", "inv", "dy", "dx", "dgamma", "dbeta"};
    if (check_disjoint(F, arrs, names, 8, 5))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_layernorm_backward(rt, FLOAT(x), dim(x, 0), dim(x, 1), OPT_FLOAT(gamma),
                                         FLOAT(mean), FLOAT(inv), rms, FLOAT(dy), OPT_FLOAT(dx),
                                         OPT_FLOAT(dg), OPT_FLOAT(db)));
    return kernel_result(rc, F);
}

static PyObject *py_global_pool_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "y", "argmax", NULL};
    const char *F = "global_pool_forward";
    PyObject *ox, *oy, *oam;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", kwlist, &ox, &oy, &oam))
        return NULL;
    PyArrayObject *x, *y, *am;
    if (get_array(ox, F, "x", NPY_FLOAT32, 3, IN, 0, &x) ||
        get_array(oy, F, "y", NPY_FLOAT32, 2, OUT, 0, &y) ||
        get_array(oam, F, "argmax", NPY_INT32, 2, OUT, 1, &am))
        return NULL;
    const int want[2] = {dim(x, 0), dim(x, 2)};
    if (expect_shape(F, "y", y, 2, want) || (am && expect_shape(F, "argmax", am, 2, want)))
        return NULL;
    PyArrayObject *arrs[] = {x, y, am};
    const char *names[] = {"x", "y", "argmax"};
    if (check_disjoint(F, arrs, names, 3, 1))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_global_pool_forward(rt, FLOAT(x), dim(x, 0), dim(x, 1), dim(x, 2),
                                          am != NULL, FLOAT(y), am ? PyArray_DATA(am) : NULL));
    return kernel_result(rc, F);
}

static PyObject *py_global_pool_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dy", "argmax", "dx", NULL};
    const char *F = "global_pool_backward";
    PyObject *ody, *oam, *odx;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", kwlist, &ody, &oam, &odx))
        return NULL;
    PyArrayObject *dy, *am, *dx;
    if (get_array(ody, F, "dy", NPY_FLOAT32, 2, IN, 0, &dy) ||
        get_array(oam, F, "argmax", NPY_INT32, 2, IN, 1, &am) ||
        get_array(odx, F, "dx", NPY_FLOAT32, 3, OUT, 0, &dx))
        return NULL;
    const int want[2] = {dim(dx, 0), dim(dx, 2)};
    if (expect_shape(F, "dy", dy, 2, want) || (am && expect_shape(F, "argmax", am, 2, want)))
        return NULL;
    PyArrayObject *arrs[] = {dy, am, dx};
    const char *names[] = {"dy", "argmax", "dx"};
    if (check_disjoint(F, arrs, names, 3, 2))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_global_pool_backward(rt, FLOAT(dy), dim(dx, 0), dim(dx, 1), dim(dx, 2),
                                           am != NULL, am ? PyArray_DATA(am) : NULL,
                                           FLOAT(dx)));
    if (rc == PC_EINVAL)
        return PyErr_Format(PyExc_ValueError, "%s(): an 'argmax' entry is not a position of "
                            "'dx' axis 1", F);
    return kernel_result(rc, F);
}

PyMethodDef pc_methods_normalization[] = {
    KW(batchnorm_forward, "batchnorm_forward(x, mean, var, gamma, beta, y, epsilon, training): "
                          "x viewed (outer, channels, inner); training computes mean/var."),
    KW(batchnorm_backward, "batchnorm_backward(x, mean, var, gamma, dy, dx, dgamma, dbeta, "
                           "epsilon, training)."),
    KW(layernorm_forward, "layernorm_forward(x, gamma, beta, y, mean, inv, epsilon, rms=False): "
                          "over the rows of a 2-D x."),
    KW(layernorm_backward, "layernorm_backward(x, gamma, mean, inv, dy, dx, dgamma, dbeta, "
                           "rms=False)."),
    KW(global_pool_forward, "global_pool_forward(x, y, argmax): x (n, s, c) -> y (n, c); mean, "
                            "or max when argmax (int32 (n, c)) is given."),
    KW(global_pool_backward, "global_pool_backward(dy, argmax, dx)."),
    {NULL, NULL, 0, NULL}};
