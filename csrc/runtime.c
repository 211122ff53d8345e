/* runtime.c - the thread pool, scratch memory and SIMD selection described in runtime.h. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, sysconf */
#include "runtime.h"
#include "pycnn.h"
#include "gemm_kernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PC_ALIGN 64

/* ---- SIMD selection ---------------------------------------------------------------------- */

pc_isa pc_detect_isa(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return PC_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return PC_ISA_AVX2;
#endif
    return PC_ISA_GENERIC;
}

const char *pc_isa_name(pc_isa isa)
{
    switch (isa) {
    case PC_ISA_AVX512: return "avx512";
    case PC_ISA_AVX2: return "avx2";
    default: return "generic";
    }
}

/* The elementwise loops' variant for the path `isa` (see runtime.h). */
static pc_isa loop_isa_for(pc_isa isa)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    __builtin_cpu_init();
    if (isa >= PC_ISA_AVX512 && __builtin_cpu_supports("x86-64-v4"))
        return PC_ISA_AVX512;
    if (isa >= PC_ISA_AVX2 && __builtin_cpu_supports("x86-64-v3"))
        return PC_ISA_AVX2;
#else
    (void)isa;
#endif
    return PC_ISA_GENERIC;
}

pc_isa pc_best_loop_isa(void)
{
    return loop_isa_for(pc_detect_isa());
}

int pc_select_isa(pc_runtime *rt, pc_isa isa)
{
    if (isa > rt->best_isa)
        return -1;
    const pc_ukernel *k = pc_ukernel_for(isa);
    if (!k)
        return -1;
    rt->ukernel = *k;
    rt->loop_isa = loop_isa_for(isa);
    return 0;
}

/* ---- scratch ------------------------------------------------------------------------------ */

static float *grow(pc_buffer *b, size_t n)
{
    if (n == 0)
        n = 1;
    if (b->cap >= n)
        return b->ptr;
    size_t bytes = (n * sizeof(float) + PC_ALIGN - 1) / PC_ALIGN * PC_ALIGN;
    if (bytes / sizeof(float) < n)
        return NULL;                      /* overflow */
    float *p = aligned_alloc(PC_ALIGN, bytes);
    if (!p)
        return NULL;
    free(b->ptr);
    b->ptr = p;
    b->cap = bytes / sizeof(float);
    return p;
}

static int ensure_thread_buffers(pc_runtime *rt, int nthreads)
{
    if (nthreads <= rt->thread_buf_threads)
        return 0;
    pc_buffer *nb = calloc((size_t)nthreads * PC_THREAD_SLOTS, sizeof *nb);
    if (!nb)
        return PC_ENOMEM;
    if (rt->thread_buf)
        memcpy(nb, rt->thread_buf,
               (size_t)rt->thread_buf_threads * PC_THREAD_SLOTS * sizeof *nb);
    free(rt->thread_buf);
    rt->thread_buf = nb;
    rt->thread_buf_threads = nthreads;
    return 0;
}

float *pc_thread_scratch(pc_runtime *rt, int thread, int slot, size_t n)
{
    if (thread < 0 || thread >= rt->thread_buf_threads || slot < 0 || slot >= PC_THREAD_SLOTS)
        return NULL;
    return grow(&rt->thread_buf[thread * PC_THREAD_SLOTS + slot], n);
}

float *pc_shared_scratch(pc_runtime *rt, int slot, size_t n)
{
    if (slot < 0 || slot >= PC_SHARED_SLOTS)
        return NULL;
    return grow(&rt->shared[slot], n);
}

/* ---- floating-point mode ------------------------------------------------------------------
 * The kernels run with subnormal floats flushed to zero, as TensorFlow's CPU kernels do: as
 * inputs (DAZ) and as results (FTZ). Values below 1.2e-38 carry no signal in training, but on
 * x86 every operation that reads or makes one can take a slow microcode path: the RMSprop
 * velocities of weights whose input is almost always 0 (an MNIST border pixel) decay through
 * the subnormals, and 2 % of them there made the dense model's update 84 -> 112 us. Every
 * thread of the pool runs in this mode, so results stay independent of the thread count; the
 * calling thread's mode is restored when the kernel returns (NumPy and Python keep IEEE). */
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FTZ_DAZ 0x8040u                 /* MXCSR: flush to zero (bit 15), denormals are zero (6) */
static unsigned long flush_subnormals(void)
{
    const unsigned old = _mm_getcsr();
    _mm_setcsr(old | FTZ_DAZ);
    return old;
}
static void restore_fp_mode(unsigned long old) { _mm_setcsr((unsigned)old); }
#elif defined(__aarch64__) && defined(__GNUC__)
#define FPCR_FZ (1ul << 24)             /* FPCR: flush subnormal inputs and results to zero */
static unsigned long flush_subnormals(void)
{
    unsigned long old;
    __asm__ volatile("mrs %0, fpcr" : "=r"(old));
    __asm__ volatile("msr fpcr, %0" : : "r"(old | FPCR_FZ));
    return old;
}
static void restore_fp_mode(unsigned long old) { __asm__ volatile("msr fpcr, %0" : : "r"(old)); }
#else
static unsigned long flush_subnormals(void) { return 0; }   /* IEEE subnormals elsewhere */
static void restore_fp_mode(unsigned long old) { (void)old; }
#endif

