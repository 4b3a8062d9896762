/*  sos_store_mem.c: the store kept in memory, for the simulator: the same directory, meta
    and transaction contract as the LMDB store, sized for thousands of stores in one process. */
#define _GNU_SOURCE /* qsort_r */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sos_store_mem.h"

/*  Why this shape

    A simulation of 10,000 nodes holds 10,000 directories of (nearly) the same 10,000
    records. Kept as LMDB keeps them, each directory would repeat every record's bytes and
    its 32-byte keys; here each distinct record's bytes live once in the pool (interned by a
    hash of the bytes, counted by reference and freed with the last holder), node ids and
    room hashes are interned to 32-bit numbers, and a store is a handful of hash tables from
    those numbers to small fixed values:

      node    id        -> worker record (or none), max_version, n_rooms, has_tombstone
                           (the origin table and the workers together: one entry per origin)
      local   id        -> a worker's local stats, only once something set them
      tomb    id        -> version, expires_at
      room    room hash -> record, version, expires_at, origin id
      rlocal  room hash -> first_seen, contested, pooled
      meta    name      -> u64 (names are the store's own small list)

    The LMDB store's other indexes are derived when asked: an origin's records since a
    version are its worker and those of the rooms whose origin it is (rooms are few next to
    workers), and ordered iterations sort a copy of the keys. That trades time on rare calls
    for memory on every store.

    Transactions: one write transaction at a time writes in place and logs each changed
    entry's old value (an undo log). Commit drops the log (and the references its old values
    held); abort puts the old values back in reverse order, so that an aborted transaction
    leaves no trace. The references move with the values, so a record stays in the pool while
    either the table or the log holds it. A read transaction sees the open write
    transaction's changes: the simulator runs one thread and never overlaps the two. */

typedef struct s_blob {
    struct s_blob *next;  /* the pool's hash chain */
    sos_record_t *parsed; /* the bytes parsed, once for every store that reads them, or NULL */
    uint64_t version;     /* parsed->version and kind, set with it: read without a second miss */
    uint32_t kind;
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    uint8_t bytes[];
} s_blob_t;

/*  Interned fixed-size keys: numbered in order of arrival, never forgotten. */
typedef struct {
    size_t klen;
    uint8_t *keys; /* key i at keys + i * klen */
    size_t n, cap;
    uint32_t *index; /* open addressing: i + 1, 0 empty */
    size_t icap;
} s_names_t;

struct _sos_store_pool_t {
    s_blob_t **buckets;
    size_t nbuckets, nblobs, nparsed;
    uint64_t blob_bytes;
    s_names_t ids;   /* node ids */
    s_names_t rooms; /* room hashes, 16 characters */
    /*  The ids in byte order, remade when ids were interned since: iterations in id order
        then place each store's entries by rank instead of sorting them (see s_collect_ids). */
    uint32_t *order; /* rank -> id number */
    uint32_t *rank;  /* id number -> rank */
    size_t n_ranked, cap_ranked;
};

/*  A hash table from a 32-bit number to a fixed-size value. */
typedef struct {
    uint32_t *keys; /* number + 1, 0 empty */
    uint8_t *vals;
    size_t vsize, cap, n;
} s_map_t;

typedef enum { T_NODE, T_LOCAL, T_TOMB, T_ROOM, T_RLOCAL, T_META, T_COUNT } s_table_t;

typedef struct {
    s_blob_t *worker;
    uint64_t max_version;
    uint32_t n_rooms;
    uint32_t has_tomb;
} s_node_t;

typedef struct {
    uint64_t version;
    uint64_t expires_at;
} s_tomb_t;

typedef struct {
    s_blob_t *rec;
    uint64_t version;
    uint64_t expires_at;
    uint32_t origin; /* id number */
} s_room_t;

typedef struct {
    uint64_t first_seen;
    uint32_t contested;
    uint32_t pooled;
} s_rlocal_t;

#define S_VAL_MAX   32
#define S_META_NAME 65
#define S_POOLED    "rooms_pooled"

static const size_t s_vsize[T_COUNT] = {
    [T_NODE] = sizeof(s_node_t),     [T_LOCAL] = sizeof(sos_worker_local_t),
    [T_TOMB] = sizeof(s_tomb_t),     [T_ROOM] = sizeof(s_room_t),
    [T_RLOCAL] = sizeof(s_rlocal_t), [T_META] = sizeof(uint64_t),
};

typedef struct {
    uint8_t table;
    uint8_t had;
    uint32_t key;
    uint8_t old[S_VAL_MAX];
} s_undo_t;

struct _sos_mem_t {
    sos_store_pool_t *pool;
    s_map_t maps[T_COUNT];
    char (*meta_names)[S_META_NAME];
    size_t n_meta, cap_meta;
    uint64_t n_workers;
    s_undo_t *undo;
    size_t n_undo, cap_undo;
};

/* ------------------------------------------------------------------ hashing ---- */

