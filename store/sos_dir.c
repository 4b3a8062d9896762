/*  sos_dir.c: the directory of worker and room records that gossip carries, with its
    indexes (by origin and version, the origin table, room expiry) and the tombstones. */
#include <assert.h>
#include <string.h>

#include "sos_store_int.h"
#include "sos_store_mem.h"

/*  The directory on disk

    A record is stored once, as the exact signed bytes it travelled in, so that the node can
    pass it on without re-encoding and a reader can check the signature again. Everything
    else is an index over those bytes, changed in the same transaction as the record:

      workers     node id (32)                 -> local stats (21) + record wire bytes
      rooms       room_hash (16 chars)         -> record wire bytes
      by_origin   origin (32) + version BE (8) -> kind (1) + key (32 or 16)   [MDB_DUPSORT]
      origins     origin (32)                  -> max_version LE (8) + n_rooms LE (4)
                                                  + has_worker (1) + has_tombstone (1)
      tombstones  node id (32)                 -> version LE (8) + expires_at LE (8)
      expiry      expires_at BE (8) + room_hash (16) -> (empty)
      meta        "room/" + room_hash (16 chars) -> first_seen LE (8) + flags LE (8)

    The meta entry of a room is what this node alone knows of the hash: when it first held
    a record for it, whether a claim was refused (contested, flag bit 0) and whether it was
    taken into the pool of rooms from origins not vouched for (pooled, bit 1; the meta key
    "rooms_pooled" counts those). It never travels, outlives a change of owner, and goes
    with the room's record.

    The local stats of a worker (last_seen LE 8, last_ok LE 8, fail_count LE 4, is_genesis
    1) never travel; they sit in front of the wire bytes so that one read gives both, and a
    replaced worker record keeps them. Numbers in keys are big-endian so that LMDB's byte
    order is numeric order: by_origin then lists an origin's records by version, which is
    what anti-entropy asks for ("your records after version v"), and expiry lists rooms by
    the time they run out. Values use little-endian fixed-size fields, never C structs.

    by_origin keeps duplicates because the (origin, version) pair is not unique in practice:
    an origin that loses its counter signs new records with versions it used before, and
    while its old and new records both stand (a room and a worker, say) each needs its own
    entry. Every entry is deleted as the exact pair it was inserted as.

    Replacing or deleting a record needs the old record's origin, version and expiry to find
    its index entries; those are read from the stored bytes with sos_record_parse. A record
    is only stored after sos_dir_put has parsed its wire form and found it to agree with the
    decoded fields it was given, so stored bytes always parse unless the file is damaged,
    and then the operation reports SOS_ERR_CORRUPT.

    The origin table is the gossip digest: per origin, the highest version we hold or held,
    how many of its rooms we hold and whether we hold its worker record. An entry lives
    while the origin has a record or a tombstone here and is deleted with the last of them;
    max_version never goes down while the entry lives. The merge rules decide which record
    wins; the store only keeps the books, including when a room record from another origin
    replaces a room (the room moves: the old origin loses it, the new one gains it).

    Tombstones are few (one per removed worker, for a limited time), so the sweep scans
    them all instead of keeping another index. */

#define DIR_WORKER_HDR   21 /* last_seen 8, last_ok 8, fail_count 4, is_genesis 1 */
#define DIR_ORIGIN_VAL   14
#define DIR_TOMB_VAL     16
#define DIR_BYORIGIN_KEY (SOS_NODEID_BYTES + 8)
#define DIR_BYORIGIN_VAL (1 + SOS_NODEID_BYTES)
#define DIR_EXPIRY_KEY   (8 + SOS_ROOMHASH_LEN)

typedef struct {
    uint64_t max_version;
    uint32_t n_rooms;
    bool has_worker;
    bool has_tombstone;
} s_origin_t;

/* --------------------------------------------------------------- encodings ---- */

static void
s_local_encode(uint8_t *p, const sos_worker_local_t *local)
{
    sos_enc_le64(p, local->last_seen);
    sos_enc_le64(p + 8, local->last_ok);
    sos_enc_le32(p + 16, local->fail_count);
    p[20] = local->is_genesis ? 1 : 0;
}

/*  Check a stored worker value and decode what is asked for. */
static sos_rc
s_worker_decode(const uint8_t id[SOS_NODEID_BYTES], const MDB_val *val, sos_record_t *rec,
                sos_worker_local_t *local)
{
    const uint8_t *p = val->mv_data;
    if (val->mv_size <= DIR_WORKER_HDR || val->mv_size > DIR_WORKER_HDR + SOS_RECORD_MAX ||
        p[20] > 1)
        return SOS_ERR_CORRUPT;
    if (local) {
        local->last_seen = sos_dec_le64(p);
        local->last_ok = sos_dec_le64(p + 8);
        local->fail_count = sos_dec_le32(p + 16);
        local->is_genesis = p[20] == 1;
    }
    if (rec) {
        if (sos_record_parse(rec, p + DIR_WORKER_HDR, val->mv_size - DIR_WORKER_HDR) != SOS_OK)
            return SOS_ERR_CORRUPT;
        if (rec->kind != SOS_REC_WORKER || memcmp(rec->origin, id, SOS_NODEID_BYTES) != 0)
            return SOS_ERR_CORRUPT;
    }
    return SOS_OK;
}

