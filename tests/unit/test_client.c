/*  test_client.c: unit tests of protocol/sos_client: request and reply frames, packed and
    decoded, and every shape that is not [2, req_id, op, args, flags] or [3, ...]. */
#include <msgpack.h>

#include "proto_test.h"
#include "sos_client.h"
#include "sos_envelope.h"

static void
s_test_request(void)
{
    SECTION("a request round trips; args borrow from the document");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    sos_request_pack_begin(&pk, 42, "room_join");
    msgpack_pack_map(&pk, 2);
    sos_mp_pack_kv_str(&pk, "room_hash", "0123456789abcdef");
    sos_mp_pack_kv_uint(&pk, "limit", 50);
    sos_request_pack_end(&pk, SOS_REQ_FORWARDED);

    sos_frame_kind_t kind;
    CHECK_RC(sos_frame_kind((const uint8_t *)sb.data, sb.size, &kind), SOS_OK);
    CHECK(kind == SOS_FRAME_REQUEST);
    sos_request_t req;
    sos_mp_doc_t doc;
    CHECK_RC(sos_request_decode(&req, &doc, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(req.req_id == 42 && strcmp(req.op, "room_join") == 0);
    CHECK(req.flags == SOS_REQ_FORWARDED);
    const char *s;
    size_t len;
    CHECK(sos_mp_str(sos_mp_map_get(req.args, "room_hash"), &s, &len, 16) && len == 16 &&
          memcmp(s, "0123456789abcdef", 16) == 0);
    uint64_t limit;
    CHECK(sos_mp_uint(sos_mp_map_get(req.args, "limit"), &limit) && limit == 50);
    sos_mp_doc_release(&doc);

    SECTION("an op of exactly SOS_OP_MAX bytes, empty args, flags at 32 bits");
    msgpack_sbuffer_clear(&sb);
    sos_request_pack_begin(&pk, UINT64_MAX, "sixteen_bytes_op");
    msgpack_pack_map(&pk, 0);
    sos_request_pack_end(&pk, UINT32_MAX);
    CHECK_RC(sos_request_decode(&req, &doc, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(req.req_id == UINT64_MAX && req.flags == UINT32_MAX &&
          strcmp(req.op, "sixteen_bytes_op") == 0);
    sos_mp_doc_release(&doc);

    SECTION("truncation at every byte offset; a trailing byte");
    for (size_t l = 0; l < sb.size; l++) {
        CHECK_RC(sos_request_decode(&req, &doc, (const uint8_t *)sb.data, l), SOS_ERR_MALFORMED);
        sos_mp_doc_release(&doc);
    }
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    CHECK_RC(sos_request_decode(&req, &doc, (const uint8_t *)sb.data, sb.size), SOS_ERR_MALFORMED);
    sos_mp_doc_release(&doc);
    msgpack_sbuffer_destroy(&sb);

    SECTION("every other shape is malformed");
    const struct {
        const char *what;
        const char *raw;
        size_t len;
    } bad[] = {
        {"a reply", "\x95\x03\x01\xa1s\x80\x00", 7},
        {"kind as str", "\x95\xa1\x32\x01\xa1s\x80\x00", 8},
        {"4 elements", "\x94\x02\x01\xa1s\x80", 6},
        {"6 elements", "\x96\x02\x01\xa1s\x80\x00\x00", 8},
        {"req_id negative", "\x95\x02\xff\xa1s\x80\x00", 7},
        {"req_id str", "\x95\x02\xa1\x31\xa1s\x80\x00", 8},
        {"op of 17 bytes",
         "\x95\x02\x01\xb1"
         "seventeen_bytes_o\x80\x00",
         23},
        {"op as bin", "\x95\x02\x01\xc4\x01s\x80\x00", 8},
        {"op with NUL", "\x95\x02\x01\xa2s\x00\x80\x00", 8},
        {"op as int", "\x95\x02\x01\x01\x80\x00", 6},
        {"args array", "\x95\x02\x01\xa1s\x90\x00", 7},
        {"args nil", "\x95\x02\x01\xa1s\xc0\x00", 7},
        {"flags above 32 bits", "\x95\x02\x01\xa1s\x80\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 15},
        {"flags negative", "\x95\x02\x01\xa1s\x80\xff", 7},
        {"flags bool", "\x95\x02\x01\xa1s\x80\xc3", 7},
        {"a map", "\x81\x02\x01", 3},
        {"map count beyond the bytes", "\x95\x02\x01\xa1s\xdf\xff\xff\xff\xff\x00", 11},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sos_rc rc = sos_request_decode(&req, &doc, (const uint8_t *)bad[i].raw, bad[i].len);
        if (rc != SOS_ERR_MALFORMED) {
            fprintf(stderr, "request %s: %s\n", bad[i].what, sos_strerror(rc));
            CHECK(false);
        }
        CHECK(req.args == NULL);
        sos_mp_doc_release(&doc);
    }

    SECTION("an args map nested too deep, and a frame above SOS_FRAME_MAX, are too large");
    uint8_t deep[32] = {0x95, 0x02, 0x01, 0xa1, 's'};
    size_t n = 5;
    for (int i = 0; i < 8; i++) {
        deep[n++] = 0x81;
        deep[n++] = 0x01;
    }
    deep[n++] = 0x80;
    deep[n++] = 0x00;
    CHECK_RC(sos_request_decode(&req, &doc, deep, n), SOS_ERR_TOO_LARGE);
    sos_mp_doc_release(&doc);
    uint8_t *big = (uint8_t *)calloc(1, SOS_FRAME_MAX + 1);
    CHECK(big);
    if (big) {
        CHECK_RC(sos_request_decode(&req, &doc, big, SOS_FRAME_MAX + 1), SOS_ERR_TOO_LARGE);
        sos_mp_doc_release(&doc);
        sos_reply_t rep;
        CHECK_RC(sos_reply_decode(&rep, &doc, big, SOS_FRAME_MAX + 1), SOS_ERR_TOO_LARGE);
        sos_mp_doc_release(&doc);
        free(big);
    }
}

static void
s_test_reply(void)
{
    SECTION("an ok reply and an error reply round trip");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    sos_reply_pack_begin(&pk, 7, "ok");
    msgpack_pack_map(&pk, 1);
    sos_mp_pack_kv_uint(&pk, "members", 3);
    sos_frame_kind_t kind;
    CHECK_RC(sos_frame_kind((const uint8_t *)sb.data, sb.size, &kind), SOS_OK);
    CHECK(kind == SOS_FRAME_REPLY);
    sos_reply_t rep;
    sos_mp_doc_t doc;
    CHECK_RC(sos_reply_decode(&rep, &doc, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(rep.req_id == 7 && sos_reply_ok(&rep));
    uint64_t members;
    CHECK(sos_mp_uint(sos_mp_map_get(rep.body, "members"), &members) && members == 3);
    sos_mp_doc_release(&doc);

    msgpack_sbuffer_clear(&sb);
    sos_reply_pack_error(&pk, 8, SOS_E_ROOM_NOT_FOUND, "no such room");
    CHECK_RC(sos_reply_decode(&rep, &doc, (const uint8_t *)sb.data, sb.size), SOS_OK);
    CHECK(rep.req_id == 8 && !sos_reply_ok(&rep));
    CHECK(rep.status_len == strlen(SOS_E_ROOM_NOT_FOUND) &&
          memcmp(rep.status, SOS_E_ROOM_NOT_FOUND, rep.status_len) == 0);
    const char *s;
    size_t len;
    CHECK(sos_mp_str(sos_mp_map_get(rep.body, "error"), &s, &len, 64) &&
          len == strlen(SOS_E_ROOM_NOT_FOUND) && memcmp(s, SOS_E_ROOM_NOT_FOUND, len) == 0);
    CHECK(sos_mp_str(sos_mp_map_get(rep.body, "message"), &s, &len, 64) && len == 12 &&
          memcmp(s, "no such room", 12) == 0);
    CHECK(rep.body->via.map.size == 2);
    sos_mp_doc_release(&doc);

    SECTION("truncation at every byte offset");
    for (size_t l = 0; l < sb.size; l++) {
        CHECK_RC(sos_reply_decode(&rep, &doc, (const uint8_t *)sb.data, l), SOS_ERR_MALFORMED);
        sos_mp_doc_release(&doc);
    }
    msgpack_sbuffer_destroy(&sb);

    SECTION("a status of 32 bytes passes; 33, empty, or not a str does not");
    const uint8_t s32[] = "\x94\x03\x01\xd9\x20"
                          "abcdefghijklmnopqrstuvwxyz012345\x80";
    CHECK_RC(sos_reply_decode(&rep, &doc, s32, sizeof s32 - 1), SOS_OK);
    CHECK(rep.status_len == 32 && !sos_reply_ok(&rep));
    sos_mp_doc_release(&doc);
    const struct {
        const char *what;
        const char *raw;
        size_t len;
    } bad[] = {
        {"status of 33",
         "\x94\x03\x01\xd9\x21"
         "abcdefghijklmnopqrstuvwxyz0123456\x80",
         39},
        {"empty status", "\x94\x03\x01\xa0\x80", 5},
        {"status bin", "\x94\x03\x01\xc4\x02ok\x80", 7},
        {"status nil", "\x94\x03\x01\xc0\x80", 5},
        {"a request", "\x94\x02\x01\xa2ok\x80", 6},
        {"body array", "\x94\x03\x01\xa2ok\x90", 6},
        {"body nil", "\x94\x03\x01\xa2ok\xc0", 6},
        {"3 elements", "\x93\x03\x01\xa2ok", 5},
        {"5 elements", "\x95\x03\x01\xa2ok\x80\x00", 7},
        {"req_id negative", "\x94\x03\xff\xa2ok\x80", 6},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sos_rc rc = sos_reply_decode(&rep, &doc, (const uint8_t *)bad[i].raw, bad[i].len);
        if (rc != SOS_ERR_MALFORMED) {
            fprintf(stderr, "reply %s: %s\n", bad[i].what, sos_strerror(rc));
            CHECK(false);
        }
        CHECK(rep.status == NULL && rep.body == NULL && !sos_reply_ok(&rep));
        sos_mp_doc_release(&doc);
    }
    CHECK(!sos_reply_ok(NULL));
}

int
main(void)
{
    test_init("test_client: client request and reply frames");
    s_test_request();
    s_test_reply();
    return test_done("test_client");
}