static uint64_t
s_hash(const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ len; /* FNV-1a over 8-byte words, then a final mix */
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static size_t
s_hash32(uint32_t k, size_t cap)
{
    return (size_t)(((uint64_t)k * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

/* -------------------------------------------------------------------- names ---- */

static bool
s_names_find(const s_names_t *t, const uint8_t *key, uint32_t *num)
{
    if (t->icap == 0)
        return false;
    size_t i = s_hash(key, t->klen) & (t->icap - 1);
    while (t->index[i]) {
        uint32_t n = t->index[i] - 1;
        if (memcmp(t->keys + (size_t)n * t->klen, key, t->klen) == 0) {
            *num = n;
            return true;
        }
        i = (i + 1) & (t->icap - 1);
    }
    return false;
}

static sos_rc
s_names_intern(s_names_t *t, const uint8_t *key, uint32_t *num)
{
    if (s_names_find(t, key, num))
        return SOS_OK;
    if (t->n >= UINT32_MAX - 1)
        return SOS_ERR_FULL;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        uint8_t *keys = realloc(t->keys, cap * t->klen);
        if (!keys)
            return SOS_ERR_NOMEM;
        t->keys = keys;
        t->cap = cap;
    }
    if ((t->n + 1) * 4 > t->icap * 3) {
        size_t icap = t->icap ? t->icap * 2 : 128;
        uint32_t *index = calloc(icap, sizeof *index);
        if (!index)
            return SOS_ERR_NOMEM;
        for (size_t n = 0; n < t->n; n++) {
            size_t i = s_hash(t->keys + n * t->klen, t->klen) & (icap - 1);
            while (index[i])
                i = (i + 1) & (icap - 1);
            index[i] = (uint32_t)n + 1;
        }
        free(t->index);
        t->index = index;
        t->icap = icap;
    }
    memcpy(t->keys + t->n * t->klen, key, t->klen);
    size_t i = s_hash(key, t->klen) & (t->icap - 1);
    while (t->index[i])
        i = (i + 1) & (t->icap - 1);
    t->index[i] = (uint32_t)t->n + 1;
    *num = (uint32_t)t->n++;
    return SOS_OK;
}

static const uint8_t *
s_name(const s_names_t *t, uint32_t num)
{
    return t->keys + (size_t)num * t->klen;
}

/* ------------------------------------------------------------------- blobs ---- */

static s_blob_t *
s_blob_find(const sos_store_pool_t *pool, const uint8_t *bytes, size_t len, uint64_t h)
{
    if (!pool->nbuckets)
        return NULL;
    for (s_blob_t *b = pool->buckets[h & (pool->nbuckets - 1)]; b; b = b->next)
        if (b->hash == h && b->len == len && memcmp(b->bytes, bytes, len) == 0)
            return b;
    return NULL;
}

bool
sos_store_pool_holds(const sos_store_pool_t *pool, const uint8_t *bytes, size_t len)
{
    assert(pool);
    return bytes && s_blob_find(pool, bytes, len, s_hash(bytes, len)) != NULL;
}

static s_blob_t *
s_blob_intern(sos_store_pool_t *pool, const uint8_t *bytes, size_t len)
{
    if (pool->nblobs + 1 > pool->nbuckets) {
        size_t nb = pool->nbuckets ? pool->nbuckets * 2 : 1024;
        s_blob_t **buckets = calloc(nb, sizeof *buckets);
        if (!buckets)
            return NULL;
        for (size_t i = 0; i < pool->nbuckets; i++) {
            s_blob_t *b = pool->buckets[i];
            while (b) {
                s_blob_t *next = b->next;
                b->next = buckets[b->hash & (nb - 1)];
                buckets[b->hash & (nb - 1)] = b;
                b = next;
            }
        }
        free(pool->buckets);
        pool->buckets = buckets;
        pool->nbuckets = nb;
    }
    uint64_t h = s_hash(bytes, len);
    s_blob_t **head = &pool->buckets[h & (pool->nbuckets - 1)];
    s_blob_t *b = s_blob_find(pool, bytes, len, h);
    if (b) {
        b->refs++;
        return b;
    }
    b = malloc(sizeof *b + len);
    if (!b)
        return NULL;
    b->parsed = NULL;
    b->hash = h;
    b->refs = 1;
    b->len = (uint32_t)len;
    memcpy(b->bytes, bytes, len);
    b->next = *head;
    *head = b;
    pool->nblobs++;
    pool->blob_bytes += len;
    return b;
}

static void
s_blob_release(sos_store_pool_t *pool, s_blob_t *b)
{
    if (!b || --b->refs > 0)
        return;
    s_blob_t **p = &pool->buckets[b->hash & (pool->nbuckets - 1)];
    while (*p != b)
        p = &(*p)->next;
    *p = b->next;
    pool->nblobs--;
    pool->blob_bytes -= b->len;
    if (b->parsed)
        pool->nparsed--;
    free(b->parsed);
    free(b);
}

/*  The parse of a stored record, made once for every store that reads it (a directory of
    10,000 reads each of the same 10,000 records at every merge and every DELTA), or NULL
    if the bytes do not parse or memory ran out. Owned by the blob. */
static const sos_record_t *
s_blob_parsed(sos_store_pool_t *pool, s_blob_t *b)
{
    if (!b->parsed) {
        sos_record_t *p = malloc(sizeof *p);
        if (!p)
            return NULL;
        if (sos_record_parse(p, b->bytes, b->len) != SOS_OK) {
            free(p);
            return NULL;
        }
        b->parsed = p;
        b->version = p->version;
        b->kind = p->kind;
        pool->nparsed++;
    }
    return b->parsed;
}

/*  Parse a stored record into rec: a copy of the kept parse. */
static sos_rc
s_blob_parse(sos_store_pool_t *pool, s_blob_t *b, sos_record_t *rec)
{
    const sos_record_t *p = s_blob_parsed(pool, b);
    if (!p)
        return sos_record_parse(rec, b->bytes, b->len);
    /*  The fields, then the wire form's used bytes only. */
    memcpy(rec, p, offsetof(sos_record_t, wire));
    memcpy(rec->wire, p->wire, p->wire_len);
    rec->wire_len = p->wire_len;
    return SOS_OK;
}

/* --------------------------------------------------------------------- pool ---- */

sos_store_pool_t *
sos_store_pool_new(void)
{
    sos_store_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->ids.klen = SOS_NODEID_BYTES;
    pool->rooms.klen = SOS_ROOMHASH_LEN;
    return pool;
}

void
sos_store_pool_destroy(sos_store_pool_t **self_p)
{
    assert(self_p);
    sos_store_pool_t *pool = *self_p;
    if (!pool)
        return;
    for (size_t i = 0; i < pool->nbuckets; i++) {
        s_blob_t *b = pool->buckets[i];
        while (b) {
            s_blob_t *next = b->next;
            free(b->parsed);
            free(b);
            b = next;
        }
    }
    free(pool->buckets);
    free(pool->ids.keys);
    free(pool->ids.index);
    free(pool->order);
    free(pool->rank);
    free(pool->rooms.keys);
    free(pool->rooms.index);
    free(pool);
    *self_p = NULL;
}

void
sos_store_pool_stats(const sos_store_pool_t *pool, uint64_t *records, uint64_t *record_bytes,
                     uint64_t *memory)
{
    assert(pool);
    if (records)
        *records = pool->nblobs;
    if (record_bytes)
        *record_bytes = pool->blob_bytes;
    if (memory)
        *memory = pool->blob_bytes + pool->nblobs * sizeof(s_blob_t) +
                  pool->nbuckets * sizeof(s_blob_t *) + pool->ids.cap * pool->ids.klen +
                  pool->ids.icap * 4 + pool->rooms.cap * pool->rooms.klen + pool->rooms.icap * 4 +
                  pool->cap_ranked * 2 * sizeof(uint32_t) + pool->nparsed * sizeof(sos_record_t);
}

/* --------------------------------------------------------------------- maps ---- */

static void *
s_map_at(const s_map_t *m, size_t slot)
{
    return m->vals + slot * m->vsize;
}

/*  The slot holding num, or SIZE_MAX. */
static size_t
s_map_find(const s_map_t *m, uint32_t num)
{
    if (m->cap == 0)
        return SIZE_MAX;
    size_t i = s_hash32(num, m->cap);
    while (m->keys[i]) {
        if (m->keys[i] == num + 1)
            return i;
        i = (i + 1) & (m->cap - 1);
    }
    return SIZE_MAX;
}

static sos_rc
s_map_grow(s_map_t *m)
{
    if ((m->n + 1) * 4 <= m->cap * 3)
        return SOS_OK;
    size_t cap = m->cap ? m->cap * 2 : 8;
    uint32_t *keys = calloc(cap, sizeof *keys);
    uint8_t *vals = malloc(cap * m->vsize);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return SOS_ERR_NOMEM;
    }
    for (size_t s = 0; s < m->cap; s++) {
        if (!m->keys[s])
            continue;
        size_t i = s_hash32(m->keys[s] - 1, cap);
        while (keys[i])
            i = (i + 1) & (cap - 1);
        keys[i] = m->keys[s];
        memcpy(vals + i * m->vsize, s_map_at(m, s), m->vsize);
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return SOS_OK;
}

static sos_rc
s_map_set(s_map_t *m, uint32_t num, const void *val)
{
    size_t slot = s_map_find(m, num);
    if (slot == SIZE_MAX) {
        sos_rc rc = s_map_grow(m);
        if (rc)
            return rc;
        slot = s_hash32(num, m->cap);
        while (m->keys[slot])
            slot = (slot + 1) & (m->cap - 1);
        m->keys[slot] = num + 1;
        m->n++;
    }
    memcpy(s_map_at(m, slot), val, m->vsize);
    return SOS_OK;
}

/*  Linear probing deletes by shifting back the entries that follow, so no marker is left. */
static void
s_map_del(s_map_t *m, uint32_t num)
{
    size_t hole = s_map_find(m, num);
    if (hole == SIZE_MAX)
        return;
    m->keys[hole] = 0;
    m->n--;
    size_t i = (hole + 1) & (m->cap - 1);
    while (m->keys[i]) {
        size_t home = s_hash32(m->keys[i] - 1, m->cap);
        /*  The entry at i may fill the hole if its home is not cyclically in (hole, i]. */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            m->keys[hole] = m->keys[i];
            memcpy(s_map_at(m, hole), s_map_at(m, i), m->vsize);
            m->keys[i] = 0;
            hole = i;
        }
        i = (i + 1) & (m->cap - 1);
    }
}

static void
s_map_free(s_map_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

/*  The value of num copied into val (zeroed if absent); true if present. */
static bool
s_get(struct _sos_mem_t *mem, s_table_t t, uint32_t num, void *val)
{
    size_t slot = s_map_find(&mem->maps[t], num);
    if (slot == SIZE_MAX) {
        memset(val, 0, s_vsize[t]);
        return false;
    }
    memcpy(val, s_map_at(&mem->maps[t], slot), s_vsize[t]);
    return true;
}

/*  The record a value holds (node and room tables), or NULL. */
static s_blob_t *
s_val_blob(s_table_t t, const void *val)
{
    if (t == T_NODE)
        return ((const s_node_t *)val)->worker;
    if (t == T_ROOM)
        return ((const s_room_t *)val)->rec;
    return NULL;
}

static bool
s_node_empty(const s_node_t *n)
{
    return !n->worker && n->n_rooms == 0 && !n->has_tomb;
}

/*  Set (val) or delete (val NULL) num in table t, in the write transaction, with an undo
    entry. The new value's record gains a reference; the old one's moves to the undo entry. */
static sos_rc
s_write(sos_txn_t *txn, s_table_t t, uint32_t num, const void *val)
{
    struct _sos_mem_t *mem = txn->store->mem;
    if (mem->n_undo == mem->cap_undo) {
        size_t cap = mem->cap_undo ? mem->cap_undo * 2 : 16;
        s_undo_t *undo = realloc(mem->undo, cap * sizeof *undo);
        if (!undo)
            return SOS_ERR_NOMEM;
        mem->undo = undo;
        mem->cap_undo = cap;
    }
    s_undo_t *u = &mem->undo[mem->n_undo];
    memset(u, 0, sizeof *u);
    u->table = (uint8_t)t;
    u->key = num;
    u->had = s_get(mem, t, num, u->old);
    if (!val && !u->had)
        return SOS_OK;
    txn->op_wrote = true;
    if (val) {
        sos_rc rc = s_map_set(&mem->maps[t], num, val);
        if (rc)
            return rc;
        s_blob_t *b = s_val_blob(t, val);
        if (b)
            b->refs++;
    } else
        s_map_del(&mem->maps[t], num);
    if (t == T_NODE) {
        bool was = u->had && ((s_node_t *)u->old)->worker;
        bool is = val && ((const s_node_t *)val)->worker;
        mem->n_workers += (uint64_t)is - (uint64_t)was;
    }
    mem->n_undo++;
    return SOS_OK;
}

/*  Write a node entry, or delete it once nothing keeps it. */
static sos_rc
s_node_write(sos_txn_t *txn, uint32_t num, const s_node_t *n)
{
    return s_write(txn, T_NODE, num, s_node_empty(n) ? NULL : n);
}

/* ------------------------------------------------------------- lifecycle ---- */

sos_rc
sos_store_open_memory(sos_store_t **self_p, sos_store_pool_t *pool)
{
    assert(self_p);
    *self_p = NULL;
    if (!pool)
        return SOS_ERR_INVALID;
    sos_store_t *self = calloc(1, sizeof *self);
    struct _sos_mem_t *mem = calloc(1, sizeof *mem);
    if (!self || !mem) {
        free(self);
        free(mem);
        return SOS_ERR_NOMEM;
    }
    mem->pool = pool;
    for (int t = 0; t < T_COUNT; t++)
        mem->maps[t].vsize = s_vsize[t];
    self->mem = mem;
    self->lock_fd = -1;
    *self_p = self;
    return SOS_OK;
}

void
sos_mem_destroy(sos_store_t *store)
{
    struct _sos_mem_t *mem = store->mem;
    for (int t = 0; t < T_COUNT; t++) {
        s_map_t *m = &mem->maps[t];
        for (size_t s = 0; s < m->cap; s++)
            if (m->keys[s])
                s_blob_release(mem->pool, s_val_blob((s_table_t)t, s_map_at(m, s)));
        s_map_free(m);
    }
    free(mem->meta_names);
    free(mem->undo);
    free(mem);
    free(store);
}

sos_rc
sos_mem_usage(sos_store_t *store, uint64_t *map_size, uint64_t *used)
{
    struct _sos_mem_t *mem = store->mem;
    uint64_t n = sizeof *store + sizeof *mem + mem->cap_meta * S_META_NAME +
                 mem->cap_undo * sizeof(s_undo_t);
    for (int t = 0; t < T_COUNT; t++)
        n += mem->maps[t].cap * (sizeof(uint32_t) + mem->maps[t].vsize);
    if (map_size)
        *map_size = 0;
    if (used)
        *used = n;
    return SOS_OK;
}

/* ----------------------------------------------------------- transactions ---- */

sos_rc
sos_mem_txn_begin(sos_store_t *store, bool write, sos_txn_t **txn_p)
{
    if (write && atomic_exchange(&store->writing, true))
        return SOS_ERR_INVALID;
    sos_txn_t *txn = calloc(1, sizeof *txn);
    if (!txn) {
        if (write)
            atomic_store(&store->writing, false);
        return SOS_ERR_NOMEM;
    }
    txn->store = store;
    txn->write = write;
    atomic_fetch_add(&store->n_txns, 1);
    *txn_p = txn;
    return SOS_OK;
}

static void
s_txn_end(sos_txn_t *txn)
{
    if (txn->write)
        atomic_store(&txn->store->writing, false);
    atomic_fetch_sub(&txn->store->n_txns, 1);
    free(txn);
}

static void
s_rollback(struct _sos_mem_t *mem)
{
    while (mem->n_undo > 0) {
        s_undo_t *u = &mem->undo[--mem->n_undo];
        s_table_t t = (s_table_t)u->table;
        uint8_t cur[S_VAL_MAX];
        bool has = s_get(mem, t, u->key, cur);
        if (has)
            s_blob_release(mem->pool, s_val_blob(t, cur));
        if (t == T_NODE) {
            bool was = has && ((s_node_t *)cur)->worker;
            bool is = u->had && ((s_node_t *)u->old)->worker;
            mem->n_workers += (uint64_t)is - (uint64_t)was;
        }
        /*  The map held this key (or as many keys) when the entry was logged, and maps
            never shrink, so putting it back needs no memory. */
        if (u->had) {
            sos_rc rc = s_map_set(&mem->maps[t], u->key, u->old);
            assert(rc == SOS_OK);
            (void)rc;
        } else
            s_map_del(&mem->maps[t], u->key);
    }
}

static void
s_forget_undo(struct _sos_mem_t *mem)
{
    for (size_t i = 0; i < mem->n_undo; i++)
        if (mem->undo[i].had)
            s_blob_release(mem->pool, s_val_blob((s_table_t)mem->undo[i].table, mem->undo[i].old));
    mem->n_undo = 0;
}

sos_rc
sos_mem_txn_commit(sos_txn_t *txn)
{
    struct _sos_mem_t *mem = txn->store->mem;
    sos_rc rc = txn->err;
    if (txn->write) {
        if (rc)
            s_rollback(mem);
        else
            s_forget_undo(mem);
    }
    s_txn_end(txn);
    return rc;
}

void
sos_mem_txn_abort(sos_txn_t *txn)
{
    if (txn->write)
        s_rollback(txn->store->mem);
    s_txn_end(txn);
}

/* -------------------------------------------------------------------- meta ---- */

static bool
s_meta_find(struct _sos_mem_t *mem, const char *key, size_t klen, uint32_t *num)
{
    for (size_t i = 0; i < mem->n_meta; i++)
        if (strlen(mem->meta_names[i]) == klen && memcmp(mem->meta_names[i], key, klen) == 0) {
            *num = (uint32_t)i;
            return true;
        }
    return false;
}

sos_rc
sos_mem_meta_get_u64(sos_txn_t *txn, const char *key, size_t klen, uint64_t *value)
{
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    uint64_t v;
    if (!s_meta_find(mem, key, klen, &num) || !s_get(mem, T_META, num, &v))
        return SOS_ERR_NOT_FOUND;
    if (value)
        *value = v;
    return SOS_OK;
}

/*  Inside an operation: no op_begin / op_end of its own. */
static sos_rc
s_meta_set(sos_txn_t *txn, const char *key, size_t klen, uint64_t value)
{
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    if (!s_meta_find(mem, key, klen, &num)) {
        if (klen >= S_META_NAME)
            return SOS_ERR_INVALID;
        if (mem->n_meta == mem->cap_meta) {
            size_t cap = mem->cap_meta ? mem->cap_meta * 2 : 4;
            char(*names)[S_META_NAME] = realloc(mem->meta_names, cap * S_META_NAME);
            if (!names)
                return SOS_ERR_NOMEM;
            mem->meta_names = names;
            mem->cap_meta = cap;
        }
        memcpy(mem->meta_names[mem->n_meta], key, klen);
        mem->meta_names[mem->n_meta][klen] = '\0';
        num = (uint32_t)mem->n_meta++;
    }
    return s_write(txn, T_META, num, &value);
}

sos_rc
sos_mem_meta_put_u64(sos_txn_t *txn, const char *key, size_t klen, uint64_t value)
{
    return s_meta_set(txn, key, klen, value);
}

/* --------------------------------------------------------------- records ---- */

static bool
s_id_num(struct _sos_mem_t *mem, const uint8_t *id, uint32_t *num)
{
    return s_names_find(&mem->pool->ids, id, num);
}

static bool
s_room_num(struct _sos_mem_t *mem, const char *room_hash, uint32_t *num)
{
    return s_names_find(&mem->pool->rooms, (const uint8_t *)room_hash, num);
}

static sos_rc
s_put_worker(sos_txn_t *txn, const sos_record_t *rec, s_blob_t *blob)
{
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    sos_rc rc = s_names_intern(&mem->pool->ids, rec->origin, &num);
    if (rc)
        return rc;
    s_node_t n;
    s_get(mem, T_NODE, num, &n);
    n.worker = blob;
    if (rec->version > n.max_version)
        n.max_version = rec->version;
    return s_node_write(txn, num, &n);
}

static sos_rc
s_put_room(sos_txn_t *txn, const sos_record_t *rec, s_blob_t *blob)
{
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t onum, rnum;
    sos_rc rc = s_names_intern(&mem->pool->ids, rec->origin, &onum);
    if (rc == SOS_OK)
        rc = s_names_intern(&mem->pool->rooms, (const uint8_t *)rec->room_hash, &rnum);
    if (rc)
        return rc;
    s_room_t old;
    bool had = s_get(mem, T_ROOM, rnum, &old);
    bool moved = had && old.origin != onum;
    if (moved) {
        s_node_t o;
        s_get(mem, T_NODE, old.origin, &o);
        if (o.n_rooms > 0)
            o.n_rooms--;
        rc = s_node_write(txn, old.origin, &o);
        if (rc)
            return rc;
    }
    s_room_t r = {blob, rec->version, rec->expires_at, onum};
    rc = s_write(txn, T_ROOM, rnum, &r);
    if (rc)
        return rc;
    s_node_t n;
    s_get(mem, T_NODE, onum, &n);
    if (!had || moved)
        n.n_rooms++;
    if (rec->version > n.max_version)
        n.max_version = rec->version;
    return s_node_write(txn, onum, &n);
}

sos_rc
sos_mem_dir_put(sos_txn_t *txn, const sos_record_t *rec)
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    rc = sos_store_check_record(rec);
    if (rc)
        return sos_txn_op_end(txn, rc);
    sos_store_pool_t *pool = txn->store->mem->pool;
    s_blob_t *blob = s_blob_intern(pool, rec->wire, rec->wire_len);
    if (!blob)
        return sos_txn_op_end(txn, SOS_ERR_NOMEM);
    rc = rec->kind == SOS_REC_WORKER ? s_put_worker(txn, rec, blob) : s_put_room(txn, rec, blob);
    s_blob_release(pool, blob);
    return sos_txn_op_end(txn, rc);
}

static sos_rc
s_parse_worker(sos_store_pool_t *pool, s_blob_t *b, const uint8_t *id, sos_record_t *rec)
{
    if (s_blob_parse(pool, b, rec) != SOS_OK || rec->kind != SOS_REC_WORKER ||
        memcmp(rec->origin, id, SOS_NODEID_BYTES) != 0)
        return SOS_ERR_CORRUPT;
    return SOS_OK;
}

sos_rc
sos_mem_dir_get_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], sos_record_t *rec,
                       sos_worker_local_t *local)
{
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_node_t n;
    if (!s_id_num(mem, id, &num) || !s_get(mem, T_NODE, num, &n) || !n.worker)
        return SOS_ERR_NOT_FOUND;
    if (local)
        s_get(mem, T_LOCAL, num, local);
    return rec ? s_parse_worker(mem->pool, n.worker, id, rec) : SOS_OK;
}

