/*  test_core_digest.c: the gossip core's digest over a real LMDB store: digest versions
    from records, tombstones and gaps; the order and cap of the digest; the comparison of
    two digests; the gap table's cap, expiry, sweep and settling by exchange batches, as
    scripted sequences of records and times. */
#define _XOPEN_SOURCE 700
#include <unistd.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_core_digest.h"
#include "sos_store.h"

static sos_store_t *s_store;

/*  Put a signed worker (kind worker) or room record of id at version. */
static void
s_put(const sos_identity_t *id, bool worker, uint64_t version, uint64_t prev)
{
    sos_record_t rec;
    if (worker)
        test_worker(&rec, version, "tcp://127.0.0.1:9999");
    else {
        char hash[SOS_ROOMHASH_LEN + 1];
        snprintf(hash, sizeof hash, "%02x%02x00000000%04x", id->pk[0], id->pk[1],
                 (unsigned)version);
        test_room(&rec, version, hash);
    }
    rec.prev = prev;
    CHECK_RC(sos_record_sign(&rec, id), SOS_OK);
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_put(txn, &rec), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

static sos_txn_t *
s_read(void)
{
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(s_store, false, &txn), SOS_OK);
    return txn;
}

static uint64_t
s_version_in(const sos_digest_entry_t *d, uint32_t n, const uint8_t *origin)
{
    for (uint32_t i = 0; i < n; i++)
        if (memcmp(d[i].origin, origin, SOS_NODEID_BYTES) == 0)
            return d[i].version;
    return UINT64_MAX;
}

static sos_digest_entry_t
s_entry(const sos_identity_t *id, uint64_t version)
{
    sos_digest_entry_t e;
    memset(&e, 0, sizeof e);
    memcpy(e.origin, id->pk, SOS_NODEID_BYTES);
    e.version = version;
    return e;
}

/*  A digest entry saying the sender removed id at version. */
static sos_digest_entry_t
s_gone(const sos_identity_t *id, uint64_t version)
{
    sos_digest_entry_t e = s_entry(id, version);
    e.removed = true;
    return e;
}

static bool
s_removed_in(const sos_digest_entry_t *d, uint32_t n, const uint8_t *origin)
{
    for (uint32_t i = 0; i < n; i++)
        if (memcmp(d[i].origin, origin, SOS_NODEID_BYTES) == 0)
            return d[i].removed;
    return false;
}

