/* kernel_avx2.c - kernel_vec.h on AVX2 (4 doubles); built with -mavx2.
 * 3 vectors and a 32-iteration head: on AMD Zen 3 (the AVX2-only CPU)
 * 2 vectors and no head took 9-13% longer on the default picture and 15%
 * on a deep zoom (docs/benchmarks.md). */
#define KV_BYTES 32
#define KV_ILV 3
#define KV_HEAD 32
#define KV_FN kernel_avx2
#include "render/kernel_vec.h"
