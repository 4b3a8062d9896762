/*  test_core_answer.c: the answers of an exchange (sos_core_answer.h) as scripted inputs
    and expected outputs. The answerer: a SYNC answered in sync, with the whole digest or
    with bucket sums of the right count; a DIGEST answered with the buckets asked, within
    the cap, a bucket too large answered in a piece, and a DIGEST of the wrong shape
    refused. The initiator: a SYNC_ACK in sync, whole or with sums that all match ends the
    exchange or goes to the DELTA; sums that differ ask those buckets, or the cursor's
    piece alone; a broken SYNC_ACK is refused; a DIGEST_ACK naming a bucket not asked is
    refused, and one that fits gives our entries of exactly what it covered. A DELTA is
    answered with the records it wants from a real LMDB store, and answered even when it
    wants nothing; the initiator's DELTA carries the records the peer lacks, wants what we
    lack, hands over the removals the peer's digest shows, and says MORE when cut. */
#define _XOPEN_SOURCE 700
#include <unistd.h>

#include "proto_test.h"
#include "sos_core_answer.h"
#include "sos_store.h"
#include "tmpdir.h"

/*  A digest of n entries sorted by origin, spread over the 16-bit prefix from prefix_lo
    on in steps of step (then the index, so that origins are distinct). */
static sos_digest_entry_t *
s_digest(uint32_t n, uint32_t prefix_lo, uint32_t step)
{
    sos_digest_entry_t *d = calloc(n ? n : 1, sizeof *d);
    CHECK(d != NULL);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = prefix_lo + i * step;
        d[i].origin[0] = (uint8_t)(p >> 8);
        d[i].origin[1] = (uint8_t)p;
        d[i].origin[2] = (uint8_t)(i >> 8);
        d[i].origin[3] = (uint8_t)i;
        d[i].version = 1 + i;
    }
    return d;
}

static sos_digest_view_t
s_view(sos_digest_entry_t *d, uint32_t n, uint8_t hash[SOS_DIGEST_HASH_BYTES])
{
    sos_digest_hash(hash, d, n);
    return (sos_digest_view_t){.hash = hash, .n = n, .entries = d};
}

/*  A DIGEST of nb asking the buckets b[0..k) and, if piece, that piece. */
static sos_gmsg_t
s_ask(uint32_t nb, uint16_t *b, uint32_t k, const sos_bucket_piece_t *piece)
{
    sos_gmsg_t m;
    memset(&m, 0, sizeof m);
    m.req_id = 77;
    m.has_buckets = true;
    m.nb = nb;
    m.buckets = b;
    m.n_buckets = k;
    if (piece) {
        m.has_piece = true;
        m.piece = *piece;
    }
    return m;
}

/*  The sums callback over a digest held in an array. */
typedef struct {
    const sos_digest_entry_t *d;
    uint32_t n;
    uint8_t sums[SOS_BUCKETS_MAX][SOS_DIGEST_HASH_BYTES];
    int calls;
    bool fail;
} s_sums_t;

static const uint8_t (*s_sums(void *arg, uint32_t nb))[SOS_DIGEST_HASH_BYTES]
{
    s_sums_t *a = arg;
    a->calls++;
    if (a->fail)
        return NULL;
    sos_digest_bucket_sums(a->d, a->n, nb, a->sums);
    return (const uint8_t(*)[SOS_DIGEST_HASH_BYTES])a->sums;
}

/*  A random source that counts its draws and gives zeros: the pick starts at bucket 0. */
static int s_draws;
static void
s_zero_random(void *arg, void *buf, size_t len)
{
    (void)arg;
    s_draws++;
    memset(buf, 0, len);
}

/*  A SYNC_ACK with the bucket sums of d (n entries) in nb. */
static sos_gmsg_t
s_sums_ack(const sos_digest_entry_t *d, uint32_t n, uint32_t nb,
           uint8_t (*buf)[SOS_DIGEST_HASH_BYTES])
{
    sos_gmsg_t m;
    memset(&m, 0, sizeof m);
    m.req_id = 9;
    m.n_origins = n;
    m.has_buckets = true;
    m.nb = nb;
    m.n_sums = nb;
    sos_digest_bucket_sums(d, n, nb, buf);
    m.sums = buf;
    return m;
}

