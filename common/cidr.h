/*
 * cidr.h — IPv4 and IPv6 address ranges written as CIDR text
 * ("10.0.0.0/8", "fc00::/7", a bare address for a single host), and lists
 * of them separated by commas.
 *
 * Parsing and matching only: which ranges mean what (private, loopback, the
 * operator's allow-list) is the caller's business. Addresses are raw network
 * byte order: 4 bytes for AF_INET, 16 for AF_INET6; an IPv4-mapped IPv6
 * address is not the same as its IPv4 address here (callers unmap first).
 *
 * Pure functions on caller-owned memory; safe from any thread.
 */
#ifndef MLGW_COMMON_CIDR_H
#define MLGW_COMMON_CIDR_H

#include <stddef.h>

struct gw_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix; /* 0-32 or 0-128 */
};

/* Parses the len bytes of text (surrounding spaces allowed) into out:
 * "address/prefix" or a bare address (a host: /32 or /128). Bits set past
 * the prefix are ignored. GW_OK, or GW_EINVAL. */
int gw_cidr_parse(struct gw_cidr *out, const char *text, size_t len);

/* True when addr (4 or 16 bytes, by family) lies in c. */
int gw_cidr_contains(const struct gw_cidr *c, int family, const unsigned char *addr);

/* True when list holds one or more comma-separated entries and each
 * parses. */
int gw_cidr_list_valid(const char *list);

/* True when addr lies in an entry of list (NULL: none); entries that do
 * not parse match nothing. */
int gw_cidr_list_contains(const char *list, int family, const unsigned char *addr);

#endif
