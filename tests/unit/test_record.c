/*  test_record.c: unit tests of protocol/sos_record: sign and decode round trips, and every
    way a record's wire form can be wrong (structure, types, bounds, signature, size). */
#include <msgpack.h>

#include "proto_test.h"
#include "sos_mp.h"

/*  A record written field by field, so that a test can break exactly one thing and still
    sign the result with a key of its choice. */
typedef enum {
    M_NONE,
    M_KIND_STR,
    M_ORIGIN_31,
    M_ORIGIN_33,
    M_ORIGIN_STR,
    M_VERSION_NEG,
    M_VERSION_STR,
    M_VERSION_FLOAT,
    M_PREV_NIL,
    M_URL_BIN,
    M_HASH_BIN,
    M_EMOJIS_INT,
    M_EMOJI_ITEM_INT, /* an element of the emoji list that is not a str */
    M_DESC_NIL,
    M_CREATED_STR,
    M_EXPIRES_NEG,
    M_EXTRA_FIELD,
    M_MISSING_FIELD,
    M_SIGNED_TRAILING, /* a byte after the signed array */
    M_SIGNED_NOT_ARRAY,
    M_SIG_63,
    M_SIG_65,
    M_SIG_STR,
    M_OUTER_3,
    M_OUTER_1,
    M_OUTER_MAP,
    M_SIGNED_STR, /* the signed bytes as a str, not a bin */
    M_HTTP_INT,   /* a worker's http_url as an int */
    M_MAX
} mutation_t;

typedef struct {
    uint64_t kind;
    const uint8_t *origin;
    uint64_t version, prev;
    const char *url;
    size_t url_len;
    const char *hash;
    size_t hash_len;
    const char *http;
    size_t http_len;
    uint32_t n_emojis;
    const char *emojis[8];
    size_t emojis_len[8];
    const char *desc;
    size_t desc_len;
    uint64_t created, expires;
} raw_t;

static void
s_raw_from(raw_t *raw, const sos_record_t *rec)
{
    raw->kind = rec->kind;
    raw->origin = rec->origin;
    raw->version = rec->version;
    raw->prev = rec->prev;
    raw->url = rec->url;
    raw->url_len = strlen(rec->url);
    raw->hash = rec->room_hash;
    raw->hash_len = strlen(rec->room_hash);
    raw->http = rec->http_url;
    raw->http_len = strlen(rec->http_url);
    raw->n_emojis = rec->n_emojis;
    for (uint32_t i = 0; i < rec->n_emojis; i++) {
        raw->emojis[i] = rec->emojis[i];
        raw->emojis_len[i] = strlen(rec->emojis[i]);
    }
    raw->desc = rec->description;
    raw->desc_len = strlen(rec->description);
    raw->created = rec->created_at;
    raw->expires = rec->expires_at;
}

/*  The domain s_build signs in; NULL: no prefix at all. */
static const char *s_domain = SOS_DOMAIN_RECORD;

