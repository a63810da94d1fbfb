/* kernel_avx512.c - kernel_vec.h on AVX-512F/DQ (8 doubles); built with
 * -mavx512f -mavx512dq. It replaced an intrinsics kernel with the masks in
 * k registers, which measured 20% slower on the default picture and 35%
 * on a deep zoom once kernel_vec.h's event path settled a vector's lanes
 * together (AMD Zen 5, same run). */
#define KV_BYTES 64
#define KV_ILV 3
#define KV_FN kernel_avx512
#include "render/kernel_vec.h"
