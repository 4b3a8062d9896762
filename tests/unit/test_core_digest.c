/*  test_core_digest.c: the gossip core's digest over a real LMDB store: digest versions
    from records, tombstones and gaps; the order of the digest; its buckets (counts, sums,
    the pick, take and check of an exchange by bucket); the comparison of
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

static int
s_cmp_origin(const void *x, const void *y)
{
    return memcmp(((const sos_digest_entry_t *)x)->origin, ((const sos_digest_entry_t *)y)->origin,
                  SOS_NODEID_BYTES);
}

/*  n random origins at random versions, sorted by origin (a digest as built). */
static sos_digest_entry_t *
s_random_digest(uint32_t n)
{
    sos_digest_entry_t *d = calloc(n ? n : 1, sizeof *d);
    if (!d)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        randombytes_buf(d[i].origin, SOS_NODEID_BYTES);
        d[i].version = 1 + randombytes_uniform(1000);
    }
    qsort(d, n, sizeof *d, s_cmp_origin);
    return d;
}

/*  How many of nb sums differ between x and y; the last one that does in *which. */
static uint32_t
s_sums_differ(uint8_t (*x)[SOS_DIGEST_HASH_BYTES], uint8_t (*y)[SOS_DIGEST_HASH_BYTES], uint32_t nb,
              uint32_t *which)
{
    uint32_t k = 0;
    for (uint32_t b = 0; b < nb; b++)
        if (memcmp(x[b], y[b], SOS_DIGEST_HASH_BYTES) != 0) {
            k++;
            *which = b;
        }
    return k;
}

/*  The buckets of nb: counts, sums, and an exchange by bucket between two digests of
    n origins that differ in one (pure functions: no store). */
