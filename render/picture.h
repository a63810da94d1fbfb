/*
 * picture.h - what a picture is: size, viewport, iteration limit, colouring;
 * the allowed ranges of each, and the mapping from pixels to the plane.
 *
 * Owns: struct picture, its validation (one message per bad field, naming
 * the field and its allowed range, shared by the CLI and the server), and
 * picture_kernel_args. Pure functions; callable from any thread.
 *
 * The default view (no cx, cy or zoom given) is the Go workshop's picture:
 * s = 2048 / min(w, h), x0 = -1.5 and y0 = -1.0 for a square picture, so
 * that pixel (px, py) is Cr = (s * px) / 1000 - 1.5, Ci = (s * py) / 1000
 * - 1.0 exactly. A non-square picture keeps the centre and the scale of the
 * shorter side. An explicit view is a centre (cx, cy) and a zoom: the
 * shorter side spans 2.048 / zoom; its corner is computed once, so the
 * default view and cx=-0.476&cy=0.024&zoom=1 can differ in the last bit.
 */
#ifndef MW_PICTURE_H
#define MW_PICTURE_H

#include <stddef.h>
#include <stdint.h>

#include "render/kernel.h"

enum colour {
	COLOUR_GRAY,   /* the workshop's shade, an 8-bit grayscale PNG */
	COLOUR_SMOOTH, /* continuous escape time on a blue-gold palette, RGB */
	COLOUR_FIRE,   /* continuous escape time on black-red-yellow-white, RGB */
};

#define PICTURE_MAX_SIDE 8192u      /* pixels; w * h also under PICTURE_MAX_PIXELS */
#define PICTURE_MAX_PIXELS (16u << 20)
#define PICTURE_MAX_ITER 1000000u
#define PICTURE_MAX_COORD 4.0       /* |cx|, |cy|: the set lies within |c| <= 2 */
#define PICTURE_MIN_ZOOM 1e-3
#define PICTURE_MAX_ZOOM 1e13       /* past ~1e13 doubles run out of bits per pixel */

struct picture {
	uint32_t w, h;
	int has_view;         /* 0: the default view; 1: cx, cy, zoom below */
	double cx, cy, zoom;
	uint32_t max_iter;
	enum colour colour;
};

/* The workshop's picture: w x h, default view, 1000 iterations, gray. */
struct picture picture_default(uint32_t w, uint32_t h);

/* 0 when every field is in range; else -EINVAL and a one-line reason in
 * why (e.g. "w must be an integer in 1..8192"). */
int picture_check(const struct picture *p, char *why, size_t why_len);

/* Sets the field called name ("w", "h", "cx", "cy", "zoom", "iter",
 * "colour" or "color") from its text, strictly: the whole text must be a
 * decimal integer, or a finite number, in range. cx, cy and zoom switch to
 * an explicit view (the others keep their defaults). Returns 0, -EINVAL
 * with a one-line reason naming the field and its range, or -ENOENT for a
 * name that is not a picture field. The CLI's flags and the server's query
 * parameters both go through here. */
int picture_set(struct picture *p, const char *name, const char *value, char *why,
		size_t why_len);

/* Strict number parsing shared with the CLI's other flags: 0 or -EINVAL. */
int picture_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
int picture_parse_double(const char *s, double *out); /* decimal, finite only */

/* Kernel arguments of a checked picture. */
void picture_kernel_args(const struct picture *p, struct kernel_args *a);

/* Bytes per pixel of the encoded image: 1 for gray, 3 for colour. */
unsigned picture_channels(const struct picture *p);

/* "gray", "smooth", "fire"; colour_parse accepts these and returns 0, or
 * -EINVAL for anything else. */
const char *colour_name(enum colour c);
int colour_parse(const char *s, enum colour *out);
#define COLOUR_NAMES "gray|smooth|fire"

#endif
