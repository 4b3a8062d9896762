/*  sos_rooms.c: chat rooms: the operations on rooms this node owns, forwarding to the owner
    of any other room, long polls, expiry, and the rate limit on room creation.

    A room lives on the node that created it. Its record (hash, owner, times) travels by
    gossip; its members and messages stay in the owner's store. Any node accepts any room
    operation: when it is not the owner it forwards the request, marked as forwarded, to the
    owner's endpoint and relays the reply unchanged but for the request id. A forwarded
    request is never forwarded again, so there is at most one hop. If the owner does not
    answer within SOS_FORWARD_TIMEOUT_MS (plus the wait of a long poll), the client gets
    owner_unreachable; the owner applies a request whole or not at all, and a send that
    arrives after the client gave up is made harmless by its msg_id when the client retries.

    Message order is the owner's per-room seq, given inside the write transaction that
    stores the message; a poll asks for seq > since, so a reader never loses or repeats a
    message, whatever the clocks say. */
#include <stdlib.h>
#include <string.h>

#include "sos_node_int.h"

#define SOS_FORWARD_TIMEOUT_MS 3000
#define SOS_POLL_WAIT_MAX_MS   30000
#define SOS_FORWARD_RETRY_MS   20   /* a forward not sent yet is tried again this often */
#define SOS_FORWARD_REDIAL_MS  1000 /* a connection this old that cannot send is dialled anew */
#define SOS_POLL_MAX_MESSAGES  1000
#define SOS_POLL_MAX_BYTES     (1024 * 1024)
#define SOS_ROOM_MEMBERS_MAX   1000
#define SOS_LIMITS_MAX         65536
#define SOS_LIMIT_RESET_MS     (30 * 60 * 1000)
#define SOS_ACTIVITY_MAX       65536 /* members whose last activity is kept in memory */
#define SOS_EVICT_MAX          1000  /* idle members removed by one join */

/*  Delays before each room creation from one client address (seconds), as the seed does:
    the first is free, the second waits 10 s after the first, the third 30 s, ... */
static const uint32_t s_delays[] = {0, 10, 30, 60, 180, 300};

typedef struct {
    zframe_t *routing;
    uint64_t req_id;
    char address[64]; /* the client's, for its pending count */
    char room[SOS_ROOMHASH_LEN + 1];
    char member[SOS_MEMBER_ID_LEN + 1];
    uint64_t since;
    uint64_t deadline_mono;
} s_poller_t;

typedef struct {
    zframe_t *routing;
    uint64_t client_req_id;
    uint64_t deadline_mono;
    char owner[SOS_NODEID_HEX + 1];
    char url[SOS_URL_MAX + 1]; /* the owner's endpoint: its reply must come on this peer */
    char address[64];
    uint8_t *msg;    /* the request as forwarded, until it is sent (then NULL); owned */
    size_t msg_size; /* at most a frame: the request it copies was one */
} s_forward_t;

typedef struct {
    uint32_t level;     /* room creations so far, up to the last delay */
    uint64_t next_ms;   /* no creation before this */
    uint64_t create_ms; /* the last creation */
    uint64_t last_ms;   /* the last use of any kind */
    double tokens;      /* joins and sends left (token bucket) */
    uint64_t tokens_ms; /* when tokens was last brought up to date; 0: never */
    uint32_t pending;   /* long polls and forwards waiting */
} s_limit_t;

/*  Room state per pass

    A pass serves a batch of sends, nearly all to the same few rooms. The first send to a
    room in a pass reads its directory record and its state from the store; the sends after
    it in the same pass, to the same room, take both from here, and the append keeps the
    state here (sos_roomdb_append_held), written to the store once, when it is forgotten:
    one state record per room and pass in the store and the log instead of one per send.
    Whatever else may read or change a room's record or state forgets it first (storing the
    state): every other request, a send to another room, every gossip frame (a merge may
    give the room to another owner), a failed append, and the end of the pass before its
    commit. A room dropped (expired or lost) is forgotten without storing its state. */
typedef struct {
    bool valid;
    bool dirty; /* st is newer than the stored state */
    char room[SOS_ROOMHASH_LEN + 1];
    uint64_t expires_at; /* the directory record's */
    sos_room_state_t st;
} s_pass_room_t;

struct _sos_rooms_t {
    s_pass_room_t pass_room; /* see "Room state per pass" */
    zlistx_t *pollers;       /* s_poller_t (owned) */
    zhashx_t *forwards;      /* fwd id -> s_forward_t (owned) */
    zhashx_t *busy;          /* owner url -> count of its forwards waiting (uintptr_t) */
    int retry_timer;         /* retries forwards not sent yet; -1 when none waits */
    zhashx_t *limits;        /* client address -> s_limit_t (owned) */
    zhashx_t *activity; /* room hash + member id -> uint64_t wall ms of its last poll or send */
    zhashx_t *records;  /* room hash -> sos_record_t (owned): the directory's, decoded */
    zhashx_t *ids;      /* room hash -> s_ids_t (owned): its message ids, see s_ids_for */
    size_t ids_slots;   /* slots of all of them */
    uint8_t ids_key[crypto_shorthash_KEYBYTES];
};

static void
s_poller_destroy(s_poller_t **p)
{
    if (*p) {
        zframe_destroy(&(*p)->routing);
        free(*p);
        *p = NULL;
    }
}

/*  The message ids of one owned room (see s_ids_for): an open-addressing table of keyed
    64-bit hashes of msg_id (never 0: 0 marks a free slot) and the seq each was stored at. */
typedef struct {
    uint64_t hash;
    uint64_t seq;
} s_id_slot_t;

typedef struct {
    s_id_slot_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
    /*  The room's newest message as of this node's last append to it, so that the next
        append need not read it for its timestamp. Only appends here change a room's
        last_seq, and the table goes with the room, so a matching seq is that message. */
    sos_roomdb_last_t last;
} s_ids_t;

static void s_ids_drop(sos_rooms_t *self, const char *room);

static void
s_ids_destroy(s_ids_t **ids_p)
{
    if (*ids_p) {
        free((*ids_p)->slots);
        free(*ids_p);
        *ids_p = NULL;
    }
}

static void
s_forward_destroy(s_forward_t **f)
{
    if (*f) {
        zframe_destroy(&(*f)->routing);
        free((*f)->msg);
        free(*f);
        *f = NULL;
    }
}