int
main(void)
{
    test_init("test_core_digest");
    char dir[] = "/tmp/sos-test-core-digest-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    CHECK_RC(sos_store_open(&s_store, dir, 64ULL << 20), SOS_OK);
    if (!s_store)
        return 1;
    sos_identity_t me, a, b, c, r;
    test_seed_identity(&me, 1);
    test_seed_identity(&a, 50);
    test_seed_identity(&b, 100);
    test_seed_identity(&c, 150);
    test_seed_identity(&r, 200); /* owns rooms, is no worker */

    SECTION("digest versions: the highest held, a tombstone's if higher, a gap's if open");
    s_put(&a, true, 3, 2);
    s_put(&b, true, 5, 4);
    s_put(&r, false, 7, 6);
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_tombstone_put(txn, c.pk, 9, UINT64_MAX), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    sos_gaps_t *gaps = sos_gaps_new(1000, 2);
    CHECK(gaps);
    txn = s_read();
    CHECK(sos_digest_version(gaps, txn, a.pk) == 3);
    CHECK(sos_digest_version(gaps, txn, c.pk) == 9);
    CHECK(sos_digest_version(gaps, txn, me.pk) == 0);
    CHECK_RC(sos_gaps_set(gaps, b.pk, 2, 0), SOS_OK);
    CHECK(sos_digest_version(gaps, txn, b.pk) == 2);
    CHECK(sos_digest_version(NULL, txn, b.pk) == 5);

    SECTION("the digest names workers' origins first, then the others");
    uint32_t n = 0;
    sos_digest_entry_t *d = sos_digest_build(gaps, txn, &n);
    /*  a and b (workers) first; then, in key order, c (a removed worker: its tombstone
        keeps its origin, so that peers learn of the removal) and r (rooms only). */
    CHECK(d && n == 4);
    if (d && n == 4) {
        bool workers_first = (memcmp(d[0].origin, a.pk, SOS_NODEID_BYTES) == 0 ||
                              memcmp(d[0].origin, b.pk, SOS_NODEID_BYTES) == 0) &&
                             (memcmp(d[1].origin, a.pk, SOS_NODEID_BYTES) == 0 ||
                              memcmp(d[1].origin, b.pk, SOS_NODEID_BYTES) == 0);
        CHECK(workers_first);
        CHECK(memcmp(d[2].origin, d[3].origin, SOS_NODEID_BYTES) < 0);
        CHECK(s_version_in(d, n, a.pk) == 3);
        CHECK(s_version_in(d, n, b.pk) == 2); /* held at 5, but a hole below */
        CHECK(s_version_in(d, n, c.pk) == 9);
        CHECK(s_version_in(d, n, r.pk) == 7);
        /*  c's entry is a removal, so that a peer that lists c at 9 sees it. */
        CHECK(s_removed_in(d, n, c.pk));
        CHECK(!s_removed_in(d, n, a.pk) && !s_removed_in(d, n, b.pk) && !s_removed_in(d, n, r.pk));
    }
    free(d);
    sos_txn_abort(&txn);

    SECTION("an entry is a removal while a tombstone and no worker record are held");
    txn = s_read();
    sos_digest_entry_t e;
    sos_digest_entry(gaps, txn, c.pk, &e);
    CHECK(e.removed && e.version == 9);
    sos_digest_entry(gaps, txn, a.pk, &e);
    CHECK(!e.removed && e.version == 3);
    sos_digest_entry(gaps, txn, b.pk, &e); /* a gap claims less than held */
    CHECK(!e.removed && e.version == 2);
    sos_txn_abort(&txn);
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    /*  A worker removed at its record's version 6 whose room (one counter signs both) is
        held at 7: still a removal, at the origin's version. */
    CHECK_RC(sos_dir_tombstone_put(txn, r.pk, 6, UINT64_MAX), SOS_OK);
    sos_digest_entry(gaps, txn, r.pk, &e);
    CHECK(e.removed && e.version == 7);
    /*  A tombstone beside a worker record held (a newer record came): no removal. */
    CHECK_RC(sos_dir_tombstone_put(txn, a.pk, 2, UINT64_MAX), SOS_OK);
    sos_digest_entry(gaps, txn, a.pk, &e);
    CHECK(!e.removed && e.version == 3);
    sos_digest_entry(gaps, txn, me.pk, &e); /* nothing held: no removal */
    CHECK(!e.removed && e.version == 0);
    sos_txn_abort(&txn);

    SECTION("the gap table refuses a new gap at its cap, but moves an open one");
    CHECK_RC(sos_gaps_set(gaps, a.pk, 1, 0), SOS_OK);
    CHECK(sos_gaps_size(gaps) == 2);
    CHECK_RC(sos_gaps_set(gaps, r.pk, 1, 0), SOS_ERR_FULL);
    CHECK(!sos_gaps_get(gaps, r.pk, NULL));
    CHECK_RC(sos_gaps_set(gaps, a.pk, 2, 0), SOS_OK);
    uint64_t v = 0;
    CHECK(sos_gaps_get(gaps, a.pk, &v) && v == 2);
    sos_gaps_del(gaps, a.pk);
    CHECK(!sos_gaps_get(gaps, a.pk, NULL) && sos_gaps_size(gaps) == 1);

    SECTION("an exchange batch moves a gap up, and closes it at the highest version held");
    sos_record_t rec;
    test_worker(&rec, 3, "tcp://127.0.0.1:9999");
    memcpy(rec.origin, b.pk, SOS_NODEID_BYTES);
    txn = s_read();
    CHECK(sos_gaps_settle(gaps, txn, &rec, 10));
    CHECK(sos_gaps_get(gaps, b.pk, &v) && v == 3);
    rec.version = 3;
    CHECK(!sos_gaps_settle(gaps, txn, &rec, 10)); /* not above the gap: nothing */
    rec.version = 5;
    CHECK(sos_gaps_settle(gaps, txn, &rec, 10));
    CHECK(!sos_gaps_get(gaps, b.pk, NULL));
    CHECK(!sos_gaps_settle(gaps, txn, &rec, 10)); /* no gap: nothing */
    sos_txn_abort(&txn);

    SECTION("a gap expires after its TTL (20 intervals, ten minutes at least)");
    sos_gaps_t *g2 = sos_gaps_new(1000, SOS_GAPS_MAX);
    CHECK_RC(sos_gaps_set(g2, a.pk, 1, 5000), SOS_OK);
    CHECK_RC(sos_gaps_set(g2, a.pk, 2, 900000), SOS_OK); /* moving it keeps its expiry */
    txn = s_read();
    CHECK(sos_gaps_sweep(g2, txn, 5000 + SOS_GAP_TTL_MIN - 1) == 0);
    CHECK(sos_gaps_sweep(g2, txn, 5000 + SOS_GAP_TTL_MIN) == 1);
    CHECK(sos_gaps_size(g2) == 0);
    sos_gaps_destroy(&g2);
    g2 = sos_gaps_new(60000, SOS_GAPS_MAX); /* 20 minutes: above the floor */
    CHECK_RC(sos_gaps_set(g2, a.pk, 1, 0), SOS_OK);
    CHECK(sos_gaps_sweep(g2, txn, 20 * 60000 - 1) == 0);
    CHECK(sos_gaps_sweep(g2, txn, 20 * 60000) == 1);

    SECTION("the gaps of an origin of which nothing is held are dropped at once");
    CHECK_RC(sos_gaps_set(g2, me.pk, 4, 0), SOS_OK); /* nothing of me in the store */
    CHECK_RC(sos_gaps_set(g2, c.pk, 4, 0), SOS_OK);  /* a tombstone of c */
    CHECK_RC(sos_gaps_set(g2, a.pk, 1, 0), SOS_OK);
    CHECK(sos_gaps_sweep(g2, txn, 1) == 1);
    CHECK(!sos_gaps_get(g2, me.pk, NULL) && sos_gaps_get(g2, c.pk, NULL) &&
          sos_gaps_get(g2, a.pk, NULL));
    sos_txn_abort(&txn);
    sos_gaps_destroy(&g2);
    CHECK(g2 == NULL);
    sos_gaps_destroy(&g2); /* NULL-safe */

    SECTION("diff: give what the peer lacks, want what it has more of, never our own");
    sos_digest_entry_t mine[] = {s_entry(&b, 5), s_entry(&a, 3), s_entry(&me, 4), s_entry(&r, 7)};
    sos_digest_entry_t theirs[] = {s_entry(&c, 9), s_entry(&me, 6), s_entry(&a, 8), s_entry(&r, 7),
                                   s_entry(&b, 1)};
    sos_digest_entry_t give[4], want[5];
    uint32_t n_give = 0, n_want = 0;
    sos_digest_diff(me.pk, mine, 4, theirs, 5, give, &n_give, want, &n_want, NULL, NULL);
    CHECK(n_give == 1 && s_version_in(give, n_give, b.pk) == 1);
    CHECK(n_want == 2);
    CHECK(s_version_in(want, n_want, a.pk) == 3); /* ours: ask above it */
    CHECK(s_version_in(want, n_want, c.pk) == 0); /* we lack it */
    CHECK(s_version_in(want, n_want, me.pk) == UINT64_MAX);
    CHECK(s_version_in(want, n_want, r.pk) == UINT64_MAX);
    SECTION("diff: an origin only we know is given from 0; empty digests are fine");
    sos_digest_entry_t one[] = {s_entry(&a, 3)};
    sos_digest_diff(me.pk, one, 1, NULL, 0, give, &n_give, want, &n_want, NULL, NULL);
    CHECK(n_give == 1 && give[0].version == 0 && n_want == 0);
    sos_digest_diff(me.pk, NULL, 0, NULL, 0, give, &n_give, want, &n_want, NULL, NULL);
    CHECK(n_give == 0 && n_want == 0);
    sos_digest_entry_t mine_only_self[] = {s_entry(&me, 2)};
    sos_digest_entry_t theirs_self[] = {s_entry(&me, 9)};
    sos_digest_diff(me.pk, mine_only_self, 1, theirs_self, 1, give, &n_give, want, &n_want, NULL,
                    NULL);
    CHECK(n_give == 0 && n_want == 0);
    sos_digest_diff(me.pk, NULL, 0, theirs_self, 1, give, &n_give, want, &n_want, NULL, NULL);
    CHECK(n_want == 0);

    SECTION("diff: a peer's removal at or above the version we list is reported");
    {
        /*  a: we list 3, they removed 3 (the case the versions alone miss); b: they removed
            an older record than ours (our newer one refutes it: given, not reported); c: we
            removed it too; r: they removed a newer one (also wanted); me: we were removed. */
        sos_digest_entry_t m2[] = {s_entry(&a, 3), s_entry(&b, 5), s_gone(&c, 9), s_entry(&r, 7),
                                   s_entry(&me, 4)};
        sos_digest_entry_t t2[] = {s_gone(&me, 4), s_gone(&r, 8), s_gone(&c, 9), s_gone(&b, 4),
                                   s_gone(&a, 3)};
        sos_digest_entry_t gv[5], w2[5], rm[5];
        uint32_t n_rm = 99;
        sos_digest_diff(me.pk, m2, 5, t2, 5, gv, &n_give, w2, &n_want, rm, &n_rm);
        CHECK(n_rm == 3);
        CHECK(s_version_in(rm, n_rm, a.pk) == 3 && s_removed_in(rm, n_rm, a.pk));
        CHECK(s_version_in(rm, n_rm, r.pk) == 8);
        CHECK(s_version_in(rm, n_rm, me.pk) == 4);
        CHECK(s_version_in(rm, n_rm, b.pk) == UINT64_MAX);
        CHECK(s_version_in(rm, n_rm, c.pk) == UINT64_MAX);
        CHECK(n_give == 1 && s_version_in(gv, n_give, b.pk) == 4);
        CHECK(n_want == 1 && s_version_in(w2, n_want, r.pk) == 7);
        /*  The other way round: we removed what they list: nothing to report here (they
            see it when they compare). */
        sos_digest_entry_t m3[] = {s_gone(&a, 3)};
        sos_digest_entry_t t3[] = {s_entry(&a, 3)};
        sos_digest_diff(me.pk, m3, 1, t3, 1, gv, &n_give, w2, &n_want, rm, &n_rm);
        CHECK(n_rm == 0 && n_give == 0 && n_want == 0);
        CHECK(sos_digest_removed_here(&t3[0], &m3[0]) && !sos_digest_removed_here(&m3[0], &t3[0]));
    }

    SECTION("collect: the records above the version wanted, in version order");
    s_put(&r, false, 8, 7);
    s_put(&r, false, 9, 8);
    s_put(&r, false, 10, 9);
    sos_digest_entry_t ask[] = {s_entry(&r, 7), s_entry(&c, 0), s_entry(&a, 3)};
    sos_batch_t *batch = calloc(1, sizeof *batch);
    txn = s_read();
    sos_digest_collect(NULL, txn, ask, 3, batch);
    CHECK(batch->n == 3 && !batch->full); /* nothing of c (removed), nothing above a's 3 */
    for (uint32_t i = 0; i < batch->n && i < 3; i++) {
        sos_record_t got;
        CHECK_RC(sos_record_decode(&got, batch->wires[i], batch->lens[i]), SOS_OK);
        CHECK(got.version == 8 + i && memcmp(got.origin, r.pk, SOS_NODEID_BYTES) == 0);
    }
    sos_batch_release(batch);
    CHECK(batch->n == 0 && batch->bytes == NULL);
    SECTION("collect: never past our own gap in an origin");
    sos_gaps_t *g3 = sos_gaps_new(1000, SOS_GAPS_MAX);
    CHECK_RC(sos_gaps_set(g3, r.pk, 8, 0), SOS_OK);
    memset(batch, 0, sizeof *batch);
    sos_digest_collect(g3, txn, ask, 1, batch);
    CHECK(batch->n == 1 && batch->lens[0] > 0);
    sos_batch_release(batch);
    SECTION("collect: a full batch says so, and holds at most SOS_BATCH_MAX records");
    memset(batch, 0, sizeof *batch);
    for (uint32_t i = 0; i < SOS_BATCH_MAX; i++) /* the same origin asked again and again */
        sos_digest_collect(NULL, txn, ask, 1, batch);
    CHECK(batch->full && batch->n == SOS_BATCH_MAX);
    sos_batch_release(batch);
    free(batch);
    sos_gaps_destroy(&g3);
    sos_txn_abort(&txn);

    sos_gaps_destroy(&gaps);
    sos_store_destroy(&s_store);
    test_rmtree(dir);
    return test_done("test_core_digest");
}
