/*  sos_endpoint.h: the strict form of a ZeroMQ endpoint named in a signed record, and the
    class of the address it names (public, loopback, private, ...), so that a node decides
    where it may connect before it ever does. */
#ifndef SOS_ENDPOINT_H
#define SOS_ENDPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_error.h"

/*  What kind of address an endpoint names. Only SOS_ADDR_PUBLIC is reachable across the
    internet; every other class names this host, its local networks, or nothing at all. */
typedef enum {
    SOS_ADDR_PUBLIC = 0,
    SOS_ADDR_LOOPBACK,      /* 127/8, ::1 */
    SOS_ADDR_PRIVATE,       /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
    SOS_ADDR_LINK_LOCAL,    /* 169.254/16, fe80::/10 */
    SOS_ADDR_UNSPECIFIED,   /* 0/8, :: */
    SOS_ADDR_MULTICAST,     /* 224/4, ff00::/8 */
    SOS_ADDR_CGNAT,         /* 100.64/10 (shared address space, RFC 6598) */
    SOS_ADDR_DOCUMENTATION, /* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32 */
    SOS_ADDR_RESERVED,      /* 240/4, 255.255.255.255, 192.0.0/24, 198.18/15, 100::/64,
                               IPv4-compatible ::a.b.c.d */
    SOS_ADDR_CLASS_MAX
} sos_addr_class_t;

/*  A parsed endpoint: tcp://A.B.C.D:PORT or tcp://[IPv6]:PORT. */
typedef struct {
    bool ipv6;
    uint8_t addr[16]; /* IPv4 in the first 4 bytes */
    uint16_t port;    /* 1..65535 */
} sos_endpoint_t;

/*  Parse url strictly: the tcp transport, a literal IPv4 address (dotted quad) or a literal
    IPv6 address in brackets (no zone), and a decimal port 1..65535 without sign or leading
    zeros. Host names, wildcards and other transports (ipc, inproc, pgm, ...) are refused:
    a name could resolve to anything at connect time (DNS rebinding). Returns SOS_OK with *ep
    filled, or SOS_ERR_INVALID (then *ep is zeroed). ep may be NULL to check syntax only. */
sos_rc sos_endpoint_parse(sos_endpoint_t *ep, const char *url);

/*  The class of ep's address. IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4
    (2002::/16) addresses take the class of the IPv4 address they embed. */
sos_addr_class_t sos_endpoint_class(const sos_endpoint_t *ep);

/*  A short name for logs, e.g. "loopback". */
const char *sos_addr_class_name(sos_addr_class_t cls);

/*  Whether a node may connect to url, named in a record from another node: url parses, and
    its address is public unless allow_private. On refusal, *why (may be NULL) gets a static
    string for the log. */
bool sos_endpoint_allowed(const char *url, bool allow_private, const char **why);

#endif
