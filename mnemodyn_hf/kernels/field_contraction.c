/* The MnemoDyn vector-field contraction for tanh, fused: the (frames, R, C) expansion is never written to memory.
 *
 * Layout (transposed from nn.Linear's, so that the innermost loop runs over ROIs with unit stride):
 *   code (N, K), derivative (N, R), weight (K, C, R), bias (C, R), velocity (N, C).
 *   pre[n, c, r] = bias[c, r] + sum_k code[n, k] weight[k, c, r],  f = tanh(pre)
 *   velocity[n, c] = sum_r f[n, c, r] derivative[n, r]
 * Threads split the frames; each walks a block of frames for every channel c, so the channel's weight rows stay in
 * L1 while the block's frames use them. tanh is an odd rational function of degree (9, 8), clamped at |x| = 9:
 * absolute error < 4e-7 against the exact tanh (float32 tanh itself is within 8e-8).
 *
 * The ROI loops are written with the vector types of vector.h, VECTOR_BYTES wide. R must be a multiple of LANES
 * (the caller zero-pads the ROI axis; a padded ROI with zero weight, bias and derivative adds nothing): both entry
 * points return 1 otherwise.
 * Built and loaded by mnemodyn_hf/native_kernels.py; the eager path is field_contraction.py. */
#include "vector.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_INDEX() omp_get_thread_num()
#else
#define THREAD_INDEX() 0
#endif

#ifndef BLOCK_FRAMES
#define BLOCK_FRAMES 6
#endif
#define MAX_UNROLLED_K 4

/* The rational tanh: numerator and denominator in s = x^2. */
#define TANH_P(s)                                                                                                  \
    ((((splat(1.3499255285609055e-08f) * s + splat(2.070249984786769e-05f)) * s + splat(3.5007553617641086e-03f)) \
      * s + splat(1.338518951796802e-01f)) * s + splat(9.999999279125368e-01f))
#define TANH_Q(s)                                                                                                  \
    ((((splat(7.832562182442306e-07f) * s + splat(3.294452024763167e-04f)) * s + splat(2.5896075007110133e-02f))  \
      * s + splat(4.6718493598446637e-01f)) * s + splat(1.0f))

/* tanh on x clamped to [-9, 9]: P and Q are even, so x P(x^2) / Q(x^2) is odd and needs no sign handling. */
INLINE vf tanh_vector(vf x) {
    x = clamp(x, 9.0f);
    const vf s = x * x;
    return x * TANH_P(s) / TANH_Q(s);
}

/* velocity[n, c] for the frames of one block and one channel. K is a constant 1-4 where inlined from the switch
 * below, so the k loops unroll and the weight rows' pointers stay in registers. */
INLINE void forward_channel(const float *code, const float *derivative, const float *weight, const float *bias,
                            float *velocity, long start, long stop, long K, long C, long R, long c) {
    const float *bias_c = bias + c * R;
    for (long n = start; n < stop; n++) {
        const float *z = code + n * K, *dx = derivative + n * R;
        vf acc = splat(0.0f);
        for (long r = 0; r < R; r += LANES) {
            vf x = load(bias_c + r);
            for (long k = 0; k < K; k++) x += z[k] * load(weight + (k * C + c) * R + r);
            acc += tanh_vector(x) * load(dx + r);
        }
        velocity[n * C + c] = horizontal_sum(acc);
    }
}

INLINE void forward_block(const float *code, const float *derivative, const float *weight, const float *bias,
                          float *velocity, long start, long stop, long K, long C, long R) {
    for (long c = 0; c < C; c++) forward_channel(code, derivative, weight, bias, velocity, start, stop, K, C, R, c);
}