static void
s_test_buckets(void)
{
    SECTION("bucket counts: a power of two, about 32 origins a bucket, at most 1024");
    CHECK(sos_digest_nbuckets(0) == 1 && sos_digest_nbuckets(32) == 1);
    CHECK(sos_digest_nbuckets(33) == 2 && sos_digest_nbuckets(257) == 16);
    CHECK(sos_digest_nbuckets(10000) == 512 && sos_digest_nbuckets(40000) == 1024);
    CHECK(sos_digest_nbuckets(UINT32_MAX) == SOS_BUCKETS_MAX);
    CHECK(sos_digest_nb_ok(1) && sos_digest_nb_ok(1024) && !sos_digest_nb_ok(0));
    CHECK(!sos_digest_nb_ok(3) && !sos_digest_nb_ok(2048) && !sos_digest_nb_ok(1ULL << 40));

    SECTION("an origin's bucket: the top bits of its first two bytes");
    uint8_t o[SOS_NODEID_BYTES] = {0xff, 0xff};
    CHECK(sos_digest_bucket(o, 1) == 0 && sos_digest_bucket(o, 1024) == 1023);
    o[0] = 0x80;
    o[1] = 0x00;
    CHECK(sos_digest_bucket(o, 2) == 1 && sos_digest_bucket(o, 1024) == 512);
    o[0] = 0x7f;
    o[1] = 0xc0;
    CHECK(sos_digest_bucket(o, 2) == 0 && sos_digest_bucket(o, 1024) == 511);

    const uint32_t n = 3000, nb = 128;
    sos_digest_entry_t *mine = s_random_digest(n);
    sos_digest_entry_t *theirs = calloc(n, sizeof *theirs);
    uint8_t(*sa)[SOS_DIGEST_HASH_BYTES] = calloc(nb, sizeof *sa);
    uint8_t(*sb)[SOS_DIGEST_HASH_BYTES] = calloc(nb, sizeof *sb);
    CHECK(mine && theirs && sa && sb);
    if (!mine || !theirs || !sa || !sb)
        goto done;

    SECTION("bucket sums: one at a time (kept sums) equal those from scratch");
    sos_digest_bucket_sums(mine, n, nb, sa);
    uint32_t total = 0;
    for (uint32_t b = 0; b < nb; b++) {
        uint32_t first, count;
        sos_digest_bucket_range(mine, n, nb, b, &first, &count);
        total += count;
        sos_bucket_hash_t h;
        sos_bucket_hash_init(&h);
        for (uint32_t i = first; i < first + count; i++) {
            CHECK(sos_digest_bucket(mine[i].origin, nb) == b);
            sos_bucket_hash_add(&h, &mine[i]);
        }
        sos_bucket_hash_final(&h, sb[b]);
    }
    CHECK(total == n);
    uint32_t which = UINT32_MAX;
    CHECK(s_sums_differ(sa, sb, nb, &which) == 0);
    /*  One entry changes: the kept sums remade for its bucket only equal new ones. */
    mine[1234].version++;
    uint32_t changed = sos_digest_bucket(mine[1234].origin, nb), first, count;
    sos_digest_bucket_range(mine, n, nb, changed, &first, &count);
    sos_bucket_hash_t h;
    sos_bucket_hash_init(&h);
    for (uint32_t i = first; i < first + count; i++)
        sos_bucket_hash_add(&h, &mine[i]);
    sos_bucket_hash_final(&h, sb[changed]);
    sos_digest_bucket_sums(mine, n, nb, sa);
    CHECK(s_sums_differ(sa, sb, nb, &which) == 0);

    SECTION("two digests that differ in one origin differ in exactly one bucket");
    memcpy(theirs, mine, n * sizeof *theirs);
    theirs[777].version += 5;
    sos_digest_bucket_sums(theirs, n, nb, sb);
    CHECK(s_sums_differ(sa, sb, nb, &which) == 1 &&
          which == sos_digest_bucket(theirs[777].origin, nb));

    SECTION("the removal flag changes its bucket's sum, and only that one");
    memcpy(theirs, mine, n * sizeof *theirs);
    theirs[42].removed = true;
    sos_digest_bucket_sums(theirs, n, nb, sb);
    CHECK(s_sums_differ(sa, sb, nb, &which) == 1 &&
          which == sos_digest_bucket(theirs[42].origin, nb));

    SECTION("an exchange by bucket: pick, take, check, and the diff finds the one origin");
    memcpy(theirs, mine, n * sizeof *theirs);
    theirs[2999].version += 3; /* the peer is ahead on one origin */
    sos_digest_bucket_sums(theirs, n, nb, sb);
    uint16_t asked[128], covered[128];
    uint32_t n_differ = 0;
    uint32_t n_asked =
        sos_digest_buckets_pick(mine, n, nb, (const uint8_t(*)[16])sa, (const uint8_t(*)[16])sb, n,
                                17, SOS_DIGEST_MAX, asked, &n_differ);
    uint32_t b2999 = sos_digest_bucket(theirs[2999].origin, nb);
    CHECK(n_asked == 1 && n_differ == 1 && asked[0] == b2999);
    sos_digest_entry_t *took = calloc(SOS_DIGEST_MAX, sizeof *took);
    sos_digest_entry_t *own = calloc(n, sizeof *own);
    CHECK(took && own);
    if (!took || !own) {
        free(took);
        free(own);
        goto done;
    }
    uint32_t n_took = 0;
    uint32_t n_cov = sos_digest_buckets_take(theirs, n, nb, asked, n_asked, NULL, took,
                                             SOS_DIGEST_MAX, &n_took, covered, NULL);
    sos_digest_bucket_range(theirs, n, nb, b2999, &first, &count);
    CHECK(n_cov == 1 && covered[0] == b2999 && n_took == count && n_took > 0);
    uint64_t bits[SOS_BUCKET_WORDS] = {0};
    bits[b2999 / 64] |= 1ULL << (b2999 % 64);
    CHECK(sos_digest_buckets_check(nb, bits, NULL, covered, n_cov, NULL, took, n_took));
    uint32_t n_own = sos_digest_buckets_mine(mine, n, nb, covered, n_cov, NULL, own);
    CHECK(n_own == count);
    sos_digest_entry_t give[64], want[64];
    uint32_t n_give = 0, n_want = 0;
    uint8_t self_id[SOS_NODEID_BYTES] = {0};
    if (n_own <= 64 && n_took <= 64) {
        sos_digest_diff(self_id, own, n_own, took, n_took, give, &n_give, want, &n_want, NULL,
                        NULL);
        CHECK(n_give == 0 && n_want == 1 &&
              memcmp(want[0].origin, theirs[2999].origin, SOS_NODEID_BYTES) == 0 &&
              want[0].version == mine[2999].version);
    }

    SECTION("check: refuses entries outside the covered buckets, buckets not asked, disorder");
    /*  An entry of another bucket slipped in. */
    sos_digest_entry_t stray = mine[0];
    uint32_t b0 = sos_digest_bucket(stray.origin, nb);
    CHECK(b0 != b2999);
    took[n_took] = stray;
    CHECK(!sos_digest_buckets_check(nb, bits, NULL, covered, n_cov, NULL, took, n_took + 1));
    /*  A covered bucket we did not ask. */
    uint16_t wrong[1] = {(uint16_t)((b2999 + 1) % nb)};
    CHECK(!sos_digest_buckets_check(nb, bits, NULL, wrong, 1, NULL, NULL, 0));
    /*  Entries out of order, or twice. */
    if (n_took >= 2) {
        sos_digest_entry_t t = took[0];
        took[0] = took[1];
        took[1] = t;
        CHECK(!sos_digest_buckets_check(nb, bits, NULL, covered, n_cov, NULL, took, n_took));
        took[1] = took[0];
        CHECK(!sos_digest_buckets_check(nb, bits, NULL, covered, n_cov, NULL, took, n_took));
    }
    CHECK(!sos_digest_buckets_check(3, bits, NULL, covered, n_cov, NULL, NULL,
                                    0)); /* no bucket count */
    CHECK(sos_digest_buckets_check(nb, bits, NULL, covered, n_cov, NULL, NULL,
                                   0)); /* an empty bucket */

    SECTION("pick and take keep to their budget, whole buckets only, the rest left over");
    sos_digest_entry_t *empty = NULL;
    sos_digest_bucket_sums(empty, 0, nb, sb);  /* ours: we hold nothing */
    sos_digest_bucket_sums(theirs, n, nb, sa); /* theirs */
    n_asked = sos_digest_buckets_pick(empty, 0, nb, (const uint8_t(*)[16])sb,
                                      (const uint8_t(*)[16])sa, n, 100, 200, asked, &n_differ);
    /*  Every bucket differs (we hold nothing, they hold ~23 a bucket): about 200/24 asked,
        ascending, starting at 100 and wrapping. */
    CHECK(n_differ == nb || n_differ == nb - 1); /* an empty bucket on both sides is equal */
    CHECK(n_asked >= 1 && n_asked < 20);
    for (uint32_t i = 1; i < n_asked; i++)
        CHECK(asked[i] > asked[i - 1]);
    n_cov = sos_digest_buckets_take(theirs, n, nb, asked, n_asked, NULL, took, 50, &n_took, covered,
                                    NULL);
    CHECK(n_took <= 50 && n_cov >= 1 && n_cov <= n_asked);
    memset(bits, 0, sizeof bits);
    for (uint32_t i = 0; i < n_asked; i++)
        bits[asked[i] / 64] |= 1ULL << (asked[i] % 64);
    CHECK(sos_digest_buckets_check(nb, bits, NULL, covered, n_cov, NULL, took, n_took));
    free(took);
    free(own);
done:
    free(mine);
    free(theirs);
    free(sa);
    free(sb);
}

