/*  sos_gmsg.h: the body of a gossip envelope. One structure serves every message type; the
    type in the envelope says which fields matter (protocol/PROTOCOL.md has the table). */
#ifndef SOS_GMSG_H
#define SOS_GMSG_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "sos_error.h"
#include "sos_record.h"

#define SOS_DIGEST_HASH_BYTES 16
#define SOS_DIGEST_MAX        8192 /* origins in one digest or want list */
#define SOS_BATCH_MAX         512  /* records in one message */
#define SOS_SUSPECTS_MAX      16   /* peers named as suspected dead in one message */
#define SOS_BUCKETS_MAX       1024 /* buckets a digest is cut into, at most (a power of two) */

#define SOS_GMSG_IN_SYNC 1 /* SYNC_ACK: the digests are equal, nothing follows */
#define SOS_GMSG_MORE    2 /* DELTA / DELTA_ACK: the sender had more than fit */

/*  An origin and a version: a digest entry, a want, a suspect. removed is a digest entry's
    only: the sender removed the origin's worker (it holds a tombstone and no worker record
    of it), so that a peer that still lists the worker at that version sees the difference
    (the two versions alone are equal). Want and suspect entries do not carry it (encoded
    without it, decoded false). age_ms is a suspect entry's only: how long the sender has
    suspected the origin, in ms (0 elsewhere). */
typedef struct {
    uint8_t origin[SOS_NODEID_BYTES];
    uint64_t version;
    bool removed;
    uint32_t age_ms;
} sos_digest_entry_t;

/*  A piece of one bucket: its entries from origin `from` on (inclusive), up to origin `to`
    (inclusive) or, with to_end, to the bucket's end. A DIGEST asks for one (to_end: as many
    as fit), and its DIGEST_ACK answers with the piece it covered: a bucket larger than one
    message is covered piece by piece (sos_core_digest.h). from and to lie in the bucket and
    from <= to. Wire: [bucket: uint, from: bin(32), to: bin(32) | nil]. */
typedef struct {
    uint16_t bucket;
    uint8_t from[SOS_NODEID_BYTES];
    bool to_end;
    uint8_t to[SOS_NODEID_BYTES]; /* unused with to_end */
} sos_bucket_piece_t;

/*  Wire: [req_id, flags, hash: bin(16), n_origins, self: bin|nil,
           suspects: [[id: bin(32), version, age_ms: uint32]...],
           digest: [[origin, version, removed: bool]...], want: [[origin, version]...],
           records: [bin...]]
    and, in a SYNC_ACK by buckets, a DIGEST and a DIGEST_ACK only, a tenth element:
           buckets: [nb, numbers: [uint...], sums: bin(0 | 16 nb) (, piece)]
    the piece (sos_bucket_piece_t) only in a DIGEST or DIGEST_ACK that asks or covers part
    of a bucket: whole buckets cost no byte more. */
typedef struct {
    uint64_t req_id;
    uint32_t flags;
    uint8_t hash[SOS_DIGEST_HASH_BYTES];
    uint32_t n_origins;
    bool has_self;
    sos_record_t self; /* the sender's own worker record */
    uint32_t n_suspects;
    /* peers the sender has seen fail, each with the version of its worker record that the
       suspicion is about: a newer record from the suspect refutes it */
    sos_digest_entry_t suspects[SOS_SUSPECTS_MAX];
    uint32_t n_digest;
    sos_digest_entry_t *digest; /* owned, n_digest entries */
    uint32_t n_want;
    sos_digest_entry_t *want; /* owned, n_want entries */
    uint32_t n_records;
    sos_record_t *records; /* owned, n_records entries, each verified */
    /*  The digest cut into buckets (sos_core_digest.h): has_buckets says the tenth element
        is there. nb: a power of two, 1..SOS_BUCKETS_MAX; buckets: bucket numbers, strictly
        ascending, each below nb (a DIGEST's asked, a DIGEST_ACK's covered); sums: none, or
        one hash per bucket (a SYNC_ACK's). Which of them a type needs is its handler's to
        check. */
    bool has_buckets;
    uint32_t nb;
    uint32_t n_buckets;
    uint16_t *buckets;                      /* owned, n_buckets entries */
    uint32_t n_sums;                        /* 0 or nb */
    uint8_t (*sums)[SOS_DIGEST_HASH_BYTES]; /* owned, n_sums entries */
    bool has_piece;                         /* the bucket element's fourth part */
    sos_bucket_piece_t piece;               /* its bucket below nb and not among buckets */
} sos_gmsg_t;

