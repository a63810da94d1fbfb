/* test_kernel.c - every kernel against the scalar reference, bit for bit. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render/colour.h"
#include "render/kernel.h"

/* make test-cpus sets MW_TEST_QUICK under emulation (about 50x slower than
 * native): the whole-picture comparisons then take every 8th row and a
 * quarter of the random viewports. Natively, every row and every case. */
static uint32_t quick(uint32_t n)
{
	const char *q = getenv("MW_TEST_QUICK");
	return q && *q && strcmp(q, "0") ? n : 1;
}

static struct kernel_args workshop(uint32_t w)
{
	return (struct kernel_args){.x0 = -1.5, .y0 = -1.0, .s = 2048.0 / w,
				    .bailout = 4.0, .max_iter = 1000};
}

/* Compares kernel k with the reference on rows y0..y1 of width w; returns
 * the number of differing pixels (n, and the bits of Tr and Ti). */
static long diff_rows_step(const struct kernel *k, const struct kernel_args *a, uint32_t w,
			   uint32_t y0, uint32_t y1, uint32_t span, uint32_t step)
{
	static struct kernel_out ref, got;
	long bad = 0;

	for (uint32_t y = y0; y < y1; y += step) {
		for (uint32_t x = 0; x < w; x += span) {
			uint32_t n = w - x < span ? w - x : span;
			kernel_scalar(a, y, x, n, &ref);
			memset(&got, 0xa5, sizeof got);
			k->fn(a, y, x, n, &got);
			for (uint32_t i = 0; i < n; i++)
				bad += ref.n[i] != got.n[i] ||
				       memcmp(&ref.tr[i], &got.tr[i], sizeof(double)) ||
				       memcmp(&ref.ti[i], &got.ti[i], sizeof(double));
		}
	}
	return bad;
}

static long diff_rows(const struct kernel *k, const struct kernel_args *a, uint32_t w,
		      uint32_t y0, uint32_t y1, uint32_t span)
{
	return diff_rows_step(k, a, w, y0, y1, span, 1);
}

/* Criterion's cr_assert(x) passes only when x == 1, not when x is nonzero:
 * every truth test here compares explicitly. */
Test(kernel, table_lists_scalar_and_best_is_supported)
{
	unsigned n;
	const struct kernel *all = kernel_all(&n);
	cr_assert(lt(u32, 1, n));
	cr_assert(eq(str, (char *)all[n - 1].name, "scalar"));
	cr_assert(eq(str, (char *)all[n - 2].name, "generic"));
	cr_assert(eq(int, kernel_best()->supported(), true));
	cr_assert(eq(ptr, (void *)kernel_find("auto"), (void *)kernel_best()));
	cr_assert(eq(ptr, (void *)kernel_find(NULL), (void *)kernel_best()));
	cr_assert(eq(ptr, (void *)kernel_find("no-such-kernel"), NULL));
	/* auto is the first entry this CPU runs. */
	unsigned first = 0;
	while (!all[first].supported())
		first++;
	cr_assert(eq(ptr, (void *)kernel_best(), (void *)&all[first]));
}

/* Each entry is found by name exactly when this CPU runs it; otherwise the
 * reason names what it needs and what does run. */
Test(kernel, find_agrees_with_supported_and_says_why)
{
	unsigned n;
	const struct kernel *all = kernel_all(&n);
	char why[200], runs[128], has[128];
	kernel_names(runs, sizeof runs, true);
	kernel_names(has, sizeof has, false);

	for (unsigned k = 0; k < n; k++) {
		bool ok = all[k].supported();
		why[0] = '\0';
		const struct kernel *got = kernel_pick(all[k].name, why, sizeof why);
		cr_expect(eq(ptr, (void *)got, ok ? (void *)&all[k] : NULL), "kernel %s", all[k].name);
		cr_expect(eq(int, strstr(runs, all[k].name) != NULL, ok), "%s in '%s'", all[k].name, runs);
		cr_expect(not(eq(ptr, strstr(has, all[k].name), NULL)));
		if (!ok) {
			cr_expect(not(eq(ptr, strstr(why, all[k].needs), NULL)), "%s", why);
			cr_expect(not(eq(ptr, strstr(why, runs), NULL)), "%s", why);
		}
	}
	cr_expect(eq(ptr, (void *)kernel_pick("nope", why, sizeof why), NULL));
	cr_expect(not(eq(ptr, strstr(why, has), NULL)), "%s", why);
	cr_expect(not(eq(ptr, strstr(why, "'nope'"), NULL)), "%s", why);
}

