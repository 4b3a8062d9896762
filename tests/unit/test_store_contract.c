/*  test_store_contract.c: the store's contract (store/sos_store.h), run case by case against
    the LMDB store and the memory store, and a random sequence compared between the two. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_store.h"

/* ------------------------------------------------------------- backends ---- */

typedef struct {
    const char *name;
    char dir[96];
    sos_store_pool_t *pool;
    int n_opened;
} s_backend_t;

/*  A fresh, empty store of the backend. */
static sos_store_t *
s_open(s_backend_t *b)
{
    sos_store_t *store = NULL;
    if (b->pool) {
        CHECK_RC(sos_store_open_memory(&store, b->pool), SOS_OK);
        return store;
    }
    char dir[128];
    snprintf(dir, sizeof dir, "%s/s%d", b->dir, b->n_opened++);
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    return store;
}

/* -------------------------------------------------------------- records ---- */

static sos_identity_t s_ids[6];

static void
s_worker(sos_record_t *rec, int who, uint64_t version)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_WORKER;
    rec->version = version;
    rec->prev = version - 1;
    snprintf(rec->url, sizeof rec->url, "tcp://127.0.0.1:%u", (unsigned)(5000 + version));
    CHECK_RC(sos_record_sign(rec, &s_ids[who]), SOS_OK);
}

static void
s_room(sos_record_t *rec, int who, uint64_t version, const char *hash, uint64_t expires_at)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_ROOM;
    rec->version = version;
    rec->prev = version - 1;
    snprintf(rec->url, sizeof rec->url, "tcp://127.0.0.1:7000");
    snprintf(rec->room_hash, sizeof rec->room_hash, "%s", hash);
    rec->n_emojis = 1;
    snprintf(rec->emojis[0], sizeof rec->emojis[0], "x");
    snprintf(rec->description, sizeof rec->description, "room v%u", (unsigned)version);
    rec->created_at = 1;
    rec->expires_at = expires_at;
    CHECK_RC(sos_record_sign(rec, &s_ids[who]), SOS_OK);
}

/*  Run one operation in its own write transaction (the variable txn of the caller) and
    commit it. */
#define WRITE(store, call)                                                                         \
    do {                                                                                           \
        CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);                                        \
        if (txn) {                                                                                 \
            CHECK_RC(call, SOS_OK);                                                                \
            CHECK_RC(sos_txn_commit(&txn), SOS_OK);                                                \
        }                                                                                          \
    } while (0)

/* ----------------------------------------------------------------- dump ---- */

/*  Everything the contract lets a reader see, as text: two stores with the same dump are
    the same to every caller. */
typedef struct {
    char *buf;
    size_t len, cap;
    sos_txn_t *txn;
} s_dump_t;

