/*
 * colour.h - from escape-time results to pixel bytes.
 *
 * Owns: the gray formula, the continuous ("smooth") escape count and the
 * palettes. Every function is plain IEEE arithmetic without libm
 * transcendental calls (whose last bit differs between libm builds and CPU
 * paths), so a picture is the same bytes on every machine.
 * Thread-safety: pure; the palette tables are constant data.
 */
#ifndef MW_COLOUR_H
#define MW_COLOUR_H

#include <stdint.h>

#include "render/kernel.h"
#include "render/picture.h"

/* The workshop's shade: (uint8_t)(int32_t)(Tr * Ti * 2). Values outside the
 * int32 range (possible only far outside the default view) give 0, which is
 * what x86-64's conversion yields and what C leaves undefined. */
uint8_t colour_gray(double tr, double ti);

/* Writes count pixels of out as colour c (1 or 3 bytes each) to dst. */
void colour_span(enum colour c, uint32_t max_iter, const struct kernel_out *out,
		 uint32_t count, uint8_t *dst);

/* log2(x) for finite x > 0 to about 1e-7, deterministic (exported for tests). */
double colour_log2(double x);

#endif
