/*  test_store.c: unit tests of the store's environment and directory: open and lock, meta,
    worker and room records, the by-origin index, origin table, tombstones and expiry. */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_store.h"

static char s_tmp[64];

static void
s_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", s_tmp, name);
}

static void
s_worker(sos_record_t *rec, const sos_identity_t *id, uint64_t version)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_WORKER;
    rec->version = version;
    rec->prev = version - 1;
    snprintf(rec->url, sizeof rec->url, "tcp://127.0.0.1:%u", (unsigned)(5000 + version));
    CHECK_RC(sos_record_sign(rec, id), SOS_OK);
}

static void
s_room(sos_record_t *rec, const sos_identity_t *id, uint64_t version, const char *hash,
       uint64_t expires_at)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_ROOM;
    rec->version = version;
    rec->prev = version - 1;
    snprintf(rec->url, sizeof rec->url, "tcp://127.0.0.1:7000");
    snprintf(rec->room_hash, sizeof rec->room_hash, "%s", hash);
    rec->n_emojis = 1;
    snprintf(rec->emojis[0], sizeof rec->emojis[0], "x");
    snprintf(rec->description, sizeof rec->description, "room %s v%u", hash, (unsigned)version);
    rec->created_at = 1;
    rec->expires_at = expires_at;
    CHECK_RC(sos_record_sign(rec, id), SOS_OK);
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

/* ------------------------------------------------------------ collectors ---- */

typedef struct {
    int n;
    uint64_t versions[32];
    size_t lens[32];
    uint8_t first_byte[32];
    int stop_after;
} s_since_t;

static int
s_on_since(void *arg, const uint8_t *wire, size_t len, uint64_t version)
{
    s_since_t *c = arg;
    if (c->n < 32) {
        c->versions[c->n] = version;
        c->lens[c->n] = len;
        c->first_byte[c->n] = wire[0];
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static s_since_t
s_since(sos_store_t *store, const uint8_t origin[SOS_NODEID_BYTES], uint64_t since)
{
    s_since_t c = {0};
    sos_txn_t *txn;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_foreach_since(txn, origin, since, s_on_since, &c), SOS_OK);
    sos_txn_abort(&txn);
    return c;
}

typedef struct {
    int n;
    char hashes[32][SOS_ROOMHASH_LEN + 1];
    uint64_t expires[32];
} s_rooms_t;

static int
s_on_room(void *arg, const sos_record_t *rec)
{
    s_rooms_t *c = arg;
    if (c->n < 32)
        memcpy(c->hashes[c->n], rec->room_hash, SOS_ROOMHASH_LEN + 1);
    c->n++;
    return 0;
}

static int
s_on_expired(void *arg, const char *room_hash, uint64_t expires_at)
{
    s_rooms_t *c = arg;
    if (c->n < 32) {
        memcpy(c->hashes[c->n], room_hash, SOS_ROOMHASH_LEN + 1);
        c->expires[c->n] = expires_at;
    }
    c->n++;
    return 0;
}

typedef struct {
    int n;
    uint64_t last_seen_sum;
} s_workers_t;

static int
s_on_worker(void *arg, const sos_record_t *rec, const sos_worker_local_t *local)
{
    s_workers_t *c = arg;
    c->n++;
    c->last_seen_sum += local->last_seen;
    return rec->kind != SOS_REC_WORKER;
}

static int
s_on_origin(void *arg, const sos_origin_t *o)
{
    (*(int *)arg)++;
    return 0;
}

/* ------------------------------------------------------------------ tests ---- */

static void
s_test_open_lock(void)
{
    char dir[128], path[160];
    struct stat st;
    sos_store_t *store = NULL, *second = NULL;

    s_path(dir, sizeof dir, "lock");
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    CHECK(store);
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);

    /*  flock belongs to the open file description: a second open in this process conflicts. */
    CHECK_RC(sos_store_open(&second, dir, 0), SOS_ERR_LOCKED);
    CHECK(second == NULL);
    sos_store_destroy(&store);
    CHECK(store == NULL);
    sos_store_destroy(&store); /* NULL-safe */
    CHECK_RC(sos_store_open(&second, dir, 0), SOS_OK);
    sos_store_destroy(&second);

    /*  Garbage where LMDB expects its data file. */
    s_path(dir, sizeof dir, "garbage");
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    uint8_t junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_ERR_CORRUPT);
    CHECK(store == NULL);

    /*  A directory that cannot be created. */
    s_path(dir, sizeof dir, "missing/parent");
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_ERR_IO);
}