sos_rooms_t *
sos_rooms_new(sos_node_t *node)
{
    sos_rooms_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pollers = zlistx_new();
    self->forwards = zhashx_new();
    self->limits = zhashx_new();
    self->activity = zhashx_new();
    self->busy = zhashx_new();
    self->records = zhashx_new();
    self->ids = zhashx_new();
    self->retry_timer = -1;
    randombytes_buf(self->ids_key, sizeof self->ids_key);
    if (!self->pollers || !self->forwards || !self->limits || !self->activity || !self->busy ||
        !self->records || !self->ids) {
        sos_rooms_destroy(&self);
        return NULL;
    }
    zlistx_set_destructor(self->pollers, (zlistx_destructor_fn *)s_poller_destroy);
    zhashx_set_destructor(self->forwards, (zhashx_destructor_fn *)s_forward_destroy);
    zhashx_set_destructor(self->limits, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_destructor(self->activity, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_destructor(self->records, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_destructor(self->ids, (zhashx_destructor_fn *)s_ids_destroy);
    return self;
}

void
sos_rooms_destroy(sos_rooms_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sos_rooms_t *self = *self_p;
    zlistx_destroy(&self->pollers);
    zhashx_destroy(&self->forwards);
    zhashx_destroy(&self->limits);
    zhashx_destroy(&self->activity);
    zhashx_destroy(&self->busy);
    zhashx_destroy(&self->records);
    zhashx_destroy(&self->ids);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- replies ---- */

static msgpack_packer
s_packer(sos_node_t *node)
{
    msgpack_sbuffer_clear(&node->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &node->buf, msgpack_sbuffer_write);
    return pk;
}

static void
s_queue(sos_node_t *node, zframe_t **routing_p, uint64_t req_id)
{
    sos_node_queue(node, node->router, routing_p, node->buf.data, node->buf.size, req_id,
                   SOS_OUT_CLIENT);
}

static void
s_error(sos_node_t *node, zframe_t **routing_p, uint64_t req_id, const char *code,
        const char *message)
{
    msgpack_packer pk = s_packer(node);
    sos_reply_pack_error(&pk, req_id, code, message);
    s_queue(node, routing_p, req_id);
}

static void
s_error_extra(sos_node_t *node, zframe_t **routing_p, uint64_t req_id, const char *code,
              const char *message, const char *key, const char *str_value, uint64_t uint_value)
{
    msgpack_packer pk = s_packer(node);
    sos_reply_pack_begin(&pk, req_id, code);
    msgpack_pack_map(&pk, 3);
    sos_mp_pack_kv_str(&pk, "error", code);
    sos_mp_pack_kv_str(&pk, "message", message);
    if (str_value)
        sos_mp_pack_kv_str(&pk, key, str_value);
    else
        sos_mp_pack_kv_uint(&pk, key, uint_value);
    s_queue(node, routing_p, req_id);
}

typedef struct {
    msgpack_packer *pk;
    uint32_t n;
    bool counting;
} s_members_t;

static int
s_member_each(void *arg, const char *member_id, const char *nickname, uint64_t joined_at)
{
    s_members_t *m = arg;
    m->n++;
    if (!m->counting)
        sos_mp_pack_str(m->pk, nickname);
    return 0;
}

/*  Pack "members": [nicknames]. The member ids are bearer secrets and never listed. */
static sos_rc
s_pack_members(msgpack_packer *pk, sos_txn_t *txn, const char *room)
{
    s_members_t m = {.pk = pk, .counting = true};
    sos_rc rc = sos_roomdb_foreach_member(txn, room, s_member_each, &m);
    if (rc)
        return rc;
    sos_mp_pack_str(pk, "members");
    msgpack_pack_array(pk, m.n);
    uint32_t n = m.n;
    m.counting = false;
    m.n = 0;
    rc = sos_roomdb_foreach_member(txn, room, s_member_each, &m);
    if (rc == SOS_OK && m.n != n)
        rc = SOS_ERR_CORRUPT;
    return rc;
}

typedef struct {
    msgpack_packer *pk;
    uint32_t n;
    size_t bytes;
    bool counting;
    uint32_t limit;
} s_messages_t;

static int
s_message_each(void *arg, const sos_message_t *msg)
{
    s_messages_t *m = arg;
    if (m->counting) {
        /*  The batch's bytes as packed (id, sender, keys), not only its content, so that
            a reply of many small messages fits the frame ceiling too. */
        size_t bytes = msg->content_len + msg->msg_id_len + msg->sender_len + 64;
        if (m->n == SOS_POLL_MAX_MESSAGES || (m->n && m->bytes + bytes > SOS_POLL_MAX_BYTES))
            return 1;
        m->bytes += bytes;
        m->n++;
        return 0;
    }
    if (m->n == m->limit)
        return 1;
    m->n++;
    msgpack_packer *pk = m->pk;
    msgpack_pack_map(pk, 5);
    sos_mp_pack_str(pk, "id");
    sos_mp_pack_strn(pk, msg->msg_id, msg->msg_id_len);
    sos_mp_pack_kv_uint(pk, "seq", msg->seq);
    sos_mp_pack_str(pk, "sender");
    sos_mp_pack_strn(pk, msg->sender, msg->sender_len);
    sos_mp_pack_str(pk, "content");
    sos_mp_pack_strn(pk, (const char *)msg->content, msg->content_len);
    sos_mp_pack_kv_uint(pk, "timestamp", msg->timestamp);
    return 0;
}

/*  The reply to a poll: messages after since (a bounded batch), members and room state. */
static sos_rc
s_pack_poll(sos_node_t *node, sos_txn_t *txn, const char *room, uint64_t req_id, uint64_t since,
            uint32_t *count)
{
    sos_room_state_t st;
    sos_rc rc = sos_roomdb_get(txn, room, &st);
    if (rc)
        return rc;
    s_messages_t m = {.counting = true};
    rc = sos_roomdb_foreach_message(txn, room, since, s_message_each, &m);
    if (rc)
        return rc;
    msgpack_packer pk = s_packer(node);
    sos_reply_pack_begin(&pk, req_id, "ok");
    msgpack_pack_map(&pk, 5);
    sos_mp_pack_str(&pk, "messages");
    msgpack_pack_array(&pk, m.n);
    s_messages_t w = {.pk = &pk, .limit = m.n};
    rc = sos_roomdb_foreach_message(txn, room, since, s_message_each, &w);
    if (rc == SOS_OK && w.n != m.n)
        rc = SOS_ERR_CORRUPT;
    if (rc)
        return rc;
    rc = s_pack_members(&pk, txn, room);
    if (rc)
        return rc;
    sos_mp_pack_kv_uint(&pk, "expires_at", st.expires_at);
    sos_mp_pack_kv_uint(&pk, "message_count", st.message_count);
    sos_mp_pack_kv_uint(&pk, "last_seq", st.last_seq);
    *count = m.n;
    return SOS_OK;
}

/* ------------------------------------------------------------- arguments ---- */

/*  Decode one UTF-8 code point at p (strict UTF-8, as sos_mp_str has checked); its length,
    or 0 at the end or on a malformed sequence. */
static int
s_code_point(const unsigned char *p, uint32_t *cp)
{
    int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
    if (!len || !*p)
        return 0;
    uint32_t c = len == 1 ? *p : *p & (0x7f >> len);
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    *cp = c;
    return len;
}

/*  Code points that join the emoji before them: ZWJ, variation selectors, skin tones, tags. */
static bool
s_combining(uint32_t cp)
{
    return cp == 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0x1f3fb && cp <= 0x1f3ff) ||
           (cp >= 0xe0020 && cp <= 0xe007f);
}

/*  Count emoji in UTF-8 text: code points, not counting those that combine with the one
    before. -1 if the text is not UTF-8. */
static int
s_emoji_count(const char *s)
{
    int n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp = 0;
        int len = s_code_point(p, &cp);
        if (!len)
            return -1;
        p += len;
        if (!s_combining(cp))
            n++;
    }
    return n;
}

/*  The creator's emoji list: up to SOS_EMOJI_COUNT_MAX strings of 1..SOS_EMOJI_BYTES_MAX
    bytes of UTF-8 each (sos_record.h). */
typedef struct {
    char item[SOS_EMOJI_COUNT_MAX][SOS_EMOJI_BYTES_MAX + 1];
    uint32_t n;
} s_emojis_t;

/*  Split text into emoji (a code point with the combining ones after it, and after a ZWJ
    the code point it joins). False if the
    text is not UTF-8, has more than SOS_EMOJI_COUNT_MAX emoji, or one over the byte cap. */
static bool
s_emojis_split(s_emojis_t *out, const char *p, size_t len)
{
    out->n = 0;
    size_t i = 0;
    bool joined = false; /* the code point before was a ZWJ: this one joins it */
    while (i < len) {
        uint32_t cp = 0;
        int l = s_code_point((const unsigned char *)p + i, &cp);
        if (!l || i + (size_t)l > len)
            return false;
        if ((!s_combining(cp) && !joined) || out->n == 0) {
            if (out->n == SOS_EMOJI_COUNT_MAX)
                return false;
            out->item[out->n++][0] = 0;
        }
        char *e = out->item[out->n - 1];
        size_t have = strlen(e);
        if (have + (size_t)l > SOS_EMOJI_BYTES_MAX)
            return false;
        memcpy(e + have, p + i, (size_t)l);
        e[have + (size_t)l] = 0;
        i += (size_t)l;
        joined = cp == 0x200d;
    }
    return true;
}

/*  The `emojis` argument of create: an array of up to 6 strings, each 1..32 bytes of UTF-8
    (or, from clients of protocol version 1, one string, split as sosctl splits it). Absent
    is an empty list. False (and a reply) if it is anything else. */
static bool
s_arg_emojis(sos_node_t *node, zframe_t **routing_p, const sos_request_t *req, s_emojis_t *out)
{
    out->n = 0;
    const msgpack_object *o = sos_mp_map_get(req->args, "emojis");
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return true;
    const char *p;
    size_t len;
    const msgpack_object *items;
    uint32_t count;
    bool ok = false;
    if (sos_mp_str(o, &p, &len, SIZE_MAX)) {
        if (len > SOS_EMOJIS_MAX) {
            s_error(node, routing_p, req->req_id, SOS_E_TOO_LARGE, "the emojis are too long");
            return false;
        }
        ok = (len == 0 || !memchr(p, 0, len)) && s_emojis_split(out, p, len);
    } else if (sos_mp_array(o, &items, &count, SOS_EMOJI_COUNT_MAX)) {
        ok = true;
        for (uint32_t i = 0; i < count && ok; i++) {
            ok = sos_mp_str(&items[i], &p, &len, SOS_EMOJI_BYTES_MAX) && len > 0 &&
                 !memchr(p, 0, len);
            if (ok) {
                memcpy(out->item[i], p, len);
                out->item[i][len] = 0;
            }
        }
        out->n = ok ? count : 0;
    }
    if (!ok)
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST,
                "emojis must be a list of at most 6 strings of 1..32 bytes of UTF-8");
    return ok;
}

/*  Put the emoji list into a room record (which carries it as it is). */
static void
s_record_set_emojis(sos_record_t *rec, const s_emojis_t *e)
{
    rec->n_emojis = e->n;
    for (uint32_t i = 0; i < e->n; i++)
        memcpy(rec->emojis[i], e->item[i], sizeof rec->emojis[i]);
}

/*  An optional string argument of at most max bytes. Returns false (and replies) if it is
    present but not a string, or too long. */
static bool
s_arg_str(sos_node_t *node, zframe_t **routing_p, const sos_request_t *req, const char *key,
          char *dest, size_t max)
{
    *dest = 0;
    const msgpack_object *o = sos_mp_map_get(req->args, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return true;
    const char *p;
    size_t len;
    if (!sos_mp_str(o, &p, &len, SIZE_MAX)) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s must be a string", key);
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, msg);
        return false;
    }
    if (len > max || (len && memchr(p, 0, len))) { /* an empty str has a NULL p */
        char msg[80];
        snprintf(msg, sizeof msg, "%s is longer than %zu bytes", key, max);
        s_error(node, routing_p, req->req_id, SOS_E_TOO_LARGE, msg);
        return false;
    }
    if (len)
        memcpy(dest, p, len);
    dest[len] = 0;
    return true;
}