static void s_add(s_dump_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void
s_add(s_dump_t *d, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (d->len + (size_t)n + 1 > d->cap) {
        d->cap = (d->len + (size_t)n + 1) * 2;
        d->buf = realloc(d->buf, d->cap);
    }
    memcpy(d->buf + d->len, line, (size_t)n + 1);
    d->len += (size_t)n;
}

static int
s_dump_origin(void *arg, const sos_origin_t *o)
{
    s_dump_t *d = arg;
    char hex[SOS_NODEID_HEX + 1];
    s_add(d, "origin %.8s max %llu rooms %u worker %d\n", sos_hex(hex, o->origin, 4),
          (unsigned long long)o->max_version, o->n_rooms, o->has_worker);
    return 0;
}

static int
s_dump_worker(void *arg, const sos_record_t *rec, const sos_worker_local_t *l)
{
    s_dump_t *d = arg;
    char hex[SOS_NODEID_HEX + 1];
    s_add(d, "worker %.8s v%llu %s seen %llu ok %llu fail %u gen %d\n",
          sos_hex(hex, rec->origin, 4), (unsigned long long)rec->version, rec->url,
          (unsigned long long)l->last_seen, (unsigned long long)l->last_ok, l->fail_count,
          l->is_genesis);
    return 0;
}

static int
s_dump_room(void *arg, const sos_record_t *rec)
{
    s_dump_t *d = arg;
    char hex[SOS_NODEID_HEX + 1];
    sos_room_local_t l = {0};
    sos_rc rc = sos_dir_room_local_get(d->txn, rec->room_hash, &l);
    s_add(d, "room %s %.8s v%llu exp %llu local %d %llu %d %d\n", rec->room_hash,
          sos_hex(hex, rec->origin, 4), (unsigned long long)rec->version,
          (unsigned long long)rec->expires_at, rc, (unsigned long long)l.first_seen, l.contested,
          l.pooled);
    return 0;
}

static int
s_dump_since(void *arg, const uint8_t *wire, size_t len, uint64_t version)
{
    s_dump_t *d = arg;
    uint8_t h[8];
    crypto_generichash(h, sizeof h, wire, len, NULL, 0);
    s_add(d, "  since v%llu len %zu %02x%02x%02x%02x\n", (unsigned long long)version, len, h[0],
          h[1], h[2], h[3]);
    return 0;
}

static int
s_dump_expired(void *arg, const char *room_hash, uint64_t expires_at)
{
    s_add(arg, "expired %s %llu\n", room_hash, (unsigned long long)expires_at);
    return 0;
}

/*  The dump of store (a new string, the caller frees it). */
static char *
s_dump(sos_store_t *store)
{
    s_dump_t d = {0};
    d.buf = calloc(1, 1);
    CHECK_RC(sos_txn_begin(store, false, &d.txn), SOS_OK);
    uint64_t w = 0, r = 0, o = 0, pooled = 0, v = 0;
    CHECK_RC(sos_dir_counts(d.txn, &w, &r, &o), SOS_OK);
    CHECK_RC(sos_dir_rooms_pooled(d.txn, &pooled), SOS_OK);
    s_add(&d, "counts %llu %llu %llu pooled %llu\n", (unsigned long long)w, (unsigned long long)r,
          (unsigned long long)o, (unsigned long long)pooled);
    sos_rc rc = sos_meta_get_u64(d.txn, "version", &v);
    s_add(&d, "meta version %d %llu\n", rc, (unsigned long long)v);
    CHECK_RC(sos_dir_foreach_origin(d.txn, s_dump_origin, &d), SOS_OK);
    CHECK_RC(sos_dir_foreach_worker(d.txn, s_dump_worker, &d), SOS_OK);
    CHECK_RC(sos_dir_foreach_room(d.txn, NULL, s_dump_room, &d), SOS_OK);
    for (int i = 0; i < 6; i++) {
        uint64_t held = 0, tv = 0, te = 0;
        sos_origin_t og;
        CHECK_RC(sos_dir_held_max(d.txn, s_ids[i].pk, &held), SOS_OK);
        rc = sos_dir_tombstone_get(d.txn, s_ids[i].pk, &tv, &te);
        sos_rc orc = sos_dir_get_origin(d.txn, s_ids[i].pk, &og);
        sos_rc wrc = sos_dir_get_worker(d.txn, s_ids[i].pk, NULL, NULL);
        s_add(&d, "id %d held %llu tomb %d %llu %llu origin %d worker %d\n", i,
              (unsigned long long)held, rc, (unsigned long long)tv, (unsigned long long)te, orc,
              wrc);
        CHECK_RC(sos_dir_foreach_since(d.txn, s_ids[i].pk, 0, s_dump_since, &d), SOS_OK);
    }
    uint64_t next = 0;
    rc = sos_dir_next_expiry(d.txn, &next);
    s_add(&d, "next expiry %d %llu\n", rc, (unsigned long long)next);
    CHECK_RC(sos_dir_foreach_expired(d.txn, UINT64_MAX - 1, s_dump_expired, &d), SOS_OK);
    sos_txn_abort(&d.txn);
    return d.buf;
}

/* ---------------------------------------------------------------- cases ---- */

static void
s_case_meta(s_backend_t *b)
{
    sos_store_t *store = s_open(b);
    sos_txn_t *txn, *other;
    uint64_t v = 0;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_meta_get_u64(txn, "version", &v), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_meta_put_u64(txn, "version", 1), SOS_ERR_INVALID); /* read-only */
    sos_txn_abort(&txn);
    CHECK(txn == NULL);

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_txn_begin(store, true, &other), SOS_ERR_INVALID); /* one writer */
    CHECK_RC(sos_meta_put_u64(txn, "format", 1), SOS_ERR_INVALID);
    CHECK_RC(sos_meta_put_u64(txn, "", 1), SOS_ERR_INVALID);
    CHECK_RC(sos_meta_put_u64(txn, "version", 42), SOS_OK);
    CHECK_RC(sos_meta_put_u64(txn, "version", 43), SOS_OK);
    CHECK_RC(sos_meta_get_u64(txn, "version", &v), SOS_OK);
    CHECK(v == 43);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    CHECK(txn == NULL);

    /*  An aborted write leaves the committed value. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_meta_put_u64(txn, "version", 99), SOS_OK);
    CHECK_RC(sos_meta_put_u64(txn, "other", 7), SOS_OK);
    sos_txn_abort(&txn);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_meta_get_u64(txn, "version", &v), SOS_OK);
    CHECK(v == 43);
    CHECK_RC(sos_meta_get_u64(txn, "other", NULL), SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);
    sos_store_destroy(&store);
    CHECK(store == NULL);
}

static void
s_case_workers(s_backend_t *b)
{
    sos_store_t *store = s_open(b);
    sos_txn_t *txn;
    sos_record_t w1, w2, got;
    sos_worker_local_t local = {.last_seen = 5, .last_ok = 6, .fail_count = 2, .is_genesis = true};
    sos_worker_local_t l2;
    sos_origin_t o;
    uint64_t held = 0, n = 0;
    s_worker(&w1, 0, 3);
    s_worker(&w2, 0, 9);
    WRITE(store, sos_dir_put(txn, &w1));
    WRITE(store, sos_dir_put_worker_local(txn, s_ids[0].pk, &local));
    WRITE(store, sos_dir_put(txn, &w2)); /* replaced: keeps its local stats */

    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_worker(txn, s_ids[0].pk, &got, &l2), SOS_OK);
    CHECK(got.version == 9 && got.wire_len == w2.wire_len &&
          memcmp(got.wire, w2.wire, w2.wire_len) == 0);
    CHECK(l2.last_seen == 5 && l2.last_ok == 6 && l2.fail_count == 2 && l2.is_genesis);
    CHECK_RC(sos_dir_held_max(txn, s_ids[0].pk, &held), SOS_OK);
    CHECK(held == 9);
    CHECK_RC(sos_dir_get_origin(txn, s_ids[0].pk, &o), SOS_OK);
    CHECK(o.max_version == 9 && o.has_worker && o.n_rooms == 0);
    CHECK_RC(sos_dir_get_worker(txn, s_ids[1].pk, NULL, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_get_origin(txn, s_ids[1].pk, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_counts(txn, &n, NULL, NULL), SOS_OK);
    CHECK(n == 1);
    sos_txn_abort(&txn);

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_put_worker_local(txn, s_ids[1].pk, &local), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_del_worker(txn, s_ids[1].pk), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_del_worker(txn, s_ids[0].pk), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, s_ids[0].pk, NULL), SOS_ERR_NOT_FOUND); /* nothing keeps it */
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  A worker put again after its deletion starts with zeroed stats. */
    WRITE(store, sos_dir_put(txn, &w1));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_worker(txn, s_ids[0].pk, NULL, &l2), SOS_OK);
    CHECK(l2.last_seen == 0 && l2.fail_count == 0 && !l2.is_genesis);
    sos_txn_abort(&txn);

    /*  A record whose fields disagree with its wire form is refused. */
    sos_record_t bad = w2;
    bad.version = 10;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_put(txn, &bad), SOS_ERR_INVALID);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK); /* refused before writing: still usable */
    sos_store_destroy(&store);
}

