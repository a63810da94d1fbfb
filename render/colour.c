/* colour.c - gray shade, smooth escape count and palettes. */
#include <math.h>

#include "render/colour.h"

uint8_t colour_gray(double tr, double ti)
{
	double v = tr * ti * 2;

	if (!(v > -2147483649.0 && v < 2147483648.0))
		return 0;
	return (uint8_t)(int32_t)v;
}

double colour_log2(double x)
{
	int e;
	double m = frexp(x, &e); /* exact: x = m * 2^e, m in [0.5, 1) */

	if (m < 0.70710678118654752) { /* keep m in [sqrt(1/2), sqrt(2)) */
		m *= 2;
		e -= 1;
	}
	/* ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172 */
	double s = (m - 1) / (m + 1), s2 = s * s;
	double series = s * (2 + s2 * (2.0 / 3 + s2 * (2.0 / 5 + s2 * (2.0 / 7 + s2 * (2.0 / 9)))));
	return e + series * 1.4426950408889634; /* 1 / ln 2 */
}

/* Palettes: control points (position in [0, 1), RGB), linearly
 * interpolated, cyclic. */
struct stop {
	double at;
	uint8_t r, g, b;
};

static const struct stop smooth_stops[] = {
	{0.0, 0, 7, 100},      {0.16, 32, 107, 203}, {0.42, 237, 255, 255},
	{0.6425, 255, 170, 0}, {0.8575, 0, 2, 0},    {1.0, 0, 7, 100},
};
static const struct stop fire_stops[] = {
	{0.0, 0, 0, 0},      {0.25, 128, 0, 8},   {0.5, 240, 64, 0},
	{0.75, 255, 220, 64}, {0.9, 255, 255, 230}, {1.0, 0, 0, 0},
};

static void palette(const struct stop *st, double t, uint8_t *rgb)
{
	unsigned i = 0;

	while (t >= st[i + 1].at)
		i++;
	double f = (t - st[i].at) / (st[i + 1].at - st[i].at);
	rgb[0] = (uint8_t)(st[i].r + f * (st[i + 1].r - st[i].r) + 0.5);
	rgb[1] = (uint8_t)(st[i].g + f * (st[i + 1].g - st[i].g) + 0.5);
	rgb[2] = (uint8_t)(st[i].b + f * (st[i + 1].b - st[i].b) + 0.5);
}

/* Continuous escape count: n + 1 - log2(log2|z|), |z|^2 = Tr + Ti, which is
 * continuous across the bands of the integer count for a large bailout. */
static double smooth_count(uint32_t n, double tr, double ti)
{
	double l = colour_log2(tr + ti) * 0.5; /* log2 |z| > 1 */
	return n + 1 - colour_log2(l);
}

void colour_span(enum colour c, uint32_t max_iter, const struct kernel_out *out,
		 uint32_t count, uint8_t *dst)
{
	if (c == COLOUR_GRAY) {
		for (uint32_t k = 0; k < count; k++)
			dst[k] = colour_gray(out->tr[k], out->ti[k]);
		return;
	}
	const struct stop *st = c == COLOUR_FIRE ? fire_stops : smooth_stops;
	for (uint32_t k = 0; k < count; k++, dst += 3) {
		if (out->n[k] >= max_iter) {
			dst[0] = dst[1] = dst[2] = 0;
			continue;
		}
		/* sqrt spreads the palette over low and high counts alike; the
		 * phase (dark at mu = 1, far outside) and the period (4 in
		 * sqrt-space) were chosen by eye. */
		double mu = smooth_count(out->n[k], out->tr[k], out->ti[k]);
		double t = (sqrt(mu > 1 ? mu : 1) - 1) / 4;
		t -= floor(t);
		palette(st, t, dst);
	}
}