/*  The exchange's step for each kind of plan. */
static void
s_plan_step(void)
{
    SECTION("a plan moves the exchange: DELTA waits on, DONE ends it, DIGEST asks");
    sos_exchange_t ex = {.state = SOS_EX_WAIT_SYNC_ACK, .req_id = 5};
    sos_ack_plan_t plan = {.what = SOS_ACK_DELTA};
    CHECK(sos_ack_plan_step(&plan, &ex) == SOS_EX_DO_DELTA);
    CHECK(ex.state == SOS_EX_WAIT_SYNC_ACK && ex.req_id == 5);
    plan = (sos_ack_plan_t){.what = SOS_ACK_DIGEST, .n_asked = 2};
    CHECK(sos_ack_plan_step(&plan, &ex) == SOS_EX_DO_DIGEST);
    plan = (sos_ack_plan_t){.what = SOS_ACK_DIGEST, .has_piece = true};
    CHECK(sos_ack_plan_step(&plan, &ex) == SOS_EX_DO_DIGEST);
    CHECK(ex.state == SOS_EX_WAIT_SYNC_ACK);
    plan = (sos_ack_plan_t){.what = SOS_ACK_DONE};
    CHECK(sos_ack_plan_step(&plan, &ex) == SOS_EX_DO_DONE);
    CHECK(ex.state == SOS_EX_IDLE && ex.req_id == 0);
}

