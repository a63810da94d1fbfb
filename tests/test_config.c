/* test_config.c - mandelweb's command line: every flag syntax of
 * render/flag.h, --version, --workshop, and a bad value's two lines. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/kernel.h"
#include "render/version.h"
#include "server/config.h"

/* config_parse on "mandelweb" and args; its status, with what it printed
 * to out and to err (each NUL-terminated, freed by the caller). */
static int parse(struct config *c, const char *const *args, char **out, char **err)
{
	char *argv[16] = {"mandelweb"};
	int n = 1;
	for (; args && args[n - 1]; n++)
		argv[n] = (char *)args[n - 1];
	size_t ol, el;
	FILE *o = open_memstream(out, &ol), *e = open_memstream(err, &el);
	int rc = config_parse(c, n, argv, o, e);
	fclose(o);
	fclose(e);
	return rc;
}

Test(config, every_flag_syntax_is_taken)
{
	static const char *const ways[][5] = {
		{"--port", "9001", "--cache-mb", "7", NULL},
		{"--port=9001", "--cache-mb=7", NULL},
		{"-port", "9001", "-cache-mb", "7", NULL},
		{"-port=9001", "-cache-mb=7", NULL},
		{"-port=9001", "--cache-mb", "7", NULL},
	};
	for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) {
		struct config c;
		char *out, *err;
		cr_assert(eq(int, parse(&c, ways[i], &out, &err), 0), "%zu: %s", i, err);
		cr_expect(eq(u32, c.port, 9001), "%zu", i);
		cr_expect(eq(u32, c.cache_mb, 7), "%zu", i);
		free(out);
		free(err);
	}
	/* a boolean: bare, with a following word, or after '=' */
	static const char *const bools[][3] = {
		{"--access-log", "off", NULL}, {"-access-log=off", NULL}, {"--access-log=0", NULL},
	};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		struct config c;
		char *out, *err;
		cr_assert(eq(int, parse(&c, bools[i], &out, &err), 0), "%s", err);
		cr_expect(eq(int, c.access_log, 0), "%zu", i);
		free(out);
		free(err);
	}
}

/* The reason and a pointer to --help: two lines, not the usage. */
Test(config, a_bad_value_is_its_reason_and_where_to_read_more)
{
	static const struct {
		const char *args[4], *said;
	} cases[] = {
		{{"--port", "x", NULL}, "mandelweb: --port must be an integer in 0..65535\n"},
		{{"-port=70000", NULL}, "mandelweb: --port must be an integer in 0..65535\n"},
		{{"--bogus", NULL}, "mandelweb: unknown flag '--bogus'\n"},
		{{"--port", NULL}, "mandelweb: --port needs a value\n"},
		{{"stray", NULL}, "mandelweb: unexpected argument 'stray': every argument is a flag\n"},
		{{"--version=2", NULL}, "mandelweb: --version takes no value\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config c;
		char *out, *err, want[256];
		cr_expect(eq(int, parse(&c, cases[i].args, &out, &err), 2), "%zu", i);
		snprintf(want, sizeof want, "%smandelweb: see 'mandelweb --help'\n", cases[i].said);
		cr_expect(eq(str, err, want), "%zu", i);
		cr_expect(eq(str, out, ""));
		free(out);
		free(err);
	}
	/* the usage, when asked for, on out */
	struct config c;
	char *out, *err;
	cr_expect(eq(int, parse(&c, (const char *const[]){"-help", NULL}, &out, &err), 1));
	cr_expect(eq(int, strncmp(out, "usage: mandelweb ", 17), 0), "%s", out);
	cr_expect(not(eq(ptr, strstr(out, "--workshop"), NULL)));
	free(out);
	free(err);
}

Test(config, version_names_the_version_the_kernel_and_the_libraries)
{
	struct config c;
	char *out, *err;
	cr_assert(eq(int, parse(&c, (const char *const[]){"--version", NULL}, &out, &err), 1));
	char head[64];
	snprintf(head, sizeof head, "mandelweb %s\nkernel: %s (", MANDELWEB_VERSION, kernel_best()->name);
	cr_expect(eq(int, strncmp(out, head, strlen(head)), 0), "%s", out);
	cr_expect(not(eq(ptr, strstr(out, "libmicrohttpd "), NULL)), "%s", out);
	cr_expect(not(eq(ptr, strstr(out, "libpng "), NULL)), "%s", out);
	cr_expect(not(eq(ptr, strstr(out, "libdw "), NULL)), "%s", out);
	free(out);
	free(err);
	/* the kernel it would render with, as chosen */
	cr_assert(eq(int, parse(&c, (const char *const[]){"-version", "--kernel", "scalar", NULL}, &out, &err), 1));
	cr_expect(not(eq(ptr, strstr(out, "kernel: scalar ("), NULL)), "%s", out);
	free(out);
	free(err);
}

/* --workshop: no cache, no single flight, unless either is given. */
Test(config, workshop_renders_every_request_unless_told_otherwise)
{
	struct config c;
	char *out, *err;
	cr_assert(eq(int, parse(&c, NULL, &out, &err), 0));
	cr_expect(eq(u32, c.cache_mb, 64));
	cr_expect(eq(int, c.single_flight, 1));
	free(out), free(err);
	cr_assert(eq(int, parse(&c, (const char *const[]){"--workshop", NULL}, &out, &err), 0));
	cr_expect(eq(u32, c.cache_mb, 0));
	cr_expect(eq(int, c.single_flight, 0));
	free(out), free(err);
	cr_assert(eq(int, parse(&c, (const char *const[]){"--cache-mb", "8", "--workshop", "on", NULL}, &out, &err), 0));
	cr_expect(eq(u32, c.cache_mb, 8));
	cr_expect(eq(int, c.single_flight, 0));
	free(out), free(err);
	setenv("MANDELWEB_WORKSHOP", "on", 1);
	cr_assert(eq(int, parse(&c, (const char *const[]){"--single-flight", "on", NULL}, &out, &err), 0));
	unsetenv("MANDELWEB_WORKSHOP");
	cr_expect(eq(u32, c.cache_mb, 0));
	cr_expect(eq(int, c.single_flight, 1));
	free(out), free(err);
}
