/*  test_node_step.c: the test hooks of the stateful fuzzer, on a real node: sos_node_step
    handles one input at a time, and the node reads time from an injected clock
    (sos_clock_set_implementation): its start floor, its replay window and its rounds. */
#include <czmq.h>
#include <unistd.h>

#include "node_test.h"
#include "sos_node.h"
#include "sos_node_int.h"

static uint64_t s_now = 1700000000000ULL, s_mono = 5000;

static uint64_t
s_now_ms(void)
{
    return s_now;
}

static uint64_t
s_mono_ms(void)
{
    return s_mono;
}

/*  The type of the envelope waiting on dealer, or 0 if none is. The dealer is an inproc
    connection to the node in this process, so an unsigned reply on it is the node's. */
static int
s_reply_type(zsock_t *dealer)
{
    if (!(zsock_events(dealer) & ZMQ_POLLIN))
        return 0;
    zframe_t *f = zframe_recv(dealer);
    sos_envelope_t env;
    int type = f && sos_envelope_open(&env, zframe_data(f), zframe_size(f), NULL, s_now,
                                      SOS_REPLAY_WINDOW_MS, SOS_ENV_TRANSPORT_AUTH, NULL) == SOS_OK
                   ? env.type
                   : -1;
    zframe_destroy(&f);
    return type;
}

