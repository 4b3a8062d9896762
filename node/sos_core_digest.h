/*  sos_core_digest.h: the gossip core's digest: per origin, the version up to which this
    node holds everything that origin signed; the table of gaps that holds it below the
    highest version while a hole is open; and the comparison of two digests into what to
    give and what to ask for. Reads the directory through the store API; no clock (times
    are given), no socket. */
#ifndef SOS_CORE_DIGEST_H
#define SOS_CORE_DIGEST_H

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>

#include "sos_gmsg.h"
#include "sos_record.h"
#include "sos_store.h"

/*  A gap: an origin's record arrived whose prev is above what we hold of that origin, so
    we claim only up to version until an exchange fills the hole. Anyone can open one with
    a record from a fresh key, so the table is bounded (new gaps are refused at the cap),
    and an entry expires: a hole nobody fills within the TTL is claimed as held, as are
    the holes of an origin of which we hold nothing any more. */
#define SOS_GAPS_MAX    1024
#define SOS_GAP_TTL_MIN (10 * 60 * 1000) /* ms at least; or 20 gossip intervals */

typedef struct _sos_gaps_t sos_gaps_t;

/*  An empty table whose gaps expire after 20 intervals of interval_ms, at least
    SOS_GAP_TTL_MIN, holding at most max gaps. NULL without memory. */
sos_gaps_t *sos_gaps_new(uint64_t interval_ms, uint32_t max);

/*  Free the table. NULL-safe; nulls *self_p. */
void sos_gaps_destroy(sos_gaps_t **self_p);

/*  The number of gaps open. */
size_t sos_gaps_size(const sos_gaps_t *self);

/*  True, and *version (may be NULL) the version held up to, if a gap of origin is open. */
bool sos_gaps_get(const sos_gaps_t *self, const uint8_t origin[SOS_NODEID_BYTES],
                  uint64_t *version);

/*  Open a gap of origin at version (its expiry counted from now_mono), or move an open one
    to version (its expiry unchanged). SOS_OK; SOS_ERR_FULL if a new gap would pass the cap
    (the caller counts and logs the refusal); SOS_ERR_NOMEM. */
sos_rc sos_gaps_set(sos_gaps_t *self, const uint8_t origin[SOS_NODEID_BYTES], uint64_t version,
                    uint64_t now_mono);

/*  Close the gap of origin, if open. */
void sos_gaps_del(sos_gaps_t *self, const uint8_t origin[SOS_NODEID_BYTES]);

/*  Close the gaps past their time at now_mono, and those of origins of which txn holds
    nothing (no record, no tombstone). Returns how many were closed. */
uint32_t sos_gaps_sweep(sos_gaps_t *self, sos_txn_t *txn, uint64_t now_mono);

/*  A verified record of an exchange batch: records of an origin arrive in ascending version
    from the version asked for, and the sender holds all of them up to its last one, so an
    open gap moves up to rec's version, and closes when that reaches the highest version
    held (record or tombstone). True if the gap moved or closed (the digest changed). */
bool sos_gaps_settle(sos_gaps_t *self, sos_txn_t *txn, const sos_record_t *rec, uint64_t now_mono);

/*  The digest version of origin: its gap's if one is open, else the highest version held,
    or the tombstone's version if higher. */
uint64_t sos_digest_version(const sos_gaps_t *gaps, sos_txn_t *txn,
                            const uint8_t origin[SOS_NODEID_BYTES]);

/*  The digest entry of origin into *out: its digest version (sos_digest_version), and
    removed if the origin's worker is removed here: a tombstone held and no worker record
    (the origin's rooms, signed with the same counter, may be held above the tombstone's
    version), and no gap open. */
void sos_digest_entry(const sos_gaps_t *gaps, sos_txn_t *txn,
                      const uint8_t origin[SOS_NODEID_BYTES], sos_digest_entry_t *out);

/*  True if theirs says the peer removed, at or above the version we hold, an origin that
    mine holds as records (not removed): a worker we list may be dead. The versions alone
    would call the two equal (a tombstone is kept at the version it removed), and no
    exchange would show the difference; with a bounded view of connections a node may
    otherwise never meet that worker to find it dead itself. A report, never a verdict:
    the caller starts its own suspicion of the worker (or refutes, if the origin is its
    own), as if the peer had named it a suspect. */
bool sos_digest_removed_here(const sos_digest_entry_t *mine, const sos_digest_entry_t *theirs);

/*  Build the digest into a new array of *n entries (caller frees; NULL without memory):
    every origin held (worker, owner of rooms, removed worker), sorted by origin, as many as
    the directory holds: what bounds it is the directory's own caps (--max-workers, the
    room caps), not a message's, since a digest past SOS_DIGEST_WHOLE_MAX origins travels
    by bucket (below). */
