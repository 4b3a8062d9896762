/*  node_test.h: what the unit tests that drive a real node over a DEALER share besides
    proto_test.h: the node's configuration, and a gossip message sent as a peer would. */
#ifndef NODE_TEST_H
#define NODE_TEST_H

#include <czmq.h>

#include "proto_test.h"
#include "sos_config.h"
#include "sos_envelope.h"
#include "sos_gmsg.h"

/*  A node's defaults with its store in dir, bound to listen (an inproc endpoint the test's
    DEALER connects to), advertising a loopback address, and a small map. */
static inline void
node_test_config(sos_config_t *cfg, const char *dir, const char *listen)
{
    sos_config_defaults(cfg);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", dir);
    snprintf(cfg->listen, sizeof cfg->listen, "%s", listen);
    snprintf(cfg->advertise, sizeof cfg->advertise, "tcp://127.0.0.1:7");
    cfg->map_size = 16ULL << 20;
}

/*  An empty SYNC (req_id 7) from peer, bound to node_id, dated when, with nonce n, sent on
    dealer. */
static inline void
node_test_sync(zsock_t *dealer, const sos_identity_t *peer, const uint8_t *node_id, uint64_t when,
               uint8_t n)
{
    msgpack_sbuffer body, frame;
    msgpack_sbuffer_init(&body);
    msgpack_sbuffer_init(&frame);
    sos_gmsg_t msg = {.req_id = 7};
    CHECK_RC(sos_gmsg_encode(&body, &msg, NULL, NULL, 0), SOS_OK);
    uint8_t nonce[SOS_NONCE_BYTES] = {n};
    CHECK_RC(sos_envelope_encode_nonce(&frame, SOS_MSG_SYNC, body.data, body.size, peer, node_id,
                                       when, nonce),
             SOS_OK);
    CHECK(zsock_send(dealer, "b", frame.data, frame.size) == 0);
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&frame);
}

#endif
