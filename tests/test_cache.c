/* test_cache.c - the LRU picture cache: bounds in bytes, recency, replace,
 * references that outlive eviction, capacity 0, what an entry costs; blobs:
 * settled on the heap or sealed, within the fd budget. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"

static struct blob *make(size_t len, int fill)
{
	uint8_t *d = malloc(len);
	memset(d, fill, len);
	return blob_wrap(d, len);
}

Test(cache, evicts_least_recently_used_within_bytes)
{
	struct cache *c;
	struct cache_stats st;
	cr_assert(eq(int, cache_create(&c, 350000), 0));
	for (int i = 0; i < 3; i++) {
		char key[8];
		snprintf(key, sizeof key, "k%d", i);
		struct blob *b = make(100000, i);
		cache_put(c, key, b);
		blob_unref(b);
	}
	struct blob *b = cache_get(c, "k0"); /* k0 is now the most recent */
	cr_assert(not(eq(ptr, b, NULL)));
	cr_assert(eq(u8, b->data[0], 0));
	blob_unref(b);
	b = make(100000, 9);
	cache_put(c, "k3", b); /* past 350000 bytes: k1 goes */
	blob_unref(b);
	cr_assert(eq(ptr, cache_get(c, "k1"), NULL));
	for (const char *const *k = (const char *const[]){"k0", "k2", "k3", NULL}; *k; k++) {
		b = cache_get(c, *k);
		cr_expect(not(eq(ptr, b, NULL)), "%s", *k);
		blob_unref(b);
	}
	cache_stats(c, &st);
	cr_assert(eq(u64, st.evictions, 1));
	cr_assert(eq(sz, st.entries, 3));
	cr_assert(le(sz, st.bytes, 350000));
	cr_assert(eq(u64, st.misses, 1));
	cache_destroy(c);
}

Test(cache, replace_and_references_outlive_eviction)
{
	struct cache *c;
	cr_assert(eq(int, cache_create(&c, 150000), 0));
	struct blob *a = make(100000, 1), *b = make(100000, 2);
	cache_put(c, "k", a);
	struct blob *held = cache_get(c, "k");
	cache_put(c, "k", b); /* replaces; 'held' stays valid */
	cr_assert(eq(u8, held->data[99999], 1));
	struct blob *now = cache_get(c, "k");
	cr_assert(eq(u8, now->data[0], 2));
	blob_unref(now);
	blob_unref(held);
	blob_unref(a);
	blob_unref(b);
	struct blob *big = make(200000, 3); /* larger than the cache: not kept */
	cache_put(c, "big", big);
	blob_unref(big);
	cr_assert(eq(ptr, cache_get(c, "big"), NULL));
	cache_destroy(c);
}

Test(cache, capacity_zero_is_off)
{
	struct cache *c;
	struct cache_stats st;
	cr_assert(eq(int, cache_create(&c, 0), 0));
	struct blob *b = make(10, 1);
	cache_put(c, "k", b);
	blob_unref(b);
	cr_assert(eq(ptr, cache_get(c, "k"), NULL));
	cache_stats(c, &st);
	cr_assert(eq(sz, st.entries, 0));
	cache_destroy(c);
}

Test(cache, many_keys_grow_the_table)
{
	struct cache *c;
	cr_assert(eq(int, cache_create(&c, 4 << 20), 0));
	for (int i = 0; i < 1000; i++) {
		char key[16];
		snprintf(key, sizeof key, "key-%d", i);
		struct blob *b = make(16, i & 0xff);
		cache_put(c, key, b);
		blob_unref(b);
	}
	for (int i = 0; i < 1000; i++) {
		char key[16];
		snprintf(key, sizeof key, "key-%d", i);
		struct blob *b = cache_get(c, key);
		cr_assert(not(eq(ptr, b, NULL)), "%s", key);
		cr_assert(eq(u8, b->data[0], (uint8_t)(i & 0xff)));
		blob_unref(b);
	}
	cache_destroy(c);
}

/* 1-byte pictures cost what they hold, not one byte: a 1 MiB cache keeps
 * under a thousand of them (it kept a million, holding 1.1 GB and 20,000
 * fds, when cost was the PNG's length). */
Test(cache, tiny_blobs_cost_what_they_hold)
{
	struct cache *c;
	struct cache_stats st;
	cr_assert(eq(int, cache_create(&c, 1 << 20), 0));
	for (int i = 0; i < 5000; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%d", i);
		struct blob *b = make(1, i);
		blob_settle(b);
		cache_put(c, key, b);
		blob_unref(b);
	}
	cache_stats(c, &st);
	cr_assert(lt(sz, st.entries, 1000));
	cr_assert(lt(sz, 500, st.entries));
	cr_assert(le(sz, st.bytes, (size_t)1 << 20));
	cache_destroy(c);
}

Test(blob, settle_seals_big_ones_within_the_fd_budget)
{
	struct blob *small = make(100, 1), *big = make(BLOB_SEAL_MIN, 2), *big2 = make(BLOB_SEAL_MIN, 3);
	unsigned before = blob_sealed_now();
	cr_assert(eq(int, blob_settle(small), 0));
	cr_assert(eq(int, small->fd, -1));
	blob_set_fd_budget(before + 1);
	cr_assert(eq(int, blob_settle(big), 1));
	cr_assert(ge(int, big->fd, 0));
	cr_assert(eq(u32, blob_sealed_now(), before + 1));
	cr_assert(eq(int, blob_settle(big2), 0)); /* the budget is spent: on the heap */
	cr_assert(eq(int, big2->fd, -1));
	cr_assert(eq(u8, big->data[BLOB_SEAL_MIN - 1], 2));
	cr_assert(eq(u8, big2->data[BLOB_SEAL_MIN - 1], 3));
	cr_assert(lt(sz, BLOB_SEAL_MIN, blob_footprint(big)));
	blob_unref(big);
	cr_assert(eq(u32, blob_sealed_now(), before));
	blob_unref(big2);
	blob_unref(small);
	blob_set_fd_budget(UINT_MAX);
}
