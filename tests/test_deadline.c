/* test_deadline.c - server/deadline.c: a window's end on its own thread,
 * and what a second asker is told meanwhile. Suite "deadline". */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <semaphore.h>
#include <time.h>

#include "server/deadline.h"

static sem_t fired, release;

static void fire(void *ctx)
{
	(void)ctx;
	sem_post(&fired);
	sem_wait(&release); /* as slow as the test wants: a profile being encoded */
}

Test(deadline, a_window_ends_at_its_time_or_at_once_when_hurried)
{
	struct deadline *d;
	sem_init(&fired, 0, 0);
	sem_init(&release, 0, 0);
	cr_assert(eq(int, deadline_create(&d, "test-timer", fire), 0));
	deadline_after(d, 20ull * 1000000000u, &d);
	unsigned ra = deadline_retry_after(d);
	cr_expect(ge(u32, ra, 20), "Retry-After %u of a 20 s window", ra);
	cr_expect(le(u32, ra, 21));
	/* Its client hung up: the window ends now; until it has, a second
	 * asker is told 1 s, not the 20 the window was armed for. */
	deadline_hurry(d);
	cr_expect(eq(u32, deadline_retry_after(d), 1));
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	cr_expect(eq(int, sem_timedwait(&fired, &until), 0), "fired at once");
	sem_post(&release);
	deadline_destroy(d);
}
