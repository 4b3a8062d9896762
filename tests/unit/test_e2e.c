/*  test_e2e.c: unit test of protocol/sos_e2e: the known-answer vectors of e2e.exp (made with
    libsodium.js, as the web app computes them), round trips and rejection of tampering. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sos_e2e.h"

//  Decode a hex field of the vectors into a new NUL-terminated buffer; NULL if not hex
static char *
s_unhex(const char *hex, size_t *len)
{
    size_t hex_len = strlen(hex);
    char *bin = (char *)malloc(hex_len / 2 + 1);
    size_t bin_len = 0;
    if (!bin ||
        sodium_hex2bin((unsigned char *)bin, hex_len / 2, hex, hex_len, NULL, &bin_len, NULL) ||
        bin_len * 2 != hex_len) {
        free(bin);
        return NULL;
    }
    bin[bin_len] = 0;
    if (len)
        *len = bin_len;
    return bin;
}

static void
s_test_vector(char **fields, int nfields, int *counts)
{
    if (!strcmp(fields[0], "hash") && nfields == 3) {
        char *emojis = s_unhex(fields[1], NULL);
        char hash[SOS_E2E_HASH_CHARS + 1];
        CHECK(emojis);
        if (emojis) {
            sos_e2e_room_hash(hash, emojis);
            CHECK(!strcmp(hash, fields[2]));
            CHECK(sos_e2e_room_hash_valid(hash));
        }
        free(emojis);
        counts[0]++;
    } else if (!strcmp(fields[0], "salt") && nfields == 4) {
        char *emojis = s_unhex(fields[1], NULL);
        uint8_t salt[SOS_E2E_SALT_BYTES];
        char salt_hex[2 * SOS_E2E_SALT_BYTES + 1];
        CHECK(emojis);
        if (emojis) {
            sos_e2e_salt(salt, emojis, strtoull(fields[2], NULL, 10));
            sodium_bin2hex(salt_hex, sizeof salt_hex, salt, sizeof salt);
            CHECK(!strcmp(salt_hex, fields[3]));
        }
        free(emojis);
        counts[1]++;
    } else if (!strcmp(fields[0], "key") && nfields == 5) {
        char *emojis = s_unhex(fields[1], NULL);
        char *pin = s_unhex(fields[2], NULL);
        uint8_t key[SOS_E2E_KEY_BYTES];
        char key_hex[2 * SOS_E2E_KEY_BYTES + 1];
        CHECK(emojis && pin);
        if (emojis && pin) {
            CHECK_RC(sos_e2e_derive_key(key, emojis, pin, strtoull(fields[3], NULL, 10)), SOS_OK);
            sodium_bin2hex(key_hex, sizeof key_hex, key, sizeof key);
            CHECK(!strcmp(key_hex, fields[4]));
            //  One more millisecond in the same second: the same key
            uint8_t key2[SOS_E2E_KEY_BYTES];
            uint64_t created_at = strtoull(fields[3], NULL, 10);
            uint64_t same_second = created_at % 1000 == 999 ? created_at - 1 : created_at + 1;
            CHECK_RC(sos_e2e_derive_key(key2, emojis, pin, same_second), SOS_OK);
            CHECK(!memcmp(key, key2, sizeof key));
        }
        free(emojis);
        free(pin);
        counts[2]++;
    } else if (!strcmp(fields[0], "box") && nfields == 5) {
        size_t key_len = 0, nonce_len = 0, text_len = 0;
        char *key = s_unhex(fields[1], &key_len);
        char *nonce = s_unhex(fields[2], &nonce_len);
        char *text = s_unhex(fields[3], &text_len);
        CHECK(key && key_len == SOS_E2E_KEY_BYTES);
        CHECK(nonce && nonce_len == SOS_E2E_NONCE_BYTES);
        CHECK(text);
        if (key && key_len == SOS_E2E_KEY_BYTES && nonce && nonce_len == SOS_E2E_NONCE_BYTES &&
            text) {
            char *b64 = NULL;
            CHECK_RC(
                sos_e2e_seal_with_nonce(&b64, (uint8_t *)key, (uint8_t *)nonce, text, text_len),
                SOS_OK);
            CHECK(b64 && !strcmp(b64, fields[4]));
            free(b64);
            char *opened = NULL;
            size_t opened_len = 0;
            CHECK_RC(sos_e2e_open(&opened, &opened_len, (uint8_t *)key, fields[4]), SOS_OK);
            CHECK(opened && opened_len == text_len && !memcmp(opened, text, text_len));
            free(opened);
        }
        free(key);
        free(nonce);
        free(text);
        counts[3]++;
    } else {
        fprintf(stderr, "e2e.exp: bad line starting with '%s' (%d fields)\n", fields[0], nfields);
        s_failed++;
    }
}

static void
s_test_vectors(void)
{
    const char *dir = getenv("SOS_VECTORS");
    char path[1024];
    snprintf(path, sizeof path, "%s/e2e.exp", dir ? dir : "tests/vectors");
    FILE *file = fopen(path, "r");
    CHECK(file);
    if (!file) {
        fprintf(stderr, "cannot open %s (set SOS_VECTORS)\n", path);
        return;
    }
    static char line[16384];
    int counts[4] = {0};
    while (fgets(line, sizeof line, file)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *fields[8] = {NULL};
        int nfields = 0;
        char *save = NULL;
        for (char *f = strtok_r(line, " ", &save); f && nfields < 8; f = strtok_r(NULL, " ", &save))
            fields[nfields++] = f;
        if (nfields > 0)
            s_test_vector(fields, nfields, counts);
    }
    fclose(file);
    printf("  vectors: %d hash, %d salt, %d key, %d box\n", counts[0], counts[1], counts[2],
           counts[3]);
    CHECK(counts[0] >= 3 && counts[1] >= 3 && counts[2] >= 3 && counts[3] >= 3);
}

static void
s_test_room_hash(void)
{
    CHECK(sos_e2e_room_hash_valid("0123456789abcdef"));
    CHECK(!sos_e2e_room_hash_valid("0123456789ABCDEF"));
    CHECK(!sos_e2e_room_hash_valid("0123456789abcde"));
    CHECK(!sos_e2e_room_hash_valid("0123456789abcdef0"));
    CHECK(!sos_e2e_room_hash_valid("0123456789abcdeg"));
    CHECK(!sos_e2e_room_hash_valid(""));
    CHECK(!sos_e2e_room_hash_valid(NULL));

    //  Unicode spellings are not normalised: with and without VS16 are two rooms
    char a[SOS_E2E_HASH_CHARS + 1], b[SOS_E2E_HASH_CHARS + 1];
    sos_e2e_room_hash(a, "\xe2\x9d\xa4\xef\xb8\x8f"); //  U+2764 U+FE0F
    sos_e2e_room_hash(b, "\xe2\x9d\xa4");             //  U+2764
    CHECK(strcmp(a, b));
}

static void
s_test_round_trip(void)
{
    uint8_t key[SOS_E2E_KEY_BYTES], other[SOS_E2E_KEY_BYTES];
    const char *emojis = "\xf0\x9f\x94\xa5\xf0\x9f\x8c\x8a\xf0\x9f\xa6\x8a";
    CHECK_RC(sos_e2e_derive_key(key, emojis, "1234", 1700000000000ULL), SOS_OK);
    //  Another PIN, another second or other emojis give other keys
    CHECK_RC(sos_e2e_derive_key(other, emojis, "1235", 1700000000000ULL), SOS_OK);
    CHECK(memcmp(key, other, sizeof key));
    CHECK_RC(sos_e2e_derive_key(other, emojis, "1234", 1700000001000ULL), SOS_OK);
    CHECK(memcmp(key, other, sizeof key));
    CHECK_RC(sos_e2e_derive_key(other, "", "1234", 1700000000000ULL), SOS_ERR_INVALID);

    const char *text = "meet at the north gate \xf0\x9f\x9a\x91";
    char *b64 = NULL, *b64_again = NULL;
    CHECK_RC(sos_e2e_seal(&b64, key, text, strlen(text)), SOS_OK);
    CHECK_RC(sos_e2e_seal(&b64_again, key, text, strlen(text)), SOS_OK);
    //  A fresh nonce each time
    CHECK(b64 && b64_again && strcmp(b64, b64_again));
    free(b64_again);

    char *opened = NULL;
    size_t opened_len = 0;
    CHECK_RC(sos_e2e_open(&opened, &opened_len, key, b64), SOS_OK);
    CHECK(opened && opened_len == strlen(text) && !strcmp(opened, text));
    free(opened);

    //  The wrong key (another PIN)
    CHECK_RC(sos_e2e_derive_key(other, emojis, "1235", 1700000000000ULL), SOS_OK);
    CHECK_RC(sos_e2e_open(&opened, &opened_len, other, b64), SOS_ERR_SIGNATURE);
    CHECK(opened == NULL && opened_len == 0);

    //  Each flipped bit of nonce, ciphertext or MAC is caught
    uint8_t bin[256];
    size_t bin_len = 0;
    CHECK(sodium_base642bin(bin, sizeof bin, b64, strlen(b64), NULL, &bin_len, NULL,
                            sodium_base64_VARIANT_ORIGINAL) == 0);
    int caught = 0;
    for (size_t i = 0; i < bin_len; i++) {
        bin[i] ^= 0x01;
        char tampered[512];
        sodium_bin2base64(tampered, sizeof tampered, bin, bin_len, sodium_base64_VARIANT_ORIGINAL);
        if (sos_e2e_open(&opened, &opened_len, key, tampered) == SOS_ERR_SIGNATURE)
            caught++;
        free(opened);
        bin[i] ^= 0x01;
    }
    CHECK((size_t)caught == bin_len);

    //  Truncated: one byte short of nonce + MAC, or empty
    char short_b64[128];
    sodium_bin2base64(short_b64, sizeof short_b64, bin, SOS_E2E_NONCE_BYTES + SOS_E2E_MAC_BYTES - 1,
                      sodium_base64_VARIANT_ORIGINAL);
    CHECK_RC(sos_e2e_open(&opened, &opened_len, key, short_b64), SOS_ERR_MALFORMED);
    CHECK_RC(sos_e2e_open(&opened, &opened_len, key, ""), SOS_ERR_MALFORMED);
    //  Not base64, URL-safe alphabet, missing padding, trailing garbage
    CHECK_RC(sos_e2e_open(&opened, &opened_len, key, "not base64!"), SOS_ERR_MALFORMED);
    CHECK_RC(sos_e2e_open(&opened, &opened_len, key, "AAAA-_AA"), SOS_ERR_MALFORMED);
    size_t len = strlen(b64);
    char *mangled = (char *)malloc(len + 2);
    memcpy(mangled, b64, len + 1);
    if (len && b64[len - 1] == '=') {
        mangled[len - 1] = 0;
        CHECK(sos_e2e_open(&opened, &opened_len, key, mangled) != SOS_OK);
    }
    memcpy(mangled, b64, len);
    mangled[len] = '*';
    mangled[len + 1] = 0;
    CHECK_RC(sos_e2e_open(&opened, &opened_len, key, mangled), SOS_ERR_MALFORMED);
    free(mangled);
    free(b64);

    //  The empty text seals and opens
    CHECK_RC(sos_e2e_seal(&b64, key, "", 0), SOS_OK);
    CHECK_RC(sos_e2e_open(&opened, &opened_len, key, b64), SOS_OK);
    CHECK(opened && opened_len == 0 && opened[0] == 0);
    free(opened);
    free(b64);

    //  Ceilings
    CHECK_RC(sos_e2e_seal(&b64, key, text, SOS_E2E_TEXT_MAX + 1), SOS_ERR_TOO_LARGE);
    CHECK(b64 == NULL);
    size_t huge_len = 2 * SOS_E2E_TEXT_MAX;
    char *huge = (char *)malloc(huge_len + 1);
    memset(huge, 'A', huge_len);
    huge[huge_len] = 0;
    CHECK_RC(sos_e2e_open(&opened, &opened_len, key, huge), SOS_ERR_TOO_LARGE);
    free(huge);

    sodium_memzero(key, sizeof key);
    sodium_memzero(other, sizeof other);
}

int
main(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "test_e2e: cannot initialise libsodium\n");
        return 1;
    }
    printf("test_e2e\n");
    s_test_vectors();
    s_test_room_hash();
    s_test_round_trip();
    return test_done("test_e2e");
}
