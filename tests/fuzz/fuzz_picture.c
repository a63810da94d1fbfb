/* fuzz_picture.c - the picture parsers: picture_set on newline-separated
 * name=value lines (every parameter a picture takes, and picture_parse_u32,
 * picture_parse_double, colour_parse through it), then picture_check. Checks: an
 * accepted picture's kernel arguments are finite, its pixel step is
 * positive, and its channels are 1 or 3. */
#include <math.h>

#include "render/picture.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pieces p;
	struct picture pic = picture_default(64, 64);
	char why[200];

	fuzz_split(&p, data, size, '\n');
	for (unsigned i = 0; i < p.n; i++) {
		char *eq = strchr(p.piece[i], '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (picture_set(&pic, p.piece[i], eq + 1, why, sizeof why) < 0)
			FUZZ_CHECK(memchr(why, '\0', sizeof why));
	}
	if (picture_check(&pic, why, sizeof why) == 0) {
		struct kernel_args a;
		picture_kernel_args(&pic, &a);
		FUZZ_CHECK(isfinite(a.x0) && isfinite(a.y0) && isfinite(a.s) && a.s > 0);
		unsigned ch = picture_channels(&pic);
		FUZZ_CHECK(ch == 1 || ch == 3);
		FUZZ_CHECK(pic.w >= 1 && pic.h >= 1);
	}
	uint32_t u;
	double d;
	(void)picture_parse_u32(p.buf, 0, UINT32_MAX, &u);
	if (picture_parse_double(p.buf, &d) == 0)
		FUZZ_CHECK(isfinite(d));
	fuzz_free(&p);
	return 0;
}
