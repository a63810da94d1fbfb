/*
 * server.h - the mandelweb HTTP service on libmicrohttpd.
 *
 * Owns: the daemon, the render pool, the picture cache and the metrics, and
 * every request from its first byte to its completion callback (where its
 * state is freed, logged and counted: one place).
 *
 * Life cycle, from main only: server_start, then server_drain (stop
 * accepting; answer what was accepted), then server_stop (free all). No
 * HTTP thread renders or encodes: /mandelbrot becomes jobs on the pool and
 * its connection is suspended until a worker has encoded the PNG.
 */
#ifndef MW_SERVER_H
#define MW_SERVER_H

#include <stdio.h>

#include "server/config.h"

struct server;

/* Starts listening and serving. 0, or -errno with a reason written to err. */
int server_start(struct server **out, const struct config *c, FILE *err);

unsigned server_port(const struct server *s); /* the real port (for port 0) */

/* Stops accepting, fails /readyz, waits for every admitted render, then up
 * to the configured drain time for accepted requests to be sent. */
void server_drain(struct server *s);

/* Closes every connection and frees everything. */
void server_stop(struct server *s);

#endif
