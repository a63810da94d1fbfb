/*
 * bench_render.c - renderer benchmarks for `make bench`. One figure per
 * line, `name value unit`, so runs can be compared line by line.
 *
 *   kernel_NAME        default 512x512 picture on one core, G logical
 *                      iterations/s (96,308,720 / time), best of BENCH_REPS
 *   kernel_NAME_vs_scalar  the same, as a ratio to scalar measured in this run
 *   roofline_ISA_SEQ_ilvN  G lane-iterations/s of the divergence-free loop
 *                      (bench/roofline.c) for every sequence and interleave
 *   kernel_NAME_PIC_executed  G lane-iterations/s the kernel computed alone
 *                      (no colouring) on PIC (default; deep, a zoom with a
 *                      ragged escape pattern): out->executed / time
 *   kernel_NAME_roofline  its own sequence's roofline at its interleave, and
 *                      _roofline_best at the best interleave
 *   kernel_NAME_PIC_efficiency  executed / roofline_best, %
 *   cost_default_STEP  where one default picture's core time goes, with the
 *                      best kernel in seq mode: kernel, colour, encode (the
 *                      server's PNG options), and their share of the total
 *   png_L_STRATEGY_FILTER  encode MB/s (raw bytes in) and output bytes of the
 *                      default gray picture, for the option grid (libpng, zlib)
 *   png_deflate_L_FILTER   the same with libdeflate and our own chunks
 *   mode_MODE          the default picture with every CPU, ms
 *
 * Usage: bench_render [reps] (default 7).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "render/colour.h"
#include "render/pngenc.h"
#include "render/picture.h"
#include "render/render.h"
#include "bench/bench_roofline.h"
#include "bench/roofline.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int reps = 7;

static double best_render(struct pool *p, const struct picture *pic, const struct kernel *k,
			  enum render_mode m, struct image *img, uint64_t *iters)
{
	double best = 1e30;
	for (int r = 0; r < reps; r++) {
		struct render_stats st;
		double t0 = now_s();
		render_image(p, pic, k, m, img, &st);
		double t = now_s() - t0;
		best = t < best ? t : best;
		*iters = st.iterations;
	}
	return best;
}

/* The kernel alone on every row of pic: best seconds of reps, and the
 * lane-iterations it computed. */
static double kernel_alone(const struct kernel *k, const struct picture *pic, uint64_t *executed)
{
	struct kernel_args a;
	static struct kernel_out out;
	double best = 1e30;

	picture_kernel_args(pic, &a);
	for (int r = 0; r < reps; r++) {
		uint64_t ex = 0;
		double t0 = now_s();
		for (uint32_t y = 0; y < pic->h; y++) {
			for (uint32_t x = 0; x < pic->w; x += KERNEL_SPAN_MAX) {
				uint32_t n = pic->w - x < KERNEL_SPAN_MAX ? pic->w - x : KERNEL_SPAN_MAX;
				k->fn(&a, y, x, n, &out);
				ex += out.executed;
			}
		}
		double t = now_s() - t0;
		best = t < best ? t : best;
		*executed = ex;
	}
	return best;
}

