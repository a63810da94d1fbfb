/* pngenc.c - PNG encoding into a memory buffer: libdeflate and our own
 * chunks, or libpng and zlib (see pngenc.h). */
#include <errno.h>
#include <libdeflate.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "render/names.h"
#include "render/pngenc.h"

struct pngenc_opts pngenc_defaults(void)
{
	/* Chosen by `make bench` (bin/bench_render's PNG rows): see docs/benchmarks.md. */
	return (struct pngenc_opts){.level = 1, .strategy = Z_RLE, .filters = PNG_FILTER_UP, .zlib = 0};
}

static const struct name_value strategies[] = {
	{"default", Z_DEFAULT_STRATEGY}, {"filtered", Z_FILTERED}, {"huffman", Z_HUFFMAN_ONLY},
	{"rle", Z_RLE},                  {"fixed", Z_FIXED},
};
static const struct name_value filters[] = {
	{"none", PNG_FILTER_NONE}, {"sub", PNG_FILTER_SUB},     {"up", PNG_FILTER_UP},
	{"avg", PNG_FILTER_AVG},   {"paeth", PNG_FILTER_PAETH}, {"all", PNG_ALL_FILTERS},
};

static const struct name_value encoders[] = {{"libdeflate", 0}, {"zlib", 1}};

int pngenc_parse_encoder(const char *s, int *out)
{
	return names_parse(encoders, NAMES_COUNT(encoders), s, out);
}

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

/* ---- libdeflate and our own chunks ---- */

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A chunk at p: length, type, the data already at p + 8, CRC. Returns its
 * whole size. */
static size_t chunk(uint8_t *p, const char type[4], size_t len)
{
	be32(p, (uint32_t)len);
	memcpy(p + 4, type, 4);
	be32(p + 8 + len, (uint32_t)libdeflate_crc32(0, p + 4, len + 4));
	return len + 12;
}

static int paeth(int a, int b, int c)
{
	int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
	return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Row r (n bytes, bpp a pixel) filtered by type f against the row above
 * (NULL for the first) into out: its filter byte, then the bytes. */
static void filter_row(uint8_t *out, int f, const uint8_t *r, const uint8_t *up, size_t n, size_t bpp)
{
	*out++ = (uint8_t)f;
	if (f == 0 || (f == 2 && !up)) { /* none; up on the first row is none's bytes */
		memcpy(out, r, n);
	} else if (f == 2) { /* the default: a loop the compiler vectorizes */
		for (size_t x = 0; x < n; x++)
			out[x] = (uint8_t)(r[x] - up[x]);
	} else {
		for (size_t x = 0; x < n; x++) {
			int a = x >= bpp ? r[x - bpp] : 0, b = up ? up[x] : 0;
			int c = up && x >= bpp ? up[x - bpp] : 0;
			int pred = f == 1 ? a : f == 3 ? (a + b) / 2 : paeth(a, b, c);
			out[x] = (uint8_t)(r[x] - pred);
		}
	}
}

/* The PNG filter type of a PNG_FILTER_* mask of one filter, or -1. */
static int one_filter(int mask)
{
	static const int masks[] = {PNG_FILTER_NONE, PNG_FILTER_SUB, PNG_FILTER_UP, PNG_FILTER_AVG,
				    PNG_FILTER_PAETH};
	for (int i = 0; i < 5; i++)
		if (mask == masks[i])
			return i;
	return -1;
}

/* Each thread keeps its compressor (its tables are most of an encode's
 * set-up: 0.2 ms of the default picture's 1.8 ms), for the last level it
 * used; freed when the thread ends. */
struct kept {
	struct libdeflate_compressor *c;
	int level;
};
static pthread_key_t kept_key;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;

static void kept_free(void *p)
{
	struct kept *k = p;
	libdeflate_free_compressor(k->c);
	free(k);
}

static void kept_init(void)
{
	pthread_key_create(&kept_key, kept_free);
}

static struct libdeflate_compressor *compressor(int level)
{
	pthread_once(&kept_once, kept_init);
	struct kept *k = pthread_getspecific(kept_key);
	if (!k) {
		if (!(k = calloc(1, sizeof *k)))
			return NULL;
		k->level = -1;
		if (pthread_setspecific(kept_key, k) != 0) {
			free(k);
			return NULL;
		}
	}
	if (k->level != level) {
		libdeflate_free_compressor(k->c);
		k->c = libdeflate_alloc_compressor(level);
		k->level = k->c ? level : -1;
	}
	return k->c;
}

static int encode_deflate(const struct image *img, int level, int f, struct pngenc_buf *out,
			  char *err, size_t err_len)
{
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	if (img->w == 0 || img->h == 0 || img->w > 0x7fffffffu || img->h > 0x7fffffffu ||
	    (img->channels != 1 && img->channels != 3)) {
		if (err && err_len)
			snprintf(err, err_len, "png: invalid image %ux%u, %u channels", img->w, img->h,
				 img->channels);
		return -EINVAL;
	}
	size_t row = (size_t)img->w * img->channels, raw_len = (row + 1) * img->h;
	uint8_t *raw = malloc(raw_len);
	struct libdeflate_compressor *c = compressor(level);
	size_t bound = c ? libdeflate_zlib_compress_bound(c, raw_len) : 0;
	uint8_t *p = raw && c ? malloc(8 + 25 + 12 + bound + 12) : NULL;
	if (!p) {
		if (err && err_len)
			snprintf(err, err_len, "png: out of memory");
		free(raw);
		return -ENOMEM;
	}
	for (uint32_t y = 0; y < img->h; y++)
		filter_row(raw + y * (row + 1), f, img->px + y * img->stride,
			   y ? img->px + (y - 1) * img->stride : NULL, row, img->channels);
	size_t n = 0;
	memcpy(p, sig, 8);
	n += 8;
	uint8_t *ihdr = p + n + 8;
	be32(ihdr, img->w);
	be32(ihdr + 4, img->h);
	ihdr[8] = 8;                          /* bit depth */
	ihdr[9] = img->channels == 1 ? 0 : 2; /* gray, RGB */
	ihdr[10] = ihdr[11] = ihdr[12] = 0;   /* deflate, adaptive filtering, no interlace */
	n += chunk(p + n, "IHDR", 13);
	size_t z = libdeflate_zlib_compress(c, raw, raw_len, p + n + 8, bound);
	n += chunk(p + n, "IDAT", z);
	n += chunk(p + n, "IEND", 0);
	free(raw);
	if (z == 0) { /* cannot happen within the bound */
		free(p);
		if (err && err_len)
			snprintf(err, err_len, "png: libdeflate failed");
		return -EINVAL;
	}
	*out = (struct pngenc_buf){p, n, 8 + 25 + 12 + bound + 12};
	return 0;
}

/* ---- libpng and zlib ---- */

static int encode_libpng(const struct image *img, const struct pngenc_opts *o,
			 struct pngenc_buf *out, char *err, size_t err_len);

int pngenc_encode(const struct image *img, const struct pngenc_opts *o,
		  struct pngenc_buf *out, char *err, size_t err_len)
{
	*out = (struct pngenc_buf){0};
	if (err && err_len)
		err[0] = '\0';
	int f = one_filter(o->filters);
	if (!o->zlib && f >= 0 && o->level >= 0 && o->level <= 12)
		return encode_deflate(img, o->level, f, out, err, err_len);
	return encode_libpng(img, o, out, err, err_len);
}

static int encode_libpng(const struct image *img, const struct pngenc_opts *o,
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