/*  Pack raw (with mutation m) into wire, signed by signer. Returns the wire length. */
static size_t
s_build(uint8_t *wire, size_t cap, const raw_t *raw, mutation_t m, const sos_identity_t *signer)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bool room = raw->kind == SOS_REC_ROOM;
    size_t fields = room ? 10 : 6;
    if (raw->kind != SOS_REC_WORKER && raw->kind != SOS_REC_ROOM)
        fields = 6;
    if (m == M_SIGNED_NOT_ARRAY)
        msgpack_pack_map(&pk, 0);
    else
        msgpack_pack_array(&pk, fields + (m == M_EXTRA_FIELD) - (m == M_MISSING_FIELD));
    if (m == M_SIGNED_NOT_ARRAY)
        goto sign;
    if (m == M_KIND_STR)
        sos_mp_pack_str(&pk, "1");
    else
        msgpack_pack_uint64(&pk, raw->kind);
    uint8_t origin[33] = {0};
    memcpy(origin, raw->origin, 32);
    if (m == M_ORIGIN_STR)
        sos_mp_pack_strn(&pk, (const char *)origin, 32);
    else
        sos_mp_pack_bin(&pk, origin, m == M_ORIGIN_31 ? 31 : m == M_ORIGIN_33 ? 33 : 32);
    if (m == M_VERSION_NEG)
        msgpack_pack_int64(&pk, -1);
    else if (m == M_VERSION_STR)
        sos_mp_pack_str(&pk, "2");
    else if (m == M_VERSION_FLOAT)
        msgpack_pack_double(&pk, (double)raw->version);
    else
        msgpack_pack_uint64(&pk, raw->version);
    if (m == M_PREV_NIL)
        msgpack_pack_nil(&pk);
    else
        msgpack_pack_uint64(&pk, raw->prev);
    if (m == M_URL_BIN)
        sos_mp_pack_bin(&pk, raw->url, raw->url_len);
    else
        sos_mp_pack_strn(&pk, raw->url, raw->url_len);
    if (!room && m == M_HTTP_INT)
        msgpack_pack_uint8(&pk, 1);
    else if (!room && m != M_MISSING_FIELD)
        sos_mp_pack_strn(&pk, raw->http, raw->http_len);
    if (room) {
        if (m == M_HASH_BIN)
            sos_mp_pack_bin(&pk, raw->hash, raw->hash_len);
        else
            sos_mp_pack_strn(&pk, raw->hash, raw->hash_len);
        if (m == M_EMOJIS_INT)
            msgpack_pack_uint8(&pk, 1);
        else {
            msgpack_pack_array(&pk, raw->n_emojis + (m == M_EMOJI_ITEM_INT));
            for (uint32_t i = 0; i < raw->n_emojis; i++)
                sos_mp_pack_strn(&pk, raw->emojis[i], raw->emojis_len[i]);
            if (m == M_EMOJI_ITEM_INT)
                msgpack_pack_uint8(&pk, 1);
        }
        if (m == M_DESC_NIL)
            msgpack_pack_nil(&pk);
        else
            sos_mp_pack_strn(&pk, raw->desc, raw->desc_len);
        if (m == M_CREATED_STR)
            sos_mp_pack_str(&pk, "1700000000000");
        else
            msgpack_pack_uint64(&pk, raw->created);
        if (m == M_EXPIRES_NEG)
            msgpack_pack_int64(&pk, -5);
        else if (m != M_MISSING_FIELD)
            msgpack_pack_uint64(&pk, raw->expires);
    }
    if (m == M_EXTRA_FIELD)
        msgpack_pack_nil(&pk);
    if (m == M_SIGNED_TRAILING)
        msgpack_pack_nil(&pk);
sign:;
    uint8_t sig[SOS_SIG_BYTES + 1] = {0};
    if (s_domain)
        sos_sign_domain(sig, s_domain, (const uint8_t *)sb.data, sb.size, signer);
    else
        sos_sign(sig, (const uint8_t *)sb.data, sb.size, signer);

    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    if (m == M_OUTER_MAP)
        msgpack_pack_map(&pk, 1);
    else
        msgpack_pack_array(&pk, m == M_OUTER_3 ? 3 : m == M_OUTER_1 ? 1 : 2);
    if (m == M_SIGNED_STR)
        sos_mp_pack_strn(&pk, sb.data, sb.size);
    else
        sos_mp_pack_bin(&pk, sb.data, sb.size);
    if (m != M_OUTER_1) {
        if (m == M_SIG_STR)
            sos_mp_pack_strn(&pk, (const char *)sig, SOS_SIG_BYTES);
        else
            sos_mp_pack_bin(&pk, sig,
                            m == M_SIG_63   ? SOS_SIG_BYTES - 1
                            : m == M_SIG_65 ? SOS_SIG_BYTES + 1
                                            : SOS_SIG_BYTES);
    }
    if (m == M_OUTER_3)
        msgpack_pack_nil(&pk);
    size_t len = out.size <= cap ? out.size : 0;
    if (len)
        memcpy(wire, out.data, len);
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&sb);
    return len;
}

static bool
s_same_fields(const sos_record_t *a, const sos_record_t *b)
{
    return a->kind == b->kind && memcmp(a->origin, b->origin, 32) == 0 &&
           a->version == b->version && a->prev == b->prev && strcmp(a->url, b->url) == 0 &&
           strcmp(a->http_url, b->http_url) == 0 && a->n_emojis == b->n_emojis &&
           memcmp(a->emojis, b->emojis, sizeof a->emojis) == 0 &&
           strcmp(a->room_hash, b->room_hash) == 0 && strcmp(a->description, b->description) == 0 &&
           a->created_at == b->created_at && a->expires_at == b->expires_at &&
           a->wire_len == b->wire_len && memcmp(a->wire, b->wire, a->wire_len) == 0;
}