static void
s_random_hex(char *out, size_t bytes)
{
    uint8_t buf[32];
    randombytes_buf(buf, bytes);
    sos_hex(out, buf, bytes);
}

static void
s_nickname(char *nick, const char *given)
{
    if (*given)
        strcpy(nick, given);
    else {
        char hex[5];
        s_random_hex(hex, 2);
        snprintf(nick, SOS_NICK_MAX + 1, "anon-%s", hex);
    }
}

/* ------------------------------------------------------------ rate limit ---- */

/*  Limits per client address

    The address is the one the entry node sees (ZeroMQ's Peer-Address); an owner takes the
    address a forwarding node reports in the `client` argument of a forwarded request. One
    entry per address holds:

      - room creation: escalating delays (s_delays), forgotten 30 min after the last create;
      - joins and sends: a token bucket of --client-rate per second, holding up to 10 s of
        it, so that a burst of normal chat passes and a flood is refused (rate_limited,
        retry_after); --rate-limit off lifts both;
      - pending work: the long polls and forwards of the address that wait for an answer,
        at most --max-pending (and --max-pending-total in all); over it the node answers
        unavailable with retry_after, so memory held for waiting requests has a bound.

    The table holds at most SOS_LIMITS_MAX addresses: when it is full, addresses quiet for
    the reset time with nothing pending are forgotten, and if none is, all are (forgetting
    only loosens a limit; the total cap on pending work still holds). */

static s_limit_t *
s_limit(sos_rooms_t *self, const char *address, uint64_t now)
{
    s_limit_t *lim = zhashx_lookup(self->limits, address);
    if (lim && now - lim->create_ms > SOS_LIMIT_RESET_MS) {
        lim->level = 0;
        lim->next_ms = 0;
    }
    return lim;
}

/*  The entry of address, made if absent; NULL only when out of memory. */
static s_limit_t *
s_limit_make(sos_rooms_t *self, const char *address, uint64_t now)
{
    s_limit_t *lim = s_limit(self, address, now);
    if (lim)
        return lim;
    if (zhashx_size(self->limits) >= SOS_LIMITS_MAX) {
        zlistx_t *keys = zhashx_keys(self->limits);
        for (const char *k = keys ? zlistx_first(keys) : NULL; k; k = zlistx_next(keys)) {
            s_limit_t *l = zhashx_lookup(self->limits, k);
            if (l && !l->pending && now - l->last_ms > SOS_LIMIT_RESET_MS)
                zhashx_delete(self->limits, k);
        }
        zlistx_destroy(&keys);
        if (zhashx_size(self->limits) >= SOS_LIMITS_MAX)
            zhashx_purge(self->limits);
    }
    lim = calloc(1, sizeof *lim);
    if (!lim)
        return NULL;
    lim->last_ms = now;
    zhashx_insert(self->limits, address, lim);
    return lim;
}

static void
s_limit_note_create(sos_rooms_t *self, const char *address, uint64_t now)
{
    s_limit_t *lim = s_limit_make(self, address, now);
    if (!lim)
        return;
    /*  level counts the creations so far (up to the last delay): the first creation waits
        s_delays[0] (none), the second s_delays[1] after it, and so on. */
    if (lim->level + 1 < sizeof s_delays / sizeof s_delays[0])
        lim->level++;
    lim->next_ms = now + (uint64_t)s_delays[lim->level] * 1000;
    lim->create_ms = now;
    lim->last_ms = now;
}

/*  Take a token for a join or send from address. False (and a rate_limited reply) if it has
    none left. */
static bool
s_limit_take(sos_node_t *node, zframe_t **routing_p, const sos_request_t *req, const char *address)
{
    if (!node->cfg.rate_limit)
        return true;
    uint64_t now = sos_now_ms();
    s_limit_t *lim = s_limit_make(node->rooms, address, now);
    if (!lim)
        return true;
    double rate = node->cfg.client_rate, burst = rate * 10;
    if (!lim->tokens_ms)
        lim->tokens = burst;
    else if (now > lim->tokens_ms) {
        lim->tokens += (double)(now - lim->tokens_ms) * rate / 1000;
        if (lim->tokens > burst)
            lim->tokens = burst;
    }
    lim->tokens_ms = now;
    lim->last_ms = now;
    if (lim->tokens >= 1) {
        lim->tokens -= 1;
        return true;
    }
    node->stats.refused_rate++;
    if (node->stats.refused_rate % 1000 == 1) /* a flood must not flood the log */
        sos_log_notice("refused a %s from %s: over --client-rate (%llu refused so far)", req->op,
                       address, (unsigned long long)node->stats.refused_rate);
    s_error_extra(node, routing_p, req->req_id, SOS_E_RATE_LIMITED,
                  "too many requests from this address; wait", "retry_after", NULL,
                  (uint64_t)((1 - lim->tokens) / rate) + 1);
    return false;
}

/*  Admit one more long poll or forward from address. False (and an unavailable reply with
    retry_after) over the caps. */
static bool
s_pending_take(sos_node_t *node, zframe_t **routing_p, const sos_request_t *req,
               const char *address)
{
    sos_rooms_t *self = node->rooms;
    size_t total = zlistx_size(self->pollers) + zhashx_size(self->forwards);
    s_limit_t *lim = NULL;
    bool ok = total < node->cfg.max_pending_total;
    if (ok && node->cfg.max_pending) {
        lim = s_limit_make(self, address, sos_now_ms());
        ok = !lim || lim->pending < node->cfg.max_pending;
    }
    if (ok) {
        if (lim)
            lim->pending++;
        return true;
    }
    node->stats.refused_pending++;
    if (node->stats.refused_pending % 1000 == 1)
        sos_log_notice("refused a %s from %s: too many requests waiting (%llu refused so far)",
                       req->op, address, (unsigned long long)node->stats.refused_pending);
    s_error_extra(node, routing_p, req->req_id, SOS_E_UNAVAILABLE,
                  "too many requests are waiting; try again", "retry_after", NULL, 1);
    return false;
}

static void
s_pending_release(sos_rooms_t *self, const char *address)
{
    s_limit_t *lim = zhashx_lookup(self->limits, address);
    if (lim && lim->pending)
        lim->pending--;
}

/* ------------------------------------------------------------ operations ---- */