static sos_rc
s_room_decode(const char *room_hash, const MDB_val *val, sos_record_t *rec)
{
    if (val->mv_size == 0 || val->mv_size > SOS_RECORD_MAX)
        return SOS_ERR_CORRUPT;
    if (sos_record_parse(rec, val->mv_data, val->mv_size) != SOS_OK)
        return SOS_ERR_CORRUPT;
    if (rec->kind != SOS_REC_ROOM || memcmp(rec->room_hash, room_hash, SOS_ROOMHASH_LEN) != 0)
        return SOS_ERR_CORRUPT;
    return SOS_OK;
}

static sos_rc
s_origin_decode(const MDB_val *val, s_origin_t *o)
{
    const uint8_t *p = val->mv_data;
    if (val->mv_size != DIR_ORIGIN_VAL || p[12] > 1 || p[13] > 1)
        return SOS_ERR_CORRUPT;
    o->max_version = sos_dec_le64(p);
    o->n_rooms = sos_dec_le32(p + 8);
    o->has_worker = p[12] == 1;
    o->has_tombstone = p[13] == 1;
    return SOS_OK;
}

static void
s_by_origin_key(uint8_t key[DIR_BYORIGIN_KEY], const uint8_t origin[SOS_NODEID_BYTES],
                uint64_t version)
{
    memcpy(key, origin, SOS_NODEID_BYTES);
    sos_enc_be64(key + SOS_NODEID_BYTES, version);
}

static size_t
s_by_origin_val(uint8_t val[DIR_BYORIGIN_VAL], const sos_record_t *rec)
{
    val[0] = (uint8_t)rec->kind;
    if (rec->kind == SOS_REC_WORKER) {
        memcpy(val + 1, rec->origin, SOS_NODEID_BYTES);
        return 1 + SOS_NODEID_BYTES;
    }
    memcpy(val + 1, rec->room_hash, SOS_ROOMHASH_LEN);
    return 1 + SOS_ROOMHASH_LEN;
}

static void
s_expiry_key(uint8_t key[DIR_EXPIRY_KEY], uint64_t expires_at, const char *room_hash)
{
    sos_enc_be64(key, expires_at);
    memcpy(key + 8, room_hash, SOS_ROOMHASH_LEN);
}

/* ---------------------------------------------------------- index upkeep ---- */

/*  Load an origin's entry; a missing one reads as all zero. */
static sos_rc
s_origin_load(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], s_origin_t *o)
{
    memset(o, 0, sizeof *o);
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_ORIGINS, origin, SOS_NODEID_BYTES, &val);
    if (rc == SOS_ERR_NOT_FOUND)
        return SOS_OK;
    if (rc)
        return rc;
    return s_origin_decode(&val, o);
}

/*  Write an origin's entry back, or delete it once nothing keeps it. */
static sos_rc
s_origin_store(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], const s_origin_t *o)
{
    if (o->n_rooms == 0 && !o->has_worker && !o->has_tombstone) {
        sos_rc rc = sos_txn_del(txn, SOS_DB_ORIGINS, origin, SOS_NODEID_BYTES, NULL, 0);
        return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
    }
    uint8_t val[DIR_ORIGIN_VAL];
    sos_enc_le64(val, o->max_version);
    sos_enc_le32(val + 8, o->n_rooms);
    val[12] = o->has_worker ? 1 : 0;
    val[13] = o->has_tombstone ? 1 : 0;
    return sos_txn_put(txn, SOS_DB_ORIGINS, origin, SOS_NODEID_BYTES, val, sizeof val);
}

static sos_rc
s_index_put(sos_txn_t *txn, const sos_record_t *rec)
{
    uint8_t key[DIR_BYORIGIN_KEY];
    uint8_t val[DIR_BYORIGIN_VAL];
    s_by_origin_key(key, rec->origin, rec->version);
    size_t vlen = s_by_origin_val(val, rec);
    sos_rc rc = sos_txn_put(txn, SOS_DB_BY_ORIGIN, key, sizeof key, val, vlen);
    return rc == SOS_ERR_EXISTS ? SOS_OK : rc;
}

