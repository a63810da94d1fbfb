/* fuzz_config.c - mandelweb's flags: the input, cut at NULs, as argv to
 * config_parse. Checks: it returns 0, 1 or 2 (never crashes, never
 * exits), and a config it accepts is in the documented ranges. */
#include "render/pool.h"
#include "server/config.h"
#include "tests/fuzz/fuzz.h"

static FILE *null_out(void)
{
	static FILE *f;
	if (!f)
		f = fopen("/dev/null", "w");
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pieces p;
	struct config c;
	char *argv[FUZZ_PIECES_MAX + 2];

	fuzz_split(&p, data, size, '\0');
	argv[0] = "mandelweb";
	for (unsigned i = 0; i < p.n; i++)
		argv[i + 1] = p.piece[i];
	argv[p.n + 1] = NULL;
	int rc = config_parse(&c, (int)p.n + 1, argv, null_out(), null_out());
	FUZZ_CHECK(rc == 0 || rc == 1 || rc == 2);
	if (rc == 0) {
		FUZZ_CHECK(c.workers >= 1 && c.workers <= POOL_MAX_WORKERS);
		FUZZ_CHECK(c.port <= 65535);
		FUZZ_CHECK(c.max_wait > 0);
		FUZZ_CHECK(memchr(c.addr, '\0', sizeof c.addr) && memchr(c.kernel, '\0', sizeof c.kernel));
		FUZZ_CHECK(c.header_timeout >= 1 && c.min_send_rate >= 1);
	}
	fuzz_free(&p);
	return 0;
}
