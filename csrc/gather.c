/* gather.c - rows of a matrix copied by index: a shuffled training batch. The rows come from
 * anywhere in the training set (main memory, not cache), so the copy is bound by the latency of
 * its loads; the threads split the rows and each prefetches its next row, keeping more loads in
 * flight than one thread copying row after row. */
#include "pycnn.h"

#include <string.h>

#define AHEAD 1                        /* rows prefetched ahead */
#define GATHER_MIN_BYTES (64 * 1024)   /* below this, one thread (waking the pool costs more) */

typedef struct {
    const char *src;
    const int64_t *idx;
    char *dst;
    size_t row_bytes;
    int n, rows_per_task;
} gather_job;

static void gather_task(void *ctx, int task, int thread)
{
    (void)thread;
    const gather_job *j = ctx;
    const int r0 = task * j->rows_per_task;
    const int r1 = r0 + j->rows_per_task < j->n ? r0 + j->rows_per_task : j->n;
    for (int r = r0; r < r1; r++) {
        if (r + AHEAD < r1) {
            const char *next = j->src + (size_t)j->idx[r + AHEAD] * j->row_bytes;
            for (size_t b = 0; b < j->row_bytes; b += 64)
                __builtin_prefetch(next + b);
        }
        memcpy(j->dst + (size_t)r * j->row_bytes, j->src + (size_t)j->idx[r] * j->row_bytes,
               j->row_bytes);
    }
}

void pc_gather_rows(pc_runtime *rt, const void *src, size_t row_bytes, const int64_t *idx, int n,
                    void *dst)
{
    if (n <= 0 || row_bytes == 0)
        return;
    const int nthreads = (size_t)n * row_bytes < GATHER_MIN_BYTES ? 1 : rt->nthreads;
    gather_job j = {.src = src, .idx = idx, .dst = dst, .row_bytes = row_bytes, .n = n,
                    .rows_per_task = (n + nthreads - 1) / nthreads};
    pc_parallel(rt, (n + j.rows_per_task - 1) / j.rows_per_task, gather_task, &j);
}
