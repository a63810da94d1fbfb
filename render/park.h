/*
 * park.h - sleeping on a 32-bit word until another thread changes it:
 * futex(2) on Linux; elsewhere a mutex and condition variable stand in
 * (correct, slower: every wake takes the lock).
 *
 * park_wait(w, v) sleeps while *w == v (it may return spuriously: callers
 * re-check in a loop); park_wake(w, n) wakes at most n sleepers on w and
 * returns how many it woke.
 * Used by the pool and the channel (chan.c). Thread-safe.
 */
#ifndef MW_PARK_H
#define MW_PARK_H

#include <limits.h>
#include <stdatomic.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline void park_wait(atomic_int *w, int v)
{
	syscall(SYS_futex, (int *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static inline int park_wake(atomic_int *w, int n)
{
	long woke = syscall(SYS_futex, (int *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
	return woke > 0 ? (int)woke : 0;
}
#else
#include <pthread.h>

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;

static inline void park_wait(atomic_int *w, int v)
{
	pthread_mutex_lock(&park_mu);
	if (atomic_load(w) == v)
		pthread_cond_wait(&park_cv, &park_mu);
	pthread_mutex_unlock(&park_mu);
}

static inline int park_wake(atomic_int *w, int n)
{
	(void)w;
	pthread_mutex_lock(&park_mu);
	pthread_cond_broadcast(&park_cv); /* every word shares one condition */
	pthread_mutex_unlock(&park_mu);
	return n; /* not known: say it woke them */
}
#endif

/* A pause for spin-waits: tells the CPU it is a spin (x86 PAUSE, arm YIELD). */
static inline void park_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
