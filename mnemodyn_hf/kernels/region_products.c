/* The region convolution's three products for few rows per region, where each is bound by memory, not arithmetic.
 *
 *   forward            out[r, m, o] = bias[r, o] + sum_i rows[r, m, i] weight[r, o, i]
 *   input gradient     out[r, m, i] = sum_o grad[r, m, o] weight[r, o, i]
 *   weight gradient    out[r, o, i] = sum_m a[r, m, o] b[r, m, i]
 *
 * rows (R, M, I), weight (R, O, I), bias (R, O), grad and a (R, M, O), b (R, M, I), all contiguous. At the coarse
 * wavelet levels of one sequence M is 4-16 (positions per region), so the forward and the input gradient read, and
 * the weight gradient writes, a (O, I) matrix per region (600 x 3000 at the released size) for 8-32 multiply-adds per
 * element; a GEMM library blocks them as matrix products and moves that matrix at a fraction of the memory bandwidth.
 *
 * Forward: each weight row is read once per ROW_BLOCK rows, OUT_BLOCK weight rows at a time against ROW_BLOCK input
 * rows (which stay in cache), the dot products summed in vector registers. Input gradient: each thread owns tiles of
 * TILE_COLUMNS columns of the output (kept in an L1 buffer) and streams the weight's rows through them, four at a
 * time, prefetching the next four. Weight gradient: each output row is computed in vector registers from the M rows of
 * b and written with non-temporal stores where the target has them (x86 AVX and AVX-512), so the write does not first
 * read the destination's cache lines; rows are taken in blocks of BLOCK_ROWS that share their address alignment, so
 * one pass over b serves the whole block. Threads split regions and blocks. The forward and input gradient take
 * M <= MAX_STREAMED_ROWS, the weight gradient M <= MAX_ROWS: the entry points return 1 otherwise. Built with
 * field_contraction.c into one library by mnemodyn_hf/native_kernels.py. */
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
#define MAX_STREAMED_ROWS 16
#define OUT_BLOCK 4
#define ROW_BLOCK 4
#define TILE_COLUMNS 512
#define PREFETCH_AHEAD 512 /* floats ahead in the forward's weight rows */

/* out[m0 .. m0 + mc, o .. o + ob] of one region (ob <= OUT_BLOCK, mc <= ROW_BLOCK: constants where inlined). */
INLINE void forward_block(const float *rows, const float *weight, const float *bias, float *out, long O, long I,
                          long o, long ob, long m0, long mc) {
    vf x[OUT_BLOCK][ROW_BLOCK];
    for (long j = 0; j < ob; j++)
        for (long m = 0; m < mc; m++) x[j][m] = splat(0.0f);
    long i = 0;
    for (; i + LANES <= I; i += LANES) {
        vf w[OUT_BLOCK];
        for (long j = 0; j < ob; j++) {
            w[j] = load(weight + (o + j) * I + i);
            if (m0 == 0 && i % 16 == 0) __builtin_prefetch(weight + (o + j) * I + i + PREFETCH_AHEAD, 0, 0);
        }
        for (long m = 0; m < mc; m++) {
            const vf r = load(rows + (m0 + m) * I + i);
            for (long j = 0; j < ob; j++) x[j][m] += w[j] * r;
        }
    }
    for (long j = 0; j < ob; j++)
        for (long m = 0; m < mc; m++) {
            float s = bias[o + j] + horizontal_sum(x[j][m]);
            for (long k = i; k < I; k++) s += weight[(o + j) * I + k] * rows[(m0 + m) * I + k];
            out[(m0 + m) * O + o + j] = s;
        }
}

