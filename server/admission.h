/*
 * admission.h - which pictures are rendered, and in what order: admission
 * by predicted wait, shared fairly among the clients that want it, and the
 * fair queue between admission and the render pool.
 *
 * Units. A picture's cost is its charge in pixel-iterations (w * h * iter,
 * the unit of --max-cost, times what its mode leaves idle: srv_charge);
 * the rate is the pixel-iterations a second the workers are measured to
 * drain; a wait is cost over rate.
 *
 * The queue. Admitted pictures wait in their client's queue (first come,
 * first served within a client) and are handed to the pool running_max at
 * a time (the pool's workers: enough to keep every worker busy, few enough
 * that the order is decided here and not by the pool's FIFO). Which
 * client's picture goes next is start-time fair queueing (Goyal, Vin and
 * Cheng, 1996): a picture's start tag is the larger of the virtual time
 * and its client's previous finish tag, its finish tag is start + cost,
 * the smallest start tag goes next and the virtual time becomes it. A
 * client that floods gets tags far ahead; one that asks now and then gets
 * the virtual time, and goes next. Over any stretch in which two clients
 * both have pictures waiting, their rendered costs differ by at most one
 * picture each.
 *
 * Admission. A picture is admitted while the wait it would see under that
 * order fits max_wait: the pictures handed to the pool, its client's own
 * waiting pictures, and every other client's waiting pictures whose start
 * tags are not after its own, plus itself, over the rate. So a client
 * within its share is admitted while another floods (it starts near the
 * virtual time, behind almost nothing), and the flooder is refused once
 * its own queue holds max_wait of work. Refused:
 *   OVER_SHARE  its client holds more of the wait budget (max_wait x rate)
 *               than the max-min fair share of it among the clients that
 *               hold some (water-filling: a client asking for less than
 *               an equal split keeps all it asks; the rest is split among
 *               the others); or, for the count and memory bounds, its
 *               client holds the most of them already
 *   BUSY        the wait is past max_wait and the client is within its
 *               share (the server is full for everyone)
 *   TOO_BIG     alone it needs more than max_wait, or more than max_bytes
 *   COUNT, MEMORY  max_pictures admitted, or max_bytes of pixels, and no
 *               client holds more than this one's would after admission
 * Retry-After (retry) is the refused client's own predicted wait of what
 * is ahead of it, in whole seconds, at least 1.
 *
 * A client refused again (for anything but too big) before the
 * Retry-After it was given is early: its refusal may be held (hold: half its own predicted
 * wait, at most ADMISSION_HOLD_MAX seconds) before it is answered, so a
 * client that ignores Retry-After asks at about the pace it was told to,
 * not at the pace of the network; half, so that its own waiting pictures
 * are not all rendered before it asks again and its share stays used.
 *
 * Count and memory are hard bounds. When one is full and another client
 * holds more of it (its dominant share: the larger of its share of the
 * count and of the bytes, as in Dominant Resource Fairness), that
 * client's newest waiting picture is pushed out to make room, as fair
 * queueing drops from the longest queue (Demers, Keshav and Shenker,
 * 1989): the caller answers it OVER_SHARE.
 *
 * Client state. One record per client key (client.h: an IPv4 address or
 * an IPv6 /64) while it has admitted pictures, and afterwards only while
 * its finish tag is ahead of the virtual time (it still matters to its
 * next start tag); at most max_pictures + ADMISSION_IDLE_MAX records,
 * fixed at creation (an idle one is dropped, least recently used first,
 * when room is needed). Keys hash with a random seed per process.
 *
 * The rate: measured over busy time only (while a picture is admitted),
 * as an exponentially weighted average with a time constant of RATE_TAU
 * seconds, so a second of work moves it most of the way and an idle
 * server keeps what it knew. It starts from the caller's calibration
 * (rate0). Cost is the nominal charge, both when admitted and when done.
 *
 * A ticket's life: admit (RESERVED: counted, not yet startable; the
 * caller suspends its connection meanwhile), admission_enqueue (QUEUED),
 * admission_next hands it out (RUNNING: the caller render_starts it),
 * admission_rendered (its pixels are done: the pool may take another),
 * admission_done (encoded: its cost leaves). admission_cancel ends a
 * ticket that never rendered; admission_leave takes back a waiting one
 * whose client hung up.
 *
 * Time is the caller's (seconds on any monotonic clock): the tests drive
 * it with a fake one. Thread-safety: every call takes one mutex, for a few
 * arithmetic operations and a walk of the clients that hold pictures;
 * HTTP threads admit, enqueue and leave, workers render, finish and
 * start the next. The struct admission_ticket is the caller's (embedded in
 * its request), linked into admission's lists between admit and done.
 */
#ifndef MW_ADMISSION_H
#define MW_ADMISSION_H

#include <stdint.h>

#include "server/cidr.h"