static void
s_initiator(void)
{
    uint8_t h[SOS_DIGEST_HASH_BYTES];
    sos_digest_entry_t *ours = s_digest(300, 0, 200);
    s_sums_t sa = {.d = ours, .n = 300};
    sos_digest_view_t mine = s_view(ours, 300, h);
    mine.sums = s_sums;
    mine.sums_arg = &sa;
    sos_piece_cursor_t cur = {0};
    sos_ack_plan_t plan;
    static uint8_t their_sums[SOS_BUCKETS_MAX][SOS_DIGEST_HASH_BYTES];

    SECTION("a SYNC_ACK in sync ends the exchange; the whole digest goes to the DELTA");
    sos_gmsg_t ack;
    memset(&ack, 0, sizeof ack);
    ack.flags = SOS_GMSG_IN_SYNC;
    CHECK(sos_core_sync_ack_ok(&ack));
    CHECK_RC(sos_core_take_sync_ack(&mine, &ack, &cur, s_zero_random, NULL, 100, &plan), SOS_OK);
    CHECK(plan.what == SOS_ACK_DONE && !plan.asked && sa.calls == 0);
    ack.flags = 0;
    ack.digest = ours;
    ack.n_digest = 3;
    CHECK_RC(sos_core_take_sync_ack(&mine, &ack, &cur, s_zero_random, NULL, 100, &plan), SOS_OK);
    CHECK(plan.what == SOS_ACK_DELTA && sa.calls == 0);
    sos_digest_view_t bare = {.hash = h, .n = 300}; /* neither entries nor sums needed */
    CHECK_RC(sos_core_take_sync_ack(&bare, &ack, &cur, s_zero_random, NULL, 100, &plan), SOS_OK);
    CHECK(plan.what == SOS_ACK_DELTA);

    SECTION("a SYNC_ACK whose sums all match ours ends the exchange");
    ack = s_sums_ack(ours, 300, 16, their_sums);
    CHECK(sos_core_sync_ack_ok(&ack));
    CHECK_RC(sos_core_take_sync_ack(&mine, &ack, &cur, s_zero_random, NULL, 100, &plan), SOS_OK);
    CHECK(plan.what == SOS_ACK_DONE && plan.n_asked == 0 && !plan.has_piece && sa.calls == 1);
    sos_ack_plan_release(&plan);

    SECTION("sums that differ in two buckets: a DIGEST asking exactly those two");
    sos_digest_entry_t *theirs = s_digest(300, 0, 200);
    uint32_t f3, c3, f9, c9;
    sos_digest_bucket_range(theirs, 300, 16, 3, &f3, &c3);
    sos_digest_bucket_range(theirs, 300, 16, 9, &f9, &c9);
    theirs[f3].version += 5;
    theirs[f9 + 1].version += 5;
    ack = s_sums_ack(theirs, 300, 16, their_sums);
    s_draws = 0;
    CHECK_RC(sos_core_take_sync_ack(&mine, &ack, &cur, s_zero_random, NULL, SOS_DIGEST_MAX, &plan),
             SOS_OK);
    CHECK(plan.what == SOS_ACK_DIGEST && plan.nb == 16 && plan.n_asked == 2 && !plan.more);
    CHECK(plan.asked[0] == 3 && plan.asked[1] == 9 && !plan.has_piece && s_draws == 1);
    sos_ack_plan_release(&plan);
    CHECK(!plan.asked);

    SECTION("more differ than fit one answer: the first that fit, and more to come");
    CHECK_RC(sos_core_take_sync_ack(&mine, &ack, &cur, s_zero_random, NULL, c3, &plan), SOS_OK);
    CHECK(plan.what == SOS_ACK_DIGEST && plan.n_asked == 1 && plan.asked[0] == 3 && plan.more);
    sos_ack_plan_release(&plan);

    SECTION("a cursor through bucket 9 that still differs: its piece alone, no draw");
    cur.nb = 16;
    cur.bucket = 9;
    memcpy(cur.from, theirs[f9].origin, SOS_NODEID_BYTES);
    s_draws = 0;
    CHECK_RC(sos_core_take_sync_ack(&mine, &ack, &cur, s_zero_random, NULL, SOS_DIGEST_MAX, &plan),
             SOS_OK);
    CHECK(plan.what == SOS_ACK_DIGEST && plan.has_piece && plan.n_asked == 0 && s_draws == 0);
    CHECK(plan.piece.bucket == 9 && plan.piece.to_end);
    CHECK(memcmp(plan.piece.from, theirs[f9].origin, SOS_NODEID_BYTES) == 0);
    sos_ack_plan_release(&plan);

    SECTION("a cursor of another bucket count is dropped, and the buckets asked");
    cur.nb = 32;
    CHECK_RC(sos_core_take_sync_ack(&mine, &ack, &cur, s_zero_random, NULL, SOS_DIGEST_MAX, &plan),
             SOS_OK);
    CHECK(plan.what == SOS_ACK_DIGEST && !plan.has_piece && plan.n_asked == 2 && cur.nb == 0);
    sos_ack_plan_release(&plan);

    SECTION("without sums (no memory) or without our entries, nothing is decided");
    sa.fail = true;
    CHECK_RC(sos_core_take_sync_ack(&mine, &ack, &cur, s_zero_random, NULL, 100, &plan),
             SOS_ERR_NOMEM);
    CHECK(plan.what == SOS_ACK_DONE && !plan.asked);
    sa.fail = false;
    CHECK_RC(sos_core_take_sync_ack(&bare, &ack, &cur, s_zero_random, NULL, 100, &plan),
             SOS_ERR_INVALID);

    SECTION("broken SYNC_ACKs are refused before anything of them is taken");
    sos_gmsg_t bad = ack;
    bad.flags = SOS_GMSG_IN_SYNC; /* in sync, and sums beside it */
    CHECK(!sos_core_sync_ack_ok(&bad));
    CHECK_RC(sos_core_take_sync_ack(&mine, &bad, &cur, s_zero_random, NULL, 100, &plan),
             SOS_ERR_MALFORMED);
    bad = ack;
    bad.n_sums = 8; /* not one a bucket */
    CHECK(!sos_core_sync_ack_ok(&bad));
    bad = ack;
    uint16_t one[] = {3};
    bad.buckets = one;
    bad.n_buckets = 1;
    CHECK(!sos_core_sync_ack_ok(&bad));
    bad = ack;
    bad.digest = ours;
    bad.n_digest = 1;
    CHECK(!sos_core_sync_ack_ok(&bad));
    bad = ack;
    bad.has_piece = true;
    CHECK(!sos_core_sync_ack_ok(&bad));
    CHECK_RC(sos_core_take_sync_ack(&mine, &bad, &cur, s_zero_random, NULL, 100, &plan),
             SOS_ERR_MALFORMED);

    SECTION("a DIGEST_ACK covering the buckets asked: our entries of exactly those");
    sos_digest_view_t tv = s_view(theirs, 300, h);
    uint16_t two[] = {3, 9};
    sos_gmsg_t dg = s_ask(16, two, 2, NULL);
    sos_digest_answer_t a;
    CHECK_RC(sos_core_answer_digest(&tv, &dg, SOS_DIGEST_MAX, &a), SOS_OK);
    uint64_t asked[SOS_BUCKET_WORDS] = {0};
    asked[0] = (1u << 3) | (1u << 9);
    sos_digest_entry_t *got = NULL;
    uint32_t n_got = 0;
    CHECK_RC(sos_core_take_digest_ack(&mine, &a.reply, 16, asked, NULL, &got, &n_got), SOS_OK);
    CHECK(got && n_got == c3 + c9);
    CHECK(memcmp(got, ours + f3, c3 * sizeof *got) == 0);
    CHECK(memcmp(got + c3, ours + f9, c9 * sizeof *got) == 0);
    free(got);

    SECTION("a DIGEST_ACK naming a bucket not asked is refused");
    asked[0] = 1u << 3;
    CHECK_RC(sos_core_take_digest_ack(&mine, &a.reply, 16, asked, NULL, &got, &n_got),
             SOS_ERR_MALFORMED);
    CHECK(!got && n_got == 0);

    SECTION("nor one of another bucket count, with sums, or with a piece nobody asked");
    asked[0] = (1u << 3) | (1u << 9);
    CHECK_RC(sos_core_take_digest_ack(&mine, &a.reply, 32, asked, NULL, &got, &n_got),
             SOS_ERR_MALFORMED);
    a.reply.n_sums = 16;
    CHECK_RC(sos_core_take_digest_ack(&mine, &a.reply, 16, asked, NULL, &got, &n_got),
             SOS_ERR_MALFORMED);
    a.reply.n_sums = 0;
    a.reply.has_piece = true;
    a.reply.piece.bucket = 1;
    a.reply.piece.to_end = true;
    a.reply.piece.from[0] = 0x10;
    CHECK_RC(sos_core_take_digest_ack(&mine, &a.reply, 16, asked, NULL, &got, &n_got),
             SOS_ERR_MALFORMED);
    a.reply.has_piece = false;
    CHECK_RC(sos_core_take_digest_ack(&bare, &a.reply, 16, asked, NULL, &got, &n_got),
             SOS_ERR_INVALID);
    sos_digest_answer_release(&a);

    SECTION("a piece answered: our entries of exactly its range");
    sos_digest_entry_t *big = s_digest(400, 0x1000, 1);
    sos_digest_view_t bv = s_view(big, 400, h);
    sos_bucket_piece_t p = {.bucket = 1, .to_end = true};
    memcpy(p.from, big[0].origin, SOS_NODEID_BYTES);
    dg = s_ask(16, NULL, 0, &p);
    CHECK_RC(sos_core_answer_digest(&bv, &dg, 100, &a), SOS_OK);
    memset(asked, 0, sizeof asked);
    CHECK_RC(sos_core_take_digest_ack(&bv, &a.reply, 16, asked, &p, &got, &n_got), SOS_OK);
    CHECK(n_got == 100 && memcmp(got, big, 100 * sizeof *got) == 0);
    free(got);
    CHECK_RC(sos_core_take_digest_ack(&bv, &a.reply, 16, asked, NULL, &got, &n_got),
             SOS_ERR_MALFORMED); /* a piece where none was asked */
    sos_digest_answer_release(&a);

    free(big);
    free(theirs);
    free(ours);
}

