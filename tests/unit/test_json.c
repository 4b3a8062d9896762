/*  test_json.c: unit test of tools/sos_json: every msgpack type converts to the JSON the
    tools print, untrusted strings stay valid UTF-8, and nesting is bounded. */
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sos_json.h"

//  Check that the msgpack bytes in buf convert to the JSON text want (compact, sorted keys)
#define CHECK_JSON(buf, want) s_check_json(__FILE__, __LINE__, buf, want)

static void
s_check_json(const char *file, int line, const msgpack_sbuffer *buf, const char *want)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    s_checks++;
    char *got = NULL;
    if (msgpack_unpack_next(&unpacked, buf->data, buf->size, &offset) == MSGPACK_UNPACK_SUCCESS) {
        json_t *json = sos_json_from_mp(&unpacked.data);
        if (json)
            got = json_dumps(json, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        json_decref(json);
    }
    if (!got || (want && strcmp(got, want)) || (!want && got)) {
        s_failed++;
        fprintf(stderr, "%s:%d: converted to %s, expected %s\n", file, line, got ? got : "NULL",
                want ? want : "NULL");
    }
    free(got);
    msgpack_unpacked_destroy(&unpacked);
}

static void
s_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void
s_test_scalars(void)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);

#define CASE(pack, want)                                                                           \
    do {                                                                                           \
        msgpack_sbuffer_clear(&buf);                                                               \
        pack;                                                                                      \
        CHECK_JSON(&buf, want);                                                                    \
    } while (0)

    CASE(msgpack_pack_nil(&pk), "null");
    CASE(msgpack_pack_true(&pk), "true");
    CASE(msgpack_pack_false(&pk), "false");
    CASE(msgpack_pack_uint64(&pk, 0), "0");
    CASE(msgpack_pack_uint64(&pk, 1735689599999ULL), "1735689599999");
    CASE(msgpack_pack_uint64(&pk, INT64_MAX), "9223372036854775807");
    CASE(msgpack_pack_int64(&pk, -42), "-42");
    CASE(msgpack_pack_int64(&pk, INT64_MIN), "-9223372036854775808");
    CASE(msgpack_pack_double(&pk, 1.5), "1.5");
    CASE(msgpack_pack_float(&pk, -0.25f), "-0.25");
    CASE(msgpack_pack_double(&pk, NAN), "null");
    CASE(msgpack_pack_double(&pk, INFINITY), "null");
    CASE(s_pack_str(&pk, ""), "\"\"");
    CASE(s_pack_str(&pk, "say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    //  UTF-8 passes through, invalid bytes become U+FFFD
    CASE(s_pack_str(&pk, "\xf0\x9f\x94\xa5 \xd8\xb3"), "\"\xf0\x9f\x94\xa5 \xd8\xb3\"");
    CASE(s_pack_str(&pk, "a\xff"
                         "b\xc3"),
         "\"a\xef\xbf\xbd"
         "b\xef\xbf\xbd\"");
    //  Overlong, surrogate and beyond U+10FFFF
    CASE(s_pack_str(&pk, "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80"),
         "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf"
         "\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    //  An embedded NUL survives
    CASE((msgpack_pack_str(&pk, 3), msgpack_pack_str_body(&pk, "a\0b", 3)), "\"a\\u0000b\"");
    //  bin as base64
    CASE((msgpack_pack_bin(&pk, 0), msgpack_pack_bin_body(&pk, "", 0)), "\"\"");
    CASE((msgpack_pack_bin(&pk, 4), msgpack_pack_bin_body(&pk, "\x00\xff\x10\x20", 4)),
         "\"AP8QIA==\"");
    CASE((msgpack_pack_ext(&pk, 2, 7), msgpack_pack_ext_body(&pk, "hi", 2)),
         "{\"data\":\"aGk=\",\"type\":7}");
    //  Beyond INT64_MAX: a real, as JSON readers hold it anyway
    msgpack_sbuffer_clear(&buf);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    {
        msgpack_unpacked unpacked;
        msgpack_unpacked_init(&unpacked);
        size_t offset = 0;
        CHECK(msgpack_unpack_next(&unpacked, buf.data, buf.size, &offset) ==
              MSGPACK_UNPACK_SUCCESS);
        json_t *json = sos_json_from_mp(&unpacked.data);
        CHECK(json_is_real(json) && json_real_value(json) > 1.8e19);
        json_decref(json);
        msgpack_unpacked_destroy(&unpacked);
    }
#undef CASE
    msgpack_sbuffer_destroy(&buf);
}

static void
s_test_containers(void)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);

    //  A status-like reply body
    msgpack_pack_map(&pk, 5);
    s_pack_str(&pk, "node_id");
    s_pack_str(&pk, "ab12");
    s_pack_str(&pk, "uptime_s");
    msgpack_pack_uint64(&pk, 12);
    s_pack_str(&pk, "gossip");
    msgpack_pack_map(&pk, 2);
    s_pack_str(&pk, "rounds");
    msgpack_pack_uint64(&pk, 3);
    s_pack_str(&pk, "bytes_in");
    msgpack_pack_uint64(&pk, 4096);
    s_pack_str(&pk, "members");
    msgpack_pack_array(&pk, 2);
    s_pack_str(&pk, "ana");
    s_pack_str(&pk, "anon-1f2e");
    s_pack_str(&pk, "empty");
    msgpack_pack_array(&pk, 0);
    CHECK_JSON(&buf, "{\"empty\":[],\"gossip\":{\"bytes_in\":4096,\"rounds\":3},"
                     "\"members\":[\"ana\",\"anon-1f2e\"],\"node_id\":\"ab12\",\"uptime_s\":12}");

    //  Keys that are not strings, invalid UTF-8 keys, and a repeated key (the last wins)
    msgpack_sbuffer_clear(&buf);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_uint64(&pk, 7);
    msgpack_pack_true(&pk);
    msgpack_pack_int64(&pk, -3);
    msgpack_pack_nil(&pk);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 2);
    s_pack_str(&pk, "k\xfe");
    msgpack_pack_uint64(&pk, 3);
    s_pack_str(&pk, "k\xfe");
    msgpack_pack_uint64(&pk, 4);
    CHECK_JSON(&buf, "{\"-3\":null,\"7\":true,\"[1]\":2,\"k\xef\xbf\xbd\":4}");

    //  The order of keys is kept (jansson keeps insertion order)
    msgpack_sbuffer_clear(&buf);
    msgpack_pack_map(&pk, 3);
    s_pack_str(&pk, "z");
    msgpack_pack_uint64(&pk, 1);
    s_pack_str(&pk, "a");
    msgpack_pack_uint64(&pk, 2);
    s_pack_str(&pk, "m");
    msgpack_pack_uint64(&pk, 3);
    {
        msgpack_unpacked unpacked;
        msgpack_unpacked_init(&unpacked);
        size_t offset = 0;
        CHECK(msgpack_unpack_next(&unpacked, buf.data, buf.size, &offset) ==
              MSGPACK_UNPACK_SUCCESS);
        json_t *json = sos_json_from_mp(&unpacked.data);
        char *text = json_dumps(json, JSON_COMPACT);
        CHECK(text && !strcmp(text, "{\"z\":1,\"a\":2,\"m\":3}"));
        free(text);
        json_decref(json);
        msgpack_unpacked_destroy(&unpacked);
    }
    msgpack_sbuffer_destroy(&buf);
}

