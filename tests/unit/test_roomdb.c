/*  test_roomdb.c: unit tests of the owned-room store: room state, members, message append
    with sequence numbers, idempotent message ids, the history limit and dropping a room. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto_test.h"
#include "tmpdir.h"
#include "sos_store.h"

#define ROOM_A "0123456789abcdef"
#define ROOM_B "0123456789abcdf0" /* sorts right after ROOM_A */
#define MEM_1  "00000000000000000000000000000001"
#define MEM_2  "00000000000000000000000000000002"
#define MEM_3  "ffffffffffffffffffffffffffffffff"

/* ------------------------------------------------------------ collectors ---- */

typedef struct {
    int n;
    char ids[8][SOS_MEMBER_ID_LEN + 1];
    char nicks[8][SOS_NICK_MAX + 1];
    uint64_t joined[8];
    int stop_after;
} s_members_t;

static int
s_on_member(void *arg, const char *member_id, const char *nickname, uint64_t joined_at)
{
    s_members_t *c = arg;
    if (c->n < 8) {
        snprintf(c->ids[c->n], sizeof c->ids[c->n], "%s", member_id);
        snprintf(c->nicks[c->n], sizeof c->nicks[c->n], "%s", nickname);
        c->joined[c->n] = joined_at;
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

typedef struct {
    int n;
    uint64_t seqs[64];
    uint64_t ts[64];
    char ids[64][SOS_MSGID_MAX + 1];
    char text[64][32];
    size_t content_len[64];
    int stop_after;
} s_msgs_t;

static int
s_on_message(void *arg, const sos_message_t *m)
{
    s_msgs_t *c = arg;
    if (c->n < 64) {
        c->seqs[c->n] = m->seq;
        c->ts[c->n] = m->timestamp;
        snprintf(c->ids[c->n], sizeof c->ids[c->n], "%.*s", (int)m->msg_id_len, m->msg_id);
        snprintf(c->text[c->n], sizeof c->text[c->n], "%.*s",
                 (int)(m->content_len < 31 ? m->content_len : 31), (const char *)m->content);
        c->content_len[c->n] = m->content_len;
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static s_msgs_t *
s_messages(sos_store_t *store, const char *room, uint64_t since)
{
    static s_msgs_t c;
    memset(&c, 0, sizeof c);
    sos_txn_t *txn;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_foreach_message(txn, room, since, s_on_message, &c), SOS_OK);
    sos_txn_abort(&txn);
    return &c;
}

static int
s_on_room(void *arg, const char *room_hash, const sos_room_state_t *state)
{
    (*(int *)arg)++;
    return 0;
}

/*  Append a text message; returns its seq (0 on failure). */
static uint64_t
s_send(sos_txn_t *txn, const char *room, const char *msg_id, const char *text, uint64_t ts,
       uint32_t limit, bool *dup_out, uint64_t *ts_out)
{
    sos_message_t m = {
        .timestamp = ts,
        .msg_id = msg_id,
        .msg_id_len = msg_id ? strlen(msg_id) : 0,
        .sender = "alice",
        .sender_len = 5,
        .content = (const uint8_t *)text,
        .content_len = strlen(text),
    };
    uint64_t seq = 0, got_ts = 0;
    bool dup = true;
    CHECK_RC(sos_roomdb_append(txn, room, &m, limit, &seq, &got_ts, &dup), SOS_OK);
    if (dup_out)
        *dup_out = dup;
    if (ts_out)
        *ts_out = got_ts;
    return seq;
}

/* ------------------------------------------------------------------ tests ---- */

static void
s_test_rooms(sos_store_t *store)
{
    sos_txn_t *txn;
    sos_room_state_t st;

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_create(txn, ROOM_A, 1000, 9000), SOS_OK);
    CHECK_RC(sos_roomdb_create(txn, ROOM_A, 1, 2), SOS_ERR_EXISTS);
    CHECK_RC(sos_roomdb_create(txn, "0123456789ABCDEF", 1, 2), SOS_ERR_INVALID);
    CHECK_RC(sos_roomdb_create(txn, "0123", 1, 2), SOS_ERR_INVALID);
    CHECK_RC(sos_roomdb_create(txn, ROOM_B, 2000, 8000), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_OK);
    CHECK(st.created_at == 1000 && st.expires_at == 9000 && st.last_seq == 0 &&
          st.message_count == 0 && st.member_count == 0);
    CHECK_RC(sos_roomdb_get(txn, ROOM_B, NULL), SOS_OK);
    CHECK_RC(sos_roomdb_create(txn, "00000000000000ee", 1, 2), SOS_ERR_INVALID); /* read-only */
    int n = 0;
    CHECK_RC(sos_roomdb_foreach(txn, s_on_room, &n), SOS_OK);
    CHECK(n == 2);
    sos_txn_abort(&txn);

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_set_expires(txn, ROOM_A, 9500), SOS_OK);
    CHECK_RC(sos_roomdb_set_expires(txn, "00000000000000ee", 1), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_OK);
    CHECK(st.expires_at == 9500 && st.created_at == 1000);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

/*  The directory's stored wire form of a room record, which the node compares with the
    records it keeps decoded: it must be the record as put, and change with it. */
static void
s_test_dir_wire(sos_store_t *store)
{
    sos_identity_t id;
    sos_identity_generate(&id);
    sos_record_t rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = SOS_REC_ROOM;
    rec.version = 1;
    snprintf(rec.url, sizeof rec.url, "tcp://127.0.0.1:7000");
    snprintf(rec.room_hash, sizeof rec.room_hash, "%s", ROOM_A);
    rec.created_at = 1;
    rec.expires_at = 9000;
    CHECK_RC(sos_record_sign(&rec, &id), SOS_OK);

    sos_txn_t *txn;
    const uint8_t *wire = NULL;
    size_t len = 0;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_dir_wire(txn, ROOM_A, &wire, &len), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_dir_wire(txn, "0123", &wire, &len), SOS_ERR_INVALID);
    CHECK_RC(sos_dir_put(txn, &rec), SOS_OK);
    CHECK_RC(sos_roomdb_dir_wire(txn, ROOM_A, &wire, &len), SOS_OK);
    CHECK(len == rec.wire_len && memcmp(wire, rec.wire, len) == 0);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  A newer version (the owner extended the room) is what the store then gives. */
    sos_record_t next = rec;
    next.version = 2;
    next.prev = 1;
    next.expires_at = 9500;
    CHECK_RC(sos_record_sign(&next, &id), SOS_OK);
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_dir_put(txn, &next), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_dir_wire(txn, ROOM_A, &wire, &len), SOS_OK);
    CHECK(len == next.wire_len && memcmp(wire, next.wire, len) == 0);
    CHECK(len != rec.wire_len || memcmp(wire, rec.wire, len) != 0);
    sos_txn_abort(&txn);
}