static void
s_test_txn_meta(sos_store_t *store)
{
    sos_txn_t *txn, *other;
    uint64_t v = 0;

    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_meta_get_u64(txn, "version", &v), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_meta_put_u64(txn, "version", 1), SOS_ERR_INVALID); /* read-only */
    /*  A second read transaction in the same thread. */
    CHECK_RC(sos_txn_begin(store, false, &other), SOS_OK);
    sos_txn_abort(&other);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    CHECK(txn == NULL);

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_txn_begin(store, true, &other), SOS_ERR_INVALID);
    CHECK(other == NULL);
    CHECK_RC(sos_meta_put_u64(txn, "version", 42), SOS_OK);
    CHECK_RC(sos_meta_put_u64(txn, "format", 1), SOS_ERR_INVALID);
    CHECK_RC(sos_meta_put_u64(txn, "", 1), SOS_ERR_INVALID);
    CHECK_RC(sos_meta_get_u64(txn, "version", &v), SOS_OK);
    CHECK(v == 42);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  Abort discards. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_meta_put_u64(txn, "version", 43), SOS_OK);
    CHECK_RC(sos_meta_put_u64(txn, "other", 7), SOS_OK);
    sos_txn_abort(&txn);
    CHECK(txn == NULL);
    sos_txn_abort(&txn); /* NULL-safe */
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_meta_get_u64(txn, "version", &v), SOS_OK);
    CHECK(v == 42);
    CHECK_RC(sos_meta_get_u64(txn, "other", &v), SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);
}

static void
s_test_workers(sos_store_t *store, const sos_identity_t *a)
{
    sos_record_t rec, got;
    sos_worker_local_t local;
    sos_txn_t *txn;

    s_worker(&rec, a, 1);
    WRITE(store, sos_dir_put(txn, &rec));

    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    memset(&local, 0xff, sizeof local);
    CHECK_RC(sos_dir_get_worker(txn, a->pk, &got, &local), SOS_OK);
    CHECK(got.kind == SOS_REC_WORKER && got.version == 1);
    CHECK(got.wire_len == rec.wire_len && memcmp(got.wire, rec.wire, rec.wire_len) == 0);
    CHECK(strcmp(got.url, rec.url) == 0);
    CHECK(local.last_seen == 0 && local.last_ok == 0 && local.fail_count == 0 && !local.is_genesis);
    CHECK_RC(sos_dir_get_worker(txn, a->pk, NULL, NULL), SOS_OK);
    CHECK_RC(sos_dir_put_worker_local(txn, a->pk, &local), SOS_ERR_INVALID);
    sos_txn_abort(&txn);

    /*  Local stats survive a newer record. */
    sos_worker_local_t set = {
        .last_seen = 1000, .last_ok = 900, .fail_count = 3, .is_genesis = true};
    WRITE(store, sos_dir_put_worker_local(txn, a->pk, &set));
    s_worker(&rec, a, 2);
    WRITE(store, sos_dir_put(txn, &rec));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_worker(txn, a->pk, &got, &local), SOS_OK);
    CHECK(got.version == 2);
    CHECK(local.last_seen == 1000 && local.last_ok == 900 && local.fail_count == 3 &&
          local.is_genesis);
    s_workers_t w = {0};
    CHECK_RC(sos_dir_foreach_worker(txn, s_on_worker, &w), SOS_OK);
    CHECK(w.n == 1 && w.last_seen_sum == 1000);
    sos_txn_abort(&txn);

    /*  A record whose fields disagree with its wire form is refused. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    sos_record_t bad = rec;
    bad.version = 9;
    CHECK_RC(sos_dir_put(txn, &bad), SOS_ERR_INVALID);
    bad = rec;
    bad.wire_len = 0;
    CHECK_RC(sos_dir_put(txn, &bad), SOS_ERR_INVALID);
    bad = rec;
    bad.wire[bad.wire_len / 2] ^= 0xff;
    bad.wire_len -= 3;
    CHECK_RC(sos_dir_put(txn, &bad), SOS_ERR_INVALID);
    /*  ... and leaves the transaction usable. */
    CHECK_RC(sos_meta_put_u64(txn, "after-invalid", 1), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  Delete. */
    uint8_t nobody[SOS_NODEID_BYTES] = {0};
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_del_worker(txn, nobody), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_put_worker_local(txn, nobody, &set), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_del_worker(txn, a->pk), SOS_OK);
    CHECK_RC(sos_dir_get_worker(txn, a->pk, &got, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  A worker put again after deletion starts with fresh stats. */
    WRITE(store, sos_dir_put(txn, &rec));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_worker(txn, a->pk, NULL, &local), SOS_OK);
    CHECK(local.last_seen == 0 && !local.is_genesis);
    sos_txn_abort(&txn);
    WRITE(store, sos_dir_del_worker(txn, a->pk));
}

