/*  test_sign_hook.c: unit tests of sos_sign_set_implementation (protocol/sos_identity.h): with
    the hook set, records and envelopes are signed and verified by it; cleared, Ed25519 again. */
#include <msgpack.h>

#include "proto_test.h"
#include "sos_envelope.h"

/*  A cheap signature as a simulator makes one: BLAKE2b keyed by the signer's seed. The
    verifier knows one signer only (arg), as a simulator's registry would know them all. */
static int s_signs, s_verifies;

static void
s_keyed(uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg, size_t len,
        const uint8_t seed[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, seed, 32, SOS_SIG_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, strlen(domain) + 1);
    crypto_generichash_update(&st, msg, len);
    crypto_generichash_final(&st, sig, SOS_SIG_BYTES);
}

static void
s_cheap_sign(void *arg, uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
             size_t len, const sos_identity_t *id)
{
    (void)arg;
    s_signs++;
    s_keyed(sig, domain, msg, len, id->sk);
}

static sos_rc
s_cheap_verify(void *arg, const uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
               size_t len, const uint8_t pk[SOS_NODEID_BYTES])
{
    const sos_identity_t *known = arg;
    s_verifies++;
    if (memcmp(pk, known->pk, SOS_NODEID_BYTES) != 0)
        return SOS_ERR_SIGNATURE;
    uint8_t want[SOS_SIG_BYTES];
    s_keyed(want, domain, msg, len, known->sk);
    return sodium_memcmp(want, sig, SOS_SIG_BYTES) == 0 ? SOS_OK : SOS_ERR_SIGNATURE;
}

static void
s_test_record(const sos_identity_t *id)
{
    SECTION("a record signed through the hook verifies through it, and not as Ed25519");
    sos_sign_impl_t impl = {.sign = s_cheap_sign, .verify = s_cheap_verify, .arg = (void *)id};
    sos_record_t cheap, ed, d;

    sos_sign_set_implementation(&impl);
    test_worker(&cheap, 3, "tcp://192.0.2.1:7777");
    CHECK_RC(sos_record_sign(&cheap, id), SOS_OK);
    CHECK(s_signs == 1);
    CHECK_RC(sos_record_decode(&d, cheap.wire, cheap.wire_len), SOS_OK);
    CHECK(s_verifies == 1);
    /* a byte changed in the signed part fails the cheap check as it fails Ed25519 */
    uint8_t bent[SOS_RECORD_MAX];
    memcpy(bent, cheap.wire, cheap.wire_len);
    bent[cheap.wire_len / 2] ^= 0x01;
    CHECK(sos_record_decode(&d, bent, cheap.wire_len) != SOS_OK);

    int verifies = s_verifies;
    sos_sign_set_implementation(NULL);
    CHECK_RC(sos_record_decode(&d, cheap.wire, cheap.wire_len), SOS_ERR_SIGNATURE);
    CHECK(s_verifies == verifies); /* cleared: Ed25519 checked it, not the hook */
    test_worker(&ed, 3, "tcp://192.0.2.1:7777");
    CHECK_RC(sos_record_sign(&ed, id), SOS_OK);
    CHECK(s_signs == 1);
    CHECK_RC(sos_record_decode(&d, ed.wire, ed.wire_len), SOS_OK);
    CHECK(ed.wire_len == cheap.wire_len && memcmp(ed.wire, cheap.wire, ed.wire_len) != 0);

    /* and an Ed25519 record does not pass the cheap check */
    sos_sign_set_implementation(&impl);
    CHECK_RC(sos_record_decode(&d, ed.wire, ed.wire_len), SOS_ERR_SIGNATURE);
    sos_sign_set_implementation(NULL);
}

static void
s_test_envelope(const sos_identity_t *id)
{
    SECTION("an envelope signed through the hook verifies through it, and not as Ed25519");
    sos_sign_impl_t impl = {.sign = s_cheap_sign, .verify = s_cheap_verify, .arg = (void *)id};
    const uint8_t body[] = {0x90};
    uint64_t now = 1700000000000ULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    sos_envelope_t env;

    sos_sign_set_implementation(&impl);
    int signs = s_signs;
    CHECK_RC(sos_envelope_encode(&sb, SOS_MSG_SYNC, body, sizeof body, id, NULL, now), SOS_OK);
    CHECK(s_signs == signs + 1);
    CHECK_RC(sos_envelope_decode(&env, (const uint8_t *)sb.data, sb.size, NULL, now, 60000, NULL),
             SOS_OK);
    sos_sign_set_implementation(NULL);
    CHECK_RC(sos_envelope_decode(&env, (const uint8_t *)sb.data, sb.size, NULL, now, 60000, NULL),
             SOS_ERR_SIGNATURE);
    msgpack_sbuffer_destroy(&sb);
}

static void
s_test_incomplete(const sos_identity_t *id)
{
    SECTION("a hook without both functions is no hook: Ed25519 stays");
    sos_sign_impl_t half = {.sign = s_cheap_sign, .verify = NULL, .arg = (void *)id};
    sos_sign_set_implementation(&half);
    int signs = s_signs;
    sos_record_t r, d;
    test_worker(&r, 4, "tcp://192.0.2.1:7777");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    CHECK(s_signs == signs);
    CHECK_RC(sos_record_decode(&d, r.wire, r.wire_len), SOS_OK);
    sos_sign_set_implementation(NULL);
}

int
main(void)
{
    test_init("test_sign_hook: the signature hook of sos_identity");
    sos_identity_t id;
    test_seed_identity(&id, 0);
    s_test_record(&id);
    s_test_envelope(&id);
    s_test_incomplete(&id);
    return test_done("test_sign_hook");
}
