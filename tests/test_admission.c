/* test_admission.c - the admission rule (server/admission.c) on a fake
 * clock: predicted wait, the rate it learns, the bounds, Retry-After; and
 * the fair rule: a flooder cannot take the server from the others, shares
 * are max-min fair, the fair queue's order, push-outs, bounded state. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <string.h>

#include "server/admission.h"

#define RATE 1e9 /* pixel-iterations a second, the fake workers' */
#define MB (1u << 20)

static struct admission *make_with(double max_wait, double rate0, unsigned pictures,
				   unsigned running)
{
	struct admission *a;
	struct admission_cfg c = {.max_wait = max_wait, .rate0 = rate0, .max_bytes = 64 * MB,
				  .max_pictures = pictures, .running_max = running};
	cr_assert(eq(int, admission_create(&a, &c), 0));
	return a;
}

static struct admission *make(double max_wait, double rate0)
{
	return make_with(max_wait, rate0, 100, 2);
}

/* Client number n's key: 10.0.0.n. */
static struct cidr_addr who(unsigned n)
{
	struct cidr_addr k = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, (uint8_t)(n >> 8), (uint8_t)n}};
	return k;
}

/* Admits for client n, expecting nothing pushed out; enqueued when admitted. */
static enum admission_verdict admit(struct admission *a, unsigned n, double cost, uint64_t bytes,
				    double now, struct admission_ticket *t)
{
	struct admission_ticket *pushed;
	struct cidr_addr k = who(n);
	enum admission_verdict v = admission_admit(a, &k, cost, bytes, now, t, &pushed);
	cr_assert(eq(ptr, pushed, NULL));
	if (v == ADMIT_OK)
		admission_enqueue(a, t);
	return v;
}

/* Pictures of 0.1 s each on a 1 s bound: ten fit (the tenth waits 1.0 s
 * in all), the eleventh is told to come back when the ten are done. */
Test(admission, admits_while_the_predicted_wait_fits)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t[12];
	for (int i = 0; i < 10; i++) {
		cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t[i]), ADMIT_OK), "picture %d", i);
		cr_expect(lt(dbl, fabs(t[i].wait - 0.1 * (i + 1)), 1e-9));
	}
	cr_expect(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t[10]), ADMIT_BUSY));
	cr_expect(eq(u32, t[10].retry, 1)); /* 1.0 s ahead */
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(eq(u32, st.pictures, 10));
	cr_expect(eq(u32, st.waiting, 10));
	admission_destroy(a);

	/* With 0.9 s ahead, a 0.2 s picture is refused and a cheap one is
	 * not: refusals follow the wait, not the count or the order. */
	a = make(1.0, RATE);
	for (int i = 0; i < 9; i++)
		cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t[i]), ADMIT_OK));
	cr_expect(eq(int, admit(a, 1, 0.2 * RATE, 1000, 0, &t[10]), ADMIT_BUSY));
	cr_expect(eq(int, admit(a, 1, 1e3, 1000, 0, &t[11]), ADMIT_OK));
	admission_destroy(a);
}

/* One that alone needs more than the bound is refused at once, even on an
 * idle server, with no promise of a better time. */
Test(admission, too_big_alone)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t;
	cr_expect(eq(int, admit(a, 1, 1.5 * RATE, 1000, 0, &t), ADMIT_TOO_BIG));
	cr_expect(eq(int, admit(a, 1, 0.5 * RATE, 65 * MB, 0, &t), ADMIT_TOO_BIG));
	cr_expect(eq(int, admit(a, 1, 0.99 * RATE, 1000, 0, &t), ADMIT_OK));
	admission_destroy(a);
}

/* Retry-After is the predicted drain time of what is ahead, not a constant. */
Test(admission, retry_after_is_the_drain_time)
{
	struct admission *a = make(2.0, RATE);
	struct admission_ticket t;
	for (int i = 0; i < 7; i++)
		cr_assert(eq(int, admit(a, 1, 0.25 * RATE, 1000, 0, &t), ADMIT_OK));
	cr_expect(eq(int, admit(a, 1, 0.5 * RATE, 1000, 0, &t), ADMIT_BUSY));
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
		cr_assert(eq(int, admit(a, 1, 0.05 * RATE, 1000, now, &t), ADMIT_OK));
		now += 0.1;
		admission_done(a, &t, now, 1);
	}
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(lt(dbl, fabs(st.rate / (RATE / 2) - 1), 0.01), "rate %g", st.rate);
	cr_expect(eq(dbl, st.backlog, 0));
	cr_expect(eq(u32, st.pictures, 0));
	/* Now ten 0.05 s pictures are predicted 0.1 s each: ten fit, not 20. */
	int admitted = 0;
	struct admission_ticket many[30];
	while (admitted < 30 && admit(a, 1, 0.05 * RATE, 1000, now, &many[admitted]) == ADMIT_OK)
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
		cr_assert(eq(int, admit(a, 1, 0.01 * RATE, 1000, now, &t), ADMIT_OK));
		admission_done(a, &t, now + 0.01, 1); /* exactly the calibrated rate */
		now += 5;                             /* then idle */
	}
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(lt(dbl, fabs(st.rate / RATE - 1), 1e-6), "rate %g", st.rate);
	admission_destroy(a);
}