static void
s_test_rooms_and_origins(sos_store_t *store, const sos_identity_t *a, const sos_identity_t *b)
{
    sos_record_t rec, got;
    sos_origin_t o;
    sos_txn_t *txn;
    s_since_t c;

    /*  Origin a: worker v1, rooms at v2 and v3. */
    s_worker(&rec, a, 1);
    WRITE(store, sos_dir_put(txn, &rec));
    s_room(&rec, a, 2, "00000000000000aa", 5000);
    WRITE(store, sos_dir_put(txn, &rec));
    s_room(&rec, a, 3, "00000000000000bb", 6000);
    WRITE(store, sos_dir_put(txn, &rec));
    /*  Origin b: one worker record, to check that ranges do not mix. */
    s_worker(&rec, b, 7);
    WRITE(store, sos_dir_put(txn, &rec));

    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_room(txn, "00000000000000aa", &got), SOS_OK);
    CHECK(got.kind == SOS_REC_ROOM && got.version == 2 && got.expires_at == 5000);
    CHECK(memcmp(got.origin, a->pk, SOS_NODEID_BYTES) == 0);
    CHECK_RC(sos_dir_get_room(txn, "00000000000000cc", &got), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_get_room(txn, "00000000000000aa", NULL), SOS_OK);
    CHECK_RC(sos_dir_get_room(txn, "XYZ", &got), SOS_ERR_INVALID);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_OK);
    CHECK(o.max_version == 3 && o.n_rooms == 2 && o.has_worker);
    CHECK(memcmp(o.origin, a->pk, SOS_NODEID_BYTES) == 0);
    CHECK_RC(sos_dir_get_origin(txn, b->pk, &o), SOS_OK);
    CHECK(o.max_version == 7 && o.n_rooms == 0 && o.has_worker);
    uint64_t nw, nr, no;
    CHECK_RC(sos_dir_counts(txn, &nw, &nr, &no), SOS_OK);
    CHECK(nw == 2 && nr == 2 && no == 2);
    CHECK_RC(sos_dir_counts(txn, NULL, NULL, NULL), SOS_OK);
    int n_origins = 0;
    CHECK_RC(sos_dir_foreach_origin(txn, s_on_origin, &n_origins), SOS_OK);
    CHECK(n_origins == 2);
    s_rooms_t rooms = {0};
    CHECK_RC(sos_dir_foreach_room(txn, NULL, s_on_room, &rooms), SOS_OK);
    CHECK(rooms.n == 2 && strcmp(rooms.hashes[0], "00000000000000aa") == 0 &&
          strcmp(rooms.hashes[1], "00000000000000bb") == 0);
    memset(&rooms, 0, sizeof rooms);
    CHECK_RC(sos_dir_foreach_room(txn, "00000000000000aa", s_on_room, &rooms), SOS_OK);
    CHECK(rooms.n == 1 && strcmp(rooms.hashes[0], "00000000000000bb") == 0);
    memset(&rooms, 0, sizeof rooms);
    CHECK_RC(sos_dir_foreach_room(txn, "00000000000000a", s_on_room, &rooms), SOS_OK);
    CHECK(rooms.n == 2);
    memset(&rooms, 0, sizeof rooms);
    CHECK_RC(sos_dir_foreach_room(txn, "00000000000000bb", s_on_room, &rooms), SOS_OK);
    CHECK(rooms.n == 0);
    CHECK_RC(sos_dir_foreach_room(txn, "00000000000000aaa", s_on_room, &rooms), SOS_ERR_INVALID);
    sos_txn_abort(&txn);

    /*  by_origin ranges. */
    c = s_since(store, a->pk, 0);
    CHECK(c.n == 3 && c.versions[0] == 1 && c.versions[1] == 2 && c.versions[2] == 3);
    c = s_since(store, a->pk, 1);
    CHECK(c.n == 2 && c.versions[0] == 2 && c.versions[1] == 3);
    c = s_since(store, a->pk, 3);
    CHECK(c.n == 0);
    c = s_since(store, a->pk, UINT64_MAX);
    CHECK(c.n == 0);
    c = s_since(store, b->pk, 0);
    CHECK(c.n == 1 && c.versions[0] == 7);

    /*  Replacing a room moves its index entry to the new version. */
    s_room(&rec, a, 4, "00000000000000aa", 5000);
    WRITE(store, sos_dir_put(txn, &rec));
    c = s_since(store, a->pk, 0);
    CHECK(c.n == 3 && c.versions[0] == 1 && c.versions[1] == 3 && c.versions[2] == 4);
    CHECK(c.lens[2] == rec.wire_len);
    /*  A callback can stop early. */
    s_since_t stop = {.stop_after = 1};
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_foreach_since(txn, a->pk, 0, s_on_since, &stop), SOS_OK);
    CHECK(stop.n == 1);
    sos_txn_abort(&txn);

    /*  The caller may let an older version win; max_version does not go down. */
    s_room(&rec, a, 2, "00000000000000bb", 6000);
    WRITE(store, sos_dir_put(txn, &rec));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_OK);
    CHECK(o.max_version == 4 && o.n_rooms == 2);
    sos_txn_abort(&txn);
    c = s_since(store, a->pk, 0);
    CHECK(c.n == 3 && c.versions[0] == 1 && c.versions[1] == 2 && c.versions[2] == 4);

    /*  Two records of one origin under one version (a reset counter) keep two entries. */
    s_room(&rec, a, 1, "00000000000000cc", 7000);
    WRITE(store, sos_dir_put(txn, &rec));
    c = s_since(store, a->pk, 0);
    CHECK(c.n == 4 && c.versions[0] == 1 && c.versions[1] == 1);
    WRITE(store, sos_dir_del_room(txn, "00000000000000cc"));
    c = s_since(store, a->pk, 0);
    CHECK(c.n == 3 && c.versions[0] == 1 && c.versions[1] == 2);

    /*  Conflict: b's record for room bb wins over a's; the room moves to b. */
    s_room(&rec, b, 8, "00000000000000bb", 6500);
    WRITE(store, sos_dir_put(txn, &rec));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_OK);
    CHECK(o.n_rooms == 1 && o.max_version == 4);
    CHECK_RC(sos_dir_get_origin(txn, b->pk, &o), SOS_OK);
    CHECK(o.n_rooms == 1 && o.max_version == 8 && o.has_worker);
    CHECK_RC(sos_dir_get_room(txn, "00000000000000bb", &got), SOS_OK);
    CHECK(memcmp(got.origin, b->pk, SOS_NODEID_BYTES) == 0 && got.expires_at == 6500);
    sos_txn_abort(&txn);
    c = s_since(store, a->pk, 0);
    CHECK(c.n == 2 && c.versions[0] == 1 && c.versions[1] == 4);
    c = s_since(store, b->pk, 0);
    CHECK(c.n == 2 && c.versions[0] == 7 && c.versions[1] == 8);

    /*  Deleting a's worker keeps a (it has a room); deleting the room then removes a. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_del_worker(txn, a->pk), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_OK);
    CHECK(!o.has_worker && o.n_rooms == 1 && o.max_version == 4);
    CHECK_RC(sos_dir_del_room(txn, "00000000000000aa"), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_del_room(txn, "00000000000000aa"), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_del_room(txn, "nope"), SOS_ERR_INVALID);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    c = s_since(store, a->pk, 0);
    CHECK(c.n == 0);

    /*  A room that moves away from an origin with nothing else removes that origin. */
    s_room(&rec, a, 5, "00000000000000dd", 8000);
    WRITE(store, sos_dir_put(txn, &rec));
    s_room(&rec, b, 9, "00000000000000dd", 8000);
    WRITE(store, sos_dir_put(txn, &rec));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_get_origin(txn, b->pk, &o), SOS_OK);
    CHECK(o.n_rooms == 2 && o.max_version == 9);
    sos_txn_abort(&txn);

    /*  Clean up b entirely. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_del_room(txn, "00000000000000bb"), SOS_OK);
    CHECK_RC(sos_dir_del_room(txn, "00000000000000dd"), SOS_OK);
    CHECK_RC(sos_dir_del_worker(txn, b->pk), SOS_OK);
    CHECK_RC(sos_dir_counts(txn, &nw, &nr, &no), SOS_OK);
    CHECK(nw == 0 && nr == 0 && no == 0);
    uint64_t when;
    CHECK_RC(sos_dir_next_expiry(txn, &when), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    c = s_since(store, b->pk, 0);
    CHECK(c.n == 0);
}

static void
s_test_tombstones(sos_store_t *store, const sos_identity_t *a, const sos_identity_t *b,
                  const sos_identity_t *c)
{
    sos_record_t rec;
    sos_origin_t o;
    sos_txn_t *txn;
    uint64_t version, expires;
    uint32_t removed = 99;

    /*  A tombstone alone keeps an origin entry. */
    WRITE(store, sos_dir_tombstone_put(txn, a->pk, 10, 100));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_get(txn, a->pk, &version, &expires), SOS_OK);
    CHECK(version == 10 && expires == 100);
    CHECK_RC(sos_dir_tombstone_get(txn, a->pk, NULL, NULL), SOS_OK);
    CHECK_RC(sos_dir_tombstone_get(txn, b->pk, &version, &expires), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_OK);
    CHECK(o.max_version == 10 && o.n_rooms == 0 && !o.has_worker);
    sos_txn_abort(&txn);

    /*  A record above the tombstone, then the tombstone goes: the record keeps the origin. */
    s_worker(&rec, a, 11);
    WRITE(store, sos_dir_put(txn, &rec));
    WRITE(store, sos_dir_tombstone_del(txn, a->pk));
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_del(txn, a->pk), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_OK);
    CHECK(o.max_version == 11 && o.has_worker);
    /*  A tombstone below max_version does not lower it. */
    CHECK_RC(sos_dir_tombstone_put(txn, a->pk, 5, 100), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_OK);
    CHECK(o.max_version == 11);
    /*  The worker goes; the tombstone keeps the entry. */
    CHECK_RC(sos_dir_del_worker(txn, a->pk), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_OK);
    CHECK(o.max_version == 11 && !o.has_worker);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  Sweep: a (100) and b (200) go at 200, c (300) stays. */
    WRITE(store, sos_dir_tombstone_put(txn, b->pk, 3, 200));
    WRITE(store, sos_dir_tombstone_put(txn, c->pk, 4, 300));
    s_worker(&rec, b, 4);
    WRITE(store, sos_dir_put(txn, &rec));
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_sweep(txn, 99, &removed), SOS_OK);
    CHECK(removed == 0);
    CHECK_RC(sos_dir_tombstone_sweep(txn, 200, &removed), SOS_OK);
    CHECK(removed == 2);
    CHECK_RC(sos_dir_tombstone_get(txn, a->pk, NULL, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_tombstone_get(txn, b->pk, NULL, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_tombstone_get(txn, c->pk, &version, &expires), SOS_OK);
    CHECK(version == 4 && expires == 300);
    CHECK_RC(sos_dir_get_origin(txn, a->pk, &o), SOS_ERR_NOT_FOUND); /* nothing left */
    CHECK_RC(sos_dir_get_origin(txn, b->pk, &o), SOS_OK);            /* its worker */
    CHECK(o.has_worker && o.max_version == 4);
    CHECK_RC(sos_dir_get_origin(txn, c->pk, &o), SOS_OK);
    CHECK(o.max_version == 4 && !o.has_worker);
    CHECK_RC(sos_dir_tombstone_sweep(txn, UINT64_MAX, NULL), SOS_OK);
    CHECK_RC(sos_dir_get_origin(txn, c->pk, &o), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_dir_del_worker(txn, b->pk), SOS_OK);
    uint64_t no = 1;
    CHECK_RC(sos_dir_counts(txn, NULL, NULL, &no), SOS_OK);
    CHECK(no == 0);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

static void
s_test_expiry(sos_store_t *store, const sos_identity_t *a)
{
    sos_record_t rec;
    sos_txn_t *txn;
    uint64_t when = 0;
    s_rooms_t e = {0};

    s_room(&rec, a, 1, "000000000000000c", 300);
    WRITE(store, sos_dir_put(txn, &rec));
    s_room(&rec, a, 2, "000000000000000a", 100);
    WRITE(store, sos_dir_put(txn, &rec));
    s_room(&rec, a, 3, "000000000000000b", 200);
    WRITE(store, sos_dir_put(txn, &rec));

    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_next_expiry(txn, &when), SOS_OK);
    CHECK(when == 100);
    CHECK_RC(sos_dir_foreach_expired(txn, 250, s_on_expired, &e), SOS_OK);
    CHECK(e.n == 2 && strcmp(e.hashes[0], "000000000000000a") == 0 && e.expires[0] == 100 &&
          strcmp(e.hashes[1], "000000000000000b") == 0 && e.expires[1] == 200);
    memset(&e, 0, sizeof e);
    CHECK_RC(sos_dir_foreach_expired(txn, 99, s_on_expired, &e), SOS_OK);
    CHECK(e.n == 0);
    sos_txn_abort(&txn);

    /*  Extending a room moves its expiry entry (no stale entry stays behind). */
    s_room(&rec, a, 4, "000000000000000a", 400);
    WRITE(store, sos_dir_put(txn, &rec));
    /*  The same expiry again leaves one entry. */
    s_room(&rec, a, 5, "000000000000000b", 200);
    WRITE(store, sos_dir_put(txn, &rec));
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_next_expiry(txn, &when), SOS_OK);
    CHECK(when == 200);
    memset(&e, 0, sizeof e);
    CHECK_RC(sos_dir_foreach_expired(txn, 1000, s_on_expired, &e), SOS_OK);
    CHECK(e.n == 3 && e.expires[0] == 200 && e.expires[1] == 300 && e.expires[2] == 400);
    CHECK(strcmp(e.hashes[2], "000000000000000a") == 0);
    sos_txn_abort(&txn);

    /*  Collect, then delete the expired ones. */
    memset(&e, 0, sizeof e);
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_foreach_expired(txn, 300, s_on_expired, &e), SOS_OK);
    CHECK(e.n == 2);
    for (int i = 0; i < e.n && i < 32; i++)
        CHECK_RC(sos_dir_del_room(txn, e.hashes[i]), SOS_OK);
    CHECK_RC(sos_dir_next_expiry(txn, &when), SOS_OK);
    CHECK(when == 400);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

