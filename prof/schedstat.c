/*
 * schedstat.c - what the kernel says of each thread's scheduling, from
 * /proc: time on a CPU and runnable (schedstat), context switches
 * (status), its name (comm). For the block profile (block.c) and the
 * server's scheduler metrics. See prof.h.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prof/internal.h"

uint64_t prof_parse_u64(const char **p)
{
	uint64_t v = 0;
	while (**p == ' ' || **p == '\t' || **p == '\n')
		(*p)++;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (uint64_t)(*(*p)++ - '0');
	return v;
}

int prof_schedstat_fd(int fd, uint64_t *oncpu, uint64_t *runnable)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	const char *p = buf;
	*oncpu = prof_parse_u64(&p);
	*runnable = prof_parse_u64(&p);
	return 0;
}

int prof_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return 0;
}

static uint64_t status_field(const char *status, const char *name)
{
	const char *p = strstr(status, name);
	if (!p)
		return 0;
	p += strlen(name);
	return prof_parse_u64(&p);
}

static int sched_read(int tid, struct prof_sched *s, int switches)
{
	char path[64], buf[2048];
	memset(s, 0, sizeof *s);
	if (tid)
		snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
	else
		snprintf(path, sizeof path, "/proc/thread-self/schedstat");
	if (prof_read_file(path, buf, sizeof buf) < 0)
		return -1;
	const char *p = buf;
	s->oncpu = prof_parse_u64(&p);
	s->runnable = prof_parse_u64(&p);
	if (!switches)
		return 0;
	if (tid)
		snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
	else
		snprintf(path, sizeof path, "/proc/thread-self/status");
	if (prof_read_file(path, buf, sizeof buf) == 0) {
		s->vol = status_field(buf, "\nvoluntary_ctxt_switches:");
		s->invol = status_field(buf, "\nnonvoluntary_ctxt_switches:");
	}
	return 0;
}

int prof_sched_read(int tid, struct prof_sched *s)
{
	return sched_read(tid, s, 1);
}

void prof_thread_name(int tid, char *name, size_t len)
{
	char path[64], buf[32];
	snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
	if (prof_read_file(path, buf, sizeof buf) < 0)
		snprintf(buf, sizeof buf, "%d", tid);
	buf[strcspn(buf, "\n")] = 0;
	buf[len - 1 < sizeof buf ? len - 1 : sizeof buf - 1] = 0;
	memcpy(name, buf, strlen(buf) + 1);
}

int *prof_tasks(size_t *n)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int *tids = NULL;
	size_t cap = 0;
	*n = 0;
	while (d && (e = readdir(d))) {
		int tid = atoi(e->d_name);
		if (tid <= 0)
			continue;
		int *q = prof_grow(tids, &cap, *n + 1, sizeof *tids, 64);
		if (!q)
			break; /* out of memory: the threads seen so far */
		tids = q;
		tids[(*n)++] = tid;
	}
	if (d)
		closedir(d);
	return tids;
}

void prof_sched_classes(const char *const *prefix, unsigned n, struct prof_sched *sum)
{
	memset(sum, 0, (n + 1) * sizeof *sum);
	size_t ntids;
	int *tids = prof_tasks(&ntids);
	for (size_t i = 0; i < ntids; i++) {
		int tid = tids[i];
		struct prof_sched s;
		char name[16];
		if (sched_read(tid, &s, 0) < 0)
			continue;
		prof_thread_name(tid, name, sizeof name);
		unsigned c = 0;
		while (c < n && strncmp(name, prefix[c], strlen(prefix[c])) != 0)
			c++;
		sum[c].oncpu += s.oncpu;
		sum[c].runnable += s.runnable;
		sum[c].threads++;
	}
	free(tids);
}