/* make test-cpus runs this under emulation with MW_EXPECT_KERNEL set to what
 * auto must pick there (avx2 on Haswell, sse2 on Nehalem and qemu64, neon on
 * arm64): proof that the test ran on the emulated CPU, and that the
 * dispatch chose right. Natively, unset, it checks nothing more. */
Test(kernel, auto_picks_what_this_cpu_should)
{
	const char *want = getenv("MW_EXPECT_KERNEL");
	if (!want || !*want)
		cr_skip_test("MW_EXPECT_KERNEL unset (set by make test-cpus)");
	cr_assert(eq(str, (char *)kernel_best()->name, (char *)want));
}

Test(kernel, default_picture_known_shades_and_iterations)
{
	/* Pixels (x, y), their shade and loop count in the workshop picture. */
	static const uint32_t known[][4] = {
		{283, 1, 186, 5},  {109, 18, 31, 3},  {96, 25, 41, 3},   {83, 32, 46, 3},
		{301, 68, 58, 10}, {262, 89, 143, 11}, {184, 131, 42, 7}, {467, 132, 43, 9},
		{0, 0, 0, 2},      {256, 256, 0, 1000},
	};
	struct kernel_args a = workshop(512);
	struct kernel_out o;
	unsigned n;
	const struct kernel *all = kernel_all(&n);

	for (unsigned k = 0; k < n; k++) {
		if (!all[k].supported())
			continue;
		uint64_t total = 0;
		for (uint32_t y = 0; y < 512 && quick(8) == 1; y++) {
			all[k].fn(&a, y, 0, 512, &o);
			for (uint32_t x = 0; x < 512; x++)
				total += o.n[x];
		}
		/* The figure for the whole 512x512 picture (quick: every
		 * kernel is still compared with scalar on rows below). */
		if (quick(8) == 1)
			cr_expect(eq(u64, total, 96308720), "kernel %s", all[k].name);
		for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
			all[k].fn(&a, known[i][1], known[i][0], 1, &o);
			cr_expect(eq(u32, colour_gray(o.tr[0], o.ti[0]), known[i][2]),
				  "kernel %s pixel (%u, %u)", all[k].name, known[i][0], known[i][1]);
			cr_expect(eq(u32, o.n[0], known[i][3]), "kernel %s", all[k].name);
		}
	}
}

Test(kernel, every_kernel_matches_reference_on_default_picture)
{
	unsigned n;
	const struct kernel *all = kernel_all(&n);
	struct kernel_args a = workshop(512);

	for (unsigned k = 0; k < n; k++)
		if (all[k].supported())
			cr_expect(eq(i64, diff_rows_step(&all[k], &a, 512, 0, 512, KERNEL_SPAN_MAX,
							 quick(8)), 0),
				  "kernel %s", all[k].name);
}

/* Odd widths, spans that are not multiples of any vector width, 1x1. */
Test(kernel, odd_sizes_and_spans)
{
	static const uint32_t widths[] = {1, 2, 3, 5, 7, 9, 13, 17, 31, 33, 63, 65, 127, 129, 511};
	static const uint32_t spans[] = {1, 3, 7, 8, 9, 23, 24, 25, 100, KERNEL_SPAN_MAX};
	unsigned n;
	const struct kernel *all = kernel_all(&n);

	for (unsigned k = 0; k < n; k++) {
		if (!all[k].supported())
			continue;
		for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
			uint32_t w = widths[wi];
			struct kernel_args a = workshop(w);
			a.s = 2048.0 / w;
			for (size_t si = 0; si < sizeof spans / sizeof spans[0]; si++)
				cr_expect(eq(i64, diff_rows(&all[k], &a, w, w / 3, w / 3 + 2, spans[si]), 0),
					  "kernel %s w %u span %u", all[k].name, w, spans[si]);
		}
	}
}

