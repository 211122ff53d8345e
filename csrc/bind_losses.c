/*
 * bind_losses.c - the binding's entry points for losses (see binding.h).
 */
#include "binding.h"

#include <math.h>

/* Labels must be class indices of the scores' rows. */
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

/* The optional per-row weights (float32 (rows,)) and per-row losses (float64 (rows,)). */
#define ROW_WEIGHTS(out) PC_ARG("row_weights", NPY_FLOAT32, 1, IN, 1, out)
#define ROW_LOSSES(out) OPT_OUT_F64("row_losses", 1, out)

static int check_rows_args(const char *F, int rows, PyArrayObject *w, PyArrayObject *l)
{
    return (w && expect_shape(F, "row_weights", w, 1, &rows)) ||
           (l && expect_shape(F, "row_losses", l, 1, &rows));
}

/* The four crossentropies share one entry point. Arguments, in order:
 *   scores  (N, C) float32: logits ("softmax_" variants) or probabilities
 *   truth   labels int64 (N,) (sparse variants) or targets float32 (N, C)
 *   probs   (N, C) float32 output of the softmax (softmax variants only)
 *   grad    (N, C) float32 output, or None
 * then, by keyword, row_weights (N,) float32 (default 1/N each) and row_losses (N,) float64
 * output; returns sum_r w_r loss_r. */
typedef struct {
    const char *name;
    int sparse, softmax;
    char *kwlist[7];
} loss_spec;

static const loss_spec LOSS_SOFTMAX_XENT_SPARSE = {
    "softmax_xent_sparse", 1, 1,
    {"logits", "labels", "probs", "dlogits", "row_weights", "row_losses", NULL}};
static const loss_spec LOSS_XENT_SPARSE = {
    "xent_sparse", 1, 0, {"probs", "labels", "dprobs", "row_weights", "row_losses", NULL, NULL}};
static const loss_spec LOSS_SOFTMAX_XENT = {
    "softmax_xent", 0, 1,
    {"logits", "targets", "probs", "dlogits", "row_weights", "row_losses", NULL}};
static const loss_spec LOSS_XENT = {
    "xent", 0, 0, {"probs", "targets", "dprobs", "row_weights", "row_losses", NULL, NULL}};

static PyObject *crossentropy(PyObject *m, const loss_spec *L, PyObject *args, PyObject *kw)
{
    const char *F = L->name;
    char *const *names = L->kwlist;
    PyArrayObject *a[6] = {NULL, NULL, NULL, NULL, NULL, NULL};   /* scores truth probs grad w l */
    const char *grad_name = names[L->softmax ? 3 : 2];
    pc_arg truth = {F, names[1], L->sparse ? NPY_INT64 : NPY_FLOAT32, L->sparse ? 1 : 2, IN, 0,
                    &a[1]};
    int ok = L->softmax
        ? PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&|$O&O&", (char **)names,
                                      IN_F32(names[0], 2, &a[0]), pc_arg_array, &truth,
                                      OUT_F32(names[2], 2, &a[2]),
                                      OPT_OUT_F32(grad_name, 2, &a[3]), ROW_WEIGHTS(&a[4]),
                                      ROW_LOSSES(&a[5]))
        : PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&|$O&O&", (char **)names,
                                      IN_F32(names[0], 2, &a[0]), pc_arg_array, &truth,
                                      OPT_OUT_F32(grad_name, 2, &a[3]), ROW_WEIGHTS(&a[4]),
                                      ROW_LOSSES(&a[5]));
    if (!ok || (a[2] && same_shape(F, a[0], names[0], a[2], names[2])) ||
        (a[3] && same_shape(F, a[0], names[0], a[3], grad_name)))
        return NULL;
    const int n = dim(a[0], 0), classes = dim(a[0], 1);
    if (check_rows_args(F, n, a[4], a[5]))
        return NULL;
    if (L->sparse ? check_labels(F, a[1], n, classes) : same_shape(F, a[0], names[0], a[1], names[1]))
        return NULL;
    const char *all_names[] = {names[0], names[1], "row_weights",
                               L->softmax ? names[2] : "", grad_name, "row_losses"};
    PyArrayObject *order[6] = {a[0], a[1], a[4], a[2], a[3], a[5]};
    if (check_disjoint(F, order, all_names, 6, 3))
        return NULL;
    const float *scores = FLOAT(a[0]), *row_w = OPT_FLOAT(a[4]);
    float *probs = OPT_FLOAT(a[2]), *grad = OPT_FLOAT(a[3]);
    double *row_loss = a[5] ? (double *)PyArray_DATA(a[5]) : NULL;
    double loss = 0.0;
    int rc;
    pc_runtime *rt = runtime_of(m);
    if (L->sparse) {
        const int64_t *labels = (const int64_t *)PyArray_DATA(a[1]);
        if (L->softmax)
            RUN_KERNEL(rt, pc_softmax_xent_sparse(rt, scores, labels, n, classes, row_w, probs,
                                                  grad, row_loss, &loss));
        else
            RUN_KERNEL(rt, pc_xent_sparse(rt, scores, labels, n, classes, row_w, grad, row_loss,
                                          &loss));
    } else {
        const float *targets = FLOAT(a[1]);
        if (L->softmax)
            RUN_KERNEL(rt, pc_softmax_xent(rt, scores, targets, n, classes, row_w, probs, grad,
                                           row_loss, &loss));
        else
            RUN_KERNEL(rt, pc_xent(rt, scores, targets, n, classes, row_w, grad, row_loss, &loss));
    }
    if (rc)
        return kernel_result(rc, F);
    return PyFloat_FromDouble(loss);
}

