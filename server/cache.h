/*
 * cache.h - an LRU cache of encoded pictures, bounded in bytes.
 *
 * Owns: its entries (a copy of each key and one reference to each blob).
 * cache_get hands out a new reference; the caller unrefs it. An entry's
 * cost is what it holds in the process: its blob's footprint
 * (blob_footprint: the pages of a memfd, or the heap buffer), the response
 * kept with it, its key and its bookkeeping; putting past the bound evicts the
 * least recently used entries first. A blob larger than the whole bound is
 * not kept. Capacity 0 turns the cache off (get always misses).
 *
 * Thread-safety: every call may come from any thread; one mutex guards the
 * table and the list, held for a lookup or an insert, never for I/O.
 */
#ifndef MW_CACHE_H
#define MW_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "server/blob.h"

struct cache;

struct cache_stats {
	uint64_t hits, misses, evictions, inserts;
	uint64_t bypassed; /* of the misses: not looked up (cache_bypass) */
	size_t bytes, entries, capacity;
};

/* 0 or -ENOMEM; capacity in bytes. */
int cache_create(struct cache **out, size_t capacity);
void cache_destroy(struct cache *c); /* NULL is ignored */

/* A new reference to the blob under key, or NULL (a miss). */
struct blob *cache_get(struct cache *c, const char *key);

/* A picture the request wants rendered anew (query_cache_wish,
 * query_experiment): not looked up, counted as a miss and as bypassed. */
void cache_bypass(struct cache *c);

/* Keeps a reference to b under key (replacing an older entry). */
void cache_put(struct cache *c, const char *key, struct blob *b);

void cache_stats(struct cache *c, struct cache_stats *out);

#endif
