/*
 * render.c - scheduling modes over the pool.
 *
 * A render is a 'struct task' that every job points to. 'remaining'
 * counts the jobs not yet finished (they hold the task alive).
 * render_image: the job that takes 'remaining' to zero copies the mirrored
 * rows and wakes the waiting caller under a mutex (so the wake-up cannot
 * be missed); the acq_rel decrement orders every job's pixel writes before
 * that. render_start: 'units_left' counts the units not yet rendered; the
 * job that takes it to zero copies the mirrored rows and calls done at
 * once, and the job that takes 'remaining' to zero frees the task. The
 * two differ because a spawned job may sit in the queue behind other
 * pictures' jobs long after its siblings claimed every unit: waiting for
 * it made a picture wait for others (the tracer showed it: under the
 * workshop's load a default picture's render took 46 ms, median, for
 * 15 ms of work).
 *
 * Mirrored rows (auto mode only): the loop is symmetric under conjugation,
 * exactly, in IEEE arithmetic: with Ci and Zi negated every product and sum
 * is the negation of the original one (rounding to nearest is symmetric),
 * and Tr, Ti and the count are unchanged. So a row whose Ci is exactly
 * -Ci of another row (or exactly equal to the row before it) is a copy of
 * that row: the default picture renders 365 of its 512 rows. The workshop
 * modes (seq, px, row, workers) compute every pixel, as the workshop does.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "render/colour.h"
#include "render/names.h"
#include "render/render.h"
#include "trace/trace.h"

/* Trace events (arguments in braces):
 *   job {unit, iterations, queued_ns}              a workshop job (px, row, workers)
 *   job {units, iterations, queued_ns, request}    a claiming job; a step of the
 *                                                  request's flow when it has a tag
 *   row {y, iterations}                            seq mode in render_image
 *   mirror rows {rows}                             auto's copies, on the last job
 *   render {mode, jobs}                            render_image on the caller
 *   wait: render                                   the caller, its jobs handed out,
 *                                                  waiting for the last to end */
static const struct trace_desc TD_UNIT = {"job", "render", {"unit", "iterations", "queued_ns"}, 0};
static const struct trace_desc TD_CLAIM = {
	"job", "render", {"units", "iterations", "queued_ns", "request"}, 0};
static const struct trace_desc TD_ROW = {"row", "render", {"y", "iterations"}, 0};
static const struct trace_desc TD_MIRROR = {"mirror rows", "render", {"rows"}, 0};
static const struct trace_desc TD_RENDER = {"render", "render", {"mode", "jobs"}, 1};
static const struct trace_desc TD_WAIT_RENDER = {"wait: render", "render", {0}, 0};

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
	struct picture pic_copy; /* render_start: the caller's may go away */
	struct trace_labels labels; /* its jobs' CPU samples': the creator's route, the mode */
	const struct kernel *k;
	struct kernel_args args;
	struct image img;
	enum render_mode mode;

	/* Work units: pixels (px, workers) or bands of unit_rows source rows. */
	uint32_t units, unit_rows, nsrc;
	uint32_t *src;      /* source rows in render order */
	uint32_t *mirror;   /* mirror[y]: the row that row y copies (y itself if none) */
	uint64_t *row_iters; /* iterations of each row, for the stats of copies */

	atomic_uint next;   /* next unit to claim */
	atomic_uint units_left; /* render_start: units not yet rendered */
	atomic_uint_fast64_t iters;
	atomic_size_t remaining; /* jobs (and the spawner's claim) not finished */
	atomic_uint_fast64_t jobs;
	unsigned spawn;     /* render_start: further jobs the first job submits */
	uint64_t tag;       /* render_start: the flow id of the tracer's spans */
	uint64_t t_first;   /* trace clock when the first job began (0: not traced) */
	const atomic_int *cancel, *cancel_all; /* render_start: render_req's */
	uint32_t span;      /* most pixels between two checks of them */
	atomic_uint skipped; /* units skipped once cancelled */
	struct pool *pool;
	void (*finish)(struct task *t);

	/* render_image: the waiting caller */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int finished;
	/* render_start: the caller's continuation */
	render_done_fn *done;
	void *ctx;
};

/* Plans the rows of auto mode (see the top of the file). Ci is monotonic in
 * the row, so negative values come first and a mirror is found by binary
 * search. */
static void task_plan_rows(struct task *t)
{
	const uint32_t h = t->img.h;
	double prev = 0;

	t->nsrc = 0;
	for (uint32_t y = 0; y < h; y++) {
		double ci = kernel_ci(&t->args, y);
		t->mirror[y] = y;
		if (y > 0 && ci == prev) {
			t->mirror[y] = t->mirror[y - 1];
		} else if (ci > 0) {
			uint32_t lo = 0, hi = y;
			while (lo < hi) {
				uint32_t mid = lo + (hi - lo) / 2;
				if (kernel_ci(&t->args, mid) < -ci)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < y && kernel_ci(&t->args, lo) == -ci)
				t->mirror[y] = t->mirror[lo];
		}
		if (t->mirror[y] == y)
			t->src[t->nsrc++] = y;
		prev = ci;
	}
}