static void
s_test_round_trip(const sos_identity_t *id)
{
    SECTION("worker and room records: sign, decode, parse, re-encode from raw fields");
    sos_record_t w, r, d;
    test_worker(&w, 5, "tcp://192.0.2.1:7777");
    CHECK_RC(sos_record_sign(&w, id), SOS_OK);
    CHECK(memcmp(w.origin, id->pk, 32) == 0 && w.wire_len > 0);
    CHECK_RC(sos_record_decode(&d, w.wire, w.wire_len), SOS_OK);
    CHECK(s_same_fields(&w, &d));
    CHECK(d.room_hash[0] == 0 && d.created_at == 0);
    CHECK_RC(sos_record_parse(&d, w.wire, w.wire_len), SOS_OK);
    CHECK(s_same_fields(&w, &d));
    snprintf(w.http_url, sizeof w.http_url, "https://sos.example.org:8443");
    CHECK_RC(sos_record_sign(&w, id), SOS_OK);
    CHECK_RC(sos_record_decode(&d, w.wire, w.wire_len), SOS_OK);
    CHECK(s_same_fields(&w, &d) && strcmp(d.http_url, "https://sos.example.org:8443") == 0);

    test_room(&r, 9, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    CHECK_RC(sos_record_decode(&d, r.wire, r.wire_len), SOS_OK);
    CHECK(s_same_fields(&r, &d));

    /* the test's own encoder agrees byte for byte with sos_record_sign */
    raw_t raw;
    uint8_t wire[2048];
    s_raw_from(&raw, &r);
    size_t len = s_build(wire, sizeof wire, &raw, M_NONE, id);
    CHECK(len == r.wire_len && memcmp(wire, r.wire, len) == 0);

    SECTION("the largest room record fits SOS_RECORD_MAX and decodes");
    test_room(&r, UINT64_MAX, "ffffffffffffffff");
    memset(r.url, 'u', SOS_URL_MAX);
    r.url[SOS_URL_MAX] = 0;
    r.n_emojis = SOS_EMOJI_COUNT_MAX;
    for (int i = 0; i < SOS_EMOJI_COUNT_MAX; i++) {
        memset(r.emojis[i], 'e', SOS_EMOJI_BYTES_MAX);
        r.emojis[i][SOS_EMOJI_BYTES_MAX] = 0;
    }
    memset(r.description, 'd', SOS_DESC_MAX);
    r.description[SOS_DESC_MAX] = 0;
    r.created_at = UINT64_MAX - 1;
    r.expires_at = UINT64_MAX;
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    CHECK(r.wire_len <= SOS_RECORD_MAX);
    CHECK_RC(sos_record_decode(&d, r.wire, r.wire_len), SOS_OK);
    CHECK(s_same_fields(&r, &d));
    char joined[SOS_EMOJIS_TEXT_MAX + 1];
    CHECK(sos_record_emojis_join(&d, joined, sizeof joined) == SOS_EMOJIS_TEXT_MAX);

    SECTION("the largest worker record fits too");
    sos_record_t w2;
    test_worker(&w2, UINT64_MAX, "x");
    memset(w2.url, 'u', SOS_URL_MAX);
    w2.url[SOS_URL_MAX] = 0;
    memcpy(w2.http_url, "http://", 7);
    memset(w2.http_url + 7, 'h', SOS_HTTP_URL_MAX - 7 - 6);
    memcpy(w2.http_url + SOS_HTTP_URL_MAX - 6, ":65535", 7);
    CHECK(strlen(w2.http_url) == SOS_HTTP_URL_MAX);
    CHECK_RC(sos_record_sign(&w2, id), SOS_OK);
    CHECK(w2.wire_len <= SOS_RECORD_MAX);
    CHECK_RC(sos_record_decode(&d, w2.wire, w2.wire_len), SOS_OK);
    CHECK(s_same_fields(&w2, &d));

    SECTION("UTF-8 emojis and description of 4-byte characters at the limit");
    test_room(&r, 2, "00000000000000aa");
    r.n_emojis = SOS_EMOJI_COUNT_MAX;
    for (int i = 0; i < SOS_EMOJI_COUNT_MAX; i++) {
        r.emojis[i][0] = 0;
        for (int k = 0; k < SOS_EMOJI_BYTES_MAX / 4; k++)
            strcat(r.emojis[i], "\xf0\x9f\x98\x80");
    }
    snprintf(r.description, sizeof r.description, "caf\xc3\xa9 \xe2\x82\xac \xf4\x8f\xbf\xbf");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    CHECK_RC(sos_record_decode(&d, r.wire, r.wire_len), SOS_OK);
    CHECK(s_same_fields(&r, &d));
    r.description[0] = 0;
    r.n_emojis = 0;
    CHECK_RC(sos_record_sign(&r, id), SOS_OK); /* both may be empty */
    CHECK_RC(sos_record_decode(&d, r.wire, r.wire_len), SOS_OK);
}

static void
s_test_signature(const sos_identity_t *id, const sos_identity_t *other)
{
    SECTION("a flipped signature, a changed field, a record signed by another key");
    sos_record_t r, d;
    test_room(&r, 3, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    uint8_t wire[SOS_RECORD_MAX];
    memcpy(wire, r.wire, r.wire_len);
    wire[r.wire_len - 1] ^= 0x01; /* last byte of the signature */
    CHECK_RC(sos_record_decode(&d, wire, r.wire_len), SOS_ERR_SIGNATURE);
    CHECK(d.wire_len == 0 && d.version == 0);                 /* nothing half-decoded */
    CHECK_RC(sos_record_parse(&d, wire, r.wire_len), SOS_OK); /* stored bytes: no signature */

    /* origin A in the fields, signed by B: the wrong key */
    raw_t raw;
    s_raw_from(&raw, &r);
    uint8_t buf[2048];
    size_t len = s_build(buf, sizeof buf, &raw, M_NONE, other);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_ERR_SIGNATURE);
    /* and B's record re-signed by A */
    sos_record_t rb;
    test_worker(&rb, 1, "tcp://b:1");
    CHECK_RC(sos_record_sign(&rb, other), SOS_OK);
    s_raw_from(&raw, &rb);
    len = s_build(buf, sizeof buf, &raw, M_NONE, id);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_ERR_SIGNATURE);
    len = s_build(buf, sizeof buf, &raw, M_NONE, other);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_OK);

    SECTION("every single-byte change of a signed record is refused");
    for (size_t i = 0; i < r.wire_len; i++) {
        memcpy(wire, r.wire, r.wire_len);
        for (int bit = 0; bit < 8; bit++) {
            wire[i] = r.wire[i] ^ (uint8_t)(1u << bit);
            CHECK(sos_record_decode(&d, wire, r.wire_len) != SOS_OK);
        }
    }
}

