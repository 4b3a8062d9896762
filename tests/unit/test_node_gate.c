/*  test_node_gate.c: connection caps on a real ROUTER over loopback: connections are counted
    from the monitor, refused by ZAP past the total or per-address cap, and counted out when
    they close, so that new ones are admitted again. With CURVE: the client's key as the
    User-Id, handshakes past the rate refused and counted, NULL clients counted. */
#include <czmq.h>
#include <sodium.h>

#include "proto_test.h"
#include "sos_gate.h"
#include "sos_identity.h"

/*  The User-Id of the last message the router echoed (CURVE: the client key in hex). */
static char s_user_id[80];

static uint64_t s_frozen_ms = 1000000;
static uint64_t
s_frozen_now(void)
{
    return 1700000000000ull + s_frozen_ms;
}
static uint64_t
s_frozen_mono(void)
{
    return s_frozen_ms;
}
static const sos_clock_impl_t s_frozen = {s_frozen_now, s_frozen_mono};

/*  Serve the gate (monitor and ZAP) for up to ms, or until the DEALER gets its reply. */
static bool
s_pump(sos_gate_t *gate, zsock_t *router, zsock_t *dealer, int ms, uint32_t *refused)
{
    zpoller_t *poller =
        zpoller_new(sos_gate_monitor(gate), sos_gate_zap(gate), router, dealer, NULL);
    bool answered = false;
    int64_t end = zclock_mono() + ms;
    while (!answered && zclock_mono() < end) {
        void *which = zpoller_wait(poller, 20);
        const char *address;
        if (which == sos_gate_monitor(gate))
            sos_gate_on_monitor(gate);
        else if (which == sos_gate_zap(gate))
            *refused += sos_gate_on_zap(gate, &address);
        else if (which == router) {
            zmq_msg_t id, body;
            zmq_msg_init(&id);
            zmq_msg_init(&body);
            void *h = zsock_resolve(router);
            if (zmq_msg_recv(&id, h, 0) >= 0 && zmq_msg_recv(&body, h, 0) >= 0) {
                const char *user = zmq_msg_gets(&body, "User-Id");
                snprintf(s_user_id, sizeof s_user_id, "%s", user ? user : "");
                zmq_msg_send(&id, h, ZMQ_SNDMORE); /* echo */
                zmq_msg_send(&body, h, 0);
            }
            zmq_msg_close(&id);
            zmq_msg_close(&body);
        } else if (which && which == dealer) {
            char *s = zstr_recv(dealer);
            zstr_free(&s);
            answered = true;
        }
    }
    zpoller_destroy(&poller);
    return answered;
}

static zsock_t *
s_dealer(int port)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zsock_set_linger(d, 0);
    zsock_connect(d, "tcp://127.0.0.1:%d", port);
    zstr_send(d, "ping");
    return d;
}

/*  Wait until the gate counts want connections open. */
static bool
s_wait_open(sos_gate_t *gate, zsock_t *router, uint32_t want, uint32_t *refused)
{
    for (int i = 0; i < 100 && sos_gate_connections(gate) != want; i++)
        s_pump(gate, router, NULL, 50, refused);
    return sos_gate_connections(gate) == want;
}