/*  An append without the msgids table stores the id with the message, where
    sos_roomdb_message_get finds it, and takes nothing for a retry (the caller's index does). */
static void
s_test_unindexed(sos_store_t *store)
{
    const char *room = "00000000000000aa";
    sos_txn_t *txn;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_create(txn, room, 1, 9000), SOS_OK);
    sos_message_t m = {.timestamp = 500,
                       .msg_id = "u-1",
                       .msg_id_len = 3,
                       .sender = "bob",
                       .sender_len = 3,
                       .content = (const uint8_t *)"hi",
                       .content_len = 2};
    uint64_t seq = 0, ts = 0;
    CHECK_RC(sos_roomdb_append_unindexed(txn, room, &m, 2, 0, NULL, &seq, &ts), SOS_OK);
    CHECK(seq == 1 && ts == 500);
    /*  With a hint of the newest message: a wrong seq is not used (the message is read), and
        the hint is updated on success. */
    sos_roomdb_last_t last = {.seq = 7, .timestamp = 100000};
    CHECK_RC(sos_roomdb_append_unindexed(txn, room, &m, 2, 0, &last, &seq, &ts), SOS_OK);
    CHECK(seq == 2 && ts == 501); /* not a retry here: stored again, stamped after the first */
    CHECK(last.seq == 2 && last.timestamp == 501);
    sos_message_t got;
    CHECK_RC(sos_roomdb_message_get(txn, room, 1, &got), SOS_OK);
    CHECK(got.seq == 1 && got.timestamp == 500 && got.msg_id_len == 3 &&
          memcmp(got.msg_id, "u-1", 3) == 0 && got.content_len == 2 &&
          memcmp(got.content, "hi", 2) == 0);
    CHECK_RC(sos_roomdb_message_get(txn, room, 3, &got), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_message_get(txn, "0123", 1, &got), SOS_ERR_INVALID);
    /*  The history limit still drops the oldest. */
    CHECK_RC(sos_roomdb_append_unindexed(txn, room, &m, 2, 0, &last, &seq, &ts), SOS_OK);
    CHECK(seq == 3 && ts == 502 && last.seq == 3 && last.timestamp == 502);
    CHECK_RC(sos_roomdb_message_get(txn, room, 1, &got), SOS_ERR_NOT_FOUND);
    sos_room_state_t st;
    CHECK_RC(sos_roomdb_get(txn, room, &st), SOS_OK);
    CHECK(st.message_count == 2 && st.last_seq == 3);
    /*  The indexed append sees none of these ids. */
    bool dup = true;
    CHECK_RC(sos_roomdb_append(txn, room, &m, 2, &seq, NULL, &dup), SOS_OK);
    CHECK(!dup && seq == 4);
    CHECK_RC(sos_roomdb_drop(txn, room), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

/*  An append with the state held by the caller: the caller's state follows the appends
    through the history limit and is stored only by sos_roomdb_put_state; a NULL state is
    refused. */
static void
s_test_held(sos_store_t *store)
{
    const char *room = "00000000000000ab";
    sos_txn_t *txn;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_create(txn, room, 1, 9000), SOS_OK);
    CHECK_RC(sos_roomdb_member_put(txn, room, "0123456789abcdef0123456789abcdef", "ana", 1),
             SOS_OK);
    sos_message_t m = {.timestamp = 500,
                       .msg_id = "h-1",
                       .msg_id_len = 3,
                       .sender = "ana",
                       .sender_len = 3,
                       .content = (const uint8_t *)"hello",
                       .content_len = 5};
    sos_room_state_t held, stored;
    CHECK_RC(sos_roomdb_get(txn, room, &held), SOS_OK);
    sos_roomdb_last_t last = {0};
    uint64_t seq = 0, ts = 0;
    for (int i = 1; i <= 5; i++) {
        CHECK_RC(sos_roomdb_append_held(txn, room, &m, 3, 0, &last, &held, &seq, &ts), SOS_OK);
        CHECK(seq == (uint64_t)i);
        CHECK(held.last_seq == (uint64_t)i && held.message_count == (i < 3 ? (uint32_t)i : 3));
        CHECK_RC(sos_roomdb_get(txn, room, &stored), SOS_OK);
        CHECK(stored.last_seq == 0 && stored.message_count == 0); /* not stored yet */
    }
    CHECK(held.last_seq == 5 && held.message_count == 3 && held.member_count == 1);
    CHECK_RC(sos_roomdb_put_state(txn, room, &held), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, room, &stored), SOS_OK);
    CHECK(memcmp(&held, &stored, sizeof held) == 0);
    CHECK_RC(sos_roomdb_put_state(txn, "0123", &held), SOS_ERR_INVALID);
    sos_message_t got;
    CHECK_RC(sos_roomdb_message_get(txn, room, 2, &got), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_message_get(txn, room, 3, &got), SOS_OK);
    CHECK_RC(sos_roomdb_append_held(txn, room, &m, 3, 0, &last, NULL, &seq, &ts), SOS_ERR_INVALID);
    CHECK_RC(sos_roomdb_drop(txn, room), SOS_OK);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

