/*
 * admission.c - see admission.h.
 *
 * The rate is measured between events (an admission that starts a busy
 * period, each done): over dt seconds of busy time, done pictures worth u
 * pixel-iterations. Samples are folded in as
 *     rate += (1 - exp(-dt / tau)) * (u / dt - rate)
 * when a picture is done, with dt and u accumulated since the previous
 * done (so an admission between two dones splits nothing). A short dt
 * moves the rate little, a long one nearly all the way: the weight is the
 * time the sample covers, not the count of samples.
 *
 * Costs: admit walks the clients holding pictures, and for each the
 * waiting pictures whose start tags are not after the new one's (for the
 * flooder's own admissions, the others' few; for a newcomer's, the ties
 * at the virtual time); a refusal for the wait sorts the holdings of the
 * clients holding pictures (water-filling); next walks the holders once.
 * All of it is bounded by max_pictures and usually a handful.
 *
 * Virtual time is rebased to 0 whenever nothing is admitted (every record
 * is then forgotten), so tags stay small numbers.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/admission.h"

enum { T_RESERVED = 1, T_QUEUED, T_RUNNING, T_ENCODING };

struct admission_client {
	struct cidr_addr key;
	uint32_t chain;    /* the next record's index + 1 in its hash bucket; 0 ends it */
	int used, holds;   /* hashed; in the holding list (else in the idle one) */
	struct admission_client *prev, *next; /* in the holding, idle or free list */
	double finish;     /* finish tag of its last admitted picture */
	double queued;     /* charge of its waiting pictures */
	double running;    /* charge handed to the pool, not done */
	unsigned pictures; /* admitted, not done */
	uint64_t bytes;
	double retry_at;   /* when its last refusal said it may ask again */
	struct admission_ticket *head, *tail; /* waiting, oldest first */
};

struct list {
	struct admission_client *head, *tail;
	unsigned n;
};

struct admission {
	pthread_mutex_t lock;
	struct admission_cfg cfg;
	double backlog, rate;
	double mark;   /* start of the busy time not yet measured */
	double busy_u; /* pixel-iterations done since mark */
	unsigned pictures, waiting, running;
	uint64_t bytes;
	double running_cost;    /* charge handed to the pool, not done */
	double vtime;
	uint64_t seq, seed;
	struct admission_client *slot;
	unsigned nslots;
	uint32_t *bucket; /* index + 1 of the first record; 0: empty */
	uint32_t mask;
	struct list holding, idle, spare; /* idle: least recently used first */
	double *scratch;  /* a holding per client, for water-filling */
};

static void list_add(struct list *l, struct admission_client *c)
{
	c->prev = l->tail;
	c->next = NULL;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	l->n++;
}

static void list_del(struct list *l, struct admission_client *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	l->n--;
}

static uint32_t hash(const struct admission *a, const struct cidr_addr *k)
{
	uint64_t x, y;
	memcpy(&x, k->b, 8);
	memcpy(&y, k->b + 8, 8);
	uint64_t h = (x ^ a->seed) * 0x9e3779b97f4a7c15u;
	h ^= h >> 29;
	h = (h + y) * 0xbf58476d1ce4e5b9u;
	h ^= h >> 32;
	return (uint32_t)h & a->mask;
}

static struct admission_client *lookup(struct admission *a, const struct cidr_addr *k)
{
	for (uint32_t i = a->bucket[hash(a, k)]; i; i = a->slot[i - 1].chain)
		if (memcmp(&a->slot[i - 1].key, k, sizeof *k) == 0)
			return &a->slot[i - 1];
	return NULL;
}

/* An idle record is forgotten: unhashed, spare. */
static void forget(struct admission *a, struct admission_client *c)
{
	uint32_t *p = &a->bucket[hash(a, &c->key)], me = (uint32_t)(c - a->slot) + 1;
	while (*p != me)
		p = &a->slot[*p - 1].chain;
	*p = c->chain;
	list_del(&a->idle, c);
	memset(c, 0, sizeof *c);
	list_add(&a->spare, c);
}

