/* The MnemoDyn vector-field contraction for tanh, fused: the (frames, R, C) expansion is never written to memory.
 *
 * Layout (transposed from nn.Linear's, so that the innermost loop runs over ROIs with unit stride):
 *   code (N, K), derivative (N, R), weight (K, C, R), bias (C, R), velocity (N, C).
 *   pre[n, c, r] = bias[c, r] + sum_k code[n, k] weight[k, c, r],  f = tanh(pre)
 *   velocity[n, c] = sum_r f[n, c, r] derivative[n, r]
 * Threads split the frames; each walks a block of frames for every channel c, so the channel's weight rows stay in
 * L1 while the block's frames use them. tanh is an odd rational function of degree (9, 8), clamped at |x| = 9:
 * absolute error < 4e-7 against the exact tanh (float32 tanh itself is within 8e-8).
 * Built and loaded by mnemodyn_hf/native_kernels.py; the eager path is field_contraction.py. */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#define THREAD_INDEX() omp_get_thread_num()
#else
#define THREAD_INDEX() 0
#endif

#define BLOCK_FRAMES 16

static inline float tanh_rational(float x) {
    x = x < -9.0f ? -9.0f : (x > 9.0f ? 9.0f : x);
    const float s = x * x;
    const float p = (((1.3499255285609055e-08f * s + 2.070249984786769e-05f) * s + 3.5007553617641086e-03f) * s
                     + 1.338518951796802e-01f) * s + 9.999999279125368e-01f;
    const float q = (((7.832562182442306e-07f * s + 3.294452024763167e-04f) * s + 2.5896075007110133e-02f) * s
                     + 4.6718493598446637e-01f) * s + 1.0f;
    return x * p / q;
}

static void pre_activation_row(float *pre, const float *code_n, const float *weight, const float *bias_c,
                               long K, long C, long R, long c) {
    memcpy(pre, bias_c, (size_t)R * sizeof(float));
    for (long k = 0; k < K; k++) {
        const float zk = code_n[k];
        const float *w = weight + (k * C + c) * R;
#pragma omp simd
        for (long r = 0; r < R; r++) pre[r] += zk * w[r];
    }
}

static float *row_buffer(long R) {
    return aligned_alloc(64, (size_t)((R * sizeof(float) + 63) / 64) * 64);
}

/* One (frame, channel): sum_r tanh(bias_c[r] + sum_k code_n[k] weight[k, c, r]) dx[r]. Inlined with K a constant
 * (1-4) the pre-activation stays in registers; other K go through a row buffer. */
static inline __attribute__((always_inline)) float velocity_entry(const float *code_n, const float *weight,
                                                                  const float *bias_c, const float *dx, float *pre,
                                                                  long K, long C, long R, long c, int buffered) {
    float acc = 0.0f;
    if (buffered) {
        pre_activation_row(pre, code_n, weight, bias_c, K, C, R, c);
#pragma omp simd reduction(+ : acc)
        for (long r = 0; r < R; r++) acc += tanh_rational(pre[r]) * dx[r];
        return acc;
    }
#pragma omp simd reduction(+ : acc)
    for (long r = 0; r < R; r++) {
        float x = bias_c[r];
        for (long k = 0; k < K; k++) x += code_n[k] * weight[(k * C + c) * R + r];
        acc += tanh_rational(x) * dx[r];
    }
    return acc;
}

static inline __attribute__((always_inline)) void forward_block(const float *code, const float *derivative,
                                                                const float *weight, const float *bias,
                                                                float *velocity, float *pre, long start, long stop,
                                                                long K, long C, long R, int buffered) {
    for (long c = 0; c < C; c++)
        for (long n = start; n < stop; n++)
            velocity[n * C + c] =
                velocity_entry(code + n * K, weight, bias + c * R, derivative + n * R, pre, K, C, R, c, buffered);
}

int mnemodyn_tanh_field_forward(const float *code, const float *derivative, const float *weight, const float *bias,
                                float *velocity, long N, long K, long C, long R, int num_threads) {
    int failed = 0;
#pragma omp parallel num_threads(num_threads) reduction(| : failed)
    {
        float *pre = row_buffer(R);
        if (pre == NULL) failed = 1;
#pragma omp for schedule(static)
        for (long start = 0; start < N; start += BLOCK_FRAMES) {
            if (pre == NULL) continue;
            const long stop = start + BLOCK_FRAMES < N ? start + BLOCK_FRAMES : N;
            switch (K) {
                case 1: forward_block(code, derivative, weight, bias, velocity, pre, start, stop, 1, C, R, 0); break;
                case 2: forward_block(code, derivative, weight, bias, velocity, pre, start, stop, 2, C, R, 0); break;
                case 3: forward_block(code, derivative, weight, bias, velocity, pre, start, stop, 3, C, R, 0); break;
                case 4: forward_block(code, derivative, weight, bias, velocity, pre, start, stop, 4, C, R, 0); break;
                default: forward_block(code, derivative, weight, bias, velocity, pre, start, stop, K, C, R, 1);
            }
        }
        free(pre);
    }
    return failed;
}

/* One (frame, channel) of the backward pass for K a constant 1-4, in one sweep over the ROIs: accumulates into the
 * frame's grad_derivative row, the thread's bias and weight gradient rows, and returns through grad_code_n. */