typedef struct {
    int n;
    uint64_t v[16];
    int stop;
} s_vers_t;

static int
s_on_vers(void *arg, const uint8_t *wire, size_t len, uint64_t version)
{
    (void)wire;
    (void)len;
    s_vers_t *c = arg;
    if (c->n < 16)
        c->v[c->n] = version;
    c->n++;
    return c->stop && c->n >= c->stop;
}

typedef struct {
    int n;
    char h[16][SOS_ROOMHASH_LEN + 1];
} s_hashes_t;

static int
s_on_room_hash(void *arg, const sos_record_t *rec)
{
    s_hashes_t *c = arg;
    if (c->n < 16)
        memcpy(c->h[c->n], rec->room_hash, SOS_ROOMHASH_LEN + 1);
    c->n++;
    return 0;
}

static int
s_on_expired_hash(void *arg, const char *room_hash, uint64_t expires_at)
{
    (void)expires_at;
    s_hashes_t *c = arg;
    if (c->n < 16)
        memcpy(c->h[c->n], room_hash, SOS_ROOMHASH_LEN + 1);
    c->n++;
    return 0;
}

static void
s_case_rooms_since(s_backend_t *b)
{
    sos_store_t *store = s_open(b);
    sos_txn_t *txn;
    sos_record_t w, r1, r2, r3, moved;
    s_worker(&w, 1, 2);
    s_room(&r1, 1, 4, "00000000000000aa", 3000);
    s_room(&r2, 1, 3, "00000000000000bb", 1000);
    s_room(&r3, 1, 7, "00000000000000cc", 2000);
    WRITE(store, sos_dir_put(txn, &w));
    WRITE(store, sos_dir_put(txn, &r1));
    WRITE(store, sos_dir_put(txn, &r2));
    WRITE(store, sos_dir_put(txn, &r3));

    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    s_vers_t c = {0};
    CHECK_RC(sos_dir_foreach_since(txn, s_ids[1].pk, 2, s_on_vers, &c), SOS_OK);
    CHECK(c.n == 3 && c.v[0] == 3 && c.v[1] == 4 && c.v[2] == 7);
    s_vers_t all = {.stop = 2};
    CHECK_RC(sos_dir_foreach_since(txn, s_ids[1].pk, 0, s_on_vers, &all), SOS_OK);
    CHECK(all.n == 2 && all.v[0] == 2 && all.v[1] == 3); /* stopped by the callback */
    s_vers_t none = {0};
    CHECK_RC(sos_dir_foreach_since(txn, s_ids[1].pk, UINT64_MAX, s_on_vers, &none), SOS_OK);
    CHECK_RC(sos_dir_foreach_since(txn, s_ids[2].pk, 0, s_on_vers, &none), SOS_OK);
    CHECK(none.n == 0);
    uint64_t held = 0, nw = 0, nr = 0, no = 0, next = 0;
    CHECK_RC(sos_dir_held_max(txn, s_ids[1].pk, &held), SOS_OK);
    CHECK(held == 7);
    CHECK_RC(sos_dir_counts(txn, &nw, &nr, &no), SOS_OK);
    CHECK(nw == 1 && nr == 3 && no == 1);
    s_hashes_t h = {0};
    CHECK_RC(sos_dir_foreach_room(txn, "00000000000000aa", s_on_room_hash, &h), SOS_OK);
    CHECK(h.n == 2 && strcmp(h.h[0], "00000000000000bb") == 0);
    s_hashes_t h2 = {0};
    CHECK_RC(sos_dir_foreach_room(txn, "00000000000000b", s_on_room_hash, &h2), SOS_OK);
    CHECK(h2.n == 2 && strcmp(h2.h[0], "00000000000000bb") == 0);
    CHECK_RC(sos_dir_foreach_room(txn, "00000000000000aaa", s_on_room_hash, &h2), SOS_ERR_INVALID);
    CHECK_RC(sos_dir_get_room(txn, "not-a-hash", NULL), SOS_ERR_INVALID);
    CHECK_RC(sos_dir_get_room(txn, "00000000000000dd", NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_next_expiry(txn, &next), SOS_OK);
    CHECK(next == 1000);
    s_hashes_t e = {0};
    CHECK_RC(sos_dir_foreach_expired(txn, 2000, s_on_expired_hash, &e), SOS_OK);
    CHECK(e.n == 2 && strcmp(e.h[0], "00000000000000bb") == 0 &&
          strcmp(e.h[1], "00000000000000cc") == 0);
    sos_txn_abort(&txn);

    /*  The room moves to another origin: the books follow it. */
    s_room(&moved, 2, 1, "00000000000000aa", 5000);
    WRITE(store, sos_dir_put(txn, &moved));
    sos_origin_t o1, o2;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, s_ids[1].pk, &o1), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, s_ids[2].pk, &o2), SOS_OK);
    CHECK(o1.n_rooms == 2 && o1.max_version == 7 && o2.n_rooms == 1 && !o2.has_worker);
    sos_txn_abort(&txn);

    /*  Deleting the rooms and the worker leaves no origin. */
    WRITE(store, sos_dir_del_room(txn, "00000000000000aa"));
    WRITE(store, sos_dir_del_room(txn, "00000000000000bb"));
    WRITE(store, sos_dir_del_room(txn, "00000000000000cc"));
    WRITE(store, sos_dir_del_worker(txn, s_ids[1].pk));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_counts(txn, &nw, &nr, &no), SOS_OK);
    CHECK(nw == 0 && nr == 0 && no == 0);
    CHECK_RC(sos_dir_next_expiry(txn, &next), SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);
    sos_store_destroy(&store);
}