/*  A DELTA's answer over a real LMDB store holding a's rooms at 1 and 2 and its worker
    record at 3. */
static void
s_delta(void)
{
    char dir[] = "/tmp/sos-test-core-answer-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    sos_store_t *store = NULL;
    CHECK_RC(sos_store_open(&store, dir, 64ULL << 20), SOS_OK);
    sos_identity_t me, a;
    test_seed_identity(&me, 1);
    test_seed_identity(&a, 50);
    sos_txn_t *txn = NULL;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    for (uint64_t v = 1; v <= 3; v++) {
        sos_record_t rec;
        char hash[SOS_ROOMHASH_LEN + 1];
        snprintf(hash, sizeof hash, "%02x%02x00000000%04x", a.pk[0], a.pk[1], (unsigned)v);
        if (v < 3)
            test_room(&rec, v, hash);
        else
            test_worker(&rec, v, "tcp://127.0.0.1:9999");
        CHECK_RC(sos_record_sign(&rec, &a), SOS_OK);
        CHECK_RC(sos_dir_put(txn, &rec), SOS_OK);
    }
    sos_sync_ctx_t ctx = {.self_id = me.pk};
    sos_sync_delta_t d;
    sos_gmsg_t delta, reply;

    SECTION("a DELTA that wants a's records above 1: a DELTA_ACK with 2 and 3");
    memset(&delta, 0, sizeof delta);
    delta.req_id = 31;
    sos_digest_entry_t want = {.version = 1};
    memcpy(want.origin, a.pk, SOS_NODEID_BYTES);
    delta.want = &want;
    delta.n_want = 1;
    CHECK_RC(sos_core_answer_delta(&ctx, txn, &delta, &d, &reply), SOS_OK);
    CHECK(reply.req_id == 31 && reply.flags == 0 && d.batch.n == 2 && !d.more);
    sos_record_t got;
    CHECK_RC(sos_record_decode(&got, d.batch.wires[1], d.batch.lens[1]), SOS_OK);
    CHECK(got.version == 3 && memcmp(got.origin, a.pk, SOS_NODEID_BYTES) == 0);
    sos_sync_delta_release(&d);

    SECTION("a DELTA that wants nothing is answered all the same, empty");
    delta.n_want = 0;
    delta.want = NULL;
    CHECK_RC(sos_core_answer_delta(&ctx, txn, &delta, &d, &reply), SOS_OK);
    CHECK(reply.req_id == 31 && reply.flags == 0 && d.batch.n == 0);
    sos_sync_delta_release(&d);

    SECTION("a batch cut by its byte cap says MORE");
    delta.want = &want;
    delta.n_want = 1;
    ctx.max_bytes = 1;
    CHECK_RC(sos_core_answer_delta(&ctx, txn, &delta, &d, &reply), SOS_OK);
    CHECK(d.more && (reply.flags & SOS_GMSG_MORE) && d.batch.n < 2);
    sos_sync_delta_release(&d);
    ctx.max_bytes = 0;

    /*  The initiator's DELTA (sos_core_delta_out): our digest holds a at 3. */
    sos_identity_t b;
    test_seed_identity(&b, 60);
    sos_delta_out_t out;
    sos_digest_entry_t mine = {.version = 3};
    memcpy(mine.origin, a.pk, SOS_NODEID_BYTES);

    SECTION("the peer holds a at 1: a's records 2 and 3 go in the batch, nothing wanted");
    sos_digest_entry_t theirs[3];
    memset(theirs, 0, sizeof theirs);
    memcpy(theirs[0].origin, a.pk, SOS_NODEID_BYTES);
    theirs[0].version = 1;
    CHECK_RC(sos_core_delta_out(&ctx, txn, &mine, 1, theirs, 1, 41, &out), SOS_OK);
    CHECK(out.msg.req_id == 41 && out.msg.flags == 0 && !out.d.more);
    CHECK(out.msg.n_want == 0 && out.d.n_removed == 0 && out.d.batch.n == 2);
    CHECK_RC(sos_record_decode(&got, out.d.batch.wires[0], out.d.batch.lens[0]), SOS_OK);
    CHECK(got.version == 2 && memcmp(got.origin, a.pk, SOS_NODEID_BYTES) == 0);
    CHECK_RC(sos_record_decode(&got, out.d.batch.wires[1], out.d.batch.lens[1]), SOS_OK);
    CHECK(got.version == 3);
    sos_delta_out_release(&out);
    CHECK(out.d.batch.n == 0 && !out.d.want && !out.msg.want);

    SECTION("what we lack is wanted at our version; our own origin never is");
    memcpy(theirs[0].origin, a.pk, SOS_NODEID_BYTES);
    theirs[0].version = 3;
    memcpy(theirs[1].origin, b.pk, SOS_NODEID_BYTES);
    theirs[1].version = 5;
    memcpy(theirs[2].origin, me.pk, SOS_NODEID_BYTES);
    theirs[2].version = 9;
    mine.version = 3;
    CHECK_RC(sos_core_delta_out(&ctx, txn, &mine, 1, theirs, 3, 42, &out), SOS_OK);
    CHECK(out.msg.req_id == 42 && out.d.batch.n == 0 && out.msg.flags == 0);
    CHECK(out.msg.n_want == 1 && out.msg.want == out.d.want && out.d.n_want == 1);
    CHECK(memcmp(out.msg.want[0].origin, b.pk, SOS_NODEID_BYTES) == 0 &&
          out.msg.want[0].version == 0);
    sos_delta_out_release(&out);

    SECTION("a removal the peer's digest shows of an origin we hold is handed to the caller");
    memset(theirs, 0, sizeof theirs);
    memcpy(theirs[0].origin, a.pk, SOS_NODEID_BYTES);
    theirs[0].version = 3;
    theirs[0].removed = true;
    CHECK_RC(sos_core_delta_out(&ctx, txn, &mine, 1, theirs, 1, 43, &out), SOS_OK);
    CHECK(out.d.n_removed == 1 && out.d.removed[0].version == 3 &&
          memcmp(out.d.removed[0].origin, a.pk, SOS_NODEID_BYTES) == 0);
    CHECK(out.d.batch.n == 0 && out.msg.n_want == 0);
    sos_delta_out_release(&out);

    SECTION("a batch cut by its byte cap sets MORE on the DELTA");
    memset(theirs, 0, sizeof theirs);
    memcpy(theirs[0].origin, a.pk, SOS_NODEID_BYTES);
    theirs[0].version = 1;
    ctx.max_bytes = 1;
    CHECK_RC(sos_core_delta_out(&ctx, txn, &mine, 1, theirs, 1, 44, &out), SOS_OK);
    CHECK(out.d.more && (out.msg.flags & SOS_GMSG_MORE) && out.d.batch.n < 2);
    CHECK(out.msg.req_id == 44);
    sos_delta_out_release(&out);
    ctx.max_bytes = 0;

    SECTION("a peer digest over SOS_DIGEST_MAX entries gives nothing to send");
    sos_digest_entry_t *huge = calloc(SOS_DIGEST_MAX + 1, sizeof *huge);
    CHECK(huge != NULL);
    CHECK_RC(sos_core_delta_out(&ctx, txn, &mine, 1, huge, SOS_DIGEST_MAX + 1, 45, &out),
             SOS_ERR_TOO_LARGE);
    CHECK(out.msg.req_id == 0 && out.d.batch.n == 0 && !out.d.want && !out.d.removed);
    sos_delta_out_release(&out);
    free(huge);

    sos_txn_abort(&txn);
    sos_store_destroy(&store);
    test_rmtree(dir);
}

