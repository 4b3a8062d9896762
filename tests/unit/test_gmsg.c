/*  test_gmsg.c: unit tests of protocol/sos_gmsg: gossip bodies round trip, caps, and the
    rule that one bad record (or a bad self) rejects the whole message. */
#include <msgpack.h>

#include "proto_test.h"
#include "sos_gmsg.h"
#include "sos_mp.h"

static void
s_fill(sos_gmsg_t *msg, const sos_identity_t *id)
{
    memset(msg, 0, sizeof *msg);
    msg->req_id = 77;
    msg->flags = SOS_GMSG_MORE;
    for (int i = 0; i < SOS_DIGEST_HASH_BYTES; i++)
        msg->hash[i] = (uint8_t)i;
    msg->n_origins = 3;
    msg->has_self = true;
    test_worker(&msg->self, 4, "tcp://192.0.2.1:7777");
    sos_record_sign(&msg->self, id);
}

static void
s_test_digest_hash(void)
{
    SECTION("digest hash: independent of order, changed by any version, not linear");
    sos_digest_entry_t a[4], b[4];
    memset(a, 0, sizeof a);
    uint8_t ha[SOS_DIGEST_HASH_BYTES], hb[SOS_DIGEST_HASH_BYTES];
    for (int i = 0; i < 4; i++) {
        memset(a[i].origin, 0x10 + i, 32);
        a[i].version = 100 + (uint64_t)i;
        b[3 - i] = a[i];
    }
    sos_digest_hash(ha, a, 4);
    sos_digest_hash(hb, b, 4);
    CHECK(memcmp(ha, hb, sizeof ha) == 0);
    CHECK(memcmp(b[0].origin, a[0].origin, 32) == 0); /* sorted in place */
    b[2].version++;
    sos_digest_hash(hb, b, 4);
    CHECK(memcmp(ha, hb, sizeof ha) != 0);
    /*  Under an XOR of per-entry hashes, two equal entries cancel: {x, x, p, q} and
        {p, q, y, y} would match with the same count. */
    sos_digest_entry_t x[4], y[4];
    memset(x, 0, sizeof x);
    memset(y, 0, sizeof y);
    memset(x[0].origin, 1, 32);
    x[1] = x[0];
    memset(x[2].origin, 2, 32);
    memset(x[3].origin, 3, 32);
    y[0] = x[2];
    y[1] = x[3];
    memset(y[2].origin, 4, 32);
    y[3] = y[2];
    sos_digest_hash(ha, x, 4);
    sos_digest_hash(hb, y, 4);
    CHECK(memcmp(ha, hb, sizeof ha) != 0);
    /*  A removal at a version is not a record at that version: the flag is hashed. */
    sos_digest_hash(ha, a, 4);
    a[1].removed = true;
    sos_digest_hash(hb, a, 4);
    CHECK(memcmp(ha, hb, sizeof ha) != 0);
    a[1].removed = false;
    /*  The count is hashed too: the empty digest and one entry of zeros differ. */
    sos_digest_entry_t zero;
    memset(&zero, 0, sizeof zero);
    sos_digest_hash(ha, NULL, 0);
    sos_digest_hash(hb, &zero, 1);
    CHECK(memcmp(ha, hb, sizeof ha) != 0);
}

