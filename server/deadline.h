/*
 * deadline.h - ends a /debug/ window without blocking an HTTP thread: one
 * thread per deadline waits until the armed time (or a hurry), then runs
 * the owner's fire(ctx). The trace route has one, the profile route one.
 *
 * Owns: its thread (named at creation, started with the server, asleep
 * until armed). One window at a time: arming again replaces what was armed
 * (the routes allow one session at a time already).
 *
 * Thread-safety: deadline_after, deadline_hurry and deadline_retry_after
 * from any thread; fire runs on the deadline's thread, outside its lock.
 */
#ifndef MW_DEADLINE_H
#define MW_DEADLINE_H

#include <stdint.h>

struct deadline;

/* Starts the thread (named name: at most 15 bytes); fire(ctx) is what an
 * armed window's end runs. 0 or -errno. */
int deadline_create(struct deadline **out, const char *name, void (*fire)(void *ctx));
void deadline_destroy(struct deadline *d); /* stops the thread; NULL is a no-op */

/* Runs fire(ctx) on the deadline's thread ns nanoseconds from now. */
void deadline_after(struct deadline *d, uint64_t ns, void *ctx);
/* Ends the armed window now (a hang-up, shutdown). */
void deadline_hurry(struct deadline *d);
/* Whole seconds until the armed window ends, at least 1 (Retry-After);
 * 1 once hurried. */
unsigned deadline_retry_after(struct deadline *d);

#endif
