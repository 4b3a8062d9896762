/*  test_mp.c: unit tests of protocol/sos_mp: the pre-scan's ceilings and rejections on
    hostile msgpack, the typed accessors and the packing helpers. */
#include <msgpack.h>

#include "proto_test.h"
#include "sos_mp.h"

/*  One document holding every msgpack type, some in non-minimal encodings that msgpack-c's
    packer never writes (str32, bin32, array32, map32, ext32). */
static const uint8_t s_all_types[] = {
    0xdf, 0x00, 0x00, 0x00, 0x02,                      /* map32 of 2 pairs */
    0xa1, 'a',                                         /* fixstr "a" */
    0xdc, 0x00, 0x14,                                  /* array16 of 20 */
    0xc0, 0xc2, 0xc3,                                  /* nil false true */
    0x05, 0xe0,                                        /* fixint 5, -32 */
    0xcc, 0xff,                                        /* uint8 */
    0xcd, 0x01, 0x00,                                  /* uint16 */
    0xce, 0x00, 0x01, 0x00, 0x00,                      /* uint32 */
    0xcf, 0,    0,    0,    1,    0,    0,    0, 0,    /* uint64 */
    0xd0, 0x80,                                        /* int8 */
    0xd1, 0x80, 0x00,                                  /* int16 */
    0xd2, 0x80, 0,    0,    0,                         /* int32 */
    0xd3, 0x80, 0,    0,    0,    0,    0,    0, 0,    /* int64 */
    0xca, 0x3f, 0x80, 0x00, 0x00,                      /* float32 1.0 */
    0xcb, 0x3f, 0xf0, 0,    0,    0,    0,    0, 0,    /* float64 1.0 */
    0xd9, 0x02, 'h',  'i',                             /* str8 */
    0xda, 0x00, 0x01, 'x',                             /* str16 */
    0xdb, 0x00, 0x00, 0x00, 0x01, 'y',                 /* str32 */
    0xc4, 0x01, 0xaa,                                  /* bin8 */
    0xc5, 0x00, 0x01, 0xbb,                            /* bin16 */
    0xa1, 'b',                                         /* key "b" */
    0xdd, 0x00, 0x00, 0x00, 0x0b,                      /* array32 of 11 */
    0xc6, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02,          /* bin32 */
    0xd4, 0x01, 0x11,                                  /* fixext1 */
    0xd5, 0x01, 0x11, 0x22,                            /* fixext2 */
    0xd6, 0x01, 1,    2,    3,    4,                   /* fixext4 */
    0xd7, 0x01, 1,    2,    3,    4,    5,    6, 7, 8, /* fixext8 */
    0xd8, 0x01, 1,    2,    3,    4,    5,    6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* fixext16 */
    0xc7, 0x01, 0x05, 0xee,                                                           /* ext8 */
    0xc8, 0x00, 0x01, 0x05, 0xee,                                                     /* ext16 */
    0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0xee,                                         /* ext32 */
    0x81, 0xa1, 'k',  0x90, /* fixmap {"k": []} */
    0xde, 0x00, 0x00,       /* map16 of 0 */
};

