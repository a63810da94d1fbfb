/*
 * flight.c - see flight.h. The table is a list: it holds the pictures in
 * flight, which admission bounds (--max-inflight), and a lookup is a few
 * string compares under the lock, next to a render of milliseconds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight.h"

struct flight {
	struct flight *next;
	struct flight_waiter *head, **tail;
	char key[QUERY_KEY_MAX];
};

struct flights {
	pthread_mutex_t lock;
	struct flight *list;
	uint64_t shared;
};

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

int flight_join(struct flights *f, const char *key, struct flight_waiter *w)
{
	int rc = 0;

	w->next = NULL;
	pthread_mutex_lock(&f->lock);
	struct flight *fl = f->list;
	while (fl && strcmp(fl->key, key) != 0)
		fl = fl->next;
	if (fl) {
		*fl->tail = w;
		fl->tail = &w->next;
		f->shared++;
		rc = 1;
	} else if ((fl = malloc(sizeof *fl))) {
		fl->head = NULL;
		fl->tail = &fl->head;
		strcpy(fl->key, key);
		fl->next = f->list;
		f->list = fl;
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

struct flight_waiter *flight_finish(struct flights *f, const char *key)
{
	struct flight_waiter *w = NULL;

	pthread_mutex_lock(&f->lock);
	for (struct flight **p = &f->list; *p; p = &(*p)->next) {
		if (strcmp((*p)->key, key) == 0) {
			struct flight *fl = *p;
			*p = fl->next;
			w = fl->head;
			free(fl);
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return w;
}

uint64_t flights_shared(struct flights *f)
{
	pthread_mutex_lock(&f->lock);
	uint64_t n = f->shared;
	pthread_mutex_unlock(&f->lock);
	return n;
}
