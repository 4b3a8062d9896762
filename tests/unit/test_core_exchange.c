/*  test_core_exchange.c: the gossip core's exchange state machine as scripted sequences of
    events (picked, sent or not, replies awaited or not, ticks at given times) and the
    actions and states that come out, one row of the table in sos_core_exchange.h at a
    time. */
#include "proto_test.h"
#include "sos_core_exchange.h"

#define T 2000 /* the conservative deadline (ms) */

int
main(void)
{
    test_init("test_core_exchange");

    SECTION("idle, picked, connected: SYNC; sent: wait for its SYNC_ACK until the deadline");
    sos_exchange_t ex = {0};
    CHECK(sos_exchange_pick(&ex, true) == SOS_EX_DO_SYNC);
    sos_exchange_sync_sent(&ex, 11, 1000, 300);
    CHECK(ex.state == SOS_EX_WAIT_SYNC_ACK && ex.req_id == 11 && ex.sent_mono == 1000);
    CHECK(ex.deadline_mono == 1300);
    CHECK(sos_exchange_pick(&ex, true) == SOS_EX_DO_NOTHING); /* one exchange at a time */
    CHECK(sos_exchange_tick(&ex, 1299) == SOS_EX_DO_NOTHING);

    SECTION("a reply that is not the one awaited is dropped and changes nothing");
    CHECK(sos_exchange_reply(&ex, false, 12) == SOS_EX_DO_DROP); /* another req_id */
    CHECK(sos_exchange_reply(&ex, true, 11) == SOS_EX_DO_DROP);  /* a DELTA_ACK now */
    CHECK(ex.state == SOS_EX_WAIT_SYNC_ACK && ex.req_id == 11);
    CHECK(sos_exchange_reply(&ex, false, 11) == SOS_EX_DO_TAKE);

    SECTION("SYNC_ACK in sync: done, idle; a late copy of it is dropped");
    CHECK(sos_exchange_sync_ack(&ex, true) == SOS_EX_DO_DONE);
    CHECK(ex.state == SOS_EX_IDLE && ex.req_id == 0);
    CHECK(sos_exchange_reply(&ex, false, 11) == SOS_EX_DO_DROP);
    CHECK(sos_exchange_reply(&ex, false, 0) == SOS_EX_DO_DROP);
    CHECK(sos_exchange_tick(&ex, 99999) == SOS_EX_DO_NOTHING);

    SECTION("SYNC_ACK with a digest: DELTA; DELTA_ACK: done");
    CHECK(sos_exchange_pick(&ex, true) == SOS_EX_DO_SYNC);
    sos_exchange_sync_sent(&ex, 21, 2000, 300);
    CHECK(sos_exchange_reply(&ex, false, 21) == SOS_EX_DO_TAKE);
    CHECK(sos_exchange_sync_ack(&ex, false) == SOS_EX_DO_DELTA);
    sos_exchange_delta_sent(&ex, 22, false, 2050, 300);
    CHECK(ex.state == SOS_EX_WAIT_DELTA_ACK && ex.req_id == 22 && ex.deadline_mono == 2350);
    CHECK(sos_exchange_reply(&ex, false, 22) == SOS_EX_DO_DROP); /* a SYNC_ACK now */
    CHECK(sos_exchange_reply(&ex, true, 21) == SOS_EX_DO_DROP);  /* the SYNC's id */
    CHECK(sos_exchange_reply(&ex, true, 22) == SOS_EX_DO_TAKE);
    CHECK(sos_exchange_delta_ack(&ex, false) == SOS_EX_DO_DONE);
    CHECK(ex.state == SOS_EX_IDLE && ex.req_id == 0);

    SECTION("a truncated batch, ours or theirs, asks for another exchange at once");
    sos_exchange_sync_sent(&ex, 31, 3000, 300);
    CHECK(sos_exchange_sync_ack(&ex, false) == SOS_EX_DO_DELTA);
    sos_exchange_delta_sent(&ex, 32, true, 3010, 300); /* our DELTA was truncated */
    CHECK(ex.again);
    CHECK(sos_exchange_delta_ack(&ex, false) == SOS_EX_DO_SYNC);
    CHECK(ex.state == SOS_EX_IDLE);
    CHECK(sos_exchange_pick(&ex, true) == SOS_EX_DO_SYNC);
    sos_exchange_sync_sent(&ex, 33, 3100, 300);
    CHECK(!ex.again); /* the new exchange starts afresh */
    CHECK(sos_exchange_sync_ack(&ex, false) == SOS_EX_DO_DELTA);
    sos_exchange_delta_sent(&ex, 34, false, 3110, 300);
    CHECK(sos_exchange_delta_ack(&ex, true) == SOS_EX_DO_SYNC); /* their DELTA_ACK was */

    SECTION("no answer by the deadline: failure, idle, and its reply is dropped after");
    sos_exchange_sync_sent(&ex, 41, 4000, 300);
    CHECK(sos_exchange_tick(&ex, 4299) == SOS_EX_DO_NOTHING);
    CHECK(sos_exchange_tick(&ex, 4300) == SOS_EX_DO_FAIL);
    sos_exchange_failed(&ex);
    CHECK(ex.state == SOS_EX_IDLE && ex.req_id == 0 && !ex.again);
    CHECK(sos_exchange_reply(&ex, false, 41) == SOS_EX_DO_DROP);
    sos_exchange_sync_sent(&ex, 42, 5000, 300);
    CHECK(sos_exchange_sync_ack(&ex, false) == SOS_EX_DO_DELTA);
    sos_exchange_delta_sent(&ex, 43, true, 5100, 300);
    CHECK(sos_exchange_tick(&ex, 5400) == SOS_EX_DO_FAIL);
    sos_exchange_failed(&ex);
    CHECK(ex.state == SOS_EX_IDLE && !ex.again);
    CHECK(sos_exchange_reply(&ex, true, 43) == SOS_EX_DO_DROP);

    SECTION("picked without a connection: open it, then SYNC at each tick until it is up");
    sos_exchange_t c = {0};
    CHECK(sos_exchange_pick(&c, false) == SOS_EX_DO_OPEN);
    sos_exchange_connecting(&c, 10000, T);
    CHECK(c.state == SOS_EX_CONNECTING && c.deadline_mono == 10000 + T);
    CHECK(sos_exchange_tick(&c, 10100) == SOS_EX_DO_SYNC);
    CHECK(sos_exchange_not_sent(&c, 10000, T, 10100) == SOS_EX_DO_NOTHING);
    CHECK(c.state == SOS_EX_CONNECTING);
    CHECK(sos_exchange_pick(&c, true) == SOS_EX_DO_SYNC); /* a round may pick it too */
    CHECK(sos_exchange_tick(&c, 10200) == SOS_EX_DO_SYNC);
    sos_exchange_sync_sent(&c, 51, 10200, 300);
    CHECK(c.state == SOS_EX_WAIT_SYNC_ACK);

    SECTION("a connection that stays down past the conservative deadline: failure");
    sos_exchange_t d = {0};
    sos_exchange_connecting(&d, 20000, T);
    CHECK(sos_exchange_not_sent(&d, 20000, T, 20000 + T) == SOS_EX_DO_NOTHING);
    CHECK(sos_exchange_not_sent(&d, 20000, T, 20001 + T) == SOS_EX_DO_FAIL);
    sos_exchange_failed(&d);
    CHECK(d.state == SOS_EX_IDLE);
    SECTION("an old connection that cannot send fails at once");
    sos_exchange_t o = {0};
    CHECK(sos_exchange_pick(&o, true) == SOS_EX_DO_SYNC);
    CHECK(sos_exchange_not_sent(&o, 0, T, 60000) == SOS_EX_DO_FAIL);

    SECTION("the answer to a SYNC given up on gives its round trip, once");
    sos_exchange_t l = {0};
    sos_exchange_sync_sent(&l, 77, 30000, 200);
    CHECK(sos_exchange_tick(&l, 30200) == SOS_EX_DO_FAIL);
    sos_exchange_failed(&l);
    uint64_t rtt = 0;
    CHECK(sos_exchange_reply(&l, false, 77) == SOS_EX_DO_DROP);
    CHECK(!sos_exchange_late(&l, false, 78, 30450, &rtt)); /* not that SYNC's answer */
    CHECK(!sos_exchange_late(&l, true, 77, 30450, &rtt));  /* a DELTA_ACK is no SYNC_ACK */
    CHECK(sos_exchange_late(&l, false, 77, 30450, &rtt) && rtt == 450);
    CHECK(!sos_exchange_late(&l, false, 77, 30460, &rtt)); /* a copy: no second sample */
    /*  a SYNC answered in time leaves nothing to come late; nor does a connection that
        never came up */
    sos_exchange_sync_sent(&l, 79, 31000, 200);
    CHECK(sos_exchange_sync_ack(&l, true) == SOS_EX_DO_DONE);
    CHECK(!sos_exchange_late(&l, false, 79, 31300, &rtt));
    sos_exchange_t n = {0};
    sos_exchange_connecting(&n, 40000, T);
    sos_exchange_failed(&n);
    CHECK(!sos_exchange_late(&n, false, 0, 41000, &rtt));

    SECTION("SYNC_ACK with bucket sums: DIGEST; DIGEST_ACK: DELTA; DELTA_ACK: done");
    sos_exchange_t b = {0};
    CHECK(sos_exchange_pick(&b, true) == SOS_EX_DO_SYNC);
    sos_exchange_sync_sent(&b, 61, 50000, 300);
    CHECK(sos_exchange_reply(&b, SOS_EX_REPLY_SYNC_ACK, 61) == SOS_EX_DO_TAKE);
    CHECK(sos_exchange_sums(&b, 3) == SOS_EX_DO_DIGEST);
    const uint16_t asked[3] = {2, 64, 1023};
    sos_exchange_digest_sent(&b, 62, 1024, asked, 3, NULL, false, 50040, 400);
    CHECK(b.state == SOS_EX_WAIT_DIGEST_ACK && b.req_id == 62 && b.deadline_mono == 50440);
    CHECK(b.nb == 1024 && (b.asked[0] >> 2 & 1) && (b.asked[1] & 1) && (b.asked[15] >> 63 & 1));
    CHECK(!(b.asked[0] >> 3 & 1) && !(b.asked[0] & 1));
    CHECK(sos_exchange_pick(&b, true) == SOS_EX_DO_NOTHING); /* one exchange at a time */
    CHECK(sos_exchange_reply(&b, SOS_EX_REPLY_SYNC_ACK, 62) == SOS_EX_DO_DROP);
    CHECK(sos_exchange_reply(&b, SOS_EX_REPLY_DELTA_ACK, 62) == SOS_EX_DO_DROP);
    CHECK(sos_exchange_reply(&b, SOS_EX_REPLY_DIGEST_ACK, 61) == SOS_EX_DO_DROP);
    CHECK(sos_exchange_reply(&b, SOS_EX_REPLY_DIGEST_ACK, 62) == SOS_EX_DO_TAKE);
    CHECK(sos_exchange_digest_ack(&b, asked, 3, NULL) == SOS_EX_DO_DELTA);
    CHECK(b.cursor.nb == 0); /* every bucket asked was covered: no piece to follow */
    sos_exchange_delta_sent(&b, 63, false, 50100, 300);
    CHECK(b.state == SOS_EX_WAIT_DELTA_ACK && !b.again);
    CHECK(sos_exchange_reply(&b, SOS_EX_REPLY_DIGEST_ACK, 63) == SOS_EX_DO_DROP);
    CHECK(sos_exchange_reply(&b, SOS_EX_REPLY_DELTA_ACK, 63) == SOS_EX_DO_TAKE);
    CHECK(sos_exchange_delta_ack(&b, false) == SOS_EX_DO_DONE);
    CHECK(b.state == SOS_EX_IDLE);

    SECTION("bucket sums that all match ours: done, idle");
    sos_exchange_sync_sent(&b, 71, 51000, 300);
    CHECK(sos_exchange_sums(&b, 0) == SOS_EX_DO_DONE);
    CHECK(b.state == SOS_EX_IDLE && b.req_id == 0);

    SECTION("buckets left out of the DIGEST: another exchange once this one ends");
    sos_exchange_sync_sent(&b, 81, 52000, 300);
    CHECK(sos_exchange_sums(&b, 1) == SOS_EX_DO_DIGEST);
    sos_exchange_digest_sent(&b, 82, 16, asked, 1, NULL, true, 52010, 300);
    CHECK(b.again);
    CHECK(sos_exchange_digest_ack(&b, asked, 1, NULL) == SOS_EX_DO_DELTA);
    sos_exchange_delta_sent(&b, 83, false, 52020, 300); /* our batch was not truncated */
    CHECK(b.again);
    CHECK(sos_exchange_delta_ack(&b, false) == SOS_EX_DO_SYNC);

    SECTION("no DIGEST_ACK by its own deadline: failure; its late reply is no RTT sample");
    sos_exchange_sync_sent(&b, 91, 60000, 300);
    CHECK(sos_exchange_sums(&b, 2) == SOS_EX_DO_DIGEST);
    sos_exchange_digest_sent(&b, 92, 64, asked, 2, NULL, false, 60100, 500);
    CHECK(sos_exchange_tick(&b, 60599) == SOS_EX_DO_NOTHING);
    CHECK(sos_exchange_tick(&b, 60600) == SOS_EX_DO_FAIL);
    sos_exchange_failed(&b);
    CHECK(b.state == SOS_EX_IDLE && b.req_id == 0 && !b.again);
    CHECK(sos_exchange_reply(&b, SOS_EX_REPLY_DIGEST_ACK, 92) == SOS_EX_DO_DROP);
    CHECK(!sos_exchange_late(&b, SOS_EX_REPLY_DIGEST_ACK, 92, 60700, &rtt));

    SECTION("a bucket too large for one answer: covered in pieces, each at once after the "
            "last, until the bucket's end");
    {
        sos_exchange_t p = {0};
        const uint16_t two[2] = {3, 9};
        const uint32_t nb = 16;
        uint8_t mine[16][16] = {{0}}, theirs[16][16] = {{0}};
        theirs[9][0] = 1; /* bucket 9 differs */
        /*  Both asked whole; 3 came back, 9 did not fit: a pass of pieces starts at once. */
        sos_exchange_sync_sent(&p, 101, 70000, 300);
        CHECK(sos_exchange_sums(&p, 2) == SOS_EX_DO_DIGEST);
        sos_exchange_digest_sent(&p, 102, nb, two, 2, NULL, false, 70010, 300);
        CHECK(sos_exchange_digest_ack(&p, two, 1, NULL) == SOS_EX_DO_DELTA);
        CHECK(p.again && p.cursor.nb == nb && p.cursor.bucket == 9);
        sos_exchange_delta_sent(&p, 103, false, 70020, 300);
        CHECK(sos_exchange_delta_ack(&p, false) == SOS_EX_DO_SYNC);
        /*  The next SYNC_ACK's sums: the DIGEST asks bucket 9's piece from its start, alone. */
        sos_exchange_sync_sent(&p, 104, 70030, 300);
        sos_bucket_piece_t piece;
        CHECK(sos_piece_cursor_ask(&p.cursor, nb, (const uint8_t(*)[16])mine,
                                   (const uint8_t(*)[16])theirs, &piece));
        uint8_t first[SOS_NODEID_BYTES];
        sos_digest_bucket_first(nb, 9, first);
        CHECK(piece.bucket == 9 && piece.to_end && memcmp(piece.from, first, sizeof first) == 0);
        CHECK(sos_exchange_sums(&p, 1) == SOS_EX_DO_DIGEST);
        sos_exchange_digest_sent(&p, 105, nb, NULL, 0, &piece, false, 70040, 300);
        CHECK(p.piece_asked && p.piece.bucket == 9 && !p.again);
        /*  It stopped at an origin inside the bucket: the next piece starts right after. */
        sos_bucket_piece_t got = piece;
        got.to_end = false;
        memcpy(got.to, first, sizeof first);
        got.to[5] = 0x42;
        CHECK(sos_exchange_digest_ack(&p, NULL, 0, &got) == SOS_EX_DO_DELTA);
        CHECK(p.again && p.cursor.nb == nb && p.cursor.bucket == 9 && !p.piece_asked);
        CHECK(memcmp(p.cursor.from, got.to, 5) == 0 && p.cursor.from[5] == 0x42 &&
              p.cursor.from[31] == 1);
        sos_exchange_delta_sent(&p, 106, false, 70050, 300);
        CHECK(sos_exchange_delta_ack(&p, false) == SOS_EX_DO_SYNC);
        /*  The last piece reaches the bucket's end: the pass is over, no exchange at once. */
        sos_exchange_sync_sent(&p, 107, 70060, 300);
        CHECK(sos_piece_cursor_ask(&p.cursor, nb, (const uint8_t(*)[16])mine,
                                   (const uint8_t(*)[16])theirs, &piece));
        CHECK(memcmp(piece.from, p.cursor.from, sizeof piece.from) == 0);
        CHECK(sos_exchange_sums(&p, 1) == SOS_EX_DO_DIGEST);
        sos_exchange_digest_sent(&p, 108, nb, NULL, 0, &piece, false, 70070, 300);
        CHECK(sos_exchange_digest_ack(&p, NULL, 0, &piece) == SOS_EX_DO_DELTA);
        CHECK(!p.again && p.cursor.nb == 0 && p.cursor.last == 9);
        sos_exchange_delta_sent(&p, 109, false, 70080, 300);
        CHECK(sos_exchange_delta_ack(&p, false) == SOS_EX_DO_DONE);
        /*  A failed exchange keeps the cursor: the pass resumes with the next one. */
        p.cursor.nb = nb;
        sos_exchange_sync_sent(&p, 110, 70090, 300);
        sos_exchange_failed(&p);
        CHECK(p.cursor.nb == nb);
    }

    SECTION("state names");
    CHECK(strcmp(sos_exchange_state_name(SOS_EX_WAIT_DELTA_ACK), "wait_delta_ack") == 0);
    CHECK(strcmp(sos_exchange_state_name(SOS_EX_WAIT_DIGEST_ACK), "wait_digest_ack") == 0);
    return test_done("test_core_exchange");
}