/* Memory and count bounds for one client, and what each refusal says. */
Test(admission, memory_and_count_bounds)
{
	struct admission *a = make(10.0, RATE);
	struct admission_ticket t[3];
	cr_assert(eq(int, admit(a, 1, 1e3, 40 * MB, 0, &t[0]), ADMIT_OK));
	cr_expect(eq(int, admit(a, 1, 1e3, 30 * MB, 0, &t[1]), ADMIT_MEMORY));
	cr_expect(eq(int, admit(a, 1, 1e3, 20 * MB, 0, &t[1]), ADMIT_OK));
	admission_done(a, &t[0], 0.001, 1);
	cr_expect(eq(int, admit(a, 1, 1e3, 30 * MB, 0.001, &t[2]), ADMIT_OK));
	admission_destroy(a);

	struct admission_cfg c = {.max_wait = 1, .rate0 = RATE, .max_bytes = MB, .max_pictures = 2};
	cr_assert(eq(int, admission_create(&a, &c), 0));
	cr_assert(eq(int, admit(a, 1, 1, 1, 0, &t[0]), ADMIT_OK));
	cr_assert(eq(int, admit(a, 1, 1, 1, 0, &t[1]), ADMIT_OK));
	cr_expect(eq(int, admit(a, 1, 1, 1, 0, &t[2]), ADMIT_COUNT));
	cr_expect(eq(int, strncmp(admission_why(ADMIT_COUNT), "busy: --max-inflight", 20), 0));
	cr_expect(eq(int, strncmp(admission_why(ADMIT_TOO_BIG), "too big", 7), 0));
	cr_expect(eq(int, strncmp(admission_why(ADMIT_OVER_SHARE), "too many requests", 17), 0));
	admission_destroy(a);
}

/* A picture admitted but never started gives its cost back and teaches
 * the rate nothing. */
Test(admission, cancel_gives_back_without_measuring)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t;
	cr_assert(eq(int, admit(a, 1, 0.5 * RATE, 1000, 0, &t), ADMIT_OK));
	admission_cancel(a, &t);
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(eq(u32, st.pictures, 0));
	cr_expect(eq(dbl, st.backlog, 0));
	cr_expect(eq(u64, st.bytes, 0));
	cr_expect(eq(dbl, st.rate, RATE));
	cr_expect(eq(u32, st.clients, 0), "nothing admitted: every record forgotten");
	admission_destroy(a);
}

/* The flood: client 1 fills the whole wait budget; client 2, who
 * asks for one picture now and then, is admitted, predicted to wait only
 * for what the pool has and its own picture, and handed to the pool next.
 * The flooder is the one refused: over its share, told its own wait. */
Test(admission, a_flooder_cannot_shut_out_another_client)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket f[20], p, more;
	int n = 0;
	while (n < 20 && admit(a, 1, 0.1 * RATE, 1000, 0, &f[n]) == ADMIT_OK)
		n++;
	cr_assert(eq(int, n, 10), "the flooder alone gets the whole budget");
	/* Two are handed to the pool (running_max 2). */
	cr_assert(eq(ptr, admission_next(a), &f[0]));
	cr_assert(eq(ptr, admission_next(a), &f[1]));
	cr_assert(eq(ptr, admission_next(a), NULL));

	cr_assert(eq(int, admit(a, 2, 0.1 * RATE, 1000, 0, &p), ADMIT_OK),
		  "a client within its share is admitted while another floods");
	cr_expect(lt(dbl, fabs(p.wait - 0.3), 1e-9), "the two running and its own: %g s", p.wait);
	admission_rendered(a, &f[0]);
	admission_done(a, &f[0], 0.1, 1);
	cr_expect(eq(ptr, admission_next(a), &p), "the newcomer goes next, ahead of the flood");

	enum admission_verdict v = admit(a, 1, 0.1 * RATE, 1000, 0.1, &more);
	cr_expect(eq(int, v, ADMIT_OVER_SHARE), "the flooder is refused as over its share");
	cr_expect(eq(u32, more.retry, 1), "Retry-After: its own wait, 0.9 s ahead");
	cr_expect(lt(dbl, 0.8, more.wait));
	admission_destroy(a);
}

