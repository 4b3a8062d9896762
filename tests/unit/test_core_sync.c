/*  test_core_sync.c: the gossip core's exchange decisions over a real LMDB store, as
    scripted inputs and the results expected: the DELTA for a peer's digest (the records it
    lacks, what we want, the removals it shows), under a byte budget and a gap; the
    DELTA_ACK for what a DELTA wants; when a SYNC is answered in sync, and whose self
    record is taken; the triage of a message's records before any signature is checked,
    their verification and the gaps they settle; what becomes of a verified record (the
    endpoint policy, probation, an endpoint another worker holds, no resurrection by stale
    copies, the gap a rumor opens); what a suspect named by a peer means here; and the failure
    detector's shared rules: whom a SYNC names, who confirms a suspicion, probe first or
    count, when to remove and what a removal leaves named. */
#define _XOPEN_SOURCE 700
#include <unistd.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_core_fd.h"
#include "sos_core_sync.h"
#include "sos_store.h"

static sos_store_t *s_store;

/*  Put a signed record of id at version: a worker record, or a room (one per version). */
static void
s_put(const sos_identity_t *id, bool worker, uint64_t version)
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
    CHECK_RC(sos_record_sign(&rec, id), SOS_OK);
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_put(txn, &rec), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

static sos_digest_entry_t
s_entry(const sos_identity_t *id, uint64_t version, bool removed)
{
    sos_digest_entry_t e;
    memset(&e, 0, sizeof e);
    memcpy(e.origin, id->pk, SOS_NODEID_BYTES);
    e.version = version;
    e.removed = removed;
    return e;
}

/*  The version of record i of a batch, and whether origin signed it. */
static uint64_t
s_version_of(const sos_batch_t *b, uint32_t i, const sos_identity_t *origin)
{
    sos_record_t got;
    if (sos_record_decode(&got, b->wires[i], b->lens[i]) != SOS_OK ||
        memcmp(got.origin, origin->pk, SOS_NODEID_BYTES) != 0)
        return UINT64_MAX;
    return got.version;
}

/*  A signed worker record of id at version naming url, decoded as a message carries it. */
static void
s_signed(sos_record_t *rec, const sos_identity_t *id, uint64_t version, const char *url)
{
    test_worker(rec, version, url);
    CHECK_RC(sos_record_sign(rec, id), SOS_OK);
}

static bool
s_all_good(void *arg, const sos_record_t *rec)
{
    (void)arg;
    (void)rec;
    return true;
}

/*  End the read transaction, remove c's worker record with a tombstone at 5 (as a removal
    does), and read again. */
static void
s_tombstone_c(sos_txn_t **txn, const sos_identity_t *c)
{
    sos_txn_abort(txn);
    CHECK_RC(sos_txn_begin(s_store, true, txn), SOS_OK);
    CHECK_RC(sos_dir_del_worker(*txn, c->pk), SOS_OK);
    CHECK_RC(sos_dir_tombstone_put(*txn, c->pk, 5, UINT64_MAX), SOS_OK);
    CHECK_RC(sos_txn_commit(txn), SOS_OK);
    CHECK_RC(sos_txn_begin(s_store, false, txn), SOS_OK);
}

/*  A peer table as scripted by a case: who is known, how many are on probation, and which
    url another worker answers at. */
typedef struct {
    const uint8_t *known;
    uint32_t probation;
    const char *answered_url;
    const uint8_t *answered_by;
} s_peers_t;

static bool
s_known(void *arg, const uint8_t origin[SOS_NODEID_BYTES])
{
    const s_peers_t *p = arg;
    return p->known && memcmp(p->known, origin, SOS_NODEID_BYTES) == 0;
}

static uint32_t
s_probation(void *arg)
{
    return ((const s_peers_t *)arg)->probation;
}

static bool
s_answers_at(void *arg, const char *url, const uint8_t origin[SOS_NODEID_BYTES])
{
    const s_peers_t *p = arg;
    return p->answered_url && strcmp(url, p->answered_url) == 0 &&
           memcmp(p->answered_by, origin, SOS_NODEID_BYTES) != 0;
}