static void
s_test_round_trip(const sos_identity_t *id, const sos_identity_t *other)
{
    SECTION("every field round trips; records are relayed in their signed bytes");
    sos_gmsg_t msg;
    s_fill(&msg, id);
    msg.n_suspects = 2;
    memcpy(msg.suspects[0].origin, other->pk, 32);
    msg.suspects[0].version = 41;
    memset(msg.suspects[1].origin, 0xab, 32);
    msg.suspects[1].version = UINT64_MAX;
    msg.suspects[0].age_ms = 250;
    msg.suspects[1].age_ms = UINT32_MAX;
    sos_digest_entry_t digest[3], want[1];
    memset(digest, 0, sizeof digest);
    memset(want, 0, sizeof want);
    for (int i = 0; i < 3; i++) {
        memset(digest[i].origin, i + 1, 32);
        digest[i].version = 1000 + (uint64_t)i;
    }
    digest[1].removed = true; /* a removal travels with the digest */
    memset(want[0].origin, 9, 32);
    want[0].removed = true; /* a want carries no flag: not encoded */
    want[0].version = UINT64_MAX;
    msg.digest = digest;
    msg.n_digest = 3;
    msg.want = want;
    msg.n_want = 1;
    sos_record_t recs[2];
    test_room(&recs[0], 5, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&recs[0], id), SOS_OK);
    test_worker(&recs[1], 8, "tcp://198.51.100.7:9000");
    CHECK_RC(sos_record_sign(&recs[1], other), SOS_OK);
    const uint8_t *wires[2] = {recs[0].wire, recs[1].wire};
    size_t lens[2] = {recs[0].wire_len, recs[1].wire_len};

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, lens, 2), SOS_OK);
    sos_gmsg_t d;
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(d.req_id == 77 && d.flags == SOS_GMSG_MORE && d.n_origins == 3);
    CHECK(memcmp(d.hash, msg.hash, SOS_DIGEST_HASH_BYTES) == 0);
    CHECK(d.has_self && d.self.wire_len == msg.self.wire_len &&
          memcmp(d.self.wire, msg.self.wire, msg.self.wire_len) == 0);
    CHECK(d.self.version == 4 && strcmp(d.self.url, "tcp://192.0.2.1:7777") == 0);
    CHECK(d.n_suspects == 2 && memcmp(d.suspects[0].origin, other->pk, 32) == 0 &&
          d.suspects[0].version == 41 && d.suspects[1].origin[31] == 0xab &&
          d.suspects[1].version == UINT64_MAX && d.suspects[0].age_ms == 250 &&
          d.suspects[1].age_ms == UINT32_MAX);
    CHECK(d.n_digest == 3 && d.digest && d.digest[2].version == 1002 && d.digest[2].origin[0] == 3);
    CHECK(d.digest && !d.digest[0].removed && d.digest[1].removed && !d.digest[2].removed);
    CHECK(d.n_want == 1 && d.want && d.want[0].version == UINT64_MAX && !d.want[0].removed);
    CHECK(d.n_records == 2 && d.records);
    if (d.n_records == 2) {
        CHECK(d.records[0].kind == SOS_REC_ROOM &&
              strcmp(d.records[0].room_hash, "0123456789abcdef") == 0);
        CHECK(d.records[1].kind == SOS_REC_WORKER &&
              memcmp(d.records[1].origin, other->pk, 32) == 0);
        CHECK(d.records[1].wire_len == lens[1] &&
              memcmp(d.records[1].wire, wires[1], lens[1]) == 0);
    }
    sos_gmsg_release(&d);
    CHECK(d.digest == NULL && d.records == NULL && d.n_records == 0);
    sos_gmsg_release(&d); /* idempotent */

    SECTION("every single-bit change is refused or decodes to something else");
    uint8_t *frame = (uint8_t *)malloc(sb.size);
    CHECK(frame);
    for (size_t i = 0; frame && i < sb.size; i++) {
        memcpy(frame, sb.data, sb.size);
        frame[i] ^= 0x01;
        sos_rc rc = sos_gmsg_decode(&d, frame, sb.size);
        CHECK(rc == SOS_OK || rc == SOS_ERR_MALFORMED || rc == SOS_ERR_SIGNATURE ||
              rc == SOS_ERR_TOO_LARGE || rc == SOS_ERR_VERSION);
        sos_gmsg_release(&d);
    }

    SECTION("truncation at every byte offset; a trailing byte");
    for (size_t l = 0; l < sb.size; l++) {
        CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, l), SOS_ERR_MALFORMED);
        sos_gmsg_release(&d);
    }
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_ERR_MALFORMED);
    sos_gmsg_release(&d);
    free(frame);
    msgpack_sbuffer_destroy(&sb);

    SECTION("an empty message: nil self, empty lists");
    memset(&msg, 0, sizeof msg);
    msgpack_sbuffer_init(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_OK);
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(!d.has_self && d.n_digest == 0 && d.digest == NULL && d.n_records == 0);
    sos_gmsg_release(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void
s_test_caps(const sos_identity_t *id)
{
    SECTION("the largest digest and batch pass; one more is too large, both ways");
    sos_gmsg_t msg;
    s_fill(&msg, id);
    msg.has_self = false;
    sos_digest_entry_t *digest =
        (sos_digest_entry_t *)calloc(SOS_DIGEST_MAX + 1, sizeof(sos_digest_entry_t));
    CHECK(digest);
    if (!digest)
        return;
    for (uint32_t i = 0; i <= SOS_DIGEST_MAX; i++) {
        memcpy(digest[i].origin, &i, sizeof i);
        digest[i].version = i;
    }
    msg.digest = digest;
    msg.want = digest;
    msg.n_digest = SOS_DIGEST_MAX;
    msg.n_want = SOS_DIGEST_MAX;
    sos_record_t rec;
    test_worker(&rec, 1, "tcp://x:1");
    CHECK_RC(sos_record_sign(&rec, id), SOS_OK);
    const uint8_t *wires[SOS_BATCH_MAX + 1];
    size_t lens[SOS_BATCH_MAX + 1];
    for (int i = 0; i <= SOS_BATCH_MAX; i++) {
        wires[i] = rec.wire;
        lens[i] = rec.wire_len;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, lens, SOS_BATCH_MAX), SOS_OK);
    sos_gmsg_t d;
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(d.n_digest == SOS_DIGEST_MAX && d.n_want == SOS_DIGEST_MAX &&
          d.n_records == SOS_BATCH_MAX);
    CHECK(d.digest && d.digest[SOS_DIGEST_MAX - 1].version == SOS_DIGEST_MAX - 1);
    sos_gmsg_release(&d);

    size_t before = sb.size;
    msg.n_digest = SOS_DIGEST_MAX + 1;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, lens, 1), SOS_ERR_TOO_LARGE);
    msg.n_digest = 1;
    msg.n_want = SOS_DIGEST_MAX + 1;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, lens, 1), SOS_ERR_TOO_LARGE);
    msg.n_want = 1;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, lens, SOS_BATCH_MAX + 1), SOS_ERR_TOO_LARGE);
    msg.n_suspects = SOS_SUSPECTS_MAX + 1;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, lens, 1), SOS_ERR_TOO_LARGE);
    msg.n_suspects = 0;
    size_t big = SOS_RECORD_MAX + 1;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, &big, 1), SOS_ERR_TOO_LARGE);
    msg.digest = NULL;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, lens, 1), SOS_ERR_INVALID);
    msg.digest = digest;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 1), SOS_ERR_INVALID);
    CHECK(sb.size == before);
    msgpack_sbuffer_destroy(&sb);

    /* Hand-built bodies past each cap. Element counts fit the bytes, so only the caps
       refuse them. */
    msgpack_packer pk;
    const struct {
        const char *what;
        int field;
        uint32_t count;
    } over[] = {
        {"17 suspects", 5, SOS_SUSPECTS_MAX + 1},
        {"8193 digest entries", 6, SOS_DIGEST_MAX + 1},
        {"8193 want entries", 7, SOS_DIGEST_MAX + 1},
        {"513 records", 8, SOS_BATCH_MAX + 1},
    };
    for (size_t c = 0; c < sizeof over / sizeof over[0]; c++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 9);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint8(&pk, 0);
        sos_mp_pack_bin(&pk, msg.hash, 16);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_nil(&pk);
        for (int f = 5; f <= 8; f++) {
            uint32_t n = over[c].field == f ? over[c].count : 0;
            msgpack_pack_array(&pk, n);
            for (uint32_t i = 0; i < n; i++) {
                if (f == 8)
                    sos_mp_pack_bin(&pk, "x", 1); /* never decoded: the count is checked first */
                else {
                    msgpack_pack_array(&pk, 2);
                    sos_mp_pack_bin(&pk, digest[i].origin, 32);
                    msgpack_pack_uint32(&pk, i);
                }
            }
        }
        sos_rc rc = sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size);
        if (rc != SOS_ERR_TOO_LARGE) {
            fprintf(stderr, "%s: %s\n", over[c].what, sos_strerror(rc));
            CHECK(false);
        }
        CHECK(d.digest == NULL && d.records == NULL);
        sos_gmsg_release(&d);
        msgpack_sbuffer_destroy(&sb);
    }
    free(digest);
}