/*  Deleting an index entry that is already gone is not an error: the goal is its absence. */
static sos_rc
s_index_del(sos_txn_t *txn, const sos_record_t *rec)
{
    uint8_t key[DIR_BYORIGIN_KEY];
    uint8_t val[DIR_BYORIGIN_VAL];
    s_by_origin_key(key, rec->origin, rec->version);
    size_t vlen = s_by_origin_val(val, rec);
    sos_rc rc = sos_txn_del(txn, SOS_DB_BY_ORIGIN, key, sizeof key, val, vlen);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

static sos_rc
s_expiry_put(sos_txn_t *txn, uint64_t expires_at, const char *room_hash)
{
    uint8_t key[DIR_EXPIRY_KEY];
    s_expiry_key(key, expires_at, room_hash);
    return sos_txn_put(txn, SOS_DB_EXPIRY, key, sizeof key, "", 0);
}

static sos_rc
s_expiry_del(sos_txn_t *txn, uint64_t expires_at, const char *room_hash)
{
    uint8_t key[DIR_EXPIRY_KEY];
    s_expiry_key(key, expires_at, room_hash);
    sos_rc rc = sos_txn_del(txn, SOS_DB_EXPIRY, key, sizeof key, NULL, 0);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

/* --------------------------------------------------------------------- put ---- */

sos_rc
sos_store_check_record(const sos_record_t *rec)
{
    if (!rec || rec->wire_len == 0 || rec->wire_len > SOS_RECORD_MAX)
        return SOS_ERR_INVALID;
    if (rec->kind != SOS_REC_WORKER && rec->kind != SOS_REC_ROOM)
        return SOS_ERR_INVALID;
    if (rec->kind == SOS_REC_ROOM && !sos_store_room_hash_ok(rec->room_hash))
        return SOS_ERR_INVALID;
    sos_record_t parsed;
    if (sos_record_parse(&parsed, rec->wire, rec->wire_len) != SOS_OK)
        return SOS_ERR_INVALID;
    if (parsed.kind != rec->kind || parsed.version != rec->version ||
        memcmp(parsed.origin, rec->origin, SOS_NODEID_BYTES) != 0)
        return SOS_ERR_INVALID;
    if (rec->kind == SOS_REC_ROOM &&
        (strcmp(parsed.room_hash, rec->room_hash) != 0 || parsed.expires_at != rec->expires_at))
        return SOS_ERR_INVALID;
    return SOS_OK;
}

static sos_rc
s_put_worker(sos_txn_t *txn, const sos_record_t *rec)
{
    sos_record_t old;
    sos_worker_local_t local = {0};
    bool had = false;
    s_origin_t o;

    /*  Read everything first: values borrowed from the map go stale once we write. */
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_WORKERS, rec->origin, SOS_NODEID_BYTES, &val);
    if (rc == SOS_OK) {
        rc = s_worker_decode(rec->origin, &val, &old, &local);
        had = true;
    } else if (rc == SOS_ERR_NOT_FOUND)
        rc = SOS_OK;
    if (rc == SOS_OK)
        rc = s_origin_load(txn, rec->origin, &o);
    if (rc)
        return rc;

    if (had)
        rc = s_index_del(txn, &old);
    if (rc == SOS_OK) {
        uint8_t buf[DIR_WORKER_HDR + SOS_RECORD_MAX];
        s_local_encode(buf, &local);
        memcpy(buf + DIR_WORKER_HDR, rec->wire, rec->wire_len);
        rc = sos_txn_put(txn, SOS_DB_WORKERS, rec->origin, SOS_NODEID_BYTES, buf,
                         DIR_WORKER_HDR + rec->wire_len);
    }
    if (rc == SOS_OK)
        rc = s_index_put(txn, rec);
    if (rc)
        return rc;
    if (rec->version > o.max_version)
        o.max_version = rec->version;
    o.has_worker = true;
    return s_origin_store(txn, rec->origin, &o);
}

static sos_rc
s_put_room(sos_txn_t *txn, const sos_record_t *rec)
{
    sos_record_t old;
    bool had = false;
    s_origin_t o_new, o_old;

    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_ROOMS, rec->room_hash, SOS_ROOMHASH_LEN, &val);
    if (rc == SOS_OK) {
        rc = s_room_decode(rec->room_hash, &val, &old);
        had = true;
    } else if (rc == SOS_ERR_NOT_FOUND)
        rc = SOS_OK;
    if (rc)
        return rc;
    bool moved = had && memcmp(old.origin, rec->origin, SOS_NODEID_BYTES) != 0;
    bool new_expiry = !had || old.expires_at != rec->expires_at;
    rc = s_origin_load(txn, rec->origin, &o_new);
    if (rc == SOS_OK && moved)
        rc = s_origin_load(txn, old.origin, &o_old);
    if (rc)
        return rc;

    if (had)
        rc = s_index_del(txn, &old);
    if (rc == SOS_OK && had && new_expiry)
        rc = s_expiry_del(txn, old.expires_at, rec->room_hash);
    if (rc == SOS_OK)
        rc = sos_txn_put(txn, SOS_DB_ROOMS, rec->room_hash, SOS_ROOMHASH_LEN, rec->wire,
                         rec->wire_len);
    if (rc == SOS_OK)
        rc = s_index_put(txn, rec);
    if (rc == SOS_OK && new_expiry)
        rc = s_expiry_put(txn, rec->expires_at, rec->room_hash);
    if (rc == SOS_OK && moved) {
        if (o_old.n_rooms > 0)
            o_old.n_rooms--;
        rc = s_origin_store(txn, old.origin, &o_old);
    }
    if (rc)
        return rc;
    if (!had || moved)
        o_new.n_rooms++;
    if (rec->version > o_new.max_version)
        o_new.max_version = rec->version;
    return s_origin_store(txn, rec->origin, &o_new);
}