static void
s_test_truncation(const sos_identity_t *id)
{
    SECTION("truncation at every byte offset; trailing bytes; oversized");
    sos_record_t r, d;
    test_room(&r, 3, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    for (size_t len = 0; len < r.wire_len; len++) {
        CHECK_RC(sos_record_decode(&d, r.wire, len), SOS_ERR_MALFORMED);
        CHECK_RC(sos_record_parse(&d, r.wire, len), SOS_ERR_CORRUPT);
    }
    uint8_t wire[SOS_RECORD_MAX + 2];
    memcpy(wire, r.wire, r.wire_len);
    wire[r.wire_len] = 0xc0;
    CHECK_RC(sos_record_decode(&d, wire, r.wire_len + 1), SOS_ERR_MALFORMED);
    CHECK_RC(sos_record_parse(&d, wire, r.wire_len + 1), SOS_ERR_CORRUPT);
    memset(wire, 0xc0, sizeof wire);
    CHECK_RC(sos_record_decode(&d, wire, SOS_RECORD_MAX + 1), SOS_ERR_TOO_LARGE);
    CHECK_RC(sos_record_parse(&d, wire, SOS_RECORD_MAX + 1), SOS_ERR_CORRUPT);
    CHECK_RC(sos_record_decode(&d, NULL, 0), SOS_ERR_MALFORMED);

    SECTION("a record padded past SOS_RECORD_MAX inside its signed bytes is too large");
    /* a valid signature over a long url cannot make a record bigger than the cap */
    raw_t raw;
    s_raw_from(&raw, &r);
    char url[1100];
    memset(url, 'u', sizeof url);
    raw.url = url;
    raw.url_len = sizeof url;
    uint8_t buf[2048];
    size_t len = s_build(buf, sizeof buf, &raw, M_NONE, id);
    CHECK(len > SOS_RECORD_MAX);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_ERR_TOO_LARGE);
}

