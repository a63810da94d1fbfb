/* test_render.c - every scheduling mode, worker count and queue gives the
 * same bytes. Suite "concurrency_render": also run under ThreadSanitizer. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "render/render.h"

static void check_all_modes(const struct picture *pic)
{
	unsigned nk;
	const struct kernel *all = kernel_all(&nk);
	struct image ref;

	cr_assert(eq(int, image_alloc(&ref, pic->w, pic->h, picture_channels(pic)), 0));
	render_image(NULL, pic, &all[nk - 1], MODE_SEQ, &ref, NULL); /* scalar */

	static const unsigned workers[] = {1, 2, 3};
	static const unsigned queues[] = {0, 1, 5, 1024};
	for (int m = MODE_SEQ; m <= MODE_AUTO; m++) {
		for (size_t w = 0; w < sizeof workers / sizeof workers[0]; w++) {
			for (size_t q = 0; q < sizeof queues / sizeof queues[0]; q++) {
				struct pool *p;
				struct image img;
				struct render_stats st;
				cr_assert(eq(int, pool_create(&p, workers[w], queues[q], "t", NULL), 0));
				cr_assert(eq(int, image_alloc(&img, pic->w, pic->h, ref.channels), 0));
				cr_assert(eq(int, render_image(p, pic, kernel_best(), m, &img, &st), 0));
				cr_expect(eq(int, memcmp(img.px, ref.px, ref.stride * ref.h), 0),
					  "mode %s workers %u queue %u %ux%u", render_mode_name(m),
					  workers[w], queues[q], pic->w, pic->h);
				cr_expect(gt(u64, st.iterations, 0));
				image_free(&img);
				pool_destroy(p);
			}
		}
	}
	image_free(&ref);
}

Test(concurrency_render, every_mode_same_bytes_gray, .timeout = 120)
{
	struct picture pic = picture_default(67, 33);
	check_all_modes(&pic);
}

Test(concurrency_render, every_mode_same_bytes_colour_1x1_and_odd, .timeout = 120)
{
	struct picture pic = picture_default(1, 1);
	check_all_modes(&pic);
	pic = picture_default(19, 41);
	pic.colour = COLOUR_SMOOTH;
	pic.has_view = 1, pic.cx = -0.75, pic.cy = 0.1, pic.zoom = 30;
	check_all_modes(&pic);
}

Test(concurrency_render, seq_needs_no_pool_and_counts_iterations)
{
	struct picture pic = picture_default(512, 512);
	struct image img;
	struct render_stats st;

	cr_assert(eq(int, image_alloc(&img, 512, 512, 1), 0));
	cr_assert(eq(int, render_image(NULL, &pic, kernel_best(), MODE_SEQ, &img, &st), 0));
	cr_assert(eq(u64, st.iterations, 96308720));
	cr_assert(eq(u64, st.jobs, 0));
	image_free(&img);
}

Test(render, mode_names_round_trip)
{
	enum render_mode m;
	for (int i = MODE_SEQ; i <= MODE_AUTO; i++) {
		cr_assert(eq(int, render_mode_parse(render_mode_name(i), &m), 0));
		cr_assert(eq(int, (int)m, i));
	}
	cr_assert(eq(int, render_mode_parse("fast", &m), -EINVAL));
}