static void
s_test_all_types(void)
{
    SECTION("every msgpack type parses, and borrows from the input");
    sos_mp_doc_t doc;
    CHECK_RC(sos_mp_parse(&doc, s_all_types, sizeof s_all_types), SOS_OK);
    CHECK(sos_mp_is_map(doc.root));
    const msgpack_object *a = sos_mp_map_get(doc.root, "a");
    const msgpack_object *items;
    uint32_t count;
    CHECK(sos_mp_array(a, &items, &count, 100) && count == 20);
    if (a && count == 20) {
        uint64_t u;
        bool b;
        CHECK(items[0].type == MSGPACK_OBJECT_NIL);
        CHECK(sos_mp_bool(&items[1], &b) && !b);
        CHECK(sos_mp_bool(&items[2], &b) && b);
        CHECK(sos_mp_uint(&items[3], &u) && u == 5);
        CHECK(!sos_mp_uint(&items[4], &u)); /* negative */
        CHECK(sos_mp_uint(&items[5], &u) && u == 255);
        CHECK(sos_mp_uint(&items[8], &u) && u == 1ULL << 32);
        CHECK(!sos_mp_uint(&items[9], &u));
        CHECK(items[13].type == MSGPACK_OBJECT_FLOAT32);
        CHECK(items[14].type == MSGPACK_OBJECT_FLOAT64);
        CHECK(!sos_mp_uint(&items[13], &u) && !sos_mp_bool(&items[3], &b));
        const char *s;
        size_t len;
        CHECK(sos_mp_str(&items[15], &s, &len, 2) && len == 2 && memcmp(s, "hi", 2) == 0);
        CHECK(s >= (const char *)s_all_types && s < (const char *)s_all_types + sizeof s_all_types);
        CHECK(!sos_mp_str(&items[15], &s, &len, 1));  /* above max_len */
        CHECK(!sos_mp_str(&items[18], &s, &len, 10)); /* a bin is not a str */
        const uint8_t *p;
        CHECK(sos_mp_bin(&items[19], &p, &len, 1) && len == 1 && p[0] == 0xbb);
        CHECK(!sos_mp_bin(&items[16], &p, &len, 10)); /* a str is not a bin */
        uint8_t one;
        CHECK(sos_mp_bin_exact(&items[18], &one, 1) && one == 0xaa);
        CHECK(!sos_mp_bin_exact(&items[18], &one, 2));
        CHECK(!sos_mp_bin_exact(&items[17], &one, 1)); /* a str */
        char buf[3];
        CHECK(sos_mp_str_copy(&items[15], buf, 2) && strcmp(buf, "hi") == 0);
        CHECK(!sos_mp_str_copy(&items[15], buf, 1));
    }
    const msgpack_object *b = sos_mp_map_get(doc.root, "b");
    CHECK(sos_mp_array(b, &items, &count, 11) && count == 11);
    CHECK(!sos_mp_array(b, &items, &count, 10)); /* above max_count */
    if (b && count == 11) {
        CHECK(items[1].type == MSGPACK_OBJECT_EXT && items[1].via.ext.size == 1);
        CHECK(items[5].type == MSGPACK_OBJECT_EXT && items[5].via.ext.size == 16);
        CHECK(items[8].type == MSGPACK_OBJECT_EXT && items[8].via.ext.size == 1);
        CHECK(sos_mp_is_map(&items[9]) && sos_mp_map_get(&items[9], "k"));
        CHECK(sos_mp_is_map(&items[10]) && items[10].via.map.size == 0);
        CHECK(!sos_mp_map_get(&items[10], "k"));
        CHECK(!sos_mp_is_map(&items[0]));
    }
    CHECK(!sos_mp_map_get(doc.root, "c"));
    CHECK(!sos_mp_map_get(a, "a")); /* not a map */
    CHECK(!sos_mp_uint(NULL, NULL) && !sos_mp_str(NULL, NULL, NULL, 1) && !sos_mp_is_map(NULL));
    sos_mp_doc_release(&doc);
    sos_mp_doc_release(&doc); /* idempotent */
    CHECK(doc.root == NULL);
}

static void
s_test_truncation(void)
{
    SECTION("truncation at every byte offset, and trailing bytes");
    sos_mp_doc_t doc;
    for (size_t len = 0; len < sizeof s_all_types; len++) {
        CHECK_RC(sos_mp_parse(&doc, s_all_types, len), SOS_ERR_MALFORMED);
        sos_mp_doc_release(&doc);
    }
    uint8_t longer[sizeof s_all_types + 1];
    memcpy(longer, s_all_types, sizeof s_all_types);
    longer[sizeof s_all_types] = 0xc0;
    CHECK_RC(sos_mp_parse(&doc, longer, sizeof longer), SOS_ERR_MALFORMED);
    sos_mp_doc_release(&doc);
    const uint8_t two[] = {0x01, 0x02};
    CHECK_RC(sos_mp_parse(&doc, two, sizeof two), SOS_ERR_MALFORMED);
    sos_mp_doc_release(&doc);
    CHECK_RC(sos_mp_parse(&doc, NULL, 0), SOS_ERR_MALFORMED);
    sos_mp_doc_release(&doc);
}