static void
s_case_tombstones(s_backend_t *b)
{
    sos_store_t *store = s_open(b);
    sos_txn_t *txn;
    sos_record_t w;
    s_worker(&w, 3, 4);
    WRITE(store, sos_dir_put(txn, &w));
    WRITE(store, sos_dir_tombstone_put(txn, s_ids[3].pk, 6, 100));
    WRITE(store, sos_dir_del_worker(txn, s_ids[3].pk));
    WRITE(store, sos_dir_tombstone_put(txn, s_ids[4].pk, 2, 300));

    uint64_t v = 0, exp = 0;
    sos_origin_t o;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_get(txn, s_ids[3].pk, &v, &exp), SOS_OK);
    CHECK(v == 6 && exp == 100);
    CHECK_RC(sos_dir_get_origin(txn, s_ids[3].pk, &o), SOS_OK); /* kept by the tombstone */
    CHECK(o.max_version == 6 && !o.has_worker);
    CHECK_RC(sos_dir_tombstone_get(txn, s_ids[5].pk, NULL, NULL), SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);

    uint32_t removed = 99;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_sweep(txn, 99, &removed), SOS_OK);
    CHECK(removed == 0);
    CHECK_RC(sos_dir_tombstone_sweep(txn, 100, &removed), SOS_OK);
    CHECK(removed == 1);
    CHECK_RC(sos_dir_get_origin(txn, s_ids[3].pk, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_tombstone_del(txn, s_ids[3].pk), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_tombstone_del(txn, s_ids[4].pk), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, s_ids[4].pk, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    sos_store_destroy(&store);
}

static void
s_case_room_local(s_backend_t *b)
{
    sos_store_t *store = s_open(b);
    sos_txn_t *txn;
    sos_record_t r1, r2;
    s_room(&r1, 0, 1, "1111111111111111", 9000);
    s_room(&r2, 0, 2, "2222222222222222", 9000);
    sos_room_local_t pooled = {.first_seen = 10, .pooled = true};
    sos_room_local_t contested = {.first_seen = 11, .contested = true};
    WRITE(store, sos_dir_put(txn, &r1));
    WRITE(store, sos_dir_room_local_put(txn, r1.room_hash, &pooled));
    WRITE(store, sos_dir_put(txn, &r2));
    WRITE(store, sos_dir_room_local_put(txn, r2.room_hash, &pooled));
    WRITE(store, sos_dir_room_local_put(txn, r2.room_hash, &contested)); /* leaves the pool */

    uint64_t n = 9;
    sos_room_local_t got;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_rooms_pooled(txn, &n), SOS_OK);
    CHECK(n == 1);
    CHECK_RC(sos_dir_room_local_get(txn, r2.room_hash, &got), SOS_OK);
    CHECK(got.first_seen == 11 && got.contested && !got.pooled);
    CHECK_RC(sos_dir_room_local_get(txn, "3333333333333333", NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_room_local_get(txn, "BAD", NULL), SOS_ERR_INVALID);
    sos_txn_abort(&txn);

    WRITE(store, sos_dir_del_room(txn, r1.room_hash)); /* takes its local entry with it */
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_rooms_pooled(txn, &n), SOS_OK);
    CHECK(n == 0);
    CHECK_RC(sos_dir_room_local_get(txn, r1.room_hash, NULL), SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);
    sos_store_destroy(&store);
}

