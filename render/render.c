/*
 * render.c - scheduling modes over the pool.
 *
 * A render is a 'struct task' on the caller's stack that every job points
 * to. The caller waits on task.done until 'remaining' (jobs not yet
 * finished) reaches zero; the job that takes it to zero signals under the
 * mutex, so the caller cannot miss the wake-up, and the acq_rel decrement
 * orders every job's pixel writes before the caller's reads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "render/colour.h"
#include "render/names.h"
#include "render/render.h"

/* auto mode: a claim is at least this many pixels, so the atomic counter
 * is touched rarely even for narrow pictures, and at most one row for wide
 * ones, so two workers finish within a row of each other. */
#define AUTO_CLAIM_PIXELS 512

int image_alloc(struct image *img, uint32_t w, uint32_t h, unsigned channels)
{
	img->w = w;
	img->h = h;
	img->channels = channels;
	img->stride = (size_t)w * channels;
	img->px = malloc(img->stride * h);
	return img->px ? 0 : -ENOMEM;
}

void image_free(struct image *img)
{
	free(img->px);
	img->px = NULL;
}

static const struct name_value modes[] = {
	{"seq", MODE_SEQ}, {"px", MODE_PX}, {"row", MODE_ROW}, {"workers", MODE_WORKERS}, {"auto", MODE_AUTO},
};

const char *render_mode_name(enum render_mode m)
{
	return names_name(modes, NAMES_COUNT(modes), (int)m);
}

int render_mode_parse(const char *s, enum render_mode *out)
{
	int v;
	if (names_parse(modes, NAMES_COUNT(modes), s, &v) < 0)
		return -EINVAL;
	*out = (enum render_mode)v;
	return 0;
}

static uint64_t render_span(const struct picture *pic, const struct kernel_args *a,
			    const struct kernel *k, struct image *img, uint32_t y,
			    uint32_t x0, uint32_t count)
{
	struct kernel_out out;
	uint64_t iters = 0;

	k->fn(a, y, x0, count, &out);
	for (uint32_t i = 0; i < count; i++)
		iters += out.n[i];
	colour_span(pic->colour, a->max_iter, &out, count,
		    img->px + y * img->stride + (size_t)x0 * img->channels);
	return iters;
}

uint64_t render_rows(const struct picture *pic, const struct kernel_args *a,
		     const struct kernel *k, struct image *img, uint32_t y0, uint32_t y1)
{
	uint64_t iters = 0;

	for (uint32_t y = y0; y < y1; y++) {
		for (uint32_t x = 0; x < img->w; x += KERNEL_SPAN_MAX) {
			uint32_t n = img->w - x < KERNEL_SPAN_MAX ? img->w - x : KERNEL_SPAN_MAX;
			iters += render_span(pic, a, k, img, y, x, n);
		}
	}
	return iters;
}

struct task {
	const struct picture *pic;
	const struct kernel *k;
	struct kernel_args args;
	struct image *img;
	uint32_t claim_rows;
	atomic_uint next_row;
	atomic_uint_fast64_t iters;
	atomic_size_t remaining;
	pthread_mutex_t mu;
	pthread_cond_t done;
	int finished;
};

static void task_job_done(struct task *t, uint64_t iters)
{
	atomic_fetch_add_explicit(&t->iters, iters, memory_order_relaxed);
	if (atomic_fetch_sub_explicit(&t->remaining, 1, memory_order_acq_rel) == 1) {
		pthread_mutex_lock(&t->mu);
		t->finished = 1;
		pthread_cond_signal(&t->done);
		pthread_mutex_unlock(&t->mu);
	}
}

static void job_pixel(void *arg, uintptr_t i)
{
	struct task *t = arg;
	uint32_t y = (uint32_t)(i / t->img->w), x = (uint32_t)(i % t->img->w);

	task_job_done(t, render_span(t->pic, &t->args, t->k, t->img, y, x, 1));
}

static void job_row(void *arg, uintptr_t y)
{
	struct task *t = arg;

	task_job_done(t, render_rows(t->pic, &t->args, t->k, t->img, (uint32_t)y,
				     (uint32_t)y + 1));
}

static void job_claim(void *arg, uintptr_t unused)
{
	struct task *t = arg;
	uint64_t iters = 0;
	(void)unused;

	for (;;) {
		uint32_t y0 = atomic_fetch_add_explicit(&t->next_row, t->claim_rows,
							memory_order_relaxed);
		if (y0 >= t->img->h)
			break;
		uint32_t y1 = y0 + t->claim_rows < t->img->h ? y0 + t->claim_rows : t->img->h;
		iters += render_rows(t->pic, &t->args, t->k, t->img, y0, y1);
	}
	task_job_done(t, iters);
}

int render_image(struct pool *pool, const struct picture *pic, const struct kernel *k,
		 enum render_mode mode, struct image *img, struct render_stats *stats)
{
	struct task t = {.pic = pic, .k = k, .img = img};
	struct render_stats st = {0};
	pool_fn *fn;
	size_t jobs;
	int rc = 0;

	picture_kernel_args(pic, &t.args);
	if (mode == MODE_SEQ || pool == NULL) {
		st.iterations = render_rows(pic, &t.args, k, img, 0, img->h);
		goto out;
	}
	switch (mode) {
	case MODE_PX:
	case MODE_WORKERS:
		fn = job_pixel;
		jobs = (size_t)img->w * img->h;
		break;
	case MODE_ROW:
		fn = job_row;
		jobs = img->h;
		break;
	default:
		fn = job_claim;
		jobs = pool_workers(pool);
		t.claim_rows = (AUTO_CLAIM_PIXELS + img->w - 1) / img->w;
		break;
	}
	atomic_init(&t.next_row, 0);
	atomic_init(&t.iters, 0);
	atomic_init(&t.remaining, jobs);
	pthread_mutex_init(&t.mu, NULL);
	pthread_cond_init(&t.done, NULL);

	size_t sent;
	for (sent = 0; sent < jobs; sent++) {
		rc = pool_submit(pool, fn, &t, sent);
		if (rc < 0)
			break;
	}
	/* Jobs never submitted count as done, so the wait below ends. */
	if (sent < jobs &&
	    atomic_fetch_sub_explicit(&t.remaining, jobs - sent, memory_order_acq_rel) ==
		    jobs - sent)
		t.finished = 1;
	pthread_mutex_lock(&t.mu);
	while (!t.finished)
		pthread_cond_wait(&t.done, &t.mu);
	pthread_mutex_unlock(&t.mu);
	pthread_cond_destroy(&t.done);
	pthread_mutex_destroy(&t.mu);
	st.iterations = atomic_load_explicit(&t.iters, memory_order_relaxed);
	st.jobs = sent;
out:
	if (stats)
		*stats = st;
	return rc;
}