static inline __attribute__((always_inline)) void backward_entry_small(
    const float *code_n, const float *weight, const float *bias_c, const float *dx, float g, float *gdx,
    float *own_weight, float *gbias, float *grad_code_n, long K, long C, long R, long c) {
    const float *w[4];
    float *gw[4];
    float z[4];
    for (long k = 0; k < 4; k++) {
        const long j = k < K ? k : 0;
        w[k] = weight + (j * C + c) * R;
        gw[k] = own_weight + (j * C + c) * R;
        z[k] = code_n[j];
    }
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (long r = 0; r < R; r++) {
        float x = bias_c[r] + z[0] * w[0][r];
        if (K > 1) x += z[1] * w[1][r];
        if (K > 2) x += z[2] * w[2][r];
        if (K > 3) x += z[3] * w[3][r];
        const float f = tanh_rational(x);
        gdx[r] += f * g;
        const float gp = (1.0f - f * f) * dx[r] * g;
        gbias[r] += gp;
        a0 += w[0][r] * gp;
        gw[0][r] += z[0] * gp;
        if (K > 1) { a1 += w[1][r] * gp; gw[1][r] += z[1] * gp; }
        if (K > 2) { a2 += w[2][r] * gp; gw[2][r] += z[2] * gp; }
        if (K > 3) { a3 += w[3][r] * gp; gw[3][r] += z[3] * gp; }
    }
    grad_code_n[0] += a0;
    if (K > 1) grad_code_n[1] += a1;
    if (K > 2) grad_code_n[2] += a2;
    if (K > 3) grad_code_n[3] += a3;
}

/* The same for any K, through row buffers. */
static void backward_entry_any(const float *code_n, const float *weight, const float *bias_c, const float *dx,
                               float g, float *gdx, float *own_weight, float *gbias, float *grad_code_n, float *pre,
                               float *gp, long K, long C, long R, long c) {
    pre_activation_row(pre, code_n, weight, bias_c, K, C, R, c);
#pragma omp simd
    for (long r = 0; r < R; r++) {
        const float f = tanh_rational(pre[r]);
        gdx[r] += f * g;
        gp[r] = (1.0f - f * f) * dx[r] * g;
        gbias[r] += gp[r];
    }
    for (long k = 0; k < K; k++) {
        const float zk = code_n[k];
        const float *w = weight + (k * C + c) * R;
        float *gw = own_weight + (k * C + c) * R;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (long r = 0; r < R; r++) {
            acc += w[r] * gp[r];
            gw[r] += zk * gp[r];
        }
        grad_code_n[k] += acc;
    }
}

static inline __attribute__((always_inline)) void backward_block(
    const float *code, const float *derivative, const float *weight, const float *bias, const float *grad_velocity,
    float *grad_code, float *grad_derivative, float *own, float *pre, float *gp, long start, long stop, long K,
    long C, long R) {
    for (long c = 0; c < C; c++) {
        float *gbias = own + (K * C + c) * R;
        for (long n = start; n < stop; n++) {
            const float *code_n = code + n * K, *dx = derivative + n * R, *bias_c = bias + c * R;
            const float g = grad_velocity[n * C + c];
            if (K <= 4)
                backward_entry_small(code_n, weight, bias_c, dx, g, grad_derivative + n * R, own, gbias,
                                     grad_code + n * K, K, C, R, c);
            else
                backward_entry_any(code_n, weight, bias_c, dx, g, grad_derivative + n * R, own, gbias,
                                   grad_code + n * K, pre, gp, K, C, R, c);
        }
    }
}

/* Gradients for grad_velocity g (N, C):
 *   grad_derivative[n, r] = sum_c f g[n, c];   gp = (1 - f^2) derivative[n, r] g[n, c]
 *   grad_code[n, k] = sum_{c, r} weight[k, c, r] gp;   grad_weight[k, c, r] = sum_n code[n, k] gp;   grad_bias = sum_n gp
 * grad_weight_and_bias is (num_threads, K + 1, C, R), zeroed by the caller: each thread sums its frames into its
 * own slice (row K holds the bias gradient); the caller adds the slices. */
int mnemodyn_tanh_field_backward(const float *code, const float *derivative, const float *weight, const float *bias,
                                 const float *grad_velocity, float *grad_code, float *grad_derivative,
                                 float *grad_weight_and_bias, long N, long K, long C, long R, int num_threads) {
    int failed = 0;
#pragma omp parallel num_threads(num_threads) reduction(| : failed)
    {
        float *pre = row_buffer(R);
        float *gp = row_buffer(R);
        if (pre == NULL || gp == NULL) failed = 1;
        float *own = grad_weight_and_bias + (long)THREAD_INDEX() * (K + 1) * C * R;
#pragma omp for schedule(static)
        for (long start = 0; start < N; start += BLOCK_FRAMES) {
            if (pre == NULL || gp == NULL) continue;
            const long stop = start + BLOCK_FRAMES < N ? start + BLOCK_FRAMES : N;
            for (long n = start; n < stop; n++) {
                memset(grad_derivative + n * R, 0, (size_t)R * sizeof(float));
                for (long k = 0; k < K; k++) grad_code[n * K + k] = 0.0f;
            }
            switch (K) {
                case 1: backward_block(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                       own, pre, gp, start, stop, 1, C, R); break;
                case 2: backward_block(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                       own, pre, gp, start, stop, 2, C, R); break;
                case 3: backward_block(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                       own, pre, gp, start, stop, 3, C, R); break;
                case 4: backward_block(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                       own, pre, gp, start, stop, 4, C, R); break;
                default: backward_block(code, derivative, weight, bias, grad_velocity, grad_code, grad_derivative,
                                        own, pre, gp, start, stop, K, C, R);
            }
        }
        free(pre);
        free(gp);
    }
    return failed;
}
