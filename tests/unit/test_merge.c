/*  test_merge.c: the directory merge rules over a real LMDB store: newer versions win,
    tombstones keep removed workers out until a newer or direct record, room conflicts. */
#define _XOPEN_SOURCE 700
#include <unistd.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_merge.h"
#include "sos_store.h"

static sos_merge_result_t
s_merge(sos_store_t *store, const sos_merge_ctx_t *ctx, const sos_record_t *rec, sos_source_t src,
        bool *displaced_set)
{
    sos_txn_t *txn = NULL;
    sos_merge_result_t result = SOS_MERGE_MAX;
    sos_record_t displaced;
    bool set = false;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_merge_record(txn, ctx, rec, src, &result, &displaced, &set), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    if (displaced_set)
        *displaced_set = set;
    return result;
}

static bool
s_has_worker(sos_store_t *store, const uint8_t *id, uint64_t *version)
{
    sos_txn_t *txn = NULL;
    sos_record_t rec;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    sos_rc rc = sos_dir_get_worker(txn, id, &rec, NULL);
    sos_txn_abort(&txn);
    if (rc == SOS_OK && version)
        *version = rec.version;
    return rc == SOS_OK;
}

static bool
s_room_owner(sos_store_t *store, const char *hash, const uint8_t *owner)
{
    sos_txn_t *txn = NULL;
    sos_record_t rec;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    sos_rc rc = sos_dir_get_room(txn, hash, &rec);
    sos_txn_abort(&txn);
    return rc == SOS_OK && memcmp(rec.origin, owner, SOS_NODEID_BYTES) == 0;
}

static bool
s_contested(sos_store_t *store, const char *hash)
{
    sos_txn_t *txn = NULL;
    sos_room_local_t local = {0};
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    sos_dir_room_local_get(txn, hash, &local);
    sos_txn_abort(&txn);
    return local.contested;
}

static void
s_signed_worker(sos_record_t *rec, const sos_identity_t *id, uint64_t version)
{
    test_worker(rec, version, "tcp://127.0.0.1:9999");
    CHECK_RC(sos_record_sign(rec, id), SOS_OK);
}

static void
s_signed_room(sos_record_t *rec, const sos_identity_t *id, uint64_t version, const char *hash,
              uint64_t created_at, uint64_t now)
{
    test_room(rec, version, hash);
    rec->created_at = created_at;
    rec->expires_at = now + 3600 * 1000;
    CHECK_RC(sos_record_sign(rec, id), SOS_OK);
}

