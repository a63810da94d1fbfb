/* cgroup.c - see cgroup.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cgroup.h"

#define PATH_MAX_ 512

/* A path kept for the log, cut if it must be. */
static void keep(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* The first line of a small file, without its newline: 0 or -1. */
static int first_line(const char *root, const char *path, char *buf, size_t len)
{
	char full[PATH_MAX_ * 2];
	snprintf(full, sizeof full, "%s%s", root, path);
	FILE *f = fopen(full, "re");
	if (!f)
		return -1;
	int ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Whether the comma-separated list csv (cut in place) names name. */
static int names(char *csv, const char *name)
{
	int has = 0;
	for (char *save = NULL, *o = strtok_r(csv, ",", &save); o; o = strtok_r(NULL, ",", &save))
		has |= strcmp(o, name) == 0;
	return has;
}

/* Where the hierarchy holding controller (v1: "cpu", "memory"; v2: NULL)
 * is mounted, and the cgroup path that mount's root stands for. */
static int mount_of(const char *root, const char *controller, char *mnt, char *mroot)
{
	char full[PATH_MAX_], line[2048];
	snprintf(full, sizeof full, "%s/proc/self/mountinfo", root);
	FILE *f = fopen(full, "re");
	if (!f)
		return -1;
	int found = -1;
	while (found < 0 && fgets(line, sizeof line, f)) {
		/* id parent major:minor root mountpoint options [tags...] - type source superoptions */
		char r[PATH_MAX_], m[PATH_MAX_];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %511s %511s", r, m) != 2)
			continue;
		char type[32], super[512] = "";
		if (sscanf(dash + 3, "%31s %*s %511s", type, super) < 1)
			continue;
		if (!controller ? strcmp(type, "cgroup2") == 0 : strcmp(type, "cgroup") == 0) {
			if (controller && !names(super, controller)) /* its super options name them */
				continue;
			snprintf(mnt, PATH_MAX_, "%s", m);
			snprintf(mroot, PATH_MAX_, "%s", r);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

/* The process's cgroup path in the hierarchy holding controller (v2:
 * the "0::" line), from /proc/self/cgroup. */
static int path_of(const char *root, const char *controller, char *path)
{
	char full[PATH_MAX_], line[1024];
	snprintf(full, sizeof full, "%s/proc/self/cgroup", root);
	FILE *f = fopen(full, "re");
	if (!f)
		return -1;
	int found = -1;
	while (found < 0 && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = '\0'; /* hierarchy id : controllers : path */
		if (!controller ? strcmp(line, "0") == 0 && c1 + 1 == c2 : names(c1 + 1, controller)) {
			snprintf(path, PATH_MAX_, "%s", c2 + 1);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

/* Calls each(dir) for the process's cgroup directory of controller and
 * each ancestor up to the mount point. */
static void walk(const char *root, const char *controller,
		 void (*each)(const char *root, const char *dir, void *cls), void *cls)
{
	char mnt[PATH_MAX_], mroot[PATH_MAX_], path[PATH_MAX_], dir[PATH_MAX_ * 2];
	if (mount_of(root, controller, mnt, mroot) < 0 || path_of(root, controller, path) < 0)
		return;
	size_t rl = strlen(mroot);
	const char *rel = path;
	/* A container's mount stands for its own cgroup: the path is then
	 * inside the mount's root. */
	if (strcmp(mroot, "/") != 0 && strncmp(path, mroot, rl) == 0 && (path[rl] == '/' || !path[rl]))
		rel = path + rl;
	snprintf(dir, sizeof dir, "%s%s", mnt, rel);
	size_t base = strlen(mnt);
	for (;;) {
		size_t n = strlen(dir);
		while (n > base && dir[n - 1] == '/')
			dir[--n] = '\0';
		each(root, dir, cls);
		if (n <= base)
			break;
		char *slash = strrchr(dir, '/');
		if (!slash || (size_t)(slash - dir) < base)
			dir[base] = '\0';
		else
			*slash = '\0';
	}
}

static void cpu_v2(const char *root, const char *dir, void *cls)
{
	struct cgroup_limits *l = cls;
	char path[PATH_MAX_ * 2 + 16], v[128], quota[64];
	double period;
	snprintf(path, sizeof path, "%s/cpu.max", dir);
	if (first_line(root, path, v, sizeof v) < 0 || sscanf(v, "%63s %lf", quota, &period) != 2 ||
	    strcmp(quota, "max") == 0 || !(period > 0))
		return;
	double cpus = strtod(quota, NULL) / period;
	if (cpus > 0 && (l->cpus == 0 || cpus < l->cpus)) {
		l->cpus = cpus;
		keep(l->cpu_file, sizeof l->cpu_file, path);
	}
}

static void cpu_v1(const char *root, const char *dir, void *cls)
{
	struct cgroup_limits *l = cls;
	char path[PATH_MAX_ * 2 + 32], v[64];
	snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
	if (first_line(root, path, v, sizeof v) < 0)
		return;
	double period = strtod(v, NULL);
	snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
	if (first_line(root, path, v, sizeof v) < 0)
		return;
	double quota = strtod(v, NULL); /* -1: none */
	if (quota > 0 && period > 0 && (l->cpus == 0 || quota / period < l->cpus)) {
		l->cpus = quota / period;
		keep(l->cpu_file, sizeof l->cpu_file, path);
	}
}

/* A memory limit file (memory.max, memory.limit_in_bytes). v1 says "no
 * limit" with the largest page-aligned 63-bit value; anything from 2^60 on
 * is taken as none. */
static void memory_in(const char *root, const char *dir, const char *name, struct cgroup_limits *l)
{
	char path[PATH_MAX_ * 2 + 32], v[64], *end;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (first_line(root, path, v, sizeof v) < 0 || strcmp(v, "max") == 0)
		return;
	errno = 0;
	unsigned long long b = strtoull(v, &end, 10);
	if (errno || end == v || b == 0 || b >= (1ull << 60))
		return;
	if (l->memory == 0 || b < l->memory) {
		l->memory = b;
		keep(l->memory_file, sizeof l->memory_file, path);
	}
}

static void memory_v2(const char *root, const char *dir, void *cls)
{
	memory_in(root, dir, "memory.max", cls);
}

static void memory_v1(const char *root, const char *dir, void *cls)
{
	memory_in(root, dir, "memory.limit_in_bytes", cls);
}

int cgroup_read(const char *root, struct cgroup_limits *out)
{
	char line[256];
	memset(out, 0, sizeof *out);
	if (first_line(root, "/proc/self/cgroup", line, sizeof line) < 0)
		return -ENOENT;
	walk(root, NULL, cpu_v2, out);
	walk(root, NULL, memory_v2, out);
	if (!out->cpu_file[0])
		walk(root, "cpu", cpu_v1, out);
	if (!out->memory_file[0])
		walk(root, "memory", memory_v1, out);
	return 0;
}
