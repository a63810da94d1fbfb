/*
 * slowtrace.h - --trace-slow: catching the slow request. With the flight
 * recorder on, when a request takes longer than --trace-slow, the last few
 * seconds of trace are saved to --trace-dir (one file per
 * --trace-slow-every at most, --trace-keep files at most, the oldest
 * deleted first), each named by the time and the request:
 * mandelweb-slow-20261202T154512.345Z-req1234.json.
 *
 * Owns: a saver thread, so that no HTTP thread writes a file; one pending
 * save at a time (a slow request while one is pending or too soon after
 * the last is skipped, and counted).
 *
 * Thread-safety: slowtrace_request and slowtrace_stats from any thread.
 */
#ifndef MW_SLOWTRACE_H
#define MW_SLOWTRACE_H

#include <stdint.h>

struct slowtrace;

/* 0 or -errno (the directory is not writable: -EACCES and the like). */
int slowtrace_create(struct slowtrace **out, const char *dir, double slow_s, double every_s,
		     unsigned keep);
void slowtrace_destroy(struct slowtrace *t); /* NULL is a no-op */

/* Request id on route took seconds: a save is queued when it is slow and
 * one is due. Cheap when it is not. */
void slowtrace_request(struct slowtrace *t, uint64_t id, double seconds);

struct slowtrace_stats {
	uint64_t saved;   /* files written */
	uint64_t skipped; /* slow requests not saved: one pending, too soon, or a trace being taken */
	uint64_t failed;  /* saves that could not write their file */
};
void slowtrace_stats(struct slowtrace *t, struct slowtrace_stats *s);

#endif
