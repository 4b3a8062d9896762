/*  test_core_check.c: the core's triage of records before their signatures are paid for
    (held, stale, tombstoned, forbidden endpoint, ours), over a real LMDB store, and the
    token bucket of the verification budget at given times. */
#define _XOPEN_SOURCE 700
#include <unistd.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_core_check.h"
#include "sos_store.h"

static void
s_worker(sos_record_t *rec, const sos_identity_t *id, uint64_t version, const char *url)
{
    test_worker(rec, version, url);
    CHECK_RC(sos_record_sign(rec, id), SOS_OK);
}

int
main(void)
{
    test_init("test_core_check");
    char dir[] = "/tmp/sos-test-core-check-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    sos_store_t *store = NULL;
    CHECK_RC(sos_store_open(&store, dir, 64ULL << 20), SOS_OK);
    if (!store)
        return 1;
    sos_identity_t me, a, c;
    test_seed_identity(&me, 1);
    test_seed_identity(&a, 50);
    test_seed_identity(&c, 150);
    const char *url = "tcp://127.0.0.1:9999";
    sos_record_t held, room, rec, have;
    s_worker(&held, &a, 3, url);
    test_room(&room, 4, "00000000000000a1");
    CHECK_RC(sos_record_sign(&room, &a), SOS_OK);
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_put(txn, &held), SOS_OK);
    CHECK_RC(sos_dir_put(txn, &room), SOS_OK);
    CHECK_RC(sos_dir_tombstone_put(txn, c.pk, 5, UINT64_MAX), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);

    SECTION("a record held byte for byte is not verified again");
    CHECK(sos_core_check_record(txn, me.pk, true, &held, &have) == SOS_CHECK_HELD);
    CHECK(sos_core_check_record(txn, me.pk, true, &room, &have) == SOS_CHECK_HELD);

    SECTION("older than the version held: stale; newer: verified");
    s_worker(&rec, &a, 2, url);
    CHECK(sos_core_check_record(txn, me.pk, true, &rec, &have) == SOS_CHECK_STALE);
    s_worker(&rec, &a, 4, url);
    CHECK(sos_core_check_record(txn, me.pk, true, &rec, &have) == SOS_CHECK_VERIFY);
    SECTION("the same version with other bytes is verified (the merge decides)");
    s_worker(&rec, &a, 3, "tcp://127.0.0.1:9998");
    CHECK(sos_core_check_record(txn, me.pk, true, &rec, &have) == SOS_CHECK_VERIFY);

    SECTION("a removed worker's record, not newer than its removal: tombstoned");
    s_worker(&rec, &c, 5, url);
    CHECK(sos_core_check_record(txn, me.pk, true, &rec, &have) == SOS_CHECK_TOMBSTONED);
    s_worker(&rec, &c, 6, url);
    CHECK(sos_core_check_record(txn, me.pk, true, &rec, &have) == SOS_CHECK_VERIFY);

    SECTION("a record naming an endpoint we may not connect to is skipped unverified");
    s_worker(&rec, &c, 7, url);
    CHECK(sos_core_check_record(txn, me.pk, false, &rec, &have) == SOS_CHECK_ENDPOINT);
    CHECK(sos_core_check_record(txn, me.pk, false, &held, &have) == SOS_CHECK_ENDPOINT);

    SECTION("our own records are always verified: the merge must see them");
    s_worker(&rec, &me, 1, url);
    CHECK(sos_core_check_record(txn, me.pk, false, &rec, &have) == SOS_CHECK_VERIFY);
    sos_txn_abort(&txn);

    SECTION("the budget starts full, refills at its rate, and bursts one second at most");
    double tokens = 0;
    uint64_t last = 0;
    CHECK(sos_core_tokens_take(&tokens, &last, 10, 10, 1000));
    CHECK(!sos_core_tokens_take(&tokens, &last, 10, 1, 1000));
    CHECK(!sos_core_tokens_take(&tokens, &last, 10, 1, 1050)); /* half a token */
    CHECK(sos_core_tokens_take(&tokens, &last, 10, 1, 1100));
    CHECK(!sos_core_tokens_take(&tokens, &last, 10, 11, 100000)); /* never above the rate */
    CHECK(sos_core_tokens_take(&tokens, &last, 10, 10, 100000));
    CHECK(!sos_core_tokens_take(&tokens, &last, 10, 1, 100000));
    SECTION("a refused take takes nothing");
    CHECK(!sos_core_tokens_take(&tokens, &last, 10, 6, 100500)); /* 5 there */
    CHECK(sos_core_tokens_take(&tokens, &last, 10, 5, 100500));
    CHECK(!sos_core_tokens_take(&tokens, &last, 10, 1, 100500));

    sos_store_destroy(&store);
    test_rmtree(dir);
    return test_done("test_core_check");
}