/* A client alone past the wait is busy, not over a share it does not have. */
Test(admission, alone_it_is_busy_not_over_share)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t[11];
	for (int i = 0; i < 10; i++)
		cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t[i]), ADMIT_OK));
	cr_expect(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t[10]), ADMIT_BUSY));
	admission_destroy(a);
}

/* The fair queue's order: two clients with pictures waiting alternate,
 * whatever order they came in. */
Test(admission, waiting_clients_alternate)
{
	struct admission *a = make_with(10.0, RATE, 100, 1);
	struct admission_ticket t1[4], t2[4];
	for (int i = 0; i < 4; i++)
		cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t1[i]), ADMIT_OK));
	for (int i = 0; i < 4; i++)
		cr_assert(eq(int, admit(a, 2, 0.1 * RATE, 1000, 0, &t2[i]), ADMIT_OK));
	const struct admission_ticket *want[8] = {&t1[0], &t2[0], &t1[1], &t2[1],
						  &t1[2], &t2[2], &t1[3], &t2[3]};
	double now = 0;
	for (int i = 0; i < 8; i++) {
		struct admission_ticket *t = admission_next(a);
		cr_assert(eq(ptr, t, (void *)want[i]), "picture %d", i);
		cr_expect(eq(ptr, admission_next(a), NULL), "one at a time");
		admission_rendered(a, t);
		now += 0.1;
		admission_done(a, t, now, 1);
	}
	admission_destroy(a);
}

/* Three clients on a fake clock, each offering pictures of 10 ms at its
 * own pace (open loop: a refused picture is lost): A 10/s, B 50/s and C
 * 1000/s on a server that renders 100/s. Max-min fair: A gets all it asks
 * (10/s), B and C split the rest (45/s each). */
Test(admission, shares_are_max_min_fair)
{
	struct admission *a = make_with(1.0, RATE, 1000, 1);
	static struct admission_ticket pool[3][2000];
	unsigned used[3] = {0}, served[3] = {0};
	const double pace[3] = {10, 50, 1000}, cost = 0.01 * RATE;
	double next_offer[3] = {0, 0, 0}, busy_until = 0;
	struct admission_ticket *running = NULL;
	const double dt = 0.0005, end = 20;
	for (double now = 0; now < end; now += dt) {
		for (int c = 0; c < 3; c++) {
			while (next_offer[c] <= now) {
				next_offer[c] += 1 / pace[c];
				cr_assert(lt(u32, used[c], 2000));
				struct admission_ticket *t = &pool[c][used[c]];
				if (admit(a, (unsigned)c + 1, cost, 1000, now, t) == ADMIT_OK)
					used[c]++;
			}
		}
		if (running && now >= busy_until) {
			admission_rendered(a, running);
			admission_done(a, running, now, 1);
			if (now > 5) /* after the start-up */
				served[running >= pool[2] ? 2 : running >= pool[1] ? 1 : 0]++;
			running = NULL;
		}
		if (!running && (running = admission_next(a)))
			busy_until = now + cost / RATE;
	}
	double span = end - 5;
	double got[3] = {served[0] / span, served[1] / span, served[2] / span};
	cr_expect(lt(dbl, fabs(got[0] - 10), 1.5), "A asks 10/s: got %.1f/s", got[0]);
	cr_expect(lt(dbl, fabs(got[1] - 45), 3), "B asks 50/s: got %.1f/s", got[1]);
	cr_expect(lt(dbl, fabs(got[2] - 45), 3), "C floods: got %.1f/s", got[2]);
	admission_destroy(a);
}

/* Count full of one client's waiting pictures: a newcomer's picture
 * pushes the flooder's newest out (answered over share, with its own
 * wait), never one that is running, and never another newcomer's. */
Test(admission, a_full_count_pushes_out_the_largest_holder)
{
	struct admission *a = make_with(100.0, RATE, 4, 1);
	struct admission_ticket f[4], p, q, r;
	for (int i = 0; i < 4; i++)
		cr_assert(eq(int, admit(a, 1, 1e6, 1000, 0, &f[i]), ADMIT_OK));
	cr_assert(eq(ptr, admission_next(a), &f[0]));

	struct admission_ticket *pushed;
	struct cidr_addr k2 = who(2), k3 = who(3), k1 = who(1);
	cr_assert(eq(int, admission_admit(a, &k2, 1e6, 1000, 0, &p, &pushed), ADMIT_OK));
	cr_assert(eq(ptr, pushed, &f[3]), "the flooder's newest waiting picture");
	cr_expect(eq(int, f[3].verdict, ADMIT_OVER_SHARE));
	cr_expect(ge(u32, f[3].retry, 1));
	cr_expect(eq(ptr, f[3].next, NULL));
	admission_enqueue(a, &p);

	cr_assert(eq(int, admission_admit(a, &k3, 1e6, 1000, 0, &q, &pushed), ADMIT_OK));
	cr_assert(eq(ptr, pushed, &f[2]));
	admission_enqueue(a, &q);
	/* Now 1 holds two (one running), 2 and 3 one each: the count is full
	 * and the flooder holds the most of it, so its own next picture is
	 * the one refused, over its share. */
	cr_assert(eq(int, admission_admit(a, &k1, 1e6, 1000, 0, &r, &pushed), ADMIT_OVER_SHARE),
		  "the flooder itself, full: over its share");
	cr_expect(eq(ptr, pushed, NULL));
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(eq(u32, st.pictures, 4));
	admission_destroy(a);
}

