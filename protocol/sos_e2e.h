/*  sos_e2e.h: the client's end-to-end room crypto, byte-compatible with the seed's web app.
    The emojis and PIN never leave the client; nodes only ever see room_hash and content. */
#ifndef SOS_E2E_H
#define SOS_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sos_error.h"

/*  A room is named by its emojis and keyed by emojis, PIN and creation time:

        room_hash = hex (SHA-256 (emojis)) [0..16)
        salt      = SHA-256 ("sos-chat-v1:" emojis ":" floor (created_at_ms / 1000)) [0..16)
        key       = Argon2id v1.3 (password = emojis ":" pin, salt, ops 2, mem 64 MiB, 32 bytes)
        content   = base64 (nonce[24] || XSalsa20-Poly1305 secretbox (text, nonce, key))

    Strings are hashed as the UTF-8 bytes the caller passes, without normalisation: the web
    app does the same, so two spellings of one emoji (with or without VS16) are two rooms.
    The creation time in the salt makes a key useless for a later room of the same emojis. */

#define SOS_E2E_HASH_CHARS  16 /* hex characters of a room hash */
#define SOS_E2E_SALT_BYTES  16
#define SOS_E2E_KEY_BYTES   32
#define SOS_E2E_NONCE_BYTES 24
#define SOS_E2E_MAC_BYTES   16
#define SOS_E2E_OPSLIMIT    2ULL
#define SOS_E2E_MEMLIMIT    67108864ULL /* 64 MiB */
/*  Ceiling on plaintext sealed or opened here; nodes reject much smaller contents anyway. */
#define SOS_E2E_TEXT_MAX (1024 * 1024)

/*  Room hash of the NUL-terminated UTF-8 emojis into out (16 lower-case hex + NUL). */
void sos_e2e_room_hash(char out[SOS_E2E_HASH_CHARS + 1], const char *emojis);

/*  True if s is exactly 16 lower-case hex characters, as room hashes are. */
bool sos_e2e_room_hash_valid(const char *s);

/*  The Argon2id salt of a room (exposed for tests). */
void sos_e2e_salt(uint8_t salt[SOS_E2E_SALT_BYTES], const char *emojis, uint64_t created_at_ms);

/*  Derive the room key of emojis, pin and the room's created_at (ms since the epoch) into
    key. Takes about 64 MiB and a fraction of a second. Returns SOS_OK, SOS_ERR_INVALID for
    an empty emojis string, or SOS_ERR_CRYPTO if Argon2id could not run (out of memory).
    The caller wipes key with sodium_memzero when done. */
__attribute__((warn_unused_result)) sos_rc sos_e2e_derive_key(uint8_t key[SOS_E2E_KEY_BYTES],
                                                              const char *emojis, const char *pin,
                                                              uint64_t created_at_ms);

/*  Encrypt text[0..len) under key with a fresh random nonce. On SOS_OK *b64_out is a new
    NUL-terminated base64 string the caller frees with free(). Returns SOS_ERR_TOO_LARGE if
    len exceeds SOS_E2E_TEXT_MAX, SOS_ERR_NOMEM on allocation failure. */
sos_rc sos_e2e_seal(char **b64_out, const uint8_t key[SOS_E2E_KEY_BYTES], const void *text,
                    size_t len);

/*  As sos_e2e_seal, with the caller's nonce. For known-answer tests only: reusing a nonce
    under one key reveals the texts. */
sos_rc sos_e2e_seal_with_nonce(char **b64_out, const uint8_t key[SOS_E2E_KEY_BYTES],
                               const uint8_t nonce[SOS_E2E_NONCE_BYTES], const void *text,
                               size_t len);

/*  Decrypt the NUL-terminated base64 content b64 under key. On SOS_OK *text_out is a new
    buffer of *len_out bytes plus a terminating NUL (the text may itself hold NULs), which
    the caller frees with free(). Returns SOS_ERR_MALFORMED if b64 is not base64 of at least
    a nonce and a MAC, SOS_ERR_TOO_LARGE above SOS_E2E_TEXT_MAX, SOS_ERR_SIGNATURE if it does
    not authenticate under key (wrong PIN or tampered), SOS_ERR_NOMEM. */
__attribute__((warn_unused_result)) sos_rc sos_e2e_open(char **text_out, size_t *len_out,
                                                        const uint8_t key[SOS_E2E_KEY_BYTES],
                                                        const char *b64);

#endif
