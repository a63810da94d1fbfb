/* test_cli.c - bin/mandelbrot as a user runs it: its output, its flag
 * syntax and names, -version, and its refusals (exit 2, the reason and a
 * pointer to --help). */
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
#include "render/version.h"

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

/* Runs bin/mandelbrot with args, stdout and stderr into one pipe; returns
 * the exit status, with everything it printed in out. */
static int run_all(const char *args, char *out, size_t out_len)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s %s 2>&1", cli(), args);
	FILE *f = popen(cmd, "r");
	cr_assert(not(eq(ptr, f, NULL)));
	size_t n = fread(out, 1, out_len - 1, f);
	out[n] = '\0';
	while (fgetc(f) != EOF)
		;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(cli, bad_input_exits_2_with_a_reason_and_a_pointer_to_help)
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
		{"stray", "mandelbrot: unexpected argument 'stray': every argument is a flag"},
		{"---w 5", "mandelbrot: unexpected argument '---w'"},
		{"-w=", "mandelbrot: w must be an integer in 1..8192"},
		{"-version=1", "mandelbrot: -version takes no value"},
		{"-profile-hz 0", "mandelbrot: profile-hz must be an integer in 1..10000"},
	};
	char line[256];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cr_expect(eq(int, run(cases[i][0], 1, line, sizeof line), 2), "%s", cases[i][0]);
		line[strcspn(line, "\n")] = '\0';
		cr_expect(eq(int, strncmp(line, cases[i][1], strlen(cases[i][1])), 0), "%s", line);
	}
	/* The reason and where to read more: not the whole usage. */
	char all[2048];
	cr_expect(eq(int, run_all("-w 0", all, sizeof all), 2));
	cr_expect(eq(str, all, "mandelbrot: w must be an integer in 1..8192\n"
			       "mandelbrot: see 'mandelbrot --help'\n"));
	/* which is there when asked for, on stdout */
	cr_expect(eq(int, run("-help", 0, all, sizeof all), 0));
	cr_expect(eq(int, strncmp(all, "usage: mandelbrot", 17), 0), "%s", all);
}

/* Every flag syntax of render/flag.h, for a picture flag and another. */
Test(cli, flags_are_taken_in_every_syntax)
{
	static const char *const ways[] = {
		"-w 40 -h 30 -workers 1", "-w=40 -h=30 -workers=1", "--w 40 --h 30 --workers 1",
		"--w=40 --h=30 --workers=1", "-w=40 --h 30 --workers=1",
	};
	char line[512], args[256];
	for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) {
		snprintf(args, sizeof args, "%s -mode row -o /dev/null", ways[i]);
		cr_assert(eq(int, run(args, 0, line, sizeof line), 0), "%s", args);
		cr_expect(not(eq(ptr, strstr(line, "40x30 gray iter=1000 mode=row workers=1 "), NULL)),
			  "%s: %s", args, line);
	}
	/* A value that starts with '-' is a value. */
	cr_expect(eq(int, run("-w 8 -h 8 -cx -1.5 -o /dev/null", 0, line, sizeof line), 0), "%s", line);
	cr_expect(eq(int, run("-w 8 -h 8 -cx=-1.5 -o /dev/null", 0, line, sizeof line), 0), "%s", line);
}

/* The service's names for the same things: -profile-hz, -profile-sampler
 * (the older -cpuprofile-hz and -cpuprofile-sampler still work). */
Test(cli, profile_flags_have_the_service_names)
{
	char line[512];
	static const char *const ways[] = {
		"-profile-hz 500 -profile-sampler timer", "--profile-hz=500 --profile-sampler=timer",
		"-cpuprofile-hz 500 -cpuprofile-sampler timer",
	};
	for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) {
		char args[256];
		snprintf(args, sizeof args, "-w 64 -h 64 -o /dev/null -cpuprofile /dev/null %s", ways[i]);
		cr_expect(eq(int, run(args, 1, line, sizeof line), 0), "%s", args);
		cr_expect(not(eq(ptr, strstr(line, "at 500 Hz"), NULL)), "%s: %s", args, line);
	}
}