int
main(void)
{
    test_init("test_core_answer");
    uint8_t h_mine[SOS_DIGEST_HASH_BYTES], h_theirs[SOS_DIGEST_HASH_BYTES];

    SECTION("a SYNC whose hash and count match ours: IN_SYNC, nothing more");
    sos_digest_entry_t *d200 = s_digest(200, 0, 300);
    sos_digest_view_t v200 = s_view(d200, 200, h_mine);
    sos_gmsg_t sync, reply;
    memset(&sync, 0, sizeof sync);
    sync.req_id = 5;
    memcpy(sync.hash, h_mine, sizeof sync.hash);
    sync.n_origins = 200;
    CHECK(sos_core_answer_sync(&v200, &sync, &reply) == SOS_ANSWER_IN_SYNC);
    CHECK(reply.req_id == 5 && reply.flags == SOS_GMSG_IN_SYNC && reply.n_origins == 200);
    CHECK(memcmp(reply.hash, h_mine, sizeof reply.hash) == 0);
    CHECK(!reply.digest && !reply.n_digest && !reply.has_buckets && !reply.has_self);

    SECTION("the same hash under another count is no match: the whole digest");
    sync.n_origins = 199;
    CHECK(sos_core_answer_sync(&v200, &sync, &reply) == SOS_ANSWER_WHOLE);
    CHECK(reply.flags == 0 && reply.digest == d200 && reply.n_digest == 200);

    SECTION("200 origins against another digest: the whole digest, borrowed; none at hand");
    sos_digest_entry_t *d150 = s_digest(150, 0, 400);
    s_view(d150, 150, h_theirs);
    memcpy(sync.hash, h_theirs, sizeof sync.hash);
    sync.n_origins = 150;
    CHECK(sos_core_answer_sync(&v200, &sync, &reply) == SOS_ANSWER_WHOLE);
    CHECK(reply.digest == d200 && reply.n_digest == 200 && !reply.has_buckets);
    sos_digest_view_t bare = {.hash = h_mine, .n = 200};
    CHECK(sos_core_answer_sync(&bare, &sync, &reply) == SOS_ANSWER_WHOLE);
    CHECK(!reply.digest && reply.n_digest == 0 && reply.n_origins == 200);

    SECTION("300 origins against 200: bucket sums, nb for 300; the caller's sums");
    sos_digest_entry_t *d300 = s_digest(300, 0, 200);
    sos_digest_view_t v300 = s_view(d300, 300, h_mine);
    memcpy(sync.hash, h_theirs, sizeof sync.hash);
    sync.n_origins = 200;
    CHECK(sos_core_answer_sync(&v300, &sync, &reply) == SOS_ANSWER_SUMS);
    CHECK(reply.has_buckets && reply.nb == sos_digest_nbuckets(300) && reply.nb == 16);
    CHECK(reply.n_sums == reply.nb && !reply.sums && !reply.digest && !reply.n_buckets);
    CHECK(reply.n_origins == 300 && reply.flags == 0);

    SECTION("a SYNC that claims more origins: nb for its count, capped whatever it says");
    sync.n_origins = 5000;
    CHECK(sos_core_answer_sync(&v300, &sync, &reply) == SOS_ANSWER_SUMS);
    CHECK(reply.nb == sos_digest_nbuckets(5000) && reply.nb == 256);
    sync.n_origins = UINT32_MAX;
    CHECK(sos_core_answer_sync(&v300, &sync, &reply) == SOS_ANSWER_SUMS);
    CHECK(reply.nb == SOS_BUCKETS_MAX);

    SECTION("a DIGEST of two buckets: their entries, both covered, checked by the asker");
    sos_digest_answer_t a;
    uint16_t two[] = {3, 9};
    sos_gmsg_t dg = s_ask(16, two, 2, NULL);
    CHECK_RC(sos_core_answer_digest(&v300, &dg, SOS_DIGEST_MAX, &a), SOS_OK);
    CHECK(a.reply.req_id == 77 && a.reply.has_buckets && a.reply.nb == 16);
    CHECK(a.reply.n_buckets == 2 && a.reply.buckets[0] == 3 && a.reply.buckets[1] == 9);
    CHECK(!a.reply.has_piece && a.reply.n_origins == 300);
    CHECK(memcmp(a.reply.hash, h_mine, sizeof a.reply.hash) == 0);
    uint32_t f3, c3, f9, c9;
    sos_digest_bucket_range(d300, 300, 16, 3, &f3, &c3);
    sos_digest_bucket_range(d300, 300, 16, 9, &f9, &c9);
    CHECK(c3 > 0 && c9 > 0 && a.reply.n_digest == c3 + c9);
    CHECK(memcmp(a.reply.digest, d300 + f3, c3 * sizeof *d300) == 0);
    CHECK(memcmp(a.reply.digest + c3, d300 + f9, c9 * sizeof *d300) == 0);
    uint64_t asked[SOS_BUCKET_WORDS] = {0};
    asked[0] = (1u << 3) | (1u << 9);
    CHECK(sos_digest_buckets_check(16, asked, NULL, a.reply.buckets, a.reply.n_buckets, NULL,
                                   a.reply.digest, a.reply.n_digest));
    sos_digest_answer_release(&a);
    CHECK(!a.entries && !a.covered);
    sos_digest_answer_release(NULL);

    SECTION("buckets asked beyond the cap: the answer stays within it, the rest uncovered");
    uint16_t all[16];
    for (uint16_t b = 0; b < 16; b++)
        all[b] = b;
    dg = s_ask(16, all, 16, NULL);
    uint32_t cap = 3 * c3; /* room for about three buckets */
    CHECK_RC(sos_core_answer_digest(&v300, &dg, cap, &a), SOS_OK);
    CHECK(a.reply.n_digest <= cap && a.reply.n_buckets >= 2 && a.reply.n_buckets < 16);
    memset(asked, 0, sizeof asked);
    asked[0] = 0xffff;
    CHECK(sos_digest_buckets_check(16, asked, NULL, a.reply.buckets, a.reply.n_buckets, NULL,
                                   a.reply.digest, a.reply.n_digest));
    sos_digest_answer_release(&a);

    SECTION("a bucket larger than the cap, asked as a piece: answered in a piece to its cap");
    sos_digest_entry_t *dbig = s_digest(400, 0x1000, 1); /* all 400 in bucket 1 of 16 */
    sos_digest_view_t vbig = s_view(dbig, 400, h_mine);
    sos_bucket_piece_t p = {.bucket = 1, .to_end = true};
    memcpy(p.from, dbig[0].origin, SOS_NODEID_BYTES);
    dg = s_ask(16, NULL, 0, &p);
    CHECK_RC(sos_core_answer_digest(&vbig, &dg, 100, &a), SOS_OK);
    CHECK(a.reply.has_piece && a.reply.piece.bucket == 1 && !a.reply.piece.to_end);
    CHECK(a.reply.n_digest == 100 && a.reply.n_buckets == 0);
    CHECK(memcmp(a.reply.piece.from, dbig[0].origin, SOS_NODEID_BYTES) == 0);
    CHECK(memcmp(a.reply.piece.to, dbig[99].origin, SOS_NODEID_BYTES) == 0);
    memset(asked, 0, sizeof asked);
    CHECK(sos_digest_buckets_check(16, asked, &p, a.reply.buckets, 0, &a.reply.piece,
                                   a.reply.digest, a.reply.n_digest));
    sos_digest_answer_release(&a);

    SECTION("the last piece runs to the bucket's end");
    memcpy(p.from, dbig[350].origin, SOS_NODEID_BYTES);
    dg = s_ask(16, NULL, 0, &p);
    CHECK_RC(sos_core_answer_digest(&vbig, &dg, 100, &a), SOS_OK);
    CHECK(a.reply.has_piece && a.reply.piece.to_end && a.reply.n_digest == 50);
    sos_digest_answer_release(&a);

    SECTION("a whole bucket too large for the cap is not covered: the asker makes it a piece");
    uint16_t one[] = {1};
    dg = s_ask(16, one, 1, NULL);
    CHECK_RC(sos_core_answer_digest(&vbig, &dg, 100, &a), SOS_OK);
    CHECK(a.reply.n_buckets == 0 && a.reply.n_digest == 0 && !a.reply.has_piece);
    sos_digest_answer_release(&a);

    SECTION("an empty digest answers a DIGEST with nothing covered but the empty buckets");
    sos_digest_entry_t none;
    sos_digest_view_t v0 = {.hash = h_mine, .n = 0, .entries = &none};
    dg = s_ask(16, two, 2, NULL);
    CHECK_RC(sos_core_answer_digest(&v0, &dg, SOS_DIGEST_MAX, &a), SOS_OK);
    CHECK(a.reply.n_digest == 0 && a.reply.n_buckets == 2);
    sos_digest_answer_release(&a);

    SECTION("DIGESTs of the wrong shape are refused whole, and nothing is allocated");
    sos_gmsg_t bad = s_ask(16, two, 2, NULL);
    bad.has_buckets = false;
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    CHECK(!a.entries && !a.covered);
    bad = s_ask(16, NULL, 0, NULL); /* neither buckets nor a piece */
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    bad = s_ask(16, two, 2, NULL);
    bad.n_sums = 16;
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    bad = s_ask(16, two, 2, NULL);
    bad.n_digest = 1;
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    bad = s_ask(16, two, 2, NULL);
    bad.n_want = 1;
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    bad = s_ask(16, two, 2, NULL);
    bad.has_self = true;
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    p.to_end = false; /* a piece asked names no end */
    memcpy(p.to, dbig[10].origin, SOS_NODEID_BYTES);
    memcpy(p.from, dbig[0].origin, SOS_NODEID_BYTES);
    bad = s_ask(16, NULL, 0, &p);
    CHECK_RC(sos_core_answer_digest(&vbig, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    uint16_t unsorted[] = {9, 3};
    bad = s_ask(16, unsorted, 2, NULL);
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    uint16_t beyond[] = {3, 16};
    bad = s_ask(16, beyond, 2, NULL);
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    bad = s_ask(12, two, 2, NULL); /* no power of two */
    CHECK_RC(sos_core_answer_digest(&v300, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    p.to_end = true;
    uint16_t with_piece[] = {1, 3};
    bad = s_ask(16, with_piece, 2, &p); /* the piece's bucket asked whole beside it */
    CHECK_RC(sos_core_answer_digest(&vbig, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);
    p.bucket = 2; /* from is in bucket 1 */
    bad = s_ask(16, NULL, 0, &p);
    CHECK_RC(sos_core_answer_digest(&vbig, &bad, SOS_DIGEST_MAX, &a), SOS_ERR_MALFORMED);

    SECTION("without the digest at hand or without room, nothing is answered");
    dg = s_ask(16, two, 2, NULL);
    CHECK_RC(sos_core_answer_digest(&bare, &dg, SOS_DIGEST_MAX, &a), SOS_ERR_INVALID);
    CHECK_RC(sos_core_answer_digest(&v300, &dg, 0, &a), SOS_ERR_INVALID);
    CHECK(!a.entries && !a.covered);

    free(d200);
    free(d150);
    free(d300);
    free(dbig);
    s_initiator();
    s_plan_step();
    s_delta();
    return test_done("test_core_answer");
}