sos_rc
sos_mem_dir_put_worker_local(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES],
                             const sos_worker_local_t *local)
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!id || !local)
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_node_t n;
    if (!s_id_num(mem, id, &num) || !s_get(mem, T_NODE, num, &n) || !n.worker)
        return sos_txn_op_end(txn, SOS_ERR_NOT_FOUND);
    sos_worker_local_t v;
    memset(&v, 0, sizeof v); /* padding too: values are compared and copied as bytes */
    v.last_seen = local->last_seen;
    v.last_ok = local->last_ok;
    v.fail_count = local->fail_count;
    v.is_genesis = local->is_genesis;
    return sos_txn_op_end(txn, s_write(txn, T_LOCAL, num, &v));
}

sos_rc
sos_mem_dir_get_room(sos_txn_t *txn, const char *room_hash, sos_record_t *rec)
{
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_room_t r;
    if (!s_room_num(mem, room_hash, &num) || !s_get(mem, T_ROOM, num, &r))
        return SOS_ERR_NOT_FOUND;
    sos_record_t tmp;
    sos_record_t *out = rec ? rec : &tmp;
    if (s_blob_parse(mem->pool, r.rec, out) != SOS_OK || out->kind != SOS_REC_ROOM ||
        memcmp(out->room_hash, room_hash, SOS_ROOMHASH_LEN) != 0)
        return SOS_ERR_CORRUPT;
    return SOS_OK;
}