/* A record for key: a spare one, else an idle one whose tag no longer
 * matters, else the idle one unused longest. There always is one: at most
 * max_pictures - 1 records hold pictures when a new one is needed. */
static struct admission_client *record(struct admission *a, const struct cidr_addr *k)
{
	if (!a->spare.head) {
		for (struct admission_client *c = a->idle.head, *n; c; c = n) {
			n = c->next;
			if (c->finish <= a->vtime)
				forget(a, c);
		}
		if (!a->spare.head && a->idle.head)
			forget(a, a->idle.head);
	}
	struct admission_client *c = a->spare.head;
	if (!c)
		return NULL;
	list_del(&a->spare, c);
	c->key = *k;
	c->used = 1;
	uint32_t b = hash(a, k);
	c->chain = a->bucket[b];
	a->bucket[b] = (uint32_t)(c - a->slot) + 1;
	c->finish = a->vtime;
	list_add(&a->idle, c);
	return c;
}

static void hold(struct admission *a, struct admission_client *c)
{
	if (!c->holds) {
		list_del(&a->idle, c);
		list_add(&a->holding, c);
		c->holds = 1;
	}
}

static uint64_t seed(void)
{
	uint64_t s;
	if (getrandom(&s, sizeof s, GRND_NONBLOCK) == (ssize_t)sizeof s)
		return s;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_nsec * 0x2545f4914f6cdd1du ^ (uint64_t)(uintptr_t)&t;
}

int admission_create(struct admission **out, const struct admission_cfg *c)
{
	struct admission *a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	a->cfg = *c;
	if (!a->cfg.running_max)
		a->cfg.running_max = 1;
	a->nslots = c->max_pictures + ADMISSION_IDLE_MAX;
	uint32_t buckets = 64;
	while (buckets < 2 * a->nslots)
		buckets *= 2;
	a->mask = buckets - 1;
	a->slot = calloc(a->nslots, sizeof *a->slot);
	a->bucket = calloc(buckets, sizeof *a->bucket);
	a->scratch = calloc(a->nslots + 1, sizeof *a->scratch);
	if (!a->slot || !a->bucket || !a->scratch) {
		admission_destroy(a);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < a->nslots; i++)
		list_add(&a->spare, &a->slot[i]);
	pthread_mutex_init(&a->lock, NULL);
	a->rate = c->rate0 > 0 ? c->rate0 : 1e9;
	a->seed = seed();
	*out = a;
	return 0;
}

void admission_destroy(struct admission *a)
{
	if (!a)
		return;
	if (a->slot)
		pthread_mutex_destroy(&a->lock);
	free(a->scratch);
	free(a->bucket);
	free(a->slot);
	free(a);
}

static unsigned seconds_up(double s)
{
	if (!(s < 86400))
		return 86400;
	unsigned r = (unsigned)ceil(s);
	return r ? r : 1;
}

/* The work ahead of a new picture of client c (NULL: a new client) that
 * would start at tag start: everything handed to the pool, c's own
 * waiting pictures, and each other client's waiting pictures that start
 * no later (ties go first: they came first). */
static double ahead_of(const struct admission *a, const struct admission_client *c, double start)
{
	double ahead = a->running_cost + (c ? c->queued : 0);
	for (const struct admission_client *j = a->holding.head; j; j = j->next) {
		if (j == c)
			continue;
		for (const struct admission_ticket *t = j->head; t && t->start <= start; t = t->next)
			ahead += t->cost;
	}
	return ahead;
}

static double start_tag(const struct admission *a, const struct admission_client *c)
{
	return c && c->finish > a->vtime ? c->finish : a->vtime;
}

static int by_value(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;
	return (p > q) - (p < q);
}

/* The max-min fair share of budget among the clients holding pictures,
 * with c's holding raised by extra (c may hold none yet): the water level
 * at which every holding is min(holding, level) and they sum to budget;
 * INFINITY when the holdings fit whole. */