/* ---- thread pool -------------------------------------------------------------------------- */

typedef struct {
    pc_runtime *rt;
    int index;          /* 1 .. nworkers; the caller is thread 0 */
    unsigned long seen; /* the job generation when the worker was created */
} worker_arg;

static void run_tasks(pc_runtime *rt, int thread)
{
    for (;;) {
        int t = atomic_fetch_add_explicit(&rt->next_task, 1, memory_order_relaxed);
        if (t >= rt->job_tasks)
            break;
        rt->job_fn(rt->job_ctx, t, thread);
    }
}

/* Between jobs a worker first spins for a moment (a batch's kernels follow each other within
 * microseconds, and waking a sleeping thread costs tens of them), then sleeps on the condvar.
 * The spin is short, bounded in time, and uses plain loads, not PAUSE. Measured on a 2-vCPU KVM
 * machine: a long PAUSE loop (~3 ms) made a 128x784x512 GEMM take 24 ms instead of 0.5
 * (pause-loop exiting: the host deschedules the spinning vCPU). With plain loads, 200 us
 * measures best in alternating runs against 20 us: batch-32 predict 21-22k -> 23-26k img/s,
 * convnet step 16.4-17.7 -> 15.5-16.3 ms, dense step 1.75 -> 1.63 ms. No spinning when there
 * are more threads than CPUs. */
#define SPIN_NS 200000L

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spin (up to SPIN_NS) while no new job is posted / while workers are still busy. */
static void spin_while_generation(pc_runtime *rt, unsigned long old)
{
    if (!rt->spin)
        return;
    const long long end = now_ns() + SPIN_NS;
    for (;;) {
        for (int i = 0; i < 256; i++)
            if (atomic_load_explicit(&rt->generation, memory_order_acquire) != old ||
                atomic_load_explicit(&rt->stop, memory_order_relaxed))
                return;
        if (now_ns() > end)
            return;
    }
}

static void spin_while_active(pc_runtime *rt)
{
    if (!rt->spin)
        return;
    const long long end = now_ns() + SPIN_NS;
    for (;;) {
        for (int i = 0; i < 256; i++)
            if (atomic_load_explicit(&rt->active, memory_order_acquire) <= 0)
                return;
        if (now_ns() > end)
            return;
    }
}

static void *worker_main(void *p)
{
    worker_arg arg = *(worker_arg *)p;
    free(p);
    pc_runtime *rt = arg.rt;
    flush_subnormals();   /* also inherited from the kernel call that starts the thread */
    /* jobs posted after creation (even before this thread first runs) have a newer generation */
    unsigned long seen = arg.seen;
    for (;;) {
        spin_while_generation(rt, seen);
        pthread_mutex_lock(&rt->mutex);
        while (atomic_load(&rt->generation) == seen && !atomic_load(&rt->stop))
            pthread_cond_wait(&rt->start_cv, &rt->mutex);
        pthread_mutex_unlock(&rt->mutex);
        if (atomic_load(&rt->stop))
            break;
        seen = atomic_load(&rt->generation);
        run_tasks(rt, arg.index);
        if (atomic_fetch_sub(&rt->active, 1) == 1) {
            pthread_mutex_lock(&rt->mutex);      /* the caller may be asleep on done_cv */
            pthread_cond_signal(&rt->done_cv);
            pthread_mutex_unlock(&rt->mutex);
        }
    }
    return NULL;
}

