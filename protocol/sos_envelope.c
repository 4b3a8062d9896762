/*  sos_envelope.c: the frame kind of everything on a node's endpoint, the signed gossip
    envelope (encode, strict decode and verify), and the replay guard. */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sos_envelope.h"
#include "sos_mp.h"

/*  An envelope frame is [1, signed: bin, sig: bin(64) | bin(0)] where signed is the msgpack
    array [proto_version, type, sender: bin(32), receiver: bin(32), timestamp_ms, nonce:
    bin(16), body: bin] and sig is the sender's signature of the signed bytes in the envelope
    domain (SOS_DOMAIN_ENVELOPE). Signing the encoded bytes rather than the fields means a
    receiver verifies exactly what it parsed, with no second encoding to disagree with the
    first.

    Unsigned envelopes. Between two nodes the CURVE handshake has already proved who sent the
    bytes: the server's key is derived from the id the client dialled, and the client's key is
    checked against the envelope's sender by the node. A signature would prove it a second
    time, at an Ed25519ph signing and a verification per message: about a fifth of a node's
    CPU at rest and a sixth during a join. So a node on CURVE leaves sig empty, and an empty
    sig is accepted only where the caller says the connection authenticates the sender
    (SOS_ENV_TRANSPORT_AUTH); the caller must then check the sender against that connection
    before acting on anything. A signed envelope is verified wherever it comes from.

    The receiver binds an envelope to the one node it was sent to: captured on the way, it
    cannot be replayed to any other node, whose nonce cache has never seen it. The all-zero
    receiver means "whoever answers at this endpoint": a node's first SYNC to a genesis
    endpoint given without its id. The node answers such a SYNC and nothing more (see
    node/sos_gossip.c and PROTOCOL.md). */

#define S_SIGNED_FIELDS 7

static const uint8_t s_zero_id[SOS_NODEID_BYTES];

bool
sos_envelope_unbound(const sos_envelope_t *env)
{
    assert(env);
    return sodium_is_zero(env->receiver, SOS_NODEID_BYTES) != 0;
}

sos_rc
sos_frame_kind(const uint8_t *frame, size_t len, sos_frame_kind_t *kind)
{
    if (!frame || len == 0)
        return SOS_ERR_MALFORMED;
    size_t pos = 1;
    uint64_t count;
    uint8_t b = frame[0];
    if (b >= 0x90 && b <= 0x9f)
        count = b & 0x0f;
    else if (b == 0xdc && len >= 3) {
        count = ((uint64_t)frame[1] << 8) | frame[2];
        pos = 3;
    } else if (b == 0xdd && len >= 5) {
        count = ((uint64_t)frame[1] << 24) | ((uint64_t)frame[2] << 16) |
                ((uint64_t)frame[3] << 8) | frame[4];
        pos = 5;
    } else
        return SOS_ERR_MALFORMED;
    if (count == 0 || pos >= len)
        return SOS_ERR_MALFORMED;

    /* the kind is a small uint: a positive fixint, or a uint8 */
    uint64_t k;
    b = frame[pos];
    if (b <= 0x7f)
        k = b;
    else if (b == 0xcc && pos + 1 < len)
        k = frame[pos + 1];
    else
        return SOS_ERR_MALFORMED;
    if (k < SOS_FRAME_ENVELOPE || k > SOS_FRAME_REPLY)
        return SOS_ERR_MALFORMED;
    if (kind)
        *kind = (sos_frame_kind_t)k;
    return SOS_OK;
}

