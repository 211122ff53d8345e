/*
 * bind_optimizers.c - the binding's entry points for optimizer updates (see binding.h).
 *
 * Every update takes the variable `w` (updated in place), its gradient `g` (read only) and the
 * rule's state arrays (updated in place), all float32, contiguous, of w's size and pairwise
 * disjoint, then the rule's scalars, then the keyword-only preprocessing shared by every rule:
 * gscale (the gradient's scale, from clipping by norm; 1), clip (clipping by value; inf) and
 * decay (lr * weight_decay; 0). Each returns how many weights the update refused because their
 * new value or state would not be finite (those keep their old value and state).
 */
#include "binding.h"

#include <math.h>

/* The arrays of an update, as parsed with the converters below: arrs[0] is an output (w, or the
 * state being updated), arrs[1] the read-only input (g), the rest outputs (NULL: None). Same
 * size, pairwise disjoint. */
#define STATE(name, out) OUT_F32(name, -1, out)
#define OPT_STATE(name, out) OPT_OUT_F32(name, -1, out)
#define GRAD(name, out) IN_F32(name, -1, out)

static int opt_arrays(const char *F, PyArrayObject **arrs, const char **names, int n)
{
    for (int i = 0; i < n; i++) {
        if (arrs[i] && PyArray_SIZE(arrs[i]) != PyArray_SIZE(arrs[0])) {
            PyErr_Format(PyExc_ValueError, "%s(): '%s' has %zd elements but '%s' has %zd", F,
                         names[i], (Py_ssize_t)PyArray_SIZE(arrs[i]), names[0],
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

/* the preprocessing keywords: a finite gscale, a clip >= 0 (inf for none), a finite decay */
static int check_pre(const char *F, const pc_opt_pre *pre)
{
    if (!isfinite(pre->gscale) || !(pre->clip >= 0.0f) || !isfinite(pre->decay)) {
        PyErr_Format(PyExc_ValueError, "%s(): 'gscale' and 'decay' must be finite and 'clip' "
                     ">= 0, got gscale=%g, clip=%g, decay=%g", F, (double)pre->gscale,
                     (double)pre->clip, (double)pre->decay);
        return -1;
    }
    return 0;
}

static int check_step(const char *F, long long step)
{
    if (step < 1) {
        PyErr_Format(PyExc_ValueError, "%s(): 'step' must be >= 1, got %lld", F, step);
        return -1;
    }
    return 0;
}

#define SIZE(a) ((size_t)PyArray_SIZE(a))
#define PRE_INIT {1.0f, INFINITY, 0.0f}

static PyObject *py_sgd_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "velocity", "lr", "momentum", "nesterov", "gscale",
                             "clip", "decay", NULL};
    const char *F = "sgd_update";
    PyArrayObject *a[3];
    float lr, momentum;
    int nesterov = 0;
    pc_opt_pre pre = PRE_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&ff|p$fff", kwlist, STATE("w", &a[0]),
                                     GRAD("g", &a[1]), OPT_STATE("velocity", &a[2]), &lr,
                                     &momentum, &nesterov, &pre.gscale, &pre.clip, &pre.decay))
        return parse_error(F);
    const char *names[] = {"w", "g", "velocity"};
    if (opt_arrays(F, a, names, 3) || check_pre(F, &pre))
        return NULL;
    if (momentum != 0.0f && !a[2])
        return PyErr_Format(PyExc_ValueError, "%s(): 'velocity' is required when momentum != 0", F);
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_sgd_update(rt, FLOAT(a[0]), FLOAT(a[1]), OPT_FLOAT(a[2]),
                                           SIZE(a[0]), &pre, lr, momentum, nesterov));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_rmsprop_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "v", "lr", "rho", "epsilon", "momentum", "mom",
                             "centered", "mg", "gscale", "clip", "decay", NULL};
    const char *F = "rmsprop_update";
    PyArrayObject *a[5] = {NULL, NULL, NULL, NULL, NULL};
    float lr, rho, eps, momentum = 0.0f;
    int centered = 0;
    pc_opt_pre pre = PRE_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&fff|fO&pO&$fff", kwlist, STATE("w", &a[0]),
                                     GRAD("g", &a[1]), STATE("v", &a[2]), &lr, &rho, &eps,
                                     &momentum, OPT_STATE("mom", &a[3]), &centered,
                                     OPT_STATE("mg", &a[4]), &pre.gscale, &pre.clip, &pre.decay))
        return parse_error(F);
    const char *names[] = {"w", "g", "v", "mom", "mg"};
    if (opt_arrays(F, a, names, 5) || check_pre(F, &pre))
        return NULL;
    if (momentum > 0.0f && !a[3])
        return PyErr_Format(PyExc_ValueError, "%s(): 'mom' is required when momentum > 0", F);
    if (centered && !a[4])
        return PyErr_Format(PyExc_ValueError, "%s(): 'mg' is required when centered", F);
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_rmsprop_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                               SIZE(a[0]), &pre, lr, rho, eps, momentum,
                                               OPT_FLOAT(a[3]), centered, OPT_FLOAT(a[4])));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_adam_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "m", "v", "lr", "beta_1", "beta_2", "epsilon", "step",
                             "vhat", "gscale", "clip", "decay", NULL};
    const char *F = "adam_update";
    PyArrayObject *a[5] = {NULL, NULL, NULL, NULL, NULL};
    float lr, b1, b2, eps;
    long long step;
    pc_opt_pre pre = PRE_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&ffffL|O&$fff", kwlist,
                                     STATE("w", &a[0]), GRAD("g", &a[1]), STATE("m", &a[2]),
                                     STATE("v", &a[3]), &lr, &b1, &b2, &eps, &step,
                                     OPT_STATE("vhat", &a[4]), &pre.gscale, &pre.clip,
                                     &pre.decay))
        return parse_error(F);
    if (check_step(F, step))
        return NULL;
    const char *names[] = {"w", "g", "m", "v", "vhat"};
    if (opt_arrays(F, a, names, 5) || check_pre(F, &pre))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_adam_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                            FLOAT(a[3]), OPT_FLOAT(a[4]), SIZE(a[0]), &pre, lr,
                                            b1, b2, eps, step));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_adamax_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "m", "u", "lr", "beta_1", "beta_2", "epsilon", "step",
                             "gscale", "clip", "decay", NULL};
    const char *F = "adamax_update";
    PyArrayObject *a[4];
    float lr, b1, b2, eps;
    long long step;
    pc_opt_pre pre = PRE_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&ffffL|$fff", kwlist, STATE("w", &a[0]),
                                     GRAD("g", &a[1]), STATE("m", &a[2]), STATE("u", &a[3]),
                                     &lr, &b1, &b2, &eps, &step, &pre.gscale, &pre.clip,
                                     &pre.decay))
        return parse_error(F);
    if (check_step(F, step))
        return NULL;
    const char *names[] = {"w", "g", "m", "u"};
    if (opt_arrays(F, a, names, 4) || check_pre(F, &pre))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_adamax_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                              FLOAT(a[3]), SIZE(a[0]), &pre, lr, b1, b2, eps,
                                              step));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_nadam_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "m", "v", "lr", "beta_1", "beta_2", "epsilon", "step",
                             "u_product", "gscale", "clip", "decay", NULL};
    const char *F = "nadam_update";
    PyArrayObject *a[4];
    float lr, b1, b2, eps;
    long long step;
    double u_product;
    pc_opt_pre pre = PRE_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&ffffLd|$fff", kwlist, STATE("w", &a[0]),
                                     GRAD("g", &a[1]), STATE("m", &a[2]), STATE("v", &a[3]),
                                     &lr, &b1, &b2, &eps, &step, &u_product, &pre.gscale,
                                     &pre.clip, &pre.decay))
        return parse_error(F);
    if (check_step(F, step))
        return NULL;
    if (!(fabs(u_product) < 1.0))
        return PyErr_Format(PyExc_ValueError, "%s(): 'u_product' must be in (-1, 1), got %g",
                            F, u_product);
    const char *names[] = {"w", "g", "m", "v"};
    if (opt_arrays(F, a, names, 4) || check_pre(F, &pre))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_nadam_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                             FLOAT(a[3]), SIZE(a[0]), &pre, lr, b1, b2, eps,
                                             step, u_product));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_adagrad_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "acc", "lr", "epsilon", "gscale", "clip", "decay", NULL};
    const char *F = "adagrad_update";
    PyArrayObject *a[3];
    float lr, eps;
    pc_opt_pre pre = PRE_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&ff|$fff", kwlist, STATE("w", &a[0]),
                                     GRAD("g", &a[1]), STATE("acc", &a[2]), &lr, &eps,
                                     &pre.gscale, &pre.clip, &pre.decay))
        return parse_error(F);
    const char *names[] = {"w", "g", "acc"};
    if (opt_arrays(F, a, names, 3) || check_pre(F, &pre))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_adagrad_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                               SIZE(a[0]), &pre, lr, eps));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_adadelta_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "acc_grad", "acc_delta", "lr", "rho", "epsilon",
                             "gscale", "clip", "decay", NULL};
    const char *F = "adadelta_update";
    PyArrayObject *a[4];
    float lr, rho, eps;
    pc_opt_pre pre = PRE_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&fff|$fff", kwlist, STATE("w", &a[0]),
                                     GRAD("g", &a[1]), STATE("acc_grad", &a[2]),
                                     STATE("acc_delta", &a[3]), &lr, &rho, &eps, &pre.gscale,
                                     &pre.clip, &pre.decay))
        return parse_error(F);
    const char *names[] = {"w", "g", "acc_grad", "acc_delta"};
    if (opt_arrays(F, a, names, 4) || check_pre(F, &pre))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_adadelta_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                                FLOAT(a[3]), SIZE(a[0]), &pre, lr, rho, eps));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_lion_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"w", "g", "m", "lr", "beta_1", "beta_2", "gscale", "clip", "decay",
                             NULL};
    const char *F = "lion_update";
    PyArrayObject *a[3];
    float lr, b1, b2;
    pc_opt_pre pre = PRE_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&fff|$fff", kwlist, STATE("w", &a[0]),
                                     GRAD("g", &a[1]), STATE("m", &a[2]), &lr, &b1, &b2,
                                     &pre.gscale, &pre.clip, &pre.decay))
        return parse_error(F);
    const char *names[] = {"w", "g", "m"};
    if (opt_arrays(F, a, names, 3) || check_pre(F, &pre))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    size_t bad;
    RUN_KERNEL_INTO(rt, bad, pc_lion_update(rt, FLOAT(a[0]), FLOAT(a[1]), FLOAT(a[2]),
                                            SIZE(a[0]), &pre, lr, b1, b2));
    return PyLong_FromSize_t(bad);
}

