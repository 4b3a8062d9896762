/*  fuzz_envelope.c: libFuzzer target for protocol/sos_envelope: frame kinds, envelope decoding
    with a fixed clock, envelopes the harness signs (or leaves unsigned) around fuzzer bytes,
    and the replay guard. */
#include <msgpack.h>

#include "fuzz_common.h"
#include "sos_envelope.h"
#include "sos_gmsg.h"

#define S_GUARD_WINDOW_MS 1000
#define S_GUARD_OPS_MAX   4096

static void
s_touch(const void *p, size_t len)
{
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum ^= ((const uint8_t *)p)[i];
    (void)sum;
}

/*  The bytes as a frame from the network, handled as the node does: kind, envelope, replay
    guard, then the gossip body. */
static void
s_raw_frame(const uint8_t *data, size_t size)
{
    sos_frame_kind_t kind;
    sos_rc krc = sos_frame_kind(data, size, &kind);
    sos_envelope_t env;
    /* as fuzz identity 1 would: the corpus binds its envelopes to it, or to nobody */
    sos_rc rc = sos_envelope_decode(&env, data, size, fuzz_identity(1)->pk, FUZZ_NOW_MS,
                                    SOS_REPLAY_WINDOW_MS, NULL);
    /*  On a connection that proves the sender: an unsigned frame may pass too, never a
        signed one that does not verify */
    sos_envelope_t env2;
    sos_rc rc2 = sos_envelope_open(&env2, data, size, fuzz_identity(1)->pk, FUZZ_NOW_MS,
                                   SOS_REPLAY_WINDOW_MS, SOS_ENV_TRANSPORT_AUTH, NULL);
    FUZZ_CHECK(rc != SOS_OK || (rc2 == SOS_OK && env2.sig_checked));
    FUZZ_CHECK(rc2 != SOS_OK || env2.sig_checked || rc == SOS_ERR_SIGNATURE);
    if (rc == SOS_OK)
        FUZZ_CHECK(env.sig_checked);
    if (rc) {
        FUZZ_CHECK(env.body == NULL && env.body_len == 0);
        return;
    }
    /*  the node's dispatch never sends a frame of this kind elsewhere (it is stricter than
        the decoder: it wants the kind as a fixint or uint8, as every sender packs it) */
    FUZZ_CHECK(krc != SOS_OK || kind == SOS_FRAME_ENVELOPE);
    FUZZ_CHECK(env.type >= SOS_MSG_SYNC && env.type < SOS_MSG_MAX);
    FUZZ_CHECK(sos_envelope_unbound(&env) ||
               memcmp(env.receiver, fuzz_identity(1)->pk, SOS_NODEID_BYTES) == 0);
    FUZZ_CHECK(env.body_len == 0 || (env.body >= data && env.body_len <= size &&
                                     env.body - data <= (ptrdiff_t)(size - env.body_len)));
    s_touch(env.body, env.body_len);

    sos_replay_t *guard = sos_replay_new(4, SOS_REPLAY_WINDOW_MS);
    FUZZ_CHECK(guard);
    FUZZ_CHECK(sos_replay_check(guard, env.nonce, env.timestamp, FUZZ_NOW_MS) == SOS_OK);
    FUZZ_CHECK(sos_replay_check(guard, env.nonce, env.timestamp, FUZZ_NOW_MS) == SOS_ERR_REPLAY);
    sos_replay_destroy(&guard);

    sos_gmsg_t msg;
    (void)sos_gmsg_decode(&msg, env.body, env.body_len);
    sos_gmsg_release(&msg);
}

/*  The bytes as the fields of an envelope that the harness signs: decoding gives the fields
    back, or says why not; flipping any one bit of the frame makes it refused. */
