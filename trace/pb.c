/* pb.c - see pb.h. */
#include <stdlib.h>
#include <string.h>

#include "trace/pb.h"

void pb_put(struct pb *b, const void *d, size_t n)
{
	if (b->full || n == 0)
		return;
	if (b->n + n > b->cap) {
		if (!b->grows) {
			b->full = 1;
			return;
		}
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n)
			cap *= 2;
		unsigned char *q = realloc(b->p, cap);
		if (!q) {
			b->full = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

void pb_varint(struct pb *b, uint64_t v)
{
	unsigned char c[10];
	size_t n = 0;
	do {
		c[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_put(b, c, n);
}

void pb_uint(struct pb *b, unsigned field, uint64_t v)
{
	pb_varint(b, (uint64_t)field << 3);
	pb_varint(b, v);
}

void pb_fixed64(struct pb *b, unsigned field, uint64_t v)
{
	unsigned char c[8];
	for (int i = 0; i < 8; i++)
		c[i] = (unsigned char)(v >> (8 * i));
	pb_varint(b, (uint64_t)field << 3 | 1);
	pb_put(b, c, 8);
}

void pb_bytes(struct pb *b, unsigned field, const void *d, size_t n)
{
	pb_varint(b, (uint64_t)field << 3 | 2);
	pb_varint(b, n);
	pb_put(b, d, n);
}

void pb_str(struct pb *b, unsigned field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

void pb_msg(struct pb *b, unsigned field, struct pb *m)
{
	pb_bytes(b, field, m->p, m->n);
	b->full |= m->full;
	m->n = 0;
	m->full = 0;
}

void pb_free(struct pb *b)
{
	if (b->grows)
		free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}