static void
s_op_create(sos_node_t *node, zframe_t **routing_p, const char *address, const sos_request_t *req,
            const char *room)
{
    sos_rooms_t *self = node->rooms;
    uint64_t now = sos_now_ms();
    if (req->flags & SOS_REQ_FORWARDED) {
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, "create is never forwarded");
        return;
    }
    if (node->cfg.rate_limit) {
        s_limit_t *lim = s_limit(self, address, now);
        if (lim && now < lim->next_ms) {
            node->stats.refused_create++;
            if (node->stats.refused_create % 1000 == 1)
                sos_log_notice("refused a create from %s: inside the rate limit (%llu refused "
                               "so far)",
                               address, (unsigned long long)node->stats.refused_create);
            s_error_extra(node, routing_p, req->req_id, SOS_E_RATE_LIMITED,
                          "too many rooms created from this address; wait", "retry_after", NULL,
                          (lim->next_ms - now + 999) / 1000);
            return;
        }
    }
    /*  Everything the client gave is checked here, before anything is written: a failure
        after the first write would leave room state behind that no record points to. */
    char description[SOS_DESC_MAX + 1], given[SOS_NICK_MAX + 1];
    char nick[SOS_NICK_MAX + 1];
    s_emojis_t emojis;
    if (!s_arg_emojis(node, routing_p, req, &emojis) ||
        !s_arg_str(node, routing_p, req, "description", description, SOS_DESC_MAX) ||
        !s_arg_str(node, routing_p, req, "nickname", given, SOS_NICK_MAX))
        return;
    if (s_emoji_count(description) < 0 || s_emoji_count(given) < 0) {
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, "texts must be UTF-8");
        return;
    }
    s_nickname(nick, given);
    sos_txn_t *txn = sos_node_txn(node);
    if (!txn) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store unavailable");
        return;
    }
    sos_record_t *rec = calloc(1, sizeof *rec);
    if (!rec)
        return;
    sos_rc rc = sos_dir_get_room(txn, room, rec);
    if (rc == SOS_OK && rec->expires_at <= now) {
        /*  Expired, but housekeeping has not swept it yet (it runs each second, the first time
            a second after start): every other operation already answers room_not_found, so
            expire it now, with its members and messages if it is ours. */
        sos_rooms_expire(node);
        rc = sos_dir_get_room(txn, room, rec);
    }
    if (rc == SOS_OK) {
        s_error(node, routing_p, req->req_id, SOS_E_ROOM_EXISTS, "a room with this hash exists");
        goto done;
    }
    /*  Our own directory must take the room's record, or nobody could find the room: refuse
        where a cap would refuse the record (the directory may be full of others' rooms). */
    uint64_t n_rooms = 0;
    sos_origin_t mine = {0};
    rc = sos_dir_counts(txn, NULL, &n_rooms, NULL);
    if (rc == SOS_OK) {
        rc = sos_dir_get_origin(txn, node->id.pk, &mine);
        if (rc == SOS_ERR_NOT_FOUND)
            rc = SOS_OK;
    }
    if (rc || n_rooms >= node->cfg.max_rooms || mine.n_rooms >= node->cfg.max_rooms_per_origin) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE,
                rc ? "store unavailable" : "the directory is full: no room can be made here now");
        goto done;
    }
    memset(rec, 0, sizeof *rec);
    rec->kind = SOS_REC_ROOM;
    strcpy(rec->room_hash, room);
    s_record_set_emojis(rec, &emojis);
    strcpy(rec->description, description);
    snprintf(rec->url, sizeof rec->url, "%s", node->cfg.advertise);
    rec->created_at = now;
    rec->expires_at = now + (uint64_t)node->cfg.room_ttl_s * 1000;
    char member[SOS_MEMBER_ID_LEN + 1];
    s_random_hex(member, SOS_MEMBER_ID_LEN / 2);
    rc = sos_roomdb_create(txn, room, rec->created_at, rec->expires_at);
    s_ids_drop(self, room); /* a table left from a room of that hash is not this room's */
    if (rc == SOS_OK)
        rc = sos_roomdb_member_put(txn, room, member, nick, now);
    if (rc == SOS_OK)
        rc = sos_node_publish(node, rec);
    /*  The directory must hold the record now (a merge rule may still have refused it). */
    if (rc == SOS_OK && sos_dir_get_room(txn, room, NULL) != SOS_OK)
        rc = SOS_ERR_INVALID;
    if (rc) {
        /*  Undo the room's state and membership. If the undo itself fails, the store has
            spoiled the transaction and the commit discards the whole pass instead. */
        sos_roomdb_drop(txn, room);
        sos_log_error("cannot create room %s: %s", room, sos_strerror(rc));
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "the room could not be stored");
        goto done;
    }
    if (node->cfg.rate_limit)
        s_limit_note_create(self, address, now);
    sos_log_info("room %s created", room);
    msgpack_packer pk = s_packer(node);
    sos_reply_pack_begin(&pk, req->req_id, "ok");
    msgpack_pack_map(&pk, 5);
    sos_mp_pack_kv_str(&pk, "room_hash", room);
    sos_mp_pack_kv_uint(&pk, "created_at", rec->created_at);
    sos_mp_pack_kv_uint(&pk, "expires_at", rec->expires_at);
    sos_mp_pack_kv_str(&pk, "member_id", member);
    sos_mp_pack_str(&pk, "members");
    msgpack_pack_array(&pk, 1);
    sos_mp_pack_str(&pk, nick);
    s_queue(node, routing_p, req->req_id);
done:
    free(rec);
}

/*  The member_id argument, checked against the room's members. */
static bool
s_member(sos_node_t *node, sos_txn_t *txn, zframe_t **routing_p, const sos_request_t *req,
         const char *room, char *member, char *nickname)
{
    const msgpack_object *o = sos_mp_map_get(req->args, "member_id");
    if (!o || !sos_mp_str_copy(o, member, SOS_MEMBER_ID_LEN) ||
        strlen(member) != SOS_MEMBER_ID_LEN) {
        s_error(node, routing_p, req->req_id, SOS_E_NOT_MEMBER, "member_id is not a member");
        return false;
    }
    sos_rc rc = sos_roomdb_member_get(txn, room, member, nickname);
    /*  INVALID: not the form of a member id (32 lower-case hex characters), so no member. */
    if (rc == SOS_ERR_NOT_FOUND || rc == SOS_ERR_INVALID) {
        s_error(node, routing_p, req->req_id, SOS_E_NOT_MEMBER, "member_id is not a member");
        return false;
    }
    if (rc) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store read failed");
        return false;
    }
    return true;
}

/*  Idle members

    The seed's app joins again on every visit, and so makes a new member each time; members
    who leave are deleted, but those who just close the tab would fill the room's member cap
    for its whole life. So the owner remembers, in memory, when each member last polled or
    sent, and a join into a full room first removes the members quiet for --member-idle
    seconds (after a restart, or when the memory is full, their join time stands in). Live
    clients poll every few seconds and are never quiet that long. */
static void
s_touch(sos_node_t *node, const char *room, const char *member)
{
    zhashx_t *activity = node->rooms->activity;
    /*  Both are of fixed length here (checked by the caller): no snprintf per send. */
    char key[SOS_ROOMHASH_LEN + SOS_MEMBER_ID_LEN + 1];
    memcpy(key, room, SOS_ROOMHASH_LEN);
    memcpy(key + SOS_ROOMHASH_LEN, member, SOS_MEMBER_ID_LEN);
    key[sizeof key - 1] = '\0';
    uint64_t *t = zhashx_lookup(activity, key);
    if (!t) {
        if (zhashx_size(activity) >= SOS_ACTIVITY_MAX)
            zhashx_purge(activity); /* join times stand in until members are seen again */
        t = malloc(sizeof *t);
        if (!t)
            return;
        zhashx_insert(activity, key, t);
    }
    *t = sos_now_ms();
}

typedef struct {
    zhashx_t *activity;
    const char *room;
    uint64_t before; /* wall ms: members last active before it are idle */
    zlistx_t *idle;  /* member ids (owned strings) */
} s_idle_t;

static int
s_idle_each(void *arg, const char *member_id, const char *nickname, uint64_t joined_at)
{
    s_idle_t *a = arg;
    char key[SOS_ROOMHASH_LEN + SOS_MEMBER_ID_LEN + 1];
    snprintf(key, sizeof key, "%s%s", a->room, member_id);
    uint64_t *t = zhashx_lookup(a->activity, key);
    uint64_t last = t && *t > joined_at ? *t : joined_at;
    if (last < a->before)
        zlistx_add_end(a->idle, (void *)member_id);
    return zlistx_size(a->idle) >= SOS_EVICT_MAX;
}

/*  Remove the room's idle members; returns how many. */
static uint32_t
s_evict_idle(sos_node_t *node, sos_txn_t *txn, const char *room)
{
    uint64_t now = sos_now_ms(), idle_ms = (uint64_t)node->cfg.member_idle_s * 1000;
    s_idle_t a = {.activity = node->rooms->activity,
                  .room = room,
                  .before = now > idle_ms ? now - idle_ms : 0,
                  .idle = zlistx_new()};
    if (!a.idle)
        return 0;
    zlistx_set_duplicator(a.idle, (zlistx_duplicator_fn *)strdup);
    zlistx_set_destructor(a.idle, (zlistx_destructor_fn *)zstr_free);
    uint32_t n = 0;
    if (sos_roomdb_foreach_member(txn, room, s_idle_each, &a) == SOS_OK)
        for (const char *m = zlistx_first(a.idle); m; m = zlistx_next(a.idle)) {
            if (sos_roomdb_member_del(txn, room, m) != SOS_OK)
                break;
            char key[SOS_ROOMHASH_LEN + SOS_MEMBER_ID_LEN + 1];
            snprintf(key, sizeof key, "%s%s", room, m);
            zhashx_delete(node->rooms->activity, key);
            n++;
        }
    zlistx_destroy(&a.idle);
    node->stats.members_idle += n;
    if (n)
        sos_log_info("room %s: %u idle members removed to make room", room, n);
    return n;
}

static void
s_op_join(sos_node_t *node, sos_txn_t *txn, zframe_t **routing_p, const sos_request_t *req,
          const char *room, const char *address, const sos_room_state_t *st)
{
    char given[SOS_NICK_MAX + 1], nick[SOS_NICK_MAX + 1];
    if (!s_arg_str(node, routing_p, req, "nickname", given, SOS_NICK_MAX))
        return;
    if (s_emoji_count(given) < 0) {
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, "nickname must be UTF-8");
        return;
    }
    if (st->member_count >= SOS_ROOM_MEMBERS_MAX && s_evict_idle(node, txn, room) == 0) {
        node->stats.refused_full++;
        if (node->stats.refused_full % 1000 == 1)
            sos_log_notice("refused a join to %s: the room is full (%llu refused so far)", room,
                           (unsigned long long)node->stats.refused_full);
        s_error(node, routing_p, req->req_id, SOS_E_TOO_LARGE, "the room is full");
        return;
    }
    s_nickname(nick, given);
    char member[SOS_MEMBER_ID_LEN + 1];
    s_random_hex(member, SOS_MEMBER_ID_LEN / 2);
    sos_rc rc = sos_roomdb_member_put(txn, room, member, nick, sos_now_ms());
    if (rc) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "the member could not be stored");
        return;
    }
    uint64_t last_ts = 0;
    if (sos_roomdb_last_ts(txn, room, &last_ts)) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store read failed");
        return;
    }
    msgpack_packer pk = s_packer(node);
    sos_reply_pack_begin(&pk, req->req_id, "ok");
    msgpack_pack_map(&pk, 8);
    sos_mp_pack_kv_str(&pk, "room_hash", room);
    sos_mp_pack_kv_uint(&pk, "created_at", st->created_at);
    sos_mp_pack_kv_uint(&pk, "expires_at", st->expires_at);
    sos_mp_pack_kv_str(&pk, "member_id", member);
    if (s_pack_members(&pk, txn, room)) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store read failed");
        return;
    }
    sos_mp_pack_kv_uint(&pk, "message_count", st->message_count);
    sos_mp_pack_kv_uint(&pk, "last_seq", st->last_seq);
    sos_mp_pack_kv_uint(&pk, "last_message_ts", last_ts);
    s_queue(node, routing_p, req->req_id);
}

