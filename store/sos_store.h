/*  sos_store.h: the node's LMDB store: the directory of workers and rooms that gossip
    carries, and the rooms this node owns (members, messages). The only code that sees LMDB.
    Everything is read and written inside a transaction; a write transaction may hold many
    changes (group commit) and nothing of it is visible or durable until sos_txn_commit. */
#ifndef SOS_STORE_H
#define SOS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"
#include "sos_identity.h"
#include "sos_record.h"

#define SOS_STORE_MAP_DEFAULT (1ULL << 30) /* LMDB map size: 1 GiB of address space */

typedef struct _sos_store_t sos_store_t;
typedef struct _sos_txn_t sos_txn_t;

/*  Open (creating if needed, mode 0700) the store in directory dir. Takes an exclusive lock
    on dir/lock so that a second process gets SOS_ERR_LOCKED. A directory holding an LMDB
    file that is not a sosnode store, or a damaged one, gives SOS_ERR_CORRUPT; SOS_ERR_IO for
    other file errors. map_size 0 means SOS_STORE_MAP_DEFAULT; a map smaller than the data
    already in the file grows to fit it. On success *self_p owns the store. */
sos_rc sos_store_open(sos_store_t **self_p, const char *dir, uint64_t map_size);

/*  The memory backend (sos_store_mem.c), for the simulator: a store with no file that
    answers every sos_txn_*, sos_meta_* and sos_dir_* function as the LMDB store does (the
    contract suite tests/unit/test_store_contract.c runs both). The sos_roomdb_* functions
    are not kept in memory and return SOS_ERR_INVALID. Single-threaded: a read transaction
    sees the open write transaction's changes; an aborted write leaves no trace (undo log).

    A pool interns what many stores hold alike: record bytes (refcounted, keyed by a hash of
    the bytes, freed with the last store that holds them) and node ids and room hashes (kept
    for the pool's life), so that each store's indexes are arrays of small numbers. Stores
    sharing a pool must be used from one thread. */
typedef struct _sos_store_pool_t sos_store_pool_t;

/*  A new empty pool; NULL without memory. */
sos_store_pool_t *sos_store_pool_new(void);
/*  Free the pool (NULL-safe; nulls *self_p). Every store opened on it is destroyed first. */
void sos_store_pool_destroy(sos_store_pool_t **self_p);
/*  What the pool holds: distinct record byte strings, their bytes, and the memory of the
    pool itself (records, ids, hash tables). Any pointer may be NULL. */
void sos_store_pool_stats(const sos_store_pool_t *pool, uint64_t *records, uint64_t *record_bytes,
                          uint64_t *memory);
/*  True if a store of the pool holds (or an open transaction's undo log keeps) a record of
    exactly these bytes. Stores hold only records that were verified or signed before they
    were put, so such bytes verify: the simulator skips verifying them again. */
bool sos_store_pool_holds(const sos_store_pool_t *pool, const uint8_t *bytes, size_t len);

/*  Open an empty memory store on pool (borrowed: it must outlive the store). On success
    *self_p owns the store; SOS_ERR_NOMEM, or SOS_ERR_INVALID without a pool. For a memory
    store sos_store_usage gives map_size 0 and used = the bytes of its own indexes (not the
    pool's), and sos_store_set_map_size does nothing. */
sos_rc sos_store_open_memory(sos_store_t **self_p, sos_store_pool_t *pool);

/*  Close the store (NULL-safe; nulls *self_p). No transaction may be open. */
void sos_store_destroy(sos_store_t **self_p);

/*  Change the map size, e.g. to grow it after SOS_ERR_MAP_FULL (in a full map even deletes
    can fail, since LMDB copies pages on write). A size below the data in use is rounded up
    to it. No transaction may be open (SOS_ERR_INVALID). */
sos_rc sos_store_set_map_size(sos_store_t *store, uint64_t map_size);

/*  The map size and how much of it is in use (LMDB's high-water mark: pages freed inside
    the file are reused but not given back). Either pointer may be NULL. */
sos_rc sos_store_usage(sos_store_t *store, uint64_t *map_size, uint64_t *used);

