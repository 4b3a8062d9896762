/*  sos_core_answer.h: the answers of an anti-entropy exchange, decided once for the node
    (node/sos_gossip.c) and the simulator (tools/sossim_node.c). The answerer's side: what
    a SYNC is answered with (IN_SYNC, the whole digest, or bucket sums), and what a DIGEST
    is answered with (the entries of the piece and the buckets asked, as many as fit). The
    initiator's side: whether a SYNC_ACK or a DIGEST_ACK has the shape it must, what
    follows it (done, a DIGEST and which buckets or piece it asks, or a DELTA and over
    which of our entries), and the DELTA itself. No frames, no clock, no socket, no log: the
   caller's digest in through a view, the decision out; the caller fills in what it keeps itself
   (its bucket sums, its own record), moves its exchange's state (sos_core_exchange.h), encodes,
    sends, counts and logs. */
#ifndef SOS_CORE_ANSWER_H
#define SOS_CORE_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_core_digest.h"
#include "sos_core_exchange.h"
#include "sos_core_pick.h"
#include "sos_core_sync.h"
#include "sos_gmsg.h"

/*  The bucket sums of the caller's digest for nb buckets (a valid count), as
    sos_digest_bucket_sums makes them; NULL without memory. Borrowed until the call that
    asked for them returns. */
typedef const uint8_t (*sos_sums_fn(void *arg, uint32_t nb))[SOS_DIGEST_HASH_BYTES];

/*  The caller's digest as it keeps it. Borrowed for the call; a reply that points into
    entries is valid as long as they are. */
