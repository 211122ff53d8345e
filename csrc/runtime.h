/*
 * runtime.h - the one piece of shared mutable state in pycnn: the runtime.
 *
 * A pc_runtime owns
 *   - the thread pool: nthreads - 1 worker threads plus the calling thread, which run the tasks
 *     of pc_parallel(); a task is identified by its index, so which thread runs it never changes
 *     a result;
 *   - scratch memory: per-thread buffers (im2col columns, GEMM packing) and shared buffers
 *     (packed GEMM panels, partial sums), grown on demand and reused across calls, so no kernel
 *     allocates per batch once the sizes are known;
 *   - the SIMD path: the GEMM micro-kernel picked at run time from what the CPU reports.
 * The binding creates exactly one runtime per process (module state). pc_runtime_enter/leave
 * bracket every kernel call: they serialise callers from different Python threads, which then
 * never share scratch, and run the kernel with subnormal floats flushed to zero (as on the
 * pool's threads; the caller's floating-point mode is restored at leave).
 * Fork safety: fork() waits for a kernel running in another thread to return, and the child
 * starts with a fresh pool (its workers started again at its first parallel call). Each live
 * runtime is in a process-wide registry that pthread_atfork handlers walk: the one piece of
 * global mutable state, documented in runtime.c ("fork safety").
 */
#ifndef PYCNN_RUNTIME_H
#define PYCNN_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum { PC_ISA_GENERIC = 0, PC_ISA_AVX2 = 1, PC_ISA_AVX512 = 2 } pc_isa;

/* A GEMM micro-kernel: C[mr][nr] (row stride ldc) (+)= Apanel * Bpanel over k steps, where the
 * packed A panel holds, for each p, mr consecutive floats A(0..mr-1, p), and the packed B panel
 * holds, for each p, nr consecutive floats B(p, 0..nr-1). Then, when `bias` is not NULL, adds
 * bias[0..nr-1] to every row, and when `relu` is set, clamps at 0 (the fused epilogue, applied
 * only with the last k block). Full tiles only; the driver handles edges. */
typedef void (*pc_ukernel_fn)(int k, const float *a, const float *b, float *c, ptrdiff_t ldc,
                              int accumulate, const float *bias, int relu);

/* Products with few columns (n <= PC_NARROW_N: a 10-class layer), where a micro-tile of nr
 * columns would be mostly empty. Both write plain sums (no accumulate, bias or relu) to s
 * (row stride lds), each summing its k terms in a fixed order:
 *   rows: s[i][j] = sum_p a[i*lda + p] * bt[j*ldbt + p]   for i < rows (1 or 2), j < n:
 *         dot products of A's rows with B^T's rows (64-byte aligned, k padded with zeros to
 *         a multiple of 16), vectorised along k;
 *   cols: s[i][j] = sum_p a[p*lda + i] * b[p*ldb + j]    for i < m (<= 32), j < n:
 *         A^T stored row-major (a weight gradient x^T dy), broadcasts of b's rows. */
#define PC_NARROW_N 12
typedef void (*pc_narrow_rows_fn)(int k, int rows, const float *a, ptrdiff_t lda,
                                  const float *bt, ptrdiff_t ldbt, int n, float *s,
                                  ptrdiff_t lds);
typedef void (*pc_narrow_cols_fn)(int k, int m, const float *a, ptrdiff_t lda, const float *b,
                                  ptrdiff_t ldb, int n, float *s, ptrdiff_t lds);
/* Products with few k (k <= PC_NARROW_N: the input gradient dy w^T of a class layer), C's
 * rows computed whole from B's rows laid out as narrow_pack lays out B^T: for i < rows (<= 4), p < n,
 *   c[i*ldc + p] (+)= sum_j a[i*rsa + j*csa] * bt[j*ldbt + p],  j = 0..k-1 in order,
 * bt as narrow_pack writes it (zeros past n up to a multiple of 16); accumulate = 0 overwrites. */
