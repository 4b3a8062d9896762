/*  test_envelope.c: unit tests of protocol/sos_envelope: frame kinds, the signed envelope
    (round trip and every rejection), unsigned envelopes, and the replay guard (window, nonces,
   floor). */
#define _GNU_SOURCE /* memmem */
#include <msgpack.h>

#include "proto_test.h"
#include "sos_envelope.h"
#include "sos_mp.h"

#define NOW    1700000000000ULL
#define WINDOW SOS_REPLAY_WINDOW_MS

/*  Hand-built envelopes, for what sos_envelope_encode refuses to write. */
typedef enum {
    E_NONE,
    E_VERSION, /* proto_version given by arg */
    E_TYPE,    /* type given by arg */
    E_SENDER_31,
    E_NONCE_15,
    E_TS_STR,
    E_BODY_STR,
    E_FIELDS_SHORT, /* no body */
    E_FIELDS_LONG,  /* a nil after the body */
    E_RECEIVER_31,
    E_DOMAIN_RECORD, /* signed in the record domain */
    E_DOMAIN_NONE,   /* signed without any domain prefix */
    E_SIGNED_MAP,
    E_SIGNED_STR, /* the signed bytes as a str */
    E_SIG_63,
    E_SIG_65,
    E_KIND_2, /* outer kind 2 with the envelope layout */
    E_OUTER_4,
    E_OUTER_2,
    E_SENDER_OTHER /* sender field names another key than the signer */
} emut_t;

static uint8_t s_receiver[SOS_NODEID_BYTES]; /* the receiver s_build writes */

static size_t
s_build(uint8_t *out, size_t cap, const sos_identity_t *id, emut_t m, uint64_t arg, uint64_t ts,
        const void *body, size_t body_len, const sos_identity_t *other)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint8_t nonce[16] = {1, 2, 3};
    if (m == E_SIGNED_MAP)
        msgpack_pack_map(&pk, 0);
    else
        msgpack_pack_array(&pk, m == E_FIELDS_SHORT ? 6 : m == E_FIELDS_LONG ? 8 : 7);
    if (m != E_SIGNED_MAP) {
        msgpack_pack_uint64(&pk, m == E_VERSION ? arg : SOS_PROTO_VERSION);
        msgpack_pack_uint64(&pk, m == E_TYPE ? arg : SOS_MSG_SYNC);
        sos_mp_pack_bin(&pk, m == E_SENDER_OTHER ? other->pk : id->pk, m == E_SENDER_31 ? 31 : 32);
        sos_mp_pack_bin(&pk, s_receiver, m == E_RECEIVER_31 ? 31 : 32);
        if (m == E_TS_STR)
            sos_mp_pack_str(&pk, "1700000000000");
        else
            msgpack_pack_uint64(&pk, ts);
        sos_mp_pack_bin(&pk, nonce, m == E_NONCE_15 ? 15 : 16);
        if (m == E_BODY_STR)
            sos_mp_pack_strn(&pk, (const char *)body, body_len);
        else if (m != E_FIELDS_SHORT)
            sos_mp_pack_bin(&pk, body, body_len);
        if (m == E_FIELDS_LONG)
            msgpack_pack_nil(&pk);
    }
    uint8_t sig[SOS_SIG_BYTES + 1] = {0};
    if (m == E_DOMAIN_NONE)
        sos_sign(sig, (const uint8_t *)sb.data, sb.size, id);
    else
        sos_sign_domain(sig, m == E_DOMAIN_RECORD ? SOS_DOMAIN_RECORD : SOS_DOMAIN_ENVELOPE,
                        (const uint8_t *)sb.data, sb.size, id);
    msgpack_sbuffer o;
    msgpack_sbuffer_init(&o);
    msgpack_packer_init(&pk, &o, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, m == E_OUTER_4 ? 4 : m == E_OUTER_2 ? 2 : 3);
    msgpack_pack_uint8(&pk, m == E_KIND_2 ? 2 : 1);
    if (m == E_SIGNED_STR)
        sos_mp_pack_strn(&pk, sb.data, sb.size);
    else
        sos_mp_pack_bin(&pk, sb.data, sb.size);
    if (m != E_OUTER_2)
        sos_mp_pack_bin(&pk, sig, m == E_SIG_63 ? 63 : m == E_SIG_65 ? 65 : 64);
    if (m == E_OUTER_4)
        msgpack_pack_nil(&pk);
    size_t len = o.size <= cap ? o.size : 0;
    if (len)
        memcpy(out, o.data, len);
    msgpack_sbuffer_destroy(&o);
    msgpack_sbuffer_destroy(&sb);
    return len;
}

