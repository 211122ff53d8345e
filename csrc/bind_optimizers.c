/*
 * bind_optimizers.c - the binding's entry points for optimizer updates (see binding.h).
 */
#include "binding.h"

/* w (OUT) and the other arrays: float32, contiguous, each of w's size, pairwise disjoint */
static int opt_arrays(const char *F, PyObject **objs, const char **names, int n, int first_opt,
                      PyArrayObject **arrs)
{
    for (int i = 0; i < n; i++) {
        const int mode = (i == 1) ? IN : OUT;   /* index 1 is the gradient */
        if (get_array(objs[i], F, names[i], NPY_FLOAT32, -1, mode, i >= first_opt, &arrs[i]))
            return -1;
        if (arrs[i] && PyArray_SIZE(arrs[i]) != PyArray_SIZE(arrs[0])) {
            PyErr_Format(PyExc_ValueError, "%s(): '%s' has %zd elements but 'w' has %zd", F,
                         names[i], (Py_ssize_t)PyArray_SIZE(arrs[i]),
                         (Py_ssize_t)PyArray_SIZE(arrs[0]));
            return -1;
        }
    }
    for (int i = 0; i < n; i++)
        for (int k = i + 1; k < n; k++)
            if (overlaps(arrs[i], arrs[k])) {
                PyErr_Format(PyExc_ValueError, "%s(): '%s' and '%s' must not share memory", F,
                             names[i], names[k]);
                return -1;
            }
    return 0;
}

static PyObject *py_sgd_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "velocity", "lr", "momentum", "nesterov", NULL};
    const char *F = "sgd_update";
    PyObject *o[3];
    float lr, momentum;
    int nesterov = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOff|p", kwlist, &o[0], &o[1], &o[2], &lr,
                                     &momentum, &nesterov))
        return parse_error(F);
    const char *names[] = {"w", "g", "velocity"};
    PyArrayObject *a[3];
    if (opt_arrays(F, o, names, 3, 2, a))
        return NULL;
    if (momentum != 0.0f && !a[2])
        return PyErr_Format(PyExc_ValueError, "%s(): 'velocity' is required when momentum != 0", F);
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_sgd_update(rt, FLOAT(a[0]), FLOAT(a[1]), OPT_FLOAT(a[2]),
                                 (size_t)PyArray_SIZE(a[0]), lr, momentum, nesterov));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_rmsprop_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "v", "lr", "rho", "epsilon", "momentum", "mom",
                             "centered", "mg", NULL};
    const char *F = "rmsprop_update";
    PyObject *o[5] = {NULL, NULL, NULL, Py_None, Py_None};
    float lr, rho, eps, momentum = 0.0f;
    int centered = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOfff|fOpO", kwlist, &o[0], &o[1], &o[2], &lr,
                                     &rho, &eps, &momentum, &o[3], &centered, &o[4]))
        return parse_error(F);
    const char *names[] = {"w", "g", "v", "mom", "mg"};
    PyArrayObject *a[5];
    if (opt_arrays(F, o, names, 5, 3, a))
        return NULL;
    if (momentum > 0.0f && !a[3])
        return PyErr_Format(PyExc_ValueError, "%s(): 'mom' is required when momentum > 0", F);
    if (centered && !a[4])
        return PyErr_Format(PyExc_ValueError, "%s(): 'mg' is required when centered", F);
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_rmsprop_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                     (size_t)PyArray_SIZE(a[0]), lr, rho, eps, momentum,
                                     OPT_FLOAT(a[3]), centered, OPT_FLOAT(a[4])));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_adam_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "m", "v", "lr", "beta_1", "beta_2", "epsilon", "step",
                             NULL};
    const char *F = "adam_update";
    PyObject *o[4];
    float lr, b1, b2, eps;
    long long step;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOffffL", kwlist, &o[0], &o[1], &o[2], &o[3],
                                     &lr, &b1, &b2, &eps, &step))
        return parse_error(F);
    if (step < 1)
        return PyErr_Format(PyExc_ValueError, "%s(): 'step' must be >= 1, got %lld", F, step);
    const char *names[] = {"w", "g", "m", "v"};
    PyArrayObject *a[4];
    if (opt_arrays(F, o, names, 4, 4, a))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_adam_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]), FLOAT(a[3]),
                                  (size_t)PyArray_SIZE(a[0]), lr, b1, b2, eps, step));
    return PyLong_FromSize_t(bad);
}

PyMethodDef pc_methods_optimizers[] = {
    KW(sgd_update, "sgd_update(w, g, velocity, lr, momentum, nesterov=False) -> number of non-finite weights after the update: Keras SGD."),
    KW(rmsprop_update, "rmsprop_update(w, g, v, lr, rho, epsilon, momentum=0, mom=None, "
                       "centered=False, mg=None): Keras RMSprop."),
    KW(adam_update, "adam_update(w, g, m, v, lr, beta_1, beta_2, epsilon, step): Keras Adam."),
    {NULL, NULL, 0, NULL}};
