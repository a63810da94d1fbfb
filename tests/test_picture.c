/* test_picture.c - picture parameters: ranges, messages, the default view. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "render/picture.h"

Test(picture, default_view_is_the_workshop_formula)
{
	struct picture p = picture_default(512, 512);
	struct kernel_args a;

	picture_kernel_args(&p, &a);
	cr_assert(eq(dbl, a.s, 4.0));
	cr_assert(eq(dbl, a.x0, -1.5));
	cr_assert(eq(dbl, a.y0, -1.0));
	cr_assert(eq(dbl, a.bailout, 4.0));
	cr_assert(eq(u32, a.max_iter, 1000));

	p = picture_default(1024, 512); /* centre kept, longer side extended */
	picture_kernel_args(&p, &a);
	cr_assert(eq(dbl, a.s, 4.0));
	cr_assert(eq(dbl, a.x0, -1.5 - 1.024));
	cr_assert(eq(dbl, a.y0, -1.0));
}

Test(picture, explicit_view_is_centred)
{
	struct picture p = picture_default(200, 100);
	struct kernel_args a;
	char why[128];

	cr_assert(eq(int, picture_set(&p, "cx", "0.25", why, sizeof why), 0));
	cr_assert(eq(int, picture_set(&p, "zoom", "4", why, sizeof why), 0));
	picture_kernel_args(&p, &a);
	cr_assert(eq(dbl, a.s, 2048.0 / (4 * 100)));
	cr_assert(lt(dbl, fabs(a.x0 + a.s * 100 / 1000 - 0.25), 1e-12));
	cr_assert(lt(dbl, fabs(a.y0 + a.s * 50 / 1000 - 0.024), 1e-12));
}

Test(picture, bad_values_are_refused_with_the_range)
{
	static const char *const cases[][3] = {
		{"w", "0", "w must be an integer in 1..8192"},
		{"w", "8193", "w must be an integer in 1..8192"},
		{"h", "-1", "h must be an integer in 1..8192"},
		{"h", "12x", "h must be an integer in 1..8192"},
		{"w", "", "w must be an integer in 1..8192"},
		{"w", " 5", "w must be an integer in 1..8192"},
		{"iter", "0", "iter must be an integer in 1..1000000"},
		{"iter", "99999999999999999999", "iter must be an integer in 1..1000000"},
		{"cx", "nan", "cx must be a number in -4..4"},
		{"cy", "inf", "cy must be a number in -4..4"},
		{"cx", "5", "cx must be a number in -4..4"},
		{"cx", "1e999", "cx must be a number in -4..4"},
		{"cx", "0x1p2", "cx must be a number in -4..4"}, /* hex: strtod reads it as 4 */
		{"cy", "0x0", "cy must be a number in -4..4"},
		{"zoom", "infinity", "zoom must be a number in 0.001..1e+13"},
		{"cx", " 1", "cx must be a number in -4..4"},
		{"zoom", "0", "zoom must be a number in 0.001..1e+13"},
		{"zoom", "-3", "zoom must be a number in 0.001..1e+13"},
		{"colour", "purple", "colour must be one of gray|smooth|fire"},
		{"color", "", "color must be one of gray|smooth|fire"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct picture p = picture_default(512, 512), before = p;
		char why[128] = "";
		cr_expect(eq(int, picture_set(&p, cases[i][0], cases[i][1], why, sizeof why), -EINVAL),
			  "%s=%s", cases[i][0], cases[i][1]);
		cr_expect(eq(str, why, (char *)cases[i][2]));
		cr_expect(eq(int, memcmp(&p, &before, sizeof p), 0), "picture left unchanged");
	}
	struct picture p = picture_default(8192, 8192);
	char why[128];
	cr_expect(eq(int, picture_check(&p, why, sizeof why), -EINVAL));
	cr_expect(eq(str, why, "w*h must be at most 16777216 pixels"));
}

Test(picture, good_values_and_unknown_names)
{
	struct picture p = picture_default(512, 512);
	char why[128];

	cr_assert(eq(int, picture_set(&p, "w", "640", why, sizeof why), 0));
	cr_assert(eq(int, picture_set(&p, "h", "1", why, sizeof why), 0));
	cr_assert(eq(int, picture_set(&p, "iter", "1000000", why, sizeof why), 0));
	cr_assert(eq(int, picture_set(&p, "color", "smooth", why, sizeof why), 0));
	cr_assert(eq(int, picture_set(&p, "cy", "-4", why, sizeof why), 0));
	cr_assert(eq(u32, p.w, 640));
	cr_assert(eq(u32, p.h, 1));
	cr_assert(eq(int, p.colour, COLOUR_SMOOTH));
	cr_assert(eq(int, p.has_view, 1));
	cr_assert(eq(u32, picture_channels(&p), 3));
	cr_assert(eq(int, picture_set(&p, "mode", "seq", why, sizeof why), -ENOENT));
}

Test(picture, colour_names_both_ways)
{
	enum colour c;
	cr_assert(eq(int, colour_parse("grey", &c), 0)); /* accepted alias */
	cr_assert(eq(int, (int)c, COLOUR_GRAY));
	cr_assert(eq(str, (char *)colour_name(COLOUR_GRAY), "gray"));
	cr_assert(eq(str, (char *)colour_name(COLOUR_FIRE), "fire"));
	cr_assert(eq(str, (char *)colour_name((enum colour)42), "?"));
	cr_assert(eq(int, colour_parse("Gray", &c), -EINVAL));
}