static void
s_test_types(const sos_identity_t *id)
{
    SECTION("every wrong type or element count, correctly signed, is malformed");
    sos_record_t w, r, d;
    test_worker(&w, 2, "tcp://192.0.2.1:7777");
    CHECK_RC(sos_record_sign(&w, id), SOS_OK);
    test_room(&r, 3, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    raw_t rw, rr;
    s_raw_from(&rw, &w);
    s_raw_from(&rr, &r);
    uint8_t buf[2048];
    for (int m = M_NONE + 1; m < M_MAX; m++) {
        size_t len;
        if (m == M_HTTP_INT)
            goto worker; /* a worker field: a room has none */
        len = s_build(buf, sizeof buf, &rr, (mutation_t)m, id);
        sos_rc want = SOS_ERR_MALFORMED;
        if (sos_record_decode(&d, buf, len) != want) {
            fprintf(stderr, "room mutation %d: %s\n", m,
                    sos_strerror(sos_record_decode(&d, buf, len)));
            CHECK(false);
        }
        CHECK_RC(sos_record_parse(&d, buf, len), SOS_ERR_CORRUPT);
        if (m >= M_HASH_BIN && m <= M_EXPIRES_NEG)
            continue; /* room fields: a worker has none */
    worker:
        len = s_build(buf, sizeof buf, &rw, (mutation_t)m, id);
        if (sos_record_decode(&d, buf, len) != want) {
            fprintf(stderr, "worker mutation %d: %s\n", m,
                    sos_strerror(sos_record_decode(&d, buf, len)));
            CHECK(false);
        }
    }
}

static void
s_test_bounds(const sos_identity_t *id)
{
    SECTION("every field bound, correctly signed, is malformed; sign refuses it as invalid");
    sos_record_t r, d;
    test_room(&r, 3, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    uint8_t buf[2048];
    char long_url[SOS_URL_MAX + 1];
    memset(long_url, 'u', sizeof long_url);
    char long_emojis[SOS_EMOJI_BYTES_MAX + 1];
    memset(long_emojis, 'e', sizeof long_emojis);
    char long_desc[SOS_DESC_MAX + 1];
    memset(long_desc, 'd', sizeof long_desc);
    struct {
        const char *what;
        int field; /* 0 url, 1 hash, 2 emojis, 3 desc */
        const char *value;
        size_t len;
    } strs[] = {
        {"empty url", 0, "", 0},
        {"url of 256 bytes", 0, long_url, sizeof long_url},
        {"url with NUL", 0, "tcp://a\0b:1", 11},
        {"room_hash upper case", 1, "0123456789ABCDEF", 16},
        {"room_hash of 15", 1, "0123456789abcde", 15},
        {"room_hash of 17", 1, "0123456789abcdef0", 17},
        {"room_hash not hex", 1, "0123456789abcdeg", 16},
        {"room_hash with NUL", 1, "0123456789abcde\0", 16},
        {"an emoji of 33 bytes", 2, long_emojis, sizeof long_emojis},
        {"an empty emoji", 2, "", 0},
        {"emojis overlong UTF-8", 2, "\xc0\xaf", 2},
        {"emojis truncated UTF-8", 2, "\xf0\x9f\x94", 3},
        {"emojis surrogate", 2, "\xed\xa0\x80", 3},
        {"emojis above U+10FFFF", 2, "\xf4\x90\x80\x80", 4},
        {"emojis stray continuation", 2, "\x80", 1},
        {"emojis 3-byte overlong", 2, "\xe0\x80\xaf", 3},
        {"emojis 4-byte overlong", 2, "\xf0\x80\x80\xaf", 4},
        {"emojis with NUL", 2, "a\0", 2},
        {"description of 141 bytes", 3, long_desc, sizeof long_desc},
        {"description bad UTF-8", 3, "ok \xff", 4},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        raw_t raw;
        s_raw_from(&raw, &r);
        raw.n_emojis = 1;
        const char **ptr[] = {&raw.url, &raw.hash, &raw.emojis[0], &raw.desc};
        size_t *lenp[] = {&raw.url_len, &raw.hash_len, &raw.emojis_len[0], &raw.desc_len};
        *ptr[strs[i].field] = strs[i].value;
        *lenp[strs[i].field] = strs[i].len;
        size_t len = s_build(buf, sizeof buf, &raw, M_NONE, id);
        sos_rc rc = sos_record_decode(&d, buf, len);
        if (rc != SOS_ERR_MALFORMED) {
            fprintf(stderr, "%s: %s\n", strs[i].what, sos_strerror(rc));
            CHECK(false);
        }
        CHECK_RC(sos_record_parse(&d, buf, len), SOS_ERR_CORRUPT);
        /* the same value handed to sign, where it fits in the field as a C string */
        sos_record_t s = r;
        s.n_emojis = 1;
        char *fields[] = {s.url, s.room_hash, s.emojis[0], s.description};
        size_t caps[] = {sizeof s.url, sizeof s.room_hash, sizeof s.emojis[0],
                         sizeof s.description};
        if (strs[i].len < caps[strs[i].field] && !memchr(strs[i].value, 0, strs[i].len)) {
            memcpy(fields[strs[i].field], strs[i].value, strs[i].len);
            fields[strs[i].field][strs[i].len] = 0;
            rc = sos_record_sign(&s, id);
            if (rc != SOS_ERR_INVALID) {
                fprintf(stderr, "sign with %s: %s\n", strs[i].what, sos_strerror(rc));
                CHECK(false);
            }
        }
    }

    struct {
        const char *what;
        uint64_t version, prev, created, expires;
    } nums[] = {
        {"version == prev", 5, 5, 1, 2},
        {"version < prev", 4, 5, 1, 2},
        {"version 0", 0, 0, 1, 2},
        {"expires == created", 5, 4, 100, 100},
        {"expires < created", 5, 4, 100, 99},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        raw_t raw;
        s_raw_from(&raw, &r);
        raw.version = nums[i].version;
        raw.prev = nums[i].prev;
        raw.created = nums[i].created;
        raw.expires = nums[i].expires;
        size_t len = s_build(buf, sizeof buf, &raw, M_NONE, id);
        sos_rc rc = sos_record_decode(&d, buf, len);
        if (rc != SOS_ERR_MALFORMED) {
            fprintf(stderr, "%s: %s\n", nums[i].what, sos_strerror(rc));
            CHECK(false);
        }
        sos_record_t s = r;
        s.version = nums[i].version;
        s.prev = nums[i].prev;
        s.created_at = nums[i].created;
        s.expires_at = nums[i].expires;
        CHECK_RC(sos_record_sign(&s, id), SOS_ERR_INVALID);
    }
    /* a worker's version bound too */
    sos_record_t w;
    test_worker(&w, 1, "tcp://x:1");
    w.prev = 1;
    CHECK_RC(sos_record_sign(&w, id), SOS_ERR_INVALID);
    w.prev = 0;
    w.url[0] = 0;
    CHECK_RC(sos_record_sign(&w, id), SOS_ERR_INVALID);
    w.kind = (sos_rec_kind_t)7;
    snprintf(w.url, sizeof w.url, "tcp://x:1");
    CHECK_RC(sos_record_sign(&w, id), SOS_ERR_INVALID);
}

static void
s_test_v2_fields(const sos_identity_t *id)
{
    SECTION("http_url: only http(s)://host:port; anything else is malformed");
    sos_record_t w, d;
    test_worker(&w, 2, "tcp://192.0.2.1:7777");
    const char *good[] = {"http://a:1", "https://sos.example.org:443", "http://192.0.2.1:8080",
                          "https://[2001:db8::1]:8443", "http://x-y.z:65535"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(w.http_url, sizeof w.http_url, "%s", good[i]);
        CHECK(sos_http_url_valid(good[i], strlen(good[i])));
        CHECK_RC(sos_record_sign(&w, id), SOS_OK);
        CHECK_RC(sos_record_decode(&d, w.wire, w.wire_len), SOS_OK);
    }
    const char *bad[] = {
        "ftp://a:1",      "http://a",         "http://a:",         "http://a:0",
        "http://a:65536", "http://a:123456",  "http://a:80/",      "http://a:80/path",
        "http://:80",     "http://[::1:80",   "http://[]:80",      "http://a b:80",
        "https://a:8x",   "http://user@a:80", "tcp://192.0.2.1:1", "http://.a:80",
        "http://-a:80",   "HTTP://a:80",      "http://a:80?q",     "http://\xc3\xa9:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(!sos_http_url_valid(bad[i], strlen(bad[i])));
        snprintf(w.http_url, sizeof w.http_url, "%s", bad[i]);
        CHECK_RC(sos_record_sign(&w, id), SOS_ERR_INVALID);
        raw_t raw;
        test_worker(&w, 2, "tcp://192.0.2.1:7777");
        s_raw_from(&raw, &w);
        raw.http = bad[i];
        raw.http_len = strlen(bad[i]);
        uint8_t buf[2048];
        size_t len = s_build(buf, sizeof buf, &raw, M_NONE, id);
        if (sos_record_decode(&d, buf, len) != SOS_ERR_MALFORMED) {
            fprintf(stderr, "http_url %s accepted\n", bad[i]);
            CHECK(false);
        }
    }
    char long_http[SOS_HTTP_URL_MAX + 2];
    memcpy(long_http, "http://", 7);
    memset(long_http + 7, 'h', sizeof long_http - 7);
    memcpy(long_http + SOS_HTTP_URL_MAX + 1 - 6, ":65535", 6);
    raw_t raw;
    test_worker(&w, 2, "tcp://192.0.2.1:7777");
    s_raw_from(&raw, &w);
    raw.http = long_http;
    raw.http_len = SOS_HTTP_URL_MAX + 1;
    uint8_t buf[2048];
    size_t len = s_build(buf, sizeof buf, &raw, M_NONE, id);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_ERR_MALFORMED);

    SECTION("emoji list: at most 6; 7 is too large; sign refuses it");
    sos_record_t r;
    test_room(&r, 3, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    s_raw_from(&raw, &r);
    raw.n_emojis = 7;
    for (int i = 0; i < 7; i++) {
        raw.emojis[i] = "\xf0\x9f\x94\xa5";
        raw.emojis_len[i] = 4;
    }
    len = s_build(buf, sizeof buf, &raw, M_NONE, id);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_ERR_TOO_LARGE);
    raw.n_emojis = 6;
    len = s_build(buf, sizeof buf, &raw, M_NONE, id);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_OK);
    CHECK(d.n_emojis == 6 && strcmp(d.emojis[5], "\xf0\x9f\x94\xa5") == 0);
    r.n_emojis = 7;
    CHECK_RC(sos_record_sign(&r, id), SOS_ERR_INVALID);

    SECTION("a room record carries no http_url; sign refuses one");
    test_room(&r, 3, "0123456789abcdef");
    snprintf(r.http_url, sizeof r.http_url, "http://a:1");
    CHECK_RC(sos_record_sign(&r, id), SOS_ERR_INVALID);

    SECTION("domains: a record signed as an envelope, or with no prefix, does not verify");
    test_room(&r, 3, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&r, id), SOS_OK);
    s_raw_from(&raw, &r);
    s_domain = SOS_DOMAIN_ENVELOPE;
    len = s_build(buf, sizeof buf, &raw, M_NONE, id);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_ERR_SIGNATURE);
    s_domain = NULL;
    len = s_build(buf, sizeof buf, &raw, M_NONE, id);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_ERR_SIGNATURE);
    s_domain = SOS_DOMAIN_RECORD;
    len = s_build(buf, sizeof buf, &raw, M_NONE, id);
    CHECK_RC(sos_record_decode(&d, buf, len), SOS_OK);

    SECTION("a version 1 worker record (five fields) is malformed");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, SOS_REC_WORKER);
    sos_mp_pack_bin(&pk, id->pk, 32);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    sos_mp_pack_str(&pk, "tcp://192.0.2.1:1");
    uint8_t sig[SOS_SIG_BYTES];
    sos_sign_domain(sig, SOS_DOMAIN_RECORD, (const uint8_t *)sb.data, sb.size, id);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    sos_mp_pack_bin(&pk, sb.data, sb.size);
    sos_mp_pack_bin(&pk, sig, sizeof sig);
    CHECK_RC(sos_record_decode(&d, (const uint8_t *)out.data, out.size), SOS_ERR_MALFORMED);
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&sb);
}