static void
s_test_reopen(const char *dir, const sos_identity_t *a)
{
    sos_store_t *store;
    sos_txn_t *txn;
    uint64_t v, nw, nr, no, when;
    sos_worker_local_t local;

    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_meta_get_u64(txn, "version", &v), SOS_OK);
    CHECK(v == 42);
    CHECK_RC(sos_dir_counts(txn, &nw, &nr, &no), SOS_OK);
    CHECK(nw == 1 && nr == 1 && no == 1);
    CHECK_RC(sos_dir_get_worker(txn, a->pk, NULL, &local), SOS_OK);
    CHECK(local.last_seen == 77);
    CHECK_RC(sos_dir_next_expiry(txn, &when), SOS_OK);
    CHECK(when == 400);
    s_since_t c = {0};
    CHECK_RC(sos_dir_foreach_since(txn, a->pk, 0, s_on_since, &c), SOS_OK);
    CHECK(c.n == 2 && c.versions[0] == 4 && c.versions[1] == 6);
    sos_txn_abort(&txn);
    uint64_t map_size = 0, used = 0;
    CHECK_RC(sos_store_usage(store, &map_size, &used), SOS_OK);
    CHECK(map_size == SOS_STORE_MAP_DEFAULT && used > 0 && used < map_size);
    sos_store_destroy(&store);
}