static void
s_test_reserved(void)
{
    SECTION("the reserved byte 0xc1, alone and inside a container");
    sos_mp_doc_t doc;
    const uint8_t alone[] = {0xc1};
    const uint8_t inside[] = {0x92, 0x01, 0xc1};
    CHECK_RC(sos_mp_parse(&doc, alone, sizeof alone), SOS_ERR_MALFORMED);
    sos_mp_doc_release(&doc);
    CHECK_RC(sos_mp_parse(&doc, inside, sizeof inside), SOS_ERR_MALFORMED);
    sos_mp_doc_release(&doc);
}

static void
s_test_depth(void)
{
    SECTION("depth: 8 nested containers pass, 9 and a 100 000-deep bomb do not");
    uint8_t buf[100000];
    sos_mp_doc_t doc;
    for (size_t depth = 1; depth <= SOS_MP_MAX_DEPTH + 1; depth++) {
        /* depth arrays each holding the next, the innermost empty */
        memset(buf, 0x91, depth - 1);
        buf[depth - 1] = 0x90;
        sos_rc want = depth <= SOS_MP_MAX_DEPTH ? SOS_OK : SOS_ERR_TOO_LARGE;
        CHECK_RC(sos_mp_parse(&doc, buf, depth), want);
        sos_mp_doc_release(&doc);
        /* maps count as levels too */
        for (size_t i = 0; i + 1 < depth; i++) {
            buf[2 * i] = 0x81;
            buf[2 * i + 1] = 0x00;
        }
        buf[2 * (depth - 1)] = 0x80;
        CHECK_RC(sos_mp_parse(&doc, buf, 2 * (depth - 1) + 1), want);
        sos_mp_doc_release(&doc);
    }
    memset(buf, 0x91, sizeof buf);
    buf[sizeof buf - 1] = 0xc0;
    CHECK_RC(sos_mp_parse(&doc, buf, sizeof buf), SOS_ERR_TOO_LARGE);
    sos_mp_doc_release(&doc);
    /* an array32 bomb: each level claims one element */
    for (size_t i = 0; i + 5 <= sizeof buf; i += 5) {
        buf[i] = 0xdd;
        buf[i + 1] = buf[i + 2] = buf[i + 3] = 0;
        buf[i + 4] = 1;
    }
    CHECK_RC(sos_mp_parse(&doc, buf, sizeof buf), SOS_ERR_TOO_LARGE);
    sos_mp_doc_release(&doc);
}

static void
s_test_object_count(void)
{
    SECTION("object count: 65 536 objects pass, 65 537 do not");
    size_t n = SOS_MP_MAX_OBJECTS - 1;
    uint8_t *buf = (uint8_t *)malloc(5 + n + 1);
    CHECK(buf);
    if (!buf)
        return;
    buf[0] = 0xdd;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    memset(buf + 5, 0xc0, n + 1);
    sos_mp_doc_t doc;
    CHECK_RC(sos_mp_parse(&doc, buf, 5 + n), SOS_OK);
    CHECK(doc.root && doc.root->via.array.size == n);
    sos_mp_doc_release(&doc);
    n++;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    CHECK_RC(sos_mp_parse(&doc, buf, 5 + n), SOS_ERR_TOO_LARGE);
    sos_mp_doc_release(&doc);
    free(buf);
}