static void
s_test_emoji_text(void)
{
    SECTION("emoji text: split into emojis (joiners kept together), joined back");
    sos_record_t r;
    memset(&r, 0, sizeof r);
    /* fire, wave, fox; a family joined by ZWJ; a thumbs-up with a skin tone; a flag-like
       pair of letters counts as two */
    const char *text = "\xf0\x9f\x94\xa5\xf0\x9f\x8c\x8a\xf0\x9f\xa6\x8a"
                       "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9"
                       "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd";
    CHECK_RC(sos_record_emojis_split(&r, text), SOS_OK);
    CHECK(r.n_emojis == 5);
    CHECK(strcmp(r.emojis[3], "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9") == 0);
    CHECK(strcmp(r.emojis[4], "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd") == 0);
    char joined[SOS_EMOJIS_TEXT_MAX + 1];
    CHECK(sos_record_emojis_join(&r, joined, sizeof joined) == strlen(text));
    CHECK(strcmp(joined, text) == 0);
    char small[5];
    CHECK(sos_record_emojis_join(&r, small, sizeof small) == 4);
    CHECK_RC(sos_record_emojis_split(&r, ""), SOS_OK);
    CHECK(r.n_emojis == 0);
    CHECK_RC(sos_record_emojis_split(&r, "abcdefg"), SOS_ERR_INVALID); /* seven */
    CHECK(r.n_emojis == 0);
    CHECK_RC(sos_record_emojis_split(&r, "\xc0\xaf"), SOS_ERR_INVALID);
    char long_one[64] = "a";
    for (int i = 0; i < 11; i++)
        strcat(long_one, "\xe2\x80\x8d"); /* 1 + 33 bytes of joiners: one emoji of 34 */
    CHECK_RC(sos_record_emojis_split(&r, long_one), SOS_ERR_INVALID);
}

