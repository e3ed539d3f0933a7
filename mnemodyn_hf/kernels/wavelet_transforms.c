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

/* The lowest and highest band offset (q + t - taps / 2) / 2 over the (phase q, tap t) pairs of even q + t - taps / 2. */
static void synthesis_shifts(long taps, long *low, long *high) {
    *low = taps, *high = -taps;
    for (long q = 0; q < 2; q++)
        for (long t = 0; t < taps; t++) {
            if ((q + t - taps / 2) % 2) continue;
            const long shift = floor_half(q + t - taps / 2);
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

int mnemodyn_dwt(const float *signal, const float *filters, float *approximation, float *detail, long rows,
                 long length, long taps, int num_threads) {
    if (taps < 2 || taps % 2 || length < 1) return 1;
    const long even = length + length % 2, half = even / 2, before = taps / 2 - 1, count = half + taps / 2;
    int failed = 0;
#pragma omp parallel num_threads(num_threads) reduction(| : failed)
    {
        float *buffer = malloc((size_t)(2 * count) * sizeof(float));
        if (!buffer) failed = 1;
#pragma omp for schedule(static)
        for (long row = 0; row < rows; row++) {
            if (!buffer) continue;
            float *restrict e = buffer, *restrict o = buffer + count;
            extended_phases(signal + row * length, length, even, before, e, o, count);
            float *bands[2] = {approximation + row * half, detail + row * half};
            for (int b = 0; b < 2; b++) {
                float *restrict out = bands[b];
                const float *f = filters + b * taps;
                for (long j = 0; j < half; j++) out[j] = 0.0f;
                for (long t = 0; t < taps; t++) {
                    const float *restrict phase = (t % 2 ? o : e) + t / 2;
                    const float c = f[t];
                    for (long j = 0; j < half; j++) out[j] += c * phase[j];
                }
            }
        }
        free(buffer);
    }
    return failed;
}

int mnemodyn_dwt_adjoint(const float *grad_approximation, const float *grad_detail, const float *filters,
                         float *grad_signal, long rows, long length, long taps, int num_threads) {
    if (taps < 2 || taps % 2 || length < 1) return 1;
    const long even = length + length % 2, half = even / 2, before = taps / 2 - 1, count = half + taps / 2;
    int failed = 0;
#pragma omp parallel num_threads(num_threads) reduction(| : failed)
    {
        float *buffer = malloc((size_t)(2 * count + even) * sizeof(float));
        if (!buffer) failed = 1;
#pragma omp for schedule(static)
        for (long row = 0; row < rows; row++) {
            if (!buffer) continue;
            float *restrict e = buffer, *restrict o = buffer + count, *restrict folded = buffer + 2 * count;
            memset(buffer, 0, (size_t)(2 * count + even) * sizeof(float));
            const float *grads[2] = {grad_approximation + row * half, grad_detail + row * half};
            for (int b = 0; b < 2; b++) {
                const float *restrict g = grads[b];
                const float *f = filters + b * taps;
                for (long t = 0; t < taps; t++) {
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
            float *out = grad_signal + row * length;
            memcpy(out, folded, (size_t)length * sizeof(float));
            if (length % 2) out[length - 1] += folded[length]; /* the repeated last sample */
        }
        free(buffer);
    }
    return failed;
}

int mnemodyn_idwt(const float *approximation, const float *detail, const float *filters, float *out, long rows,
                  long half, long taps, int num_threads) {
    if (taps < 2 || taps % 2 || half < 1) return 1;
    long low, high;
    synthesis_shifts(taps, &low, &high);
    const long span = half + high - low;
    int failed = 0;
#pragma omp parallel num_threads(num_threads) reduction(| : failed)
    {
        float *buffer = malloc((size_t)(2 * span + 2 * half) * sizeof(float));
        if (!buffer) failed = 1;
#pragma omp for schedule(static)
        for (long row = 0; row < rows; row++) {
            if (!buffer) continue;
            float *restrict ext[2] = {buffer, buffer + span};
            float *restrict phases[2] = {buffer + 2 * span, buffer + 2 * span + half};
            const float *bands[2] = {approximation + row * half, detail + row * half};
            for (int b = 0; b < 2; b++) periodic_window(bands[b], half, low, ext[b], span);
            for (int q = 0; q < 2; q++) {
                float *restrict phase = phases[q];
                for (long i = 0; i < half; i++) phase[i] = 0.0f;
                for (long t = 0; t < taps; t++) {
                    if ((q + t - taps / 2) % 2) continue;
                    const long offset = floor_half(q + t - taps / 2) - low;
                    for (int b = 0; b < 2; b++) {
                        const float c = filters[b * taps + t];
                        const float *restrict source = ext[b] + offset;
                        for (long i = 0; i < half; i++) phase[i] += c * source[i];
                    }
                }
            }
            float *restrict y = out + row * 2 * half;
            for (long i = 0; i < half; i++) {
                y[2 * i] = phases[0][i];
                y[2 * i + 1] = phases[1][i];
            }
        }
        free(buffer);
    }
    return failed;
}

int mnemodyn_idwt_adjoint(const float *grad, const float *filters, float *grad_approximation, float *grad_detail,
                          long rows, long half, long taps, int num_threads) {
    if (taps < 2 || taps % 2 || half < 1) return 1;
    long low, high;
    synthesis_shifts(taps, &low, &high);
    const long span = half + high - low;
    int failed = 0;
#pragma omp parallel num_threads(num_threads) reduction(| : failed)
    {
        float *buffer = malloc((size_t)(2 * span + 2 * half) * sizeof(float));
        if (!buffer) failed = 1;
#pragma omp for schedule(static)
        for (long row = 0; row < rows; row++) {
            if (!buffer) continue;
            float *restrict ext[2] = {buffer, buffer + span};
            float *restrict phases[2] = {buffer + 2 * span, buffer + 2 * span + half};
            const float *y = grad + row * 2 * half;
            for (long i = 0; i < half; i++) {
                phases[0][i] = y[2 * i];
                phases[1][i] = y[2 * i + 1];
            }
            memset(buffer, 0, (size_t)(2 * span) * sizeof(float));
            for (int q = 0; q < 2; q++)
                for (long t = 0; t < taps; t++) {
                    if ((q + t - taps / 2) % 2) continue;
                    const long offset = floor_half(q + t - taps / 2) - low;
                    for (int b = 0; b < 2; b++) {
                        const float c = filters[b * taps + t];
                        float *restrict target = ext[b] + offset;
                        const float *restrict source = phases[q];
                        for (long i = 0; i < half; i++) target[i] += c * source[i];
                    }
                }
            float *outs[2] = {grad_approximation + row * half, grad_detail + row * half};
            for (int b = 0; b < 2; b++) {
                memset(outs[b], 0, (size_t)half * sizeof(float));
                for (long k = 0, target = wrap(low, half); k < span; k++, target = target + 1 == half ? 0 : target + 1)
                    outs[b][target] += ext[b][k];
            }
        }
        free(buffer);
    }
    return failed;
}
