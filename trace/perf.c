/* perf.c - a perf_event_open event and its ring (see perf.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trace/perf.h"

void perf_why(char *why, size_t len, const char *call, int err)
{
	char paranoid[16] = "?";
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
	if (f) {
		if (!fgets(paranoid, sizeof paranoid, f))
			paranoid[0] = 0;
		paranoid[strcspn(paranoid, "\n")] = 0;
		fclose(f);
	}
	snprintf(why, len, "%s: %s (kernel.perf_event_paranoid = %s)", call, strerror(err),
		 paranoid);
}

#ifdef __linux__
#include <sys/mman.h>
#include <sys/syscall.h>

int perf_ring_open(struct perf_ring *r, struct perf_event_attr *a, int tid, int max_pages,
		   const char **call)
{
	long page = sysconf(_SC_PAGESIZE);
	*call = "perf_event_open";
	int fd = (int)syscall(SYS_perf_event_open, a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return errno;
	void *map = MAP_FAILED;
	size_t bytes = 0;
	for (int pages = max_pages; pages >= 1 && map == MAP_FAILED; pages /= 2) {
		bytes = (size_t)(1 + pages) * (size_t)page;
		map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	}
	if (map == MAP_FAILED) {
		int err = errno;
		*call = "mmap of the perf ring";
		close(fd);
		return err;
	}
	struct perf_event_mmap_page *pg = map;
	r->fd = fd;
	r->map = map;
	r->map_bytes = bytes;
	r->data = (unsigned char *)map + (pg->data_offset ? pg->data_offset : (uint64_t)page);
	r->size = pg->data_size ? pg->data_size : (uint64_t)(bytes - (size_t)page);
	return 0;
}

void perf_ring_close(struct perf_ring *r)
{
	if (!r->map)
		return;
	munmap(r->map, r->map_bytes);
	close(r->fd);
	r->map = NULL;
	r->fd = -1;
}

/* A copy of n bytes at offset 'at' of the ring (it may wrap). */
static void ring_copy(const struct perf_ring *r, uint64_t at, void *dst, size_t n)
{
	uint64_t off = at & (r->size - 1), first = r->size - off;
	if (first >= n) {
		memcpy(dst, r->data + off, n);
	} else {
		memcpy(dst, r->data + off, first);
		memcpy((char *)dst + first, r->data, n - first);
	}
}

void perf_ring_drain(struct perf_ring *r, perf_record_fn *fn, void *ctx, void *scratch,
		     size_t cap)
{
	struct perf_event_mmap_page *pg = r->map;
	if (!pg)
		return;
	/* The kernel's protocol: read data_head, then a read barrier before
	 * the data; a full barrier before data_tail gives the space back. */
	uint64_t head = *(volatile __u64 *)&pg->data_head;
	atomic_thread_fence(memory_order_acquire);
	uint64_t tail = pg->data_tail;
	struct perf_event_header *h = scratch;
	while (tail < head) {
		ring_copy(r, tail, h, sizeof *h);
		if (h->size < sizeof *h)
			break; /* cannot happen; do not spin on it */
		size_t n = h->size < cap ? h->size : cap;
		ring_copy(r, tail, h, n);
		tail += h->size;
		fn(ctx, h, n);
	}
	atomic_thread_fence(memory_order_seq_cst);
	*(volatile __u64 *)&pg->data_tail = tail;
}

#else /* not Linux */

int perf_ring_open(struct perf_ring *r, struct perf_event_attr *a, int tid, int max_pages,
		   const char **call)
{
	(void)r, (void)a, (void)tid, (void)max_pages;
	*call = "perf_event_open (Linux's)";
	return ENOSYS;
}

void perf_ring_close(struct perf_ring *r) { (void)r; }

void perf_ring_drain(struct perf_ring *r, perf_record_fn *fn, void *ctx, void *scratch,
		     size_t cap)
{
	(void)r, (void)fn, (void)ctx, (void)scratch, (void)cap;
}
#endif