sos_digest_entry_t *sos_digest_build(const sos_gaps_t *gaps, sos_txn_t *txn, uint32_t *n);

/*  Digests by bucket. A whole digest is 45 bytes an origin, sent whenever two directories
    differ at all: 450 kB at 10,000 origins, and above SOS_DIGEST_MAX it would not fit one
    message. So past SOS_DIGEST_WHOLE_MAX origins the answer to a SYNC that does not match
    carries one hash per bucket instead: the origins fall into nb buckets (a power of two,
    about SOS_BUCKET_ORIGINS origins a bucket, at most SOS_BUCKETS_MAX) by the top bits of
    their first two bytes, so that a digest sorted by origin is cut into nb contiguous runs,
    one per bucket, and a bucket's entries are found by two binary searches. The initiator
    compares the sums with its own, asks for the entries of the buckets that differ (a
    DIGEST, as many as fit SOS_DIGEST_MAX entries), and diffs over exactly the buckets the
    answer covers; the rest wait for the next exchange. A directory that differs by one
    record costs one bucket: about 32 entries instead of all of them. A bucket's hash is
    BLAKE2b-128 of "sosnode/2/bucket\0" and its entries in origin order, each origin ‖
    version (8 bytes big-endian) ‖ removed (1 byte): the removal flag rides in it as in the
    digest hash. A bucket larger than one answer is covered in pieces (below). */
#define SOS_BUCKET_ORIGINS   32  /* origins a bucket, about, when nb is chosen */
#define SOS_DIGEST_WHOLE_MAX 256 /* digests up to this many origins are sent whole */

/*  The bucket count for a digest of n_origins: the least power of two with at most
    SOS_BUCKET_ORIGINS origins a bucket, capped at SOS_BUCKETS_MAX. */
uint32_t sos_digest_nbuckets(uint32_t n_origins);

/*  True if nb is a bucket count: a power of two, 1..SOS_BUCKETS_MAX (sos_gmsg_nb_ok). */
bool sos_digest_nb_ok(uint64_t nb);

/*  The bucket of origin among nb (a valid count): the top log2(nb) bits of its first two
    bytes, the wire's rule (sos_gmsg_bucket). */
uint32_t sos_digest_bucket(const uint8_t origin[SOS_NODEID_BYTES], uint32_t nb);

/*  A bucket's hash, fed one entry at a time in origin order (for a caller that keeps its
    digest elsewhere than in an array: the simulator). */
typedef struct {
    crypto_generichash_state st;
} sos_bucket_hash_t;

void sos_bucket_hash_init(sos_bucket_hash_t *h);
void sos_bucket_hash_add(sos_bucket_hash_t *h, const sos_digest_entry_t *e);
void sos_bucket_hash_final(sos_bucket_hash_t *h, uint8_t out[SOS_DIGEST_HASH_BYTES]);

/*  The entries of bucket b in sorted (n entries, sorted by origin): sorted[*first ..
 *first + *count). Two binary searches. */
void sos_digest_bucket_range(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb, uint32_t b,
                             uint32_t *first, uint32_t *count);

/*  The hash of every bucket of sorted (n entries sorted by origin) into sums[nb]. */
void sos_digest_bucket_sums(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
                            uint8_t (*sums)[SOS_DIGEST_HASH_BYTES]);

/*  The initiator's pick: the buckets whose sums differ (mine against theirs, nb each), from
    bucket start on, wrapping (a random start, so that a bucket that cannot be settled does
    not keep the others waiting), while the entries they cost stay within max_entries: ours
    in them (sorted, n) and the peer's estimated as n_theirs / nb a bucket; at least one.
    Writes them ascending into out (room for nb) and returns how many; 0: none differs.
    *n_differ (may be NULL): how many differ in all, picked or not. */
uint32_t sos_digest_buckets_pick(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
                                 const uint8_t (*mine)[SOS_DIGEST_HASH_BYTES],
                                 const uint8_t (*theirs)[SOS_DIGEST_HASH_BYTES], uint32_t n_theirs,
                                 uint32_t start, uint32_t max_entries, uint16_t *out,
                                 uint32_t *n_differ);