/* Roofline lines for kernel k, and its efficiency on two pictures. */
static void roofline(const struct kernel *k)
{
	int seq = strcmp(k->name, "scalar") == 0 ? RL_PLAIN : RL_HALF;
	double at_ilv = 0, best = 0;
	int grid_reps = reps < 3 ? reps : 3;

	for (int s = 0; s < RL_NSEQ; s++) {
		for (int i = 0; i < RL_NILV; i++) {
			double r = bench_roofline_rate(k->name, s, i, s == seq ? reps : grid_reps);
			printf("roofline_%s_%s_ilv%d %.3f Glane-it/s\n", k->name, rl_seq_names[s],
			       rl_ilvs[i], r);
			if (s != seq)
				continue;
			best = r > best ? r : best;
			if ((unsigned)rl_ilvs[i] == k->shape[1])
				at_ilv = r;
		}
	}
	printf("kernel_%s_shape %ux%u lanes\n", k->name, k->shape[0], k->shape[1]);
	printf("kernel_%s_roofline %.3f Glane-it/s\n", k->name, at_ilv);
	printf("kernel_%s_roofline_best %.3f Glane-it/s\n", k->name, best);

	struct picture pics[2] = {picture_default(512, 512), picture_default(256, 256)};
	const char *names[2] = {"default", "deep"};
	char why[128];
	picture_set(&pics[1], "cx", "-0.743643887", why, sizeof why);
	picture_set(&pics[1], "cy", "0.131825904", why, sizeof why);
	picture_set(&pics[1], "zoom", "1e10", why, sizeof why);
	picture_set(&pics[1], "iter", "3000", why, sizeof why);
	for (int p = 0; p < 2; p++) {
		uint64_t ex = 0;
		double t = kernel_alone(k, &pics[p], &ex);
		printf("kernel_%s_%s_ms %.2f ms\n", k->name, names[p], t * 1e3);
		printf("kernel_%s_%s_executed %.3f Glane-it/s\n", k->name, names[p], ex / t / 1e9);
		printf("kernel_%s_%s_executed_count %llu count\n", k->name, names[p],
		       (unsigned long long)ex);
		if (best > 0)
			printf("kernel_%s_%s_efficiency %.0f %%\n", k->name, names[p],
			       100.0 * ex / t / 1e9 / best);
	}
}

/* One default picture's core time, step by step, on this thread. */
/* The best of reps encodes of img with o, in seconds; *bytes: its size. */
static double encode_best(const struct image *img, const struct pngenc_opts *o, int reps,
			  size_t *bytes)
{
	double best = 1e30;
	*bytes = 0;
	for (int r = 0; r < reps; r++) {
		struct pngenc_buf b;
		double t0 = now_s();
		pngenc_encode(img, o, &b, NULL, 0);
		double t = now_s() - t0;
		best = t < best ? t : best;
		*bytes = b.len;
		pngenc_buf_free(&b);
	}
	return best;
}

