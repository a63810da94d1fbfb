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

/* Runs bin/mandelbrot with args through the shell; returns the exit status
 * and the first line of stdout or stderr (as chosen) in out. */
static int run(const char *args, int want_stderr, char *out, size_t out_len)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s/mandelbrot %s %s", MW_BIN, args,
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
		{"-kernel nope", "mandelbrot: kernel is not in this build or this CPU cannot run it"},
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
		cr_expect(eq(str, line, (char *)cases[i][1]));
	}
	/* The usage follows the reason. */
	FILE *f = popen(MW_BIN "/mandelbrot -w 0 2>&1", "r");
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
	cr_assert(png_image_begin_read_from_file(&im, path), "%s", im.message);
	cr_assert(eq(u32, im.width, 512));
	cr_assert(eq(u32, im.format, PNG_FORMAT_GRAY));
	uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
	cr_assert(png_image_finish_read(&im, NULL, px, 0, NULL));
	/* Every pixel against the reference formula. */
	struct kernel_args a = {.x0 = -1.5, .y0 = -1.0, .s = 4.0, .bailout = 4.0, .max_iter = 1000};
	struct kernel_out o;
	long bad = 0;
	for (uint32_t y = 0; y < 512; y++) {
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
