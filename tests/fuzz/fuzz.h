/*
 * fuzz.h - what the libFuzzer harnesses share (make fuzz): the input cut
 * into NUL-terminated pieces, and a check that aborts (a finding) when a
 * property the harness asserts does not hold.
 *
 * Owns: the pieces (fuzz_split allocates, fuzz_free frees). One thread.
 */
#ifndef MW_FUZZ_H
#define MW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_PIECES_MAX 64

struct fuzz_pieces {
	char *buf;   /* the input, NUL-terminated, separators replaced by NUL */
	size_t size; /* its length (without the final NUL) */
	char *piece[FUZZ_PIECES_MAX];
	unsigned n;
};

/* Cuts data at every byte sep (at most FUZZ_PIECES_MAX pieces; the rest is
 * the last piece). */
static inline void fuzz_split(struct fuzz_pieces *p, const uint8_t *data, size_t size, char sep)
{
	p->buf = malloc(size + 1);
	if (!p->buf)
		abort();
	memcpy(p->buf, data, size);
	p->buf[size] = '\0';
	p->size = size;
	p->n = 0;
	char *s = p->buf;
	for (;;) {
		p->piece[p->n] = s;
		char *e = p->n + 1 < FUZZ_PIECES_MAX ? memchr(s, sep, (size_t)(p->buf + size - s)) : NULL;
		p->n++;
		if (!e)
			break;
		*e = '\0';
		s = e + 1;
	}
}

static inline void fuzz_free(struct fuzz_pieces *p)
{
	free(p->buf);
}

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

#endif