sos_rc
sos_dir_put(sos_txn_t *txn, const sos_record_t *rec)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_put(txn, rec);
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    rc = sos_store_check_record(rec);
    if (rc == SOS_OK)
        rc = rec->kind == SOS_REC_WORKER ? s_put_worker(txn, rec) : s_put_room(txn, rec);
    return sos_txn_op_end(txn, rc);
}

/* --------------------------------------------------------------- get, del ---- */

sos_rc
sos_dir_get_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], sos_record_t *rec,
                   sos_worker_local_t *local)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_get_worker(txn, id, rec, local);
    assert(txn);
    assert(id);
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_WORKERS, id, SOS_NODEID_BYTES, &val);
    if (rc)
        return rc;
    return s_worker_decode(id, &val, rec, local);
}

sos_rc
sos_dir_put_worker_local(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES],
                         const sos_worker_local_t *local)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_put_worker_local(txn, id, local);
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!id || !local)
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    MDB_val val;
    rc = sos_txn_get(txn, SOS_DB_WORKERS, id, SOS_NODEID_BYTES, &val);
    if (rc == SOS_OK)
        rc = s_worker_decode(id, &val, NULL, NULL);
    if (rc == SOS_OK) {
        uint8_t buf[DIR_WORKER_HDR + SOS_RECORD_MAX];
        size_t len = val.mv_size;
        memcpy(buf, val.mv_data, len);
        s_local_encode(buf, local);
        rc = sos_txn_put(txn, SOS_DB_WORKERS, id, SOS_NODEID_BYTES, buf, len);
    }
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_dir_get_room(sos_txn_t *txn, const char *room_hash, sos_record_t *rec)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_get_room(txn, room_hash, rec);
    assert(txn);
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_ROOMS, room_hash, SOS_ROOMHASH_LEN, &val);
    if (rc)
        return rc;
    sos_record_t tmp;
    return s_room_decode(room_hash, &val, rec ? rec : &tmp);
}

static sos_rc
s_del_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES])
{
    sos_record_t old;
    s_origin_t o;
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_WORKERS, id, SOS_NODEID_BYTES, &val);
    if (rc == SOS_OK)
        rc = s_worker_decode(id, &val, &old, NULL);
    if (rc == SOS_OK)
        rc = s_origin_load(txn, id, &o);
    if (rc == SOS_OK)
        rc = s_index_del(txn, &old);
    if (rc == SOS_OK)
        rc = sos_txn_del(txn, SOS_DB_WORKERS, id, SOS_NODEID_BYTES, NULL, 0);
    if (rc)
        return rc;
    o.has_worker = false;
    return s_origin_store(txn, id, &o);
}

sos_rc
sos_dir_del_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES])
{
    if (txn && txn->store->mem)
        return sos_mem_dir_del_worker(txn, id);
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    rc = id ? s_del_worker(txn, id) : SOS_ERR_INVALID;
    return sos_txn_op_end(txn, rc);
}

#define DIR_ROOM_LOCAL_PREFIX "room/"
#define DIR_ROOM_LOCAL_KEY    (sizeof DIR_ROOM_LOCAL_PREFIX - 1 + SOS_ROOMHASH_LEN)
#define DIR_ROOM_LOCAL_VAL    16

static void
s_room_local_key(char key[DIR_ROOM_LOCAL_KEY], const char *room_hash)
{
    memcpy(key, DIR_ROOM_LOCAL_PREFIX, sizeof DIR_ROOM_LOCAL_PREFIX - 1);
    memcpy(key + sizeof DIR_ROOM_LOCAL_PREFIX - 1, room_hash, SOS_ROOMHASH_LEN);
}

sos_rc
sos_dir_room_local_get(sos_txn_t *txn, const char *room_hash, sos_room_local_t *local)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_room_local_get(txn, room_hash, local);
    assert(txn);
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    char key[DIR_ROOM_LOCAL_KEY];
    s_room_local_key(key, room_hash);
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_META, key, sizeof key, &val);
    if (rc)
        return rc;
    if (val.mv_size != DIR_ROOM_LOCAL_VAL)
        return SOS_ERR_CORRUPT;
    if (local) {
        uint64_t flags = sos_dec_le64((const uint8_t *)val.mv_data + 8);
        local->first_seen = sos_dec_le64(val.mv_data);
        local->contested = flags & 1;
        local->pooled = (flags >> 1) & 1;
    }
    return SOS_OK;
}