static void
s_test_map_full(const sos_identity_t *a)
{
    char dir[128];
    sos_store_t *store;
    sos_txn_t *txn;
    sos_record_t rec;
    char hash[SOS_ROOMHASH_LEN + 1];
    uint64_t committed = 0, nr = 0;
    sos_rc rc = SOS_OK;

    s_path(dir, sizeof dir, "full");
    CHECK_RC(sos_store_open(&store, dir, 256 * 1024), SOS_OK);
    if (!store)
        return;
    /*  Fill in batches of 8 rooms until a put or a commit reports the map full. */
    for (uint64_t v = 1; rc == SOS_OK && v < 100000;) {
        CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
        uint64_t batch = 0;
        for (; batch < 8 && rc == SOS_OK; batch++, v++) {
            snprintf(hash, sizeof hash, "%016llx", (unsigned long long)v);
            s_room(&rec, a, v, hash, 1000 + v);
            rc = sos_dir_put(txn, &rec);
        }
        if (rc == SOS_OK) {
            rc = sos_txn_commit(&txn);
            if (rc == SOS_OK)
                committed += batch;
        } else {
            /*  The spoiled transaction refuses more work, and its commit says why. */
            CHECK_RC(sos_meta_put_u64(txn, "x", 1), SOS_ERR_MAP_FULL);
            CHECK_RC(sos_txn_commit(&txn), SOS_ERR_MAP_FULL);
        }
    }
    CHECK_RC(rc, SOS_ERR_MAP_FULL);
    CHECK(committed > 0);

    /*  The store is still usable: what was committed is there, and a bigger map makes room
        (in a full map even a delete may fail, since LMDB copies pages on write). */
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_counts(txn, NULL, &nr, NULL), SOS_OK);
    CHECK(nr == committed);
    CHECK_RC(sos_store_set_map_size(store, 1024 * 1024), SOS_ERR_INVALID); /* txn open */
    sos_txn_abort(&txn);
    CHECK_RC(sos_store_set_map_size(store, 1024 * 1024), SOS_OK);
    uint64_t map_size = 0;
    CHECK_RC(sos_store_usage(store, &map_size, NULL), SOS_OK);
    CHECK(map_size == 1024 * 1024);
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    for (uint64_t v = 1; v <= 16; v++) {
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)v);
        CHECK_RC(sos_dir_del_room(txn, hash), SOS_OK);
    }
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    s_room(&rec, a, 200000, "ffffffffffffffff", 5);
    WRITE(store, sos_dir_put(txn, &rec));
    uint64_t used = 0;
    CHECK_RC(sos_store_usage(store, NULL, &used), SOS_OK);
    sos_store_destroy(&store);

    /*  Reopened with a map smaller than its data, the map grows to fit. */
    CHECK_RC(sos_store_open(&store, dir, 64 * 1024), SOS_OK);
    if (!store)
        return;
    CHECK_RC(sos_store_usage(store, &map_size, NULL), SOS_OK);
    CHECK(used > 128 * 1024 && map_size >= used);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_counts(txn, NULL, &nr, NULL), SOS_OK);
    CHECK(nr == committed - 16 + 1);
    CHECK_RC(sos_dir_get_room(txn, "ffffffffffffffff", NULL), SOS_OK);
    sos_txn_abort(&txn);
    sos_store_destroy(&store);
}

