/*
 * bind_metrics.c - the binding's entry points for metrics' per-batch counting (see binding.h).
 */
#include "binding.h"

/* confusion_thresholds(y_pred, y_true, weights, thresholds, counts, evenly=False,
 *                      with_epsilon=False): y_pred, y_true, weights (or None) float32 (N, L);
 * thresholds float32 (T,); counts float64 (4, L, T) overwritten with tp, fp, tn, fn. */
static PyObject *py_confusion_thresholds(PyObject *m, PyObject *args, PyObject *kw)
{
    static const char *F = "confusion_thresholds";
    static char *names[] = {"y_pred", "y_true", "weights", "thresholds", "counts", "evenly",
                            "with_epsilon", NULL};
    PyArrayObject *a[5] = {NULL, NULL, NULL, NULL, NULL};
    int evenly = 0, with_eps = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&|pp", names,
                                     IN_F32("y_pred", 2, &a[0]), IN_F32("y_true", 2, &a[1]),
                                     OPT_IN_F32("weights", 2, &a[2]),
                                     IN_F32("thresholds", 1, &a[3]),
                                     OUT_F64("counts", 3, &a[4]), &evenly, &with_eps) ||
        same_shape(F, a[0], "y_pred", a[1], "y_true") ||
        (a[2] && same_shape(F, a[0], "y_pred", a[2], "weights")))
        return NULL;
    const int n = dim(a[0], 0), labels = dim(a[0], 1), nthr = dim(a[3], 0);
    const int want[3] = {4, labels, nthr};
    if (expect_shape(F, "counts", a[4], 3, want))
        return NULL;
    if (evenly && nthr < 2)
        return PyErr_Format(PyExc_ValueError, "%s(): evenly spaced thresholds need at least 2, "
                            "got %d", F, nthr);
    const char *all_names[] = {"y_pred", "y_true", "weights", "thresholds", "counts"};
    if (check_disjoint(F, a, all_names, 5, 4))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    pc_confusion_thresholds(FLOAT(a[0]), FLOAT(a[1]), OPT_FLOAT(a[2]), (size_t)n,
                            (size_t)labels, FLOAT(a[3]), (size_t)nthr, evenly, with_eps,
                            (double *)PyArray_DATA(a[4]));
    Py_END_ALLOW_THREADS
    (void)m;
    Py_RETURN_NONE;
}

/* confusion_matrix(y_true, y_pred, weights, cm): int64 (N,) class indices, weights float32 (N,)
 * or None; cm float64 (K, K) is ADDED to at [y_true[i], y_pred[i]]. */
static PyObject *py_confusion_matrix(PyObject *m, PyObject *args, PyObject *kw)
{
    static const char *F = "confusion_matrix";
    static char *names[] = {"y_true", "y_pred", "weights", "cm", NULL};
    PyArrayObject *a[4] = {NULL, NULL, NULL, NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&", names, IN_I64("y_true", 1, &a[0]),
                                     IN_I64("y_pred", 1, &a[1]), OPT_IN_F32("weights", 1, &a[2]),
                                     OUT_F64("cm", 2, &a[3])) ||
        same_shape(F, a[0], "y_true", a[1], "y_pred") ||
        (a[2] && same_shape(F, a[0], "y_true", a[2], "weights")))
        return NULL;
    const int n = dim(a[0], 0), k = dim(a[3], 0);
    if (dim(a[3], 1) != k)
        return PyErr_Format(PyExc_ValueError, "%s(): 'cm' must be square, got %d x %d", F, k,
                            dim(a[3], 1));
    for (int j = 0; j < 2; j++) {
        const int64_t *v = (const int64_t *)PyArray_DATA(a[j]);
        for (int i = 0; i < n; i++)
            if (v[i] < 0 || v[i] >= k)
                return PyErr_Format(PyExc_ValueError, "%s(): %s[%d] = %lld is out of range: "
                                    "expected a class index in [0, %d)", F, names[j], i,
                                    (long long)v[i], k);
    }
    const char *all_names[] = {"y_true", "y_pred", "weights", "cm"};
    if (check_disjoint(F, a, all_names, 4, 3))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    pc_confusion_matrix((const int64_t *)PyArray_DATA(a[0]), (const int64_t *)PyArray_DATA(a[1]),
                        OPT_FLOAT(a[2]), (size_t)n, (size_t)k, (double *)PyArray_DATA(a[3]));
    Py_END_ALLOW_THREADS
    (void)m;
    Py_RETURN_NONE;
}

PyMethodDef pc_methods_metrics[] = {
    KW(confusion_thresholds, "confusion_thresholds(y_pred, y_true, weights, thresholds, counts, "
                             "evenly=False, with_epsilon=False): tp, fp, tn, fn per label and "
                             "threshold into counts (4, L, T)."),
    KW(confusion_matrix, "confusion_matrix(y_true, y_pred, weights, cm): cm[t, p] += w."),
    {NULL, NULL, 0, NULL}};