/*  Decode a body. Strict and bounded: counts above the caps give SOS_ERR_TOO_LARGE, arrays
    are allocated only after their count is checked against the cap and the bytes left.
    Every record (and self) is decoded and verified; one bad record rejects the whole message
    with that record's error. self must be a worker record (SOS_ERR_MALFORMED if not); that
    it is the envelope sender's is for the caller to check. flags and n_origins must fit
    32 bits. The bucket element, when there, must be whole: nb a power of two up to
    SOS_BUCKETS_MAX, at most nb bucket numbers, strictly ascending and below nb, and sums
    empty or exactly 16 nb bytes, and a piece, when there, of a bucket below nb that is not
    among the numbers, with from (and to, if not to_end) in that bucket and from <= to
    (SOS_ERR_MALFORMED; SOS_ERR_TOO_LARGE for nb above the cap). On any return, call
    sos_gmsg_release. */
sos_rc sos_gmsg_decode(sos_gmsg_t *msg, const uint8_t *body, size_t len);

/*  True if nb is a bucket count: a power of two, 1..SOS_BUCKETS_MAX. */
bool sos_gmsg_nb_ok(uint64_t nb);

/*  The bucket of origin among nb (a valid count): the top log2(nb) bits of its first two
    bytes. The wire's rule: the decoder checks a piece's bounds by it, and the digest's
    buckets (node/sos_core_digest.c) are cut by it. */
uint32_t sos_gmsg_bucket(const uint8_t origin[SOS_NODEID_BYTES], uint64_t nb);

/*  As sos_gmsg_decode, but the records and self are only parsed, their signatures not
    checked (a bad structure gives SOS_ERR_CORRUPT): for a caller that skips the records it
    already holds byte for byte and verifies each of the others (sos_record_decode on its
    wire) before it uses any, self included. */
sos_rc sos_gmsg_decode_unverified(sos_gmsg_t *msg, const uint8_t *body, size_t len);
void sos_gmsg_release(sos_gmsg_t *msg);

/*  Encode msg's fields, except records, which are given as n wire forms (wires[i], lens[i]),
    as stored, so relaying never re-encodes what an origin signed. self is taken from
    msg->self.wire when has_self. digest/want arrays are read from msg; the bucket element
    is written when has_buckets, under the decoder's rules (SOS_ERR_INVALID if broken).
    Appends to out.
    Returns SOS_ERR_TOO_LARGE if a count is above its cap or a wire above SOS_RECORD_MAX,
    SOS_ERR_INVALID for a NULL array with a non-zero count, SOS_ERR_NOMEM; on error out is
    left as it was. The records are not re-verified. */
sos_rc sos_gmsg_encode(msgpack_sbuffer *out, const sos_gmsg_t *msg, const uint8_t *const *wires,
                       const size_t *lens, uint32_t n);

/*  The body of the indirect probe's messages (PROBE_REQ, PROBE_ACK, PING, PONG):
        [req_id: uint, target: bin(32), reached: bool]
    PROBE_REQ names the target a helper should reach (reached false); PROBE_ACK answers with
    the request's req_id and target, and whether a signed PONG came back in time; PING and
    PONG carry the helper's req_id and the target's id. No target url: a helper dials only
    the address its own directory holds for the target. Fixed size, nothing allocated. */
typedef struct {
    uint64_t req_id;
    uint8_t target[SOS_NODEID_BYTES];
    bool reached;
} sos_probe_msg_t;

/*  Decode a probe body: exactly three fields of those types, else SOS_ERR_MALFORMED (or
    sos_mp_parse's error for bytes that are no msgpack object). msg is zeroed first. */
sos_rc sos_probe_decode(sos_probe_msg_t *msg, const uint8_t *body, size_t len);

/*  Append msg's encoding to out. SOS_OK or SOS_ERR_NOMEM (out left as it was). */
sos_rc sos_probe_encode(msgpack_sbuffer *out, const sos_probe_msg_t *msg);

/*  The digest hash: sorts entries[0..n) by origin (in place; origins are distinct in a
    digest) and writes BLAKE2b-128 of the domain prefix "sosnode/2/digest\0", n as 4 bytes
    big-endian, then each origin, version (8 bytes big-endian) and removed (1 byte, 0 or 1),
    into out. A collision
    resistant hash of the canonical list: unlike an XOR of per-origin hashes, no one can
    build a digest that matches another on purpose. */
void sos_digest_hash(uint8_t out[SOS_DIGEST_HASH_BYTES], sos_digest_entry_t *entries, uint32_t n);

#endif
