/*  sos_roomdb.c: the rooms this node owns: their state, members and message history, with
    the clients' message ids that make sending a message idempotent. */
#include <assert.h>
#include <string.h>

#include "sos_store_int.h"

/*  Owned rooms on disk

    The owner of a room is the only node that keeps its members and messages; other nodes
    forward to it. Four databases, every key led by the 16 characters of the room hash so
    that one room's entries are one contiguous range:

      rstate    room_hash                       -> created_at LE 8, expires_at LE 8,
                                                   last_seq LE 8, message_count LE 4,
                                                   member_count LE 4, message_bytes LE 8
                                                   (absent in stores made before it was
                                                   counted: read as 0)
      members   room_hash + member_id (32)      -> joined_at LE 8 + nickname (0..20 bytes)
      messages  room_hash + seq BE (8)          -> timestamp LE 8,
                                                   msg_id len LE 4 + bytes,
                                                   sender len LE 4 + bytes,
                                                   content len LE 4 + bytes
      msgids    room_hash + msg_id (1..64)      -> seq LE 8 + timestamp LE 8

    Sequence numbers are big-endian in the key, so a room's messages lie in seq order: the
    oldest is the first key of the range and "messages after seq n" is one seek. The counts
    in rstate are kept in the same transaction as the entries they count, so reading a room's
    size never scans it.

    A client that retries a send (it timed out, the connection dropped) sends the same msg_id
    again. msgids maps it to the seq and timestamp the first attempt got, so the retry gets
    the same answer without writing, even when the message is no longer looked at. The
    history limit drops the oldest messages after an append, and their msgids entries with
    them: ids stay bounded by the history, and a retry that arrives after its message fell
    out of the history is stored anew, which is the best anyone can do then. An empty msg_id
    means "no idempotency key" and is never matched.

    The node's own sends use sos_roomdb_append_unindexed and keep the ids in memory instead
    (node/sos_rooms.c, "Message ids"): an insert into msgids lands on a leaf page of its own
    for nearly every message. Stores written before keep their msgids entries until the
    history limit or a drop takes them with their messages.

    Dropping a room deletes its four ranges; because keys have the fixed-length room hash in
    front, a range never reaches into another room's entries. */

#define ROOMDB_STATE_VAL  40
#define ROOMDB_STATE_V1   32 /* without message_bytes */
#define ROOMDB_MEMBER_KEY (SOS_ROOMHASH_LEN + SOS_MEMBER_ID_LEN)
#define ROOMDB_MSG_KEY    (SOS_ROOMHASH_LEN + 8)
#define ROOMDB_MSGID_KEY  (SOS_ROOMHASH_LEN + SOS_MSGID_MAX)
#define ROOMDB_MSGID_VAL  16

/* --------------------------------------------------------------- encodings ---- */

static void
s_state_encode(uint8_t p[ROOMDB_STATE_VAL], const sos_room_state_t *state)
{
    sos_enc_le64(p, state->created_at);
    sos_enc_le64(p + 8, state->expires_at);
    sos_enc_le64(p + 16, state->last_seq);
    sos_enc_le32(p + 24, state->message_count);
    sos_enc_le32(p + 28, state->member_count);
    sos_enc_le64(p + 32, state->message_bytes);
}

static sos_rc
s_state_decode(const MDB_val *val, sos_room_state_t *state)
{
    if (val->mv_size != ROOMDB_STATE_VAL && val->mv_size != ROOMDB_STATE_V1)
        return SOS_ERR_CORRUPT;
    const uint8_t *p = val->mv_data;
    state->created_at = sos_dec_le64(p);
    state->expires_at = sos_dec_le64(p + 8);
    state->last_seq = sos_dec_le64(p + 16);
    state->message_count = sos_dec_le32(p + 24);
    state->member_count = sos_dec_le32(p + 28);
    state->message_bytes = val->mv_size == ROOMDB_STATE_VAL ? sos_dec_le64(p + 32) : 0;
    return SOS_OK;
}

static sos_rc
s_state_load(sos_txn_t *txn, const char *room_hash, sos_room_state_t *state)
{
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_RSTATE, room_hash, SOS_ROOMHASH_LEN, &val);
    if (rc)
        return rc;
    return s_state_decode(&val, state);
}

