/*
 * pb.h - protobuf's wire format, by hand: varints, fixed64s and
 * length-delimited fields into a buffer, either one of the caller's
 * (fixed: what does not fit sets 'full' and is dropped) or one of its own
 * that grows (free it). A nested message is built in a buffer of its own
 * and copied in with pb_msg. For the Perfetto writer (perfetto.c) and the
 * CPU profiles (prof/pprof.c).
 *
 * Owns: a growing buffer's memory. Pure functions on the caller's struct.
 */
#ifndef MW_TRACE_PB_H
#define MW_TRACE_PB_H

#include <stddef.h>
#include <stdint.h>

struct pb {
	unsigned char *p;
	size_t n, cap;
	int full;  /* something did not fit (fixed) or memory ran out (growing) */
	int grows; /* 1: p is the pb's own, realloc'd as needed */
};

/* A buffer over the caller's bytes; pb_grow's is {.grows = 1}. */
static inline struct pb pb_fixed(void *buf, size_t cap)
{
	return (struct pb){(unsigned char *)buf, 0, cap, 0, 0};
}

void pb_put(struct pb *b, const void *d, size_t n);
void pb_varint(struct pb *b, uint64_t v);
void pb_uint(struct pb *b, unsigned field, uint64_t v);    /* wire type 0 */
void pb_fixed64(struct pb *b, unsigned field, uint64_t v); /* wire type 1 */
void pb_bytes(struct pb *b, unsigned field, const void *d, size_t n); /* wire type 2 */
void pb_str(struct pb *b, unsigned field, const char *s);
/* m's bytes as field of b; m is emptied (for the next message) and its
 * fullness passed on. */
void pb_msg(struct pb *b, unsigned field, struct pb *m);
void pb_free(struct pb *b); /* a growing one's memory */

#endif
