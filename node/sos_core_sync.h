/*  sos_core_sync.h: the gossip core's decisions in an anti-entropy exchange, once for the
    node (node/sos_gossip.c) and the simulator (tools/sossim_node.c): what a DELTA carries
    given the two digests, what a DELTA_ACK carries given what was asked for, which records
    of a message are worth a signature check, what becomes of a verified record, and what
    a suspect named by a peer (in a SYNC, or as a removal in its digest) means here. No
    frames, no clock, no socket, no log: inputs in, a result out; it reads the store
    through the transaction it is given. The caller encodes, sends, counts and logs. */
#ifndef SOS_CORE_SYNC_H
#define SOS_CORE_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_core_check.h"
#include "sos_core_digest.h"
#include "sos_merge.h"
#include "sos_record.h"
#include "sos_store.h"

/*  What an exchange's decisions depend on. */
typedef struct {
    const uint8_t *self_id; /* this node's id (SOS_NODEID_BYTES) */
    const sos_gaps_t *gaps; /* this node's gap table; NULL: none (the simulator keeps none) */
    size_t max_bytes;       /* record bytes in one batch; 0: SOS_DELTA_BYTES_MAX */
    bool allow_private;     /* records may name non-public addresses (sos_endpoint_allowed) */
} sos_sync_ctx_t;

/*  The answer to a SYNC: true (IN_SYNC, nothing more) if the peer's digest hash and count
    are ours; else the SYNC_ACK carries our digest (the node's; the simulator's carries a
    hash per bucket of it). The hash is compared in constant time: it is no secret, but
    nothing here should depend on where two hashes differ. */
bool sos_core_sync_in_sync(const uint8_t ours[SOS_DIGEST_HASH_BYTES], uint32_t n_ours,
                           const uint8_t theirs[SOS_DIGEST_HASH_BYTES], uint32_t n_theirs);

/*  The record a SYNC or SYNC_ACK carries as its sender's own (self) is taken, as a sign
    of life (SOS_SRC_DIRECT), only if it is the sender's worker record: true then. A record
    of anyone else is dropped (wrong_sender), the rest of the message is not. */
bool sos_core_sync_self_ok(const sos_record_t *self_rec, const uint8_t sender[SOS_NODEID_BYTES]);

/*  A DELTA or DELTA_ACK to send. All zero: empty; sos_sync_delta_release frees it. */
typedef struct {
    sos_batch_t batch;        /* the records, in origin order, each origin's ascending */
    bool more;                /* the batch stopped at a cap: MORE */
    sos_digest_entry_t *want; /* owned: origins to ask the peer for, at our version */
    uint32_t n_want;
    sos_digest_entry_t *removed; /* owned: the peer's entries that show an origin we hold as
                                    records removed at or above our version */
    uint32_t n_removed;
} sos_sync_delta_t;

/*  The DELTA for a peer whose digest is theirs (n_theirs entries, at most SOS_DIGEST_MAX as
    the decoder bounds them), given ours (mine): per origin we are ahead on, our records
    above its version, up to our own gap in that origin, within SOS_BATCH_MAX records and
    ctx->max_bytes (more: the rest waits for the next exchange); per origin it is ahead on,
    a want at our version (never our own origin: only we sign our records); and the
    removals it shows of origins we hold (sos_digest_removed_here; our own included: we
    were removed while alive), which the caller weighs with sos_core_sync_named. Both
    arrays are sorted by origin in place. SOS_OK; SOS_ERR_TOO_LARGE if n_theirs is above
    SOS_DIGEST_MAX; SOS_ERR_NOMEM (out is then empty). */
sos_rc sos_core_sync_delta(const sos_sync_ctx_t *ctx, sos_txn_t *txn, sos_digest_entry_t *mine,
                           uint32_t n_mine, sos_digest_entry_t *theirs, uint32_t n_theirs,
                           sos_sync_delta_t *out);

/*  The DELTA_ACK for a DELTA that wants (origin, version) pairs: our records of each above
    that version, up to our gap in it, within the same caps (more: the peer asks again).
    want is not kept. SOS_OK (without memory the batch stops early and says more). */
sos_rc sos_core_sync_delta_ack(const sos_sync_ctx_t *ctx, sos_txn_t *txn,
                               const sos_digest_entry_t *want, uint32_t n_want,
                               sos_sync_delta_t *out);

/*  Free what out holds and leave it empty. NULL-safe. */
void sos_sync_delta_release(sos_sync_delta_t *out);

