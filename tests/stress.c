/*
 * stress.c - concurrency stress of the pool, the render modes, render
 * cancellation and the server's single flight, as a
 * plain program (no Criterion): Criterion cannot start under
 * ThreadSanitizer (Snaipe/Criterion#274, its arena collides with TSan's
 * shadow memory), so this is what `make test SAN=thread` runs, and every
 * other build runs it too. Prints one line per check and ends with
 * "N passed, M failed"; exits 1 when any failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prof/prof.h"
#include "render/render.h"
#include "server/flight.h"
#include "trace/capture.h"
#include "trace/trace.h"

static int passed, failed;

static void check(int ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	ok ? passed++ : failed++;
}

static atomic_long sum;

static void add(void *arg, uintptr_t i)
{
	(void)arg;
	atomic_fetch_add_explicit(&sum, (long)i, memory_order_relaxed);
}

struct producer {
	struct pool *p;
	long from, count;
	int try_only;
	long refused;
};

static void *produce(void *arg)
{
	struct producer *pr = arg;
	for (long i = pr->from; i < pr->from + pr->count; i++) {
		if (pr->try_only) {
			if (pool_try_submit(pr->p, add, NULL, (uintptr_t)i) == 0)
				continue;
			pr->refused += i; /* counted, so the sum still checks */
		} else if (pool_submit(pr->p, add, NULL, (uintptr_t)i) != 0) {
			abort();
		}
	}
	return NULL;
}

/* Producers x workers over a queue of capacity cap; half the runs also use
 * pool_try_submit, whose refusals must account for the missing jobs. */
static void pool_case(unsigned workers, unsigned cap, int producers, int try_only)
{
	struct pool *p;
	pthread_t t[8];
	struct producer pr[8];
	const long per = 4000;
	char what[128];

	atomic_store(&sum, 0);
	if (pool_create(&p, workers, cap, "stress", NULL) != 0) {
		check(0, "pool_create");
		return;
	}
	for (int i = 0; i < producers; i++) {
		pr[i] = (struct producer){p, 1 + i * per, per, try_only, 0};
		pthread_create(&t[i], NULL, produce, &pr[i]);
	}
	long refused = 0;
	for (int i = 0; i < producers; i++) {
		pthread_join(t[i], NULL);
		refused += pr[i].refused;
	}
	pool_destroy(p);
	long n = producers * per;
	snprintf(what, sizeof what, "pool workers=%u cap=%u producers=%d %s", workers, cap,
		 producers, try_only ? "try_submit" : "submit");
	check(atomic_load(&sum) + refused == n * (n + 1) / 2, what);
}

struct renderer {
	struct pool *p;
	enum render_mode mode;
	const struct image *ref;
	int ok;
};

static void *render_thread(void *arg)
{
	struct renderer *r = arg;
	struct picture pic = picture_default(r->ref->w, r->ref->h);
	struct image img;

	r->ok = 0;
	if (image_alloc(&img, pic.w, pic.h, 1) != 0)
		return NULL;
	r->ok = render_image(r->p, &pic, kernel_best(), r->mode, &img, NULL) == 0 &&
		memcmp(img.px, r->ref->px, img.stride * img.h) == 0;
	image_free(&img);
	return NULL;
}

/* Several threads render at once on one shared pool, as the server will. */
static void shared_pool_case(unsigned workers, unsigned cap)
{
	struct picture pic = picture_default(48, 40);
	struct image ref;
	struct pool *p;
	pthread_t t[5];
	struct renderer r[5];
	char what[128];

	image_alloc(&ref, pic.w, pic.h, 1);
	render_image(NULL, &pic, kernel_find("scalar"), MODE_SEQ, &ref, NULL);
	pool_create(&p, workers, cap, "stress", NULL);
	for (int i = 0; i < 5; i++) {
		r[i] = (struct renderer){p, (enum render_mode)(i % 5), &ref, 0};
		pthread_create(&t[i], NULL, render_thread, &r[i]);
	}
	int ok = 1;
	for (int i = 0; i < 5; i++) {
		pthread_join(t[i], NULL);
		ok &= r[i].ok;
	}
	pool_destroy(p);
	image_free(&ref);
	snprintf(what, sizeof what, "5 renders at once, every mode, workers=%u cap=%u", workers,
		 cap);
	check(ok, what);
}