/*  A body with one field replaced by raw msgpack bytes. */
static size_t
s_body_fields(uint8_t *out, size_t cap, int fields, int field, const uint8_t *raw, size_t raw_len,
              const sos_record_t *self, const sos_record_t *rec)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)fields);
    uint8_t hash[16] = {0}, origin[32] = {0};
    for (int f = 0; f < fields; f++) {
        if (f == field) {
            msgpack_sbuffer_write(&sb, (const char *)raw, raw_len);
            continue;
        }
        switch (f) {
        case 0:
        case 1:
        case 3:
            msgpack_pack_uint8(&pk, 1);
            break;
        case 2:
            sos_mp_pack_bin(&pk, hash, 16);
            break;
        case 4:
            if (self)
                sos_mp_pack_bin(&pk, self->wire, self->wire_len);
            else
                msgpack_pack_nil(&pk);
            break;
        case 5:
        case 6:
        case 7:
            msgpack_pack_array(&pk, 1);
            /* a digest entry carries removed, a suspect its age */
            msgpack_pack_array(&pk, f == 7 ? 2 : 3);
            sos_mp_pack_bin(&pk, origin, 32);
            msgpack_pack_uint8(&pk, 1);
            if (f == 6)
                msgpack_pack_false(&pk);
            else if (f == 5)
                msgpack_pack_uint16(&pk, 300);
            break;
        case 8:
            msgpack_pack_array(&pk, rec ? 1 : 0);
            if (rec)
                sos_mp_pack_bin(&pk, rec->wire, rec->wire_len);
            break;
        default:
            msgpack_pack_nil(&pk);
            break;
        }
    }
    size_t len = sb.size <= cap ? sb.size : 0;
    memcpy(out, sb.data, len);
    msgpack_sbuffer_destroy(&sb);
    return len;
}