int
main(void)
{
    test_init("test_node_step: a node run step by step on an injected clock");
    CHECK_RC(sos_crypto_init(), SOS_OK);
    static const sos_clock_impl_t clock = {s_now_ms, s_mono_ms};
    sos_clock_set_implementation(&clock);
    sos_log_set_level(SOS_LOG_ERROR);
    char dir[] = "/tmp/test_node_step.XXXXXX";
    CHECK(mkdtemp(dir));
    sos_config_t cfg;
    node_test_config(&cfg, dir, "inproc://test-node-step");
    cfg.gossip_interval_ms = 1000; /* a connect deadline of 2 s: see the last section */
    sos_rc rc;
    sos_node_t *node = sos_node_new(&cfg, &rc, NULL, 0);
    CHECK(node);
    if (!node)
        return test_done("test_node_step");
    CHECK(node->start_floor_ms == s_now && node->start_mono == s_mono);
    zsock_t *dealer = zsock_new_dealer(">inproc://test-node-step");
    CHECK(dealer);
    sos_identity_t peer;
    test_seed_identity(&peer, 9);

    SECTION("nothing waiting: the step returns 0 at once");
    CHECK(sos_node_step(node, SOS_STEP_INPUT, 0) == 0);

    SECTION("a SYNC dated by the injected clock is handled in one step and answered");
    node_test_sync(dealer, &peer, node->id.pk, s_now, 1);
    CHECK(sos_node_step(node, SOS_STEP_INPUT, 1000) == 1);
    zmq_pollitem_t item = {.socket = zsock_resolve(dealer), .events = ZMQ_POLLIN};
    CHECK(zmq_poll(&item, 1, 1000) == 1);
    CHECK(s_reply_type(dealer) == SOS_MSG_SYNC_ACK);
    CHECK(sos_node_step(node, SOS_STEP_INPUT, 0) == 0);

    SECTION("dated a millisecond before the node started (on the injected clock): refused");
    node_test_sync(dealer, &peer, node->id.pk, s_now - 1, 2);
    CHECK(sos_node_step(node, SOS_STEP_INPUT, 1000) == 1);
    CHECK(node->stats.drops[SOS_DROP_BEFORE_START] == 1);
    CHECK(s_reply_type(dealer) == 0);

    SECTION("the injected clock moves 301 s: what was dated at the start is out of the window");
    uint64_t start = s_now;
    s_now += 301 * 1000;
    s_mono += 301 * 1000;
    node_test_sync(dealer, &peer, node->id.pk, start, 3);
    CHECK(sos_node_step(node, SOS_STEP_INPUT, 1000) == 1);
    CHECK(node->stats.drops[SOS_DROP_REPLAY_WINDOW] == 1);
    node_test_sync(dealer, &peer, node->id.pk, s_now, 4);
    CHECK(sos_node_step(node, SOS_STEP_INPUT, 1000) == 1);
    CHECK(zmq_poll(&item, 1, 1000) == 1);
    CHECK(s_reply_type(dealer) == SOS_MSG_SYNC_ACK);

    SECTION("a pass that only merges another's record commits lazily; one that signs, durably");
    {
        sos_identity_t other;
        test_seed_identity(&other, 11);
        sos_record_t rec = {.kind = SOS_REC_WORKER, .version = 1};
        snprintf(rec.url, sizeof rec.url, "tcp://127.0.0.1:8");
        CHECK_RC(sos_record_sign(&rec, &other), SOS_OK);
        const uint8_t *wires[1] = {rec.wire};
        size_t lens[1] = {rec.wire_len};
        msgpack_sbuffer body, frame;
        msgpack_sbuffer_init(&body);
        msgpack_sbuffer_init(&frame);
        sos_gmsg_t msg = {0};
        CHECK_RC(sos_gmsg_encode(&body, &msg, wires, lens, 1), SOS_OK);
        uint8_t nonce[SOS_NONCE_BYTES] = {5};
        CHECK_RC(sos_envelope_encode_nonce(&frame, SOS_MSG_RUMOR, body.data, body.size, &peer,
                                           node->id.pk, s_now, nonce),
                 SOS_OK);
        CHECK(zsock_send(dealer, "b", frame.data, frame.size) == 0);
        uint64_t commits = node->stats.commits, lazy = node->stats.commits_lazy;
        CHECK(sos_node_step(node, SOS_STEP_INPUT, 1000) == 1);
        CHECK(node->stats.merges[SOS_MERGE_NEW] >= 1);
        CHECK(node->stats.commits == commits + 1 && node->stats.commits_lazy == lazy + 1);
        /*  Our own record, signed here: its version must survive a power cut */
        sos_record_t mine = {.kind = SOS_REC_WORKER};
        snprintf(mine.url, sizeof mine.url, "tcp://127.0.0.1:7");
        sos_node_pass_begin(node);
        CHECK_RC(sos_node_publish(node, &mine), SOS_OK);
        sos_node_pass_end(node);
        CHECK(node->stats.commits == commits + 2 && node->stats.commits_lazy == lazy + 1);
        msgpack_sbuffer_destroy(&body);
        msgpack_sbuffer_destroy(&frame);
    }

    SECTION("timer steps run the reactor's handlers: a round is counted");
    uint64_t rounds = node->stats.rounds;
    CHECK(sos_node_step(node, SOS_STEP_ROUND, 0) == 1);
    CHECK(sos_node_step(node, SOS_STEP_TICK, 0) == 1);
    CHECK(sos_node_step(node, SOS_STEP_HOUSEKEEPING, 0) == 1);
    CHECK(node->stats.rounds == rounds + 1);

    SECTION(
        "a connection still down fails its peer once per socket; found down again, not counted");
    {
        /*  Nothing listens at the worker's endpoint (tcp://127.0.0.1:8): its DEALER never
            connects. A round finds it down once the connect deadline (2 s at a 1 s
            interval) has passed, and that counts one failure per socket. Its first failure
            makes it a suspect (no helpers to ask here): a suspect's new socket counts as
            down after the short deadline (sos_fd_connect_timeout: 100 ms here), and is
            replaced once it is one conservative deadline old; between the two, rounds find
            it down again (down_again, not counted). Ticks every 250 ms and rounds every
            second, on time, so that local health stays 0. */
        sos_identity_t other;
        test_seed_identity(&other, 11);
        char hex[SOS_NODEID_HEX + 1];
        sos_hex(hex, other.pk, SOS_NODEID_BYTES);
        uint64_t again = node->stats.down_again, counted_on = 0, socket = 0;
        uint32_t fails = 0, sockets = 0;
        for (int i = 1; i <= 64; i++) {
            s_now += 250;
            s_mono += 250;
            if (i % 4 == 0)
                sos_node_step(node, SOS_STEP_ROUND, 0);
            sos_node_step(node, SOS_STEP_TICK, 0);
            sos_peer_t *p = sos_gossip_peer_find(node, hex);
            if (!p || p->retired || !p->in_dir)
                break; /* removed: failures enough on enough sockets */
            if (p->fd.fail_count > fails) {
                /*  Counted on the socket of the step before: a step may replace it. */
                CHECK(p->fd.fail_count == fails + 1);
                CHECK(socket != counted_on); /* one counted failure per socket */
                counted_on = socket;
                sockets++;
            }
            fails = p->fd.fail_count;
            socket = p->created_mono;
        }
        sos_gossip_status_t gs;
        sos_gossip_status(node, &gs);
        CHECK(gs.health == 0);
        CHECK(sockets >= 2);                   /* a dead peer still fails, socket by socket */
        CHECK(node->stats.down_again > again); /* and was found down again between */
    }

    zsock_destroy(&dealer);
    sos_node_destroy(&node);
    sos_clock_set_implementation(NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_done("test_node_step");
}