/* render_start from many threads at once on a small queue: every picture
 * started is finished exactly once, on a worker, with the reference bytes;
 * refusals are -EAGAIN only. */
struct started {
	const struct image *ref;
	atomic_int done, bad;
};

static void started_done(void *ctx, struct image *img, const struct render_stats *st)
{
	struct started *s = ctx;
	(void)st;
	if (memcmp(img->px, s->ref->px, s->ref->stride * s->ref->h) != 0)
		atomic_fetch_add(&s->bad, 1);
	image_free(img);
	atomic_fetch_add(&s->done, 1);
}

struct starter {
	struct pool *p;
	struct started *s;
	const struct picture *pic;
	int started, refused, errors;
};

static void *start_many(void *arg)
{
	struct starter *st = arg;
	for (int i = 0; i < 200; i++) {
		struct render_req r = {.pic = st->pic, .kernel = kernel_best(),
				       .mode = (enum render_mode)(i % 5), .jobs = (unsigned)i % 4,
				       .done = started_done, .ctx = st->s};
		int rc = render_start(st->p, &r);
		if (rc == 0)
			st->started++;
		else if (rc == -EAGAIN)
			st->refused++;
		else
			st->errors++;
	}
	return NULL;
}

static void start_case(unsigned workers, unsigned cap)
{
	struct picture pic = picture_default(37, 23);
	struct image ref;
	struct pool *p;
	struct started s = {.ref = &ref};
	struct starter st[4];
	pthread_t t[4];
	char what[96];
	int started = 0, errors = 0;

	image_alloc(&ref, pic.w, pic.h, 1);
	render_image(NULL, &pic, kernel_find("scalar"), MODE_SEQ, &ref, NULL);
	atomic_init(&s.done, 0);
	atomic_init(&s.bad, 0);
	if (pool_create(&p, workers, cap, "stress", NULL) != 0) {
		check(0, "pool_create");
		return;
	}
	for (int i = 0; i < 4; i++) {
		st[i] = (struct starter){.p = p, .s = &s, .pic = &pic};
		pthread_create(&t[i], NULL, start_many, &st[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		started += st[i].started;
		errors += st[i].errors;
	}
	pool_destroy(p); /* runs every queued job: all started pictures finish */
	image_free(&ref);
	snprintf(what, sizeof what, "render_start from 4 threads, workers=%u cap=%u (%d started)",
		 workers, cap, started);
	check(errors == 0 && started > 0 && atomic_load(&s.done) == started &&
		      atomic_load(&s.bad) == 0, what);
}

/* render_start with cancel flags set from other threads at any moment:
 * every picture's done is called exactly once, a picture whose flag was
 * never set is whole and right, and one cancelled says so (or is whole). */
struct cancelled_pic {
	atomic_int cancel, done, was_cancelled, whole_ok;
	const struct image *ref;
};

static void cancel_done(void *ctx, struct image *img, const struct render_stats *st)
{
	struct cancelled_pic *c = ctx;
	atomic_store(&c->was_cancelled, st->cancelled);
	atomic_store(&c->whole_ok, !st->cancelled &&
					   memcmp(img->px, c->ref->px, c->ref->stride * c->ref->h) == 0);
	image_free(img);
	atomic_fetch_add(&c->done, 1);
}

#define CANCEL_PICS 64
static struct cancelled_pic cpics[CANCEL_PICS];

static void *canceller(void *arg)
{
	(void)arg;
	for (int i = 0; i < CANCEL_PICS; i += 2) {
		for (volatile int spin = 0; spin < 2000 * (i % 7); spin++)
			;
		atomic_store_explicit(&cpics[i].cancel, 1, memory_order_relaxed);
	}
	return NULL;
}

static void cancel_case(enum render_mode mode)
{
	struct picture pic = picture_default(61, 29);
	struct image ref;
	struct pool *p;
	pthread_t t;
	atomic_int all;
	char what[96];
	int started = 0, once = 1, right = 1, cancelled = 0;

	image_alloc(&ref, pic.w, pic.h, 1);
	render_image(NULL, &pic, kernel_find("scalar"), MODE_SEQ, &ref, NULL);
	atomic_init(&all, 0);
	if (pool_create(&p, 3, 4096, "stress", NULL) != 0) {
		check(0, "pool_create");
		return;
	}
	for (int i = 0; i < CANCEL_PICS; i++) {
		atomic_init(&cpics[i].cancel, 0);
		atomic_init(&cpics[i].done, 0);
		cpics[i].ref = &ref;
	}
	pthread_create(&t, NULL, canceller, NULL);
	for (int i = 0; i < CANCEL_PICS; i++) {
		struct render_req r = {.pic = &pic, .kernel = kernel_find("scalar"), .mode = mode,
				       .done = cancel_done, .ctx = &cpics[i],
				       .cancel = &cpics[i].cancel, .cancel_all = &all};
		started += render_start(p, &r) == 0;
	}
	pthread_join(t, NULL);
	pool_destroy(p);
	for (int i = 0; i < CANCEL_PICS; i++) {
		once &= atomic_load(&cpics[i].done) == 1;
		if (i % 2)
			right &= atomic_load(&cpics[i].whole_ok);
		else
			right &= atomic_load(&cpics[i].was_cancelled) || atomic_load(&cpics[i].whole_ok);
		cancelled += atomic_load(&cpics[i].was_cancelled);
	}
	image_free(&ref);
	snprintf(what, sizeof what, "render_start %s, half cancelled meanwhile (%d were)",
		 render_mode_name(mode), cancelled);
	check(started == CANCEL_PICS && once && right, what);
}

/* Single flight under threads: leaders finish or hang up while followers
 * join and hang up: every follower is handed back exactly once (by its
 * leader's finish or by its own leave), and a flight's cancel flag is set
 * only when its leader and every follower had gone. */
#define FL_FOLLOWERS 6
struct fl_case {
	struct flights *f;
	struct flight_waiter leader, follower[FL_FOLLOWERS];
	atomic_int cancel, joined[FL_FOLLOWERS], left[FL_FOLLOWERS], handed[FL_FOLLOWERS];
	atomic_int leader_gone;
	int round;
};

static void *fl_follow(void *arg)
{
	struct fl_case *c = arg;
	for (int i = 0; i < FL_FOLLOWERS; i++) {
		int rc = flight_join(c->f, "k", &c->follower[i], NULL);
		atomic_store(&c->joined[i], rc == 1 ? 1 : rc == 0 ? 2 : 3);
		if (rc == 0) { /* the leader finished first: this one leads; drop it */
			flight_finish(c->f, &c->follower[i]);
			continue;
		}
		if ((i + c->round) % 2 && flight_leave(c->f, &c->follower[i]))
			atomic_store(&c->left[i], 1);
	}
	return NULL;
}

static void flight_case(int round)
{
	struct fl_case c = {.round = round};
	pthread_t t;
	char what[96];
	int ok = 1;

	if (flights_create(&c.f) < 0) {
		check(0, "flights_create");
		return;
	}
	atomic_init(&c.cancel, 0);
	ok &= flight_join(c.f, "k", &c.leader, &c.cancel) == 0;
	pthread_create(&t, NULL, fl_follow, &c);
	if (round % 3 == 0) { /* the leader hangs up; its render may be cancelled */
		flight_leader_gone(c.f, &c.leader);
		atomic_store(&c.leader_gone, 1);
	}
	pthread_join(t, NULL);
	int cancelled_before_finish = atomic_load(&c.cancel);
	struct flight_waiter *w = flight_finish(c.f, &c.leader);
	for (; w; w = w->next)
		for (int i = 0; i < FL_FOLLOWERS; i++)
			if (w == &c.follower[i])
				atomic_fetch_add(&c.handed[i], 1);
	int followers_left = 1;
	for (int i = 0; i < FL_FOLLOWERS; i++) {
		if (atomic_load(&c.joined[i]) != 1)
			continue; /* led its own flight, or joined none */
		ok &= atomic_load(&c.left[i]) + atomic_load(&c.handed[i]) == 1;
		followers_left &= atomic_load(&c.left[i]);
	}
	/* Cancelled means the leader had gone and no follower waited. */
	if (cancelled_before_finish)
		ok &= atomic_load(&c.leader_gone) && followers_left;
	flights_destroy(c.f);
	if (round == 0 || !ok) {
		snprintf(what, sizeof what, "single flight join/leave/gone/finish from 2 threads (round %d)", round);
		check(ok, what);
	}
}

/* The tracer under load: the flight recorder on with small rings (they
 * wrap all the time) while renders run, and a reader taking captures
 * throughout, each read to its end. Under TSan this checks the rings'
 * seqlock protocol and the capture session. */
static atomic_int reading;

static void *capture_loop(void *arg)
{
	static char buf[4096];
	long *docs = arg;
	while (atomic_load(&reading)) {
		struct trace_capture *c;
		int rc = (*docs % 2) ? trace_capture_last(&c, 10000000000u) : trace_capture_open(&c);
		if (rc < 0)
			continue;
		size_t n, total = 0;
		char end[3] = {0}; /* the document's last 3 bytes, across reads */
		while ((n = trace_capture_read(c, buf, sizeof buf)) > 0) {
			for (size_t i = n > 3 ? n - 3 : 0; i < n; i++) {
				memmove(end, end + 1, 2);
				end[2] = buf[i];
			}
			total += n;
		}
		if (total > 0 && memcmp(end, "}}\n", 3) == 0)
			(*docs)++;
		else
			*docs = -1000000; /* a document that does not end as it must */
		trace_capture_free(c);
	}
	return NULL;
}

static void traced_case(void)
{
	pthread_t reader;
	long docs = 0;
	char what[96];

	trace_flight_recorder(1);
	atomic_store(&reading, 1);
	pthread_create(&reader, NULL, capture_loop, &docs);
	start_case(2, 65);
	shared_pool_case(3, 1);
	atomic_store(&reading, 0);
	pthread_join(reader, NULL);
	trace_flight_recorder(0);
	snprintf(what, sizeof what, "tracer armed, rings wrapping, %ld captures read meanwhile", docs);
	check(docs > 0, what);
}

/* Block profiles started, read and freed over and over while the pool's
 * threads wait and wake (rendezvous, queue full, no work) and threads are
 * born and end: under TSan this checks the waits' hook, the in-flight
 * count and the records' hand-over to the reader. */
static atomic_int profiling;

static void *block_loop(void *arg)
{
	long *profiles = arg;
	while (atomic_load(&profiling)) {
		struct prof_block *b;
		if (prof_block_start(&b) < 0) {
			*profiles = -1000000;
			return NULL;
		}
		unsigned char *gz;
		size_t len;
		struct prof_block_facts f;
		if (prof_block_pprof(b, &gz, &len, &f) == 0) {
			free(gz);
			(*profiles)++;
		}
		prof_block_free(b);
	}
	return NULL;
}

static void block_case(void)
{
	pthread_t t;
	long profiles = 0;
	char what[96];
	atomic_store(&profiling, 1);
	pthread_create(&t, NULL, block_loop, &profiles);
	pool_case(3, 0, 4, 0);
	pool_case(2, 1, 2, 0);
	start_case(2, 3);
	atomic_store(&profiling, 0);
	pthread_join(t, NULL);
	snprintf(what, sizeof what, "block profiles taken while pools hand off (%ld read)", profiles);
	check(profiles > 0, what);
}

int main(void)
{
	static const unsigned caps[] = {0, 1, 3, 64, 1024};

	trace_init(&(struct trace_config){.ring_events = 4096, .process = "stress"});
	/* The CPU samples too: their timers, collector and frame tree run
	 * beside every armed case (under ThreadSanitizer with SAN=thread). */
	if (prof_trace_samples(4000) < 0)
		return 1;
	for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
		pool_case(1, caps[c], 1, 0);
		pool_case(3, caps[c], 4, 0);
		pool_case(2, caps[c], 6, 1);
		shared_pool_case(3, caps[c]);
		start_case(2, caps[c] + 1);
	}
	cancel_case(MODE_AUTO);
	cancel_case(MODE_PX);
	cancel_case(MODE_SEQ);
	for (int round = 0; round < 300; round++)
		flight_case(round);
	traced_case();
	block_case();
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