int
main(void)
{
    test_init("test_merge");
    char dir[] = "/tmp/sos-test-merge-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    sos_store_t *store = NULL;
    CHECK_RC(sos_store_open(&store, dir, 64ULL << 20), SOS_OK);
    if (!store)
        return 1;
    sos_identity_t me, a, b, c;
    test_seed_identity(&me, 1);
    test_seed_identity(&a, 50);
    test_seed_identity(&b, 100);
    test_seed_identity(&c, 150);
    uint64_t now = 1800000000000ULL;
    sos_merge_ctx_t ctx = {.self_id = me.pk,
                           .now_ms = now,
                           .max_workers = 3,
                           .max_rooms = 100,
                           .max_rooms_per_origin = 2,
                           .max_room_lifetime_ms = 30ULL * 86400 * 1000,
                           .clock_skew_ms = 300000};
    sos_record_t rec;
    uint64_t version = 0;

    SECTION("newer version wins, same and older are refused");
    s_signed_worker(&rec, &a, 5);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_NEW);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_SAME);
    s_signed_worker(&rec, &a, 4);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_STALE);
    s_signed_worker(&rec, &a, 7);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_UPDATED);
    CHECK(s_has_worker(store, a.pk, &version) && version == 7);

    SECTION("records about this node from others are not taken");
    s_signed_worker(&rec, &me, 9);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_SELF);
    CHECK(!s_has_worker(store, me.pk, NULL));

    SECTION("a tombstone keeps a removed worker out of stale gossip");
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_del_worker(txn, a.pk), SOS_OK);
    CHECK_RC(sos_dir_tombstone_put(txn, a.pk, 7, now + 60000), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    s_signed_worker(&rec, &a, 7);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_TOMBSTONED);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_TOMBSTONED);
    CHECK(!s_has_worker(store, a.pk, NULL));

    SECTION("a newer record from the worker brings it back and clears the tombstone");
    s_signed_worker(&rec, &a, 8);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
    CHECK(s_has_worker(store, a.pk, &version) && version == 8);
    uint64_t ts_version, ts_expires;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_get(txn, a.pk, &ts_version, &ts_expires), SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);

    SECTION("the worker itself talking to us overrides its tombstone at the same version");
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_del_worker(txn, a.pk), SOS_OK);
    CHECK_RC(sos_dir_tombstone_put(txn, a.pk, 8, now + 60000), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_TOMBSTONED);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DIRECT, NULL) == SOS_MERGE_NEW);

    SECTION("an expired tombstone no longer blocks");
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_del_worker(txn, a.pk), SOS_OK);
    CHECK_RC(sos_dir_tombstone_put(txn, a.pk, 8, now - 1), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_NEW);

    SECTION("the worker cap holds");
    s_signed_worker(&rec, &b, 1);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_NEW);
    s_signed_worker(&rec, &c, 1);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_NEW);
    sos_identity_t d;
    test_seed_identity(&d, 200);
    s_signed_worker(&rec, &d, 1);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_CAP);
    CHECK(!s_has_worker(store, d.pk, NULL));

    SECTION("a removed worker refused at the cap keeps its tombstone, even talking to us");
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_put(txn, d.pk, 1, now + 60000), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DIRECT, NULL) == SOS_MERGE_CAP);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_get(txn, d.pk, &ts_version, &ts_expires), SOS_OK);
    sos_txn_abort(&txn);
    CHECK(ts_version == 1);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_TOMBSTONED); /* relayed */

    SECTION("rooms: newer version of the same owner wins; expired and impossible are refused");
    s_signed_room(&rec, &b, 2, "00000000000000aa", now - 1000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
    s_signed_room(&rec, &b, 3, "00000000000000aa", now - 1000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_UPDATED);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_SAME);
    s_signed_room(&rec, &b, 4, "00000000000000bb", now - 1000, now);
    rec.expires_at = now - 1;
    rec.created_at = now - 2000;
    CHECK_RC(sos_record_sign(&rec, &b), SOS_OK);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_EXPIRED);
    test_room(&rec, 5, "00000000000000bb"); /* created an hour in the future */
    rec.created_at = now + 3600 * 1000;
    rec.expires_at = now + 7200 * 1000;
    CHECK_RC(sos_record_sign(&rec, &b), SOS_OK);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_BAD_ROOM);

    SECTION("rooms: a creation conflict goes to the earlier creation, on every node");
    bool displaced = false;
    s_signed_room(&rec, &c, 2, "00000000000000aa", now - 5000, now); /* earlier than b's */
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, &displaced) == SOS_MERGE_UPDATED);
    CHECK(displaced);
    s_signed_room(&rec, &b, 6, "00000000000000aa", now - 1000, now); /* b's, later */
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, &displaced) == SOS_MERGE_CONFLICT_LOST);
    sos_record_t a_rec, b_rec;
    test_room(&a_rec, 1, "00000000000000cc");
    test_room(&b_rec, 1, "00000000000000cc");
    memcpy(a_rec.origin, b.pk, SOS_NODEID_BYTES);
    memcpy(b_rec.origin, c.pk, SOS_NODEID_BYTES);
    CHECK(sos_room_wins(&a_rec, &b_rec) != sos_room_wins(&b_rec, &a_rec));

    SECTION("rooms: the per-origin cap holds");
    s_signed_room(&rec, &c, 3, "00000000000000dd", now - 1000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
    s_signed_room(&rec, &c, 4, "00000000000000ee", now - 1000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_CAP);
    s_signed_room(&rec, &b, 7, "00000000000000ee", now - 1000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);

    SECTION("rooms: a take-over is refused to an origin at its per-origin cap");
    /*  c holds aa and dd (its cap is 2); an earlier claim by c on b's ee would win by the
        creation order, but would give c a third room. */
    s_signed_room(&rec, &c, 5, "00000000000000ee", now - 9000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, &displaced) == SOS_MERGE_CAP);
    CHECK(!displaced);
    CHECK(s_room_owner(store, "00000000000000ee", b.pk));

    SECTION("rooms: a claim dated long before the hash was first seen here never wins");
    sos_identity_t x;
    test_seed_identity(&x, 220);
    ctx.max_rooms_per_origin = 100;
    s_signed_room(&rec, &b, 8, "0000000000000f01", now - 1000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
    CHECK(!s_contested(store, "0000000000000f01"));
    s_signed_room(&rec, &x, 1, "0000000000000f01", now - 29ULL * 86400 * 1000, now);
    rec.expires_at = now + 3600 * 1000;
    CHECK_RC(sos_record_sign(&rec, &x), SOS_OK);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, &displaced) == SOS_MERGE_CONTESTED);
    CHECK(!displaced);
    CHECK(s_room_owner(store, "0000000000000f01", b.pk));
    CHECK(s_contested(store, "0000000000000f01"));
    /*  The same claim offered again is refused again (anti-entropy offers it each round). */
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_DELTA, NULL) == SOS_MERGE_CONTESTED);

    SECTION("rooms: within the spread bound an earlier honest creation still wins");
    /*  b's room first seen now; x's, created 30 s before b's (both within B), arrives 40 s
        later: it wins, as on a node that heard x's first. */
    s_signed_room(&rec, &b, 9, "0000000000000f02", now - 1000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
    sos_merge_ctx_t later = ctx;
    later.now_ms = now + 40 * 1000;
    s_signed_room(&rec, &x, 2, "0000000000000f02", now - 31 * 1000, now);
    CHECK(s_merge(store, &later, &rec, SOS_SRC_RUMOR, &displaced) == SOS_MERGE_UPDATED);
    CHECK(displaced);
    CHECK(s_room_owner(store, "0000000000000f02", x.pk));
    CHECK(!s_contested(store, "0000000000000f02"));
    /*  And the other order on another node ends the same way: b's later one loses. */
    s_signed_room(&rec, &b, 10, "0000000000000f02", now - 1000, now);
    CHECK(s_merge(store, &later, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_CONFLICT_LOST);

    SECTION("rooms: once held for longer than the spread bound, no claim moves the room");
    s_signed_room(&rec, &b, 11, "0000000000000f03", now - 1000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
    later.now_ms = now + SOS_ROOM_SPREAD_MS + 1;
    /*  created a second before b's: plausible by date, but too late here. */
    s_signed_room(&rec, &x, 3, "0000000000000f03", now - 2000, now);
    CHECK(s_merge(store, &later, &rec, SOS_SRC_RUMOR, &displaced) == SOS_MERGE_CONTESTED);
    CHECK(!displaced);
    CHECK(s_room_owner(store, "0000000000000f03", b.pk));
    CHECK(s_contested(store, "0000000000000f03"));
    /*  The owner's own newer record still updates it. */
    s_signed_room(&rec, &b, 12, "0000000000000f03", now - 1000, now);
    CHECK(s_merge(store, &later, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_UPDATED);

    SECTION(
        "rooms: the first-seen time goes with the room, so a new room of the hash starts afresh");
    {
        sos_txn_t *wtxn = NULL;
        CHECK_RC(sos_txn_begin(store, true, &wtxn), SOS_OK);
        CHECK_RC(sos_dir_del_room(wtxn, "0000000000000f03"), SOS_OK);
        CHECK_RC(sos_dir_room_local_get(wtxn, "0000000000000f03", NULL), SOS_ERR_NOT_FOUND);
        CHECK_RC(sos_txn_commit(&wtxn), SOS_OK);
    }
    s_signed_room(&rec, &x, 4, "0000000000000f03", now - 2000, now);
    CHECK(s_merge(store, &later, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
    CHECK(!s_contested(store, "0000000000000f03"));

    SECTION("rooms: a room stored before first-seen times were kept is held for good");
    {
        sos_txn_t *wtxn = NULL;
        s_signed_room(&rec, &b, 13, "0000000000000f04", now - 1000, now);
        CHECK_RC(sos_txn_begin(store, true, &wtxn), SOS_OK);
        CHECK_RC(sos_dir_put(wtxn, &rec), SOS_OK);
        CHECK_RC(sos_txn_commit(&wtxn), SOS_OK);
    }
    s_signed_room(&rec, &x, 5, "0000000000000f04", now - 2000, now);
    CHECK(s_merge(store, &ctx, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_CONTESTED);
    CHECK(s_room_owner(store, "0000000000000f04", b.pk));

    SECTION("rooms: origins not vouched for share a bounded pool");
    {
        sos_merge_ctx_t pool = ctx;
        pool.max_rooms_unvouched = 2;
        pool.max_workers = 100;
        sos_identity_t s1, s2, s3, live;
        test_seed_identity(&s1, 230);
        test_seed_identity(&s2, 231);
        test_seed_identity(&s3, 232);
        test_seed_identity(&live, 233);
        s_signed_room(&rec, &s1, 1, "0000000000000a01", now - 1000, now);
        CHECK(s_merge(store, &pool, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
        s_signed_room(&rec, &s2, 1, "0000000000000a02", now - 1000, now);
        CHECK(s_merge(store, &pool, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
        s_signed_room(&rec, &s3, 1, "0000000000000a03", now - 1000, now);
        CHECK(s_merge(store, &pool, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_UNVOUCHED);
        /*  A worker we only heard of is not vouched for; one we exchanged with lately is. */
        s_signed_worker(&rec, &live, 1);
        CHECK(s_merge(store, &pool, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
        s_signed_room(&rec, &live, 2, "0000000000000a04", now - 1000, now);
        CHECK(s_merge(store, &pool, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_UNVOUCHED);
        sos_txn_t *ptxn = NULL;
        sos_worker_local_t wl = {.last_ok = now - 1000};
        CHECK_RC(sos_txn_begin(store, true, &ptxn), SOS_OK);
        CHECK_RC(sos_dir_put_worker_local(ptxn, live.pk, &wl), SOS_OK);
        CHECK_RC(sos_txn_commit(&ptxn), SOS_OK);
        CHECK(s_merge(store, &pool, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
        /*  ... and not after SOS_ROOM_VOUCH_MS without an exchange. */
        sos_merge_ctx_t stale = pool;
        stale.now_ms = now + SOS_ROOM_VOUCH_MS;
        s_signed_room(&rec, &live, 3, "0000000000000a05", now - 1000, now);
        CHECK(s_merge(store, &stale, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_UNVOUCHED);
        /*  This node's own rooms never count against the pool. */
        s_signed_room(&rec, &me, 50, "0000000000000a06", now - 1000, now);
        CHECK(s_merge(store, &pool, &rec, SOS_SRC_LOCAL, NULL) == SOS_MERGE_NEW);
        /*  A pooled room that goes frees its place. */
        uint64_t pooled = 0;
        CHECK_RC(sos_txn_begin(store, true, &ptxn), SOS_OK);
        CHECK_RC(sos_dir_rooms_pooled(ptxn, &pooled), SOS_OK);
        CHECK(pooled == 2);
        CHECK_RC(sos_dir_del_room(ptxn, "0000000000000a01"), SOS_OK);
        CHECK_RC(sos_dir_rooms_pooled(ptxn, &pooled), SOS_OK);
        CHECK(pooled == 1);
        CHECK_RC(sos_txn_commit(&ptxn), SOS_OK);
        s_signed_room(&rec, &s3, 1, "0000000000000a03", now - 1000, now);
        CHECK(s_merge(store, &pool, &rec, SOS_SRC_RUMOR, NULL) == SOS_MERGE_NEW);
    }

    sos_store_destroy(&store);
    test_rmtree(dir);
    return test_done("test_merge");
}
