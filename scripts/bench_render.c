/*
 * bench_render.c - renderer benchmarks for `make bench`. One figure per
 * line, `name value unit`, so runs can be compared line by line.
 *
 *   kernel_NAME        default 512x512 picture on one core, G logical
 *                      iterations/s (96,308,720 / time), best of BENCH_REPS
 *   kernel_NAME_vs_scalar  the same, as a ratio to scalar measured in this run
 *   png_L_STRATEGY_FILTER  encode MB/s (raw bytes in) and output bytes of the
 *                      default gray picture, for the option grid
 *   mode_MODE          the default picture with every CPU, ms
 *
 * Usage: bench_render [reps] (default 7).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "render/pngenc.h"
#include "render/render.h"

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

	static const int levels[] = {1, 3, 6};
	static const char *const strategies[] = {"default", "filtered", "rle", "huffman"};
	static const char *const filters[] = {"none", "sub", "up", "paeth", "all"};
	struct pngenc_opts def = pngenc_defaults();
	for (size_t l = 0; l < 3; l++) {
		for (size_t s = 0; s < 4; s++) {
			for (size_t f = 0; f < 5; f++) {
				struct pngenc_opts o = {.level = levels[l]};
				pngenc_parse_strategy(strategies[s], &o.strategy);
				pngenc_parse_filter(filters[f], &o.filters);
				double best = 1e30;
				size_t bytes = 0;
				for (int r = 0; r < reps; r++) {
					struct pngenc_buf b;
					double t0 = now_s();
					pngenc_encode(&img, &o, &b, NULL, 0);
					double t = now_s() - t0;
					best = t < best ? t : best;
					bytes = b.len;
					pngenc_buf_free(&b);
				}
				int is_def = o.level == def.level && o.strategy == def.strategy &&
					     o.filters == def.filters;
				printf("png_%d_%s_%s%s %.1f MB/s\n", o.level, strategies[s], filters[f],
				       is_def ? "_default" : "", 512.0 * 512 / best / 1e6);
				printf("png_%d_%s_%s%s_bytes %zu bytes\n", o.level, strategies[s],
				       filters[f], is_def ? "_default" : "", bytes);
			}
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
