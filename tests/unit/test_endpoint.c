/*  test_endpoint.c: unit tests of protocol/sos_endpoint: what a record's endpoint may look
    like, and the class of every special address range, IPv4, IPv6 and embedded forms. */
#include "proto_test.h"
#include "sos_endpoint.h"

static void
s_test_syntax(void)
{
    SECTION("syntax");
    sos_endpoint_t ep;
    CHECK_RC(sos_endpoint_parse(&ep, "tcp://8.8.8.8:7700"), SOS_OK);
    CHECK(!ep.ipv6 && ep.port == 7700 && ep.addr[0] == 8 && ep.addr[3] == 8);
    CHECK_RC(sos_endpoint_parse(&ep, "tcp://[2606:4700::1111]:1"), SOS_OK);
    CHECK(ep.ipv6 && ep.port == 1 && ep.addr[0] == 0x26 && ep.addr[15] == 0x11);
    CHECK_RC(sos_endpoint_parse(&ep, "tcp://1.2.3.4:65535"), SOS_OK);
    CHECK_RC(sos_endpoint_parse(NULL, "tcp://1.2.3.4:80"), SOS_OK);
    static const char *bad[] = {
        NULL,
        "",
        "tcp://",
        "ipc:///tmp/sock",
        "inproc://x",
        "pgm://1.2.3.4:5",
        "udp://1.2.3.4:5",
        "TCP://1.2.3.4:5",
        "tcp://example.org:7700",
        "tcp://localhost:7700",
        "tcp://somehost:1",
        "tcp://*:7700",
        "tcp://1.2.3.4",
        "tcp://1.2.3.4:",
        "tcp://1.2.3.4:0",
        "tcp://1.2.3.4:65536",
        "tcp://1.2.3.4:99999",
        "tcp://1.2.3.4:007",
        "tcp://1.2.3.4:+80",
        "tcp://1.2.3.4:80x",
        "tcp://1.2.3.4:80 ",
        "tcp://1.2.3:80",
        "tcp://1.2.3.4.5:80",
        "tcp://0x7f.0.0.1:80",
        "tcp://2130706433:80",
        "tcp://1.2.3.256:80",
        "tcp://2606:4700::1111:80",
        "tcp://[2606:4700::1111:80",
        "tcp://[2606:4700::1111]80",
        "tcp://[fe80::1%eth0]:80",
        "tcp://[]:80",
        "tcp://eth0;1.2.3.4:80",
        "tcp://1.2.3.4:5:6",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&ep, 0xaa, sizeof ep);
        sos_rc rc = sos_endpoint_parse(&ep, bad[i]);
        if (rc != SOS_ERR_INVALID) {
            s_failed++;
            fprintf(stderr, "accepted bad endpoint '%s'\n", bad[i] ? bad[i] : "(null)");
        }
        CHECK(ep.port == 0); /* zeroed on failure */
    }
}

static sos_addr_class_t
s_class(const char *url)
{
    sos_endpoint_t ep;
    if (sos_endpoint_parse(&ep, url) != SOS_OK) {
        s_failed++;
        fprintf(stderr, "cannot parse '%s'\n", url);
        return SOS_ADDR_CLASS_MAX;
    }
    return sos_endpoint_class(&ep);
}