static void
s_signed_frame(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    uint8_t type = fuzz_u8(&in) % 8; /* 0 and 7 are not message types */
    int32_t delta = (int16_t)((fuzz_u8(&in) << 8) | fuzz_u8(&in));
    uint64_t timestamp = FUZZ_NOW_MS + (int64_t)delta * 16;
    uint32_t flip = (uint32_t)fuzz_u64(&in);
    uint8_t bind = fuzz_u8(&in) % 3; /* to nobody, to the decoder, to another node */
    bool sign = fuzz_u8(&in) & 1;    /* else unsigned, as on CURVE */
    const uint8_t *receiver = bind == 0 ? NULL : fuzz_identity(bind == 1 ? 1 : 0)->pk;
    uint8_t nonce[SOS_NONCE_BYTES] = {0};
    for (size_t i = 0; i < SOS_NONCE_BYTES; i++)
        nonce[i] = fuzz_u8(&in);
    const sos_identity_t *id = fuzz_identity(0);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    sos_rc rc = sign ? sos_envelope_encode_nonce(&sb, (sos_msg_type_t)type, in.p, in.n, id,
                                                 receiver, timestamp, nonce)
                     : sos_envelope_encode_unsigned_nonce(&sb, (sos_msg_type_t)type, in.p, in.n, id,
                                                          receiver, timestamp, nonce);
    if (type < SOS_MSG_SYNC || type >= SOS_MSG_MAX) {
        FUZZ_CHECK(rc == SOS_ERR_INVALID && sb.size == 0);
        goto done;
    }
    FUZZ_CHECK(rc == SOS_OK);
    sos_envelope_t env;
    unsigned flags = sign ? 0 : SOS_ENV_TRANSPORT_AUTH;
    rc = sos_envelope_open(&env, (const uint8_t *)sb.data, sb.size, fuzz_identity(1)->pk,
                           FUZZ_NOW_MS, SOS_REPLAY_WINDOW_MS, flags, NULL);
    if (bind == 2) {
        FUZZ_CHECK(rc == SOS_ERR_RECEIVER);
        goto done;
    }
    uint64_t off = delta < 0 ? (uint64_t)(-(int64_t)delta) * 16 : (uint64_t)delta * 16;
    if (off > SOS_REPLAY_WINDOW_MS) {
        FUZZ_CHECK(rc == SOS_ERR_REPLAY);
        goto done;
    }
    FUZZ_CHECK(rc == SOS_OK && env.sig_checked == sign);
    if (!sign)
        FUZZ_CHECK(sos_envelope_decode(&env, (const uint8_t *)sb.data, sb.size,
                                       fuzz_identity(1)->pk, FUZZ_NOW_MS, SOS_REPLAY_WINDOW_MS,
                                       NULL) == SOS_ERR_SIGNATURE);
    rc = sos_envelope_open(&env, (const uint8_t *)sb.data, sb.size, fuzz_identity(1)->pk,
                           FUZZ_NOW_MS, SOS_REPLAY_WINDOW_MS, flags, NULL);
    FUZZ_CHECK(rc == SOS_OK);
    FUZZ_CHECK(env.type == type && env.timestamp == timestamp);
    FUZZ_CHECK(memcmp(env.sender, id->pk, SOS_NODEID_BYTES) == 0);
    FUZZ_CHECK(memcmp(env.nonce, nonce, SOS_NONCE_BYTES) == 0);
    FUZZ_CHECK(sos_envelope_unbound(&env) == (bind == 0));
    FUZZ_CHECK(env.body_len == in.n && (in.n == 0 || memcmp(env.body, in.p, in.n) == 0));

    /*  A flipped bit breaks a signed frame, whatever the flags; an unsigned one has no
        signature to break, and only a flip into its framing is sure to be caught */
    if (sign) {
        size_t bit = flip % (sb.size * 8);
        sb.data[bit / 8] ^= (char)(1u << (bit % 8));
        rc = sos_envelope_open(&env, (const uint8_t *)sb.data, sb.size, fuzz_identity(1)->pk,
                               FUZZ_NOW_MS, SOS_REPLAY_WINDOW_MS, SOS_ENV_TRANSPORT_AUTH, NULL);
        FUZZ_CHECK(rc != SOS_OK);
    }
done:
    msgpack_sbuffer_destroy(&sb);
}

/*  The bytes as a sequence of (nonce, clock step) given to a small replay guard, against a
    model: an envelope once accepted is never accepted again, whatever the clock does, and the
    guard never holds more than its capacity. An envelope's nonce and timestamp travel
    together under its signature, so here the nonce decides the timestamp. */
static void
s_guard(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    size_t capacity = 1 + fuzz_u8(&in) % 8;
    sos_replay_t *guard = sos_replay_new(capacity, S_GUARD_WINDOW_MS);
    FUZZ_CHECK(guard);
    bool accepted[256] = {false};
    uint64_t now = FUZZ_NOW_MS + S_GUARD_WINDOW_MS;
    for (int op = 0; op < S_GUARD_OPS_MAX && in.n > 0; op++) {
        uint8_t which = fuzz_u8(&in);
        int8_t clock_step = (int8_t)fuzz_u8(&in);
        now = (uint64_t)((int64_t)now + clock_step * 8);
        uint64_t ts = FUZZ_NOW_MS + which * 8;
        uint8_t nonce[SOS_NONCE_BYTES] = {which, 0x5a};
        sos_rc rc = sos_replay_check(guard, nonce, ts, now);
        FUZZ_CHECK(rc == SOS_OK || rc == SOS_ERR_REPLAY);
        if (accepted[which])
            FUZZ_CHECK(rc == SOS_ERR_REPLAY);
        if (rc == SOS_OK) {
            FUZZ_CHECK(ts + S_GUARD_WINDOW_MS >= now && ts <= now + S_GUARD_WINDOW_MS);
            accepted[which] = true;
        }
        FUZZ_CHECK(sos_replay_size(guard) <= capacity);
    }
    sos_replay_destroy(&guard);
    FUZZ_CHECK(guard == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)fuzz_identity(0);
    s_raw_frame(data, size);
    s_signed_frame(data, size);
    s_guard(data, size);
    return 0;
}
