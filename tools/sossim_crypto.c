/*  sossim_crypto.c: the simulator's --cheap-crypto switch: record and envelope signatures
    become a keyed BLAKE2b hash, and nothing else changes. */
#include <string.h>

#include "sos_identity.h"
#include "sossim.h"

/*  Why and how

    Ed25519 costs about 50 us to verify; a simulated network of 10,000 nodes verifies tens
    of millions of records while it converges. With --cheap-crypto a signature is
    BLAKE2b-512 of the domain (with its NUL) and the message, keyed by the signer's secret
    seed, and a verifier recomputes it with the seed of the node that owns the public key,
    which the simulator looks up in its registry. Only a holder of the secret can make a
    signature that verifies, as with Ed25519, so forged and altered records are refused
    exactly as before; only the cost changes. The switch is this file: sossim is linked
    with -Wl,--wrap for sos_sign_domain and sos_verify_domain (tools/CMakeLists), so the
    protocol code that signs and verifies is the code the nodes run, untouched.

    The wrappers need the simulator to find a secret by public key: that is the one
    process-wide pointer here, set once by sim_crypto_cheap before the run. */

void __real_sos_sign_domain(uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
                            size_t len, const sos_identity_t *id);
sos_rc __real_sos_verify_domain(const uint8_t sig[SOS_SIG_BYTES], const char *domain,
                                const uint8_t *msg, size_t len, const uint8_t pk[SOS_NODEID_BYTES]);
void __wrap_sos_sign_domain(uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
                            size_t len, const sos_identity_t *id);
sos_rc __wrap_sos_verify_domain(const uint8_t sig[SOS_SIG_BYTES], const char *domain,
                                const uint8_t *msg, size_t len, const uint8_t pk[SOS_NODEID_BYTES]);

static sim_t *s_cheap;

void
sim_crypto_cheap(sim_t *sim, bool on)
{
    s_cheap = on ? sim : NULL;
}

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

void
__wrap_sos_sign_domain(uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
                       size_t len, const sos_identity_t *id)
{
    if (!s_cheap) {
        __real_sos_sign_domain(sig, domain, msg, len, id);
        return;
    }
    s_keyed(sig, domain, msg, len, id->sk); /* libsodium's secret key starts with the seed */
}

sos_rc
__wrap_sos_verify_domain(const uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
                         size_t len, const uint8_t pk[SOS_NODEID_BYTES])
{
    if (!s_cheap)
        return __real_sos_verify_domain(sig, domain, msg, len, pk);
    uint32_t idx = sim_lookup(s_cheap, pk);
    if (idx == UINT32_MAX)
        return SOS_ERR_SIGNATURE;
    uint8_t want[SOS_SIG_BYTES];
    s_keyed(want, domain, msg, len, s_cheap->nodes[idx].id.sk);
    return sodium_memcmp(want, sig, SOS_SIG_BYTES) == 0 ? SOS_OK : SOS_ERR_SIGNATURE;
}
