/*  fuzz_record.c: libFuzzer target for protocol/sos_record: decoding (verified) and parsing
    (stored) of worker and room records, records re-signed by the harness, and signing fields. */
#include <msgpack.h>

#include "fuzz_common.h"
#include "sos_record.h"

/*  Decoded fields agree with what was signed. */
static void
s_check_same(const sos_record_t *a, const sos_record_t *b)
{
    FUZZ_CHECK(a->kind == b->kind && a->version == b->version && a->prev == b->prev);
    FUZZ_CHECK(memcmp(a->origin, b->origin, SOS_NODEID_BYTES) == 0);
    FUZZ_CHECK(strcmp(a->url, b->url) == 0);
    if (a->kind != SOS_REC_ROOM) {
        FUZZ_CHECK(strcmp(a->http_url, b->http_url) == 0);
        FUZZ_CHECK(b->http_url[0] == 0 || sos_http_url_valid(b->http_url, strlen(b->http_url)));
        return; /* the room fields of a worker are not signed */
    }
    FUZZ_CHECK(strcmp(a->room_hash, b->room_hash) == 0);
    FUZZ_CHECK(a->n_emojis == b->n_emojis && b->n_emojis <= SOS_EMOJI_COUNT_MAX);
    for (uint32_t i = 0; i < b->n_emojis; i++)
        FUZZ_CHECK(strcmp(a->emojis[i], b->emojis[i]) == 0 && b->emojis[i][0] != 0);
    char joined[SOS_EMOJIS_TEXT_MAX + 1];
    FUZZ_CHECK(sos_record_emojis_join(b, joined, sizeof joined) <= SOS_EMOJIS_TEXT_MAX);
    FUZZ_CHECK(strcmp(a->description, b->description) == 0);
    FUZZ_CHECK(a->created_at == b->created_at && a->expires_at == b->expires_at);
}

/*  What decode accepts, parse accepts with the same result; what parse refuses, decode
    refuses; a signature is refused only when the origin is not the signer (expect, or NULL). */
static void
s_decode(const uint8_t *wire, size_t len, const uint8_t *signer)
{
    static sos_record_t rec, stored; /* static: 2 KB each */
    sos_rc rc = sos_record_decode(&rec, wire, len);
    sos_rc prc = sos_record_parse(&stored, wire, len);
    FUZZ_CHECK(prc == SOS_OK || prc == SOS_ERR_CORRUPT);
    if (rc == SOS_OK) {
        FUZZ_CHECK(prc == SOS_OK && memcmp(&rec, &stored, sizeof rec) == 0);
        FUZZ_CHECK(rec.wire_len == len && memcmp(rec.wire, wire, len) == 0);
        FUZZ_CHECK(rec.kind == SOS_REC_WORKER || rec.kind == SOS_REC_ROOM);
        FUZZ_CHECK(rec.version > rec.prev && rec.url[0] != '\0');
        if (rec.kind == SOS_REC_ROOM)
            FUZZ_CHECK(sos_room_hash_valid(rec.room_hash, strlen(rec.room_hash)) &&
                       rec.expires_at > rec.created_at);
        if (signer)
            FUZZ_CHECK(memcmp(rec.origin, signer, SOS_NODEID_BYTES) == 0);
    } else {
        FUZZ_CHECK(rec.wire_len == 0 && rec.kind == 0);
        if (rc == SOS_ERR_SIGNATURE) {
            FUZZ_CHECK(prc == SOS_OK);
            if (signer)
                FUZZ_CHECK(memcmp(stored.origin, signer, SOS_NODEID_BYTES) != 0);
        } else
            FUZZ_CHECK(prc == SOS_ERR_CORRUPT);
    }
}

/*  The bytes as a record's fields, signed by a fixed identity: signing refuses bad fields
    and decoding gives back what was signed. */
static void
s_fields(const uint8_t *data, size_t size)
{
    static sos_record_t rec, back;
    fuzz_in_t in = {data, size};
    const sos_identity_t *id = fuzz_identity(fuzz_u8(&in));
    fuzz_record_fields(&in, &rec);
    sos_rc rc = sos_record_sign(&rec, id);
    if (rc) {
        FUZZ_CHECK(rc == SOS_ERR_INVALID && rec.wire_len == 0);
        return;
    }
    FUZZ_CHECK(rec.wire_len > 0 && rec.wire_len <= SOS_RECORD_MAX);
    FUZZ_CHECK(sos_record_decode(&back, rec.wire, rec.wire_len) == SOS_OK);
    s_check_same(&rec, &back);
    FUZZ_CHECK(memcmp(back.origin, id->pk, SOS_NODEID_BYTES) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sos_identity_t *id = fuzz_identity(0);
    s_decode(data, size, NULL);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    fuzz_resign(&sb, data, size, id);
    s_decode((const uint8_t *)sb.data, sb.size, id->pk);
    msgpack_sbuffer_destroy(&sb);

    s_fields(data, size);
    return 0;
}