int mnemodyn_tanh_field_forward(const float *code, const float *derivative, const float *weight, const float *bias,
                                float *velocity, long N, long K, long C, long R, int num_threads) {
    if (R % LANES) return 1;
#pragma omp parallel for num_threads(num_threads) schedule(static)
    for (long start = 0; start < N; start += BLOCK_FRAMES) {
        const long stop = start + BLOCK_FRAMES < N ? start + BLOCK_FRAMES : N;
        switch (K) {
            case 1: forward_block(code, derivative, weight, bias, velocity, start, stop, 1, C, R); break;
            case 2: forward_block(code, derivative, weight, bias, velocity, start, stop, 2, C, R); break;
            case 3: forward_block(code, derivative, weight, bias, velocity, start, stop, 3, C, R); break;
            case 4: forward_block(code, derivative, weight, bias, velocity, start, stop, 4, C, R); break;
            default: forward_block(code, derivative, weight, bias, velocity, start, stop, K, C, R);
        }
    }
    return 0;
}

/* The backward pass of channel c for `count` <= BLOCK_FRAMES frames from `start`, for K <= MAX_UNROLLED_K (count and
 * K are constants where inlined). The frame loop runs inside the ROI loop: each ROI vector's weight and bias are
 * loaded once for the block, its weight and bias gradients are summed over the block's frames in registers and
 * written once, and the frames' grad_code sums stay in registers for the whole sweep. Accumulates into the frames'
 * grad_derivative rows (skipped when grad_derivative is NULL), the thread's weight and bias gradient rows, and
 * grad_code. */
INLINE void backward_channel(const float *code, const float *derivative, const float *weight, const float *bias_c,
                             const float *grad_velocity, float *grad_code, float *grad_derivative, float *own,
                             long start, long count, long K, long C, long R, long c) {
    float *gbias = own + (K * C + c) * R;
    float g[BLOCK_FRAMES], z[BLOCK_FRAMES][MAX_UNROLLED_K];
    vf a[BLOCK_FRAMES][MAX_UNROLLED_K];
    for (long n = 0; n < count; n++) {
        g[n] = grad_velocity[(start + n) * C + c];
        for (long k = 0; k < K; k++) {
            z[n][k] = code[(start + n) * K + k];
            a[n][k] = splat(0.0f);
        }
    }
    for (long r = 0; r < R; r += LANES) {
        const vf b = load(bias_c + r);
        vf w[MAX_UNROLLED_K], gw[MAX_UNROLLED_K], gb = splat(0.0f);
        for (long k = 0; k < K; k++) {
            w[k] = load(weight + (k * C + c) * R + r);
            gw[k] = splat(0.0f);
        }
        vf f[BLOCK_FRAMES]; /* every frame's tanh first: independent chains the core overlaps */
        for (long n = 0; n < count; n++) {
            vf x = b;
            for (long k = 0; k < K; k++) x += z[n][k] * w[k];
            f[n] = tanh_vector(x);
        }
        for (long n = 0; n < count; n++) {
            if (grad_derivative) {
                float *gdx = grad_derivative + (start + n) * R + r;
                store(gdx, load(gdx) + f[n] * g[n]);
            }
            const vf dxg = load(derivative + (start + n) * R + r) * g[n]; /* off the chain that waits for f */
            const vf gp = dxg - f[n] * f[n] * dxg;
            gb += gp;
            for (long k = 0; k < K; k++) {
                gw[k] += z[n][k] * gp;
                a[n][k] += w[k] * gp;
            }
        }
        store(gbias + r, load(gbias + r) + gb);
        for (long k = 0; k < K; k++) {
            float *own_w = own + (k * C + c) * R + r;
            store(own_w, load(own_w) + gw[k]);
        }
    }
    for (long n = 0; n < count; n++)
        for (long k = 0; k < K; k++) grad_code[(start + n) * K + k] += horizontal_sum(a[n][k]);
}

/* The same for any K: each vector's weight-gradient products are summed across lanes into grad_code_n at once. */
static void backward_entry_any(const float *z, const float *weight, const float *bias_c, const float *dx, float g,
                               float *gdx, float *own_weight, float *gbias, float *grad_code_n, long K, long C,
                               long R, long c) {
    const vf gv = splat(g);
    for (long r = 0; r < R; r += LANES) {
        vf x = load(bias_c + r);
        for (long k = 0; k < K; k++) x += z[k] * load(weight + (k * C + c) * R + r);
        const vf f = tanh_vector(x);
        if (gdx) store(gdx + r, load(gdx + r) + f * gv);
        const vf gp = (splat(1.0f) - f * f) * load(dx + r) * gv;
        store(gbias + r, load(gbias + r) + gp);
        for (long k = 0; k < K; k++) {
            grad_code_n[k] += horizontal_sum(load(weight + (k * C + c) * R + r) * gp);
            float *gw = own_weight + (k * C + c) * R + r;
            store(gw, load(gw) + z[k] * gp);
        }
    }
}