/*  Environments that are not a sosnode store, or a store with damaged values, made with
    LMDB's own mdb_load from its text format (hex keys and values), so that this test does
    not need lmdb.h. Skipped where lmdb-utils is not installed. */
#define MDB_LOAD "/usr/bin/mdb_load"

static bool
s_mdb_load(const char *name, const char *const *lines)
{
    char dir[128], file[160], cmd[400];
    s_path(dir, sizeof dir, name);
    snprintf(file, sizeof file, "%s.txt", dir);
    if (mkdir(dir, 0700) != 0)
        return false;
    FILE *f = fopen(file, "w");
    if (!f)
        return false;
    for (; *lines; lines++)
        fprintf(f, "%s\n", *lines);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s -f '%s' '%s'", MDB_LOAD, file, dir);
    return system(cmd) == 0;
}

#define DB_HEADER(name) "VERSION=3", "format=bytevalue", name, "type=btree", "HEADER=END"
#define FORMAT_OK       " 666f726d6174", " 736f736e6f64652d73746f72652d31" /* sosnode-store-1 */

static const char *const s_plain[] = {DB_HEADER("mapsize=1048576"), " 68656c6c6f", " 776f726c64",
                                      "DATA=END", NULL};
static const char *const s_noformat[] = {DB_HEADER("database=meta"), " 6b", " 76", "DATA=END",
                                         NULL};