/* Sets up the units of t->mode; t->img, pic, k are set. 0 or -ENOMEM. */
static int task_init(struct task *t)
{
	const uint32_t w = t->img.w, h = t->img.h;

	picture_kernel_args(t->pic, &t->args);
	atomic_init(&t->next, 0);
	atomic_init(&t->iters, 0);
	t->src = NULL;
	t->unit_rows = 1;
	switch (t->mode) {
	case MODE_PX:
	case MODE_WORKERS:
		t->unit_rows = 0;
		t->units = w * h;
		return 0;
	case MODE_SEQ:
	case MODE_ROW:
		t->units = h;
		return 0;
	case MODE_AUTO:
		break;
	}
	/* One allocation: src, mirror (uint32 each) and row_iters. */
	uint64_t *mem = malloc((size_t)h * (sizeof(uint64_t) + 2 * sizeof(uint32_t)));
	if (!mem)
		return -ENOMEM;
	t->row_iters = mem;
	t->src = (uint32_t *)(mem + h);
	t->mirror = t->src + h;
	task_plan_rows(t);
	t->unit_rows = (AUTO_CLAIM_PIXELS + w - 1) / w;
	t->units = (t->nsrc + t->unit_rows - 1) / t->unit_rows;
	return 0;
}

static void task_fini(struct task *t)
{
	free(t->row_iters);
	t->src = NULL;
	t->row_iters = NULL;
}

static int task_cancelled(const struct task *t)
{
	return (t->cancel && atomic_load_explicit(t->cancel, memory_order_relaxed)) ||
	       (t->cancel_all && atomic_load_explicit(t->cancel_all, memory_order_relaxed));
}

/* Row y of a cancellable task, in spans of t->span pixels with a check
 * before each (the kernels give the same bits however a row is split). */
static uint64_t task_row(struct task *t, uint32_t y)
{
	if (!t->cancel && !t->cancel_all)
		return render_rows(t->pic, &t->args, t->k, &t->img, y, y + 1);
	uint64_t iters = 0;
	for (uint32_t x = 0; x < t->img.w && !task_cancelled(t); x += t->span) {
		uint32_t n = t->img.w - x < t->span ? t->img.w - x : t->span;
		iters += render_span(t->pic, &t->args, t->k, &t->img, y, x, n);
	}
	return iters;
}

/* Renders unit u of t; returns its iterations. */
static uint64_t task_unit(struct task *t, uint32_t u)
{
	if (t->unit_rows == 0) {
		uint32_t y = u / t->img.w, x = u % t->img.w;
		return render_span(t->pic, &t->args, t->k, &t->img, y, x, 1);
	}
	if (!t->src)
		return task_row(t, u);

	uint64_t iters = 0;
	uint32_t i0 = u * t->unit_rows, i1 = i0 + t->unit_rows;
	if (i1 > t->nsrc)
		i1 = t->nsrc;
	for (uint32_t i = i0; i < i1; i++) {
		uint32_t y = t->src[i];
		t->row_iters[y] = task_row(t, y);
		iters += t->row_iters[y];
	}
	return iters;
}

/* Copies auto's mirrored rows once every source row is rendered. */
static void task_mirror(struct task *t)
{
	if (t->src) {
		uint64_t copied = 0, t0 = trace_begin();
		for (uint32_t y = 0; y < t->img.h; y++) {
			uint32_t m = t->mirror[y];
			if (m == y)
				continue;
			memcpy(t->img.px + y * t->img.stride, t->img.px + m * t->img.stride,
			       t->img.stride);
			copied += t->row_iters[m];
		}
		atomic_fetch_add_explicit(&t->iters, copied, memory_order_relaxed);
		trace_span(&TD_MIRROR, t0, t->img.h - t->nsrc, 0);
	}
}

/* render_image: runs on the thread of the last job. */
static void task_job_done(struct task *t, uint64_t iters)
{
	atomic_fetch_add_explicit(&t->iters, iters, memory_order_relaxed);
	if (atomic_fetch_sub_explicit(&t->remaining, 1, memory_order_acq_rel) != 1)
		return;
	task_mirror(t);
	t->finish(t);
}

/* render_start: a job rendered 'units' units; the one that rendered the
 * last completes the picture, the last job to end frees the task. */
