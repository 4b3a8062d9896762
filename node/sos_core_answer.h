/*  sos_core_answer.h: the answerer's side of an anti-entropy exchange, decided once for the
    node (node/sos_gossip.c) and the simulator (tools/sossim_node.c): what a SYNC is answered
    with (IN_SYNC, the whole digest, or bucket sums), and what a DIGEST is answered with
    (the entries of the piece and the buckets asked, as many as fit). No frames, no clock,
    no socket, no log: the caller's digest in through a view, the reply's fields out; the
    caller fills in what it keeps itself (its bucket sums, its own record), encodes, sends,
    counts and logs. */
#ifndef SOS_CORE_ANSWER_H
#define SOS_CORE_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_core_digest.h"
#include "sos_gmsg.h"

/*  The answerer's digest as the caller keeps it. Borrowed for the call; a reply that points
    into entries is valid as long as they are. */
typedef struct {
    const uint8_t *hash;               /* SOS_DIGEST_HASH_BYTES: the digest's hash */
    uint32_t n;                        /* origins in the digest */
    const sos_digest_entry_t *entries; /* the n entries sorted by origin; NULL: not at hand */
} sos_digest_view_t;

/*  The three answers to a SYNC. */
typedef enum {
    SOS_ANSWER_IN_SYNC, /* the digests match: IN_SYNC, nothing more */
    SOS_ANSWER_WHOLE,   /* the whole digest (at most SOS_DIGEST_WHOLE_MAX origins) */
    SOS_ANSWER_SUMS,    /* one hash per bucket, reply->nb buckets */
} sos_answer_sync_t;

/*  The answer to sync (a decoded SYNC) from our digest mine (hash and n; entries may be
    NULL). Zeroes *reply, then sets its req_id (the SYNC's), hash, n_origins and:
    IN_SYNC: the flag (sos_core_sync_in_sync). WHOLE: digest = mine->entries and n_digest =
    mine->n (digest stays NULL if entries is: the caller builds it). SUMS: has_buckets, nb
    and n_sums = nb, nb chosen for the larger of the two digests (sos_digest_nbuckets, so
    capped at SOS_BUCKETS_MAX whatever the SYNC claims); sums stays NULL: the caller sets it
    to its sos_digest_bucket_sums of nb (or leaves the SYNC unanswered without memory).
    has_self and the rest are the caller's. reply->digest is borrowed, never to be freed
    through reply. */
sos_answer_sync_t sos_core_answer_sync(const sos_digest_view_t *mine, const sos_gmsg_t *sync,
                                       sos_gmsg_t *reply);

/*  The answer to a DIGEST. reply's digest and buckets point into entries and covered,
    which it owns: sos_digest_answer_release frees them. */
typedef struct {
    sos_gmsg_t reply;            /* the DIGEST_ACK's fields: req_id, hash, n_origins,
                                    buckets (nb, covered), piece, digest */
    sos_digest_entry_t *entries; /* owned: reply.digest */
    uint16_t *covered;           /* owned: reply.buckets */
} sos_digest_answer_t;

/*  The answer to digest (a decoded DIGEST: the buckets and maybe a piece, of nb) from mine
    (entries required), at most max_entries entries (at least 1; SOS_DIGEST_MAX, or lower
    in a test): the piece first, then whole buckets in the room left
    (sos_digest_buckets_take). Anyone may ask, and nothing is kept: the work is two binary
    searches a bucket and a copy of at most max_entries entries. The arrays are sized by
    our own digest and by the decoder's caps, never by a count the asker chose freely.
    SOS_OK and *out filled; SOS_ERR_MALFORMED: not a DIGEST's shape (no bucket element,
    neither buckets nor a piece, or sums, entries, wants, records or a self record beside
    them, a piece that names its end, buckets out of order or beyond nb): refuse it whole,
    count and log; SOS_ERR_INVALID: mine->entries is NULL (even for an empty digest: a caller
    without its digest at hand answers nothing) or max_entries is 0;
    SOS_ERR_NOMEM. *out is zeroed on every return (release is always safe). */
sos_rc sos_core_answer_digest(const sos_digest_view_t *mine, const sos_gmsg_t *digest,
                              uint32_t max_entries, sos_digest_answer_t *out);

/*  Free what an answer owns and zero it. NULL-safe. */
void sos_digest_answer_release(sos_digest_answer_t *a);

#endif
