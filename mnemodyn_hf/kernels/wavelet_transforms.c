/* One level of the periodized DWT and inverse DWT (PyWavelets' "periodization" mode) and their adjoints, on the rows
 * of contiguous (rows, length) arrays; threads split the rows. The conventions are wavelets.py's:
 *
 *   analysis   band_b[j] = sum_t f[b, t] ext[2 j + t],  ext[k] = x[(k - before) mod even],  before = taps / 2 - 1,
 *              where an odd-length x is first extended by repeating its last sample (even = length + length % 2);
 *   synthesis  out[2 i + q] = sum_{t, b : (q + t - taps / 2) even} f[b, t] band_b[(i + (q + t - taps / 2) / 2) mod n].
 *
 * Each row is deinterleaved into its even and odd samples (or interleaved from its two phases) in a per-thread
 * buffer, so every tap is one contiguous multiply-add over the row, which the compiler vectorizes. The filter
 * length must be even (PyWavelets' filters are); the entry points return 1 otherwise, or when the buffer cannot be
 * allocated. Built with the other kernels into one library by mnemodyn_hf/native_kernels.py. */
#include <stdlib.h>
#include <string.h>

static long wrap(long k, long n) { return ((k % n) + n) % n; }

static long floor_half(long k) { return k >= 0 ? k / 2 : -((1 - k) / 2); }

/* Output phase q meets tap t when q + t - taps / 2 is even, and then reads the band shifted by (q + t - taps / 2) / 2. */
static int synthesis_pair(long q, long t, long taps) { return (q + t - taps / 2) % 2 == 0; }

static long synthesis_shift(long q, long t, long taps) { return floor_half(q + t - taps / 2); }

/* The lowest and highest band shift over the (phase, tap) pairs that meet. */
static void synthesis_shifts(long taps, long *low, long *high) {
    *low = taps, *high = -taps;
    for (long q = 0; q < 2; q++)
        for (long t = 0; t < taps; t++) {
            if (!synthesis_pair(q, t, taps)) continue;
            const long shift = synthesis_shift(q, t, taps);
            *low = shift < *low ? shift : *low;
            *high = shift > *high ? shift : *high;
        }
}

/* window[k] = x[(k + start) mod n] for k < span: copies of whole runs of the period. */
static void periodic_window(const float *x, long n, long start, float *window, long span) {
    for (long k = 0, source = wrap(start, n); k < span;) {
        const long run = n - source < span - k ? n - source : span - k;
        memcpy(window + k, x + source, (size_t)run * sizeof(float));
        k += run;
        source = 0;
    }
}

/* Sample k of the even-length period: an odd-length row repeats its last sample. */
static float period_sample(const float *x, long length, long even, long k) {
    k = wrap(k, even);
    return x[k < length ? k : length - 1];
}

/* The even and odd samples of the periodically extended row: phase_p[m] = ext[2 m + p] = x[(2 m + p - before) mod
 * even], m < count; a plain (vectorized) deinterleave where no sample wraps, the period's arithmetic at the ends. */
static void extended_phases(const float *restrict x, long length, long even, long before, float *restrict even_phase,
                            float *restrict odd_phase, long count) {
    long first = (before + 1) / 2, stop = floor_half(length - 2 + before) + 1; /* 0 <= 2 m - before < length - 1 */
    first = first < count ? first : count;
    stop = stop < first ? first : stop < count ? stop : count;
    for (long m = 0; m < first; m++) {
        even_phase[m] = period_sample(x, length, even, 2 * m - before);
        odd_phase[m] = period_sample(x, length, even, 2 * m + 1 - before);
    }
    const float *interior = x - before;
    for (long m = first; m < stop; m++) {
        even_phase[m] = interior[2 * m];
        odd_phase[m] = interior[2 * m + 1];
    }
    for (long m = stop; m < count; m++) {
        even_phase[m] = period_sample(x, length, even, 2 * m - before);
        odd_phase[m] = period_sample(x, length, even, 2 * m + 1 - before);
    }
}