static size_t
s_body_with(uint8_t *out, size_t cap, int field, const uint8_t *raw, size_t raw_len,
            const sos_record_t *self, const sos_record_t *rec)
{
    return s_body_fields(out, cap, 9, field, raw, raw_len, self, rec);
}

static void
s_test_rejections(const sos_identity_t *id, const sos_identity_t *other)
{
    sos_record_t self, rec;
    test_worker(&self, 2, "tcp://192.0.2.1:7777");
    CHECK_RC(sos_record_sign(&self, id), SOS_OK);
    test_room(&rec, 3, "0123456789abcdef");
    CHECK_RC(sos_record_sign(&rec, id), SOS_OK);
    uint8_t body[4096];
    sos_gmsg_t d;
    size_t len = s_body_with(body, sizeof body, -1, NULL, 0, &self, &rec);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_OK);
    sos_gmsg_release(&d);

    SECTION("wrong types in every field are malformed");
    const struct {
        int field;
        const char *raw;
        size_t len;
    } bad[] = {
        {0, "\xa1x", 2},                                /* req_id a str */
        {0, "\xff", 1},                                 /* req_id negative */
        {1, "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9}, /* flags above 32 bits */
        {2,
         "\xc4\x0f"
         "0123456789abcde",
         17}, /* hash of 15 */
        {2,
         "\xc4\x11"
         "0123456789abcdef0",
         19},                           /* hash of 17 */
        {2, "\xc0", 1},                 /* hash nil */
        {3, "\xce\xff\xff\xff\xff", 5}, /* n_origins at 32 bits is fine: below */
        {3, "\xa0", 1},                 /* n_origins a str */
        {4, "\x01", 1},                 /* self an int */
        {4, "\xa1x", 2},                /* self a str */
        {5, "\xc0", 1},                 /* suspects nil */
        {5, "\x91\xc4\x01x", 4},        /* a suspect of 1 byte */
        {5, "\x91\xa1x", 3},            /* a suspect str */
        {5,
         "\x91\xc4\x20"
         "0123456789abcdef0123456789abcdef",
         35},                                /* a bare id: the suspects of version 1 */
        {5, "\x91\x93\xc4\x01x\x01\x01", 7}, /* a suspect id of 1 byte */
        {5,
         "\x91\x92\xc4\x20"
         "0123456789abcdef0123456789abcdef"
         "\x01",
         37}, /* a suspect without its age */
        {5,
         "\x91\x93\xc4\x20"
         "0123456789abcdef0123456789abcdef"
         "\x01\xcf\x00\x00\x00\x01\x00\x00\x00\x00",
         47}, /* an age above 32 bits */
        {5,
         "\x91\x93\xc4\x20"
         "0123456789abcdef0123456789abcdef"
         "\x01\xa1x",
         39}, /* an age str */
        {5,
         "\x91\x93\xc4\x20"
         "0123456789abcdef0123456789abcdef"
         "\xa1x\x01",
         38},                               /* a suspect version str */
        {6, "\x80", 1},                     /* digest a map */
        {6, "\x91\x91\xc0", 3},             /* an entry of 1 element */
        {6, "\x91\x93\xc4\x00\x01\x01", 6}, /* an entry of 3 elements */
        {6,
         "\x91\x92\xc4\x20"
         "0123456789abcdef0123456789abcdef"
         "\x01",
         37}, /* an entry without removed */
        {6,
         "\x91\x93\xc4\x20"
         "0123456789abcdef0123456789abcdef"
         "\x01\x01",
         38}, /* removed not a bool */
        {7,
         "\x91\x93\xc4\x20"
         "0123456789abcdef0123456789abcdef"
         "\x01\xc2",
         38},                            /* a want with removed */
        {7, "\x91\x92\xc4\x01x\x01", 6}, /* origin of 1 byte */
        {7,
         "\x91\x92\xc4\x20"
         "0123456789abcdef0123456789abcdef"
         "\xff",
         37},                /* version < 0 */
        {8, "\x91\xa1x", 3}, /* a record str */
        {8, "\x91\xc0", 2},  /* a record nil */
        {8, "\xc0", 1},      /* records nil */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        len = s_body_with(body, sizeof body, bad[i].field, (const uint8_t *)bad[i].raw, bad[i].len,
                          &self, &rec);
        sos_rc rc = sos_gmsg_decode(&d, body, len);
        sos_rc want = i == 6 ? SOS_OK : SOS_ERR_MALFORMED;
        if (rc != want) {
            fprintf(stderr, "bad field %d (case %zu): %s\n", bad[i].field, i, sos_strerror(rc));
            CHECK(false);
        }
        sos_gmsg_release(&d);
    }

    SECTION("element count: 8 and 10 fields, and not an array");
    len = s_body_fields(body, sizeof body, 8, -1, NULL, 0, &self, &rec);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_MALFORMED);
    sos_gmsg_release(&d);
    len = s_body_fields(body, sizeof body, 10, -1, NULL, 0, &self, &rec);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_MALFORMED);
    sos_gmsg_release(&d);
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)"\x80", 1), SOS_ERR_MALFORMED);
    sos_gmsg_release(&d);
    CHECK_RC(sos_gmsg_decode(&d, NULL, 0), SOS_ERR_MALFORMED);
    sos_gmsg_release(&d);

    SECTION("counts that claim more than the bytes are refused before any allocation");
    len =
        s_body_with(body, sizeof body, 6, (const uint8_t *)"\xdd\xff\xff\xff\xff", 5, &self, &rec);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_MALFORMED);
    sos_gmsg_release(&d);
    len = s_body_with(body, sizeof body, 8, (const uint8_t *)"\xdc\x02\x00", 3, &self, &rec);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_MALFORMED); /* 512 claimed, few bytes */
    sos_gmsg_release(&d);

    SECTION("one bad record, or a bad self, rejects the whole message with its error");
    sos_record_t bad_sig = rec;
    bad_sig.wire[bad_sig.wire_len - 1] ^= 1;
    len = s_body_with(body, sizeof body, -1, NULL, 0, &self, &bad_sig);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_SIGNATURE);
    CHECK(d.records == NULL && d.n_records == 0 && d.digest == NULL && !d.has_self);
    sos_gmsg_release(&d);
    len = s_body_with(body, sizeof body, -1, NULL, 0, &bad_sig, &rec);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_SIGNATURE);
    sos_gmsg_release(&d);
    sos_record_t cut = rec;
    cut.wire_len -= 1;
    len = s_body_with(body, sizeof body, -1, NULL, 0, &self, &cut);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_MALFORMED);
    sos_gmsg_release(&d);
    /* the last of many records is bad */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    sos_gmsg_t msg;
    s_fill(&msg, id);
    const uint8_t *wires[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        wires[i] = rec.wire;
        lens[i] = rec.wire_len;
    }
    wires[9] = bad_sig.wire;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, wires, lens, 10), SOS_OK);
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_ERR_SIGNATURE);
    CHECK(d.records == NULL && d.n_records == 0);
    sos_gmsg_release(&d);
    msgpack_sbuffer_destroy(&sb);

    SECTION("a record of another node re-signed by the sender is a bad signature");
    sos_record_t theirs;
    test_worker(&theirs, 1, "tcp://203.0.113.9:1");
    CHECK_RC(sos_record_sign(&theirs, other), SOS_OK);
    sos_record_t forged = theirs;
    CHECK_RC(sos_record_sign(&forged, id), SOS_OK); /* sign sets origin to id's key */
    memcpy(forged.origin, other->pk, 32);
    /* put the victim's key back into the signed bytes, keeping id's signature */
    for (size_t i = 0; i + 32 <= forged.wire_len; i++)
        if (memcmp(forged.wire + i, id->pk, 32) == 0) {
            memcpy(forged.wire + i, other->pk, 32);
            break;
        }
    len = s_body_with(body, sizeof body, -1, NULL, 0, &self, &forged);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_SIGNATURE);
    sos_gmsg_release(&d);

    SECTION("self must be a worker record");
    len = s_body_with(body, sizeof body, -1, NULL, 0, &rec, NULL);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_ERR_MALFORMED);
    sos_gmsg_release(&d);
    len = s_body_with(body, sizeof body, -1, NULL, 0, NULL, &rec);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_OK);
    CHECK(!d.has_self && d.n_records == 1);
    sos_gmsg_release(&d);
}