/*  Begin a transaction. Only one write transaction at a time (one thread writes): asking
    for a second while one is open gives SOS_ERR_INVALID instead of waiting for ever.

    Every function below that writes returns SOS_ERR_INVALID in a read-only transaction. A
    write that fails after it has changed something (SOS_ERR_MAP_FULL, SOS_ERR_CORRUPT,
    SOS_ERR_IO, ...) spoils the transaction: later calls in it fail with that code and
    sos_txn_commit aborts it and returns the code, so a half-done change is never kept. A
    write that fails before changing anything (SOS_ERR_NOT_FOUND, SOS_ERR_EXISTS,
    SOS_ERR_INVALID, SOS_ERR_TOO_LARGE, or SOS_ERR_CORRUPT for damage found while reading
    what it would change) leaves the transaction usable. */
sos_rc sos_txn_begin(sos_store_t *store, bool write, sos_txn_t **txn_p);
/*  Commit and free; durable on disk when it returns SOS_OK. SOS_ERR_MAP_FULL if the map is
    full, SOS_ERR_NO_SPACE if the file system is (nothing of the transaction is kept in
    either case). Nulls *txn_p in any case. */
sos_rc sos_txn_commit(sos_txn_t **txn_p);
/*  Commit and free as sos_txn_commit, without waiting for the disk: what it wrote survives
    kill -9 at once, but a power cut only once a later sos_txn_commit (or a checkpoint, or a
    clean close) has returned. A power cut before that may take it, and every lazy commit
    after it, never a part of one, nor anything committed with sos_txn_commit: the store
    opens as it was after some earlier commit. For what can be learnt again (gossip from
    peers), never for what is acknowledged or signed here. */
sos_rc sos_txn_commit_lazy(sos_txn_t **txn_p);
/*  Abort and free (NULL-safe; nulls *txn_p). */
void sos_txn_abort(sos_txn_t **txn_p);

/*  Small named counters (e.g. "version": this node's record counter). key is 1..64 bytes;
    "format" is reserved (SOS_ERR_INVALID). SOS_ERR_NOT_FOUND if never set. */
sos_rc sos_meta_get_u64(sos_txn_t *txn, const char *key, uint64_t *value);
sos_rc sos_meta_put_u64(sos_txn_t *txn, const char *key, uint64_t value);

/* ------------------------------------------------------------------ directory ---- */

/*  What a node knows about a worker locally; it never travels. */
typedef struct {
    uint64_t last_seen;  /* ms: last time we heard from it directly */
    uint64_t last_ok;    /* ms: last exchange with it that succeeded */
    uint32_t fail_count; /* consecutive failed exchanges */
    bool is_genesis;
} sos_worker_local_t;

/*  Per origin: the highest version of any record from it we hold or held, and how many of
    its rooms we hold. The set of (origin, max_version) is the gossip digest. */
typedef struct {
    uint8_t origin[SOS_NODEID_BYTES];
    uint64_t max_version;
    uint32_t n_rooms;
    bool has_worker;
} sos_origin_t;

/*  Insert or replace the record under its key (a worker by origin, a room by room_hash).
    Keeps the indexes in step: by origin and version, the origin table (max_version, n_rooms),
    and room expiry. A replaced worker keeps its local stats; a new one starts zeroed. The
    caller has decided that rec wins (see node/sos_merge.h); rec was verified. rec's wire form
    must parse to its kind, origin, version (and room_hash, expires_at for a room), else
    SOS_ERR_INVALID and nothing is written. */
sos_rc sos_dir_put(sos_txn_t *txn, const sos_record_t *rec);

/*  Get a worker's record and/or local stats (either pointer may be NULL). SOS_ERR_NOT_FOUND. */
sos_rc sos_dir_get_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], sos_record_t *rec,
                          sos_worker_local_t *local);
/*  Replace a stored worker's local stats. SOS_ERR_NOT_FOUND if no such worker. */
sos_rc sos_dir_put_worker_local(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES],
                                const sos_worker_local_t *local);
/*  rec may be NULL (does the room exist?). SOS_ERR_INVALID for a malformed room_hash. */
sos_rc sos_dir_get_room(sos_txn_t *txn, const char *room_hash, sos_record_t *rec);

/*  What this node alone knows of a room hash; it never travels. first_seen (wall ms) is
    when a record for the hash was first stored here, kept across changes of owner (the
    merge rules use it to refuse late claims, see node/sos_merge.h); contested says a
    conflicting claim for the hash was refused. Deleted with the room's record
    (sos_dir_del_room). get: SOS_ERR_NOT_FOUND if none (a room stored before these were
    kept), local may be NULL; SOS_ERR_INVALID for a malformed room_hash. */