/*  How the records of one message were triaged (sos_core_sync_triage). */
typedef struct {
    uint32_t verify;     /* to verify, then to take through the merge rules */
    uint32_t held;       /* held byte for byte: as good as verified, nothing to merge */
    uint32_t stale;      /* older than the version held of their key */
    uint32_t tombstoned; /* a removed worker's, not newer than its removal */
    uint32_t endpoint;   /* naming an endpoint we may not connect to: refused (bad_endpoint) */
} sos_sync_triage_t;

/*  Triage each of the n records of a message (decoded, not verified) against txn before
    paying for any signature: checks[i] (room for n) receives its sos_check_t
    (sos_core_check_record), and *count the totals. Only SOS_CHECK_VERIFY records are
    verified and merged; the caller counts the others (and logs the endpoint refusals).
    SOS_OK; SOS_ERR_NOMEM. */
sos_rc sos_core_sync_triage(const sos_sync_ctx_t *ctx, sos_txn_t *txn, const sos_record_t *records,
                            uint32_t n, uint8_t *checks, sos_sync_triage_t *count);

/*  True if rec's bytes are known to verify already (the simulator's pool of bytes it
    verified before); arg is the caller's. */
typedef bool(sos_sync_verified_fn)(void *arg, const sos_record_t *rec);

/*  Verify the signature of every record triaged SOS_CHECK_VERIFY, but those verified says
    are known good (verified may be NULL). *n_checked (may be NULL) receives the number of
    signatures checked, the failing one included. SOS_OK if all verify; SOS_ERR_SIGNATURE
    at the first that does not: one bad record refuses the whole message; SOS_ERR_NOMEM. */
sos_rc sos_core_sync_verify(const sos_record_t *records, uint32_t n, const uint8_t *checks,
                            sos_sync_verified_fn *verified, void *arg, uint32_t *n_checked);

/*  After the records of an exchange batch were merged: records of an origin arrive in
    ascending version from the version asked for, and the sender holds all of them up to
    its last one, so each verified or held record settles its origin's gap
    (sos_gaps_settle). True if a gap moved or closed (the digest changed). */
bool sos_core_sync_settle(sos_gaps_t *gaps, sos_txn_t *txn, const sos_record_t *records, uint32_t n,
                          const uint8_t *checks, uint64_t now_mono);

/*  What the rules for taking a record need to know of the caller's peers: a narrow read
    interface over its peer table (the node's, or a simulated node's). arg is the caller's. */
typedef struct {
    void *arg;
    /*  origin is a worker the caller lists with a peer of its own, or a genesis node: a
        record of it is no new key (a worker record held in the store counts too, without
        asking). */
    bool (*known)(void *arg, const uint8_t origin[SOS_NODEID_BYTES]);
    /*  The workers on probation now: listed, no genesis node, never seen answering. */
    uint32_t (*probation)(void *arg);
    /*  Another worker than origin answers at url: the caller's last exchange with it, at
        that url, succeeded. */
    bool (*answers_at)(void *arg, const char *url, const uint8_t origin[SOS_NODEID_BYTES]);
} sos_sync_peers_t;

/*  Probation's measure (PROTOCOL.md, "Probation of workers"): the outcomes of this node's
    own first exchanges with workers while they were on probation, the last
    SOS_PROBATION_SAMPLES of them, as a shift register. Zeroed: no samples. */
#define SOS_PROBATION_SAMPLES 64

typedef struct {
    uint64_t bits; /* newest outcome in bit 0: 1 it answered, 0 it failed */
    uint32_t n;    /* outcomes kept, at most SOS_PROBATION_SAMPLES */
} sos_probation_t;

/*  Push one outcome (answered or not) into self; the oldest falls out past 64. */
void sos_probation_push(sos_probation_t *self, bool answered);

/*  Of the outcomes kept in self, how many answered. */
uint32_t sos_probation_answered(const sos_probation_t *self);

/*  Weigh one exchange outcome with a worker: on_probation says it was on probation when the
    outcome came (listed, no genesis node, never seen answering); *failed_sampled is the
    caller's flag for that worker, false when it is listed anew. A success is a sample (it
    promotes the worker: no second one this probation); a failure is one only the first
    time (*failed_sampled is set), so a dead key picked again and again counts once. True
    if a sample was pushed into self. */
bool sos_probation_outcome(sos_probation_t *self, bool on_probation, bool answered,
                           bool *failed_sampled);

/*  The share of probation workers that answer, as a conservative estimate in [0, 1]: the
    lower bound of the Wilson score interval at z = 2 over the samples in self (0 with no
    samples; n / (n + 4) when all n answered). */
