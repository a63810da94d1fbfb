/*
 * pngenc.h - an image to a PNG in memory, with libpng and zlib.
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
	int level;    /* zlib level 0..9 */
	int strategy; /* zlib strategy: Z_DEFAULT_STRATEGY, Z_FILTERED, Z_RLE, ... */
	int filters;  /* libpng PNG_FILTER_* mask (PNG_ALL_FILTERS: choose per row) */
};

/* The measured default: see docs/benchmarks.md, "PNG". */
struct pngenc_opts pngenc_defaults(void);

/* Names for the CLI and benchmarks: "default|filtered|huffman|rle|fixed"
 * and "none|sub|up|avg|paeth|all"; 0 or -EINVAL. */
int pngenc_parse_strategy(const char *s, int *out);
int pngenc_parse_filter(const char *s, int *out);
const char *pngenc_strategy_name(int strategy);
const char *pngenc_filter_name(int filters);

struct pngenc_buf {
	uint8_t *data;
	size_t len, cap;
};

/* Encodes img (1 channel: 8-bit gray, 3: 8-bit RGB). Returns 0, or -ENOMEM
 * / -EINVAL with libpng's message in err. */
int pngenc_encode(const struct image *img, const struct pngenc_opts *o,
		  struct pngenc_buf *out, char *err, size_t err_len);

void pngenc_buf_free(struct pngenc_buf *b);

#endif
