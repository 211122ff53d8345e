/*
 * binding.h - what every file of the binding shares: the argument converters, the runtime of
 * the module, and the macro that runs a kernel without the GIL.
 *
 * The binding (`pycnn._C`) is split by kernel family: bind_<family>.c defines the entry points
 * of one family and its method table pc_methods_<family>; pycnn_module.c defines the module and
 * adds every family's table. Each entry point converts its arguments once, as it parses them,
 * with the "O&" converter pc_arg_array (get_array() underneath, which names the function, the
 * argument and what was expected in every error), checks that
 * the shapes fit together, releases the GIL, runs one kernel inside pc_runtime_enter/leave, and
 * turns the kernel's error code into a Python exception. Nothing here allocates array memory:
 * outputs are created by the caller and overwritten. The contract is docs/kernels.md.
 */
#ifndef PYCNN_BINDING_H
#define PYCNN_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pycnn_ARRAY_API
#ifndef PYCNN_BINDING_IMPORTS_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pycnn.h"

typedef struct {
    pc_runtime *rt;
} module_state;

/* Array modes of get_array(). */
enum { IN = 0, OUT = 1 };

#define FLOAT(a) ((float *)PyArray_DATA(a))
#define OPT_FLOAT(a) ((a) ? (float *)PyArray_DATA(a) : NULL)

/* result = call, without the GIL, with the runtime entered */
#define RUN_KERNEL_INTO(rt, result, call)                                               \
    do {                                                                                \
        Py_BEGIN_ALLOW_THREADS                                                          \
        pc_runtime_enter(rt);                                                           \
        result = (call);                                                                \
        pc_runtime_leave(rt);                                                           \
        Py_END_ALLOW_THREADS                                                            \
    } while (0)
#define RUN_KERNEL(rt, call) RUN_KERNEL_INTO(rt, rc, call)
/* The end of an entry point: run call (which may name the runtime rt) as RUN_KERNEL does and
 * return its pc_status as kernel_result(rc, F) does. */
#define RETURN_KERNEL(m, F, call)                                                           \
    do {                                                                                \
        pc_runtime *rt = runtime_of(m);                                                 \
        int rc;                                                                         \
        RUN_KERNEL(rt, call);                                                           \
        return kernel_result(rc, F);                                                    \
    } while (0)

/* An entry point taking positional and keyword arguments: {"name", py_name, ..., doc}. */
#define KW(name, doc) {#name, (PyCFunction)(void (*)(void))py_##name, METH_VARARGS | METH_KEYWORDS, doc}

/* Defines py_<name> as the entry point `common` (m, args, kw, variant): entry points that
 * share one body, such as a kernel and its adjoint. */
#define KW_VARIANT(name, common, variant)                                               \
    static PyObject *py_##name(PyObject *m, PyObject *args, PyObject *kw)               \
    {                                                                                   \
        return common(m, args, kw, variant);                                            \
    }

/* The runtime of the module the entry point belongs to. */
pc_runtime *runtime_of(PyObject *module);

/* obj must be an aligned, native-byte-order, C-contiguous, non-empty ndarray of `typenum` with
 * `ndim` dimensions (ndim < 0: any rank); OUT arrays must be writeable. None is accepted when
 * `optional`, giving *out = NULL. Returns 0, or -1 with an exception set. */
int get_array(PyObject *obj, const char *func, const char *name, int typenum, int ndim, int mode, int optional, PyArrayObject **out);
/* One array argument of an entry point, as PyArg_ParseTupleAndKeywords' "O&" converter
 * pc_arg_array takes it: the entry point (func) and the argument's name for the errors, the
 * expected dtype and rank (-1: any), IN or OUT, whether None is accepted, and where to store
 * the array (NULL for None; an optional argument not given keeps what *out held). Write them
 * with the macros below, one per kind of argument, in an entry point whose name is in `F`:
 *
 *     PyArrayObject *x, *b = NULL, *y;
 *     if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", kwlist, IN_F32("x", 2, &x),
 *                                      OPT_IN_F32("b", 1, &b), OUT_F32("y", 2, &y)))
 *         return NULL;
 */
