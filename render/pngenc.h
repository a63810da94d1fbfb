/*
 * pngenc.h - an image to a PNG in memory: by default our own writer of
 * the few chunks a picture needs (IHDR, one IDAT, IEND) around a zlib
 * stream from libdeflate, which compresses the filtered rows in one call,
 * about twice as fast as zlib at a smaller size (docs/benchmarks.md,
 * PNG); or, on request (a zlib strategy, or per-row filter choice), with
 * libpng and zlib. The bytes are deterministic for a build and its
 * options; the pixels are the same whichever way.
 *
 * Owns: the output buffer (the caller frees it with pngenc_buf_free, or
 * takes 'data' and frees it with free()). Prefix pngenc_, not png_: libpng
 * owns the png_ namespace.
 * libpng errors are caught (setjmp in pngenc_encode) and returned, never
 * abort the process.
 * Thread-safety: reentrant; each call has its own libpng state.
 */
#ifndef MW_PNGENC_H
#define MW_PNGENC_H

#include <stddef.h>
#include <stdint.h>

#include "render/render.h"

struct pngenc_opts {
	int level;    /* compression level 0..9 (libdeflate's or zlib's) */
	int strategy; /* zlib strategy: Z_DEFAULT_STRATEGY, Z_FILTERED, Z_RLE, ... */
	int filters;  /* libpng PNG_FILTER_* mask (PNG_ALL_FILTERS: choose per row) */
	int zlib;     /* 1: libpng and zlib; 0: libdeflate, where filters is one filter */
};

/* The measured default: see docs/benchmarks.md, "PNG". */
struct pngenc_opts pngenc_defaults(void);

/* Names for the CLI and benchmarks: "default|filtered|huffman|rle|fixed",
 * "none|sub|up|avg|paeth|all" and "libdeflate|zlib" (out: the zlib field);
 * 0 or -EINVAL. */
int pngenc_parse_strategy(const char *s, int *out);
int pngenc_parse_filter(const char *s, int *out);
int pngenc_parse_encoder(const char *s, int *out);
const char *pngenc_strategy_name(int strategy);
const char *pngenc_filter_name(int filters);

struct pngenc_buf {
	uint8_t *data;
	size_t len, cap;
};

/* Encodes img (1 channel: 8-bit gray, 3: 8-bit RGB). Returns 0, or -ENOMEM
 * / -EINVAL with the reason (libpng's message, on that path) in err. */
int pngenc_encode(const struct image *img, const struct pngenc_opts *o,
		  struct pngenc_buf *out, char *err, size_t err_len);

void pngenc_buf_free(struct pngenc_buf *b);

#endif
