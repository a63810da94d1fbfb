/* blob.c - see blob.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <fcntl.h>
#include <sys/mman.h>
#endif

#include "server/blob.h"

struct blob *blob_wrap(uint8_t *data, size_t len)
{
	struct blob *b = malloc(sizeof *b);
	if (!b) {
		free(data);
		return NULL;
	}
	atomic_init(&b->refs, 1);
	b->len = len;
	b->data = data;
	b->fd = -1;
	atomic_init(&b->kept, NULL);
	b->kept_free = NULL;
	return b;
}

struct blob *blob_ref(struct blob *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void blob_unref(struct blob *b)
{
	if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	void *kept = atomic_load_explicit(&b->kept, memory_order_acquire);
	if (kept)
		b->kept_free(kept);
#ifdef __linux__
	if (b->fd >= 0) {
		munmap(b->data, b->len);
		close(b->fd);
		free(b);
		return;
	}
#endif
	free(b->data);
	free(b);
}

void *blob_keep(struct blob *b, void *x, void (*fn)(void *))
{
	void *none = NULL;
	if (!atomic_compare_exchange_strong_explicit(&b->kept, &none, x, memory_order_acq_rel,
						     memory_order_acquire))
		return none;
	/* Only the winner writes it; the last unref reads it after every
	 * holder's release (the caller holds a reference now). */
	b->kept_free = fn;
	return x;
}

int blob_seal(struct blob *b)
{
#if defined(__linux__) && defined(MFD_ALLOW_SEALING)
	if (b->len == 0)
		return -EINVAL;
	int fd = memfd_create("mandelweb-png", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	int rc = 0;
	for (size_t off = 0; off < b->len && rc == 0;) {
		ssize_t n = write(fd, b->data + off, b->len - off);
		if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	/* Sealed: nothing can change the bytes a response is being sent from. */
	if (rc == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		rc = -errno;
	void *map = rc == 0 ? mmap(NULL, b->len, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	if (map == MAP_FAILED) {
		close(fd);
		return rc ? rc : -errno;
	}
	free(b->data);
	b->data = map;
	b->fd = fd;
	return 0;
#else
	(void)b;
	return -ENOSYS;
#endif
}
