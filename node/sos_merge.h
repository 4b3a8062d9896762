/*  sos_merge.h: the rules by which a node takes a verified record into its directory.
    Pure decisions over one store transaction, so they can be tested without sockets. */
#ifndef SOS_MERGE_H
#define SOS_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "sos_record.h"
#include "sos_store.h"

/*  How a record reached us. */
typedef enum {
    SOS_SRC_LOCAL,  /* signed by this node just now */
    SOS_SRC_DIRECT, /* the origin's own worker record, in an envelope the origin signed */
    SOS_SRC_DELTA,  /* an anti-entropy batch */
    SOS_SRC_RUMOR,  /* a change pushed at once, possibly relayed */
} sos_source_t;

typedef enum {
    SOS_MERGE_NEW,           /* taken: a key we did not have */
    SOS_MERGE_UPDATED,       /* taken: a newer version, or a room's creation conflict won */
    SOS_MERGE_SAME,          /* we hold this version already */
    SOS_MERGE_STALE,         /* we hold a newer version */
    SOS_MERGE_TOMBSTONED,    /* a removed worker, and the record is not newer than its removal */
    SOS_MERGE_CAP,           /* a cap on workers or rooms (per origin or in total) is reached */
    SOS_MERGE_CONFLICT_LOST, /* another owner created this room first */
    SOS_MERGE_EXPIRED,       /* a room past its expiry */
    SOS_MERGE_SELF,          /* about this node: only this node signs those */
    SOS_MERGE_BAD_ROOM,      /* a room record with impossible times */
    SOS_MERGE_CONTESTED,     /* a claim on a room that would win by created_at, but comes
                                too late or dates itself too early: refused, hash contested */
    SOS_MERGE_UNVOUCHED,     /* a room from an origin that is no live worker we exchanged
                                with, and the pool for those is full: refused for now */
    SOS_MERGE_MAX
} sos_merge_result_t;

/*  The spread bound B: a room record reaches every node within B of its creation, clocks
    of honest nodes included (skew counts against it). A node that has held a room hash for
    longer than B never gives the room to another origin, and a claim must date itself no
    earlier than B before this node first saw the hash. See "Room creation conflicts" in
    protocol/PROTOCOL.md for why honest creations still resolve the same way everywhere. */
#define SOS_ROOM_SPREAD_MS (60 * 1000)

/*  A room's origin is vouched for when it is this node or a worker in the directory with
    which this node had a successful exchange within this time. Rooms from other origins
    share a pool of max_rooms_unvouched. */
#define SOS_ROOM_VOUCH_MS (10 * 60 * 1000)

typedef struct {
    const uint8_t *self_id;
    uint64_t now_ms;
    uint32_t max_workers;
    uint32_t max_rooms;
    uint32_t max_rooms_per_origin;
    uint64_t max_room_lifetime_ms; /* expires_at - created_at at most this */
    uint64_t clock_skew_ms;        /* created_at at most this far in the future */
    uint64_t room_spread_ms;       /* the spread bound; 0 means SOS_ROOM_SPREAD_MS */
    uint32_t max_rooms_unvouched;  /* rooms held from origins not vouched for; 0: no cap */
} sos_merge_ctx_t;

/*  Decide whether rec (verified) enters the directory, and if so put it (sos_dir_put) in txn.
    A tombstone is overridden by a newer version, or by SOS_SRC_DIRECT (the worker itself is
    talking to us, so it is alive). A room creation conflict (same room_hash, two owners) is
    won by the earlier created_at, then the lower owner id, the same way on every node, but
    only while the hash is new here: a claim that would win is refused (SOS_MERGE_CONTESTED,
    the hash marked contested and logged once) when this node has held the hash for longer
    than the spread bound, or when the claim's created_at is more than the bound before the
    hash was first seen here; a winner whose origin already holds max_rooms_per_origin
    rooms is refused (SOS_MERGE_CAP). A new room from an origin that is not vouched for
    (SOS_ROOM_VOUCH_MS) goes into a pool of max_rooms_unvouched rooms, and is refused
    (SOS_MERGE_UNVOUCHED) when the pool is full. A new room records its first-seen time
    and whether it is pooled (sos_dir_room_local_put). When rec wins, *displaced (may be NULL)
   receives the losing record so the caller can drop the room if it owned it, and *displaced_set
   says so. Returns a store error, or SOS_OK with *result saying what happened. */
sos_rc sos_merge_record(sos_txn_t *txn, const sos_merge_ctx_t *ctx, const sos_record_t *rec,
                        sos_source_t src, sos_merge_result_t *result, sos_record_t *displaced,
                        bool *displaced_set);

/*  True for SOS_MERGE_NEW and SOS_MERGE_UPDATED. */
bool sos_merge_taken(sos_merge_result_t result);

/*  A short name for logs and counters, e.g. "stale". */
const char *sos_merge_result_name(sos_merge_result_t result);

/*  True if room record a wins over b in a creation conflict. */
bool sos_room_wins(const sos_record_t *a, const sos_record_t *b);

/*  Remove worker id from the directory in txn: delete its worker record if one is held, and
    leave a tombstone (expiring at expires_at, wall ms) at the higher of the version held
    and floor, so that stale copies relayed by others do not bring it back. With nothing
    held and floor 0 nothing is written. *wrote (may be NULL) says whether anything was.
    SOS_OK or the store's error (the transaction should then be aborted). */
sos_rc sos_merge_remove_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t floor,
                               uint64_t expires_at, bool *wrote);

#endif
