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
 * Thread-safety: render_image blocks the calling thread until the picture
 * is complete, and may be called from many threads sharing one pool (but
 * not from a job on that pool: it would wait for itself).
 */
#ifndef MW_RENDER_H
#define MW_RENDER_H

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
	uint64_t jobs;       /* jobs submitted to the pool (0 for seq) */
};

/* Renders checked picture pic with kernel k into img (allocated by the
 * caller for pic's size and channels). pool may be NULL only for MODE_SEQ.
 * Returns 0, or -ESHUTDOWN when the pool is being destroyed. */
int render_image(struct pool *pool, const struct picture *pic, const struct kernel *k,
		 enum render_mode mode, struct image *img, struct render_stats *stats);

/* Renders rows y0 .. y1-1 on the calling thread (the unit every mode uses);
 * returns the iterations of those rows. */
uint64_t render_rows(const struct picture *pic, const struct kernel_args *a,
		     const struct kernel *k, struct image *img, uint32_t y0, uint32_t y1);

#endif