int
main(void)
{
    test_init("test_node_gate");
    zsys_init();
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(router, 0);
    const char *why = NULL;

    SECTION("a gate binds the ZAP endpoint; a second one in the process cannot");
    sos_gate_t *gate = sos_gate_new(router, 3, 2, &why);
    CHECK(gate);
    zsock_t *other = zsock_new(ZMQ_ROUTER);
    sos_gate_t *second = sos_gate_new(other, 3, 2, &why);
    CHECK(!second && why && strstr(why, "ZAP"));
    zsock_destroy(&other);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    CHECK(port > 0);

    SECTION("connections up to the cap per address are admitted and counted");
    uint32_t refused = 0;
    zsock_t *d[4];
    d[0] = s_dealer(port);
    CHECK(s_pump(gate, router, d[0], 10000, &refused));
    d[1] = s_dealer(port);
    CHECK(s_pump(gate, router, d[1], 10000, &refused));
    CHECK(sos_gate_connections(gate) == 2);
    CHECK(sos_gate_connections_from(gate, "127.0.0.1") == 2);
    CHECK(refused == 0);

    SECTION("one more from the same address is refused");
    d[2] = s_dealer(port);
    CHECK(!s_pump(gate, router, d[2], 1500, &refused));
    CHECK(refused >= 1);

    SECTION("once one closes, a new connection is admitted again");
    zsock_destroy(&d[2]);
    zsock_destroy(&d[0]);
    CHECK(s_wait_open(gate, router, 1, &refused));
    CHECK(sos_gate_connections_from(gate, "127.0.0.1") == 1);
    d[0] = s_dealer(port);
    CHECK(s_pump(gate, router, d[0], 10000, &refused));
    CHECK(sos_gate_connections(gate) == 2);

    SECTION("all closed: nothing counted");
    zsock_destroy(&d[0]);
    zsock_destroy(&d[1]);
    CHECK(s_wait_open(gate, router, 0, &refused));
    CHECK(sos_gate_connections_from(gate, "127.0.0.1") == 0);

    sos_gate_destroy(&gate);
    CHECK(gate == NULL);
    sos_gate_destroy(&gate); /* NULL-safe */
    zsock_destroy(&router);

    SECTION("the total cap refuses whatever the address, and the ZAP endpoint is free again");
    router = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(router, 0);
    gate = sos_gate_new(router, 1, 0, &why);
    CHECK(gate);
    if (!gate) {
        fprintf(stderr, "no gate: %s\n", why);
        return test_done("test_node_gate");
    }
    port = zsock_bind(router, "tcp://127.0.0.1:*");
    refused = 0;
    d[0] = s_dealer(port);
    CHECK(s_pump(gate, router, d[0], 10000, &refused));
    d[1] = s_dealer(port);
    CHECK(!s_pump(gate, router, d[1], 1500, &refused));
    CHECK(refused >= 1);
    zsock_destroy(&d[0]);
    zsock_destroy(&d[1]);
    sos_gate_destroy(&gate);
    zsock_destroy(&router);

    SECTION("CURVE: the client's long-term key is the connection's User-Id");
    CHECK(sodium_init() >= 0);
    sos_identity_t server_id, client_id;
    sos_identity_generate(&server_id);
    sos_identity_generate(&client_id);
    uint8_t spk[SOS_CURVE_KEY_BYTES], ssk[SOS_CURVE_KEY_BYTES];
    uint8_t cpk[SOS_CURVE_KEY_BYTES], csk[SOS_CURVE_KEY_BYTES];
    CHECK(sos_identity_curve_keys(spk, ssk, &server_id) == SOS_OK);
    CHECK(sos_identity_curve_keys(cpk, csk, &client_id) == SOS_OK);
    router = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(router, 0);
    gate = sos_gate_new(router, 100, 0, &why);
    CHECK(gate);
    if (!gate)
        return test_done("test_node_gate");
    sos_gate_set_curve(gate, true, 1, 100); /* one a second per address: bursts of 2 */
    zsock_set_curve_server(router, 1);
    zsock_set_curve_publickey_bin(router, spk);
    zsock_set_curve_secretkey_bin(router, ssk);
    port = zsock_bind(router, "tcp://127.0.0.1:*");
    CHECK(port > 0);
    refused = 0;
    /*  The handshake buckets run on a clock the test holds still, so that which handshake
        finds the bucket empty does not depend on how fast this machine is. */
    sos_clock_set_implementation(&s_frozen);
    zsock_t *c[4];
    for (int i = 0; i < 3; i++) {
        c[i] = zsock_new(ZMQ_DEALER);
        zsock_set_linger(c[i], 0);
        zsock_set_curve_serverkey_bin(c[i], spk);
        zsock_set_curve_publickey_bin(c[i], cpk);
        zsock_set_curve_secretkey_bin(c[i], csk);
    }
    s_user_id[0] = '\0';
    zsock_connect(c[0], "tcp://127.0.0.1:%d", port);
    zstr_send(c[0], "ping");
    CHECK(s_pump(gate, router, c[0], 10000, &refused));
    char want[2 * SOS_CURVE_KEY_BYTES + 1];
    sodium_bin2hex(want, sizeof want, cpk, sizeof cpk);
    CHECK(strcmp(s_user_id, want) == 0);
    zsock_connect(c[1], "tcp://127.0.0.1:%d", port);
    zstr_send(c[1], "ping");
    CHECK(s_pump(gate, router, c[1], 10000, &refused));

    SECTION("CURVE: a third handshake within the burst is refused and counted");
    zsock_connect(c[2], "tcp://127.0.0.1:%d", port);
    zstr_send(c[2], "ping");
    uint32_t hs_refused = 0;
    for (int i = 0; i < 100 && !hs_refused; i++) {
        CHECK(!s_pump(gate, router, c[2], 100, &refused));
        hs_refused += sos_gate_take_handshake_refusals(gate);
    }
    CHECK(hs_refused >= 1);
    CHECK(sos_gate_take_handshake_refusals(gate) == 0); /* taken */
    CHECK(refused == 0);                                /* not a connection cap */

    SECTION("CURVE: a refused client is not let in again; a new handshake a second later is");
    /*  libzmq ends a connection whose handshake was refused for good: no reconnect. */
    s_frozen_ms += 1000;
    CHECK(!s_pump(gate, router, c[2], 300, &refused));
    zsock_t *late = zsock_new(ZMQ_DEALER);
    zsock_set_linger(late, 0);
    zsock_set_curve_serverkey_bin(late, spk);
    zsock_set_curve_publickey_bin(late, cpk);
    zsock_set_curve_secretkey_bin(late, csk);
    zsock_connect(late, "tcp://127.0.0.1:%d", port);
    zstr_send(late, "ping");
    CHECK(s_pump(gate, router, late, 10000, &refused));
    zsock_destroy(&late);
    sos_clock_set_implementation(NULL);

    SECTION("CURVE: a NULL client gets nothing, and the mismatch is counted");
    uint32_t mismatched = 0;
    for (int i = 0; i < 20 && !mismatched; i++) {
        c[3] = s_dealer(port);
        CHECK(!s_pump(gate, router, c[3], 300, &refused));
        zsock_destroy(&c[3]);
        mismatched += sos_gate_take_mechanism_refusals(gate);
    }
    CHECK(mismatched >= 1);
    for (int i = 0; i < 3; i++)
        zsock_destroy(&c[i]);
    sos_gate_destroy(&gate);
    zsock_destroy(&router);
    sos_identity_wipe(&server_id);
    sos_identity_wipe(&client_id);
    return test_done("test_node_gate");
}
