/*
 * cache.c - see cache.h. A chained hash table (hash_str of the key, a power
 * of two of buckets, grown at load 1) over an intrusive LRU list: the head
 * is the most recently used entry, eviction takes the tail.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "server/hash.h"

/* What a cached blob's kept response costs (the server keeps one per blob
 * once it is hit: libmicrohttpd's struct MHD_Response, its mutex and four
 * headers). Measured: 25,436 distinct 1x1 pictures, each asked twice, grew
 * the anonymous RSS by 26.8 MB, about 950 bytes an entry with its blob,
 * key and response; counted with this, 1,300. */
#define CACHE_KEPT_COST 1024

struct entry {
	struct entry *next_hash;
	struct entry *prev, *next; /* LRU list */
	uint64_t hash;
	struct blob *blob;
	size_t cost;
	char key[]; /* NUL-terminated */
};

struct cache {
	pthread_mutex_t mu;
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	struct entry *head, *tail;
	size_t capacity, bytes, entries;
	uint64_t hits, misses, evictions, inserts, bypassed;
};

int cache_create(struct cache **out, size_t capacity)
{
	struct cache *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->nbuckets = 64;
	c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	c->capacity = capacity;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void cache_destroy(struct cache *c)
{
	if (!c)
		return;
	for (struct entry *e = c->head, *n; e; e = n) {
		n = e->next;
		blob_unref(e->blob);
		free(e);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct entry **slot(struct cache *c, uint64_t hash, const char *key)
{
	struct entry **p = &c->buckets[hash & (c->nbuckets - 1)];
	while (*p && ((*p)->hash != hash || strcmp((*p)->key, key) != 0))
		p = &(*p)->next_hash;
	return p;
}

static void lru_unlink(struct cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
}

static void lru_push_front(struct cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

/* Unlinks e from both structures and frees it. */
static void drop(struct cache *c, struct entry *e)
{
	struct entry **p = slot(c, e->hash, e->key);
	*p = e->next_hash;
	lru_unlink(c, e);
	c->bytes -= e->cost;
	c->entries--;
	blob_unref(e->blob);
	free(e);
}

/* Doubles the table; on allocation failure it stays as it is (longer chains). */
static void grow(struct cache *c)
{
	size_t n = c->nbuckets * 2;
	struct entry **b = calloc(n, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		for (struct entry *e = c->buckets[i], *next; e; e = next) {
			next = e->next_hash;
			e->next_hash = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

struct blob *cache_get(struct cache *c, const char *key)
{
	uint64_t h = hash_str(key);
	struct blob *b = NULL;

	pthread_mutex_lock(&c->mu);
	struct entry *e = c->capacity ? *slot(c, h, key) : NULL;
	if (e) {
		lru_unlink(c, e);
		lru_push_front(c, e);
		b = blob_ref(e->blob);
		c->hits++;
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return b;
}

void cache_bypass(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->misses++;
	c->bypassed++;
	pthread_mutex_unlock(&c->mu);
}

void cache_put(struct cache *c, const char *key, struct blob *b)
{
	size_t klen = strlen(key);
	size_t cost = blob_footprint(b) + CACHE_KEPT_COST + klen + 1 + sizeof(struct entry);
	uint64_t h = hash_str(key);

	if (cost > c->capacity)
		return;
	struct entry *e = malloc(sizeof *e + klen + 1);
	if (!e)
		return;
	memcpy(e->key, key, klen + 1);
	e->hash = h;
	e->cost = cost;
	e->blob = blob_ref(b);

	pthread_mutex_lock(&c->mu);
	struct entry *old = *slot(c, h, key);
	if (old)
		drop(c, old);
	while (c->bytes + cost > c->capacity) {
		drop(c, c->tail);
		c->evictions++;
	}
	if (c->entries >= c->nbuckets)
		grow(c);
	struct entry **p = slot(c, h, key);
	e->next_hash = NULL;
	*p = e;
	lru_push_front(c, e);
	c->bytes += cost;
	c->entries++;
	c->inserts++;
	pthread_mutex_unlock(&c->mu);
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = (struct cache_stats){
		.hits = c->hits, .misses = c->misses, .evictions = c->evictions,
		.inserts = c->inserts, .bypassed = c->bypassed, .bytes = c->bytes, .entries = c->entries,
		.capacity = c->capacity,
	};
	pthread_mutex_unlock(&c->mu);
}