/*  A bucket larger than one answer. Ids are free to choose, so a stranger can fill one
    bucket with room owners of made-up keys (grinding a key into a chosen bucket of 1,024
    costs about 1,024 key generations); whole buckets only, such a bucket would never be
    covered, and every origin in it, honest ones included, compared by no exchange. So a
    DIGEST may ask for a piece of a bucket instead (sos_bucket_piece_t): its entries from an
    origin on. The answerer gives the piece first, as many entries as fit, and says where it
    stopped (the last origin it covered, or the bucket's end); whole buckets asked beside it
    fill the room left. The initiator diffs over exactly the range covered, [from, to] of
    that bucket, and leaves both sides' entries outside it alone.

    Which piece to ask is the initiator's, per peer (sos_piece_cursor_t): a whole bucket
    asked and not covered was too large for one answer at that peer, and becomes the
    cursor's, from its first origin; each answer moves the cursor past the last origin
    covered, and the next piece follows at once, until a piece reaches the bucket's end
    (the pass is over) or the bucket's sums agree. A DIGEST that asks a piece asks nothing
    else, and only the pass's own pieces follow at once: a bucket that cannot be settled
    costs one pass a round, never an endless run of exchanges. Passes take turns: after
    one, the next ask of whole buckets starts right after the one just done, and the
    cursor goes to the next bucket in that order that was asked whole and not covered.

    The bound: with an honest answerer of cap R entries a message, a bucket of B entries
    there is covered whole, every origin of it, in the ceil(B / R) exchanges that follow
    the one that found it too large, all started at once; with k such buckets differing,
    each waits at most k - 1 passes for its turn, one pass a round. At the default cap
    (8,192) and a bucket filled with the room caps' 10,000 unvouched owners: 2 pieces. */

/*  The lowest origin of bucket b among nb (a valid count; b < nb) into out: the bucket's
    prefix bits, then zeros. */
void sos_digest_bucket_first(uint32_t nb, uint32_t b, uint8_t out[SOS_NODEID_BYTES]);

/*  True if p is a piece of a bucket among nb: bucket below nb, from (and to, unless
    to_end) in that bucket, from <= to. */
bool sos_digest_piece_ok(uint32_t nb, const sos_bucket_piece_t *p);

/*  The answerer's take. First the piece asked (piece; NULL: none; its bucket and from are
    the asker's, to_end ignored): the bucket's entries from piece->from on, as many as fit
    max_entries; *piece_out (NULL only when piece is) says what was covered: the same bucket
    and from, and to_end if every entry to the bucket's end fit, else to = the last origin
    given. max_entries is at least 1 when sorted holds entries. Then, for each asked whole
    bucket (ascending, each < nb, never the piece's), its entries whole, while they fit the
    room left (a bucket that does not fit is skipped, the next tried). Entries into out
    (room for max_entries), *n_out of them, in origin order; the whole buckets covered into
    covered (room for n_asked), ascending. Returns how many whole buckets were covered.
    Bounded work: two binary searches and a copy per bucket asked, three for the piece. */
uint32_t sos_digest_buckets_take(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
                                 const uint16_t *asked, uint32_t n_asked,
                                 const sos_bucket_piece_t *piece, sos_digest_entry_t *out,
                                 uint32_t max_entries, uint32_t *n_out, uint16_t *covered,
                                 sos_bucket_piece_t *piece_out);

/*  A bucket set as bits: bit b of bits[b / 64]. */
#define SOS_BUCKET_WORDS (SOS_BUCKETS_MAX / 64)

/*  The initiator's check of an answer: every covered bucket (ascending) is one it asked
    whole (asked, bits); a piece answered (piece; NULL: none) if and only if one was asked
    (piece_asked; NULL: none), of the same bucket and from, a valid piece
    (sos_digest_piece_ok) of a bucket not among the covered; the entries strictly ascending
    by origin, each in a covered bucket or in the piece's range, and, unless the piece runs
    to its bucket's end, its last entry at the piece's to. False: the answer is hostile or
    broken, and is dropped whole. */
bool sos_digest_buckets_check(uint32_t nb, const uint64_t asked[SOS_BUCKET_WORDS],
                              const sos_bucket_piece_t *piece_asked, const uint16_t *covered,
                              uint32_t n_covered, const sos_bucket_piece_t *piece,
                              const sos_digest_entry_t *entries, uint32_t n);

/*  Our entries (sorted, n) in the covered buckets (ascending) and in the piece's range
    (piece; NULL: none) into out (room for n), in origin order. Returns how many. */
uint32_t sos_digest_buckets_mine(const sos_digest_entry_t *sorted, uint32_t n, uint32_t nb,
                                 const uint16_t *covered, uint32_t n_covered,
                                 const sos_bucket_piece_t *piece, sos_digest_entry_t *out);

/*  The initiator's cursor through a bucket too large for one answer, kept per peer. All
    zero: none. */
