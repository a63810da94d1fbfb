/* test_sieve.c - the unbuffered channel (render/chan.h): values arrive in
 * order, every one once, from one sender or several; and bin/sieve, the
 * workshop's concurrent prime sieve on it: the first primes, its flags,
 * and a trace whose hand-offs are flows from each 'send' to its
 * 'receive'. Its block profile is test_prof.c's (the decoder is there). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render/chan.h"

#define N 20000

static struct chan ch;

static void *send_main(void *arg)
{
	uintptr_t from = (uintptr_t)arg;
	for (uint64_t i = 0; i < N; i++)
		chan_send(&ch, from + i);
	return NULL;
}

Test(chan, one_sender_in_order)
{
	pthread_t t;
	chan_init(&ch);
	pthread_create(&t, NULL, send_main, (void *)(uintptr_t)1);
	for (uint64_t i = 0; i < N; i++)
		cr_assert(eq(u64, chan_recv(&ch), 1 + i));
	pthread_join(t, NULL);
}

Test(chan, four_senders_every_value_once, .timeout = 60)
{
	pthread_t t[4];
	static unsigned char seen[4 * N];
	chan_init(&ch);
	for (uintptr_t k = 0; k < 4; k++)
		pthread_create(&t[k], NULL, send_main, (void *)(k * N));
	for (uint64_t i = 0; i < 4 * N; i++) {
		uint64_t v = chan_recv(&ch);
		cr_assert(lt(u64, v, (uint64_t)(4 * N)));
		cr_assert(eq(int, seen[v], 0), "%llu twice", (unsigned long long)v);
		seen[v] = 1;
	}
	for (int k = 0; k < 4; k++)
		pthread_join(t[k], NULL);
}

/* bin/sieve's stdout (and its exit status). */
static int sieve(const char *args, char *out, size_t len)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "%s/sieve %s 2>/dev/null", MW_BIN, args);
	FILE *f = popen(cmd, "r");
	cr_assert(not(eq(ptr, f, NULL)));
	size_t n = fread(out, 1, len - 1, f);
	out[n] = 0;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(sieve, prints_the_first_primes, .timeout = 30)
{
	char out[8192];
	cr_expect(eq(int, sieve("-n 10", out, sizeof out), 0));
	cr_expect(eq(str, out, "2\n3\n5\n7\n11\n13\n17\n19\n23\n29\n"));
	cr_expect(eq(int, sieve("-n=300", out, sizeof out), 0));
	cr_expect(not(eq(ptr, strstr(out, "\n1987\n"), NULL)), "the 300th prime is 1987");
	cr_expect(eq(int, sieve("-n 0", out, sizeof out), 2));
	cr_expect(eq(int, sieve("-n 2001", out, sizeof out), 2));
	cr_expect(eq(int, sieve("-x 1", out, sizeof out), 2));
	cr_expect(eq(int, sieve("-help", out, sizeof out), 0));
	cr_expect(not(eq(ptr, strstr(out, "usage: sieve"), NULL)));
}

Test(sieve, its_trace_shows_the_chain_of_hand_offs, .timeout = 60)
{
	char path[64], args[128], out[4096];
	snprintf(path, sizeof path, "/tmp/mw-sieve-%d.json", (int)getpid());
	snprintf(args, sizeof args, "-n 20 -trace %s", path);
	cr_assert(eq(int, sieve(args, out, sizeof out), 0));
	json_error_t err;
	json_t *doc = json_load_file(path, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "%s", err.text);
	/* Each filter thread receives and sends; the flows join a send to
	 * the receive on the next thread of the chain. */
	size_t i, sends = 0, recvs = 0, starts = 0, ends = 0;
	json_t *ev;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev) {
		const char *name = json_string_value(json_object_get(ev, "name"));
		const char *ph = json_string_value(json_object_get(ev, "ph"));
		if (!name || !ph)
			continue;
		sends += !strcmp(name, "send") && !strcmp(ph, "X");
		recvs += !strcmp(name, "receive") && !strcmp(ph, "X");
		starts += !strcmp(ph, "s");
		ends += !strcmp(ph, "f");
	}
	cr_expect(lt(sz, (size_t)100, sends), "%zu sends", sends);
	cr_expect(lt(sz, (size_t)100, recvs), "%zu receives", recvs);
	cr_expect(lt(sz, (size_t)100, starts), "%zu flow starts", starts);
	cr_expect(lt(sz, (size_t)100, ends), "%zu flow ends", ends);
	json_decref(doc);
	remove(path);
}