static void
s_test_kind(const sos_identity_t *id)
{
    SECTION("an unknown kind, correctly signed, is an unknown version");
    sos_record_t w, d;
    test_worker(&w, 2, "tcp://192.0.2.1:7777");
    CHECK_RC(sos_record_sign(&w, id), SOS_OK);
    raw_t raw;
    s_raw_from(&raw, &w);
    uint8_t buf[2048];
    const uint64_t kinds[] = {0, 3, 255, UINT64_MAX};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        raw.kind = kinds[i];
        size_t len = s_build(buf, sizeof buf, &raw, M_NONE, id);
        CHECK_RC(sos_record_decode(&d, buf, len), SOS_ERR_VERSION);
        CHECK_RC(sos_record_parse(&d, buf, len), SOS_ERR_CORRUPT);
    }
    /* a worker's layout under the room kind, and the reverse */
    raw.kind = SOS_REC_ROOM;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint8(&pk, SOS_REC_ROOM);
    sos_mp_pack_bin(&pk, id->pk, 32);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    sos_mp_pack_str(&pk, "tcp://x:1");
    sos_mp_pack_str(&pk, "");
    uint8_t sig[SOS_SIG_BYTES];
    sos_sign_domain(sig, SOS_DOMAIN_RECORD, (const uint8_t *)sb.data, sb.size, id);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    sos_mp_pack_bin(&pk, sb.data, sb.size);
    sos_mp_pack_bin(&pk, sig, sizeof sig);
    CHECK_RC(sos_record_decode(&d, (const uint8_t *)out.data, out.size), SOS_ERR_MALFORMED);
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&sb);
}

static void
s_test_room_hash(void)
{
    SECTION("sos_room_hash_valid");
    CHECK(sos_room_hash_valid("0123456789abcdef", 16));
    CHECK(!sos_room_hash_valid("0123456789abcdef", 15));
    CHECK(!sos_room_hash_valid("0123456789abcdeF", 16));
    CHECK(!sos_room_hash_valid("0123456789abcde-", 16));
    CHECK(!sos_room_hash_valid(NULL, 16));
}

int
main(void)
{
    test_init("test_record: signed worker and room records");
    sos_identity_t id, other;
    test_seed_identity(&id, 0);
    sos_identity_generate(&other);
    s_test_round_trip(&id);
    s_test_signature(&id, &other);
    s_test_truncation(&id);
    s_test_types(&id);
    s_test_bounds(&id);
    s_test_kind(&id);
    s_test_v2_fields(&id);
    s_test_emoji_text();
    s_test_room_hash();
    return test_done("test_record");
}