typedef struct {
    uint32_t nb;                    /* the bucket count it is for; 0: no cursor */
    uint16_t bucket;                /* the bucket covered in pieces */
    uint16_t last;                  /* the bucket of the last pass: the next turn follows it */
    bool turn;                      /* a pass ended: the next pick starts after last */
    uint8_t from[SOS_NODEID_BYTES]; /* the next piece starts here */
} sos_piece_cursor_t;

/*  Where the next pick of whole buckets starts (sos_digest_buckets_pick's start): right
    after the last pass's bucket once, when a pass has just ended (so that the next bucket
    too large is found next, whichever the random start would have been), else
    random_start (below nb). */
uint32_t sos_piece_cursor_start(sos_piece_cursor_t *c, uint32_t nb, uint32_t random_start);

/*  At bucket sums of nb (mine, theirs): true, and the piece to ask in *piece (from the
    cursor on, to_end), if the cursor is for nb and its bucket's sums differ; the DIGEST
    then asks that piece alone. False otherwise, and a cursor of another bucket count, or
    whose bucket agrees now, is dropped. */
bool sos_piece_cursor_ask(sos_piece_cursor_t *c, uint32_t nb,
                          const uint8_t (*mine)[SOS_DIGEST_HASH_BYTES],
                          const uint8_t (*theirs)[SOS_DIGEST_HASH_BYTES],
                          sos_bucket_piece_t *piece);

/*  A checked answer (sos_digest_buckets_check) to a DIGEST in nb that asked the whole
    buckets asked (bits) and maybe a piece: the answer covered the whole buckets covered
    and the piece (NULL: none asked). Moves the cursor past the piece's last origin, or
    ends its pass; or, with no cursor left, gives it to a whole bucket asked and not covered
    (the next in turn), from its first origin. True: start the next exchange at once (the
    pass goes on, or one starts after a DIGEST that asked no piece). */
bool sos_piece_cursor_answered(sos_piece_cursor_t *c, uint32_t nb,
                               const uint64_t asked[SOS_BUCKET_WORDS], const uint16_t *covered,
                               uint32_t n_covered, const sos_bucket_piece_t *piece);

/*  Compare our digest (mine) with a peer's (theirs); both are sorted by origin in place.
    give (room for n_mine entries) receives, per origin we are ahead on, the peer's
    version (0 for an origin it lacks): send it our records above that. want (room for
    n_theirs entries) receives, per origin the peer is ahead on, our version (0 for one we
    lack): ask for its records above that. Our own origin is never wanted: only we sign
    our records. removed (room for n_theirs entries; NULL: not reported) receives, per
    origin the peer removed at or above our version while we hold it
    (sos_digest_removed_here), the peer's entry; our own origin included (we were removed
    while alive: the caller refutes). */
void sos_digest_diff(const uint8_t self_id[SOS_NODEID_BYTES], sos_digest_entry_t *mine,
                     uint32_t n_mine, sos_digest_entry_t *theirs, uint32_t n_theirs,
                     sos_digest_entry_t *give, uint32_t *n_give, sos_digest_entry_t *want,
                     uint32_t *n_want, sos_digest_entry_t *removed, uint32_t *n_removed);

#define SOS_DELTA_BYTES_MAX (512 * 1024) /* record bytes in one DELTA or DELTA_ACK */

/*  Records collected for a DELTA or DELTA_ACK, copied out of the store. All zero: empty.
    wires[i] points into bytes once sos_digest_collect returns. */
typedef struct {
    uint8_t *bytes; /* owned: sos_batch_release frees it */
    size_t used;
    size_t cap;
    size_t offsets[SOS_BATCH_MAX];
    size_t lens[SOS_BATCH_MAX];
    const uint8_t *wires[SOS_BATCH_MAX];
    uint32_t n;
    bool full;        /* more was wanted than fits (SOS_BATCH_MAX, max_bytes) */
    uint64_t limit;   /* the highest version of the current origin to send */
    size_t max_bytes; /* record bytes at most; 0: SOS_DELTA_BYTES_MAX */
} sos_batch_t;

/*  Collect into b the records of each wanted (origin, version): those above version, up to
    our own gap in that origin if one is open. The receiver takes what it gets as all there
    is up to the last version of the batch; records we hold beyond a hole would make it
    claim the hole as held, and no exchange would ever fill it. Stops, b->full, when the
    batch is full or without memory. */
void sos_digest_collect(const sos_gaps_t *gaps, sos_txn_t *txn, const sos_digest_entry_t *want,
                        uint32_t n, sos_batch_t *b);

/*  Free the batch's bytes. NULL-safe. */
void sos_batch_release(sos_batch_t *b);

#endif
