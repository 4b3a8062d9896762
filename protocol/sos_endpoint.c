/*  sos_endpoint.c: strict parsing of record endpoints (tcp://IP:port, literal addresses
    only) and the classification of their addresses, IPv4 and IPv6. */
#include <arpa/inet.h>
#include <string.h>

#include "sos_endpoint.h"

#define S_HOST_MAX 64 /* longer than any literal IPv6 address in text form */

/*  "1".."65535", digits only, no leading zero. */
static bool
s_port(const char *s, uint16_t *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || s[0] == '0')
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

sos_rc
sos_endpoint_parse(sos_endpoint_t *ep, const char *url)
{
    sos_endpoint_t tmp;
    memset(&tmp, 0, sizeof tmp);
    if (ep)
        memset(ep, 0, sizeof *ep);
    if (!url || strncmp(url, "tcp://", 6) != 0)
        return SOS_ERR_INVALID;
    const char *host = url + 6;
    const char *colon;
    char text[S_HOST_MAX];
    if (*host == '[') {
        const char *close = strchr(host, ']');
        if (!close || close[1] != ':' || (size_t)(close - host - 1) >= sizeof text)
            return SOS_ERR_INVALID;
        memcpy(text, host + 1, (size_t)(close - host - 1));
        text[close - host - 1] = '\0';
        if (inet_pton(AF_INET6, text, tmp.addr) != 1)
            return SOS_ERR_INVALID;
        tmp.ipv6 = true;
        colon = close + 1;
    } else {
        colon = strchr(host, ':');
        if (!colon || (size_t)(colon - host) >= sizeof text)
            return SOS_ERR_INVALID;
        memcpy(text, host, (size_t)(colon - host));
        text[colon - host] = '\0';
        /*  inet_pton takes only the dotted quad (no "1", "0x7f.1", octal or hostnames). */
        if (inet_pton(AF_INET, text, tmp.addr) != 1)
            return SOS_ERR_INVALID;
    }
    if (!s_port(colon + 1, &tmp.port))
        return SOS_ERR_INVALID;
    if (ep)
        *ep = tmp;
    return SOS_OK;
}

static sos_addr_class_t
s_class4(const uint8_t a[4])
{
    if (a[0] == 0)
        return SOS_ADDR_UNSPECIFIED;
    if (a[0] == 127)
        return SOS_ADDR_LOOPBACK;
    if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
        return SOS_ADDR_PRIVATE;
    if (a[0] == 169 && a[1] == 254)
        return SOS_ADDR_LINK_LOCAL;
    if (a[0] == 100 && (a[1] & 0xc0) == 64)
        return SOS_ADDR_CGNAT;
    if ((a[0] == 192 && a[1] == 0 && a[2] == 2) || (a[0] == 198 && a[1] == 51 && a[2] == 100) ||
        (a[0] == 203 && a[1] == 0 && a[2] == 113))
        return SOS_ADDR_DOCUMENTATION;
    if ((a[0] & 0xf0) == 224)
        return SOS_ADDR_MULTICAST;
    if ((a[0] & 0xf0) == 240 || (a[0] == 192 && a[1] == 0 && a[2] == 0) ||
        (a[0] == 198 && (a[1] & 0xfe) == 18))
        return SOS_ADDR_RESERVED; /* 240/4 with the broadcast, IETF assignments, benchmarks */
    return SOS_ADDR_PUBLIC;
}

static bool
s_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

sos_addr_class_t
sos_endpoint_class(const sos_endpoint_t *ep)
{
    if (!ep->ipv6)
        return s_class4(ep->addr);
    const uint8_t *a = ep->addr;
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    if (s_zero(a, 10) && a[10] == 0xff && a[11] == 0xff)
        return s_class4(a + 12); /* IPv4-mapped */
    if (memcmp(a, nat64, sizeof nat64) == 0)
        return s_class4(a + 12);
    if (a[0] == 0x20 && a[1] == 0x02)
        return s_class4(a + 2); /* 6to4 */
    if (s_zero(a, 16))
        return SOS_ADDR_UNSPECIFIED;
    if (s_zero(a, 15) && a[15] == 1)
        return SOS_ADDR_LOOPBACK;
    if (s_zero(a, 12))
        return SOS_ADDR_RESERVED; /* IPv4-compatible, deprecated */
    if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0))
        return SOS_ADDR_PRIVATE; /* unique local, and the old site-local */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return SOS_ADDR_LINK_LOCAL;
    if (a[0] == 0xff)
        return SOS_ADDR_MULTICAST;
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
        return SOS_ADDR_DOCUMENTATION;
    if (a[0] == 0x01 && s_zero(a + 1, 7))
        return SOS_ADDR_RESERVED; /* discard prefix */
    return SOS_ADDR_PUBLIC;
}

const char *
sos_addr_class_name(sos_addr_class_t cls)
{
    static const char *names[SOS_ADDR_CLASS_MAX] = {
        "public",    "loopback", "private",       "link-local", "unspecified",
        "multicast", "cgnat",    "documentation", "reserved",
    };
    return (unsigned)cls < SOS_ADDR_CLASS_MAX ? names[cls] : "?";
}

bool
sos_endpoint_allowed(const char *url, bool allow_private, const char **why)
{
    sos_endpoint_t ep;
    if (sos_endpoint_parse(&ep, url) != SOS_OK) {
        if (why)
            *why = "not tcp://IP:PORT with a literal address";
        return false;
    }
    sos_addr_class_t cls = sos_endpoint_class(&ep);
    if (cls != SOS_ADDR_PUBLIC && !allow_private) {
        if (why)
            *why = sos_addr_class_name(cls);
        return false;
    }
    return true;
}