static void task_units_done(struct task *t, uint32_t units, uint64_t iters)
{
	atomic_fetch_add_explicit(&t->iters, iters, memory_order_relaxed);
	if (units && atomic_fetch_sub_explicit(&t->units_left, units, memory_order_acq_rel) == units) {
		task_mirror(t);
		t->finish(t);
	}
	if (atomic_fetch_sub_explicit(&t->remaining, 1, memory_order_acq_rel) == 1) {
		task_fini(t);
		free(t);
	}
}

/* One unit per job: the workshop's px, row and workers shapes. */
static void job_unit(void *arg, uintptr_t u)
{
	struct task *t = arg;
	struct trace_labels was = trace_labels_swap(t->labels);
	if (task_cancelled(t)) {
		atomic_fetch_add_explicit(&t->skipped, 1, memory_order_relaxed);
		task_job_done(t, 0);
		trace_labels_swap(was);
		return;
	}
	uint64_t t0 = trace_begin();
	uint64_t iters = task_unit(t, (uint32_t)u);

	trace_span_flow(&TD_UNIT, t0, TRACE_FLOW_NONE, 0, (int64_t)u, (int64_t)iters,
			(int64_t)pool_job_waited(), 0);
	task_job_done(t, iters);
	trace_labels_swap(was);
}

/* Claims units from the shared counter until none are left. The first job
 * of render_start first submits the others (from a worker, so that the
 * caller's thread never finishes a task), holding its own count so the
 * task cannot finish under it. */
static void job_claim(void *arg, uintptr_t first)
{
	struct task *t = arg;
	struct trace_labels was = trace_labels_swap(t->labels);
	uint64_t iters = 0, t0 = trace_begin();
	uint32_t units = 0;

	if (first)
		t->t_first = t0;
	for (unsigned i = 0; first && i < t->spawn; i++) {
		atomic_fetch_add_explicit(&t->remaining, 1, memory_order_relaxed);
		if (pool_try_submit(t->pool, job_claim, t, 0) < 0) {
			atomic_fetch_sub_explicit(&t->remaining, 1, memory_order_relaxed);
			break;
		}
		atomic_fetch_add_explicit(&t->jobs, 1, memory_order_relaxed);
	}
	for (;;) {
		uint32_t u = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
		if (u >= t->units)
			break;
		if (task_cancelled(t)) {
			/* Claims every unit left at once, rendering none: the
			 * picture completes (cancelled) as soon as the units being
			 * rendered now are. */
			uint32_t rest = atomic_exchange_explicit(&t->next, t->units, memory_order_relaxed);
			uint32_t mine = 1 + (rest < t->units ? t->units - rest : 0);
			atomic_fetch_add_explicit(&t->skipped, mine, memory_order_relaxed);
			units += mine;
			break;
		}
		iters += task_unit(t, u);
		units++;
	}
	trace_span_flow(&TD_CLAIM, t0, t->tag ? TRACE_FLOW_STEP : TRACE_FLOW_NONE, t->tag,
			(int64_t)units, (int64_t)iters, (int64_t)pool_job_waited(), (int64_t)t->tag);
	if (t->done)
		task_units_done(t, units, iters); /* may free t: its labels were copied */
	else
		task_job_done(t, iters);
	trace_labels_swap(was);
}

static void finish_wake(struct task *t)
{
	pthread_mutex_lock(&t->mu);
	t->finished = 1;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->mu);
}

/* render_image's jobs on the pool, fed by this thread (blocking on a full
 * queue, so the queue's shape is the experiment): 0, or the submit's
 * error once the jobs already given are done. */
static int run_on_pool(struct pool *pool, struct task *t, struct render_stats *st)
{
	/* auto: one claiming job per worker; otherwise one job per unit. */
	pool_fn *fn = t->mode == MODE_AUTO ? job_claim : job_unit;
	size_t jobs = t->mode == MODE_AUTO ? pool_workers(pool) : t->units, sent;
	int rc = 0;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cond, NULL);
	atomic_init(&t->remaining, jobs);
	for (sent = 0; sent < jobs && !task_cancelled(t); sent++) {
		rc = pool_submit(pool, fn, t, fn == job_unit ? sent : 0);
		if (rc < 0)
			break;
	}
	/* Jobs never submitted count as done, so the wait below ends. */
	if (sent < jobs &&
	    atomic_fetch_sub_explicit(&t->remaining, jobs - sent, memory_order_acq_rel) ==
		    jobs - sent)
		t->finished = 1;
	uint64_t w0 = trace_wait_begin(&TD_WAIT_RENDER);
	pthread_mutex_lock(&t->mu);
	if (!t->finished)
		trace_wait_sleep(&TD_WAIT_RENDER);
	while (!t->finished)
		pthread_cond_wait(&t->cond, &t->mu);
	pthread_mutex_unlock(&t->mu);
	trace_wait_span(&TD_WAIT_RENDER, w0);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->mu);
	st->iterations = atomic_load_explicit(&t->iters, memory_order_relaxed);
	st->jobs = sent;
	return rc;
}

