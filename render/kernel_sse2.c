/* kernel_sse2.c - kernel_vec.h on SSE2, the x86-64 baseline (2 doubles). */
#define KV_BYTES 16
#define KV_ILV 3
#define KV_FN kernel_sse2
#include "render/kernel_vec.h"