static void
s_test_frame_kind(const sos_identity_t *id)
{
    SECTION("frame kinds: envelope, request, reply; anything else is malformed");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_SYNC, "x", 1, id, NULL, NOW), SOS_OK);
    sos_frame_kind_t kind = 0;
    CHECK_RC(sos_frame_kind((const uint8_t *)sb.data, sb.size, &kind), SOS_OK);
    CHECK(kind == SOS_FRAME_ENVELOPE);
    msgpack_sbuffer_destroy(&sb);

    const uint8_t request[] = {0x95, 0x02, 0x01, 0xa1, 's', 0x80, 0x00};
    const uint8_t reply_u8[] = {0x94, 0xcc, 0x03, 0x01, 0xa2, 'o', 'k', 0x80};
    const uint8_t arr16[] = {0xdc, 0x00, 0x01, 0x01};
    const uint8_t arr32[] = {0xdd, 0x00, 0x00, 0x00, 0x01, 0x03};
    CHECK_RC(sos_frame_kind(request, sizeof request, &kind), SOS_OK);
    CHECK(kind == SOS_FRAME_REQUEST);
    CHECK_RC(sos_frame_kind(reply_u8, sizeof reply_u8, &kind), SOS_OK);
    CHECK(kind == SOS_FRAME_REPLY);
    CHECK_RC(sos_frame_kind(arr16, sizeof arr16, &kind), SOS_OK);
    CHECK(kind == SOS_FRAME_ENVELOPE);
    CHECK_RC(sos_frame_kind(arr32, sizeof arr32, &kind), SOS_OK);
    CHECK(kind == SOS_FRAME_REPLY);

    const uint8_t kind0[] = {0x91, 0x00};
    const uint8_t kind4[] = {0x91, 0x04};
    const uint8_t kind_neg[] = {0x91, 0xff};
    const uint8_t kind_str[] = {0x91, 0xa1, '1'};
    const uint8_t empty[] = {0x90};
    const uint8_t map[] = {0x81, 0x01, 0x01};
    const uint8_t scalar[] = {0x01};
    const uint8_t cut16[] = {0xdc, 0x00};
    const uint8_t cut32[] = {0xdd, 0x00, 0x00, 0x00, 0x01};
    const uint8_t cut_u8[] = {0x91, 0xcc};
    const uint8_t big_u8[] = {0x91, 0xcc, 0xff};
    const uint8_t u16[] = {0x91, 0xcd, 0x00, 0x01}; /* kinds are small: fixint or uint8 */
    const uint8_t *bad[] = {kind0,  kind4, kind_neg, kind_str, empty,  map,
                            scalar, cut16, cut32,    cut_u8,   big_u8, u16};
    const size_t lens[] = {sizeof kind0, sizeof kind4,  sizeof kind_neg, sizeof kind_str,
                           sizeof empty, sizeof map,    sizeof scalar,   sizeof cut16,
                           sizeof cut32, sizeof cut_u8, sizeof big_u8,   sizeof u16};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_RC(sos_frame_kind(bad[i], lens[i], &kind), SOS_ERR_MALFORMED);
    CHECK_RC(sos_frame_kind(NULL, 0, &kind), SOS_ERR_MALFORMED);
}

