/*
 * main.c - the `mandelweb` command: parse the configuration, fit it to the
 * container's limits (cgroup.h), serve until SIGINT or SIGTERM, drain,
 * free everything, exit 0.
 *
 * Signals: SIGINT and SIGTERM are blocked before any thread starts (so every
 * thread inherits the mask) and taken synchronously with sigwait here; no
 * handler runs in a random thread. SIGPIPE is ignored: a client that goes
 * away is an error return, not a death.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "server/config.h"
#include "server/server.h"
#include "trace/trace.h"

int main(int argc, char **argv)
{
	struct config cfg;
	struct server *s;
	sigset_t stop;
	int sig;

	int rc = config_parse(&cfg, argc, argv, stdout, stderr);
	if (rc)
		return rc == 1 ? 0 : rc;
	/* In a container: the workers and the memory bounds fit its limits. */
	struct cgroup_limits limits;
	if (cgroup_read("", &limits) == 0)
		config_fit(&cfg, &limits, stderr);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	if (server_start(&s, &cfg, stderr) < 0)
		return 1;
	printf(strchr(cfg.addr, ':') ? "listening on http://[%s]:%u/\n" : "listening on http://%s:%u/\n",
	       cfg.addr, server_port(s));
	fflush(stdout);

	/* A wait site for the block profile: the main thread is named there. */
	static const struct trace_desc TD_SIGNAL = {"wait: signal", "server", {0}, 0};
	uint64_t t0 = trace_wait_begin(&TD_SIGNAL);
	trace_wait_sleep(&TD_SIGNAL);
	sigwait(&stop, &sig);
	trace_wait_end(&TD_SIGNAL, t0, trace_now());
	fprintf(stderr, "mandelweb: %s: draining\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	server_drain(s);
	server_stop(s);
	fprintf(stderr, "mandelweb: stopped\n");
	return 0;
}