#define LOSS_ENTRY(fn, spec)                                                            \
    static PyObject *py_##fn(PyObject *m, PyObject *args, PyObject *kw)                 \
    {                                                                                   \
        return crossentropy(m, &spec, args, kw);                                        \
    }
LOSS_ENTRY(softmax_xent_sparse, LOSS_SOFTMAX_XENT_SPARSE)
LOSS_ENTRY(xent_sparse, LOSS_XENT_SPARSE)
LOSS_ENTRY(softmax_xent, LOSS_SOFTMAX_XENT)
LOSS_ENTRY(xent, LOSS_XENT)
#undef LOSS_ENTRY

/* ---- the other losses ---------------------------------------------------------------------- */
static const struct {
    const char *name;
    pc_loss_kind kind;
} LOSS_KINDS[] = {
    {"mse", PC_LOSS_MSE}, {"mae", PC_LOSS_MAE}, {"mape", PC_LOSS_MAPE}, {"msle", PC_LOSS_MSLE},
    {"huber", PC_LOSS_HUBER}, {"logcosh", PC_LOSS_LOGCOSH}, {"poisson", PC_LOSS_POISSON},
    {"hinge", PC_LOSS_HINGE}, {"squared_hinge", PC_LOSS_SQUARED_HINGE}, {"bce", PC_LOSS_BCE},
    {"bce_logits", PC_LOSS_BCE_LOGITS}, {"focal", PC_LOSS_FOCAL},
    {"focal_logits", PC_LOSS_FOCAL_LOGITS}, {"kld", PC_LOSS_KLD}, {"cosine", PC_LOSS_COSINE},
    {"categorical_hinge", PC_LOSS_CATEGORICAL_HINGE}};