/* --------------------------------------------------- random, both backends ---- */

static uint64_t
s_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *s_hashes[] = {"0123456789abcdef", "00000000000000ff", "fedcba9876543210",
                                 "1000000000000000"};

/*  One random operation in txn; rc need not be OK (both backends must agree on it). */
static sos_rc
s_random_op(sos_txn_t *txn, uint64_t *seed)
{
    uint64_t r = s_next(seed);
    int who = (int)(r % 6);
    uint64_t version = 1 + (r >> 8) % 12;
    const char *hash = s_hashes[(r >> 16) % 4];
    sos_record_t rec;
    switch ((r >> 24) % 11) {
    case 0:
    case 1:
        s_worker(&rec, who, version);
        return sos_dir_put(txn, &rec);
    case 2:
    case 3:
        s_room(&rec, who, version, hash, 1000 + (r >> 32) % 50);
        return sos_dir_put(txn, &rec);
    case 4:
        return sos_dir_del_worker(txn, s_ids[who].pk);
    case 5:
        return sos_dir_del_room(txn, hash);
    case 6:
        return sos_dir_tombstone_put(txn, s_ids[who].pk, version, 1000 + (r >> 32) % 50);
    case 7:
        return sos_dir_tombstone_sweep(txn, 1000 + (r >> 32) % 50, NULL);
    case 8: {
        sos_worker_local_t l = {r >> 40, r >> 44, (uint32_t)(r >> 50) % 5, (r >> 60) & 1};
        return sos_dir_put_worker_local(txn, s_ids[who].pk, &l);
    }
    case 9: {
        sos_room_local_t l = {r >> 40, (r >> 58) & 1, (r >> 59) & 1};
        return sos_dir_room_local_put(txn, hash, &l);
    }
    default:
        return sos_meta_put_u64(txn, "version", r >> 40);
    }
}