static void
s_test_depth(void)
{
    //  Arrays nested n deep, built by hand: [[[...[0]...]]]
    msgpack_object nodes[SOS_JSON_MAX_DEPTH + 3];
    size_t count = sizeof nodes / sizeof nodes[0];
    for (size_t i = 0; i < count; i++) {
        if (i == count - 1) {
            nodes[i].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            nodes[i].via.u64 = 0;
        } else {
            nodes[i].type = MSGPACK_OBJECT_ARRAY;
            nodes[i].via.array.size = 1;
            nodes[i].via.array.ptr = &nodes[i + 1];
        }
    }
    //  From nodes[k] the leaf is at depth count - 1 - k
    json_t *json = sos_json_from_mp(&nodes[count - 1 - SOS_JSON_MAX_DEPTH]);
    CHECK(json != NULL);
    json_decref(json);
    json = sos_json_from_mp(&nodes[count - 2 - SOS_JSON_MAX_DEPTH]);
    CHECK(json == NULL);
    CHECK(sos_json_from_mp(NULL) == NULL);
}

static void
s_test_text(void)
{
    msgpack_object o;
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = "hello";
    o.via.str.size = 4;
    char *text = sos_json_text(&o);
    CHECK(text && !strcmp(text, "hell"));
    free(text);

    o.type = MSGPACK_OBJECT_BIN;
    o.via.bin.ptr = "\x01\x02\x03";
    o.via.bin.size = 3;
    text = sos_json_text(&o);
    CHECK(text && !strcmp(text, "AQID"));
    free(text);

    o.type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
    o.via.i64 = -17;
    text = sos_json_text(&o);
    CHECK(text && !strcmp(text, "-17"));
    free(text);

    msgpack_object items[2];
    items[0].type = MSGPACK_OBJECT_BOOLEAN;
    items[0].via.boolean = true;
    items[1].type = MSGPACK_OBJECT_NIL;
    o.type = MSGPACK_OBJECT_ARRAY;
    o.via.array.ptr = items;
    o.via.array.size = 2;
    text = sos_json_text(&o);
    CHECK(text && !strcmp(text, "[true,null]"));
    free(text);
    CHECK(sos_json_text(NULL) == NULL);

    json_t *json = sos_json_string_lossy("ok\x80", 3);
    CHECK(json && !strcmp(json_string_value(json), "ok\xef\xbf\xbd"));
    json_decref(json);
    json = sos_json_string_lossy("", 0);
    CHECK(json && json_string_length(json) == 0);
    json_decref(json);
}

int
main(void)
{
    printf("test_json\n");
    s_test_scalars();
    s_test_containers();
    s_test_depth();
    s_test_text();
    return test_done("test_json");
}