static void
s_test_round_trip(const sos_identity_t *id)
{
    SECTION("encode and decode: fields, body borrowed from the frame, empty body");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    const char body[] = "gossip body bytes";
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_RUMOR, body, sizeof body, id, NULL, NOW), SOS_OK);
    sos_envelope_t env;
    const uint8_t *frame = (const uint8_t *)sb.data;
    CHECK_RC(sos_envelope_decode(&env, frame, sb.size, NULL, NOW, WINDOW, NULL), SOS_OK);
    CHECK(env.type == SOS_MSG_RUMOR && env.timestamp == NOW);
    CHECK(memcmp(env.sender, id->pk, 32) == 0);
    CHECK(env.body_len == sizeof body && memcmp(env.body, body, sizeof body) == 0);
    CHECK(env.body >= frame && env.body + env.body_len <= frame + sb.size);

    SECTION("two encodings differ in their nonce");
    size_t first = sb.size;
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_RUMOR, body, sizeof body, id, NULL, NOW), SOS_OK);
    CHECK(sb.size == 2 * first); /* appended */
    sos_envelope_t env2;
    CHECK_RC(sos_envelope_decode(&env2, (const uint8_t *)sb.data + first, first, NULL, NOW, WINDOW,
                                 NULL),
             SOS_OK);
    CHECK(memcmp(env.nonce, env2.nonce, SOS_NONCE_BYTES) != 0);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    for (int t = SOS_MSG_SYNC; t < SOS_MSG_MAX; t++) {
        msgpack_sbuffer_clear(&sb);
        CHECK_RC(sos_envelope_encode(&sb, (sos_msg_type_t)t, NULL, 0, id, NULL, NOW), SOS_OK);
        CHECK_RC(
            sos_envelope_decode(&env, (const uint8_t *)sb.data, sb.size, NULL, NOW, WINDOW, NULL),
            SOS_OK);
        CHECK(env.type == t && env.body_len == 0);
    }

    SECTION("encode refuses an unknown type, a NULL body, and a body too large to send");
    msgpack_sbuffer_clear(&sb);
    CHECK_RC(sos_envelope_encode(&sb, (sos_msg_type_t)0, "x", 1, id, NULL, NOW), SOS_ERR_INVALID);
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_MAX, "x", 1, id, NULL, NOW), SOS_ERR_INVALID);
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_SYNC, NULL, 1, id, NULL, NOW), SOS_ERR_INVALID);
    size_t max_body = SOS_FRAME_MAX - 200;
    uint8_t *big = (uint8_t *)calloc(1, SOS_FRAME_MAX + 1);
    CHECK(big);
    if (big) {
        CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_DELTA, big, SOS_FRAME_MAX + 1, id, NULL, NOW),
                 SOS_ERR_TOO_LARGE);
        CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_DELTA, big, SOS_FRAME_MAX - 10, id, NULL, NOW),
                 SOS_ERR_TOO_LARGE);
        CHECK(sb.size == 0); /* nothing appended on error */
        CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_DELTA, big, max_body, id, NULL, NOW), SOS_OK);
        CHECK(sb.size <= SOS_FRAME_MAX);
        CHECK_RC(
            sos_envelope_decode(&env, (const uint8_t *)sb.data, sb.size, NULL, NOW, WINDOW, NULL),
            SOS_OK);
        CHECK(env.body_len == max_body);

        SECTION("a frame longer than SOS_FRAME_MAX is too large before it is parsed");
        memset(big, 0xc1, SOS_FRAME_MAX + 1);
        CHECK_RC(sos_envelope_decode(&env, big, SOS_FRAME_MAX + 1, NULL, NOW, WINDOW, NULL),
                 SOS_ERR_TOO_LARGE);
        free(big);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void