/*  Message ids

    A retried send (same msg_id) must get the seq its first attempt got, for as long as that
    message is in the room's history, across restarts. The store's msgids table did that
    with one B-tree insert per message, keyed by the id: ids are random, or per client, so
    nearly every insert dirtied a leaf page of its own, and those pages were most of what a
    commit wrote (about 50 of 4 KiB each for 30 sends; without them a send cost the owner a
    third less CPU).

    So the owner keeps each room's ids in memory instead: a table of a keyed hash of the id
    (SipHash, its key random per start, so no client can aim collisions) to the seq. The
    messages themselves carry their msg_id, so the table is built from the stored history
    when a room is first sent to, and a hit is confirmed by reading the message at that seq
    and comparing ids. The table never has to be right, only complete: a seq that a failed
    commit took back, a message that fell out of the history, a room dropped and made again
    all fail the comparison and count as no match. Entries of dropped messages pile up, so
    a table holding more than twice its room's messages is built again; and when all tables
    together reach SOS_IDS_SLOTS_MAX slots they are all dropped and rebuilt as rooms are sent
    to (a room of 100,000 messages takes 4 MiB and a scan of a few tens of ms). */
#define SOS_IDS_SLOTS_MAX (4u << 20) /* 64 MiB */

static uint64_t
s_ids_hash(const sos_rooms_t *self, const char *id, size_t len)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const uint8_t *)id, len, self->ids_key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h ? h : 1;
}

/*  Slot of hash, or the free slot where it would go. */
static s_id_slot_t *
s_ids_slot(const s_ids_t *ids, uint64_t hash)
{
    size_t mask = ids->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask)
        if (ids->slots[i].hash == hash || ids->slots[i].hash == 0)
            return &ids->slots[i];
}

/*  Record that hash was stored at seq (the newest wins). Returns false when the table is at
    its size and cannot grow (the caller drops it). */
static bool
s_ids_put(sos_rooms_t *self, s_ids_t *ids, uint64_t hash, uint64_t seq)
{
    if ((ids->n + 1) * 2 > ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        if (self->ids_slots - ids->cap + cap > SOS_IDS_SLOTS_MAX)
            return false;
        s_id_slot_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return false;
        s_ids_t bigger = {.slots = slots, .cap = cap, .n = 0, .last = ids->last};
        for (size_t i = 0; i < ids->cap; i++)
            if (ids->slots[i].hash) {
                *s_ids_slot(&bigger, ids->slots[i].hash) = ids->slots[i];
                bigger.n++;
            }
        free(ids->slots);
        self->ids_slots = self->ids_slots - ids->cap + cap;
        *ids = bigger;
    }
    s_id_slot_t *slot = s_ids_slot(ids, hash);
    if (slot->hash == 0)
        ids->n++;
    slot->hash = hash;
    slot->seq = seq;
    return true;
}

typedef struct {
    sos_rooms_t *self;
    s_ids_t *ids;
    bool full;
} s_ids_build_t;

static int
s_ids_build_each(void *arg, const sos_message_t *msg)
{
    s_ids_build_t *b = arg;
    if (msg->msg_id_len &&
        !s_ids_put(b->self, b->ids, s_ids_hash(b->self, msg->msg_id, msg->msg_id_len), msg->seq))
        b->full = true;
    return b->full;
}

static void
s_ids_drop(sos_rooms_t *self, const char *room)
{
    s_ids_t *ids = zhashx_lookup(self->ids, room);
    if (ids) {
        self->ids_slots -= ids->cap;
        zhashx_delete(self->ids, room);
    }
}

static void
s_ids_drop_all(sos_rooms_t *self)
{
    zhashx_purge(self->ids);
    self->ids_slots = 0;
}

/*  The room's id table, built from its history if need be; NULL on a store error or when
    no memory is left for it (the caller answers unavailable). */
static s_ids_t *
s_ids_for(sos_node_t *node, sos_txn_t *txn, const char *room, const sos_room_state_t *st)
{
    sos_rooms_t *self = node->rooms;
    s_ids_t *ids = zhashx_lookup(self->ids, room);
    if (ids && ids->n <= 2 * (size_t)st->message_count + 64)
        return ids;
    s_ids_drop(self, room);
    for (int attempt = 0; attempt < 2; attempt++) {
        ids = calloc(1, sizeof *ids);
        if (!ids || zhashx_insert(self->ids, room, ids) != 0) {
            free(ids);
            return NULL;
        }
        s_ids_build_t b = {self, ids, false};
        sos_rc rc = sos_roomdb_foreach_message(txn, room, 0, s_ids_build_each, &b);
        if (rc == SOS_OK && !b.full)
            return ids;
        s_ids_drop(self, room);
        if (rc)
            return NULL;
        s_ids_drop_all(self); /* the other rooms' tables make way, and are built again */
        node->stats.msgid_tables_dropped++;
        if (node->stats.msgid_tables_dropped % 100 == 1)
            sos_log_notice("message ids: the tables reached %u slots; dropped them all (%llu "
                           "times so far)",
                           (unsigned)SOS_IDS_SLOTS_MAX,
                           (unsigned long long)node->stats.msgid_tables_dropped);
    }
    return NULL;
}

/*  The seq and timestamp msg_id was stored with in the room, if it is still there. */
static sos_rc
s_ids_find(sos_txn_t *txn, const s_ids_t *ids, const char *room, uint64_t hash, const char *msg_id,
           size_t len, uint64_t *seq, uint64_t *timestamp)
{
    if (ids->cap == 0)
        return SOS_ERR_NOT_FOUND;
    const s_id_slot_t *slot = s_ids_slot(ids, hash);
    if (slot->hash == 0)
        return SOS_ERR_NOT_FOUND;
    sos_message_t m;
    sos_rc rc = sos_roomdb_message_get(txn, room, slot->seq, &m);
    if (rc)
        return rc;
    if (m.msg_id_len != len || memcmp(m.msg_id, msg_id, len) != 0)
        return SOS_ERR_NOT_FOUND;
    *seq = slot->seq;
    *timestamp = m.timestamp;
    return SOS_OK;
}

static void
s_op_send(sos_node_t *node, sos_txn_t *txn, zframe_t **routing_p, const sos_request_t *req,
          const char *room, sos_room_state_t *st)
{
    char member[SOS_MEMBER_ID_LEN + 1], nick[SOS_NICK_MAX + 1];
    if (!s_member(node, txn, routing_p, req, room, member, nick))
        return;
    s_touch(node, room, member);
    const msgpack_object *o = sos_mp_map_get(req->args, "content");
    const char *content;
    size_t len;
    if (!o || !sos_mp_str(o, &content, &len, SIZE_MAX)) {
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, "content must be a string");
        return;
    }
    if (len > SOS_CONTENT_MAX) {
        s_error(node, routing_p, req->req_id, SOS_E_TOO_LARGE, "content is over 64 KiB");
        return;
    }
    char msg_id[SOS_MSGID_MAX + 1];
    if (!s_arg_str(node, routing_p, req, "msg_id", msg_id, SOS_MSGID_MAX))
        return;
    if (!*msg_id)
        s_random_hex(msg_id, 16);
    sos_message_t msg = {.timestamp = sos_now_ms(),
                         .msg_id = msg_id,
                         .msg_id_len = strlen(msg_id),
                         .sender = nick,
                         .sender_len = strlen(nick),
                         .content = (const uint8_t *)content,
                         .content_len = len};
    uint64_t seq = 0, ts = 0;
    bool dup = false;
    s_ids_t *ids = s_ids_for(node, txn, room, st);
    if (!ids) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "the message could not be stored");
        return;
    }
    uint64_t hash = s_ids_hash(node->rooms, msg.msg_id, msg.msg_id_len);
    sos_rc rc = s_ids_find(txn, ids, room, hash, msg.msg_id, msg.msg_id_len, &seq, &ts);
    if (rc == SOS_OK)
        dup = true;
    else if (rc == SOS_ERR_NOT_FOUND) {
        rc = sos_roomdb_append_held(txn, room, &msg, node->cfg.history_limit,
                                    (uint64_t)node->cfg.room_quota_kib * 1024, &ids->last, st, &seq,
                                    &ts);
        /*  Past its cap the table is dropped (built again at the next send): it must never
            miss an id it holds no entry for. */
        if (rc == SOS_OK)
            node->rooms->pass_room.dirty = true; /* st is the held state */
        if (rc == SOS_OK && !s_ids_put(node->rooms, ids, hash, seq))
            s_ids_drop(node->rooms, room);
    }
    if (rc) {
        sos_rooms_forget_pass(node);
        sos_log_error("cannot store a message in %s: %s", room, sos_strerror(rc));
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "the message could not be stored");
        return;
    }
    if (dup)
        node->stats.send_dups++;
    else {
        node->stats.sends++;
        if (!zlistx_find(node->pass.woken_rooms, (void *)room))
            zlistx_add_end(node->pass.woken_rooms, (void *)room);
    }
    msgpack_packer pk = s_packer(node);
    sos_reply_pack_begin(&pk, req->req_id, "ok");
    msgpack_pack_map(&pk, 3);
    sos_mp_pack_kv_str(&pk, "id", msg_id);
    sos_mp_pack_kv_uint(&pk, "seq", seq);
    sos_mp_pack_kv_uint(&pk, "timestamp", ts);
    s_queue(node, routing_p, req->req_id);
}

