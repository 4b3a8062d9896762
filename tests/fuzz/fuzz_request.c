/*  fuzz_request.c: libFuzzer target for client request frames (protocol/sos_client): decoding,
    reading every argument the node's operations read, and re-packing as a forward does. */
#include <msgpack.h>

#include "fuzz_common.h"
#include "sos_client.h"
#include "sos_envelope.h"
#include "sos_store.h"

static void
s_touch(const void *p, size_t len)
{
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum ^= ((const uint8_t *)p)[i];
    (void)sum;
}

/*  An optional string argument of at most max bytes, as the room operations read one:
    returns false if present but not a string, too long or holding a NUL byte. */
static bool
s_arg_str(const sos_request_t *req, const char *key, char *dest, size_t max)
{
    *dest = '\0';
    const msgpack_object *o = sos_mp_map_get(req->args, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return true;
    const char *p;
    size_t len;
    if (!sos_mp_str(o, &p, &len, SIZE_MAX) || len > max || (len && memchr(p, 0, len)))
        return false;
    if (len) /* msgpack-c gives an empty str a NULL pointer */
        memcpy(dest, p, len);
    dest[len] = '\0';
    return true;
}

static void
s_read_args(const sos_request_t *req)
{
    char room[SOS_ROOMHASH_LEN + 1];
    const msgpack_object *o = sos_mp_map_get(req->args, "room_hash");
    if (o && sos_mp_str_copy(o, room, SOS_ROOMHASH_LEN))
        (void)sos_room_hash_valid(room, strlen(room));
    o = sos_mp_map_get(req->args, "after");
    if (o && sos_mp_str_copy(o, room, SOS_ROOMHASH_LEN))
        (void)sos_room_hash_valid(room, strlen(room));

    char member[SOS_MEMBER_ID_LEN + 1];
    o = sos_mp_map_get(req->args, "member_id");
    if (o && sos_mp_str_copy(o, member, SOS_MEMBER_ID_LEN))
        FUZZ_CHECK(strlen(member) <= SOS_MEMBER_ID_LEN);

    char emojis[SOS_EMOJIS_MAX + 1], desc[SOS_DESC_MAX + 1], nick[SOS_NICK_MAX + 1];
    char msg_id[SOS_MSGID_MAX + 1];
    if (s_arg_str(req, "emojis", emojis, SOS_EMOJIS_MAX))
        FUZZ_CHECK(strlen(emojis) <= SOS_EMOJIS_MAX);
    if (s_arg_str(req, "description", desc, SOS_DESC_MAX))
        FUZZ_CHECK(strlen(desc) <= SOS_DESC_MAX);
    (void)s_arg_str(req, "nickname", nick, SOS_NICK_MAX);
    (void)s_arg_str(req, "msg_id", msg_id, SOS_MSGID_MAX);

    const char *content;
    size_t len;
    o = sos_mp_map_get(req->args, "content");
    if (o && sos_mp_str(o, &content, &len, SIZE_MAX))
        s_touch(content, len);
    uint64_t v;
    (void)sos_mp_uint(sos_mp_map_get(req->args, "since"), &v);
    (void)sos_mp_uint(sos_mp_map_get(req->args, "wait_ms"), &v);
    (void)sos_mp_uint(sos_mp_map_get(req->args, "limit"), &v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sos_frame_kind_t kind;
    sos_rc krc = sos_frame_kind(data, size, &kind);
    sos_mp_doc_t doc;
    sos_request_t req;
    sos_rc rc = sos_request_decode(&req, &doc, data, size);
    if (rc) {
        FUZZ_CHECK(req.args == NULL && req.op[0] == '\0');
        sos_mp_doc_release(&doc);
        return 0;
    }
    /*  the node's dispatch never sends a frame of this kind elsewhere (it is stricter than
        the decoder: it wants the kind as a fixint or uint8, as every sender packs it) */
    FUZZ_CHECK(krc != SOS_OK || kind == SOS_FRAME_REQUEST);
    FUZZ_CHECK(sos_mp_is_map(req.args) && strlen(req.op) <= SOS_OP_MAX);
    s_read_args(&req);

    /*  A request forwarded to a room's owner: the same operation and arguments under a new
        id, marked forwarded. It decodes to what was sent. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    sos_request_pack_begin(&pk, req.req_id + 1, req.op);
    msgpack_pack_object(&pk, *req.args);
    sos_request_pack_end(&pk, req.flags | SOS_REQ_FORWARDED);
    sos_mp_doc_t fdoc;
    sos_request_t fwd;
    FUZZ_CHECK(sos_request_decode(&fwd, &fdoc, (const uint8_t *)sb.data, sb.size) == SOS_OK);
    FUZZ_CHECK(fwd.req_id == req.req_id + 1 && strcmp(fwd.op, req.op) == 0 &&
               fwd.flags == (req.flags | SOS_REQ_FORWARDED));
    FUZZ_CHECK(fwd.args->via.map.size == req.args->via.map.size);
    s_read_args(&fwd);
    sos_mp_doc_release(&fdoc);
    msgpack_sbuffer_destroy(&sb);
    sos_mp_doc_release(&doc);
    return 0;
}
