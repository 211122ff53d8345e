/* peak.c -- single-precision FMA throughput of this CPU.
 *
 * Part of the pycnn benchmark harness (benchmarks/run.py compiles it at run time with
 * `cc -O2 -pthread` into a temporary directory; it is not part of the library).
 *
 * Each thread runs a loop of independent fused multiply-adds on NACC vector accumulators
 * (enough of them to cover the FMA latency on both FMA pipes of current x86 cores), so the
 * loop is bound by FMA throughput only: no loads, no stores, no dependencies between the
 * accumulators.  One FMA on a W-lane float vector counts as 2*W floating-point operations.
 *
 * The vector path is chosen at run time with __builtin_cpu_supports: AVX-512F (512-bit,
 * 16 lanes) and AVX2+FMA (256-bit, 8 lanes) are both measured when the CPU has them, so a
 * CPU that splits 512-bit FMAs in two (AMD Zen 4) shows the same GFLOP/s for both.
 *
 * usage: peak [THREADS ...]          (default: 1)
 * output: one JSON object per line, e.g.
 *   {"isa": "avx2", "threads": 2, "gflops": 190.1, "gflops_per_core": 95.0, "seconds": 0.21}
 * Each value is the best of several repetitions (the machine may be shared).
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NACC 12
#define REPS 5

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static volatile float g_sink;

/* Each kernel returns the FLOPs it did. */

__attribute__((target("avx512f"))) static double fma_avx512(long iters) {
    __m512 a[NACC];
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < NACC; i++) a[i] = _mm512_set1_ps(1.0f + 0.001f * i);
    for (long it = 0; it < iters; it++) {
        a[0] = _mm512_fmadd_ps(a[0], b, c);
        a[1] = _mm512_fmadd_ps(a[1], b, c);
        a[2] = _mm512_fmadd_ps(a[2], b, c);
        a[3] = _mm512_fmadd_ps(a[3], b, c);
        a[4] = _mm512_fmadd_ps(a[4], b, c);
        a[5] = _mm512_fmadd_ps(a[5], b, c);
        a[6] = _mm512_fmadd_ps(a[6], b, c);
        a[7] = _mm512_fmadd_ps(a[7], b, c);
        a[8] = _mm512_fmadd_ps(a[8], b, c);
        a[9] = _mm512_fmadd_ps(a[9], b, c);
        a[10] = _mm512_fmadd_ps(a[10], b, c);
        a[11] = _mm512_fmadd_ps(a[11], b, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < NACC; i++) s = _mm512_add_ps(s, a[i]);
    g_sink = _mm512_reduce_add_ps(s);
    return 2.0 * 16 * NACC * (double)iters;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iters) {
    __m256 a[NACC];
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < NACC; i++) a[i] = _mm256_set1_ps(1.0f + 0.001f * i);
    for (long it = 0; it < iters; it++) {
        a[0] = _mm256_fmadd_ps(a[0], b, c);
        a[1] = _mm256_fmadd_ps(a[1], b, c);
        a[2] = _mm256_fmadd_ps(a[2], b, c);
        a[3] = _mm256_fmadd_ps(a[3], b, c);
        a[4] = _mm256_fmadd_ps(a[4], b, c);
        a[5] = _mm256_fmadd_ps(a[5], b, c);
        a[6] = _mm256_fmadd_ps(a[6], b, c);
        a[7] = _mm256_fmadd_ps(a[7], b, c);
        a[8] = _mm256_fmadd_ps(a[8], b, c);
        a[9] = _mm256_fmadd_ps(a[9], b, c);
        a[10] = _mm256_fmadd_ps(a[10], b, c);
        a[11] = _mm256_fmadd_ps(a[11], b, c);
    }
    __m256 s = a[0];
    for (int i = 1; i < NACC; i++) s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    g_sink = out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
    return 2.0 * 8 * NACC * (double)iters;
}

typedef double (*kernel_fn)(long);

typedef struct {
    kernel_fn fn;
    long iters;
    pthread_barrier_t *barrier;
    double flops, t0, t1;
} job_t;

static void *worker(void *p) {
    job_t *j = (job_t *)p;
    pthread_barrier_wait(j->barrier);
    j->t0 = now();
    j->flops = j->fn(j->iters);
    j->t1 = now();
    return NULL;
}

/* Runs fn on `threads` threads at once; returns total GFLOP/s (total FLOPs over the span
 * from the first thread's start to the last thread's end). */
static double run(kernel_fn fn, int threads, long iters, double *seconds) {
    pthread_t *tid = calloc(threads, sizeof *tid);
    job_t *jobs = calloc(threads, sizeof *jobs);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, threads);
    for (int i = 0; i < threads; i++) {
        jobs[i].fn = fn;
        jobs[i].iters = iters;
        jobs[i].barrier = &barrier;
        pthread_create(&tid[i], NULL, worker, &jobs[i]);
    }
    double flops = 0, t0 = 1e300, t1 = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        flops += jobs[i].flops;
        if (jobs[i].t0 < t0) t0 = jobs[i].t0;
        if (jobs[i].t1 > t1) t1 = jobs[i].t1;
    }
    pthread_barrier_destroy(&barrier);
    free(tid);
    free(jobs);
    *seconds = t1 - t0;
    return flops / (t1 - t0) * 1e-9;
}

static void measure(const char *name, kernel_fn fn, int threads) {
    /* calibrate to ~0.15 s per repetition on one thread */
    long iters = 1 << 16;
    for (;;) {
        double t0 = now();
        fn(iters);
        double dt = now() - t0;
        if (dt > 0.02 || iters > (1L << 34)) {
            iters = (long)(iters * (0.15 / (dt > 1e-9 ? dt : 1e-9)));
            break;
        }
        iters *= 4;
    }
    if (iters < 1) iters = 1;
    double best = 0, best_s = 0;
    for (int r = 0; r < REPS; r++) {
        double s;
        double g = run(fn, threads, iters, &s);
        if (g > best) {
            best = g;
            best_s = s;
        }
    }
    printf("{\"isa\": \"%s\", \"threads\": %d, \"gflops\": %.2f, \"gflops_per_core\": %.2f, "
           "\"seconds\": %.4f}\n",
           name, threads, best, best / threads, best_s);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int counts[64], n = 0;
    for (int i = 1; i < argc && n < 64; i++) {
        int t = atoi(argv[i]);
        if (t < 1 || t > 4096) {
            fprintf(stderr, "peak: bad thread count '%s'\n", argv[i]);
            return 2;
        }
        counts[n++] = t;
    }
    if (n == 0) counts[n++] = 1;
    __builtin_cpu_init();
    int any = 0;
    for (int k = 0; k < n; k++) {
        if (__builtin_cpu_supports("avx512f")) {
            measure("avx512", fma_avx512, counts[k]);
            any = 1;
        }
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            measure("avx2", fma_avx2, counts[k]);
            any = 1;
        }
    }
    if (!any) {
        fprintf(stderr, "peak: this CPU has neither AVX-512F nor AVX2+FMA\n");
        return 1;
    }
    return 0;
}