static const char *const s_otherformat[] = {DB_HEADER("database=meta"), " 666f726d6174",
                                            " 736f736e6f64652d73746f72652d39", "DATA=END", NULL};
static const char *const s_damaged[] = {
    DB_HEADER("database=meta"),
    FORMAT_OK,
    "DATA=END",
    /* a worker value too short for its header */
    DB_HEADER("database=workers"),
    " 0101010101010101010101010101010101010101010101010101010101010101",
    " 0102030405",
    "DATA=END",
    /* a room whose bytes are no record */
    DB_HEADER("database=rooms"),
    " 30303030303030303030303030306161",
    " 9192c40101c401ff",
    "DATA=END",
    /* an origin entry of the wrong size */
    DB_HEADER("database=origins"),
    " 0303030303030303030303030303030303030303030303030303030303030303",
    " 010203",
    "DATA=END",
    /* an index entry (origin 02.., version 1) for a room that is not there */
    DB_HEADER("database=by_origin\ndupsort=1"),
    " 02020202020202020202020202020202020202020202020202020202020202020000000000000001",
    " 023030303030303030303030303030306262",
    "DATA=END",
    /* room ee: state of the wrong size; room ff: good state (last_seq 1, one message) */
    DB_HEADER("database=rstate"),
    " 30303030303030303030303030306565",
    " 0102030405",
    " 30303030303030303030303030306666",
    " 0100000000000000020000000000000001000000000000000100000000000000",
    "DATA=END",
    /* room ff's message 1 does not decode */
    DB_HEADER("database=messages"),
    " 303030303030303030303030303066660000000000000001",
    " 0700",
    "DATA=END",
    NULL,
};

