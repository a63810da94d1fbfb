/* kernel_avx2.c - kernel_vec.h on AVX2 (4 doubles); built with -mavx2. */
#define KV_BYTES 32
#define KV_ILV 2
#define KV_FN kernel_avx2
#include "render/kernel_vec.h"
