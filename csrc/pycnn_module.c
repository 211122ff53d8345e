/*
 * pycnn_module.c - the CPython extension `pycnn._C`: the module, its runtime, and the method
 * tables of every kernel family (bind_*.c; shared converters in binding.c, see binding.h).
 */
#define PYCNN_BINDING_IMPORTS_NUMPY
#include "binding.h"

/* ---- runtime ----------------------------------------------------------------------------------- */
static PyObject *py_num_threads(PyObject *m, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(runtime_of(m)->nthreads);
}

static PyObject *py_set_num_threads(PyObject *m, PyObject *arg)
{
    int overflow = 0;
    long n = PyLong_Check(arg) ? PyLong_AsLongAndOverflow(arg, &overflow) : -1;
    if (!PyLong_Check(arg))
        return PyErr_Format(PyExc_TypeError, "set_num_threads(): expected an int, got %s",
                            Py_TYPE(arg)->tp_name);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (overflow)
        n = -1;
    if (n < 1 || n > 1024)
        return PyErr_Format(PyExc_ValueError, "set_num_threads(): expected 1 <= n <= 1024, "
                            "got %ld", n);
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_set_num_threads(rt, (int)n));
    return kernel_result(rc, "set_num_threads");
}

static PyObject *py_isa(PyObject *m, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(pc_isa_name(runtime_of(m)->ukernel.isa));
}

static PyObject *py_loop_isa(PyObject *m, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(pc_isa_name(pc_loop_isa(runtime_of(m))));
}

static PyObject *py_best_isa(PyObject *m, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(pc_isa_name(runtime_of(m)->best_isa));
}

static PyObject *py_set_isa(PyObject *m, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name)
        return NULL;
    pc_isa isa;
    if (strcmp(name, "avx512") == 0) isa = PC_ISA_AVX512;
    else if (strcmp(name, "avx2") == 0) isa = PC_ISA_AVX2;
    else if (strcmp(name, "generic") == 0) isa = PC_ISA_GENERIC;
    else
        return PyErr_Format(PyExc_ValueError, "set_isa(): unknown SIMD path '%s'; expected "
                            "'avx512', 'avx2' or 'generic'", name);
    pc_runtime *rt = runtime_of(m);
    int rc;
    RUN_KERNEL(rt, pc_select_isa(rt, isa));
    if (rc)
        return PyErr_Format(PyExc_ValueError, "set_isa(): this CPU does not support '%s' "
                            "(best: '%s')", name, pc_isa_name(rt->best_isa));
    Py_RETURN_NONE;
}

/* ---- module ------------------------------------------------------------------------------------ */

static PyMethodDef runtime_methods[] = {
    {"num_threads", py_num_threads, METH_NOARGS, "num_threads() -> int: the thread pool's size."},
    {"set_num_threads", py_set_num_threads, METH_O, "set_num_threads(n): use n threads (n >= 1)."},
    {"isa", py_isa, METH_NOARGS, "isa() -> str: the SIMD path in use."},
    {"loop_isa", py_loop_isa, METH_NOARGS,
     "loop_isa() -> str: the SIMD path of the elementwise loops (follows set_isa)."},
    {"best_isa", py_best_isa, METH_NOARGS, "best_isa() -> str: the best SIMD path this CPU supports."},
    {"set_isa", py_set_isa, METH_O, "set_isa(name): choose 'avx512', 'avx2' or 'generic'."},
    {NULL, NULL, 0, NULL}};

extern PyMethodDef pc_methods_dropout[];   /* Dropout (bind_dropout.c) */
extern PyMethodDef pc_methods_bnpool[];    /* BatchNormalization + MaxPooling2D (bind_bnpool.c) */

static PyMethodDef *const method_tables[] = {
    runtime_methods, pc_methods_dense, pc_methods_conv, pc_methods_activations,
    pc_methods_losses, pc_methods_metrics, pc_methods_optimizers, pc_methods_data,
    pc_methods_merge, pc_methods_resample, pc_methods_normalization, pc_methods_augment,
    pc_methods_conv_general, pc_methods_dropout, pc_methods_bnpool};

static int module_exec(PyObject *module)
{
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
    for (size_t i = 0; i < sizeof method_tables / sizeof method_tables[0]; i++)
        if (PyModule_AddFunctions(module, method_tables[i]) < 0)
            return -1;
    module_state *st = PyModule_GetState(module);
    st->rt = malloc(sizeof *st->rt);
    if (!st->rt || pc_runtime_init(st->rt, 1)) {
        free(st->rt);
        st->rt = NULL;
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void module_free(void *module)
{
    module_state *st = PyModule_GetState((PyObject *)module);
    if (st && st->rt) {
        pc_runtime_destroy(st->rt);
        free(st->rt);
        st->rt = NULL;
    }
}

static PyModuleDef_Slot slots[] = {{Py_mod_exec, module_exec}, {0, NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "pycnn._C",
    "pycnn's C kernels (internal; use the pycnn API). Contract: docs/kernels.md.",
    sizeof(module_state), NULL, slots, NULL, NULL, module_free};

PyMODINIT_FUNC PyInit__C(void) { return PyModuleDef_Init(&moduledef); }