/*  The probe body: a round trip, and strict types and counts. */
static void
s_test_probe(void)
{
    SECTION("probe bodies round trip; anything else is malformed");
    sos_probe_msg_t in = {.req_id = UINT64_MAX, .reached = true}, out;
    memset(in.target, 0xAB, sizeof in.target);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_RC(sos_probe_encode(&sb, &in), SOS_OK);
    CHECK_RC(sos_probe_decode(&out, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(out.req_id == in.req_id && out.reached &&
          memcmp(out.target, in.target, sizeof in.target) == 0);
    CHECK_RC(sos_probe_decode(&out, (const uint8_t *)sb.data, sb.size - 1), SOS_ERR_MALFORMED);
    CHECK(out.req_id == 0); /* zeroed on error */

    msgpack_packer pk;
    static const uint8_t id[SOS_NODEID_BYTES];
    for (int bad = 0; bad < 5; bad++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, bad == 0 ? 4 : 3);
        if (bad == 1)
            msgpack_pack_int64(&pk, -1); /* req_id not a uint */
        else
            msgpack_pack_uint64(&pk, 1);
        msgpack_pack_bin_with_body(&pk, id, bad == 2 ? 31 : sizeof id); /* short id */
        if (bad == 3)
            msgpack_pack_uint64(&pk, 1); /* reached not a bool */
        else
            msgpack_pack_true(&pk);
        if (bad == 0)
            msgpack_pack_nil(&pk); /* one field too many */
        if (bad == 4) {
            msgpack_sbuffer_clear(&sb); /* a gossip body is no probe body */
            sos_gmsg_t g = {0};
            CHECK_RC(sos_gmsg_encode(&sb, &g, NULL, NULL, 0), SOS_OK);
        }
        CHECK_RC(sos_probe_decode(&out, (const uint8_t *)sb.data, sb.size), SOS_ERR_MALFORMED);
    }
    msgpack_sbuffer_destroy(&sb);
}

/*  An empty body (no self) with a tenth element made by pack(pk, arg), as raw bytes in
    out; returns its length. */
typedef void(s_tenth_fn)(msgpack_packer *pk, int variant);

static size_t
s_body_tenth(uint8_t *out, size_t cap, s_tenth_fn *fn, int variant)
{
    sos_gmsg_t msg;
    memset(&msg, 0, sizeof msg);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t len = 0;
    if (sos_gmsg_encode(&sb, &msg, NULL, NULL, 0) == SOS_OK && sb.size > 0 &&
        (uint8_t)sb.data[0] == 0x99) {
        sb.data[0] = (char)0x9a; /* ten elements */
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        fn(&pk, variant);
        if (sb.size <= cap) {
            memcpy(out, sb.data, sb.size);
            len = sb.size;
        }
    }
    msgpack_sbuffer_destroy(&sb);
    return len;
}

/*  The bucket element [nb, numbers, sums], broken in the way variant says (0: whole). */
static void
s_pack_buckets(msgpack_packer *pk, int variant)
{
    static const uint8_t sums[16 * 8] = {1};
    uint64_t nb = variant == 1 ? 0 : variant == 2 ? 3 : variant == 3 ? 2048 : 8;
    if (variant == 9) { /* not an array */
        msgpack_pack_uint8(pk, 8);
        return;
    }
    msgpack_pack_array(pk, variant == 10 ? 2 : 3);
    msgpack_pack_uint64(pk, nb);
    uint64_t numbers[9] = {1, 5, 7};
    uint32_t n_numbers = 3;
    if (variant == 4) /* out of order */
        numbers[1] = 0;
    if (variant == 5) /* twice */
        numbers[2] = 5;
    if (variant == 6) /* not below nb */
        numbers[2] = 8;
    if (variant == 7) /* more numbers than buckets */
        n_numbers = 9;
    if (variant == 7)
        for (uint32_t i = 0; i < 9; i++)
            numbers[i] = i;
    msgpack_pack_array(pk, n_numbers);
    for (uint32_t i = 0; i < n_numbers; i++)
        msgpack_pack_uint64(pk, numbers[i]);
    if (variant == 10)
        return;
    size_t sums_len = variant == 8 ? sizeof sums - 16 : sizeof sums;
    if (variant == 3) /* 2048 buckets' sums would be 32 KiB: the count is refused first */
        sums_len = 0;
    msgpack_pack_bin(pk, sums_len);
    msgpack_pack_bin_body(pk, sums, sums_len);
}

static void
s_test_buckets(const sos_identity_t *id)
{
    SECTION("bucket element: sums, bucket numbers and entries round trip");
    sos_gmsg_t msg;
    memset(&msg, 0, sizeof msg);
    uint8_t sums[8][SOS_DIGEST_HASH_BYTES];
    for (int b = 0; b < 8; b++)
        memset(sums[b], b + 1, SOS_DIGEST_HASH_BYTES);
    uint16_t numbers[3] = {1, 5, 7};
    sos_digest_entry_t entries[2];
    memset(entries, 0, sizeof entries);
    entries[0].origin[0] = 0x20;
    entries[0].version = 9;
    entries[1].origin[0] = 0xe0;
    entries[1].version = 4;
    entries[1].removed = true;
    msg.req_id = 5;
    msg.has_buckets = true;
    msg.nb = 8;
    msg.n_sums = 8;
    msg.sums = sums;
    msg.n_buckets = 3;
    msg.buckets = numbers;
    msg.n_digest = 2;
    msg.digest = entries;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_OK);
    CHECK(sb.size > 0 && (uint8_t)sb.data[0] == 0x9a);
    sos_gmsg_t d;
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(d.has_buckets && d.nb == 8 && d.n_sums == 8 && d.n_buckets == 3 && d.n_digest == 2);
    CHECK(d.sums && memcmp(d.sums, sums, sizeof sums) == 0);
    CHECK(d.buckets && d.buckets[0] == 1 && d.buckets[1] == 5 && d.buckets[2] == 7);
    CHECK(d.digest && d.digest[1].removed && d.digest[0].version == 9);
    sos_gmsg_release(&d);
    CHECK(!d.has_buckets && !d.sums && !d.buckets && d.nb == 0);

    SECTION("bucket element: without it, nine elements as before; empty parts are fine");
    sos_gmsg_t plain;
    s_fill(&plain, id);
    msgpack_sbuffer_clear(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &plain, NULL, NULL, 0), SOS_OK);
    CHECK(sb.size > 0 && (uint8_t)sb.data[0] == 0x99);
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(!d.has_buckets);
    sos_gmsg_release(&d);
    msg.n_sums = 0;
    msg.sums = NULL;
    msg.n_buckets = 0;
    msg.buckets = NULL;
    msg.nb = 1;
    msgpack_sbuffer_clear(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_OK);
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(d.has_buckets && d.nb == 1 && d.n_sums == 0 && d.n_buckets == 0);
    sos_gmsg_release(&d);

    SECTION("bucket element: the encoder refuses what the decoder would");
    msg.nb = 3;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_ERR_INVALID);
    msg.nb = 8;
    uint16_t unordered[2] = {5, 1};
    msg.buckets = unordered;
    msg.n_buckets = 2;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_ERR_INVALID);
    uint16_t high[1] = {8};
    msg.buckets = high;
    msg.n_buckets = 1;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_ERR_INVALID);
    msg.n_buckets = 0;
    msg.n_sums = 4; /* sums for some of the buckets */
    msg.sums = sums;
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_ERR_INVALID);
    msgpack_sbuffer_destroy(&sb);

    SECTION("bucket element: hostile values are refused");
    uint8_t body[1024];
    size_t len = s_body_tenth(body, sizeof body, s_pack_buckets, 0);
    CHECK(len > 0);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_OK); /* the hand-built one is right */
    CHECK(d.nb == 8 && d.n_buckets == 3 && d.n_sums == 8);
    sos_gmsg_release(&d);
    const struct {
        const char *what;
        sos_rc rc;
    } bad[] = {
        {"ok", SOS_OK},
        {"no buckets", SOS_ERR_MALFORMED},
        {"3 buckets: no power of two", SOS_ERR_MALFORMED},
        {"2048 buckets: over the cap", SOS_ERR_TOO_LARGE},
        {"bucket numbers out of order", SOS_ERR_MALFORMED},
        {"a bucket number twice", SOS_ERR_MALFORMED},
        {"a bucket number not below nb", SOS_ERR_MALFORMED},
        {"more bucket numbers than buckets", SOS_ERR_MALFORMED},
        {"sums for fewer buckets than nb", SOS_ERR_MALFORMED},
        {"not an array", SOS_ERR_MALFORMED},
        {"two elements", SOS_ERR_MALFORMED},
    };
    for (int v = 1; v < (int)(sizeof bad / sizeof bad[0]); v++) {
        len = s_body_tenth(body, sizeof body, s_pack_buckets, v);
        CHECK(len > 0);
        sos_rc rc = sos_gmsg_decode(&d, body, len);
        if (rc != bad[v].rc) {
            fprintf(stderr, "%s: %s\n", bad[v].what, sos_strerror(rc));
            CHECK(false);
        }
        CHECK(!d.has_buckets && !d.sums && !d.buckets);
        sos_gmsg_release(&d);
    }
}

