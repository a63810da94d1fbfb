/*
 * render.h - a picture into pixels, split into jobs by a scheduling mode.
 *
 * Owns: struct image (the caller frees it with image_free), the modes of the
 * Go workshop and the production split, and the render jobs they create.
 *
 *   seq      the calling thread renders every row; no pool needed
 *   px       one job per pixel on the pool
 *   row      one job per row on the pool
 *   workers  one job per pixel, fed to the pool's workers through its queue;
 *            with queue capacity 0 every hand-off is a rendezvous (the
 *            workshop's unbuffered channel), with N a buffered one
 *   auto     one job per worker; each takes bands of rows from a shared
 *            atomic counter until none are left (the production default)
 *
 * px and workers differ in C only through the queue they are given: Go's
 * px mode starts a goroutine per pixel, for which the closest C analogue
 * that does not start a thread per pixel is a pool job per pixel.
 *
 * auto also renders a row that mirrors another (its Ci is exactly the
 * other's negated) by copying it: the loop is exactly symmetric under
 * conjugation, so the bytes are the same (render.c says why).
 *
 * Two ways in:
 *   render_image  synchronous, for the CLI and benchmarks: the caller feeds
 *                 the pool (blocking on a full queue, so the queue's shape
 *                 is the experiment) and waits.
 *   render_start  asynchronous, for the server: one non-blocking submit;
 *                 the picture becomes up to N claiming jobs on the pool (the
 *                 mode picks the unit they claim: a pixel for px and
 *                 workers, a row for row, bands for auto; seq is one job),
 *                 and the job that finishes last calls done on its worker.
 *
 * render_start's pictures can be cancelled (render_req.cancel): the units
 * not yet rendered are skipped, within about 2^26 iterations of the flag.
 *
 * Traced (trace/trace.h): every job as a span with its units, iterations
 * and queue wait; render_image's whole render on the caller (and each row
 * in seq mode); auto's mirror copy.
 *
 * Thread-safety: both may be called from many threads sharing one pool.
 * render_image must not be called from a job on that pool (it would wait
 * for itself); render_start may be called from anywhere.
 */
#ifndef MW_RENDER_H
#define MW_RENDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "render/kernel.h"
#include "render/picture.h"
#include "render/pool.h"

enum render_mode { MODE_SEQ, MODE_PX, MODE_ROW, MODE_WORKERS, MODE_AUTO };
#define RENDER_MODE_NAMES "seq|px|row|workers|auto"

struct image {
	uint32_t w, h;
	unsigned channels; /* 1: gray, 3: RGB */
	size_t stride;     /* bytes per row */
	uint8_t *px;
};

/* Allocates w x h x channels bytes: 0 or -ENOMEM. */
int image_alloc(struct image *img, uint32_t w, uint32_t h, unsigned channels);
void image_free(struct image *img);

const char *render_mode_name(enum render_mode m);
int render_mode_parse(const char *s, enum render_mode *out); /* 0 or -EINVAL */

/* What one render did, for the CLI's line, benchmarks and the tracer. */
struct render_stats {
	uint64_t iterations; /* sum over pixels of the loop count */
	uint64_t jobs;       /* jobs: submitted to the pool, or 1 for seq (the caller's) */
	/* render_start, on the trace clock (trace/trace.h) when the tracer
	 * was armed as the first job began, else 0: that start, and the end */
	uint64_t t_first, t_done;
	/* render_start: cancelled before every unit was rendered (the pixels
	 * are then not the picture), and the share of units rendered, 0..1 */
	int cancelled;
	double done_share;
};

/* Renders checked picture pic with kernel k into img (allocated by the
 * caller for pic's size and channels). pool may be NULL only for MODE_SEQ.
 * Returns 0, -ENOMEM (auto's row plan; img is then untouched), or
 * -ESHUTDOWN when the pool is being destroyed. */
int render_image(struct pool *pool, const struct picture *pic, const struct kernel *k,
		 enum render_mode mode, struct image *img, struct render_stats *stats);

/* The same, stopped when *cancel becomes nonzero (checked as render_req
 * says of its cancel: between units, and between spans of a row): the
 * units not begun are skipped, and stats->cancelled says so. The CLI's
 * Ctrl-C. */
int render_image_until(struct pool *pool, const struct picture *pic, const struct kernel *k,
		       enum render_mode mode, struct image *img, struct render_stats *stats,
		       const atomic_int *cancel);

/* Called once, on a pool worker, when a render_start picture is complete.
 * The callee owns img (image_free it); stats is valid during the call. */
typedef void render_done_fn(void *ctx, struct image *img, const struct render_stats *stats);

struct render_req {
	const struct picture *pic; /* checked; copied, so it may go away */
	const struct kernel *kernel;
	enum render_mode mode;
	unsigned jobs;             /* most jobs at once; 0: one per pool worker */
	uint64_t tag;              /* nonzero: the jobs' spans are steps of this trace flow */
	render_done_fn *done;
	void *ctx;
	/* Checked between units and between spans of KERNEL_SPAN_MAX pixels
	 * or fewer (so a check comes within about 2^26 iterations): when
	 * either is nonzero, the units left are skipped and done is called
	 * with stats->cancelled. NULL: never. They must stay valid until done
	 * is called. */
	const atomic_int *cancel, *cancel_all;
};

/* Starts rendering r->pic on pool without blocking. Returns 0 (done will
 * be called exactly once, on a worker), or, with nothing started and done
 * never called: -EAGAIN when the pool's queue is full, -ESHUTDOWN while it
 * is being destroyed, -ENOMEM. */
int render_start(struct pool *pool, const struct render_req *r);

/* Renders rows y0 .. y1-1 on the calling thread (the unit every mode uses);
 * returns the iterations of those rows. */
uint64_t render_rows(const struct picture *pic, const struct kernel_args *a,
		     const struct kernel *k, struct image *img, uint32_t y0, uint32_t y1);

#endif
