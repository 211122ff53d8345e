/*
 * bind_data.c - the binding's entry points for batches (see binding.h).
 */
#include "binding.h"

static PyObject *py_take_rows(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"x", "indices", "out", NULL};
    const char *F = "take_rows";
    PyArrayObject *x, *idx, *out;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", kwlist, IN_F32("x", -1, &x),
                                     IN_I64("indices", 1, &idx), OUT_F32("out", -1, &out)))
        return parse_error(F);
    if (PyArray_NDIM(out) != PyArray_NDIM(x))
        return PyErr_Format(PyExc_ValueError, "%s(): argument 'out' must have the rank of 'x' "
                            "(%d), got rank %d", F, PyArray_NDIM(x), PyArray_NDIM(out));
    const int n = dim(idx, 0);
    int want[NPY_MAXDIMS];
    want[0] = n;
    for (int d = 1; d < PyArray_NDIM(x); d++)
        want[d] = dim(x, d);
    if (expect_shape(F, "out", out, PyArray_NDIM(x), want))
        return NULL;
    PyArrayObject *arrs[] = {x, idx, out};
    const char *names[] = {"x", "indices", "out"};
    if (check_disjoint(F, arrs, names, 3, 2))
        return NULL;
    const int64_t *ix = (const int64_t *)PyArray_DATA(idx);
    const int64_t rows = PyArray_DIM(x, 0);
    for (int r = 0; r < n; r++)
        if (ix[r] < 0 || ix[r] >= rows)
            return PyErr_Format(PyExc_ValueError, "%s(): indices[%d] = %lld is out of range for "
                                "'x' with %lld rows", F, r, (long long)ix[r], (long long)rows);
    pc_runtime *rt = runtime_of(m);
    const size_t row_bytes = (size_t)PyArray_NBYTES(x) / (size_t)rows;
    Py_BEGIN_ALLOW_THREADS
    pc_runtime_enter(rt);
    pc_gather_rows(rt, PyArray_DATA(x), row_bytes, ix, n, PyArray_DATA(out));
    pc_runtime_leave(rt);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyMethodDef pc_methods_data[] = {
    KW(take_rows, "take_rows(x, indices, out): out[r] = x[indices[r]] (float32 rows, int64 "
                  "indices in range)."),
    {NULL, NULL, 0, NULL}};