/* Random viewports, many near the boundary where orbits are chaotic and
 * periods long, at both bailouts and several iteration limits. */
Test(kernel, random_viewports_match_reference, .timeout = 120)
{
	/* Points on or near the boundary, where zooming finds chaos. */
	static const double spots[][2] = {
		{-0.743643887, 0.131825904}, {-0.75, 0.1},   {-1.25066, 0.02012},
		{0.2501, 0.0},               {-0.1011, 0.9563}, {-1.768778, 0.001738},
		{0.28693, 0.01428},          {-0.4, 0.6},     {-2.0, 0.0},
	};
	static const uint32_t iters[] = {1, 2, 17, 100, 1000, 5000};
	unsigned n;
	const struct kernel *all = kernel_all(&n);
	unsigned seed = 12345;

	for (int t = 0; t < 120; t += (int)quick(4)) {
		const double *c = spots[t % (sizeof spots / sizeof spots[0])];
		double zoom = pow(10.0, (rand_r(&seed) % 1000) / 100.0); /* 1 .. 1e10 */
		uint32_t w = 16 + rand_r(&seed) % 90;
		struct kernel_args a = {
			.s = 2048.0 / (zoom * w),
			.bailout = t % 2 ? 4.0 : 65536.0,
			.max_iter = iters[t % (sizeof iters / sizeof iters[0])],
		};
		a.x0 = c[0] - a.s * w / 2000;
		a.y0 = c[1] - a.s * w / 2000;
		/* Every third case one pixel a call. */
		uint32_t span = t % 3 == 0 ? 1 : KERNEL_SPAN_MAX;
		for (unsigned k = 0; k < n; k++)
			if (all[k].supported())
				cr_expect(eq(i64, diff_rows(&all[k], &a, w, 0, w, span), 0),
					  "kernel %s case %d zoom %g iter %u span %u", all[k].name, t,
					  zoom, a.max_iter, span);
	}
}

/* Interior points: orbits that cycle, where the SIMD kernels jump ahead.
 * Every iteration limit near a multiple of the period must land on the
 * same final state as running them all, in spans and one pixel a call
 * (kernel_vec.h's kv_pixel, the px and workers modes' path). */
Test(kernel, cycle_jumps_are_exact_for_every_limit)
{
	unsigned n;
	const struct kernel *all = kernel_all(&n);

	for (uint32_t it = 1; it <= 300; it++) {
		struct kernel_args a = {.x0 = -0.5, .y0 = -0.3, .s = 0.9, .bailout = 4.0,
					.max_iter = it};
		for (unsigned k = 0; k < n; k++)
			if (all[k].supported())
				for (uint32_t span = 1; span <= KERNEL_SPAN_MAX; span += KERNEL_SPAN_MAX - 1)
					cr_expect(eq(i64, diff_rows(&all[k], &a, 40, 0, 4, span), 0),
						  "kernel %s max_iter %u span %u", all[k].name, it, span);
	}
}

/* The SIMD kernels find every cycle of period up to the save interval
 * (16 at max_iter 1000), though they compare with the saved state in only
 * part of each interval (kernel_vec.h: Cycle detection). Pixels at the
 * centre of a component of each period 1..16 (the cardioid's, the period-2
 * disc's, and the 1/p bulbs on the cardioid, found by Newton's method on
 * f_c^p(0) = 0; each orbit settles on a cycle of exactly p, bit for bit,
 * within a few periods) must take the shortcut: a quarter of the
 * iterations or fewer, and the reference's bits. */
