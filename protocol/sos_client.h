/*  sos_client.h: client requests and replies on a node's public endpoint (room operations,
    status, directory listings). Frames are msgpack; the operations and their fields are in
    protocol/PROTOCOL.md, with the seed API's names. */
#ifndef SOS_CLIENT_H
#define SOS_CLIENT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "sos_error.h"
#include "sos_mp.h"

#define SOS_REQ_FORWARDED 1 /* flags: a node forwarded this; never forward it again */

#define SOS_OP_MAX 16 /* bytes of an operation name */

/*  Error codes in a reply's status (anything but "ok"). */
#define SOS_E_ROOM_NOT_FOUND    "room_not_found"
#define SOS_E_ROOM_EXISTS       "room_exists"
#define SOS_E_INVALID_ROOM_HASH "invalid_room_hash"
#define SOS_E_NOT_MEMBER        "not_member"
#define SOS_E_TOO_LARGE         "too_large"
#define SOS_E_RATE_LIMITED      "rate_limited"
#define SOS_E_OWNER_UNREACHABLE "owner_unreachable"
#define SOS_E_BAD_REQUEST       "bad_request"
#define SOS_E_UNAVAILABLE       "unavailable" /* the node cannot serve it now (disk full, ...) */

/*  A decoded request; pointers borrow from the document it was parsed into. */
typedef struct {
    uint64_t req_id;
    char op[SOS_OP_MAX + 1];
    const msgpack_object *args; /* a map */
    uint32_t flags;
} sos_request_t;

/*  Parse a request frame into doc and req. Returns SOS_ERR_MALFORMED for anything but
    [2, uint, str <= SOS_OP_MAX, map, uint]. Call sos_mp_doc_release(doc) in any case.
    Also SOS_ERR_TOO_LARGE for a frame above SOS_FRAME_MAX or past a ceiling of
    sos_mp_parse (depth, object count), and SOS_ERR_NOMEM. flags must fit 32 bits; op has
    no NUL byte. */
sos_rc sos_request_decode(sos_request_t *req, sos_mp_doc_t *doc, const uint8_t *frame, size_t len);

/*  Start a request frame: packs [2, req_id, op, then the caller packs the args map, then
    calls sos_request_pack_end to add the flags. */
void sos_request_pack_begin(msgpack_packer *pk, uint64_t req_id, const char *op);
void sos_request_pack_end(msgpack_packer *pk, uint32_t flags);

/*  A decoded reply; pointers borrow from the document. */
typedef struct {
    uint64_t req_id;
    const char *status; /* "ok" or an error code, not NUL-terminated */
    size_t status_len;
    const msgpack_object *body; /* a map */
} sos_reply_t;

/*  Parse a reply frame [3, uint, status: str of 1..32 bytes, map] into doc and rep. Return
    codes as sos_request_decode; call sos_mp_doc_release(doc) in any case. */
sos_rc sos_reply_decode(sos_reply_t *rep, sos_mp_doc_t *doc, const uint8_t *frame, size_t len);
bool sos_reply_ok(const sos_reply_t *rep);

/*  Start a reply frame: packs [3, req_id, status; the caller then packs the body map. */
void sos_reply_pack_begin(msgpack_packer *pk, uint64_t req_id, const char *status);

/*  Pack a whole error reply: body {"error": code, "message": text}. */
void sos_reply_pack_error(msgpack_packer *pk, uint64_t req_id, const char *code,
                          const char *message);

#endif