#define DIR_POOLED_KEY "rooms_pooled"

sos_rc
sos_dir_rooms_pooled(sos_txn_t *txn, uint64_t *count)
{
    sos_rc rc = sos_meta_get_u64(txn, DIR_POOLED_KEY, count);
    if (rc == SOS_ERR_NOT_FOUND) {
        *count = 0;
        rc = SOS_OK;
    }
    return rc;
}

/*  Add delta (+1 or -1) to the count of pooled rooms. */
static sos_rc
s_pooled_add(sos_txn_t *txn, int delta)
{
    uint64_t n = 0;
    sos_rc rc = sos_dir_rooms_pooled(txn, &n);
    if (rc)
        return rc;
    if (delta < 0 && n == 0)
        return SOS_OK;
    /*  Written here rather than with sos_meta_put_u64, which would begin an operation of its
        own inside the caller's. */
    uint8_t buf[8];
    sos_enc_le64(buf, delta < 0 ? n - 1 : n + 1);
    return sos_txn_put(txn, SOS_DB_META, DIR_POOLED_KEY, sizeof DIR_POOLED_KEY - 1, buf,
                       sizeof buf);
}

sos_rc
sos_dir_room_local_put(sos_txn_t *txn, const char *room_hash, const sos_room_local_t *local)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_room_local_put(txn, room_hash, local);
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!local || !sos_store_room_hash_ok(room_hash))
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    sos_room_local_t old = {0};
    rc = sos_dir_room_local_get(txn, room_hash, &old);
    if (rc == SOS_ERR_NOT_FOUND)
        rc = SOS_OK;
    if (rc == SOS_OK && old.pooled != local->pooled)
        rc = s_pooled_add(txn, local->pooled ? 1 : -1);
    char key[DIR_ROOM_LOCAL_KEY];
    s_room_local_key(key, room_hash);
    uint8_t val[DIR_ROOM_LOCAL_VAL];
    sos_enc_le64(val, local->first_seen);
    sos_enc_le64(val + 8, (local->contested ? 1 : 0) | (local->pooled ? 2 : 0));
    if (rc == SOS_OK)
        rc = sos_txn_put(txn, SOS_DB_META, key, sizeof key, val, sizeof val);
    return sos_txn_op_end(txn, rc);
}

static sos_rc
s_del_room(sos_txn_t *txn, const char *room_hash)
{
    sos_record_t old;
    s_origin_t o;
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_ROOMS, room_hash, SOS_ROOMHASH_LEN, &val);
    if (rc == SOS_OK)
        rc = s_room_decode(room_hash, &val, &old);
    if (rc == SOS_OK)
        rc = s_origin_load(txn, old.origin, &o);
    if (rc == SOS_OK)
        rc = s_index_del(txn, &old);
    if (rc == SOS_OK)
        rc = s_expiry_del(txn, old.expires_at, room_hash);
    if (rc == SOS_OK)
        rc = sos_txn_del(txn, SOS_DB_ROOMS, room_hash, SOS_ROOMHASH_LEN, NULL, 0);
    if (rc == SOS_OK) {
        sos_room_local_t local = {0};
        char key[DIR_ROOM_LOCAL_KEY];
        s_room_local_key(key, room_hash);
        rc = sos_dir_room_local_get(txn, room_hash, &local);
        if (rc == SOS_OK && local.pooled)
            rc = s_pooled_add(txn, -1);
        if (rc == SOS_OK)
            rc = sos_txn_del(txn, SOS_DB_META, key, sizeof key, NULL, 0);
        if (rc == SOS_ERR_NOT_FOUND) /* a room stored before first-seen times were kept */
            rc = SOS_OK;
    }
    if (rc)
        return rc;
    if (o.n_rooms > 0)
        o.n_rooms--;
    return s_origin_store(txn, old.origin, &o);
}

sos_rc
sos_dir_del_room(sos_txn_t *txn, const char *room_hash)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_del_room(txn, room_hash);
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    rc = sos_store_room_hash_ok(room_hash) ? s_del_room(txn, room_hash) : SOS_ERR_INVALID;
    return sos_txn_op_end(txn, rc);
}

/* -------------------------------------------------------------- iterators ---- */

