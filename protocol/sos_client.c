/*  sos_client.c: client request and reply frames on a node's public endpoint: strict
    decoding into borrowed views, and the packers that begin and end them. */
#include <assert.h>
#include <string.h>

#include "sos_client.h"
#include "sos_envelope.h"

/*  Request: [2, req_id, op: str(<= SOS_OP_MAX), args: map, flags]
    Reply:   [3, req_id, status: str(1..S_STATUS_MAX), body: map]
    The contents of args and body are judged by whoever handles the operation. */

#define S_REQUEST_FIELDS 5
#define S_REPLY_FIELDS   4
#define S_STATUS_MAX     32

/*  Parse frame into doc and check that it is an array of count elements whose first is
    the frame kind. */
static sos_rc
s_parse_frame(sos_mp_doc_t *doc, const uint8_t *frame, size_t len, uint64_t kind, uint32_t fields,
              const msgpack_object **f)
{
    if (len > SOS_FRAME_MAX) {
        msgpack_unpacked_init(&doc->unpacked);
        doc->root = NULL;
        return SOS_ERR_TOO_LARGE;
    }
    sos_rc rc = sos_mp_parse(doc, frame, len);
    if (rc)
        return rc;
    uint32_t count;
    uint64_t k;
    if (!sos_mp_array(doc->root, f, &count, fields) || count != fields ||
        !sos_mp_uint(&(*f)[0], &k) || k != kind)
        return SOS_ERR_MALFORMED;
    return SOS_OK;
}

sos_rc
sos_request_decode(sos_request_t *req, sos_mp_doc_t *doc, const uint8_t *frame, size_t len)
{
    assert(req && doc);
    memset(req, 0, sizeof *req);
    const msgpack_object *f;
    sos_rc rc = s_parse_frame(doc, frame, len, SOS_FRAME_REQUEST, S_REQUEST_FIELDS, &f);
    if (rc)
        return rc;
    uint64_t flags;
    if (!sos_mp_uint(&f[1], &req->req_id) || !sos_mp_str_copy(&f[2], req->op, SOS_OP_MAX) ||
        !sos_mp_is_map(&f[3]) || !sos_mp_uint(&f[4], &flags) || flags > UINT32_MAX) {
        memset(req, 0, sizeof *req);
        return SOS_ERR_MALFORMED;
    }
    req->args = &f[3];
    req->flags = (uint32_t)flags;
    return SOS_OK;
}

void
sos_request_pack_begin(msgpack_packer *pk, uint64_t req_id, const char *op)
{
    assert(pk && op && strlen(op) <= SOS_OP_MAX);
    msgpack_pack_array(pk, S_REQUEST_FIELDS);
    msgpack_pack_uint8(pk, SOS_FRAME_REQUEST);
    msgpack_pack_uint64(pk, req_id);
    sos_mp_pack_str(pk, op);
}

void
sos_request_pack_end(msgpack_packer *pk, uint32_t flags)
{
    assert(pk);
    msgpack_pack_uint32(pk, flags);
}

sos_rc
sos_reply_decode(sos_reply_t *rep, sos_mp_doc_t *doc, const uint8_t *frame, size_t len)
{
    assert(rep && doc);
    memset(rep, 0, sizeof *rep);
    const msgpack_object *f;
    sos_rc rc = s_parse_frame(doc, frame, len, SOS_FRAME_REPLY, S_REPLY_FIELDS, &f);
    if (rc)
        return rc;
    if (!sos_mp_uint(&f[1], &rep->req_id) ||
        !sos_mp_str(&f[2], &rep->status, &rep->status_len, S_STATUS_MAX) || rep->status_len == 0 ||
        !sos_mp_is_map(&f[3])) {
        memset(rep, 0, sizeof *rep);
        return SOS_ERR_MALFORMED;
    }
    rep->body = &f[3];
    return SOS_OK;
}

bool
sos_reply_ok(const sos_reply_t *rep)
{
    return rep && rep->status && rep->status_len == 2 && memcmp(rep->status, "ok", 2) == 0;
}

void
sos_reply_pack_begin(msgpack_packer *pk, uint64_t req_id, const char *status)
{
    assert(pk && status && strlen(status) > 0 && strlen(status) <= S_STATUS_MAX);
    msgpack_pack_array(pk, S_REPLY_FIELDS);
    msgpack_pack_uint8(pk, SOS_FRAME_REPLY);
    msgpack_pack_uint64(pk, req_id);
    sos_mp_pack_str(pk, status);
}

void
sos_reply_pack_error(msgpack_packer *pk, uint64_t req_id, const char *code, const char *message)
{
    sos_reply_pack_begin(pk, req_id, code);
    msgpack_pack_map(pk, 2);
    sos_mp_pack_kv_str(pk, "error", code);
    sos_mp_pack_kv_str(pk, "message", message ? message : "");
}