sos_rc
sos_mem_dir_room_local_get(sos_txn_t *txn, const char *room_hash, sos_room_local_t *local)
{
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_rlocal_t v;
    if (!s_room_num(mem, room_hash, &num) || !s_get(mem, T_RLOCAL, num, &v))
        return SOS_ERR_NOT_FOUND;
    if (local) {
        local->first_seen = v.first_seen;
        local->contested = v.contested;
        local->pooled = v.pooled;
    }
    return SOS_OK;
}

static sos_rc
s_pooled_add(sos_txn_t *txn, int delta)
{
    uint64_t n = 0;
    sos_rc rc = sos_mem_meta_get_u64(txn, S_POOLED, strlen(S_POOLED), &n);
    if (rc && rc != SOS_ERR_NOT_FOUND)
        return rc;
    if (delta < 0 && n == 0)
        return SOS_OK;
    return s_meta_set(txn, S_POOLED, strlen(S_POOLED), delta < 0 ? n - 1 : n + 1);
}

sos_rc
sos_mem_dir_room_local_put(sos_txn_t *txn, const char *room_hash, const sos_room_local_t *local)
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!local || !sos_store_room_hash_ok(room_hash))
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    rc = s_names_intern(&mem->pool->rooms, (const uint8_t *)room_hash, &num);
    if (rc)
        return sos_txn_op_end(txn, rc);
    s_rlocal_t old;
    s_get(mem, T_RLOCAL, num, &old);
    if ((bool)old.pooled != local->pooled)
        rc = s_pooled_add(txn, local->pooled ? 1 : -1);
    s_rlocal_t v = {local->first_seen, local->contested, local->pooled};
    if (rc == SOS_OK)
        rc = s_write(txn, T_RLOCAL, num, &v);
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_mem_dir_del_worker(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES])
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!id)
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_node_t n;
    if (!s_id_num(mem, id, &num) || !s_get(mem, T_NODE, num, &n) || !n.worker)
        return sos_txn_op_end(txn, SOS_ERR_NOT_FOUND);
    rc = s_write(txn, T_LOCAL, num, NULL);
    n.worker = NULL;
    if (rc == SOS_OK)
        rc = s_node_write(txn, num, &n);
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_mem_dir_del_room(sos_txn_t *txn, const char *room_hash)
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!sos_store_room_hash_ok(room_hash))
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_room_t r;
    if (!s_room_num(mem, room_hash, &num) || !s_get(mem, T_ROOM, num, &r))
        return sos_txn_op_end(txn, SOS_ERR_NOT_FOUND);
    rc = s_write(txn, T_ROOM, num, NULL);
    s_rlocal_t l;
    if (rc == SOS_OK && s_get(mem, T_RLOCAL, num, &l)) {
        if (l.pooled)
            rc = s_pooled_add(txn, -1);
        if (rc == SOS_OK)
            rc = s_write(txn, T_RLOCAL, num, NULL);
    }
    if (rc == SOS_OK) {
        s_node_t n;
        s_get(mem, T_NODE, r.origin, &n);
        if (n.n_rooms > 0)
            n.n_rooms--;
        rc = s_node_write(txn, r.origin, &n);
    }
    return sos_txn_op_end(txn, rc);
}