static PyObject *py_loss_rows(PyObject *m, PyObject *args, PyObject *kw)
{
    static const char *F = "loss_rows";
    static char *names[] = {"kind", "y_pred", "y_true", "grad", "row_weights", "row_losses",
                            "probs", "delta", "alpha", "gamma", "balance", NULL};
    PyObject *okind;
    PyArrayObject *a[6] = {NULL, NULL, NULL, NULL, NULL, NULL};   /* pred truth w | grad l probs */
    pc_loss_params prm = {1.0f, 0.25f, 2.0f, 0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO&O&|O&$O&O&O&fffp", names, &okind,
                                     IN_F32("y_pred", 2, &a[0]), IN_F32("y_true", 2, &a[1]),
                                     OPT_OUT_F32("grad", 2, &a[3]), ROW_WEIGHTS(&a[2]),
                                     ROW_LOSSES(&a[4]), OPT_OUT_F32("probs", 2, &a[5]),
                                     &prm.delta, &prm.alpha, &prm.gamma, &prm.balance))
        return parse_error(F);
    const char *kind_name = kind_string(F, okind);
    if (!kind_name)
        return NULL;
    int kind = -1;
    for (size_t i = 0; i < sizeof LOSS_KINDS / sizeof LOSS_KINDS[0]; i++)
        if (strcmp(kind_name, LOSS_KINDS[i].name) == 0)
            kind = (int)LOSS_KINDS[i].kind;
    if (kind < 0)
        return PyErr_Format(PyExc_ValueError, "%s(): unknown loss kind '%s'", F, kind_name);
    if (same_shape(F, a[0], "y_pred", a[1], "y_true") ||
        (a[3] && same_shape(F, a[0], "y_pred", a[3], "grad")) ||
        (a[5] && same_shape(F, a[0], "y_pred", a[5], "probs")))
        return NULL;
    const int rows = dim(a[0], 0), cols = dim(a[0], 1);
    if (check_rows_args(F, rows, a[2], a[4]))
        return NULL;
    if (a[5] && kind != PC_LOSS_BCE_LOGITS && kind != PC_LOSS_FOCAL_LOGITS)
        return PyErr_Format(PyExc_ValueError, "%s(): 'probs' is written only by the kinds "
                            "'bce_logits' and 'focal_logits', not '%s'", F, kind_name);
    if (!(prm.delta >= 0.0f) || !isfinite(prm.delta) || !(prm.gamma >= 0.0f) ||
        !isfinite(prm.gamma) || !isfinite(prm.alpha))
        return PyErr_Format(PyExc_ValueError, "%s(): expected finite delta >= 0, gamma >= 0 and "
                            "alpha; got delta=%g, gamma=%g, alpha=%g", F, (double)prm.delta,
                            (double)prm.gamma, (double)prm.alpha);
    const char *all_names[] = {"y_pred", "y_true", "row_weights", "grad", "row_losses", "probs"};
    if (check_disjoint(F, a, all_names, 6, 3))
        return NULL;
    pc_runtime *rt = runtime_of(m);
    double loss = 0.0;
    int rc;
    RUN_KERNEL(rt, pc_loss_rows(rt, (pc_loss_kind)kind, &prm, FLOAT(a[0]), FLOAT(a[1]),
                                (size_t)rows, (size_t)cols, OPT_FLOAT(a[2]),
                                a[4] ? (double *)PyArray_DATA(a[4]) : NULL, OPT_FLOAT(a[3]),
                                OPT_FLOAT(a[5]), &loss));
    if (rc)
        return kernel_result(rc, F);
    return PyFloat_FromDouble(loss);
}

PyMethodDef pc_methods_losses[] = {
    KW(softmax_xent_sparse, "softmax_xent_sparse(logits, labels, probs, dlogits, *, "
                            "row_weights=None, row_losses=None) -> sum_r w_r loss_r (w_r = 1/N)."),
    KW(xent_sparse, "xent_sparse(probs, labels, dprobs, *, row_weights=None, row_losses=None) "
                    "-> weighted loss (rows renormalised, clipped)."),
    KW(softmax_xent, "softmax_xent(logits, targets, probs, dlogits, *, row_weights=None, "
                     "row_losses=None) -> weighted loss."),
    KW(xent, "xent(probs, targets, dprobs, *, row_weights=None, row_losses=None) -> weighted "
             "loss."),
    KW(loss_rows, "loss_rows(kind, y_pred, y_true, grad=None, *, row_weights=None, "
                  "row_losses=None, probs=None, delta=1.0, alpha=0.25, gamma=2.0, balance=False)"
                  " -> sum_r w_r loss_r; kinds: mse mae mape msle huber logcosh poisson hinge "
                  "squared_hinge bce bce_logits focal focal_logits kld cosine categorical_hinge."),
    {NULL, NULL, 0, NULL}};