typedef struct {
    const uint8_t *hash;               /* SOS_DIGEST_HASH_BYTES: the digest's hash */
    uint32_t n;                        /* origins in the digest */
    const sos_digest_entry_t *entries; /* the n entries sorted by origin; NULL: not at hand */
    sos_sums_fn *sums;                 /* its bucket sums; NULL where the step needs none */
    void *sums_arg;
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

/*  The answer to a DELTA (its records are the caller's to take, with sos_core_sync_triage,
    sos_core_sync_verify and the merge, before or whether or not it could pay for them): a
    DELTA_ACK always, even when the DELTA wants nothing, since the initiator's exchange
    waits for it to count a success, and to learn whether we had more. Zeroes *reply and
    sets its req_id (the DELTA's) and MORE if the batch was truncated; *d receives the
    records the DELTA's want asks of us (sos_core_sync_delta_ack), which the caller sends
    beside reply, then releases (sos_sync_delta_release). SOS_OK; on another code, nothing
    is answered and *d is empty. */
sos_rc sos_core_answer_delta(const sos_sync_ctx_t *ctx, sos_txn_t *txn, const sos_gmsg_t *delta,
                             sos_sync_delta_t *d, sos_gmsg_t *reply);

/*  The initiator's DELTA: its fields and what it carries. All zero: empty;
    sos_delta_out_release frees it. */
typedef struct {
    sos_gmsg_t msg;     /* the DELTA's fields: req_id, MORE, want (borrowing d.want) */
    sos_sync_delta_t d; /* owned: the batch to send beside msg, the want list, and the
                           peer's entries that show removals of origins we hold */
} sos_delta_out_t;

/*  The DELTA to send req_id to a peer whose digest entries are theirs (n_theirs: the whole
    digest of a SYNC_ACK, or a DIGEST_ACK's entries), against ours of the same range (mine,
    n_mine: the whole digest, or our entries of what the DIGEST_ACK covered), as the core
    diffs them (sos_core_sync_delta: both arrays are sorted in place). Zeroes *out, then
    fills out->d, and out->msg with req_id, the MORE flag if the batch was truncated, and
    the want list; the caller sends out->msg with out->d.batch, weighs out->d.removed
    (sos_core_fd_named), tells its exchange (sos_exchange_delta_sent with out->d.more) and
    releases. SOS_OK; SOS_ERR_TOO_LARGE (n_theirs above SOS_DIGEST_MAX), SOS_ERR_NOMEM:
    nothing to send, *out empty (release is always safe). */
sos_rc sos_core_delta_out(const sos_sync_ctx_t *ctx, sos_txn_t *txn, sos_digest_entry_t *mine,
                          uint32_t n_mine, sos_digest_entry_t *theirs, uint32_t n_theirs,
                          uint64_t req_id, sos_delta_out_t *out);

/*  Free what a DELTA owns and zero it. NULL-safe. */
void sos_delta_out_release(sos_delta_out_t *out);

/*  The initiator. A SYNC_ACK's shape: in sync (the flag, no bucket element), the whole
    digest (no bucket element: the decoder caps it at SOS_DIGEST_MAX entries), or bucket
    sums (one per bucket, no bucket numbers, no piece, no entries, no records, not in
    sync). False: hostile or broken, dropped whole before anything of it is taken (no
    success counted, its self record not applied); the caller counts and logs it, and the
    exchange times out. */
bool sos_core_sync_ack_ok(const sos_gmsg_t *ack);

/*  What follows an awaited SYNC_ACK. */
typedef enum {
    SOS_ACK_DONE,   /* in sync, or every bucket sum agrees: the exchange is over */
    SOS_ACK_DELTA,  /* the whole digest came: diff it with all of ours (sos_core_sync_delta)
                       and send the DELTA */
    SOS_ACK_DIGEST, /* send a DIGEST of nb asking asked[0..n_asked), or the piece alone */
} sos_ack_do_t;

/*  The plan sos_core_take_sync_ack makes. asked is owned: sos_ack_plan_release. */
typedef struct {
    sos_ack_do_t what;
    uint32_t nb;     /* DIGEST: the bucket count (the SYNC_ACK's) */
    uint16_t *asked; /* DIGEST: the whole buckets asked, ascending (none with a piece) */
    uint32_t n_asked;
    bool has_piece; /* DIGEST: the piece of the cursor's bucket asked, alone */
    sos_bucket_piece_t piece;
    bool more; /* DIGEST: buckets that differ were left out: once the exchange
                  ends, start another at once (sos_exchange_digest_sent's more) */
} sos_ack_plan_t;

/*  An awaited SYNC_ACK, ack, that passed sos_core_sync_ack_ok (checked again here), and our
    digest mine, into *plan. In sync: DONE. The whole digest: DELTA. Bucket sums: ours for
    ack->nb from mine->sums (mine->entries needed too), then the next piece of the bucket
    cursor is covering at this peer if it still differs (sos_piece_cursor_ask: the piece
    alone, no random draw), else the buckets that differ from a start drawn from rnd
    (sos_core_uniform(rnd, rnd_arg, nb); rnd NULL: libsodium's), or after the last pass's
    bucket (sos_piece_cursor_start), as many as fit max_entries (sos_digest_buckets_pick):
    DIGEST; DONE if none differs. cursor (this peer's, kept across exchanges) is updated
    as those functions say. SOS_OK; SOS_ERR_MALFORMED: not a SYNC_ACK's shape;
    SOS_ERR_INVALID: sums asked of a view without entries, sums or max_entries;
    SOS_ERR_NOMEM (no sums, or no memory): nothing to do, the exchange times out. *plan is
    zeroed first on every return. */
sos_rc sos_core_take_sync_ack(const sos_digest_view_t *mine, const sos_gmsg_t *ack,
                              sos_piece_cursor_t *cursor, sos_random_fn *rnd, void *rnd_arg,
                              uint32_t max_entries, sos_ack_plan_t *plan);

/*  The exchange's step for plan (sos_core_take_sync_ack): DO_DELTA (the whole digest came:
    diff and send the DELTA), DO_DIGEST (send the plan's DIGEST), or DO_DONE, the exchange
    idle (in sync, or no bucket sum differs). */
sos_exchange_do_t sos_ack_plan_step(const sos_ack_plan_t *plan, sos_exchange_t *ex);

/*  The DIGEST request plan (what SOS_ACK_DIGEST) asks for, into *msg (zeroed first; its
    bucket list borrows plan's). */
void sos_ack_plan_digest(const sos_ack_plan_t *plan, uint64_t req_id, sos_gmsg_t *msg);

/*  Free what a plan owns and zero it. NULL-safe. */
void sos_ack_plan_release(sos_ack_plan_t *plan);

/*  An awaited DIGEST_ACK, ack, to a DIGEST of nb that asked the whole buckets asked (bits,
    SOS_BUCKET_WORDS words) and the piece piece_asked (NULL: none): checked against them
    (a bucket element of the same nb, no sums, no records, and sos_digest_buckets_check:
    only buckets asked, the piece asked, entries in order and within what was covered),
    then our entries of exactly what it covered, the whole buckets and the piece's range
    (sos_digest_buckets_mine), into *mine_out (caller frees; room for mine->n), *n_mine of
    them: the DELTA is the diff of those with ack's entries (sos_core_sync_delta), and the
    cursor moves as sos_piece_cursor_answered says (sos_exchange_digest_ack does it on the
    node). SOS_OK; SOS_ERR_MALFORMED: outside what was asked, hostile or broken: dropped
    whole, counted and logged by the caller, and the exchange times out; SOS_ERR_INVALID:
    mine has no entries; SOS_ERR_NOMEM. *mine_out is NULL on every error. */
sos_rc sos_core_take_digest_ack(const sos_digest_view_t *mine, const sos_gmsg_t *ack, uint32_t nb,
                                const uint64_t asked[SOS_BUCKET_WORDS],
                                const sos_bucket_piece_t *piece_asked,
                                sos_digest_entry_t **mine_out, uint32_t *n_mine);

#endif