/*  The same random transactions, some aborted, on both stores; after each, the dumps agree
    (and an aborted one leaves the dump as it was). */
static void
s_case_random(s_backend_t *a, s_backend_t *b)
{
    sos_store_t *sa = s_open(a), *sb = s_open(b);
    uint64_t seed = 12;
    int mismatches = 0;
    for (int t = 0; t < 300; t++) {
        bool abort = s_next(&seed) % 4 == 0;
        int ops = 1 + (int)(s_next(&seed) % 6);
        uint64_t seed_b = seed;
        char *before = abort ? s_dump(sb) : NULL;
        sos_txn_t *ta, *tb;
        CHECK_RC(sos_txn_begin(sa, true, &ta), SOS_OK);
        CHECK_RC(sos_txn_begin(sb, true, &tb), SOS_OK);
        for (int i = 0; i < ops; i++) {
            sos_rc ra = s_random_op(ta, &seed);
            sos_rc rb = s_random_op(tb, &seed_b);
            if (ra != rb && mismatches++ < 5)
                fprintf(stderr, "txn %d op %d: %s on %s, %s on %s\n", t, i, sos_strerror(ra),
                        a->name, sos_strerror(rb), b->name);
        }
        if (abort) {
            sos_txn_abort(&ta);
            sos_txn_abort(&tb);
        } else {
            CHECK_RC(sos_txn_commit(&ta), SOS_OK);
            CHECK_RC(sos_txn_commit(&tb), SOS_OK);
        }
        char *da = s_dump(sa), *db = s_dump(sb);
        if (strcmp(da, db) != 0 && mismatches++ < 5)
            fprintf(stderr, "after txn %d the stores differ:\n--- %s\n%s--- %s\n%s", t, a->name, da,
                    b->name, db);
        if (before && strcmp(before, db) != 0 && mismatches++ < 5)
            fprintf(stderr, "txn %d was aborted but %s changed\n", t, b->name);
        free(before);
        free(da);
        free(db);
    }
    CHECK(mismatches == 0);
    sos_store_destroy(&sa);
    sos_store_destroy(&sb);
}