int mnemodyn_region_forward(const float *rows, const float *weight, const float *bias, float *out, long R, long M,
                            long O, long I, int num_threads) {
    if (M < 1 || M > MAX_STREAMED_ROWS) return 1;
    const long blocks = (O + OUT_BLOCK - 1) / OUT_BLOCK;
#pragma omp parallel for num_threads(num_threads) schedule(static) collapse(2)
    for (long r = 0; r < R; r++)
        for (long block = 0; block < blocks; block++) {
            const long o = block * OUT_BLOCK, ob = O - o < OUT_BLOCK ? O - o : OUT_BLOCK;
            const float *rows_r = rows + r * M * I, *weight_r = weight + r * O * I;
            for (long m0 = 0; m0 < M; m0 += ROW_BLOCK) {
                const long mc = M - m0 < ROW_BLOCK ? M - m0 : ROW_BLOCK;
                if (ob == OUT_BLOCK && mc == ROW_BLOCK)
                    forward_block(rows_r, weight_r, bias + r * O, out + r * M * O, O, I, o, OUT_BLOCK, m0, ROW_BLOCK);
                else
                    forward_block(rows_r, weight_r, bias + r * O, out + r * M * O, O, I, o, ob, m0, mc);
            }
        }
    return 0;
}

/* Columns [i0, i1) of one region's input gradient, summed in `tile` (M x TILE_COLUMNS) and copied out once. M is a
 * constant where inlined from the switch below. */
INLINE void input_gradient_tile(const float *grad, const float *weight, float *out, float *tile, long M, long O,
                                long I, long i0, long i1) {
    const long width = i1 - i0, vectors = width / LANES * LANES;
    memset(tile, 0, (size_t)(M * TILE_COLUMNS) * sizeof(float));
    long o = 0;
    for (; o + 4 <= O; o += 4) {
        const float *w0 = weight + o * I + i0, *w1 = w0 + I, *w2 = w1 + I, *w3 = w2 + I;
        for (long i = 0; i < vectors; i += LANES) {
            const vf a0 = load(w0 + i), a1 = load(w1 + i), a2 = load(w2 + i), a3 = load(w3 + i);
            if (i % 16 == 0 && o + 8 <= O) {
                __builtin_prefetch(w0 + 4 * I + i, 0, 0);
                __builtin_prefetch(w1 + 4 * I + i, 0, 0);
                __builtin_prefetch(w2 + 4 * I + i, 0, 0);
                __builtin_prefetch(w3 + 4 * I + i, 0, 0);
            }
            for (long m = 0; m < M; m++) {
                const float *g = grad + m * O + o;
                float *t = tile + m * TILE_COLUMNS + i;
                store(t, load(t) + g[0] * a0 + g[1] * a1 + g[2] * a2 + g[3] * a3);
            }
        }
        for (long i = vectors; i < width; i++)
            for (long m = 0; m < M; m++) {
                const float *g = grad + m * O + o;
                tile[m * TILE_COLUMNS + i] += g[0] * w0[i] + g[1] * w1[i] + g[2] * w2[i] + g[3] * w3[i];
            }
    }
    for (; o < O; o++)
        for (long m = 0; m < M; m++)
            for (long i = 0; i < width; i++) tile[m * TILE_COLUMNS + i] += grad[m * O + o] * weight[o * I + i0 + i];
    for (long m = 0; m < M; m++) memcpy(out + m * I + i0, tile + m * TILE_COLUMNS, (size_t)width * sizeof(float));
}

int mnemodyn_region_input_gradient(const float *grad, const float *weight, float *out, long R, long M, long O, long I,
                                   int num_threads) {
    if (M < 1 || M > MAX_STREAMED_ROWS) return 1;
    const long tiles = (I + TILE_COLUMNS - 1) / TILE_COLUMNS;
#pragma omp parallel for num_threads(num_threads) schedule(static) collapse(2)
    for (long r = 0; r < R; r++)
        for (long t = 0; t < tiles; t++) {
            float tile[MAX_STREAMED_ROWS * TILE_COLUMNS];
            const long i0 = t * TILE_COLUMNS, i1 = i0 + TILE_COLUMNS < I ? i0 + TILE_COLUMNS : I;
            const float *grad_r = grad + r * M * O, *weight_r = weight + r * O * I;
            float *out_r = out + r * M * I;
            switch (M) {
                case 4: input_gradient_tile(grad_r, weight_r, out_r, tile, 4, O, I, i0, i1); break;
                case 8: input_gradient_tile(grad_r, weight_r, out_r, tile, 8, O, I, i0, i1); break;
                case 16: input_gradient_tile(grad_r, weight_r, out_r, tile, 16, O, I, i0, i1); break;
                default: input_gradient_tile(grad_r, weight_r, out_r, tile, M, O, I, i0, i1);
            }
        }
    return 0;
}

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
