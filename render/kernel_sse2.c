/* kernel_sse2.c - kernel_vec.h on SSE2, the x86-64 baseline (2 doubles).
 * 3 vectors and a 32-iteration head: without the head the default picture
 * took 12% longer, a deep zoom the same within 1.3% (AMD Zen 3,
 * docs/benchmarks.md). */
#define KV_BYTES 16
#define KV_ILV 3
#define KV_HEAD 32
#define KV_FN kernel_sse2
#include "render/kernel_vec.h"
