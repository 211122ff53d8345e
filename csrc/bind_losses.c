/*
 * bind_losses.c - the binding's entry points for losses (see binding.h).
 */
#include "binding.h"

/* The four crossentropies share one entry point. Arguments, in order:
 *   scores  (N, C) float32: logits ("softmax_" variants) or probabilities
 *   truth   labels int64 (N,) (sparse variants) or targets float32 (N, C)
 *   probs   (N, C) float32 output of the softmax (softmax variants only)
 *   grad    (N, C) float32 output, or None
 * and the mean loss is returned. */
static int check_labels(const char *F, PyArrayObject *labels, int n, int classes)
{
    if (expect_shape(F, "labels", labels, 1, &n))
        return -1;
    const int64_t *l = (const int64_t *)PyArray_DATA(labels);
    for (int i = 0; i < n; i++)
        if (l[i] < 0 || l[i] >= classes) {
            PyErr_Format(PyExc_ValueError, "%s(): labels[%d] = %lld is out of range: expected "
                         "a class index in [0, %d)", F, i, (long long)l[i], classes);
            return -1;
        }
    return 0;
}

typedef struct {
    const char *name;
    int sparse, softmax;
    char *kwlist[5];
} loss_spec;

static const loss_spec LOSS_SOFTMAX_XENT_SPARSE = {
    "softmax_xent_sparse", 1, 1, {"logits", "labels", "probs", "dlogits", NULL}};
static const loss_spec LOSS_XENT_SPARSE = {
    "xent_sparse", 1, 0, {"probs", "labels", "dprobs", NULL, NULL}};
static const loss_spec LOSS_SOFTMAX_XENT = {
    "softmax_xent", 0, 1, {"logits", "targets", "probs", "dlogits", NULL}};
static const loss_spec LOSS_XENT = {
    "xent", 0, 0, {"probs", "targets", "dprobs", NULL, NULL}};

static PyObject *crossentropy(const loss_spec *L, PyObject *args, PyObject *kw)
{
    const char *F = L->name;
    char *const *names = L->kwlist;
    PyObject *o[4] = {NULL, NULL, Py_None, Py_None};
    PyArrayObject *a[4] = {NULL, NULL, NULL, NULL};   /* scores, truth, probs, grad */
    int ok = L->softmax
        ? PyArg_ParseTupleAndKeywords(args, kw, "OOOO", (char **)names, &o[0], &o[1], &o[2], &o[3])
        : PyArg_ParseTupleAndKeywords(args, kw, "OOO", (char **)names, &o[0], &o[1], &o[3]);
    if (!ok)
        return NULL;
    const char *grad_name = names[L->softmax ? 3 : 2];
    if (get_array(o[0], F, names[0], NPY_FLOAT32, 2, IN, 0, &a[0]) ||
        get_array(o[1], F, names[1], L->sparse ? NPY_INT64 : NPY_FLOAT32, L->sparse ? 1 : 2, IN,
                  0, &a[1]) ||
        (L->softmax && get_array(o[2], F, names[2], NPY_FLOAT32, 2, OUT, 0, &a[2])) ||
        get_array(o[3], F, grad_name, NPY_FLOAT32, 2, OUT, 1, &a[3]) ||
        (a[2] && same_shape(F, a[0], names[0], a[2], names[2])) ||
        (a[3] && same_shape(F, a[0], names[0], a[3], grad_name)))
        return NULL;
    const int n = dim(a[0], 0), classes = dim(a[0], 1);
    if (L->sparse ? check_labels(F, a[1], n, classes) : same_shape(F, a[0], names[0], a[1], names[1]))
        return NULL;
    const char *all_names[] = {names[0], names[1], L->softmax ? names[2] : "", grad_name};
    if (check_disjoint(F, a, all_names, 4, 2))
        return NULL;
    const float *scores = FLOAT(a[0]);
    float *probs = OPT_FLOAT(a[2]), *grad = OPT_FLOAT(a[3]);
    double loss = 0.0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (L->sparse) {
        const int64_t *labels = (const int64_t *)PyArray_DATA(a[1]);
        rc = L->softmax ? pc_softmax_xent_sparse(scores, labels, n, classes, probs, grad, &loss)
                        : pc_xent_sparse(scores, labels, n, classes, grad, &loss);
    } else {
        const float *targets = FLOAT(a[1]);
        rc = L->softmax ? pc_softmax_xent(scores, targets, n, classes, probs, grad, &loss)
                        : pc_xent(scores, targets, n, classes, grad, &loss);
    }
    Py_END_ALLOW_THREADS
    if (rc)
        return kernel_result(rc, F);
    return PyFloat_FromDouble(loss);
}

#define LOSS_ENTRY(fn, spec)                                                            \
    static PyObject *py_##fn(PyObject *m, PyObject *args, PyObject *kw)                 \
    {                                                                                   \
        (void)m;                                                                        \
        return crossentropy(&spec, args, kw);                                           \
    }
LOSS_ENTRY(softmax_xent_sparse, LOSS_SOFTMAX_XENT_SPARSE)
LOSS_ENTRY(xent_sparse, LOSS_XENT_SPARSE)
LOSS_ENTRY(softmax_xent, LOSS_SOFTMAX_XENT)
LOSS_ENTRY(xent, LOSS_XENT)
#undef LOSS_ENTRY

PyMethodDef pc_methods_losses[] = {
    KW(softmax_xent_sparse, "softmax_xent_sparse(logits, labels, probs, dlogits) -> mean loss."),
    KW(xent_sparse, "xent_sparse(probs, labels, dprobs) -> mean loss."),
    KW(softmax_xent, "softmax_xent(logits, targets, probs, dlogits) -> mean loss."),
    KW(xent, "xent(probs, targets, dprobs) -> mean loss."),
    {NULL, NULL, 0, NULL}};