static sos_rc
s_encode(msgpack_sbuffer *out, sos_msg_type_t type, const void *body, size_t body_len,
         const sos_identity_t *id, const uint8_t *receiver, uint64_t now_ms,
         const uint8_t nonce[SOS_NONCE_BYTES], bool sign)
{
    assert(out && id && nonce);
    if (type < SOS_MSG_SYNC || type >= SOS_MSG_MAX || (!body && body_len > 0))
        return SOS_ERR_INVALID;
    if (body_len > SOS_FRAME_MAX)
        return SOS_ERR_TOO_LARGE;

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int err = 0;
    err |= msgpack_pack_array(&pk, S_SIGNED_FIELDS);
    err |= msgpack_pack_uint8(&pk, SOS_PROTO_VERSION);
    err |= msgpack_pack_uint8(&pk, (uint8_t)type);
    err |= msgpack_pack_bin_with_body(&pk, id->pk, SOS_NODEID_BYTES);
    err |= msgpack_pack_bin_with_body(&pk, receiver ? receiver : s_zero_id, SOS_NODEID_BYTES);
    err |= msgpack_pack_uint64(&pk, now_ms);
    err |= msgpack_pack_bin_with_body(&pk, nonce, SOS_NONCE_BYTES);
    err |= msgpack_pack_bin(&pk, body_len);
    if (body_len)
        err |= msgpack_pack_bin_body(&pk, body, body_len);

    sos_rc rc = SOS_OK;
    if (err || !sb.data) {
        rc = SOS_ERR_NOMEM;
        goto done;
    }
    /* fixarray, kind, bin32 header, signed, bin8 header, signature */
    if (1 + 1 + 5 + sb.size + 2 + SOS_SIG_BYTES > SOS_FRAME_MAX) {
        rc = SOS_ERR_TOO_LARGE;
        goto done;
    }
    uint8_t sig[SOS_SIG_BYTES];
    if (sign)
        sos_sign_domain(sig, SOS_DOMAIN_ENVELOPE, (const uint8_t *)sb.data, sb.size, id);

    size_t start = out->size;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    err |= msgpack_pack_array(&pk, 3);
    err |= msgpack_pack_uint8(&pk, SOS_FRAME_ENVELOPE);
    err |= msgpack_pack_bin_with_body(&pk, sb.data, sb.size);
    err |= msgpack_pack_bin_with_body(&pk, sig, sign ? SOS_SIG_BYTES : 0);
    if (err) {
        out->size = start;
        rc = SOS_ERR_NOMEM;
    }
done:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

sos_rc
sos_envelope_encode_nonce(msgpack_sbuffer *out, sos_msg_type_t type, const void *body,
                          size_t body_len, const sos_identity_t *id, const uint8_t *receiver,
                          uint64_t now_ms, const uint8_t nonce[SOS_NONCE_BYTES])
{
    return s_encode(out, type, body, body_len, id, receiver, now_ms, nonce, true);
}

sos_rc
sos_envelope_encode_unsigned_nonce(msgpack_sbuffer *out, sos_msg_type_t type, const void *body,
                                   size_t body_len, const sos_identity_t *id,
                                   const uint8_t *receiver, uint64_t now_ms,
                                   const uint8_t nonce[SOS_NONCE_BYTES])
{
    return s_encode(out, type, body, body_len, id, receiver, now_ms, nonce, false);
}

sos_rc
sos_envelope_encode(msgpack_sbuffer *out, sos_msg_type_t type, const void *body, size_t body_len,
                    const sos_identity_t *id, const uint8_t *receiver, uint64_t now_ms)
{
    uint8_t nonce[SOS_NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    return s_encode(out, type, body, body_len, id, receiver, now_ms, nonce, true);
}

sos_rc
sos_envelope_encode_unsigned(msgpack_sbuffer *out, sos_msg_type_t type, const void *body,
                             size_t body_len, const sos_identity_t *id, const uint8_t *receiver,
                             uint64_t now_ms)
{
    uint8_t nonce[SOS_NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    return s_encode(out, type, body, body_len, id, receiver, now_ms, nonce, false);
}

sos_rc
sos_envelope_decode(sos_envelope_t *env, const uint8_t *frame, size_t len, const uint8_t *me,
                    uint64_t now_ms, uint64_t window_ms, uint64_t *version_p)
{
    return sos_envelope_open(env, frame, len, me, now_ms, window_ms, 0, version_p);
}

sos_rc
sos_envelope_open(sos_envelope_t *env, const uint8_t *frame, size_t len, const uint8_t *me,
                  uint64_t now_ms, uint64_t window_ms, unsigned flags, uint64_t *version_p)
{
    assert(env);
    memset(env, 0, sizeof *env);
    if (version_p)
        *version_p = 0;
    if (!frame || len == 0)
        return SOS_ERR_MALFORMED;
    /* the size first: it costs nothing, and parsing is the costly step */
    if (len > SOS_FRAME_MAX)
        return SOS_ERR_TOO_LARGE;

    sos_mp_doc_t outer, inner;
    msgpack_unpacked_init(&inner.unpacked);
    inner.root = NULL;
    sos_rc rc = sos_mp_parse(&outer, frame, len);
    if (rc)
        goto done;

    const msgpack_object *items;
    uint32_t count;
    uint64_t kind, version, type, timestamp;
    const uint8_t *signed_ptr, *sig, *body;
    size_t signed_len, sig_len, body_len;
    rc = SOS_ERR_MALFORMED;
    if (!sos_mp_array(outer.root, &items, &count, 3) || count != 3 ||
        !sos_mp_uint(&items[0], &kind) || kind != SOS_FRAME_ENVELOPE ||
        !sos_mp_bin(&items[1], &signed_ptr, &signed_len, len) ||
        !sos_mp_bin(&items[2], &sig, &sig_len, SOS_SIG_BYTES) ||
        (sig_len != SOS_SIG_BYTES && sig_len != 0))
        goto done;

    rc = sos_mp_parse(&inner, signed_ptr, signed_len);
    if (rc)
        goto done;
    const msgpack_object *f;
    rc = SOS_ERR_MALFORMED;
    /* the version decides the layout, so it is read before the rest is judged */
    if (!sos_mp_array(inner.root, &f, &count, UINT32_MAX) || count == 0 ||
        !sos_mp_uint(&f[0], &version))
        goto done;
    if (version_p)
        *version_p = version;
    if (version != SOS_PROTO_VERSION) {
        rc = SOS_ERR_VERSION;
        goto done;
    }
    if (count != S_SIGNED_FIELDS || !sos_mp_uint(&f[1], &type) ||
        !sos_mp_bin_exact(&f[2], env->sender, SOS_NODEID_BYTES) ||
        !sos_mp_bin_exact(&f[3], env->receiver, SOS_NODEID_BYTES) ||
        !sos_mp_uint(&f[4], &timestamp) || !sos_mp_bin_exact(&f[5], env->nonce, SOS_NONCE_BYTES) ||
        !sos_mp_bin(&f[6], &body, &body_len, signed_len))
        goto done;
    if (type < SOS_MSG_SYNC || type >= SOS_MSG_MAX) {
        rc = SOS_ERR_VERSION;
        goto done;
    }
    if (me && sodium_memcmp(env->receiver, me, SOS_NODEID_BYTES) != 0 &&
        !sos_envelope_unbound(env)) {
        rc = SOS_ERR_RECEIVER;
        goto done;
    }
    if ((timestamp > now_ms && timestamp - now_ms > window_ms) ||
        (timestamp < now_ms && now_ms - timestamp > window_ms)) {
        rc = SOS_ERR_REPLAY;
        goto done;
    }
    if (sig_len == 0) {
        /*  Unsigned: only a connection that authenticates its sender stands in for it */
        if (!(flags & SOS_ENV_TRANSPORT_AUTH)) {
            rc = SOS_ERR_SIGNATURE;
            goto done;
        }
    } else {
        rc = sos_verify_domain(sig, SOS_DOMAIN_ENVELOPE, signed_ptr, signed_len, env->sender);
        if (rc)
            goto done;
        env->sig_checked = true;
    }

    /* msgpack-c points bins into its input, so body lies inside frame */
    env->type = (uint8_t)type;
    env->timestamp = timestamp;
    env->body = body;
    env->body_len = body_len;
    rc = SOS_OK;

done:
    sos_mp_doc_release(&inner);
    sos_mp_doc_release(&outer);
    if (rc)
        memset(env, 0, sizeof *env);
    return rc;
}

/*  The replay guard
    ----------------
    An envelope is accepted at most once. The guard keeps the nonces of accepted envelopes
    in a hash table (open addressing, linear probing, keyed SipHash so that a peer cannot
    choose nonces that collide) and, in insertion order, in a FIFO ring of capacity entries,
    each with the envelope's timestamp. Behind the ring, the nonces it had to forget while
    their timestamps were still in the window go to Bloom filters, one per period of the
    window's length (period = timestamp / window), of which three are live: a timestamp in
    [now - window, now + window] lies in one of three consecutive periods. Last, a floor:
    every envelope whose timestamp is not above it is refused.

    check (nonce n, timestamp t, now):
      1. Forget entries at the head of the ring whose timestamp fell out of the window.
      2. t outside [now - window, now + window]: refuse.
      3. t <= floor: refuse.   4. n in the table: refuse.
      5. n in the Bloom filter of t's period: refuse.
      6. If the ring is full, forget the oldest-inserted entry.
      7. Remember (n, t).
    Forgetting an entry in step 1 raises floor to at least its timestamp. Forgetting one in
    step 6 adds its nonce to the filter of its period; when that filter still holds an older
    period, whose timestamps all lie below the window by now, it is emptied first and floor
    rises to the end of that older period. (An entry whose timestamp is out of the window,
    or a filter that holds a later period because the clock stepped back, or a filter that
    cannot be allocated: floor rises to the entry's timestamp instead.)

    Why this is sound: say (n, t) was accepted once. At any later check it is either still
    remembered, and step 4 refuses it; or it was forgotten, and then floor >= t, since floor
    never goes down and step 3 refuses it; or its nonce is in the filter of t's period, and
    step 5 refuses it (a Bloom filter has no false negatives); a filter is only emptied
    after floor has risen past every timestamp of its period. This holds whatever the wall
    clock does; the window only keeps the table small, it is not what makes the guard sound.

    What it costs: steps 3 and 5 may refuse envelopes that are not replays. Floor does not
    while the clock goes forward: it only ever rises to timestamps that are, or are about to
    be, out of the window. In particular a peer that sends more than capacity envelopes, dated
    as far ahead as the window allows, cannot lift floor over the timestamps honest peers use
    now (with the floor of a plain FIFO it could: every envelope would be refused for the
    window). The filters refuse a fresh nonce with the probability of a false positive, which
    stays small while the nonces forgotten in one period are few against the filter's bits:
    a filter has 1024 bits per entry of capacity (64 Mbit, 8 MiB, for 65536 entries; memory
    is taken only when the ring overflows), and with 4 probes holds a false-positive rate
    under 1% up to about a tenth as many nonces as bits, more envelopes than a node can
    verify in a period. Memory stays bounded (capacity entries, a table of twice that many
    slots, three filters) whatever peers send. */

typedef struct {
    uint8_t nonce[SOS_NONCE_BYTES];
    uint64_t timestamp;
    uint64_t hash;
} s_entry_t;

#define S_BLOOM_SLOTS    3 /* periods that a window around now can touch */
#define S_BLOOM_PROBES   4 /* bits set per nonce */
#define S_BLOOM_BITS_MIN (1u << 12)
#define S_BLOOM_BITS_MAX (1u << 26)

typedef struct {
    uint64_t period; /* timestamp / window of the nonces it holds */
    uint8_t *bits;   /* NULL until the first nonce */
} s_bloom_t;

struct _sos_replay_t {
    size_t capacity;
    uint64_t window_ms;
    s_entry_t *ring; /* FIFO of remembered nonces, oldest at head */
    size_t head;
    size_t count;
    uint32_t *table; /* ring index + 1, 0 = empty slot */
    size_t mask;     /* table size - 1 (a power of two >= 2 * capacity) */
    uint64_t floor;
    uint8_t key[crypto_shorthash_KEYBYTES];
    s_bloom_t bloom[S_BLOOM_SLOTS];
    uint64_t bloom_bits; /* bits of each filter, a power of two */
};

#define S_REPLAY_CAPACITY_MAX (1u << 28) /* ring indices fit uint32 with room to spare */

sos_replay_t *
sos_replay_new(size_t capacity, uint64_t window_ms)
{
    if (capacity == 0 || capacity > S_REPLAY_CAPACITY_MAX || window_ms == 0)
        return NULL;
    sos_replay_t *self = (sos_replay_t *)calloc(1, sizeof *self);
    if (!self)
        return NULL;
    size_t slots = 2;
    while (slots < 2 * capacity)
        slots *= 2;
    self->capacity = capacity;
    self->window_ms = window_ms;
    self->mask = slots - 1;
    self->ring = (s_entry_t *)calloc(capacity, sizeof(s_entry_t));
    self->table = (uint32_t *)calloc(slots, sizeof(uint32_t));
    if (!self->ring || !self->table) {
        sos_replay_destroy(&self);
        return NULL;
    }
    self->bloom_bits = S_BLOOM_BITS_MIN;
    while (self->bloom_bits < S_BLOOM_BITS_MAX && self->bloom_bits < (uint64_t)capacity * 1024)
        self->bloom_bits *= 2;
    crypto_shorthash_keygen(self->key);
    return self;
}

void
sos_replay_destroy(sos_replay_t **self_p)
{
    assert(self_p);
    sos_replay_t *self = *self_p;
    if (!self)
        return;
    free(self->ring);
    free(self->table);
    for (int i = 0; i < S_BLOOM_SLOTS; i++)
        free(self->bloom[i].bits);
    free(self);
    *self_p = NULL;
}

static uint64_t
s_hash(const sos_replay_t *self, const uint8_t nonce[SOS_NONCE_BYTES])
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, nonce, SOS_NONCE_BYTES, self->key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

/*  The slot holding nonce, or the empty slot where it would go; *found says which. */
static size_t
s_find(const sos_replay_t *self, const uint8_t nonce[SOS_NONCE_BYTES], uint64_t hash, bool *found)
{
    size_t slot = (size_t)hash & self->mask;
    while (self->table[slot]) {
        const s_entry_t *e = &self->ring[self->table[slot] - 1];
        if (e->hash == hash && memcmp(e->nonce, nonce, SOS_NONCE_BYTES) == 0) {
            *found = true;
            return slot;
        }
        slot = (slot + 1) & self->mask;
    }
    *found = false;
    return slot;
}

static void
s_raise_floor(sos_replay_t *self, uint64_t timestamp)
{
    if (timestamp > self->floor)
        self->floor = timestamp;
}

/*  Bit i of the Bloom probes of a nonce's hash (double hashing over its two halves). */
static uint64_t
s_bloom_bit(const sos_replay_t *self, uint64_t hash, unsigned i)
{
    uint64_t h1 = hash & 0xffffffffu, h2 = (hash >> 32) | 1;
    return (h1 + i * h2) & (self->bloom_bits - 1);
}

static bool
s_bloom_has(const sos_replay_t *self, uint64_t timestamp, uint64_t hash)
{
    uint64_t period = timestamp / self->window_ms;
    const s_bloom_t *b = &self->bloom[period % S_BLOOM_SLOTS];
    if (!b->bits || b->period != period)
        return false;
    for (unsigned i = 0; i < S_BLOOM_PROBES; i++) {
        uint64_t bit = s_bloom_bit(self, hash, i);
        if (!(b->bits[bit >> 3] & (1u << (bit & 7))))
            return false;
    }
    return true;
}

/*  Keep a nonce that the ring has to forget in the filter of its timestamp's period, or,
    where that cannot be done, under the floor. */
static void
s_bloom_add(sos_replay_t *self, const s_entry_t *e, uint64_t now_ms)
{
    uint64_t w = self->window_ms;
    if ((e->timestamp < now_ms && now_ms - e->timestamp > w) ||
        (e->timestamp > now_ms && e->timestamp - now_ms > w)) {
        s_raise_floor(self, e->timestamp); /* out of the window: the floor costs nothing */
        return;
    }
    uint64_t period = e->timestamp / w;
    s_bloom_t *b = &self->bloom[period % S_BLOOM_SLOTS];
    if (b->bits && b->period != period) {
        if (b->period > period) {
            s_raise_floor(self, e->timestamp); /* the clock stepped back: keep the later one */
            return;
        }
        /*  An older period: its timestamps are all below the window now. */
        s_raise_floor(self, (b->period + 1) * w - 1);
        free(b->bits);
        b->bits = NULL;
    }
    if (!b->bits) {
        b->bits = (uint8_t *)calloc(self->bloom_bits / 8, 1);
        if (!b->bits) {
            s_raise_floor(self, e->timestamp);
            return;
        }
        b->period = period;
    }
    for (unsigned i = 0; i < S_BLOOM_PROBES; i++) {
        uint64_t bit = s_bloom_bit(self, e->hash, i);
        b->bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
}

/*  Forget the oldest-inserted entry: empty its slot, then shift back the entries after it in
    the probe run that would no longer be reachable (deletion without tombstones). Its nonce
    stays refused: under the floor (expired), or in a Bloom filter (evicted while young). */
static void
s_evict_head(sos_replay_t *self, bool expired, uint64_t now_ms)
{
    assert(self->count > 0);
    s_entry_t *e = &self->ring[self->head];
    bool found;
    size_t hole = s_find(self, e->nonce, e->hash, &found);
    assert(found);
    self->table[hole] = 0;
    size_t j = hole;
    for (;;) {
        j = (j + 1) & self->mask;
        if (!self->table[j])
            break;
        size_t home = (size_t)self->ring[self->table[j] - 1].hash & self->mask;
        /* the entry at j may move to hole unless its home lies cyclically in (hole, j] */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            self->table[hole] = self->table[j];
            self->table[j] = 0;
            hole = j;
        }
    }
    if (expired)
        s_raise_floor(self, e->timestamp);
    else
        s_bloom_add(self, e, now_ms);
    self->head = (self->head + 1) % self->capacity;
    self->count--;
}

sos_rc
sos_replay_check(sos_replay_t *self, const uint8_t nonce[SOS_NONCE_BYTES], uint64_t timestamp,
                 uint64_t now_ms)
{
    assert(self && nonce);
    uint64_t w = self->window_ms;
    while (self->count > 0 && self->ring[self->head].timestamp < now_ms &&
           now_ms - self->ring[self->head].timestamp > w)
        s_evict_head(self, true, now_ms);
    if ((timestamp > now_ms && timestamp - now_ms > w) ||
        (timestamp < now_ms && now_ms - timestamp > w))
        return SOS_ERR_REPLAY;
    if (timestamp <= self->floor)
        return SOS_ERR_REPLAY;

    uint64_t hash = s_hash(self, nonce);
    bool found;
    s_find(self, nonce, hash, &found);
    if (found || s_bloom_has(self, timestamp, hash))
        return SOS_ERR_REPLAY;
    if (self->count == self->capacity)
        s_evict_head(self, false, now_ms);

    size_t idx = (self->head + self->count) % self->capacity;
    s_entry_t *e = &self->ring[idx];
    memcpy(e->nonce, nonce, SOS_NONCE_BYTES);
    e->timestamp = timestamp;
    e->hash = hash;
    size_t slot = s_find(self, nonce, hash, &found); /* again: eviction may move slots */
    self->table[slot] = (uint32_t)idx + 1;
    self->count++;
    return SOS_OK;
}

size_t
sos_replay_size(sos_replay_t *self)
{
    assert(self);
    return self->count;
}