/*  An origin in bucket b of nb, the rest random. */
static void
s_origin_in(uint8_t origin[SOS_NODEID_BYTES], uint32_t nb, uint32_t b)
{
    uint8_t first[SOS_NODEID_BYTES];
    randombytes_buf(origin, SOS_NODEID_BYTES);
    sos_digest_bucket_first(nb, b, first);
    uint32_t bits = 0;
    while ((1u << bits) < nb)
        bits++;
    uint16_t mask = (uint16_t)(0xffff >> bits); /* the bits below the bucket's */
    origin[0] = (uint8_t)(first[0] | (origin[0] & (mask >> 8)));
    origin[1] = (uint8_t)(first[1] | (origin[1] & mask));
}

/*  Exchanges by bucket between an initiator (mine) and an honest answerer (theirs), both
    sorted, with a cap of R entries an answer, run as the node runs them (pick or the
    cursor's piece, take, check, our side of what was covered, diff, cursor moved) without
    applying anything, so that the buckets keep differing. seen[i] is set for each entry of
    theirs an answer carried. Returns the first exchange (1, 2, ...) whose diff wants
    origin, or 0 if none of max_ex did. */
static uint32_t
s_run_pieces(const sos_digest_entry_t *mine, uint32_t n_mine, const sos_digest_entry_t *theirs,
             uint32_t n_theirs, uint32_t nb, uint32_t R, uint32_t max_ex, const uint8_t *origin,
             bool *seen, sos_piece_cursor_t *cursor)
{
    uint8_t(*sa)[SOS_DIGEST_HASH_BYTES] = calloc(nb, sizeof *sa);
    uint8_t(*sb)[SOS_DIGEST_HASH_BYTES] = calloc(nb, sizeof *sb);
    sos_digest_entry_t *took = calloc(R, sizeof *took);
    sos_digest_entry_t *own = calloc(n_mine + 1, sizeof *own);
    sos_digest_entry_t *give = calloc(n_mine + 1, sizeof *give);
    sos_digest_entry_t *want = calloc(R, sizeof *want);
    uint32_t found = 0;
    if (!sa || !sb || !took || !own || !give || !want)
        goto done;
    sos_digest_bucket_sums(mine, n_mine, nb, sa);
    sos_digest_bucket_sums(theirs, n_theirs, nb, sb);
    uint8_t self_id[SOS_NODEID_BYTES] = {0};
    for (uint32_t ex = 1; ex <= max_ex && !found; ex++) {
        uint16_t asked[SOS_BUCKETS_MAX], covered[SOS_BUCKETS_MAX];
        uint32_t n_asked = 0, n_differ = 0;
        sos_bucket_piece_t piece, answer;
        bool has_piece = sos_piece_cursor_ask(cursor, nb, (const uint8_t(*)[16])sa,
                                              (const uint8_t(*)[16])sb, &piece);
        if (!has_piece)
            n_asked = sos_digest_buckets_pick(
                mine, n_mine, nb, (const uint8_t(*)[16])sa, (const uint8_t(*)[16])sb, n_theirs,
                sos_piece_cursor_start(cursor, nb, ex * 7 % nb), R, asked, &n_differ);
        CHECK(has_piece || n_asked >= 1);
        uint64_t bits[SOS_BUCKET_WORDS] = {0};
        for (uint32_t i = 0; i < n_asked; i++)
            bits[asked[i] / 64] |= 1ULL << (asked[i] % 64);
        uint32_t n_took = 0;
        uint32_t n_cov =
            sos_digest_buckets_take(theirs, n_theirs, nb, asked, n_asked, has_piece ? &piece : NULL,
                                    took, R, &n_took, covered, &answer);
        CHECK(n_took <= R);
        bool ok = sos_digest_buckets_check(nb, bits, has_piece ? &piece : NULL, covered, n_cov,
                                           has_piece ? &answer : NULL, took, n_took);
        CHECK(ok);
        if (!ok)
            break;
        for (uint32_t i = 0, j = 0; i < n_took; i++) {
            while (j < n_theirs && memcmp(theirs[j].origin, took[i].origin, SOS_NODEID_BYTES) < 0)
                j++;
            if (j < n_theirs && memcmp(theirs[j].origin, took[i].origin, SOS_NODEID_BYTES) == 0)
                seen[j] = true;
        }
        uint32_t n_own = sos_digest_buckets_mine(mine, n_mine, nb, covered, n_cov,
                                                 has_piece ? &answer : NULL, own);
        uint32_t n_give = 0, n_want = 0;
        sos_digest_diff(self_id, own, n_own, took, n_took, give, &n_give, want, &n_want, NULL,
                        NULL);
        for (uint32_t i = 0; i < n_want; i++)
            if (origin && memcmp(want[i].origin, origin, SOS_NODEID_BYTES) == 0)
                found = ex;
        sos_piece_cursor_answered(cursor, nb, bits, covered, n_cov, has_piece ? &answer : NULL);
    }
done:
    free(sa);
    free(sb);
    free(took);
    free(own);
    free(give);
    free(want);
    return found;
}

