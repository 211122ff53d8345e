/*
 * bind_normalization.c - the binding's entry points for batch and layer normalization and
 * global pooling (see binding.h).
 */
#include "binding.h"

/* A (c,) float32 array or None whose mode (IN or OUT) is known only after parsing. */
static int get_channels(PyObject *obj, const char *F, const char *name, int c, int mode,
                        int optional, PyArrayObject **out)
{
    if (get_array(obj, F, name, NPY_FLOAT32, 1, mode, optional, out))
        return -1;
    return channel_vector(F, name, *out, c);
}

static PyObject *py_batchnorm_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "mean", "var", "gamma", "beta", "y", "epsilon", "training",
                             NULL};
    const char *F = "batchnorm_forward";
    PyObject *omean, *ovar, *oeps;     /* mean and var: outputs when training */
    PyArrayObject *x, *mean, *var, *gamma, *beta, *y;
    int training;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&OOO&O&O&Op", kwlist, IN_F32("x", 3, &x),
                                     &omean, &ovar, OPT_IN_F32("gamma", 1, &gamma),
                                     OPT_IN_F32("beta", 1, &beta), OUT_F32("y", 3, &y), &oeps,
                                     &training))
        return NULL;
    float eps;
    const int mode = training ? OUT : IN, c = dim(x, 1);
    if (get_channels(omean, F, "mean", c, mode, 0, &mean) ||
        get_channels(ovar, F, "var", c, mode, 0, &var) || channel_vector(F, "gamma", gamma, c) ||
        channel_vector(F, "beta", beta, c) || same_shape(F, x, "x", y, "y") ||
        epsilon_arg(F, oeps, &eps))
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
    PyObject *oeps;
    PyArrayObject *x, *mean, *var, *gamma, *dy, *dx, *dg, *db;
    int training;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&O&O&Op", kwlist,
                                     IN_F32("x", 3, &x), IN_F32("mean", 1, &mean),
                                     IN_F32("var", 1, &var), OPT_IN_F32("gamma", 1, &gamma),
                                     IN_F32("dy", 3, &dy), OPT_OUT_F32("dx", 3, &dx),
                                     OPT_OUT_F32("dgamma", 1, &dg),
                                     OPT_OUT_F32("dbeta", 1, &db), &oeps, &training))
        return NULL;
    float eps;
    const int c = dim(x, 1);
    if (channel_vector(F, "mean", mean, c) || channel_vector(F, "var", var, c) ||
        channel_vector(F, "gamma", gamma, c) || same_shape(F, x, "x", dy, "dy") ||
        (dx && same_shape(F, x, "x", dx, "dx")) || channel_vector(F, "dgamma", dg, c) ||
        channel_vector(F, "dbeta", db, c) || epsilon_arg(F, oeps, &eps))
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
    PyObject *oeps;
    PyArrayObject *x, *gamma, *beta, *y, *mean, *inv;
    int rms = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&O|p", kwlist, IN_F32("x", 2, &x),
                                     OPT_IN_F32("gamma", 1, &gamma), OPT_IN_F32("beta", 1, &beta),
                                     OUT_F32("y", 2, &y), OUT_F32("mean", 1, &mean),
                                     OUT_F32("inv", 1, &inv), &oeps, &rms))
        return NULL;
    float eps;
    if (channel_vector(F, "gamma", gamma, dim(x, 1)) ||
        channel_vector(F, "beta", beta, dim(x, 1)) ||
        same_shape(F, x, "x", y, "y") || channel_vector(F, "mean", mean, dim(x, 0)) ||
        channel_vector(F, "inv", inv, dim(x, 0)) || epsilon_arg(F, oeps, &eps))
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
    PyArrayObject *x, *gamma, *mean, *inv, *dy, *dx, *dg, *db;
    int rms = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&O&O&|p", kwlist, IN_F32("x", 2, &x),
                                     OPT_IN_F32("gamma", 1, &gamma), IN_F32("mean", 1, &mean),
                                     IN_F32("inv", 1, &inv), IN_F32("dy", 2, &dy),
                                     OPT_OUT_F32("dx", 2, &dx), OPT_OUT_F32("dgamma", 1, &dg),
                                     OPT_OUT_F32("dbeta", 1, &db), &rms))
        return NULL;
    const int rows = dim(x, 0), cols = dim(x, 1);
    if (channel_vector(F, "gamma", gamma, cols) || channel_vector(F, "mean", mean, rows) ||
        channel_vector(F, "inv", inv, rows) || same_shape(F, x, "x", dy, "dy") ||
        (dx && same_shape(F, x, "x", dx, "dx")) || channel_vector(F, "dgamma", dg, cols) ||
        channel_vector(F, "dbeta", db, cols))
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
    PyArrayObject *x, *y, *am;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", kwlist, IN_F32("x", 3, &x),
                                     OUT_F32("y", 2, &y), OPT_OUT_I32("argmax", 2, &am)))
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
    PyArrayObject *dy, *am, *dx;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", kwlist, IN_F32("dy", 2, &dy),
                                     PC_ARG("argmax", NPY_INT32, 2, IN, 1, &am),
                                     OUT_F32("dx", 3, &dx)))
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