static void
s_op_poll(sos_node_t *node, sos_txn_t *txn, zframe_t **routing_p, const sos_request_t *req,
          const char *room, const char *address)
{
    char member[SOS_MEMBER_ID_LEN + 1];
    if (!s_member(node, txn, routing_p, req, room, member, NULL))
        return;
    s_touch(node, room, member);
    uint64_t since = 0, wait_ms = 0;
    const msgpack_object *o = sos_mp_map_get(req->args, "since");
    if (o && !sos_mp_uint(o, &since)) {
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, "since must be a seq number");
        return;
    }
    o = sos_mp_map_get(req->args, "wait_ms");
    if (o && !sos_mp_uint(o, &wait_ms)) {
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, "wait_ms must be a number");
        return;
    }
    /*  since_ts (ms): the messages stamped after it, as the seed's API polls. Timestamps
        increase with seq, so it becomes the seq cursor of the newest message at or before
        it, and the rest of the poll (long polls included) is by seq. */
    o = sos_mp_map_get(req->args, "since_ts");
    if (o) {
        uint64_t since_ts = 0;
        if (!sos_mp_uint(o, &since_ts)) {
            s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, "since_ts must be a number");
            return;
        }
        if (sos_roomdb_seq_at(txn, room, since_ts, &since)) {
            s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store read failed");
            return;
        }
    }
    if (wait_ms > SOS_POLL_WAIT_MAX_MS)
        wait_ms = SOS_POLL_WAIT_MAX_MS;
    sos_room_state_t st;
    if (sos_roomdb_get(txn, room, &st)) {
        s_error(node, routing_p, req->req_id, SOS_E_ROOM_NOT_FOUND, "no such room");
        return;
    }
    if (st.last_seq <= since && wait_ms > 0) {
        if (!s_pending_take(node, routing_p, req, address))
            return;
        s_poller_t *p = calloc(1, sizeof *p);
        if (!p) {
            s_pending_release(node->rooms, address);
            return;
        }
        snprintf(p->address, sizeof p->address, "%s", address);
        p->routing = *routing_p;
        *routing_p = NULL;
        p->req_id = req->req_id;
        strcpy(p->room, room);
        strcpy(p->member, member);
        p->since = since;
        p->deadline_mono = sos_mono_ms() + wait_ms;
        zlistx_add_end(node->rooms->pollers, p);
        return;
    }
    uint32_t count = 0;
    if (s_pack_poll(node, txn, room, req->req_id, since, &count)) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store read failed");
        return;
    }
    s_queue(node, routing_p, req->req_id);
}

static void
s_op_leave(sos_node_t *node, sos_txn_t *txn, zframe_t **routing_p, const sos_request_t *req,
           const char *room)
{
    char member[SOS_MEMBER_ID_LEN + 1];
    if (!s_member(node, txn, routing_p, req, room, member, NULL))
        return;
    if (sos_roomdb_member_del(txn, room, member)) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "the member could not be removed");
        return;
    }
    msgpack_packer pk = s_packer(node);
    sos_reply_pack_begin(&pk, req->req_id, "ok");
    msgpack_pack_map(&pk, 1);
    sos_mp_pack_kv_str(&pk, "status", "left");
    s_queue(node, routing_p, req->req_id);
}

static void
s_op_info(sos_node_t *node, sos_txn_t *txn, zframe_t **routing_p, const sos_request_t *req,
          const char *room, const sos_room_state_t *st)
{
    uint64_t now = sos_now_ms();
    msgpack_packer pk = s_packer(node);
    sos_reply_pack_begin(&pk, req->req_id, "ok");
    msgpack_pack_map(&pk, 7);
    sos_mp_pack_kv_str(&pk, "room_hash", room);
    sos_mp_pack_kv_uint(&pk, "created_at", st->created_at);
    sos_mp_pack_kv_uint(&pk, "expires_at", st->expires_at);
    if (s_pack_members(&pk, txn, room)) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store read failed");
        return;
    }
    sos_mp_pack_kv_uint(&pk, "message_count", st->message_count);
    sos_mp_pack_kv_uint(&pk, "time_remaining",
                        st->expires_at > now ? (st->expires_at - now) / 1000 : 0);
    sos_mp_pack_kv_str(&pk, "owner", node->id_hex);
    s_queue(node, routing_p, req->req_id);
}

/* ------------------------------------------------------------ forwarding ---- */

static bool
s_key_is(const msgpack_object *k, const char *name)
{
    size_t len = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
           memcmp(k->via.str.ptr, name, len) == 0;
}

/*  Forwards waiting per owner url: sos_gossip.c does not close a connection that a
    forward's answer is to come on. */
static void
s_busy_add(sos_rooms_t *self, const char *url, int delta)
{
    uintptr_t n = (uintptr_t)zhashx_lookup(self->busy, url);
    if (delta < 0 && n <= 1)
        zhashx_delete(self->busy, url);
    else
        zhashx_update(self->busy, url, (void *)(delta < 0 ? n - 1 : n + 1));
}

bool
sos_rooms_forwarding_to(sos_node_t *node, const char *url)
{
    return node->rooms && zhashx_lookup(node->rooms->busy, url) != NULL;
}

/*  The forward under key is over (answered or late): free its slots. */
static void
s_forward_end(sos_node_t *node, const char *key)
{
    sos_rooms_t *self = node->rooms;
    s_forward_t *f = zhashx_lookup(self->forwards, key);
    if (!f)
        return;
    s_pending_release(self, f->address);
    s_busy_add(self, f->url, -1);
    zhashx_delete(self->forwards, key);
}

/*  Send a forward not sent yet. The owner's connection may be closed (to stay under the
    connection cap, or never opened since this node started), still being made (a DEALER
    refuses to send until it has connected), or waiting to reconnect after the owner
    restarted: none of that is the owner being unreachable. So the connection is opened,
    or dialled again at once rather than after ZeroMQ's reconnect backoff (which grows to
    seconds while the owner is down), and the forward waits, retried every
    SOS_FORWARD_RETRY_MS, until it is sent or its deadline passes. True once sent. */
static bool
s_forward_try(sos_node_t *node, s_forward_t *f)
{
    if (!f->msg)
        return true;
    sos_peer_t *peer = sos_gossip_peer_for_url(node, f->url, f->owner);
    if (!peer)
        return false; /* every connection busy at the cap, or no socket: try again */
    if (sos_node_send_now(node, peer->dealer, f->msg, f->msg_size)) {
        free(f->msg);
        f->msg = NULL;
        node->stats.forwards++;
        return true;
    }
    sos_gossip_peer_redial(node, peer, SOS_FORWARD_REDIAL_MS);
    return false;
}

static void s_retry_arm(sos_node_t *node);

