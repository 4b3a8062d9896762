/*  sos_e2e.c: room hash, Argon2id room key and secretbox content of the client's end-to-end
    crypto (see sos_e2e.h), on libsodium. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sos_e2e.h"

#define S_SALT_PREFIX "sos-chat-v1:"

void
sos_e2e_room_hash(char out[SOS_E2E_HASH_CHARS + 1], const char *emojis)
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)emojis, strlen(emojis));
    sodium_bin2hex(out, SOS_E2E_HASH_CHARS + 1, digest, SOS_E2E_HASH_CHARS / 2);
}

bool
sos_e2e_room_hash_valid(const char *s)
{
    if (!s || strlen(s) != SOS_E2E_HASH_CHARS)
        return false;
    for (size_t i = 0; i < SOS_E2E_HASH_CHARS; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

void
sos_e2e_salt(uint8_t salt[SOS_E2E_SALT_BYTES], const char *emojis, uint64_t created_at_ms)
{
    //  The web app writes Math.floor (created_at / 1000) in decimal
    char seconds[24];
    snprintf(seconds, sizeof seconds, "%" PRIu64, created_at_ms / 1000);

    crypto_hash_sha256_state st;
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)S_SALT_PREFIX, strlen(S_SALT_PREFIX));
    crypto_hash_sha256_update(&st, (const unsigned char *)emojis, strlen(emojis));
    crypto_hash_sha256_update(&st, (const unsigned char *)":", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)seconds, strlen(seconds));
    crypto_hash_sha256_final(&st, digest);
    memcpy(salt, digest, SOS_E2E_SALT_BYTES);
}

sos_rc
sos_e2e_derive_key(uint8_t key[SOS_E2E_KEY_BYTES], const char *emojis, const char *pin,
                   uint64_t created_at_ms)
{
    _Static_assert(SOS_E2E_SALT_BYTES == crypto_pwhash_SALTBYTES, "salt size");
    _Static_assert(SOS_E2E_KEY_BYTES == crypto_secretbox_KEYBYTES, "key size");
    if (!emojis || !*emojis || !pin)
        return SOS_ERR_INVALID;

    size_t emojis_len = strlen(emojis);
    size_t pin_len = strlen(pin);
    size_t password_len = emojis_len + 1 + pin_len;
    char *password = (char *)sodium_malloc(password_len);
    if (!password)
        return SOS_ERR_NOMEM;
    memcpy(password, emojis, emojis_len);
    password[emojis_len] = ':';
    memcpy(password + emojis_len + 1, pin, pin_len);

    uint8_t salt[SOS_E2E_SALT_BYTES];
    sos_e2e_salt(salt, emojis, created_at_ms);
    int rc = crypto_pwhash(key, SOS_E2E_KEY_BYTES, password, password_len, salt, SOS_E2E_OPSLIMIT,
                           SOS_E2E_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13);
    sodium_free(password); //  zeroes it
    if (rc != 0) {
        sodium_memzero(key, SOS_E2E_KEY_BYTES);
        return SOS_ERR_CRYPTO;
    }
    return SOS_OK;
}

sos_rc
sos_e2e_seal_with_nonce(char **b64_out, const uint8_t key[SOS_E2E_KEY_BYTES],
                        const uint8_t nonce[SOS_E2E_NONCE_BYTES], const void *text, size_t len)
{
    _Static_assert(SOS_E2E_NONCE_BYTES == crypto_secretbox_NONCEBYTES, "nonce size");
    _Static_assert(SOS_E2E_MAC_BYTES == crypto_secretbox_MACBYTES, "mac size");
    *b64_out = NULL;
    if (len > SOS_E2E_TEXT_MAX)
        return SOS_ERR_TOO_LARGE;

    size_t bin_len = SOS_E2E_NONCE_BYTES + SOS_E2E_MAC_BYTES + len;
    size_t b64_len = sodium_base64_ENCODED_LEN(bin_len, sodium_base64_VARIANT_ORIGINAL);
    uint8_t *bin = (uint8_t *)malloc(bin_len);
    char *b64 = (char *)malloc(b64_len);
    if (!bin || !b64) {
        free(bin);
        free(b64);
        return SOS_ERR_NOMEM;
    }
    memcpy(bin, nonce, SOS_E2E_NONCE_BYTES);
    crypto_secretbox_easy(bin + SOS_E2E_NONCE_BYTES, (const unsigned char *)text, len, nonce, key);
    sodium_bin2base64(b64, b64_len, bin, bin_len, sodium_base64_VARIANT_ORIGINAL);
    free(bin);
    *b64_out = b64;
    return SOS_OK;
}

sos_rc
sos_e2e_seal(char **b64_out, const uint8_t key[SOS_E2E_KEY_BYTES], const void *text, size_t len)
{
    uint8_t nonce[SOS_E2E_NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    return sos_e2e_seal_with_nonce(b64_out, key, nonce, text, len);
}

sos_rc
sos_e2e_open(char **text_out, size_t *len_out, const uint8_t key[SOS_E2E_KEY_BYTES],
             const char *b64)
{
    *text_out = NULL;
    *len_out = 0;
    size_t b64_len = strlen(b64);
    //  Bound the input before allocating: the largest sealed text encodes to this many chars
    size_t b64_max = sodium_base64_ENCODED_LEN(
        SOS_E2E_NONCE_BYTES + SOS_E2E_MAC_BYTES + SOS_E2E_TEXT_MAX, sodium_base64_VARIANT_ORIGINAL);
    if (b64_len >= b64_max)
        return SOS_ERR_TOO_LARGE;

    size_t bin_max = b64_len / 4 * 3 + 3;
    uint8_t *bin = (uint8_t *)malloc(bin_max);
    if (!bin)
        return SOS_ERR_NOMEM;
    size_t bin_len = 0;
    sos_rc rc = SOS_ERR_MALFORMED;
    char *text = NULL;
    if (sodium_base642bin(bin, bin_max, b64, b64_len, NULL, &bin_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        goto done;
    if (bin_len < SOS_E2E_NONCE_BYTES + SOS_E2E_MAC_BYTES)
        goto done;

    size_t text_len = bin_len - SOS_E2E_NONCE_BYTES - SOS_E2E_MAC_BYTES;
    text = (char *)malloc(text_len + 1);
    if (!text) {
        rc = SOS_ERR_NOMEM;
        goto done;
    }
    if (crypto_secretbox_open_easy((unsigned char *)text, bin + SOS_E2E_NONCE_BYTES,
                                   bin_len - SOS_E2E_NONCE_BYTES, bin, key) != 0) {
        rc = SOS_ERR_SIGNATURE;
        goto done;
    }
    text[text_len] = 0;
    *text_out = text;
    *len_out = text_len;
    text = NULL;
    rc = SOS_OK;
done:
    free(text);
    free(bin);
    return rc;
}
