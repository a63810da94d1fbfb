/* kernel_neon.c - kernel_vec.h on arm64 Advanced SIMD (2 doubles). */
#include <arm_neon.h>
#define KV_BYTES 16
#define KV_ILV 2
#define KV_FN kernel_neon
#define KV_ANY(m) (vmaxvq_u32(vreinterpretq_u32_s64((int64x2_t)(m))) != 0)
#include "render/kernel_vec.h"