typedef struct {
    const char *func, *name;
    int typenum, ndim;
    int mode, optional;
    PyArrayObject **out;
} pc_arg;

/* The "O&" converter: get_array() with a pc_arg's expectations; 1 on success, else 0 with the
 * exception set. */
int pc_arg_array(PyObject *obj, void *arg);

#define PC_ARG(name, type, ndim, mode, optional, out) \
    pc_arg_array, &(pc_arg){F, name, type, ndim, mode, optional, out}
#define IN_F32(name, ndim, out) PC_ARG(name, NPY_FLOAT32, ndim, IN, 0, out)
#define OUT_F32(name, ndim, out) PC_ARG(name, NPY_FLOAT32, ndim, OUT, 0, out)
#define OPT_IN_F32(name, ndim, out) PC_ARG(name, NPY_FLOAT32, ndim, IN, 1, out)
#define OPT_OUT_F32(name, ndim, out) PC_ARG(name, NPY_FLOAT32, ndim, OUT, 1, out)
#define IN_I32(name, ndim, out) PC_ARG(name, NPY_INT32, ndim, IN, 0, out)
#define OUT_I32(name, ndim, out) PC_ARG(name, NPY_INT32, ndim, OUT, 0, out)
#define OPT_OUT_I32(name, ndim, out) PC_ARG(name, NPY_INT32, ndim, OUT, 1, out)
#define IN_I64(name, ndim, out) PC_ARG(name, NPY_INT64, ndim, IN, 0, out)
#define IN_U8(name, ndim, out) PC_ARG(name, NPY_UINT8, ndim, IN, 0, out)
#define OPT_OUT_F64(name, ndim, out) PC_ARG(name, NPY_FLOAT64, ndim, OUT, 1, out)
#define OUT_F64(name, ndim, out) PC_ARG(name, NPY_FLOAT64, ndim, OUT, 0, out)

/* A pair of ints argument (strides, pads, pool, ...) as the "O&" converter pc_arg_pair takes
 * it: parse_pair() into v[0], v[1]; written PAIR("strides", v) in an entry point named F. */
typedef struct {
    const char *func, *name;
    int *v;
} pc_pair;
int pc_arg_pair(PyObject *obj, void *arg);
#define PAIR(name, v) pc_arg_pair, &(pc_pair){F, name, v}

/* The geometry of a 2-D convolution, checked once for every convolution entry point (plain,
 * dilated, grouped, transposed, depthwise, fused with pooling): the input side in[n][h][w][c]
 * (named in_name in errors), the kernel w[kh][kw][c/groups][o], an output side of oh x ow
 * cells, g = (sh, sw, pt, pl, dh, dw) and groups. Fills s; checks strides >= 1, pads >= 0,
 * dilation >= 1, groups >= 1 dividing c and o, w's input channels against c, and that every
 * size and the last (dilated) window stay within int range. 0, or -1 with a ValueError. */
int conv_geometry(const char *F, PyArrayObject *in, const char *in_name, PyArrayObject *w,
                  int oh, int ow, const int g[6], int groups, pc_convg_shape *s);

/* The arrays of a convolution's forward pass, as every such entry point takes them first:
 * x, w (in), b (in, optional), y (out). Parse them with CONV_FWD_FMT and CONV_FWD(a). */
typedef struct {
    PyArrayObject *x, *w, *b, *y;
} conv_fwd;
#define CONV_FWD_FMT "O&O&O&O&"
#define CONV_FWD(a)                                                                          \
    IN_F32("x", 4, &(a).x), IN_F32("w", 4, &(a).w), OPT_IN_F32("b", 1, &(a).b),             \
        OUT_F32("y", 4, &(a).y)
/* What every convolution's forward pass checks after its geometry: b (if given) holds one
 * value per filter, and y shares memory with none of x, w, b. */
int check_conv_fwd(const char *F, const conv_fwd *a, int filters);