/* A check every 2^26 iterations or so, at most KERNEL_SPAN_MAX pixels and
 * at least 8 apart (a vector's worth). */
static uint32_t check_span(const struct picture *pic)
{
	uint64_t span = (1u << 26) / (pic->max_iter ? pic->max_iter : 1);
	return span > KERNEL_SPAN_MAX ? KERNEL_SPAN_MAX : span < 8 ? 8 : (uint32_t)span;
}

int render_image(struct pool *pool, const struct picture *pic, const struct kernel *k,
		 enum render_mode mode, struct image *img, struct render_stats *stats)
{
	return render_image_until(pool, pic, k, mode, img, stats, NULL);
}

int render_image_until(struct pool *pool, const struct picture *pic, const struct kernel *k,
		       enum render_mode mode, struct image *img, struct render_stats *stats,
		       const atomic_int *cancel)
{
	struct task t = {.pic = pic, .k = k, .img = *img, .mode = mode, .finish = finish_wake,
			 .cancel = cancel, .span = check_span(pic)};
	struct render_stats st = {0};
	int rc;

	uint64_t t0 = trace_begin();
	if (pool == NULL)
		t.mode = MODE_SEQ;
	t.labels = (struct trace_labels){trace_labels_.route, render_mode_name(t.mode)};
	rc = task_init(&t);
	if (rc < 0)
		return rc;
	struct trace_labels was = trace_labels_swap(t.labels);
	if (t.mode == MODE_SEQ) {
		for (uint32_t u = 0; u < t.units && !task_cancelled(&t); u++) {
			uint64_t r0 = trace_begin(), n = task_unit(&t, u);
			trace_span(&TD_ROW, r0, u, (int64_t)n);
			st.iterations += n;
		}
		st.jobs = 1; /* this thread's, all of it */
	} else {
		rc = run_on_pool(pool, &t, &st);
	}
	st.cancelled = task_cancelled(&t);
	trace_labels_swap(was);
	task_fini(&t);
	trace_span(&TD_RENDER, t0, TRACE_STR(render_mode_name(t.mode)), (int64_t)st.jobs);
	if (stats)
		*stats = st;
	return rc;
}

/* render_start's finish: the picture is whole; the task lives on until its
 * last job has ended (task_units_done). */
static void finish_done(struct task *t)
{
	unsigned skipped = atomic_load_explicit(&t->skipped, memory_order_relaxed);
	struct render_stats st = {
		.iterations = atomic_load_explicit(&t->iters, memory_order_relaxed),
		.jobs = atomic_load_explicit(&t->jobs, memory_order_relaxed),
		.t_first = t->t_first,
		.t_done = t->t_first ? trace_now() : 0,
		/* a unit being rendered when the flag was set may be cut short too */
		.cancelled = skipped > 0 || task_cancelled(t),
		.done_share = t->units ? (double)(t->units - skipped) / t->units : 1,
	};
	struct image img = t->img;

	t->img.px = NULL; /* done owns the pixels now */
	t->done(t->ctx, &img, &st);
}

int render_start(struct pool *pool, const struct render_req *r)
{
	struct task *t = calloc(1, sizeof *t);
	int rc = -ENOMEM;
	unsigned want;

	if (!t)
		return rc;
	*t = (struct task){
		.pic = &t->pic_copy, .k = r->kernel, .mode = r->mode, .pool = pool,
		.finish = finish_done, .done = r->done, .ctx = r->ctx, .jobs = 1, .tag = r->tag,
		.cancel = r->cancel, .cancel_all = r->cancel_all,
	};
	t->span = check_span(r->pic);
	t->labels = (struct trace_labels){trace_labels_.route, render_mode_name(t->mode)};
	t->pic_copy = *r->pic;
	if (image_alloc(&t->img, r->pic->w, r->pic->h, picture_channels(r->pic)) < 0)
		goto err_task;
	rc = task_init(t);
	if (rc < 0)
		goto err_img;
	/* seq: one job does it all; otherwise up to r->jobs claiming jobs. */
	want = t->mode == MODE_SEQ ? 1 : r->jobs ? r->jobs : pool_workers(pool);
	if (want > t->units)
		want = t->units ? t->units : 1;
	t->spawn = want - 1;
	atomic_init(&t->remaining, 1);
	atomic_init(&t->units_left, t->units);
	rc = pool_try_submit(pool, job_claim, t, 1);
	if (rc == 0)
		return 0;
	task_fini(t);
err_img:
	image_free(&t->img);
err_task:
	free(t);
	return rc;
}
