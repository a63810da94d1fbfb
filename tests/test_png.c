/* test_png.c - PNG encoding: round trip through libpng's decoder for every
 * option of both encoders (libdeflate and our chunks, the default; libpng
 * and zlib), the same bytes twice, and errors returned rather than
 * aborting. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "render/pngenc.h"
#include "tests/harness.h"

static uint8_t *decode(const struct pngenc_buf *b, unsigned channels, uint32_t *w, uint32_t *h)
{
	return mw_png_decode(b->data, b->len, channels, w, h);
}

static void round_trip(unsigned channels, uint32_t w, uint32_t h, const struct pngenc_opts *o)
{
	struct image img;
	struct pngenc_buf b;
	char err[128];
	uint32_t dw, dh;

	cr_assert(eq(int, image_alloc(&img, w, h, channels), 0));
	for (size_t i = 0; i < img.stride * h; i++)
		img.px[i] = (uint8_t)(i * 7 + i / 13);
	cr_assert(eq(int, pngenc_encode(&img, o, &b, err, sizeof err), 0), "%s", err);
	cr_assert(eq(int, memcmp(b.data, "\x89PNG\r\n\x1a\n", 8), 0));
	uint8_t *px = decode(&b, channels, &dw, &dh);
	cr_assert(eq(u32, dw, w));
	cr_assert(eq(u32, dh, h));
	cr_expect(eq(int, memcmp(px, img.px, img.stride * h), 0), "%s level %d strategy %s filter %s",
		  o->zlib ? "zlib" : "libdeflate", o->level, pngenc_strategy_name(o->strategy),
		  pngenc_filter_name(o->filters));
	free(px);
	pngenc_buf_free(&b);
	image_free(&img);
}

Test(png, round_trip_every_option)
{
	static const char *const strategies[] = {"default", "filtered", "huffman", "rle", "fixed"};
	static const char *const filters[] = {"none", "sub", "up", "avg", "paeth", "all"};
	for (size_t s = 0; s < 5; s++) {
		for (size_t f = 0; f < 6; f++) {
			for (int level = 0; level <= 9; level += 3) {
				struct pngenc_opts o = {.level = level, .zlib = 1};
				cr_assert(eq(int, pngenc_parse_strategy(strategies[s], &o.strategy), 0));
				cr_assert(eq(int, pngenc_parse_filter(filters[f], &o.filters), 0));
				round_trip(1, 37, 11, &o);
				round_trip(3, 5, 9, &o);
			}
		}
	}
}

Test(png, default_options_and_1x1)
{
	struct pngenc_opts o = pngenc_defaults();
	round_trip(1, 1, 1, &o);
	round_trip(3, 1, 1, &o);
	round_trip(1, 512, 512, &o);
	cr_assert(eq(str, (char *)pngenc_strategy_name(o.strategy), "rle"));
}

Test(png, names_refused)
{
	int v;
	cr_assert(eq(int, pngenc_parse_strategy("best", &v), -EINVAL));
	cr_assert(eq(int, pngenc_parse_filter("", &v), -EINVAL));
}

Test(png, libpng_errors_are_returned)
{
	/* A zero width is invalid to libpng: png_set_IHDR reports an error,
	 * which must come back as -EINVAL with libpng's message. */
	uint8_t px[4] = {0};
	struct image img = {.w = 0, .h = 1, .channels = 1, .stride = 0, .px = px};
	struct pngenc_opts o = pngenc_defaults();
	struct pngenc_buf b;
	char err[128];

	o.zlib = 1;
	cr_assert(eq(int, pngenc_encode(&img, &o, &b, err, sizeof err), -EINVAL));
	cr_assert(eq(int, strncmp(err, "libpng: ", 8), 0), "%s", err);
	cr_assert(eq(ptr, b.data, NULL));
	/* libdeflate's path checks the same before it writes anything. */
	o.zlib = 0;
	cr_assert(eq(int, pngenc_encode(&img, &o, &b, err, sizeof err), -EINVAL));
	cr_assert(eq(int, strncmp(err, "png: invalid image", 18), 0), "%s", err);
	cr_assert(eq(ptr, b.data, NULL));
}

/* The default path: libdeflate and our own chunks, every single filter
 * and several levels, gray and RGB, odd sizes; libpng decodes each to the
 * same pixels (its CRC and zlib checks included), and the same options
 * give the same bytes twice. */
Test(png, libdeflate_round_trip_every_filter_and_level)
{
	static const char *const filters[] = {"none", "sub", "up", "avg", "paeth"};
	for (size_t f = 0; f < 5; f++) {
		for (int level = 0; level <= 12; level += 3) {
			struct pngenc_opts o = {.level = level, .zlib = 0};
			cr_assert(eq(int, pngenc_parse_filter(filters[f], &o.filters), 0));
			round_trip(1, 37, 11, &o);
			round_trip(3, 5, 9, &o);
			round_trip(1, 1, 1, &o);
		}
	}
	struct image img;
	struct pngenc_buf a, b;
	struct pngenc_opts o = pngenc_defaults();
	cr_assert(eq(int, image_alloc(&img, 300, 200, 1), 0));
	for (size_t i = 0; i < img.stride * 200; i++)
		img.px[i] = (uint8_t)(i / 300 + (i % 300 > 150));
	cr_assert(eq(int, pngenc_encode(&img, &o, &a, NULL, 0), 0));
	cr_assert(eq(int, pngenc_encode(&img, &o, &b, NULL, 0), 0));
	cr_expect(eq(sz, a.len, b.len));
	cr_expect(eq(int, memcmp(a.data, b.data, a.len), 0), "the same bytes twice");
	pngenc_buf_free(&a);
	pngenc_buf_free(&b);
	image_free(&img);
}

Test(png, encoder_names)
{
	int v = -1;
	cr_assert(eq(int, pngenc_parse_encoder("libdeflate", &v), 0));
	cr_expect(eq(int, v, 0));
	cr_assert(eq(int, pngenc_parse_encoder("zlib", &v), 0));
	cr_expect(eq(int, v, 1));
	cr_expect(eq(int, pngenc_parse_encoder("lz4", &v), -EINVAL));
	cr_expect(eq(int, pngenc_defaults().zlib, 0), "libdeflate is the default");
}
