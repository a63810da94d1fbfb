/* kernel_neon.c - kernel_vec.h on arm64 Advanced SIMD (2 doubles). */
#define KV_BYTES 16
#define KV_ILV 2
#define KV_FN kernel_neon
#include "render/kernel_vec.h"