sos_rc
sos_dir_foreach_worker(sos_txn_t *txn, sos_dir_worker_fn *fn, void *arg)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_foreach_worker(txn, fn, arg);
    assert(txn);
    assert(fn);
    MDB_cursor *cur;
    sos_rc rc = sos_txn_cursor(txn, SOS_DB_WORKERS, &cur);
    if (rc)
        return rc;
    sos_record_t rec;
    sos_worker_local_t local;
    MDB_val key, val;
    rc = sos_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == SOS_OK) {
        if (key.mv_size != SOS_NODEID_BYTES) {
            rc = SOS_ERR_CORRUPT;
            break;
        }
        rc = s_worker_decode(key.mv_data, &val, &rec, &local);
        if (rc)
            break;
        if (fn(arg, &rec, &local) != 0)
            break;
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

sos_rc
sos_dir_foreach_room(sos_txn_t *txn, const char *after_hash, sos_dir_room_fn *fn, void *arg)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_foreach_room(txn, after_hash, fn, arg);
    assert(txn);
    assert(fn);
    size_t after_len = 0;
    if (after_hash) {
        after_len = strnlen(after_hash, SOS_ROOMHASH_LEN + 1);
        if (after_len > SOS_ROOMHASH_LEN)
            return SOS_ERR_INVALID;
    }
    MDB_cursor *cur;
    sos_rc rc = sos_txn_cursor(txn, SOS_DB_ROOMS, &cur);
    if (rc)
        return rc;
    sos_record_t rec;
    char hash[SOS_ROOMHASH_LEN + 1];
    MDB_val key = {after_len, (void *)after_hash};
    MDB_val val;
    rc = sos_cursor_get(cur, &key, &val, after_len ? MDB_SET_RANGE : MDB_FIRST);
    if (rc == SOS_OK && after_len && key.mv_size == after_len &&
        memcmp(key.mv_data, after_hash, after_len) == 0)
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    while (rc == SOS_OK) {
        if (key.mv_size != SOS_ROOMHASH_LEN) {
            rc = SOS_ERR_CORRUPT;
            break;
        }
        memcpy(hash, key.mv_data, SOS_ROOMHASH_LEN);
        hash[SOS_ROOMHASH_LEN] = '\0';
        rc = s_room_decode(hash, &val, &rec);
        if (rc)
            break;
        if (fn(arg, &rec) != 0)
            break;
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

/*  The wire bytes of the record a by_origin entry points to. */
static sos_rc
s_index_target(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], const MDB_val *ref,
               const uint8_t **wire, size_t *len)
{
    const uint8_t *p = ref->mv_data;
    MDB_val val;
    sos_rc rc;
    if (ref->mv_size == 1 + SOS_NODEID_BYTES && p[0] == SOS_REC_WORKER) {
        if (memcmp(p + 1, origin, SOS_NODEID_BYTES) != 0)
            return SOS_ERR_CORRUPT;
        rc = sos_txn_get(txn, SOS_DB_WORKERS, p + 1, SOS_NODEID_BYTES, &val);
        if (rc == SOS_OK && val.mv_size <= DIR_WORKER_HDR)
            rc = SOS_ERR_CORRUPT;
        if (rc == SOS_OK) {
            *wire = (const uint8_t *)val.mv_data + DIR_WORKER_HDR;
            *len = val.mv_size - DIR_WORKER_HDR;
        }
    } else if (ref->mv_size == 1 + SOS_ROOMHASH_LEN && p[0] == SOS_REC_ROOM) {
        rc = sos_txn_get(txn, SOS_DB_ROOMS, p + 1, SOS_ROOMHASH_LEN, &val);
        if (rc == SOS_OK && val.mv_size == 0)
            rc = SOS_ERR_CORRUPT;
        if (rc == SOS_OK) {
            *wire = val.mv_data;
            *len = val.mv_size;
        }
    } else
        return SOS_ERR_CORRUPT;
    /*  The index and the records change together, so a dangling entry is damage. */
    return rc == SOS_ERR_NOT_FOUND ? SOS_ERR_CORRUPT : rc;
}

sos_rc
sos_dir_foreach_since(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], uint64_t since,
                      sos_dir_wire_fn *fn, void *arg)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_foreach_since(txn, origin, since, fn, arg);
    assert(txn);
    assert(origin);
    assert(fn);
    if (since == UINT64_MAX)
        return SOS_OK;
    MDB_cursor *cur;
    sos_rc rc = sos_txn_cursor(txn, SOS_DB_BY_ORIGIN, &cur);
    if (rc)
        return rc;
    uint8_t start[DIR_BYORIGIN_KEY];
    s_by_origin_key(start, origin, since + 1);
    MDB_val key = {sizeof start, start};
    MDB_val val;
    rc = sos_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == SOS_OK && sos_key_has_prefix(&key, origin, SOS_NODEID_BYTES)) {
        if (key.mv_size != DIR_BYORIGIN_KEY) {
            rc = SOS_ERR_CORRUPT;
            break;
        }
        uint64_t version = sos_dec_be64((const uint8_t *)key.mv_data + SOS_NODEID_BYTES);
        const uint8_t *wire;
        size_t len;
        rc = s_index_target(txn, origin, &val, &wire, &len);
        if (rc)
            break;
        if (fn(arg, wire, len, version) != 0)
            break;
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

static void
s_origin_export(sos_origin_t *out, const uint8_t origin[SOS_NODEID_BYTES], const s_origin_t *o)
{
    memcpy(out->origin, origin, SOS_NODEID_BYTES);
    out->max_version = o->max_version;
    out->n_rooms = o->n_rooms;
    out->has_worker = o->has_worker;
}

sos_rc
sos_dir_foreach_origin(sos_txn_t *txn, sos_dir_origin_fn *fn, void *arg)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_foreach_origin(txn, fn, arg);
    assert(txn);
    assert(fn);
    MDB_cursor *cur;
    sos_rc rc = sos_txn_cursor(txn, SOS_DB_ORIGINS, &cur);
    if (rc)
        return rc;
    MDB_val key, val;
    rc = sos_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == SOS_OK) {
        s_origin_t o;
        sos_origin_t out;
        if (key.mv_size != SOS_NODEID_BYTES) {
            rc = SOS_ERR_CORRUPT;
            break;
        }
        rc = s_origin_decode(&val, &o);
        if (rc)
            break;
        s_origin_export(&out, key.mv_data, &o);
        if (fn(arg, &out) != 0)
            break;
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

sos_rc
sos_dir_get_origin(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], sos_origin_t *out)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_get_origin(txn, origin, out);
    assert(txn);
    assert(origin);
    MDB_val val;
    s_origin_t o;
    sos_rc rc = sos_txn_get(txn, SOS_DB_ORIGINS, origin, SOS_NODEID_BYTES, &val);
    if (rc == SOS_OK)
        rc = s_origin_decode(&val, &o);
    if (rc == SOS_OK && out)
        s_origin_export(out, origin, &o);
    return rc;
}

