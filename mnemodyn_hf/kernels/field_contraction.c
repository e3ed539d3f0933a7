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
            for (long c = 0; c < C; c++) {
                for (long n = start; n < stop; n++) {
                    pre_activation_row(pre, code + n * K, weight, bias + c * R, K, C, R, c);
                    const float *dx = derivative + n * R;
                    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                    for (long r = 0; r < R; r++) acc += tanh_rational(pre[r]) * dx[r];
                    velocity[n * C + c] = acc;
                }
            }
        }
        free(pre);
    }
    return failed;
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
            for (long c = 0; c < C; c++) {
                float *gbias = own + (K * C + c) * R;
                for (long n = start; n < stop; n++) {
                    pre_activation_row(pre, code + n * K, weight, bias + c * R, K, C, R, c);
                    const float g = grad_velocity[n * C + c];
                    const float *dx = derivative + n * R;
                    float *gdx = grad_derivative + n * R;
#pragma omp simd
                    for (long r = 0; r < R; r++) {
                        const float f = tanh_rational(pre[r]);
                        gdx[r] += f * g;
                        gp[r] = (1.0f - f * f) * dx[r] * g;
                        gbias[r] += gp[r];
                    }
                    for (long k = 0; k < K; k++) {
                        const float zk = code[n * K + k];
                        const float *w = weight + (k * C + c) * R;
                        float *gw = own + (k * C + c) * R;
                        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                        for (long r = 0; r < R; r++) {
                            acc += w[r] * gp[r];
                            gw[r] += zk * gp[r];
                        }
                        grad_code[n * K + k] += acc;
                    }
                }
            }
        }
        free(pre);
        free(gp);
    }
    return failed;
}