typedef struct {
    uint64_t first_seen;
    bool contested;
    bool pooled; /* taken into the bounded pool of rooms from origins not vouched for */
} sos_room_local_t;
sos_rc sos_dir_room_local_get(sos_txn_t *txn, const char *room_hash, sos_room_local_t *local);
sos_rc sos_dir_room_local_put(sos_txn_t *txn, const char *room_hash, const sos_room_local_t *local);
/*  How many rooms held have pooled set (kept by room_local_put and sos_dir_del_room). */
sos_rc sos_dir_rooms_pooled(sos_txn_t *txn, uint64_t *count);

/*  Remove a worker or room record and its index entries. The origin's entry stays while it
    has records or a tombstone, and then goes. SOS_ERR_NOT_FOUND if absent. */
sos_rc sos_dir_del_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES]);
sos_rc sos_dir_del_room(sos_txn_t *txn, const char *room_hash);

/*  Iterators. A callback returns 0 to go on, non-zero to stop (the iterator then returns
    SOS_OK). Records passed to callbacks are valid only during the call. A callback must not
    write to the store; collect what to change and change it after. A stored record that
    does not parse ends the iteration with SOS_ERR_CORRUPT. */
typedef int(sos_dir_worker_fn)(void *arg, const sos_record_t *rec, const sos_worker_local_t *local);
typedef int(sos_dir_room_fn)(void *arg, const sos_record_t *rec);
typedef int(sos_dir_wire_fn)(void *arg, const uint8_t *wire, size_t len, uint64_t version);
typedef int(sos_dir_origin_fn)(void *arg, const sos_origin_t *origin);

sos_rc sos_dir_foreach_worker(sos_txn_t *txn, sos_dir_worker_fn *fn, void *arg);
/*  Rooms in room_hash order, starting after after_hash (NULL: from the first; at most
    SOS_ROOMHASH_LEN characters, which need not name a stored room). */
sos_rc sos_dir_foreach_room(sos_txn_t *txn, const char *after_hash, sos_dir_room_fn *fn, void *arg);
/*  The wire forms of origin's records with version > since, in ascending version. wire
    borrows from the store and is valid only during the call. */
sos_rc sos_dir_foreach_since(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], uint64_t since,
                             sos_dir_wire_fn *fn, void *arg);
/*  Origins in node id order; get_origin gives SOS_ERR_NOT_FOUND for an unknown one (out may
    be NULL). */
/*  The highest version of origin's records held now (0 if none). */
sos_rc sos_dir_held_max(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], uint64_t *version);
sos_rc sos_dir_foreach_origin(sos_txn_t *txn, sos_dir_origin_fn *fn, void *arg);
sos_rc sos_dir_get_origin(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES],
                          sos_origin_t *out);

/*  Counts of worker and room records (either pointer may be NULL), and of origins. */
sos_rc sos_dir_counts(sos_txn_t *txn, uint64_t *workers, uint64_t *rooms, uint64_t *origins);

/*  Tombstones: a removed worker, and the version at which it was removed. Records from it
    with a version up to that are refused until the tombstone expires. A tombstone keeps the
    origin's entry (and raises its max_version to version). put replaces an existing
    tombstone and does not touch the worker's record (delete it with sos_dir_del_worker).
    get (either out pointer may be NULL) and del give SOS_ERR_NOT_FOUND if there is none. */
sos_rc sos_dir_tombstone_put(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t version,
                             uint64_t expires_at);
sos_rc sos_dir_tombstone_get(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t *version,
                             uint64_t *expires_at);
sos_rc sos_dir_tombstone_del(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES]);
/*  Delete every tombstone with expires_at <= now_ms; *removed (may be NULL) counts them. */
sos_rc sos_dir_tombstone_sweep(sos_txn_t *txn, uint64_t now_ms, uint32_t *removed);

/*  Rooms whose expires_at <= now_ms, earliest first (the callback may not write; collect and
    delete after). sos_dir_next_expiry gives the earliest expires_at, SOS_ERR_NOT_FOUND if no
    room. room_hash is NUL-terminated and valid only during the call. */
typedef int(sos_dir_expired_fn)(void *arg, const char *room_hash, uint64_t expires_at);
sos_rc sos_dir_foreach_expired(sos_txn_t *txn, uint64_t now_ms, sos_dir_expired_fn *fn, void *arg);
sos_rc sos_dir_next_expiry(sos_txn_t *txn, uint64_t *expires_at);

