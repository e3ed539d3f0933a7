/* The region convolution's three products for few rows per region, where a GEMM library's blocking does not pay.
 *
 *   forward            out[r, m, o] = bias[r, o] + sum_i rows[r, m, i] weight[r, o, i]
 *   input gradient     out[r, m, i] = sum_o grad[r, m, o] weight[r, o, i]
 *   weight gradient    out[r, o, i] = sum_m a[r, m, o] b[r, m, i]
 *
 * rows (R, M, I), weight (R, O, I), bias (R, O), grad and a (R, M, O), b (R, M, I), all contiguous. At the wavelet
 * levels of one sequence M is 4-62 (positions per region). At 4-16 rows the forward and the input gradient read, and
 * the weight gradient writes, a (O, I) matrix per region (600 x 3000 at the released size) for 8-32 multiply-adds per
 * element; at 31-62 rows the products are bound by arithmetic, and a library first copies (packs) that matrix into
 * its blocked layout. None of these kernels packs the weight.
 *
 * Forward: each weight row is read once per ROW_BLOCK rows, OUT_BLOCK weight rows at a time against ROW_BLOCK input
 * rows, the dot products summed in vector registers (OUT_BLOCK x ROW_BLOCK accumulators: as many as the target has
 * registers for). Input gradient, up to STREAMED_ROWS rows: each thread owns tiles of TILE_COLUMNS columns of the
 * output (kept in an L1 buffer) and streams the weight's rows through them, four at a time, prefetching the next
 * four. Above STREAMED_ROWS: each thread owns panels of PANEL_VECTORS vectors of columns and keeps PANEL_ROWS output
 * rows of a panel in registers while it walks the weight's rows down the panel (an outer product per weight row;
 * later row blocks find the panel in L2). Weight gradient: each output row is computed in vector registers from the
 * M rows of b and written with non-temporal stores where the target has them (x86 AVX and AVX-512), so the write does
 * not first read the destination's cache lines; rows are taken in blocks of BLOCK_ROWS that share their address
 * alignment, so one pass over b serves the whole block. Threads split regions and blocks. Every entry point takes
 * 1 <= M <= MAX_ROWS and returns 1 otherwise. Built with field_contraction.c into one library by
 * mnemodyn_hf/native_kernels.py. */
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
#define MAX_ROWS 64
#define STREAMED_ROWS 8
#define ROW_BLOCK 4
#define TILE_COLUMNS 512
#define PREFETCH_AHEAD 512 /* floats ahead in the forward's weight rows */
#define PANEL_PREFETCH 16  /* weight rows ahead in the input gradient's panels */
/* Register tiles, as large as the target's vector registers hold (accumulators, plus the operands of one step). */
#if defined(__AVX512F__) || defined(__aarch64__) /* 32 vector registers */
#define OUT_BLOCK 6
#define PANEL_ROWS 6
#define PANEL_VECTORS 4
#define BLOCK_ROWS 6
#define OUTER_VECTORS 3
#else /* 16 */
#define OUT_BLOCK 3
#define PANEL_ROWS 6
#define PANEL_VECTORS 2
#define BLOCK_ROWS 4
#define OUTER_VECTORS 3
#endif

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
    if (M < 1 || M > MAX_ROWS) return 1;
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

static void input_gradient_streamed(const float *grad, const float *weight, float *out, long R, long M, long O,
                                    long I, int num_threads) {
    const long tiles = (I + TILE_COLUMNS - 1) / TILE_COLUMNS;
#pragma omp parallel for num_threads(num_threads) schedule(static) collapse(2)
    for (long r = 0; r < R; r++)
        for (long t = 0; t < tiles; t++) {
            float tile[STREAMED_ROWS * TILE_COLUMNS];
            const long i0 = t * TILE_COLUMNS, i1 = i0 + TILE_COLUMNS < I ? i0 + TILE_COLUMNS : I;
            const float *grad_r = grad + r * M * O, *weight_r = weight + r * O * I;
            float *out_r = out + r * M * I;
            switch (M) {
                case 4: input_gradient_tile(grad_r, weight_r, out_r, tile, 4, O, I, i0, i1); break;
                case 8: input_gradient_tile(grad_r, weight_r, out_r, tile, 8, O, I, i0, i1); break;
                default: input_gradient_tile(grad_r, weight_r, out_r, tile, M, O, I, i0, i1);
            }
        }
}

/* out[m0 .. m0 + mr, i0 .. i0 + nv * LANES] of one region in registers (mr <= PANEL_ROWS, nv <= PANEL_VECTORS:
 * constants where inlined): for each weight row o, out[m] += grad[m, o] * weight[o]. The first row block prefetches
 * the panel PANEL_PREFETCH weight rows ahead (the later ones find it in L2). */
