/*
 * emulate.c - runs a Criterion test program on an emulated CPU, for make
 * test-cpus. Linked into tests/cpu only.
 *
 * MW_QEMU names the emulator and its CPU, e.g. "qemu-x86_64 -cpu Haswell".
 * Starting the program under qemu is not enough: Criterion runs each test
 * in a child that it starts by exec'ing /proc/self/exe, and qemu-user runs
 * an exec'd program natively (there is no binfmt_misc handler here). So
 * every process of the program checks, before main, whether it is the
 * emulated one: the emulator sets MW_EMULATED=1 for the process it starts
 * (qemu's -E), which unsets it at once, so a child that Criterion then
 * exec's natively finds it missing and re-exec's itself under MW_QEMU, with
 * the same pid, file descriptors and environment, which is all Criterion's
 * parent needs of it. Without MW_QEMU this does nothing.
 *
 * MW_QEMU also prefixes every bin/mandelbrot that test_cli.c runs, so the
 * CLI tests run on the same CPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARGS_MAX 64

/* /proc/self/cmdline as an argv: NUL-separated, read whole. */
static int own_args(char *buf, size_t len, char **argv, int max)
{
	FILE *f = fopen("/proc/self/cmdline", "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	int argc = 0;
	for (size_t i = 0; i < n && argc < max; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	return argc;
}

__attribute__((constructor)) static void emulate(void)
{
	static char qemu[256], cmdline[8192], exe[4096];
	char *argv[2 * ARGS_MAX + 4];
	int argc = 0;
	const char *q = getenv("MW_QEMU");

	if (!q || !*q)
		return;
	if (getenv("MW_EMULATED")) {
		unsetenv("MW_EMULATED");
		return;
	}
	snprintf(qemu, sizeof qemu, "%s", q);
	for (char *save, *w = strtok_r(qemu, " ", &save); w && argc < ARGS_MAX;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc++] = "-E";
	argv[argc++] = "MW_EMULATED=1";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0) {
		perror("emulate: /proc/self/exe");
		_exit(127);
	}
	exe[n] = '\0';
	argv[argc++] = exe;
	char *own[ARGS_MAX];
	int own_n = own_args(cmdline, sizeof cmdline, own, ARGS_MAX);
	for (int i = 1; i < own_n; i++)
		argv[argc++] = own[i];
	argv[argc] = NULL;
	execvp(argv[0], argv);
	fprintf(stderr, "emulate: cannot run %s: ", argv[0]);
	perror(NULL);
	_exit(127);
}
