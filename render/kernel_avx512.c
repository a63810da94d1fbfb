/* kernel_avx512.c - kernel_vec.h on AVX-512F/DQ (8 doubles); built with
 * -mavx512f -mavx512dq. */
#define KV_BYTES 64
#define KV_ILV 3
#define KV_FN kernel_avx512
#include "render/kernel_vec.h"
