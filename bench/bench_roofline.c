/*
 * bench_roofline.c - measures roofline.c's loops for every instruction set
 * this build has and this CPU runs (bench_render prints them beside the
 * kernels, in the same run). Single-threaded; for benchmarks only.
 */
#include <string.h>
#include <time.h>

#include "render/kernel.h"
#include "bench/bench_roofline.h"
#include "bench/roofline.h"

static const struct {
	const char *name;
	const struct rl_isa *isa;
} isas[] = {
	{"scalar", &rl_isa_scalar},
#if defined(__x86_64__)
	{"sse2", &rl_isa_sse2},     {"avx2", &rl_isa_avx2}, {"avx512", &rl_isa_avx512},
#elif defined(__aarch64__)
	{"neon", &rl_isa_neon},
#endif
	{"generic", &rl_isa_generic},
};

static double rl_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static volatile uint64_t bench_roofline_sink;

double bench_roofline_rate(const char *kernel, int seq, int ilv_index, int reps)
{
	for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
		if (strcmp(isas[i].name, kernel) != 0)
			continue;
		const struct kernel *k = kernel_find(kernel);
		if (!k || !k->supported())
			return 0;
		rl_fn *fn = (*isas[i].isa->fn)[seq][ilv_index];
		/* About 20 ms a run at a few G lane-iterations/s. */
		uint64_t iters = 4000000 / (uint64_t)rl_ilvs[ilv_index];
		double best = 1e30;
		for (int r = 0; r < reps; r++) {
			double t0 = rl_now();
			bench_roofline_sink += fn(iters);
			double t = rl_now() - t0;
			best = t < best ? t : best;
		}
		return (double)iters * rl_ilvs[ilv_index] * isas[i].isa->lanes / best / 1e9;
	}
	return 0;
}
