/*  test_core_remove.c: removing a worker from the directory, as the core's failure detector
    and endpoint rules do it, over a real LMDB store: the record goes, a tombstone stays at
    the right version, and stale copies stay out while newer ones come back. */
#define _XOPEN_SOURCE 700
#include <unistd.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_merge.h"
#include "sos_store.h"

static sos_store_t *s_store;

static void
s_put(const sos_identity_t *id, uint64_t version)
{
    sos_record_t rec;
    test_worker(&rec, version, "tcp://127.0.0.1:9999");
    CHECK_RC(sos_record_sign(&rec, id), SOS_OK);
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_put(txn, &rec), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

/*  Remove id with floor; *wrote as the call says. */
static void
s_remove(const sos_identity_t *id, uint64_t floor, bool *wrote)
{
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    CHECK_RC(sos_merge_remove_worker(txn, id->pk, floor, UINT64_MAX, wrote), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

/*  The tombstone's version, 0 if none; *listed whether the worker record is there. */
static uint64_t
s_tombstone(const sos_identity_t *id, bool *listed)
{
    sos_txn_t *txn = NULL;
    uint64_t version = 0, expires = 0;
    CHECK_RC(sos_txn_begin(s_store, false, &txn), SOS_OK);
    if (sos_dir_tombstone_get(txn, id->pk, &version, &expires) != SOS_OK)
        version = 0;
    *listed = sos_dir_get_worker(txn, id->pk, NULL, NULL) == SOS_OK;
    sos_txn_abort(&txn);
    return version;
}

static sos_merge_result_t
s_merge(const sos_identity_t *me, const sos_identity_t *id, uint64_t version, sos_source_t src)
{
    sos_record_t rec;
    test_worker(&rec, version, "tcp://127.0.0.1:9999");
    CHECK_RC(sos_record_sign(&rec, id), SOS_OK);
    sos_merge_ctx_t ctx = {.self_id = me->pk,
                           .now_ms = 1700000000000ULL,
                           .max_workers = 100,
                           .max_rooms = 100,
                           .max_rooms_per_origin = 10,
                           .max_room_lifetime_ms = 86400000,
                           .clock_skew_ms = 300000};
    sos_txn_t *txn = NULL;
    sos_merge_result_t result = SOS_MERGE_MAX;
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    CHECK_RC(sos_merge_record(txn, &ctx, &rec, src, &result, NULL, NULL), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    return result;
}

int
main(void)
{
    test_init("test_core_remove");
    char dir[] = "/tmp/sos-test-core-remove-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    CHECK_RC(sos_store_open(&s_store, dir, 64ULL << 20), SOS_OK);
    if (!s_store)
        return 1;
    sos_identity_t me, a, b, c;
    test_seed_identity(&me, 1);
    test_seed_identity(&a, 50);
    test_seed_identity(&b, 100);
    test_seed_identity(&c, 150);
    bool wrote = false, listed = true;

    SECTION("a failed worker: its record goes, a tombstone at its version stays");
    s_put(&a, 4);
    s_remove(&a, 0, &wrote);
    CHECK(wrote);
    CHECK(s_tombstone(&a, &listed) == 4 && !listed);
    SECTION("stale gossip does not bring it back; a newer record, or itself, does");
    CHECK(s_merge(&me, &a, 4, SOS_SRC_RUMOR) == SOS_MERGE_TOMBSTONED);
    CHECK(s_merge(&me, &a, 3, SOS_SRC_DELTA) == SOS_MERGE_TOMBSTONED);
    CHECK(s_merge(&me, &a, 5, SOS_SRC_RUMOR) == SOS_MERGE_NEW);
    s_remove(&a, 0, &wrote);
    CHECK(s_tombstone(&a, &listed) == 5 && !listed);
    CHECK(s_merge(&me, &a, 5, SOS_SRC_DIRECT) == SOS_MERGE_NEW);

    SECTION("nothing held and no floor: nothing written");
    s_remove(&b, 0, &wrote);
    CHECK(!wrote);
    CHECK(s_tombstone(&b, &listed) == 0 && !listed);

    SECTION("a floor: the tombstone at the higher of the floor and the version held");
    s_remove(&b, 7, &wrote); /* refused at first sight: nothing held */
    CHECK(wrote && s_tombstone(&b, &listed) == 7 && !listed);
    CHECK(s_merge(&me, &b, 7, SOS_SRC_RUMOR) == SOS_MERGE_TOMBSTONED);
    s_put(&c, 9);
    s_remove(&c, 6, &wrote); /* a copy older than the one held */
    CHECK(wrote && s_tombstone(&c, &listed) == 9 && !listed);

    sos_store_destroy(&s_store);
    test_rmtree(dir);
    return test_done("test_core_remove");
}