/* -------------------------------------------------------------- iterators ---- */

typedef struct {
    uint32_t num;
    uint64_t a; /* a sort key before the name: version or expires_at */
    uint8_t kind;
} s_item_t;

typedef struct {
    const s_names_t *names;
} s_sort_ctx_t;

static int
s_cmp_items(const void *x, const void *y, void *arg)
{
    const s_item_t *a = x, *b = y;
    const s_sort_ctx_t *ctx = arg;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return memcmp(s_name(ctx->names, a->num), s_name(ctx->names, b->num), ctx->names->klen);
}

/*  Copy table t's keys (with a sort key from fn) into a new array, sorted. */
typedef bool(s_pick_fn)(const void *val, void *arg, s_item_t *item);

static sos_rc
s_collect(struct _sos_mem_t *mem, s_table_t t, const s_names_t *names, s_pick_fn *pick, void *arg,
          s_item_t **items_p, size_t *n_p)
{
    s_map_t *m = &mem->maps[t];
    *items_p = NULL;
    *n_p = 0;
    if (m->n == 0)
        return SOS_OK;
    s_item_t *items = malloc(m->n * sizeof *items);
    if (!items)
        return SOS_ERR_NOMEM;
    size_t n = 0;
    for (size_t s = 0; s < m->cap; s++) {
        if (!m->keys[s])
            continue;
        s_item_t it = {m->keys[s] - 1, 0, 0};
        if (!pick || pick(s_map_at(m, s), arg, &it))
            items[n++] = it;
    }
    s_sort_ctx_t ctx = {names};
    qsort_r(items, n, sizeof *items, s_cmp_items, &ctx);
    *items_p = items;
    *n_p = n;
    return SOS_OK;
}