static double water_level(struct admission *a, const struct admission_client *c, double extra,
			  double budget)
{
	unsigned n = 0;
	for (const struct admission_client *j = a->holding.head; j; j = j->next)
		a->scratch[n++] = j->queued + j->running + (j == c ? extra : 0);
	if (!c || !c->holds)
		a->scratch[n++] = extra;
	qsort(a->scratch, n, sizeof *a->scratch, by_value);
	double left = budget;
	for (unsigned i = 0; i < n; i++) {
		double equal = left / (n - i);
		if (a->scratch[i] > equal)
			return equal;
		left -= a->scratch[i];
	}
	return INFINITY;
}

/* A client's dominant share of the count and memory bounds, with extra
 * pictures and bytes. */
static double dominant(const struct admission *a, const struct admission_client *c,
		       unsigned pictures, uint64_t bytes)
{
	double p = ((c ? c->pictures : 0) + pictures) / (double)a->cfg.max_pictures;
	double b = a->cfg.max_bytes ? ((c ? c->bytes : 0) + bytes) / (double)a->cfg.max_bytes : 0;
	return p > b ? p : b;
}

/* Unlinks a waiting ticket from its client's list. */
static void unwait(struct admission *a, struct admission_ticket *t)
{
	struct admission_client *c = t->client;
	if (t->prev)
		t->prev->next = t->next;
	else
		c->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		c->tail = t->prev;
	/* The newest goes back on its tag: the next one starts where it did. */
	if (!t->next && c->finish == t->start + t->cost)
		c->finish = t->start;
	c->queued -= t->cost;
	a->waiting--;
	t->prev = t->next = NULL;
}

/* A ticket's cost and memory leave; its client may go idle, and with
 * nothing admitted everything is forgotten. */
static void release(struct admission *a, struct admission_ticket *t)
{
	struct admission_client *c = t->client;
	a->backlog -= t->cost;
	a->bytes -= t->bytes;
	c->bytes -= t->bytes;
	if (--c->pictures == 0) {
		c->queued = c->running = 0; /* no rounding left behind */
		list_del(&a->holding, c);
		c->holds = 0;
		list_add(&a->idle, c);
		if (c->finish <= a->vtime)
			forget(a, c);
	}
	if (--a->pictures == 0) {
		a->backlog = 0;
		a->running_cost = 0;
		while (a->idle.head)
			forget(a, a->idle.head);
		a->vtime = 0;
	}
	t->client = NULL;
	t->state = 0;
}

/* The newest waiting (not reserved) ticket of c, or NULL. */
static struct admission_ticket *newest_waiting(struct admission_client *c)
{
	struct admission_ticket *t = c->tail;
	while (t && t->state != T_QUEUED)
		t = t->prev;
	return t;
}

/* The newest waiting picture of the client (other than c) holding the
 * largest dominant share, if that share is larger than c's would be with
 * the new picture (bytes), or NULL. */
static struct admission_ticket *victim_of(struct admission *a, const struct admission_client *c,
					  uint64_t bytes)
{
	double most = dominant(a, c, 1, bytes);
	struct admission_ticket *victim = NULL;
	for (struct admission_client *j = a->holding.head; j; j = j->next) {
		double d = dominant(a, j, 0, 0);
		struct admission_ticket *t;
		if (j != c && d > most && (t = newest_waiting(j))) {
			most = d;
			victim = t;
		}
	}
	return victim;
}

/* Takes t (waiting) out, to be answered over share with its client's own
 * predicted wait. */
static void push_out(struct admission *a, struct admission_ticket *t)
{
	struct admission_client *victim = t->client;
	unwait(a, t);
	t->verdict = ADMIT_OVER_SHARE;
	t->wait = ahead_of(a, victim, start_tag(a, victim)) / a->rate;
	t->retry = seconds_up(t->wait);
	release(a, t);
	t->next = NULL;
}

/* Whether c holds at least as much of count and memory as any other
 * client holding pictures, and is not alone. */
static int holds_most(const struct admission *a, const struct admission_client *c)
{
	if (!c || !c->holds || a->holding.n < 2)
		return 0;
	double mine = dominant(a, c, 0, 0);
	for (const struct admission_client *j = a->holding.head; j; j = j->next)
		if (j != c && dominant(a, j, 0, 0) > mine)
			return 0;
	return 1;
}

