/* The weight gradient of the region convolution for few rows per region: an outer-product sum written once.
 *
 *   out[r, o, i] = sum_m a[r, m, o] b[r, m, i]     a (R, M, O), b (R, M, I), out (R, O, I), all contiguous
 *
 * At the coarse wavelet levels of one sequence M is 4-16 (positions per region), so the product is bound by writing
 * `out` (the size of the weight); a GEMM library blocks it as a K = M matrix product and writes at a fraction of the
 * memory bandwidth. Here each output row is computed in vector registers from the M rows of b (which stay in cache)
 * and written with non-temporal stores where the target has them (x86 AVX and AVX-512), so the write does not first
 * read the destination's cache lines. Rows are taken in blocks of BLOCK_ROWS that share their address alignment, so
 * one pass over b serves the whole block. Threads split (region, block) pairs. M must be <= MAX_ROWS: the entry point
 * returns 1 otherwise. Built with field_contraction.c into one library by mnemodyn_hf/native_kernels.py. */
#include <stdint.h>

#include "vector.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define STREAM(p, v) _mm512_stream_ps((p), (__m512)(v))
#define STREAM_FENCE() _mm_sfence()
#elif defined(__AVX__)
#include <immintrin.h>
#define STREAM(p, v) _mm256_stream_ps((p), (__m256)(v))
#define STREAM_FENCE() _mm_sfence()
#else
#define STREAM(p, v) store((p), (v))
#define STREAM_FENCE() ((void)0)
#endif
#define BLOCK_ROWS 4
#define MAX_ROWS 64

INLINE float scalar_entry(const float *s, const float *b, long M, long I, long i) {
    float x = 0.0f;
    for (long m = 0; m < M; m++) x += s[m] * b[m * I + i];
    return x;
}

/* `count` <= BLOCK_ROWS output rows o, o + step, ...: scalar up to the rows' common vector alignment, then vectors
 * (two per iteration, each b load used by every row of the block), then the scalar tail. M and count are constants
 * where inlined from the switch below. */
INLINE void outer_block(const float *a, const float *b, float *out, long M, long O, long I, long o, long step,
                        long count) {
    float s[BLOCK_ROWS][MAX_ROWS];
    float *row[BLOCK_ROWS] = {out + o * I};
    for (long j = 0; j < count; j++) {
        row[j] = out + (o + j * step) * I;
        for (long m = 0; m < M; m++) s[j][m] = a[m * O + o + j * step];
    }
    long head = (long)((VECTOR_BYTES - (uintptr_t)row[0] % VECTOR_BYTES) % VECTOR_BYTES) / 4;
    if (head > I) head = I;
    for (long j = 0; j < count; j++)
        for (long i = 0; i < head; i++) row[j][i] = scalar_entry(s[j], b, M, I, i);
    long i = head;
    for (; i + 2 * LANES <= I; i += 2 * LANES) {
        vf x[BLOCK_ROWS][2];
        for (long j = 0; j < count; j++) x[j][0] = x[j][1] = (vf){0};
        for (long m = 0; m < M; m++) {
            const vf b0 = load(b + m * I + i), b1 = load(b + m * I + i + LANES);
            for (long j = 0; j < count; j++) {
                x[j][0] += s[j][m] * b0;
                x[j][1] += s[j][m] * b1;
            }
        }
        for (long j = 0; j < count; j++) {
            STREAM(row[j] + i, x[j][0]);
            STREAM(row[j] + i + LANES, x[j][1]);
        }
    }
    for (long j = 0; j < count; j++)
        for (long k = i; k < I; k++) row[j][k] = scalar_entry(s[j], b, M, I, k);
}

INLINE void outer_block_any(const float *a, const float *b, float *out, long M, long O, long I, long o, long step,
                            long count) {
    if (count == BLOCK_ROWS)
        outer_block(a, b, out, M, O, I, o, step, BLOCK_ROWS);
    else
        outer_block(a, b, out, M, O, I, o, step, count);
}

/* Rows o and o + step start at the same offset within a vector (step = the period of the row stride modulo the
 * vector size). A super-block holds step * BLOCK_ROWS consecutive rows; its block c takes rows c, c + step, ... */
int mnemodyn_region_weight_gradient(const float *a, const float *b, float *out, long R, long M, long O, long I,
                                    int num_threads) {
    if (M < 1 || M > MAX_ROWS) return 1;
    long step = 1;
    while ((step * I * 4) % VECTOR_BYTES) step++;
    const long span = step * BLOCK_ROWS, supers = (O + span - 1) / span;
#pragma omp parallel num_threads(num_threads)
    {
#pragma omp for schedule(static) collapse(3)
        for (long r = 0; r < R; r++)
            for (long super = 0; super < supers; super++)
                for (long c = 0; c < step; c++) {
                    const long o = super * span + c, left = (O - o + step - 1) / step;
                    if (o >= O) continue;
                    const long count = left < BLOCK_ROWS ? left : BLOCK_ROWS;
                    const float *ar = a + r * M * O, *br = b + r * M * I;
                    float *outr = out + r * O * I;
                    switch (M) {
                        case 4: outer_block_any(ar, br, outr, 4, O, I, o, step, count); break;
                        case 8: outer_block_any(ar, br, outr, 8, O, I, o, step, count); break;
                        case 16: outer_block_any(ar, br, outr, 16, O, I, o, step, count); break;
                        default: outer_block_any(ar, br, outr, M, O, I, o, step, count);
                    }
                }
        STREAM_FENCE(); /* each thread orders its own non-temporal stores before the region's closing barrier */
    }
    return 0;
}