INLINE void backward_block(const float *code, const float *derivative, const float *weight, const float *bias,
                           const float *grad_velocity, float *grad_code, float *grad_derivative, float *own,
                           long start, long stop, long K, long C, long R) {
    for (long c = 0; c < C; c++) {
        if (K <= MAX_UNROLLED_K && stop - start == BLOCK_FRAMES)
            backward_channel(code, derivative, weight, bias + c * R, grad_velocity, grad_code, grad_derivative, own,
                             start, BLOCK_FRAMES, K, C, R, c);
        else if (K <= MAX_UNROLLED_K)
            backward_channel(code, derivative, weight, bias + c * R, grad_velocity, grad_code, grad_derivative, own,
                             start, stop - start, K, C, R, c);
        else
            for (long n = start; n < stop; n++)
                backward_entry_any(code + n * K, weight, bias + c * R, derivative + n * R,
                                   grad_velocity[n * C + c], grad_derivative ? grad_derivative + n * R : NULL, own,
                                   own + (K * C + c) * R,
                                   grad_code + n * K, K, C, R, c);
    }
}

/* backward_block with the grad_derivative pointer a constant NULL where it is not wanted, so that branch compiles
 * out of the inner loop. */
INLINE void backward_block_of(const float *code, const float *derivative, const float *weight, const float *bias,
                              const float *grad_velocity, float *grad_code, float *grad_derivative, float *own,
                              long start, long stop, long K, long C, long R) {
    if (grad_derivative)
        backward_block(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative, own, start, stop, K,
                       C, R);
    else
        backward_block(code, derivative, weight, bias, grad_velocity, grad_code, NULL, own, start, stop, K, C, R);
}

/* Gradients for grad_velocity g (N, C):
 *   grad_derivative[n, r] = sum_c f g[n, c] (skipped when grad_derivative is NULL);
 *   gp = (1 - f^2) derivative[n, r] g[n, c]
 *   grad_code[n, k] = sum_{c, r} weight[k, c, r] gp;   grad_weight[k, c, r] = sum_n code[n, k] gp;   grad_bias = sum_n gp
 * grad_weight_and_bias is (num_threads, K + 1, C, R), zeroed by the caller: each thread sums its frames into its
 * own slice (row K holds the bias gradient); the caller adds the slices. */
int mnemodyn_tanh_field_backward(const float *code, const float *derivative, const float *weight, const float *bias,
                                 const float *grad_velocity, float *grad_code, float *grad_derivative,
                                 float *grad_weight_and_bias, long N, long K, long C, long R, int num_threads) {
    if (R % LANES) return 1;
#pragma omp parallel num_threads(num_threads)
    {
        float *own = grad_weight_and_bias + (long)THREAD_INDEX() * (K + 1) * C * R;
#pragma omp for schedule(static)
        for (long start = 0; start < N; start += BLOCK_FRAMES) {
            const long stop = start + BLOCK_FRAMES < N ? start + BLOCK_FRAMES : N;
            if (grad_derivative)
                memset(grad_derivative + start * R, 0, (size_t)((stop - start) * R) * sizeof(float));
            memset(grad_code + start * K, 0, (size_t)((stop - start) * K) * sizeof(float));
            switch (K) {
                case 1: backward_block_of(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                          own, start, stop, 1, C, R); break;
                case 2: backward_block_of(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                          own, start, stop, 2, C, R); break;
                case 3: backward_block_of(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                          own, start, stop, 3, C, R); break;
                case 4: backward_block_of(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                          own, start, stop, 4, C, R); break;
                default: backward_block_of(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                           own, start, stop, K, C, R);
            }
        }
    }
    return 0;
}