static void
s_test_object_size(void)
{
    SECTION("object size in a stream: complete, partial at every byte, trailing bytes, ceilings");
    size_t size = 0;
    CHECK_RC(sos_mp_object_size(s_all_types, sizeof s_all_types, SIZE_MAX, &size), SOS_OK);
    CHECK(size == sizeof s_all_types);
    for (size_t len = 0; len < sizeof s_all_types; len++) {
        size = 12345;
        CHECK_RC(sos_mp_object_size(s_all_types, len, SIZE_MAX, &size), SOS_ERR_PARTIAL);
        CHECK(size == 12345); /* left alone unless SOS_OK */
    }
    CHECK_RC(sos_mp_object_size(NULL, 0, SIZE_MAX, &size), SOS_ERR_PARTIAL);
    CHECK_RC(sos_mp_object_size(NULL, 1, SIZE_MAX, &size), SOS_ERR_INVALID);
    CHECK_RC(sos_mp_object_size(s_all_types, 1, SIZE_MAX, NULL), SOS_ERR_INVALID);

    /* a stream of two objects, and one with a partial second: the first is found either way */
    uint8_t two[2 * sizeof s_all_types];
    memcpy(two, s_all_types, sizeof s_all_types);
    memcpy(two + sizeof s_all_types, s_all_types, sizeof s_all_types);
    for (size_t len = sizeof s_all_types; len <= sizeof two; len++) {
        size = 0;
        CHECK_RC(sos_mp_object_size(two, len, SIZE_MAX, &size), SOS_OK);
        CHECK(size == sizeof s_all_types);
    }
    const uint8_t ints[] = {0x01, 0xcd, 0x01};
    CHECK_RC(sos_mp_object_size(ints, sizeof ints, SIZE_MAX, &size), SOS_OK);
    CHECK(size == 1);
    CHECK_RC(sos_mp_object_size(ints + 1, 2, SIZE_MAX, &size), SOS_ERR_PARTIAL);
    /* trailing garbage after a complete object is not looked at */
    const uint8_t then_reserved[] = {0x90, 0xc1};
    CHECK_RC(sos_mp_object_size(then_reserved, sizeof then_reserved, SIZE_MAX, &size), SOS_OK);
    CHECK(size == 1);

    /* a container owing more elements than bytes left needs more bytes; a string claiming
       4 GiB too: the reader's own buffer bound refuses it */
    const uint8_t owes[] = {0xdd, 0x00, 0x10, 0x00, 0x00, 0xc0};
    CHECK_RC(sos_mp_object_size(owes, sizeof owes, SIZE_MAX, &size), SOS_ERR_PARTIAL);
    const uint8_t big_str[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    CHECK_RC(sos_mp_object_size(big_str, sizeof big_str, SIZE_MAX, &size), SOS_ERR_PARTIAL);

    /* ... unless they cannot fit in the reader's bound: then it is too large at once */
    CHECK_RC(sos_mp_object_size(owes, sizeof owes, 1 << 20, &size), SOS_ERR_TOO_LARGE);
    CHECK_RC(sos_mp_object_size(big_str, sizeof big_str, 1 << 20, &size), SOS_ERR_TOO_LARGE);
    CHECK_RC(sos_mp_object_size(s_all_types, sizeof s_all_types, sizeof s_all_types, &size),
             SOS_OK);
    CHECK_RC(sos_mp_object_size(s_all_types, sizeof s_all_types, sizeof s_all_types - 1, &size),
             SOS_ERR_TOO_LARGE);

    /* the reserved byte, even before the object is complete */
    const uint8_t reserved[] = {0x92, 0x01, 0xc1};
    CHECK_RC(sos_mp_object_size(reserved, sizeof reserved, SIZE_MAX, &size), SOS_ERR_MALFORMED);

    /* depth: the pre-scan's ceiling, found before the object is complete */
    uint8_t deep[SOS_MP_MAX_DEPTH + 2];
    memset(deep, 0x91, sizeof deep);
    deep[SOS_MP_MAX_DEPTH - 1] = 0x90;
    CHECK_RC(sos_mp_object_size(deep, SOS_MP_MAX_DEPTH, SIZE_MAX, &size), SOS_OK);
    CHECK(size == SOS_MP_MAX_DEPTH);
    memset(deep, 0x91, sizeof deep);
    CHECK_RC(sos_mp_object_size(deep, SOS_MP_MAX_DEPTH, SIZE_MAX, &size), SOS_ERR_PARTIAL);
    CHECK_RC(sos_mp_object_size(deep, SOS_MP_MAX_DEPTH + 1, SIZE_MAX, &size), SOS_ERR_TOO_LARGE);

    /* object count: 65 536 objects pass, 65 537 do not, followed by more bytes or not */
    size_t n = SOS_MP_MAX_OBJECTS - 1;
    uint8_t *buf = (uint8_t *)malloc(5 + n + 2);
    CHECK(buf);
    if (!buf)
        return;
    buf[0] = 0xdd;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    memset(buf + 5, 0xc0, n + 2);
    CHECK_RC(sos_mp_object_size(buf, 5 + n + 2, SIZE_MAX, &size), SOS_OK);
    CHECK(size == 5 + n);
    CHECK_RC(sos_mp_object_size(buf, 5 + n - 1, SIZE_MAX, &size), SOS_ERR_PARTIAL);
    n++;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    CHECK_RC(sos_mp_object_size(buf, 5 + n + 1, SIZE_MAX, &size), SOS_ERR_TOO_LARGE);
    CHECK_RC(sos_mp_object_size(buf, 5 + n, SIZE_MAX, &size), SOS_ERR_TOO_LARGE);
    free(buf);
}

static void
s_test_counts_beyond_input(void)
{
    /* Were these to reach msgpack-c, it would first try to allocate count * 24 bytes (about
       100 GB for the array32 and 200 GB for the map32), and fail with NOMEM or abort under
       ASan. MALFORMED shows that the pre-scan stopped them. */
    SECTION("counts and lengths that claim more than the bytes left");
    sos_mp_doc_t doc;
    const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0, 0xc0};
    const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0};
    const uint8_t array16[] = {0xdc, 0x00, 0x04, 0xc0, 0xc0, 0xc0};
    const uint8_t map16[] = {0xde, 0x00, 0x02, 0xc0, 0xc0, 0xc0}; /* needs 4 */
    const uint8_t fixmap[] = {0x82, 0xc0, 0xc0, 0xc0};            /* needs 4 */
    const uint8_t nested[] = {0x92, 0x92, 0xc0, 0xc0};            /* each fits alone */
    const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    const uint8_t bin32[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00};
    const uint8_t ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00};
    const uint8_t ext8[] = {0xc7, 0x01, 0x01}; /* type, no data */
    const uint8_t fixext16[] = {0xd8, 0x01, 1, 2, 3};
    const uint8_t uint64[] = {0xcf, 0, 0, 0};
    const uint8_t lenhalf[] = {0xda, 0x00};
    struct {
        const uint8_t *data;
        size_t len;
    } cases[] = {{array32, sizeof array32}, {map32, sizeof map32},       {array16, sizeof array16},
                 {map16, sizeof map16},     {fixmap, sizeof fixmap},     {nested, sizeof nested},
                 {str32, sizeof str32},     {bin32, sizeof bin32},       {ext32, sizeof ext32},
                 {ext8, sizeof ext8},       {fixext16, sizeof fixext16}, {uint64, sizeof uint64},
                 {lenhalf, sizeof lenhalf}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_RC(sos_mp_parse(&doc, cases[i].data, cases[i].len), SOS_ERR_MALFORMED);
        sos_mp_doc_release(&doc);
    }
    /* one megabyte whose array32 claims one element more than there are bytes */
    size_t n = 1 << 20;
    uint8_t *big = (uint8_t *)calloc(1, n);
    CHECK(big);
    if (!big)
        return;
    big[0] = 0xdd;
    uint32_t claim = (uint32_t)(n - 5 + 1);
    big[1] = (uint8_t)(claim >> 24);
    big[2] = (uint8_t)(claim >> 16);
    big[3] = (uint8_t)(claim >> 8);
    big[4] = (uint8_t)claim;
    CHECK_RC(sos_mp_parse(&doc, big, n), SOS_ERR_MALFORMED);
    sos_mp_doc_release(&doc);
    free(big);
}