/*  Pieces: a bucket larger than one answer (a small cap, R = 8, stands for SOS_DIGEST_MAX)
    is covered piece by piece, every origin of it within the stated bound, and a difference
    anywhere in it is found; hostile pieces are refused. */
static void
s_test_pieces(void)
{
    const uint32_t nb = 16, R = 8, big = 5, B = 50;
    const uint32_t n_other = 60, n = B + n_other;
    sos_digest_entry_t *theirs = calloc(n, sizeof *theirs);
    sos_digest_entry_t *mine = calloc(n, sizeof *mine);
    bool *seen = calloc(n, sizeof *seen);
    CHECK(theirs && mine && seen);
    if (!theirs || !mine || !seen)
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        s_origin_in(theirs[i].origin, nb, i < B ? big : (big + 1 + i % (nb - 1)) % nb);
        theirs[i].version = 1 + i;
    }
    qsort(theirs, n, sizeof *theirs, s_cmp_origin);
    uint32_t first, count;
    sos_digest_bucket_range(theirs, n, nb, big, &first, &count);
    CHECK(count == B);

    SECTION("pieces: an origin missing anywhere in a bucket of 50 (cap 8) is found, within "
            "1 + ceil(B / R) exchanges");
    const uint32_t bound = 1 + (B + R - 1) / R;
    uint32_t worst = 0;
    for (uint32_t k = 0; k < count; k++) {
        /*  We lack theirs[first + k]; everything else is equal. */
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i++)
            if (i != first + k)
                mine[m++] = theirs[i];
        sos_piece_cursor_t cursor = {0};
        memset(seen, 0, n * sizeof *seen);
        uint32_t at = s_run_pieces(mine, m, theirs, n, nb, R, 10 * bound, theirs[first + k].origin,
                                   seen, &cursor);
        CHECK(at >= 2 && at <= bound);
        if (at > worst)
            worst = at;
    }
    CHECK(worst == bound); /* the last entries come in the last piece */

    SECTION("pieces: a newer version anywhere in the bucket is found; one pass carries every "
            "origin of it");
    for (uint32_t k = 0; k < count; k += 7) {
        memcpy(mine, theirs, n * sizeof *mine);
        mine[first + k].version--; /* they are ahead on one */
        sos_piece_cursor_t cursor = {0};
        memset(seen, 0, n * sizeof *seen);
        CHECK(s_run_pieces(mine, n, theirs, n, nb, R, bound, theirs[first + k].origin, seen,
                           &cursor) != 0);
    }
    /*  A pass with nothing to find: after the bound every origin of the bucket was carried,
        and the pass is over (the cursor waits for the next round's whole ask). */
    memcpy(mine, theirs, n * sizeof *mine);
    mine[first].version--;
    sos_piece_cursor_t cursor = {0};
    memset(seen, 0, n * sizeof *seen);
    s_run_pieces(mine, n, theirs, n, nb, R, bound, NULL, seen, &cursor);
    for (uint32_t i = first; i < first + count; i++)
        CHECK(seen[i]);
    CHECK(cursor.nb == 0 && cursor.last == big);

    SECTION("pieces: two buckets too large take turns, one pass each");
    {
        /*  A second large bucket: both differ; the first pass covers one, the next the
            other. */
        const uint32_t big2 = 11, n2 = n + B;
        sos_digest_entry_t *t2 = calloc(n2, sizeof *t2);
        sos_digest_entry_t *m2 = calloc(n2, sizeof *m2);
        bool *seen2 = calloc(n2, sizeof *seen2);
        CHECK(t2 && m2 && seen2);
        if (t2 && m2 && seen2) {
            memcpy(t2, theirs, n * sizeof *t2);
            for (uint32_t i = n; i < n2; i++) {
                s_origin_in(t2[i].origin, nb, big2);
                t2[i].version = 1;
            }
            qsort(t2, n2, sizeof *t2, s_cmp_origin);
            memcpy(m2, t2, n2 * sizeof *m2);
            uint32_t f2, c2, f1, c1;
            sos_digest_bucket_range(t2, n2, nb, big, &f1, &c1);
            sos_digest_bucket_range(t2, n2, nb, big2, &f2, &c2);
            m2[f1 + c1 - 1].version--; /* the last of each bucket differs */
            m2[f2 + c2 - 1].version--;
            sos_piece_cursor_t c = {0};
            /*  Whichever the first pass takes (the random start's), the next round's takes
                the other: every origin of both is carried within two passes. */
            uint32_t most = 1 + ((c1 > c2 ? c1 : c2) + R - 1) / R;
            s_run_pieces(m2, n2, t2, n2, nb, R, most, NULL, seen2, &c);
            CHECK(c.nb == 0 && (c.last == big || c.last == big2) && c.turn);
            uint32_t other = c.last == big ? big2 : big;
            uint32_t fo = other == big ? f1 : f2, co = other == big ? c1 : c2;
            CHECK(s_run_pieces(m2, n2, t2, n2, nb, R, most, t2[fo + co - 1].origin, seen2, &c) ==
                  1 + (co + R - 1) / R);
            for (uint32_t i = f1; i < f1 + c1; i++)
                CHECK(seen2[i]);
            for (uint32_t i = f2; i < f2 + c2; i++)
                CHECK(seen2[i]);
        }
        free(t2);
        free(m2);
        free(seen2);
    }

    SECTION("pieces: take gives the piece first, then whole buckets in the room left");
    {
        sos_bucket_piece_t ask = {.bucket = (uint16_t)big, .to_end = true}, got;
        memcpy(ask.from, theirs[first + 3].origin, SOS_NODEID_BYTES);
        uint16_t whole[2] = {0, 15}, cov[2];
        sos_digest_entry_t took[8];
        uint32_t n_took = 0;
        uint32_t n_cov =
            sos_digest_buckets_take(theirs, n, nb, whole, 2, &ask, took, R, &n_took, cov, &got);
        CHECK(n_cov == 0 && n_took == R && !got.to_end && got.bucket == big);
        CHECK(memcmp(got.to, theirs[first + 3 + R - 1].origin, SOS_NODEID_BYTES) == 0);
        CHECK(memcmp(took[0].origin, ask.from, SOS_NODEID_BYTES) == 0);
        /*  From the last entries on: the piece reaches the end, and the rest fits whole
            buckets. */
        memcpy(ask.from, theirs[first + count - 2].origin, SOS_NODEID_BYTES);
        uint32_t f0, c0;
        sos_digest_bucket_range(theirs, n, nb, 0, &f0, &c0);
        n_cov = sos_digest_buckets_take(theirs, n, nb, whole, 2, &ask, took, R, &n_took, cov, &got);
        CHECK(got.to_end && n_took >= 2 && n_cov >= (c0 <= R - 2 ? 1u : 0u));
        uint64_t bits[SOS_BUCKET_WORDS] = {1ULL | 1ULL << 15};
        CHECK(sos_digest_buckets_check(nb, bits, &ask, cov, n_cov, &got, took, n_took));
    }

    SECTION("pieces: hostile answers are refused");
    {
        sos_bucket_piece_t ask = {.bucket = (uint16_t)big, .to_end = true}, got;
        memcpy(ask.from, theirs[first + 10].origin, SOS_NODEID_BYTES);
        sos_digest_entry_t took[8];
        uint16_t cov[1];
        uint32_t n_took = 0;
        sos_digest_buckets_take(theirs, n, nb, NULL, 0, &ask, took, R, &n_took, cov, &got);
        uint64_t none[SOS_BUCKET_WORDS] = {0}, bits[SOS_BUCKET_WORDS] = {0};
        CHECK(n_took == R && sos_digest_buckets_check(nb, none, &ask, NULL, 0, &got, took, n_took));
        /*  A piece not asked for, or none where one was. */
        CHECK(!sos_digest_buckets_check(nb, none, NULL, NULL, 0, &got, took, n_took));
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, NULL, NULL, 0));
        /*  Another start than asked (before it: entries we did not ask for). */
        sos_bucket_piece_t bad = got;
        memcpy(bad.from, theirs[first + 9].origin, SOS_NODEID_BYTES);
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &bad, took, n_took));
        /*  Another bucket. */
        bad = got;
        bad.bucket = (uint16_t)(big + 1);
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &bad, took, n_took));
        /*  A stop before the start. */
        bad = got;
        memcpy(bad.to, theirs[first + 2].origin, SOS_NODEID_BYTES);
        CHECK(!sos_digest_piece_ok(nb, &bad));
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &bad, took, n_took));
        /*  A stop outside the bucket. */
        bad = got;
        s_origin_in(bad.to, nb, big + 1);
        CHECK(!sos_digest_piece_ok(nb, &bad));
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &bad, took, n_took));
        /*  A start outside the bucket (a DIGEST's piece, as the answerer checks it). */
        bad = ask;
        s_origin_in(bad.from, nb, big + 2);
        CHECK(!sos_digest_piece_ok(nb, &bad));
        bad.bucket = (uint16_t)nb;
        CHECK(!sos_digest_piece_ok(nb, &bad));
        /*  A stop that is not the last entry given (it would skip what was not compared). */
        bad = got;
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &bad, took, n_took - 1));
        memcpy(bad.to, theirs[first + 10 + R].origin, SOS_NODEID_BYTES);
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &bad, took, n_took));
        /*  A stop that claims entries and gives none. */
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &got, NULL, 0));
        /*  Entries outside the range, or out of order. */
        sos_digest_entry_t t2[8];
        memcpy(t2, took, sizeof t2);
        t2[0] = theirs[first + 9]; /* before the start */
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &got, t2, n_took));
        memcpy(t2, took, sizeof t2);
        t2[3] = took[4];
        t2[4] = took[3];
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &got, t2, n_took));
        /*  The piece's bucket also named as covered whole. */
        bits[big / 64] |= 1ULL << (big % 64);
        uint16_t both[1] = {(uint16_t)big};
        CHECK(!sos_digest_buckets_check(nb, bits, &ask, both, 1, &got, took, n_took));
        /*  To its end, with an entry past it that is of the next bucket, not covered. */
        sos_bucket_piece_t end = ask;
        memcpy(t2, took, sizeof t2);
        s_origin_in(t2[7].origin, nb, big + 1);
        CHECK(!sos_digest_buckets_check(nb, none, &ask, NULL, 0, &end, t2, n_took));
    }

    SECTION("pieces: the cursor wraps no further than its bucket, and is dropped with nb");
    {
        sos_piece_cursor_t c = {0};
        uint64_t bits[SOS_BUCKET_WORDS] = {0};
        bits[0] = 1ULL << big;
        CHECK(sos_piece_cursor_answered(&c, nb, bits, NULL, 0, NULL)); /* not covered */
        uint8_t f[SOS_NODEID_BYTES];
        sos_digest_bucket_first(nb, big, f);
        CHECK(c.nb == nb && c.bucket == big && memcmp(c.from, f, sizeof f) == 0);
        sos_bucket_piece_t last = {.bucket = (uint16_t)big};
        memcpy(last.from, f, sizeof f);
        /*  The bucket's last possible origin: its prefix, then every bit set. */
        memset(last.to, 0xff, SOS_NODEID_BYTES);
        last.to[0] = (uint8_t)(f[0] | 0x0f); /* nb 16: the bucket is the top 4 bits */
        CHECK(sos_digest_piece_ok(nb, &last));
        uint64_t none[SOS_BUCKET_WORDS] = {0}; /* a DIGEST asks a piece alone */
        CHECK(!sos_piece_cursor_answered(&c, nb, none, NULL, 0, &last));
        CHECK(c.nb == 0 && c.last == big && c.turn); /* nothing after it: the pass ends */
        CHECK(sos_piece_cursor_start(&c, nb, 3) == big + 1 && !c.turn);
        CHECK(sos_piece_cursor_start(&c, nb, 3) == 3);
        CHECK(sos_piece_cursor_answered(&c, nb, bits, NULL, 0, NULL));
        uint8_t sx[16][SOS_DIGEST_HASH_BYTES] = {{0}}, sy[16][SOS_DIGEST_HASH_BYTES] = {{0}};
        sy[big][0] = 1;
        sos_bucket_piece_t p;
        CHECK(
            !sos_piece_cursor_ask(&c, 32, (const uint8_t(*)[16])sx, (const uint8_t(*)[16])sy, &p));
        CHECK(c.nb == 0); /* cut otherwise now: dropped */
    }
done:
    free(theirs);
    free(mine);
    free(seen);
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

    SECTION("the digest names every origin, sorted by origin");
    uint32_t n = 0;
    sos_digest_entry_t *d = sos_digest_build(gaps, txn, &n);
    /*  a and b (workers), c (a removed worker: its tombstone keeps its origin, so that
        peers learn of the removal) and r (rooms only), in id order: the buckets are runs
        of the sorted digest. */
    CHECK(d && n == 4);
    if (d && n == 4) {
        for (uint32_t i = 1; i < n; i++)
            CHECK(memcmp(d[i - 1].origin, d[i].origin, SOS_NODEID_BYTES) < 0);
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
    s_test_buckets();
    s_test_pieces();
    return test_done("test_core_digest");
}
