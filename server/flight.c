/*
 * flight.c - see flight.h. The table is a list: it holds the pictures in
 * flight, which admission bounds (--max-inflight), and a lookup compares
 * each one's 64-bit hash of its key (a string compare only on a match)
 * under the lock: well under a microsecond for a hundred flights, which
 * matters because flight_pending runs before every refusal.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight.h"
#include "server/hash.h"

struct flight {
	struct flight *next;
	struct flight_waiter *head, **tail;
	atomic_int *cancel; /* the leader's render's */
	int listed;         /* in the table (not yet finished or abandoned) */
	int leader_gone;
	uint64_t hash; /* of key: most lookups compare this alone */
	char key[QUERY_KEY_MAX];
};

struct flights {
	pthread_mutex_t lock;
	struct flight *list;
	uint64_t shared, abandoned;
};

static void unlist(struct flights *f, struct flight *fl)
{
	for (struct flight **p = &f->list; *p; p = &(*p)->next) {
		if (*p == fl) {
			*p = fl->next;
			break;
		}
	}
	fl->listed = 0;
}

/* Nobody waits for fl any more: its render is cancelled. Under the lock. */
static void abandon(struct flights *f, struct flight *fl)
{
	if (fl->listed)
		unlist(f, fl);
	f->abandoned++;
	if (fl->cancel)
		atomic_store_explicit(fl->cancel, 1, memory_order_relaxed);
}

int flights_create(struct flights **out)
{
	struct flights *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	*out = f;
	return 0;
}

void flights_destroy(struct flights *f)
{
	if (!f)
		return;
	while (f->list) {
		struct flight *n = f->list->next;
		free(f->list);
		f->list = n;
	}
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static struct flight *find(struct flights *f, const char *key, uint64_t h)
{
	struct flight *fl = f->list;
	while (fl && (fl->hash != h || strcmp(fl->key, key) != 0))
		fl = fl->next;
	return fl;
}

int flight_pending(struct flights *f, const char *key)
{
	uint64_t h = hash_str(key);
	pthread_mutex_lock(&f->lock);
	int found = find(f, key, h) != NULL;
	pthread_mutex_unlock(&f->lock);
	return found;
}

int flight_join(struct flights *f, const char *key, struct flight_waiter *w, atomic_int *cancel)
{
	int rc = 0;

	w->next = NULL;
	w->fl = NULL;
	uint64_t h = hash_str(key);
	pthread_mutex_lock(&f->lock);
	struct flight *fl = find(f, key, h);
	if (fl) {
		*fl->tail = w;
		fl->tail = &w->next;
		w->fl = fl;
		f->shared++;
		rc = 1;
	} else if ((fl = malloc(sizeof *fl))) {
		fl->head = NULL;
		fl->tail = &fl->head;
		fl->cancel = cancel;
		fl->listed = 1;
		fl->leader_gone = 0;
		fl->hash = h;
		strcpy(fl->key, key);
		fl->next = f->list;
		f->list = fl;
		w->fl = fl;
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

struct flight_waiter *flight_finish(struct flights *f, struct flight_waiter *leader)
{
	struct flight_waiter *w = NULL;

	pthread_mutex_lock(&f->lock);
	struct flight *fl = leader->fl;
	if (fl) {
		if (fl->listed)
			unlist(f, fl);
		w = fl->head;
		for (struct flight_waiter *x = w; x; x = x->next)
			x->fl = NULL; /* answered by the caller now: flight_leave says 0 */
		leader->fl = NULL;
		free(fl);
	}
	pthread_mutex_unlock(&f->lock);
	return w;
}

void flight_leader_gone(struct flights *f, struct flight_waiter *leader)
{
	pthread_mutex_lock(&f->lock);
	struct flight *fl = leader->fl;
	if (fl) {
		fl->leader_gone = 1;
		if (!fl->head)
			abandon(f, fl);
	}
	pthread_mutex_unlock(&f->lock);
}

int flight_leave(struct flights *f, struct flight_waiter *w)
{
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	struct flight *fl = w->fl;
	if (fl) {
		struct flight_waiter **p = &fl->head;
		while (*p && *p != w)
			p = &(*p)->next;
		if (*p) {
			*p = w->next;
			if (fl->tail == &w->next)
				fl->tail = p;
			rc = 1;
		}
		w->fl = NULL;
		if (fl->leader_gone && !fl->head)
			abandon(f, fl);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

uint64_t flights_abandoned(struct flights *f)
{
	pthread_mutex_lock(&f->lock);
	uint64_t n = f->abandoned;
	pthread_mutex_unlock(&f->lock);
	return n;
}

uint64_t flights_shared(struct flights *f)
{
	pthread_mutex_lock(&f->lock);
	uint64_t n = f->shared;
	pthread_mutex_unlock(&f->lock);
	return n;
}
