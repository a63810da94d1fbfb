/* kernel_avx2.c - kernel_vec.h on AVX2 (4 doubles); built with -mavx2. */
#include <immintrin.h>
#define KV_BYTES 32
#define KV_ILV 2
#define KV_FN kernel_avx2
#define KV_ANY(m) (_mm256_movemask_pd((__m256d)(m)) != 0)
#include "render/kernel_vec.h"