enum admission_verdict admission_admit(struct admission *a, const struct cidr_addr *key, double cost,
				       uint64_t bytes, double now, struct admission_ticket *t,
				       struct admission_ticket **pushed)
{
	enum admission_verdict v = ADMIT_OK;

	*pushed = NULL;
	memset(t, 0, sizeof *t);
	t->cost = cost;
	t->bytes = bytes;
	pthread_mutex_lock(&a->lock);
	struct admission_client *c = lookup(a, key);
	double start = start_tag(a, c), budget = a->cfg.max_wait * a->rate;
	double ahead = ahead_of(a, c, start);
	t->wait = (ahead + cost) / a->rate;
	if (cost / a->rate > a->cfg.max_wait || bytes > a->cfg.max_bytes) {
		v = ADMIT_TOO_BIG;
	} else if (t->wait > a->cfg.max_wait) {
		int alone = !a->holding.head || (a->holding.n == 1 && c && c->holds);
		v = !alone && (c ? c->queued + c->running : 0) + cost > water_level(a, c, cost, budget)
			    ? ADMIT_OVER_SHARE
			    : ADMIT_BUSY;
	} else if (a->pictures + 1 > a->cfg.max_pictures || a->bytes + bytes > a->cfg.max_bytes) {
		/* One picture pushed out, and only when that makes room. */
		struct admission_ticket *out = victim_of(a, c, bytes);
		if (out && a->pictures <= a->cfg.max_pictures &&
		    a->bytes - out->bytes + bytes <= a->cfg.max_bytes) {
			push_out(a, out);
			*pushed = out;
			c = lookup(a, key); /* its record may have been forgotten meanwhile */
			start = start_tag(a, c);
			ahead = ahead_of(a, c, start);
			t->wait = (ahead + cost) / a->rate;
		} else if (a->pictures + 1 > a->cfg.max_pictures) {
			v = holds_most(a, c) ? ADMIT_OVER_SHARE : ADMIT_COUNT;
		} else {
			v = holds_most(a, c) ? ADMIT_OVER_SHARE : ADMIT_MEMORY;
		}
	}
	if (v == ADMIT_OK && !c && !(c = record(a, key)))
		v = ADMIT_COUNT; /* cannot happen: see record */
	if (v == ADMIT_OK) {
		if (a->pictures == 0) {
			a->mark = now; /* a busy period begins */
			a->busy_u = 0;
		}
		hold(a, c);
		t->client = c;
		t->start = start;
		t->seq = ++a->seq;
		t->state = T_RESERVED;
		t->prev = c->tail;
		if (c->tail)
			c->tail->next = t;
		else
			c->head = t;
		c->tail = t;
		c->finish = start + cost;
		c->queued += cost;
		c->pictures++;
		c->bytes += bytes;
		a->waiting++;
		a->pictures++;
		a->bytes += bytes;
		a->backlog += cost;
	} else {
		t->wait = ahead / a->rate;
		t->retry = seconds_up(t->wait);
		if (c && v != ADMIT_TOO_BIG) { /* every refusal that says Retry-After */
			if (now < c->retry_at)
				t->hold = t->wait / 2 < ADMISSION_HOLD_MAX ? t->wait / 2 : ADMISSION_HOLD_MAX;
			else
				c->retry_at = now + t->retry;
		}
	}
	t->verdict = v;
	pthread_mutex_unlock(&a->lock);
	return v;
}

void admission_enqueue(struct admission *a, struct admission_ticket *t)
{
	pthread_mutex_lock(&a->lock);
	if (t->state == T_RESERVED)
		t->state = T_QUEUED;
	pthread_mutex_unlock(&a->lock);
}

struct admission_ticket *admission_next(struct admission *a)
{
	struct admission_ticket *best = NULL;