static PyObject *py_ema_update(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"average", "w", "momentum", NULL};
    const char *F = "ema_update";
    PyArrayObject *a[2];
    float momentum;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&f", kwlist, STATE("average", &a[0]),
                                     GRAD("w", &a[1]), &momentum))
        return parse_error(F);
    const char *names[] = {"average", "w"};
    if (opt_arrays(F, a, names, 2))
        return NULL;
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return PyErr_Format(PyExc_ValueError, "%s(): 'momentum' must be in [0, 1], got %g", F,
                            (double)momentum);
    pc_runtime *rt = runtime_of(m);
    Py_BEGIN_ALLOW_THREADS
    pc_runtime_enter(rt);
    pc_ema_update(rt, FLOAT(a[0]), FLOAT(a[1]), SIZE(a[0]), momentum);
    pc_runtime_leave(rt);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_grad_accumulate(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"acc", "g", "divisor", NULL};
    const char *F = "grad_accumulate";
    PyArrayObject *a[2];
    float divisor = 1.0f;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&|f", kwlist, STATE("acc", &a[0]),
                                     GRAD("g", &a[1]), &divisor))
        return parse_error(F);
    const char *names[] = {"acc", "g"};
    if (opt_arrays(F, a, names, 2))
        return NULL;
    if (!(divisor >= 1.0f) || !isfinite(divisor))
        return PyErr_Format(PyExc_ValueError, "%s(): 'divisor' must be a finite number >= 1, "
                            "got %g", F, (double)divisor);
    pc_runtime *rt = runtime_of(m);
    Py_BEGIN_ALLOW_THREADS
    pc_runtime_enter(rt);
    pc_grad_accumulate(rt, FLOAT(a[0]), FLOAT(a[1]), SIZE(a[0]), divisor);
    pc_runtime_leave(rt);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_sum_squares(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", NULL};
    const char *F = "sum_squares";
    PyArrayObject *a;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&", kwlist, IN_F32("x", -1, &a)))
        return parse_error(F);
    pc_runtime *rt = runtime_of(m);
    double s;
    RUN_KERNEL_INTO(rt, s, pc_sum_squares(rt, FLOAT(a), SIZE(a)));
    return PyFloat_FromDouble(s);
}

