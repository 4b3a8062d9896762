/*  node_test.h: what the unit tests that drive a real node over a DEALER share besides
    proto_test.h: a gossip message sent as a peer would. */
#ifndef NODE_TEST_H
#define NODE_TEST_H

#include <czmq.h>

#include "proto_test.h"
#include "sos_envelope.h"
#include "sos_gmsg.h"

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