sos_rc
sos_dir_counts(sos_txn_t *txn, uint64_t *workers, uint64_t *rooms, uint64_t *origins)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_counts(txn, workers, rooms, origins);
    assert(txn);
    sos_rc rc = SOS_OK;
    if (workers)
        rc = sos_txn_entries(txn, SOS_DB_WORKERS, workers);
    if (rc == SOS_OK && rooms)
        rc = sos_txn_entries(txn, SOS_DB_ROOMS, rooms);
    if (rc == SOS_OK && origins)
        rc = sos_txn_entries(txn, SOS_DB_ORIGINS, origins);
    return rc;
}

/* ------------------------------------------------------------- tombstones ---- */

sos_rc
sos_dir_tombstone_put(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t version,
                      uint64_t expires_at)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_tombstone_put(txn, id, version, expires_at);
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!id)
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    s_origin_t o;
    rc = s_origin_load(txn, id, &o);
    if (rc == SOS_OK) {
        uint8_t val[DIR_TOMB_VAL];
        sos_enc_le64(val, version);
        sos_enc_le64(val + 8, expires_at);
        rc = sos_txn_put(txn, SOS_DB_TOMBSTONES, id, SOS_NODEID_BYTES, val, sizeof val);
    }
    if (rc == SOS_OK) {
        o.has_tombstone = true;
        if (version > o.max_version)
            o.max_version = version;
        rc = s_origin_store(txn, id, &o);
    }
    return sos_txn_op_end(txn, rc);
}

static sos_rc
s_tomb_decode(const MDB_val *val, uint64_t *version, uint64_t *expires_at)
{
    if (val->mv_size != DIR_TOMB_VAL)
        return SOS_ERR_CORRUPT;
    if (version)
        *version = sos_dec_le64(val->mv_data);
    if (expires_at)
        *expires_at = sos_dec_le64((const uint8_t *)val->mv_data + 8);
    return SOS_OK;
}

sos_rc
sos_dir_tombstone_get(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t *version,
                      uint64_t *expires_at)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_tombstone_get(txn, id, version, expires_at);
    assert(txn);
    assert(id);
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_TOMBSTONES, id, SOS_NODEID_BYTES, &val);
    if (rc)
        return rc;
    return s_tomb_decode(&val, version, expires_at);
}

/*  The tombstone is gone: clear the flag and drop the origin's entry if nothing else keeps it. */
static sos_rc
s_tomb_forget(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES])
{
    s_origin_t o;
    sos_rc rc = s_origin_load(txn, id, &o);
    if (rc)
        return rc;
    o.has_tombstone = false;
    return s_origin_store(txn, id, &o);
}

sos_rc
sos_dir_tombstone_del(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES])
{
    if (txn && txn->store->mem)
        return sos_mem_dir_tombstone_del(txn, id);
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!id)
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    rc = sos_txn_del(txn, SOS_DB_TOMBSTONES, id, SOS_NODEID_BYTES, NULL, 0);
    if (rc == SOS_OK)
        rc = s_tomb_forget(txn, id);
    return sos_txn_op_end(txn, rc);
}