s_test_rejections(const sos_identity_t *id, const sos_identity_t *other)
{
    SECTION("a flipped signature, a changed body, another sender: bad signature");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    const char body[] = "payload";
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_DELTA, body, sizeof body, id, NULL, NOW), SOS_OK);
    uint8_t frame[1024];
    size_t len = sb.size;
    memcpy(frame, sb.data, len);
    sos_envelope_t env;
    frame[len - 1] ^= 0x80;
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_ERR_SIGNATURE);
    CHECK(env.body == NULL && env.type == 0);
    memcpy(frame, sb.data, len);
    size_t at = 0;
    while (at + sizeof body <= len && memcmp(frame + at, body, sizeof body) != 0)
        at++;
    CHECK(at + sizeof body <= len);
    frame[at] ^= 1;
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_ERR_SIGNATURE);
    len = s_build(frame, sizeof frame, id, E_SENDER_OTHER, 0, NOW, body, sizeof body, other);
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_ERR_SIGNATURE);
    len = s_build(frame, sizeof frame, id, E_NONE, 0, NOW, body, sizeof body, other);
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_OK);

    SECTION("every single-bit change of an envelope is refused");
    size_t good_len = sb.size;
    for (size_t i = 0; i < good_len; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(frame, sb.data, good_len);
            frame[i] ^= (uint8_t)(1u << bit);
            CHECK(sos_envelope_decode(&env, frame, good_len, NULL, NOW, WINDOW, NULL) != SOS_OK);
        }

    SECTION("truncation at every byte offset; a trailing byte");
    for (size_t l = 0; l < good_len; l++)
        CHECK_RC(sos_envelope_decode(&env, (const uint8_t *)sb.data, l, NULL, NOW, WINDOW, NULL),
                 SOS_ERR_MALFORMED);
    memcpy(frame, sb.data, good_len);
    frame[good_len] = 0xc0;
    CHECK_RC(sos_envelope_decode(&env, frame, good_len + 1, NULL, NOW, WINDOW, NULL),
             SOS_ERR_MALFORMED);

    SECTION("timestamps: the window's edges pass, one millisecond beyond is a replay");
    CHECK_RC(sos_envelope_decode(&env, (const uint8_t *)sb.data, good_len, NULL, NOW + WINDOW,
                                 WINDOW, NULL),
             SOS_OK);
    CHECK_RC(sos_envelope_decode(&env, (const uint8_t *)sb.data, good_len, NULL, NOW - WINDOW,
                                 WINDOW, NULL),
             SOS_OK);
    CHECK_RC(sos_envelope_decode(&env, (const uint8_t *)sb.data, good_len, NULL, NOW + WINDOW + 1,
                                 WINDOW, NULL),
             SOS_ERR_REPLAY);
    CHECK_RC(sos_envelope_decode(&env, (const uint8_t *)sb.data, good_len, NULL, NOW - WINDOW - 1,
                                 WINDOW, NULL),
             SOS_ERR_REPLAY);
    len = s_build(frame, sizeof frame, id, E_NONE, 0, 0, body, sizeof body, other);
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_ERR_REPLAY);
    len = s_build(frame, sizeof frame, id, E_NONE, 0, UINT64_MAX, body, sizeof body, other);
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_ERR_REPLAY);
    msgpack_sbuffer_destroy(&sb);

    SECTION("unknown protocol versions and message types, correctly signed");
    const uint64_t versions[] = {0, 1, 3, 255, UINT64_MAX};
    for (size_t i = 0; i < 5; i++) {
        len =
            s_build(frame, sizeof frame, id, E_VERSION, versions[i], NOW, body, sizeof body, other);
        uint64_t claimed = 7;
        CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, &claimed),
                 SOS_ERR_VERSION);
        CHECK(claimed == versions[i]); /* so that the node can name it in its log */
    }
    /* a version 1 frame, in version 1's layout and signature */
    msgpack_sbuffer v1;
    msgpack_sbuffer_init(&v1);
    msgpack_packer v1pk;
    msgpack_packer_init(&v1pk, &v1, msgpack_sbuffer_write);
    msgpack_pack_array(&v1pk, 6);
    msgpack_pack_uint8(&v1pk, 1);
    msgpack_pack_uint8(&v1pk, SOS_MSG_SYNC);
    sos_mp_pack_bin(&v1pk, id->pk, 32);
    msgpack_pack_uint64(&v1pk, NOW);
    const uint8_t zero16[16] = {0};
    sos_mp_pack_bin(&v1pk, zero16, 16);
    sos_mp_pack_bin(&v1pk, body, sizeof body);
    uint8_t v1sig[SOS_SIG_BYTES];
    sos_sign(v1sig, (const uint8_t *)v1.data, v1.size, id);
    msgpack_sbuffer v1f;
    msgpack_sbuffer_init(&v1f);
    msgpack_packer_init(&v1pk, &v1f, msgpack_sbuffer_write);
    msgpack_pack_array(&v1pk, 3);
    msgpack_pack_uint8(&v1pk, 1);
    sos_mp_pack_bin(&v1pk, v1.data, v1.size);
    sos_mp_pack_bin(&v1pk, v1sig, sizeof v1sig);
    uint64_t v1claimed = 0;
    CHECK_RC(sos_envelope_decode(&env, (const uint8_t *)v1f.data, v1f.size, id->pk, NOW, WINDOW,
                                 &v1claimed),
             SOS_ERR_VERSION);
    CHECK(v1claimed == 1);
    msgpack_sbuffer_destroy(&v1);
    msgpack_sbuffer_destroy(&v1f);
    const uint64_t types[] = {0, SOS_MSG_MAX, 200, UINT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        len = s_build(frame, sizeof frame, id, E_TYPE, types[i], NOW, body, sizeof body, other);
        CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_ERR_VERSION);
    }
    /* a future version may have another layout: the version is judged first */
    msgpack_sbuffer fut;
    msgpack_sbuffer_init(&fut);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fut, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    const uint8_t v3[] = {0x92, 0x03, 0xa1, 'x'};
    sos_mp_pack_bin(&pk, v3, sizeof v3);
    uint8_t zero_sig[64] = {0};
    sos_mp_pack_bin(&pk, zero_sig, 64);
    CHECK_RC(
        sos_envelope_decode(&env, (const uint8_t *)fut.data, fut.size, NULL, NOW, WINDOW, NULL),
        SOS_ERR_VERSION);
    msgpack_sbuffer_destroy(&fut);

    SECTION("wrong types and element counts, correctly signed");
    const emut_t malformed[] = {E_SENDER_31,    E_NONCE_15,    E_TS_STR,     E_BODY_STR,
                                E_FIELDS_SHORT, E_FIELDS_LONG, E_SIGNED_MAP, E_SIGNED_STR,
                                E_SIG_63,       E_SIG_65,      E_KIND_2,     E_OUTER_4,
                                E_OUTER_2,      E_RECEIVER_31};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        len = s_build(frame, sizeof frame, id, malformed[i], 0, NOW, body, sizeof body, other);
        sos_rc rc = sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL);
        if (rc != SOS_ERR_MALFORMED) {
            fprintf(stderr, "mutation %d: %s\n", (int)malformed[i], sos_strerror(rc));
            CHECK(false);
        }
    }
    const uint8_t not_array[] = {0x81, 0x01, 0x01};
    CHECK_RC(sos_envelope_decode(&env, not_array, sizeof not_array, NULL, NOW, WINDOW, NULL),
             SOS_ERR_MALFORMED);
    /* a signed part that is not msgpack at all */
    const uint8_t junk_signed[] = {0x93, 0x01, 0xc4, 0x01, 0xc1, 0xc4, 0x00};
    CHECK_RC(sos_envelope_decode(&env, junk_signed, sizeof junk_signed, NULL, NOW, WINDOW, NULL),
             SOS_ERR_MALFORMED);
    /* a container count in the signed part that claims more than the bytes */
    const uint8_t bomb_signed[] = {0x93, 0x01, 0xc4, 0x05, 0xdd, 0xff,
                                   0xff, 0xff, 0xff, 0xc4, 0x00};
    CHECK_RC(sos_envelope_decode(&env, bomb_signed, sizeof bomb_signed, NULL, NOW, WINDOW, NULL),
             SOS_ERR_MALFORMED);
}