static void
s_test_foreign(void)
{
    char dir[128];
    sos_store_t *store = NULL;
    sos_txn_t *txn;

    if (access(MDB_LOAD, X_OK) != 0) {
        printf("test_store: %s not found, foreign environments not tested\n", MDB_LOAD);
        return;
    }
    /*  Plain data in the main database. */
    CHECK(s_mdb_load("plain", s_plain));
    s_path(dir, sizeof dir, "plain");
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_ERR_CORRUPT);
    /*  A meta database without the format key, and one with another format. */
    CHECK(s_mdb_load("noformat", s_noformat));
    s_path(dir, sizeof dir, "noformat");
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_ERR_CORRUPT);
    CHECK(s_mdb_load("otherformat", s_otherformat));
    s_path(dir, sizeof dir, "otherformat");
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_ERR_CORRUPT);
    CHECK(store == NULL);

    /*  A store whose values are damaged: each read says so, none crashes. */
    CHECK(s_mdb_load("damaged", s_damaged));
    s_path(dir, sizeof dir, "damaged");
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    if (!store)
        return;
    uint8_t w1[SOS_NODEID_BYTES], o3[SOS_NODEID_BYTES], o2[SOS_NODEID_BYTES];
    memset(w1, 1, sizeof w1);
    memset(o2, 2, sizeof o2);
    memset(o3, 3, sizeof o3);
    sos_record_t rec;
    sos_worker_local_t local;
    sos_origin_t o;
    s_workers_t w = {0};
    s_rooms_t r = {0};
    s_since_t c = {0};
    int n = 0;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_get_worker(txn, w1, &rec, &local), SOS_ERR_CORRUPT);
    CHECK_RC(sos_dir_foreach_worker(txn, s_on_worker, &w), SOS_ERR_CORRUPT);
    CHECK_RC(sos_dir_get_room(txn, "00000000000000aa", &rec), SOS_ERR_CORRUPT);
    CHECK_RC(sos_dir_foreach_room(txn, NULL, s_on_room, &r), SOS_ERR_CORRUPT);
    CHECK_RC(sos_dir_get_origin(txn, o3, &o), SOS_ERR_CORRUPT);
    CHECK_RC(sos_dir_foreach_origin(txn, s_on_origin, &n), SOS_ERR_CORRUPT);
    CHECK_RC(sos_dir_foreach_since(txn, o2, 0, s_on_since, &c), SOS_ERR_CORRUPT);
    CHECK(w.n == 0 && r.n == 0 && c.n == 0);
    CHECK_RC(sos_roomdb_get(txn, "00000000000000ee", NULL), SOS_ERR_CORRUPT);
    sos_txn_abort(&txn);

    /*  Damage found before anything was written leaves the transaction usable. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_del_worker(txn, w1), SOS_ERR_CORRUPT);
    CHECK_RC(sos_meta_put_u64(txn, "k", 1), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  Damage found half-way through an append (the oldest message, dropped by the history
        limit, does not decode) spoils the transaction: nothing of it is committed. */
    const char *ff = "00000000000000ff";
    sos_message_t m = {.timestamp = 5, .msg_id = "id", .msg_id_len = 2};
    sos_room_state_t st;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_append(txn, ff, &m, 1, NULL, NULL, NULL), SOS_ERR_CORRUPT);
    CHECK_RC(sos_meta_put_u64(txn, "k", 2), SOS_ERR_CORRUPT);
    CHECK_RC(sos_txn_commit(&txn), SOS_ERR_CORRUPT);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, ff, &st), SOS_OK);
    CHECK(st.last_seq == 1 && st.message_count == 1);
    uint64_t k = 0;
    CHECK_RC(sos_meta_get_u64(txn, "k", &k), SOS_OK);
    CHECK(k == 1);
    sos_txn_abort(&txn);
    sos_store_destroy(&store);
}

int
main(void)
{
    if (sos_crypto_init() != SOS_OK) {
        fprintf(stderr, "test_store: libsodium init failed\n");
        return 1;
    }
    snprintf(s_tmp, sizeof s_tmp, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(s_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    sos_identity_t a, b, c;
    sos_identity_generate(&a);
    sos_identity_generate(&b);
    sos_identity_generate(&c);

    s_test_open_lock();
    s_test_foreign();

    char dir[128];
    s_path(dir, sizeof dir, "main");
    sos_store_t *store = NULL;
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    if (store) {
        s_test_txn_meta(store);
        s_test_workers(store, &a);
        s_test_rooms_and_origins(store, &a, &b);
        s_test_tombstones(store, &a, &b, &c);
        s_test_expiry(store, &a);

        /*  State for the reopen check: one worker with stats, one room, versions 4 and 6. */
        sos_record_t rec;
        sos_txn_t *txn;
        s_worker(&rec, &a, 6);
        WRITE(store, sos_dir_put(txn, &rec));
        sos_worker_local_t local = {.last_seen = 77};
        WRITE(store, sos_dir_put_worker_local(txn, a.pk, &local));
        sos_store_destroy(&store);
        s_test_reopen(dir, &a);
    }
    s_test_map_full(&a);

    test_rmtree(s_tmp);
    if (s_failed) {
        fprintf(stderr, "test_store: %d check(s) failed\n", s_failed);
        return 1;
    }
    printf("test_store: ok\n");
    return 0;
}