static void stop_workers(pc_runtime *rt)
{
    if (rt->nworkers > 0 && rt->owner_pid == getpid()) {
        pthread_mutex_lock(&rt->mutex);
        atomic_store(&rt->stop, 1);
        pthread_cond_broadcast(&rt->start_cv);
        pthread_mutex_unlock(&rt->mutex);
        for (int i = 0; i < rt->nworkers; i++)
            pthread_join(rt->workers[i], NULL);
    }
    /* after fork() the workers do not exist in this process: just forget them; the array is
     * freed even when no worker started (start_workers failed at the first) */
    free(rt->workers);
    rt->workers = NULL;
    rt->nworkers = 0;
    atomic_store(&rt->stop, 0);
}

static int start_workers(pc_runtime *rt)
{
    int want = rt->nthreads - 1;
    if (want <= 0)
        return 0;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    rt->spin = cpus > 0 && rt->nthreads <= cpus;
    rt->workers = calloc((size_t)want, sizeof *rt->workers);
    if (!rt->workers)
        return PC_ENOMEM;
    rt->owner_pid = getpid();
    for (int i = 0; i < want; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (!arg)
            return PC_ENOMEM;
        arg->rt = rt;
        arg->index = i + 1;
        pthread_mutex_lock(&rt->mutex);
        arg->seen = atomic_load(&rt->generation);
        int err = pthread_create(&rt->workers[i], NULL, worker_main, arg);
        pthread_mutex_unlock(&rt->mutex);
        if (err) {
            free(arg);
            return PC_ENOMEM;
        }
        rt->nworkers = i + 1;
    }
    return 0;
}

int pc_parallel(pc_runtime *rt, int ntasks, pc_task_fn fn, void *ctx)
{
    if (ntasks <= 0)
        return 0;
    int rc = 0;
    if (rt->nworkers != rt->nthreads - 1 || (rt->nworkers > 0 && rt->owner_pid != getpid())) {
        stop_workers(rt);
        rc = start_workers(rt);
    }
    if (rt->nworkers == 0 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return rc;
    }
    pthread_mutex_lock(&rt->mutex);
    rt->job_fn = fn;
    rt->job_ctx = ctx;
    rt->job_tasks = ntasks;
    atomic_store(&rt->next_task, 0);
    atomic_store(&rt->active, rt->nworkers);
    atomic_fetch_add(&rt->generation, 1);     /* publishes the job to spinning workers */
    pthread_cond_broadcast(&rt->start_cv);
    pthread_mutex_unlock(&rt->mutex);

    run_tasks(rt, 0);

    spin_while_active(rt);
    pthread_mutex_lock(&rt->mutex);
    while (atomic_load(&rt->active) > 0)
        pthread_cond_wait(&rt->done_cv, &rt->mutex);
    pthread_mutex_unlock(&rt->mutex);
    return rc;
}

int pc_set_num_threads(pc_runtime *rt, int n)
{
    if (n < 1)
        return PC_EINVAL;
    if (ensure_thread_buffers(rt, n))
        return PC_ENOMEM;
    if (n != rt->nthreads) {
        stop_workers(rt);
        rt->nthreads = n;      /* workers start lazily at the next parallel call */
    }
    return 0;
}

/* ---- fork safety --------------------------------------------------------------------------
 * fork() copies only the calling thread: in the child the pool's workers do not exist, while
 * its mutex, condition variables and counters still describe them (a condvar with waiters that
 * no longer exist blocks the child's first broadcast for ever), and a call lock held by another
 * thread at the fork stays locked. So every live runtime is quiesced around fork() with
 * pthread_atfork handlers:
 *   prepare: take each runtime's call lock, waiting for a kernel running in another thread to
 *            return (then no kernel, and no job of the pool, runs during the fork);
 *   parent:  release them;
 *   child:   re-initialise each runtime's locks, condvars and counters with zero workers; the
 *            workers are started again lazily by the next pc_parallel (thread count unchanged),
 *            the scratch memory and the SIMD path are kept (the child's copies).
 * pthread_atfork handlers are process-wide while runtimes are per module (one per interpreter
 * that imports pycnn), hence the one piece of global mutable state of the C code: the registry
 * below of live runtimes, a list linked through the runtimes and guarded by registry_lock, which
 * the fork handlers hold from prepare to parent / child. Lock order: registry_lock, then call
 * locks; kernels take only their call lock, pc_runtime_init/destroy only registry_lock. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pc_runtime *registry_head;          /* live runtimes, linked by fork_next / fork_prev */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_error;                   /* pthread_atfork's result, set once */