#define ADMISSION_RATE_TAU 0.5 /* seconds of busy time to forget 63% of the old rate */
/* Client records kept beyond those with pictures: each is ~120 bytes. */
#define ADMISSION_IDLE_MAX 1024
#define ADMISSION_HOLD_MAX 1.0 /* seconds an early client's refusal may be held */

struct admission_cfg {
	double max_wait;       /* seconds a picture may wait, its own render included */
	double rate0;          /* pixel-iterations a second, before any measurement */
	uint64_t max_bytes;    /* pixel memory of admitted pictures */
	unsigned max_pictures; /* admitted pictures at once */
	unsigned running_max;  /* pictures handed to the pool at once (0: 1) */
};

enum admission_verdict {
	ADMIT_OK,
	ADMIT_OVER_SHARE, /* this client holds more than its fair share */
	ADMIT_BUSY,       /* the predicted wait is past max_wait: retry after the drain */
	ADMIT_TOO_BIG,    /* alone, it needs more than max_wait or max_bytes */
	ADMIT_MEMORY,     /* pixel memory of admitted pictures would pass max_bytes */
	ADMIT_COUNT,      /* max_pictures are admitted */
	ADMIT_VERDICTS
};

struct admission_client;

struct admission_ticket {
	/* Set by admission_admit (and for a pushed-out ticket), for the caller: */
	double cost;     /* pixel-iterations, as admitted */
	uint64_t bytes;  /* pixel memory */
	double wait;     /* predicted seconds until done (admitted) or of what is ahead */
	unsigned retry;  /* refused: whole seconds until what is ahead drains, at least 1 */
	double hold;     /* refused early (see above): seconds to hold the answer; else 0 */
	enum admission_verdict verdict; /* a pushed-out ticket's: ADMIT_OVER_SHARE */
	/* admission's own, from admit to done: */
	struct admission_ticket *prev, *next; /* in its client's waiting list; pushed: the list out */
	struct admission_client *client;
	double start;    /* start tag */
	uint64_t seq;    /* admission order: breaks ties between equal tags */
	int state;
};

struct admission_stats {
	double backlog;    /* pixel-iterations admitted, not done */
	double rate;       /* pixel-iterations a second, as measured */
	double wait;       /* what a picture of a new client would wait before its own render, seconds */
	double fair_share; /* seconds of the wait budget each contending client may hold (max_wait: none contends) */
	unsigned pictures; /* admitted, not done */
	unsigned waiting;  /* of which not yet handed to the pool */
	unsigned clients;  /* client records: holding pictures, or remembered */
	unsigned holding;  /* of which holding pictures */
	uint64_t bytes;
};

struct admission;

int admission_create(struct admission **out, const struct admission_cfg *c); /* 0, -ENOMEM */
void admission_destroy(struct admission *a); /* no ticket may be admitted */

/* Decides on a picture of cost pixel-iterations and bytes of pixels for
 * the client keyed key, at time now. t receives what it was charged and
 * the wait predicted, or the Retry-After seconds when refused. Admitted,
 * t is RESERVED: the caller admission_enqueues it (or cancels it). Tickets
 * pushed out to make room come back in *pushed (a list through ->next,
 * each with verdict, wait and retry set), taken out of admission: the
 * caller answers each; NULL when none. */
enum admission_verdict admission_admit(struct admission *a, const struct cidr_addr *key, double cost,
				       uint64_t bytes, double now, struct admission_ticket *t,
				       struct admission_ticket **pushed);

/* A RESERVED ticket may be handed to the pool. */
void admission_enqueue(struct admission *a, struct admission_ticket *t);

/* The next ticket to render (now RUNNING), or NULL when running_max are
 * running or none waits. The caller render_starts it; call until NULL. */
struct admission_ticket *admission_next(struct admission *a);

/* A RUNNING ticket's pixels are done (it encodes next): the pool may take
 * another picture; its cost stays until admission_done. */
void admission_rendered(struct admission *a, struct admission_ticket *t);

/* An admitted picture is rendered and encoded (share 1), or cancelled with
 * share (0..1) of it rendered: its cost leaves the backlog and the busy
 * time since the last event is measured against what was rendered. */
void admission_done(struct admission *a, struct admission_ticket *t, double now, double share);

/* A ticket that never rendered (reserved, waiting, or handed out and not
 * started by the pool): its cost leaves and nothing is measured. */
void admission_cancel(struct admission *a, struct admission_ticket *t);

/* t's client hung up: 1 when t was still waiting (taken out: the caller
 * answers it), 0 when it is running (the caller cancels its render). */
int admission_leave(struct admission *a, struct admission_ticket *t);

void admission_stats(struct admission *a, struct admission_stats *st);

/* A one-line reason for a refusal, for the answer's body. */
const char *admission_why(enum admission_verdict v);

#endif
