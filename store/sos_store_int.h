/*  sos_store_int.h: internals shared by the store's files (sos_store.c, sos_dir.c,
    sos_roomdb.c): the LMDB handles, fixed-endian encodings and LMDB error conversion. */
#ifndef SOS_STORE_INT_H
#define SOS_STORE_INT_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sos_store.h"

/*  The named databases. Their key and value layouts are described in sos_dir.c (directory)
    and sos_roomdb.c (owned rooms); meta is in sos_store.c. */
typedef enum {
    SOS_DB_META,
    SOS_DB_WORKERS,
    SOS_DB_ROOMS,
    SOS_DB_BY_ORIGIN,
    SOS_DB_ORIGINS,
    SOS_DB_TOMBSTONES,
    SOS_DB_EXPIRY,
    SOS_DB_RSTATE,
    SOS_DB_MEMBERS,
    SOS_DB_MESSAGES,
    SOS_DB_MSGIDS,
    SOS_DB_COUNT
} sos_db_t;

struct _sos_store_t {
    MDB_env *env;
    MDB_dbi dbi[SOS_DB_COUNT];
    int lock_fd;            /* dir/lock, flock'ed for the store's lifetime */
    atomic_bool writing;    /* a write transaction is open */
    atomic_uint n_txns;     /* open transactions, to catch a destroy with one still open */
    struct _sos_wal_t *wal; /* the write-ahead log (sos_wal.c); NULL: LMDB syncs itself */
    MDB_txn *pin;           /* read transaction on the last checkpoint's snapshot */
    size_t pin_pgno;        /* LMDB's last page then */
    sos_rc broken;          /* a commit could be made durable neither way: writes refused */
    bool wal_nosync;        /* test builds only: appends skip their fdatasync */
    struct _sos_mem_t *mem; /* non-NULL: the memory backend (sos_store_mem.c), no LMDB */
};

struct _sos_txn_t {
    sos_store_t *store;
    MDB_txn *mdb;
    bool write;
    bool lazy;     /* commit without waiting for the disk (sos_txn_commit_lazy) */
    bool op_wrote; /* the current write operation has changed (or tried to change) data */
    sos_rc err;    /* first failure that spoiled this write transaction; commit returns it */
    uint64_t id;   /* LMDB's id of this write transaction */
    uint8_t *log;  /* its puts and deletes, the record it appends to the log at commit */
    size_t log_len, log_cap;
    uint8_t *reserve; /* a reserved value the caller fills before the next write: copied */
    size_t reserve_at, reserve_len; /* into log[reserve_at] then */
};

/*  Convert an LMDB (or errno) return code to a sos_rc. */
sos_rc sos_store_rc(int mdb_rc);

/*  Every public function that writes brackets its work with these. op_begin refuses a
    read-only transaction (SOS_ERR_INVALID) and one that an earlier failure spoiled (that
    failure's code). op_end returns rc; if rc is an error and the operation had already
    written something, the transaction is spoiled: later calls fail and sos_txn_commit aborts
    and returns rc, so that a half-done change is never committed. */
sos_rc sos_txn_op_begin(sos_txn_t *txn);
sos_rc sos_txn_op_end(sos_txn_t *txn, sos_rc rc);

/*  Thin wrappers over mdb_get / mdb_put / mdb_del / cursors that convert codes and take part
    in the spoiling above. A value from sos_txn_get or a cursor points into the map and is
    valid only until the next write in the transaction. */
sos_rc sos_txn_get(sos_txn_t *txn, sos_db_t db, const void *key, size_t klen, MDB_val *val);
sos_rc sos_txn_put(sos_txn_t *txn, sos_db_t db, const void *key, size_t klen, const void *val,
                   size_t vlen);
/*  Reserve vlen bytes for key's value and return where to write them (MDB_RESERVE): fill them
    before the next write. Not for MDB_DUPSORT databases. */
sos_rc sos_txn_reserve(sos_txn_t *txn, sos_db_t db, const void *key, size_t klen, size_t vlen,
                       uint8_t **out);
/*  Delete key (and, in an MDB_DUPSORT database, only the pair with data dup if not NULL). */
sos_rc sos_txn_del(sos_txn_t *txn, sos_db_t db, const void *key, size_t klen, const void *dup,
                   size_t duplen);
/*  Delete every key that starts with prefix; *count (may be NULL) receives how many. */
sos_rc sos_txn_del_prefix(sos_txn_t *txn, sos_db_t db, const void *prefix, size_t len,
                          uint64_t *count);
sos_rc sos_txn_entries(sos_txn_t *txn, sos_db_t db, uint64_t *entries);

/*  A cursor on db; close it with mdb_cursor_close before the transaction ends. */
sos_rc sos_txn_cursor(sos_txn_t *txn, sos_db_t db, MDB_cursor **cursor);
sos_rc sos_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *val, MDB_cursor_op op);
/*  Delete the cursor's current item. The cursor's position afterwards is unspecified: seek
    again (MDB_SET_RANGE) before reading on. */
sos_rc sos_cursor_del(sos_txn_t *txn, MDB_cursor *cursor);

/*  True if key starts with the len bytes at prefix. */
static inline bool
sos_key_has_prefix(const MDB_val *key, const void *prefix, size_t len)
{
    return key->mv_size >= len && memcmp(key->mv_data, prefix, len) == 0;
}

/*  Fixed encodings: big-endian where a key must sort by number, little-endian elsewhere. */
static inline void
sos_enc_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t
sos_dec_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void
sos_enc_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t
sos_dec_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline void
sos_enc_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint32_t
sos_dec_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/*  True if s is a NUL-terminated room hash (16 lower-case hex characters). */
bool sos_store_room_hash_ok(const char *s);

/*  SOS_OK if both backends may store rec: a known kind, a valid key, and a wire form that
    parses to the same key fields, so that the indexes agree with the stored bytes;
    SOS_ERR_INVALID otherwise (sos_dir.c). */
sos_rc sos_store_check_record(const sos_record_t *rec);

#endif