static void before_fork(void)
{
    pthread_mutex_lock(&registry_lock);
    for (pc_runtime *rt = registry_head; rt; rt = rt->fork_next)
        pthread_mutex_lock(&rt->call_lock);
}

static void after_fork_parent(void)
{
    for (pc_runtime *rt = registry_head; rt; rt = rt->fork_next)
        pthread_mutex_unlock(&rt->call_lock);
    pthread_mutex_unlock(&registry_lock);
}

/* The child's only thread holds every lock taken in before_fork: make all of them new. The
 * workers array (the parent's thread ids) is freed by the next stop_workers, not here. */
static void after_fork_child(void)
{
    for (pc_runtime *rt = registry_head; rt; rt = rt->fork_next) {
        pthread_mutex_init(&rt->call_lock, NULL);
        pthread_mutex_init(&rt->mutex, NULL);
        pthread_cond_init(&rt->start_cv, NULL);
        pthread_cond_init(&rt->done_cv, NULL);
        rt->nworkers = 0;
        rt->owner_pid = getpid();
        atomic_store(&rt->stop, 0);
        atomic_store(&rt->active, 0);
        atomic_store(&rt->next_task, 0);
        rt->job_fn = NULL;
        rt->job_ctx = NULL;
        rt->job_tasks = 0;
    }
    pthread_mutex_init(&registry_lock, NULL);
}

static void register_atfork(void)
{
    atfork_error = pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

static int registry_add(pc_runtime *rt)
{
    pthread_once(&atfork_once, register_atfork);
    if (atfork_error)
        return -1;
    pthread_mutex_lock(&registry_lock);
    rt->fork_prev = NULL;
    rt->fork_next = registry_head;
    if (registry_head)
        registry_head->fork_prev = rt;
    registry_head = rt;
    pthread_mutex_unlock(&registry_lock);
    return 0;
}

static void registry_remove(pc_runtime *rt)
{
    pthread_mutex_lock(&registry_lock);
    if (rt->fork_prev)
        rt->fork_prev->fork_next = rt->fork_next;
    else if (registry_head == rt)
        registry_head = rt->fork_next;
    if (rt->fork_next)
        rt->fork_next->fork_prev = rt->fork_prev;
    rt->fork_prev = rt->fork_next = NULL;
    pthread_mutex_unlock(&registry_lock);
}

/* ---- life cycle --------------------------------------------------------------------------- */

int pc_runtime_init(pc_runtime *rt, int nthreads)
{
    memset(rt, 0, sizeof *rt);
    pthread_mutex_init(&rt->call_lock, NULL);
    pthread_mutex_init(&rt->mutex, NULL);
    pthread_cond_init(&rt->start_cv, NULL);
    pthread_cond_init(&rt->done_cv, NULL);
    rt->nthreads = 1;
    rt->owner_pid = getpid();
    rt->best_isa = pc_detect_isa();
    pc_select_isa(rt, rt->best_isa);
    if (ensure_thread_buffers(rt, 1) || pc_set_num_threads(rt, nthreads < 1 ? 1 : nthreads) ||
        registry_add(rt)) {
        free(rt->thread_buf);
        pthread_cond_destroy(&rt->start_cv);
        pthread_cond_destroy(&rt->done_cv);
        pthread_mutex_destroy(&rt->mutex);
        pthread_mutex_destroy(&rt->call_lock);
        memset(rt, 0, sizeof *rt);
        return -1;
    }
    return 0;
}

void pc_runtime_destroy(pc_runtime *rt)
{
    registry_remove(rt);
    stop_workers(rt);
    for (int i = 0; i < rt->thread_buf_threads * PC_THREAD_SLOTS; i++)
        free(rt->thread_buf[i].ptr);
    free(rt->thread_buf);
    for (int i = 0; i < PC_SHARED_SLOTS; i++)
        free(rt->shared[i].ptr);
    pthread_cond_destroy(&rt->start_cv);
    pthread_cond_destroy(&rt->done_cv);
    pthread_mutex_destroy(&rt->mutex);
    pthread_mutex_destroy(&rt->call_lock);
    memset(rt, 0, sizeof *rt);
}

void pc_runtime_enter(pc_runtime *rt)
{
    pthread_mutex_lock(&rt->call_lock);
    rt->caller_fp_mode = flush_subnormals();
}

void pc_runtime_leave(pc_runtime *rt)
{
    restore_fp_mode(rt->caller_fp_mode);
    pthread_mutex_unlock(&rt->call_lock);
}
