/*
 * cgroup.h - the CPU and memory a container gives this process: the
 * cgroup's CPU bandwidth limit and memory limit, so the service sizes its
 * workers and its memory bounds to the container rather than the node (as
 * Go 1.25's runtime sizes GOMAXPROCS).
 *
 * Read: the process's cgroup from /proc/self/cgroup, where its hierarchy
 * is mounted from /proc/self/mountinfo, then, from that cgroup up to the
 * mount's root, cgroup v2's cpu.max ("QUOTA PERIOD" or "max PERIOD") and
 * memory.max (bytes or "max"), or v1's cpu.cfs_quota_us / cpu.cfs_period_us
 * (-1: none) and memory.limit_in_bytes (a huge value: none). The smallest
 * along the way counts: a parent's limit binds its children.
 *
 * Owns nothing. Thread-safety: any thread (it only reads files); meant
 * for start-up.
 */
#ifndef MW_CGROUP_H
#define MW_CGROUP_H

#include <stdint.h>

struct cgroup_limits {
	double cpus;          /* quota / period, in CPUs; 0: no limit */
	uint64_t memory;      /* bytes; 0: no limit */
	char cpu_file[200];   /* the file the CPU limit came from ("" if none) */
	char memory_file[200];
};

/* The limits of the calling process. root prefixes every path opened
 * ("" for the real /; the tests build a tree under a directory). Returns
 * 0 (with none found, both 0), or -errno when /proc/self/cgroup cannot be
 * read. */
int cgroup_read(const char *root, struct cgroup_limits *out);

#endif
