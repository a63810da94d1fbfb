/* test_cli.c - bin/mandelbrot as a user runs it: its output and its
 * refusals (exit 2 and the usage). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "render/colour.h"
#include "render/kernel.h"

/* bin/mandelbrot, behind the emulator make test-cpus names (MW_QEMU, see
 * tests/emulate.c) if any. */
static const char *cli(void)
{
	static char path[512];
	const char *q = getenv("MW_QEMU");
	snprintf(path, sizeof path, "%s%s%s/mandelbrot", q ? q : "", q ? " " : "", MW_BIN);
	return path;
}

/* Runs bin/mandelbrot with args through the shell; returns the exit status
 * and the first line of stdout or stderr (as chosen) in out. */
static int run(const char *args, int want_stderr, char *out, size_t out_len)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s %s %s", cli(), args,
		 want_stderr ? "2>&1 >/dev/null" : "2>/dev/null");
	FILE *f = popen(cmd, "r");
	cr_assert(not(eq(ptr, f, NULL)));
	out[0] = '\0';
	if (!fgets(out, (int)out_len, f))
		out[0] = '\0';
	while (fgetc(f) != EOF)
		;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(cli, bad_input_exits_2_with_a_reason_and_usage)
{
	static const char *const cases[][2] = {
		{"-w 0", "mandelbrot: w must be an integer in 1..8192"},
		{"-h abc", "mandelbrot: h must be an integer in 1..8192"},
		{"-iter -5", "mandelbrot: iter must be an integer in 1..1000000"},
		{"-cx nan", "mandelbrot: cx must be a number in -4..4"},
		{"-zoom 0", "mandelbrot: zoom must be a number in 0.001..1e+13"},
		{"-mode fast", "mandelbrot: mode must be one of seq|px|row|workers|auto"},
		{"-workers 0", "mandelbrot: workers must be an integer in 1..1024"},
		{"-queue x", "mandelbrot: queue must be an integer in 0..16777216"},
		{"-kernel nope", "mandelbrot: no kernel 'nope' in this build (it has: "},
		{"-colour pink", "mandelbrot: colour must be one of gray|smooth|fire"},
		{"-png-level 10", "mandelbrot: png-level must be an integer in 0..9"},
		{"-bogus 1", "mandelbrot: unknown flag -bogus"},
		{"-w", "mandelbrot: flag -w needs a value"},
		{"stray", "mandelbrot: arguments must be flags"},
	};
	char line[256];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cr_expect(eq(int, run(cases[i][0], 1, line, sizeof line), 2), "%s", cases[i][0]);
		line[strcspn(line, "\n")] = '\0';
		cr_expect(eq(int, strncmp(line, cases[i][1], strlen(cases[i][1])), 0), "%s", line);
	}
	/* The usage follows the reason. */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "%s -w 0 2>&1", cli());
	FILE *f = popen(cmd, "r");
	char all[2048] = "";
	size_t n = fread(all, 1, sizeof all - 1, f);
	all[n] = '\0';
	pclose(f);
	cr_expect(not(eq(ptr, strstr(all, "usage: mandelbrot"), NULL)));
}

Test(cli, writes_the_workshop_picture)
{
	char line[512], args[256], path[] = "/tmp/mw-cli-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(ge(int, fd, 0));
	close(fd);

	snprintf(args, sizeof args, "-w 512 -h 512 -mode row -workers 3 -o %s", path);
	cr_assert(eq(int, run(args, 0, line, sizeof line), 0));
	cr_expect(not(eq(ptr, strstr(line, "512x512 gray iter=1000 mode=row workers=3"), NULL)), "%s", line);
	cr_expect(not(eq(ptr, strstr(line, "render "), NULL)));
	cr_expect(not(eq(ptr, strstr(line, "encode "), NULL)));

	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	cr_assert(ne(int, png_image_begin_read_from_file(&im, path), 0), "%s", im.message);
	cr_assert(eq(u32, im.width, 512));
	cr_assert(eq(u32, im.format, PNG_FORMAT_GRAY));
	uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
	cr_assert(ne(int, png_image_finish_read(&im, NULL, px, 0, NULL), 0));
	/* Every pixel against the reference formula. */
	struct kernel_args a = {.x0 = -1.5, .y0 = -1.0, .s = 4.0, .bailout = 4.0, .max_iter = 1000};
	struct kernel_out o;
	long bad = 0;
	/* make test-cpus (MW_TEST_QUICK, under emulation) checks every 8th row
	 * here and compares the whole file with the native build's itself. */
	const char *q = getenv("MW_TEST_QUICK");
	uint32_t step = q && *q && strcmp(q, "0") ? 8 : 1;
	for (uint32_t y = 0; y < 512; y += step) {
		kernel_scalar(&a, y, 0, 512, &o);
		for (uint32_t x = 0; x < 512; x++)
			bad += px[y * 512 + x] != colour_gray(o.tr[x], o.ti[x]);
	}
	cr_expect(eq(long, bad, 0));
	free(px);
	unlink(path);
}

Test(cli, unwritable_output_fails_cleanly)
{
	char line[256];
	cr_expect(eq(int, run("-w 8 -h 8 -o /nonexistent/dir/m.png", 1, line, sizeof line), 1));
	cr_expect(not(eq(ptr, strstr(line, "/nonexistent/dir/m.png"), NULL)), "%s", line);
}

/* -kernel list: every kernel of the build, whether this CPU runs it, what
 * auto picks; exit 0. */
Test(cli, kernel_list_names_every_kernel)
{
	char cmd[600], all[2048] = "";
	snprintf(cmd, sizeof cmd, "%s -kernel list", cli());
	FILE *f = popen(cmd, "r");
	cr_assert(not(eq(ptr, f, NULL)));
	size_t len = fread(all, 1, sizeof all - 1, f);
	all[len] = '\0';
	int st = pclose(f);
	cr_assert(eq(int, WIFEXITED(st) && WEXITSTATUS(st) == 0, 1), "%s", all);

	unsigned n;
	const struct kernel *ks = kernel_all(&n);
	for (unsigned k = 0; k < n; k++) {
		char want[128];
		snprintf(want, sizeof want, "\n%-8s %-5s %s%s\n", ks[k].name,
			 ks[k].supported() ? "yes" : "no", ks[k].needs,
			 &ks[k] == kernel_best() ? "  <- auto" : "");
		cr_expect(not(eq(ptr, strstr(all, want), NULL)), "no line '%s' in\n%s", want + 1, all);
	}
	cr_expect(not(eq(ptr, strstr(all, "architecture: "), NULL)), "%s", all);
}

/* A kernel the CPU cannot run is refused with what it needs and what does
 * run, exit 2; never started (no SIGILL). Only where the build has such a
 * kernel for this CPU: under make test-cpus there always is one. */
Test(cli, a_kernel_this_cpu_cannot_run_exits_2)
{
	unsigned n;
	const struct kernel *ks = kernel_all(&n);
	char line[256], args[64], runs[128];
	int tried = 0;
	kernel_names(runs, sizeof runs, true);
	for (unsigned k = 0; k < n; k++) {
		if (ks[k].supported())
			continue;
		snprintf(args, sizeof args, "-w 8 -h 8 -kernel %s -o /dev/null", ks[k].name);
		cr_expect(eq(int, run(args, 1, line, sizeof line), 2), "%s", args);
		cr_expect(not(eq(ptr, strstr(line, ks[k].needs), NULL)), "%s", line);
		cr_expect(not(eq(ptr, strstr(line, runs), NULL)), "%s", line);
		tried++;
	}
	if (!tried)
		cr_skip_test("this CPU runs every kernel of the build");
}
