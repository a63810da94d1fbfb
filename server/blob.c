/* blob.c - see blob.h. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <fcntl.h>
#include <sys/mman.h>
#endif

#include "server/blob.h"

static atomic_uint sealed, fd_budget = UINT_MAX;

void blob_set_fd_budget(unsigned n)
{
	atomic_store_explicit(&fd_budget, n, memory_order_relaxed);
}

unsigned blob_sealed_now(void)
{
	return atomic_load_explicit(&sealed, memory_order_relaxed);
}

/* Takes one of the budget's memfds: 0, or -EMFILE when none is left. */
static int take_fd(void)
{
	unsigned budget = atomic_load_explicit(&fd_budget, memory_order_relaxed);
	unsigned n = atomic_fetch_add_explicit(&sealed, 1, memory_order_relaxed);
	if (n >= budget) {
		atomic_fetch_sub_explicit(&sealed, 1, memory_order_relaxed);
		return -EMFILE;
	}
	return 0;
}

static void give_fd(void)
{
	atomic_fetch_sub_explicit(&sealed, 1, memory_order_relaxed);
}

int blob_settle(struct blob *b)
{
	if (b->fd < 0 && b->len >= BLOB_SEAL_MIN && blob_seal(b) == 0)
		return 1;
	if (b->fd < 0 && b->len) {
		uint8_t *d = realloc(b->data, b->len);
		if (d)
			b->data = d;
	}
	return b->fd >= 0;
}

/* The kernel's side of a memfd (its file, inode and mapping) and malloc's
 * per chunk, as measured: see cache.c. */
#define BLOB_FD_OVERHEAD 1024
#define BLOB_HEAP_OVERHEAD 32

size_t blob_footprint(const struct blob *b)
{
	if (b->fd >= 0) {
		size_t page = 4096;
		return sizeof *b + BLOB_FD_OVERHEAD + (b->len + page - 1) / page * page;
	}
	return sizeof *b + BLOB_HEAP_OVERHEAD + b->len;
}

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
		give_fd();
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
	if (take_fd() < 0)
		return -EMFILE;
	int fd = memfd_create("mandelweb-png", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		int e = errno;
		give_fd();
		return -e;
	}
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
		rc = rc ? rc : -errno;
		close(fd);
		give_fd();
		return rc;
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