static void
s_test_receiver_and_domain(const sos_identity_t *id, const sos_identity_t *other)
{
    SECTION("receiver: bound to one node, refused by any other; zero-bound passes anywhere");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    const char body[] = "payload";
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_SYNC, body, sizeof body, id, other->pk, NOW), SOS_OK);
    sos_envelope_t env;
    const uint8_t *f = (const uint8_t *)sb.data;
    CHECK_RC(sos_envelope_decode(&env, f, sb.size, other->pk, NOW, WINDOW, NULL), SOS_OK);
    CHECK(memcmp(env.receiver, other->pk, 32) == 0 && !sos_envelope_unbound(&env));
    CHECK_RC(sos_envelope_decode(&env, f, sb.size, id->pk, NOW, WINDOW, NULL), SOS_ERR_RECEIVER);
    uint8_t third[32];
    memset(third, 0x5a, sizeof third);
    CHECK_RC(sos_envelope_decode(&env, f, sb.size, third, NOW, WINDOW, NULL), SOS_ERR_RECEIVER);
    /* the receiver is signed: rewriting it breaks the signature */
    uint8_t frame[1024];
    size_t len = sb.size;
    memcpy(frame, sb.data, len);
    uint8_t *at = memmem(frame, len, other->pk, 32);
    CHECK(at != NULL);
    if (at) {
        memcpy(at, third, 32);
        CHECK_RC(sos_envelope_decode(&env, frame, len, third, NOW, WINDOW, NULL),
                 SOS_ERR_SIGNATURE);
    }
    msgpack_sbuffer_clear(&sb);
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_SYNC, body, sizeof body, id, NULL, NOW), SOS_OK);
    CHECK_RC(
        sos_envelope_decode(&env, (const uint8_t *)sb.data, sb.size, other->pk, NOW, WINDOW, NULL),
        SOS_OK);
    CHECK(sos_envelope_unbound(&env));
    msgpack_sbuffer_destroy(&sb);

    SECTION("domains: an envelope signed as a record, or with no prefix, does not verify");
    len = s_build(frame, sizeof frame, id, E_DOMAIN_RECORD, 0, NOW, body, sizeof body, other);
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_ERR_SIGNATURE);
    len = s_build(frame, sizeof frame, id, E_DOMAIN_NONE, 0, NOW, body, sizeof body, other);
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_ERR_SIGNATURE);
    len = s_build(frame, sizeof frame, id, E_NONE, 0, NOW, body, sizeof body, other);
    CHECK_RC(sos_envelope_decode(&env, frame, len, NULL, NOW, WINDOW, NULL), SOS_OK);
}

static void
s_nonce(uint8_t nonce[SOS_NONCE_BYTES], uint32_t n)
{
    memset(nonce, 0, SOS_NONCE_BYTES);
    memcpy(nonce, &n, sizeof n);
}

