/* kernel_generic.c - kernel_vec.h with no instruction-set assumptions
 * (4 doubles); for GCC/Clang targets that are neither x86-64 nor arm64. */
#define KV_BYTES 32
#define KV_ILV 2
#define KV_FN kernel_generic
#include "render/kernel_vec.h"