static int
s_on_origin_order(void *arg, const sos_origin_t *o)
{
    uint8_t *last = arg; /* the previous origin, all 0 at first */
    CHECK(memcmp(last, o->origin, SOS_NODEID_BYTES) < 0);
    memcpy(last, o->origin, SOS_NODEID_BYTES);
    return 0;
}

/*  Memory only: sos_store_pool_holds, reads of one record from two stores (the pool keeps
    one parse of it), and foreach_origin in id order while new ids are interned between
    calls (the pool ranks its ids again when asked after that). */
static void
s_case_pool(s_backend_t *b)
{
    sos_store_t *s1 = s_open(b), *s2 = s_open(b);
    sos_txn_t *txn;
    sos_record_t w, w2, got;
    s_worker(&w, 4, 5);
    s_worker(&w2, 4, 6);
    CHECK(!sos_store_pool_holds(b->pool, w.wire, w.wire_len));
    WRITE(s1, sos_dir_put(txn, &w));
    WRITE(s2, sos_dir_put(txn, &w));
    CHECK(sos_store_pool_holds(b->pool, w.wire, w.wire_len));
    CHECK(!sos_store_pool_holds(b->pool, w.wire, w.wire_len - 1));
    for (int k = 0; k < 2; k++) {
        CHECK_RC(sos_txn_begin(k ? s2 : s1, false, &txn), SOS_OK);
        CHECK_RC(sos_dir_get_worker(txn, s_ids[4].pk, &got, NULL), SOS_OK);
        CHECK(got.version == 5 && got.wire_len == w.wire_len &&
              memcmp(got.wire, w.wire, w.wire_len) == 0 && strcmp(got.url, w.url) == 0);
        sos_txn_abort(&txn);
    }
    WRITE(s1, sos_dir_put(txn, &w2)); /* s2 still holds w */
    CHECK(sos_store_pool_holds(b->pool, w.wire, w.wire_len));
    CHECK_RC(sos_txn_begin(s1, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_worker(txn, s_ids[4].pk, &got, NULL), SOS_OK);
    CHECK(got.version == 6 && got.wire_len == w2.wire_len);
    sos_txn_abort(&txn);
    sos_store_destroy(&s2); /* the last holder of w */
    CHECK(!sos_store_pool_holds(b->pool, w.wire, w.wire_len));
    CHECK(sos_store_pool_holds(b->pool, w2.wire, w2.wire_len));

    /*  Origins in id order, asked between puts of new ids. */
    for (int i = 0; i < 40; i++) {
        sos_identity_t id;
        uint8_t seed[crypto_sign_SEEDBYTES] = {0xee, (uint8_t)i};
        crypto_sign_seed_keypair(id.pk, id.sk, seed);
        sos_record_t r;
        memset(&r, 0, sizeof r);
        r.kind = SOS_REC_WORKER;
        r.version = 1;
        snprintf(r.url, sizeof r.url, "tcp://127.0.0.1:%d", 6000 + i);
        CHECK_RC(sos_record_sign(&r, &id), SOS_OK);
        WRITE(s1, sos_dir_put(txn, &r));
        uint8_t last[SOS_NODEID_BYTES] = {0};
        CHECK_RC(sos_txn_begin(s1, false, &txn), SOS_OK);
        CHECK_RC(sos_dir_foreach_origin(txn, s_on_origin_order, last), SOS_OK);
        uint64_t origins = 0;
        CHECK_RC(sos_dir_counts(txn, NULL, NULL, &origins), SOS_OK);
        CHECK(origins == (uint64_t)i + 2);
        sos_txn_abort(&txn);
    }
    sos_store_destroy(&s1);
}

int
main(void)
{
    CHECK_RC(sos_crypto_init(), SOS_OK);
    for (int i = 0; i < 6; i++) {
        uint8_t seed[crypto_sign_SEEDBYTES] = {(uint8_t)(i + 1)};
        crypto_sign_seed_keypair(s_ids[i].pk, s_ids[i].sk, seed);
    }
    s_backend_t lmdb = {.name = "lmdb"}, mem = {.name = "memory"};
    snprintf(lmdb.dir, sizeof lmdb.dir, "/tmp/sos_contract_%d", (int)getpid());
    CHECK(mkdir(lmdb.dir, 0700) == 0);
    mem.pool = sos_store_pool_new();
    CHECK(mem.pool);
    s_backend_t *backends[] = {&lmdb, &mem};
    for (int i = 0; i < 2; i++) {
        printf("backend %s\n", backends[i]->name);
        SECTION("meta and transactions");
        s_case_meta(backends[i]);
        SECTION("workers: put, replace by version, local stats, delete");
        s_case_workers(backends[i]);
        SECTION("rooms: since per origin, held_max, counts, order, expiry, moves");
        s_case_rooms_since(backends[i]);
        SECTION("tombstones and their sweep");
        s_case_tombstones(backends[i]);
        SECTION("room local state and the pooled count");
        s_case_room_local(backends[i]);
    }
    SECTION("the memory store keeps no owned rooms: SOS_ERR_INVALID");
    {
        sos_store_t *store = s_open(&mem);
        sos_txn_t *txn;
        CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
        CHECK_RC(sos_roomdb_create(txn, "0123456789abcdef", 1, 2), SOS_ERR_INVALID);
        CHECK_RC(sos_roomdb_get(txn, "0123456789abcdef", NULL), SOS_ERR_INVALID);
        CHECK_RC(sos_txn_commit(&txn), SOS_OK);
        uint64_t used = 0, map = 1;
        CHECK_RC(sos_store_usage(store, &map, &used), SOS_OK);
        CHECK(map == 0 && used > 0);
        sos_store_destroy(&store);
    }
    SECTION("the pool: which bytes it holds, one parse shared by stores, ids in order");
    s_case_pool(&mem);
    SECTION("random transactions, some aborted: both backends agree");
    s_case_random(&lmdb, &mem);
    uint64_t records = 1;
    sos_store_pool_stats(mem.pool, &records, NULL, NULL);
    CHECK(records == 0); /* every store is gone: so is every record */
    sos_store_pool_destroy(&mem.pool);
    test_rmtree(lmdb.dir);
    return test_done("test_store_contract");
}
