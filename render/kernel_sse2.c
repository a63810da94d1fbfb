/* kernel_sse2.c - kernel_vec.h on SSE2, the x86-64 baseline (2 doubles).
 * 3 vectors; the 16-iteration head measured 4% faster on the default
 * picture and 1% slower on a deep zoom (AMD Zen 3, docs/benchmarks.md). */
#define KV_BYTES 16
#define KV_ILV 3
#define KV_HEAD 16
#define KV_FN kernel_sse2
#include "render/kernel_vec.h"
