/* test_admission.c - the admission rule (server/admission.c) on a fake
 * clock: predicted wait, the rate it learns, the bounds, Retry-After. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <string.h>

#include "server/admission.h"

#define RATE 1e9 /* pixel-iterations a second, the fake workers' */
#define MB (1u << 20)

static struct admission *make(double max_wait, double rate0)
{
	struct admission *a;
	struct admission_cfg c = {.max_wait = max_wait, .rate0 = rate0, .max_bytes = 64 * MB,
				  .max_pictures = 100};
	cr_assert(eq(int, admission_create(&a, &c), 0));
	return a;
}

/* Pictures of 0.1 s each on a 1 s bound: ten fit (the tenth waits 1.0 s
 * in all), the eleventh is told to come back when the ten are done. */
Test(admission, admits_while_the_predicted_wait_fits)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t[12];
	for (int i = 0; i < 10; i++) {
		cr_assert(eq(int, admission_admit(a, 0.1 * RATE, 1000, 0, &t[i]), ADMIT_OK), "picture %d", i);
		cr_expect(lt(dbl, fabs(t[i].wait - 0.1 * (i + 1)), 1e-9));
	}
	cr_expect(eq(int, admission_admit(a, 0.1 * RATE, 1000, 0, &t[10]), ADMIT_BUSY));
	cr_expect(eq(u32, t[10].retry, 1)); /* 1.0 s ahead */
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(eq(u32, st.pictures, 10));
	cr_expect(lt(dbl, fabs(st.wait - 1.0), 1e-9));
	admission_destroy(a);

	/* With 0.9 s ahead, a 0.2 s picture is refused and a cheap one is
	 * not: refusals follow the wait, not the count or the order. */
	a = make(1.0, RATE);
	for (int i = 0; i < 9; i++)
		cr_assert(eq(int, admission_admit(a, 0.1 * RATE, 1000, 0, &t[i]), ADMIT_OK));
	cr_expect(eq(int, admission_admit(a, 0.2 * RATE, 1000, 0, &t[10]), ADMIT_BUSY));
	cr_expect(eq(int, admission_admit(a, 1e3, 1000, 0, &t[11]), ADMIT_OK));
	admission_destroy(a);
}

/* One that alone needs more than the bound is refused at once, even on an
 * idle server, with no promise of a better time. */
Test(admission, too_big_alone)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t;
	cr_expect(eq(int, admission_admit(a, 1.5 * RATE, 1000, 0, &t), ADMIT_TOO_BIG));
	cr_expect(eq(int, admission_admit(a, 0.5 * RATE, 65 * MB, 0, &t), ADMIT_TOO_BIG));
	cr_expect(eq(int, admission_admit(a, 0.99 * RATE, 1000, 0, &t), ADMIT_OK));
	admission_destroy(a);
}

/* Retry-After is the predicted drain time of what is ahead, not a constant. */
Test(admission, retry_after_is_the_drain_time)
{
	struct admission *a = make(2.0, RATE);
	struct admission_ticket t;
	for (int i = 0; i < 7; i++)
		cr_assert(eq(int, admission_admit(a, 0.25 * RATE, 1000, 0, &t), ADMIT_OK));
	cr_expect(eq(int, admission_admit(a, 0.5 * RATE, 1000, 0, &t), ADMIT_BUSY));
	cr_expect(eq(u32, t.retry, 2)); /* 1.75 s ahead */
	admission_destroy(a);
}

/* The rate is learned from busy time: a server twice as slow as its
 * calibration says is soon predicted as such, and admits half as much. */
Test(admission, learns_the_rate_from_busy_time)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t;
	double now = 0;
	/* 40 pictures of nominally 0.05 s, each really taking 0.1 s, one
	 * after another: 4 s of busy time. */
	for (int i = 0; i < 40; i++) {
		cr_assert(eq(int, admission_admit(a, 0.05 * RATE, 1000, now, &t), ADMIT_OK));
		now += 0.1;
		admission_done(a, &t, now);
	}
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(lt(dbl, fabs(st.rate / (RATE / 2) - 1), 0.01), "rate %g", st.rate);
	cr_expect(eq(dbl, st.backlog, 0));
	cr_expect(eq(u32, st.pictures, 0));
	/* Now ten 0.05 s pictures are predicted 0.1 s each: ten fit, not 20. */
	int admitted = 0;
	while (admission_admit(a, 0.05 * RATE, 1000, now, &t) == ADMIT_OK)
		admitted++;
	cr_expect(eq(int, admitted, 10));
	admission_destroy(a);
}

/* Idle time is not busy time: a gap between pictures does not make the
 * workers look slow. */
Test(admission, idle_time_does_not_count)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t;
	double now = 0;
	for (int i = 0; i < 20; i++) {
		cr_assert(eq(int, admission_admit(a, 0.01 * RATE, 1000, now, &t), ADMIT_OK));
		admission_done(a, &t, now + 0.01); /* exactly the calibrated rate */
		now += 5;                          /* then idle */
	}
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(lt(dbl, fabs(st.rate / RATE - 1), 1e-6), "rate %g", st.rate);
	admission_destroy(a);
}

/* Memory and count bounds, and what each refusal says. */
Test(admission, memory_and_count_bounds)
{
	struct admission *a = make(10.0, RATE);
	struct admission_ticket t[3];
	cr_assert(eq(int, admission_admit(a, 1e3, 40 * MB, 0, &t[0]), ADMIT_OK));
	cr_expect(eq(int, admission_admit(a, 1e3, 30 * MB, 0, &t[1]), ADMIT_MEMORY));
	cr_expect(eq(int, admission_admit(a, 1e3, 20 * MB, 0, &t[1]), ADMIT_OK));
	admission_done(a, &t[0], 0.001);
	cr_expect(eq(int, admission_admit(a, 1e3, 30 * MB, 0.001, &t[2]), ADMIT_OK));
	admission_destroy(a);

	struct admission_cfg c = {.max_wait = 1, .rate0 = RATE, .max_bytes = MB, .max_pictures = 2};
	cr_assert(eq(int, admission_create(&a, &c), 0));
	cr_assert(eq(int, admission_admit(a, 1, 1, 0, &t[0]), ADMIT_OK));
	cr_assert(eq(int, admission_admit(a, 1, 1, 0, &t[1]), ADMIT_OK));
	cr_expect(eq(int, admission_admit(a, 1, 1, 0, &t[2]), ADMIT_COUNT));
	cr_expect(eq(int, strncmp(admission_why(ADMIT_COUNT), "busy: --max-inflight", 20), 0));
	cr_expect(eq(int, strncmp(admission_why(ADMIT_TOO_BIG), "too big", 7), 0));
	admission_destroy(a);
}

/* A picture admitted but never started gives its cost back and teaches
 * the rate nothing. */
Test(admission, cancel_gives_back_without_measuring)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t;
	cr_assert(eq(int, admission_admit(a, 0.5 * RATE, 1000, 0, &t), ADMIT_OK));
	admission_cancel(a, &t);
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(eq(u32, st.pictures, 0));
	cr_expect(eq(dbl, st.backlog, 0));
	cr_expect(eq(u64, st.bytes, 0));
	cr_expect(eq(dbl, st.rate, RATE));
	admission_destroy(a);
}
