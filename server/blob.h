/*
 * blob.h - an immutable, reference-counted byte buffer: an encoded PNG that
 * the cache, a response in flight and a finished render may share.
 *
 * Owns: the bytes (and their memfd, once sealed). Whoever holds a reference calls blob_unref once; the
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
	uint8_t *data; /* malloc'd, or the mapping of fd */
	int fd;        /* -1, or a memfd holding the bytes (blob_seal) */
	/* Something made once from these bytes and kept with them (the server:
	 * a cache hit's HTTP response), set at most once with blob_keep, freed
	 * with its free function when the last reference goes. */
	_Atomic(void *) kept;
	void (*kept_free)(void *);
};

/* Takes ownership of data (malloc'd, len bytes); one reference. NULL when
 * out of memory (data is then freed). */
struct blob *blob_wrap(uint8_t *data, size_t len);
struct blob *blob_ref(struct blob *b);

/* Moves the bytes into a sealed memfd mapped read-only at b->data, so a
 * response can be sent from it with sendfile(2) (no copy into the socket)
 * and no second copy exists. Call before the blob is shared. 0, or -errno
 * (the blob is then unchanged and still usable from memory). Linux only;
 * elsewhere -ENOSYS. */
int blob_seal(struct blob *b);
void blob_unref(struct blob *b); /* NULL is ignored */

/* Keeps x (freed by fn when the blob goes) if nothing is kept yet; returns
 * what is kept then: x, or the one another thread kept first (x is then
 * the caller's to free). */
void *blob_keep(struct blob *b, void *x, void (*fn)(void *));

#endif
