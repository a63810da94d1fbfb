/* pngenc.c - PNG encoding into a growing memory buffer. */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "render/names.h"
#include "render/pngenc.h"

struct pngenc_opts pngenc_defaults(void)
{
	/* Chosen by `make bench` (bin/bench_render's PNG rows): see docs/benchmarks.md. */
	return (struct pngenc_opts){.level = 1, .strategy = Z_RLE, .filters = PNG_FILTER_UP};
}

static const struct name_value strategies[] = {
	{"default", Z_DEFAULT_STRATEGY}, {"filtered", Z_FILTERED}, {"huffman", Z_HUFFMAN_ONLY},
	{"rle", Z_RLE},                  {"fixed", Z_FIXED},
};
static const struct name_value filters[] = {
	{"none", PNG_FILTER_NONE}, {"sub", PNG_FILTER_SUB},     {"up", PNG_FILTER_UP},
	{"avg", PNG_FILTER_AVG},   {"paeth", PNG_FILTER_PAETH}, {"all", PNG_ALL_FILTERS},
};

int pngenc_parse_strategy(const char *s, int *out)
{
	return names_parse(strategies, NAMES_COUNT(strategies), s, out);
}

int pngenc_parse_filter(const char *s, int *out)
{
	return names_parse(filters, NAMES_COUNT(filters), s, out);
}

const char *pngenc_strategy_name(int strategy)
{
	return names_name(strategies, NAMES_COUNT(strategies), strategy);
}

const char *pngenc_filter_name(int f)
{
	return names_name(filters, NAMES_COUNT(filters), f);
}

struct sink {
	struct pngenc_buf *buf;
	char *err;
	size_t err_len;
};

static void on_error(png_structp png, png_const_charp msg)
{
	struct sink *s = png_get_error_ptr(png);

	if (s->err && s->err_len)
		snprintf(s->err, s->err_len, "libpng: %s", msg);
	png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg; /* warnings do not fail an encode; nothing to report to */
}

static void on_write(png_structp png, png_bytep data, size_t n)
{
	struct sink *s = png_get_io_ptr(png);
	struct pngenc_buf *b = s->buf;

	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 4096;
		while (n > cap - b->len)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d)
			png_error(png, "out of memory");
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
}

static void on_flush(png_structp png)
{
	(void)png;
}

int pngenc_encode(const struct image *img, const struct pngenc_opts *o,
		  struct pngenc_buf *out, char *err, size_t err_len)
{
	struct sink s = {.buf = out, .err = err, .err_len = err_len};
	png_structp png;
	png_infop info;

	*out = (struct pngenc_buf){0};
	if (err && err_len)
		err[0] = '\0';
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, on_error, on_warning);
	if (!png)
		return -ENOMEM;
	info = png_create_info_struct(png);
	if (!info) {
		png_destroy_write_struct(&png, NULL);
		return -ENOMEM;
	}
	/* Nothing below changes a local that is read after a longjmp. */
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		pngenc_buf_free(out);
		return -EINVAL;
	}
	png_set_write_fn(png, &s, on_write, on_flush);
	png_set_IHDR(png, info, img->w, img->h, 8,
		     img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_set_compression_level(png, o->level);
	png_set_compression_strategy(png, o->strategy);
	png_set_filter(png, PNG_FILTER_TYPE_BASE, o->filters);
	png_write_info(png, info);
	for (uint32_t y = 0; y < img->h; y++)
		png_write_row(png, img->px + y * img->stride);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	return 0;
}

void pngenc_buf_free(struct pngenc_buf *b)
{
	free(b->data);
	*b = (struct pngenc_buf){0};
}