static void
s_test_classes(void)
{
    SECTION("address classes");
    static const struct {
        const char *url;
        sos_addr_class_t cls;
    } cases[] = {
        {"tcp://8.8.8.8:1", SOS_ADDR_PUBLIC},
        {"tcp://1.1.1.1:1", SOS_ADDR_PUBLIC},
        {"tcp://172.32.0.1:1", SOS_ADDR_PUBLIC},
        {"tcp://100.128.0.1:1", SOS_ADDR_PUBLIC},
        {"tcp://127.0.0.1:1", SOS_ADDR_LOOPBACK},
        {"tcp://127.255.1.2:1", SOS_ADDR_LOOPBACK},
        {"tcp://10.1.2.3:1", SOS_ADDR_PRIVATE},
        {"tcp://172.16.0.1:1", SOS_ADDR_PRIVATE},
        {"tcp://172.31.255.255:1", SOS_ADDR_PRIVATE},
        {"tcp://192.168.1.1:1", SOS_ADDR_PRIVATE},
        {"tcp://169.254.169.254:1", SOS_ADDR_LINK_LOCAL},
        {"tcp://0.0.0.0:1", SOS_ADDR_UNSPECIFIED},
        {"tcp://0.1.2.3:1", SOS_ADDR_UNSPECIFIED},
        {"tcp://224.0.0.1:1", SOS_ADDR_MULTICAST},
        {"tcp://239.255.255.250:1", SOS_ADDR_MULTICAST},
        {"tcp://100.64.0.1:1", SOS_ADDR_CGNAT},
        {"tcp://100.127.255.255:1", SOS_ADDR_CGNAT},
        {"tcp://192.0.2.1:1", SOS_ADDR_DOCUMENTATION},
        {"tcp://198.51.100.7:1", SOS_ADDR_DOCUMENTATION},
        {"tcp://203.0.113.9:1", SOS_ADDR_DOCUMENTATION},
        {"tcp://255.255.255.255:1", SOS_ADDR_RESERVED},
        {"tcp://240.0.0.1:1", SOS_ADDR_RESERVED},
        {"tcp://198.18.0.1:1", SOS_ADDR_RESERVED},
        {"tcp://[2606:4700::1111]:1", SOS_ADDR_PUBLIC},
        {"tcp://[::1]:1", SOS_ADDR_LOOPBACK},
        {"tcp://[::]:1", SOS_ADDR_UNSPECIFIED},
        {"tcp://[fd00::1]:1", SOS_ADDR_PRIVATE},
        {"tcp://[fc12:3456::1]:1", SOS_ADDR_PRIVATE},
        {"tcp://[fe80::1]:1", SOS_ADDR_LINK_LOCAL},
        {"tcp://[febf::1]:1", SOS_ADDR_LINK_LOCAL},
        {"tcp://[ff02::1]:1", SOS_ADDR_MULTICAST},
        {"tcp://[2001:db8::1]:1", SOS_ADDR_DOCUMENTATION},
        {"tcp://[::ffff:127.0.0.1]:1", SOS_ADDR_LOOPBACK},
        {"tcp://[::ffff:7f00:1]:1", SOS_ADDR_LOOPBACK},
        {"tcp://[::ffff:10.0.0.1]:1", SOS_ADDR_PRIVATE},
        {"tcp://[::ffff:169.254.1.1]:1", SOS_ADDR_LINK_LOCAL},
        {"tcp://[::ffff:8.8.8.8]:1", SOS_ADDR_PUBLIC},
        {"tcp://[64:ff9b::192.168.0.1]:1", SOS_ADDR_PRIVATE},
        {"tcp://[2002:7f00:1::]:1", SOS_ADDR_LOOPBACK},
        {"tcp://[2002:808:808::]:1", SOS_ADDR_PUBLIC},
        {"tcp://[::127.0.0.1]:1", SOS_ADDR_RESERVED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sos_addr_class_t got = s_class(cases[i].url);
        if (got != cases[i].cls) {
            s_failed++;
            fprintf(stderr, "%s: class %s, expected %s\n", cases[i].url, sos_addr_class_name(got),
                    sos_addr_class_name(cases[i].cls));
        }
    }
}

static void
s_test_allowed(void)
{
    SECTION("policy");
    const char *why = NULL;
    CHECK(sos_endpoint_allowed("tcp://8.8.8.8:7700", false, &why));
    CHECK(!sos_endpoint_allowed("tcp://127.0.0.1:7700", false, &why));
    CHECK(why && strcmp(why, "loopback") == 0);
    CHECK(sos_endpoint_allowed("tcp://127.0.0.1:7700", true, &why));
    CHECK(!sos_endpoint_allowed("ipc:///tmp/x", true, &why));
    CHECK(!sos_endpoint_allowed("tcp://somehost:1", true, NULL));
    CHECK(!sos_endpoint_allowed("tcp://[::ffff:192.168.0.1]:1", false, NULL));
}

int
main(void)
{
    test_init("test_endpoint: record endpoints and address classes");
    s_test_syntax();
    s_test_classes();
    s_test_allowed();
    return test_done("test_endpoint");
}
