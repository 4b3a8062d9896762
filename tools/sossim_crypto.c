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
    exactly as before; only the cost changes. The switch is the protocol's own hook,
    sos_sign_set_implementation (protocol/sos_identity.h), which sos_sign_domain and
    sos_verify_domain consult: the code that signs and verifies records and envelopes is the
    code the nodes run, and the hook's argument is the run, whose registry finds a secret by
    public key. */

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
s_sign(void *arg, uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg, size_t len,
       const sos_identity_t *id)
{
    (void)arg;
    s_keyed(sig, domain, msg, len, id->sk); /* libsodium's secret key starts with the seed */
}

static sos_rc
s_verify(void *arg, const uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
         size_t len, const uint8_t pk[SOS_NODEID_BYTES])
{
    sim_t *sim = arg;
    uint32_t idx = sim_lookup(sim, pk);
    if (idx == UINT32_MAX)
        return SOS_ERR_SIGNATURE;
    uint8_t want[SOS_SIG_BYTES];
    s_keyed(want, domain, msg, len, sim->nodes[idx].id.sk);
    return sodium_memcmp(want, sig, SOS_SIG_BYTES) == 0 ? SOS_OK : SOS_ERR_SIGNATURE;
}

void
sim_crypto_cheap(sim_t *sim, bool on)
{
    sim->sign_impl = (sos_sign_impl_t){.sign = s_sign, .verify = s_verify, .arg = sim};
    sos_sign_set_implementation(on ? &sim->sign_impl : NULL);
}
