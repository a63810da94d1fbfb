/* test_cli_faults.c - bin/mandelbrot's failure paths, in the real binary:
 * an allocation that fails (tests/failcalloc.c, LD_PRELOAD) and a file
 * that cannot be written. Suite "cli_faults" (not run under emulated CPUs:
 * the shim is built for this one). Clean under ASan means: no sanitizer
 * report on stderr, and the exit status the run asked for. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "trace/window.h"

/* Runs command (sh -c) with env prepended; its exit status, and stderr
 * (up to cap bytes) in out. */
static int run(const char *env, const char *args, char *out, size_t cap)
{
	char cmd[1024], errf[] = "/tmp/mw-cli-faults-XXXXXX";
	int fd = mkstemp(errf);
	cr_assert(ge(int, fd, 0));
	close(fd);
	snprintf(cmd, sizeof cmd, "%s %s/mandelbrot %s 2>%s >/dev/null", env, MW_BIN, args, errf);
	int st = system(cmd);
	mw_slurp(errf, out, cap);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void no_sanitizer_report(const char *err)
{
	cr_expect(eq(ptr, strstr(err, "AddressSanitizer"), NULL), "%s", err);
	cr_expect(eq(ptr, strstr(err, "LeakSanitizer"), NULL), "%s", err);
	cr_expect(eq(ptr, strstr(err, "runtime error"), NULL), "%s", err);
}

/* The trace cannot be opened (its capture's calloc fails): exit 1 with the
 * reason, after freeing what was set up. It used to jump past the
 * profile's declaration and free whatever its stack slot held. */
Test(cli_faults, a_trace_that_cannot_open_exits_1_cleanly, .timeout = 60)
{
	char env[256], err[8192];
	snprintf(env, sizeof env,
		 "FAILCALLOC_SIZE=%zu LD_PRELOAD=%s/tests/failcalloc.so "
		 "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1",
		 sizeof(struct trace_capture), MW_BUILD);
	int rc = run(env, "-w 32 -h 32 -mode row -workers 2 -trace /tmp/mw-never.json "
			  "-cpuprofile /tmp/mw-never.pprof -o /tmp/mw-never.png", err, sizeof err);
	cr_expect(eq(int, rc, 1), "%s", err);
	cr_expect(not(eq(ptr, strstr(err, "cannot trace"), NULL)), "%s", err);
	no_sanitizer_report(err);
	cr_expect(ne(int, access("/tmp/mw-never.png", F_OK), 0), "no picture written");
}

/* The profile cannot be written, the trace can: non-zero. The trace's
 * success used to overwrite the profile's failure (exit 0, no profile). */
Test(cli_faults, an_unwritable_profile_beside_a_trace_fails_the_run, .timeout = 60)
{
	char err[8192], args[512];
	snprintf(args, sizeof args,
		 "-w 32 -h 32 -trace /tmp/mw-ok-%d.json -cpuprofile /nonexistent/dir/cpu.pprof "
		 "-o /tmp/mw-ok-%d.png", getpid(), getpid());
	int rc = run("ASAN_OPTIONS=detect_leaks=1", args, err, sizeof err);
	cr_expect(ne(int, rc, 0), "%s", err);
	cr_expect(not(eq(ptr, strstr(err, "/nonexistent/dir/cpu.pprof"), NULL)), "%s", err);
	no_sanitizer_report(err);
	char path[64];
	snprintf(path, sizeof path, "/tmp/mw-ok-%d.json", getpid());
	cr_expect(eq(int, access(path, F_OK), 0), "the trace was written");
	unlink(path);
	snprintf(path, sizeof path, "/tmp/mw-ok-%d.png", getpid());
	unlink(path);
}