INLINE void panel_block(const float *grad, const float *weight, float *out, long O, long I, long m0, long mr, long i0,
                        long nv) {
    vf acc[PANEL_ROWS][PANEL_VECTORS];
    for (long m = 0; m < mr; m++)
        for (long v = 0; v < nv; v++) acc[m][v] = splat(0.0f);
    const float *g = grad + m0 * O;
    for (long o = 0; o < O; o++) {
        const float *w = weight + o * I + i0;
        vf wv[PANEL_VECTORS];
        for (long v = 0; v < nv; v++) wv[v] = load(w + v * LANES);
        if (m0 == 0 && o + PANEL_PREFETCH < O) { /* every cache line of the row's panel (it need not be aligned) */
            const char *ahead = (const char *)(w + PANEL_PREFETCH * I);
            for (long byte = 0; byte < nv * VECTOR_BYTES; byte += 64) __builtin_prefetch(ahead + byte, 0, 3);
            __builtin_prefetch(ahead + nv * VECTOR_BYTES - 1, 0, 3);
        }
        for (long m = 0; m < mr; m++) {
            const vf gm = splat(g[m * O + o]);
            for (long v = 0; v < nv; v++) acc[m][v] += gm * wv[v];
        }
    }
    for (long m = 0; m < mr; m++)
        for (long v = 0; v < nv; v++) store(out + (m0 + m) * I + i0 + v * LANES, acc[m][v]);
}

/* All M rows of one panel of nv vectors (a constant where inlined), PANEL_ROWS at a time. */
INLINE void panel_rows(const float *grad, const float *weight, float *out, long M, long O, long I, long i0, long nv) {
    long m0 = 0;
    for (; m0 + PANEL_ROWS <= M; m0 += PANEL_ROWS) panel_block(grad, weight, out, O, I, m0, PANEL_ROWS, i0, nv);
    switch (M - m0) {
        case 0: break;
        case 1: panel_block(grad, weight, out, O, I, m0, 1, i0, nv); break;
        case 2: panel_block(grad, weight, out, O, I, m0, 2, i0, nv); break;
        case 3: panel_block(grad, weight, out, O, I, m0, 3, i0, nv); break;
        default: panel_block(grad, weight, out, O, I, m0, M - m0, i0, nv);
    }
}

static void input_gradient_panels(const float *grad, const float *weight, float *out, long R, long M, long O, long I,
                                  int num_threads) {
    const long columns = PANEL_VECTORS * LANES, panels = (I + columns - 1) / columns;
#pragma omp parallel for num_threads(num_threads) schedule(static) collapse(2)
    for (long r = 0; r < R; r++)
        for (long p = 0; p < panels; p++) {
            const float *grad_r = grad + r * M * O, *weight_r = weight + r * O * I;
            float *out_r = out + r * M * I;
            const long i0 = p * columns, width = I - i0 < columns ? I - i0 : columns, nv = width / LANES;
            if (nv == PANEL_VECTORS)
                panel_rows(grad_r, weight_r, out_r, M, O, I, i0, PANEL_VECTORS);
            else if (nv > 0)
                panel_rows(grad_r, weight_r, out_r, M, O, I, i0, nv);
            for (long i = i0 + nv * LANES; i < i0 + width; i++) /* the last panel's columns past its vectors */
                for (long m = 0; m < M; m++) {
                    float x = 0.0f;
                    for (long o = 0; o < O; o++) x += grad_r[m * O + o] * weight_r[o * I + i];
                    out_r[m * I + i] = x;
                }
        }
}

int mnemodyn_region_input_gradient(const float *grad, const float *weight, float *out, long R, long M, long O, long I,
                                   int num_threads) {
    if (M < 1 || M > MAX_ROWS) return 1;
    if (M <= STREAMED_ROWS)
        input_gradient_streamed(grad, weight, out, R, M, O, I, num_threads);
    else
        input_gradient_panels(grad, weight, out, R, M, O, I, num_threads);
    return 0;
}

INLINE float scalar_entry(const float *s, const float *b, long M, long I, long i) {
    float x = 0.0f;
    for (long m = 0; m < M; m++) x += s[m] * b[m * I + i];
    return x;
}

/* `count` <= BLOCK_ROWS output rows o, o + step, ...: scalar up to the rows' common vector alignment, then vectors
 * (OUTER_VECTORS per iteration, each b load used by every row of the block), then the scalar tail. M and count are
 * constants where inlined from the switch below. */
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
    for (; i + OUTER_VECTORS * LANES <= I; i += OUTER_VECTORS * LANES) {
        vf x[BLOCK_ROWS][OUTER_VECTORS];
        for (long j = 0; j < count; j++)
            for (long v = 0; v < OUTER_VECTORS; v++) x[j][v] = splat(0.0f);
        for (long m = 0; m < M; m++) {
            vf bv[OUTER_VECTORS];
            for (long v = 0; v < OUTER_VECTORS; v++) bv[v] = load(b + m * I + i + v * LANES);
            for (long j = 0; j < count; j++) {
                const vf sj = splat(s[j][m]);
                for (long v = 0; v < OUTER_VECTORS; v++) x[j][v] += sj * bv[v];
            }
        }
        for (long j = 0; j < count; j++)
            for (long v = 0; v < OUTER_VECTORS; v++) STREAM(row[j] + i + v * LANES, x[j][v]);
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