typedef void (*pc_narrow_k_fn)(int k, int rows, int n, const float *a, ptrdiff_t rsa,
                               ptrdiff_t csa, const float *bt, ptrdiff_t ldbt, float *c,
                               ptrdiff_t ldc, int accumulate);
/* Rows of C = A B from A's nonzeros only (A sparse: a convolution's output gradient rebuilt
 * from a max pooling's): for i < m, q < n, c[i*ldc + q] = the sum over p < k in order of
 * a[i*lda + p] * b[p*ldb + q], with the terms whose A value is 0 left out, one FMA per term as
 * the micro-kernel does them; k <= PC_SPARSE_MAX_K. B is row-major, 64-byte aligned, ldb a
 * multiple of 16 and at least n rounded up to 16. For a finite B each term left out would have
 * added 0: the result equals the GEMM's (one k block) bit for bit. */
#define PC_SPARSE_MAX_K 320   /* the GEMM's largest k block (k_block: kc + kc / 4) */
typedef void (*pc_sparse_rows_fn)(int m, int n, int k, const float *a, ptrdiff_t lda,
                                  const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc);
/* A^T B from A's nonzeros only (A a convolution's sparse output gradient, B its im2col rows: a
 * weight gradient, transposed): for c < nc, q < nq,
 *   out[c*ldo + q] = (accumulate ? out[c*ldo + q] : 0) + the sum over p < k in order, with
 *   a[p*lda + c] != 0, of a[p*lda + c] * b[p*ldb + q],
 * the sum as the micro-kernel forms it (one FMA per term from 0, then added to C): for a finite
 * B, bit for bit the GEMM's k block of the weight gradient. k <= PC_SPARSE_MAX_K. */
typedef void (*pc_sparse_tn_fn)(int k, int nc, int nq, const float *a, ptrdiff_t lda,
                                const float *b, ptrdiff_t ldb, float *out, ptrdiff_t ldo,
                                int accumulate);
/* B^T for the rows kernel: bt[j*ldbt + p] = b[p*rsb + j*csb] for j < n (<= 16), p < k, and
 * zeros for k <= p < ldbt (ldbt a multiple of 16, bt 64-byte aligned). */
typedef void (*pc_narrow_pack_fn)(int k, int n, const float *b, ptrdiff_t rsb, ptrdiff_t csb,
                                  float *bt, ptrdiff_t ldbt);

/* The micro-kernel's product with A read in place instead of from a packed panel, same sums
 * and epilogue: by rows (row i: k floats at a + i*lda) or by columns (column p: mr floats at
 * a + p*lda, the packed layout with another stride). B's row p is nr floats at b + p*ldb
 * (ldb = nr: a packed sliver; else B's rows in place), any alignment. */
typedef void (*pc_ukernel_strided_fn)(int k, const float *a, ptrdiff_t lda, const float *b,
                                      ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate,
                                      const float *bias, int relu);

typedef struct {
    pc_isa isa;
    const char *name;
    int mr, nr;            /* register tile */
    int kc, mc;            /* cache blocking: k block and m block (multiple of mr) */
    pc_ukernel_fn fn;
    pc_narrow_rows_fn narrow_rows;   /* or NULL: the driver computes C^T instead */
    pc_narrow_cols_fn narrow_cols;
    pc_narrow_pack_fn narrow_pack;   /* B^T for narrow_rows (and B for narrow_k) */
    pc_narrow_k_fn narrow_k;         /* or NULL: the micro-kernel with k <= 12 */
    pc_sparse_rows_fn sparse_rows;   /* or NULL: the GEMM, zeros and all */
    pc_sparse_tn_fn sparse_tn;       /* or NULL: likewise */
    pc_ukernel_strided_fn fn_rows;   /* or NULL: callers pack A */
    pc_ukernel_strided_fn fn_cols;   /* or NULL: the GEMM packs A, and B */
} pc_ukernel;

typedef void (*pc_task_fn)(void *ctx, int task, int thread);

enum { PC_THREAD_SLOT_WORK = 0, PC_THREAD_SLOT_PACK = 1, PC_THREAD_SLOT_GRAD = 2,
       PC_THREAD_SLOTS = 3 };
