/*
 * kernel_dispatch.c - the table of kernels in this build and the run-time
 * choice of the best one the CPU runs (Redis ae.c style: listed by
 * performance, descending; the first supported entry wins).
 *
 * Which kernels exist is decided per architecture, the same way the
 * Makefile decides which kernel_*.c files it compiles. "generic" (vector
 * extensions, no instruction-set assumption) is in every GCC/Clang build,
 * below the native ones: auto never picks it where a native kernel runs,
 * but it is compiled and tested on every machine, not only on the
 * architectures that have nothing better.
 */
#include <string.h>

#include "render/kernel.h"

static bool always(void) { return true; }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KERNEL_ARCH "x86_64"
kernel_fn kernel_avx512, kernel_avx2, kernel_sse2, kernel_generic;
extern const unsigned kernel_avx512_shape[2], kernel_avx2_shape[2], kernel_sse2_shape[2];

/* __builtin_cpu_supports also checks that the OS saves the wider registers.
 * It returns the feature's bit, not 0/1: the bool return converts it. */
static bool has_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

static bool has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define KERNEL_ARCH "aarch64"
kernel_fn kernel_neon, kernel_generic;
extern const unsigned kernel_neon_shape[2];
#elif defined(__GNUC__) || defined(__clang__)
kernel_fn kernel_generic;
#endif

#ifndef KERNEL_ARCH
#define KERNEL_ARCH "other"
#endif
extern const unsigned kernel_generic_shape[2], kernel_scalar_shape[2];
const char kernel_arch[] = KERNEL_ARCH;

static const struct kernel kernels[] = {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	{"avx512", kernel_avx512, has_avx512, "AVX-512F and AVX-512DQ", kernel_avx512_shape},
	{"avx2", kernel_avx2, has_avx2, "AVX2", kernel_avx2_shape},
	{"sse2", kernel_sse2, always, "SSE2 (every x86-64)", kernel_sse2_shape},
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
	{"neon", kernel_neon, always, "Advanced SIMD (every arm64)", kernel_neon_shape},
#endif
#if defined(__GNUC__) || defined(__clang__)
	{"generic", kernel_generic, always, "nothing (portable vector code)", kernel_generic_shape},
#endif
	{"scalar", kernel_scalar, always, "nothing (the reference)", kernel_scalar_shape},
};
#define NKERNELS (sizeof kernels / sizeof kernels[0])

const struct kernel *kernel_all(unsigned *count)
{
	*count = NKERNELS;
	return kernels;
}

const struct kernel *kernel_best(void)
{
	/* The answer never changes, and computing it twice gives the same
	 * pointer, so a benign race on first use needs no lock. */
	for (size_t i = 0; i < NKERNELS; i++)
		if (kernels[i].supported())
			return &kernels[i];
	return &kernels[NKERNELS - 1];
}

const struct kernel *kernel_pick(const char *name, char *why, size_t len)
{
	char names[128];

	if (name == NULL || strcmp(name, "auto") == 0)
		return kernel_best();
	for (size_t i = 0; i < NKERNELS; i++) {
		if (strcmp(kernels[i].name, name) != 0)
			continue;
		if (kernels[i].supported())
			return &kernels[i];
		if (why)
			snprintf(why, len, "kernel %s needs %s, which this CPU lacks (it runs: %s)",
				 name, kernels[i].needs, kernel_names(names, sizeof names, true));
		return NULL;
	}
	if (why)
		snprintf(why, len, "no kernel '%.32s' in this build (it has: %s)", name,
			 kernel_names(names, sizeof names, false));
	return NULL;
}

const struct kernel *kernel_find(const char *name)
{
	return kernel_pick(name, NULL, 0);
}

char *kernel_names(char *buf, size_t len, bool runnable)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NKERNELS && used < len; i++) {
		if (runnable && !kernels[i].supported())
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? " " : "", kernels[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

void kernel_list(FILE *f)
{
	const struct kernel *best = kernel_best();

	fprintf(f, "%-8s %-5s %s\n", "kernel", "runs", "needs");
	for (size_t i = 0; i < NKERNELS; i++)
		fprintf(f, "%-8s %-5s %s%s\n", kernels[i].name, kernels[i].supported() ? "yes" : "no",
			kernels[i].needs, &kernels[i] == best ? "  <- auto" : "");
	fprintf(f, "architecture: %s\n", kernel_arch);
}
