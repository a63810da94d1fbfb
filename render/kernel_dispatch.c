/*
 * kernel_dispatch.c - the table of kernels in this build and the run-time
 * choice of the best one the CPU runs (Redis ae.c style: listed by
 * performance, descending; the first supported entry wins).
 *
 * Which kernels exist is decided per architecture, the same way the
 * Makefile decides which kernel_*.c files it compiles.
 */
#include <stddef.h>
#include <string.h>

#include "render/kernel.h"

static int always(void) { return 1; }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
kernel_fn kernel_avx512, kernel_avx2, kernel_sse2;

/* __builtin_cpu_supports also checks that the OS saves the wider registers. */
static int has_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

static int has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
kernel_fn kernel_neon;
#elif defined(__GNUC__) || defined(__clang__)
kernel_fn kernel_generic;
#endif

static const struct kernel kernels[] = {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	{"avx512", kernel_avx512, has_avx512},
	{"avx2", kernel_avx2, has_avx2},
	{"sse2", kernel_sse2, always},
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
	{"neon", kernel_neon, always},
#elif defined(__GNUC__) || defined(__clang__)
	{"generic", kernel_generic, always},
#endif
	{"scalar", kernel_scalar, always},
};

const struct kernel *kernel_all(unsigned *count)
{
	*count = sizeof kernels / sizeof kernels[0];
	return kernels;
}

const struct kernel *kernel_best(void)
{
	/* The answer never changes, and computing it twice gives the same
	 * pointer, so a benign race on first use needs no lock. */
	for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
		if (kernels[i].supported())
			return &kernels[i];
	return &kernels[sizeof kernels / sizeof kernels[0] - 1];
}

const struct kernel *kernel_find(const char *name)
{
	if (name == NULL || strcmp(name, "auto") == 0)
		return kernel_best();
	for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
		if (strcmp(kernels[i].name, name) == 0)
			return kernels[i].supported() ? &kernels[i] : NULL;
	return NULL;
}