/* What one entry point hands to its per-row function: two inputs and two outputs (unused ones NULL), the filters
 * (2, taps), the row length, and for the synthesis the band window's start and width. */
struct transform {
    const float *in[2], *filters;
    float *out[2];
    long length, taps, low, span;
};

typedef void (*row_function)(const struct transform *, long row, float *buffer);

/* `work` on every row, threads splitting the rows, each with its own buffer of `buffer_floats`; 1 if a buffer
 * could not be allocated. */
static int for_each_row(row_function work, const struct transform *job, long rows, long buffer_floats,
                        int num_threads) {
    int failed = 0;
#pragma omp parallel num_threads(num_threads) reduction(| : failed)
    {
        float *buffer = malloc((size_t)buffer_floats * sizeof(float));
        if (!buffer) failed = 1;
#pragma omp for schedule(static)
        for (long row = 0; row < rows; row++)
            if (buffer) work(job, row, buffer);
        free(buffer);
    }
    return failed;
}

/* The analysis's sizes for a row of `length`: the even period, the band length, the left extension and the phases'
 * length (half + taps / 2 samples reach every tap of every output). */
static void analysis_sizes(long length, long taps, long *even, long *half, long *before, long *count) {
    *even = length + length % 2, *half = *even / 2, *before = taps / 2 - 1, *count = *half + taps / 2;
}

static void dwt_row(const struct transform *job, long row, float *buffer) {
    long even, half, before, count;
    analysis_sizes(job->length, job->taps, &even, &half, &before, &count);
    float *restrict e = buffer, *restrict o = buffer + count;
    extended_phases(job->in[0] + row * job->length, job->length, even, before, e, o, count);
    for (int b = 0; b < 2; b++) {
        float *restrict out = job->out[b] + row * half;
        const float *f = job->filters + b * job->taps;
        for (long j = 0; j < half; j++) out[j] = 0.0f;
        for (long t = 0; t < job->taps; t++) {
            const float *restrict phase = (t % 2 ? o : e) + t / 2;
            const float c = f[t];
            for (long j = 0; j < half; j++) out[j] += c * phase[j];
        }
    }
}

static void dwt_adjoint_row(const struct transform *job, long row, float *buffer) {
    long even, half, before, count;
    analysis_sizes(job->length, job->taps, &even, &half, &before, &count);
    float *restrict e = buffer, *restrict o = buffer + count, *restrict folded = buffer + 2 * count;
    memset(buffer, 0, (size_t)(2 * count + even) * sizeof(float));
    for (int b = 0; b < 2; b++) {
        const float *restrict g = job->in[b] + row * half;
        const float *f = job->filters + b * job->taps;
        for (long t = 0; t < job->taps; t++) {
            float *restrict phase = (t % 2 ? o : e) + t / 2;
            const float c = f[t];
            for (long j = 0; j < half; j++) phase[j] += c * g[j];
        }
    }
    long k = wrap(-before, even); /* ext[2 m + p] copies sample (2 m + p - before) mod even */
    for (long m = 0; m < count; m++) {
        folded[k] += e[m];
        if (++k == even) k = 0;
        folded[k] += o[m];
        if (++k == even) k = 0;
    }
    float *out = job->out[0] + row * job->length;
    memcpy(out, folded, (size_t)job->length * sizeof(float));
    if (job->length % 2) out[job->length - 1] += folded[job->length]; /* the repeated last sample */
}

/* The synthesis's multiply-adds between the band windows and the two output phases: phase_q += f[b, t] ext_b[shift ..]
 * for every meeting (phase, tap) pair, or, for the adjoint, ext_b[shift ..] += f[b, t] phase_q. */
static void synthesis_taps(const struct transform *job, float *ext[2], float *phases[2], int adjoint) {
    const long half = job->length;
    for (long q = 0; q < 2; q++)
        for (long t = 0; t < job->taps; t++) {
            if (!synthesis_pair(q, t, job->taps)) continue;
            const long offset = synthesis_shift(q, t, job->taps) - job->low;
            for (int b = 0; b < 2; b++) {
                const float c = job->filters[b * job->taps + t];
                float *restrict to = adjoint ? ext[b] + offset : phases[q];
                const float *restrict from = adjoint ? phases[q] : ext[b] + offset;
                for (long i = 0; i < half; i++) to[i] += c * from[i];
            }
        }
}