/* The arrays of a convolution's backward pass, as every such entry point takes them first:
 * x, w, dy (in), dx (out, optional), dw (out), db (out, optional); y (a fused relu's output,
 * optional, parsed later) starts NULL. Parse them with CONV_GRADS_FMT and CONV_GRADS(a). */
typedef struct {
    PyArrayObject *x, *w, *dy, *dx, *dw, *db, *y;
} conv_grads;
#define CONV_GRADS_FMT "O&O&O&O&O&O&"
#define CONV_GRADS(a)                                                                        \
    IN_F32("x", 4, &(a).x), IN_F32("w", 4, &(a).w), IN_F32("dy", 4, &(a).dy),              \
        OPT_OUT_F32("dx", 4, &(a).dx), OUT_F32("dw", 4, &(a).dw), OPT_OUT_F32("db", 1, &(a).db)
/* What every convolution's backward pass checks after its geometry: dx (if given) shaped like
 * x, dw like w, db (if given) one per filter of the forward layer, y (if given) like dy; and
 * dx, dw, db share memory with no other array of a (nor with each other). */
int check_conv_grads(const char *F, const conv_grads *a, int filters);

/* Axis d's size (every size fits an int: get_array checked). */
int dim(PyArrayObject *a, int d);
/* Whether two arrays share memory (NULL shares nothing). */
int overlaps(PyArrayObject *a, PyArrayObject *b);
/* Outputs (from first_out on) must not share memory with inputs or with each other. */
int check_disjoint(const char *func, PyArrayObject **arrs, const char **names, int n, int first_out);
/* a's first ndim axes must be want[] (-1: any). */
int expect_shape(const char *func, const char *name, PyArrayObject *a, int ndim, const int *want);
/* After a failed argument parse: a number out of range is a ValueError, like any bad value. */
PyObject *parse_error(const char *func);
/* A kernel's pc_status as None or a Python exception. */
PyObject *kernel_result(int rc, const char *func);
/* An activation name as pc_act (fused_only: only those a kernel's epilogue applies). */
int parse_act(const char *func, const char *s, pc_act *act, int fused_only);
/* The kernels index rows as o*s + k - p in int: that must not overflow for any output o. */
int window_fits(int out, int stride, int window, int pad);
/* A pair of ints (a tuple or list of two), named in the error. */
int parse_pair(PyObject *obj, const char *func, const char *name, int *a, int *b);
/* Both values of a window, stride or pad pair must be >= min. */
int check_window(const char *func, const char *what, int a, int b, int min);
/* A str argument 'kind' as UTF-8. */
const char *kind_string(const char *F, PyObject *obj);
/* a and b must have the same shape. */
int same_shape(const char *F, PyArrayObject *a, const char *an, PyArrayObject *b, const char *bn);

/* epsilon (a normalization's): a finite float >= 0, else -1 with a ValueError. */
int epsilon_arg(const char *F, PyObject *obj, float *eps);
/* a (c,) float32 array of channel values, or NULL (None): 0, else -1 with the error set. */
int channel_vector(const char *F, const char *name, PyArrayObject *a, int c);

/* The method tables of the kernel families, each ended by a {NULL} entry. */
extern PyMethodDef pc_methods_dense[];   /* gemm and dense layers */
extern PyMethodDef pc_methods_conv[];   /* convolution, pooling, and the two fused */
extern PyMethodDef pc_methods_activations[];   /* activations */
extern PyMethodDef pc_methods_losses[];   /* losses */
extern PyMethodDef pc_methods_metrics[];   /* metrics: confusion counts */
extern PyMethodDef pc_methods_optimizers[];   /* optimizer updates */
extern PyMethodDef pc_methods_data[];   /* batches */
extern PyMethodDef pc_methods_normalization[];   /* batch/layer normalization, global pooling */
extern PyMethodDef pc_methods_merge[];   /* merge layers, concatenation */
extern PyMethodDef pc_methods_resample[];   /* upsampling, padding, cropping, permutation */
extern PyMethodDef pc_methods_augment[];   /* image augmentation */
extern PyMethodDef pc_methods_conv_general[];   /* dilated, grouped, transposed, depthwise conv */

#endif
