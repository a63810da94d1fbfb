/*
 * json.h - the pieces of a JSON text, appended to a bounded buffer.
 *
 * Owns nothing: the caller owns the buffer. Writing never goes past cap;
 * output that does not fit sets 'full' and the caller drops or retries the
 * whole value. Strings are escaped per RFC 8259: quote, backslash and
 * control characters escaped, valid UTF-8 passed through, invalid bytes
 * replaced with U+FFFD (so the output is always valid UTF-8 JSON).
 *
 * Thread-safety: none needed; a buffer belongs to one thread at a time.
 */
#ifndef MW_TRACE_JSON_H
#define MW_TRACE_JSON_H

#include <stddef.h>
#include <stdint.h>

struct json_out {
	char *p;
	size_t len, cap;
	int full;
};

void json_raw(struct json_out *o, const char *s);
void json_str(struct json_out *o, const char *s); /* "s", escaped; NULL gives null */
void json_u64(struct json_out *o, uint64_t v);
void json_i64(struct json_out *o, int64_t v);
/* Nanoseconds as microseconds with three decimals: 1234567 -> 1234.567 */
void json_us(struct json_out *o, uint64_t ns);

#endif
