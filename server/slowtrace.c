/* slowtrace.c - saving the trace of a slow request (see slowtrace.h). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/sleeper.h"
#include "server/slowtrace.h"
#include "trace/capture.h"

#define PREFIX "mandelweb-slow-"
#define WINDOW_MIN_NS 5000000000u  /* the last 5 s at least: what led up to it */
#define WINDOW_MAX_NS 60000000000u

struct slowtrace {
	struct sleeper th; /* its mutex guards what follows */
	char dir[256];
	double slow, every;
	unsigned keep;
	int pending;
	uint64_t id;       /* the pending save's request */
	double seconds;    /* and how long it took */
	double last;       /* when the last save was queued (monotonic seconds); < 0: never */
	struct slowtrace_stats st;
};

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int ours(const struct dirent *e)
{
	size_t n = strlen(e->d_name);
	return strncmp(e->d_name, PREFIX, strlen(PREFIX)) == 0 && n > 5 &&
	       strcmp(e->d_name + n - 5, ".json") == 0;
}

/* Deletes the oldest saves (their names sort by time) beyond keep. */
static void prune(struct slowtrace *t)
{
	struct dirent **list;
	int n = scandir(t->dir, &list, ours, by_name);
	for (int i = 0; i < n; i++) {
		if (n - i > (int)t->keep) {
			char path[512];
			snprintf(path, sizeof path, "%s/%s", t->dir, list[i]->d_name);
			unlink(path);
			strcpy(path + strlen(path) - 5, ".txt"); /* its summary */
			unlink(path);
		}
		free(list[i]);
	}
	if (n >= 0)
		free(list);
}

/* Writes the flight recorder's last window for request id: 0, 1 when a
 * trace was being taken (skipped), or -1 when the file could not be
 * written. */
static int save(struct slowtrace *t, uint64_t id, double seconds)
{
	uint64_t ns = (uint64_t)(seconds * 2e9);
	ns = ns < WINDOW_MIN_NS ? WINDOW_MIN_NS : ns > WINDOW_MAX_NS ? WINDOW_MAX_NS : ns;
	struct trace_capture *c;
	if (trace_capture_last(&c, ns) < 0)
		return 1; /* -EBUSY: someone is taking a trace; -ENODATA: no flight recorder */
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	char stamp[32], path[512], part[520];
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
	snprintf(path, sizeof path, "%s/" PREFIX "%s.%03ldZ-req%llu.json", t->dir, stamp,
		 now.tv_nsec / 1000000, (unsigned long long)id);
	snprintf(part, sizeof part, "%s.part", path);
	FILE *f = fopen(part, "w");
	int rc = f ? 0 : -1;
	static char buf[1 << 16];
	size_t n;
	while ((n = trace_capture_read(c, buf, sizeof buf)) > 0)
		if (f && fwrite(buf, 1, n, f) != n)
			rc = -1;
	/* Beside it, the same window's summary (the slowest requests' anatomy
	 * among it), read again from the rings: best effort. */
	char txt[512];
	snprintf(txt, sizeof txt, "%.*s.txt", (int)strlen(path) - 5, path);
	FILE *s = rc == 0 ? fopen(txt, "w") : NULL;
	if (s) {
		trace_capture_rewind(c);
		trace_capture_format(c, TRACE_FORMAT_SUMMARY);
		while ((n = trace_capture_read(c, buf, sizeof buf)) > 0)
			fwrite(buf, 1, n, s);
		fclose(s);
	}
	trace_capture_free(c);
	if (f && fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(part, path) != 0)
		rc = -1;
	if (rc < 0)
		unlink(part);
	else
		prune(t);
	return rc;
}

static void *saver_main(void *arg)
{
	struct slowtrace *t = arg;
	pthread_setname_np(pthread_self(), "trace-slow");
	pthread_mutex_lock(&t->th.mu);
	while (!t->th.stop) {
		if (!t->pending) {
			sleeper_wait(&t->th, NULL);
			continue;
		}
		uint64_t id = t->id;
		double seconds = t->seconds;
		pthread_mutex_unlock(&t->th.mu);
		int rc = save(t, id, seconds);
		pthread_mutex_lock(&t->th.mu);
		t->pending = 0;
		if (rc == 0)
			t->st.saved++;
		else if (rc > 0)
			t->st.skipped++;
		else
			t->st.failed++;
	}
	pthread_mutex_unlock(&t->th.mu);
	return NULL;
}

int slowtrace_create(struct slowtrace **out, const char *dir, double slow_s, double every_s,
		     unsigned keep)
{
	if (access(dir, W_OK | X_OK) != 0)
		return -errno;
	struct slowtrace *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	snprintf(t->dir, sizeof t->dir, "%s", dir);
	t->slow = slow_s;
	t->every = every_s;
	t->keep = keep;
	t->last = -1;
	int rc = sleeper_start(&t->th, saver_main, t);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void slowtrace_destroy(struct slowtrace *t)
{
	if (!t)
		return;
	sleeper_stop(&t->th);
	free(t);
}

void slowtrace_request(struct slowtrace *t, uint64_t id, double seconds)
{
	if (!t || seconds <= t->slow)
		return;
	double now = mono_s();
	pthread_mutex_lock(&t->th.mu);
	if (t->pending || (t->last >= 0 && now - t->last < t->every)) {
		t->st.skipped++;
	} else {
		t->pending = 1;
		t->id = id;
		t->seconds = seconds;
		t->last = now;
		pthread_cond_signal(&t->th.cond);
	}
	pthread_mutex_unlock(&t->th.mu);
}

void slowtrace_stats(struct slowtrace *t, struct slowtrace_stats *s)
{
	if (!t) {
		*s = (struct slowtrace_stats){0};
		return;
	}
	pthread_mutex_lock(&t->th.mu);
	*s = t->st;
	pthread_mutex_unlock(&t->th.mu);
}
