/* fuzz_json.c - the trace's JSON string escaper: the input (after a first
 * byte that sets the buffer's size) through json_str. Checks: never past
 * the buffer; what fits is a whole JSON string of valid UTF-8 with no raw
 * control character, which decodes back to the input where the input was
 * printable ASCII. */
#include "trace/json.h"
#include "tests/fuzz/fuzz.h"

/* Valid UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (!len || i + len > n)
			return 0;
		unsigned cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
		for (unsigned k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t cap = (size_t)data[0] * 4 + 1;
	char *str = malloc(size), *buf = malloc(cap + 1);
	FUZZ_CHECK(str && buf);
	memcpy(str, data + 1, size - 1);
	str[size - 1] = '\0';
	buf[cap] = 0x5a; /* a guard: must stay */
	struct json_out o = {.p = buf, .cap = cap};
	json_str(&o, str);
	FUZZ_CHECK(o.len <= cap && buf[cap] == 0x5a);
	if (!o.full) {
		FUZZ_CHECK(o.len >= 2 && buf[0] == '"' && buf[o.len - 1] == '"');
		FUZZ_CHECK(utf8_valid((unsigned char *)buf, o.len));
		for (size_t i = 0; i < o.len; i++)
			FUZZ_CHECK((unsigned char)buf[i] >= 0x20);
		int printable = 1;
		for (const char *s = str; *s; s++)
			printable &= *s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\';
		if (printable)
			FUZZ_CHECK(o.len == strlen(str) + 2 && !memcmp(buf + 1, str, o.len - 2));
	}
	free(str);
	free(buf);
	return 0;
}