static void
s_forward(sos_node_t *node, zframe_t **routing_p, const char *address, const sos_request_t *req,
          const sos_record_t *rec)
{
    char owner[SOS_NODEID_HEX + 1];
    sos_hex(owner, rec->origin, SOS_NODEID_BYTES);
    /*  A forward id is random, not a counter, so that nobody can answer a forward it did not
        see; the reply must also come on the connection the forward went out on (checked
        in sos_rooms_on_forward_reply), so that one owner cannot answer another's. */
    uint64_t fwd_id = 0;
    char key[24];
    do {
        randombytes_buf(&fwd_id, sizeof fwd_id);
        snprintf(key, sizeof key, "%016llx", (unsigned long long)fwd_id);
    } while (zhashx_lookup(node->rooms->forwards, key));
    if (!s_pending_take(node, routing_p, req, address))
        return;
    /*  The arguments as the client gave them, but for `client`: the address we see, so that
        the owner can apply its per-client limits. */
    msgpack_packer pk = s_packer(node);
    sos_request_pack_begin(&pk, fwd_id, req->op);
    const msgpack_object_map *args = &req->args->via.map;
    uint32_t n = 0;
    for (uint32_t i = 0; i < args->size; i++)
        n += !s_key_is(&args->ptr[i].key, "client");
    msgpack_pack_map(&pk, n + 1);
    for (uint32_t i = 0; i < args->size; i++)
        if (!s_key_is(&args->ptr[i].key, "client")) {
            msgpack_pack_object(&pk, args->ptr[i].key);
            msgpack_pack_object(&pk, args->ptr[i].val);
        }
    sos_mp_pack_kv_str(&pk, "client", address);
    sos_request_pack_end(&pk, req->flags | SOS_REQ_FORWARDED);
    uint64_t wait_ms = 0;
    if (streq(req->op, "poll")) {
        const msgpack_object *o = sos_mp_map_get(req->args, "wait_ms");
        if (o && sos_mp_uint(o, &wait_ms) && wait_ms > SOS_POLL_WAIT_MAX_MS)
            wait_ms = SOS_POLL_WAIT_MAX_MS;
    }
    s_forward_t *f = calloc(1, sizeof *f);
    /*  A copy of the request, kept until it is sent: no larger than the frame it came in. */
    uint8_t *msg = f ? malloc(node->buf.size) : NULL;
    if (!f || !msg || zhashx_insert(node->rooms->forwards, key, f) != 0) {
        free(msg);
        free(f);
        s_pending_release(node->rooms, address);
        node->stats.forward_failures++;
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "out of memory");
        return;
    }
    memcpy(msg, node->buf.data, node->buf.size);
    f->msg = msg;
    f->msg_size = node->buf.size;
    f->routing = *routing_p;
    *routing_p = NULL;
    f->client_req_id = req->req_id;
    f->deadline_mono = sos_mono_ms() + SOS_FORWARD_TIMEOUT_MS + wait_ms;
    strcpy(f->owner, owner);
    snprintf(f->url, sizeof f->url, "%s", rec->url);
    snprintf(f->address, sizeof f->address, "%s", address);
    s_busy_add(node->rooms, f->url, 1);
    if (!s_forward_try(node, f))
        s_retry_arm(node);
}

/*  Send the forwards not sent yet; the timer stops when none is left. */
static void
s_retry_unsent(sos_node_t *node)
{
    sos_rooms_t *self = node->rooms;
    zlistx_t *unsent = zlistx_new();
    if (!unsent)
        return;
    for (s_forward_t *f = zhashx_first(self->forwards); f; f = zhashx_next(self->forwards))
        if (f->msg)
            zlistx_add_end(unsent, (void *)zhashx_cursor(self->forwards));
    bool left = false;
    for (const char *key = zlistx_first(unsent); key; key = zlistx_next(unsent)) {
        s_forward_t *f = zhashx_lookup(self->forwards, key);
        if (f && !s_forward_try(node, f))
            left = true;
    }
    zlistx_destroy(&unsent);
    if (!left && self->retry_timer >= 0) {
        zloop_timer_end(node->loop, self->retry_timer);
        self->retry_timer = -1;
    }
}

static int
s_on_retry(zloop_t *loop, int timer_id, void *arg)
{
    sos_node_t *node = arg;
    sos_node_pass_begin(node);
    s_retry_unsent(node);
    sos_node_pass_end(node);
    return 0;
}

static void
s_retry_arm(sos_node_t *node)
{
    if (node->rooms->retry_timer >= 0 || !node->loop)
        return;
    /*  Without a timer, sos_rooms_tick retries, less often. */
    node->rooms->retry_timer = zloop_timer(node->loop, SOS_FORWARD_RETRY_MS, 0, s_on_retry, node);
}

void
sos_rooms_on_forward_reply(sos_node_t *node, const sos_peer_t *peer, const uint8_t *frame,
                           size_t size)
{
    sos_mp_doc_t doc;
    sos_reply_t rep;
    if (sos_reply_decode(&rep, &doc, frame, size) != SOS_OK) {
        sos_node_drop(node, SOS_DROP_MALFORMED, "forwarded reply does not decode");
        sos_mp_doc_release(&doc);
        return;
    }
    char key[24];
    snprintf(key, sizeof key, "%016llx", (unsigned long long)rep.req_id);
    s_forward_t *f = zhashx_lookup(node->rooms->forwards, key);
    if (!f) {
        sos_node_drop(node, SOS_DROP_UNEXPECTED, "reply to no forwarded request");
        sos_mp_doc_release(&doc);
        return;
    }
    if (!streq(f->url, peer->url)) {
        /*  The forward stays: its owner may still answer it. */
        sos_node_drop(node, SOS_DROP_WRONG_SENDER, "reply to a forward from another node");
        sos_mp_doc_release(&doc);
        return;
    }
    /*  Relay unchanged but for the request id. */
    msgpack_packer pk = s_packer(node);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, SOS_FRAME_REPLY);
    msgpack_pack_uint64(&pk, f->client_req_id);
    sos_mp_pack_strn(&pk, rep.status, rep.status_len);
    msgpack_pack_object(&pk, *rep.body);
    sos_node_queue(node, node->router, &f->routing, node->buf.data, node->buf.size, 0,
                   SOS_OUT_RELAY);
    s_forward_end(node, key);
    sos_mp_doc_release(&doc);
}

/* --------------------------------------------------------------- dispatch ---- */

/*  Every room request needs the room's directory record (who owns it, until when), and
    decoding it (msgpack, 2.5 KiB of struct) cost a send more than a fifth of the node's own
    instructions. So decoded records are kept, keyed by room hash, and one is used only while
    its wire form is byte for byte the one stored: the stored value is read anyway (one
    B-tree lookup) and a memcmp of its few hundred bytes says whether a merge, an extension
    or a drop changed it. Nothing has to invalidate the cache, and it cannot go stale. When
    it is full it is emptied: it holds the rooms in use, and refills from the store. */
#define SOS_RECORDS_MAX 256

/*  The room's record in *rec_p, borrowed from the cache until the next call. SOS_OK,
    SOS_ERR_NOT_FOUND, SOS_ERR_NOMEM or a store error. */
static sos_rc
s_room_record(sos_node_t *node, sos_txn_t *txn, const char *room, const sos_record_t **rec_p)
{
    const uint8_t *wire;
    size_t len;
    sos_rc rc = sos_roomdb_dir_wire(txn, room, &wire, &len);
    if (rc)
        return rc;
    zhashx_t *records = node->rooms->records;
    sos_record_t *rec = zhashx_lookup(records, room);
    if (rec && rec->wire_len == len && memcmp(rec->wire, wire, len) == 0) {
        *rec_p = rec;
        return SOS_OK;
    }
    if (!rec) {
        if (zhashx_size(records) >= SOS_RECORDS_MAX)
            zhashx_purge(records);
        rec = malloc(sizeof *rec);
        if (!rec)
            return SOS_ERR_NOMEM;
        if (zhashx_insert(records, room, rec) != 0) {
            free(rec);
            return SOS_ERR_NOMEM;
        }
    }
    rc = sos_dir_get_room(txn, room, rec);
    if (rc) {
        zhashx_delete(records, room);
        return rc;
    }
    *rec_p = rec;
    return SOS_OK;
}

void
sos_rooms_on_request(sos_node_t *node, zframe_t **routing_p, const char *address,
                     const sos_request_t *req)
{
    const char *ops[] = {"create", "join", "send", "poll", "leave", "info"};
    bool known = false;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        known |= streq(req->op, ops[i]);
    if (!known) {
        s_error(node, routing_p, req->req_id, SOS_E_BAD_REQUEST, "unknown operation");
        return;
    }
    char room[SOS_ROOMHASH_LEN + 1];
    const msgpack_object *o = sos_mp_map_get(req->args, "room_hash");
    if (!o || !sos_mp_str_copy(o, room, SOS_ROOMHASH_LEN) ||
        !sos_room_hash_valid(room, strlen(room))) {
        s_error(node, routing_p, req->req_id, SOS_E_INVALID_ROOM_HASH,
                "room_hash must be 16 lower-case hex characters");
        return;
    }
    /*  The client's address: the one we see, or for a forwarded request the one the
        forwarding node saw. */
    char client[64];
    const char *who = address;
    o = sos_mp_map_get(req->args, "client");
    if ((req->flags & SOS_REQ_FORWARDED) && o && sos_mp_str_copy(o, client, sizeof client - 1) &&
        *client)
        who = client;
    bool send = streq(req->op, "send");
    s_pass_room_t *pr = &node->rooms->pass_room;
    if (!send || !pr->valid || !streq(pr->room, room))
        sos_rooms_forget_pass(node);
    if (streq(req->op, "create")) {
        s_op_create(node, routing_p, address, req, room);
        return;
    }
    if ((streq(req->op, "join") || streq(req->op, "send")) &&
        !s_limit_take(node, routing_p, req, who))
        return;
    sos_txn_t *txn = sos_node_txn(node);
    if (!txn) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store unavailable");
        return;
    }
    if (send && pr->valid && streq(pr->room, room)) {
        /*  An owned room a send of this pass has read: see "Room state per pass". */
        if (pr->expires_at <= sos_now_ms()) {
            sos_rooms_forget_pass(node);
            s_error(node, routing_p, req->req_id, SOS_E_ROOM_NOT_FOUND, "no such room");
        } else
            s_op_send(node, txn, routing_p, req, room, &pr->st);
        return;
    }
    const sos_record_t *rec = NULL;
    sos_rc rc = s_room_record(node, txn, room, &rec);
    if (rc && rc != SOS_ERR_NOT_FOUND) {
        s_error(node, routing_p, req->req_id, SOS_E_UNAVAILABLE, "store read failed");
        return;
    }
    if (rc || rec->expires_at <= sos_now_ms()) {
        s_error(node, routing_p, req->req_id, SOS_E_ROOM_NOT_FOUND, "no such room");
        return;
    }
    if (memcmp(rec->origin, node->id.pk, SOS_NODEID_BYTES) != 0) {
        if (req->flags & SOS_REQ_FORWARDED)
            s_error(node, routing_p, req->req_id, SOS_E_ROOM_NOT_FOUND,
                    "this node does not own the room");
        else
            s_forward(node, routing_p, who, req, rec);
        return;
    }
    sos_room_state_t st;
    rc = sos_roomdb_get(txn, room, &st);
    if (rc) {
        s_error(node, routing_p, req->req_id, SOS_E_ROOM_NOT_FOUND, "no such room");
        return;
    }
    if (streq(req->op, "join"))
        s_op_join(node, txn, routing_p, req, room, address, &st);
    else if (send) {
        *pr = (s_pass_room_t){.valid = true, .expires_at = rec->expires_at, .st = st};
        memcpy(pr->room, room, sizeof pr->room);
        s_op_send(node, txn, routing_p, req, room, &pr->st);
    } else if (streq(req->op, "poll"))
        s_op_poll(node, txn, routing_p, req, room, who);
    else if (streq(req->op, "leave"))
        s_op_leave(node, txn, routing_p, req, room);
    else
        s_op_info(node, txn, routing_p, req, room, &st);
}

