/*
 * sieve.c - bin/sieve: the workshop's concurrent prime sieve (its extra
 * credit, after "Go Concurrency Patterns"): a generator hands 2, 3, 4, ...
 * to a daisy chain of filters, each a thread that passes on what its prime
 * does not divide, through unbuffered channels (render/chan.h); the main
 * thread takes each new prime from the end of the chain, prints it, and
 * adds a filter for it.
 *
 *   sieve [-n 100] [-trace FILE] [-blockprofile FILE] [-version] [-help]
 *
 * Its trace shows the chain of hand-offs (a flow from each 'send' to its
 * 'receive'); its block profile, that every filter waits on its neighbour
 * ('send', 'receive'). The N filters are N threads: at most SIEVE_MAX.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/output.h"
#include "render/chan.h"
#include "render/flag.h"
#include "render/version.h"
#include "trace/trace.h"

#define SIEVE_MAX 2000
#define SIEVE_STACK (64 * 1024) /* a filter's frames are few */

static void usage(FILE *f)
{
	fputs("usage: sieve [-n 100] [-trace trace.json] [-blockprofile block.pprof] [-version] [-help]\n"
	      "  Prints the first n primes (1.." "2000" "), found by a daisy chain of filter threads\n"
	      "  joined by unbuffered channels.\n"
	      "  -trace         what every thread did (Chrome JSON; .pftrace: Perfetto's protobuf;\n"
	      "                 .gz: gzipped), then its summary on stderr\n"
	      "  -blockprofile  where each thread waited and why, for go tool pprof\n",
	      f);
}

struct filter {
	struct chan *in, *out;
	uint64_t prime;
};

static void *generate(void *arg)
{
	struct chan *out = arg;
	trace_thread_name("generate");
	for (uint64_t i = 2;; i++)
		chan_send(out, i);
	return NULL;
}

static void *filter(void *arg)
{
	struct filter *f = arg;
	char name[16];
	snprintf(name, sizeof name, "filter-%llu", (unsigned long long)f->prime);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		uint64_t i = chan_recv(f->in);
		if (i % f->prime != 0)
			chan_send(f->out, i);
	}
	return NULL;
}

static int spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, SIEVE_STACK);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return -rc;
}

int main(int argc, char **argv)
{
	unsigned n = 100;
	const char *trace = NULL, *blockprofile = NULL;
	char why[160];

	for (int i = 1; i < argc; i++) {
		struct flag f;
		const char *v;
		if (flag_split(argv[i], &f) < 0) {
			snprintf(why, sizeof why, "unexpected argument '%.40s': every argument is a flag", argv[i]);
			return flag_bad(stderr, "sieve", why);
		}
		if (flag_is(&f, "help")) {
			usage(stdout);
			return 0;
		}
		if (flag_is(&f, "version")) {
			version_print(stdout, "sieve", NULL, NULL);
			return 0;
		}
		if (!(v = flag_value(&f, argc, argv, &i))) {
			snprintf(why, sizeof why, "flag %.40s needs a value", argv[i]);
			return flag_bad(stderr, "sieve", why);
		}
		char *end;
		if (flag_is(&f, "n")) {
			unsigned long x = strtoul(v, &end, 10);
			if (*v < '0' || *v > '9' || *end || x < 1 || x > SIEVE_MAX) {
				snprintf(why, sizeof why, "-n must be a whole number in 1..%d", SIEVE_MAX);
				return flag_bad(stderr, "sieve", why);
			}
			n = (unsigned)x;
		} else if (flag_is(&f, "trace")) {
			trace = v;
		} else if (flag_is(&f, "blockprofile")) {
			blockprofile = v;
		} else {
			snprintf(why, sizeof why, "unknown flag %.40s", argv[i]);
			return flag_bad(stderr, "sieve", why);
		}
	}

	struct trace_capture *tc = NULL;
	struct prof_block *block = NULL;
	int rc;
	if (trace) {
		trace_init(&(struct trace_config){.ring_events = 1u << 16, .process = "sieve"});
		trace_thread_name("main");
		if ((rc = trace_capture_open(&tc)) < 0) {
			fprintf(stderr, "sieve: cannot trace: %s\n", strerror(-rc));
			return 1;
		}
	}
	if (blockprofile && (rc = prof_block_start(&block)) < 0) {
		fprintf(stderr, "sieve: cannot take a block profile: %s\n", strerror(-rc));
		return 1;
	}
	struct chan *chans = calloc(n + 1, sizeof *chans);
	struct filter *filters = calloc(n, sizeof *filters);
	if (!chans || !filters) {
		fprintf(stderr, "sieve: out of memory\n");
		return 1;
	}
	chan_init(&chans[0]);
	if ((rc = spawn(generate, &chans[0])) < 0) {
		fprintf(stderr, "sieve: cannot start a thread: %s\n", strerror(-rc));
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t prime = chan_recv(&chans[i]);
		printf("%llu\n", (unsigned long long)prime);
		chan_init(&chans[i + 1]);
		filters[i] = (struct filter){&chans[i], &chans[i + 1], prime};
		if (i + 1 < n && (rc = spawn(filter, &filters[i])) < 0) {
			fprintf(stderr, "sieve: cannot start a thread: %s\n", strerror(-rc));
			return 1;
		}
	}
	fflush(stdout);
	/* The chain goes on handing off while the files are written: what
	 * they hold is the window until now. The process ends with it. */
	if (tc)
		trace_capture_close(tc);
	if (block)
		prof_block_stop(block);
	rc = 0;
	if (block && output_block_profile("sieve", blockprofile, block) < 0)
		rc = 1;
	if (tc && output_trace("sieve", trace, tc) < 0)
		rc = 1;
	exit(rc); /* the threads are blocked or running: exit takes them all */
}
