/*
 * blob.h - an immutable, reference-counted byte buffer: an encoded PNG that
 * the cache, a response in flight and a finished render may share.
 *
 * Owns: the bytes. Whoever holds a reference calls blob_unref once; the
 * last one frees. Thread-safety: ref/unref from any thread (atomic count;
 * the release/acquire pair orders the last user's reads before the free).
 */
#ifndef MW_BLOB_H
#define MW_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct blob {
	atomic_uint refs;
	size_t len;
	uint8_t *data; /* malloc'd, owned */
};

/* Takes ownership of data (malloc'd, len bytes); one reference. NULL when
 * out of memory (data is then freed). */
struct blob *blob_wrap(uint8_t *data, size_t len);
struct blob *blob_ref(struct blob *b);
void blob_unref(struct blob *b); /* NULL is ignored */

#endif