static void
s_test_members(sos_store_t *store)
{
    sos_txn_t *txn;
    sos_room_state_t st;
    char nick[SOS_NICK_MAX + 1];
    s_members_t c = {0};

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_member_put(txn, ROOM_A, MEM_3, "carol", 30), SOS_OK);
    CHECK_RC(sos_roomdb_member_put(txn, ROOM_A, MEM_1, "alice", 10), SOS_OK);
    CHECK_RC(sos_roomdb_member_put(txn, ROOM_A, MEM_2, "", 20), SOS_OK);
    CHECK_RC(sos_roomdb_member_put(txn, ROOM_B, MEM_1, "alice-in-b", 11), SOS_OK);
    CHECK_RC(sos_roomdb_member_put(txn, "00000000000000ee", MEM_1, "x", 1), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_member_put(txn, ROOM_A, "0000000000000000000000000000000G", "x", 1),
             SOS_ERR_INVALID);
    CHECK_RC(sos_roomdb_member_put(txn, ROOM_A, "0001", "x", 1), SOS_ERR_INVALID);
    CHECK_RC(sos_roomdb_member_put(txn, ROOM_A, MEM_1, "123456789012345678901", 1),
             SOS_ERR_TOO_LARGE);
    CHECK_RC(sos_roomdb_member_put(txn, ROOM_A, MEM_1, "12345678901234567890", 12), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_OK);
    CHECK(st.member_count == 3);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_member_get(txn, ROOM_A, MEM_1, nick), SOS_OK);
    CHECK(strcmp(nick, "12345678901234567890") == 0);
    CHECK_RC(sos_roomdb_member_get(txn, ROOM_A, MEM_2, nick), SOS_OK);
    CHECK(strcmp(nick, "") == 0);
    CHECK_RC(sos_roomdb_member_get(txn, ROOM_B, MEM_1, nick), SOS_OK);
    CHECK(strcmp(nick, "alice-in-b") == 0);
    CHECK_RC(sos_roomdb_member_get(txn, ROOM_B, MEM_2, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_member_get(txn, ROOM_A, MEM_3, NULL), SOS_OK);
    CHECK_RC(sos_roomdb_foreach_member(txn, ROOM_A, s_on_member, &c), SOS_OK);
    CHECK(c.n == 3);
    CHECK(strcmp(c.ids[0], MEM_1) == 0 && strcmp(c.ids[1], MEM_2) == 0 &&
          strcmp(c.ids[2], MEM_3) == 0);
    CHECK(strcmp(c.nicks[2], "carol") == 0 && c.joined[0] == 12 && c.joined[2] == 30);
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    CHECK_RC(sos_roomdb_foreach_member(txn, ROOM_A, s_on_member, &c), SOS_OK);
    CHECK(c.n == 2);
    memset(&c, 0, sizeof c);
    CHECK_RC(sos_roomdb_foreach_member(txn, ROOM_B, s_on_member, &c), SOS_OK);
    CHECK(c.n == 1 && strcmp(c.nicks[0], "alice-in-b") == 0);
    CHECK_RC(sos_roomdb_foreach_member(txn, "00000000000000ee", s_on_member, &c),
             SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_member_del(txn, ROOM_A, MEM_2), SOS_OK);
    CHECK_RC(sos_roomdb_member_del(txn, ROOM_A, MEM_2), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_member_del(txn, "00000000000000ee", MEM_2), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_OK);
    CHECK(st.member_count == 2);
    /*  The failed deletes changed nothing, so the transaction still commits. */
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_member_get(txn, ROOM_A, MEM_2, nick), SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);
}

