/*
 * cidr.h - lists of address prefixes (IPv4 and IPv6 CIDRs), and addresses
 * held in one 16-byte form.
 *
 * Owns: struct cidr_list (a fixed array, no allocation) and the parsing
 * of "ADDR[/BITS],..." lists; the --debug-allow and --trusted-proxy flags
 * are such lists. An address is kept as 16 bytes, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so one comparison serves both families; an IPv4 prefix
 * a.b.c.d/n is stored as ::ffff:a.b.c.d/(96 + n).
 *
 * Thread-safety: parse at start-up; the rest only reads, from any thread.
 */
#ifndef MW_CIDR_H
#define MW_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_MAX 16 /* prefixes in one list */

struct cidr_addr {
	uint8_t b[16];
};

struct cidr_list {
	struct {
		struct cidr_addr net;
		unsigned bits; /* 0..128, of the 16-byte form */
	} net[CIDR_MAX];
	unsigned n;
};

/* list: "none", "" (both: empty), or comma-separated "ADDR[/BITS]". 0, or
 * -EINVAL with a reason naming flag in why. */
int cidr_list_parse(struct cidr_list *l, const char *list, const char *flag, char *why, size_t len);

/* Whether a is inside one of l's prefixes. */
int cidr_list_match(const struct cidr_list *l, const struct cidr_addr *a);

/* A socket address (AF_INET or AF_INET6) in the 16-byte form: 0, or
 * -EAFNOSUPPORT (NULL or another family). */
int cidr_from_sockaddr(const struct sockaddr *sa, struct cidr_addr *out);

/* Text (an IPv4 or IPv6 literal, no brackets, no port) in the 16-byte
 * form: 0 or -EINVAL. Exactly len bytes are read; spaces are not skipped. */
int cidr_from_text(const char *s, size_t len, struct cidr_addr *out);

/* Whether a is IPv4 (IPv4-mapped). */
int cidr_is_v4(const struct cidr_addr *a);

/* a as text ("203.0.113.7", "2001:db8::1") into buf of at least 46 bytes. */
void cidr_text(const struct cidr_addr *a, char *buf, size_t len);

#endif
