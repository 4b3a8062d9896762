/*  fuzz_common.h: what the fuzz targets and the corpus generator share: the libFuzzer entry
    point's prototype, fixed identities and clock, a reader of fuzzer bytes, and a check macro. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sos_error.h"
#include "sos_identity.h"
#include "sos_mp.h"
#include "sos_record.h"

/*  libFuzzer calls this once per input; it returns 0. Defined by each fuzz_*.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*  The wall clock every target and every seed uses, so that runs are reproducible. */
#define FUZZ_NOW_MS 1700000000000ULL

/*  A property of the code under test does not hold: report and abort, which libFuzzer
    records as a crash with the input that caused it. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*  Initialise libsodium once and return the fixed identity number which (0 or 1): key pairs
    from the seeds which*32 + 0, 1, ..., 31. The seed corpus is signed with these keys. */
static inline const sos_identity_t *
fuzz_identity(int which)
{
    static sos_identity_t ids[2];
    static int ready;
    if (!ready) {
        if (sos_crypto_init() != SOS_OK)
            abort();
        for (int k = 0; k < 2; k++) {
            uint8_t seed[crypto_sign_SEEDBYTES];
            for (size_t i = 0; i < sizeof seed; i++)
                seed[i] = (uint8_t)(k * 32 + i);
            crypto_sign_seed_keypair(ids[k].pk, ids[k].sk, seed);
        }
        ready = 1;
    }
    return &ids[which & 1];
}

/*  Fuzzer bytes read as a stream of fields. Reading past the end gives zeros and empty
    strings, so that every input maps to some value of every field. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_in_t;

static inline uint8_t
fuzz_u8(fuzz_in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

/*  A uint of 0 to 8 bytes, big-endian; the first byte says how many follow (mod 9), so that
    small and extreme values are both easy to reach. */
static inline uint64_t
fuzz_u64(fuzz_in_t *in)
{
    uint8_t n = fuzz_u8(in) % 9;
    uint64_t v = 0;
    for (uint8_t i = 0; i < n; i++)
        v = (v << 8) | fuzz_u8(in);
    return v;
}

/*  A length-prefixed run of at most max bytes (one length byte, or two if max > 255); points
 *ptr into the input and returns its length. */
static inline size_t
fuzz_bytes(fuzz_in_t *in, const uint8_t **ptr, size_t max)
{
    size_t len = fuzz_u8(in);
    if (max > 255)
        len = (len << 8) | fuzz_u8(in);
    if (len > max)
        len = max;
    if (len > in->n)
        len = in->n;
    *ptr = in->p;
    in->p += len;
    in->n -= len;
    return len;
}

/*  A length-prefixed string copied to dest (cap bytes, NUL-terminated). */
static inline void
fuzz_str(fuzz_in_t *in, char *dest, size_t cap)
{
    const uint8_t *p;
    size_t len = fuzz_bytes(in, &p, cap - 1);
    if (len)
        memcpy(dest, p, len);
    dest[len] = '\0';
}

/*  Fill rec's fields (not its wire form) from fuzzer bytes. A flag byte steers a few fields
    towards valid values (prev below version, a well-formed room hash, a later expiry), so
    that signing succeeds often enough for the decoders of signed records to be reached. */
static inline void
fuzz_record_fields(fuzz_in_t *in, sos_record_t *rec)
{
    memset(rec, 0, sizeof *rec);
    uint8_t flags = fuzz_u8(in);
    rec->kind = (sos_rec_kind_t)(fuzz_u8(in) % 3); /* 0 is no kind */
    rec->version = fuzz_u64(in);
    if ((flags & 1) && rec->version)
        rec->prev = rec->version - 1 - fuzz_u8(in) % rec->version;
    else
        rec->prev = fuzz_u64(in);
    fuzz_str(in, rec->url, sizeof rec->url);
    if (flags & 2) {
        uint8_t raw[SOS_ROOMHASH_LEN / 2];
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = fuzz_u8(in);
        sos_hex(rec->room_hash, raw, sizeof raw);
    } else
        fuzz_str(in, rec->room_hash, sizeof rec->room_hash);
    if (flags & 8)
        snprintf(rec->http_url, sizeof rec->http_url, "http://h%u:%u", fuzz_u8(in),
                 fuzz_u8(in) * 300u);
    else
        fuzz_str(in, rec->http_url, sizeof rec->http_url);
    rec->n_emojis = fuzz_u8(in) % (SOS_EMOJI_COUNT_MAX + 2); /* one too many, at times */
    for (uint32_t i = 0; i < rec->n_emojis && i < SOS_EMOJI_COUNT_MAX; i++)
        fuzz_str(in, rec->emojis[i], sizeof rec->emojis[i]);
    fuzz_str(in, rec->description, sizeof rec->description);
    rec->created_at = fuzz_u64(in);
    rec->expires_at = (flags & 4) ? rec->created_at + 1 + fuzz_u8(in) : fuzz_u64(in);
}

/*  Sign again, with id, the signed part of a record wire form (the first element when wire is
    [bin, ...], else wire itself) and append the new wire form [signed, sig] to out. Mutations
    of a valid record then reach the code that runs after its signature is verified. */
static inline void
fuzz_resign(msgpack_sbuffer *out, const uint8_t *wire, size_t len, const sos_identity_t *id)
{
    const uint8_t *signed_ptr = wire;
    size_t signed_len = len;
    sos_mp_doc_t doc;
    const msgpack_object *items;
    uint32_t count;
    if (sos_mp_parse(&doc, wire, len) == SOS_OK && sos_mp_array(doc.root, &items, &count, 8) &&
        count >= 1)
        (void)sos_mp_bin(&items[0], &signed_ptr, &signed_len, len);
    uint8_t sig[SOS_SIG_BYTES];
    sos_sign_domain(sig, SOS_DOMAIN_RECORD, signed_ptr, signed_len, id);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    sos_mp_pack_bin(&pk, signed_ptr, signed_len);
    sos_mp_pack_bin(&pk, sig, sizeof sig);
    sos_mp_doc_release(&doc);
}

#endif