static void
s_test_replay(void)
{
    SECTION("replay guard: fresh nonces pass, a repeated nonce does not");
    CHECK(sos_replay_new(0, WINDOW) == NULL);
    sos_replay_t *g = sos_replay_new(4, WINDOW);
    CHECK(g);
    if (!g)
        return;
    uint8_t n[SOS_NONCE_BYTES];
    s_nonce(n, 1);
    CHECK_RC(sos_replay_check(g, n, NOW, NOW), SOS_OK);
    CHECK_RC(sos_replay_check(g, n, NOW, NOW), SOS_ERR_REPLAY);
    CHECK_RC(sos_replay_check(g, n, NOW + 1, NOW), SOS_ERR_REPLAY); /* another timestamp */
    CHECK(sos_replay_size(g) == 1);

    SECTION("replay guard: timestamps outside the window");
    s_nonce(n, 2);
    CHECK_RC(sos_replay_check(g, n, NOW - WINDOW - 1, NOW), SOS_ERR_REPLAY);
    CHECK_RC(sos_replay_check(g, n, NOW + WINDOW + 1, NOW), SOS_ERR_REPLAY);
    CHECK_RC(sos_replay_check(g, n, 0, NOW), SOS_ERR_REPLAY);
    CHECK(sos_replay_size(g) == 1);

    SECTION("replay guard: when full, the oldest is forgotten but stays refused");
    for (uint32_t i = 2; i <= 4; i++) {
        s_nonce(n, i);
        CHECK_RC(sos_replay_check(g, n, NOW + i, NOW), SOS_OK);
    }
    CHECK(sos_replay_size(g) == 4);
    s_nonce(n, 5);
    CHECK_RC(sos_replay_check(g, n, NOW + 5, NOW), SOS_OK); /* evicts nonce 1 (NOW) */
    CHECK(sos_replay_size(g) == 4);
    s_nonce(n, 1);
    CHECK_RC(sos_replay_check(g, n, NOW, NOW), SOS_ERR_REPLAY); /* forgotten, in the filter */
    s_nonce(n, 6);
    CHECK_RC(sos_replay_check(g, n, NOW, NOW), SOS_OK); /* new, as old as the forgotten one */
    s_nonce(n, 7);
    CHECK_RC(sos_replay_check(g, n, NOW - 100, NOW), SOS_OK); /* evicts nonce 3 (NOW + 3) */
    for (uint32_t i = 2; i <= 3; i++) { /* forgotten: refused at their own timestamps */
        s_nonce(n, i);
        CHECK_RC(sos_replay_check(g, n, NOW + i, NOW), SOS_ERR_REPLAY);
    }
    for (uint32_t i = 4; i <= 7; i++) { /* remembered, whatever the timestamp */
        s_nonce(n, i);
        CHECK_RC(sos_replay_check(g, n, NOW + 50, NOW), SOS_ERR_REPLAY);
    }
    CHECK(sos_replay_size(g) == 4);

    SECTION("replay guard: entries out of the window are forgotten, and stay refused");
    CHECK_RC(sos_replay_check(g, n, NOW + 3, NOW + WINDOW + 10), SOS_ERR_REPLAY);
    CHECK(sos_replay_size(g) == 0);
    s_nonce(n, 8);
    CHECK_RC(sos_replay_check(g, n, NOW + WINDOW + 10, NOW + WINDOW + 10), SOS_OK);
    CHECK(sos_replay_size(g) == 1);
    /* the clock steps back: forgotten nonces are still refused by the floor */
    for (uint32_t i = 1; i <= 7; i++) {
        s_nonce(n, i);
        CHECK_RC(sos_replay_check(g, n, NOW + 5, NOW), SOS_ERR_REPLAY);
    }
    sos_replay_destroy(&g);
    CHECK(g == NULL);
    sos_replay_destroy(&g);
    CHECK(sos_replay_new(4, 0) == NULL);

    SECTION("replay guard: a flood dated a window ahead does not refuse envelopes of now");
    g = sos_replay_new(4, WINDOW);
    CHECK(g);
    if (!g)
        return;
    for (uint32_t i = 100; i < 140; i++) {
        s_nonce(n, i);
        CHECK_RC(sos_replay_check(g, n, NOW + WINDOW - i, NOW), SOS_OK);
    }
    for (uint32_t i = 100; i < 140; i++) {
        s_nonce(n, i);
        CHECK_RC(sos_replay_check(g, n, NOW + WINDOW - i, NOW), SOS_ERR_REPLAY);
    }
    for (uint32_t i = 200; i < 210; i++) {
        s_nonce(n, i);
        CHECK_RC(sos_replay_check(g, n, NOW - i, NOW), SOS_OK);
        CHECK_RC(sos_replay_check(g, n, NOW - i, NOW), SOS_ERR_REPLAY);
    }
    sos_replay_destroy(&g);

    SECTION("replay guard: a filter is reused for a later period only above the floor");
    g = sos_replay_new(1, 1000);
    CHECK(g);
    if (!g)
        return;
    s_nonce(n, 1);
    CHECK_RC(sos_replay_check(g, n, 10500, 10500), SOS_OK);
    s_nonce(n, 2);
    CHECK_RC(sos_replay_check(g, n, 10600, 10500), SOS_OK); /* 1 to the filter of period 10 */
    s_nonce(n, 1);
    CHECK_RC(sos_replay_check(g, n, 10500, 10600), SOS_ERR_REPLAY);
    s_nonce(n, 3);
    CHECK_RC(sos_replay_check(g, n, 13500, 13500), SOS_OK); /* 2 expires: floor 10600 */
    s_nonce(n, 4);
    CHECK_RC(sos_replay_check(g, n, 13600, 13500), SOS_OK); /* 3 to period 13, same filter */
    s_nonce(n, 3);
    CHECK_RC(sos_replay_check(g, n, 13500, 13600), SOS_ERR_REPLAY);
    /* the clock steps back: period 10's nonces are under the floor (10999) now */
    s_nonce(n, 1);
    CHECK_RC(sos_replay_check(g, n, 10500, 10600), SOS_ERR_REPLAY);
    s_nonce(n, 5);
    CHECK_RC(sos_replay_check(g, n, 10999, 10600), SOS_ERR_REPLAY);
    CHECK_RC(sos_replay_check(g, n, 11000, 10600), SOS_OK);
    sos_replay_destroy(&g);
}

