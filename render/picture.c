/* picture.c - picture parameters: defaults, ranges, pixel-to-plane mapping. */
#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "render/names.h"
#include "render/picture.h"

/* Escape radius squared for the continuous colourings: a large radius makes
 * the smooth escape count accurate (no visible bands); gray keeps the
 * workshop's 4.0, which its formula needs. */
#define SMOOTH_BAILOUT 65536.0

struct picture picture_default(uint32_t w, uint32_t h)
{
	struct picture p = {.w = w, .h = h, .max_iter = 1000, .colour = COLOUR_GRAY,
			    .cx = -0.476, .cy = 0.024, .zoom = 1.0};
	return p;
}

/* The one-line reason for a bad field: its name and its allowed range. */
static int field_error(const char *field, char *why, size_t why_len)
{
	if (strcmp(field, "w") == 0 || strcmp(field, "h") == 0)
		snprintf(why, why_len, "%s must be an integer in 1..%u", field, PICTURE_MAX_SIDE);
	else if (strcmp(field, "w*h") == 0)
		snprintf(why, why_len, "w*h must be at most %u pixels", PICTURE_MAX_PIXELS);
	else if (strcmp(field, "iter") == 0)
		snprintf(why, why_len, "iter must be an integer in 1..%u", PICTURE_MAX_ITER);
	else if (strcmp(field, "zoom") == 0)
		snprintf(why, why_len, "zoom must be a number in %g..%g", PICTURE_MIN_ZOOM,
			 PICTURE_MAX_ZOOM);
	else if (strcmp(field, "cx") == 0 || strcmp(field, "cy") == 0)
		snprintf(why, why_len, "%s must be a number in %g..%g", field,
			 -PICTURE_MAX_COORD, PICTURE_MAX_COORD);
	else
		snprintf(why, why_len, "%s must be one of %s", field, COLOUR_NAMES);
	return -EINVAL;
}

int picture_check(const struct picture *p, char *why, size_t why_len)
{
	if (p->w < 1 || p->w > PICTURE_MAX_SIDE)
		return field_error("w", why, why_len);
	if (p->h < 1 || p->h > PICTURE_MAX_SIDE)
		return field_error("h", why, why_len);
	if ((uint64_t)p->w * p->h > PICTURE_MAX_PIXELS)
		return field_error("w*h", why, why_len);
	if (p->max_iter < 1 || p->max_iter > PICTURE_MAX_ITER)
		return field_error("iter", why, why_len);
	if (p->has_view) {
		if (!(fabs(p->cx) <= PICTURE_MAX_COORD))
			return field_error("cx", why, why_len);
		if (!(fabs(p->cy) <= PICTURE_MAX_COORD))
			return field_error("cy", why, why_len);
		if (!(p->zoom >= PICTURE_MIN_ZOOM && p->zoom <= PICTURE_MAX_ZOOM))
			return field_error("zoom", why, why_len);
	}
	if ((unsigned)p->colour > COLOUR_FIRE)
		return field_error("colour", why, why_len);
	return 0;
}

void picture_kernel_args(const struct picture *p, struct kernel_args *a)
{
	const uint32_t side = p->w < p->h ? p->w : p->h;

	if (!p->has_view) {
		/* The workshop's x0 = -1.5, y0 = -1.0 for a square picture,
		 * exactly; a longer side extends evenly on both ends. */
		a->s = 2048.0 / side;
		a->x0 = -1.5 - (a->s * (p->w - side)) / 2000;
		a->y0 = -1.0 - (a->s * (p->h - side)) / 2000;
	} else {
		a->s = 2048.0 / (p->zoom * side);
		a->x0 = p->cx - (a->s * p->w) / 2000;
		a->y0 = p->cy - (a->s * p->h) / 2000;
	}
	a->max_iter = p->max_iter;
	a->bailout = p->colour == COLOUR_GRAY ? 4.0 : SMOOTH_BAILOUT;
}

unsigned picture_channels(const struct picture *p)
{
	return p->colour == COLOUR_GRAY ? 1 : 3;
}

static const struct name_value colours[] = {
	{"gray", COLOUR_GRAY}, {"smooth", COLOUR_SMOOTH}, {"fire", COLOUR_FIRE}, {"grey", COLOUR_GRAY},
};

const char *colour_name(enum colour c)
{
	return names_name(colours, NAMES_COUNT(colours), (int)c);
}

int colour_parse(const char *s, enum colour *out)
{
	int v;
	if (names_parse(colours, NAMES_COUNT(colours), s, &v) < 0)
		return -EINVAL;
	*out = (enum colour)v;
	return 0;
}

int picture_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;

	if (*s < '0' || *s > '9') /* no sign, no space, not empty */
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int picture_parse_double(const char *s, double *out)
{
	char *end;

	/* Decimal only, as docs/service.md promises: strtod would also read hex
	 * floats (0x1p2 is 4), "infinity" and leading space. */
	if (*s == '\0' || s[strspn(s, "0123456789+-.eE")] != '\0')
		return -EINVAL;
	errno = 0;
	double v = strtod(s, &end);
	if (*end || !isfinite(v) || (errno == ERANGE && v != 0))
		return -EINVAL;
	*out = v;
	return 0;
}

int picture_set(struct picture *p, const char *name, const char *value, char *why,
		size_t why_len)
{
	struct picture t = *p;
	double *d = NULL;
	uint32_t *u = NULL, umax = PICTURE_MAX_SIDE;

	if (strcmp(name, "w") == 0)
		u = &t.w;
	else if (strcmp(name, "h") == 0)
		u = &t.h;
	else if (strcmp(name, "iter") == 0)
		u = &t.max_iter, umax = PICTURE_MAX_ITER;
	else if (strcmp(name, "cx") == 0)
		d = &t.cx;
	else if (strcmp(name, "cy") == 0)
		d = &t.cy;
	else if (strcmp(name, "zoom") == 0)
		d = &t.zoom;
	else if (strcmp(name, "colour") == 0 || strcmp(name, "color") == 0) {
		if (colour_parse(value, &t.colour) < 0)
			return field_error(name, why, why_len);
	} else
		return -ENOENT;

	if (u && picture_parse_u32(value, 1, umax, u) < 0)
		return field_error(name, why, why_len);
	if (d) {
		if (picture_parse_double(value, d) < 0)
			return field_error(name, why, why_len);
		t.has_view = 1;
	}
	int rc = picture_check(&t, why, why_len);
	if (rc == 0)
		*p = t;
	return rc;
}