/* ------------------------------------------------------------ owned rooms ---- */

#define SOS_MEMBER_ID_LEN 32 /* lower-case hex: 128 random bits, a bearer secret */
#define SOS_NICK_MAX      20 /* bytes */
#define SOS_MSGID_MAX     64 /* bytes of a client's idempotency key */
#define SOS_CONTENT_MAX   (64 * 1024)

typedef struct {
    uint64_t created_at;
    uint64_t expires_at;
    uint64_t last_seq;      /* seq of the newest message, 0 if none yet */
    uint32_t message_count; /* messages kept (at most the history limit) */
    uint32_t member_count;
    uint64_t message_bytes; /* stored size of the messages kept; counted since stores of
                               this version (0 for a room made before, until it fills) */
} sos_room_state_t;

/*  A message. In callbacks the pointers borrow from the store and are valid only during the
    call; as input to append they are the caller's. */
typedef struct {
    uint64_t seq;
    uint64_t timestamp; /* ms since the epoch, set by the owner */
    const char *msg_id; /* the client's idempotency key */
    size_t msg_id_len;
    const char *sender; /* the sender's nickname (never the member id) */
    size_t sender_len;
    const uint8_t *content; /* opaque ciphertext */
    size_t content_len;
} sos_message_t;

/*  Every room_hash below must be 16 lower-case hex characters (else SOS_ERR_INVALID), and
    every function but create gives SOS_ERR_NOT_FOUND for a room without state. Callbacks
    must not write to the store. */

sos_rc sos_roomdb_create(sos_txn_t *txn, const char *room_hash, uint64_t created_at,
                         uint64_t expires_at); /* SOS_ERR_EXISTS */
/*  state may be NULL (does the room exist?). */
sos_rc sos_roomdb_get(sos_txn_t *txn, const char *room_hash, sos_room_state_t *state);
/*  The stored wire form of room_hash's directory record (the rooms table, not this file's
    state): *wire borrows from the store, valid until the transaction writes or ends
    (mdb_get's terms). For code that keeps decoded records and must know cheaply whether one
    is still what is stored. SOS_OK, SOS_ERR_NOT_FOUND, SOS_ERR_INVALID or a store error. */
sos_rc sos_roomdb_dir_wire(sos_txn_t *txn, const char *room_hash, const uint8_t **wire,
                           size_t *len);
/*  Change a room's expires_at (the owner extended it). */
sos_rc sos_roomdb_set_expires(sos_txn_t *txn, const char *room_hash, uint64_t expires_at);
/*  Delete a room's state, members, messages and message ids. */
sos_rc sos_roomdb_drop(sos_txn_t *txn, const char *room_hash);

/*  The owned rooms in room_hash order; room_hash and state are valid only during the call. */
typedef int(sos_roomdb_fn)(void *arg, const char *room_hash, const sos_room_state_t *state);
sos_rc sos_roomdb_foreach(sos_txn_t *txn, sos_roomdb_fn *fn, void *arg);

/*  member_id is SOS_MEMBER_ID_LEN lower-case hex characters (else SOS_ERR_INVALID), nickname
    at most SOS_NICK_MAX bytes (else SOS_ERR_TOO_LARGE). put adds a member or replaces its
    nickname and joined_at; member_count counts distinct members. */
sos_rc sos_roomdb_member_put(sos_txn_t *txn, const char *room_hash, const char *member_id,
                             const char *nickname, uint64_t joined_at);
/*  nickname (may be NULL) receives SOS_NICK_MAX + 1 bytes. SOS_ERR_NOT_FOUND. */
sos_rc sos_roomdb_member_get(sos_txn_t *txn, const char *room_hash, const char *member_id,
                             char *nickname);
sos_rc sos_roomdb_member_del(sos_txn_t *txn, const char *room_hash, const char *member_id);
/*  Members in member_id order; the strings are NUL-terminated and valid during the call. */
typedef int(sos_member_fn)(void *arg, const char *member_id, const char *nickname,
                           uint64_t joined_at);
sos_rc sos_roomdb_foreach_member(sos_txn_t *txn, const char *room_hash, sos_member_fn *fn,
                                 void *arg);