static void
s_test_messages(sos_store_t *store)
{
    sos_txn_t *txn;
    sos_room_state_t st;
    bool dup;
    uint64_t ts;
    s_msgs_t *c;

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK(s_send(txn, ROOM_A, "m1", "hello", 101, 5, &dup, &ts) == 1 && !dup && ts == 101);
    CHECK(s_send(txn, ROOM_A, "m2", "world", 102, 5, &dup, NULL) == 2 && !dup);
    CHECK(s_send(txn, ROOM_B, "m1", "other room", 103, 5, &dup, NULL) == 1 && !dup);
    CHECK(s_send(txn, ROOM_A, "m3", "three", 104, 5, &dup, NULL) == 3 && !dup);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    c = s_messages(store, ROOM_A, 0);
    CHECK(c->n == 3 && c->seqs[0] == 1 && c->seqs[1] == 2 && c->seqs[2] == 3);
    CHECK(strcmp(c->text[0], "hello") == 0 && strcmp(c->ids[1], "m2") == 0 && c->ts[2] == 104);
    c = s_messages(store, ROOM_A, 2);
    CHECK(c->n == 1 && c->seqs[0] == 3);
    c = s_messages(store, ROOM_A, 3);
    CHECK(c->n == 0);
    c = s_messages(store, ROOM_A, UINT64_MAX);
    CHECK(c->n == 0);
    c = s_messages(store, ROOM_B, 0);
    CHECK(c->n == 1 && strcmp(c->text[0], "other room") == 0);

    /*  A retry of m2 answers with the first attempt's seq and timestamp, writing nothing. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK(s_send(txn, ROOM_A, "m2", "world again", 999, 5, &dup, &ts) == 2 && dup && ts == 102);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_OK);
    CHECK(st.last_seq == 3 && st.message_count == 3);
    /*  An empty msg_id is never a duplicate. */
    CHECK(s_send(txn, ROOM_A, NULL, "anon", 105, 5, &dup, NULL) == 4 && !dup);
    CHECK(s_send(txn, ROOM_A, NULL, "anon", 106, 5, &dup, NULL) == 5 && !dup);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  Bad input. */
    sos_message_t m = {
        .msg_id = "x", .msg_id_len = 1, .content = (const uint8_t *)"", .timestamp = 1};
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_append(txn, "00000000000000ee", &m, 5, NULL, NULL, NULL),
             SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_append(txn, ROOM_A, &m, 0, NULL, NULL, NULL), SOS_ERR_INVALID);
    m.msg_id_len = SOS_MSGID_MAX + 1;
    CHECK_RC(sos_roomdb_append(txn, ROOM_A, &m, 5, NULL, NULL, NULL), SOS_ERR_TOO_LARGE);
    m.msg_id_len = 1;
    m.sender = "123456789012345678901";
    m.sender_len = SOS_NICK_MAX + 1;
    CHECK_RC(sos_roomdb_append(txn, ROOM_A, &m, 5, NULL, NULL, NULL), SOS_ERR_TOO_LARGE);
    m.sender_len = 0;
    m.content_len = SOS_CONTENT_MAX + 1;
    CHECK_RC(sos_roomdb_append(txn, ROOM_A, &m, 5, NULL, NULL, NULL), SOS_ERR_TOO_LARGE);
    /*  A full-size message and the largest msg_id. */
    static uint8_t big[SOS_CONTENT_MAX];
    memset(big, 'z', sizeof big);
    char longid[SOS_MSGID_MAX + 1];
    memset(longid, 'k', SOS_MSGID_MAX);
    longid[SOS_MSGID_MAX] = '\0';
    m.content = big;
    m.content_len = sizeof big;
    m.msg_id = longid;
    m.msg_id_len = SOS_MSGID_MAX;
    uint64_t seq = 0;
    CHECK_RC(sos_roomdb_append(txn, ROOM_A, &m, 5, &seq, NULL, NULL), SOS_OK);
    CHECK(seq == 6);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    c = s_messages(store, ROOM_A, 5);
    CHECK(c->n == 1 && c->content_len[0] == SOS_CONTENT_MAX && strcmp(c->ids[0], longid) == 0);

    /*  The history limit of 5 dropped m1 (seq 1) when seq 6 came. */
    c = s_messages(store, ROOM_A, 0);
    CHECK(c->n == 5 && c->seqs[0] == 2 && c->seqs[4] == 6);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_OK);
    CHECK(st.last_seq == 6 && st.message_count == 5);
    sos_txn_abort(&txn);

    /*  A lower limit drops several; their ids go too, so a retry of m2 is stored anew. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK(s_send(txn, ROOM_A, "m7", "seven", 107, 2, &dup, NULL) == 7 && !dup);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_OK);
    CHECK(st.last_seq == 7 && st.message_count == 2);
    /*  seq 6 came stamped 1 and got 107 (one above seq 5's 106), so seq 7, stamped 107, got
        108: timestamps strictly increase in seq order whatever the clock says. */
    CHECK(s_send(txn, ROOM_A, "m2", "world again", 108, 2, &dup, &ts) == 8 && !dup && ts == 109);
    CHECK(s_send(txn, ROOM_A, "m7", "seven again", 109, 2, &dup, &ts) == 7 && dup && ts == 108);
    CHECK(s_send(txn, ROOM_A, longid, "dropped", 110, 2, &dup, NULL) == 9 && !dup);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    c = s_messages(store, ROOM_A, 0);
    CHECK(c->n == 2 && c->seqs[0] == 8 && c->seqs[1] == 9);
    CHECK(c->ts[0] == 109 && c->ts[1] == 110);
    CHECK(strcmp(c->text[0], "world again") == 0 && strcmp(c->text[1], "dropped") == 0);

    /*  Stopping early. */
    s_msgs_t stop = {.stop_after = 1};
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_foreach_message(txn, ROOM_A, 0, s_on_message, &stop), SOS_OK);
    CHECK(stop.n == 1 && stop.seqs[0] == 8);
    CHECK_RC(sos_roomdb_foreach_message(txn, "00000000000000ee", 0, s_on_message, &stop),
             SOS_ERR_NOT_FOUND);
    sos_txn_abort(&txn);

    /*  ROOM_B was not touched by ROOM_A's history limit. */
    c = s_messages(store, ROOM_B, 0);
    CHECK(c->n == 1 && c->seqs[0] == 1);

    /*  A clock that went back: the next message is stamped one above the newest. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK(s_send(txn, ROOM_A, "back", "earlier", 50, 2, &dup, &ts) == 10 && ts == 111);
    uint64_t last_ts = 0, at = 0;
    CHECK_RC(sos_roomdb_last_ts(txn, ROOM_A, &last_ts), SOS_OK);
    CHECK(last_ts == 111);
    CHECK_RC(sos_roomdb_seq_at(txn, ROOM_A, 110, &at), SOS_OK);
    CHECK(at == 9);
    CHECK_RC(sos_roomdb_seq_at(txn, ROOM_A, 5, &at), SOS_OK);
    CHECK(at == 0);
    CHECK_RC(sos_roomdb_seq_at(txn, ROOM_A, 1000, &at), SOS_OK);
    CHECK(at == 10);
    CHECK_RC(sos_roomdb_last_ts(txn, ROOM_B, &last_ts), SOS_OK);
    CHECK(last_ts == 103);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

static void
s_test_drop(sos_store_t *store)
{
    sos_txn_t *txn;
    sos_room_state_t st;
    bool dup;
    s_msgs_t *c;

    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_drop(txn, ROOM_A), SOS_OK);
    CHECK_RC(sos_roomdb_drop(txn, ROOM_A), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_drop(txn, "bad"), SOS_ERR_INVALID);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_roomdb_member_get(txn, ROOM_A, MEM_1, NULL), SOS_ERR_NOT_FOUND);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);

    /*  The neighbour room is intact. */
    char nick[SOS_NICK_MAX + 1];
    c = s_messages(store, ROOM_B, 0);
    CHECK(c->n == 1);
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_member_get(txn, ROOM_B, MEM_1, nick), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, ROOM_B, &st), SOS_OK);
    CHECK(st.member_count == 1 && st.message_count == 1);
    sos_txn_abort(&txn);

    /*  Recreated, the room starts empty: seq 1, and old ids are forgotten. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_create(txn, ROOM_A, 5000, 6000), SOS_OK);
    CHECK(s_send(txn, ROOM_A, "m2", "fresh", 200, 5, &dup, NULL) == 1 && !dup);
    CHECK_RC(sos_roomdb_get(txn, ROOM_A, &st), SOS_OK);
    CHECK(st.member_count == 0 && st.message_count == 1 && st.last_seq == 1);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    c = s_messages(store, ROOM_A, 0);
    CHECK(c->n == 1 && strcmp(c->text[0], "fresh") == 0);

    /*  Drop in a transaction that is then aborted leaves the room. */
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_drop(txn, ROOM_B), SOS_OK);
    sos_txn_abort(&txn);
    c = s_messages(store, ROOM_B, 0);
    CHECK(c->n == 1);
}

