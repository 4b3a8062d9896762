/*  test_config.c: sosnode settings: defaults, the ZPL config file, flags over the file,
    genesis parsing and the validation errors an operator sees. */
#include <czmq.h>
#include <unistd.h>

#include "proto_test.h"
#include "sos_config.h"

#define S_ID "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"

static sos_rc
s_parse(sos_config_t *cfg, int argc, char **argv)
{
    char err[256] = "";
    sos_config_defaults(cfg);
    sos_rc rc = sos_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc == SOS_OK)
        rc = sos_config_validate(cfg, err, sizeof err);
    if (rc)
        printf("    (error: %s)\n", err);
    return rc;
}

int
main(void)
{
    test_init("test_config");
    sos_config_t cfg;

    SECTION("defaults");
    sos_config_defaults(&cfg);
    CHECK(cfg.gossip_interval_ms == 30000 && cfg.fanout == 3 && cfg.max_failures == 5);
    CHECK(cfg.room_ttl_s == 3600 && cfg.history_limit == 500 && cfg.rate_limit);
    CHECK(cfg.probe_helpers == 3);

    SECTION("--probe-helpers: 0 turns indirect probes off; more than 8 is refused");
    char *p0[] = {"sosnode",         "--data", "/tmp/x", "--listen", "tcp://127.0.0.1:7000",
                  "--probe-helpers", "0"};
    CHECK_RC(s_parse(&cfg, 7, p0), SOS_OK);
    CHECK(cfg.probe_helpers == 0);
    char *p9[] = {"sosnode",         "--data", "/tmp/x", "--listen", "tcp://127.0.0.1:7000",
                  "--probe-helpers", "9"};
    CHECK_RC(s_parse(&cfg, 7, p9), SOS_ERR_INVALID);

    SECTION("--view-size: 0 (the default) sizes the view from fanout and N; past 32 refused");
    sos_config_defaults(&cfg);
    CHECK(cfg.view_size == 0);
    char *v6[] = {"sosnode",     "--data", "/tmp/x", "--listen", "tcp://127.0.0.1:7000",
                  "--view-size", "6"};
    CHECK_RC(s_parse(&cfg, 7, v6), SOS_OK);
    CHECK(cfg.view_size == 6);
    char *v33[] = {"sosnode",     "--data", "/tmp/x", "--listen", "tcp://127.0.0.1:7000",
                   "--view-size", "33"};
    CHECK_RC(s_parse(&cfg, 7, v33), SOS_ERR_INVALID);

    SECTION("flags");
    char *a1[] = {"sosnode",
                  "--data",
                  "/tmp/x",
                  "--listen",
                  "tcp://127.0.0.1:7000",
                  "--gossip-interval",
                  "200",
                  "--fanout",
                  "4",
                  "--genesis",
                  S_ID "@tcp://10.0.0.1:7000",
                  "--rate-limit",
                  "off"};
    CHECK_RC(s_parse(&cfg, 13, a1), SOS_OK);
    CHECK(cfg.gossip_interval_ms == 200 && cfg.fanout == 4 && !cfg.rate_limit);
    CHECK(cfg.n_genesis == 1 && cfg.genesis[0].pinned);
    CHECK(streq(cfg.advertise, "tcp://127.0.0.1:7000"));

    SECTION("a pinned genesis");
    sos_genesis_t g;
    char pinned[200];
    snprintf(pinned, sizeof pinned, "%064d@tcp://h:1", 0);
    pinned[0] = 'a';
    CHECK_RC(sos_genesis_parse(&g, pinned), SOS_OK);
    CHECK(g.pinned && g.id[0] == 0xa0 && streq(g.url, "tcp://h:1"));
    CHECK_RC(sos_genesis_parse(&g, "abc@tcp://h:1"), SOS_ERR_INVALID);
    CHECK_RC(sos_genesis_parse(&g, "http://h:1"), SOS_ERR_INVALID);

    SECTION("the config file, with flags winning");
    char path[] = "/tmp/sos-test-config-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *zpl = "sosnode\n"
                      "    data = /tmp/from-file\n"
                      "    listen = tcp://127.0.0.1:7100\n"
                      "    fanout = 5\n"
                      "    max-failures = 7\n"
                      "    genesis\n"
                      "        a = " S_ID "@tcp://127.0.0.1:7200\n"
                      "        b = " S_ID "@tcp://127.0.0.1:7201\n";
    CHECK(write(fd, zpl, strlen(zpl)) == (ssize_t)strlen(zpl));
    close(fd);
    char *a2[] = {"sosnode", "--config", path, "--fanout", "2"};
    CHECK_RC(s_parse(&cfg, 5, a2), SOS_OK);
    CHECK(streq(cfg.data_dir, "/tmp/from-file") && cfg.fanout == 2 && cfg.max_failures == 7);
    CHECK(cfg.n_genesis == 2 && streq(cfg.genesis[1].url, "tcp://127.0.0.1:7201"));
    char *a3[] = {"sosnode", "--config", path, "--genesis", S_ID "@tcp://127.0.0.1:7300"};
    CHECK_RC(s_parse(&cfg, 5, a3), SOS_OK);
    CHECK(cfg.n_genesis == 1 && streq(cfg.genesis[0].url, "tcp://127.0.0.1:7300"));
    unlink(path);

    SECTION("transport: CURVE needs every genesis's id; NULL needs the environment's leave");
    char err[512] = "";
    char *t1[] = {"sosnode",
                  "--data",
                  "/tmp/x",
                  "--listen",
                  "tcp://127.0.0.1:1",
                  "--genesis",
                  "tcp://127.0.0.1:7300"};
    sos_config_defaults(&cfg);
    CHECK_RC(sos_config_parse(&cfg, 7, t1, err, sizeof err), SOS_OK);
    CHECK_RC(sos_config_validate(&cfg, err, sizeof err), SOS_ERR_INVALID);
    CHECK(strstr(err, "NODEID@tcp://127.0.0.1:7300") && strstr(err, "--print-id"));
    char *t2[] = {"sosnode",           "--data",      "/tmp/x", "--listen",
                  "tcp://127.0.0.1:1", "--transport", "null"};
    unsetenv(SOS_NULL_TRANSPORT_ENV);
    sos_config_defaults(&cfg);
    CHECK_RC(sos_config_parse(&cfg, 7, t2, err, sizeof err), SOS_OK);
    CHECK(cfg.transport_null);
    CHECK_RC(sos_config_validate(&cfg, err, sizeof err), SOS_ERR_INVALID);
    CHECK(strstr(err, SOS_NULL_TRANSPORT_ENV));
    setenv(SOS_NULL_TRANSPORT_ENV, "1", 1);
    CHECK_RC(sos_config_validate(&cfg, err, sizeof err), SOS_OK);
    unsetenv(SOS_NULL_TRANSPORT_ENV);
    char *t3[] = {"sosnode", "--transport", "tls"};
    sos_config_defaults(&cfg);
    CHECK_RC(sos_config_parse(&cfg, 3, t3, err, sizeof err), SOS_ERR_INVALID);

    SECTION("errors");
    char *b1[] = {"sosnode", "--listen", "tcp://127.0.0.1:1"};
    CHECK_RC(s_parse(&cfg, 3, b1), SOS_ERR_INVALID); /* no --data */
    char *b2[] = {"sosnode", "--data", "/tmp/x", "--listen", "tcp://*:7000"};
    CHECK_RC(s_parse(&cfg, 5, b2), SOS_ERR_INVALID); /* wildcard without --advertise */
    char *b3[] = {"sosnode",
                  "--data",
                  "/tmp/x",
                  "--listen",
                  "tcp://*:7000",
                  "--advertise",
                  "tcp://192.0.2.7:7000"};
    CHECK_RC(s_parse(&cfg, 7, b3), SOS_OK);
    char *b4[] = {"sosnode", "--data", "/tmp/x", "--listen", "tcp://h:1", "--fanout", "0"};
    CHECK_RC(s_parse(&cfg, 7, b4), SOS_ERR_INVALID);
    char *b5[] = {"sosnode", "--data", "/tmp/x", "--listen", "tcp://h:1", "--fanout", "3x"};
    CHECK_RC(s_parse(&cfg, 7, b5), SOS_ERR_INVALID);
    char *b6[] = {"sosnode", "--bogus", "1"};
    CHECK_RC(s_parse(&cfg, 3, b6), SOS_ERR_INVALID);
    char *b7[] = {"sosnode", "--config", "/nonexistent/file"};
    CHECK_RC(s_parse(&cfg, 3, b7), SOS_ERR_INVALID);

    SECTION("connections, endpoints, verification budget");
    sos_config_defaults(&cfg);
    CHECK(cfg.max_peer_connections == 512 && !cfg.allow_private_endpoints &&
          cfg.verify_budget == 4096);
    char *c1[] = {"sosnode",   "--data",
                  "/tmp/x",    "--listen",
                  "tcp://h:1", "--max-peer-connections",
                  "64",        "--verify-budget",
                  "1000",      "--allow-private-endpoints",
                  "on"};
    CHECK_RC(s_parse(&cfg, 11, c1), SOS_OK);
    CHECK(cfg.max_peer_connections == 64 && cfg.verify_budget == 1000 &&
          cfg.allow_private_endpoints);
    char *c2[] = {"sosnode", "--data", "/tmp/x", "--listen", "tcp://h:1", "--max-peer-connections",
                  "7"};
    CHECK_RC(s_parse(&cfg, 7, c2), SOS_ERR_INVALID); /* below 8 */
    char *c3[] = {"sosnode", "--data", "/tmp/x", "--listen", "tcp://h:1", "--verify-budget", "100"};
    CHECK_RC(s_parse(&cfg, 7, c3), SOS_ERR_INVALID); /* below one batch */
    char *c4[] = {
        "sosnode", "--data", "/tmp/x", "--listen", "tcp://h:1", "--allow-private-endpoints", "yes"};
    CHECK_RC(s_parse(&cfg, 7, c4), SOS_ERR_INVALID);
    CHECK_RC(sos_config_load_str(&cfg,
                                 "sosnode\n    allow-private-endpoints = on\n"
                                 "    max-peer-connections = 100\n",
                                 (char[128]){0}, 128),
             SOS_OK);
    CHECK(cfg.allow_private_endpoints && cfg.max_peer_connections == 100);
    char *c5[] = {"sosnode",  "--data",    "/tmp/x",
                  "--listen", "tcp://h:1", "--allow-private-endpoints"};
    CHECK_RC(s_parse(&cfg, 6, c5), SOS_OK); /* a bare flag */
    CHECK(cfg.allow_private_endpoints);

    SECTION("http");
    char *h1[] = {"sosnode",         "--data", "/tmp/x", "--listen",       "tcp://10.1.2.3:7000",
                  "--http",          "8080",   "--http", "127.0.0.1:8081", "--trust-proxy",
                  "--http-body-max", "100000"};
    CHECK_RC(s_parse(&cfg, 12, h1), SOS_OK);
    CHECK(cfg.n_http == 2 && streq(cfg.http[0], "8080") && streq(cfg.http[1], "127.0.0.1:8081"));
    CHECK(cfg.trust_proxy && cfg.http_body_max == 100000);
    /*  A bare port takes the ZeroMQ endpoint's host for the advertised URL. */
    CHECK(streq(cfg.http_advertise, "http://10.1.2.3:8080"));
    char *h2[] = {"sosnode", "--data",        "/tmp/x",      "--listen", "tcp://10.1.2.3:7000",
                  "--http",  "192.0.2.9:443", "--http-cert", "/c.pem",   "--http-key",
                  "/k.pem",  "--trust-proxy", "off"};
    CHECK_RC(s_parse(&cfg, 13, h2), SOS_OK);
    CHECK(streq(cfg.http_advertise, "https://192.0.2.9:443") && !cfg.trust_proxy);
    char *h3[] = {"sosnode",
                  "--data",
                  "/tmp/x",
                  "--listen",
                  "tcp://10.1.2.3:7000",
                  "--http",
                  "8080",
                  "--http-advertise",
                  "https://chat.example.org:443"};
    CHECK_RC(s_parse(&cfg, 9, h3), SOS_OK);
    CHECK(streq(cfg.http_advertise, "https://chat.example.org:443"));
    char *h4[] = {"sosnode",     "--data", "/tmp/x", "--listen", "tcp://10.1.2.3:7000",
                  "--http-cert", "/c.pem"};
    CHECK_RC(s_parse(&cfg, 7, h4), SOS_ERR_INVALID); /* a certificate without its key */
    char *h5[] = {"sosnode",         "--data", "/tmp/x", "--listen", "tcp://10.1.2.3:7000",
                  "--http-body-max", "1000"};
    CHECK_RC(s_parse(&cfg, 7, h5), SOS_ERR_INVALID); /* below 64 KiB */
    char *h6[] = {"sosnode",          "--data", "/tmp/x", "--listen", "tcp://10.1.2.3:7000",
                  "--http-advertise", "ftp://x"};
    CHECK_RC(s_parse(&cfg, 7, h6), SOS_ERR_INVALID);

    return test_done("test_config");
}