Test(cli, version_names_the_version_and_the_kernel)
{
	char all[2048];
	cr_assert(eq(int, run_all("-version", all, sizeof all), 0));
	cr_expect(eq(int, strncmp(all, "mandelbrot " MANDELWEB_VERSION "\nkernel: ", 20 + strlen(MANDELWEB_VERSION)), 0), "%s", all);
	cr_expect(not(eq(ptr, strstr(all, kernel_best()->name), NULL)), "%s", all);
	cr_expect(not(eq(ptr, strstr(all, "libpng "), NULL)), "%s", all);
	cr_expect(not(eq(ptr, strstr(all, "libdw "), NULL)), "%s", all);
	cr_expect(eq(int, run_all("--version -kernel scalar", all, sizeof all), 0));
	cr_expect(not(eq(ptr, strstr(all, "kernel: scalar ("), NULL)), "%s", all);
}

/* stdout and stderr into one pipe: the render's line first, then what the
 * files hold, with -cpuprofile as with -trace; seq is one job. */
Test(cli, lines_come_in_one_order)
{
	char all[8192];
	cr_assert(eq(int, run_all("-w 64 -h 64 -mode seq -o /dev/null -cpuprofile /dev/null -trace /dev/null",
				  all, sizeof all), 0));
	cr_expect(eq(int, strncmp(all, "mandelbrot: 64x64 gray iter=1000 mode=seq workers=1 ", 51), 0), "%s", all);
	cr_expect(not(eq(ptr, strstr(all, "1 jobs)"), NULL)), "%s", all);
	char *prof = strstr(all, "mandelbrot: profile /dev/null: "), *trace = strstr(all, "mandelbrot: trace /dev/null: ");
	cr_expect(not(eq(ptr, prof, NULL)), "%s", all);
	cr_expect(not(eq(ptr, trace, NULL)), "%s", all);
	cr_expect(lt(ptr, (void *)prof, (void *)trace), "%s", all);
	cr_expect(eq(ptr, strstr(all, "1 threads"), NULL), "%s", all);
}

/* A run shorter than the timer sampler's tick says why its profile is
 * thin: the note comes exactly when the samples are under half of what
 * the run's CPU time would give at the rate (and 2 at least). Short runs
 * (the workshop's 256x256 row) and a long one. */
Test(cli, a_thin_profile_says_why)
{
	static const char *const runs[] = {
		"-w 256 -h 256 -mode row", "-w 256 -h 256 -mode row", "-w 256 -h 256 -mode row",
		"-w 1 -h 1", "-w 1024 -h 1024 -iter 2000",
	};
	char all[4096], args[256];
	int noted = 0;
	for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		snprintf(args, sizeof args, "%s -o /dev/null -cpuprofile /dev/null", runs[i]);
		cr_assert(eq(int, run_all(args, all, sizeof all), 0), "%s", all);
		char *p = strstr(all, "mandelbrot: profile /dev/null: ");
		cr_assert(not(eq(ptr, p, NULL)), "%s", all);
		unsigned long long samples;
		double wall, cpu;
		unsigned hz;
		cr_assert(eq(int, sscanf(p, "mandelbrot: profile /dev/null: %llu samples of %*u threads over %lf ms "
					    "(%lf ms of CPU) at %u Hz", &samples, &wall, &cpu, &hz), 4), "%s", p);
		int note = strstr(all, "use -profile-sampler perf") != NULL;
		noted += note;
		/* 0.1 ms of rounding in the printed CPU time either way */
		double lo = (cpu - 0.05) * hz / 1e3, hi = (cpu + 0.05) * hz / 1e3;
		if (note)
			cr_expect(hi >= 2 && samples < hi / 2, "%s", all);
		else
			cr_expect(lo < 2 || samples >= lo / 2, "%s", all);
	}
	cr_log_info("a thin profile's note: %d of 5 runs", noted);
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
