/* Explicit SIMD shared by the kernels: GCC/Clang vector extensions as wide as the -march target's registers (64 bytes
 * with AVX-512, 32 with AVX, else 16 as SSE and NEON), so every target gets the same code instead of what its
 * auto-vectoriser decides. Loads and stores go through memcpy: any alignment, no aliasing assumptions. */
#ifndef MNEMODYN_VECTOR_H
#define MNEMODYN_VECTOR_H

#include <string.h>

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

#endif