/* ------------------------------------------------------------- long polls ---- */

/*  Answer a waiting poller now (messages, or an empty batch at its deadline). */
static void
s_answer_poller(sos_node_t *node, sos_txn_t *txn, s_poller_t *p)
{
    uint32_t count = 0;
    const char *code = SOS_E_UNAVAILABLE, *why = "store read failed";
    sos_rc rc = sos_roomdb_get(txn, p->room, NULL);
    if (rc == SOS_ERR_NOT_FOUND) {
        code = SOS_E_ROOM_NOT_FOUND;
        why = "the room is gone";
    } else if (rc == SOS_OK) {
        /*  The room is there, but the member may have left while the poll waited. */
        rc = sos_roomdb_member_get(txn, p->room, p->member, NULL);
        if (rc == SOS_ERR_NOT_FOUND) {
            code = SOS_E_NOT_MEMBER;
            why = "member_id is not a member";
        } else if (rc == SOS_OK)
            rc = s_pack_poll(node, txn, p->room, p->req_id, p->since, &count);
    }
    if (rc) {
        msgpack_packer pk = s_packer(node);
        sos_reply_pack_error(&pk, p->req_id, code, why);
    }
    sos_node_reply_now(node, p->routing, node->buf.data, node->buf.size);
}

void
sos_rooms_wake(sos_node_t *node)
{
    sos_rooms_t *self = node->rooms;
    if (!zlistx_size(node->pass.woken_rooms) || !zlistx_size(self->pollers))
        return;
    sos_txn_t *txn = NULL;
    if (sos_txn_begin(node->store, false, &txn))
        return;
    void *handle = zlistx_first(self->pollers) ? zlistx_cursor(self->pollers) : NULL;
    while (handle) {
        s_poller_t *p = zlistx_handle_item(handle);
        void *next = zlistx_next(self->pollers) ? zlistx_cursor(self->pollers) : NULL;
        if (zlistx_find(node->pass.woken_rooms, p->room)) {
            s_answer_poller(node, txn, p);
            s_pending_release(self, p->address);
            zlistx_delete(self->pollers, handle);
        }
        handle = next;
    }
    sos_txn_abort(&txn);
}

void
sos_rooms_tick(sos_node_t *node)
{
    sos_rooms_t *self = node->rooms;
    uint64_t now = sos_mono_ms();
    sos_txn_t *txn = NULL;
    void *handle = zlistx_first(self->pollers) ? zlistx_cursor(self->pollers) : NULL;
    while (handle) {
        s_poller_t *p = zlistx_handle_item(handle);
        void *next = zlistx_next(self->pollers) ? zlistx_cursor(self->pollers) : NULL;
        if (now >= p->deadline_mono) {
            if (!txn)
                txn = sos_node_txn(node);
            if (txn)
                s_answer_poller(node, txn, p);
            s_pending_release(self, p->address);
            zlistx_delete(self->pollers, handle);
        }
        handle = next;
    }
    zlistx_t *late = zlistx_new();
    for (s_forward_t *f = zhashx_first(self->forwards); f; f = zhashx_next(self->forwards))
        if (now >= f->deadline_mono)
            zlistx_add_end(late, (void *)zhashx_cursor(self->forwards));
    for (const char *key = zlistx_first(late); key; key = zlistx_next(late)) {
        s_forward_t *f = zhashx_lookup(self->forwards, key);
        node->stats.forward_failures++;
        s_error_extra(node, &f->routing, f->client_req_id, SOS_E_OWNER_UNREACHABLE,
                      f->msg ? "the room's owner is not reachable"
                             : "the room's owner did not answer in time",
                      "owner", f->owner, 0);
        s_forward_end(node, key);
    }
    zlistx_destroy(&late);
    s_retry_unsent(node);
}

/* ----------------------------------------------------------------- expiry ---- */

void
sos_rooms_forget_pass(sos_node_t *node)
{
    s_pass_room_t *pr = node->rooms ? &node->rooms->pass_room : NULL;
    if (!pr || !pr->valid)
        return;
    if (pr->dirty) {
        /*  Inside the pass that made it dirty, whose transaction is open. A failure fails
            that transaction, and the commit turns the pass's replies into errors. */
        sos_txn_t *txn = sos_node_txn(node);
        sos_rc rc = txn ? sos_roomdb_put_state(txn, pr->room, &pr->st) : SOS_ERR_IO;
        if (rc)
            sos_log_error("cannot store the state of room %s: %s", pr->room, sos_strerror(rc));
    }
    pr->valid = false;
    pr->dirty = false;
}

static void
s_drop_owned(sos_node_t *node, sos_txn_t *txn, const char *room, const char *code, const char *why)
{
    s_pass_room_t *pr = &node->rooms->pass_room;
    if (pr->valid && streq(pr->room, room))
        *pr = (s_pass_room_t){0}; /* dropped with the room: nothing to store */
    else
        sos_rooms_forget_pass(node);
    sos_roomdb_drop(txn, room);
    sos_rooms_t *self = node->rooms;
    s_ids_drop(self, room);
    void *handle = zlistx_first(self->pollers) ? zlistx_cursor(self->pollers) : NULL;
    while (handle) {
        s_poller_t *p = zlistx_handle_item(handle);
        void *next = zlistx_next(self->pollers) ? zlistx_cursor(self->pollers) : NULL;
        if (streq(p->room, room)) {
            s_error(node, &p->routing, p->req_id, code, why);
            s_pending_release(self, p->address);
            zlistx_delete(self->pollers, handle);
        }
        handle = next;
    }
}

static int
s_expired_each(void *arg, const char *room_hash, uint64_t expires_at)
{
    zlistx_add_end((zlistx_t *)arg, (void *)room_hash);
    return zlistx_size((zlistx_t *)arg) >= 1000;
}

void
sos_rooms_expire(sos_node_t *node)
{
    sos_txn_t *txn = sos_node_txn(node);
    if (!txn)
        return;
    zlistx_t *rooms = zlistx_new();
    zlistx_set_duplicator(rooms, (zlistx_duplicator_fn *)strdup);
    zlistx_set_destructor(rooms, (zlistx_destructor_fn *)zstr_free);
    sos_dir_foreach_expired(txn, sos_now_ms(), s_expired_each, rooms);
    sos_record_t *rec = malloc(sizeof *rec);
    for (const char *room = zlistx_first(rooms); room && rec; room = zlistx_next(rooms)) {
        if (sos_dir_get_room(txn, room, rec) == SOS_OK &&
            memcmp(rec->origin, node->id.pk, SOS_NODEID_BYTES) == 0)
            s_drop_owned(node, txn, room, SOS_E_ROOM_NOT_FOUND, "the room expired");
        if (sos_dir_del_room(txn, room) == SOS_OK) {
            sos_gossip_dirty(node);
            sos_log_info("room %s expired", room);
        }
    }
    free(rec);
    zlistx_destroy(&rooms);
}

void
sos_rooms_lost(sos_node_t *node, const char *room_hash)
{
    sos_txn_t *txn = sos_node_txn(node);
    if (!txn)
        return;
    sos_log_notice("room %s was created first on another node; dropping our copy", room_hash);
    s_drop_owned(node, txn, room_hash, SOS_E_NOT_MEMBER,
                 "the room was created first on another node; join it again");
}