static int
s_cmp_ids(const void *x, const void *y, void *arg)
{
    const s_names_t *ids = arg;
    return memcmp(s_name(ids, *(const uint32_t *)x), s_name(ids, *(const uint32_t *)y), ids->klen);
}

/*  The pool's ids ranked in byte order, remade (one sort of all ids) only when ids were
    interned since the last time. */
static sos_rc
s_rank_ids(sos_store_pool_t *pool)
{
    size_t n = pool->ids.n;
    if (pool->n_ranked == n)
        return SOS_OK;
    if (n > pool->cap_ranked) {
        size_t cap = pool->ids.cap;
        uint32_t *order = realloc(pool->order, cap * sizeof *order);
        if (!order)
            return SOS_ERR_NOMEM;
        pool->order = order;
        uint32_t *rank = realloc(pool->rank, cap * sizeof *rank);
        if (!rank)
            return SOS_ERR_NOMEM;
        pool->rank = rank;
        pool->cap_ranked = cap;
    }
    for (size_t i = 0; i < n; i++)
        pool->order[i] = (uint32_t)i;
    qsort_r(pool->order, n, sizeof *pool->order, s_cmp_ids, &pool->ids);
    for (size_t r = 0; r < n; r++)
        pool->rank[pool->order[r]] = (uint32_t)r;
    pool->n_ranked = n;
    return SOS_OK;
}

/*  s_collect for a table keyed by node id, in id order, without a sort: the entries are
    placed by their rank among all the pool's ids (a directory holds most of them), so
    that a digest of 10,000 origins costs a pass over two arrays rather than 10,000 log
    10,000 comparisons of 32-byte keys. Same result as s_collect with no sort key. */
static sos_rc
s_collect_ids(struct _sos_mem_t *mem, s_table_t t, s_pick_fn *pick, void *arg, s_item_t **items_p,
              size_t *n_p)
{
    s_map_t *m = &mem->maps[t];
    sos_store_pool_t *pool = mem->pool;
    *items_p = NULL;
    *n_p = 0;
    if (m->n == 0)
        return SOS_OK;
    sos_rc rc = s_rank_ids(pool);
    if (rc)
        return rc;
    uint32_t *by_rank = calloc(pool->n_ranked, sizeof *by_rank); /* id number + 1, 0: none */
    s_item_t *items = malloc(m->n * sizeof *items);
    if (!by_rank || !items) {
        free(by_rank);
        free(items);
        return SOS_ERR_NOMEM;
    }
    for (size_t s = 0; s < m->cap; s++) {
        if (!m->keys[s])
            continue;
        s_item_t it = {m->keys[s] - 1, 0, 0};
        if (!pick || pick(s_map_at(m, s), arg, &it))
            by_rank[pool->rank[it.num]] = it.num + 1;
    }
    size_t n = 0;
    for (size_t r = 0; r < pool->n_ranked; r++)
        if (by_rank[r])
            items[n++] = (s_item_t){by_rank[r] - 1, 0, 0};
    free(by_rank);
    *items_p = items;
    *n_p = n;
    return SOS_OK;
}

