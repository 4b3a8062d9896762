/*  test_gossip_state.c: gossip's state as the rest of the node reaches it, on a real node:
    the peer table walked and searched, the status figures, the digest marked dirty, and
    the peers freed with the node (retired ones too; the sanitizer build checks the leaks). */
#include <czmq.h>
#include <unistd.h>

#include "node_test.h"
#include "sos_gossip_int.h"
#include "sos_node.h"

/*  Counts the peers walked; stops (returning 7) at the one named in stop, if any. */
typedef struct {
    const sos_peer_t *stop;
    int n;
} s_walk_t;

static int
s_walk(void *arg, sos_peer_t *peer)
{
    s_walk_t *w = arg;
    w->n++;
    return peer == w->stop ? 7 : 0;
}

int
main(void)
{
    test_init("test_gossip_state: gossip's state behind its functions");
    sos_log_set_level(SOS_LOG_ERROR);
    char dir[] = "/tmp/test_gossip_state.XXXXXX";
    CHECK(mkdtemp(dir));
    sos_identity_t pinned;
    test_seed_identity(&pinned, 40);
    sos_config_t cfg;
    node_test_config(&cfg, dir, "inproc://test-gossip-state");
    /*  Two genesis addresses, nothing listening there: one pinned to an id, one not. */
    cfg.n_genesis = 2;
    snprintf(cfg.genesis[0].url, sizeof cfg.genesis[0].url, "tcp://127.0.0.1:9");
    cfg.genesis[0].pinned = true;
    memcpy(cfg.genesis[0].id, pinned.pk, SOS_NODEID_BYTES);
    snprintf(cfg.genesis[1].url, sizeof cfg.genesis[1].url, "tcp://127.0.0.1:11");
    sos_rc rc;
    sos_node_t *node = sos_node_new(&cfg, &rc, NULL, 0);
    CHECK(node);
    if (!node)
        return test_done("test_gossip_state");

    SECTION("the walk visits each peer once, and stops at a non-zero");
    s_walk_t w = {0};
    CHECK(sos_gossip_foreach_peer(node, s_walk, &w) == 0);
    CHECK(w.n == 2);
    char hex[SOS_NODEID_HEX + 1];
    sos_hex(hex, pinned.pk, SOS_NODEID_BYTES);
    sos_peer_t *found = sos_gossip_peer_find(node, hex);
    CHECK(found && streq(found->url, "tcp://127.0.0.1:9") && found->is_genesis && found->pinned);
    w = (s_walk_t){.stop = found};
    CHECK(sos_gossip_foreach_peer(node, s_walk, &w) == 7);
    CHECK(w.n >= 1 && w.n <= 2);

    SECTION("a peer is found by id only once its id is known");
    sos_identity_t other;
    test_seed_identity(&other, 80);
    sos_hex(hex, other.pk, SOS_NODEID_BYTES);
    CHECK(sos_gossip_peer_find(node, hex) == NULL);

    SECTION("status: the peers, our record's version, the connections and the view");
    sos_gossip_status_t gs;
    sos_gossip_status(node, &gs);
    CHECK(gs.peers == 2);
    CHECK(gs.record_version == 1); /* signed anew at the first start */
    CHECK(gs.connections_open <= gs.peers);
    CHECK(gs.connections_view == gs.view_size && gs.view_size <= gs.view_cap);
    CHECK(gs.connections_short_max > 0);
    CHECK(gs.gaps == 0 && gs.workers_probation == 0 && gs.probation_samples == 0);
    CHECK(gs.probation_cap > 0);

    SECTION("a SYNC makes the digest, and sos_gossip_dirty marks it to be made anew");
    zsock_t *dealer = zsock_new_dealer(">inproc://test-gossip-state");
    CHECK(dealer);
    sos_identity_t peer;
    test_seed_identity(&peer, 9);
    node_test_sync(dealer, &peer, node->id.pk, sos_now_ms(), 1);
    CHECK(sos_node_step(node, SOS_STEP_INPUT, 1000) == 1);
    CHECK(!node->gossip->digest_dirty && node->gossip->digest_n == 1); /* our own record */
    sos_gossip_dirty(node);
    CHECK(node->gossip->digest_dirty);
    node_test_sync(dealer, &peer, node->id.pk, sos_now_ms(), 2);
    CHECK(sos_node_step(node, SOS_STEP_INPUT, 1000) == 1);
    CHECK(!node->gossip->digest_dirty && node->gossip->digest_n == 1);

    SECTION("a forward's target whose id nobody knows is retired at once: out of the table");
    CHECK(sos_gossip_peer_for_url(node, "tcp://127.0.0.1:13", NULL) == NULL);
    sos_gossip_status(node, &gs);
    CHECK(gs.peers == 2);
    CHECK(zlistx_size(node->gossip->retired) == 1);

    SECTION("the node's destroy frees gossip's state, its peers, retired or not, and sockets");
    zsock_destroy(&dealer);
    sos_node_destroy(&node);
    CHECK(node == NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_done("test_gossip_state");
}
