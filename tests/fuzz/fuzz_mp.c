/*  fuzz_mp.c: libFuzzer target for protocol/sos_mp: the bounded pre-scan and parse of untrusted
    msgpack, every typed accessor on every object of the tree, and re-encoding what was parsed. */
#include <msgpack.h>

#include "fuzz_common.h"
#include "sos_mp.h"

/*  Keys the node looks up in requests, replies and documents it reads. */
static const char *const s_keys[] = {"room_hash", "member_id", "content", "since",      "wait_ms",
                                     "nickname",  "emojis",    "msg_id",  "after",      "limit",
                                     "error",     "message",   "",        "description"};

/*  Read every byte of a borrowed run, so that ASan checks it lies inside the input. */
static void
s_touch(const void *p, size_t len)
{
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum ^= ((const uint8_t *)p)[i];
    (void)sum;
}

static void
s_walk(const msgpack_object *o)
{
    uint64_t u;
    bool b;
    const char *s;
    const uint8_t *bin;
    size_t len;
    char text[256 + 1];
    uint8_t fixed[32];

    if (sos_mp_uint(o, &u))
        FUZZ_CHECK(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    (void)sos_mp_bool(o, &b);
    if (sos_mp_str(o, &s, &len, SIZE_MAX)) {
        s_touch(s, len);
        bool fits = len <= 256 && (len == 0 || !memchr(s, '\0', len));
        FUZZ_CHECK(sos_mp_str_copy(o, text, 256) == fits);
        if (fits)
            FUZZ_CHECK(strlen(text) == len && (len == 0 || memcmp(text, s, len) == 0));
        FUZZ_CHECK(!sos_mp_str(o, NULL, NULL, len ? len - 1 : 0) || len == 0);
    }
    if (sos_mp_bin(o, &bin, &len, SIZE_MAX)) {
        s_touch(bin, len);
        FUZZ_CHECK(sos_mp_bin_exact(o, fixed, 32) == (len == 32));
        FUZZ_CHECK(sos_mp_bin_exact(o, fixed, 16) == (len == 16));
    }
    const msgpack_object *items;
    uint32_t count;
    if (sos_mp_array(o, &items, &count, UINT32_MAX)) {
        FUZZ_CHECK(!sos_mp_is_map(o));
        for (uint32_t i = 0; i < count; i++)
            s_walk(&items[i]);
    }
    if (sos_mp_is_map(o)) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            s_walk(k);
            s_walk(&o->via.map.ptr[i].val);
            /* a str key without NUL bytes is found (perhaps an earlier equal key) */
            if (sos_mp_str_copy(k, text, 256))
                FUZZ_CHECK(sos_mp_map_get(o, text) != NULL);
        }
        for (size_t i = 0; i < sizeof s_keys / sizeof s_keys[0]; i++)
            (void)sos_mp_map_get(o, s_keys[i]);
    } else
        FUZZ_CHECK(sos_mp_map_get(o, "room_hash") == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sos_mp_doc_t doc;
    sos_rc rc = sos_mp_parse(&doc, data, size);
    FUZZ_CHECK(rc == SOS_OK || rc == SOS_ERR_MALFORMED || rc == SOS_ERR_TOO_LARGE);
    if (rc) {
        FUZZ_CHECK(doc.root == NULL);
        sos_mp_doc_release(&doc);
        return 0;
    }
    s_walk(doc.root);

    /*  What parsed re-encodes to a document that parses too, and whose encoding is stable:
        the tree stands for exactly one value. */
    msgpack_sbuffer once, twice;
    msgpack_sbuffer_init(&once);
    msgpack_sbuffer_init(&twice);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &once, msgpack_sbuffer_write);
    FUZZ_CHECK(msgpack_pack_object(&pk, *doc.root) == 0);
    sos_mp_doc_release(&doc);

    sos_mp_doc_t again;
    rc = sos_mp_parse(&again, once.data, once.size);
    FUZZ_CHECK(rc == SOS_OK);
    msgpack_packer_init(&pk, &twice, msgpack_sbuffer_write);
    FUZZ_CHECK(msgpack_pack_object(&pk, *again.root) == 0);
    FUZZ_CHECK(once.size == twice.size && memcmp(once.data, twice.data, once.size) == 0);
    sos_mp_doc_release(&again);
    msgpack_sbuffer_destroy(&once);
    msgpack_sbuffer_destroy(&twice);
    return 0;
}