static sos_rc
s_tomb_sweep(sos_txn_t *txn, MDB_cursor *cur, uint64_t now_ms, uint32_t *removed)
{
    MDB_val key, val;
    sos_rc rc = sos_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == SOS_OK) {
        uint64_t expires_at;
        if (key.mv_size != SOS_NODEID_BYTES)
            return SOS_ERR_CORRUPT;
        rc = s_tomb_decode(&val, NULL, &expires_at);
        if (rc)
            return rc;
        if (expires_at > now_ms) {
            rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
            continue;
        }
        uint8_t id[SOS_NODEID_BYTES];
        memcpy(id, key.mv_data, SOS_NODEID_BYTES);
        rc = sos_cursor_del(txn, cur);
        if (rc == SOS_OK)
            rc = s_tomb_forget(txn, id);
        if (rc)
            return rc;
        (*removed)++;
        key.mv_size = SOS_NODEID_BYTES;
        key.mv_data = id;
        rc = sos_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    }
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

sos_rc
sos_dir_tombstone_sweep(sos_txn_t *txn, uint64_t now_ms, uint32_t *removed)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_tombstone_sweep(txn, now_ms, removed);
    uint32_t n = 0;
    MDB_cursor *cur = NULL;
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    rc = sos_txn_cursor(txn, SOS_DB_TOMBSTONES, &cur);
    if (rc == SOS_OK) {
        rc = s_tomb_sweep(txn, cur, now_ms, &n);
        mdb_cursor_close(cur);
    }
    if (removed)
        *removed = rc == SOS_OK ? n : 0;
    return sos_txn_op_end(txn, rc);
}

/* ----------------------------------------------------------------- expiry ---- */

sos_rc
sos_dir_foreach_expired(sos_txn_t *txn, uint64_t now_ms, sos_dir_expired_fn *fn, void *arg)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_foreach_expired(txn, now_ms, fn, arg);
    assert(txn);
    assert(fn);
    MDB_cursor *cur;
    sos_rc rc = sos_txn_cursor(txn, SOS_DB_EXPIRY, &cur);
    if (rc)
        return rc;
    char hash[SOS_ROOMHASH_LEN + 1];
    MDB_val key, val;
    rc = sos_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == SOS_OK) {
        if (key.mv_size != DIR_EXPIRY_KEY) {
            rc = SOS_ERR_CORRUPT;
            break;
        }
        uint64_t expires_at = sos_dec_be64(key.mv_data);
        if (expires_at > now_ms)
            break;
        memcpy(hash, (const uint8_t *)key.mv_data + 8, SOS_ROOMHASH_LEN);
        hash[SOS_ROOMHASH_LEN] = '\0';
        if (fn(arg, hash, expires_at) != 0)
            break;
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

sos_rc
sos_dir_next_expiry(sos_txn_t *txn, uint64_t *expires_at)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_next_expiry(txn, expires_at);
    assert(txn);
    MDB_cursor *cur;
    sos_rc rc = sos_txn_cursor(txn, SOS_DB_EXPIRY, &cur);
    if (rc)
        return rc;
    MDB_val key, val;
    rc = sos_cursor_get(cur, &key, &val, MDB_FIRST);
    if (rc == SOS_OK && key.mv_size != DIR_EXPIRY_KEY)
        rc = SOS_ERR_CORRUPT;
    if (rc == SOS_OK && expires_at)
        *expires_at = sos_dec_be64(key.mv_data);
    mdb_cursor_close(cur);
    return rc;
}

sos_rc
sos_dir_held_max(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], uint64_t *version)
{
    if (txn && txn->store->mem)
        return sos_mem_dir_held_max(txn, origin, version);
    assert(txn);
    assert(origin);
    assert(version);
    *version = 0;
    MDB_cursor *cur;
    sos_rc rc = sos_txn_cursor(txn, SOS_DB_BY_ORIGIN, &cur);
    if (rc)
        return rc;
    /*  The last key of the origin's range: seek past it, then step back one. */
    uint8_t start[DIR_BYORIGIN_KEY];
    s_by_origin_key(start, origin, UINT64_MAX);
    MDB_val key = {sizeof start, start};
    MDB_val val;
    rc = sos_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == SOS_OK && sos_key_has_prefix(&key, origin, SOS_NODEID_BYTES) &&
        key.mv_size == DIR_BYORIGIN_KEY)
        *version = sos_dec_be64((const uint8_t *)key.mv_data + SOS_NODEID_BYTES);
    else {
        rc = sos_cursor_get(cur, &key, &val, rc == SOS_OK ? MDB_PREV_NODUP : MDB_LAST);
        if (rc == SOS_OK && sos_key_has_prefix(&key, origin, SOS_NODEID_BYTES)) {
            if (key.mv_size != DIR_BYORIGIN_KEY)
                rc = SOS_ERR_CORRUPT;
            else
                *version = sos_dec_be64((const uint8_t *)key.mv_data + SOS_NODEID_BYTES);
        }
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}
