/*  sos_envelope.h: framing of everything on a node's public endpoint, the signed gossip
    envelope, and the replay guard (timestamp window plus nonce cache). */
#ifndef SOS_ENVELOPE_H
#define SOS_ENVELOPE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"
#include "sos_identity.h"

#define SOS_PROTO_VERSION    2
#define SOS_NONCE_BYTES      16
#define SOS_FRAME_MAX        (1024 * 1024 + 128 * 1024) /* largest frame a node accepts */
#define SOS_REPLAY_WINDOW_MS (300 * 1000)               /* +- accepted clock difference */

/*  Every frame is a msgpack array whose first element says what it is. */
typedef enum {
    SOS_FRAME_ENVELOPE = 1, /* node to node: [1, signed: bin, sig: bin(64) | bin(0)] */
    SOS_FRAME_REQUEST = 2,  /* client to node: [2, req_id, op, args: map, flags] */
    SOS_FRAME_REPLY = 3,    /* node to client: [3, req_id, status, body: map] */
} sos_frame_kind_t;

/*  Gossip message types carried in an envelope. */
typedef enum {
    SOS_MSG_SYNC = 1,        /* digest hash: are we in sync? (request) */
    SOS_MSG_SYNC_ACK = 2,    /* yes, or my digest: whole, or a hash per bucket (reply) */
    SOS_MSG_DELTA = 3,       /* records you lack, and origins I want (request) */
    SOS_MSG_DELTA_ACK = 4,   /* records you wanted (reply) */
    SOS_MSG_RUMOR = 5,       /* new records, pushed at once (one-way) */
    SOS_MSG_LEAVE = 6,       /* the sender is shutting down (one-way) */
    SOS_MSG_PROBE_REQ = 7,   /* reach this target for me (request to a helper) */
    SOS_MSG_PROBE_ACK = 8,   /* whether the helper reached it (reply) */
    SOS_MSG_PING = 9,        /* are you alive? (a helper's request to a target) */
    SOS_MSG_PONG = 10,       /* yes (reply) */
    SOS_MSG_DIGEST = 11,     /* my digest differs from yours in these buckets (request) */
    SOS_MSG_DIGEST_ACK = 12, /* my digest's entries in those buckets (reply) */
    SOS_MSG_MAX
} sos_msg_type_t;

/*  Peek at the kind of a frame without parsing it further. Returns SOS_ERR_MALFORMED if the
    frame does not start with a msgpack array whose first element is a known kind. */
sos_rc sos_frame_kind(const uint8_t *frame, size_t len, sos_frame_kind_t *kind);

/*  A decoded envelope. body borrows from the frame passed to sos_envelope_decode. */
typedef struct {
    uint8_t type;
    uint8_t sender[SOS_NODEID_BYTES];
    uint8_t receiver[SOS_NODEID_BYTES]; /* the node it is bound to; all zero: "whoever answers" */
    uint64_t timestamp;                 /* ms since the epoch, the sender's clock */
    uint8_t nonce[SOS_NONCE_BYTES];
    const uint8_t *body;
    size_t body_len;
    bool sig_checked; /* it carried a signature, which verified; false: unsigned, taken on
                         the word of an authenticated transport (SOS_ENV_TRANSPORT_AUTH) */
} sos_envelope_t;

/*  sos_envelope_open flags */
#define SOS_ENV_TRANSPORT_AUTH 1u /* the connection proved who sent it: accept unsigned */

/*  Build a signed envelope frame for body[0..body_len) into out (appended; the caller owns
    out), bound to receiver (the node id it is sent to; NULL binds it to the all-zero id, which
    only a first SYNC to an endpoint whose id is not known yet may use). Timestamp is now_ms,
    the nonce random. */
sos_rc sos_envelope_encode(msgpack_sbuffer *out, sos_msg_type_t type, const void *body,
                           size_t body_len, const sos_identity_t *id, const uint8_t *receiver,
                           uint64_t now_ms);

