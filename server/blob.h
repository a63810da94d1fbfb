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

/* Bodies below this stay on the heap: the copy into the socket costs less
 * than a memfd (a page, an fd, a mapping) for each of them; the cache held
 * 20,000 fds and 1.1 GB for 52 MB of 1x1 pictures when every blob was
 * sealed. */
#define BLOB_SEAL_MIN (64u * 1024)

/* The most blobs sealed at once (their memfds), for the whole process: set
 * once at start from the fd limit (the server leaves the rest to
 * connections); until set, no bound. 0: none is sealed. */
void blob_set_fd_budget(unsigned n);
unsigned blob_sealed_now(void); /* memfds held now */

/* Settles a new blob before it is shared: sealed (blob_seal) when it is
 * at least BLOB_SEAL_MIN bytes and the fd budget allows, else its heap
 * buffer is trimmed to len (an encoder's buffer grows by doubling). Either
 * way the bytes are the same; 1 when sealed, 0 when on the heap. */
int blob_settle(struct blob *b);

/* What b costs the process: the bytes as held (pages of the memfd, or the
 * heap buffer) and the bookkeeping around them. For the cache's bound. */
size_t blob_footprint(const struct blob *b);

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
