/* test_render.c - every scheduling mode, worker count and queue gives the
 * same bytes. Suite "concurrency_render": also run under ThreadSanitizer. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
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
				cr_expect(lt(u64, 0, st.iterations));
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

Test(concurrency_render, seq_needs_no_pool_is_one_job_and_counts_iterations)
{
	struct picture pic = picture_default(512, 512);
	struct image img;
	struct render_stats st;

	cr_assert(eq(int, image_alloc(&img, 512, 512, 1), 0));
	cr_assert(eq(int, render_image(NULL, &pic, kernel_best(), MODE_SEQ, &img, &st), 0));
	cr_assert(eq(u64, st.iterations, 96308720));
	cr_assert(eq(u64, st.jobs, 1));
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

/* render_start: the done callback's side of the test. */
struct started {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	struct image img;
	struct render_stats st;
	pthread_t thread;
};

static void started_done(void *ctx, struct image *img, const struct render_stats *st)
{
	struct started *s = ctx;
	pthread_mutex_lock(&s->mu);
	s->calls++;
	s->img = *img;
	s->st = *st;
	s->thread = pthread_self();
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void start_and_wait(struct pool *p, const struct picture *pic, enum render_mode m,
			   unsigned jobs, struct started *s)
{
	*s = (struct started){.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct render_req r = {.pic = pic, .kernel = kernel_best(), .mode = m, .jobs = jobs,
			       .done = started_done, .ctx = s};
	cr_assert(eq(int, render_start(p, &r), 0));
	pthread_mutex_lock(&s->mu);
	while (s->calls == 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
}

/* The default picture: auto copies 147 mirrored rows, and every mode of
 * both entry points gives the scalar reference's bytes and iterations. */
Test(concurrency_render, start_every_mode_default_picture, .timeout = 120)
{
	struct picture pic = picture_default(512, 512);
	struct image ref;
	struct pool *p;
	cr_assert(eq(int, image_alloc(&ref, 512, 512, 1), 0));
	render_image(NULL, &pic, kernel_find("scalar"), MODE_SEQ, &ref, NULL);
	cr_assert(eq(int, pool_create(&p, 3, 8, "t", NULL), 0));
	for (int m = MODE_SEQ; m <= MODE_AUTO; m++) {
		for (unsigned jobs = 0; jobs <= 3; jobs++) {
			struct started s;
			start_and_wait(p, &pic, m, jobs, &s);
			cr_expect(eq(int, memcmp(s.img.px, ref.px, ref.stride * ref.h), 0),
				  "mode %s jobs %u", render_mode_name(m), jobs);
			cr_expect(eq(u64, s.st.iterations, 96308720));
			cr_expect(eq(int, s.calls, 1));
			cr_expect(not(eq(int, pthread_equal(s.thread, pthread_self()), 1)));
			image_free(&s.img);
		}
	}
	struct image img;
	struct render_stats st;
	cr_assert(eq(int, image_alloc(&img, 512, 512, 1), 0));
	cr_assert(eq(int, render_image(p, &pic, kernel_best(), MODE_AUTO, &img, &st), 0));
	cr_expect(eq(int, memcmp(img.px, ref.px, ref.stride * ref.h), 0));
	cr_expect(eq(u64, st.iterations, 96308720));
	image_free(&img);
	image_free(&ref);
	pool_destroy(p);
}

static void job_block(void *arg, uintptr_t i)
{
	(void)i;
	pthread_mutex_lock(arg);
	pthread_mutex_unlock(arg);
}

/* A full queue refuses at once and never calls done. */
Test(concurrency_render, start_refuses_on_full_queue)
{
	pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	struct picture pic = picture_default(16, 16);
	struct pool *p;
	struct started s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct render_req r = {.pic = &pic, .kernel = kernel_best(), .mode = MODE_AUTO,
			       .done = started_done, .ctx = &s};

	cr_assert(eq(int, pool_create(&p, 1, 1, "t", NULL), 0));
	pthread_mutex_lock(&gate);
	cr_assert(eq(int, pool_submit(p, job_block, &gate, 0), 0)); /* the worker */
	while (pool_busy(p) == 0)
		sched_yield();
	cr_assert(eq(int, pool_submit(p, job_block, &gate, 0), 0)); /* the queue */
	cr_expect(eq(int, render_start(p, &r), -EAGAIN));
	pthread_mutex_unlock(&gate);
	pool_destroy(p);
	cr_expect(eq(int, s.calls, 0));
}