static sos_rc
s_state_store(sos_txn_t *txn, const char *room_hash, const sos_room_state_t *state)
{
    uint8_t val[ROOMDB_STATE_VAL];
    s_state_encode(val, state);
    return sos_txn_put(txn, SOS_DB_RSTATE, room_hash, SOS_ROOMHASH_LEN, val, sizeof val);
}

static bool
s_member_id_ok(const char *id)
{
    if (!id || strnlen(id, SOS_MEMBER_ID_LEN + 1) != SOS_MEMBER_ID_LEN)
        return false;
    for (size_t i = 0; i < SOS_MEMBER_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static void
s_member_key(uint8_t key[ROOMDB_MEMBER_KEY], const char *room_hash, const char *member_id)
{
    memcpy(key, room_hash, SOS_ROOMHASH_LEN);
    memcpy(key + SOS_ROOMHASH_LEN, member_id, SOS_MEMBER_ID_LEN);
}

/*  Check a stored member value; nickname (may be NULL) gets SOS_NICK_MAX + 1 bytes. */
static sos_rc
s_member_decode(const MDB_val *val, char *nickname, uint64_t *joined_at)
{
    if (val->mv_size < 8 || val->mv_size > 8 + SOS_NICK_MAX)
        return SOS_ERR_CORRUPT;
    size_t len = val->mv_size - 8;
    const uint8_t *p = val->mv_data;
    if (memchr(p + 8, '\0', len))
        return SOS_ERR_CORRUPT;
    if (joined_at)
        *joined_at = sos_dec_le64(p);
    if (nickname) {
        memcpy(nickname, p + 8, len);
        nickname[len] = '\0';
    }
    return SOS_OK;
}

static void
s_msg_key(uint8_t key[ROOMDB_MSG_KEY], const char *room_hash, uint64_t seq)
{
    memcpy(key, room_hash, SOS_ROOMHASH_LEN);
    sos_enc_be64(key + SOS_ROOMHASH_LEN, seq);
}

static size_t
s_msgid_key(uint8_t key[ROOMDB_MSGID_KEY], const char *room_hash, const char *msg_id, size_t len)
{
    memcpy(key, room_hash, SOS_ROOMHASH_LEN);
    memcpy(key + SOS_ROOMHASH_LEN, msg_id, len);
    return SOS_ROOMHASH_LEN + len;
}

static size_t
s_msg_size(const sos_message_t *msg)
{
    return 8 + 4 + msg->msg_id_len + 4 + msg->sender_len + 4 + msg->content_len;
}

static uint8_t *
s_put_field(uint8_t *p, const void *data, size_t len)
{
    sos_enc_le32(p, (uint32_t)len);
    if (len)
        memcpy(p + 4, data, len);
    return p + 4 + len;
}

static void
s_msg_encode(uint8_t *p, const sos_message_t *msg, uint64_t timestamp)
{
    sos_enc_le64(p, timestamp);
    p = s_put_field(p + 8, msg->msg_id, msg->msg_id_len);
    p = s_put_field(p, msg->sender, msg->sender_len);
    s_put_field(p, msg->content, msg->content_len);
}

/*  Take one length-prefixed field of at most max bytes from *p (left bytes remain). */
static bool
s_take_field(const uint8_t **p, size_t *left, size_t max, const uint8_t **data, size_t *len)
{
    if (*left < 4)
        return false;
    uint32_t n = sos_dec_le32(*p);
    if (n > max || n > *left - 4)
        return false;
    *data = *p + 4;
    *len = n;
    *p += 4 + n;
    *left -= 4 + n;
    return true;
}

/*  Decode a stored message; its pointers borrow from val. */
static sos_rc
s_msg_decode(const MDB_val *val, sos_message_t *msg)
{
    const uint8_t *p = val->mv_data;
    size_t left = val->mv_size;
    const uint8_t *msg_id, *sender;
    if (left < 8)
        return SOS_ERR_CORRUPT;
    msg->timestamp = sos_dec_le64(p);
    p += 8;
    left -= 8;
    if (!s_take_field(&p, &left, SOS_MSGID_MAX, &msg_id, &msg->msg_id_len) ||
        !s_take_field(&p, &left, SOS_NICK_MAX, &sender, &msg->sender_len) ||
        !s_take_field(&p, &left, SOS_CONTENT_MAX, &msg->content, &msg->content_len) || left != 0)
        return SOS_ERR_CORRUPT;
    msg->msg_id = (const char *)msg_id;
    msg->sender = (const char *)sender;
    return SOS_OK;
}

static sos_rc
s_msgid_decode(const MDB_val *val, uint64_t *seq, uint64_t *timestamp)
{
    if (val->mv_size != ROOMDB_MSGID_VAL)
        return SOS_ERR_CORRUPT;
    *seq = sos_dec_le64(val->mv_data);
    *timestamp = sos_dec_le64((const uint8_t *)val->mv_data + 8);
    return SOS_OK;
}

/* ------------------------------------------------------------------ rooms ---- */

sos_rc
sos_roomdb_create(sos_txn_t *txn, const char *room_hash, uint64_t created_at, uint64_t expires_at)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!sos_store_room_hash_ok(room_hash))
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    MDB_val val;
    rc = sos_txn_get(txn, SOS_DB_RSTATE, room_hash, SOS_ROOMHASH_LEN, &val);
    if (rc == SOS_OK)
        rc = SOS_ERR_EXISTS;
    else if (rc == SOS_ERR_NOT_FOUND) {
        sos_room_state_t state = {.created_at = created_at, .expires_at = expires_at};
        rc = s_state_store(txn, room_hash, &state);
    }
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_roomdb_get(sos_txn_t *txn, const char *room_hash, sos_room_state_t *state)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    assert(txn);
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    sos_room_state_t tmp;
    return s_state_load(txn, room_hash, state ? state : &tmp);
}