static void
s_test_accessors(void)
{
    SECTION("str_copy refuses embedded NUL; map_get skips non-str keys");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_uint8(&pk, 1); /* a non-str key */
    msgpack_pack_uint8(&pk, 1);
    sos_mp_pack_strn(&pk, "nul", 3);
    sos_mp_pack_strn(&pk, "a\0b", 3);
    sos_mp_pack_kv_uint(&pk, "n", 7);
    sos_mp_doc_t doc;
    CHECK_RC(sos_mp_parse(&doc, sb.data, sb.size), SOS_OK);
    char buf[8];
    CHECK(!sos_mp_str_copy(sos_mp_map_get(doc.root, "nul"), buf, 7));
    uint64_t u;
    CHECK(sos_mp_uint(sos_mp_map_get(doc.root, "n"), &u) && u == 7);
    CHECK(!sos_mp_map_get(doc.root, "nu"));
    CHECK(!sos_mp_map_get(doc.root, "nulx"));
    sos_mp_doc_release(&doc);
    msgpack_sbuffer_destroy(&sb);

    SECTION("packing helpers: empty str and bin, kv pairs");
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    sos_mp_pack_str(&pk, "");
    sos_mp_pack_bin(&pk, NULL, 0);
    msgpack_pack_map(&pk, 1);
    sos_mp_pack_kv_str(&pk, "k", "v");
    const uint8_t want[] = {0x93, 0xa0, 0xc4, 0x00, 0x81, 0xa1, 'k', 0xa1, 'v'};
    CHECK(sb.size == sizeof want && memcmp(sb.data, want, sizeof want) == 0);
    msgpack_sbuffer_destroy(&sb);
}