enum { PC_SHARED_SLOT_PACK_B = 0, PC_SHARED_SLOT_PARTIAL = 1, PC_SHARED_SLOT_TRANSPOSED = 2,
       PC_SHARED_SLOTS = 3 };

typedef struct {
    float *ptr;
    size_t cap;            /* in floats */
} pc_buffer;

typedef struct pc_runtime {
    pthread_mutex_t call_lock;   /* held from enter to leave: one kernel call at a time */
    unsigned long caller_fp_mode;   /* the caller's FP mode, restored at leave (runtime.c) */
    /* thread pool */
    pthread_mutex_t mutex;
    pthread_cond_t start_cv, done_cv;
    pthread_t *workers;
    int nworkers;                /* running worker threads (nthreads - 1 once started) */
    int nthreads;                /* wanted thread count, >= 1 */
    pid_t owner_pid;             /* process that started the workers (checked as well as fork handlers) */
    int spin;                    /* spin briefly before sleeping (0: more threads than CPUs) */
    atomic_ulong generation;     /* bumped for every job (read without the mutex while spinning) */
    atomic_int stop;
    atomic_int active;           /* workers still busy with the current job */
    pc_task_fn job_fn;
    void *job_ctx;
    int job_tasks;
    atomic_int next_task;        /* the next task index to hand out */
    /* scratch */
    pc_buffer *thread_buf;       /* [max_threads][PC_THREAD_SLOTS] */
    int thread_buf_threads;
    pc_buffer shared[PC_SHARED_SLOTS];
    /* the registry of live runtimes, for the fork handlers (runtime.c, "fork safety") */
    struct pc_runtime *fork_prev, *fork_next;
    /* SIMD */
    pc_ukernel ukernel;
    pc_isa best_isa;
    pc_isa loop_isa;             /* the elementwise loops' path (pc_loop_isa) */
} pc_runtime;

/* Create / destroy. init returns 0, or -1 when out of memory (or the fork handlers could not be
 * registered). A runtime must stay at one address from init to destroy (it is registered). */
int pc_runtime_init(pc_runtime *rt, int nthreads);
void pc_runtime_destroy(pc_runtime *rt);

void pc_runtime_enter(pc_runtime *rt);
void pc_runtime_leave(pc_runtime *rt);

/* Thread count (takes effect at the next parallel call). Call between enter and leave. */
int pc_set_num_threads(pc_runtime *rt, int n);

/* Run fn(ctx, task, thread) for task = 0..ntasks-1 on the pool; returns when all are done.
 * `thread` is in [0, nthreads) and only selects per-thread scratch. Returns 0 or PC_ENOMEM
 * when a worker could not be started (then everything ran on the calling thread). */
int pc_parallel(pc_runtime *rt, int ntasks, pc_task_fn fn, void *ctx);

/* Scratch: at least n floats, 64-byte aligned, contents undefined; NULL when out of memory.
 * A thread slot may be grown only by its own thread; shared slots only outside pc_parallel. */
float *pc_thread_scratch(pc_runtime *rt, int thread, int slot, size_t n);
float *pc_shared_scratch(pc_runtime *rt, int slot, size_t n);

/* SIMD path: the best the CPU supports, and choosing one (returns -1 if unsupported). The
 * choice selects the GEMM micro-kernel and the elementwise loops' variant (PC_SIMD_VARIANTS in
 * pycnn.h): the same path where the CPU has the whole x86-64 level that variant is compiled for
 * (x86-64-v4 for avx512, x86-64-v3 for avx2), else the next one down. */
pc_isa pc_detect_isa(void);
int pc_select_isa(pc_runtime *rt, pc_isa isa);
const char *pc_isa_name(pc_isa isa);

/* The loops' path of the best ISA the CPU supports (what pc_runtime_init selects). */
pc_isa pc_best_loop_isa(void);

static inline pc_isa pc_loop_isa(const pc_runtime *rt)
{
    return rt->loop_isa;
}

#endif