/*  The guard against a plain model (a FIFO searched linearly, and exact sets in place of the
    Bloom filters) over many random operations, with few distinct nonces so that repeats and
    evictions are frequent. The guard may refuse more than the model only by a filter's
    false positive (about one run in a thousand at these sizes, and that run stops there);
    it must never accept what the model refuses. */
static void
s_test_replay_model(void)
{
    SECTION("replay guard agrees with a linear model over 200 000 random checks");
    enum { CAP = 257, W = 1000, SLOTS = 3, IDS = 2000 };
    sos_replay_t *g = sos_replay_new(CAP, W);
    CHECK(g);
    if (!g)
        return;
    uint32_t ring_n[CAP];
    uint64_t ring_t[CAP];
    size_t head = 0, count = 0;
    uint64_t floor = 0, now = 1000000;
    bool slot_used[SLOTS] = {false};
    uint64_t slot_period[SLOTS] = {0};
    static bool slot_has[SLOTS][IDS];
    memset(slot_has, 0, sizeof slot_has);
    int unsound = 0, false_positives = 0, size_mismatches = 0;
    for (int i = 0; i < 200000; i++) {
        now += randombytes_uniform(3);
        uint32_t id = randombytes_uniform(IDS);
        uint64_t ts = now - 1100 + randombytes_uniform(2200);
        /* the model */
        sos_rc want = SOS_OK;
        while (count > 0 && ring_t[head] < now && now - ring_t[head] > W) {
            if (ring_t[head] > floor)
                floor = ring_t[head];
            head = (head + 1) % CAP;
            count--;
        }
        if ((ts > now && ts - now > W) || (ts < now && now - ts > W))
            want = SOS_ERR_REPLAY;
        else {
            if (ts <= floor)
                want = SOS_ERR_REPLAY;
            for (size_t k = 0; k < count && want == SOS_OK; k++)
                if (ring_n[(head + k) % CAP] == id)
                    want = SOS_ERR_REPLAY;
            uint64_t p = ts / W;
            if (want == SOS_OK && slot_used[p % SLOTS] && slot_period[p % SLOTS] == p &&
                slot_has[p % SLOTS][id])
                want = SOS_ERR_REPLAY;
            if (want == SOS_OK) {
                if (count == CAP) {
                    uint64_t et = ring_t[head];
                    uint64_t ep = et / W, s = ep % SLOTS;
                    if ((et < now && now - et > W) || (et > now && et - now > W) ||
                        (slot_used[s] && slot_period[s] > ep)) {
                        if (et > floor)
                            floor = et;
                    } else {
                        if (slot_used[s] && slot_period[s] != ep) {
                            if ((slot_period[s] + 1) * W - 1 > floor)
                                floor = (slot_period[s] + 1) * W - 1;
                            memset(slot_has[s], 0, sizeof slot_has[s]);
                        }
                        slot_used[s] = true;
                        slot_period[s] = ep;
                        slot_has[s][ring_n[head]] = true;
                    }
                    head = (head + 1) % CAP;
                    count--;
                }
                ring_n[(head + count) % CAP] = id;
                ring_t[(head + count) % CAP] = ts;
                count++;
            }
        }
        uint8_t n[SOS_NONCE_BYTES];
        s_nonce(n, id);
        sos_rc got = sos_replay_check(g, n, ts, now);
        if (got == SOS_OK && want != SOS_OK)
            unsound++;
        else if (got != SOS_OK && want == SOS_OK) {
            /* a false positive of a filter: sound, and from here on the guard holds other
               entries than the model, so the comparison ends */
            false_positives++;
            break;
        }
        if (sos_replay_size(g) != count)
            size_mismatches++;
    }
    CHECK(unsound == 0);
    CHECK(false_positives <= 1);
    CHECK(size_mismatches == 0);
    sos_replay_destroy(&g);
}