Test(kernel, every_period_up_to_the_save_interval_is_found)
{
	static const double centres[16][2] = {
		{0, 0},
		{-1, 0},
		{-0.12256116687665364, 0.74486176661974424},
		{0.28227139076691388, 0.53006061757852529},
		{0.37951358801592372, 0.33493230559749759},
		{0.3890068405697712, 0.21585065087081909},
		{0.37600868184676756, 0.14474937132163287},
		{0.35903106283661446, 0.10093487686429756},
		{0.34320449315556173, 0.072842377887595275},
		{0.32968990510380686, 0.054137451948017945},
		{0.3184722666580303, 0.041257369922169225},
		{0.30922922123657415, 0.032123926984394785},
		{0.30160283593729731, 0.025479554236648654},
		{0.29527785479128815, 0.02053685328657193},
		{0.2899966506570652, 0.016787355346075387},
		{0.28555461523224712, 0.013893501479656203},
	};
	unsigned n;
	const struct kernel *all = kernel_all(&n);
	static struct kernel_out o;

	for (int p = 1; p <= 16; p++) {
		/* 8 pixels 1e-12 apart about the centre, on row 0. */
		const struct kernel_args a = {.x0 = centres[p - 1][0] - 4e-12,
					      .y0 = centres[p - 1][1], .s = 1e-9,
					      .bailout = 4.0, .max_iter = 1000};
		for (unsigned k = 0; k < n; k++) {
			if (!all[k].supported() || strcmp(all[k].name, "scalar") == 0)
				continue;
			for (uint32_t span = 1; span <= 8; span += 7) {
				all[k].fn(&a, 0, 0, span, &o);
				for (uint32_t i = 0; i < span; i++)
					cr_expect(eq(u32, o.n[i], 1000), "kernel %s period %d: inside",
						  all[k].name, p);
				cr_expect(le(u64, o.executed, span * 1000 / 4),
					  "kernel %s period %d span %u: %llu iterations", all[k].name,
					  p, span, (unsigned long long)o.executed);
				cr_expect(eq(i64, diff_rows(&all[k], &a, span, 0, 1, span), 0),
					  "kernel %s period %d span %u", all[k].name, p, span);
			}
		}
	}
}

/* A kernel with a head (kernel_vec.h's kv_head: the first iterations of
 * a span's pixels in lockstep) hands the pixels still going to its refill
 * loop. Every iteration limit below, at and above the head's length, over
 * the default picture's outside, where counts near it are common, with
 * spans that leave a block part empty. */
Test(kernel, head_and_refill_hand_over_exactly)
{
	static const uint32_t spans[] = {5, 13, 37, KERNEL_SPAN_MAX};
	unsigned n;
	const struct kernel *all = kernel_all(&n);

	for (uint32_t it = 1; it <= 48; it++) {
		struct kernel_args a = workshop(256);
		a.max_iter = it;
		for (unsigned k = 0; k < n; k++)
			if (all[k].supported())
				cr_expect(eq(i64, diff_rows_step(&all[k], &a, 256, 0, 256,
								 spans[it % 4], quick(4) * 9), 0),
					  "kernel %s max_iter %u", all[k].name, it);
	}
}

/* out->executed, which the roofline benchmark divides by time: the
 * reference computes every iteration; a SIMD kernel the same where no
 * orbit cycles (outside the set), and fewer where they do (inside). */