/* A waiting picture whose client hangs up is taken back; a running one is
 * not (its render is cancelled instead). */
Test(admission, leave_takes_back_a_waiting_picture)
{
	struct admission *a = make_with(10.0, RATE, 10, 1);
	struct admission_ticket t[2];
	cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t[0]), ADMIT_OK));
	cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t[1]), ADMIT_OK));
	cr_assert(eq(ptr, admission_next(a), &t[0]));
	cr_expect(eq(int, admission_leave(a, &t[0]), 0));
	cr_expect(eq(int, admission_leave(a, &t[1]), 1));
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(eq(u32, st.pictures, 1));
	cr_expect(eq(u32, st.waiting, 0));
	admission_done(a, &t[0], 0.1, 1);
	admission_stats(a, &st);
	cr_expect(eq(u32, st.pictures, 0));
	admission_destroy(a);
}

/* 20,000 distinct clients (spoofed /64s, say) pass while one picture
 * holds the server busy: the records stay within max_pictures +
 * ADMISSION_IDLE_MAX, and admission still works. */
Test(admission, client_state_is_bounded)
{
	struct admission *a = make_with(1000.0, RATE, 8, 1);
	struct admission_ticket hold, t;
	cr_assert(eq(int, admit(a, 0, 1e6, 1000, 0, &hold), ADMIT_OK));
	cr_assert(eq(ptr, admission_next(a), &hold));
	unsigned most = 0;
	for (unsigned i = 1; i <= 20000; i++) {
		cr_assert(eq(int, admit(a, i, 1e6, 1000, 0, &t), ADMIT_OK), "client %u", i);
		admission_cancel(a, &t);
		struct admission_stats st;
		admission_stats(a, &st);
		if (st.clients > most)
			most = st.clients;
	}
	cr_expect(le(u32, most, 8 + ADMISSION_IDLE_MAX), "%u records", most);
	admission_done(a, &hold, 1, 1);
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(eq(u32, st.clients, 0));
	admission_destroy(a);
}

/* The fair share now, in seconds of the wait budget: the whole bound when
 * nobody contends; split when two fill it. */
Test(admission, the_fair_share_is_reported)
{
	struct admission *a = make_with(1.0, RATE, 100, 1);
	struct admission_ticket t[20];
	struct admission_stats st;
	admission_stats(a, &st);
	cr_expect(eq(dbl, st.fair_share, 1.0));
	int n = 0;
	while (n < 10 && admit(a, 1, 0.1 * RATE, 1000, 0, &t[n]) == ADMIT_OK)
		n++;
	while (n < 20 && admit(a, 2, 0.1 * RATE, 1000, 0, &t[n]) == ADMIT_OK)
		n++;
	admission_stats(a, &st);
	cr_expect(eq(u32, st.holding, 2));
	cr_expect(lt(dbl, fabs(st.fair_share - 0.5), 0.11), "share %g s", st.fair_share);
	admission_destroy(a);
}

/* A client refused again before the Retry-After it was given is early:
 * its refusal may be held, for half its own wait (at most
 * ADMISSION_HOLD_MAX); the first refusal, and one after the Retry-After,
 * are answered at once. */
Test(admission, an_early_repeat_is_held)
{
	struct admission *a = make(1.0, RATE);
	struct admission_ticket t[10], r;
	for (int i = 0; i < 10; i++)
		cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &t[i]), ADMIT_OK));
	cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0, &r), ADMIT_BUSY));
	cr_expect(eq(dbl, r.hold, 0), "the first refusal is answered at once");
	cr_expect(eq(u32, r.retry, 1));
	cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 0.2, &r), ADMIT_BUSY));
	cr_expect(lt(dbl, fabs(r.hold - 0.5), 1e-9), "held %g s: half of 1 s ahead", r.hold);
	cr_assert(eq(int, admit(a, 1, 0.1 * RATE, 1000, 1.01, &r), ADMIT_BUSY));
	cr_expect(eq(dbl, r.hold, 0), "after its Retry-After it may ask");
	/* Another client, never refused, is not held either (it is admitted). */
	cr_expect(eq(int, admit(a, 2, 0.1 * RATE, 1000, 1.02, &r), ADMIT_OK));
	admission_destroy(a);
}