sos_rc
sos_roomdb_dir_wire(sos_txn_t *txn, const char *room_hash, const uint8_t **wire, size_t *len)
{
    assert(txn);
    assert(wire);
    assert(len);
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_ROOMS, room_hash, SOS_ROOMHASH_LEN, &val);
    if (rc)
        return rc;
    *wire = val.mv_data;
    *len = val.mv_size;
    return SOS_OK;
}

sos_rc
sos_roomdb_set_expires(sos_txn_t *txn, const char *room_hash, uint64_t expires_at)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!sos_store_room_hash_ok(room_hash))
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    sos_room_state_t state;
    rc = s_state_load(txn, room_hash, &state);
    if (rc == SOS_OK) {
        state.expires_at = expires_at;
        rc = s_state_store(txn, room_hash, &state);
    }
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_roomdb_foreach(sos_txn_t *txn, sos_roomdb_fn *fn, void *arg)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    assert(txn);
    assert(fn);
    MDB_cursor *cur;
    sos_rc rc = sos_txn_cursor(txn, SOS_DB_RSTATE, &cur);
    if (rc)
        return rc;
    char hash[SOS_ROOMHASH_LEN + 1];
    sos_room_state_t state;
    MDB_val key, val;
    rc = sos_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == SOS_OK) {
        if (key.mv_size != SOS_ROOMHASH_LEN) {
            rc = SOS_ERR_CORRUPT;
            break;
        }
        rc = s_state_decode(&val, &state);
        if (rc)
            break;
        memcpy(hash, key.mv_data, SOS_ROOMHASH_LEN);
        hash[SOS_ROOMHASH_LEN] = '\0';
        if (fn(arg, hash, &state) != 0)
            break;
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

sos_rc
sos_roomdb_drop(sos_txn_t *txn, const char *room_hash)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!sos_store_room_hash_ok(room_hash))
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    rc = sos_txn_del(txn, SOS_DB_RSTATE, room_hash, SOS_ROOMHASH_LEN, NULL, 0);
    if (rc == SOS_OK)
        rc = sos_txn_del_prefix(txn, SOS_DB_MEMBERS, room_hash, SOS_ROOMHASH_LEN, NULL);
    if (rc == SOS_OK)
        rc = sos_txn_del_prefix(txn, SOS_DB_MESSAGES, room_hash, SOS_ROOMHASH_LEN, NULL);
    if (rc == SOS_OK)
        rc = sos_txn_del_prefix(txn, SOS_DB_MSGIDS, room_hash, SOS_ROOMHASH_LEN, NULL);
    return sos_txn_op_end(txn, rc);
}

/* ---------------------------------------------------------------- members ---- */