/*  Append msg (its seq is ignored) to a room. If msg->msg_id was stored before in this room,
    nothing is written, *dup is true and *seq / *timestamp are the first message's. Otherwise
    the message takes seq = last_seq + 1 and timestamp msg->timestamp, raised to one more
    than the newest message's timestamp if it is not above it (timestamps strictly increase
    in seq order), and the oldest
    messages beyond history_limit are dropped with their message ids. An empty msg_id
    (msg_id_len 0) is never matched. seq, timestamp and dup may be NULL. history_limit 0 is
    SOS_ERR_INVALID; a msg_id, sender or content over SOS_MSGID_MAX, SOS_NICK_MAX or
    SOS_CONTENT_MAX bytes is SOS_ERR_TOO_LARGE. */
sos_rc sos_roomdb_append(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                         uint32_t history_limit, uint64_t *seq, uint64_t *timestamp, bool *dup);
/*  As sos_roomdb_append, and the oldest messages are also dropped while the room's
    message_bytes is over bytes_limit (0: no limit); the newest message always stays. */
sos_rc sos_roomdb_append_quota(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                               uint32_t history_limit, uint64_t bytes_limit, uint64_t *seq,
                               uint64_t *timestamp, bool *dup);

/*  As sos_roomdb_append_quota without the msgids table: msg_id is stored with the message
    but neither looked up nor indexed, and *dup is never set. For a caller that keeps its own
    index of a room's message ids (built with sos_roomdb_foreach_message, checked with
    sos_roomdb_message_get): an insert into msgids lands on a leaf page of its own for
    nearly every message, and those pages are most of what a commit writes.
    last, if not NULL, is what the caller remembers of the room's newest message (its seq
    and timestamp, from its last append): used instead of reading that message when its seq
    is the room's last_seq, and updated on success. */
typedef struct {
    uint64_t seq;
    uint64_t timestamp;
} sos_roomdb_last_t;
sos_rc sos_roomdb_append_unindexed(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                                   uint32_t history_limit, uint64_t bytes_limit,
                                   sos_roomdb_last_t *last, uint64_t *seq, uint64_t *timestamp);
/*  As sos_roomdb_append_unindexed, for a caller that holds the room's state (read with
    sos_roomdb_get in this transaction, and changed since by this function alone): the
    state is neither read nor written here. On SOS_OK *state is the room's new state, which
    the caller must store with sos_roomdb_put_state before the transaction commits and
    before anything else reads or writes the room's state (appends held this way may go on
    first); until then the stored state is stale. On an error *state is unchanged. NULL
    state: SOS_ERR_INVALID. */
/*  Store a room's state held by the caller (see sos_roomdb_append_held). SOS_OK,
    SOS_ERR_INVALID or a store error (which fails the transaction). */
sos_rc sos_roomdb_put_state(sos_txn_t *txn, const char *room_hash, const sos_room_state_t *state);
sos_rc sos_roomdb_append_held(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                              uint32_t history_limit, uint64_t bytes_limit, sos_roomdb_last_t *last,
                              sos_room_state_t *state, uint64_t *seq, uint64_t *timestamp);
/*  The room's message seq in *msg (seq set; pointers borrow from the store, valid until the
    transaction writes or ends). SOS_OK, SOS_ERR_NOT_FOUND (no such message, e.g. it fell
    out of the history), SOS_ERR_INVALID, SOS_ERR_CORRUPT or a store error. */
sos_rc sos_roomdb_message_get(sos_txn_t *txn, const char *room_hash, uint64_t seq,
                              sos_message_t *msg);

typedef int(sos_message_fn)(void *arg, const sos_message_t *msg);
/*  Messages with seq > since, ascending; the callback returns non-zero to stop. msg_id and
    sender are not NUL-terminated (use their lengths). */
sos_rc sos_roomdb_foreach_message(sos_txn_t *txn, const char *room_hash, uint64_t since,
                                  sos_message_fn *fn, void *arg);

/*  *timestamp = the timestamp of the room's newest message, 0 if it has none. */
sos_rc sos_roomdb_last_ts(sos_txn_t *txn, const char *room_hash, uint64_t *timestamp);
/*  *seq = the seq of the newest kept message with timestamp <= since_ts, 0 if none: polling
    with since = *seq returns exactly the messages stamped after since_ts, because
    timestamps increase with seq. */
sos_rc sos_roomdb_seq_at(sos_txn_t *txn, const char *room_hash, uint64_t since_ts, uint64_t *seq);

#endif