#define PRE_DOC " Keyword-only: gscale=1 (gradient scale), clip=inf (clip by value), decay=0 " \
                "(lr * weight_decay). Returns the number of weights left unchanged because " \
                "their update was not finite."

PyMethodDef pc_methods_optimizers[] = {
    KW(sgd_update, "sgd_update(w, g, velocity, lr, momentum, nesterov=False): Keras SGD." PRE_DOC),
    KW(rmsprop_update, "rmsprop_update(w, g, v, lr, rho, epsilon, momentum=0, mom=None, "
                       "centered=False, mg=None): Keras RMSprop." PRE_DOC),
    KW(adam_update, "adam_update(w, g, m, v, lr, beta_1, beta_2, epsilon, step, vhat=None): "
                    "Keras Adam (amsgrad with vhat)." PRE_DOC),
    KW(adamax_update, "adamax_update(w, g, m, u, lr, beta_1, beta_2, epsilon, step): "
                      "Keras Adamax." PRE_DOC),
    KW(nadam_update, "nadam_update(w, g, m, v, lr, beta_1, beta_2, epsilon, step, u_product): "
                     "Keras Nadam; u_product includes this step's momentum factor." PRE_DOC),
    KW(adagrad_update, "adagrad_update(w, g, acc, lr, epsilon): Keras Adagrad." PRE_DOC),
    KW(adadelta_update, "adadelta_update(w, g, acc_grad, acc_delta, lr, rho, epsilon): "
                        "Keras Adadelta." PRE_DOC),
    KW(lion_update, "lion_update(w, g, m, lr, beta_1, beta_2): Keras Lion." PRE_DOC),
    KW(ema_update, "ema_update(average, w, momentum): average = momentum * average + "
                   "(1 - momentum) * w."),
    KW(grad_accumulate, "grad_accumulate(acc, g, divisor=1): acc = (g + acc) / divisor."),
    KW(sum_squares, "sum_squares(x) -> float: the sum of x**2 in double, bit-identical for "
                    "any thread count."),
    {NULL, NULL, 0, NULL}};
