/*
 * bind_bnpool.c - the binding's entry points for batch normalization fused with the max pooling
 * that follows it (normalization.c, "batch normalization followed by max pooling"; see
 * binding.h). Non-overlapping windows only: strides equal to the pool size.
 */
#include "binding.h"

#include <limits.h>

/* x (n, h, w, c) pooled into y (n, oh, ow, c) by v = (pool, strides, pads) */
static int bnpool_shape(const char *F, PyArrayObject *x, PyArrayObject *y, const char *yname,
                        const int v[6], pc_pool_shape *s)
{
    if (check_window(F, "pool", v[0], v[1], 1) || check_window(F, "strides", v[2], v[3], 1) ||
        check_window(F, "pads", v[4], v[5], 0))
        return -1;
    *s = (pc_pool_shape){.n = dim(x, 0), .h = dim(x, 1), .w = dim(x, 2), .c = dim(x, 3),
                         .ph = v[0], .pw = v[1], .oh = dim(y, 1), .ow = dim(y, 2),
                         .sh = v[2], .sw = v[3], .pt = v[4], .pl = v[5]};
    if (s->sh != s->ph || s->sw != s->pw || s->pt >= s->ph || s->pl >= s->pw) {
        PyErr_Format(PyExc_ValueError, "%s(): strides must equal pool and pads be smaller than "
                     "pool (non-overlapping windows), got pool (%d, %d), strides (%d, %d), pads "
                     "(%d, %d)", F, v[0], v[1], v[2], v[3], v[4], v[5]);
        return -1;
    }
    if ((long long)s->n * s->h * s->w > INT_MAX || !window_fits(s->oh, s->sh, s->ph, s->pt) ||
        !window_fits(s->ow, s->sw, s->pw, s->pl)) {
        PyErr_Format(PyExc_ValueError, "%s(): 'x', pool, strides or pads too large for int "
                     "indexing", F);
        return -1;
    }
    return expect_shape(F, yname, y, 4, (int[]){s->n, -1, -1, s->c});
}

#define POOL_PAIRS(v) PAIR("pool", v), PAIR("strides", (v) + 2), PAIR("pads", (v) + 4)

static PyObject *py_batchnorm_maxpool_forward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "mean", "var", "gamma", "beta", "y", "argmax", "pool",
                             "strides", "pads", "epsilon", "training", NULL};
    const char *F = "batchnorm_maxpool_forward";
    PyObject *omean, *ovar, *oeps;
    PyArrayObject *x, *mean, *var, *gamma, *beta, *y, *am;
    int training, v[6];
    pc_pool_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&OOO&O&O&O&O&O&O&Op", kwlist,
                                     IN_F32("x", 4, &x), &omean, &ovar,
                                     OPT_IN_F32("gamma", 1, &gamma), OPT_IN_F32("beta", 1, &beta),
                                     OUT_F32("y", 4, &y), OUT_I32("argmax", 4, &am),
                                     POOL_PAIRS(v), &oeps, &training) ||
        bnpool_shape(F, x, y, "y", v, &s) ||
        expect_shape(F, "argmax", am, 4, (int[]){s.n, s.oh, s.ow, s.c}))
        return NULL;
    float eps;
    const int mode = training ? OUT : IN, c = s.c;
    if (get_array(omean, F, "mean", NPY_FLOAT32, 1, mode, 0, &mean) ||
        channel_vector(F, "mean", mean, c) ||
        get_array(ovar, F, "var", NPY_FLOAT32, 1, mode, 0, &var) ||
        channel_vector(F, "var", var, c) || channel_vector(F, "gamma", gamma, c) ||
        channel_vector(F, "beta", beta, c) || epsilon_arg(F, oeps, &eps))
        return NULL;
    PyArrayObject *arrs[] = {x, gamma, beta, mean, var, y, am};
    const char *names[] = {"x", "gamma", "beta", "mean", "var", "y", "argmax"};
    if (check_disjoint(F, arrs, names, 7, training ? 3 : 5))
        return NULL;
    RETURN_KERNEL(m, F, pc_batchnorm_maxpool_forward(rt, &s, FLOAT(x), FLOAT(mean), FLOAT(var),
                                                     OPT_FLOAT(gamma), OPT_FLOAT(beta), eps,
                                                     training, FLOAT(y),
                                                     (int32_t *)PyArray_DATA(am)));
}

static PyObject *py_batchnorm_maxpool_backward(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "mean", "var", "gamma", "dy", "argmax", "dx", "dgamma",
                             "dbeta", "pool", "strides", "pads", "epsilon", "training", "relu",
                             NULL};
    const char *F = "batchnorm_maxpool_backward";
    PyObject *oeps;
    PyArrayObject *x, *mean, *var, *gamma, *dy, *am, *dx, *dg, *db;
    int training, relu = 0, v[6];
    pc_pool_shape s;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&O&O&O&O&O&O&Op|p", kwlist,
                                     IN_F32("x", 4, &x), IN_F32("mean", 1, &mean),
                                     IN_F32("var", 1, &var), OPT_IN_F32("gamma", 1, &gamma),
                                     IN_F32("dy", 4, &dy), IN_I32("argmax", 4, &am),
                                     OPT_OUT_F32("dx", 4, &dx), OPT_OUT_F32("dgamma", 1, &dg),
                                     OPT_OUT_F32("dbeta", 1, &db), POOL_PAIRS(v), &oeps,
                                     &training, &relu) ||
        bnpool_shape(F, x, dy, "dy", v, &s) ||
        expect_shape(F, "argmax", am, 4, (int[]){s.n, s.oh, s.ow, s.c}))
        return NULL;
    float eps;
    const int c = s.c;
    if (channel_vector(F, "mean", mean, c) || channel_vector(F, "var", var, c) ||
        channel_vector(F, "gamma", gamma, c) || (dx && same_shape(F, x, "x", dx, "dx")) ||
        channel_vector(F, "dgamma", dg, c) || channel_vector(F, "dbeta", db, c) ||
        epsilon_arg(F, oeps, &eps))
        return NULL;
    PyArrayObject *arrs[] = {x, mean, var, gamma, dy, am, dx, dg, db};
    const char *names[] = {"x", "mean", "var", "gamma", "dy", "argmax", "dx", "dgamma", "dbeta"};
    if (check_disjoint(F, arrs, names, 9, 6))
        return NULL;
    /* argmax entries are only compared with cell numbers: any int32 content is safe */
    RETURN_KERNEL(m, F, pc_batchnorm_maxpool_backward(
                            rt, &s, FLOAT(x), FLOAT(mean), FLOAT(var), OPT_FLOAT(gamma), eps,
                            training, FLOAT(dy), (const int32_t *)PyArray_DATA(am), relu,
                            OPT_FLOAT(dx), OPT_FLOAT(dg), OPT_FLOAT(db)));
}

PyMethodDef pc_methods_bnpool[] = {
    KW(batchnorm_maxpool_forward,
       "batchnorm_maxpool_forward(x, mean, var, gamma, beta, y, argmax, pool, strides, pads, "
       "epsilon, training): maxpool(batchnorm(x)) over NHWC x, strides == pool; the normalized "
       "map is not stored."),
    KW(batchnorm_maxpool_backward,
       "batchnorm_maxpool_backward(x, mean, var, gamma, dy, argmax, dx, dgamma, dbeta, pool, "
       "strides, pads, epsilon, training, relu=False): dy is the pooled gradient; with relu, dx "
       "is masked by x > 0 (x the output of a relu)."),
    {NULL, NULL, 0, NULL}};
