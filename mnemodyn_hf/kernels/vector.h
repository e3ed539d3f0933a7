/* Explicit SIMD shared by the kernels: GCC/Clang vector extensions as wide as the -march target's registers (64 bytes
 * with AVX-512, 32 with AVX, else 16 as SSE and NEON), so every target gets the same code instead of what its
 * auto-vectoriser decides. Loads and stores go through memcpy: any alignment, no aliasing assumptions. */
#ifndef MNEMODYN_VECTOR_H
#define MNEMODYN_VECTOR_H

#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#if defined(__AVX512F__)
#define VECTOR_BYTES 64
#elif defined(__AVX__)
#define VECTOR_BYTES 32
#else
#define VECTOR_BYTES 16
#endif
#define LANES (VECTOR_BYTES / 4)

typedef float vf __attribute__((vector_size(VECTOR_BYTES)));
typedef int vi __attribute__((vector_size(VECTOR_BYTES)));
#define INLINE static inline __attribute__((always_inline))

INLINE vf load(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE void store(float *p, vf v) { memcpy(p, &v, sizeof v); }

INLINE vf splat(float x) { return (vf){0} + x; } /* not for -0.0f: 0 + -0 is +0 */

/* The sum of a vector's lanes, in lane order. */
INLINE float horizontal_sum(vf v) {
    float s = 0.0f;
    for (int i = 0; i < LANES; i++) s += v[i];
    return s;
}

/* x limited to [-bound, bound], one min and one max instruction where the target has them; NaN stays NaN. */
INLINE vf clamp(vf x, float bound) {
#if defined(__AVX512F__)
    return (vf)_mm512_min_ps((__m512)splat(bound), _mm512_max_ps((__m512)splat(-bound), (__m512)x));
#elif defined(__AVX__)
    return (vf)_mm256_min_ps((__m256)splat(bound), _mm256_max_ps((__m256)splat(-bound), (__m256)x));
#elif defined(__ARM_NEON) && VECTOR_BYTES == 16
    return (vf)vminnmq_f32((float32x4_t)splat(bound), vmaxnmq_f32((float32x4_t)splat(-bound), (float32x4_t)x));
#else
    const vi low = x < splat(-bound), high = x > splat(bound);
    return (vf)((low & (vi)splat(-bound)) | (high & (vi)splat(bound)) | (~(low | high) & (vi)x));
#endif
}

#endif
