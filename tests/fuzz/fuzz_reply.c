/*  fuzz_reply.c: libFuzzer target for reply frames (protocol/sos_client): decoding, relaying a
    forwarded reply as the node does, and sosctl's conversion of a reply body to JSON and text. */
#include <jansson.h>
#include <msgpack.h>

#include "fuzz_common.h"
#include "sos_client.h"
#include "sos_envelope.h"
#include "sos_json.h"

static void
s_touch(const void *p, size_t len)
{
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum ^= ((const uint8_t *)p)[i];
    (void)sum;
}

/*  Read the fields that sosctl and the node read from replies. */
static void
s_read_body(const msgpack_object *body)
{
    const char *s;
    size_t len;
    if (sos_mp_str(sos_mp_map_get(body, "error"), &s, &len, SIZE_MAX))
        s_touch(s, len);
    if (sos_mp_str(sos_mp_map_get(body, "message"), &s, &len, SIZE_MAX))
        s_touch(s, len);
    const msgpack_object *items;
    uint32_t n;
    if (sos_mp_array(sos_mp_map_get(body, "members"), &items, &n, UINT32_MAX))
        for (uint32_t i = 0; i < n; i++)
            if (sos_mp_str(&items[i], &s, &len, SIZE_MAX))
                s_touch(s, len);
    if (sos_mp_array(sos_mp_map_get(body, "messages"), &items, &n, UINT32_MAX))
        for (uint32_t i = 0; i < n; i++) {
            uint64_t v;
            (void)sos_mp_uint(sos_mp_map_get(&items[i], "seq"), &v);
            (void)sos_mp_uint(sos_mp_map_get(&items[i], "timestamp"), &v);
            if (sos_mp_str(sos_mp_map_get(&items[i], "content"), &s, &len, SIZE_MAX))
                s_touch(s, len);
        }
}

/*  What sosctl prints: the body as JSON, and each value as text. */
static void
s_to_json(const msgpack_object *body)
{
    json_t *json = sos_json_from_mp(body);
    if (json) {
        char *text = json_dumps(json, JSON_COMPACT);
        FUZZ_CHECK(text != NULL);
        free(text);
        json_decref(json);
    }
    for (uint32_t i = 0; i < body->via.map.size; i++) {
        char *text = sos_json_text(&body->via.map.ptr[i].val);
        free(text);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sos_frame_kind_t kind;
    sos_rc krc = sos_frame_kind(data, size, &kind);
    sos_mp_doc_t doc;
    sos_reply_t rep;
    sos_rc rc = sos_reply_decode(&rep, &doc, data, size);
    if (rc) {
        FUZZ_CHECK(rep.body == NULL && rep.status == NULL);
        sos_mp_doc_release(&doc);
        return 0;
    }
    /*  the node's dispatch never sends a frame of this kind elsewhere (it is stricter than
        the decoder: it wants the kind as a fixint or uint8, as every sender packs it) */
    FUZZ_CHECK(krc != SOS_OK || kind == SOS_FRAME_REPLY);
    FUZZ_CHECK(sos_mp_is_map(rep.body) && rep.status_len > 0);
    s_touch(rep.status, rep.status_len);
    (void)sos_reply_ok(&rep);
    s_read_body(rep.body);
    s_to_json(rep.body);

    /*  A reply relayed to the client of a forwarded request: unchanged but for its id. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, SOS_FRAME_REPLY);
    msgpack_pack_uint64(&pk, ~rep.req_id);
    sos_mp_pack_strn(&pk, rep.status, rep.status_len);
    msgpack_pack_object(&pk, *rep.body);
    sos_mp_doc_t rdoc;
    sos_reply_t relayed;
    FUZZ_CHECK(sos_reply_decode(&relayed, &rdoc, (const uint8_t *)sb.data, sb.size) == SOS_OK);
    FUZZ_CHECK(relayed.req_id == ~rep.req_id && relayed.status_len == rep.status_len &&
               memcmp(relayed.status, rep.status, rep.status_len) == 0 &&
               sos_reply_ok(&relayed) == sos_reply_ok(&rep));
    FUZZ_CHECK(relayed.body->via.map.size == rep.body->via.map.size);
    sos_mp_doc_release(&rdoc);
    msgpack_sbuffer_destroy(&sb);
    sos_mp_doc_release(&doc);
    return 0;
}