/*  Take rec from src in a write transaction of its own, committed. */
static sos_take_result_t
s_take(const sos_sync_ctx_t *ctx, const sos_sync_take_ctx_t *tc, const sos_record_t *rec,
       sos_source_t src)
{
    sos_take_result_t out;
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    CHECK_RC(sos_core_sync_take(ctx, tc, txn, rec, src, &out), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    return out;
}

/*  The failure detector's shared rules (sos_core_fd.h), over a store that holds a up to
    3, b at 2, c at 4 and our own record at 6. */
static void
s_fd_rules(sos_txn_t *txn, const sos_identity_t *me, const sos_identity_t *a,
           const sos_identity_t *b, const sos_identity_t *c)
{
    const sos_fd_config_t cfg = {
        .interval_ms = 1000, .exchange_timeout_ms = 2000, .max_failures = 3};
    sos_sync_ctx_t ctx = {.self_id = me->pk};
    const sos_core_fd_who_t worker = {.listed = true}, genesis = {.listed = true, .genesis = true},
                            address = {0};

    SECTION("fd: a SYNC names a listed worker that failed here, at the highest version held");
    sos_fd_peer_t p = {0};
    sos_digest_entry_t e;
    CHECK(!sos_core_fd_names(txn, a->pk, &worker, &p, 1000, &e)); /* never failed: not named */
    p.fail_count = 1;
    p.suspect_version = 1; /* the suspicion's own version is not what is named */
    p.suspect_mono = 700;
    CHECK(sos_core_fd_names(txn, a->pk, &worker, &p, 1000, &e));
    CHECK(memcmp(e.origin, a->pk, SOS_NODEID_BYTES) == 0 && e.version == 3 && !e.removed);
    CHECK(e.age_ms == 300);                                        /* suspected here since 700 */
    CHECK(!sos_core_fd_names(txn, a->pk, &genesis, &p, 1000, &e)); /* never removed: never named */
    CHECK(!sos_core_fd_names(txn, a->pk, &address, &p, 1000, &e)); /* not a worker we list */

    SECTION("fd: a removal is named for SOS_NAME_REMOVED_ROUNDS rounds, once per origin");
    sos_core_fd_removed_t rm;
    memset(&rm, 0, sizeof rm);
    sos_core_fd_name_removed(&rm, c->pk, 0, 1000, 5000, 5000); /* nothing held: nothing named */
    sos_digest_entry_t sus[SOS_SUSPECTS_MAX];
    CHECK(sos_core_fd_suspects_removed(&rm, 5000, sus, 0) == 0);
    sos_core_fd_name_removed(&rm, c->pk, 4, 1000, 5000, 5000);
    sos_core_fd_name_removed(&rm, b->pk, 2, 1000, 4500, 6000); /* suspected from 4500 */
    sos_core_fd_name_removed(&rm, c->pk, 4, 1000, 7000, 7000); /* again: its own slot, renewed */
    CHECK(sos_core_fd_suspects_removed(&rm, 7000, sus, 0) == 2);
    CHECK((sus[0].age_ms == 2500 && sus[1].age_ms == 0) ||
          (sus[0].age_ms == 0 && sus[1].age_ms == 2500)); /* a removal's age: its suspicion's */
    sus[0] = s_entry(c, 4, false); /* c listed again and failing: named once, as held */
    uint32_t n = sos_core_fd_suspects_removed(&rm, 7000, sus, 1);
    CHECK(n == 2 && memcmp(sus[1].origin, b->pk, SOS_NODEID_BYTES) == 0 && sus[1].version == 2);
    n = sos_core_fd_suspects_removed(&rm, 6000 + 20 * 1000, sus, 0);
    CHECK(n == 1 && memcmp(sus[0].origin, c->pk, SOS_NODEID_BYTES) == 0); /* b's time is up */
    CHECK(sos_core_fd_suspects_removed(&rm, 7000 + 20 * 1000, sus, 0) == 0);
    for (uint8_t i = 0; i < 2 * SOS_NAME_REMOVED_MAX; i++) { /* full: the first to end goes */
        uint8_t id[SOS_NODEID_BYTES] = {i + 1};
        sos_core_fd_name_removed(&rm, id, 1, 1000, 10000 + i, 10000 + i);
    }
    n = sos_core_fd_suspects_removed(&rm, 10000, sus, 0);
    CHECK(n == SOS_SUSPECTS_MAX && sus[0].origin[0] > SOS_NAME_REMOVED_MAX);

    SECTION("fd: a named worker is suspected here; who confirms it");
    sos_core_fd_namer_t by = {.suspect = worker, .namer = b->pk, .namer_answered = true};
    memset(&p, 0, sizeof p);
    uint64_t held = 0;
    e = s_entry(c, 4, false);
    CHECK(sos_core_fd_named(&ctx, txn, &e, &by, &p, 0, 500, &held) == SOS_NAMED_SUSPECT);
    CHECK(held == 4 && p.suspect_mono == 500 && p.suspect_version == 4 && p.probe);
    CHECK(p.n_confirm == 1 && memcmp(p.confirm[0], b->pk, SOS_FD_CONFIRM_PREFIX) == 0);
    by.namer = a->pk;
    by.namer_answered = false; /* a fresh key, or one that never answered us: no confirmation */
    CHECK(sos_core_fd_named(&ctx, txn, &e, &by, &p, 0, 900, NULL) == SOS_NAMED_SUSPECT);
    CHECK(p.n_confirm == 1 && p.suspect_mono == 500);

    SECTION("fd: a genesis node named, or a namer naming itself, is ignored; we refute");
    memset(&p, 0, sizeof p);
    by = (sos_core_fd_namer_t){.suspect = genesis, .namer = b->pk, .namer_answered = true};
    CHECK(sos_core_fd_named(&ctx, txn, &e, &by, &p, 0, 500, NULL) == SOS_NAMED_IGNORE);
    CHECK(!p.suspect_mono && !p.probe && p.n_confirm == 0);
    by = (sos_core_fd_namer_t){.suspect = worker, .namer = c->pk, .namer_answered = true};
    CHECK(sos_core_fd_named(&ctx, txn, &e, &by, &p, 0, 500, NULL) == SOS_NAMED_IGNORE);
    CHECK(!p.suspect_mono && p.n_confirm == 0);
    e.removed = true; /* the same in a digest's removal */
    CHECK(sos_core_fd_named(&ctx, txn, &e, &by, &p, 0, 500, NULL) == SOS_NAMED_IGNORE);
    by.suspect = address;
    CHECK(sos_core_fd_named(&ctx, txn, &e, &by, NULL, 0, 500, NULL) == SOS_NAMED_IGNORE);
    e = s_entry(me, 6, false);
    CHECK(sos_core_fd_named(&ctx, txn, &e, &by, NULL, 0, 500, &held) == SOS_NAMED_REFUTE &&
          held == 6);

    SECTION("fd: a first failure of a healthy, listed worker waits for a probe; others count");
    sos_fd_t fd = {0};
    memset(&p, 0, sizeof p);
    CHECK(sos_core_fd_probe_first(&fd, &p, &worker, 3));
    CHECK(!sos_core_fd_probe_first(&fd, &p, &worker, 0));  /* probes off */
    CHECK(!sos_core_fd_probe_first(&fd, &p, &genesis, 3)); /* backs off instead */
    CHECK(!sos_core_fd_probe_first(&fd, &p, &address, 3));
    p.suspect_mono = 1; /* named by others: a suspect here too, its failures count at once */
    CHECK(!sos_core_fd_probe_first(&fd, &p, &worker, 3));
    p.suspect_mono = 0;
    p.fail_count = 1;
    CHECK(!sos_core_fd_probe_first(&fd, &p, &worker, 3));
    p.fail_count = 0;
    fd.health = 1; /* we lag: the failure is withheld anyway */
    CHECK(!sos_core_fd_probe_first(&fd, &p, &worker, 3));

    SECTION("fd: failures count to a suspicion, then to a removal once it outlived its timeout");
    sos_core_fd_fail_t f;
    sos_core_fd_failure(&fd, &cfg, &p, &worker, false, 4, 10, 1000, &f);
    CHECK(f.fd == SOS_FD_WITHHELD && p.fail_count == 0 && !f.remove && !f.retry_mono);
    sos_core_fd_failure(&fd, &cfg, &p, &worker, true, 4, 10, 1000, &f); /* a probe's verdict */
    CHECK(f.fd == SOS_FD_SUSPECTED && p.fail_count == 1 && p.suspect_version == 4 && !f.remove);
    fd.health = 0;
    sos_core_fd_failure(&fd, &cfg, &p, &worker, false, 4, 10, 2000, &f);
    CHECK(f.fd == SOS_FD_COUNTED && !f.remove);
    uint64_t t = sos_fd_suspicion_timeout(&fd, &cfg, &p, 10);
    sos_core_fd_failure(&fd, &cfg, &p, &worker, false, 4, 10, 1000 + t - 1, &f);
    CHECK(p.fail_count == 3 && !f.remove); /* enough failures, not yet long enough */
    sos_core_fd_failure(&fd, &cfg, &p, &worker, false, 4, 10, 1000 + t, &f);
    CHECK(f.remove && sos_core_fd_removable(&fd, &cfg, &p, &worker, 10, 1000 + t));
    CHECK(!sos_core_fd_removable(&fd, &cfg, &p, &genesis, 10, 1000 + t));

    SECTION("fd: a genesis node is never removed; it is retried after a growing backoff");
    memset(&p, 0, sizeof p);
    fd.health = 2; /* never withheld either */
    uint64_t last = 0;
    for (uint64_t now = 1000; now < 1000 + 10 * t; now += 1000) {
        sos_core_fd_failure(&fd, &cfg, &p, &genesis, false, 4, 10, now, &f);
        CHECK(f.fd == SOS_FD_COUNTED && !f.remove && !p.suspect_mono);
        CHECK(f.retry_mono - now == sos_fd_genesis_backoff(&cfg, p.fail_count));
        CHECK(f.retry_mono - now >= last);
        last = f.retry_mono - now;
    }
    CHECK(last > cfg.interval_ms);
}

int
main(void)
{
    test_init("test_core_sync");
    char dir[] = "/tmp/sos-test-core-sync-XXXXXX";
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
    /*  We hold a's rooms 1 and 2 and its worker record 3, b's worker record 2, c's worker
        record 4, and our own at 6. */
    s_put(&a, false, 1);
    s_put(&a, false, 2);
    s_put(&a, true, 3);
    s_put(&b, true, 2);
    s_put(&c, true, 4);
    s_put(&me, true, 6);
    sos_sync_ctx_t ctx = {.self_id = me.pk};
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(s_store, false, &txn), SOS_OK);

    SECTION("a SYNC is answered in sync only if both the hash and the count are ours");
    uint8_t h1[SOS_DIGEST_HASH_BYTES] = {1, 2, 3}, h2[SOS_DIGEST_HASH_BYTES] = {1, 2, 4};
    CHECK(sos_core_sync_in_sync(h1, 5, h1, 5));
    CHECK(!sos_core_sync_in_sync(h1, 5, h2, 5));
    CHECK(!sos_core_sync_in_sync(h1, 5, h1, 6)); /* equal hashes, another count */
    SECTION("a SYNC's self record is taken only if it is its sender's worker record");
    sos_record_t self_rec;
    s_signed(&self_rec, &a, 3, "tcp://127.0.0.1:9999");
    CHECK(sos_core_sync_self_ok(&self_rec, a.pk));
    CHECK(!sos_core_sync_self_ok(&self_rec, b.pk)); /* a's, relayed by b */
    self_rec.kind = SOS_REC_ROOM;
    CHECK(!sos_core_sync_self_ok(&self_rec, a.pk));

    SECTION("a peer that lacks a's 3 records gets exactly those, in version order");
    /*  The peer lists nothing of a, b at 5 (ahead), us at 9 (a record of ours we lack: never
        wanted, only we sign ours), c removed at 4, and knows us at 6. */
    uint32_t n_mine = 0;
    sos_digest_entry_t *mine = sos_digest_build(NULL, txn, &n_mine);
    CHECK(mine && n_mine == 4);
    sos_digest_entry_t theirs[] = {s_entry(&b, 5, false), s_entry(&me, 9, false),
                                   s_entry(&c, 4, true)};
    sos_sync_delta_t d;
    CHECK_RC(sos_core_sync_delta(&ctx, txn, mine, n_mine, theirs, 3, &d), SOS_OK);
    CHECK(d.batch.n == 3 && !d.more);
    for (uint32_t i = 0; i < d.batch.n && i < 3; i++)
        CHECK(s_version_of(&d.batch, i, &a) == i + 1);
    /*  What we lack: b above our 2; nothing of our own origin. */
    CHECK(d.n_want == 1);
    CHECK(memcmp(d.want[0].origin, b.pk, SOS_NODEID_BYTES) == 0 && d.want[0].version == 2);
    /*  The peer removed c at the version we list it at: reported, never acted on here. */
    CHECK(d.n_removed == 1);
    CHECK(memcmp(d.removed[0].origin, c.pk, SOS_NODEID_BYTES) == 0 && d.removed[0].version == 4);
    uint32_t first_two = (uint32_t)(d.batch.lens[0] + d.batch.lens[1]);
    sos_sync_delta_release(&d);
    CHECK(d.batch.n == 0 && d.want == NULL && d.removed == NULL);

    SECTION("a digest longer than any peer may send is refused, nothing allocated for it");
    CHECK_RC(sos_core_sync_delta(&ctx, txn, mine, n_mine, theirs, SOS_DIGEST_MAX + 1, &d),
             SOS_ERR_TOO_LARGE);
    CHECK(d.batch.n == 0 && d.want == NULL && d.removed == NULL);

    SECTION("a peer as far as we are on every origin gets nothing and is asked for nothing");
    sos_digest_entry_t same[4];
    memcpy(same, mine, sizeof same);
    CHECK_RC(sos_core_sync_delta(&ctx, txn, mine, n_mine, same, 4, &d), SOS_OK);
    CHECK(d.batch.n == 0 && d.n_want == 0 && d.n_removed == 0 && !d.more);
    sos_sync_delta_release(&d);

    SECTION("a stale removal (below the version we hold) is no report: our record goes");
    sos_digest_entry_t stale[] = {s_entry(&c, 3, true)};
    CHECK_RC(sos_core_sync_delta(&ctx, txn, mine, n_mine, stale, 1, &d), SOS_OK);
    CHECK(d.n_removed == 0);
    bool gives_c = false;
    for (uint32_t i = 0; i < d.batch.n; i++)
        gives_c = gives_c || s_version_of(&d.batch, i, &c) == 4;
    CHECK(gives_c);
    sos_sync_delta_release(&d);

    SECTION("under a byte budget the DELTA stops at the budget and says more");
    sos_sync_ctx_t tight = {.self_id = me.pk, .max_bytes = first_two};
    CHECK_RC(sos_core_sync_delta(&tight, txn, mine, n_mine, theirs, 3, &d), SOS_OK);
    CHECK(d.batch.n == 2 && d.more && d.batch.used <= first_two);
    CHECK(s_version_of(&d.batch, 0, &a) == 1 && s_version_of(&d.batch, 1, &a) == 2);
    CHECK(d.n_want == 1); /* the wants go whole: they are bounded by the digest */
    sos_sync_delta_release(&d);
    sos_sync_ctx_t one_short = {.self_id = me.pk, .max_bytes = first_two - 1};
    CHECK_RC(sos_core_sync_delta(&one_short, txn, mine, n_mine, theirs, 3, &d), SOS_OK);
    CHECK(d.batch.n == 1 && d.more);
    sos_sync_delta_release(&d);

    SECTION("never past our own gap: the peer would take the hole as held");
    sos_gaps_t *gaps = sos_gaps_new(1000, SOS_GAPS_MAX);
    CHECK(gaps);
    CHECK_RC(sos_gaps_set(gaps, a.pk, 1, 0), SOS_OK);
    sos_sync_ctx_t gapped = {.self_id = me.pk, .gaps = gaps};
    free(mine);
    mine = sos_digest_build(gaps, txn, &n_mine); /* a at 1: the gap's */
    sos_digest_entry_t lacks_a[] = {s_entry(&b, 2, false), s_entry(&c, 4, false),
                                    s_entry(&me, 6, false)};
    CHECK_RC(sos_core_sync_delta(&gapped, txn, mine, n_mine, lacks_a, 3, &d), SOS_OK);
    CHECK(d.batch.n == 1 && !d.more && s_version_of(&d.batch, 0, &a) == 1);
    sos_sync_delta_release(&d);

    SECTION("a DELTA_ACK carries the records asked for, above the version asked");
    sos_digest_entry_t want[] = {s_entry(&a, 1, false), s_entry(&b, 2, false)};
    CHECK_RC(sos_core_sync_delta_ack(&ctx, txn, want, 2, &d), SOS_OK);
    CHECK(d.batch.n == 2 && !d.more && d.n_want == 0);
    CHECK(s_version_of(&d.batch, 0, &a) == 2 && s_version_of(&d.batch, 1, &a) == 3);
    sos_sync_delta_release(&d);
    CHECK_RC(sos_core_sync_delta_ack(&gapped, txn, want, 2, &d), SOS_OK);
    CHECK(d.batch.n == 0); /* a is held up to 1 only: nothing above it to give */
    sos_sync_delta_release(&d);
    sos_sync_ctx_t one = {.self_id = me.pk, .max_bytes = 1};
    CHECK_RC(sos_core_sync_delta_ack(&one, txn, want, 2, &d), SOS_OK);
    CHECK(d.batch.n == 0 && d.more); /* not even one record fits: the peer asks again */
    sos_sync_delta_release(&d);

    SECTION("a suspect named: ourselves refute, a listed worker is suspected at our version");
    uint64_t held = 0;
    sos_digest_entry_t named = s_entry(&me, 6, false);
    CHECK(sos_core_sync_named(&ctx, txn, &named, false, &held) == SOS_NAMED_REFUTE && held == 6);
    named = s_entry(&c, 4, false);
    CHECK(sos_core_sync_named(&ctx, txn, &named, true, &held) == SOS_NAMED_SUSPECT && held == 4);
    named = s_entry(&c, 7, true); /* a removal above what we hold */
    CHECK(sos_core_sync_named(&ctx, txn, &named, true, &held) == SOS_NAMED_SUSPECT && held == 4);
    SECTION("a suspicion of an older record than we hold, or of nobody we list, is ignored");
    named = s_entry(&a, 2, false); /* we hold a at 3: a signed that after the sender heard */
    CHECK(sos_core_sync_named(&ctx, txn, &named, true, &held) == SOS_NAMED_IGNORE && held == 3);
    named = s_entry(&c, 4, false);
    CHECK(sos_core_sync_named(&ctx, txn, &named, false, NULL) == SOS_NAMED_IGNORE);
    s_fd_rules(txn, &me, &a, &b, &c);

    SECTION("triage: held, stale and tombstoned records are not verified, nor merged");
    s_tombstone_c(&txn, &c);
    sos_record_t recs[5];
    CHECK_RC(sos_dir_get_worker(txn, a.pk, &recs[0], NULL), SOS_OK); /* held byte for byte */
    s_signed(&recs[1], &a, 2, "tcp://127.0.0.1:9999");               /* stale: a is at 3 */
    s_signed(&recs[2], &c, 4, "tcp://127.0.0.1:9999");  /* c removed at 5: no resurrection */
    s_signed(&recs[3], &b, 3, "tcp://127.0.0.1:9999");  /* new: verify, then merge */
    s_signed(&recs[4], &me, 5, "tcp://127.0.0.1:9999"); /* ours: always verified */
    sos_sync_ctx_t lan = {.self_id = me.pk, .allow_private = true};
    uint8_t checks[5];
    sos_sync_triage_t t;
    CHECK_RC(sos_core_sync_triage(&lan, txn, recs, 5, checks, &t), SOS_OK);
    CHECK(checks[0] == SOS_CHECK_HELD && checks[1] == SOS_CHECK_STALE &&
          checks[2] == SOS_CHECK_TOMBSTONED && checks[3] == SOS_CHECK_VERIFY &&
          checks[4] == SOS_CHECK_VERIFY);
    CHECK(t.verify == 2 && t.held == 1 && t.stale == 1 && t.tombstoned == 1 && t.endpoint == 0);
    SECTION("triage: a record naming an endpoint we may not connect to is refused unchecked");
    CHECK_RC(sos_core_sync_triage(&ctx, txn, &recs[3], 1, checks, &t), SOS_OK); /* public */
    CHECK(checks[0] == SOS_CHECK_ENDPOINT && t.endpoint == 1 && t.verify == 0);
    CHECK_RC(sos_core_sync_triage(&ctx, txn, &recs[4], 1, checks, &t), SOS_OK);
    CHECK(checks[0] == SOS_CHECK_VERIFY); /* our own: the merge must see a counter ahead */

    SECTION("verify: only what triage left, and one bad signature refuses the message");
    CHECK_RC(sos_core_sync_triage(&lan, txn, recs, 5, checks, &t), SOS_OK);
    uint32_t checked = 0;
    CHECK_RC(sos_core_sync_verify(recs, 5, checks, NULL, NULL, &checked), SOS_OK);
    CHECK(checked == 2);
    recs[3].wire[recs[3].wire_len - 1] ^= 1; /* its signature's last byte */
    CHECK_RC(sos_core_sync_verify(recs, 5, checks, NULL, NULL, &checked), SOS_ERR_SIGNATURE);
    CHECK(checked == 1);
    /*  Bytes the caller knows verified already (the simulator's pool) are not checked. */
    CHECK_RC(sos_core_sync_verify(recs, 5, checks, s_all_good, NULL, &checked), SOS_OK);
    CHECK(checked == 0);
    recs[1].wire[recs[1].wire_len - 1] ^= 1; /* stale: never checked, so never refused */
    recs[3].wire[recs[3].wire_len - 1] ^= 1;
    CHECK_RC(sos_core_sync_verify(recs, 5, checks, NULL, NULL, &checked), SOS_OK);

    SECTION("settle: a held or verified record of a batch moves its origin's gap");
    CHECK_RC(sos_gaps_set(gaps, b.pk, 1, 0), SOS_OK);
    checks[3] = SOS_CHECK_STALE; /* unverified: its version tells nothing */
    CHECK(!sos_core_sync_settle(gaps, txn, &recs[3], 1, &checks[3], 0));
    checks[3] = SOS_CHECK_HELD;
    CHECK(sos_core_sync_settle(gaps, txn, &recs[3], 1, &checks[3], 0));
    CHECK(!sos_gaps_get(gaps, b.pk, NULL)); /* b's 2 is the highest held: closed */
    CHECK(!sos_core_sync_settle(NULL, txn, &recs[3], 1, &checks[3], 0));

    free(mine);
    sos_txn_abort(&txn);

    SECTION("take: a record naming an endpoint we may not connect to is refused");
    sos_identity_t dd, e;
    test_seed_identity(&dd, 180);
    test_seed_identity(&e, 210);
    s_peers_t pt = {0};
    sos_sync_peers_t peers = {
        .arg = &pt, .known = s_known, .probation = s_probation, .answers_at = s_answers_at};
    sos_merge_ctx_t mctx = {.self_id = me.pk,
                            .now_ms = 1700000000000ULL,
                            .max_workers = 8,
                            .max_rooms = 100,
                            .max_rooms_per_origin = 100,
                            .max_room_lifetime_ms = 30ULL * 86400 * 1000,
                            .clock_skew_ms = 300000};
    sos_sync_take_ctx_t tc = {.merge = &mctx,
                              .peers = &peers,
                              .our_url = "tcp://10.0.0.1:7400",
                              .tombstone_expires = UINT64_MAX};
    sos_record_t rd;
    s_signed(&rd, &dd, 1, "tcp://127.0.0.1:7401");
    sos_take_result_t out = s_take(&ctx, &tc, &rd, SOS_SRC_DELTA); /* ctx: public only */
    CHECK(out.take == SOS_TAKE_BAD_ENDPOINT);
    sos_record_t mine_rec;
    s_signed(&mine_rec, &me, 7, "tcp://127.0.0.1:7400");
    out = s_take(&ctx, &tc, &mine_rec, SOS_SRC_DELTA); /* ours: the merge decides */
    CHECK(out.take == SOS_TAKE_MERGED && out.merge == SOS_MERGE_SELF);

    SECTION("take: a new worker key is not accepted while every probation slot is taken");
    pt.probation = 2; /* the cap: a quarter of 8 */
    out = s_take(&lan, &tc, &rd, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_PROBATION && out.probation_cap == 2);
    CHECK_RC(sos_txn_begin(s_store, false, &txn), SOS_OK);
    CHECK(sos_dir_get_worker(txn, dd.pk, NULL, NULL) == SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);
    pt.known = dd.pk; /* a peer of ours already, or a genesis node: no new key */
    out = s_take(&lan, &tc, &rd, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_MERGED && out.merge == SOS_MERGE_NEW);
    pt.known = NULL;
    s_signed(&rd, &dd, 2, "tcp://127.0.0.1:7401"); /* held already: weighed by the merge */
    out = s_take(&lan, &tc, &rd, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_MERGED && out.merge == SOS_MERGE_UPDATED);
    pt.probation = 1;
    sos_record_t re;
    s_signed(&re, &e, 1, "tcp://127.0.0.1:7402");
    out = s_take(&lan, &tc, &re, SOS_SRC_RUMOR); /* a slot free */
    CHECK(out.take == SOS_TAKE_MERGED && out.merge == SOS_MERGE_NEW);
    pt.probation = 0;

    SECTION("probation: the cap follows the measured share of probation workers that answer");
    sos_probation_t reg = {0};
    CHECK(sos_probation_cap(4096, NULL) == 1024);
    CHECK(sos_probation_cap(4096, &reg) == 1024); /* nothing sampled: a quarter */
    CHECK(sos_probation_share(&reg) == 0);
    sos_probation_push(&reg, true); /* one lucky sample opens little */
    CHECK(sos_probation_cap(4096, &reg) > 1024 && sos_probation_cap(4096, &reg) < 2048);
    for (int i = 0; i < 100; i++)
        sos_probation_push(&reg, true);
    CHECK(reg.n == SOS_PROBATION_SAMPLES && sos_probation_answered(&reg) == 64);
    uint32_t cap_all = sos_probation_cap(4096, &reg);
    CHECK(cap_all > 3900 && cap_all < 4096); /* close to all of it, never past */
    sos_probation_t mix = {0};
    for (int i = 0; i < 64; i++)
        sos_probation_push(&mix, i % 2 == 0);
    uint32_t cap_mix = sos_probation_cap(4096, &mix);
    CHECK(sos_probation_answered(&mix) == 32);
    CHECK(cap_mix > 1024 && cap_mix < 1024 + 3072 / 2 && cap_mix < cap_all); /* below the share */
    for (int i = 0; i < 64; i++)
        sos_probation_push(&reg, false); /* the register keeps the last 64 only */
    CHECK(reg.n == 64 && sos_probation_answered(&reg) == 0);
    CHECK(sos_probation_cap(4096, &reg) == 1024);
    sos_probation_push(&reg, true);
    CHECK(sos_probation_answered(&reg) == 1 && reg.n == 64);
    CHECK(sos_probation_cap(4096, &reg) < 1100); /* 1 of 64: next to nothing */
    CHECK(sos_probation_cap(1, &reg) == 1 && sos_probation_cap(3, &reg) == 1);

    SECTION("probation: the core admits new keys up to the cap the samples give");
    sos_identity_t f;
    test_seed_identity(&f, 230);
    sos_record_t rf;
    s_signed(&rf, &f, 1, "tcp://127.0.0.1:7403");
    pt.probation = 3; /* past a quarter of 8 */
    out = s_take(&lan, &tc, &rf, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_PROBATION && out.probation_cap == 2);
    sos_probation_t answered = {0};
    for (int i = 0; i < 64; i++)
        sos_probation_push(&answered, true);
    tc.probation = &answered; /* 2 + 6 * 0.94: 7 */
    out = s_take(&lan, &tc, &rf, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_MERGED && out.merge == SOS_MERGE_NEW);
    pt.probation = 7;
    s_signed(&rf, &f, 1, "tcp://127.0.0.1:7403");
    sos_identity_t g;
    test_seed_identity(&g, 240);
    sos_record_t rg;
    s_signed(&rg, &g, 1, "tcp://127.0.0.1:7404");
    out = s_take(&lan, &tc, &rg, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_PROBATION && out.probation_cap == 7);
    tc.probation = NULL;
    pt.probation = 0;

    SECTION("probation: a worker's repeated failures are one sample; its answer is another");
    sos_probation_t fs = {0};
    bool failed_sampled = false;
    CHECK(sos_probation_outcome(&fs, true, false, &failed_sampled) && failed_sampled);
    CHECK(!sos_probation_outcome(&fs, true, false, &failed_sampled)); /* the same dead key */
    CHECK(!sos_probation_outcome(&fs, true, false, &failed_sampled));
    CHECK(fs.n == 1 && sos_probation_answered(&fs) == 0);
    CHECK(sos_probation_outcome(&fs, true, true, &failed_sampled)); /* it answers: promoted */
    CHECK(fs.n == 2 && sos_probation_answered(&fs) == 1);
    CHECK(!sos_probation_outcome(&fs, false, true, &failed_sampled)); /* promoted: no sample */
    CHECK(!sos_probation_outcome(&fs, false, false, &failed_sampled));
    bool other = false; /* another worker's first failure is a sample of its own */
    CHECK(sos_probation_outcome(&fs, true, false, &other) && fs.n == 3);

    SECTION("take: a worker at an endpoint another listed worker answers at is refused");
    pt.answered_url = "tcp://127.0.0.1:7402"; /* e answered us there */
    pt.answered_by = e.pk;
    s_signed(&rd, &dd, 3, "tcp://127.0.0.1:7402");
    out = s_take(&lan, &tc, &rd, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_ENDPOINT_TAKEN && out.removed && out.why);
    CHECK_RC(sos_txn_begin(s_store, false, &txn), SOS_OK);
    uint64_t ts_v = 0, ts_exp = 0;
    CHECK(sos_dir_get_worker(txn, dd.pk, NULL, NULL) == SOS_ERR_NOT_FOUND); /* d is removed */
    CHECK(sos_dir_tombstone_get(txn, dd.pk, &ts_v, &ts_exp) == SOS_OK && ts_v == 3);
    sos_txn_abort(&txn);
    out = s_take(&lan, &tc, &rd, SOS_SRC_RUMOR); /* again: the tombstone holds it out */
    CHECK(out.take == SOS_TAKE_ENDPOINT_TAKEN && !out.removed && out.merge == SOS_MERGE_TOMBSTONED);
    out = s_take(&lan, &tc, &re, SOS_SRC_RUMOR); /* e itself: its own endpoint */
    CHECK(out.take == SOS_TAKE_MERGED);
    s_signed(&re, &e, 2, "tcp://10.0.0.1:7400"); /* naming our endpoint */
    out = s_take(&lan, &tc, &re, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_ENDPOINT_TAKEN && out.removed);
    pt.answered_url = NULL;

    SECTION("take: a tombstoned worker is not brought back by an older or equal record");
    s_signed(&rd, &dd, 2, "tcp://127.0.0.1:7401");
    out = s_take(&lan, &tc, &rd, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_MERGED && out.merge == SOS_MERGE_TOMBSTONED);
    s_signed(&rd, &dd, 3, "tcp://127.0.0.1:7401");
    out = s_take(&lan, &tc, &rd, SOS_SRC_RUMOR);
    CHECK(out.take == SOS_TAKE_MERGED && out.merge == SOS_MERGE_TOMBSTONED);
    /*  but by a newer one, or by the worker's own word (it is alive, talking to us) */
    out = s_take(&lan, &tc, &rd, SOS_SRC_DIRECT);
    CHECK(out.take == SOS_TAKE_MERGED && sos_merge_taken(out.merge));

    SECTION("take: a rumor whose prev is above what we hold opens a gap; a delta does not");
    s_signed(&rd, &dd, 9, "tcp://127.0.0.1:7401"); /* prev 8, we hold 3 */
    sos_sync_ctx_t lan_gaps = {.self_id = me.pk, .gaps = gaps, .allow_private = true};
    out = s_take(&lan_gaps, &tc, &rd, SOS_SRC_RUMOR);
    CHECK(out.take == SOS_TAKE_MERGED && out.merge == SOS_MERGE_UPDATED);
    CHECK(out.gap && out.gap_version == 3);
    s_signed(&rd, &dd, 11, "tcp://127.0.0.1:7401");
    out = s_take(&lan_gaps, &tc, &rd, SOS_SRC_DELTA);
    CHECK(out.take == SOS_TAKE_MERGED && !out.gap);

    SECTION("fd: a removal tombstones the worker record's version, and is named at the highest");
    s_put(&b, false, 5); /* b: worker record 2, a room at 5 */
    CHECK_RC(sos_txn_begin(s_store, true, &txn), SOS_OK);
    uint64_t named_v = 0, tomb_v = 0, tomb_exp = 0;
    bool wrote = false;
    CHECK_RC(sos_core_fd_remove(txn, b.pk, 12345, &named_v, &wrote), SOS_OK);
    CHECK(wrote && named_v == 5);
    CHECK(sos_dir_get_worker(txn, b.pk, NULL, NULL) == SOS_ERR_NOT_FOUND);
    CHECK(sos_dir_tombstone_get(txn, b.pk, &tomb_v, &tomb_exp) == SOS_OK && tomb_v == 2 &&
          tomb_exp == 12345);
    sos_txn_abort(&txn);

    sos_gaps_destroy(&gaps);
    sos_store_destroy(&s_store);
    test_rmtree(dir);
    return test_done("test_core_sync");
}