double sos_probation_share(const sos_probation_t *self);

/*  How many workers may be on probation at once for max_workers and the samples (NULL: none):
    Q + (max_workers - Q) * sos_probation_share, Q a quarter of max_workers (at least 1);
    never above max_workers. */
uint32_t sos_probation_cap(uint32_t max_workers, const sos_probation_t *samples);

/*  What taking one record depends on beyond sos_sync_ctx_t. */
typedef struct {
    const sos_merge_ctx_t *merge;  /* the merge rules' context: self_id, now, the caps */
    const sos_sync_peers_t *peers; /* the caller's peers */
    const char *our_url;           /* the endpoint this node advertises */
    uint64_t tombstone_expires;    /* wall ms: when a tombstone written now expires */
    /*  The caller's probation samples, which set the cap (NULL: none, a quarter). */
    const sos_probation_t *probation;
} sos_sync_take_ctx_t;

/*  What became of one verified record. */
typedef enum {
    SOS_TAKE_MERGED,         /* the merge rules ran: merge says what they did */
    SOS_TAKE_BAD_ENDPOINT,   /* it names an endpoint we may not connect to: refused, never
                                stored, connected to or passed on (bad_endpoint) */
    SOS_TAKE_PROBATION,      /* a new worker key while probation is at its cap:
                                refused for now (merge_cap, probation_refused) */
    SOS_TAKE_ENDPOINT_TAKEN, /* another worker's record naming our endpoint, or one where
                                another worker answers: refused like a removed worker, with a
                                tombstone at its version (removed: written now) */
} sos_take_t;

typedef struct {
    sos_take_t take;
    sos_merge_result_t merge; /* MERGED: the merge's result; ENDPOINT_TAKEN without removed:
                                 SOS_MERGE_TOMBSTONED (a tombstone at or above it held) */
    const char *why;          /* ENDPOINT_TAKEN: why, for the log (static text) */
    bool removed;             /* ENDPOINT_TAKEN: a tombstone was written now; a worker listed
                                 under that key is removed (the caller unlists its peer) */
    uint32_t probation_cap;   /* PROBATION: the cap that is reached, for the log */
    bool gap;                 /* taken, and its prev is above what we held of its origin:
                                 the caller opens a gap at gap_version (sos_gaps_set) */
    uint64_t gap_version;
    bool displaced_set; /* taken, and it displaced displaced (a room's other owner) */
    sos_record_t displaced;
} sos_take_result_t;

/*  Take rec (verified) that came from src, as the node does (PROTOCOL.md, "Costs for
    strangers"): a record of another origin naming an endpoint we may not connect to is
    refused; a worker record of a new key is refused while sos_probation_cap of
    merge->max_workers and tc->probation are on probation; another worker's record naming
    our endpoint, or one where another worker answers, is refused like a removed worker
    (we would never exchange with it, so never count its failures), with a tombstone at
    its version written in txn; anything else goes through the merge rules
    (sos_merge_record). A record of our own origin is only merged. For a RUMOR or DIRECT
    record whose prev is above our digest version of its origin, out->gap says to open a
    gap. SOS_OK with *out filled; a store error (the caller logs it, and should abort the
    transaction if it keeps failing). */
sos_rc sos_core_sync_take(const sos_sync_ctx_t *ctx, const sos_sync_take_ctx_t *tc, sos_txn_t *txn,
                          const sos_record_t *rec, sos_source_t src, sos_take_result_t *out);

/*  What a peer's naming of an origin as a suspect (a SYNC's suspects, or a removal in its
    digest) means here. */
typedef enum {
    SOS_NAMED_IGNORE,  /* nobody we list, or a suspicion about an older record than we hold
                          (the suspect signed that one after the peer last heard of it) */
    SOS_NAMED_REFUTE,  /* ourselves: refute at the named version (sos_fd_refute) */
    SOS_NAMED_SUSPECT, /* a worker we list: its suspicion starts here too (sos_fd_named, at
                        *held), and removes nobody until it fails here */
} sos_named_t;

/*  Weigh named (origin, version). listed: the caller lists origin's worker (the node: a
    peer in its directory; the simulator: a worker record held). *held (may be NULL)
    receives the highest version held from origin, which the suspicion is about. The node
    and the simulator weigh a name through sos_core_fd_named (sos_core_fd.h), which adds
    whom a name may make a suspect, and who confirms it. */
sos_named_t sos_core_sync_named(const sos_sync_ctx_t *ctx, sos_txn_t *txn,
                                const sos_digest_entry_t *named, bool listed, uint64_t *held);

#endif
