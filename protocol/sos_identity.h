/*  sos_identity.h: a node's Ed25519 identity, signatures and the small crypto helpers
    (hex, random, clocks) that the rest of sosnode shares. Wraps libsodium. */
#ifndef SOS_IDENTITY_H
#define SOS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"

#define SOS_NODEID_BYTES 32 /* the node id is the Ed25519 public key */
#define SOS_SECRET_BYTES 64
#define SOS_SIG_BYTES    64
#define SOS_NODEID_HEX   (2 * SOS_NODEID_BYTES)

typedef struct {
    uint8_t pk[SOS_NODEID_BYTES];
    uint8_t sk[SOS_SECRET_BYTES];
} sos_identity_t;

/*  Initialise libsodium. Call once at program start; returns SOS_ERR_CRYPTO on failure. */
sos_rc sos_crypto_init(void);

/*  Load the identity kept at path, or make a new key pair and write it there with mode 0600
    (via a temporary file and rename, so a crash never leaves half a key). *created tells
    which happened (may be NULL). Returns SOS_ERR_CORRUPT if the file exists but is not a
    valid key (wrong size or a public key that does not match the secret), SOS_ERR_IO on
    file errors. */
sos_rc sos_identity_load_or_create(sos_identity_t *id, const char *path, bool *created);

/*  A fresh in-memory identity (tests, tools). */
void sos_identity_generate(sos_identity_t *id);

/*  Zero the secret key. */
void sos_identity_wipe(sos_identity_t *id);

/*  The transport keys (PROTOCOL.md, "Transport"). A node's CURVE key pair is its Ed25519
    identity converted to X25519, so that a node id alone is enough to connect to that node
    with CURVE, and a pinned id pins the transport key too: there is no second key file. */
#define SOS_CURVE_KEY_BYTES 32

/*  The node's CURVE key pair, derived from its identity. The caller wipes sk after use
    (sodium_memzero). SOS_OK, or SOS_ERR_CRYPTO if the identity is not a valid key. */
__attribute__((warn_unused_result)) sos_rc sos_identity_curve_keys(uint8_t pk[SOS_CURVE_KEY_BYTES],
                                                                   uint8_t sk[SOS_CURVE_KEY_BYTES],
                                                                   const sos_identity_t *id);

/*  The CURVE public key of the node whose id is node_id: the server key to connect to it, and
    the client key its connections present. SOS_OK, or SOS_ERR_CRYPTO if node_id is no valid
    Ed25519 point (no node can have it: the caller refuses the connection). */
__attribute__((warn_unused_result)) sos_rc
sos_nodeid_to_curve(uint8_t pk[SOS_CURVE_KEY_BYTES], const uint8_t node_id[SOS_NODEID_BYTES]);

/*  Detached Ed25519 signature of msg[0..len) into sig. */
void sos_sign(uint8_t sig[SOS_SIG_BYTES], const uint8_t *msg, size_t len, const sos_identity_t *id);

/*  SOS_OK if sig is pk's signature of msg, else SOS_ERR_SIGNATURE. */
__attribute__((warn_unused_result)) sos_rc sos_verify(const uint8_t sig[SOS_SIG_BYTES],
                                                      const uint8_t *msg, size_t len,
                                                      const uint8_t pk[SOS_NODEID_BYTES]);

/*  Signing domains: every signed kind of the wire format signs its bytes behind its own
    prefix (the NUL included), so that bytes signed as one kind can never be taken for
    another (protocol/PROTOCOL.md, "Identity and signatures"). */
#define SOS_DOMAIN_ENVELOPE "sosnode/2/envelope"
#define SOS_DOMAIN_RECORD   "sosnode/2/record"

/*  Signature of domain (with its terminating NUL) followed by msg[0..len): Ed25519ph over
    libsodium's multi-part API, so that the message is neither copied nor re-allocated
    whatever its size. domain is one of the SOS_DOMAIN_ constants. */
void sos_sign_domain(uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg, size_t len,
                     const sos_identity_t *id);

/*  SOS_OK if sig is pk's sos_sign_domain signature of msg in domain, else SOS_ERR_SIGNATURE. */
__attribute__((warn_unused_result)) sos_rc sos_verify_domain(const uint8_t sig[SOS_SIG_BYTES],
                                                             const char *domain, const uint8_t *msg,
                                                             size_t len,
                                                             const uint8_t pk[SOS_NODEID_BYTES]);

/*  A simulator's hook, in the manner of libsodium's randombytes_set_implementation() and
    sos_clock_set_implementation() below: replace sos_sign_domain and sos_verify_domain (and
    so every signature of an envelope or a record, protocol/sos_envelope.c and sos_record.c)
    for the whole process. tools/sossim's --cheap-crypto sets a keyed hash here, because
    Ed25519 at 10,000 simulated nodes is most of a run's time; the code that signs and
    verifies is otherwise the code the nodes run. Both functions must be given; arg is passed
    to them; the struct is borrowed and must outlive its use. verify returns SOS_OK or
    SOS_ERR_SIGNATURE, as sos_verify_domain does. NULL restores Ed25519. Not thread-safe: set
    it before any signature is made. sosnode never calls it: a node's signatures are always
    Ed25519. sos_sign and sos_verify (no domain) are not affected. */
typedef struct {
    void (*sign)(void *arg, uint8_t sig[SOS_SIG_BYTES], const char *domain, const uint8_t *msg,
                 size_t len, const sos_identity_t *id);
    sos_rc (*verify)(void *arg, const uint8_t sig[SOS_SIG_BYTES], const char *domain,
                     const uint8_t *msg, size_t len, const uint8_t pk[SOS_NODEID_BYTES]);
    void *arg;
} sos_sign_impl_t;
void sos_sign_set_implementation(const sos_sign_impl_t *impl);

/*  Lower-case hex of bin[0..len) into out, which holds 2 * len + 1 bytes. Returns out. */
char *sos_hex(char *out, const uint8_t *bin, size_t len);

/*  Parse exactly 2 * len hex characters (and nothing more) into out. */
bool sos_unhex(uint8_t *out, size_t len, const char *hex);

/*  Wall-clock milliseconds since the epoch (timestamps that travel) and a monotonic clock in
    milliseconds (timers, deadlines). */
uint64_t sos_now_ms(void);
uint64_t sos_mono_ms(void);

/*  A test hook, in the manner of libsodium's randombytes_set_implementation(): replace both
    clocks for the whole process, so that a fuzzer or a test can run a node on a clock it
    advances itself (recorded inputs then stay inside the replay window and after the start
    floor whenever they are replayed). Both functions must be given; the struct is borrowed
    and must outlive its use. NULL restores the real clocks. Not thread-safe: set it while
    no other thread reads the clocks. Never called by sosnode itself. */
typedef struct {
    uint64_t (*now_ms)(void);  /* wall clock, ms since the epoch */
    uint64_t (*mono_ms)(void); /* monotonic, ms */
} sos_clock_impl_t;
void sos_clock_set_implementation(const sos_clock_impl_t *impl);

#endif