static void idwt_row(const struct transform *job, long row, float *buffer) {
    const long half = job->length, span = job->span;
    float *ext[2] = {buffer, buffer + span}, *phases[2] = {buffer + 2 * span, buffer + 2 * span + half};
    for (int b = 0; b < 2; b++) periodic_window(job->in[b] + row * half, half, job->low, ext[b], span);
    memset(phases[0], 0, (size_t)(2 * half) * sizeof(float));
    synthesis_taps(job, ext, phases, 0);
    float *restrict y = job->out[0] + row * 2 * half;
    for (long i = 0; i < half; i++) {
        y[2 * i] = phases[0][i];
        y[2 * i + 1] = phases[1][i];
    }
}

static void idwt_adjoint_row(const struct transform *job, long row, float *buffer) {
    const long half = job->length, span = job->span;
    float *ext[2] = {buffer, buffer + span}, *phases[2] = {buffer + 2 * span, buffer + 2 * span + half};
    const float *y = job->in[0] + row * 2 * half;
    for (long i = 0; i < half; i++) {
        phases[0][i] = y[2 * i];
        phases[1][i] = y[2 * i + 1];
    }
    memset(buffer, 0, (size_t)(2 * span) * sizeof(float));
    synthesis_taps(job, ext, phases, 1);
    for (int b = 0; b < 2; b++) {
        float *out = job->out[b] + row * half;
        memset(out, 0, (size_t)half * sizeof(float));
        for (long k = 0, target = wrap(job->low, half); k < span; k++, target = target + 1 == half ? 0 : target + 1)
            out[target] += ext[b][k];
    }
}

int mnemodyn_dwt(const float *signal, const float *filters, float *approximation, float *detail, long rows,
                 long length, long taps, int num_threads) {
    if (taps < 2 || taps % 2 || length < 1) return 1;
    long even, half, before, count;
    analysis_sizes(length, taps, &even, &half, &before, &count);
    const struct transform job = {{signal, NULL}, filters, {approximation, detail}, length, taps, 0, 0};
    return for_each_row(dwt_row, &job, rows, 2 * count, num_threads);
}

int mnemodyn_dwt_adjoint(const float *grad_approximation, const float *grad_detail, const float *filters,
                         float *grad_signal, long rows, long length, long taps, int num_threads) {
    if (taps < 2 || taps % 2 || length < 1) return 1;
    long even, half, before, count;
    analysis_sizes(length, taps, &even, &half, &before, &count);
    const struct transform job = {{grad_approximation, grad_detail}, filters, {grad_signal, NULL}, length, taps, 0, 0};
    return for_each_row(dwt_adjoint_row, &job, rows, 2 * count + even, num_threads);
}

int mnemodyn_idwt(const float *approximation, const float *detail, const float *filters, float *out, long rows,
                  long half, long taps, int num_threads) {
    if (taps < 2 || taps % 2 || half < 1) return 1;
    long low, high;
    synthesis_shifts(taps, &low, &high);
    const struct transform job = {{approximation, detail}, filters, {out, NULL}, half, taps, low, half + high - low};
    return for_each_row(idwt_row, &job, rows, 2 * job.span + 2 * half, num_threads);
}

int mnemodyn_idwt_adjoint(const float *grad, const float *filters, float *grad_approximation, float *grad_detail,
                          long rows, long half, long taps, int num_threads) {
    if (taps < 2 || taps % 2 || half < 1) return 1;
    long low, high;
    synthesis_shifts(taps, &low, &high);
    const struct transform job = {{grad, NULL}, filters, {grad_approximation, grad_detail}, half, taps, low,
                                  half + high - low};
    return for_each_row(idwt_adjoint_row, &job, rows, 2 * job.span + 2 * half, num_threads);
}