Test(kernel, executed_counts_what_ran)
{
	unsigned n;
	const struct kernel *all = kernel_all(&n);
	/* Outside the set: C near 1 + i escapes in a few iterations. Inside:
	 * the main cardioid, where every orbit settles on a cycle. */
	const struct kernel_args outside = {.x0 = 0.9, .y0 = 0.9, .s = 0.5, .bailout = 4.0,
					    .max_iter = 1000};
	const struct kernel_args inside = {.x0 = -0.3, .y0 = -0.2, .s = 0.5, .bailout = 4.0,
					   .max_iter = 1000};
	static struct kernel_out o;

	for (unsigned k = 0; k < n; k++) {
		if (!all[k].supported())
			continue;
		uint64_t sum = 0;
		all[k].fn(&outside, 0, 0, 300, &o);
		for (int i = 0; i < 300; i++)
			sum += o.n[i];
		cr_expect(eq(u64, o.executed, sum), "kernel %s outside", all[k].name);
		all[k].fn(&inside, 0, 0, 300, &o);
		cr_expect(eq(u64, o.n[0], 1000), "kernel %s: C = -0.3-0.2i is inside", all[k].name);
		if (strcmp(all[k].name, "scalar") == 0)
			cr_expect(eq(u64, o.executed, 300 * 1000), "scalar inside");
		else
			cr_expect(lt(u64, o.executed, 300 * 1000 / 4), "kernel %s inside: %llu",
				  all[k].name, (unsigned long long)o.executed);
		/* One pixel a call, likewise. */
		all[k].fn(&outside, 0, 7, 1, &o);
		cr_expect(eq(u64, o.executed, o.n[0]), "kernel %s one pixel outside", all[k].name);
		all[k].fn(&inside, 0, 7, 1, &o);
		cr_expect(eq(u64, o.n[0], 1000), "kernel %s: one pixel inside", all[k].name);
		if (strcmp(all[k].name, "scalar") != 0)
			cr_expect(lt(u64, o.executed, 1000 / 4), "kernel %s one pixel inside: %llu",
				  all[k].name, (unsigned long long)o.executed);
	}
}

/* What the vector loop does not cover goes to the reference, and gives its
 * bits: a bailout the start fails, a NaN one, C not finite. */
Test(kernel, edge_arguments_give_the_reference)
{
	unsigned n;
	const struct kernel *all = kernel_all(&n);
	struct kernel_args cases[] = {
		{.x0 = -1.5, .y0 = -1.0, .s = 4.0, .bailout = -1.0, .max_iter = 50},
		{.x0 = -1.5, .y0 = -1.0, .s = 4.0, .bailout = NAN, .max_iter = 50},
		{.x0 = -1.5, .y0 = -1.0, .s = 4.0, .bailout = INFINITY, .max_iter = 50},
		{.x0 = NAN, .y0 = -1.0, .s = 4.0, .bailout = 4.0, .max_iter = 50},
		{.x0 = -1.5, .y0 = INFINITY, .s = 4.0, .bailout = 4.0, .max_iter = 50},
		{.x0 = -1.5, .y0 = -1.0, .s = 1e308, .bailout = 4.0, .max_iter = 50},
		{.x0 = 1e300, .y0 = 1e300, .s = 4.0, .bailout = 1e300, .max_iter = 50},
	};
	for (unsigned k = 0; k < n; k++)
		for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
			if (all[k].supported())
				cr_expect(eq(i64, diff_rows(&all[k], &cases[c], 100, 0, 3, 100), 0),
					  "kernel %s case %zu", all[k].name, c);
}

Test(colour, gray_conversion_is_defined_everywhere)
{
	cr_expect(eq(u8, colour_gray(0, 0), 0));
	cr_expect(eq(u8, colour_gray(10, 10), 200));
	cr_expect(eq(u8, colour_gray(16, 16), (uint8_t)512));
	cr_expect(eq(u8, colour_gray(1e300, 1e300), 0));
	cr_expect(eq(u8, colour_gray(INFINITY, 0), 0)); /* inf * 0 = NaN */
	cr_expect(eq(u8, colour_gray(-1e10, 1), 0));
}

Test(colour, log2_is_accurate)
{
	for (double x = 1e-10; x < 1e12; x *= 1.37)
		cr_expect(lt(dbl, fabs(colour_log2(x) - log2(x)), 1e-6), "x = %g", x);
	cr_expect(eq(dbl, colour_log2(1.0), 0.0));
	cr_expect(eq(dbl, colour_log2(1024.0), 10.0));
}
