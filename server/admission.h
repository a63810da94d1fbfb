/*
 * admission.h - which pictures are rendered: admission by predicted wait.
 *
 * Owns: the backlog (the cost of every admitted picture not yet rendered,
 * in pixel-iterations: w * h * iter, the unit of --max-cost), the rate at
 * which the workers are measured to drain it (pixel-iterations a second),
 * and the bounds. A picture is admitted while the wait it would see, the
 * backlog ahead of it plus its own cost divided by the rate, fits
 * max_wait; past it, the answer is "busy" with the predicted drain time of
 * what is ahead (Retry-After). A picture that alone needs more than
 * max_wait is "too big": refused whatever the backlog. Two more bounds
 * hold memory to a formula: the pixel bytes of admitted pictures
 * (max_bytes) and their number (max_pictures, which also sizes the pool's
 * queue).
 *
 * The rate: measured over busy time only (while at least one picture is
 * admitted), as an exponentially weighted average with a time constant of
 * RATE_TAU seconds, so a second of work moves it most of the way and an
 * idle server keeps what it knew. It starts from a calibration the caller
 * makes (rate0). Cost is the nominal w * h * iter, both when admitted and
 * when done, so the backlog returns to exactly 0 when idle and the rate is
 * in the same unit as the cost, whatever fraction of its nominal
 * iterations a picture really runs.
 *
 * Time is the caller's (seconds on any monotonic clock): the tests drive
 * it with a fake one. Thread-safety: every call takes one mutex for a few
 * arithmetic operations; HTTP threads admit, workers call done.
 */
#ifndef MW_ADMISSION_H
#define MW_ADMISSION_H

#include <stdint.h>

#define ADMISSION_RATE_TAU 0.5 /* seconds of busy time to forget 63% of the old rate */

struct admission_cfg {
	double max_wait;       /* seconds a picture may wait, its own render included */
	double rate0;          /* pixel-iterations a second, before any measurement */
	uint64_t max_bytes;    /* pixel memory of admitted pictures */
	unsigned max_pictures; /* admitted pictures at once */
};

enum admission_verdict {
	ADMIT_OK,
	ADMIT_BUSY,    /* the predicted wait is past max_wait: retry after the drain */
	ADMIT_TOO_BIG, /* alone, it needs more than max_wait */
	ADMIT_MEMORY,  /* pixel memory of admitted pictures would pass max_bytes */
	ADMIT_COUNT,   /* max_pictures are admitted */
};

struct admission_ticket {
	double cost;     /* pixel-iterations, as admitted */
	uint64_t bytes;  /* pixel memory */
	double wait;     /* predicted seconds until done (admitted) or of the backlog ahead */
	unsigned retry;  /* refused: whole seconds until what is ahead drains, at least 1 */
};

struct admission_stats {
	double backlog;   /* pixel-iterations admitted, not done */
	double rate;      /* pixel-iterations a second, as measured */
	double wait;      /* backlog / rate: what a new picture would wait, seconds */
	unsigned pictures;
	uint64_t bytes;
};

struct admission;

int admission_create(struct admission **out, const struct admission_cfg *c); /* 0, -ENOMEM */
void admission_destroy(struct admission *a);

/* Decides on a picture of cost pixel-iterations and bytes of pixels at
 * time now; t receives what it was charged (to give back to done) and the
 * wait it was predicted, or the Retry-After seconds when refused. */
enum admission_verdict admission_admit(struct admission *a, double cost, uint64_t bytes,
				       double now, struct admission_ticket *t);

/* An admitted picture is rendered (or given up): its cost leaves the
 * backlog and the busy time since the last event is measured. */
void admission_done(struct admission *a, const struct admission_ticket *t, double now);

/* As admission_done for a picture of which only share (0..1) was rendered
 * (a cancelled one): all its cost leaves the backlog, and the busy time is
 * measured against share of it. */
void admission_done_share(struct admission *a, const struct admission_ticket *t, double now,
			  double share);

/* An admitted picture that never started (the job queue refused it): its
 * cost leaves the backlog and nothing is measured. */
void admission_cancel(struct admission *a, const struct admission_ticket *t);

void admission_stats(struct admission *a, struct admission_stats *st);

/* A one-line reason for a refusal, for the 503's body. */
const char *admission_why(enum admission_verdict v);

#endif