sos_rc
sos_roomdb_member_put(sos_txn_t *txn, const char *room_hash, const char *member_id,
                      const char *nickname, uint64_t joined_at)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!sos_store_room_hash_ok(room_hash) || !s_member_id_ok(member_id) || !nickname)
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    size_t nick_len = strnlen(nickname, SOS_NICK_MAX + 1);
    if (nick_len > SOS_NICK_MAX)
        return sos_txn_op_end(txn, SOS_ERR_TOO_LARGE);

    sos_room_state_t state;
    uint8_t key[ROOMDB_MEMBER_KEY];
    MDB_val val;
    bool had = false;
    s_member_key(key, room_hash, member_id);
    rc = s_state_load(txn, room_hash, &state);
    if (rc == SOS_OK) {
        rc = sos_txn_get(txn, SOS_DB_MEMBERS, key, sizeof key, &val);
        had = rc == SOS_OK;
        if (rc == SOS_ERR_NOT_FOUND)
            rc = SOS_OK;
    }
    if (rc == SOS_OK) {
        uint8_t buf[8 + SOS_NICK_MAX];
        sos_enc_le64(buf, joined_at);
        memcpy(buf + 8, nickname, nick_len);
        rc = sos_txn_put(txn, SOS_DB_MEMBERS, key, sizeof key, buf, 8 + nick_len);
    }
    if (rc == SOS_OK && !had) {
        state.member_count++;
        rc = s_state_store(txn, room_hash, &state);
    }
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_roomdb_member_get(sos_txn_t *txn, const char *room_hash, const char *member_id, char *nickname)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    assert(txn);
    if (!sos_store_room_hash_ok(room_hash) || !s_member_id_ok(member_id))
        return SOS_ERR_INVALID;
    uint8_t key[ROOMDB_MEMBER_KEY];
    MDB_val val;
    s_member_key(key, room_hash, member_id);
    sos_rc rc = sos_txn_get(txn, SOS_DB_MEMBERS, key, sizeof key, &val);
    if (rc)
        return rc;
    return s_member_decode(&val, nickname, NULL);
}