/*  Random bytes and random mutations of a valid document: nothing may crash, and whatever
    parses must be all of the input. */
static void
s_test_random(void)
{
    SECTION("200 000 random and mutated inputs");
    uint8_t buf[512];
    sos_mp_doc_t doc;
    int ok = 0;
    for (int i = 0; i < 100000; i++) {
        size_t len = 1 + randombytes_uniform(sizeof buf);
        randombytes_buf(buf, len);
        if (sos_mp_parse(&doc, buf, len) == SOS_OK)
            ok++;
        sos_mp_doc_release(&doc);
    }
    for (int i = 0; i < 100000; i++) {
        memcpy(buf, s_all_types, sizeof s_all_types);
        int flips = 1 + (int)randombytes_uniform(3);
        for (int k = 0; k < flips; k++)
            buf[randombytes_uniform(sizeof s_all_types)] = (uint8_t)randombytes_uniform(256);
        if (sos_mp_parse(&doc, buf, sizeof s_all_types) == SOS_OK)
            ok++;
        sos_mp_doc_release(&doc);
    }
    CHECK(ok >= 0);
}

/*  Strict UTF-8: every str from the wire is checked, so overlong forms, surrogates, code
    points above U+10FFFF, stray continuation bytes and truncated sequences are refused. */
static void
s_test_utf8(void)
{
    static const struct {
        const char *bytes;
        bool valid;
    } cases[] = {
        {"", true},
        {"plain ascii", true},
        {"caf\xc3\xa9", true},                      /* U+00E9 */
        {"\xe2\x82\xac", true},                     /* U+20AC */
        {"\xf0\x9f\x86\x98\xf0\x9f\x8f\xa0", true}, /* two emoji */
        {"\xf4\x8f\xbf\xbf", true},                 /* U+10FFFF, the last */
        {"\xc0\xaf", false},                        /* overlong '/' */
        {"\xe0\x80\xaf", false},                    /* overlong, 3 bytes */
        {"\xf0\x80\x80\xaf", false},                /* overlong, 4 bytes */
        {"\xed\xa0\x80", false},                    /* U+D800, a surrogate */
        {"\xed\xbf\xbf", false},                    /* U+DFFF */
        {"\xf4\x90\x80\x80", false},                /* above U+10FFFF */
        {"\x80", false},                            /* a lone continuation byte */
        {"\xe2\x82", false},                        /* truncated */
        {"\xf8\x88\x80\x80\x80", false},            /* 5-byte form */
        {"\xff", false},
        {"ok\xc3", false}, /* truncated at the end */
    };
    /*  What msgpack-c gives for an empty str: under UBSan, NULL + 0 was an error. */
    CHECK(sos_utf8_valid(NULL, 0));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].bytes);
        CHECK(sos_utf8_valid(cases[i].bytes, len) == cases[i].valid);
        /* and through the accessor every decoder uses */
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_str_with_body(&pk, cases[i].bytes, len);
        sos_mp_doc_t doc;
        CHECK_RC(sos_mp_parse(&doc, sb.data, sb.size), SOS_OK);
        const char *s;
        size_t n;
        CHECK(sos_mp_str(doc.root, &s, &n, 64) == cases[i].valid);
        sos_mp_doc_release(&doc);
        msgpack_sbuffer_destroy(&sb);
    }
}

int
main(void)
{
    test_init("test_mp: strict msgpack parsing");
    s_test_all_types();
    s_test_truncation();
    s_test_reserved();
    s_test_depth();
    s_test_object_count();
    s_test_object_size();
    s_test_counts_beyond_input();
    s_test_accessors();
    s_test_random();
    s_test_utf8();
    return test_done("test_mp");
}