/*  The bucket element with a piece: [8, [1, 5, 7], sums, [3, from, to]] (bucket 3 of 8 is
    the ids from 0x60 to 0x7f..), broken in the way variant says (0: right). */
static void
s_pack_piece(msgpack_packer *pk, int variant)
{
    msgpack_pack_array(pk, variant == 9 ? 5 : 4);
    msgpack_pack_uint8(pk, 8);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint8(pk, 1);
    msgpack_pack_uint8(pk, 5);
    msgpack_pack_uint8(pk, 7);
    msgpack_pack_bin(pk, 0);
    uint8_t from[SOS_NODEID_BYTES] = {0x61}, to[SOS_NODEID_BYTES] = {0x7e};
    uint64_t bucket = variant == 1 ? 8 : 3;
    if (variant == 2) /* a start outside the bucket */
        from[0] = 0x80;
    if (variant == 3) /* a stop outside the bucket */
        to[0] = 0x80;
    if (variant == 4) /* a stop before the start */
        to[0] = 0x60;
    if (variant == 5) { /* a bucket also named whole */
        bucket = 5;
        from[0] = 0xa0;
        to[0] = 0xa1;
    }
    msgpack_pack_array(pk, variant == 6 ? 2 : 3);
    msgpack_pack_uint64(pk, bucket);
    msgpack_pack_bin_with_body(pk, from, variant == 7 ? 31 : sizeof from);
    if (variant == 8)
        sos_mp_pack_str(pk, "to");
    else if (variant != 6)
        msgpack_pack_bin_with_body(pk, to, sizeof to);
    if (variant == 9)
        msgpack_pack_nil(pk);
}