	pthread_mutex_lock(&a->lock);
	if (a->running < a->cfg.running_max) {
		for (struct admission_client *j = a->holding.head; j; j = j->next) {
			struct admission_ticket *t = j->head;
			while (t && t->state != T_QUEUED)
				t = t->next;
			if (t && (!best || t->start < best->start ||
				  (t->start == best->start && t->seq < best->seq)))
				best = t;
		}
	}
	if (best) {
		struct admission_client *c = best->client;
		double finish = c->finish;
		unwait(a, best);
		c->finish = finish; /* it is not given back: it runs */
		c->running += best->cost;
		a->running_cost += best->cost;
		a->running++;
		if (best->start > a->vtime)
			a->vtime = best->start;
		best->state = T_RUNNING;
	}
	pthread_mutex_unlock(&a->lock);
	return best;
}

void admission_rendered(struct admission *a, struct admission_ticket *t)
{
	pthread_mutex_lock(&a->lock);
	if (t->state == T_RUNNING) {
		a->running--;
		t->state = T_ENCODING;
	}
	pthread_mutex_unlock(&a->lock);
}

/* A handed-out ticket leaves the pool's count and charge. */
static void unrun(struct admission *a, struct admission_ticket *t)
{
	if (t->state == T_RUNNING)
		a->running--;
	a->running_cost -= t->cost;
	t->client->running -= t->cost;
}

/* t leaves admission, waiting or handed out. */
static void take_out(struct admission *a, struct admission_ticket *t)
{
	if (t->state == T_RESERVED || t->state == T_QUEUED)
		unwait(a, t);
	else
		unrun(a, t);
	release(a, t);
}

void admission_done(struct admission *a, struct admission_ticket *t, double now, double share)
{
	pthread_mutex_lock(&a->lock);
	a->busy_u += t->cost * (share >= 0 && share <= 1 ? share : 1);
	double dt = now - a->mark;
	if (dt > 0) {
		double w = 1 - exp(-dt / ADMISSION_RATE_TAU);
		a->rate += w * (a->busy_u / dt - a->rate);
		if (!(a->rate > 1)) /* never 0 (or NaN): the waits divide by it */
			a->rate = 1;
		a->mark = now;
		a->busy_u = 0;
	}
	take_out(a, t);
	pthread_mutex_unlock(&a->lock);
}

void admission_cancel(struct admission *a, struct admission_ticket *t)
{
	pthread_mutex_lock(&a->lock);
	if (t->client)
		take_out(a, t);
	pthread_mutex_unlock(&a->lock);
}

int admission_leave(struct admission *a, struct admission_ticket *t)
{
	int taken = 0;
	pthread_mutex_lock(&a->lock);
	if (t->client && (t->state == T_RESERVED || t->state == T_QUEUED)) {
		take_out(a, t);
		taken = 1;
	}
	pthread_mutex_unlock(&a->lock);
	return taken;
}

void admission_stats(struct admission *a, struct admission_stats *st)
{
	pthread_mutex_lock(&a->lock);
	st->backlog = a->backlog;
	st->rate = a->rate;
	st->wait = ahead_of(a, NULL, a->vtime) / a->rate;
	double level = water_level(a, NULL, 0, a->cfg.max_wait * a->rate) / a->rate;
	st->fair_share = level < a->cfg.max_wait ? level : a->cfg.max_wait;
	st->pictures = a->pictures;
	st->waiting = a->waiting;
	st->clients = a->holding.n + a->idle.n;
	st->holding = a->holding.n;
	st->bytes = a->bytes;
	pthread_mutex_unlock(&a->lock);
}

const char *admission_why(enum admission_verdict v)
{
	switch (v) {
	case ADMIT_OK:
	case ADMIT_VERDICTS:
		return "admitted";
	case ADMIT_OVER_SHARE:
		return "too many requests: your pictures already hold your fair share of this server while others wait; retry after Retry-After";
	case ADMIT_BUSY:
		return "busy: the pictures ahead would make this one wait past --max-wait; retry after Retry-After";
	case ADMIT_TOO_BIG:
		return "too big: this picture alone would take longer than --max-wait here; ask for fewer pixels or iterations";
	case ADMIT_MEMORY:
		return "busy: the pictures being rendered hold the memory --max-render-mb allows; retry after Retry-After";
	case ADMIT_COUNT:
		return "busy: --max-inflight pictures are being rendered; retry after Retry-After";
	}
	return "busy";
}