static bool
s_pick_worker(const void *val, void *arg, s_item_t *it)
{
    (void)arg;
    (void)it;
    return ((const s_node_t *)val)->worker != NULL;
}

sos_rc
sos_mem_dir_foreach_worker(sos_txn_t *txn, sos_dir_worker_fn *fn, void *arg)
{
    struct _sos_mem_t *mem = txn->store->mem;
    s_item_t *items;
    size_t n;
    sos_rc rc = s_collect_ids(mem, T_NODE, s_pick_worker, NULL, &items, &n);
    sos_record_t rec;
    sos_worker_local_t local;
    for (size_t i = 0; rc == SOS_OK && i < n; i++) {
        s_node_t nd;
        s_get(mem, T_NODE, items[i].num, &nd);
        const uint8_t *id = s_name(&mem->pool->ids, items[i].num);
        /*  The pool's parse itself, lent for the call (a directory of 10,000 is listed by
            every node when the simulator checks that they agree); a copy if none is kept. */
        const sos_record_t *p = s_blob_parsed(mem->pool, nd.worker);
        if (p && (p->kind != SOS_REC_WORKER || memcmp(p->origin, id, SOS_NODEID_BYTES) != 0))
            rc = SOS_ERR_CORRUPT;
        else if (!p)
            rc = s_parse_worker(mem->pool, nd.worker, id, &rec);
        if (rc)
            break;
        s_get(mem, T_LOCAL, items[i].num, &local);
        if (fn(arg, p ? p : &rec, &local) != 0)
            break;
    }
    free(items);
    return rc;
}

sos_rc
sos_mem_dir_foreach_room(sos_txn_t *txn, const char *after_hash, sos_dir_room_fn *fn, void *arg)
{
    size_t after_len = 0;
    if (after_hash) {
        after_len = strnlen(after_hash, SOS_ROOMHASH_LEN + 1);
        if (after_len > SOS_ROOMHASH_LEN)
            return SOS_ERR_INVALID;
    }
    struct _sos_mem_t *mem = txn->store->mem;
    s_item_t *items;
    size_t n;
    sos_rc rc = s_collect(mem, T_ROOM, &mem->pool->rooms, NULL, NULL, &items, &n);
    sos_record_t rec;
    char hash[SOS_ROOMHASH_LEN + 1];
    for (size_t i = 0; rc == SOS_OK && i < n; i++) {
        memcpy(hash, s_name(&mem->pool->rooms, items[i].num), SOS_ROOMHASH_LEN);
        hash[SOS_ROOMHASH_LEN] = '\0';
        /*  As LMDB orders keys: bytes, then the shorter first; rooms strictly after. */
        if (after_len) {
            int cmp = memcmp(hash, after_hash, after_len);
            if (cmp < 0 || (cmp == 0 && after_len == SOS_ROOMHASH_LEN))
                continue;
        }
        rc = sos_mem_dir_get_room(txn, hash, &rec);
        if (rc)
            break;
        if (fn(arg, &rec) != 0)
            break;
    }
    free(items);
    return rc;
}

/*  An origin's records: its worker and the rooms whose origin it is. */
typedef struct {
    uint32_t origin;
    uint64_t since;
} s_since_t;

static bool
s_pick_since(const void *val, void *arg, s_item_t *it)
{
    const s_room_t *r = val;
    const s_since_t *s = arg;
    it->a = r->version;
    it->kind = SOS_REC_ROOM;
    return r->origin == s->origin && r->version > s->since;
}

sos_rc
sos_mem_dir_foreach_since(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], uint64_t since,
                          sos_dir_wire_fn *fn, void *arg)
{
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_node_t nd;
    if (since == UINT64_MAX || !s_id_num(mem, origin, &num) || !s_get(mem, T_NODE, num, &nd))
        return SOS_OK;
    s_item_t *items = NULL;
    size_t n = 0;
    s_since_t s = {num, since};
    sos_rc rc = nd.n_rooms ? s_collect(mem, T_ROOM, &mem->pool->rooms, s_pick_since, &s, &items, &n)
                           : SOS_OK;
    if (rc)
        return rc;
    /*  The worker's entry sorts before rooms of the same version (kind 1 before 2). */
    uint64_t wv = 0;
    if (nd.worker && nd.worker->parsed && nd.worker->kind == SOS_REC_WORKER)
        wv = nd.worker->version; /* put under this id from a record of this origin */
    else if (nd.worker) {
        const sos_record_t *p = s_blob_parsed(mem->pool, nd.worker);
        sos_record_t *tmp = p ? NULL : malloc(sizeof *tmp);
        if (!p && !tmp)
            rc = SOS_ERR_NOMEM;
        else if (!p)
            rc = s_parse_worker(mem->pool, nd.worker, origin, tmp);
        else if (p->kind != SOS_REC_WORKER || memcmp(p->origin, origin, SOS_NODEID_BYTES) != 0)
            rc = SOS_ERR_CORRUPT;
        wv = rc ? 0 : p ? p->version : tmp->version;
        free(tmp);
    }
    bool worker_due = rc == SOS_OK && nd.worker && wv > since;
    size_t i = 0;
    while (rc == SOS_OK && (worker_due || i < n)) {
        if (worker_due && (i == n || wv <= items[i].a)) {
            worker_due = false;
            if (fn(arg, nd.worker->bytes, nd.worker->len, wv) != 0)
                break;
            continue;
        }
        s_room_t r;
        s_get(mem, T_ROOM, items[i].num, &r);
        if (fn(arg, r.rec->bytes, r.rec->len, r.version) != 0)
            break;
        i++;
    }
    free(items);
    return rc;
}

static int
s_held_fn(void *arg, const uint8_t *wire, size_t len, uint64_t version)
{
    (void)wire;
    (void)len;
    uint64_t *max = arg;
    if (version > *max)
        *max = version;
    return 0;
}

sos_rc
sos_mem_dir_held_max(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], uint64_t *version)
{
    *version = 0;
    return sos_mem_dir_foreach_since(txn, origin, 0, s_held_fn, version);
}

static void
s_origin_export(sos_origin_t *out, const uint8_t *id, const s_node_t *n)
{
    memcpy(out->origin, id, SOS_NODEID_BYTES);
    out->max_version = n->max_version;
    out->n_rooms = n->n_rooms;
    out->has_worker = n->worker != NULL;
}

