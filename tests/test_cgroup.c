/* test_cgroup.c - a container's limits (server/cgroup.c) read from fake
 * cgroup trees (v2, v1, a container's own mount, a parent's limit), and
 * the configuration fitted to them (config_fit); end to end, the server
 * started inside a real cgroup where one can be made. Suite "cgroup". */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/cgroup.h"
#include "server/config.h"
#include "tests/harness.h"

static char root[64];

/* Writes text to root/path, making its directories. */
static void put(const char *path, const char *text)
{
	char full[512];
	snprintf(full, sizeof full, "%s%s", root, path);
	for (char *p = full + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(full, 0755);
		*p = '/';
	}
	FILE *f = fopen(full, "w");
	cr_assert(not(eq(ptr, f, NULL)), "%s", full);
	fputs(text, f);
	fclose(f);
}

static void fresh(void)
{
	snprintf(root, sizeof root, "/tmp/mw-cgroup-XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(root), NULL)));
}

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	cr_expect(eq(int, system(cmd), 0));
}

/* cgroup v2: the process's own cgroup and its ancestors; the smallest
 * limit of each kind counts. */
Test(cgroup, v2_the_smallest_limit_up_the_tree, .fini = cleanup)
{
	fresh();
	put("/proc/self/cgroup", "0::/kubepods/pod1/c1\n");
	put("/proc/self/mountinfo",
	    "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
	    "30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
	put("/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "max 100000\n");
	put("/sys/fs/cgroup/kubepods/pod1/c1/memory.max", "max\n");
	put("/sys/fs/cgroup/kubepods/pod1/cpu.max", "150000 100000\n");
	put("/sys/fs/cgroup/kubepods/pod1/memory.max", "536870912\n");
	put("/sys/fs/cgroup/kubepods/cpu.max", "400000 100000\n");
	put("/sys/fs/cgroup/kubepods/memory.max", "1073741824\n");
	struct cgroup_limits l;
	cr_assert(eq(int, cgroup_read(root, &l), 0));
	cr_expect(eq(dbl, l.cpus, 1.5));
	cr_expect(eq(u64, l.memory, 536870912));
	cr_expect(eq(str, l.cpu_file, "/sys/fs/cgroup/kubepods/pod1/cpu.max"));
}

/* A container with its own cgroup namespace sees its cgroup as the
 * mount's root ("/"); v1 with cpu,cpuacct joined and a huge "no limit". */
Test(cgroup, v1_in_a_container, .fini = cleanup)
{
	fresh();
	put("/proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n");
	put("/proc/self/mountinfo",
	    "40 30 0:35 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n"
	    "41 30 0:36 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n");
	put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
	put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
	put("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	struct cgroup_limits l;
	cr_assert(eq(int, cgroup_read(root, &l), 0));
	cr_expect(eq(dbl, l.cpus, 0.5));
	cr_expect(eq(u64, l.memory, 0), "no memory limit");
}

Test(cgroup, no_cgroup_no_limit, .fini = cleanup)
{
	fresh();
	struct cgroup_limits l;
	cr_expect(eq(int, cgroup_read(root, &l), -ENOENT));
	put("/proc/self/cgroup", "0::/\n");
	put("/proc/self/mountinfo", "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	put("/sys/fs/cgroup/cpu.max", "garbage\n");
	cr_assert(eq(int, cgroup_read(root, &l), 0));
	cr_expect(eq(dbl, l.cpus, 0));
	cr_expect(eq(u64, l.memory, 0));
}

static struct config parsed(const char *const *args)
{
	struct config c;
	char *argv[16] = {"mandelweb"};
	int n = 1;
	for (; args && args[n - 1]; n++)
		argv[n] = (char *)args[n - 1];
	FILE *null = fopen("/dev/null", "w");
	cr_assert(eq(int, config_parse(&c, n, argv, null, null), 0));
	fclose(null);
	return c;
}

/* The workers come from the CPU limit, rounded up, unless given; what
 * derives from them follows. */
Test(cgroup, workers_fit_the_cpu_limit)
{
	struct config c = parsed((const char *const[]){"--workers", "8", NULL});
	struct cgroup_limits l = {.cpus = 0.5};
	FILE *null = fopen("/dev/null", "w");
	config_fit(&c, &l, null);
	cr_expect(eq(u32, c.workers, 8), "given: kept");
	c = parsed(NULL);
	c.workers = 8; /* as on an 8-CPU node */
	l.cpus = 2.5;
	config_fit(&c, &l, null);
	cr_expect(eq(u32, c.workers, 3));
	cr_expect(eq(u32, c.max_inflight, 64 * 3));
	cr_expect(eq(u32, c.queue, 64 * 3 * 3));
	fclose(null);
}

/* Past the memory limit, the bounds no flag set scale down until the
 * ceiling fits 90% of it; a given one is kept; the log says both. */
Test(cgroup, memory_bounds_fit_the_memory_limit)
{
	char *text = NULL;
	size_t len = 0;
	FILE *log = open_memstream(&text, &len);
	struct config c = parsed((const char *const[]){"--max-send-mb", "40", NULL});
	struct cgroup_limits l = {.memory = 256u << 20};
	snprintf(l.memory_file, sizeof l.memory_file, "/sys/fs/cgroup/memory.max");
	cr_assert(lt(u64, (uint64_t)(l.memory * CONFIG_MEMORY_SHARE), config_memory_ceiling(&c)));
	config_fit(&c, &l, log);
	fclose(log);
	cr_expect(le(u64, config_memory_ceiling(&c), (uint64_t)(l.memory * CONFIG_MEMORY_SHARE)));
	cr_expect(lt(u64, (uint64_t)(l.memory * 0.8), config_memory_ceiling(&c)), "not scaled more than it must");
	cr_expect(eq(u32, c.max_send_mb, 40));
	cr_expect(lt(u32, c.cache_mb, 64));
	cr_expect(lt(u32, c.max_render_mb, 256));
	cr_expect(not(eq(ptr, strstr(text, "memory limit 256 MiB (/sys/fs/cgroup/memory.max)"), NULL)), "%s", text);
	cr_expect(eq(ptr, strstr(text, "--max-send-mb"), NULL), "%s", text);
	cr_expect(eq(ptr, strstr(text, "may be killed"), NULL), "%s", text);
	free(text);

	/* Given bounds that alone pass it: said. */
	log = open_memstream(&text, &len);
	c = parsed((const char *const[]){"--cache-mb", "300", NULL});
	config_fit(&c, &l, log);
	fclose(log);
	cr_expect(not(eq(ptr, strstr(text, "may be killed for memory"), NULL)), "%s", text);
	free(text);
}

/* The server started in a real cgroup with a half-CPU quota and a 200 MiB
 * limit: one worker, the bounds scaled, said at start. Where no cgroup can
 * be made (not root, no cgroupfs), skipped with the reason. */
Test(cgroup, the_server_fits_a_real_cgroup, .timeout = 60)
{
	char cpu[128], mem[128], path[256];
	snprintf(cpu, sizeof cpu, "/sys/fs/cgroup/cpu/mw-test-%d", getpid());
	snprintf(mem, sizeof mem, "/sys/fs/cgroup/memory/mw-test-%d", getpid());
	if (mkdir(cpu, 0755) < 0 || mkdir(mem, 0755) < 0) {
		rmdir(cpu);
		cr_skip_test("no cgroup v1 cpu and memory hierarchy to make a group in (%s)", strerror(errno));
	}
	snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", cpu);
	FILE *f = fopen(path, "w");
	cr_assert(not(eq(ptr, f, NULL)));
	fputs("50000", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/memory.limit_in_bytes", mem);
	f = fopen(path, "w");
	cr_assert(not(eq(ptr, f, NULL)));
	fprintf(f, "%u", 200u << 20);
	fclose(f);
	/* The child joins the groups before it execs (harness: sh -c). */
	char join[512];
	snprintf(join, sizeof join, "echo $$ > %s/cgroup.procs && echo $$ > %s/cgroup.procs && exec \"$0\" \"$@\"",
		 cpu, mem);
	struct mw srv;
	cr_assert(eq(int, mw_start_via(&srv, join, NULL), 0));
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_workers"), 1));
	double ceiling = mw_scrape(&srv, "mandelweb_memory_ceiling_bytes");
	cr_expect(le(dbl, ceiling, (200u << 20) * CONFIG_MEMORY_SHARE), "%g", ceiling);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
	char *log = mw_log(&srv);
	cr_expect(not(eq(ptr, strstr(log, "CPU limit 0.50"), NULL)), "%s", log);
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		cr_expect(not(eq(ptr, strstr(log, "--workers 1, not"), NULL)), "%s", log);
	cr_expect(not(eq(ptr, strstr(log, "memory limit 200 MiB"), NULL)), "%s", log);
	free(log);
	rmdir(cpu);
	rmdir(mem);
}