sos_rc
sos_roomdb_member_del(sos_txn_t *txn, const char *room_hash, const char *member_id)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!sos_store_room_hash_ok(room_hash) || !s_member_id_ok(member_id))
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    sos_room_state_t state;
    uint8_t key[ROOMDB_MEMBER_KEY];
    s_member_key(key, room_hash, member_id);
    rc = s_state_load(txn, room_hash, &state);
    if (rc == SOS_OK)
        rc = sos_txn_del(txn, SOS_DB_MEMBERS, key, sizeof key, NULL, 0);
    if (rc == SOS_OK) {
        if (state.member_count > 0)
            state.member_count--;
        rc = s_state_store(txn, room_hash, &state);
    }
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_roomdb_foreach_member(sos_txn_t *txn, const char *room_hash, sos_member_fn *fn, void *arg)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    assert(txn);
    assert(fn);
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    sos_room_state_t state;
    sos_rc rc = s_state_load(txn, room_hash, &state);
    if (rc)
        return rc;
    MDB_cursor *cur;
    rc = sos_txn_cursor(txn, SOS_DB_MEMBERS, &cur);
    if (rc)
        return rc;
    char id[SOS_MEMBER_ID_LEN + 1];
    char nickname[SOS_NICK_MAX + 1];
    uint64_t joined_at;
    MDB_val key = {SOS_ROOMHASH_LEN, (void *)room_hash};
    MDB_val val;
    rc = sos_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == SOS_OK && sos_key_has_prefix(&key, room_hash, SOS_ROOMHASH_LEN)) {
        if (key.mv_size != ROOMDB_MEMBER_KEY) {
            rc = SOS_ERR_CORRUPT;
            break;
        }
        rc = s_member_decode(&val, nickname, &joined_at);
        if (rc)
            break;
        memcpy(id, (const uint8_t *)key.mv_data + SOS_ROOMHASH_LEN, SOS_MEMBER_ID_LEN);
        id[SOS_MEMBER_ID_LEN] = '\0';
        if (fn(arg, id, nickname, joined_at) != 0)
            break;
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

/* --------------------------------------------------------------- messages ---- */

/*  Delete the room's oldest message and, if it still points to that message, its msg_id. */
static sos_rc
s_drop_oldest(sos_txn_t *txn, MDB_cursor *cur, const char *room_hash, uint64_t *size)
{
    uint8_t start[ROOMDB_MSG_KEY];
    s_msg_key(start, room_hash, 0);
    MDB_val key = {sizeof start, start};
    MDB_val val;
    sos_rc rc = sos_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == SOS_ERR_NOT_FOUND ||
        (rc == SOS_OK && !sos_key_has_prefix(&key, room_hash, SOS_ROOMHASH_LEN)))
        return SOS_ERR_CORRUPT; /* message_count says there are more */
    if (rc == SOS_OK && key.mv_size != ROOMDB_MSG_KEY)
        rc = SOS_ERR_CORRUPT;
    if (rc)
        return rc;
    sos_message_t msg;
    rc = s_msg_decode(&val, &msg);
    if (rc)
        return rc;
    uint64_t seq = sos_dec_be64((const uint8_t *)key.mv_data + SOS_ROOMHASH_LEN);
    *size = val.mv_size;
    uint8_t idkey[ROOMDB_MSGID_KEY];
    size_t idlen = s_msgid_key(idkey, room_hash, msg.msg_id, msg.msg_id_len);
    /*  msg borrows from the page that the delete changes: the id is copied into idkey. */
    rc = sos_cursor_del(txn, cur);
    if (rc || msg.msg_id_len == 0)
        return rc;
    uint64_t id_seq, id_ts;
    rc = sos_txn_get(txn, SOS_DB_MSGIDS, idkey, idlen, &val);
    if (rc == SOS_OK)
        rc = s_msgid_decode(&val, &id_seq, &id_ts);
    if (rc == SOS_OK && id_seq == seq)
        rc = sos_txn_del(txn, SOS_DB_MSGIDS, idkey, idlen, NULL, 0);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

/*  The timestamp of a room's newest message, 0 if it has none. The newest message is never
    dropped by the history limit, so this is the last timestamp ever served for the room,
    and it survives restarts with the message itself. */
static sos_rc
s_last_ts(sos_txn_t *txn, const char *room_hash, const sos_room_state_t *state, uint64_t *ts)
{
    *ts = 0;
    if (state->last_seq == 0 || state->message_count == 0)
        return SOS_OK;
    uint8_t key[ROOMDB_MSG_KEY];
    s_msg_key(key, room_hash, state->last_seq);
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_MESSAGES, key, sizeof key, &val);
    if (rc == SOS_ERR_NOT_FOUND)
        return SOS_OK;
    if (rc)
        return rc;
    /*  A damaged newest message sets no floor; the append reports the damage when the
        history limit reaches it, as it did before timestamps were raised. */
    if (val.mv_size >= 8)
        *ts = sos_dec_le64(val.mv_data);
    return SOS_OK;
}

