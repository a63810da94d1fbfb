/* fuzz_png.c - the PNG options and the encoder: the first line names a
 * strategy, the second a filter, the third a level (the CLI's parsers),
 * and the bytes after them are the pixels of a small image (its size from
 * the first two of them) encoded with those options. Checks: every PNG
 * decodes with libpng to exactly the pixels given, whatever the options. */
#include <png.h>
#include <zlib.h>

#include "render/names.h"
#include "render/picture.h"
#include "render/pngenc.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pieces p;
	struct pngenc_opts o = pngenc_defaults();
	uint32_t level;

	fuzz_split(&p, data, size, '\n');
	if (p.n < 4) {
		fuzz_free(&p);
		return 0;
	}
	if (pngenc_parse_strategy(p.piece[0], &o.strategy) == 0)
		FUZZ_CHECK(pngenc_strategy_name(o.strategy) != NULL);
	if (pngenc_parse_filter(p.piece[1], &o.filters) == 0)
		FUZZ_CHECK(pngenc_filter_name(o.filters) != NULL);
	if (picture_parse_u32(p.piece[2], 0, 9, &level) == 0)
		o.level = (int)level;
	/* The pixels: all that follows the third newline, NULs included. */
	const uint8_t *px = (const uint8_t *)p.piece[3];
	size_t n = p.size - (size_t)(p.piece[3] - p.buf);
	if (n < 3) {
		fuzz_free(&p);
		return 0;
	}
	struct image img = {.w = px[0] % 17 + 1, .h = px[1] % 17 + 1, .channels = px[2] & 1 ? 3 : 1};
	img.stride = (size_t)img.w * img.channels;
	img.px = calloc(img.h, img.stride);
	FUZZ_CHECK(img.px);
	memcpy(img.px, data + (size - n) + 3, n - 3 < img.h * img.stride ? n - 3 : img.h * img.stride);
	struct pngenc_buf b = {0};
	char err[200];
	FUZZ_CHECK(pngenc_encode(&img, &o, &b, err, sizeof err) == 0);
	png_image pi = {.version = PNG_IMAGE_VERSION};
	FUZZ_CHECK(png_image_begin_read_from_memory(&pi, b.data, b.len) != 0);
	pi.format = img.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
	FUZZ_CHECK(pi.width == img.w && pi.height == img.h);
	uint8_t *back = malloc(PNG_IMAGE_SIZE(pi));
	FUZZ_CHECK(back && png_image_finish_read(&pi, NULL, back, 0, NULL) != 0);
	FUZZ_CHECK(memcmp(back, img.px, img.h * img.stride) == 0);
	free(back);
	pngenc_buf_free(&b);
	free(img.px);
	fuzz_free(&p);
	return 0;
}