static void picture_cost(void)
{
	struct picture pic = picture_default(512, 512);
	struct kernel_args a;
	static struct kernel_out out;
	struct image img;
	struct pngenc_opts o = pngenc_defaults();
	double tk = 1e30, tc = 1e30, te = 1e30;

	picture_kernel_args(&pic, &a);
	image_alloc(&img, 512, 512, 1);
	for (int r = 0; r < reps; r++) {
		double k = 0, c = 0;
		for (uint32_t y = 0; y < 512; y++) {
			double t0 = now_s();
			kernel_best()->fn(&a, y, 0, 512, &out);
			double t1 = now_s();
			colour_span(pic.colour, a.max_iter, &out, 512, img.px + y * img.stride);
			c += now_s() - t1;
			k += t1 - t0;
		}
		struct pngenc_buf b;
		double t0 = now_s();
		pngenc_encode(&img, &o, &b, NULL, 0);
		double e = now_s() - t0;
		pngenc_buf_free(&b);
		tk = k < tk ? k : tk;
		tc = c < tc ? c : tc;
		te = e < te ? e : te;
	}
	double sum = tk + tc + te;
	printf("cost_default_kernel %.3f ms\n", tk * 1e3);
	printf("cost_default_colour %.3f ms\n", tc * 1e3);
	printf("cost_default_encode %.3f ms\n", te * 1e3);
	printf("cost_default_total %.3f ms\n", sum * 1e3);
	printf("cost_default_kernel_share %.0f %%\n", 100 * tk / sum);
	printf("cost_default_encode_share %.0f %%\n", 100 * te / sum);
	image_free(&img);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		reps = atoi(argv[1]) > 0 ? atoi(argv[1]) : reps;
	struct picture pic = picture_default(512, 512);
	struct image img;
	uint64_t iters = 0;
	unsigned n;
	const struct kernel *all = kernel_all(&n);
	double scalar_rate = 0, rate[16] = {0};

	image_alloc(&img, 512, 512, 1);
	for (int i = (int)n - 1; i >= 0; i--) { /* scalar first */
		if (!all[i].supported())
			continue;
		double t = best_render(NULL, &pic, &all[i], MODE_SEQ, &img, &iters);
		rate[i] = iters / t / 1e9;
		if (strcmp(all[i].name, "scalar") == 0)
			scalar_rate = rate[i];
	}
	printf("iterations_default %llu count\n", (unsigned long long)iters);
	for (unsigned i = 0; i < n; i++) {
		if (!rate[i])
			continue;
		printf("kernel_%s %.3f Giter/s\n", all[i].name, rate[i]);
		printf("kernel_%s_vs_scalar %.2f x\n", all[i].name, rate[i] / scalar_rate);
	}
	for (unsigned i = 0; i < n; i++)
		if (rate[i])
			roofline(&all[i]);

	picture_cost();

	static const int levels[] = {1, 3, 6};
	static const char *const strategies[] = {"default", "filtered", "rle", "huffman"};
	static const char *const filters[] = {"none", "sub", "up", "paeth", "all"};
	struct pngenc_opts def = pngenc_defaults();
	for (size_t l = 0; l < 3; l++) {
		for (size_t s = 0; s < 4; s++) {
			for (size_t f = 0; f < 5; f++) {
				struct pngenc_opts o = {.level = levels[l], .zlib = 1};
				pngenc_parse_strategy(strategies[s], &o.strategy);
				pngenc_parse_filter(filters[f], &o.filters);
				size_t bytes;
				double best = encode_best(&img, &o, reps, &bytes);
				int is_def = def.zlib && o.level == def.level &&
					     o.strategy == def.strategy && o.filters == def.filters;
				printf("png_%d_%s_%s%s %.1f MB/s\n", o.level, strategies[s], filters[f],
				       is_def ? "_default" : "", 512.0 * 512 / best / 1e6);
				printf("png_%d_%s_%s%s_bytes %zu bytes\n", o.level, strategies[s],
				       filters[f], is_def ? "_default" : "", bytes);
			}
		}
	}

	/* libdeflate and our own chunks (the default's encoder), one filter each. */
	for (size_t l = 0; l < 3; l++) {
		for (size_t f = 0; f < 4; f++) {
			struct pngenc_opts o = {.level = levels[l], .zlib = 0};
			pngenc_parse_filter(filters[f], &o.filters);
			size_t bytes;
			double best = encode_best(&img, &o, reps, &bytes);
			int is_def = !def.zlib && o.level == def.level && o.filters == def.filters;
			printf("png_deflate_%d_%s%s %.1f MB/s\n", o.level, filters[f], is_def ? "_default" : "",
			       512.0 * 512 / best / 1e6);
			printf("png_deflate_%d_%s%s_bytes %zu bytes\n", o.level, filters[f],
			       is_def ? "_default" : "", bytes);
		}
	}

	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	static const struct {
		const char *name;
		enum render_mode mode;
		unsigned queue;
	} modes[] = {
		{"seq", MODE_SEQ, 0},          {"px", MODE_PX, 1024},
		{"row", MODE_ROW, 1024},       {"workers_queue0", MODE_WORKERS, 0},
		{"workers_queue64", MODE_WORKERS, 64}, {"auto", MODE_AUTO, 1024},
	};
	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		struct pool *p;
		pool_create(&p, cpus > 0 ? (unsigned)cpus : 1, modes[m].queue, "bench", NULL);
		int saved = reps;
		if (modes[m].mode == MODE_WORKERS && modes[m].queue == 0)
			reps = 1; /* seconds per run: one is enough to see it */
		double t = best_render(p, &pic, kernel_best(), modes[m].mode, &img, &iters);
		reps = saved;
		printf("mode_%s %.2f ms\n", modes[m].name, t * 1e3);
		pool_destroy(p);
	}
	printf("workers %ld count\n", cpus);
	printf("kernel_auto %s name\n", kernel_best()->name);
	image_free(&img);
	return 0;
}