static sos_rc
s_append(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg, uint32_t history_limit,
         uint64_t bytes_limit, bool indexed, const sos_roomdb_last_t *last, sos_room_state_t *held,
         uint64_t *seq, uint64_t *timestamp, bool *dup)
{
    sos_room_state_t state;
    sos_rc rc = SOS_OK;
    if (held)
        state = *held; /* the caller's, current in this transaction */
    else
        rc = s_state_load(txn, room_hash, &state);
    if (rc)
        return rc;
    uint8_t idkey[ROOMDB_MSGID_KEY];
    size_t idlen = 0;
    if (indexed && msg->msg_id_len > 0) {
        MDB_val val;
        idlen = s_msgid_key(idkey, room_hash, msg->msg_id, msg->msg_id_len);
        rc = sos_txn_get(txn, SOS_DB_MSGIDS, idkey, idlen, &val);
        if (rc == SOS_OK) {
            rc = s_msgid_decode(&val, seq, timestamp);
            if (rc == SOS_OK)
                *dup = true;
            return rc;
        }
        if (rc != SOS_ERR_NOT_FOUND)
            return rc;
    }
    if (state.last_seq == UINT64_MAX)
        return SOS_ERR_FULL;

    /*  Timestamps strictly increase in seq order, whatever the clock does: clients poll by
        timestamp (the seed's API), and a message stamped at or below one already served
        would never be seen by them. */
    uint64_t last_ts = 0;
    if (last && last->seq == state.last_seq && state.message_count > 0)
        last_ts = last->timestamp; /* the newest message is never dropped: still the same */
    else {
        rc = s_last_ts(txn, room_hash, &state, &last_ts);
        if (rc)
            return rc;
    }
    *seq = state.last_seq + 1;
    *timestamp = msg->timestamp > last_ts ? msg->timestamp : last_ts + 1;
    uint8_t key[ROOMDB_MSG_KEY];
    uint8_t *p;
    s_msg_key(key, room_hash, *seq);
    rc = sos_txn_reserve(txn, SOS_DB_MESSAGES, key, sizeof key, s_msg_size(msg), &p);
    if (rc)
        return rc;
    s_msg_encode(p, msg, *timestamp);
    if (idlen) {
        uint8_t val[ROOMDB_MSGID_VAL];
        sos_enc_le64(val, *seq);
        sos_enc_le64(val + 8, *timestamp);
        rc = sos_txn_put(txn, SOS_DB_MSGIDS, idkey, idlen, val, sizeof val);
        if (rc)
            return rc;
    }
    state.last_seq = *seq;
    state.message_count++;
    state.message_bytes += s_msg_size(msg);
    bool over_bytes = bytes_limit && state.message_bytes > bytes_limit && state.message_count > 1;
    if (state.message_count > history_limit || over_bytes) {
        MDB_cursor *cur;
        rc = sos_txn_cursor(txn, SOS_DB_MESSAGES, &cur);
        if (rc)
            return rc;
        while (rc == SOS_OK && (state.message_count > history_limit || over_bytes)) {
            uint64_t size = 0;
            rc = s_drop_oldest(txn, cur, room_hash, &size);
            state.message_count--;
            state.message_bytes = state.message_bytes > size ? state.message_bytes - size : 0;
            over_bytes =
                bytes_limit && state.message_bytes > bytes_limit && state.message_count > 1;
        }
        mdb_cursor_close(cur);
        if (rc)
            return rc;
    }
    if (held) {
        *held = state; /* the caller stores it (sos_roomdb_append_held) */
        return SOS_OK;
    }
    return s_state_store(txn, room_hash, &state);
}

sos_rc
sos_roomdb_append(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                  uint32_t history_limit, uint64_t *seq, uint64_t *timestamp, bool *dup)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    return sos_roomdb_append_quota(txn, room_hash, msg, history_limit, 0, seq, timestamp, dup);
}

static sos_rc
s_append_checked(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                 uint32_t history_limit, uint64_t bytes_limit, bool indexed,
                 sos_roomdb_last_t *last, sos_room_state_t *held, uint64_t *seq,
                 uint64_t *timestamp, bool *dup)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    if (!sos_store_room_hash_ok(room_hash) || !msg || history_limit == 0 ||
        (msg->msg_id_len && !msg->msg_id) || (msg->sender_len && !msg->sender) ||
        (msg->content_len && !msg->content))
        return sos_txn_op_end(txn, SOS_ERR_INVALID);
    if (msg->msg_id_len > SOS_MSGID_MAX || msg->sender_len > SOS_NICK_MAX ||
        msg->content_len > SOS_CONTENT_MAX)
        return sos_txn_op_end(txn, SOS_ERR_TOO_LARGE);
    uint64_t s = 0, ts = 0;
    bool d = false;
    rc =
        s_append(txn, room_hash, msg, history_limit, bytes_limit, indexed, last, held, &s, &ts, &d);
    if (rc == SOS_OK) {
        if (last)
            *last = (sos_roomdb_last_t){s, ts};
        if (seq)
            *seq = s;
        if (timestamp)
            *timestamp = ts;
        if (dup)
            *dup = d;
    }
    return sos_txn_op_end(txn, rc);
}

sos_rc
sos_roomdb_append_quota(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                        uint32_t history_limit, uint64_t bytes_limit, uint64_t *seq,
                        uint64_t *timestamp, bool *dup)
{
    return s_append_checked(txn, room_hash, msg, history_limit, bytes_limit, true, NULL, NULL, seq,
                            timestamp, dup);
}

sos_rc
sos_roomdb_append_unindexed(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                            uint32_t history_limit, uint64_t bytes_limit, sos_roomdb_last_t *last,
                            uint64_t *seq, uint64_t *timestamp)
{
    return s_append_checked(txn, room_hash, msg, history_limit, bytes_limit, false, last, NULL, seq,
                            timestamp, NULL);
}