/*  Unsigned envelopes (sos_envelope.c): taken only when the caller vouches for the
    connection, never instead of a signature that is there and wrong. */
static void
s_test_unsigned(const sos_identity_t *id, const sos_identity_t *other)
{
    SECTION("unsigned: the same fields with an empty sig, 64 bytes shorter");
    msgpack_sbuffer sb, signed_sb;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&signed_sb);
    const char body[] = "gossip body bytes";
    uint8_t nonce[SOS_NONCE_BYTES] = {7};
    CHECK_RC(sos_envelope_encode_unsigned_nonce(&sb, SOS_MSG_SYNC, body, sizeof body, id, other->pk,
                                                NOW, nonce),
             SOS_OK);
    CHECK_RC(sos_envelope_encode_nonce(&signed_sb, SOS_MSG_SYNC, body, sizeof body, id, other->pk,
                                       NOW, nonce),
             SOS_OK);
    CHECK(sb.size + SOS_SIG_BYTES == signed_sb.size);
    const uint8_t *frame = (const uint8_t *)sb.data;

    SECTION("unsigned, without a connection that proves the sender: bad signature");
    sos_envelope_t env;
    CHECK_RC(sos_envelope_decode(&env, frame, sb.size, other->pk, NOW, WINDOW, NULL),
             SOS_ERR_SIGNATURE);
    CHECK_RC(sos_envelope_open(&env, frame, sb.size, other->pk, NOW, WINDOW, 0, NULL),
             SOS_ERR_SIGNATURE);

    SECTION("unsigned, on a connection that proves it: taken, and marked unchecked");
    CHECK_RC(sos_envelope_open(&env, frame, sb.size, other->pk, NOW, WINDOW, SOS_ENV_TRANSPORT_AUTH,
                               NULL),
             SOS_OK);
    CHECK(!env.sig_checked && env.type == SOS_MSG_SYNC);
    CHECK(memcmp(env.sender, id->pk, SOS_NODEID_BYTES) == 0);
    CHECK(env.body_len == sizeof body && memcmp(env.body, body, sizeof body) == 0);

    SECTION("the cheaper checks still come first: receiver, then the window");
    CHECK_RC(
        sos_envelope_open(&env, frame, sb.size, id->pk, NOW, WINDOW, SOS_ENV_TRANSPORT_AUTH, NULL),
        SOS_ERR_RECEIVER);
    CHECK_RC(sos_envelope_open(&env, frame, sb.size, other->pk, NOW + WINDOW + 1, WINDOW,
                               SOS_ENV_TRANSPORT_AUTH, NULL),
             SOS_ERR_REPLAY);

    SECTION("signed, with the flag: verified all the same, and a bad one refused");
    CHECK_RC(sos_envelope_open(&env, (const uint8_t *)signed_sb.data, signed_sb.size, other->pk,
                               NOW, WINDOW, SOS_ENV_TRANSPORT_AUTH, NULL),
             SOS_OK);
    CHECK(env.sig_checked);
    signed_sb.data[signed_sb.size - 1] ^= 1;
    CHECK_RC(sos_envelope_open(&env, (const uint8_t *)signed_sb.data, signed_sb.size, other->pk,
                               NOW, WINDOW, SOS_ENV_TRANSPORT_AUTH, NULL),
             SOS_ERR_SIGNATURE);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&signed_sb);

    SECTION("a sig of 63 or 65 bytes is malformed, with the flag too");
    uint8_t buf[512];
    for (emut_t m = E_SIG_63; m <= E_SIG_65; m++) {
        size_t n = s_build(buf, sizeof buf, id, m, 0, NOW, "x", 1, other);
        CHECK(n > 0);
        CHECK_RC(sos_envelope_open(&env, buf, n, NULL, NOW, WINDOW, SOS_ENV_TRANSPORT_AUTH, NULL),
                 SOS_ERR_MALFORMED);
    }
}

int
main(void)
{
    test_init("test_envelope: frames, signed envelopes, replay guard");
    sos_identity_t id, other;
    test_seed_identity(&id, 0);
    sos_identity_generate(&other);
    s_test_frame_kind(&id);
    s_test_round_trip(&id);
    s_test_rejections(&id, &other);
    s_test_unsigned(&id, &other);
    s_test_receiver_and_domain(&id, &other);
    s_test_replay();
    s_test_replay_model();
    return test_done("test_envelope");
}