/*  As sos_envelope_encode with the nonce given: for known-answer tests, which need the same
    bytes every run. Anything that sends must use sos_envelope_encode. Both return SOS_OK,
    SOS_ERR_INVALID (type not a message type, or NULL body with body_len > 0),
    SOS_ERR_TOO_LARGE (the frame would exceed SOS_FRAME_MAX) or SOS_ERR_NOMEM; on error
    out is left as it was. */
sos_rc sos_envelope_encode_nonce(msgpack_sbuffer *out, sos_msg_type_t type, const void *body,
                                 size_t body_len, const sos_identity_t *id, const uint8_t *receiver,
                                 uint64_t now_ms, const uint8_t nonce[SOS_NONCE_BYTES]);

/*  The same envelopes with an empty signature, for connections whose transport
    authenticates the sender (CURVE between nodes): see sos_envelope.c, "Unsigned envelopes".
    Same return codes. */
sos_rc sos_envelope_encode_unsigned(msgpack_sbuffer *out, sos_msg_type_t type, const void *body,
                                    size_t body_len, const sos_identity_t *id,
                                    const uint8_t *receiver, uint64_t now_ms);
sos_rc sos_envelope_encode_unsigned_nonce(msgpack_sbuffer *out, sos_msg_type_t type,
                                          const void *body, size_t body_len,
                                          const sos_identity_t *id, const uint8_t *receiver,
                                          uint64_t now_ms, const uint8_t nonce[SOS_NONCE_BYTES]);

/*  Decode and verify an envelope frame. Checks, cheapest first: framing and types
    (SOS_ERR_MALFORMED), size (SOS_ERR_TOO_LARGE), protocol version and message type
    (SOS_ERR_VERSION; *version_p, if not NULL, receives the version the frame claims, so the
    caller can name it), the receiver (SOS_ERR_RECEIVER unless it is me or the all-zero id;
    no check if me is NULL), timestamp within +-window_ms of now_ms (SOS_ERR_REPLAY), then
    the sender's signature in the envelope domain (SOS_ERR_SIGNATURE). What a zero-bound
    envelope may do is the caller's to decide (sos_envelope_unbound). The nonce is checked
    by the replay guard. An unsigned envelope is SOS_ERR_SIGNATURE here. */
sos_rc sos_envelope_decode(sos_envelope_t *env, const uint8_t *frame, size_t len, const uint8_t *me,
                           uint64_t now_ms, uint64_t window_ms, uint64_t *version_p);

/*  As sos_envelope_decode; with SOS_ENV_TRANSPORT_AUTH in flags an unsigned envelope passes
    too (env->sig_checked false), and the caller must check env->sender against the key the
    connection authenticated before acting on it. A signed one is verified either way. */
sos_rc sos_envelope_open(sos_envelope_t *env, const uint8_t *frame, size_t len, const uint8_t *me,
                         uint64_t now_ms, uint64_t window_ms, unsigned flags, uint64_t *version_p);

/*  True if env is bound to the all-zero id rather than to one node. */
bool sos_envelope_unbound(const sos_envelope_t *env);

/*  The replay guard: remembers the nonces of accepted envelopes for the window. It holds at
    most capacity nonces exactly; when full, the oldest goes to a Bloom filter of its
    timestamp's period, so the guard stays sound with bounded memory, and a flood of valid
    envelopes cannot make it refuse honest ones dated now (see sos_envelope.c). capacity and
    window_ms must not be 0. */
typedef struct _sos_replay_t sos_replay_t;

sos_replay_t *sos_replay_new(size_t capacity, uint64_t window_ms);
void sos_replay_destroy(sos_replay_t **self_p);
/*  SOS_OK and remember the nonce, or SOS_ERR_REPLAY if it was seen or is too old. */
sos_rc sos_replay_check(sos_replay_t *self, const uint8_t nonce[SOS_NONCE_BYTES],
                        uint64_t timestamp, uint64_t now_ms);
size_t sos_replay_size(sos_replay_t *self);

#endif