static void
s_test_reopen(const char *dir)
{
    sos_store_t *store;
    sos_txn_t *txn;
    sos_room_state_t st;
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    if (!store)
        return;
    CHECK_RC(sos_txn_begin(store, false, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, ROOM_B, &st), SOS_OK);
    CHECK(st.created_at == 2000 && st.member_count == 1 && st.message_count == 1 &&
          st.last_seq == 1);
    sos_txn_abort(&txn);
    s_msgs_t *c = s_messages(store, ROOM_A, 0);
    CHECK(c->n == 1 && c->ts[0] == 200);
    /*  The id survives too. */
    bool dup = false;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK(s_send(txn, ROOM_A, "m2", "again", 300, 5, &dup, NULL) == 1 && dup);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
    sos_store_destroy(&store);
}

/*  The byte quota drops the oldest messages (and their ids) like the history limit, but
    never the newest one. */
static void
s_test_quota(sos_store_t *store)
{
    const char *room = "00000000000000a7";
    sos_txn_t *txn;
    sos_room_state_t st;
    char text[1001];
    memset(text, 'q', 1000);
    text[1000] = 0;
    CHECK_RC(sos_txn_begin(store, true, &txn), SOS_OK);
    CHECK_RC(sos_roomdb_create(txn, room, 1, 1ULL << 50), SOS_OK);
    for (int i = 0; i < 10; i++) {
        char id[8];
        snprintf(id, sizeof id, "q%d", i);
        sos_message_t m = {.timestamp = 10 + i,
                           .msg_id = id,
                           .msg_id_len = strlen(id),
                           .sender = "alice",
                           .sender_len = 5,
                           .content = (const uint8_t *)text,
                           .content_len = 1000};
        CHECK_RC(sos_roomdb_append_quota(txn, room, &m, 500, 3500, NULL, NULL, NULL), SOS_OK);
    }
    CHECK_RC(sos_roomdb_get(txn, room, &st), SOS_OK);
    /*  Each message takes 8 + 4 + 2 + 4 + 5 + 4 + 1000 = 1027 bytes: three fit in 3500. */
    CHECK(st.message_count == 3 && st.message_bytes == 3 * 1027 && st.last_seq == 10);
    static s_msgs_t c;
    memset(&c, 0, sizeof c);
    CHECK_RC(sos_roomdb_foreach_message(txn, room, 0, s_on_message, &c), SOS_OK);
    CHECK(c.n == 3 && c.seqs[0] == 8);
    /*  The dropped ones' ids are gone with them: a retry of q0 is stored anew. */
    bool dup = true;
    CHECK(s_send(txn, room, "q0", "x", 99, 500, &dup, NULL) == 11 && !dup);
    /*  A message bigger than the quota on its own stays, alone. */
    sos_message_t big = {.timestamp = 100, .content = (const uint8_t *)text, .content_len = 1000};
    CHECK_RC(sos_roomdb_append_quota(txn, room, &big, 500, 100, NULL, NULL, NULL), SOS_OK);
    CHECK_RC(sos_roomdb_get(txn, room, &st), SOS_OK);
    CHECK(st.message_count == 1 && st.last_seq == 12);
    CHECK_RC(sos_txn_commit(&txn), SOS_OK);
}

int
main(void)
{
    char tmp[64], dir[96];
    snprintf(tmp, sizeof tmp, "/tmp/test_roomdb.XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof dir, "%s/store", tmp);
    sos_store_t *store = NULL;
    CHECK_RC(sos_store_open(&store, dir, 0), SOS_OK);
    if (store) {
        s_test_rooms(store);
        s_test_members(store);
        s_test_messages(store);
        s_test_drop(store);
        s_test_quota(store);
        s_test_dir_wire(store);
        s_test_unindexed(store);
        s_test_held(store);
        sos_store_destroy(&store);
        s_test_reopen(dir);
    }
    test_rmtree(tmp);
    if (s_failed) {
        fprintf(stderr, "test_roomdb: %d check(s) failed\n", s_failed);
        return 1;
    }
    printf("test_roomdb: ok\n");
    return 0;
}