sos_rc
sos_roomdb_put_state(sos_txn_t *txn, const char *room_hash, const sos_room_state_t *state)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    assert(txn);
    if (!sos_store_room_hash_ok(room_hash) || !state)
        return SOS_ERR_INVALID;
    sos_rc rc = sos_txn_op_begin(txn);
    if (rc)
        return rc;
    return sos_txn_op_end(txn, s_state_store(txn, room_hash, state));
}

sos_rc
sos_roomdb_append_held(sos_txn_t *txn, const char *room_hash, const sos_message_t *msg,
                       uint32_t history_limit, uint64_t bytes_limit, sos_roomdb_last_t *last,
                       sos_room_state_t *state, uint64_t *seq, uint64_t *timestamp)
{
    if (!state)
        return SOS_ERR_INVALID;
    return s_append_checked(txn, room_hash, msg, history_limit, bytes_limit, false, last, state,
                            seq, timestamp, NULL);
}

sos_rc
sos_roomdb_message_get(sos_txn_t *txn, const char *room_hash, uint64_t seq, sos_message_t *msg)
{
    assert(txn);
    assert(msg);
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    uint8_t key[ROOMDB_MSG_KEY];
    s_msg_key(key, room_hash, seq);
    MDB_val val;
    sos_rc rc = sos_txn_get(txn, SOS_DB_MESSAGES, key, sizeof key, &val);
    if (rc == SOS_OK)
        rc = s_msg_decode(&val, msg);
    if (rc == SOS_OK)
        msg->seq = seq;
    return rc;
}

sos_rc
sos_roomdb_foreach_message(sos_txn_t *txn, const char *room_hash, uint64_t since,
                           sos_message_fn *fn, void *arg)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    assert(txn);
    assert(fn);
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    sos_room_state_t state;
    sos_rc rc = s_state_load(txn, room_hash, &state);
    if (rc || since == UINT64_MAX)
        return rc;
    MDB_cursor *cur;
    rc = sos_txn_cursor(txn, SOS_DB_MESSAGES, &cur);
    if (rc)
        return rc;
    uint8_t start[ROOMDB_MSG_KEY];
    s_msg_key(start, room_hash, since + 1);
    MDB_val key = {sizeof start, start};
    MDB_val val;
    sos_message_t msg;
    rc = sos_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == SOS_OK && sos_key_has_prefix(&key, room_hash, SOS_ROOMHASH_LEN)) {
        if (key.mv_size != ROOMDB_MSG_KEY) {
            rc = SOS_ERR_CORRUPT;
            break;
        }
        rc = s_msg_decode(&val, &msg);
        if (rc)
            break;
        msg.seq = sos_dec_be64((const uint8_t *)key.mv_data + SOS_ROOMHASH_LEN);
        if (fn(arg, &msg) != 0)
            break;
        rc = sos_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == SOS_ERR_NOT_FOUND ? SOS_OK : rc;
}

sos_rc
sos_roomdb_last_ts(sos_txn_t *txn, const char *room_hash, uint64_t *timestamp)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    assert(txn);
    assert(timestamp);
    *timestamp = 0;
    if (!sos_store_room_hash_ok(room_hash))
        return SOS_ERR_INVALID;
    sos_room_state_t state;
    sos_rc rc = s_state_load(txn, room_hash, &state);
    if (rc)
        return rc;
    return s_last_ts(txn, room_hash, &state, timestamp);
}

typedef struct {
    uint64_t since_ts;
    uint64_t seq;
} s_seq_at_t;

static int
s_seq_at_each(void *arg, const sos_message_t *msg)
{
    s_seq_at_t *a = arg;
    if (msg->timestamp > a->since_ts)
        return 1;
    a->seq = msg->seq;
    return 0;
}

sos_rc
sos_roomdb_seq_at(sos_txn_t *txn, const char *room_hash, uint64_t since_ts, uint64_t *seq)
{
    if (txn && txn->store->mem)
        return SOS_ERR_INVALID; /* the memory backend keeps no owned rooms */
    assert(seq);
    s_seq_at_t a = {.since_ts = since_ts};
    sos_rc rc = sos_roomdb_foreach_message(txn, room_hash, 0, s_seq_at_each, &a);
    *seq = a.seq;
    return rc;
}