static void
s_test_pieces(void)
{
    SECTION("piece of a bucket: round trips, with a stop and to the bucket's end");
    sos_gmsg_t msg, d;
    memset(&msg, 0, sizeof msg);
    uint16_t numbers[2] = {1, 7};
    msg.req_id = 9;
    msg.has_buckets = true;
    msg.nb = 8;
    msg.n_buckets = 2;
    msg.buckets = numbers;
    msg.has_piece = true;
    msg.piece.bucket = 3;
    memset(msg.piece.from, 0x61, SOS_NODEID_BYTES);
    memset(msg.piece.to, 0x7f, SOS_NODEID_BYTES);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_OK);
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(d.has_piece && d.piece.bucket == 3 && !d.piece.to_end);
    CHECK(memcmp(d.piece.from, msg.piece.from, SOS_NODEID_BYTES) == 0);
    CHECK(memcmp(d.piece.to, msg.piece.to, SOS_NODEID_BYTES) == 0);
    sos_gmsg_release(&d);
    CHECK(!d.has_piece);
    size_t with_to = sb.size;
    msg.piece.to_end = true;
    msgpack_sbuffer_clear(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_OK);
    CHECK(sb.size == with_to - 33); /* nil for the 34 bytes of bin(32) */
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(d.has_piece && d.piece.to_end && d.piece.bucket == 3);
    sos_gmsg_release(&d);
    /*  Whole buckets only: no byte more than before. */
    msg.has_piece = false;
    msgpack_sbuffer_clear(&sb);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_OK);
    CHECK(sb.size == with_to - (1 + 1 + 34 + 34)); /* the piece: [bucket, from, to] */
    CHECK_RC(sos_gmsg_decode(&d, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(!d.has_piece);
    sos_gmsg_release(&d);

    SECTION("piece of a bucket: the encoder refuses what the decoder would");
    msg.has_piece = true;
    msg.piece.bucket = 7; /* named whole too */
    memset(msg.piece.from, 0xe0, SOS_NODEID_BYTES);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_ERR_INVALID);
    msg.piece.bucket = 3; /* from outside it */
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_ERR_INVALID);
    memset(msg.piece.from, 0x70, SOS_NODEID_BYTES);
    msg.piece.to_end = false; /* a stop before the start */
    memset(msg.piece.to, 0x61, SOS_NODEID_BYTES);
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_ERR_INVALID);
    msg.piece.to_end = true;
    msg.has_buckets = false; /* a piece needs the bucket element */
    CHECK_RC(sos_gmsg_encode(&sb, &msg, NULL, NULL, 0), SOS_ERR_INVALID);
    msgpack_sbuffer_destroy(&sb);

    SECTION("piece of a bucket: hostile values are refused");
    uint8_t body[1024];
    size_t len = s_body_tenth(body, sizeof body, s_pack_piece, 0);
    CHECK(len > 0);
    CHECK_RC(sos_gmsg_decode(&d, body, len), SOS_OK);
    CHECK(d.has_piece && d.piece.bucket == 3 && d.piece.from[0] == 0x61 && d.piece.to[0] == 0x7e);
    sos_gmsg_release(&d);
    const char *what[] = {"ok",
                          "a piece of bucket 8 of 8",
                          "a start outside the bucket",
                          "a stop outside the bucket",
                          "a stop before the start",
                          "a piece of a bucket also named whole",
                          "a piece of two elements",
                          "a start of 31 bytes",
                          "a stop that is a string",
                          "five parts in the bucket element"};
    for (int v = 1; v < (int)(sizeof what / sizeof what[0]); v++) {
        len = s_body_tenth(body, sizeof body, s_pack_piece, v);
        CHECK(len > 0);
        sos_rc rc = sos_gmsg_decode(&d, body, len);
        if (rc != SOS_ERR_MALFORMED) {
            fprintf(stderr, "%s: %s\n", what[v], sos_strerror(rc));
            CHECK(false);
        }
        CHECK(!d.has_piece && !d.has_buckets);
        sos_gmsg_release(&d);
    }
}

int
main(void)
{
    test_init("test_gmsg: gossip message bodies");
    sos_identity_t id, other;
    test_seed_identity(&id, 0);
    test_seed_identity(&other, 100);
    s_test_round_trip(&id, &other);
    s_test_digest_hash();
    s_test_caps(&id);
    s_test_rejections(&id, &other);
    s_test_probe();
    s_test_buckets(&id);
    s_test_pieces();
    return test_done("test_gmsg");
}