sos_rc
sos_mem_dir_foreach_origin(sos_txn_t *txn, sos_dir_origin_fn *fn, void *arg)
{
    struct _sos_mem_t *mem = txn->store->mem;
    s_item_t *items;
    size_t n;
    sos_rc rc = s_collect_ids(mem, T_NODE, NULL, NULL, &items, &n);
    for (size_t i = 0; rc == SOS_OK && i < n; i++) {
        s_node_t nd;
        sos_origin_t out;
        s_get(mem, T_NODE, items[i].num, &nd);
        s_origin_export(&out, s_name(&mem->pool->ids, items[i].num), &nd);
        if (fn(arg, &out) != 0)
            break;
    }
    free(items);
    return rc;
}

sos_rc
sos_mem_dir_get_origin(sos_txn_t *txn, const uint8_t origin[SOS_NODEID_BYTES], sos_origin_t *out)
{
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_node_t nd;
    if (!s_id_num(mem, origin, &num) || !s_get(mem, T_NODE, num, &nd))
        return SOS_ERR_NOT_FOUND;
    if (out)
        s_origin_export(out, origin, &nd);
    return SOS_OK;
}

sos_rc
sos_mem_dir_counts(sos_txn_t *txn, uint64_t *workers, uint64_t *rooms, uint64_t *origins)
{
    struct _sos_mem_t *mem = txn->store->mem;
    if (workers)
        *workers = mem->n_workers;
    if (rooms)
        *rooms = mem->maps[T_ROOM].n;
    if (origins)
        *origins = mem->maps[T_NODE].n;
    return SOS_OK;
}

/* ------------------------------------------------------------- tombstones ---- */

sos_rc
sos_mem_dir_tombstone_put(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t version,
                          uint64_t expires_at)
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!id)
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    rc = s_names_intern(&mem->pool->ids, id, &num);
    s_tomb_t t = {version, expires_at};
    if (rc == SOS_OK)
        rc = s_write(txn, T_TOMB, num, &t);
    if (rc == SOS_OK) {
        s_node_t n;
        s_get(mem, T_NODE, num, &n);
        n.has_tomb = 1;
        if (version > n.max_version)
            n.max_version = version;
        rc = s_node_write(txn, num, &n);
    }
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_mem_dir_tombstone_get(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES], uint64_t *version,
                          uint64_t *expires_at)
{
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_tomb_t t;
    if (!s_id_num(mem, id, &num) || !s_get(mem, T_TOMB, num, &t))
        return SOS_ERR_NOT_FOUND;
    if (version)
        *version = t.version;
    if (expires_at)
        *expires_at = t.expires_at;
    return SOS_OK;
}

static sos_rc
s_tomb_remove(sos_txn_t *txn, uint32_t num)
{
    sos_rc rc = s_write(txn, T_TOMB, num, NULL);
    if (rc)
        return rc;
    s_node_t n;
    s_get(txn->store->mem, T_NODE, num, &n);
    n.has_tomb = 0;
    return s_node_write(txn, num, &n);
}

sos_rc
sos_mem_dir_tombstone_del(sos_txn_t *txn, const uint8_t id[SOS_NODEID_BYTES])
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!id)
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    struct _sos_mem_t *mem = txn->store->mem;
    uint32_t num;
    s_tomb_t t;
    if (!s_id_num(mem, id, &num) || !s_get(mem, T_TOMB, num, &t))
        return sos_txn_op_end(txn, SOS_ERR_NOT_FOUND);
    return sos_txn_op_end(txn, s_tomb_remove(txn, num));
}

static bool
s_pick_expired_tomb(const void *val, void *arg, s_item_t *it)
{
    (void)it;
    return ((const s_tomb_t *)val)->expires_at <= *(const uint64_t *)arg;
}

sos_rc
sos_mem_dir_tombstone_sweep(sos_txn_t *txn, uint64_t now_ms, uint32_t *removed)
{
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    struct _sos_mem_t *mem = txn->store->mem;
    s_item_t *items;
    size_t n;
    uint32_t done = 0;
    rc = s_collect(mem, T_TOMB, &mem->pool->ids, s_pick_expired_tomb, &now_ms, &items, &n);
    for (size_t i = 0; rc == SOS_OK && i < n; i++) {
        rc = s_tomb_remove(txn, items[i].num);
        if (rc == SOS_OK)
            done++;
    }
    free(items);
    if (removed)
        *removed = rc == SOS_OK ? done : 0;
    return sos_txn_op_end(txn, rc);
}

/* ----------------------------------------------------------------- expiry ---- */

static bool
s_pick_expired_room(const void *val, void *arg, s_item_t *it)
{
    const s_room_t *r = val;
    it->a = r->expires_at;
    return r->expires_at <= *(const uint64_t *)arg;
}

sos_rc
sos_mem_dir_foreach_expired(sos_txn_t *txn, uint64_t now_ms, sos_dir_expired_fn *fn, void *arg)
{
    struct _sos_mem_t *mem = txn->store->mem;
    s_item_t *items;
    size_t n;
    sos_rc rc = s_collect(mem, T_ROOM, &mem->pool->rooms, s_pick_expired_room, &now_ms, &items, &n);
    char hash[SOS_ROOMHASH_LEN + 1];
    for (size_t i = 0; rc == SOS_OK && i < n; i++) {
        memcpy(hash, s_name(&mem->pool->rooms, items[i].num), SOS_ROOMHASH_LEN);
        hash[SOS_ROOMHASH_LEN] = '\0';
        if (fn(arg, hash, items[i].a) != 0)
            break;
    }
    free(items);
    return rc;
}

sos_rc
sos_mem_dir_next_expiry(sos_txn_t *txn, uint64_t *expires_at)
{
    s_map_t *m = &txn->store->mem->maps[T_ROOM];
    bool any = false;
    uint64_t min = 0;
    for (size_t s = 0; s < m->cap; s++) {
        if (!m->keys[s])
            continue;
        const s_room_t *r = s_map_at(m, s);
        if (!any || r->expires_at < min)
            min = r->expires_at;
        any = true;
    }
    if (!any)
        return SOS_ERR_NOT_FOUND;
    if (expires_at)
        *expires_at = min;
    return SOS_OK;
}
